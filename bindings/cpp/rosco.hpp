// rosco.hpp: header-only C++17 wrapper over the rosco C API (include/rosco.h).
// MIT OR Apache-2.0.
//
// Include it where you include <rosco.h> and link librosco. Everything here is inline;
// any number of translation units may include it.
//
// ----------------------------------------------------------------------------------------
// Synopsis
//
//   rosco::Context ctx;                                    // poll mode, default options
//   rosco::Channel in  = ctx.open("in", "osc.udp://:0?bind=127.0.0.1");
//   rosco::Channel out = ctx.open("out", "osc.udp://127.0.0.1:" + std::to_string(in.port()));
//   rosco::Method m = ctx.on("/synth/*/freq", "f", [](const rosco::Message& msg) {
//       float hz = msg.get<float>(0);                      // typed, throws on a wrong type
//       msg.reply("/ack", msg.address(), hz);              // back to the sender
//   });
//   out.send("/synth/1/freq", 440.0f);                     // variadic, C++ types -> OSC tags
//   ctx.poll(std::chrono::milliseconds(100));              // runs the handlers (poll mode)
//
// Types
//   Error      std::runtime_error with the rosco_status and rosco_last_error() text.
//   Options    chainable setters over rosco_ctx_options (mode, coercion, queueing, ...).
//   Context    move-only owner of a rosco_ctx: open(), channel(), poll(), on(), on_any(),
//              on_event(), on_log(), on_bundle(), on_exception(), set_hooks(),
//              wakeup_fd(), set_source_name(), o2lite_connect(), o2_bridge_to_osc(),
//              osc_bridge_to_o2().
//   Channel    a copyable value (context handle + channel handle): send(address, args...),
//              send(builder), try_send(), send_raw(), port(), url(), stats(), flush(),
//              close(); on O2lite channels also o2_service_add(), o2_service_remove(),
//              o2_send(), o2_time(), o2_bridge_id(), o2_query(), o2_query_list().
//              A Channel whose channel or context is gone throws ROSCO_ERR_HANDLE.
//   Method     move-only registration of a handler; destroying it removes the method
//              (after waiting for a call of the handler under way on another thread).
//   Builder    move-only owner of a rosco_builder: message(a).add(x, y), bundle(t, fill),
//              bundle_begin()/bundle_end(), array_begin()/array_end(), append_args(msg),
//              bytes(), reset().
//   Message    the view a handler receives: address(), typetags(), size(), type(i),
//              get<T>(i), try_get<T>(i), get_seconds(i), source(), source_name(), channel(),
//              bundle_time(), received(), o2_stamp(), bytes(), reply(address, args...),
//              reply(builder).
//   TimeTag    NTP 32.32 time: now(), immediately(), from_now(d), from_unix(), + duration.
//   Blob, Symbol, Char, Midi, Rgba, Impulse, ArrayBegin, ArrayEnd: OSC types C++ lacks.
//
// C++ type -> OSC type tag (send, reply, Builder::add) and back (Message::get<T>)
//   int32_t (and smaller integers)  i      int64_t (any signed 64-bit integer)   h
//   float                           f      double                                d
//   const char*, std::string,       s      rosco::Symbol                         S
//     std::string_view (get<> of these also accepts S)
//   bool                            T / F  std::nullptr_t (send only)            N
//     (get<bool> also reads O2's B; on O2lite a bool is sent as B)
//   rosco::Impulse (send only)      I      rosco::Blob {pointer, size}           b
//   rosco::Char                     c      rosco::Midi {port, status, d1, d2}    m
//   rosco::Rgba {r, g, b, a}        r      rosco::TimeTag                        t
//   rosco::ArrayBegin / ArrayEnd    [ ]
// Unsigned 32/64-bit integers, plain `char` and `long double` are refused at compile time
// (which OSC type they should become is ambiguous): cast them, or wrap in rosco::Char.
// Strings are passed as bytes; one holding a NUL byte is refused (ROSCO_ERR_ARG), since
// OSC strings end at the first NUL.
//
// ----------------------------------------------------------------------------------------
// O2lite
//
//   rosco::Context host(rosco::Options().mode(rosco::Mode::threaded));
//   rosco::Channel h = host.open("host", "o2lite-host://myens?mdns=0");  // mdns=0: no DNS-SD
//   h.o2_service_add("server");                   // the host's own service
//   rosco::Context ctx;
//   rosco::Channel c = ctx.o2lite_connect("myens", "127.0.0.1:" + std::to_string(h.port()));
//   c.o2_service_add("client");                   // announced now and on every reconnection
//   rosco::Method m = ctx.on("/client/note", [&](const rosco::Message& msg) { ... });
//   ctx.on_event([](const rosco::Event& e) {
//       if (e.kind == rosco::EventKind::o2 && e.o2_name() == "Synced") { ... }
//   });
//   ...once synchronised (o2_time() >= 0):
//   c.o2_send(0, true, "/server/hello", 1, "two");          // now, by TCP
//   c.o2_send(c.o2_time() + 0.5, false, "/server/later");   // due in 0.5 s, best effort
//
// * Context::o2lite_connect(ensemble, "host:port") connects to a host directly ("host:port:
//   udp_port" also names its UDP port; without it everything goes by TCP);
//   o2lite_connect(ensemble) finds the host by DNS-SD discovery on the local network. A
//   host is a channel opened with open(name, "o2lite-host://ENSEMBLE[:PORT][?mdns=0]"); its
//   TCP port is port(). The session (connect, services, clock sync, reconnect) runs in the
//   background; its news arrives as events of kind EventKind::o2 whose `reason` describes
//   it: Discovered { .. }, Connected { bridge_id: 1 }, Synced { offset: .. }, Lost { .. },
//   Status { .. }, List(..) on a client; ClientJoined { .. }, ClientLeft { .. },
//   ClientSynced { .. }, ServiceAdded { .. }, ServiceRemoved { .. }, Refused { .. },
//   Unroutable { service: "..", total: .. } (a message for a service nobody offers was
//   dropped; once per service name), ServiceRefused { .. } (a client offered more services
//   than the host takes), NotHeld { reason: "..", total: .. } (a timestamped message
//   dropped instead of held) on a host. Event::o2_name() gives the leading word ("Synced"). The text after it is for
//   people, not for parsing.
// * Incoming O2 messages reach ordinary methods (Context::on), the O2 address's leading
//   '!' shown as '/': "!client/note" arrives as "/client/note". Message::bundle_time() is
//   0 for them; Message::o2_stamp() gives their O2 timestamp and transport. A boolean arrives
//   as O2's B (get<bool>() reads B, T and F). An O2 time argument (t) arrives as a TimeTag
//   holding global seconds in 32.32 fixed point: Message::get_seconds(i) reads it as
//   seconds.
// * o2_send(timestamp, reliable, address, args...) sends one message to "/service/...":
//   `timestamp` in O2 global seconds (0: now; a host holds a future one until due; a
//   client sends a non-zero one only once synchronised, ROSCO_ERR_UNSUPPORTED before),
//   `reliable` true for TCP, false for UDP (which goes by TCP when the host's UDP port is
//   unknown). Messages are built as OSC, so the address starts with '/' (O2's
//   "!service/..." form is refused with ROSCO_ERR_ARG). Arguments map as for send(),
//   except that rosco::Rgba has no O2 form (ROSCO_ERR_UNSUPPORTED) and a rosco::TimeTag
//   argument carries O2 global seconds in 32.32 fixed point (TimeTag(uint64_t(seconds *
//   4294967296.0))). A Builder must hold a message, not a bundle (ROSCO_ERR_ARG). Errors:
//   ROSCO_ERR_CLOSED while a client is not connected, ROSCO_ERR_UNSUPPORTED on a channel
//   that is not O2lite.
// * o2_time() is the ensemble's global time in seconds: -1 on a client not yet
//   synchronised. o2_bridge_id() is the id the host gave a client, or std::nullopt while
//   not connected (ROSCO_ERR_UNSUPPORTED on a host). o2_query(service) and o2_query_list()
//   ask the host; the answers arrive as o2 events (Status { .. }, List(..)).
//
// ----------------------------------------------------------------------------------------
// Errors: exceptions
//
// Every failing call throws rosco::Error, which carries the rosco_status (status(), with
// its name from rosco_status_str() in name()) and the thread's rosco_last_error() text
// (detail()), copied at the moment of failure. Exceptions are the natural C++17 choice
// (no std::expected before C++23), constructors (Context, Builder) can only report
// failure this way, and the error paths of a messaging program are rare: a bad URL, a
// closed channel, a wrong argument type. Two cheap non-throwing forms exist where a
// status is the better fit: Channel::try_send() returns the rosco_status (for audio or
// real-time threads that must not unwind), and Message::try_get<T>() returns a
// std::optional (for probing argument types). Destructors never throw.
//
// ----------------------------------------------------------------------------------------
// Handlers, ownership and threads
//
// * A handler is any callable taking `const rosco::Message&` and returning bool (true:
//   handled; for a literal address later methods are skipped, as liblo does) or void
//   (always handled). Move-only callables are accepted. The wrapper owns it: it is moved
//   into a heap holder handed to rosco_method_add() as `user`, with a `user_free` that
//   deletes the holder. rosco calls that exactly once, when the method is removed (after
//   any delivery in progress finishes), when the context is freed, or at once if the
//   registration fails. So the callable is destroyed exactly once and never while it runs.
// * Method is RAII: destroying (or move-assigning over) a Method removes its method. Keep
//   the Method alive as long as the handler should run, or call detach() to leave the
//   method registered until the context goes. Context::on() is [[nodiscard]] for this
//   reason. A Method may outlive its Context: its destructor then does nothing (and
//   remove() throws ROSCO_ERR_HANDLE); the handler went with the context.
// * Removal waits for the handler: once ~Method, Method::remove() or an assignment over a
//   Method returns, its handler is not running on another thread (the I/O thread or a
//   worker in threaded mode, a thread inside poll() in the other modes), and from the moment removal
//   begins no new call enters it (a message already on its way to it is passed on, as if
//   the method were gone). So the usual pattern is safe: an object owning a Method whose
//   handler captures `this` may be destroyed on any thread while messages arrive. A handler
//   may remove its own Method or destroy the object owning it (removal does not wait for
//   calls the current thread is inside); a Method removed or assigned over from inside
//   its handler still waits for that call when it is destroyed later on another thread.
//   A Method, like any object, is not to be changed on two threads at once: with workers
//   (Options::workers) a handler runs on several threads at once, so one that removes its
//   own Method lets one call do it (an std::atomic_flag): two removing it at once would
//   each wait for the other. The price is the usual one of waiting: do not
//   destroy or remove a Method while holding a lock (or anything else) its handler may be
//   waiting for, or both threads wait forever. That includes doing it from an event or
//   log handler on the I/O thread (io-thread mode) while the method's handler, inside
//   poll(), waits for that thread (Context::on_event(), on_log(), Channel::flush()), and
//   a handler removing another Method whose handler, on another thread, may at the same
//   time be removing this handler's Method (each waits for the other; so too a method
//   handler and an exception handler replacing each other). A Method made from a raw
//   rosco_method (the two-handle constructor) or given up with
//   detach() has no such guarantee, as in C.
// * Every callback rosco calls is a noexcept trampoline that catches every exception. A
//   handler that throws counts as having handled its message; the exception is reported to
//   the context's exception handler (Context::on_exception) with a description of where it
//   happened, or, if none is set, written as one line to std::cerr. Nothing unwinds into
//   rosco. (The log callback is rosco's own channel and is not used for this.) Thread
//   handlers (Options::on_thread) run before the context exists: what they throw goes to
//   std::cerr.
// * Where handlers run: in poll and io-thread mode inside Context::poll() on the calling
//   thread; in threaded mode on the context's I/O thread, or on its workers, several at
//   once (Options::workers) (guard shared state then). Event
//   handlers run on the thread doing the I/O (inside poll() in poll mode, so the "bound"
//   event of a listener comes at the next poll()); log handlers may run on any of the
//   context's threads.
// * A Message is a borrowed view valid only during its handler: copy what you keep
//   (std::string(msg.get<std::string_view>(0)), msg.get<std::string>(0)).
// * Destroying a Context unregisters its event, log and bundle handlers and frees it. As
//   in C, a call still running on another thread (a poll(), which in threaded mode sleeps
//   for its whole timeout, or a send()) keeps the context alive until it returns, and
//   method handlers may run until then; the handlers themselves stay valid (rosco owns
//   them), so do not destroy what they use while another thread is inside such a call.
// * Context, Channel and Method calls are thread-safe as the C functions are (sending
//   from many threads while another polls is fine). One Builder object must not be
//   modified by two threads at once; sending a finished Builder from several threads is
//   fine. Channel::send(address, args...) builds into a per-thread builder, so after the
//   first call on a thread it allocates nothing in C++ (strings given as
//   std::string_view up to 255 bytes are copied on the stack to add their NUL). That
//   builder is freed with the thread's thread_local objects; a send after that (from a
//   static object's destructor at exit, or a thread_local's destroyed later) builds in a
//   temporary builder instead.
// * Implementation note: event, log and bundle callbacks take no `user_free` in the C API,
//   so their storage (a heap "hub" shared by all the context's callbacks) is kept alive by
//   an internal keeper method (literal address "/rosco.cpp/keeper", type spec "[[[[]]]]",
//   which no ordinary message matches) whose `user_free` runs only when rosco really drops
//   the context: after its I/O thread has stopped and after a poll() still running on
//   another thread has returned. ~Context also unregisters those callbacks first.
// ----------------------------------------------------------------------------------------

