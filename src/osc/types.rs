//! OSC argument values and type-tag sets.

use crate::time::TimeTag;

/// One OSC argument. Strings and blobs borrow their bytes (from a received packet when
/// decoding, from the caller when encoding).
///
/// Arrays are flat: `ArrayStart` and `ArrayEnd` stand where `[` and `]` stand in the type
/// tags, so argument `i` is always type tag `i`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg<'a> {
    /// `i`: 32-bit signed integer.
    Int(i32),
    /// `f`: 32-bit float (NaN payloads pass through bit-exact).
    Float(f32),
    /// `s`: string, as bytes (OSC strings need not be UTF-8; they may not contain NUL).
    Str(&'a [u8]),
    /// `b`: blob.
    Blob(&'a [u8]),
    /// `h`: 64-bit signed integer.
    Long(i64),
    /// `t`: timetag argument (no scheduling meaning).
    Time(TimeTag),
    /// `d`: 64-bit float.
    Double(f64),
    /// `S`: symbol, as bytes; same wire form as `s`.
    Symbol(&'a [u8]),
    /// `c`: character code.
    Char(u8),
    /// `r`: RGBA colour, bytes r, g, b, a.
    Rgba([u8; 4]),
    /// `m`: MIDI message, bytes port, status, data1, data2.
    Midi([u8; 4]),
    /// `T`.
    True,
    /// `F`.
    False,
    /// `N`.
    Nil,
    /// `I`: impulse (OSC 1.1), infinitum (OSC 1.0).
    Impulse,
    /// `B`: an O2 boolean (int32 0/1). Not an OSC type: only messages that came over, or go
    /// to, O2lite carry it; OSC encoders and decoders refuse it (see [`TypeSet::O2`]).
    Bool(bool),
    /// `[`.
    ArrayStart,
    /// `]`.
    ArrayEnd,
}

impl<'a> Arg<'a> {
    /// A string argument from UTF-8 text.
    pub fn str(s: &'a str) -> Arg<'a> {
        Arg::Str(s.as_bytes())
    }

    /// `T` or `F`.
    pub fn bool(b: bool) -> Arg<'a> {
        if b {
            Arg::True
        } else {
            Arg::False
        }
    }

    /// The type-tag character of this argument.
    pub fn tag(&self) -> u8 {
        match self {
            Arg::Int(_) => b'i',
            Arg::Float(_) => b'f',
            Arg::Str(_) => b's',
            Arg::Blob(_) => b'b',
            Arg::Long(_) => b'h',
            Arg::Time(_) => b't',
            Arg::Double(_) => b'd',
            Arg::Symbol(_) => b'S',
            Arg::Char(_) => b'c',
            Arg::Rgba(_) => b'r',
            Arg::Midi(_) => b'm',
            Arg::True => b'T',
            Arg::False => b'F',
            Arg::Nil => b'N',
            Arg::Impulse => b'I',
            Arg::Bool(_) => b'B',
            Arg::ArrayStart => b'[',
            Arg::ArrayEnd => b']',
        }
    }

    /// False for a string, symbol or char with a byte over 127; true for anything else.
    pub fn is_ascii(&self) -> bool {
        match *self {
            Arg::Str(s) | Arg::Symbol(s) => s.is_ascii(),
            Arg::Char(c) => c.is_ascii(),
            _ => true,
        }
    }

    /// The value as an `i64` when it is a number (`i h f d`), truncating floats: the
    /// coercion liblo applies between numeric types.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Arg::Int(v) => Some(v as i64),
            Arg::Long(v) => Some(v),
            Arg::Float(v) => Some(v as i64),
            Arg::Double(v) => Some(v as i64),
            _ => None,
        }
    }

    /// The value as an `f64` when it is a number (`i h f d`).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Arg::Int(v) => Some(v as f64),
            Arg::Long(v) => Some(v as f64),
            Arg::Float(v) => Some(v as f64),
            Arg::Double(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes of a string or symbol.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Arg::Str(s) | Arg::Symbol(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a string or symbol, when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// An argument that owns its bytes, for keeping values beyond the packet they came in (or
/// building messages from parsed text).
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedArg {
    /// Any argument without borrowed bytes.
    Value(Arg<'static>),
    /// `s`.
    Str(Vec<u8>),
    /// `S`.
    Symbol(Vec<u8>),
    /// `b`.
    Blob(Vec<u8>),
}

impl OwnedArg {
    /// The borrowed form, for encoding.
    pub fn as_arg(&self) -> Arg<'_> {
        match self {
            OwnedArg::Value(a) => *a,
            OwnedArg::Str(s) => Arg::Str(s),
            OwnedArg::Symbol(s) => Arg::Symbol(s),
            OwnedArg::Blob(b) => Arg::Blob(b),
        }
    }
}

impl From<Arg<'_>> for OwnedArg {
    fn from(a: Arg<'_>) -> OwnedArg {
        match a {
            Arg::Str(s) => OwnedArg::Str(s.to_vec()),
            Arg::Symbol(s) => OwnedArg::Symbol(s.to_vec()),
            Arg::Blob(b) => OwnedArg::Blob(b.to_vec()),
            Arg::Int(v) => OwnedArg::Value(Arg::Int(v)),
            Arg::Float(v) => OwnedArg::Value(Arg::Float(v)),
            Arg::Long(v) => OwnedArg::Value(Arg::Long(v)),
            Arg::Time(v) => OwnedArg::Value(Arg::Time(v)),
            Arg::Double(v) => OwnedArg::Value(Arg::Double(v)),
            Arg::Char(v) => OwnedArg::Value(Arg::Char(v)),
            Arg::Rgba(v) => OwnedArg::Value(Arg::Rgba(v)),
            Arg::Midi(v) => OwnedArg::Value(Arg::Midi(v)),
            Arg::True => OwnedArg::Value(Arg::True),
            Arg::False => OwnedArg::Value(Arg::False),
            Arg::Nil => OwnedArg::Value(Arg::Nil),
            Arg::Impulse => OwnedArg::Value(Arg::Impulse),
            Arg::Bool(b) => OwnedArg::Value(Arg::Bool(b)),
            Arg::ArrayStart => OwnedArg::Value(Arg::ArrayStart),
            Arg::ArrayEnd => OwnedArg::Value(Arg::ArrayEnd),
        }
    }
}

/// Every type tag rosco knows, in the order of OSC 1.0 then 1.1.
pub const ALL_TYPE_TAGS: &[u8] = b"ifsbhtdScrmTFNI[]";

/// A set of type-tag characters, for restricting what a decoder or encoder accepts
/// (osc4py3's `restrict_typetags` option). Copy, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeSet(u128);

impl TypeSet {
    /// Every known type.
    pub const ALL: TypeSet = TypeSet::from_tags(ALL_TYPE_TAGS);
    /// Every OSC type and O2's `B`: what messages from or to O2lite may carry.
    pub const O2: TypeSet = TypeSet(TypeSet::ALL.0 | 1 << b'B');
    /// The OSC 1.0 required types `i f s b`.
    pub const OSC_1_0: TypeSet = TypeSet::from_tags(b"ifsb");
    /// The OSC 1.1 required types `i f s b T F N I t`.
    pub const OSC_1_1: TypeSet = TypeSet::from_tags(b"ifsbTFNIt");

    /// The set of the given tag characters (non-ASCII bytes are ignored).
    pub const fn from_tags(tags: &[u8]) -> TypeSet {
        let mut bits = 0u128;
        let mut i = 0;
        while i < tags.len() {
            if tags[i] < 128 {
                bits |= 1 << tags[i];
            }
            i += 1;
        }
        TypeSet(bits)
    }

    /// The set of `tags` when each is a known OSC type; else the first that is not.
    pub fn known(tags: &[u8]) -> Result<TypeSet, u8> {
        match tags.iter().find(|&&t| !TypeSet::ALL.contains(t)) {
            Some(&unknown) => Err(unknown),
            None => Ok(TypeSet::from_tags(tags)),
        }
    }

    /// The tags in either set.
    pub const fn union(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 | other.0)
    }

    /// True when `tag` is in the set.
    pub const fn contains(self, tag: u8) -> bool {
        tag < 128 && self.0 & (1 << tag) != 0
    }
}

/// Bytes an OSC string of `len` bytes takes on the wire: the text, a NUL, and zero
/// padding to a multiple of 4.
pub(crate) const fn padded_str_len(len: usize) -> usize {
    (len / 4 + 1) * 4
}

/// `len` rounded up to a multiple of 4.
pub(crate) const fn pad4(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_sets() {
        assert!(TypeSet::ALL.contains(b'['));
        assert!(!TypeSet::ALL.contains(b'x'));
        assert!(!TypeSet::ALL.contains(0xff));
        assert!(TypeSet::OSC_1_0.contains(b'b') && !TypeSet::OSC_1_0.contains(b'h'));
        assert_eq!(TypeSet::known(b"ifsb"), Ok(TypeSet::OSC_1_0));
        assert_eq!(TypeSet::known(b"ixB"), Err(b'x'));
    }

    #[test]
    fn padding() {
        assert_eq!([0, 1, 3, 4, 5, 8].map(padded_str_len), [4, 4, 4, 8, 8, 12]);
        assert_eq!([0, 1, 4, 5].map(pad4), [0, 4, 4, 8]);
    }

    #[test]
    fn numeric_views() {
        assert_eq!(Arg::Float(2.9).as_i64(), Some(2));
        assert_eq!(Arg::Long(-3).as_f64(), Some(-3.0));
        assert_eq!(Arg::str("x").as_str(), Some("x"));
        assert_eq!(Arg::Symbol(b"\xff").as_str(), None);
        assert_eq!(Arg::Nil.as_i64(), None);
    }

    #[test]
    fn owned_round_trip() {
        for a in [
            Arg::Str(b"x"),
            Arg::Symbol(b"y"),
            Arg::Blob(&[1]),
            Arg::Int(3),
            Arg::ArrayEnd,
        ] {
            assert_eq!(OwnedArg::from(a).as_arg(), a);
        }
    }
}
