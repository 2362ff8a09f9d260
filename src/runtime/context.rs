//! The context: channels opened by URL, the method table, the threading mode, and
//! sending from any thread.

use super::channel::{Channel, ClientState, ClientTarget, Dest, HookVerdict, Kind, PacketHook};
use super::engine::{Engine, Sink};
use super::event::{ChannelStats, Event, LogLevel};
use super::o2::{client_turn, host_turn, O2Role};
use super::options::{ContextOptions, Mode, ThreadHook, MAX_WORKERS};
use super::shared::{Incoming, Shared};
use super::subscription::Subscription;
use crate::dispatch::{Dispatcher, MsgInfo};
use crate::error::Error;
use crate::handle::ChannelId;
use crate::o2lite::client::{ClientSession, Output};
use crate::o2lite::host::HostSession;
use crate::osc::{Arg, PacketWriter};
use crate::receive::Receiver;
use crate::thread_buf::with_buf;
use crate::time::TimeTag;
use crate::transport::stream::MAX_PENDING_OUT;
use crate::transport::url::ChannelUrl;
use parking_lot::{Condvar, Mutex};
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::os::unix::io::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

/// The name of the in-process channel every context has.
pub const LOCAL: &str = "_local";

/// How long `close` waits for the I/O loop to let go of a channel.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Polls of different contexts nested on one thread that `IN_POLL` tells apart.
const MAX_NESTED_POLLS: usize = 8;
/// Why a bridge holds back a message with a time argument: global time is not known yet.
const UNSYNCED_TIME: &str = "a time argument before the O2 clock is synchronised";
/// Why a bridge refuses a message with a time argument: a time before the O2 clock began.
const EARLY_TIME: &str = "a time argument before the O2 clock began";
#[allow(clippy::declare_interior_mutable_const)] // copied into each slot of `IN_POLL`
const NOT_POLLING: Cell<usize> = Cell::new(0);

thread_local! {
    /// The contexts (their `Shared`'s address) whose `poll` this thread runs, innermost
    /// last (a callback may poll another context): a callback must not wait on them.
    /// A plain array, not a `Vec`: a value with a destructor is gone once the thread's
    /// locals are destroyed, and a static object's destructor may still poll (C++ at exit).
    /// Polls nested deeper than its length are not told apart.
    static IN_POLL: [Cell<usize>; MAX_NESTED_POLLS] = const { [NOT_POLLING; MAX_NESTED_POLLS] };
    /// How many polls this thread is inside (the first `MAX_NESTED_POLLS` in `IN_POLL`).
    static POLL_DEPTH: Cell<usize> = const { Cell::new(0) };
    /// How many shutdowns this thread is running (one may drop a callback whose destructor
    /// shuts another context down).
    static SHUTTING_DOWN: Cell<usize> = const { Cell::new(0) };
    /// Set on the threads contexts start (I/O threads, workers), which a shutdown may be
    /// joining while they run user code: their hooks, the destructors of what they drop.
    static CONTEXT_THREAD: Cell<bool> = const { Cell::new(false) };
    static ENCODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static HOOK_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Sends on a context's channels from any thread. Cheap to clone; keep one in a callback
/// to reply or forward (it does not keep the context's I/O running after the context is
/// dropped: sends then fail with [`Error::Closed`]).
#[derive(Clone)]
pub struct Sender {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// Owns channels, methods, the scheduler and the threads of one messaging setup.
/// Dereferences to [`Sender`] for sending.
pub struct Context {
    sender: Sender,
    /// Poll mode: the I/O loop, driven by `poll`.
    engine: Mutex<Option<Engine>>,
    /// Io-thread mode: the dispatching side, driven by `poll`.
    receiver: Mutex<Option<Receiver>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Threaded mode with workers: the threads running the callbacks.
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// The I/O thread's id, to recognise calls from its callbacks.
    io_thread: Option<ThreadId>,
    /// Set once a shutdown has finished: a second caller waits for it.
    shut_down: Mutex<bool>,
    shut_down_signal: Condvar,
    /// The threads a shutdown made on a context's thread did not join.
    unjoined: Mutex<Vec<JoinHandle<()>>>,
    /// The channels a shutdown took out, whose hooks a later one waits for.
    taken_out: Mutex<Vec<Arc<Channel>>>,
}

/// Marks a shutdown running on this thread until dropped (a panic out of the user code it
/// runs included), then finished.
struct ShuttingDown<'c>(&'c Context);

impl<'c> ShuttingDown<'c> {
    fn start(ctx: &'c Context) -> Self {
        SHUTTING_DOWN.with(|d| d.set(d.get() + 1));
        ShuttingDown(ctx)
    }
}

impl Drop for ShuttingDown<'_> {
    fn drop(&mut self) {
        SHUTTING_DOWN.with(|d| d.set(d.get() - 1));
        *self.0.shut_down.lock() = true;
        self.0.shut_down_signal.notify_all();
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("mode", &self.shared.options.mode)
            .field("channels", &self.shared.channels.read().len())
            .finish_non_exhaustive()
    }
}

impl Deref for Context {
    type Target = Sender;
    fn deref(&self) -> &Sender {
        &self.sender
    }
}

