//! A channel: one endpoint opened from a URL, its sockets, counters and packet hooks, and
//! how a packet is sent on it. Reading is the I/O loop's business (`engine.rs`).

use super::event::Stats;
use super::o2::O2Role;
use super::options::{ContextOptions, Reconnect, MIN_RECONNECT_WAIT};
use super::shared::Shared;
use crate::callback_slot::CallbackSlot;
use crate::error::Error;
use crate::handle::{ChannelId, PeerId, Slab};
use crate::osc::framing::{count_frames, encode_frame, DeframeMode, Framing};
use crate::osc::{DecodeOptions, EncodeError, TypeSet};
use crate::thread_buf::with_buf;
use crate::transport::sender_streams::SenderStreams;
use crate::transport::socket_file::{self, check_path, SocketFile};
use crate::transport::stream::{
    connect_unix, release_fd, Connecting, Listener, PeerBudget, Stream, StreamConn, MAX_PENDING_OUT,
};
use crate::transport::udp::{self, UdpEndpoint};
use crate::transport::url::{ChannelUrl, Host, StreamFraming};
use parking_lot::Mutex;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Transforms a raw packet on its way out or in (osc4py3's encode/decode packet actions:
/// checksums, signatures, encryption). It returns what becomes of the packet; for
/// [`HookVerdict::Replace`] it writes the packet to send or deliver into the buffer, which
/// starts empty.
pub type PacketHook = Box<dyn Fn(&[u8], &mut Vec<u8>) -> HookVerdict + Send + Sync>;

/// What a packet hook decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookVerdict {
    /// The packet goes no further.
    Drop,
    /// The packet goes on as it was (a hook that only looks, or checks).
    Pass,
    /// What the hook wrote into the buffer goes on instead.
    Replace,
}

type Hook = dyn Fn(&[u8], &mut Vec<u8>) -> HookVerdict + Send + Sync;

/// A channel's packet hooks, looked at for every packet in and out. A flag says whether
/// there are any, so the usual channel without hooks takes no lock (a read lock per
/// packet was a measurable share of the receive path). Replacing the hooks waits for calls
/// of the previous ones to end, so a C caller may free what they used; so does closing
/// the channel, after which its packets are dropped rather than sent or delivered unhooked.
#[derive(Default)]
pub(crate) struct HookSlot {
    /// Hooks are set, or the channel is closed: packets take the slow path.
    any: AtomicBool,
    closed: AtomicBool,
    /// Held while both slots and the flag change, so that concurrent setters leave one
    /// setter's pair and a flag that matches it.
    setting: Mutex<()>,
    incoming: CallbackSlot<Hook>,
    outgoing: CallbackSlot<Hook>,
}

impl HookSlot {
    /// Sets the hooks; false (nothing set) once the channel is closed.
    pub(crate) fn set(&self, incoming: Option<PacketHook>, outgoing: Option<PacketHook>) -> bool {
        self.replace(incoming, outgoing, false)
    }

    /// Removes the hooks for good: what is sent or received from now on is dropped.
    pub(crate) fn close(&self) {
        self.replace(None, None, true);
    }

    /// Returns once hook calls under way on other threads have ended.
    pub(crate) fn wait(&self) {
        self.incoming.wait();
        self.outgoing.wait();
    }

    fn replace(
        &self,
        incoming: Option<PacketHook>,
        outgoing: Option<PacketHook>,
        close: bool,
    ) -> bool {
        let hooked = incoming.is_some() || outgoing.is_some();
        let previous = {
            let _setting = self.setting.lock();
            if !close && self.closed.load(Ordering::Acquire) {
                return false;
            }
            if close {
                self.closed.store(true, Ordering::Release);
            }
            let any = hooked || self.closed.load(Ordering::Acquire);
            // Raised before a hook is in place and lowered after the last is gone, so no
            // packet passes a hook that is set.
            if any {
                self.any.store(true, Ordering::Release);
            }
            let previous = (
                self.incoming.replace(incoming.map(Arc::from)),
                self.outgoing.replace(outgoing.map(Arc::from)),
            );
            if !any {
                self.any.store(false, Ordering::Release);
            }
            previous
        };
        // Not under the lock: a hook running now may itself set hooks.
        self.incoming.wait();
        self.outgoing.wait();
        drop(previous);
        true
    }

