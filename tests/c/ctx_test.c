/* Contexts: options, creation in every mode, stale and invalid handles, rosco_poll, the
 * wake-up descriptor, and freeing a context (also from its own callback and while another
 * thread polls it). */
#include "check.h"

#include <poll.h>
#include <pthread.h>
#include <stddef.h>

static atomic_int freed_count;

static void count_free(void *user)
{
    (void)user;
    atomic_fetch_add(&freed_count, 1);
}

static int32_t ignore_msg(void *user, const rosco_msg *m)
{
    (void)user;
    (void)m;
    return 0;
}

static void ignore_event(void *user, const rosco_event *e)
{
    (void)user;
    (void)e;
}

static void ignore_log(void *user, int32_t level, const char *message)
{
    (void)user;
    (void)level;
    (void)message;
}

static void ignore_bundle(void *user, uint64_t timetag)
{
    (void)user;
    (void)timetag;
}

/* Every function taking a context refuses `ctx` with ROSCO_ERR_HANDLE. */
static void expect_stale_ctx(rosco_ctx ctx, const char *why)
{
    int before = CHECK_FAILURES;
    rosco_channel ch = {0};
    rosco_method m = {0};
    uint16_t port;
    int32_t fd = 1234;
    uint32_t n = 77;
    char buf[64];
    size_t needed;
    rosco_channel_stats st;
    const uint8_t raw[] = "/x\0\0,\0\0\0";
    rosco_builder *b = rosco_builder_new();
    CHECK(b != NULL);
    CHECK_OK(rosco_builder_message(b, "/x"));

    CHECK_ERR(rosco_poll(ctx, 0, &n), ROSCO_ERR_HANDLE);
    CHECK_INT(n, 77); /* not written on failure */
    CHECK_ERR(rosco_poll(ctx, 0, NULL), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_poll(ctx, -1, NULL), ROSCO_ERR_HANDLE); /* returns at once */
    CHECK_ERR(rosco_ctx_wakeup_fd(ctx, &fd), ROSCO_ERR_HANDLE);
    CHECK_INT(fd, 1234);
    CHECK_ERR(rosco_ctx_set_event_callback(ctx, ignore_event, NULL), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_ctx_set_event_callback(ctx, NULL, NULL), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_ctx_set_log_callback(ctx, 4, ignore_log, NULL), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_ctx_set_log_callback(ctx, 1, NULL, NULL), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_ctx_set_bundle_callbacks(ctx, ignore_bundle, ignore_bundle, NULL),
              ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_ctx_set_bundle_callbacks(ctx, NULL, NULL, NULL), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_open(ctx, "x", "osc.udp://:0?bind=127.0.0.1", &ch),
              ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_close(ctx, ch), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_port(ctx, ch, &port), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_find(ctx, "_local", &ch), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_url(ctx, ch, buf, sizeof buf, &needed), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_stats_get(ctx, ch, &st), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_flush(ctx, ch, 0), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_send(ctx, ch, b), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_send_raw(ctx, ch, raw, 8), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_method_remove(ctx, m), ROSCO_ERR_HANDLE);
    /* A failed rosco_method_add still frees the user data, exactly once. */
    int freed = atomic_load(&freed_count);
    CHECK_ERR(rosco_method_add(ctx, "/x", NULL, ignore_msg, NULL, count_free, &m),
              ROSCO_ERR_HANDLE);
    CHECK_INT(atomic_load(&freed_count), freed + 1);
    CHECK_ERR(rosco_ctx_free(ctx), ROSCO_ERR_HANDLE);
    rosco_builder_free(b);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (in expect_stale_ctx: %s)\n", why);
}

