//! Stream framing carried in datagrams (`osc.udp://…?framing=`, osc4py3's
//! `udpread_asstream`): each sender's datagrams are read as a byte stream of its own, so
//! a packet may span datagrams and a datagram may hold several packets.

use super::stream::unfinished_limit;
use crate::osc::framing::{DeframeMode, Deframer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The deframers of the senders heard from, at most `max_senders` of them, so that a
/// steady sender's deframer and its buffer are reused, not rebuilt per datagram. Past the
/// limit, the sender heard from longest ago among those with nothing of a packet kept
/// makes room; only when every one is mid-packet does the one heard from longest ago lose
/// its part. A sender silent for `stall` with part of a packet kept loses that part when
/// it is next heard from: a datagram lost in the middle of a packet would otherwise make
/// its next packet the unfinished one's missing bytes. Silent means the socket was found
/// empty `stall` after the sender was last heard from, not that its datagram was read
/// late (a receiver held up by a slow callback, or polled seldom). The parts kept across
/// senders are capped as a stream listener's peers' are ([`unfinished_limit`]).
#[derive(Debug)]
pub(crate) struct SenderStreams {
    mode: DeframeMode,
    max_frame: usize,
    max_senders: usize,
    stall: Duration,
    senders: HashMap<SocketAddr, Sender>,
    /// When a read last found the socket empty.
    drained: Option<Instant>,
    /// Memory held for unfinished packets across senders, as last counted (`settle`).
    unfinished: usize,
}

#[derive(Debug)]
struct Sender {
    deframer: Deframer,
    heard: Instant,
    /// Its share of `unfinished`.
    counted: usize,
}

impl Sender {
    /// When this sender, mid-packet, would have been silent for `stall` (`None`: a stall
    /// too long to add, never).
    fn stall_end(&self, stall: Duration) -> Option<Instant> {
        self.deframer
            .mid_packet()
            .then(|| self.heard.checked_add(stall))
            .flatten()
    }

    /// Mid-packet and silent for `stall`, the socket found empty at `drained` since.
    fn stalled(&self, stall: Duration, drained: Option<Instant>) -> bool {
        drained
            .zip(self.stall_end(stall))
            .is_some_and(|(q, end)| q >= end)
    }
}

/// Part of a packet lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub(crate) sender: SocketAddr,
    /// The bytes of its unfinished packet that were lost.
    pub(crate) bytes: usize,
    pub(crate) why: Loss,
}

/// Why part of a packet was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// Its sender was silent for the stall timeout.
    Stalled,
    /// Its sender made room for another: more than `max_senders` were heard from.
    Room,
    /// The parts kept across senders passed [`unfinished_limit`].
    TooMuch,
}

impl SenderStreams {
    pub(crate) fn new(
        mode: DeframeMode,
        max_frame: usize,
        max_senders: usize,
        stall: Duration,
    ) -> Self {
        SenderStreams {
            mode,
            max_frame,
            max_senders: max_senders.max(1),
            stall,
            senders: HashMap::new(),
            drained: None,
            unfinished: 0,
        }
    }

    /// A read at `at` found the socket empty (or a wait that ended then did not find it
    /// readable): what arrives later was sent after `at`.
    pub(crate) fn drained(&mut self, at: Instant) {
        self.drained = Some(at);
    }

