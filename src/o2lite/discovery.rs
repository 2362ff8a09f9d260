//! Finding O2 hosts with DNS-SD over multicast DNS (specs/o2lite.md §4.1, §8 item 1).
//!
//! An O2 host advertises one DNS-SD instance of type `_o2proc._tcp` in domain `local`:
//! the instance name is the ensemble name, the SRV port its O2 TCP port, and the TXT
//! record holds exactly `vers=2.0.1` and `name=@PPPPPPPP:IIIIIIII:TTTT:UUUU`
//! ([`O2ProcName`]). A client browses that type, keeps the instances that pass the three
//! acceptance rules of §4.1 ([`check`]) and tries them one at a time, connecting TCP to
//! `IIIIIIII:TTTT` and sending UDP to `IIIIIIII:UUUU`.
//!
//! [`Browser`] (client side) and [`Advertisement`] (host side) each own one `mdns-sd`
//! daemon: one background thread whose multicast sockets are bound to port 5353
//! (`SO_REUSEADDR`/`SO_REUSEPORT`, so several of them and a system responder such as
//! Avahi, coexist). O2 names carry IPv4 addresses only, so IPv6 is switched off. The
//! loopback interface is used as well, so discovery works on a machine (or in a network
//! namespace) whose only interface is `lo`, even without the `MULTICAST` flag or a
//! multicast route on it (the sockets name their outgoing interface explicitly).
//!
//! Only interfaces that are operationally up (carrier on) are used; the daemon looks
//! for new or changed interfaces every 5 seconds. A host becomes visible about 0.8 s
//! after [`Advertisement::start`] (RFC 6762 probing); a browser finds a running host
//! within 20 ms to 1.1 s (a responder answers a record at most once per second).
//!
//! Everything up to [`Browser`] is pure: parsing, formatting and the acceptance checks
//! take strings and ports, so they are tested without a network.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mdns_sd::{
    IfKind, Receiver, RecvTimeoutError, ResolvedService, ServiceDaemon, ServiceEvent, ServiceInfo,
    TryRecvError,
};

/// DNS-SD service type and domain under which O2 processes advertise (§14).
pub const SERVICE_TYPE: &str = "_o2proc._tcp.local.";

/// The O2 version a rosco host advertises in its TXT `vers` field (§8 item 1).
pub const O2_VERSION: &str = "2.0.1";

/// The only O2 major version a client accepts (§4.1 rule 3).
pub const O2_VERSION_MAJOR: u32 = 2;

/// Length of the TXT `name` value `@PPPPPPPP:IIIIIIII:TTTT:UUUU`.
pub const PROC_NAME_LEN: usize = 28;

/// How long reference clients browse without connecting before they restart browsing
/// (§14); a good default for calling [`Browser::restart`].
pub const RESTART_INTERVAL: Duration = Duration::from_secs(20);

/// Longest ensemble name that fits in one DNS label (an instance name is one label).
pub const ENSEMBLE_MAX_LEN: usize = 63;

/// The most instances of the ensemble a browse keeps track of: normally one host, a few
/// renamed ones (`ens (2)`) at most. Further instances are ignored until
/// [`Browser::restart`] starts afresh.
pub const MAX_INSTANCES: usize = 64;

/// The TXT `name` field of an O2 host: `"@PPPPPPPP:IIIIIIII:TTTT:UUUU"`.
///
/// `PPPPPPPP` is the public IPv4 address (`00000000` when unknown), `IIIIIIII` the LAN
/// ("internal") IPv4 address, `TTTT` and `UUUU` the O2 TCP and UDP ports, all lower-case
/// hexadecimal in network order. The first 23 characters are the O2 process name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct O2ProcName {
    /// Public IPv4 address; [`Ipv4Addr::UNSPECIFIED`] when not known.
    pub public_ip: Ipv4Addr,
    /// LAN address that clients connect to.
    pub internal_ip: Ipv4Addr,
    /// O2 TCP port (also the SRV port of the advertisement).
    pub tcp_port: u16,
    /// O2 UDP port.
    pub udp_port: u16,
}

impl O2ProcName {
    /// A name for a host on this machine: no public address, [`local_ipv4`] as the
    /// internal one.
    pub fn local(tcp_port: u16, udp_port: u16) -> O2ProcName {
        O2ProcName {
            public_ip: Ipv4Addr::UNSPECIFIED,
            internal_ip: local_ipv4(),
            tcp_port,
            udp_port,
        }
    }

