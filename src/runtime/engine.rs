//! The I/O loop: waits on every channel's sockets, drains each readable socket until it
//! would block, deframes streams, validates packets and hands them on, accepts and
//! connects stream peers, reconnects clients, and drops stalled peers.
//!
//! Packets go to a `Receiver` right here (poll and threaded modes: callbacks run on this
//! thread), or into the shared queue for `poll` to dispatch (io-thread mode).

use super::channel::{Channel, ClientState, Kind};
use super::event::{Event, LogLevel, Stats};
use super::poller::{Interest, Poller};
use super::shared::{Incoming, Shared};
use crate::dispatch::MsgInfo;
use crate::handle::PeerId;
use crate::osc::framing::FrameError;
use crate::osc::DecodeOptions;
use crate::receive::Receiver;
use crate::time::TimeTag;
use crate::transport::stream::StreamConn;
use crate::transport::udp::{self, RECV_BUFFER};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Datagrams read from one socket per wake-up before the others get their turn.
const DRAIN_BUDGET: usize = 512;

/// Where validated packets go.
pub(crate) enum Sink {
    /// Dispatch on this thread.
    Direct(Receiver),
    /// Queue for `poll` on the user's thread.
    Queue,
}

/// What a poll slot belongs to.
enum Slot {
    Wake,
    Datagram(Arc<Channel>),
    Listener(Arc<Channel>),
    Peer(Arc<Channel>, PeerId, Arc<StreamConn>),
    Client(Arc<Channel>, Arc<StreamConn>),
    Connecting(Arc<Channel>),
}

pub(crate) struct Engine {
    shared: Arc<Shared>,
    sink: Sink,
    poller: Poller,
    slots: Vec<Slot>,
    buf: Vec<u8>,
    hook_buf: Vec<u8>,
    channels: Vec<Arc<Channel>>,
    decode: DecodeOptions,
}

impl Engine {
    pub(crate) fn new(shared: Arc<Shared>, sink: Sink) -> Engine {
        let decode = shared.options.receive.decode.clone();
        Engine {
            shared,
            sink,
            poller: Poller::default(),
            slots: Vec::new(),
            buf: vec![0; RECV_BUFFER],
            hook_buf: Vec::new(),
            channels: Vec::new(),
            decode,
        }
    }

