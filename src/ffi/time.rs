//! Time and version.

use crate::time::TimeTag;

/// The timetag meaning "immediately".
pub const ROSCO_TIMETAG_IMMEDIATE: u64 = 1;

/// The current time as a timetag (NTP 32.32 bits).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_timetag_now() -> u64 {
    TimeTag::now().to_bits()
}

/// The timetag of a moment given in seconds since the Unix epoch. Clamped to what a
/// timetag can name: a moment before 1900 (or NaN) gives 0, one after early 2104 (or
/// infinity) the last nameable moment, as the Rust API does.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_timetag_from_unix(seconds: f64) -> u64 {
    TimeTag::from_unix_secs_f64(seconds).to_bits()
}

/// Seconds since the Unix epoch of a timetag (correct past 2036).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_timetag_to_unix(timetag: u64) -> f64 {
    TimeTag::from_bits(timetag).to_unix_secs_f64()
}

/// The timetag `seconds` (non-negative) after `timetag`; `timetag` itself for negative or
/// non-finite `seconds`. A time after the last a timetag can name (2104-02-26 09:42:23
/// UTC) gives that last one.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_timetag_add(timetag: u64, seconds: f64) -> u64 {
    let t = TimeTag::from_bits(timetag);
    match std::time::Duration::try_from_secs_f64(seconds) {
        Ok(d) => (t + d).to_bits(),
        // Finite but past what a `Duration` holds (about 5.8e11 years): the last time too.
        Err(_) if seconds.is_finite() && seconds > 0.0 => (t + std::time::Duration::MAX).to_bits(),
        Err(_) => timetag,
    }
}

/// The library's version, `(major << 16) | (minor << 8) | patch`; compare with
/// `ROSCO_VERSION` from the header to detect a mismatched library.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_version() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    (part(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
        | (part(env!("CARGO_PKG_VERSION_MINOR")) << 8)
        | part(env!("CARGO_PKG_VERSION_PATCH"))
}
