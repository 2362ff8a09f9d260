//! Per-thread reusable byte buffers, so that sending allocates nothing once warm.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A per-thread buffer, declared with `thread_local!`.
pub(crate) type ThreadBuf = LocalKey<RefCell<Vec<u8>>>;

/// Runs `f` with this thread's buffer `key`, or with a fresh one when that one is in use
/// (a hook that sends, say) or already gone (a send from a thread-local's or a static's
/// destructor, at thread or process exit).
pub(crate) fn with_buf<R>(key: &'static ThreadBuf, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut f = Some(f);
    let mut run = |buf: &mut Vec<u8>| f.take().map(|f| f(buf));
    key.try_with(|cell| cell.try_borrow_mut().ok().and_then(|mut buf| run(&mut buf)))
        .ok()
        .flatten()
        .or_else(|| run(&mut Vec::new()))
        .expect("`f` runs exactly once")
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    /// Sends from its destructor, which may run after `BUF` is gone.
    struct SendsAtExit;

    impl Drop for SendsAtExit {
        fn drop(&mut self) {
            let n = with_buf(&BUF, |buf| {
                buf.clear();
                buf.extend_from_slice(b"bye");
                buf.len()
            });
            assert_eq!(n, 3);
        }
    }

    thread_local! {
        static AT_EXIT: RefCell<Option<SendsAtExit>> = const { RefCell::new(None) };
    }

    #[test]
    fn a_buffer_in_use_or_gone_is_replaced_by_a_fresh_one() {
        let nested = with_buf(&BUF, |outer| {
            outer.push(1);
            with_buf(&BUF, |inner| {
                inner.push(2);
                inner.len()
            })
        });
        assert_eq!(nested, 1);
        // Thread-local destructors run in an unspecified order: whichever goes first,
        // the send at exit works.
        std::thread::spawn(|| {
            AT_EXIT.with(|s| *s.borrow_mut() = Some(SendsAtExit));
            with_buf(&BUF, |buf| buf.push(0));
        })
        .join()
        .unwrap();
    }
}