#ifndef ROSCO_HPP
#define ROSCO_HPP

// One clear message instead of hundreds of errors (pkg-config cannot raise the standard).
#if (defined(_MSVC_LANG) && _MSVC_LANG < 201703L) || (!defined(_MSVC_LANG) && __cplusplus < 201703L)
#error "rosco.hpp needs C++17 or later (CMake's rosco::cpp target asks for it)"
#else  // the whole header: compilers go on after #error

#include <rosco.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace rosco {

/// A rosco_status: ROSCO_OK (0) or a negative ROSCO_ERR_* code.
using Status = rosco_status;

/// The library's version, `(major << 16) | (minor << 8) | patch`.
inline std::uint32_t version() noexcept { return rosco_version(); }

/// The version of the header this wrapper was compiled against.
inline constexpr std::uint32_t header_version = ROSCO_VERSION;

// ----------------------------------------------------------------------------------------
// Errors

/// A failed rosco call: its status code, the code's name and the library's detail text.
class Error : public std::runtime_error {
public:
    /// `where` names the failing call; `detail` is the library's (or wrapper's) text.
    Error(Status status, const std::string& where, const std::string& detail)
        : std::runtime_error(where + ": " + rosco_status_str(status) +
                             (detail.empty() ? std::string() : ": " + detail)),
          status_(status),
          detail_(detail) {}

    /// The ROSCO_ERR_* code.
    Status status() const noexcept { return status_; }
    /// The code's name, e.g. "ROSCO_ERR_HANDLE" (static storage).
    const char* name() const noexcept { return rosco_status_str(status_); }
    /// The detail text (rosco_last_error() at the time of failure).
    const std::string& detail() const noexcept { return detail_; }

private:
    Status status_;
    std::string detail_;
};

namespace detail {

template <class>
inline constexpr bool dependent_false = false;

template <class>
struct is_std_function : std::false_type {};
template <class S>
struct is_std_function<std::function<S>> : std::true_type {};

/// Throws an Error for a failed C call, with the thread's rosco_last_error() text.
[[noreturn]] inline void throw_status(Status status, const char* where) {
    const char* text = rosco_last_error();
    throw Error(status, where, text ? text : "");
}

/// Throws unless `status` is ROSCO_OK.
inline void check(Status status, const char* where) {
    if (status != ROSCO_OK) throw_status(status, where);
}

/// What a step that does not throw reports: the status, the call that failed and, for the
/// failures the wrapper finds itself (rosco_last_error() knows nothing of them), why.
struct Outcome {
    Status status = ROSCO_OK;
    const char* where = nullptr;
    const char* why = nullptr;
};

inline constexpr const char* nul_byte = "string holds a NUL byte";

/// Throws unless the step succeeded.
inline void check(const Outcome& o) {
    if (o.status == ROSCO_OK) return;
    if (o.why) throw Error(o.status, o.where, o.why);
    throw_status(o.status, o.where);
}

}  // namespace detail

/// A timeout that never ends: Context::poll() waits until something is dispatched (in
/// threaded mode, where it only waits, until the context is destroyed), and
/// the other waits (take, flush) and durations given in options are as long as the C API
/// allows (about 49 days). The longest duration, not -1 ms: a deadline passed by a
/// millisecond, rounded, must not read as forever.
inline constexpr std::chrono::milliseconds forever = std::chrono::milliseconds::max();

namespace detail {

/// A duration in whole milliseconds for the C API: `forever` and too long give the most,
/// other negatives (a deadline already passed) 0.
inline std::uint32_t clamp_ms(std::chrono::milliseconds t) noexcept {
    const auto n = t.count();
    if (t == forever) return std::numeric_limits<std::uint32_t>::max();
    if (n < 0) return 0;
    if (n > std::numeric_limits<std::uint32_t>::max()) return std::numeric_limits<std::uint32_t>::max();
    return static_cast<std::uint32_t>(n);
}

/// A NUL-terminated copy of a string view when it needs one: a `const char*` is used as
/// is; a view is copied, onto the stack when short. `has_nul()` tells whether the text
/// holds a NUL byte (which C would silently cut at).
class ZStr {
public:
    explicit ZStr(const char* s) noexcept : p_(s) {}
    explicit ZStr(const std::string& s) noexcept
        : p_(s.c_str()), nul_(s.find('\0') != std::string::npos) {}
    explicit ZStr(std::string_view s) {
        nul_ = s.find('\0') != std::string_view::npos;
        if (s.size() < sizeof small_) {
            if (!s.empty()) std::memcpy(small_, s.data(), s.size());
            small_[s.size()] = '\0';
            p_ = small_;
        } else {
            big_.assign(s.data(), s.size());
            p_ = big_.c_str();
        }
    }
    ZStr(const ZStr&) = delete;
    ZStr& operator=(const ZStr&) = delete;

    const char* c_str() const noexcept { return p_; }
    bool has_nul() const noexcept { return nul_; }

    /// Throws ROSCO_ERR_ARG for a string holding a NUL byte.
    const char* checked(const char* where) const {
        if (nul_) throw Error(ROSCO_ERR_ARG, where, nul_byte);
        return p_;
    }

private:
    const char* p_ = nullptr;
    bool nul_ = false;
    char small_[256];
    std::string big_;
};

}  // namespace detail

/// Matches an OSC address pattern against an address, as dispatch does (OSC 1.0 and 1.1's
/// "//"). Throws ROSCO_ERR_ARG for a malformed pattern.
inline bool pattern_match(std::string_view pattern, std::string_view address) {
    detail::ZStr p(pattern), a(address);
    std::int32_t matched = 0;
    detail::check(rosco_pattern_match(p.checked("rosco_pattern_match"),
                                      a.checked("rosco_pattern_match"), &matched),
                  "rosco_pattern_match");
    return matched != 0;
}

// ----------------------------------------------------------------------------------------
// Values

/// An OSC timetag (NTP 32.32 fixed point). 0 and 1 (`immediately()`) mean "now".
struct TimeTag {
    std::uint64_t bits = 0;

    constexpr TimeTag() noexcept = default;
    constexpr explicit TimeTag(std::uint64_t raw) noexcept : bits(raw) {}

    /// The current time.
    static TimeTag now() noexcept { return TimeTag(rosco_timetag_now()); }
    /// The special timetag meaning "immediately" (1).
    static constexpr TimeTag immediately() noexcept { return TimeTag(ROSCO_TIMETAG_IMMEDIATE); }
    /// `d` from now.
    template <class Rep, class Period>
    static TimeTag from_now(std::chrono::duration<Rep, Period> d) noexcept {
        return now() + d;
    }
    /// A moment given in seconds since the Unix epoch.
    static TimeTag from_unix(double seconds) noexcept {
        return TimeTag(rosco_timetag_from_unix(seconds));
    }
    /// A system-clock time point.
    static TimeTag from(std::chrono::system_clock::time_point t) noexcept {
        using seconds = std::chrono::duration<double>;
        return from_unix(std::chrono::duration_cast<seconds>(t.time_since_epoch()).count());
    }
    /// Seconds since the Unix epoch (correct past 2036).
    double to_unix() const noexcept { return rosco_timetag_to_unix(bits); }

    /// This timetag plus a non-negative duration (a negative one leaves it unchanged).
    template <class Rep, class Period>
    TimeTag operator+(std::chrono::duration<Rep, Period> d) const noexcept {
        return TimeTag(rosco_timetag_add(bits, std::chrono::duration<double>(d).count()));
    }

    friend constexpr bool operator==(TimeTag a, TimeTag b) noexcept { return a.bits == b.bits; }
    friend constexpr bool operator!=(TimeTag a, TimeTag b) noexcept { return a.bits != b.bits; }
};

/// Bytes of an OSC blob (`b`): a non-owning pointer and size. A received blob points into
/// the packet (valid during the handler only).
struct Blob {
    const std::uint8_t* data = nullptr;
    std::size_t size = 0;

    constexpr Blob() noexcept = default;
    Blob(const void* bytes, std::size_t n) noexcept
        : data(static_cast<const std::uint8_t*>(bytes)), size(n) {}
    /// Any contiguous container of bytes (std::vector<uint8_t>, std::array, std::string).
    template <class C,
              class = std::enable_if_t<
                  sizeof(*std::declval<const C&>().data()) == 1 &&
                  std::is_convertible_v<decltype(std::declval<const C&>().size()), std::size_t>>>
    Blob(const C& bytes) noexcept  // NOLINT: implicit on purpose
        : data(reinterpret_cast<const std::uint8_t*>(bytes.data())), size(bytes.size()) {}
    /// A byte array (all of it).
    template <std::size_t N>
    Blob(const std::uint8_t (&bytes)[N]) noexcept : data(bytes), size(N) {}  // NOLINT

    const std::uint8_t* begin() const noexcept { return data; }
    const std::uint8_t* end() const noexcept { return data + size; }
    bool empty() const noexcept { return size == 0; }
};

/// An OSC symbol (`S`): a string of another type tag.
struct Symbol {
    std::string_view value;
};

/// An OSC character (`c`).
struct Char {
    char value = 0;
};

/// An OSC MIDI message (`m`): port, status, two data bytes.
struct Midi {
    std::uint8_t port = 0, status = 0, data1 = 0, data2 = 0;

    /// As the C API packs it: 0xPPSSDDDD.
    constexpr std::uint32_t packed() const noexcept {
        return std::uint32_t(port) << 24 | std::uint32_t(status) << 16 |
               std::uint32_t(data1) << 8 | std::uint32_t(data2);
    }
    static constexpr Midi unpack(std::uint32_t v) noexcept {
        return Midi{std::uint8_t(v >> 24), std::uint8_t(v >> 16), std::uint8_t(v >> 8),
                    std::uint8_t(v)};
    }
    friend constexpr bool operator==(Midi a, Midi b) noexcept { return a.packed() == b.packed(); }
    friend constexpr bool operator!=(Midi a, Midi b) noexcept { return !(a == b); }
};

/// An OSC colour (`r`).
struct Rgba {
    std::uint8_t r = 0, g = 0, b = 0, a = 0;

    /// As the C API packs it: 0xRRGGBBAA.
    constexpr std::uint32_t packed() const noexcept {
        return std::uint32_t(r) << 24 | std::uint32_t(g) << 16 | std::uint32_t(b) << 8 |
               std::uint32_t(a);
    }
    static constexpr Rgba unpack(std::uint32_t v) noexcept {
        return Rgba{std::uint8_t(v >> 24), std::uint8_t(v >> 16), std::uint8_t(v >> 8),
                    std::uint8_t(v)};
    }
    friend constexpr bool operator==(Rgba x, Rgba y) noexcept { return x.packed() == y.packed(); }
    friend constexpr bool operator!=(Rgba x, Rgba y) noexcept { return !(x == y); }
};

/// The OSC impulse (`I`, "bang").
struct Impulse {};
/// Opens an OSC array (`[`) among send arguments.
struct ArrayBegin {};
/// Closes an OSC array (`]`).
struct ArrayEnd {};

/// A channel's counters (packets and bytes in and out, malformed, dropped, late).
using Stats = rosco_channel_stats;

/// Threading modes (see rosco.h).
enum class Mode : std::int32_t {
    poll = ROSCO_MODE_POLL,            ///< everything inside Context::poll()
    io_thread = ROSCO_MODE_IO_THREAD,  ///< I/O on a thread, handlers inside poll()
    threaded = ROSCO_MODE_THREADED,    ///< handlers on the I/O thread (or Options::workers)
};

/// Log levels; a log handler receives its level and the more severe ones.
enum class LogLevel : std::int32_t { error = 1, warning = 2, info = 3, debug = 4 };

/// What an Event reports.
enum class EventKind : std::int32_t {
    bound = ROSCO_EVENT_BOUND,
    connected = ROSCO_EVENT_CONNECTED,
    disconnected = ROSCO_EVENT_DISCONNECTED,
    reconnecting = ROSCO_EVENT_RECONNECTING,
    gave_up = ROSCO_EVENT_GAVE_UP,
    malformed = ROSCO_EVENT_MALFORMED,
    dropped = ROSCO_EVENT_DROPPED,
    late = ROSCO_EVENT_LATE,
    o2 = ROSCO_EVENT_O2,  ///< O2lite news; `reason` describes it (Event::o2_name())
};

