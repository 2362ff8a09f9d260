//! Sends a message and a timed bundle to itself over UDP on 127.0.0.1 and delivers them
//! with the sans-IO core: `cargo run --example loopback`.

use rosco::dispatch::{Dispatcher, Flow, MsgInfo};
use rosco::osc::{encode_message, Arg, PacketWriter, Text};
use rosco::receive::{ReceiveOptions, Receiver};
use rosco::TimeTag;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let me = socket.local_addr()?;

    let methods = Arc::new(Dispatcher::new());
    methods.add_method(None, None, |msg, info| {
        println!("{} (bundle time {:?})", Text(msg), info.bundle_time);
        Flow::Handled
    })?;
    let mut receiver = Receiver::new(methods, ReceiveOptions::default());

    let mut packet = Vec::new();
    encode_message("/hello", &[Arg::str("world")], &mut packet)?;
    socket.send_to(&packet, me)?;

    let mut w = PacketWriter::new(&mut packet);
    w.begin_bundle(TimeTag::after(Duration::from_millis(100)))?;
    w.message("/later", &[Arg::Int(1)])?;
    w.end_bundle()?;
    w.finish()?;
    socket.send_to(&packet, me)?;

    let mut buf = [0u8; 65_536];
    let stop = Instant::now() + Duration::from_millis(500);
    socket.set_read_timeout(Some(Duration::from_millis(5)))?;
    while Instant::now() < stop {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let info = MsgInfo::new(TimeTag::now()).with_source(Some(from));
            receiver.receive(&buf[..n], info, TimeTag::now())?;
        }
        receiver.run_due(TimeTag::now());
    }
    Ok(())
}
