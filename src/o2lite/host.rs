//! The O2lite host (specs/o2lite.md §8), sans-IO: the caller owns the TCP listener and the
//! UDP socket, hands in frames and datagrams with the host's local time, and carries out
//! what [`HostOutput`] collects. The host is the ensemble's reference clock: global time
//! is seconds since the host started.
//!
//! A connection whose first frame is not `!_o2/o2lite/con` (`si`) is closed, including a
//! full O2 process's `!_o2/dy`. Services are routed by name with the reliability the
//! sender chose; messages with a future timestamp are held until due; a client's services
//! go when its connection does. Bridge ids are never reused.
//!
//! Whatever peers send is bounded: [`MAX_HELD`] messages or [`MAX_HELD_BYTES`] held,
//! [`MAX_CLIENT_SERVICES`] services a client and [`MAX_SERVICES`] in all; what does not fit
//! is dropped and reported ([`HostEvent::NotHeld`], [`HostEvent::ServiceRefused`]).

use super::hold::{Global, HoldQueue};
use super::message::{
    decode, encode_body, encode_tcp, encode_udp, O2Arg, O2Error, O2ErrorKind, O2Message,
    MAX_TCP_FRAME, MAX_UDP_BODY,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// The caller's name for one TCP connection.
pub type ConnId = u64;

/// Who offers a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The host application itself.
    Local,
    /// An O2lite client, by connection.
    Client(ConnId),
}

/// What happened at the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// A client completed `con`.
    ClientJoined {
        /// Its connection.
        conn: ConnId,
        /// The bridge id given to it.
        bridge_id: i32,
    },
    /// A client's connection ended; its services are gone.
    ClientLeft {
        /// Its connection.
        conn: ConnId,
        /// Its bridge id.
        bridge_id: i32,
    },
    /// A client reported clock synchronisation.
    ClientSynced {
        /// Its bridge id.
        bridge_id: i32,
    },
    /// A service appeared.
    ServiceAdded {
        /// The name.
        name: String,
    },
    /// A service went away.
    ServiceRemoved {
        /// The name.
        name: String,
    },
    /// A connection was refused (bad first frame, ...).
    Refused {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: String,
    },
    /// A client's `sv` was refused: the client offers [`MAX_CLIENT_SERVICES`] already, or
    /// the host [`MAX_SERVICES`]. Reported for the first refusal on each connection; the
    /// client is not told (as when the name is taken, spec §6.3).
    ServiceRefused {
        /// The client's connection.
        conn: ConnId,
        /// The service refused.
        name: String,
    },
    /// A timestamped message was not held: dropped when its timestamp is not finite or
    /// more than [`MAX_HOLD_AHEAD`] seconds ahead, delivered at once when the hold queue is
    /// full (as the spec lets a host forward early: a flood of far-future messages from
    /// anyone who reaches the UDP port must not stop everyone else's from arriving), or
    /// dropped from the queue when its service went before it was due. Reported for the
    /// first such message, then again once a held message has been delivered or a second
    /// has passed, so a flood does not flood the event callback (a service going is always
    /// reported); `total` counts every such message since the host started.
    NotHeld {
        /// Why.
        reason: &'static str,
        /// Messages not held so far.
        total: u64,
    },
    /// A client asked for the service list more often than [`LISTINGS_PER_SECOND`] a
    /// second (after a burst of [`LISTING_BURST`]): that listing was not sent. Each asks
    /// the whole table to be sent back, so answering every one would let a client that does
    /// not read its replies keep the host busy for everyone. Reported once per connection.
    ListingRefused {
        /// The client's connection.
        conn: ConnId,
    },
    /// A message for a service nobody offers was dropped. Reported once per service name
    /// (for the first 64 names) until that service appears, so a
    /// misaddressed stream does not flood the event callback; `total` counts every such
    /// message since the host started.
    Unroutable {
        /// The service the message was for.
        service: String,
        /// Messages dropped so far for want of a service.
        total: u64,
    },
}

/// Why a timed message was delivered early.
const FULL: &str = "the hold queue is full: delivered at once";

/// How many distinct unknown service names the host reports (names come from peers).
const UNROUTABLE_NAMES: usize = 64;

/// The most messages held for later. Anyone who reaches the UDP port can send timestamped
/// messages; 4096, the default depth of a context's receive queue, is far more than
/// applications keep scheduled ahead.
pub const MAX_HELD: usize = 4096;

/// The most bytes of message bodies held for later: 8 MiB, as much as a stream connection
/// may have waiting for output (a hundred or so of the largest, 64 KiB, messages).
pub const MAX_HELD_BYTES: usize = 8 << 20;

/// How far ahead of global time (seconds) a timestamp may be and the message still held:
/// about 32 years, longer than any host runs, and short of the Unix or NTP epoch seconds
/// (1.7e9 and more) that a client confusing its clocks would send, which are dropped.
/// It also keeps the deadline representable as a local instant on every platform.
pub const MAX_HOLD_AHEAD: f64 = 1e9;

/// Listings (`ls`) a client may ask for in a burst, and how many a second after it.
pub const LISTING_BURST: f64 = 8.0;
/// See [`LISTING_BURST`].
pub const LISTINGS_PER_SECOND: f64 = 10.0;

/// How long (seconds) a new connection has to send `con`: one that does not is closed, or
/// idle connections could take every peer slot of the listener.
pub const CON_TIMEOUT: f64 = 10.0;

/// The most services one client may offer. O2lite clients are small programs (reference
/// clients send a handful of names after each connection): a thousand is ample.
pub const MAX_CLIENT_SERVICES: usize = 1024;

/// The most services the host's table takes from clients (its own are not limited). With
/// each client limited, this bounds the table whatever the number of connections, and
/// with it an `ls` reply (about 100 bytes a service, under 2 MiB).
pub const MAX_SERVICES: usize = 16_384;

/// What the host wants done.
#[derive(Debug, Default)]
pub struct HostOutput {
    /// Framed bytes to write on a client's TCP connection.
    pub tcp: Vec<(ConnId, Vec<u8>)>,
    /// Datagrams to send.
    pub udp: Vec<(SocketAddr, Vec<u8>)>,
    /// Connections to close.
    pub close: Vec<ConnId>,
    /// Message bodies for the host application's own services, with their reliability.
    pub local: Vec<(Vec<u8>, bool)>,
    /// Events.
    pub events: Vec<HostEvent>,
}

#[derive(Debug)]
struct Client {
    bridge_id: i32,
    udp: SocketAddr,
    synced: bool,
    /// Services it offers.
    services: usize,
    /// A refused `sv` has been reported.
    refusal_reported: bool,
    /// Listings it may ask for now (a token bucket: [`LISTING_BURST`] at most), as of
    /// `listed_at`.
    listings: f64,
    listed_at: f64,
    /// A refused listing has been reported.
    listing_refusal_reported: bool,
}

