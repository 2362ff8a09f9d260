//! Names for the sources of received packets (osc4py3's peer identification): see
//! `Sender::source_name`.

use super::handles::{context, rosco_ctx};
use super::msg::{rosco_msg, view};
use super::status::{
    c_str, guard, rosco_status, write_text, Failure, ROSCO_ERR_HANDLE, ROSCO_ERR_RANGE,
};
use std::ffi::c_char;
use std::net::IpAddr;

/// Copies the name of the message's source into `buf` of `len` bytes, as
/// `rosco_channel_url` copies a URL: the name given with `rosco_source_name_set` for its
/// address and port, else for its host, else the host name the URL of an open channel of
/// `ctx` used for that address (the lookup made when the channel opened; nothing is looked
/// up here). `ctx` is the message's context (`ROSCO_ERR_HANDLE` for another).
/// `ROSCO_ERR_RANGE` when the source has no name (or the message did not come over IP),
/// with `needed` set to 0.
///
/// # Safety
/// `m` is NULL or the running callback's message; `buf` is writable for `len` bytes (or
/// NULL when `len` is 0); `needed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_source_name(
    ctx: rosco_ctx,
    m: *const rosco_msg,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> rosco_status {
    guard(|| {
        let c = context(ctx)?;
        // SAFETY: the caller's promise.
        let m = unsafe { view(m)? };
        if m.key != c.key() {
            return Err(Failure::new(
                ROSCO_ERR_HANDLE,
                "the message belongs to another context",
            ));
        }
        let Some(name) = m.info.source.and_then(|s| c.ctx.source_name(s)) else {
            if !needed.is_null() {
                // SAFETY: non-null and writable by the caller's promise.
                unsafe { needed.write(0) };
            }
            return Err(Failure::new(ROSCO_ERR_RANGE, "the source has no name"));
        };
        // SAFETY: the caller's promise, passed on.
        unsafe { write_text(&name, buf, len, needed, "name") }
    })
}

/// Names the packets from the IP address `ip` (text, IPv4 or IPv6 without brackets), on
/// `port` alone or on any port (`port` 0), for `rosco_msg_source_name` (osc4py3's
/// `read_forceident`); a NULL `name` forgets the name given.
///
/// Thread-safe.
///
/// # Safety
/// `ip` is a NUL-terminated string; `name` is NULL or one.
#[no_mangle]
pub unsafe extern "C" fn rosco_source_name_set(
    ctx: rosco_ctx,
    ip: *const c_char,
    port: u16,
    name: *const c_char,
) -> rosco_status {
    guard(|| {
        let c = context(ctx)?;
        // SAFETY: the caller's promise.
        let text = unsafe { c_str(ip, "ip")? };
        let ip: IpAddr = text
            .parse()
            .map_err(|_| Failure::arg(format!("'{text}' is not an IP address")))?;
        let name = match name.is_null() {
            true => None,
            // SAFETY: the caller's promise.
            false => Some(unsafe { c_str(name, "name")? }),
        };
        c.ctx.set_source_name(ip, (port != 0).then_some(port), name);
        Ok(())
    })
}
