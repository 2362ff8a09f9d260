//! rosco: Open Sound Control (OSC 1.0 and 1.1) and O2lite messaging for music, art and
//! interactive media, with a stable C ABI (OOCSI to come: its URLs parse, its channels do
//! not open yet).
//!
//! The core is sans-IO, like `quinn-proto`: [`osc`] (wire format and stream framing),
//! [`pattern`] (address patterns), [`dispatch`] (the method table), [`schedule`] (timed
//! bundles), [`receive`] (packets to calls, now or later) and [`time`] take bytes and `now` and return values, events and deadlines.
//! They touch no socket, clock or thread, so they are tested exhaustively in memory.
//! [`transport`] and [`runtime`] add sockets, threads and clocks: a [`Context`] opens
//! channels by URL and runs in one of three threading modes.

mod callback_slot;
pub mod dispatch;
mod error;
pub mod ffi;
pub mod handle;
pub mod o2lite;
pub mod osc;
pub mod pattern;
mod random;
pub mod receive;
pub mod runtime;
pub mod schedule;
mod thread_buf;
pub mod time;
pub mod transport;

pub use error::Error;
pub use handle::{ChannelId, PeerId};
pub use runtime::{Context, ContextOptions, Mode, Sender};
pub use time::TimeTag;

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
