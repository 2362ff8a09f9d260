//! Received messages, read through accessors. A `rosco_msg` is borrowed: valid only
//! during the callback it is passed to ("copy what you keep"). Strings point into the
//! packet and are NUL-terminated (OSC strings are, on the wire), so nothing is copied.
//!
//! Argument `i` is the `i`-th character of the type tags, so `[` and `]` occupy indexes.

use super::handles::rosco_channel;
use super::status::{guard, rosco_status, write_out, Failure, ROSCO_ERR_RANGE, ROSCO_ERR_TYPE};
use crate::dispatch::MsgInfo;
use crate::osc::{Arg, Message};
use std::ffi::c_char;

/// A received message (opaque, borrowed, valid during its callback only).
pub struct rosco_msg {
    _private: [u8; 0],
}

/// What a callback's `rosco_msg` points to.
pub(crate) struct MsgView<'a> {
    pub(crate) msg: &'a Message<'a>,
    pub(crate) info: &'a MsgInfo,
    /// The context's handle key, to hand out channel handles.
    pub(crate) key: u64,
}

impl MsgView<'_> {
    pub(crate) fn as_ptr(&self) -> *const rosco_msg {
        self as *const MsgView<'_> as *const rosco_msg
    }
}

/// # Safety
/// `m` is NULL or the message of a callback that is still running.
pub(crate) unsafe fn view<'a>(m: *const rosco_msg) -> Result<&'a MsgView<'a>, Failure> {
    // SAFETY: by the caller's promise it points to a live MsgView.
    unsafe { (m as *const MsgView<'a>).as_ref() }.ok_or_else(|| Failure::null("msg"))
}

/// The address (or pattern) the message was sent to; NULL only for a NULL `m`.
///
/// # Safety
/// `m` is NULL or the running callback's message.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_address(m: *const rosco_msg) -> *const c_char {
    super::status::guard_value(std::ptr::null(), || {
        // SAFETY: the caller's promise. The address is followed by its NUL in the packet.
        let m = unsafe { view(m) }?;
        Ok(m.msg.address().as_ptr() as *const c_char)
    })
}

/// The type tags without the leading `,` (`""` when the message had none); NULL only for
/// a NULL `m`.
///
/// # Safety
/// `m` is NULL or the running callback's message.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_typetags(m: *const rosco_msg) -> *const c_char {
    super::status::guard_value(std::ptr::null(), || {
        // SAFETY: the caller's promise.
        let m = unsafe { view(m) }?;
        Ok(match m.msg.has_typetags() {
            // Tags in a packet are followed by their NUL.
            true => m.msg.typetags().as_ptr() as *const c_char,
            false => c"".as_ptr(),
        })
    })
}

/// The number of arguments (= type tags, brackets included); 0 for a NULL `m`.
///
/// # Safety
/// `m` is NULL or the running callback's message.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_argc(m: *const rosco_msg) -> u32 {
    super::status::guard_value(0, || {
        // SAFETY: the caller's promise.
        let m = unsafe { view(m) }?;
        Ok(m.msg.len() as u32)
    })
}

/// Reads argument `index`, checks it is one of the accepted tags, and writes what `pick`
/// makes of it.
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is NULL or writable.
unsafe fn get<T>(
    m: *const rosco_msg,
    index: u32,
    out: *mut T,
    want: &str,
    pick: impl FnOnce(Arg<'_>) -> Option<T>,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let m = unsafe { view(m)? };
        let arg = m.msg.arg(index as usize).ok_or_else(|| {
            Failure::new(
                ROSCO_ERR_RANGE,
                format!("argument {index} of {} does not exist", m.msg.len()),
            )
        })?;
        let tag = arg.tag() as char;
        let value = pick(arg).ok_or_else(|| {
            Failure::new(
                ROSCO_ERR_TYPE,
                format!("argument {index} is '{tag}', not {want}"),
            )
        })?;
        // SAFETY: the caller passes NULL or a writable T.
        unsafe { write_out(out, value, "out") }
    })
}

