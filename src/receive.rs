//! From received bytes to method calls: decode and validate the whole packet, then
//! dispatch its messages now or hold its bundles until their time (sans-IO: the caller
//! passes `now` and asks for the next deadline).
//!
//! A nested bundle's effective time is the later of its own timetag and its parent's
//! effective time (specs/osc.md §5), so an "immediate" bundle inside a future bundle is
//! delivered with its parent.

use crate::dispatch::{DispatchScratch, Dispatcher, MsgInfo};
use crate::osc::{
    decode_with, Bundle, DecodeError, DecodeOptions, Packet, DEFAULT_MAX_PATTERN_LEN,
};
use crate::schedule::Scheduler;
use crate::time::TimeTag;
use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// How received packets are handled.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// Decoder options (allowed types, address checks, address decompression...). By
    /// default the decoder's, with address patterns limited to
    /// [`DEFAULT_MAX_PATTERN_LEN`] bytes.
    pub decode: DecodeOptions,
    /// Hold bundles with a future timetag until it is due. Off: deliver every bundle at
    /// once, ignoring its timetag (liblo's `lo_server_enable_queue(0)`).
    pub queue_bundles: bool,
    /// Most bytes of bundles held at once; a bundle that would go over is dropped and
    /// counted. Anyone who can send a packet can send far-future bundles: without a bound
    /// they would fill memory.
    pub max_held_bytes: usize,
}

/// The default [`ReceiveOptions::max_held_bytes`]: 16 MiB.
pub const DEFAULT_MAX_HELD_BYTES: usize = 16 << 20;

impl Default for ReceiveOptions {
    fn default() -> Self {
        ReceiveOptions {
            decode: DecodeOptions {
                max_pattern_len: DEFAULT_MAX_PATTERN_LEN,
                ..DecodeOptions::DEFAULT
            },
            queue_bundles: true,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
        }
    }
}

/// Counters of what the receiver has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveStats {
    /// Packets that decoded.
    pub packets: u64,
    /// Packets rejected as malformed.
    pub malformed: u64,
    /// Messages handed to the dispatcher.
    pub messages: u64,
    /// Bundles whose time had already passed when they arrived (delivered at once).
    pub late: u64,
    /// Bundles held for later so far.
    pub held: u64,
    /// Bundles dropped because those held already filled `max_held_bytes`.
    pub dropped: u64,
}

/// Decodes packets and delivers their messages on time.
#[derive(Debug)]
pub struct Receiver {
    decode: DecodeOptions,
    /// The same with O2's `B` allowed, for messages that came over O2lite.
    decode_o2: DecodeOptions,
    state: State,
}

#[derive(Debug)]
struct State {
    dispatcher: Arc<Dispatcher>,
    queue_bundles: bool,
    held: Scheduler<Held>,
    /// Bytes of the bundles in `held`, at most `max_held_bytes`.
    held_bytes: usize,
    max_held_bytes: usize,
    scratch: DispatchScratch,
    stats: ReceiveStats,
}

/// A bundle waiting for its time: its bytes and what was known when it arrived.
#[derive(Debug)]
struct Held {
    bundle: Box<[u8]>,
    info: MsgInfo,
}

impl Receiver {
    /// A receiver delivering to `dispatcher`.
    pub fn new(dispatcher: Arc<Dispatcher>, options: ReceiveOptions) -> Receiver {
        Receiver {
            decode_o2: options.decode.with_o2_types(),
            decode: options.decode,
            state: State {
                dispatcher,
                queue_bundles: options.queue_bundles,
                held: Scheduler::new(),
                held_bytes: 0,
                max_held_bytes: options.max_held_bytes,
                scratch: DispatchScratch::default(),
                stats: ReceiveStats::default(),
            },
        }
    }

