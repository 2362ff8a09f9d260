//! Channel URLs: the liblo-style URLs that open rosco channels, parsed into a typed
//! [`ChannelUrl`] and printed back in liblo's canonical form.
//!
//! | URL | meaning |
//! |---|---|
//! | `osc.udp://HOST:PORT/` | send UDP to HOST:PORT (the trailing `/` is optional) |
//! | `osc.udp://:PORT/` | listen for UDP on PORT on every interface (port 0 picks one) |
//! | `osc://HOST:PORT` | liblo's old spelling of `osc.udp` |
//! | `osc.tcp://HOST:PORT/`, `osc.tcp://:PORT/` | connect to / listen on a TCP port |
//! | `osc.unix:///path`, `osc.unix://localhost:/path`, `osc.unix:////path` | the Unix-domain socket `/path` (the three spellings liblo prints) |
//! | `o2lite://ENSEMBLE` | find an O2 host of ENSEMBLE by DNS-SD and join it |
//! | `o2lite://ENSEMBLE@HOST:PORT` | join the O2 host at HOST, TCP port PORT |
//! | `o2lite-host://ENSEMBLE[:PORT]` | host O2lite clients (on TCP port PORT, or any port) |
//! | `oocsi://HANDLE@HOST[:PORT]` | join the OOCSI server at HOST (port 4444 by default) |
//!
//! For `osc.udp` and `osc.tcp` one rule tells listening from sending: **no host means
//! listen, a host means send**. HOST is a name (letters, digits, `-`, `.`, `_`), an IPv4
//! address (multicast and broadcast addresses included) or an IPv6 address in brackets
//! (`[::1]`, `[ff02::1]`), with its zone where it is link-local (`[fe80::1%25eth0]`, or
//! `[fe80::1%eth0]` as liblo takes it; `?bind=` takes no zone).
//!
//! Options are query parameters: `osc.udp://239.1.2.3:7000?ttl=4&loop=0`. A bare key such as
//! `listen` means `1`. Parameter values, Unix paths, O2 ensemble names and OOCSI handles may
//! be percent-encoded (`%20` is a space, `%23` a `#`). The parameters each scheme takes are
//! listed on [`UdpOptions`], [`TcpOptions`], [`UnixOptions`] and [`SessionOptions`]; every
//! value is parsed and range-checked here, so the transports receive only valid settings.
//! An unknown parameter or a malformed URL is a [`UrlError`] naming the offending part:
//!
//! ```text
//! bad URL 'osc.udp://h:99999': port 99999: out of range (0-65535)
//! ```
//!
//! [`ChannelUrl`]'s `Display` prints liblo's canonical form (`osc.udp://127.0.0.1:9000/`,
//! `osc.unix:///tmp/x.sock`) with the parameters in a fixed order, and parsing what it prints
//! gives the same value back.

use crate::osc::framing::LengthHeader;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The TCP port of an OOCSI server when an `oocsi://` URL gives none (specs/oocsi.md §1 and
/// §11: "clients connect over TCP, default port 4444").
pub const OOCSI_DEFAULT_PORT: u16 = 4444;

/// The handle that `oocsi://@HOST` (an empty handle) stands for.
///
/// The OOCSI server replaces each `#` of a handle with a random digit (specs/oocsi.md §2), so
/// this gives `rosco_` followed by six random digits, as §11 asks for a URL without a handle.
pub const OOCSI_AUTO_HANDLE: &str = "rosco_######";

/// A parsed channel URL.
///
/// Build one with [`ChannelUrl::parse`] (or `str::parse`); print it with `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelUrl {
    /// `osc.udp://HOST:PORT/` (or liblo's `osc://HOST:PORT`): send to HOST, or listen when
    /// there is no host (`osc.udp://:PORT/`).
    Udp {
        /// Where to send; `None` listens. A multicast group joins it and sends to it; a
        /// broadcast address sends broadcasts.
        host: Option<Host>,
        /// The port sent to, or the port listened on (0 picks a free one). A sending URL
        /// never has port 0.
        port: u16,
        /// Query parameters.
        opts: UdpOptions,
    },
    /// `osc.tcp://HOST:PORT/`: connect to HOST, or listen when there is no host
    /// (`osc.tcp://:PORT/`).
    Tcp {
        /// Where to connect; `None` listens.
        host: Option<Host>,
        /// The port connected to, or the port listened on (0 picks a free one). A connecting
        /// URL never has port 0.
        port: u16,
        /// Query parameters.
        opts: TcpOptions,
    },
    /// `osc.unix:///path`: a Unix-domain socket, sent to, or bound with `?listen`.
    Unix {
        /// The socket's absolute path (leading slashes collapsed to one).
        path: PathBuf,
        /// Query parameters.
        opts: UnixOptions,
    },
    /// `o2lite://ENSEMBLE` (find a host by DNS-SD) or `o2lite://ENSEMBLE@HOST:PORT` (connect
    /// directly): an O2lite client.
    O2lite {
        /// The O2 ensemble name (percent-decoded; see [`ChannelUrl::parse`] for the rules).
        ensemble: String,
        /// The host and its TCP port for a direct connection; `None` discovers one.
        host: Option<(Host, u16)>,
        /// Query parameters (`udp_port` is the host's UDP port, only with a direct host).
        opts: SessionOptions,
    },
    /// `o2lite-host://ENSEMBLE[:PORT]`: the host side, serving O2lite clients.
    O2liteHost {
        /// The O2 ensemble name.
        ensemble: String,
        /// The TCP port to listen on; `None` (or 0) picks a free one.
        port: Option<u16>,
        /// `?udp_port=N`: the UDP port to listen on; `None` (or 0) picks a free one.
        udp_port: Option<u16>,
        /// `?mdns=0|1`: advertise the host by DNS-SD (default: yes, as O2 hosts must).
        mdns: Option<bool>,
    },
    /// `oocsi://HANDLE@HOST[:PORT]`: an OOCSI client.
    Oocsi {
        /// The client handle (percent-decoded). `oocsi://@HOST` gives
        /// [`OOCSI_AUTO_HANDLE`]; each `#` is a random digit chosen by the server.
        handle: String,
        /// The server.
        host: Host,
        /// The server's TCP port ([`OOCSI_DEFAULT_PORT`] when the URL gives none).
        port: u16,
        /// Query parameters (`udp_port` is not used by OOCSI).
        opts: SessionOptions,
    },
}

/// A host named in a URL.
///
/// Text that parses as an IP address (IPv6 in brackets) is [`Host::Ip`]; anything else must
/// be a host name of letters, digits, `-`, `.` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name to resolve, such as `localhost` or `vm.local`, kept as written.
    Name(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// An IPv6 address in a zone, the interface a link-local address is on: written
    /// `[fe80::1%25eth0]` (RFC 6874) or `[fe80::1%eth0]` (as liblo and `getaddrinfo` take
    /// it). The zone is an interface name or index, looked up when the channel opens.
    Zoned(Ipv6Addr, String),
}

/// `osc.udp` parameters. All are optional; `None` leaves the transport's default.
///
/// | key | field | value |
/// |---|---|---|
/// | `bind` | [`bind`](Self::bind) | local IP address (`0.0.0.0` listens on IPv4 only) |
/// | `local` | [`local`](Self::local) | local port of a sending socket (0-65535); sending URLs only |
/// | `iface` | [`iface`](Self::iface) | multicast interface, by name or address; multicast groups (or host names) only |
/// | `ttl` | [`ttl`](Self::ttl) | multicast/IP time to live (0-255) |
/// | `loop` | [`loopback`](Self::loopback) | multicast loopback, `0` or `1`; multicast groups (or host names) only |
/// | `join` | [`join`](Self::join) | `0`: send to the group without joining it; multicast groups (or host names) only |
/// | `broadcast` | [`broadcast`](Self::broadcast) | allow sending broadcasts, `0` or `1`; sending URLs only |
/// | `reuse` | [`reuse`](Self::reuse) | SO_REUSEADDR/SO_REUSEPORT, `0` or `1` |
/// | `max_packet` | [`max_packet`](Self::max_packet) | largest datagram in bytes (1-65535) |
/// | `family` | [`family`](Self::family) | `4` or `6`: the host name's addresses taken; sending URLs only |
/// | `connect` | [`connect`](Self::connect) | `0` or `1`: connect the socket to the destination; unicast sending URLs only |
/// | `framing` | [`framing`](Self::framing) | `length`, `slip` or `slip-single`: stream framing inside datagrams |
/// | `length_field`, `length_at`, `header` | [`framing`](Self::framing) | with `framing=length`: a length header of another layout ([`StreamFraming::Header`]) |
/// | `max_frame` | [`max_frame`](Self::max_frame) | largest packet in bytes (1-4294967295); with `framing` only |
/// | `max_clients` | [`max_clients`](Self::max_clients) | senders kept track of at once (at least 1); with `framing` only |
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UdpOptions {
    /// `?bind=ADDR`: the local address to bind to.
    pub bind: Option<IpAddr>,
    /// `?local=PORT`: the local port of a sending socket (otherwise ephemeral).
    pub local: Option<u16>,
    /// `?iface=NAME|ADDR`: the interface for multicast (percent-decoded, not checked against
    /// the system's interfaces here).
    pub iface: Option<String>,
    /// `?ttl=N`: time to live of outgoing packets (0, "this host", is for multicast: a
    /// unicast or broadcast socket takes it as 1, the least the system allows there).
    pub ttl: Option<u8>,
    /// `?loop=0|1`: whether multicast sent from this socket loops back to this machine.
    pub loopback: Option<bool>,
    /// `?join=0|1`: `0` sends to the multicast group without joining it, from a port of its
    /// own (`local=`, or any), as oscsend does: the group's port may be held by a socket
    /// that does not share it (oscdump's), and the channel receives replies, not the group.
    pub join: Option<bool>,
    /// `?broadcast=0|1`: SO_BROADCAST.
    pub broadcast: Option<bool>,
    /// `?reuse=0|1`: SO_REUSEADDR/SO_REUSEPORT.
    pub reuse: Option<bool>,
    /// `?max_packet=BYTES`: the largest datagram sent or received.
    pub max_packet: Option<usize>,
    /// `?family=4|6`: resolve the host name to addresses of this family only (by default
    /// IPv4 first).
    pub family: Option<IpFamily>,
    /// `?connect=0|1`: connect the sending socket to its destination. Each send then skips
    /// the kernel's route lookup (some 0.4 µs of a 3 µs send on loopback here), and the
    /// socket receives datagrams from the destination's address and port only: a reply
    /// from elsewhere is dropped by the kernel, and sending elsewhere (a reply to another
    /// source) is refused. Off by default.
    pub connect: Option<bool>,
    /// `?framing=length|slip|slip-single`: packets framed as on a stream, carried in
    /// datagrams (osc4py3's `udpread_asstream` with `read_withslip` or `read_withheader`).
    /// Each packet sent (replies too) goes out framed in one datagram; what arrives is
    /// deframed per sender, so a packet may span datagrams and a datagram may hold several
    /// packets. Not `auto`: replies would have to follow each sender's framing, which a
    /// datagram channel does not keep.
    pub framing: Option<StreamFraming>,
    /// `?max_frame=BYTES`: with `framing`, the largest packet accepted.
    pub max_frame: Option<usize>,
    /// `?max_clients=N`: with `framing`, how many senders are kept track of at once
    /// (osc4py3's `read_maxsources`). Past it, one with nothing of a packet kept makes
    /// room; when all are mid-packet, the one heard from longest ago loses its part.
    pub max_clients: Option<usize>,
}

/// The address family a host name resolves to (osc4py3's `forceipv4`/`forceipv6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    /// `4`: IPv4 only.
    V4,
    /// `6`: IPv6 only.
    V6,
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "4",
            IpFamily::V6 => "6",
        })
    }
}

/// How packets are framed on a byte stream (specs/osc.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFraming {
    /// `length`: OSC 1.0, a 4-byte big-endian length before each packet.
    Length,
    /// `slip`: OSC 1.1, SLIP with an END byte before and after each packet.
    Slip,
    /// `slip-single`: SLIP sent with an END byte after each packet only (liblo 0.31,
    /// osc4py3's `write_slip_flagatstart=False`); read as `slip`.
    SlipSingleEnd,
    /// `auto`: detect per connection (listening URLs only).
    Auto,
    /// `length` with `length_field` (`u8`, `u16be`, `u16le`, `u32be`, `u32le`, `u64be` or
    /// `u64le`; by default `u32be`), `length_at` (its offset, by default 0) or `header`
    /// (the header's size, by default where the field ends): a length header of another
    /// layout (osc4py3's `read_headerunpack`), read and written.
    Header(LengthHeader),
}

impl StreamFraming {
    /// The parameter value: `length`, `slip`, `slip-single` or `auto` (a custom header's
    /// layout is in parameters of its own).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamFraming::Length | StreamFraming::Header(_) => "length",
            StreamFraming::Slip => "slip",
            StreamFraming::SlipSingleEnd => "slip-single",
            StreamFraming::Auto => "auto",
        }
    }
}