impl Context {
    /// Creates a context; io-thread and threaded modes start their I/O thread.
    pub fn new(options: ContextOptions) -> Result<Context, Error> {
        if options.workers > 0 && options.mode != Mode::Threaded {
            return Err(Error::BadOption("workers are for threaded mode"));
        }
        if options.workers > MAX_WORKERS {
            return Err(Error::BadOption("workers is over 256"));
        }
        let dispatcher = Arc::new(Dispatcher::new());
        dispatcher.set_coercion(options.coerce);
        let mode = options.mode;
        let receive = options.receive.clone();
        let shared = Arc::new(Shared::new(options, dispatcher.clone())?);
        {
            let mut channels = shared.channels.write();
            let id = ChannelId(channels.next_handle());
            channels.insert(Arc::new(Channel::local(id, &shared.options)));
            shared.names.write().insert(LOCAL.into(), id);
        }
        let receiver = || Receiver::new(dispatcher.clone(), receive.clone());
        let mut ctx = Context {
            sender: Sender {
                shared: shared.clone(),
            },
            engine: Mutex::new(None),
            receiver: Mutex::new(None),
            thread: Mutex::new(None),
            workers: Mutex::new(Vec::new()),
            io_thread: None,
            shut_down: Mutex::new(false),
            shut_down_signal: Condvar::new(),
            unjoined: Mutex::new(Vec::new()),
            taken_out: Mutex::new(Vec::new()),
        };
        let spawn = |engine: Engine| -> Result<JoinHandle<()>, Error> {
            let shared = shared.clone();
            Ok(std::thread::Builder::new()
                .name("rosco-io".into())
                .spawn(move || in_thread_hooks(&shared, || io_thread(engine, &shared)))?)
        };
        match mode {
            Mode::Poll => {
                *ctx.engine.get_mut() = Some(Engine::new(
                    shared.clone(),
                    Sink::Direct(Box::new(receiver())),
                ))
            }
            Mode::IoThread => {
                *ctx.receiver.get_mut() = Some(receiver());
                *ctx.thread.get_mut() = Some(spawn(Engine::new(shared.clone(), Sink::Queue))?);
            }
            Mode::Threaded if shared.options.workers == 0 => {
                *ctx.thread.get_mut() = Some(spawn(Engine::new(
                    shared.clone(),
                    Sink::Direct(Box::new(receiver())),
                ))?)
            }
            Mode::Threaded => {
                *ctx.thread.get_mut() = Some(spawn(Engine::new(shared.clone(), Sink::Queue))?);
                for consumer in 0..shared.options.workers {
                    let (shared, mut receiver) = (shared.clone(), receiver());
                    let thread = std::thread::Builder::new()
                        .name(format!("rosco-worker-{consumer}"))
                        .spawn(move || {
                            in_thread_hooks(&shared, || worker(&shared, &mut receiver, consumer))
                        });
                    match thread {
                        Ok(t) => ctx.workers.get_mut().push(t),
                        // Dropping the context stops the threads started so far.
                        Err(e) => return Err(Error::Io(e)),
                    }
                }
            }
        }
        ctx.io_thread = ctx.thread.get_mut().as_ref().map(|t| t.thread().id());
        Ok(ctx)
    }

    /// A sender for other threads and callbacks.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The method table: register callbacks here.
    pub fn methods(&self) -> &Arc<Dispatcher> {
        &self.shared.dispatcher
    }

    /// Opens a channel from a liblo-compatible URL (see `transport::url`) under a unique
    /// name. Listening sockets are bound when this returns.
    pub fn open(&self, name: &str, url: &str) -> Result<ChannelId, Error> {
        let url: ChannelUrl = url.parse()?;
        if self.shared.names.read().contains_key(name) {
            return Err(Error::NameTaken(name.into()));
        }
        // Sockets are opened outside the lock so senders never wait on a DNS lookup; the
        // real handle is filled in under it.
        let placeholder = ChannelId(crate::handle::Handle::from_bits(0));
        let host = url.host_name().map(str::to_owned);
        let mut channel = Channel::open(placeholder, name, url, &self.shared.options)?;
        let destination = channel.destination();
        let id = {
            let mut channels = self.shared.channels.write();
            let mut names = self.shared.names.write();
            // Closed meanwhile: `shutdown` has taken (or is about to take) every channel
            // it will ever close, so this one would outlive it.
            if self.is_closed() {
                return Err(Error::Closed);
            }
            if names.contains_key(name) {
                return Err(Error::NameTaken(name.into()));
            }
            let id = ChannelId(channels.next_handle());
            channel.id = id;
            channels.insert(Arc::new(channel));
            names.insert(name.into(), id);
            if let (Some(host), Some(addr)) = (host, destination) {
                self.shared.source_names.write().resolved(addr, &host, id);
            }
            id
        };
        self.shared.table_changed();
        // The I/O loop reports it bound (events come from the thread doing the I/O).
        self.shared.waker.wake();
        Ok(id)
    }

    /// Closes a channel: its sockets close and its peers are disconnected. Its packet hooks
    /// are removed, and are not running on another thread once this returns (as for
    /// [`set_packet_hooks`](Self::set_packet_hooks)). Reading it stops at once: what its
    /// sockets still hold, or a read has not handled yet, is dropped. What it handed on
    /// before still comes, with its stale handle: the rest of a bundle being dispatched,
    /// bundles held for their time, messages queued for `poll` or the workers (io-thread
    /// mode, threaded mode with workers). An O2lite host's held messages go with it.
    pub fn close(&self, id: ChannelId) -> Result<(), Error> {
        if self
            .shared
            .channel(id)
            .is_some_and(|c| matches!(c.kind, Kind::Local))
        {
            return Err(Error::Unsupported("_local cannot be closed"));
        }
        let channel = self
            .shared
            .channels
            .write()
            .remove(id.0)
            .ok_or(Error::NoChannel)?;
        self.shared.table_changed();
        self.shared.names.write().remove(&channel.name);
        self.shared.source_names.write().forget(id);
        // A send under way may still hold the channel: its hooks go now, so that their
        // user data may be freed once this returns.
        channel.hooks.close();
        // Addresses and socket files are freed now; the I/O loop may still hold the
        // channel until its current round ends: wake it and wait (briefly) so the sockets
        // themselves are closed when this returns, unless this thread runs the loop.
        channel.release();
        let on_io_thread = self.on_io_thread();
        let in_own_poll = self.shared.options.mode == Mode::Poll && self.in_own_poll();
        let until = Instant::now() + CLOSE_WAIT;
        loop {
            self.forget_poll_set();
            if Arc::strong_count(&channel) == 1
                || on_io_thread
                || in_own_poll
                || Instant::now() >= until
            {
                break;
            }
            self.shared.waker.wake();
            std::thread::sleep(Duration::from_micros(200));
        }
        drop(channel);
        self.shared.waker.wake();
        Ok(())
    }

    /// Poll mode keeps its poll set between calls (see `Engine::turn`): lets go of it
    /// unless a `poll` is running, which lets go of it at the end of its round if a channel
    /// closed meanwhile.
    fn forget_poll_set(&self) {
        if let Some(Some(engine)) = self.engine.try_lock().as_deref_mut() {
            engine.forget_poll_set();
        }
    }

    /// Identifies this context for `IN_POLL`.
    fn shared_id(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    /// True inside this context's `poll` on this thread (in one of its callbacks, maybe
    /// through another context's poll).
    fn in_own_poll(&self) -> bool {
        let me = self.shared_id();
        let depth = POLL_DEPTH.with(Cell::get).min(MAX_NESTED_POLLS);
        IN_POLL.with(|polls| polls[..depth].iter().any(|id| id.get() == me))
    }

    /// Poll mode's engine, unless a poll holds it (on another thread, or this one's from a
    /// callback): a close on another thread may hold it for an instant to drop its poll set
    /// (`forget_poll_set`), which is waited out rather than taken for a poll.
    fn lock_engine(&self) -> Option<parking_lot::MutexGuard<'_, Option<Engine>>> {
        self.engine.try_lock_for(Duration::from_millis(2))
    }

