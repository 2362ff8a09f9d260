//! Channels: open by URL, close, read their port, URL and counters, wait for output, and
//! send on them.

use super::builder::rosco_builder;
use super::context::with_ctx_channel;
use super::handles::{context, rosco_channel, rosco_ctx};
use super::msg::{rosco_msg, view};
use super::status::{byte_slice, c_str, guard, rosco_status, write_out, write_text, Failure};
use crate::handle::ChannelId;
use crate::runtime::Sender;
use crate::Error;
use std::ffi::c_char;
use std::time::Duration;

/// Opens a channel from a liblo-compatible URL under a unique `name` and writes its handle
/// to `out`. `osc.udp://:PORT` listens (port 0: any), `osc.udp://HOST:PORT` sends,
/// `osc.tcp://` likewise over TCP, `osc.unix:///path[?listen][&stream]`; options are query
/// parameters (`?bind=127.0.0.1`, `?framing=slip`, `?iface=eth0&ttl=2`, ...). Listening
/// sockets are bound when this returns.
///
/// Thread-safe.
///
/// # Safety
/// `name` and `url` are NUL-terminated strings; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_channel_open(
    ctx: rosco_ctx,
    name: *const c_char,
    url: *const c_char,
    out: *mut rosco_channel,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes NUL-terminated strings (or NULL, rejected).
        let (name, url) = unsafe { (c_str(name, "name")?, c_str(url, "url")?) };
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let entry = context(ctx)?;
        let id = entry.ctx.open(name, url).map_err(Failure::from)?;
        // SAFETY: checked non-null; the caller passes a writable handle.
        unsafe { write_out(out, entry.channel_handle(id), "out") }
    })
}

/// Closes a channel: its sockets close, its peers are disconnected, its handle goes stale.
/// Its packet hooks are removed: once this returns they are not running on another thread
/// (as for `rosco_channel_set_hooks`). Reading it stops at once: what its sockets still
/// hold, or a read has not handled yet, is dropped. What it handed on before still comes,
/// with its stale handle: the rest of a bundle being dispatched, bundles held for their
/// time, messages queued for `rosco_poll` or the workers (io-thread mode, threaded mode
/// with workers). An O2lite host's held messages go with it.
///
/// Thread-safe; may be called from a callback.
#[no_mangle]
pub extern "C" fn rosco_channel_close(ctx: rosco_ctx, ch: rosco_channel) -> rosco_status {
    guard(|| with_ctx_channel(ctx, ch, |c, id| c.ctx.close(id).map_err(Failure::from)))
}

/// Writes the local port a channel's socket is bound to (a listener's real port when it
/// was opened with port 0; a sender's ephemeral port).
///
/// Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_channel_port(
    ctx: rosco_ctx,
    ch: rosco_channel,
    out: *mut u16,
) -> rosco_status {
    guard(|| {
        let port = with_ctx_channel(ctx, ch, |c, id| c.ctx.port(id).map_err(Failure::from))?;
        // SAFETY: the caller passes NULL or a writable u16.
        unsafe { write_out(out, port, "out") }
    })
}

/// Looks a channel up by name (`"_local"` always exists). `ROSCO_ERR_ARG` when no channel
/// has the name, `ROSCO_ERR_CLOSED` when the context is being freed.
///
/// Thread-safe.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_channel_find(
    ctx: rosco_ctx,
    name: *const c_char,
    out: *mut rosco_channel,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes a NUL-terminated string (or NULL, rejected).
        let name = unsafe { c_str(name, "name")? };
        let entry = context(ctx)?;
        let id = entry.ctx.named(name)?;
        // SAFETY: the caller passes NULL or a writable handle.
        unsafe { write_out(out, entry.channel_handle(id), "out") }
    })
}

/// Copies the channel's URL (liblo's form, with the real port) into `buf` of `len` bytes,
/// NUL-terminated, and writes the length it needs (without the NUL) to `needed` when not
/// NULL. A too-small buffer gets a truncated, terminated copy and `ROSCO_ERR_RANGE`.
///
/// Thread-safe.
///
/// # Safety
/// `buf` is writable for `len` bytes (or NULL when `len` is 0); `needed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_channel_url(
    ctx: rosco_ctx,
    ch: rosco_channel,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> rosco_status {
    // SAFETY: the caller's promise, passed on.
    unsafe { channel_text(ctx, ch, buf, len, needed, "URL", Sender::url) }
}

/// Copies the name the channel was opened with into `buf` of `len` bytes, as
/// `rosco_channel_url` does (osc4py3 tells handlers the reader's name; here
/// `rosco_msg_channel` leads to it).
///
/// Thread-safe.
///
/// # Safety
/// `buf` is writable for `len` bytes (or NULL when `len` is 0); `needed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_channel_name(
    ctx: rosco_ctx,
    ch: rosco_channel,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> rosco_status {
    // SAFETY: the caller's promise, passed on.
    unsafe { channel_text(ctx, ch, buf, len, needed, "name", Sender::channel_name) }
}

