//! Contexts: options, creation, polling, the wake-up descriptor, events and logging.

use super::handles::{context, register, rosco_channel, rosco_ctx, unregister, CtxEntry};
use super::method::{rosco_free_fn, Owned};
use super::status::{c_str, c_text, guard, optional_str, rosco_status, write_out, Failure};
use crate::handle::ChannelId;
use crate::osc::{AddressTable, TypeSet};
use crate::runtime::{Context, ContextOptions, Event, LogLevel, Mode, ThreadHook};
use std::ffi::{c_char, c_void};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Everything happens inside `rosco_poll` on the caller's thread.
pub const ROSCO_MODE_POLL: i32 = 0;
/// A background thread does the I/O; callbacks run inside `rosco_poll`.
pub const ROSCO_MODE_IO_THREAD: i32 = 1;
/// Callbacks run on the background I/O thread (or on worker threads: see
/// `rosco_ctx_options.workers`).
pub const ROSCO_MODE_THREADED: i32 = 2;

/// Context options. Fill with `rosco_ctx_options_init`, then change what you need: the
/// leading `size` lets the struct grow in later versions without breaking old callers.
/// Fields are only ever appended.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct rosco_ctx_options {
    /// The size of the struct as the caller's header declares it, set by
    /// `rosco_ctx_options_init`.
    pub size: u32,
    /// `ROSCO_MODE_POLL`, `ROSCO_MODE_IO_THREAD` or `ROSCO_MODE_THREADED`.
    pub mode: i32,
    /// Non-zero: coerce arguments to a method's type spec (`i h f d`, `s S`), as liblo does.
    pub coerce: i32,
    /// Non-zero: hold bundles with a future timetag until due; zero: deliver at once.
    pub queue_bundles: i32,
    /// Largest stream frame accepted, in bytes.
    pub max_frame: u32,
    /// Most peers on one stream listener (a newcomer takes the place of one silent for
    /// `stall_timeout_ms`, else it is refused).
    pub max_stream_peers: u32,
    /// Received packets waiting for `rosco_poll` in io-thread mode, or for a worker (1 to
    /// 1,048,576).
    pub queue_capacity: u32,
    /// A stream peer leaving half a frame this long (ms), or taking none of the output
    /// waiting for it this long, is disconnected (0: as soon as it is seen so, which a
    /// frame split across reads can be).
    pub stall_timeout_ms: u32,
    /// Non-zero: stream clients reconnect after losing their connection.
    pub reconnect: i32,
    /// First reconnect wait in ms, at least 1 (doubling each attempt; a wait under 10 ms
    /// is taken as 10 ms).
    pub reconnect_initial_ms: u32,
    /// Longest reconnect wait in ms (a value under the first wait means the first wait).
    pub reconnect_max_ms: u32,
    /// Reconnect attempts before giving up; 0 retries forever. A connection that ends
    /// within a second of being made counts as a failed attempt.
    pub reconnect_retries: u32,
    /// Most bytes of bundles held for a future time; a bundle that would go over is dropped
    /// and reported (`ROSCO_EVENT_DROPPED`). 0 holds none. Each worker holds its own.
    pub max_held_bytes: u32,
    /// Packets sent and received written to the log at debug level: `ROSCO_TRACE_TEXT`,
    /// `ROSCO_TRACE_HEX`, both (`|`), or 0 (off).
    pub trace: i32,
    /// The type tags accepted in received messages and allowed in sent ones, as a string
    /// such as `"ifsb"` (copied; at least one tag); NULL: every OSC type. O2lite traffic
    /// keeps O2's own types.
    pub types: *const c_char,
    /// Non-zero: refuse addresses that break the OSC address syntax, received and sent.
    pub check_address: i32,
    /// Non-zero: refuse received messages without a type-tag string.
    pub require_typetags: i32,
    /// Non-zero: addresses, strings, symbols and chars must be ASCII, received and sent
    /// (osc4py3's default).
    pub ascii_only: i32,
    /// Address compression, both ways (the SMC 2011 scheme: an address in the table is
    /// sent as `/` and its int32 code): `address_count` codes and the addresses they stand
    /// for (copied). NULL and 0: none.
    pub address_codes: *const i32,
    /// The addresses of `address_codes`, in the same order.
    pub addresses: *const *const c_char,
    /// The number of entries in `address_codes` and `addresses`.
    pub address_count: u32,
    /// Longest address pattern accepted in bytes (literal addresses have no limit); longer
    /// ones are refused as malformed, since matching one costs up to its length times each
    /// method's address length. 0: no limit.
    pub max_pattern_len: u32,
    /// `ROSCO_MODE_THREADED` only: how many worker threads run the callbacks (osc4py3's
    /// pool of execution threads, at most 256); 0: the I/O thread runs them. Callbacks
    /// then run concurrently, for different packets in any order: they, and what their
    /// `user` pointers reach, must be thread-safe.
    pub workers: u32,
    /// Called first thing on each thread the context starts (its I/O thread `rosco-io`,
    /// its workers `rosco-worker-N`), with `thread_user` and the thread's name; NULL: none
    /// (liblo's `lo_server_thread_set_callbacks`: raise a thread's priority, name it for a
    /// profiler, attach it to a runtime). Poll mode starts no thread.
    pub thread_start: rosco_thread_fn,
    /// Called last thing on each of those threads before it ends (all have ended when
    /// `rosco_ctx_free` returns, unless it is called on a thread a context started: from
    /// a callback there, this context's or another's).
    pub thread_stop: rosco_thread_fn,
    /// Passed to `thread_start` and `thread_stop`.
    pub thread_user: *mut c_void,
    /// Called with `thread_user` once the hooks are no longer needed: after the last
    /// thread ended, or when `rosco_ctx_new` fails (its `opts` read). NULL: nothing to
    /// free. Each `rosco_ctx_new` that reads these options takes `thread_user` over: to
    /// create several contexts from one struct, give each its own.
    pub thread_user_free: rosco_free_fn,
}