static void test_options_init(void)
{
    rosco_ctx_options o;
    memset(&o, 0xAB, sizeof o);
    CHECK_OK(rosco_ctx_options_init(&o));
    CHECK_INT(o.size, sizeof(rosco_ctx_options));
    CHECK_INT(o.mode, ROSCO_MODE_POLL);
    CHECK(o.coerce != 0);
    CHECK(o.queue_bundles != 0);
    CHECK_INT(o.max_frame, 1024 * 1024);
    CHECK_INT(o.max_stream_peers, 500);
    CHECK_INT(o.queue_capacity, 4096);
    CHECK_INT(o.stall_timeout_ms, 10000);
    CHECK(o.reconnect != 0);
    CHECK_INT(o.reconnect_initial_ms, 100);
    CHECK_INT(o.reconnect_max_ms, 5000);
    CHECK_INT(o.reconnect_retries, 0);
    CHECK_INT(o.max_held_bytes, 16 * 1024 * 1024);
    CHECK_INT(o.trace, 0);
    CHECK(o.types == NULL);
    CHECK_INT(o.check_address, 0);
    CHECK_INT(o.require_typetags, 0);
    CHECK_INT(o.ascii_only, 0);
    CHECK(o.address_codes == NULL);
    CHECK(o.addresses == NULL);
    CHECK_INT(o.address_count, 0);
    CHECK_INT(o.max_pattern_len, 1024);
    CHECK_INT(o.workers, 0);
    CHECK_ERR(rosco_ctx_options_init_sized(NULL, sizeof o), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_ctx_options_init_sized(&o, 4), ROSCO_ERR_ARG);
    /* A size no version's struct has (a buffer length passed by mistake) writes nothing. */
    CHECK_ERR(rosco_ctx_options_init_sized(&o, (size_t)1 << 20), ROSCO_ERR_ARG);

    /* A program built with an older header has a shorter struct: nothing past it is
     * written, its size says how much it has, and a context takes it. */
    union {
        rosco_ctx_options o;
        unsigned char bytes[sizeof(rosco_ctx_options) + 16];
    } old;
    /* Two past versions: before the codec options, and before the thread hooks (junk
     * where those function pointers would be must never be called). */
    const size_t old_sizes[] = {offsetof(rosco_ctx_options, types),
                                offsetof(rosco_ctx_options, thread_start)};
    for (size_t v = 0; v < sizeof old_sizes / sizeof old_sizes[0]; v++) {
        const size_t old_size = old_sizes[v];
        memset(&old, 0x5A, sizeof old);
        CHECK_OK(rosco_ctx_options_init_sized(&old.o, old_size));
        size_t written_past = 0;
        for (size_t i = old_size; i < sizeof old.bytes; i++)
            written_past += old.bytes[i] != 0x5A;
        CHECK_INT(written_past, 0);
        CHECK_INT(old.o.size, old_size);
        CHECK_INT(old.o.max_held_bytes, 16 * 1024 * 1024);
        old.o.mode = ROSCO_MODE_THREADED; /* a thread, whose hooks must not be the junk */
        rosco_ctx ctx;
        if (CHECK_OK(rosco_ctx_new(&old.o, &ctx)))
            CHECK_OK(rosco_ctx_free(ctx));
    }
}

static void test_new_errors(void)
{
    rosco_ctx ctx = {0x5555};
    rosco_ctx_options o;

    CHECK_ERR(rosco_ctx_new(NULL, NULL), ROSCO_ERR_NULL);
    o = check_options(ROSCO_MODE_POLL);
    CHECK_ERR(rosco_ctx_new(&o, NULL), ROSCO_ERR_NULL);

    /* Unknown modes. */
    const int32_t bad_modes[] = {3, -1, 100, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        o = check_options(bad_modes[i]);
        CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
        CHECK(ctx.id == 0x5555); /* not written on failure */
    }
    /* A size too small to hold even the mode. */
    const uint32_t small[] = {0, 1, 4, 7};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        o = check_options(ROSCO_MODE_POLL);
        o.size = small[i];
        CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    }
    /* Limits that must be at least 1. */
    o = check_options(ROSCO_MODE_POLL);
    o.max_frame = 0;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    o = check_options(ROSCO_MODE_POLL);
    o.max_stream_peers = 0;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    o = check_options(ROSCO_MODE_POLL);
    o.queue_capacity = 0;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    o = check_options(ROSCO_MODE_POLL);
    o.reconnect_initial_ms = 0;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    /* The queue's room is allocated up front: too much once aborted the process. */
    o = check_options(ROSCO_MODE_POLL);
    o.queue_capacity = 0xffffffffu;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    o.queue_capacity = 1048577;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    CHECK(ctx.id == 0x5555);
}

/* max_held_bytes bounds what waits for its time: a bundle over it is dropped, counted and
 * reported; those that fit are held. */