    /// Handles one packet received at `now`: validates all of it, then dispatches what is
    /// due and holds the rest. Held bundles due by `now` go first, so that a packet read
    /// late (a caller that polls seldom) does not overtake them. Returns the number of
    /// messages dispatched now, those held bundles' included. A malformed packet dispatches
    /// nothing and is counted. A callback's panic in a held bundle is raised once this
    /// packet was dispatched too: it ends that bundle only.
    pub fn receive(
        &mut self,
        packet: &[u8],
        info: MsgInfo,
        now: TimeTag,
    ) -> Result<usize, DecodeError> {
        let opts = match info.o2 {
            Some(_) => &self.decode_o2,
            None => &self.decode,
        };
        let packet = match decode_with(packet, opts) {
            Ok(p) => p,
            Err(e) => {
                self.state.stats.malformed += 1;
                return Err(e);
            }
        };
        self.state.stats.packets += 1;
        // (Inline, the check that nothing is held: this is every packet's path.)
        let due = match self.state.held.len() {
            0 => Due::default(),
            _ => self.state.run_due(&self.decode, now),
        };
        let walked = self.state.walk(packet, None, info, now, true);
        Ok(due.raise() + walked)
    }

    /// Dispatches every held bundle that is due at `now`; returns the number of messages.
    /// A callback's panic ends its own bundle; it is raised once the others due have run.
    pub fn run_due(&mut self, now: TimeTag) -> usize {
        self.state.run_due(&self.decode, now).raise()
    }

    /// Ends a run of deliveries: lets go of what dispatch kept between them, so that
    /// methods removed meanwhile are freed (see [`DispatchScratch::release`]).
    pub fn release(&mut self) {
        self.state.scratch.release();
    }

    /// When the next held bundle is due.
    pub fn next_deadline(&self) -> Option<TimeTag> {
        self.state.held.next_deadline()
    }

    /// Bundles currently held.
    pub fn held(&self) -> usize {
        self.state.held.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> ReceiveStats {
        self.state.stats
    }

    /// The dispatcher messages go to.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.state.dispatcher
    }
}

/// What running the held bundles did: the messages dispatched, and the first panic of
/// their callbacks, raised once the others have run.
#[derive(Default)]
struct Due {
    dispatched: usize,
    panic: Option<Box<dyn Any + Send>>,
}

impl Due {
    fn raise(self) -> usize {
        match self.panic {
            Some(panic) => resume_unwind(panic),
            None => self.dispatched,
        }
    }
}

impl State {
    /// [`Receiver::run_due`], with the options the held bundles were validated with.
    fn run_due(&mut self, decode: &DecodeOptions, now: TimeTag) -> Due {
        let mut due = Due::default();
        while let Some((at, held)) = self.held.pop_due(now) {
            self.held_bytes -= held.bundle.len();
            // Held bytes were validated on arrival with these same options. Walked as of
            // its own time: a nested bundle due later goes back among the held, behind
            // those held for the same time or before it.
            if let Ok(Packet::Bundle(b)) = decode_with(&held.bundle, decode) {
                let run = || self.bundle(b, Some(at), held.info, at, false);
                match catch_unwind(AssertUnwindSafe(run)) {
                    Ok(n) => due.dispatched += n,
                    Err(panic) => {
                        due.panic.get_or_insert(panic);
                    }
                }
            }
        }
        due
    }

    fn walk(
        &mut self,
        p: Packet<'_>,
        outer: Option<TimeTag>,
        info: MsgInfo,
        now: TimeTag,
        arrived: bool,
    ) -> usize {
        match p {
            Packet::Message(m) => {
                let info = MsgInfo {
                    bundle_time: outer,
                    ..info
                };
                self.stats.messages += 1;
                self.dispatcher.dispatch(&m, &info, &mut self.scratch);
                1
            }
            Packet::Bundle(b) => self.bundle(b, outer, info, now, arrived),
        }
    }

