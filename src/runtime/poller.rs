//! Waiting on many sockets at once with `poll(2)` (`ppoll` where it exists, for timeouts
//! finer than a millisecond, so timed bundles are delivered on time), and a waker that
//! interrupts the wait from any thread.

use std::io::{self, Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// What a source waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interest {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

/// What a source is ready for after a wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    pub(crate) read: bool,
    pub(crate) write: bool,
    /// Error or hang-up: the source should be read (to see EOF or the error) and closed.
    pub(crate) closed: bool,
}

/// A reusable set of descriptors to wait on.
#[derive(Debug, Default)]
pub(crate) struct Poller {
    fds: Vec<libc::pollfd>,
}

impl Poller {
    pub(crate) fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds a descriptor; returns its index for [`ready`](Self::ready).
    pub(crate) fn add(&mut self, fd: RawFd, interest: Interest) -> usize {
        let mut events = 0;
        if interest.read {
            events |= libc::POLLIN;
        }
        if interest.write {
            events |= libc::POLLOUT;
        }
        self.fds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// Waits until a descriptor is ready or `timeout` passes (`None`: no limit).
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        loop {
            match self.wait_once(timeout) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    fn wait_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as _,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `fds` is a valid array of `len` pollfd; `ts_ptr` is null or points to a
        // timespec that outlives the call; a null signal mask leaves the mask unchanged.
        let n = unsafe {
            libc::ppoll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                ts_ptr,
                std::ptr::null(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    fn wait_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        // Round up so a wait never ends before its deadline.
        let ms = timeout.map_or(-1, |d| {
            d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        });
        // SAFETY: `fds` is a valid array of `len` pollfd.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// What the descriptor at `index` is ready for.
    pub(crate) fn ready(&self, index: usize) -> Ready {
        let r = self.fds[index].revents;
        Ready {
            read: r & libc::POLLIN != 0,
            write: r & libc::POLLOUT != 0,
            closed: r & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0,
        }
    }
}

/// Wakes a waiting [`Poller`] from any thread; its read end is also the descriptor that
/// is readable while something waits (the io-thread mode's wake-up descriptor).
#[derive(Debug)]
pub(crate) struct Waker {
    tx: UnixStream,
    rx: UnixStream,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Waker { tx, rx })
    }

    /// Makes the read end readable. Never blocks: a full pipe is already readable.
    pub(crate) fn wake(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    /// Empties the pipe, so the read end is readable again only after the next wake.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn waker_interrupts_a_wait_and_timeouts_are_fine() {
        let waker = Waker::new().unwrap();
        let mut p = Poller::default();
        let i = p.add(
            waker.fd(),
            Interest {
                read: true,
                write: false,
            },
        );
        let t = Instant::now();
        assert_eq!(p.wait(Some(Duration::from_micros(1500))).unwrap(), 0);
        let waited = t.elapsed();
        assert!(waited >= Duration::from_micros(1500), "{waited:?}");
        waker.wake();
        waker.wake();
        assert_eq!(p.wait(None).unwrap(), 1);
        assert!(p.ready(i).read);
        waker.drain();
        assert_eq!(p.wait(Some(Duration::ZERO)).unwrap(), 0);
    }
}
