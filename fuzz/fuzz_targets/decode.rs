//! Arbitrary bytes through the decoder, with the default options and with the address
//! check and required type tags on. Accepted packets are read in full, re-encoded and
//! decoded again (see `tests/support/roundtrip.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rosco::osc::DecodeOptions;

include!("../../tests/support/roundtrip.rs");

fuzz_target!(|data: &[u8]| {
    let lenient = roundtrip::check_packet(data, &DecodeOptions::DEFAULT);
    let strict = DecodeOptions {
        check_address: true,
        require_typetags: true,
        ascii_only: true,
        ..DecodeOptions::DEFAULT
    };
    let checked = roundtrip::check_packet(data, &strict);
    // The options only ever add reasons to reject.
    if checked.is_ok() {
        assert!(lenient.is_ok(), "strict accepts what the default rejects");
    }
});