/// Thread hook: `user` as given, and the thread's name (valid during the call).
#[allow(non_camel_case_types)]
pub type rosco_thread_fn = Option<unsafe extern "C" fn(user: *mut c_void, name: *const c_char)>;

/// `rosco_ctx_options.trace`: each packet as text (a message as `rosco dump` prints it, a
/// bundle with its timetag).
pub const ROSCO_TRACE_TEXT: i32 = 1;
/// `rosco_ctx_options.trace`: each packet as a hex dump.
pub const ROSCO_TRACE_HEX: i32 = 2;

impl rosco_ctx_options {
    fn from_rust(o: &ContextOptions) -> rosco_ctx_options {
        let ms = |d: Duration| d.as_millis().min(u32::MAX as u128) as u32;
        let clamp = |n: usize| n.min(u32::MAX as usize) as u32;
        rosco_ctx_options {
            size: std::mem::size_of::<rosco_ctx_options>() as u32,
            mode: match o.mode {
                Mode::Poll => ROSCO_MODE_POLL,
                Mode::IoThread => ROSCO_MODE_IO_THREAD,
                Mode::Threaded => ROSCO_MODE_THREADED,
            },
            coerce: o.coerce as i32,
            queue_bundles: o.receive.queue_bundles as i32,
            max_frame: clamp(o.max_frame),
            max_stream_peers: clamp(o.max_stream_peers),
            queue_capacity: clamp(o.queue_capacity),
            stall_timeout_ms: ms(o.stall_timeout),
            reconnect: o.reconnect.enabled as i32,
            reconnect_initial_ms: ms(o.reconnect.initial),
            reconnect_max_ms: ms(o.reconnect.max),
            reconnect_retries: o.reconnect.retries,
            max_held_bytes: clamp(o.receive.max_held_bytes),
            trace: (i32::from(o.trace.text) * ROSCO_TRACE_TEXT)
                | (i32::from(o.trace.hex) * ROSCO_TRACE_HEX),
            types: std::ptr::null(),
            check_address: o.receive.decode.check_address as i32,
            require_typetags: o.receive.decode.require_typetags as i32,
            ascii_only: o.receive.decode.ascii_only as i32,
            address_codes: std::ptr::null(),
            addresses: std::ptr::null(),
            address_count: 0,
            max_pattern_len: match o.receive.decode.max_pattern_len {
                usize::MAX => 0,
                n => clamp(n),
            },
            workers: clamp(o.workers),
            thread_start: None,
            thread_stop: None,
            thread_user: std::ptr::null_mut(),
            thread_user_free: None,
        }
    }

