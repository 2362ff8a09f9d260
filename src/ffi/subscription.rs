//! Subscriptions: messages kept in a queue, taken when the application wants them (on its
//! own thread, with no callback from rosco's: what a C# or game-loop caller prefers).

use super::handles::{context, rosco_ctx};
use super::method::rosco_method_fn;
use super::msg::MsgView;
use super::status::{
    guard, optional_str, rosco_status, write_out, Failure, ROSCO_ERR_CLOSED, ROSCO_ERR_TIMEOUT,
};
use crate::error::Error;
use crate::runtime::Subscription;
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// A subscription (opaque): see `rosco_sub_new`.
pub struct rosco_sub {
    sub: Subscription,
    /// The context's handle key, for the channel handles of its messages.
    key: u64,
}

/// Subscribes to the messages to `pattern` (a literal address, an OSC pattern, or NULL
/// for all) whose arguments fit `typespec` (NULL: any, as for `rosco_method_add`): they
/// are kept, at most `capacity` of them (later ones are dropped and counted), for
/// `rosco_sub_take` (aiolo's `route.sub()`). Every subscriber gets every matching message;
/// methods see it too. Messages enter the queue where callbacks run: inside `rosco_poll`
/// in poll and io-thread modes, on the I/O thread (or the workers, whose messages may
/// come in any order) in threaded mode. Free it with
/// `rosco_sub_free` (before or after its context).
///
/// Thread-safe.
///
/// # Safety
/// `pattern` and `typespec` are NULL or NUL-terminated strings; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_sub_new(
    ctx: rosco_ctx,
    pattern: *const c_char,
    typespec: *const c_char,
    capacity: u32,
    out: *mut *mut rosco_sub,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let (pattern, typespec) = unsafe {
            (
                optional_str(pattern, "pattern")?,
                optional_str(typespec, "typespec")?,
            )
        };
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let entry = context(ctx)?;
        let sub = entry.ctx.subscribe(pattern, typespec, capacity as usize)?;
        let sub = Box::new(rosco_sub {
            sub,
            key: entry.key(),
        });
        // SAFETY: `out` is non-null and writable by the caller's promise.
        unsafe { write_out(out, Box::into_raw(sub), "out") }
    })
}

/// Adds a route to the subscription (aiolo merges subscriptions with `|`);
/// `ROSCO_ERR_CLOSED` once its context was freed.
///
/// Not while another call on this subscription is under way.
///
/// # Safety
/// `sub` is NULL or a live subscription; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn rosco_sub_also(
    sub: *mut rosco_sub,
    pattern: *const c_char,
    typespec: *const c_char,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let sub = unsafe { sub.as_mut() }.ok_or_else(|| Failure::null("sub"))?;
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let (pattern, typespec) = unsafe {
            (
                optional_str(pattern, "pattern")?,
                optional_str(typespec, "typespec")?,
            )
        };
        sub.sub.also(pattern, typespec).map_err(|e| match e {
            Error::Closed => Failure::new(ROSCO_ERR_CLOSED, "the context was freed"),
            e => Failure::arg(e.to_string()),
        })
    })
}

/// Takes the oldest message, waiting up to `timeout_ms` for one (0: only what is there),
/// and passes it to `fn_` on this thread (its return value is ignored; the message, read
/// with the `rosco_msg_*` accessors, is valid during the call). `ROSCO_ERR_TIMEOUT` when
/// none came; `ROSCO_ERR_CLOSED`, at once, when none waits and the context was freed.
///
/// Thread-safe (each message goes to one taker).
///
/// # Safety
/// `sub` is NULL or a live subscription.
#[no_mangle]
pub unsafe extern "C" fn rosco_sub_take(
    sub: *const rosco_sub,
    timeout_ms: u32,
    fn_: rosco_method_fn,
    user: *mut c_void,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let sub = unsafe { sub.as_ref() }.ok_or_else(|| Failure::null("sub"))?;
        let callback = fn_.ok_or_else(|| Failure::null("fn"))?;
        // With 0 too: it looks at the queue and the routes under one lock, so a message
        // that arrives just before the context goes is taken, not reported closed.
        let received = sub
            .sub
            .recv_timeout(Duration::from_millis(timeout_ms.into()))
            .map_err(|e| match e {
                Error::Closed => Failure::new(ROSCO_ERR_CLOSED, "the context was freed"),
                _ => Failure::new(ROSCO_ERR_TIMEOUT, "no message came"),
            })?;
        let msg = received.message();
        let view = MsgView {
            msg: &msg,
            info: &received.info,
            key: sub.key,
        };
        // SAFETY: the caller's callback with its user data and a message that lives for
        // the call.
        unsafe { callback(user, view.as_ptr()) };
        Ok(())
    })
}

/// Writes how many messages wait and how many were dropped (the queue was full). Either
/// pointer may be NULL.
///
/// Thread-safe.
///
/// # Safety
/// `sub` is NULL or a live subscription; `waiting` and `dropped` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_sub_counts(
    sub: *const rosco_sub,
    waiting: *mut u32,
    dropped: *mut u64,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let sub = unsafe { sub.as_ref() }.ok_or_else(|| Failure::null("sub"))?;
        // SAFETY: each is NULL or writable by the caller's promise.
        unsafe {
            if let Some(w) = waiting.as_mut() {
                *w = sub.sub.len().min(u32::MAX as usize) as u32;
            }
            if let Some(d) = dropped.as_mut() {
                *d = sub.sub.dropped();
            }
        }
        Ok(())
    })
}

/// Frees a subscription: its routes are removed, its waiting messages dropped. NULL is
/// ignored.
///
/// Not while another call on this subscription is under way.
///
/// # Safety
/// `sub` is NULL or a subscription from `rosco_sub_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rosco_sub_free(sub: *mut rosco_sub) {
    if !sub.is_null() {
        // SAFETY: a pointer from Box::into_raw in rosco_sub_new, freed once.
        drop(unsafe { Box::from_raw(sub) });
    }
}