impl fmt::Display for StreamFraming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `osc.tcp` parameters. All are optional; `None` leaves the transport's default.
///
/// | key | field | value |
/// |---|---|---|
/// | `bind` | [`bind`](Self::bind) | local IP address |
/// | `local` | [`local`](Self::local) | local port of a connecting socket (0-65535); connecting URLs only |
/// | `framing` | [`framing`](Self::framing) | `length`, `slip`, `slip-single` (SLIP with no leading END), or `auto` (listening URLs only) |
/// | `length_field`, `length_at`, `header` | [`framing`](Self::framing) | with `framing=length`: a length header of another layout ([`StreamFraming::Header`]) |
/// | `max_frame` | [`max_frame`](Self::max_frame) | largest packet in bytes (1-4294967295) |
/// | `max_clients` | [`max_clients`](Self::max_clients) | simultaneous connections (at least 1); listening URLs only |
/// | `nodelay` | [`nodelay`](Self::nodelay) | `0` or `1` (the default): TCP_NODELAY on the connections |
/// | `reconnect` | [`reconnect`](Self::reconnect) | `0` or `1`; connecting URLs only |
/// | `retries` | [`retries`](Self::retries) | reconnection attempts, 0 = forever; connecting URLs only |
/// | `backoff_ms` | [`backoff_ms`](Self::backoff_ms) | delay before reconnecting (at least 1 ms); connecting URLs only |
/// | `family` | [`family`](Self::family) | `4` or `6`: the host name's addresses taken; connecting URLs only |
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// `?bind=ADDR`: the local address to bind to.
    pub bind: Option<IpAddr>,
    /// `?local=PORT`: the local port of a connecting socket (otherwise ephemeral).
    pub local: Option<u16>,
    /// `?framing=length|slip|auto`.
    pub framing: Option<StreamFraming>,
    /// `?max_frame=BYTES`: the largest packet accepted (sends are limited only by what the
    /// framing can carry).
    pub max_frame: Option<usize>,
    /// `?max_clients=N`: how many connections a listener accepts at once.
    pub max_clients: Option<usize>,
    /// `?nodelay=0|1`: TCP_NODELAY, on by default so that each message leaves at once;
    /// `0` lets the kernel gather small messages into fewer segments (Nagle), for more
    /// messages per second from a sender that streams, at the cost of latency.
    pub nodelay: Option<bool>,
    /// `?reconnect=0|1`: reconnect after the connection drops.
    pub reconnect: Option<bool>,
    /// `?retries=N`: reconnection attempts before giving up; 0 = forever.
    pub retries: Option<u32>,
    /// `?backoff_ms=MS`: the delay before a reconnection attempt.
    pub backoff_ms: Option<u64>,
    /// `?family=4|6`: resolve the host name to addresses of this family only (by default
    /// IPv4 first).
    pub family: Option<IpFamily>,
}

/// `osc.unix` parameters.
///
/// | key | field | value |
/// |---|---|---|
/// | `listen` | [`listen`](Self::listen) | bind the path instead of sending to it (`listen` alone means `1`) |
/// | `stream` | [`stream`](Self::stream) | SOCK_STREAM instead of SOCK_DGRAM |
/// | `framing` | [`framing`](Self::framing) | `length`, `slip`, `slip-single`, or `auto` (with `listen` only); with `stream` only |
/// | `length_field`, `length_at`, `header` | [`framing`](Self::framing) | with `framing=length`: a length header of another layout ([`StreamFraming::Header`]) |
/// | `max_frame` | [`max_frame`](Self::max_frame) | largest packet in bytes (1-4294967295); with `stream` only |
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnixOptions {
    /// `?listen`: bind the path and receive, rather than send to it.
    pub listen: bool,
    /// `?stream`: a stream socket rather than a datagram socket.
    pub stream: bool,
    /// `?framing=length|slip|auto` (stream sockets only).
    pub framing: Option<StreamFraming>,
    /// `?max_frame=BYTES` (stream sockets only).
    pub max_frame: Option<usize>,
}

/// Parameters of session-based channels (`o2lite`, `o2lite-host`, `oocsi`).
///
/// | key | field | value | schemes |
/// |---|---|---|---|
/// | `reconnect` | [`reconnect`](Self::reconnect) | `0` or `1` | o2lite, oocsi |
/// | `retries` | [`retries`](Self::retries) | attempts, 0 = forever | o2lite, oocsi |
/// | `backoff_ms` | [`backoff_ms`](Self::backoff_ms) | at least 1 | o2lite, oocsi |
/// | `udp_port` | [`udp_port`](Self::udp_port) | 1-65535, with `@HOST:PORT` only | o2lite |
///
/// (`o2lite-host` takes `udp_port` too, 0-65535, into [`ChannelUrl::O2liteHost`].)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionOptions {
    /// `?reconnect=0|1`: reconnect after the session drops.
    pub reconnect: Option<bool>,
    /// `?retries=N`: reconnection attempts before giving up; 0 = forever.
    pub retries: Option<u32>,
    /// `?backoff_ms=MS`: the delay before a reconnection attempt.
    pub backoff_ms: Option<u64>,
    /// `?udp_port=N` (o2lite with a direct host): the O2 host's UDP port. Without it
    /// everything goes by TCP (specs/o2lite.md §4.2).
    pub udp_port: Option<u16>,
}

/// A malformed channel URL: which part is wrong and why.
///
/// Displays on one line as `bad URL 'URL': PART: REASON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError {
    /// The whole URL as given.
    pub url: String,
    /// The offending part, e.g. `port 99999`, `parameter 'ttl=300'`, `scheme 'osc.xyz'`.
    pub part: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad URL '{}': {}: {}", self.url, self.part, self.reason)
    }
}

impl std::error::Error for UrlError {}

impl ChannelUrl {
    /// Parses a channel URL.
    ///
    /// Besides the forms in the [module documentation](self):
    /// - scheme names are case-insensitive; whitespace, control characters and a raw `#` are
    ///   errors anywhere (percent-encode them);
    /// - nothing may follow `HOST:PORT/` except `?parameters` (see
    ///   [`ChannelUrl::parse_with_path`] for URLs that carry a path);
    /// - a sending or connecting URL never has port 0;
    /// - a Unix path must be absolute, must not end in `/` and must not contain NUL;
    /// - an ensemble name is non-empty, at most 63 bytes (the DNS-SD instance name limit) and
    ///   contains no `/`, `@`, `:`, `?`, whitespace or control character;
    /// - an OOCSI handle is at most 200 ASCII characters without whitespace (what the OOCSI
    ///   server accepts); `oocsi://@HOST` stands for [`OOCSI_AUTO_HANDLE`];
    /// - a parameter may be given once.
    pub fn parse(url: &str) -> Result<ChannelUrl, UrlError> {
        let (parsed, path) = Self::parse_with_path(url)?;
        match path {
            None => Ok(parsed),
            Some(path) => Err(UrlError {
                url: url.to_owned(),
                part: format!("path '{path}'"),
                reason: "unexpected text after the address",
            }),
        }
    }

    /// Parses a URL that may carry a path after the address, such as the OOCSI channel in
    /// `oocsi://H@host:4444/C` or an OSC address in `osc.udp://h:9000/synth/1`, and returns
    /// that path as written (starting with `/`, not percent-decoded), or `None` when there is
    /// nothing after the address but an optional `/`. `osc.unix` URLs never have one.
    pub fn parse_with_path(url: &str) -> Result<(ChannelUrl, Option<String>), UrlError> {
        parse_url(url).map_err(|bad| UrlError {
            url: url.to_owned(),
            part: bad.part,
            reason: bad.reason,
        })
    }

    /// Listening (no host / ?listen / host side) rather than sending.
    ///
    /// True for `osc.udp`/`osc.tcp` without a host, `osc.unix` with `?listen`, and
    /// `o2lite-host`; false for everything else (including a multicast group, which is
    /// joined and sent to).
    pub fn is_listener(&self) -> bool {
        match self {
            ChannelUrl::Udp { host, .. } | ChannelUrl::Tcp { host, .. } => host.is_none(),
            ChannelUrl::Unix { opts, .. } => opts.listen,
            ChannelUrl::O2liteHost { .. } => true,
            ChannelUrl::O2lite { .. } | ChannelUrl::Oocsi { .. } => false,
        }
    }

    /// The host name the URL sends or connects to, when it gives a name rather than an
    /// address.
    pub fn host_name(&self) -> Option<&str> {
        let host = match self {
            ChannelUrl::Udp { host, .. } | ChannelUrl::Tcp { host, .. } => host.as_ref(),
            ChannelUrl::O2lite { host, .. } => host.as_ref().map(|(h, _)| h),
            ChannelUrl::Oocsi { host, .. } => Some(host),
            ChannelUrl::Unix { .. } | ChannelUrl::O2liteHost { .. } => None,
        };
        match host {
            Some(Host::Name(name)) => Some(name),
            _ => None,
        }
    }

    /// The canonical scheme: `osc.udp`, `osc.tcp`, `osc.unix`, `o2lite`, `o2lite-host` or
    /// `oocsi` (an `osc://` URL reports `osc.udp`).
    pub fn scheme(&self) -> &'static str {
        match self {
            ChannelUrl::Udp { .. } => "osc.udp",
            ChannelUrl::Tcp { .. } => "osc.tcp",
            ChannelUrl::Unix { .. } => "osc.unix",
            ChannelUrl::O2lite { .. } => "o2lite",
            ChannelUrl::O2liteHost { .. } => "o2lite-host",
            ChannelUrl::Oocsi { .. } => "oocsi",
        }
    }
}

impl FromStr for ChannelUrl {
    type Err = UrlError;

    /// Same as [`ChannelUrl::parse`].
    fn from_str(s: &str) -> Result<ChannelUrl, UrlError> {
        ChannelUrl::parse(s)
    }
}

impl Host {
    /// The IP address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Zoned(ip, _) => Some(IpAddr::V6(*ip)),
            Host::Name(_) => None,
        }
    }

    /// True for an IPv4 or IPv6 multicast address.
    pub fn is_multicast(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_multicast())
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        Host::Ip(ip)
    }
}

impl FromStr for Host {
    type Err = UrlError;

    /// Parses a host as it appears in a URL: a name, an IPv4 address, or an IPv6 address
    /// with or without brackets.
    fn from_str(s: &str) -> Result<Host, UrlError> {
        let result = match s.parse::<Ipv6Addr>() {
            Ok(v6) => Ok(Host::Ip(IpAddr::V6(v6))),
            Err(_) => parse_host(s),
        };
        result.map_err(|bad| UrlError {
            url: s.to_owned(),
            part: bad.part,
            reason: bad.reason,
        })
    }
}

impl fmt::Display for Host {
    /// A name as written, IPv4 dotted, IPv6 in brackets (`[::1]`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Zoned(v6, zone) => write!(f, "[{v6}%25{zone}]"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// A parse error before the URL is attached to it.
struct Bad {
    part: String,
    reason: &'static str,
}

type Res<T> = Result<T, Bad>;

fn bad<T>(part: impl Into<String>, reason: &'static str) -> Res<T> {
    Err(Bad {
        part: part.into(),
        reason,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Udp,
    Tcp,
    Unix,
    O2lite,
    O2liteHost,
    Oocsi,
}

fn scheme_of(text: &str) -> Option<Scheme> {
    const SCHEMES: [(&str, Scheme); 7] = [
        ("osc.udp", Scheme::Udp),
        ("osc", Scheme::Udp),
        ("osc.tcp", Scheme::Tcp),
        ("osc.unix", Scheme::Unix),
        ("o2lite", Scheme::O2lite),
        ("o2lite-host", Scheme::O2liteHost),
        ("oocsi", Scheme::Oocsi),
    ];
    SCHEMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|&(_, scheme)| scheme)
}

const PORT_RANGE: &str = "out of range (0-65535)";
const FRAME_RANGE: &str = "out of range (1-4294967295)";
const COUNT_RANGE: &str = "out of range (1-4294967295)";
const RETRIES_RANGE: &str = "out of range (0-4294967295)";
const BACKOFF_RANGE: &str = "out of range (1-18446744073709551615)";

const UDP_KEYS: &str = concat!(
    "unknown parameter (osc.udp takes bind, local, iface, ttl, loop, join, broadcast, reuse, ",
    "max_packet, family, connect, framing, length_field, length_at, header, max_frame, ",
    "max_clients)"
);
const TCP_KEYS: &str = concat!(
    "unknown parameter (osc.tcp takes bind, local, framing, length_field, length_at, ",
    "header, max_frame, max_clients, nodelay, reconnect, retries, backoff_ms, family)"
);
const UNIX_KEYS: &str = concat!(
    "unknown parameter (osc.unix takes listen, stream, framing, length_field, length_at, ",
    "header, max_frame)"
);
const O2LITE_KEYS: &str =
    "unknown parameter (o2lite takes reconnect, retries, backoff_ms, udp_port)";
const O2LITE_HOST_KEYS: &str = "unknown parameter (o2lite-host takes udp_port, mdns)";
const OOCSI_KEYS: &str = "unknown parameter (oocsi takes reconnect, retries, backoff_ms)";

fn parse_url(url: &str) -> Res<(ChannelUrl, Option<String>)> {
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return bad(
            format!("character {c:?}"),
            "not allowed in a URL (percent-encode it, e.g. %20 for a space)",
        );
    }
    if url.contains('#') {
        return bad("'#'", "not allowed in a URL (percent-encode it as %23)");
    }
    let Some((scheme_text, rest)) = url.split_once("://") else {
        return match url.split_once(':') {
            Some((s, _)) if scheme_of(s).is_some() => {
                bad(format!("scheme '{s}'"), "missing '//' after the scheme")
            }
            _ => bad(
                "scheme",
                "missing (a channel URL starts with e.g. osc.udp://)",
            ),
        };
    };
    let Some(scheme) = scheme_of(scheme_text) else {
        return bad(
            format!("scheme '{scheme_text}'"),
            concat!(
                "unknown scheme (expected osc.udp, osc.tcp, osc.unix, osc, o2lite, ",
                "o2lite-host or oocsi)"
            ),
        );
    };
    if scheme == Scheme::Unix {
        return Ok((parse_unix(rest)?, None));
    }

    let (before_query, query) = split_query(rest);
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let path = (path.len() > 1).then(|| path.to_owned());
    let params = parse_query(query)?;
    let parsed = match scheme {
        Scheme::Udp => parse_udp(authority, &params)?,
        Scheme::Tcp => parse_tcp(authority, &params)?,
        Scheme::O2lite => parse_o2lite(authority, &params)?,
        Scheme::O2liteHost => parse_o2lite_host(authority, &params)?,
        Scheme::Oocsi => parse_oocsi(authority, &params)?,
        Scheme::Unix => unreachable!("handled above"),
    };
    Ok((parsed, path))
}

fn split_query(text: &str) -> (&str, Option<&str>) {
    match text.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (text, None),
    }
}

