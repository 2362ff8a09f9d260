//! O2lite over loopback sockets: a rosco client and a rosco host, each in its own context
//! (as two processes would be), in every threading mode of the client.

use rosco::dispatch::{Flow, MsgInfo};
use rosco::o2lite::client::ClientEvent;
use rosco::o2lite::host::HostEvent;
use rosco::osc::{Arg, Message};
use rosco::runtime::Event;
use rosco::{ChannelId, Context, Mode};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

include!("support/hex.rs");

include!("support/contexts.rs");
use contexts::{context, count, events, Events};

/// Records (address, typetags, args, O2 timestamp, reliable, global time at arrival).
type Log = Arc<Mutex<Vec<(String, String, Vec<String>, f64, bool)>>>;

fn record(ctx: &Context, pattern: &str) -> Log {
    let log = Log::default();
    let l = log.clone();
    ctx.methods()
        .add_method(
            Some(pattern),
            None,
            move |m: &Message<'_>, info: &MsgInfo| {
                let o2 = info.o2.expect("an O2 message");
                l.lock().unwrap().push((
                    m.address_str().unwrap().to_string(),
                    String::from_utf8_lossy(m.typetags()).into(),
                    m.args().map(|a| format!("{a:?}")).collect(),
                    o2.timestamp,
                    o2.reliable,
                ));
                Flow::Handled
            },
        )
        .unwrap();
    log
}

/// Polls the client context until `done` or 10 s pass (the host runs on its own thread).
fn until(ctxs: &[&Context], mut done: impl FnMut() -> bool) -> bool {
    let stop = Instant::now() + Duration::from_secs(10);
    let client = ctxs[ctxs.len() - 1];
    while Instant::now() < stop {
        if done() {
            return true;
        }
        client.poll(Some(Duration::from_millis(2))).unwrap();
    }
    done()
}

/// The timetag of a time argument as recorded (`Time(TimeTag(ssssssss.ffffffff))`).
fn time_arg(recorded: &str) -> rosco::TimeTag {
    let hex = recorded
        .strip_prefix("Time(TimeTag(")
        .and_then(|t| t.strip_suffix("))"))
        .unwrap_or_else(|| panic!("not a time argument: {recorded}"));
    let (s, f) = hex.split_once('.').unwrap();
    let part = |p| u32::from_str_radix(p, 16).unwrap();
    rosco::TimeTag::new(part(s), part(f))
}

fn is_synced(e: &Event) -> bool {
    matches!(
        e,
        Event::O2Client {
            event: ClientEvent::Synced { .. },
            ..
        }
    )
}

struct Setup {
    host: Context,
    client: Context,
    host_ch: ChannelId,
    client_ch: ChannelId,
    host_events: Events,
    client_events: Events,
    port: u16,
    udp: u16,
}

impl Setup {
    /// Waits until the client has synchronised its clock `times` times.
    fn wait_synced(&self, times: usize) {
        assert!(
            until(&[&self.host, &self.client], || count(
                &self.client_events,
                is_synced
            ) == times),
            "not synchronised {times} time(s)"
        );
    }
}

/// How closely the synchronised clocks must agree. A few microseconds on an idle machine
/// (printed); the estimate is as good as the fastest of five round trips, which a loaded
/// machine can all slow (2 ms seen), so the bound leaves room. Accuracy against known
/// delays is the clock module's unit tests' business.
const CLOCK_TOLERANCE: f64 = 0.02;

fn setup(mode: Mode) -> Setup {
    // The host runs on its own thread, as a separate host process would.
    let host = context(Mode::Threaded);
    let host_events = events(&host);
    let host_ch = host
        .open("host", "o2lite-host://rosco-test?mdns=0")
        .unwrap();
    let port = host.port(host_ch).unwrap();
    let udp = host.o2_udp_port(host_ch).unwrap();
    host.o2_service_add(host_ch, "server").unwrap();
    // The client's clock starts this much after the host's: unsynchronised, it would be
    // off by as much, far outside CLOCK_TOLERANCE.
    std::thread::sleep(Duration::from_millis(200));
    let client = context(mode);
    let client_events = events(&client);
    let url = format!("o2lite://rosco-test@127.0.0.1:{port}?udp_port={udp}&backoff_ms=50");
    let client_ch = client.open("o2", &url).unwrap();
    client.o2_service_add(client_ch, "client").unwrap();
    Setup {
        host,
        client,
        host_ch,
        client_ch,
        host_events,
        client_events,
        port,
        udp,
    }
}

/// A timestamp that is no time (NaN, infinite, negative) is refused on both sides, synced
/// or not, rather than sent on for the host to hold or deliver at random.
#[test]
fn timestamps_that_are_no_time_are_refused() {
    let s = setup(Mode::Poll);
    s.wait_synced(1);
    for t in [f64::NAN, f64::INFINITY, -1.0] {
        for (ctx, ch) in [(&s.client, s.client_ch), (&s.host, s.host_ch)] {
            let sent = ctx.o2_send(ch, t, true, "/server/t", &[]);
            assert!(
                matches!(sent, Err(rosco::Error::Unsupported(_))),
                "{t}: {sent:?}"
            );
        }
    }
}

/// A host whose `/server/*` methods record their addresses and close it at `closer`; the
/// events reported after the close are kept apart. `/server/fill` queues 12 MB for the
/// client's service `mine`.
struct ClosingHost {
    ctx: Arc<Context>,
    port: u16,
    got: Arc<Mutex<Vec<String>>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
    after: Events,
}

