//! The C API's handle types and the process-wide table of contexts. A handle is an index
//! and a generation (see `crate::handle`), so a stale or foreign handle is an error,
//! never undefined behaviour: this matters for Unity domain reloads and for Pd/Max
//! objects freed in any order.

use super::status::{Failure, ROSCO_ERR_HANDLE};
use crate::dispatch::MethodId;
use crate::handle::{ChannelId, Handle, Slab};
use crate::runtime::Context;
use parking_lot::RwLock;
use std::sync::Arc;

/// A context handle (index + generation). The all-zero value is never valid.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct rosco_ctx {
    /// Opaque: index and generation.
    pub id: u64,
}

/// A channel handle, valid with the context that opened it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct rosco_channel {
    /// Opaque: index and generation.
    pub id: u64,
}

impl rosco_channel {
    /// The handle of channel `id` in the context whose key is `key` (for callbacks, which
    /// hold the key rather than the context's entry).
    pub(crate) fn of(key: u64, id: ChannelId) -> rosco_channel {
        rosco_channel {
            id: id.0.to_bits() ^ key,
        }
    }
}

/// A method handle, valid with the context it was added to.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct rosco_method {
    /// Opaque: index and generation.
    pub id: u64,
}

/// A registered context and the key its channel and method handles are salted with: a
/// handle from another context decodes to a stale one here, so it is refused.
pub(crate) struct CtxEntry {
    pub(crate) ctx: Context,
    key: u64,
}

impl CtxEntry {
    pub(crate) fn channel(&self, ch: rosco_channel) -> ChannelId {
        ChannelId(Handle::from_bits(ch.id ^ self.key))
    }

    pub(crate) fn channel_handle(&self, id: ChannelId) -> rosco_channel {
        rosco_channel::of(self.key, id)
    }

    pub(crate) fn method(&self, m: rosco_method) -> MethodId {
        MethodId(Handle::from_bits(m.id ^ self.method_key()))
    }

    pub(crate) fn method_handle(&self, id: MethodId) -> rosco_method {
        rosco_method {
            id: id.0.to_bits() ^ self.method_key(),
        }
    }

    /// Methods are salted apart from channels: both tables hand out the same indexes and
    /// generations, and a channel handle passed as a method's must not name a method.
    fn method_key(&self) -> u64 {
        self.key.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15
    }

    pub(crate) fn key(&self) -> u64 {
        self.key
    }
}

static CONTEXTS: RwLock<Slab<Arc<CtxEntry>>> = parking_lot::const_rwlock(Slab::new());

pub(crate) fn register(ctx: Context) -> rosco_ctx {
    let entry = Arc::new(CtxEntry {
        ctx,
        // Random: a handle from another context decodes to a stale one here.
        key: crate::random::random_u64(),
    });
    rosco_ctx {
        id: CONTEXTS.write().insert(entry).to_bits(),
    }
}

pub(crate) fn unregister(h: rosco_ctx) -> Result<Arc<CtxEntry>, Failure> {
    CONTEXTS
        .write()
        .remove(Handle::from_bits(h.id))
        .ok_or_else(stale_ctx)
}

/// The context behind a handle. The `Arc` keeps it alive for the call even if another
/// thread frees the handle meanwhile.
pub(crate) fn context(h: rosco_ctx) -> Result<Arc<CtxEntry>, Failure> {
    CONTEXTS
        .read()
        .get(Handle::from_bits(h.id))
        .cloned()
        .ok_or_else(stale_ctx)
}

fn stale_ctx() -> Failure {
    Failure::new(ROSCO_ERR_HANDLE, "stale or invalid context handle")
}
