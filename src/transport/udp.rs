//! UDP sockets for channels: listening (dual-stack where the system allows), sending
//! (from an ephemeral or fixed local port that also receives replies), multicast groups
//! (joined, with interface, TTL and loopback, and port sharing between receivers) and
//! broadcast.

use super::sender_streams::SenderStreams;
use super::url::{Host, IpFamily, UdpOptions};
use crate::osc::framing::Framing;
use parking_lot::Mutex;
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, ToSocketAddrs, UdpSocket};
use std::sync::atomic::AtomicBool;

/// Room for any UDP payload; a datagram filling it was truncated by the kernel.
pub(crate) const RECV_BUFFER: usize = 65_536;
/// The largest UDP payload to `to`: 65,535 bytes less the UDP header, and over IPv4 (a
/// mapped address included) less the IPv4 header too, which its 16-bit total length counts.
pub(crate) fn max_payload(to: SocketAddr) -> usize {
    match canonical(to) {
        SocketAddr::V4(_) => 65_507,
        SocketAddr::V6(_) => 65_527,
    }
}
/// Kernel receive buffer asked for, so bursts are not dropped before they are read.
const SOCKET_RECV_BUFFER: usize = 4 << 20;

/// An open UDP socket and, for a sending channel, where it sends.
#[derive(Debug)]
pub(crate) struct UdpEndpoint {
    pub(crate) socket: UdpSocket,
    pub(crate) dest: Option<SocketAddr>,
    /// The socket's family, read once: asking the kernel on every reply cost a system call.
    v6: bool,
    /// Connected to `dest` (`?connect=1`): sends to it go without an address.
    pub(crate) connected: bool,
    /// The last read found one datagram or none: the next reads one alone (see
    /// `Engine::read_datagrams`).
    pub(crate) lone: AtomicBool,
    /// `?framing=`: packets framed as on a stream inside datagrams, sent with this framing
    /// and read back per sender.
    pub(crate) framed: Option<Framed>,
}

/// The two sides of `?framing=` on a UDP channel.
#[derive(Debug)]
pub(crate) struct Framed {
    pub(crate) send: Framing,
    /// Locked by the thread reading the socket only (the I/O thread, or `poll`'s caller).
    pub(crate) receive: Mutex<SenderStreams>,
}

impl UdpEndpoint {
    fn new(
        socket: UdpSocket,
        dest: Option<SocketAddr>,
        connected: bool,
    ) -> io::Result<UdpEndpoint> {
        let v6 = socket.local_addr()?.is_ipv6();
        Ok(UdpEndpoint {
            socket,
            dest,
            v6,
            connected,
            lone: AtomicBool::new(true),
            framed: None,
        })
    }

    /// The address to pass to `send_to`: an IPv6 socket reaches IPv4 peers through their
    /// mapped address.
    pub(crate) fn send_address(&self, to: SocketAddr) -> SocketAddr {
        match to {
            SocketAddr::V4(v4) if self.v6 => {
                SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
            }
            // An IPv4-mapped source, from an IPv4 socket's point of view.
            SocketAddr::V6(_) if !self.v6 => canonical(to),
            _ => to,
        }
    }
}

/// Opens the socket for `osc.udp://[host]:port?options` (no host: listen).
pub(crate) fn open(host: Option<&Host>, port: u16, opts: &UdpOptions) -> io::Result<UdpEndpoint> {
    let Some(host) = host else {
        refuse_multicast_bind(opts)?;
        return UdpEndpoint::new(listen(port, opts)?, None, false);
    };
    let dest = resolve(host, port, opts.family)?;
    let connect = opts.connect == Some(true);
    let socket = if dest.ip().is_multicast() {
        check_group(dest, opts)?;
        multicast(dest, opts)?
    } else {
        // A name that was not a group: what only a group takes would be ignored.
        if opts.iface.is_some() || opts.loopback.is_some() || opts.join.is_some() {
            return Err(invalid(format!(
                "iface, loop and join are only for a multicast group, and {host} is {}",
                dest.ip()
            )));
        }
        refuse_multicast_bind(opts)?;
        sender(dest, opts)?
    };
    let dest = match connect {
        // The address the kernel connected to: on Linux a wildcard destination (`0.0.0.0`,
        // `[::]`) becomes the loopback address, which is where replies come from.
        true => {
            socket.connect(dest)?;
            socket.peer_addr()?
        }
        false => dest,
    };
    UdpEndpoint::new(socket, Some(dest), connect)
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.into())
}

