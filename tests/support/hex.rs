// Shared by the integration tests and the library's unit tests (`osc::hexdump`), which
// `include!` this file.

/// The bytes a hex string spells (whitespace ignored).
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd hex length");
    digits
        .chunks(2)
        .map(|d| u8::from_str_radix(std::str::from_utf8(d).unwrap(), 16).expect("hex"))
        .collect()
}