fn closing_host(mode: Mode, closer: &'static str) -> ClosingHost {
    use std::sync::atomic::Ordering;
    let ctx = Arc::new(context(mode));
    let host = ctx.open("host", "o2lite-host://closing?mdns=0").unwrap();
    ctx.o2_service_add(host, "server").unwrap();
    let port = ctx.port(host).unwrap();
    let got = Arc::<Mutex<Vec<String>>>::default();
    let closed = Arc::<std::sync::atomic::AtomicBool>::default();
    let (g, c, me) = (got.clone(), closed.clone(), Arc::downgrade(&ctx));
    ctx.methods()
        .add_method(
            Some("/server/*"),
            None,
            move |m: &Message<'_>, _: &MsgInfo| {
                let address = m.address_str().unwrap().to_string();
                let Some(ctx) = me.upgrade() else {
                    return Flow::Handled;
                };
                if address == "/server/fill" {
                    let blob = vec![7; 60_000];
                    for _ in 0..200 {
                        let _ = ctx.o2_send(host, 0.0, true, "/mine/x", &[Arg::Blob(&blob)]);
                    }
                }
                if address == closer {
                    ctx.close(host).unwrap();
                    c.store(true, Ordering::SeqCst);
                }
                g.lock().unwrap().push(address);
                Flow::Handled
            },
        )
        .unwrap();
    let after = Events::default();
    let (a, c) = (after.clone(), closed.clone());
    ctx.set_event_callback(Some(move |e: &Event| {
        if c.load(Ordering::SeqCst) {
            a.lock().unwrap().push(e.clone());
        }
    }));
    ClosingHost {
        ctx,
        port,
        got,
        closed,
        after,
    }
}

/// A host channel closed by a callback handles nothing more and reports nothing about its
/// clients: not the rest of what it read, not messages it held that came due with the
/// closing one, not a client whose output it still owed.
#[test]
fn a_host_closed_by_a_callback_handles_nothing_more() {
    use rosco::o2lite::message::{encode_tcp, O2Arg};
    use std::sync::atomic::Ordering;
    let con = || {
        let mut frames = Vec::new();
        let args = [O2Arg::Str(b"7f000001"), O2Arg::Int(9)];
        encode_tcp(&mut frames, 0.0, b"!_o2/o2lite/con", args).unwrap();
        frames
    };
    let run = |h: &ClosingHost, frames: &[u8], want: &[&str], case: &str| {
        let mut peer = std::net::TcpStream::connect(("127.0.0.1", h.port)).unwrap();
        peer.write_all(frames).unwrap();
        assert!(
            until(&[&h.ctx], || h.closed.load(Ordering::SeqCst)),
            "{case}"
        );
        let settle = Instant::now() + Duration::from_millis(200);
        while Instant::now() < settle {
            h.ctx.poll(Some(Duration::from_millis(10))).unwrap();
        }
        assert_eq!(*h.got.lock().unwrap(), want, "{case}");
        assert!(h.after.lock().unwrap().is_empty(), "{case}: {:?}", h.after);
    };
    for mode in [Mode::Poll, Mode::Threaded] {
        let h = closing_host(mode, "/server/a");
        let mut frames = con();
        for address in [&b"!server/a"[..], b"!server/b", b"!server/c"] {
            encode_tcp(&mut frames, 0.0, address, [O2Arg::Int(1)]).unwrap();
        }
        run(&h, &frames, &["/server/a"], &format!("{mode:?}: one read"));

        let h = closing_host(mode, "/server/a");
        let due = h.ctx.o2_time(h.ctx.channel_id("host").unwrap()).unwrap() + 0.3;
        let mut frames = con();
        for address in [&b"!server/a"[..], b"!server/b"] {
            encode_tcp(&mut frames, due, address, [O2Arg::Int(1)]).unwrap();
        }
        run(&h, &frames, &["/server/a"], &format!("{mode:?}: held"));
    }
    // A client that never reads, owed output when the host closes.
    let h = closing_host(Mode::Poll, "/server/close");
    let mut frames = con();
    let sv = [
        O2Arg::Str(b"mine"),
        O2Arg::Int(1),
        O2Arg::Int(1),
        O2Arg::Str(b""),
        O2Arg::Int(0),
    ];
    encode_tcp(&mut frames, 0.0, b"!_o2/o2lite/sv", sv).unwrap();
    encode_tcp(&mut frames, 0.0, b"!server/fill", [O2Arg::Int(1)]).unwrap();
    encode_tcp(&mut frames, 0.0, b"!server/close", [O2Arg::Int(1)]).unwrap();
    run(
        &h,
        &frames,
        &["/server/fill", "/server/close"],
        "owed output",
    );
}

/// A client closed by the `Disconnected` callback of its session's loss (a host that never
/// answers `con`) reports nothing more: not the loss, not a reconnection.
#[test]
fn a_client_closed_as_its_host_is_lost_reports_nothing_more() {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let ctx = Arc::new(context(Mode::Poll));
    let c = ctx
        .open("c", &format!("o2lite://ens@127.0.0.1:{port}"))
        .unwrap();
    let (after, closed) = (Events::default(), Arc::new(AtomicBool::new(false)));
    let (a, cl, me) = (after.clone(), closed.clone(), Arc::downgrade(&ctx));
    ctx.set_event_callback(Some(move |e: &Event| {
        if cl.load(Ordering::SeqCst) {
            a.lock().unwrap().push(e.clone());
        } else if let (Event::Disconnected { .. }, Some(ctx)) = (e, me.upgrade()) {
            ctx.close(c).unwrap();
            cl.store(true, Ordering::SeqCst);
        }
    }));
    let (mut conn, _) = server.accept().unwrap();
    conn.set_nonblocking(true).unwrap();
    // `con` is read and never answered.
    assert!(until(&[&ctx], || {
        let _ = conn.read(&mut [0; 1024]);
        closed.load(Ordering::SeqCst)
    }));
    ctx.poll(Some(Duration::from_millis(50))).unwrap();
    assert!(after.lock().unwrap().is_empty(), "{after:?}");
}

