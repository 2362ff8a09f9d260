/* rosco C API tests: the one shared header (no framework).
 *
 * CHECK(expr) counts a check and, when `expr` is false, prints file:line, the expression
 * and rosco_last_error(), and counts a failure. The STATUS/ERR forms compare a status
 * with the expected code and print both names. Every test is a standalone program whose
 * main() ends with `return check_summary("name");` (exit 0 = every check passed).
 *
 * Also here: a monotonic clock, bounded polling (POLL_UNTIL), and a fork()-based helper
 * for calls that might crash the process. Counters are atomic: checks may run on rosco's
 * I/O thread (ROSCO_MODE_THREADED) and on test threads.
 */
#ifndef ROSCO_TEST_CHECK_H
#define ROSCO_TEST_CHECK_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rosco.h"

static inline atomic_int *check_counter_(int which)
{
    static atomic_int counters[2];
    return &counters[which];
}

#define CHECK_COUNT (atomic_load(check_counter_(0)))
#define CHECK_FAILURES (atomic_load(check_counter_(1)))

/* rosco_last_error() for messages (CHECK_ERR's planted marker shown as such). */
static inline const char *check_detail_(void)
{
    const char *detail = rosco_last_error();
    if (detail == NULL)
        return "(NULL)";
    if (strstr(detail, "-424242") != NULL)
        return "(no failure since the last CHECK_ERR)";
    return detail;
}

static inline int check_report_(int ok, const char *file, int line, const char *expr)
{
    atomic_fetch_add(check_counter_(0), 1);
    if (!ok) {
        const char *detail = check_detail_();
        atomic_fetch_add(check_counter_(1), 1);
        fprintf(stderr, "%s:%d: CHECK failed: %s (rosco_last_error: \"%s\")\n", file, line,
                expr, detail);
        fflush(stderr);
    }
    return ok;
}

/* A boolean check; evaluates to the truth of `expr`. */
#define CHECK(expr) check_report_(!!(expr), __FILE__, __LINE__, #expr)

static inline int check_status_(rosco_status got, rosco_status want, int need_detail,
                                const char *file, int line, const char *expr)
{
    int ok = got == want;
    const char *detail = rosco_last_error();
    atomic_fetch_add(check_counter_(0), 1);
    if (ok && need_detail && want != ROSCO_OK &&
        (detail == NULL || detail[0] == '\0' || strstr(detail, "-424242") != NULL)) {
        atomic_fetch_add(check_counter_(1), 1);
        fprintf(stderr, "%s:%d: CHECK failed: %s gave %s but left no fresh detail "
                        "(rosco_last_error: \"%s\")\n",
                file, line, expr, rosco_status_str(got), detail ? detail : "(NULL)");
        fflush(stderr);
        return 0;
    }
    if (!ok) {
        atomic_fetch_add(check_counter_(1), 1);
        fprintf(stderr, "%s:%d: CHECK failed: %s gave %s (%d), expected %s (%d) "
                        "(rosco_last_error: \"%s\")\n",
                file, line, expr, rosco_status_str(got), (int)got, rosco_status_str(want),
                (int)want, check_detail_());
        fflush(stderr);
    }
    return ok;
}

/* `call` must return `want`. */
#define CHECK_STATUS(call, want) check_status_((call), (want), 0, __FILE__, __LINE__, #call)
/* `call` must return ROSCO_OK. */
#define CHECK_OK(call) check_status_((call), ROSCO_OK, 0, __FILE__, __LINE__, #call)
/* `call` must fail with `want` and leave a fresh, non-empty rosco_last_error(): a marker
 * detail is planted first, and the call must replace it. */
