//! O2 message bodies: strict zero-copy decoding and encoding (specs/o2lite.md §3).
//!
//! An O2 message body is `misc` (int32), `timestamp` (float64 seconds of global time),
//! the address, the type-tag string and the arguments, all big-endian and every field
//! 4-aligned relative to the start of the body. By TCP each body is preceded by its
//! int32 length ([`encode_tcp`]); by UDP a datagram is one body ([`encode_udp`]).
//!
//! [`decode`] checks the whole body, every argument included, before it returns, and
//! allocates nothing; the [`O2Message`] it returns borrows the body, and reading its
//! arguments again ([`O2Message::args`]) cannot fail. Decoding never panics and runs in
//! time linear in the body length, whatever the input.
//!
//! Choices this module makes where the specification leaves room:
//!
//! - **Strictness.** Padding bytes (after the address, the type tags, strings and blobs)
//!   must be zero, the body length must be a multiple of 4, and no byte may follow the
//!   last argument. O2 hosts write exactly this.
//! - **`B`** is read as C reads it: any non-zero int32 is `true` (O2 writes 0 and 1;
//!   re-encoding writes 0 or 1).
//! - **`c`** is an int32 holding the character; the low byte is taken and the upper 24
//!   bits are ignored (a C `char` may arrive sign-extended). It is written `00 00 00 XX`.
//! - **`v`** must be followed in the type tags by one of `i h f d`; its payload is an
//!   int32 byte length that must be non-negative, a multiple of the element size and no
//!   longer than what remains, then the packed elements (no padding is ever needed).
//! - **Arrays** may nest to any depth (the depth is a counter, bounded by the body).
//! - **Addresses** must start with `/`, `!` or `#`; nothing else about them is checked
//!   (`/` alone is accepted and has an empty service). Strings and addresses need not be
//!   UTF-8.
//! - **Bundles** (`#` addresses) are recognised once their address string is well formed
//!   and then rejected with [`O2ErrorKind::BundleUnsupported`] (§3.4 lets a client drop
//!   them). Encoding refuses `#` addresses.
//! - **Error offsets** count from the start of the body (never the TCP length prefix),
//!   for encoding as for decoding: an encoding error points where the bad field (or the
//!   bad byte, such as a NUL inside a string) would have been written. On any encoding
//!   error `out` is left exactly as it was.
//! - **TCP frames** whose body would exceed [`MAX_TCP_FRAME`] are refused by
//!   [`encode_tcp`] ([`O2ErrorKind::FrameTooLong`]); [`decode`] itself has no length limit.

use crate::osc::Tag;
use std::borrow::Borrow;
use std::fmt;
use std::iter::FusedIterator;

/// The largest body length an O2 host accepts in a TCP frame (hosts close the connection
/// when the length prefix is 65536 or more).
pub const MAX_TCP_FRAME: usize = 65_535;

/// The largest body a best-effort message can have: one IPv4 UDP datagram (O2lite's
/// addresses are IPv4).
pub const MAX_UDP_BODY: usize = 65_507;

/// `misc` bit 0: the message is (to be) sent reliably, by TCP.
pub const MISC_RELIABLE: i32 = 1;

/// One O2 argument. Strings/blobs borrow the body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum O2Arg<'a> {
    /// `i`: int32.
    Int(i32),
    /// `f`: float32.
    Float(f32),
    /// `s`: string bytes, without the terminating NUL (not necessarily UTF-8).
    Str(&'a [u8]),
    /// `d`: float64.
    Double(f64),
    /// `t`: float64 seconds of O2 global time (not an OSC timetag)
    Time(f64),
    /// `h`: int64.
    Long(i64),
    /// `B`: int32 0/1
    Bool(bool),
    /// `b`: blob bytes, without the size word and the padding.
    Blob(&'a [u8]),
    /// `T`: true, no payload.
    True,
    /// `F`: false, no payload.
    False,
    /// `N`: nil, no payload.
    Nil,
    /// `I`: infinitum, no payload.
    Infinitum,
    /// `c`: a character, carried in an int32.
    Char(u8),
    /// `m`: MIDI message, port/status/data1/data2.
    Midi([u8; 4]),
    /// `S`: symbol, encoded as a string (without the terminating NUL).
    Symbol(&'a [u8]),
    /// `v` + element code (`i h f d`): raw big-endian element bytes
    Vector {
        /// The element code: `b'i'`, `b'h'`, `b'f'` or `b'd'`.
        elem: u8,
        /// The packed big-endian elements (a multiple of the element size).
        data: &'a [u8],
    },
    /// `[`: start of an array, no payload.
    ArrayStart,
    /// `]`: end of an array, no payload.
    ArrayEnd,
}

impl O2Arg<'_> {
    /// The argument's type code; `b'v'` for a vector (whose element code follows it in a
    /// type-tag string).
    pub fn tag(&self) -> u8 {
        match self {
            O2Arg::Int(_) => b'i',
            O2Arg::Float(_) => b'f',
            O2Arg::Str(_) => b's',
            O2Arg::Double(_) => b'd',
            O2Arg::Time(_) => b't',
            O2Arg::Long(_) => b'h',
            O2Arg::Bool(_) => b'B',
            O2Arg::Blob(_) => b'b',
            O2Arg::True => b'T',
            O2Arg::False => b'F',
            O2Arg::Nil => b'N',
            O2Arg::Infinitum => b'I',
            O2Arg::Char(_) => b'c',
            O2Arg::Midi(_) => b'm',
            O2Arg::Symbol(_) => b'S',
            O2Arg::Vector { .. } => b'v',
            O2Arg::ArrayStart => b'[',
            O2Arg::ArrayEnd => b']',
        }
    }
}

/// The size in bytes of one element of a `v` vector with element code `elem`, or `None`
/// when `elem` is not one of `i h f d`.
pub fn vector_elem_size(elem: u8) -> Option<usize> {
    match elem {
        b'i' | b'f' => Some(4),
        b'h' | b'd' => Some(8),
        _ => None,
    }
}

/// Why a body could not be decoded or encoded, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct O2Error {
    /// What is wrong.
    pub kind: O2ErrorKind,
    /// Byte offset from the start of the message body (the TCP length prefix is not
    /// counted).
    pub offset: usize,
}

impl O2Error {
    pub(crate) fn new(kind: O2ErrorKind, offset: usize) -> Self {
        O2Error { kind, offset }
    }
}

/// The kinds of malformed (or unencodable) O2 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum O2ErrorKind {
    /// The body ends before its fixed fields: fewer than 16 bytes (misc, timestamp, one
    /// address word), or nothing left for the type-tag string. The offset is the body
    /// length.
    TooShort,
    /// The body length is not a multiple of 4; the offset is that of the incomplete last
    /// word.
    NotAligned,
    /// The address does not start with `/` or `!` (or `#` when decoding), or, when
    /// encoding, is empty or contains a NUL.
    BadAddress,
    /// A string (address, type tags, `s`, `S`) with no terminating NUL before the end.
    UnterminatedString,
    /// A non-zero padding byte after a string or blob (the offset is that byte's).
    BadPadding,
    /// The type-tag string does not start with `,`.
    TypeTagsNoComma,
    /// A type code this module does not know; the rest of the body cannot be read.
    UnknownType {
        /// The code.
        tag: u8,
    },
    /// The body ends inside an argument (the offset is where the argument starts).
    ArgumentTruncated {
        /// The argument's type code.
        tag: u8,
    },
    /// A blob size that is negative or larger than what remains (when encoding: larger
    /// than `i32::MAX`).
    BadBlobSize,
    /// A `v` whose element code is missing or not one of `i h f d` (offset of the element
    /// code), or whose byte length is negative, not a multiple of the element size or
    /// larger than what remains (offset of the length word).
    BadVector,
    /// `[` and `]` do not balance: an unmatched `]` (its offset) or a `[` never closed
    /// (offset of the NUL ending the type tags).
    UnbalancedArray,
    /// Bytes left after the last argument.
    TrailingBytes,
    /// An O2 bundle (address starting with `#`); rosco drops them (spec §3.4).
    BundleUnsupported,
    /// Encoding only: a string or symbol argument contains a NUL byte.
    NulInString,
    /// Encoding only: a TCP frame's body would be longer than [`MAX_TCP_FRAME`]; the
    /// offset is [`MAX_TCP_FRAME`], the first byte that does not fit.
    FrameTooLong,
    /// Encoding only: a best-effort message's body would be longer than
    /// [`MAX_UDP_BODY`]; the offset is [`MAX_UDP_BODY`].
    DatagramTooLong,
}

