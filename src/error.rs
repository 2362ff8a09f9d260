//! The runtime's error type. Codec, pattern and URL errors keep their own precise types;
//! this one gathers them for the operations that can fail in several ways.

use crate::dispatch::MethodError;
use crate::osc::{DecodeError, EncodeError};
use crate::transport::url::UrlError;
use std::fmt;
use std::io;

/// Why a runtime operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Io(io::Error),
    /// A channel URL is malformed or names an unknown option.
    Url(UrlError),
    /// A message could not be encoded.
    Encode(EncodeError),
    /// A received packet was malformed.
    Decode(DecodeError),
    /// A method could not be registered.
    Method(MethodError),
    /// The handle names no open channel (closed, or never opened).
    NoChannel,
    /// No channel has this name.
    NoName(String),
    /// A channel name is already in use.
    NameTaken(String),
    /// The context is shut down, or the peer or connection is gone.
    Closed,
    /// A bounded queue or buffer is full; nothing was sent.
    Full,
    /// The operation does not apply to this channel (for example sending on a listener
    /// with no peer to reply to).
    Unsupported(&'static str),
    /// `poll` was called from inside a callback it is running, or from two threads at once.
    Busy,
    /// The wait ended before the operation completed.
    Timeout,
    /// An O2 service cannot be offered under this name (malformed, or another's).
    Service(String),
    /// A context option is out of its range.
    BadOption(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Url(e) => write!(f, "{e}"),
            Error::Encode(e) => write!(f, "cannot encode: {e}"),
            Error::Decode(e) => write!(f, "malformed packet: {e}"),
            Error::Method(e) => write!(f, "{e}"),
            Error::NoChannel => write!(f, "no such channel (closed or never opened)"),
            Error::NoName(n) => write!(f, "no channel named '{n}'"),
            Error::NameTaken(n) => write!(f, "a channel named '{n}' is already open"),
            Error::Closed => write!(f, "closed"),
            Error::Full => write!(f, "queue full"),
            Error::Unsupported(why) => write!(f, "not supported: {why}"),
            Error::Busy => write!(f, "poll is already running on this context"),
            Error::Timeout => write!(f, "timed out"),
            Error::Service(why) => write!(f, "O2 service {why}"),
            Error::BadOption(why) => write!(f, "bad option: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Url(e) => Some(e),
            Error::Encode(e) => Some(e),
            Error::Decode(e) => Some(e),
            Error::Method(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Error {
        Error::Url(e)
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Error {
        Error::Encode(e)
    }
}

impl From<MethodError> for Error {
    fn from(e: MethodError) -> Error {
        Error::Method(e)
    }
}
