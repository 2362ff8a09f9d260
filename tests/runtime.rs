//! The runtime over real sockets on loopback, in every threading mode: UDP, TCP (both
//! framings), Unix sockets, `_local`, names and groups, replies, timed bundles, events,
//! counters, hooks, malformed input, stalled and garbage peers, reconnects, many peers,
//! and a slow consumer.

use rosco::dispatch::{Flow, MsgInfo};
use rosco::osc::{Arg, EncodeError, Message, PacketWriter};
use rosco::runtime::{Event, HookVerdict, PacketHook};
use rosco::{ChannelId, Context, ContextOptions, Error, Mode, TimeTag};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MODES: [Mode; 3] = [Mode::Poll, Mode::IoThread, Mode::Threaded];

include!("support/contexts.rs");
use contexts::{context, count, counter, events, udp_pair, Events};

type Log = Arc<Mutex<Vec<String>>>;

/// A catch-all method recording `address typetags args` lines.
fn record(ctx: &Context) -> Log {
    let log = Log::default();
    let l = log.clone();
    ctx.methods()
        .add_method(None, None, move |m: &Message<'_>, _: &MsgInfo| {
            let args: Vec<String> = m.args().map(|a| format!("{a:?}")).collect();
            l.lock().unwrap().push(format!(
                "{} {}",
                m.address_str().unwrap_or("?"),
                args.join(",")
            ));
            Flow::Handled
        })
        .unwrap();
    log
}

/// Polls (or, in threaded mode, waits) until `done` or 20 s pass (a cap for a loaded
/// machine: a passing test returns as soon as `done`).
fn until(ctx: &Context, mut done: impl FnMut() -> bool) -> bool {
    let stop = Instant::now() + Duration::from_secs(20);
    while Instant::now() < stop {
        if done() {
            return true;
        }
        ctx.poll(Some(Duration::from_millis(10))).unwrap();
    }
    done()
}

/// A context in each threading model: the three modes, and threaded mode with a pool of
/// workers running the callbacks.
fn models() -> impl Iterator<Item = (String, Context)> {
    let models = MODES.into_iter().map(|mode| (mode, 0));
    models.chain([(Mode::Threaded, 3)]).map(|(mode, workers)| {
        let options = ContextOptions {
            mode,
            workers,
            ..ContextOptions::default()
        };
        let label = format!("{mode:?} with {workers} workers");
        (label, Context::new(options).unwrap())
    })
}

fn len(log: &Log) -> usize {
    log.lock().unwrap().len()
}

#[test]
fn udp_both_ways_with_replies_in_every_mode() {
    for (mode, ctx) in models() {
        let server = ctx.open("server", "osc.udp://:0?bind=127.0.0.1").unwrap();
        let port = ctx.port(server).unwrap();
        let client = ctx
            .open("client", &format!("osc.udp://127.0.0.1:{port}"))
            .unwrap();
        let sender = ctx.sender();
        ctx.methods()
            .add_method(Some("/ping"), Some("i"), move |m, info| {
                let Some(Arg::Int(n)) = m.arg(0) else {
                    return Flow::PassOn;
                };
                // An empty packet is refused on every path, replies included (else the
                // pong does not come either).
                let empty = sender.reply_packet(info, &[]);
                assert!(matches!(empty, Err(rosco::Error::Decode(_))), "{empty:?}");
                sender.reply(info, "/pong", &[Arg::Int(n + 1)]).unwrap();
                Flow::Handled
            })
            .unwrap();
        // Registered last: the catch-all sees what /ping did not handle.
        let log = record(&ctx);
        ctx.send(client, "/ping", &[Arg::Int(41)]).unwrap();
        assert!(until(&ctx, || len(&log) >= 1), "{mode:?}: no pong");
        assert_eq!(log.lock().unwrap()[0], "/pong Int(42)", "{mode:?}");
        // Waited for: with workers, the pong can be logged while the replying worker has
        // yet to count its send.
        let counts = || {
            let stats = ctx.stats(server).unwrap();
            (stats.packets_in, stats.packets_out)
        };
        assert!(
            until(&ctx, || counts() == (1, 1)),
            "{mode:?}: {:?}",
            counts()
        );
        assert_eq!(ctx.stats(client).unwrap().packets_in, 1, "{mode:?}");
    }
}

#[test]
fn local_names_and_groups() {
    for mode in MODES {
        let ctx = context(mode);
        let log = record(&ctx);
        ctx.send_to("_local", "/here", &[Arg::str("x")]).unwrap();
        assert!(until(&ctx, || len(&log) == 1), "{mode:?}");
        let a = ctx.open("a", "osc.udp://:0").unwrap();
        let b = ctx.open("b", "osc.udp://:0").unwrap();
        let to_a = format!("osc.udp://127.0.0.1:{}", ctx.port(a).unwrap());
        let to_b = format!("osc.udp://127.0.0.1:{}", ctx.port(b).unwrap());
        ctx.open("to_a", &to_a).unwrap();
        ctx.open("to_b", &to_b).unwrap();
        ctx.send_to_names(&["to_a", "to_b", "_local"], "/all", &[])
            .unwrap();
        assert!(
            until(&ctx, || len(&log) == 4),
            "{mode:?}: {:?}",
            log.lock().unwrap()
        );
        // `_local` counts what it carries, out and in: "/here ,s x" and "/all ,".
        let local = ctx.stats(ctx.channel_id("_local").unwrap()).unwrap();
        let counts = (
            local.packets_out,
            local.bytes_out,
            local.packets_in,
            local.bytes_in,
        );
        assert_eq!(counts, (2, 16 + 12, 2, 16 + 12), "{mode:?}");
        assert!(matches!(
            ctx.send_to("nobody", "/x", &[]),
            Err(rosco::Error::NoName(_))
        ));
        assert!(matches!(
            ctx.open("a", "osc.udp://:0"),
            Err(rosco::Error::NameTaken(_))
        ));
        assert!(matches!(
            ctx.open("bad", "osc.udp://:99999"),
            Err(rosco::Error::Url(_))
        ));
        ctx.close(a).unwrap();
        assert!(matches!(ctx.close(a), Err(rosco::Error::NoChannel)));
        assert!(matches!(ctx.stats(a), Err(rosco::Error::NoChannel)));
    }
}

#[test]
fn tcp_both_framings_and_replies_to_the_peer() {
    for mode in MODES {
        for framing in ["length", "slip", "slip-single"] {
            let ctx = context(mode);
            let seen = events(&ctx);
            let server = ctx.open("server", "osc.tcp://:0").unwrap();
            let port = ctx.port(server).unwrap();
            let sender = ctx.sender();
            ctx.methods()
                .add_method(Some("/q"), None, move |_, info| {
                    sender
                        .reply(
                            info,
                            "/a",
                            &[Arg::str(if info.peer.is_some() { "peer" } else { "?" })],
                        )
                        .unwrap();
                    Flow::Handled
                })
                .unwrap();
            let log = record(&ctx);
            let client = ctx
                .open(
                    "client",
                    &format!("osc.tcp://127.0.0.1:{port}?framing={framing}"),
                )
                .unwrap();
            // A bundle first on the connection (where liblo's detector fails for SLIP).
            let mut buf = Vec::new();
            let mut w = PacketWriter::new(&mut buf);
            w.begin_bundle(TimeTag::IMMEDIATE).unwrap();
            w.message("/q", &[]).unwrap();
            w.end_bundle().unwrap();
            ctx.send_packet(client, &buf).unwrap();
            assert!(until(&ctx, || len(&log) >= 1), "{mode:?} {framing}");
            assert_eq!(
                log.lock().unwrap()[0],
                "/a Str([112, 101, 101, 114])",
                "{mode:?} {framing}"
            );
            let connected = seen
                .lock()
                .unwrap()
                .iter()
                .filter(|e| matches!(e, Event::Connected { .. }))
                .count();
            assert_eq!(connected, 2, "{mode:?} {framing}: client and server side");
        }
    }
}

#[test]
fn slip_single_sends_no_leading_end() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Threaded: the I/O thread connects and writes while this one reads.
    let ctx = context(Mode::Threaded);
    let client = ctx
        .open(
            "c",
            &format!("osc.tcp://127.0.0.1:{port}?framing=slip-single"),
        )
        .unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    ctx.send(client, "/x", &[]).unwrap();
    ctx.send(client, "/y", &[]).unwrap();
    let mut got = [0u8; 18];
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"/x\0\0,\0\0\0\xC0/y\0\0,\0\0\0\xC0");
}

/// A listener whose URL fixes the framing sends in it from the start, before a peer has
/// said anything, and keeps it when the peer frames differently (a single-END SLIP
/// listener, say, whose peer sends a leading END).
#[test]
fn a_listener_sends_in_the_framing_its_url_gives() {
    let cases: [(&str, &[u8], &[u8]); 3] = [
        ("slip", b"", b"\xC0/x\0\0,\0\0\0\xC0"),
        (
            "slip-single",
            b"\xC0/q\0\0,\0\0\0\xC0",
            b"/x\0\0,\0\0\0\xC0",
        ),
        ("length", b"", b"\0\0\0\x08/x\0\0,\0\0\0"),
    ];
    for (framing, request, want) in cases {
        let ctx = context(Mode::Threaded);
        let seen = events(&ctx);
        let url = format!("osc.tcp://:0?bind=127.0.0.1&framing={framing}");
        let server = ctx.open("server", &url).unwrap();
        let asked = counter(&ctx, "/q");
        let port = ctx.port(server).unwrap();
        let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let connected = |e: &Event| matches!(e, Event::Connected { .. });
        assert!(until(&ctx, || seen.lock().unwrap().iter().any(connected)));
        peer.write_all(request).unwrap();
        let heard = if request.is_empty() { 0 } else { 1 };
        assert!(
            until(&ctx, || asked.load(Ordering::Relaxed) == heard),
            "{framing}"
        );
        ctx.send(server, "/x", &[]).unwrap();
        let mut got = vec![0u8; want.len()];
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, want, "{framing}");
    }
}

/// A length header of another layout (osc4py3's `read_headerunpack`) is read and written
/// over TCP and inside datagrams, and a packet its length field cannot express is refused.
#[test]
fn custom_length_headers_are_read_and_written() {
    // Four bytes: a marker, a little-endian u16 length, a marker.
    let ctx = context(Mode::Threaded);
    let seen = events(&ctx);
    let url = "osc.tcp://:0?bind=127.0.0.1&framing=length&length_field=u16le&length_at=1&header=4";
    let server = ctx.open("server", url).unwrap();
    let asked = counter(&ctx, "/q");
    let port = ctx.port(server).unwrap();
    let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let connected = |e: &Event| matches!(e, Event::Connected { .. });
    assert!(until(&ctx, || seen.lock().unwrap().iter().any(connected)));
    let q = b"/q\0\0,i\0\0\0\0\0\x07";
    let mut two = Vec::new();
    for marker in [0xEE, 0x11] {
        two.extend_from_slice(&[marker, q.len() as u8, 0, marker]);
        two.extend_from_slice(q);
    }
    peer.write_all(&two).unwrap();
    assert!(until(&ctx, || asked.load(Ordering::Relaxed) == 2));
    ctx.send(server, "/x", &[]).unwrap();
    let mut got = [0u8; 12];
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"\0\x08\0\0/x\0\0,\0\0\0");

    // A one-byte length: 255 bytes at most.
    let raw = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let raw_port = raw.local_addr().unwrap().port();
    let url = format!("osc.tcp://127.0.0.1:{raw_port}?framing=length&length_field=u8");
    let client = ctx.open("client", &url).unwrap();
    let big = [Arg::Blob(&[1; 300])];
    assert!(matches!(
        ctx.send(client, "/big", &big),
        Err(Error::Encode(EncodeError::TooLarge))
    ));
    let blob = [Arg::Blob(&[2; 200])];
    ctx.send(client, "/q", &blob).unwrap();
    let (mut from_client, _) = raw.accept().unwrap();
    from_client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut header = [0u8; 1];
    from_client.read_exact(&mut header).unwrap();
    // "/q", ",b", the blob's size and its 200 bytes.
    assert_eq!(header[0], 4 + 4 + 4 + 200);

    // Inside datagrams: one byte of length before each packet.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = socket.local_addr().unwrap().port();
    let udp = ctx
        .open(
            "udp",
            &format!("osc.udp://127.0.0.1:{udp_port}?framing=length&length_field=u8"),
        )
        .unwrap();
    ctx.send(udp, "/x", &[]).unwrap();
    assert!(matches!(
        ctx.send(udp, "/big", &big),
        Err(Error::Encode(EncodeError::TooLarge))
    ));
    let mut datagram = [0u8; 64];
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = socket.recv(&mut datagram).unwrap();
    assert_eq!(&datagram[..n], b"\x08/x\0\0,\0\0\0");
}

/// A peer that sends one request (`/q count size`), shuts its sending side, waits a while
/// and reads until the end: what it got back (frames, each frame's size) and when the
/// server closed.
fn half_closing_peer(port: u16, count: i32, size: i32) -> std::thread::JoinHandle<Vec<usize>> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // A small window, so that the replies back up into the server's own output queue.
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut s = TcpStream::from(socket);
    let mut request = Vec::new();
    rosco::osc::encode_message("/q", &[Arg::Int(count), Arg::Int(size)], &mut request).unwrap();
    s.write_all(&(request.len() as u32).to_be_bytes()).unwrap();
    s.write_all(&request).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        let mut frames = Vec::new();
        let mut rest = &all[..];
        while let Some((len, after)) = rest.split_first_chunk::<4>() {
            let len = u32::from_be_bytes(*len) as usize;
            frames.push(len);
            rest = &after[len.min(after.len())..];
        }
        frames
    })
}

#[test]
fn a_peer_that_finished_sending_still_gets_its_replies() {
    for (mode, ctx) in models() {
        let seen = events(&ctx);
        let server = ctx.open("server", "osc.tcp://:0").unwrap();
        let port = ctx.port(server).unwrap();
        let sender = ctx.sender();
        let failures = Arc::new(Mutex::new(Vec::new()));
        let f = failures.clone();
        ctx.methods()
            .add_method(Some("/q"), Some("ii"), move |m, info| {
                let mut args = m.args();
                let (Some(Arg::Int(count)), Some(Arg::Int(size))) = (args.next(), args.next())
                else {
                    unreachable!("the type spec says ii")
                };
                let blob = vec![7u8; size as usize];
                for _ in 0..count {
                    if let Err(e) = sender.reply(info, "/a", &[Arg::Blob(&blob)]) {
                        f.lock().unwrap().push(e.to_string());
                    }
                }
                Flow::Handled
            })
            .unwrap();
        // One small reply (in io-thread mode the callback runs after the end was read);
        // then 6 MB, more than the kernel holds, so most waits in the server's queue.
        for (count, size) in [(1, 8), (60, 100_000)] {
            let peer = half_closing_peer(port, count, size);
            assert!(until(&ctx, || peer.is_finished()), "{mode:?} {count}");
            let frames = peer.join().unwrap();
            assert_eq!(failures.lock().unwrap().len(), 0, "{mode:?}: {failures:?}");
            assert_eq!(frames.len(), count as usize, "{mode:?} {count}x{size}");
            assert!(frames.iter().all(|&n| n > size as usize), "{mode:?}");
        }
        let closed = || {
            seen.lock()
                .unwrap()
                .iter()
                .filter(|e| matches!(e, Event::Disconnected { reason, .. } if reason == "closed by peer"))
                .count()
        };
        assert!(
            until(&ctx, || closed() == 2),
            "{mode:?}: {:?}",
            seen.lock().unwrap()
        );
    }
}

#[test]
fn an_accept_filter_refuses_connections_and_channels_have_names() {
    for mode in MODES {
        let ctx = context(mode);
        let seen = events(&ctx);
        let server = ctx.open("server", "osc.tcp://:0").unwrap();
        let port = ctx.port(server).unwrap();
        let names = Arc::new(Mutex::new(Vec::new()));
        let (n, sender) = (names.clone(), ctx.sender());
        ctx.methods()
            .add_method(Some("/hello"), None, move |_, info| {
                let name = sender.channel_name(info.channel.unwrap()).unwrap();
                n.lock().unwrap().push(name);
                Flow::Handled
            })
            .unwrap();
        // Another loopback address stands for a host the application does not trust.
        let asked = Arc::new(Mutex::new(Vec::new()));
        let a = asked.clone();
        ctx.set_accept_filter(Some(move |ch, peer: Option<std::net::SocketAddr>| {
            a.lock().unwrap().push(ch);
            peer.is_some_and(|p| p.ip() != std::net::Ipv4Addr::new(127, 0, 0, 2))
        }));
        let connect_from = |ip: [u8; 4]| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket
                .bind(&std::net::SocketAddr::from((ip, 0)).into())
                .unwrap();
            socket
                .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
                .unwrap();
            let mut s = TcpStream::from(socket);
            s.write_all(&[
                0, 0, 0, 12, b'/', b'h', b'e', b'l', b'l', b'o', 0, 0, b',', 0, 0, 0,
            ])
            .unwrap();
            s
        };
        let mut stranger = connect_from([127, 0, 0, 2]);
        let _friend = connect_from([127, 0, 0, 1]);
        let refused = || {
            seen.lock().unwrap().iter().any(|e| {
                matches!(e, Event::Disconnected { peer: Some(p), reason, .. }
                    if reason == "refused by the accept filter" && p.ip().to_string() == "127.0.0.2")
            })
        };
        assert!(
            until(&ctx, || refused() && names.lock().unwrap().len() == 1),
            "{mode:?}: {:?}",
            seen.lock().unwrap()
        );
        stranger
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(stranger.read(&mut [0u8; 4]).unwrap_or(0), 0, "{mode:?}");
        assert_eq!(*asked.lock().unwrap(), [server, server], "{mode:?}");
        assert_eq!(names.lock().unwrap()[0], "server", "{mode:?}");
        // Without a filter everyone is welcome again.
        ctx.set_accept_filter(None::<fn(_, _) -> bool>);
        let _stranger = connect_from([127, 0, 0, 2]);
        assert!(until(&ctx, || names.lock().unwrap().len() == 2), "{mode:?}");
        assert_eq!(asked.lock().unwrap().len(), 2, "{mode:?}");
        let gone = ctx.open("gone", "osc.udp://:0").unwrap();
        assert_eq!(ctx.channel_name(gone).unwrap(), "gone");
        ctx.close(gone).unwrap();
        assert!(matches!(
            ctx.channel_name(gone),
            Err(rosco::Error::NoChannel)
        ));
    }
}

/// A poll-mode context tracing packets as text and/or hex.
fn traced(text: bool, hex: bool) -> Context {
    Context::new(ContextOptions {
        trace: rosco::runtime::Trace { text, hex },
        ..ContextOptions::default()
    })
    .unwrap()
}

/// Every line `ctx` logs at debug level and above from now on.
fn log_lines(ctx: &Context) -> Log {
    let lines = Log::default();
    let l = lines.clone();
    ctx.set_log_callback(
        rosco::runtime::LogLevel::Debug,
        Some(move |_, text: &str| l.lock().unwrap().push(text.to_string())),
    );
    lines
}

/// A method at `address` that closes channel `id`.
fn closes_at(ctx: &Arc<Context>, address: &str, id: ChannelId) {
    let me = Arc::downgrade(ctx);
    ctx.methods()
        .add_method(Some(address), None, move |_, _| {
            if let Some(ctx) = me.upgrade() {
                ctx.close(id).unwrap();
            }
            Flow::Handled
        })
        .unwrap();
}

