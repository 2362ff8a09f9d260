//! Stream connections (TCP and Unix stream sockets): framed writes from any thread, the
//! read side's deframer, listeners, and non-blocking connects.
//!
//! A frame is written with one system call, from one buffer: on loopback a `send` of a
//! small frame costs about a quarter less than a `writev` of its prefix and packet, far
//! more than copying the packet behind its prefix. When the socket cannot take it all, the
//! rest waits in the connection's output buffer and the I/O loop finishes it when the
//! socket is writable, so a sender never blocks. Writes never raise SIGPIPE: a host that
//! left it at its default would die when a peer closes.

use crate::osc::framing::{
    encode_frame, most_buffered, DeframeMode, Deframer, Framing, KEEP_AT_MOST,
};
use crate::thread_buf::with_buf;
use crate::transport::socket_file::{self, SocketFile};
use parking_lot::Mutex;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::cell::RefCell;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Output waiting longer than this fails new sends with `Full` instead of growing.
pub(crate) const MAX_PENDING_OUT: usize = 8 << 20;
/// A session's own frames (see `StreamConn::send_session_frames`) wait behind up to this.
pub(crate) const MAX_SESSION_OUT: usize = MAX_PENDING_OUT + (1 << 20);
/// Output waiting across all of one listener's connections past this fails new sends
/// with `Full` too: 500 peers that stop reading would otherwise hold 4 GiB.
pub(crate) const MAX_LISTENER_OUT: usize = 64 << 20;
/// Memory held for unfinished frames (`Deframer::held`) across one listener's connections
/// (or one framed UDP channel's senders) past this, or past [`unfinished_limit`] if more,
/// ends the connection whose read passed it: 500 peers each half-way through a 1 MiB
/// frame would otherwise hold 500 MiB until they stall.
pub(crate) const MAX_LISTENER_UNFINISHED: usize = 64 << 20;

/// The cap on unfinished frames across peers whose frames may be `max_frame` long: room
/// for two buffers holding the largest frame the channel allows, with the next begun.
pub(crate) fn unfinished_limit(max_frame: usize) -> usize {
    MAX_LISTENER_UNFINISHED.max(most_buffered(max_frame).saturating_mul(2))
}

/// What the connections that share it (a listener's peers; a client's connection has one
/// of its own) hold together: output waiting to be written, and bytes of frames read but
/// not finished.
#[derive(Debug, Default, Clone)]
pub(crate) struct PeerBudget {
    output: Arc<AtomicUsize>,
    unfinished: Arc<AtomicUsize>,
}

impl PeerBudget {
    fn waiting(&self) -> usize {
        self.output.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.output.fetch_add(n, Ordering::Relaxed);
    }

    fn take(&self, n: usize) {
        self.output.fetch_sub(n, Ordering::Relaxed);
    }

    /// Moves a connection's count of unfinished bytes from `was` to `now`; returns the
    /// new total.
    fn unfinished(&self, was: usize, now: usize) -> usize {
        match now.cmp(&was) {
            std::cmp::Ordering::Equal => self.unfinished.load(Ordering::Relaxed),
            std::cmp::Ordering::Greater => {
                self.unfinished.fetch_add(now - was, Ordering::Relaxed) + (now - was)
            }
            std::cmp::Ordering::Less => {
                self.unfinished.fetch_sub(was - now, Ordering::Relaxed) - (was - now)
            }
        }
    }
}

/// A connected stream socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let socket = match self {
            Stream::Tcp(s) => SockRef::from(s),
            Stream::Unix(s) => SockRef::from(s),
        };
        socket.send_with_flags(buf, libc::MSG_NOSIGNAL)
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

/// The read side, used only by the I/O loop.
#[derive(Debug)]
pub(crate) struct Reader {
    pub(crate) deframer: Deframer,
    /// When the frame being read began (the read that brought its first bytes), to drop
    /// a peer that leaves it unfinished: one that trickles a byte now and then included.
    pub(crate) frame_began: Instant,
    /// Set when the peer has finished sending (end of stream).
    pub(crate) finished: Option<Finished>,
    /// The deframer's memory for unfinished frames as last counted in the connection's budget.
    counted: usize,
}