#define CHECK_ERR(call, want)                                                          \
    (check_plant_error_(),                                                             \
     check_status_((call), (want), 1, __FILE__, __LINE__, #call))

#define CHECK_MARKER_MODE (-424242)

/* Makes rosco_last_error() read "unknown mode -424242" (rosco_ctx_new fails before it
 * creates anything). */
static inline void check_plant_error_(void)
{
    rosco_ctx_options o;
    rosco_ctx ctx;
    rosco_ctx_options_init(&o);
    o.mode = CHECK_MARKER_MODE;
    (void)rosco_ctx_new(&o, &ctx);
}

/* A string check that prints both sides. */
static inline int check_str_(const char *got, const char *want, const char *file, int line,
                             const char *expr)
{
    int ok = got != NULL && want != NULL && strcmp(got, want) == 0;
    atomic_fetch_add(check_counter_(0), 1);
    if (!ok) {
        atomic_fetch_add(check_counter_(1), 1);
        fprintf(stderr, "%s:%d: CHECK failed: %s is \"%s\", expected \"%s\" "
                        "(rosco_last_error: \"%s\")\n",
                file, line, expr, got ? got : "(NULL)", want ? want : "(NULL)",
                check_detail_());
        fflush(stderr);
    }
    return ok;
}
#define CHECK_STR(got, want) check_str_((got), (want), __FILE__, __LINE__, #got)

/* An integer comparison that prints both sides. */
static inline int check_int_(long long got, long long want, const char *file, int line,
                             const char *expr)
{
    int ok = got == want;
    atomic_fetch_add(check_counter_(0), 1);
    if (!ok) {
        atomic_fetch_add(check_counter_(1), 1);
        fprintf(stderr, "%s:%d: CHECK failed: %s is %lld, expected %lld "
                        "(rosco_last_error: \"%s\")\n",
                file, line, expr, got, want, check_detail_());
        fflush(stderr);
    }
    return ok;
}
#define CHECK_INT(got, want) check_int_((long long)(got), (long long)(want), __FILE__, __LINE__, #got)

/* Prints the tally; the value to return from main. */
static inline int check_summary(const char *name)
{
    int failures = CHECK_FAILURES;
    if (failures == 0)
        printf("%s: all %d checks passed\n", name, CHECK_COUNT);
    else
        printf("%s: %d of %d checks FAILED\n", name, failures, CHECK_COUNT);
    fflush(stdout);
    return failures == 0 ? 0 : 1;
}

/* Milliseconds on the monotonic clock. */
static inline int64_t check_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void check_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* How much slower than usual this run is: ROSCO_TEST_SLOW=N when set, 10 under valgrind
 * (seen in LD_PRELOAD), 3 under the sanitizers (ROSCO_TEST_SANITIZE=1, set by CMake), else
 * 1. Time limits, and delays whose effect is timed, scale by it. */
static inline int check_slow_factor(void)
{
    const char *slow = getenv("ROSCO_TEST_SLOW");
    const char *preload = getenv("LD_PRELOAD");
    const char *sanitize = getenv("ROSCO_TEST_SANITIZE");
    if (slow && atoi(slow) > 0)
        return atoi(slow);
    if (preload && (strstr(preload, "valgrind") || strstr(preload, "vgpreload")))
        return 10;
    if (sanitize && strcmp(sanitize, "1") == 0)
        return 3;
    return 1;
}

static inline int check_scale_ms(int ms)
{
    return ms * check_slow_factor();
}

/* Polls `ctx` in slices of 10 ms until `cond` holds or `timeout_ms` (scaled) passes;
 * evaluates to the truth of `cond` at the end. */
#define POLL_UNTIL(ctx, cond, timeout_ms)                                              \
    __extension__({                                                                    \
        int64_t poll_deadline_ = check_now_ms() + check_scale_ms(timeout_ms);          \
        while (!(cond) && check_now_ms() < poll_deadline_)                             \
            (void)rosco_poll((ctx), 10, NULL);                                         \
        (cond) ? 1 : 0;                                                                \
    })

/* Polls `ctx` for `ms` milliseconds whatever happens (to see that nothing arrives). */
static inline void check_poll_for(rosco_ctx ctx, int ms)
{
    int64_t deadline = check_now_ms() + ms;
    while (check_now_ms() < deadline)
        (void)rosco_poll(ctx, 10, NULL);
}

/* Runs `fn(arg)` in a forked child and returns its wait status (for calls that might
 * crash the process: a crash then fails one check instead of the whole test). Call it
 * only while the process has no other threads (no context in a threaded mode). */
static inline int check_in_child(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* A Rust panic in the child prints one line, not a backtrace. */
        setenv("RUST_BACKTRACE", "0", 1);
        _exit(fn(arg));
    }
    int status = 0;
    int64_t deadline = check_now_ms() + check_scale_ms(20000);
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 || check_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        check_sleep_ms(5);
    }
}

/* Did the child exit normally with status 0? Prints how it ended otherwise. */
static inline int check_child_ok_(int status, const char *file, int line, const char *expr)
{
    int ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    atomic_fetch_add(check_counter_(0), 1);
    if (!ok) {
        atomic_fetch_add(check_counter_(1), 1);
        if (status == -1)
            fprintf(stderr, "%s:%d: CHECK failed: %s: child hung or could not fork\n", file,
                    line, expr);
        else if (WIFSIGNALED(status))
            fprintf(stderr, "%s:%d: CHECK failed: %s: child killed by signal %d\n", file,
                    line, expr, WTERMSIG(status));
        else
            fprintf(stderr, "%s:%d: CHECK failed: %s: child exited with %d\n", file, line,
                    expr, WEXITSTATUS(status));
        fflush(stderr);
    }
    return ok;
}
#define CHECK_CHILD_OK(status) check_child_ok_((status), __FILE__, __LINE__, #status)

/* A unique path under /tmp for a Unix socket. */
static inline void check_temp_path(char *buf, size_t len, const char *tag)
{
    snprintf(buf, len, "/tmp/rosco-ctest-%ld-%s.sock", (long)getpid(), tag);
}

/* Opens a UDP listener on 127.0.0.1 (any port) named `in_name` and a sender to it named
 * `out_name`; returns ROSCO_OK or the first failure. `port` may be NULL. */
static inline rosco_status check_udp_pair(rosco_ctx ctx, const char *in_name,
                                          const char *out_name, rosco_channel *in,
                                          rosco_channel *out, uint16_t *port)
{
    uint16_t p = 0;
    char url[64];
    rosco_status s = rosco_channel_open(ctx, in_name, "osc.udp://:0?bind=127.0.0.1", in);
    if (s != ROSCO_OK)
        return s;
    s = rosco_channel_port(ctx, *in, &p);
    if (s != ROSCO_OK)
        return s;
    if (port)
        *port = p;
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", (unsigned)p);
    return rosco_channel_open(ctx, out_name, url, out);
}

/* Options for `mode` with the other fields at their defaults. */
static inline rosco_ctx_options check_options(int32_t mode)
{
    rosco_ctx_options o;
    rosco_ctx_options_init(&o);
    o.mode = mode;
    return o;
}

static inline const char *check_mode_name(int32_t mode)
{
    switch (mode) {
    case ROSCO_MODE_POLL:
        return "poll";
    case ROSCO_MODE_IO_THREAD:
        return "io-thread";
    case ROSCO_MODE_THREADED:
        return "threaded";
    default:
        return "?";
    }
}

#endif /* ROSCO_TEST_CHECK_H */
