//! State shared by the context, its senders and its I/O loop: channels, the method table,
//! the receive queue, the wake-ups, and the event and log callbacks.

use super::channel::Channel;
use super::context::deadline;
use super::event::{Event, LogLevel, Stats};
use super::options::{ContextOptions, Trace, MAX_QUEUE_CAPACITY};
use super::poller::{Interest, Poller, Waker};
use crate::callback_slot::CallbackSlot;
use crate::dispatch::{Dispatcher, MsgInfo};
use crate::error::Error;
use crate::handle::{ChannelId, Slab};
use crate::osc::{DecodeOptions, HexDump, PacketText};
use crate::receive::{ReceiveStats, Receiver};
use crate::time::TimeTag;
use crossbeam_queue::ArrayQueue;
use parking_lot::{Condvar, Mutex, RwLock};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The event callback.
pub type EventCallback = Box<dyn Fn(&Event) + Send + Sync>;
/// The log callback.
pub type LogCallback = Box<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Accepts (true) or refuses an incoming stream connection: the listener channel and the
/// peer's address (`None` for Unix sockets).
pub type AcceptFilter = Box<dyn Fn(ChannelId, Option<SocketAddr>) -> bool + Send + Sync>;

/// A validated packet waiting to be dispatched, in a buffer borrowed from the pool.
pub(crate) struct Incoming {
    pub(crate) info: MsgInfo,
    pub(crate) bytes: Vec<u8>,
}

impl Incoming {
    pub(crate) fn new(
        shared: &Shared,
        channel: ChannelId,
        info: MsgInfo,
        packet: &[u8],
    ) -> Incoming {
        let mut bytes = shared.pool.pop().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(packet);
        Incoming {
            info: MsgInfo {
                channel: Some(channel),
                ..info
            },
            bytes,
        }
    }
}

/// See `Shared::taken`.
struct Taken {
    /// Packets taken from the queue so far.
    count: u64,
    /// Per consumer, the number (in `count`) of the packet it is dispatching, or [`IDLE`].
    holding: Vec<u64>,
}

/// A consumer holding no packet.
const IDLE: u64 = u64::MAX;
/// Most bytes of packets waiting in the receive queue, whatever their number: 4,096 frames
/// of a megabyte each would otherwise wait for a slow consumer. One over it is dropped
/// (counted and reported) as one over the queue's capacity is.
pub(crate) const QUEUE_BYTES: usize = 64 << 20;
/// Largest packet buffer kept for reuse: one grown for a larger packet goes back to the
/// system, not to the pool, where it would stay for good.
const POOLED_AT_MOST: usize = 128 << 10;

/// Marks a consumer as holding no packet when dropped.
struct Idle<'a>(&'a Shared, usize);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.taken.lock().holding[self.1] = IDLE;
    }
}

