//! The O2lite client session (specs/o2lite.md §6–§7), sans-IO: the caller reports the
//! TCP connection coming up or going down, hands in received messages with the local time,
//! calls [`ClientSession::tick`] when the time it returned comes, and sends
//! what [`Output`] collects.
//!
//! Unlike the reference clients, every new connection restarts clock synchronisation and
//! sends `cs/cs` again once synchronised (§6.7), and a host that stops answering clock
//! pings for [`ClientSession::dead_after`] seconds is reported lost.

use super::clock::{ClockSync, SyncUpdate};
use super::message::{encode_tcp, encode_udp, O2Arg, O2Message};

/// The reply address of clock pings.
const CS_PUT: &[u8] = b"!_o2/cs/put";
/// How long to wait for `!_o2/id` after `con`.
const ID_TIMEOUT: f64 = 3.0;

/// The most entries a service list keeps: the host sends them one by one until an empty
/// name, so a list is cut short here. A rosco host lists at most
/// [`MAX_SERVICES`](super::host::MAX_SERVICES) services of clients, plus its own.
pub const MAX_LISTING: usize = 16_384;

/// The most bytes of text (names, processes, properties) a service list keeps: 4 MiB, room
/// for [`MAX_LISTING`] entries with 63-byte names and 190 bytes of properties each.
pub const MAX_LISTING_BYTES: usize = 4 << 20;

/// What happened in a session, for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Discovery found a host of the ensemble; the client connects to it next.
    Discovered {
        /// Its DNS-SD instance name.
        instance: String,
        /// Its TCP address.
        tcp: std::net::SocketAddr,
    },
    /// The host answered `con`: the session is up.
    Connected {
        /// The bridge id the host assigned.
        bridge_id: i32,
    },
    /// The clock is synchronised (and `cs/cs` was sent).
    Synced {
        /// Global time minus local time, in seconds.
        offset: f64,
    },
    /// The session should end (the caller closes the TCP connection and reconnects).
    Lost {
        /// Why.
        reason: &'static str,
    },
    /// A reply to [`ClientSession::query_status`].
    Status {
        /// The service asked about.
        service: String,
        /// O2 status code (-1 unknown, 0..8 as in spec §6.6).
        status: i32,
    },
    /// A complete reply to [`ClientSession::query_list`], cut short after [`MAX_LISTING`]
    /// entries or [`MAX_LISTING_BYTES`] of text.
    List(Vec<ServiceEntry>),
}

/// One entry of the host's service list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Service name.
    pub name: String,
    /// O2 status or type code.
    pub status: i32,
    /// The process offering it (`_o2` for the host and its O2lite clients).
    pub process: String,
    /// Properties, or the tapper of a tap.
    pub properties: String,
}

/// What the session wants sent, and what it has to say.
#[derive(Debug, Default)]
pub struct Output {
    /// Framed TCP bytes to write, in order.
    pub tcp: Vec<u8>,
    /// UDP datagrams for the host's UDP port.
    pub udp: Vec<Vec<u8>>,
    /// Events for the application.
    pub events: Vec<ClientEvent>,
}

/// What became of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A control message, handled by the session.
    Handled,
    /// An application message: dispatch it.
    Deliver,
    /// An application message by UDP while not connected: ignored, as spec §6.8 says (the
    /// last connection's datagrams may still come while the client reconnects); the caller
    /// counts it as dropped.
    Ignored,
    /// Refused, for the reason given (the caller reports it): a message before the host's
    /// id, a control message the host does not send, with other type tags, by UDP where
    /// only the host's TCP connection may send it, or with a time no host can have.
    Refused(&'static str),
}

#[derive(Debug)]
enum Phase {
    Idle,
    AwaitId {
        since: f64,
    },
    Connected {
        bridge_id: i32,
        clock: ClockSync,
        announced: bool,
    },
}

/// One client's session with a host, across reconnections.
#[derive(Debug)]
pub struct ClientSession {
    services: Vec<String>,
    phase: Phase,
    listing: Vec<ServiceEntry>,
    /// Text bytes of the list so far, counting entries cut.
    listing_bytes: usize,
    /// Seconds without a clock reply after which the host is taken for dead.
    pub dead_after: f64,
}

impl Default for ClientSession {
    fn default() -> Self {
        ClientSession::new()
    }
}