/// A connection the host refuses for its first frame is not read on: the frames behind
/// that one, in the same read, are neither counted nor handled.
#[test]
fn frames_behind_a_refused_first_one_are_not_read() {
    let s = setup(Mode::Poll);
    let before = s.host.stats(s.host_ch).unwrap().packets_in;
    let mut peer = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    // A full O2 process's peer handshake (refused), then messages in the same write.
    let dy = "0000005400000001000000000000000021 5f6f322f6479002c7369737369696900000000726f73636f2d746573740000000200013030303030303030000000003766303030303031000000000000845900008875 00000036";
    let mut bytes = unhex(dy);
    for _ in 0..5 {
        bytes.extend_from_slice(&unhex("0000000c 2f6100002c000000 00000000"));
    }
    peer.write_all(&bytes).unwrap();
    let ended = |e: &Event| matches!(e, Event::Disconnected { .. });
    assert!(until(&[&s.host], || count(&s.host_events, ended) == 1));
    let read = s.host.stats(s.host_ch).unwrap().packets_in - before;
    assert_eq!(read, 1, "{:?}", s.host_events.lock().unwrap());
}

#[test]
fn client_and_host_exchange_messages_and_synchronise() {
    for mode in [Mode::Poll, Mode::IoThread, Mode::Threaded] {
        let s = setup(mode);
        let at_host = record(&s.host, "/server/*");
        let at_client = record(&s.client, "/client/*");
        let t0 = Instant::now();
        assert!(
            until(&[&s.host, &s.client], || count(&s.client_events, is_synced)
                == 1),
            "{mode:?}: no sync"
        );
        let sync_time = t0.elapsed();
        let joined = count(
            &s.host_events,
            |e| matches!(e, Event::O2Host { event: HostEvent::ServiceAdded { name }, .. } if name == "client"),
        );
        assert_eq!(joined, 1, "{mode:?}");
        assert_eq!(s.client.o2_bridge_id(s.client_ch).unwrap(), Some(1));

        // Both clocks agree.
        let host_time = s.host.o2_time(s.host_ch).unwrap();
        let client_time = s.client.o2_time(s.client_ch).unwrap();
        let host_after = s.host.o2_time(s.host_ch).unwrap();
        assert!(
            client_time >= host_time - CLOCK_TOLERANCE
                && client_time <= host_after + CLOCK_TOLERANCE,
            "{mode:?}: {host_time} {client_time} {host_after}"
        );
        let error = client_time - (host_time + host_after) / 2.0;
        eprintln!(
            "{mode:?}: clock error {:+.3} ms (host reading window {:.3} ms)",
            error * 1e3,
            (host_after - host_time) * 1e3
        );

        // Client to host, by TCP and UDP; host to client, both ways.
        s.client
            .o2_send(
                s.client_ch,
                0.0,
                true,
                "/server/echo",
                &[
                    Arg::Int(1001),
                    Arg::Float(3.5),
                    Arg::str("hello"),
                    Arg::Double(2.25),
                ],
            )
            .unwrap();
        s.client
            .o2_send(s.client_ch, 0.0, false, "/server/echo", &[Arg::Int(1002)])
            .unwrap();
        s.host
            .o2_send(
                s.host_ch,
                0.0,
                true,
                "!client/echo",
                &[Arg::Long(-2), Arg::True, Arg::Blob(&[1, 2, 3, 4, 5])],
            )
            .unwrap();
        s.host
            .o2_send(s.host_ch, 0.0, false, "/client/echo", &[Arg::Int(7)])
            .unwrap();
        assert!(
            until(&[&s.host, &s.client], || at_host.lock().unwrap().len() == 2
                && at_client.lock().unwrap().len() == 2),
            "{mode:?}"
        );
        let h = at_host.lock().unwrap().clone();
        let tcp = h.iter().find(|m| m.1 == "ifsd").expect("the TCP message");
        assert_eq!(
            tcp.2,
            [
                "Int(1001)",
                "Float(3.5)",
                "Str([104, 101, 108, 108, 111])",
                "Double(2.25)"
            ]
        );
        assert!(
            h.iter().any(|m| m.4) && h.iter().any(|m| !m.4),
            "{mode:?}: one by TCP, one by UDP: {h:?}"
        );
        let c = at_client.lock().unwrap().clone();
        assert!(
            c.iter()
                .any(|m| m.0 == "/client/echo" && m.1 == "hBb" && m.2[1] == "Bool(true)" && m.4),
            "{mode:?}: {c:?}"
        );
        assert!(c.iter().any(|m| m.1 == "i" && !m.4), "{mode:?}: {c:?}");

        // A timestamped message is held by the host until its time.
        let due = s.host.o2_time(s.host_ch).unwrap() + 0.2;
        s.host
            .o2_send(s.host_ch, due, true, "/client/later", &[])
            .unwrap();
        assert!(
            until(&[&s.host, &s.client], || at_client.lock().unwrap().len()
                == 3),
            "{mode:?}"
        );
        let arrived = s.client.o2_time(s.client_ch).unwrap();
        assert!(
            arrived >= due - CLOCK_TOLERANCE,
            "{mode:?}: delivered at {arrived}, due {due}"
        );
        assert_eq!(
            at_client.lock().unwrap()[2].3,
            due,
            "the timestamp travels with it"
        );

        // Status and list.
        s.client.o2_query(s.client_ch, Some("server")).unwrap();
        s.client.o2_query(s.client_ch, None).unwrap();
        let status = |e: &Event| matches!(e, Event::O2Client { event: ClientEvent::Status { service, status: 4 }, .. } if service == "server");
        let listed = |e: &Event| matches!(e, Event::O2Client { event: ClientEvent::List(l), .. } if l.iter().any(|x| x.name == "client" && x.status == 6) && l.iter().any(|x| x.name == "server"));
        assert!(
            until(&[&s.host, &s.client], || count(&s.client_events, status)
                == 1
                && count(&s.client_events, listed) == 1),
            "{mode:?}: {:?}",
            s.client_events.lock().unwrap()
        );
        eprintln!(
            "{mode:?}: synchronised {:.0} ms after opening",
            sync_time.as_secs_f64() * 1e3
        );
    }
}

