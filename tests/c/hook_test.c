/* Hooks. Packet hooks over real UDP sockets: a checksum appended on the way out and
 * checked and stripped on the way in, a tap that passes packets on, dropping in both
 * directions, unknown verdicts, rosco_packet_out_append's errors, a hook replaced or its
 * channel closed while it runs (its user data freed right after), user_free, and
 * rosco_ctx_free waiting for a hook running on another thread. The O2lite <-> OSC
 * bridges. Thread start and stop hooks of the I/O thread and the workers. */
#include "check.h"

#include <pthread.h>

/* FNV-1a, 32 bits: the checksum the two hooks agree on. */
static uint32_t fnv1a(const uint8_t *data, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ data[i]) * 16777619u;
    return h;
}

/* What the hooks saw and did. */
struct hooks {
    atomic_int sealed, opened, refused, tapped_bytes;
    rosco_status null_out, null_data, empty_data;
};

static int32_t seal(void *user, rosco_channel ch, const uint8_t *data, size_t len,
                    rosco_packet_out *out)
{
    struct hooks *h = user;
    (void)ch;
    uint32_t sum = fnv1a(data, len);
    uint8_t tail[4] = {sum >> 24, sum >> 16, sum >> 8, sum};
    if (rosco_packet_out_append(out, data, len) != ROSCO_OK ||
        rosco_packet_out_append(out, tail, sizeof tail) != ROSCO_OK)
        return ROSCO_HOOK_DROP;
    atomic_fetch_add(&h->sealed, 1);
    return ROSCO_HOOK_REPLACE;
}

static int32_t open_sealed(void *user, rosco_channel ch, const uint8_t *data, size_t len,
                           rosco_packet_out *out)
{
    struct hooks *h = user;
    (void)ch;
    if (len < 4) {
        atomic_fetch_add(&h->refused, 1);
        return ROSCO_HOOK_DROP;
    }
    uint32_t sum = (uint32_t)data[len - 4] << 24 | (uint32_t)data[len - 3] << 16 |
                   (uint32_t)data[len - 2] << 8 | data[len - 1];
    if (sum != fnv1a(data, len - 4)) {
        atomic_fetch_add(&h->refused, 1);
        return ROSCO_HOOK_DROP;
    }
    /* The error paths of rosco_packet_out_append, from inside a hook. */
    h->null_out = rosco_packet_out_append(NULL, data, 1);
    h->null_data = rosco_packet_out_append(out, NULL, 1);
    h->empty_data = rosco_packet_out_append(out, NULL, 0);
    if (rosco_packet_out_append(out, data, len - 4) != ROSCO_OK)
        return ROSCO_HOOK_DROP;
    atomic_fetch_add(&h->opened, 1);
    return ROSCO_HOOK_REPLACE;
}

static int32_t tap(void *user, rosco_channel ch, const uint8_t *data, size_t len,
                   rosco_packet_out *out)
{
    (void)ch, (void)data, (void)out;
    atomic_fetch_add(&((struct hooks *)user)->tapped_bytes, (int)len);
    return ROSCO_HOOK_PASS;
}

static int32_t drop_all(void *user, rosco_channel ch, const uint8_t *data, size_t len,
                        rosco_packet_out *out)
{
    (void)user, (void)ch, (void)data, (void)len, (void)out;
    return ROSCO_HOOK_DROP;
}

static int32_t unknown_verdict(void *user, rosco_channel ch, const uint8_t *data, size_t len,
                               rosco_packet_out *out)
{
    (void)user, (void)ch, (void)data, (void)len, (void)out;
    return 7;
}

/* What arrived: the count and the last message's int. */
struct inbox {
    atomic_int n;
    atomic_int last;
};

static int32_t receive(void *user, const rosco_msg *m)
{
    struct inbox *in = user;
    int32_t v = -1;
    CHECK_OK(rosco_msg_get_i32(m, 0, &v));
    atomic_store(&in->last, v);
    atomic_fetch_add(&in->n, 1);
    return 0;
}