/// A socket that is not a group's is not bound to a multicast address.
fn refuse_multicast_bind(opts: &UdpOptions) -> io::Result<()> {
    match opts.bind.filter(|b| b.is_multicast()) {
        Some(b) => Err(invalid(format!(
            "bind={b} is a multicast address, not one of this host's"
        ))),
        None => Ok(()),
    }
}

/// Refuses what a group's channel cannot honour. Connected, it would no longer receive
/// the group; joining it, bound to another address than the group's or the any address,
/// or to another port, it would never receive its datagrams; not joining, bound to the
/// group, it would not receive the replies it is for.
fn check_group(group: SocketAddr, opts: &UdpOptions) -> io::Result<()> {
    let joins = opts.join != Some(false);
    let misbound = |&b: &IpAddr| match joins {
        true => b != group.ip() && !b.is_unspecified(),
        false => b.is_multicast(),
    };
    if opts.connect == Some(true) {
        return Err(invalid(
            "connect=1 is for unicast destinations, not a multicast group",
        ));
    }
    if let Some(b) = opts.bind.filter(misbound) {
        return Err(invalid(match joins {
            true => format!(
                "bind={b}: a multicast group is received bound to the group or the any address"
            ),
            false => format!(
                "bind={b}: a channel that does not join its group (join=0) receives replies \
                 on an address of this host"
            ),
        }));
    }
    match opts.local.filter(|&p| joins && p != group.port()) {
        Some(p) => Err(invalid(format!(
            "local={p}: a multicast group is received on its own port, {}",
            group.port()
        ))),
        None => Ok(()),
    }
}

/// An address as people write it: IPv4 peers seen through a dual-stack socket arrive as
/// `::ffff:a.b.c.d` and are shown as `a.b.c.d`.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// Resolves a host and port: a name to an address of `family`, or with none, IPv4 first
/// (liblo peers are IPv4-only by default, and `localhost` resolving to `::1` first is a
/// known trap).
pub(crate) fn resolve(host: &Host, port: u16, family: Option<IpFamily>) -> io::Result<SocketAddr> {
    let fits = |a: &SocketAddr| match family {
        Some(IpFamily::V4) => a.is_ipv4(),
        Some(IpFamily::V6) => a.is_ipv6(),
        None => true,
    };
    let addrs: Vec<SocketAddr> = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Zoned(ip, zone) => vec![SocketAddrV6::new(*ip, port, 0, zone_index(zone)?).into()],
        Host::Name(name) => (name.as_str(), port).to_socket_addrs()?.collect(),
    };
    let fitting = || addrs.iter().filter(|a| fits(a));
    fitting()
        .find(|a| a.is_ipv4())
        .or_else(|| fitting().next())
        .copied()
        .ok_or_else(|| {
            let family = family.map_or(String::new(), |f| format!(" (family {f})"));
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no address for '{host}'{family}"),
            )
        })
}

/// The index of the interface a zone names (or gives as a number).
fn zone_index(zone: &str) -> io::Result<u32> {
    match zone.parse() {
        Ok(index) => Ok(index),
        Err(_) => interface_named(zone),
    }
}

