/* Events and logging: BOUND, MALFORMED (from rosco_send_raw and from plain sockets),
 * CONNECTED / DISCONNECTED / RECONNECTING / GAVE_UP for TCP, LATE, DROPPED, the event
 * fields, which thread events arrive on, and the log callback with its level filter. */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#define MAX_EVENTS 256

struct ev {
    int32_t kind;
    rosco_channel channel;
    char peer[64];
    int has_peer;
    char reason[160];
    int has_reason;
    uint16_t port;
    uint32_t attempt, delay_ms;
    uint64_t count;
    int on_main;
};

struct evlog {
    pthread_mutex_t lock;
    struct ev ev[MAX_EVENTS];
    int n;
    int dropped_records;
};

static pthread_t main_thread;

static void on_event(void *user, const rosco_event *e)
{
    struct evlog *l = user;
    pthread_mutex_lock(&l->lock);
    if (l->n < MAX_EVENTS) {
        struct ev *x = &l->ev[l->n++];
        memset(x, 0, sizeof *x);
        x->kind = e->kind;
        x->channel = e->channel;
        x->has_peer = e->peer != NULL;
        if (e->peer)
            snprintf(x->peer, sizeof x->peer, "%s", e->peer);
        x->has_reason = e->reason != NULL;
        if (e->reason)
            snprintf(x->reason, sizeof x->reason, "%s", e->reason);
        x->port = e->port;
        x->attempt = e->attempt;
        x->delay_ms = e->delay_ms;
        x->count = e->count;
        x->on_main = pthread_equal(pthread_self(), main_thread);
    } else {
        l->dropped_records++;
    }
    pthread_mutex_unlock(&l->lock);
}

static void evlog_init(struct evlog *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
}

static void evlog_clear(struct evlog *l)
{
    pthread_mutex_lock(&l->lock);
    l->n = 0;
    pthread_mutex_unlock(&l->lock);
}

/* Index of the first event of `kind` on `ch` (any channel for id 0), or -1. */
static int find_event(struct evlog *l, int32_t kind, rosco_channel ch)
{
    int found = -1;
    pthread_mutex_lock(&l->lock);
    for (int i = 0; i < l->n && found < 0; i++)
        if (l->ev[i].kind == kind && (ch.id == 0 || l->ev[i].channel.id == ch.id))
            found = i;
    pthread_mutex_unlock(&l->lock);
    return found;
}

static int count_events(struct evlog *l, int32_t kind)
{
    int n = 0;
    pthread_mutex_lock(&l->lock);
    for (int i = 0; i < l->n; i++)
        n += l->ev[i].kind == kind;
    pthread_mutex_unlock(&l->lock);
    return n;
}

static struct ev get_event(struct evlog *l, int i)
{
    struct ev copy;
    pthread_mutex_lock(&l->lock);
    copy = l->ev[i];
    pthread_mutex_unlock(&l->lock);
    return copy;
}

/* Polls (or waits, in threaded mode) until an event of `kind` on `ch` is logged. */
static int wait_event(rosco_ctx ctx, int32_t mode, struct evlog *l, int32_t kind,
                      rosco_channel ch, int ms)
{
    int64_t deadline = check_now_ms() + check_scale_ms(ms);
    while (find_event(l, kind, ch) < 0 && check_now_ms() < deadline) {
        if (mode == ROSCO_MODE_THREADED)
            check_sleep_ms(2);
        else
            (void)rosco_poll(ctx, 10, NULL);
    }
    return find_event(l, kind, ch);
}

/* ---- log callback -------------------------------------------------------------------- */

struct loglog {
    atomic_int calls;
    atomic_int bad_level;
    atomic_int debug_calls;
    atomic_int empty;
};

static void on_log(void *user, int32_t level, const char *message)
{
    struct loglog *l = user;
    if (level < 1 || level > 4)
        atomic_fetch_add(&l->bad_level, 1);
    if (level == 4)
        atomic_fetch_add(&l->debug_calls, 1);
    if (message == NULL || message[0] == '\0')
        atomic_fetch_add(&l->empty, 1);
    atomic_fetch_add(&l->calls, 1);
}

/* ---- plain sockets ------------------------------------------------------------------- */