// --- hosts and ports -------------------------------------------------------------------

/// Splits `HOST[:PORT]`, where HOST may be `[IPv6]`. Returns the host text (brackets kept)
/// and the port text, if there is a `:`.
fn split_host_port(text: &str) -> Res<(&str, Option<&str>)> {
    if let Some(inside) = text.strip_prefix('[') {
        let Some(close) = inside.find(']') else {
            return bad(format!("host '{text}'"), "'[' without ']'");
        };
        let (host, tail) = text.split_at(close + 2);
        if tail.is_empty() {
            return Ok((host, None));
        }
        return match tail.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None => bad(format!("host '{text}'"), "unexpected text after ']'"),
        };
    }
    if text.contains(']') {
        return bad(format!("host '{text}'"), "']' without '['");
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => Ok(text
            .split_once(':')
            .map(|(h, p)| (h, Some(p)))
            .unwrap_or((text, None))),
        _ => bad(
            format!("host '{text}'"),
            "an IPv6 address needs brackets, e.g. [::1]:9000",
        ),
    }
}

/// Parses a host: `[IPv6]`, IPv4, or a name.
fn parse_host(text: &str) -> Res<Host> {
    if text.is_empty() {
        return bad("host", "missing");
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let (address, zone) = match inner.split_once('%') {
            // `%25` is the delimiter percent-encoded (RFC 6874); a bare `%` is taken too.
            Some((address, zone)) => (address, Some(zone.strip_prefix("25").unwrap_or(zone))),
            None => (inner, None),
        };
        let Ok(v6) = address.parse::<Ipv6Addr>() else {
            return bad(
                format!("host '{text}'"),
                "not an IPv6 address (brackets are for IPv6 only)",
            );
        };
        return match zone {
            None => Ok(Host::Ip(IpAddr::V6(v6))),
            Some(zone) if is_interface_name(zone) => Ok(Host::Zoned(v6, zone.to_owned())),
            Some(_) => bad(
                format!("host '{text}'"),
                "not a zone (an interface name or index after '%25')",
            ),
        };
    }
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    let part = || format!("host '{text}'");
    if text.len() > 253 {
        return bad(part(), "host name longer than 253 characters");
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return bad(
            part(),
            "not a host name (letters, digits, '-', '.', '_') or IP address",
        );
    }
    let body = text.strip_suffix('.').unwrap_or(text);
    if body.is_empty() || body.split('.').any(str::is_empty) {
        return bad(part(), "empty label in host name");
    }
    if body.split('.').any(|label| label.len() > 63) {
        return bad(part(), "host name label longer than 63 characters");
    }
    // The forms `inet_aton` takes (`127.1`, `0x7f000001`): a resolver would read them as
    // IPv4 addresses, which the strict dotted form refuses. No top-level domain looks so.
    let numeric = |label: &str| {
        let hex = label.strip_prefix("0x").or(label.strip_prefix("0X"));
        match hex {
            Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
            None => label.bytes().all(|b| b.is_ascii_digit()),
        }
    };
    if body.rsplit('.').next().is_some_and(numeric) {
        return bad(part(), "not a valid IPv4 address");
    }
    Ok(Host::Name(text.to_owned()))
}

/// An interface name as Linux allows it (at most 15 bytes), or an index.
fn is_interface_name(zone: &str) -> bool {
    (1..16).contains(&zone.len())
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn parse_port(text: &str) -> Res<u16> {
    if text.is_empty() {
        return bad("port", "missing");
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return bad(format!("port {text}"), "not a number");
    }
    text.parse::<u16>()
        .or_else(|_| bad(format!("port {text}"), PORT_RANGE))
}

/// `HOST:PORT` or `:PORT` of `osc.udp`/`osc.tcp`.
fn osc_host_port(authority: &str) -> Res<(Option<Host>, u16)> {
    if let Some((user, _)) = authority.split_once('@') {
        return bad(format!("'{user}@'"), "user information is not allowed here");
    }
    let (host_text, port_text) = split_host_port(authority)?;
    let Some(port_text) = port_text else {
        return bad(
            "port",
            "missing (write HOST:PORT to send, or :PORT to listen)",
        );
    };
    let port = parse_port(port_text)?;
    if host_text.is_empty() {
        return Ok((None, port));
    }
    let host = parse_host(host_text)?;
    if port == 0 {
        return bad(
            "port 0",
            "cannot send to port 0 (only a listener takes port 0)",
        );
    }
    Ok((Some(host), port))
}

/// `HOST:PORT` after an `@` (o2lite, oocsi); `default` is used when there is no port.
fn remote_host_port(text: &str, default: Option<u16>) -> Res<(Host, u16)> {
    let (host_text, port_text) = split_host_port(text)?;
    let host = parse_host(host_text)?;
    let port = match (port_text, default) {
        (Some(p), _) => parse_port(p)?,
        (None, Some(d)) => d,
        (None, None) => return bad("port", "missing (the host's TCP port)"),
    };
    if port == 0 {
        return bad("port 0", "cannot connect to port 0");
    }
    Ok((host, port))
}

// --- percent-encoding ------------------------------------------------------------------

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(raw: &str, part: impl Fn() -> String) -> Res<Vec<u8>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return bad(
                    part(),
                    "bad percent-encoding (expected %XX, two hex digits)",
                );
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn percent_decode_str(raw: &str, part: impl Fn() -> String) -> Res<String> {
    let bytes = percent_decode(raw, &part)?;
    String::from_utf8(bytes).or_else(|_| bad(part(), "percent-encoding is not valid UTF-8"))
}

/// Writes `bytes`, percent-encoding all but ASCII letters, digits, `-._~!$'()*+,;` and
/// `extra`.
fn write_encoded(f: &mut fmt::Formatter<'_>, bytes: &[u8], extra: &[u8]) -> fmt::Result {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~!$'()*+,;".contains(&b) || extra.contains(&b) {
            f.write_char(char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

// --- query parameters ------------------------------------------------------------------

struct Param<'a> {
    key: &'a str,
    value: Option<&'a str>,
}

fn parse_query(query: Option<&str>) -> Res<Vec<Param<'_>>> {
    let mut out: Vec<Param<'_>> = Vec::new();
    // The keys seen so far: a set, so that a URL with very many parameters (all but a
    // handful of which are errors anyway) costs linear time, not quadratic.
    let mut seen = HashSet::new();
    for item in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (item, None),
        };
        if key.is_empty() {
            return bad(format!("parameter '{item}'"), "missing name before '='");
        }
        if !seen.insert(key) {
            return bad(format!("parameter '{key}'"), "given twice");
        }
        out.push(Param { key, value });
    }
    Ok(out)
}