/// Context options: the C defaults (poll mode, coercion on, bundles queued, ...) with
/// chainable setters. `raw()` gives the C struct for fields without a setter.
class Options {
public:
    Options() noexcept { rosco_ctx_options_init(&o_); }

    Options& mode(Mode m) noexcept { o_.mode = static_cast<std::int32_t>(m); return *this; }
    /// Coerce arguments to a method's type spec (`i h f d`, `s S`), as liblo does.
    Options& coerce(bool on) noexcept { o_.coerce = on; return *this; }
    /// Hold bundles with a future timetag until due (false: deliver at once).
    Options& queue_bundles(bool on) noexcept { o_.queue_bundles = on; return *this; }
    Options& max_frame(std::uint32_t bytes) noexcept { o_.max_frame = bytes; return *this; }
    Options& max_stream_peers(std::uint32_t n) noexcept { o_.max_stream_peers = n; return *this; }
    Options& queue_capacity(std::uint32_t n) noexcept { o_.queue_capacity = n; return *this; }
    Options& stall_timeout(std::chrono::milliseconds t) noexcept {
        o_.stall_timeout_ms = detail::clamp_ms(t);
        return *this;
    }
    Options& reconnect(bool on) noexcept { o_.reconnect = on; return *this; }
    Options& reconnect_backoff(std::chrono::milliseconds first,
                               std::chrono::milliseconds longest) noexcept {
        o_.reconnect_initial_ms = detail::clamp_ms(first);
        o_.reconnect_max_ms = detail::clamp_ms(longest);
        return *this;
    }
    /// Reconnect attempts before giving up; 0 retries forever. A connection that ends
    /// within a second of being made counts as a failed attempt.
    Options& reconnect_retries(std::uint32_t n) noexcept { o_.reconnect_retries = n; return *this; }
    /// Most bytes of bundles held for a future time; one over it is dropped and reported.
    Options& max_held_bytes(std::uint32_t n) noexcept { o_.max_held_bytes = n; return *this; }
    /// Writes every packet sent and received to the log at debug level, as text and/or as
    /// a hex dump (see on_log()).
    Options& trace(bool text, bool hex) noexcept {
        o_.trace = (text ? ROSCO_TRACE_TEXT : 0) | (hex ? ROSCO_TRACE_HEX : 0);
        return *this;
    }
    /// The type tags accepted in received messages and allowed in sent ones ("ifsb").
    Options& types(std::string tags) {
        detail::ZStr(tags).checked("rosco::Options::types");
        types_ = std::move(tags);
        has_types_ = true;
        return *this;
    }
    /// Refuse addresses that break the OSC address syntax, received and sent.
    Options& check_address(bool on) noexcept { o_.check_address = on; return *this; }
    /// Refuse received messages without a type-tag string.
    Options& require_typetags(bool on) noexcept { o_.require_typetags = on; return *this; }
    /// Addresses, strings, symbols and chars must be ASCII, received and sent.
    Options& ascii_only(bool on) noexcept { o_.ascii_only = on; return *this; }
    /// Longest address pattern accepted in bytes (0: no limit).
    Options& max_pattern_len(std::uint32_t bytes) noexcept { o_.max_pattern_len = bytes; return *this; }
    /// Threaded mode: worker threads running the callbacks (0: the I/O thread runs them).
    /// Callbacks then run concurrently, for different packets in any order.
    Options& workers(std::uint32_t n) noexcept { o_.workers = n; return *this; }
    /// Called with the thread's name first thing on each thread the context starts (its
    /// I/O thread "rosco-io", its workers "rosco-worker-N"), and `stop` last thing before
    /// the thread ends (liblo's lo_server_thread_set_callbacks): to raise a thread's
    /// priority, name it for a profiler, attach it to a runtime. Poll mode starts none.
    /// What they throw is written to std::cerr.
    Options& on_thread(std::function<void(std::string_view)> start, std::function<void(std::string_view)> stop) {
        threads_ = std::make_shared<const ThreadHandlers>(std::move(start), std::move(stop));
        return *this;
    }
    /// Address compression, both ways: `address` is sent as `/` and `code`.
    Options& address_code(std::int32_t code, std::string address) {
        detail::ZStr(address).checked("rosco::Options::address_code");
        codes_.push_back(code);
        addresses_.push_back(std::move(address));
        return *this;
    }

    /// The C struct; types(), address_code() and on_thread() are added to it by create().
    /// A thread_user set here directly with a thread_user_free is taken over by the first
    /// context created: a second create() from these Options (or a copy of them made
    /// before) would free it twice, and is refused, as is combining it with on_thread().
    rosco_ctx_options& raw() noexcept { return o_; }
    const rosco_ctx_options& raw() const noexcept { return o_; }

    /// rosco_ctx_new with these options (which it copies).
    [[nodiscard]] rosco_status create(rosco_ctx* out) const {
        if (o_.thread_user_free && threads_)
            throw Error(ROSCO_ERR_ARG, "rosco::Options::create",
                        "on_thread() and a raw thread_user_free: only one can own the thread user data");
        // (Moved from, these Options no longer own it either.)
        if (o_.thread_user_free && (!raw_user_taken_ || raw_user_taken_->exchange(true)))
            throw Error(ROSCO_ERR_ARG, "rosco::Options::create",
                        "the raw thread_user was taken over by a context created earlier");
        rosco_ctx_options o = o_;
        std::vector<const char*> addresses;
        for (const auto& a : addresses_) addresses.push_back(a.c_str());
        if (has_types_) o.types = types_.c_str();
        if (!codes_.empty()) {
            o.address_codes = codes_.data();
            o.addresses = addresses.data();
            o.address_count = static_cast<std::uint32_t>(codes_.size());
        }
        if (threads_) {
            o.thread_start = threads_->first ? &thread_trampoline<true> : nullptr;
            o.thread_stop = threads_->second ? &thread_trampoline<false> : nullptr;
            // rosco owns it from here (and frees it if rosco_ctx_new fails).
            o.thread_user = new std::shared_ptr<const ThreadHandlers>(threads_);
            o.thread_user_free = &free_threads;
        }
        return rosco_ctx_new(&o, out);
    }

private:
    using ThreadHandlers =
        std::pair<std::function<void(std::string_view)>, std::function<void(std::string_view)>>;

    template <bool start>
    static void thread_trampoline(void* user, const char* name) noexcept {
        try {
            const ThreadHandlers& h = **static_cast<std::shared_ptr<const ThreadHandlers>*>(user);
            (start ? h.first : h.second)(name ? std::string_view(name) : std::string_view());
        } catch (const std::exception& e) {
            std::cerr << "rosco: thread " << (start ? "start" : "stop") << " handler threw: " << e.what()
                      << std::endl;
        } catch (...) {
            std::cerr << "rosco: thread " << (start ? "start" : "stop") << " handler threw" << std::endl;
        }
    }
    static void free_threads(void* user) noexcept {
        delete static_cast<std::shared_ptr<const ThreadHandlers>*>(user);
    }

    std::shared_ptr<const ThreadHandlers> threads_;
    // Shared by copies: whichever creates a context first takes over a raw thread_user.
    std::shared_ptr<std::atomic<bool>> raw_user_taken_ = std::make_shared<std::atomic<bool>>(false);
    rosco_ctx_options o_{};
    std::string types_;
    bool has_types_ = false;
    std::vector<std::int32_t> codes_;
    std::vector<std::string> addresses_;
};

class Builder;
class Channel;
class Message;

/// How an O2 message travelled: its O2 timestamp (global seconds, 0 for "now") and whether
/// it came by TCP (`reliable`) or UDP.
struct O2Stamp {
    double timestamp;
    bool reliable;
};

