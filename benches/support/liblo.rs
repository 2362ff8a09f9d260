//! The few liblo calls the benchmarks make (liblo 0.31, Debian's `liblo-dev`), so that
//! liblo runs in the same process and the same run as rosco, rosc and raw sockets. Each
//! benchmark uses part of it.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};

type Raw = *mut c_void;
type Handler = unsafe extern "C" fn(
    path: *const c_char,
    types: *const c_char,
    argv: *mut Raw,
    argc: c_int,
    msg: Raw,
    user: *mut c_void,
) -> c_int;

/// liblo's protocol constants (`lo_macros.h`).
pub(crate) const UDP: c_int = 0x1;
pub(crate) const TCP: c_int = 0x4;

#[link(name = "lo")]
extern "C" {
    fn lo_server_new_with_proto(port: *const c_char, proto: c_int, err: Raw) -> Raw;
    fn lo_server_free(s: Raw);
    fn lo_server_get_port(s: Raw) -> c_int;
    fn lo_server_get_socket_fd(s: Raw) -> c_int;
    fn lo_server_add_method(
        s: Raw,
        path: *const c_char,
        types: *const c_char,
        h: Handler,
        user: *mut c_void,
    ) -> Raw;
    fn lo_server_recv_noblock(s: Raw, timeout_ms: c_int) -> c_int;
    fn lo_address_new_with_proto(proto: c_int, host: *const c_char, port: *const c_char) -> Raw;
    fn lo_address_free(a: Raw);
    fn lo_address_set_tcp_nodelay(a: Raw, enable: c_int) -> c_int;
    fn lo_message_new() -> Raw;
    fn lo_message_free(m: Raw);
    fn lo_message_add_int32(m: Raw, v: i32) -> c_int;
    fn lo_message_add_float(m: Raw, v: f32) -> c_int;
    fn lo_message_add_string(m: Raw, s: *const c_char) -> c_int;
    fn lo_send_message(a: Raw, path: *const c_char, m: Raw) -> c_int;
    fn lo_message_length(m: Raw, path: *const c_char) -> usize;
    fn lo_message_serialise(
        m: Raw,
        path: *const c_char,
        to: *mut c_void,
        size: *mut usize,
    ) -> *mut c_void;
    fn lo_message_deserialise(data: *mut c_void, size: usize, result: *mut c_int) -> Raw;
    fn lo_message_get_types(m: Raw) -> *const c_char;
    fn lo_message_get_argv(m: Raw) -> *mut *mut LoArg;
}

/// The part of liblo's `lo_arg` union the benchmark message reads.
#[repr(C)]
union LoArg {
    i: i32,
    f: f32,
    s: c_char,
}

unsafe extern "C" fn count_one(
    _: *const c_char,
    _: *const c_char,
    _: *mut Raw,
    _: c_int,
    _: Raw,
    user: *mut c_void,
) -> c_int {
    // SAFETY: `user` is the server's boxed counter, which outlives the server.
    unsafe { (*(user as *const AtomicU64)).fetch_add(1, Ordering::Relaxed) };
    0
}

/// A liblo server on an ephemeral loopback port whose one method counts
/// `/synth/1/freq ,ifs` messages.
pub(crate) struct Server {
    raw: Raw,
    count: Box<AtomicU64>,
}

// SAFETY: a liblo server may move between threads; it is used by one at a time.
unsafe impl Send for Server {}

impl Server {
    pub(crate) fn new(proto: c_int) -> Server {
        // SAFETY: a null port asks for any free port; a null error handler is allowed.
        let raw =
            unsafe { lo_server_new_with_proto(std::ptr::null(), proto, std::ptr::null_mut()) };
        assert!(!raw.is_null(), "liblo could not open a server");
        let count = Box::new(AtomicU64::new(0));
        // SAFETY: valid server and C strings; the counter outlives the server (dropped
        // after it in `Drop`).
        let method = unsafe {
            lo_server_add_method(
                raw,
                c"/synth/1/freq".as_ptr(),
                c"ifs".as_ptr(),
                count_one,
                &*count as *const AtomicU64 as *mut c_void,
            )
        };
        assert!(!method.is_null());
        Server { raw, count }
    }

    pub(crate) fn port(&self) -> u16 {
        // SAFETY: a valid server.
        unsafe { lo_server_get_port(self.raw) as u16 }
    }

