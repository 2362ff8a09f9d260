/* Threads: several threads sending on one context (each with its own builder) while the
 * main thread polls, in every mode; channels and methods added and removed from other
 * threads meanwhile; and the context freed while other threads are still calling into it
 * (they must get ROSCO_OK, ROSCO_ERR_HANDLE or ROSCO_ERR_CLOSED, never crash). */
#include "check.h"

#include <pthread.h>

#define SENDERS 4
#define PER_SENDER 300
#define WINDOW 64

struct shared {
    rosco_ctx ctx;
    rosco_channel udp_out;
    rosco_channel local;
    atomic_int sent_udp;
    atomic_int got_udp;
    atomic_int got_local;
    atomic_int per_thread_udp[SENDERS];
    atomic_int per_thread_local[SENDERS];
    atomic_int last_local_seq[SENDERS];
    atomic_int local_order_errors;
    atomic_int bad_status;
    atomic_int full_retries;
    atomic_int stop;
};

struct sender_arg {
    struct shared *sh;
    int id;
};

static int32_t on_udp(void *user, const rosco_msg *m)
{
    struct shared *sh = user;
    int32_t id = -1, seq = -1;
    if (rosco_msg_get_i32(m, 0, &id) == ROSCO_OK && rosco_msg_get_i32(m, 1, &seq) == ROSCO_OK &&
        id >= 0 && id < SENDERS)
        atomic_fetch_add(&sh->per_thread_udp[id], 1);
    atomic_fetch_add(&sh->got_udp, 1);
    return 0;
}

static int32_t on_local(void *user, const rosco_msg *m)
{
    struct shared *sh = user;
    int32_t id = -1, seq = -1;
    if (rosco_msg_get_i32(m, 0, &id) == ROSCO_OK && rosco_msg_get_i32(m, 1, &seq) == ROSCO_OK &&
        id >= 0 && id < SENDERS) {
        atomic_fetch_add(&sh->per_thread_local[id], 1);
        /* One thread's messages through the in-process queue keep their order. */
        if (atomic_exchange(&sh->last_local_seq[id], seq) != seq - 1)
            atomic_fetch_add(&sh->local_order_errors, 1);
    }
    atomic_fetch_add(&sh->got_local, 1);
    return 0;
}

static void *sender(void *arg)
{
    struct sender_arg *a = arg;
    struct shared *sh = a->sh;
    rosco_builder *b = rosco_builder_new();
    for (int32_t seq = 0; seq < PER_SENDER; seq++) {
        /* Keep at most WINDOW datagrams in flight so none is lost to a full buffer. */
        int64_t deadline = check_now_ms() + check_scale_ms(10000);
        while (atomic_load(&sh->sent_udp) - atomic_load(&sh->got_udp) > WINDOW &&
               check_now_ms() < deadline)
            check_sleep_ms(1);
        rosco_status s1 = rosco_builder_message(b, "/udp");
        rosco_status s2 = rosco_builder_add_i32(b, a->id);
        rosco_status s3 = rosco_builder_add_i32(b, seq);
        rosco_status s4 = rosco_send(sh->ctx, sh->udp_out, b);
        if (s1 || s2 || s3 || s4)
            atomic_fetch_add(&sh->bad_status, 1);
        else
            atomic_fetch_add(&sh->sent_udp, 1);
        /* The same message to _local, retried while its queue is full. */
        rosco_builder_message(b, "/local");
        rosco_builder_add_i32(b, a->id);
        rosco_builder_add_i32(b, seq);
        rosco_status s;
        while ((s = rosco_send(sh->ctx, sh->local, b)) == ROSCO_ERR_FULL &&
               check_now_ms() < deadline) {
            atomic_fetch_add(&sh->full_retries, 1);
            check_sleep_ms(1);
        }
        if (s != ROSCO_OK)
            atomic_fetch_add(&sh->bad_status, 1);
    }
    rosco_builder_free(b);
    return NULL;
}

/* Opens and closes channels and adds and removes methods while messages flow. */
static atomic_int churn_adds, churn_frees;

static void churn_free(void *user)
{
    (void)user;
    atomic_fetch_add(&churn_frees, 1);
}

static int32_t churn_method(void *user, const rosco_msg *m)
{
    (void)user;
    (void)m;
    return 1;
}

