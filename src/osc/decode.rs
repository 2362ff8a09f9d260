//! Zero-copy, strict decoding.
//!
//! [`decode`] validates the whole packet (every element of every nested bundle) before it
//! returns, and allocates nothing. The views it returns borrow the packet; reading them
//! again cannot fail, so a caller never sees half of a bad packet.

use super::address_table::AddressTable;
use super::error::{DecodeError, DecodeErrorKind};
use super::types::{pad4, Arg, TypeSet};
use crate::time::TimeTag;
use std::sync::Arc;

/// The deepest bundle nesting accepted by default; the outermost bundle is depth 1.
pub const MAX_BUNDLE_DEPTH: usize = 32;

/// The deepest nesting [`DecodeOptions::max_depth`] can allow: validation and dispatch
/// walk nested bundles recursively, and ten thousand levels (a 200 KB stream frame)
/// exhausted a thread's stack; 256 did in an unoptimised build.
pub const DEPTH_LIMIT: usize = 128;

/// A context's default [`DecodeOptions::max_pattern_len`]: 1 KiB.
pub const DEFAULT_MAX_PATTERN_LEN: usize = 1024;

const BUNDLE_HEADER: &[u8; 8] = b"#bundle\0";

/// Decoder options (osc4py3's out-of-band options for incoming packets).
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Type tags accepted; a packet with any other known tag is rejected.
    pub allowed_types: TypeSet,
    /// Reject addresses that break the OSC address/pattern syntax (osc4py3's
    /// `check_addrpattern`, which also refuses patterns: docs/COMING_FROM.md).
    pub check_address: bool,
    /// Reject messages without a type-tag string (osc4py3's `force_typetags`, documented
    /// as `force_typedtags`).
    pub require_typetags: bool,
    /// Deepest bundle nesting accepted (the outermost bundle is depth 1); at most
    /// [`DEPTH_LIMIT`], whatever is asked.
    pub max_depth: usize,
    /// Address decompression: a message whose address is `/` carries an int32 code right
    /// after it, looked up here (the SMC 2011 scheme, osc4py3's
    /// `addrpattern_decompression`).
    pub addresses: Option<Arc<AddressTable>>,
    /// Reject addresses, strings, symbols and chars with bytes over 127 (osc4py3 decodes
    /// text as strict ASCII by default).
    pub ascii_only: bool,
    /// Longest address *pattern* accepted (literal addresses have no limit; `usize::MAX`:
    /// none, the decoder's default). Matching a pattern against a method costs up to its
    /// length times the method's address length, so a sender of 60 KB brace lists could
    /// hold a receiver for milliseconds per method and message: a context's receiver takes
    /// [`DEFAULT_MAX_PATTERN_LEN`] unless told otherwise.
    pub max_pattern_len: usize,
}

impl DecodeOptions {
    /// The defaults: every type, no address check, type tags optional, depth 32, no
    /// address compression, any bytes in text, patterns of any length.
    pub const DEFAULT: DecodeOptions = DecodeOptions {
        allowed_types: TypeSet::ALL,
        check_address: false,
        require_typetags: false,
        max_depth: MAX_BUNDLE_DEPTH,
        addresses: None,
        ascii_only: false,
        max_pattern_len: usize::MAX,
    };
}

impl DecodeOptions {
    /// These options with every O2 type allowed, OSC's and `B` (for messages that came
    /// over O2lite: they carry O2's types whatever the OSC restriction says).
    pub fn with_o2_types(&self) -> DecodeOptions {
        DecodeOptions {
            allowed_types: self.allowed_types.union(TypeSet::O2),
            ..self.clone()
        }
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions::DEFAULT
    }
}

/// A decoded packet.
#[derive(Debug, Clone, Copy)]
pub enum Packet<'a> {
    /// A message.
    Message(Message<'a>),
    /// A bundle.
    Bundle(Bundle<'a>),
}

impl<'a> Packet<'a> {
    /// The packet's bytes as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Packet::Message(m) => m.raw,
            Packet::Bundle(b) => b.raw,
        }
    }
}

/// A decoded message borrowing the packet.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    raw: &'a [u8],
    address: &'a [u8],
    typetags: Option<&'a [u8]>,
    data: &'a [u8],
}