    /// The server's socket (UDP) or listening socket (TCP).
    pub(crate) fn fd(&self) -> c_int {
        // SAFETY: a valid server.
        unsafe { lo_server_get_socket_fd(self.raw) }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Handles what has arrived, waiting up to `timeout_ms` for something.
    pub(crate) fn recv(&self, timeout_ms: c_int) -> c_int {
        // SAFETY: a valid server.
        unsafe { lo_server_recv_noblock(self.raw, timeout_ms) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: freed once; the counter is freed after this.
        unsafe { lo_server_free(self.raw) }
    }
}

/// A liblo address and the benchmark message, built once; each send serialises it, as
/// `lo_send_message` does.
pub(crate) struct Sender {
    address: Raw,
    message: Raw,
}

// SAFETY: used by one thread at a time.
unsafe impl Send for Sender {}

impl Sender {
    pub(crate) fn new(proto: c_int, port: u16) -> Sender {
        let port = CString::new(port.to_string()).unwrap();
        // SAFETY: valid C strings; the message is filled with valid arguments.
        unsafe {
            let address = lo_address_new_with_proto(proto, c"127.0.0.1".as_ptr(), port.as_ptr());
            assert!(!address.is_null());
            let message = lo_message_new();
            lo_message_add_int32(message, 440);
            lo_message_add_float(message, 0.5);
            lo_message_add_string(message, c"sine".as_ptr());
            Sender { address, message }
        }
    }

    /// Turns Nagle's algorithm off (liblo leaves it on) for the TCP connection it opens.
    pub(crate) fn set_tcp_nodelay(&self) {
        // SAFETY: a valid address.
        unsafe { lo_address_set_tcp_nodelay(self.address, 1) };
    }

    /// Sends the message; false when liblo reports an error.
    pub(crate) fn send(&self) -> bool {
        // SAFETY: valid address, path and message.
        unsafe { lo_send_message(self.address, c"/synth/1/freq".as_ptr(), self.message) >= 0 }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // SAFETY: each freed once.
        unsafe {
            lo_message_free(self.message);
            lo_address_free(self.address);
        }
    }
}

/// The benchmark message as a liblo message object, built once (liblo's best case):
/// encoding serialises it into a caller's buffer, decoding deserialises a packet into a
/// new object, as `lo_server` does, and reads every argument.
pub(crate) struct Codec {
    message: Raw,
}

impl Codec {
    pub(crate) fn new() -> Codec {
        // SAFETY: a new message filled with valid arguments.
        unsafe {
            let message = lo_message_new();
            lo_message_add_int32(message, 440);
            lo_message_add_float(message, 0.5);
            lo_message_add_string(message, c"sine".as_ptr());
            Codec { message }
        }
    }

    /// Serialises the message into `out`; returns its length.
    pub(crate) fn encode(&self, out: &mut [u8]) -> usize {
        let path = c"/synth/1/freq".as_ptr();
        let mut size = 0;
        // SAFETY: a valid message and path; `out` has room for the length liblo reports.
        unsafe {
            assert!(lo_message_length(self.message, path) <= out.len());
            lo_message_serialise(self.message, path, out.as_mut_ptr().cast(), &mut size);
        }
        size
    }
}

impl Drop for Codec {
    fn drop(&mut self) {
        // SAFETY: freed once.
        unsafe { lo_message_free(self.message) }
    }
}

/// Deserialises `packet` and folds every argument's value into a checksum, as the codec
/// benchmark does for rosco and rosc.
pub(crate) fn decode_read(packet: &mut [u8]) -> u64 {
    let mut result = 0;
    // SAFETY: liblo reads `packet.len()` bytes and copies them into the new message; the
    // type string and argument pointers it returns live until the message is freed, and
    // each argument is read as its type tag says.
    unsafe {
        let m = lo_message_deserialise(packet.as_mut_ptr().cast(), packet.len(), &mut result);
        assert!(!m.is_null(), "liblo rejected the packet: {result}");
        let types = CStr::from_ptr(lo_message_get_types(m)).to_bytes();
        let argv = lo_message_get_argv(m);
        let mut sum = 0u64;
        for (i, &tag) in types.iter().enumerate() {
            let arg = *argv.add(i);
            sum = sum.wrapping_add(match tag {
                b'i' => (*arg).i as u64,
                b'f' => (*arg).f.to_bits().into(),
                b's' | b'S' => CStr::from_ptr(&(*arg).s)
                    .to_bytes()
                    .iter()
                    .map(|&b| u64::from(b))
                    .sum(),
                _ => 0,
            });
        }
        lo_message_free(m);
        sum
    }
}
