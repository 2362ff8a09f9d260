//! OSC address patterns (spec §8): validating and matching OSC 1.0 wildcards and the
//! OSC 1.1 `//` path wildcard, plus the checks for literal addresses.
//!
//! Matching goes part by part: pattern and address are split at `/`, and each pattern part
//! must match exactly one address part, so no wildcard ever matches a `/`. The exception is
//! OSC 1.1 `//`, which matches zero or more whole parts (`//bar` matches `/bar` and
//! `/a/b/bar`; `/foo//*` matches everything below `/foo`). Within a part:
//!
//! | syntax | matches |
//! |---|---|
//! | `?` | any one byte |
//! | `*` | any run of bytes, including none |
//! | `[abc]`, `[a-z]` | one byte from the list; ranges are inclusive |
//! | `[!a-c]` | one byte *not* in the list (`!` negates only right after `[`) |
//! | `{foo,bar}` | any one of the comma-separated literal strings, which may be empty |
//! | anything else | itself, case-sensitively (`.` `+` `^` `$` `\|` `(` `!` `-` `,` are ordinary) |
//!
//! Inside a set, `-` first or last is literal, `^` is literal, and wildcards are literal.
//! Inside braces, wildcards and `[ ]` are literal. Everything works on bytes: addresses
//! need not be UTF-8, and `?` or a set matches one byte, not one character.
//!
//! rosco's choices where the spec is silent: an unterminated `[` or `{`, an empty set
//! (`[]`, `[!]`), a reversed range (`[z-a]`), a `{` inside braces, a `/` inside `[ ]` or
//! `{ }` (they cannot span parts), and a `]` or `}` with nothing to close are malformed:
//! [`Pattern::new`] says why and where, and such a pattern matches nothing. A run of three
//! or more `/` acts like `//`. A trailing `/` is an empty last part, which matches only an
//! empty last address part (so in practice nothing: [`check_address`] rejects those).
//!
//! Cost: [`Pattern::new`] is one linear pass. Matching allocates nothing, never recurses,
//! and takes polynomial time whatever the input (no exponential backtracking): `*` and
//! `//` use the classic "restart from the last star" scan, and brace alternatives of
//! different lengths are followed as a set of positions in a fixed 4096-bit window on the
//! stack.
//!
//! ```
//! use rosco::pattern::{matches, Pattern};
//!
//! let p = Pattern::new(b"/synth/*/{freq,gain}").unwrap();
//! assert!(p.matches(b"/synth/3/freq"));
//! assert!(!p.matches(b"/synth/3/4/freq")); // '*' does not cross '/'
//! assert_eq!(matches(b"//freq", b"/synth/3/freq"), Ok(true));
//! assert!(Pattern::new(b"/[z-a]").is_err());
//! ```

use std::fmt;

/// Words in the position window used for brace alternatives of different lengths.
const WINDOW_WORDS: usize = 64;

/// Largest total "slack" allowed in one star-free run of a part: the sum, over its brace
/// groups, of longest minus shortest alternative. It keeps the set of positions reachable
/// through the run inside the fixed window, so matching needs no allocation.
const MAX_BRACE_SLACK: usize = 1024;

/// Most brace groups in one pattern. Matching cost grows faster than their number (a
/// kilobyte pattern of 255 groups took a quarter of a millisecond per method); patterns
/// come from peers, and no address needs more.
pub const MAX_BRACE_GROUPS: usize = 16;

// The window must hold the slack plus a useful block of start positions.
const _: () = assert!(MAX_BRACE_SLACK < WINDOW_WORDS * 64 / 2);

/// Why a pattern is malformed. `Display` gives a one-line message including the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternError {
    /// What is wrong.
    pub kind: PatternErrorKind,
    /// Byte offset in the pattern where the problem was found (see each kind).
    pub offset: usize,
}

/// The kinds of malformed pattern. The offset each one carries is given per variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternErrorKind {
    /// The pattern is empty or does not start with `/` (offset 0).
    NotAbsolute,
    /// A `[` has no closing `]` (offset of the `[`).
    UnterminatedSet,
    /// A set lists no byte: `[]` or `[!]` (offset of the `[`).
    EmptySet,
    /// A range whose start is above its end, such as `[z-a]` (offset of the start byte).
    ReversedRange,
    /// A `/` inside `[ ]`: a set cannot span parts (offset of the `/`).
    SlashInSet,
    /// A `{` has no closing `}` (offset of the `{`).
    UnterminatedBraces,
    /// A `{` inside braces; braces do not nest (offset of the inner `{`).
    NestedBraces,
    /// A `/` inside braces: alternatives cannot span parts (offset of the `/`).
    SlashInBraces,
    /// A `]` or `}` outside any set or braces (offset of that byte).
    UnmatchedClose,
    /// Between two `*` of one part, the brace groups' alternatives differ in length by
    /// more than 1024 bytes in total (each group counts longest minus shortest). Matching
    /// such a pattern would need memory proportional to it (offset of the `{` that went
    /// over the limit).
    TooComplex,
    /// More than [`MAX_BRACE_GROUPS`] brace groups (offset of the first `{` over it).
    TooManyGroups,
}

impl fmt::Display for PatternErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatternErrorKind::NotAbsolute => "does not start with '/'",
            PatternErrorKind::UnterminatedSet => "'[' without a closing ']'",
            PatternErrorKind::EmptySet => "empty set '[]' or '[!]'",
            PatternErrorKind::ReversedRange => "reversed range in a set",
            PatternErrorKind::SlashInSet => "'/' inside '[ ]'",
            PatternErrorKind::UnterminatedBraces => "'{' without a closing '}'",
            PatternErrorKind::NestedBraces => "nested '{' inside braces",
            PatternErrorKind::SlashInBraces => "'/' inside '{ }'",
            PatternErrorKind::UnmatchedClose => "']' or '}' with nothing to close",
            PatternErrorKind::TooComplex => "brace alternatives too uneven in length",
            PatternErrorKind::TooManyGroups => "more than 16 brace groups",
        })
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed OSC address pattern: {} at byte {}",
            self.kind, self.offset
        )
    }
}

impl std::error::Error for PatternError {}

/// A validated address pattern borrowing its bytes.
///
/// Creating it validates the whole pattern once and allocates nothing; matching allocates
/// nothing either, so one pattern can be tested against many method addresses cheaply.
#[derive(Clone, Copy)]
pub struct Pattern<'a> {
    bytes: &'a [u8],
    /// No wildcard at all: matching is plain byte equality.
    literal: bool,
}

impl fmt::Debug for Pattern<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern(\"{}\")", self.bytes.escape_ascii())
    }
}