/// Argument `index` as an `i` (int32).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_i32(
    m: *const rosco_msg,
    index: u32,
    out: *mut i32,
) -> rosco_status {
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'i'", |a| {
            if let Arg::Int(v) = a {
                Some(v)
            } else {
                None
            }
        })
    }
}

/// Argument `index` as an `f` (float32).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_f32(
    m: *const rosco_msg,
    index: u32,
    out: *mut f32,
) -> rosco_status {
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'f'", |a| {
            if let Arg::Float(v) = a {
                Some(v)
            } else {
                None
            }
        })
    }
}

/// Argument `index` as an `h` (int64).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_i64(
    m: *const rosco_msg,
    index: u32,
    out: *mut i64,
) -> rosco_status {
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'h'", |a| {
            if let Arg::Long(v) = a {
                Some(v)
            } else {
                None
            }
        })
    }
}

/// Argument `index` as a `d` (float64).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_f64(
    m: *const rosco_msg,
    index: u32,
    out: *mut f64,
) -> rosco_status {
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'d'", |a| {
            if let Arg::Double(v) = a {
                Some(v)
            } else {
                None
            }
        })
    }
}

/// Argument `index` as an `s` or `S`: a NUL-terminated string pointing into the packet
/// (the bytes as sent; not necessarily UTF-8). Valid during the callback only.
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_str(
    m: *const rosco_msg,
    index: u32,
    out: *mut *const c_char,
) -> rosco_status {
    // SAFETY: forwarded promises. Packet strings are followed by their NUL.
    unsafe {
        get(m, index, out, "'s' or 'S'", |a| {
            a.as_bytes().map(|s| s.as_ptr() as *const c_char)
        })
    }
}

/// Argument `index` as a `b` (blob): its bytes and length, pointing into the packet.
///
/// # Safety
/// `m` is NULL or the running callback's message; `data` and `len` are writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_blob(
    m: *const rosco_msg,
    index: u32,
    data: *mut *const u8,
    len: *mut usize,
) -> rosco_status {
    let mut blob: (*const u8, usize) = (std::ptr::null(), 0);
    // SAFETY: forwarded promises; `blob` is a local.
    let status = unsafe {
        get(m, index, &mut blob, "'b'", |a| {
            if let Arg::Blob(b) = a {
                Some((b.as_ptr(), b.len()))
            } else {
                None
            }
        })
    };
    if status == super::status::ROSCO_OK {
        return guard(|| {
            if len.is_null() {
                return Err(Failure::null("len"));
            }
            // SAFETY: the caller passes writable pointers (NULL rejected).
            unsafe {
                write_out(data, blob.0, "data")?;
                write_out(len, blob.1, "len")
            }
        });
    }
    status
}

/// Argument `index` as a `t` (timetag argument, NTP 32.32 bits).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_timetag(
    m: *const rosco_msg,
    index: u32,
    out: *mut u64,
) -> rosco_status {
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'t'", |a| {
            if let Arg::Time(t) = a {
                Some(t.to_bits())
            } else {
                None
            }
        })
    }
}

/// Argument `index`, a `t`, as seconds: O2 global seconds for a message that came over
/// O2lite, seconds since 1900 (era resolved) for an OSC timetag.
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_seconds(
    m: *const rosco_msg,
    index: u32,
    out: *mut f64,
) -> rosco_status {
    // SAFETY: the caller's promise.
    let o2 = unsafe { view(m) }
        .map(|v| v.info.o2.is_some())
        .unwrap_or(false);
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'t'", |a| match a {
            Arg::Time(t) if o2 => Some(crate::runtime::fixed_to_seconds(t)),
            Arg::Time(t) => Some(t.since_ntp_epoch().as_secs_f64()),
            _ => None,
        })
    }
}

