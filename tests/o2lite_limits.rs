//! O2lite over loopback sockets, from peers that send more than anyone should keep: a
//! rosco host against raw clients, and a rosco client against a raw host.

use rosco::dispatch::{Flow, MsgInfo};
use rosco::o2lite::client::{ClientEvent, MAX_LISTING, MAX_LISTING_BYTES};
use rosco::o2lite::host::{
    HostEvent, MAX_CLIENT_SERVICES, MAX_HELD, MAX_HELD_BYTES, MAX_HOLD_AHEAD, MAX_SERVICES,
};
use rosco::o2lite::message::{decode, encode_body, encode_tcp, encode_udp, O2Arg};
use rosco::osc::{Arg, Message};
use rosco::runtime::Event;
use rosco::{ChannelId, Context, Mode};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

include!("support/contexts.rs");
use contexts::{events, Events};

fn context() -> Context {
    contexts::context(Mode::Threaded)
}

/// The first int argument of every message matching `pattern`.
fn record(ctx: &Context, pattern: &str) -> Arc<Mutex<Vec<i32>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    ctx.methods()
        .add_method(Some(pattern), None, move |m: &Message<'_>, _: &MsgInfo| {
            if let Some(Arg::Int(i)) = m.args().next() {
                l.lock().unwrap().push(i);
            }
            Flow::Handled
        })
        .unwrap();
    log
}

/// Waits until `done`, for at most 20 s (every context runs on its own thread).
fn until(mut done: impl FnMut() -> bool) -> bool {
    let stop = Instant::now() + Duration::from_secs(20);
    while Instant::now() < stop {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    done()
}

fn host_events(events: &Events) -> Vec<HostEvent> {
    let events = events.lock().unwrap();
    let host = events.iter().filter_map(|e| match e {
        Event::O2Host { event, .. } => Some(event.clone()),
        _ => None,
    });
    host.collect()
}

fn client_events(events: &Events) -> Vec<ClientEvent> {
    let events = events.lock().unwrap();
    let client = events.iter().filter_map(|e| match e {
        Event::O2Client { event, .. } => Some(event.clone()),
        _ => None,
    });
    client.collect()
}

/// Reads one framed message body.
fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    body
}