    fn bundle(
        &mut self,
        b: Bundle<'_>,
        outer: Option<TimeTag>,
        info: MsgInfo,
        now: TimeTag,
        arrived: bool,
    ) -> usize {
        let effective = b.effective_time(outer);
        if self.queue_bundles {
            if effective > now {
                let bytes = b.as_bytes();
                if self.held_bytes + bytes.len() > self.max_held_bytes {
                    self.stats.dropped += 1;
                    return 0;
                }
                self.stats.held += 1;
                self.held_bytes += bytes.len();
                self.held.push(
                    effective,
                    Held {
                        bundle: bytes.into(),
                        info,
                    },
                );
                return 0;
            }
            // Late once, at the outermost bundle with a time: an immediate parent passes
            // the question on to its children. A zero timetag is a time, in 1900.
            let stamped = effective != TimeTag::IMMEDIATE;
            let counted_above = outer.is_some_and(|o| o != TimeTag::IMMEDIATE);
            if arrived && !counted_above && stamped && effective < now {
                self.stats.late += 1;
            }
        }
        self.dispatcher.bundle_boundary(true, effective);
        // Ended also when a callback panics, before the panic goes on: an application
        // counting starts and ends must not be left inside a bundle.
        let elements = || {
            let mut dispatched = 0;
            for element in b.elements() {
                dispatched += self.walk(element, Some(effective), info, now, arrived);
            }
            dispatched
        };
        let dispatched = catch_unwind(AssertUnwindSafe(elements));
        self.dispatcher.bundle_boundary(false, effective);
        dispatched.unwrap_or_else(|panic| resume_unwind(panic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Flow;
    use crate::osc::{Arg, PacketWriter};
    use std::sync::Mutex;
    use std::time::Duration;

    fn setup(queue: bool) -> (Receiver, Arc<Mutex<Vec<String>>>) {
        let d = Arc::new(Dispatcher::new());
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        d.add_method(None, None, move |m, info| {
            let tt = info.bundle_time.map_or("-".to_string(), |t| t.to_string());
            l.lock()
                .unwrap()
                .push(format!("{}@{tt}", m.address_str().unwrap()));
            Flow::PassOn
        })
        .unwrap();
        let (s, e) = (log.clone(), log.clone());
        d.set_bundle_callbacks(
            Some(Box::new(move |_| s.lock().unwrap().push("[".into()))),
            Some(Box::new(move |_| e.lock().unwrap().push("]".into()))),
        );
        let opts = ReceiveOptions {
            queue_bundles: queue,
            ..ReceiveOptions::default()
        };
        (Receiver::new(d, opts), log)
    }

    fn take(log: &Mutex<Vec<String>>) -> Vec<String> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    /// A bundle at `outer` holding /now, an immediate inner bundle with /inner, and a
    /// bundle at `later` with /later.
    fn packet(outer: TimeTag, later: TimeTag) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf);
        w.begin_bundle(outer).unwrap();
        w.message("/now", &[Arg::Int(1)]).unwrap();
        w.begin_bundle(TimeTag::IMMEDIATE).unwrap();
        w.message("/inner", &[]).unwrap();
        w.end_bundle().unwrap();
        w.begin_bundle(later).unwrap();
        w.message("/later", &[]).unwrap();
        w.end_bundle().unwrap();
        w.end_bundle().unwrap();
        w.finish().unwrap();
        buf
    }

    /// The deepest nesting a receiver can be told to take is dispatched without
    /// exhausting a thread's stack (test threads have 2 MiB), in unoptimised builds too.
    #[test]
    fn the_deepest_nesting_allowed_is_dispatched() {
        use crate::osc::DEPTH_LIMIT;
        let d = Arc::new(Dispatcher::new());
        d.add_method(Some("/m"), None, |_, _| Flow::Handled)
            .unwrap();
        let mut options = ReceiveOptions::default();
        options.decode.max_depth = usize::MAX;
        let mut r = Receiver::new(d, options);
        let deepest = crate::osc::nest(DEPTH_LIMIT);
        let now = TimeTag::now();
        assert_eq!(r.receive(&deepest, MsgInfo::new(now), now), Ok(1));
    }

    /// A bundle at `at` of `addresses`, nested in bundles at `outer` (outermost first).
    fn bundle_in(outer: &[TimeTag], at: TimeTag, addresses: &[&str]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf);
        for &t in outer {
            w.begin_bundle(t).unwrap();
        }
        w.begin_bundle(at).unwrap();
        for a in addresses {
            w.message(a, &[]).unwrap();
        }
        for _ in 0..=outer.len() {
            w.end_bundle().unwrap();
        }
        w.finish().unwrap();
        buf
    }

    /// Gives /boom a method that panics.
    fn booming(r: &Receiver) {
        r.dispatcher()
            .add_method(Some("/boom"), None, |_, _| panic!("boom"))
            .unwrap();
    }

    fn panics(f: impl FnOnce() -> Result<usize, DecodeError>) -> bool {
        catch_unwind(AssertUnwindSafe(f)).is_err()
    }

