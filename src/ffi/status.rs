//! Status codes, the thread-local error detail, and the wall every entry point stands
//! behind: arguments are checked, errors become codes, panics never cross into C.

use crate::error::Error;
use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The result of every fallible call: `ROSCO_OK` (0) or a negative error code.
#[allow(non_camel_case_types)]
pub type rosco_status = i32;

/// Success.
pub const ROSCO_OK: rosco_status = 0;
/// A pointer argument was NULL.
pub const ROSCO_ERR_NULL: rosco_status = -1;
/// A handle is stale (its object was freed or closed) or belongs to another object.
pub const ROSCO_ERR_HANDLE: rosco_status = -2;
/// A bad value: URL, address, type spec, name, option, or text that is not UTF-8.
pub const ROSCO_ERR_ARG: rosco_status = -3;
/// An accessor asked for an argument of another type.
pub const ROSCO_ERR_TYPE: rosco_status = -4;
/// An argument index past the end.
pub const ROSCO_ERR_RANGE: rosco_status = -5;
/// A system call failed (the detail says which).
pub const ROSCO_ERR_IO: rosco_status = -6;
/// The peer, connection or context is closed.
pub const ROSCO_ERR_CLOSED: rosco_status = -7;
/// A bounded queue or buffer is full; nothing was sent.
pub const ROSCO_ERR_FULL: rosco_status = -8;
/// A wait ended before the operation completed.
pub const ROSCO_ERR_TIMEOUT: rosco_status = -9;
/// rosco hit a bug (a caught panic); the detail says where.
pub const ROSCO_ERR_INTERNAL: rosco_status = -10;
/// `rosco_poll` is already running on this context (from another thread, or the callback
/// calling it).
pub const ROSCO_ERR_BUSY: rosco_status = -11;
/// The operation does not apply to this channel.
pub const ROSCO_ERR_UNSUPPORTED: rosco_status = -12;

/// A failure: its code and the detail `rosco_last_error` will give.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: rosco_status,
    pub(crate) detail: String,
}

impl Failure {
    pub(crate) fn new(code: rosco_status, detail: impl Into<String>) -> Failure {
        Failure {
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Failure {
        Failure::new(ROSCO_ERR_NULL, format!("{what} is NULL"))
    }

    pub(crate) fn arg(detail: impl Into<String>) -> Failure {
        Failure::new(ROSCO_ERR_ARG, detail)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match &e {
            Error::Io(_) => ROSCO_ERR_IO,
            Error::Url(_)
            | Error::Encode(_)
            | Error::Decode(_)
            | Error::Method(_)
            | Error::NoName(_)
            | Error::NameTaken(_)
            | Error::Service(_)
            | Error::BadOption(_) => ROSCO_ERR_ARG,
            Error::NoChannel => ROSCO_ERR_HANDLE,
            Error::Closed => ROSCO_ERR_CLOSED,
            Error::Full => ROSCO_ERR_FULL,
            Error::Unsupported(_) => ROSCO_ERR_UNSUPPORTED,
            Error::Busy => ROSCO_ERR_BUSY,
            Error::Timeout => ROSCO_ERR_TIMEOUT,
        };
        Failure::new(code, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// `text` as a C string: a NUL inside (a traced `c` argument of 0, say) becomes a space
/// rather than losing the whole line.
pub(crate) fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

fn set_last_error(detail: &str) {
    let text = c_text(detail);
    // Gone at thread exit (a call from a thread-local's destructor): nothing to keep.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = text);
}

/// Runs an entry point's body: its failure becomes a status and the thread's error
/// detail; a panic becomes `ROSCO_ERR_INTERNAL`. (Asserting unwind safety is sound here:
/// after a panic the body's state is dropped, and shared state is behind locks that do not
/// poison.)
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> rosco_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ROSCO_OK,
        Ok(Err(f)) => {
            set_last_error(&f.detail);
            f.code
        }
        Err(panic) => {
            set_last_error(&format!("internal error: {}", panic_text(&*panic)));
            ROSCO_ERR_INTERNAL
        }
    }
}

/// For entry points that return a value rather than a status: `fallback` on failure.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> Result<T, Failure>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(f)) => {
            set_last_error(&f.detail);
            fallback
        }
        Err(panic) => {
            set_last_error(&format!("internal error: {}", panic_text(&*panic)));
            fallback
        }
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic")
}

/// Reads a required C string as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: the caller promises a valid NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(p) };
    bytes
        .to_str()
        .map_err(|_| Failure::arg(format!("{what} is not UTF-8")))
}

