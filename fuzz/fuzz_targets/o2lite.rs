//! Arbitrary O2lite frames and datagrams from peers: into a host session (from two
//! connections, one of them joined first) and a connected client session. Input: one byte
//! choosing where each chunk goes, then chunks, each a length byte and that many bytes.
//! Nothing may panic, and everything decoded must be readable to its end.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rosco::o2lite::client::{ClientSession, Output};
use rosco::o2lite::host::{HostOutput, HostSession};
use rosco::o2lite::message::{decode, encode_tcp, O2Arg};

fuzz_target!(|data: &[u8]| {
    let Some((&route, mut rest)) = data.split_first() else {
        return;
    };
    let mut host = HostSession::new(0.0);
    let mut client = ClientSession::new();
    let (mut h, mut c) = (HostOutput::default(), Output::default());
    host.accepted(1, 0.0);
    host.accepted(2, 0.0);
    let mut con = Vec::new();
    let args = [O2Arg::Str(b"7f000001"), O2Arg::Int(9)];
    encode_tcp(&mut con, 0.0, b"!_o2/o2lite/con", args).unwrap();
    let _ = host.tcp_frame(1, None, &con[4..], 0.0, &mut h);
    client.connected(0.0, std::net::Ipv4Addr::LOCALHOST, 9, &mut c);
    let mut now = 0.0;
    let mut i = 0u32;
    while let Some((&len, after)) = rest.split_first() {
        let (chunk, next) = after.split_at((len as usize).min(after.len()));
        rest = next;
        now += 0.01;
        if let Ok(m) = decode(chunk) {
            m.args().for_each(drop);
        }
        match (route >> (i % 8)) & 1 {
            0 => {
                let _ = host.tcp_frame(1 + u64::from(i % 2), None, chunk, now, &mut h);
                let _ = host.udp_datagram(chunk, now, &mut h);
                host.tick(now, &mut h);
            }
            _ => {
                if let Ok(m) = decode(chunk) {
                    client.receive(&m, i % 2 == 0, now, &mut c);
                }
            }
        }
        i += 1;
    }
});