    /// A callback's panic ends the rest of its bundle, and the bundle's end callback is
    /// still called: a start is never left without its end, at any depth.
    #[test]
    fn a_panic_inside_a_bundle_still_ends_it() {
        let (mut r, log) = setup(true);
        booming(&r);
        let now_ = TimeTag::IMMEDIATE;
        let nested = bundle_in(&[now_], now_, &["/boom", "/after"]);
        let now = TimeTag::now();
        assert!(panics(|| r.receive(&nested, MsgInfo::new(now), now)));
        let boom = format!("/boom@{now_}");
        assert_eq!(take(&log), ["[", "[", &boom, "]", "]"]);
    }

    /// A held bundle whose callback panics, run as a later packet arrives, ends only
    /// itself: the later packet, and other bundles due, are still dispatched.
    #[test]
    fn a_held_bundles_panic_loses_no_other_packet() {
        let (mut r, log) = setup(true);
        let t0 = TimeTag::new(0xe000_0000, 0);
        let ms = |n| t0 + Duration::from_millis(n);
        booming(&r);
        let boom = bundle_in(&[], ms(10), &["/boom", "/after"]);
        let fine = bundle_of(ms(20), "/fine");
        assert_eq!(r.receive(&boom, MsgInfo::new(t0), t0), Ok(0));
        assert_eq!(r.receive(&fine, MsgInfo::new(t0), t0), Ok(0));
        let mut later = Vec::new();
        crate::osc::encode_message("/later", &[], &mut later).unwrap();
        let now = ms(30);
        assert!(panics(|| r.receive(&later, MsgInfo::new(now), now)));
        let at = |n| format!("/{n}@{}", ms(if n == "fine" { 20 } else { 10 }));
        assert_eq!(
            take(&log),
            ["[", &at("boom"), "]", "[", &at("fine"), "]", "/later@-"]
        );
        assert_eq!(r.held(), 0);
    }

    #[test]
    fn held_bundles_are_bounded_in_bytes() {
        let d = Arc::new(Dispatcher::new());
        let mut r = Receiver::new(
            d,
            ReceiveOptions {
                max_held_bytes: 100,
                ..ReceiveOptions::default()
            },
        );
        let t0 = TimeTag::new(0xe000_0000, 0);
        let at = t0 + Duration::from_secs(3600);
        let mut one = Vec::new();
        let mut w = PacketWriter::new(&mut one);
        w.begin_bundle(at).unwrap();
        w.message("/later", &[Arg::Int(1)]).unwrap();
        w.end_bundle().unwrap();
        w.finish().unwrap();
        let fits = 100 / one.len();
        for _ in 0..fits + 3 {
            assert_eq!(r.receive(&one, MsgInfo::new(t0), t0), Ok(0));
        }
        assert_eq!(r.held(), fits);
        assert_eq!((r.stats().held, r.stats().dropped), (fits as u64, 3));
        // Delivered bundles make room again.
        assert_eq!(r.run_due(at), fits);
        assert_eq!(r.held(), 0);
        assert_eq!(r.receive(&one, MsgInfo::new(t0), t0), Ok(0));
        assert_eq!(r.held(), 1);
    }

    #[test]
    fn future_bundles_wait_and_nested_times_are_the_later_one() {
        let (mut r, log) = setup(true);
        let t0 = TimeTag::new(0xe000_0000, 0);
        let ms = |n| t0 + Duration::from_millis(n);
        let p = packet(ms(10), ms(20));
        assert_eq!(r.receive(&p, MsgInfo::new(t0), t0), Ok(0));
        assert_eq!(r.next_deadline(), Some(ms(10)));
        assert_eq!(r.run_due(ms(9)), 0);
        assert!(take(&log).is_empty());
        assert_eq!(r.run_due(ms(10)), 2);
        let at10 = ms(10).to_string();
        assert_eq!(
            take(&log),
            [
                "[",
                &format!("/now@{at10}"),
                "[",
                &format!("/inner@{at10}"),
                "]",
                "]"
            ]
        );
        assert_eq!(r.next_deadline(), Some(ms(20)));
        assert_eq!(r.run_due(ms(25)), 1);
        assert_eq!(take(&log), ["[", &format!("/later@{}", ms(20)), "]"]);
        assert_eq!(r.held(), 0);
        let s = r.stats();
        assert_eq!((s.packets, s.messages, s.held, s.late), (1, 3, 2, 0));
    }