namespace detail {

/// Adds one C++ value to the open message of `b` (see the type table at the top). Throws
/// only when memory runs out (copying a long string view).
template <class T>
Outcome add_arg(rosco_builder* b, const T& v) {
    using D = std::decay_t<T>;
    const char* const where = "rosco::Builder::add";
    const auto result = [where](Status s) { return Outcome{s, where, nullptr}; };
    const auto text = [&](const ZStr& z, Status (*add)(rosco_builder*, const char*)) {
        return z.has_nul() ? Outcome{ROSCO_ERR_ARG, where, nul_byte} : result(add(b, z.c_str()));
    };
    if constexpr (std::is_same_v<D, bool>) {
        return result(rosco_builder_add_bool(b, v ? 1 : 0));
    } else if constexpr (std::is_same_v<D, std::nullptr_t>) {
        return result(rosco_builder_add_nil(b));
    } else if constexpr (std::is_same_v<D, Impulse>) {
        return result(rosco_builder_add_impulse(b));
    } else if constexpr (std::is_same_v<D, ArrayBegin>) {
        return result(rosco_builder_array_begin(b));
    } else if constexpr (std::is_same_v<D, ArrayEnd>) {
        return result(rosco_builder_array_end(b));
    } else if constexpr (std::is_same_v<D, char> || std::is_same_v<D, wchar_t> ||
                         std::is_same_v<D, char16_t> || std::is_same_v<D, char32_t>) {
        static_assert(dependent_false<T>,
                      "rosco: a plain char is ambiguous: send rosco::Char{c}, a string, or an int");
    } else if constexpr (std::is_integral_v<D>) {
        if constexpr ((std::is_signed_v<D> && sizeof(D) <= 4) ||
                      (std::is_unsigned_v<D> && sizeof(D) < 4)) {
            return result(rosco_builder_add_i32(b, static_cast<std::int32_t>(v)));
        } else if constexpr (std::is_signed_v<D> && sizeof(D) == 8) {
            return result(rosco_builder_add_i64(b, static_cast<std::int64_t>(v)));
        } else {
            static_assert(dependent_false<T>,
                          "rosco: unsigned 32/64-bit integers have no OSC type: cast to "
                          "int32_t (i) or int64_t (h)");
        }
    } else if constexpr (std::is_same_v<D, float>) {
        return result(rosco_builder_add_f32(b, v));
    } else if constexpr (std::is_same_v<D, double>) {
        return result(rosco_builder_add_f64(b, v));
    } else if constexpr (std::is_same_v<D, const char*> || std::is_same_v<D, char*>) {
        return result(rosco_builder_add_str(b, v));
    } else if constexpr (std::is_same_v<D, std::string>) {
        return text(ZStr(v), rosco_builder_add_str);
    } else if constexpr (std::is_same_v<D, std::string_view>) {
        return text(ZStr(v), rosco_builder_add_str);
    } else if constexpr (std::is_same_v<D, Symbol>) {
        return text(ZStr(v.value), rosco_builder_add_symbol);
    } else if constexpr (std::is_same_v<D, Blob>) {
        return result(rosco_builder_add_blob(b, v.data, v.size));
    } else if constexpr (std::is_same_v<D, Char>) {
        return result(rosco_builder_add_char(b, static_cast<std::uint8_t>(v.value)));
    } else if constexpr (std::is_same_v<D, Midi>) {
        return result(rosco_builder_add_midi(b, v.packed()));
    } else if constexpr (std::is_same_v<D, Rgba>) {
        return result(rosco_builder_add_rgba(b, v.packed()));
    } else if constexpr (std::is_same_v<D, TimeTag>) {
        return result(rosco_builder_add_timetag(b, v.bits));
    } else if constexpr (std::is_same_v<D, long double>) {
        static_assert(dependent_false<T>, "rosco: long double has no OSC type: cast to double");
    } else {
        static_assert(dependent_false<T>,
                      "rosco: no OSC type for this C++ type (see the table in rosco.hpp)");
    }
}

/// Adds `args` to the open message of `b`, stopping at the first failure.
template <class... Args>
Outcome add_args([[maybe_unused]] rosco_builder* b, const Args&... args) {
    Outcome o;
    (void)(((o = add_arg(b, args)).status == ROSCO_OK) && ...);
    return o;
}

/// Starts a message at `address` in `b` and adds `args`. Throws only when memory runs out.
template <class... Args>
Outcome build(rosco_builder* b, std::string_view address, const Args&... args) {
    const char* const where = "rosco_builder_message";
    const ZStr a(address);
    if (a.has_nul()) return Outcome{ROSCO_ERR_ARG, where, nul_byte};
    const Status s = rosco_builder_message(b, a.c_str());
    if (s != ROSCO_OK) return Outcome{s, where, nullptr};
    return add_args(b, args...);
}

/// This thread's reusable builder for send(address, args...) and reply(address, args...).
/// Trivially destructible, so it stays usable while the thread's (or, on the main thread,
/// the program's) other objects are destroyed: a ThreadBuilderReaper frees the builder when
/// the thread's thread_local objects go and marks it `dead`; a send after that (from a
/// later thread_local or a static object's destructor) builds in a temporary builder.
struct ThreadBuilder {
    rosco_builder* b;
    bool busy;
    bool dead;
};

inline ThreadBuilder& thread_builder() noexcept {
    static thread_local ThreadBuilder t{nullptr, false, false};
    return t;
}

/// Frees this thread's builder with the thread's thread_local objects (a thread_local
/// itself, constructed just before the builder is first created).
struct ThreadBuilderReaper {
    ThreadBuilderReaper() noexcept = default;
    ThreadBuilderReaper(const ThreadBuilderReaper&) = delete;
    ThreadBuilderReaper& operator=(const ThreadBuilderReaper&) = delete;
    ~ThreadBuilderReaper() {
        ThreadBuilder& t = thread_builder();
        t.dead = true;
        if (!t.busy) rosco_builder_free(std::exchange(t.b, nullptr));  // else ~ScratchBuilder frees it
    }
};

/// Lends this thread's builder, or a fresh one if it is already lent (a log handler
/// sending from inside a send, say) or the thread's builder is gone (thread exit).
class ScratchBuilder {
public:
    ScratchBuilder() {
        ThreadBuilder& t = thread_builder();
        if (!t.busy && !t.dead) {
            if (!t.b) {
                static thread_local ThreadBuilderReaper reaper;  // registered before b exists
                (void)reaper;
                t.b = rosco_builder_new();
                if (!t.b) throw std::bad_alloc();
            }
            t.busy = true;
            owner_ = &t;
            b_ = t.b;
        } else {
            b_ = rosco_builder_new();
            if (!b_) throw std::bad_alloc();
        }
    }
    ~ScratchBuilder() {
        if (owner_) {
            owner_->busy = false;
            if (owner_->dead) rosco_builder_free(std::exchange(owner_->b, nullptr));
        } else {
            rosco_builder_free(b_);
        }
    }
    ScratchBuilder(const ScratchBuilder&) = delete;
    ScratchBuilder& operator=(const ScratchBuilder&) = delete;
    rosco_builder* get() const noexcept { return b_; }

private:
    ThreadBuilder* owner_ = nullptr;
    rosco_builder* b_ = nullptr;
};

/// Reads argument `i` as T into `out` (no exceptions). `why` is set for failures the
/// wrapper itself detects (rosco_last_error() holds the detail otherwise).
template <class T>
Status read_arg(const rosco_msg* m, std::size_t index, T& out, const char*& why) noexcept {
    using D = std::remove_cv_t<T>;
    why = nullptr;
    if (index > std::numeric_limits<std::uint32_t>::max()) {
        why = "argument index too large";
        return ROSCO_ERR_RANGE;
    }
    const auto i = static_cast<std::uint32_t>(index);
    if constexpr (std::is_same_v<D, std::int32_t>) {
        return rosco_msg_get_i32(m, i, &out);
    } else if constexpr (std::is_same_v<D, std::int64_t>) {
        return rosco_msg_get_i64(m, i, &out);
    } else if constexpr (std::is_same_v<D, float>) {
        return rosco_msg_get_f32(m, i, &out);
    } else if constexpr (std::is_same_v<D, double>) {
        return rosco_msg_get_f64(m, i, &out);
    } else if constexpr (std::is_same_v<D, bool>) {
        std::int32_t v = 0;
        Status s = rosco_msg_get_bool(m, i, &v);
        out = v != 0;
        return s;
    } else if constexpr (std::is_same_v<D, const char*>) {
        return rosco_msg_get_str(m, i, &out);
    } else if constexpr (std::is_same_v<D, std::string_view> || std::is_same_v<D, std::string>) {
        const char* p = nullptr;
        Status s = rosco_msg_get_str(m, i, &p);
        if (s == ROSCO_OK) {
            try {
                out = D(p);
            } catch (...) {
                why = "out of memory copying a string";
                return ROSCO_ERR_INTERNAL;
            }
        }
        return s;
    } else if constexpr (std::is_same_v<D, Symbol>) {
        const char* tags = rosco_msg_typetags(m);
        std::size_t n = tags ? std::strlen(tags) : 0;
        if (i >= n) {
            why = "argument index past the end";
            return ROSCO_ERR_RANGE;
        }
        if (tags[i] != 'S') {
            why = "argument is not 'S'";
            return ROSCO_ERR_TYPE;
        }
        const char* p = nullptr;
        Status s = rosco_msg_get_str(m, i, &p);
        if (s == ROSCO_OK) out = Symbol{p};
        return s;
    } else if constexpr (std::is_same_v<D, Blob>) {
        const std::uint8_t* p = nullptr;
        std::size_t n = 0;
        Status s = rosco_msg_get_blob(m, i, &p, &n);
        if (s == ROSCO_OK) out = Blob(p, n);
        return s;
    } else if constexpr (std::is_same_v<D, Char>) {
        std::uint8_t c = 0;
        Status s = rosco_msg_get_char(m, i, &c);
        out = Char{static_cast<char>(c)};
        return s;
    } else if constexpr (std::is_same_v<D, Midi>) {
        std::uint32_t v = 0;
        Status s = rosco_msg_get_midi(m, i, &v);
        out = Midi::unpack(v);
        return s;
    } else if constexpr (std::is_same_v<D, Rgba>) {
        std::uint32_t v = 0;
        Status s = rosco_msg_get_rgba(m, i, &v);
        out = Rgba::unpack(v);
        return s;
    } else if constexpr (std::is_same_v<D, TimeTag>) {
        return rosco_msg_get_timetag(m, i, &out.bits);
    } else {
        static_assert(dependent_false<T>,
                      "rosco: Message::get<T> supports int32_t, int64_t, float, double, bool, "
                      "const char*, std::string_view, std::string, Symbol, Blob, Char, Midi, "
                      "Rgba, TimeTag");
        return ROSCO_ERR_ARG;
    }
}

}  // namespace detail

// ----------------------------------------------------------------------------------------
// Builder

/// Owns a rosco_builder: a message or a (nested) bundle under construction, reusable.
/// Move-only; a moved-from Builder throws ROSCO_ERR_NULL when used.
class Builder {
public:
    Builder() : b_(rosco_builder_new()) {
        if (!b_) throw std::bad_alloc();
    }
    ~Builder() { rosco_builder_free(b_); }
    Builder(Builder&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    Builder& operator=(Builder&& o) noexcept {
        if (this != &o) {
            rosco_builder_free(b_);
            b_ = std::exchange(o.b_, nullptr);
        }
        return *this;
    }
    Builder(const Builder&) = delete;
    Builder& operator=(const Builder&) = delete;

    /// Starts a message. Outside a bundle it replaces what the builder held; inside one it
    /// follows the previous message.
    Builder& message(std::string_view address) {
        detail::ZStr a(address);
        detail::check(rosco_builder_message(b_, a.checked("rosco_builder_message")),
                      "rosco_builder_message");
        return *this;
    }
    /// Adds arguments to the open message (see the type table at the top).
    template <class... Args>
    Builder& add(const Args&... args) {
        detail::check(detail::add_args(b_, args...));
        return *this;
    }
    Builder& array_begin() { return add(ArrayBegin{}); }
    Builder& array_end() { return add(ArrayEnd{}); }
    /// Copies every argument of a received message onto the open message.
    Builder& append_args(const Message& m);

    /// Opens a bundle (nested inside an open one, up to 32 deep).
    Builder& bundle_begin(TimeTag t = TimeTag::immediately()) {
        detail::check(rosco_builder_bundle_begin(b_, t.bits), "rosco_builder_bundle_begin");
        return *this;
    }
    /// Closes the innermost open bundle.
    Builder& bundle_end() {
        detail::check(rosco_builder_bundle_end(b_), "rosco_builder_bundle_end");
        return *this;
    }
    /// bundle_begin(t), fill(*this), bundle_end(). If `fill` throws, or the bundle cannot
    /// be closed (`fill` left an array open), the builder is reset and the exception
    /// passes on.
    template <class F>
    Builder& bundle(TimeTag t, F&& fill) {
        bundle_begin(t);
        try {
            std::forward<F>(fill)(*this);
            return bundle_end();
        } catch (...) {
            rosco_builder_reset(b_);
            throw;
        }
    }

    /// Empties the builder, keeping its memory.
    Builder& reset() {
        detail::check(rosco_builder_reset(b_), "rosco_builder_reset");
        return *this;
    }
    /// The finished packet (closes an open message; fails while a bundle is open). Valid
    /// until the builder changes.
    Blob bytes() {
        const std::uint8_t* p = nullptr;
        std::size_t n = 0;
        detail::check(rosco_builder_bytes(b_, &p, &n), "rosco_builder_bytes");
        return Blob(p, n);
    }

    rosco_builder* raw() noexcept { return b_; }
    const rosco_builder* raw() const noexcept { return b_; }

private:
    rosco_builder* b_;
};

// ----------------------------------------------------------------------------------------
// Channel

/// A channel of a context: a light, copyable value (two handles). It stays valid until
/// it is closed or its context is destroyed; after that every call throws
/// ROSCO_ERR_HANDLE. All calls are thread-safe.
class Channel {
public:
    Channel() noexcept = default;
    Channel(rosco_ctx ctx, rosco_channel ch) noexcept : ctx_(ctx), ch_(ch) {}

    /// Sends one message (see the type table at the top for how arguments map). Built in
    /// this thread's reusable builder: after the first call on a thread the C++ side
    /// allocates nothing.
    template <class... Args>
    void send(std::string_view address, const Args&... args) const {
        detail::ScratchBuilder b;
        detail::check(detail::build(b.get(), address, args...));
        detail::check(rosco_send(ctx_, ch_, b.get()), "rosco_send");
    }
    /// Sends a builder's message or closed bundle.
    void send(const Builder& b) const { detail::check(rosco_send(ctx_, ch_, b.raw()), "rosco_send"); }
    /// Sends bytes as one packet (datagram or stream frame).
    void send_raw(Blob bytes) const {
        static const std::uint8_t none = 0;  // rosco wants a non-NULL pointer even for 0 bytes
        const std::uint8_t* p = bytes.data == nullptr && bytes.size == 0 ? &none : bytes.data;
        detail::check(rosco_send_raw(ctx_, ch_, p, bytes.size), "rosco_send_raw");
    }
    /// send(address, args...) returning the status instead of throwing, for real-time
    /// threads: nothing is thrown or allocated on failure either (ROSCO_ERR_ARG for a
    /// string holding a NUL byte; ROSCO_ERR_INTERNAL if memory ran out for a first builder
    /// or a long string view's copy). rosco_last_error() has the detail of library failures.
    template <class... Args>
    [[nodiscard]] Status try_send(std::string_view address, const Args&... args) const noexcept {
        try {
            detail::ScratchBuilder b;
            const detail::Outcome o = detail::build(b.get(), address, args...);
            return o.status == ROSCO_OK ? rosco_send(ctx_, ch_, b.get()) : o.status;
        } catch (...) {
            return ROSCO_ERR_INTERNAL;
        }
    }

    /// The local port its socket is bound to (a listener's real port, a sender's
    /// ephemeral one). ROSCO_ERR_UNSUPPORTED for channels without an IP socket.
    std::uint16_t port() const {
        std::uint16_t p = 0;
        detail::check(rosco_channel_port(ctx_, ch_, &p), "rosco_channel_port");
        return p;
    }
    /// Its URL in liblo's form, with the real port.
    std::string url() const { return text(rosco_channel_url, "rosco_channel_url"); }
    /// The name it was opened with.
    std::string name() const { return text(rosco_channel_name, "rosco_channel_name"); }
    /// Its counters.
    Stats stats() const {
        Stats s{};
        detail::check(rosco_channel_stats_get(ctx_, ch_, &s), "rosco_channel_stats_get");
        return s;
    }
    /// Waits up to `timeout` until a stream channel's output is written (ROSCO_ERR_TIMEOUT
    /// otherwise). In poll mode it runs the I/O; not from a handler in poll mode.
    void flush(std::chrono::milliseconds timeout) const {
        detail::check(rosco_channel_flush(ctx_, ch_, detail::clamp_ms(timeout)), "rosco_channel_flush");
    }
    /// Closes it: its sockets close and every copy of this Channel goes stale.
    void close() const { detail::check(rosco_channel_close(ctx_, ch_), "rosco_channel_close"); }

    // O2lite (see "O2lite" at the top). On a channel that is not O2lite these throw
    // ROSCO_ERR_UNSUPPORTED.