impl<'a> Message<'a> {
    /// The address (or address pattern), as bytes.
    pub fn address(&self) -> &'a [u8] {
        self.address
    }

    /// The address as text, when it is valid UTF-8.
    pub fn address_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.address).ok()
    }

    /// The type tags without the leading `,`; empty when the message has none.
    pub fn typetags(&self) -> &'a [u8] {
        self.typetags.unwrap_or_default()
    }

    /// False for a message sent without a type-tag string (a pre-1.0 habit).
    pub fn has_typetags(&self) -> bool {
        self.typetags.is_some()
    }

    /// The arguments in order (array brackets included, see [`Arg`]).
    pub fn args(&self) -> Args<'a> {
        Args {
            tags: self.typetags(),
            rest: self.data,
        }
    }

    /// Argument `index`, where `index` is the position in the type tags.
    pub fn arg(&self, index: usize) -> Option<Arg<'a>> {
        self.args().nth(index)
    }

    /// The number of arguments (= the number of type tags, brackets included).
    pub fn len(&self) -> usize {
        self.typetags().len()
    }

    /// True when the message has no arguments.
    pub fn is_empty(&self) -> bool {
        self.typetags().is_empty()
    }

    /// The message's bytes as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

/// Iterator over a message's arguments.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    tags: &'a [u8],
    /// The argument data not read yet.
    rest: &'a [u8],
}

impl<'a> Iterator for Args<'a> {
    type Item = Arg<'a>;

    // Always inlined: returned through memory, a value is stored piecewise and then loaded
    // whole, and the load waits for the stores to retire (a store-forwarding stall).
    #[inline(always)]
    fn next(&mut self) -> Option<Arg<'a>> {
        let (&tag, rest) = self.tags.split_first()?;
        self.tags = rest;
        // The message was validated when it was decoded, so this cannot fail.
        read_arg::<()>(tag, &mut self.rest).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.tags.len(), Some(self.tags.len()))
    }
}

impl ExactSizeIterator for Args<'_> {}

/// A decoded bundle borrowing the packet.
#[derive(Debug, Clone, Copy)]
pub struct Bundle<'a> {
    raw: &'a [u8],
    timetag: TimeTag,
    table: Option<&'a AddressTable>,
}

impl<'a> Bundle<'a> {
    /// The bundle's own timetag.
    pub fn timetag(&self) -> TimeTag {
        self.timetag
    }

    /// When the bundle is due inside a parent due at `outer` (`None`: it is the packet):
    /// the later of the two times (specs/osc.md §5).
    pub fn effective_time(&self, outer: Option<TimeTag>) -> TimeTag {
        outer.map_or(self.timetag, |o| o.max(self.timetag))
    }

    /// The elements (messages and bundles) in order.
    pub fn elements(&self) -> Elements<'a> {
        Elements {
            rest: &self.raw[16..],
            table: self.table,
        }
    }

    /// The bundle's bytes as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

/// Iterator over a bundle's elements.
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    rest: &'a [u8],
    table: Option<&'a AddressTable>,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Packet<'a>;

    // Always inlined, as `Args::next` is: an element's view is built where it is used.
    #[inline(always)]
    fn next(&mut self) -> Option<Packet<'a>> {
        // Validated when the packet was decoded: sizes fit and contents parse.
        let size = read_i32(self.rest, 0)? as usize;
        let elem = self.rest.get(4..4 + size)?;
        self.rest = &self.rest[4 + size..];
        split::<()>(elem, self.table).ok()
    }
}

/// Decodes and validates a packet with the default options.
#[inline(always)]
pub fn decode(packet: &[u8]) -> Result<Packet<'_>, DecodeError> {
    // The constant, not a static: its fields are known here, so the option checks fold.
    decode_parts::<true>(packet, &DecodeOptions::DEFAULT, None)
}

/// Decodes and validates a packet. Always inlined: the view is built where it is used,
/// since copying it out of a call costs more than validating a small message.
#[inline(always)]
pub fn decode_with<'a>(
    packet: &'a [u8],
    opts: &'a DecodeOptions,
) -> Result<Packet<'a>, DecodeError> {
    decode_parts::<false>(packet, opts, opts.addresses.as_deref())
}

/// [`decode_with`], the address table apart: the views borrow the packet and the table,
/// not the options. `DEFAULT`: `opts` are [`DecodeOptions::DEFAULT`], which a bundle's
/// elements, validated out of line, then check as constants (a tenth of a bundle's decode).
#[inline(always)]
fn decode_parts<'a, const DEFAULT: bool>(
    packet: &'a [u8],
    opts: &DecodeOptions,
    table: Option<&'a AddressTable>,
) -> Result<Packet<'a>, DecodeError> {
    let at = |kind| DecodeError { kind, offset: 0 };
    if packet.is_empty() {
        return Err(at(DecodeErrorKind::Empty));
    }
    if packet.len() % 4 != 0 {
        return Err(at(DecodeErrorKind::NotAligned { len: packet.len() }));
    }
    validate::<DEFAULT>(packet, 0, 0, opts, table)
}

