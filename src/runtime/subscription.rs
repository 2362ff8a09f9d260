//! Subscriptions: the messages that match one or more routes, kept in a bounded queue for
//! the application to take when it wants them (aiolo's `route.sub()`), instead of a
//! callback.

use crate::dispatch::{rewrite, rewritten, Dispatcher, MethodId, MsgInfo};
use crate::error::Error;
use crate::osc::Message;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A message kept by a subscription, in a buffer of its own.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message, encoded (with its address decompressed, if it was sent compressed).
    bytes: Vec<u8>,
    /// Where and when it arrived, its bundle's time.
    pub info: MsgInfo,
}

impl Received {
    /// The message, read as a received one is.
    pub fn message(&self) -> Message<'_> {
        rewritten(&self.bytes).expect("a message written by rewrite")
    }
}

/// What the subscription's methods and its owner share.
#[derive(Debug)]
struct Queue {
    items: Mutex<VecDeque<Received>>,
    /// Signalled when a message arrives and when the last route goes.
    arrived: Condvar,
    capacity: usize,
    dropped: AtomicU64,
    /// Routes still in the method table. The context drops them all when it shuts down:
    /// then nothing more can arrive, and a wait ends at once.
    routes: AtomicUsize,
}

/// Feeds a queue from one route's method; dropped with the method.
struct Feed(Arc<Queue>);

impl Drop for Feed {
    fn drop(&mut self) {
        // Under the lock, so that a waiter cannot check between the count and the signal.
        let _items = self.0.items.lock();
        self.0.routes.fetch_sub(1, Ordering::Release);
        self.0.arrived.notify_all();
    }
}

/// Messages matching the routes given to [`Context::subscribe`](crate::Context::subscribe)
/// and [`also`](Self::also), in arrival order (with `ContextOptions::workers`, in the
/// order the workers dispatch them), at most `capacity` of them (later ones are
/// dropped and counted). Every subscriber gets every matching message once (where its
/// routes overlap too), whatever methods registered before it returned, and passes each
/// on, so other methods and subscriptions see it too.
///
/// Messages enter the queue where callbacks run: inside `poll` in poll and io-thread
/// modes (take them after polling), on the I/O thread or the workers in threaded mode (where
/// [`recv_timeout`](Self::recv_timeout) waits for them). Dropping the subscription
/// removes its methods.
#[derive(Debug)]
pub struct Subscription {
    queue: Arc<Queue>,
    dispatcher: Arc<Dispatcher>,
    /// Set when the context shuts down. Only the flag: a subscription kept after its
    /// context must not keep the rest of it (its thread hooks, whose C `thread_user_free`
    /// runs in `rosco_ctx_free`).
    context_closed: Arc<AtomicBool>,
    methods: Vec<MethodId>,
}

impl Subscription {
    pub(crate) fn new(
        dispatcher: Arc<Dispatcher>,
        context_closed: Arc<AtomicBool>,
        capacity: usize,
    ) -> Subscription {
        Subscription {
            queue: Arc::new(Queue {
                items: Mutex::new(VecDeque::new()),
                arrived: Condvar::new(),
                capacity,
                dropped: AtomicU64::new(0),
                routes: AtomicUsize::new(0),
            }),
            dispatcher,
            context_closed,
            methods: Vec::new(),
        }
    }

    /// Adds a route to this subscription (aiolo merges subscriptions with `|`): `address`
    /// is a literal address, an OSC pattern, or `None` for every message; `typespec` as
    /// for methods. `Error::Closed` once the context has shut down.
    pub fn also(&mut self, address: Option<&str>, typespec: Option<&str>) -> Result<(), Error> {
        self.queue.routes.fetch_add(1, Ordering::Relaxed);
        let feed = Feed(self.queue.clone());
        // Routes that overlap keep a message once: the queue is their group.
        let group = Arc::as_ptr(&self.queue) as usize;
        let id = self.dispatcher.add_observer(
            address,
            typespec,
            group,
            move |m: &Message<'_>, info: &MsgInfo| feed.0.push(m, info),
        )?;
        // Checked after the route went in: a shutdown that cleared the table before then
        // would leave it there, and the subscription waiting for messages that cannot come.
        if self.context_closed.load(Ordering::Acquire) {
            self.dispatcher.remove_method(id);
            return Err(Error::Closed);
        }
        self.methods.push(id);
        Ok(())
    }

    /// The oldest message waiting, if any.
    pub fn try_recv(&self) -> Option<Received> {
        self.queue.items.lock().pop_front()
    }

    /// The oldest message, waiting up to `timeout` for one to arrive: `Error::Timeout` when
    /// none came, `Error::Closed` at once when none waits and the context has shut down.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Received, Error> {
        let mut items = self.queue.items.lock();
        if items.is_empty() && !self.is_closed() {
            // A timeout too long to represent waits as long as a wait can.
            let _ = self.queue.arrived.wait_while_for(
                &mut items,
                |i| i.is_empty() && !self.is_closed(),
                timeout,
            );
        }
        match items.pop_front() {
            Some(received) => Ok(received),
            None if self.is_closed() => Err(Error::Closed),
            None => Err(Error::Timeout),
        }
    }

    /// True once no message can arrive any more: the context has shut down, or every
    /// method was cleared from its table (the messages already kept can still be taken).
    pub fn is_closed(&self) -> bool {
        self.queue.routes.load(Ordering::Acquire) == 0
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.queue.items.lock().len()
    }

    /// True when no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for id in self.methods.drain(..) {
            self.dispatcher.remove_method(id);
        }
    }
}

impl Queue {
    fn push(&self, m: &Message<'_>, info: &MsgInfo) {
        let mut items = self.items.lock();
        if items.len() >= self.capacity {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut bytes = Vec::with_capacity(m.as_bytes().len());
        if rewrite(m.address(), m.args(), &mut bytes).is_none() {
            // Only a message too large to encode again fails, which a received one is not.
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        items.push_back(Received { bytes, info: *info });
        drop(items);
        self.arrived.notify_one();
    }
}
