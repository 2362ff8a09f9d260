//! Arbitrary packets through a `Receiver` with a catch-all, a literal and two pattern
//! methods. Input: 8 bytes of `now` (an NTP timetag), one byte whose low bit turns bundle
//! queueing off and whose other bits place a split (in 4-byte words), then the bytes,
//! which the split cuts into two packets. Every message of an accepted packet must reach
//! the catch-all exactly once, now or at a far-future `run_due`; rejected packets are
//! counted as malformed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rosco::dispatch::{Dispatcher, Flow, MsgInfo};
use rosco::osc::{decode, Packet};
use rosco::receive::{ReceiveOptions, Receiver};
use rosco::TimeTag;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// The latest moment a timetag can name (the end of NTP era 1, in 2104).
const FAR_FUTURE: TimeTag = TimeTag::new(0x7FFF_FFFF, u32::MAX);

fuzz_target!(|data: &[u8]| {
    let Some((now, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((&control, rest)) = rest.split_first() else {
        return;
    };
    let now = TimeTag::from_bits(u64::from_be_bytes(*now));
    let (first, second) = rest.split_at((usize::from(control >> 1) * 4).min(rest.len()));

    let seen = Arc::new(AtomicUsize::new(0));
    let boundaries = Arc::new(AtomicUsize::new(0));
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
    d.add_method(Some("/{a,b}//x"), None, |m, _| {
        let _ = m.args().count();
        Flow::Handled
    })
    .unwrap();
    let (open, close) = (boundaries.clone(), boundaries.clone());
    d.set_bundle_callbacks(
        Some(Box::new(move |_| {
            open.fetch_add(1, Relaxed);
        })),
        Some(Box::new(move |_| {
            close.fetch_sub(1, Relaxed);
        })),
    );
    let options = ReceiveOptions {
        queue_bundles: control & 1 == 0,
        ..ReceiveOptions::default()
    };
    let mut r = Receiver::new(d, options);

    let (mut dispatched, mut expected, mut malformed) = (0, 0, 0);
    for packet in [first, second] {
        if packet.is_empty() {
            continue;
        }
        expected += decode(packet).map_or(0, messages);
        match r.receive(packet, MsgInfo::new(now), now) {
            Ok(n) => dispatched += n,
            Err(e) => {
                assert!(e.offset <= packet.len());
                malformed += 1;
            }
        }
    }
    dispatched += r.run_due(FAR_FUTURE);
    assert_eq!(r.held(), 0);
    assert_eq!(r.next_deadline(), None);
    let stats = r.stats();
    assert_eq!(stats.malformed, malformed);
    assert_eq!(stats.messages, dispatched as u64);
    assert_eq!(dispatched, expected, "every message delivered once");
    assert_eq!(
        seen.load(Relaxed),
        expected,
        "the catch-all saw every message"
    );
    assert_eq!(
        boundaries.load(Relaxed),
        0,
        "bundle starts and ends pair up"
    );
});

fn messages(p: Packet<'_>) -> usize {
    match p {
        Packet::Message(_) => 1,
        Packet::Bundle(b) => b.elements().map(messages).sum(),
    }
}