    /// A bundle at `at` holding one message to `address`.
    fn bundle_of(at: TimeTag, address: &str) -> Vec<u8> {
        bundle_in(&[], at, &[address])
    }

    fn addresses(log: &Mutex<Vec<String>>) -> Vec<String> {
        let lines = take(log).into_iter().filter(|l| l.starts_with('/'));
        lines
            .map(|l| l.split('@').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn due_bundles_come_out_in_timetag_order_nested_ones_included() {
        let (mut r, log) = setup(true);
        let t0 = TimeTag::new(0xe000_0000, 0);
        let ms = |n| t0 + Duration::from_millis(n);
        // /now and /inner at 10 with /later nested at 20; /mid at 15 on its own.
        r.receive(&packet(ms(10), ms(20)), MsgInfo::new(t0), t0)
            .unwrap();
        r.receive(&bundle_of(ms(15), "/mid"), MsgInfo::new(t0), t0)
            .unwrap();
        // Polled late, after all three were due.
        assert_eq!(r.run_due(ms(30)), 4);
        assert_eq!(addresses(&log), ["/now", "/inner", "/mid", "/later"]);
    }

    #[test]
    fn a_packet_read_late_goes_after_the_held_bundles_due_by_then() {
        let (mut r, log) = setup(true);
        let t0 = TimeTag::new(0xe000_0000, 0);
        let ms = |n| t0 + Duration::from_millis(n);
        r.receive(&bundle_of(ms(10), "/a"), MsgInfo::new(t0), t0)
            .unwrap();
        // Read at 40 (nobody ran the held ones at 10): /a first, then /c (late) and /m.
        let late = bundle_of(ms(20), "/c");
        assert_eq!(r.receive(&late, MsgInfo::new(ms(40)), ms(40)), Ok(2));
        let mut m = Vec::new();
        crate::osc::encode_message("/m", &[], &mut m).unwrap();
        assert_eq!(r.receive(&m, MsgInfo::new(ms(40)), ms(40)), Ok(1));
        assert_eq!(addresses(&log), ["/a", "/c", "/m"]);
        assert_eq!(r.stats().late, 1);
    }

    #[test]
    fn past_bundles_go_at_once_and_count_as_late() {
        let (mut r, log) = setup(true);
        let now = TimeTag::new(0xe000_0000, 0);
        let past = TimeTag::new(0xd000_0000, 0);
        assert_eq!(
            r.receive(&packet(past, past), MsgInfo::new(now), now),
            Ok(3)
        );
        assert_eq!(take(&log).len(), 9);
        assert_eq!(r.stats().late, 1);
        // Immediate bundles are never late.
        assert_eq!(
            r.receive(
                &packet(TimeTag::IMMEDIATE, TimeTag::IMMEDIATE),
                MsgInfo::new(now),
                now
            ),
            Ok(3)
        );
        assert_eq!(r.stats().late, 1);
        // A past bundle inside an immediate one is late; inside a past one, counted once.
        for (outer, inner, late) in [
            (TimeTag::IMMEDIATE, past, 2),
            (past, past, 3),
            // The all-zero timetag is not "immediately": a time in 1900.
            (TimeTag::new(0, 0), TimeTag::IMMEDIATE, 4),
        ] {
            assert_eq!(
                r.receive(&packet(outer, inner), MsgInfo::new(now), now),
                Ok(3)
            );
            assert_eq!(r.stats().late, late, "{outer:?} {inner:?}");
        }
    }

    #[test]
    fn queue_off_ignores_timetags() {
        let (mut r, log) = setup(false);
        let now = TimeTag::new(0xe000_0000, 0);
        let future = now + Duration::from_secs(60);
        assert_eq!(
            r.receive(&packet(future, future), MsgInfo::new(now), now),
            Ok(3)
        );
        assert_eq!(r.held(), 0);
        assert_eq!(take(&log).len(), 9);
    }

    #[test]
    fn malformed_packets_dispatch_nothing() {
        let (mut r, log) = setup(true);
        let mut p = packet(TimeTag::IMMEDIATE, TimeTag::IMMEDIATE);
        let last = p.len() - 4;
        p[last] = b'x'; // corrupt the last element only
        assert!(r.receive(&p, MsgInfo::default(), TimeTag::now()).is_err());
        assert!(take(&log).is_empty());
        assert_eq!(r.stats().malformed, 1);
    }
}