/// Appends a framed message.
fn frame(out: &mut Vec<u8>, ts: f64, address: &[u8], args: &[O2Arg<'_>]) {
    encode_tcp(out, ts, address, args).unwrap();
}

struct Host {
    ctx: Context,
    ch: ChannelId,
    events: Events,
    /// First int arguments delivered to the host's service `server`.
    heard: Arc<Mutex<Vec<i32>>>,
    port: u16,
    udp: u16,
}

fn host() -> Host {
    let ctx = context();
    let events = events(&ctx);
    let ch = ctx.open("host", "o2lite-host://limits?mdns=0").unwrap();
    ctx.o2_service_add(ch, "server").unwrap();
    let heard = record(&ctx, "/server/*");
    Host {
        port: ctx.port(ch).unwrap(),
        udp: ctx.o2_udp_port(ch).unwrap(),
        ctx,
        ch,
        events,
        heard,
    }
}

impl Host {
    /// A raw client that has completed `con`.
    fn join(&self) -> TcpStream {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut con = Vec::new();
        let args = [O2Arg::Str(b"7f000001"), O2Arg::Int(9)];
        encode_tcp(&mut con, 0.0, b"!_o2/o2lite/con", args).unwrap();
        s.write_all(&con).unwrap();
        assert_eq!(decode(&read_frame(&mut s)).unwrap().address(), b"!_o2/id");
        s
    }

    /// Sends an untimed message with `marker` to `server` on `s` and waits for it, so that
    /// everything sent before it on `s` has been handled.
    fn sync(&self, s: &mut TcpStream, marker: i32) {
        let mut f = Vec::new();
        frame(&mut f, 0.0, b"/server/mark", &[O2Arg::Int(marker)]);
        s.write_all(&f).unwrap();
        assert!(until(|| self.heard.lock().unwrap().contains(&marker)));
    }

    /// The same by UDP (loopback datagrams between two sockets arrive in order).
    fn sync_udp(&self, s: &UdpSocket, marker: i32) {
        let mut d = Vec::new();
        encode_udp(&mut d, 0.0, b"/server/mark", [O2Arg::Int(marker)]).unwrap();
        s.send_to(&d, ("127.0.0.1", self.udp)).unwrap();
        assert!(until(|| self.heard.lock().unwrap().contains(&marker)));
    }

    /// What was delivered, markers (negative) left out.
    fn held(&self) -> Vec<i32> {
        let heard = self.heard.lock().unwrap();
        heard.iter().copied().filter(|&i| i >= 0).collect()
    }

    fn not_held(&self) -> Vec<(&'static str, u64)> {
        let host = host_events(&self.events).into_iter();
        let not_held = host.filter_map(|e| match e {
            HostEvent::NotHeld { reason, total } => Some((reason, total)),
            _ => None,
        });
        not_held.collect()
    }

    fn time(&self) -> f64 {
        self.ctx.o2_time(self.ch).unwrap()
    }
}

const FULL: &str = "the hold queue is full: delivered at once";
const BAD_TIME: &str = "a timestamp not finite or too far ahead";

#[test]
fn the_host_holds_so_many_messages_and_refuses_absurd_times() {
    let h = host();
    let mut s = h.join();
    // Timestamps that are no times, or too far ahead, by TCP and by UDP: never delivered,
    // reported once.
    let mut f = Vec::new();
    let far = h.time() + MAX_HOLD_AHEAD + 10.0;
    for (ts, i) in [(f64::INFINITY, -1), (f64::NAN, -2), (far, -3)] {
        frame(&mut f, ts, b"/server/x", &[O2Arg::Int(i)]);
    }
    s.write_all(&f).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut d = Vec::new();
    encode_udp(&mut d, f64::INFINITY, b"/server/x", [O2Arg::Int(-4)]).unwrap();
    udp.send_to(&d, ("127.0.0.1", h.udp)).unwrap();
    h.sync(&mut s, -100);
    h.sync_udp(&udp, -101);
    assert_eq!(h.not_held(), [(BAD_TIME, 1)]);
    // A held message delivered: the next drop is reported again.
    f.clear();
    frame(&mut f, h.time() + 0.05, b"/server/mark", &[O2Arg::Int(-5)]);
    s.write_all(&f).unwrap();
    assert!(until(|| h.heard.lock().unwrap().contains(&-5)));

    // One more than the queue holds, by TCP, then by UDP: the extra ones are delivered at
    // once rather than lost.
    let due = h.time() + 3.0;
    f.clear();
    for i in 0..=MAX_HELD as i32 {
        frame(&mut f, due, b"/server/x", &[O2Arg::Int(i)]);
    }
    s.write_all(&f).unwrap();
    h.sync(&mut s, -102);
    d.clear();
    encode_udp(&mut d, due, b"/server/x", [O2Arg::Int(-6)]).unwrap();
    udp.send_to(&d, ("127.0.0.1", h.udp)).unwrap();
    h.sync_udp(&udp, -103);
    assert!(
        h.time() < due,
        "too slow to fill the queue before it is due"
    );
    // Reported at the first extra one (the fifth message not held), not at the second.
    assert_eq!(h.not_held(), [(BAD_TIME, 1), (FULL, 5)]);
    assert!(h.heard.lock().unwrap().contains(&-6));
    assert!(until(|| h.held().len() == MAX_HELD + 1));
    std::thread::sleep(Duration::from_millis(200));
    let held: Vec<i32> = [MAX_HELD as i32]
        .into_iter()
        .chain(0..MAX_HELD as i32)
        .collect();
    assert_eq!(
        h.held(),
        held,
        "the extra one first, then the held ones in order"
    );
    let heard = h.heard.lock().unwrap().clone();
    assert!(!heard.iter().any(|i| [-1, -2, -3, -4].contains(i)));
}

#[test]
fn the_host_holds_so_many_bytes() {
    let h = host();
    let mut s = h.join();
    let blob = vec![7; 60_000];
    let mut body = Vec::new();
    encode_body(
        &mut body,
        1,
        1.0,
        b"/server/x",
        [O2Arg::Int(0), O2Arg::Blob(&blob)],
    )
    .unwrap();
    let fit = MAX_HELD_BYTES / body.len();
    let due = h.time() + 3.0;
    let mut f = Vec::new();
    for i in 0..fit as i32 + 10 {
        frame(
            &mut f,
            due,
            b"/server/x",
            &[O2Arg::Int(i), O2Arg::Blob(&blob)],
        );
    }
    s.write_all(&f).unwrap();
    h.sync(&mut s, -100);
    assert!(
        h.time() < due,
        "too slow to fill the queue before it is due"
    );
    assert_eq!(h.not_held(), [(FULL, 1)]);
    assert!(until(|| h.held().len() == fit + 10));
    std::thread::sleep(Duration::from_millis(200));
    let extra = fit as i32..fit as i32 + 10;
    assert_eq!(h.held(), extra.chain(0..fit as i32).collect::<Vec<_>>());
}

fn sv(out: &mut Vec<u8>, name: &str, exists: i32) {
    let args = [
        O2Arg::Str(name.as_bytes()),
        O2Arg::Int(exists),
        O2Arg::Int(1),
        O2Arg::Str(b""),
        O2Arg::Int(0),
    ];
    encode_tcp(out, 0.0, b"!_o2/o2lite/sv", args).unwrap();
}

/// The host's service list, asked for on `s`.
fn list(s: &mut TcpStream) -> Vec<String> {
    let mut ls = Vec::new();
    encode_tcp(
        &mut ls,
        0.0,
        b"/_o2/o2lite/ls",
        std::iter::empty::<O2Arg<'_>>(),
    )
    .unwrap();
    s.write_all(&ls).unwrap();
    let mut names = Vec::new();
    loop {
        let body = read_frame(s);
        let m = decode(&body).unwrap();
        assert_eq!(m.address(), b"!_o2/ls");
        match m.args().next() {
            Some(O2Arg::Str(b"")) => return names,
            Some(O2Arg::Str(name)) => names.push(String::from_utf8(name.to_vec()).unwrap()),
            a => panic!("{a:?}"),
        }
    }
}

#[test]
fn the_host_takes_so_many_services() {
    let h = host();
    let refused = || -> Vec<String> {
        let host = host_events(&h.events).into_iter();
        let refused = host.filter_map(|e| match e {
            HostEvent::ServiceRefused { name, .. } => Some(name),
            _ => None,
        });
        refused.collect()
    };
    // One client with too many: the extra ones are refused, reported once.
    let mut a = h.join();
    let mut f = Vec::new();
    for i in 0..MAX_CLIENT_SERVICES + 5 {
        sv(&mut f, &format!("a{i}"), 1);
    }
    a.write_all(&f).unwrap();
    let names = list(&mut a);
    assert_eq!(names.len(), 1 + MAX_CLIENT_SERVICES);
    assert!(!names.contains(&format!("a{MAX_CLIENT_SERVICES}")));
    assert_eq!(refused(), [format!("a{MAX_CLIENT_SERVICES}")]);
    // Withdrawing one makes room for another.
    f.clear();
    sv(&mut f, "a0", 0);
    sv(&mut f, "again", 1);
    a.write_all(&f).unwrap();
    let names = list(&mut a);
    assert!(names.contains(&"again".to_string()) && !names.contains(&"a0".to_string()));

    // Clients together fill the table; then even a new client is refused.
    let mut others = Vec::new();
    let mut room = MAX_SERVICES - names.len();
    while room > 0 {
        let mut c = h.join();
        let k = others.len();
        f.clear();
        for i in 0..MAX_CLIENT_SERVICES.min(room) {
            sv(&mut f, &format!("c{k}-{i}"), 1);
        }
        room -= MAX_CLIENT_SERVICES.min(room);
        c.write_all(&f).unwrap();
        others.push(c);
    }
    let mut late = h.join();
    f.clear();
    sv(&mut f, "late", 1);
    late.write_all(&f).unwrap();
    let names = list(&mut late);
    assert_eq!(names.len(), MAX_SERVICES);
    assert!(!names.contains(&"late".to_string()));
    assert_eq!(refused().len(), 2);
    assert_eq!(refused()[1], "late");
    // A client that leaves takes its services along, making room.
    drop(a);
    let removed = || {
        let host = host_events(&h.events).into_iter();
        host.filter(|e| matches!(e, HostEvent::ServiceRemoved { .. }))
            .count()
    };
    assert!(until(|| removed() == MAX_CLIENT_SERVICES + 1));
    late.write_all(&f).unwrap();
    let names = list(&mut late);
    assert!(names.contains(&"late".to_string()));
    assert_eq!(names.len(), MAX_SERVICES - MAX_CLIENT_SERVICES + 1);
}

/// `!_o2/ls` entries with `properties`, then the end of the list, framed.
fn entries(names: impl IntoIterator<Item = String>, properties: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    for name in names.into_iter().chain([String::new()]) {
        let args = [
            O2Arg::Str(name.as_bytes()),
            O2Arg::Int(4),
            O2Arg::Str(b"_o2"),
            O2Arg::Str(properties),
        ];
        encode_tcp(&mut f, 0.0, b"!_o2/ls", args).unwrap();
    }
    f
}

/// A raw host for a rosco client: a TCP listener, and a UDP socket the client sends its
/// clock pings to (never answered).
struct RawHost {
    listener: TcpListener,
    udp: UdpSocket,
}

impl RawHost {
    fn new() -> RawHost {
        RawHost {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            udp: UdpSocket::bind("127.0.0.1:0").unwrap(),
        }
    }

    fn url(&self) -> String {
        format!(
            "o2lite://limits@127.0.0.1:{}?udp_port={}",
            self.listener.local_addr().unwrap().port(),
            self.udp.local_addr().unwrap().port()
        )
    }

    /// A context with a client channel for this host, and the context's events.
    fn client(&self) -> (Context, Events, ChannelId) {
        let ctx = context();
        let events = events(&ctx);
        let ch = ctx.open("o2", &self.url()).unwrap();
        (ctx, events, ch)
    }

    /// Accepts the client of channel `ch`, takes its `con` and gives it bridge id `id`.
    fn admit(&self, ctx: &Context, ch: ChannelId, id: i32) -> TcpStream {
        let (mut host, _) = self.listener.accept().unwrap();
        assert_eq!(
            decode(&read_frame(&mut host)).unwrap().address(),
            b"!_o2/o2lite/con"
        );
        let mut frame = Vec::new();
        encode_tcp(&mut frame, 0.0, b"!_o2/id", [O2Arg::Int(id)]).unwrap();
        host.write_all(&frame).unwrap();
        assert!(until(|| ctx.o2_bridge_id(ch).unwrap() == Some(id)));
        host
    }
}

#[test]
fn the_client_takes_lists_by_tcp_and_so_long() {
    let raw = RawHost::new();
    let (ctx, events, ch) = raw.client();
    ctx.o2_service_add(ch, "client").unwrap();
    let heard = record(&ctx, "/client/*");
    let mut host = raw.admit(&ctx, ch, 7);
    let lists = || -> Vec<Vec<String>> {
        let client = client_events(&events).into_iter();
        let lists = client.filter_map(|e| match e {
            ClientEvent::List(l) => Some(l.into_iter().map(|e| e.name).collect()),
            _ => None,
        });
        lists.collect()
    };

    // Anyone can send to the client's UDP port: a list and a status by UDP are ignored.
    let anyone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", ctx.o2_udp_port(ch).unwrap());
    let mut spoofed = entries(["spoof".to_string()], b"");
    encode_tcp(
        &mut spoofed,
        0.0,
        b"!_o2/st",
        [O2Arg::Str(b"x"), O2Arg::Int(4)],
    )
    .unwrap();
    encode_tcp(&mut spoofed, 0.0, b"/client/mark", [O2Arg::Int(1)]).unwrap();
    let mut rest = &spoofed[..];
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        anyone.send_to(&rest[4..4 + len], to).unwrap();
        rest = &rest[4 + len..];
    }
    assert!(until(|| heard.lock().unwrap().contains(&1)));
    let spoofed_news = client_events(&events)
        .into_iter()
        .filter(|e| matches!(e, ClientEvent::List(_) | ClientEvent::Status { .. }))
        .count();
    assert_eq!(spoofed_news, 0);

    // By TCP, lists too long are cut short, in entries and in bytes; the next is whole.
    let names = |n: usize| (0..n).map(|i| format!("s{i}"));
    host.write_all(&entries(names(MAX_LISTING + 5), b""))
        .unwrap();
    let properties = vec![b'p'; 60_000];
    let mut text = 0;
    let fit = names(usize::MAX)
        .take_while(|n| {
            text += n.len() + "_o2".len() + properties.len();
            text <= MAX_LISTING_BYTES
        })
        .count();
    host.write_all(&entries(names(fit + 5), &properties))
        .unwrap();
    host.write_all(&entries(names(2), b"")).unwrap();
    assert!(until(|| lists().len() == 3));
    let lists = lists();
    assert_eq!(lists[0], names(MAX_LISTING).collect::<Vec<_>>());
    assert_eq!(lists[1], names(fit).collect::<Vec<_>>());
    assert_eq!(lists[2], ["s0", "s1"]);
}