pub(crate) struct Shared {
    pub(crate) options: ContextOptions,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) channels: RwLock<Slab<Arc<Channel>>>,
    /// Moves on each change to `channels` (see [`table_changed`](Self::table_changed)).
    table_version: AtomicU64,
    pub(crate) names: RwLock<HashMap<String, ChannelId>>,
    /// Names for the sources of received packets (see `Sender::source_name`).
    pub(crate) source_names: RwLock<super::source_names::SourceNames>,
    /// Wakes the I/O loop (new channel, output to flush, shutdown).
    pub(crate) waker: Waker,
    /// Readable while packets wait in `queue` (io-thread mode's wake-up descriptor).
    pub(crate) notify: Waker,
    /// True from a push that signalled `notify` until the consumer takes the signal: a
    /// push signals when none is pending, whatever it saw of the queue.
    notified: AtomicBool,
    /// Io-thread mode: when the next bundle `poll`'s receiver holds is due (timetag bits;
    /// 0: none). The I/O loop makes `notify` readable then, so that a loop waiting on the
    /// wake-up descriptor comes back to `poll` in time to deliver it.
    held_due: AtomicU64,
    queue: ArrayQueue<Incoming>,
    /// Bytes of the packets in `queue` (at most `QUEUE_BYTES`).
    queued_bytes: AtomicUsize,
    /// Packets taken from `queue` and what each consumer is dispatching: lets a connection
    /// whose peer finished sending wait until its last messages' callbacks, which may
    /// reply on it, have run (see `delivery_mark`).
    taken: Mutex<Taken>,
    /// Workers (`ContextOptions::workers`) wait on `work` under `work_lock` for packets.
    work_lock: Mutex<()>,
    work: Condvar,
    /// Threaded mode's `poll` waits on this, under `work_lock`, for the context to close
    /// (not on `work`, whose `notify_one` is a worker's).
    closing: Condvar,
    pool: ArrayQueue<Vec<u8>>,
    pub(crate) events: CallbackSlot<EventCallback>,
    pub(crate) log: CallbackSlot<LogCallback>,
    pub(crate) accept: CallbackSlot<AcceptFilter>,
    pub(crate) log_level: AtomicU8,
    pub(crate) closed: Arc<AtomicBool>,
    /// Shut down from a callback of its own `poll` (on the polling thread): that poll's
    /// caller asked for it, and the poll ends as it would have.
    pub(crate) closed_by_own_poll: AtomicBool,
    /// Some channel has drops counted on a sending thread left to report (see
    /// `dropped_reported_later`).
    drops_unreported: AtomicBool,
}

impl Shared {
    pub(crate) fn new(
        options: ContextOptions,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<Shared, Error> {
        let capacity = options.queue_capacity.max(1);
        let consumers = options.workers.max(1);
        if capacity > MAX_QUEUE_CAPACITY {
            // Allocated up front: a failed allocation aborts the process.
            return Err(Error::BadOption("queue_capacity is over 1,048,576"));
        }
        Ok(Shared {
            options,
            dispatcher,
            channels: RwLock::new(Slab::default()),
            table_version: AtomicU64::new(0),
            names: RwLock::new(HashMap::new()),
            source_names: RwLock::default(),
            waker: Waker::new()?,
            notify: Waker::new()?,
            notified: AtomicBool::new(false),
            held_due: AtomicU64::new(0),
            queue: ArrayQueue::new(capacity),
            queued_bytes: AtomicUsize::new(0),
            work_lock: Mutex::new(()),
            work: Condvar::new(),
            closing: Condvar::new(),
            taken: Mutex::new(Taken {
                count: 0,
                holding: vec![IDLE; consumers],
            }),
            pool: ArrayQueue::new(capacity),
            events: CallbackSlot::default(),
            log: CallbackSlot::default(),
            accept: CallbackSlot::default(),
            log_level: AtomicU8::new(LogLevel::Info as u8),
            closed: Arc::default(),
            closed_by_own_poll: AtomicBool::new(false),
            drops_unreported: AtomicBool::new(false),
        })
    }

    /// The open channels, into a reused vector.
    pub(crate) fn channels_into(&self, out: &mut Vec<Arc<Channel>>) {
        out.clear();
        out.extend(self.channels.read().iter().map(|(_, c)| c.clone()));
    }

    /// To be called after a channel is added to or removed from `channels`: an I/O loop
    /// that keeps its poll set between rounds builds it again.
    pub(crate) fn table_changed(&self) {
        self.table_version.fetch_add(1, Ordering::Release);
    }

    /// Changes whenever the channel table does.
    pub(crate) fn table_version(&self) -> u64 {
        self.table_version.load(Ordering::Acquire)
    }

    pub(crate) fn channel(&self, id: ChannelId) -> Option<Arc<Channel>> {
        self.channels.read().get(id.0).cloned()
    }

    /// Queues a packet for dispatch and signals the wake-up descriptor; false (and the
    /// buffer back in the pool) when the queue is full. (Signalling only into an empty
    /// queue lost wake-ups: the consumer could empty the queue between the check and the
    /// push, and every later push then saw a non-empty queue.)
    pub(crate) fn push_incoming(&self, item: Incoming) -> bool {
        let len = item.bytes.len();
        // A budget, not a synchronisation: relaxed.
        if self.queued_bytes.fetch_add(len, Ordering::Relaxed) + len > QUEUE_BYTES {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.recycle(item);
            return false;
        }
        match self.queue.push(item) {
            Ok(()) => {
                self.signal();
                true
            }
            Err(item) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                self.recycle(item);
                false
            }
        }
    }

