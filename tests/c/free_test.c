/* rosco_ctx_free stops a context at once, even while another thread is inside a call on
 * it: no method, event or bundle callback starts after it returns, and every user_free
 * has run. (Regression test: freeing used to wait for the other thread's call to end.) */
#include "check.h"
#include <pthread.h>

struct shared {
    rosco_ctx ctx;
    atomic_int polling;
    atomic_int freed;          /* set right after rosco_ctx_free returned */
    atomic_int late_calls;     /* callbacks that started after that */
    atomic_int calls;
    atomic_int user_freed;
};

static int on_msg(void *user, const rosco_msg *m)
{
    struct shared *s = user;
    (void)m;
    if (atomic_load(&s->freed))
        atomic_fetch_add(&s->late_calls, 1);
    atomic_fetch_add(&s->calls, 1);
    return 0;
}

static void on_free(void *user)
{
    struct shared *s = user;
    atomic_fetch_add(&s->user_freed, 1);
}

static void *poller(void *arg)
{
    struct shared *s = arg;
    atomic_store(&s->polling, 1);
    /* Returns early once the context is freed (CLOSED or HANDLE), never crashes. */
    for (int i = 0; i < 20 && !atomic_load(&s->freed); i++)
        rosco_poll(s->ctx, 100, NULL);
    return NULL;
}

static void run(int32_t mode)
{
    struct shared s = {0};
    rosco_ctx_options o = check_options(mode);
    rosco_channel in, out;
    rosco_method m;
    uint16_t port = 0;
    pthread_t t;

    if (!CHECK_OK(rosco_ctx_new(&o, &s.ctx)))
        return;
    CHECK_OK(check_udp_pair(s.ctx, "in", "out", &in, &out, &port));
    CHECK_OK(rosco_method_add(s.ctx, "/x", NULL, on_msg, &s, on_free, &m));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/x"));
    CHECK_OK(rosco_send(s.ctx, out, b));
    CHECK(pthread_create(&t, NULL, poller, &s) == 0);
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    while (atomic_load(&s.calls) == 0 && check_now_ms() < deadline)
        check_sleep_ms(1);
    CHECK(atomic_load(&s.calls) == 1);

    /* Free while the other thread is (or is about to be) inside rosco_poll. */
    CHECK_OK(rosco_ctx_free(s.ctx));
    atomic_store(&s.freed, 1);
    CHECK_INT(atomic_load(&s.user_freed), 1);
    /* Traffic to the freed context's port reaches nobody. */
    rosco_ctx other;
    rosco_channel to;
    char url[64];
    CHECK_OK(rosco_ctx_new(NULL, &other));
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", (unsigned)port);
    CHECK_OK(rosco_channel_open(other, "to", url, &to));
    for (int i = 0; i < 5; i++)
        rosco_send(other, to, b);
    check_sleep_ms(check_scale_ms(100));
    CHECK_INT(atomic_load(&s.late_calls), 0);
    CHECK_STATUS(rosco_send(s.ctx, out, b), ROSCO_ERR_HANDLE);
    pthread_join(t, NULL);
    CHECK_OK(rosco_ctx_free(other));
    rosco_builder_free(b);
}

struct waiter {
    rosco_ctx ctx;
    atomic_int status;
};

static void *wait_forever(void *arg)
{
    struct waiter *w = arg;
    rosco_status status;
    /* Busy while the main thread's own zero-timeout poll, which looks for this one
     * inside, holds the context: tried again. */
    while ((status = rosco_poll(w->ctx, -1, NULL)) == ROSCO_ERR_BUSY)
        check_sleep_ms(1);
    atomic_store(&w->status, status);
    return NULL;
}

/* A poll waiting with no timeout when the context is freed returns ROSCO_ERR_CLOSED, as
 * the header says of a call already inside: nothing was dispatched, nothing will be. */
static void free_during_endless_poll(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    struct waiter w = {.status = 1};
    rosco_channel in;
    pthread_t t;
    if (!CHECK_OK(rosco_ctx_new(&o, &w.ctx)))
        return;
    CHECK_OK(rosco_channel_open(w.ctx, "in", "osc.udp://:0?bind=127.0.0.1", &in));
    CHECK(pthread_create(&t, NULL, wait_forever, &w) == 0);
    /* Freed once the thread is inside its poll: a poll of this one is refused then. */
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    while (rosco_poll(w.ctx, 0, NULL) == ROSCO_OK && check_now_ms() < deadline)
        check_sleep_ms(2);
    CHECK_OK(rosco_ctx_free(w.ctx));
    pthread_join(t, NULL);
    CHECK_STATUS(atomic_load(&w.status), ROSCO_ERR_CLOSED);
}

/* A context freed by an event callback of the poll it runs inside (nothing dispatched in
 * that round): the poll ends as it would have, ROSCO_OK; its caller asked for the free. */
static void free_on_bound(void *user, const rosco_event *e)
{
    rosco_ctx *ctx = user;
    if (e->kind == ROSCO_EVENT_BOUND)
        CHECK_OK(rosco_ctx_free(*ctx));
}

static void free_from_own_event_callback(void)
{
    rosco_ctx ctx;
    rosco_channel in;
    uint32_t n = 99;
    if (!CHECK_OK(rosco_ctx_new(NULL, &ctx)))
        return;
    CHECK_OK(rosco_ctx_set_event_callback(ctx, free_on_bound, &ctx));
    CHECK_OK(rosco_channel_open(ctx, "in", "osc.udp://:0?bind=127.0.0.1", &in));
    CHECK_OK(rosco_poll(ctx, 100, &n));
    CHECK_INT(n, 0);
    CHECK_ERR(rosco_ctx_free(ctx), ROSCO_ERR_HANDLE); /* freed by the callback */
}

int main(void)
{
    free_from_own_event_callback();
    const int32_t modes[] = {ROSCO_MODE_POLL, ROSCO_MODE_IO_THREAD, ROSCO_MODE_THREADED};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        run(modes[i]);
        free_during_endless_poll(modes[i]);
    }
    return check_summary("free_test");
}
