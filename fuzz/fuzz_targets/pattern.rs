//! Address patterns: the input is `pattern NUL address` (or, without a NUL, split in
//! halves). Validation and matching must not panic, and for patterns made only of literal
//! bytes, `?` and `*` (no `[ ] { }` and no `//`), `matches` must agree with the small
//! reference matcher below.

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
});

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