#[test]
fn host_restart_reconnects_and_resynchronises() {
    let s = setup(Mode::Poll);
    let synced_at_host = |e: &Event| {
        matches!(
            e,
            Event::O2Host {
                event: HostEvent::ClientSynced { .. },
                ..
            }
        )
    };
    assert!(until(&[&s.host, &s.client], || count(
        &s.host_events,
        synced_at_host
    ) == 1));
    let host_ch = s.host_ch;
    s.host.close(host_ch).unwrap();
    let lost = |e: &Event| matches!(e, Event::Disconnected { .. });
    assert!(until(&[&s.host, &s.client], || count(
        &s.client_events,
        lost
    ) >= 1));
    let t0 = Instant::now();
    s.host
        .open(
            "host2",
            &format!(
                "o2lite-host://rosco-test:{}?udp_port={}&mdns=0",
                s.port, s.udp
            ),
        )
        .unwrap();
    // A new connection gets a bridge id from the new host, and the clock syncs and cs/cs
    // is sent again (the reference clients never resend it).
    assert!(
        until(&[&s.host, &s.client], || count(&s.client_events, is_synced)
            == 2),
        "{:?}",
        s.client_events.lock().unwrap()
    );
    eprintln!(
        "reconnected and resynchronised {:.0} ms after the host came back",
        t0.elapsed().as_secs_f64() * 1e3
    );
    assert!(until(&[&s.host, &s.client], || count(
        &s.host_events,
        synced_at_host
    ) == 2));
    let client_service = |e: &Event| matches!(e, Event::O2Host { event: HostEvent::ServiceAdded { name }, .. } if name == "client");
    assert_eq!(
        count(&s.host_events, client_service),
        2,
        "the service is offered again"
    );
}

/// Offers and withdrawals of one service made at once on two threads reach the host in the
/// order the client's session took them: in the end the host offers exactly what the
/// client does. (Frames written after the session was let go could overtake each other,
/// and the host kept a service the client had withdrawn, about once in thousands.) The
/// same for a host's own services and the events that report them.
#[test]
fn offers_and_withdrawals_racing_reach_the_host_in_order() {
    let s = setup(Mode::Threaded);
    s.wait_synced(1);
    race_offers(&s, &s.client, s.client_ch);
    race_offers(&s, &s.host, s.host_ch);
}

/// Offers and withdraws services on `ch` from two threads at once, then checks that the
/// host's events leave none of them offered.
fn race_offers(s: &Setup, ctx: &Context, ch: ChannelId) {
    const ROUNDS: usize = 20_000;
    let name = |i: usize| format!("x{i}");
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|t| {
        t.spawn(|| {
            for i in 0..ROUNDS {
                barrier.wait();
                ctx.o2_service_add(ch, &name(i)).unwrap();
                barrier.wait();
            }
        });
        for i in 0..ROUNDS {
            barrier.wait();
            let withdrawn = ctx.o2_service_remove(ch, &name(i)).is_ok();
            barrier.wait();
            // Withdrawn before it was offered: the offer stands, and is withdrawn now.
            if !withdrawn {
                ctx.o2_service_remove(ch, &name(i)).unwrap();
            }
        }
    });
    // Frames reach the host in order: once it has this one, it has all of them.
    ctx.o2_service_add(ch, "end").unwrap();
    // What the host's events say it offers, read on from where the last look stopped.
    let (mut read, mut offered) = (0, std::collections::BTreeSet::new());
    let mut offers = |name: &str| {
        let events = s.host_events.lock().unwrap();
        for e in &events[read..] {
            match e {
                Event::O2Host {
                    event: HostEvent::ServiceAdded { name },
                    ..
                } => offered.insert(name.clone()),
                Event::O2Host {
                    event: HostEvent::ServiceRemoved { name },
                    ..
                } => offered.remove(name),
                _ => false,
            };
        }
        read = events.len();
        // Once the host has `end`, it has had every frame before it.
        let kept: Vec<&String> = offered.iter().filter(|n| n.starts_with('x')).collect();
        let has = offered.contains(name);
        assert!(!has || kept.is_empty(), "the host still offers {kept:?}");
        has
    };
    assert!(until(&[&s.host, &s.client], || offers("end")));
    ctx.o2_service_remove(ch, "end").unwrap();
    assert!(until(&[&s.host, &s.client], || !offers("end")));
}

