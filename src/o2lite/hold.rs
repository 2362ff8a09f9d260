//! The host's messages held until their timestamp: bounded in number and bytes, and counted
//! per service, so that a service going takes its messages with it (without a walk over the
//! queue when it has none held).

use super::host::{MAX_HELD, MAX_HELD_BYTES};
use crate::schedule::Scheduler;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

/// O2 global time as a totally ordered scheduler key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Global(pub(super) f64);

impl Eq for Global {}

impl PartialOrd for Global {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Global {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A held message: its body, its reliability and its service.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) body: Vec<u8>,
    pub(super) reliable: bool,
    service: Box<str>,
}

#[derive(Debug, Default)]
pub(super) struct HoldQueue {
    items: Scheduler<Held, Global>,
    /// Bytes of the held bodies.
    bytes: usize,
    /// Messages held for each service that has some.
    per_service: HashMap<Box<str>, usize>,
}

impl HoldQueue {
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn next_deadline(&self) -> Option<Global> {
        self.items.next_deadline()
    }

    /// Holds `body` (for `service`) until `at`. When the queue is full, what is due after
    /// `at` makes room, from the last, if enough of it can: those messages are returned, to
    /// be delivered early. `None`: no room to be made; the caller delivers `body` early.
    pub(super) fn hold(
        &mut self,
        at: Global,
        service: &str,
        body: &[u8],
        reliable: bool,
    ) -> Option<Vec<Held>> {
        let over_count = (self.items.len() + 1).saturating_sub(MAX_HELD);
        let over_bytes = (self.bytes + body.len()).saturating_sub(MAX_HELD_BYTES);
        let (mut count, mut bytes) = (0, 0);
        for (due, held) in self.items.latest_first() {
            if (count >= over_count && bytes >= over_bytes) || due <= at {
                break;
            }
            count += 1;
            bytes += held.body.len();
        }
        if count < over_count || bytes < over_bytes {
            return None;
        }
        let mut early = Vec::with_capacity(count);
        for _ in 0..count {
            if let Some((_, held)) = self.items.pop_latest() {
                early.push(self.released(held));
            }
        }
        self.bytes += body.len();
        *self.per_service.entry(service.into()).or_default() += 1;
        let held = Held {
            body: body.to_vec(),
            reliable,
            service: service.into(),
        };
        self.items.push(at, held);
        Some(early)
    }

    /// The earliest message due at `now`.
    pub(super) fn pop_due(&mut self, now: Global) -> Option<Held> {
        let (_, held) = self.items.pop_due(now)?;
        Some(self.released(held))
    }

    /// Drops what is held for `services`; returns how many messages.
    pub(super) fn remove_services(&mut self, services: &BTreeSet<String>) -> u64 {
        let dropped: usize = services
            .iter()
            .filter_map(|s| self.per_service.remove(s.as_str()))
            .sum();
        if dropped == 0 {
            return 0;
        }
        let mut freed = 0;
        self.items.retain(|held| {
            let gone = services.contains(&*held.service);
            freed += if gone { held.body.len() } else { 0 };
            !gone
        });
        self.bytes -= freed;
        dropped as u64
    }

    /// Takes a message out of the counts.
    fn released(&mut self, held: Held) -> Held {
        self.bytes -= held.body.len();
        if let Some(n) = self.per_service.get_mut(&held.service) {
            *n -= 1;
            if *n == 0 {
                self.per_service.remove(&held.service);
            }
        }
        held
    }
}