    /// Runs the incoming hook, if there is one, on `raw`; `out` is cleared first. Callers
    /// look at [`any`](Self::any) first, which spares the usual channel this call.
    pub(crate) fn incoming(&self, raw: &[u8], out: &mut Vec<u8>) -> HookVerdict {
        self.run(&self.incoming, raw, out)
    }

    /// Runs the outgoing hook, if there is one, on `raw`; `out` is cleared first.
    pub(crate) fn outgoing(&self, raw: &[u8], out: &mut Vec<u8>) -> HookVerdict {
        self.run(&self.outgoing, raw, out)
    }

    /// True once the channel is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// True when a packet may meet a hook.
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    fn run(&self, slot: &CallbackSlot<Hook>, raw: &[u8], out: &mut Vec<u8>) -> HookVerdict {
        out.clear();
        match slot.call(|hook| hook(raw, out)) {
            Some(verdict) => verdict,
            None if self.is_closed() => HookVerdict::Drop,
            None => HookVerdict::Pass,
        }
    }
}

/// Where a packet goes on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dest {
    /// The channel's own destination; for a stream listener, every connected peer.
    Default,
    /// A datagram address (replies on UDP).
    Addr(SocketAddr),
    /// One connection of a stream listener.
    Peer(PeerId),
}

/// A channel's limits: the context's, narrowed or widened by its URL's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest stream frame (`max_frame`).
    pub(crate) max_frame: usize,
    /// Most peers on a stream listener (`max_clients`).
    pub(crate) max_peers: usize,
    /// Largest datagram sent or received (`max_packet`).
    pub(crate) max_packet: usize,
    /// Largest packet the framing it sends in can carry (a custom length header's field
    /// may be as narrow as a byte).
    pub(crate) max_framed: usize,
}

impl Limits {
    fn of(url: &ChannelUrl, opts: &ContextOptions) -> Limits {
        let mut l = Limits {
            max_frame: opts.max_frame,
            max_peers: opts.max_stream_peers,
            max_packet: udp::RECV_BUFFER - 1,
            max_framed: usize::MAX,
        };
        // What a stream sends in unless told: the OSC 1.0 prefix (`stream_framing`).
        let framing = match url {
            ChannelUrl::Udp { opts: u, .. } => u.framing.map(Some),
            ChannelUrl::Tcp { opts: t, .. } => Some(t.framing),
            ChannelUrl::Unix { opts: u, .. } if u.stream => Some(u.framing),
            _ => None,
        };
        if let Some(f) = framing {
            l.max_framed = stream_framing(f).0.max_len();
        }
        match url {
            ChannelUrl::Udp { opts: u, .. } => {
                l.max_packet = u.max_packet.unwrap_or(l.max_packet);
                l.max_frame = u.max_frame.unwrap_or(l.max_frame);
                l.max_peers = u.max_clients.unwrap_or(l.max_peers);
            }
            ChannelUrl::Tcp { opts: t, .. } => {
                l.max_frame = t.max_frame.unwrap_or(l.max_frame);
                l.max_peers = t.max_clients.unwrap_or(l.max_peers);
            }
            ChannelUrl::Unix { opts: u, .. } => l.max_frame = u.max_frame.unwrap_or(l.max_frame),
            ChannelUrl::O2lite { .. } | ChannelUrl::O2liteHost { .. } => {
                l.max_frame = l.max_frame.min(crate::o2lite::message::MAX_TCP_FRAME)
            }
            _ => {}
        }
        l
    }
}

pub(crate) struct Channel {
    pub(crate) id: ChannelId,
    pub(crate) name: String,
    pub(crate) url: ChannelUrl,
    pub(crate) limits: Limits,
    pub(crate) kind: Kind,
    /// O2lite channels: the session side (see `o2.rs`).
    pub(crate) o2: Option<O2Role>,
    /// Set once the I/O loop has reported a listening channel bound.
    pub(crate) announced: std::sync::atomic::AtomicBool,
    pub(crate) stats: Stats,
    pub(crate) hooks: HookSlot,
}

pub(crate) enum Kind {
    Udp(UdpEndpoint),
    UnixDgram {
        socket: UnixDatagram,
        dest: Option<PathBuf>,
        /// A bound socket file, removed (once) when the channel is closed or dropped.
        bound: Mutex<Option<SocketFile>>,
    },
    Listener {
        listener: Listener,
        peers: Mutex<Slab<Arc<StreamConn>>>,
        /// Shared by the peers' connections: what they hold together (output waiting,
        /// unfinished frames).
        budget: PeerBudget,
        /// What a new peer is sent in: the framing the URL fixed, or `None` to follow the
        /// peer's own once detected (a length prefix until then).
        send: Option<Framing>,
        read: DeframeMode,
    },
    Client(Client),
    /// `_local`: dispatched in-process.
    Local,
}

