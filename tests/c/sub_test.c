/* Subscriptions: messages kept in a queue and taken on the caller's thread, in every
 * mode, over a real UDP socket pair. */

#include "check.h"

#include <pthread.h>

/* What rosco_sub_take handed over. */
struct taken {
    pthread_t thread;
    char address[32];
    int32_t first;
    rosco_channel channel;
    int calls;
};

static int32_t take(void *user, const rosco_msg *m)
{
    struct taken *t = user;
    t->thread = pthread_self();
    snprintf(t->address, sizeof t->address, "%s", rosco_msg_address(m));
    t->first = -1;
    if (rosco_msg_argc(m) > 0)
        (void)rosco_msg_get_i32(m, 0, &t->first);
    (void)rosco_msg_channel(m, &t->channel);
    t->calls++;
    return 0;
}

static rosco_status send_i(rosco_ctx ctx, rosco_channel ch, const char *address, int32_t v)
{
    rosco_builder *b = rosco_builder_new();
    rosco_status s = rosco_builder_message(b, address);
    if (s == ROSCO_OK && v >= 0)
        s = rosco_builder_add_i32(b, v);
    if (s == ROSCO_OK)
        s = rosco_send(ctx, ch, b);
    rosco_builder_free(b);
    return s;
}

/* True once `sub` holds `waiting` messages and has dropped `dropped`. */
static int holds(rosco_sub *sub, uint32_t waiting, uint64_t dropped)
{
    uint32_t w = 0;
    uint64_t d = 0;
    return rosco_sub_counts(sub, &w, &d) == ROSCO_OK && w == waiting && d == dropped;
}

static void thread_hook(void *user, const char *name)
{
    (void)user;
    (void)name;
}

static void thread_user_freed(void *user)
{
    atomic_fetch_add((atomic_int *)user, 1);
}

static void test_mode(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    /* The thread hooks' user data, freed by rosco_ctx_free although a subscription of
     * the context outlives it. */
    static atomic_int thread_user_frees;
    atomic_store(&thread_user_frees, 0);
    o.thread_start = thread_hook;
    o.thread_user = &thread_user_frees;
    o.thread_user_free = thread_user_freed;
    rosco_ctx ctx;
    rosco_channel in, out;
    rosco_sub *notes = NULL, *on = NULL;
    struct taken t = {0};
    int before = CHECK_FAILURES;

    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, NULL));
    /* Two routes into a queue of two; a second subscriber to one of them. */
    CHECK_OK(rosco_sub_new(ctx, "/note/*", NULL, 2, &notes));
    CHECK_OK(rosco_sub_also(notes, "/cc", "i"));
    CHECK_OK(rosco_sub_new(ctx, "/note/on", "i", 8, &on));
    CHECK_OK(send_i(ctx, out, "/note/on", 60));
    CHECK_OK(send_i(ctx, out, "/cc", 7));
    CHECK_OK(send_i(ctx, out, "/note/off", 60)); /* the third for a queue of two */
    /* (In threaded mode the I/O thread fills the queues; rosco_poll only waits.) */
    CHECK(POLL_UNTIL(ctx, holds(notes, 2, 1) && holds(on, 1, 0), 3000));

    if (CHECK_OK(rosco_sub_take(notes, 0, take, &t))) {
        CHECK_STR(t.address, "/note/on");
        CHECK_INT(t.first, 60);
        CHECK(t.channel.id == in.id);
        CHECK(pthread_equal(t.thread, pthread_self()));
    }
    CHECK_OK(rosco_sub_take(on, 0, take, &t));
    CHECK_STR(t.address, "/note/on");
    CHECK_OK(rosco_sub_take(notes, 0, take, &t));
    CHECK_STR(t.address, "/cc");
    CHECK_INT(t.first, 7);
    CHECK(holds(notes, 0, 1));
    /* Threaded: a take that waits gets what the I/O thread delivers meanwhile. */
    if (mode == ROSCO_MODE_THREADED) {
        CHECK_OK(send_i(ctx, out, "/note/late", 1));
        CHECK_OK(rosco_sub_take(notes, (uint32_t)check_scale_ms(3000), take, &t));
        CHECK_STR(t.address, "/note/late");
    }
    uint32_t waiting = 9;
    /* Nothing more: a timeout, and the callback is not called. */
    int calls = t.calls;
    CHECK_ERR(rosco_sub_take(notes, 0, take, &t), ROSCO_ERR_TIMEOUT);
    CHECK_ERR(rosco_sub_take(notes, 20, take, &t), ROSCO_ERR_TIMEOUT);
    CHECK_INT(t.calls, calls);

    /* Bad arguments. */
    rosco_sub *bad = (rosco_sub *)&t;
    CHECK_ERR(rosco_sub_new(ctx, "/x[", NULL, 1, &bad), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_sub_new(ctx, "/x", NULL, 0, &bad), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_sub_new(ctx, "/x", NULL, 1, NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_sub_also(NULL, "/x", NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_sub_also(notes, "/x", "q"), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_sub_take(NULL, 0, take, &t), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_sub_take(notes, 0, NULL, &t), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_sub_counts(NULL, &waiting, NULL), ROSCO_ERR_NULL);
    CHECK(bad == (rosco_sub *)&t); /* untouched on failure */
    rosco_sub_free(NULL);

    /* One freed after its context, one before. */
    rosco_sub_free(on);
    CHECK_OK(rosco_ctx_free(ctx));
    CHECK_INT(atomic_load(&thread_user_frees), 1);
    CHECK_ERR(rosco_sub_new(ctx, "/x", NULL, 1, &bad), ROSCO_ERR_HANDLE);
    /* Nothing can arrive any more: a take says so at once, whatever its timeout, and no
     * route can be added. */
    CHECK_ERR(rosco_sub_also(notes, "/more", NULL), ROSCO_ERR_CLOSED);
    CHECK_ERR(rosco_sub_take(notes, 0, take, &t), ROSCO_ERR_CLOSED);
    int64_t start = check_now_ms();
    CHECK_ERR(rosco_sub_take(notes, 60000, take, &t), ROSCO_ERR_CLOSED);
    CHECK(check_now_ms() - start < 30000);
    rosco_sub_free(notes);
    CHECK_INT(atomic_load(&thread_user_frees), 1);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(mode));
}

int main(void)
{
    const int32_t modes[] = {ROSCO_MODE_POLL, ROSCO_MODE_IO_THREAD, ROSCO_MODE_THREADED};
    for (int i = 0; i < 3; i++)
        test_mode(modes[i]);
    return check_summary("sub_test");
}