static int raw_udp_send(uint16_t port, const void *data, size_t len, uint16_t *from_port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ssize_t n = sendto(fd, data, len, 0, (struct sockaddr *)&to, sizeof to);
    struct sockaddr_in me;
    socklen_t mlen = sizeof me;
    if (from_port && getsockname(fd, (struct sockaddr *)&me, &mlen) == 0)
        *from_port = ntohs(me.sin_port);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

static int raw_tcp_connect(uint16_t port, uint16_t *from_port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in me;
    socklen_t mlen = sizeof me;
    if (from_port && getsockname(fd, (struct sockaddr *)&me, &mlen) == 0)
        *from_port = ntohs(me.sin_port);
    return fd;
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_bound_and_malformed(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    struct evlog *l = malloc(sizeof *l);
    rosco_channel in, out, tl;
    uint16_t port = 0, out_port = 0, tport = 0;
    int before = CHECK_FAILURES;

    evlog_init(l);
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx))) {
        free(l);
        return;
    }
    CHECK_OK(rosco_ctx_set_event_callback(ctx, on_event, l));

    /* BOUND for listeners, with their real port; none for senders. */
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, &port));
    CHECK_OK(rosco_channel_port(ctx, out, &out_port));
    CHECK_OK(rosco_channel_open(ctx, "tl", "osc.tcp://:0?bind=127.0.0.1", &tl));
    CHECK_OK(rosco_channel_port(ctx, tl, &tport));
    int i = wait_event(ctx, mode, l, ROSCO_EVENT_BOUND, in, 2000);
    if (CHECK(i >= 0)) {
        struct ev e = get_event(l, i);
        CHECK_INT(e.port, port);
        CHECK(!e.has_reason);
        /* "It runs on the thread doing the I/O": the I/O thread outside poll mode. */
        if (mode != ROSCO_MODE_POLL && !CHECK(!e.on_main))
            fprintf(stderr, "  BOUND ran on the thread that opened the channel, not the I/O "
                            "thread (%s mode)\n", check_mode_name(mode));
    }
    i = wait_event(ctx, mode, l, ROSCO_EVENT_BOUND, tl, 2000);
    if (CHECK(i >= 0))
        CHECK_INT(get_event(l, i).port, tport);
    CHECK(find_event(l, ROSCO_EVENT_BOUND, out) < 0);

    /* MALFORMED: garbage from a rosco sender. */
    const uint8_t garbage[] = {'n', 'o', 'p', 'e', 1, 2, 3};
    CHECK_OK(rosco_send_raw(ctx, out, garbage, sizeof garbage));
    i = wait_event(ctx, mode, l, ROSCO_EVENT_MALFORMED, in, 3000);
    if (CHECK(i >= 0)) {
        struct ev e = get_event(l, i);
        char want[32];
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)out_port);
        CHECK(e.has_peer);
        CHECK_STR(e.peer, want);
        CHECK(e.has_reason && e.reason[0] != '\0');
        if (mode != ROSCO_MODE_POLL)
            CHECK(!e.on_main);
        else
            CHECK(e.on_main);
    }
    /* MALFORMED: a truncated message from a plain socket. */
    evlog_clear(l);
    const uint8_t truncated[] = {'/', 'a', 0, 0, ',', 'i', 0, 0, 0, 0}; /* int cut short */
    uint16_t raw_port = 0;
    CHECK(raw_udp_send(port, truncated, sizeof truncated, &raw_port) == 0);
    i = wait_event(ctx, mode, l, ROSCO_EVENT_MALFORMED, in, 3000);
    if (CHECK(i >= 0)) {
        struct ev e = get_event(l, i);
        char want[32];
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)raw_port);
        CHECK_STR(e.peer, want);
        CHECK(e.has_reason);
    }
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(ctx, in, &st));
    CHECK_INT(st.malformed, 2);
    CHECK_INT(st.packets_in, 2);

    /* Without a callback nothing is reported (but still counted). */
    CHECK_OK(rosco_ctx_set_event_callback(ctx, NULL, NULL));
    evlog_clear(l);
    CHECK_OK(rosco_send_raw(ctx, out, garbage, sizeof garbage));
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    while (check_now_ms() < deadline) {
        if (mode == ROSCO_MODE_THREADED)
            check_sleep_ms(2);
        else
            (void)rosco_poll(ctx, 10, NULL);
        CHECK_OK(rosco_channel_stats_get(ctx, in, &st));
        if (st.malformed == 3)
            break;
    }
    CHECK_INT(st.malformed, 3);
    rosco_channel extra;
    CHECK_OK(rosco_channel_open(ctx, "extra", "osc.udp://:0?bind=127.0.0.1", &extra));
    CHECK_INT(l->n, 0);

    CHECK_OK(rosco_ctx_free(ctx));
    free(l);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(mode));
}