    /// When the socket should next be found empty or not: the earliest time a sender
    /// mid-packet would have been silent for `stall`. Without it, a receiver asleep until
    /// the next datagram would never see the silence before it.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.senders
            .values()
            .filter(|s| !s.stalled(self.stall, self.drained))
            .filter_map(|s| s.stall_end(self.stall))
            .min()
    }

    /// Takes a datagram from `from`, arrived at `now`. Returns the sender's deframer, to
    /// take its frames from, and part of a packet lost on the way (see the type).
    pub(crate) fn push(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> (&mut Deframer, Option<Dropped>) {
        let full = self.senders.len() >= self.max_senders;
        let mut dropped = None;
        let (mode, max_frame) = (self.mode, self.max_frame);
        match self.senders.get_mut(&from) {
            Some(s) if s.stalled(self.stall, self.drained) => {
                let fresh = (mode, max_frame);
                dropped = Some(s.restart(from, Loss::Stalled, fresh, &mut self.unfinished));
            }
            Some(_) => {}
            None if full => dropped = self.make_room(),
            None => {}
        }
        let sender = self.senders.entry(from).or_insert_with(|| Sender {
            deframer: Deframer::new(mode, max_frame),
            heard: now,
            counted: 0,
        });
        sender.heard = now;
        sender.deframer.push(data);
        (&mut sender.deframer, dropped)
    }

    /// Forgets a sender for a new one: mid-packet senders after the others, then the one
    /// heard from longest ago; returns what it lost.
    fn make_room(&mut self) -> Option<Dropped> {
        let oldest = self
            .senders
            .iter()
            .min_by_key(|(_, s)| (s.deframer.mid_packet(), s.heard))
            .map(|(a, _)| *a)?;
        let (sender, s) = self.senders.remove_entry(&oldest)?;
        self.unfinished -= s.counted;
        let bytes = s.deframer.pending();
        (bytes > 0).then_some(Dropped {
            sender,
            bytes,
            why: Loss::Room,
        })
    }

    /// Counts what `from` holds for an unfinished packet once its frames were taken
    /// ([`Deframer::held`]). Past [`unfinished_limit`] across senders, buffers larger than
    /// what they keep are shrunk, then the stalled senders lose their parts (each would
    /// when next heard from, but spoofed senders never are), then `from` its own. Returns
    /// what was lost.
    pub(crate) fn settle(&mut self, from: SocketAddr) -> Vec<Dropped> {
        let mut lost = Vec::new();
        let Some(s) = self.senders.get_mut(&from) else {
            return lost;
        };
        s.recount(&mut self.unfinished);
        let limit = unfinished_limit(self.max_frame);
        if s.counted == 0 || self.unfinished <= limit {
            return lost;
        }
        for s in self.senders.values_mut().filter(|s| s.counted > 0) {
            s.deframer.shrink();
            s.recount(&mut self.unfinished);
        }
        let fresh = (self.mode, self.max_frame);
        for (&sender, s) in &mut self.senders {
            if sender != from && s.counted > 0 && s.stalled(self.stall, self.drained) {
                lost.push(s.restart(sender, Loss::Stalled, fresh, &mut self.unfinished));
            }
        }
        if self.unfinished > limit {
            if let Some(s) = self.senders.get_mut(&from) {
                lost.push(s.restart(from, Loss::TooMuch, fresh, &mut self.unfinished));
            }
        }
        lost
    }

    /// Forgets `from` (its stream failed: the next datagram starts afresh).
    pub(crate) fn forget(&mut self, from: SocketAddr) {
        if let Some(s) = self.senders.remove(&from) {
            self.unfinished -= s.counted;
        }
    }
}

impl Sender {
    /// Moves its share of `total` to what its deframer holds now.
    fn recount(&mut self, total: &mut usize) {
        let held = self.deframer.held();
        *total = *total - self.counted + held;
        self.counted = held;
    }

