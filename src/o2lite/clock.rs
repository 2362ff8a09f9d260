//! O2lite clock synchronisation, client side (specs/o2lite.md §7), sans-IO: the caller
//! passes local time (seconds on a monotonic clock) and sends the pings this asks for.
//!
//! Pings start 50 ms after the session begins, every 0.1 s, every 0.5 s once 1 s has
//! passed, every 10 s after 5 s. Only a reply to the latest ping counts. From the last
//! five (round trip, offset) pairs the offset with the smallest round trip is the estimate
//! `e` (round trip `m`): the first estimate is taken as is (the client is then
//! synchronised); later ones are approached by slewing, clamped to `e ± m`, in 2 ms steps.
//! Global time is local time plus the offset, or -1 before synchronisation. Everything is
//! float64 (o2lite.c's float32 times lose precision after hours).

/// Replies kept and needed before synchronising.
const WINDOW: usize = 5;
const START_DELAY: f64 = 0.05;
const SLEW_STEP: f64 = 0.002;

/// What a reply changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SyncUpdate {
    /// Not enough replies yet, or a stale reply.
    Pending,
    /// The first estimate: the client is now synchronised (send `cs/cs`).
    Synced {
        /// The offset taken.
        offset: f64,
    },
    /// A later estimate moved the offset.
    Adjusted {
        /// The new offset.
        offset: f64,
    },
    /// A reply to the latest ping with a time no host can have (see [`MAX_GLOBAL_TIME`]):
    /// ignored, the ping still waits for its reply.
    Unusable,
}

/// The latest global time a host's clock can show: global time starts near 0 when the
/// reference process does (specs/o2lite.md §5), and 10^10 s (317 years) leaves room for a
/// reference clock set to Unix time. Beyond it float64 seconds lose microseconds, and a
/// single absurd reply with the shortest round trip would become the clock.
pub const MAX_GLOBAL_TIME: f64 = 1e10;

/// The client's clock synchronisation state for one session.
#[derive(Debug, Clone)]
pub struct ClockSync {
    /// When the session started (local seconds); pings are timed from it.
    started: f64,
    next_ping: f64,
    seq: i32,
    /// The latest ping: its sequence number and local send time.
    outstanding: Option<(i32, f64)>,
    samples: [(f64, f64); WINDOW],
    count: usize,
    offset: Option<f64>,
    last_reply: Option<f64>,
}

impl ClockSync {
    /// A new session starting at local time `now` (when `!_o2/id` arrived).
    pub fn new(now: f64) -> ClockSync {
        ClockSync {
            started: now,
            next_ping: now + START_DELAY,
            // From a number nobody can guess: a reply must carry the latest ping's, and
            // replies are taken from any address (see `reply`).
            seq: crate::random::random_u64() as i32,
            outstanding: None,
            samples: [(0.0, 0.0); WINDOW],
            count: 0,
            offset: None,
            last_reply: None,
        }
    }

    fn period(&self, now: f64) -> f64 {
        match now - self.started {
            t if t < 1.0 => 0.1,
            t if t < 5.0 => 0.5,
            _ => 10.0,
        }
    }

    /// When the next ping is due (local seconds).
    pub fn next_ping(&self) -> f64 {
        self.next_ping
    }

    /// The sequence number of a ping to send now, if one is due.
    pub fn poll(&mut self, now: f64) -> Option<i32> {
        if now < self.next_ping {
            return None;
        }
        self.seq = self.seq.wrapping_add(1);
        self.outstanding = Some((self.seq, now));
        self.next_ping = now + self.period(now);
        Some(self.seq)
    }

    /// A `cs/put` reply: sequence number and the host's global time, received at `now`.
    /// Only a reply to the latest ping counts, and only a time a host can have: global
    /// time starts at 0 when the host does.
    pub fn reply(&mut self, seq: i32, host_time: f64, now: f64) -> SyncUpdate {
        let Some((latest, sent)) = self.outstanding else {
            return SyncUpdate::Pending;
        };
        if seq != latest {
            return SyncUpdate::Pending;
        }
        if !(0.0..=MAX_GLOBAL_TIME).contains(&host_time) {
            return SyncUpdate::Unusable;
        }
        self.outstanding = None;
        self.last_reply = Some(now);
        let rtt = (now - sent).max(0.0);
        let offset = host_time + rtt / 2.0 - now;
        self.samples[self.count % WINDOW] = (rtt, offset);
        self.count += 1;
        if self.count < WINDOW {
            return SyncUpdate::Pending;
        }
        let (m, e) = self
            .samples
            .iter()
            .copied()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("the window is full");
        let Some(current) = self.offset else {
            self.offset = Some(e);
            return SyncUpdate::Synced { offset: e };
        };
        let next = if current < e - m {
            e - m
        } else if current > e + m {
            e + m
        } else if current < e - SLEW_STEP {
            current + SLEW_STEP
        } else if current > e + SLEW_STEP {
            current - SLEW_STEP
        } else {
            e
        };
        self.offset = Some(next);
        SyncUpdate::Adjusted { offset: next }
    }

    /// True once the first estimate was taken.
    pub fn is_synced(&self) -> bool {
        self.offset.is_some()
    }

    /// Global time at local time `now`, or -1 before synchronisation.
    pub fn global_time(&self, now: f64) -> f64 {
        self.offset.map_or(-1.0, |o| now + o)
    }

    /// Local time of a global time (for holding timestamped messages), once synchronised.
    pub fn local_time(&self, global: f64) -> Option<f64> {
        self.offset.map(|o| global - o)
    }

