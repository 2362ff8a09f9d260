//! Methods: C callbacks registered by address pattern and type spec.

use super::context::UserData;
use super::handles::{context, rosco_ctx, rosco_method, CtxEntry};
use super::msg::{rosco_msg, MsgView};
use super::status::{
    c_bytes, guard, optional_str, rosco_status, write_out, Failure, ROSCO_ERR_HANDLE,
};
use crate::dispatch::{Flow, MethodId};
use std::ffi::{c_char, c_void};

/// A method callback. Return 0 when the message is handled (for a literal address, later
/// methods are skipped), non-zero to pass it on. `msg` is valid during the call only.
///
/// It runs inside `rosco_poll` on the caller's thread, or on the I/O thread in threaded
/// mode (on the worker threads, several at once, with `rosco_ctx_options.workers`). It
/// may send, add and remove methods (itself included), and close channels.
#[allow(non_camel_case_types)]
pub type rosco_method_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, msg: *const rosco_msg) -> i32>;

/// Frees user data given to rosco (a method's, packet hooks', thread hooks') once rosco no
/// longer needs it.
#[allow(non_camel_case_types)]
pub type rosco_free_fn = Option<unsafe extern "C" fn(user: *mut c_void)>;

/// Bundle boundary callback, with the bundle's effective timetag (NTP 32.32 bits).
#[allow(non_camel_case_types)]
pub type rosco_bundle_fn = Option<unsafe extern "C" fn(user: *mut c_void, timetag: u64)>;

/// User data that is freed with what uses it (a method, the thread hooks).
pub(crate) struct Owned {
    pub(crate) user: UserData,
    pub(crate) free: rosco_free_fn,
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: the caller's finalizer for its own pointer, called once.
            unsafe { free(self.user.0) };
        }
    }
}

/// Registers a method and writes its handle to `out`. `pattern`: a literal address
/// (`/synth/1/freq`), an OSC pattern (`/synth/*/freq`), or NULL for a catch-all.
/// `typespec`: NULL for any arguments, `""` for none, or tags like `"ifs"`. `user` is
/// passed to `fn`; `user_free` (may be NULL) is called with it when the method goes, and
/// before this returns when the add fails.
/// Matching methods are called in registration order.
///
/// Thread-safe; may be called from a callback.
///
/// # Safety
/// `pattern` and `typespec` are NULL or NUL-terminated strings; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_method_add(
    ctx: rosco_ctx,
    pattern: *const c_char,
    typespec: *const c_char,
    fn_: rosco_method_fn,
    user: *mut c_void,
    user_free: rosco_free_fn,
    out: *mut rosco_method,
) -> rosco_status {
    // Whatever happens, the user data is owned from here: a failed add frees it.
    let owned = Owned {
        user: UserData(user),
        free: user_free,
    };
    guard(move || {
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let (pattern, typespec) = unsafe {
            (
                optional_str(pattern, "pattern")?,
                optional_str(typespec, "typespec")?,
            )
        };
        let callback = fn_.ok_or_else(|| Failure::null("fn"))?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let entry = context(ctx)?;
        let key = entry.key();
        let id = entry
            .ctx
            .methods()
            .add_method(pattern, typespec, move |msg, info| {
                // Borrow `owned` whole, so the closure owns it (and frees it when it goes).
                let owned = &owned;
                let view = MsgView { msg, info, key };
                // SAFETY: the caller's callback with its user data and a message that lives
                // for the call.
                match unsafe { callback(owned.user.0, view.as_ptr()) } {
                    0 => Flow::Handled,
                    _ => Flow::PassOn,
                }
            })
            .map_err(|e| Failure::arg(e.to_string()))?;
        let id = kept(&entry, id)?;
        // SAFETY: checked non-null; the caller passes a writable handle.
        unsafe { write_out(out, entry.method_handle(id), "out") }
    })
}

/// A method just added, unless the context was freed meanwhile on another thread:
/// `rosco_ctx_free` may have cleared the methods before this one went in, and it must not
/// outlive the free (nor its `user_free`, nor what its closure holds).
pub(crate) fn kept(entry: &CtxEntry, id: MethodId) -> Result<MethodId, Failure> {
    if entry.ctx.is_closed() {
        entry.ctx.methods().remove_method(id);
        return Err(crate::Error::Closed.into());
    }
    Ok(id)
}

/// Removes a method (calling its `user_free` once no delivery is using it). Safe from
/// inside any callback, its own included.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_method_remove(ctx: rosco_ctx, m: rosco_method) -> rosco_status {
    guard(|| {
        let entry = context(ctx)?;
        match entry.ctx.methods().remove_method(entry.method(m)) {
            true => Ok(()),
            false => Err(Failure::new(
                ROSCO_ERR_HANDLE,
                "stale or foreign method handle",
            )),
        }
    })
}

/// Sets (or with NULL removes) the callbacks called before and after the messages of each
/// bundle are dispatched (liblo's bundle handlers). They run where method callbacks run
/// (with workers, those of different bundles may run at once).
/// Once this returns, the previous ones are not running on another thread and will not run
/// again (as for `rosco_ctx_set_event_callback`).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_ctx_set_bundle_callbacks(
    ctx: rosco_ctx,
    start: rosco_bundle_fn,
    end: rosco_bundle_fn,
    user: *mut c_void,
) -> rosco_status {
    guard(|| {
        let entry = context(ctx)?;
        let hook = |f: rosco_bundle_fn| -> Option<crate::dispatch::BundleCallback> {
            let f = f?;
            let user = UserData(user);
            Some(Box::new(move |tt: crate::TimeTag| {
                let user = &user;
                // SAFETY: the caller's callback with its user data.
                unsafe { f(user.0, tt.to_bits()) }
            }))
        };
        entry
            .ctx
            .methods()
            .set_bundle_callbacks(hook(start), hook(end));
        Ok(())
    })
}

/// Matches an OSC address pattern against an address, as dispatch does (OSC 1.0 and
/// 1.1's `//`): writes 1 to `matched` when it matches, 0 when not. `ROSCO_ERR_ARG` for a
/// malformed pattern (the detail says why).
///
/// Thread-safe.
///
/// # Safety
/// `pattern` and `address` are NUL-terminated strings; `matched` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_pattern_match(
    pattern: *const c_char,
    address: *const c_char,
    matched: *mut i32,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes NUL-terminated strings (or NULL, rejected).
        let (pattern, address) =
            unsafe { (c_bytes(pattern, "pattern")?, c_bytes(address, "address")?) };
        let m = crate::pattern::matches(pattern, address)
            .map_err(|e| Failure::arg(format!("pattern: {e}")))?;
        // SAFETY: the caller passes NULL or a writable int.
        unsafe { write_out(matched, i32::from(m), "matched") }
    })
}
