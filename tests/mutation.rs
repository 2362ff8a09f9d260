//! Deterministic mutation testing: every packet of `shared/vectors/osc-vectors.json` is
//! mutated many times by a fixed-seed PRNG (bit flips, truncation, extension, corrupted
//! size fields, duplicated slices, 4-aligned insertions), and each mutant goes through the
//! decoder (accepted ones are read in full and re-encoded), a `Receiver` and a `Deframer`
//! in each mode. The checks live in `tests/support/`, shared with the fuzz targets in
//! `fuzz/`; this test is their quick, reproducible counterpart for CI.

use rosco::dispatch::{Dispatcher, Flow, MsgInfo};
use rosco::osc::framing::DEFAULT_MAX_FRAME;
use rosco::osc::{decode, encode_frame, DecodeOptions, Framing, Packet};
use rosco::receive::{ReceiveOptions, Receiver};
use rosco::TimeTag;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

include!("support/roundtrip.rs");
include!("support/streams.rs");
include!("support/hex.rs");

/// Mutants made from each vector: about 2 s for the whole test in a debug build.
const MUTANTS_PER_VECTOR: usize = 400;

/// Mutants longer than this skip the stream checks, which feed them byte by byte.
const STREAM_CHECK_MAX: usize = 2048;

/// The latest moment a timetag can name (the end of NTP era 1, in 2104).
const FAR_FUTURE: TimeTag = TimeTag::new(0x7FFF_FFFF, u32::MAX);

/// xorshift64*: small, deterministic, no crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// A byte, often one that means something in OSC or SLIP.
    fn byte(&mut self) -> u8 {
        const SPECIAL: &[u8] = b"\0\0\0/#,ifsbhtdScrmTFNI[]*?{}\xc0\xdb\xdc\xdd\xff\x80\x7f";
        match self.chance(2) {
            true => SPECIAL[self.below(SPECIAL.len())],
            false => self.next() as u8,
        }
    }

    /// `n` rounded down to a multiple of 4 half of the time.
    fn maybe_aligned(&mut self, n: usize) -> usize {
        match self.chance(2) {
            true => n & !3,
            false => n,
        }
    }
}