    fn on_io_thread(&self) -> bool {
        let me = std::thread::current().id();
        self.io_thread == Some(me)
    }

    fn on_worker_thread(&self) -> bool {
        let me = std::thread::current().id();
        self.workers.lock().iter().any(|t| t.thread().id() == me)
    }

    /// Runs the context for up to `timeout` (`None`: until something is dispatched): poll
    /// mode does all I/O and callbacks here; io-thread mode runs the callbacks of waiting
    /// messages here; threaded mode only waits. Returns the messages dispatched, or
    /// [`Error::Closed`] when the context shut down while it waited with nothing
    /// dispatched; [`Error::Busy`] from one of the context's own callbacks.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<usize, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let _in_poll = self.enter_poll();
        match self.poll_inner(timeout) {
            // Shut down by another thread while this waited: as a call that came after.
            // (From one of this poll's own callbacks it ends as it would have.)
            Ok(0)
                if self.is_closed() && !self.shared.closed_by_own_poll.load(Ordering::Acquire) =>
            {
                Err(Error::Closed)
            }
            result => result,
        }
    }

    /// Puts this thread's running of the context on `IN_POLL` (its callbacks run inside)
    /// until the guard goes, also when a callback panics.
    fn enter_poll(&self) -> impl Drop {
        struct Leave;
        impl Drop for Leave {
            fn drop(&mut self) {
                POLL_DEPTH.with(|d| d.set(d.get() - 1));
            }
        }
        let depth = POLL_DEPTH.with(|d| d.replace(d.get() + 1));
        if depth < MAX_NESTED_POLLS {
            IN_POLL.with(|polls| polls[depth].set(self.shared_id()));
        }
        Leave
    }

    fn poll_inner(&self, timeout: Option<Duration>) -> Result<usize, Error> {
        match self.shared.options.mode {
            Mode::Poll => {
                let Some(mut engine) = self.lock_engine() else {
                    return Err(Error::Busy);
                };
                let Some(engine) = engine.as_mut() else {
                    return Err(Error::Closed);
                };
                // One turn, without reading the clock: a caller busy-polling calls this
                // in a loop.
                if timeout == Some(Duration::ZERO) {
                    return Ok(engine.turn(timeout));
                }
                let until = deadline(timeout);
                loop {
                    let left = until.map(|u| u.saturating_duration_since(Instant::now()));
                    let n = engine.turn(left);
                    if n > 0 || left.is_some_and(|l| l.is_zero()) || self.is_closed() {
                        return Ok(n);
                    }
                }
            }
            Mode::IoThread => {
                // From an event or log callback on the I/O thread: the messages this would
                // wait for can only come from that thread.
                if self.on_io_thread() {
                    return Err(Error::Busy);
                }
                let Some(mut receiver) = self.receiver.try_lock() else {
                    return Err(Error::Busy);
                };
                let Some(receiver) = receiver.as_mut() else {
                    return Err(Error::Closed);
                };
                Ok(self
                    .shared
                    .dispatch_queued(receiver, 0, usize::MAX, timeout))
            }
            Mode::Threaded => {
                // Nothing runs here; a call from a callback would stall the I/O thread or
                // the worker it runs on.
                if self.on_io_thread() || self.on_worker_thread() {
                    return Err(Error::Busy);
                }
                let Some(_one_at_a_time) = self.receiver.try_lock() else {
                    return Err(Error::Busy);
                };
                // Waits as the other modes do (`None`: until the context closes), so a
                // loop around `poll` does not spin, and sleeps meanwhile.
                self.shared.wait_closed(deadline(timeout));
                Ok(0)
            }
        }
    }

    /// Io-thread mode: a descriptor that is readable while received messages wait for
    /// `poll` (for `sys_addpollfn`, epoll, ...). `None` in the other modes.
    pub fn wakeup_fd(&self) -> Option<RawFd> {
        (self.shared.options.mode == Mode::IoThread).then(|| self.shared.notify.fd())
    }

    /// Waits until everything sent on a stream channel has been written (a client is
    /// connected and its output is empty), driving the I/O in poll mode.
    pub fn flush(&self, id: ChannelId, timeout: Duration) -> Result<(), Error> {
        // Only the I/O thread can finish a write or a connect: from one of its callbacks
        // (methods in threaded mode, events and logs in io-thread mode), waiting would only
        // wait out the timeout (and hold up `free` meanwhile).
        if self.on_io_thread() {
            return Err(Error::Busy);
        }
        let until = deadline(Some(timeout));
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            let channel = self.shared.channel(id).ok_or(Error::NoChannel)?;
            let done = match &channel.kind {
                Kind::Client(c) => match &*c.state.lock() {
                    ClientState::Connected(conn) => !conn.wants_write(),
                    ClientState::GaveUp => return Err(Error::Closed),
                    _ => false,
                },
                Kind::Listener { peers, .. } => peers.lock().iter().all(|(_, c)| !c.wants_write()),
                _ => true,
            };
            drop(channel);
            if done {
                return Ok(());
            }
            let left = until.map_or(Duration::MAX, |u| {
                u.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            match self.shared.options.mode {
                Mode::Poll => {
                    let Some(mut engine) = self.lock_engine() else {
                        return Err(Error::Busy);
                    };
                    // Callbacks run in this turn as in `poll`'s.
                    let _in_poll = self.enter_poll();
                    if let Some(engine) = engine.as_mut() {
                        engine.turn(Some(left.min(Duration::from_millis(10))));
                    }
                }
                _ => std::thread::sleep(left.min(Duration::from_millis(1))),
            }
        }
    }

    /// Delegates O2 service `service` of O2lite channel `o2` to OSC channel `osc` (as O2's
    /// `o2host` does): every message for the service is sent on `osc`, with its address as
    /// it is (`/service/...`) or, with `strip`, without the service part; a non-zero O2
    /// timestamp becomes a bundle timetag (global time mapped to the system clock now), as
    /// do time arguments, and O2 booleans become `T`/`F`. A message that cannot be passed
    /// on is logged at warning level. On a host the service is offered as one of its own.
    /// Returns the bridging method; removing it ends the bridge, and the service stays
    /// offered until [`o2_service_remove`](Sender::o2_service_remove).
    pub fn o2_bridge_to_osc(
        &self,
        o2: ChannelId,
        service: &str,
        osc: ChannelId,
        strip: bool,
    ) -> Result<crate::dispatch::MethodId, Error> {
        check_bridged_service(service)?;
        self.check_osc_channel(osc)?;
        self.o2_service_add(o2, service)?;
        let sender = self.sender();
        let prefix = format!("/{service}");
        // A catch-all that picks the service's messages: `/service` itself as well as
        // `/service/...` (no one pattern reaches both: `/service//*` needs a part more).
        let method = self.methods().add_method(None, None, move |m, info| {
            let rest = m
                .address_str()
                .and_then(|a| Some((a, a.strip_prefix(&prefix)?)));
            let (address, rest) = match rest {
                Some((a, rest))
                    if info.channel == Some(o2)
                        && matches!(rest.bytes().next(), None | Some(b'/')) =>
                {
                    (a, rest)
                }
                _ => return crate::dispatch::Flow::PassOn,
            };
            // Stripped of the service, `/service` alone stays as it is.
            let address = match strip && !rest.is_empty() {
                true => rest,
                false => address,
            };
            let timestamp = info.o2.map_or(0.0, |s| s.timestamp);
            if let Err(e) = sender.forward_to_osc(osc, o2, timestamp, address, m) {
                sender.bridge_failed(address, &e);
            }
            crate::dispatch::Flow::Handled
        })?;
        Ok(method)
    }

    /// Feeds what OSC channel `osc` receives to O2 service `service` through O2lite channel
    /// `o2`: each message is sent to `/service` + its address when `prefix` is set, else to
    /// its address as it is; a bundle's timetag becomes the O2 timestamp (immediate: 0), and
    /// timetag arguments global seconds. A message that cannot be passed on is logged at
    /// warning level.
    /// Returns the bridging method (a catch-all for that channel).
    pub fn osc_bridge_to_o2(
        &self,
        osc: ChannelId,
        o2: ChannelId,
        service: &str,
        prefix: bool,
        reliable: bool,
    ) -> Result<crate::dispatch::MethodId, Error> {
        check_bridged_service(service)?;
        self.check_osc_channel(osc)?;
        self.with_o2(o2, |_, _| Ok(()))?;
        let sender = self.sender();
        let service = service.to_string();
        let method = self.methods().add_method(None, None, move |m, info| {
            if info.channel != Some(osc) {
                return crate::dispatch::Flow::PassOn;
            }
            let Some(address) = m.address_str() else {
                return crate::dispatch::Flow::Handled;
            };
            let address = match prefix {
                true => format!("/{service}{address}"),
                false => address.to_string(),
            };
            let timestamp = match info.bundle_time {
                Some(t) if t.to_bits() > 1 => sender.global_at(o2, t).unwrap_or(0.0),
                _ => 0.0,
            };
            // A timetag argument becomes global seconds, as the bundle's timetag does;
            // before the clock is known there are none to give.
            let args: Result<Vec<Arg<'_>>, Error> = m
                .args()
                .map(|a| match a {
                    Arg::Time(t) if t.to_bits() > 1 => {
                        let global = sender
                            .global_at(o2, t)
                            .ok_or(Error::Unsupported(UNSYNCED_TIME))?;
                        super::o2::seconds_to_fixed(global)
                            .map(Arg::Time)
                            .ok_or(Error::Unsupported(EARLY_TIME))
                    }
                    a => Ok(a),
                })
                .collect();
            let sent =
                args.and_then(|args| sender.o2_send(o2, timestamp, reliable, &address, &args));
            if let Err(e) = sent {
                sender.bridge_failed(&address, &e);
            }
            crate::dispatch::Flow::Handled
        })?;
        Ok(method)
    }

    /// Subscribes to the messages to `address` (a literal address, an OSC pattern, or
    /// `None` for all) whose arguments fit `typespec`: they are kept, at most `capacity`
    /// of them, for the application to take (aiolo's `route.sub()`). See [`Subscription`].
    pub fn subscribe(
        &self,
        address: Option<&str>,
        typespec: Option<&str>,
        capacity: usize,
    ) -> Result<Subscription, Error> {
        if capacity == 0 {
            return Err(Error::BadOption(
                "a subscription's capacity must be at least 1",
            ));
        }
        let mut sub = Subscription::new(
            self.shared.dispatcher.clone(),
            self.shared.closed.clone(),
            capacity,
        );
        sub.also(address, typespec)?;
        Ok(sub)
    }

    /// Sets the callback for channel events (`None` removes it). Once this returns the
    /// previous callback is not running on any other thread, and will not run again.
    pub fn set_event_callback(&self, callback: Option<impl Fn(&Event) + Send + Sync + 'static>) {
        self.shared
            .events
            .set(callback.map(|c| Arc::new(Box::new(c) as super::shared::EventCallback)));
    }

    /// Sets the log callback and the most detailed level it receives. Once this returns
    /// the previous callback is not running on any other thread, and will not run again.
    pub fn set_log_callback(
        &self,
        level: LogLevel,
        callback: Option<impl Fn(LogLevel, &str) + Send + Sync + 'static>,
    ) {
        self.shared.log_level.store(level as u8, Ordering::Relaxed);
        self.shared
            .log
            .set(callback.map(|c| Arc::new(Box::new(c) as super::shared::LogCallback)));
    }

    /// Sets the filter that accepts or refuses each incoming stream connection (osc4py3's
    /// connection request handler; `None` accepts all). It runs on the thread doing the
    /// I/O, with the listener channel and the peer's address (`None` for Unix sockets); a
    /// refused connection is closed at once and reported as [`Event::Disconnected`]. Once
    /// this returns the previous filter is not running on another thread.
    pub fn set_accept_filter(
        &self,
        filter: Option<impl Fn(ChannelId, Option<SocketAddr>) -> bool + Send + Sync + 'static>,
    ) {
        self.shared
            .accept
            .set(filter.map(|f| Arc::new(Box::new(f) as super::shared::AcceptFilter)));
    }

    /// Sets a channel's packet hooks (`None` removes one). Hooks run on the I/O thread
    /// (incoming) and on the sending thread (outgoing); they must not open or close
    /// channels. Once this returns the previous hooks are not running on another thread
    /// (called from inside a callback or hook, this cannot wait for calls under way on
    /// other threads). Closing the channel or the context removes its hooks the same way.
    /// O2lite channels carry O2 messages and take no hooks; `_local` has no incoming side
    /// (its outgoing hook sees what it dispatches).
    pub fn set_packet_hooks(
        &self,
        id: ChannelId,
        incoming: Option<PacketHook>,
        outgoing: Option<PacketHook>,
    ) -> Result<(), Error> {
        let channel = self.shared.channel(id).ok_or(Error::NoChannel)?;
        if channel.o2.is_some() {
            return Err(Error::Unsupported("O2lite channels take no packet hooks"));
        }
        if incoming.is_some() && matches!(channel.kind, Kind::Local) {
            return Err(Error::Unsupported(
                "_local has no incoming side: its outgoing hook sees what it dispatches",
            ));
        }
        match channel.hooks.set(incoming, outgoing) {
            true => Ok(()),
            false => Err(Error::NoChannel),
        }
    }
}