/// What a host sends a client that it cannot use is refused and reported with its reason:
/// clock replies with times no host can have, control messages with other type tags or
/// unknown, application messages whose timestamp is no number. Good ones still count.
#[test]
fn the_client_reports_what_it_refuses() {
    let raw = RawHost::new();
    let (ctx, events, ch) = raw.client();
    ctx.o2_service_add(ch, "client").unwrap();
    let heard = record(&ctx, "/client/*");
    // By UDP before the id (a last connection's, maybe): ignored, as the spec says, and
    // counted as dropped.
    let to = ("127.0.0.1", ctx.o2_udp_port(ch).unwrap());
    let mut early = Vec::new();
    encode_udp(&mut early, 0.0, b"/client/x", [O2Arg::Int(9)]).unwrap();
    raw.udp.send_to(&early, to).unwrap();
    assert!(until(|| ctx.stats(ch).unwrap().dropped == 1));
    let mut host = raw.admit(&ctx, ch, 7);
    let refused = |why: &str| {
        let events = events.lock().unwrap();
        let reasons = events.iter().filter_map(|e| match e {
            Event::Malformed { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        reasons.filter(|r| r.contains(why)).count()
    };

    let mut frames = Vec::new();
    frame(&mut frames, 0.0, b"!_o2/st", &[O2Arg::Int(4)]);
    frame(&mut frames, 0.0, b"!_o2/dy", &[O2Arg::Str(b"limits")]);
    frame(&mut frames, f64::NAN, b"/client/x", &[O2Arg::Int(1)]);
    frame(&mut frames, f64::INFINITY, b"/client/x", &[O2Arg::Int(2)]);
    frame(&mut frames, 0.0, b"/client/x", &[O2Arg::Int(3)]);
    host.write_all(&frames).unwrap();
    assert!(until(|| heard.lock().unwrap().contains(&3)));
    assert_eq!(*heard.lock().unwrap(), [3]);
    assert_eq!(refused("!_o2/st ,i refused: other type tags"), 1);
    assert_eq!(refused("!_o2/dy ,s refused: not a message a host sends"), 1);
    assert_eq!(
        refused("refused: a timestamp that is not a finite number"),
        2
    );

    // Clock pings answered with times no host can have, then with a good one.
    let mut buf = [0; 512];
    let absurd = [f64::NAN, -1.0, 1e300];
    for (i, time) in absurd.into_iter().chain([50.0; 5]).enumerate() {
        let n = raw.udp.recv(&mut buf).unwrap();
        let ping = decode(&buf[..n]).unwrap();
        assert_eq!(ping.address(), b"!_o2/o2lite/cs/get");
        let seq = ping.args().nth(1).unwrap();
        let mut reply = Vec::new();
        encode_udp(&mut reply, 0.0, b"!_o2/cs/put", [seq, O2Arg::Time(time)]).unwrap();
        raw.udp.send_to(&reply, to).unwrap();
        let expected = (i + 1).min(absurd.len());
        assert!(until(|| refused("a time no host can have") == expected));
    }
    assert!(until(|| client_events(&events)
        .iter()
        .any(|e| matches!(e, ClientEvent::Synced { .. }))));
    let time = ctx.o2_time(ch).unwrap();
    assert!((50.0..51.0).contains(&time), "{time}");
    assert_eq!(ctx.stats(ch).unwrap().malformed, 7);
    assert!(!heard.lock().unwrap().contains(&9));
}

/// A host that never answers `con` is left, and the events say so.
#[test]
fn a_host_that_never_answers_con_is_left_with_the_reason() {
    let raw = RawHost::new();
    let (ctx, events, ch) = raw.client();
    let (_silent, _) = raw.listener.accept().unwrap();
    let why = "the host did not answer con";
    let told = |e: &Event| match e {
        Event::Disconnected { reason, .. } | Event::Reconnecting { reason, .. } => reason == why,
        Event::O2Client {
            event: ClientEvent::Lost { reason },
            ..
        } => *reason == why,
        _ => false,
    };
    assert!(until(|| events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| told(e))
        .count()
        == 3));
    assert_eq!(ctx.o2_bridge_id(ch).unwrap(), None);
}

/// A client that finished sending while the host still owes it output is gone for O2lite
/// at once: a new connection may offer its services straight away, while the old one is
/// kept only for what it is owed.
#[test]
fn a_client_that_finished_sending_frees_its_services_at_once() {
    let h = host();
    let mut old = h.join();
    let mut f = Vec::new();
    sv(&mut f, "svc", 1);
    // Its own service sent back to it by TCP, more than the socket buffers take: it does
    // not read, so the host keeps output for it.
    let blob = vec![1; 60_000];
    for i in 0..200 {
        frame(&mut f, 0.0, b"/svc/x", &[O2Arg::Int(i), O2Arg::Blob(&blob)]);
    }
    old.write_all(&f).unwrap();
    old.shutdown(std::net::Shutdown::Write).unwrap();
    let left = || {
        host_events(&h.events)
            .iter()
            .any(|e| matches!(e, HostEvent::ClientLeft { bridge_id: 1, .. }))
    };
    assert!(until(left), "the finished client left the session");
    // ... before its connection went, which waits for it to read what it is owed.
    let disconnected = h
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Disconnected { .. }));
    assert!(
        !disconnected,
        "left the session only when the connection went"
    );
    let mut new = h.join();
    f.clear();
    sv(&mut f, "svc", 1);
    new.write_all(&f).unwrap();
    assert!(list(&mut new).contains(&"svc".to_string()));
    let refused = host_events(&h.events)
        .into_iter()
        .any(|e| matches!(e, HostEvent::ServiceRefused { .. }));
    assert!(!refused);
    drop(old);
}