    /// Parses a TXT `name` value: exactly 28 characters `@PPPPPPPP:IIIIIIII:TTTT:UUUU`,
    /// digits and lower-case `a`–`f` only. Anything else is `None`.
    pub fn parse(s: &str) -> Option<O2ProcName> {
        let b = s.as_bytes();
        if b.len() != PROC_NAME_LEN || b[0] != b'@' || b[9] != b':' || b[18] != b':' {
            return None;
        }
        if b[23] != b':' {
            return None;
        }
        Some(O2ProcName {
            public_ip: Ipv4Addr::from(lower_hex(&b[1..9])?),
            internal_ip: Ipv4Addr::from(lower_hex(&b[10..18])?),
            tcp_port: u16::try_from(lower_hex(&b[19..23])?).ok()?,
            udp_port: u16::try_from(lower_hex(&b[24..28])?).ok()?,
        })
    }

    /// Formats the TXT `name` value (28 characters, lower-case hex).
    pub fn to_txt(&self) -> String {
        format!(
            "@{:08x}:{:08x}:{:04x}:{:04x}",
            u32::from(self.public_ip),
            u32::from(self.internal_ip),
            self.tcp_port,
            self.udp_port
        )
    }

    /// The O2 process name: the first 23 characters of [`to_txt`](Self::to_txt),
    /// `@PPPPPPPP:IIIIIIII:TTTT`.
    pub fn process_name(&self) -> String {
        let mut s = self.to_txt();
        s.truncate(23);
        s
    }
}

impl fmt::Display for O2ProcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_txt())
    }
}

/// Value of 1 to 8 lower-case hex digits; `None` on any other byte.
fn lower_hex(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u32::from(v))
    })
}

/// Parses an O2 version `major.minor.patch` (three decimal numbers, digits only).
pub fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    fn num(part: Option<&str>) -> Option<u32> {
        let part = part?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    }
    let mut parts = s.split('.');
    let version = (num(parts.next())?, num(parts.next())?, num(parts.next())?);
    match parts.next() {
        None => Some(version),
        Some(_) => None,
    }
}

/// A host found by browsing that passed the checks of spec §4.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The DNS-SD instance name: the ensemble, possibly with a collision suffix.
    pub instance: String,
    /// The host's TXT `name`.
    pub name: O2ProcName,
    /// The host's O2 version from TXT `vers`.
    pub version: (u32, u32, u32),
    /// Where to connect TCP: `internal_ip:tcp_port`.
    pub tcp: SocketAddr,
    /// Where to send UDP: `internal_ip:udp_port`.
    pub udp: SocketAddr,
}

/// Whether a DNS-SD instance name belongs to `ensemble`: equal, or `ensemble` followed by
/// `" ("` (Bonjour/`mdns-sd` collision suffix `" (2)"`) or `" #"` (Avahi's `" #2"`).
///
/// Comparison is exact (case-sensitive), as O2 compares ensemble names.
pub fn instance_matches(instance: &str, ensemble: &str) -> bool {
    match instance.strip_prefix(ensemble) {
        Some(rest) => rest.is_empty() || rest.starts_with(" (") || rest.starts_with(" #"),
        None => false,
    }
}

/// Why [`evaluate`] refused a resolved instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The instance name is not the ensemble (rule 1).
    OtherEnsemble,
    /// No TXT `name` key (rule 2).
    MissingName,
    /// TXT `name` is not 28 characters `@PPPPPPPP:IIIIIIII:TTTT:UUUU` in lower-case hex
    /// (rule 2).
    BadName(String),
    /// The TCP port in TXT `name` differs from the SRV port (rule 2).
    PortMismatch {
        /// Port of the SRV record.
        srv: u16,
        /// `TTTT` of TXT `name`.
        name: u16,
    },
    /// No TXT `vers` key (rule 3).
    MissingVersion,
    /// TXT `vers` is not `major.minor.patch` (rule 3).
    BadVersion(String),
    /// The O2 major version is not 2 (rule 3).
    UnsupportedMajor(u32),
    /// TXT `name` gives an address no client can reach: an internal IP that is unspecified,
    /// broadcast or multicast, or a port 0.
    Unreachable(String),
    /// [`MAX_INSTANCES`] instances of the ensemble are known already (anyone on the LAN
    /// can announce them).
    TooMany,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::OtherEnsemble => f.write_str("instance belongs to another ensemble"),
            Rejection::MissingName => f.write_str("TXT record has no `name`"),
            Rejection::BadName(n) => write!(f, "TXT `name` {n:?} is not an O2 process name"),
            Rejection::PortMismatch { srv, name } => {
                write!(
                    f,
                    "TCP port {name} in TXT `name` differs from SRV port {srv}"
                )
            }
            Rejection::MissingVersion => f.write_str("TXT record has no `vers`"),
            Rejection::BadVersion(v) => write!(f, "TXT `vers` {v:?} is not major.minor.patch"),
            Rejection::UnsupportedMajor(m) => {
                write!(
                    f,
                    "O2 major version {m} (only {O2_VERSION_MAJOR} is supported)"
                )
            }
            Rejection::Unreachable(n) => write!(f, "TXT `name` {n:?} gives no reachable address"),
            Rejection::TooMany => write!(f, "{MAX_INSTANCES} instances are known already"),
        }
    }
}

