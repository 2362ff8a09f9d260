//! Encode + decode against the `rosc` crate, measured in the same run.
//!
//! rosco encodes into a reused buffer and decodes zero-copy (the decode also validates the
//! whole packet). Both libraries' decoded packets are read the same way, as a consumer
//! would: every argument's value is folded into a checksum and only the checksum goes
//! through `black_box` (passing each argument through it adds a memory round trip per
//! argument that no consumer makes). The encoded buffer is decoded as it is, not through
//! `black_box`: that would load the buffer's pointer and length as one 16-byte value right
//! after the encoder stored the length, a store-forwarding stall no real consumer has.
//! rosc is given its best case: a packet value built once outside the loop, `encode_into`
//! a reused buffer, `decode_udp`; a second rosc figure builds the message value each time,
//! as a sender does.
//!
//! Criterion measures one library after the other, minutes apart, and this machine's
//! speed (and more so the peers') drifts by more than the gaps between them. The `turns`
//! report takes the ratios from rounds in which every library runs a few milliseconds in
//! turn, so that all see the same machine: `cargo bench --bench codec -- turns`.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

#[path = "support/stats.rs"]
mod stats;
use stats::percentile;

#[path = "support/liblo.rs"]
#[allow(dead_code)] // shared with the UDP benchmark, which uses the rest
mod liblo;

use criterion::{black_box, criterion_group, Criterion};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use rosco::osc::{decode, encode_message, Arg, Packet, PacketWriter};
use rosco::TimeTag;
use std::time::Instant;

fn read_all(p: &Packet<'_>) -> u64 {
    match p {
        Packet::Message(m) => m.args().map(value).fold(0, u64::wrapping_add),
        Packet::Bundle(b) => b.elements().map(|e| read_all(&e)).sum(),
    }
}

/// Something of every argument's value, so that none of them can be skipped.
fn value(a: Arg<'_>) -> u64 {
    match a {
        Arg::Int(v) => v as u64,
        Arg::Float(v) => v.to_bits().into(),
        Arg::Str(s) | Arg::Symbol(s) | Arg::Blob(s) => s.iter().map(|&b| u64::from(b)).sum(),
        other => other.tag().into(),
    }
}

/// The bundle of 10 messages, written by rosco.
fn write_bundle(buf: &mut Vec<u8>) {
    let mut w = PacketWriter::new(buf);
    w.begin_bundle(TIMETAG).unwrap();
    for _ in 0..10 {
        w.message(black_box("/synth/1/freq"), black_box(&ARGS))
            .unwrap();
    }
    w.end_bundle().unwrap();
    w.finish().unwrap();
}

/// The same checksum over rosc's decoded packet.
fn rosc_read_all(p: &OscPacket) -> u64 {
    match p {
        OscPacket::Message(m) => m.args.iter().map(rosc_value).fold(0, u64::wrapping_add),
        OscPacket::Bundle(b) => b.content.iter().map(rosc_read_all).sum(),
    }
}

fn rosc_value(a: &OscType) -> u64 {
    match a {
        OscType::Int(v) => *v as u64,
        OscType::Float(v) => v.to_bits().into(),
        OscType::String(s) => s.bytes().map(u64::from).sum(),
        OscType::Blob(b) => b.iter().map(|&b| u64::from(b)).sum(),
        _ => 0,
    }
}

const TIMETAG: TimeTag = TimeTag::new(0xe8e1_f480, 0x8000_0000);