#[test]
fn a_client_not_synchronised_sends_timestamp_0_only() {
    // The raw host never answers the clock pings (as a host without a clock, §7).
    let raw = RawHost::new();
    let ctx = context();
    let ch = ctx.open("o2", &raw.url()).unwrap();
    let mut host = raw.admit(&ctx, ch, 3);
    assert_eq!(ctx.o2_time(ch).unwrap(), -1.0);
    // §1, §5: without global time a timestamp means nothing to the host.
    let early = ctx.o2_send(ch, 5.0, true, "/server/later", &[Arg::Int(1)]);
    assert!(
        matches!(early, Err(rosco::Error::Unsupported(_))),
        "{early:?}"
    );
    ctx.o2_send(ch, 0.0, true, "/server/now", &[Arg::Int(2)])
        .unwrap();
    let body = read_frame(&mut host);
    let m = decode(&body).unwrap();
    assert_eq!((m.address(), m.timestamp()), (&b"/server/now"[..], 0.0));
    // Nor can a bridge turn a time argument into global seconds: such a message is held
    // back (and logged), one without passes.
    let osc = ctx.open("in", "osc.udp://:0?bind=127.0.0.1").unwrap();
    ctx.osc_bridge_to_o2(osc, ch, "server", true, true).unwrap();
    let port = ctx.port(osc).unwrap();
    let out = ctx
        .open("out", &format!("osc.udp://127.0.0.1:{port}"))
        .unwrap();
    ctx.send(out, "/timed", &[Arg::Time(rosco::TimeTag::now())])
        .unwrap();
    ctx.send(out, "/plain", &[Arg::Int(3)]).unwrap();
    let m = decode(&read_frame(&mut host)).unwrap().address().to_vec();
    assert_eq!(m, b"/server/plain");
}

