//! Values at the edges of their ranges, from peers and from callers (timestamps, timeouts,
//! option values): refused with an error or taken to mean "never", and never a panic or
//! a busy loop.

use rosco::o2lite::message::{encode_udp, O2Arg};
use rosco::osc::{Arg, PacketWriter};
use rosco::runtime::{Event, MAX_QUEUE_CAPACITY};
use rosco::{Context, ContextOptions, Error, Mode, TimeTag};
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

include!("support/contexts.rs");
use contexts::{context, counter};

/// Polls `ctx` until `done` or 5 s pass; every poll must succeed.
fn until(ctx: &Context, mut done: impl FnMut() -> bool) -> bool {
    let stop = Instant::now() + Duration::from_secs(5);
    while Instant::now() < stop && !done() {
        ctx.poll(Some(Duration::from_millis(10))).unwrap();
    }
    done()
}

#[test]
fn an_o2lite_host_takes_timestamps_too_far_to_represent() {
    for mode in [Mode::Poll, Mode::Threaded] {
        let host = context(mode);
        let ch = host.open("host", "o2lite-host://edge?mdns=0").unwrap();
        host.o2_service_add(ch, "svc").unwrap();
        let got = counter(&host, "/svc/x");
        let udp = host.o2_udp_port(ch).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Anyone can send these: each once crashed the host's loop on every turn.
        for timestamp in [f64::INFINITY, 1e300, 1e19] {
            let mut datagram = Vec::new();
            encode_udp(&mut datagram, timestamp, b"/svc/x", [O2Arg::Int(1)]).unwrap();
            peer.send_to(&datagram, ("127.0.0.1", udp)).unwrap();
        }
        let mut now = Vec::new();
        encode_udp(&mut now, 0.0, b"/svc/x", [O2Arg::Int(2)]).unwrap();
        peer.send_to(&now, ("127.0.0.1", udp)).unwrap();
        assert!(
            until(&host, || got.load(Ordering::Relaxed) >= 1),
            "{mode:?}"
        );
        host.poll(Some(Duration::from_millis(50))).unwrap();
        assert_eq!(
            got.load(Ordering::Relaxed),
            1,
            "{mode:?}: only the timely one"
        );
    }
}

#[test]
fn the_longest_timeouts_mean_never() {
    // A peer leaving half a frame under a stall timeout too long to add to a time.
    let ctx = Context::new(ContextOptions {
        stall_timeout: Duration::MAX,
        ..ContextOptions::default()
    })
    .unwrap();
    let got = counter(&ctx, "/whole");
    let rx = ctx.open("rx", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(rx).unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(&[0, 0]).unwrap();
    for _ in 0..5 {
        ctx.poll(Some(Duration::from_millis(10))).unwrap();
    }
    let tx = ctx
        .open("tx", &format!("osc.tcp://127.0.0.1:{port}"))
        .unwrap();
    ctx.send(tx, "/whole", &[Arg::Int(1)]).unwrap();
    // Waits as long as it must, and no longer: the message is there.
    assert_eq!(ctx.poll(Some(Duration::MAX)).unwrap(), 1);
    assert_eq!(got.load(Ordering::Relaxed), 1);
    ctx.flush(tx, Duration::MAX).unwrap();

    let io = context(Mode::IoThread);
    let got = counter(&io, "/whole");
    io.send_to("_local", "/whole", &[]).unwrap();
    assert_eq!(io.poll(Some(Duration::MAX)).unwrap(), 1);
    assert_eq!(got.load(Ordering::Relaxed), 1);
}

#[test]
fn a_threaded_poll_without_timeout_waits_until_the_context_closes() {
    let ctx = Arc::new(context(Mode::Threaded));
    // Timed from here: the thread may start late, but it cannot end before the shutdown.
    let start = Instant::now();
    let waiting = {
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let result = ctx.poll(None);
            (result.map_err(|e| e.to_string()), start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(!waiting.is_finished(), "poll(None) returned at once");
    ctx.shutdown();
    let (result, waited) = waiting.join().unwrap();
    // Closed while it waited, nothing dispatched: as a call after the shutdown.
    assert_eq!(result, Err(Error::Closed.to_string()));
    assert!(waited >= Duration::from_millis(200));
}

#[test]
fn out_of_range_options_are_refused() {
    for queue_capacity in [MAX_QUEUE_CAPACITY + 1, usize::MAX] {
        let refused = Context::new(ContextOptions {
            queue_capacity,
            ..ContextOptions::default()
        });
        assert!(
            matches!(refused, Err(Error::BadOption(_))),
            "queue_capacity {queue_capacity}"
        );
    }
}

#[test]
fn a_zero_reconnect_wait_does_not_retry_every_turn() {
    let mut options = ContextOptions {
        mode: Mode::Threaded,
        ..ContextOptions::default()
    };
    options.reconnect.initial = Duration::ZERO;
    options.reconnect.max = Duration::ZERO;
    let ctx = Context::new(options).unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    ctx.set_event_callback(Some(move |e: &Event| {
        if let Event::Reconnecting { .. } = e {
            a.fetch_add(1, Ordering::Relaxed);
        }
    }));
    // A port nothing listens on any more: every attempt is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ctx.open("nowhere", &format!("osc.tcp://127.0.0.1:{port}"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let n = attempts.load(Ordering::Relaxed);
    // At least 10 ms apart (`MIN_RECONNECT_WAIT`): some 30 at most.
    assert!((1..=40).contains(&n), "{n} reconnect attempts in 300 ms");
}

#[test]
fn far_future_bundles_are_held_up_to_a_bound() {
    for mode in [Mode::Poll, Mode::IoThread] {
        let mut options = ContextOptions {
            mode,
            ..ContextOptions::default()
        };
        options.receive.max_held_bytes = 1000;
        let ctx = Context::new(options).unwrap();
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        ctx.set_event_callback(Some(move |e: &Event| {
            if let Event::Dropped { .. } = e {
                d.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let rx = ctx.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
        let port = ctx.port(rx).unwrap();
        // Anyone can send bundles timed years ahead.
        let mut bundle = Vec::new();
        let mut w = PacketWriter::new(&mut bundle);
        w.begin_bundle(TimeTag::now() + Duration::from_secs(5 * 365 * 86_400))
            .unwrap();
        w.message("/later", &[Arg::Blob(&[0; 100])]).unwrap();
        w.end_bundle().unwrap();
        w.finish().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..20 {
            peer.send_to(&bundle, ("127.0.0.1", port)).unwrap();
        }
        let fits = 1000 / bundle.len();
        assert!(until(&ctx, || ctx.stats(rx).unwrap().packets_in == 20));
        assert!(until(&ctx, || dropped.load(Ordering::Relaxed) == 20 - fits));
        assert_eq!(
            ctx.stats(rx).unwrap().dropped,
            (20 - fits) as u64,
            "{mode:?}"
        );
    }
}
