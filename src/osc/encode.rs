//! Encoding into a caller-owned buffer.
//!
//! Nothing here allocates except to grow the caller's `Vec`; reusing one buffer makes
//! encoding allocation-free once it has reached the size of the largest packet.

use super::address_table::AddressTable;
use super::decode::MAX_BUNDLE_DEPTH;
use super::error::EncodeError;
use super::types::{pad4, padded_str_len, Arg, TypeSet};
use crate::time::TimeTag;
use std::borrow::Borrow;
use std::mem::MaybeUninit;
use std::sync::Arc;

/// Encoder options (osc4py3's out-of-band options for outgoing packets).
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// Types that may be sent; any other is an error.
    pub allowed_types: TypeSet,
    /// Refuse addresses that break the OSC address/pattern syntax (by default only an
    /// empty address, one without a leading `/`, or one containing NUL is refused).
    pub check_address: bool,
    /// Address compression: addresses in the table are sent as `/` plus their code.
    pub addresses: Option<Arc<AddressTable>>,
    /// Refuse addresses, strings, symbols and chars with bytes over 127 (osc4py3 encodes
    /// text as strict ASCII by default).
    pub ascii_only: bool,
}

static DEFAULT_OPTIONS: EncodeOptions = EncodeOptions::DEFAULT;

/// Every type, O2's `B` included: for messages that came over, or go to, O2lite.
pub(crate) static O2_OPTIONS: EncodeOptions = EncodeOptions {
    allowed_types: TypeSet::O2,
    check_address: false,
    addresses: None,
    ascii_only: false,
};

impl EncodeOptions {
    /// The defaults: every type, only the basic address checks (a leading `/`, no NUL), no
    /// compression, any bytes in text.
    pub const DEFAULT: EncodeOptions = EncodeOptions {
        allowed_types: TypeSet::ALL,
        check_address: false,
        addresses: None,
        ascii_only: false,
    };

    /// True for options that change nothing: every type, no checks, no compression.
    pub(crate) fn is_default(&self) -> bool {
        self.allowed_types == TypeSet::ALL
            && !self.check_address
            && self.addresses.is_none()
            && !self.ascii_only
    }
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions::DEFAULT
    }
}

/// Encodes one message into `out`, replacing its contents.
pub fn encode_message(
    address: impl AsRef<[u8]>,
    args: &[Arg<'_>],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.clear();
    // The constant, not the static: its fields are known here, so the option checks fold.
    let result = write_message(
        out,
        address.as_ref(),
        args.iter(),
        &EncodeOptions::DEFAULT,
        false,
    );
    if result.is_err() {
        out.clear();
    }
    result
}

/// Writes one packet, a message or a (nested) bundle, into a caller-owned buffer.
///
/// ```
/// use rosco::osc::{Arg, PacketWriter};
/// use rosco::TimeTag;
/// let mut buf = Vec::new();
/// let mut w = PacketWriter::new(&mut buf);
/// w.begin_bundle(TimeTag::IMMEDIATE)?;
/// w.message("/a", &[Arg::Int(1)])?;
/// w.end_bundle()?;
/// w.finish()?;
/// assert_eq!(buf.len(), 32);
/// # Ok::<(), rosco::osc::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct PacketWriter<'o, 't> {
    out: &'o mut Vec<u8>,
    opts: &'t EncodeOptions,
    /// Offset of the innermost open bundle's size field. While a bundle is open, its size
    /// field holds the offset of its parent's, so the stack of open bundles lives in the
    /// buffer itself and the writer stays small.
    innermost: usize,
    depth: usize,
}

/// Where a writer stopped: lets a long-lived builder (the C API's) keep a packet open
/// across calls without borrowing its buffer in between.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WriterState {
    innermost: usize,
    depth: usize,
}

impl WriterState {
    /// Bundles still open.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }
}

impl<'o> PacketWriter<'o, 'static> {
    /// A writer with the default options; clears `out`.
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        PacketWriter::with_options(out, &DEFAULT_OPTIONS)
    }
}