/// One O2lite host.
#[derive(Debug)]
pub struct HostSession {
    started: f64,
    next_bridge: i32,
    /// Connections that have not sent `con` yet, with when they were accepted.
    pending: Vec<(ConnId, f64)>,
    clients: HashMap<ConnId, Client>,
    services: BTreeMap<String, Owner>,
    held: HoldQueue,
    /// Timestamped messages not held (see [`HostEvent::NotHeld`]): dropped, delivered
    /// early, or dropped from the queue when their service went.
    pub not_held: u64,
    /// When a drop was last reported, if no held message was delivered since.
    not_held_reported: Option<f64>,
    /// Messages to services nobody offers.
    pub unroutable: u64,
    /// Unknown service names already reported.
    unroutable_reported: BTreeSet<String>,
}

/// Status codes of `st`/`ls` (spec §6.6).
const STATUS_UNKNOWN: i32 = -1;
const STATUS_LOCAL: i32 = 4;
const STATUS_BRIDGE_NO_TIME: i32 = 2;
const STATUS_BRIDGE: i32 = 6;

impl HostSession {
    /// A host whose clock starts at local time `now`.
    pub fn new(now: f64) -> HostSession {
        HostSession {
            started: now,
            next_bridge: 1,
            pending: Vec::new(),
            clients: HashMap::new(),
            services: BTreeMap::new(),
            held: HoldQueue::default(),
            not_held: 0,
            not_held_reported: None,
            unroutable: 0,
            unroutable_reported: BTreeSet::new(),
        }
    }

    /// Global time (the host is the reference).
    pub fn global_time(&self, now: f64) -> f64 {
        now - self.started
    }