static void test_tcp_lifecycle(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    struct evlog *l = malloc(sizeof *l);
    rosco_channel tl, tc;
    uint16_t port = 0, cport = 0;
    char url[128], want[32];
    int before = CHECK_FAILURES;

    evlog_init(l);
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx))) {
        free(l);
        return;
    }
    CHECK_OK(rosco_ctx_set_event_callback(ctx, on_event, l));
    CHECK_OK(rosco_channel_open(ctx, "tl", "osc.tcp://:0?bind=127.0.0.1", &tl));
    CHECK_OK(rosco_channel_port(ctx, tl, &port));
    snprintf(url, sizeof url, "osc.tcp://127.0.0.1:%u?retries=1&backoff_ms=20", (unsigned)port);
    CHECK_OK(rosco_channel_open(ctx, "tc", url, &tc));

    /* CONNECTED on both ends. */
    int ic = wait_event(ctx, mode, l, ROSCO_EVENT_CONNECTED, tc, 3000);
    int il = wait_event(ctx, mode, l, ROSCO_EVENT_CONNECTED, tl, 3000);
    CHECK(ic >= 0);
    CHECK(il >= 0);
    CHECK_OK(rosco_channel_port(ctx, tc, &cport));
    if (ic >= 0) {
        struct ev e = get_event(l, ic);
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port);
        CHECK_STR(e.peer, want);
    }
    if (il >= 0) {
        struct ev e = get_event(l, il);
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)cport);
        CHECK_STR(e.peer, want);
    }

    /* A plain socket that connects and sends garbage: CONNECTED, MALFORMED, DISCONNECTED. */
    evlog_clear(l);
    uint16_t raw_port = 0;
    int fd = raw_tcp_connect(port, &raw_port);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const uint8_t frame[] = {0, 0, 0, 8, 'b', 'a', 'd', '!', 'b', 'a', 'd', '!'};
        CHECK(write(fd, frame, sizeof frame) == (ssize_t)sizeof frame);
        int im = wait_event(ctx, mode, l, ROSCO_EVENT_MALFORMED, tl, 3000);
        int id = wait_event(ctx, mode, l, ROSCO_EVENT_DISCONNECTED, tl, 3000);
        CHECK(find_event(l, ROSCO_EVENT_CONNECTED, tl) >= 0);
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)raw_port);
        if (CHECK(im >= 0))
            CHECK_STR(get_event(l, im).peer, want);
        if (CHECK(id >= 0)) {
            struct ev e = get_event(l, id);
            CHECK_STR(e.peer, want);
            CHECK(e.has_reason && e.reason[0] != '\0');
        }
        close(fd);
    }

    /* The client closes: the listener sees DISCONNECTED. */
    evlog_clear(l);
    fd = raw_tcp_connect(port, &raw_port);
    CHECK(fd >= 0);
    CHECK(wait_event(ctx, mode, l, ROSCO_EVENT_CONNECTED, tl, 3000) >= 0);
    if (fd >= 0)
        close(fd);
    int id = wait_event(ctx, mode, l, ROSCO_EVENT_DISCONNECTED, tl, 3000);
    if (CHECK(id >= 0)) {
        struct ev e = get_event(l, id);
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)raw_port);
        CHECK_STR(e.peer, want);
        CHECK(e.has_reason);
    }

    /* The listener goes: the client sees DISCONNECTED, RECONNECTING, then GAVE_UP. */
    evlog_clear(l);
    CHECK_OK(rosco_channel_close(ctx, tl));
    int dc = wait_event(ctx, mode, l, ROSCO_EVENT_DISCONNECTED, tc, 3000);
    int rc = wait_event(ctx, mode, l, ROSCO_EVENT_RECONNECTING, tc, 3000);
    int gu = wait_event(ctx, mode, l, ROSCO_EVENT_GAVE_UP, tc, 5000);
    CHECK(dc >= 0);
    if (CHECK(rc >= 0)) {
        struct ev e = get_event(l, rc);
        CHECK_INT(e.attempt, 1);
        CHECK(e.delay_ms <= 20);
        /* Why the connection ended. */
        CHECK(e.has_reason && e.reason[0] != '\0');
    }
    if (CHECK(gu >= 0)) {
        /* Why the last attempt failed: nobody listens any more. */
        struct ev e = get_event(l, gu);
        if (!CHECK(e.has_reason && strstr(e.reason, "refused") != NULL))
            fprintf(stderr, "  GAVE_UP reason: %s\n", e.has_reason ? e.reason : "(NULL)");
    }
    /* In order: the connection ends, a retry is announced, the retry fails, it gives up. */
    if (dc >= 0 && rc >= 0 && !CHECK(dc < rc))
        fprintf(stderr, "  RECONNECTING (event %d) came before DISCONNECTED (event %d)\n", rc,
                dc);
    if (rc >= 0 && gu >= 0)
        CHECK(rc < gu);
    CHECK_INT(count_events(l, ROSCO_EVENT_GAVE_UP), 1);
    CHECK_ERR(rosco_channel_flush(ctx, tc, 0), ROSCO_ERR_CLOSED);

    /* A frame over the listener's limit: MALFORMED and the peer is dropped. */
    rosco_channel small, sc;
    evlog_clear(l);
    CHECK_OK(rosco_channel_open(ctx, "small", "osc.tcp://:0?bind=127.0.0.1&max_frame=16",
                                &small));
    CHECK_OK(rosco_channel_port(ctx, small, &port));
    snprintf(url, sizeof url, "osc.tcp://127.0.0.1:%u?reconnect=0", (unsigned)port);
    CHECK_OK(rosco_channel_open(ctx, "sc", url, &sc));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/a/long/address/for/a/big/frame"));
    CHECK_OK(rosco_builder_add_str(b, "more than sixteen bytes in all"));
    CHECK_OK(rosco_send(ctx, sc, b));
    CHECK(wait_event(ctx, mode, l, ROSCO_EVENT_MALFORMED, small, 3000) >= 0);
    CHECK(wait_event(ctx, mode, l, ROSCO_EVENT_DISCONNECTED, small, 3000) >= 0);
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(ctx, small, &st));
    CHECK(st.malformed >= 1);
    rosco_builder_free(b);

    /* A listener full of peers refuses the next one: DISCONNECTED, "too many peers". */
    rosco_channel one;
    evlog_clear(l);
    CHECK_OK(rosco_channel_open(ctx, "one", "osc.tcp://:0?bind=127.0.0.1&max_clients=1", &one));
    CHECK_OK(rosco_channel_port(ctx, one, &port));
    int fd1 = raw_tcp_connect(port, NULL);
    CHECK(fd1 >= 0);
    CHECK(wait_event(ctx, mode, l, ROSCO_EVENT_CONNECTED, one, 3000) >= 0);
    uint16_t second_port = 0;
    int fd2 = raw_tcp_connect(port, &second_port);
    CHECK(fd2 >= 0);
    int dd = wait_event(ctx, mode, l, ROSCO_EVENT_DISCONNECTED, one, 3000);
    if (CHECK(dd >= 0)) {
        struct ev e = get_event(l, dd);
        CHECK(e.has_reason && strstr(e.reason, "too many") != NULL);
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)second_port);
        CHECK_STR(e.peer, want);
    }
    CHECK_INT(count_events(l, ROSCO_EVENT_CONNECTED), 1);
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);

    CHECK_OK(rosco_ctx_free(ctx));
    free(l);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(mode));
}