static void *churner(void *arg)
{
    struct shared *sh = arg;
    int i = 0;
    while (!atomic_load(&sh->stop)) {
        char name[32];
        rosco_channel ch;
        rosco_method m;
        snprintf(name, sizeof name, "churn%d", i++ % 4);
        if (rosco_channel_open(sh->ctx, name, "osc.udp://:0?bind=127.0.0.1", &ch) != ROSCO_OK ||
            rosco_channel_close(sh->ctx, ch) != ROSCO_OK)
            atomic_fetch_add(&sh->bad_status, 1);
        /* A catch-all that passes every message on, so the counts above are unaffected. */
        if (rosco_method_add(sh->ctx, NULL, NULL, churn_method, NULL, churn_free, &m) ==
            ROSCO_OK) {
            atomic_fetch_add(&churn_adds, 1);
            if (rosco_method_remove(sh->ctx, m) != ROSCO_OK)
                atomic_fetch_add(&sh->bad_status, 1);
        } else {
            atomic_fetch_add(&sh->bad_status, 1);
        }
        check_sleep_ms(1);
    }
    return NULL;
}

static void test_concurrent_senders(int32_t mode, uint32_t workers)
{
    rosco_ctx_options o = check_options(mode);
    o.workers = workers;
    struct shared *sh = calloc(1, sizeof *sh);
    rosco_channel in;
    rosco_method m;
    pthread_t threads[SENDERS], churn;
    struct sender_arg args[SENDERS];
    int before = CHECK_FAILURES;

    for (int i = 0; i < SENDERS; i++)
        atomic_store(&sh->last_local_seq[i], -1);
    if (!CHECK_OK(rosco_ctx_new(&o, &sh->ctx))) {
        free(sh);
        return;
    }
    CHECK_OK(check_udp_pair(sh->ctx, "in", "out", &in, &sh->udp_out, NULL));
    CHECK_OK(rosco_channel_find(sh->ctx, "_local", &sh->local));
    CHECK_OK(rosco_method_add(sh->ctx, "/udp", "ii", on_udp, sh, NULL, &m));
    CHECK_OK(rosco_method_add(sh->ctx, "/local", "ii", on_local, sh, NULL, &m));

    CHECK(pthread_create(&churn, NULL, churner, sh) == 0);
    for (int i = 0; i < SENDERS; i++) {
        args[i].sh = sh;
        args[i].id = i;
        CHECK(pthread_create(&threads[i], NULL, sender, &args[i]) == 0);
    }
    const int total = SENDERS * PER_SENDER;
    int64_t deadline = check_now_ms() + check_scale_ms(30000);
    while ((atomic_load(&sh->got_udp) < total || atomic_load(&sh->got_local) < total) &&
           check_now_ms() < deadline) {
        if (mode == ROSCO_MODE_THREADED)
            check_sleep_ms(2);
        else
            CHECK_OK(rosco_poll(sh->ctx, 10, NULL));
    }
    for (int i = 0; i < SENDERS; i++)
        pthread_join(threads[i], NULL);
    atomic_store(&sh->stop, 1);
    pthread_join(churn, NULL);
    /* Anything late is a bug too: give it a moment. */
    if (mode == ROSCO_MODE_THREADED)
        check_sleep_ms(50);
    else
        check_poll_for(sh->ctx, 50);

    CHECK_INT(atomic_load(&sh->bad_status), 0);
    CHECK_INT(atomic_load(&sh->sent_udp), total);
    CHECK_INT(atomic_load(&sh->got_udp), total);
    CHECK_INT(atomic_load(&sh->got_local), total);
    for (int i = 0; i < SENDERS; i++) {
        CHECK_INT(atomic_load(&sh->per_thread_udp[i]), PER_SENDER);
        CHECK_INT(atomic_load(&sh->per_thread_local[i]), PER_SENDER);
    }
    /* Workers may run one sender's messages in any order. */
    if (workers == 0)
        CHECK_INT(atomic_load(&sh->local_order_errors), 0);
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(sh->ctx, sh->udp_out, &st));
    CHECK_INT(st.packets_out, total);
    CHECK_OK(rosco_channel_stats_get(sh->ctx, in, &st));
    CHECK_INT(st.packets_in, total);
    CHECK_INT(st.dropped, 0);
    CHECK_OK(rosco_ctx_free(sh->ctx));
    CHECK_INT(atomic_load(&churn_frees), atomic_load(&churn_adds));
    free(sh);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode, %u workers)\n", check_mode_name(mode),
                workers);
}

