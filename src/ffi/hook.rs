//! Packet hooks: C functions that see, check or transform each raw packet a channel sends
//! or receives (checksums, signatures, encryption, taps).

use super::context::{with_ctx_channel, UserData};
use super::handles::{rosco_channel, rosco_ctx};
use super::method::{rosco_free_fn, Owned};
use super::status::{byte_slice, guard, rosco_status, Failure};
use crate::runtime::{HookVerdict, PacketHook};
use std::ffi::c_void;
use std::sync::Arc;

/// Hook verdict: the packet goes no further.
pub const ROSCO_HOOK_DROP: i32 = 0;
/// Hook verdict: the packet goes on as it was.
pub const ROSCO_HOOK_PASS: i32 = 1;
/// Hook verdict: what the hook appended to `out` goes on instead.
pub const ROSCO_HOOK_REPLACE: i32 = 2;

/// Where a packet hook writes the packet that replaces the one it was given (see
/// `rosco_packet_out_append`). Valid only during the hook's call.
pub struct rosco_packet_out(Vec<u8>);

/// Packet hook: `user` as given, the channel, the packet (valid during the call) and where
/// to write a replacement. Returns `ROSCO_HOOK_PASS`, `ROSCO_HOOK_REPLACE` or
/// `ROSCO_HOOK_DROP`; any other value drops the packet too.
pub type rosco_packet_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        ch: rosco_channel,
        data: *const u8,
        len: usize,
        out: *mut rosco_packet_out,
    ) -> i32,
>;

/// Sets (or with NULL removes) a channel's packet hooks (osc4py3's `decodepacket` and
/// `encodepacket` actions). `incoming` sees every packet the channel receives before it is
/// decoded, on the thread doing the I/O; `outgoing` every packet it sends, after encoding,
/// on the sending thread (replies and forwarded messages included). A hook must not open or
/// close channels. Once this returns the previous hooks are not running on another thread
/// and will not run again, so their `user` may be freed (called from inside a callback or
/// hook, this cannot wait for calls under way on other threads). Closing the channel or
/// freeing the context removes its hooks the same way. `user_free` (may be NULL) is called
/// with `user` once neither hook can run any more, whichever thread did what: after they
/// are replaced or removed and any call under way has ended, or before this returns when
/// it fails or sets no hook. `ROSCO_ERR_UNSUPPORTED` for an O2lite channel, and for an
/// incoming hook on `"_local"` (its outgoing hook sees what it dispatches).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_channel_set_hooks(
    ctx: rosco_ctx,
    ch: rosco_channel,
    incoming: rosco_packet_fn,
    outgoing: rosco_packet_fn,
    user: *mut c_void,
    user_free: rosco_free_fn,
) -> rosco_status {
    // Owned from here: freed when the last hook holding it goes, or on any failure.
    let user = Arc::new(Owned {
        user: UserData(user),
        free: user_free,
    });
    guard(|| {
        with_ctx_channel(ctx, ch, |entry, id| {
            let hook = |f: rosco_packet_fn| -> Option<PacketHook> {
                let f = f?;
                let user = user.clone();
                Some(Box::new(move |raw: &[u8], out: &mut Vec<u8>| {
                    let mut buf = rosco_packet_out(std::mem::take(out));
                    // SAFETY: the caller's hook with its user data, a packet that lives for
                    // the call, and a buffer it may only use during the call.
                    let verdict = unsafe { f(user.user.0, ch, raw.as_ptr(), raw.len(), &mut buf) };
                    *out = buf.0;
                    match verdict {
                        ROSCO_HOOK_PASS => HookVerdict::Pass,
                        ROSCO_HOOK_REPLACE => HookVerdict::Replace,
                        _ => HookVerdict::Drop,
                    }
                }))
            };
            entry
                .ctx
                .set_packet_hooks(id, hook(incoming), hook(outgoing))
                .map_err(Failure::from)
        })
    })
}

/// Appends `len` bytes to the packet a hook is writing; several calls build it piece by
/// piece. For `ROSCO_HOOK_REPLACE` only.
///
/// # Safety
/// `out` is the hook's `out`, during the hook's call; `data` points to `len` readable bytes
/// (it may be NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn rosco_packet_out_append(
    out: *mut rosco_packet_out,
    data: *const u8,
    len: usize,
) -> rosco_status {
    guard(|| {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        // SAFETY: the caller's promise on `data`.
        let data = unsafe { byte_slice(data, len, "data")? };
        // SAFETY: checked non-null; the caller passes the hook's buffer during its call.
        unsafe { (*out).0.extend_from_slice(data) };
        Ok(())
    })
}
