//! How a context runs: its threading mode and limits.

use crate::osc::framing::DEFAULT_MAX_FRAME;
use crate::osc::EncodeOptions;
use crate::receive::ReceiveOptions;
use std::sync::Arc;
use std::time::Duration;

/// Where socket I/O and callbacks run (osc4py3's three scheduling models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// No threads: I/O, decoding and callbacks all happen inside `poll` on the caller's
    /// thread (Pd, Max, Unity, simple loops).
    #[default]
    Poll,
    /// A background thread does socket I/O, framing and validation; callbacks run inside
    /// `poll` on the caller's thread, and a descriptor is readable while messages wait.
    IoThread,
    /// Callbacks run on the background I/O thread itself, for the lowest latency (or on
    /// worker threads: see [`ContextOptions::workers`]).
    Threaded,
}

/// The shortest wait between reconnect attempts, whatever the settings say: a zero wait
/// would retry on every turn of the I/O loop.
pub const MIN_RECONNECT_WAIT: Duration = Duration::from_millis(10);

/// The most packets a context's receive queue can hold (its room is allocated up front,
/// about 140 bytes a packet).
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

/// When and how often a stream client reconnects after losing (or failing to make) its
/// connection. Waits are at least [`MIN_RECONNECT_WAIT`]. A connection that ends within a
/// second of being made counts as a failed attempt (the count and the wait go on from
/// there); one that lasted longer starts them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// Reconnect at all.
    pub enabled: bool,
    /// The first wait; each further attempt doubles it.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Attempts before giving up; 0 retries forever.
    pub retries: u32,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            enabled: true,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            retries: 0,
        }
    }
}

impl Reconnect {
    /// These settings with a channel URL's overrides (`reconnect`, `retries`, `backoff_ms`).
    pub(crate) fn with(
        self,
        enabled: Option<bool>,
        retries: Option<u32>,
        backoff_ms: Option<u64>,
    ) -> Reconnect {
        Reconnect {
            enabled: enabled.unwrap_or(self.enabled),
            retries: retries.unwrap_or(self.retries),
            initial: backoff_ms.map_or(self.initial, Duration::from_millis),
            max: self.max,
        }
    }
}

/// Everything a context is created with. Limits protect the process from its peers.
#[derive(Debug, Clone)]
pub struct ContextOptions {
    /// The threading mode.
    pub mode: Mode,
    /// Decoding options and whether timed bundles are held until due.
    pub receive: ReceiveOptions,
    /// Encoder options for the messages the context encodes (`send`, `send_to`, `reply`):
    /// allowed types, address checks, address compression, ASCII-only text. Packets
    /// sent as bytes go out as they are.
    pub encode: EncodeOptions,
    /// Coerce arguments to a method's type spec between `i h f d` and between `s S`.
    pub coerce: bool,
    /// Largest stream frame accepted (bytes); a peer announcing more is disconnected.
    pub max_frame: usize,
    /// Most peers connected to one stream listener at once: a newcomer takes the place of
    /// the peer silent longest if it has been silent for `stall_timeout`, else it is
    /// refused.
    pub max_stream_peers: usize,
    /// Received packets waiting for `poll` in io-thread mode, or for a worker; more are
    /// dropped and counted.
    /// At most [`MAX_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
    /// A stream peer that leaves half a frame unfinished this long, or takes none of the
    /// output waiting for it this long, is disconnected (`Duration::MAX`: never; zero: as
    /// soon as it is seen so, which a frame split across reads can be).
    pub stall_timeout: Duration,
    /// Stream clients' reconnect policy (a URL's parameters override it per channel).
    pub reconnect: Reconnect,
    /// Packets sent and received written to the log at debug level.
    pub trace: Trace,
    /// Threaded mode: how many worker threads run the callbacks (osc4py3's `as_allthreads`
    /// with its pool of execution threads). 0: callbacks run on the I/O thread. With
    /// workers, received packets wait in the receive queue (`queue_capacity`) for the
    /// first free worker, and packets handled at once by different workers may run their
    /// callbacks in any order: callbacks must be safe to run concurrently. Each worker
    /// holds its own timed bundles, up to `receive.max_held_bytes`.
    pub workers: usize,
    /// Called first thing on each thread the context starts (its I/O thread `rosco-io`,
    /// its workers `rosco-worker-N`) with the thread's name, and `thread_stop` last thing
    /// before the thread ends (liblo's `lo_server_thread_set_callbacks`): to raise a
    /// thread's priority, name it for a profiler, or attach it to a runtime. Poll mode
    /// starts no thread. A panic in either is caught and logged.
    pub thread_start: Option<ThreadHook>,
    /// See `thread_start`.
    pub thread_stop: Option<ThreadHook>,
}

/// A callback for the threads a context starts, given the thread's name.
#[derive(Clone)]
pub struct ThreadHook(Arc<dyn Fn(&str) + Send + Sync>);

impl ThreadHook {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> ThreadHook {
        ThreadHook(Arc::new(f))
    }

    pub(crate) fn call(&self, name: &str) {
        (self.0)(name)
    }
}

impl std::fmt::Debug for ThreadHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadHook")
    }
}

/// Most worker threads a context can have.
pub const MAX_WORKERS: usize = 256;

/// How packets are traced in the log (osc4py3's `dumppacket` and `dumpraw` options; the log
/// callback stands for its `dumpfile`). Off by default; with both off nothing is formatted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trace {
    /// As text: a message as `rosco dump` prints it, a bundle with its timetag.
    pub text: bool,
    /// As a hex dump of its bytes.
    pub hex: bool,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            mode: Mode::Poll,
            receive: ReceiveOptions::default(),
            encode: EncodeOptions::DEFAULT,
            coerce: true,
            max_frame: DEFAULT_MAX_FRAME,
            max_stream_peers: 500,
            queue_capacity: 4096,
            stall_timeout: Duration::from_secs(10),
            reconnect: Reconnect::default(),
            trace: Trace::default(),
            workers: 0,
            thread_start: None,
            thread_stop: None,
        }
    }
}