/* ---- freeing the context under other threads' feet --------------------------------- */

struct racer {
    rosco_ctx ctx;
    rosco_channel out;
    rosco_channel in;
    atomic_int started;
    atomic_int calls_after_start;
    atomic_int ok;
    atomic_int handle;
    atomic_int other;
    int last_other;
    atomic_int adds;
};

static atomic_int racer_frees;

static void racer_free(void *user)
{
    (void)user;
    atomic_fetch_add(&racer_frees, 1);
}

static void tally(struct racer *r, rosco_status s)
{
    if (s == ROSCO_OK)
        atomic_fetch_add(&r->ok, 1);
    /* CLOSED: the call was already inside the context when it was freed. */
    else if (s == ROSCO_ERR_HANDLE || s == ROSCO_ERR_CLOSED)
        atomic_fetch_add(&r->handle, 1);
    else {
        atomic_fetch_add(&r->other, 1);
        r->last_other = s;
    }
}

/* Sends until the handle goes stale (and a while after). */
static void *racing_sender(void *arg)
{
    struct racer *r = arg;
    rosco_builder *b = rosco_builder_new();
    rosco_builder_message(b, "/race");
    rosco_builder_add_i32(b, 1);
    atomic_fetch_add(&r->started, 1);
    int after = 0;
    int64_t deadline = check_now_ms() + check_scale_ms(10000);
    while (after < 200 && check_now_ms() < deadline) {
        rosco_status s = rosco_send(r->ctx, r->out, b);
        tally(r, s);
        if (s != ROSCO_OK)
            after++;
    }
    rosco_builder_free(b);
    return NULL;
}

/* Every other kind of call, until the handle goes stale. */
static void *racing_caller(void *arg)
{
    struct racer *r = arg;
    atomic_fetch_add(&r->started, 1);
    int after = 0;
    int64_t deadline = check_now_ms() + check_scale_ms(10000);
    while (after < 50 && check_now_ms() < deadline) {
        rosco_channel_stats st;
        rosco_channel found;
        uint16_t port;
        int32_t fd;
        char buf[64];
        rosco_status s[6];
        s[0] = rosco_channel_stats_get(r->ctx, r->in, &st);
        s[1] = rosco_channel_port(r->ctx, r->in, &port);
        s[2] = rosco_channel_url(r->ctx, r->out, buf, sizeof buf, NULL);
        s[3] = rosco_channel_find(r->ctx, "in", &found);
        s[4] = rosco_channel_flush(r->ctx, r->out, 0);
        s[5] = rosco_ctx_wakeup_fd(r->ctx, &fd);
        int stale = 0;
        for (int i = 0; i < 6; i++) {
            tally(r, s[i]);
            stale |= s[i] != ROSCO_OK;
        }
        if (stale)
            after++;
    }
    return NULL;
}

static int32_t race_method(void *user, const rosco_msg *m)
{
    (void)user;
    (void)m;
    return 0;
}

/* Adds and removes methods with user data until the handle goes stale. */
static void *racing_methods(void *arg)
{
    struct racer *r = arg;
    atomic_fetch_add(&r->started, 1);
    int after = 0;
    int64_t deadline = check_now_ms() + check_scale_ms(10000);
    while (after < 50 && check_now_ms() < deadline) {
        rosco_method m;
        rosco_status s = rosco_method_add(r->ctx, NULL, NULL, race_method, NULL, racer_free, &m);
        atomic_fetch_add(&r->adds, 1); /* freed whether or not the add succeeded */
        tally(r, s);
        if (s == ROSCO_OK) {
            rosco_status s2 = rosco_method_remove(r->ctx, m);
            tally(r, s2);
            if (s2 != ROSCO_OK)
                after++;
        } else {
            after++;
        }
    }
    return NULL;
}

