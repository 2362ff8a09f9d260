//! The message builder: caller-owned and reusable; arguments are added one call at a
//! time, bundles nest. It keeps every buffer between uses, so building and sending
//! allocate nothing once it has grown.

use super::status::{byte_slice, c_bytes, guard, rosco_status, Failure, ROSCO_ERR_INTERNAL};
use crate::osc::{Arg, EncodeOptions, PacketWriter, WriterState};
use crate::thread_buf::with_buf;
use crate::time::TimeTag;
use std::cell::RefCell;
use std::ffi::c_char;
use std::ops::Range;

/// A message or bundle under construction. Create with `rosco_builder_new`, free with
/// `rosco_builder_free`. Not thread-safe while being built; sending only reads it.
pub struct rosco_builder {
    /// Finished bundle bytes (empty while a lone message is being built).
    packet: Vec<u8>,
    state: WriterState,
    /// The message being built, when one is open.
    open: bool,
    address: Vec<u8>,
    args: Vec<Slot>,
    /// String and blob bytes of the open message.
    arena: Vec<u8>,
}

/// An argument of the open message; bytes live in the arena.
#[derive(Debug, Clone)]
enum Slot {
    Value(Arg<'static>),
    Str(Range<usize>),
    Symbol(Range<usize>),
    Blob(Range<usize>),
}

thread_local! {
    static SEND_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl rosco_builder {
    fn args(&self) -> impl Iterator<Item = Arg<'_>> + Clone {
        self.args.iter().map(|s| match s {
            Slot::Value(a) => *a,
            Slot::Str(r) => Arg::Str(&self.arena[r.clone()]),
            Slot::Symbol(r) => Arg::Symbol(&self.arena[r.clone()]),
            Slot::Blob(r) => Arg::Blob(&self.arena[r.clone()]),
        })
    }

    /// Writes the open message into the packet (inside the open bundle).
    fn close_message(&mut self) -> Result<(), Failure> {
        if !self.open {
            return Ok(());
        }
        let mut packet = std::mem::take(&mut self.packet);
        let mut w = PacketWriter::resume(&mut packet, self.state);
        let written = w.message_iter(&self.address, self.args());
        self.state = w.state();
        self.packet = packet;
        // Still open when it failed (nothing of it was written): the caller can mend it.
        self.open = written.is_err();
        written.map_err(|e| Failure::arg(e.to_string()))
    }

    fn reset(&mut self) {
        self.packet.clear();
        self.state = WriterState::default();
        self.open = false;
    }

    fn push(&mut self, slot: Slot) -> Result<(), Failure> {
        if !self.open {
            return Err(Failure::arg(
                "no message started: call rosco_builder_message first",
            ));
        }
        self.args.push(slot);
        Ok(())
    }

    fn push_bytes(&mut self, bytes: &[u8], make: fn(Range<usize>) -> Slot) -> Result<(), Failure> {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        self.push(make(start..self.arena.len()))
    }

    /// Runs `f` with the finished packet: a closed bundle, or the one open message, encoded
    /// with `opts` into a thread-local buffer (so a `const` builder can be sent from several
    /// threads). A bundle was written with the defaults: with other options it is written
    /// again, so that they apply to its messages too.
    pub(crate) fn with_packet<R>(
        &self,
        opts: &EncodeOptions,
        f: impl FnOnce(&[u8]) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        if self.state.depth() > 0 {
            return Err(Failure::arg(
                "a bundle is still open: call rosco_builder_bundle_end",
            ));
        }
        if !self.open {
            return match (self.packet.is_empty(), opts.is_default()) {
                (true, _) => Err(Failure::arg("the builder is empty")),
                (false, true) => f(&self.packet),
                (false, false) => with_buf(&SEND_BUF, |buf| {
                    let packet = crate::osc::decode(&self.packet)
                        .map_err(|e| Failure::new(ROSCO_ERR_INTERNAL, e.to_string()))?;
                    let mut w = PacketWriter::with_options(buf, opts);
                    w.packet(&packet)
                        .and_then(|()| w.finish())
                        .map_err(|e| Failure::arg(e.to_string()))?;
                    f(buf)
                }),
            };
        }
        with_buf(&SEND_BUF, |buf| {
            PacketWriter::with_options(buf, opts)
                .message_iter(&self.address, self.args())
                .map_err(|e| Failure::arg(e.to_string()))?;
            f(buf)
        })
    }
}

/// # Safety
/// `b` is NULL or a live builder that nobody else uses during the call.
unsafe fn builder<'a>(b: *mut rosco_builder) -> Result<&'a mut rosco_builder, Failure> {
    // SAFETY: the caller's promise.
    unsafe { b.as_mut() }.ok_or_else(|| Failure::null("builder"))
}

/// A new, empty builder (NULL only if memory is exhausted). Free with `rosco_builder_free`.
#[no_mangle]
pub extern "C" fn rosco_builder_new() -> *mut rosco_builder {
    super::status::guard_value(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(rosco_builder {
            packet: Vec::new(),
            state: WriterState::default(),
            open: false,
            address: Vec::new(),
            args: Vec::new(),
            arena: Vec::new(),
        })))
    })
}

