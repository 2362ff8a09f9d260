//! Receiving several UDP datagrams per system call: `recvmmsg(2)` where the system has it,
//! one `recv_from` per call elsewhere. On loopback the cost of each system call is a large
//! share of the cost of a small datagram, so a burst is drained in batches.

use super::udp::RECV_BUFFER;
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Datagrams received by one call at most.
pub(crate) const BATCH: usize = 16;

/// Room for a batch of datagrams of any size, reused from call to call. The buffer is
/// zero-allocated, so pages the kernel never writes to cost no memory. Everything lives on
/// the heap: an idle busy-polling caller pays neither for moving the batch nor for zeroing
/// the kernel's address slots on each call.
#[derive(Debug, Default)]
pub(crate) struct RecvBatch {
    buf: Vec<u8>,
    lens: Vec<usize>,
    from: Vec<Option<SocketAddr>>,
    /// Where the kernel writes each sender's address.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    names: Vec<libc::sockaddr_storage>,
}

impl RecvBatch {
    pub(crate) fn new() -> RecvBatch {
        RecvBatch {
            buf: vec![0; BATCH * RECV_BUFFER],
            lens: vec![0; BATCH],
            from: vec![None; BATCH],
            // SAFETY: all-zero bytes are a valid (empty) socket address.
            #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
            names: vec![unsafe { std::mem::zeroed() }; BATCH],
        }
    }

    /// False for the empty placeholder `Default` makes.
    pub(crate) fn is_allocated(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Datagram `i` of the last [`recv`](Self::recv) and where it came from.
    pub(crate) fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let start = i * RECV_BUFFER;
        (&self.buf[start..start + self.lens[i]], self.from[i])
    }

    /// Receives up to [`BATCH`] datagrams from a non-blocking socket and returns how many
    /// (at least one; `WouldBlock` when there is none).
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::os::unix::io::AsRawFd;
        use std::{mem, ptr};

        // SAFETY: all-zero bytes are valid for these plain C structures.
        let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        let names = &mut self.names;
        for (i, slot) in self.buf.chunks_exact_mut(RECV_BUFFER).enumerate() {
            iovs[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: RECV_BUFFER,
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = ptr::addr_of_mut!(names[i]).cast();
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = ptr::addr_of_mut!(iovs[i]);
            h.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live name in `self.names` and a live iovec of
        // RECV_BUFFER writable bytes inside `self.buf`, all outliving the call.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_DONTWAIT as _,
                ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            // A UDP payload is at most 65,527 bytes, so a slot never truncates it.
            self.lens[i] = hdrs[i].msg_len as usize;
            // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes.
            let name = unsafe { socket2::SockAddr::new(names[i], hdrs[i].msg_hdr.msg_namelen) };
            self.from[i] = name.as_socket();
        }
        Ok(n)
    }

    /// Receives one datagram (this system has no `recvmmsg`).
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.recv_one(socket)
    }

    /// Receives one datagram from a non-blocking socket into the first slot; returns 1
    /// (`WouldBlock` when there is none).
    pub(crate) fn recv_one(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let (n, from) = socket.recv_from(&mut self.buf[..RECV_BUFFER])?;
        self.lens[0] = n;
        self.from[0] = Some(from);
        Ok(1)
    }
}