impl ClientSession {
    /// A session with no services, not connected.
    pub fn new() -> ClientSession {
        ClientSession {
            services: Vec::new(),
            phase: Phase::Idle,
            listing: Vec::new(),
            listing_bytes: 0,
            dead_after: 30.0,
        }
    }

    /// The services offered (sent again on every connection).
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// The bridge id, once connected.
    pub fn bridge_id(&self) -> Option<i32> {
        match self.phase {
            Phase::Connected { bridge_id, .. } => Some(bridge_id),
            _ => None,
        }
    }

    /// True once the host has answered `con`.
    pub fn is_connected(&self) -> bool {
        self.bridge_id().is_some()
    }

    /// True once the clock is synchronised in this connection.
    pub fn is_synced(&self) -> bool {
        matches!(&self.phase, Phase::Connected { clock, .. } if clock.is_synced())
    }

    /// Global time at local time `now`; -1 before synchronisation.
    pub fn global_time(&self, now: f64) -> f64 {
        match &self.phase {
            Phase::Connected { clock, .. } => clock.global_time(now),
            _ => -1.0,
        }
    }

    /// Offers a service (announced now if connected, and on every connection). The name
    /// must pass [`check_service_name`](super::check_service_name).
    pub fn add_service(&mut self, name: &str, out: &mut Output) -> Result<(), &'static str> {
        super::check_service_name(name)?;
        if !self.services.iter().any(|s| s == name) {
            self.services.push(name.to_string());
            if self.is_connected() {
                send_sv(name, true, out);
            }
        }
        Ok(())
    }

    /// Withdraws a service; false if it was not offered.
    pub fn remove_service(&mut self, name: &str, out: &mut Output) -> bool {
        let Some(i) = self.services.iter().position(|s| s == name) else {
            return false;
        };
        self.services.remove(i);
        if self.is_connected() {
            send_sv(name, false, out);
        }
        true
    }

    /// The TCP connection is up: sends `con` with the address and UDP port at which the
    /// host reaches this client.
    pub fn connected(&mut self, now: f64, ip: std::net::Ipv4Addr, udp_port: u16, out: &mut Output) {
        let hex = format!("{:08x}", u32::from(ip));
        tcp(
            out,
            b"!_o2/o2lite/con",
            &[O2Arg::Str(hex.as_bytes()), O2Arg::Int(udp_port as i32)],
        );
        self.phase = Phase::AwaitId { since: now };
        self.listing.clear();
        self.listing_bytes = 0;
    }

    /// The TCP connection is gone: the bridge id and clock state are forgotten.
    pub fn disconnected(&mut self) {
        self.phase = Phase::Idle;
        self.listing.clear();
        self.listing_bytes = 0;
    }

    /// A message from the host (`via_tcp` tells which transport brought it).
    pub fn receive(
        &mut self,
        msg: &O2Message<'_>,
        via_tcp: bool,
        now: f64,
        out: &mut Output,
    ) -> Received {
        let path = msg.path();
        if msg.service() != b"_o2" {
            return match (self.is_connected(), via_tcp, msg.timestamp().is_finite()) {
                (false, false, _) => Received::Ignored,
                (false, true, _) => Received::Refused("sent before the host's !_o2/id"),
                (true, _, false) => Received::Refused("a timestamp that is not a finite number"),
                (true, _, true) => Received::Deliver,
            };
        }
        let mut args = msg.args();
        match (path, msg.typetags()) {
            (b"_o2/id", b"i") if via_tcp => {
                let Some(O2Arg::Int(bridge_id)) = args.next() else {
                    unreachable!("the type tags say so")
                };
                if !matches!(self.phase, Phase::AwaitId { .. }) {
                    return Received::Refused("an id when none is awaited");
                }
                self.phase = Phase::Connected {
                    bridge_id,
                    clock: ClockSync::new(now),
                    announced: false,
                };
                for s in &self.services {
                    send_sv(s, true, out);
                }
                out.events.push(ClientEvent::Connected { bridge_id });
            }
            (b"_o2/cs/put", b"it") => {
                let (Some(O2Arg::Int(seq)), Some(O2Arg::Time(host_time))) =
                    (args.next(), args.next())
                else {
                    unreachable!("the type tags say so")
                };
                // Before the id (a reply to a ping of the last connection): stale.
                let Phase::Connected {
                    clock, announced, ..
                } = &mut self.phase
                else {
                    return Received::Handled;
                };
                match clock.reply(seq, host_time, now) {
                    SyncUpdate::Synced { offset } if !*announced => {
                        *announced = true;
                        tcp(out, b"!_o2/o2lite/cs/cs", &[]);
                        out.events.push(ClientEvent::Synced { offset });
                    }
                    SyncUpdate::Unusable => {
                        return Received::Refused(
                            "a clock reply with a time no host can have (not finite, \
                             negative, or past 10^10 s)",
                        )
                    }
                    _ => {}
                }
            }
            // Replies to queries come by TCP (spec §6.6); by UDP anyone could send them.
            (b"_o2/st", b"si") if via_tcp => {
                let (Some(O2Arg::Str(name)), Some(O2Arg::Int(status))) = (args.next(), args.next())
                else {
                    unreachable!("the type tags say so")
                };
                out.events.push(ClientEvent::Status {
                    service: String::from_utf8_lossy(name).into_owned(),
                    status,
                });
            }
            (b"_o2/ls", b"siss") if via_tcp => {
                let text = |a: Option<O2Arg<'_>>| match a {
                    Some(O2Arg::Str(s)) => String::from_utf8_lossy(s).into_owned(),
                    _ => String::new(),
                };
                let name = text(args.next());
                let Some(O2Arg::Int(status)) = args.next() else {
                    unreachable!("the type tags say so")
                };
                let (process, properties) = (text(args.next()), text(args.next()));
                if name.is_empty() {
                    self.listing_bytes = 0;
                    out.events
                        .push(ClientEvent::List(std::mem::take(&mut self.listing)));
                } else {
                    // Entries cut count too, so the list is cut short rather than holed.
                    let size = name.len() + process.len() + properties.len();
                    self.listing_bytes = self.listing_bytes.saturating_add(size);
                    if self.listing.len() < MAX_LISTING && self.listing_bytes <= MAX_LISTING_BYTES {
                        self.listing.push(ServiceEntry {
                            name,
                            status,
                            process,
                            properties,
                        });
                    }
                }
            }
            (b"_o2/id", b"i") | (b"_o2/st", b"si") | (b"_o2/ls", b"siss") => {
                return Received::Refused(
                    "by UDP, where only the host's TCP connection may send it",
                )
            }
            (b"_o2/id" | b"_o2/cs/put" | b"_o2/st" | b"_o2/ls", _) => {
                return Received::Refused("other type tags than the host sends")
            }
            _ => return Received::Refused("not a message a host sends to a client"),
        }
        Received::Handled
    }

    /// Sends due clock pings and notices a host that does not answer; returns when to call
    /// again (local seconds).
    pub fn tick(&mut self, now: f64, out: &mut Output) -> Option<f64> {
        match &mut self.phase {
            Phase::Idle => None,
            Phase::AwaitId { since } => {
                if now - *since >= ID_TIMEOUT {
                    out.events.push(ClientEvent::Lost {
                        reason: "the host did not answer con",
                    });
                    self.phase = Phase::Idle;
                    return None;
                }
                Some(*since + ID_TIMEOUT)
            }
            Phase::Connected {
                bridge_id, clock, ..
            } => {
                if clock.silence(now) >= self.dead_after {
                    out.events.push(ClientEvent::Lost {
                        reason: "the host stopped answering clock pings",
                    });
                    self.phase = Phase::Idle;
                    return None;
                }
                if let Some(seq) = clock.poll(now) {
                    let mut datagram = Vec::new();
                    let args = [O2Arg::Int(*bridge_id), O2Arg::Int(seq), O2Arg::Str(CS_PUT)];
                    encode_udp(&mut datagram, 0.0, b"!_o2/o2lite/cs/get", args)
                        .expect("a well-formed ping");
                    out.udp.push(datagram);
                }
                // Called back at the next ping, or sooner when the host would by then have
                // been silent too long (pings are 10 s apart once synced: a 30 s silence
                // was noticed up to 10 s late).
                // (No silence before the first reply: a host that never answered is pinged
                // on for good, spec §7.)
                let silent_at = now - clock.silence(now) + self.dead_after;
                Some(match clock.silence(now) > 0.0 {
                    true => clock.next_ping().min(silent_at),
                    false => clock.next_ping(),
                })
            }
        }
    }

    /// Asks the host for a service's status (answered by a [`ClientEvent::Status`]).
    pub fn query_status(&self, service: &str, out: &mut Output) -> bool {
        self.is_connected() && {
            tcp(out, b"/_o2/o2lite/st", &[O2Arg::Str(service.as_bytes())]);
            true
        }
    }

    /// Asks the host for its service list (answered by a [`ClientEvent::List`]).
    pub fn query_list(&self, out: &mut Output) -> bool {
        self.is_connected() && {
            tcp(out, b"/_o2/o2lite/ls", &[]);
            true
        }
    }
}