/// `len` bytes at `data`; `data` may be NULL when `len` is 0.
///
/// # Safety
/// `data` is NULL or readable for `len` bytes for `'a`.
pub(crate) unsafe fn byte_slice<'a>(
    data: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Failure> {
    match (data.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(Failure::null(what)),
        // SAFETY: non-null and readable for `len` bytes by the caller's promise.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(data, len) }),
    }
}

/// An optional C string (NULL gives `None`), which must be UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn optional_str<'a>(
    p: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's promise.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(Some)
        .map_err(|_| Failure::arg(format!("{what} is not UTF-8")))
}

/// A required C string's bytes (any encoding).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn c_bytes<'a>(p: *const c_char, what: &str) -> Result<&'a [u8], Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: the caller's promise.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// Writes through a required out-pointer.
///
/// # Safety
/// `out` is NULL or valid for writing a `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T, what: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-null and, by the caller's promise, valid for a write.
    unsafe { out.write(value) };
    Ok(())
}

/// Copies `text` into `buf` of `len` bytes, NUL-terminated, and writes the length it needs
/// (without the NUL) to `needed` when not NULL. A too-small buffer gets a truncated,
/// terminated copy and `ROSCO_ERR_RANGE`.
///
/// # Safety
/// `buf` is writable for `len` bytes (or NULL when `len` is 0); `needed` is NULL or
/// writable.
pub(crate) unsafe fn write_text(
    text: &str,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
    what: &str,
) -> Result<(), Failure> {
    if !needed.is_null() {
        // SAFETY: non-null and writable by the caller's promise.
        unsafe { needed.write(text.len()) };
    }
    if len == 0 {
        return Err(Failure::new(ROSCO_ERR_RANGE, "buffer of 0 bytes"));
    }
    if buf.is_null() {
        return Err(Failure::null("buf"));
    }
    let n = text.len().min(len - 1);
    // SAFETY: `buf` has `len` writable bytes and we write `n + 1 <= len`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, n);
        buf.add(n).write(0);
    }
    match n < text.len() {
        true => Err(Failure::new(
            ROSCO_ERR_RANGE,
            format!("buffer too small for the {what}"),
        )),
        false => Ok(()),
    }
}

/// The name of a status code, for messages: `"ROSCO_ERR_HANDLE"`. Never NULL; unknown
/// codes give `"ROSCO_ERR_UNKNOWN"`. The string is static.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_status_str(status: rosco_status) -> *const c_char {
    let s: &'static CStr = match status {
        ROSCO_OK => c"ROSCO_OK",
        ROSCO_ERR_NULL => c"ROSCO_ERR_NULL",
        ROSCO_ERR_HANDLE => c"ROSCO_ERR_HANDLE",
        ROSCO_ERR_ARG => c"ROSCO_ERR_ARG",
        ROSCO_ERR_TYPE => c"ROSCO_ERR_TYPE",
        ROSCO_ERR_RANGE => c"ROSCO_ERR_RANGE",
        ROSCO_ERR_IO => c"ROSCO_ERR_IO",
        ROSCO_ERR_CLOSED => c"ROSCO_ERR_CLOSED",
        ROSCO_ERR_FULL => c"ROSCO_ERR_FULL",
        ROSCO_ERR_TIMEOUT => c"ROSCO_ERR_TIMEOUT",
        ROSCO_ERR_INTERNAL => c"ROSCO_ERR_INTERNAL",
        ROSCO_ERR_BUSY => c"ROSCO_ERR_BUSY",
        ROSCO_ERR_UNSUPPORTED => c"ROSCO_ERR_UNSUPPORTED",
        _ => c"ROSCO_ERR_UNKNOWN",
    };
    s.as_ptr()
}

/// A one-line description of the last failure on the calling thread (`""` if none).
/// Valid until the next failing rosco call on this thread; copy it to keep it.
///
/// Thread-safe (each thread has its own).
#[no_mangle]
pub extern "C" fn rosco_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_panics_become_codes_with_detail() {
        let detail = || {
            // SAFETY: rosco_last_error returns a valid NUL-terminated string.
            unsafe { CStr::from_ptr(rosco_last_error()) }
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(guard(|| Ok(())), ROSCO_OK);
        assert_eq!(guard(|| Err(Failure::arg("bad thing"))), ROSCO_ERR_ARG);
        assert_eq!(detail(), "bad thing");
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(guard(|| panic!("boom")), ROSCO_ERR_INTERNAL);
        std::panic::set_hook(prev);
        assert_eq!(detail(), "internal error: boom");
        for code in -20..=1 {
            assert!(!rosco_status_str(code).is_null());
        }
        // SAFETY: rosco_status_str returns a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(rosco_status_str(-2)) };
        assert_eq!(name, c"ROSCO_ERR_HANDLE");
    }
}