fn new_socket(addr: &SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(*addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(SOCKET_RECV_BUFFER);
    Ok(s)
}

fn finish(s: Socket) -> io::Result<UdpSocket> {
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn set_reuse(s: &Socket) -> io::Result<()> {
    s.set_reuse_address(true)?;
    #[cfg(not(any(target_os = "solaris", target_os = "illumos")))]
    s.set_reuse_port(true)?;
    Ok(())
}

fn listen(port: u16, opts: &UdpOptions) -> io::Result<UdpSocket> {
    let bind = |addr: SocketAddr| -> io::Result<UdpSocket> {
        let s = new_socket(&addr)?;
        if addr.is_ipv6() && opts.bind.is_none() {
            // Dual stack: IPv4 peers arrive as mapped addresses.
            let _ = s.set_only_v6(false);
        }
        if opts.reuse == Some(true) {
            set_reuse(&s)?;
        }
        s.bind(&addr.into())?;
        finish(s)
    };
    let s = match opts.bind {
        Some(ip) => bind(SocketAddr::new(ip, port)),
        None => {
            bind(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)).or_else(|e| {
                match no_ipv6(&e) {
                    true => bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)),
                    false => Err(e),
                }
            })
        }
    }?;
    // Replies go out from this socket.
    set_unicast_ttl(&SockRef::from(&s), opts.ttl)?;
    Ok(s)
}

/// True when binding the IPv6 wildcard failed because the system has no IPv6: then a
/// listener falls back to IPv4 alone. Any other failure (the port taken) is the caller's:
/// falling back then would leave IPv6 peers to whoever holds the port.
pub(crate) fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::EADDRNOTAVAIL)
    )
}

/// `?ttl=` for what a unicast or broadcast socket sends (multicast has its own option).
/// At least 1: the system refuses 0 for unicast (it means "this host" for multicast only).
fn set_unicast_ttl(s: &SockRef<'_>, ttl: Option<u8>) -> io::Result<()> {
    let Some(ttl) = ttl.map(|t| t.max(1)) else {
        return Ok(());
    };
    match s.local_addr()?.is_ipv6() {
        true => {
            // A dual-stack socket sends to IPv4 peers with the IPv4 option; a socket that
            // is IPv6 only refuses it, and needs it not.
            let _ = s.set_ttl(ttl.into());
            s.set_unicast_hops_v6(ttl.into())
        }
        false => s.set_ttl(ttl.into()),
    }
}

