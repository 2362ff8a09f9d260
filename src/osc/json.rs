//! JSON rendering of decoded packets, in the shape of the `decoded` field of
//! `shared/vectors/osc-vectors.json` (used by `rosco decode --json` and `rosco dump --json`).

use super::decode::{Args, Packet};
use super::types::Arg;
use crate::time::TimeTag;
use std::fmt::{self, Write};

/// Displays a packet as one line of JSON.
#[derive(Debug, Clone, Copy)]
pub struct Json<'a>(pub Packet<'a>);

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_packet(f, &self.0)
    }
}

fn write_packet(f: &mut fmt::Formatter<'_>, p: &Packet<'_>) -> fmt::Result {
    match p {
        Packet::Message(m) => {
            f.write_str("{\"kind\":\"message\",\"address\":")?;
            write_text(f, m.address())?;
            f.write_str(",\"typetags\":")?;
            if m.has_typetags() {
                f.write_str("\",")?;
                write_escaped(f, &String::from_utf8_lossy(m.typetags()))?;
                f.write_char('"')?;
            } else {
                f.write_str("null")?;
            }
            f.write_str(",\"args\":")?;
            write_args(f, &mut m.args())?;
            f.write_char('}')
        }
        Packet::Bundle(b) => {
            f.write_str("{\"kind\":\"bundle\",\"timetag\":")?;
            write_timetag(f, b.timetag(), "")?;
            f.write_str(",\"elements\":[")?;
            for (i, e) in b.elements().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                write_packet(f, &e)?;
            }
            f.write_str("]}")
        }
    }
}

/// Writes arguments as a JSON list until the end or a closing `]`, nesting arrays.
fn write_args(f: &mut fmt::Formatter<'_>, args: &mut Args<'_>) -> fmt::Result {
    f.write_char('[')?;
    let mut first = true;
    while let Some(arg) = args.next() {
        if arg == Arg::ArrayEnd {
            break;
        }
        if !first {
            f.write_char(',')?;
        }
        first = false;
        write_arg(f, &arg, args)?;
    }
    f.write_char(']')
}

fn write_arg(f: &mut fmt::Formatter<'_>, arg: &Arg<'_>, rest: &mut Args<'_>) -> fmt::Result {
    let tag = arg.tag() as char;
    match *arg {
        Arg::ArrayStart => {
            f.write_str("{\"type\":\"array\",\"items\":")?;
            write_args(f, rest)?;
            return f.write_char('}');
        }
        Arg::Time(t) => {
            return write_timetag(f, t, "\"type\":\"t\",");
        }
        _ => {}
    }
    write!(f, "{{\"type\":\"{tag}\"")?;
    match *arg {
        Arg::Int(v) => write!(f, ",\"value\":{v}")?,
        Arg::Long(v) => write!(f, ",\"value\":{v}")?,
        Arg::Float(v) => {
            write_float(f, v as f64)?;
            write!(f, ",\"bits\":\"{:08x}\"", v.to_bits())?;
        }
        Arg::Double(v) => {
            write_float(f, v)?;
            write!(f, ",\"bits\":\"{:016x}\"", v.to_bits())?;
        }
        Arg::Str(s) | Arg::Symbol(s) => {
            f.write_str(",\"hex\":")?;
            write_hex(f, s)?;
            if let Ok(text) = std::str::from_utf8(s) {
                f.write_str(",\"value\":\"")?;
                write_escaped(f, text)?;
                f.write_char('"')?;
            }
        }
        Arg::Blob(b) => {
            f.write_str(",\"hex\":")?;
            write_hex(f, b)?;
        }
        Arg::Char(c) => {
            write!(f, ",\"code\":{c},\"value\":\"")?;
            write_escaped(f, (c as char).encode_utf8(&mut [0; 4]))?;
            f.write_char('"')?;
        }
        Arg::Midi([a, b, c, d]) => write!(f, ",\"value\":[{a},{b},{c},{d}]")?,
        Arg::Rgba(rgba @ [r, g, b, a]) => write!(
            f,
            ",\"u32\":\"{:08x}\",\"value\":[{r},{g},{b},{a}]",
            u32::from_be_bytes(rgba)
        )?,
        Arg::True => f.write_str(",\"value\":true")?,
        Arg::False => f.write_str(",\"value\":false")?,
        Arg::Nil => f.write_str(",\"value\":null")?,
        Arg::Bool(b) => write!(f, ",\"value\":{b}")?,
        Arg::Impulse | Arg::ArrayStart | Arg::ArrayEnd | Arg::Time(_) => {}
    }
    f.write_char('}')
}

fn write_timetag(f: &mut fmt::Formatter<'_>, t: TimeTag, prefix: &str) -> fmt::Result {
    write!(f, "{{{prefix}\"sec\":{},\"frac\":{}", t.seconds, t.fraction)?;
    if t.is_immediate() {
        f.write_str(",\"immediate\":true")?;
    }
    f.write_char('}')
}

fn write_float(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    if v.is_nan() {
        f.write_str(",\"value\":\"NaN\"")
    } else if v.is_infinite() {
        let sign = if v < 0.0 { "-" } else { "" };
        write!(f, ",\"value\":\"{sign}Infinity\"")
    } else {
        write!(f, ",\"value\":{v:?}")
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_char('"')?;
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    f.write_char('"')
}

/// A JSON string of bytes that are usually text (addresses); invalid UTF-8 is replaced.
fn write_text(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_char('"')?;
    write_escaped(f, &String::from_utf8_lossy(bytes))?;
    f.write_char('"')
}

fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}
