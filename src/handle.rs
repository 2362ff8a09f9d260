//! Generational handles: an index plus a generation, so a handle to a removed object is
//! recognised as stale instead of reaching whatever took its place (nng's typed IDs). The
//! method table, the runtime's channels and the C API's contexts all use `Slab`.

/// A handle: slot index in the low 32 bits, generation in the high 32 bits. The
/// generation of a live slot is never 0, so the all-zero value is never valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(u64);

impl Handle {
    fn new(index: u32, generation: u32) -> Handle {
        Handle(((generation as u64) << 32) | index as u64)
    }

    /// The packed value (what the C API hands out).
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// A handle from its packed value; whether it is valid is for the slab to say.
    pub const fn from_bits(bits: u64) -> Handle {
        Handle(bits)
    }

    fn index(self) -> usize {
        self.0 as u32 as usize
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Handle of an open channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelId(pub Handle);

/// Handle of one peer connected to a listening stream channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId(pub Handle);

#[derive(Clone)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A vector of slots addressed by [`Handle`]; freed slots are reused with a new
/// generation.
#[derive(Clone)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> Handle {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            return Handle::new(index, slot.generation);
        }
        let index = u32::try_from(self.slots.len()).expect("more than 2^32 live handles");
        self.slots.push(Slot {
            generation: 1,
            value: Some(value),
        });
        Handle::new(index, 1)
    }

    /// The handle the next `insert` will return (valid while nothing else is inserted).
    pub(crate) fn next_handle(&self) -> Handle {
        match self.free.last() {
            Some(&index) => Handle::new(index, self.slots[index as usize].generation),
            None => Handle::new(self.slots.len() as u32, 1),
        }
    }

    /// The value at a slot index regardless of generation (for indexes kept internally).
    pub(crate) fn at(&self, index: u32) -> Option<&T> {
        self.slots.get(index as usize)?.value.as_ref()
    }

    pub(crate) fn remove(&mut self, h: Handle) -> Option<T> {
        let slot = self.slots.get_mut(h.index())?;
        if slot.generation != h.generation() {
            return None;
        }
        let value = slot.value.take()?;
        // Skip 0 on wrap-around so the all-zero handle stays invalid.
        slot.generation = slot.generation.checked_add(1).unwrap_or(1);
        self.free.push(h.index() as u32);
        self.len -= 1;
        Some(value)
    }

    /// An empty slab whose handles differ from every handle this one gave out: each
    /// occupied slot's generation moves on, as if it were removed.
    pub(crate) fn emptied(&self) -> Slab<T> {
        let slots = self.slots.iter().map(|s| Slot {
            generation: match s.value {
                Some(_) => s.generation.checked_add(1).unwrap_or(1),
                None => s.generation,
            },
            value: None,
        });
        Slab {
            slots: slots.collect(),
            free: (0..self.slots.len() as u32).rev().collect(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, h: Handle) -> Option<&T> {
        let slot = self.slots.get(h.index())?;
        (slot.generation == h.generation()).then_some(slot.value.as_ref()?)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Handle, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let value = s.value.as_ref()?;
            Some((Handle::new(i as u32, s.generation), value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_handles_are_rejected() {
        let mut slab = Slab::default();
        assert_eq!(slab.next_handle(), Handle::new(0, 1));
        let a = slab.insert("a");
        assert_eq!(slab.at(0), Some(&"a"));
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None);
        let predicted = slab.next_handle();
        let b = slab.insert("b"); // reuses the slot
        assert_eq!(predicted, b);
        assert_eq!(a.index(), b.index());
        assert_ne!(a, b);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.remove(Handle::from_bits(0)), None);
        assert_eq!(slab.remove(Handle::from_bits(u64::MAX)), None);
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.get(a), None);
        assert_eq!(
            slab.iter().map(|(h, v)| (h, *v)).collect::<Vec<_>>(),
            [(b, "b")]
        );
        assert_eq!(slab.remove(Handle::from_bits(b.to_bits())), Some("b"));
    }

    #[test]
    fn an_emptied_slab_gives_no_old_handle_again() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        let b = slab.insert("b");
        slab.remove(b);
        let c = slab.insert("c");
        let mut empty = slab.emptied();
        assert_eq!((empty.len(), empty.get(a), empty.get(c)), (0, None, None));
        let fresh = [empty.insert("x"), empty.insert("y"), empty.insert("z")];
        for old in [a, b, c] {
            assert!(!fresh.contains(&old), "{old:?} given again");
        }
        assert_eq!(empty.len(), 3);
    }
}
