//! osc4py3's advanced packet control: a packet carried inside a `/packet` message whose six
//! arguments (`,sbsbsb`) are a checksum protocol and checksum, a signature protocol and
//! signature, an encryption protocol, and the packet itself (encrypted when that protocol
//! is set). The checksum and signature are made over the plain packet; a receiver
//! decrypts, then checks the signature, then the checksum. Protocols name functions both
//! sides agree on (osc4py3 takes them as out-of-band options); empty ones mean none.
//!
//! Used as packet hooks, a channel speaks it:
//!
//! ```
//! use rosco::osc::Envelope;
//! use rosco::runtime::{HookVerdict, PacketHook};
//! let seal: PacketHook = Box::new(|packet, out| match Envelope::plain(packet).seal(out) {
//!     Ok(()) => HookVerdict::Replace,
//!     Err(_) => HookVerdict::Drop,
//! });
//! let open: PacketHook = Box::new(|packet, out| match Envelope::open(packet) {
//!     Ok(e) if e.is_plain() => {
//!         out.extend_from_slice(e.data);
//!         HookVerdict::Replace
//!     }
//!     _ => HookVerdict::Drop,
//! });
//! ```

use super::{decode, encode_message, Arg, DecodeError, EncodeError, Packet};
use std::fmt;

/// The address of an envelope message.
pub const ENVELOPE_ADDRESS: &str = "/packet";

/// The parts of an envelope, borrowed from the packet it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Envelope<'a> {
    /// The name of the checksum function (empty: none).
    pub checksum_protocol: &'a [u8],
    /// The checksum of the plain packet.
    pub checksum: &'a [u8],
    /// The name of the signature function (empty: none).
    pub signature_protocol: &'a [u8],
    /// The signature of the plain packet.
    pub signature: &'a [u8],
    /// The name of the encryption function (empty: none, `data` is the plain packet).
    pub encryption_protocol: &'a [u8],
    /// The packet carried.
    pub data: &'a [u8],
}

/// Why a packet is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// It is not valid OSC.
    Decode(DecodeError),
    /// It is OSC, but not a `/packet ,sbsbsb` message.
    NotEnvelope,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::Decode(e) => e.fmt(f),
            EnvelopeError::NotEnvelope => {
                write!(
                    f,
                    "not a packet control envelope ({ENVELOPE_ADDRESS} ,sbsbsb)"
                )
            }
        }
    }
}

impl std::error::Error for EnvelopeError {}

impl<'a> Envelope<'a> {
    /// An envelope around `data` with no checksum, signature or encryption.
    pub fn plain(data: &'a [u8]) -> Envelope<'a> {
        Envelope {
            data,
            ..Envelope::default()
        }
    }

    /// True when there is nothing to check or decrypt: no protocol named, no checksum or
    /// signature given (osc4py3 sends a checksum without a protocol name when it is given
    /// a function but no name).
    pub fn is_plain(&self) -> bool {
        [
            self.checksum_protocol,
            self.checksum,
            self.signature_protocol,
            self.signature,
            self.encryption_protocol,
        ]
        .iter()
        .all(|part| part.is_empty())
    }

    /// Reads the envelope that `packet` is (validating it whole).
    pub fn open(packet: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let Packet::Message(m) = decode(packet).map_err(EnvelopeError::Decode)? else {
            return Err(EnvelopeError::NotEnvelope);
        };
        if m.address() != ENVELOPE_ADDRESS.as_bytes() || m.typetags() != b"sbsbsb" {
            return Err(EnvelopeError::NotEnvelope);
        }
        let mut args = m.args().map(|a| match a {
            Arg::Str(s) | Arg::Blob(s) => s,
            _ => &[],
        });
        let mut next = || args.next().unwrap_or_default();
        Ok(Envelope {
            checksum_protocol: next(),
            checksum: next(),
            signature_protocol: next(),
            signature: next(),
            encryption_protocol: next(),
            data: next(),
        })
    }

    /// Writes the envelope as a `/packet` message into `out`, replacing its contents.
    pub fn seal(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let args = [
            Arg::Str(self.checksum_protocol),
            Arg::Blob(self.checksum),
            Arg::Str(self.signature_protocol),
            Arg::Blob(self.signature),
            Arg::Str(self.encryption_protocol),
            Arg::Blob(self.data),
        ];
        encode_message(ENVELOPE_ADDRESS, &args, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens() {
        let mut inner = Vec::new();
        encode_message("/a/b", &[Arg::Int(1), Arg::Float(2.5)], &mut inner).unwrap();
        let mut packet = Vec::new();
        Envelope::plain(&inner).seal(&mut packet).unwrap();
        // osc4py3's bytes for this message without checksum, signature or encryption.
        let want = "2f7061636b6574002c736273627362000000000000000000000000000000000000000000\
                    000000142f612f62000000002c6966000000000140200000";
        let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want);
        let e = Envelope::open(&packet).unwrap();
        assert!(e.is_plain());
        assert_eq!(e, Envelope::plain(&inner));

        // With osc4py3 given a CRC-32 checksum function.
        let checked = Envelope {
            checksum_protocol: b"crc32",
            checksum: &[0xad, 0x5a, 0x07, 0xcc],
            ..Envelope::plain(&inner)
        };
        checked.seal(&mut packet).unwrap();
        let want = "2f7061636b6574002c7362736273620063726333320000000000000\
                    4ad5a07cc000000000000000000000000000000142f612f62000000002c696600\
                    0000000140200000";
        let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want);
        assert_eq!(Envelope::open(&packet), Ok(checked));
        assert!(!checked.is_plain());
        let unnamed = Envelope {
            checksum: &[1, 2, 3, 4],
            ..Envelope::plain(&inner)
        };
        assert!(!unnamed.is_plain());
    }

    #[test]
    fn refuses_what_is_not_an_envelope() {
        let mut packet = Vec::new();
        encode_message("/packet", &[Arg::Str(b"x")], &mut packet).unwrap();
        assert_eq!(Envelope::open(&packet), Err(EnvelopeError::NotEnvelope));
        encode_message("/other", &[Arg::Str(b""); 6], &mut packet).unwrap();
        assert_eq!(Envelope::open(&packet), Err(EnvelopeError::NotEnvelope));
        assert!(matches!(
            Envelope::open(b"/pa"),
            Err(EnvelopeError::Decode(_))
        ));
    }
}