/// A connection whose peer finished sending stays for what is owed to it (its output, and
/// replies to its last messages when they are dispatched on another thread), up to a
/// limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Finished {
    /// The delivery mark (`Shared::delivery_mark`) once past which its messages' callbacks
    /// have run (`None`: they ran as they were read).
    pub(crate) mark: Option<u64>,
    /// When it goes, owed or not.
    pub(crate) until: Instant,
}

/// One stream connection, shared between the I/O loop (reading, flushing) and senders.
#[derive(Debug)]
pub(crate) struct StreamConn {
    stream: Stream,
    pub(crate) peer: Option<SocketAddr>,
    /// How packets are framed on the way out; for an accepted connection, the framing
    /// the peer was detected to use (until then, the length prefix).
    framing: OnceLock<Framing>,
    out: Mutex<Vec<u8>>,
    /// When output last moved: began to wait in `out`, or was partly written. Taken under
    /// `out`'s lock.
    moved: Mutex<Instant>,
    /// Counts what waits in `out`, with the other connections it is shared with.
    budget: PeerBudget,
    closed: AtomicBool,
    /// The I/O loop has let the connection go and reported its end; set once.
    ended: AtomicBool,
    /// The I/O loop read the end of the peer's stream.
    peer_done: AtomicBool,
    /// Why this side closed the connection, when it did for a reason of its own: what the
    /// I/O loop reports instead of what it then sees (the end of the stream).
    why_closed: OnceLock<&'static str>,
    /// Locked by the I/O loop only (whoever holds the engine): it is taken both before and
    /// after a client's state lock, which cannot deadlock only because of that.
    pub(crate) reader: Mutex<Reader>,
}

