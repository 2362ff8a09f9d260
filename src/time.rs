//! OSC/NTP timetags: 64-bit fixed point, seconds since 1900 in the high 32 bits and a binary
//! fraction of a second in the low 32 bits.
//!
//! The seconds field wraps on 2036-02-07. Timetags are placed in time by the RFC 4330 pivot:
//! a seconds value with its top bit set belongs to era 0 (1968–2036), one with the top bit
//! clear to era 1 (2036–2104). The raw values 0 and 1 are exceptions that always mean "the
//! past": 1 is OSC's "immediately", and 0 is 1900 (python-osc and others send it too).

use std::cmp::Ordering;
use std::fmt;
use std::ops::Add;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
const FRAC_PER_SEC: u128 = 1 << 32;
/// The last second a timetag can name: the end of NTP era 1.
const LAST_NTP_SECOND: f64 = ((1u64 << 33) - 1) as f64;

/// An OSC timetag (NTP 32.32 fixed point).
///
/// Equality is bitwise; ordering follows the moment in time, so a timetag after the 2036
/// rollover sorts after one before it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimeTag {
    /// Whole seconds since 1900-01-01 00:00 UTC, modulo 2^32.
    pub seconds: u32,
    /// Fraction of a second in units of 2^-32 s.
    pub fraction: u32,
}

impl TimeTag {
    /// The special value `0x0000000000000001`: deliver immediately.
    pub const IMMEDIATE: TimeTag = TimeTag {
        seconds: 0,
        fraction: 1,
    };

    /// A timetag from its two 32-bit halves.
    pub const fn new(seconds: u32, fraction: u32) -> TimeTag {
        TimeTag { seconds, fraction }
    }

    /// A timetag from its 64-bit wire value.
    pub const fn from_bits(bits: u64) -> TimeTag {
        TimeTag {
            seconds: (bits >> 32) as u32,
            fraction: bits as u32,
        }
    }

    /// The 64-bit wire value.
    pub const fn to_bits(self) -> u64 {
        ((self.seconds as u64) << 32) | self.fraction as u64
    }

    /// True for the "immediately" value.
    pub const fn is_immediate(self) -> bool {
        self.to_bits() == 1
    }

    /// The current system time.
    pub fn now() -> TimeTag {
        TimeTag::from_system_time(SystemTime::now())
    }

    /// `d` from now: the usual way to schedule a bundle.
    pub fn after(d: Duration) -> TimeTag {
        TimeTag::now() + d
    }

    /// Units of 2^-32 s since 1900, with the era resolved. Orders timetags by the moment
    /// they name; 0 and 1 stay at the very start.
    fn ticks(self) -> u128 {
        let bits = self.to_bits();
        if bits <= 1 {
            return bits as u128;
        }
        let era: u128 = if self.seconds & 0x8000_0000 == 0 {
            1
        } else {
            0
        };
        ((era << 32) + self.seconds as u128) * FRAC_PER_SEC + self.fraction as u128
    }

    fn from_ticks(ticks: u128) -> TimeTag {
        TimeTag {
            seconds: (ticks / FRAC_PER_SEC) as u32,
            fraction: (ticks % FRAC_PER_SEC) as u32,
        }
    }

    /// Time since 1900-01-01, with the era resolved by the RFC 4330 pivot.
    pub fn since_ntp_epoch(self) -> Duration {
        let ticks = self.ticks();
        let secs = (ticks / FRAC_PER_SEC) as u64;
        // In u64 (below 2^62): a u128 division is a library call on every receive path.
        let nanos = (((ticks % FRAC_PER_SEC) as u64 * 1_000_000_000) >> 32) as u32;
        Duration::new(secs, nanos)
    }

    /// The timetag `d` after 1900-01-01 (wrapping the seconds field past 2036, as NTP does).
    pub fn from_ntp_duration(d: Duration) -> TimeTag {
        // In u64 (below 2^62), as above.
        let frac = ((d.subsec_nanos() as u64) << 32).div_ceil(1_000_000_000) as u128;
        TimeTag::from_ticks(d.as_secs() as u128 * FRAC_PER_SEC + frac)
    }

    /// The system time this timetag names. "Immediately" and 0 name 1900.
    pub fn to_system_time(self) -> SystemTime {
        let ntp_epoch = UNIX_EPOCH - Duration::from_secs(NTP_UNIX_OFFSET);
        ntp_epoch + self.since_ntp_epoch()
    }

    /// The timetag of a system time (times before 1968 cannot be represented and give the
    /// earliest one).
    pub fn from_system_time(t: SystemTime) -> TimeTag {
        let d = match t.duration_since(UNIX_EPOCH) {
            Ok(after) => after + Duration::from_secs(NTP_UNIX_OFFSET),
            Err(e) => Duration::from_secs(NTP_UNIX_OFFSET).saturating_sub(e.duration()),
        };
        TimeTag::from_ntp_duration(d)
    }

    /// Seconds since the Unix epoch as a float (the O2 style of time).
    pub fn to_unix_secs_f64(self) -> f64 {
        self.since_ntp_epoch().as_secs_f64() - NTP_UNIX_OFFSET as f64
    }