impl std::error::Error for Rejection {}

/// First value of TXT `key`; keys compare case-insensitively (RFC 6763 §6.4), and only
/// the first occurrence of a key counts (§6.4: later ones are ignored).
fn txt_get<'a>(txt: &'a [(String, String)], key: &str) -> Option<&'a str> {
    txt.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Checks a resolved instance (instance name, SRV port, TXT key/values) against the
/// acceptance rules 1–3 of §4.1 and says why it fails. Unknown TXT keys are ignored.
pub fn evaluate(
    ensemble: &str,
    instance: &str,
    srv_port: u16,
    txt: &[(String, String)],
) -> Result<Candidate, Rejection> {
    if !instance_matches(instance, ensemble) {
        return Err(Rejection::OtherEnsemble);
    }
    let name_txt = txt_get(txt, "name").ok_or(Rejection::MissingName)?;
    let name = O2ProcName::parse(name_txt).ok_or_else(|| Rejection::BadName(name_txt.into()))?;
    if name.tcp_port != srv_port {
        return Err(Rejection::PortMismatch {
            srv: srv_port,
            name: name.tcp_port,
        });
    }
    let ip = name.internal_ip;
    let no_port = name.tcp_port == 0 || name.udp_port == 0;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || no_port {
        return Err(Rejection::Unreachable(name_txt.into()));
    }
    let vers = txt_get(txt, "vers").ok_or(Rejection::MissingVersion)?;
    let version = parse_version(vers).ok_or_else(|| Rejection::BadVersion(vers.into()))?;
    if version.0 != O2_VERSION_MAJOR {
        return Err(Rejection::UnsupportedMajor(version.0));
    }
    Ok(Candidate {
        instance: instance.to_owned(),
        tcp: SocketAddr::from((name.internal_ip, name.tcp_port)),
        udp: SocketAddr::from((name.internal_ip, name.udp_port)),
        name,
        version,
    })
}

/// Checks a resolved instance (instance name, SRV port, TXT key/values) against §4.1
/// rules 1–3; `Some(candidate)` when acceptable. See [`evaluate`] for the reason of a
/// refusal.
pub fn check(
    ensemble: &str,
    instance: &str,
    srv_port: u16,
    txt: &[(String, String)],
) -> Option<Candidate> {
    evaluate(ensemble, instance, srv_port, txt).ok()
}

/// The address a host should advertise as its internal IP: the IPv4 source address the
/// kernel picks toward the default route, else toward the mDNS group, else 127.0.0.1.
///
/// No packet is sent (a UDP `connect` only looks up the route). On a LAN this is the
/// address of the default interface; in a network namespace with only `lo` it is
/// 127.0.0.1; in a namespace with a veth and a default route, the veth's address.
pub fn local_ipv4() -> Ipv4Addr {
    // TEST-NET-1 (RFC 5737) stands for "anywhere beyond the default route".
    let probes = [
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 9)),
        SocketAddr::from((Ipv4Addr::new(224, 0, 0, 251), 5353)),
    ];
    probes
        .iter()
        .find_map(|dest| {
            let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
            sock.connect(dest).ok()?;
            match sock.local_addr().ok()?.ip() {
                IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
                _ => None,
            }
        })
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

fn mdns_error(e: mdns_sd::Error) -> io::Error {
    io::Error::other(format!("mDNS: {e}"))
}

fn check_ensemble(ensemble: &str) -> io::Result<()> {
    if ensemble.is_empty() || ensemble.len() > ENSEMBLE_MAX_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("ensemble name must be 1 to {ENSEMBLE_MAX_LEN} bytes: {ensemble:?}"),
        ));
    }
    Ok(())
}

/// A daemon on IPv4 interfaces only (loopback included, as `mdns-sd` does by default).
fn new_daemon() -> io::Result<ServiceDaemon> {
    let daemon = ServiceDaemon::new().map_err(mdns_error)?;
    if let Err(e) = daemon.disable_interface(IfKind::IPv6) {
        let _ = daemon.shutdown();
        return Err(mdns_error(e));
    }
    Ok(daemon)
}

/// The instance label of a full service name `instance._o2proc._tcp.local.` as
/// `mdns-sd` reports it (the label verbatim: a `.` inside it is not escaped).
fn instance_of(fullname: &str) -> Option<String> {
    let split = fullname.len().checked_sub(SERVICE_TYPE.len() + 1)?;
    let (label, suffix) = (fullname.get(..split)?, fullname.get(split..)?);
    let suffix = suffix.strip_prefix('.')?;
    if label.is_empty() || !suffix.eq_ignore_ascii_case(SERVICE_TYPE) {
        return None;
    }
    Some(label.to_owned())
}