static void send_i(rosco_ctx ctx, rosco_channel ch, const char *address, int32_t v)
{
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, address));
    CHECK_OK(rosco_builder_add_i32(b, v));
    CHECK_OK(rosco_send(ctx, ch, b));
    rosco_builder_free(b);
}

/* A listener, a sender to it with hooks, and a plain sender to it without. */
struct pair {
    rosco_ctx ctx;
    rosco_channel rx, tx, plain;
    struct inbox in;
};

static int open_pair(struct pair *p, int32_t mode)
{
    rosco_ctx_options o;
    rosco_ctx_options_init(&o);
    o.mode = mode;
    memset(p, 0, sizeof *p);
    if (!CHECK_OK(rosco_ctx_new(&o, &p->ctx)))
        return 0;
    uint16_t port = 0;
    char url[64];
    CHECK_OK(rosco_channel_open(p->ctx, "rx", "osc.udp://:0?bind=127.0.0.1", &p->rx));
    CHECK_OK(rosco_channel_port(p->ctx, p->rx, &port));
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", port);
    CHECK_OK(rosco_channel_open(p->ctx, "tx", url, &p->tx));
    CHECK_OK(rosco_channel_open(p->ctx, "plain", url, &p->plain));
    rosco_method m;
    CHECK_OK(rosco_method_add(p->ctx, "/m", "i", receive, &p->in, NULL, &m));
    return 1;
}

static void test_checksum_tap_and_drops(void)
{
    struct pair p;
    struct hooks h = {0};
    if (!open_pair(&p, ROSCO_MODE_POLL))
        return;
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.tx, NULL, seal, &h, NULL));
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.rx, open_sealed, NULL, &h, NULL));

    /* Sealed on the way out, checked and opened on the way in. */
    send_i(p.ctx, p.tx, "/m", 1);
    CHECK(POLL_UNTIL(p.ctx, atomic_load(&p.in.n) == 1, 5000));
    CHECK_INT(atomic_load(&p.in.last), 1);
    CHECK_INT(atomic_load(&h.sealed), 1);
    CHECK_INT(atomic_load(&h.opened), 1);
    CHECK_STATUS(h.null_out, ROSCO_ERR_NULL);
    CHECK_STATUS(h.null_data, ROSCO_ERR_NULL);
    CHECK_STATUS(h.empty_data, ROSCO_OK);

    /* Without the seal the packet is refused, and the next sealed one still arrives. */
    send_i(p.ctx, p.plain, "/m", 2);
    CHECK(POLL_UNTIL(p.ctx, atomic_load(&h.refused) == 1, 5000));
    send_i(p.ctx, p.tx, "/m", 3);
    CHECK(POLL_UNTIL(p.ctx, atomic_load(&p.in.n) == 2, 5000));
    CHECK_INT(atomic_load(&p.in.last), 3);

    /* A tap sees the packet and passes it on as it was: 12 bytes of "/m ,i 4". */
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.rx, tap, NULL, &h, NULL));
    send_i(p.ctx, p.plain, "/m", 4);
    CHECK(POLL_UNTIL(p.ctx, atomic_load(&p.in.n) == 3, 5000));
    CHECK_INT(atomic_load(&p.in.last), 4);
    CHECK_INT(atomic_load(&h.tapped_bytes), 12);

    /* Dropped on the way out: nothing reaches the listener, whose tap would count it. */
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.tx, NULL, drop_all, NULL, NULL));
    send_i(p.ctx, p.tx, "/m", 5);
    /* An unknown verdict drops too. */
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.tx, NULL, unknown_verdict, NULL, NULL));
    send_i(p.ctx, p.tx, "/m", 6);
    /* Removed: packets go out as they are again. */
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.tx, NULL, NULL, NULL, NULL));
    send_i(p.ctx, p.tx, "/m", 7);
    CHECK(POLL_UNTIL(p.ctx, atomic_load(&p.in.n) == 4, 5000));
    CHECK_INT(atomic_load(&p.in.last), 7);
    CHECK_INT(atomic_load(&h.tapped_bytes), 24);

    /* "_local" has no incoming side; its outgoing hook sees what it dispatches. */
    rosco_channel local;
    CHECK_OK(rosco_channel_find(p.ctx, "_local", &local));
    CHECK_ERR(rosco_channel_set_hooks(p.ctx, local, tap, NULL, &h, NULL), ROSCO_ERR_UNSUPPORTED);
    CHECK_OK(rosco_channel_set_hooks(p.ctx, local, NULL, tap, &h, NULL));
    send_i(p.ctx, local, "/m", 8);
    CHECK(POLL_UNTIL(p.ctx, atomic_load(&p.in.n) == 5, 5000));
    CHECK_INT(atomic_load(&h.tapped_bytes), 36);

    /* Bad handles. */
    CHECK_ERR(rosco_channel_set_hooks((rosco_ctx){0}, p.rx, tap, NULL, &h, NULL), ROSCO_ERR_HANDLE);
    CHECK_OK(rosco_channel_close(p.ctx, p.plain));
    CHECK_ERR(rosco_channel_set_hooks(p.ctx, p.plain, tap, NULL, &h, NULL), ROSCO_ERR_HANDLE);
    CHECK_OK(rosco_ctx_free(p.ctx));
}