static void test_max_held_bytes(void)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_POLL);
    o.max_held_bytes = 100;
    rosco_ctx ctx;
    rosco_channel local;
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    rosco_builder *b = rosco_builder_new();
    /* Far enough ahead to be held however slowly this runs (valgrind, a loaded machine). */
    uint64_t later = rosco_timetag_add(rosco_timetag_now(), 30.0);
    CHECK_OK(rosco_builder_bundle_begin(b, later));
    CHECK_OK(rosco_builder_message(b, "/held"));
    CHECK_OK(rosco_builder_add_blob(b, (const uint8_t *)"0123456789", 10));
    CHECK_OK(rosco_builder_bundle_end(b));
    for (int i = 0; i < 3; i++)
        CHECK_OK(rosco_send(ctx, local, b));
    check_poll_for(ctx, 200);
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(ctx, local, &st));
    /* 48-byte bundles: two fit in 100 bytes, the third does not. */
    CHECK_INT(st.dropped, 1);
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
}

/* Trace: every packet sent and received, as text and hex, at debug level in the log. */
struct trace_log {
    int sent, received, nul_char;
};

static void on_trace(void *user, int32_t level, const char *message)
{
    struct trace_log *t = user;
    if (level != 4)
        return;
    if (strstr(message, "channel '_local' sends: /traced i 7\n0000  2f 74 72 61"))
        t->sent++;
    if (strstr(message, "channel '_local' receives: /traced i 7\n0000"))
        t->received++;
    /* A `c` of 0 is traced as oscdump prints it, the NUL a space in C. */
    if (strstr(message, "channel '_local' receives: /nul c ' '"))
        t->nul_char++;
}

static void test_trace(void)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_POLL);
    o.trace = ROSCO_TRACE_TEXT | ROSCO_TRACE_HEX;
    rosco_ctx ctx;
    rosco_channel local;
    struct trace_log t = {0, 0, 0};
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(rosco_ctx_set_log_callback(ctx, 4, on_trace, &t));
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/traced"));
    CHECK_OK(rosco_builder_add_i32(b, 7));
    CHECK_OK(rosco_send(ctx, local, b));
    check_poll_for(ctx, 50);
    CHECK_INT(t.sent, 1);
    CHECK_INT(t.received, 1);
    CHECK_OK(rosco_builder_reset(b));
    CHECK_OK(rosco_builder_message(b, "/nul"));
    CHECK_OK(rosco_builder_add_char(b, 0));
    CHECK_OK(rosco_send(ctx, local, b));
    check_poll_for(ctx, 50);
    CHECK_INT(t.nul_char, 1);
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
    /* Only the two flags. */
    o.trace = 4;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
}

static void test_sizes(void)
{
    rosco_ctx ctx;
    int32_t fd;
    rosco_ctx_options o;

    /* Only `size` and `mode` given: the rest are defaults, whatever the bytes hold. */
    o = check_options(ROSCO_MODE_IO_THREAD);
    o.size = 8;
    o.max_frame = 0;
    o.queue_capacity = 0;
    o.reconnect_initial_ms = 0;
    if (CHECK_OK(rosco_ctx_new(&o, &ctx))) {
        CHECK_OK(rosco_ctx_wakeup_fd(ctx, &fd));
        CHECK(fd >= 0); /* the mode was read */
        CHECK_OK(rosco_ctx_free(ctx));
    }
    /* A size that ends just before max_frame ignores it; one that covers it does not. */
    o = check_options(ROSCO_MODE_POLL);
    o.max_frame = 0;
    o.size = (uint32_t)offsetof(rosco_ctx_options, max_frame);
    if (CHECK_OK(rosco_ctx_new(&o, &ctx)))
        CHECK_OK(rosco_ctx_free(ctx));
    o.size = (uint32_t)offsetof(rosco_ctx_options, max_frame) + 2; /* half the field */
    if (CHECK_OK(rosco_ctx_new(&o, &ctx)))
        CHECK_OK(rosco_ctx_free(ctx));
    o.size = (uint32_t)offsetof(rosco_ctx_options, max_frame) + 4;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);

    /* A struct from a later version (larger) is accepted; the extra bytes are ignored. */
    struct {
        rosco_ctx_options o;
        unsigned char extra[64];
    } big;
    memset(&big, 0xFF, sizeof big);
    /* Filled as a newer header would: the fields this library does not know are zeroed,
     * and the size says what it knows. */
    CHECK_OK(rosco_ctx_options_init_sized(&big.o, sizeof big));
    CHECK_INT(big.o.size, sizeof(rosco_ctx_options));
    size_t unknown_set = 0;
    for (size_t i = 0; i < sizeof big.extra; i++)
        unknown_set += big.extra[i] != 0;
    CHECK_INT(unknown_set, 0);
    memset(big.extra, 0xFF, sizeof big.extra);
    big.o.size = (uint32_t)sizeof big;
    big.o.mode = ROSCO_MODE_THREADED;
    if (CHECK_OK(rosco_ctx_new(&big.o, &ctx))) {
        CHECK_OK(rosco_ctx_wakeup_fd(ctx, &fd));
        CHECK_INT(fd, -1);
        CHECK_OK(rosco_ctx_free(ctx));
    }

    /* Non-default but valid values. */
    o = check_options(ROSCO_MODE_POLL);
    o.coerce = 0;
    o.queue_bundles = 0;
    o.max_frame = 1;
    o.max_stream_peers = 1;
    o.queue_capacity = 1;
    o.stall_timeout_ms = 0;
    o.reconnect = 0;
    o.reconnect_initial_ms = 1;
    o.reconnect_max_ms = 0;
    o.reconnect_retries = 1;
    if (CHECK_OK(rosco_ctx_new(&o, &ctx)))
        CHECK_OK(rosco_ctx_free(ctx));
}

