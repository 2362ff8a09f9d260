//! The OSC wire format, sans-IO: argument types, zero-copy strict decoding, encoding into
//! reused buffers, bundles, address compression, osc4py3's packet control envelopes, hex
//! dumps, JSON rendering and stream framing.

mod address_table;
mod decode;
mod encode;
mod envelope;
mod error;
pub(crate) use error::Tag;
pub mod framing;
mod hexdump;
mod json;
mod text;
mod types;

pub use address_table::{AddressTable, AddressTableError};
pub use decode::{
    decode, decode_with, Args, Bundle, DecodeOptions, Elements, Message, Packet,
    DEFAULT_MAX_PATTERN_LEN, MAX_BUNDLE_DEPTH,
};
pub use encode::{encode_message, EncodeOptions, PacketWriter};
pub(crate) use encode::{WriterState, O2_OPTIONS as O2_ENCODE};
pub use envelope::{Envelope, EnvelopeError, ENVELOPE_ADDRESS};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use framing::{encode_frame, DeframeMode, Deframer, FrameError, Framing, LengthHeader};
#[cfg(test)]
pub(crate) use hexdump::unhex;
pub use hexdump::HexDump;
pub use json::Json;
pub use text::{PacketText, Text};
pub use types::{Arg, OwnedArg, TypeSet, ALL_TYPE_TAGS};