/// Argument `index` as a `c` (character code).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_char(
    m: *const rosco_msg,
    index: u32,
    out: *mut u8,
) -> rosco_status {
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'c'", |a| {
            if let Arg::Char(c) = a {
                Some(c)
            } else {
                None
            }
        })
    }
}

/// Argument `index` as an `m` (MIDI, `0xPPSSDDDD`).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_midi(
    m: *const rosco_msg,
    index: u32,
    out: *mut u32,
) -> rosco_status {
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'m'", |a| {
            if let Arg::Midi(b) = a {
                Some(u32::from_be_bytes(b))
            } else {
                None
            }
        })
    }
}

/// Argument `index` as an `r` (RGBA, `0xRRGGBBAA`).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_rgba(
    m: *const rosco_msg,
    index: u32,
    out: *mut u32,
) -> rosco_status {
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'r'", |a| {
            if let Arg::Rgba(b) = a {
                Some(u32::from_be_bytes(b))
            } else {
                None
            }
        })
    }
}

/// Argument `index` as `T` or O2's `B` true (1), `F` or `B` false (0).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_get_bool(
    m: *const rosco_msg,
    index: u32,
    out: *mut i32,
) -> rosco_status {
    // SAFETY: forwarded promises.
    unsafe {
        get(m, index, out, "'T' or 'F'", |a| match a {
            Arg::True | Arg::Bool(true) => Some(1),
            Arg::False | Arg::Bool(false) => Some(0),
            _ => None,
        })
    }
}

/// Writes the sender's address as `address:port` (NUL-terminated) into `buf`;
/// `ROSCO_ERR_RANGE`, with nothing written, when the message did not come over IP or the
/// address does not fit in `len` bytes.
///
/// # Safety
/// `m` is NULL or the running callback's message; `buf` is writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_source(
    m: *const rosco_msg,
    buf: *mut c_char,
    len: usize,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let m = unsafe { view(m)? };
        let source = m
            .info
            .source
            .ok_or_else(|| Failure::new(ROSCO_ERR_RANGE, "the message did not come over IP"))?;
        let text = source.to_string();
        if buf.is_null() {
            return Err(Failure::null("buf"));
        }
        if text.len() >= len {
            return Err(Failure::new(
                ROSCO_ERR_RANGE,
                "buffer too small for the address",
            ));
        }
        // SAFETY: `buf` holds `len > text.len()` writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, text.len());
            buf.add(text.len()).write(0);
        }
        Ok(())
    })
}

/// The channel the message arrived on; `ROSCO_ERR_RANGE` for one that came from no
/// channel (as those `rosco_decode` passes on).
///
/// # Safety
/// `m` is NULL or the running callback's message; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_channel(
    m: *const rosco_msg,
    out: *mut rosco_channel,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let m = unsafe { view(m)? };
        let id = m
            .info
            .channel
            .ok_or_else(|| Failure::new(ROSCO_ERR_RANGE, "the message came from no channel"))?;
        // SAFETY: the caller passes NULL or a writable handle.
        unsafe {
            write_out(
                out,
                rosco_channel {
                    id: id.0.to_bits() ^ m.key,
                },
                "out",
            )
        }
    })
}

/// For a message that came over O2lite: its O2 timestamp (global seconds; 0 for "now") and
/// whether it came by TCP (1) or UDP (0). `ROSCO_ERR_RANGE` for any other message.
///
/// # Safety
/// `m` is NULL or the running callback's message; `timestamp` and `reliable` are writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_o2_stamp(
    m: *const rosco_msg,
    timestamp: *mut f64,
    reliable: *mut i32,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let m = unsafe { view(m)? };
        if timestamp.is_null() || reliable.is_null() {
            return Err(Failure::null(match timestamp.is_null() {
                true => "timestamp",
                false => "reliable",
            }));
        }
        let stamp = m
            .info
            .o2
            .ok_or_else(|| Failure::new(ROSCO_ERR_RANGE, "the message did not come over O2lite"))?;
        // SAFETY: both checked non-null; the caller passes writable pointers.
        unsafe {
            write_out(timestamp, stamp.timestamp, "timestamp")?;
            write_out(reliable, i32::from(stamp.reliable), "reliable")
        }
    })
}