/// TXT properties as (key, value) strings; a key without `=` gets an empty value.
fn txt_pairs(service: &ResolvedService) -> Vec<(String, String)> {
    service
        .txt_properties
        .iter()
        .map(|p| {
            let val = String::from_utf8_lossy(p.val().unwrap_or_default()).into_owned();
            (p.key().to_owned(), val)
        })
        .collect()
}

/// Browses `_o2proc._tcp.local.` for `ensemble` in the background; acceptable hosts
/// arrive in order of discovery.
///
/// Each acceptable instance is returned once. It is returned again after
/// [`restart`](Self::restart), or when it re-appears with different data (the host
/// restarted on other ports) or after it was withdrawn. A candidate that is withdrawn
/// (mDNS goodbye) or changes before it was taken is dropped from the queue. If
/// `mdns-sd`'s event channel (1000 events) overflows because the browser is not polled,
/// browsing restarts by itself, as [`restart`](Self::restart) does.
///
/// All methods take `&self`; the browser can be shared between threads. Dropping it stops
/// browsing and its daemon thread.
pub struct Browser {
    ensemble: String,
    daemon: ServiceDaemon,
    state: Mutex<BrowseState>,
}

struct BrowseState {
    /// Events of the current browse.
    events: Receiver<ServiceEvent>,
    /// Incremented by every (re)browse; events of older browses are ignored.
    generation: u64,
    candidates: Candidates,
}

/// The candidates of one browse.
#[derive(Default)]
struct Candidates {
    /// Not yet taken, oldest first.
    pending: VecDeque<Candidate>,
    /// The newest acceptable candidate of every live instance, taken or not.
    known: Vec<Candidate>,
    /// Instances of the ensemble refused and why, to be reported, oldest first.
    refused: Vec<(String, Rejection)>,
    /// What was refused already, so that an instance announcing itself again is not
    /// reported again; forgotten when the instance goes.
    refused_before: Vec<(String, Rejection)>,
}

impl Candidates {
    fn forget(&mut self, instance: &str) {
        self.pending.retain(|c| c.instance != instance);
        self.known.retain(|c| c.instance != instance);
    }

    /// Keeps `why` to be reported, once per instance and reason, up to [`MAX_INSTANCES`].
    fn refuse(&mut self, instance: String, why: Rejection) {
        let refusal = (instance, why);
        if !self.refused_before.contains(&refusal) && self.refused_before.len() < MAX_INSTANCES {
            self.refused_before.push(refusal.clone());
            self.refused.push(refusal);
        }
    }

    fn handle(&mut self, ensemble: &str, event: ServiceEvent) {
        match event {
            ServiceEvent::ServiceResolved(service) => {
                let Some(instance) = instance_of(&service.fullname) else {
                    return;
                };
                if !instance_matches(&instance, ensemble) {
                    return; // the common case on a busy LAN: skip the TXT work
                }
                match evaluate(ensemble, &instance, service.port, &txt_pairs(&service)) {
                    Ok(c) if self.known.contains(&c) => {}
                    Ok(c) => {
                        self.forget(&instance);
                        // Anyone on the LAN can announce instances: only so many are kept.
                        if self.known.len() < MAX_INSTANCES {
                            self.known.push(c.clone());
                            self.pending.push_back(c);
                        } else {
                            self.refuse(instance, Rejection::TooMany);
                        }
                    }
                    Err(why) => {
                        self.forget(&instance);
                        self.refuse(instance, why);
                    }
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                if let Some(instance) = instance_of(&fullname) {
                    self.forget(&instance);
                    self.refused_before.retain(|(i, _)| *i != instance);
                }
            }
            _ => {}
        }
    }
}

impl Browser {
    /// Starts browsing for hosts of `ensemble` (1 to 63 bytes).
    pub fn start(ensemble: &str) -> io::Result<Browser> {
        check_ensemble(ensemble)?;
        let daemon = new_daemon()?;
        let events = match daemon.browse(SERVICE_TYPE) {
            Ok(events) => events,
            Err(e) => {
                let _ = daemon.shutdown();
                return Err(mdns_error(e));
            }
        };
        Ok(Browser {
            ensemble: ensemble.to_owned(),
            daemon,
            state: Mutex::new(BrowseState {
                events,
                generation: 0,
                candidates: Candidates::default(),
            }),
        })
    }

    /// The ensemble this browser looks for.
    pub fn ensemble(&self) -> &str {
        &self.ensemble
    }