    /// Offers `service` (1 to 63 bytes, no '/' or '!'): on a client it is announced to the
    /// host now and on every reconnection, and messages to it ("/service/...") reach this
    /// context's methods; on a host it is one of the host's own services (ROSCO_ERR_ARG if
    /// a client offers that name). Offering a service again changes nothing.
    void o2_service_add(std::string_view service) const {
        detail::ZStr s(service);
        detail::check(rosco_o2lite_service_add(ctx_, ch_, s.checked("rosco_o2lite_service_add")),
                      "rosco_o2lite_service_add");
    }
    /// Withdraws a service offered with o2_service_add() (ROSCO_ERR_ARG if it was not).
    void o2_service_remove(std::string_view service) const {
        detail::ZStr s(service);
        detail::check(
            rosco_o2lite_service_remove(ctx_, ch_, s.checked("rosco_o2lite_service_remove")),
            "rosco_o2lite_service_remove");
    }
    /// Sends one O2 message to `address` ("/service/...") with an O2 `timestamp` (global
    /// seconds; 0: now) by TCP (`reliable`) or UDP. Arguments map as for send().
    /// ROSCO_ERR_CLOSED while a client is not connected to its host.
    template <class... Args>
    void o2_send(double timestamp, bool reliable, std::string_view address,
                 const Args&... args) const {
        detail::ScratchBuilder b;
        detail::check(detail::build(b.get(), address, args...));
        detail::check(rosco_o2lite_send(ctx_, ch_, b.get(), timestamp, reliable ? 1 : 0),
                      "rosco_o2lite_send");
    }
    /// Sends a builder's message (not a bundle: O2 messages carry their own timestamp).
    void o2_send(double timestamp, bool reliable, const Builder& b) const {
        detail::check(rosco_o2lite_send(ctx_, ch_, b.raw(), timestamp, reliable ? 1 : 0),
                      "rosco_o2lite_send");
    }
    /// Refused at compile time: a string literal where `reliable` belongs (it would
    /// silently turn into `true`). Write o2_send(timestamp, reliable, address, args...).
    template <std::size_t N, class... Args>
    void o2_send(double, const char (&)[N], const Args&...) const = delete;
    /// The same for a `const char*` or `char*` where `reliable` belongs.
    template <class... Args>
    void o2_send(double, const char*, const Args&...) const = delete;
    template <class... Args>
    void o2_send(double, char*, const Args&...) const = delete;
    /// The ensemble's global time in seconds as this channel sees it; -1 on a client that
    /// is not synchronised yet.
    double o2_time() const {
        double t = -1.0;
        detail::check(rosco_o2lite_time(ctx_, ch_, &t), "rosco_o2lite_time");
        return t;
    }
    /// A client's bridge id (given by the host), or std::nullopt while it is not
    /// connected. ROSCO_ERR_UNSUPPORTED on a host.
    std::optional<int> o2_bridge_id() const {
        std::int32_t id = -1;
        detail::check(rosco_o2lite_bridge_id(ctx_, ch_, &id), "rosco_o2lite_bridge_id");
        if (id < 0) return std::nullopt;
        return static_cast<int>(id);
    }
    /// An O2lite channel's UDP port: a host's is what its clients need besides port();
    /// a client's is where its host sends datagrams.
    std::uint16_t o2_udp_port() const {
        std::uint16_t p = 0;
        detail::check(rosco_o2lite_udp_port(ctx_, ch_, &p), "rosco_o2lite_udp_port");
        return p;
    }
    /// Asks the host for the status of `service`; the answer arrives as an o2 event
    /// ("Status { service: .., status: .. }"). A client only; ROSCO_ERR_CLOSED while it is
    /// not connected.
    void o2_query(std::string_view service) const {
        detail::ZStr s(service);
        detail::check(rosco_o2lite_query(ctx_, ch_, s.checked("rosco_o2lite_query")),
                      "rosco_o2lite_query");
    }
    /// Asks the host for its whole service list; the answer arrives as an o2 event
    /// ("List([..])"). A client only; ROSCO_ERR_CLOSED while it is not connected.
    void o2_query_list() const {
        detail::check(rosco_o2lite_query(ctx_, ch_, nullptr), "rosco_o2lite_query");
    }

    rosco_channel handle() const noexcept { return ch_; }
    rosco_ctx context() const noexcept { return ctx_; }

    friend bool operator==(const Channel& a, const Channel& b) noexcept {
        return a.ctx_.id == b.ctx_.id && a.ch_.id == b.ch_.id;
    }
    friend bool operator!=(const Channel& a, const Channel& b) noexcept { return !(a == b); }

private:
    /// A string from a rosco_channel_url-shaped call, in a buffer grown to fit.
    template <class Fetch>
    std::string text(Fetch fetch, const char* what) const {
        std::string s(96, '\0');
        for (;;) {
            std::size_t needed = 0;
            Status st = fetch(ctx_, ch_, &s[0], s.size(), &needed);
            if (st == ROSCO_OK) {
                s.resize(needed);
                return s;
            }
            if (st == ROSCO_ERR_RANGE && needed + 1 > s.size()) {
                s.assign(needed + 1, '\0');
                continue;
            }
            detail::throw_status(st, what);
        }
    }

    rosco_ctx ctx_{};
    rosco_channel ch_{};
};

// ----------------------------------------------------------------------------------------
// Message

/// A received message, as a handler sees it. Borrowed: valid only during the handler,
/// and not copyable. Copy what you keep.
class Message {
public:
    Message(const rosco_msg* m, rosco_ctx ctx) noexcept : m_(m), ctx_(ctx) {}
    Message(const Message&) = delete;
    Message& operator=(const Message&) = delete;

    /// The address (or pattern) it was sent to.
    std::string_view address() const noexcept { return view(rosco_msg_address(m_)); }
    /// Its type tags without the leading ',' ("" when none).
    std::string_view typetags() const noexcept { return view(rosco_msg_typetags(m_)); }
    /// The number of arguments (= type tags, '[' and ']' included).
    std::size_t size() const noexcept { return rosco_msg_argc(m_); }
    bool empty() const noexcept { return size() == 0; }
    /// The type tag of argument `i` (ROSCO_ERR_RANGE past the end).
    char type(std::size_t i) const {
        std::string_view t = typetags();
        if (i >= t.size())
            throw Error(ROSCO_ERR_RANGE, "rosco::Message::type", "argument index past the end");
        return t[i];
    }

    /// Argument `i` as T (see the type table at the top). Throws ROSCO_ERR_TYPE when it has
    /// another type, ROSCO_ERR_RANGE past the end. Strings and blobs point into the packet.
    template <class T>
    T get(std::size_t i) const {
        T out{};
        const char* why = nullptr;
        Status s = detail::read_arg(m_, i, out, why);
        if (s != ROSCO_OK) {
            if (why) throw Error(s, "rosco::Message::get", why);
            detail::throw_status(s, "rosco::Message::get");
        }
        return out;
    }
    /// Argument `i` as T, or nothing when it has another type or does not exist.
    template <class T>
    std::optional<T> try_get(std::size_t i) const noexcept {
        T out{};
        const char* why = nullptr;
        if (detail::read_arg(m_, i, out, why) != ROSCO_OK) return std::nullopt;
        return out;
    }
    /// Argument `i`, a `t`, as seconds: O2 global seconds for a message that came over
    /// O2lite, seconds since 1900 for an OSC timetag. ROSCO_ERR_TYPE when it has another
    /// type, ROSCO_ERR_RANGE past the end.
    double get_seconds(std::size_t i) const {
        if (i > std::numeric_limits<std::uint32_t>::max())
            throw Error(ROSCO_ERR_RANGE, "rosco::Message::get_seconds", "argument index too large");
        double out = 0;
        detail::check(rosco_msg_get_seconds(m_, static_cast<std::uint32_t>(i), &out),
                      "rosco::Message::get_seconds");
        return out;
    }

    /// The sender as "address:port", or "" when it did not come over IP.
    std::string source() const {
        char buf[128];
        if (rosco_msg_source(m_, buf, sizeof buf) != ROSCO_OK) return std::string();
        return std::string(buf);
    }
    /// The sender's name (Context::set_source_name(), else the host name the URL of an
    /// open channel used for its address), or "" when it has none.
    std::string source_name() const {
        std::size_t needed = 0;
        std::string name(64, '\0');
        rosco_status st = rosco_msg_source_name(ctx_, m_, name.data(), name.size(), &needed);
        if (st == ROSCO_ERR_RANGE && needed >= name.size()) {
            name.resize(needed + 1);
            st = rosco_msg_source_name(ctx_, m_, name.data(), name.size(), &needed);
        }
        if (st != ROSCO_OK) return std::string();
        name.resize(needed);
        return name;
    }
    /// The channel it arrived on.
    Channel channel() const {
        rosco_channel ch{};
        detail::check(rosco_msg_channel(m_, &ch), "rosco_msg_channel");
        return Channel(ctx_, ch);
    }
    /// The effective timetag of the bundle it came in; TimeTag{} (0) for a lone message.
    TimeTag bundle_time() const noexcept { return TimeTag(rosco_msg_bundle_time(m_)); }
    /// When its packet was received.
    TimeTag received() const noexcept { return TimeTag(rosco_msg_received(m_)); }
    /// For a message that came over O2lite: its O2 timestamp (global seconds, 0 for "now")
    /// and whether it came by TCP; std::nullopt for any other message.
    std::optional<O2Stamp> o2_stamp() const {
        O2Stamp out{};
        std::int32_t reliable = 0;
        const Status s = rosco_msg_o2_stamp(m_, &out.timestamp, &reliable);
        if (s == ROSCO_ERR_RANGE) return std::nullopt;
        detail::check(s, "rosco_msg_o2_stamp");
        out.reliable = reliable != 0;
        return out;
    }
    /// Its bytes as received.
    Blob bytes() const {
        const std::uint8_t* p = nullptr;
        std::size_t n = 0;
        detail::check(rosco_msg_bytes(m_, &p, &n), "rosco_msg_bytes");
        return Blob(p, n);
    }

    /// Answers the sender (its address for UDP, its connection for streams) on the channel
    /// the message arrived on.
    template <class... Args>
    void reply(std::string_view address, const Args&... args) const {
        detail::ScratchBuilder b;
        detail::check(detail::build(b.get(), address, args...));
        detail::check(rosco_reply(ctx_, m_, b.get()), "rosco_reply");
    }
    /// Answers the sender with a builder's packet.
    void reply(const Builder& b) const { detail::check(rosco_reply(ctx_, m_, b.raw()), "rosco_reply"); }