impl<'a> Pattern<'a> {
    /// Validates `pattern`; the error says what is malformed and at which byte.
    pub fn new(pattern: &'a [u8]) -> Result<Pattern<'a>, PatternError> {
        Pattern::with_group_limit(pattern, MAX_BRACE_GROUPS)
    }

    fn with_group_limit(pattern: &'a [u8], groups: usize) -> Result<Pattern<'a>, PatternError> {
        let wild = validate(pattern, groups)?;
        Ok(Pattern {
            bytes: pattern,
            literal: !wild,
        })
    }

    /// The pattern as given to [`Pattern::new`].
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when the pattern has no wildcard (and no `//`), so it matches only itself.
    pub fn is_literal(&self) -> bool {
        self.literal
    }

    /// Whether the literal `address` matches this pattern. An address that does not
    /// start with `/` matches nothing.
    pub fn matches(&self, address: &[u8]) -> bool {
        if self.literal {
            return self.bytes == address;
        }
        self.matches_in(address, WINDOW_WORDS)
    }

    /// [`Pattern::matches`] without the literal shortcut, using `words` words of the
    /// position window (tests use fewer to exercise the block logic).
    fn matches_in(&self, address: &[u8], words: usize) -> bool {
        let mut window = Window { words, buf: None };
        match address.split_first() {
            Some((b'/', rest)) => match_parts(&self.bytes[1..], rest, &mut window),
            _ => false,
        }
    }
}

/// True when the address contains any pattern syntax: one of `*?[]{}` or a `//`.
///
/// A receiver uses this to decide whether an incoming address needs pattern matching or
/// a plain lookup.
pub fn is_pattern(address: &[u8]) -> bool {
    // One pass, as every incoming message is checked.
    let mut prev = 0;
    for &b in address {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'{' | b'}') || (b == b'/' && prev == b'/') {
            return true;
        }
        prev = b;
    }
    false
}

/// One-shot convenience: `Pattern::new(pattern)?.matches(address)`.
pub fn matches(pattern: &[u8], address: &[u8]) -> Result<bool, PatternError> {
    Ok(Pattern::new(pattern)?.matches(address))
}

/// Why a literal address (or the non-pattern side of an address pattern) is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// The offending byte, or 0 (at offset 0) when the address is empty or does not start
    /// with `/`. A `/` here means an empty part (`//` or a trailing `/`).
    pub byte: u8,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.offset, self.byte) {
            (0, 0) => f.write_str("invalid OSC address: must start with '/'"),
            (at, b'/') => write!(
                f,
                "invalid OSC address: empty part ('//' or trailing '/') at byte {at}"
            ),
            (at, b) if b.is_ascii_graphic() => write!(
                f,
                "invalid OSC address: character '{}' not allowed at byte {at}",
                b as char
            ),
            (at, b) => write!(
                f,
                "invalid OSC address: byte 0x{b:02x} not allowed at byte {at}"
            ),
        }
    }
}

impl std::error::Error for AddressError {}

/// Why an address as a sender may write it (literal or pattern) is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPatternError {
    /// A byte that is allowed in neither addresses nor patterns, or a bad `/`.
    Address(AddressError),
    /// The pattern syntax is malformed.
    Pattern(PatternError),
}

impl AddressPatternError {
    /// Byte offset of the problem, whichever kind it is.
    pub fn offset(&self) -> usize {
        match self {
            AddressPatternError::Address(e) => e.offset,
            AddressPatternError::Pattern(e) => e.offset,
        }
    }
}

impl fmt::Display for AddressPatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressPatternError::Address(e) => e.fmt(f),
            AddressPatternError::Pattern(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AddressPatternError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AddressPatternError::Address(e) => Some(e),
            AddressPatternError::Pattern(e) => Some(e),
        }
    }
}

impl From<AddressError> for AddressPatternError {
    fn from(e: AddressError) -> Self {
        AddressPatternError::Address(e)
    }
}

impl From<PatternError> for AddressPatternError {
    fn from(e: PatternError) -> Self {
        AddressPatternError::Pattern(e)
    }
}

/// Checks a literal OSC address (a method address, or an outgoing message's address).
///
/// It must start with `/`, and no part may contain space `#` `*` `,` `?` `[` `]` `{` `}`
/// or a control byte (below 0x20, or 0x7f); no part may be empty (`//`, trailing `/`).
/// `/` alone is valid. Bytes 0x80 and above are allowed.
pub fn check_address(address: &[u8]) -> Result<(), AddressError> {
    check_leading_slash(address)?;
    for (i, &b) in address.iter().enumerate().skip(1) {
        let bad = match b {
            b'/' => address[i - 1] == b'/' || i == address.len() - 1,
            b' ' | b'#' | b'*' | b',' | b'?' | b'[' | b']' | b'{' | b'}' => true,
            _ => is_control(b),
        };
        if bad {
            return Err(AddressError { offset: i, byte: b });
        }
    }
    Ok(())
}

/// Checks an address or pattern as a sender may write it.
///
/// Like [`check_address`], but the pattern characters `*` `?` `[` `]` `{` `}` `,` and
/// `//` are allowed as long as [`Pattern::new`] accepts the whole. Space, `#` and control
/// bytes are still errors, and so is a trailing `/` (other than `/` alone), since it
/// could only match an empty last part.
pub fn check_address_pattern(p: &[u8]) -> Result<(), AddressPatternError> {
    check_leading_slash(p)?;
    for (i, &b) in p.iter().enumerate().skip(1) {
        let bad = match b {
            b'/' => i == p.len() - 1,
            b' ' | b'#' => true,
            _ => is_control(b),
        };
        if bad {
            return Err(AddressError { offset: i, byte: b }.into());
        }
    }
    Pattern::new(p)?;
    Ok(())
}