    /// # Safety
    /// The pointers among the fields `size` covers are NULL or valid as their comments say.
    unsafe fn to_rust(self) -> Result<ContextOptions, Failure> {
        let mut o = ContextOptions::default();
        // Fields past what the caller's struct holds keep their defaults.
        let defaults = rosco_ctx_options::from_rust(&o);
        let given = |offset: usize, len: usize| offset + len <= self.size as usize;
        macro_rules! field {
            ($f:ident) => {
                if given(
                    std::mem::offset_of!(rosco_ctx_options, $f),
                    std::mem::size_of_val(&self.$f),
                ) {
                    self.$f
                } else {
                    defaults.$f
                }
            };
        }
        if (self.size as usize) < std::mem::size_of::<u32>() * 2 {
            return Err(Failure::arg(
                "rosco_ctx_options.size is too small: use rosco_ctx_options_init",
            ));
        }
        // Taken first, so that any failure from here on frees it.
        let user = Arc::new(Owned {
            user: UserData(field!(thread_user)),
            free: field!(thread_user_free),
        });
        o.mode = match field!(mode) {
            ROSCO_MODE_POLL => Mode::Poll,
            ROSCO_MODE_IO_THREAD => Mode::IoThread,
            ROSCO_MODE_THREADED => Mode::Threaded,
            other => return Err(Failure::arg(format!("unknown mode {other}"))),
        };
        let positive = |v: u32, what: &str| match v {
            0 => Err(Failure::arg(format!("{what} must be at least 1"))),
            v => Ok(v),
        };
        o.coerce = field!(coerce) != 0;
        o.receive.queue_bundles = field!(queue_bundles) != 0;
        o.max_frame = positive(field!(max_frame), "max_frame")? as usize;
        o.max_stream_peers = positive(field!(max_stream_peers), "max_stream_peers")? as usize;
        o.queue_capacity = positive(field!(queue_capacity), "queue_capacity")? as usize;
        o.stall_timeout = Duration::from_millis(field!(stall_timeout_ms) as u64);
        o.reconnect.enabled = field!(reconnect) != 0;
        o.reconnect.initial = Duration::from_millis(positive(
            field!(reconnect_initial_ms),
            "reconnect_initial_ms",
        )? as u64);
        o.reconnect.max = Duration::from_millis(field!(reconnect_max_ms) as u64);
        o.reconnect.retries = field!(reconnect_retries);
        o.receive.max_held_bytes = field!(max_held_bytes) as usize;
        let trace = field!(trace);
        if trace & !(ROSCO_TRACE_TEXT | ROSCO_TRACE_HEX) != 0 {
            return Err(Failure::arg(format!(
                "trace {trace} is not a set of ROSCO_TRACE_* flags"
            )));
        }
        o.trace.text = trace & ROSCO_TRACE_TEXT != 0;
        o.trace.hex = trace & ROSCO_TRACE_HEX != 0;
        let (decode, encode) = (&mut o.receive.decode, &mut o.encode);
        // SAFETY: the caller's promise on `types`.
        if let Some(types) = unsafe { optional_str(field!(types), "types") }? {
            let set = type_set(types)?;
            (decode.allowed_types, encode.allowed_types) = (set, set);
        }
        decode.check_address = field!(check_address) != 0;
        encode.check_address = decode.check_address;
        decode.require_typetags = field!(require_typetags) != 0;
        decode.ascii_only = field!(ascii_only) != 0;
        encode.ascii_only = decode.ascii_only;
        // SAFETY: the caller's promise on the table's arrays.
        let table = unsafe {
            address_table(
                field!(address_codes),
                field!(addresses),
                field!(address_count),
            )
        }?;
        (decode.addresses, encode.addresses) = (table.clone(), table);
        decode.max_pattern_len = match field!(max_pattern_len) {
            0 => usize::MAX,
            n => n as usize,
        };
        o.workers = field!(workers) as usize;
        let hook = |f: rosco_thread_fn| {
            let (f, user) = (f?, user.clone());
            Some(ThreadHook::new(move |name: &str| {
                let name = c_text(name);
                // SAFETY: the caller's hook with its user data and a name that lives for the
                // call.
                unsafe { f(user.user.0, name.as_ptr()) }
            }))
        };
        (o.thread_start, o.thread_stop) = (hook(field!(thread_start)), hook(field!(thread_stop)));
        Ok(o)
    }
}