impl Param<'_> {
    /// `parameter 'key'`.
    fn name(&self) -> String {
        format!("parameter '{}'", self.key)
    }

    /// `parameter 'key=value'` as written.
    fn whole(&self) -> String {
        match self.value {
            Some(v) => format!("parameter '{}={}'", self.key, v),
            None => self.name(),
        }
    }

    fn fail<T>(&self, reason: &'static str) -> Res<T> {
        bad(self.name(), reason)
    }

    fn text(&self) -> Res<String> {
        match self.value {
            None => self.fail("needs a value (key=value)"),
            Some("") => self.fail("empty value"),
            Some(v) => percent_decode_str(v, || self.whole()),
        }
    }

    fn flag(&self) -> Res<bool> {
        if self.value.is_none() {
            return Ok(true);
        }
        match self.text()?.as_str() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => bad(self.whole(), "expected 0 or 1"),
        }
    }

    fn number<T: TryFrom<u64>>(&self, min: u64, max: u64, range: &'static str) -> Res<T> {
        let text = self.text()?;
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return bad(self.whole(), "not a number");
        }
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => {
                T::try_from(n).or_else(|_| bad(self.whole(), range))
            }
            _ => bad(self.whole(), range),
        }
    }

    fn port(&self, min: u64) -> Res<u16> {
        self.number(
            min,
            65535,
            if min == 0 {
                PORT_RANGE
            } else {
                "out of range (1-65535)"
            },
        )
    }

    fn ip(&self) -> Res<IpAddr> {
        let text = self.text()?;
        let parsed = match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().map(IpAddr::V6).ok(),
            None => text.parse::<IpAddr>().ok(),
        };
        match parsed {
            // Bound, it needs its interface, which `bind=` does not take (the OS says only
            // "invalid argument").
            Some(IpAddr::V6(v6)) if v6.segments()[0] & 0xffc0 == 0xfe80 => bad(
                self.whole(),
                "a link-local address needs its interface, which bind takes no zone for \
                 (bind :: instead)",
            ),
            Some(ip) => Ok(ip),
            None if text.contains('%') => bad(self.whole(), "bind takes no zone"),
            None => bad(self.whole(), "not an IP address"),
        }
    }

    /// An address a stream socket can be bound to: not a multicast one.
    fn host_ip(&self) -> Res<IpAddr> {
        match self.ip()? {
            ip if ip.is_multicast() => {
                bad(self.whole(), "a multicast address, not one of this host's")
            }
            ip => Ok(ip),
        }
    }

    fn family(&self) -> Res<IpFamily> {
        match self.text()?.as_str() {
            "4" => Ok(IpFamily::V4),
            "6" => Ok(IpFamily::V6),
            _ => bad(self.whole(), "expected 4 or 6"),
        }
    }

    /// One of the parameters [`apply_header_layout`] reads.
    fn is_header_layout(&self) -> bool {
        matches!(self.key, "length_field" | "length_at" | "header")
    }

    /// `length_field`: the width in bytes and whether it is little-endian.
    fn length_field(&self) -> Res<(usize, bool)> {
        match self.text()?.as_str() {
            "u8" => Ok((1, false)),
            "u16be" => Ok((2, false)),
            "u16le" => Ok((2, true)),
            "u32be" => Ok((4, false)),
            "u32le" => Ok((4, true)),
            "u64be" => Ok((8, false)),
            "u64le" => Ok((8, true)),
            _ => bad(
                self.whole(),
                "expected u8, u16be, u16le, u32be, u32le, u64be or u64le",
            ),
        }
    }

    fn framing(&self) -> Res<StreamFraming> {
        match self.text()?.as_str() {
            "length" => Ok(StreamFraming::Length),
            "slip" => Ok(StreamFraming::Slip),
            "slip-single" => Ok(StreamFraming::SlipSingleEnd),
            "auto" => Ok(StreamFraming::Auto),
            _ => bad(self.whole(), "expected length, slip, slip-single or auto"),
        }
    }

    fn interface(&self) -> Res<String> {
        let text = self.text()?;
        if text.chars().any(char::is_control) {
            return bad(self.whole(), "contains a control character");
        }
        Ok(text)
    }

    /// `reconnect`, `retries`, `backoff_ms`; false when the key is none of them.
    fn session(&self, opts: &mut SessionOptions) -> Res<bool> {
        match self.key {
            "reconnect" => opts.reconnect = Some(self.flag()?),
            "retries" => opts.retries = Some(self.number(0, u64::from(u32::MAX), RETRIES_RANGE)?),
            "backoff_ms" => opts.backoff_ms = Some(self.number(1, u64::MAX, BACKOFF_RANGE)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Fails on the first of `keys` present in `params`.
fn forbid(params: &[Param<'_>], keys: &[&str], reason: &'static str) -> Res<()> {
    match params.iter().find(|p| keys.contains(&p.key)) {
        Some(p) => p.fail(reason),
        None => Ok(()),
    }
}

// --- schemes ---------------------------------------------------------------------------

fn parse_udp(authority: &str, params: &[Param<'_>]) -> Res<ChannelUrl> {
    let (host, port) = osc_host_port(authority)?;
    let mut opts = UdpOptions::default();
    for p in params {
        match p.key {
            "bind" => opts.bind = Some(p.ip()?),
            "local" => opts.local = Some(p.port(0)?),
            "iface" => opts.iface = Some(p.interface()?),
            "ttl" => opts.ttl = Some(p.number(0, 255, "out of range (0-255)")?),
            "loop" => opts.loopback = Some(p.flag()?),
            "join" => opts.join = Some(p.flag()?),
            "broadcast" => opts.broadcast = Some(p.flag()?),
            "reuse" => opts.reuse = Some(p.flag()?),
            "max_packet" => {
                opts.max_packet = Some(p.number(1, 65535, "out of range (1-65535)")?);
            }
            "family" => opts.family = Some(p.family()?),
            "connect" => opts.connect = Some(p.flag()?),
            "framing" => opts.framing = Some(p.framing()?),
            _ if p.is_header_layout() => {}
            "max_frame" => opts.max_frame = Some(p.number(1, u64::from(u32::MAX), FRAME_RANGE)?),
            "max_clients" => {
                opts.max_clients = Some(p.number(1, u64::from(u32::MAX), COUNT_RANGE)?);
            }
            _ => return p.fail(UDP_KEYS),
        }
    }
    if host.is_none() {
        forbid(
            params,
            &["local", "broadcast", "family", "connect"],
            "only for a sending URL (one with a host)",
        )?;
    }
    // A name may resolve to a group: only an address is known not to be one.
    if host
        .as_ref()
        .map_or(true, |h| h.ip().is_some() && !h.is_multicast())
    {
        forbid(
            params,
            &["iface", "loop", "join"],
            "only for a multicast group",
        )?;
    }
    if opts.framing == Some(StreamFraming::Auto) {
        forbid(
            params,
            &["framing"],
            "auto-detection is for stream listeners: choose length or slip",
        )?;
    }
    if opts.framing.is_none() {
        forbid(
            params,
            &["max_frame", "max_clients"],
            "only with framing (packets framed inside datagrams)",
        )?;
    }
    apply_header_layout(params, &mut opts.framing)?;
    Ok(ChannelUrl::Udp { host, port, opts })
}

fn parse_tcp(authority: &str, params: &[Param<'_>]) -> Res<ChannelUrl> {
    let (host, port) = osc_host_port(authority)?;
    let mut opts = TcpOptions::default();
    let mut session = SessionOptions::default();
    for p in params {
        match p.key {
            "bind" => opts.bind = Some(p.host_ip()?),
            "local" => opts.local = Some(p.port(0)?),
            "framing" => opts.framing = Some(p.framing()?),
            _ if p.is_header_layout() => {}
            "max_frame" => opts.max_frame = Some(p.number(1, u64::from(u32::MAX), FRAME_RANGE)?),
            "max_clients" => {
                opts.max_clients = Some(p.number(1, u64::from(u32::MAX), COUNT_RANGE)?);
            }
            "nodelay" => opts.nodelay = Some(p.flag()?),
            "family" => opts.family = Some(p.family()?),
            _ if p.session(&mut session)? => {}
            _ => return p.fail(TCP_KEYS),
        }
    }
    opts.reconnect = session.reconnect;
    opts.retries = session.retries;
    opts.backoff_ms = session.backoff_ms;
    if host.is_none() {
        forbid(
            params,
            &["local", "reconnect", "retries", "backoff_ms", "family"],
            "only for a connecting URL (one with a host)",
        )?;
    } else {
        forbid(
            params,
            &["max_clients"],
            "only for a listening URL (no host)",
        )?;
        check_auto_framing(params, opts.framing)?;
    }
    apply_header_layout(params, &mut opts.framing)?;
    Ok(ChannelUrl::Tcp { host, port, opts })
}

/// `length_field=u8|u16be|u16le|u32be|u32le|u64be|u64le`, `length_at=OFFSET` and
/// `header=BYTES` describe a length header other than OSC 1.0's (by default a `u32be` at
/// 0, the header as long as the field ends): they turn `framing=length` into
/// [`StreamFraming::Header`].
fn apply_header_layout(params: &[Param<'_>], framing: &mut Option<StreamFraming>) -> Res<()> {
    let (mut field, mut at, mut size) = (None, None, None);
    for p in params {
        match p.key {
            "length_field" => field = Some(p.length_field()?),
            "length_at" => at = Some((p, p.number(0, 254, "out of range (0-254)")?)),
            "header" => size = Some((p, p.number(1, 255, "out of range (1-255)")?)),
            _ => {}
        }
    }
    let Some(first) = params.iter().find(|p| p.is_header_layout()) else {
        return Ok(());
    };
    if *framing != Some(StreamFraming::Length) {
        return first.fail("only with framing=length");
    }
    let (width, little_endian) = field.unwrap_or((4, false));
    let offset = at.map_or(0, |(_, n)| n);
    let len = size.map_or(offset + width, |(_, n)| n);
    match (
        LengthHeader::new(len, offset, width, little_endian),
        size,
        at,
    ) {
        (Some(h), _, _) => *framing = Some(StreamFraming::Header(h)),
        (None, Some((p, _)), _) => return bad(p.whole(), "too short for its length field"),
        (None, None, Some((p, _))) => {
            return bad(p.whole(), "puts the field past a 255-byte header")
        }
        (None, None, None) => return bad(first.whole(), "does not fit a 255-byte header"),
    }
    Ok(())
}

/// `framing=auto` belongs to listeners: a sender must choose what it sends.
fn check_auto_framing(params: &[Param<'_>], framing: Option<StreamFraming>) -> Res<()> {
    if framing == Some(StreamFraming::Auto) {
        forbid(
            params,
            &["framing"],
            "auto-detection is for listening URLs; a sender uses length or slip",
        )?;
    }
    Ok(())
}

fn parse_unix(rest: &str) -> Res<ChannelUrl> {
    let (before_query, query) = split_query(rest);
    let path_text = if before_query.is_empty() || before_query.starts_with('/') {
        before_query
    } else if let Some(p) = strip_prefix_ignore_case(before_query, "localhost:") {
        p
    } else if let Some(p) = strip_prefix_ignore_case(before_query, "localhost")
        .filter(|p| p.is_empty() || p.starts_with('/'))
    {
        p
    } else {
        let authority = before_query.split('/').next().unwrap_or("");
        if let Some((host, _)) = authority.split_once(':') {
            return bad(
                format!("host '{host}'"),
                "a Unix socket URL names no host but localhost",
            );
        }
        return bad(
            format!("path '{before_query}'"),
            "must be absolute (osc.unix:///absolute/path)",
        );
    };
    if path_text.is_empty() {
        return bad("path", "missing (osc.unix:///absolute/path)");
    }
    let part = || format!("path '{path_text}'");
    if !path_text.starts_with('/') {
        return bad(part(), "must be absolute (osc.unix:///absolute/path)");
    }
    let bytes = percent_decode(path_text, part)?;
    // liblo prints a Unix server as `osc.unix:////tmp/x.sock`: keep one leading slash.
    let first = bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len());
    if first == bytes.len() {
        return bad(part(), "names no file");
    }
    let bytes = bytes[first - 1..].to_vec();
    if bytes.contains(&0) {
        return bad(part(), "contains a NUL byte");
    }
    if bytes.ends_with(b"/") {
        return bad(part(), "ends with '/'");
    }
    let path = path_from_bytes(bytes).or_else(|_| bad(part(), "not valid UTF-8"))?;

    let params = parse_query(query)?;
    let mut opts = UnixOptions::default();
    for p in &params {
        match p.key {
            "listen" => opts.listen = p.flag()?,
            "stream" => opts.stream = p.flag()?,
            "framing" => opts.framing = Some(p.framing()?),
            _ if p.is_header_layout() => {}
            "max_frame" => opts.max_frame = Some(p.number(1, u64::from(u32::MAX), FRAME_RANGE)?),
            _ => return p.fail(UNIX_KEYS),
        }
    }
    if !opts.stream {
        forbid(
            &params,
            &["framing", "max_frame"],
            "only for stream sockets (add ?stream)",
        )?;
    }
    if !opts.listen {
        check_auto_framing(&params, opts.framing)?;
    }
    apply_header_layout(&params, &mut opts.framing)?;
    Ok(ChannelUrl::Unix { path, opts })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> Result<PathBuf, ()> {
    use std::os::unix::ffi::OsStringExt;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> Result<PathBuf, ()> {
    String::from_utf8(bytes).map(PathBuf::from).map_err(|_| ())
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    Cow::Borrowed(path.as_os_str().as_bytes())
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Cow<'_, [u8]> {
    match path.to_string_lossy() {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// Decodes and checks an O2 ensemble name.
fn parse_ensemble(raw: &str, client: bool) -> Res<String> {
    if raw.is_empty() {
        return bad("ensemble", "missing (the ensemble name comes first)");
    }
    let part = || format!("ensemble '{raw}'");
    let name = percent_decode_str(raw, part)?;
    if client && name.contains(':') {
        return bad(
            part(),
            "contains ':' (a direct connection is o2lite://ENSEMBLE@HOST:PORT)",
        );
    }
    if name
        .chars()
        .any(|c| matches!(c, '/' | '@' | ':' | '?') || c.is_whitespace() || c.is_control())
    {
        return bad(
            part(),
            "contains '/', '@', ':', '?', whitespace or a control character",
        );
    }
    if name.len() > 63 {
        return bad(
            part(),
            "longer than 63 bytes (the DNS-SD instance name limit)",
        );
    }
    Ok(name)
}

fn parse_o2lite(authority: &str, params: &[Param<'_>]) -> Res<ChannelUrl> {
    let (ensemble_text, host) = match authority.rsplit_once('@') {
        Some((ensemble, host_port)) => (ensemble, Some(remote_host_port(host_port, None)?)),
        None => (authority, None),
    };
    let ensemble = parse_ensemble(ensemble_text, true)?;
    let mut opts = SessionOptions::default();
    for p in params {
        match p.key {
            "udp_port" => opts.udp_port = Some(p.port(1)?),
            _ if p.session(&mut opts)? => {}
            _ => return p.fail(O2LITE_KEYS),
        }
    }
    if host.is_none() {
        forbid(
            params,
            &["udp_port"],
            "only with a direct host (o2lite://ENSEMBLE@HOST:PORT); discovery finds the UDP port",
        )?;
    }
    Ok(ChannelUrl::O2lite {
        ensemble,
        host,
        opts,
    })
}

fn parse_o2lite_host(authority: &str, params: &[Param<'_>]) -> Res<ChannelUrl> {
    if let Some((_, host)) = authority.rsplit_once('@') {
        return bad(
            format!("host '{host}'"),
            "the host side names no host (o2lite-host://ENSEMBLE[:PORT])",
        );
    }
    let (ensemble_text, port) = match authority.split_once(':') {
        Some((ensemble, port)) => (ensemble, Some(parse_port(port)?)),
        None => (authority, None),
    };
    let ensemble = parse_ensemble(ensemble_text, false)?;
    let (mut udp_port, mut mdns) = (None, None);
    for p in params {
        match p.key {
            "udp_port" => udp_port = Some(p.port(0)?),
            "mdns" => mdns = Some(p.flag()?),
            _ => return p.fail(O2LITE_HOST_KEYS),
        }
    }
    Ok(ChannelUrl::O2liteHost {
        ensemble,
        port,
        udp_port,
        mdns,
    })
}

fn parse_oocsi(authority: &str, params: &[Param<'_>]) -> Res<ChannelUrl> {
    let Some((handle_text, host_port)) = authority.rsplit_once('@') else {
        return bad(
            "handle",
            "missing '@' (oocsi://HANDLE@HOST[:PORT], or oocsi://@HOST for an automatic handle)",
        );
    };
    let handle = if handle_text.is_empty() {
        OOCSI_AUTO_HANDLE.to_owned()
    } else {
        let part = || format!("handle '{handle_text}'");
        let handle = percent_decode_str(handle_text, part)?;
        if !handle.chars().all(|c| c.is_ascii_graphic()) {
            return bad(
                part(),
                "must be ASCII without whitespace (the OOCSI server ignores other handles)",
            );
        }
        if handle.len() > 200 {
            return bad(
                part(),
                "longer than 200 characters (the OOCSI server ignores it)",
            );
        }
        handle
    };
    let (host, port) = remote_host_port(host_port, Some(OOCSI_DEFAULT_PORT))?;
    let mut opts = SessionOptions::default();
    for p in params {
        if !p.session(&mut opts)? {
            return p.fail(OOCSI_KEYS);
        }
    }
    Ok(ChannelUrl::Oocsi {
        handle,
        host,
        port,
        opts,
    })
}

// ---------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------

/// Writes `?k=v&k=v` parameters, `?` before the first.
struct QueryWriter<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl<'a, 'b> QueryWriter<'a, 'b> {
    fn new(f: &'a mut fmt::Formatter<'b>) -> Self {
        QueryWriter { f, first: true }
    }

    fn key(&mut self, key: &str) -> fmt::Result {
        self.f.write_char(if self.first { '?' } else { '&' })?;
        self.first = false;
        self.f.write_str(key)
    }

    fn bare(&mut self, key: &str, on: bool) -> fmt::Result {
        if on {
            self.key(key)?;
        }
        Ok(())
    }

    fn value<T: fmt::Display>(&mut self, key: &str, value: Option<T>) -> fmt::Result {
        if let Some(value) = value {
            self.key(key)?;
            write!(self.f, "={value}")?;
        }
        Ok(())
    }

    /// `framing`, then a custom header's layout in full.
    fn framing(&mut self, framing: Option<StreamFraming>) -> fmt::Result {
        self.value("framing", framing)?;
        if let Some(StreamFraming::Header(h)) = framing {
            let order = match (h.width(), h.little_endian()) {
                (1, _) => "",
                (_, true) => "le",
                (_, false) => "be",
            };
            self.key("length_field")?;
            write!(self.f, "=u{}{order}", 8 * h.width())?;
            self.value("length_at", Some(h.at()))?;
            self.value("header", Some(h.size()))?;
        }
        Ok(())
    }

    fn flag(&mut self, key: &str, value: Option<bool>) -> fmt::Result {
        self.value(key, value.map(u8::from))
    }

    fn text(&mut self, key: &str, value: Option<&str>) -> fmt::Result {
        if let Some(value) = value {
            self.key(key)?;
            self.f.write_char('=')?;
            write_encoded(self.f, value.as_bytes(), b":/@")?;
        }
        Ok(())
    }

    fn session(&mut self, opts: &SessionOptions) -> fmt::Result {
        self.flag("reconnect", opts.reconnect)?;
        self.value("retries", opts.retries)?;
        self.value("backoff_ms", opts.backoff_ms)?;
        self.value("udp_port", opts.udp_port)
    }
}

fn write_host_port(f: &mut fmt::Formatter<'_>, host: Option<&Host>, port: u16) -> fmt::Result {
    if let Some(host) = host {
        write!(f, "{host}")?;
    }
    write!(f, ":{port}/")
}

impl fmt::Display for ChannelUrl {
    /// liblo's canonical form: `osc.udp://127.0.0.1:9000/`, `osc.udp://[::1]:9000/`,
    /// `osc.udp://:9000/`, `osc.unix:///tmp/x.sock`, `o2lite://ens@127.0.0.1:5000`,
    /// `oocsi://me@127.0.0.1:4444`, with the parameters in the order of their fields and
    /// names percent-encoded where needed. [`ChannelUrl::parse`] gives the same value back
    /// for every value it produced.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelUrl::Udp { host, port, opts } => {
                f.write_str("osc.udp://")?;
                write_host_port(f, host.as_ref(), *port)?;
                let mut q = QueryWriter::new(f);
                q.value("bind", opts.bind)?;
                q.value("local", opts.local)?;
                q.text("iface", opts.iface.as_deref())?;
                q.value("ttl", opts.ttl)?;
                q.flag("loop", opts.loopback)?;
                q.flag("join", opts.join)?;
                q.flag("broadcast", opts.broadcast)?;
                q.flag("reuse", opts.reuse)?;
                q.value("max_packet", opts.max_packet)?;
                q.value("family", opts.family)?;
                q.flag("connect", opts.connect)?;
                q.framing(opts.framing)?;
                q.value("max_frame", opts.max_frame)?;
                q.value("max_clients", opts.max_clients)
            }
            ChannelUrl::Tcp { host, port, opts } => {
                f.write_str("osc.tcp://")?;
                write_host_port(f, host.as_ref(), *port)?;
                let mut q = QueryWriter::new(f);
                q.value("bind", opts.bind)?;
                q.value("local", opts.local)?;
                q.framing(opts.framing)?;
                q.value("max_frame", opts.max_frame)?;
                q.value("max_clients", opts.max_clients)?;
                q.flag("nodelay", opts.nodelay)?;
                q.flag("reconnect", opts.reconnect)?;
                q.value("retries", opts.retries)?;
                q.value("backoff_ms", opts.backoff_ms)?;
                q.value("family", opts.family)
            }
            ChannelUrl::Unix { path, opts } => {
                f.write_str("osc.unix://")?;
                write_encoded(f, &path_bytes(path), b"/:@=&")?;
                let mut q = QueryWriter::new(f);
                q.bare("listen", opts.listen)?;
                q.bare("stream", opts.stream)?;
                q.framing(opts.framing)?;
                q.value("max_frame", opts.max_frame)
            }
            ChannelUrl::O2lite {
                ensemble,
                host,
                opts,
            } => {
                f.write_str("o2lite://")?;
                write_encoded(f, ensemble.as_bytes(), b"")?;
                if let Some((host, port)) = host {
                    write!(f, "@{host}:{port}")?;
                }
                QueryWriter::new(f).session(opts)
            }
            ChannelUrl::O2liteHost {
                ensemble,
                port,
                udp_port,
                mdns,
            } => {
                f.write_str("o2lite-host://")?;
                write_encoded(f, ensemble.as_bytes(), b"")?;
                if let Some(port) = port {
                    write!(f, ":{port}")?;
                }
                let mut q = QueryWriter::new(f);
                q.value("udp_port", *udp_port)?;
                q.flag("mdns", *mdns)
            }
            ChannelUrl::Oocsi {
                handle,
                host,
                port,
                opts,
            } => {
                f.write_str("oocsi://")?;
                write_encoded(f, handle.as_bytes(), b":")?;
                write!(f, "@{host}:{port}")?;
                QueryWriter::new(f).session(opts)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ok(url: &str) -> ChannelUrl {
        match ChannelUrl::parse(url) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{url} should parse: {e}"),
        }
    }

    /// Parses `url`, expecting an error whose part contains `part`.
    fn err(url: &str, part: &str) -> UrlError {
        match ChannelUrl::parse(url) {
            Ok(parsed) => panic!("{url} should fail, gave {parsed:?}"),
            Err(e) => {
                assert!(
                    e.part.contains(part),
                    "{url}: part {:?} should contain {part:?} ({e})",
                    e.part
                );
                assert_eq!(e.url, url);
                e
            }
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<Host> {
        Some(Host::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d))))
    }

    fn name(n: &str) -> Option<Host> {
        Some(Host::Name(n.to_owned()))
    }

    fn udp(url: &str) -> (Option<Host>, u16, UdpOptions) {
        match ok(url) {
            ChannelUrl::Udp { host, port, opts } => (host, port, opts),
            other => panic!("{url}: not UDP: {other:?}"),
        }
    }

    fn tcp(url: &str) -> (Option<Host>, u16, TcpOptions) {
        match ok(url) {
            ChannelUrl::Tcp { host, port, opts } => (host, port, opts),
            other => panic!("{url}: not TCP: {other:?}"),
        }
    }

    fn unix(url: &str) -> (PathBuf, UnixOptions) {
        match ok(url) {
            ChannelUrl::Unix { path, opts } => (path, opts),
            other => panic!("{url}: not Unix: {other:?}"),
        }
    }

    // --- osc.udp / osc.tcp ----------------------------------------------------------

    #[test]
    fn udp_send_forms() {
        for url in [
            "osc.udp://127.0.0.1:9000",
            "osc.udp://127.0.0.1:9000/",
            "osc://127.0.0.1:9000",
            "osc://127.0.0.1:9000/",
            "OSC.UDP://127.0.0.1:9000/",
        ] {
            assert_eq!(
                udp(url),
                (v4(127, 0, 0, 1), 9000, UdpOptions::default()),
                "{url}"
            );
            assert!(!ok(url).is_listener());
            assert_eq!(ok(url).scheme(), "osc.udp");
        }
    }

    #[test]
    fn udp_listen_forms() {
        assert_eq!(udp("osc.udp://:9000"), (None, 9000, UdpOptions::default()));
        assert_eq!(udp("osc.udp://:9000/"), (None, 9000, UdpOptions::default()));
        assert_eq!(udp("osc.udp://:0/"), (None, 0, UdpOptions::default()));
        assert_eq!(udp("osc.udp://:65535").1, 65535);
        assert!(ok("osc.udp://:9000").is_listener());
        assert!(ok("osc://:9000").is_listener());
    }

    #[test]
    fn liblo_no_slash_quirk_gives_host_and_port() {
        // lo_url_get_path returns "h:9000" here; rosco reads host h, port 9000, no path.
        assert_eq!(
            udp("osc.udp://h:9000"),
            (name("h"), 9000, UdpOptions::default())
        );
        assert_eq!(
            ChannelUrl::parse_with_path("osc.udp://h:9000").unwrap(),
            (ok("osc.udp://h:9000/"), None)
        );
    }

    #[test]
    fn hosts() {
        assert_eq!(udp("osc.udp://localhost:1/").0, name("localhost"));
        assert_eq!(udp("osc.udp://vm.local:1/").0, name("vm.local"));
        assert_eq!(udp("osc.udp://my_host-2.lan.:1/").0, name("my_host-2.lan."));
        assert_eq!(udp("osc.udp://239.1.2.3:7000/").0, v4(239, 1, 2, 3));
        assert!(udp("osc.udp://239.1.2.3:7000/").0.unwrap().is_multicast());
        assert_eq!(
            udp("osc.udp://255.255.255.255:7000/").0,
            v4(255, 255, 255, 255)
        );
        assert_eq!(
            udp("osc.udp://[::1]:9000/").0,
            Some(Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)))
        );
        let ff02 = udp("osc.udp://[ff02::1]:9000").0.unwrap();
        assert_eq!(ff02, Host::Ip("ff02::1".parse().unwrap()));
        assert!(ff02.is_multicast());
        assert_eq!(ff02.ip(), Some("ff02::1".parse().unwrap()));
        // A zone: RFC 6874's `%25` or a bare `%`; printed back with `%25`.
        let zoned = Host::Zoned("fe80::1".parse().unwrap(), "eth0".into());
        for url in [
            "osc.udp://[fe80::1%25eth0]:9000",
            "osc.udp://[fe80::1%eth0]:9000",
        ] {
            assert_eq!(udp(url).0.as_ref(), Some(&zoned), "{url}");
        }
        assert_eq!(zoned.to_string(), "[fe80::1%25eth0]");
        assert_eq!(zoned.ip(), Some("fe80::1".parse().unwrap()));
        let url = ChannelUrl::parse("osc.tcp://[fe80::1%252]:9000").unwrap();
        assert_eq!(url.to_string().parse::<ChannelUrl>().unwrap(), url);
        assert_eq!(Host::Name("x".into()).ip(), None);
        assert!(!Host::Name("x".into()).is_multicast());
        assert_eq!(
            Host::from(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
    }

    #[test]
    fn host_display_and_from_str() {
        for (text, shown) in [
            ("localhost", "localhost"),
            ("10.0.0.1", "10.0.0.1"),
            ("[::1]", "[::1]"),
            ("::1", "[::1]"),
            ("[FF02::1]", "[ff02::1]"),
        ] {
            let host: Host = text.parse().unwrap();
            assert_eq!(host.to_string(), shown);
            assert_eq!(shown.parse::<Host>().unwrap(), host);
        }
        let e = "bad host".parse::<Host>().unwrap_err();
        assert_eq!(e.url, "bad host");
        assert!(e.part.contains("bad host"));
        assert!("".parse::<Host>().is_err());
    }

    #[test]
    fn bad_hosts() {
        err("osc.udp://[::1:9000/", "host '[::1:9000'");
        err("osc.udp://::1]:9000/", "host '::1]:9000'");
        err("osc.udp://[::1]9000/", "host '[::1]9000'");
        err("osc.udp://::1:9000/", "host '::1:9000'");
        err("osc.udp://[1.2.3.4]:9000/", "host '[1.2.3.4]'");
        err("osc.udp://[zz::1]:9000/", "host '[zz::1]'");
        err("osc.udp://[]:9000/", "host '[]'");
        err("osc.udp://[fe80::1%25]:9000/", "host '[fe80::1%25]'");
        err("osc.udp://[fe80::1%]:9000/", "host '[fe80::1%]'");
        err("osc.udp://[fe80::1%25a/b]:9000/", "host");
        err("osc.udp://[fe80::1%25sixteen-bytes-xy]:9000/", "host");
        err(
            "osc.udp://[fe80::zz%25eth0]:9000/",
            "host '[fe80::zz%25eth0]'",
        );
        err("osc.udp://bad!host:9000/", "host 'bad!host'");
        err("osc.udp://a..b:9000/", "host 'a..b'");
        err("osc.udp://.a:9000/", "host '.a'");
        err("osc.udp://256.1.1.1:9000/", "host '256.1.1.1'");
        err("osc.udp://1.2.3:9000/", "host '1.2.3'");
        err("osc.udp://12345:9000/", "host '12345'");
        err("osc.udp://127.000.0.1:9000/", "host '127.000.0.1'");
        let long_label = format!("osc.udp://{}.x:1/", "a".repeat(64));
        err(&long_label, "host");
        let long_name = format!("osc.udp://{}:1/", ["abc"; 70].join("."));
        err(&long_name, "host");
        err("osc.udp://user@host:9000/", "'user@'");
        err("osc.udp://ho%41st:9000/", "host");
    }

    #[test]
    fn ports() {
        let e = err("osc.udp://h:99999", "port 99999");
        assert_eq!(
            e.to_string(),
            "bad URL 'osc.udp://h:99999': port 99999: out of range (0-65535)"
        );
        err("osc.udp://h:65536/", "port 65536");
        err("osc.udp://h:123456789012345678901234567890/", "port 1234");
        err("osc.udp://h:abc/", "port abc");
        err("osc.udp://h:+900/", "port +900");
        err("osc.udp://h:-1/", "port -1");
        assert_eq!(err("osc.udp://host", "port").part, "port");
        assert_eq!(err("osc.udp://host/", "port").part, "port");
        assert_eq!(err("osc.udp://host:/", "port").part, "port");
        assert_eq!(err("osc.udp://[::1]/", "port").part, "port");
        assert_eq!(err("osc.udp://", "port").part, "port");
        assert_eq!(err("osc.tcp://h", "port").part, "port");
        err("osc.udp://h:0/", "port 0");
        err("osc.tcp://h:0/", "port 0");
        assert_eq!(udp("osc.udp://h:09000/").1, 9000);
    }

    #[test]
    fn tcp_forms() {
        assert_eq!(
            tcp("osc.tcp://127.0.0.1:9000"),
            (v4(127, 0, 0, 1), 9000, TcpOptions::default())
        );
        assert_eq!(tcp("osc.tcp://vm:19099/").0, name("vm"));
        assert_eq!(tcp("osc.tcp://:9000/"), (None, 9000, TcpOptions::default()));
        assert_eq!(tcp("osc.tcp://:0").1, 0);
        assert_eq!(
            tcp("osc.tcp://[::1]:1/").0,
            Some(Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)))
        );
        assert!(ok("osc.tcp://:9000").is_listener());
        assert!(!ok("osc.tcp://h:9000").is_listener());
        assert_eq!(ok("osc.tcp://h:9000").scheme(), "osc.tcp");
    }

    // --- schemes and general syntax ----------------------------------------------

    #[test]
    fn bad_schemes() {
        let e = err("osc.xyz://h:1", "scheme 'osc.xyz'");
        assert!(e
            .to_string()
            .starts_with("bad URL 'osc.xyz://h:1': scheme 'osc.xyz': "));
        err("http://h:1/", "scheme 'http'");
        err("://h:1/", "scheme ''");
        assert_eq!(err("h:9000", "scheme").part, "scheme");
        assert_eq!(err("", "scheme").part, "scheme");
        err("osc.udp:h:9000", "scheme 'osc.udp'");
        err("osc.udp:/h:9000", "scheme 'osc.udp'");
    }

    #[test]
    fn forbidden_characters() {
        err("osc.udp://h:9000/ ", "character ' '");
        err(" osc.udp://h:9000/", "character ' '");
        err("osc.udp://h:9000/\n", "character '\\n'");
        err("osc.udp://h:9000/#x", "'#'");
        err("oocsi://sensor##@h", "'#'");
    }

    #[test]
    fn paths() {
        err("osc.udp://h:9000/foo", "path '/foo'");
        err("osc.udp://h:9000//", "path '//'");
        err("oocsi://me@h:4444/chan", "path '/chan'");
        assert_eq!(
            ChannelUrl::parse_with_path("oocsi://me@h:4444/chan").unwrap(),
            (ok("oocsi://me@h:4444"), Some("/chan".to_owned()))
        );
        assert_eq!(
            ChannelUrl::parse_with_path("osc.udp://h:9000/synth/1?ttl=2").unwrap(),
            (ok("osc.udp://h:9000?ttl=2"), Some("/synth/1".to_owned()))
        );
        assert_eq!(
            ChannelUrl::parse_with_path("osc.unix:///tmp/x.sock").unwrap(),
            (ok("osc.unix:///tmp/x.sock"), None)
        );
        assert!(ChannelUrl::parse_with_path("osc.udp://h").is_err());
    }

    // --- query parameters ------------------------------------------------------------

    #[test]
    fn udp_options() {
        let (host, port, opts) = udp(
            "osc.udp://239.1.2.3:7000/?bind=192.168.1.5&local=7001&iface=eth0&ttl=4&loop=0\
             &join=0&broadcast=1&reuse=1&max_packet=1500&family=4&connect=0&framing=length\
             &max_frame=70000&max_clients=2",
        );
        assert_eq!((host, port), (v4(239, 1, 2, 3), 7000));
        assert_eq!(
            opts,
            UdpOptions {
                bind: Some("192.168.1.5".parse().unwrap()),
                local: Some(7001),
                iface: Some("eth0".into()),
                ttl: Some(4),
                loopback: Some(false),
                join: Some(false),
                broadcast: Some(true),
                reuse: Some(true),
                max_packet: Some(1500),
                family: Some(IpFamily::V4),
                connect: Some(false),
                framing: Some(StreamFraming::Length),
                max_frame: Some(70000),
                max_clients: Some(2),
            }
        );
        let opts =
            udp("osc.udp://[ff02::1]:9000?bind=::1&iface=192.168.1.5&ttl=0&loop&reuse=false").2;
        assert_eq!(opts.bind, Some("::1".parse().unwrap()));
        assert_eq!(opts.iface.as_deref(), Some("192.168.1.5"));
        assert_eq!(opts.ttl, Some(0));
        assert_eq!(opts.loopback, Some(true));
        assert_eq!(opts.reuse, Some(false));
        let opts = udp("osc.udp://:9000?bind=[2001:db8::1]&ttl=255&max_packet=65535").2;
        assert_eq!(opts.bind, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(opts.ttl, Some(255));
        assert_eq!(opts.max_packet, Some(65535));
        assert_eq!(
            udp("osc.udp://:9000?bind=0.0.0.0").2.bind,
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        );
        // Percent-decoding in values; a Windows interface name with a space.
        assert_eq!(
            udp("osc.udp://239.1.2.3:7000?iface=Ethernet%202")
                .2
                .iface
                .as_deref(),
            Some("Ethernet 2")
        );
        assert_eq!(
            udp("osc.udp://h:1?bind=%3A%3A1").2.bind,
            Some("::1".parse().unwrap())
        );
        // Empty query parts are ignored.
        assert_eq!(udp("osc.udp://h:1/?").2, UdpOptions::default());
        assert_eq!(udp("osc.udp://h:1?&ttl=3&").2.ttl, Some(3));
        assert_eq!(udp("osc.udp://h:1?local=0").2.local, Some(0));
    }

    #[test]
    fn udp_option_errors() {
        let e = err("osc.udp://h:1?ttl=300", "parameter 'ttl=300'");
        assert_eq!(
            e.to_string(),
            "bad URL 'osc.udp://h:1?ttl=300': parameter 'ttl=300': out of range (0-255)"
        );
        err("osc.udp://h:1?ttl=-1", "parameter 'ttl=-1'");
        err("osc.udp://h:1?ttl", "parameter 'ttl'");
        err("osc.udp://h:1?ttl=", "parameter 'ttl'");
        err("osc.udp://h:1?ttl=1&ttl=2", "parameter 'ttl'");
        err("osc.udp://h:1?loop=2", "parameter 'loop=2'");
        // Multicast options on what is known not to be a group.
        for url in [
            "osc.udp://:9000?iface=eth0",
            "osc.udp://127.0.0.1:9000?loop=0",
            "osc.udp://[::1]:9000?iface=lo",
        ] {
            let e = ChannelUrl::parse(url).unwrap_err().to_string();
            assert!(e.contains("only for a multicast group"), "{e}");
        }
        // `inet_aton`'s spellings of IPv4 addresses, which the strict form refuses.
        for host in ["127.1", "0x7f000001", "1.0X1f", "10.0xff.1"] {
            let e = err(&format!("osc.udp://{host}:1"), "host");
            assert_eq!(e.reason, "not a valid IPv4 address");
        }
        assert!(ChannelUrl::parse("osc.udp://0xdead.example:1").is_ok());
        err("osc.udp://h:1?loop=yes", "parameter 'loop=yes'");
        err("osc.udp://h:1?broadcast=", "parameter 'broadcast'");
        err("osc.udp://h:1?reuse=11", "parameter 'reuse=11'");
        err("osc.udp://h:1?bind=localhost", "parameter 'bind=localhost'");
        // A link-local address cannot be bound without its interface, which bind= does
        // not take: refused with that reason rather than by the OS's "invalid argument".
        for (url, why) in [
            ("osc.udp://:1?bind=fe80::1", "needs its interface"),
            ("osc.tcp://:1?bind=[fe80::1]", "needs its interface"),
            ("osc.udp://:1?bind=fe80::1%25eth0", "takes no zone"),
        ] {
            assert!(
                err(url, "parameter 'bind=").to_string().contains(why),
                "{url}"
            );
        }
        err("osc.udp://h:1?bind=[1.2.3.4]", "parameter 'bind=[1.2.3.4]'");
        err("osc.udp://h:1?local=70000", "parameter 'local=70000'");
        err("osc.udp://h:1?local=x", "parameter 'local=x'");
        err("osc.udp://h:1?max_packet=0", "parameter 'max_packet=0'");
        err(
            "osc.udp://h:1?max_packet=65536",
            "parameter 'max_packet=65536'",
        );
        err("osc.udp://h:1?iface=%0A", "parameter 'iface=%0A'");
        err("osc.udp://h:1?iface=%zz", "parameter 'iface=%zz'");
        err("osc.udp://h:1?iface=%4", "parameter 'iface=%4'");
        err("osc.udp://h:1?iface=%FF", "parameter 'iface=%FF'");
        err("osc.udp://h:1?=3", "parameter '=3'");
        let e = err("osc.udp://h:1?nodelay=1", "parameter 'nodelay'");
        assert!(e.reason.contains("osc.udp takes"));
        err("osc.udp://h:1?Ttl=3", "parameter 'Ttl'");
        // Stream framing inside datagrams, and its limits only with it.
        let e = err("osc.udp://h:1?max_clients=3", "parameter 'max_clients'");
        assert!(e.reason.contains("only with framing"));
        err("osc.udp://:1?max_frame=3", "parameter 'max_frame'");
        err("osc.udp://h:1?framing=auto", "parameter 'framing'");
        err("osc.udp://:1?framing=auto", "parameter 'framing'");
        err("osc.udp://h:1?framing=cobs", "framing=cobs");
        err("osc.udp://:1?framing=slip&max_frame=0", "max_frame=0");
        let opts = udp("osc.udp://:1?framing=slip&max_frame=100&max_clients=7").2;
        assert_eq!(
            (opts.framing, opts.max_frame, opts.max_clients),
            (Some(StreamFraming::Slip), Some(100), Some(7))
        );
        for f in ["length", "slip", "slip-single"] {
            let url = format!("osc.udp://h:1?framing={f}");
            assert_eq!(udp(&url).2.framing.unwrap().to_string(), f);
        }
        // A custom length header, only with framing=length.
        let header = |url: &str| match ok(url) {
            ChannelUrl::Tcp { opts, .. } => opts.framing,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            header("osc.tcp://h:1?length_field=u16le&framing=length&length_at=2&header=6"),
            Some(StreamFraming::Header(
                LengthHeader::new(6, 2, 2, true).unwrap()
            ))
        );
        assert_eq!(
            header("osc.tcp://h:1?framing=length&length_at=3"),
            Some(StreamFraming::Header(
                LengthHeader::new(7, 3, 4, false).unwrap()
            ))
        );
        assert_eq!(
            header("osc.tcp://:1?framing=length&length_field=u64be")
                .unwrap()
                .to_string(),
            "length"
        );
        assert_eq!(
            ok("osc.tcp://h:1?framing=length&header=5").to_string(),
            "osc.tcp://h:1/?framing=length&length_field=u32be&length_at=0&header=5"
        );
        let e = err("osc.tcp://h:1?header=6", "parameter 'header'");
        assert!(e.reason.contains("only with framing=length"));
        err(
            "osc.tcp://:1?framing=auto&length_at=2",
            "parameter 'length_at'",
        );
        err(
            "osc.udp://:1?framing=slip&length_field=u8",
            "parameter 'length_field'",
        );
        err("osc.unix:///x?stream&length_at=1", "parameter 'length_at'");
        err(
            "osc.unix:///x?length_at=1&framing=length",
            "parameter 'framing'",
        );
        err(
            "osc.tcp://h:1?framing=length&length_field=u24",
            "length_field=u24",
        );
        err(
            "osc.tcp://h:1?framing=length&length_field=u32",
            "length_field=u32",
        );
        let e = err(
            "osc.tcp://h:1?framing=length&length_at=4&header=6",
            "header=6",
        );
        assert!(e.reason.contains("too short"));
        err(
            "osc.tcp://h:1?framing=length&length_at=255",
            "length_at=255",
        );
        let e = err(
            "osc.tcp://h:1?framing=length&length_at=252",
            "length_at=252",
        );
        assert!(e.reason.contains("255-byte header"));
        err("osc.tcp://h:1?framing=length&header=0", "header=0");
        err("osc.tcp://h:1?framing=length&header=256", "header=256");
        // Options that only a sending URL can use.
        err("osc.udp://:9000?local=9001", "parameter 'local'");
        err("osc.udp://:9000?broadcast=1", "parameter 'broadcast'");
        err("osc.udp://:9000?family=6", "parameter 'family'");
        err("osc.udp://h:9000?family=5", "family=5");
        assert_eq!(udp("osc.udp://h:1?family=6").2.family, Some(IpFamily::V6));
        err("osc.udp://:9000?connect=1", "parameter 'connect'");
        err("osc.udp://h:9000?connect=2", "connect=2");
        assert_eq!(udp("osc.udp://h:1?connect=1").2.connect, Some(true));
        assert_eq!(udp("osc.udp://h:1?connect").2.connect, Some(true));
    }

    #[test]
    fn tcp_options() {
        let (_, _, opts) = tcp(
            "osc.tcp://127.0.0.1:9000/?bind=127.0.0.1&local=5000&framing=slip&max_frame=1048576\
             &reconnect=1&retries=0&backoff_ms=250&family=6",
        );
        assert_eq!(
            opts,
            TcpOptions {
                bind: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                local: Some(5000),
                framing: Some(StreamFraming::Slip),
                max_frame: Some(1 << 20),
                max_clients: None,
                nodelay: None,
                reconnect: Some(true),
                retries: Some(0),
                backoff_ms: Some(250),
                family: Some(IpFamily::V6),
            }
        );
        let opts = tcp("osc.tcp://:9000?framing=auto&max_clients=500&max_frame=4294967295").2;
        assert_eq!(opts.nodelay, None);
        assert_eq!(tcp("osc.tcp://:9000?nodelay=0").2.nodelay, Some(false));
        assert_eq!(tcp("osc.tcp://h:1?nodelay=1").2.nodelay, Some(true));
        assert_eq!(
            tcp("osc.tcp://h:1?framing=slip-single").2.framing,
            Some(StreamFraming::SlipSingleEnd)
        );
        assert_eq!(opts.framing, Some(StreamFraming::Auto));
        assert_eq!(opts.max_clients, Some(500));
        assert_eq!(opts.max_frame, Some(4_294_967_295));
        assert_eq!(
            tcp("osc.tcp://h:1?framing=length&retries=4294967295").2,
            TcpOptions {
                framing: Some(StreamFraming::Length),
                retries: Some(u32::MAX),
                ..TcpOptions::default()
            }
        );
        assert_eq!(tcp("osc.tcp://h:1?reconnect").2.reconnect, Some(true));
    }

    #[test]
    fn tcp_option_errors() {
        err("osc.tcp://h:1?framing=json", "parameter 'framing=json'");
        err("osc.tcp://h:1?framing", "parameter 'framing'");
        err("osc.tcp://h:1?max_frame=0", "parameter 'max_frame=0'");
        err(
            "osc.tcp://h:1?max_frame=4294967296",
            "parameter 'max_frame=4294967296'",
        );
        err("osc.tcp://:1?max_clients=0", "parameter 'max_clients=0'");
        err(
            "osc.tcp://h:1?retries=4294967296",
            "parameter 'retries=4294967296'",
        );
        err("osc.tcp://h:1?backoff_ms=0", "parameter 'backoff_ms=0'");
        err("osc.tcp://h:1?backoff_ms=1.5", "parameter 'backoff_ms=1.5'");
        err(
            "osc.tcp://h:1?backoff_ms=99999999999999999999",
            "parameter 'backoff_ms",
        );
        err("osc.tcp://h:1?reconnect=2", "parameter 'reconnect=2'");
        err("osc.tcp://h:1?ttl=2", "parameter 'ttl'");
        err("osc.tcp://h:1?listen", "parameter 'listen'");
        // Sender-only and listener-only options.
        err("osc.tcp://:1?local=5", "parameter 'local'");
        err("osc.tcp://:1?reconnect=1", "parameter 'reconnect'");
        err("osc.tcp://:1?retries=1", "parameter 'retries'");
        err("osc.tcp://:1?backoff_ms=1", "parameter 'backoff_ms'");
        err("osc.tcp://h:1?max_clients=5", "parameter 'max_clients'");
        err("osc.tcp://h:1?framing=auto", "parameter 'framing'");
    }

    // --- osc.unix ----------------------------------------------------------------------

    #[test]
    fn unix_three_liblo_spellings() {
        let expected = (PathBuf::from("/tmp/x.sock"), UnixOptions::default());
        for url in [
            "osc.unix:///tmp/x.sock",
            "osc.unix://localhost:/tmp/x.sock",
            "osc.unix:////tmp/x.sock",
            "osc.unix://localhost/tmp/x.sock",
            "osc.unix://LOCALHOST:/tmp/x.sock",
            "osc.unix://///tmp/x.sock",
        ] {
            let (path, opts) = unix(url);
            assert_eq!(path.as_os_str(), expected.0.as_os_str(), "{url}");
            assert_eq!(opts, expected.1, "{url}");
            assert_eq!(ok(url).to_string(), "osc.unix:///tmp/x.sock");
            assert!(!ok(url).is_listener());
        }
    }

    #[test]
    fn unix_options() {
        let (path, opts) = unix("osc.unix:///tmp/x.sock?listen");
        assert_eq!(path, PathBuf::from("/tmp/x.sock"));
        assert_eq!(
            opts,
            UnixOptions {
                listen: true,
                ..UnixOptions::default()
            }
        );
        assert!(ok("osc.unix:///tmp/x.sock?listen").is_listener());
        assert!(!ok("osc.unix:///tmp/x.sock?stream").is_listener());
        let both = UnixOptions {
            listen: true,
            stream: true,
            ..UnixOptions::default()
        };
        assert_eq!(unix("osc.unix:///tmp/x.sock?listen&stream").1, both);
        assert_eq!(unix("osc.unix:///tmp/x.sock?stream&listen").1, both);
        assert_eq!(unix("osc.unix:///tmp/x.sock?listen=1&stream=1").1, both);
        assert_eq!(
            unix("osc.unix://localhost:/tmp/x.sock?listen&stream").1,
            both
        );
        assert_eq!(
            unix("osc.unix:///tmp/x.sock?listen=0").1,
            UnixOptions::default()
        );
        assert_eq!(
            unix("osc.unix:///tmp/x.sock?listen&stream&framing=auto&max_frame=65536").1,
            UnixOptions {
                listen: true,
                stream: true,
                framing: Some(StreamFraming::Auto),
                max_frame: Some(65536),
            }
        );
        assert_eq!(
            unix("osc.unix:///tmp/x.sock?stream&framing=slip").1.framing,
            Some(StreamFraming::Slip)
        );
    }

    #[test]
    fn unix_percent_decoding() {
        assert_eq!(
            unix("osc.unix:///tmp/my%20dir/x%3Fy%23z.sock").0,
            PathBuf::from("/tmp/my dir/x?y#z.sock")
        );
        assert_eq!(
            unix("osc.unix:///tmp/%C3%A9.sock").0,
            PathBuf::from("/tmp/é.sock")
        );
        assert_eq!(
            unix("osc.unix:///tmp/é.sock").0,
            PathBuf::from("/tmp/é.sock")
        );
        assert_eq!(unix("osc.unix:///tmp/a%25b").0, PathBuf::from("/tmp/a%b"));
    }

    #[cfg(unix)]
    #[test]
    fn unix_non_utf8_path_round_trips() {
        use std::os::unix::ffi::OsStrExt;
        let url = ok("osc.unix:///tmp/%FF.sock");
        match &url {
            ChannelUrl::Unix { path, .. } => {
                assert_eq!(path.as_os_str().as_bytes(), b"/tmp/\xFF.sock")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(url.to_string(), "osc.unix:///tmp/%FF.sock");
        assert_eq!(ok(&url.to_string()), url);
    }

    #[test]
    fn unix_errors() {
        err("osc.unix://x.sock", "path 'x.sock'");
        err("osc.unix://tmp/x.sock", "path 'tmp/x.sock'");
        err("osc.unix://localhost:tmp/x.sock", "path 'tmp/x.sock'");
        err("osc.unix://vm:/tmp/x.sock", "host 'vm'");
        assert_eq!(err("osc.unix://", "path").part, "path");
        assert_eq!(err("osc.unix://localhost:", "path").part, "path");
        assert_eq!(err("osc.unix://?listen", "path").part, "path");
        err("osc.unix:///", "path '/'");
        err("osc.unix:////", "path '//'");
        err("osc.unix:///tmp/", "path '/tmp/'");
        err("osc.unix:///tmp/a%00b", "path '/tmp/a%00b'");
        err("osc.unix:///tmp/a%zz", "path '/tmp/a%zz'");
        err("osc.unix:/tmp/x.sock", "scheme 'osc.unix'");
        err("osc.unix:///tmp/x.sock?bind=1.2.3.4", "parameter 'bind'");
        err(
            "osc.unix:///tmp/x.sock?listen=maybe",
            "parameter 'listen=maybe'",
        );
        err("osc.unix:///tmp/x.sock?listen&listen", "parameter 'listen'");
        err("osc.unix:///tmp/x.sock?framing=slip", "parameter 'framing'");
        err(
            "osc.unix:///tmp/x.sock?max_frame=10",
            "parameter 'max_frame'",
        );
        err(
            "osc.unix:///tmp/x.sock?stream&framing=auto",
            "parameter 'framing'",
        );
        err(
            "osc.unix:///tmp/x.sock?stream&max_frame=0",
            "parameter 'max_frame=0'",
        );
    }

    // --- o2lite ----------------------------------------------------------------------

    #[test]
    fn o2lite_forms() {
        assert_eq!(
            ok("o2lite://rosco-test"),
            ChannelUrl::O2lite {
                ensemble: "rosco-test".into(),
                host: None,
                opts: SessionOptions::default(),
            }
        );
        assert_eq!(ok("o2lite://rosco-test/"), ok("o2lite://rosco-test"));
        assert_eq!(
            ok("o2lite://ens@127.0.0.1:64541"),
            ChannelUrl::O2lite {
                ensemble: "ens".into(),
                host: Some((Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), 64541)),
                opts: SessionOptions::default(),
            }
        );
        assert_eq!(
            ok("o2lite://ens@vm.local:5000/?udp_port=5001&reconnect=0&retries=3&backoff_ms=500"),
            ChannelUrl::O2lite {
                ensemble: "ens".into(),
                host: Some((Host::Name("vm.local".into()), 5000)),
                opts: SessionOptions {
                    reconnect: Some(false),
                    retries: Some(3),
                    backoff_ms: Some(500),
                    udp_port: Some(5001),
                },
            }
        );
        match ok("o2lite://ens@[::1]:5000") {
            ChannelUrl::O2lite { host, .. } => {
                assert_eq!(
                    host,
                    Some((Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)), 5000))
                );
            }
            other => panic!("{other:?}"),
        }
        match ok("o2lite://my%23ens%25?reconnect") {
            ChannelUrl::O2lite { ensemble, opts, .. } => {
                assert_eq!(ensemble, "my#ens%");
                assert_eq!(opts.reconnect, Some(true));
            }
            other => panic!("{other:?}"),
        }
        assert!(!ok("o2lite://ens").is_listener());
        assert_eq!(ok("o2lite://ens").scheme(), "o2lite");
        let max = "e".repeat(63);
        assert!(ChannelUrl::parse(&format!("o2lite://{max}")).is_ok());
    }

    #[test]
    fn o2lite_errors() {
        assert_eq!(err("o2lite://", "ensemble").part, "ensemble");
        assert_eq!(err("o2lite://?reconnect=1", "ensemble").part, "ensemble");
        assert_eq!(err("o2lite://@h:1", "ensemble").part, "ensemble");
        err("o2lite://ens:5000", "ensemble 'ens:5000'");
        err("o2lite://a%2Fb", "ensemble 'a%2Fb'");
        err("o2lite://a%3Fb", "ensemble 'a%3Fb'");
        err("o2lite://a%20", "ensemble 'a%20'");
        err("o2lite://a%00", "ensemble 'a%00'");
        err("o2lite://a@b@h:1", "ensemble 'a@b'");
        err("o2lite://a%40b", "ensemble 'a%40b'");
        err(&format!("o2lite://{}", "e".repeat(64)), "ensemble");
        assert_eq!(err("o2lite://ens@h", "port").part, "port");
        assert_eq!(err("o2lite://ens@", "host").part, "host");
        err("o2lite://ens@h:0", "port 0");
        err("o2lite://ens@h:70000", "port 70000");
        err("o2lite://ens@[::1:5", "host '[::1:5'");
        err("o2lite://ens?udp_port=5001", "parameter 'udp_port'");
        err("o2lite://ens@h:1?udp_port=0", "parameter 'udp_port=0'");
        err(
            "o2lite://ens@h:1?udp_port=65536",
            "parameter 'udp_port=65536'",
        );
        err("o2lite://ens@h:1?ttl=1", "parameter 'ttl'");
        err("o2lite://ens?retries=x", "parameter 'retries=x'");
    }

    #[test]
    fn o2lite_host_forms() {
        assert_eq!(
            ok("o2lite-host://ens"),
            ChannelUrl::O2liteHost {
                ensemble: "ens".into(),
                port: None,
                udp_port: None,
                mdns: None,
            }
        );
        assert_eq!(
            ok("o2lite-host://ens:64541/?udp_port=64542"),
            ChannelUrl::O2liteHost {
                ensemble: "ens".into(),
                port: Some(64541),
                udp_port: Some(64542),
                mdns: None,
            }
        );
        assert_eq!(
            ok("O2LITE-HOST://ens:0?udp_port=0"),
            ChannelUrl::O2liteHost {
                ensemble: "ens".into(),
                port: Some(0),
                udp_port: Some(0),
                mdns: None,
            }
        );
        assert_eq!(
            ok("o2lite-host://ens?mdns=0"),
            ChannelUrl::O2liteHost {
                ensemble: "ens".into(),
                port: None,
                udp_port: None,
                mdns: Some(false),
            }
        );
        assert!(ok("o2lite-host://ens").is_listener());
        assert_eq!(ok("o2lite-host://ens").scheme(), "o2lite-host");
    }

    #[test]
    fn o2lite_host_errors() {
        assert_eq!(err("o2lite-host://", "ensemble").part, "ensemble");
        assert_eq!(err("o2lite-host://:5000", "ensemble").part, "ensemble");
        assert_eq!(err("o2lite-host://ens:", "port").part, "port");
        err("o2lite-host://ens:99999", "port 99999");
        err("o2lite-host://ens:x", "port x");
        err("o2lite-host://ens:1:2", "port 1:2");
        err("o2lite-host://ens@h:1", "host 'h:1'");
        err("o2lite-host://ens?reconnect=1", "parameter 'reconnect'");
        err(
            "o2lite-host://ens?udp_port=65536",
            "parameter 'udp_port=65536'",
        );
        err("o2lite-host://e%2Fns", "ensemble 'e%2Fns'");
    }

    // --- oocsi -------------------------------------------------------------------------

    #[test]
    fn oocsi_forms() {
        assert_eq!(
            ok("oocsi://sensor1@127.0.0.1:14444"),
            ChannelUrl::Oocsi {
                handle: "sensor1".into(),
                host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port: 14444,
                opts: SessionOptions::default(),
            }
        );
        // The default port comes from specs/oocsi.md (§1, §11): 4444.
        assert_eq!(
            ok("oocsi://me@oocsi.example.org"),
            ChannelUrl::Oocsi {
                handle: "me".into(),
                host: Host::Name("oocsi.example.org".into()),
                port: OOCSI_DEFAULT_PORT,
                opts: SessionOptions::default(),
            }
        );
        assert_eq!(OOCSI_DEFAULT_PORT, 4444);
        assert_eq!(ok("oocsi://me@h/"), ok("oocsi://me@h:4444"));
        match ok("oocsi://sensor%23%23@h") {
            ChannelUrl::Oocsi { handle, .. } => assert_eq!(handle, "sensor##"),
            other => panic!("{other:?}"),
        }
        match ok("oocsi://name:secret@h:1") {
            ChannelUrl::Oocsi { handle, port, .. } => {
                assert_eq!((handle.as_str(), port), ("name:secret", 1));
            }
            other => panic!("{other:?}"),
        }
        match ok("oocsi://@h") {
            ChannelUrl::Oocsi { handle, .. } => assert_eq!(handle, OOCSI_AUTO_HANDLE),
            other => panic!("{other:?}"),
        }
        match ok("oocsi://me@[::1]:4444?reconnect=1&retries=0&backoff_ms=1000") {
            ChannelUrl::Oocsi { host, opts, .. } => {
                assert_eq!(host, Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
                assert_eq!(
                    opts,
                    SessionOptions {
                        reconnect: Some(true),
                        retries: Some(0),
                        backoff_ms: Some(1000),
                        udp_port: None,
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(!ok("oocsi://me@h").is_listener());
        assert_eq!(ok("oocsi://me@h").scheme(), "oocsi");
        assert!(ChannelUrl::parse(&format!("oocsi://{}@h", "h".repeat(200))).is_ok());
    }

    #[test]
    fn oocsi_errors() {
        let e = err("oocsi://h:4444", "handle");
        assert_eq!(e.part, "handle");
        assert!(e.reason.contains('@'));
        err("oocsi://h", "handle");
        assert_eq!(err("oocsi://me@", "host").part, "host");
        assert_eq!(err("oocsi://me@:4444", "host").part, "host");
        err("oocsi://me@h:0", "port 0");
        err("oocsi://me@h:65536", "port 65536");
        err("oocsi://me@h:", "port");
        err("oocsi://a%20b@h", "handle 'a%20b'");
        err("oocsi://%C3%A9@h", "handle '%C3%A9'");
        err("oocsi://a%2@h", "handle 'a%2'");
        err(&format!("oocsi://{}@h", "h".repeat(201)), "handle");
        err("oocsi://me@h?udp_port=1", "parameter 'udp_port'");
        err("oocsi://me@h?handle=x", "parameter 'handle'");
        err("oocsi://me@h?backoff_ms=0", "parameter 'backoff_ms=0'");
        err("oocsi://me@bad%host", "host 'bad%host'");
    }

    // --- errors ----------------------------------------------------------------------

    #[test]
    fn error_display_is_one_line_with_the_url() {
        let e = ChannelUrl::parse("osc.udp://h:1?nope=1").unwrap_err();
        assert_eq!(
            e,
            UrlError {
                url: "osc.udp://h:1?nope=1".into(),
                part: "parameter 'nope'".into(),
                reason: UDP_KEYS,
            }
        );
        let text = e.to_string();
        assert!(text.starts_with("bad URL 'osc.udp://h:1?nope=1': parameter 'nope': unknown"));
        assert!(!text.contains('\n'));
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert_eq!(boxed.to_string(), text);
        let via_from_str = "osc.xyz://a:1".parse::<ChannelUrl>().unwrap_err();
        assert_eq!(via_from_str.part, "scheme 'osc.xyz'");
    }

    // --- printing ----------------------------------------------------------------------

    #[test]
    fn display_canonical_forms() {
        for (url, shown) in [
            ("osc.udp://127.0.0.1:9000", "osc.udp://127.0.0.1:9000/"),
            ("osc://127.0.0.1:9000", "osc.udp://127.0.0.1:9000/"),
            ("osc.udp://[::1]:9000", "osc.udp://[::1]:9000/"),
            ("osc.udp://[0:0:0:0:0:0:0:1]:9000", "osc.udp://[::1]:9000/"),
            ("osc.udp://:9000", "osc.udp://:9000/"),
            ("osc.udp://Vm.Local:9000", "osc.udp://Vm.Local:9000/"),
            ("osc.tcp://vm:19099", "osc.tcp://vm:19099/"),
            ("osc.unix://localhost:/tmp/x.sock", "osc.unix:///tmp/x.sock"),
            (
                "osc.unix:////tmp/x.sock?stream&listen",
                "osc.unix:///tmp/x.sock?listen&stream",
            ),
            (
                "osc.udp://239.1.2.3:7000?max_packet=9000&ttl=4&iface=eth0&loop=0",
                "osc.udp://239.1.2.3:7000/?iface=eth0&ttl=4&loop=0&max_packet=9000",
            ),
            (
                "osc.udp://:9000?reuse=true&bind=::1",
                "osc.udp://:9000/?bind=::1&reuse=1",
            ),
            (
                "osc.tcp://h:1?backoff_ms=5&framing=slip&reconnect=1",
                "osc.tcp://h:1/?framing=slip&reconnect=1&backoff_ms=5",
            ),
            ("o2lite://ens", "o2lite://ens"),
            ("o2lite://ens/", "o2lite://ens"),
            (
                "o2lite://ens@127.0.0.1:5000/",
                "o2lite://ens@127.0.0.1:5000",
            ),
            (
                "o2lite://ens@h:5?udp_port=6&retries=1",
                "o2lite://ens@h:5?retries=1&udp_port=6",
            ),
            ("o2lite://my%23ens%25", "o2lite://my%23ens%25"),
            ("o2lite://a%62c", "o2lite://abc"),
            ("o2lite-host://ens", "o2lite-host://ens"),
            (
                "o2lite-host://ens:7?udp_port=8",
                "o2lite-host://ens:7?udp_port=8",
            ),
            ("oocsi://me@h", "oocsi://me@h:4444"),
            ("oocsi://sensor%23%23@h:1", "oocsi://sensor%23%23@h:1"),
            ("oocsi://@h", "oocsi://rosco_%23%23%23%23%23%23@h:4444"),
            ("oocsi://n:pw@h", "oocsi://n:pw@h:4444"),
            (
                "osc.udp://h:1?iface=Ethernet%202",
                "osc.udp://h:1/?iface=Ethernet%202",
            ),
        ] {
            assert_eq!(ok(url).to_string(), shown, "{url}");
        }
    }

    #[test]
    fn display_of_built_values() {
        let url = ChannelUrl::Udp {
            host: Some(Host::Ip("ff02::1".parse().unwrap())),
            port: 7000,
            opts: UdpOptions {
                iface: Some("a&b=c d%#?".into()),
                ..UdpOptions::default()
            },
        };
        assert_eq!(
            url.to_string(),
            "osc.udp://[ff02::1]:7000/?iface=a%26b%3Dc%20d%25%23%3F"
        );
        assert_eq!(ok(&url.to_string()), url);
        let url = ChannelUrl::Unix {
            path: PathBuf::from("/tmp/a b?#%.sock"),
            opts: UnixOptions::default(),
        };
        assert_eq!(url.to_string(), "osc.unix:///tmp/a%20b%3F%23%25.sock");
        assert_eq!(ok(&url.to_string()), url);
        let url = ChannelUrl::Oocsi {
            handle: "a@b#c".into(),
            host: Host::Name("h".into()),
            port: 2,
            opts: SessionOptions::default(),
        };
        assert_eq!(url.to_string(), "oocsi://a%40b%23c@h:2");
        assert_eq!(ok(&url.to_string()), url);
        assert_eq!(StreamFraming::Length.to_string(), "length");
        assert_eq!(StreamFraming::Slip.as_str(), "slip");
        assert_eq!(StreamFraming::SlipSingleEnd.as_str(), "slip-single");
        assert_eq!(StreamFraming::Auto.as_str(), "auto");
    }

    const ROUND_TRIP: &[&str] = &[
        "osc.udp://127.0.0.1:9000",
        "osc.udp://127.0.0.1:9000/",
        "osc://localhost:57120",
        "osc.udp://:0",
        "osc.udp://:9000?bind=127.0.0.1",
        "osc.udp://:9000?bind=0.0.0.0&reuse=1&max_packet=8192",
        "osc.udp://:9000?framing=length&max_frame=4096&max_clients=3",
        "osc.udp://h:9000?framing=slip-single&connect=1",
        "osc.udp://[::1]:9000/",
        "osc.udp://[ff02::1]:9000?iface=eth0&loop=1&ttl=1",
        "osc.udp://[::ffff:1.2.3.4]:9",
        "osc.udp://239.1.2.3:7000?iface=192.168.1.5&ttl=4&loop=0&reuse=1",
        "osc.udp://255.255.255.255:7000?broadcast=1",
        "osc.udp://vm.local:9000?local=9001&bind=::",
        "osc.udp://127.0.0.1:9000?connect=1&local=9001",
        "osc.udp://h:1?iface=%E2%82%AC%26x",
        "osc.tcp://127.0.0.1:9000",
        "osc.tcp://:9000?framing=auto&max_clients=500&max_frame=1048576",
        "osc.tcp://[::1]:9000?framing=slip&reconnect=0&retries=10&backoff_ms=100&local=1234",
        "osc.tcp://h:1?bind=10.0.0.1&framing=length",
        "osc.tcp://h:1?framing=length&length_field=u16le&length_at=2&header=6",
        "osc.udp://:9000?header=8&framing=length&length_field=u8",
        "osc.unix:///tmp/x.sock?stream&framing=length&length_at=1",
        "osc.unix:///tmp/x.sock",
        "osc.unix://localhost:/tmp/x.sock",
        "osc.unix:////tmp/x.sock",
        "osc.unix:///tmp/x.sock?listen",
        "osc.unix:///tmp/x.sock?stream",
        "osc.unix:///tmp/x.sock?listen&stream&framing=auto&max_frame=100",
        "osc.unix:///tmp/sp%20ace/%C3%A9/q%3F.sock?stream&framing=slip",
        "osc.unix:///run/user/1000/a:b@c=d&e.sock",
        "o2lite://rosco-test",
        "o2lite://rosco-test?reconnect=1&retries=0&backoff_ms=20000",
        "o2lite://a%23b%25c",
        "o2lite://ens@127.0.0.1:64541?udp_port=64542",
        "o2lite://ens@[fe80::1]:5",
        "o2lite-host://rosco-test",
        "o2lite-host://rosco-test:64541",
        "o2lite-host://rosco-test:0?udp_port=0",
        "o2lite-host://é",
        "oocsi://me@127.0.0.1:14444",
        "oocsi://me@oocsi.local",
        "oocsi://@h",
        "oocsi://sensor%23%23@h?reconnect=0",
        "oocsi://name:pw@[::1]:1?retries=5&backoff_ms=1",
        "oocsi://%5Bweird%5D%2F@h",
    ];

    #[test]
    fn display_round_trips() {
        for url in ROUND_TRIP {
            let parsed = ok(url);
            let shown = parsed.to_string();
            let again = ChannelUrl::parse(&shown)
                .unwrap_or_else(|e| panic!("{url} printed as {shown}, which fails: {e}"));
            assert_eq!(again, parsed, "{url} -> {shown}");
            assert_eq!(again.to_string(), shown, "{url}: printing is stable");
            assert_eq!(again.is_listener(), parsed.is_listener());
        }
    }

    /// Mutates valid URLs at random (a fixed-seed generator) and checks that parsing never
    /// panics, and that whatever parses prints to something that parses to the same value.
    #[test]
    fn mutated_urls_never_panic_and_round_trip() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: &[u8] = b"/:@?&=%[]#.0123456789abcfxAF-_ ~!";
        let mut parsed_ok = 0;
        for round in 0..20_000 {
            let base = ROUND_TRIP[round % ROUND_TRIP.len()];
            let mut bytes = base.as_bytes().to_vec();
            for _ in 0..=(next() % 3) {
                let at = (next() as usize) % (bytes.len() + 1);
                let c = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 if at < bytes.len() => bytes[at] = c,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, c),
                }
            }
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            if let Ok(parsed) = ChannelUrl::parse(&text) {
                parsed_ok += 1;
                let shown = parsed.to_string();
                let again = ChannelUrl::parse(&shown)
                    .unwrap_or_else(|e| panic!("{text} printed as {shown}, which fails: {e}"));
                assert_eq!(again, parsed, "{text} -> {shown}");
            }
        }
        assert!(parsed_ok > 1000, "only {parsed_ok} mutations parsed");
    }

    #[test]
    fn many_parameters_parse_in_linear_time() {
        // 200,000 distinct keys: the duplicate check used to compare each with every
        // earlier one (seconds for 100,000). Now the first unknown key is reported at once.
        let keys: Vec<String> = (0..200_000).map(|i| format!("k{i}")).collect();
        let url = format!("osc.udp://:9000/?{}", keys.join("&"));
        let start = std::time::Instant::now();
        let e = ChannelUrl::parse(&url).unwrap_err();
        assert_eq!((e.part.as_str(), e.reason), ("parameter 'k0'", UDP_KEYS));
        // A duplicate at the very end is still found (before the unknown keys are looked at).
        let url = format!("osc.udp://:9000/?{}&k123456=1", keys.join("&"));
        let e = ChannelUrl::parse(&url).unwrap_err();
        assert_eq!(
            (e.part.as_str(), e.reason),
            ("parameter 'k123456'", "given twice")
        );
        let took = start.elapsed();
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
        // Duplicates among valid keys, with and without values, as before.
        err("osc.udp://h:9?ttl=1&loop=0&ttl=2", "parameter 'ttl'");
        err("osc.tcp://:9?nodelay&nodelay", "parameter 'nodelay'");
        err(
            "osc.unix:///tmp/s?listen&stream&listen=0",
            "parameter 'listen'",
        );
        assert!(ChannelUrl::parse("osc.udp://h:9?ttl=1&loop=0").is_ok());
    }
}