impl<'o, 't> PacketWriter<'o, 't> {
    /// A writer with the given options; clears `out`.
    pub fn with_options(out: &'o mut Vec<u8>, opts: &'t EncodeOptions) -> Self {
        out.clear();
        // Options that change nothing (a context's, most often) take the default path,
        // where their checks fold away.
        let opts = match opts.is_default() {
            true => &DEFAULT_OPTIONS,
            false => opts,
        };
        PacketWriter {
            out,
            opts,
            innermost: 0,
            depth: 0,
        }
    }

    /// Continues writing into `out` (not cleared) from `state`.
    pub(crate) fn resume(out: &'o mut Vec<u8>, state: WriterState) -> PacketWriter<'o, 'static> {
        PacketWriter {
            out,
            opts: &DEFAULT_OPTIONS,
            innermost: state.innermost,
            depth: state.depth,
        }
    }

    /// Where this writer is, to [`resume`](Self::resume) later.
    pub(crate) fn state(&self) -> WriterState {
        WriterState {
            innermost: self.innermost,
            depth: self.depth,
        }
    }

    /// Opens a bundle: the packet itself, or an element of the open bundle.
    pub fn begin_bundle(&mut self, timetag: TimeTag) -> Result<(), EncodeError> {
        if self.depth == MAX_BUNDLE_DEPTH {
            return Err(EncodeError::TooDeep);
        }
        let size_at = self.begin_element()?;
        if self.depth > 0 {
            let parent = u32::try_from(self.innermost).map_err(|_| EncodeError::TooLarge)?;
            self.out[size_at..size_at + 4].copy_from_slice(&parent.to_ne_bytes());
        }
        self.out.extend_from_slice(b"#bundle\0");
        self.out.extend_from_slice(&timetag.to_bits().to_be_bytes());
        self.innermost = size_at;
        self.depth += 1;
        Ok(())
    }

    /// Closes the innermost open bundle. On error the writer is as it was: the bundle is
    /// still open.
    pub fn end_bundle(&mut self) -> Result<(), EncodeError> {
        if self.depth == 0 {
            return Err(EncodeError::BadNesting);
        }
        if self.depth > 1 {
            let size_at = self.innermost;
            let link = &self.out[size_at..size_at + 4];
            let parent = u32::from_ne_bytes([link[0], link[1], link[2], link[3]]) as usize;
            self.end_element(size_at)?;
            self.innermost = parent;
        }
        self.depth -= 1;
        Ok(())
    }

    /// Writes a message: the packet itself, or an element of the open bundle. On error
    /// nothing of it stays in the buffer.
    pub fn message(
        &mut self,
        address: impl AsRef<[u8]>,
        args: &[Arg<'_>],
    ) -> Result<(), EncodeError> {
        self.write_message_element(address.as_ref(), args.iter())
    }

    /// Like [`message`](Self::message), with the arguments from an iterator (read twice:
    /// once for the type tags, once for the payloads).
    pub fn message_iter<'a, I>(
        &mut self,
        address: impl AsRef<[u8]>,
        args: I,
    ) -> Result<(), EncodeError>
    where
        I: Iterator<Item = Arg<'a>> + Clone,
    {
        self.write_message_element(address.as_ref(), args)
    }

    /// Writes a decoded packet again, its messages checked and compressed as this writer's
    /// options say: for bytes encoded before the options were known (the C API's builder
    /// writes bundles before it learns the context they are sent with).
    pub(crate) fn packet(&mut self, packet: &super::Packet<'_>) -> Result<(), EncodeError> {
        match packet {
            super::Packet::Message(m) => self.message_iter(m.address(), m.args()),
            super::Packet::Bundle(b) => {
                self.begin_bundle(b.timetag())?;
                for element in b.elements() {
                    self.packet(&element)?;
                }
                self.end_bundle()
            }
        }
    }

    /// Checks that every bundle is closed and returns the packet length.
    pub fn finish(self) -> Result<usize, EncodeError> {
        match self.depth {
            0 if !self.out.is_empty() => Ok(self.out.len()),
            _ => Err(EncodeError::BadNesting),
        }
    }

