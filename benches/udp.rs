//! UDP and TCP on loopback: rosco against raw sockets and liblo in the same run, reported
//! as ratios:
//! - receive path: a socket queue pre-filled with packets, then drained, decoded and
//!   dispatched to a counting callback (raw: drained only);
//! - end to end: one sender thread streaming to one receiver over UDP, and the sender's
//!   cost alone;
//! - tcp: a TCP receiver kept full by a raw sender, each library's sender streaming to one
//!   raw receiver, and a library sender streaming to a library receiver (rosco also with
//!   `?nodelay=0`);
//! - round trip: ping-pong latency, median and p99, busy-polling and blocking.
//!
//! `cargo bench --bench udp` (liblo from Debian's `liblo-dev`); name parts to run only
//! those: `receive`, `end-to-end`, `send`, `tcp`, `round-trip-busy-poll`, `round-trip-blocking`
//! (or a piece of a name: `round-trip`).

#[path = "support/stats.rs"]
mod stats;
use stats::{median, percentile};

#[path = "support/liblo.rs"]
#[allow(dead_code)] // shared with the codec benchmark, which uses the rest
mod liblo;

use rosco::dispatch::Flow;
use rosco::osc::{encode_message, Arg};
use rosco::{Context, ContextOptions, Mode};
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ARGS: [Arg<'static>; 3] = [Arg::Int(440), Arg::Float(0.5), Arg::Str(b"sine")];

fn packet() -> Vec<u8> {
    let mut p = Vec::new();
    encode_message("/synth/1/freq", &ARGS, &mut p).unwrap();
    p
}

/// Lets the receive queue hold a whole burst (root may exceed rmem_max).
fn big_receive_buffer(fd: std::os::unix::io::RawFd) {
    let size: libc::c_int = 32 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid socket and a pointer to a c_int of the given length.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return;
        }
    }
}

fn counting_context(mode: Mode) -> (Context, Arc<AtomicU64>) {
    let ctx = Context::new(ContextOptions {
        mode,
        ..ContextOptions::default()
    })
    .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    ctx.methods()
        .add_method(Some("/synth/1/freq"), Some("ifs"), move |_, _| {
            c.fetch_add(1, Ordering::Relaxed);
            Flow::Handled
        })
        .unwrap();
    (ctx, count)
}

const BURST: usize = 4000;
const ROUNDS: usize = 40;

/// Nanoseconds per packet to drain a pre-filled queue, for raw sockets, liblo and rosco.
/// Their rounds alternate, so that all see the same machine (its speed drifts by more than
/// the gaps between them).
fn receive_path() -> [f64; 3] {
    let pkt = packet();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    big_receive_buffer(raw.as_raw_fd());
    raw.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 65_536];
    let lo = liblo::Server::new(liblo::UDP);
    big_receive_buffer(lo.fd());
    let (ctx, count) = counting_context(Mode::Poll);
    let rx = ctx.open("rx", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let to = [
        raw.local_addr().unwrap(),
        SocketAddr::from(([127, 0, 0, 1], lo.port())),
        SocketAddr::from(([127, 0, 0, 1], ctx.port(rx).unwrap())),
    ];
    let mut ns: [Vec<f64>; 3] = Default::default();
    for _ in 0..ROUNDS {
        for (i, times) in ns.iter_mut().enumerate() {
            for _ in 0..BURST {
                tx.send_to(&pkt, to[i]).unwrap();
            }
            let t = Instant::now();
            match i {
                0 => {
                    let mut got = 0;
                    while got < BURST {
                        if raw.recv_from(&mut buf).is_ok() {
                            got += 1;
                        }
                    }
                }
                1 => {
                    let target = lo.count() + BURST as u64;
                    while lo.count() < target {
                        lo.recv(0);
                    }
                }
                _ => {
                    let target = count.load(Ordering::Relaxed) + BURST as u64;
                    while count.load(Ordering::Relaxed) < target {
                        ctx.poll(Some(Duration::ZERO)).unwrap();
                    }
                }
            }
            times.push(t.elapsed().as_nanos() as f64 / BURST as f64);
        }
    }
    ns.map(|mut v| median(&mut v))
}

const STREAM: Duration = Duration::from_millis(1000);

