//! Stream framing carried in datagrams (`osc.udp://…?framing=`, osc4py3's
//! `udpread_asstream`): each sender's datagrams are read as a byte stream of its own, so
//! a packet may span datagrams and a datagram may hold several packets.

use crate::osc::framing::{DeframeMode, Deframer};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The deframers of the senders heard from, at most `max_senders` of them, so that a
/// steady sender's deframer and its buffer are reused, not rebuilt per datagram. Past the
/// limit, the sender heard from longest ago among those with nothing of a packet kept
/// makes room; only when every one is mid-packet does the one heard from longest ago lose
/// its part.
#[derive(Debug)]
pub(crate) struct SenderStreams {
    mode: DeframeMode,
    max_frame: usize,
    max_senders: usize,
    senders: HashMap<SocketAddr, Sender>,
    /// Counts datagrams: when each sender was last heard from.
    clock: u64,
}

#[derive(Debug)]
struct Sender {
    deframer: Deframer,
    heard: u64,
}

/// A sender forgotten to make room while it was mid-packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub(crate) sender: SocketAddr,
    /// The bytes of its unfinished packet that were lost.
    pub(crate) bytes: usize,
}

impl SenderStreams {
    pub(crate) fn new(mode: DeframeMode, max_frame: usize, max_senders: usize) -> Self {
        SenderStreams {
            mode,
            max_frame,
            max_senders: max_senders.max(1),
            senders: HashMap::new(),
            clock: 0,
        }
    }

    /// Takes a datagram from `from`. Returns the sender's deframer, to take its frames
    /// from, and the sender forgotten to make room if it was mid-packet.
    pub(crate) fn push(
        &mut self,
        from: SocketAddr,
        data: &[u8],
    ) -> (&mut Deframer, Option<Dropped>) {
        self.clock += 1;
        let mut dropped = None;
        if !self.senders.contains_key(&from) && self.senders.len() >= self.max_senders {
            // Mid-packet senders sort after the others, then by when they were heard.
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, s)| (s.deframer.pending() > 0, s.heard))
                .map(|(a, _)| *a);
            if let Some(sender) = oldest.and_then(|a| self.senders.remove_entry(&a)) {
                let bytes = sender.1.deframer.pending();
                dropped = (bytes > 0).then_some(Dropped {
                    sender: sender.0,
                    bytes,
                });
            }
        }
        let (mode, max_frame) = (self.mode, self.max_frame);
        let sender = self.senders.entry(from).or_insert_with(|| Sender {
            deframer: Deframer::new(mode, max_frame),
            heard: 0,
        });
        sender.heard = self.clock;
        sender.deframer.push(data);
        (&mut sender.deframer, dropped)
    }

    /// Forgets `from` (its stream failed: the next datagram starts afresh).
    pub(crate) fn forget(&mut self, from: SocketAddr) {
        self.senders.remove(&from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osc::framing::{encode_frame, FrameError, Framing};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The frames and errors waiting, up to a fatal error (which repeats forever).
    fn frames(d: &mut Deframer) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame() {
            let fatal = matches!(f, Err(e) if e.is_fatal());
            out.push(f.map(<[u8]>::to_vec));
            if fatal {
                break;
            }
        }
        out
    }

    fn slip(packet: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(Framing::Slip, packet, &mut out);
        out
    }

    #[test]
    fn a_packet_spans_datagrams_and_a_datagram_holds_several() {
        let mut s = SenderStreams::new(DeframeMode::Fixed(Framing::Slip), 1024, 8);
        let (a, b) = (slip(b"/a\0\0,\0\0\0"), slip(b"/b\0\0,\0\0\0"));
        let (first, rest) = a.split_at(5);
        assert_eq!(frames(s.push(addr(1), first).0), vec![]);
        // Another sender's bytes do not mix with the first one's.
        assert_eq!(
            frames(s.push(addr(2), &b).0),
            vec![Ok(b"/b\0\0,\0\0\0".to_vec())]
        );
        let both = [rest, &b[..]].concat();
        assert_eq!(
            frames(s.push(addr(1), &both).0),
            vec![Ok(b"/a\0\0,\0\0\0".to_vec()), Ok(b"/b\0\0,\0\0\0".to_vec())]
        );
    }

    #[test]
    fn senders_with_nothing_kept_make_room_first() {
        let mut s = SenderStreams::new(DeframeMode::Fixed(Framing::LengthPrefix), 1024, 2);
        // Sender 1 is mid-packet (a 4-byte header announcing 8 bytes, then 2 of them).
        assert_eq!(s.push(addr(1), &[0, 0, 0, 8, b'/', b'x']).1, None);
        // Sender 2 sent whole packets only.
        let (d, dropped) = s.push(addr(2), &[0, 0, 0, 4, b'/', b'z', 0, 0]);
        assert_eq!(frames(d), vec![Ok(b"/z\0\0".to_vec())]);
        assert_eq!(dropped, None);
        // Sender 3 takes sender 2's place, though sender 1 was heard from longer ago.
        assert_eq!(s.push(addr(3), &[0, 0, 0, 8]).1, None);
        assert_eq!(
            frames(s.push(addr(1), &[0, 0, b',', 0, 0, 0]).0),
            vec![Ok(b"/x\0\0,\0\0\0".to_vec())]
        );
        // Now 1 has nothing kept and 3 is mid-packet: 1 makes room for 4.
        assert_eq!(s.push(addr(4), &[0, 0, 0, 8]).1, None);
        // Both kept senders mid-packet: the one heard from longest ago (3) loses its part.
        let dropped = s.push(addr(5), &[]).1;
        assert_eq!(
            dropped,
            Some(Dropped {
                sender: addr(3),
                bytes: 4
            })
        );
    }

    #[test]
    fn a_failed_stream_is_forgotten() {
        let mut s = SenderStreams::new(DeframeMode::Fixed(Framing::LengthPrefix), 16, 4);
        let d = s.push(addr(1), &[0, 0, 1, 0]).0;
        assert!(matches!(frames(d)[..], [Err(e)] if e.is_fatal()));
        s.forget(addr(1));
        let d = s.push(addr(1), &[0, 0, 0, 4, b'/', b'a', 0, 0]);
        assert_eq!(frames(d.0), vec![Ok(b"/a\0\0".to_vec())]);
    }
}