/// Validates the packet or element at `base` and returns its view. `depth` counts the
/// bundles enclosing it. Inlined into [`decode_with`] (and so into its callers) so that a
/// message's view is built where it is used instead of being copied out through memory.
#[inline(always)]
fn validate<'a, const DEFAULT: bool>(
    bytes: &'a [u8],
    base: usize,
    depth: usize,
    opts: &DecodeOptions,
    table: Option<&'a AddressTable>,
) -> Result<Packet<'a>, DecodeError> {
    let packet = split(bytes, table).map_err(|(kind, pos)| {
        let (kind, pos) = code_without_table(kind, pos, bytes, table);
        DecodeError {
            kind,
            offset: base + pos,
        }
    })?;
    match packet {
        Packet::Message(m) => validate_message(&m, bytes, base, opts)?,
        Packet::Bundle(_) => validate_elements::<DEFAULT>(bytes, base, depth, opts, table)?,
    }
    Ok(packet)
}

/// Validates every element of the bundle at `base` (with `DEFAULT`, against the default
/// options as constants, whatever `opts` says).
#[inline(never)]
fn validate_elements<const DEFAULT: bool>(
    bytes: &[u8],
    base: usize,
    depth: usize,
    opts: &DecodeOptions,
    table: Option<&AddressTable>,
) -> Result<(), DecodeError> {
    let opts = match DEFAULT {
        true => &DecodeOptions::DEFAULT,
        false => opts,
    };
    let max = opts.max_depth.min(DEPTH_LIMIT);
    if depth + 1 > max {
        return Err(DecodeError {
            kind: DecodeErrorKind::TooDeep { max },
            offset: base,
        });
    }
    let mut pos = 16;
    while pos < bytes.len() {
        let size = read_i32(bytes, pos).ok_or(DecodeError {
            kind: DecodeErrorKind::ElementSizeTruncated,
            offset: base + pos,
        })?;
        let fits = size > 0 && size % 4 == 0 && size as usize <= bytes.len() - pos - 4;
        if !fits {
            return Err(DecodeError {
                kind: DecodeErrorKind::BadElementSize { size },
                offset: base + pos,
            });
        }
        let start = pos + 4;
        let end = start + size as usize;
        validate::<DEFAULT>(&bytes[start..end], base + start, depth + 1, opts, table)?;
        pos = end;
    }
    Ok(())
}

/// Finds the parts of a message (address, type tags, argument data) or a bundle header,
/// without reading the arguments or the elements. An error comes with its offset in
/// `bytes`.
#[inline(always)]
fn split<'a, E: Failure>(
    bytes: &'a [u8],
    table: Option<&'a AddressTable>,
) -> Result<Packet<'a>, (E, usize)> {
    let err = |kind, pos: usize| (E::of(kind), pos);
    match bytes.first() {
        Some(b'/') => {}
        Some(b'#') => {
            if bytes.len() < 8 || &bytes[..8] != BUNDLE_HEADER {
                return Err(err(DecodeErrorKind::BadBundleHeader, 0));
            }
            let tt =
                read_u64(bytes, 8).ok_or_else(|| err(DecodeErrorKind::BundleTimetagMissing, 8))?;
            return Ok(Packet::Bundle(Bundle {
                raw: bytes,
                timetag: TimeTag::from_bits(tt),
                table,
            }));
        }
        _ => return Err(err(DecodeErrorKind::NotOsc, 0)),
    }
    let mut rest = bytes;
    let mut address = read_str(&mut rest).map_err(|e| (e, bytes.len() - rest.len()))?;
    let mut pos = bytes.len() - rest.len();
    if let (Some(table), b"/") = (table, address) {
        let code = read_i32(bytes, pos)
            .ok_or_else(|| err(DecodeErrorKind::ArgumentTruncated { tag: b'i' }, pos))?;
        address = table
            .address_of(code)
            .ok_or_else(|| err(DecodeErrorKind::UnknownAddressCode { code }, pos))?;
        pos += 4;
    }
    if pos == bytes.len() {
        return Ok(Packet::Message(Message {
            raw: bytes,
            address,
            typetags: None,
            data: &[],
        }));
    }
    let tags_at = pos;
    let mut rest = &bytes[pos..];
    let tags = read_str(&mut rest).map_err(|e| (e, bytes.len() - rest.len()))?;
    match tags.split_first() {
        Some((b',', tags)) => Ok(Packet::Message(Message {
            raw: bytes,
            address,
            typetags: Some(tags),
            data: rest,
        })),
        _ => Err(err(DecodeErrorKind::TypeTagsNoComma, tags_at)),
    }
}