/// Sends `/server/big` messages on `ch` until its output to a host that does not read is at
/// its limit (`Full`); returns how many went.
fn fill_output(ctx: &Context, ch: ChannelId) -> usize {
    let blob = vec![1u8; 60_000];
    let mut sent = 0;
    loop {
        match ctx.o2_send(ch, 0.0, true, "/server/big", &[Arg::Blob(&blob)]) {
            Ok(()) => sent += 1,
            Err(rosco::Error::Full) => return sent,
            Err(e) => panic!("{e}"),
        }
    }
}

/// A service offered while the host is slow to read (the client's output to it at its
/// limit, where application messages are refused `Full`) still reaches the host once it
/// reads: the session counts its announcement as sent.
#[test]
fn an_offer_waits_behind_output_at_its_limit() {
    let raw = RawHost::new();
    let ctx = context();
    let ch = ctx.open("o2", &raw.url()).unwrap();
    let mut host = raw.admit(&ctx, ch, 3);
    let sent = fill_output(&ctx, ch);
    ctx.o2_service_add(ch, "late").unwrap();
    // The host reads everything: the application messages, then the offer.
    host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut messages = 0;
    loop {
        let body = read_frame(&mut host);
        let m = decode(&body).unwrap();
        match m.address() {
            b"/server/big" => messages += 1,
            b"!_o2/o2lite/sv" => {
                assert_eq!(m.args().next(), Some(O2Arg::Str(b"late")));
                break;
            }
            other => panic!("{}", String::from_utf8_lossy(other)),
        }
    }
    assert_eq!(messages, sent);
}