/// A channel closed by a callback is not read on in the rest of the round, nor in the
/// rest of a read: no message of it dispatched, no false trouble reported (a listener's
/// socket, a placeholder by then, failing to accept; a datagram over its limit).
#[test]
fn a_channel_closed_by_a_callback_is_read_no_more() {
    // Two listeners with a connection waiting; the first's connection closes the second.
    let ctx = Arc::new(context(Mode::Poll));
    let lines = log_lines(&ctx);
    let a = ctx.open("a", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let b = ctx.open("b", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let me = Arc::downgrade(&ctx);
    ctx.set_event_callback(Some(move |e: &Event| {
        if let (Event::Connected { channel, .. }, Some(ctx)) = (e, me.upgrade()) {
            if *channel == a {
                ctx.close(b).unwrap();
            }
        }
    }));
    let ports = [ctx.port(a).unwrap(), ctx.port(b).unwrap()];
    let _peers = ports.map(|p| TcpStream::connect(("127.0.0.1", p)).unwrap());
    assert!(until(&ctx, || ctx.channel_id("b").is_none()));
    ctx.poll(Some(Duration::from_millis(50))).unwrap();
    let lines = lines.lock().unwrap();
    assert!(!lines.iter().any(|l| l.contains("accept")), "{lines:?}");

    // One read of datagrams: the first closes its channel, one is over the limit.
    let ctx = Arc::new(context(Mode::Poll));
    let rx = ctx
        .open("rx", "osc.udp://:0?bind=127.0.0.1&max_packet=64")
        .unwrap();
    let port = ctx.port(rx).unwrap();
    closes_at(&ctx, "/close", rx);
    let after = counter(&ctx, "/after");
    let seen = events(&ctx);
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let message = |address: &str| {
        let mut p = Vec::new();
        ctx.encode(address, &[], &mut p).unwrap();
        p
    };
    // Several at once first: the channel reads in batches from then on.
    for _ in 0..4 {
        tx.send_to(&message("/warm"), ("127.0.0.1", port)).unwrap();
    }
    ctx.poll(Some(Duration::from_millis(100))).unwrap();
    for packet in [message("/close"), vec![0; 200], message("/after")] {
        tx.send_to(&packet, ("127.0.0.1", port)).unwrap();
    }
    assert!(until(&ctx, || ctx.channel_id("rx").is_none()));
    assert_eq!(after.load(Ordering::SeqCst), 0);
    let malformed = |e: &Event| matches!(e, Event::Malformed { .. });
    assert_eq!(count(&seen, malformed), 0, "{:?}", seen.lock().unwrap());

    // What it handed on before still comes: the rest of the bundle being dispatched, and
    // a bundle held for its time.
    let ctx = Arc::new(context(Mode::Poll));
    let rx = ctx.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(rx).unwrap();
    closes_at(&ctx, "/close", rx);
    let (rest, later) = (counter(&ctx, "/rest"), counter(&ctx, "/later"));
    let bundle = |at: TimeTag, addresses: &[&str]| {
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf);
        w.begin_bundle(at).unwrap();
        for address in addresses {
            w.message(*address, &[]).unwrap();
        }
        w.end_bundle().unwrap();
        buf
    };
    let held = bundle(TimeTag::after(Duration::from_millis(200)), &["/later"]);
    tx.send_to(&held, ("127.0.0.1", port)).unwrap();
    ctx.poll(Some(Duration::from_millis(50))).unwrap();
    let closing = bundle(TimeTag::IMMEDIATE, &["/close", "/rest"]);
    tx.send_to(&closing, ("127.0.0.1", port)).unwrap();
    assert!(until(&ctx, || later.load(Ordering::SeqCst) == 1));
    assert!(ctx.channel_id("rx").is_none());
    assert_eq!(rest.load(Ordering::SeqCst), 1);
}

/// Events recorded, each with whether it came after the close that the event callback
/// made (of `target`, at the first event `when` picks).
type ClosingEvents = Arc<Mutex<Vec<(bool, Event)>>>;

fn close_on_event(
    ctx: &Arc<Context>,
    target: ChannelId,
    when: impl Fn(&Event) -> bool + Send + Sync + 'static,
) -> ClosingEvents {
    let seen = ClosingEvents::default();
    let (s, me, closed) = (seen.clone(), Arc::downgrade(ctx), AtomicBool::new(false));
    ctx.set_event_callback(Some(move |e: &Event| {
        let after = closed.load(Ordering::SeqCst);
        s.lock().unwrap().push((after, e.clone()));
        if let (false, true, Some(ctx)) = (after, when(e), me.upgrade()) {
            ctx.close(target).unwrap();
            closed.store(true, Ordering::SeqCst);
        }
    }));
    seen
}

/// The events about `id` after its close.
fn after_close(seen: &ClosingEvents, id: ChannelId) -> Vec<Event> {
    let seen = seen.lock().unwrap();
    let after = seen.iter().filter(|(after, e)| *after && e.channel() == id);
    after.map(|(_, e)| e.clone()).collect()
}

/// A channel closed by an event's callback reports nothing more, and a listener accepts
/// nothing more (on the placeholder left in its socket's place: a false warning).
#[test]
fn a_channel_closed_by_an_event_callback_reports_nothing_more() {
    let is =
        |id: ChannelId, what: fn(&Event) -> bool| move |e: &Event| e.channel() == id && what(e);
    let accepting = |l: &Log| l.lock().unwrap().iter().any(|l| l.contains("accept"));

    // A listener closed by its own `Connected` callback.
    let ctx = shared_context(Mode::Poll);
    let lines = log_lines(&ctx);
    let a = ctx.open("a", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let seen = close_on_event(&ctx, a, is(a, |e| matches!(e, Event::Connected { .. })));
    let _peer = TcpStream::connect(("127.0.0.1", ctx.port(a).unwrap())).unwrap();
    assert!(until(&ctx, || ctx.channel_id("a").is_none()));
    ctx.poll(Some(Duration::from_millis(50))).unwrap();
    assert!(!accepting(&lines), "{lines:?}");
    assert!(after_close(&seen, a).is_empty(), "{seen:?}");

    // A listener closed by the accept filter, whatever it says.
    for verdict in [true, false] {
        let ctx = shared_context(Mode::Poll);
        let lines = log_lines(&ctx);
        let a = ctx.open("a", "osc.tcp://:0?bind=127.0.0.1").unwrap();
        let seen = close_on_event(&ctx, a, |_| false);
        let me = Arc::downgrade(&ctx);
        ctx.set_accept_filter(Some(move |ch: ChannelId, _| {
            if let Some(ctx) = me.upgrade() {
                ctx.close(ch).unwrap();
            }
            verdict
        }));
        let _peer = TcpStream::connect(("127.0.0.1", ctx.port(a).unwrap())).unwrap();
        assert!(until(&ctx, || ctx.channel_id("a").is_none()));
        ctx.poll(Some(Duration::from_millis(50))).unwrap();
        assert!(!accepting(&lines), "{verdict}: {lines:?}");
        let events = seen.lock().unwrap();
        let about_peers = events
            .iter()
            .any(|(_, e)| matches!(e, Event::Connected { .. } | Event::Disconnected { .. }));
        assert!(!about_peers, "{verdict}: {events:?}");
    }

    // A channel closed by another's `Bound` callback is not reported bound.
    let ctx = shared_context(Mode::Poll);
    let a = ctx.open("a", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let b = ctx.open("b", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let seen = close_on_event(&ctx, b, is(a, |e| matches!(e, Event::Bound { .. })));
    assert!(until(&ctx, || ctx.channel_id("b").is_none()));
    ctx.poll(Some(Duration::from_millis(50))).unwrap();
    assert!(after_close(&seen, b).is_empty(), "{seen:?}");

    // A client closed by its `Disconnected` callback is not reported reconnecting.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ctx = shared_context(Mode::Poll);
    let to = format!(
        "osc.tcp://127.0.0.1:{}",
        server.local_addr().unwrap().port()
    );
    let c = ctx.open("c", &to).unwrap();
    let seen = close_on_event(&ctx, c, is(c, |e| matches!(e, Event::Disconnected { .. })));
    let (conn, _) = server.accept().unwrap();
    let connected = |e: &(bool, Event)| matches!(e.1, Event::Connected { .. });
    assert!(until(&ctx, || seen.lock().unwrap().iter().any(connected)));
    drop(conn);
    assert!(until(&ctx, || ctx.channel_id("c").is_none()));
    ctx.poll(Some(Duration::from_millis(50))).unwrap();
    assert!(after_close(&seen, c).is_empty(), "{seen:?}");
}

#[test]
fn packets_are_traced_in_the_log_when_asked() {
    let ctx = traced(true, true);
    let lines = log_lines(&ctx);
    let log = record(&ctx);
    let (_rx, tx) = udp_pair(&ctx);
    ctx.send(tx, "/a", &[Arg::Int(1), Arg::str("x")]).unwrap();
    let mut bundle = Vec::new();
    let mut w = PacketWriter::new(&mut bundle);
    w.begin_bundle(TimeTag::IMMEDIATE).unwrap();
    w.message("/b", &[]).unwrap();
    w.message("/c", &[Arg::Float(0.5)]).unwrap();
    w.end_bundle().unwrap();
    ctx.send_packet(tx, &bundle).unwrap();
    assert!(until(&ctx, || len(&log) == 3));
    let lines = lines.lock().unwrap().clone();
    let find = |start: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in {lines:#?}"))
            .clone()
    };
    let sent = find("channel 'tx' sends: /a is 1 \"x\"\n0000  2f 61 00 00");
    assert!(sent.ends_with("|/a..,is.....x...|"), "{sent}");
    let received = find("channel 'rx' receives (127.0.0.1:");
    assert!(received.contains("): /a is 1 \"x\"\n0000"), "{received}");
    find("channel 'tx' sends: #bundle 00000000.00000001 [/b ; /c f 0.500000]\n0000  23 62 75 6e");
    // Traced as the context decodes: with its address table, a compressed address is
    // shown whole.
    let mut table = rosco::osc::AddressTable::new();
    table.insert(7, "/synth/freq").unwrap();
    let table = Some(Arc::new(table));
    let mut options = ContextOptions {
        trace: rosco::runtime::Trace {
            text: true,
            hex: false,
        },
        ..ContextOptions::default()
    };
    options.encode.addresses = table.clone();
    options.receive.decode.addresses = table;
    let compressing = Context::new(options).unwrap();
    let compressed = log_lines(&compressing);
    let out = compressing.open("out", "osc.udp://127.0.0.1:9").unwrap();
    compressing
        .send(out, "/synth/freq", &[Arg::Int(1)])
        .unwrap();
    let line = "channel 'out' sends: /synth/freq i 1".to_string();
    assert!(compressed.lock().unwrap().contains(&line), "{compressed:?}");
    // What a context sends is shown whatever its receiving side would refuse (patterns
    // are limited to 1 KiB there by default).
    let long = format!("/*{}", "a".repeat(1100));
    compressing.send(out, &long, &[]).unwrap();
    let shown = format!("channel 'out' sends: {long} ");
    assert!(
        compressed.lock().unwrap().contains(&shown),
        "{compressed:?}"
    );
    // Off (the default): no packet is formatted.
    let quiet = context(Mode::Poll);
    let lines = log_lines(&quiet);
    let out = quiet.open("out", "osc.udp://127.0.0.1:9").unwrap();
    quiet.send(out, "/a", &[]).unwrap();
    quiet.poll(Some(Duration::from_millis(20))).unwrap();
    assert!(!lines.lock().unwrap().iter().any(|l| l.contains("sends")));
}

#[test]
fn subscriptions_keep_messages_for_the_application() {
    for mode in MODES {
        let ctx = context(mode);
        let methods_before = ctx.methods().len();
        let (rx, tx) = udp_pair(&ctx);
        // Two routes merged into one queue of three; a second subscriber; a method.
        let mut notes = ctx.subscribe(Some("/note/*"), None, 3).unwrap();
        notes.also(Some("/cc"), Some("i")).unwrap();
        let on = ctx.subscribe(Some("/note/on"), Some("ii"), 16).unwrap();
        let counted = counter(&ctx, "/note/on");
        assert!(ctx.subscribe(Some("/bad["), None, 1).is_err());
        ctx.send(tx, "/note/on", &[Arg::Int(60), Arg::Int(100)])
            .unwrap();
        ctx.send(tx, "/cc", &[Arg::str("not an int")]).unwrap();
        ctx.send(tx, "/cc", &[Arg::Int(7)]).unwrap();
        ctx.send(tx, "/note/off", &[Arg::Int(60)]).unwrap();
        ctx.send(tx, "/note/x", &[]).unwrap(); // the fourth for a queue of three
                                               // (In threaded mode the I/O thread fills the queues; `poll` only waits.)
        assert!(
            until(&ctx, || notes.len() == 3
                && notes.dropped() == 1
                && on.len() == 1),
            "{mode:?}"
        );
        let first = notes.try_recv().expect("a message");
        let m = first.message();
        assert_eq!(m.address_str(), Some("/note/on"), "{mode:?}");
        assert_eq!(m.args().collect::<Vec<_>>(), [Arg::Int(60), Arg::Int(100)]);
        assert_eq!(first.info.channel, Some(rx));
        assert!(first.info.source.is_some());
        let on_first = on
            .try_recv()
            .expect("the same message for the second subscriber");
        assert_eq!(on_first.message().address(), b"/note/on");
        let rest: Vec<_> = std::iter::from_fn(|| notes.try_recv())
            .map(|r| r.message().address_str().unwrap().to_string())
            .collect();
        assert_eq!(rest, ["/cc", "/note/off"], "{mode:?}");
        assert!(notes.try_recv().is_none());
        assert!(matches!(
            notes.recv_timeout(Duration::from_millis(20)),
            Err(rosco::Error::Timeout)
        ));
        if mode == Mode::Threaded {
            // A wait gets what the I/O thread delivers meanwhile.
            ctx.send(tx, "/note/late", &[]).unwrap();
            let late = notes
                .recv_timeout(Duration::from_secs(5))
                .expect("/note/late");
            assert_eq!(late.message().address(), b"/note/late");
        }
        assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), 1);
        // Dropping a subscription removes its methods.
        drop(notes);
        drop(on);
        assert_eq!(ctx.methods().len(), methods_before + 1, "{mode:?}");
    }
}

/// A subscription whose routes overlap keeps a message they both match once (it was kept
/// once per route, and the copy took room meant for later messages); another subscription
/// still gets its own.
#[test]
fn overlapping_routes_keep_a_message_once() {
    let ctx = context(Mode::Poll);
    let (_, tx) = udp_pair(&ctx);
    let mut notes = ctx.subscribe(Some("/note/*"), None, 4).unwrap();
    notes.also(Some("/note/on"), None).unwrap();
    notes.also(None, None).unwrap();
    let other = ctx.subscribe(Some("/note/on"), None, 4).unwrap();
    ctx.send(tx, "/note/on", &[Arg::Int(60)]).unwrap();
    ctx.send(tx, "/cc", &[]).unwrap();
    assert!(until(&ctx, || notes.len() == 2 && other.len() == 1));
    ctx.poll(Some(Duration::from_millis(20))).unwrap();
    let kept: Vec<_> = std::iter::from_fn(|| notes.try_recv())
        .map(|r| r.message().address_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, ["/note/on", "/cc"]);
    assert_eq!((notes.dropped(), other.len()), (0, 1));
}

#[test]
fn a_wait_on_a_subscription_ends_when_its_context_shuts_down() {
    for mode in MODES {
        let ctx = context(mode);
        let sub = ctx.subscribe(None, None, 4).unwrap();
        ctx.send_to("_local", "/kept", &[]).unwrap();
        assert!(until(&ctx, || sub.len() == 1), "{mode:?}");
        assert!(!sub.is_closed());
        let waiter = std::thread::spawn(move || {
            let kept = sub.recv_timeout(Duration::from_secs(60)).map(drop);
            let started = Instant::now();
            let after = sub.recv_timeout(Duration::from_secs(60));
            (kept, after.map(drop), started.elapsed(), sub.is_closed())
        });
        std::thread::sleep(Duration::from_millis(50));
        ctx.shutdown();
        let (kept, after, waited, closed) = waiter.join().unwrap();
        assert!(
            kept.is_ok(),
            "{mode:?}: a message kept before shutdown is still taken"
        );
        assert!(
            matches!(after, Err(rosco::Error::Closed)),
            "{mode:?}: {after:?}"
        );
        // Far under the 60 s asked for: the shutdown ended the wait.
        assert!(waited < Duration::from_secs(30), "{mode:?}: {waited:?}");
        assert!(closed);
    }
    // No route can be added once the context is gone.
    let ctx = context(Mode::Poll);
    let mut sub = ctx.subscribe(None, None, 1).unwrap();
    ctx.shutdown();
    assert!(matches!(
        sub.also(Some("/x"), None),
        Err(rosco::Error::Closed)
    ));
    assert!(sub.is_closed());
}

#[test]
fn a_route_added_while_the_context_shuts_down_does_not_keep_it_open() {
    // Routes are added on one thread while another shuts the context down: whatever the
    // interleaving, once `also` has said `Closed` the subscription is closed too, so a wait
    // on it ends at once instead of waiting for messages that cannot come.
    for round in 0..200 {
        let ctx = context(Mode::Poll);
        let mut sub = ctx.subscribe(Some("/first"), None, 1).unwrap();
        let ctx = Arc::new(ctx);
        let closer = {
            let ctx = ctx.clone();
            std::thread::spawn(move || ctx.shutdown())
        };
        let mut added = 0;
        while !closer.is_finished() && sub.also(Some("/more/route"), Some("ifs")).is_ok() {
            added += 1;
        }
        closer.join().unwrap();
        let late = sub.also(Some("/late"), None);
        assert!(
            matches!(late, Err(rosco::Error::Closed)) && sub.is_closed(),
            "round {round}, after {added} routes: {late:?}"
        );
        let started = Instant::now();
        assert!(matches!(
            sub.recv_timeout(Duration::from_secs(5)),
            Err(rosco::Error::Closed)
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn a_log_callback_may_send_and_close_channels_while_packets_are_traced() {
    let ctx = traced(true, false);
    let (_rx, tx) = udp_pair(&ctx);
    let spare = ctx.open("spare", "osc.udp://127.0.0.1:9").unwrap();
    let (sender, lines) = (ctx.sender(), Arc::new(Mutex::new(Vec::new())));
    let l = lines.clone();
    ctx.set_log_callback(
        rosco::runtime::LogLevel::Debug,
        Some(move |_, text: &str| {
            l.lock().unwrap().push(text.to_string());
            // Forwarding the log over OSC (its own sends are not traced), and closing a
            // channel (no lock on the channel table is held here).
            if text.contains("sends: /note") {
                sender.send(tx, "/log", &[Arg::str(text)]).unwrap();
                let _ = sender.channel_name(spare);
            }
        }),
    );
    ctx.send(tx, "/note", &[]).unwrap();
    let lines_now = lines.lock().unwrap().clone();
    assert_eq!(
        lines_now.iter().filter(|l| l.contains("sends")).count(),
        1,
        "{lines_now:?}"
    );
    // Closing from inside the log callback does not deadlock.
    let closer = ctx.sender();
    let ctx = Arc::new(ctx);
    let c = ctx.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    ctx.set_log_callback(
        rosco::runtime::LogLevel::Debug,
        Some(move |_, text: &str| {
            if text.contains("sends: /close") && !d.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                c.close(spare).unwrap();
            }
        }),
    );
    closer.send(tx, "/close", &[]).unwrap();
    assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    assert!(matches!(
        ctx.channel_name(spare),
        Err(rosco::Error::NoChannel)
    ));
    ctx.set_log_callback(rosco::runtime::LogLevel::Debug, None::<fn(_, &str)>);
}

#[test]
fn a_sender_can_ask_for_an_address_family() {
    let ctx = context(Mode::Poll);
    let log = record(&ctx);
    let rx = ctx.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let tcp_rx = ctx.open("tcp-rx", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let (port, tcp_port) = (ctx.port(rx).unwrap(), ctx.port(tcp_rx).unwrap());
    let udp = format!("osc.udp://localhost:{port}?family=4");
    let tx = ctx.open("tx", &udp).unwrap();
    assert_eq!(
        ctx.url(tx).unwrap(),
        format!("osc.udp://localhost:{port}/?family=4")
    );
    let tcp = format!("osc.tcp://localhost:{tcp_port}?family=4");
    let tcp_tx = ctx.open("tcp-tx", &tcp).unwrap();
    ctx.send(tx, "/udp", &[]).unwrap();
    ctx.send(tcp_tx, "/tcp", &[]).unwrap();
    assert!(until(&ctx, || len(&log) == 2));
    // An address of the other family cannot be had.
    let e = ctx
        .open("v6", "osc.udp://127.0.0.1:9?family=6")
        .unwrap_err();
    assert!(e.to_string().contains("family 6"), "{e}");
}

#[test]
fn a_connected_sender_hears_its_destination_only() {
    let ctx = context(Mode::Poll);
    // Replies go out through the connected socket too (`send_to` would fail on BSD).
    let sender = ctx.sender();
    ctx.methods()
        .add_method(Some("/dest"), None, move |_, info| {
            sender.reply(info, "/back", &[]).unwrap();
            Flow::PassOn
        })
        .unwrap();
    let log = record(&ctx);
    let dest = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = dest.local_addr().unwrap().port();
    let tx = ctx
        .open("tx", &format!("osc.udp://127.0.0.1:{port}?connect=1"))
        .unwrap();
    assert_eq!(
        ctx.url(tx).unwrap(),
        format!("osc.udp://127.0.0.1:{port}/?connect=1")
    );
    ctx.send(tx, "/to", &[Arg::Int(1)]).unwrap();
    let mut buf = [0u8; 64];
    dest.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (n, from) = dest.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"/to\0,i\0\0\0\0\0\x01");
    // A stranger's datagram first, then the destination's: only the second gets in.
    let mut packet = Vec::new();
    rosco::osc::encode_message("/stranger", &[], &mut packet).unwrap();
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(&packet, from).unwrap();
    rosco::osc::encode_message("/dest", &[], &mut packet).unwrap();
    dest.send_to(&packet, from).unwrap();
    assert!(until(&ctx, || len(&log) >= 1));
    ctx.poll(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(*log.lock().unwrap(), ["/dest "]);
    let n = dest.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"/back\0\0\0,\0\0\0");
    // With the destination gone, the kernel's "port unreachable" comes back on a later
    // send, which tries again: every message still goes out.
    drop(dest);
    for _ in 0..3 {
        ctx.send(tx, "/to", &[Arg::Int(1)]).unwrap();
    }
    // The first message, the reply and these three.
    assert_eq!(ctx.stats(tx).unwrap().packets_out, 5);
    ctx.poll(Some(Duration::ZERO)).unwrap();
    let e = ctx
        .open("group", "osc.udp://239.1.2.3:7000?connect=1")
        .unwrap_err();
    assert!(e.to_string().contains("unicast"), "{e}");
    // Nothing goes anywhere else: a reply to another source is refused.
    let elsewhere = rosco::dispatch::MsgInfo::new(TimeTag::now())
        .with_channel(Some(tx))
        .with_source(Some("127.0.0.1:9".parse().unwrap()));
    let e = ctx.reply(&elsewhere, "/x", &[]).unwrap_err();
    assert!(e.to_string().contains("destination only"), "{e}");
    // A wildcard destination is connected to the loopback address, where replies come
    // from: replies to it go out.
    let dest = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = dest.local_addr().unwrap().port();
    let any = ctx
        .open("any", &format!("osc.udp://0.0.0.0:{port}?connect=1"))
        .unwrap();
    let from = ctx.local_addr(any).unwrap();
    let back = rosco::dispatch::MsgInfo::new(TimeTag::now())
        .with_channel(Some(any))
        .with_source(Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))));
    ctx.reply(&back, "/again", &[]).unwrap();
    dest.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (n, seen_from) = dest.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"/again\0\0,\0\0\0");
    assert_eq!(seen_from.port(), from.port());
}

#[test]
fn workers_run_callbacks_side_by_side() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let ctx = Context::new(ContextOptions {
        mode: Mode::Threaded,
        workers: 4,
        ..ContextOptions::default()
    })
    .unwrap();
    let (running, most, done) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let threads = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let (r, m, d, t) = (running.clone(), most.clone(), done.clone(), threads.clone());
    ctx.methods()
        .add_method(Some("/work"), None, move |_, _| {
            let now = r.fetch_add(1, SeqCst) + 1;
            m.fetch_max(now, SeqCst);
            let name = std::thread::current().name().unwrap_or("").to_string();
            t.lock().unwrap().insert(name);
            // Waits (within reason) for a second callback to run meanwhile, which only a
            // second thread can do.
            let stop = Instant::now() + Duration::from_secs(5);
            while m.load(SeqCst) < 2 && Instant::now() < stop {
                std::thread::sleep(Duration::from_millis(1));
            }
            r.fetch_sub(1, SeqCst);
            d.fetch_add(1, SeqCst);
            Flow::Handled
        })
        .unwrap();
    let (_rx, tx) = udp_pair(&ctx);
    for _ in 0..8 {
        ctx.send(tx, "/work", &[]).unwrap();
    }
    assert!(until(&ctx, || done.load(SeqCst) == 8));
    assert!(most.load(SeqCst) >= 2, "callbacks ran one at a time");
    let threads = threads.lock().unwrap();
    assert!(threads.len() >= 2, "{threads:?}");
    assert!(
        threads.iter().all(|n| n.starts_with("rosco-worker-")),
        "{threads:?}"
    );
    drop(ctx);
    for (mode, workers) in [(Mode::Poll, 1), (Mode::IoThread, 2), (Mode::Threaded, 257)] {
        let options = ContextOptions {
            mode,
            workers,
            ..ContextOptions::default()
        };
        let e = Context::new(options).unwrap_err();
        assert!(e.to_string().contains("workers"), "{e}");
    }
}