impl fmt::Display for O2ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            O2ErrorKind::TooShort => f.write_str("body too short"),
            O2ErrorKind::NotAligned => f.write_str("body length not a multiple of 4"),
            O2ErrorKind::BadAddress => f.write_str("bad address"),
            O2ErrorKind::UnterminatedString => f.write_str("unterminated string"),
            O2ErrorKind::BadPadding => f.write_str("non-zero padding byte"),
            O2ErrorKind::TypeTagsNoComma => f.write_str("type tags do not start with ','"),
            O2ErrorKind::UnknownType { tag } => {
                write!(f, "unknown type code {}", Tag(*tag))
            }
            O2ErrorKind::ArgumentTruncated { tag } => {
                write!(f, "argument of type {} truncated", Tag(*tag))
            }
            O2ErrorKind::BadBlobSize => f.write_str("bad blob size"),
            O2ErrorKind::BadVector => f.write_str("bad vector"),
            O2ErrorKind::UnbalancedArray => f.write_str("unbalanced array brackets"),
            O2ErrorKind::TrailingBytes => f.write_str("bytes after the last argument"),
            O2ErrorKind::BundleUnsupported => f.write_str("O2 bundles are not supported"),
            O2ErrorKind::NulInString => f.write_str("NUL byte inside a string"),
            O2ErrorKind::FrameTooLong => {
                write!(f, "TCP frame body longer than {MAX_TCP_FRAME} bytes")
            }
            O2ErrorKind::DatagramTooLong => {
                write!(f, "UDP datagram longer than {MAX_UDP_BODY} bytes")
            }
        }
    }
}

impl fmt::Display for O2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "O2 message: {} at offset {}", self.kind, self.offset)
    }
}

impl std::error::Error for O2Error {}

/// A decoded O2 message body (no TCP length prefix).
#[derive(Debug, Clone, Copy)]
pub struct O2Message<'a> {
    body: &'a [u8],
    misc: i32,
    timestamp: f64,
    /// Without the NUL.
    address: &'a [u8],
    /// Without the `,` and the NUL.
    typetags: &'a [u8],
    /// Offset of `typetags[0]` in `body`.
    tags_at: usize,
    /// Offset of the first argument in `body`.
    args_at: usize,
    nargs: usize,
}

impl<'a> O2Message<'a> {
    /// The `misc` flags word as received (O2 2.0.1 hosts send `0x103`/`0x102`).
    pub fn misc(&self) -> i32 {
        self.misc
    }

    /// `misc` bit 0: sent reliably (TCP). The only bit a receiver should look at.
    pub fn reliable(&self) -> bool {
        self.misc & MISC_RELIABLE != 0
    }

    /// The timestamp: seconds of O2 global time, 0 meaning "now".
    pub fn timestamp(&self) -> f64 {
        self.timestamp
    }

    /// The address as on the wire, with its leading `/` or `!`, without NUL or padding.
    pub fn address(&self) -> &'a [u8] {
        self.address
    }

    /// The address without its first character (`_o2/id` for `!_o2/id`); rosco
    /// dispatches it as `/` followed by this (spec §16).
    pub fn path(&self) -> &'a [u8] {
        self.address.get(1..).unwrap_or(&[])
    }

    /// The service: the first segment after the leading `/` or `!` (`server` for
    /// `/server/echo`); empty for the address `/`.
    pub fn service(&self) -> &'a [u8] {
        let path = self.path();
        let end = path.iter().position(|&b| b == b'/').unwrap_or(path.len());
        &path[..end]
    }

    /// The type codes, without the `,`; a vector contributes its `v` and its element
    /// code (`"vi"`), so this can be longer than [`O2Message::arg_count`].
    pub fn typetags(&self) -> &'a [u8] {
        self.typetags
    }

    /// The arguments in order (array brackets included, one item per vector).
    pub fn args(&self) -> O2Args<'a> {
        O2Args {
            cursor: Cursor {
                body: self.body,
                tags: self.typetags,
                tags_at: self.tags_at,
                ti: 0,
                pos: self.args_at,
                depth: 0,
            },
            remaining: self.nargs,
        }
    }

    /// How many items [`O2Message::args`] yields.
    pub fn arg_count(&self) -> usize {
        self.nargs
    }

    /// Whether the address starts with `#` (an O2 bundle). [`decode`] rejects bundles,
    /// so this is `false` for every message it returns.
    pub fn is_bundle(&self) -> bool {
        self.address.first() == Some(&b'#')
    }

    /// The whole body this message was decoded from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.body
    }
}

/// Iterator over the arguments of a decoded [`O2Message`].
#[derive(Debug, Clone)]
pub struct O2Args<'a> {
    cursor: Cursor<'a>,
    remaining: usize,
}

impl<'a> Iterator for O2Args<'a> {
    type Item = O2Arg<'a>;

