//! Hex dumps of packets for debugging (osc4py3's `dumpraw` options).

use std::fmt;

/// Formats bytes as an offset / hex / ASCII dump, 16 bytes a line:
/// `0000  2f 61 00 00 2c 69 00 00  00 00 00 01              |/a..,i......|`
#[derive(Debug, Clone, Copy)]
pub struct HexDump<'a>(pub &'a [u8]);

impl fmt::Display for HexDump<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (line, chunk) in self.0.chunks(16).enumerate() {
            if line > 0 {
                writeln!(f)?;
            }
            write!(f, "{:04x} ", line * 16)?;
            for i in 0..16 {
                let gap = if i == 8 { "  " } else { " " };
                match chunk.get(i) {
                    Some(b) => write!(f, "{gap}{b:02x}")?,
                    None => write!(f, "{gap}  ")?,
                }
            }
            write!(f, "  |")?;
            for &b in chunk {
                let c = if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                };
                write!(f, "{c}")?;
            }
            write!(f, "|")?;
        }
        Ok(())
    }
}

// `unhex`, the inverse of a dump, for the unit tests: the integration tests' own.
#[cfg(test)]
include!("../../tests/support/hex.rs");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_sixteen() {
        let bytes: Vec<u8> = b"/a\0\0,i\0\0"
            .iter()
            .copied()
            .chain([0, 0, 0, 1])
            .collect();
        assert_eq!(
            HexDump(&bytes).to_string(),
            "0000  2f 61 00 00 2c 69 00 00  00 00 00 01              |/a..,i......|"
        );
        let long = [0x41u8; 17];
        let text = HexDump(&long).to_string();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().nth(1).unwrap().starts_with("0010  41"));
    }
}
