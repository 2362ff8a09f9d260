//! The runtime: a [`Context`] owns channels opened by URL, the method table, the timed
//! bundle queue and, in the threaded modes, an I/O thread. Sending is safe from any thread
//! through [`Sender`].
//!
//! Three modes (osc4py3's scheduling models): [`Mode::Poll`] does everything inside
//! [`Context::poll`]; [`Mode::IoThread`] reads and validates on a background thread and
//! runs callbacks in `poll`, with a wake-up descriptor; [`Mode::Threaded`] runs callbacks
//! on the I/O thread, or on a pool of worker threads (`ContextOptions::workers`).

mod channel;
mod context;
mod engine;
mod event;
mod o2;
mod options;
pub(crate) mod poller;
mod shared;
mod source_names;
mod subscription;

pub use channel::{HookVerdict, PacketHook};
pub use context::{Context, Sender, LOCAL};
pub use event::{ChannelStats, Event, LogLevel};
pub use o2::{fixed_to_seconds, o2lite_url, seconds_to_fixed};
pub use options::{
    ContextOptions, Mode, Reconnect, ThreadHook, Trace, MAX_QUEUE_CAPACITY, MAX_WORKERS,
    MIN_RECONNECT_WAIT,
};
pub use shared::{AcceptFilter, EventCallback, LogCallback};
pub use subscription::{Received, Subscription};