thread_local! {
    static FRAME_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl StreamConn {
    pub(crate) fn new(
        stream: Stream,
        peer: Option<SocketAddr>,
        send: Option<Framing>,
        read: DeframeMode,
        max_frame: usize,
        nodelay: bool,
        budget: PeerBudget,
    ) -> io::Result<StreamConn> {
        match &stream {
            Stream::Tcp(s) => {
                s.set_nonblocking(true)?;
                s.set_nodelay(nodelay)?;
            }
            Stream::Unix(s) => s.set_nonblocking(true)?,
        }
        Ok(StreamConn {
            stream,
            peer,
            framing: send.map_or_else(OnceLock::new, OnceLock::from),
            out: Mutex::new(Vec::new()),
            moved: Mutex::new(Instant::now()),
            budget,
            closed: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            peer_done: AtomicBool::new(false),
            why_closed: OnceLock::new(),
            reader: Mutex::new(Reader {
                deframer: Deframer::new(read, max_frame),
                frame_began: Instant::now(),
                finished: None,
                counted: 0,
            }),
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.stream.fd()
    }

    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Records the framing the peer was detected to use, so replies use it too.
    pub(crate) fn learn_framing(&self, f: Framing) {
        let _ = self.framing.set(f);
    }

    fn send_framing(&self) -> Framing {
        self.framing.get().copied().unwrap_or(Framing::LengthPrefix)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the connection's end as reported: true for the first caller only.
    pub(crate) fn end(&self) -> bool {
        !self.ended.swap(true, Ordering::AcqRel)
    }

    /// Notes that the peer's stream ended (it may still read what is sent to it).
    pub(crate) fn peer_finished(&self) {
        self.peer_done.store(true, Ordering::Release);
    }

    /// True once the peer's stream ended.
    pub(crate) fn has_peer_finished(&self) -> bool {
        self.peer_done.load(Ordering::Acquire)
    }

    /// True once [`end`](Self::end) was called: nothing more is read from it.
    pub(crate) fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// [`close`](Self::close), saying why (the first reason given stays).
    pub(crate) fn close_because(&self, why: &'static str) {
        let _ = self.why_closed.set(why);
        self.close();
    }

    /// The reason given to [`close_because`](Self::close_because), if any.
    pub(crate) fn why_closed(&self) -> Option<&'static str> {
        self.why_closed.get().copied()
    }

    /// Marks the connection closed and shuts the socket down; later sends fail.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.stream.shutdown();
        }
    }

    /// True while output waits for the socket to become writable.
    pub(crate) fn wants_write(&self) -> bool {
        self.unwritten() > 0
    }

    /// Bytes of output waiting for the socket.
    pub(crate) fn unwritten(&self) -> usize {
        self.out.lock().len()
    }

    /// Sends one packet. Returns true when part of it is left for the I/O loop to write
    /// (the caller should wake the loop).
    pub(crate) fn send(&self, packet: &[u8]) -> io::Result<bool> {
        if self.is_closed() {
            return Err(io::ErrorKind::NotConnected.into());
        }
        // The channel refused what its framing cannot carry (`Limits::max_framed`).
        let framing = self.send_framing();
        let mut out = self.out.lock();
        with_buf(&FRAME_SCRATCH, |frame| {
            frame.clear();
            encode_frame(framing, packet, frame);
            self.write_or_queue(&mut out, frame, true)
        })
    }

    /// Sends bytes that are already framed (a client's backlog), ahead of later sends.
    pub(crate) fn send_framed(&self, framed: &[u8]) -> io::Result<bool> {
        self.send_framed_with(framed, true)
    }

    /// Sends a session's own frames (an O2lite client's announcements and queries), queued
    /// past the output limit for what the application sends, up to `MAX_SESSION_OUT`: the
    /// session counts them as sent, so they must reach the peer while the connection
    /// lasts. Past that the caller ends the connection (the next one starts the session
    /// afresh) rather than queue without end.
    pub(crate) fn send_session_frames(&self, framed: &[u8]) -> io::Result<bool> {
        self.send_framed_with(framed, false)
    }

    fn send_framed_with(&self, framed: &[u8], bounded: bool) -> io::Result<bool> {
        if self.is_closed() {
            return Err(io::ErrorKind::NotConnected.into());
        }
        if framed.is_empty() {
            return Ok(false);
        }
        let mut out = self.out.lock();
        self.write_or_queue(&mut out, framed, bounded)
    }

    /// Writes `frame` at once when nothing is queued; queues what is not written. Unless
    /// told otherwise (`bounded` false), refuses (`WouldBlock`) to queue behind more than
    /// `MAX_PENDING_OUT` waiting bytes, or more than `MAX_LISTENER_OUT` across the budget's
    /// connections: a peer that stops reading must not grow this without bound. A peer
    /// with nothing queued is written to whatever the others hold (the rest of a frame
    /// begun is queued, so it stays whole).
    fn write_or_queue(&self, out: &mut Vec<u8>, frame: &[u8], bounded: bool) -> io::Result<bool> {
        if !out.is_empty() {
            let full = match bounded {
                true => out.len() > MAX_PENDING_OUT || self.budget.waiting() > MAX_LISTENER_OUT,
                false => out.len() > MAX_SESSION_OUT,
            };
            if full {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            out.extend_from_slice(frame);
            self.budget.add(frame.len());
            return Ok(true);
        }
        let written = match self.stream.write(frame) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        if written == frame.len() {
            return Ok(false);
        }
        *self.moved.lock() = Instant::now();
        out.extend_from_slice(&frame[written..]);
        self.budget.add(frame.len() - written);
        Ok(true)
    }

    /// Since when output has waited without any of it being written, if it waits.
    pub(crate) fn output_stuck_since(&self) -> Option<Instant> {
        let out = self.out.lock();
        (!out.is_empty()).then(|| *self.moved.lock())
    }

    /// Writes queued output; true when none is left.
    pub(crate) fn flush(&self) -> io::Result<bool> {
        let mut out = self.out.lock();
        while !out.is_empty() {
            match self.stream.write(&out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    out.drain(..n);
                    self.budget.take(n);
                    *self.moved.lock() = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // A buffer grown for a burst is given back, as the deframer's is.
        if out.capacity() > KEEP_AT_MOST {
            *out = Vec::new();
        }
        Ok(true)
    }
}

impl StreamConn {
    /// Counts the memory `reader` (this connection's) holds for unfinished frames in the
    /// budget; false when, with the other connections', it is over [`unfinished_limit`]
    /// and this connection holds some, even once its buffer was shrunk to what it keeps.
    pub(crate) fn count_unfinished(&self, reader: &mut Reader) -> bool {
        // A client's connection has a budget of its own: it is the lone peer.
        let limit = unfinished_limit(reader.deframer.max_frame());
        let total = self.recount(reader);
        if reader.counted == 0 || total <= limit {
            return true;
        }
        // Over: first what it holds beyond what it keeps goes (a buffer grown for a large
        // frame, the next one begun in it).
        reader.deframer.shrink();
        self.recount(reader) <= limit
    }

    /// Shrinks what `reader` (this connection's) holds to what it keeps, to make room in
    /// a full budget for another connection.
    pub(crate) fn shrink_unfinished(&self, reader: &mut Reader) {
        if reader.counted > 0 {
            reader.deframer.shrink();
            self.recount(reader);
        }
    }

    /// Takes this connection's count out of the budget: it ends, and makes room at once,
    /// not when the last reference to it goes.
    pub(crate) fn uncount_unfinished(&self, reader: &mut Reader) {
        self.budget.unfinished(reader.counted, 0);
        reader.counted = 0;
    }

    /// Moves this connection's count to what its deframer holds now; returns the total.
    fn recount(&self, reader: &mut Reader) -> usize {
        let now = reader.deframer.held();
        let total = self.budget.unfinished(reader.counted, now);
        reader.counted = now;
        total
    }
}

impl Drop for StreamConn {
    fn drop(&mut self) {
        self.budget.take(self.out.get_mut().len());
        let counted = self.reader.get_mut().counted;
        self.budget.unfinished(counted, 0);
    }
}

/// A listening stream socket. A Unix listener removes its socket file when dropped.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    /// The socket file is removed once, by `release` or when dropped.
    Unix(UnixListener, Mutex<Option<SocketFile>>),
}

impl Listener {
    /// Removes a Unix listener's socket file (once).
    pub(crate) fn remove_file(&self) {
        if let Listener::Unix(_, file) = self {
            if let Some(file) = file.lock().take() {
                file.remove();
            }
        }
    }

    pub(crate) fn tcp(addr: SocketAddr, dual_stack: bool) -> io::Result<Listener> {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() && dual_stack {
            let _ = s.set_only_v6(false);
        }
        s.set_reuse_address(true)?;
        s.bind(&addr.into())?;
        s.listen(128)?;
        s.set_nonblocking(true)?;
        Ok(Listener::Tcp(s.into()))
    }

    /// Binds a Unix stream socket, replacing a stale socket file nobody listens on.
    pub(crate) fn unix(path: &Path) -> io::Result<Listener> {
        let (l, file) = socket_file::bind(path, true, || UnixListener::bind(path))?;
        l.set_nonblocking(true)?;
        Ok(Listener::Unix(l, Mutex::new(Some(file))))
    }

    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// Accepts one pending connection, if any.
    pub(crate) fn accept(&self) -> io::Result<Option<(Stream, Option<SocketAddr>)>> {
        let accepted = match self {
            Listener::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), Some(a))),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| (Stream::Unix(s), None)),
        };
        match accepted {
            Ok(a) => Ok(Some(a)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.remove_file();
    }
}

/// Frees the address a socket is bound to now, even while other code still holds the
/// socket object: the descriptor is pointed at a fresh unbound socket (`dup2`), so the
/// port or path can be bound again at once and any late use of the descriptor finds
/// nothing to read, and cannot send (shut down for writing: a send racing the close
/// would otherwise leave from an ephemeral port). The placeholder is closed when the
/// owner drops the socket.
pub(crate) fn release_fd(fd: RawFd) {
    // SAFETY: creating a socket has no preconditions.
    let placeholder = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if placeholder < 0 {
        return;
    }
    // SAFETY: an open descriptor. (Unconnected, it answers ENOTCONN, but is shut down.)
    unsafe { libc::shutdown(placeholder, libc::SHUT_WR) };
    // SAFETY: both are open descriptors; dup2 atomically closes `fd`'s socket and makes
    // `fd` refer to the placeholder, which we then close under its own number.
    unsafe {
        libc::dup2(placeholder, fd);
        libc::close(placeholder);
    }
}

/// Connects a Unix stream socket without blocking: a listener whose backlog is full
/// refuses at once (`WouldBlock`) instead of holding the caller, which may be the I/O loop
/// or a sender holding the client's state.
pub(crate) fn connect_unix(path: &Path) -> io::Result<UnixStream> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.connect(&socket2::SockAddr::unix(path)?)?;
    Ok(UnixStream::from(std::os::fd::OwnedFd::from(socket)))
}