/// A split error of a message to `/` whose type tags do not read, with no address table:
/// most likely a compressed address (`/` and a code), which is said instead.
#[cold]
fn code_without_table(
    kind: DecodeErrorKind,
    pos: usize,
    bytes: &[u8],
    table: Option<&AddressTable>,
) -> (DecodeErrorKind, usize) {
    match (table, bytes) {
        (None, [b'/', 0, 0, 0, tag, ..]) if *tag != b',' => {
            (DecodeErrorKind::AddressCodeWithoutTable, 4)
        }
        _ => (kind, pos),
    }
}

/// Reads every argument once: types known and allowed, sizes, padding, brackets, and no
/// bytes left over.
#[inline(always)]
fn validate_message(
    m: &Message<'_>,
    bytes: &[u8],
    base: usize,
    opts: &DecodeOptions,
) -> Result<(), DecodeError> {
    let data_at = base + (bytes.len() - m.data.len());
    let err = |kind, offset| DecodeError { kind, offset };
    if opts.check_address && crate::pattern::check_address_pattern(m.address).is_err() {
        return Err(err(DecodeErrorKind::BadAddress, base));
    }
    if opts.ascii_only && !m.address.is_ascii() {
        return Err(err(DecodeErrorKind::NotAscii, base));
    }
    if m.address.len() > opts.max_pattern_len && crate::pattern::is_pattern(m.address) {
        return Err(err(
            DecodeErrorKind::PatternTooLong {
                max: opts.max_pattern_len,
            },
            base,
        ));
    }
    let Some(tags) = m.typetags else {
        return match opts.require_typetags {
            true => Err(err(DecodeErrorKind::TypeTagsMissing, data_at)),
            false => Ok(()),
        };
    };
    let data = m.data;
    let mut rest = data;
    let at = |rest: &[u8]| data_at + (data.len() - rest.len());
    let mut open_arrays = 0usize;
    let restricted = opts.allowed_types != TypeSet::ALL;
    for &tag in tags {
        if restricted && !opts.allowed_types.contains(tag) {
            return Err(err(not_allowed(tag), at(rest)));
        }
        match ARG_CLASS[tag as usize] {
            n @ 0..=8 => match rest.get(n as usize..) {
                Some(after) => rest = after,
                None => return Err(err(DecodeErrorKind::ArgumentTruncated { tag }, at(rest))),
            },
            class => {
                match class {
                    OPEN_ARRAY => open_arrays += 1,
                    CLOSE_ARRAY => {
                        open_arrays = open_arrays
                            .checked_sub(1)
                            .ok_or(err(DecodeErrorKind::UnbalancedArray, at(rest)))?
                    }
                    // `B` is O2's: an OSC decoder knows no such tag unless told to allow it.
                    O2_BOOL if !opts.allowed_types.contains(tag) => {
                        return Err(err(not_allowed(tag), at(rest)))
                    }
                    _ => {}
                }
                let before = rest;
                // Strings, the common variable-size argument, skip `read_arg`'s dispatch.
                let read = match class {
                    STRING if !rest.is_empty() => read_str(&mut rest).map(drop),
                    _ => read_arg(tag, &mut rest).map(drop),
                };
                read.map_err(|kind| match kind {
                    DecodeErrorKind::BadPadding => err(kind, at(rest)),
                    _ => err(kind, at(before)),
                })?;
            }
        }
    }
    if open_arrays != 0 {
        return Err(err(DecodeErrorKind::UnbalancedArray, at(rest)));
    }
    if !rest.is_empty() {
        return Err(err(DecodeErrorKind::TrailingBytes, at(rest)));
    }
    match opts.ascii_only {
        true => check_ascii(m, data_at),
        false => Ok(()),
    }
}