fn check_leading_slash(address: &[u8]) -> Result<(), AddressError> {
    match address.first() {
        Some(b'/') => Ok(()),
        _ => Err(AddressError { offset: 0, byte: 0 }),
    }
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

// ---------------------------------------------------------------------------------------
// Validation

fn perr(kind: PatternErrorKind, offset: usize) -> PatternError {
    PatternError { kind, offset }
}

/// Checks the whole pattern (with at most `max_groups` brace groups); returns whether it
/// holds any wildcard (or `//`).
fn validate(p: &[u8], max_groups: usize) -> Result<bool, PatternError> {
    if p.first() != Some(&b'/') {
        return Err(perr(PatternErrorKind::NotAbsolute, 0));
    }
    let mut wild = false;
    // Brace slack accumulated in the current star-free run of the current part.
    let mut slack = 0usize;
    let mut groups = 0;
    let mut i = 1;
    while i < p.len() {
        match p[i] {
            b'/' => {
                wild |= p[i - 1] == b'/';
                slack = 0;
                i += 1;
            }
            b'*' => {
                wild = true;
                slack = 0;
                i += 1;
            }
            b'?' => {
                wild = true;
                i += 1;
            }
            b'[' => {
                wild = true;
                i = validate_set(p, i)?;
            }
            b'{' => {
                wild = true;
                groups += 1;
                if groups > max_groups {
                    return Err(perr(PatternErrorKind::TooManyGroups, i));
                }
                let (end, group_slack) = validate_braces(p, i)?;
                slack += group_slack;
                if slack > MAX_BRACE_SLACK {
                    return Err(perr(PatternErrorKind::TooComplex, i));
                }
                i = end;
            }
            b']' | b'}' => return Err(perr(PatternErrorKind::UnmatchedClose, i)),
            _ => i += 1,
        }
    }
    Ok(wild)
}

/// Validates the set opening at `open`; returns the index after its `]`.
fn validate_set(p: &[u8], open: usize) -> Result<usize, PatternError> {
    let mut start = open + 1;
    if p.get(start) == Some(&b'!') {
        start += 1;
    }
    let mut j = start;
    loop {
        match p.get(j) {
            None => return Err(perr(PatternErrorKind::UnterminatedSet, open)),
            Some(b']') => break,
            Some(b'/') => return Err(perr(PatternErrorKind::SlashInSet, j)),
            Some(_) => j += 1,
        }
    }
    if j == start {
        return Err(perr(PatternErrorKind::EmptySet, open));
    }
    if let Some((at, _, _)) = SetItems::new(&p[start..j]).find(|&(_, lo, hi)| lo > hi) {
        return Err(perr(PatternErrorKind::ReversedRange, start + at));
    }
    Ok(j + 1)
}

/// Validates the braces opening at `open`; returns the index after `}` and the group's
/// slack (longest minus shortest alternative).
fn validate_braces(p: &[u8], open: usize) -> Result<(usize, usize), PatternError> {
    let mut j = open + 1;
    let loop_start = j;
    loop {
        match p.get(j) {
            None => return Err(perr(PatternErrorKind::UnterminatedBraces, open)),
            Some(b'{') => return Err(perr(PatternErrorKind::NestedBraces, j)),
            Some(b'/') => return Err(perr(PatternErrorKind::SlashInBraces, j)),
            Some(b'}') => break,
            Some(_) => j += 1,
        }
    }
    let (min, max) = alternative_lengths(&p[loop_start..j]);
    Ok((j + 1, max - min))
}

// ---------------------------------------------------------------------------------------
// Tokens of one part (the pattern is validated, so sets and braces are closed)

#[derive(Clone, Copy)]
enum Tok<'p> {
    Lit(u8),
    Any,
    Star,
    /// Body between `[` and `]`, including a leading `!`.
    Set(&'p [u8]),
    /// Body between `{` and `}`.
    Group(&'p [u8]),
}

/// The token starting at `p[i]` and the index after it.
fn next_tok(p: &[u8], i: usize) -> (Tok<'_>, usize) {
    let closed = |close: u8| match p[i + 1..].iter().position(|&b| b == close) {
        Some(k) => (&p[i + 1..i + 1 + k], i + 2 + k),
        None => (&p[i + 1..], p.len()),
    };
    match p[i] {
        b'*' => (Tok::Star, i + 1),
        b'?' => (Tok::Any, i + 1),
        b'[' => {
            let (body, next) = closed(b']');
            (Tok::Set(body), next)
        }
        b'{' => {
            let (body, next) = closed(b'}');
            (Tok::Group(body), next)
        }
        c => (Tok::Lit(c), i + 1),
    }
}

/// Iterates a set body (after any `!`) as `(offset, low, high)` items: `x-y` is a range
/// unless the `-` is first or last; everything else is a single byte.
struct SetItems<'p> {
    body: &'p [u8],
    at: usize,
}

impl<'p> SetItems<'p> {
    fn new(body: &'p [u8]) -> Self {
        SetItems { body, at: 0 }
    }
}

impl Iterator for SetItems<'_> {
    type Item = (usize, u8, u8);

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.at;
        let lo = *self.body.get(at)?;
        if at + 2 < self.body.len() && self.body[at + 1] == b'-' {
            self.at += 3;
            Some((at, lo, self.body[at + 2]))
        } else {
            self.at += 1;
            Some((at, lo, lo))
        }
    }
}

fn set_matches(body: &[u8], c: u8) -> bool {
    let (negated, items) = match body.split_first() {
        Some((b'!', rest)) => (true, rest),
        _ => (false, body),
    };
    SetItems::new(items).any(|(_, lo, hi)| lo <= c && c <= hi) != negated
}

fn alternatives(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == b',')
}

/// Shortest and longest alternative of a brace body.
fn alternative_lengths(body: &[u8]) -> (usize, usize) {
    alternatives(body).fold((usize::MAX, 0), |(min, max), a| {
        (min.min(a.len()), max.max(a.len()))
    })
}

/// Whether a one-byte token matches `c`.
fn byte_matches(tok: Tok<'_>, c: u8) -> bool {
    match tok {
        Tok::Lit(b) => b == c,
        Tok::Any => true,
        Tok::Set(body) => set_matches(body, c),
        Tok::Star | Tok::Group(_) => false,
    }
}

// ---------------------------------------------------------------------------------------
// Matching over parts

/// The part starting at `start` and the start of the next part, if any.
fn part_at(s: &[u8], start: usize) -> (&[u8], Option<usize>) {
    match s[start..].iter().position(|&b| b == b'/') {
        Some(k) => (&s[start..start + k], Some(start + k + 1)),
        None => (&s[start..], None),
    }
}

/// Matches pattern parts against address parts (both without the leading `/`).
///
/// An empty pattern part that is not the last one comes from `//` and matches zero or more
/// whole address parts; it plays the role of `*` over parts, so this is the classic
/// iterative wildcard scan that restarts only from the most recent `//`.
fn match_parts(pat: &[u8], addr: &[u8], window: &mut Window) -> bool {
    let mut pc = Some(0usize);
    let mut ac = Some(0usize);
    // After the latest `//`: (pattern position of what follows it, address position from
    // which that is being tried).
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if let Some(ps) = pc {
            if pat.get(ps) == Some(&b'/') {
                let mut q = ps;
                while pat.get(q) == Some(&b'/') {
                    q += 1;
                }
                // At least one more part must match, and the address has none left.
                let Some(a) = ac else { return false };
                resume = Some((q, a));
                pc = Some(q);
                continue;
            }
        }
        let advanced = match (pc, ac) {
            (None, None) => return true,
            (Some(ps), Some(a)) => {
                let (pp, pnext) = part_at(pat, ps);
                let (ap, anext) = part_at(addr, a);
                let ok = match_part(pp, ap, window);
                if ok {
                    pc = pnext;
                    ac = anext;
                }
                ok
            }
            _ => false,
        };
        if advanced {
            continue;
        }
        // Let the latest `//` swallow one more address part and try again.
        let Some((q, a)) = resume else { return false };
        let Some(next) = part_at(addr, a).1 else {
            return false;
        };
        resume = Some((q, next));
        pc = Some(q);
        ac = Some(next);
    }
}

