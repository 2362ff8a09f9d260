//! Datagram channels at their edges: Unix socket files and probes, full receivers, IPv4
//! sources in IPv6 form, multicast groups sharing a port.

use rosco::dispatch::{Flow, MsgInfo};
use rosco::osc::{Arg, Message};
use rosco::{ChannelId, Context, ContextOptions, Error, Mode, TimeTag};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn ctx(mode: Mode) -> Context {
    Context::new(ContextOptions {
        mode,
        ..ContextOptions::default()
    })
    .unwrap()
}

fn pump(ctx: &Context, d: Duration) {
    let stop = Instant::now() + d;
    while Instant::now() < stop {
        let _ = ctx.poll(Some(Duration::from_millis(10)));
    }
}

type Seen = Arc<Mutex<Vec<(Option<ChannelId>, String)>>>;

fn record(ctx: &Context) -> Seen {
    let seen = Seen::default();
    let s = seen.clone();
    ctx.methods()
        .add_method(None, None, move |m: &Message<'_>, i: &MsgInfo| {
            s.lock()
                .unwrap()
                .push((i.channel, m.address_str().unwrap_or("?").to_owned()));
            Flow::Handled
        })
        .unwrap();
    seen
}

/// A directory of this process's own for socket files.
fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rosco-datagrams-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Opening a second Unix datagram listener on a live path fails without touching the
/// first: the "stale socket" probe connects, it sends nothing the listener would count.
#[test]
fn a_second_listener_on_a_live_unix_path_leaves_the_first_alone() {
    let c = ctx(Mode::Poll);
    let path = dir().join("live.sock");
    let _ = std::fs::remove_file(&path);
    let url = format!("osc.unix://{}?listen", path.display());
    let a = c.open("a", &url).unwrap();
    assert!(c.open("b", &url).is_err());
    pump(&c, Duration::from_millis(200));
    let s = c.stats(a).unwrap();
    assert_eq!(
        (s.packets_in, s.malformed),
        (0, 0),
        "the live listener received the probe: {s:?}"
    );
}

/// Sending to a Unix datagram receiver whose queue is full: nothing was sent, which the
/// API calls `Error::Full` (as for streams), not an I/O error.
#[test]
fn a_full_unix_datagram_receiver_is_error_full() {
    let c = ctx(Mode::Poll);
    let path = dir().join("full.sock");
    let _ = std::fs::remove_file(&path);
    // Never polled: its queue fills.
    let _rx = c
        .open("rx", &format!("osc.unix://{}?listen", path.display()))
        .unwrap();
    let tx = c
        .open("tx", &format!("osc.unix://{}", path.display()))
        .unwrap();
    let mut err = None;
    for _ in 0..100_000 {
        if let Err(e) = c.send(tx, "/x", &[Arg::Int(1)]) {
            err = Some(e);
            break;
        }
    }
    let e = err.expect("the receiver's queue never filled");
    assert!(matches!(e, Error::Full), "got {e:?}");
}

/// A reply to an IPv4-mapped IPv6 source on an IPv4-only channel (`?bind=127.0.0.1`) goes
/// to the plain IPv4 address, as mapped and plain IPv4 are one everywhere else.
#[test]
fn a_reply_to_a_mapped_ipv4_source_from_an_ipv4_socket() {
    let c = ctx(Mode::Poll);
    let rx = c.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mapped: std::net::SocketAddr =
        format!("[::ffff:127.0.0.1]:{}", peer.local_addr().unwrap().port())
            .parse()
            .unwrap();
    let info = MsgInfo::new(TimeTag::now())
        .with_source(Some(mapped))
        .with_channel(Some(rx));
    c.reply(&info, "/r", &[])
        .expect("reply to a mapped IPv4 source");
    let mut buf = [0u8; 64];
    assert!(peer.recv(&mut buf).is_ok());
}

/// Two groups on one port: a channel that joined 239.255.42.1 does not receive what is
/// sent to 239.255.42.2 (Linux delivers every group joined by any socket on the host to
/// every socket bound to the wildcard address and that port, unless IP_MULTICAST_ALL is
/// off).
#[test]
fn multicast_channel_receives_only_its_group() {
    let c = ctx(Mode::Poll);
    let seen = record(&c);
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let g1 = match c.open(
        "g1",
        &format!("osc.udp://239.255.42.1:{port}?iface=127.0.0.1"),
    ) {
        Ok(g) => g,
        Err(e) => return eprintln!("skipping: no multicast here: {e}"),
    };
    let g2 = c
        .open(
            "g2",
            &format!("osc.udp://239.255.42.2:{port}?iface=127.0.0.1"),
        )
        .unwrap();
    c.send(g2, "/to-g2", &[]).unwrap();
    pump(&c, Duration::from_millis(300));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|(ch, _)| *ch == Some(g2)),
        "g2 did not hear its own group: {seen:?}"
    );
    assert!(
        !seen.iter().any(|(ch, _)| *ch == Some(g1)),
        "g1 heard another group's datagram: {seen:?}"
    );
}

/// A Unix path longer than sun_path (108 bytes) is refused by `open`, not by every send
/// or connection attempt after it.
#[test]
fn a_unix_path_too_long_is_refused_at_open() {
    let c = ctx(Mode::Poll);
    let long = format!("/tmp/{}", "x".repeat(120));
    for query in ["", "?stream"] {
        let r = c.open("tx", &format!("osc.unix://{long}{query}"));
        assert!(matches!(r, Err(Error::Io(_))), "{query}: {r:?}");
    }
}