/// A host's events follow its session's order, whether the change came from the
/// application (a service of its own added and withdrawn) or from a client (offering the
/// same name next): the client's offer is never reported before the withdrawal that came
/// first.
#[test]
fn host_events_follow_the_sessions_order() {
    let h = host();
    let mut s = h.join();
    const ROUNDS: usize = 1000;
    for i in 0..ROUNDS {
        let name = format!("x{i}");
        h.ctx.o2_service_add(h.ch, &name).unwrap();
        h.ctx.o2_service_remove(h.ch, &name).unwrap();
        let mut offer = Vec::new();
        sv(&mut offer, &name, 1);
        s.write_all(&offer).unwrap();
    }
    h.sync(&mut s, -1);
    let mut offered = std::collections::BTreeSet::new();
    for e in host_events(&h.events) {
        match e {
            HostEvent::ServiceAdded { name } => offered.insert(name),
            HostEvent::ServiceRemoved { name } => offered.remove(&name),
            _ => false,
        };
    }
    let missing: Vec<usize> = (0..ROUNDS)
        .filter(|i| !offered.contains(&format!("x{i}")))
        .collect();
    assert!(
        missing.is_empty(),
        "reported gone though offered: {missing:?}"
    );
}

/// While a host does not read, a client's output stops growing: application messages and
/// queries are refused `Full`; announcements wait past that limit, up to an allowance,
/// and then the connection ends (the next one announces the session afresh).
#[test]
fn a_host_that_does_not_read_stops_a_clients_output() {
    let raw = RawHost::new();
    let (ctx, events, ch) = raw.client();
    let _host = raw.admit(&ctx, ch, 3);
    fill_output(&ctx, ch);
    assert!(matches!(
        ctx.o2_query(ch, Some("x")),
        Err(rosco::Error::Full)
    ));
    assert!(matches!(ctx.o2_query(ch, None), Err(rosco::Error::Full)));
    let why = "the O2 host is not reading what it is sent";
    let ended = || {
        let events = events.lock().unwrap();
        events
            .iter()
            .any(|e| matches!(e, Event::Disconnected { reason, .. } if reason.starts_with(why)))
    };
    // Each announcement is about 50 bytes: the 1 MiB allowance holds about 20,000.
    for i in 0..100_000 {
        ctx.o2_service_add(ch, "s").unwrap();
        ctx.o2_service_remove(ch, "s").unwrap();
        if i % 1000 == 0 && ended() {
            break;
        }
    }
    assert!(until(ended));
}