/* Creation, the wake-up descriptor and freeing, in one mode. */
static void test_mode_basics(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx = {0};
    int32_t fd = 1234;
    uint32_t n = 99;

    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK(ctx.id != 0);
    CHECK_OK(rosco_ctx_wakeup_fd(ctx, &fd));
    if (mode == ROSCO_MODE_IO_THREAD)
        CHECK(fd >= 0);
    else
        CHECK_INT(fd, -1);
    CHECK_ERR(rosco_ctx_wakeup_fd(ctx, NULL), ROSCO_ERR_NULL);
    CHECK_OK(rosco_poll(ctx, 0, &n));
    CHECK_INT(n, 0);
    CHECK_OK(rosco_poll(ctx, 0, NULL));
    int64_t t0 = check_now_ms();
    CHECK_OK(rosco_poll(ctx, 50, &n));
    CHECK_INT(n, 0);
    CHECK(check_now_ms() - t0 >= 40); /* it waited (nothing to do) */
    CHECK(check_now_ms() - t0 < check_scale_ms(2000));

    /* Callbacks of every kind can be set and removed. */
    CHECK_OK(rosco_ctx_set_event_callback(ctx, ignore_event, NULL));
    CHECK_OK(rosco_ctx_set_event_callback(ctx, NULL, NULL));
    for (int32_t level = 1; level <= 4; level++) {
        CHECK_OK(rosco_ctx_set_log_callback(ctx, level, ignore_log, NULL));
        CHECK_OK(rosco_ctx_set_log_callback(ctx, level, NULL, NULL));
    }
    CHECK_ERR(rosco_ctx_set_log_callback(ctx, 0, ignore_log, NULL), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_ctx_set_log_callback(ctx, 5, ignore_log, NULL), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_ctx_set_log_callback(ctx, -1, NULL, NULL), ROSCO_ERR_ARG);
    CHECK_OK(rosco_ctx_set_bundle_callbacks(ctx, ignore_bundle, NULL, NULL));
    CHECK_OK(rosco_ctx_set_bundle_callbacks(ctx, NULL, ignore_bundle, NULL));
    CHECK_OK(rosco_ctx_set_bundle_callbacks(ctx, NULL, NULL, NULL));

    /* Free with channels and methods in place: their user_free runs once. */
    rosco_channel in, out;
    rosco_method m;
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, NULL));
    int freed = atomic_load(&freed_count);
    CHECK_OK(rosco_method_add(ctx, "/a", NULL, ignore_msg, NULL, count_free, &m));
    CHECK_OK(rosco_method_add(ctx, NULL, NULL, ignore_msg, NULL, count_free, &m));
    CHECK_INT(atomic_load(&freed_count), freed);
    CHECK_OK(rosco_ctx_free(ctx));
    CHECK_INT(atomic_load(&freed_count), freed + 2);
    expect_stale_ctx(ctx, check_mode_name(mode));
    CHECK_INT(atomic_load(&freed_count), freed + 3); /* expect_stale_ctx's failed add */
}