fn unspecified(like: &SocketAddr) -> IpAddr {
    match like {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

fn sender(dest: SocketAddr, opts: &UdpOptions) -> io::Result<UdpSocket> {
    let local = SocketAddr::new(
        opts.bind.unwrap_or(unspecified(&dest)),
        opts.local.unwrap_or(0),
    );
    let s = new_socket(&dest)?;
    if dest.is_ipv4() && opts.broadcast != Some(false) {
        // Harmless for unicast, and it makes both 255.255.255.255 and subnet broadcast
        // addresses work without having to recognise them.
        s.set_broadcast(true)?;
    }
    if opts.reuse == Some(true) {
        set_reuse(&s)?;
    }
    s.bind(&local.into())?;
    set_unicast_ttl(&SockRef::from(&s), opts.ttl)?;
    finish(s)
}

/// Joins `group` and sends to it. Bound to the group's port on every address, with the
/// address and port shared, so several receivers on one machine can join the same group.
fn multicast(group: SocketAddr, opts: &UdpOptions) -> io::Result<UdpSocket> {
    let s = new_socket(&group)?;
    // Not joining (`join=0`), it sends from a port of its own, shared only when asked, as
    // a unicast sender's: two such channels on one port would split their replies.
    let join = opts.join != Some(false);
    let reuse = match join {
        true => opts.reuse != Some(false),
        false => opts.reuse == Some(true),
    };
    if reuse {
        set_reuse(&s)?;
    }
    // An IPv6 group's socket hears nothing by IPv4: it need not hold the port for IPv4
    // (where another socket may have it).
    if group.is_ipv6() {
        s.set_only_v6(true)?;
    }
    let port = opts.local.unwrap_or(if join { group.port() } else { 0 });
    let local = SocketAddr::new(opts.bind.unwrap_or(unspecified(&group)), port);
    s.bind(&SockAddr::from(local))?;
    // This channel's group only: Linux otherwise delivers to a socket bound to the
    // wildcard address every group any socket of the host joined on that port.
    #[cfg(target_os = "linux")]
    match group.is_ipv6() {
        true => s.set_multicast_all_v6(false)?,
        false => s.set_multicast_all_v4(false)?,
    }
    // Its replies and unicast sends too (ARCHITECTURE: `ttl` sets every datagram's).
    set_unicast_ttl(&SockRef::from(&s), opts.ttl)?;
    let iface = opts.iface.as_deref();
    match group.ip() {
        IpAddr::V4(g) => {
            let iface_addr = match iface {
                None => Ipv4Addr::UNSPECIFIED,
                Some(i) => iface_ipv4(i)?,
            };
            if join {
                s.join_multicast_v4(&g, &iface_addr)?;
            }
            if iface.is_some() {
                s.set_multicast_if_v4(&iface_addr)?;
            }
            s.set_multicast_ttl_v4(opts.ttl.unwrap_or(1) as u32)?;
            s.set_multicast_loop_v4(opts.loopback.unwrap_or(true))?;
        }
        IpAddr::V6(g) => {
            // The group's zone names the interface when `iface` does not (`%25lo`).
            let zone = match group {
                SocketAddr::V6(v6) => v6.scope_id(),
                SocketAddr::V4(_) => 0,
            };
            let index = iface.map(iface_index).transpose()?.unwrap_or(zone);
            if zone != 0 && index != zone {
                return Err(invalid(
                    "the group's zone and iface name different interfaces",
                ));
            }
            if join {
                s.join_multicast_v6(&g, index)?;
            }
            if index != 0 {
                s.set_multicast_if_v6(index)?;
            }
            s.set_multicast_hops_v6(opts.ttl.unwrap_or(1) as u32)?;
            s.set_multicast_loop_v6(opts.loopback.unwrap_or(true))?;
        }
    }
    finish(s)
}

/// An interface given as an IPv4 address or a name (its first IPv4 address).
fn iface_ipv4(iface: &str) -> io::Result<Ipv4Addr> {
    if let Ok(ip) = iface.parse() {
        return Ok(ip);
    }
    let index = iface_index(iface)?;
    let first = interface_addresses()
        .into_iter()
        .find_map(|(i, addr)| match addr {
            IpAddr::V4(v4) if i == index => Some(v4),
            _ => None,
        });
    first.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("interface '{iface}' has no IPv4 address"),
        )
    })
}

/// An interface's index, from its name or one of its addresses.
fn iface_index(iface: &str) -> io::Result<u32> {
    if let Ok(ip) = iface.parse::<IpAddr>() {
        let index = interface_addresses()
            .into_iter()
            .find(|&(_, addr)| addr == ip);
        return index.map(|(i, _)| i).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface has the address {ip}"),
            )
        });
    }
    interface_named(iface)
}

/// An interface's index, from its name.
fn interface_named(iface: &str) -> io::Result<u32> {
    let name = std::ffi::CString::new(iface).map_err(|_| invalid("interface name contains NUL"))?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named '{iface}'"),
        )),
        index => Ok(index),
    }
}