/// A full host does not let a client go to make room for a newcomer, however long its
/// TCP connection has been quiet: an O2lite client may talk by UDP only, and its place is
/// its session. The newcomer is refused instead.
#[test]
fn a_full_host_keeps_its_quiet_clients() {
    let host = Context::new(rosco::ContextOptions {
        mode: Mode::Threaded,
        max_stream_peers: 1,
        stall_timeout: Duration::from_millis(200),
        ..rosco::ContextOptions::default()
    })
    .unwrap();
    let seen = events(&host);
    let ch = host.open("host", "o2lite-host://quiet?mdns=0").unwrap();
    let (port, udp) = (host.port(ch).unwrap(), host.o2_udp_port(ch).unwrap());
    let client = context();
    let url = format!("o2lite://quiet@127.0.0.1:{port}?udp_port={udp}");
    client.open("o2", &url).unwrap();
    let joined = |e: &HostEvent| matches!(e, HostEvent::ClientJoined { .. });
    assert!(until(|| host_events(&seen).iter().any(joined)));
    std::thread::sleep(Duration::from_millis(400));
    let mut newcomer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let reasons = || -> Vec<String> {
        let events = seen.lock().unwrap();
        let ends = events.iter().filter_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        ends.collect()
    };
    assert!(until(|| !reasons().is_empty()));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(reasons(), ["too many peers"]);
    newcomer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(newcomer.read(&mut [0; 1]).unwrap_or(0), 0);
}