/// Frees a builder. NULL is ignored.
///
/// # Safety
/// `b` is NULL or a builder from `rosco_builder_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_free(b: *mut rosco_builder) {
    if !b.is_null() {
        // SAFETY: a pointer from Box::into_raw in rosco_builder_new, freed once.
        drop(unsafe { Box::from_raw(b) });
    }
}

/// Empties the builder (keeping its memory for reuse).
///
/// # Safety
/// `b` is NULL or a live builder.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_reset(b: *mut rosco_builder) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }.map(|b| b.reset()))
}

/// Starts a message at `address` (an OSC address or pattern; bytes, not necessarily
/// UTF-8, as strings are). Outside a bundle this replaces whatever the builder held; inside
/// one, the previous message is kept and this one follows it.
///
/// # Safety
/// `b` is NULL or a live builder; `address` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_message(
    b: *mut rosco_builder,
    address: *const c_char,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promises.
        let (b, address) = unsafe { (builder(b)?, c_bytes(address, "address")?) };
        if !address.starts_with(b"/") {
            return Err(Failure::arg(format!(
                "address '{}' does not start with '/'",
                String::from_utf8_lossy(address)
            )));
        }
        if b.state.depth() == 0 {
            b.reset();
        } else {
            b.close_message()?;
        }
        b.address.clear();
        b.address.extend_from_slice(address);
        b.args.clear();
        b.arena.clear();
        b.open = true;
        Ok(())
    })
}

/// Opens a bundle with `timetag` (`ROSCO_TIMETAG_IMMEDIATE` for "now"). Outside a bundle
/// this replaces whatever the builder held; inside one it nests (up to 32 deep).
///
/// # Safety
/// `b` is NULL or a live builder.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_bundle_begin(
    b: *mut rosco_builder,
    timetag: u64,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let b = unsafe { builder(b)? };
        match b.state.depth() {
            0 => b.reset(),
            _ => b.close_message()?,
        }
        let mut packet = std::mem::take(&mut b.packet);
        let mut w = PacketWriter::resume(&mut packet, b.state);
        let begun = w.begin_bundle(TimeTag::from_bits(timetag));
        b.state = w.state();
        b.packet = packet;
        begun.map_err(|e| Failure::arg(e.to_string()))
    })
}

/// Closes the innermost open bundle.
///
/// # Safety
/// `b` is NULL or a live builder.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_bundle_end(b: *mut rosco_builder) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let b = unsafe { builder(b)? };
        // Checked first: closing a lone message would freeze it with the defaults.
        if b.state.depth() == 0 {
            return Err(Failure::arg("no bundle is open"));
        }
        b.close_message()?;
        let mut packet = std::mem::take(&mut b.packet);
        let mut w = PacketWriter::resume(&mut packet, b.state);
        let ended = w.end_bundle();
        b.state = w.state();
        b.packet = packet;
        ended.map_err(|e| Failure::arg(e.to_string()))
    })
}

/// Points `data`/`len` at the finished packet (valid until the builder changes), closing
/// the open message: these bytes have the default codec options (`rosco_send` applies a
/// context's own). Fails while a bundle is open.
///
/// # Safety
/// `b` is NULL or a live builder; `data` and `len` are writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_bytes(
    b: *mut rosco_builder,
    data: *mut *const u8,
    len: *mut usize,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let b = unsafe { builder(b)? };
        if data.is_null() || len.is_null() {
            return Err(Failure::null("data or len"));
        }
        if b.open && b.state.depth() == 0 {
            b.packet.clear();
            let mut packet = std::mem::take(&mut b.packet);
            PacketWriter::new(&mut packet)
                .message_iter(&b.address, b.args())
                .map_err(|e| Failure::arg(e.to_string()))?;
            b.packet = packet;
            b.open = false;
        }
        b.with_packet(&EncodeOptions::DEFAULT, |p| {
            // SAFETY: both checked non-null; the caller passes writable pointers.
            unsafe {
                data.write(p.as_ptr());
                len.write(p.len());
            }
            Ok(())
        })
    })
}

