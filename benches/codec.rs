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

#![allow(missing_docs)] // criterion_group! generates undocumented functions

#[path = "support/liblo.rs"]
#[allow(dead_code)] // shared with the UDP benchmark, which uses the rest
mod liblo;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use rosco::osc::{decode, encode_message, Arg, Packet, PacketWriter};
use rosco::TimeTag;

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

fn message(c: &mut Criterion) {
    let mut g = c.benchmark_group("message /synth/1/freq ,ifs");
    let mut buf = Vec::new();
    g.bench_function("rosco encode+decode", |b| {
        b.iter(|| {
            encode_message(black_box("/synth/1/freq"), black_box(&ARGS), &mut buf).unwrap();
            black_box(read_all(&decode(&buf).unwrap()))
        })
    });
    let packet = OscPacket::Message(rosc_message());
    let mut rbuf = Vec::new();
    g.bench_function("rosc encode+decode", |b| {
        b.iter(|| {
            rbuf.clear();
            rosc::encoder::encode_into(black_box(&packet), &mut rbuf).unwrap();
            black_box(rosc_read_all(&rosc::decoder::decode_udp(&rbuf).unwrap().1));
        })
    });
    // liblo's best case too: the message object built once, serialised into a reused
    // buffer; decoding makes a new object, as liblo's server does.
    let lo = liblo::Codec::new();
    let mut lbuf = [0u8; 256];
    // The same bytes as rosco's, read into the same checksum.
    encode_message("/synth/1/freq", &ARGS, &mut buf).unwrap();
    let n = lo.encode(&mut lbuf);
    assert_eq!(lbuf[..n], buf[..]);
    assert_eq!(
        liblo::decode_read(&mut lbuf[..n]),
        read_all(&decode(&buf).unwrap())
    );
    g.bench_function("liblo encode+decode", |b| {
        b.iter(|| {
            let n = lo.encode(&mut lbuf);
            black_box(liblo::decode_read(&mut lbuf[..n]))
        })
    });
    // What a rosc user pays per send: the message value is built (String, Vec) each time.
    g.bench_function("rosc build+encode+decode", |b| {
        b.iter(|| {
            rbuf.clear();
            let packet = OscPacket::Message(black_box(rosc_message()));
            rosc::encoder::encode_into(&packet, &mut rbuf).unwrap();
            black_box(rosc_read_all(&rosc::decoder::decode_udp(&rbuf).unwrap().1));
        })
    });
    g.finish();
}

fn bundle(c: &mut Criterion) {
    let mut g = c.benchmark_group("bundle of 10 messages");
    let mut buf = Vec::new();
    g.bench_function("rosco encode+decode", |b| {
        b.iter(|| {
            write_bundle(&mut buf);
            black_box(read_all(&decode(&buf).unwrap()))
        })
    });
    let packet = OscPacket::Bundle(OscBundle {
        timetag: OscTime::from((0xe8e1_f480, 0x8000_0000)),
        content: (0..10)
            .map(|_| OscPacket::Message(rosc_message()))
            .collect(),
    });
    let mut rbuf = Vec::new();
    g.bench_function("rosc encode+decode", |b| {
        b.iter(|| {
            rbuf.clear();
            rosc::encoder::encode_into(black_box(&packet), &mut rbuf).unwrap();
            black_box(rosc_read_all(&rosc::decoder::decode_udp(&rbuf).unwrap().1));
        })
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

criterion_group!(benches, message, bundle, apart);
criterion_main!(benches);
