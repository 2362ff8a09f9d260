//! Address compression (Kleimola & McGlynn, SMC 2011; osc4py3's
//! `addrpattern_compression`): both sides agree on a table of int32 codes, and a message
//! travels with the address `/` followed by its code instead of the address text.

use std::collections::HashMap;
use std::fmt;

/// A two-way table between addresses and int32 codes. How the two sides agree on it is up
/// to them (for example an initial exchange of messages).
#[derive(Debug, Clone, Default)]
pub struct AddressTable {
    by_code: HashMap<i32, Box<[u8]>>,
    by_address: HashMap<Box<[u8]>, i32>,
}

/// Why an entry could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressTableError {
    /// The address is not a literal OSC address starting with `/` (and `/` itself cannot
    /// be compressed: it is the marker).
    BadAddress,
}

impl fmt::Display for AddressTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "address cannot be compressed: not an OSC address other than '/'"
        )
    }
}

impl std::error::Error for AddressTableError {}

impl AddressTable {
    /// An empty table.
    pub fn new() -> AddressTable {
        AddressTable::default()
    }

    /// Maps `code` to `address` both ways, replacing earlier entries for either.
    pub fn insert(
        &mut self,
        code: i32,
        address: impl AsRef<[u8]>,
    ) -> Result<(), AddressTableError> {
        let address = address.as_ref();
        if address.len() < 2 || address[0] != b'/' || address.contains(&0) {
            return Err(AddressTableError::BadAddress);
        }
        // Stored NUL-terminated, as addresses are in packets, so C can read them in place.
        let stored: Box<[u8]> = address.iter().copied().chain([0]).collect();
        if let Some(old) = self.by_code.insert(code, stored) {
            self.by_address.remove(&old[..old.len() - 1]);
        }
        if let Some(old) = self.by_address.insert(address.into(), code) {
            if old != code {
                self.by_code.remove(&old);
            }
        }
        Ok(())
    }

    /// The address for a code, if known.
    pub fn address_of(&self, code: i32) -> Option<&[u8]> {
        self.by_code.get(&code).map(|a| &a[..a.len() - 1])
    }

    /// The code for an address, if known.
    pub fn code_of(&self, address: &[u8]) -> Option<i32> {
        self.by_address.get(address).copied()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_stay_consistent() {
        let mut t = AddressTable::new();
        t.insert(1, "/a").unwrap();
        t.insert(2, "/b").unwrap();
        t.insert(1, "/c").unwrap(); // code 1 now means /c; /a is gone
        assert_eq!(t.address_of(1), Some(&b"/c"[..]));
        assert_eq!(t.code_of(b"/a"), None);
        t.insert(3, "/b").unwrap(); // /b moves from code 2 to 3
        assert_eq!(t.address_of(2), None);
        assert_eq!(t.code_of(b"/b"), Some(3));
        assert_eq!(t.len(), 2);
        assert_eq!(t.insert(4, "/"), Err(AddressTableError::BadAddress));
        assert_eq!(t.insert(4, "x"), Err(AddressTableError::BadAddress));
    }
}