impl Context {
    /// Stops the context now, even while other threads are inside calls on it: the I/O
    /// thread ends, a `poll` in progress elsewhere finishes its round, every method,
    /// callback and channel goes. No callback starts after this returns (one already
    /// running on another thread is waited for, unless this is called from a callback or
    /// from inside a `poll`).
    /// Dropping the context does the same; later calls return [`Error::Closed`]. A call
    /// made while another thread's is under way returns once that one has finished, and
    /// so keeps the same promise (except, as that one, where waiting could deadlock: from
    /// a callback, a poll, a context's thread, or what a shutdown runs). The context's
    /// threads have ended when this returns, unless it is called on a thread a context
    /// started (this one's or another's). User code that rosco runs (callbacks, hooks,
    /// destructors of what it frees) must not wait for a thread that shuts the context
    /// down, itself or through a call that waits (the `shutdown` of a context that thread
    /// is polling, a callback replaced while that thread runs it): that thread may be
    /// waiting for it.
    pub fn shutdown(&self) {
        // Noted first: the poll this runs inside checks it once `closed` is set.
        if self.in_own_poll() {
            self.shared
                .closed_by_own_poll
                .store(true, Ordering::Release);
        }
        // Not from inside a poll or a callback, whose thread may hold what another thread
        // waits for (its own engine, or another context's whose callback is shutting this
        // one down): such a call waits for no poll, nor for another shutdown.
        let inside = POLL_DEPTH.with(Cell::get) > 0 || crate::callback_slot::inside();
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            // Nor on any context's thread (a thread hook, a destructor it runs), which a
            // shutdown may be joining, nor from what a shutdown runs (a destructor), which
            // another thread's shutdown may be waiting for in turn.
            let joinable = CONTEXT_THREAD.with(Cell::get);
            if !inside && !joinable && SHUTTING_DOWN.with(Cell::get) == 0 {
                self.wait_for_shutdown();
            }
            return;
        }
        let running = ShuttingDown::start(self);
        self.shared.waker.wake();
        self.shared.wake_consumers();
        // On a context's thread, the threads are not joined: one may be this one, or be
        // shutting down this thread's context, whose shutdown would join this one; they
        // end by themselves, and a later call (the drop) on another thread joins them.
        let mut threads = std::mem::take(&mut *self.workers.lock());
        threads.extend(self.thread.lock().take());
        match CONTEXT_THREAD.with(Cell::get) {
            true => self.unjoined.lock().extend(threads),
            false => threads.into_iter().for_each(|t| drop(t.join())),
        }
        match inside {
            false => self.wait_for_polls(),
            true => self.forget_poll_set(),
        }
        // The steps that free user code (whose destructors may panic) all run; the first
        // panic is raised at the end.
        let mut panicked = None;
        let mut step = |f: &dyn Fn()| {
            if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                panicked.get_or_insert(panic);
            }
        };
        // Hooks first: none may start once the state the callbacks share is gone (a C++
        // wrapper's, freed with the method table). Closed outside the table's lock, which
        // a running hook's own sends take.
        let mut hooked = Vec::new();
        self.shared.channels_into(&mut hooked);
        for ch in &hooked {
            step(&|| ch.hooks.close());
        }
        // Callbacks may hold senders: clearing the table breaks those reference cycles.
        step(&|| self.shared.dispatcher.clear());
        step(&|| self.shared.dispatcher.set_bundle_callbacks(None, None));
        step(&|| self.shared.events.set(None));
        step(&|| self.shared.log.set(None));
        step(&|| self.shared.accept.set(None));
        let channels: Vec<_> = {
            let mut table = self.shared.channels.write();
            let ids: Vec<_> = table.iter().map(|(h, _)| h).collect();
            ids.into_iter().filter_map(|h| table.remove(h)).collect()
        };
        self.shared.table_changed();
        self.shared.names.write().clear();
        for ch in &channels {
            ch.release();
        }
        if inside {
            // Hooks running elsewhere were not waited for: a later call waits for them.
            self.taken_out.lock().extend(channels);
        }
        drop(running);
        // (Not while this thread unwinds already, dropping the context: that would abort.)
        if let (Some(panic), false) = (panicked, std::thread::panicking()) {
            std::panic::resume_unwind(panic);
        }
    }

    /// What a shutdown made from a callback did not wait for: the calls of callbacks and
    /// hooks running on other threads (the one that made it among them).
    fn wait_for_callbacks(&self) {
        for ch in std::mem::take(&mut *self.taken_out.lock()) {
            ch.hooks.wait();
        }
        self.shared.dispatcher.wait_for_bundle_callbacks();
        self.shared.events.wait();
        self.shared.log.wait();
        self.shared.accept.wait();
    }

    /// Lets a poll in progress on another thread finish its round.
    fn wait_for_polls(&self) {
        if let Some(engine) = self.engine.lock().as_mut() {
            engine.forget_poll_set();
        }
        drop(self.receiver.lock());
    }

    /// A shutdown that found another under way: waits for it to finish, for the polls,
    /// callbacks and threads it may not have waited for (made from a callback); later
    /// callers wait for the threads too, joined under the lock.
    fn wait_for_shutdown(&self) {
        let mut done = self.shut_down.lock();
        while !*done {
            self.shut_down_signal.wait(&mut done);
        }
        drop(done);
        self.wait_for_polls();
        self.wait_for_callbacks();
        let mut unjoined = self.unjoined.lock();
        for thread in unjoined.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.shutdown();
        *self.engine.get_mut() = None;
        *self.receiver.get_mut() = None;
    }
}

