//! O2lite channels: `o2lite://ensemble@host:port` (a client) and
//! `o2lite-host://ensemble[:port]` (a host). Each is a stream client or listener (so it
//! reconnects, accepts and frames like any TCP channel) with an [`O2Role`]: the sans-IO
//! session, its UDP socket and its clock. This file turns between the two: O2 bytes to the
//! session and the session's output to sockets, and O2 application messages to rosco's
//! method table (specs/o2lite.md §16).

use super::channel::Channel;
use crate::dispatch::O2Stamp;
use crate::error::Error;
use crate::o2lite::client::{ClientEvent, ClientSession, Output};
use crate::o2lite::discovery::{
    Advertisement, Browser, Candidate, O2ProcName, Rejection, RESTART_INTERVAL,
};
use crate::o2lite::host::{HostOutput, HostSession};
use crate::o2lite::message::{encode_tcp, O2Arg, O2Args, O2Message};
use crate::osc::{Arg, PacketWriter};
use crate::thread_buf::with_buf;
use crate::time::TimeTag;
use crate::transport::stream::StreamConn;
use crate::transport::url::UrlError;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

/// The O2 side of a channel.
pub(crate) enum O2Role {
    Client {
        session: Mutex<ClientSession>,
        udp: UdpSocket,
        /// The host's UDP port, when known; without it everything goes by TCP.
        host_udp: Mutex<Option<SocketAddr>>,
        epoch: Instant,
        /// Without a configured host: the DNS-SD browser, and when browsing last started.
        discovery: Option<(Browser, Mutex<Instant>)>,
    },
    Host {
        session: Mutex<HostSession>,
        udp: UdpSocket,
        epoch: Instant,
        /// Output produced by sends on other threads, for the I/O loop to carry out.
        pending: Mutex<VecDeque<HostOutput>>,
        /// The DNS-SD record, withdrawn when the channel goes.
        _advertisement: Option<Advertisement>,
    },
}

impl O2Role {
    pub(crate) fn client(host_udp: Option<SocketAddr>, udp_port: u16) -> std::io::Result<O2Role> {
        let udp = UdpSocket::bind(("0.0.0.0", udp_port))?;
        udp.set_nonblocking(true)?;
        Ok(O2Role::Client {
            session: Mutex::new(ClientSession::new()),
            udp,
            host_udp: Mutex::new(host_udp),
            epoch: Instant::now(),
            discovery: None,
        })
    }

    /// A client that finds its host by DNS-SD.
    pub(crate) fn discovering(ensemble: &str) -> std::io::Result<O2Role> {
        let mut role = O2Role::client(None, 0)?;
        if let O2Role::Client { discovery, .. } = &mut role {
            *discovery = Some((Browser::start(ensemble)?, Mutex::new(Instant::now())));
        }
        Ok(role)
    }

    /// A host, advertised by DNS-SD as `(ensemble, tcp_port)` when given.
    pub(crate) fn host(udp_port: u16, advertise: Option<(&str, u16)>) -> std::io::Result<O2Role> {
        let udp = UdpSocket::bind(("0.0.0.0", udp_port))?;
        udp.set_nonblocking(true)?;
        let advertisement = match advertise {
            Some((ensemble, tcp)) => {
                let udp_port = udp.local_addr()?.port();
                Some(Advertisement::start(
                    ensemble,
                    &O2ProcName::local(tcp, udp_port),
                )?)
            }
            None => None,
        };
        Ok(O2Role::Host {
            session: Mutex::new(HostSession::new(0.0)),
            udp,
            epoch: Instant::now(),
            pending: Mutex::new(VecDeque::new()),
            _advertisement: advertisement,
        })
    }

    /// Discovery: the next host to try, if browsing found one; restarts browsing when it
    /// has found nothing for a while (spec §4.1).
    pub(crate) fn next_candidate(&self) -> Option<Candidate> {
        let O2Role::Client {
            discovery: Some((browser, since)),
            host_udp,
            ..
        } = self
        else {
            return None;
        };
        match browser.try_next() {
            Some(c) => {
                *host_udp.lock() = Some(c.udp);
                Some(c)
            }
            None => {
                let mut since = since.lock();
                if since.elapsed() >= RESTART_INTERVAL {
                    *since = Instant::now();
                    let _ = browser.restart();
                }
                None
            }
        }
    }

