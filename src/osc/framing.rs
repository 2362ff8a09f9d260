//! Stream framing for OSC over TCP, serial lines and Unix stream sockets.
//!
//! A byte stream has no packet boundaries, so each OSC packet is framed in one
//! of two ways:
//!
//! * [`Framing::LengthPrefix`] (OSC 1.0): a 4-byte big-endian length, then the
//!   packet. What liblo and most OSC 1.0 tools send by default.
//! * [`Framing::Header`]: a length header of another layout (osc4py3's
//!   `read_headerunpack`): some bytes, the packet's length among them.
//! * [`Framing::Slip`] (OSC 1.1): SLIP (RFC 1055) with an END byte before and
//!   after every packet. The receiver also accepts liblo 0.31's single-END form,
//!   which [`Framing::SlipSingleEnd`] sends.
//!
//! This module is sans-IO: [`encode_frame`] appends a framed packet to a
//! caller-owned buffer, and a [`Deframer`] takes received bytes in chunks of
//! any size and hands back complete packets as slices of its own reused
//! buffer. A listener can let the deframer pick the framing from the first
//! bytes of each connection ([`DeframeMode::Detect`]).

use std::collections::VecDeque;
use std::fmt;
use std::io;

/// SLIP frame delimiter.
const END: u8 = 0xC0;
/// SLIP escape byte.
const ESC: u8 = 0xDB;
/// After [`ESC`]: stands for an [`END`] byte inside the packet.
const ESC_END: u8 = 0xDC;
/// After [`ESC`]: stands for an [`ESC`] byte inside the packet.
const ESC_ESC: u8 = 0xDD;
/// Size of the OSC 1.0 length prefix, and of what detection looks at.
const HEADER: usize = 4;
/// Smallest internal buffer allocated, so tiny pushes do not regrow it often.
const MIN_BUFFER: usize = 256;
/// Largest buffer kept once everything in it is taken: one grown for a large frame is given
/// back, so a peer that sent one and then idles does not pin it.
pub(crate) const KEEP_AT_MOST: usize = 256 << 10;
/// Largest length header, in bytes (its size is kept in a byte).
const MAX_HEADER: usize = u8::MAX as usize;

/// The most a deframer's buffer grows to with frames of at most `max_frame` bytes taken
/// in reads of at most 64 KiB (a socket read, a datagram): one frame with its header, and
/// a read that began past it.
pub(crate) fn most_buffered(max_frame: usize) -> usize {
    max_frame
        .saturating_add(MAX_HEADER)
        .saturating_add(64 << 10)
}

/// Default maximum frame size used by the runtime for stream transports (1 MiB).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// How packets are delimited on a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// OSC 1.0: a 4-byte big-endian unsigned length, then the packet.
    LengthPrefix,
    /// OSC 1.1: SLIP (RFC 1055); sent with an END byte before and after each packet.
    Slip,
    /// SLIP sent with an END byte after each packet only (liblo 0.31's form, osc4py3's
    /// `write_slip_flagatstart=False`), for receivers that take a leading END as an empty
    /// packet. Read as [`Framing::Slip`].
    SlipSingleEnd,
    /// A length header of another layout before each packet (osc4py3's
    /// `read_headerunpack`); [`LengthHeader::OSC`] is [`Framing::LengthPrefix`].
    Header(LengthHeader),
}

impl Framing {
    /// The longest packet this framing can carry: what its length field can express.
    #[must_use]
    pub fn max_len(self) -> usize {
        match self {
            Framing::LengthPrefix => LengthHeader::OSC.max_len(),
            Framing::Header(h) => h.max_len(),
            Framing::Slip | Framing::SlipSingleEnd => usize::MAX,
        }
    }

    /// The length header this framing reads and writes, if it has one.
    fn length_header(self) -> Option<LengthHeader> {
        match self {
            Framing::LengthPrefix => Some(LengthHeader::OSC),
            Framing::Header(h) => Some(h),
            Framing::Slip | Framing::SlipSingleEnd => None,
        }
    }
}

/// The layout of a length header: `size` bytes before each packet, of which `width`
/// bytes at offset `at` hold the packet's length (the header not counted), in network
/// (big-endian) or little-endian order. The other bytes of the header are sent as
/// zeros and ignored on receipt. osc4py3's `read_headerunpack=("!HI", 6, 1)` is
/// `LengthHeader::new(6, 2, 4, false)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LengthHeader {
    size: u8,
    at: u8,
    width: u8,
    little_endian: bool,
}

impl LengthHeader {
    /// OSC 1.0's: four bytes, all of them a big-endian length.
    pub const OSC: LengthHeader = LengthHeader {
        size: 4,
        at: 0,
        width: 4,
        little_endian: false,
    };

    /// A header of `size` bytes (at most 255) with a `width`-byte length field (1, 2, 4
    /// or 8) at offset `at`; `None` when the field does not fit in the header.
    #[must_use]
    pub fn new(size: usize, at: usize, width: usize, little_endian: bool) -> Option<LengthHeader> {
        let fits = matches!(width, 1 | 2 | 4 | 8)
            && size <= MAX_HEADER
            && at.checked_add(width).is_some_and(|end| end <= size);
        fits.then_some(LengthHeader {
            size: size as u8,
            at: at as u8,
            width: width as u8,
            // A byte has no order: one value for one layout on the wire.
            little_endian: little_endian && width > 1,
        })
    }

    /// Bytes in the header.
    #[must_use]
    pub fn size(self) -> usize {
        self.size.into()
    }

    /// Offset of the length field in the header.
    #[must_use]
    pub fn at(self) -> usize {
        self.at.into()
    }

    /// Bytes in the length field: 1, 2, 4 or 8.
    #[must_use]
    pub fn width(self) -> usize {
        self.width.into()
    }

    /// True when the length is stored least significant byte first.
    #[must_use]
    pub fn little_endian(self) -> bool {
        self.little_endian
    }

    /// The largest length the field can express.
    #[must_use]
    pub fn max_len(self) -> usize {
        usize::try_from(u64::MAX >> (64 - 8 * u32::from(self.width))).unwrap_or(usize::MAX)
    }

    /// The length in a complete header.
    fn read(self, header: &[u8]) -> usize {
        let (field, width) = (&header[self.at()..self.at() + self.width()], self.width());
        let mut bytes = [0; 8];
        let len = match self.little_endian {
            true => {
                bytes[..width].copy_from_slice(field);
                u64::from_le_bytes(bytes)
            }
            false => {
                bytes[8 - width..].copy_from_slice(field);
                u64::from_be_bytes(bytes)
            }
        };
        usize::try_from(len).unwrap_or(usize::MAX)
    }