    /// One round: wait for I/O, timers or a wake-up (at most `timeout`; `None`: until
    /// something happens), handle all of it. Returns the messages dispatched here.
    pub(crate) fn turn(&mut self, timeout: Option<Duration>) -> usize {
        let mut dispatched = self.deliver_queued();
        let now = Instant::now();
        let deadline = self.build(now);
        let mut wait = min_opt(timeout, deadline.map(|d| d.saturating_duration_since(now)));
        if dispatched > 0 {
            wait = Some(Duration::ZERO);
        }
        if let Some(next) = self.next_bundle() {
            let until = next.duration_since(TimeTag::now()).unwrap_or_default();
            wait = min_opt(wait, Some(until));
        }
        match self.poller.wait(wait) {
            Ok(_) => {}
            Err(e) => {
                self.shared
                    .log(LogLevel::Error, format_args!("poll failed: {e}"));
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for i in 0..self.slots.len() {
            let ready = self.poller.ready(i);
            if ready.read || ready.write || ready.closed {
                dispatched += self.handle(i, ready.write, ready.closed);
            }
        }
        self.timers(Instant::now());
        // Hold no channel between turns: a closed channel's socket closes now.
        self.slots.clear();
        dispatched + self.deliver_queued() + self.run_due()
    }

    /// Rebuilds the poll set from the open channels; returns the earliest timer.
    fn build(&mut self, now: Instant) -> Option<Instant> {
        self.poller.clear();
        self.slots.clear();
        self.poller.add(
            self.shared.waker.fd(),
            Interest {
                read: true,
                write: false,
            },
        );
        self.slots.push(Slot::Wake);
        let read = Interest {
            read: true,
            write: false,
        };
        let mut deadline: Option<Instant> = None;
        let stall = self.shared.options.stall_timeout;
        self.shared.channels_into(&mut self.channels);
        for ch in &self.channels {
            match &ch.kind {
                Kind::Udp(ep) => {
                    self.poller
                        .add(std::os::unix::io::AsRawFd::as_raw_fd(&ep.socket), read);
                    self.slots.push(Slot::Datagram(ch.clone()));
                }
                Kind::UnixDgram { socket, .. } => {
                    self.poller
                        .add(std::os::unix::io::AsRawFd::as_raw_fd(socket), read);
                    self.slots.push(Slot::Datagram(ch.clone()));
                }
                Kind::Listener {
                    listener, peers, ..
                } => {
                    self.poller.add(listener.fd(), read);
                    self.slots.push(Slot::Listener(ch.clone()));
                    for (h, conn) in peers.lock().iter() {
                        let interest = Interest {
                            read: true,
                            write: conn.wants_write(),
                        };
                        self.poller.add(conn.fd(), interest);
                        self.slots
                            .push(Slot::Peer(ch.clone(), PeerId(h), conn.clone()));
                        deadline = min_instant(deadline, stall_deadline(conn, stall));
                    }
                }
                Kind::Client(client) => match &*client.state.lock() {
                    ClientState::Connected(conn) => {
                        let interest = Interest {
                            read: true,
                            write: conn.wants_write(),
                        };
                        self.poller.add(conn.fd(), interest);
                        self.slots.push(Slot::Client(ch.clone(), conn.clone()));
                        deadline = min_instant(deadline, stall_deadline(conn, stall));
                    }
                    ClientState::Connecting { connecting, .. } => {
                        self.poller.add(
                            connecting.fd(),
                            Interest {
                                read: false,
                                write: true,
                            },
                        );
                        self.slots.push(Slot::Connecting(ch.clone()));
                    }
                    ClientState::Waiting { retry_at, .. } => {
                        deadline = min_instant(deadline, Some(*retry_at))
                    }
                    ClientState::GaveUp => {}
                },
                Kind::Local => {}
            }
        }
        deadline.map(|d| d.max(now))
    }

    fn handle(&mut self, i: usize, writable: bool, closed: bool) -> usize {
        match &self.slots[i] {
            Slot::Wake => {
                self.shared.waker.drain();
                0
            }
            Slot::Datagram(ch) => {
                let ch = ch.clone();
                self.read_datagrams(&ch)
            }
            Slot::Listener(ch) => {
                let ch = ch.clone();
                self.accept(&ch);
                0
            }
            Slot::Peer(ch, peer, conn) => {
                let (ch, peer, conn) = (ch.clone(), *peer, conn.clone());
                self.stream_ready(&ch, Some(peer), &conn, writable, closed)
            }
            Slot::Client(ch, conn) => {
                let (ch, conn) = (ch.clone(), conn.clone());
                self.stream_ready(&ch, None, &conn, writable, closed)
            }
            Slot::Connecting(ch) => {
                let ch = ch.clone();
                self.finish_connect(&ch);
                0
            }
        }
    }

    fn read_datagrams(&mut self, ch: &Arc<Channel>) -> usize {
        let mut dispatched = 0;
        for _ in 0..DRAIN_BUDGET {
            let (n, source) = match &ch.kind {
                Kind::Udp(ep) => match ep.socket.recv_from(&mut self.buf) {
                    Ok((n, from)) => (n, Some(udp::canonical(from))),
                    Err(e) => return self.read_error(ch, e, dispatched),
                },
                Kind::UnixDgram { socket, .. } => match socket.recv(&mut self.buf) {
                    Ok(n) => (n, None),
                    Err(e) => return self.read_error(ch, e, dispatched),
                },
                _ => return dispatched,
            };
            if n > ch.limits.max_packet {
                let why = format!(
                    "datagram of {n} bytes or more, over the limit of {}",
                    ch.limits.max_packet
                );
                self.malformed(ch, source, why, None);
                continue;
            }
            let packet = std::mem::take(&mut self.buf);
            dispatched += self.packet(ch, source, None, &packet[..n]).unwrap_or(0);
            self.buf = packet;
        }
        dispatched
    }

    fn read_error(&self, ch: &Channel, e: io::Error, dispatched: usize) -> usize {
        if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted {
            // ICMP port unreachable after a send shows up here on Linux: not fatal.
            self.shared.log(
                LogLevel::Debug,
                format_args!("channel '{}': receive: {e}", ch.name),
            );
        }
        dispatched
    }

    fn accept(&mut self, ch: &Arc<Channel>) {
        let Kind::Listener {
            listener,
            peers,
            read,
        } = &ch.kind
        else {
            return;
        };
        loop {
            let (stream, peer) = match listener.accept() {
                Ok(Some(accepted)) => accepted,
                Ok(None) => return,
                Err(e) => {
                    self.shared.log(
                        LogLevel::Warn,
                        format_args!("channel '{}': accept: {e}", ch.name),
                    );
                    return;
                }
            };
            if peers.lock().len() >= ch.limits.max_peers {
                self.shared.emit(Event::Disconnected {
                    channel: ch.id,
                    peer,
                    reason: "too many peers".into(),
                });
                continue;
            }
            let peer = peer.map(udp::canonical);
            match StreamConn::new(stream, peer, None, *read, ch.limits.max_frame) {
                Ok(conn) => {
                    peers.lock().insert(Arc::new(conn));
                    self.shared.emit(Event::Connected {
                        channel: ch.id,
                        peer,
                    });
                }
                Err(e) => self
                    .shared
                    .log(LogLevel::Warn, format_args!("channel '{}': {e}", ch.name)),
            }
        }
    }

    fn stream_ready(
        &mut self,
        ch: &Arc<Channel>,
        peer: Option<PeerId>,
        conn: &Arc<StreamConn>,
        writable: bool,
        closed: bool,
    ) -> usize {
        if writable {
            if let Err(e) = conn.flush() {
                self.drop_stream(ch, peer, conn, &format!("write failed: {e}"));
                return 0;
            }
        }
        let mut dispatched = 0;
        let mut reader = conn.reader.lock();
        let mut eof = false;
        loop {
            match reader.deframer.read_from(&mut conn.stream(), RECV_BUFFER) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => reader.last_progress = Instant::now(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    drop(reader);
                    self.drop_stream(ch, peer, conn, &format!("read failed: {e}"));
                    return dispatched;
                }
            }
            if let Some(f) = reader.deframer.framing() {
                conn.learn_framing(f);
            }
            let source = conn.peer;
            while let Some(frame) = reader.deframer.next_frame() {
                match frame {
                    Ok(frame) => match self.packet(ch, source, peer, frame) {
                        Ok(n) => dispatched += n,
                        Err(why) => {
                            drop(reader);
                            self.drop_stream(ch, peer, conn, &why);
                            return dispatched;
                        }
                    },
                    Err(e) if e.is_fatal() => {
                        let why = e.to_string();
                        drop(reader);
                        self.malformed(ch, source, why.clone(), None);
                        self.drop_stream(ch, peer, conn, &why);
                        return dispatched;
                    }
                    Err(e) => self.frame_error(ch, source, e),
                }
            }
        }
        drop(reader);
        if eof || (closed && !writable) {
            self.drop_stream(ch, peer, conn, "closed by peer");
        }
        dispatched
    }

    fn frame_error(&self, ch: &Channel, source: Option<SocketAddr>, e: FrameError) {
        self.malformed(ch, source, e.to_string(), None);
    }

    /// Ends a stream connection: a listener forgets the peer, a client reconnects.
    fn drop_stream(
        &mut self,
        ch: &Arc<Channel>,
        peer: Option<PeerId>,
        conn: &Arc<StreamConn>,
        reason: &str,
    ) {
        conn.close();
        match (&ch.kind, peer) {
            (Kind::Listener { peers, .. }, Some(p)) => {
                peers.lock().remove(p.0);
            }
            (Kind::Client(client), _) => {
                let mut state = client.state.lock();
                if matches!(&*state, ClientState::Connected(c) if Arc::ptr_eq(c, conn)) {
                    *state = client.after_failure(0, Vec::new());
                    self.announce_retry(ch, &state);
                }
            }
            _ => {}
        }
        self.shared.emit(Event::Disconnected {
            channel: ch.id,
            peer: conn.peer,
            reason: reason.to_string(),
        });
    }

    fn announce_retry(&self, ch: &Channel, state: &ClientState) {
        match state {
            ClientState::Waiting {
                retry_at, attempt, ..
            } => self.shared.emit(Event::Reconnecting {
                channel: ch.id,
                attempt: *attempt,
                delay: retry_at.saturating_duration_since(Instant::now()),
            }),
            ClientState::GaveUp => self.shared.emit(Event::GaveUp { channel: ch.id }),
            _ => {}
        }
    }

    fn finish_connect(&mut self, ch: &Arc<Channel>) {
        let Kind::Client(client) = &ch.kind else {
            return;
        };
        let mut state = client.state.lock();
        let ClientState::Connecting { .. } = &*state else {
            return;
        };
        let ClientState::Connecting {
            connecting,
            attempt,
            backlog,
        } = std::mem::replace(&mut *state, ClientState::GaveUp)
        else {
            unreachable!("checked above")
        };
        let addr = connecting.addr;
        let connected = connecting.finish().and_then(|tcp| {
            let framing = client.framing;
            StreamConn::new(
                crate::transport::stream::Stream::Tcp(tcp),
                Some(addr),
                Some(framing),
                crate::osc::framing::DeframeMode::Fixed(framing),
                ch.limits.max_frame,
            )
        });
        match connected {
            Ok(conn) => {
                let conn = Arc::new(conn);
                let _ = conn.send_framed(&backlog);
                *state = ClientState::Connected(conn);
                drop(state);
                self.shared.emit(Event::Connected {
                    channel: ch.id,
                    peer: Some(addr),
                });
            }
            Err(e) => {
                *state = client.after_failure(attempt, backlog);
                self.shared.log(
                    LogLevel::Debug,
                    format_args!("channel '{}': connect to {addr}: {e}", ch.name),
                );
                self.announce_retry(ch, &state);
            }
        }
    }

    /// Reconnects clients whose wait is over and drops peers stalled mid-frame.
    fn timers(&mut self, now: Instant) {
        let stall = self.shared.options.stall_timeout;
        let channels = std::mem::take(&mut self.channels);
        for ch in &channels {
            match &ch.kind {
                Kind::Client(client) => {
                    let mut state = client.state.lock();
                    let due = matches!(&*state, ClientState::Waiting { retry_at, .. } if *retry_at <= now);
                    if due {
                        let ClientState::Waiting {
                            attempt, backlog, ..
                        } = std::mem::replace(&mut *state, ClientState::GaveUp)
                        else {
                            unreachable!("checked above")
                        };
                        *state = match client.attempt(attempt, backlog) {
                            Ok(next) => next,
                            Err((_, next)) => {
                                self.announce_retry(ch, &next);
                                next
                            }
                        };
                        if let ClientState::Connected(_) = &*state {
                            self.shared.emit(Event::Connected {
                                channel: ch.id,
                                peer: None,
                            });
                        }
                    }
                    let stalled = match &*state {
                        ClientState::Connected(conn) => stall_deadline(conn, stall)
                            .is_some_and(|d| d <= now)
                            .then(|| conn.clone()),
                        _ => None,
                    };
                    drop(state);
                    if let Some(conn) = stalled {
                        self.drop_stream(ch, None, &conn, "incomplete frame for too long");
                    }
                }
                Kind::Listener { peers, .. } => {
                    let stalled: Vec<(PeerId, Arc<StreamConn>)> = peers
                        .lock()
                        .iter()
                        .filter(|(_, c)| stall_deadline(c, stall).is_some_and(|d| d <= now))
                        .map(|(h, c)| (PeerId(h), c.clone()))
                        .collect();
                    for (peer, conn) in stalled {
                        self.drop_stream(ch, Some(peer), &conn, "incomplete frame for too long");
                    }
                }
                _ => {}
            }
        }
        self.channels = channels;
        // Do not keep closed channels' sockets open until the next turn.
        self.channels.clear();
    }

    /// One received packet: counters and the incoming hook, then [`deliver`](Self::deliver).
    /// Returns the messages dispatched, or why a stream peer must be dropped.
    fn packet(
        &mut self,
        ch: &Arc<Channel>,
        source: Option<SocketAddr>,
        peer: Option<PeerId>,
        raw: &[u8],
    ) -> Result<usize, String> {
        Stats::add(&ch.stats.packets_in, 1);
        Stats::add(&ch.stats.bytes_in, raw.len() as u64);
        let Some(hook) = ch.hooks.read().incoming.clone() else {
            return self.deliver(ch, source, peer, raw);
        };
        let mut hooked = std::mem::take(&mut self.hook_buf);
        hooked.clear();
        let result = match hook(raw, &mut hooked) {
            true => self.deliver(ch, source, peer, &hooked),
            false => Ok(0),
        };
        self.hook_buf = hooked;
        result
    }

    /// Validates and dispatches (or queues) a packet.
    fn deliver(
        &mut self,
        ch: &Arc<Channel>,
        source: Option<SocketAddr>,
        peer: Option<PeerId>,
        packet: &[u8],
    ) -> Result<usize, String> {
        let now = TimeTag::now();
        let info = MsgInfo::new(now)
            .with_source(source)
            .with_channel(Some(ch.id))
            .with_peer(peer);
        let is_stream = peer.is_some() || matches!(ch.kind, Kind::Client(_));
        let checked = match &mut self.sink {
            Sink::Direct(receiver) => {
                let late_before = receiver.stats().late;
                let result = receiver.receive(packet, info, now);
                if receiver.stats().late > late_before {
                    Stats::add(&ch.stats.late, 1);
                    self.shared.emit(Event::Late { channel: ch.id });
                }
                result
            }
            Sink::Queue => crate::osc::decode_with(packet, &self.decode).map(|_| {
                let item = Incoming::new(&self.shared, ch.id, info, packet);
                if self.shared.push_incoming(item).is_err() {
                    let total = Stats::add(&ch.stats.dropped, 1);
                    self.shared.emit(Event::Dropped {
                        channel: ch.id,
                        total,
                    });
                }
                0
            }),
        };
        match checked {
            Ok(n) => Ok(n),
            Err(e) => {
                self.malformed(ch, source, e.to_string(), Some(e));
                // A stream peer sending garbage is dropped; a bad datagram is only counted.
                match is_stream {
                    true => Err(format!("malformed packet: {e}")),
                    false => Ok(0),
                }
            }
        }
    }

    fn malformed(
        &self,
        ch: &Channel,
        source: Option<SocketAddr>,
        reason: String,
        error: Option<crate::osc::DecodeError>,
    ) {
        Stats::add(&ch.stats.malformed, 1);
        self.shared.emit(Event::Malformed {
            channel: ch.id,
            source,
            reason,
            error,
        });
    }

    /// In poll and threaded modes: packets sent to `_local`.
    fn deliver_queued(&mut self) -> usize {
        let Sink::Direct(receiver) = &mut self.sink else {
            return 0;
        };
        let mut dispatched = 0;
        while let Some(item) = self.shared.pop_incoming() {
            dispatched += receiver
                .receive(&item.bytes, item.info, TimeTag::now())
                .unwrap_or(0);
            self.shared.recycle(item);
        }
        dispatched
    }

    fn run_due(&mut self) -> usize {
        match &mut self.sink {
            Sink::Direct(receiver) => receiver.run_due(TimeTag::now()),
            Sink::Queue => 0,
        }
    }

    fn next_bundle(&self) -> Option<TimeTag> {
        match &self.sink {
            Sink::Direct(receiver) => receiver.next_deadline(),
            Sink::Queue => None,
        }
    }
}

fn stall_deadline(conn: &StreamConn, stall: Duration) -> Option<Instant> {
    let reader = conn.reader.lock();
    (reader.deframer.pending() > 0).then(|| reader.last_progress + stall)
}

fn min_opt(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn min_instant(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