/* Waits (up to 5 s, scaled) until another thread brings `*v` to `want` or more. */
static void wait_at_least(atomic_int *v, int want)
{
    int64_t deadline = check_now_ms() + check_scale_ms(5000);
    while (atomic_load(v) < want && check_now_ms() < deadline)
        check_sleep_ms(1);
}

/* A hook that takes its time, so that it is replaced while it runs. */
struct slow {
    atomic_int running, finished;
};

static int32_t slow_pass(void *user, rosco_channel ch, const uint8_t *data, size_t len,
                         rosco_packet_out *out)
{
    struct slow *s = user;
    (void)ch, (void)data, (void)len, (void)out;
    atomic_store(&s->running, 1);
    check_sleep_ms(200);
    atomic_store(&s->finished, 1);
    return ROSCO_HOOK_PASS;
}

/* Sends on `tx` until `s`'s hook runs. */
static void start_slow_hook(struct pair *p, struct slow *s)
{
    send_i(p->ctx, p->tx, "/m", 9);
    wait_at_least(&s->running, 1);
    CHECK(atomic_load(&s->running));
}

static void test_replaced_while_running(void)
{
    struct pair p;
    if (!open_pair(&p, ROSCO_MODE_THREADED))
        return;
    /* Freed as soon as the hook is replaced: ASan and valgrind see any later use. */
    struct slow *s = calloc(1, sizeof *s);
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.rx, slow_pass, NULL, s, NULL));
    start_slow_hook(&p, s);
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.rx, NULL, NULL, NULL, NULL));
    CHECK(atomic_load(&s->finished)); /* set_hooks waited for the running call */
    free(s);
    wait_at_least(&p.in.n, 1);
    CHECK_INT(atomic_load(&p.in.n), 1);

    /* Closing the channel removes its hooks the same way. */
    s = calloc(1, sizeof *s);
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.rx, slow_pass, NULL, s, NULL));
    start_slow_hook(&p, s);
    CHECK_OK(rosco_channel_close(p.ctx, p.rx));
    CHECK(atomic_load(&s->finished));
    free(s);
    CHECK_OK(rosco_ctx_free(p.ctx));
}

static void count_free(void *user)
{
    atomic_fetch_add((atomic_int *)user, 1);
}

struct slow_send {
    rosco_ctx ctx;
    rosco_channel tx;
};

static void *send_once(void *arg)
{
    struct slow_send *s = arg;
    rosco_builder *b = rosco_builder_new();
    (void)rosco_builder_message(b, "/m");
    (void)rosco_send(s->ctx, s->tx, b); /* may fail: the context is freed meanwhile */
    rosco_builder_free(b);
    return NULL;
}

/* A hook that removes itself, whose user_free sets hooks too: neither may wait for the
 * call they run inside (it would wait forever). */