    /// Appends a header announcing `len` bytes (at most [`max_len`](Self::max_len)).
    fn write(self, len: usize, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.size(), 0);
        let bytes = (len as u64).to_be_bytes();
        let field = &mut out[start + self.at()..start + self.at() + self.width()];
        field.copy_from_slice(&bytes[8 - self.width()..]);
        if self.little_endian {
            field.reverse();
        }
    }
}

/// How many whole packets `bytes` holds, framed with `framing`: a backlog of framed
/// packets being dropped is reported in packets.
pub(crate) fn count_frames(framing: Framing, bytes: &[u8]) -> u64 {
    let mut d = Deframer::new(DeframeMode::Fixed(framing), bytes.len());
    d.push(bytes);
    std::iter::from_fn(|| d.next_frame().map(drop)).count() as u64
}

/// Appends one framed packet to `out` (does not clear it).
///
/// Never allocates beyond growing `out`. SLIP output is "double END"
/// (`C0 <escaped packet> C0`), which single-END receivers such as liblo also
/// accept. An empty packet becomes `C0 C0` (ignored by SLIP receivers) or a
/// zero length prefix (reported as [`FrameError::EmptyFrame`] by a [`Deframer`]).
///
/// # Panics
///
/// If `packet` is longer than [`framing.max_len()`](Framing::max_len) (`u32::MAX` bytes
/// for the OSC 1.0 prefix), since the length cannot be expressed in the header.
pub fn encode_frame(framing: Framing, packet: &[u8], out: &mut Vec<u8>) {
    match framing.length_header() {
        Some(header) => {
            assert!(
                packet.len() <= header.max_len(),
                "a {}-byte packet does not fit a {}-byte length field",
                packet.len(),
                header.width()
            );
            out.reserve(header.size() + packet.len());
            header.write(packet.len(), out);
            out.extend_from_slice(packet);
        }
        None => {
            // Reserve the exact size up front so `out` grows at most once.
            let specials = packet.iter().filter(|&&b| b == END || b == ESC).count();
            out.reserve(packet.len() + specials + 2);
            if framing == Framing::Slip {
                out.push(END);
            }
            let mut rest = packet;
            while let Some(i) = rest.iter().position(|&b| b == END || b == ESC) {
                out.extend_from_slice(&rest[..i]);
                out.push(ESC);
                out.push(if rest[i] == END { ESC_END } else { ESC_ESC });
                rest = &rest[i + 1..];
            }
            out.extend_from_slice(rest);
            out.push(END);
        }
    }
}

/// What the deframer expects on its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeframeMode {
    /// The framing is known in advance (connecting side, or configured listener).
    Fixed(Framing),
    /// Decide from the first bytes of the connection (listening side), as liblo
    /// does, but also recognise SLIP that starts with `C0 #` (a bundle first).
    Detect,
}

/// A problem found in the received byte stream.
///
/// Only [`FrameError::TooLarge`] is fatal; after the others the deframer has
/// already resynchronised and keeps producing frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// length prefix above the cap: fatal, the stream cannot be resynchronised
    TooLarge {
        /// Length announced by the prefix.
        len: usize,
        /// The deframer's maximum frame size.
        max: usize,
    },
    /// a SLIP packet grew past the cap: dropped, resynchronised at the next END (not fatal)
    SlipTooLarge {
        /// The deframer's maximum frame size.
        max: usize,
    },
    /// ESC followed by another byte: packet dropped (not fatal)
    BadEscape {
        /// The byte that followed ESC (`0xC0` if the packet ended right after ESC).
        byte: u8,
    },
    /// length prefix of zero (not fatal)
    EmptyFrame,
}

impl FrameError {
    /// True if the stream cannot continue: the caller should drop the connection.
    ///
    /// A bad length prefix leaves no way to find the next frame boundary.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::TooLarge { .. })
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::TooLarge { len, max } => write!(
                f,
                "length prefix announces {len} bytes, more than the {max}-byte frame limit"
            ),
            FrameError::SlipTooLarge { max } => {
                write!(
                    f,
                    "SLIP packet longer than the {max}-byte frame limit, dropped"
                )
            }
            FrameError::BadEscape { byte } => {
                write!(f, "invalid SLIP escape 0xDB 0x{byte:02X}, packet dropped")
            }
            FrameError::EmptyFrame => f.write_str("zero-length frame"),
        }
    }
}

impl std::error::Error for FrameError {}

/// One queued result, relative to the consumed prefix of the buffer, so that
/// compaction never has to adjust the queue.
#[derive(Debug, Clone, Copy)]
enum Item {
    /// Skip `skip` bytes (a length prefix), then `len` bytes are a frame.
    Frame { skip: usize, len: usize },
    /// Skip `skip` bytes, then report `err`.
    Error { skip: usize, err: FrameError },
}

/// Where the SLIP decoder is inside the current packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlipState {
    /// Collecting packet bytes.
    Normal,
    /// The previous byte was ESC.
    Escaped,
    /// The current packet is invalid: skip everything up to the next END.
    Discard,
}

/// Incremental, sans-IO deframer for one stream connection.
///
/// Feed it bytes with [`push`](Deframer::push) (or [`read_from`](Deframer::read_from))
/// and drain [`next_frame`](Deframer::next_frame) until it returns `None`.
/// Bytes are processed as they arrive: frames and error events are queued and
/// the frames stay in one internal buffer that is reused, so once it has grown
/// to the working size no allocation happens per frame. Consumed bytes are
/// compacted away lazily, not per frame.
///
/// Memory is bounded: a frame above the cap is never buffered (a bad length
/// prefix is rejected from its header; an oversize SLIP packet is
/// discarded as it arrives), so apart from frames waiting to be taken the
/// buffer holds at most one partial frame of at most `max_frame` bytes.
pub struct Deframer {
    /// Chosen framing; `None` while [`DeframeMode::Detect`] is still undecided.
    framing: Option<Framing>,
    max_frame: usize,
    /// Bytes seen before detection decided (at most 4).
    detect: [u8; HEADER],
    detect_len: usize,
    /// Frame storage. Its length is the initialised size, not the used part,
    /// so reading into it needs no zeroing once grown.
    buf: Vec<u8>,
    /// Start of the bytes not yet returned by `next_frame`.
    head: usize,
    /// Start of the frame being assembled (the queue covers `head..frame_start`).
    frame_start: usize,
    /// End of the used part of `buf`.
    end: usize,
    queue: VecDeque<Item>,
    slip: SlipState,
    /// A fatal error was found: further input is ignored.
    closed: bool,
    /// The fatal error, once `next_frame` has reported it.
    fatal: Option<FrameError>,
    /// Reused read buffer for `read_from` when bytes cannot go straight into `buf`.
    scratch: Vec<u8>,
}

