//! Names for the sources of received packets (osc4py3's peer identification): the names
//! the application gave (`read_forceident`), else the host names it used in channel URLs,
//! for the addresses they resolved to (`read_dnsident`, from the lookups already made: no
//! reverse lookup on the receive path).

use crate::handle::ChannelId;
use crate::transport::udp::canonical;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct SourceNames {
    /// Given for one address and port.
    by_address: HashMap<SocketAddr, Arc<str>>,
    /// Given for every port of a host.
    by_host: HashMap<IpAddr, Arc<str>>,
    /// Learned from the URLs of open channels, the latest last.
    resolved: HashMap<IpAddr, Vec<(ChannelId, Arc<str>)>>,
}

/// `addr` as it is looked up: an IPv4-mapped address as IPv4, an IPv6 one without its scope
/// and flow label (a link-local peer's packets carry its interface's scope).
fn key(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(addr).ip(), addr.port())
}

impl SourceNames {
    /// Names `ip` (on `port` alone, or on any) as `name`; `None` forgets the name.
    pub(crate) fn set(&mut self, ip: IpAddr, port: Option<u16>, name: Option<&str>) {
        let ip = key(SocketAddr::new(ip, 0)).ip();
        let name = name.map(Arc::from);
        match (port, name) {
            (Some(port), Some(name)) => {
                self.by_address.insert(SocketAddr::new(ip, port), name);
            }
            (Some(port), None) => {
                self.by_address.remove(&SocketAddr::new(ip, port));
            }
            (None, Some(name)) => {
                self.by_host.insert(ip, name);
            }
            (None, None) => {
                self.by_host.remove(&ip);
            }
        }
    }

    /// Remembers that the host name `name` of `channel`'s URL resolved to `addr`.
    pub(crate) fn resolved(&mut self, addr: SocketAddr, name: &str, channel: ChannelId) {
        let names = self.resolved.entry(key(addr).ip()).or_default();
        names.push((channel, Arc::from(name)));
    }

    /// Forgets the names `channel` taught (it closed).
    pub(crate) fn forget(&mut self, channel: ChannelId) {
        self.resolved.retain(|_, names| {
            names.retain(|(c, _)| *c != channel);
            !names.is_empty()
        });
    }

    /// The name of `source`: given for its address and port, given for its host, or
    /// learned, in that order.
    pub(crate) fn get(&self, source: SocketAddr) -> Option<Arc<str>> {
        let source = key(source);
        let ip = source.ip();
        let found = self.by_address.get(&source);
        let found = found.or_else(|| self.by_host.get(&ip));
        let learned = || self.resolved.get(&ip).and_then(|names| names.last());
        found.or_else(|| learned().map(|(_, name)| name)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_names_come_before_learned_ones() {
        let mut names = SourceNames::default();
        let synth: SocketAddr = "10.0.0.5:9000".parse().unwrap();
        let (first, second) = (channel(1), channel(2));
        assert_eq!(names.get(synth), None);
        names.resolved(synth, "synth", first);
        names.resolved(synth, "synth.local", second);
        assert_eq!(names.get(synth).as_deref(), Some("synth.local"));
        // Any port of the host; an IPv4-mapped source is the same host.
        let mapped: SocketAddr = "[::ffff:10.0.0.5]:1234".parse().unwrap();
        assert_eq!(names.get(mapped).as_deref(), Some("synth.local"));
        names.set(synth.ip(), None, Some("stage"));
        assert_eq!(names.get(mapped).as_deref(), Some("stage"));
        names.set(synth.ip(), Some(9000), Some("stage synth"));
        assert_eq!(names.get(synth).as_deref(), Some("stage synth"));
        assert_eq!(names.get(mapped).as_deref(), Some("stage"));
        names.set(synth.ip(), Some(9000), None);
        names.set(synth.ip(), None, None);
        assert_eq!(names.get(synth).as_deref(), Some("synth.local"));
        // A closed channel's name goes; the earlier one comes back.
        names.forget(second);
        assert_eq!(names.get(synth).as_deref(), Some("synth"));
        names.forget(first);
        assert_eq!(names.get(synth), None);
        // A link-local peer's packets carry its interface's scope: named all the same.
        let peer: SocketAddr = "[fe80::1]:9000".parse().unwrap();
        names.set(peer.ip(), Some(9000), Some("peer"));
        let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            9000,
            0,
            2,
        ));
        assert_eq!(names.get(scoped).as_deref(), Some("peer"));
    }

    fn channel(n: u64) -> ChannelId {
        ChannelId(crate::handle::Handle::from_bits(n))
    }
}
