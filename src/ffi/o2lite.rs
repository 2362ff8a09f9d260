//! O2lite: connect to an O2 host, offer services, send with a timestamp and a transport,
//! read global time.

use super::builder::rosco_builder;
use super::context::with_ctx_channel;
use super::handles::{context, rosco_channel, rosco_ctx, rosco_method, CtxEntry};
use super::status::{c_str, guard, rosco_status, write_out, Failure};
use crate::dispatch::MethodId;
use crate::Error;
use std::ffi::c_char;

/// Connects to the O2 host of `ensemble` and writes the new channel to `out`: at
/// `host_port` (`"host:port"`, or `"host:port:udp_port"` to also use the host's UDP port),
/// or, with `host_port` NULL, one found by DNS-SD discovery. Equivalent to opening the
/// channel `o2lite://ensemble@host:port` named `o2lite:ENSEMBLE`. The session runs in
/// the background (connect, services, clock sync, reconnect); events report it.
/// `ROSCO_ERR_ARG` when `ensemble` is empty or holds one of `/ ? # @ :`, or `host_port`
/// one of `/ ? # @`.
///
/// Thread-safe.
///
/// # Safety
/// `ensemble` is a NUL-terminated string; `host_port` is NULL or one; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_o2lite_connect(
    ctx: rosco_ctx,
    ensemble: *const c_char,
    host_port: *const c_char,
    out: *mut rosco_channel,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes NUL-terminated strings (NULL ensemble rejected).
        let ensemble = unsafe { c_str(ensemble, "ensemble")? };
        let host = match host_port.is_null() {
            true => None,
            // SAFETY: non-null and NUL-terminated by the caller's promise.
            false => Some(unsafe { c_str(host_port, "host_port")? }),
        };
        let url = crate::runtime::o2lite_url(ensemble, host)
            .map_err(|e| Failure::from(crate::Error::Url(e)))?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let entry = context(ctx)?;
        let id = entry
            .ctx
            .open(&format!("o2lite:{ensemble}"), &url)
            .map_err(Failure::from)?;
        // SAFETY: checked non-null; the caller passes a writable handle.
        unsafe { write_out(out, entry.channel_handle(id), "out") }
    })
}

/// Offers `service` on an O2lite channel: on a client it is announced to the host now and
/// on every reconnection, and messages to it reach this context's methods; on a host
/// (`o2lite-host://`) it is one of the host's own services. `ROSCO_ERR_ARG` for a name
/// that is not 1 to 63 bytes of printable ASCII without `/` or `!`, a reserved one (`_o2`,
/// `_cs`, `@...`), or (on a host) one a client offers; `ROSCO_ERR_UNSUPPORTED` for a
/// channel that is not O2lite.
///
/// Thread-safe.
///
/// # Safety
/// `service` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn rosco_o2lite_service_add(
    ctx: rosco_ctx,
    ch: rosco_channel,
    service: *const c_char,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes a NUL-terminated string (or NULL, rejected).
        let service = unsafe { c_str(service, "service")? };
        with_ctx_channel(ctx, ch, |e, id| {
            e.ctx.o2_service_add(id, service).map_err(Failure::from)
        })
    })
}

/// Withdraws a service offered with `rosco_o2lite_service_add`; `ROSCO_ERR_ARG` for one
/// not offered, `ROSCO_ERR_UNSUPPORTED` for a channel that is not O2lite.
///
/// Thread-safe.
///
/// # Safety
/// `service` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn rosco_o2lite_service_remove(
    ctx: rosco_ctx,
    ch: rosco_channel,
    service: *const c_char,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes a NUL-terminated string (or NULL, rejected).
        let service = unsafe { c_str(service, "service")? };
        with_ctx_channel(ctx, ch, |e, id| {
            e.ctx.o2_service_remove(id, service).map_err(Failure::from)
        })
    })
}

