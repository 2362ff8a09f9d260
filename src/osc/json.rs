//! JSON rendering of decoded packets, in the shape of the `decoded` field of
//! `shared/vectors/osc-vectors.json` (used by `rosco decode --json` and `rosco dump --json`).

use super::decode::{Args, Elements, Message, Packet};
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

/// Writes a packet without recursing: nested bundles are kept on a heap stack, so a packet
/// decoded with a large `max_depth` cannot exhaust the thread's stack.
fn write_packet(f: &mut fmt::Formatter<'_>, p: &Packet<'_>) -> fmt::Result {
    // The element iterators of the open bundles, innermost last; `bool` is "nothing
    // written in it yet".
    let mut open: Vec<(Elements<'_>, bool)> = Vec::new();
    let mut next = Some(*p);
    loop {
        match next.take() {
            Some(Packet::Message(m)) => write_message(f, &m)?,
            Some(Packet::Bundle(b)) => {
                f.write_str("{\"kind\":\"bundle\",\"timetag\":")?;
                write_timetag(f, b.timetag(), "")?;
                f.write_str(",\"elements\":[")?;
                open.push((b.elements(), true));
            }
            None => {}
        }
        // The next element of the innermost open bundle, closing the finished ones.
        loop {
            let Some((elements, first)) = open.last_mut() else {
                return Ok(());
            };
            match elements.next() {
                Some(e) => {
                    if !*first {
                        f.write_char(',')?;
                    }
                    *first = false;
                    next = Some(e);
                    break;
                }
                None => {
                    open.pop();
                    f.write_str("]}")?;
                }
            }
        }
    }
}

fn write_message(f: &mut fmt::Formatter<'_>, m: &Message<'_>) -> fmt::Result {
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
    write_args(f, m.args())?;
    f.write_char('}')
}

/// Writes arguments as a JSON list, nesting arrays, until the end or a `]` closing the list
/// itself. Iterative: `Args` yields array brackets flat, so only a depth count is kept and
/// any nesting depth renders in constant stack.
fn write_args(f: &mut fmt::Formatter<'_>, args: Args<'_>) -> fmt::Result {
    f.write_char('[')?;
    // Open arrays inside the list; `first` is "nothing written yet at this level".
    let mut depth = 0usize;
    let mut first = true;
    for arg in args {
        match arg {
            Arg::ArrayEnd if depth == 0 => break,
            Arg::ArrayEnd => {
                depth -= 1;
                first = false;
                f.write_str("]}")?;
            }
            _ => {
                if !first {
                    f.write_char(',')?;
                }
                if arg == Arg::ArrayStart {
                    depth += 1;
                    first = true;
                    f.write_str("{\"type\":\"array\",\"items\":[")?;
                } else {
                    first = false;
                    write_arg(f, &arg)?;
                }
            }
        }
    }
    // Arrays the type tags leave open are closed at the end of the arguments.
    for _ in 0..depth {
        f.write_str("]}")?;
    }
    f.write_char(']')
}

/// One argument other than an array bracket.
fn write_arg(f: &mut fmt::Formatter<'_>, arg: &Arg<'_>) -> fmt::Result {
    let tag = arg.tag() as char;
    if let Arg::Time(t) = *arg {
        return write_timetag(f, t, "\"type\":\"t\",");
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
