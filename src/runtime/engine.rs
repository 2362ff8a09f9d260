//! The I/O loop: waits on every channel's sockets, drains each readable socket until it
//! would block, deframes streams, validates packets and hands them on, accepts and
//! connects stream peers, reconnects clients, and drops stalled peers.
//!
//! Packets go to a `Receiver` right here (poll and threaded modes: callbacks run on this
//! thread), or into the shared queue for `poll` to dispatch (io-thread mode).

use super::channel::{Channel, Client, ClientState, HookVerdict, Kind};
use super::event::{Event, LogLevel, Stats};
use super::o2::{self, host_turn, O2Role};
use super::poller::{Interest, Poller};
use super::shared::{Incoming, Shared};
use crate::dispatch::{MsgInfo, O2Stamp};
use crate::handle::{ChannelId, PeerId, Slab};
use crate::o2lite::client::{ClientEvent, ClientSession, Output, Received};
use crate::o2lite::host::{HostOutput, HostSession};
use crate::osc::framing::FrameError;
use crate::osc::DecodeOptions;
use crate::receive::Receiver;
use crate::time::TimeTag;
use crate::transport::batch::{RecvBatch, BATCH};
use crate::transport::sender_streams::{Dropped, Loss, SenderStreams};
use crate::transport::stream::{unfinished_limit, Finished, Reader, StreamConn};
use crate::transport::udp::{self, RECV_BUFFER};
use parking_lot::Mutex;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Datagrams read from one socket per wake-up before the others get their turn.
const DRAIN_BUDGET: usize = 512;
/// Reads from one stream per wake-up (of up to `RECV_BUFFER` bytes each) before the others
/// get their turn: a peer that keeps its socket full must not starve other channels and
/// timers.
const STREAM_READ_BUDGET: usize = 16;
/// How often a discovering O2lite client looks for a host found meanwhile.
const DISCOVERY_POLL: Duration = Duration::from_millis(100);
/// How long a listener whose `accept` failed for want of a resource (descriptors, memory)
/// is left out of the poll set. Its waiting peer keeps it readable, so retrying at once
/// would spin; the peer stays in the kernel's backlog meanwhile.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// How long a connection whose peer finished sending is kept for what is owed to it.
const FINISHED_LINGER: Duration = Duration::from_secs(10);

/// How often such a connection looks whether callbacks on another thread are done with
/// its messages.
const FINISHED_CHECK: Duration = Duration::from_millis(5);

/// Where validated packets go.
pub(crate) enum Sink {
    /// Dispatch on this thread.
    Direct(Box<Receiver>),
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
    /// An O2lite channel's UDP socket.
    O2Udp(Arc<Channel>),
}