/// When a wait of `timeout` from now ends; `None` for never (no timeout, or one too long to
/// represent, such as `Duration::MAX`).
pub(super) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    Instant::now().checked_add(timeout?)
}

/// A worker thread: takes one queued packet at a time and runs its callbacks.
fn worker(shared: &Shared, receiver: &mut Receiver, consumer: usize) {
    while !shared.closed.load(Ordering::Acquire) {
        let round = std::panic::AssertUnwindSafe(|| {
            shared.dispatch_queued(receiver, consumer, 1, None);
        });
        // A panicking callback must not end the worker.
        if std::panic::catch_unwind(round).is_err() {
            shared.log_panic("a callback panicked on a worker thread");
        }
    }
}

/// A service name a bridge can use: a valid O2 name that is also literal in an OSC
/// address (the bridge matches `/service/...` with a pattern: a `*` in the name would
/// take other services' messages, a `[` would make no pattern at all).
fn check_bridged_service(service: &str) -> Result<(), Error> {
    let refused = |why: &str| Error::Service(format!("'{service}': {why}"));
    crate::o2lite::check_service_name(service).map_err(refused)?;
    match service.contains(['*', '?', '[', ']', '{', '}', ',', '#', ' ']) {
        true => Err(refused(
            "a bridged service name holds none of * ? [ ] { } , # or space",
        )),
        false => Ok(()),
    }
}