    /// The timetag of a float count of seconds since the Unix epoch.
    pub fn from_unix_secs_f64(secs: f64) -> TimeTag {
        // Clamped to what timetags can name (1900 to the end of era 1, in 2104); NaN
        // gives 1900.
        let ntp = (secs + NTP_UNIX_OFFSET as f64).clamp(0.0, LAST_NTP_SECOND);
        TimeTag::from_ntp_duration(Duration::try_from_secs_f64(ntp).unwrap_or_default())
    }

    /// How long after `earlier` this timetag is, or `None` if it is not later.
    pub fn duration_since(self, earlier: TimeTag) -> Option<Duration> {
        let (a, b) = (self.ticks(), earlier.ticks());
        (a >= b).then(|| TimeTag::ticks_to_duration(a - b))
    }

    fn ticks_to_duration(ticks: u128) -> Duration {
        let secs = (ticks / FRAC_PER_SEC) as u64;
        let nanos = ((ticks % FRAC_PER_SEC) * 1_000_000_000 / FRAC_PER_SEC) as u32;
        Duration::new(secs, nanos)
    }
}

impl Add<Duration> for TimeTag {
    type Output = TimeTag;
    fn add(self, d: Duration) -> TimeTag {
        let frac = (d.subsec_nanos() as u128 * FRAC_PER_SEC).div_ceil(1_000_000_000);
        TimeTag::from_ticks(self.ticks() + d.as_secs() as u128 * FRAC_PER_SEC + frac)
    }
}

impl Ord for TimeTag {
    fn cmp(&self, other: &TimeTag) -> Ordering {
        self.ticks().cmp(&other.ticks())
    }
}

impl PartialOrd for TimeTag {
    fn partial_cmp(&self, other: &TimeTag) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl From<SystemTime> for TimeTag {
    fn from(t: SystemTime) -> TimeTag {
        TimeTag::from_system_time(t)
    }
}

impl From<TimeTag> for SystemTime {
    fn from(t: TimeTag) -> SystemTime {
        t.to_system_time()
    }
}

impl fmt::Debug for TimeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeTag({:08x}.{:08x})", self.seconds, self.fraction)
    }
}

/// `seconds.fraction` in hex, the form `oscdump` prints.
impl fmt::Display for TimeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}.{:08x}", self.seconds, self.fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_round_trip() {
        let t = TimeTag::from_system_time(UNIX_EPOCH);
        assert_eq!(t, TimeTag::new(2_208_988_800, 0));
        assert_eq!(t.to_system_time(), UNIX_EPOCH);
    }

    #[test]
    fn fractions_keep_nanosecond_precision() {
        let st = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let t = TimeTag::from_system_time(st);
        let back = t.to_system_time();
        let err = back
            .duration_since(st)
            .unwrap_or_else(|e| e.duration())
            .as_nanos();
        assert!(err <= 1, "round trip error {err} ns");
        assert_eq!(
            TimeTag::new(0, 0x8000_0000)
                .since_ntp_epoch()
                .subsec_nanos(),
            500_000_000
        );
    }

    #[test]
    fn rollover_2036_by_pivot() {
        // 2036-02-07 06:28:16 UTC is the instant the seconds field wraps to 0.
        let wrap = UNIX_EPOCH + Duration::from_secs((1u64 << 32) - NTP_UNIX_OFFSET);
        let before = TimeTag::from_system_time(wrap - Duration::from_secs(1));
        let after = TimeTag::from_system_time(wrap + Duration::from_secs(1));
        assert_eq!(before.seconds, u32::MAX);
        assert_eq!(after.seconds, 1);
        assert!(after > before);
        assert_eq!(after.duration_since(before), Some(Duration::from_secs(2)));
        assert_eq!(after.to_system_time(), wrap + Duration::from_secs(1));
        assert_eq!(before + Duration::from_secs(2), after);
    }

    #[test]
    fn immediate_and_zero_are_in_the_past() {
        let now = TimeTag::now();
        assert!(TimeTag::IMMEDIATE < now);
        assert!(TimeTag::default() < now);
        assert!(TimeTag::default() < TimeTag::IMMEDIATE);
        assert!(TimeTag::IMMEDIATE.is_immediate());
    }

    #[test]
    fn huge_and_odd_float_seconds_saturate() {
        for secs in [1e20, 1e300, f64::MAX, f64::INFINITY] {
            assert_eq!(
                TimeTag::from_unix_secs_f64(secs),
                TimeTag::new(u32::MAX, 0),
                "{secs}"
            );
        }
        assert_eq!(TimeTag::from_unix_secs_f64(f64::NAN), TimeTag::default());
        assert_eq!(TimeTag::from_unix_secs_f64(-1e300), TimeTag::default());
    }

    #[test]
    fn float_seconds() {
        let t = TimeTag::from_unix_secs_f64(1_700_000_000.25);
        assert_eq!(t.seconds as u64, 1_700_000_000 + NTP_UNIX_OFFSET);
        assert_eq!(t.fraction, 0x4000_0000);
        assert_eq!(t.to_unix_secs_f64(), 1_700_000_000.25);
    }

    #[test]
    fn ordering_is_total_and_matches_time() {
        let a = TimeTag::new(0xe8e1_f480, 0x8000_0000);
        let b = a + Duration::from_millis(1);
        assert!(a < b);
        assert_eq!(b.duration_since(a).map(|d| d.as_micros()), Some(1000));
        assert_eq!(a.duration_since(b), None);
        assert_eq!(TimeTag::from_bits(a.to_bits()), a);
    }
}
