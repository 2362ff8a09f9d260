//! `rosco demo`: a self-contained loopback run showing messages, pattern dispatch and a
//! timed bundle arriving on time.

use rosco::dispatch::{Dispatcher, Flow, MsgInfo};
use rosco::osc::{encode_message, Arg, PacketWriter, Text};
use rosco::receive::{ReceiveOptions, Receiver};
use rosco::TimeTag;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUNDLE_DELAY: Duration = Duration::from_millis(300);
const COARSE_TIMER_SLACK: Duration = Duration::from_millis(20);

pub(crate) fn run() -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let rx = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
    let tx = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
    let port = rx.local_addr().map_err(io)?.port();
    println!("receiver listening on osc.udp://127.0.0.1:{port}/");

    let dispatcher = Arc::new(Dispatcher::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let add = |address: &str, typespec: Option<&str>, label: &'static str| {
        let calls = calls.clone();
        dispatcher
            .add_method(Some(address), typespec, move |m, info: &MsgInfo| {
                calls.fetch_add(1, Ordering::Relaxed);
                let when = match info.bundle_time {
                    Some(t) => late_by(t),
                    None => String::new(),
                };
                println!("  {label:<28} <- {}{when}", Text(m));
                Flow::Handled
            })
            .map_err(|e| e.to_string())
    };
    add("/synth/1/freq", Some("f"), "method /synth/1/freq (f)")?;
    add("/synth/2/freq", Some("f"), "method /synth/2/freq (f)")?;
    add("/synth/*/gate", None, "pattern method /synth/*/gate")?;
    let mut receiver = Receiver::new(dispatcher, ReceiveOptions::default());

    let mut buf = Vec::new();
    let send = |buf: &[u8]| tx.send_to(buf, ("127.0.0.1", port)).map(|_| ()).map_err(io);

    let singles: [(&str, &str, Arg<'_>); 3] = [
        (
            "/synth/1/freq",
            "440.0 (a literal address)",
            Arg::Float(440.0),
        ),
        (
            "/synth/{1,2}/freq",
            "220 (a pattern address; the int is coerced to f)",
            Arg::Int(220),
        ),
        (
            "/synth/7/gate",
            "1 (reaches a method registered with a pattern)",
            Arg::Int(1),
        ),
    ];
    for (address, what, arg) in singles {
        println!("\nsending {address} {what}:");
        encode_message(address, &[arg], &mut buf).map_err(|e| e.to_string())?;
        send(&buf)?;
        pump(
            &rx,
            &mut receiver,
            Instant::now() + Duration::from_millis(200),
            1,
        )?;
    }

    let at = TimeTag::after(BUNDLE_DELAY);
    println!(
        "\nsending a bundle timed {} ms from now ({at}):",
        BUNDLE_DELAY.as_millis()
    );
    let mut w = PacketWriter::new(&mut buf);
    let bundle = (|| {
        w.begin_bundle(at)?;
        w.message("/synth/1/freq", &[Arg::Float(880.0)])?;
        w.message("/synth/1/gate", &[Arg::Int(0)])?;
        w.end_bundle()?;
        w.finish()
    })();
    bundle.map_err(|e| e.to_string())?;
    send(&buf)?;
    pump(&rx, &mut receiver, Instant::now() + BUNDLE_DELAY * 3, 2)?;

    let stats = receiver.stats();
    println!(
        "\n{} packets, {} messages, {} held bundle(s), {} late, {} malformed",
        stats.packets, stats.messages, stats.held, stats.late, stats.malformed
    );
    if calls.load(Ordering::Relaxed) != 6 {
        return Err(format!(
            "expected 6 callbacks, saw {}",
            calls.load(Ordering::Relaxed)
        ));
    }
    o2lite()
}