    /// Starts its stream afresh with a deframer of `fresh`'s mode and maximum frame, what
    /// it kept lost, and no longer counted in `total`.
    fn restart(
        &mut self,
        me: SocketAddr,
        why: Loss,
        fresh: (DeframeMode, usize),
        total: &mut usize,
    ) -> Dropped {
        let bytes = self.deframer.pending();
        self.deframer = Deframer::new(fresh.0, fresh.1);
        self.recount(total);
        Dropped {
            sender: me,
            bytes,
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osc::framing::{encode_frame, FrameError, Framing};
    use crate::transport::stream::MAX_LISTENER_UNFINISHED;

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

    const STALL: Duration = Duration::from_secs(1);

    /// Datagrams from 127.0.0.1:`port`, a millisecond apart unless told to wait.
    struct Feed {
        streams: SenderStreams,
        t0: Instant,
        ms: u64,
    }

    type Frames = Vec<Result<Vec<u8>, FrameError>>;

    impl Feed {
        fn new(mode: DeframeMode, max_frame: usize, max_senders: usize) -> Feed {
            let streams = SenderStreams::new(mode, max_frame, max_senders, STALL);
            Feed {
                streams,
                t0: Instant::now(),
                ms: 0,
            }
        }

        fn now(&mut self) -> Instant {
            self.ms += 1;
            self.t0 + Duration::from_millis(self.ms)
        }

        fn push(&mut self, port: u16, data: &[u8]) -> (Frames, Option<Dropped>) {
            let now = self.now();
            let (d, dropped) = self.streams.push(addr(port), data, now);
            (frames(d), dropped)
        }

        /// Time passes; then, with `drained`, a read finds the socket empty.
        fn wait(&mut self, d: Duration, drained: bool) {
            self.ms += d.as_millis() as u64;
            if drained {
                let now = self.now();
                self.streams.drained(now);
            }
        }
    }

    #[test]
    fn a_packet_spans_datagrams_and_a_datagram_holds_several() {
        let mut f = Feed::new(DeframeMode::Fixed(Framing::Slip), 1024, 8);
        let (a, b) = (slip(b"/a\0\0,\0\0\0"), slip(b"/b\0\0,\0\0\0"));
        let (first, rest) = a.split_at(5);
        assert_eq!(f.push(1, first), (vec![], None));
        // Another sender's bytes do not mix with the first one's.
        assert_eq!(f.push(2, &b).0, vec![Ok(b"/b\0\0,\0\0\0".to_vec())]);
        let both = [rest, &b[..]].concat();
        assert_eq!(
            f.push(1, &both).0,
            vec![Ok(b"/a\0\0,\0\0\0".to_vec()), Ok(b"/b\0\0,\0\0\0".to_vec())]
        );
    }

    #[test]
    fn senders_with_nothing_kept_make_room_first() {
        let mut f = Feed::new(DeframeMode::Fixed(Framing::LengthPrefix), 1024, 2);
        // Sender 1 is mid-packet (a 4-byte header announcing 8 bytes, then 2 of them).
        assert_eq!(f.push(1, &[0, 0, 0, 8, b'/', b'x']), (vec![], None));
        // Sender 2 sent whole packets only.
        let z = f.push(2, &[0, 0, 0, 4, b'/', b'z', 0, 0]);
        assert_eq!(z, (vec![Ok(b"/z\0\0".to_vec())], None));
        // Sender 3 takes sender 2's place, though sender 1 was heard from longer ago.
        assert_eq!(f.push(3, &[0, 0, 0, 8]).1, None);
        let x = f.push(1, &[0, 0, b',', 0, 0, 0]);
        assert_eq!(x, (vec![Ok(b"/x\0\0,\0\0\0".to_vec())], None));
        // Now 1 has nothing kept and 3 is mid-packet: 1 makes room for 4.
        assert_eq!(f.push(4, &[0, 0, 0, 8]).1, None);
        // Both kept senders mid-packet: the one heard from longest ago (3) loses its part.
        let dropped = f.push(5, &[]).1;
        let lost = Dropped {
            sender: addr(3),
            bytes: 4,
            why: Loss::Room,
        };
        assert_eq!(dropped, Some(lost));
    }

    #[test]
    fn a_sender_silent_too_long_mid_packet_starts_afresh() {
        let mut f = Feed::new(DeframeMode::Fixed(Framing::LengthPrefix), 1024, 8);
        let packet = [0, 0, 0, 8, b'/', b'a', 0, 0, b',', 0, 0, 0];
        let whole = Ok(b"/a\0\0,\0\0\0".to_vec());
        // Part of a packet, then its sender pauses (its next datagram was lost), as a
        // read finding the socket empty shows: the next packet is read as one, not as
        // the missing bytes.
        assert_eq!(f.push(1, &packet[..6]), (vec![], None));
        f.wait(STALL, true);
        let lost = Dropped {
            sender: addr(1),
            bytes: 6,
            why: Loss::Stalled,
        };
        assert_eq!(f.push(1, &packet), (vec![whole.clone()], Some(lost)));
        // A pause with nothing kept loses nothing.
        f.wait(10 * STALL, true);
        assert_eq!(f.push(1, &packet), (vec![whole.clone()], None));
        // Nor does a receiver that reads late: the socket was not seen empty meanwhile,
        // so the rest may have been waiting in it all along.
        assert_eq!(f.push(1, &packet[..6]), (vec![], None));
        f.wait(10 * STALL, false);
        assert_eq!(f.push(1, &packet[6..]), (vec![whole], None));
    }

    #[test]
    fn a_sender_silent_while_skipping_an_oversize_packet_starts_afresh() {
        let mut f = Feed::new(DeframeMode::Fixed(Framing::Slip), 16, 8);
        let too_large = vec![Err(FrameError::SlipTooLarge { max: 16 })];
        assert_eq!(f.push(1, &[b'x'; 20]).0, too_large);
        // The datagram with its END was lost: nothing is kept, yet the sender is still
        // inside that packet, and its next one (single END) is not skipped with it.
        f.wait(STALL, true);
        let mut next = Vec::new();
        encode_frame(Framing::SlipSingleEnd, b"/ok\0,\0\0\0", &mut next);
        let (frames, dropped) = f.push(1, &next);
        assert_eq!(frames, vec![Ok(b"/ok\0,\0\0\0".to_vec())]);
        assert!(dropped.is_some_and(|d| d.why == Loss::Stalled));
    }

    #[test]
    fn parts_kept_across_senders_are_capped() {
        const MIB: usize = 1 << 20;
        let mut f = Feed::new(DeframeMode::Fixed(Framing::LengthPrefix), MIB, 500);
        // Each sender announces a frame of a MiB and sends all of it but a byte.
        let mut part = (MIB as u32).to_be_bytes().to_vec();
        part.resize(MIB + 3, b'x');
        let kept = part.len();
        let send = |f: &mut Feed, port| {
            let now = f.now();
            f.streams.push(addr(port), &part, now);
            f.streams.settle(addr(port))
        };
        let room = MAX_LISTENER_UNFINISHED / kept;
        for port in 1..=room as u16 {
            assert_eq!(send(&mut f, port), []);
        }
        // One more passes the limit: the sender that passed it loses its part.
        let newcomer = addr(1000);
        let lost = send(&mut f, 1000);
        let too_much = Dropped {
            sender: newcomer,
            bytes: kept,
            why: Loss::TooMuch,
        };
        assert_eq!(lost, [too_much]);
        assert_eq!(f.streams.unfinished, room * kept);
        // Once the others have been silent past the stall, they lose theirs instead.
        f.wait(STALL, true);
        let lost = send(&mut f, 1000);
        assert_eq!(lost.len(), room);
        let stalled = |d: &Dropped| d.why == Loss::Stalled && d.bytes == kept;
        assert!(lost.iter().all(|d| stalled(d) && d.sender != newcomer));
        assert_eq!(f.streams.unfinished, kept);
        // The last byte finishes its packet and frees what it held.
        let now = f.now();
        let (d, _) = f.streams.push(newcomer, b"x", now);
        assert_eq!(frames(d).len(), 1);
        assert_eq!(f.streams.settle(newcomer), []);
        assert_eq!(f.streams.unfinished, 0);
    }

    #[test]
    fn buffers_grown_for_large_frames_count_whole_and_are_given_back() {
        const MIB: usize = 1 << 20;
        let mut f = Feed::new(DeframeMode::Fixed(Framing::LengthPrefix), MIB, 500);
        // A whole frame of a MiB and the first byte of the next: one byte kept, in a
        // buffer of a MiB.
        let mut datagram = Vec::new();
        encode_frame(Framing::LengthPrefix, &vec![7; MIB], &mut datagram);
        datagram.push(0);
        for port in 1..=100 {
            let now = f.now();
            let (d, _) = f.streams.push(addr(port), &datagram, now);
            assert_eq!(frames(d).len(), 1);
            // Past the limit the buffers are shrunk to what they keep: nobody loses
            // anything, and the memory is given back.
            assert_eq!(f.streams.settle(addr(port)), []);
            let held: usize = f.streams.senders.values().map(|s| s.deframer.held()).sum();
            assert_eq!(f.streams.unfinished, held);
            assert!(held <= MAX_LISTENER_UNFINISHED, "{port}: {held} held");
        }
    }

    #[test]
    fn a_failed_stream_is_forgotten() {
        let mut f = Feed::new(DeframeMode::Fixed(Framing::LengthPrefix), 16, 4);
        assert!(matches!(f.push(1, &[0, 0, 1, 0]).0[..], [Err(e)] if e.is_fatal()));
        f.streams.forget(addr(1));
        let a = f.push(1, &[0, 0, 0, 4, b'/', b'a', 0, 0]).0;
        assert_eq!(a, vec![Ok(b"/a\0\0".to_vec())]);
    }
}