static int32_t ignore_msg(void *user, const rosco_msg *m)
{
    (void)m;
    atomic_fetch_add((atomic_int *)user, 1);
    return 0;
}

/* LATE: a bundle whose time has passed is delivered at once, counted and reported. */
static void test_late(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    struct evlog *l = malloc(sizeof *l);
    rosco_channel in, out;
    rosco_method m;
    atomic_int got = 0;
    int before = CHECK_FAILURES;

    evlog_init(l);
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx))) {
        free(l);
        return;
    }
    CHECK_OK(rosco_ctx_set_event_callback(ctx, on_event, l));
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, NULL));
    CHECK_OK(rosco_method_add(ctx, NULL, NULL, ignore_msg, &got, NULL, &m));
    rosco_builder *b = rosco_builder_new();
    /* Ten seconds ago. */
    CHECK_OK(rosco_builder_bundle_begin(b, rosco_timetag_from_unix((double)time(NULL) - 10)));
    CHECK_OK(rosco_builder_message(b, "/late"));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_send(ctx, out, b));
    int i = wait_event(ctx, mode, l, ROSCO_EVENT_LATE, in, 3000);
    CHECK(i >= 0);
    CHECK_INT(atomic_load(&got), 1);
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(ctx, in, &st));
    CHECK_INT(st.late, 1);
    /* An immediate bundle is not late. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/now"));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_send(ctx, out, b));
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    while (atomic_load(&got) < 2 && check_now_ms() < deadline) {
        if (mode == ROSCO_MODE_THREADED)
            check_sleep_ms(2);
        else
            (void)rosco_poll(ctx, 10, NULL);
    }
    CHECK_INT(atomic_load(&got), 2);
    CHECK_OK(rosco_channel_stats_get(ctx, in, &st));
    CHECK_INT(st.late, 1);
    CHECK_INT(count_events(l, ROSCO_EVENT_LATE), 1);
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
    free(l);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(mode));
}

/* DROPPED: io-thread mode with a one-packet queue and nobody polling. */
static void test_dropped(void)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_IO_THREAD);
    rosco_ctx ctx;
    struct evlog *l = malloc(sizeof *l);
    rosco_channel in, out;
    rosco_method m;
    atomic_int got = 0;

    evlog_init(l);
    o.queue_capacity = 1;
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx))) {
        free(l);
        return;
    }
    CHECK_OK(rosco_ctx_set_event_callback(ctx, on_event, l));
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, NULL));
    CHECK_OK(rosco_method_add(ctx, NULL, NULL, ignore_msg, &got, NULL, &m));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/flood"));
    for (int i = 0; i < 20; i++)
        CHECK_OK(rosco_send(ctx, out, b));
    rosco_channel_stats st;
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    /* Each packet is counted in before the full queue refuses it, then counted dropped and
     * reported: all three are waited for. */
    do {
        check_sleep_ms(5);
        CHECK_OK(rosco_channel_stats_get(ctx, in, &st));
    } while ((st.packets_in < 20 || st.dropped < 19 ||
              count_events(l, ROSCO_EVENT_DROPPED) < 19) &&
             check_now_ms() < deadline);
    CHECK_INT(st.packets_in, 20);
    CHECK_INT(st.dropped, 19);
    int n = count_events(l, ROSCO_EVENT_DROPPED);
    CHECK_INT(n, 19);
    if (n > 0) {
        struct ev e = get_event(l, find_event(l, ROSCO_EVENT_DROPPED, in));
        CHECK_INT(e.count, 1); /* the channel's running total */
        CHECK(!e.on_main);
    }
    /* The one queued packet is still delivered. */
    CHECK(POLL_UNTIL(ctx, atomic_load(&got) == 1, 3000));
    check_poll_for(ctx, 30);
    CHECK_INT(atomic_load(&got), 1);
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
    free(l);
}