static void test_free_while_sending(int32_t mode, uint32_t workers, int round)
{
    rosco_ctx_options o = check_options(mode);
    o.workers = workers;
    struct racer *r = calloc(1, sizeof *r);
    pthread_t t[4];
    rosco_method m;
    int before = CHECK_FAILURES;

    if (!CHECK_OK(rosco_ctx_new(&o, &r->ctx))) {
        free(r);
        return;
    }
    atomic_store(&racer_frees, 0);
    CHECK_OK(check_udp_pair(r->ctx, "in", "out", &r->in, &r->out, NULL));
    CHECK_OK(rosco_method_add(r->ctx, "/race", NULL, race_method, NULL, racer_free, &m));
    atomic_fetch_add(&r->adds, 1);
    CHECK(pthread_create(&t[0], NULL, racing_sender, r) == 0);
    CHECK(pthread_create(&t[1], NULL, racing_sender, r) == 0);
    CHECK(pthread_create(&t[2], NULL, racing_caller, r) == 0);
    CHECK(pthread_create(&t[3], NULL, racing_methods, r) == 0);
    while (atomic_load(&r->started) < 4)
        check_sleep_ms(1);
    /* Let them run (and messages flow) for a moment, then pull the context away. */
    int64_t until = check_now_ms() + 20 + 7 * round;
    while (check_now_ms() < until) {
        if (mode == ROSCO_MODE_THREADED)
            check_sleep_ms(1);
        else
            (void)rosco_poll(r->ctx, 1, NULL);
    }
    CHECK_OK(rosco_ctx_free(r->ctx));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&r->ok) > 0);
    CHECK(atomic_load(&r->handle) > 0);
    if (!CHECK_INT(atomic_load(&r->other), 0))
        fprintf(stderr, "  a call racing rosco_ctx_free got %s\n",
                rosco_status_str(r->last_other));
    /* Every method's user data freed exactly once: by remove, by the context, or by a
     * failed add. */
    CHECK_INT(atomic_load(&racer_frees), atomic_load(&r->adds));
    CHECK_ERR(rosco_poll(r->ctx, 0, NULL), ROSCO_ERR_HANDLE);
    free(r);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode, round %d)\n", check_mode_name(mode),
                round);
}

/* rosco_poll from a callback on one of the context's workers: ROSCO_ERR_BUSY at once, as
 * from the I/O thread (waiting would only stall the worker). */
struct worker_poll {
    rosco_ctx ctx;
    atomic_int status, done;
    atomic_llong took_ms;
};

static int poll_from_worker(void *user, const rosco_msg *m)
{
    struct worker_poll *w = user;
    (void)m;
    int64_t t0 = check_now_ms();
    atomic_store(&w->status, rosco_poll(w->ctx, check_scale_ms(5000), NULL));
    atomic_store(&w->took_ms, check_now_ms() - t0);
    atomic_store(&w->done, 1);
    return 0;
}

static void test_poll_from_worker(void)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_THREADED);
    o.workers = 1;
    struct worker_poll w = {.status = 1};
    rosco_channel local;
    rosco_method m;
    if (!CHECK_OK(rosco_ctx_new(&o, &w.ctx)))
        return;
    CHECK_OK(rosco_channel_find(w.ctx, "_local", &local));
    CHECK_OK(rosco_method_add(w.ctx, "/x", NULL, poll_from_worker, &w, NULL, &m));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/x"));
    CHECK_OK(rosco_send(w.ctx, local, b));
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    while (!atomic_load(&w.done) && check_now_ms() < deadline)
        check_sleep_ms(2);
    CHECK_STATUS(atomic_load(&w.status), ROSCO_ERR_BUSY);
    CHECK(atomic_load(&w.took_ms) < check_scale_ms(2500)); /* refused, not waited out */
    CHECK_OK(rosco_ctx_free(w.ctx));
    rosco_builder_free(b);
}

int main(void)
{
    const int32_t modes[] = {ROSCO_MODE_POLL, ROSCO_MODE_IO_THREAD, ROSCO_MODE_THREADED};
    test_poll_from_worker();
    for (int i = 0; i < 3; i++)
        test_concurrent_senders(modes[i], 0);
    /* Threaded mode with a pool of workers running the callbacks. */
    test_concurrent_senders(ROSCO_MODE_THREADED, 3);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 3; i++)
            test_free_while_sending(modes[i], 0, round);
        test_free_while_sending(ROSCO_MODE_THREADED, 3, round);
    }
    /* Workers are for threaded mode only. */
    rosco_ctx_options o = check_options(ROSCO_MODE_POLL);
    o.workers = 2;
    rosco_ctx ctx;
    CHECK_STATUS(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    return check_summary("threads_test");
}