pub(crate) struct Engine {
    shared: Arc<Shared>,
    sink: Sink,
    poller: Poller,
    slots: Vec<Slot>,
    buf: Vec<u8>,
    hook_buf: Vec<u8>,
    /// Room for an O2 address rewritten for the method table.
    o2_address: Vec<u8>,
    /// Datagrams received by one `recvmmsg`.
    batch: RecvBatch,
    channels: Vec<Arc<Channel>>,
    /// The channel table's version the poll set was built for and is kept for (see
    /// `turn`); `None`: built for one round only.
    kept_for: Option<u64>,
    /// Listeners not polled until the time given (see `ACCEPT_PAUSE`).
    accept_paused: Vec<(ChannelId, Instant)>,
    /// Messages O2 host sessions dispatched to their own services outside `handle` (held
    /// ones come due, the host application's own sends, a client leaving), for `turn` to
    /// count.
    o2_dispatched: usize,
    /// An O2lite host's queued output is being carried out (`o2_host_pending`).
    draining_host: bool,
    decode: DecodeOptions,
    decode_o2: DecodeOptions,
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
            batch: RecvBatch::new(),
            hook_buf: Vec::new(),
            o2_address: Vec::new(),
            channels: Vec::new(),
            kept_for: None,
            accept_paused: Vec::new(),
            o2_dispatched: 0,
            draining_host: false,
            decode_o2: decode.with_o2_types(),
            decode,
        }
    }

    /// One round: wait for I/O, timers or a wake-up (at most `timeout`; `None`: until
    /// something happens), handle all of it. Returns the messages dispatched here.
    pub(crate) fn turn(&mut self, timeout: Option<Duration>) -> usize {
        self.restore_buffers();
        // A callback that panicked while a host's output was carried out left it set.
        self.draining_host = false;
        let mut dispatched = self.deliver_queued();
        let mut now = Now::default();
        let version = self.shared.table_version();
        let deadline = match self.kept_for == Some(version) {
            true => None,
            false => {
                let deadline = self.build(&mut now);
                // Datagram sockets alone, with no timers: the same poll set serves every
                // round until a channel opens or closes (a busy-polling caller saves
                // rebuilding it on each call). Not framed ones, whose deadline changes
                // with what arrives.
                let keep = deadline.is_none()
                    && self.slots.iter().all(|s| {
                        matches!(s, Slot::Wake | Slot::Datagram(_)) && framed_udp(s).is_none()
                    });
                self.kept_for = keep.then_some(version);
                deadline
            }
        };
        let mut wait = min_opt(
            timeout,
            deadline.map(|d| d.saturating_duration_since(now.get())),
        );
        dispatched += std::mem::take(&mut self.o2_dispatched);
        if dispatched > 0 {
            wait = Some(Duration::ZERO);
        }
        if let Some(next) = self.next_bundle() {
            let until = next.duration_since(TimeTag::now()).unwrap_or_default();
            wait = min_opt(wait, Some(until));
        }
        let datagrams_only = || {
            self.slots
                .iter()
                .all(|s| matches!(s, Slot::Wake | Slot::Datagram(_) | Slot::O2Udp(_)))
        };
        if wait == Some(Duration::ZERO) && datagrams_only() {
            // Not waiting (a caller busy-polling, or more to do at once): read the sockets
            // directly. A read that finds nothing costs what asking `ppoll` would, and one
            // that finds something saves the `ppoll` call. The wake-up pipe is drained by
            // the next turn that waits.
            for i in 0..self.slots.len() {
                if !matches!(self.slots[i], Slot::Wake) {
                    dispatched += self.handle(i, false, false, false);
                }
            }
        } else {
            match self.poller.wait(wait) {
                Ok(_) => {}
                Err(e) => {
                    self.shared
                        .log(LogLevel::Error, format_args!("poll failed: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            // Framed sockets not readable when the wait ended were empty then: noted first,
            // at that time, before other slots' callbacks take theirs.
            let mut waited = Now::default();
            for (i, slot) in self.slots.iter().enumerate() {
                if let (Some(framed), false) = (framed_udp(slot), self.poller.ready(i).read) {
                    framed.receive.lock().drained(waited.get());
                }
            }
            for i in 0..self.slots.len() {
                let ready = self.poller.ready(i);
                if ready.read || ready.write || ready.closed {
                    dispatched += self.handle(i, ready.write, ready.closed, true);
                }
            }
        }
        self.timers(&mut Now::default());
        self.shared.report_drops();
        // Hold no channel closed meanwhile: its socket closes now.
        if self.kept_for != Some(self.shared.table_version()) {
            self.forget_poll_set();
        }
        let o2 = std::mem::take(&mut self.o2_dispatched);
        let dispatched = dispatched + o2 + self.deliver_queued() + self.run_due();
        // Nor the method table: a method removed meanwhile is freed now.
        if let Sink::Direct(receiver) = &mut self.sink {
            receiver.release();
        }
        dispatched
    }

    /// The receive buffers are taken out of `self` while a packet is handled (see
    /// `read_datagrams`); a callback that panicked meanwhile left empty ones in their
    /// place: they are made anew, or every later read would fail (or lose its datagram).
    fn restore_buffers(&mut self) {
        if self.buf.is_empty() {
            self.buf = vec![0; RECV_BUFFER];
        }
        if !self.batch.is_allocated() {
            self.batch = RecvBatch::new();
        }
    }

    /// Lets go of the poll set and the channels in it; the next round builds it again.
    pub(crate) fn forget_poll_set(&mut self) {
        self.slots.clear();
        self.channels.clear();
        self.kept_for = None;
    }

    /// Rebuilds the poll set from the open channels; returns the earliest timer.
    fn build(&mut self, now: &mut Now) -> Option<Instant> {
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
        if !self.accept_paused.is_empty() {
            let now = now.get();
            self.accept_paused.retain(|&(_, until)| until > now);
        }
        let stall = self.shared.options.stall_timeout;
        self.shared.channels_into(&mut self.channels);
        let channels = std::mem::take(&mut self.channels);
        for ch in &channels {
            if ch.url.is_listener() && !ch.announced.swap(true, Ordering::Relaxed) {
                if let Some(local) = ch.local_addr() {
                    let bound = Event::Bound {
                        channel: ch.id,
                        local,
                    };
                    self.report(ch, bound);
                }
            }
            // Closed by an earlier channel's `Bound` callback.
            if ch.hooks.is_closed() {
                continue;
            }
            if let Some(role) = &ch.o2 {
                self.poller
                    .add(std::os::unix::io::AsRawFd::as_raw_fd(role.udp()), read);
                self.slots.push(Slot::O2Udp(ch.clone()));
                deadline = min_instant(deadline, self.o2_tick(ch, role));
            }
            match &ch.kind {
                Kind::Udp(ep) => {
                    self.poller
                        .add(std::os::unix::io::AsRawFd::as_raw_fd(&ep.socket), read);
                    self.slots.push(Slot::Datagram(ch.clone()));
                    if let Some(framed) = &ep.framed {
                        // A wait that ends then finds the socket empty or not: see
                        // `SenderStreams::deadline`.
                        deadline = min_instant(deadline, framed.receive.lock().deadline());
                    }
                }
                Kind::UnixDgram { socket, .. } => {
                    self.poller
                        .add(std::os::unix::io::AsRawFd::as_raw_fd(socket), read);
                    self.slots.push(Slot::Datagram(ch.clone()));
                }
                Kind::Listener {
                    listener, peers, ..
                } => {
                    match self.accept_paused.iter().find(|(id, _)| *id == ch.id) {
                        Some(&(_, until)) => deadline = min_instant(deadline, Some(until)),
                        None => {
                            self.poller.add(listener.fd(), read);
                            self.slots.push(Slot::Listener(ch.clone()));
                        }
                    }
                    for (h, conn) in peers.lock().iter() {
                        deadline = min_instant(deadline, self.watch(conn, stall, now.get()));
                        self.slots
                            .push(Slot::Peer(ch.clone(), PeerId(h), conn.clone()));
                    }
                }
                // A first attempt to report: the next turn does not wait.
                Kind::Client(client) if client.unreported.load(Ordering::Relaxed) => {
                    deadline = Some(now.get());
                }
                Kind::Client(client) => match &*client.state.lock() {
                    ClientState::Connected(conn) => {
                        deadline = min_instant(deadline, self.watch(conn, stall, now.get()));
                        self.slots.push(Slot::Client(ch.clone(), conn.clone()));
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
        self.channels = channels;
        deadline.map(|d| d.max(now.get()))
    }

    /// Adds a stream connection to the poll set; returns when its timer is due: the end of
    /// a stall, or for one whose peer finished sending, the next look at what is owed.
    fn watch(&mut self, conn: &StreamConn, stall: Duration, now: Instant) -> Option<Instant> {
        let reader = conn.reader.lock();
        let stuck = conn.output_stuck_since();
        let interest = Interest {
            read: reader.finished.is_none(),
            write: stuck.is_some(),
        };
        self.poller.add(conn.fd(), interest);
        match &reader.finished {
            // Callbacks on another thread do not wake this loop when they are done.
            Some(f) if f.mark.is_some() => Some(f.until.min(now + FINISHED_CHECK)),
            Some(f) => Some(f.until),
            None => min_instant(
                stall_deadline(&reader, stall),
                output_deadline(stuck, stall),
            ),
        }
    }

    /// Handles slot `i`, ready to write or closed as told; `drain`: see
    /// [`read_datagrams`](Self::read_datagrams).
    fn handle(&mut self, i: usize, writable: bool, closed: bool, drain: bool) -> usize {
        // A channel closed earlier in the round (by a callback) is not read: its socket
        // is a placeholder now, and whatever came would concern a stale handle.
        if self.slots[i]
            .channel()
            .is_some_and(|ch| ch.hooks.is_closed())
        {
            return 0;
        }
        match &self.slots[i] {
            Slot::Wake => {
                self.shared.waker.drain();
                0
            }
            Slot::Datagram(ch) => {
                let ch = ch.clone();
                self.read_datagrams(&ch, drain)
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
            Slot::O2Udp(ch) => {
                let ch = ch.clone();
                self.read_o2_datagrams(&ch)
            }
            Slot::Connecting(ch) => {
                let ch = ch.clone();
                self.finish_connect(&ch);
                0
            }
        }
    }

    /// Reads and handles what waits on a datagram socket. `drain`: read until the socket
    /// would block; else (a caller busy-polling, who reads again soon) a lone datagram is
    /// handled alone.
    fn read_datagrams(&mut self, ch: &Arc<Channel>, drain: bool) -> usize {
        let mut dispatched = 0;
        match &ch.kind {
            Kind::Udp(ep) => {
                // Taken out of `self` while `datagram` borrows it; put back below.
                let mut batch = std::mem::take(&mut self.batch);
                // After a read that found one datagram or none, the next is read alone:
                // `recvmmsg` looks for a second before it returns, which delays the first
                // by a failed receive (0.2-0.4 µs here). Streams are read in batches.
                // When a read found the socket empty (framed channels only: see
                // `SenderStreams::drained`), read before the callbacks of what it returned.
                let mut emptied = None;
                let mut more = true;
                if ep.lone.load(Ordering::Relaxed) {
                    match batch.recv_one(&ep.socket) {
                        Ok(n) => {
                            dispatched += self.datagrams(ch, &batch, n);
                            more = drain;
                            // Busy-polling: the next read is a batch, in case a stream began.
                            ep.lone.store(drain, Ordering::Relaxed);
                        }
                        Err(e) => {
                            emptied = empty_at(ep, Some(&e));
                            dispatched = self.read_error(ch, e, dispatched);
                            more = false;
                        }
                    }
                }
                if more {
                    let mut read = 0;
                    for _ in 0..DRAIN_BUDGET / BATCH {
                        let n = match batch.recv(&ep.socket) {
                            Ok(n) => n,
                            Err(e) => {
                                emptied = empty_at(ep, Some(&e));
                                dispatched = self.read_error(ch, e, dispatched);
                                break;
                            }
                        };
                        read += n;
                        // A short batch: the queue was empty.
                        let short = n < BATCH;
                        if short {
                            emptied = empty_at(ep, None);
                        }
                        dispatched += self.datagrams(ch, &batch, n);
                        if short {
                            break;
                        }
                    }
                    ep.lone.store(read <= 1, Ordering::Relaxed);
                }
                if let (Some(at), Some(framed)) = (emptied, &ep.framed) {
                    framed.receive.lock().drained(at);
                }
                self.batch = batch;
            }
            Kind::UnixDgram { socket, .. } => {
                for _ in 0..DRAIN_BUDGET {
                    let n = match socket.recv(&mut self.buf) {
                        Ok(n) => n,
                        Err(e) => return self.read_error(ch, e, dispatched),
                    };
                    let packet = std::mem::take(&mut self.buf);
                    dispatched += self.datagram(ch, None, &packet[..n], TimeTag::now());
                    self.buf = packet;
                }
            }
            _ => {}
        }
        dispatched
    }

    /// The `n` datagrams of the last read into `batch`.
    fn datagrams(&mut self, ch: &Arc<Channel>, batch: &RecvBatch, n: usize) -> usize {
        // One arrival time for the batch: the clock read cost a noticeable share of the
        // per-datagram time, and the datagrams were read together.
        let now = TimeTag::now();
        (0..n)
            .map(|i| {
                let (data, from) = batch.get(i);
                self.datagram(ch, from.map(udp::canonical), data, now)
            })
            .sum()
    }

    /// One datagram: refused over the channel's size limit, else handled as a packet.
    fn datagram(
        &mut self,
        ch: &Arc<Channel>,
        source: Option<SocketAddr>,
        data: &[u8],
        now: TimeTag,
    ) -> usize {
        if data.len() > ch.limits.max_packet {
            // Received all the same (`packet` counts the others).
            ch.stats.count_received(data.len());
            let why = format!(
                "datagram of {} bytes or more, over the limit of {}",
                data.len(),
                ch.limits.max_packet
            );
            self.malformed(ch, source, why, None);
            return 0;
        }
        if let (
            Kind::Udp(udp::UdpEndpoint {
                framed: Some(f), ..
            }),
            Some(from),
        ) = (&ch.kind, source)
        {
            return self.framed_datagram(ch, &f.receive, from, data, now);
        }
        self.packet(ch, source, None, data, now).unwrap_or(0)
    }

    /// A datagram on a channel with `?framing=`: the next bytes of its sender's stream,
    /// handled as the packets they complete.
    fn framed_datagram(
        &mut self,
        ch: &Arc<Channel>,
        streams: &Mutex<SenderStreams>,
        from: SocketAddr,
        data: &[u8],
        now: TimeTag,
    ) -> usize {
        let mut streams = streams.lock();
        let (deframer, dropped) = streams.push(from, data, Instant::now());
        if let Some(d) = dropped {
            self.part_lost(ch, d);
        }
        let mut dispatched = 0;
        while let Some(frame) = deframer.next_frame() {
            match frame {
                Ok(frame) => {
                    dispatched += self.packet(ch, Some(from), None, frame, now).unwrap_or(0)
                }
                Err(e) if e.is_fatal() => {
                    self.frame_error(ch, Some(from), e);
                    streams.forget(from);
                    break;
                }
                Err(e) => self.frame_error(ch, Some(from), e),
            }
        }
        for d in streams.settle(from) {
            self.part_lost(ch, d);
        }
        dispatched
    }

    /// Reports part of a packet a framed UDP channel's sender lost.
    fn part_lost(&self, ch: &Channel, d: Dropped) {
        let why = match d.why {
            Loss::Stalled => format!(
                "its sender was silent for {:?}",
                self.shared.options.stall_timeout
            ),
            Loss::Room => format!("more than {} senders mid-packet", ch.limits.max_peers),
            Loss::TooMuch => format!(
                "more than {} bytes of unfinished packets across senders",
                unfinished_limit(ch.limits.max_frame)
            ),
        };
        let why = format!("{} bytes of an unfinished packet dropped: {why}", d.bytes);
        self.malformed(ch, Some(d.sender), why, None);
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
            budget,
            send,
            read,
        } = &ch.kind
        else {
            return;
        };
        // Until the socket is empty, or a callback (the filter's, `Connected`'s) closed the
        // channel: a connection accepted then is let go unreported.
        while !ch.hooks.is_closed() {
            let (stream, peer) = match listener.accept() {
                Ok(Some(accepted)) => accepted,
                Ok(None) => return,
                // The peer gave up before it was accepted: on to the next one.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.shared.log(
                        LogLevel::Warn,
                        format_args!(
                            "channel '{}': accept: {e}; trying again in {} ms",
                            ch.name,
                            ACCEPT_PAUSE.as_millis()
                        ),
                    );
                    self.accept_paused
                        .push((ch.id, Instant::now() + ACCEPT_PAUSE));
                    return;
                }
            };
            let peer = peer.map(udp::canonical);
            // Full: a peer silent for the stall timeout makes room, or connections that
            // never send would keep everyone else out for good. It goes only once the
            // newcomer is let in: one the filter refuses must not cost anyone a place.
            let full = peers.lock().len() >= ch.limits.max_peers;
            let make_room = match full {
                false => None,
                true => match self.idlest_peer(ch, peers) {
                    Some(idle) => Some(idle),
                    None => {
                        let refused = Event::Disconnected {
                            channel: ch.id,
                            peer,
                            reason: "too many peers".into(),
                        };
                        self.report(ch, refused);
                        continue;
                    }
                },
            };
            // A filter that panics refuses (caught here: in poll mode it would leave `poll`,
            // elsewhere end the I/O loop's turn, the connection closed without a word).
            let filter = || self.shared.accept.call(|accept| accept(ch.id, peer));
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(filter));
            if verdict.is_err() {
                self.shared
                    .log_panic("the accept filter panicked: connection refused");
            }
            if !matches!(verdict, Ok(None | Some(true))) {
                let refused = Event::Disconnected {
                    channel: ch.id,
                    peer,
                    reason: "refused by the accept filter".into(),
                };
                self.report(ch, refused);
                continue;
            }
            if ch.hooks.is_closed() {
                return;
            }
            match StreamConn::new(
                stream,
                peer,
                *send,
                *read,
                ch.limits.max_frame,
                ch.nodelay(),
                budget.clone(),
            ) {
                Ok(conn) => {
                    if let Some((id, idle)) = make_room {
                        self.drop_stream(ch, Some(id), &idle, "idle, to make room");
                    }
                    let handle = peers.lock().insert(Arc::new(conn));
                    if let Some(role @ O2Role::Host { session, .. }) = &ch.o2 {
                        session.lock().accepted(handle.to_bits(), role.now());
                    }
                    self.report(
                        ch,
                        Event::Connected {
                            channel: ch.id,
                            peer,
                        },
                    );
                }
                Err(e) => self
                    .shared
                    .log(LogLevel::Warn, format_args!("channel '{}': {e}", ch.name)),
            }
        }
    }

    /// The peer of a full listener that has been silent longest, if for at least the stall
    /// timeout (between frames: a peer in the middle of one is the stall timeout's). Not
    /// an O2lite host's client: it may talk by UDP only, and its session is its place.
    fn idlest_peer(
        &self,
        ch: &Channel,
        peers: &Mutex<Slab<Arc<StreamConn>>>,
    ) -> Option<(PeerId, Arc<StreamConn>)> {
        let quiet_since = Instant::now().checked_sub(self.shared.options.stall_timeout)?;
        // The session first, as everywhere.
        let session = match &ch.o2 {
            Some(O2Role::Host { session, .. }) => Some(session.lock()),
            _ => None,
        };
        let peers = peers.lock();
        let candidates = peers.iter().filter_map(|(h, conn)| {
            if session.as_ref().is_some_and(|s| s.is_client(h.to_bits())) {
                return None;
            }
            let reader = conn.reader.try_lock()?;
            let idle = !reader.deframer.mid_packet()
                && reader.finished.is_none()
                && reader.frame_began <= quiet_since;
            idle.then(|| (reader.frame_began, h, conn.clone()))
        });
        let (_, h, conn) = candidates.min_by_key(|(since, ..)| *since)?;
        Some((PeerId(h), conn))
    }

    fn stream_ready(
        &mut self,
        ch: &Arc<Channel>,
        peer: Option<PeerId>,
        conn: &Arc<StreamConn>,
        writable: bool,
        closed: bool,
    ) -> usize {
        // Let go earlier in this turn (to make room, or by another peer's handling): its
        // slot is still in the poll set until the next, and it must not be read again.
        if conn.has_ended() {
            return 0;
        }
        if writable {
            if let Err(e) = conn.flush() {
                self.drop_stream(ch, peer, conn, &format!("write failed: {e}"));
                return 0;
            }
        }
        let mut dispatched = 0;
        let mut reader = conn.reader.lock();
        if reader.finished.is_some() {
            // Nothing more to read; a hang-up means nothing owed can be taken any more.
            drop(reader);
            if closed {
                self.drop_stream(ch, peer, conn, "closed by peer");
            }
            return 0;
        }
        let (mut eof, mut drained) = (false, false);
        for _ in 0..STREAM_READ_BUDGET {
            // Bytes that arrive with nothing pending start a frame.
            let mut frame_began = !reader.deframer.mid_packet();
            match reader.deframer.read_from(&mut conn.stream(), RECV_BUFFER) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
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
            let now = TimeTag::now();
            while let Some(frame) = reader.deframer.next_frame() {
                // A frame ended: what is left of this read began after it.
                frame_began = true;
                match frame {
                    Ok(frame) => match self.packet(ch, source, peer, frame, now) {
                        // Let go by its own packet's handling (an O2lite host refusing
                        // what it sent), or its channel closed by a callback: nothing
                        // more of it is read.
                        Ok(n) if conn.has_ended() || ch.hooks.is_closed() => return dispatched + n,
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
            if frame_began {
                reader.frame_began = Instant::now();
            }
        }
        // Over the budget even once its own buffer was shrunk: the other peers' buffers
        // are, before this one is let go.
        let within = conn.count_unfinished(&mut reader)
            || (Self::shrink_peers(ch, conn) && conn.count_unfinished(&mut reader));
        if !within {
            conn.uncount_unfinished(&mut reader);
            drop(reader);
            let why = "too many bytes of unfinished frames across the listener's peers";
            self.drop_stream(ch, peer, conn, why);
            return dispatched;
        }
        if eof {
            conn.peer_finished();
            let finished = Finished {
                mark: match self.sink {
                    Sink::Queue => Some(self.shared.delivery_mark()),
                    Sink::Direct(_) => None,
                },
                until: Instant::now() + FINISHED_LINGER,
            };
            if self.owed(conn, &finished) {
                reader.finished = Some(finished);
                drop(reader);
                // Gone for O2lite now, though kept for what it is owed: its services must
                // be free for it to offer again when it reconnects at once.
                self.o2_client_left(ch, peer);
                return dispatched;
            }
        }
        drop(reader);
        // A hang-up with data still unread (the budget ran out) waits for the next turn.
        if eof || (closed && !writable && drained) {
            self.drop_stream(ch, peer, conn, "closed by peer");
        }
        dispatched
    }

    /// Shrinks the buffers of a listener's peers other than `conn` to what they keep (those
    /// not being read elsewhere: readers are locked by the I/O loop only, so all of them);
    /// false when there are none.
    fn shrink_peers(ch: &Channel, conn: &Arc<StreamConn>) -> bool {
        let Kind::Listener { peers, .. } = &ch.kind else {
            return false;
        };
        let others: Vec<_> = peers.lock().iter().map(|(_, c)| c.clone()).collect();
        for other in others.iter().filter(|c| !Arc::ptr_eq(c, conn)) {
            if let Some(mut reader) = other.reader.try_lock() {
                other.shrink_unfinished(&mut reader);
            }
        }
        others.len() > 1
    }

    /// True while a connection whose peer finished sending has output to take or replies
    /// to its messages may still come.
    fn owed(&self, conn: &StreamConn, finished: &Finished) -> bool {
        conn.wants_write() || finished.mark.is_some_and(|r| !self.shared.delivered(r))
    }

    /// Why a connection ends now, if it does: half a frame for too long, or its peer
    /// finished sending and nothing more is owed to it (or it was kept long enough).
    fn conn_end(&self, conn: &StreamConn, now: Instant) -> Option<&'static str> {
        let reader = conn.reader.lock();
        match &reader.finished {
            Some(f) if !self.owed(conn, f) => Some("closed by peer"),
            Some(f) if f.until <= now => Some("closed by peer; what was owed to it not taken"),
            Some(_) => None,
            None => {
                let stall = self.shared.options.stall_timeout;
                let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
                if due(stall_deadline(&reader, stall)) {
                    Some("incomplete frame for too long")
                } else if due(output_deadline(conn.output_stuck_since(), stall)) {
                    // Poll says writable only once much of the socket's buffer is free: a
                    // peer taking a little at a time shows it moves when a write is tried.
                    let moves = conn.flush().is_ok()
                        && !due(output_deadline(conn.output_stuck_since(), stall));
                    (!moves).then_some("not reading: its output waited for the stall timeout")
                } else {
                    None
                }
            }
        }
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
        // Once: a connection let go earlier in the turn may be found again.
        if !conn.end() {
            return;
        }
        // Closed here for a reason of its own, the end of the stream seen since says less.
        let reason = conn.why_closed().unwrap_or(reason);
        conn.close();
        match &ch.o2 {
            Some(O2Role::Host { .. }) => self.o2_client_left(ch, peer),
            Some(O2Role::Client { session, .. }) => session.lock().disconnected(),
            None => {}
        }
        // Closed by the application (which shut its connections down): nothing to report
        // or retry.
        let closed = ch.hooks.is_closed();
        let mut retry = None;
        match (&ch.kind, peer) {
            (Kind::Listener { peers, .. }, Some(p)) => {
                peers.lock().remove(p.0);
            }
            (Kind::Client(client), _) => {
                let mut state = client.state.lock();
                if matches!(&*state, ClientState::Connected(c) if Arc::ptr_eq(c, conn)) {
                    *state = client.after_disconnect(reason.to_string());
                    retry = Self::retry_event(ch, &state);
                }
            }
            _ => {}
        }
        if closed {
            return;
        }
        // Sends that went into the output buffer returned Ok: say what they lost.
        let reason = match conn.unwritten() {
            0 => reason.to_string(),
            n => format!("{reason}; {n} bytes of output not yet written were lost"),
        };
        let disconnected = Event::Disconnected {
            channel: ch.id,
            peer: conn.peer,
            reason,
        };
        self.report(ch, disconnected);
        // The `Disconnected` callback may have closed the channel.
        if let Some(e) = retry {
            self.report(ch, e);
        }
    }

    /// An O2lite host's client connection ended (or finished sending): its services and
    /// bridge id go. Nothing for other channels, or once done.
    fn o2_client_left(&mut self, ch: &Arc<Channel>, peer: Option<PeerId>) {
        // A host the application closed reports nothing more.
        if ch.hooks.is_closed() {
            return;
        }
        if let (Some(role), Some(p)) = (&ch.o2, peer) {
            let closed = |s: &mut HostSession, out: &mut _| s.closed(p.0.to_bits(), out);
            if host_turn(role, closed).is_some() {
                self.o2_dispatched += self.o2_host_pending(ch);
            }
        }
    }

    /// Counts and logs what a client that gave up dropped from its backlog (this turn's
    /// `timers` reports it, wherever the client gave up).
    fn report_lost_backlog(&self, ch: &Channel, client: &Client) {
        let lost = client.lost.swap(0, Ordering::Relaxed);
        if lost > 0 {
            self.shared.dropped_reported_later(ch, lost);
            self.shared.log(
                LogLevel::Warn,
                format_args!(
                    "channel '{}': gave up connecting; {lost} packets sent meanwhile dropped",
                    ch.name
                ),
            );
        }
    }

    /// Logs the hosts a discovering O2lite client's browsing found and refused, and why.
    fn report_refused_hosts(&self, ch: &Channel) {
        for (instance, why) in ch.o2.as_ref().map_or(Vec::new(), O2Role::refused_hosts) {
            self.shared.log(
                LogLevel::Warn,
                format_args!(
                    "channel '{}': O2 host '{instance}' not used: {why}",
                    ch.name
                ),
            );
        }
    }

    /// The event a client's new state calls for. Events are emitted only after the
    /// client's lock is released: a callback may use the channel.
    fn retry_event(ch: &Channel, state: &ClientState) -> Option<Event> {
        let reason = || match &ch.kind {
            Kind::Client(client) => client.failure.lock().clone(),
            _ => String::new(),
        };
        match state {
            ClientState::Waiting {
                retry_at, attempt, ..
            } => Some(Event::Reconnecting {
                channel: ch.id,
                attempt: *attempt,
                delay: retry_at.saturating_duration_since(Instant::now()),
                reason: reason(),
            }),
            ClientState::GaveUp => Some(Event::GaveUp {
                channel: ch.id,
                reason: reason(),
            }),
            _ => None,
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
                ch.nodelay(),
                Default::default(),
            )
        });
        match connected {
            Ok(conn) => {
                let conn = Arc::new(conn);
                client.connected(attempt);
                let _ = conn.send_framed(&backlog);
                *state = ClientState::Connected(conn.clone());
                drop(state);
                let connected = Event::Connected {
                    channel: ch.id,
                    peer: Some(addr),
                };
                self.report(ch, connected);
                if let Some(role @ O2Role::Client { udp, .. }) = &ch.o2 {
                    let ip = match conn.stream() {
                        crate::transport::stream::Stream::Tcp(s) => match s.local_addr() {
                            Ok(SocketAddr::V4(a)) => *a.ip(),
                            _ => std::net::Ipv4Addr::LOCALHOST,
                        },
                        crate::transport::stream::Stream::Unix(_) => std::net::Ipv4Addr::LOCALHOST,
                    };
                    let port = udp.local_addr().map_or(0, |a| a.port());
                    let now = role.now();
                    let connected =
                        |s: &mut ClientSession, out: &mut Output| s.connected(now, ip, port, out);
                    if let Some(((), events)) = o2::client_turn(ch, role, connected) {
                        self.o2_client_events(ch, events);
                    }
                }
            }
            Err(e) => {
                *state = client.after_failure(attempt, backlog, e.to_string());
                let retry = Self::retry_event(ch, &state);
                drop(state);
                self.shared.log(
                    LogLevel::Debug,
                    format_args!("channel '{}': connect to {addr}: {e}", ch.name),
                );
                if let Some(e) = retry {
                    self.report(ch, e);
                }
            }
        }
    }

    /// Reconnects clients whose wait is over; ends connections stalled mid-frame, and those
    /// whose peer finished sending once nothing more is owed to them.
    fn timers(&mut self, now: &mut Now) {
        let channels = std::mem::take(&mut self.channels);
        let mut pending_events = Vec::new();
        for ch in &channels {
            match &ch.kind {
                Kind::Client(client) => {
                    let now = now.get();
                    let mut state = client.state.lock();
                    // Nothing to report on a channel closed meanwhile.
                    if client.unreported.swap(false, Ordering::Relaxed) && !ch.hooks.is_closed() {
                        pending_events.extend(match &*state {
                            ClientState::Connected(_) => Some(Event::Connected {
                                channel: ch.id,
                                peer: None,
                            }),
                            other => Self::retry_event(ch, other),
                        });
                    }
                    let due = matches!(&*state, ClientState::Waiting { retry_at, .. } if *retry_at <= now);
                    if due {
                        let ClientState::Waiting {
                            attempt, backlog, ..
                        } = std::mem::replace(&mut *state, ClientState::GaveUp)
                        else {
                            unreachable!("checked above")
                        };
                        // A discovering O2lite client tries the next host found, one at a
                        // time; with none yet it looks again shortly.
                        let candidate = ch
                            .o2
                            .as_ref()
                            .filter(|r| r.discovers())
                            .map(|r| r.next_candidate());
                        match candidate {
                            Some(None) => {
                                let retry_at = now + DISCOVERY_POLL;
                                *state = ClientState::Waiting {
                                    retry_at,
                                    attempt,
                                    backlog,
                                };
                            }
                            found => {
                                if let Some(Some(c)) = found {
                                    pending_events.push(Event::O2Client {
                                        channel: ch.id,
                                        event: ClientEvent::Discovered {
                                            instance: c.instance,
                                            tcp: c.tcp,
                                        },
                                    });
                                    *client.target.lock() =
                                        crate::runtime::channel::ClientTarget::Tcp {
                                            addr: c.tcp,
                                            local: None,
                                        };
                                }
                                *state = match client.attempt(attempt, backlog) {
                                    Ok(next) => next,
                                    Err((_, next)) => {
                                        pending_events.extend(Self::retry_event(ch, &next));
                                        next
                                    }
                                };
                                if let ClientState::Connected(_) = &*state {
                                    pending_events.push(Event::Connected {
                                        channel: ch.id,
                                        peer: None,
                                    });
                                }
                            }
                        }
                    }
                    let ending = match &*state {
                        ClientState::Connected(conn) => {
                            self.conn_end(conn, now).map(|why| (conn.clone(), why))
                        }
                        _ => None,
                    };
                    drop(state);
                    for e in pending_events.drain(..) {
                        self.report(ch, e);
                    }
                    if let Some((conn, why)) = ending {
                        self.drop_stream(ch, None, &conn, why);
                    }
                    self.report_lost_backlog(ch, client);
                    self.report_refused_hosts(ch);
                }
                Kind::Listener { peers, .. } => {
                    let now = now.get();
                    let ending: Vec<(PeerId, Arc<StreamConn>, &str)> = peers
                        .lock()
                        .iter()
                        .filter_map(|(h, c)| {
                            let why = self.conn_end(c, now)?;
                            Some((PeerId(h), c.clone(), why))
                        })
                        .collect();
                    for (peer, conn, why) in ending {
                        self.drop_stream(ch, Some(peer), &conn, why);
                    }
                }
                _ => {}
            }
        }
        self.channels = channels;
        // Do not keep closed channels' sockets open until the next turn.
        self.channels.clear();
    }

    /// One received packet, arrived at `now`: counters and the incoming hook, then
    /// [`deliver`](Self::deliver). Returns the messages dispatched, or why a stream peer
    /// must be dropped. A panic in a hook or callback is caught and logged here, so that
    /// the packets read with this one (the rest of a batch, later frames) go on.
    fn packet(
        &mut self,
        ch: &Arc<Channel>,
        source: Option<SocketAddr>,
        peer: Option<PeerId>,
        raw: &[u8],
        now: TimeTag,
    ) -> Result<usize, String> {
        // The rest of a read, after a callback closed the channel: dropped with it.
        if ch.hooks.is_closed() {
            return Ok(0);
        }
        let receive = |engine: &mut Self| {
            ch.stats.count_received(raw.len());
            if let Some(role) = &ch.o2 {
                engine.o2_packet(ch, role, source, peer, raw, true);
                return Ok(0);
            }
            if !ch.hooks.any() {
                return engine.deliver(ch, source, peer, raw, now, None);
            }
            let mut hooked = std::mem::take(&mut engine.hook_buf);
            let result = match ch.hooks.incoming(raw, &mut hooked) {
                HookVerdict::Pass => engine.deliver(ch, source, peer, raw, now, None),
                HookVerdict::Replace => engine.deliver(ch, source, peer, &hooked, now, None),
                HookVerdict::Drop => Ok(0),
            };
            engine.hook_buf = hooked;
            result
        };
        self.catching(receive).unwrap_or(Ok(0))
    }

    /// Runs `f`, which calls user code; a panic in it is caught and logged.
    fn catching<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> Option<R> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(r) => Some(r),
            Err(_) => {
                self.shared
                    .log_panic("a callback panicked: the rest of its packet was skipped");
                None
            }
        }
    }

    /// Validates and dispatches (or queues) a packet that arrived at `now`.
    fn deliver(
        &mut self,
        ch: &Arc<Channel>,
        source: Option<SocketAddr>,
        peer: Option<PeerId>,
        packet: &[u8],
        now: TimeTag,
        o2: Option<O2Stamp>,
    ) -> Result<usize, String> {
        self.shared.trace(&ch.name, "receives", source, packet);
        let mut info = MsgInfo::new(now)
            .with_source(source)
            .with_channel(Some(ch.id))
            .with_peer(peer);
        info.o2 = o2;
        let is_stream = peer.is_some() || matches!(ch.kind, Kind::Client(_));
        let checked = match &mut self.sink {
            Sink::Direct(receiver) => {
                let before = receiver.stats();
                let result = receiver.receive(packet, info, now);
                self.shared.received(Some(ch.id), before, receiver.stats());
                result
            }
            Sink::Queue => crate::osc::decode_with(
                packet,
                if o2.is_some() {
                    &self.decode_o2
                } else {
                    &self.decode
                },
            )
            .map(|_| {
                let item = Incoming::new(&self.shared, ch.id, info, packet);
                if !self.shared.push_incoming(item) {
                    self.shared.dropped(ch, 1);
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

    /// Drains an O2 channel's UDP socket into its session.
    fn read_o2_datagrams(&mut self, ch: &Arc<Channel>) -> usize {
        let Some(role) = &ch.o2 else { return 0 };
        let mut dispatched = 0;
        for _ in 0..DRAIN_BUDGET {
            let (n, from) = match role.udp().recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) => return self.read_error(ch, e, dispatched),
            };
            ch.stats.count_received(n);
            // From any address, as O2 and o2lite.c take them: a host with several
            // interfaces sends from the one its route picks, not the one it was reached at
            // (a clock reply still has to carry the sequence number of the ping in flight).
            let from = udp::canonical(from);
            let packet = std::mem::take(&mut self.buf);
            dispatched += self
                .catching(|engine| {
                    engine.o2_packet(ch, role, Some(from), None, &packet[..n], false)
                })
                .unwrap_or(0);
            self.buf = packet;
        }
        dispatched
    }

    /// An O2 frame or datagram: to the session; application messages to the methods.
    fn o2_packet(
        &mut self,
        ch: &Arc<Channel>,
        role: &O2Role,
        source: Option<SocketAddr>,
        peer: Option<PeerId>,
        raw: &[u8],
        via_tcp: bool,
    ) -> usize {
        let now = role.now();
        match role {
            O2Role::Client { .. } => {
                let msg = match crate::o2lite::message::decode(raw) {
                    Ok(m) => m,
                    Err(e) => {
                        self.malformed(ch, source, e.to_string(), None);
                        return 0;
                    }
                };
                let receive =
                    |s: &mut ClientSession, out: &mut Output| s.receive(&msg, via_tcp, now, out);
                let Some((received, events)) = o2::client_turn(ch, role, receive) else {
                    return 0;
                };
                self.o2_client_events(ch, events);
                match received {
                    Received::Deliver => self.o2_dispatch(ch, source, None, &msg, via_tcp),
                    Received::Handled => 0,
                    Received::Ignored => {
                        // Reported at the end of this turn: one event however many.
                        self.shared.count_dropped(ch, 1);
                        0
                    }
                    Received::Refused(why) => {
                        let address = String::from_utf8_lossy(msg.address());
                        let tags = String::from_utf8_lossy(msg.typetags());
                        let reason = format!("O2 message {address} ,{tags} refused: {why}");
                        self.malformed(ch, source, reason, None);
                        0
                    }
                }
            }
            O2Role::Host { .. } => {
                let ip = source.and_then(|s| match s {
                    SocketAddr::V4(a) => Some(*a.ip()),
                    SocketAddr::V6(a) => a.ip().to_ipv4_mapped(),
                });
                let take = |s: &mut HostSession, out: &mut _| match (via_tcp, peer) {
                    (true, Some(p)) => s.tcp_frame(p.0.to_bits(), ip, raw, now, out),
                    _ => s.udp_datagram(raw, now, out),
                };
                if let Some(Err(e)) = host_turn(role, take) {
                    self.malformed(ch, source, e.to_string(), None);
                }
                self.o2_host_pending(ch)
            }
        }
    }

    /// Rewrites an O2 application message for the method table and dispatches it.
    fn o2_dispatch(
        &mut self,
        ch: &Arc<Channel>,
        source: Option<SocketAddr>,
        peer: Option<PeerId>,
        msg: &crate::o2lite::message::O2Message<'_>,
        reliable: bool,
    ) -> usize {
        let mut osc = std::mem::take(&mut self.hook_buf);
        let dispatched = match o2::to_osc(msg, &mut self.o2_address, &mut osc) {
            Ok(()) => self
                .deliver(
                    ch,
                    source,
                    peer,
                    &osc,
                    TimeTag::now(),
                    Some(o2::stamp(msg, reliable)),
                )
                .unwrap_or(0),
            Err(e) => {
                self.malformed(
                    ch,
                    source,
                    format!("O2 message not representable: {e}"),
                    None,
                );
                0
            }
        };
        self.hook_buf = osc;
        dispatched
    }

    /// A client session's events, reported (a lost host ends the connection, and the client
    /// reconnects).
    fn o2_client_events(&mut self, ch: &Arc<Channel>, events: Vec<ClientEvent>) {
        for event in events {
            if let ClientEvent::Lost { reason } = event {
                if let Some(conn) = ch.connected_stream() {
                    self.drop_stream(ch, None, &conn, reason);
                }
            }
            self.report(
                ch,
                Event::O2Client {
                    channel: ch.id,
                    event,
                },
            );
        }
    }

    /// Carries out a host session's output queued so far, oldest first (see
    /// `o2::host_turn`); returns the messages dispatched to the host's own services. Taken
    /// one at a time, so that output queued while one is carried out (a connection it
    /// closes) keeps its place: called again meanwhile, it leaves that to the call under
    /// way. What callbacks queue meanwhile beyond `HOST_OUTPUT_SLACK` (a method for a
    /// host's own service sending to it again) waits for the next turn, which that send
    /// wakes: a host sending to itself must not keep the loop from its sockets.
    fn o2_host_pending(&mut self, ch: &Arc<Channel>) -> usize {
        let Some(O2Role::Host { pending, .. }) = &ch.o2 else {
            return 0;
        };
        if self.draining_host {
            return 0;
        }
        self.draining_host = true;
        let mut dispatched = 0;
        let mut budget = pending.lock().len() + HOST_OUTPUT_SLACK;
        while budget > 0 {
            budget -= 1;
            // Closed by a callback of what came out before: the rest goes with the host.
            if ch.hooks.is_closed() {
                pending.lock().clear();
                break;
            }
            // The lock is let go before the output is carried out.
            let next = pending.lock().pop_front();
            let Some(out) = next else {
                break;
            };
            dispatched += self.o2_host_output(ch, out);
        }
        self.draining_host = false;
        if !pending.lock().is_empty() {
            self.shared.waker.wake();
        }
        dispatched
    }

    /// A host session's output: frames to clients, datagrams, closed connections, messages
    /// for the host's own services (dispatched here), events.
    fn o2_host_output(&mut self, ch: &Arc<Channel>, out: HostOutput) -> usize {
        let (Some(role), Kind::Listener { peers, .. }) = (&ch.o2, &ch.kind) else {
            return 0;
        };
        for (conn, frame) in out.tcp {
            let peer = peers
                .lock()
                .get(crate::handle::Handle::from_bits(conn))
                .cloned();
            // A peer that stopped reading gets no more, and that is counted.
            if peer.is_some_and(|peer| peer.send_framed(&frame).is_err()) {
                self.shared.dropped(ch, 1);
            }
        }
        for (to, datagram) in out.udp {
            // One the system refuses (too large, no route) is counted as a full peer's is.
            if role.udp().send_to(&datagram, to).is_err() {
                self.shared.dropped(ch, 1);
            }
        }
        for conn in out.close {
            let peer = peers
                .lock()
                .get(crate::handle::Handle::from_bits(conn))
                .cloned();
            if let Some(peer) = peer {
                self.drop_stream(
                    ch,
                    Some(PeerId(crate::handle::Handle::from_bits(conn))),
                    &peer,
                    "not an O2lite client",
                );
            }
        }
        let mut dispatched = 0;
        for (body, reliable) in out.local {
            // Closed by one of these messages' callbacks: nothing more of the host.
            if ch.hooks.is_closed() {
                return dispatched;
            }
            if let Ok(msg) = crate::o2lite::message::decode(&body) {
                dispatched += self.o2_dispatch(ch, None, None, &msg, reliable);
            }
        }
        for event in out.events {
            self.report(
                ch,
                Event::O2Host {
                    channel: ch.id,
                    event,
                },
            );
        }
        dispatched
    }

    /// Timers of an O2 channel (clock pings, lost hosts, held messages, output queued by
    /// senders); returns when to come back.
    fn o2_tick(&mut self, ch: &Arc<Channel>, role: &O2Role) -> Option<Instant> {
        let now = role.now();
        let next = match role {
            O2Role::Client { .. } => {
                let tick = |s: &mut ClientSession, out: &mut Output| s.tick(now, out);
                let (next, events) = o2::client_turn(ch, role, tick)?;
                self.o2_client_events(ch, events);
                next
            }
            O2Role::Host { .. } => {
                let next = host_turn(role, |s: &mut HostSession, out: &mut _| s.tick(now, out));
                self.o2_dispatched += self.o2_host_pending(ch);
                next.flatten()
            }
        };
        next.and_then(|t| role.instant(t))
    }

    /// Reports an event about `ch`, unless the application closed it (perhaps from the
    /// callback of an event just before): nothing of a closed channel is reported.
    fn report(&self, ch: &Channel, event: Event) {
        if !ch.hooks.is_closed() {
            self.shared.emit(event);
        }
    }

    fn malformed(
        &self,
        ch: &Channel,
        source: Option<SocketAddr>,
        reason: String,
        error: Option<crate::osc::DecodeError>,
    ) {
        // What is left of a read after a callback closed the channel goes with it.
        if ch.hooks.is_closed() {
            return;
        }
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
        match &mut self.sink {
            // Nothing queued: no need to take the delivery bookkeeping's lock.
            Sink::Direct(receiver) if self.shared.has_incoming() => {
                self.shared.deliver_incoming(receiver, 0, usize::MAX)
            }
            _ => 0,
        }
    }

    fn run_due(&mut self) -> usize {
        match &mut self.sink {
            // The clock is read only when a bundle waits: a busy-polling caller polls often.
            Sink::Direct(receiver) if receiver.held() > 0 => receiver.run_due(TimeTag::now()),
            Sink::Direct(_) => 0,
            // `poll` holds the bundles: it is told when one is due.
            Sink::Queue => {
                if let Some(due) = self.shared.held_due().filter(|&d| d <= TimeTag::now()) {
                    self.shared.held_bundle_due(due);
                }
                0
            }
        }
    }

    fn next_bundle(&self) -> Option<TimeTag> {
        match &self.sink {
            Sink::Direct(receiver) => receiver.next_deadline(),
            Sink::Queue => self.shared.held_due(),
        }
    }
}

/// Now, if `ep` frames its datagrams and the read that ended with `error` (`None`: a short
/// batch) found its socket empty.
fn empty_at(ep: &udp::UdpEndpoint, error: Option<&io::Error>) -> Option<Instant> {
    let empty = error.map_or(true, |e| e.kind() == io::ErrorKind::WouldBlock);
    (empty && ep.framed.is_some()).then(Instant::now)
}

impl Slot {
    /// The channel whose socket the slot is, if any.
    fn channel(&self) -> Option<&Arc<Channel>> {
        match self {
            Slot::Wake => None,
            Slot::Datagram(ch)
            | Slot::Listener(ch)
            | Slot::Peer(ch, ..)
            | Slot::Client(ch, _)
            | Slot::Connecting(ch)
            | Slot::O2Udp(ch) => Some(ch),
        }
    }
}

/// The framing state of a slot's UDP channel with `?framing=`.
fn framed_udp(slot: &Slot) -> Option<&udp::Framed> {
    match slot {
        Slot::Datagram(ch) => match &ch.kind {
            Kind::Udp(ep) => ep.framed.as_ref(),
            _ => None,
        },
        _ => None,
    }
}

fn stall_deadline(reader: &Reader, stall: Duration) -> Option<Instant> {
    // A stall timeout too long to add means never.
    reader
        .deframer
        .mid_packet()
        .then(|| reader.frame_began.checked_add(stall))
        .flatten()
}

/// When a connection whose output waits without moving since `stuck` is taken for a peer
/// that stopped reading (one that reads slowly moves it now and then).
fn output_deadline(stuck: Option<Instant>, stall: Duration) -> Option<Instant> {
    stuck.and_then(|since| since.checked_add(stall))
}

/// How many more of an O2lite host's outputs than were queued when it began one turn
/// carries out (see `Engine::o2_host_pending`).
const HOST_OUTPUT_SLACK: usize = 64;

/// The time, read from the clock when first asked for: a busy-polling turn over datagram
/// sockets needs none.
#[derive(Default)]
struct Now(Option<Instant>);

impl Now {
    fn get(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
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
