//! Names for the sources of received packets (osc4py3's peer identification): the names
//! the application gave (`read_forceident`), else the host names it used in channel URLs,
//! for the addresses they resolved to (`read_dnsident`, from the lookups already made: no
//! reverse lookup on the receive path).

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
    /// Learned from channel URLs.
    resolved: HashMap<IpAddr, Arc<str>>,
}

impl SourceNames {
    /// Names `ip` (on `port` alone, or on any) as `name`; `None` forgets the name.
    pub(crate) fn set(&mut self, ip: IpAddr, port: Option<u16>, name: Option<&str>) {
        let ip = canonical(SocketAddr::new(ip, 0)).ip();
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

    /// Remembers that the host name `name` resolved to `addr`.
    pub(crate) fn resolved(&mut self, addr: SocketAddr, name: &str) {
        self.resolved.insert(canonical(addr).ip(), Arc::from(name));
    }

    /// The name of `source`: given for its address and port, given for its host, or
    /// learned, in that order.
    pub(crate) fn get(&self, source: SocketAddr) -> Option<Arc<str>> {
        let source = canonical(source);
        let ip = source.ip();
        let found = self.by_address.get(&source);
        let found = found.or_else(|| self.by_host.get(&ip));
        found.or_else(|| self.resolved.get(&ip)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_names_come_before_learned_ones() {
        let mut names = SourceNames::default();
        let synth: SocketAddr = "10.0.0.5:9000".parse().unwrap();
        assert_eq!(names.get(synth), None);
        names.resolved(synth, "synth.local");
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
    }
}