    const rosco_msg* raw() const noexcept { return m_; }
    rosco_ctx context() const noexcept { return ctx_; }

private:
    static std::string_view view(const char* s) noexcept { return s ? std::string_view(s) : std::string_view(); }
    const rosco_msg* m_;
    rosco_ctx ctx_;
};

inline Builder& Builder::append_args(const Message& m) {
    const std::string_view tags = m.typetags();
    for (std::size_t i = 0; i < tags.size(); ++i) {
        switch (tags[i]) {
            case 'i': add(m.get<std::int32_t>(i)); break;
            case 'h': add(m.get<std::int64_t>(i)); break;
            case 'f': add(m.get<float>(i)); break;
            case 'd': add(m.get<double>(i)); break;
            case 's': add(m.get<const char*>(i)); break;
            case 'S': detail::check(rosco_builder_add_symbol(b_, m.get<const char*>(i)), "rosco::Builder::add"); break;
            case 'b': add(m.get<Blob>(i)); break;
            case 't': add(m.get<TimeTag>(i)); break;
            case 'c': add(m.get<Char>(i)); break;
            case 'm': add(m.get<Midi>(i)); break;
            case 'r': add(m.get<Rgba>(i)); break;
            case 'T': add(true); break;
            case 'F': add(false); break;
            case 'B': add(m.get<bool>(i)); break;  // O2's boolean: copied as T or F
            case 'N': add(nullptr); break;
            case 'I': add(Impulse{}); break;
            case '[': add(ArrayBegin{}); break;
            case ']': add(ArrayEnd{}); break;
            default:
                throw Error(ROSCO_ERR_ARG, "rosco::Builder::append_args",
                            std::string("unknown type tag '") + tags[i] + "'");
        }
    }
    return *this;
}

// ----------------------------------------------------------------------------------------
// Method

namespace detail {

/// What a Method object shares with its handler's holder (which rosco owns): which
/// threads are in calls of the handler, and whether removal has begun. Lets ~Method wait
/// for calls running on other threads, and keeps new calls out once removal has begun.
/// The threads are kept here, not in a thread_local: a handler registered from one shared
/// object (or a plugin loaded with RTLD_LOCAL, or code built with -fvisibility=hidden) and
/// removed from another would see another copy of a thread_local and wait for itself.
struct MethodGate {
    MethodGate() { inside.reserve(8); }  // so that a call seldom allocates
    std::atomic<bool> removed{false};
    std::mutex mu;
    std::vector<std::thread::id> inside;  // one entry per call under way
    /// The gate of the handler a Method had before it was assigned over while calls of
    /// that handler were under way (from inside it): waited for with this one.
    std::shared_ptr<MethodGate> before;
};

/// One call of a handler, from before the `removed` check to after the handler (and any
/// exception report) has finished.
class GateCall {
public:
    explicit GateCall(MethodGate& g) noexcept : gate_(g) {
        std::lock_guard<std::mutex> lock(gate_.mu);
        try {
            gate_.inside.push_back(std::this_thread::get_id());
            recorded_ = true;
        } catch (...) {
            // No memory to note the call: it does not happen (as if removed), rather than
            // run where removal could not wait for it.
        }
    }
    ~GateCall() {
        if (!recorded_) return;
        std::lock_guard<std::mutex> lock(gate_.mu);  // the last touch of the call
        auto& in = gate_.inside;
        in.erase(std::find(in.begin(), in.end(), std::this_thread::get_id()));
    }
    GateCall(const GateCall&) = delete;
    GateCall& operator=(const GateCall&) = delete;
    /// True once removal has begun (or the call could not be noted): the handler must not
    /// be called.
    bool closed() const noexcept { return !recorded_ || gate_.removed.load(std::memory_order_seq_cst); }

private:
    MethodGate& gate_;
    bool recorded_ = false;
};

/// Appends `old` to the gates `head` waits for (see MethodGate::before).
inline void chain_gate(std::shared_ptr<MethodGate>& head, std::shared_ptr<MethodGate> old) noexcept {
    if (!head) {
        head = std::move(old);
        return;
    }
    std::shared_ptr<MethodGate> tail = head;
    for (;;) {
        std::shared_ptr<MethodGate> next;
        {
            std::lock_guard<std::mutex> lock(tail->mu);
            if (!tail->before) {
                tail->before = std::move(old);
                return;
            }
            next = tail->before;
        }
        tail = std::move(next);
    }
}

/// Begins removal: no call enters the handler from now on. Then waits until no call of
/// it is running on another thread (calls this thread is inside are not waited for), and
/// does the same for the gates before it. Returns whether calls are still under way in
/// it or before it (this thread's).
inline bool close_gate(MethodGate& g) noexcept {
    g.removed.store(true, std::memory_order_seq_cst);
    const std::thread::id me = std::this_thread::get_id();
    bool under_way = false;
    for (unsigned spins = 0;; ++spins) {
        {
            std::lock_guard<std::mutex> lock(g.mu);
            if (std::all_of(g.inside.begin(), g.inside.end(), [me](std::thread::id t) { return t == me; })) {
                under_way = !g.inside.empty();
                break;
            }
        }
        if (spins < 100) std::this_thread::yield();
        else std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    std::shared_ptr<MethodGate> before;
    {
        std::lock_guard<std::mutex> lock(g.mu);
        before = g.before;
    }
    if (before) {
        if (close_gate(*before)) {
            under_way = true;
        } else {
            std::lock_guard<std::mutex> lock(g.mu);
            if (g.before == before) g.before.reset();  // nothing left to wait for there
        }
    }
    return under_way;
}


}  // namespace detail

/// A registered handler. Move-only RAII: destroying it (or assigning over it) removes the
/// method. Once the destructor, remove() or the assignment returns, the handler is not
/// running on another thread and will not be called again (see "Handlers, ownership and
/// threads" at the top); rosco then destroys the handler once no delivery uses it.
/// detach() leaves the method registered until the context goes.
class [[nodiscard]] Method {
public:
    Method() noexcept = default;
    /// Adopts a method registered through the C API. The wrapper does not know its
    /// handler, so removal does not wait for calls under way (as rosco_method_remove()).
    Method(rosco_ctx ctx, rosco_method m) noexcept : ctx_(ctx), m_(m) {}
    ~Method() { release(); }
    Method(Method&& o) noexcept
        : ctx_(o.ctx_), m_(std::exchange(o.m_, rosco_method{})), gate_(std::move(o.gate_)) {}
    Method& operator=(Method&& o) noexcept {
        if (this != &o) {
            std::shared_ptr<detail::MethodGate> old = release();
            ctx_ = o.ctx_;
            m_ = std::exchange(o.m_, rosco_method{});
            gate_ = std::move(o.gate_);
            // Assigned over from inside the old handler: this object, destroyed later on
            // another thread, must still wait for that call.
            if (old) detail::chain_gate(gate_, std::move(old));
        }
        return *this;
    }
    Method(const Method&) = delete;
    Method& operator=(const Method&) = delete;

    /// Removes the method now: waits until its handler is not running on another thread,
    /// and no call enters the handler from the moment this is called. Throws
    /// ROSCO_ERR_HANDLE if it is already gone (removed through another copy of the handle,
    /// or its context destroyed). Empty afterwards.
    void remove() {
        const rosco_method m = std::exchange(m_, rosco_method{});
        // The gate stays: removed from inside its handler, the call under way is still
        // waited for when this object is destroyed on another thread.
        if (gate_) detail::close_gate(*gate_);
        detail::check(rosco_method_remove(ctx_, m), "rosco_method_remove");
    }
    /// Gives up ownership: the method stays until its context is destroyed (or until
    /// rosco_method_remove() with the returned handle, which does not wait for calls under
    /// way on other threads).
    rosco_method detach() noexcept {
        gate_.reset();
        return std::exchange(m_, rosco_method{});
    }

    /// True while this object owns a method.
    explicit operator bool() const noexcept { return m_.id != 0; }
    rosco_method handle() const noexcept { return m_; }

private:
    friend class Context;
    Method(rosco_ctx ctx, rosco_method m, std::shared_ptr<detail::MethodGate> gate) noexcept
        : ctx_(ctx), m_(m), gate_(std::move(gate)) {}

    /// Removes the method; returns its gate if calls are still under way in it (this
    /// thread's, when it is inside the handler).
    std::shared_ptr<detail::MethodGate> release() noexcept {
        // The gate first: rosco_method_remove may free the holder (and the handler) at once.
        std::shared_ptr<detail::MethodGate> g = std::move(gate_);
        const bool under_way = g && detail::close_gate(*g);
        const rosco_method m = std::exchange(m_, rosco_method{});
        if (m.id != 0) rosco_method_remove(ctx_, m);
        return under_way ? g : nullptr;
    }
    rosco_ctx ctx_{};
    rosco_method m_{};
    std::shared_ptr<detail::MethodGate> gate_;  // null for an adopted or empty Method
};

// ----------------------------------------------------------------------------------------
// Context

/// An event, as an event handler sees it. Strings are valid during the handler only.
struct Event {
    EventKind kind;
    Channel channel;
    std::string_view peer;     ///< "address:port", or empty
    std::string_view reason;   ///< why (disconnected, reconnecting, gave up, malformed), what (o2), or empty
    std::uint16_t port;        ///< local port (bound)
    std::uint32_t attempt;     ///< reconnect attempt, from 1
    std::chrono::milliseconds delay;  ///< wait before reconnecting
    std::uint64_t count;       ///< packets dropped so far (dropped)

    /// For an o2 event, the leading word of `reason`, naming what happened: "Discovered",
    /// "Connected", "Synced", "Lost", "Status", "List" (client); "ClientJoined", "ClientLeft",
    /// "ClientSynced", "ServiceAdded", "ServiceRemoved", "Refused", "Unroutable",
    /// "ServiceRefused", "NotHeld" (host).
    /// Empty for other kinds. Points into `reason` (valid during the handler only).
    std::string_view o2_name() const noexcept {
        if (kind != EventKind::o2) return std::string_view();
        const std::size_t end = reason.find_first_of(" {(");
        return reason.substr(0, end);
    }
};

using EventHandler = std::function<void(const Event&)>;
using LogHandler = std::function<void(LogLevel, std::string_view)>;
using BundleHandler = std::function<void(TimeTag)>;
/// Accepts (true) or refuses an incoming stream connection: the listener and the peer as
/// "address:port" (empty for Unix sockets).
using AcceptHandler = std::function<bool(const Channel& listener, std::string_view peer)>;
/// Receives an exception a handler threw, and where ("handler for /a/b", "event handler").
using ExceptionHandler = std::function<void(std::exception_ptr, std::string_view where)>;

/// What a packet hook decided.
enum class Verdict : std::int32_t {
    Drop = ROSCO_HOOK_DROP,        ///< the packet goes no further
    Pass = ROSCO_HOOK_PASS,        ///< the packet goes on as it was
    Replace = ROSCO_HOOK_REPLACE,  ///< what the hook appended to its PacketOut goes on
};

/// Where a packet hook writes the packet that replaces the one it was given; valid during
/// the hook's call only.
class PacketOut {
public:
    explicit PacketOut(rosco_packet_out* out) noexcept : out_(out) {}
    /// Appends bytes to the replacement packet.
    void append(Blob bytes) {
        detail::check(rosco_packet_out_append(out_, bytes.data, bytes.size), "rosco_packet_out_append");
    }

private:
    rosco_packet_out* out_;
};

/// Sees, checks or transforms one raw packet of a channel (checksums, signatures,
/// encryption, taps): returns Verdict::Pass, Verdict::Drop, or Verdict::Replace after
/// writing the new packet into `out`. A hook that throws drops the packet.
using PacketHook = std::function<Verdict(const Channel& channel, Blob packet, PacketOut& out)>;

namespace detail {

/// What all of a context's callbacks share: the replaceable event, log, bundle and
/// exception handlers. Lives until the last of the Context object, rosco's keeper method
/// and the method holders lets go.
/// The exception handler and its gate: replacing it waits for its calls on other threads,
/// as replacing the other handlers does.
struct GatedExceptionHandler {
    explicit GatedExceptionHandler(ExceptionHandler f) : fn(std::move(f)) {}
    ExceptionHandler fn;
    mutable MethodGate gate;
};

struct Hub : std::enable_shared_from_this<Hub> {
    explicit Hub(rosco_ctx c) noexcept : ctx(c) {}

    template <class Fn>
    std::shared_ptr<const Fn> load(const std::shared_ptr<const Fn>& slot) const {
        std::lock_guard<std::mutex> lock(mu);
        return slot;
    }
    /// Puts `fn` in `slot`; returns the old handler, which goes when the caller drops it
    /// (outside the lock), unless a call still holds it.
    template <class Fn>
    std::shared_ptr<const Fn> store(std::shared_ptr<const Fn>& slot, std::shared_ptr<const Fn> fn) {
        std::lock_guard<std::mutex> lock(mu);
        slot.swap(fn);
        return fn;
    }

    /// Reports an exception from a callback; never throws.
    void report(std::exception_ptr e, const char* what, const rosco_msg* m) const noexcept {
        try {
            std::string where = what;
            if (m) {
                const char* a = rosco_msg_address(m);
                where += " ";
                where += a ? a : "?";
            }
            bool handler_threw = false;
            // A handler being replaced (its gate closed) hands over to the new one, which
            // is installed before the old one's gate closes.
            for (auto handler = load(on_exception); handler;) {
                bool closed = false;
                {
                    const GateCall call(handler->gate);
                    closed = call.closed();
                    if (!closed) {
                        try {
                            handler->fn(e, where);
                            return;
                        } catch (...) {
                            handler_threw = true;  // the first exception is still reported below
                        }
                    }
                }
                if (!closed) break;
                auto next = load(on_exception);
                if (next == handler) break;
                handler = std::move(next);
            }
            std::string text = "unknown exception";
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                text = x.what();
            } catch (...) {
            }
            std::cerr << "rosco: " << where << " threw: " << text
                      << (handler_threw ? " (and the exception handler threw too)" : "") << std::endl;
        } catch (...) {
            // Nothing more can be done without letting it reach rosco.
        }
    }