/// Who is measured: each side of a stream is raw sockets, liblo or rosco. Over TCP liblo
/// leaves Nagle's algorithm on and rosco turns it off: `RoscoNagle` is rosco with
/// `?nodelay=0`, `LibloNoDelay` liblo with `lo_address_set_tcp_nodelay`. Over UDP,
/// `RoscoListening` sends from a context whose I/O thread waits for replies on the sending
/// socket.
#[derive(Clone, Copy, PartialEq)]
enum Peer {
    Raw,
    Liblo,
    LibloNoDelay,
    Rosco,
    RoscoNagle,
    RoscoListening,
}

const PEERS: [Peer; 4] = [Peer::Raw, Peer::Liblo, Peer::Rosco, Peer::RoscoListening];

/// The receiving side of a stream to `peer` (over TCP with `tcp`): the count of messages
/// received, its port, and what keeps it alive until `stop`.
fn receiver(
    peer: Peer,
    tcp: bool,
    stop: &Arc<AtomicBool>,
) -> (Arc<AtomicU64>, u16, Box<dyn std::any::Any>) {
    let scheme = if tcp { "osc.tcp" } else { "osc.udp" };
    match peer {
        Peer::Rosco | Peer::RoscoNagle | Peer::RoscoListening => {
            let (ctx, count) = counting_context(Mode::Threaded);
            let rx = ctx
                .open("rx", &format!("{scheme}://:0?bind=127.0.0.1"))
                .unwrap();
            let port = ctx.port(rx).unwrap();
            (count, port, Box::new(ctx))
        }
        Peer::Raw if tcp => {
            // Reads as fast as the connection gives; every frame has the same size.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let count = Arc::new(AtomicU64::new(0));
            let (c, stop) = (count.clone(), stop.clone());
            let frame = 4 + packet().len() as u64;
            let t = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let (mut buf, mut bytes) = (vec![0u8; 1 << 16], 0u64);
                while !stop.load(Ordering::Relaxed) {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => bytes += n as u64,
                        Err(_) => {}
                    }
                    c.store(bytes / frame, Ordering::Relaxed);
                }
            });
            (count, port, Box::new(t))
        }
        Peer::Raw => {
            let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = raw.local_addr().unwrap().port();
            let count = Arc::new(AtomicU64::new(0));
            let (c, stop) = (count.clone(), stop.clone());
            raw.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let t = std::thread::spawn(move || {
                let mut buf = [0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    if raw.recv_from(&mut buf).is_ok() {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            (count, port, Box::new(t))
        }
        Peer::Liblo | Peer::LibloNoDelay => {
            let lo = liblo::Server::new(if tcp { liblo::TCP } else { liblo::UDP });
            let port = lo.port();
            let count = Arc::new(AtomicU64::new(0));
            let (c, stop) = (count.clone(), stop.clone());
            let t = std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    lo.recv(50);
                    c.store(lo.count(), Ordering::Relaxed);
                }
            });
            (count, port, Box::new(t))
        }
    }
}

/// Datagrams the kernel dropped so far because a receiving socket's buffer was full
/// (`RcvbufErrors` in `/proc/net/snmp`, all UDP sockets of the machine).
fn udp_drops() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// A stream's rate and what its receiver lost.
#[derive(Clone, Copy, Default)]
struct Rate {
    /// Messages received per second.
    received: f64,
    /// Datagrams dropped per second for want of room in the receiving socket (UDP).
    dropped: f64,
}