/// Offsets of the int32 size fields in `p` when it decodes: bundle element sizes and blob
/// sizes (each sits just before the bytes it counts).
fn size_fields(p: &[u8]) -> Vec<usize> {
    fn walk(packet: Packet<'_>, base: usize, out: &mut Vec<usize>) {
        let at = |bytes: &[u8]| bytes.as_ptr() as usize - base - 4;
        match packet {
            Packet::Message(m) => {
                for arg in m.args() {
                    if let rosco::osc::Arg::Blob(b) = arg {
                        out.push(at(b));
                    }
                }
            }
            Packet::Bundle(b) => {
                for e in b.elements() {
                    out.push(at(e.as_bytes()));
                    walk(e, base, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(packet) = decode(p) {
        walk(packet, p.as_ptr() as usize, &mut out);
    }
    out
}

/// Applies random mutations to a copy of `original`: usually one, so that a fair share of
/// mutants stays valid, sometimes two or three.
fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut p = original.to_vec();
    let rounds = match rng.chance(4) {
        true => 2 + rng.below(2),
        false => 1,
    };
    for _ in 0..rounds {
        let len = p.len();
        match rng.below(6) {
            // Flip one bit, or overwrite a byte.
            0 if len > 0 => {
                let i = rng.below(len);
                match rng.chance(2) {
                    true => p[i] ^= 1 << rng.below(8),
                    false => p[i] = rng.byte(),
                }
            }
            // Truncate.
            1 if len > 0 => {
                let keep = rng.below(len);
                p.truncate(rng.maybe_aligned(keep));
            }
            // Corrupt a size field (or any 4-aligned word) with a telling value.
            2 if len >= 4 => {
                let fields = size_fields(&p);
                let at = match fields.is_empty() || rng.chance(4) {
                    true => rng.below(len / 4) * 4,
                    false => fields[rng.below(fields.len())],
                };
                let old = i32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
                let n = len as i32;
                let values = [
                    0,
                    1,
                    3,
                    4,
                    -1,
                    -4,
                    i32::MIN,
                    i32::MAX,
                    n,
                    n - 4,
                    n + 4,
                    old.wrapping_add(4),
                    old.wrapping_sub(4),
                    old.wrapping_add(1),
                ];
                let v = values[rng.below(values.len())];
                p[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            // Duplicate a slice somewhere.
            3 if len > 0 => {
                let start = rng.below(len);
                let start = rng.maybe_aligned(start);
                let size = 1 + rng.below((len - start).min(64));
                let size = rng.maybe_aligned(size).max(1);
                let copy = p[start..start + size].to_vec();
                let at = rng.below(len + 1);
                let at = rng.maybe_aligned(at);
                p.splice(at..at, copy);
            }
            // Insert whole words of random bytes at a 4-aligned offset.
            4 => {
                let at = rng.below(len / 4 + 1) * 4;
                let words: Vec<u8> = (0..4 * (1 + rng.below(3))).map(|_| rng.byte()).collect();
                p.splice(at..at, words);
            }
            // Extend with random bytes.
            _ => {
                let n = 1 + rng.below(16);
                let n = rng.maybe_aligned(n).max(1);
                p.extend((0..n).map(|_| rng.byte()));
            }
        }
    }
    p
}

fn messages(p: Packet<'_>) -> usize {
    match p {
        Packet::Message(_) => 1,
        Packet::Bundle(b) => b.elements().map(messages).sum(),
    }
}

/// A receiver whose catch-all counts into the returned counter, with literal and pattern
/// methods (one coercing its arguments) registered after it.
fn receiver() -> (Receiver, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let d = Arc::new(Dispatcher::new());
    let count = seen.clone();
    d.add_method(None, None, move |_, _| {
        count.fetch_add(1, Relaxed);
        Flow::PassOn
    })
    .unwrap();
    d.add_method(Some("/i"), Some("i"), |m, _| {
        assert_eq!(m.len(), 1);
        Flow::Handled
    })
    .unwrap();
    d.add_method(Some("/*/[a-z]?"), Some("fs"), |m, _| {
        assert_eq!(m.args().count(), 2);
        Flow::PassOn
    })
    .unwrap();
    d.add_method(Some("/{s,b}*"), None, |m, _| {
        let _ = m.args().count();
        Flow::Handled
    })
    .unwrap();
    (Receiver::new(d, ReceiveOptions::default()), seen)
}

#[derive(Debug, Default)]
struct Counts {
    mutants: usize,
    accepted: usize,
    rejected: usize,
    strict_accepted: usize,
    streams: usize,
    frames: usize,
}

#[test]
fn mutated_vectors_never_panic_and_round_trip() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/osc-vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("shared/vectors beside the repository");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors: Vec<Vec<u8>> = json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| unhex(v["hex"].as_str().unwrap()))
        .collect();
    assert!(vectors.len() >= 100, "only {} vectors", vectors.len());

    let strict = DecodeOptions {
        check_address: true,
        require_typetags: true,
        ascii_only: true,
        ..DecodeOptions::DEFAULT
    };
    let times = [
        TimeTag::IMMEDIATE,
        TimeTag::from_bits(0),
        TimeTag::new(0xE000_0000, 0),
        TimeTag::new(0x8000_0000, 1),
        FAR_FUTURE,
    ];
    let (mut r, seen) = receiver();
    let (mut expected, mut dispatched, mut malformed) = (0, 0, 0);
    let mut counts = Counts::default();
    let started = std::time::Instant::now();
    for (index, original) in vectors.iter().enumerate() {
        let mut rng = Rng::new(index as u64 + 1);
        for _ in 0..MUTANTS_PER_VECTOR {
            let mutant = mutate(&mut rng, original);
            counts.mutants += 1;

            let lenient = roundtrip::check_packet(&mutant, &DecodeOptions::DEFAULT);
            let checked = roundtrip::check_packet(&mutant, &strict);
            assert!(lenient.is_ok() || checked.is_err(), "strict accepts more");
            match lenient {
                Ok(()) => counts.accepted += 1,
                Err(_) => counts.rejected += 1,
            }
            counts.strict_accepted += usize::from(checked.is_ok());

            expected += decode(&mutant).map_or(0, messages);
            let now = times[rng.below(times.len())];
            match r.receive(&mutant, MsgInfo::new(now), now) {
                Ok(n) => dispatched += n,
                Err(e) => {
                    assert!(e.offset <= mutant.len());
                    malformed += 1;
                }
            }
            if rng.chance(8) {
                dispatched += r.run_due(times[rng.below(times.len())]);
            }

            if mutant.len() > STREAM_CHECK_MAX {
                continue;
            }
            // The mutant framed, then the original framed, the whole sometimes mutated too.
            let framing = match rng.chance(2) {
                true => Framing::Slip,
                false => Framing::LengthPrefix,
            };
            let mut stream = Vec::new();
            encode_frame(framing, &mutant, &mut stream);
            encode_frame(framing, original, &mut stream);
            if rng.chance(2) {
                stream = mutate(&mut rng, &stream);
            }
            let max = [16, 64, DEFAULT_MAX_FRAME][rng.below(3)];
            let (seed, reader) = (rng.next(), rng.chance(2));
            counts.frames += streams::check_stream(&stream, max, seed, reader);
            counts.frames += streams::check_stream(&mutant, max, seed, reader);
            counts.streams += 2;
            if !mutant.is_empty() {
                let twice = [mutant.clone(), mutant];
                streams::check_reframed(Framing::Slip, DEFAULT_MAX_FRAME, &twice);
                streams::check_reframed(Framing::LengthPrefix, DEFAULT_MAX_FRAME, &twice);
            }
        }
    }
    dispatched += r.run_due(FAR_FUTURE);
    let elapsed = started.elapsed();
    eprintln!("{counts:?}, {dispatched} messages dispatched, in {elapsed:.2?}");

    // Every message of every accepted mutant reached the catch-all exactly once.
    assert_eq!(r.held(), 0);
    let stats = r.stats();
    assert_eq!(stats.malformed, malformed);
    assert_eq!(stats.packets as usize, counts.accepted);
    assert_eq!(stats.messages as usize, dispatched);
    assert_eq!(dispatched, expected);
    assert_eq!(seen.load(Relaxed), expected);
    assert!(stats.held > 0, "no bundle was ever held");

    // Not vacuous: both outcomes are common, and the streams yield frames.
    let total = counts.mutants;
    assert_eq!(total, vectors.len() * MUTANTS_PER_VECTOR);
    assert!(counts.accepted * 20 > total, "few accepted: {counts:?}");
    assert!(counts.rejected * 20 > total, "few rejected: {counts:?}");
    assert!(counts.strict_accepted > 0 && counts.strict_accepted < counts.accepted);
    assert!(counts.frames > counts.streams / 2, "few frames: {counts:?}");
}