const ARGS: [Arg<'static>; 3] = [Arg::Int(440), Arg::Float(0.5), Arg::Str(b"sine")];

fn rosc_message() -> OscMessage {
    OscMessage {
        addr: "/synth/1/freq".into(),
        args: vec![
            OscType::Int(440),
            OscType::Float(0.5),
            OscType::String("sine".into()),
        ],
    }
}

/// One encode + decode + read of the message by rosco.
fn rosco_message_round(buf: &mut Vec<u8>) -> u64 {
    encode_message(black_box("/synth/1/freq"), black_box(&ARGS), buf).unwrap();
    read_all(&decode(buf).unwrap())
}

/// One encode + decode + read of `packet` by rosc, into a reused buffer.
fn rosc_round(packet: &OscPacket, buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    rosc::encoder::encode_into(black_box(packet), buf).unwrap();
    rosc_read_all(&rosc::decoder::decode_udp(buf).unwrap().1)
}

/// What a rosc user pays per send: the message value is built (String, Vec) each time.
fn rosc_build_round(buf: &mut Vec<u8>) -> u64 {
    rosc_round(&OscPacket::Message(black_box(rosc_message())), buf)
}

/// liblo's best case: the message object built once, serialised into a reused buffer;
/// decoding makes a new object, as liblo's server does. Checked first to give the same
/// bytes as rosco's and the same checksum.
fn liblo_codec(buf: &mut [u8; 256]) -> liblo::Codec {
    let lo = liblo::Codec::new();
    let mut ours = Vec::new();
    let sum = rosco_message_round(&mut ours);
    let n = lo.encode(buf);
    assert_eq!(buf[..n], ours[..]);
    assert_eq!(liblo::decode_read(&mut buf[..n]), sum);
    lo
}

fn liblo_round(lo: &liblo::Codec, buf: &mut [u8; 256]) -> u64 {
    let n = lo.encode(buf);
    liblo::decode_read(&mut buf[..n])
}

/// One encode + decode + read of the bundle by rosco.
fn rosco_bundle_round(buf: &mut Vec<u8>) -> u64 {
    write_bundle(buf);
    read_all(&decode(buf).unwrap())
}

fn rosc_bundle() -> OscPacket {
    OscPacket::Bundle(OscBundle {
        timetag: OscTime::from((0xe8e1_f480, 0x8000_0000)),
        content: (0..10)
            .map(|_| OscPacket::Message(rosc_message()))
            .collect(),
    })
}

fn message(c: &mut Criterion) {
    let mut g = c.benchmark_group("message /synth/1/freq ,ifs");
    let mut buf = Vec::new();
    g.bench_function("rosco encode+decode", |b| {
        b.iter(|| black_box(rosco_message_round(&mut buf)))
    });
    let packet = OscPacket::Message(rosc_message());
    let mut rbuf = Vec::new();
    g.bench_function("rosc encode+decode", |b| {
        b.iter(|| black_box(rosc_round(&packet, &mut rbuf)))
    });
    let mut lbuf = [0u8; 256];
    let lo = liblo_codec(&mut lbuf);
    g.bench_function("liblo encode+decode", |b| {
        b.iter(|| black_box(liblo_round(&lo, &mut lbuf)))
    });
    g.bench_function("rosc build+encode+decode", |b| {
        b.iter(|| black_box(rosc_build_round(&mut rbuf)))
    });
    g.finish();
}

fn bundle(c: &mut Criterion) {
    let mut g = c.benchmark_group("bundle of 10 messages");
    let mut buf = Vec::new();
    g.bench_function("rosco encode+decode", |b| {
        b.iter(|| black_box(rosco_bundle_round(&mut buf)))
    });
    let packet = rosc_bundle();
    let mut rbuf = Vec::new();
    g.bench_function("rosc encode+decode", |b| {
        b.iter(|| black_box(rosc_round(&packet, &mut rbuf)))
    });
    g.finish();
}

/// Each direction alone, to see where the time of a round goes.
fn apart(c: &mut Criterion) {
    let mut g = c.benchmark_group("apart");
    let mut buf = Vec::new();
    g.bench_function("message encode", |b| {
        b.iter(|| encode_message(black_box("/synth/1/freq"), black_box(&ARGS), &mut buf).unwrap())
    });
    encode_message("/synth/1/freq", &ARGS, &mut buf).unwrap();
    g.bench_function("message decode+read", |b| {
        b.iter(|| black_box(read_all(&decode(black_box(&buf)).unwrap())))
    });
    g.bench_function("bundle encode", |b| b.iter(|| write_bundle(&mut buf)));
    write_bundle(&mut buf);
    g.bench_function("bundle decode+read", |b| {
        b.iter(|| black_box(read_all(&decode(black_box(&buf)).unwrap())))
    });
    g.finish();
}

/// Nanoseconds per round of `round`, over `n` rounds.
fn time_per_round(n: u32, mut round: impl FnMut() -> u64) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        black_box(round());
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// A case of the `turns` report: its name, and how long `n` rounds of it take per round.
type Case<'a> = (&'static str, Box<dyn FnMut(u32) -> f64 + 'a>);

const TURN_ROUNDS: usize = 301;
/// Roughly how long each case runs in a turn.
const TURN_NANOS: f64 = 2e6;

/// Runs the cases in turns and prints each one's median time per round and the median
/// (and quartiles) of its per-turn ratio to the first case.
fn in_turns(title: &str, mut cases: Vec<Case<'_>>) {
    // Warm up and size each turn to about TURN_NANOS.
    let sizes: Vec<u32> = cases
        .iter_mut()
        .map(|(_, run)| {
            run(10_000);
            (TURN_NANOS / run(10_000)).max(1.0) as u32
        })
        .collect();
    let mut times = vec![Vec::with_capacity(TURN_ROUNDS); cases.len()];
    for turn in 0..TURN_ROUNDS {
        // The order rotates, so that no case always follows the same one.
        for k in 0..cases.len() {
            let i = (turn + k) % cases.len();
            times[i].push((cases[i].1)(sizes[i]));
        }
    }
    println!(
        "{title} ({TURN_ROUNDS} turns of about {} ms each)",
        TURN_NANOS / 1e6
    );
    for (i, (name, _)) in cases.iter().enumerate() {
        let mut ratios: Vec<f64> = times[i].iter().zip(&times[0]).map(|(t, o)| t / o).collect();
        let q = [0.25, 0.5, 0.75].map(|p| percentile(&mut ratios, p));
        let t = [0.25, 0.5, 0.75].map(|p| percentile(&mut times[i], p));
        print!(
            "  {name}: {:.1} ns (quartiles {:.1}-{:.1})",
            t[1], t[0], t[2]
        );
        if i > 0 {
            print!(
                " = {:.2}x {} (quartiles {:.2}-{:.2}x)",
                q[1], cases[0].0, q[0], q[2]
            );
        }
        println!();
    }
}

/// The ratios of the targets, measured in turns. Each case owns its buffer.
fn turns() {
    let (mut buf, mut rbuf, mut rbuf2) = (Vec::new(), Vec::new(), Vec::new());
    let mut lbuf = [0u8; 256];
    let lo = liblo_codec(&mut lbuf);
    let message = OscPacket::Message(rosc_message());
    let cases: Vec<Case<'_>> = vec![
        (
            "rosco",
            Box::new(move |n| time_per_round(n, || rosco_message_round(&mut buf))),
        ),
        (
            "rosc",
            Box::new(move |n| time_per_round(n, || rosc_round(&message, &mut rbuf))),
        ),
        (
            "rosc building its message",
            Box::new(move |n| time_per_round(n, || rosc_build_round(&mut rbuf2))),
        ),
        (
            "liblo",
            Box::new(move |n| time_per_round(n, || liblo_round(&lo, &mut lbuf))),
        ),
    ];
    in_turns("message /synth/1/freq ,ifs: encode+decode+read", cases);
    let (mut buf, mut rbuf) = (Vec::new(), Vec::new());
    let bundle = rosc_bundle();
    let cases: Vec<Case<'_>> = vec![
        (
            "rosco",
            Box::new(move |n| time_per_round(n, || rosco_bundle_round(&mut buf))),
        ),
        (
            "rosc",
            Box::new(move |n| time_per_round(n, || rosc_round(&bundle, &mut rbuf))),
        ),
    ];
    in_turns("bundle of 10 messages: encode+decode+read", cases);
}

criterion_group!(benches, message, bundle, apart);

fn main() {
    // `cargo bench --bench codec -- turns` runs the report in turns only; criterion finds
    // no benchmark of that name.
    if std::env::args().any(|a| a == "turns") {
        turns();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
