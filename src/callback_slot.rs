//! A replaceable callback that is not running once replaced: [`CallbackSlot::set`] returns
//! only after calls of the previous callback on other threads have ended, so whatever the
//! previous one used (a C caller's `user` pointer) can be freed as soon as it returns.

use parking_lot::{Mutex, RwLock};
use std::cell::Cell;
use std::sync::Arc;

thread_local! {
    /// Callbacks running on this thread (a slot's, or a method's: see [`in_callback`]).
    /// From inside one, `set` does not wait: the call it would wait for may be its own, or
    /// may be waiting for this one to end (a `shutdown` waiting for a `poll` whose method
    /// callback is replacing the event callback that called `shutdown`).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Marks this thread as inside a callback until the guard drops.
struct Depth;

impl Depth {
    fn enter() -> Depth {
        // (`try_with`: at thread exit, a context dropped by a thread-local's destructor
        // may still report events.)
        let _ = DEPTH.try_with(|d| d.set(d.get() + 1));
        Depth
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(d.get() - 1));
    }
}

/// True while this thread runs a callback.
pub(crate) fn inside() -> bool {
    DEPTH.try_with(Cell::get).unwrap_or(0) > 0
}

/// Runs `f`, which calls user callbacks (method dispatch), as a callback for `set`.
pub(crate) fn in_callback<R>(f: impl FnOnce() -> R) -> R {
    let _depth = Depth::enter();
    f()
}

/// One callback (or none), called from any thread.
pub(crate) struct CallbackSlot<T: ?Sized> {
    current: Mutex<Option<Arc<T>>>,
    /// Held shared for the length of every call, and briefly exclusively by `set`, which
    /// so waits for the calls under way to end.
    calls: RwLock<()>,
}

impl<T: ?Sized> Default for CallbackSlot<T> {
    fn default() -> Self {
        CallbackSlot {
            current: Mutex::new(None),
            calls: RwLock::new(()),
        }
    }
}

impl<T: ?Sized> std::fmt::Debug for CallbackSlot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.current.lock().is_some();
        f.debug_struct("CallbackSlot").field("set", &set).finish()
    }
}

impl<T: ?Sized> CallbackSlot<T> {
    /// Runs `call` with the callback, if one is set.
    pub(crate) fn call<R>(&self, call: impl FnOnce(&T) -> R) -> Option<R> {
        // Recursive: a callback may cause another call (an event logged, say) while `set`
        // waits on another thread.
        let _calls = self.calls.read_recursive();
        // Inside before the clone, which drops first: when this call holds the last
        // reference (the callback was replaced meanwhile), what its drop runs (a C
        // caller's `user_free`) counts as inside, and may replace callbacks without
        // waiting for this very call.
        let _depth = Depth::enter();
        let callback = self.current.lock().clone()?;
        Some(call(&callback))
    }

    /// Replaces the callback (`None` removes it). Returns once calls of the previous one
    /// on other threads have ended, except when called from inside a callback, which
    /// cannot wait for its own call.
    pub(crate) fn set(&self, callback: Option<Arc<T>>) {
        let previous = self.replace(callback);
        self.wait();
        drop(previous);
    }

    /// Replaces the callback and returns the previous one, without waiting: for a caller
    /// that replaces several slots together and then waits for each.
    pub(crate) fn replace(&self, callback: Option<Arc<T>>) -> Option<Arc<T>> {
        std::mem::replace(&mut *self.current.lock(), callback)
    }

    /// Returns once calls under way on other threads have ended (at once from inside a
    /// callback, which cannot wait for its own call).
    pub(crate) fn wait(&self) {
        if !inside() {
            drop(self.calls.write());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    type Hook = dyn Fn() + Send + Sync;

    #[test]
    fn set_returns_after_the_running_call_ends() {
        let slot = Arc::new(CallbackSlot::<Hook>::default());
        let (running, done) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (r, d) = (running.clone(), done.clone());
        slot.set(Some(Arc::new(move || {
            r.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            d.store(true, Ordering::SeqCst);
        })));
        let caller = {
            let slot = slot.clone();
            std::thread::spawn(move || slot.call(|f| f()))
        };
        while !running.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        slot.set(None);
        assert!(
            done.load(Ordering::SeqCst),
            "set returned while the old callback ran"
        );
        assert!(caller.join().unwrap().is_some());
        assert!(slot.call(|f| f()).is_none());
    }

    #[test]
    fn a_callback_may_replace_itself_and_call_others() {
        let slot = Arc::new(CallbackSlot::<Hook>::default());
        let other = Arc::new(CallbackSlot::<Hook>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        other.set(Some(Arc::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        })));
        let (s, o) = (Arc::downgrade(&slot), other.clone());
        slot.set(Some(Arc::new(move || {
            o.call(|f| f());
            if let Some(slot) = s.upgrade() {
                slot.set(None);
            }
        })));
        assert!(slot.call(|f| f()).is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(slot.call(|f| f()).is_none());
    }
}