    /// Hosts of the ensemble that a discovering client's browsing refused since the last
    /// call, and why.
    pub(crate) fn refused_hosts(&self) -> Vec<(String, Rejection)> {
        match self {
            O2Role::Client {
                discovery: Some((browser, _)),
                ..
            } => browser.take_refused(),
            _ => Vec::new(),
        }
    }

    /// True for a client that finds its host by discovery.
    pub(crate) fn discovers(&self) -> bool {
        matches!(
            self,
            O2Role::Client {
                discovery: Some(_),
                ..
            }
        )
    }

    pub(crate) fn udp(&self) -> &UdpSocket {
        match self {
            O2Role::Client { udp, .. } | O2Role::Host { udp, .. } => udp,
        }
    }

    /// Seconds on this role's local clock.
    pub(crate) fn now(&self) -> f64 {
        match self {
            O2Role::Client { epoch, .. } | O2Role::Host { epoch, .. } => {
                epoch.elapsed().as_secs_f64()
            }
        }
    }

    /// The local time `secs` from the epoch, as an `Instant`; `None` when it is too far
    /// away to represent (a peer's timestamp can be any number): it never comes.
    pub(crate) fn instant(&self, secs: f64) -> Option<Instant> {
        let epoch = match self {
            O2Role::Client { epoch, .. } | O2Role::Host { epoch, .. } => *epoch,
        };
        let after = std::time::Duration::try_from_secs_f64(secs.max(0.0)).ok()?;
        epoch.checked_add(after)
    }

    /// Global time now (-1 for a client not yet synchronised).
    pub(crate) fn global_time(&self) -> f64 {
        let now = self.now();
        match self {
            O2Role::Client { session, .. } => session.lock().global_time(now),
            O2Role::Host { session, .. } => session.lock().global_time(now),
        }
    }
}

/// Rewrites an O2 application message as an OSC message for rosco's method table: the
/// leading `!` becomes `/`; `t` (global seconds) travels as a 32.32 fixed-point timetag of
/// those seconds; `B` stays `B` (an O2-only type); a vector becomes an array of its
/// elements. `address` is scratch room for the rewritten address, reused from message to
/// message so that receiving allocates nothing.
pub(crate) fn to_osc(
    msg: &O2Message<'_>,
    address: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    // A time rosco cannot carry is refused, not changed (spec §16). Vectors hold no `t`:
    // a message without one in its type tags is not walked twice.
    let args = msg.typetags().contains(&b't').then(|| msg.args());
    let times = args
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, a)| match a {
            O2Arg::Time(t) => Some((i, t)),
            _ => None,
        });
    for (index, t) in times {
        if seconds_to_fixed(t).is_none() {
            return Err(format!(
                "argument {index}: time {t} is outside 0 to 2^32 seconds, what rosco carries"
            ));
        }
    }
    address.clear();
    address.push(b'/');
    address.extend_from_slice(msg.path());
    let args = OscArgs {
        args: msg.args(),
        vector: None,
    };
    PacketWriter::with_options(out, &crate::osc::O2_ENCODE)
        .message_iter(&address[..], args)
        .map_err(|e| e.to_string())
}

/// The OSC form of an O2 message's arguments, one at a time.
#[derive(Clone)]
struct OscArgs<'a> {
    args: O2Args<'a>,
    /// A vector being expanded into an array: its element code and remaining elements.
    vector: Option<(u8, std::slice::ChunksExact<'a, u8>)>,
}

impl<'a> Iterator for OscArgs<'a> {
    type Item = Arg<'a>;