/// With `ascii_only`, after the message validated: refuses the first string, symbol or
/// char with a byte over 127. A walk of its own, out of line, keeps the common path as
/// it was (checked inside the loop above, it cost bundles 15%).
#[inline(never)]
fn check_ascii(m: &Message<'_>, data_at: usize) -> Result<(), DecodeError> {
    let mut args = m.args();
    loop {
        let offset = data_at + (m.data.len() - args.rest.len());
        match args.next() {
            None => return Ok(()),
            Some(arg) if !arg.is_ascii() => {
                return Err(DecodeError {
                    kind: DecodeErrorKind::NotAscii,
                    offset,
                })
            }
            Some(_) => {}
        }
    }
}

/// Why a tag outside the decoder's allowed set is refused.
fn not_allowed(tag: u8) -> DecodeErrorKind {
    match TypeSet::ALL.contains(tag) {
        true => DecodeErrorKind::TypeNotAllowed { tag },
        false => DecodeErrorKind::UnknownType { tag },
    }
}

/// How validation treats each type tag: its payload size when that is fixed (0, 4 or 8
/// bytes, the common case, checked without reading it), or a class that needs a closer look.
static ARG_CLASS: [u8; 256] = arg_classes();
const OPEN_ARRAY: u8 = 9;
const CLOSE_ARRAY: u8 = 10;
const O2_BOOL: u8 = 11;
const STRING: u8 = 12;
const READ: u8 = 13;

const fn arg_classes() -> [u8; 256] {
    let mut t = [READ; 256];
    let fixed: [(&[u8], u8); 3] = [(b"TFNI", 0), (b"ifrm", 4), (b"hdt", 8)];
    let mut i = 0;
    while i < fixed.len() {
        let (tags, size) = fixed[i];
        let mut j = 0;
        while j < tags.len() {
            t[tags[j] as usize] = size;
            j += 1;
        }
        i += 1;
    }
    t[b'[' as usize] = OPEN_ARRAY;
    t[b']' as usize] = CLOSE_ARRAY;
    t[b'B' as usize] = O2_BOOL;
    t[b's' as usize] = STRING;
    t[b'S' as usize] = STRING;
    t
}

/// What a failed read reports: the exact [`DecodeErrorKind`] while validating; nothing when
/// reading back a packet already validated, where nothing is checked twice and the error
/// paths compile away.
trait Failure {
    /// The bytes were validated already.
    const TRUSTED: bool;
    fn of(kind: DecodeErrorKind) -> Self;
}

impl Failure for DecodeErrorKind {
    const TRUSTED: bool = false;
    #[inline(always)]
    fn of(kind: DecodeErrorKind) -> Self {
        kind
    }
}

impl Failure for () {
    const TRUSTED: bool = true;
    #[inline(always)]
    fn of(_: DecodeErrorKind) {}
}

/// Reads one argument of type `tag` from the front of `rest` and moves past it. On a
/// padding error `rest` starts at the offending byte. Inlined so that validation, which
/// discards the value, compiles to size checks only.
#[inline(always)]
fn read_arg<'a, E: Failure>(tag: u8, rest: &mut &'a [u8]) -> Result<Arg<'a>, E> {
    Ok(match tag {
        b'i' => Arg::Int(i32::from_be_bytes(take(rest, tag)?)),
        b'f' => Arg::Float(f32::from_be_bytes(take(rest, tag)?)),
        b'h' => Arg::Long(i64::from_be_bytes(take(rest, tag)?)),
        b'd' => Arg::Double(f64::from_be_bytes(take(rest, tag)?)),
        b't' => Arg::Time(TimeTag::from_bits(u64::from_be_bytes(take(rest, tag)?))),
        b'r' => Arg::Rgba(take(rest, tag)?),
        b'm' => Arg::Midi(take(rest, tag)?),
        b'c' => match take(rest, tag)? {
            [0, 0, 0, c] | [c, 0, 0, 0] => Arg::Char(c),
            _ => return Err(E::of(DecodeErrorKind::BadChar)),
        },
        b's' | b'S' => {
            if rest.is_empty() {
                return Err(E::of(DecodeErrorKind::ArgumentTruncated { tag }));
            }
            let s = read_str(rest)?;
            if tag == b's' {
                Arg::Str(s)
            } else {
                Arg::Symbol(s)
            }
        }
        b'b' => {
            let size = i32::from_be_bytes(take(rest, tag)?);
            let len = usize::try_from(size)
                .ok()
                .filter(|&n| n <= rest.len())
                .ok_or_else(|| E::of(DecodeErrorKind::BadBlobSize { size }))?;
            let (blob, after) = rest.split_at(len);
            let pad = pad4(len) - len;
            match after.get(..pad).map(|p| p.iter().position(|&b| b != 0)) {
                Some(None) => *rest = &after[pad..],
                Some(Some(bad)) => {
                    *rest = &after[bad..];
                    return Err(E::of(DecodeErrorKind::BadPadding));
                }
                None => {
                    *rest = after;
                    return Err(E::of(DecodeErrorKind::BadPadding));
                }
            }
            Arg::Blob(blob)
        }
        b'T' => Arg::True,
        b'F' => Arg::False,
        b'N' => Arg::Nil,
        b'I' => Arg::Impulse,
        b'B' => Arg::Bool(i32::from_be_bytes(take(rest, tag)?) != 0),
        b'[' => Arg::ArrayStart,
        b']' => Arg::ArrayEnd,
        _ => return Err(E::of(DecodeErrorKind::UnknownType { tag })),
    })
}