#[test]
fn a_vanishing_client_takes_its_services_along() {
    let s = setup(Mode::Poll);
    s.wait_synced(1);
    s.client.close(s.client_ch).unwrap();
    let removed = |e: &Event| matches!(e, Event::O2Host { event: HostEvent::ServiceRemoved { name }, .. } if name == "client");
    let left = |e: &Event| {
        matches!(
            e,
            Event::O2Host {
                event: HostEvent::ClientLeft { .. },
                ..
            }
        )
    };
    assert!(until(&[&s.host, &s.client], || count(
        &s.host_events,
        removed
    ) == 1
        && count(&s.host_events, left) == 1));
}

#[test]
fn messages_for_unknown_services_are_reported_by_the_host() {
    let s = setup(Mode::Poll);
    s.wait_synced(1);
    let at_host = record(&s.host, "/server/*");
    for _ in 0..3 {
        s.client
            .o2_send(s.client_ch, 0.0, true, "/nobody/x", &[Arg::Int(1)])
            .unwrap();
    }
    s.client
        .o2_send(s.client_ch, 0.0, true, "/server/x", &[Arg::Int(1)])
        .unwrap();
    let unroutable = |e: &Event| matches!(e, Event::O2Host { event: HostEvent::Unroutable { service, .. }, .. } if service == "nobody");
    // The message after them arrives, so all three were seen; one report for the name.
    assert!(until(&[&s.host, &s.client], || at_host
        .lock()
        .unwrap()
        .len()
        == 1));
    assert!(until(&[&s.host, &s.client], || count(
        &s.host_events,
        unroutable
    ) == 1));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(count(&s.host_events, unroutable), 1);
}