/// Sends the builder's message on an O2lite channel with an O2 `timestamp` (global
/// seconds; 0 for "now") by TCP (`reliable` non-zero) or UDP. `ROSCO_ERR_CLOSED` while the
/// client is not connected; `ROSCO_ERR_UNSUPPORTED` for a non-zero timestamp while its clock
/// is not synchronised (`rosco_o2lite_time` is -1); `ROSCO_ERR_ARG` for a negative or
/// non-finite timestamp or a builder holding a bundle.
///
/// Thread-safe.
///
/// # Safety
/// `b` is NULL or a live builder.
#[no_mangle]
pub unsafe extern "C" fn rosco_o2lite_send(
    ctx: rosco_ctx,
    ch: rosco_channel,
    b: *const rosco_builder,
    timestamp: f64,
    reliable: i32,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes NULL or a live builder.
        let b = unsafe { b.as_ref() }.ok_or_else(|| Failure::null("builder"))?;
        if !timestamp.is_finite() || timestamp < 0.0 {
            return Err(Failure::arg(
                "timestamp must be a finite number of seconds, 0 or more",
            ));
        }
        with_ctx_channel(ctx, ch, |e, id| {
            // Plain OSC first; it is re-encoded as O2 below.
            b.with_packet(&crate::osc::EncodeOptions::DEFAULT, |p| {
                let crate::osc::Packet::Message(m) =
                    crate::osc::decode(p).map_err(|e| Failure::arg(e.to_string()))?
                else {
                    return Err(Failure::arg(
                        "O2 messages carry their own timestamps: send a message, not a bundle",
                    ));
                };
                let args: Vec<crate::osc::Arg<'_>> = m.args().collect();
                let address = m
                    .address_str()
                    .ok_or_else(|| Failure::arg("the address is not UTF-8"))?;
                e.ctx
                    .o2_send(id, timestamp, reliable != 0, address, &args)
                    .map_err(Failure::from)
            })
        })
    })
}

/// Writes the ensemble's global time seen from an O2lite channel (seconds; -1 on a client
/// that is not synchronised yet); `ROSCO_ERR_UNSUPPORTED` for a channel that is not O2lite.
///
/// Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_o2lite_time(
    ctx: rosco_ctx,
    ch: rosco_channel,
    out: *mut f64,
) -> rosco_status {
    guard(|| {
        let t = with_ctx_channel(ctx, ch, |e, id| e.ctx.o2_time(id).map_err(Failure::from))?;
        // SAFETY: the caller passes NULL or a writable double.
        unsafe { write_out(out, t, "out") }
    })
}

/// Writes an O2lite channel's UDP port: a host's is what its clients need besides the TCP
/// port (`rosco_channel_port`); a client's is where its host sends datagrams.
///
/// Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_o2lite_udp_port(
    ctx: rosco_ctx,
    ch: rosco_channel,
    out: *mut u16,
) -> rosco_status {
    guard(|| {
        let port = with_ctx_channel(ctx, ch, |e, id| {
            e.ctx.o2_udp_port(id).map_err(Failure::from)
        })?;
        // SAFETY: the caller passes NULL or a writable u16.
        unsafe { write_out(out, port, "out") }
    })
}

/// Writes a client channel's bridge id, or -1 while it is not connected to a host.
///
/// Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_o2lite_bridge_id(
    ctx: rosco_ctx,
    ch: rosco_channel,
    out: *mut i32,
) -> rosco_status {
    guard(|| {
        let id = with_ctx_channel(ctx, ch, |e, id| {
            e.ctx.o2_bridge_id(id).map_err(Failure::from)
        })?;
        // SAFETY: the caller passes NULL or a writable int.
        unsafe { write_out(out, id.unwrap_or(-1), "out") }
    })
}