#[test]
fn a_panicking_callback_leaves_its_channel_working() {
    for (n, (mode, ctx)) in models().enumerate() {
        let booms = Arc::new(Mutex::new(0));
        let b = booms.clone();
        ctx.methods()
            .add_method(Some("/boom"), None, move |_, _| {
                *b.lock().unwrap() += 1;
                panic!("a test callback panics")
            })
            .unwrap();
        let log = record(&ctx);
        // The panic is logged; a log callback that panics as well stops nothing.
        let logged = Log::default();
        let l = logged.clone();
        ctx.set_log_callback(
            rosco::runtime::LogLevel::Error,
            Some(move |_, line: &str| {
                l.lock().unwrap().push(line.to_string());
                panic!("a test log callback panics")
            }),
        );
        let (_rx, udp) = udp_pair(&ctx);
        let unix = format!("/tmp/rosco-panic-{}-{n}", std::process::id());
        let _ = std::fs::remove_file(&unix);
        ctx.open("unix-rx", &format!("osc.unix://{unix}?listen"))
            .unwrap();
        let unix = ctx.open("unix-tx", &format!("osc.unix://{unix}")).unwrap();
        let tcp_rx = ctx.open("tcp-rx", "osc.tcp://:0?bind=127.0.0.1").unwrap();
        let tcp_port = ctx.port(tcp_rx).unwrap();
        let tcp = ctx
            .open("tcp-tx", &format!("osc.tcp://127.0.0.1:{tcp_port}"))
            .unwrap();
        // The panic is caught where the packet is handled, and the packets read with it
        // (the rest of a batch, later frames of a stream) go on; in io-thread mode, where
        // callbacks run inside `poll`, it comes out of `poll` and the caller may carry on.
        let poll = || {
            let turn = std::panic::AssertUnwindSafe(|| ctx.poll(Some(Duration::from_millis(10))));
            let _ = std::panic::catch_unwind(turn);
        };
        for to in [udp, unix, tcp] {
            for address in ["/ok", "/ok", "/boom", "/ok", "/ok"] {
                ctx.send(to, address, &[]).unwrap();
            }
        }
        let oks = || {
            log.lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("/ok"))
                .count()
        };
        // Everything asserted below is waited for: a worker may still be unwinding from
        // the last /boom while the others log the last /ok.
        let logs = if mode.starts_with("IoThread") { 0 } else { 3 };
        let stop = Instant::now() + Duration::from_secs(20);
        while (oks() < 12 || *booms.lock().unwrap() < 3 || logged.lock().unwrap().len() < logs)
            && Instant::now() < stop
        {
            poll();
        }
        assert_eq!(oks(), 12, "{mode}: {:?}", log.lock().unwrap());
        assert_eq!(*booms.lock().unwrap(), 3, "{mode}");
        if !mode.starts_with("IoThread") {
            let logged = logged.lock().unwrap();
            assert!(
                logged.iter().all(|l| l.contains("panicked")),
                "{mode}: {logged:?}"
            );
            assert_eq!(logged.len(), 3, "{mode}: {logged:?}");
        }
        drop(ctx);
        let _ = std::fs::remove_file(format!("/tmp/rosco-panic-{}-{n}", std::process::id()));
    }
}

#[test]
fn the_poll_set_follows_channels_opened_and_closed_while_polling() {
    for (mode, ctx) in models() {
        let log = record(&ctx);
        let mut packet = Vec::new();
        rosco::osc::encode_message("/in", &[], &mut packet).unwrap();
        let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = ctx.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
        let port = ctx.port(rx).unwrap();
        // Busy polling keeps its poll set between calls; a channel opened meanwhile on
        // another thread is read all the same.
        let opened = std::thread::scope(|s| {
            let opener = s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                let id = ctx.open("late", "osc.udp://:0?bind=127.0.0.1").unwrap();
                let late = ctx.port(id).unwrap();
                raw.send_to(&packet, ("127.0.0.1", late)).unwrap();
                id
            });
            let stop = Instant::now() + Duration::from_secs(5);
            while len(&log) < 1 && Instant::now() < stop {
                ctx.poll(Some(Duration::ZERO)).unwrap();
            }
            opener.join().unwrap()
        });
        assert_eq!(len(&log), 1, "{mode}: the late channel was not read");
        // Closed between busy polls, the port can be had again at once, and the channel
        // that takes it is read.
        ctx.close(rx).unwrap();
        ctx.close(opened).unwrap();
        let again = ctx
            .open("again", &format!("osc.udp://:{port}?bind=127.0.0.1"))
            .unwrap();
        raw.send_to(&packet, ("127.0.0.1", port)).unwrap();
        let stop = Instant::now() + Duration::from_secs(5);
        while len(&log) < 2 && Instant::now() < stop {
            ctx.poll(Some(Duration::ZERO)).unwrap();
        }
        assert_eq!(len(&log), 2, "{mode}: the reopened port was not read");
        assert_eq!(ctx.stats(again).unwrap().packets_in, 1, "{mode}");
    }
}

fn shared_context(mode: Mode) -> Arc<Context> {
    Arc::new(context(mode))
}

fn wait_closed(ctx: &Context) {
    let stop = Instant::now() + Duration::from_secs(20);
    while !ctx.is_closed() && Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(ctx.is_closed());
}

/// A method `/stop` that shuts its own context down, then runs on for 300 ms; the flag
/// says it has finished.
fn stopper(ctx: &Arc<Context>) -> Arc<AtomicBool> {
    let finished = Arc::new(AtomicBool::new(false));
    let (me, f) = (Arc::downgrade(ctx), finished.clone());
    ctx.methods()
        .add_method(Some("/stop"), None, move |_, _| {
            if let Some(ctx) = me.upgrade() {
                ctx.shutdown();
            }
            std::thread::sleep(Duration::from_millis(300));
            f.store(true, Ordering::SeqCst);
            Flow::Handled
        })
        .unwrap();
    finished
}

/// A shutdown called while another thread's is under way keeps the same promise: no
/// callback runs once it returns.
#[test]
fn a_second_shutdown_returns_once_the_first_is_done() {
    let ctx = shared_context(Mode::Threaded);
    let running = Arc::new(AtomicBool::new(false));
    let r = running.clone();
    ctx.methods()
        .add_method(Some("/slow"), None, move |_, _| {
            r.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            r.store(false, Ordering::SeqCst);
            Flow::Handled
        })
        .unwrap();
    let after = counter(&ctx, "/after");
    let (_rx, tx) = udp_pair(&ctx);
    ctx.send(tx, "/slow", &[]).unwrap();
    ctx.send(tx, "/after", &[]).unwrap();
    let stop = Instant::now() + Duration::from_secs(20);
    while !running.load(Ordering::SeqCst) && Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(1));
    }
    let first = ctx.clone();
    let first = std::thread::spawn(move || first.shutdown());
    wait_closed(&ctx);
    ctx.shutdown();
    let seen = after.load(Ordering::SeqCst);
    assert!(
        !running.load(Ordering::SeqCst),
        "returned while a callback ran"
    );
    first.join().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(after.load(Ordering::SeqCst), seen, "a callback ran after");
}

/// When the first shutdown was made from a callback, which cannot wait for its own poll
/// or thread, every later one waits for that callback to end, in every mode.
#[test]
fn later_shutdowns_wait_for_the_callback_that_shut_down() {
    for mode in MODES {
        let ctx = shared_context(mode);
        let finished = stopper(&ctx);
        let (_rx, tx) = udp_pair(&ctx);
        let poller = ctx.clone();
        let poller = std::thread::spawn(move || {
            while !poller.is_closed() {
                let _ = poller.poll(Some(Duration::from_millis(20)));
            }
        });
        ctx.send(tx, "/stop", &[]).unwrap();
        wait_closed(&ctx);
        let later: Vec<_> = (0..2)
            .map(|_| {
                let (ctx, finished) = (ctx.clone(), finished.clone());
                std::thread::spawn(move || {
                    ctx.shutdown();
                    finished.load(Ordering::SeqCst)
                })
            })
            .collect();
        let seen: Vec<bool> = later.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            seen,
            [true, true],
            "{mode:?}: returned while the callback ran"
        );
        poller.join().unwrap();
    }
}

/// When the first shutdown was made from a log callback or a packet hook on a thread that
/// sends, a later one waits for that call to end.
#[test]
fn later_shutdowns_wait_for_the_log_callback_or_hook_that_shut_down() {
    for (mode, hook) in [
        (Mode::Poll, false),
        (Mode::IoThread, false),
        (Mode::Threaded, false),
    ]
    .into_iter()
    .chain([(Mode::IoThread, true)])
    {
        let options = ContextOptions {
            mode,
            trace: rosco::runtime::Trace {
                text: true,
                hex: false,
            },
            ..ContextOptions::default()
        };
        let ctx = Arc::new(Context::new(options).unwrap());
        let (_rx, tx) = udp_pair(&ctx);
        let finished = Arc::new(AtomicBool::new(false));
        let (first_done, first_returned) = std::sync::mpsc::channel();
        let first_done = Mutex::new(first_done);
        let (me, f) = (Arc::downgrade(&ctx), finished.clone());
        let shut_down = move || {
            if std::thread::current().name() != Some("sender") {
                return;
            }
            if let Some(ctx) = me.upgrade() {
                ctx.shutdown();
            }
            let _ = first_done.lock().unwrap().send(());
            std::thread::sleep(Duration::from_millis(300));
            f.store(true, Ordering::SeqCst);
        };
        match hook {
            false => ctx.set_log_callback(
                rosco::runtime::LogLevel::Debug,
                Some(move |_, _: &str| shut_down()),
            ),
            true => {
                let hook: PacketHook = Box::new(move |_: &[u8], _: &mut Vec<u8>| {
                    shut_down();
                    HookVerdict::Pass
                });
                ctx.set_packet_hooks(tx, None, Some(hook)).unwrap();
            }
        }
        let s = ctx.clone();
        let sender = std::thread::Builder::new().name("sender".into());
        let sender = sender.spawn(move || drop(s.send(tx, "/x", &[]))).unwrap();
        first_returned
            .recv_timeout(Duration::from_secs(20))
            .unwrap();
        ctx.shutdown();
        assert!(finished.load(Ordering::SeqCst), "{mode:?}, hook {hook}");
        sender.join().unwrap();
    }
}

/// Two threaded contexts whose callbacks shut each other down at once: a shutdown from a
/// callback joins no thread (each would join the other's, which joins it); a later
/// shutdown from another thread does.
#[test]
fn callbacks_shutting_each_other_down_at_once_do_not_deadlock() {
    let (a, b) = (
        shared_context(Mode::Threaded),
        shared_context(Mode::Threaded),
    );
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let done = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for (ctx, other) in [(&a, &b), (&b, &a)] {
        let (other, barrier, done) = (Arc::downgrade(other), barrier.clone(), done.clone());
        ctx.methods()
            .add_method(Some("/stop"), None, move |_, _| {
                barrier.wait();
                if let Some(other) = other.upgrade() {
                    other.shutdown();
                }
                done.fetch_add(1, Ordering::SeqCst);
                Flow::Handled
            })
            .unwrap();
        senders.push(udp_pair(ctx).1);
    }
    a.send(senders[0], "/stop", &[]).unwrap();
    b.send(senders[1], "/stop", &[]).unwrap();
    let both = done.clone();
    assert!(returns(move || while both.load(Ordering::SeqCst) < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }));
    assert!(shut_down_both(a, b), "the later shutdowns");
}

/// A destructor that panics while a shutdown frees the methods: the rest is done all the
/// same (channels closed, ports free), and the panic is raised after it.
#[test]
fn a_panicking_destructor_does_not_leave_a_shutdown_half_done() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("a destructor panics");
            }
        }
    }
    let ctx = shared_context(Mode::Threaded);
    let rx = ctx.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(rx).unwrap();
    let guard = PanicsOnDrop;
    ctx.methods()
        .add_method(Some("/x"), None, move |_, _| {
            let _ = &guard;
            Flow::Handled
        })
        .unwrap();
    let first = ctx.clone();
    assert!(std::thread::spawn(move || first.shutdown()).join().is_err());
    ctx.shutdown();
    assert!(ctx.channel_id("rx").is_none());
    assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok());
}

/// A threaded context dropped from a callback of another context's poll, on a thread
/// none of them started: its threads have ended (their stop hook has run) when the drop
/// returns.
#[test]
fn a_context_dropped_from_another_contexts_callback_ends_its_threads() {
    let stopped = Arc::new(AtomicBool::new(false));
    let s = stopped.clone();
    let options = ContextOptions {
        mode: Mode::Threaded,
        thread_stop: Some(rosco::runtime::ThreadHook::new(move |_| {
            std::thread::sleep(Duration::from_millis(200));
            s.store(true, Ordering::SeqCst);
        })),
        ..ContextOptions::default()
    };
    let inner = Arc::new(Mutex::new(Some(Context::new(options).unwrap())));
    let outer = context(Mode::Poll);
    let seen = Arc::new(Mutex::new(None));
    let (i, st, sn) = (inner.clone(), stopped.clone(), seen.clone());
    outer
        .methods()
        .add_method(Some("/drop"), None, move |_, _| {
            drop(i.lock().unwrap().take());
            *sn.lock().unwrap() = Some(st.load(Ordering::SeqCst));
            Flow::Handled
        })
        .unwrap();
    let (_rx, tx) = udp_pair(&outer);
    outer.send(tx, "/drop", &[]).unwrap();
    assert!(until(&outer, || seen.lock().unwrap().is_some()));
    assert_eq!(*seen.lock().unwrap(), Some(true));
}

type ContextSlot = Arc<Mutex<std::sync::Weak<Context>>>;

/// A threaded context whose threads' stop hook shuts down the context in `slot`.
fn stop_hook_shutting_down(slot: &ContextSlot) -> Arc<Context> {
    let slot = slot.clone();
    let options = ContextOptions {
        mode: Mode::Threaded,
        thread_stop: Some(rosco::runtime::ThreadHook::new(move |_| {
            let other = slot.lock().unwrap().upgrade();
            if let Some(other) = other {
                std::thread::sleep(Duration::from_millis(50)); // both have started
                other.shutdown();
            }
        })),
        ..ContextOptions::default()
    };
    Arc::new(Context::new(options).unwrap())
}

/// Shuts the context down when dropped (a method's captured value).
struct ShutsDownOnDrop(std::sync::Weak<Context>);

impl Drop for ShutsDownOnDrop {
    fn drop(&mut self) {
        if let Some(other) = self.0.upgrade() {
            std::thread::sleep(Duration::from_millis(50)); // both have started
            other.shutdown();
        }
    }
}

/// Shuts `a` and `b` down at once on two threads; false if that deadlocked.
fn shut_down_both(a: Arc<Context>, b: Arc<Context>) -> bool {
    returns(move || {
        let other = std::thread::spawn(move || b.shutdown());
        a.shutdown();
        other.join().unwrap();
    })
}