    const rosco_ctx ctx;
    mutable std::mutex mu;
    std::shared_ptr<const EventHandler> on_event;
    std::shared_ptr<const LogHandler> on_log;
    std::shared_ptr<const BundleHandler> on_bundle_start, on_bundle_end;
    std::shared_ptr<const AcceptHandler> on_accept;
    std::shared_ptr<const GatedExceptionHandler> on_exception;
};

/// A handler and the hub it reports to, owned by rosco through `user`/`user_free`.
template <class F>
struct MethodHolder {
    template <class G>
    MethodHolder(std::shared_ptr<Hub> h, std::shared_ptr<MethodGate> mg, G&& g)
        : hub(std::move(h)), gate(std::move(mg)), fn(std::forward<G>(g)) {}
    std::shared_ptr<Hub> hub;
    std::shared_ptr<MethodGate> gate;  // shared with the Method object
    F fn;
};

template <class F>
std::int32_t method_trampoline(void* user, const rosco_msg* m) noexcept {
    auto* h = static_cast<MethodHolder<F>*>(user);
    const GateCall call(*h->gate);
    // Removal has begun (~Method may be returning now): act as if the method were gone and
    // pass the message on.
    if (call.closed()) return 1;
    try {
        const Message msg(m, h->hub->ctx);
        if constexpr (std::is_void_v<std::invoke_result_t<F&, const Message&>>) {
            h->fn(msg);
            return 0;
        } else {
            return static_cast<bool>(h->fn(msg)) ? 0 : 1;
        }
    } catch (...) {
        h->hub->report(std::current_exception(), "handler for", m);
        return 0;  // a throwing handler counts as having handled the message
    }
}

template <class F>
void method_free(void* user) noexcept {
    delete static_cast<MethodHolder<F>*>(user);
}

/// The keeper method: never matches an ordinary message, and its user_free releases the
/// hub when rosco drops the context.
inline std::int32_t keeper_trampoline(void*, const rosco_msg*) noexcept { return 1; }
inline void keeper_free(void* user) noexcept { delete static_cast<std::shared_ptr<Hub>*>(user); }
inline constexpr const char* keeper_address = "/rosco.cpp/keeper";
inline constexpr const char* keeper_typespec = "[[[[]]]]";

inline void event_trampoline(void* user, const rosco_event* ev) noexcept {
    auto* hub = static_cast<Hub*>(user);
    try {
        auto keep = hub->shared_from_this();  // in case the handler destroys the context
        if (auto fn = hub->load(hub->on_event)) {
            Event e{static_cast<EventKind>(ev->kind),
                    Channel(hub->ctx, ev->channel),
                    ev->peer ? std::string_view(ev->peer) : std::string_view(),
                    ev->reason ? std::string_view(ev->reason) : std::string_view(),
                    ev->port,
                    ev->attempt,
                    std::chrono::milliseconds(ev->delay_ms),
                    ev->count};
            try {
                (*fn)(e);
            } catch (...) {
                hub->report(std::current_exception(), "event handler", nullptr);
            }
        }
    } catch (...) {
        hub->report(std::current_exception(), "event handler", nullptr);
    }
}

inline std::int32_t accept_trampoline(void* user, rosco_channel listener, const char* peer) noexcept {
    auto* hub = static_cast<Hub*>(user);
    try {
        auto keep = hub->shared_from_this();
        if (auto fn = hub->load(hub->on_accept))
            return (*fn)(Channel(hub->ctx, listener), peer ? std::string_view(peer) : std::string_view()) ? 1 : 0;
        return 1;
    } catch (...) {
        // A throwing filter refuses: it could not say yes.
        hub->report(std::current_exception(), "accept handler", nullptr);
        return 0;
    }
}

/// A channel's packet hooks and the hub they report to: the `user` of one
/// rosco_channel_set_hooks call, which rosco frees (hooks_free) once neither can run.
struct Hooks {
    std::shared_ptr<Hub> hub;
    PacketHook incoming, outgoing;
};

/// Runs a channel's incoming (`outgoing` false) or outgoing hook.
template <bool outgoing>
std::int32_t hook_trampoline(void* user, rosco_channel ch, const std::uint8_t* data, std::size_t len,
                             rosco_packet_out* out) noexcept {
    const Hooks& h = *static_cast<const Hooks*>(user);
    try {
        PacketOut o(out);
        return static_cast<std::int32_t>((outgoing ? h.outgoing : h.incoming)(Channel(h.hub->ctx, ch),
                                                                             Blob(data, len), o));
    } catch (...) {
        // A throwing hook drops: it could not say what should go on.
        h.hub->report(std::current_exception(), outgoing ? "outgoing packet hook" : "incoming packet hook",
                      nullptr);
        return ROSCO_HOOK_DROP;
    }
}

inline void hooks_free(void* user) noexcept { delete static_cast<Hooks*>(user); }

inline void log_trampoline(void* user, std::int32_t level, const char* text) noexcept {
    auto* hub = static_cast<Hub*>(user);
    try {
        auto keep = hub->shared_from_this();
        if (auto fn = hub->load(hub->on_log)) {
            try {
                (*fn)(static_cast<LogLevel>(level), text ? std::string_view(text) : std::string_view());
            } catch (...) {
                hub->report(std::current_exception(), "log handler", nullptr);
            }
        }
    } catch (...) {
        hub->report(std::current_exception(), "log handler", nullptr);
    }
}

inline void bundle_call(Hub* hub, bool start, std::uint64_t t) noexcept {
    try {
        auto keep = hub->shared_from_this();
        if (auto fn = hub->load(start ? hub->on_bundle_start : hub->on_bundle_end)) {
            try {
                (*fn)(TimeTag(t));
            } catch (...) {
                hub->report(std::current_exception(), "bundle handler", nullptr);
            }
        }
    } catch (...) {
        hub->report(std::current_exception(), "bundle handler", nullptr);
    }
}
inline void bundle_start_trampoline(void* user, std::uint64_t t) noexcept {
    bundle_call(static_cast<Hub*>(user), true, t);
}
inline void bundle_end_trampoline(void* user, std::uint64_t t) noexcept {
    bundle_call(static_cast<Hub*>(user), false, t);
}

/// A poll timeout: `forever` is C's -1; other negatives (a deadline already passed) 0.
inline std::int32_t clamp_timeout(std::chrono::milliseconds t) noexcept {
    auto n = t.count();
    if (t == forever) return -1;
    if (n < 0) return 0;
    if (n > std::numeric_limits<std::int32_t>::max()) return std::numeric_limits<std::int32_t>::max();
    return static_cast<std::int32_t>(n);
}


/// A handler given messages on the caller's thread (Subscription::take(), decode()), and
/// the first exception it threw: later messages are skipped, and it is rethrown after.
template <class F>
struct Visit {
    F& fn;
    rosco_ctx ctx;
    std::exception_ptr error;
};

template <class F>
std::int32_t visit_trampoline(void* user, const rosco_msg* m) noexcept {
    auto* t = static_cast<Visit<F>*>(user);
    if (t->error) return 0;
    try {
        const Message msg(m, t->ctx);
        t->fn(msg);
    } catch (...) {
        t->error = std::current_exception();
    }
    return 0;
}

}  // namespace detail

/// Validates `packet` (any contiguous bytes) and calls `handler(const rosco::Message&)`
/// with each of its messages in order, on this thread (for a caller doing its own I/O;
/// Message::bundle_time() gives a bundle's effective timetag). Throws ROSCO_ERR_ARG for a
/// packet that fails validation, before any call; rethrows what the handler throws.
template <class F>
void decode(Blob packet, F&& handler) {
    detail::Visit<std::remove_reference_t<F>> v{handler, rosco_ctx{}, nullptr};
    detail::check(rosco_decode(packet.data, packet.size,
                               &detail::visit_trampoline<std::remove_reference_t<F>>, &v),
                  "rosco_decode");
    if (v.error) std::rethrow_exception(v.error);
}

/// Messages matching one or more routes, kept in a queue to be taken on the caller's
/// thread, with no handler called from rosco's (aiolo's route.sub()). From
/// Context::subscribe(). Move-only; destroying it removes its routes (before or after its
/// Context is gone).
class [[nodiscard]] Subscription {
public:
    Subscription() noexcept = default;
    Subscription(Subscription&& o) noexcept : sub_(std::exchange(o.sub_, nullptr)), ctx_(o.ctx_) {}
    Subscription& operator=(Subscription&& o) noexcept {
        if (this != &o) {
            rosco_sub_free(sub_);
            sub_ = std::exchange(o.sub_, nullptr);
            ctx_ = o.ctx_;
        }
        return *this;
    }
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription() { rosco_sub_free(sub_); }

    /// Adds a route (aiolo's `|`): messages to `pattern` whose type tags are `typespec`.
    void also(std::string_view pattern, std::string_view typespec) {
        detail::ZStr p(pattern), t(typespec);
        detail::check(rosco_sub_also(sub_, p.checked("rosco_sub_also"), t.checked("rosco_sub_also")),
                      "rosco_sub_also");
    }
    /// Adds a route: messages to `pattern` with any arguments.
    void also(std::string_view pattern) {
        detail::ZStr p(pattern);
        detail::check(rosco_sub_also(sub_, p.checked("rosco_sub_also"), nullptr), "rosco_sub_also");
    }
    /// Takes the oldest message, waiting up to `timeout` for one, and calls
    /// `handler(const rosco::Message&)` with it here; false when none came. Throws
    /// ROSCO_ERR_CLOSED, at once, when none waits and the context is gone. What the
    /// handler throws is rethrown.
    template <class F>
    bool take(F&& handler, std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        detail::Visit<std::remove_reference_t<F>> t{handler, ctx_, nullptr};
        const Status s = rosco_sub_take(sub_, detail::clamp_ms(timeout),
                                        &detail::visit_trampoline<std::remove_reference_t<F>>, &t);
        if (s == ROSCO_ERR_TIMEOUT) return false;
        detail::check(s, "rosco_sub_take");
        if (t.error) std::rethrow_exception(t.error);
        return true;
    }
    /// Messages waiting.
    std::uint32_t waiting() const {
        std::uint32_t w = 0;
        detail::check(rosco_sub_counts(sub_, &w, nullptr), "rosco_sub_counts");
        return w;
    }
    /// Messages dropped because the queue was full.
    std::uint64_t dropped() const {
        std::uint64_t d = 0;
        detail::check(rosco_sub_counts(sub_, nullptr, &d), "rosco_sub_counts");
        return d;
    }

private:
    friend class Context;
    Subscription(rosco_sub* s, rosco_ctx c) noexcept : sub_(s), ctx_(c) {}
    rosco_sub* sub_ = nullptr;
    rosco_ctx ctx_{};
};

/// Owns a rosco context: its channels, methods, handlers and (in the threaded modes) its
/// I/O thread. Move-only; destroying it closes every channel, stops the thread and
/// destroys every handler registered through it. A moved-from or closed Context throws
/// ROSCO_ERR_HANDLE when used.
class Context {
public:
    explicit Context(const Options& options = Options()) {
        rosco_ctx c{};
        detail::check(options.create(&c), "rosco_ctx_new");
        try {
            hub_ = std::make_shared<detail::Hub>(c);
            auto* keep = new std::shared_ptr<detail::Hub>(hub_);
            rosco_method m{};
            // rosco owns `keep` from here, and frees it itself if this fails.
            detail::check(rosco_method_add(c, detail::keeper_address, detail::keeper_typespec,
                                           &detail::keeper_trampoline, keep, &detail::keeper_free, &m),
                          "rosco_method_add");
        } catch (...) {
            rosco_ctx_free(c);
            throw;
        }
        id_.store(c.id);
    }
    ~Context() { close(); }
    Context(Context&& o) noexcept {
        std::lock_guard<std::mutex> lock(o.mu_);
        id_.store(o.id_.exchange(0));
        hub_ = std::move(o.hub_);
    }
    Context& operator=(Context&& o) noexcept {
        if (this != &o) {
            close();
            std::scoped_lock lock(mu_, o.mu_);
            id_.store(o.id_.exchange(0));
            hub_ = std::move(o.hub_);
        }
        return *this;
    }
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    /// Destroys the context now (what the destructor does). Channels and Methods of it go
    /// stale. May be called from one of its own handlers, and while other threads are in
    /// calls on this object: theirs then fail with ROSCO_ERR_HANDLE (or CLOSED).
    void close() noexcept {
        std::shared_ptr<detail::Hub> hub;  // the hub goes once every call holding it ends
        rosco_ctx c{};
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (!hub_) return;
            c = rosco_ctx{id_.exchange(0)};
            hub = std::move(hub_);
        }
        rosco_ctx_set_event_callback(c, nullptr, nullptr);
        rosco_ctx_set_log_callback(c, 1, nullptr, nullptr);
        rosco_ctx_set_bundle_callbacks(c, nullptr, nullptr, nullptr);
        rosco_ctx_set_accept_callback(c, nullptr, nullptr);
        rosco_ctx_free(c);
    }

    /// Opens a channel from a liblo-style URL under a unique name: "osc.udp://:PORT"
    /// listens (port 0: any), "osc.udp://HOST:PORT" sends, likewise osc.tcp://, and
    /// "osc.unix:///path[?listen][&stream]". Listeners are bound when this returns.
    Channel open(std::string_view name, std::string_view url) {
        detail::ZStr n(name), u(url);
        rosco_channel ch{};
        detail::check(rosco_channel_open(handle(), n.checked("rosco_channel_open"),
                                         u.checked("rosco_channel_open"), &ch),
                      "rosco_channel_open");
        return Channel(handle(), ch);
    }
    /// The channel with this name (ROSCO_ERR_ARG if none).
    Channel channel(std::string_view name) const {
        detail::ZStr n(name);
        rosco_channel ch{};
        detail::check(rosco_channel_find(handle(), n.checked("rosco_channel_find"), &ch),
                      "rosco_channel_find");
        return Channel(handle(), ch);
    }
    /// The in-process channel "_local": what is sent on it is dispatched here.
    Channel local() const { return channel("_local"); }

    /// Names the packets from `ip` ("127.0.0.1", "::1"), on `port` alone or on any port
    /// (0), for Message::source_name(); an empty `name` forgets the name given.
    void set_source_name(std::string_view ip, std::uint16_t port, std::string_view name) {
        detail::ZStr i(ip), n(name);
        const char* where = "rosco_source_name_set";
        detail::check(rosco_source_name_set(handle(), i.checked(where), port,
                                            name.empty() ? nullptr : n.checked(where)),
                      where);
    }

