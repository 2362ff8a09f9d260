//! Encode + decode against the `rosc` crate, measured in the same run.
//!
//! rosco encodes into a reused buffer and decodes zero-copy (the decode also validates the
//! whole packet, and the benchmark reads every argument). rosc is given its best case: a
//! packet value built once outside the loop, `encode_into` a reused buffer, `decode_udp`;
//! a second rosc figure builds the message value each time, as a sender does.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use rosco::osc::{decode, encode_message, Arg, Packet, PacketWriter};
use rosco::TimeTag;

fn read_all(p: &Packet<'_>) -> usize {
    match p {
        Packet::Message(m) => m.args().map(|a| black_box(a).tag() as usize).sum(),
        Packet::Bundle(b) => b.elements().map(|e| read_all(&e)).sum(),
    }
}

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
            read_all(&decode(black_box(&buf)).unwrap())
        })
    });
    let packet = OscPacket::Message(rosc_message());
    let mut rbuf = Vec::new();
    g.bench_function("rosc encode+decode", |b| {
        b.iter(|| {
            rbuf.clear();
            rosc::encoder::encode_into(black_box(&packet), &mut rbuf).unwrap();
            black_box(rosc::decoder::decode_udp(black_box(&rbuf)).unwrap());
        })
    });
    // What a rosc user pays per send: the message value is built (String, Vec) each time.
    g.bench_function("rosc build+encode+decode", |b| {
        b.iter(|| {
            rbuf.clear();
            let packet = OscPacket::Message(black_box(rosc_message()));
            rosc::encoder::encode_into(&packet, &mut rbuf).unwrap();
            black_box(rosc::decoder::decode_udp(black_box(&rbuf)).unwrap());
        })
    });
    g.finish();
}

fn bundle(c: &mut Criterion) {
    let mut g = c.benchmark_group("bundle of 10 messages");
    let mut buf = Vec::new();
    let tt = TimeTag::new(0xe8e1_f480, 0x8000_0000);
    g.bench_function("rosco encode+decode", |b| {
        b.iter(|| {
            let mut w = PacketWriter::new(&mut buf);
            w.begin_bundle(tt).unwrap();
            for _ in 0..10 {
                w.message(black_box("/synth/1/freq"), black_box(&ARGS))
                    .unwrap();
            }
            w.end_bundle().unwrap();
            w.finish().unwrap();
            read_all(&decode(black_box(&buf)).unwrap())
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
            black_box(rosc::decoder::decode_udp(black_box(&rbuf)).unwrap());
        })
    });
    g.finish();
}

criterion_group!(benches, message, bundle);
criterion_main!(benches);