/// User code that a shutdown runs or waits for (a thread's stop hook, a dropped method's
/// destructor, on the shutting thread or on a context's own) may shut contexts down,
/// each call returning at once instead of waiting on a wait for itself.
#[test]
fn what_a_shutdown_runs_may_shut_down_without_deadlock() {
    // A stop hook shutting down its own context.
    let slot = ContextSlot::default();
    let ctx = stop_hook_shutting_down(&slot);
    *slot.lock().unwrap() = Arc::downgrade(&ctx);
    assert!(returns(move || ctx.shutdown()), "a stop hook");

    // Crossed stop hooks.
    let slots = [ContextSlot::default(), ContextSlot::default()];
    let (a, b) = (
        stop_hook_shutting_down(&slots[1]),
        stop_hook_shutting_down(&slots[0]),
    );
    *slots[0].lock().unwrap() = Arc::downgrade(&a);
    *slots[1].lock().unwrap() = Arc::downgrade(&b);
    assert!(shut_down_both(a, b), "crossed stop hooks");

    // A stop hook shutting down the context whose shutdown drops this one's last copy.
    let slot = ContextSlot::default();
    let a = stop_hook_shutting_down(&slot);
    let b = shared_context(Mode::Threaded);
    *slot.lock().unwrap() = Arc::downgrade(&b);
    b.methods()
        .add_method(Some("/owns_a"), None, move |_, _| {
            let _ = &a;
            Flow::Handled
        })
        .unwrap();
    assert!(
        returns(move || b.shutdown()),
        "a stop hook of a dropped context"
    );

    // Crossed destructors of methods dropped by each shutdown.
    let (a, b) = (
        shared_context(Mode::Threaded),
        shared_context(Mode::Threaded),
    );
    for (ctx, other) in [(&a, &b), (&b, &a)] {
        let guard = ShutsDownOnDrop(Arc::downgrade(other));
        ctx.methods()
            .add_method(Some("/x"), None, move |_, _| {
                let _ = &guard;
                Flow::Handled
            })
            .unwrap();
    }
    assert!(shut_down_both(a, b), "crossed destructors");

    // The same, dropped on I/O threads that shut their contexts down from a callback.
    let (a, b) = (
        shared_context(Mode::Threaded),
        shared_context(Mode::Threaded),
    );
    for (ctx, other) in [(&a, &b), (&b, &a)] {
        let guard = ShutsDownOnDrop(Arc::downgrade(other));
        let finished = stopper(ctx);
        ctx.methods()
            .add_method(Some("/stop"), None, move |_, _| {
                let _ = (&guard, &finished);
                Flow::Handled
            })
            .unwrap();
        let (_rx, tx) = udp_pair(ctx);
        ctx.send(tx, "/stop", &[]).unwrap();
    }
    wait_closed(&a);
    wait_closed(&b);
    assert!(shut_down_both(a, b), "crossed destructors on I/O threads");
}

#[test]
fn a_callback_may_shut_down_a_context_being_polled() {
    // A context's callback polls a second context, whose callback shuts the first down:
    // the first's engine is held by the outer poll on this very thread.
    let outer = Arc::new(context(Mode::Poll));
    let inner = Arc::new(context(Mode::Poll));
    let (o, i) = (Arc::downgrade(&outer), inner.clone());
    outer
        .methods()
        .add_method(Some("/outer"), None, move |_, _| {
            let _ = i.poll(Some(Duration::from_millis(500)));
            Flow::Handled
        })
        .unwrap();
    inner
        .methods()
        .add_method(Some("/inner"), None, move |_, _| {
            if let Some(outer) = o.upgrade() {
                outer.shutdown();
            }
            Flow::Handled
        })
        .unwrap();
    let (_rx, tx) = udp_pair(&outer);
    let (_inner_rx, inner_tx) = udp_pair(&inner);
    inner.send(inner_tx, "/inner", &[]).unwrap();
    outer.send(tx, "/outer", &[]).unwrap();
    let done = returns(move || {
        let stop = Instant::now() + Duration::from_secs(5);
        while !outer.is_closed() && Instant::now() < stop {
            let _ = outer.poll(Some(Duration::from_millis(10)));
        }
    });
    assert!(done, "the nested shutdown deadlocked");

    // Two contexts polled on two threads shut each other down from their callbacks.
    let (a, b) = (Arc::new(context(Mode::Poll)), Arc::new(context(Mode::Poll)));
    for (ctx, other) in [(&a, &b), (&b, &a)] {
        let other = Arc::downgrade(other);
        ctx.methods()
            .add_method(Some("/stop"), None, move |_, _| {
                std::thread::sleep(Duration::from_millis(50));
                if let Some(other) = other.upgrade() {
                    other.shutdown();
                }
                Flow::Handled
            })
            .unwrap();
    }
    // Both are sent to before either is polled: a poller that ran first would shut the
    // other context down under the main thread's feet.
    for ctx in [&a, &b] {
        let (_rx, tx) = udp_pair(ctx);
        ctx.send(tx, "/stop", &[]).unwrap();
    }
    let pollers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|ctx| {
            std::thread::spawn(move || {
                let stop = Instant::now() + Duration::from_secs(5);
                while !ctx.is_closed() && Instant::now() < stop {
                    let _ = ctx.poll(Some(Duration::from_millis(10)));
                }
            })
        })
        .collect();
    let done = returns(move || pollers.into_iter().for_each(|p| p.join().unwrap()));
    assert!(done, "two contexts shutting each other down deadlocked");
}

#[test]
fn unix_datagram_and_stream() {
    let dir = std::env::temp_dir().join(format!("rosco-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mode in MODES {
        let ctx = context(mode);
        let log = record(&ctx);
        let dgram = dir.join(format!("d-{mode:?}.sock"));
        let stream = dir.join(format!("s-{mode:?}.sock"));
        // All three spellings liblo prints.
        ctx.open("dl", &format!("osc.unix://{}?listen", dgram.display()))
            .unwrap();
        let ds = ctx
            .open("ds", &format!("osc.unix://localhost:{}", dgram.display()))
            .unwrap();
        ctx.open(
            "sl",
            &format!("osc.unix:///{}?listen&stream", stream.display()),
        )
        .unwrap();
        let ss = ctx
            .open("ss", &format!("osc.unix://{}?stream", stream.display()))
            .unwrap();
        ctx.send(ds, "/dgram", &[Arg::Int(1)]).unwrap();
        ctx.send(ss, "/stream", &[Arg::Int(2)]).unwrap();
        // A datagram the receiver could not read whole is refused, not sent to be lost.
        let big = vec![7; 70_000];
        let refused = ctx.send(ds, "/big", &[Arg::Blob(&big)]);
        assert!(
            matches!(refused, Err(Error::Encode(EncodeError::TooLarge))),
            "{mode:?}: {refused:?}"
        );
        assert!(
            until(&ctx, || len(&log) == 2),
            "{mode:?}: {:?}",
            log.lock().unwrap()
        );
        drop(ctx);
        assert!(
            !dgram.exists() && !stream.exists(),
            "socket files are removed on close"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Unix stream client reports its first attempt as every later one: `Connected`, or
/// `Reconnecting` and at last `GaveUp` (it connected, or failed, with nobody told).
#[test]
fn a_unix_stream_client_reports_its_first_attempt() {
    let dir = std::env::temp_dir().join(format!("rosco-first-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut options = ContextOptions {
        mode: Mode::Threaded,
        ..ContextOptions::default()
    };
    options.reconnect.retries = 2;
    options.reconnect.initial = Duration::from_millis(20);
    let ctx = Context::new(options).unwrap();
    let seen = events(&ctx);
    let up = ctx
        .open("up", &format!("osc.unix://{}?stream", path.display()))
        .unwrap();
    let (_conn, _) = listener.accept().unwrap();
    let connected = |e: &Event| matches!(e, Event::Connected { channel, .. } if *channel == up);
    assert!(until(&ctx, || seen.lock().unwrap().iter().any(connected)));
    let nowhere = dir.join("none.sock");
    let down = ctx
        .open("down", &format!("osc.unix://{}?stream", nowhere.display()))
        .unwrap();
    let gave_up = |e: &Event| matches!(e, Event::GaveUp { channel, .. } if *channel == down);
    assert!(until(&ctx, || seen.lock().unwrap().iter().any(gave_up)));
    // Each says why the last attempt failed.
    let nothing_there = |e: &Event| match e {
        Event::Reconnecting {
            channel, reason, ..
        }
        | Event::GaveUp { channel, reason }
            if *channel == down =>
        {
            Some(reason.contains("No such file"))
        }
        _ => None,
    };
    let reasons: Vec<bool> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(nothing_there)
        .collect();
    assert_eq!(
        reasons,
        [true, true, true],
        "two retries announced, then giving up"
    );
    let attempts: Vec<u32> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Reconnecting {
                channel, attempt, ..
            } if *channel == down => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2]);
    drop(ctx);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A TCP client has a local address once connected; before, asking says why there is none.
#[test]
fn a_tcp_clients_port_comes_with_its_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let ctx = Context::new(ContextOptions::default()).unwrap();
    let ch = ctx
        .open("c", &format!("osc.tcp://127.0.0.1:{port}"))
        .unwrap();
    match ctx.port(ch) {
        Err(Error::Unsupported(why)) => assert!(why.contains("not connected"), "{why}"),
        other => panic!("{other:?}"),
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    assert!(until(&ctx, || ctx.port(ch).is_ok()));
    let (peer, _) = listener.accept().unwrap();
    assert_eq!(ctx.port(ch).unwrap(), peer.peer_addr().unwrap().port());
}

/// A Unix stream connects in `open`: what is sent right after goes out even if the
/// context is dropped before anyone polls.
#[test]
fn a_unix_stream_send_right_after_open_goes_out() {
    let dir = std::env::temp_dir().join(format!("rosco-at-once-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mode in MODES {
        let path = dir.join(format!("{mode:?}.sock"));
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let ctx = context(mode);
        let ch = ctx
            .open("c", &format!("osc.unix://{}?stream", path.display()))
            .unwrap();
        ctx.send(ch, "/hello", &[]).unwrap();
        drop(ctx);
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = [0u8; 16];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\0\0\0\x0c/hello\0\0,\0\0\0", "{mode:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn timed_bundles_arrive_at_their_time_in_every_mode() {
    for (mode, ctx) in models() {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let a = arrivals.clone();
        ctx.methods()
            .add_method(Some("/t"), None, move |_, info| {
                a.lock().unwrap().push((TimeTag::now(), info.bundle_time));
                Flow::Handled
            })
            .unwrap();
        let (_rx, tx) = udp_pair(&ctx);
        let at = TimeTag::after(Duration::from_millis(150));
        ctx.send_packet(tx, &bundle_at(at, "/t")).unwrap();
        assert!(
            until(&ctx, || !arrivals.lock().unwrap().is_empty()),
            "{mode:?}"
        );
        let (arrived, bundle_time) = arrivals.lock().unwrap()[0];
        assert_eq!(bundle_time, Some(at));
        assert!(arrived >= at, "{mode:?}: delivered before its timetag");
    }
}

/// A bundle with one message to `address`, due at `at`.
fn bundle_at(at: TimeTag, address: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = PacketWriter::new(&mut buf);
    w.begin_bundle(at).unwrap();
    w.message(address, &[]).unwrap();
    w.end_bundle().unwrap();
    w.finish().unwrap();
    buf
}

/// An application that polls seldom: what its I/O thread read in time is neither late
/// nor out of timetag order when `poll` finally runs.
#[test]
fn a_late_poll_keeps_timetag_order_and_counts_nothing_late() {
    for mode in [Mode::IoThread, Mode::Poll] {
        let ctx = context(mode);
        let seen = events(&ctx);
        let log = record(&ctx);
        let (rx, tx) = udp_pair(&ctx);
        // Margins of hundreds of milliseconds: a descheduled test thread must not make /a
        // due before the first check, nor /c late before the I/O thread reads it.
        let a_at = TimeTag::after(Duration::from_millis(500));
        ctx.send_packet(tx, &bundle_at(a_at, "/a")).unwrap();
        ctx.poll(Some(Duration::from_millis(20))).unwrap(); // /a read and held
        assert!(log.lock().unwrap().is_empty(), "{mode:?}");
        // /c, due 300 ms after /a, is sent (in time) and read only after both were due.
        let c_at = a_at + Duration::from_millis(300);
        ctx.send_packet(tx, &bundle_at(c_at, "/c")).unwrap();
        std::thread::sleep(c_at.duration_since(TimeTag::now()).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(20));
        assert!(until(&ctx, || len(&log) == 2), "{mode:?}");
        assert_eq!(*log.lock().unwrap(), ["/a ", "/c "], "{mode:?}");
        let late = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Late { .. }))
            .count();
        // In poll mode /c is read late, after its time: that one is late. The I/O thread
        // read it in time.
        let want = match mode {
            Mode::IoThread => 0,
            _ => 1,
        };
        assert_eq!(
            (ctx.stats(rx).unwrap().late, late),
            (want, want as usize),
            "{mode:?}"
        );
    }
}

#[test]
fn malformed_datagrams_are_counted_and_the_channel_carries_on() {
    for (mode, ctx) in models() {
        let log = record(&ctx);
        let seen = events(&ctx);
        let rx = ctx.open("rx", "osc.udp://:0").unwrap();
        let port = ctx.port(rx).unwrap();
        let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for bad in [
            &b"garbage"[..],
            b"/a\0\0,x\0\0\0\0\0\x01",
            b"",
            b"#bundle\0",
        ] {
            raw.send_to(bad, ("127.0.0.1", port)).unwrap();
        }
        raw.send_to(b"/ok\0,\0\0\0", ("127.0.0.1", port)).unwrap();
        assert!(until(&ctx, || len(&log) == 1), "{mode:?}");
        assert!(
            until(&ctx, || ctx.stats(rx).unwrap().malformed == 4),
            "{mode:?}"
        );
        let malformed = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Malformed { .. }))
            .count();
        assert_eq!(malformed, 4, "{mode:?}");
    }
}

/// `osc.udp://…?framing=` (osc4py3's `udpread_asstream`): packets framed as on a stream,
/// read per sender across and inside datagrams, and sent (replies included) framed.
#[test]
fn framed_datagrams_are_read_per_sender_and_sent_framed() {
    fn slip(packet: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        rosco::osc::framing::encode_frame(rosco::osc::framing::Framing::Slip, packet, &mut out);
        out
    }
    for (mode, ctx) in models() {
        let seen = events(&ctx);
        let sender = ctx.sender();
        ctx.methods()
            .add_method(Some("/ping"), None, move |_, info| {
                sender.reply(info, "/pong", &[]).unwrap();
                Flow::Handled
            })
            .unwrap();
        let log = record(&ctx);
        let url = "osc.udp://:0?bind=127.0.0.1&framing=slip&max_frame=64&max_clients=2";
        let rx = ctx.open("rx", url).unwrap();
        let to = ("127.0.0.1", ctx.port(rx).unwrap());
        let [a, b, c] = [(); 3].map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        // Half a packet from a, a whole one from b, then the rest of a's and another.
        let first = slip(b"/a\0\0,i\0\0\0\0\0\x01");
        a.send_to(&first[..7], to).unwrap();
        b.send_to(&slip(b"/b\0\0,\0\0\0"), to).unwrap();
        assert!(until(&ctx, || len(&log) == 1), "{mode}");
        a.send_to(&[&first[7..], &slip(b"/c\0\0,\0\0\0")].concat(), to)
            .unwrap();
        assert!(until(&ctx, || len(&log) == 3), "{mode}");
        // (Sorted: a pool of workers runs the callbacks side by side.)
        let mut got = log.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, ["/a Int(1)", "/b ", "/c "], "{mode}");

        // Past two senders mid-packet, the one heard from longest ago loses its part.
        a.send_to(&first[..7], to).unwrap();
        b.send_to(&first[..7], to).unwrap();
        c.send_to(&slip(b"/d\0\0,\0\0\0"), to).unwrap();
        assert!(until(&ctx, || len(&log) == 4), "{mode}");
        // b's half packet ends at the next END (malformed: 6 bytes), then a packet over
        // max_frame is dropped, and b's stream carries on.
        b.send_to(&slip(&[b'/'; 100]), to).unwrap();
        b.send_to(&slip(b"/e\0\0,\0\0\0"), to).unwrap();
        assert!(until(&ctx, || len(&log) == 5), "{mode}");
        assert_eq!(log.lock().unwrap()[3..], ["/d ", "/e "], "{mode}");
        let malformed: Vec<(u16, String)> = seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Malformed { source, reason, .. } => {
                    Some((source.unwrap().port(), reason.clone()))
                }
                _ => None,
            })
            .collect();
        let port = |s: &std::net::UdpSocket| s.local_addr().unwrap().port();
        let sources: Vec<u16> = malformed.iter().map(|m| m.0).collect();
        assert_eq!(
            sources,
            [port(&a), port(&b), port(&b)],
            "{mode}: {malformed:?}"
        );
        assert!(
            malformed[0]
                .1
                .contains("bytes of an unfinished packet dropped"),
            "{mode}: {malformed:?}"
        );
        assert!(malformed[2].1.contains("limit"), "{mode}: {malformed:?}");
        assert_eq!(ctx.stats(rx).unwrap().malformed, 3, "{mode}");

        // Replies go out framed, as does what a framed sender sends.
        c.set_nonblocking(true).unwrap();
        let received = || {
            let (mut buf, mut n) = ([0; 64], 0);
            assert!(until(&ctx, || c.recv(&mut buf).map(|got| n = got).is_ok()));
            buf[..n].to_vec()
        };
        c.send_to(&slip(b"/ping\0\0\0,\0\0\0"), to).unwrap();
        assert_eq!(received(), slip(b"/pong\0\0\0,\0\0\0"), "{mode}");
        let tx = ctx
            .open(
                "tx",
                &format!("osc.udp://127.0.0.1:{}?framing=length", port(&c)),
            )
            .unwrap();
        ctx.send(tx, "/f", &[]).unwrap();
        assert_eq!(received(), b"\0\0\0\x08/f\0\0,\0\0\0", "{mode}");
    }
}

/// Framed UDP: a sender silent mid-packet for the stall timeout starts afresh; one whose
/// rest was only read late (a receiver polled seldom, or held up by a slow callback)
/// keeps its packet.
#[test]
fn a_framed_udp_sender_is_silent_only_if_the_socket_was_seen_empty() {
    let hello = b"\0\0\0\x0c/hello\0\0,\0\0\0";
    let slow = b"\0\0\0\x0c/slow\0\0\0,\0\0\0";
    for mode in MODES {
        // "Well inside the timeout" and "well past it" are 20× and 1.5× apart, so that a
        // descheduled thread does not turn one into the other.
        let ctx = Context::new(ContextOptions {
            mode,
            stall_timeout: Duration::from_millis(1000),
            ..ContextOptions::default()
        })
        .unwrap();
        let seen = events(&ctx);
        ctx.methods()
            .add_method(Some("/slow"), None, |_, _| {
                std::thread::sleep(Duration::from_millis(1500));
                Flow::Handled
            })
            .unwrap();
        let log = record(&ctx);
        let rx = ctx
            .open("rx", "osc.udp://:0?bind=127.0.0.1&framing=length")
            .unwrap();
        let to = ("127.0.0.1", ctx.port(rx).unwrap());
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let malformed = || ctx.stats(rx).unwrap().malformed;
        let wait = |ms| match mode {
            Mode::Poll => drop(ctx.poll(Some(Duration::from_millis(ms)))),
            _ => std::thread::sleep(Duration::from_millis(ms)),
        };
        // Held up: a slow callback (/slow, not logged) runs while the rest of /hello
        // waits in the socket.
        tx.send_to(&[&slow[..], &hello[..8]].concat(), to).unwrap();
        tx.send_to(&hello[8..], to).unwrap();
        assert!(until(&ctx, || len(&log) == 1), "{mode:?}");
        if mode == Mode::Poll {
            // Read late: the rest is sent 50 ms after the first half, polled 1.5 s later.
            tx.send_to(&hello[..8], to).unwrap();
            wait(50);
            tx.send_to(&hello[8..], to).unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            assert!(until(&ctx, || len(&log) == 2));
        }
        assert_eq!(malformed(), 0, "{mode:?}: {:?}", seen.lock().unwrap());
        // Silent: half a packet, then nothing while the receiver waits, then a whole one.
        let before = len(&log);
        tx.send_to(&hello[..8], to).unwrap();
        wait(1500);
        wait(20);
        tx.send_to(hello, to).unwrap();
        assert!(until(&ctx, || len(&log) == before + 1), "{mode:?}");
        assert_eq!(malformed(), 1, "{mode:?}");
        let silent =
            |e: &Event| matches!(e, Event::Malformed { reason, .. } if reason.contains("silent"));
        assert!(seen.lock().unwrap().iter().any(silent), "{mode:?}");
    }
}

/// Framed UDP: a slow callback for another channel, read in the same turn, does not make
/// a framed sender look silent (the socket was found empty when the wait ended, not when
/// the callback was done).
#[test]
fn a_slow_callback_elsewhere_does_not_make_a_framed_sender_silent() {
    let hello = b"\0\0\0\x0c/hello\0\0,\0\0\0";
    for mode in [Mode::Poll, Mode::Threaded] {
        let ctx = Context::new(ContextOptions {
            mode,
            stall_timeout: Duration::from_millis(200),
            ..ContextOptions::default()
        })
        .unwrap();
        ctx.methods()
            .add_method(Some("/slow"), None, |_, _| {
                std::thread::sleep(Duration::from_millis(400));
                Flow::Handled
            })
            .unwrap();
        let log = record(&ctx);
        // Opened first, so looked at first in a turn.
        let plain = ctx.open("plain", "osc.udp://:0?bind=127.0.0.1").unwrap();
        let framed = ctx
            .open("framed", "osc.udp://:0?bind=127.0.0.1&framing=length")
            .unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (to_plain, to_framed) = (
            ("127.0.0.1", ctx.port(plain).unwrap()),
            ("127.0.0.1", ctx.port(framed).unwrap()),
        );
        tx.send_to(&hello[..8], to_framed).unwrap();
        if mode == Mode::Poll {
            ctx.poll(Some(Duration::from_millis(20))).unwrap();
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
        tx.send_to(b"/slow\0\0\0,\0\0\0", to_plain).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        tx.send_to(&hello[8..], to_framed).unwrap();
        assert!(until(&ctx, || len(&log) == 1), "{mode:?}");
        assert_eq!(ctx.stats(framed).unwrap().malformed, 0, "{mode:?}");
    }
}

/// A threaded context whose stream peers stall after 1 s, its events, and a TCP listener
/// on loopback.
fn stalling_server() -> (Context, Events, rosco::ChannelId) {
    let ctx = Context::new(ContextOptions {
        mode: Mode::Threaded,
        stall_timeout: Duration::from_millis(1000),
        ..ContextOptions::default()
    })
    .unwrap();
    let seen = events(&ctx);
    let server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    (ctx, seen, server)
}

/// A peer that stops reading is disconnected once its output has waited for the stall
/// timeout without moving; one that reads keeps its place.
#[test]
fn a_peer_that_stops_reading_is_dropped_alone() {
    let (ctx, seen, server) = stalling_server();
    let addr = ("127.0.0.1", ctx.port(server).unwrap());
    let _stuck = TcpStream::connect(addr).unwrap();
    let mut reader = TcpStream::connect(addr).unwrap();
    let read = Arc::new(AtomicUsize::new(0));
    let counted = read.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            counted.fetch_add(n, Ordering::Relaxed);
        }
    });
    let connected = |e: &Event| matches!(e, Event::Connected { .. });
    assert!(until(&ctx, || count(&seen, connected) == 2));
    // Enough for the stuck peer's socket buffers to fill and its output to wait.
    let blob = vec![7u8; 60_000];
    for _ in 0..300 {
        let _ = ctx.send(server, "/big", &[Arg::Blob(&blob)]);
    }
    let not_reading = |e: &Event| matches!(e, Event::Disconnected { reason, .. } if reason.starts_with("not reading"));
    let dropped = || count(&seen, not_reading);
    assert!(until(&ctx, || dropped() == 1), "{:?}", seen.lock().unwrap());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(dropped(), 1, "the reading peer was dropped too");
    let before = read.load(Ordering::Relaxed);
    ctx.send(server, "/after", &[]).unwrap();
    assert!(until(&ctx, || read.load(Ordering::Relaxed) > before));
}