/// The type tags in `types`, each one known.
fn type_set(types: &str) -> Result<TypeSet, Failure> {
    if types.is_empty() {
        return Err(Failure::arg("types is empty: NULL allows every type"));
    }
    TypeSet::known(types.as_bytes())
        .map_err(|t| Failure::arg(format!("types: unknown type tag {}", t as char)))
}

/// The address compression table given by two arrays of `count` entries.
///
/// # Safety
/// With `count` non-zero, `codes` and `addresses` hold `count` entries and each address is
/// a NUL-terminated string.
unsafe fn address_table(
    codes: *const i32,
    addresses: *const *const c_char,
    count: u32,
) -> Result<Option<Arc<AddressTable>>, Failure> {
    if count == 0 {
        return Ok(None);
    }
    if codes.is_null() || addresses.is_null() {
        return Err(Failure::null("address_codes or addresses"));
    }
    // SAFETY: the caller's promise.
    let (codes, addresses) = unsafe {
        (
            std::slice::from_raw_parts(codes, count as usize),
            std::slice::from_raw_parts(addresses, count as usize),
        )
    };
    let mut table = AddressTable::new();
    for (&code, &address) in codes.iter().zip(addresses) {
        // SAFETY: the caller's promise.
        let address = unsafe { c_str(address, "addresses") }?;
        // The two sides must hold the same table: a repeated entry is a mistake to show.
        if table.address_of(code).is_some() || table.code_of(address.as_bytes()).is_some() {
            return Err(Failure::arg(format!(
                "addresses: code {code} or '{address}' is given twice"
            )));
        }
        table
            .insert(code, address)
            .map_err(|e| Failure::arg(format!("addresses: '{address}': {e}")))?;
    }
    Ok(Some(Arc::new(table)))
}

/// Fills the first `size` bytes of `opts` with the defaults (poll mode, coercion on,
/// bundles queued, 1 MiB frames, 500 stream peers, 4096 queued packets, 10 s stall timeout,
/// reconnect from 100 ms to 5 s forever, 16 MiB of held bundles, no packet trace; every
/// type, no address checks, type tags optional, any bytes in text, no address compression,
/// patterns up to 1 KiB, no workers, no thread hooks) and sets its `size` to the part filled (bytes past
/// this library's struct, from a newer header, are zeroed and not counted). Call it
/// through the header's `rosco_ctx_options_init(opts)`, which passes `sizeof *opts`: a
/// program built with an older, smaller struct then gets only the fields it has, and
/// nothing after its struct is written.
///
/// Thread-safe.
///
/// # Safety
/// `opts` is NULL or has `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn rosco_ctx_options_init_sized(
    opts: *mut rosco_ctx_options,
    size: usize,
) -> rosco_status {
    guard(|| {
        if opts.is_null() {
            return Err(Failure::null("opts"));
        }
        let min = std::mem::size_of::<u32>() * 2;
        if size < min {
            return Err(Failure::arg(
                "size is under that of rosco_ctx_options' size and mode: pass sizeof *opts",
            ));
        }
        // A newer header's longer struct: its fields this library does not know are
        // zeroed (and ignored by `rosco_ctx_new`), and `size` says what is known.
        let known = std::mem::size_of::<rosco_ctx_options>();
        if size > 1 << 16 {
            return Err(Failure::arg(
                "size is over 65,536 bytes, more than any version's struct: pass sizeof *opts",
            ));
        }
        if size > known {
            // SAFETY: the caller promised `size` writable bytes.
            unsafe { std::ptr::write_bytes(opts.cast::<u8>().add(known), 0, size - known) };
        }
        let size = size.min(known);
        let defaults = rosco_ctx_options {
            size: size as u32,
            ..rosco_ctx_options::from_rust(&ContextOptions::default())
        };
        // Field by field, each only if it fits: the caller's struct may be an older,
        // shorter one, and padding is never copied.
        macro_rules! put {
            ($($f:ident),*) => {$(
                let at = std::mem::offset_of!(rosco_ctx_options, $f);
                if at + std::mem::size_of_val(&defaults.$f) <= size {
                    // SAFETY: the field lies within the `size` bytes the caller gave.
                    unsafe { std::ptr::addr_of_mut!((*opts).$f).write_unaligned(defaults.$f) };
                }
            )*};
        }
        put!(
            size,
            mode,
            coerce,
            queue_bundles,
            max_frame,
            max_stream_peers,
            queue_capacity,
            stall_timeout_ms,
            reconnect,
            reconnect_initial_ms,
            reconnect_max_ms,
            reconnect_retries,
            max_held_bytes,
            trace,
            types,
            check_address,
            require_typetags,
            ascii_only,
            address_codes,
            addresses,
            address_count,
            max_pattern_len,
            workers,
            thread_start,
            thread_stop,
            thread_user,
            thread_user_free
        );
        Ok(())
    })
}