/// Adds an `i` (int32).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_i32(b: *mut rosco_builder, v: i32) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Int(v))))
}

/// Adds an `f` (float32).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_f32(b: *mut rosco_builder, v: f32) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Float(v))))
}

/// Adds an `h` (int64).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_i64(b: *mut rosco_builder, v: i64) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Long(v))))
}

/// Adds a `d` (float64).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_f64(b: *mut rosco_builder, v: f64) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Double(v))))
}

/// Adds a `t` (timetag argument, NTP 32.32 bits).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_timetag(b: *mut rosco_builder, v: u64) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Time(TimeTag::from_bits(v)))))
}

/// Adds a `c` (character code).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_char(b: *mut rosco_builder, v: u8) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Char(v))))
}

/// Adds an `r` (RGBA colour, `0xRRGGBBAA`).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_rgba(b: *mut rosco_builder, v: u32) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Rgba(v.to_be_bytes()))))
}

/// Adds an `m` (MIDI port, status, data1, data2 as `0xPPSSDDDD`).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_midi(b: *mut rosco_builder, v: u32) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Midi(v.to_be_bytes()))))
}

/// Adds `T` (non-zero) or `F` (zero).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_bool(b: *mut rosco_builder, v: i32) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::bool(v != 0))))
}

/// Adds `N` (nil).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_nil(b: *mut rosco_builder) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Nil)))
}

/// Adds `I` (impulse).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_impulse(b: *mut rosco_builder) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::Impulse)))
}

/// Opens an array (`[`).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_array_begin(b: *mut rosco_builder) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::ArrayStart)))
}

/// Closes an array (`]`).
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_array_end(b: *mut rosco_builder) -> rosco_status {
    // SAFETY: the caller's promise.
    guard(|| unsafe { builder(b) }?.push(Slot::Value(Arg::ArrayEnd)))
}

/// Adds an argument that is its type tag alone: `T`, `F`, `N`, `I`, `[` or `]`. Any other
/// tag gives `ROSCO_ERR_ARG`: this is how `rosco_builder_message_va` reports a type character
/// it does not know.
///
/// # Safety
/// `b` is NULL or a live builder with a message started.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_tag(b: *mut rosco_builder, tag: c_char) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let b = unsafe { builder(b) }?;
        let arg = match tag as u8 {
            b'T' => Arg::True,
            b'F' => Arg::False,
            b'N' => Arg::Nil,
            b'I' => Arg::Impulse,
            b'[' => Arg::ArrayStart,
            b']' => Arg::ArrayEnd,
            other => {
                return Err(Failure::arg(format!(
                    "type tag {} is not one that stands alone (T F N I [ ]): \
                     it needs a value, or rosco does not know it",
                    other.escape_ascii()
                )))
            }
        };
        b.push(Slot::Value(arg))
    })
}

/// Adds an `s` (string). The bytes are copied and sent as they are (UTF-8 is not required).
///
/// # Safety
/// `b` is NULL or a live builder; `s` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_str(
    b: *mut rosco_builder,
    s: *const c_char,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promises.
        let (b, s) = unsafe { (builder(b)?, c_bytes(s, "s")?) };
        b.push_bytes(s, Slot::Str)
    })
}

/// Adds an `S` (symbol). The bytes are copied.
///
/// # Safety
/// `b` is NULL or a live builder; `s` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_symbol(
    b: *mut rosco_builder,
    s: *const c_char,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promises.
        let (b, s) = unsafe { (builder(b)?, c_bytes(s, "s")?) };
        b.push_bytes(s, Slot::Symbol)
    })
}

/// Adds a `b` (blob) of `len` bytes (copied; `data` may be NULL when `len` is 0).
///
/// # Safety
/// `b` is NULL or a live builder; `data` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn rosco_builder_add_blob(
    b: *mut rosco_builder,
    data: *const u8,
    len: usize,
) -> rosco_status {
    guard(|| {
        // SAFETY: the caller's promise.
        let b = unsafe { builder(b)? };
        // SAFETY: the caller's promise on `data`.
        let bytes = unsafe { byte_slice(data, len, "data")? };
        if len > i32::MAX as usize {
            return Err(Failure::arg("blob larger than 2 GiB"));
        }
        b.push_bytes(bytes, Slot::Blob)
    })
}