/// A peer that reads slowly but steadily is not taken for one that stopped: poll reports
/// its socket writable only once much of the buffer is free, so a write is tried first.
#[test]
fn a_slow_steady_reader_keeps_its_place() {
    let (ctx, seen, server) = stalling_server();
    let mut peer = TcpStream::connect(("127.0.0.1", ctx.port(server).unwrap())).unwrap();
    let connected = |e: &Event| matches!(e, Event::Connected { .. });
    assert!(until(&ctx, || seen.lock().unwrap().iter().any(connected)));
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let reader = std::thread::spawn(move || {
        // About 800 KB/s, a little at a time.
        let mut buf = vec![0u8; 16_000];
        while !stop.load(Ordering::Relaxed) {
            if peer.read(&mut buf).unwrap_or(0) == 0 {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    });
    let blob = vec![7u8; 1000];
    let until_time = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until_time {
        if ctx.send(server, "/steady", &[Arg::Blob(&blob)]).is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Looked at before the reader stops: its closing resets the connection.
    let disconnects: Vec<Event> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Disconnected { .. }))
        .cloned()
        .collect();
    assert!(disconnects.is_empty(), "{disconnects:?}");
    done.store(true, Ordering::Relaxed);
    assert!(
        reader.join().unwrap(),
        "the connection was closed under the reader"
    );
}

#[test]
fn bad_stream_peers_are_dropped_alone() {
    for mode in MODES {
        let ctx = Context::new(ContextOptions {
            mode,
            max_frame: 1024,
            stall_timeout: Duration::from_millis(200),
            ..ContextOptions::default()
        })
        .unwrap();
        let log = record(&ctx);
        let seen = events(&ctx);
        let server = ctx.open("server", "osc.tcp://:0").unwrap();
        let addr = ("127.0.0.1", ctx.port(server).unwrap());
        let mut good = TcpStream::connect(addr).unwrap();
        let mut oversize = TcpStream::connect(addr).unwrap();
        let mut garbage = TcpStream::connect(addr).unwrap();
        let mut half = TcpStream::connect(addr).unwrap();
        oversize.write_all(&[0, 0, 0x10, 0]).unwrap();
        garbage
            .write_all(&[0, 0, 0, 8, b'x', b'y', b'z', 0, 0, 0, 0, 0])
            .unwrap();
        half.write_all(&[0, 0]).unwrap();
        let disconnected = || {
            seen.lock()
                .unwrap()
                .iter()
                .filter(|e| matches!(e, Event::Disconnected { .. }))
                .count()
        };
        assert!(
            until(&ctx, || disconnected() == 3),
            "{mode:?}: {:?}",
            seen.lock().unwrap()
        );
        for s in [&mut oversize, &mut garbage, &mut half] {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            assert_eq!(
                s.read(&mut [0u8; 4]).unwrap_or(0),
                0,
                "{mode:?}: the server closed it"
            );
        }
        good.write_all(&[0, 0, 0, 8, b'/', b'o', b'k', 0, b',', 0, 0, 0])
            .unwrap();
        assert!(
            until(&ctx, || len(&log) == 1),
            "{mode:?}: the good peer still works"
        );
    }
}

/// A peer that keeps a frame unfinished by trickling a byte now and then is dropped once
/// the frame has been unfinished for the stall timeout, not kept for good.
#[test]
fn a_frame_trickled_in_byte_by_byte_still_stalls() {
    let ctx = Context::new(ContextOptions {
        mode: Mode::Threaded,
        stall_timeout: Duration::from_millis(200),
        ..ContextOptions::default()
    })
    .unwrap();
    let seen = events(&ctx);
    let log = record(&ctx);
    let server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(server).unwrap();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // A whole frame first (it must not count), then a 64-byte frame a byte at a time.
    slow.write_all(b"\0\0\0\x08/a\0\0,\0\0\0\0\0\0\x40/")
        .unwrap();
    let stalled = |e: &Event| matches!(e, Event::Disconnected { reason, .. } if reason.contains("incomplete frame"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) && !seen.lock().unwrap().iter().any(stalled) {
        std::thread::sleep(Duration::from_millis(40));
        let _ = slow.write_all(b"x");
    }
    assert_eq!(*log.lock().unwrap(), ["/a "]);
    let events = seen.lock().unwrap();
    assert!(events.iter().any(stalled), "{events:?}");
}

#[test]
fn clients_reconnect_when_the_listener_comes_back() {
    for mode in MODES {
        let ctx = context(mode);
        let log = record(&ctx);
        let seen = events(&ctx);
        let server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1").unwrap();
        let port = ctx.port(server).unwrap();
        let client = ctx
            .open(
                "client",
                &format!("osc.tcp://127.0.0.1:{port}?backoff_ms=20"),
            )
            .unwrap();
        ctx.send(client, "/one", &[]).unwrap();
        assert!(until(&ctx, || len(&log) == 1), "{mode:?}");
        ctx.close(server).unwrap();
        let reconnecting = |e: &Event| matches!(e, Event::Reconnecting { .. });
        assert!(until(&ctx, || count(&seen, reconnecting) >= 1), "{mode:?}");
        ctx.open("server2", &format!("osc.tcp://:{port}?bind=127.0.0.1"))
            .unwrap();
        // Sent while disconnected: kept and delivered once the connection is back.
        ctx.send(client, "/two", &[]).unwrap();
        assert!(
            until(&ctx, || len(&log) == 2),
            "{mode:?}: {:?}",
            seen.lock().unwrap()
        );
        assert_eq!(log.lock().unwrap()[1], "/two ");
    }
}

#[test]
fn many_peers_at_once() {
    let ctx = context(Mode::IoThread);
    let log = record(&ctx);
    let server = ctx.open("server", "osc.tcp://:0").unwrap();
    let port = ctx.port(server).unwrap();
    let peers: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for mut p in &peers {
        p.write_all(&[0, 0, 0, 8, b'/', b'p', 0, 0, b',', 0, 0, 0])
            .unwrap();
    }
    assert!(until(&ctx, || len(&log) == 300), "{}", len(&log));
}

#[test]
fn a_slow_consumer_drops_and_counts() {
    let ctx = Context::new(ContextOptions {
        mode: Mode::IoThread,
        queue_capacity: 16,
        ..ContextOptions::default()
    })
    .unwrap();
    let log = record(&ctx);
    let (rx, tx) = udp_pair(&ctx);
    // Nobody polls while 2,000 packets arrive: the queue holds 16.
    for i in 0..2000 {
        ctx.send(tx, "/flood", &[Arg::Int(i)]).unwrap();
    }
    let stop = Instant::now() + Duration::from_secs(5);
    while ctx.stats(rx).unwrap().packets_in < 2000 && Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Stats are read again each time: the I/O thread counts a packet in before it queues or
    // drops it, so one reading can fall between the two.
    let accounted = until(&ctx, || {
        let stats = ctx.stats(rx).unwrap();
        stats.dropped > 0 && len(&log) as u64 + stats.dropped == stats.packets_in
    });
    let stats = ctx.stats(rx).unwrap();
    assert!(
        accounted,
        "every packet is delivered or counted, some dropped: {} + {stats:?}",
        len(&log)
    );
}

#[test]
fn packet_hooks_transform_both_ways() {
    let ctx = context(Mode::Poll);
    let log = record(&ctx);
    let (rx, tx) = udp_pair(&ctx);
    let xor = |raw: &[u8], out: &mut Vec<u8>| {
        out.extend(raw.iter().map(|b| b ^ 0x5a));
        HookVerdict::Replace
    };
    let drop_short: PacketHook = Box::new(move |raw: &[u8], out: &mut Vec<u8>| {
        assert!(out.is_empty(), "the buffer starts empty");
        match raw.len() > 8 {
            true => xor(raw, out),
            false => HookVerdict::Drop,
        }
    });
    ctx.set_packet_hooks(rx, Some(drop_short), None).unwrap();
    ctx.set_packet_hooks(tx, None, Some(Box::new(xor))).unwrap();
    ctx.send(tx, "/secret", &[Arg::Int(7)]).unwrap();
    ctx.send(tx, "/x", &[]).unwrap(); // 8 bytes: dropped by the incoming hook
    ctx.send(tx, "/after", &[]).unwrap();
    assert!(until(&ctx, || len(&log) == 2));
    assert_eq!(*log.lock().unwrap(), ["/secret Int(7)", "/after "]);
    // A hook that only looks passes packets on as they are, without copying them.
    let seen = Arc::new(AtomicUsize::new(0));
    let tap = seen.clone();
    let look: PacketHook = Box::new(move |raw: &[u8], _: &mut Vec<u8>| {
        tap.fetch_add(raw.len(), Ordering::SeqCst);
        HookVerdict::Pass
    });
    ctx.set_packet_hooks(rx, Some(look), None).unwrap();
    ctx.set_packet_hooks(tx, None, None).unwrap();
    ctx.send(tx, "/plain", &[]).unwrap();
    assert!(until(&ctx, || len(&log) == 3));
    assert_eq!(log.lock().unwrap()[2], "/plain ");
    assert_eq!(seen.load(Ordering::SeqCst), 12);
    // An outgoing hook that replaces a packet with nothing sends nothing: refused.
    let empty: PacketHook = Box::new(|_: &[u8], _: &mut Vec<u8>| HookVerdict::Replace);
    ctx.set_packet_hooks(tx, None, Some(empty)).unwrap();
    let sent = ctx.send(tx, "/gone", &[]);
    assert!(matches!(sent, Err(rosco::Error::Decode(_))), "{sent:?}");
    // Nor is an empty packet handed to a hook, which could make something of it.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let filler: PacketHook = Box::new(move |_: &[u8], out: &mut Vec<u8>| {
        c.fetch_add(1, Ordering::SeqCst);
        out.extend_from_slice(b"/made\0\0\0,\0\0\0");
        HookVerdict::Replace
    });
    ctx.set_packet_hooks(tx, None, Some(filler)).unwrap();
    let sent = ctx.send_packet(tx, &[]);
    assert!(matches!(sent, Err(rosco::Error::Decode(_))), "{sent:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // `_local` has no incoming side; its outgoing hook sees what it dispatches.
    let local = ctx.channel_id(rosco::runtime::LOCAL).unwrap();
    let tap = seen.clone();
    let look: PacketHook = Box::new(move |raw: &[u8], _: &mut Vec<u8>| {
        tap.fetch_add(raw.len(), Ordering::SeqCst);
        HookVerdict::Pass
    });
    assert!(matches!(
        ctx.set_packet_hooks(local, Some(Box::new(xor)), None),
        Err(Error::Unsupported(_))
    ));
    ctx.set_packet_hooks(local, None, Some(look)).unwrap();
    ctx.send(local, "/plain", &[]).unwrap();
    assert!(until(&ctx, || len(&log) == 4));
    assert_eq!(seen.load(Ordering::SeqCst), 24);
    // A closed channel takes no hooks.
    ctx.close(rx).unwrap();
    assert!(matches!(
        ctx.set_packet_hooks(rx, None, Some(Box::new(xor))),
        Err(Error::NoChannel)
    ));
}

#[test]
fn io_thread_mode_has_a_wakeup_descriptor() {
    let ctx = context(Mode::IoThread);
    let fd = ctx
        .wakeup_fd()
        .expect("io-thread mode exposes a descriptor");
    assert!(context(Mode::Poll).wakeup_fd().is_none());
    let log = record(&ctx);
    let (_rx, tx) = udp_pair(&ctx);
    ctx.send(tx, "/wake", &[]).unwrap();
    let mut pfd = libc_pollfd(fd);
    assert_eq!(
        poll_one(&mut pfd, 5000),
        1,
        "readable while a message waits"
    );
    assert_eq!(ctx.poll(Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(len(&log), 1);
    assert_eq!(poll_one(&mut pfd, 0), 0, "not readable once drained");
}

/// An event loop that waits on the wake-up descriptor alone (Pd's `sys_addpollfn`) gets a
/// timed bundle at its time: the descriptor turns readable when a held bundle is due.
#[test]
fn the_wakeup_descriptor_turns_readable_when_a_held_bundle_is_due() {
    let ctx = context(Mode::IoThread);
    let log = record(&ctx);
    let (_rx, tx) = udp_pair(&ctx);
    let mut pfd = libc_pollfd(ctx.wakeup_fd().unwrap());
    let first = TimeTag::after(Duration::from_millis(50));
    let second = first + Duration::from_millis(50);
    ctx.send_packet(tx, &bundle_at(second, "/second")).unwrap();
    ctx.send_packet(tx, &bundle_at(first, "/first")).unwrap();
    let stop = Instant::now() + Duration::from_secs(2);
    while Instant::now() < stop && len(&log) < 2 {
        if poll_one(&mut pfd, 1000) > 0 {
            ctx.poll(Some(Duration::ZERO)).unwrap();
        }
    }
    assert_eq!(*log.lock().unwrap(), ["/first ", "/second "]);
    assert!(TimeTag::now() >= second, "delivered early");
    // Nothing else is due: the descriptor stays quiet.
    assert_eq!(poll_one(&mut pfd, 100), 0);
}

/// An io-thread context whose method for `/boom` panics, and a UDP pair (receiver, sender).
fn io_thread_with_boom() -> (Context, rosco::ChannelId, rosco::ChannelId) {
    let ctx = context(Mode::IoThread);
    ctx.methods()
        .add_method(
            Some("/boom"),
            None,
            |_: &Message<'_>, _: &MsgInfo| -> Flow { panic!("boom") },
        )
        .unwrap();
    let (rx, tx) = udp_pair(&ctx);
    (ctx, rx, tx)
}

/// A callback's panic leaves io-thread mode's `poll`; what still waits keeps the wake-up
/// descriptor readable, or a loop waiting on it alone would never come back for it.
#[test]
fn the_wakeup_descriptor_stays_readable_after_a_callback_panics() {
    let (ctx, rx, tx) = io_thread_with_boom();
    let ok = counter(&ctx, "/ok");
    for address in ["/boom", "/ok", "/ok"] {
        ctx.send(tx, address, &[]).unwrap();
    }
    while ctx.stats(rx).unwrap().packets_in < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut pfd = libc_pollfd(ctx.wakeup_fd().unwrap());
    assert_eq!(poll_one(&mut pfd, 5000), 1);
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ctx.poll(Some(Duration::ZERO))
    }));
    assert!(
        polled.is_err(),
        "the callback's panic comes out of poll: {polled:?}"
    );
    assert_eq!(poll_one(&mut pfd, 1000), 1, "two messages wait");
    // The I/O thread counts a packet before it queues it: the last /ok may come a moment
    // after the first, and the descriptor says so again.
    let stop = Instant::now() + Duration::from_secs(20);
    while ok.load(Ordering::Relaxed) < 2 && Instant::now() < stop {
        if poll_one(&mut pfd, 1000) == 1 {
            ctx.poll(Some(Duration::ZERO)).unwrap();
        }
    }
    assert_eq!(ok.load(Ordering::Relaxed), 2);
}

/// Every datagram received counts in `packets_in`, an oversize one too; the bundles a
/// packet carries count one by one when they are dropped.
#[test]
fn counters_count_each_datagram_and_bundle() {
    for mode in MODES {
        let mut options = ContextOptions {
            mode,
            ..ContextOptions::default()
        };
        options.receive.max_held_bytes = 10;
        let ctx = Context::new(options).unwrap();
        let small = ctx
            .open("small", "osc.udp://:0?bind=127.0.0.1&max_packet=64")
            .unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = ("127.0.0.1", ctx.port(small).unwrap());
        peer.send_to(&[b'/'; 200], to).unwrap();
        peer.send_to(&[b'x'; 20], to).unwrap();
        assert!(until(&ctx, || ctx.stats(small).unwrap().malformed == 2));
        let stats = ctx.stats(small).unwrap();
        assert_eq!((stats.packets_in, stats.bytes_in), (2, 220), "{mode:?}");
        // Three future bundles in one, with no room to hold them.
        let (rx, tx) = udp_pair(&ctx);
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf);
        w.begin_bundle(TimeTag::IMMEDIATE).unwrap();
        for _ in 0..3 {
            w.begin_bundle(TimeTag::after(Duration::from_secs(60)))
                .unwrap();
            w.message("/b", &[]).unwrap();
            w.end_bundle().unwrap();
        }
        w.end_bundle().unwrap();
        w.finish().unwrap();
        ctx.send_packet(tx, &buf).unwrap();
        let counted = until(&ctx, || ctx.stats(rx).unwrap().dropped == 3);
        assert!(counted, "{mode:?}: {:?}", ctx.stats(rx).unwrap());
    }
}