    /// Writes a message element (inside a bundle, its size first); on error nothing of it
    /// stays in the buffer.
    fn write_message_element<'a, A: Borrow<Arg<'a>>>(
        &mut self,
        address: &[u8],
        args: impl Iterator<Item = A> + Clone,
    ) -> Result<(), EncodeError> {
        if self.depth == 0 && !self.out.is_empty() {
            return Err(EncodeError::BadNesting);
        }
        let sized = self.depth > 0;
        match std::ptr::eq(self.opts, &DEFAULT_OPTIONS) {
            // The constant, as `encode_message` passes it: its checks fold away.
            true => write_message(self.out, address, args, &EncodeOptions::DEFAULT, sized),
            false => write_message(self.out, address, args, self.opts, sized),
        }
    }

    /// Reserves a bundle's size field inside an open bundle; returns its offset.
    fn begin_element(&mut self) -> Result<usize, EncodeError> {
        if self.depth == 0 && !self.out.is_empty() {
            return Err(EncodeError::BadNesting);
        }
        let at = self.out.len();
        if self.depth > 0 {
            self.out.extend_from_slice(&[0; 4]);
        }
        Ok(at)
    }

    fn end_element(&mut self, size_at: usize) -> Result<(), EncodeError> {
        let size =
            i32::try_from(self.out.len() - size_at - 4).map_err(|_| EncodeError::TooLarge)?;
        self.out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
        Ok(())
    }
}

/// Writes a message, after its size when it is a bundle element (`sized`). A first walk
/// over the arguments checks their types and sizes the message; a second writes each type
/// tag and payload. Bytes go into the buffer's spare
/// capacity through a cursor that writes every byte, padding included, so nothing is
/// zeroed first and the `Vec`'s length is not reloaded after every store. On error nothing
/// is added to the buffer.
#[inline(always)]
fn write_message<'a, A: Borrow<Arg<'a>>>(
    out: &mut Vec<u8>,
    address: &[u8],
    args: impl Iterator<Item = A> + Clone,
    opts: &EncodeOptions,
    sized: bool,
) -> Result<(), EncodeError> {
    // With compression, `/` alone announces a code: the address itself cannot be sent.
    if opts.addresses.is_some() && address == b"/" {
        return Err(EncodeError::SlashWithAddressTable);
    }
    let valid = address.first() == Some(&b'/')
        && (!opts.check_address || crate::pattern::check_address_pattern(address).is_ok())
        && (!opts.ascii_only || address.is_ascii());
    if !valid {
        return Err(EncodeError::BadAddress);
    }
    let code = opts.addresses.as_ref().and_then(|t| t.code_of(address));
    let restricted = opts.allowed_types != TypeSet::ALL;
    let (mut count, mut payload, mut open_arrays) = (0, 0, 0usize);
    for (index, arg) in args.clone().enumerate() {
        let arg = arg.borrow();
        payload += match *arg {
            Arg::Int(_) | Arg::Float(_) | Arg::Char(_) | Arg::Rgba(_) | Arg::Midi(_) => 4,
            Arg::Long(_) | Arg::Double(_) | Arg::Time(_) => 8,
            Arg::Str(s) | Arg::Symbol(s) => padded_str_len(s.len()),
            Arg::Blob(b) if b.len() > i32::MAX as usize => {
                return Err(EncodeError::BlobTooLarge { index })
            }
            Arg::Blob(b) => 4 + pad4(b.len()),
            // `B` is O2's: an OSC encoder refuses it unless told to allow it.
            Arg::Bool(_) if !opts.allowed_types.contains(b'B') => {
                return Err(EncodeError::TypeNotAllowed { tag: b'B' })
            }
            Arg::Bool(_) => 4,
            Arg::ArrayStart => {
                open_arrays += 1;
                0
            }
            Arg::ArrayEnd => {
                open_arrays = open_arrays
                    .checked_sub(1)
                    .ok_or(EncodeError::UnbalancedArray)?;
                0
            }
            Arg::True | Arg::False | Arg::Nil | Arg::Impulse => 0,
        };
        if restricted && !opts.allowed_types.contains(arg.tag()) {
            return Err(EncodeError::TypeNotAllowed { tag: arg.tag() });
        }
        if opts.ascii_only && !arg.is_ascii() {
            return Err(EncodeError::NotAscii { index });
        }
        count += 1;
    }
    if open_arrays != 0 {
        return Err(EncodeError::UnbalancedArray);
    }
    let address_len = match code {
        Some(_) => 8,
        None => padded_str_len(address.len()),
    };
    let tags_len = padded_str_len(1 + count);
    let message_len = address_len + tags_len + payload;
    let len = message_len + if sized { 4 } else { 0 };
    out.reserve(len);
    let mut w = Cursor(&mut out.spare_capacity_mut()[..len]);
    if sized {
        let size = i32::try_from(message_len).map_err(|_| EncodeError::TooLarge)?;
        w.put(size.to_be_bytes());
    }
    match code {
        Some(code) => {
            w.put([b'/', 0, 0, 0]);
            w.put(code.to_be_bytes());
        }
        None => w.str(address).map_err(|_| EncodeError::BadAddress)?,
    }
    let (tags, rest) = std::mem::take(&mut w.0).split_at_mut(tags_len);
    let mut tags = Cursor(tags);
    w.0 = rest;
    // Type tags are stored a word at a time: a decoder reading the packet at once loads
    // them as words, and a load spanning several byte stores cannot be forwarded.
    let (mut word, mut filled) = (u32::from(b','), 1);
    for (index, arg) in args.enumerate() {
        let arg = arg.borrow();
        word |= u32::from(arg.tag()) << (8 * filled);
        filled += 1;
        if filled == 4 {
            tags.put(word.to_le_bytes());
            (word, filled) = (0, 0);
        }
        w.payload(arg, index)?;
    }
    tags.put(word.to_le_bytes());
    assert!(tags.0.is_empty(), "type tags miscounted");
    // Sizes come from the same walk that wrote, so a mismatch is a bug; it must not let
    // unwritten bytes into the buffer.
    assert!(w.0.is_empty(), "message size miscomputed");
    let new_len = out.len() + len;
    // SAFETY: the cursors covered exactly the `len` bytes after the current length, and
    // the assertions above check that they wrote every one of them.
    unsafe { out.set_len(new_len) };
    Ok(())
}