/// Asks the host for the status of `service`, or with `service` NULL for its whole service
/// list; the answer arrives as `ROSCO_EVENT_O2` events. `ROSCO_ERR_CLOSED` while the client
/// is not connected, `ROSCO_ERR_FULL` while output to the host waits at its limit.
///
/// Thread-safe.
///
/// # Safety
/// `service` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn rosco_o2lite_query(
    ctx: rosco_ctx,
    ch: rosco_channel,
    service: *const c_char,
) -> rosco_status {
    guard(|| {
        let service = match service.is_null() {
            true => None,
            // SAFETY: non-null and NUL-terminated by the caller's promise.
            false => Some(unsafe { c_str(service, "service")? }),
        };
        with_ctx_channel(ctx, ch, |e, id| {
            e.ctx.o2_query(id, service).map_err(Failure::from)
        })
    })
}

/// Delegates O2 service `service` of O2lite channel `o2` to OSC channel `osc` (O2's
/// `o2_osc_delegate`, as `o2host` does): every message for the service is sent on `osc`,
/// with its address as it is (`/service/...`) or, with `strip` non-zero, without the
/// service part; a non-zero O2 timestamp becomes a bundle timetag, as do time arguments,
/// and O2 booleans become `T`/`F`. On a host the service is offered as one of its own. Writes the bridging method to `out`: removing it ends the
/// bridge (the service stays offered until `rosco_o2lite_service_remove`).
/// `ROSCO_ERR_HANDLE` for a stale channel, `ROSCO_ERR_UNSUPPORTED` when `o2` is not an
/// O2lite channel or `osc` is one, `ROSCO_ERR_ARG` for a bad service name.
///
/// Thread-safe.
///
/// # Safety
/// `service` is a NUL-terminated string; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_o2lite_bridge_to_osc(
    ctx: rosco_ctx,
    o2: rosco_channel,
    service: *const c_char,
    osc: rosco_channel,
    strip: i32,
    out: *mut rosco_method,
) -> rosco_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        bridge(ctx, service, out, |e, service| {
            let (o2, osc) = (e.channel(o2), e.channel(osc));
            e.ctx.o2_bridge_to_osc(o2, service, osc, strip != 0)
        })
    }
}

/// Feeds what OSC channel `osc` receives to O2 service `service` through O2lite channel
/// `o2` (O2's OSC server port, `o2_osc_port_new`): each message is sent to `/service` +
/// its address when `prefix` is non-zero, else to its address as it is, by TCP when
/// `reliable` is non-zero; a bundle's timetag becomes the O2 timestamp, and timetag
/// arguments global seconds. Writes the bridging
/// method to `out`: removing it ends the bridge. Errors as for
/// `rosco_o2lite_bridge_to_osc`.
///
/// Thread-safe.
///
/// # Safety
/// `service` is a NUL-terminated string; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_osc_bridge_to_o2lite(
    ctx: rosco_ctx,
    osc: rosco_channel,
    o2: rosco_channel,
    service: *const c_char,
    prefix: i32,
    reliable: i32,
    out: *mut rosco_method,
) -> rosco_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        bridge(ctx, service, out, |e, service| {
            let (osc, o2) = (e.channel(osc), e.channel(o2));
            e.ctx
                .osc_bridge_to_o2(osc, o2, service, prefix != 0, reliable != 0)
        })
    }
}

/// Makes a bridging method for `service` with `make` and writes its handle to `out`.
///
/// # Safety
/// `service` is a NUL-terminated string; `out` is writable.
unsafe fn bridge(
    ctx: rosco_ctx,
    service: *const c_char,
    out: *mut rosco_method,
    make: impl FnOnce(&CtxEntry, &str) -> Result<MethodId, Error>,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes a NUL-terminated string (or NULL, rejected).
        let service = unsafe { c_str(service, "service")? };
        // Checked first: the bridge must not be made when its handle cannot be returned.
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let e = context(ctx)?;
        let method = super::method::kept(&e, make(&e, service).map_err(Failure::from)?)?;
        // SAFETY: checked non-null; the caller passes a writable handle.
        unsafe { write_out(out, e.method_handle(method), "out") }
    })
}