fn libc_pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn poll_one(p: &mut libc::pollfd, timeout_ms: i32) -> i32 {
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(p, 1, timeout_ms) }
}

#[test]
fn errors_are_clear() {
    let ctx = context(Mode::Poll);
    let rx = ctx.open("rx", "osc.udp://:0").unwrap();
    assert!(matches!(
        ctx.send(rx, "/x", &[]),
        Err(rosco::Error::Unsupported(_))
    ));
    let tx = ctx.open("tx", "osc.udp://127.0.0.1:9").unwrap();
    let big = vec![0u8; 70_000];
    assert!(matches!(
        ctx.send(tx, "/big", &[Arg::Blob(&big)]),
        Err(rosco::Error::Encode(_))
    ));
    assert!(matches!(
        ctx.send(tx, "no-slash", &[]),
        Err(rosco::Error::Encode(_))
    ));
    assert!(matches!(
        ctx.send_to("nobody", "/x", &[]),
        Err(rosco::Error::NoName(_))
    ));
    let e = ctx.open("u", "osc.xyz://h:1").unwrap_err();
    assert!(e.to_string().contains("osc.xyz"), "{e}");
    // A client not connected yet keeps what is sent, within the bound on waiting output.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let waiting = ctx
        .open("waiting", &format!("osc.tcp://127.0.0.1:{port}"))
        .unwrap();
    let huge = vec![0u8; 9 << 20];
    assert!(matches!(
        ctx.send_packet(waiting, &huge),
        Err(rosco::Error::Full)
    ));
    ctx.send(waiting, "/small", &[]).unwrap();
    // After shutdown nothing opens: the channel would outlive the context.
    ctx.shutdown();
    assert!(ctx.is_closed());
    assert!(matches!(
        ctx.open("late", "osc.udp://:0"),
        Err(rosco::Error::Closed)
    ));
    // The names went with the channels: a send by name says closed, not "no such name".
    assert!(matches!(
        ctx.send_to("tx", "/x", &[]),
        Err(rosco::Error::Closed)
    ));
    assert!(matches!(
        ctx.send_to_names(&["tx", "waiting"], "/x", &[]),
        Err(rosco::Error::Closed)
    ));
}

#[test]
fn flush_from_a_threaded_callback_is_busy() {
    // Only the I/O thread can finish a write, and the callback is running on it.
    let ctx = Arc::new(context(Mode::Threaded));
    let rx = ctx.open("rx", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(rx).unwrap();
    let tx = ctx
        .open("tx", &format!("osc.tcp://127.0.0.1:{port}"))
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (weak, s) = (Arc::downgrade(&ctx), seen.clone());
    ctx.methods()
        .add_method(Some("/flush"), None, move |_: &Message<'_>, _: &MsgInfo| {
            if let Some(ctx) = weak.upgrade() {
                let start = Instant::now();
                let result = ctx.flush(tx, Duration::from_secs(5));
                s.lock()
                    .unwrap()
                    .push((format!("{result:?}"), start.elapsed()));
            }
            Flow::Handled
        })
        .unwrap();
    ctx.send(tx, "/flush", &[]).unwrap();
    assert!(until(&ctx, || !seen.lock().unwrap().is_empty()));
    let (result, took) = seen.lock().unwrap()[0].clone();
    assert_eq!(result, "Err(Busy)");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // From another thread it works.
    ctx.flush(tx, Duration::from_secs(5)).unwrap();
}