/// Messages received while one thread streams to `to`'s receiver as fast as `peer`'s
/// sender can, over UDP or (`tcp`) TCP. Raw sockets send no TCP message framing here:
/// over TCP only liblo and rosco send.
fn stream(peer: Peer, to: Peer, tcp: bool) -> Rate {
    let stop = Arc::new(AtomicBool::new(false));
    let scheme = if tcp { "osc.tcp" } else { "osc.udp" };
    let query = if peer == Peer::RoscoNagle {
        "?nodelay=0"
    } else {
        ""
    };
    let (received, port, keep) = receiver(to, tcp, &stop);
    let sender = {
        let stop = stop.clone();
        let pkt = packet();
        // Over UDP a socket that only sends, as raw sockets' and liblo's `lo_send` are: a
        // poll-mode context nobody polls. A thread waiting on the socket (an I/O thread
        // listening for replies) costs every send a call on the socket's wait queue when
        // the kernel frees the datagram: `RoscoListening` measures that. Over TCP a
        // threaded context: a client needs the I/O loop to connect and to write what the
        // socket did not take at once.
        let mode = match peer {
            Peer::Rosco if !tcp => Some(Mode::Poll),
            Peer::Rosco | Peer::RoscoNagle | Peer::RoscoListening => Some(Mode::Threaded),
            Peer::Raw | Peer::Liblo | Peer::LibloNoDelay => None,
        };
        let ctx = mode.map(|mode| {
            Context::new(ContextOptions {
                mode,
                ..ContextOptions::default()
            })
            .unwrap()
        });
        std::thread::spawn(move || {
            let to = SocketAddr::from(([127, 0, 0, 1], port));
            match peer {
                Peer::Raw => {
                    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let _ = raw.send_to(&pkt, to);
                    }
                }
                Peer::Liblo | Peer::LibloNoDelay => {
                    let lo = liblo::Sender::new(if tcp { liblo::TCP } else { liblo::UDP }, port);
                    if peer == Peer::LibloNoDelay {
                        lo.set_tcp_nodelay();
                    }
                    while !stop.load(Ordering::Relaxed) {
                        lo.send();
                    }
                }
                Peer::Rosco | Peer::RoscoNagle | Peer::RoscoListening => {
                    let ctx = ctx.unwrap();
                    let tx = ctx.open("tx", &format!("{scheme}://{to}{query}")).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        // Over TCP a full socket buffer answers `WouldBlock`: retry.
                        let _ = ctx.send(tx, "/synth/1/freq", &ARGS);
                    }
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (start, drops) = (received.load(Ordering::Relaxed), udp_drops());
    std::thread::sleep(STREAM);
    let got = received.load(Ordering::Relaxed) - start;
    let dropped = udp_drops() - drops;
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    drop(keep);
    Rate {
        received: got as f64 / STREAM.as_secs_f64(),
        dropped: dropped as f64 / STREAM.as_secs_f64(),
    }
}

/// Messages per second a TCP receiver (liblo or rosco) takes in while a raw sender keeps
/// its connection full: 64 length-prefixed frames per write, so the receiver is the
/// bottleneck.
fn tcp_receive(peer: Peer) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let (received, port, keep) = receiver(peer, true, &stop);
    let sender = {
        let stop = stop.clone();
        let mut frames = Vec::new();
        for _ in 0..64 {
            let pkt = packet();
            frames.extend_from_slice(&(pkt.len() as u32).to_be_bytes());
            frames.extend_from_slice(&pkt);
        }
        std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(&frames).is_err() {
                    break;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let start = received.load(Ordering::Relaxed);
    std::thread::sleep(STREAM);
    let got = received.load(Ordering::Relaxed) - start;
    stop.store(true, Ordering::Relaxed);
    drop(keep);
    sender.join().unwrap();
    got as f64 / STREAM.as_secs_f64()
}

/// For each pair of sender and receiver, the median rate of five turns of `stream` and
/// the mean rate of drops, the turns interleaved (a stream's rate on this machine moves by
/// a tenth from one second to the next).
fn streams(pairs: &[(Peer, Peer)], tcp: bool) -> Vec<Rate> {
    let mut rates = vec![Vec::new(); pairs.len()];
    for _ in 0..5 {
        for (i, &(from, to)) in pairs.iter().enumerate() {
            rates[i].push(stream(from, to, tcp));
        }
    }
    rates
        .iter()
        .map(|turns| {
            let mut received: Vec<f64> = turns.iter().map(|r| r.received).collect();
            Rate {
                received: median(&mut received),
                dropped: turns.iter().map(|r| r.dropped).sum::<f64>() / turns.len() as f64,
            }
        })
        .collect()
}

const PINGS: usize = 20_000;
const PING_CHUNK: usize = 1_000;

const SENDS: u32 = 20_000;

/// Nanoseconds per UDP send, the sender alone (to a socket nobody reads, which drops what
/// overflows): raw sockets, liblo, rosco from a poll-mode context, rosco from a threaded
/// one (its I/O thread waiting on the socket for replies). Rounds alternate, the median
/// is kept: the stream figures are noisy, this is what the sender adds.
fn send_cost() -> [f64; 4] {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = sink.local_addr().unwrap();
    let pkt = packet();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    let lo = liblo::Sender::new(liblo::UDP, to.port());
    let context = |mode| {
        let ctx = Context::new(ContextOptions {
            mode,
            ..ContextOptions::default()
        })
        .unwrap();
        let ch = ctx.open("tx", &format!("osc.udp://{to}")).unwrap();
        (ctx, ch)
    };
    let (poll, poll_tx) = context(Mode::Poll);
    let (threaded, threaded_tx) = context(Mode::Threaded);
    let time = |send: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..SENDS {
            send();
        }
        t.elapsed().as_nanos() as f64 / f64::from(SENDS)
    };
    let mut rounds = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..15 {
        rounds[0].push(time(&mut || {
            let _ = raw.send_to(&pkt, to);
        }));
        rounds[1].push(time(&mut || {
            lo.send();
        }));
        rounds[2].push(time(&mut || {
            let _ = poll.send(poll_tx, "/synth/1/freq", &ARGS);
        }));
        rounds[3].push(time(&mut || {
            let _ = threaded.send(threaded_tx, "/synth/1/freq", &ARGS);
        }));
    }
    rounds.map(|mut r| median(&mut r))
}

/// Pins the calling thread (and the threads it starts afterwards) to `cpus`.
fn pin(cpus: impl IntoIterator<Item = usize>) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it; the call reads
    // a set of the size given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Round-trip times in microseconds, (median, p99), for a raw socket connected to its echo
/// and rosco's channel with `?connect=1`, then for an unconnected raw socket (`send_to`)
/// and rosco's default channel, which is unconnected too (it hears replies from anyone).
/// They take turns by chunks of pings, so that all see the same machine. Echo sides run on the last
/// CPU and the pinging side on the first: left to the scheduler, one echo thread may share
/// the pinger's CPU (a cheap wake-up) and the other not (a cross-CPU wake-up, some 50 µs
/// on this virtual machine), which measures the scheduler, not the code.
///
/// Busy-polling, both sides spin: the pinger on a non-blocking socket or `poll` with a
/// zero timeout, and one echo thread that serves whichever peer's turn it is (two spinning
/// echo threads on one CPU would take the CPU from each other). Blocking, the echo sides
/// sleep until a ping arrives: a raw socket in `recv_from`, and a threaded rosco context.
fn round_trip(busy: bool) -> [(f64, f64); 4] {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    pin([cpus - 1]);
    let (raw_echo_port, rosco_echo_port, echo) = match busy {
        true => busy_echo(),
        false => blocking_echo(),
    };
    pin([0]);
    let pkt = packet();
    let raw_echo = SocketAddr::from(([127, 0, 0, 1], raw_echo_port));
    let raw_socket = || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(busy).unwrap();
        s
    };
    let (connected, unconnected) = (raw_socket(), raw_socket());
    connected.connect(raw_echo).unwrap();
    let mut buf = [0u8; 65_536];
    let mut raw_connected = || {
        let t = Instant::now();
        connected.send(&pkt).unwrap();
        while connected.recv(&mut buf).is_err() {}
        t.elapsed().as_nanos() as f64 / 1e3
    };
    let mut buf = [0u8; 65_536];
    let mut raw_unconnected = || {
        let t = Instant::now();
        unconnected.send_to(&pkt, raw_echo).unwrap();
        while unconnected.recv_from(&mut buf).is_err() {}
        t.elapsed().as_nanos() as f64 / 1e3
    };
    // One context each: a poll reads every socket of its context.
    let pinger = |url: String| {
        let (ctx, count) = counting_context(Mode::Poll);
        let tx = ctx.open("tx", &url).unwrap();
        (ctx, count, tx)
    };
    let to = format!("osc.udp://127.0.0.1:{rosco_echo_port}");
    let unconnected = pinger(to.clone());
    let connected = pinger(format!("{to}?connect=1"));
    let wait = match busy {
        true => Duration::ZERO,
        false => Duration::from_secs(1),
    };
    let rosco_ping = |(ctx, count, tx): &(Context, Arc<AtomicU64>, _)| {
        let t = Instant::now();
        let target = count.load(Ordering::Relaxed) + 1;
        ctx.send(*tx, "/synth/1/freq", &ARGS).unwrap();
        while count.load(Ordering::Relaxed) < target {
            ctx.poll(Some(wait)).unwrap();
        }
        t.elapsed().as_nanos() as f64 / 1e3
    };
    let mut rtts: [Vec<f64>; 4] = Default::default();
    // The first chunk of each warms up and is not counted.
    for chunk in 0..=PINGS / PING_CHUNK {
        let mut chunks: [Vec<f64>; 4] = Default::default();
        echo.turn.store(RAW_TURN, Ordering::Relaxed);
        chunks[0] = (0..PING_CHUNK).map(|_| raw_connected()).collect();
        chunks[2] = (0..PING_CHUNK).map(|_| raw_unconnected()).collect();
        echo.turn.store(ROSCO_TURN, Ordering::Relaxed);
        chunks[1] = (0..PING_CHUNK).map(|_| rosco_ping(&connected)).collect();
        chunks[3] = (0..PING_CHUNK).map(|_| rosco_ping(&unconnected)).collect();
        if chunk > 0 {
            for (all, c) in rtts.iter_mut().zip(chunks) {
                all.extend(c);
            }
        }
    }
    echo.turn.store(STOP, Ordering::Relaxed);
    for t in echo.threads {
        t.join().unwrap();
    }
    pin(0..cpus);
    rtts.map(|mut v| (median(&mut v), percentile(&mut v, 0.99)))
}

const RAW_TURN: u8 = 0;
const ROSCO_TURN: u8 = 1;
const STOP: u8 = 2;

/// The echo threads of a round-trip measurement, and whose turn it is.
struct Echo {
    turn: Arc<AtomicU8>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// A rosco context that answers each ping from its callback.
fn echo_context(mode: Mode) -> (Context, u16) {
    let ctx = Context::new(ContextOptions {
        mode,
        ..ContextOptions::default()
    })
    .unwrap();
    let sender = ctx.sender();
    ctx.methods()
        .add_method(Some("/synth/1/freq"), None, move |_, info| {
            let _ = sender.reply(info, "/synth/1/freq", &ARGS);
            Flow::Handled
        })
        .unwrap();
    let rx = ctx.open("echo", "osc.udp://:0?bind=127.0.0.1").unwrap();
    let port = ctx.port(rx).unwrap();
    (ctx, port)
}

/// One spinning thread echoing on a non-blocking raw socket in raw's turn and polling a
/// poll-mode rosco context with a zero timeout in rosco's. Returns the two ports.
fn busy_echo() -> (u16, u16, Echo) {
    let turn = Arc::new(AtomicU8::new(RAW_TURN));
    let (ports_tx, ports) = std::sync::mpsc::channel();
    let t = turn.clone();
    let thread = std::thread::spawn(move || {
        let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
        raw.set_nonblocking(true).unwrap();
        let (ctx, port) = echo_context(Mode::Poll);
        ports_tx
            .send((raw.local_addr().unwrap().port(), port))
            .unwrap();
        let mut buf = [0u8; 65_536];
        loop {
            match t.load(Ordering::Relaxed) {
                RAW_TURN => {
                    if let Ok((n, from)) = raw.recv_from(&mut buf) {
                        raw.send_to(&buf[..n], from).unwrap();
                    }
                }
                ROSCO_TURN => {
                    ctx.poll(Some(Duration::ZERO)).unwrap();
                }
                _ => return,
            }
        }
    });
    let (raw_port, rosco_port) = ports.recv().unwrap();
    let threads = vec![thread];
    (raw_port, rosco_port, Echo { turn, threads })
}

/// A raw socket's thread blocking in `recv_from`, and a threaded rosco context.
fn blocking_echo() -> (u16, u16, Echo) {
    let turn = Arc::new(AtomicU8::new(RAW_TURN));
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    let raw_port = raw.local_addr().unwrap().port();
    raw.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t = turn.clone();
    let raw_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        while t.load(Ordering::Relaxed) != STOP {
            if let Ok((n, from)) = raw.recv_from(&mut buf) {
                let _ = raw.send_to(&buf[..n], from);
            }
        }
    });
    let (ctx, rosco_port) = echo_context(Mode::Threaded);
    // The context's I/O thread ends when the context is dropped, after the pings.
    let t = turn.clone();
    let keeper = std::thread::spawn(move || {
        while t.load(Ordering::Relaxed) != STOP {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(ctx);
    });
    let threads = vec![raw_thread, keeper];
    (raw_port, rosco_port, Echo { turn, threads })
}

fn main() {
    // `cargo test --benches` runs benches with no arguments after `--bench`; only
    // measure when invoked as a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // Other arguments choose parts by name: `cargo bench --bench udp -- receive`.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |part: &str| only.is_empty() || only.iter().any(|o| part.contains(o.as_str()));
    println!("UDP loopback, rosco vs raw sockets (same run; 2-core machine)\n");
    if wanted("receive") {
        let [raw, lo, ours] = receive_path();
        println!(
            "receive path (drain+decode+dispatch): raw {raw:.0} ns/pkt, liblo {lo:.0} ns/pkt, rosco {ours:.0} ns/pkt: rosco = {:.0}% of raw, {:.2}x liblo; liblo = {:.0}% of raw",
            100.0 * raw / ours,
            lo / ours,
            100.0 * raw / lo
        );
    }
    if wanted("end-to-end") {
        let r = streams(&PEERS.map(|p| (p, p)), false);
        let [raw, lo, ours, listening] = [0, 1, 2, 3].map(|i| r[i].received);
        println!(
            "end to end UDP (1 sender -> 1 receiver): raw {:.0} kpkt/s, liblo {:.0} kpkt/s, rosco {:.0} kpkt/s: rosco = {:.0}% of raw, {:.2}x liblo; rosco sending from a socket its I/O thread listens on {:.0} kpkt/s ({:.0}% of raw)",
            raw / 1e3,
            lo / 1e3,
            ours / 1e3,
            100.0 * ours / raw,
            ours / lo,
            listening / 1e3,
            100.0 * listening / raw
        );
        println!(
            "  dropped by the kernel (receive buffer full), per second: raw {:.0}, liblo {:.0}, rosco {:.0}, rosco listening {:.0}",
            r[0].dropped, r[1].dropped, r[2].dropped, r[3].dropped
        );
    }
    if wanted("send") {
        let [raw, lo, poll, threaded] = send_cost();
        println!(
            "UDP send, the sender alone: raw {raw:.0} ns, liblo {lo:.0} ns, rosco {poll:.0} ns ({:.0}% of raw's rate), rosco threaded {threaded:.0} ns ({:.0}%)",
            100.0 * raw / poll,
            100.0 * raw / threaded
        );
    }
    if wanted("tcp") {
        let (mut lo, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            lo.push(tcp_receive(Peer::Liblo));
            ours.push(tcp_receive(Peer::Rosco));
        }
        let (lo, ours) = (median(&mut lo), median(&mut ours));
        println!(
            "TCP receive (a raw sender keeps the connection full): liblo {:.0} kmsg/s, rosco {:.0} kmsg/s: rosco = {:.2}x liblo",
            lo / 1e3,
            ours / 1e3,
            ours / lo
        );
        let senders = [
            Peer::Liblo,
            Peer::RoscoNagle,
            Peer::LibloNoDelay,
            Peer::Rosco,
        ];
        let r: Vec<f64> = streams(&senders.map(|p| (p, Peer::Raw)), true)
            .iter()
            .map(|r| r.received)
            .collect();
        println!(
            "TCP send (each library's sender -> one raw receiver), Nagle on: liblo {:.0} kmsg/s, rosco ?nodelay=0 {:.0} kmsg/s: rosco = {:.2}x liblo; TCP_NODELAY: liblo {:.0} kmsg/s, rosco {:.0} kmsg/s: rosco = {:.2}x liblo",
            r[0] / 1e3,
            r[1] / 1e3,
            r[1] / r[0],
            r[2] / 1e3,
            r[3] / 1e3,
            r[3] / r[2],
        );
        let r: Vec<f64> = streams(&senders.map(|p| (p, p)), true)
            .iter()
            .map(|r| r.received)
            .collect();
        println!(
            "end to end TCP (library sender -> library receiver), Nagle on (liblo's default): liblo {:.0} kmsg/s, rosco ?nodelay=0 {:.0} kmsg/s: rosco = {:.2}x liblo",
            r[0] / 1e3,
            r[1] / 1e3,
            r[1] / r[0],
        );
        println!(
            "end to end TCP, TCP_NODELAY (rosco's default): liblo {:.0} kmsg/s, rosco {:.0} kmsg/s: rosco = {:.2}x liblo; rosco = {:.2}x liblo with Nagle",
            r[2] / 1e3,
            r[3] / 1e3,
            r[3] / r[2],
            r[3] / r[0],
        );
    }
    for busy in [true, false] {
        let style = if busy { "busy-poll" } else { "blocking" };
        if !wanted(&format!("round-trip-{style}")) {
            continue;
        }
        let [(cm, cp), (ocm, ocp), (um, up), (om, op)] = round_trip(busy);
        println!(
            "round trip, {style}: raw connected median {cm:.1} us p99 {cp:.1} us; rosco ?connect=1 median {ocm:.1} us p99 {ocp:.1} us: p99 ratio {:.2}",
            ocp / cp
        );
        println!(
            "round trip, {style}: raw unconnected (send_to) median {um:.1} us p99 {up:.1} us; rosco (default channel) median {om:.1} us p99 {op:.1} us: p99 ratio {:.2}",
            op / up
        );
    }
}