impl fmt::Debug for Deframer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deframer")
            .field("framing", &self.framing)
            .field("max_frame", &self.max_frame)
            .field("pending", &self.pending())
            .field("queued", &self.queue.len())
            .field("fatal", &self.fatal)
            .finish_non_exhaustive()
    }
}

impl Deframer {
    /// Creates a deframer; `max_frame` caps the size of one packet in bytes
    /// (the runtime uses [`DEFAULT_MAX_FRAME`]). Allocates nothing until bytes arrive.
    #[must_use]
    pub fn new(mode: DeframeMode, max_frame: usize) -> Deframer {
        Deframer {
            framing: match mode {
                DeframeMode::Fixed(Framing::SlipSingleEnd) => Some(Framing::Slip),
                DeframeMode::Fixed(f) => Some(f),
                DeframeMode::Detect => None,
            },
            max_frame,
            detect: [0; HEADER],
            detect_len: 0,
            buf: Vec::new(),
            head: 0,
            frame_start: 0,
            end: 0,
            queue: VecDeque::new(),
            slip: SlipState::Normal,
            closed: false,
            fatal: None,
            scratch: Vec::new(),
        }
    }

    /// The framing in use: None while Detect has not decided yet.
    #[must_use]
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// The maximum packet size given to [`Deframer::new`].
    #[must_use]
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes buffered and not yet returned as frames (e.g. half a frame).
    ///
    /// Used by the transport to detect a peer that sends half a frame forever.
    /// For SLIP the partial packet is counted after unescaping; bytes being
    /// discarded (an oversize or badly escaped SLIP packet) are not counted,
    /// since they are not kept.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.end - self.head + self.detect_len
    }

    /// Memory kept for an unfinished packet: the whole buffer while any of a packet waits
    /// in it (one grown for a large frame stays that large while the next one begins),
    /// nothing otherwise. What a budget across peers counts.
    #[must_use]
    pub fn held(&self) -> usize {
        match self.pending() {
            0 => 0,
            n => n.max(self.buf.len()),
        }
    }

    /// Moves what is kept into a buffer of the next power of two in size, giving back the
    /// rest of one grown for a larger frame (for a budget that is full). Not smaller: a
    /// frame still arriving grows the buffer again by doubling, which the next shrink
    /// would undo, copying what is kept at every read.
    pub fn shrink(&mut self) {
        let kept = self.end - self.head;
        let size = kept
            .checked_next_power_of_two()
            .unwrap_or(kept)
            .max(MIN_BUFFER);
        if self.buf.len() > size {
            let mut buf = Vec::with_capacity(size);
            buf.extend_from_slice(&self.buf[self.head..self.end]);
            buf.resize(size, 0);
            self.frame_start -= self.head;
            self.end -= self.head;
            self.head = 0;
            self.buf = buf;
        }
    }

    /// Inside a packet: bytes of it are kept, or it is being skipped to its end (an
    /// oversize or badly escaped SLIP packet, of which nothing is kept). A peer silent
    /// here has left a packet unfinished.
    #[must_use]
    pub fn mid_packet(&self) -> bool {
        self.pending() > 0 || self.slip != SlipState::Normal
    }

    /// Appends received bytes.
    ///
    /// Cheap: bytes are copied into the internal buffer (SLIP is unescaped on
    /// the way) and complete frames are queued for [`next_frame`](Deframer::next_frame).
    /// After a fatal error the bytes are ignored.
    pub fn push(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if self.framing.is_none() {
            bytes = self.detect_from(bytes);
        }
        match self.framing {
            None => {}
            Some(Framing::LengthPrefix | Framing::Header(_)) => self.push_length_prefixed(bytes),
            Some(Framing::Slip | Framing::SlipSingleEnd) => self.push_slip(bytes),
        }
    }

    /// Reads once from `r` (at most `max` bytes) and processes what arrived.
    ///
    /// Returns the byte count from `r.read`, so `Ok(0)` means end of stream
    /// (or `max == 0`). With a length prefix the bytes are read straight into
    /// the frame buffer, saving the copy [`push`](Deframer::push) makes; for
    /// SLIP and undecided detection they go through a reused scratch buffer
    /// and are unescaped from there.
    ///
    /// # Errors
    ///
    /// Whatever `r.read` returns (including `Interrupted` and `WouldBlock`);
    /// the deframer is unchanged then and the call can simply be retried.
    pub fn read_from<R: io::Read>(&mut self, r: &mut R, max: usize) -> io::Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        let length_prefixed = matches!(
            self.framing,
            Some(Framing::LengthPrefix | Framing::Header(_))
        );
        if length_prefixed && !self.closed {
            self.reserve(max);
            let n = r.read(&mut self.buf[self.end..self.end + max])?;
            self.end += n;
            self.scan_length_prefixed();
            return Ok(n);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        if scratch.len() < max {
            scratch.resize(max, 0);
        }
        let result = r.read(&mut scratch[..max]);
        if let Ok(n) = result {
            self.push(&scratch[..n]);
        }
        self.scratch = scratch;
        result
    }

    /// Next complete frame, an error event, or None when more bytes are needed.
    ///
    /// After a fatal error every later call returns the same error.
    pub fn next_frame(&mut self) -> Option<Result<&[u8], FrameError>> {
        if let Some(err) = self.fatal {
            return Some(Err(err));
        }
        if self.head == self.end && self.buf.len() > KEEP_AT_MOST {
            (self.head, self.frame_start, self.end) = (0, 0, 0);
            self.buf = Vec::new();
        }
        match self.queue.pop_front()? {
            Item::Frame { skip, len } => {
                let start = self.head + skip;
                self.head = start + len;
                Some(Ok(&self.buf[start..start + len]))
            }
            Item::Error { skip, err } => {
                self.head += skip;
                if err.is_fatal() {
                    self.fatal = Some(err);
                }
                Some(Err(err))
            }
        }
    }

    /// Collects the first bytes of the connection until the framing can be
    /// decided; returns the input not consumed (all of it once decided, with
    /// the collected bytes already fed to the chosen framing).
    fn detect_from<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        if self.detect_len == 0 && bytes.first() == Some(&END) {
            // A leading END can only be SLIP: as a length it would be over 3 GiB.
            self.framing = Some(Framing::Slip);
            return bytes;
        }
        let take = (HEADER - self.detect_len).min(bytes.len());
        self.detect[self.detect_len..self.detect_len + take].copy_from_slice(&bytes[..take]);
        self.detect_len += take;
        if self.detect_len < HEADER {
            return &[];
        }
        let first = self.detect;
        self.detect_len = 0;
        if looks_like_osc_start(first) {
            self.framing = Some(Framing::Slip);
            self.push_slip(&first);
        } else {
            self.framing = Some(Framing::LengthPrefix);
            self.push_length_prefixed(&first);
        }
        &bytes[take..]
    }

    /// Makes room for `n` more bytes at `end`, compacting consumed bytes first
    /// when that avoids growing or when they fill more than half the buffer.
    fn reserve(&mut self, n: usize) {
        if self.head == self.end {
            // Nothing pending: restart at the front for free.
            self.head = 0;
            self.frame_start = 0;
            self.end = 0;
        } else if self.head > 0 && (self.buf.len() - self.end < n || self.head > self.buf.len() / 2)
        {
            self.buf.copy_within(self.head..self.end, 0);
            self.frame_start -= self.head;
            self.end -= self.head;
            self.head = 0;
        }
        if self.buf.len() - self.end < n {
            // Doubling, but not past what one partial frame (header included) and this
            // read can need: a full-size frame does not pin twice its size.
            let enough = self.max_frame.saturating_add(MAX_HEADER).saturating_add(n);
            let doubled = (self.buf.len() * 2).min(enough);
            let want = (self.end + n).max(doubled).max(MIN_BUFFER);
            // Exactly: `resize` alone may double the capacity past the cap.
            self.buf.reserve_exact(want - self.buf.len());
            self.buf.resize(want, 0);
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Length-prefix input: copies at most up to the end of the current header
    /// or frame, then checks it, so the body of an oversize frame is never copied.
    fn push_length_prefixed(&mut self, mut bytes: &[u8]) {
        let header = self.length_header().size();
        while !bytes.is_empty() && !self.closed {
            let have = self.end - self.frame_start;
            let need = if have < header {
                header - have
            } else {
                // The header was accepted by `scan_length_prefixed`, so it is
                // within the cap and the frame is still incomplete (a length near
                // `usize::MAX` is possible with an eight-byte field and no cap).
                self.announced_len() - (have - header)
            };
            let take = need.min(bytes.len());
            self.append(&bytes[..take]);
            bytes = &bytes[take..];
            self.scan_length_prefixed();
        }
    }

    /// The length header of the framing in use (detection only ever picks OSC 1.0's).
    fn length_header(&self) -> LengthHeader {
        self.framing
            .and_then(Framing::length_header)
            .unwrap_or(LengthHeader::OSC)
    }

    /// Length announced by the header at `frame_start` (which must be complete).
    fn announced_len(&self) -> usize {
        self.length_header().read(&self.buf[self.frame_start..])
    }

    /// Queues every complete length-prefixed frame after `frame_start`.
    fn scan_length_prefixed(&mut self) {
        let header = self.length_header().size();
        while !self.closed && self.end - self.frame_start >= header {
            let len = self.announced_len();
            if len > self.max_frame {
                // No way to find the next boundary: drop the rest for good.
                let err = FrameError::TooLarge {
                    len,
                    max: self.max_frame,
                };
                self.queue.push_back(Item::Error { skip: 0, err });
                self.end = self.frame_start;
                self.closed = true;
            } else if len == 0 {
                self.queue.push_back(Item::Error {
                    skip: header,
                    err: FrameError::EmptyFrame,
                });
                self.frame_start += header;
            } else if self.end - self.frame_start - header >= len {
                self.queue.push_back(Item::Frame { skip: header, len });
                self.frame_start += header + len;
            } else {
                break;
            }
        }
    }

    /// SLIP input: unescapes into the buffer run by run, queueing a frame at
    /// each END that closes a non-empty packet.
    fn push_slip(&mut self, mut bytes: &[u8]) {
        while let Some((&byte, rest)) = bytes.split_first() {
            match self.slip {
                SlipState::Discard => match bytes.iter().position(|&b| b == END) {
                    Some(i) => {
                        bytes = &bytes[i + 1..];
                        self.slip = SlipState::Normal;
                    }
                    None => return,
                },
                SlipState::Escaped => {
                    bytes = rest;
                    match byte {
                        ESC_END => self.slip_put(&[END]),
                        ESC_ESC => self.slip_put(&[ESC]),
                        _ => {
                            self.slip_drop(FrameError::BadEscape { byte });
                            if byte == END {
                                // The END still marks a boundary: resynchronised.
                                self.slip = SlipState::Normal;
                            }
                        }
                    }
                }
                SlipState::Normal => {
                    let run = bytes
                        .iter()
                        .position(|&b| b == END || b == ESC)
                        .unwrap_or(bytes.len());
                    if run > 0 {
                        self.slip_put(&bytes[..run]);
                        bytes = &bytes[run..];
                    } else if byte == END {
                        bytes = rest;
                        // Runs of END and empty packets produce nothing.
                        if self.end > self.frame_start {
                            let len = self.end - self.frame_start;
                            self.queue.push_back(Item::Frame { skip: 0, len });
                            self.frame_start = self.end;
                        }
                    } else {
                        bytes = rest;
                        self.slip = SlipState::Escaped;
                    }
                }
            }
        }
    }

    /// Adds unescaped bytes to the current SLIP packet, enforcing the cap.
    fn slip_put(&mut self, bytes: &[u8]) {
        if self.end - self.frame_start + bytes.len() > self.max_frame {
            self.slip_drop(FrameError::SlipTooLarge {
                max: self.max_frame,
            });
        } else {
            self.append(bytes);
            self.slip = SlipState::Normal;
        }
    }

    /// Drops the current SLIP packet, reports `err` and skips to the next END.
    fn slip_drop(&mut self, err: FrameError) {
        self.end = self.frame_start;
        self.queue.push_back(Item::Error { skip: 0, err });
        self.slip = SlipState::Discard;
    }
}

/// True if the first four bytes of a connection look like an OSC packet sent
/// with SLIP but without a leading END (liblo 0.31): `#bun`, or `/` followed by
/// printable ASCII. NUL counts as well once the address has ended, because a
/// short address such as `/x` is padded with NULs (`/x\0\0`). As a length
/// prefix such bytes would announce more than 580 MB, so nothing real is lost.
fn looks_like_osc_start(first: [u8; HEADER]) -> bool {
    if &first == b"#bun" {
        return true;
    }
    if first[0] != b'/' {
        return false;
    }
    let mut ended = false;
    first[1..].iter().all(|&b| {
        if b == 0 {
            ended = true;
            true
        } else {
            !ended && (0x20..=0x7E).contains(&b)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/osc-vectors.json"
    );

    /// Small deterministic PRNG (xorshift64*), so tests need no crate.
    struct Rng(u64);

    impl Rng {
        fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform-ish in `lo..=hi`.
        fn range(&mut self, lo: usize, hi: usize) -> usize {
            lo + (self.next() % (hi - lo + 1) as u64) as usize
        }
        /// A byte biased towards the SLIP special bytes.
        fn byte(&mut self) -> u8 {
            match self.next() % 8 {
                0 => END,
                1 => ESC,
                2 => ESC_END,
                3 => ESC_ESC,
                _ => self.next() as u8,
            }
        }
    }

    use crate::osc::unhex;

    /// Drains every frame and error currently available.
    fn drain(d: &mut Deframer) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        while let Some(r) = d.next_frame() {
            let fatal = matches!(r, Err(e) if e.is_fatal());
            out.push(r.map(<[u8]>::to_vec));
            if fatal {
                break;
            }
        }
        out
    }

    /// Frames only; panics on any error event.
    fn frames(d: &mut Deframer) -> Vec<Vec<u8>> {
        drain(d)
            .into_iter()
            .map(|r| r.expect("unexpected frame error"))
            .collect()
    }

    /// Pushes `stream` in chunks chosen by `chunk` and collects the frames,
    /// draining after every push as a transport would.
    fn run(
        mode: DeframeMode,
        max: usize,
        stream: &[u8],
        mut chunk: impl FnMut() -> usize,
    ) -> Vec<Vec<u8>> {
        let mut d = Deframer::new(mode, max);
        let mut got = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let n = chunk().clamp(1, rest.len());
            d.push(&rest[..n]);
            rest = &rest[n..];
            got.extend(frames(&mut d));
        }
        assert_eq!(d.pending(), 0, "bytes left over");
        got
    }

    /// A reader returning the stream in random-sized pieces.
    struct ChunkReader<'a> {
        data: &'a [u8],
        rng: Rng,
    }

    impl io::Read for ChunkReader<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.rng.range(1, 37).min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn run_reader(mode: DeframeMode, max: usize, stream: &[u8], seed: u64) -> Vec<Vec<u8>> {
        let mut d = Deframer::new(mode, max);
        let mut r = ChunkReader {
            data: stream,
            rng: Rng::new(seed),
        };
        let mut got = Vec::new();
        let mut rng = Rng::new(seed ^ 0xABCD);
        loop {
            let n = d.read_from(&mut r, rng.range(1, 64)).unwrap();
            got.extend(frames(&mut d));
            if n == 0 {
                break;
            }
        }
        assert_eq!(d.pending(), 0, "bytes left over");
        got
    }

    /// All the ways of feeding `stream`; each must yield `packets`.
    fn check_all_chunkings(mode: DeframeMode, max: usize, stream: &[u8], packets: &[Vec<u8>]) {
        assert_eq!(
            run(mode, max, stream, || usize::MAX),
            packets,
            "{mode:?} whole"
        );
        assert_eq!(
            run(mode, max, stream, || 1),
            packets,
            "{mode:?} byte by byte"
        );
        for seed in 1..=20 {
            let mut rng = Rng::new(seed);
            let got = run(mode, max, stream, || rng.range(1, 23));
            assert_eq!(got, packets, "{mode:?} random chunks, seed {seed}");
            let got = run_reader(mode, max, stream, seed);
            assert_eq!(got, packets, "{mode:?} read_from, seed {seed}");
        }
    }

    #[test]
    fn stream_framing_vectors() {
        let text = std::fs::read_to_string(VECTORS).expect("read osc-vectors.json");
        let json: serde_json::Value = serde_json::from_str(&text).expect("parse vectors");
        let vectors = json["stream_framing"]
            .as_array()
            .expect("stream_framing array");
        assert_eq!(vectors.len(), 4);
        let mut encoded = 0;
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            let stream = unhex(v["stream_hex"].as_str().unwrap());
            let packets: Vec<Vec<u8>> = v["packets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| unhex(p.as_str().unwrap()))
                .collect();
            let framing = if v["framing"].as_str().unwrap().contains("SLIP") {
                Framing::Slip
            } else {
                Framing::LengthPrefix
            };

            for mode in [DeframeMode::Fixed(framing), DeframeMode::Detect] {
                check_all_chunkings(mode, DEFAULT_MAX_FRAME, &stream, &packets);
            }
            let mut d = Deframer::new(DeframeMode::Detect, DEFAULT_MAX_FRAME);
            d.push(&stream);
            assert_eq!(d.framing(), Some(framing), "{name}: detected framing");

            // Single-END SLIP (no leading C0) is receive-only; rosco sends double END.
            if framing == Framing::Slip && stream[0] != END {
                continue;
            }
            let mut out = Vec::new();
            for p in &packets {
                encode_frame(framing, p, &mut out);
            }
            assert_eq!(out, stream, "{name}: encode_frame");
            encoded += 1;
        }
        assert_eq!(
            encoded, 3,
            "double-END SLIP and length-prefix vectors re-encoded"
        );
    }

    #[test]
    fn random_round_trips() {
        for seed in 1..=30u64 {
            let mut rng = Rng::new(seed);
            let packets: Vec<Vec<u8>> = (0..rng.range(1, 60))
                .map(|_| {
                    let len = rng.range(1, 300);
                    (0..len).map(|_| rng.byte()).collect()
                })
                .collect();
            for framing in [Framing::LengthPrefix, Framing::Slip] {
                let mut stream = Vec::new();
                for p in &packets {
                    encode_frame(framing, p, &mut stream);
                }
                for mode in [DeframeMode::Fixed(framing), DeframeMode::Detect] {
                    let mut chunks = Rng::new(seed * 7 + 1);
                    let got = run(mode, 300, &stream, || chunks.range(1, 700));
                    assert_eq!(got, packets, "{framing:?} {mode:?} seed {seed}");
                    assert_eq!(run(mode, 300, &stream, || 1), packets);
                    assert_eq!(run_reader(mode, 300, &stream, seed), packets);
                }
            }
        }
    }

    #[test]
    fn custom_length_headers() {
        // osc4py3's ("!HI", 6, 1): two bytes of something, then a big-endian u32.
        let h = LengthHeader::new(6, 2, 4, false).unwrap();
        let mut out = Vec::new();
        encode_frame(Framing::Header(h), b"/a\0\0", &mut out);
        assert_eq!(out, [0, 0, 0, 0, 0, 4, b'/', b'a', 0, 0]);
        let le = LengthHeader::new(3, 1, 2, true).unwrap();
        out.clear();
        encode_frame(Framing::Header(le), &[7; 258], &mut out);
        assert_eq!(out[..3], [0, 2, 1]);
        // What else the header holds is ignored on receipt.
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::Header(h)), 64);
        d.push(&[0xAB, 0xCD, 0, 0, 0, 4, b'/', b'b', 0, 0, 0xFF]);
        assert_eq!(frames(&mut d), [b"/b\0\0".to_vec()]);
        assert_eq!(d.pending(), 1);

        assert_eq!(
            Framing::Header(LengthHeader::OSC).max_len(),
            u32::MAX as usize
        );
        assert_eq!(Framing::LengthPrefix.max_len(), u32::MAX as usize);
        assert_eq!(LengthHeader::new(1, 0, 1, false).unwrap().max_len(), 255);
        assert_eq!(le.max_len(), 65535);
        assert_eq!(Framing::Slip.max_len(), usize::MAX);
        let refused = [
            (4, 1, 4),
            (2, 0, 3),
            (256, 0, 4),
            (0, 0, 1),
            (4, usize::MAX, 1),
        ];
        for (size, at, width) in refused {
            assert_eq!(
                LengthHeader::new(size, at, width, false),
                None,
                "{size} {at} {width}"
            );
        }
        assert_eq!(
            LengthHeader::new(1, 0, 1, true),
            LengthHeader::new(1, 0, 1, false)
        );
        // An eight-byte length beyond the cap is fatal like the OSC prefix's.
        let wide = LengthHeader::new(8, 0, 8, true).unwrap();
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::Header(wide)), 64);
        d.push(&[0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(
            d.next_frame(),
            Some(Err(FrameError::TooLarge { .. }))
        ));
        // With no cap, the largest length waits for its bytes without overflowing.
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::Header(wide)), usize::MAX);
        d.push(&[0xFF; 9]);
        assert!(d.next_frame().is_none());
        assert_eq!(d.pending(), 9);

        let layouts = [
            (6, 2, 4, false),
            (2, 0, 2, true),
            (1, 0, 1, false),
            (12, 3, 8, true),
        ];
        for (seed, (size, at, width, little)) in (1..).zip(layouts) {
            let framing = Framing::Header(LengthHeader::new(size, at, width, little).unwrap());
            let mut rng = Rng::new(seed);
            let packets: Vec<Vec<u8>> = (0..40)
                .map(|_| (0..rng.range(1, 255)).map(|_| rng.byte()).collect())
                .collect();
            let mut stream = Vec::new();
            for p in &packets {
                encode_frame(framing, p, &mut stream);
            }
            check_all_chunkings(DeframeMode::Fixed(framing), 255, &stream, &packets);
        }
    }

    #[test]
    #[should_panic(expected = "does not fit a 1-byte length field")]
    fn a_packet_too_long_for_its_header_panics() {
        let tiny = LengthHeader::new(1, 0, 1, false).unwrap();
        encode_frame(Framing::Header(tiny), &[0; 256], &mut Vec::new());
    }

    #[test]
    fn encode_appends_and_escapes() {
        let mut out = vec![0xAA];
        encode_frame(Framing::Slip, &[1, END, 2, ESC, 3], &mut out);
        assert_eq!(out, [0xAA, END, 1, ESC, ESC_END, 2, ESC, ESC_ESC, 3, END]);
        encode_frame(Framing::LengthPrefix, b"/x\0\0", &mut out);
        assert_eq!(&out[10..], [0, 0, 0, 4, b'/', b'x', 0, 0]);
        let mut empty = Vec::new();
        encode_frame(Framing::Slip, &[], &mut empty);
        assert_eq!(empty, [END, END]);
    }

    #[test]
    fn single_end_slip_is_read_as_slip() {
        let mut stream = Vec::new();
        // "/a" ,b with the blob C0 DB: no END before, the specials escaped, END after.
        let blob = b"/a\0\0,b\0\0\0\0\0\x02\xC0\xDB\0\0";
        encode_frame(Framing::SlipSingleEnd, blob, &mut stream);
        assert_eq!(stream[..12], blob[..12]);
        assert_eq!(stream[12..], [ESC, ESC_END, ESC, ESC_ESC, 0, 0, END]);
        encode_frame(Framing::SlipSingleEnd, b"/b\0\0", &mut stream);
        let fixed = Deframer::new(DeframeMode::Fixed(Framing::SlipSingleEnd), 64);
        assert_eq!(fixed.framing(), Some(Framing::Slip));
        for mut d in [fixed, Deframer::new(DeframeMode::Detect, 64)] {
            d.push(&stream);
            assert_eq!(d.next_frame().unwrap().unwrap(), blob);
            assert_eq!(d.next_frame().unwrap().unwrap(), b"/b\0\0");
            assert!(d.next_frame().is_none());
        }
    }

    #[test]
    fn buffer_is_reused_not_regrown() {
        let mut rng = Rng::new(99);
        for framing in [Framing::LengthPrefix, Framing::Slip] {
            let mut stream = Vec::new();
            let mut count = 0;
            for _ in 0..2000 {
                let len = rng.range(1, 100);
                let p: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
                encode_frame(framing, &p, &mut stream);
                count += 1;
            }
            let mut d = Deframer::new(DeframeMode::Fixed(framing), 100);
            let mut seen = 0;
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let n = rng.range(1, 150).min(rest.len());
                d.push(&rest[..n]);
                rest = &rest[n..];
                seen += frames(&mut d).len();
                // One partial frame plus one chunk, doubled at most once or twice.
                assert!(d.buf.len() <= 1024, "buffer grew to {}", d.buf.len());
            }
            assert_eq!(seen, count);
            assert!(d.queue.capacity() <= 64);
        }
    }

    #[test]
    fn detection() {
        let cases: [(&[u8], Option<Framing>); 12] = [
            (b"\xC0#bundle\0", Some(Framing::Slip)),
            (b"\xC0/", Some(Framing::Slip)),
            (b"\xC0", Some(Framing::Slip)),
            (b"/abc", Some(Framing::Slip)),
            (b"/x\0\0", Some(Framing::Slip)),
            (b"#bun", Some(Framing::Slip)),
            (b"\0\0\0\x0c", Some(Framing::LengthPrefix)),
            (b"\0\0\0", None),
            (b"/ab", None),
            (b"/a\0b", Some(Framing::LengthPrefix)),
            (b"/a\nb", Some(Framing::LengthPrefix)),
            (b"#bux", Some(Framing::LengthPrefix)),
        ];
        for (bytes, want) in cases {
            let mut d = Deframer::new(DeframeMode::Detect, DEFAULT_MAX_FRAME);
            d.push(bytes);
            assert_eq!(d.framing(), want, "{bytes:02x?}");
            if want.is_none() {
                assert_eq!(d.pending(), bytes.len());
                assert!(d.next_frame().is_none());
            }
        }

        // Decided once, fixed for the connection: a later C0 does not switch to SLIP.
        let mut d = Deframer::new(DeframeMode::Detect, DEFAULT_MAX_FRAME);
        for b in [0, 0, 0, 4, b'/', b'x', 0, 0] {
            d.push(&[b]);
        }
        assert_eq!(frames(&mut d), [b"/x\0\0".to_vec()]);
        d.push(&[0, 0, 0, 2, END, END]);
        assert_eq!(frames(&mut d), [vec![END, END]]);
        assert_eq!(d.framing(), Some(Framing::LengthPrefix));

        // The python-osc case liblo gets wrong: a bundle first on a SLIP connection.
        let bundle = b"#bundle\0\0\0\0\0\0\0\0\x01".to_vec();
        let mut stream = Vec::new();
        encode_frame(Framing::Slip, &bundle, &mut stream);
        encode_frame(Framing::Slip, b"/a\0\0,\0\0\0", &mut stream);
        let got = run(DeframeMode::Detect, DEFAULT_MAX_FRAME, &stream, || 1);
        assert_eq!(got, [bundle, b"/a\0\0,\0\0\0".to_vec()]);

        // Fixed modes never detect.
        let d = Deframer::new(DeframeMode::Fixed(Framing::Slip), 16);
        assert_eq!(d.framing(), Some(Framing::Slip));
    }

    #[test]
    fn runs_of_end_are_one_boundary() {
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::Slip), 16);
        d.push(&[
            END, END, END, b'a', END, END, END, END, b'b', b'c', END, END,
        ]);
        assert_eq!(frames(&mut d), [b"a".to_vec(), b"bc".to_vec()]);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn oversize_length_prefix_is_fatal() {
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::LengthPrefix), 16);
        let mut stream = Vec::new();
        encode_frame(Framing::LengthPrefix, b"ok", &mut stream);
        stream.extend_from_slice(&17u32.to_be_bytes());
        stream.extend_from_slice(&[7; 17]);
        encode_frame(Framing::LengthPrefix, b"lost", &mut stream);
        d.push(&stream);
        // The body was never kept.
        assert_eq!(d.pending(), 2 + 4);
        assert_eq!(d.next_frame(), Some(Ok(&b"ok"[..])));
        let err = FrameError::TooLarge { len: 17, max: 16 };
        assert!(err.is_fatal());
        for _ in 0..3 {
            assert_eq!(d.next_frame(), Some(Err(err)));
        }
        d.push(&stream);
        assert_eq!(d.next_frame(), Some(Err(err)));
        assert_eq!(d.pending(), 0);

        // Detected from the header alone, before any body byte arrives.
        let mut d = Deframer::new(DeframeMode::Detect, DEFAULT_MAX_FRAME);
        d.push(&[0x7F, 0xFF, 0xFF]);
        assert!(d.next_frame().is_none());
        d.push(&[0xFF]);
        let err = FrameError::TooLarge {
            len: 0x7FFF_FFFF,
            max: DEFAULT_MAX_FRAME,
        };
        assert_eq!(d.next_frame(), Some(Err(err)));
        assert_eq!(d.pending(), 0);
        let mut reader: &[u8] = &[1, 2, 3];
        assert_eq!(d.read_from(&mut reader, 16).unwrap(), 3);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.next_frame(), Some(Err(err)));
    }

    #[test]
    fn exact_cap_is_accepted() {
        let packet = [END; 16];
        for framing in [Framing::LengthPrefix, Framing::Slip] {
            let mut stream = Vec::new();
            encode_frame(framing, &packet, &mut stream);
            let got = run(DeframeMode::Fixed(framing), 16, &stream, || 1);
            assert_eq!(got, [packet.to_vec()], "{framing:?}");
        }
    }

    #[test]
    fn oversize_slip_is_dropped_without_buffering() {
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::Slip), 16);
        let mut errors = Vec::new();
        d.push(&[END]);
        for _ in 0..100 {
            d.push(&[b'x'; 10]);
            assert!(d.pending() <= 16, "pending {}", d.pending());
            errors.extend(drain(&mut d));
        }
        assert!(d.buf.len() <= MIN_BUFFER, "buffer grew to {}", d.buf.len());
        assert_eq!(errors, [Err(FrameError::SlipTooLarge { max: 16 })]);
        assert!(!FrameError::SlipTooLarge { max: 16 }.is_fatal());
        d.push(&[b'y', END]);
        assert!(d.next_frame().is_none(), "tail of the oversize packet");
        let mut good = Vec::new();
        encode_frame(Framing::Slip, b"/ok", &mut good);
        d.push(&good);
        assert_eq!(frames(&mut d), [b"/ok".to_vec()]);

        // Whole in one push: still reported once, then the next packet.
        let mut stream = vec![END];
        stream.extend_from_slice(&[b'z'; 1000]);
        stream.extend_from_slice(&good);
        let mut d = Deframer::new(DeframeMode::Detect, 16);
        d.push(&stream);
        assert!(d.buf.len() <= MIN_BUFFER, "buffer grew to {}", d.buf.len());
        assert_eq!(
            drain(&mut d),
            [
                Err(FrameError::SlipTooLarge { max: 16 }),
                Ok(b"/ok".to_vec())
            ]
        );
    }

    #[test]
    fn bad_escape_drops_one_packet() {
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::Slip), 64);
        d.push(&[END, b'a', ESC, 0x41, b'b', END, b'g', b'o', b'o', b'd', END]);
        assert_eq!(
            drain(&mut d),
            [
                Err(FrameError::BadEscape { byte: 0x41 }),
                Ok(b"good".to_vec())
            ]
        );

        // ESC then END: the END still ends the bad packet.
        d.push(&[b'a', ESC, END, b'n', b'e', b'x', b't', END]);
        assert_eq!(
            drain(&mut d),
            [
                Err(FrameError::BadEscape { byte: END }),
                Ok(b"next".to_vec())
            ]
        );

        // ESC ESC, split across pushes.
        d.push(&[END, b'a', ESC]);
        d.push(&[ESC, ESC_END, b'q', END, b'k', END]);
        assert_eq!(
            drain(&mut d),
            [Err(FrameError::BadEscape { byte: ESC }), Ok(b"k".to_vec())]
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn zero_length_frame_is_reported_and_skipped() {
        let mut stream = vec![0, 0, 0, 0];
        encode_frame(Framing::LengthPrefix, b"/a\0\0", &mut stream);
        stream.extend_from_slice(&[0, 0, 0, 0]);
        for mode in [
            DeframeMode::Fixed(Framing::LengthPrefix),
            DeframeMode::Detect,
        ] {
            let mut d = Deframer::new(mode, 64);
            for b in &stream {
                d.push(&[*b]);
            }
            assert!(!FrameError::EmptyFrame.is_fatal());
            assert_eq!(
                drain(&mut d),
                [
                    Err(FrameError::EmptyFrame),
                    Ok(b"/a\0\0".to_vec()),
                    Err(FrameError::EmptyFrame)
                ]
            );
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn half_a_frame_stays_pending() {
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::LengthPrefix), 64);
        d.push(&[0, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(d.next_frame().is_none());
        assert_eq!(d.pending(), 12);
        d.push(&[9, 10, 11, 12]);
        assert_eq!(
            d.next_frame(),
            Some(Ok(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12][..]))
        );
        assert_eq!(d.pending(), 0);

        let mut d = Deframer::new(DeframeMode::Fixed(Framing::Slip), 64);
        d.push(&[END, 1, 2, ESC, ESC_END, 3]);
        assert!(d.next_frame().is_none());
        assert_eq!(d.pending(), 4);
        d.push(&[END]);
        assert_eq!(d.next_frame(), Some(Ok(&[1, 2, END, 3][..])));
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn error_messages_are_one_line() {
        let errs = [
            FrameError::TooLarge { len: 5, max: 4 },
            FrameError::SlipTooLarge { max: 4 },
            FrameError::BadEscape { byte: 0x41 },
            FrameError::EmptyFrame,
        ];
        for e in errs {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
            let _: &dyn std::error::Error = &e;
        }
        assert_eq!(
            FrameError::BadEscape { byte: 0x41 }.to_string(),
            "invalid SLIP escape 0xDB 0x41, packet dropped"
        );
    }

    #[test]
    fn a_full_size_frame_arriving_slowly_does_not_double_the_buffer() {
        let max = 1 << 20;
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::LengthPrefix), max);
        let mut stream = (max as u32).to_be_bytes().to_vec();
        stream.resize(4 + max - 1, 7); // all but the last byte
        for chunk in stream.chunks(1000) {
            let mut reader = chunk;
            d.read_from(&mut reader, 65536).unwrap();
        }
        assert_eq!(d.pending(), 4 + max - 1);
        let held = d.buf.capacity();
        assert!(held <= max + MAX_HEADER + 65536, "{held} bytes held");
    }

    #[test]
    fn a_large_frame_taken_gives_its_buffer_back() {
        let max = 1 << 20;
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::LengthPrefix), max);
        let mut stream = Vec::new();
        encode_frame(Framing::LengthPrefix, &vec![7; max - 4], &mut stream);
        d.push(&stream);
        assert!(d.buf.capacity() >= max);
        assert_eq!(frames(&mut d).len(), 1);
        assert!(
            d.buf.capacity() <= KEEP_AT_MOST,
            "{} bytes kept",
            d.buf.capacity()
        );
        // Small frames after it still arrive, in a small buffer.
        let mut small = Vec::new();
        encode_frame(Framing::LengthPrefix, b"/a\0\0", &mut small);
        d.push(&small);
        assert_eq!(frames(&mut d), [b"/a\0\0".to_vec()]);
    }

    #[test]
    fn a_large_buffer_holding_little_is_counted_whole_until_shrunk() {
        let max = 1 << 20;
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::LengthPrefix), max);
        let (mut stream, mut next) = (Vec::new(), Vec::new());
        encode_frame(Framing::LengthPrefix, &vec![7; max - 4], &mut stream);
        encode_frame(Framing::LengthPrefix, b"/a\0\0", &mut next);
        // A large frame and the first two bytes of the next, in one read.
        stream.extend_from_slice(&next[..2]);
        d.push(&stream);
        assert_eq!(frames(&mut d).len(), 1);
        assert_eq!(d.pending(), 2);
        assert!(d.held() >= max, "{} held", d.held());
        d.shrink();
        assert_eq!(d.held(), MIN_BUFFER);
        assert!(d.buf.capacity() <= MIN_BUFFER);
        // The rest of that frame arrives as if nothing happened.
        d.push(&next[2..]);
        assert_eq!(frames(&mut d), [b"/a\0\0".to_vec()]);
        assert_eq!(d.held(), 0);
    }

    #[test]
    fn a_frame_arriving_in_a_shrunk_buffer_is_not_copied_at_every_read() {
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::LengthPrefix), 1 << 20);
        let mut part = 1_000_000u32.to_be_bytes().to_vec();
        part.resize(4 + 700_000, 7);
        d.push(&part);
        d.push(&[7; 1400]);
        d.shrink();
        let (at, held) = (d.buf.as_ptr(), d.held());
        // A budget at its limit shrinks after every datagram: once shrunk, the buffer
        // stays put.
        for _ in 0..100 {
            d.push(&[7; 1400]);
            assert_eq!(frames(&mut d), Vec::<Vec<u8>>::new());
            d.shrink();
            assert_eq!((d.buf.as_ptr(), d.held()), (at, held));
        }
    }

    #[test]
    fn read_from_zero_max_reads_nothing() {
        let mut d = Deframer::new(DeframeMode::Fixed(Framing::LengthPrefix), 64);
        let mut reader: &[u8] = &[0, 0, 0, 1, 9];
        assert_eq!(d.read_from(&mut reader, 0).unwrap(), 0);
        assert_eq!(reader.len(), 5);
        assert_eq!(d.read_from(&mut reader, 100).unwrap(), 5);
        assert_eq!(d.next_frame(), Some(Ok(&[9][..])));
    }
}