/// The effective timetag of the bundle the message came in (NTP 32.32 bits), or 0 for a
/// message on its own.
///
/// # Safety
/// `m` is NULL or the running callback's message.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_bundle_time(m: *const rosco_msg) -> u64 {
    super::status::guard_value(0, || {
        // SAFETY: the caller's promise.
        let m = unsafe { view(m) }?;
        Ok(m.info.bundle_time.map_or(0, |t| t.to_bits()))
    })
}

/// When the packet was received (NTP 32.32 bits); 0 for a NULL `m`.
///
/// # Safety
/// `m` is NULL or the running callback's message.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_received(m: *const rosco_msg) -> u64 {
    super::status::guard_value(0, || {
        // SAFETY: the caller's promise.
        let m = unsafe { view(m) }?;
        Ok(m.info.received.to_bits())
    })
}

/// Points `data`/`len` at the message's bytes as delivered (to forward or log it): as
/// received, except when the method's type spec coerced its arguments, then re-encoded
/// with the coerced types.
///
/// # Safety
/// `m` is NULL or the running callback's message; `data` and `len` are writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_msg_bytes(
    m: *const rosco_msg,
    data: *mut *const u8,
    len: *mut usize,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let m = unsafe { view(m)? };
        let bytes = m.msg.as_bytes();
        // SAFETY: the caller passes writable pointers (NULL rejected).
        unsafe {
            write_out(data, bytes.as_ptr(), "data")?;
            write_out(len, bytes.len(), "len")
        }
    })
}

/// Validates a packet whole, as a channel does, and passes each of its messages in order
/// to `fn_` with `user` (its return value is ignored), for a caller doing its own I/O
/// (osc4py3's `oscbuildparse`, oscpack). A message in a bundle gets the bundle's effective
/// timetag (`rosco_msg_bundle_time`); it came from no channel. Nothing reaches any method.
/// `ROSCO_ERR_ARG` for a packet that fails validation (the detail says what and where), in
/// which case `fn_` is not called at all.
///
/// Thread-safe.
///
/// # Safety
/// `data` is readable for `len` bytes (or NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn rosco_decode(
    data: *const u8,
    len: usize,
    fn_: super::method::rosco_method_fn,
    user: *mut std::ffi::c_void,
) -> rosco_status {
    guard(|| {
        let callback = fn_.ok_or_else(|| Failure::null("fn"))?;
        // SAFETY: the caller's promise on `data`.
        let bytes = unsafe { super::status::byte_slice(data, len, "data")? };
        let packet = crate::osc::decode(bytes).map_err(crate::Error::Decode)?;
        let info = MsgInfo::new(crate::TimeTag::now());
        visit(&packet, None, &info, &mut |msg, info| {
            let view = MsgView { msg, info, key: 0 };
            // SAFETY: the caller's callback with its user data and a message that lives
            // for the call.
            unsafe { callback(user, view.as_ptr()) };
        });
        Ok(())
    })
}

/// Each message of a packet with its bundle's effective time.
fn visit(
    p: &crate::osc::Packet<'_>,
    outer: Option<crate::TimeTag>,
    info: &MsgInfo,
    f: &mut dyn FnMut(&Message<'_>, &MsgInfo),
) {
    match p {
        crate::osc::Packet::Message(m) => f(
            m,
            &MsgInfo {
                bundle_time: outer,
                ..*info
            },
        ),
        crate::osc::Packet::Bundle(b) => {
            for e in b.elements() {
                visit(&e, Some(b.effective_time(outer)), info, f);
            }
        }
    }
}