/// Closing a Unix listener removes its own socket file only, not one another listener
/// bound at the path after the first one's file was removed (by a tmp cleaner, say).
#[test]
fn closing_leaves_another_listeners_socket_file() {
    let c = ctx(Mode::Poll);
    for query in ["?listen", "?listen&stream"] {
        let path = dir().join("owner.sock");
        let _ = std::fs::remove_file(&path);
        let url = format!("osc.unix://{}{query}", path.display());
        let a = c.open("a", &url).unwrap();
        std::fs::remove_file(&path).unwrap();
        let b = c.open("b", &url).unwrap();
        c.close(a).unwrap();
        assert!(
            path.exists(),
            "{query}: closing 'a' deleted the file 'b' is bound to"
        );
        c.close(b).unwrap();
        assert!(!path.exists(), "{query}: 'b' left its file behind");
    }
}

/// Options that would leave a channel deaf or do nothing are refused at open: a group's
/// channel bound to another address or port (it would join the group and never receive
/// it), `iface`/`loop` on a name that turned out not to be a group, and a multicast
/// address to bind a unicast or stream socket to.
#[test]
fn options_a_channel_cannot_honour_are_refused() {
    let c = ctx(Mode::Poll);
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let group = |q: &str| format!("osc.udp://239.255.42.3:{port}?iface=127.0.0.1&{q}");
    if let Err(e) = c.open("g", &group("reuse=1")) {
        return eprintln!("skipping: no multicast here: {e}");
    }
    let other = port.wrapping_add(1).max(1024);
    for q in ["bind=127.0.0.1".to_string(), format!("local={other}")] {
        let opened = c.open("deaf", &group(&q));
        assert!(matches!(opened, Err(Error::Io(_))), "{q}: {opened:?}");
    }
    for q in [
        "bind=239.255.42.3",
        "bind=0.0.0.0",
        &format!("local={port}"),
    ] {
        c.open(q, &group(q)).unwrap();
    }
    for url in [
        "osc.udp://localhost:9?iface=lo",
        "osc.udp://localhost:9?loop=0",
        "osc.udp://localhost:9?bind=239.255.42.3",
        "osc.udp://:0?bind=239.255.42.3",
        "osc.tcp://:0?bind=239.255.42.3",
    ] {
        assert!(c.open("x", url).is_err(), "{url}");
    }
}

/// An IPv6 group's zone (`%25lo`) names the interface it is joined on, as it names the
/// one sends leave by (it was joined on the default interface).
#[test]
fn an_ipv6_groups_zone_is_where_it_is_joined() {
    let c = ctx(Mode::Poll);
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let url = format!("osc.udp://[ff02::4242:7%25lo]:{port}");
    if let Err(e) = c.open("g", &url) {
        return eprintln!("skipping: no IPv6 multicast on lo: {e}");
    }
    // Linux lists each interface's groups: this one is on lo.
    let Ok(groups) = std::fs::read_to_string("/proc/net/igmp6") else {
        return eprintln!("skipping: no /proc/net/igmp6");
    };
    let joined = groups.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&"lo") && f.get(2) == Some(&"ff020000000000000000000042420007")
    });
    assert!(joined, "{groups}");
    // An IPv6 group needs its port for IPv6 only: an IPv4 socket holding the same port,
    // without sharing it, is no obstacle.
    let v4 = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let taken = v4.local_addr().unwrap().port();
    c.open("v6", &format!("osc.udp://[ff02::4242:8%25lo]:{taken}"))
        .unwrap();
    // A zone and an iface that disagree are refused.
    if std::path::Path::new("/sys/class/net/eth0").exists() {
        assert!(c.open("clash", &format!("{url}?iface=eth0")).is_err());
    }
}

/// `join=0` sends to a group without joining it, from a port of its own, as oscsend does:
/// a receiver holding the group's port without sharing it (oscdump's) is no obstacle.
#[test]
fn a_group_is_sent_to_without_joining_it() {
    let c = ctx(Mode::Poll);
    let holder = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let group = std::net::Ipv4Addr::new(239, 255, 42, 5);
    if let Err(e) = holder.join_multicast_v4(&group, &std::net::Ipv4Addr::LOCALHOST) {
        return eprintln!("skipping: no multicast here: {e}");
    }
    holder
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let url = format!("osc.udp://{group}:{port}?iface=127.0.0.1");
    // Joining, it needs the port, which is held.
    assert!(c.open("joins", &url).is_err());
    let g = c.open("sends", &format!("{url}&join=0")).unwrap();
    c.send(g, "/held", &[]).unwrap();
    let mut buf = [0; 64];
    let n = holder.recv(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"/held\0"));
    // Only a group is joined or not.
    assert!(c.open("x", "osc.udp://127.0.0.1:9?join=0").is_err());
    assert!(c.open("y", "osc.udp://localhost:9?join=0").is_err());
    // Bound to the group, it could not receive its replies.
    assert!(c.open("z", &format!("{url}&join=0&bind={group}")).is_err());
    // Each sends from a port of its own: two on one port would split their replies.
    let mut ports = std::collections::HashSet::new();
    for i in 0..400 {
        let ch = c.open(&format!("s{i}"), &format!("{url}&join=0")).unwrap();
        assert!(ports.insert(c.local_addr(ch).unwrap().port()), "after {i}");
    }
}