static void test_log(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    struct loglog ll = {0, 0, 0, 0};
    rosco_channel ch;
    int before = CHECK_FAILURES;

    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    /* Debug level: channel events are logged. */
    CHECK_OK(rosco_ctx_set_log_callback(ctx, 4, on_log, &ll));
    CHECK_OK(rosco_channel_open(ctx, "a", "osc.udp://:0?bind=127.0.0.1", &ch));
    int64_t deadline = check_now_ms() + check_scale_ms(2000);
    while (atomic_load(&ll.debug_calls) == 0 && check_now_ms() < deadline) {
        if (mode == ROSCO_MODE_THREADED)
            check_sleep_ms(2);
        else
            (void)rosco_poll(ctx, 10, NULL);
    }
    CHECK(atomic_load(&ll.debug_calls) > 0);
    CHECK_INT(atomic_load(&ll.bad_level), 0);
    CHECK_INT(atomic_load(&ll.empty), 0);
    /* Error level only: debug messages are filtered out. */
    CHECK_OK(rosco_ctx_set_log_callback(ctx, 1, on_log, &ll));
    int debug_before = atomic_load(&ll.debug_calls);
    CHECK_OK(rosco_channel_open(ctx, "b", "osc.udp://:0?bind=127.0.0.1", &ch));
    if (mode == ROSCO_MODE_THREADED)
        check_sleep_ms(50);
    else
        check_poll_for(ctx, 50);
    CHECK_INT(atomic_load(&ll.debug_calls), debug_before);
    /* Removed: no more calls. */
    CHECK_OK(rosco_ctx_set_log_callback(ctx, 4, NULL, NULL));
    int calls = atomic_load(&ll.calls);
    CHECK_OK(rosco_channel_open(ctx, "c", "osc.udp://:0?bind=127.0.0.1", &ch));
    if (mode == ROSCO_MODE_THREADED)
        check_sleep_ms(50);
    else
        check_poll_for(ctx, 50);
    CHECK_INT(atomic_load(&ll.calls), calls);
    CHECK_OK(rosco_ctx_free(ctx));
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(mode));
}