/// A channel's text (its URL, its name) copied out as `write_text` does.
///
/// # Safety
/// As for `write_text`.
unsafe fn channel_text(
    ctx: rosco_ctx,
    ch: rosco_channel,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
    what: &str,
    text: fn(&Sender, ChannelId) -> Result<String, Error>,
) -> rosco_status {
    guard(|| {
        let text = with_ctx_channel(ctx, ch, |c, id| text(&c.ctx, id).map_err(Failure::from))?;
        // SAFETY: the caller's promise, passed on.
        unsafe { write_text(&text, buf, len, needed, what) }
    })
}

/// A channel's counters.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(non_camel_case_types)]
pub struct rosco_channel_stats {
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
    /// Packets dropped: the receive queue full, timed bundles over `max_held_bytes`, a
    /// stream client's backlog when it gave up, sends a listener's peer missed, an O2lite
    /// host's refused frames.
    pub dropped: u64,
    /// Bundles that arrived after their time.
    pub late: u64,
}

/// Writes a channel's counters to `out`.
///
/// Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_channel_stats_get(
    ctx: rosco_ctx,
    ch: rosco_channel,
    out: *mut rosco_channel_stats,
) -> rosco_status {
    guard(|| {
        let s = with_ctx_channel(ctx, ch, |c, id| c.ctx.stats(id).map_err(Failure::from))?;
        let stats = rosco_channel_stats {
            packets_in: s.packets_in,
            bytes_in: s.bytes_in,
            packets_out: s.packets_out,
            bytes_out: s.bytes_out,
            malformed: s.malformed,
            dropped: s.dropped,
            late: s.late,
        };
        // SAFETY: the caller passes NULL or a writable struct.
        unsafe { write_out(out, stats, "out") }
    })
}

/// Waits up to `timeout_ms` until everything sent on a stream channel is written (a client
/// is connected and its output empty). In poll mode this runs the I/O (and callbacks).
///
/// Not from a callback running on the thread doing the I/O (any callback in poll and
/// threaded modes, an event or log callback in io-thread mode), nor in poll mode while
/// another thread is in `rosco_poll` (`ROSCO_ERR_BUSY`: only the thread doing the I/O can
/// finish the writes).
/// `ROSCO_ERR_CLOSED` when the context is freed meanwhile.
#[no_mangle]
pub extern "C" fn rosco_channel_flush(
    ctx: rosco_ctx,
    ch: rosco_channel,
    timeout_ms: u32,
) -> rosco_status {
    guard(|| {
        with_ctx_channel(ctx, ch, |c, id| {
            c.ctx
                .flush(id, Duration::from_millis(timeout_ms as u64))
                .map_err(Failure::from)
        })
    })
}

/// Sends the builder's packet (a message, or a closed bundle) on a channel: to its
/// destination, or for a stream listener to every connected peer. `"_local"` dispatches
/// in-process. The packet is encoded with the context's codec options (types, address
/// check, ASCII, compression): a single message here, a bundle (or a message whose bytes
/// were read with `rosco_builder_bytes`), written with the defaults, written again when
/// the context's options differ from them. A UDP send
/// allocates nothing once the thread's buffer has grown and takes no contended lock: it may
/// be called from an audio thread.
///
/// Thread-safe (the builder is only read).
///
/// # Safety
/// `b` is NULL or a builder from `rosco_builder_new`.
#[no_mangle]
pub unsafe extern "C" fn rosco_send(
    ctx: rosco_ctx,
    ch: rosco_channel,
    b: *const rosco_builder,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes NULL or a live builder.
        let b = unsafe { b.as_ref() }.ok_or_else(|| Failure::null("builder"))?;
        with_ctx_channel(ctx, ch, |c, id| {
            b.with_packet(&c.ctx.options().encode, |p| {
                c.ctx.send_packet(id, p).map_err(Failure::from)
            })
        })
    })
}

/// Sends `len` raw bytes as one packet (datagram or stream frame). They are not checked,
/// except that an empty packet (`len` 0), never valid OSC, is refused (`ROSCO_ERR_ARG`).
///
/// Thread-safe.
///
/// # Safety
/// `data` is readable for `len` bytes (or NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn rosco_send_raw(
    ctx: rosco_ctx,
    ch: rosco_channel,
    data: *const u8,
    len: usize,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let bytes = unsafe { byte_slice(data, len, "data")? };
        with_ctx_channel(ctx, ch, |c, id| {
            c.ctx.send_packet(id, bytes).map_err(Failure::from)
        })
    })
}

/// Sends the builder's packet back to where `msg` came from, on the channel it arrived on
/// (its source address for UDP, its connection for TCP). Only during `msg`'s callback.
///
/// # Safety
/// `msg` is the message of the running callback; `b` is NULL or a live builder.
#[no_mangle]
pub unsafe extern "C" fn rosco_reply(
    ctx: rosco_ctx,
    msg: *const rosco_msg,
    b: *const rosco_builder,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes the running callback's message (or NULL, rejected).
        let m = unsafe { view(msg)? };
        // SAFETY: the caller passes NULL or a live builder.
        let b = unsafe { b.as_ref() }.ok_or_else(|| Failure::null("builder"))?;
        let entry = context(ctx)?;
        if m.key != entry.key() {
            return Err(Failure::new(
                super::status::ROSCO_ERR_HANDLE,
                "the message belongs to another context",
            ));
        }
        b.with_packet(&entry.ctx.options().encode, |p| {
            entry.ctx.reply_packet(m.info, p).map_err(Failure::from)
        })
    })
}