struct self_removing {
    rosco_ctx ctx;
    rosco_channel ch;
    atomic_int ran, freed;
    rosco_status in_hook, in_free;
};

static int32_t remove_self(void *user, rosco_channel ch, const uint8_t *data, size_t len,
                           rosco_packet_out *out)
{
    struct self_removing *r = user;
    (void)ch, (void)data, (void)len, (void)out;
    atomic_fetch_add(&r->ran, 1);
    r->in_hook = rosco_channel_set_hooks(r->ctx, r->ch, NULL, NULL, NULL, NULL);
    return ROSCO_HOOK_PASS;
}

static void free_and_set(void *user)
{
    struct self_removing *r = user;
    r->in_free = rosco_channel_set_hooks(r->ctx, r->ch, NULL, NULL, NULL, NULL);
    atomic_fetch_add(&r->freed, 1);
}

/* A slow hook's data, freed by rosco: counted, then freed. */
static atomic_int slow_frees;
static void free_slow(void *user)
{
    atomic_fetch_add(&slow_frees, 1);
    free(user);
}

static void test_user_free_and_ctx_free(void)
{
    struct pair p;
    struct hooks h = {0};
    atomic_int freed = 0;
    if (!open_pair(&p, ROSCO_MODE_POLL))
        return;
    /* Freed once the hooks are replaced, at once when nothing is set or the call fails. */
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.rx, tap, NULL, &freed, count_free));
    CHECK_INT(atomic_load(&freed), 0);
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.rx, NULL, NULL, NULL, NULL));
    CHECK_INT(atomic_load(&freed), 1);
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.rx, NULL, NULL, &freed, count_free));
    CHECK_INT(atomic_load(&freed), 2);
    rosco_channel local;
    CHECK_OK(rosco_channel_find(p.ctx, "_local", &local));
    CHECK_ERR(rosco_channel_set_hooks(p.ctx, local, tap, NULL, &freed, count_free),
              ROSCO_ERR_UNSUPPORTED);
    CHECK_INT(atomic_load(&freed), 3);
    CHECK_ERR(rosco_channel_set_hooks((rosco_ctx){0}, p.rx, tap, NULL, &freed, count_free),
              ROSCO_ERR_HANDLE);
    CHECK_INT(atomic_load(&freed), 4);
    (void)h;

    /* Removed from inside itself: the last reference goes with the running call, and
     * user_free, run there, may set hooks again. */
    struct self_removing r = {.ctx = p.ctx, .ch = p.tx};
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.tx, NULL, remove_self, &r, free_and_set));
    send_i(p.ctx, p.tx, "/m", 10);
    CHECK_INT(atomic_load(&r.ran), 1);
    CHECK_INT(atomic_load(&r.freed), 1);
    CHECK_STATUS(r.in_hook, ROSCO_OK);
    CHECK_STATUS(r.in_free, ROSCO_OK);
    send_i(p.ctx, p.tx, "/m", 11);
    CHECK_INT(atomic_load(&r.ran), 1);

    /* Freeing the context waits for an outgoing hook running on another thread, and
     * frees its user data before it returns. */
    struct slow *s = calloc(1, sizeof *s);
    CHECK_OK(rosco_channel_set_hooks(p.ctx, p.tx, NULL, slow_pass, s, free_slow));
    struct slow_send arg = {p.ctx, p.tx};
    pthread_t sender;
    CHECK(pthread_create(&sender, NULL, send_once, &arg) == 0);
    wait_at_least(&s->running, 1);
    CHECK(atomic_load(&s->running));
    CHECK_OK(rosco_ctx_free(p.ctx));
    /* `s` was freed by rosco when the hook ended, before rosco_ctx_free returned:
     * valgrind and ASan check that no call touched it later. */
    CHECK_INT(atomic_load(&slow_frees), 1);
    pthread_join(sender, NULL);
}

/* What a bridged message looked like. */
struct heard {
    atomic_int n;
    char address[64];
    float value;
};