/// The host closing the connection while the client still holds one of its messages for
/// the application (io-thread mode, not polled): the session is kept until that message
/// is taken, with its session, and ends after it; meanwhile sends and queries fail
/// `Closed` (they returned `Ok` and were lost), and nothing more is written to the host
/// (its reset would end the session first), clock pings by TCP included (no `udp_port`).
/// Once polled, the client reconnects.
#[test]
fn a_host_closing_fails_sends_at_once() {
    for tcp_only in [false, true] {
        let raw = RawHost::new();
        let url = match tcp_only {
            false => raw.url(),
            true => format!(
                "o2lite://limits@127.0.0.1:{}",
                raw.listener.local_addr().unwrap().port()
            ),
        };
        let ctx = contexts::context(Mode::IoThread);
        let seen = events(&ctx);
        let got = record(&ctx, "/client/x");
        let ch = ctx.open("o2", &url).unwrap();
        let mut host = raw.admit(&ctx, ch, 5);
        let mut frame = Vec::new();
        encode_tcp(&mut frame, 0.0, b"/client/x", [O2Arg::Int(1)]).unwrap();
        host.write_all(&frame).unwrap();
        // Everything the client sent is read, so the close is a clean one (FIN).
        host.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        while host.read(&mut [0; 4096]).is_ok_and(|n| n > 0) {}
        drop(host);
        // Time for the I/O thread to read the end; then the first call says so (a
        // second would fail anyway, on the reset the first provokes).
        std::thread::sleep(Duration::from_millis(500));
        let closed = |r: Result<(), rosco::Error>| matches!(r, Err(rosco::Error::Closed));
        assert!(
            closed(ctx.o2_send(ch, 0.0, true, "/server/x", &[])),
            "{url}"
        );
        assert!(closed(ctx.o2_query(ch, Some("server"))), "{url}");
        assert!(closed(ctx.o2_query(ch, None)), "{url}");
        // Clock pings (by TCP without udp_port) go on being due meanwhile.
        std::thread::sleep(Duration::from_millis(1000));
        let ended = |e: &Event| matches!(e, Event::Disconnected { .. });
        assert!(!seen.lock().unwrap().iter().any(ended), "{url}");
        // Taken with its session, then the session ends and the client reconnects.
        ctx.poll(Some(Duration::from_millis(100))).unwrap();
        assert_eq!(*got.lock().unwrap(), [1], "{url}");
        raw.listener.set_nonblocking(true).unwrap();
        assert!(until(|| {
            let _ = ctx.poll(Some(Duration::from_millis(10)));
            raw.listener.accept().is_ok()
        }));
        assert!(seen.lock().unwrap().iter().any(ended), "{url}");
    }
}
