//! Address patterns: the input is `pattern NUL address` (or, without a NUL, split in
//! halves). Validation and matching must not panic, and for patterns made only of literal
//! bytes, `?` and `*` (no `[ ] { }` and no `//`), `matches` must agree with the small
//! reference matcher below. A pattern with a brace group must also match exactly when one
//! of the patterns made by writing an alternative in place of the group does.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rosco::pattern::{check_address, check_address_pattern, is_pattern, Pattern};

/// Longest pattern or address given to the quadratic reference matcher.
const REFERENCE_MAX: usize = 512;

fuzz_target!(|data: &[u8]| {
    let (pattern, address) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => data.split_at(data.len() / 2),
    };
    let _ = (is_pattern(pattern), check_address(address));
    let checked = check_address_pattern(pattern);
    let parsed = Pattern::new(pattern);
    if checked.is_ok() {
        assert!(
            parsed.is_ok(),
            "check_address_pattern accepts what Pattern::new rejects"
        );
    }
    let Ok(p) = parsed else {
        return;
    };
    let got = p.matches(address);
    if p.is_literal() {
        assert_eq!(got, pattern == address, "literal pattern");
    }
    if let Some(want) = reference(pattern, address) {
        assert_eq!(got, want, "reference matcher disagrees");
    }
    if let Some(expansions) = expand_first_braces(pattern) {
        let want = expansions.iter().any(|q| {
            let q = Pattern::new(q).expect("an expansion of a valid pattern is valid");
            q.matches(address)
        });
        assert_eq!(got, want, "brace expansion disagrees");
    }
});

/// The patterns made by writing each alternative of the first brace group in its place,
/// when that changes nothing else: every alternative is free of pattern syntax, and an
/// empty one does not leave a `//` behind. None otherwise, or when there are more than 16
/// alternatives or the pattern is long (to keep each run fast).
fn expand_first_braces(pattern: &[u8]) -> Option<Vec<Vec<u8>>> {
    if pattern.len() > 256 {
        return None;
    }
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // Sets cannot hold ']' (`[]` is an empty set), so the first one closes them.
            b'[' => i += 1 + pattern[i + 1..].iter().position(|&b| b == b']')?,
            b'{' => {
                let close = i + pattern[i..].iter().position(|&b| b == b'}')?;
                let alternatives: Vec<&[u8]> =
                    pattern[i + 1..close].split(|&b| b == b',').collect();
                let slashes =
                    i > 0 && pattern[i - 1] == b'/' && pattern.get(close + 1) == Some(&b'/');
                let plain = |a: &[u8]| {
                    !a.iter().any(|b| b"*?[]{}".contains(b)) && (!a.is_empty() || !slashes)
                };
                if alternatives.len() > 16 || !alternatives.iter().all(|a| plain(a)) {
                    return None;
                }
                let expand = |a: &[u8]| [&pattern[..i], a, &pattern[close + 1..]].concat();
                return Some(alternatives.into_iter().map(expand).collect());
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The expected answer when the pattern only uses literal bytes, `?` and `*` and has no
/// `//`; None for other patterns. Both sides are split at `/` and matched part by part.
fn reference(pattern: &[u8], address: &[u8]) -> Option<bool> {
    let simple = pattern.first() == Some(&b'/')
        && !pattern.iter().any(|b| b"[]{}".contains(b))
        && !pattern.windows(2).any(|w| w == b"//")
        && pattern.len() <= REFERENCE_MAX
        && address.len() <= REFERENCE_MAX;
    if !simple {
        return None;
    }
    let Some((b'/', address)) = address.split_first() else {
        return Some(false);
    };
    let (p, a): (Vec<_>, Vec<_>) = (
        pattern[1..].split(|&b| b == b'/').collect(),
        address.split(|&b| b == b'/').collect(),
    );
    Some(p.len() == a.len() && p.iter().zip(&a).all(|(p, a)| part_matches(p, a)))
}

/// One part (no `/` on either side): `?` is any byte, `*` any run of bytes, anything else
/// itself. Dynamic programming over address prefixes: `reach[j]` says whether the pattern
/// read so far can match `address[..j]`.
fn part_matches(pattern: &[u8], address: &[u8]) -> bool {
    let mut reach = vec![false; address.len() + 1];
    reach[0] = true;
    for &c in pattern {
        let mut next = vec![false; address.len() + 1];
        for j in 0..=address.len() {
            next[j] = match c {
                b'*' => reach[j] || (j > 0 && next[j - 1]),
                _ if j == 0 => false,
                b'?' => reach[j - 1],
                _ => reach[j - 1] && address[j - 1] == c,
            };
        }
        reach = next;
    }
    reach[address.len()]
}