    /// Next acceptable candidate, waiting at most `timeout` (None if nothing came).
    /// A `timeout` too large for [`Instant`] (such as [`Duration::MAX`]) waits forever.
    pub fn next(&self, timeout: Duration) -> Option<Candidate> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let (events, generation) = {
                let mut st = self.lock();
                self.drain(&mut st);
                if let Some(c) = st.candidates.pending.pop_front() {
                    return Some(c);
                }
                (st.events.clone(), st.generation)
            };
            // Wait without the lock, so that `try_next` and `restart` stay prompt.
            let received = match deadline {
                Some(deadline) => events.recv_deadline(deadline),
                None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let mut st = self.lock();
            match received {
                Ok(event) if st.generation == generation => {
                    st.candidates.handle(&self.ensemble, event)
                }
                Ok(_) => {} // from a browse that `restart` replaced
                Err(RecvTimeoutError::Timeout) => {
                    self.drain(&mut st);
                    return st.candidates.pending.pop_front();
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if st.generation == generation && self.rebrowse(&mut st).is_err() {
                        // The daemon is gone; nothing more will come.
                        drop(st);
                        if let Some(d) = deadline {
                            std::thread::sleep(d.saturating_duration_since(Instant::now()));
                        }
                        return None;
                    }
                }
            }
        }
    }

    /// Next acceptable candidate if one has arrived; never blocks on the network.
    pub fn try_next(&self) -> Option<Candidate> {
        let mut st = self.lock();
        self.drain(&mut st);
        st.candidates.pending.pop_front()
    }

    /// The instances of the ensemble refused since the last call and why, each once per
    /// browse (again after it went and came back, or after a [`restart`](Self::restart)).
    pub fn take_refused(&self) -> Vec<(String, Rejection)> {
        let mut st = self.lock();
        self.drain(&mut st);
        std::mem::take(&mut st.candidates.refused)
    }

    /// Restarts browsing: forgets every candidate (taken or not) and their cached
    /// records, and queries the network afresh, e.g. after all candidates failed.
    pub fn restart(&self) -> io::Result<()> {
        let mut st = self.lock();
        self.rebrowse(&mut st)
    }

    fn lock(&self) -> MutexGuard<'_, BrowseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles every event that has already arrived.
    fn drain(&self, st: &mut BrowseState) {
        let mut rebrowsed = false;
        loop {
            match st.events.try_recv() {
                Ok(event) => st.candidates.handle(&self.ensemble, event),
                Err(TryRecvError::Empty) => return,
                // `mdns-sd` ends a subscription whose channel overflowed: start again,
                // once per call (a dead daemon would disconnect again at once).
                Err(TryRecvError::Disconnected) if !rebrowsed => {
                    rebrowsed = true;
                    if self.rebrowse(st).is_err() {
                        return;
                    }
                }
                Err(TryRecvError::Disconnected) => return,
            }
        }
    }

    fn rebrowse(&self, st: &mut BrowseState) -> io::Result<()> {
        // Stopping also clears the daemon's cache for the type, so the new browse
        // reports only what answers now.
        self.daemon.stop_browse(SERVICE_TYPE).map_err(mdns_error)?;
        let events = self.daemon.browse(SERVICE_TYPE).map_err(mdns_error)?;
        st.events = events;
        st.generation += 1;
        st.candidates = Candidates::default();
        Ok(())
    }
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("ensemble", &self.ensemble)
            .finish_non_exhaustive()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// Advertises a host: instance = ensemble, SRV port = TCP port, TXT exactly
/// `{vers=2.0.1, name=@...}` (§8 item 1).
///
/// The SRV target is a host name derived from the O2 name (`o2-IIIIIIII-TTTT.local.`),
/// with A records for the IPv4 addresses of every interface the announcement goes out
/// on (each interface announces its own addresses). If another instance of the same name
/// exists, `mdns-sd` renames this one `"<ensemble> (2)"`, which clients still match.
///
/// Interface and socket failures after start are not reported (the daemon runs in the
/// background). Dropping the advertisement sends goodbye packets and stops the daemon; it
/// waits up to one second for that.
pub struct Advertisement {
    ensemble: String,
    name: O2ProcName,
    daemon: ServiceDaemon,
}

impl Advertisement {
    /// Starts advertising `name` as a host of `ensemble` (1 to 63 bytes).
    pub fn start(ensemble: &str, name: &O2ProcName) -> io::Result<Advertisement> {
        check_ensemble(ensemble)?;
        let host = format!(
            "o2-{:08x}-{:04x}.local.",
            u32::from(name.internal_ip),
            name.tcp_port
        );
        let txt = [("vers", O2_VERSION.to_owned()), ("name", name.to_txt())];
        let info = ServiceInfo::new(SERVICE_TYPE, ensemble, &host, (), name.tcp_port, &txt[..])
            .map_err(mdns_error)?
            .enable_addr_auto();
        let daemon = new_daemon()?;
        if let Err(e) = daemon.register(info) {
            let _ = daemon.shutdown();
            return Err(mdns_error(e));
        }
        Ok(Advertisement {
            ensemble: ensemble.to_owned(),
            name: name.clone(),
            daemon,
        })
    }