// ---------------------------------------------------------------------------------------
// Matching within a part
//
// A part is a sequence of star-free runs ("chunks") separated by `*`. The first chunk must
// start at 0 and the last must end at the end of the text. Because a `*` separates any two
// chunks, taking for each chunk the smallest end it can reach (starting at or after where
// the previous one ended) loses nothing: any match that uses a later end can be moved
// earlier, the following `*` absorbing the difference.

/// The bit window for uneven brace alternatives: a stack buffer, set up (zeroed) only
/// when a part first needs it.
struct Window {
    /// How many words to use (all of them, except in tests).
    words: usize,
    buf: Option<[u64; WINDOW_WORDS]>,
}

impl Window {
    fn get(&mut self) -> &mut [u64] {
        let words = self.words.min(WINDOW_WORDS);
        &mut self.buf.get_or_insert([0; WINDOW_WORDS])[..words]
    }
}

/// What a chunk scan looks for.
#[derive(Clone, Copy)]
enum Goal {
    /// The smallest end position of any match.
    MinEnd,
    /// A match ending exactly here.
    EndAt(usize),
}

fn match_part(p: &[u8], t: &[u8], window: &mut Window) -> bool {
    let n = t.len();
    let Some((star, after)) = find_star(p) else {
        return scan_chunk(p, t, 0, 0, Goal::EndAt(n), window).is_some();
    };
    let Some(mut pos) = scan_chunk(&p[..star], t, 0, 0, Goal::MinEnd, window) else {
        return false;
    };
    let mut rest = &p[after..];
    loop {
        match find_star(rest) {
            None => return scan_chunk(rest, t, pos, n, Goal::EndAt(n), window).is_some(),
            Some((star, after)) => {
                if star > 0 {
                    match scan_chunk(&rest[..star], t, pos, n, Goal::MinEnd, window) {
                        Some(end) => pos = end,
                        None => return false,
                    }
                }
                rest = &rest[after..];
            }
        }
    }
}

/// Index of the first `*` token in `p` and the index after it.
fn find_star(p: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < p.len() {
        let (tok, next) = next_tok(p, i);
        if let Tok::Star = tok {
            return Some((i, next));
        }
        i = next;
    }
    None
}

/// Length facts about a star-free chunk.
struct ChunkInfo {
    /// Shortest text the chunk can match.
    min_len: usize,
    /// Sum over brace groups of longest minus shortest alternative; 0 means every match
    /// has length `min_len`.
    slack: usize,
}

fn chunk_info(c: &[u8]) -> ChunkInfo {
    let mut info = ChunkInfo {
        min_len: 0,
        slack: 0,
    };
    let mut i = 0;
    while i < c.len() {
        let (tok, next) = next_tok(c, i);
        match tok {
            Tok::Group(body) => {
                let (min, max) = alternative_lengths(body);
                info.min_len += min;
                info.slack += max - min;
            }
            _ => info.min_len += 1,
        }
        i = next;
    }
    info
}

/// Looks for matches of the star-free chunk `c` in `t` starting anywhere in `lo..=hi`.
fn scan_chunk(
    c: &[u8],
    t: &[u8],
    lo: usize,
    hi: usize,
    goal: Goal,
    window: &mut Window,
) -> Option<usize> {
    let info = chunk_info(c);
    let n = t.len();
    let hi = hi.min(n.checked_sub(info.min_len)?);
    if info.slack == 0 {
        let len = info.min_len;
        return match goal {
            Goal::MinEnd => (lo..=hi).find(|&s| fixed_at(c, t, s)).map(|s| s + len),
            Goal::EndAt(end) => {
                let s = end.checked_sub(len)?;
                (lo <= s && s <= hi && fixed_at(c, t, s)).then_some(end)
            }
        };
    }
    let window = window.get();
    let bits = window.len() * 64;
    if info.slack >= bits {
        // Unreachable for validated patterns with the full window (TooComplex).
        return None;
    }
    let mut lo = lo;
    let mut hi = hi;
    if let Goal::EndAt(end) = goal {
        // Only starts within `slack` of the shortest match can end exactly there.
        hi = hi.min(end.checked_sub(info.min_len)?);
        lo = lo.max(end.saturating_sub(info.min_len + info.slack));
    }
    // Blocks of start positions run together; they start small (a match is usually
    // found near `lo`) and grow up to what the window holds next to the slack.
    let max_block = bits - info.slack;
    let mut block = max_block.min(64);
    let mut best: Option<usize> = None;
    let mut s = lo;
    while s <= hi {
        if matches!(best, Some(b) if s + info.min_len >= b) {
            break; // later starts cannot end earlier
        }
        let e = (s + block).min(hi + 1);
        if let Some((base, used)) = run_variable(c, t, s, e, info.slack, window) {
            match goal {
                Goal::MinEnd => {
                    if let Some(i) = first_bit(&window[..used.div_ceil(64)]) {
                        best = Some(best.map_or(base + i, |b| b.min(base + i)));
                    }
                }
                Goal::EndAt(end) => {
                    if end >= base && end - base < used && bit(window, end - base) {
                        return Some(end);
                    }
                }
            }
        }
        s = e;
        block = (block * 2).min(max_block);
    }
    best
}

/// Whether the fixed-length chunk `c` (every brace group's alternatives of one length)
/// matches `t` starting at `s`.
fn fixed_at(c: &[u8], t: &[u8], s: usize) -> bool {
    let mut pos = s;
    let mut i = 0;
    while i < c.len() {
        let (tok, next) = next_tok(c, i);
        i = next;
        match tok {
            Tok::Group(body) => {
                let len = alternatives(body).next().map_or(0, <[u8]>::len);
                let Some(seg) = t.get(pos..pos + len) else {
                    return false;
                };
                if !alternatives(body).any(|a| a == seg) {
                    return false;
                }
                pos += len;
            }
            tok => match t.get(pos) {
                Some(&ch) if byte_matches(tok, ch) => pos += 1,
                _ => return false,
            },
        }
    }
    true
}

fn bit(window: &[u64], i: usize) -> bool {
    window[i / 64] & (1 << (i % 64)) != 0
}

fn first_bit(words: &[u64]) -> Option<usize> {
    words
        .iter()
        .position(|&w| w != 0)
        .map(|k| k * 64 + words[k].trailing_zeros() as usize)
}