/// A connecting stream channel: where it goes, how, and what state it is in.
pub(crate) struct Client {
    /// Where to connect (an O2lite client learns it by discovery).
    pub(crate) target: Mutex<ClientTarget>,
    pub(crate) framing: Framing,
    pub(crate) reconnect: Reconnect,
    pub(crate) max_frame: usize,
    pub(crate) state: Mutex<ClientState>,
    /// The first attempt, made in `open`, ended (a Unix connect completes or fails at
    /// once) before the I/O loop could report it: the loop reports it on its next turn.
    pub(crate) unreported: AtomicBool,
    /// Packets of the backlog dropped on giving up, not yet reported (by the I/O loop).
    pub(crate) lost: AtomicU64,
    /// When the connection was made, and by which attempt (0: the first).
    established: Mutex<(Instant, u32)>,
    /// Why the last connection or attempt ended, for the `Reconnecting` or `GaveUp` event.
    pub(crate) failure: Mutex<String>,
}

/// A connection that ends sooner counts as a failed attempt: a server that accepts and
/// closes at once (a full one, or one filtering peers) meets the back-off and `retries`
/// as one that refuses does, instead of a retry every first wait for ever.
const STABLE_CONNECTION: Duration = Duration::from_secs(1);

pub(crate) enum ClientTarget {
    Tcp {
        addr: SocketAddr,
        local: Option<SocketAddr>,
    },
    Unix(PathBuf),
}

pub(crate) enum ClientState {
    Connected(Arc<StreamConn>),
    Connecting {
        connecting: Connecting,
        attempt: u32,
        backlog: Vec<u8>,
    },
    Waiting {
        retry_at: Instant,
        attempt: u32,
        backlog: Vec<u8>,
    },
    GaveUp,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.release();
    }
}

impl Channel {
    /// Closes what can be closed now, whoever still holds the channel: listening
    /// addresses and socket files are freed, peers disconnected (see `release_fd`).
    pub(crate) fn release(&self) {
        match &self.kind {
            Kind::Udp(ep) => release_fd(ep.socket.as_raw_fd()),
            Kind::UnixDgram { socket, bound, .. } => {
                if let Some(file) = bound.lock().take() {
                    release_fd(socket.as_raw_fd());
                    file.remove();
                }
            }
            Kind::Listener {
                listener, peers, ..
            } => {
                release_fd(listener.fd());
                listener.remove_file();
                for (_, conn) in peers.lock().iter() {
                    conn.close();
                }
            }
            Kind::Client(c) => {
                let mut state = c.state.lock();
                if let ClientState::Connected(conn) = &*state {
                    conn.close();
                }
                // No reconnecting: the I/O loop may still hold the channel for a moment.
                *state = ClientState::GaveUp;
            }
            Kind::Local => {}
        }
        if let Some(role) = &self.o2 {
            release_fd(role.udp().as_raw_fd());
        }
    }
}

/// Refuses at `open` a local address no attempt could bind (another family than `to`'s,
/// or not one of this host's), which every attempt would fail on without a word but the
/// debug log. The port is left to the attempts (it may be free by then).
fn check_bindable(local: SocketAddr, to: SocketAddr) -> io::Result<()> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(to),
        socket2::Type::STREAM,
        None,
    )?;
    s.bind(&SocketAddr::new(local.ip(), 0).into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {}: {e}", local.ip())))
}

/// A listener's framing: what it sends (see `Kind::Listener::send`) and how it reads.
fn listener_framing(f: Option<StreamFraming>) -> (Option<Framing>, DeframeMode) {
    let (send, read) = stream_framing(f);
    (matches!(read, DeframeMode::Fixed(_)).then_some(send), read)
}

fn stream_framing(f: Option<StreamFraming>) -> (Framing, DeframeMode) {
    match f {
        Some(StreamFraming::Slip) => (Framing::Slip, DeframeMode::Fixed(Framing::Slip)),
        Some(StreamFraming::SlipSingleEnd) => {
            (Framing::SlipSingleEnd, DeframeMode::Fixed(Framing::Slip))
        }
        Some(StreamFraming::Length) => (
            Framing::LengthPrefix,
            DeframeMode::Fixed(Framing::LengthPrefix),
        ),
        Some(StreamFraming::Header(h)) => {
            (Framing::Header(h), DeframeMode::Fixed(Framing::Header(h)))
        }
        Some(StreamFraming::Auto) | None => (Framing::LengthPrefix, DeframeMode::Detect),
    }
}