static void test_invalid_handles(void)
{
    expect_stale_ctx((rosco_ctx){0}, "all-zero handle");
    expect_stale_ctx((rosco_ctx){UINT64_MAX}, "all-ones handle");
    expect_stale_ctx((rosco_ctx){0x0000000100000000ULL}, "slot 0 generation 1, never made");
    expect_stale_ctx((rosco_ctx){0x00000001000F4240ULL}, "slot 1000000");

    /* A freed slot reused by a new context: the old handle stays stale. */
    rosco_ctx a, b;
    CHECK_OK(rosco_ctx_new(NULL, &a));
    CHECK_OK(rosco_ctx_free(a));
    CHECK_OK(rosco_ctx_new(NULL, &b));
    CHECK(a.id != b.id);
    expect_stale_ctx(a, "freed, slot reused");
    CHECK_OK(rosco_poll(b, 0, NULL));
    CHECK_OK(rosco_ctx_free(b));
    CHECK_ERR(rosco_ctx_free(b), ROSCO_ERR_HANDLE);

    /* Several contexts at once are independent. */
    rosco_ctx many[8];
    for (int i = 0; i < 8; i++)
        CHECK_OK(rosco_ctx_new(NULL, &many[i]));
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++)
            CHECK(many[i].id != many[j].id);
    for (int i = 0; i < 8; i += 2)
        CHECK_OK(rosco_ctx_free(many[i]));
    for (int i = 1; i < 8; i += 2) {
        rosco_channel local;
        CHECK_OK(rosco_channel_find(many[i], "_local", &local));
        CHECK_OK(rosco_ctx_free(many[i]));
    }
}

/* io-thread mode: the descriptor is readable exactly while a message waits. */
static atomic_int wake_hits;

static int32_t count_hit(void *user, const rosco_msg *m)
{
    (void)m;
    atomic_fetch_add((atomic_int *)user, 1);
    return 0;
}

static int fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t deadline = check_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - check_now_ms());
        int r = poll(&p, 1, left > 0 ? left : 0);
        if (r > 0)
            return (p.revents & POLLIN) != 0;
        if (r == 0 || left <= 0)
            return 0;
    }
}

static void test_wakeup_fd(void)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_IO_THREAD);
    rosco_ctx ctx;
    rosco_channel in, out;
    rosco_method m;
    int32_t fd = -1;
    uint32_t n = 0;

    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, NULL));
    CHECK_OK(rosco_method_add(ctx, "/w", NULL, count_hit, &wake_hits, NULL, &m));
    CHECK_OK(rosco_ctx_wakeup_fd(ctx, &fd));
    CHECK(fd >= 0);
    CHECK(!fd_readable(fd, 0));

    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/w"));
    CHECK_OK(rosco_builder_add_i32(b, 1));
    CHECK_OK(rosco_send(ctx, out, b));
    CHECK(fd_readable(fd, check_scale_ms(3000)));
    /* Nothing is dispatched until rosco_poll. */
    check_sleep_ms(20);
    CHECK_INT(atomic_load(&wake_hits), 0);
    CHECK(fd_readable(fd, 0)); /* still readable: the message still waits */
    CHECK_OK(rosco_poll(ctx, 0, &n));
    CHECK_INT(n, 1);
    CHECK_INT(atomic_load(&wake_hits), 1);
    CHECK(!fd_readable(fd, 0));

    /* Two messages: one wake-up, both dispatched by one poll. */
    CHECK_OK(rosco_send(ctx, out, b));
    CHECK_OK(rosco_send(ctx, out, b));
    CHECK(fd_readable(fd, check_scale_ms(3000)));
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    uint32_t total = 0;
    rosco_status polled = ROSCO_OK;
    while (total < 2 && polled == ROSCO_OK && check_now_ms() < deadline) {
        polled = rosco_poll(ctx, 20, &n);
        total += n;
    }
    CHECK_OK(polled);
    CHECK_INT(total, 2);
    CHECK_INT(atomic_load(&wake_hits), 3);
    CHECK(!fd_readable(fd, 0));

    /* _local in io-thread mode goes through the same queue. */
    rosco_channel local;
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    CHECK_OK(rosco_send(ctx, local, b));
    CHECK(fd_readable(fd, check_scale_ms(3000)));
    /* A negative timeout waits until something is dispatched. */
    CHECK_OK(rosco_poll(ctx, -1, &n));
    CHECK_INT(n, 1);
    CHECK_INT(atomic_load(&wake_hits), 4);

    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
}