#[test]
fn a_flooding_stream_peer_does_not_starve_other_channels() {
    let ctx = context(Mode::Threaded);
    let pings = counter(&ctx, "/ping");
    // Callbacks slower than the peer sends: its socket never empties.
    ctx.methods()
        .add_method(Some("/f"), None, |_: &Message<'_>, _: &MsgInfo| {
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(2) {}
            Flow::Handled
        })
        .unwrap();
    let udp = ctx.open("udp", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let udp_port = ctx.port(udp).unwrap();
    let tcp = ctx.open("tcp", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let tcp_port = ctx.port(tcp).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        let mut s = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
        std::thread::spawn(move || {
            let frame = [0u8, 0, 0, 8, b'/', b'f', 0, 0, b',', 0, 0, 0];
            let chunk = frame.repeat(8000);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let pinger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    pinger
        .send_to(b"/ping\0\0\0,\0\0\0", ("127.0.0.1", udp_port))
        .unwrap();
    let reached = until(&ctx, || {
        pings.load(std::sync::atomic::Ordering::Relaxed) == 1
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    assert!(reached, "the UDP ping waited behind the TCP flood");
    assert!(ctx.stats(tcp).unwrap().packets_in > 0);
}

#[test]
fn a_unix_listener_with_a_full_backlog_blocks_nobody() {
    use socket2::{Domain, SockAddr, Socket, Type};
    let path = std::env::temp_dir().join(format!("rosco-backlog-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    server.bind(&SockAddr::unix(&path).unwrap()).unwrap();
    server.listen(0).unwrap();
    // Fill the backlog: nothing is accepted.
    let mut pending = Vec::new();
    loop {
        let s = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        match s.connect(&SockAddr::unix(&path).unwrap()) {
            Ok(()) => pending.push(s),
            Err(_) => break,
        }
    }
    let ctx = context(Mode::Threaded);
    let pings = counter(&ctx, "/ping");
    let udp = ctx.open("udp", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let udp_port = ctx.port(udp).unwrap();
    let start = Instant::now();
    let url = format!("osc.unix://{}?stream", path.display());
    let c = ctx.open("c", &url).unwrap();
    ctx.send(c, "/kept", &[]).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // The I/O loop goes on meanwhile (reconnect attempts included).
    std::thread::sleep(Duration::from_millis(300));
    let pinger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    pinger
        .send_to(b"/ping\0\0\0,\0\0\0", ("127.0.0.1", udp_port))
        .unwrap();
    assert!(until(&ctx, || pings
        .load(std::sync::atomic::Ordering::Relaxed)
        == 1));
    // Room in the backlog again: the client connects and what it kept arrives.
    drop(pending);
    let mut kept = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    server.set_nonblocking(true).unwrap();
    while Instant::now() < deadline {
        let Ok((conn, _)) = server.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let mut conn = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(conn));
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = conn.read(&mut buf) {
            kept.extend_from_slice(&buf[..n]);
        }
        if !kept.is_empty() {
            break;
        }
    }
    let _ = std::fs::remove_file(&path);
    assert!(kept.windows(5).any(|w| w == b"/kept"), "{kept:?}");
}

#[test]
fn url_limits_apply_per_channel() {
    let ctx = context(Mode::Poll);
    let log = record(&ctx);
    let seen = events(&ctx);
    let small = ctx.open("small", "osc.udp://:0?max_packet=64").unwrap();
    let tx = ctx
        .open(
            "tx",
            &format!("osc.udp://127.0.0.1:{}", ctx.port(small).unwrap()),
        )
        .unwrap();
    ctx.send(tx, "/big", &[Arg::Blob(&[0; 100])]).unwrap();
    ctx.send(tx, "/small", &[]).unwrap();
    let ok = until(&ctx, || {
        len(&log) == 1 && ctx.stats(small).unwrap().malformed == 1
    });
    assert!(
        ok,
        "{:?} {:?} {:?}",
        log.lock().unwrap(),
        ctx.stats(small),
        seen.lock().unwrap()
    );
    // max_packet is also the largest datagram a channel sends.
    let tight = format!(
        "osc.udp://127.0.0.1:{}?max_packet=64",
        ctx.port(small).unwrap()
    );
    let tight = ctx.open("tight", &tight).unwrap();
    let refused = ctx.send(tight, "/big", &[Arg::Blob(&[0; 100])]);
    assert!(
        matches!(refused, Err(Error::Encode(EncodeError::TooLarge))),
        "{refused:?}"
    );
    assert_eq!(ctx.stats(tight).unwrap().packets_out, 0);
    let server = ctx
        .open("server", "osc.tcp://:0?max_clients=2&max_frame=64")
        .unwrap();
    let port = ctx.port(server).unwrap();
    let _a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = c.local_addr().unwrap();
    // The peer as `Connected` names peers: its IPv4 address, not an IPv4-mapped one.
    let refused = |e: &Event| {
        matches!(e, Event::Disconnected { reason, peer, .. }
            if reason == "too many peers" && *peer == Some(local))
    };
    assert!(
        until(&ctx, || seen.lock().unwrap().iter().any(refused)),
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(
        c.read(&mut [0u8; 4]).unwrap_or(0),
        0,
        "the third peer is closed"
    );
    drop(_a);
    let gone =
        |e: &Event| matches!(e, Event::Disconnected { reason, .. } if reason == "closed by peer");
    assert!(until(&ctx, || seen.lock().unwrap().iter().any(gone)));
    // A place is free again; this peer announces a frame over max_frame.
    let mut d = TcpStream::connect(("127.0.0.1", port)).unwrap();
    d.write_all(&[0, 0, 0, 100]).unwrap();
    let oversize =
        |e: &Event| matches!(e, Event::Malformed { reason, .. } if reason.contains("64"));
    assert!(
        until(&ctx, || seen.lock().unwrap().iter().any(oversize)),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[test]
fn poll_returns_while_callbacks_keep_sending_to_local() {
    for mode in [Mode::Poll, Mode::IoThread] {
        let ctx = Arc::new(context(mode));
        let weak = Arc::downgrade(&ctx);
        ctx.methods()
            .add_method(Some("/ping"), None, move |_: &Message<'_>, _: &MsgInfo| {
                if let Some(ctx) = weak.upgrade() {
                    ctx.send_to("_local", "/ping", &[]).unwrap();
                }
                Flow::PassOn
            })
            .unwrap();
        let pings = counter(&ctx, "/ping");
        ctx.send_to("_local", "/ping", &[]).unwrap();
        // On another thread, so that a poll that never returns fails the test.
        let (done, polled) = std::sync::mpsc::channel();
        let c = ctx.clone();
        std::thread::spawn(move || {
            for _ in 0..3 {
                done.send(c.poll(Some(Duration::from_millis(20))).is_ok())
                    .unwrap();
            }
        });
        for _ in 0..3 {
            let ok = polled.recv_timeout(Duration::from_secs(5));
            assert_eq!(ok, Ok(true), "{mode:?}: poll did not return");
        }
        // One message per round: each callback's send waits for the next.
        let n = pings.load(std::sync::atomic::Ordering::Relaxed);
        assert!((3..=6).contains(&n), "{mode:?}: {n}");
    }
}

/// Adds and removes a method when dropped, as a C `user_free` or a C++ handler owning
/// another `Method` does.
struct TouchesMethodsOnDrop(std::sync::Weak<rosco::dispatch::Dispatcher>);

impl Drop for TouchesMethodsOnDrop {
    fn drop(&mut self) {
        if let Some(d) = self.0.upgrade() {
            let id = d.add_method(Some("/other"), None, |_, _| Flow::Handled);
            d.remove_method(id.unwrap());
        }
    }
}

/// Runs `f` on another thread; false if it has not returned within 20 s (a deadlock).
fn returns(f: impl FnOnce() + Send + 'static) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    finished.recv_timeout(Duration::from_secs(20)).is_ok()
}

#[test]
fn a_method_that_removes_itself_may_own_what_changes_the_table() {
    let ctx = Arc::new(context(Mode::Poll));
    let methods = ctx.methods().clone();
    let guard = TouchesMethodsOnDrop(Arc::downgrade(&methods));
    let me = Arc::new(Mutex::new(None));
    let (m, d) = (me.clone(), Arc::downgrade(&methods));
    let id = methods
        .add_method(Some("/once"), None, move |_: &Message<'_>, _: &MsgInfo| {
            let _ = &guard;
            if let (Some(id), Some(d)) = (m.lock().unwrap().take(), d.upgrade()) {
                d.remove_method(id);
            }
            Flow::Handled
        })
        .unwrap();
    *me.lock().unwrap() = Some(id);
    let later = counter(&ctx, "/later");
    // The second message, in the same round, reloads the table: the removed method's
    // last reference goes then.
    ctx.send_to("_local", "/once", &[]).unwrap();
    ctx.send_to("_local", "/later", &[]).unwrap();
    let c = ctx.clone();
    assert!(returns(move || {
        c.poll(Some(Duration::from_millis(100))).unwrap();
    }));
    assert_eq!(later.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn a_method_may_replace_the_event_callback_while_an_event_shuts_the_context_down() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let ctx = Arc::new(context(Mode::IoThread));
    let (in_event, in_method) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (weak, flag) = (Arc::downgrade(&ctx), in_event.clone());
    ctx.set_event_callback(Some(move |e: &Event| {
        if let Event::Bound { .. } = e {
            flag.store(true, SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            if let Some(ctx) = weak.upgrade() {
                ctx.shutdown(); // waits for the poll below to end
            }
        }
    }));
    let (weak, flag, entered) = (Arc::downgrade(&ctx), in_event.clone(), in_method.clone());
    ctx.methods()
        .add_method(Some("/go"), None, move |_: &Message<'_>, _: &MsgInfo| {
            entered.store(true, SeqCst);
            while !flag.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            if let Some(ctx) = weak.upgrade() {
                ctx.set_event_callback(None::<fn(&Event)>);
            }
            Flow::Handled
        })
        .unwrap();
    ctx.send_to("_local", "/go", &[]).unwrap();
    let c = ctx.clone();
    let polled =
        std::thread::spawn(move || returns(move || drop(c.poll(Some(Duration::from_secs(2))))));
    while !in_method.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    ctx.open("u", "osc.udp://:0?bind=127.0.0.1").unwrap();
    assert!(
        polled.join().unwrap(),
        "poll and shutdown waited for each other"
    );
}

#[test]
fn io_thread_callbacks_cannot_flush_or_poll() {
    let ctx = Arc::new(context(Mode::IoThread));
    let rx = ctx.open("rx", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(rx).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (weak, s) = (Arc::downgrade(&ctx), seen.clone());
    ctx.set_event_callback(Some(move |e: &Event| {
        if let (Event::Connected { channel, .. }, Some(ctx)) = (e, weak.upgrade()) {
            let start = Instant::now();
            let flushed = ctx.flush(*channel, Duration::from_secs(3));
            let polled = ctx.poll(Some(Duration::from_secs(3)));
            s.lock()
                .unwrap()
                .push((format!("{flushed:?} {polled:?}"), start.elapsed()));
        }
    }));
    let _peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(until(&ctx, || !seen.lock().unwrap().is_empty()));
    let (result, took) = seen.lock().unwrap()[0].clone();
    assert_eq!(result, "Err(Busy) Err(Busy)");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn the_encoder_options_apply_to_what_the_context_sends() {
    use rosco::osc::{AddressTable, EncodeError, TypeSet};
    let mut table = AddressTable::new();
    table.insert(3, "/synth/1/freq").unwrap();
    let table = Some(Arc::new(table));
    let mut options = ContextOptions::default();
    options.encode.addresses = table.clone();
    options.encode.allowed_types = TypeSet::OSC_1_0;
    options.encode.ascii_only = true;
    options.receive.decode.addresses = table;
    let ctx = Context::new(options).unwrap();
    let log = record(&ctx);
    let (input, out) = udp_pair(&ctx);
    ctx.send(out, "/synth/1/freq", &[Arg::Int(440)]).unwrap();
    assert!(until(&ctx, || len(&log) == 1));
    assert_eq!(log.lock().unwrap()[0], "/synth/1/freq Int(440)");
    // 16 bytes: "/" and the code stand for the address.
    assert_eq!(ctx.stats(input).unwrap().bytes_in, 16);
    let refused = |args: &[Arg<'_>]| match ctx.send(out, "/x", args) {
        Err(rosco::Error::Encode(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused(&[Arg::Long(1)]),
        EncodeError::TypeNotAllowed { tag: b'h' }
    );
    assert_eq!(
        refused(&[Arg::str("café")]),
        EncodeError::NotAscii { index: 0 }
    );
    // Bytes already encoded go out as they are.
    let mut buf = Vec::new();
    rosco::osc::encode_message("/x", &[Arg::Long(1)], &mut buf).unwrap();
    ctx.send_packet(out, &buf).unwrap();
    assert!(until(&ctx, || len(&log) == 2));
    // `_local` reads compressed messages back with the context's table.
    ctx.send_to("_local", "/synth/1/freq", &[Arg::Int(1)])
        .unwrap();
    assert!(until(&ctx, || len(&log) == 3));
    assert_eq!(log.lock().unwrap()[2], "/synth/1/freq Int(1)");
}

#[test]
fn long_patterns_are_refused_unless_the_limit_is_lifted() {
    let alternatives = vec!["ab"; 600].join(",");
    let pattern = format!("/x/{{{alternatives}}}");
    for limit in [None, Some(usize::MAX)] {
        let mut options = ContextOptions::default();
        if let Some(limit) = limit {
            options.receive.decode.max_pattern_len = limit;
        }
        let ctx = Context::new(options).unwrap();
        // A method that needs coercion (i to f) and a subscription read the message again.
        let coerced = Log::default();
        let c = coerced.clone();
        ctx.methods()
            .add_method(Some("/x/ab"), Some("f"), move |m, _| {
                c.lock().unwrap().push(format!("{:?}", m.arg(0)));
                Flow::Handled
            })
            .unwrap();
        let sub = ctx.subscribe(Some("/x/ab"), None, 4).unwrap();
        let (input, out) = udp_pair(&ctx);
        ctx.send(out, &pattern, &[Arg::Int(2)]).unwrap();
        let local = ctx.send_to("_local", &pattern, &[Arg::Int(3)]);
        match limit {
            None => {
                assert!(until(&ctx, || ctx.stats(input).unwrap().malformed == 1));
                assert!(matches!(local, Err(rosco::Error::Decode(_))), "{local:?}");
                assert!(coerced.lock().unwrap().is_empty());
            }
            Some(_) => {
                local.unwrap();
                assert!(until(&ctx, || len(&coerced) == 2 && sub.len() == 2));
                let mut got = coerced.lock().unwrap().clone();
                got.sort();
                assert_eq!(got, ["Some(Float(2.0))", "Some(Float(3.0))"]);
                assert_eq!(sub.dropped(), 0);
            }
        }
    }
}

#[test]
fn thread_hooks_run_first_and_last_on_every_thread() {
    let names = Arc::new(Mutex::new(Vec::new()));
    let (start, stop) = (names.clone(), names.clone());
    let ctx = Context::new(ContextOptions {
        mode: Mode::Threaded,
        workers: 2,
        thread_start: Some(rosco::runtime::ThreadHook::new(move |name| {
            start.lock().unwrap().push(format!("start {name}"));
            // Caught and logged: the thread goes on.
            assert!(name != "rosco-worker-1", "a panicking start hook");
        })),
        thread_stop: Some(rosco::runtime::ThreadHook::new(move |name| {
            stop.lock().unwrap().push(format!("stop {name}"));
        })),
        ..ContextOptions::default()
    })
    .unwrap();
    // Every worker, the one whose hook panicked too, runs callbacks: the burst spreads
    // over the pool, so each message is answered whichever worker takes it.
    let heard = Arc::new(AtomicUsize::new(0));
    let h = heard.clone();
    ctx.methods()
        .add_method(Some("/w"), None, move |_, _| {
            h.fetch_add(1, Ordering::SeqCst);
            Flow::Handled
        })
        .unwrap();
    let (_rx, tx) = udp_pair(&ctx);
    for _ in 0..20 {
        ctx.send(tx, "/w", &[]).unwrap();
    }
    assert!(until(&ctx, || heard.load(Ordering::SeqCst) == 20));
    drop(ctx);
    let mut seen = names.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            "start rosco-io",
            "start rosco-worker-0",
            "start rosco-worker-1",
            "stop rosco-io",
            "stop rosco-worker-0",
            "stop rosco-worker-1"
        ]
    );
}

/// `?ttl=` sets the time to live of unicast datagrams too, not only multicast ones.
#[test]
fn ttl_applies_to_unicast_senders() {
    use std::os::unix::io::AsRawFd;
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor and option buffer.
    let set = unsafe {
        libc::setsockopt(
            rx.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_RECVTTL,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0);
    let ctx = context(Mode::Poll);
    let port = rx.local_addr().unwrap().port();
    // 0 is for multicast (this host only); a unicast socket takes it as 1.
    ctx.open("zero", &format!("osc.udp://127.0.0.1:{port}?ttl=0"))
        .unwrap();
    ctx.open("zero-listener", "osc.udp://:0?bind=0.0.0.0&ttl=0")
        .unwrap();
    let tx = ctx
        .open("tx", &format!("osc.udp://127.0.0.1:{port}?ttl=7"))
        .unwrap();
    ctx.send(tx, "/t", &[]).unwrap();
    let (mut data, mut control) = ([0u8; 64], [0u8; 64]);
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.as_mut_ptr().cast();
    hdr.msg_controllen = control.len() as _;
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // SAFETY: as above.
    assert!(unsafe { libc::recvmsg(rx.as_raw_fd(), &mut hdr, 0) } > 0);
    let mut ttl = None;
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_TTL {
                ttl = Some(*(libc::CMSG_DATA(c) as *const libc::c_int));
            }
            c = libc::CMSG_NXTHDR(&hdr, c);
        }
    }
    assert_eq!(ttl, Some(7));
}

/// An event callback that panics (on an oversize datagram's `Malformed`) does not lose the
/// rest of the batch read with it, as a method callback's panic does not.
#[test]
fn a_panicking_event_callback_does_not_lose_the_rest_of_a_batch() {
    let ctx = context(Mode::Poll);
    let log = record(&ctx);
    ctx.set_event_callback(Some(|e: &Event| {
        if matches!(e, Event::Malformed { .. }) {
            panic!("the event callback panics");
        }
    }));
    let rx = ctx
        .open("rx", "osc.udp://:0?bind=127.0.0.1&max_packet=64")
        .unwrap();
    let to = ("127.0.0.1", ctx.port(rx).unwrap());
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut packet = Vec::new();
    rosco::osc::encode_message("/first", &[], &mut packet).unwrap();
    peer.send_to(&packet, to).unwrap();
    peer.send_to(&[b'/'; 200], to).unwrap();
    for i in 0..5 {
        rosco::osc::encode_message(format!("/after{i}"), &[], &mut packet).unwrap();
        peer.send_to(&packet, to).unwrap();
    }
    assert!(until(&ctx, || len(&log) == 6), "{:?}", log.lock().unwrap());
}

/// A listener whose port is taken on IPv6 is an error, not a listener on IPv4 alone that
/// leaves IPv6 peers to whoever holds the port.
#[test]
fn a_port_taken_on_ipv6_is_an_error() {
    let Ok(taken) = std::net::UdpSocket::bind("[::1]:0") else {
        return eprintln!("skipped: no IPv6 loopback");
    };
    let port = taken.local_addr().unwrap().port();
    let ctx = context(Mode::Poll);
    assert!(ctx.open("rx", &format!("osc.udp://:{port}")).is_err());
    let tcp = std::net::TcpListener::bind("[::1]:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    assert!(ctx.open("t", &format!("osc.tcp://:{port}")).is_err());
}

/// An IPv6 multicast group takes its interface by address as well as by name.
#[test]
fn an_ipv6_multicast_interface_by_address() {
    let ctx = context(Mode::Poll);
    let group = |iface: &str| format!("osc.udp://[ff02::7:7]:47123?iface={iface}");
    if let Err(e) = ctx.open("a", &group("lo")) {
        return eprintln!("skipped: no IPv6 multicast on lo: {e}");
    }
    ctx.open("b", &group("%3A%3A1")).unwrap();
    assert!(ctx.open("c", &group("%3A%3A2")).is_err());
}

/// Over IPv6 a UDP payload may reach 65,527 bytes (no IPv4 header inside the 16-bit
/// length): the largest OSC packet that fits, 65,524 bytes, arrives whole; over IPv4 the
/// limit stays 65,507.
#[test]
fn ipv6_datagrams_take_the_ipv6_size_limit() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        return eprintln!("skipped: no IPv6 loopback");
    }
    let ctx = context(Mode::Poll);
    let log = record(&ctx);
    let rx = ctx.open("rx", "osc.udp://:0?bind=::1").unwrap();
    let port = ctx.port(rx).unwrap();
    let tx = ctx.open("tx", &format!("osc.udp://[::1]:{port}")).unwrap();
    // "/b", ",b", the blob's size: 12 bytes before the blob.
    let blob = vec![7u8; 65_524 - 12];
    ctx.send(tx, "/b", &[Arg::Blob(&blob)]).unwrap();
    assert!(until(&ctx, || len(&log) == 1));
    assert_eq!(ctx.stats(rx).unwrap().bytes_in, 65_524);
    let too_long = vec![0u8; 65_528];
    assert!(matches!(
        ctx.send_packet(tx, &too_long),
        Err(Error::Encode(EncodeError::TooLarge))
    ));
    let v4 = ctx.open("v4", "osc.udp://127.0.0.1:9").unwrap();
    assert!(matches!(
        ctx.send(v4, "/b", &[Arg::Blob(&blob)]),
        Err(Error::Encode(EncodeError::TooLarge))
    ));
}

/// `?bind=` alone on a connecting TCP URL binds that address (any port), as on UDP.
#[test]
fn a_tcp_client_binds_its_address_without_a_local_port() {
    let ctx = context(Mode::Threaded);
    let raw = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = raw.local_addr().unwrap().port();
    let url = format!("osc.tcp://127.0.0.1:{port}?bind=127.0.0.2");
    ctx.open("client", &url).unwrap();
    raw.set_nonblocking(true).unwrap();
    let stop = Instant::now() + Duration::from_secs(5);
    let from = loop {
        match raw.accept() {
            Ok((_, from)) => break from,
            Err(_) if Instant::now() < stop => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("no connection: {e}"),
        }
    };
    assert_eq!(from.ip(), "127.0.0.2".parse::<std::net::IpAddr>().unwrap());
    // An address no attempt could bind is refused at open, as on UDP, instead of failing
    // every attempt in the background: another family, or not this host's.
    for bind in ["[::1]", "192.0.2.1"] {
        let url = format!("osc.tcp://127.0.0.1:{port}?bind={bind}");
        assert!(ctx.open("bad", &url).is_err(), "{url}");
    }
}

/// A client closed before the I/O loop reported its first attempt reports nothing.
#[test]
fn a_client_closed_at_once_reports_nothing() {
    let ctx = Arc::new(context(Mode::Poll));
    let seen = events(&ctx);
    let path = std::env::temp_dir().join(format!("rosco-closed-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("osc.unix://{}", path.display());
    ctx.open("server", &format!("{url}?listen&stream")).unwrap();
    let (_rx, tx) = udp_pair(&ctx);
    ctx.send(tx, "/close", &[]).unwrap();
    // A Unix connect completes inside `open`; the loop reports it on its next turn, after
    // the callbacks of the packets that turn reads: this one closes the client.
    let client = ctx.open("client", &format!("{url}?stream")).unwrap();
    let closer = Arc::downgrade(&ctx);
    ctx.methods()
        .add_method(Some("/close"), None, move |_: &Message<'_>, _: &MsgInfo| {
            closer.upgrade().unwrap().close(client).unwrap();
            Flow::Handled
        })
        .unwrap();
    for _ in 0..5 {
        ctx.poll(Some(Duration::from_millis(10))).unwrap();
    }
    let about_client: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|e| format!("{e:?}").contains(&format!("{client:?}")))
        .cloned()
        .collect();
    assert!(about_client.is_empty(), "{about_client:?}");
}

/// A Unix listener replaces only a stale socket file: a regular file at its path is left
/// alone, and a live listener whose backlog or queue is full is in use (the probe does not
/// wait for it).
#[test]
fn unix_listeners_replace_stale_sockets_only() {
    use std::os::unix::net::UnixDatagram;
    let dir = std::env::temp_dir();
    let path = |what: &str| dir.join(format!("rosco-stale-{what}-{}", std::process::id()));
    // A regular file.
    for (i, query) in ["listen", "listen&stream"].iter().enumerate() {
        let file = path(&format!("file{i}"));
        std::fs::write(&file, b"precious").unwrap();
        let ctx = context(Mode::Poll);
        let opened = ctx.open("l", &format!("osc.unix://{}?{query}", file.display()));
        assert!(opened.is_err(), "{query}");
        assert_eq!(std::fs::read(&file).unwrap(), b"precious");
        std::fs::remove_file(&file).unwrap();
    }
    // Open on another thread: a probe that blocks fails the test instead of hanging it.
    let open_soon = |url: String| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let ctx = context(Mode::Poll);
            let _ = tx.send(ctx.open("l", &url).is_ok());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("opening the listener blocked")
    };
    // A live datagram socket with a full queue.
    let busy = path("dgram");
    let _ = std::fs::remove_file(&busy);
    let live = UnixDatagram::bind(&busy).unwrap();
    let filler = UnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    while filler.send_to(&[0; 64], &busy).is_ok() {}
    assert!(!open_soon(format!("osc.unix://{}?listen", busy.display())));
    drop(live);
    // Now stale: replaced.
    assert!(open_soon(format!("osc.unix://{}?listen", busy.display())));
    let _ = std::fs::remove_file(&busy);
    // A live stream listener with a full backlog.
    let busy = path("stream");
    let _ = std::fs::remove_file(&busy);
    let addr = socket2::SockAddr::unix(&busy).unwrap();
    let live = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    live.bind(&addr).unwrap();
    live.listen(0).unwrap();
    let mut pending = Vec::new();
    loop {
        let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        if s.connect(&addr).is_err() {
            break;
        }
        pending.push(s);
    }
    let url = format!("osc.unix://{}?listen&stream", busy.display());
    assert!(!open_soon(url.clone()));
    drop((live, pending));
    assert!(open_soon(url));
    let _ = std::fs::remove_file(&busy);
}

/// Closing a connected client reports nothing more about it: no "closed by peer", no
/// reconnecting (its I/O thread saw the shutdown as the end of the connection).
#[test]
fn a_closed_client_does_not_reconnect() {
    let ctx = context(Mode::Threaded);
    let seen = events(&ctx);
    let server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let url = format!("osc.tcp://127.0.0.1:{}", ctx.port(server).unwrap());
    let client = ctx.open("client", &url).unwrap();
    let connected = |e: &Event| matches!(e, Event::Connected { channel, .. } if *channel == client);
    assert!(until(&ctx, || seen.lock().unwrap().iter().any(connected)));
    let before = seen.lock().unwrap().len();
    ctx.close(client).unwrap();
    // The server sees its peer go; by then the client's side is done too.
    let gone = |e: &Event| matches!(e, Event::Disconnected { channel, .. } if *channel == server);
    assert!(until(&ctx, || seen.lock().unwrap().iter().any(gone)));
    std::thread::sleep(Duration::from_millis(300));
    let about_client: Vec<_> = seen.lock().unwrap()[before..]
        .iter()
        .filter(|e| {
            matches!(e, Event::Disconnected { channel, .. } | Event::Reconnecting { channel, .. }
                if *channel == client)
        })
        .cloned()
        .collect();
    assert!(about_client.is_empty(), "{about_client:?}");
}

/// A server that accepts and closes at once counts as refusing: the client backs off and
/// gives up after its retries instead of reconnecting at its first wait for ever.
#[test]
fn accept_then_close_counts_as_a_failed_attempt() {
    let raw = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = raw.local_addr().unwrap().port();
    let accepts = Arc::new(AtomicUsize::new(0));
    let counted = accepts.clone();
    std::thread::spawn(move || {
        for conn in raw.incoming() {
            counted.fetch_add(1, Ordering::Relaxed);
            drop(conn);
        }
    });
    let ctx = context(Mode::Threaded);
    let seen = events(&ctx);
    let url = format!("osc.tcp://127.0.0.1:{port}?retries=2&backoff_ms=20");
    ctx.open("client", &url).unwrap();
    let gave_up = |e: &Event| matches!(e, Event::GaveUp { .. });
    assert!(
        until(&ctx, || seen.lock().unwrap().iter().any(gave_up)),
        "{} events, the first: {:?}",
        seen.lock().unwrap().len(),
        seen.lock().unwrap().iter().take(6).collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_millis(200));
    // The first connection and two retries.
    assert_eq!(accepts.load(Ordering::Relaxed), 3);
    let attempts: Vec<u32> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Reconnecting { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2]);
}

/// A client that gives up drops the packets sent while it tried: counted as dropped,
/// reported, not silently lost.
#[test]
fn a_client_that_gives_up_reports_its_backlog_dropped() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for mode in MODES {
        let ctx = context(mode);
        let seen = events(&ctx);
        let url = format!("osc.tcp://127.0.0.1:{port}?retries=2&backoff_ms=20");
        let client = ctx.open("client", &url).unwrap();
        for i in 0..3 {
            ctx.send(client, "/kept", &[Arg::Int(i)]).unwrap();
        }
        let dropped = |e: &Event| matches!(e, Event::Dropped { total: 3, .. });
        assert!(
            until(&ctx, || seen.lock().unwrap().iter().any(dropped)),
            "{mode:?}: {:?}",
            seen.lock().unwrap()
        );
        assert!(seen
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::GaveUp { .. })));
        assert_eq!(ctx.stats(client).unwrap().dropped, 3, "{mode:?}");
    }
}

/// A connection that ends with output still waiting in rosco says how much was lost.
#[test]
fn a_connection_lost_with_output_waiting_says_so() {
    let raw = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = raw.local_addr().unwrap().port();
    let ctx = context(Mode::Threaded);
    let seen = events(&ctx);
    let client = ctx
        .open("client", &format!("osc.tcp://127.0.0.1:{port}?retries=0"))
        .unwrap();
    let (peer, _) = raw.accept().unwrap();
    let connected = |e: &Event| matches!(e, Event::Connected { .. });
    assert!(until(&ctx, || seen.lock().unwrap().iter().any(connected)));
    // The peer never reads: the socket buffers fill and the rest waits in rosco.
    let blob = vec![7u8; 60_000];
    for _ in 0..200 {
        let _ = ctx.send(client, "/big", &[Arg::Blob(&blob)]);
    }
    drop(peer);
    let lost = |e: &Event| matches!(e, Event::Disconnected { reason, .. } if reason.contains("bytes of output not yet written were lost"));
    assert!(
        until(&ctx, || seen.lock().unwrap().iter().any(lost)),
        "{:?}",
        seen.lock().unwrap()
    );
}

/// The calling thread's voluntary context switches so far (Linux).
fn thread_wakeups() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("voluntary_ctxt_switches"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `poll` on an idle context sleeps through its timeout in every mode: it does not wake
/// now and then to look around (threaded mode's used to, every 5 ms), and returns when
/// another thread closes the context.
#[test]
fn poll_on_an_idle_context_sleeps() {
    for mode in MODES {
        let ctx = context(mode);
        let before = thread_wakeups();
        assert_eq!(ctx.poll(Some(Duration::from_millis(500))).unwrap(), 0);
        let woke = thread_wakeups() - before;
        assert!(woke <= 5, "{mode:?}: the polling thread woke {woke} times");
    }
    let ctx = Arc::new(context(Mode::Threaded));
    let closer = ctx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        closer.shutdown();
    });
    assert!(ctx.poll(None).is_err() || ctx.is_closed());
    t.join().unwrap();
}

/// A stream listener sending to all its peers with none connected sends nothing and
/// counts nothing as sent.
#[test]
fn a_listener_with_no_peers_counts_nothing_sent() {
    let ctx = context(Mode::Poll);
    let listener = ctx.open("srv", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    ctx.send(listener, "/x", &[]).unwrap();
    let stats = ctx.stats(listener).unwrap();
    assert_eq!(
        (stats.packets_out, stats.bytes_out, stats.dropped),
        (0, 0, 0)
    );
}

/// Peers each half-way through a large frame hold at most 64 MiB of a listener's memory
/// together: the peer whose buffer passes that is disconnected, the others keep their
/// place. (Memory, not bytes received: each buffer has grown to a MiB by doubling.)
#[test]
fn unfinished_frames_across_peers_are_bounded() {
    const PEERS: usize = 120;
    const SENT: usize = 700_000;
    let ctx = context(Mode::Threaded);
    let seen = events(&ctx);
    let listener = ctx.open("srv", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.local_addr(listener).unwrap().port();
    // Each announces a 1,000,000-byte frame and sends 700,000 bytes of it.
    let mut frame = 1_000_000u32.to_be_bytes().to_vec();
    frame.resize(4 + SENT, 0);
    let peers: Vec<_> = (0..PEERS)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(&frame).unwrap();
            s
        })
        .collect();
    let too_much = |e: &Event| matches!(e, Event::Disconnected { reason, .. } if reason.contains("unfinished frames across"));
    // 64 MiB holds no more than 95 such peers (their bytes), and at least 60 (their
    // buffers of a MiB each, a peer that passes the limit shrunk to its bytes first).
    let dropped = || count(&seen, too_much);
    assert!(
        until(&ctx, || dropped() >= PEERS - 95),
        "{} dropped",
        dropped()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        dropped() <= PEERS - 60,
        "{} dropped: more than needed",
        dropped()
    );
    drop(peers);
}

/// An accept filter that panics refuses the connection, reported like any refusal, and
/// the panic stays inside the context in every mode.
#[test]
fn a_panicking_accept_filter_refuses() {
    for mode in MODES {
        let ctx = context(mode);
        let seen = events(&ctx);
        let server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1").unwrap();
        ctx.set_accept_filter(Some(|_, _| -> bool { panic!("filter") }));
        let mut peer = TcpStream::connect(("127.0.0.1", ctx.port(server).unwrap())).unwrap();
        let refused = |e: &Event| matches!(e, Event::Disconnected { reason, .. } if reason == "refused by the accept filter");
        assert!(
            until(&ctx, || seen.lock().unwrap().iter().any(refused)),
            "{mode:?}: {:?}",
            seen.lock().unwrap()
        );
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(peer.read(&mut [0u8; 4]).unwrap_or(0), 0, "{mode:?}");
    }
}

/// A packet's source is named as osc4py3 identifies peers: by the host name a channel URL
/// used for that address, unless the application named the address (or its host).
#[test]
fn sources_are_named_by_url_host_names_or_as_told() {
    let ctx = context(Mode::Poll);
    let names = Arc::new(Mutex::new(Vec::new()));
    let (n, sender) = (names.clone(), ctx.sender());
    ctx.methods()
        .add_method(None, None, move |_: &Message<'_>, info: &MsgInfo| {
            let name = info.source.and_then(|s| sender.source_name(s));
            n.lock().unwrap().push(name.as_deref().map(str::to_owned));
            Flow::Handled
        })
        .unwrap();
    let rx = ctx.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(rx).unwrap();
    // `localhost` resolves to 127.0.0.1 (IPv4 first): replies from there are "localhost".
    let tx = ctx
        .open("tx", &format!("osc.udp://localhost:{port}"))
        .unwrap();
    let from = ctx.local_addr(tx).unwrap().port();
    ctx.send(tx, "/a", &[]).unwrap();
    assert!(until(&ctx, || names.lock().unwrap().len() == 1));
    let localhost: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    ctx.set_source_name(localhost, None, Some("this host"));
    ctx.send(tx, "/b", &[]).unwrap();
    assert!(until(&ctx, || names.lock().unwrap().len() == 2));
    ctx.set_source_name(localhost, Some(from), Some("tx"));
    ctx.send(tx, "/c", &[]).unwrap();
    assert!(until(&ctx, || names.lock().unwrap().len() == 3));
    let named = |s: &str| Some(s.to_owned());
    assert_eq!(
        *names.lock().unwrap(),
        [named("localhost"), named("this host"), named("tx")]
    );
    // A name learned from a URL goes with its channel; given ones stay until forgotten.
    ctx.set_source_name(localhost, None, None);
    ctx.close(tx).unwrap();
    let source = std::net::SocketAddr::new(localhost, from);
    assert_eq!(ctx.source_name(source).as_deref(), Some("tx"));
    ctx.set_source_name(localhost, Some(from), None);
    assert_eq!(ctx.source_name(source), None);
}

/// A `_local` packet the full queue refuses is received and dropped, not sent.
#[test]
fn a_refused_local_packet_is_not_counted_as_sent() {
    let ctx = Context::new(ContextOptions {
        queue_capacity: 1,
        ..ContextOptions::default()
    })
    .unwrap();
    let local = ctx.channel_id("_local").unwrap();
    let refused = (0..4)
        .filter(|_| matches!(ctx.send(local, "/x", &[]), Err(Error::Full)))
        .count();
    assert_eq!(refused, 3);
    let stats = ctx.stats(local).unwrap();
    let counts = (stats.packets_out, stats.packets_in, stats.dropped);
    assert_eq!(counts, (1, 4, 3));
}

/// A `_local` packet is counted before its callback can run, as a socket's are: a callback
/// never sees its own packet missing from `packets_in`.
#[test]
fn local_packets_are_counted_before_their_callbacks() {
    let ctx = Context::new(ContextOptions {
        mode: Mode::Threaded,
        workers: 2,
        ..ContextOptions::default()
    })
    .unwrap();
    let local = ctx.channel_id("_local").unwrap();
    let (ran, early) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (r, e, sender) = (ran.clone(), early.clone(), ctx.sender());
    ctx.methods()
        .add_method(Some("/x"), None, move |_: &Message<'_>, _: &MsgInfo| {
            // Started first, counted second: every callback begun so far had its packet
            // counted before it began, so the count read afterwards covers them all.
            let started = r.fetch_add(1, Ordering::SeqCst) + 1;
            if (sender.stats(local).unwrap().packets_in as usize) < started {
                e.fetch_add(1, Ordering::SeqCst);
            }
            Flow::Handled
        })
        .unwrap();
    let mut sent = 0;
    while sent < 5000 {
        match ctx.send(local, "/x", &[]) {
            Ok(()) => sent += 1,
            Err(Error::Full) => std::thread::yield_now(),
            Err(other) => panic!("{other}"),
        }
    }
    assert!(until(&ctx, || ran.load(Ordering::SeqCst) == sent));
    assert_eq!(early.load(Ordering::SeqCst), 0);
}

/// A packet whose callback panics out of io-thread mode's `poll` is still counted: a late
/// bundle is late.
#[test]
fn a_packet_whose_callback_panics_is_counted() {
    let (ctx, rx, tx) = io_thread_with_boom();
    let mut late = Vec::new();
    let mut w = PacketWriter::new(&mut late);
    w.begin_bundle(TimeTag::new(3_800_000_000, 0)).unwrap(); // 2020
    w.message("/boom", &[]).unwrap();
    w.end_bundle().unwrap();
    w.finish().unwrap();
    ctx.send_packet(tx, &late).unwrap();
    while ctx.stats(rx).unwrap().packets_in < 1 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ctx.poll(Some(Duration::from_secs(5)))
    }));
    assert!(polled.is_err());
    assert_eq!(ctx.stats(rx).unwrap().late, 1);
}

