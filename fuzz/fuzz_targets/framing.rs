//! Arbitrary byte streams through a `Deframer` in each mode and several chunkings (see
//! `tests/support/streams.rs`). Input: one byte seeding the chunk sizes, one choosing the
//! frame cap (1..=128 bytes, or the 1 MiB default), one choosing `push` or `read_from`,
//! then the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rosco::osc::framing::DEFAULT_MAX_FRAME;

include!("../../tests/support/streams.rs");

fuzz_target!(|data: &[u8]| {
    let [seed, cap, flags, stream @ ..] = data else {
        return;
    };
    let max = match *cap {
        0..=127 => 1 + *cap as usize,
        _ => DEFAULT_MAX_FRAME,
    };
    streams::check_stream(stream, max, u64::from(*seed), flags & 1 == 1);
});