    fn next(&mut self) -> Option<Arg<'a>> {
        if let Some((elem, elements)) = &mut self.vector {
            let elem = *elem;
            let Some(e) = elements.next() else {
                self.vector = None;
                return Some(Arg::ArrayEnd);
            };
            let word = |n: usize| e[..n].iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
            return Some(match elem {
                b'i' => Arg::Int(word(4) as u32 as i32),
                b'f' => Arg::Float(f32::from_bits(word(4) as u32)),
                b'h' => Arg::Long(word(8) as i64),
                _ => Arg::Double(f64::from_bits(word(8))),
            });
        }
        Some(match self.args.next()? {
            O2Arg::Int(v) => Arg::Int(v),
            O2Arg::Float(v) => Arg::Float(v),
            O2Arg::Str(s) => Arg::Str(s),
            O2Arg::Double(v) => Arg::Double(v),
            // Checked by `to_osc`.
            O2Arg::Time(t) => Arg::Time(seconds_to_fixed(t).unwrap_or_default()),
            O2Arg::Long(v) => Arg::Long(v),
            O2Arg::Bool(b) => Arg::Bool(b),
            O2Arg::Blob(b) => Arg::Blob(b),
            O2Arg::True => Arg::True,
            O2Arg::False => Arg::False,
            O2Arg::Nil => Arg::Nil,
            O2Arg::Infinitum => Arg::Impulse,
            O2Arg::Char(c) => Arg::Char(c),
            O2Arg::Midi(m) => Arg::Midi(m),
            O2Arg::Symbol(s) => Arg::Symbol(s),
            O2Arg::ArrayStart => Arg::ArrayStart,
            O2Arg::ArrayEnd => Arg::ArrayEnd,
            O2Arg::Vector { elem, data } => {
                let size = crate::o2lite::message::vector_elem_size(elem).unwrap_or(4);
                self.vector = Some((elem, data.chunks_exact(size)));
                Arg::ArrayStart
            }
        })
    }
}

/// The channel URL for an O2lite client of `ensemble`: discovery when `host` is `None`,
/// else `host:port` or `host:port:udp_port` (the host's UDP port, for best-effort sends).
/// Characters that would change the URL's structure are refused rather than passed on.
pub fn o2lite_url(ensemble: &str, host: Option<&str>) -> Result<String, UrlError> {
    let refuse = |part: &str, what: &str, reason| UrlError {
        url: format!("o2lite://{ensemble}@{}", host.unwrap_or("")),
        part: format!("{what} '{part}'"),
        reason,
    };
    if ensemble.is_empty() || ensemble.contains(['/', '?', '#', '@', ':']) {
        return Err(refuse(
            ensemble,
            "ensemble",
            "empty, or holds one of / ? # @ :",
        ));
    }
    let Some(hp) = host else {
        return Ok(format!("o2lite://{ensemble}"));
    };
    if hp.contains(['/', '?', '#', '@']) {
        return Err(refuse(hp, "host", "holds one of / ? # @"));
    }
    Ok(match hp.rsplitn(3, ':').collect::<Vec<_>>()[..] {
        [udp, tcp, h] if udp.parse::<u16>().is_ok() && tcp.parse::<u16>().is_ok() => {
            format!("o2lite://{ensemble}@{h}:{tcp}?udp_port={udp}")
        }
        _ => format!("o2lite://{ensemble}@{hp}"),
    })
}

/// O2 global seconds as a 32.32 fixed-point value (to the nearest 2^-32 s), the form an
/// O2 `t` takes inside rosco; `None` for seconds it cannot hold: negative (O2's -1 for
/// "no clock yet"), 2^32 or more, or not a number.
pub fn seconds_to_fixed(t: f64) -> Option<TimeTag> {
    (0.0..FIXED_ONE)
        .contains(&t)
        .then(|| TimeTag::from_bits((t * FIXED_ONE).round() as u64))
}

/// One second in 32.32 fixed point.
const FIXED_ONE: f64 = 4_294_967_296.0;

/// The inverse of [`seconds_to_fixed`].
pub fn fixed_to_seconds(t: TimeTag) -> f64 {
    t.to_bits() as f64 / FIXED_ONE
}

/// The O2 form of OSC arguments, checked first: OSC colours have no O2 form. A timetag
/// argument is taken as O2 global seconds in 32.32 fixed point.
pub(crate) fn o2_args<'a>(
    args: impl Iterator<Item = Arg<'a>> + Clone,
) -> Result<impl Iterator<Item = O2Arg<'a>> + Clone, Error> {
    match args.clone().any(|a| matches!(a, Arg::Rgba(_))) {
        false => Ok(args.filter_map(o2_arg)),
        true => Err(Error::Unsupported("O2 has no RGBA type")),
    }
}

