//! A sans-IO timed queue: items go in with a timetag and come out in timetag order once
//! `now` has reached it. The caller supplies `now` and sleeps until [`next_deadline`].
//!
//! [`next_deadline`]: Scheduler::next_deadline

use crate::time::TimeTag;
use std::collections::BTreeMap;

/// Items held until their time, released in time order (ties in insertion order). Times
/// are OSC timetags by default; any ordered key works (O2 global seconds, say). Both ends
/// come out in logarithmic time: the earliest when due, the latest when room is needed.
#[derive(Debug)]
pub struct Scheduler<T, K = TimeTag> {
    /// Keyed by time, then by insertion.
    items: BTreeMap<(K, u64), T>,
    seq: u64,
}

impl<T, K: Ord> Default for Scheduler<T, K> {
    fn default() -> Self {
        Scheduler {
            items: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<T, K: Ord + Copy> Scheduler<T, K> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds `item` until `at`.
    pub fn push(&mut self, at: K, item: T) {
        self.items.insert((at, self.seq), item);
        self.seq += 1;
    }

    /// The earliest item whose time is at or before `now`, with its time.
    pub fn pop_due(&mut self, now: K) -> Option<(K, T)> {
        let first = self.items.first_entry()?;
        if first.key().0 > now {
            return None;
        }
        let ((at, _), item) = first.remove_entry();
        Some((at, item))
    }

    /// When the earliest item is due.
    pub fn next_deadline(&self) -> Option<K> {
        self.items.keys().next().map(|&(at, _)| at)
    }

    /// Takes out the item due last (the newest of those due then), with its time.
    pub fn pop_latest(&mut self) -> Option<(K, T)> {
        self.items.pop_last().map(|((at, _), item)| (at, item))
    }

    /// The items from the one due last backwards, with their times.
    pub fn latest_first(&self) -> impl Iterator<Item = (K, &T)> {
        self.items.iter().rev().map(|(&(at, _), item)| (at, item))
    }

    /// Keeps only the items `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.items.retain(|_, item| keep(item));
    }

    /// The number of items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn releases_in_time_then_insertion_order() {
        let t0 = TimeTag::new(0xe000_0000, 0);
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = Scheduler::new();
        s.push(ms(30), "c");
        s.push(ms(10), "a");
        s.push(ms(20), "b1");
        s.push(ms(20), "b2");
        assert_eq!(s.next_deadline(), Some(ms(10)));
        assert_eq!(s.pop_due(ms(5)), None);
        assert_eq!(s.pop_due(ms(20)), Some((ms(10), "a")));
        assert_eq!(s.pop_due(ms(20)), Some((ms(20), "b1")));
        assert_eq!(s.pop_due(ms(20)), Some((ms(20), "b2")));
        assert_eq!(s.pop_due(ms(20)), None);
        assert_eq!(s.len(), 1);
        assert_eq!(s.pop_due(ms(100)), Some((ms(30), "c")));
        assert!(s.is_empty());
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn ordering_crosses_the_2036_rollover() {
        let mut s = Scheduler::new();
        let before = TimeTag::new(0xffff_fff0, 0);
        let after = TimeTag::new(0x0000_0010, 0);
        s.push(after, 2);
        s.push(before, 1);
        assert_eq!(s.pop_due(after), Some((before, 1)));
        assert_eq!(s.pop_due(after), Some((after, 2)));
    }

    #[test]
    fn the_latest_comes_out_and_a_filter_keeps_the_rest_in_order() {
        let mut s: Scheduler<&str, u32> = Scheduler::new();
        assert_eq!(s.pop_latest(), None);
        for (at, item) in [(5, "a"), (9, "b"), (1, "c"), (9, "d"), (7, "e")] {
            s.push(at, item);
        }
        let order: Vec<_> = s.latest_first().map(|(at, &item)| (at, item)).collect();
        assert_eq!(order, [(9, "d"), (9, "b"), (7, "e"), (5, "a"), (1, "c")]);
        assert_eq!(
            s.pop_latest(),
            Some((9, "d")),
            "the newest of those due last"
        );
        assert_eq!(s.pop_latest(), Some((9, "b")));
        s.retain(|&item| item != "a");
        assert_eq!(s.len(), 2);
        assert_eq!(s.pop_due(10), Some((1, "c")));
        assert_eq!(s.pop_due(10), Some((7, "e")));
        assert!(s.is_empty());
    }
}