    fn next(&mut self) -> Option<O2Arg<'a>> {
        match self.cursor.next_arg() {
            Ok(Some(arg)) if self.remaining > 0 => {
                self.remaining -= 1;
                Some(arg)
            }
            // The body was validated by `decode`, so errors cannot happen; stay fused
            // anyway.
            _ => {
                self.remaining = 0;
                self.cursor.ti = self.cursor.tags.len();
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for O2Args<'_> {}

impl FusedIterator for O2Args<'_> {}

/// Reading position in the type tags and in the arguments.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    body: &'a [u8],
    tags: &'a [u8],
    tags_at: usize,
    ti: usize,
    pos: usize,
    depth: usize,
}

impl<'a> Cursor<'a> {
    /// `n` bytes of argument data; `ArgumentTruncated` if fewer remain.
    fn take(&mut self, n: usize, tag: u8) -> Result<&'a [u8], O2Error> {
        let err = O2Error::new(O2ErrorKind::ArgumentTruncated { tag }, self.pos);
        let data = self.body.get(self.pos..).ok_or(err)?.get(..n).ok_or(err)?;
        self.pos += n;
        Ok(data)
    }

    fn word(&mut self, tag: u8) -> Result<[u8; 4], O2Error> {
        let b = self.take(4, tag)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    fn dword(&mut self, tag: u8) -> Result<[u8; 8], O2Error> {
        let b = self.take(8, tag)?;
        Ok([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    fn remaining(&self) -> usize {
        self.body.len().saturating_sub(self.pos)
    }

    fn string(&mut self, tag: u8) -> Result<&'a [u8], O2Error> {
        if self.pos >= self.body.len() {
            return Err(O2Error::new(
                O2ErrorKind::ArgumentTruncated { tag },
                self.pos,
            ));
        }
        let (s, end) = read_str(self.body, self.pos)?;
        self.pos = end;
        Ok(s)
    }

    /// The next argument, `Ok(None)` after the last type code.
    fn next_arg(&mut self) -> Result<Option<O2Arg<'a>>, O2Error> {
        let Some(&tag) = self.tags.get(self.ti) else {
            return Ok(None);
        };
        let tag_at = self.tags_at + self.ti;
        self.ti += 1;
        let arg = match tag {
            b'i' => O2Arg::Int(i32::from_be_bytes(self.word(tag)?)),
            b'f' => O2Arg::Float(f32::from_bits(u32::from_be_bytes(self.word(tag)?))),
            b'B' => O2Arg::Bool(self.word(tag)? != [0; 4]),
            b'c' => O2Arg::Char(self.word(tag)?[3]),
            b'm' => O2Arg::Midi(self.word(tag)?),
            b'd' => O2Arg::Double(f64::from_bits(u64::from_be_bytes(self.dword(tag)?))),
            b't' => O2Arg::Time(f64::from_bits(u64::from_be_bytes(self.dword(tag)?))),
            b'h' => O2Arg::Long(i64::from_be_bytes(self.dword(tag)?)),
            b's' => O2Arg::Str(self.string(tag)?),
            b'S' => O2Arg::Symbol(self.string(tag)?),
            b'T' => O2Arg::True,
            b'F' => O2Arg::False,
            b'N' => O2Arg::Nil,
            b'I' => O2Arg::Infinitum,
            b'[' => {
                self.depth += 1;
                O2Arg::ArrayStart
            }
            b']' => {
                if self.depth == 0 {
                    return Err(O2Error::new(O2ErrorKind::UnbalancedArray, tag_at));
                }
                self.depth -= 1;
                O2Arg::ArrayEnd
            }
            b'b' => {
                let size_at = self.pos;
                let n = i32::from_be_bytes(self.word(tag)?);
                let bad = O2Error::new(O2ErrorKind::BadBlobSize, size_at);
                let n = usize::try_from(n).map_err(|_| bad)?;
                if n > self.remaining() {
                    return Err(bad);
                }
                let data = self.take(n, tag)?;
                // Padding bytes are skipped unread, as the O2 host does: o2lite.c leaves
                // whatever its buffer held there.
                self.take((4 - n % 4) % 4, tag)?;
                O2Arg::Blob(data)
            }
            b'v' => {
                let elem = self.tags.get(self.ti).copied().unwrap_or(0);
                let size = vector_elem_size(elem)
                    .ok_or(O2Error::new(O2ErrorKind::BadVector, tag_at + 1))?;
                self.ti += 1;
                let len_at = self.pos;
                let n = i32::from_be_bytes(self.word(tag)?);
                let bad = O2Error::new(O2ErrorKind::BadVector, len_at);
                let n = usize::try_from(n).map_err(|_| bad)?;
                if n % size != 0 || n > self.remaining() {
                    return Err(bad);
                }
                O2Arg::Vector {
                    elem,
                    data: self.take(n, tag)?,
                }
            }
            _ => return Err(O2Error::new(O2ErrorKind::UnknownType { tag }, tag_at)),
        };
        Ok(Some(arg))
    }
}

/// Reads a NUL-terminated, zero-padded string starting at `at`; returns its bytes
/// (without the NUL) and the offset after its padding.
fn read_str(body: &[u8], at: usize) -> Result<(&[u8], usize), O2Error> {
    let rest = body.get(at..).unwrap_or(&[]);
    let Some(n) = rest.iter().position(|&b| b == 0) else {
        return Err(O2Error::new(O2ErrorKind::UnterminatedString, at));
    };
    let padded = str_size(n);
    // Cannot fail for a 4-aligned body and a 4-aligned `at`.
    let padding = rest
        .get(n + 1..padded)
        .ok_or(O2Error::new(O2ErrorKind::BadPadding, body.len()))?;
    if let Some(i) = padding.iter().position(|&b| b != 0) {
        return Err(O2Error::new(O2ErrorKind::BadPadding, at + n + 1 + i));
    }
    Ok((&rest[..n], at + padded))
}

/// The encoded size of a string of `n` bytes: NUL plus padding to a multiple of 4
/// (1 to 4 zero bytes).
fn str_size(n: usize) -> usize {
    (n / 4 + 1) * 4
}

/// Decodes and validates an O2 message body (no TCP length prefix).
///
/// Validates the whole body (every argument) before returning; allocates nothing.
/// Bundles (`#` addresses) are refused with [`O2ErrorKind::BundleUnsupported`].
pub fn decode(body: &[u8]) -> Result<O2Message<'_>, O2Error> {
    if body.len() < 16 {
        return Err(O2Error::new(O2ErrorKind::TooShort, body.len()));
    }
    if body.len() % 4 != 0 {
        return Err(O2Error::new(O2ErrorKind::NotAligned, body.len() & !3));
    }
    let misc = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&body[4..12]);
    let timestamp = f64::from_bits(u64::from_be_bytes(ts));

    if !matches!(body[12], b'/' | b'!' | b'#') {
        return Err(O2Error::new(O2ErrorKind::BadAddress, 12));
    }
    let (address, tt_at) = read_str(body, 12)?;
    if address[0] == b'#' {
        return Err(O2Error::new(O2ErrorKind::BundleUnsupported, 12));
    }

    if tt_at >= body.len() {
        return Err(O2Error::new(O2ErrorKind::TooShort, body.len()));
    }
    if body[tt_at] != b',' {
        return Err(O2Error::new(O2ErrorKind::TypeTagsNoComma, tt_at));
    }
    let (tt, args_at) = read_str(body, tt_at)?;
    let typetags = &tt[1..];
    let tags_at = tt_at + 1;

    let mut cursor = Cursor {
        body,
        tags: typetags,
        tags_at,
        ti: 0,
        pos: args_at,
        depth: 0,
    };
    let mut nargs = 0;
    while cursor.next_arg()?.is_some() {
        nargs += 1;
    }
    if cursor.depth != 0 {
        return Err(O2Error::new(
            O2ErrorKind::UnbalancedArray,
            tags_at + typetags.len(),
        ));
    }
    if cursor.pos != body.len() {
        return Err(O2Error::new(O2ErrorKind::TrailingBytes, cursor.pos));
    }
    Ok(O2Message {
        body,
        misc,
        timestamp,
        address,
        typetags,
        tags_at,
        args_at,
        nargs,
    })
}

/// Appends an O2 message body (no prefix) to `out`.
///
/// Errors (never panics) on a bad address (must start with '/' or '!', no NUL), NUL in
/// strings, bad vector element code/length, unbalanced arrays, blobs longer than
/// `i32::MAX`. On error `out` is left unchanged; the error's offset is relative to the
/// start of the body.
pub fn encode_body<'a, A: Borrow<O2Arg<'a>>>(
    out: &mut Vec<u8>,
    misc: i32,
    timestamp: f64,
    address: &[u8],
    args: impl IntoIterator<Item = A, IntoIter = impl Iterator<Item = A> + Clone>,
) -> Result<(), O2Error> {
    let start = out.len();
    let result = write_body(out, start, misc, timestamp, address, args.into_iter());
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a TCP frame: big-endian u32 body length then the body (misc should be 1).
///
/// The body is written with `misc` = 1 ([`MISC_RELIABLE`]). Besides the errors of
/// [`encode_body`], a body longer than [`MAX_TCP_FRAME`] is refused with
/// [`O2ErrorKind::FrameTooLong`]. On error `out` is left unchanged.
pub fn encode_tcp<'a, A: Borrow<O2Arg<'a>>>(
    out: &mut Vec<u8>,
    timestamp: f64,
    address: &[u8],
    args: impl IntoIterator<Item = A, IntoIter = impl Iterator<Item = A> + Clone>,
) -> Result<(), O2Error> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let result = write_body(
        out,
        start + 4,
        MISC_RELIABLE,
        timestamp,
        address,
        args.into_iter(),
    );
    let len = out.len() - start - 4;
    let result = result.and_then(|()| match u32::try_from(len) {
        Ok(n) if len <= MAX_TCP_FRAME => {
            out[start..start + 4].copy_from_slice(&n.to_be_bytes());
            Ok(())
        }
        _ => Err(O2Error::new(O2ErrorKind::FrameTooLong, MAX_TCP_FRAME)),
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a UDP datagram body (misc 0).
///
/// Errors as [`encode_body`], and [`O2ErrorKind::DatagramTooLong`] for a body longer than
/// [`MAX_UDP_BODY`]; on error `out` is left unchanged.
pub fn encode_udp<'a, A: Borrow<O2Arg<'a>>>(
    out: &mut Vec<u8>,
    timestamp: f64,
    address: &[u8],
    args: impl IntoIterator<Item = A, IntoIter = impl Iterator<Item = A> + Clone>,
) -> Result<(), O2Error> {
    let start = out.len();
    encode_body(out, 0, timestamp, address, args)?;
    if out.len() - start > MAX_UDP_BODY {
        out.truncate(start);
        return Err(O2Error::new(O2ErrorKind::DatagramTooLong, MAX_UDP_BODY));
    }
    Ok(())
}

/// Writes a padded string (1 to 4 NULs).
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    let pad = str_size(s.len()) - s.len();
    out.extend_from_slice(&[0; 4][..pad]);
}

/// Writes the body at the end of `out`, whose body starts at `start`. May leave a
/// partial body behind on error; the callers truncate.
fn write_body<'a, A: Borrow<O2Arg<'a>>>(
    out: &mut Vec<u8>,
    start: usize,
    misc: i32,
    timestamp: f64,
    address: &[u8],
    args: impl Iterator<Item = A> + Clone,
) -> Result<(), O2Error> {
    if !matches!(address.first(), Some(b'/' | b'!')) {
        return Err(O2Error::new(O2ErrorKind::BadAddress, 12));
    }
    if let Some(i) = address.iter().position(|&b| b == 0) {
        return Err(O2Error::new(O2ErrorKind::BadAddress, 12 + i));
    }
    let (count, vectors) = args.clone().fold((0, 0), |(n, v), a| {
        (n + 1, v + usize::from(a.borrow().tag() == b'v'))
    });
    out.reserve(12 + str_size(address.len()) + str_size(1 + count + vectors) + 8 * count);
    out.extend_from_slice(&misc.to_be_bytes());
    out.extend_from_slice(&timestamp.to_bits().to_be_bytes());
    put_str(out, address);

    // Type tags.
    let tt_at = out.len();
    out.push(b',');
    let mut depth = 0usize;
    for arg in args.clone() {
        let arg = arg.borrow();
        let tag = arg.tag();
        let tag_at = out.len() - start;
        out.push(tag);
        match *arg {
            O2Arg::Vector { elem, .. } => {
                if vector_elem_size(elem).is_none() {
                    return Err(O2Error::new(O2ErrorKind::BadVector, tag_at + 1));
                }
                out.push(elem);
            }
            O2Arg::ArrayStart => depth += 1,
            O2Arg::ArrayEnd => {
                if depth == 0 {
                    return Err(O2Error::new(O2ErrorKind::UnbalancedArray, tag_at));
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(O2Error::new(
            O2ErrorKind::UnbalancedArray,
            out.len() - start,
        ));
    }
    let tt_len = out.len() - tt_at;
    out.extend_from_slice(&[0; 4][..str_size(tt_len) - tt_len]);

    // Arguments.
    for arg in args {
        let at = out.len() - start;
        match *arg.borrow() {
            O2Arg::Int(v) => out.extend_from_slice(&v.to_be_bytes()),
            O2Arg::Float(v) => out.extend_from_slice(&v.to_bits().to_be_bytes()),
            O2Arg::Double(v) | O2Arg::Time(v) => out.extend_from_slice(&v.to_bits().to_be_bytes()),
            O2Arg::Long(v) => out.extend_from_slice(&v.to_be_bytes()),
            O2Arg::Bool(v) => out.extend_from_slice(&i32::from(v).to_be_bytes()),
            O2Arg::Char(c) => out.extend_from_slice(&[0, 0, 0, c]),
            O2Arg::Midi(m) => out.extend_from_slice(&m),
            O2Arg::Str(s) | O2Arg::Symbol(s) => {
                if let Some(i) = s.iter().position(|&b| b == 0) {
                    return Err(O2Error::new(O2ErrorKind::NulInString, at + i));
                }
                put_str(out, s);
            }
            O2Arg::Blob(b) => {
                let n = i32::try_from(b.len())
                    .map_err(|_| O2Error::new(O2ErrorKind::BadBlobSize, at))?;
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(&[0; 4][..(4 - b.len() % 4) % 4]);
            }
            O2Arg::Vector { elem, data } => {
                let bad = O2Error::new(O2ErrorKind::BadVector, at);
                let size = vector_elem_size(elem).ok_or(bad)?;
                if data.len() % size != 0 {
                    return Err(bad);
                }
                let n = i32::try_from(data.len()).map_err(|_| bad)?;
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(data);
            }
            O2Arg::True
            | O2Arg::False
            | O2Arg::Nil
            | O2Arg::Infinitum
            | O2Arg::ArrayStart
            | O2Arg::ArrayEnd => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/o2lite.json");

    use crate::osc::unhex;

    /// A body from parts: misc 0, timestamp 0, the address and type tags (with its `,`)
    /// padded as strings, then raw argument bytes.
    fn body(address: &[u8], tags: &[u8], args: &[u8]) -> Vec<u8> {
        let mut out = vec![0; 12];
        put_str(&mut out, address);
        put_str(&mut out, tags);
        out.extend_from_slice(args);
        out
    }

    fn err(kind: O2ErrorKind, offset: usize) -> O2Error {
        O2Error { kind, offset }
    }

    fn decode_err(b: &[u8]) -> O2Error {
        decode(b).expect_err("decode should fail")
    }

    fn encode(args: &[O2Arg<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_body(&mut out, 0, 0.0, b"/svc/x", args).expect("encode");
        out
    }

    /// Encodes, checks alignment, decodes and compares every field.
    fn round_trip(args: &[O2Arg<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_body(&mut out, 0x103, 2.5, b"!svc/x", args).expect("encode");
        assert_eq!(out.len() % 4, 0);
        let m = decode(&out).expect("decode");
        assert_eq!(m.misc(), 0x103);
        assert!(m.reliable());
        assert_eq!(m.timestamp(), 2.5);
        assert_eq!(m.address(), b"!svc/x");
        assert_eq!(m.arg_count(), args.len());
        let got: Vec<O2Arg<'_>> = m.args().collect();
        assert_eq!(got, args);
        let mut tags = Vec::new();
        for a in args {
            tags.push(a.tag());
            if let O2Arg::Vector { elem, .. } = a {
                tags.push(*elem);
            }
        }
        assert_eq!(m.typetags(), &tags[..]);
        out
    }

    // ---- the captured vectors (specs/o2lite.md §12)

    /// The argument a JSON value stands for, given its type code.
    fn json_arg<'a>(tag: u8, v: &'a Value, blob: &'a [u8]) -> O2Arg<'a> {
        match tag {
            b'i' => O2Arg::Int(v.as_i64().expect("int") as i32),
            b'h' => O2Arg::Long(v.as_i64().expect("long")),
            b'B' => O2Arg::Bool(v.as_i64().expect("bool as int") != 0),
            b'f' => O2Arg::Float(v.as_f64().expect("float") as f32),
            b'd' => O2Arg::Double(v.as_f64().expect("double")),
            b't' => O2Arg::Time(v.as_f64().expect("time")),
            b's' => O2Arg::Str(v.as_str().expect("string").as_bytes()),
            b'S' => O2Arg::Symbol(v.as_str().expect("symbol").as_bytes()),
            b'b' => {
                assert_eq!(v["blob_len"].as_u64(), Some(blob.len() as u64));
                O2Arg::Blob(blob)
            }
            b'T' => {
                assert_eq!(v.as_str(), Some("T"));
                O2Arg::True
            }
            b'F' => {
                assert_eq!(v.as_str(), Some("F"));
                O2Arg::False
            }
            other => panic!("vector uses unexpected tag {}", other as char),
        }
    }

    /// Bitwise comparison (floats by their bits).
    fn same_arg(a: &O2Arg<'_>, b: &O2Arg<'_>) -> bool {
        match (a, b) {
            (O2Arg::Float(x), O2Arg::Float(y)) => x.to_bits() == y.to_bits(),
            (O2Arg::Double(x), O2Arg::Double(y)) | (O2Arg::Time(x), O2Arg::Time(y)) => {
                x.to_bits() == y.to_bits()
            }
            _ => a == b,
        }
    }

    #[test]
    fn vectors_decode_and_reencode() {
        let text = std::fs::read_to_string(VECTORS).expect("read o2lite.json");
        let json: Value = serde_json::from_str(&text).expect("parse o2lite.json");
        let vectors = json["vectors"].as_array().expect("vectors array");
        assert_eq!(vectors.len(), 27);
        for v in vectors {
            let id = v["id"].as_str().expect("id");
            let tcp = match v["transport"].as_str() {
                Some("TCP") => true,
                Some("UDP") => false,
                other => panic!("{id}: transport {other:?}"),
            };
            let wire = unhex(v["hex"].as_str().expect("hex"));
            let b = if tcp {
                let n = u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]) as usize;
                assert_eq!(n, wire.len() - 4, "{id}: length prefix");
                &wire[4..]
            } else {
                &wire[..]
            };

            // Decode and compare with the JSON fields.
            let m = decode(b).unwrap_or_else(|e| panic!("{id}: {e}"));
            let misc = v["misc"].as_i64().expect("misc") as i32;
            assert_eq!(m.misc(), misc, "{id}: misc");
            assert_eq!(m.reliable(), tcp, "{id}: reliable bit");
            let ts = v["timestamp"].as_f64().expect("timestamp");
            assert_eq!(m.timestamp().to_bits(), ts.to_bits(), "{id}: timestamp");
            let address = v["address"].as_str().expect("address").as_bytes();
            assert_eq!(m.address(), address, "{id}: address");
            let service = address[1..].split(|&c| c == b'/').next().unwrap_or(&[]);
            assert_eq!(m.service(), service, "{id}: service");
            assert!(!m.is_bundle());
            assert_eq!(m.as_bytes(), b);
            let typetag = v["typetag"].as_str().expect("typetag").as_bytes();
            assert_eq!(typetag[0], b',');
            assert_eq!(m.typetags(), &typetag[1..], "{id}: typetags");

            let jargs = v["args"].as_array().expect("args");
            assert_eq!(jargs.len(), m.typetags().len(), "{id}: one arg per tag");
            assert_eq!(m.arg_count(), jargs.len(), "{id}: arg count");
            let blobs: Vec<Vec<u8>> = jargs
                .iter()
                .map(|a| a["hex"].as_str().map(unhex).unwrap_or_default())
                .collect();
            let expected: Vec<O2Arg<'_>> = m
                .typetags()
                .iter()
                .zip(jargs.iter().zip(&blobs))
                .map(|(&t, (a, blob))| json_arg(t, a, blob))
                .collect();
            let got: Vec<O2Arg<'_>> = m.args().collect();
            assert_eq!(got.len(), expected.len(), "{id}");
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!(same_arg(g, e), "{id}: arg {i}: {g:?} != {e:?}");
            }

            // Re-encode from the JSON values and from the decoded arguments. A rosco
            // sender writes misc 1 (TCP) or 0 (UDP); only host->client captures differ
            // from that, in the misc word alone.
            let own_misc: i32 = if tcp { 1 } else { 0 };
            let mut want = wire.clone();
            let misc_at = if tcp { 4 } else { 0 };
            if v["direction"].as_str() == Some("host->client") {
                want[misc_at..misc_at + 4].copy_from_slice(&own_misc.to_be_bytes());
            } else {
                assert_eq!(misc, own_misc, "{id}: client-side misc");
            }
            for args in [&expected, &got] {
                let mut out = vec![0xaa]; // appends, keeps what was there
                let r = if tcp {
                    encode_tcp(&mut out, ts, address, args)
                } else {
                    encode_udp(&mut out, ts, address, args)
                };
                r.unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(out[0], 0xaa);
                assert_eq!(&out[1..], &want[..], "{id}: re-encoding");
            }
            // And encode_body with the captured misc reproduces the body exactly.
            let mut out = Vec::new();
            encode_body(&mut out, misc, ts, address, &got).expect("encode_body");
            assert_eq!(out, b, "{id}: encode_body with captured misc");
        }
    }

    // ---- layout

    #[test]
    fn string_padding_rule() {
        let mut out = Vec::new();
        put_str(&mut out, b"!_o2/id");
        assert_eq!(out, b"!_o2/id\0");
        out.clear();
        put_str(&mut out, b"hello");
        assert_eq!(out, unhex("68656c6c6f000000"));
        out.clear();
        put_str(&mut out, b"");
        assert_eq!(out, [0; 4]);
        out.clear();
        put_str(&mut out, b"abcd");
        assert_eq!(out, b"abcd\0\0\0\0");
        // Empty type tags: ",\0\0\0".
        let out = encode(&[]);
        assert_eq!(&out[out.len() - 4..], b",\0\0\0");
        let m = decode(&out).expect("decode");
        assert_eq!(m.typetags(), b"");
        assert_eq!(m.args().count(), 0);
    }

    #[test]
    fn worked_example_bytes() {
        let mut out = Vec::new();
        encode_tcp(
            &mut out,
            0.0,
            b"/server/echo",
            [
                O2Arg::Int(1001),
                O2Arg::Float(3.5),
                O2Arg::Str(b"hello"),
                O2Arg::Double(2.25),
                O2Arg::Time(1.5),
            ],
        )
        .expect("encode");
        let want = unhex(concat!(
            "00000044",
            "00000001",
            "0000000000000000",
            "2f7365727665722f6563686f00000000",
            "2c69667364740000",
            "000003e9",
            "40600000",
            "68656c6c6f000000",
            "4002000000000000",
            "3ff8000000000000"
        ));
        assert_eq!(out, want);
    }

    #[test]
    fn tag_of_every_variant() {
        let cases: [(O2Arg<'_>, u8); 18] = [
            (O2Arg::Int(0), b'i'),
            (O2Arg::Float(0.0), b'f'),
            (O2Arg::Str(b""), b's'),
            (O2Arg::Double(0.0), b'd'),
            (O2Arg::Time(0.0), b't'),
            (O2Arg::Long(0), b'h'),
            (O2Arg::Bool(true), b'B'),
            (O2Arg::Blob(b""), b'b'),
            (O2Arg::True, b'T'),
            (O2Arg::False, b'F'),
            (O2Arg::Nil, b'N'),
            (O2Arg::Infinitum, b'I'),
            (O2Arg::Char(b'x'), b'c'),
            (O2Arg::Midi([0; 4]), b'm'),
            (O2Arg::Symbol(b""), b'S'),
            (
                O2Arg::Vector {
                    elem: b'i',
                    data: b"",
                },
                b'v',
            ),
            (O2Arg::ArrayStart, b'['),
            (O2Arg::ArrayEnd, b']'),
        ];
        for (arg, tag) in cases {
            assert_eq!(arg.tag(), tag, "{arg:?}");
        }
        assert_eq!(vector_elem_size(b'i'), Some(4));
        assert_eq!(vector_elem_size(b'f'), Some(4));
        assert_eq!(vector_elem_size(b'h'), Some(8));
        assert_eq!(vector_elem_size(b'd'), Some(8));
        assert_eq!(vector_elem_size(b's'), None);
        assert_eq!(vector_elem_size(b'v'), None);
    }

    // ---- round trips

    #[test]
    fn round_trip_every_type() {
        let args = [
            O2Arg::Int(-7),
            O2Arg::Int(i32::MAX),
            O2Arg::Float(-1.25),
            O2Arg::Str(b"abc"),
            O2Arg::Double(1e100),
            O2Arg::Time(12.5),
            O2Arg::Long(i64::MIN),
            O2Arg::Bool(true),
            O2Arg::Bool(false),
            O2Arg::Blob(&[1, 2, 3, 4, 5]),
            O2Arg::True,
            O2Arg::False,
            O2Arg::Nil,
            O2Arg::Infinitum,
            O2Arg::Char(b'A'),
            O2Arg::Char(0xe9),
            O2Arg::Midi([0, 0x90, 60, 127]),
            O2Arg::Symbol(b"sym"),
            O2Arg::Vector {
                elem: b'i',
                data: &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe],
            },
            O2Arg::ArrayStart,
            O2Arg::Int(1),
            O2Arg::ArrayEnd,
            O2Arg::Str(&[0xff, 0xfe, b'\n']), // not UTF-8
        ];
        let out = round_trip(&args);
        // Fixed layout of a few: B as int32 0/1, c as 00 00 00 XX.
        let b = encode(&[O2Arg::Bool(true), O2Arg::Bool(false), O2Arg::Char(0xe9)]);
        assert_eq!(&b[b.len() - 12..], unhex("0000000100000000000000e9"));
        assert!(out.len() > 100);
    }

    #[test]
    fn round_trip_vectors_of_each_element_type() {
        let words = [0u8, 0, 0, 1, 0, 0, 0, 2, 0x40, 0x60, 0, 0, 0xbf, 0xa0, 0, 0];
        for elem in [b'i', b'h', b'f', b'd'] {
            let size = vector_elem_size(elem).expect("size");
            for n in 0..=16 / size {
                let data = &words[..n * size];
                round_trip(&[O2Arg::Vector { elem, data }]);
                // Inside an array and between other arguments.
                round_trip(&[
                    O2Arg::Int(5),
                    O2Arg::ArrayStart,
                    O2Arg::Vector { elem, data },
                    O2Arg::Vector { elem, data },
                    O2Arg::ArrayEnd,
                    O2Arg::Str(b"end"),
                ]);
            }
        }
        // Layout: ",vi" then int32 byte length then the elements.
        let out = encode(&[O2Arg::Vector {
            elem: b'i',
            data: &words[..8],
        }]);
        assert_eq!(
            &out[out.len() - 16..],
            unhex("2c766900000000080000000100000002")
        );
        let out = encode(&[O2Arg::Vector {
            elem: b'd',
            data: &[],
        }]);
        assert_eq!(&out[out.len() - 8..], unhex("2c76640000000000"));
    }

    #[test]
    fn round_trip_nested_arrays() {
        round_trip(&[O2Arg::ArrayStart, O2Arg::ArrayEnd]);
        round_trip(&[
            O2Arg::ArrayStart,
            O2Arg::ArrayStart,
            O2Arg::Int(1),
            O2Arg::ArrayStart,
            O2Arg::ArrayEnd,
            O2Arg::ArrayEnd,
            O2Arg::Str(b"x"),
            O2Arg::ArrayStart,
            O2Arg::Blob(b"abc"),
            O2Arg::ArrayEnd,
            O2Arg::ArrayEnd,
            O2Arg::ArrayStart,
            O2Arg::ArrayEnd,
        ]);
        let deep: Vec<O2Arg<'_>> = (0..100)
            .map(|_| O2Arg::ArrayStart)
            .chain((0..100).map(|_| O2Arg::ArrayEnd))
            .collect();
        round_trip(&deep);
    }

    #[test]
    fn round_trip_strings_of_every_length() {
        let text = b"abcdefghijk";
        for n in 0..=text.len() {
            let s = &text[..n];
            let out = round_trip(&[O2Arg::Str(s), O2Arg::Symbol(s), O2Arg::Int(9)]);
            // Header 12 + "!svc/x" 8 + ",sSi" 8 + two strings + int.
            assert_eq!(out.len(), 28 + 2 * str_size(n) + 4, "length {n}");
        }
        round_trip(&[O2Arg::Str(b""), O2Arg::Str(b""), O2Arg::Symbol(b"")]);
    }

    #[test]
    fn round_trip_blobs_of_length_0_to_9() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        for n in 0..=9 {
            let blob = &bytes[..n];
            let out = round_trip(&[O2Arg::Blob(blob), O2Arg::Int(77)]);
            let pad = (4 - n % 4) % 4;
            // Header 12 + "!svc/x" 8 + ",bi" 4 + size + data + 0-3 pad + int.
            assert_eq!(out.len(), 24 + 4 + n + pad + 4, "blob {n}");
            let at = 24;
            assert_eq!(&out[at..at + 4], &(n as i32).to_be_bytes());
            assert_eq!(&out[at + 4..at + 4 + n], blob);
            assert!(out[at + 4 + n..at + 4 + n + pad].iter().all(|&b| b == 0));
            round_trip(&[O2Arg::Blob(blob)]);
        }
        // The O2 host's encoding of an 8-byte blob (blob8_echo): no padding at all.
        let out = encode(&[O2Arg::Blob(&bytes[..8]), O2Arg::Int(77)]);
        assert_eq!(
            &out[out.len() - 20..],
            unhex("2c6269000000000801020304050607080000004d")
        );
    }

    #[test]
    fn float_bits_and_odd_timestamps_survive() {
        let args = [
            O2Arg::Float(f32::from_bits(0x7fc0_1234)),
            O2Arg::Double(f64::NEG_INFINITY),
            O2Arg::Time(-0.0),
        ];
        let mut out = Vec::new();
        encode_body(&mut out, i32::MIN, f64::NAN, b"/a", args).expect("encode");
        let m = decode(&out).expect("decode");
        assert_eq!(m.misc(), i32::MIN);
        assert!(!m.reliable());
        assert_eq!(m.timestamp().to_bits(), f64::NAN.to_bits());
        let got: Vec<O2Arg<'_>> = m.args().collect();
        for (g, e) in got.iter().zip(&args) {
            assert!(same_arg(g, e), "{g:?} != {e:?}");
        }
        let mut again = Vec::new();
        encode_body(&mut again, m.misc(), m.timestamp(), m.address(), &got).expect("encode");
        assert_eq!(again, out);
    }

    #[test]
    fn bool_and_char_are_read_leniently() {
        // B: any non-zero int32 is true.
        let b = body(b"/a", b",BBB", &unhex("000000000000000280000000"));
        let m = decode(&b).expect("decode");
        let got: Vec<O2Arg<'_>> = m.args().collect();
        assert_eq!(
            got,
            [O2Arg::Bool(false), O2Arg::Bool(true), O2Arg::Bool(true)]
        );
        // c: the low byte, whether or not the char was sign-extended.
        let b = body(b"/a", b",ccc", &unhex("00000041ffffffe912345678"));
        let m = decode(&b).expect("decode");
        let got: Vec<O2Arg<'_>> = m.args().collect();
        assert_eq!(
            got,
            [O2Arg::Char(b'A'), O2Arg::Char(0xe9), O2Arg::Char(0x78)]
        );
    }

    #[test]
    fn service_and_path() {
        let cases: [(&[u8], &[u8], &[u8]); 6] = [
            (b"/server/echo", b"server", b"server/echo"),
            (b"!_o2/o2lite/con", b"_o2", b"_o2/o2lite/con"),
            (b"!client", b"client", b"client"),
            (b"/", b"", b""),
            (b"!", b"", b""),
            (b"//x", b"", b"/x"),
        ];
        for (address, service, path) in cases {
            let mut out = Vec::new();
            encode_udp(&mut out, 0.0, address, std::iter::empty::<O2Arg<'_>>()).expect("encode");
            let m = decode(&out).expect("decode");
            assert_eq!(m.address(), address);
            assert_eq!(m.service(), service);
            assert_eq!(m.path(), path);
            assert!(!m.is_bundle());
        }
    }

    #[test]
    fn args_iterator_is_exact_and_fused() {
        let out = encode(&[
            O2Arg::Int(1),
            O2Arg::Vector {
                elem: b'h',
                data: &[0; 16],
            },
            O2Arg::Str(b"x"),
        ]);
        let m = decode(&out).expect("decode");
        assert_eq!(m.typetags(), b"ivhs");
        assert_eq!(m.arg_count(), 3);
        let mut it = m.args();
        assert_eq!(it.len(), 3);
        assert_eq!(it.next(), Some(O2Arg::Int(1)));
        assert_eq!(it.len(), 2);
        it.next();
        it.next();
        assert_eq!(it.len(), 0);
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
        // Clones restart independently.
        assert_eq!(m.args().nth(2), Some(O2Arg::Str(b"x")));
    }

    // ---- decode errors, one per kind, with offsets

    #[test]
    fn error_too_short() {
        assert_eq!(decode_err(&[]), err(O2ErrorKind::TooShort, 0));
        assert_eq!(decode_err(&[0; 12]), err(O2ErrorKind::TooShort, 12));
        assert_eq!(decode_err(&[0; 15]), err(O2ErrorKind::TooShort, 15));
        // Address but no type tags.
        let mut b = vec![0; 12];
        b.extend_from_slice(b"/abc\0\0\0\0");
        assert_eq!(decode_err(&b), err(O2ErrorKind::TooShort, 20));
    }

    #[test]
    fn error_not_aligned() {
        let mut b = body(b"/a", b",", &[]);
        b.push(0);
        assert_eq!(decode_err(&b), err(O2ErrorKind::NotAligned, 20));
        b.extend_from_slice(&[0, 0]);
        assert_eq!(decode_err(&b), err(O2ErrorKind::NotAligned, 20));
    }

    #[test]
    fn error_bad_address() {
        assert_eq!(
            decode_err(&body(b"abc", b",", &[])),
            err(O2ErrorKind::BadAddress, 12)
        );
        assert_eq!(
            decode_err(&body(b"", b",", &[])),
            err(O2ErrorKind::BadAddress, 12)
        );
    }

    #[test]
    fn error_unterminated_string() {
        // Address filling the rest of the body.
        let mut b = vec![0; 12];
        b.extend_from_slice(b"/abcdefg");
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnterminatedString, 12));
        // Type tags without NUL.
        let mut b = vec![0; 12];
        b.extend_from_slice(b"/ab\0,iii");
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnterminatedString, 16));
        // A string argument without NUL.
        let b = body(b"/a", b",is", b"\0\0\0\x01abcd");
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnterminatedString, 24));
        let b = body(b"/a", b",S", b"abcdefgh");
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnterminatedString, 20));
    }

    #[test]
    fn error_bad_padding() {
        // After the address: "/a\0X".
        let mut b = vec![0; 12];
        b.extend_from_slice(b"/a\0X,\0\0\0");
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadPadding, 15));
        // After the type tags.
        let mut b = vec![0; 12];
        b.extend_from_slice(b"/a\0\0,\0\0\x01");
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadPadding, 19));
        // After a string argument.
        let b = body(b"/a", b",s", b"ab\0\x01");
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadPadding, 23));
        // After a blob, padding is not checked: o2lite.c leaves stale bytes there (seen
        // with a real o2lite.c client), and the O2 host takes them.
        let b = body(b"/a", b",bi", &unhex("00000005010203040500010000000007"));
        let m = decode(&b).unwrap();
        let args: Vec<_> = m.args().collect();
        assert_eq!(args, [O2Arg::Blob(&[1, 2, 3, 4, 5]), O2Arg::Int(7)]);
    }

    #[test]
    fn error_typetags_no_comma() {
        let b = body(b"/a", b"i", &[0; 4]);
        assert_eq!(decode_err(&b), err(O2ErrorKind::TypeTagsNoComma, 16));
        let b = body(b"/abcd", b"", &[]);
        assert_eq!(decode_err(&b), err(O2ErrorKind::TypeTagsNoComma, 20));
    }

    #[test]
    fn error_unknown_type() {
        let b = body(b"/a", b",ix", &[0; 8]);
        assert_eq!(
            decode_err(&b),
            err(O2ErrorKind::UnknownType { tag: b'x' }, 18)
        );
        let b = body(b"/a", b",,", &[]);
        assert_eq!(
            decode_err(&b),
            err(O2ErrorKind::UnknownType { tag: b',' }, 17)
        );
        // OSC's `r` is not an O2 type here.
        let b = body(b"/a", b",r", &[0; 4]);
        assert_eq!(
            decode_err(&b),
            err(O2ErrorKind::UnknownType { tag: b'r' }, 17)
        );
    }

    #[test]
    fn error_argument_truncated() {
        for tag in [
            b'i', b'f', b'B', b'c', b'm', b'd', b't', b'h', b's', b'S', b'b',
        ] {
            let b = body(b"/a", &[b',', tag], &[]);
            assert_eq!(
                decode_err(&b),
                err(O2ErrorKind::ArgumentTruncated { tag }, 20),
                "{}",
                tag as char
            );
        }
        // A double with only 4 bytes left.
        let b = body(b"/a", b",id", &[0; 8]);
        assert_eq!(
            decode_err(&b),
            err(O2ErrorKind::ArgumentTruncated { tag: b'd' }, 24)
        );
        // A vector without its length word.
        let b = body(b"/a", b",vi", &[]);
        assert_eq!(
            decode_err(&b),
            err(O2ErrorKind::ArgumentTruncated { tag: b'v' }, 20)
        );
    }

    #[test]
    fn error_bad_blob_size() {
        let b = body(b"/a", b",b", &unhex("ffffffff"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadBlobSize, 20));
        let b = body(b"/a", b",b", &unhex("0000000501020304"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadBlobSize, 20));
        let b = body(b"/a", b",ib", &unhex("000000017fffffff"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadBlobSize, 24));
    }

    #[test]
    fn error_bad_vector() {
        // Element code missing or not one of i h f d.
        let b = body(b"/a", b",v", &unhex("00000000"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadVector, 18));
        let b = body(b"/a", b",vs", &unhex("00000000"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadVector, 18));
        let b = body(b"/a", b",ivv", &unhex("0000000100000000"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadVector, 19));
        // Length not a multiple of the element size, negative, or too long.
        let b = body(b"/a", b",vh", &unhex("000000040000000000000000"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadVector, 20));
        let b = body(b"/a", b",vi", &unhex("fffffffc00000000"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadVector, 20));
        let b = body(b"/a", b",ivf", &unhex("000000010000000800000000"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadVector, 28));
    }

    #[test]
    fn error_unbalanced_array() {
        let b = body(b"/a", b",]", &[]);
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnbalancedArray, 17));
        let b = body(b"/a", b",[]]", &[]);
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnbalancedArray, 19));
        // Never closed: offset of the NUL after the type tags.
        let b = body(b"/a", b",[[]", &[]);
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnbalancedArray, 20));
        let b = body(b"/a", b",[i", &[0; 4]);
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnbalancedArray, 19));
    }

    #[test]
    fn error_trailing_bytes() {
        let b = body(b"/a", b",", &[0; 4]);
        assert_eq!(decode_err(&b), err(O2ErrorKind::TrailingBytes, 20));
        let b = body(b"/a", b",i", &[0; 8]);
        assert_eq!(decode_err(&b), err(O2ErrorKind::TrailingBytes, 24));
    }

    #[test]
    fn error_bundle_unsupported() {
        // "#svc", then embedded messages (int32 length + body), no type tags.
        let inner = body(b"/svc/x", b",i", &[0, 0, 0, 1]);
        let mut b = vec![0; 12];
        put_str(&mut b, b"#svc");
        b.extend_from_slice(&(inner.len() as u32).to_be_bytes());
        b.extend_from_slice(&inner);
        assert_eq!(decode_err(&b), err(O2ErrorKind::BundleUnsupported, 12));
        // A malformed bundle address is reported as such.
        let mut b = vec![0; 12];
        b.extend_from_slice(b"#svc");
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnterminatedString, 12));
    }

    // ---- encode errors

    #[test]
    fn encode_errors_leave_out_unchanged() {
        let cases: Vec<(&[u8], Vec<O2Arg<'_>>, O2Error)> = vec![
            (b"", vec![], err(O2ErrorKind::BadAddress, 12)),
            (b"svc/x", vec![], err(O2ErrorKind::BadAddress, 12)),
            (b"#svc", vec![], err(O2ErrorKind::BadAddress, 12)),
            (b"/a\0b", vec![], err(O2ErrorKind::BadAddress, 14)),
            // "/a" 4 + ",is" 4 + int 4: the string starts at 24, its NUL at 26.
            (
                b"/a",
                vec![O2Arg::Int(1), O2Arg::Str(b"ab\0c")],
                err(O2ErrorKind::NulInString, 26),
            ),
            (
                b"/a",
                vec![O2Arg::Symbol(b"\0")],
                err(O2ErrorKind::NulInString, 20),
            ),
            (
                b"/a",
                vec![
                    O2Arg::Int(1),
                    O2Arg::Vector {
                        elem: b's',
                        data: &[],
                    },
                ],
                err(O2ErrorKind::BadVector, 19),
            ),
            (
                b"/a",
                vec![O2Arg::Vector {
                    elem: b'd',
                    data: &[0; 12],
                }],
                err(O2ErrorKind::BadVector, 20),
            ),
            (
                b"/a",
                vec![O2Arg::ArrayEnd],
                err(O2ErrorKind::UnbalancedArray, 17),
            ),
            (
                b"/a",
                vec![O2Arg::ArrayStart, O2Arg::ArrayStart, O2Arg::ArrayEnd],
                err(O2ErrorKind::UnbalancedArray, 20),
            ),
        ];
        for (address, args, want) in cases {
            let mut out = vec![1, 2, 3];
            assert_eq!(
                encode_body(&mut out, 0, 0.0, address, &args),
                Err(want),
                "{args:?}"
            );
            assert_eq!(out, [1, 2, 3]);
            assert_eq!(encode_tcp(&mut out, 0.0, address, &args), Err(want));
            assert_eq!(out, [1, 2, 3]);
            assert_eq!(encode_udp(&mut out, 0.0, address, &args), Err(want));
            assert_eq!(out, [1, 2, 3]);
        }
    }

    #[test]
    fn encode_tcp_frame_limit() {
        // Bodies are 4-aligned, so the largest frame body is 65532 bytes. Header 12 +
        // "/a" 4 + ",b" 4 + size 4 = 24 bytes come before the blob data.
        let max_body = MAX_TCP_FRAME & !3;
        let big = vec![7u8; max_body - 24];
        let mut out = vec![9];
        encode_tcp(&mut out, 0.0, b"/a", [O2Arg::Blob(&big)]).expect("fits");
        assert_eq!(out.len(), 1 + 4 + max_body);
        assert_eq!(&out[1..5], &(max_body as u32).to_be_bytes());
        assert_eq!(decode(&out[5..]).expect("decode").arg_count(), 1);

        // One more byte of blob needs a whole padded word: 65536 bytes.
        let big = vec![7u8; max_body - 23];
        let mut out = vec![9];
        assert_eq!(
            encode_tcp(&mut out, 0.0, b"/a", [O2Arg::Blob(&big)]),
            Err(err(O2ErrorKind::FrameTooLong, MAX_TCP_FRAME))
        );
        assert_eq!(out, [9]);
        // A bare body has no such limit; a datagram has its own, checked here too.
        encode_body(&mut out, 0, 0.0, b"/a", [O2Arg::Blob(&big)]).expect("body");
        assert_eq!(out.len(), 1 + MAX_TCP_FRAME + 1);
        assert_eq!(decode(&out[1..]).expect("decode").arg_count(), 1);
        out.truncate(1);
        // 24 bytes before the blob's data; bodies are whole words, the last 65,504 bytes.
        let most = vec![7u8; 65_504 - 24];
        encode_udp(&mut out, 0.0, b"/a", [O2Arg::Blob(&most)]).expect("udp");
        assert_eq!(out.len(), 1 + 65_504);
        out.truncate(1);
        let over = vec![7u8; 65_504 - 23];
        assert_eq!(
            encode_udp(&mut out, 0.0, b"/a", [O2Arg::Blob(&over)]),
            Err(err(O2ErrorKind::DatagramTooLong, MAX_UDP_BODY))
        );
        assert_eq!(out, [9]);
    }

    #[test]
    fn error_display_is_one_line_with_offset() {
        let kinds = [
            O2ErrorKind::TooShort,
            O2ErrorKind::NotAligned,
            O2ErrorKind::BadAddress,
            O2ErrorKind::UnterminatedString,
            O2ErrorKind::BadPadding,
            O2ErrorKind::TypeTagsNoComma,
            O2ErrorKind::UnknownType { tag: b'x' },
            O2ErrorKind::UnknownType { tag: 0 },
            O2ErrorKind::ArgumentTruncated { tag: b'i' },
            O2ErrorKind::BadBlobSize,
            O2ErrorKind::BadVector,
            O2ErrorKind::UnbalancedArray,
            O2ErrorKind::TrailingBytes,
            O2ErrorKind::BundleUnsupported,
            O2ErrorKind::NulInString,
            O2ErrorKind::FrameTooLong,
        ];
        for kind in kinds {
            let s = err(kind, 1234).to_string();
            assert!(s.ends_with("at offset 1234"), "{s}");
            assert!(!s.contains('\n'));
        }
        assert_eq!(
            err(O2ErrorKind::UnknownType { tag: b'x' }, 17).to_string(),
            "O2 message: unknown type code 'x' at offset 17"
        );
        assert_eq!(
            err(O2ErrorKind::UnknownType { tag: 1 }, 17).to_string(),
            "O2 message: unknown type code 0x01 at offset 17"
        );
        let e: Box<dyn std::error::Error> = Box::new(err(O2ErrorKind::TooShort, 0));
        assert!(e.to_string().contains("too short"));
    }

    // ---- hostile input

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Decodes; when accepted, reads every argument and re-encodes, which must give the
    /// same bytes unless `B`/`c` were normalised.
    fn check_mutant(b: &[u8]) -> bool {
        let Ok(m) = decode(b) else {
            return false;
        };
        let args: Vec<O2Arg<'_>> = m.args().collect();
        assert_eq!(args.len(), m.arg_count());
        assert_eq!(m.args().len(), m.arg_count());
        let mut out = Vec::new();
        encode_body(&mut out, m.misc(), m.timestamp(), m.address(), &args)
            .expect("re-encode accepted message");
        if !m.typetags().iter().any(|&t| t == b'B' || t == b'c') {
            assert_eq!(out, b);
        }
        let again = decode(&out).expect("decode re-encoding");
        assert_eq!(again.arg_count(), m.arg_count());
        true
    }

    #[test]
    fn mutation_loop_never_panics() {
        let text = std::fs::read_to_string(VECTORS).expect("read o2lite.json");
        let json: Value = serde_json::from_str(&text).expect("parse o2lite.json");
        let mut seeds: Vec<Vec<u8>> = json["vectors"]
            .as_array()
            .expect("vectors")
            .iter()
            .map(|v| {
                let wire = unhex(v["hex"].as_str().expect("hex"));
                if v["transport"] == "TCP" {
                    wire[4..].to_vec()
                } else {
                    wire
                }
            })
            .collect();
        // Seeds with the rarer types too.
        seeds.push(encode(&[
            O2Arg::ArrayStart,
            O2Arg::Vector {
                elem: b'd',
                data: &[0x40; 16],
            },
            O2Arg::Blob(b"12345678"),
            O2Arg::ArrayEnd,
            O2Arg::Symbol(b"sym"),
            O2Arg::Midi([1, 2, 3, 4]),
            O2Arg::Char(b'c'),
            O2Arg::Nil,
            O2Arg::Infinitum,
        ]));

        let interesting: [u32; 8] = [0, 1, 4, 8, 0x7fff_ffff, 0xffff_ffff, 0x8000_0000, 0xfffc];
        let tags = b"ifsdthBbTFNIcmSv[]ihfd,#/!\0x";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        let mut total = 0;
        for round in 0..6000 {
            let seed = &seeds[round % seeds.len()];
            let mut b = seed.clone();
            for _ in 0..1 + rng.below(3) {
                match rng.below(7) {
                    0 => {
                        let n = rng.below(b.len() + 1);
                        b.truncate(n);
                    }
                    1 => {
                        for _ in 0..1 + rng.below(4) {
                            if !b.is_empty() {
                                let i = rng.below(b.len());
                                b[i] ^= 1 << rng.below(8);
                            }
                        }
                    }
                    2 => {
                        let at = rng.below(b.len() / 4 + 1) * 4;
                        let w = interesting[rng.below(interesting.len())];
                        let w = if rng.below(2) == 0 {
                            w
                        } else {
                            rng.next() as u32
                        };
                        b.splice(at..at, w.to_be_bytes());
                    }
                    3 if b.len() >= 4 => {
                        let at = rng.below(b.len() / 4) * 4;
                        b.drain(at..at + 4);
                    }
                    4 if b.len() >= 4 => {
                        let at = rng.below(b.len() / 4) * 4;
                        let w = interesting[rng.below(interesting.len())];
                        b[at..at + 4].copy_from_slice(&w.to_be_bytes());
                    }
                    5 if b.len() > 16 => {
                        // Replace a byte of the header, address or type tags with a
                        // type code or a delimiter.
                        let i = 12 + rng.below((b.len() - 12).min(32));
                        b[i] = tags[rng.below(tags.len())];
                    }
                    _ => {
                        let i = rng.below(b.len() + 1);
                        b.insert(i, rng.next() as u8);
                    }
                }
            }
            total += 1;
            if check_mutant(&b) {
                accepted += 1;
            }
            // Every prefix of the seed is handled too (only some rounds, to stay quick).
            if round < seeds.len() {
                for n in 0..seed.len() {
                    check_mutant(&seed[..n]);
                }
            }
        }
        assert_eq!(total, 6000);
        // The loop exercises both outcomes.
        assert!(accepted > 100, "accepted {accepted}");
        assert!(accepted < total, "accepted {accepted}");

        // Random bodies behind a plausible header.
        for _ in 0..2000 {
            let mut b = vec![0; 12];
            b.extend_from_slice(b"/a\0\0,");
            let n = rng.below(40);
            for _ in 0..n {
                b.push(tags[rng.below(tags.len())]);
            }
            let m = rng.below(64);
            for _ in 0..m {
                b.push(if rng.below(3) == 0 {
                    rng.next() as u8
                } else {
                    0
                });
            }
            check_mutant(&b);
        }
    }

    #[test]
    fn large_hostile_bodies_decode_in_linear_time() {
        let start = std::time::Instant::now();
        // 200k unmatched '[' (no payload each): rejected after one pass.
        let tags: Vec<u8> = std::iter::once(b',')
            .chain(std::iter::repeat(b'[').take(200_000))
            .collect();
        let b = body(b"/a", &tags, &[]);
        assert_eq!(decode_err(&b).kind, O2ErrorKind::UnbalancedArray);
        // 100k empty strings: accepted, 100k arguments.
        let tags: Vec<u8> = std::iter::once(b',')
            .chain(std::iter::repeat(b's').take(100_000))
            .collect();
        let b = body(b"/a", &tags, &vec![0; 400_000]);
        let m = decode(&b).expect("decode");
        assert_eq!(m.args().count(), 100_000);
        // One huge unterminated address.
        let mut b = vec![0; 12];
        b.push(b'/');
        b.extend(std::iter::repeat(b'a').take(1_000_003));
        assert_eq!(decode_err(&b), err(O2ErrorKind::UnterminatedString, 12));
        // A blob claiming more than the body holds.
        let b = body(b"/a", b",b", &unhex("7ffffff0"));
        assert_eq!(decode_err(&b), err(O2ErrorKind::BadBlobSize, 20));
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }
}