static int32_t hear(void *user, const rosco_msg *m)
{
    struct heard *h = user;
    snprintf(h->address, sizeof h->address, "%s", rosco_msg_address(m));
    h->value = -1;
    (void)rosco_msg_get_f32(m, 0, &h->value);
    atomic_fetch_add(&h->n, 1);
    return 0;
}

static int both_until(rosco_ctx a, rosco_ctx b, atomic_int *n, int want)
{
    int64_t deadline = check_now_ms() + check_scale_ms(10000);
    while (atomic_load(n) < want && check_now_ms() < deadline) {
        (void)rosco_poll(a, 5, NULL);
        (void)rosco_poll(b, 5, NULL);
    }
    return atomic_load(n) == want;
}

static void test_o2lite_bridges(void)
{
    rosco_ctx_options o;
    rosco_ctx_options_init(&o);
    rosco_ctx host, client;
    if (!CHECK_OK(rosco_ctx_new(&o, &host)) || !CHECK_OK(rosco_ctx_new(&o, &client)))
        return;
    rosco_channel hub, o2, osc_in, to_synth, synth_in, feeder;
    uint16_t port = 0;
    char hp[32], url[64];
    CHECK_OK(rosco_channel_open(host, "host", "o2lite-host://rosco-c?mdns=0", &hub));
    CHECK_OK(rosco_channel_port(host, hub, &port));
    snprintf(hp, sizeof hp, "127.0.0.1:%u", port);
    CHECK_OK(rosco_o2lite_connect(client, "rosco-c", hp, &o2));
    CHECK_OK(rosco_o2lite_service_add(client, o2, "client"));

    /* O2 service "synth" of the host, delegated to an OSC synth, its prefix stripped. */
    struct heard at_synth = {0}, at_client = {0};
    rosco_method m, bridge_out, bridge_in;
    CHECK_OK(rosco_channel_open(client, "synth-in", "osc.udp://:0?bind=127.0.0.1", &synth_in));
    CHECK_OK(rosco_method_add(client, "/freq", "f", hear, &at_synth, NULL, &m));
    CHECK_OK(rosco_channel_port(client, synth_in, &port));
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", port);
    CHECK_OK(rosco_channel_open(host, "to-synth", url, &to_synth));
    CHECK_ERR(rosco_o2lite_bridge_to_osc(host, hub, "synth", to_synth, 1, NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_o2lite_bridge_to_osc(host, hub, NULL, to_synth, 1, &bridge_out),
              ROSCO_ERR_NULL);
    CHECK_OK(rosco_o2lite_bridge_to_osc(host, hub, "synth", to_synth, 1, &bridge_out));

    /* What the host's OSC port hears goes to the client's service, prefixed. */
    CHECK_OK(rosco_channel_open(host, "osc-in", "osc.udp://:0?bind=127.0.0.1", &osc_in));
    CHECK_ERR(rosco_osc_bridge_to_o2lite(host, osc_in, hub, "client", 1, 1, NULL),
              ROSCO_ERR_NULL);
    /* Stale handles, the ends swapped, bad service names. */
    rosco_channel gone;
    CHECK_OK(rosco_channel_open(host, "gone", "osc.udp://:0?bind=127.0.0.1", &gone));
    CHECK_OK(rosco_channel_close(host, gone));
    CHECK_ERR(rosco_osc_bridge_to_o2lite(host, gone, hub, "client", 1, 1, &bridge_in),
              ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_osc_bridge_to_o2lite(host, osc_in, gone, "client", 1, 1, &bridge_in),
              ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_o2lite_bridge_to_osc(host, hub, "synth", gone, 1, &bridge_in),
              ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_osc_bridge_to_o2lite(host, hub, osc_in, "client", 1, 1, &bridge_in),
              ROSCO_ERR_UNSUPPORTED);
    CHECK_ERR(rosco_o2lite_bridge_to_osc(host, osc_in, "synth", to_synth, 1, &bridge_in),
              ROSCO_ERR_UNSUPPORTED);
    CHECK_ERR(rosco_osc_bridge_to_o2lite(host, osc_in, hub, "", 1, 1, &bridge_in), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_osc_bridge_to_o2lite(host, osc_in, hub, "a/b", 1, 1, &bridge_in),
              ROSCO_ERR_ARG);
    /* Names that would not be literal in the bridge's OSC pattern, refused before the
     * service is offered. */
    CHECK_ERR(rosco_o2lite_bridge_to_osc(host, hub, "syn*", to_synth, 1, &bridge_in),
              ROSCO_ERR_ARG);
    CHECK_ERR(rosco_o2lite_bridge_to_osc(host, hub, "a[", to_synth, 1, &bridge_in),
              ROSCO_ERR_ARG);
    CHECK_ERR(rosco_o2lite_service_remove(host, hub, "a["), ROSCO_ERR_ARG); /* never offered */
    CHECK(strstr(rosco_last_error(), "service 'a[' is not offered") != NULL);
    /* An O2lite channel takes no packet hooks. */
    CHECK_ERR(rosco_channel_set_hooks(host, hub, NULL, drop_all, NULL, NULL), ROSCO_ERR_UNSUPPORTED);
    CHECK_OK(rosco_osc_bridge_to_o2lite(host, osc_in, hub, "client", 1, 1, &bridge_in));
    CHECK_OK(rosco_method_add(client, "/client/echo", "f", hear, &at_client, NULL, &m));

    /* Once the client is connected (its bridge id known), both ways. */
    int32_t id = -1;
    int64_t deadline = check_now_ms() + check_scale_ms(10000);
    while (id < 0 && check_now_ms() < deadline) {
        (void)rosco_poll(host, 5, NULL);
        (void)rosco_poll(client, 5, NULL);
        CHECK_OK(rosco_o2lite_bridge_id(client, o2, &id));
    }
    CHECK(id >= 0);
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/synth/freq"));
    CHECK_OK(rosco_builder_add_f32(b, 440.0f));
    CHECK_OK(rosco_o2lite_send(client, o2, b, 0.0, 1));
    CHECK(both_until(host, client, &at_synth.n, 1));
    CHECK_STR(at_synth.address, "/freq");
    CHECK(at_synth.value == 440.0f);

    CHECK_OK(rosco_channel_port(host, osc_in, &port));
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", port);
    CHECK_OK(rosco_channel_open(client, "feeder", url, &feeder));
    CHECK_OK(rosco_builder_message(b, "/echo"));
    CHECK_OK(rosco_builder_add_f32(b, 5.0f));
    CHECK_OK(rosco_send(client, feeder, b));
    CHECK(both_until(host, client, &at_client.n, 1));
    CHECK_STR(at_client.address, "/client/echo");
    CHECK(at_client.value == 5.0f);

    /* Removing a bridging method ends its bridge. A new bridge without the prefix then
     * carries a second message on the same path, after the first: when it has arrived,
     * the first would have arrived before it. */
    CHECK_OK(rosco_method_remove(host, bridge_in));
    CHECK_OK(rosco_osc_bridge_to_o2lite(host, osc_in, hub, "client", 0, 1, &bridge_in));
    CHECK_OK(rosco_send(client, feeder, b));
    CHECK_OK(rosco_builder_message(b, "/client/echo"));
    CHECK_OK(rosco_builder_add_f32(b, 6.0f));
    CHECK_OK(rosco_send(client, feeder, b));
    CHECK(both_until(host, client, &at_client.n, 2));
    CHECK(at_client.value == 6.0f);
    CHECK_INT(atomic_load(&at_client.n), 2);
    CHECK_OK(rosco_method_remove(host, bridge_out));
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(client));
    CHECK_OK(rosco_ctx_free(host));
}

