//! OSC/NTP timetags: 64-bit fixed point, seconds since 1900 in the high 32 bits and a binary
//! fraction of a second in the low 32 bits.
//!
//! The seconds field wraps on 2036-02-07. Timetags are placed in time by the RFC 4330 pivot:
//! a seconds value with its top bit set belongs to era 0 (1968–2036), one with the top bit
//! clear to era 1 (2036–2104). The raw values 0 and 1 are exceptions that always mean "the
//! past": 1 is OSC's "immediately", and 0 is 1900 (python-osc and others send it too).
//!
//! So a timetag names a moment from 1968-01-20 03:14:08 UTC to [`TimeTag::MAX`],
//! 2104-02-26 09:42:23 UTC, or one of those two past values. Conversions and arithmetic
//! whose result lies outside that range never wrap into the wrong era: a moment after
//! [`TimeTag::MAX`] saturates to it (use [`TimeTag::checked_add`] or
//! [`TimeTag::checked_after`] to find out), and a moment before 1968 rounds up to the next
//! moment a timetag can name (0 for 1900 and earlier, else 1968-01-20 03:14:08).

use std::cmp::Ordering;
use std::fmt;
use std::ops::Add;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
const FRAC_PER_SEC: u128 = 1 << 32;
/// The first moment after 1900 a timetag can name, in ticks (2^-32 s) since 1900: seconds
/// `0x8000_0000` of era 0, 1968-01-20 03:14:08 UTC.
const FIRST_TICKS: u128 = (1 << 31) << 32;
/// The last moment a timetag can name, in ticks since 1900: [`TimeTag::MAX`], the end of
/// era 1 under the pivot.
const LAST_TICKS: u128 = (((1 << 32) + (1 << 31)) << 32) - 1;

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

    /// The last moment a timetag can name: seconds `0x7FFF_FFFF` of NTP era 1 with the
    /// largest fraction, just before 2104-02-26 09:42:24 UTC. Later moments saturate to it.
    pub const MAX: TimeTag = TimeTag {
        seconds: 0x7FFF_FFFF,
        fraction: u32::MAX,
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
    ///
    /// Saturates to [`TimeTag::MAX`] (in 2104) when `d` reaches past it; see
    /// [`TimeTag::checked_after`].
    pub fn after(d: Duration) -> TimeTag {
        TimeTag::now() + d
    }

    /// `d` from now, or `None` if that is past [`TimeTag::MAX`] (in 2104), the last moment
    /// a timetag can name.
    pub fn checked_after(d: Duration) -> Option<TimeTag> {
        TimeTag::now().checked_add(d)
    }

    /// The timetag `d` after this one, or `None` if no timetag names that moment: it is past
    /// [`TimeTag::MAX`], or (from 0 or "immediately", which stand for 1900) before 1968.
    /// `self + d` saturates instead.
    pub fn checked_add(self, d: Duration) -> Option<TimeTag> {
        let ticks = self.ticks() + TimeTag::duration_to_ticks(d);
        (ticks <= 1 || (FIRST_TICKS..=LAST_TICKS).contains(&ticks))
            .then(|| TimeTag::from_ticks(ticks))
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

    /// The timetag naming `ticks` since 1900 (the inverse of [`TimeTag::ticks`]), rounded
    /// into the range timetags can name: past [`TimeTag::MAX`] saturates to it, a moment
    /// between 1900 and 1968 rounds up to the first one of era 0, and the first two ticks
    /// of era 1 (whose bits are 0 and "immediately") round up to its third. The truncating
    /// casts wrap the seconds of era 1 into the 32-bit field, as NTP does.
    fn from_ticks(ticks: u128) -> TimeTag {
        const ERA_1: u128 = 1 << 64;
        let ticks = match ticks {
            0 | 1 => ticks,
            t if t < FIRST_TICKS => FIRST_TICKS,
            t if t == ERA_1 || t == ERA_1 + 1 => ERA_1 + 2,
            t => t.min(LAST_TICKS),
        };
        TimeTag {
            seconds: (ticks / FRAC_PER_SEC) as u32,
            fraction: (ticks % FRAC_PER_SEC) as u32,
        }
    }

    /// A duration in ticks, rounded up to a whole tick.
    fn duration_to_ticks(d: Duration) -> u128 {
        // In u64 (below 2^62): a u128 division is a library call.
        let frac = ((d.subsec_nanos() as u64) << 32).div_ceil(1_000_000_000) as u128;
        d.as_secs() as u128 * FRAC_PER_SEC + frac
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
    ///
    /// A moment past [`TimeTag::MAX`] (2104) gives it; one between 1900 and 1968, which
    /// the pivot cannot place, gives the first moment of 1968-01-20 03:14:08.
    pub fn from_ntp_duration(d: Duration) -> TimeTag {
        TimeTag::from_ticks(TimeTag::duration_to_ticks(d))
    }

    /// The system time this timetag names. "Immediately" and 0 name 1900.
    pub fn to_system_time(self) -> SystemTime {
        let ntp_epoch = UNIX_EPOCH - Duration::from_secs(NTP_UNIX_OFFSET);
        ntp_epoch + self.since_ntp_epoch()
    }

    /// The timetag of a system time. Times a timetag cannot name are rounded into range:
    /// after [`TimeTag::MAX`] (2104) to it, before 1968 to 1968-01-20 03:14:08, and 1900 and
    /// earlier to 0.
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
        // Clamped to 1900 and to a little past the end of era 1 (2104), which `from_ticks`
        // then saturates to `TimeTag::MAX`; NaN gives 1900.
        let ntp = (secs + NTP_UNIX_OFFSET as f64).clamp(0.0, (1u64 << 34) as f64);
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

/// The timetag `d` later, saturating: a moment past [`TimeTag::MAX`] gives `TimeTag::MAX`
/// (and one before 1968, reached from 0 or "immediately", gives 1968-01-20 03:14:08). Never
/// earlier than `self`. [`TimeTag::checked_add`] tells when it saturates.
impl Add<Duration> for TimeTag {
    type Output = TimeTag;
    fn add(self, d: Duration) -> TimeTag {
        TimeTag::from_ticks(self.ticks() + TimeTag::duration_to_ticks(d))
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
        // The wrap itself and the tick after it have the bits of 0 and "immediately":
        // they round up to the next moment a timetag can name, never back to 1900.
        let at_wrap = TimeTag::from_system_time(wrap);
        assert_eq!((at_wrap.seconds, at_wrap.fraction), (0, 2));
        assert!(at_wrap > TimeTag::from_system_time(wrap - Duration::from_nanos(1)));
        let wrap_secs = ((1u64 << 32) - NTP_UNIX_OFFSET) as f64;
        assert_eq!(TimeTag::from_unix_secs_f64(wrap_secs), at_wrap);
        let last = TimeTag::new(u32::MAX, u32::MAX - 3);
        assert!(last + Duration::from_nanos(1) > last);
        assert_eq!(last.checked_add(Duration::from_nanos(1)), Some(at_wrap));
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
        // Past the end of era 1 (2104): the last timetag, not a wrapped one in 2036.
        for secs in [5e9, 1e10, 1e20, 1e300, f64::MAX, f64::INFINITY] {
            assert_eq!(TimeTag::from_unix_secs_f64(secs), TimeTag::MAX, "{secs}");
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

    /// Seconds since the Unix epoch of [`TimeTag::MAX`]'s whole second.
    const MAX_UNIX_SECS: u64 = (1 << 32) + (1 << 31) - 1 - NTP_UNIX_OFFSET;

    #[test]
    fn max_is_the_end_of_era_1() {
        let end = UNIX_EPOCH + Duration::from_secs(MAX_UNIX_SECS);
        let max = TimeTag::MAX.to_system_time();
        assert!(max >= end && max < end + Duration::from_secs(1));
        assert!(TimeTag::MAX > TimeTag::now());
        // Nothing sorts after it.
        for bits in [
            u64::MAX,
            0xFFFF_FFFF_0000_0000,
            0x8000_0000_0000_0000,
            2,
            1,
            0,
        ] {
            assert!(TimeTag::from_bits(bits) < TimeTag::MAX, "{bits:x}");
        }
        // Nanosecond precision: the system time of MAX maps back to within a tick or four.
        let back = TimeTag::from_system_time(max);
        assert!(TimeTag::MAX.duration_since(back) < Some(Duration::from_nanos(2)));
        assert_eq!(
            TimeTag::from_system_time(max + Duration::from_nanos(1)),
            TimeTag::MAX
        );
    }

    #[test]
    fn adding_saturates_instead_of_wrapping() {
        let now = TimeTag::now();
        // 2^32 - 10 s used to wrap to 10 s in the past.
        for secs in [(1u64 << 32) - 10, 1 << 32, 1 << 33, u64::MAX] {
            let d = Duration::from_secs(secs);
            assert_eq!(now + d, TimeTag::MAX, "{secs}");
            assert_eq!(now.checked_add(d), None, "{secs}");
            assert_eq!(TimeTag::checked_after(d), None, "{secs}");
            assert!(TimeTag::after(d) > now, "{secs}");
            assert_eq!(TimeTag::after(d), TimeTag::MAX, "{secs}");
        }
        assert_eq!(now + Duration::MAX, TimeTag::MAX);
        assert_eq!(TimeTag::MAX + Duration::from_nanos(1), TimeTag::MAX);
        assert_eq!(TimeTag::MAX.checked_add(Duration::ZERO), Some(TimeTag::MAX));
        assert_eq!(TimeTag::MAX.checked_add(Duration::from_nanos(1)), None);
        // Up to the end exactly: representable, unchanged behaviour.
        let just_before = TimeTag::new(0x7FFF_FFFF, 0);
        let d = Duration::from_secs(1) - Duration::from_nanos(1);
        let last = Some(TimeTag::new(0x7FFF_FFFF, 0xFFFF_FFFC));
        assert_eq!(just_before.checked_add(d), last);
        assert_eq!(Some(just_before + d), last);
        assert_eq!(just_before.checked_add(Duration::from_secs(1)), None);
        assert_eq!(just_before + Duration::from_secs(1), TimeTag::MAX);
        // 68 years ahead crosses the 2036 rollover and stays representable.
        let year = 365 * 86400;
        let t = now.checked_add(Duration::from_secs(68 * year)).unwrap();
        assert!(t > now);
        assert_eq!(t.duration_since(now).map(|d| d.as_secs()), Some(68 * year));
        assert_eq!(
            TimeTag::after(Duration::from_secs(60))
                .duration_since(now)
                .map(|d| d.as_secs() / 10),
            Some(6)
        );
    }

    #[test]
    fn adding_to_the_past_values_never_goes_back() {
        // 0 and "immediately" stand for 1900; 1900 + d before 1968 cannot be named.
        let first = TimeTag::new(0x8000_0000, 0);
        for t in [TimeTag::default(), TimeTag::IMMEDIATE] {
            assert_eq!(t + Duration::ZERO, t);
            assert_eq!(t.checked_add(Duration::ZERO), Some(t));
            assert_eq!(t + Duration::from_secs(1), first);
            assert_eq!(t.checked_add(Duration::from_secs(1)), None);
            assert!(t + Duration::from_secs(1) > t);
        }
        let to_1970 = Duration::from_secs(NTP_UNIX_OFFSET);
        assert_eq!(
            TimeTag::default().checked_add(to_1970),
            Some(TimeTag::from_system_time(UNIX_EPOCH))
        );
    }

    #[test]
    fn conversions_outside_the_range_do_not_wrap() {
        let first = TimeTag::new(0x8000_0000, 0);
        // 1950 is not era 1 (2086): it rounds up to 1968.
        let y1950 = UNIX_EPOCH - Duration::from_secs(20 * 365 * 86400);
        assert_eq!(TimeTag::from_system_time(y1950), first);
        assert_eq!(TimeTag::from_ntp_duration(Duration::from_secs(5)), first);
        assert_eq!(TimeTag::from_unix_secs_f64(-1e9), first);
        // 1900 and before: 0.
        assert_eq!(
            TimeTag::from_ntp_duration(Duration::ZERO),
            TimeTag::default()
        );
        // 2200 is not 2064 or 1996.
        let y2200 = UNIX_EPOCH + Duration::from_secs(230 * 365 * 86400);
        assert_eq!(TimeTag::from_system_time(y2200), TimeTag::MAX);
        assert_eq!(
            TimeTag::from_ntp_duration(Duration::from_secs(1 << 33)),
            TimeTag::MAX
        );
        // Representable moments keep their values, either side of 2036.
        assert_eq!(
            TimeTag::from_ntp_duration(Duration::from_secs(1 << 31)),
            first
        );
        assert_eq!(
            TimeTag::from_ntp_duration(Duration::from_secs((1 << 32) + 7)),
            TimeTag::new(7, 0)
        );
        assert_eq!(
            TimeTag::from_unix_secs_f64(MAX_UNIX_SECS as f64),
            TimeTag::new(0x7FFF_FFFF, 0)
        );
    }
}