    /// The ensemble advertised (the instance name before any collision renaming).
    pub fn ensemble(&self) -> &str {
        &self.ensemble
    }

    /// The O2 name advertised in TXT `name`.
    pub fn name(&self) -> &O2ProcName {
        &self.name
    }
}

impl fmt::Debug for Advertisement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Advertisement")
            .field("ensemble", &self.ensemble)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for Advertisement {
    fn drop(&mut self) {
        // Shutting down unregisters: the daemon sends goodbyes before it exits.
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const NAME: &str = "@00000000:7f000001:aa29:c42a";

    fn good() -> Vec<(String, String)> {
        txt(&[("vers", "2.0.1"), ("name", NAME)])
    }

    #[test]
    fn proc_name_spec_example() {
        let n = O2ProcName::parse(NAME).unwrap();
        assert_eq!(
            n,
            O2ProcName {
                public_ip: Ipv4Addr::UNSPECIFIED,
                internal_ip: Ipv4Addr::LOCALHOST,
                tcp_port: 0xaa29,
                udp_port: 0xc42a,
            }
        );
        assert_eq!(n.to_txt(), NAME);
        assert_eq!(n.to_string(), NAME);
        assert_eq!(n.process_name(), "@00000000:7f000001:aa29");
    }

    #[test]
    fn proc_name_round_trip() {
        let n = O2ProcName {
            public_ip: Ipv4Addr::new(203, 0, 113, 9),
            internal_ip: Ipv4Addr::new(192, 168, 1, 20),
            tcp_port: 80,
            udp_port: 65535,
        };
        assert_eq!(n.to_txt(), "@cb007109:c0a80114:0050:ffff");
        assert_eq!(O2ProcName::parse(&n.to_txt()), Some(n));
    }

    #[test]
    fn proc_name_rejects() {
        for bad in [
            "",
            "@00000000:7f000001:aa29",          // process name only
            "@00000000:7f000001:aa29:c42",      // 27 chars
            "@00000000:7f000001:aa29:c42a0",    // 29 chars
            "@00000000:7F000001:aa29:c42a",     // upper case
            "@00000000:7f000001:AA29:c42a",     // upper case
            "#00000000:7f000001:aa29:c42a",     // no @
            "@00000000-7f000001:aa29:c42a",     // wrong separator
            "@0000000g:7f000001:aa29:c42a",     // not hex
            "@+0000000:7f000001:aa29:c42a",     // sign
            "@ 0000000:7f000001:aa29:c42a",     // space
            "@00000000:7f000001:aa29:c4\u{e9}", // non-ASCII, 28 bytes
        ] {
            assert_eq!(O2ProcName::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn version_parse() {
        assert_eq!(parse_version("2.0.1"), Some((2, 0, 1)));
        assert_eq!(parse_version("2.10.300"), Some((2, 10, 300)));
        for bad in [
            "", "2", "2.0", "2.0.1.4", "2..1", "v2.0.1", "2.0.+1", "2.0.1 ", "2.x.1",
        ] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn instance_matching() {
        assert!(instance_matches("ens", "ens"));
        assert!(instance_matches("ens (2)", "ens"));
        assert!(instance_matches("ens #2", "ens"));
        assert!(!instance_matches("other", "ens"));
        assert!(!instance_matches("ens2", "ens"));
        assert!(!instance_matches("ens-b", "ens"));
        assert!(!instance_matches("ens ", "ens"));
        assert!(!instance_matches("ens 2", "ens"));
        assert!(!instance_matches("en", "ens"));
        assert!(!instance_matches("Ens", "ens"));
        assert!(!instance_matches("xens", "ens"));
    }

    #[test]
    fn check_accepts_spec_record() {
        let c = check("ens", "ens", 0xaa29, &good()).unwrap();
        assert_eq!(c.instance, "ens");
        assert_eq!(c.version, (2, 0, 1));
        assert_eq!(c.tcp, "127.0.0.1:43561".parse().unwrap());
        assert_eq!(c.udp, "127.0.0.1:50218".parse().unwrap());
        assert_eq!(c.name, O2ProcName::parse(NAME).unwrap());
        // Collision suffixes, any TXT order, unknown keys, upper-case keys.
        assert!(check("ens", "ens (2)", 0xaa29, &good()).is_some());
        assert!(check("ens", "ens #3", 0xaa29, &good()).is_some());
        let t = txt(&[("extra", "1"), ("NAME", NAME), ("x", ""), ("Vers", "2.7.0")]);
        assert_eq!(check("ens", "ens", 0xaa29, &t).unwrap().version, (2, 7, 0));
    }

    #[test]
    fn check_rejects() {
        let reason = |inst: &str, port: u16, t: &[(&str, &str)]| {
            evaluate("ens", inst, port, &txt(t)).unwrap_err()
        };
        let v = ("vers", "2.0.1");
        let n = ("name", NAME);
        assert_eq!(reason("other", 0xaa29, &[v, n]), Rejection::OtherEnsemble);
        assert_eq!(reason("ens2", 0xaa29, &[v, n]), Rejection::OtherEnsemble);
        assert_eq!(
            reason("ens", 0xaa29, &[("vers", "3.0.0"), n]),
            Rejection::UnsupportedMajor(3)
        );
        assert_eq!(
            reason("ens", 0xaa29, &[("vers", "1.9.9"), n]),
            Rejection::UnsupportedMajor(1)
        );
        assert!(matches!(
            reason("ens", 0xaa29, &[("vers", "2.0"), n]),
            Rejection::BadVersion(_)
        ));
        assert!(matches!(
            reason("ens", 0xaa29, &[v, ("name", "@00000000:7f000001:aa29:c42")]),
            Rejection::BadName(_)
        ));
        assert!(matches!(
            reason(
                "ens",
                0xaa29,
                &[v, ("name", "@00000000:7F000001:aa29:c42a")]
            ),
            Rejection::BadName(_)
        ));
        assert_eq!(
            reason("ens", 0xaa2a, &[v, n]),
            Rejection::PortMismatch {
                srv: 0xaa2a,
                name: 0xaa29
            }
        );
        assert_eq!(reason("ens", 0xaa29, &[v]), Rejection::MissingName);
        assert_eq!(reason("ens", 0xaa29, &[n]), Rejection::MissingVersion);
        assert_eq!(reason("ens", 0xaa29, &[]), Rejection::MissingName);
        // A duplicate key: the first one counts.
        assert_eq!(
            reason("ens", 0xaa29, &[("vers", "3.0.0"), v, n]),
            Rejection::UnsupportedMajor(3)
        );
        assert!(check("ens", "ens", 0xaa29, &txt(&[v, n, ("vers", "3.0.0")])).is_some());
    }

    #[test]
    fn instance_from_fullname() {
        assert_eq!(
            instance_of("rosco-test._o2proc._tcp.local.").as_deref(),
            Some("rosco-test")
        );
        assert_eq!(
            instance_of("rosco-test (2)._O2proc._TCP.local.").as_deref(),
            Some("rosco-test (2)")
        );
        // Labels come verbatim from the wire: no escapes to undo.
        let dotted = instance_of("a.b._o2proc._tcp.local.");
        assert_eq!(dotted.as_deref(), Some("a.b"));
        let backslash = instance_of("a\\b._o2proc._tcp.local.");
        assert_eq!(backslash.as_deref(), Some("a\\b"));
        assert_eq!(instance_of("._o2proc._tcp.local."), None);
        assert_eq!(instance_of("_o2proc._tcp.local."), None);
        assert_eq!(instance_of("x._http._tcp.local."), None);
        assert_eq!(instance_of("x_o2proc._tcp.local."), None);
    }

    fn resolved(instance: &str, port: u16, name: &str, vers: &str) -> ServiceEvent {
        let props = [("vers", vers), ("name", name)];
        let info = ServiceInfo::new(
            SERVICE_TYPE,
            instance,
            "h.local.",
            "10.0.0.1",
            port,
            &props[..],
        )
        .unwrap();
        ServiceEvent::ServiceResolved(Box::new(info.as_resolved_service()))
    }

    fn removed(instance: &str) -> ServiceEvent {
        ServiceEvent::ServiceRemoved(SERVICE_TYPE.into(), format!("{instance}.{SERVICE_TYPE}"))
    }

    #[test]
    fn candidates_bookkeeping() {
        const NAME2: &str = "@00000000:7f000001:aa30:c42a";
        let mut c = Candidates::default();
        let ports =
            |c: &Candidates| -> Vec<u16> { c.pending.iter().map(|c| c.tcp.port()).collect() };
        c.handle("ens", resolved("other", 0xaa29, NAME, "2.0.1"));
        c.handle("ens", resolved("ens2", 0xaa29, NAME, "2.0.1"));
        c.handle("ens", resolved("ens", 0xaa29, NAME, "3.0.0"));
        assert!(c.pending.is_empty() && c.known.is_empty());

        c.handle("ens", resolved("ens", 0xaa29, NAME, "2.0.1"));
        c.handle("ens", resolved("ens", 0xaa29, NAME, "2.0.1")); // repeated: once
        c.handle("ens", resolved("ens (2)", 0xaa30, NAME2, "2.0.1"));
        assert_eq!(ports(&c), [0xaa29, 0xaa30]);
        assert_eq!(c.pending[1].instance, "ens (2)");

        // Taken candidates are not reported again while they live …
        let first = c.pending.pop_front().unwrap();
        c.handle("ens", resolved("ens", 0xaa29, NAME, "2.0.1"));
        assert_eq!(ports(&c), [0xaa30]);
        // … but are after a goodbye, or when their data changes.
        c.handle("ens", removed("ens"));
        c.handle("ens", resolved("ens", 0xaa29, NAME, "2.0.1"));
        assert_eq!(c.pending.back(), Some(&first));
        c.handle("ens", resolved("ens", 0xaa29, NAME, "2.1.0"));
        assert_eq!(ports(&c), [0xaa30, 0xaa29]);
        assert_eq!(c.pending[1].version, (2, 1, 0));

        // Withdrawn or spoilt before being taken: dropped from the queue.
        c.handle("ens", removed("ens (2)"));
        c.handle("ens", resolved("ens", 0xaa29, NAME, "9.0.0"));
        assert!(c.pending.is_empty() && c.known.is_empty());
    }

    #[test]
    fn refusals_are_kept_to_be_reported_once_per_instance_and_reason() {
        let mut c = Candidates::default();
        c.handle("ens", resolved("other", 0xaa29, NAME, "9.0.0"));
        c.handle("ens", resolved("ens", 0xaa29, NAME, "3.0.0"));
        c.handle("ens", resolved("ens", 0xaa29, NAME, "3.0.0")); // announced again
        c.handle("ens", resolved("ens", 0xaa29, NAME, "x"));
        let refused = std::mem::take(&mut c.refused);
        assert_eq!(
            refused,
            [
                ("ens".into(), Rejection::UnsupportedMajor(3)),
                ("ens".into(), Rejection::BadVersion("x".into()))
            ]
        );
        // Gone and back: reported again.
        c.handle("ens", removed("ens"));
        c.handle("ens", resolved("ens", 0xaa29, NAME, "3.0.0"));
        assert_eq!(c.refused, [("ens".into(), Rejection::UnsupportedMajor(3))]);
    }

    #[test]
    fn names_without_a_reachable_address_are_refused() {
        let reason = |name: &str| {
            let port = O2ProcName::parse(name).unwrap().tcp_port;
            evaluate(
                "ens",
                "ens",
                port,
                &txt(&[("name", name), ("vers", "2.0.1")]),
            )
            .unwrap_err()
        };
        for name in [
            "@00000000:00000000:aa29:c429",
            "@00000000:ffffffff:aa29:c429",
            "@00000000:e00000fb:aa29:c429",
            "@00000000:7f000001:aa29:0000",
            "@00000000:7f000001:0000:c429",
        ] {
            assert_eq!(reason(name), Rejection::Unreachable(name.into()), "{name}");
        }
    }

    #[test]
    fn only_so_many_instances_are_kept() {
        let mut c = Candidates::default();
        for i in 0..2 * MAX_INSTANCES {
            c.handle(
                "ens",
                resolved(&format!("ens ({i})"), 0xaa29, NAME, "2.0.1"),
            );
        }
        assert_eq!(
            (c.known.len(), c.pending.len()),
            (MAX_INSTANCES, MAX_INSTANCES)
        );
        // The others are refused, each reported once.
        assert_eq!(c.refused.len(), MAX_INSTANCES);
        assert!(c.refused.iter().all(|(_, why)| *why == Rejection::TooMany));
        c.refused.clear();
        // Taken ones still count; a known one may change; one gone makes room.
        c.pending.clear();
        c.handle("ens", resolved("ens", 0xaa29, NAME, "2.0.1"));
        c.handle("ens", resolved("ens (0)", 0xaa29, NAME, "2.1.0"));
        assert_eq!(c.pending.len(), 1);
        assert_eq!(c.pending[0].instance, "ens (0)");
        c.handle("ens", removed("ens (1)"));
        c.handle("ens", resolved("ens", 0xaa29, NAME, "2.0.1"));
        assert_eq!(c.pending.back().unwrap().instance, "ens");
        assert_eq!(c.known.len(), MAX_INSTANCES);
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Browser>();
        send_sync::<Advertisement>();
    }

    #[test]
    fn ensemble_names_are_checked() {
        assert!(Browser::start("").is_err());
        let long = "x".repeat(ENSEMBLE_MAX_LEN + 1);
        let name = O2ProcName::parse(NAME).unwrap();
        assert_eq!(
            Advertisement::start(&long, &name).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn local_ipv4_is_ipv4_unicast() {
        let ip = local_ipv4();
        assert!(!ip.is_unspecified() && !ip.is_multicast(), "{ip}");
    }
}
