// Small helpers shared by the C++ wrapper tests (each test is a standalone program:
// exit 0 = pass). Not a test itself: CMake only builds tests/cpp/*_test*.cpp.
#ifndef ROSCO_CPP_TEST_UTIL_HPP
#define ROSCO_CPP_TEST_UTIL_HPP

#include "rosco.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace test {

inline std::atomic<int>& failures() {
    static std::atomic<int> n{0};
    return n;
}

inline void fail(const char* file, int line, const std::string& what) {
    std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
    ++failures();
}

/// Exit status for main(): 0 when every check passed.
inline int result(const char* name) {
    if (failures() == 0) {
        std::printf("%s: all checks passed\n", name);
        return 0;
    }
    std::printf("%s: %d check(s) failed\n", name, failures().load());
    return 1;
}

/// How much slower than usual this run is, as tests/c/check.h reckons it: ROSCO_TEST_SLOW=N
/// when set, 10 under valgrind, 3 under the sanitizers, else 1. Time limits and clock
/// tolerances scale by it.
inline int slow_factor() {
    if (const char* s = std::getenv("ROSCO_TEST_SLOW"); s && std::atoi(s) > 0) return std::atoi(s);
    const char* valgrind = std::getenv("ROSCO_TEST_VALGRIND");
    const char* preload = std::getenv("LD_PRELOAD");
    if ((valgrind && *valgrind == '1') ||
        (preload && (std::strstr(preload, "valgrind") || std::strstr(preload, "vgpreload"))))
        return 10;
    if (const char* s = std::getenv("ROSCO_TEST_SANITIZE"); s && std::strcmp(s, "1") == 0) return 3;
    return 1;
}

/// A time limit for this run (see slow_factor()).
inline std::chrono::milliseconds scaled(std::chrono::milliseconds t) { return t * slow_factor(); }

/// Polls `ctx` in slices until `done()` or `timeout` (scaled; a bounded wait). In threaded
/// mode poll() only sleeps, so this also works there.
template <class Pred>
bool poll_until(rosco::Context& ctx, Pred done,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    const auto until = std::chrono::steady_clock::now() + scaled(timeout);
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) return done();
        ctx.poll(std::chrono::milliseconds(5));
    }
    return true;
}

/// A mode's name, for messages.
inline const char* mode_name(rosco::Mode m) {
    switch (m) {
        case rosco::Mode::poll: return "poll";
        case rosco::Mode::io_thread: return "io_thread";
        case rosco::Mode::threaded: return "threaded";
    }
    return "?";
}

/// A loopback UDP listener URL on an ephemeral port.
inline const char* udp_listen() { return "osc.udp://:0?bind=127.0.0.1"; }
inline std::string udp_to(std::uint16_t port) {
    return "osc.udp://127.0.0.1:" + std::to_string(port);
}
inline std::string tcp_to(std::uint16_t port) {
    return "osc.tcp://127.0.0.1:" + std::to_string(port);
}

}  // namespace test

#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond)) test::fail(__FILE__, __LINE__, #cond);          \
    } while (0)

#define CHECK_EQ(a, b)                                                               \
    do {                                                                             \
        const auto& check_a_ = (a);                                                  \
        const auto& check_b_ = (b);                                                  \
        if (!(check_a_ == check_b_))                                                 \
            test::fail(__FILE__, __LINE__, std::string(#a " == " #b));               \
    } while (0)

/// Checks that `expr` throws rosco::Error with status `want_`.
#define CHECK_THROWS_STATUS(expr, want_)                                                   \
    do {                                                                                    \
        bool threw_ = false;                                                                \
        try {                                                                               \
            (void)(expr);                                                                   \
        } catch (const rosco::Error& e_) {                                                  \
            threw_ = true;                                                                  \
            if (e_.status() != (want_))                                                    \
                test::fail(__FILE__, __LINE__,                                              \
                           std::string(#expr " threw ") + e_.name() + " (" + e_.what() +    \
                               "), expected " + rosco_status_str(want_));                  \
        } catch (...) {                                                                     \
            threw_ = true;                                                                  \
            test::fail(__FILE__, __LINE__, #expr " threw something other than rosco::Error"); \
        }                                                                                   \
        if (!threw_) test::fail(__FILE__, __LINE__, #expr " did not throw");                \
    } while (0)

#endif