/* Callbacks "may send, add and remove methods and close channels": an event callback that
 * uses the very channel the event is about must not deadlock. Runs in a child process
 * with an alarm, so a hang fails one check instead of the whole test. */
struct reentry {
    rosco_ctx ctx;
    atomic_int reconnecting, gave_up, calls_done;
    rosco_status st[4];
};

static void reentrant_event(void *user, const rosco_event *e)
{
    struct reentry *r = user;
    if (e->kind != ROSCO_EVENT_RECONNECTING && e->kind != ROSCO_EVENT_GAVE_UP)
        return;
    if (e->kind == ROSCO_EVENT_RECONNECTING)
        atomic_fetch_add(&r->reconnecting, 1);
    else
        atomic_fetch_add(&r->gave_up, 1);
    uint16_t port;
    char buf[128];
    rosco_builder *b = rosco_builder_new();
    rosco_builder_message(b, "/from/event");
    r->st[0] = rosco_channel_port(r->ctx, e->channel, &port);
    r->st[1] = rosco_channel_url(r->ctx, e->channel, buf, sizeof buf, NULL);
    r->st[2] = rosco_send(r->ctx, e->channel, b);
    r->st[3] = rosco_channel_flush(r->ctx, e->channel, 0);
    rosco_builder_free(b);
    atomic_fetch_add(&r->calls_done, 1);
}

static int reentry_child(void *arg)
{
    int32_t mode = *(const int32_t *)arg;
    rosco_ctx_options o = check_options(mode);
    struct reentry r;
    rosco_channel l, t;
    uint16_t port;
    char url[96];
    memset(&r, 0, sizeof r);
    alarm((unsigned)check_scale_ms(4000) / 1000);
    if (rosco_ctx_new(&o, &r.ctx) != ROSCO_OK)
        return 2;
    rosco_ctx_set_event_callback(r.ctx, reentrant_event, &r);
    /* A port nobody listens on (a listener opened and closed in poll mode). */
    rosco_ctx tmp;
    rosco_ctx_new(NULL, &tmp);
    rosco_channel_open(tmp, "l", "osc.tcp://:0?bind=127.0.0.1", &l);
    rosco_channel_port(tmp, l, &port);
    rosco_ctx_free(tmp);
    snprintf(url, sizeof url, "osc.tcp://127.0.0.1:%u?retries=1&backoff_ms=10", (unsigned)port);
    if (rosco_channel_open(r.ctx, "t", url, &t) != ROSCO_OK)
        return 3;
    int64_t deadline = check_now_ms() + check_scale_ms(2500);
    while (atomic_load(&r.gave_up) == 0 && check_now_ms() < deadline) {
        if (mode == ROSCO_MODE_THREADED)
            check_sleep_ms(5);
        else
            (void)rosco_poll(r.ctx, 10, NULL);
    }
    /* A callback that has started may still be running on the I/O thread: give it time
     * to finish. One that never finishes is stuck inside rosco (the alarm ends a hang). */
    deadline = check_now_ms() + check_scale_ms(1000);
    while (atomic_load(&r.reconnecting) + atomic_load(&r.gave_up) > atomic_load(&r.calls_done) &&
           check_now_ms() < deadline)
        check_sleep_ms(5);
    if (atomic_load(&r.reconnecting) + atomic_load(&r.gave_up) > atomic_load(&r.calls_done))
        return 5;
    if (atomic_load(&r.reconnecting) < 1 || atomic_load(&r.gave_up) != 1 ||
        atomic_load(&r.calls_done) != 2)
        return 4;
    rosco_ctx_free(r.ctx);
    return 0;
}