/// A TCP connect under way without blocking.
#[derive(Debug)]
pub(crate) struct Connecting {
    socket: Socket,
    pub(crate) addr: SocketAddr,
}

impl Connecting {
    /// Starts connecting to `addr`.
    pub(crate) fn start(addr: SocketAddr, local: Option<SocketAddr>) -> io::Result<Connecting> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        if let Some(local) = local {
            socket.set_reuse_address(true)?;
            socket.bind(&local.into())?;
        }
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(Connecting { socket, addr })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// After the socket became writable: the connected stream, or why it failed.
    pub(crate) fn finish(self) -> io::Result<TcpStream> {
        if let Some(e) = self.socket.take_error()? {
            return Err(e);
        }
        // Writable without an error can still mean "not connected" on some systems.
        self.socket.peer_addr()?;
        Ok(self.socket.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A send on a released descriptor (one racing the channel's close) fails: it does
    /// not leave from the placeholder's ephemeral port.
    #[test]
    fn a_released_socket_sends_nothing() {
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = peer.local_addr().unwrap();
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(b"before", to).unwrap();
        release_fd(s.as_raw_fd());
        assert!(s.send_to(b"after", to).is_err());
        peer.set_nonblocking(true).unwrap();
        let mut buf = [0; 16];
        assert_eq!(peer.recv(&mut buf).ok(), Some(6));
        assert!(
            peer.recv(&mut buf).is_err(),
            "something came after the release"
        );
    }
    use crate::osc::framing::DEFAULT_MAX_FRAME;

    fn pair() -> (StreamConn, StreamConn) {
        pair_sharing(&PeerBudget::default())
    }

    /// A connected pair, the first end counting its output in `budget`.
    fn pair_sharing(budget: &PeerBudget) -> (StreamConn, StreamConn) {
        let (a, b) = UnixStream::pair().unwrap();
        let mk = |s, f, budget| {
            StreamConn::new(
                Stream::Unix(s),
                None,
                Some(f),
                DeframeMode::Detect,
                DEFAULT_MAX_FRAME,
                true,
                budget,
            )
            .unwrap()
        };
        (
            mk(a, Framing::LengthPrefix, budget.clone()),
            mk(b, Framing::Slip, PeerBudget::default()),
        )
    }

    fn read_frames(conn: &StreamConn, want: usize) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut reader = conn.reader.lock();
        for _ in 0..1000 {
            let _ = reader.deframer.read_from(&mut conn.stream(), 65_536);
            while let Some(Ok(f)) = reader.deframer.next_frame() {
                frames.push(f.to_vec());
            }
            if frames.len() >= want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        frames
    }

    #[test]
    fn tcp_nodelay_follows_the_channel_option() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        for nodelay in [true, false] {
            let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let conn = StreamConn::new(
                Stream::Tcp(tcp),
                None,
                Some(Framing::LengthPrefix),
                DeframeMode::Detect,
                DEFAULT_MAX_FRAME,
                nodelay,
                PeerBudget::default(),
            )
            .unwrap();
            let Stream::Tcp(tcp) = conn.stream() else {
                unreachable!("a TCP stream")
            };
            assert_eq!(tcp.nodelay().unwrap(), nodelay);
        }
    }

    #[test]
    fn framed_writes_arrive_whole_both_ways() {
        let (a, b) = pair();
        assert!(!a.send(b"/a\0\0,\0\0\0").unwrap());
        assert!(!b.send(b"/b\0\0,\0\0\0").unwrap());
        assert_eq!(read_frames(&b, 1), [b"/a\0\0,\0\0\0".to_vec()]);
        assert_eq!(read_frames(&a, 1), [b"/b\0\0,\0\0\0".to_vec()]);
        a.close();
        assert!(a.send(b"x").is_err());
    }

    #[test]
    fn output_that_does_not_fit_waits_for_flush() {
        let (a, b) = pair();
        let big = vec![7u8; 1 << 20];
        let mut queued = false;
        for _ in 0..8 {
            queued |= a.send(&big).unwrap();
        }
        assert!(queued, "8 MiB should exceed the socket buffer");
        assert!(a.wants_write());
        let mut got = 0;
        let mut reader = b.reader.lock();
        while got < 8 {
            let _ = a.flush();
            let _ = reader.deframer.read_from(&mut b.stream(), 1 << 20);
            while let Some(Ok(f)) = reader.deframer.next_frame() {
                assert_eq!(f.len(), 1 << 20);
                got += 1;
            }
        }
        assert!(a.flush().unwrap());
        assert!(!a.wants_write());
        assert_eq!(a.budget.waiting(), 0);
        // The megabytes the buffer grew to are given back once it is empty.
        assert!(a.out.lock().capacity() <= KEEP_AT_MOST);
    }

    #[test]
    fn output_waiting_across_a_listeners_peers_is_bounded() {
        let budget = PeerBudget::default();
        let chunk = vec![7u8; 256 << 10];
        // More peers that stop reading than the budget holds at 8 MiB each.
        let pairs: Vec<_> = (0..MAX_LISTENER_OUT / MAX_PENDING_OUT + 4)
            .map(|_| pair_sharing(&budget))
            .collect();
        let mut refused_early = 0;
        for (a, _) in &pairs {
            while a.send(&chunk).is_ok() {}
            refused_early += usize::from(a.out.lock().len() < MAX_PENDING_OUT);
        }
        let waiting: usize = pairs.iter().map(|(a, _)| a.out.lock().len()).sum();
        assert_eq!(budget.waiting(), waiting);
        // Past the budget, a peer with nothing queued still takes a frame (the rest of it
        // queued, so that it stays whole), and no more.
        let most = MAX_LISTENER_OUT + pairs.len() * (chunk.len() + 4);
        assert!(waiting <= most, "{waiting} bytes wait");
        assert!(
            refused_early >= 4,
            "only {refused_early} peers were refused early"
        );
        // A peer that reads is still written to, though the others hold the budget.
        let (good, far) = pair_sharing(&budget);
        let mut reader = far.reader.lock();
        for _ in 0..100 {
            good.send(&chunk).unwrap();
            while good.wants_write() {
                good.flush().unwrap();
                let _ = reader.deframer.read_from(&mut far.stream(), 1 << 20);
                while let Some(Ok(_)) = reader.deframer.next_frame() {}
            }
        }
        drop(reader);
        drop((good, far));
        // A peer going gives its share back.
        drop(pairs);
        assert_eq!(budget.waiting(), 0);
    }

    #[test]
    fn a_lone_peer_may_hold_a_frame_as_large_as_allowed() {
        let (a, _) = UnixStream::pair().unwrap();
        let max_frame = 100 << 20;
        let conn = StreamConn::new(
            Stream::Unix(a),
            None,
            None,
            DeframeMode::Fixed(Framing::LengthPrefix),
            max_frame,
            true,
            PeerBudget::default(),
        )
        .unwrap();
        let mut reader = conn.reader.lock();
        // 70 MiB of a 90 MiB frame: over MAX_LISTENER_UNFINISHED, within the channel's limit.
        reader.deframer.push(&(90u32 << 20).to_be_bytes());
        reader.deframer.push(&vec![0; 70 << 20]);
        assert!(reader.deframer.pending() > MAX_LISTENER_UNFINISHED);
        assert!(conn.count_unfinished(&mut reader));
    }

    #[test]
    fn output_for_a_peer_that_stops_reading_is_bounded() {
        let (a, _never_reads) = pair();
        let chunk = vec![7u8; 64 << 10];
        let refusal = |send: &dyn Fn() -> io::Result<bool>| {
            (0..1000)
                .find_map(|_| send().err())
                .expect("sends never refused")
        };
        assert_eq!(
            refusal(&|| a.send(&chunk)).kind(),
            io::ErrorKind::WouldBlock
        );
        // Already-framed output (O2lite's) is held to the same bound.
        let framed = refusal(&|| a.send_framed(&chunk));
        assert_eq!(framed.kind(), io::ErrorKind::WouldBlock);
        assert!(a.out.lock().len() <= MAX_PENDING_OUT + chunk.len() + 4);
    }

    #[test]
    fn connect_without_blocking() {
        let l = Listener::tcp("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = l.local_addr().unwrap();
        // Starts a connect and waits until it is writable (done or failed).
        let connect = || {
            let c = Connecting::start(addr, None).unwrap();
            let mut p = crate::runtime::poller::Poller::default();
            let write = crate::runtime::poller::Interest {
                read: false,
                write: true,
            };
            p.add(c.fd(), write);
            p.wait(Some(std::time::Duration::from_secs(2))).unwrap();
            c
        };
        let stream = connect().finish().unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
        drop(l);
        // Nobody listens there any more: the connect fails, without blocking.
        assert!(connect().finish().is_err());
    }
}
