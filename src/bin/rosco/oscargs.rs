//! Message arguments written the way liblo's `oscsend` takes them: a type string, then one
//! word per argument (none for `T F N I [ ]`). Beyond oscsend: `b` (hex bytes), `t`
//! (`now`, `immediate`, or `SECONDS.FRACTION` in hex), `r` (8 hex digits), arrays, and a
//! MIDI value may carry a `0x` prefix.

use rosco::osc::{Arg, OwnedArg};
use rosco::TimeTag;

/// Parses `values` against `types`.
pub(crate) fn parse(types: &str, values: &[String]) -> Result<Vec<OwnedArg>, String> {
    let mut values = values.iter();
    let mut out = Vec::with_capacity(types.len());
    for (i, tag) in types.bytes().enumerate() {
        let no_value = matches!(tag, b'T' | b'F' | b'N' | b'I' | b'[' | b']');
        let word = match no_value {
            true => "",
            false => values
                .next()
                .ok_or_else(|| format!("value #{} (type '{}') is not given", i + 1, tag as char))?,
        };
        let bad = || {
            format!(
                "an invalid value was given for type '{}': '{word}'",
                tag as char
            )
        };
        let value = |a: Arg<'static>| OwnedArg::Value(a);
        out.push(match tag {
            b'i' => value(Arg::Int(word.parse().map_err(|_| bad())?)),
            b'h' => value(Arg::Long(word.parse().map_err(|_| bad())?)),
            b'f' => value(Arg::Float(word.parse().map_err(|_| bad())?)),
            b'd' => value(Arg::Double(word.parse().map_err(|_| bad())?)),
            b's' => OwnedArg::Str(word.as_bytes().to_vec()),
            b'S' => OwnedArg::Symbol(word.as_bytes().to_vec()),
            b'c' => value(Arg::Char(word.bytes().next().unwrap_or(0))),
            b'm' => value(Arg::Midi(hex_u32(word).ok_or_else(bad)?.to_be_bytes())),
            b'r' => value(Arg::Rgba(hex_u32(word).ok_or_else(bad)?.to_be_bytes())),
            b'b' => OwnedArg::Blob(hex_bytes(word).ok_or_else(bad)?),
            b't' => value(Arg::Time(parse_timetag(word).ok_or_else(bad)?)),
            b'T' => value(Arg::True),
            b'F' => value(Arg::False),
            b'N' => value(Arg::Nil),
            b'I' => value(Arg::Impulse),
            b'[' => value(Arg::ArrayStart),
            b']' => value(Arg::ArrayEnd),
            other => {
                return Err(format!(
                    "type '{}' is not supported or invalid",
                    other as char
                ))
            }
        });
    }
    match values.next() {
        Some(extra) => Err(format!("more values than types: '{extra}'")),
        None => Ok(out),
    }
}

/// Hex digits only: `from_str_radix` alone also takes a leading `+`.
fn hex_digits(digits: &str) -> Option<&str> {
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digits)
}

/// Up to 8 hex digits, after an optional `0x`.
fn hex_u32(word: &str) -> Option<u32> {
    let digits = hex_digits(word.strip_prefix("0x").unwrap_or(word))?;
    (digits.len() <= 8).then_some(())?;
    u32::from_str_radix(digits, 16).ok()
}

/// Bytes from hex digits (whitespace and a `0x` prefix allowed).
pub(crate) fn hex_bytes(word: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = word
        .strip_prefix("0x")
        .unwrap_or(word)
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if digits.len() % 2 != 0 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

fn parse_timetag(word: &str) -> Option<TimeTag> {
    match word {
        "now" => Some(TimeTag::now()),
        "immediate" => Some(TimeTag::IMMEDIATE),
        _ => {
            let (sec, frac) = word.split_once('.')?;
            Some(TimeTag::new(
                u32::from_str_radix(hex_digits(sec)?, 16).ok()?,
                u32::from_str_radix(hex_digits(frac)?, 16).ok()?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn oscsend_syntax() {
        let args = parse("ifsTm", &words(&["1", "2.5", "x", "00903c7f"])).unwrap();
        let args: Vec<Arg<'_>> = args.iter().map(OwnedArg::as_arg).collect();
        assert_eq!(
            args,
            [
                Arg::Int(1),
                Arg::Float(2.5),
                Arg::str("x"),
                Arg::True,
                Arg::Midi([0, 0x90, 0x3c, 0x7f])
            ]
        );
        assert_eq!(
            parse("m", &words(&["0x00903c7f"])).unwrap(),
            [OwnedArg::Value(Arg::Midi([0, 0x90, 0x3c, 0x7f]))]
        );
        assert_eq!(
            parse("b", &words(&["0102"])).unwrap(),
            [OwnedArg::Blob(vec![1, 2])]
        );
        assert_eq!(
            parse("t", &words(&["e8e1f480.80000000"])).unwrap(),
            [OwnedArg::Value(Arg::Time(TimeTag::new(
                0xe8e1f480,
                0x8000_0000
            )))]
        );
    }

    #[test]
    fn errors_name_the_value() {
        assert!(parse("i", &words(&["x"])).unwrap_err().contains("'x'"));
        assert!(parse("i", &words(&["3000000000"])).is_err());
        assert!(parse("ii", &words(&["1"])).unwrap_err().contains("#2"));
        assert!(parse("i", &words(&["1", "2"]))
            .unwrap_err()
            .contains("more values"));
        assert!(parse("q", &[]).unwrap_err().contains("'q'"));
        assert!(parse("b", &words(&["123"])).is_err());
        // Hex digits only: `from_str_radix` alone takes a leading '+'.
        for (types, word) in [
            ("b", "+1+2"),
            ("b", "0x+1"),
            ("b", "-1"),
            ("b", "1g"),
            ("m", "+0903c7f"),
            ("m", "0x+903c7f"),
            ("m", "-1"),
            ("m", "0x"),
            ("m", ""),
            ("r", "+1"),
            ("r", "ff00ff00 "),
            ("t", "+1.2"),
            ("t", "1.+2"),
            ("t", ".1"),
            ("t", "1."),
            ("t", "-1.0"),
        ] {
            assert!(
                parse(types, &words(&[word])).is_err(),
                "{types} {word:?} was taken"
            );
        }
        assert_eq!(hex_bytes("+1+2"), None);
        assert_eq!(hex_bytes("0x 01 ff\n"), Some(vec![1, 0xff]));
        assert_eq!(hex_bytes(""), Some(vec![]));
        assert_eq!(
            parse("rt", &words(&["0xFF00ff00", "A.b"])).unwrap(),
            [
                OwnedArg::Value(Arg::Rgba([0xff, 0, 0xff, 0])),
                OwnedArg::Value(Arg::Time(TimeTag::new(0xa, 0xb)))
            ]
        );
    }
}