/// Runs a context thread's `body` between the thread hooks of the options.
fn in_thread_hooks(shared: &Shared, body: impl FnOnce()) {
    CONTEXT_THREAD.with(|t| t.set(true));
    let name = std::thread::current().name().unwrap_or("rosco").to_string();
    let call = |hook: &Option<ThreadHook>, what: &str| {
        let Some(hook) = hook else { return };
        let call = std::panic::AssertUnwindSafe(|| hook.call(&name));
        if std::panic::catch_unwind(call).is_err() {
            shared.log_panic(&format!("the {what} hook panicked on {name}"));
        }
    };
    call(&shared.options.thread_start, "thread start");
    body();
    call(&shared.options.thread_stop, "thread stop");
}

fn io_thread(mut engine: Engine, shared: &Shared) {
    while !shared.closed.load(Ordering::Acquire) {
        // A panicking callback must not end the I/O thread.
        let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.turn(None)));
        if turn.is_err() {
            shared.log_panic("a callback panicked on the I/O thread");
        }
    }
}

impl Sender {
    /// The options the context was created with.
    pub fn options(&self) -> &ContextOptions {
        &self.shared.options
    }

    /// True once [`Context::shutdown`] has begun.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    fn with_channel<R>(
        &self,
        id: ChannelId,
        f: impl FnOnce(&Channel) -> Result<R, Error>,
    ) -> Result<R, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        // Not under the table's lock: `f` may call user code (hooks, the log callback when
        // tracing) that opens or closes channels.
        // Not `ok_or`: building an error and dropping it on every send cost a send 5%.
        let Some(channel) = self.shared.channel(id) else {
            return Err(Error::NoChannel);
        };
        f(&channel)
    }

    /// Sends raw bytes as one packet (datagram or frame) on a channel. They are not
    /// checked, except that an empty packet, never valid OSC, is refused.
    pub fn send_packet(&self, id: ChannelId, packet: &[u8]) -> Result<(), Error> {
        self.with_channel(id, |ch| self.transmit(ch, packet, Dest::Default))
    }

    /// Encodes a message into `buf` (replacing its contents) with the context's encoder
    /// options: what `send`, `send_to`, `send_to_names` and `reply` send.
    pub fn encode(&self, address: &str, args: &[Arg<'_>], buf: &mut Vec<u8>) -> Result<(), Error> {
        buf.clear();
        PacketWriter::with_options(buf, &self.shared.options.encode).message(address, args)?;
        Ok(())
    }

    /// Encodes and sends a message on a channel. Allocation-free once this thread's
    /// buffer has grown; UDP sends take no contended lock.
    pub fn send(&self, id: ChannelId, address: &str, args: &[Arg<'_>]) -> Result<(), Error> {
        with_buf(&ENCODE_BUF, |buf| {
            self.encode(address, args, buf)?;
            self.send_packet(id, buf)
        })
    }

    /// Sends a message on the channel with this name (`_local` dispatches in-process).
    pub fn send_to(&self, name: &str, address: &str, args: &[Arg<'_>]) -> Result<(), Error> {
        self.send(self.named(name)?, address, args)
    }

    /// Sends a message on each named channel (osc4py3's light coupling with a group of
    /// names). Every channel is tried; the first error is returned.
    pub fn send_to_names(
        &self,
        names: &[&str],
        address: &str,
        args: &[Arg<'_>],
    ) -> Result<(), Error> {
        with_buf(&ENCODE_BUF, |buf| {
            self.encode(address, args, buf)?;
            let mut first_error = None;
            for name in names {
                let result = self.named(name).and_then(|id| self.send_packet(id, buf));
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }

    /// Answers the sender of a message on the channel it came in on (its source address
    /// for UDP, its connection for streams).
    pub fn reply(&self, to: &MsgInfo, address: &str, args: &[Arg<'_>]) -> Result<(), Error> {
        with_buf(&ENCODE_BUF, |buf| {
            self.encode(address, args, buf)?;
            self.reply_packet(to, buf)
        })
    }

    /// Like [`reply`](Self::reply), with a packet already encoded.
    pub fn reply_packet(&self, to: &MsgInfo, packet: &[u8]) -> Result<(), Error> {
        let Some(id) = to.channel else {
            return Err(Error::Unsupported("the message came from no channel"));
        };
        let dest = match (to.peer, to.source) {
            (Some(peer), _) => Dest::Peer(peer),
            (None, Some(addr)) => Dest::Addr(addr),
            (None, None) => Dest::Default,
        };
        self.with_channel(id, |ch| self.transmit(ch, packet, dest))
    }

    fn transmit(&self, ch: &Channel, packet: &[u8], dest: Dest) -> Result<(), Error> {
        let to = match dest {
            Dest::Addr(a) => Some(a),
            _ => None,
        };
        // Refused before the hook too: a hook is not handed a packet that was never one.
        if packet.is_empty() {
            return Err(empty_packet());
        }
        self.shared.trace(&ch.name, "sends", to, packet);
        if !ch.hooks.any() {
            return self.transmit_raw(ch, packet, dest);
        }
        with_buf(&HOOK_BUF, |out| match ch.hooks.outgoing(packet, out) {
            HookVerdict::Pass => self.transmit_raw(ch, packet, dest),
            HookVerdict::Replace => self.transmit_raw(ch, out, dest),
            // A send that raced the channel's closing.
            HookVerdict::Drop if ch.hooks.is_closed() => Err(Error::NoChannel),
            HookVerdict::Drop => Ok(()),
        })
    }

    /// Every send ends here, after the outgoing hook: an empty packet, which no receiver
    /// accepts (a hook may have made it), goes no further.
    fn transmit_raw(&self, ch: &Channel, packet: &[u8], dest: Dest) -> Result<(), Error> {
        if packet.is_empty() {
            return Err(empty_packet());
        }
        if let Kind::Local = ch.kind {
            // Checked as the receiver will check it (the context's table decompresses).
            crate::osc::decode_with(packet, &self.shared.options.receive.decode)
                .map_err(Error::Decode)?;
            self.shared.trace(&ch.name, "receives", None, packet);
            let info = MsgInfo::new(TimeTag::now());
            let item = Incoming::new(&self.shared, ch.id, info, packet);
            // Received before its callback can run; one the full queue refuses is dropped
            // (as a datagram would be), and not sent.
            ch.stats.count_local_in(packet.len());
            if !self.shared.push_incoming(item) {
                self.shared.dropped_reported_later(ch, 1);
                return Err(Error::Full);
            }
            ch.stats.count_sent(packet.len());
            self.shared.waker.wake();
            return Ok(());
        }
        match ch.send(packet, dest, &self.shared) {
            Ok(true) => self.shared.waker.wake(),
            Ok(false) => {}
            // The socket was let go under a send that raced the channel's closing.
            Err(Error::Io(_)) if ch.hooks.is_closed() => {
                return Err(match self.is_closed() {
                    true => Error::Closed,
                    false => Error::NoChannel,
                })
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The channel exists and carries OSC (a bridge's other end).
    fn check_osc_channel(&self, id: ChannelId) -> Result<(), Error> {
        self.with_channel(id, |ch| match ch.o2 {
            Some(_) => Err(Error::Unsupported("an O2lite channel, not an OSC one")),
            None => Ok(()),
        })
    }

    /// Runs `f` with an O2lite channel's role.
    fn with_o2<R>(
        &self,
        id: ChannelId,
        f: impl FnOnce(&Channel, &O2Role) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.with_channel(id, |ch| match &ch.o2 {
            Some(role) => f(ch, role),
            None => Err(Error::Unsupported("not an O2lite channel")),
        })
    }

    /// Sends a message on an O2lite channel with an O2 timestamp (global seconds, 0 for
    /// "now") by TCP (`reliable`) or UDP. A timetag argument is taken as global seconds in
    /// 32.32 fixed point (see `runtime::seconds_to_fixed`). A client whose clock is not
    /// synchronised yet sends timestamp 0 only (`Unsupported` otherwise); a timestamp that
    /// is not finite, or negative, is `Unsupported` too.
    pub fn o2_send(
        &self,
        id: ChannelId,
        timestamp: f64,
        reliable: bool,
        address: &str,
        args: &[Arg<'_>],
    ) -> Result<(), Error> {
        self.with_o2(id, |ch, role| {
            let o2_args = super::o2::o2_args(args.iter().copied())?;
            if super::o2::send(ch, role, timestamp, reliable, address.as_bytes(), o2_args)? {
                self.shared.waker.wake();
            }
            Ok(())
        })
    }

    /// Offers a service: on a client channel it is announced to the host (now and on every
    /// connection); on a host channel it is one of the host's own services, whose messages
    /// reach this context's methods.
    pub fn o2_service_add(&self, id: ChannelId, service: &str) -> Result<(), Error> {
        let refused = |why| Error::Service(format!("'{service}': {why}"));
        self.with_o2(id, |ch, role| {
            match role {
                O2Role::Client { .. } => {
                    let add = |s: &mut ClientSession, out: &mut Output| s.add_service(service, out);
                    if let Some((added, _)) = client_turn(ch, role, add) {
                        added.map_err(refused)?;
                    }
                }
                O2Role::Host { .. } => {
                    let add = |s: &mut HostSession, out: &mut _| s.add_local_service(service, out);
                    if let Some(added) = host_turn(role, add) {
                        added.map_err(refused)?;
                    }
                }
            }
            self.shared.waker.wake();
            Ok(())
        })
    }

    /// Withdraws a service offered with [`o2_service_add`](Self::o2_service_add);
    /// [`Error::Service`] for one not offered.
    pub fn o2_service_remove(&self, id: ChannelId, service: &str) -> Result<(), Error> {
        self.with_o2(id, |ch, role| {
            let removed = match role {
                O2Role::Client { .. } => {
                    let remove =
                        |s: &mut ClientSession, out: &mut Output| s.remove_service(service, out);
                    client_turn(ch, role, remove).is_some_and(|(removed, _)| removed)
                }
                O2Role::Host { .. } => {
                    let remove =
                        |s: &mut HostSession, out: &mut _| s.remove_local_service(service, out);
                    host_turn(role, remove).unwrap_or(false)
                }
            };
            self.shared.waker.wake();
            match removed {
                true => Ok(()),
                false => Err(Error::Service(format!("'{service}' is not offered here"))),
            }
        })
    }

    /// The ensemble's global time seen from this channel (seconds; -1 on a client that is
    /// not synchronised yet).
    pub fn o2_time(&self, id: ChannelId) -> Result<f64, Error> {
        self.with_o2(id, |_, role| Ok(role.global_time()))
    }

    /// The global time of O2lite channel `o2` at system time `t` (None before sync).
    fn global_at(&self, o2: ChannelId, t: crate::time::TimeTag) -> Option<f64> {
        let now_global = self.o2_time(o2).ok().filter(|g| *g >= 0.0)?;
        let now = TimeTag::now().to_unix_secs_f64();
        Some((now_global + (t.to_unix_secs_f64() - now)).max(0.0))
    }

    /// Sends an O2 message on an OSC channel: a bundle at the system time matching its
    /// O2 timestamp, or a plain message for timestamp 0.
    fn forward_to_osc(
        &self,
        osc: ChannelId,
        o2: ChannelId,
        timestamp: f64,
        address: &str,
        m: &crate::osc::Message<'_>,
    ) -> Result<(), Error> {
        let global_now = self.o2_time(o2).unwrap_or(-1.0);
        if global_now < 0.0 && m.args().any(|a| matches!(a, Arg::Time(_))) {
            return Err(Error::Unsupported(UNSYNCED_TIME));
        }
        with_buf(&ENCODE_BUF, |buf| {
            let mut w = crate::osc::PacketWriter::new(buf);
            let now = TimeTag::now().to_unix_secs_f64();
            // Global seconds as the system time they name, while the clock is known.
            let system = |global: f64| TimeTag::from_unix_secs_f64(now + (global - global_now));
            // O2's boolean is OSC's T or F; its time argument is global seconds.
            let args = m.args().map(|a| match a {
                Arg::Bool(true) => Arg::True,
                Arg::Bool(false) => Arg::False,
                Arg::Time(t) if global_now >= 0.0 => {
                    Arg::Time(system(super::o2::fixed_to_seconds(t)))
                }
                a => a,
            });
            if timestamp > 0.0 && global_now >= 0.0 {
                w.begin_bundle(system(timestamp))?;
                w.message_iter(address, args)?;
                w.end_bundle()?;
            } else {
                w.message_iter(address, args)?;
            }
            self.send_packet(osc, buf)
        })
    }

    /// Says that a bridge could not pass a message on (its callback has no one to return
    /// an error to).
    fn bridge_failed(&self, address: &str, e: &Error) {
        let warn = super::LogLevel::Warn;
        self.shared
            .log(warn, format_args!("bridge: {address} not passed on: {e}"));
    }

    /// The UDP port of an O2lite channel (a host's is what clients need besides its TCP
    /// port).
    pub fn o2_udp_port(&self, id: ChannelId) -> Result<u16, Error> {
        self.with_o2(id, |_, role| Ok(role.udp().local_addr()?.port()))
    }

    /// A client channel's bridge id while connected.
    pub fn o2_bridge_id(&self, id: ChannelId) -> Result<Option<i32>, Error> {
        self.with_o2(id, |_, role| match role {
            O2Role::Client { session, .. } => Ok(session.lock().bridge_id()),
            O2Role::Host { .. } => Err(Error::Unsupported("a host has no bridge id")),
        })
    }

    /// Asks the host for a service's status, or (with `None`) for its service list; the
    /// answer arrives as an [`Event::O2Client`](super::Event::O2Client). [`Error::Closed`]
    /// while the client is not connected, [`Error::Full`] while output to the host waits at
    /// its limit.
    pub fn o2_query(&self, id: ChannelId, service: Option<&str>) -> Result<(), Error> {
        self.with_o2(id, |ch, role| {
            // Queries change nothing in the session: refused like application messages
            // when output is at its limit, not queued past it as announcements are.
            match ch.connected_stream() {
                // The host closed: its session ends (see `o2::send`).
                Some(conn) if conn.is_closed() || conn.has_peer_finished() => {
                    return Err(Error::Closed)
                }
                Some(conn) if conn.unwritten() > MAX_PENDING_OUT => return Err(Error::Full),
                _ => {}
            }
            let query = |session: &mut ClientSession, out: &mut Output| match service {
                Some(s) => session.query_status(s, out),
                None => session.query_list(out),
            };
            let Some((sent, _)) = client_turn(ch, role, query) else {
                return Err(Error::Unsupported("queries are for client channels"));
            };
            self.shared.waker.wake();
            match sent {
                true => Ok(()),
                false => Err(Error::Closed),
            }
        })
    }

    /// The name of a packet's source ([`MsgInfo::source`](crate::dispatch::MsgInfo)), as
    /// osc4py3 identifies peers: the name given with
    /// [`set_source_name`](Self::set_source_name) for that address and port, else for
    /// that host, else the host name the URL of an open channel used for that address (the
    /// lookup made when it opened; nothing is looked up here).
    pub fn source_name(&self, source: SocketAddr) -> Option<Arc<str>> {
        self.shared.source_names.read().get(source)
    }

    /// Names the packets from `ip` (on `port` alone, or on any port) for
    /// [`source_name`](Self::source_name) (osc4py3's `read_forceident`); `None` forgets the
    /// name given.
    pub fn set_source_name(&self, ip: IpAddr, port: Option<u16>, name: Option<&str>) {
        self.shared.source_names.write().set(ip, port, name);
    }

    /// The channel with this name.
    pub fn channel_id(&self, name: &str) -> Option<ChannelId> {
        self.shared.names.read().get(name).copied()
    }

    /// The channel with this name, or why there is none: [`Error::Closed`] once the
    /// context is shut down (the names went with the channels), else [`Error::NoName`].
    pub fn named(&self, name: &str) -> Result<ChannelId, Error> {
        match self.channel_id(name) {
            Some(id) => Ok(id),
            None if self.is_closed() => Err(Error::Closed),
            None => Err(Error::NoName(name.into())),
        }
    }

    /// The local address a channel's socket is bound to (a listener's port, a sender's
    /// ephemeral port; a stream client's once it is connected).
    pub fn local_addr(&self, id: ChannelId) -> Result<SocketAddr, Error> {
        self.with_channel(id, |ch| {
            ch.local_addr().ok_or_else(|| match &ch.kind {
                Kind::Client(c) if matches!(*c.target.lock(), ClientTarget::Tcp { .. }) => {
                    Error::Unsupported("this client is not connected (no address until it is)")
                }
                _ => Error::Unsupported("this channel has no IP address"),
            })
        })
    }

    /// The port a channel's socket is bound to.
    pub fn port(&self, id: ChannelId) -> Result<u16, Error> {
        self.local_addr(id).map(|a| a.port())
    }

    /// The channel's URL in liblo's form, with the real port for a listener on port 0 (and
    /// both real ports for an O2lite host).
    pub fn url(&self, id: ChannelId) -> Result<String, Error> {
        self.with_channel(id, |ch| {
            let mut url = ch.url.clone();
            if let (
                ChannelUrl::Udp {
                    host: None, port, ..
                }
                | ChannelUrl::Tcp {
                    host: None, port, ..
                },
                Some(local),
            ) = (&mut url, ch.local_addr())
            {
                *port = local.port();
            }
            if let (ChannelUrl::O2liteHost { port, udp_port, .. }, Some(local), Some(role)) =
                (&mut url, ch.local_addr(), &ch.o2)
            {
                *port = Some(local.port());
                *udp_port = role.udp().local_addr().ok().map(|a| a.port());
            }
            Ok(url.to_string())
        })
    }

    /// The name a channel was opened with (osc4py3 hands it to handlers as the reader's
    /// name; here a message's [`MsgInfo::channel`] leads to it).
    pub fn channel_name(&self, id: ChannelId) -> Result<String, Error> {
        self.with_channel(id, |ch| Ok(ch.name.to_string()))
    }

    /// A channel's counters.
    pub fn stats(&self, id: ChannelId) -> Result<ChannelStats, Error> {
        self.with_channel(id, |ch| Ok(ch.stats.snapshot()))
    }
}

/// Why an empty packet is not sent.
fn empty_packet() -> Error {
    Error::Decode(crate::osc::DecodeError {
        kind: crate::osc::DecodeErrorKind::Empty,
        offset: 0,
    })
}