/// Creates a context (`opts` NULL: the defaults) and writes its handle to `out`.
/// Io-thread and threaded modes start their I/O thread here. Free with `rosco_ctx_free`.
///
/// Thread-safe.
///
/// # Safety
/// `opts` is NULL or points to an options struct at least `opts->size` bytes long whose
/// `types` and address table are NULL or valid as documented, and whose thread hooks are
/// NULL or functions callable from any thread with `thread_user` (taken over by this call);
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_ctx_new(
    opts: *const rosco_ctx_options,
    out: *mut rosco_ctx,
) -> rosco_status {
    guard(|| {
        // Read first: once read, the options' `thread_user` is freed on any failure.
        let options = match opts.is_null() {
            true => ContextOptions::default(),
            // SAFETY: a non-null `opts` points to at least its own `size` field; the fields
            // beyond `size` are not read (see `to_rust`).
            false => unsafe { read_options(opts) }?,
        };
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let ctx = Context::new(options).map_err(Failure::from)?;
        // SAFETY: checked non-null above; the caller passes a writable handle.
        unsafe { write_out(out, register(ctx), "out") }
    })
}

/// Reads as much of the caller's options struct as its `size` says it has.
///
/// # Safety
/// `opts` points to a struct at least `opts->size` bytes long (and at least 4) whose
/// pointers are NULL or valid.
unsafe fn read_options(opts: *const rosco_ctx_options) -> Result<ContextOptions, Failure> {
    // SAFETY: every version of the struct starts with the u32 `size`.
    let size = unsafe { (opts as *const u32).read_unaligned() } as usize;
    let mut copy = rosco_ctx_options::from_rust(&ContextOptions::default());
    let len = size.min(std::mem::size_of::<rosco_ctx_options>());
    // SAFETY: the caller's struct has `size` readable bytes; we copy at most our own size
    // into a local of our layout.
    unsafe {
        std::ptr::copy_nonoverlapping(opts as *const u8, &mut copy as *mut _ as *mut u8, len)
    };
    copy.size = len as u32;
    // SAFETY: the caller's promise on the pointers in the struct.
    unsafe { copy.to_rust() }
}

/// Frees a context: stops its threads (each runs `thread_stop` last, and `thread_user_free`
/// follows the last), closes its channels and their packet hooks (calling their
/// `user_free`), drops its methods (calling their `user_free`) and its event, log, accept
/// and bundle callbacks, even while other threads are inside
/// calls on it (a `rosco_poll` in progress elsewhere finishes its round first). No callback
/// starts after this returns. Afterwards the handle and its channel and method handles are
/// stale. May be called from a callback: the rest of that callback's round is skipped. A
/// call racing this on another thread returns `ROSCO_ERR_HANDLE`, or `ROSCO_ERR_CLOSED` if
/// it was already inside the context. Code rosco runs (callbacks, `user_free`, thread
/// hooks) must not wait for a thread that frees the context, itself or through a call that
/// waits (freeing a context that thread is polling, replacing a callback it runs): that
/// thread may be waiting for it.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_ctx_free(ctx: rosco_ctx) -> rosco_status {
    guard(|| {
        // Other threads may still be inside calls on it: stop it now, not when they return.
        unregister(ctx)?.ctx.shutdown();
        Ok(())
    })
}