/* What the thread hooks saw. */
struct threads {
    pthread_mutex_t mu;
    char started[8][32], stopped[8][32];
    pthread_t ids[8];
    int n_started, n_stopped;
    atomic_int freed, on_started_thread;
};

static void thread_started(void *user, const char *name)
{
    struct threads *t = user;
    pthread_mutex_lock(&t->mu);
    if (t->n_started < 8) {
        snprintf(t->started[t->n_started], sizeof t->started[0], "%s", name);
        t->ids[t->n_started++] = pthread_self();
    }
    pthread_mutex_unlock(&t->mu);
}

static void thread_stopped(void *user, const char *name)
{
    struct threads *t = user;
    pthread_mutex_lock(&t->mu);
    if (t->n_stopped < 8)
        snprintf(t->stopped[t->n_stopped++], sizeof t->stopped[0], "%s", name);
    pthread_mutex_unlock(&t->mu);
}

static void threads_freed(void *user)
{
    atomic_fetch_add(&((struct threads *)user)->freed, 1);
}

/* A method noting whether it runs on a thread the start hook saw. */
static int32_t on_which_thread(void *user, const rosco_msg *m)
{
    struct threads *t = user;
    (void)m;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->n_started; i++)
        if (pthread_equal(t->ids[i], pthread_self()))
            atomic_fetch_add(&t->on_started_thread, 1);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int seen(char names[][32], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static void test_thread_hooks(void)
{
    static struct threads t = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rosco_ctx_options o;
    rosco_ctx_options_init(&o);
    CHECK(o.thread_start == NULL && o.thread_stop == NULL && o.thread_user == NULL &&
          o.thread_user_free == NULL);
    o.mode = ROSCO_MODE_THREADED;
    o.workers = 2;
    o.thread_start = thread_started;
    o.thread_stop = thread_stopped;
    o.thread_user = &t;
    o.thread_user_free = threads_freed;
    rosco_ctx ctx;
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    rosco_channel rx, tx;
    rosco_method m;
    uint16_t port = 0;
    char url[64];
    CHECK_OK(rosco_method_add(ctx, "/w", NULL, on_which_thread, &t, NULL, &m));
    CHECK_OK(rosco_channel_open(ctx, "rx", "osc.udp://:0?bind=127.0.0.1", &rx));
    CHECK_OK(rosco_channel_port(ctx, rx, &port));
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", port);
    CHECK_OK(rosco_channel_open(ctx, "tx", url, &tx));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/w"));
    CHECK_OK(rosco_send(ctx, tx, b));
    rosco_builder_free(b);
    wait_at_least(&t.on_started_thread, 1);
    /* The callback ran on a worker the start hook had seen. */
    CHECK_INT(atomic_load(&t.on_started_thread), 1);
    CHECK_INT(atomic_load(&t.freed), 0);
    CHECK_OK(rosco_ctx_free(ctx));
    /* Every thread started and stopped, and the user data was freed once, by the time
     * rosco_ctx_free returned. */
    CHECK_INT(t.n_started, 3);
    CHECK_INT(t.n_stopped, 3);
    const char *names[] = {"rosco-io", "rosco-worker-0", "rosco-worker-1"};
    for (int i = 0; i < 3; i++) {
        if (!CHECK(seen(t.started, t.n_started, names[i]) && seen(t.stopped, t.n_stopped, names[i])))
            fprintf(stderr, "  thread %s\n", names[i]);
    }
    CHECK_INT(atomic_load(&t.freed), 1);

    /* Poll mode starts no thread: the user data is only freed. So is it when creation
     * fails. */
    o.mode = ROSCO_MODE_POLL;
    o.workers = 0;
    CHECK_OK(rosco_ctx_new(&o, &ctx));
    CHECK_OK(rosco_ctx_free(ctx));
    CHECK_INT(t.n_started, 3);
    CHECK_INT(atomic_load(&t.freed), 2);
    o.workers = 3; /* workers are for threaded mode */
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    CHECK_INT(atomic_load(&t.freed), 3);
    CHECK_ERR(rosco_ctx_new(&o, NULL), ROSCO_ERR_NULL);
    CHECK_INT(atomic_load(&t.freed), 4);
}

int main(void)
{
    test_checksum_tap_and_drops();
    test_replaced_while_running();
    test_user_free_and_ctx_free();
    test_o2lite_bridges();
    test_thread_hooks();
    return check_summary("hook_test");
}