    /// Tells a consumer that packets wait: wakes one worker, or makes `notify` readable
    /// unless it is already.
    fn signal(&self) {
        if self.options.workers > 0 {
            // Under the lock: a worker checks the queue and starts waiting under it.
            let _idle = self.work_lock.lock();
            self.work.notify_one();
        } else if !self.notified.swap(true, Ordering::AcqRel) {
            self.notify.wake();
        }
    }

    /// Takes the wake-up signal before the queue is drained: a push after this signals
    /// again.
    pub(crate) fn take_notification(&self) {
        self.notify.drain();
        self.notified.swap(false, Ordering::AcqRel);
    }

    /// Delivers the packets queued now, at most `max`, not those their callbacks queue
    /// meanwhile (a callback sending to `_local` would otherwise keep the caller here for
    /// good: they wait for the next call, which the push has signalled). `consumer` tells
    /// apart the threads taking packets at once (a context's workers), from 0. Reports late
    /// and dropped bundles; returns the messages dispatched.
    pub(crate) fn deliver_incoming(
        &self,
        receiver: &mut Receiver,
        consumer: usize,
        max: usize,
    ) -> usize {
        let mut dispatched = 0;
        // Also when a callback panics: a packet left "in hand" would hold back every
        // `delivered` after it.
        let _idle_after = Idle(self, consumer);
        for _ in 0..self.queue.len().min(max) {
            let Some(item) = self.take(consumer) else {
                break;
            };
            let before = receiver.stats();
            // As of when the I/O thread read it: what was due then goes first, and a
            // bundle is late only if it arrived after its time, not if it was polled late.
            let received = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                receiver.receive(&item.bytes, item.info, item.info.received)
            }));
            // Counted and recycled also when a callback panicked (passed on below).
            self.received(item.info.channel, before, receiver.stats());
            self.recycle(item);
            match received {
                Ok(n) => dispatched += n.unwrap_or(0),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        dispatched
    }

    /// Dispatches queued packets (at most `max`, as `consumer`: see `deliver_incoming`) and
    /// due bundles, waiting for packets (see `wait_for_packets`) for at most `timeout`
    /// (`None`: until something is dispatched or the context closes). Io-thread mode's `poll` and
    /// threaded mode's workers.
    pub(crate) fn dispatch_queued(
        &self,
        receiver: &mut Receiver,
        consumer: usize,
        max: usize,
        timeout: Option<Duration>,
    ) -> usize {
        let until = deadline(timeout);
        loop {
            // Drain the descriptor first, so a packet queued after this is never missed
            // (workers are signalled otherwise: see `signal`).
            if self.options.workers == 0 {
                self.take_notification();
            }
            // More waits than this consumer takes: another (a worker) may take the rest.
            if self.queue.len() > max {
                self.signal();
            }
            // A callback's panic leaves this call (io-thread mode's `poll` passes it on),
            // after the bookkeeping a loop waiting on the wake-up descriptor relies on.
            let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.deliver_incoming(receiver, consumer, max) + receiver.run_due(TimeTag::now())
            }));
            if self.options.workers == 0 {
                self.hold_until(receiver.next_deadline());
            }
            let n = match delivered {
                Ok(n) => n,
                Err(panic) => {
                    if self.has_incoming() {
                        self.signal();
                    }
                    receiver.release();
                    std::panic::resume_unwind(panic)
                }
            };
            // Keep no method table while waiting or back with the caller.
            receiver.release();
            let left = until.map(|u| u.saturating_duration_since(Instant::now()));
            if n > 0 || left.is_some_and(|l| l.is_zero()) || self.closed.load(Ordering::Acquire) {
                return n;
            }
            let due = receiver
                .next_deadline()
                .map(|d| d.duration_since(TimeTag::now()).unwrap_or_default());
            let wait = match (left, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if self.has_incoming() {
                continue;
            }
            self.wait_for_packets(wait);
        }
    }

    /// Io-thread mode's `poll`: tells the I/O loop when the next held bundle is due (see
    /// `held_due`), waking it when that changed, so that it waits no longer than that.
    fn hold_until(&self, next: Option<TimeTag>) {
        let bits = next.map_or(0, TimeTag::to_bits);
        if self.held_due.swap(bits, Ordering::AcqRel) != bits && bits != 0 {
            self.waker.wake();
        }
    }

    /// The I/O loop: when the next bundle `poll` holds is due, if one is.
    pub(crate) fn held_due(&self) -> Option<TimeTag> {
        match self.held_due.load(Ordering::Acquire) {
            0 => None,
            bits => Some(TimeTag::from_bits(bits)),
        }
    }

    /// The I/O loop, once `due` (from `held_due`) has passed: makes the wake-up descriptor
    /// readable, once per deadline (the next `poll` tells the next one).
    pub(crate) fn held_bundle_due(&self, due: TimeTag) {
        let bits = due.to_bits();
        let taken = self
            .held_due
            .compare_exchange(bits, 0, Ordering::AcqRel, Ordering::Acquire);
        if taken.is_ok() && !self.notified.swap(true, Ordering::AcqRel) {
            self.notify.wake();
        }
    }

    /// Sleeps until a packet may be waiting, the context closes, or `timeout` passes.
    /// Workers wait on a condition variable, which wakes one of them per packet (the
    /// descriptor would wake them all); io-thread mode's `poll` on the descriptor.
    fn wait_for_packets(&self, timeout: Option<Duration>) {
        if self.options.workers > 0 {
            let mut idle = self.work_lock.lock();
            if self.queue.is_empty() && !self.closed.load(Ordering::Acquire) {
                match timeout {
                    Some(t) => drop(self.work.wait_for(&mut idle, t)),
                    None => self.work.wait(&mut idle),
                }
            }
            return;
        }
        let mut poller = Poller::default();
        poller.add(
            self.notify.fd(),
            Interest {
                read: true,
                write: false,
            },
        );
        let _ = poller.wait(timeout);
    }

    /// Wakes every consumer waiting for packets (the context is closing).
    pub(crate) fn wake_consumers(&self) {
        self.notify.wake();
        let _idle = self.work_lock.lock();
        self.work.notify_all();
        self.closing.notify_all();
    }

    /// Waits until the context closes or `until` passes (threaded mode's `poll`, which
    /// has nothing else to wait for). `shutdown` sets `closed` before it takes `work_lock`
    /// to wake this, so the wake-up cannot fall between the check and the wait.
    pub(crate) fn wait_closed(&self, until: Option<Instant>) {
        let mut idle = self.work_lock.lock();
        while !self.closed.load(Ordering::Acquire) {
            match until {
                Some(u) if self.closing.wait_until(&mut idle, u).timed_out() => return,
                Some(_) => {}
                None => self.closing.wait(&mut idle),
            }
        }
    }

    /// The next queued packet, noted as in `consumer`'s hands until its next call.
    fn take(&self, consumer: usize) -> Option<Incoming> {
        let mut taken = self.taken.lock();
        let item = self.queue.pop()?;
        self.queued_bytes
            .fetch_sub(item.bytes.len(), Ordering::Relaxed);
        taken.holding[consumer] = taken.count;
        taken.count += 1;
        Some(item)
    }

    /// A mark that [`delivered`](Self::delivered) passes once every packet queued so far
    /// has been dispatched: the number of packets taken or waiting (the queue is first in,
    /// first out, so they are the first that many taken).
    pub(crate) fn delivery_mark(&self) -> u64 {
        let taken = self.taken.lock();
        taken.count + self.queue.len() as u64
    }

    /// True once the packets before `mark` have all been taken and none is still in a
    /// consumer's hands.
    pub(crate) fn delivered(&self, mark: u64) -> bool {
        let taken = self.taken.lock();
        taken.count >= mark && taken.holding.iter().all(|&h| h >= mark)
    }

    pub(crate) fn has_incoming(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Returns a packet's buffer to the pool.
    pub(crate) fn recycle(&self, item: Incoming) {
        if item.bytes.capacity() <= POOLED_AT_MOST {
            let _ = self.pool.push(item.bytes);
        }
    }

    /// Counts and reports what receiving one packet on `channel` changed in a receiver's
    /// counters (`before` to `after`): bundles that came late, bundles dropped for want of
    /// room to hold them (a packet may carry several of each).
    pub(crate) fn received(
        &self,
        channel: Option<ChannelId>,
        before: ReceiveStats,
        after: ReceiveStats,
    ) {
        let Some(id) = channel else { return };
        if after.late == before.late && after.dropped == before.dropped {
            return;
        }
        let ch = self.channel(id);
        if after.late > before.late {
            if let Some(ch) = &ch {
                Stats::add(&ch.stats.late, after.late - before.late);
            }
            self.emit(Event::Late { channel: id });
        }
        if after.dropped > before.dropped {
            match &ch {
                Some(ch) => self.dropped(ch, after.dropped - before.dropped),
                None => self.emit(Event::Dropped {
                    channel: id,
                    total: 0,
                }),
            }
        }
    }

    /// Counts `n` things dropped on `ch` (packets, bundles, frames) and reports them.
    pub(crate) fn dropped(&self, ch: &Channel, n: u64) {
        let total = Stats::add(&ch.stats.dropped, n);
        self.emit(Event::Dropped {
            channel: ch.id,
            total,
        });
    }

    /// Counts packets dropped where no event may be emitted, or where one each would be a
    /// flood: the I/O side reports them at the end of its turn, one event for however many,
    /// on its own thread (a full queue refusing a `_local` send must not run the event
    /// callback on a sender's thread, an audio thread's, say).
    pub(crate) fn dropped_reported_later(&self, ch: &Channel, n: u64) {
        self.count_dropped(ch, n);
        self.waker.wake();
    }

    /// On the I/O side, in a turn: counts packets dropped, for the turn's end to report
    /// (see `dropped_reported_later`), without waking the loop that is running.
    pub(crate) fn count_dropped(&self, ch: &Channel, n: u64) {
        Stats::add(&ch.stats.dropped, n);
        ch.stats.drops_unreported.store(true, Ordering::Release);
        self.drops_unreported.store(true, Ordering::Release);
    }

    /// On the I/O side: emits the `Dropped` events of what `dropped_reported_later` counted. One
    /// load when there is none.
    pub(crate) fn report_drops(&self) {
        if !self.drops_unreported.load(Ordering::Relaxed)
            || !self.drops_unreported.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let mut channels = Vec::new();
        self.channels_into(&mut channels);
        for ch in channels {
            if ch.stats.drops_unreported.swap(false, Ordering::AcqRel) {
                let total = ch.stats.dropped.load(Ordering::Relaxed);
                self.emit(Event::Dropped {
                    channel: ch.id,
                    total,
                });
            }
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        // Caught here, as a method's panic is per packet: an event is emitted in the middle
        // of reading a batch, whose other packets must not be lost to it.
        let call = std::panic::AssertUnwindSafe(|| self.events.call(|callback| callback(&event)));
        if std::panic::catch_unwind(call).is_err() {
            self.log_panic("the event callback panicked");
        }
        self.log(LogLevel::Debug, format_args!("event: {event:?}"));
    }

    /// Writes a packet a channel sent or received to the log, as the trace options say
    /// (`way`: "sends", "receives"; `peer`: the other end, when known). Not what the log
    /// callback itself sends: that would trace itself without end.
    pub(crate) fn trace(&self, channel: &str, way: &str, peer: Option<SocketAddr>, packet: &[u8]) {
        let trace = self.options.trace;
        // (At thread exit, with the flag gone, nothing is traced.)
        if !(trace.text || trace.hex) || TRACING.try_with(Cell::get).unwrap_or(true) {
            return;
        }
        let _ = TRACING.try_with(|t| t.set(true));
        let peer = Peer(peer);
        // Shown, not judged: any type and pattern; nesting and the address table as this
        // context reads (or, for what it sends, writes) them.
        let decode = DecodeOptions {
            allowed_types: crate::osc::TypeSet::O2,
            max_depth: self.options.receive.decode.max_depth,
            addresses: match way {
                "sends" => self.options.encode.addresses.clone(),
                _ => self.options.receive.decode.addresses.clone(),
            },
            ..DecodeOptions::DEFAULT
        };
        self.log(
            LogLevel::Debug,
            format_args!(
                "channel '{channel}' {way}{peer}: {}",
                Traced(trace, packet, &decode)
            ),
        );
        let _ = TRACING.try_with(|t| t.set(false));
    }

    /// Logs a panic caught in user code; the log callback is user code too, and a panic
    /// in it here is dropped rather than let out of the catch.
    pub(crate) fn log_panic(&self, what: &str) {
        let log =
            std::panic::AssertUnwindSafe(|| self.log(LogLevel::Error, format_args!("{what}")));
        let _ = std::panic::catch_unwind(log);
    }

    /// Logs at `level`; the message is only formatted when someone listens at that level.
    pub(crate) fn log(&self, level: LogLevel, args: std::fmt::Arguments<'_>) {
        if level as u8 > self.log_level.load(Ordering::Relaxed) {
            return;
        }
        self.log.call(|callback| callback(level, &args.to_string()));
    }
}

thread_local! {
    /// True while this thread logs a traced packet.
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// ` (ADDRESS)` when the other end is known.
struct Peer(Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, " ({a})"),
            None => Ok(()),
        }
    }
}