    /// The services and who offers them.
    pub fn services(&self) -> impl Iterator<Item = (&str, Owner)> + '_ {
        self.services.iter().map(|(n, o)| (n.as_str(), *o))
    }

    /// Connected clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Offers a service of the host application; false if the name is taken.
    pub fn add_local_service(
        &mut self,
        name: &str,
        out: &mut HostOutput,
    ) -> Result<(), &'static str> {
        super::check_service_name(name)?;
        match self.add_service(name, Owner::Local, out) {
            true => Ok(()),
            false => Err("a client already offers this service"),
        }
    }

    /// Withdraws a service of the host application.
    pub fn remove_local_service(&mut self, name: &str, out: &mut HostOutput) -> bool {
        if self.services.get(name) != Some(&Owner::Local) {
            return false;
        }
        self.remove_services(BTreeSet::from([name.to_string()]), out);
        true
    }

    /// Services go, and the messages held for them with them: they would otherwise keep
    /// their place in the hold queue until due (years, for a flood), or reach whoever
    /// offers the name next.
    /// One walk over the queue for all of `names` (a client leaving may take a thousand).
    fn remove_services(&mut self, names: BTreeSet<String>, out: &mut HostOutput) {
        let dropped = self.held.remove_services(&names);
        if dropped > 0 {
            self.not_held += dropped;
            out.events.push(HostEvent::NotHeld {
                reason: "its service went before it was due",
                total: self.not_held,
            });
        }
        for name in names {
            self.services.remove(&name);
            out.events.push(HostEvent::ServiceRemoved { name });
        }
    }

    fn add_service(&mut self, name: &str, owner: Owner, out: &mut HostOutput) -> bool {
        match self.services.get(name) {
            Some(o) if *o == owner => true,
            Some(_) => false,
            None => {
                self.services.insert(name.into(), owner);
                self.unroutable_reported.remove(name);
                out.events
                    .push(HostEvent::ServiceAdded { name: name.into() });
                true
            }
        }
    }

    /// A client's `sv`: a new name is taken while the client and the host have room.
    fn add_client_service(&mut self, conn: ConnId, name: &str, out: &mut HostOutput) {
        // Taken by another, or already the client's (a properties update): nothing to count.
        let (Some(client), false) = (
            self.clients.get_mut(&conn),
            self.services.contains_key(name),
        ) else {
            return;
        };
        if client.services >= MAX_CLIENT_SERVICES || self.services.len() >= MAX_SERVICES {
            if !client.refusal_reported {
                client.refusal_reported = true;
                let name = name.into();
                out.events.push(HostEvent::ServiceRefused { conn, name });
            }
            return;
        }
        client.services += 1;
        self.add_service(name, Owner::Client(conn), out);
    }

    /// A TCP connection was accepted at `now` (local seconds): it has [`CON_TIMEOUT`] to
    /// send `con`.
    pub fn accepted(&mut self, conn: ConnId, now: f64) {
        self.pending.push((conn, now));
    }

    /// True once `conn` has sent `con`: it is a client, with a session.
    pub fn is_client(&self, conn: ConnId) -> bool {
        self.clients.contains_key(&conn)
    }

    fn is_pending(&self, conn: ConnId) -> bool {
        self.pending.iter().any(|&(c, _)| c == conn)
    }

    /// A TCP connection ended.
    pub fn closed(&mut self, conn: ConnId, out: &mut HostOutput) {
        self.pending.retain(|&(c, _)| c != conn);
        let Some(client) = self.clients.remove(&conn) else {
            return;
        };
        let gone = self
            .services
            .iter()
            .filter(|(_, o)| **o == Owner::Client(conn))
            .map(|(n, _)| n.clone())
            .collect();
        self.remove_services(gone, out);
        out.events.push(HostEvent::ClientLeft {
            conn,
            bridge_id: client.bridge_id,
        });
    }

    fn refuse(&mut self, conn: ConnId, reason: String, out: &mut HostOutput) {
        self.pending.retain(|&(c, _)| c != conn);
        out.close.push(conn);
        out.events.push(HostEvent::Refused { conn, reason });
    }

    /// A TCP frame's body from `conn`; `peer_ip` is the connection's remote address. A
    /// client's malformed message is dropped and returned as an error (the session goes
    /// on); a malformed first frame refuses the connection.
    pub fn tcp_frame(
        &mut self,
        conn: ConnId,
        peer_ip: Option<Ipv4Addr>,
        body: &[u8],
        now: f64,
        out: &mut HostOutput,
    ) -> Result<(), O2Error> {
        let msg = match decode(body) {
            Ok(m) => m,
            Err(e) if self.is_pending(conn) => {
                self.refuse(conn, format!("first frame: {e}"), out);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if self.is_pending(conn) {
            self.first_frame(conn, peer_ip, &msg, now, out);
        } else if self.clients.contains_key(&conn) {
            self.message(Some(conn), &msg, now, out);
        }
        Ok(())
    }

    fn first_frame(
        &mut self,
        conn: ConnId,
        peer_ip: Option<Ipv4Addr>,
        msg: &O2Message<'_>,
        now: f64,
        out: &mut HostOutput,
    ) {
        let mut args = msg.args();
        let con = (msg.path(), msg.typetags(), args.next(), args.next());
        let (b"_o2/o2lite/con", b"si", Some(O2Arg::Str(ip_hex)), Some(O2Arg::Int(port))) = con
        else {
            let what = String::from_utf8_lossy(msg.address()).into_owned();
            return self.refuse(
                conn,
                format!("first frame is {what}, not !_o2/o2lite/con"),
                out,
            );
        };
        let ip = std::str::from_utf8(ip_hex)
            .ok()
            .filter(|h| h.len() == 8)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .map(Ipv4Addr::from);
        let (Some(mut ip), Ok(port)) = (ip, u16::try_from(port)) else {
            return self.refuse(conn, "con with a bad address or port".into(), out);
        };
        // A client that knows no better address says 0.0.0.0: use where it connected from.
        if ip.is_unspecified() {
            ip = peer_ip.unwrap_or(Ipv4Addr::LOCALHOST);
        }
        let Some(next) = self.next_bridge.checked_add(1) else {
            return self.refuse(conn, "no bridge ids left".into(), out);
        };
        self.pending.retain(|&(c, _)| c != conn);
        let bridge_id = std::mem::replace(&mut self.next_bridge, next);
        self.clients.insert(
            conn,
            Client {
                bridge_id,
                udp: SocketAddr::V4(SocketAddrV4::new(ip, port)),
                synced: false,
                services: 0,
                refusal_reported: false,
                listings: LISTING_BURST,
                listed_at: now,
                listing_refusal_reported: false,
            },
        );
        let mut frame = Vec::new();
        encode_tcp(&mut frame, 0.0, b"!_o2/id", [O2Arg::Int(bridge_id)]).expect("a well-formed id");
        out.tcp.push((conn, frame));
        out.events.push(HostEvent::ClientJoined { conn, bridge_id });
    }

    /// A UDP datagram (clock pings, best-effort application messages); a malformed one is
    /// dropped and returned as an error.
    pub fn udp_datagram(
        &mut self,
        body: &[u8],
        now: f64,
        out: &mut HostOutput,
    ) -> Result<(), O2Error> {
        self.message(None, &decode(body)?, now, out);
        Ok(())
    }

    /// A client's message (`conn` is None for UDP): control, or routed to its service.
    fn message(
        &mut self,
        conn: Option<ConnId>,
        msg: &O2Message<'_>,
        now: f64,
        out: &mut HostOutput,
    ) {
        match msg.service() == b"_o2" {
            true => self.control(conn, msg, now, out),
            // Forwarded as its misc bit 0 says (§3, §8), whatever carried it here: a client
            // may send a best-effort message by TCP (before it knows the UDP port).
            false => self.route(msg, msg.reliable(), now, out),
        }
    }

    /// `/_o2/o2lite/...` control messages (`conn` is None for UDP).
    fn control(
        &mut self,
        conn: Option<ConnId>,
        msg: &O2Message<'_>,
        now: f64,
        out: &mut HostOutput,
    ) {
        let mut args = msg.args();
        match (msg.path(), msg.typetags(), conn) {
            (b"_o2/o2lite/sv", b"siisi", Some(conn)) => {
                let (
                    Some(O2Arg::Str(name)),
                    Some(O2Arg::Int(exists)),
                    Some(O2Arg::Int(is_service)),
                ) = (args.next(), args.next(), args.next())
                else {
                    return;
                };
                let Ok(name) = std::str::from_utf8(name) else {
                    return;
                };
                // Taps (is_service = 0) are optional and not offered by this host.
                if super::check_service_name(name).is_err() || is_service == 0 {
                    return;
                }
                if exists != 0 {
                    self.add_client_service(conn, name, out);
                } else if self.services.get(name) == Some(&Owner::Client(conn)) {
                    self.remove_services(BTreeSet::from([name.to_string()]), out);
                    if let Some(c) = self.clients.get_mut(&conn) {
                        c.services -= 1;
                    }
                }
            }
            (b"_o2/o2lite/cs/get", b"iis", _) => {
                let (Some(O2Arg::Int(bridge_id)), Some(O2Arg::Int(seq)), Some(O2Arg::Str(reply))) =
                    (args.next(), args.next(), args.next())
                else {
                    return;
                };
                let Some(client) = self.clients.values().find(|c| c.bridge_id == bridge_id) else {
                    return;
                };
                let mut datagram = Vec::new();
                let time = O2Arg::Time(self.global_time(now));
                if encode_udp(&mut datagram, 0.0, reply, [O2Arg::Int(seq), time]).is_ok() {
                    out.udp.push((client.udp, datagram));
                }
            }
            (b"_o2/o2lite/cs/cs", b"", Some(conn)) => {
                if let Some(c) = self.clients.get_mut(&conn) {
                    if !c.synced {
                        c.synced = true;
                        out.events.push(HostEvent::ClientSynced {
                            bridge_id: c.bridge_id,
                        });
                    }
                }
            }
            (b"_o2/o2lite/st", b"s", Some(conn)) => {
                let Some(O2Arg::Str(name)) = args.next() else {
                    return;
                };
                let status = self.status(std::str::from_utf8(name).unwrap_or(""));
                let mut frame = Vec::new();
                encode_tcp(
                    &mut frame,
                    0.0,
                    b"!_o2/st",
                    [O2Arg::Str(name), O2Arg::Int(status)],
                )
                .expect("well formed");
                out.tcp.push((conn, frame));
            }
            (b"_o2/o2lite/ls", b"", Some(conn)) => {
                if !self.may_list(conn, now, out) {
                    return;
                }
                let mut frames = Vec::new();
                for name in self.services.keys() {
                    let entry = [
                        O2Arg::Str(name.as_bytes()),
                        O2Arg::Int(self.status(name)),
                        O2Arg::Str(b"_o2"),
                        O2Arg::Str(b""),
                    ];
                    encode_tcp(&mut frames, 0.0, b"!_o2/ls", entry).expect("well formed");
                }
                let end = [
                    O2Arg::Str(b""),
                    O2Arg::Int(0),
                    O2Arg::Str(b""),
                    O2Arg::Str(b""),
                ];
                encode_tcp(&mut frames, 0.0, b"!_o2/ls", end).expect("well formed");
                out.tcp.push((conn, frames));
            }
            // Anything else for _o2 (including the legacy `dy`, which crashes O2 hosts) is
            // dropped.
            _ => {}
        }
    }

    /// Takes one listing from the client's bucket; false (reported once) when it is empty.
    fn may_list(&mut self, conn: ConnId, now: f64, out: &mut HostOutput) -> bool {
        let Some(client) = self.clients.get_mut(&conn) else {
            return false;
        };
        let refill = (now - client.listed_at).max(0.0) * LISTINGS_PER_SECOND;
        client.listings = (client.listings + refill).min(LISTING_BURST);
        client.listed_at = now;
        if client.listings >= 1.0 {
            client.listings -= 1.0;
            return true;
        }
        if !std::mem::replace(&mut client.listing_refusal_reported, true) {
            out.events.push(HostEvent::ListingRefused { conn });
        }
        false
    }

    fn status(&self, name: &str) -> i32 {
        match self.services.get(name) {
            None => STATUS_UNKNOWN,
            Some(Owner::Local) => STATUS_LOCAL,
            Some(Owner::Client(c)) => match self.clients.get(c).is_some_and(|c| c.synced) {
                true => STATUS_BRIDGE,
                false => STATUS_BRIDGE_NO_TIME,
            },
        }
    }

    /// Sends an application message (from the host application, or routed) to its service.
    fn route(&mut self, msg: &O2Message<'_>, reliable: bool, now: f64, out: &mut HostOutput) {
        // What is due by now goes first: a message arriving at (or after) a held one's time
        // would otherwise overtake it, the held one waiting for the next tick.
        self.release_due(now, out);
        let ts = msg.timestamp();
        let ahead = ts - self.global_time(now);
        if !ts.is_finite() || ahead > MAX_HOLD_AHEAD {
            return self.drop_timed("a timestamp not finite or too far ahead", now, out);
        }
        // A message for no known service is not held: it is dropped (and reported) now.
        let service = std::str::from_utf8(msg.service())
            .ok()
            .filter(|s| self.services.contains_key(*s));
        if let (true, Some(service)) = (ts > 0.0 && ahead > 0.0, service) {
            // Full: what is due after it makes room, delivered early, if enough of it can;
            // else this one goes early. Nothing is lost, and a flood of far-future
            // messages cannot make everyone else's early.
            match self
                .held
                .hold(Global(ts), service, msg.as_bytes(), reliable)
            {
                Some(early) => {
                    for held in early {
                        self.drop_timed(FULL, now, out);
                        if let Ok(m) = decode(&held.body) {
                            self.forward(&m, held.reliable, out);
                        }
                    }
                    return;
                }
                None => self.drop_timed(FULL, now, out),
            }
        }
        self.forward(msg, reliable, out);
    }

    /// Forwards the held messages due by `now`, in time order.
    fn release_due(&mut self, now: f64, out: &mut HostOutput) {
        while let Some(held) = self.held.pop_due(Global(self.global_time(now))) {
            self.not_held_reported = None;
            if let Ok(msg) = decode(&held.body) {
                self.forward(&msg, held.reliable, out);
            }
        }
    }

    /// Counts (and reports) a timestamped message that is not held at local time `now`.
    fn drop_timed(&mut self, reason: &'static str, now: f64, out: &mut HostOutput) {
        self.not_held += 1;
        // (A clock that went back, or a `now` that is no number, reports too.)
        if self
            .not_held_reported
            .map_or(true, |at| !(0.0..1.0).contains(&(now - at)))
        {
            self.not_held_reported = Some(now);
            let total = self.not_held;
            out.events.push(HostEvent::NotHeld { reason, total });
        }
    }

    fn forward(&mut self, msg: &O2Message<'_>, reliable: bool, out: &mut HostOutput) {
        let service = std::str::from_utf8(msg.service()).unwrap_or("");
        match self.services.get(service).copied() {
            None => {
                self.unroutable += 1;
                let new = self.unroutable_reported.len() < UNROUTABLE_NAMES
                    && !self.unroutable_reported.contains(service);
                if new {
                    self.unroutable_reported.insert(service.into());
                    out.events.push(HostEvent::Unroutable {
                        service: service.into(),
                        total: self.unroutable,
                    });
                }
            }
            Some(Owner::Local) => out.local.push((msg.as_bytes().to_vec(), reliable)),
            Some(Owner::Client(conn)) => {
                let Some(client) = self.clients.get(&conn) else {
                    return;
                };
                // Forwarded with the reliability it came with; misc is 1 (TCP) or 0 (UDP).
                let mut body = msg.as_bytes().to_vec();
                body[..4].copy_from_slice(&(reliable as i32).to_be_bytes());
                match reliable {
                    true => {
                        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
                        frame.extend_from_slice(&body);
                        out.tcp.push((conn, frame));
                    }
                    false => out.udp.push((client.udp, body)),
                }
            }
        }
    }

    /// Sends a message from the host application to a service (a client's, or its own).
    /// A timestamped message that cannot be held is dropped and reported, as a client's is.
    pub fn send<'a, A: std::borrow::Borrow<O2Arg<'a>>>(
        &mut self,
        timestamp: f64,
        address: &[u8],
        args: impl IntoIterator<Item = A, IntoIter = impl Iterator<Item = A> + Clone>,
        reliable: bool,
        now: f64,
        out: &mut HostOutput,
    ) -> Result<(), super::message::O2Error> {
        let mut body = Vec::new();
        encode_body(&mut body, reliable as i32, timestamp, address, args)?;
        // What goes by TCP must fit a frame, or the client would drop the connection.
        if reliable && body.len() > MAX_TCP_FRAME {
            return Err(O2Error::new(O2ErrorKind::FrameTooLong, MAX_TCP_FRAME));
        }
        let msg = decode(&body)?;
        // What goes to a client by UDP must fit a datagram, or the system would refuse it
        // after this returned.
        let to_client = std::str::from_utf8(msg.service())
            .ok()
            .and_then(|s| self.services.get(s))
            .is_some_and(|owner| matches!(owner, Owner::Client(_)));
        if !reliable && to_client && body.len() > MAX_UDP_BODY {
            return Err(O2Error::new(O2ErrorKind::DatagramTooLong, MAX_UDP_BODY));
        }
        self.route(&msg, reliable, now, out);
        Ok(())
    }

    /// Releases held messages that are due and closes connections that did not send `con`
    /// in time; returns when to come back (local time).
    pub fn tick(&mut self, now: f64, out: &mut HostOutput) -> Option<f64> {
        self.release_due(now, out);
        let silent: Vec<ConnId> = self
            .pending
            .iter()
            .filter(|&&(_, since)| now - since >= CON_TIMEOUT)
            .map(|&(c, _)| c)
            .collect();
        for conn in silent {
            self.refuse(conn, format!("no con within {CON_TIMEOUT} s"), out);
        }
        let held = self.held.next_deadline().map(|t| t.0 + self.started);
        let con = self.pending.iter().map(|&(_, since)| since + CON_TIMEOUT);
        held.into_iter().chain(con).reduce(f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::o2lite::client::{ClientEvent, ClientSession, Output, Received};

    /// Splits framed TCP bytes into message bodies.
    fn bodies(tcp: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = tcp;
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            out.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        out
    }

    /// A client and the host wired back to back in memory.
    struct Pair {
        host: HostSession,
        client: ClientSession,
        conn: ConnId,
        delivered: Vec<(Vec<u8>, bool)>,
        events: Vec<ClientEvent>,
    }

    impl Pair {
        fn new() -> Pair {
            Pair {
                host: HostSession::new(0.0),
                client: ClientSession::new(),
                conn: 1,
                delivered: Vec::new(),
                events: Vec::new(),
            }
        }

        /// Delivers everything both sides want sent until nothing moves.
        fn pump(&mut self, now: f64, mut c: Output, mut h: HostOutput) {
            loop {
                let mut moved = false;
                for body in bodies(&std::mem::take(&mut c.tcp)) {
                    self.host
                        .tcp_frame(self.conn, Some(Ipv4Addr::LOCALHOST), &body, now, &mut h)
                        .unwrap();
                    moved = true;
                }
                for d in std::mem::take(&mut c.udp) {
                    self.host.udp_datagram(&d, now, &mut h).unwrap();
                    moved = true;
                }
                self.events.append(&mut c.events);
                for (conn, frame) in std::mem::take(&mut h.tcp) {
                    assert_eq!(conn, self.conn);
                    for body in bodies(&frame) {
                        let m = decode(&body).unwrap();
                        if self.client.receive(&m, true, now, &mut c) == Received::Deliver {
                            self.delivered.push((body, true));
                        }
                    }
                    moved = true;
                }
                for (_, d) in std::mem::take(&mut h.udp) {
                    let m = decode(&d).unwrap();
                    if self.client.receive(&m, false, now, &mut c) == Received::Deliver {
                        self.delivered.push((d, false));
                    }
                    moved = true;
                }
                if !moved {
                    return;
                }
            }
        }

        fn connect(&mut self) {
            let mut c = Output::default();
            self.host.accepted(self.conn, 0.0);
            self.client
                .connected(0.0, Ipv4Addr::LOCALHOST, 4000, &mut c);
            self.pump(0.0, c, HostOutput::default());
        }
    }

    #[test]
    fn a_connection_that_never_sends_con_is_closed() {
        let mut host = HostSession::new(0.0);
        let mut out = HostOutput::default();
        host.accepted(7, 100.0);
        assert_eq!(host.tick(105.0, &mut out), Some(100.0 + CON_TIMEOUT));
        assert!(out.close.is_empty());
        assert_eq!(host.tick(100.0 + CON_TIMEOUT, &mut out), None);
        assert_eq!(out.close, [7]);
        assert!(matches!(
            out.events[..],
            [HostEvent::Refused { conn: 7, .. }]
        ));
    }

    #[test]
    fn a_client_joins_offers_services_and_synchronises() {
        let mut p = Pair::new();
        let mut c = Output::default();
        p.client.add_service("synth", &mut c).unwrap();
        p.connect();
        assert_eq!(p.host.client_count(), 1);
        assert_eq!(
            p.host.services().collect::<Vec<_>>(),
            [("synth", Owner::Client(1))]
        );
        let mut now = 0.0;
        while !p.client.is_synced() && now < 2.0 {
            let mut c = Output::default();
            now = p.client.tick(now, &mut c).unwrap_or(now + 0.01);
            p.client.tick(now, &mut c);
            p.pump(now, c, HostOutput::default());
        }
        assert!(p.client.is_synced());
        assert!((p.client.global_time(now) - p.host.global_time(now)).abs() < 1e-9);
        assert_eq!(p.host.status("synth"), STATUS_BRIDGE);
    }

    #[test]
    fn unroutable_messages_are_counted_and_reported_once_per_service() {
        let mut host = HostSession::new(0.0);
        let mut h = HostOutput::default();
        let unroutable = |h: &HostOutput| -> Vec<(String, u64)> {
            h.events
                .iter()
                .filter_map(|e| match e {
                    HostEvent::Unroutable { service, total } => Some((service.clone(), *total)),
                    _ => None,
                })
                .collect()
        };
        for address in [&b"/nobody/x"[..], b"/nobody/y", b"!other/z", b"/nobody/x"] {
            host.send(0.0, address, [O2Arg::Int(1)], true, 1.0, &mut h)
                .unwrap();
        }
        assert_eq!(host.unroutable, 4);
        assert_eq!(
            unroutable(&h),
            [("nobody".to_string(), 1), ("other".to_string(), 3)]
        );
        // Once the service has come (and gone), it is reported again.
        let mut h = HostOutput::default();
        host.add_local_service("nobody", &mut h).unwrap();
        assert!(host.remove_local_service("nobody", &mut h));
        host.send(0.0, b"/nobody/x", [O2Arg::Int(1)], true, 1.0, &mut h)
            .unwrap();
        assert_eq!(unroutable(&h), [("nobody".to_string(), 5)]);
        // Names come from peers: only so many are remembered.
        let mut h = HostOutput::default();
        for i in 0..2 * UNROUTABLE_NAMES {
            let address = format!("/s{i}/x");
            host.send(0.0, address.as_bytes(), [O2Arg::Nil], false, 1.0, &mut h)
                .unwrap();
        }
        assert_eq!(unroutable(&h).len(), UNROUTABLE_NAMES - 2);
        assert_eq!(host.unroutable, 5 + 2 * UNROUTABLE_NAMES as u64);
    }

    #[test]
    fn routing_by_service_with_the_senders_reliability_and_timestamps() {
        let mut p = Pair::new();
        let mut c = Output::default();
        p.client.add_service("synth", &mut c).unwrap();
        p.connect();
        let mut h = HostOutput::default();
        assert!(p.host.add_local_service("server", &mut h).is_ok());
        assert!(
            p.host.add_local_service("synth", &mut h).is_err(),
            "taken by the client"
        );
        for bad in ["", "a/b", "!x", &"n".repeat(64)] {
            assert!(p.host.add_local_service(bad, &mut h).is_err(), "{bad:?}");
        }
        p.host
            .send(
                0.0,
                b"/synth/freq",
                [O2Arg::Float(440.0)],
                true,
                1.0,
                &mut h,
            )
            .unwrap();
        p.host
            .send(0.0, b"!synth/gate", [O2Arg::Bool(true)], false, 1.0, &mut h)
            .unwrap();
        p.host
            .send(
                0.0,
                b"/nobody/x",
                std::iter::empty::<O2Arg<'_>>(),
                true,
                1.0,
                &mut h,
            )
            .unwrap();
        p.host
            .send(
                3.0,
                b"/synth/later",
                std::iter::empty::<O2Arg<'_>>(),
                true,
                1.0,
                &mut h,
            )
            .unwrap();
        p.pump(1.0, Output::default(), h);
        let got: Vec<(String, bool)> = p
            .delivered
            .iter()
            .map(|(b, r)| {
                (
                    String::from_utf8_lossy(decode(b).unwrap().address()).into(),
                    *r,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/synth/freq".to_string(), true),
                ("!synth/gate".to_string(), false)
            ]
        );
        assert_eq!(p.host.unroutable, 1);
        let mut h = HostOutput::default();
        assert_eq!(p.host.tick(2.0, &mut h), Some(3.0), "held until its time");
        assert!(h.tcp.is_empty());
        assert_eq!(p.host.tick(3.0, &mut h), None);
        assert_eq!(h.tcp.len(), 1);
        // The client's messages to the host's own service come out as local deliveries.
        let mut c = Output::default();
        crate::o2lite::message::encode_tcp(&mut c.tcp, 0.0, b"/server/echo", [O2Arg::Int(1)])
            .unwrap();
        let mut h = HostOutput::default();
        for body in bodies(&c.tcp) {
            p.host.tcp_frame(1, None, &body, 4.0, &mut h).unwrap();
        }
        assert_eq!(h.local.len(), 1);
        assert!(h.local[0].1);
    }

    #[test]
    fn a_clients_message_is_forwarded_as_its_misc_bit_says_not_as_it_came() {
        let mut p = Pair::new();
        let mut c = Output::default();
        p.client.add_service("synth", &mut c).unwrap();
        p.connect();
        let (mut by_tcp, mut by_udp) = (Vec::new(), Vec::new());
        // Best effort (misc 0) in a TCP frame; reliable (misc 1) in a datagram.
        let mut body = Vec::new();
        crate::o2lite::message::encode_udp(&mut body, 0.0, b"/synth/x", [O2Arg::Int(1)]).unwrap();
        by_tcp.extend_from_slice(&(body.len() as u32).to_be_bytes());
        by_tcp.extend_from_slice(&body);
        let reliable = crate::o2lite::message::MISC_RELIABLE;
        crate::o2lite::message::encode_body(
            &mut by_udp,
            reliable,
            0.0,
            b"/synth/y",
            [O2Arg::Int(2)],
        )
        .unwrap();
        let mut h = HostOutput::default();
        for body in bodies(&by_tcp) {
            p.host
                .tcp_frame(p.conn, Some(Ipv4Addr::LOCALHOST), &body, 1.0, &mut h)
                .unwrap();
        }
        p.host.udp_datagram(&by_udp, 1.0, &mut h).unwrap();
        let sent = |frames: Vec<&[u8]>| -> Vec<String> {
            frames
                .into_iter()
                .map(|b| String::from_utf8_lossy(decode(b).unwrap().address()).into())
                .collect()
        };
        let tcp_bodies: Vec<Vec<u8>> = h.tcp.iter().flat_map(|(_, f)| bodies(f)).collect();
        assert_eq!(
            sent(h.udp.iter().map(|(_, d)| &d[..]).collect()),
            ["/synth/x"]
        );
        assert_eq!(
            sent(tcp_bodies.iter().map(|b| &b[..]).collect()),
            ["/synth/y"]
        );
    }

    #[test]
    fn leaving_removes_services_and_ids_are_not_reused() {
        let mut p = Pair::new();
        let mut c = Output::default();
        p.client.add_service("synth", &mut c).unwrap();
        p.connect();
        let mut h = HostOutput::default();
        p.host.closed(1, &mut h);
        assert_eq!(
            h.events,
            [
                HostEvent::ServiceRemoved {
                    name: "synth".into()
                },
                HostEvent::ClientLeft {
                    conn: 1,
                    bridge_id: 1
                }
            ]
        );
        assert_eq!(p.host.services().count(), 0);
        p.client.disconnected();
        p.conn = 2;
        p.connect();
        assert_eq!(p.client.bridge_id(), Some(2));
    }

    /// The `NotHeld` events in `h`, taken out: reason and total.
    fn not_held_reports(h: &mut HostOutput) -> Vec<(&'static str, u64)> {
        let events = std::mem::take(&mut h.events).into_iter();
        let not_held = events.filter_map(|e| match e {
            HostEvent::NotHeld { reason, total } => Some((reason, total)),
            _ => None,
        });
        not_held.collect()
    }

    #[test]
    fn messages_not_held_are_reported_each_second_and_when_their_service_goes() {
        let mut host = HostSession::new(0.0);
        let mut h = HostOutput::default();
        host.add_local_service("s", &mut h).unwrap();
        let bad = "a timestamp not finite or too far ahead";
        let times = [
            (1.0, Some(1)),
            (1.5, None),
            (1.9, None),
            (2.0, Some(4)),
            (0.5, Some(5)),
        ];
        for (now, total) in times {
            host.send(f64::NAN, b"/s/x", [O2Arg::Int(0)], true, now, &mut h)
                .unwrap();
            let expected: Vec<_> = total.map(|t| (bad, t)).into_iter().collect();
            assert_eq!(not_held_reports(&mut h), expected, "at {now}");
        }
        for ts in [10.0, 11.0] {
            host.send(ts, b"/s/x", [O2Arg::Int(0)], true, 2.0, &mut h)
                .unwrap();
        }
        assert_eq!(host.held.len(), 2);
        assert!(host.remove_local_service("s", &mut h));
        assert_eq!(host.held.len(), 0);
        assert_eq!(
            not_held_reports(&mut h),
            [("its service went before it was due", 7)]
        );
        assert_eq!(host.not_held, 7);
    }

    #[test]
    fn held_messages_are_bounded() {
        let mut host = HostSession::new(0.0);
        let mut h = HostOutput::default();
        host.add_local_service("s", &mut h).unwrap();
        let send = |host: &mut HostSession, ts: f64, arg: O2Arg<'_>, h: &mut HostOutput| {
            host.send(ts, b"/s/x", [arg], true, 1.0, h).unwrap()
        };
        // No times, or too far ahead: dropped, reported once.
        let far = 1.0 + MAX_HOLD_AHEAD;
        for ts in [f64::INFINITY, f64::NAN, f64::NEG_INFINITY, far + 1.0] {
            send(&mut host, ts, O2Arg::Int(0), &mut h);
        }
        let bad = "a timestamp not finite or too far ahead";
        assert_eq!(not_held_reports(&mut h), [(bad, 1)]);
        assert!(h.local.is_empty() && (host.held.len() == 0));
        assert_eq!(host.not_held, 4);
        // Just far enough is held; a delivery makes the next drop reported again.
        send(&mut host, far, O2Arg::Int(0), &mut h);
        send(&mut host, 1.5, O2Arg::Int(0), &mut h);
        assert_eq!(host.tick(1.5, &mut h), Some(far));
        assert_eq!((h.local.len(), host.held.len()), (1, 1));
        // A full queue delivers something early rather than lose it: what is due last (the
        // far one) makes room for a message due sooner; one due no sooner goes itself.
        let full = "the hold queue is full: delivered at once";
        for i in 0..MAX_HELD {
            send(&mut host, 3.0, O2Arg::Int(i as i32), &mut h);
        }
        assert_eq!(host.held.len(), MAX_HELD);
        assert_eq!(not_held_reports(&mut h), [(full, 5)]);
        assert_eq!(h.local.len(), 2, "the one due at 1.5, and the far one");
        let early = decode(&h.local[1].0).unwrap();
        assert_eq!(early.timestamp(), far);
        send(&mut host, 3.0, O2Arg::Int(-1), &mut h);
        assert_eq!(h.local.len(), 3, "due no sooner than the last held: itself");
        let early = decode(&h.local[2].0).unwrap();
        assert_eq!(early.args().next(), Some(O2Arg::Int(-1)));
        h.local.clear();
        host.tick(3.0, &mut h);
        assert_eq!(h.local.len(), MAX_HELD);
        let last = decode(&h.local[MAX_HELD - 1].0).unwrap();
        assert_eq!(last.args().next(), Some(O2Arg::Int(MAX_HELD as i32 - 1)));
        assert_eq!((host.held.len(), host.held.bytes()), (0, 0));
        // So does a queue holding its weight in bytes; the small far one cannot make room
        // for a blob, so it stays and the blob goes early (nothing early for nothing).
        h.local.clear();
        send(&mut host, far, O2Arg::Int(0), &mut h);
        let far_bytes = host.held.bytes();
        let blob = vec![0; 60_000];
        let count = MAX_HELD_BYTES / blob.len() + 1;
        for _ in 0..count {
            send(&mut host, 4.0, O2Arg::Blob(&blob), &mut h);
        }
        assert_eq!(not_held_reports(&mut h), [(full, 7)]);
        assert_eq!(h.local.len(), 1, "the last blob");
        host.tick(4.0, &mut h);
        let big = h.local[0].0.len();
        assert_eq!(h.local.len() - 1, (MAX_HELD_BYTES - far_bytes) / big);
        assert_eq!(h.local.len(), count);
        assert_eq!((host.held.len(), host.held.bytes()), (1, far_bytes));
        // Enough due later makes room: the newest due at 5.0 goes early for one due at 4.5.
        let mut host = HostSession::new(0.0);
        host.add_local_service("s", &mut h).unwrap();
        for _ in 0..MAX_HELD {
            send(&mut host, 5.0, O2Arg::Int(1), &mut h);
        }
        h.local.clear();
        send(&mut host, 4.5, O2Arg::Int(2), &mut h);
        assert_eq!(h.local.len(), 1, "one due at 5.0, the newest");
        assert_eq!(host.held.len(), MAX_HELD);
    }

    #[test]
    fn held_messages_go_with_their_service() {
        let mut host = HostSession::new(0.0);
        let mut h = HostOutput::default();
        join(&mut host, 1, 0.0, &mut h);
        let mut sv_body = Vec::new();
        let sv = [
            O2Arg::Str(b"evil"),
            O2Arg::Int(1),
            O2Arg::Int(1),
            O2Arg::Str(b""),
            O2Arg::Int(0),
        ];
        encode_body(&mut sv_body, 1, 0.0, b"!_o2/o2lite/sv", sv).unwrap();
        host.tcp_frame(1, None, &sv_body, 0.0, &mut h).unwrap();
        host.add_local_service("s", &mut h).unwrap();
        let mut body = Vec::new();
        for _ in 0..MAX_HELD {
            body.clear();
            encode_udp(&mut body, 9e8, b"/evil/x", [O2Arg::Int(0)]).unwrap();
            host.udp_datagram(&body, 1.0, &mut h).unwrap();
        }
        assert_eq!(host.held.len(), MAX_HELD);
        host.closed(1, &mut h);
        assert!(
            (host.held.len() == 0) && host.held.bytes() == 0,
            "gone with the client"
        );
        // A client's message due at 1.5 is held, not delivered early.
        body.clear();
        encode_udp(&mut body, 1.5, b"/s/x", [O2Arg::Int(7)]).unwrap();
        host.udp_datagram(&body, 1.0, &mut h).unwrap();
        assert!(h.local.is_empty());
        assert_eq!(host.tick(1.0, &mut h), Some(1.5));
        // The host's own service withdrawn takes its held messages too.
        assert!(host.remove_local_service("s", &mut h));
        assert!((host.held.len() == 0));
    }

    /// A message that arrives due goes after the held ones due before it, not ahead of
    /// them (they would wait for the next tick).
    #[test]
    fn held_messages_due_go_before_a_later_one() {
        let mut host = HostSession::new(0.0);
        let mut h = HostOutput::default();
        host.add_local_service("s", &mut h).unwrap();
        let mut body = Vec::new();
        for (ts, now, value) in [(1.0, 0.5, 1), (1.2, 1.5, 2)] {
            body.clear();
            encode_udp(&mut body, ts, b"/s/x", [O2Arg::Int(value)]).unwrap();
            host.udp_datagram(&body, now, &mut h).unwrap();
        }
        let order: Vec<_> = h
            .local
            .iter()
            .map(|(m, _)| decode(m).unwrap().args().next())
            .collect();
        assert_eq!(order, [Some(O2Arg::Int(1)), Some(O2Arg::Int(2))]);
    }

    #[test]
    fn services_are_bounded_per_client_and_in_all() {
        let mut host = HostSession::new(0.0);
        let mut h = HostOutput::default();
        let join = |host: &mut HostSession, conn: ConnId, h: &mut HostOutput| {
            let mut body = Vec::new();
            let con = [O2Arg::Str(b"7f000001"), O2Arg::Int(9)];
            encode_body(&mut body, 1, 0.0, b"!_o2/o2lite/con", con).unwrap();
            host.accepted(conn, 0.0);
            host.tcp_frame(conn, None, &body, 0.0, h).unwrap();
        };
        let sv = |host: &mut HostSession, conn: ConnId, name: &str, exists, h: &mut HostOutput| {
            let mut body = Vec::new();
            let args = [
                O2Arg::Str(name.as_bytes()),
                O2Arg::Int(exists),
                O2Arg::Int(1),
                O2Arg::Str(b""),
                O2Arg::Int(0),
            ];
            encode_body(&mut body, 1, 0.0, b"!_o2/o2lite/sv", args).unwrap();
            host.tcp_frame(conn, None, &body, 0.0, h).unwrap();
        };
        let refused = |h: &mut HostOutput| -> Vec<(ConnId, String)> {
            std::mem::take(&mut h.events)
                .into_iter()
                .filter_map(|e| match e {
                    HostEvent::ServiceRefused { conn, name } => Some((conn, name)),
                    _ => None,
                })
                .collect()
        };
        join(&mut host, 1, &mut h);
        for i in 0..MAX_CLIENT_SERVICES + 2 {
            sv(&mut host, 1, &format!("a{i}"), 1, &mut h);
        }
        let last = format!("a{MAX_CLIENT_SERVICES}");
        assert_eq!(refused(&mut h), [(1, last.clone())], "reported once");
        assert_eq!(host.services().count(), MAX_CLIENT_SERVICES);
        // Updating one it offers is no new service; withdrawing one makes room.
        sv(&mut host, 1, "a0", 1, &mut h);
        sv(&mut host, 1, "a1", 0, &mut h);
        sv(&mut host, 1, &last, 1, &mut h);
        assert!(refused(&mut h).is_empty());
        assert_eq!(host.status(&last), STATUS_BRIDGE_NO_TIME);
        // Clients together fill the table up to the bound.
        let mut conn = 1;
        while host.services.len() < MAX_SERVICES {
            conn += 1;
            join(&mut host, conn, &mut h);
            for i in 0..MAX_CLIENT_SERVICES.min(MAX_SERVICES - host.services.len()) {
                sv(&mut host, conn, &format!("c{conn}-{i}"), 1, &mut h);
            }
        }
        assert!(refused(&mut h).is_empty());
        join(&mut host, conn + 1, &mut h);
        sv(&mut host, conn + 1, "late", 1, &mut h);
        assert_eq!(refused(&mut h), [(conn + 1, "late".to_string())]);
        // The host's own services are not limited; a client leaving makes room.
        host.add_local_service("own", &mut h).unwrap();
        host.closed(1, &mut h);
        sv(&mut host, conn + 1, "late", 1, &mut h);
        assert_eq!(host.status("late"), STATUS_BRIDGE_NO_TIME);
        assert_eq!(host.services.len(), MAX_SERVICES - MAX_CLIENT_SERVICES + 2);
    }

    #[test]
    fn bad_first_frames_close_the_connection() {
        let mut host = HostSession::new(0.0);
        let vectors = [
            // A full O2 process's peer handshake.
            "00000001 00000000 00000000 215f6f32 2f647900 2c736973 73696969 00000000 726f7363 6f2d7465 73740000 00020001 30303030 30303030 00000000 37663030 30303031 00000000 00008459 00008875 00000036",
            // The right address with the wrong type tags.
            "000000010000000000000000215f6f322f6f326c6974652f636f6e002c69000000000001",
            // Garbage.
            "deadbeef",
        ];
        for (i, hex) in vectors.iter().enumerate() {
            let bytes = crate::osc::unhex(hex);
            let mut out = HostOutput::default();
            host.accepted(i as u64, 0.0);
            host.tcp_frame(i as u64, None, &bytes, 0.0, &mut out)
                .unwrap();
            assert_eq!(out.close, [i as u64], "vector {i}");
            assert!(matches!(out.events[..], [HostEvent::Refused { .. }]));
        }
        assert_eq!(host.client_count(), 0);
        // The legacy discovery request is dropped without a reply.
        let mut out = HostOutput::default();
        let mut body = Vec::new();
        let dy = [
            O2Arg::Str(b"ens"),
            O2Arg::Str(b"7f000001"),
            O2Arg::Int(0),
            O2Arg::Int(1),
            O2Arg::Int(50),
        ];
        encode_udp(&mut body, 0.0, b"!_o2/o2lite/dy", dy).unwrap();
        host.udp_datagram(&body, 0.0, &mut out).unwrap();
        assert!(out.udp.is_empty() && out.tcp.is_empty());
    }

    /// A client joined on `conn`, from a `con` frame.
    fn join(host: &mut HostSession, conn: ConnId, now: f64, out: &mut HostOutput) {
        let mut body = Vec::new();
        let con = [O2Arg::Str(b"7f000001"), O2Arg::Int(9)];
        encode_body(&mut body, 1, 0.0, b"!_o2/o2lite/con", con).unwrap();
        host.accepted(conn, now);
        host.tcp_frame(conn, None, &body, now, out).unwrap();
    }

    #[test]
    fn what_anyone_sends_cannot_keep_others_from_their_messages() {
        let mut host = HostSession::new(0.0);
        let mut h = HostOutput::default();
        host.add_local_service("s", &mut h).unwrap();
        // Far-future datagrams for a service nobody offers are not held.
        let mut body = Vec::new();
        for _ in 0..MAX_HELD + 10 {
            body.clear();
            encode_udp(&mut body, 1e8, b"/nosuchservice/x", [O2Arg::Int(1)]).unwrap();
            host.udp_datagram(&body, 1.0, &mut h).unwrap();
        }
        assert!((host.held.len() == 0));
        assert_eq!(host.unroutable, (MAX_HELD + 10) as u64);
        // A client's timed message is held and delivered.
        body.clear();
        encode_udp(&mut body, 2.0, b"/s/x", [O2Arg::Int(2)]).unwrap();
        host.udp_datagram(&body, 1.0, &mut h).unwrap();
        assert_eq!(host.held.len(), 1);
        host.tick(2.0, &mut h);
        assert_eq!(h.local.len(), 1);

        // Listings: a burst, then a few a second; a refusal is reported once.
        join(&mut host, 1, 0.0, &mut h);
        let mut ls = Vec::new();
        encode_body(&mut ls, 1, 0.0, b"!_o2/o2lite/ls", [] as [O2Arg<'_>; 0]).unwrap();
        h = HostOutput::default();
        for _ in 0..100 {
            host.tcp_frame(1, None, &ls, 1.0, &mut h).unwrap();
        }
        assert_eq!(h.tcp.len(), LISTING_BURST as usize);
        assert_eq!(h.events, [HostEvent::ListingRefused { conn: 1 }]);
        h = HostOutput::default();
        for _ in 0..3 {
            host.tcp_frame(1, None, &ls, 1.25, &mut h).unwrap();
        }
        assert_eq!(h.tcp.len(), 2, "ten a second: two in 0.25 s");
        assert!(h.events.is_empty());
    }

    #[test]
    fn the_host_application_cannot_send_a_frame_clients_refuse() {
        let mut host = HostSession::new(0.0);
        let mut h = HostOutput::default();
        host.add_local_service("s", &mut h).unwrap();
        let blob = vec![0; MAX_TCP_FRAME];
        let err = host.send(0.0, b"/s/x", [O2Arg::Blob(&blob)], true, 0.0, &mut h);
        assert_eq!(err.unwrap_err().kind, O2ErrorKind::FrameTooLong);
        assert!(h.local.is_empty());
        host.send(0.0, b"/s/x", [O2Arg::Blob(&blob)], false, 0.0, &mut h)
            .unwrap();
        assert_eq!(h.local.len(), 1);
    }

    #[test]
    fn the_host_application_cannot_send_a_client_a_datagram_too_long() {
        let mut p = Pair::new();
        let mut c = Output::default();
        p.client.add_service("synth", &mut c).unwrap();
        p.connect();
        let mut h = HostOutput::default();
        // A body of 65,512 bytes: over a datagram, inside a TCP frame.
        let blob = vec![0; 65_480];
        let err = p
            .host
            .send(0.0, b"/synth/x", [O2Arg::Blob(&blob)], false, 1.0, &mut h);
        assert_eq!(err.unwrap_err().kind, O2ErrorKind::DatagramTooLong);
        assert!(h.udp.is_empty() && h.tcp.is_empty());
        // By TCP it fits.
        p.host
            .send(0.0, b"/synth/x", [O2Arg::Blob(&blob)], true, 1.0, &mut h)
            .unwrap();
        assert_eq!(h.tcp.len(), 1);
    }

    #[test]
    fn bridge_ids_that_run_out_refuse_connections() {
        let mut host = HostSession::new(0.0);
        let mut h = HostOutput::default();
        host.next_bridge = i32::MAX - 1;
        join(&mut host, 1, 0.0, &mut h);
        assert_eq!(host.client_count(), 1);
        join(&mut host, 2, 0.0, &mut h);
        assert_eq!(host.client_count(), 1);
        assert_eq!(h.close, [2]);
        join(&mut host, 3, 0.0, &mut h);
        assert_eq!(h.close, [2, 3]);
    }
}