fn send_sv(name: &str, exists: bool, out: &mut Output) {
    let args = [
        O2Arg::Str(name.as_bytes()),
        O2Arg::Int(exists as i32),
        O2Arg::Int(1),
        O2Arg::Str(b""),
        O2Arg::Int(0),
    ];
    tcp(out, b"!_o2/o2lite/sv", &args);
}

/// Appends a control message to the TCP output (control messages are always well formed).
fn tcp(out: &mut Output, address: &[u8], args: &[O2Arg<'_>]) {
    encode_tcp(&mut out.tcp, 0.0, address, args).expect("a well-formed control message");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::o2lite::message::decode;
    use crate::osc::unhex as hex;
    use std::net::Ipv4Addr;

    /// Splits framed TCP output into (address, typetags) pairs.
    fn frames(tcp: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = tcp;
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let m = decode(&rest[4..4 + len]).unwrap();
            out.push((
                String::from_utf8_lossy(m.address()).into(),
                String::from_utf8_lossy(m.typetags()).into(),
            ));
            rest = &rest[4 + len..];
        }
        out
    }

    fn host_msg(buf: &mut Vec<u8>, address: &[u8], args: &[O2Arg<'_>]) {
        buf.clear();
        crate::o2lite::message::encode_body(buf, 1, 0.0, address, args).unwrap();
    }

    #[test]
    fn connect_offers_services_then_synchronises() {
        let mut s = ClientSession::new();
        let mut out = Output::default();
        s.add_service("client", &mut out).unwrap();
        assert!(out.tcp.is_empty(), "not sent before connecting");
        s.connected(0.0, Ipv4Addr::LOCALHOST, 47035, &mut out);
        // Byte-exact with the captured `con` vector.
        assert_eq!(
            out.tcp,
            hex("00000030000000010000000000000000215f6f322f6f326c6974652f636f6e002c7369003766303030303031000000000000b7bb")
        );
        out.tcp.clear();
        let mut buf = Vec::new();
        host_msg(&mut buf, b"/app/x", &[]);
        assert_eq!(
            s.receive(&decode(&buf).unwrap(), false, 0.0, &mut out),
            Received::Ignored,
            "by UDP: maybe the last connection's"
        );
        assert_eq!(
            s.receive(&decode(&buf).unwrap(), true, 0.0, &mut out),
            Received::Refused("sent before the host's !_o2/id")
        );
        host_msg(&mut buf, b"!_o2/id", &[O2Arg::Int(7)]);
        assert_eq!(
            s.receive(&decode(&buf).unwrap(), true, 0.001, &mut out),
            Received::Handled
        );
        assert_eq!(out.events, [ClientEvent::Connected { bridge_id: 7 }]);
        assert_eq!(
            frames(&out.tcp),
            [("!_o2/o2lite/sv".into(), "siisi".into())]
        );
        out.tcp.clear();
        // Pings every 100 ms from 50 ms; the host answers with its clock 40 s ahead.
        let mut now = 0.001;
        let mut synced = None;
        while synced.is_none() && now < 2.0 {
            now = s.tick(now, &mut out).unwrap();
            s.tick(now, &mut out);
            for d in std::mem::take(&mut out.udp) {
                let ping = decode(&d).unwrap();
                assert_eq!(ping.address(), b"!_o2/o2lite/cs/get");
                let seq = ping.args().nth(1).unwrap();
                host_msg(&mut buf, b"!_o2/cs/put", &[seq, O2Arg::Time(now + 40.0)]);
                s.receive(&decode(&buf).unwrap(), false, now, &mut out);
            }
            synced = out.events.iter().find_map(|e| match e {
                ClientEvent::Synced { offset } => Some(*offset),
                _ => None,
            });
        }
        assert!((synced.unwrap() - 40.0).abs() < 1e-9);
        assert!(
            (now - 0.451).abs() < 0.01,
            "5 replies 100 ms apart from 50 ms: {now}"
        );
        assert_eq!(frames(&out.tcp), [("!_o2/o2lite/cs/cs".into(), "".into())]);
        assert!((s.global_time(now) - now - 40.0).abs() < 1e-9);
        host_msg(&mut buf, b"!client/x", &[]);
        assert_eq!(
            s.receive(&decode(&buf).unwrap(), false, now, &mut out),
            Received::Deliver
        );
    }

    #[test]
    fn reconnecting_resends_services_and_resynchronises() {
        let mut s = ClientSession::new();
        let mut out = Output::default();
        s.add_service("a", &mut out).unwrap();
        s.connected(0.0, Ipv4Addr::LOCALHOST, 1, &mut out);
        let mut buf = Vec::new();
        host_msg(&mut buf, b"!_o2/id", &[O2Arg::Int(1)]);
        s.receive(&decode(&buf).unwrap(), true, 0.0, &mut out);
        s.add_service("b", &mut out).unwrap();
        s.disconnected();
        assert_eq!(s.global_time(1.0), -1.0);
        out = Output::default();
        s.connected(5.0, Ipv4Addr::LOCALHOST, 1, &mut out);
        host_msg(&mut buf, b"!_o2/id", &[O2Arg::Int(2)]);
        s.receive(&decode(&buf).unwrap(), true, 5.0, &mut out);
        let sv: Vec<_> = frames(&out.tcp)
            .into_iter()
            .filter(|f| f.0 == "!_o2/o2lite/sv")
            .collect();
        assert_eq!(sv.len(), 2, "both services again");
        assert!(!s.is_synced());
        assert!(s.remove_service("a", &mut out));
        assert!(!s.remove_service("a", &mut out));
        assert!(s.add_service("bad/name", &mut out).is_err());
    }

    #[test]
    fn silent_hosts_are_lost() {
        let mut s = ClientSession::new();
        let mut out = Output::default();
        s.connected(0.0, Ipv4Addr::LOCALHOST, 1, &mut out);
        assert_eq!(s.tick(1.0, &mut out), Some(3.0));
        assert_eq!(s.tick(3.0, &mut out), None);
        assert!(matches!(out.events[..], [ClientEvent::Lost { .. }]));
        out = Output::default();
        s.dead_after = 2.0;
        s.connected(10.0, Ipv4Addr::LOCALHOST, 1, &mut out);
        let mut buf = Vec::new();
        host_msg(&mut buf, b"!_o2/id", &[O2Arg::Int(3)]);
        s.receive(&decode(&buf).unwrap(), true, 10.0, &mut out);
        // A host that has never answered a ping is pinged on (spec §7), for good.
        let mut now = 10.0;
        while now < 60.0 {
            now = s.tick(now, &mut out).unwrap();
        }
        assert!(s.is_connected());
        assert!(!out
            .events
            .iter()
            .any(|e| matches!(e, ClientEvent::Lost { .. })));
        // Once it has, falling silent for `dead_after` loses it.
        let ping = decode(out.udp.last().unwrap()).unwrap();
        let seq = ping.args().nth(1).unwrap();
        host_msg(&mut buf, b"!_o2/cs/put", &[seq, O2Arg::Time(now)]);
        s.receive(&decode(&buf).unwrap(), false, now, &mut out);
        // Called back when the silence would be too long, not at the next ping only.
        s.dead_after = 0.2;
        let next = s.tick(now + 0.1, &mut out).unwrap();
        assert!(next <= now + 0.2 + 1e-9, "{next} after {now}");
        s.dead_after = 2.0;
        s.tick(now + 1.0, &mut out);
        assert!(s.is_connected());
        s.tick(now + 2.5, &mut out);
        assert!(!s.is_connected());
        assert!(matches!(out.events.last(), Some(ClientEvent::Lost { .. })));
    }

    #[test]
    fn status_and_list_replies() {
        let mut s = ClientSession::new();
        let mut out = Output::default();
        assert!(!s.query_list(&mut out));
        s.connected(0.0, Ipv4Addr::LOCALHOST, 1, &mut out);
        let mut buf = Vec::new();
        host_msg(&mut buf, b"!_o2/id", &[O2Arg::Int(1)]);
        s.receive(&decode(&buf).unwrap(), true, 0.0, &mut out);
        out = Output::default();
        assert!(s.query_status("server", &mut out));
        assert!(s.query_list(&mut out));
        // Byte-exact with the captured st/ls queries.
        assert_eq!(
            out.tcp,
            hex(concat!(
                // st_query
                "00000028000000010000000000000000",
                "2f5f6f322f6f326c6974652f737400002c7300007365727665720000",
                // ls_query
                "00000020000000010000000000000000",
                "2f5f6f322f6f326c6974652f6c7300002c000000",
            ))
        );
        host_msg(
            &mut buf,
            b"!_o2/st",
            &[O2Arg::Str(b"server"), O2Arg::Int(4)],
        );
        s.receive(&decode(&buf).unwrap(), true, 0.0, &mut out);
        for (name, status) in [(&b"client"[..], 6), (b"", 0)] {
            host_msg(
                &mut buf,
                b"!_o2/ls",
                &[
                    O2Arg::Str(name),
                    O2Arg::Int(status),
                    O2Arg::Str(b"_o2"),
                    O2Arg::Str(b""),
                ],
            );
            s.receive(&decode(&buf).unwrap(), true, 0.0, &mut out);
        }
        assert_eq!(out.events.len(), 2);
        assert_eq!(
            out.events[0],
            ClientEvent::Status {
                service: "server".into(),
                status: 4
            }
        );
        let ClientEvent::List(list) = &out.events[1] else {
            panic!()
        };
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "client");
    }

    #[test]
    fn lists_come_by_tcp_and_are_cut_short() {
        let mut s = ClientSession::new();
        let mut out = Output::default();
        s.connected(0.0, Ipv4Addr::LOCALHOST, 1, &mut out);
        let mut buf = Vec::new();
        host_msg(&mut buf, b"!_o2/id", &[O2Arg::Int(1)]);
        s.receive(&decode(&buf).unwrap(), true, 0.0, &mut out);
        out = Output::default();
        let mut entry = |s: &mut ClientSession, name: &[u8], props: &[u8], via_tcp| {
            let args = [
                O2Arg::Str(name),
                O2Arg::Int(4),
                O2Arg::Str(b"_o2"),
                O2Arg::Str(props),
            ];
            host_msg(&mut buf, b"!_o2/ls", &args);
            s.receive(&decode(&buf).unwrap(), via_tcp, 0.0, &mut out)
        };
        // By UDP (anyone can send that), neither entries nor the end are taken.
        let by_udp = Received::Refused("by UDP, where only the host's TCP connection may send it");
        assert_eq!(entry(&mut s, b"x", b"", false), by_udp);
        assert_eq!(entry(&mut s, b"", b"", false), by_udp);
        // By TCP, a list too long is cut at MAX_LISTING entries ...
        for i in 0..MAX_LISTING + 10 {
            assert_eq!(
                entry(&mut s, format!("s{i}").as_bytes(), b"", true),
                Received::Handled
            );
        }
        entry(&mut s, b"", b"", true);
        // ... or at MAX_LISTING_BYTES of text, and not holed by a short entry after.
        let props = vec![b'p'; 60_000];
        for _ in 0..MAX_LISTING_BYTES / props.len() + 1 {
            entry(&mut s, b"big", &props, true);
        }
        entry(&mut s, b"small", b"", true);
        entry(&mut s, b"", b"", true);
        entry(&mut s, b"after", b"", true);
        entry(&mut s, b"", b"", true);
        let lists: Vec<&Vec<ServiceEntry>> = out
            .events
            .iter()
            .map(|e| match e {
                ClientEvent::List(l) => l,
                e => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(lists.len(), 3);
        assert_eq!(lists[0].len(), MAX_LISTING);
        assert_eq!(
            lists[0][MAX_LISTING - 1].name,
            format!("s{}", MAX_LISTING - 1)
        );
        assert_eq!(lists[1].len(), MAX_LISTING_BYTES / (props.len() + 6));
        assert!(lists[1].iter().all(|e| e.name == "big"));
        assert_eq!(lists[2].len(), 1, "the next list is whole");
        // A status reply by UDP is dropped too.
        host_msg(
            &mut buf,
            b"!_o2/st",
            &[O2Arg::Str(b"server"), O2Arg::Int(4)],
        );
        assert_eq!(
            s.receive(&decode(&buf).unwrap(), false, 0.0, &mut out),
            by_udp
        );
    }
}