#[test]
fn garbage_peers_do_not_hurt_the_host() {
    let s = setup(Mode::Poll);
    let at_host = record(&s.host, "/server/*");
    let addr = ("127.0.0.1", s.port);
    let mut garbage = std::net::TcpStream::connect(addr).unwrap();
    garbage
        .write_all(&[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    let mut oversize = std::net::TcpStream::connect(addr).unwrap();
    oversize.write_all(&[0, 1, 0, 0]).unwrap();
    // A full O2 process's peer handshake (captured from O2 2.0.1): refused.
    let mut peer = std::net::TcpStream::connect(addr).unwrap();
    let dy = "0000005400000001000000000000000021 5f6f322f6479002c7369737369696900000000726f73636f2d746573740000000200013030303030303030000000003766303030303031000000000000845900008875 00000036";
    peer.write_all(&unhex(dy)).unwrap();
    // The legacy discovery request by UDP: dropped.
    let legacy = "0000000000000000000000002 15f6f322f6f326c6974652f64790000 2c7373696969000077726f6e672d656e730000003766303030303031000000000000000000000081da00000032";
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&unhex(legacy), ("127.0.0.1", s.udp))
        .unwrap();
    let refused = |e: &Event| {
        matches!(
            e,
            Event::O2Host {
                event: HostEvent::Refused { .. },
                ..
            }
        )
    };
    assert!(
        until(&[&s.host, &s.client], || count(&s.host_events, refused)
            >= 2),
        "{:?}",
        s.host_events.lock().unwrap()
    );
    let dropped = |e: &Event| matches!(e, Event::Disconnected { .. });
    assert!(until(&[&s.host, &s.client], || count(
        &s.host_events,
        dropped
    ) >= 3));
    // The real client still works.
    s.wait_synced(1);
    s.client
        .o2_send(s.client_ch, 0.0, true, "/server/still", &[])
        .unwrap();
    assert!(until(&[&s.host, &s.client], || at_host
        .lock()
        .unwrap()
        .len()
        == 1));

    // A client that joins properly, then sends a type no one knows ('q'): that message is
    // dropped, the next one arrives.
    use rosco::o2lite::message::{encode_tcp, O2Arg};
    let mut frames = Vec::new();
    let con = [O2Arg::Str(b"7f000001"), O2Arg::Int(9)];
    encode_tcp(&mut frames, 0.0, b"!_o2/o2lite/con", con).unwrap();
    let unknown_at = frames.len();
    encode_tcp(&mut frames, 0.0, b"!server/unknown", [O2Arg::Int(1)]).unwrap();
    let tag = unknown_at
        + frames[unknown_at..]
            .windows(2)
            .position(|w| w == b",i")
            .unwrap();
    frames[tag + 1] = b'q';
    encode_tcp(&mut frames, 0.0, b"!server/after", [O2Arg::Int(2)]).unwrap();
    // A 5-byte blob with stale bytes in its padding, as o2lite.c sends it: taken.
    let blob_at = frames.len();
    encode_tcp(
        &mut frames,
        0.0,
        b"!server/blob",
        [O2Arg::Blob(&[1, 2, 3, 4, 5])],
    )
    .unwrap();
    let last = frames.len() - 1;
    assert_eq!(frames[blob_at..][..4], [0, 0, 0, 44], "the frame's length");
    frames[last - 1] = 1;
    let mut rogue = std::net::TcpStream::connect(addr).unwrap();
    rogue.write_all(&frames).unwrap();
    assert!(until(&[&s.host, &s.client], || at_host
        .lock()
        .unwrap()
        .len()
        == 3));
    let h = at_host.lock().unwrap().clone();
    assert_eq!(h[1].0, "/server/after", "{h:?}");
    assert_eq!(h[2].0, "/server/blob", "{h:?}");
    assert!(!h.iter().any(|m| m.0 == "/server/unknown"), "{h:?}");
    // The dropped one is reported, with its sender.
    let rogue_addr = rogue.local_addr().unwrap();
    let malformed = |e: &Event| {
        matches!(e, Event::Malformed { channel, source: Some(a), reason, .. }
            if *channel == s.host_ch && *a == rogue_addr && reason.contains("type"))
    };
    assert_eq!(count(&s.host_events, malformed), 1, "{:?}", s.host_events);
}

#[test]
fn a_client_takes_datagrams_from_another_address_of_its_host() {
    // A host with several interfaces sends from the address its route picks, which need
    // not be the one the client reached it at (127.0.0.2 stands for it here), and from a
    // socket of its own (any port): taken, as O2 and o2lite.c take them.
    let s = setup(Mode::Poll);
    let at_client = record(&s.client, "/client/*");
    s.wait_synced(1);
    let to = ("127.0.0.1", s.client.o2_udp_port(s.client_ch).unwrap());
    use rosco::o2lite::message::O2Arg;
    let mut d = Vec::new();
    rosco::o2lite::message::encode_udp(&mut d, 0.0, b"!client/hi", [O2Arg::Int(1)]).unwrap();
    let other = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    other.send_to(&d, to).unwrap();
    assert!(until(&[&s.host, &s.client], || at_client
        .lock()
        .unwrap()
        .len()
        == 1));
    assert_eq!(at_client.lock().unwrap()[0].0, "/client/hi");
    assert_eq!(s.client.stats(s.client_ch).unwrap().malformed, 0);
}

#[test]
fn bridges_between_o2_services_and_osc_channels() {
    let s = setup(Mode::Poll);
    s.wait_synced(1);
    // An OSC synth the host delegates service "synth" to (its address without the service).
    let synth = context(Mode::Threaded);
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    synth
        .methods()
        .add_method(None, None, move |m, info| {
            let args: Vec<String> = m.args().map(|a| format!("{a:?}")).collect();
            let at = rosco::TimeTag::now();
            h.lock().unwrap().push((
                m.address_str().unwrap().to_string(),
                args,
                info.bundle_time,
                at,
            ));
            Flow::Handled
        })
        .unwrap();
    let synth_in = synth.open("in", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let to_synth = s
        .host
        .open(
            "to-synth",
            &format!("osc.udp://127.0.0.1:{}", synth.port(synth_in).unwrap()),
        )
        .unwrap();
    s.host
        .o2_bridge_to_osc(s.host_ch, "synth", to_synth, true)
        .unwrap();
    s.client
        .o2_send(s.client_ch, 0.0, true, "/synth/freq", &[Arg::Float(440.0)])
        .unwrap();
    let due = s.client.o2_time(s.client_ch).unwrap() + 0.2;
    s.client
        .o2_send(s.client_ch, due, true, "/synth/gate", &[Arg::Int(1)])
        .unwrap();
    assert!(
        until(&[&s.host, &s.client], || heard.lock().unwrap().len() == 2),
        "{:?}",
        heard.lock().unwrap()
    );
    let got = heard.lock().unwrap().clone();
    assert_eq!(
        (got[0].0.as_str(), got[0].1.clone(), got[0].2),
        ("/freq", vec!["Float(440.0)".to_string()], None)
    );
    assert_eq!(got[1].0, "/gate");
    let bundle_time = got[1]
        .2
        .expect("a timestamped O2 message arrives as a timed bundle");
    assert!(
        got[1].3 >= bundle_time,
        "delivered no earlier than its timetag"
    );
    // The service's own address is the service's too (stripped, it stays as it is).
    s.client
        .o2_send(s.client_ch, 0.0, true, "/synth", &[Arg::Int(7)])
        .unwrap();
    assert!(
        until(&[&s.host, &s.client], || heard.lock().unwrap().len() == 3),
        "{:?}",
        heard.lock().unwrap()
    );
    assert_eq!(heard.lock().unwrap()[2].0, "/synth");
    // O2's boolean arrives as OSC's T or F (OSC has no B), and a time argument, global
    // seconds in O2, as the system time it names.
    let in_a_second = s.client.o2_time(s.client_ch).unwrap() + 1.0;
    let args = [
        Arg::True,
        Arg::False,
        Arg::Time(rosco::runtime::seconds_to_fixed(in_a_second).unwrap()),
    ];
    s.client
        .o2_send(s.client_ch, 0.0, true, "/synth/mixed", &args)
        .unwrap();
    assert!(
        until(&[&s.host, &s.client], || heard.lock().unwrap().len() == 4),
        "{:?}",
        heard.lock().unwrap()
    );
    let mixed = heard.lock().unwrap()[3].clone();
    assert_eq!(mixed.1[..2], ["True", "False"]);
    let when = time_arg(&mixed.1[2]).to_unix_secs_f64();
    let now = rosco::TimeTag::now().to_unix_secs_f64();
    assert!((when - (now + 1.0)).abs() < 0.5, "{when} for {now} + 1 s");

    // An OSC listening channel of the host feeds the client's service "client".
    let osc_in = s
        .host
        .open("osc-in", "osc.udp://:0?bind=127.0.0.1")
        .unwrap();
    s.host
        .osc_bridge_to_o2(osc_in, s.host_ch, "client", true, true)
        .unwrap();
    let at_client = record(&s.client, "/client/*");
    let sender = context(Mode::Poll);
    let out = sender
        .open(
            "out",
            &format!("osc.udp://127.0.0.1:{}", s.host.port(osc_in).unwrap()),
        )
        .unwrap();
    let in_a_second = rosco::TimeTag::after(Duration::from_secs(1));
    sender
        .send(out, "/echo", &[Arg::Int(5), Arg::Time(in_a_second)])
        .unwrap();
    assert!(until(&[&s.host, &s.client], || at_client
        .lock()
        .unwrap()
        .len()
        == 1));
    let m = at_client.lock().unwrap()[0].clone();
    assert_eq!(
        (m.0.as_str(), m.1.as_str(), m.4),
        ("/client/echo", "it", true)
    );
    // The timetag argument crossed as global seconds, one second ahead of the clock.
    let global = rosco::runtime::fixed_to_seconds(time_arg(&m.2[1]));
    let ahead = global - s.client.o2_time(s.client_ch).unwrap();
    assert!((ahead - 1.0).abs() < 0.5, "{ahead} s ahead");
}

#[test]
fn names_urls_and_ports_are_checked_and_reported() {
    let s = setup(Mode::Poll);
    // The host's URL carries both real ports, and opens an equivalent host.
    assert_eq!(
        s.host.url(s.host_ch).unwrap(),
        format!(
            "o2lite-host://rosco-test:{}?udp_port={}&mdns=0",
            s.port, s.udp
        )
    );
    // A client is reached at its UDP port, connected or not.
    assert_ne!(s.client.port(s.client_ch).unwrap(), 0);
    // Service names follow one rule on both sides.
    for bad in [
        "",
        "a/b",
        "!x",
        &"n".repeat(64),
        "_o2",
        "_cs",
        "@00000000:7f000001:aa29",
        "a\0b",
        "tab\there",
        "caf\u{e9}",
    ] {
        for (ctx, ch) in [(&s.host, s.host_ch), (&s.client, s.client_ch)] {
            let e = ctx.o2_service_add(ch, bad).unwrap_err();
            assert!(matches!(e, rosco::Error::Service(_)), "{bad:?}: {e}");
        }
    }
    s.host.o2_service_add(s.host_ch, &"n".repeat(63)).unwrap();
    // Nothing can be slipped into a client URL through its parts.
    let url = rosco::runtime::o2lite_url;
    assert_eq!(
        url("ens", Some("127.0.0.1:5:6")).unwrap(),
        "o2lite://ens@127.0.0.1:5?udp_port=6"
    );
    assert_eq!(url("ens", None).unwrap(), "o2lite://ens");
    for (ensemble, host) in [
        ("ens", Some("127.0.0.1:1?udp_port=9")),
        ("ens", Some("a@b:1")),
        ("a/b", None),
        ("", None),
        ("e:1", Some("127.0.0.1:1")),
    ] {
        assert!(url(ensemble, host).is_err(), "{ensemble:?} {host:?}");
    }
}

/// An O2 address beginning with `!` is looked up as it is (spec §3.3): `!server/*` reaches
/// a method for that very address, not every `/server/...` method as a pattern would.
/// An O2 time argument arrives as 32.32 fixed point, to the nearest 2^-32 s; one rosco
/// cannot carry (O2's -1 for "no clock", 2^32 s or more) is refused and reported, not
/// changed (spec §16).
#[test]
fn o2_time_arguments_arrive_or_are_refused() {
    let host = context(Mode::Threaded);
    let seen = events(&host);
    let ch = host.open("host", "o2lite-host://times?mdns=0").unwrap();
    host.o2_service_add(ch, "server").unwrap();
    let log = record(&host, "/server/*");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", host.o2_udp_port(ch).unwrap());
    for (address, t) in [
        ("!server/no", -1.0),
        ("!server/far", 5e9),
        ("!server/ok", 0.1),
    ] {
        let mut d = Vec::new();
        let arg = rosco::o2lite::message::O2Arg::Time(t);
        rosco::o2lite::message::encode_udp(&mut d, 0.0, address.as_bytes(), [arg]).unwrap();
        udp.send_to(&d, to).unwrap();
    }
    let refused = |e: &Event| matches!(e, Event::Malformed { reason, .. } if reason.contains("outside 0 to 2^32 seconds"));
    let host_only = [&host];
    assert!(until(&host_only, || log.lock().unwrap().len() == 1));
    assert!(until(&host_only, || count(&seen, refused) == 2));
    let got = log.lock().unwrap()[0].clone();
    assert_eq!(got.0, "/server/ok");
    let t = rosco::runtime::fixed_to_seconds(time_arg(&got.2[0]));
    assert!((t - 0.1).abs() < 1e-9, "{t}");
}

/// A best-effort (UDP) send too long for a datagram is refused with the reason, by the
/// encoder rather than by the socket.
#[test]
fn a_datagram_too_long_is_refused_with_its_reason() {
    let s = setup(Mode::Poll);
    s.wait_synced(1);
    let big = vec![0u8; 70_000];
    let sent = s
        .client
        .o2_send(s.client_ch, 0.0, false, "/server/big", &[Arg::Blob(&big)]);
    match sent {
        Err(rosco::Error::Unsupported(why)) => assert!(why.contains("65,507"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bang_addresses_are_literal() {
    let s = setup(Mode::Poll);
    s.wait_synced(1);
    let a = record(&s.host, "/server/a");
    let star = record(&s.host, "/server/*");
    s.client
        .o2_send(s.client_ch, 0.0, true, "!server/*", &[])
        .unwrap();
    s.client
        .o2_send(s.client_ch, 0.0, true, "!server/a", &[])
        .unwrap();
    assert!(until(&[&s.host, &s.client], || a.lock().unwrap().len()
        + star.lock().unwrap().len()
        >= 2));
    let poll = |ctx: &Context| ctx.poll(Some(std::time::Duration::from_millis(100)));
    poll(&s.client).unwrap();
    // `!server/a` stops at the literal method that handles it; `!server/*` reaches the
    // method whose pattern matches it as a string, and not `/server/a`.
    let addresses =
        |log: &Log| -> Vec<String> { log.lock().unwrap().iter().map(|m| m.0.clone()).collect() };
    assert_eq!(addresses(&a), ["/server/a"]);
    assert_eq!(addresses(&star), ["/server/*"]);
}

/// Poll mode: what a host dispatches to its own services from its timers (the host
/// application's own sends, held messages come due) counts in what `poll` returns, and
/// `poll` returns once it is dispatched instead of waiting out its timeout.
#[test]
fn a_poll_mode_host_counts_what_it_dispatches_to_itself() {
    let host = context(Mode::Poll);
    let ch = host
        .open("host", "o2lite-host://rosco-self?mdns=0")
        .unwrap();
    host.o2_service_add(ch, "server").unwrap();
    let got = record(&host, "/server/*");
    host.poll(Some(Duration::from_millis(20))).unwrap();
    host.o2_send(ch, 0.0, true, "/server/now", &[Arg::Int(1)])
        .unwrap();
    // (Not counted, a poll waited out its timeout and said 0.)
    assert_eq!(host.poll(Some(Duration::from_secs(5))).unwrap(), 1);
    let due = host.o2_time(ch).unwrap() + 0.1;
    host.o2_send(ch, due, true, "/server/later", &[Arg::Int(2)])
        .unwrap();
    let mut polled = 0;
    let stop = Instant::now() + Duration::from_secs(10);
    while polled == 0 && Instant::now() < stop {
        polled = host.poll(Some(Duration::from_secs(5))).unwrap();
    }
    assert_eq!(polled, 1);
    assert_eq!(got.lock().unwrap().len(), 2);
}

/// A host whose own service sends to itself from its method (a loop, here) leaves the I/O
/// thread time for its sockets: a datagram on another channel arrives at once (one turn
/// used to carry the whole loop out, and the datagram waited until it stopped).
#[test]
fn a_host_sending_to_itself_leaves_time_for_other_channels() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let host = context(Mode::Threaded);
    let ch = host.open("host", "o2lite-host://self?mdns=0").unwrap();
    host.o2_service_add(ch, "server").unwrap();
    let rx = host.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let got = contexts::counter(&host, "/osc");
    let stop = Arc::new(AtomicBool::new(false));
    let (s, sender) = (stop.clone(), host.sender());
    host.methods()
        .add_method(
            Some("/server/*"),
            None,
            move |_: &Message<'_>, _: &MsgInfo| {
                if !s.load(Ordering::Relaxed) {
                    let _ = sender.o2_send(ch, 0.0, true, "/server/again", &[]);
                }
                Flow::Handled
            },
        )
        .unwrap();
    host.o2_send(ch, 0.0, true, "/server/go", &[]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = Instant::now();
    udp.send_to(
        b"/osc\0\0\0\0,\0\0\0",
        ("127.0.0.1", host.port(rx).unwrap()),
    )
    .unwrap();
    while got.load(Ordering::Relaxed) == 0 && sent.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let waited = sent.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert!(
        waited < Duration::from_secs(1),
        "the datagram waited {waited:?}"
    );
}

/// A host's events follow its session's order when carrying out one output closes a
/// connection: the refusal of a client that never sent `con` comes before a service a
/// callback added after it (the close carried out the rest of the queue from inside, and
/// the later change was reported first). Takes the host's 10 s wait for `con`.
#[test]
fn a_close_while_output_is_carried_out_keeps_the_order() {
    let host = context(Mode::Poll);
    let events = events(&host);
    let ch = host.open("host", "o2lite-host://nest?mdns=0").unwrap();
    host.o2_service_add(ch, "server").unwrap();
    let sender = host.sender();
    host.methods()
        .add_method(
            Some("/server/*"),
            None,
            move |_: &Message<'_>, _: &MsgInfo| {
                sender.o2_service_add(ch, "later").unwrap();
                Flow::Handled
            },
        )
        .unwrap();
    let _silent = std::net::TcpStream::connect(("127.0.0.1", host.port(ch).unwrap())).unwrap();
    let connected = |e: &Event| matches!(e, Event::Connected { .. });
    assert!(until(&[&host], || count(&events, connected) == 1));
    // Not polled while the wait for `con` runs out: the refusal and this message are then
    // carried out in one turn, the message first.
    std::thread::sleep(Duration::from_millis(10_500));
    host.o2_send(ch, 0.0, true, "/server/x", &[]).unwrap();
    let added = |e: &Event| matches!(e, Event::O2Host { event: HostEvent::ServiceAdded { name }, .. } if name == "later");
    assert!(until(&[&host], || count(&events, added) == 1));
    let events = events.lock().unwrap();
    let at = |pred: &dyn Fn(&Event) -> bool| events.iter().position(pred);
    let refused = at(&|e| {
        matches!(
            e,
            Event::O2Host {
                event: HostEvent::Refused { .. },
                ..
            }
        )
    });
    assert!(refused.is_some(), "{events:?}");
    assert!(refused < at(&added), "{events:?}");
}