/// A NUL inside a string that is being written.
struct NulInside;

/// Writes into uninitialised spare capacity sized for what goes in it; every byte of it,
/// padding included, is written.
struct Cursor<'b>(&'b mut [MaybeUninit<u8>]);

impl Cursor<'_> {
    /// Writes `bytes` and moves past them.
    #[inline(always)]
    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        self.copy(&bytes);
    }

    /// Writes `bytes` and moves past them.
    #[inline(always)]
    fn copy(&mut self, bytes: &[u8]) {
        let (head, rest) = std::mem::take(&mut self.0).split_at_mut(bytes.len());
        for (slot, &b) in head.iter_mut().zip(bytes) {
            slot.write(b);
        }
        self.0 = rest;
    }

    /// Fills the rest with zeros.
    #[inline(always)]
    fn zeros(&mut self) {
        for slot in std::mem::take(&mut self.0) {
            slot.write(0);
        }
    }

    /// Writes `s` as an OSC string (a NUL and zero padding to a multiple of 4 follow it),
    /// a word at a time; fails on a NUL inside `s`.
    #[inline(always)]
    fn str(&mut self, s: &[u8]) -> Result<(), NulInside> {
        let mut words = s.chunks_exact(4);
        for w in &mut words {
            // One load and one store per word: a word stored in pieces cannot be
            // forwarded to a decoder that loads it whole.
            let v = u32::from_ne_bytes(w.try_into().unwrap_or_default());
            if v.wrapping_sub(0x0101_0101) & !v & 0x8080_8080 != 0 {
                return Err(NulInside);
            }
            self.put(v.to_ne_bytes());
        }
        let mut last = [0u8; 4];
        for (slot, &b) in last.iter_mut().zip(words.remainder()) {
            if b == 0 {
                return Err(NulInside);
            }
            *slot = b;
        }
        self.put(last);
        Ok(())
    }

    /// Writes an argument's payload.
    #[inline(always)]
    fn payload(&mut self, arg: &Arg<'_>, index: usize) -> Result<(), EncodeError> {
        match *arg {
            Arg::Int(v) => self.put(v.to_be_bytes()),
            Arg::Float(v) => self.put(v.to_be_bytes()),
            Arg::Long(v) => self.put(v.to_be_bytes()),
            Arg::Double(v) => self.put(v.to_be_bytes()),
            Arg::Time(t) => self.put(t.to_bits().to_be_bytes()),
            Arg::Char(c) => self.put([0, 0, 0, c]),
            Arg::Bool(b) => self.put([0, 0, 0, b as u8]),
            Arg::Rgba(b) | Arg::Midi(b) => self.put(b),
            Arg::Str(s) | Arg::Symbol(s) => self
                .str(s)
                .map_err(|_| EncodeError::NulInString { index })?,
            Arg::Blob(b) => {
                // The first walk refused blobs over `i32::MAX` bytes.
                self.put((b.len() as u32).to_be_bytes());
                self.copy(b);
                let (pad, rest) = std::mem::take(&mut self.0).split_at_mut(pad4(b.len()) - b.len());
                Cursor(pad).zeros();
                self.0 = rest;
            }
            Arg::True | Arg::False | Arg::Nil | Arg::Impulse | Arg::ArrayStart | Arg::ArrayEnd => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osc::{decode, decode_with, DecodeOptions, Packet};

    #[test]
    fn message_layout_matches_the_spec_example() {
        let mut buf = Vec::new();
        encode_message(
            "/foo",
            &[Arg::Int(1), Arg::Float(1.5), Arg::str("abc")],
            &mut buf,
        )
        .unwrap();
        let expect = [
            0x2f, 0x66, 0x6f, 0x6f, 0, 0, 0, 0, 0x2c, 0x69, 0x66, 0x73, 0, 0, 0, 0, 0, 0, 0, 1,
            0x3f, 0xc0, 0, 0, 0x61, 0x62, 0x63, 0,
        ];
        assert_eq!(buf, expect);
    }

    #[test]
    fn errors_leave_the_buffer_clean() {
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf);
        w.begin_bundle(TimeTag::IMMEDIATE).unwrap();
        w.message("/ok", &[]).unwrap();
        let len = w.out.len();
        assert_eq!(
            w.message("/bad", &[Arg::Str(b"a\0b")]),
            Err(EncodeError::NulInString { index: 0 })
        );
        assert_eq!(
            w.message("/bad", &[Arg::ArrayStart]),
            Err(EncodeError::UnbalancedArray)
        );
        assert_eq!(w.message("nope", &[]), Err(EncodeError::BadAddress));
        assert_eq!(w.out.len(), len);
        w.end_bundle().unwrap();
        assert_eq!(w.end_bundle(), Err(EncodeError::BadNesting));
        w.finish().unwrap();
        assert!(decode(&buf).is_ok());
    }

    #[test]
    fn nesting_rules() {
        let mut buf = Vec::new();
        let mut w = PacketWriter::new(&mut buf);
        w.message("/a", &[]).unwrap();
        assert_eq!(w.message("/b", &[]), Err(EncodeError::BadNesting));
        let mut w = PacketWriter::new(&mut buf);
        for _ in 0..MAX_BUNDLE_DEPTH {
            w.begin_bundle(TimeTag::IMMEDIATE).unwrap();
        }
        assert_eq!(
            w.begin_bundle(TimeTag::IMMEDIATE),
            Err(EncodeError::TooDeep)
        );
        w.message("/deep", &[Arg::Nil]).unwrap();
        for _ in 0..MAX_BUNDLE_DEPTH {
            w.end_bundle().unwrap();
        }
        w.finish().unwrap();
        assert!(decode(&buf).is_ok());
        let open = PacketWriter::new(&mut buf);
        assert_eq!(open.finish(), Err(EncodeError::BadNesting));
    }

    #[test]
    fn ascii_only_refuses_other_bytes_in_text() {
        let ascii = EncodeOptions {
            ascii_only: true,
            ..EncodeOptions::DEFAULT
        };
        let mut buf = Vec::new();
        let mut w = PacketWriter::with_options(&mut buf, &ascii);
        assert_eq!(
            w.message("/a", &[Arg::Int(-1), Arg::Str("café".as_bytes())]),
            Err(EncodeError::NotAscii { index: 1 })
        );
        assert_eq!(
            w.message("/a", &[Arg::Char(0xe9)]),
            Err(EncodeError::NotAscii { index: 0 })
        );
        assert_eq!(w.message("/é", &[]), Err(EncodeError::BadAddress));
        w.message("/a", &[Arg::Blob(&[0xff]), Arg::Symbol(b"ok")])
            .unwrap();
        w.finish().unwrap();
        assert!(decode(&buf).is_ok());
    }

    #[test]
    fn compression_and_restriction() {
        let mut table = AddressTable::new();
        table.insert(42, "/long/address/here").unwrap();
        let table = Arc::new(table);
        let opts = EncodeOptions {
            addresses: Some(table.clone()),
            ..EncodeOptions::DEFAULT
        };
        let mut buf = Vec::new();
        PacketWriter::with_options(&mut buf, &opts)
            .message("/long/address/here", &[Arg::Int(5)])
            .unwrap();
        assert_eq!(&buf[..8], &[0x2f, 0, 0, 0, 0, 0, 0, 42]);
        let dopts = DecodeOptions {
            addresses: Some(table),
            ..DecodeOptions::DEFAULT
        };
        let Ok(Packet::Message(m)) = decode_with(&buf, &dopts) else {
            panic!("round trip failed")
        };
        assert_eq!(m.address(), b"/long/address/here");
        // `/` alone announces a code to a decoder with the table: not an address then.
        let mut w = PacketWriter::with_options(&mut buf, &opts);
        assert_eq!(
            w.message("/", &[Arg::Int(1)]),
            Err(EncodeError::SlashWithAddressTable)
        );
        encode_message("/", &[], &mut buf).unwrap();
        let strict = EncodeOptions {
            allowed_types: TypeSet::OSC_1_0,
            check_address: true,
            ..EncodeOptions::DEFAULT
        };
        let mut w = PacketWriter::with_options(&mut buf, &strict);
        assert_eq!(
            w.message("/x", &[Arg::Long(1)]),
            Err(EncodeError::TypeNotAllowed { tag: b'h' })
        );
        assert_eq!(w.message("/a b", &[]), Err(EncodeError::BadAddress));
    }

    /// A bundle too large to close stays open, its bytes as they were: `finish` refuses
    /// the packet instead of taking one the decoder refuses.
    #[test]
    fn a_bundle_too_large_to_close_stays_open() {
        use std::alloc::{alloc_zeroed, Layout};
        // 2 GiB of zeroed memory, mapped lazily: nothing is touched past the first bytes.
        let cap = (1usize << 31) + 64;
        let layout = Layout::array::<u8>(cap).unwrap();
        // SAFETY: a non-zero size; checked for failure below.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return eprintln!("skipped: no room for 2 GiB");
        }
        // SAFETY: allocated by the global allocator with this layout, all bytes zeroed
        // (initialised), length 0 within the capacity.
        let mut buf = unsafe { Vec::from_raw_parts(ptr, 0, cap) };
        let mut w = PacketWriter::new(&mut buf);
        w.begin_bundle(TimeTag::IMMEDIATE).unwrap();
        w.begin_bundle(TimeTag::IMMEDIATE).unwrap();
        let state = w.state();
        let len = buf.len();
        // SAFETY: the bytes are initialised (zeroed) and within the capacity.
        unsafe { buf.set_len(len + (1 << 31)) };
        let mut w = PacketWriter::resume(&mut buf, state);
        assert_eq!(w.end_bundle(), Err(EncodeError::TooLarge));
        assert_eq!(w.state(), state);
        assert_eq!(w.finish(), Err(EncodeError::BadNesting));
        // Without the excess, the same writer closes both bundles into a valid packet.
        buf.truncate(len);
        let mut w = PacketWriter::resume(&mut buf, state);
        w.message("/a", &[]).unwrap();
        w.end_bundle().unwrap();
        w.end_bundle().unwrap();
        w.finish().unwrap();
        assert!(decode(&buf).is_ok());
    }

    #[test]
    fn reused_buffer_is_replaced() {
        let mut buf = vec![0xff; 100];
        encode_message("/a", &[], &mut buf).unwrap();
        assert_eq!(buf, [0x2f, 0x61, 0, 0, 0x2c, 0, 0, 0]);
    }
}