/// One OSC argument as O2 sends it; `None` for an RGBA colour.
fn o2_arg(a: Arg<'_>) -> Option<O2Arg<'_>> {
    Some(match a {
        Arg::Int(v) => O2Arg::Int(v),
        Arg::Float(v) => O2Arg::Float(v),
        Arg::Str(s) => O2Arg::Str(s),
        Arg::Blob(b) => O2Arg::Blob(b),
        Arg::Long(v) => O2Arg::Long(v),
        Arg::Time(t) => O2Arg::Time(fixed_to_seconds(t)),
        Arg::Double(v) => O2Arg::Double(v),
        Arg::Symbol(s) => O2Arg::Symbol(s),
        Arg::Char(c) => O2Arg::Char(c),
        Arg::Midi(m) => O2Arg::Midi(m),
        // Booleans are written as O2 booleans (spec §16).
        Arg::True | Arg::Bool(true) => O2Arg::Bool(true),
        Arg::False | Arg::Bool(false) => O2Arg::Bool(false),
        Arg::Nil => O2Arg::Nil,
        Arg::Impulse => O2Arg::Infinitum,
        Arg::ArrayStart => O2Arg::ArrayStart,
        Arg::ArrayEnd => O2Arg::ArrayEnd,
        Arg::Rgba(_) => return None,
    })
}

/// Stamps what the method table learns of an O2 message.
pub(crate) fn stamp(msg: &O2Message<'_>, via_tcp: bool) -> O2Stamp {
    O2Stamp {
        timestamp: msg.timestamp(),
        reliable: via_tcp,
        literal: msg.address().first() == Some(&b'!'),
    }
}

thread_local! {
    /// The O2 datagram or frame a client sends, reused (the OSC form being converted may
    /// sit in the context's own encode buffer).
    static SEND_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Sends an application message on an O2 channel (TCP when `reliable`). A client's send
/// allocates nothing once this thread's buffer has grown.
pub(crate) fn send<'a>(
    ch: &Channel,
    role: &O2Role,
    timestamp: f64,
    reliable: bool,
    address: &[u8],
    args: impl Iterator<Item = O2Arg<'a>> + Clone,
) -> Result<bool, Error> {
    let o2_err = |e: crate::o2lite::message::O2Error| {
        use crate::o2lite::message::O2ErrorKind;
        Error::Unsupported(match e.kind {
            O2ErrorKind::FrameTooLong => "an O2 TCP message is limited to 64 KiB",
            O2ErrorKind::DatagramTooLong => "an O2 UDP message is limited to 65,507 bytes",
            _ => "not a valid O2 message",
        })
    };
    // O2 times are seconds of global time: 0 for "now", else a time past the start.
    if !(timestamp.is_finite() && timestamp >= 0.0) {
        return Err(Error::Unsupported(
            "an O2 timestamp is seconds of global time, finite and not negative",
        ));
    }
    match role {
        O2Role::Client {
            session, host_udp, ..
        } => {
            let conn = ch.connected_stream().ok_or(Error::Closed)?;
            let session = session.lock();
            // The host closing the connection ends the session, which lingers only while
            // the application takes what the host sent before: nothing sent now arrives.
            if !session.is_connected() || conn.has_peer_finished() {
                return Err(Error::Closed);
            }
            // §1, §5: a client's timestamps are global time, which it knows once synced.
            if timestamp != 0.0 && !session.is_synced() {
                return Err(Error::Unsupported(
                    "a timestamp before the clock is synchronised (send 0, or wait for Synced)",
                ));
            }
            drop(session);
            let host_udp = *host_udp.lock();
            with_buf(&SEND_BUF, |buf| {
                buf.clear();
                match (reliable, host_udp) {
                    (false, Some(to)) => {
                        crate::o2lite::message::encode_udp(buf, timestamp, address, args)
                            .map_err(o2_err)?;
                        role.udp().send_to(buf, to)?;
                        Ok(false)
                    }
                    _ => {
                        encode_tcp(buf, timestamp, address, args).map_err(o2_err)?;
                        conn.send_framed(buf).map_err(super::channel::stream_error)
                    }
                }
            })
        }
        O2Role::Host { .. } => {
            let now = role.now();
            let send = |s: &mut HostSession, out: &mut HostOutput| {
                s.send(timestamp, address, args, reliable, now, out)
            };
            // The host's own output is carried out by the I/O loop.
            if let Some(sent) = host_turn(role, send) {
                sent.map_err(o2_err)?;
            }
            Ok(true)
        }
    }
}

/// Runs `f` on a host channel's session and queues what it output for the I/O loop before
/// letting the session go, so that its frames and events are carried out in the order of
/// the session's changes, whichever threads made them (the application's on its threads,
/// the I/O loop's for its clients). `None` on a client channel.
pub(crate) fn host_turn<R>(
    role: &O2Role,
    f: impl FnOnce(&mut HostSession, &mut HostOutput) -> R,
) -> Option<R> {
    let O2Role::Host {
        session, pending, ..
    } = role
    else {
        return None;
    };
    let mut session = session.lock();
    let mut out = HostOutput::default();
    let result = f(&mut session, &mut out);
    pending.lock().push_back(out);
    Some(result)
}

/// Runs `f` on a client channel's session, then writes the frames and sends the datagrams
/// it output (by TCP while the host's UDP port is unknown) before letting the session go,
/// so that what the session decides reaches the host in the order it was decided,
/// whichever threads decide: written after, an offer and a withdrawal made at once
/// reached the host the other way round, and the host kept offering the withdrawn
/// service. Returns `f`'s result and the session's events; `None` on a host channel.
pub(crate) fn client_turn<R>(
    ch: &Channel,
    role: &O2Role,
    f: impl FnOnce(&mut ClientSession, &mut Output) -> R,
) -> Option<(R, Vec<ClientEvent>)> {
    let O2Role::Client {
        session,
        host_udp,
        udp,
        ..
    } = role
    else {
        return None;
    };
    let mut session = session.lock();
    let mut out = Output::default();
    let result = f(&mut session, &mut out);
    let host_udp = *host_udp.lock();
    // Not to a host that has closed: the reset it answers with would end the session
    // before the messages it sent last are taken (the next connection announces all).
    let conn = ch.connected_stream().filter(|c| !c.has_peer_finished());
    // A write that fails means the connection is gone; the next one announces the
    // session afresh. One refused means the host has not read its allowance: the
    // connection ends, for the same. A datagram lost is as any (clock pings are repeated).
    let write = |conn: &StreamConn, frames: &[u8]| {
        let refused = conn.send_session_frames(frames);
        if refused.is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock) {
            conn.close_because("the O2 host is not reading what it is sent");
        }
    };
    if let Some(conn) = &conn {
        write(conn, &out.tcp);
    }
    for datagram in out.udp {
        match (host_udp, &conn) {
            (Some(to), _) => {
                let _ = udp.send_to(&datagram, to);
            }
            (None, Some(conn)) => {
                let mut frame = (datagram.len() as u32).to_be_bytes().to_vec();
                frame.extend_from_slice(&datagram);
                frame[4..8].copy_from_slice(&1i32.to_be_bytes());
                write(conn, &frame);
            }
            (None, None) => {}
        }
    }
    drop(session);
    Some((result, out.events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osc::{DecodeOptions, Packet};

    #[test]
    fn o2_messages_take_their_osc_form_for_the_method_table() {
        let mut body = Vec::new();
        let vector = O2Arg::Vector {
            elem: b'i',
            data: &[0, 0, 0, 2, 0xff, 0xff, 0xff, 0xfd],
        };
        let args = [O2Arg::Int(1), vector, O2Arg::Bool(true), O2Arg::Time(1.5)];
        crate::o2lite::message::encode_body(&mut body, 1, 0.0, b"!svc/x", args).unwrap();
        let msg = crate::o2lite::message::decode(&body).unwrap();
        let (mut address, mut out) = (Vec::new(), Vec::new());
        to_osc(&msg, &mut address, &mut out).unwrap();
        let opts = DecodeOptions::DEFAULT.with_o2_types();
        let Packet::Message(m) = crate::osc::decode_with(&out, &opts).unwrap() else {
            unreachable!()
        };
        assert_eq!(m.address(), b"/svc/x");
        assert_eq!(m.typetags(), b"i[ii]Bt");
        let got: Vec<Arg<'_>> = m.args().collect();
        assert_eq!(
            got,
            [
                Arg::Int(1),
                Arg::ArrayStart,
                Arg::Int(2),
                Arg::Int(-3),
                Arg::ArrayEnd,
                Arg::Bool(true),
                Arg::Time(TimeTag::from_bits(3 << 31)),
            ]
        );
        // Times rosco cannot carry are refused, not clamped.
        for t in [-1.0, 4_294_967_296.0, f64::NAN] {
            body.clear();
            crate::o2lite::message::encode_body(&mut body, 1, 0.0, b"!svc/t", [O2Arg::Time(t)])
                .unwrap();
            let msg = crate::o2lite::message::decode(&body).unwrap();
            let refused = to_osc(&msg, &mut address, &mut out).unwrap_err();
            assert!(
                refused.contains("outside 0 to 2^32 seconds"),
                "{t}: {refused}"
            );
        }
        assert_eq!(
            seconds_to_fixed(0.1).map(fixed_to_seconds),
            Some(0.10000000009313226)
        );
    }
}