/// Runs the context for at most `timeout_ms` (negative: until something is dispatched;
/// 0: only what is ready now). Poll mode does all I/O and runs callbacks here; io-thread
/// mode runs the callbacks of waiting messages here; threaded mode only waits. Writes the
/// number of messages dispatched to `dispatched` when it is not NULL: taken from the queue
/// and matched against the methods, whether or not a method took them (a message after
/// a callback freed the context counts, its callbacks skipped).
///
/// Call it from one thread at a time per context; a second concurrent call, or a call from
/// one of its own callbacks, returns `ROSCO_ERR_BUSY`. `ROSCO_ERR_CLOSED` when another thread
/// frees the context while this waits with nothing dispatched (freed from one of its own
/// callbacks, it returns as it would have).
///
/// # Safety
/// `dispatched` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_poll(
    ctx: rosco_ctx,
    timeout_ms: i32,
    dispatched: *mut u32,
) -> rosco_status {
    guard(|| {
        let entry = context(ctx)?;
        let timeout = (timeout_ms >= 0).then(|| Duration::from_millis(timeout_ms as u64));
        let n = entry.ctx.poll(timeout).map_err(Failure::from)?;
        if !dispatched.is_null() {
            // SAFETY: non-null, and the caller passes a writable u32.
            unsafe { dispatched.write(n.min(u32::MAX as usize) as u32) };
        }
        Ok(())
    })
}

/// Io-thread mode: writes a descriptor that is readable while received messages wait for
/// `rosco_poll` (for Pd's `sys_addpollfn`, epoll, select). Other modes write -1. The
/// descriptor belongs to the context: do not read or close it.
///
/// Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rosco_ctx_wakeup_fd(ctx: rosco_ctx, out: *mut i32) -> rosco_status {
    guard(|| {
        let fd = context(ctx)?.ctx.wakeup_fd().unwrap_or(-1);
        // SAFETY: the caller passes NULL or a writable int.
        unsafe { write_out(out, fd, "out") }
    })
}

/// A channel was bound; `port` is its local port.
pub const ROSCO_EVENT_BOUND: i32 = 1;
/// A stream connection came up.
pub const ROSCO_EVENT_CONNECTED: i32 = 2;
/// A stream connection ended; `reason` says why.
pub const ROSCO_EVENT_DISCONNECTED: i32 = 3;
/// A client will reconnect after `delay_ms` (`attempt` counts from 1); `reason` says why
/// the last connection or attempt ended.
pub const ROSCO_EVENT_RECONNECTING: i32 = 4;
/// A client stopped reconnecting; `reason` says why the last connection or attempt ended.
pub const ROSCO_EVENT_GAVE_UP: i32 = 5;
/// A malformed packet was dropped; `reason` says why, `peer` who sent it.
pub const ROSCO_EVENT_MALFORMED: i32 = 6;
/// Packets were dropped: the receive queue full, a timed bundle over `max_held_bytes`, a
/// stream client's backlog when it gives up, a send one of a listener's peers missed, an
/// O2lite host's refused frame. `count` is the channel's total.
pub const ROSCO_EVENT_DROPPED: i32 = 7;
/// A bundle arrived after its time.
pub const ROSCO_EVENT_LATE: i32 = 8;

/// O2lite news: a client discovered, connected, synchronised or lost its host, a host's
/// client joined or left, a service appeared or went, a message for a service nobody
/// offers was dropped (once per service name); `reason` describes it.
pub const ROSCO_EVENT_O2: i32 = 9;

/// One event. Strings are valid during the callback only; copy what you keep.
#[repr(C)]
#[derive(Debug)]
#[allow(non_camel_case_types)]
pub struct rosco_event {
    /// `ROSCO_EVENT_*`.
    pub kind: i32,
    /// The channel it concerns.
    pub channel: rosco_channel,
    /// The peer as `address:port`, or NULL.
    pub peer: *const c_char,
    /// Why (disconnected, reconnecting, gave up, malformed), or NULL.
    pub reason: *const c_char,
    /// Local port (bound).
    pub port: u16,
    /// Reconnect attempt number.
    pub attempt: u32,
    /// Wait before reconnecting, ms.
    pub delay_ms: u32,
    /// Dropped packets so far on the channel.
    pub count: u64,
}

/// Event callback: `user` as given, the event valid during the call.
#[allow(non_camel_case_types)]
pub type rosco_event_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, event: *const rosco_event)>;

/// Log callback: `level` is 1 error, 2 warning, 3 info, 4 debug; `message` valid during
/// the call.
#[allow(non_camel_case_types)]
pub type rosco_log_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, level: i32, message: *const c_char)>;