    /// Connects to the O2 host of `ensemble` at `host_port` ("host:port", or
    /// "host:port:udp_port" to also use the host's UDP port) and returns the O2lite client
    /// channel, named "o2lite:ENSEMBLE" (so one per ensemble in a context: ROSCO_ERR_ARG for
    /// a second). It returns at once: the session (connect, services, clock sync,
    /// reconnect) runs in the background and reports by o2 events.
    Channel o2lite_connect(std::string_view ensemble, std::string_view host_port) {
        detail::ZStr e(ensemble), h(host_port);
        rosco_channel ch{};
        detail::check(rosco_o2lite_connect(handle(), e.checked("rosco_o2lite_connect"),
                                           h.checked("rosco_o2lite_connect"), &ch),
                      "rosco_o2lite_connect");
        return Channel(handle(), ch);
    }
    /// Like o2lite_connect(ensemble, host_port), finding the host by DNS-SD discovery on
    /// the local network (multicast DNS).
    Channel o2lite_connect(std::string_view ensemble) {
        detail::ZStr e(ensemble);
        rosco_channel ch{};
        detail::check(rosco_o2lite_connect(handle(), e.checked("rosco_o2lite_connect"), nullptr, &ch),
                      "rosco_o2lite_connect");
        return Channel(handle(), ch);
    }

    /// Runs the context for at most `timeout` (0: only what is ready; `rosco::forever`:
    /// until something is dispatched) and returns the number of messages dispatched. Poll
    /// mode does all I/O and runs handlers here; io-thread mode runs handlers here;
    /// threaded mode only waits, for the whole timeout (with `rosco::forever`, until
    /// another thread destroys the context). ROSCO_ERR_BUSY from a handler or a second thread;
    /// ROSCO_ERR_CLOSED when another thread destroys the context while this waits.
    std::uint32_t poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        const rosco_ctx c = handle();  // `this` is not touched after the call: a handler may destroy it
        std::uint32_t n = 0;
        detail::check(rosco_poll(c, detail::clamp_timeout(timeout), &n), "rosco_poll");
        return n;
    }

    /// Registers `handler` for messages to `pattern` (a literal address or an OSC pattern)
    /// whose type tags are `typespec` ("" for none; coerced if the option is on).
    template <class F>
    Method on(std::string_view pattern, std::string_view typespec, F&& handler) {
        detail::ZStr p(pattern), t(typespec);
        return add(p.checked("rosco_method_add"), t.checked("rosco_method_add"),
                   std::forward<F>(handler));
    }
    /// Registers `handler` for messages to `pattern` with any arguments.
    template <class F>
    Method on(std::string_view pattern, F&& handler) {
        detail::ZStr p(pattern);
        return add(p.checked("rosco_method_add"), nullptr, std::forward<F>(handler));
    }
    /// Registers a catch-all handler (called in its registration position).
    template <class F>
    Method on_any(F&& handler) {
        return add(nullptr, nullptr, std::forward<F>(handler));
    }

    /// Subscribes to the messages to `pattern` whose type tags are `typespec`, keeping at
    /// most `capacity` of them for Subscription::take(). They arrive where handlers run:
    /// in poll() in the poll and io-thread modes, on the I/O thread (or the workers) in
    /// threaded mode.
    Subscription subscribe(std::string_view pattern, std::string_view typespec,
                           std::uint32_t capacity = 1024) {
        detail::ZStr p(pattern), t(typespec);
        return make_subscription(p.checked("rosco_sub_new"), t.checked("rosco_sub_new"), capacity);
    }
    /// Subscribes to the messages to `pattern` with any arguments.
    Subscription subscribe(std::string_view pattern, std::uint32_t capacity = 1024) {
        detail::ZStr p(pattern);
        return make_subscription(p.checked("rosco_sub_new"), nullptr, capacity);
    }

    /// Sets (or with an empty function removes) the event handler. Once this returns the
    /// old one is not running on another thread, unless this is called from inside a
    /// callback, which cannot wait (the call it would wait for may be waiting for it).
    void on_event(EventHandler handler) {
        const std::shared_ptr<detail::Hub> held = hub();  // alive for this call
        detail::Hub& h = *held;
        const bool set = static_cast<bool>(handler);
        h.store(h.on_event, set ? std::make_shared<const EventHandler>(std::move(handler)) : nullptr);
        detail::check(rosco_ctx_set_event_callback(handle(), set ? &detail::event_trampoline : nullptr, &h),
                      "rosco_ctx_set_event_callback");
    }
    /// Sets (or with an empty function removes) the handler that accepts or refuses each
    /// incoming stream connection; it runs where events do. A refused connection is closed
    /// at once and reported as a disconnected event; a handler that throws refuses.
    void on_accept(AcceptHandler handler) {
        const std::shared_ptr<detail::Hub> held = hub();  // alive for this call
        detail::Hub& h = *held;
        const bool set = static_cast<bool>(handler);
        h.store(h.on_accept, set ? std::make_shared<const AcceptHandler>(std::move(handler)) : nullptr);
        detail::check(rosco_ctx_set_accept_callback(handle(), set ? &detail::accept_trampoline : nullptr, &h),
                      "rosco_ctx_set_accept_callback");
    }
    /// Sets (or with an empty function removes) the log handler, receiving `level` and
    /// more severe messages. Waits for the old one as on_event() does.
    void on_log(LogLevel level, LogHandler handler) {
        const std::shared_ptr<detail::Hub> held = hub();  // alive for this call
        detail::Hub& h = *held;
        const bool set = static_cast<bool>(handler);
        h.store(h.on_log, set ? std::make_shared<const LogHandler>(std::move(handler)) : nullptr);
        detail::check(rosco_ctx_set_log_callback(handle(), static_cast<std::int32_t>(level),
                                                 set ? &detail::log_trampoline : nullptr, &h),
                      "rosco_ctx_set_log_callback");
    }
    /// Sets (or with empty functions removes) the handlers called before and after the
    /// messages of each bundle, with its effective timetag.
    void on_bundle(BundleHandler start, BundleHandler end) {
        const std::shared_ptr<detail::Hub> held = hub();  // alive for this call
        detail::Hub& h = *held;
        const bool s = static_cast<bool>(start), e = static_cast<bool>(end);
        h.store(h.on_bundle_start, s ? std::make_shared<const BundleHandler>(std::move(start)) : nullptr);
        h.store(h.on_bundle_end, e ? std::make_shared<const BundleHandler>(std::move(end)) : nullptr);
        detail::check(rosco_ctx_set_bundle_callbacks(handle(), s ? &detail::bundle_start_trampoline : nullptr,
                                                      e ? &detail::bundle_end_trampoline : nullptr, &h),
                      "rosco_ctx_set_bundle_callbacks");
    }
    /// Sets (or with an empty function removes) what receives exceptions thrown by this
    /// context's handlers; without one they are written to std::cerr. Once this returns
    /// the old handler is not running on another thread (a call of it on this thread,
    /// replacing it from inside, is not waited for); an exception reported meanwhile goes
    /// to the new one.
    void on_exception(ExceptionHandler handler) {
        const std::shared_ptr<detail::Hub> held = hub();  // alive for this call
        detail::Hub& h = *held;
        auto fresh = handler ? std::make_shared<const detail::GatedExceptionHandler>(std::move(handler)) : nullptr;
        if (const auto old = h.store(h.on_exception, std::move(fresh))) detail::close_gate(old->gate);
    }
    /// Sets (or with empty functions removes) a channel's packet hooks: `incoming` sees
    /// every packet it receives before decoding, on the thread doing the I/O; `outgoing`
    /// every packet it sends, on the sending thread. Hooks must not open or close channels.
    /// ROSCO_ERR_UNSUPPORTED on O2lite channels, and for an incoming hook on "_local".
    /// Refused, the channel keeps the hooks it had. Closing the channel or the context
    /// destroys its hooks.
    void set_hooks(const Channel& channel, PacketHook incoming, PacketHook outgoing) {
        const bool in = static_cast<bool>(incoming), out = static_cast<bool>(outgoing);
        detail::Hooks* user =
            in || out ? new detail::Hooks{hub(), std::move(incoming), std::move(outgoing)} : nullptr;
        // rosco owns `user` from here, and frees it itself if this fails.
        detail::check(rosco_channel_set_hooks(handle(), channel.handle(), in ? &detail::hook_trampoline<false> : nullptr,
                                              out ? &detail::hook_trampoline<true> : nullptr, user,
                                              user ? &detail::hooks_free : nullptr),
                      "rosco_channel_set_hooks");
    }
    /// Delegates O2 service `service` of O2lite channel `o2` to OSC channel `osc` (as O2's
    /// o2host does): its messages are sent on `osc`, without the "/service" part when
    /// `strip`. The bridge lasts as long as the returned Method; the service stays offered
    /// until o2_service_remove().
    Method o2_bridge_to_osc(const Channel& o2, std::string_view service, const Channel& osc, bool strip) {
        detail::ZStr s(service);
        rosco_method m{};
        detail::check(rosco_o2lite_bridge_to_osc(handle(), o2.handle(), s.checked("rosco_o2lite_bridge_to_osc"),
                                                 osc.handle(), strip ? 1 : 0, &m),
                      "rosco_o2lite_bridge_to_osc");
        return Method(handle(), m);
    }
    /// Feeds what OSC channel `osc` receives to O2 service `service` through O2lite
    /// channel `o2`, to "/service" + the address when `prefix`, by TCP when `reliable`.
    /// The bridge lasts as long as the returned Method.
    Method osc_bridge_to_o2(const Channel& osc, const Channel& o2, std::string_view service, bool prefix,
                            bool reliable) {
        detail::ZStr s(service);
        rosco_method m{};
        detail::check(rosco_osc_bridge_to_o2lite(handle(), osc.handle(), o2.handle(),
                                                 s.checked("rosco_osc_bridge_to_o2lite"), prefix ? 1 : 0,
                                                 reliable ? 1 : 0, &m),
                      "rosco_osc_bridge_to_o2lite");
        return Method(handle(), m);
    }

    /// Io-thread mode: a descriptor readable while messages wait for poll() (for epoll,
    /// select, Pd's sys_addpollfn; do not read or close it). -1 in the other modes.
    int wakeup_fd() const {
        std::int32_t fd = -1;
        detail::check(rosco_ctx_wakeup_fd(handle(), &fd), "rosco_ctx_wakeup_fd");
        return fd;
    }

    rosco_ctx handle() const noexcept { return rosco_ctx{id_.load()}; }
    /// True until moved from or closed.
    explicit operator bool() const noexcept {
        std::lock_guard<std::mutex> lock(mu_);
        return hub_ != nullptr;
    }

private:
    /// The hub, held for the caller's call: a close() on another thread meanwhile does
    /// not free it under the call.
    std::shared_ptr<detail::Hub> hub() const {
        std::lock_guard<std::mutex> lock(mu_);
        if (!hub_) throw Error(ROSCO_ERR_HANDLE, "rosco::Context", "moved-from or closed context");
        return hub_;
    }

    template <class F>
    Method add(const char* pattern, const char* typespec, F&& handler) {
        using D = std::decay_t<F>;
        static_assert(std::is_invocable_v<D&, const Message&>,
                      "rosco: a handler is called as handler(const rosco::Message&)");
        using R = std::invoke_result_t<D&, const Message&>;
        static_assert(std::is_void_v<R> || std::is_convertible_v<R, bool>,
                      "rosco: a handler returns bool (true: handled) or void");
        if constexpr (std::is_pointer_v<D> || detail::is_std_function<D>::value) {
            if (!handler) throw Error(ROSCO_ERR_ARG, "rosco_method_add", "empty handler");
        }
        auto gate = std::make_shared<detail::MethodGate>();
        auto holder = std::make_unique<detail::MethodHolder<D>>(hub(), gate, std::forward<F>(handler));
        rosco_method m{};
        // rosco owns the holder from here, even when the call fails (it frees it then).
        const Status s = rosco_method_add(handle(), pattern, typespec, &detail::method_trampoline<D>,
                                          holder.release(), &detail::method_free<D>, &m);
        detail::check(s, "rosco_method_add");
        return Method(handle(), m, std::move(gate));
    }

    Subscription make_subscription(const char* pattern, const char* typespec, std::uint32_t capacity) {
        rosco_sub* sub = nullptr;
        detail::check(rosco_sub_new(handle(), pattern, typespec, capacity, &sub), "rosco_sub_new");
        return Subscription(sub, handle());
    }

    // The handle is atomic and the hub behind a lock: close() may run while other threads
    // are in calls on this object.
    std::atomic<std::uint64_t> id_{0};
    mutable std::mutex mu_;
    std::shared_ptr<detail::Hub> hub_;
};

}  // namespace rosco

#endif  // C++17
#endif  // ROSCO_HPP