/// A `_local` send the full queue refuses is counted at once, but its `Dropped` event runs
/// where events run, on the thread doing the I/O (here the poller's), never on the sending
/// thread (an audio thread's, say).
#[test]
fn a_refused_local_send_is_reported_on_the_io_side() {
    let ctx = Context::new(ContextOptions {
        mode: Mode::Poll,
        queue_capacity: 1,
        ..ContextOptions::default()
    })
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    ctx.set_event_callback(Some(move |e: &Event| {
        let thread = std::thread::current().name().map(str::to_owned);
        s.lock().unwrap().push((format!("{e:?}"), thread));
    }));
    let local = ctx.channel_id("_local").unwrap();
    let sender = ctx.sender();
    let sent = std::thread::Builder::new()
        .name("audio".into())
        .spawn(move || [0, 1].map(|_| sender.send(local, "/x", &[]).is_ok()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(sent, [true, false]);
    assert_eq!(ctx.stats(local).unwrap().dropped, 1);
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    ctx.poll(Some(Duration::from_millis(10))).unwrap();
    let here = std::thread::current().name().map(str::to_owned);
    let events = seen.lock().unwrap().clone();
    let dropped: Vec<_> = events
        .iter()
        .filter(|(e, _)| e.starts_with("Dropped"))
        .collect();
    assert_eq!(dropped.len(), 1, "{events:?}");
    assert!(dropped[0].0.contains("total: 1"), "{events:?}");
    assert_eq!(dropped[0].1, here, "{events:?}");
}

/// Sends racing a context's shutdown either go out from the channel's own socket or fail
/// saying the channel or context is gone: none leaves from the placeholder socket the
/// closed one's descriptor is pointed at (an unknown port to the peer).
#[test]
fn sends_racing_shutdown_leave_from_the_channels_socket_or_not_at_all() {
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let to = format!("osc.udp://127.0.0.1:{}", peer.local_addr().unwrap().port());
    let ports = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let done = Arc::new(AtomicBool::new(false));
    let strays = {
        let (peer, ports, done) = (peer.try_clone().unwrap(), ports.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut buf, mut strays) = ([0u8; 64], Vec::new());
            while !done.load(Ordering::Relaxed) {
                if let Ok((_, from)) = peer.recv_from(&mut buf) {
                    if !ports.lock().unwrap().contains(&from.port()) {
                        strays.push(from);
                    }
                }
            }
            strays
        })
    };
    let errors = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..100 {
        let ctx = context(Mode::IoThread);
        let tx = ctx.open("tx", &to).unwrap();
        ports.lock().unwrap().insert(ctx.port(tx).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..3)
            .map(|_| {
                let (s, stop, errors) = (ctx.sender(), stop.clone(), errors.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match s.send(tx, "/n", &[Arg::Int(1)]) {
                            Ok(()) | Err(Error::Full) => {}
                            Err(Error::NoChannel | Error::Closed) => break,
                            Err(e) => {
                                errors.lock().unwrap().push(e.to_string());
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        ctx.shutdown();
        stop.store(true, Ordering::Relaxed);
        senders.into_iter().for_each(|t| t.join().unwrap());
    }
    std::thread::sleep(Duration::from_millis(100));
    done.store(true, Ordering::Relaxed);
    let strays = strays.join().unwrap();
    assert!(
        strays.is_empty(),
        "{} from other sockets: {strays:?}",
        strays.len()
    );
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
}

/// Every subscriber gets every message its routes match, also one a method registered
/// before it handled (which ends the delivery to other methods, liblo's convention).
#[test]
fn subscriptions_see_what_methods_before_them_handled() {
    let ctx = context(Mode::Poll);
    let local = ctx.channel_id("_local").unwrap();
    let first = ctx.subscribe(Some("/a/1"), None, 4).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let c = calls.clone();
        ctx.methods()
            .add_method(Some("/a/1"), None, move |_, _| {
                c.fetch_add(1, Ordering::SeqCst);
                Flow::Handled
            })
            .unwrap();
    }
    let later = ctx.subscribe(Some("/a/*"), None, 4).unwrap();
    ctx.send(local, "/a/1", &[]).unwrap();
    assert!(until(&ctx, || later.len() == 1));
    assert_eq!(first.len(), 1);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the second method is not called"
    );
}

/// A listener sending to all its peers: what a peer that stopped reading misses is counted
/// as dropped and reported, and the others get everything.
#[test]
fn a_broadcast_counts_what_a_stalled_peer_misses() {
    let ctx = context(Mode::IoThread);
    let seen = events(&ctx);
    let server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(server).unwrap();
    let stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let reader = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let peers = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Connected { .. }))
            .count()
    };
    assert!(until(&ctx, || peers() == 2));
    let blob = vec![7u8; 60_000];
    let sends = 300;
    let expected = sends * (4 + 8 + 4 + 4 + blob.len());
    let read = std::thread::spawn(move || {
        let mut reader = reader;
        reader
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (mut total, mut buf) = (0usize, vec![0u8; 1 << 16]);
        while total < expected {
            match reader.read(&mut buf) {
                Ok(n @ 1..) => total += n,
                _ => break,
            }
        }
        total
    });
    for _ in 0..sends {
        ctx.send(server, "/big", &[Arg::Blob(&blob)]).unwrap();
        // Paced (15 MB/s) so that the reading peer keeps up even if descheduled for a
        // while (it may fall 8 MiB and its socket buffers behind): only the stalled one
        // misses any.
        std::thread::sleep(Duration::from_millis(4));
    }
    let dropped = ctx.stats(server).unwrap().dropped;
    assert!(dropped > 0, "the stalled peer missed nothing?");
    assert!(until(&ctx, || seen
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Dropped { .. }))));
    drop(stalled);
    assert_eq!(read.join().unwrap(), expected);
}

/// Waiting packets are capped in bytes too: a peer sending megabyte frames to a context
/// that does not poll fills 64 MiB of them, not the queue's 4,096 (4 GiB); the rest are
/// dropped, counted and reported.
#[test]
fn the_receive_queue_is_capped_in_bytes() {
    let ctx = context(Mode::IoThread);
    let server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(server).unwrap();
    let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut frame = Vec::new();
    let blob = vec![1u8; (1 << 20) - 64];
    let mut w = PacketWriter::new(&mut frame);
    w.message("/big", &[Arg::Blob(&blob)]).unwrap();
    w.finish().unwrap();
    let len = (frame.len() as u32).to_be_bytes();
    for _ in 0..80 {
        peer.write_all(&len).unwrap();
        peer.write_all(&frame).unwrap();
    }
    let counts = || {
        let s = ctx.stats(server).unwrap();
        (s.packets_in, s.dropped)
    };
    // Not polled meanwhile: the queue fills. (A packet is counted in before it is queued
    // or dropped: both counts are waited for.)
    let stop = Instant::now() + Duration::from_secs(20);
    while (counts().0 < 80 || counts().1 < 16) && Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (_, dropped) = counts();
    assert!((16..=20).contains(&dropped), "{dropped} dropped");
    let got = counter(&ctx, "/big");
    assert!(until(&ctx, || got.load(Ordering::SeqCst) == 80 - dropped as usize));
}

/// Two peers each well into the largest frame the listener allows both fit: the budget
/// has room for two such buffers, as it promises, not for two frames' bytes only.
#[test]
fn two_of_the_largest_frames_fit_the_budget() {
    const MAX: usize = 40 << 20;
    let ctx = context(Mode::Threaded);
    let seen = events(&ctx);
    let got = counter(&ctx, "/big");
    let url = format!("osc.tcp://:0?bind=127.0.0.1&max_frame={MAX}");
    let listener = ctx.open("srv", &url).unwrap();
    let port = ctx.port(listener).unwrap();
    let frame = big_frame(MAX);
    let (part, rest) = frame.split_at(36 << 20);
    let mut peers: Vec<_> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for p in &mut peers {
        p.write_all(part).unwrap();
    }
    for p in &mut peers {
        p.write_all(rest).unwrap();
    }
    assert!(
        until(&ctx, || got.load(Ordering::SeqCst) == 2),
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(count(&seen, |e| matches!(e, Event::Disconnected { .. })), 0);
}

/// A message to /big of `len` bytes (a blob of the rest), framed with its length.
fn big_frame(len: usize) -> Vec<u8> {
    let mut packet = b"/big\0\0\0\0,b\0\0".to_vec();
    let blob = len - packet.len() - 4;
    packet.extend_from_slice(&(blob as u32).to_be_bytes());
    packet.resize(len, 7);
    let mut frame = (len as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&packet);
    frame
}

/// A full listener's peers that keep a byte of their next frame in buffers grown for
/// the last one (a MiB each) give those buffers back before a newcomer with a large
/// frame under way is let go for want of room.
#[test]
fn a_full_budget_shrinks_every_peers_buffer_before_dropping_one() {
    const PEERS: usize = 60;
    let ctx = context(Mode::Threaded);
    let seen = events(&ctx);
    let got = counter(&ctx, "/big");
    let listener = ctx.open("srv", "osc.tcp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(listener).unwrap();
    let mut frame = big_frame(1 << 20);
    frame.push(0);
    let peers: Vec<_> = (0..PEERS)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(&frame).unwrap();
            s
        })
        .collect();
    assert!(until(&ctx, || got.load(Ordering::SeqCst) == PEERS));
    let mut newcomer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut part = 1_000_000u32.to_be_bytes().to_vec();
    part.resize(4 + 600_000, 0);
    newcomer.write_all(&part).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let ends = count(&seen, |e| matches!(e, Event::Disconnected { .. }));
    assert_eq!(ends, 0, "{:?}", seen.lock().unwrap().last());
    drop(peers);
}

/// Senders of a framed UDP channel cannot hold more unfinished packets between them than a
/// stream listener's peers may (64 MiB with 1 MiB frames): 500 of them, each nearly
/// through a 1 MiB frame, would hold 500 MiB. The sender whose datagram passes the limit
/// loses its part, and says so; the others' packets still arrive whole.
#[test]
fn framed_udp_senders_share_a_cap_on_unfinished_packets() {
    const MIB: usize = 1 << 20;
    let ctx = context(Mode::Poll);
    let seen = events(&ctx);
    let got = counter(&ctx, "/big");
    let rx = ctx
        .open("rx", "osc.udp://:0?bind=127.0.0.1&framing=length")
        .unwrap();
    let to = ("127.0.0.1", ctx.port(rx).unwrap());
    let frame = big_frame(MIB);
    let (part, last) = frame.split_at(frame.len() - 1);
    let senders: Vec<_> = (0..65)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for s in &senders {
        for chunk in part.chunks(60_000) {
            s.send_to(chunk, to).unwrap();
            // Taken at once: none may be lost to a full socket buffer.
            ctx.poll(Some(Duration::ZERO)).unwrap();
        }
    }
    let too_much = |e: &Event| matches!(e, Event::Malformed { reason, .. } if reason.contains("across senders"));
    // Room for at most 63 parts (a MiB and the 4-byte length each; their buffers hold a
    // little more): at least the last two lose theirs, at most a few more.
    let lost = count(&seen, too_much);
    assert!((2..=8).contains(&lost), "{lost} lost");
    // Every sender finishes its packet: those that kept their part deliver it.
    for s in &senders {
        s.send_to(last, to).unwrap();
        ctx.poll(Some(Duration::ZERO)).unwrap();
    }
    let kept = senders.len() - lost;
    assert!(until(&ctx, || got.load(Ordering::SeqCst) == kept));
    std::thread::sleep(Duration::from_millis(100));
    ctx.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(got.load(Ordering::SeqCst), kept);
    assert_eq!(count(&seen, too_much), lost);
}

/// A poll-mode context with a short stall timeout, a listener with room for one peer, and
/// that peer connected and silent past the timeout: idle enough to make room.
fn full_listener_with_an_idle_peer(ctx: &Context, seen: &Events) -> (u16, TcpStream) {
    let server = ctx
        .open("server", "osc.tcp://:0?bind=127.0.0.1&max_clients=1")
        .unwrap();
    let port = ctx.port(server).unwrap();
    let idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let connected = || count(seen, |e| matches!(e, Event::Connected { .. })) == 1;
    assert!(until(ctx, connected));
    std::thread::sleep(Duration::from_millis(400));
    (port, idle)
}

fn short_stall() -> Context {
    Context::new(ContextOptions {
        mode: Mode::Poll,
        stall_timeout: Duration::from_millis(200),
        ..ContextOptions::default()
    })
    .unwrap()
}

/// The peer let go to make room was readable in the same turn: it is not read again (its
/// message dispatched from a removed peer, its end reported a second time).
#[test]
fn a_peer_let_go_to_make_room_is_not_read_again() {
    let ctx = short_stall();
    let seen = events(&ctx);
    let got = counter(&ctx, "/hello");
    let (port, mut idle) = full_listener_with_an_idle_peer(&ctx, &seen);
    // It speaks and a newcomer arrives before the next poll: one turn sees both.
    idle.write_all(&[
        0, 0, 0, 12, b'/', b'h', b'e', b'l', b'l', b'o', 0, 0, b',', 0, 0, 0,
    ])
    .unwrap();
    let _newcomer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..5 {
        ctx.poll(Some(Duration::from_millis(20))).unwrap();
    }
    let ends = count(&seen, |e| matches!(e, Event::Disconnected { .. }));
    assert_eq!(ends, 1, "{:?}", seen.lock().unwrap());
    assert_eq!(got.load(Ordering::SeqCst), 0);
}

/// A newcomer the accept filter refuses costs no accepted peer its place.
#[test]
fn a_refused_newcomer_makes_no_room() {
    let ctx = short_stall();
    let seen = events(&ctx);
    let first = AtomicBool::new(true);
    ctx.set_accept_filter(Some(move |_, _| first.swap(false, Ordering::SeqCst)));
    let (port, mut idle) = full_listener_with_an_idle_peer(&ctx, &seen);
    let _refused = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let refused = || {
        let why = |e: &Event| matches!(e, Event::Disconnected { reason, .. } if reason.contains("filter"));
        count(&seen, why) == 1
    };
    assert!(until(&ctx, refused));
    let ends = count(&seen, |e| matches!(e, Event::Disconnected { .. }));
    assert_eq!(ends, 1, "{:?}", seen.lock().unwrap());
    idle.set_nonblocking(true).unwrap();
    let still_open =
        matches!(idle.read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(still_open, "the idle peer was closed");
}

/// A full listener makes room for a newcomer by closing the peer silent longest, if it has
/// been silent for the stall timeout: connections that never send cannot keep everyone
/// else out, and peers that talk keep their places.
#[test]
fn a_full_listener_makes_room_by_closing_an_idle_peer() {
    let ctx = Context::new(ContextOptions {
        mode: Mode::IoThread,
        stall_timeout: Duration::from_millis(1500),
        ..ContextOptions::default()
    })
    .unwrap();
    let seen = events(&ctx);
    let got = counter(&ctx, "/hello");
    let server = ctx
        .open("server", "osc.tcp://:0?bind=127.0.0.1&max_clients=2")
        .unwrap();
    let port = ctx.port(server).unwrap();
    let hello = [
        0, 0, 0, 12, b'/', b'h', b'e', b'l', b'l', b'o', 0, 0, b',', 0, 0, 0,
    ];
    let reasons = || -> Vec<String> {
        let events = seen.lock().unwrap();
        let reasons = events.iter().filter_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        reasons.collect()
    };
    let connected = || {
        let events = seen.lock().unwrap();
        events
            .iter()
            .filter(|e| matches!(e, Event::Connected { .. }))
            .count()
    };
    // Two peers that talk: a third, arriving at once, finds no one idle long enough.
    let mut talkers: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    assert!(until(&ctx, || connected() == 2));
    let _refused = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(
        until(&ctx, || reasons() == ["too many peers"]),
        "{:?}",
        reasons()
    );
    // Silent past the stall timeout, the one silent longest makes room.
    std::thread::sleep(Duration::from_millis(1600));
    talkers[1].write_all(&hello).unwrap();
    assert!(until(&ctx, || got.load(Ordering::SeqCst) == 1));
    std::thread::sleep(Duration::from_millis(100));
    let mut newcomer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    newcomer.write_all(&hello).unwrap();
    assert!(
        until(&ctx, || got.load(Ordering::SeqCst) == 2),
        "{:?}",
        reasons()
    );
    assert_eq!(reasons(), ["too many peers", "idle, to make room"]);
    // The one that talked is still there.
    talkers[1].write_all(&hello).unwrap();
    assert!(until(&ctx, || got.load(Ordering::SeqCst) == 3));
    let mut buf = [0u8; 1];
    talkers[0]
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        talkers[0].read(&mut buf).unwrap(),
        0,
        "the idle one was closed"
    );
}