/// Runs the chunk `c` from every start in `lo..hi` at once, keeping the set of reachable
/// text positions as bits in `window`. On success returns `(base, used)`: bit `i` (for
/// `i < used`) set means some match ends at `base + i`. `None` when nothing survives.
///
/// `slack` is the chunk's total slack; the caller keeps `hi - lo + slack` within the
/// window.
fn run_variable(
    c: &[u8],
    t: &[u8],
    lo: usize,
    hi: usize,
    slack: usize,
    window: &mut [u64],
) -> Option<(usize, usize)> {
    let n = t.len();
    let mut used = hi - lo;
    let window = &mut window[..(used + slack).div_ceil(64)];
    window.fill(0);
    window[..used / 64].fill(u64::MAX);
    if used % 64 != 0 {
        window[used / 64] = (1u64 << (used % 64)) - 1;
    }
    let mut base = lo;
    let mut i = 0;
    while i < c.len() {
        let (tok, next) = next_tok(c, i);
        i = next;
        let words = used.div_ceil(64);
        let mut any = false;
        match tok {
            Tok::Group(body) => {
                let (min, max) = alternative_lengths(body);
                debug_assert!(used + (max - min) <= window.len() * 64);
                // New bits land at or above the old ones, so walking down from the top
                // word (after taking a copy of it) never reads a new bit as an old one.
                for w in (0..words).rev() {
                    let mut word = window[w];
                    window[w] = 0;
                    while word != 0 {
                        let b = word.trailing_zeros() as usize;
                        word &= word - 1;
                        let rel = w * 64 + b;
                        let pos = base + rel; // <= n: only reachable positions are set
                        for alt in alternatives(body) {
                            if t[pos..].starts_with(alt) {
                                let j = rel + alt.len() - min;
                                window[j / 64] |= 1 << (j % 64);
                                any = true;
                            }
                        }
                    }
                }
                base += min;
                used += max - min;
            }
            tok => {
                for (w, slot) in window.iter_mut().enumerate().take(words) {
                    let mut word = *slot;
                    let mut keep = 0u64;
                    while word != 0 {
                        let b = word.trailing_zeros() as usize;
                        word &= word - 1;
                        let pos = base + w * 64 + b;
                        if pos < n && byte_matches(tok, t[pos]) {
                            keep |= 1 << b;
                        }
                    }
                    *slot = keep;
                    any |= keep != 0;
                }
                base += 1;
            }
        }
        if !any {
            return None;
        }
    }
    Some((base, used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PatternErrorKind::*;

    /// A pattern without the cap on brace groups, to test the matcher beyond it.
    fn unlimited(p: &[u8]) -> Result<Pattern<'_>, PatternError> {
        Pattern::with_group_limit(p, usize::MAX)
    }

    #[test]
    fn too_many_brace_groups() {
        let ok = format!("/{}", "{a,b}".repeat(MAX_BRACE_GROUPS));
        assert!(Pattern::new(ok.as_bytes()).is_ok());
        let bad = format!("{ok}/{{a,b}}");
        let e = Pattern::new(bad.as_bytes()).unwrap_err();
        assert_eq!((e.kind, e.offset), (TooManyGroups, ok.len() + 1));
        assert!(e.to_string().contains("more than 16 brace groups"));
    }

    fn m(p: &str, a: &str) -> bool {
        let pat = Pattern::new(p.as_bytes()).unwrap_or_else(|e| panic!("{p}: {e}"));
        let fast = pat.matches(a.as_bytes());
        // Same answer through the general path and with a tiny window.
        assert_eq!(fast, pat.matches_in(a.as_bytes(), WINDOW_WORDS));
        if max_chunk_slack(p.as_bytes()) < 32 {
            assert_eq!(fast, pat.matches_in(a.as_bytes(), 1), "{p} {a}");
        }
        assert_eq!(fast, reference(p.as_bytes(), a.as_bytes()), "{p} vs {a}");
        fast
    }

    fn err(p: &str) -> (PatternErrorKind, usize) {
        let e = Pattern::new(p.as_bytes()).expect_err(p);
        (e.kind, e.offset)
    }

    fn max_chunk_slack(p: &[u8]) -> usize {
        p.split(|&b| b == b'/')
            .flat_map(|part| part.split(|&b| b == b'*'))
            .map(|c| chunk_info(c).slack)
            .max()
            .unwrap_or(0)
    }

    // ---- an independent, obviously-correct (allocating, dynamic programming) matcher

    #[derive(Debug)]
    enum R {
        Lit(u8),
        Any,
        Star,
        Set(bool, Vec<(u8, u8)>),
        Alts(Vec<Vec<u8>>),
    }

    fn ref_tokens(p: &[u8]) -> Vec<R> {
        let mut out = vec![];
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'*' => out.push(R::Star),
                b'?' => out.push(R::Any),
                b'[' => {
                    let close = i + p[i..].iter().position(|&b| b == b']').unwrap();
                    let mut body = &p[i + 1..close];
                    let neg = body[0] == b'!';
                    if neg {
                        body = &body[1..];
                    }
                    let mut items = vec![];
                    let mut k = 0;
                    while k < body.len() {
                        if k + 2 < body.len() && body[k + 1] == b'-' {
                            items.push((body[k], body[k + 2]));
                            k += 3;
                        } else {
                            items.push((body[k], body[k]));
                            k += 1;
                        }
                    }
                    out.push(R::Set(neg, items));
                    i = close;
                }
                b'{' => {
                    let close = i + p[i..].iter().position(|&b| b == b'}').unwrap();
                    let alts = p[i + 1..close]
                        .split(|&b| b == b',')
                        .map(|s| s.to_vec())
                        .collect();
                    out.push(R::Alts(alts));
                    i = close;
                }
                c => out.push(R::Lit(c)),
            }
            i += 1;
        }
        out
    }

    fn ref_part(p: &[u8], t: &[u8]) -> bool {
        let toks = ref_tokens(p);
        let n = t.len();
        // ok[k][j]: tokens k.. match t[j..]
        let mut ok = vec![vec![false; n + 1]; toks.len() + 1];
        ok[toks.len()][n] = true;
        for k in (0..toks.len()).rev() {
            for j in (0..=n).rev() {
                ok[k][j] = match &toks[k] {
                    R::Star => ok[k + 1][j] || (j < n && ok[k][j + 1]),
                    R::Any => j < n && ok[k + 1][j + 1],
                    R::Lit(c) => j < n && t[j] == *c && ok[k + 1][j + 1],
                    R::Set(neg, items) => {
                        j < n
                            && items.iter().any(|&(a, b)| a <= t[j] && t[j] <= b) != *neg
                            && ok[k + 1][j + 1]
                    }
                    R::Alts(alts) => alts
                        .iter()
                        .any(|a| t[j..].starts_with(a) && ok[k + 1][j + a.len()]),
                };
            }
        }
        ok[0][0]
    }

    fn reference(p: &[u8], a: &[u8]) -> bool {
        if a.first() != Some(&b'/') {
            return false;
        }
        let pp: Vec<&[u8]> = p[1..].split(|&b| b == b'/').collect();
        let ap: Vec<&[u8]> = a[1..].split(|&b| b == b'/').collect();
        // ok[i][j]: pattern parts i.. match address parts j..
        let mut ok = vec![vec![false; ap.len() + 1]; pp.len() + 1];
        ok[pp.len()][ap.len()] = true;
        for i in (0..pp.len()).rev() {
            for j in (0..=ap.len()).rev() {
                let skip = pp[i].is_empty() && i + 1 < pp.len();
                ok[i][j] = if skip {
                    ok[i + 1][j] || (j < ap.len() && ok[i][j + 1])
                } else {
                    j < ap.len() && ref_part(pp[i], ap[j]) && ok[i + 1][j + 1]
                };
            }
        }
        ok[0][0]
    }

    // ---- rules

    #[test]
    fn literal_text() {
        assert!(m("/foo", "/foo"));
        assert!(!m("/foo", "/foobar"));
        assert!(!m("/foobar", "/foo"));
        assert!(!m("/foo", "/Foo"));
        assert!(!m("/foo", "/foo/bar"));
        assert!(!m("/foo/bar", "/foo"));
        assert!(m("/", "/"));
        assert!(!m("/", "/a"));
        assert!(m("/a.c+$^|()!-,", "/a.c+$^|()!-,"));
        assert!(!m("/a.c", "/abc"));
        assert!(!m("/foo", "foo"));
        assert!(!m("/foo", ""));
        assert!(Pattern::new(b"/foo").unwrap().is_literal());
        assert!(!Pattern::new(b"/f?o").unwrap().is_literal());
    }

    #[test]
    fn question_mark() {
        assert!(m("/fo?", "/foo"));
        assert!(!m("/fo?", "/fo"));
        assert!(!m("/fo?", "/fooo"));
        assert!(m("/?/b", "/a/b"));
        assert!(!m("/a?c", "/a/c"));
        assert!(!m("/???", "/ab"));
    }

    #[test]
    fn star() {
        assert!(m("/*", "/foo"));
        assert!(m("/*", "/"));
        assert!(m("/*", "/"));
        assert!(m("/f*o", "/foooo"));
        assert!(!m("/f*o", "/foob"));
        assert!(m("/**", "/foo"));
        assert!(m("/a***b", "/ab"));
        assert!(m("/*a*b*c", "/xaybzc"));
        assert!(!m("/*a*b*c", "/xaybzcx"));
        assert!(m("/*ab", "/aab"));
        assert!(!m("/a*a", "/a"));
        assert!(m("/a*a", "/aa"));
        assert!(!m("/*", "/foo/bar"));
        assert!(!m("/a*", "/a/b"));
        assert!(m("/a*/b", "/a/b"));
        assert!(m("/*/*", "/a/b"));
        assert!(!m("/*/*", "/a/b/c"));
        assert!(m("/*?*", "/x"));
        assert!(!m("/*?*?*", "/x"));
    }

    #[test]
    fn sets() {
        assert!(m("/[abc]", "/b"));
        assert!(!m("/[abc]", "/d"));
        assert!(m("/[a-c]", "/a"));
        assert!(m("/[a-c]", "/c"));
        assert!(!m("/[a-c]", "/d"));
        assert!(m("/[a-a]", "/a"));
        assert!(m("/[!a-c]", "/d"));
        assert!(!m("/[!a-c]", "/b"));
        assert!(m("/[-a]", "/-"));
        assert!(m("/[a-]", "/-"));
        assert!(m("/[a-]", "/a"));
        assert!(!m("/[a-]", "/b"));
        assert!(m("/[-]", "/-"));
        assert!(m("/[!-]", "/a"));
        assert!(!m("/[!-]", "/-"));
        assert!(m("/[a!]", "/!"));
        assert!(m("/[!!]", "/a"));
        assert!(!m("/[!!]", "/!"));
        assert!(m("/[^a]", "/^"));
        assert!(!m("/[^a]", "/b"));
        assert!(m("/[a-c-e]", "/-"));
        assert!(!m("/[a-c-e]", "/d"));
        assert!(m("/[*?{]", "/*"));
        assert!(!m("/[*?{]", "/x"));
        assert!(m("/x[0-9][0-9]", "/x42"));
        assert!(!m("/[ab]", "/ab"));
    }

    #[test]
    fn braces() {
        assert!(m("/{foo,bar}", "/bar"));
        assert!(!m("/{foo,bar}", "/baz"));
        assert!(m("/x{foo,}", "/x"));
        assert!(m("/x{,foo}", "/xfoo"));
        assert!(m("/x{}", "/x"));
        assert!(!m("/x{}", "/xy"));
        assert!(m("/{fo,foo}d", "/food"));
        assert!(m("/{foo,fo}d", "/fod"));
        assert!(m("/{a,b}{c,d}", "/bd"));
        assert!(!m("/{a,b}{c,d}", "/bb"));
        assert!(m("/{*,?}", "/*"));
        assert!(!m("/{*,?}", "/x"));
        assert!(m("/{[a]}", "/[a]"));
        assert!(m("/{a]}", "/a]"));
        assert!(m("/{a}x{b,}", "/ax"));
    }

    #[test]
    fn braces_and_sets_hold_each_others_syntax() {
        assert!(m("/[}]", "/}"));
        assert!(m("/[{]", "/{"));
        assert!(m("/[[]", "/["));
        assert!(m("/{a[,b}", "/a["));
        assert!(!m("/{a[,b}", "/a"));
    }

    #[test]
    fn braces_with_stars() {
        assert!(m("/*{ab,b}c", "/xabc"));
        assert!(m("/*{a,abc}*{x,xyz}", "/__abc__xyz"));
        assert!(m("/{a,ab}*{b,bc}", "/abbc"));
        assert!(!m("/{a,ab}*{b,bc}", "/abbcd"));
        assert!(m("/*{,a}", "/"));
        assert!(m("/{fo,foo}*d", "/food"));
        assert!(m("/{x,xx}{x,xx}*{y,yy}", "/xxxyy"));
    }

    #[test]
    fn double_slash() {
        assert!(m("//bar", "/bar"));
        assert!(m("//bar", "/foo/bar"));
        assert!(m("//bar", "/a/b/bar"));
        assert!(!m("//bar", "/foo/barx"));
        assert!(!m("//bar", "/bar/baz"));
        assert!(m("/foo//bar", "/foo/x/y/bar"));
        assert!(m("/foo//bar", "/foo/bar"));
        assert!(!m("/foo//bar", "/fo/bar"));
        assert!(m("//b*", "/a/bcd"));
        assert!(m("/foo//*", "/foo/x"));
        assert!(m("/foo//*", "/foo/x/y"));
        assert!(!m("/foo//*", "/foo"));
        assert!(m("///bar", "/x/bar")); // a run of slashes acts like '//'
        assert!(m("//a//b", "/a/b"));
        assert!(m("//a//b", "/x/a/y/z/b"));
        assert!(!m("//a//b", "/x/b/y/a"));
        // The trailing '/' is an empty last part.
        assert!(!m("/foo/", "/foo"));
        assert!(m("/foo/", "/foo/"));
        assert!(!m("/foo//", "/foo/x"));
        // "//" is not a pattern for a literal '/'.
        assert!(m("//", "/"));
    }

    #[test]
    fn mixed() {
        assert!(m("/*/[0-9]/{on,off}", "/mixer/3/on"));
        assert!(!m("/*/[0-9]/{on,off}", "/mixer/10/on"));
        assert!(m("/synth/*/freq", "/synth/1/freq"));
        assert!(!m("/synth/*/freq", "/synth/1/2/freq"));
    }

    #[test]
    fn bytes_not_utf8() {
        let p = Pattern::new(b"/\xff?\x80").unwrap();
        assert!(p.matches(b"/\xff\x00\x80"));
        assert!(!p.matches(b"/\xfe\x00\x80"));
        assert_eq!(matches(b"/[\x80-\xff]", b"/\x90"), Ok(true));
        // '?' is one byte, not one character.
        assert_eq!(matches(b"/?", "/é".as_bytes()), Ok(false));
        assert_eq!(matches(b"/??", "/é".as_bytes()), Ok(true));
    }

    // ---- errors

    #[test]
    fn error_kinds_and_offsets() {
        assert_eq!(err(""), (NotAbsolute, 0));
        assert_eq!(err("foo"), (NotAbsolute, 0));
        assert_eq!(err("/a[bc"), (UnterminatedSet, 2));
        assert_eq!(err("/a["), (UnterminatedSet, 2));
        assert_eq!(err("/a[!"), (UnterminatedSet, 2));
        assert_eq!(err("/x[]"), (EmptySet, 2));
        assert_eq!(err("/x[!]"), (EmptySet, 2));
        assert_eq!(err("/[z-a]"), (ReversedRange, 2));
        assert_eq!(err("/[!abz-a]"), (ReversedRange, 5));
        assert_eq!(err("/[a/b]"), (SlashInSet, 3));
        assert_eq!(err("/{foo,bar"), (UnterminatedBraces, 1));
        assert_eq!(err("/x/{"), (UnterminatedBraces, 3));
        assert_eq!(err("/{a{b,c},d}"), (NestedBraces, 3));
        assert_eq!(err("/{foo/bar,baz}"), (SlashInBraces, 5));
        assert_eq!(err("/a]"), (UnmatchedClose, 2));
        assert_eq!(err("/a}"), (UnmatchedClose, 2));
        assert_eq!(err("/{a,b}}"), (UnmatchedClose, 6));
        assert_eq!(err("/[a]]"), (UnmatchedClose, 4));
        assert_eq!(matches(b"/[z-a]", b"/z").unwrap_err().kind, ReversedRange);
        for p in [
            "x", "/[", "/[]", "/[b-a]", "/[/]", "/{", "/{{}", "/{/}", "/]", "/a}",
        ] {
            let e = Pattern::new(p.as_bytes()).unwrap_err();
            assert!(
                e.to_string().ends_with(&format!(" at byte {}", e.offset)),
                "{e}"
            );
        }
    }

    #[test]
    fn too_complex() {
        // The matcher's own limit, beyond the cap on groups.
        // Each {a,aa} adds one byte of slack; 1024 fit in one star-free run.
        let ok = format!("/{}", "{a,aa}".repeat(MAX_BRACE_SLACK));
        let p = unlimited(ok.as_bytes()).unwrap();
        let addr = format!("/{}", "a".repeat(1500));
        assert!(p.matches(addr.as_bytes()));
        assert!(!p.matches(format!("/{}", "a".repeat(1023)).as_bytes()));
        assert!(!p.matches(format!("/{}", "a".repeat(2049)).as_bytes()));
        let bad = format!("/{}", "{a,aa}".repeat(MAX_BRACE_SLACK + 1));
        let e = unlimited(bad.as_bytes()).unwrap_err();
        assert_eq!((e.kind, e.offset), (TooComplex, 1 + 6 * MAX_BRACE_SLACK));
        // A '*' or '/' starts a new run.
        let split = format!("{ok}*{}", &ok[1..]);
        assert!(unlimited(split.as_bytes()).is_ok());
        let split = format!("{ok}{ok}");
        assert!(unlimited(split.as_bytes()).is_ok());
    }

    #[test]
    fn display() {
        let e = Pattern::new(b"/a[bc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed OSC address pattern: '[' without a closing ']' at byte 2"
        );
        assert_eq!(
            check_address(b"x").unwrap_err().to_string(),
            "invalid OSC address: must start with '/'"
        );
        assert_eq!(
            check_address(b"/a#").unwrap_err().to_string(),
            "invalid OSC address: character '#' not allowed at byte 2"
        );
        assert_eq!(
            check_address(b"/a\x01").unwrap_err().to_string(),
            "invalid OSC address: byte 0x01 not allowed at byte 2"
        );
        assert!(check_address(b"/a//b")
            .unwrap_err()
            .to_string()
            .contains("empty part"));
        let e = check_address_pattern(b"/{a").unwrap_err();
        assert_eq!(e.to_string(), Pattern::new(b"/{a").unwrap_err().to_string());
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.offset(), 1);
        assert_eq!(
            format!("{:?}", Pattern::new(b"/a\n*").unwrap()),
            "Pattern(\"/a\\n*\")"
        );
    }

    // ---- address checks

    #[test]
    fn literal_addresses() {
        assert_eq!(check_address(b"/"), Ok(()));
        assert_eq!(check_address(b"/mixer/3/gain"), Ok(()));
        assert_eq!(check_address(b"/a.b+c!d-e^f|g(h)$~\xc3\xa9"), Ok(()));
        let e = |offset, byte| Err(AddressError { offset, byte });
        assert_eq!(check_address(b""), e(0, 0));
        assert_eq!(check_address(b"mixer"), e(0, 0));
        assert_eq!(check_address(b"/a//b"), e(3, b'/'));
        assert_eq!(check_address(b"//"), e(1, b'/'));
        assert_eq!(check_address(b"/a/"), e(2, b'/'));
        for &c in b" #*,?[]{}\x00\x1f\x7f" {
            let addr = [b'/', b'a', c, b'b'];
            assert_eq!(check_address(&addr), e(2, c), "byte {c:#x}");
        }
    }

    #[test]
    fn address_patterns() {
        for ok in [
            "/",
            "/a",
            "/*",
            "/a/?/[!a-c]/{x,y,}",
            "//bar",
            "/foo//bar",
            "/a,b",
            "/[-!]",
        ] {
            assert_eq!(check_address_pattern(ok.as_bytes()), Ok(()), "{ok}");
        }
        let a = |offset, byte| Err(AddressPatternError::Address(AddressError { offset, byte }));
        assert_eq!(check_address_pattern(b""), a(0, 0));
        assert_eq!(check_address_pattern(b"*"), a(0, 0));
        assert_eq!(check_address_pattern(b"/a b"), a(2, b' '));
        assert_eq!(check_address_pattern(b"/a#"), a(2, b'#'));
        assert_eq!(check_address_pattern(b"/[\t]"), a(2, b'\t'));
        assert_eq!(check_address_pattern(b"/a/"), a(2, b'/'));
        assert_eq!(check_address_pattern(b"/a//"), a(3, b'/'));
        assert_eq!(
            check_address_pattern(b"/[z-a]"),
            Err(AddressPatternError::Pattern(PatternError {
                kind: ReversedRange,
                offset: 2
            }))
        );
    }

    #[test]
    fn is_pattern_detects_syntax() {
        for p in [
            "/*", "/a?", "/[a]", "/a]", "/{a}", "/}", "//a", "/a//b", "/a/",
        ] {
            assert_eq!(is_pattern(p.as_bytes()), p != "/a/", "{p}");
        }
        assert!(!is_pattern(b"/a/b,c!-"));
        assert!(!is_pattern(b"/"));
    }

    // ---- hostile input

    #[test]
    fn pathological_stars() {
        let p = format!("/{}b", "*a".repeat(50));
        let a = format!("/{}", "a".repeat(1000));
        assert!(!matches(p.as_bytes(), a.as_bytes()).unwrap());
        assert!(matches(p.as_bytes(), format!("{a}b").as_bytes()).unwrap());
        // A long run between stars that almost matches everywhere.
        let p = format!("/*{}b*", "a".repeat(300));
        assert!(!matches(p.as_bytes(), format!("/{}", "a".repeat(20_000)).as_bytes()).unwrap());
    }

    #[test]
    fn pathological_braces() {
        let p = format!("/{}", "{a,a}".repeat(100_000));
        let pat = unlimited(p.as_bytes()).unwrap();
        assert!(pat.matches(format!("/{}", "a".repeat(100_000)).as_bytes()));
        assert!(!pat.matches(format!("/{}b", "a".repeat(99_999)).as_bytes()));
        assert!(!pat.matches(format!("/{}", "a".repeat(100_001)).as_bytes()));
        // Uneven alternatives separated by stars, against a long address.
        let p = format!("/{}b", "*{a,aa}".repeat(20_000));
        let pat = unlimited(p.as_bytes()).unwrap();
        assert!(!pat.matches(format!("/{}", "a".repeat(50_000)).as_bytes()));
        assert!(pat.matches(format!("/{}b", "a".repeat(50_000)).as_bytes()));
        // A long uneven run against a long address (several window blocks).
        let p = format!("/*{}c", "{a,ab}".repeat(1000));
        let pat = unlimited(p.as_bytes()).unwrap();
        let mut addr = "/".to_string() + &"ab".repeat(5000);
        assert!(!pat.matches(addr.as_bytes()));
        addr.push('c');
        assert!(pat.matches(addr.as_bytes()));
    }

    #[test]
    fn pathological_double_slash() {
        let p = "/".repeat(100_001) + "a";
        let pat = Pattern::new(p.as_bytes()).unwrap();
        assert!(pat.matches(b"/x/y/a"));
        assert!(!pat.matches(format!("{}/b", "/a".repeat(50_000)).as_bytes()));
        let p = "//a".repeat(100_000);
        let pat = Pattern::new(p.as_bytes()).unwrap();
        assert!(pat.matches("/a".repeat(100_000).as_bytes()));
        assert!(!pat.matches("/a".repeat(99_999).as_bytes()));
        let p = "//*".repeat(1000) + "/b";
        let pat = Pattern::new(p.as_bytes()).unwrap();
        assert!(!pat.matches("/a".repeat(20_000).as_bytes()));
    }

    // ---- randomized comparison with the reference matcher

    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    fn run(r: &mut Lcg, max: usize) -> String {
        (0..r.below(max + 1))
            .map(|_| if r.below(3) == 0 { 'b' } else { 'a' })
            .collect()
    }

    /// A random pattern and an address built from it (so often matching), sometimes
    /// with one byte changed, inserted or removed.
    fn random_case(r: &mut Lcg, tokens: usize, max_run: usize) -> (String, String) {
        const TOKS: [&str; 16] = [
            "a", "b", "a", "b", "?", "*", "*", "[ab]", "[!a]", "[a-b]", "{a,ab}", "{,b}",
            "{b,ba,}", "{aa,b}", "/", "//",
        ];
        let (mut p, mut a) = (String::from("/"), String::from("/"));
        for _ in 0..r.below(tokens) + 1 {
            let tok = TOKS[r.below(TOKS.len())];
            p.push_str(tok);
            let ab = if r.below(2) == 0 { "a" } else { "b" };
            match tok {
                "?" | "[ab]" | "[a-b]" => a.push_str(ab),
                "[!a]" => a.push('b'),
                "*" => a.push_str(&run(r, max_run)),
                "//" => {
                    a.push('/');
                    for _ in 0..r.below(3) {
                        a.push_str(&run(r, max_run));
                        a.push('/');
                    }
                }
                t if t.starts_with('{') => {
                    let alts: Vec<&str> = t[1..t.len() - 1].split(',').collect();
                    a.push_str(alts[r.below(alts.len())]);
                }
                t => a.push_str(t),
            }
        }
        let mut bytes = a.into_bytes();
        if r.below(2) == 0 && bytes.len() > 1 {
            let at = 1 + r.below(bytes.len() - 1);
            let c = b"ab/"[r.below(3)];
            match r.below(3) {
                0 => bytes[at] = c,
                1 => bytes.insert(at, c),
                _ => drop(bytes.remove(at)),
            }
        }
        (p, String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn random_short_cases_agree_with_reference() {
        let mut r = Lcg(1);
        let mut hits = 0;
        for _ in 0..30_000 {
            let (p, a) = random_case(&mut r, 8, 4);
            hits += usize::from(m(&p, &a));
        }
        assert!(
            hits > 5_000,
            "too few matches for a useful comparison: {hits}"
        );
    }

    #[test]
    fn random_long_cases_agree_with_reference() {
        // Long parts; m() also runs them with a one-word window, so many blocks per chunk.
        let mut r = Lcg(7);
        let mut hits = 0;
        for _ in 0..1_000 {
            let (p, a) = random_case(&mut r, 10, 300);
            hits += usize::from(m(&p, &a));
        }
        assert!(
            hits > 100,
            "too few matches for a useful comparison: {hits}"
        );
    }

    // ---- the shared vectors

    #[test]
    fn shared_vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vectors/osc-patterns.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = json["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 75);
        let mut failures = vec![];
        for case in cases {
            let pattern = case["pattern"].as_str().unwrap();
            let address = case["address"].as_str().unwrap();
            let want = case["match"].as_bool().unwrap();
            let got = matches(pattern.as_bytes(), address.as_bytes()).unwrap_or(false);
            if got != want {
                failures.push(format!(
                    "{pattern} vs {address}: want {want}, got {got} ({})",
                    case["note"]
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "failing cases:\n{}",
            failures.join("\n")
        );
    }
}