/// Caller-owned user data travelling with a callback; the caller states its thread-safety.
pub(crate) struct UserData(pub(crate) *mut c_void);
// SAFETY: rosco only passes the pointer back to the caller's callbacks, on the threads the
// header documents; what the pointer may be used for is the caller's contract.
unsafe impl Send for UserData {}
// SAFETY: as above; rosco never dereferences it.
unsafe impl Sync for UserData {}

/// Sets (or with `cb` NULL removes) the event callback. It runs on the thread doing the
/// I/O: the caller of `rosco_poll` in poll mode, the I/O thread in the other modes, except
/// that in io-thread mode the events of timed bundles (late, dropped for want of room to
/// hold them) come from `rosco_poll`'s thread, where bundles are delivered: there it may
/// run on two threads at once. Once this returns, the previous callback is not running on
/// another thread and will not run again, so its `user` may be freed (called from inside a
/// callback, this cannot wait for calls under way on other threads).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_ctx_set_event_callback(
    ctx: rosco_ctx,
    cb: rosco_event_fn,
    user: *mut c_void,
) -> rosco_status {
    guard(|| {
        let entry = context(ctx)?;
        let Some(cb) = cb else {
            entry.ctx.set_event_callback(None::<fn(&Event)>);
            return Ok(());
        };
        let user = UserData(user);
        let key = entry.key();
        entry.ctx.set_event_callback(Some(move |e: &Event| {
            let user = &user;
            let text = |s: Option<String>| s.map(|s| c_text(&s));
            let (kind, channel, peer, reason, port, attempt, delay, count) = match e {
                Event::Bound { channel, local } => (
                    ROSCO_EVENT_BOUND,
                    *channel,
                    None,
                    None,
                    local.port(),
                    0,
                    0,
                    0,
                ),
                Event::Connected { channel, peer } => (
                    ROSCO_EVENT_CONNECTED,
                    *channel,
                    peer.map(|p| p.to_string()),
                    None,
                    0,
                    0,
                    0,
                    0,
                ),
                Event::Disconnected {
                    channel,
                    peer,
                    reason,
                } => (
                    ROSCO_EVENT_DISCONNECTED,
                    *channel,
                    peer.map(|p| p.to_string()),
                    Some(reason.clone()),
                    0,
                    0,
                    0,
                    0,
                ),
                Event::Reconnecting {
                    channel,
                    attempt,
                    delay,
                    reason,
                } => (
                    ROSCO_EVENT_RECONNECTING,
                    *channel,
                    None,
                    Some(reason.clone()),
                    0,
                    *attempt,
                    delay.as_millis() as u32,
                    0,
                ),
                Event::GaveUp { channel, reason } => (
                    ROSCO_EVENT_GAVE_UP,
                    *channel,
                    None,
                    Some(reason.clone()),
                    0,
                    0,
                    0,
                    0,
                ),
                Event::Malformed {
                    channel,
                    source,
                    reason,
                    ..
                } => (
                    ROSCO_EVENT_MALFORMED,
                    *channel,
                    source.map(|p| p.to_string()),
                    Some(reason.clone()),
                    0,
                    0,
                    0,
                    0,
                ),
                Event::Dropped { channel, total } => {
                    (ROSCO_EVENT_DROPPED, *channel, None, None, 0, 0, 0, *total)
                }
                Event::Late { channel } => (ROSCO_EVENT_LATE, *channel, None, None, 0, 0, 0, 0),
                Event::O2Client { channel, event } => (
                    ROSCO_EVENT_O2,
                    *channel,
                    None,
                    Some(format!("{event:?}")),
                    0,
                    0,
                    0,
                    0,
                ),
                Event::O2Host { channel, event } => (
                    ROSCO_EVENT_O2,
                    *channel,
                    None,
                    Some(format!("{event:?}")),
                    0,
                    0,
                    0,
                    0,
                ),
            };
            let (peer, reason) = (text(peer), text(reason));
            let event = rosco_event {
                kind,
                channel: rosco_channel::of(key, channel),
                peer: peer.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                reason: reason.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                port,
                attempt,
                delay_ms: delay,
                count,
            };
            // SAFETY: the caller's callback with its own user data and an event that lives
            // for the call.
            unsafe { cb(user.0, &event) };
        }));
        Ok(())
    })
}