static void test_reentrant_events(int32_t mode)
{
    int status = check_in_child(reentry_child, &mode);
    if (!CHECK_CHILD_OK(status))
        fprintf(stderr, "  an event callback calling rosco_channel_port/url/send/flush on the "
                        "channel of a RECONNECTING or GAVE_UP event %s (%s mode)\n",
                (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) ||
                        (WIFEXITED(status) && WEXITSTATUS(status) == 5)
                    ? "deadlocked"
                    : "failed",
                check_mode_name(mode));
}

/* ---- removing a callback while events flow ------------------------------------------ */

struct owner {
    atomic_int released; /* the caller has removed the callback and let `user` go */
    atomic_int after_release;
};

static void owned_event(void *user, const rosco_event *e)
{
    struct owner *o = user;
    (void)e;
    if (atomic_load(&o->released))
        atomic_fetch_add(&o->after_release, 1);
}

struct flood {
    atomic_int stop;
    uint16_t port;
};

static void *flood_malformed(void *arg)
{
    struct flood *f = arg;
    const struct timespec pause = {0, 100000};
    while (!atomic_load(&f->stop)) {
        for (int i = 0; i < 50; i++)
            raw_udp_send(f->port, "garbage!", 8, NULL);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/* Once rosco_ctx_set_event_callback returns, the callback it replaced is not running and
 * does not run again: its `user` may be freed at once. (It once could still be running, or
 * start, on the I/O thread.) */
static void test_replace_while_events_flow(void)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_THREADED);
    rosco_ctx ctx;
    rosco_channel in;
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    struct flood f = {0};
    CHECK_OK(rosco_channel_open(ctx, "in", "osc.udp://:0?bind=127.0.0.1", &in));
    CHECK_OK(rosco_channel_port(ctx, in, &f.port));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, flood_malformed, &f) == 0);
    enum { ROUNDS = 3000 };
    const struct timespec pause = {0, 200000};
    static struct owner owners[ROUNDS];
    /* Fewer rounds where everything runs ten times slower (valgrind). */
    const int rounds = ROUNDS / check_slow_factor();
    for (int i = 0; i < rounds; i++) {
        CHECK_OK(rosco_ctx_set_event_callback(ctx, owned_event, &owners[i]));
        nanosleep(&pause, NULL);
        CHECK_OK(rosco_ctx_set_event_callback(ctx, NULL, NULL));
        atomic_store(&owners[i].released, 1);
    }
    atomic_store(&f.stop, 1);
    pthread_join(t, NULL);
    int late = 0;
    for (int i = 0; i < rounds; i++)
        late += atomic_load(&owners[i].after_release);
    CHECK_INT(late, 0);
    CHECK_OK(rosco_ctx_free(ctx));
}

int main(void)
{
    const int32_t modes[] = {ROSCO_MODE_POLL, ROSCO_MODE_IO_THREAD, ROSCO_MODE_THREADED};
    main_thread = pthread_self();
    /* First, while this process has no other threads (it forks). */
    for (int i = 0; i < 3; i++)
        test_reentrant_events(modes[i]);
    for (int i = 0; i < 3; i++) {
        test_bound_and_malformed(modes[i]);
        test_tcp_lifecycle(modes[i]);
        test_late(modes[i]);
        test_log(modes[i]);
    }
    test_dropped();
    test_replace_while_events_flow();
    return check_summary("events_test");
}