impl Channel {
    /// Opens the sockets a URL names. Listening sockets are bound before this returns,
    /// so their port can be read at once; a stream client starts connecting.
    pub(crate) fn open(
        id: ChannelId,
        name: &str,
        url: ChannelUrl,
        opts: &ContextOptions,
    ) -> Result<Channel, Error> {
        let limits = Limits::of(&url, opts);
        let mut o2 = None;
        let kind = match &url {
            ChannelUrl::Udp {
                host,
                port,
                opts: u,
            } => {
                let mut ep = udp::open(host.as_ref(), *port, u)?;
                ep.framed = u.framing.map(|f| {
                    let (send, read) = stream_framing(Some(f));
                    udp::Framed {
                        send,
                        receive: Mutex::new(SenderStreams::new(
                            read,
                            limits.max_frame,
                            limits.max_peers,
                            opts.stall_timeout,
                        )),
                    }
                });
                Kind::Udp(ep)
            }
            ChannelUrl::Tcp {
                host: None,
                port,
                opts: t,
            } => {
                let (send, read) = listener_framing(t.framing);
                let addr = SocketAddr::new(t.bind.unwrap_or(Ipv6Addr::UNSPECIFIED.into()), *port);
                // IPv4 alone where the system has no IPv6 (not when the port is taken).
                let listener = Listener::tcp(addr, t.bind.is_none()).or_else(|e| match t.bind {
                    None if udp::no_ipv6(&e) => {
                        Listener::tcp(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), *port), false)
                    }
                    _ => Err(e),
                })?;
                Kind::Listener {
                    listener,
                    peers: Mutex::new(Slab::default()),
                    budget: PeerBudget::default(),
                    send,
                    read,
                }
            }
            ChannelUrl::Tcp {
                host: Some(host),
                port,
                opts: t,
            } => {
                let addr = udp::resolve(host, *port, t.family)?;
                // `?bind=` alone binds the address with any port.
                let local = (t.local.is_some() || t.bind.is_some()).then(|| {
                    let ip = t.bind.unwrap_or(match addr {
                        SocketAddr::V4(_) => IpAddr::from(Ipv4Addr::UNSPECIFIED),
                        SocketAddr::V6(_) => IpAddr::from(Ipv6Addr::UNSPECIFIED),
                    });
                    SocketAddr::new(ip, t.local.unwrap_or(0))
                });
                if let Some(local) = local {
                    check_bindable(local, addr)?;
                }
                let (framing, _) = stream_framing(t.framing);
                let reconnect = opts.reconnect.with(t.reconnect, t.retries, t.backoff_ms);
                Kind::Client(Client::start(
                    ClientTarget::Tcp { addr, local },
                    framing,
                    reconnect,
                    limits.max_frame,
                ))
            }
            ChannelUrl::Unix { path, opts: u } if u.stream => {
                if u.listen {
                    let (send, read) = listener_framing(u.framing);
                    Kind::Listener {
                        listener: Listener::unix(path)?,
                        peers: Mutex::new(Slab::default()),
                        budget: PeerBudget::default(),
                        send,
                        read,
                    }
                } else {
                    check_path(path)?;
                    let (framing, _) = stream_framing(u.framing);
                    let reconnect = opts.reconnect.with(None, None, None);
                    Kind::Client(Client::start(
                        ClientTarget::Unix(path.clone()),
                        framing,
                        reconnect,
                        limits.max_frame,
                    ))
                }
            }
            ChannelUrl::Unix { path, opts: u } => {
                if u.listen {
                    let (socket, file) =
                        socket_file::bind(path, false, || UnixDatagram::bind(path))?;
                    socket.set_nonblocking(true)?;
                    Kind::UnixDgram {
                        socket,
                        dest: None,
                        bound: Mutex::new(Some(file)),
                    }
                } else {
                    check_path(path)?;
                    let socket = UnixDatagram::unbound()?;
                    socket.set_nonblocking(true)?;
                    Kind::UnixDgram {
                        socket,
                        dest: Some(path.clone()),
                        bound: Mutex::new(None),
                    }
                }
            }
            ChannelUrl::O2lite {
                host: Some((host, port)),
                opts: s,
                ..
            } => {
                let addr = udp::resolve(host, *port, None)?;
                o2 = Some(O2Role::client(
                    s.udp_port.map(|p| SocketAddr::new(addr.ip(), p)),
                    0,
                )?);
                let reconnect = opts.reconnect.with(s.reconnect, s.retries, s.backoff_ms);
                let target = ClientTarget::Tcp { addr, local: None };
                Kind::Client(Client::start(
                    target,
                    Framing::LengthPrefix,
                    reconnect,
                    limits.max_frame,
                ))
            }
            ChannelUrl::O2lite {
                host: None,
                ensemble,
                opts: s,
            } => {
                o2 = Some(O2Role::discovering(ensemble)?);
                let reconnect = opts.reconnect.with(s.reconnect, s.retries, s.backoff_ms);
                // No host yet: the I/O loop connects to what discovery finds.
                let nowhere = ClientTarget::Tcp {
                    addr: SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
                    local: None,
                };
                Kind::Client(Client::waiting(
                    nowhere,
                    Framing::LengthPrefix,
                    reconnect,
                    limits.max_frame,
                ))
            }
            ChannelUrl::O2liteHost {
                ensemble,
                port,
                udp_port,
                mdns,
            } => {
                // O2 is IPv4: O2lite clients name their address in 8 hex digits.
                let addr = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port.unwrap_or(0));
                let listener = Listener::tcp(addr, false)?;
                let tcp_port = listener.local_addr().map_or(0, |a| a.port());
                let advertise = mdns
                    .unwrap_or(true)
                    .then_some((ensemble.as_str(), tcp_port));
                o2 = Some(O2Role::host(udp_port.unwrap_or(0), advertise)?);
                Kind::Listener {
                    listener,
                    peers: Mutex::new(Slab::default()),
                    budget: PeerBudget::default(),
                    send: Some(Framing::LengthPrefix),
                    read: DeframeMode::Fixed(Framing::LengthPrefix),
                }
            }
            _ => return Err(Error::Unsupported("OOCSI channels are not available yet")),
        };
        Ok(Channel {
            id,
            name: name.to_string(),
            url,
            limits,
            kind,
            o2,
            announced: Default::default(),
            stats: Stats::default(),
            hooks: HookSlot::default(),
        })
    }

    /// The connection of a connected stream client.
    pub(crate) fn connected_stream(&self) -> Option<Arc<StreamConn>> {
        match &self.kind {
            Kind::Client(c) => match &*c.state.lock() {
                ClientState::Connected(conn) => Some(conn.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The in-process `_local` channel.
    pub(crate) fn local(id: ChannelId, opts: &ContextOptions) -> Channel {
        let url = ChannelUrl::Udp {
            host: Some(Host::Name("_local".into())),
            port: 0,
            opts: Default::default(),
        };
        Channel {
            id,
            name: "_local".into(),
            limits: Limits::of(&url, opts),
            url,
            o2: None,
            announced: Default::default(),
            kind: Kind::Local,
            stats: Stats::default(),
            hooks: HookSlot::default(),
        }
    }

    /// Whether TCP connections of this channel set TCP_NODELAY (`?nodelay`, on by default).
    pub(crate) fn nodelay(&self) -> bool {
        match &self.url {
            ChannelUrl::Tcp { opts, .. } => opts.nodelay.unwrap_or(true),
            _ => true,
        }
    }

    /// Where the channel sends or connects, as resolved when it opened.
    pub(crate) fn destination(&self) -> Option<SocketAddr> {
        match &self.kind {
            Kind::Udp(ep) => ep.dest,
            Kind::Client(c) => match &*c.target.lock() {
                ClientTarget::Tcp { addr, .. } => Some(*addr),
                ClientTarget::Unix(_) => None,
            },
            _ => None,
        }
    }

    /// The local address a socket is bound to.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        // An O2lite client is reached at its UDP socket (its TCP connection comes and goes).
        if let Some(role @ super::o2::O2Role::Client { .. }) = &self.o2 {
            return role.udp().local_addr().ok();
        }
        match &self.kind {
            Kind::Udp(ep) => ep.socket.local_addr().ok(),
            Kind::Listener { listener, .. } => listener.local_addr(),
            Kind::Client(c) => match &*c.state.lock() {
                ClientState::Connected(conn) => match conn.stream() {
                    Stream::Tcp(s) => s.local_addr().ok(),
                    Stream::Unix(_) => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// Sends one packet (already through the outgoing hook). Returns true when the I/O loop
    /// must be woken to finish writing or connecting. `encoded` are the options the packet
    /// may have been encoded with (an O2lite channel reads it back, compressed or not).
    pub(crate) fn send(&self, packet: &[u8], dest: Dest, shared: &Shared) -> Result<bool, Error> {
        let encoded = &shared.options.encode;
        if let Some(role) = &self.o2 {
            let opts = DecodeOptions {
                allowed_types: TypeSet::O2,
                addresses: encoded.addresses.clone(),
                ..DecodeOptions::DEFAULT
            };
            let crate::osc::Packet::Message(m) =
                crate::osc::decode_with(packet, &opts).map_err(Error::Decode)?
            else {
                return Err(Error::Unsupported(
                    "send O2 bundles as timestamped messages",
                ));
            };
            let args = super::o2::o2_args(m.args())?;
            let wake = super::o2::send(self, role, 0.0, true, m.address(), args)?;
            self.stats.count_sent(packet.len());
            return Ok(wake);
        }
        if packet.len() > self.limits.max_framed {
            return Err(Error::Encode(EncodeError::TooLarge));
        }
        let sent = |_: usize| self.stats.count_sent(packet.len());
        match (&self.kind, dest) {
            (Kind::Udp(ep), _) => {
                match &ep.framed {
                    None => send_datagram(ep, packet, dest, self.limits.max_packet)?,
                    Some(framed) => with_buf(&FRAME_BUF, |buf| {
                        buf.clear();
                        encode_frame(framed.send, packet, buf);
                        send_datagram(ep, buf, dest, self.limits.max_packet)
                    })?,
                };
                sent(packet.len());
                Ok(false)
            }
            (
                Kind::UnixDgram {
                    socket,
                    dest: Some(path),
                    ..
                },
                Dest::Default,
            ) => {
                // What the receiver would refuse (it reads at most `max_packet` bytes) is
                // refused here, not sent to be lost.
                if packet.len() > self.limits.max_packet {
                    return Err(Error::Encode(EncodeError::TooLarge));
                }
                socket
                    .send_to(packet, path)
                    .map(sent)
                    .map_err(datagram_error)?;
                Ok(false)
            }
            (Kind::UnixDgram { .. }, _) => Err(Error::Unsupported(
                "a listening Unix datagram channel has no destination",
            )),
            (Kind::Listener { peers, .. }, Dest::Peer(p)) => {
                let conn = peers.lock().get(p.0).cloned().ok_or(Error::Closed)?;
                let wake = send_stream(&conn, packet)?;
                sent(packet.len());
                Ok(wake)
            }
            (Kind::Listener { peers, .. }, Dest::Default) => {
                let conns: Vec<Arc<StreamConn>> =
                    peers.lock().iter().map(|(_, c)| c.clone()).collect();
                let (mut wake, mut lost, mut took) = (false, 0, false);
                for conn in conns {
                    // One peer's trouble (not reading, gone) does not stop the others; what
                    // it misses is counted and reported.
                    match send_stream(&conn, packet) {
                        Ok(w) => (wake, took) = (wake | w, true),
                        Err(_) => lost += 1,
                    }
                }
                if lost > 0 {
                    shared.dropped_reported_later(self, lost);
                }
                // Sent once if any peer took it; with no peer there was nobody to send to.
                if took {
                    sent(packet.len());
                }
                Ok(wake)
            }
            (Kind::Listener { .. }, Dest::Addr(_)) => Err(Error::Unsupported(
                "stream listeners reply to peers, not addresses",
            )),
            (Kind::Client(c), _) => {
                let wake = c.send(packet)?;
                sent(packet.len());
                Ok(wake)
            }
            (Kind::Local, _) => Err(Error::Unsupported("_local is dispatched by the context")),
        }
    }
}

thread_local! {
    /// A packet framed for a UDP channel with `?framing=`.
    static FRAME_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sends one datagram to `dest` on a UDP channel whose datagrams are at most `max` bytes
/// (`?max_packet=`, "the largest datagram sent or received"). Inlined: every UDP send's
/// path, as it was before framed channels shared it.
#[inline(always)]
fn send_datagram(ep: &UdpEndpoint, datagram: &[u8], dest: Dest, max: usize) -> Result<(), Error> {
    let to = match dest {
        Dest::Addr(a) => a,
        Dest::Default => match ep.dest {
            Some(to) => to,
            None => {
                return Err(Error::Unsupported(
                    "a listening UDP channel has no destination: reply to a message's source",
                ))
            }
        },
        Dest::Peer(_) => return Err(Error::Unsupported("UDP channels have no peers")),
    };
    if datagram.len() > max.min(udp::max_payload(to)) {
        return Err(Error::Encode(EncodeError::TooLarge));
    }
    match (ep.connected, dest) {
        // (`send_to` on a connected socket fails on some systems.)
        (true, _) if ep.dest.map(udp::canonical) != Some(udp::canonical(to)) => {
            return Err(Error::Unsupported(
                "a connected channel (connect=1) sends to its destination only",
            ))
        }
        (true, _) => ep.socket.send(datagram).or_else(|e| match e.kind() {
            // A connected socket reports an earlier datagram's "port unreachable" on a
            // later send, which then did not go out.
            io::ErrorKind::ConnectionRefused => ep.socket.send(datagram),
            _ => Err(e),
        }),
        (false, Dest::Addr(_)) => ep.socket.send_to(datagram, ep.send_address(to)),
        (false, _) => ep.socket.send_to(datagram, to),
    }
    .map_err(datagram_error)?;
    Ok(())
}

/// A datagram send's failure as senders see it: no room (a Unix receiver's full queue, or
/// the system's buffers) is `Full`, as for streams: nothing was sent, try again later.
fn datagram_error(e: io::Error) -> Error {
    match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::WouldBlock, _) | (_, Some(libc::ENOBUFS)) => Error::Full,
        _ => Error::Io(e),
    }
}

fn send_stream(conn: &StreamConn, packet: &[u8]) -> Result<bool, Error> {
    conn.send(packet).map_err(stream_error)
}

/// A stream write's failure as senders see it.
pub(crate) fn stream_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock => Error::Full,
        // The peer closed its end (EPIPE, ECONNRESET): the same as a send after a close.
        io::ErrorKind::NotConnected
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => Error::Closed,
        _ => Error::Io(e),
    }
}

impl Client {
    /// A client making its first attempt now: a Unix connect completes here, so what is
    /// sent right after `open` goes out even if nobody polls; TCP ones finish in the I/O
    /// loop.
    fn start(
        target: ClientTarget,
        framing: Framing,
        reconnect: Reconnect,
        max_frame: usize,
    ) -> Client {
        let mut client = Client::waiting(target, framing, reconnect, max_frame);
        let first = client.attempt(0, Vec::new());
        *client.unreported.get_mut() = !matches!(first, Ok(ClientState::Connecting { .. }));
        *client.state.get_mut() = first.unwrap_or_else(|(_, next)| next);
        client
    }

    /// A client that waits for its target (set later) before connecting.
    fn waiting(
        target: ClientTarget,
        framing: Framing,
        reconnect: Reconnect,
        max_frame: usize,
    ) -> Client {
        Client {
            target: Mutex::new(target),
            framing,
            reconnect,
            max_frame,
            state: Mutex::new(ClientState::Waiting {
                retry_at: Instant::now(),
                attempt: 0,
                backlog: Vec::new(),
            }),
            unreported: AtomicBool::new(false),
            lost: AtomicU64::new(0),
            established: Mutex::new((Instant::now(), 0)),
            failure: Mutex::new(String::new()),
        }
    }

    /// Attempt `attempt` made a connection.
    pub(crate) fn connected(&self, attempt: u32) {
        *self.established.lock() = (Instant::now(), attempt);
    }

    /// The state after the connection ended, for the reason given: see
    /// [`STABLE_CONNECTION`].
    pub(crate) fn after_disconnect(&self, why: String) -> ClientState {
        let (since, attempt) = *self.established.lock();
        let attempt = match since.elapsed() < STABLE_CONNECTION {
            true => attempt,
            false => 0,
        };
        self.after_failure(attempt, Vec::new(), why)
    }

    /// Starts connection attempt `attempt` carrying `backlog`; on immediate failure returns
    /// the error and the state to move to.
    pub(crate) fn attempt(
        &self,
        attempt: u32,
        backlog: Vec<u8>,
    ) -> Result<ClientState, (io::Error, ClientState)> {
        let result = match &*self.target.lock() {
            ClientTarget::Tcp { addr, local } => {
                Connecting::start(*addr, *local).map(|connecting| ClientState::Connecting {
                    connecting,
                    attempt,
                    backlog: Vec::new(),
                })
            }
            ClientTarget::Unix(path) => connect_unix(path)
                .and_then(|s| {
                    StreamConn::new(
                        Stream::Unix(s),
                        None,
                        Some(self.framing),
                        DeframeMode::Fixed(self.framing),
                        self.max_frame,
                        true,
                        PeerBudget::default(),
                    )
                })
                .map(|conn| ClientState::Connected(Arc::new(conn))),
        };
        match result {
            Ok(ClientState::Connecting {
                connecting,
                attempt,
                ..
            }) => Ok(ClientState::Connecting {
                connecting,
                attempt,
                backlog,
            }),
            Ok(ClientState::Connected(conn)) => {
                self.connected(attempt);
                let _ = conn.send_framed(&backlog);
                Ok(ClientState::Connected(conn))
            }
            Ok(other) => Ok(other),
            Err(e) => {
                let next = self.after_failure(attempt, backlog, e.to_string());
                Err((e, next))
            }
        }
    }

    /// The state after attempt `attempt` failed (`why`): wait and retry, or give up.
    pub(crate) fn after_failure(&self, attempt: u32, backlog: Vec<u8>, why: String) -> ClientState {
        *self.failure.lock() = why;
        // A wait too long to represent never ends: the same as giving up.
        match self
            .reconnect
            .delay(attempt + 1)
            .and_then(|delay| Instant::now().checked_add(delay))
        {
            Some(retry_at) => ClientState::Waiting {
                retry_at,
                attempt: attempt + 1,
                backlog,
            },
            None => {
                let lost = count_frames(self.framing, &backlog);
                self.lost.fetch_add(lost, Ordering::Relaxed);
                ClientState::GaveUp
            }
        }
    }

    /// Sends now when connected, otherwise keeps the framed packet for the connection.
    fn send(&self, packet: &[u8]) -> Result<bool, Error> {
        let mut state = self.state.lock();
        match &mut *state {
            ClientState::Connected(conn) => send_stream(conn, packet),
            ClientState::Connecting { backlog, .. } | ClientState::Waiting { backlog, .. } => {
                // Bounded like a connection's output.
                if backlog.len() + packet.len() > MAX_PENDING_OUT {
                    return Err(Error::Full);
                }
                encode_frame(self.framing, packet, backlog);
                Ok(true)
            }
            ClientState::GaveUp => Err(Error::Closed),
        }
    }
}

impl Reconnect {
    /// The wait before attempt `attempt` (1 = first retry), or `None` to give up.
    pub(crate) fn delay(&self, attempt: u32) -> Option<Duration> {
        if !self.enabled || (self.retries != 0 && attempt > self.retries) {
            return None;
        }
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        // A zero first wait or maximum would retry on every turn of the I/O loop.
        let first = self.initial.max(MIN_RECONNECT_WAIT);
        Some(first.saturating_mul(factor).min(self.max.max(first)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dropping() -> Option<PacketHook> {
        Some(Box::new(|_: &[u8], _: &mut Vec<u8>| HookVerdict::Drop))
    }

    #[test]
    fn concurrent_setters_leave_the_flag_true_to_the_hooks() {
        const ROUNDS: usize = 20_000;
        let slot = Arc::new(HookSlot::default());
        let start = Arc::new(std::sync::Barrier::new(2));
        let (other, go) = (slot.clone(), start.clone());
        let remover = std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                go.wait();
                other.set(None, None);
                go.wait();
            }
        });
        for _ in 0..ROUNDS {
            start.wait();
            slot.set(dropping(), None);
            start.wait();
            // Whichever setter came last, a hook that is set is never skipped.
            let verdict = slot.incoming(b"", &mut Vec::new());
            let set = slot.incoming.call(|_| ()).is_some();
            assert_eq!(verdict == HookVerdict::Drop, set);
        }
        remover.join().unwrap();
    }

    #[test]
    fn a_closed_slot_drops_and_takes_no_more_hooks() {
        let slot = HookSlot::default();
        assert!(slot.set(None, dropping()));
        slot.close();
        assert!(slot.any());
        assert_eq!(slot.outgoing(b"", &mut Vec::new()), HookVerdict::Drop);
        assert_eq!(slot.incoming(b"", &mut Vec::new()), HookVerdict::Drop);
        assert!(!slot.set(dropping(), None));
        assert!(slot.incoming.call(|_| ()).is_none());
    }
}
