//! Dispatch cost with 1, 100 and 10,000 literal methods, and with pattern addresses.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use rosco::dispatch::{DispatchScratch, Dispatcher, Flow, MsgInfo};
use rosco::osc::{decode, encode_message, Arg, Packet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn table(n: usize, hits: &Arc<AtomicU64>) -> Dispatcher {
    let d = Dispatcher::new();
    for i in 0..n {
        let hits = hits.clone();
        d.add_method(
            Some(&format!("/synth/{i}/freq")),
            Some("ifs"),
            move |_, _| {
                hits.fetch_add(1, Ordering::Relaxed);
                Flow::Handled
            },
        )
        .unwrap();
    }
    d
}

fn bench(c: &mut Criterion, group: &str, address: impl Fn(usize) -> String) {
    let mut g = c.benchmark_group(group);
    for n in [1usize, 100, 10_000] {
        let hits = Arc::new(AtomicU64::new(0));
        let d = table(n, &hits);
        let mut buf = Vec::new();
        encode_message(
            address(n),
            &[Arg::Int(440), Arg::Float(0.5), Arg::Str(b"sine")],
            &mut buf,
        )
        .unwrap();
        let Packet::Message(m) = decode(&buf).unwrap() else {
            unreachable!()
        };
        let info = MsgInfo::default();
        let mut scratch = DispatchScratch::default();
        // The address reaches a method, whether or not a filter skips the measurement.
        let called = d.dispatch(&m, &info, &mut scratch);
        assert!(called > 0);
        assert_eq!(hits.load(Ordering::Relaxed), called as u64);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| d.dispatch(black_box(&m), &info, &mut scratch))
        });
    }
    g.finish();
}

fn literal(c: &mut Criterion) {
    bench(c, "dispatch literal (1 of N methods)", |n| {
        format!("/synth/{}/freq", n - 1)
    });
}

fn pattern(c: &mut Criterion) {
    bench(c, "dispatch pattern /synth/[0-9]/freq (N methods)", |_| {
        "/synth/[0-9]/freq".into()
    });
}

criterion_group!(benches, literal, pattern);
criterion_main!(benches);