/// The next `N` bytes of an argument of type `tag`.
#[inline(always)]
fn take<const N: usize, E: Failure>(rest: &mut &[u8], tag: u8) -> Result<[u8; N], E> {
    let (head, after) = rest
        .split_first_chunk::<N>()
        .ok_or_else(|| E::of(DecodeErrorKind::ArgumentTruncated { tag }))?;
    *rest = after;
    Ok(*head)
}

/// Reads an OSC string from the front of `rest`: bytes up to a NUL, then zero padding to a
/// multiple of 4. Strings start on 4-byte boundaries, so the NUL is searched a word at a
/// time (eight bytes at a time measured slower on typical addresses). On a padding error
/// `rest` starts at the offending byte.
#[inline(always)]
fn read_str<'a, E: Failure>(rest: &mut &'a [u8]) -> Result<&'a [u8], E> {
    let s = *rest;
    let mut at = 0;
    if E::TRUSTED {
        // Valid: the first word whose last byte is zero ends the string, and in it every
        // byte after the string is zero, so the highest non-zero byte is its last.
        while let Some(&[a, b, c, d]) = s.get(at..at + 4) {
            let word = u32::from_le_bytes([a, b, c, d]);
            if word < 1 << 24 {
                let len = at + (32 - word.leading_zeros() as usize).div_ceil(8);
                *rest = &s[at + 4..];
                return Ok(&s[..len]);
            }
            at += 4;
        }
        return Err(E::of(DecodeErrorKind::UnterminatedString));
    }
    while let Some(&[a, b, c, d]) = s.get(at..at + 4) {
        let word = u32::from_le_bytes([a, b, c, d]);
        // Flags the lowest zero byte exactly (higher flags may be false positives).
        let zeros = word.wrapping_sub(0x0101_0101) & !word & 0x8080_8080;
        if zeros != 0 {
            let nul = at + (zeros.trailing_zeros() / 8) as usize;
            // The NUL and every byte after it in this word must be zero.
            if word >> (8 * (nul - at)) != 0 {
                return Err(E::of(bad_padding(s, nul, rest)));
            }
            *rest = &s[at + 4..];
            return Ok(&s[..nul]);
        }
        at += 4;
    }
    Err(E::of(DecodeErrorKind::UnterminatedString))
}

/// Points `rest` at the first non-zero byte after the NUL at `nul` in `s`.
#[cold]
fn bad_padding<'a>(s: &'a [u8], nul: usize, rest: &mut &'a [u8]) -> DecodeErrorKind {
    let bad = s[nul..].iter().position(|&b| b != 0).unwrap_or(0);
    *rest = &s[nul + bad..];
    DecodeErrorKind::BadPadding
}