/// Every address of every interface, with the interface's index (empty if the system
/// will not say).
fn interface_addresses() -> Vec<(u32, IpAddr)> {
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `addrs` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut addrs) } != 0 {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut cur = addrs;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: a non-null ifa_addr is a valid sockaddr owned by the list, as long as its
        // family says (sockaddr_in for AF_INET, sockaddr_in6 for AF_INET6).
        let addr = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let index = unsafe { libc::if_nametoindex(ifa.ifa_name) };
        found.push((index, addr));
    }
    // SAFETY: `addrs` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(addrs) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_on_any_port_and_send_to_it() {
        let rx = open(None, 0, &UdpOptions::default()).unwrap();
        let port = rx.socket.local_addr().unwrap().port();
        assert_ne!(port, 0);
        let tx = open(
            Some(&Host::Ip("127.0.0.1".parse().unwrap())),
            port,
            &UdpOptions::default(),
        )
        .unwrap();
        tx.socket
            .send_to(b"/a\0\0,\0\0\0", tx.dest.unwrap())
            .unwrap();
        rx.socket.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = rx.socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"/a\0\0,\0\0\0");
        // The reply goes back to the sender's socket.
        rx.socket.send_to(b"ok", from).unwrap();
        tx.socket.set_nonblocking(false).unwrap();
        assert_eq!(tx.socket.recv(&mut buf).unwrap(), 2);
    }

    #[test]
    fn bind_narrows_the_listener() {
        let opts = UdpOptions {
            bind: Some("127.0.0.1".parse().unwrap()),
            ..UdpOptions::default()
        };
        let rx = open(None, 0, &opts).unwrap();
        assert_eq!(
            rx.socket.local_addr().unwrap().ip(),
            IpAddr::from([127, 0, 0, 1])
        );
    }

    #[test]
    fn names_prefer_ipv4_unless_a_family_is_asked_for() {
        let localhost = Host::Name("localhost".into());
        let a = resolve(&localhost, 9000, None).unwrap();
        assert_eq!(a, "127.0.0.1:9000".parse().unwrap());
        let a = resolve(&localhost, 9000, Some(IpFamily::V4)).unwrap();
        assert_eq!(a, "127.0.0.1:9000".parse().unwrap());
        assert!(resolve(&Host::Name("no-such-host.invalid".into()), 1, None).is_err());
        // An address literal of the other family has no address of the family asked for.
        let v6 = Host::Ip("::1".parse().unwrap());
        assert_eq!(
            resolve(&v6, 7, Some(IpFamily::V6)).unwrap(),
            "[::1]:7".parse().unwrap()
        );
        let e = resolve(&v6, 7, Some(IpFamily::V4)).unwrap_err();
        assert_eq!(e.to_string(), "no address for '[::1]' (family 4)");
    }

    #[test]
    fn two_receivers_share_a_multicast_group() {
        let group = Host::Ip("239.255.77.77".parse().unwrap());
        let opts = UdpOptions {
            iface: Some("127.0.0.1".into()),
            ..UdpOptions::default()
        };
        let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let a = match open(Some(&group), port, &opts) {
            Ok(a) => a,
            // Some sandboxes have no multicast route at all.
            Err(e) => return eprintln!("skipping: multicast unavailable here: {e}"),
        };
        let b = open(Some(&group), port, &opts).unwrap();
        a.socket.send_to(b"hi", a.dest.unwrap()).unwrap();
        for s in [&a.socket, &b.socket] {
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 8];
            assert_eq!(s.recv(&mut buf).unwrap(), 2);
        }
    }

    #[test]
    fn a_multicast_channels_ttl_is_its_unicast_ttl_too() {
        let group = Host::Ip("239.255.77.78".parse().unwrap());
        let opts = UdpOptions {
            iface: Some("127.0.0.1".into()),
            ttl: Some(5),
            ..UdpOptions::default()
        };
        let ep = match open(Some(&group), 0, &opts) {
            Ok(ep) => ep,
            Err(e) => return eprintln!("skipping: multicast unavailable here: {e}"),
        };
        let s = SockRef::from(&ep.socket);
        assert_eq!(s.multicast_ttl_v4().unwrap(), 5);
        assert_eq!(s.ttl().unwrap(), 5, "its replies'");
    }
}