    /// Seconds since the last accepted reply: a host that stops answering for long is
    /// taken for dead. Zero until a first reply: a host that has never answered (an O2
    /// host with no clock yet, or UDP blocked on the way back) is pinged on, as the
    /// spec's §7 asks of a client.
    pub fn silence(&self, now: f64) -> f64 {
        self.last_reply.map_or(0.0, |at| now - at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host whose clock is `skew` ahead of the client's, on a link with the given
    /// one-way delays (alternating), driven through the ping schedule.
    fn run(skew: f64, delays: &[f64], until: f64) -> (ClockSync, Vec<SyncUpdate>) {
        let mut c = ClockSync::new(100.0);
        let mut updates = Vec::new();
        let mut now = 100.0;
        let mut i = 0;
        while now < until {
            now = c.next_ping();
            if let Some(seq) = c.poll(now) {
                let d = delays[i % delays.len()];
                i += 1;
                let host_time = now + d + skew;
                updates.push(c.reply(seq, host_time, now + 2.0 * d));
            }
        }
        (c, updates)
    }

    #[test]
    fn schedule_follows_the_spec() {
        let mut c = ClockSync::new(0.0);
        assert_eq!(c.poll(0.04), None);
        let first = c.poll(0.05).unwrap();
        assert_ne!(
            ClockSync::new(0.0).seq,
            ClockSync::new(0.0).seq,
            "unguessable"
        );
        assert!((c.next_ping() - 0.15).abs() < 1e-9);
        let mut t = c.next_ping();
        assert_eq!(c.poll(t), Some(first.wrapping_add(1)));
        while t < 1.2 {
            t = c.next_ping();
            c.poll(t);
        }
        assert!((c.next_ping() - t - 0.5).abs() < 1e-9, "0.5 s after 1 s");
        while t < 5.5 {
            t = c.next_ping();
            c.poll(t);
        }
        assert!((c.next_ping() - t - 10.0).abs() < 1e-9, "10 s after 5 s");
    }

    #[test]
    fn synchronises_after_five_replies_with_the_best_round_trip() {
        let (c, updates) = run(1000.0, &[0.0005, 0.002, 0.001, 0.003, 0.0004], 100.6);
        let first_sync = updates
            .iter()
            .position(|u| matches!(u, SyncUpdate::Synced { .. }));
        assert_eq!(first_sync, Some(4), "{updates:?}");
        assert!(c.is_synced());
        // Symmetric delays: every estimate is exact.
        assert!((c.global_time(200.0) - 1200.0).abs() < 1e-9);
        assert_eq!(ClockSync::new(0.0).global_time(5.0), -1.0);
    }

    #[test]
    fn asymmetric_delay_error_is_bounded_by_the_best_round_trip() {
        let mut c = ClockSync::new(0.0);
        let mut now = 0.0;
        for _ in 0..5 {
            now = c.next_ping();
            let seq = c.poll(now).unwrap();
            // 1 ms there, 3 ms back: the estimate is off by 1 ms, within rtt/2.
            c.reply(seq, now + 0.001 + 50.0, now + 0.004);
        }
        let err = c.global_time(now) - (now + 50.0);
        assert!(err.abs() <= 0.002 + 1e-12, "{err}");
    }

    #[test]
    fn later_estimates_slew_in_small_steps_within_the_clamp() {
        let mut c = ClockSync::new(0.0);
        let mut now = 0.0;
        let mut ping = |c: &mut ClockSync, skew: f64| {
            now = c.next_ping();
            let seq = c.poll(now).unwrap();
            c.reply(seq, now + 0.0001 + skew, now + 0.0002)
        };
        for _ in 0..5 {
            ping(&mut c, 10.0);
        }
        assert!((c.global_time(0.0) - 10.0).abs() < 1e-6);
        // The host's clock jumps 10 ms: the clamp (best rtt 0.2 ms) moves the offset to
        // within the new estimate's window at once.
        for _ in 0..5 {
            ping(&mut c, 10.010);
        }
        assert!((c.global_time(0.0) - 10.010).abs() <= 0.0003);
    }

    #[test]
    fn stale_and_unexpected_replies_are_ignored() {
        let mut c = ClockSync::new(0.0);
        assert_eq!(c.reply(1, 5.0, 0.01), SyncUpdate::Pending);
        let s1 = c.poll(0.05).unwrap();
        let s2 = c.poll(c.next_ping()).unwrap();
        assert_eq!(c.reply(s1, 5.0, 0.16), SyncUpdate::Pending);
        assert_eq!(c.silence(0.16), 0.0, "a stale reply is not an answer");
        c.reply(s2, 5.0, 0.16);
        assert!(c.silence(0.2) < 0.05);
        assert_eq!(c.reply(s2, 5.0, 0.17), SyncUpdate::Pending, "answered once");
        assert!(
            (c.silence(0.3) - 0.14).abs() < 1e-9,
            "a repeat is not an answer"
        );
        assert_eq!(
            c.reply(c.seq, f64::NAN, 0.2),
            SyncUpdate::Pending,
            "answered"
        );
    }

    #[test]
    fn times_no_host_can_have_are_refused() {
        let mut c = ClockSync::new(0.0);
        let seq = c.poll(0.05).unwrap();
        for absurd in [f64::NAN, f64::INFINITY, -1.0, MAX_GLOBAL_TIME * 1.01, 1e300] {
            assert_eq!(c.reply(seq, absurd, 0.06), SyncUpdate::Unusable, "{absurd}");
        }
        assert_eq!(c.silence(0.5), 0.0, "no answer yet");
        // The ping still waits for its reply, and the largest time is taken.
        assert_eq!(c.reply(seq, MAX_GLOBAL_TIME, 0.06), SyncUpdate::Pending);
        assert!(c.silence(0.5) > 0.4);
    }
}