/// A packet as the trace options show it: text, then a hex dump on the following lines.
/// Decoded as the context reads or writes (its depth limit, its address table).
struct Traced<'a>(Trace, &'a [u8], &'a DecodeOptions);

impl fmt::Display for Traced<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Traced(trace, packet, opts) = self;
        if trace.text {
            match crate::osc::decode_with(packet, opts) {
                Ok(p) => write!(f, "{}", PacketText(&p))?,
                Err(e) => write!(f, "not OSC ({e})")?,
            }
        } else {
            write!(f, "{} bytes", packet.len())?;
        }
        if trace.hex {
            write!(f, "\n{}", HexDump(packet))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::poller::{Interest, Poller};
    use crate::time::TimeTag;
    use std::time::Duration;

    fn signalled(shared: &Shared) -> bool {
        let mut poller = Poller::default();
        let interest = Interest {
            read: true,
            write: false,
        };
        poller.add(shared.notify.fd(), interest);
        poller.wait(Some(Duration::ZERO)).unwrap();
        poller.ready(0).read
    }

    #[test]
    fn a_push_after_the_consumer_took_the_signal_signals_again() {
        let shared = Shared::new(ContextOptions::default(), Arc::new(Dispatcher::new())).unwrap();
        let ch = shared.channels.write().next_handle();
        let item = || {
            Incoming::new(
                &shared,
                ChannelId(ch),
                MsgInfo::new(TimeTag::IMMEDIATE),
                b"x",
            )
        };
        assert!(shared.push_incoming(item()));
        assert!(signalled(&shared));
        // A second push while the signal is pending writes nothing more.
        assert!(shared.push_incoming(item()));
        shared.take_notification();
        assert!(!signalled(&shared));
        // The consumer has taken the signal but not yet emptied the queue: a push now must
        // signal, or it is lost if the consumer empties the queue before the push lands.
        assert!(shared.push_incoming(item()));
        assert!(signalled(&shared));
        shared.take_notification();
        let mut popped = 0;
        while shared.queue.pop().is_some() {
            popped += 1;
        }
        assert_eq!(popped, 3);
        assert!(!signalled(&shared));
    }
}