/* Where callbacks run in each mode. */
static void test_dispatch_modes(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    rosco_channel in, out;
    rosco_method m;
    atomic_int hits = 0;
    uint32_t n = 0;

    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, NULL));
    CHECK_OK(rosco_method_add(ctx, "/m", NULL, count_hit, &hits, NULL, &m));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/m"));
    CHECK_OK(rosco_send(ctx, out, b));
    if (mode == ROSCO_MODE_THREADED) {
        /* Callbacks run on the I/O thread: no rosco_poll needed. */
        int64_t deadline = check_now_ms() + check_scale_ms(3000);
        while (atomic_load(&hits) < 1 && check_now_ms() < deadline)
            check_sleep_ms(5);
        CHECK_INT(atomic_load(&hits), 1);
        CHECK_OK(rosco_poll(ctx, 10, &n)); /* only waits */
        CHECK_INT(n, 0);
    } else {
        check_sleep_ms(50);
        CHECK_INT(atomic_load(&hits), 0); /* not before rosco_poll */
        CHECK(POLL_UNTIL(ctx, atomic_load(&hits) >= 1, 3000));
        CHECK_INT(atomic_load(&hits), 1);
        /* rosco_poll with a negative timeout returns once something was dispatched. */
        CHECK_OK(rosco_send(ctx, out, b));
        CHECK_OK(rosco_poll(ctx, -1, &n));
        CHECK(n >= 1);
        CHECK_INT(atomic_load(&hits), 2);
    }
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
}

/* rosco_poll from a callback, or concurrently from two threads: ROSCO_ERR_BUSY. */
struct busy_state {
    rosco_ctx ctx;
    atomic_int calls;
    rosco_status inner;
};

static int32_t poll_inside(void *user, const rosco_msg *m)
{
    struct busy_state *s = user;
    (void)m;
    s->inner = rosco_poll(s->ctx, 0, NULL);
    atomic_fetch_add(&s->calls, 1);
    return 0;
}

struct poller_arg {
    rosco_ctx ctx;
    atomic_int started;
    rosco_status result;
    int ms;
    int retry_busy; /* poll again when another thread's poll was in the way */
};

static void *poller_thread(void *arg)
{
    struct poller_arg *p = arg;
    atomic_store(&p->started, 1);
    do
        p->result = rosco_poll(p->ctx, p->ms, NULL);
    while (p->retry_busy && p->result == ROSCO_ERR_BUSY);
    return NULL;
}

static void test_busy(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    struct busy_state s = {.calls = 0, .inner = 12345};
    rosco_method m;
    rosco_channel local;

    if (!CHECK_OK(rosco_ctx_new(&o, &s.ctx)))
        return;
    CHECK_OK(rosco_method_add(s.ctx, "/busy", NULL, poll_inside, &s, NULL, &m));
    CHECK_OK(rosco_channel_find(s.ctx, "_local", &local));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/busy"));
    CHECK_OK(rosco_send(s.ctx, local, b));
    CHECK(POLL_UNTIL(s.ctx, atomic_load(&s.calls) == 1, 3000));
    if (!CHECK_STATUS(s.inner, ROSCO_ERR_BUSY))
        fprintf(stderr, "  rosco_poll from a method callback was not refused (%s mode)\n",
                mode == ROSCO_MODE_THREADED ? "threaded" : "non-threaded");

    /* A second thread polling while this one is inside rosco_poll. */
    /* Polled again until the other thread is inside its long poll: "started" is set just
     * before it enters, and either thread may be descheduled in between. */
    struct poller_arg p = {.ctx = s.ctx, .started = 0, .result = 12345,
                           .ms = check_scale_ms(1500), .retry_busy = 1};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, poller_thread, &p) == 0);
    while (!atomic_load(&p.started))
        check_sleep_ms(1);
    int64_t deadline = check_now_ms() + check_scale_ms(1000);
    while (rosco_poll(s.ctx, 0, NULL) == ROSCO_OK && check_now_ms() < deadline)
        check_sleep_ms(2);
    if (!CHECK_ERR(rosco_poll(s.ctx, 0, NULL), ROSCO_ERR_BUSY))
        fprintf(stderr, "  a second concurrent rosco_poll was not refused (%s mode)\n",
                check_mode_name(mode));
    pthread_join(t, NULL);
    CHECK_OK(p.result);
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(s.ctx));
}

/* Freeing a context from one of its own callbacks. */
struct free_state {
    rosco_ctx ctx;
    atomic_int calls;
    rosco_status free_status;
    rosco_status after;
};

