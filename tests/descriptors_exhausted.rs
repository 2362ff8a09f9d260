//! A listener that cannot accept because the process has no file descriptor left waits
//! (it neither spins nor floods the log) and accepts the waiting peer once descriptors
//! are free again. Alone in its test binary: it lowers the process's descriptor limit.

use rosco::dispatch::{Flow, MsgInfo};
use rosco::osc::{encode_message, Arg, Message};
use rosco::runtime::{Event, LogLevel};
use rosco::{Context, ContextOptions, Mode};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn until(mut done: impl FnMut() -> bool) -> bool {
    let stop = Instant::now() + Duration::from_secs(5);
    while Instant::now() < stop && !done() {
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn a_listener_out_of_descriptors_waits_and_then_accepts() {
    let ctx = Context::new(ContextOptions {
        mode: Mode::Threaded,
        ..ContextOptions::default()
    })
    .unwrap();
    let accept_warnings = Arc::new(AtomicUsize::new(0));
    let w = accept_warnings.clone();
    ctx.set_log_callback(
        LogLevel::Warn,
        Some(move |_: LogLevel, text: &str| {
            if text.contains("accept") {
                w.fetch_add(1, Ordering::Relaxed);
            }
        }),
    );
    let connected = Arc::new(AtomicUsize::new(0));
    let c = connected.clone();
    ctx.set_event_callback(Some(move |e: &Event| {
        if let Event::Connected { .. } = e {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }));
    let received = Arc::new(AtomicUsize::new(0));
    let r = received.clone();
    ctx.methods()
        .add_method(Some("/after"), None, move |_: &Message<'_>, _: &MsgInfo| {
            r.fetch_add(1, Ordering::Relaxed);
            Flow::Handled
        })
        .unwrap();
    let rx = ctx.open("rx", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(rx).unwrap();

    // Leave no descriptor free: a low limit, then everything under it taken.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit`/`setrlimit` read and write the struct they are given.
    unsafe { assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0) };
    let low = libc::rlimit {
        rlim_cur: limit.rlim_cur.min(256),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &low), 0) };
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
    }
    // The connection completes in the kernel and waits in the listener's backlog. The
    // descriptor it needs is the last one freed.
    hog.pop();
    let peer = TcpStream::connect(("127.0.0.1", port));
    let before = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_millis(500));
    let spent = cpu_time() - before.0;
    let elapsed = before.1.elapsed();
    let warnings = accept_warnings.load(Ordering::Relaxed);
    let accepted = connected.load(Ordering::Relaxed);
    drop(hog);
    // SAFETY: as above.
    unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0) };
    let mut peer = peer.unwrap();

    assert_eq!(accepted, 0, "accepted without a descriptor?");
    assert!(warnings >= 1, "the failing accept was not reported");
    assert!(
        warnings <= 10,
        "{warnings} accept warnings in {elapsed:?}: the listener retries without pause"
    );
    assert!(
        spent < elapsed / 2,
        "{spent:?} of CPU in {elapsed:?} while accept failed: busy waiting"
    );
    assert!(until(|| connected.load(Ordering::Relaxed) == 1));
    let mut packet = Vec::new();
    encode_message("/after", &[Arg::Int(1)], &mut packet).unwrap();
    let mut frame = (packet.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&packet);
    peer.write_all(&frame).unwrap();
    assert!(until(|| received.load(Ordering::Relaxed) == 1));
}
