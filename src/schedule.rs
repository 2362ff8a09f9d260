//! A sans-IO timed queue: items go in with a timetag and come out in timetag order once
//! `now` has reached it. The caller supplies `now` and sleeps until [`next_deadline`].
//!
//! [`next_deadline`]: Scheduler::next_deadline

use crate::time::TimeTag;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Items held until their time, released in time order (ties in insertion order). Times
/// are OSC timetags by default; any ordered key works (O2 global seconds, say).
#[derive(Debug)]
pub struct Scheduler<T, K = TimeTag> {
    heap: BinaryHeap<Reverse<Entry<T, K>>>,
    seq: u64,
}

#[derive(Debug)]
struct Entry<T, K> {
    at: K,
    seq: u64,
    item: T,
}

impl<T, K: Ord> PartialEq for Entry<T, K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T, K: Ord> Eq for Entry<T, K> {}

impl<T, K: Ord> PartialOrd for Entry<T, K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T, K: Ord> Ord for Entry<T, K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.at, self.seq).cmp(&(&other.at, other.seq))
    }
}

impl<T, K: Ord> Default for Scheduler<T, K> {
    fn default() -> Self {
        Scheduler {
            heap: BinaryHeap::new(),
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
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            item,
        }));
        self.seq += 1;
    }

    /// The earliest item whose time is at or before `now`, with its time.
    pub fn pop_due(&mut self, now: K) -> Option<(K, T)> {
        if self.heap.peek()?.0.at > now {
            return None;
        }
        let Reverse(e) = self.heap.pop()?;
        Some((e.at, e.item))
    }

    /// When the earliest item is due.
    pub fn next_deadline(&self) -> Option<K> {
        self.heap.peek().map(|e| e.0.at)
    }

    /// When the last item is due (a walk over every item).
    pub fn latest(&self) -> Option<K> {
        self.heap.iter().map(|e| &e.0).max().map(|e| e.at)
    }

    /// Takes out the item due last (the newest of those due then), with its time; a walk
    /// over every item.
    pub fn pop_latest(&mut self) -> Option<(K, T)> {
        let mut items = std::mem::take(&mut self.heap).into_vec();
        let last = (0..items.len()).max_by(|&a, &b| items[a].0.cmp(&items[b].0));
        let taken = last.map(|i| items.swap_remove(i).0);
        self.heap = BinaryHeap::from(items);
        taken.map(|e| (e.at, e.item))
    }

    /// Keeps only the items `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.heap.retain(|e| keep(&e.0.item));
    }

    /// The items held, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.heap.iter().map(|e| &e.0.item)
    }

    /// The number of items held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
        assert_eq!((s.latest(), s.pop_latest()), (None, None));
        for (at, item) in [(5, "a"), (9, "b"), (1, "c"), (9, "d"), (7, "e")] {
            s.push(at, item);
        }
        assert_eq!(s.latest(), Some(9));
        assert_eq!(
            s.pop_latest(),
            Some((9, "d")),
            "the newest of those due last"
        );
        assert_eq!(s.pop_latest(), Some((9, "b")));
        s.retain(|&item| item != "a");
        assert_eq!(s.iter().count(), 2);
        assert_eq!(s.pop_due(10), Some((1, "c")));
        assert_eq!(s.pop_due(10), Some((7, "e")));
        assert!(s.is_empty());
    }
}
