//! Codec errors: what went wrong and where.

use std::fmt;

/// Why a packet was rejected, and the byte offset in the packet where the problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// What is wrong.
    pub kind: DecodeErrorKind,
    /// Offset from the start of the packet.
    pub offset: usize,
}

/// The kinds of malformed packet (the rules of specs/osc.md §6, plus decoder options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The packet has no bytes.
    Empty,
    /// The packet length is not a multiple of 4.
    NotAligned {
        /// The length.
        len: usize,
    },
    /// The content starts with neither `/` nor `#bundle\0`.
    NotOsc,
    /// Starts with `#` but not with the exact `#bundle\0` header.
    BadBundleHeader,
    /// A bundle too short to hold its timetag.
    BundleTimetagMissing,
    /// A bundle element's size is negative, zero, not a multiple of 4, or runs past the end.
    BadElementSize {
        /// The size read.
        size: i32,
    },
    /// Fewer than 4 bytes left where a bundle element's size should be.
    ElementSizeTruncated,
    /// Bundles nested deeper than the limit (32 by default; the outermost is depth 1).
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// An OSC string with no terminating NUL.
    UnterminatedString,
    /// A non-zero pad byte after a string or blob.
    BadPadding,
    /// The type-tag string does not start with `,`.
    TypeTagsNoComma,
    /// No type-tag string, and the decoder requires one.
    TypeTagsMissing,
    /// A type tag rosco does not know; the rest of the message cannot be read.
    UnknownType {
        /// The tag.
        tag: u8,
    },
    /// A known type tag the decoder was told not to accept.
    TypeNotAllowed {
        /// The tag.
        tag: u8,
    },
    /// Argument data shorter than its type needs.
    ArgumentTruncated {
        /// The tag of the argument.
        tag: u8,
    },
    /// A blob size that is negative or larger than what remains.
    BadBlobSize {
        /// The size read.
        size: i32,
    },
    /// A `c` argument in neither `00 00 00 XX` nor `XX 00 00 00` layout.
    BadChar,
    /// Bytes left after the last argument.
    TrailingBytes,
    /// `[` and `]` do not balance.
    UnbalancedArray,
    /// The address breaks the OSC address syntax (with the address check on).
    BadAddress,
    /// A compressed address (`/` + int32 code) whose code is not in the table.
    UnknownAddressCode {
        /// The code.
        code: i32,
    },
    /// The address `/` followed by something that is not a type-tag string, with no
    /// address table: most likely a compressed address (`/` + int32 code), which only its
    /// table can read.
    AddressCodeWithoutTable,
    /// A byte over 127 in the address, a string or a char (with `ascii_only` on).
    NotAscii,
    /// An address pattern longer than `max_pattern_len`.
    PatternTooLong {
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeErrorKind::Empty => write!(f, "empty packet"),
            DecodeErrorKind::NotAligned { len } => {
                write!(f, "packet length {len} is not a multiple of 4")
            }
            DecodeErrorKind::NotOsc => write!(f, "neither a message ('/') nor a bundle"),
            DecodeErrorKind::BadBundleHeader => write!(f, "bad bundle header"),
            DecodeErrorKind::BundleTimetagMissing => write!(f, "bundle without a timetag"),
            DecodeErrorKind::BadElementSize { size } => {
                write!(f, "bad bundle element size {size}")
            }
            DecodeErrorKind::ElementSizeTruncated => {
                write!(f, "bundle element size truncated")
            }
            DecodeErrorKind::TooDeep { max } => {
                write!(f, "bundles nested deeper than {max}")
            }
            DecodeErrorKind::UnterminatedString => write!(f, "unterminated string"),
            DecodeErrorKind::BadPadding => write!(f, "non-zero padding byte"),
            DecodeErrorKind::TypeTagsNoComma => write!(f, "type tags do not start with ','"),
            DecodeErrorKind::TypeTagsMissing => write!(f, "message has no type tags"),
            DecodeErrorKind::UnknownType { tag } => {
                write!(f, "unknown type tag {}", Tag(tag))
            }
            DecodeErrorKind::TypeNotAllowed { tag } => {
                write!(f, "type tag {} not allowed", Tag(tag))
            }
            DecodeErrorKind::ArgumentTruncated { tag } => {
                write!(f, "argument of type {} truncated", Tag(tag))
            }
            DecodeErrorKind::BadBlobSize { size } => write!(f, "bad blob size {size}"),
            DecodeErrorKind::BadChar => write!(f, "bad char argument layout"),
            DecodeErrorKind::TrailingBytes => write!(f, "bytes after the last argument"),
            DecodeErrorKind::UnbalancedArray => write!(f, "unbalanced array brackets"),
            DecodeErrorKind::BadAddress => write!(f, "invalid address"),
            DecodeErrorKind::UnknownAddressCode { code } => {
                write!(f, "unknown compressed address code {code}")
            }
            DecodeErrorKind::AddressCodeWithoutTable => write!(
                f,
                "address / with no type tags after it (a compressed address? reading one \
                 needs its address table)"
            ),
            DecodeErrorKind::NotAscii => write!(f, "text that is not ASCII"),
            DecodeErrorKind::PatternTooLong { max } => {
                write!(f, "address pattern longer than {max} bytes")
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.kind, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The address is empty, does not start with `/`, contains NUL, or breaks the OSC
    /// address syntax (with the address check on), or is not ASCII (with `ascii_only` on).
    BadAddress,
    /// A string or symbol argument contains a NUL byte.
    NulInString {
        /// Index of the argument.
        index: usize,
    },
    /// A blob longer than an int32 can count.
    BlobTooLarge {
        /// Index of the argument.
        index: usize,
    },
    /// `ArrayStart` and `ArrayEnd` do not balance.
    UnbalancedArray,
    /// A type the encoder was told not to emit.
    TypeNotAllowed {
        /// The tag.
        tag: u8,
    },
    /// More nested bundles than the limit.
    TooDeep,
    /// `end_bundle` without an open bundle, or a second top-level packet, or a packet
    /// finished while bundles are still open.
    BadNesting,
    /// The packet would be larger than an int32 element size can describe.
    TooLarge,
    /// A string, symbol or char with a byte over 127 (with `ascii_only` on).
    NotAscii {
        /// Index of the argument.
        index: usize,
    },
    /// The address `/` with an address table: `/` alone announces a compressed address,
    /// so a receiver would read the first argument as a code.
    SlashWithAddressTable,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BadAddress => write!(f, "invalid OSC address"),
            EncodeError::NulInString { index } => {
                write!(f, "argument {index}: string contains a NUL byte")
            }
            EncodeError::BlobTooLarge { index } => write!(f, "argument {index}: blob too large"),
            EncodeError::UnbalancedArray => write!(f, "unbalanced array brackets"),
            EncodeError::TypeNotAllowed { tag } => write!(f, "type tag {} not allowed", Tag(tag)),
            EncodeError::TooDeep => write!(f, "bundles nested too deeply"),
            EncodeError::BadNesting => write!(f, "bundle begin/end do not match"),
            EncodeError::TooLarge => write!(f, "packet too large"),
            EncodeError::NotAscii { index } => write!(f, "argument {index}: not ASCII"),
            EncodeError::SlashWithAddressTable => write!(
                f,
                "the address / cannot be sent with address codes: / alone announces a \
                 compressed address"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Prints a tag byte readably: `'x'` or `0xNN` (OSC and O2 errors alike).
pub(crate) struct Tag(pub(crate) u8);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0 as char)
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}
