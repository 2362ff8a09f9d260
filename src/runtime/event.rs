//! Channel life and trouble, reported through one event callback and counted per channel;
//! and the log callback.

use crate::handle::ChannelId;
use crate::osc::DecodeError;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Something that happened to a channel. Delivered to the context's event callback on the
/// thread doing the I/O: the caller of `poll` in poll mode, the I/O thread otherwise.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A listening channel is bound (with its real port).
    Bound {
        /// The channel.
        channel: ChannelId,
        /// The local address.
        local: SocketAddr,
    },
    /// A stream connection is up (a client connected, or a listener accepted a peer).
    Connected {
        /// The channel.
        channel: ChannelId,
        /// The peer (`None` for Unix sockets).
        peer: Option<SocketAddr>,
    },
    /// A stream connection ended.
    Disconnected {
        /// The channel.
        channel: ChannelId,
        /// The peer (`None` for Unix sockets).
        peer: Option<SocketAddr>,
        /// Why.
        reason: String,
    },
    /// A client channel will try to connect again after `delay`.
    Reconnecting {
        /// The channel.
        channel: ChannelId,
        /// The attempt about to be made (1 for the first retry).
        attempt: u32,
        /// The wait before it.
        delay: Duration,
        /// Why the last connection or attempt ended ("Connection refused (os error
        /// 111)", "closed by peer", ...).
        reason: String,
    },
    /// A client channel stopped retrying (its maximum number of attempts was reached, or
    /// it does not reconnect).
    GaveUp {
        /// The channel.
        channel: ChannelId,
        /// Why the last connection or attempt ended.
        reason: String,
    },
    /// A packet or frame was rejected; nothing in it was dispatched.
    Malformed {
        /// The channel.
        channel: ChannelId,
        /// The sender, when known.
        source: Option<SocketAddr>,
        /// What was wrong.
        reason: String,
        /// The decoder's error, when it was an OSC decoding problem.
        error: Option<DecodeError>,
    },
    /// Packets were dropped (see [`ChannelStats::dropped`] for the causes).
    Dropped {
        /// The channel.
        channel: ChannelId,
        /// How many so far on this channel.
        total: u64,
    },
    /// A bundle arrived after its time and was delivered at once.
    Late {
        /// The channel.
        channel: ChannelId,
    },
    /// An O2lite client channel's session news (connected, synced, lost, replies).
    O2Client {
        /// The channel.
        channel: ChannelId,
        /// What happened.
        event: crate::o2lite::client::ClientEvent,
    },
    /// An O2lite host channel's news (clients joining and leaving, services).
    O2Host {
        /// The channel.
        channel: ChannelId,
        /// What happened.
        event: crate::o2lite::host::HostEvent,
    },
}

impl Event {
    /// The channel it happened to.
    pub fn channel(&self) -> ChannelId {
        match self {
            Event::Bound { channel, .. }
            | Event::Connected { channel, .. }
            | Event::Disconnected { channel, .. }
            | Event::Reconnecting { channel, .. }
            | Event::GaveUp { channel, .. }
            | Event::Malformed { channel, .. }
            | Event::Dropped { channel, .. }
            | Event::Late { channel }
            | Event::O2Client { channel, .. }
            | Event::O2Host { channel, .. } => *channel,
        }
    }
}

/// Per-channel counters, readable at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Packets received.
    pub packets_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets or frames rejected as malformed.
    pub malformed: u64,
    /// Packets dropped: the receive queue full, timed bundles over the room for held
    /// ones, a stream client's backlog when it gave up, sends a listener's peer missed, an
    /// O2lite host's refused frames.
    pub dropped: u64,
    /// Bundles that arrived after their time.
    pub late: u64,
}

/// The live counters behind [`ChannelStats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) packets_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) packets_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) late: AtomicU64,
    /// Drops counted on a sending thread, whose event the I/O side has yet to emit.
    pub(crate) drops_unreported: AtomicBool,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) -> u64 {
        counter.fetch_add(n, Ordering::Relaxed) + n
    }

    /// Adds `n` to a counter only the engine writes (`packets_in`, `bytes_in`): a plain
    /// load and store, as one thread at a time owns the engine. A locked add per datagram
    /// was a measurable share of the receive path.
    pub(crate) fn count_received(&self, bytes: usize) {
        let bump =
            |c: &AtomicU64, n: u64| c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        bump(&self.packets_in, 1);
        bump(&self.bytes_in, bytes as u64);
    }

    /// Counts a packet sent, from any thread.
    pub(crate) fn count_sent(&self, bytes: usize) {
        Stats::add(&self.packets_out, 1);
        Stats::add(&self.bytes_out, bytes as u64);
    }

    /// Counts a `_local` packet received, from any sending thread (so not as
    /// `count_received` does).
    pub(crate) fn count_local_in(&self, bytes: usize) {
        Stats::add(&self.packets_in, 1);
        Stats::add(&self.bytes_in, bytes as u64);
    }

    pub(crate) fn snapshot(&self) -> ChannelStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ChannelStats {
            packets_in: get(&self.packets_in),
            bytes_in: get(&self.bytes_in),
            packets_out: get(&self.packets_out),
            bytes_out: get(&self.bytes_out),
            malformed: get(&self.malformed),
            dropped: get(&self.dropped),
            late: get(&self.late),
        }
    }
}

/// How serious a log message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Something failed.
    Error = 1,
    /// Something is wrong but work goes on.
    Warn = 2,
    /// Channel life: opened, connected, closed.
    Info = 3,
    /// Details for debugging.
    Debug = 4,
}
