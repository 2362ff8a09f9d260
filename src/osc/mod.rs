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
    DEFAULT_MAX_PATTERN_LEN, DEPTH_LIMIT, MAX_BUNDLE_DEPTH,
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

/// A message `/m` inside `levels` nested immediate bundles (for tests of deep nesting).
#[cfg(test)]
pub(crate) fn nest(levels: usize) -> Vec<u8> {
    let mut packet = b"/m\0\0,\0\0\0".to_vec();
    for _ in 0..levels {
        let mut bundle = b"#bundle\0\0\0\0\0\0\0\0\x01".to_vec();
        bundle.extend_from_slice(&(packet.len() as u32).to_be_bytes());
        bundle.append(&mut packet);
        packet = bundle;
    }
    packet
}