fn read_i32(bytes: &[u8], pos: usize) -> Option<i32> {
    let b = bytes.get(pos..pos + 4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u64(bytes: &[u8], pos: usize) -> Option<u64> {
    let b = bytes.get(pos..pos + 8)?;
    Some(u64::from_be_bytes([
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::osc::unhex as hex;

    fn kind(h: &str) -> DecodeErrorKind {
        decode(&hex(h)).unwrap_err().kind
    }

    #[test]
    fn message_views_borrow_the_packet() {
        let p = hex("2f666f6f000000002c69667300000000000000013fc0000061626300");
        let Ok(Packet::Message(m)) = decode(&p) else {
            panic!("not a message")
        };
        assert_eq!(m.address(), b"/foo");
        assert_eq!(m.typetags(), b"ifs");
        assert_eq!(m.address().as_ptr(), p.as_ptr());
        let args: Vec<_> = m.args().collect();
        assert_eq!(args, [Arg::Int(1), Arg::Float(1.5), Arg::Str(b"abc")]);
        assert_eq!(m.arg(2), Some(Arg::Str(b"abc")));
        assert_eq!(m.arg(3), None);
    }

    #[test]
    fn errors_say_where() {
        let e = decode(&hex("2f6100002c78000000000001")).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::UnknownType { tag: b'x' });
        assert_eq!(e.offset, 8);
        assert_eq!(e.to_string(), "unknown type tag 'x' at offset 8");
        let e = decode(&hex("2f6100782c000000")).unwrap_err();
        assert_eq!((e.kind, e.offset), (DecodeErrorKind::BadPadding, 3));
        // An error inside a nested element reports its offset in the whole packet.
        let e = decode(&hex(
            "2362756e646c650000000000000000010000000c2f6100002c690000000000010000000c2f620000",
        ))
        .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::BadElementSize { size: 12 });
        assert_eq!(e.offset, 32);
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(kind(""), DecodeErrorKind::Empty);
        assert_eq!(kind("2f610000fe"), DecodeErrorKind::NotAligned { len: 5 });
        assert_eq!(kind("610000002c000000"), DecodeErrorKind::NotOsc);
        assert_eq!(kind("2f616263"), DecodeErrorKind::UnterminatedString);
        assert_eq!(
            kind("2f6100006900000000000001"),
            DecodeErrorKind::TypeTagsNoComma
        );
        assert_eq!(
            kind("2f6100002c690000"),
            DecodeErrorKind::ArgumentTruncated { tag: b'i' }
        );
        assert_eq!(
            kind("2f6100002c620000ffffffff61626364"),
            DecodeErrorKind::BadBlobSize { size: -1 }
        );
        assert_eq!(
            kind("2f6100002c5b690000000001"),
            DecodeErrorKind::UnbalancedArray
        );
        assert_eq!(
            kind("2f6100002c695d0000000001"),
            DecodeErrorKind::UnbalancedArray
        );
        assert_eq!(
            kind("2f6100002c6900000000000100000007"),
            DecodeErrorKind::TrailingBytes
        );
        assert_eq!(kind("2f6100002c63000000410000"), DecodeErrorKind::BadChar);
        assert_eq!(
            kind("2362756e646c6500"),
            DecodeErrorKind::BundleTimetagMissing
        );
        assert_eq!(
            kind("2362756e646c78000000000000000001"),
            DecodeErrorKind::BadBundleHeader
        );
        assert_eq!(
            kind("2362756e646c650000000000000000010000000478787878"),
            DecodeErrorKind::NotOsc
        );
        assert_eq!(
            kind("2f6200002c6200000000000161000100"),
            DecodeErrorKind::BadPadding
        );
    }

    #[test]
    fn options_restrict_what_is_accepted() {
        let p = hex("2f6900002c69000000000000");
        let only_f = DecodeOptions {
            allowed_types: TypeSet::from_tags(b"f"),
            ..DecodeOptions::DEFAULT
        };
        assert_eq!(
            decode_with(&p, &only_f).unwrap_err().kind,
            DecodeErrorKind::TypeNotAllowed { tag: b'i' }
        );
        let bare = hex("2f610000");
        assert!(decode(&bare).is_ok());
        let strict = DecodeOptions {
            require_typetags: true,
            ..DecodeOptions::DEFAULT
        };
        assert_eq!(
            decode_with(&bare, &strict).unwrap_err().kind,
            DecodeErrorKind::TypeTagsMissing
        );
        let checked = DecodeOptions {
            check_address: true,
            ..DecodeOptions::DEFAULT
        };
        let spaced = hex("2f6120622c000000"); // "/a b"
        assert!(decode(&spaced).is_ok());
        assert_eq!(
            decode_with(&spaced, &checked).unwrap_err().kind,
            DecodeErrorKind::BadAddress
        );
        let shallow = DecodeOptions {
            max_depth: 1,
            ..DecodeOptions::DEFAULT
        };
        let nested = hex(concat!(
            "2362756e646c65000000000000000001",
            "00000010",
            "2362756e646c65000000000000000001"
        ));
        assert!(decode(&nested).is_ok());
        assert_eq!(
            decode_with(&nested, &shallow).unwrap_err().kind,
            DecodeErrorKind::TooDeep { max: 1 }
        );
        // However deep a caller allows, nesting stops at DEPTH_LIMIT (validation recurses:
        // 10,000 levels overflowed the stack).
        let unlimited = DecodeOptions {
            max_depth: usize::MAX,
            ..DecodeOptions::DEFAULT
        };
        let error = decode_with(&super::super::nest(10_000), &unlimited).unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::TooDeep { max: DEPTH_LIMIT });
        assert!(decode_with(&super::super::nest(DEPTH_LIMIT), &unlimited).is_ok());
    }

    #[test]
    fn ascii_only_refuses_other_bytes_where_text_is() {
        let ascii = DecodeOptions {
            ascii_only: true,
            ..DecodeOptions::DEFAULT
        };
        let err = |h: &str| {
            decode_with(&hex(h), &ascii)
                .map(drop)
                .map_err(|e| (e.kind, e.offset))
        };
        // "/a" ,sci "x" 'a' 1: all ASCII, blob and int bytes over 127 are not text.
        assert_eq!(
            err("2f6100002c736362000000007800000000000061000000018f000000"),
            Ok(())
        );
        // "/\xe9" (é in Latin-1) as the address.
        let latin = "2f e9 00 00 2c 00 00 00".replace(' ', "");
        assert!(decode(&hex(&latin)).is_ok());
        assert_eq!(err(&latin), Err((DecodeErrorKind::NotAscii, 0)));
        // A string "caf\xc3\xa9" (UTF-8) at offset 8.
        let utf8 = "2f610000 2c730000 636166c3 a9000000".replace(' ', "");
        assert_eq!(err(&utf8), Err((DecodeErrorKind::NotAscii, 8)));
        // A char 0xe9 at offset 8.
        assert_eq!(
            err("2f6100002c630000000000e9"),
            Err((DecodeErrorKind::NotAscii, 8))
        );
    }

    #[test]
    fn long_patterns_are_refused_long_literals_not() {
        let message = |address: &[u8]| {
            let mut p = address.to_vec();
            p.resize(address.len() / 4 * 4 + 4, 0);
            p.extend_from_slice(b",\0\0\0");
            p
        };
        let alternatives = vec!["ab"; 400].join(",");
        let pattern = message(format!("/x/{{{alternatives}}}").as_bytes());
        let literal = message(format!("/x/{}", "a".repeat(5000)).as_bytes());
        let limited = DecodeOptions {
            max_pattern_len: DEFAULT_MAX_PATTERN_LEN,
            ..DecodeOptions::DEFAULT
        };
        assert!(pattern.len() > DEFAULT_MAX_PATTERN_LEN);
        let err = decode_with(&pattern, &limited).unwrap_err();
        assert_eq!(
            (err.kind, err.offset),
            (DecodeErrorKind::PatternTooLong { max: 1024 }, 0)
        );
        assert!(decode_with(&literal, &limited).is_ok());
        assert!(decode(&pattern).is_ok(), "the decoder alone has no limit");
    }

    #[test]
    fn compressed_addresses() {
        let mut table = AddressTable::new();
        table.insert(7, "/synth/1/freq").unwrap();
        let opts = DecodeOptions {
            addresses: Some(Arc::new(table)),
            ..DecodeOptions::DEFAULT
        };
        // "/" + code 7 + ",i" + 440
        let p = hex("2f000000000000072c690000000001b8");
        let Ok(Packet::Message(m)) = decode_with(&p, &opts) else {
            panic!("compressed message rejected")
        };
        assert_eq!(m.address(), b"/synth/1/freq");
        assert_eq!(m.arg(0), Some(Arg::Int(440)));
        let unknown = hex("2f000000000000082c690000000001b8");
        assert_eq!(
            decode_with(&unknown, &opts).unwrap_err().kind,
            DecodeErrorKind::UnknownAddressCode { code: 8 }
        );
        // Without the table: said to be a compressed address, for codes that read as an
        // empty string, as a string without its comma, or as no string at all.
        for code in ["00000007", "fffffffb", "41000000", "41424344"] {
            let p = hex(&format!("2f000000{code}"));
            let e = decode(&p).unwrap_err();
            assert_eq!(
                (e.kind, e.offset),
                (DecodeErrorKind::AddressCodeWithoutTable, 4),
                "{code}"
            );
        }
        // A message to `/` is one.
        assert!(decode(&hex("2f0000002c000000")).is_ok());
        assert!(decode(&hex("2f000000")).is_ok());
    }
}
