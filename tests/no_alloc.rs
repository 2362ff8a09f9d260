//! Proves that the hot paths allocate nothing per message once their buffers have grown:
//! encode, decode, framing, dispatch (literal, pattern, coerced), the receive path, a UDP
//! send through a `Context`, and an O2lite client's sends (UDP and TCP).
//! A counting global allocator counts allocations made on the armed thread only.

use rosco::dispatch::{DispatchScratch, Dispatcher, Flow, MsgInfo};
use rosco::osc::{
    decode, encode_frame, encode_message, Arg, DeframeMode, Deframer, Framing, Packet, PacketWriter,
};
use rosco::receive::{ReceiveOptions, Receiver};
use rosco::TimeTag;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` once to warm up buffers, then 1,000 times counting allocations.
fn allocations(mut f: impl FnMut()) -> u64 {
    f();
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    for _ in 0..1000 {
        f();
    }
    ARMED.with(|a| a.set(false));
    COUNT.with(Cell::get)
}

const ARGS: [Arg<'static>; 3] = [Arg::Int(440), Arg::Float(0.5), Arg::Str(b"sine")];

fn message_bytes(address: &str, args: &[Arg<'_>]) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_message(address, args, &mut buf).unwrap();
    buf
}

#[test]
fn encode_and_decode() {
    let mut buf = Vec::new();
    assert_eq!(
        allocations(|| encode_message("/synth/1/freq", &ARGS, &mut buf).unwrap()),
        0
    );
    let tt = TimeTag::new(0xe8e1_f480, 0);
    assert_eq!(
        allocations(|| {
            let mut w = PacketWriter::new(&mut buf);
            w.begin_bundle(tt).unwrap();
            for _ in 0..10 {
                w.message("/synth/1/freq", &ARGS).unwrap();
            }
            w.end_bundle().unwrap();
            w.finish().unwrap();
        }),
        0
    );
    let bundle = buf.clone();
    assert_eq!(
        allocations(|| {
            let Packet::Bundle(b) = decode(&bundle).unwrap() else {
                panic!()
            };
            for e in b.elements() {
                let Packet::Message(m) = e else { panic!() };
                assert_eq!(m.args().count(), 3);
            }
        }),
        0
    );
}

#[test]
fn stream_framing() {
    let packet = message_bytes("/synth/1/freq", &ARGS);
    for framing in [Framing::LengthPrefix, Framing::Slip] {
        let mut stream = Vec::new();
        let mut deframer = Deframer::new(DeframeMode::Fixed(framing), 1 << 20);
        assert_eq!(
            allocations(|| {
                stream.clear();
                encode_frame(framing, &packet, &mut stream);
                deframer.push(&stream);
                assert_eq!(deframer.next_frame().unwrap().unwrap(), &packet[..]);
            }),
            0,
            "{framing:?}"
        );
    }
}

#[test]
fn dispatch() {
    let hits = Arc::new(AtomicU64::new(0));
    let d = Dispatcher::new();
    for i in 0..10_000 {
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
    let info = MsgInfo::default();
    let mut scratch = DispatchScratch::default();
    for (address, args) in [
        ("/synth/9999/freq", &ARGS[..]),
        ("/synth/99[0-9]/freq", &ARGS[..]),
        // Coerced to ,ifs from ,hdS.
        (
            "/synth/5/freq",
            &[Arg::Long(440), Arg::Double(0.5), Arg::Symbol(b"sine")][..],
        ),
    ] {
        let buf = message_bytes(address, args);
        let Packet::Message(m) = decode(&buf).unwrap() else {
            panic!()
        };
        let before = hits.load(Ordering::Relaxed);
        assert_eq!(
            allocations(|| assert!(d.dispatch(&m, &info, &mut scratch) > 0)),
            0,
            "{address}"
        );
        assert!(hits.load(Ordering::Relaxed) > before);
    }
}

#[test]
fn receive_path() {
    let d = Arc::new(Dispatcher::new());
    d.add_method(Some("/synth/1/freq"), None, |_, _| Flow::Handled)
        .unwrap();
    let mut r = Receiver::new(d, ReceiveOptions::default());
    let mut buf = Vec::new();
    let mut w = PacketWriter::new(&mut buf);
    w.begin_bundle(TimeTag::IMMEDIATE).unwrap();
    w.message("/synth/1/freq", &ARGS).unwrap();
    w.end_bundle().unwrap();
    w.finish().unwrap();
    let now = TimeTag::now();
    assert_eq!(
        allocations(|| assert_eq!(r.receive(&buf, MsgInfo::new(now), now), Ok(1))),
        0
    );
}

#[test]
fn context_udp_send() {
    // The audio-thread path: encode into the thread's buffer, look the channel up under a
    // read lock, sendto. Nothing allocates once the buffer has grown.
    let ctx = rosco::Context::new(rosco::ContextOptions::default()).unwrap();
    let rx = ctx.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let tx = ctx
        .open(
            "tx",
            &format!("osc.udp://127.0.0.1:{}", ctx.port(rx).unwrap()),
        )
        .unwrap();
    let sender = ctx.sender();
    assert_eq!(
        allocations(|| sender.send(tx, "/synth/1/freq", &ARGS).unwrap()),
        0
    );
    assert_eq!(ctx.stats(tx).unwrap().packets_out, 1001);
}

#[test]
fn context_o2lite_client_send() {
    // An O2lite client sending to its host, by UDP and by TCP: the OSC arguments are
    // converted on the fly and the O2 datagram or frame is written into the thread's
    // buffer. The host runs on loopback only (no mDNS).
    let opts = || rosco::ContextOptions {
        mode: rosco::Mode::Threaded,
        ..rosco::ContextOptions::default()
    };
    let host = rosco::Context::new(opts()).unwrap();
    let host_ch = host
        .open("host", "o2lite-host://rosco-alloc?mdns=0")
        .unwrap();
    host.o2_service_add(host_ch, "server").unwrap();
    // Counts per transport: [UDP, TCP].
    let received = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    for (i, address) in ["/server/udp", "/server/tcp"].into_iter().enumerate() {
        let r = received.clone();
        host.methods()
            .add_method(Some(address), None, move |_, _| {
                r[i].fetch_add(1, Ordering::Relaxed);
                Flow::Handled
            })
            .unwrap();
    }
    let client = rosco::Context::new(opts()).unwrap();
    let url = format!(
        "o2lite://rosco-alloc@127.0.0.1:{}?udp_port={}",
        host.port(host_ch).unwrap(),
        host.o2_udp_port(host_ch).unwrap()
    );
    let ch = client.open("o2", &url).unwrap();
    let connected = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while client.o2_bridge_id(ch).unwrap().is_none() {
        assert!(
            std::time::Instant::now() < connected,
            "the client never joined"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for (reliable, address) in [(false, "/server/udp"), (true, "/server/tcp")] {
        let send = || client.o2_send(ch, 0.0, reliable, address, &ARGS).unwrap();
        assert_eq!(allocations(send), 0, "reliable: {reliable}");
    }
    // What was sent arrives: every TCP message; UDP datagrams too, unless the host's
    // socket queue overflowed during the burst.
    let arrived = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while received[1].load(Ordering::Relaxed) < 1001 && std::time::Instant::now() < arrived {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(received[1].load(Ordering::Relaxed), 1001);
    assert!(received[0].load(Ordering::Relaxed) > 0);
}