static int32_t free_inside(void *user, const rosco_msg *m)
{
    struct free_state *s = user;
    rosco_channel ch;
    (void)m;
    s->free_status = rosco_ctx_free(s->ctx);
    /* The handle is stale at once, even though this callback still runs. */
    s->after = rosco_channel_find(s->ctx, "_local", &ch);
    atomic_fetch_add(&s->calls, 1);
    return 0;
}

static void test_free_from_callback(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    struct free_state s = {.calls = 0, .free_status = 12345, .after = 12345};
    rosco_method m;
    rosco_channel in, out;
    int freed = atomic_load(&freed_count);

    if (!CHECK_OK(rosco_ctx_new(&o, &s.ctx)))
        return;
    CHECK_OK(check_udp_pair(s.ctx, "in", "out", &in, &out, NULL));
    CHECK_OK(rosco_method_add(s.ctx, "/free", NULL, free_inside, &s, count_free, &m));
    CHECK_OK(rosco_method_add(s.ctx, "/other", NULL, ignore_msg, NULL, count_free, &m));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/free"));
    CHECK_OK(rosco_send(s.ctx, out, b));
    int64_t deadline = check_now_ms() + check_scale_ms(5000);
    if (mode == ROSCO_MODE_THREADED) {
        /* Hold no reference: the context goes on its own I/O thread, in the callback. */
        while (atomic_load(&freed_count) < freed + 2 && check_now_ms() < deadline)
            check_sleep_ms(5);
    } else {
        while (atomic_load(&s.calls) == 0 && check_now_ms() < deadline)
            (void)rosco_poll(s.ctx, 10, NULL);
    }
    CHECK_INT(atomic_load(&s.calls), 1);
    CHECK_STATUS(s.free_status, ROSCO_OK);
    CHECK_STATUS(s.after, ROSCO_ERR_HANDLE);
    CHECK_INT(atomic_load(&freed_count), freed + 2);
    freed = atomic_load(&freed_count);
    expect_stale_ctx(s.ctx, "freed from its callback");
    CHECK_INT(atomic_load(&freed_count), freed + 1);
    rosco_builder_free(b);
}

/* Freeing a context while another thread is inside rosco_poll on it. */
static void test_free_while_polling(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    rosco_method m;
    int freed = atomic_load(&freed_count);

    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(rosco_method_add(ctx, NULL, NULL, ignore_msg, NULL, count_free, &m));
    struct poller_arg p = {.ctx = ctx, .started = 0, .result = 12345,
                           .ms = check_scale_ms(300)};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, poller_thread, &p) == 0);
    while (!atomic_load(&p.started))
        check_sleep_ms(1);
    check_sleep_ms(20);
    CHECK_OK(rosco_ctx_free(ctx));
    pthread_join(t, NULL);
    /* The poll in progress ends normally (or reports the context gone). */
    CHECK(p.result == ROSCO_OK || p.result == ROSCO_ERR_HANDLE || p.result == ROSCO_ERR_CLOSED);
    CHECK_INT(atomic_load(&freed_count), freed + 1);
    CHECK_ERR(rosco_poll(ctx, 0, NULL), ROSCO_ERR_HANDLE);
}

int main(void)
{
    const int32_t modes[] = {ROSCO_MODE_POLL, ROSCO_MODE_IO_THREAD, ROSCO_MODE_THREADED};

    test_options_init();
    test_new_errors();
    test_sizes();
    test_max_held_bytes();
    test_trace();
    test_invalid_handles();
    for (int i = 0; i < 3; i++) {
        int before = CHECK_FAILURES;
        test_mode_basics(modes[i]);
        test_dispatch_modes(modes[i]);
        test_free_from_callback(modes[i]);
        test_free_while_polling(modes[i]);
        /* The header promises ROSCO_ERR_BUSY in every mode ("a second concurrent call, or
         * a call from one of its own callbacks"). */
        test_busy(modes[i]);
        if (CHECK_FAILURES != before)
            fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(modes[i]));
    }
    test_wakeup_fd();
    /* A NULL options pointer means the defaults (poll mode). */
    rosco_ctx ctx;
    int32_t fd = 0;
    CHECK_OK(rosco_ctx_new(NULL, &ctx));
    CHECK_OK(rosco_ctx_wakeup_fd(ctx, &fd));
    CHECK_INT(fd, -1);
    CHECK_OK(rosco_ctx_free(ctx));
    return check_summary("ctx_test");
}