/// An O2lite host and client in one process: connect, clock sync, a timestamped message
/// held by the host until its time.
fn o2lite() -> Result<(), String> {
    use rosco::runtime::Event;
    use rosco::{Context, ContextOptions, Mode};
    let err = |e: rosco::Error| e.to_string();
    println!("\nO2lite: a host and a client in this process");
    let host = Context::new(ContextOptions {
        mode: Mode::Threaded,
        ..ContextOptions::default()
    })
    .map_err(err)?;
    let h = host
        .open("host", "o2lite-host://rosco-demo?mdns=0")
        .map_err(err)?;
    let (port, udp) = (
        host.port(h).map_err(err)?,
        host.o2_udp_port(h).map_err(err)?,
    );
    println!("  host for ensemble 'rosco-demo' on TCP {port}, UDP {udp}");
    let client = Context::new(ContextOptions::default()).map_err(err)?;
    let synced = Arc::new(AtomicUsize::new(0));
    let s = synced.clone();
    client.set_event_callback(Some(move |e: &Event| {
        if let Event::O2Client { event, .. } = e {
            println!("  client: {event:?}");
            if let rosco::o2lite::client::ClientEvent::Synced { .. } = event {
                s.store(1, Ordering::Relaxed);
            }
        }
    }));
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    let url = rosco::runtime::o2lite_url("rosco-demo", Some(&format!("127.0.0.1:{port}:{udp}")))
        .map_err(|e| e.to_string())?;
    let c = client.open("o2", &url).map_err(err)?;
    client.o2_service_add(c, "synth").map_err(err)?;
    let clock = client.sender();
    client
        .methods()
        .add_method(Some("/synth/note"), None, move |m, info| {
            let due = info.o2.map_or(0.0, |o| o.timestamp);
            let now = clock.o2_time(c).unwrap_or(-1.0);
            println!(
                "  client <- {}   (timestamp {due:.4}, arrived at global time {now:.4})",
                Text(m)
            );
            g.fetch_add(1, Ordering::Relaxed);
            Flow::Handled
        })
        .map_err(|e| e.to_string())?;
    let stop = Instant::now() + Duration::from_secs(5);
    while synced.load(Ordering::Relaxed) == 0 && Instant::now() < stop {
        client.poll(Some(Duration::from_millis(10))).map_err(err)?;
    }
    let due = host.o2_time(h).map_err(err)? + 0.25;
    println!("  host sends /synth/note timestamped {due:.4} (250 ms ahead); the host holds it");
    host.o2_send(
        h,
        due,
        true,
        "/synth/note",
        &[Arg::Int(60), Arg::Float(0.8)],
    )
    .map_err(err)?;
    while got.load(Ordering::Relaxed) == 0 && Instant::now() < stop {
        client.poll(Some(Duration::from_millis(10))).map_err(err)?;
    }
    match got.load(Ordering::Relaxed) {
        1 => Ok(()),
        _ => Err("the O2lite message did not arrive".into()),
    }
}

/// Receives and delivers until `want` messages were dispatched or the deadline passes,
/// waking for held bundles on time.
fn pump(
    rx: &UdpSocket,
    receiver: &mut Receiver,
    until: Instant,
    want: usize,
) -> Result<(), String> {
    let mut packet = [0u8; 65_536];
    let mut seen = 0;
    while seen < want {
        let now = Instant::now();
        if now >= until {
            return Err(format!("timed out: {seen} of {want} messages arrived"));
        }
        let mut wait = until - now;
        if let Some(deadline) = receiver.next_deadline() {
            let until_due = deadline.duration_since(TimeTag::now()).unwrap_or_default();
            // Socket timeouts overshoot by several kernel ticks, more for long ones: wait on
            // the socket in short steps until shortly before the deadline, then sleep the
            // rest precisely.
            if until_due <= COARSE_TIMER_SLACK {
                std::thread::sleep(until_due);
                seen += receiver.run_due(TimeTag::now());
                continue;
            }
            wait = wait
                .min(until_due - COARSE_TIMER_SLACK)
                .min(COARSE_TIMER_SLACK / 2);
        }
        rx.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
        if let Ok((n, from)) = rx.recv_from(&mut packet) {
            let info = MsgInfo::new(TimeTag::now()).with_source(Some(from));
            match receiver.receive(&packet[..n], info, TimeTag::now()) {
                Ok(dispatched) => seen += dispatched,
                Err(e) => println!("  malformed packet from {from}: {e}"),
            }
        }
        seen += receiver.run_due(TimeTag::now());
    }
    Ok(())
}

/// How far after its timetag a bundle is being delivered.
fn late_by(t: TimeTag) -> String {
    match TimeTag::now().duration_since(t) {
        Some(late) => format!(
            "   (bundle time {t}, delivered {:.3} ms after it)",
            late.as_secs_f64() * 1e3
        ),
        None => format!("   (bundle time {t}, delivered early!)"),
    }
}