/// Accept callback: `user` as given, the listener channel, the peer as `address:port`
/// (NULL for Unix sockets, valid during the call). Returns non-zero to accept the
/// connection, 0 to refuse it.
#[allow(non_camel_case_types)]
pub type rosco_accept_fn = Option<
    unsafe extern "C" fn(user: *mut c_void, listener: rosco_channel, peer: *const c_char) -> i32,
>;

/// Sets (or with `cb` NULL removes) the callback that accepts or refuses each incoming
/// stream connection (osc4py3's connection request handler). It runs on the thread doing
/// the I/O, as the event callback does; a refused connection is closed at once and
/// reported as `ROSCO_EVENT_DISCONNECTED`. Once this returns, the previous callback is not
/// running on another thread and will not run again.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_ctx_set_accept_callback(
    ctx: rosco_ctx,
    cb: rosco_accept_fn,
    user: *mut c_void,
) -> rosco_status {
    guard(|| {
        let entry = context(ctx)?;
        let Some(cb) = cb else {
            entry
                .ctx
                .set_accept_filter(None::<fn(ChannelId, Option<SocketAddr>) -> bool>);
            return Ok(());
        };
        let user = UserData(user);
        let key = entry.key();
        entry
            .ctx
            .set_accept_filter(Some(move |channel: ChannelId, peer: Option<SocketAddr>| {
                let user = &user;
                let peer = peer.map(|p| c_text(&p.to_string()));
                let listener = rosco_channel::of(key, channel);
                let peer = peer.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
                // SAFETY: the caller's callback with its user data and a string that lives
                // for the call.
                unsafe { cb(user.0, listener, peer) != 0 }
            }));
        Ok(())
    })
}

/// Sets (or with `cb` NULL removes) the log callback, receiving messages at `level` and
/// more severe (1 error .. 4 debug). It may run on any of the context's threads. Once this
/// returns, the previous callback is not running on another thread and will not run again
/// (as for `rosco_ctx_set_event_callback`).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn rosco_ctx_set_log_callback(
    ctx: rosco_ctx,
    level: i32,
    cb: rosco_log_fn,
    user: *mut c_void,
) -> rosco_status {
    guard(|| {
        let entry = context(ctx)?;
        let level = match level {
            1 => LogLevel::Error,
            2 => LogLevel::Warn,
            3 => LogLevel::Info,
            4 => LogLevel::Debug,
            other => return Err(Failure::arg(format!("log level {other} is not 1..4"))),
        };
        let Some(cb) = cb else {
            entry
                .ctx
                .set_log_callback(level, None::<fn(LogLevel, &str)>);
            return Ok(());
        };
        let user = UserData(user);
        entry.ctx.set_log_callback(
            level,
            Some(move |l: LogLevel, msg: &str| {
                let user = &user;
                let msg = c_text(msg);
                // SAFETY: the caller's callback with its user data and a string that lives
                // for the call.
                unsafe { cb(user.0, l as i32, msg.as_ptr()) };
            }),
        );
        Ok(())
    })
}

/// Runs `f` with the context and the channel a handle names in it.
pub(crate) fn with_ctx_channel<R>(
    ctx: rosco_ctx,
    ch: rosco_channel,
    f: impl FnOnce(&CtxEntry, crate::handle::ChannelId) -> Result<R, Failure>,
) -> Result<R, Failure> {
    let entry = context(ctx)?;
    f(&entry, entry.channel(ch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_every_field() {
        // Over memory full of junk, as a caller's uninitialised struct would be: a field
        // missing from the list `init` writes would keep its junk.
        let mut opts = std::mem::MaybeUninit::<rosco_ctx_options>::uninit();
        // SAFETY: the struct is plain data; every byte is written before it is read.
        let opts = unsafe {
            std::ptr::write_bytes(
                opts.as_mut_ptr().cast::<u8>(),
                0xab,
                std::mem::size_of::<rosco_ctx_options>(),
            );
            let status = rosco_ctx_options_init_sized(
                opts.as_mut_ptr(),
                std::mem::size_of::<rosco_ctx_options>(),
            );
            assert_eq!(status, 0);
            opts.assume_init()
        };
        let defaults = rosco_ctx_options::from_rust(&ContextOptions::default());
        assert_eq!(format!("{opts:?}"), format!("{defaults:?}"));
    }
}
