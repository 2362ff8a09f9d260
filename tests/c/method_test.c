/* Methods: literal, pattern and catch-all addresses, delivery order and return values,
 * type specs with and without coercion, user_free, methods changed from inside callbacks,
 * sending, replying and closing from callbacks, bundle callbacks, and the error paths of
 * rosco_method_add/remove, rosco_reply and rosco_ctx_set_bundle_callbacks. */
#include "check.h"

/* ---- helpers ------------------------------------------------------------------------ */

static char seq[2048];

static void seq_add(const char *s)
{
    size_t used = strlen(seq);
    snprintf(seq + used, sizeof seq - used, "%s ", s);
}

static void seq_reset(void)
{
    seq[0] = '\0';
}

struct tagged {
    const char *tag;
    int32_t ret;
    atomic_int calls;
    atomic_int freed;
    char seen_tags[32];
};

static int32_t logger(void *user, const rosco_msg *m)
{
    struct tagged *t = user;
    seq_add(t->tag);
    snprintf(t->seen_tags, sizeof t->seen_tags, "%s", rosco_msg_typetags(m));
    atomic_fetch_add(&t->calls, 1);
    return t->ret;
}

static void tagged_free(void *user)
{
    struct tagged *t = user;
    atomic_fetch_add(&t->freed, 1);
}

static atomic_int global_freed;

static void count_free(void *user)
{
    (void)user;
    atomic_fetch_add(&global_freed, 1);
}

static int32_t ignore_msg(void *user, const rosco_msg *m)
{
    (void)user;
    (void)m;
    return 0;
}

/* Sends `b` and polls until rosco_poll reports a dispatch (poll and io-thread modes). */
static int send_and_dispatch(rosco_ctx ctx, rosco_channel ch, const rosco_builder *b)
{
    rosco_status s = rosco_send(ctx, ch, b);
    if (s != ROSCO_OK) {
        fprintf(stderr, "  rosco_send: %s (%s)\n", rosco_status_str(s), rosco_last_error());
        return 0;
    }
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    uint32_t n = 0;
    while (n == 0 && check_now_ms() < deadline)
        (void)rosco_poll(ctx, 10, &n);
    return n > 0;
}

static rosco_builder *msg0(const char *address)
{
    rosco_builder *b = rosco_builder_new();
    CHECK(b != NULL);
    CHECK_OK(rosco_builder_message(b, address));
    return b;
}

/* Waits (without polling) until *counter reaches want: for threaded mode. */
static int wait_count(atomic_int *counter, int want, int timeout_ms)
{
    int64_t deadline = check_now_ms() + check_scale_ms(timeout_ms);
    while (atomic_load(counter) < want && check_now_ms() < deadline)
        check_sleep_ms(2);
    return atomic_load(counter) >= want;
}

/* ---- rosco_method_add / rosco_method_remove errors ---------------------------------- */

static void test_add_errors(rosco_ctx ctx)
{
    rosco_method m = {0x1234};
    int freed = atomic_load(&global_freed);

    CHECK_ERR(rosco_method_add(ctx, "/a", NULL, NULL, NULL, count_free, &m), ROSCO_ERR_NULL);
    CHECK_INT(atomic_load(&global_freed), ++freed);
    CHECK_ERR(rosco_method_add(ctx, "/a", NULL, ignore_msg, NULL, count_free, NULL),
              ROSCO_ERR_NULL);
    CHECK_INT(atomic_load(&global_freed), ++freed);
    static const char *const bad_patterns[] = {"", "no/slash", "/bad[pattern", "/a{b",
                                               "/a b", "x"};
    for (size_t i = 0; i < sizeof bad_patterns / sizeof bad_patterns[0]; i++) {
        if (!CHECK_ERR(rosco_method_add(ctx, bad_patterns[i], NULL, ignore_msg, NULL, count_free,
                                        &m),
                       ROSCO_ERR_ARG))
            fprintf(stderr, "  pattern '%s'\n", bad_patterns[i]);
        CHECK_INT(atomic_load(&global_freed), ++freed);
    }
    static const char *const bad_specs[] = {"q", "iq", "[i", "]", "i]", "[[i]", " "};
    for (size_t i = 0; i < sizeof bad_specs / sizeof bad_specs[0]; i++) {
        if (!CHECK_ERR(rosco_method_add(ctx, "/a", bad_specs[i], ignore_msg, NULL, count_free,
                                        &m),
                       ROSCO_ERR_ARG))
            fprintf(stderr, "  type spec '%s'\n", bad_specs[i]);
        CHECK_INT(atomic_load(&global_freed), ++freed);
    }
    CHECK_ERR(rosco_method_add(ctx, "/\xff", NULL, ignore_msg, NULL, count_free, &m),
              ROSCO_ERR_ARG);
    CHECK_INT(atomic_load(&global_freed), ++freed);
    CHECK_ERR(rosco_method_add(ctx, "/a", "i\xff", ignore_msg, NULL, count_free, &m),
              ROSCO_ERR_ARG);
    CHECK_INT(atomic_load(&global_freed), ++freed);
    CHECK_ERR(rosco_method_add((rosco_ctx){0}, "/a", NULL, ignore_msg, NULL, count_free, &m),
              ROSCO_ERR_HANDLE);
    CHECK_INT(atomic_load(&global_freed), ++freed);
    /* Without a user_free, a failure just fails. */
    CHECK_ERR(rosco_method_add(ctx, "/a", NULL, NULL, NULL, NULL, &m), ROSCO_ERR_NULL);
    CHECK(m.id == 0x1234); /* not written on failure */

    /* Valid forms. */
    static const char *const good_specs[] = {"", "i", "ifsbhtdScrmTFNI", "[i]", "i[f[s]]",
                                             "[]"};
    for (size_t i = 0; i < sizeof good_specs / sizeof good_specs[0]; i++) {
        if (CHECK_OK(rosco_method_add(ctx, "/g", good_specs[i], ignore_msg, NULL, count_free,
                                      &m)))
            CHECK_OK(rosco_method_remove(ctx, m));
        else
            fprintf(stderr, "  type spec '%s'\n", good_specs[i]);
        CHECK_INT(atomic_load(&global_freed), ++freed);
    }
    static const char *const good_patterns[] = {"/", "/a", "/a/b/c", "/*", "/a/?", "/[a-c]",
                                                "/{x,y}/z", "/[!a]"};
    for (size_t i = 0; i < sizeof good_patterns / sizeof good_patterns[0]; i++) {
        if (CHECK_OK(rosco_method_add(ctx, good_patterns[i], NULL, ignore_msg, NULL, count_free,
                                      &m)))
            CHECK_OK(rosco_method_remove(ctx, m));
        else
            fprintf(stderr, "  pattern '%s'\n", good_patterns[i]);
        CHECK_INT(atomic_load(&global_freed), ++freed);
    }

    /* Remove: stale, zero and foreign handles. */
    rosco_method a, b2;
    CHECK_OK(rosco_method_add(ctx, "/a", NULL, ignore_msg, NULL, count_free, &a));
    CHECK_OK(rosco_method_add(ctx, "/a", NULL, ignore_msg, NULL, count_free, &b2));
    CHECK(a.id != b2.id);
    CHECK_OK(rosco_method_remove(ctx, a));
    CHECK_INT(atomic_load(&global_freed), ++freed);
    CHECK_ERR(rosco_method_remove(ctx, a), ROSCO_ERR_HANDLE);
    CHECK_INT(atomic_load(&global_freed), freed);
    CHECK_ERR(rosco_method_remove(ctx, (rosco_method){0}), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_method_remove(ctx, (rosco_method){UINT64_MAX}), ROSCO_ERR_HANDLE);
    /* A slot reused by a new method: the old handle stays stale. */
    rosco_method c;
    CHECK_OK(rosco_method_add(ctx, "/a", NULL, ignore_msg, NULL, count_free, &c));
    CHECK(c.id != a.id);
    CHECK_ERR(rosco_method_remove(ctx, a), ROSCO_ERR_HANDLE);

    rosco_ctx other;
    rosco_method o1;
    CHECK_OK(rosco_ctx_new(NULL, &other));
    CHECK_OK(rosco_method_add(other, "/a", NULL, ignore_msg, NULL, count_free, &o1));
    CHECK_ERR(rosco_method_remove(other, b2), ROSCO_ERR_HANDLE); /* ctx's method, other ctx */
    CHECK_ERR(rosco_method_remove(ctx, o1), ROSCO_ERR_HANDLE);   /* other's method, ctx */
    CHECK_INT(atomic_load(&global_freed), freed);
    CHECK_OK(rosco_ctx_free(other)); /* frees o1's data */
    CHECK_INT(atomic_load(&global_freed), ++freed);
    CHECK_ERR(rosco_method_remove(other, o1), ROSCO_ERR_HANDLE);

    /* A handle of the other kind: channels and methods are numbered alike, but a
     * channel's handle names no method, nor a method's a channel. */
    rosco_channel ch;
    CHECK_OK(rosco_channel_open(ctx, "kind", "osc.udp://:0?bind=127.0.0.1", &ch));
    CHECK_ERR(rosco_method_remove(ctx, (rosco_method){ch.id}), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_close(ctx, (rosco_channel){b2.id}), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_close(ctx, (rosco_channel){c.id}), ROSCO_ERR_HANDLE);
    uint16_t port;
    CHECK_OK(rosco_channel_port(ctx, ch, &port));
    CHECK_OK(rosco_channel_close(ctx, ch));
    CHECK_INT(atomic_load(&global_freed), freed);
    CHECK_OK(rosco_method_remove(ctx, b2));
    CHECK_OK(rosco_method_remove(ctx, c));
    CHECK_INT(atomic_load(&global_freed), freed + 2);
}

/* ---- delivery order and return values ------------------------------------------------ */

static void test_order(rosco_ctx ctx, rosco_channel local)
{
    struct tagged all = {"all", 1, 0, 0, ""}, lit1 = {"lit1", 1, 0, 0, ""},
                  pat = {"pat", 1, 0, 0, ""}, lit2 = {"lit2", 0, 0, 0, ""},
                  late = {"late", 1, 0, 0, ""}, litc = {"litc", 0, 0, 0, ""};
    rosco_method h[6];
    CHECK_OK(rosco_method_add(ctx, NULL, NULL, logger, &all, tagged_free, &h[0]));
    CHECK_OK(rosco_method_add(ctx, "/a/b", NULL, logger, &lit1, tagged_free, &h[1]));
    CHECK_OK(rosco_method_add(ctx, "/a/*", NULL, logger, &pat, tagged_free, &h[2]));
    CHECK_OK(rosco_method_add(ctx, "/a/b", NULL, logger, &lit2, tagged_free, &h[3]));
    CHECK_OK(rosco_method_add(ctx, NULL, NULL, logger, &late, tagged_free, &h[4]));
    CHECK_OK(rosco_method_add(ctx, "/a/c", NULL, logger, &litc, tagged_free, &h[5]));

    static const struct {
        const char *address;
        const char *expect;
    } cases[] = {
        /* Registration order; a literal address stops at the first method returning 0. */
        {"/a/b", "all lit1 pat lit2 "},
        {"/a/c", "all pat late litc "},
        {"/a/d", "all pat late "},
        {"/x", "all late "},
        {"/a/b/c", "all late "},
        /* A pattern address reaches every matching literal method whatever they return,
         * and a pattern method only when the patterns are the same string. */
        {"/a/?", "all lit1 lit2 late litc "},
        {"/a/*", "all lit1 pat lit2 late litc "},
        {"/a/{b,x}", "all lit1 lit2 late "},
        {"/[!a]", "all late "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rosco_builder *b = msg0(cases[i].address);
        seq_reset();
        CHECK(send_and_dispatch(ctx, local, b));
        if (!CHECK_STR(seq, cases[i].expect))
            fprintf(stderr, "  address '%s'\n", cases[i].address);
        rosco_builder_free(b);
    }
    for (int i = 0; i < 6; i++)
        CHECK_OK(rosco_method_remove(ctx, h[i]));
    struct tagged *all_t[] = {&all, &lit1, &pat, &lit2, &late, &litc};
    for (int i = 0; i < 6; i++)
        CHECK_INT(atomic_load(&all_t[i]->freed), 1);
    /* Removed methods are not called. */
    rosco_builder *b = msg0("/a/b");
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, "");
    rosco_builder_free(b);
}

/* ---- type specs and coercion --------------------------------------------------------- */

static int32_t typed(void *user, const rosco_msg *m)
{
    struct tagged *t = user;
    logger(user, m);
    /* What the method sees matches its spec. */
    if (strcmp(t->tag, "f") == 0) {
        float f = 0;
        int32_t i = 0;
        CHECK_OK(rosco_msg_get_f32(m, 0, &f));
        CHECK_ERR(rosco_msg_get_i32(m, 0, &i), ROSCO_ERR_TYPE);
    } else if (strcmp(t->tag, "i") == 0) {
        int32_t i = 0;
        CHECK_OK(rosco_msg_get_i32(m, 0, &i));
    }
    return 1;
}

static void test_typespecs(int coerce)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_POLL);
    rosco_ctx ctx;
    rosco_channel local;
    o.coerce = coerce;
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    struct tagged any = {"any", 1, 0, 0, ""}, ti = {"i", 1, 0, 0, ""}, tf = {"f", 1, 0, 0, ""},
                  none = {"none", 1, 0, 0, ""}, ifs = {"ifs", 1, 0, 0, ""},
                  ts = {"s", 1, 0, 0, ""}, tS = {"S", 1, 0, 0, ""}, td = {"d", 1, 0, 0, ""},
                  th = {"h", 1, 0, 0, ""}, arr = {"[i]", 1, 0, 0, ""};
    rosco_method m;
    CHECK_OK(rosco_method_add(ctx, "/t", NULL, typed, &any, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/t", "i", typed, &ti, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/t", "f", typed, &tf, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/t", "", typed, &none, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/t", "ifs", typed, &ifs, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/t", "s", typed, &ts, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/t", "S", typed, &tS, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/t", "d", typed, &td, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/t", "h", typed, &th, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/t", "[i]", typed, &arr, NULL, &m));

    rosco_builder *b = rosco_builder_new();
    /* An int: with coercion it also reaches the f, d and h methods, converted. */
    CHECK_OK(rosco_builder_message(b, "/t"));
    CHECK_OK(rosco_builder_add_i32(b, 3));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, coerce ? "any i f d h " : "any i ");
    if (coerce) {
        CHECK_STR(tf.seen_tags, "f");
        CHECK_STR(td.seen_tags, "d");
        CHECK_STR(th.seen_tags, "h");
    }
    CHECK_STR(any.seen_tags, "i");
    /* No arguments. */
    CHECK_OK(rosco_builder_message(b, "/t"));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, "any none ");
    /* ifs. */
    CHECK_OK(rosco_builder_message(b, "/t"));
    CHECK_OK(rosco_builder_add_i32(b, 1));
    CHECK_OK(rosco_builder_add_f32(b, 1.5f));
    CHECK_OK(rosco_builder_add_str(b, "x"));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, "any ifs ");
    /* A symbol reaches the s method as a string when coercing, and the other way. */
    CHECK_OK(rosco_builder_message(b, "/t"));
    CHECK_OK(rosco_builder_add_symbol(b, "sym"));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, coerce ? "any s S " : "any S ");
    if (coerce)
        CHECK_STR(ts.seen_tags, "s");
    CHECK_OK(rosco_builder_message(b, "/t"));
    CHECK_OK(rosco_builder_add_str(b, "str"));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, coerce ? "any s S " : "any s ");
    /* A double reaches i (truncated), f and h when coercing. */
    CHECK_OK(rosco_builder_message(b, "/t"));
    CHECK_OK(rosco_builder_add_f64(b, 2.75));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, coerce ? "any i f d h " : "any d ");
    /* An array matches its spec exactly. */
    CHECK_OK(rosco_builder_message(b, "/t"));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_OK(rosco_builder_add_i32(b, 4));
    CHECK_OK(rosco_builder_array_end(b));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, "any [i] ");
    /* Types that never coerce: a blob reaches only the catch-all. */
    const uint8_t blob[] = {1, 2, 3};
    CHECK_OK(rosco_builder_message(b, "/t"));
    CHECK_OK(rosco_builder_add_blob(b, blob, sizeof blob));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, "any ");
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
}

/* Coercion of values, checked in the callback. */
struct coerced_values {
    atomic_int calls;
    uint8_t bytes[64];
    size_t nbytes;
    float f;
    int32_t i;
    double d;
    int64_t h;
};

static int32_t take_f(void *user, const rosco_msg *m)
{
    struct coerced_values *v = user;
    const uint8_t *d = NULL;
    size_t n = 0;
    CHECK_OK(rosco_msg_get_f32(m, 0, &v->f));
    if (CHECK_OK(rosco_msg_bytes(m, &d, &n)) && n <= sizeof v->bytes) {
        memcpy(v->bytes, d, n);
        v->nbytes = n;
    }
    atomic_fetch_add(&v->calls, 1);
    return 1;
}

static int32_t take_i(void *user, const rosco_msg *m)
{
    struct coerced_values *v = user;
    CHECK_OK(rosco_msg_get_i32(m, 0, &v->i));
    atomic_fetch_add(&v->calls, 1);
    return 1;
}

static int32_t take_dh(void *user, const rosco_msg *m)
{
    struct coerced_values *v = user;
    CHECK_OK(rosco_msg_get_f64(m, 0, &v->d));
    CHECK_OK(rosco_msg_get_i64(m, 1, &v->h));
    atomic_fetch_add(&v->calls, 1);
    return 1;
}

static void test_coerced_values(rosco_ctx ctx, rosco_channel local)
{
    struct coerced_values v;
    memset(&v, 0, sizeof v);
    rosco_method a, b2, c;
    CHECK_OK(rosco_method_add(ctx, "/cf", "f", take_f, &v, NULL, &a));
    CHECK_OK(rosco_method_add(ctx, "/ci", "i", take_i, &v, NULL, &b2));
    CHECK_OK(rosco_method_add(ctx, "/cdh", "dh", take_dh, &v, NULL, &c));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/cf"));
    CHECK_OK(rosco_builder_add_i32(b, 7)); /* int sent, "f" method receives a float */
    const uint8_t *sent;
    size_t sent_len;
    CHECK_OK(rosco_builder_bytes(b, &sent, &sent_len));
    uint8_t sent_copy[64];
    memcpy(sent_copy, sent, sent_len);
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK(v.f == 7.0f);
    /* rosco_msg_bytes gives the bytes as delivered: here re-encoded with the coerced type,
     * the address and length unchanged (",i 7" became ",f 7.0"). */
    static const uint8_t coerced[] = {'/', 'c', 'f', 0, ',', 'f', 0, 0, 0x40, 0xe0, 0, 0};
    if (!CHECK(v.nbytes == sizeof coerced && memcmp(v.bytes, coerced, sizeof coerced) == 0))
        fprintf(stderr, "  rosco_msg_bytes in a coercing method: %zu bytes\n", v.nbytes);
    (void)sent_copy;
    CHECK_OK(rosco_builder_message(b, "/ci"));
    CHECK_OK(rosco_builder_add_f32(b, -2.5f));
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_INT(v.i, -2);
    CHECK_OK(rosco_builder_message(b, "/cdh"));
    CHECK_OK(rosco_builder_add_i32(b, 5));
    CHECK_OK(rosco_builder_add_f32(b, 9.0f));
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK(v.d == 5.0);
    CHECK_INT(v.h, 9);
    CHECK_INT(atomic_load(&v.calls), 3);
    CHECK_OK(rosco_method_remove(ctx, a));
    CHECK_OK(rosco_method_remove(ctx, b2));
    CHECK_OK(rosco_method_remove(ctx, c));
    rosco_builder_free(b);
}

/* ---- user_free ----------------------------------------------------------------------- */

static void test_user_free(void)
{
    rosco_ctx ctx;
    struct tagged t[4] = {{"a", 0, 0, 0, ""}, {"b", 0, 0, 0, ""}, {"c", 0, 0, 0, ""},
                          {"d", 0, 0, 0, ""}};
    rosco_method m[4];
    CHECK_OK(rosco_ctx_new(NULL, &ctx));
    for (int i = 0; i < 4; i++)
        CHECK_OK(rosco_method_add(ctx, i % 2 ? "/uf" : NULL, NULL, logger, &t[i], tagged_free,
                                  &m[i]));
    for (int i = 0; i < 4; i++)
        CHECK_INT(atomic_load(&t[i].freed), 0);
    CHECK_OK(rosco_method_remove(ctx, m[0]));
    CHECK_INT(atomic_load(&t[0].freed), 1);
    CHECK_ERR(rosco_method_remove(ctx, m[0]), ROSCO_ERR_HANDLE);
    CHECK_INT(atomic_load(&t[0].freed), 1);
    /* The rest go with the context, once each. */
    CHECK_OK(rosco_ctx_free(ctx));
    for (int i = 0; i < 4; i++)
        CHECK_INT(atomic_load(&t[i].freed), 1);
    /* The same user pointer on two methods is freed once per method. */
    CHECK_OK(rosco_ctx_new(NULL, &ctx));
    struct tagged shared = {"s", 0, 0, 0, ""};
    CHECK_OK(rosco_method_add(ctx, "/x", NULL, logger, &shared, tagged_free, &m[0]));
    CHECK_OK(rosco_method_add(ctx, "/y", NULL, logger, &shared, tagged_free, &m[1]));
    CHECK_OK(rosco_ctx_free(ctx));
    CHECK_INT(atomic_load(&shared.freed), 2);
    /* A method without user_free. */
    CHECK_OK(rosco_ctx_new(NULL, &ctx));
    CHECK_OK(rosco_method_add(ctx, "/x", NULL, logger, &shared, NULL, &m[0]));
    CHECK_OK(rosco_method_remove(ctx, m[0]));
    CHECK_OK(rosco_ctx_free(ctx));
    CHECK_INT(atomic_load(&shared.freed), 2);
}

/* ---- changing methods from callbacks ------------------------------------------------- */

struct mutator {
    rosco_ctx ctx;
    rosco_method self;
    rosco_method victim;
    struct tagged *victim_tag;
    struct tagged *added;
    rosco_method added_handle;
    atomic_int calls;
    atomic_int freed;
    rosco_status remove_self, remove_victim, remove_self_again, add_status;
    int freed_during_call;
};

static void mutator_free(void *user)
{
    struct mutator *mu = user;
    atomic_fetch_add(&mu->freed, 1);
}

static int32_t mutate(void *user, const rosco_msg *m)
{
    struct mutator *mu = user;
    (void)m;
    seq_add("mut");
    mu->remove_self = rosco_method_remove(mu->ctx, mu->self);
    mu->remove_victim = rosco_method_remove(mu->ctx, mu->victim);
    mu->remove_self_again = rosco_method_remove(mu->ctx, mu->self);
    /* Its user data is still in use: not freed while this call runs. */
    mu->freed_during_call = atomic_load(&mu->freed);
    mu->add_status = rosco_method_add(mu->ctx, "/r", NULL, logger, mu->added, tagged_free,
                                      &mu->added_handle);
    atomic_fetch_add(&mu->calls, 1);
    return 1; /* pass on: the victim would be next */
}

static void test_mutate_in_callback(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    struct mutator mu;
    struct tagged victim = {"victim", 1, 0, 0, ""}, added = {"added", 1, 0, 0, ""};
    rosco_channel local;
    int before = CHECK_FAILURES;

    memset(&mu, 0, sizeof mu);
    mu.remove_self = mu.remove_victim = mu.remove_self_again = mu.add_status = 12345;
    mu.freed_during_call = -1;
    mu.victim_tag = &victim;
    mu.added = &added;
    if (!CHECK_OK(rosco_ctx_new(&o, &mu.ctx)))
        return;
    CHECK_OK(rosco_channel_find(mu.ctx, "_local", &local));
    CHECK_OK(rosco_method_add(mu.ctx, "/r", NULL, mutate, &mu, mutator_free, &mu.self));
    CHECK_OK(rosco_method_add(mu.ctx, "/r", NULL, logger, &victim, tagged_free, &mu.victim));
    rosco_builder *b = msg0("/r");
    seq_reset();
    if (mode == ROSCO_MODE_THREADED) {
        CHECK_OK(rosco_send(mu.ctx, local, b));
        CHECK(wait_count(&mu.freed, 1, 3000));
        CHECK(wait_count(&victim.freed, 1, 3000));
    } else {
        CHECK(send_and_dispatch(mu.ctx, local, b));
    }
    CHECK_INT(atomic_load(&mu.calls), 1);
    CHECK_STATUS(mu.remove_self, ROSCO_OK);
    CHECK_STATUS(mu.remove_victim, ROSCO_OK);
    CHECK_STATUS(mu.remove_self_again, ROSCO_ERR_HANDLE);
    CHECK_STATUS(mu.add_status, ROSCO_OK);
    CHECK_INT(mu.freed_during_call, 0);
    /* The victim, removed before its turn, was not called. */
    CHECK_INT(atomic_load(&victim.calls), 0);
    CHECK_INT(atomic_load(&mu.freed), 1);
    CHECK_INT(atomic_load(&victim.freed), 1);
    /* Next time only the method added from the callback runs. */
    if (mode == ROSCO_MODE_THREADED) {
        CHECK_OK(rosco_send(mu.ctx, local, b));
        CHECK(wait_count(&added.calls, 1, 3000));
    } else {
        CHECK(send_and_dispatch(mu.ctx, local, b));
    }
    check_sleep_ms(10);
    CHECK_INT(atomic_load(&added.calls), 1);
    CHECK_INT(atomic_load(&mu.calls), 1);
    CHECK_INT(atomic_load(&victim.calls), 0);
    CHECK_OK(rosco_method_remove(mu.ctx, mu.added_handle));
    CHECK_INT(atomic_load(&added.freed), 1);
    CHECK_OK(rosco_ctx_free(mu.ctx));
    CHECK_INT(atomic_load(&mu.freed), 1);
    CHECK_INT(atomic_load(&victim.freed), 1);
    CHECK_INT(atomic_load(&added.freed), 1);
    rosco_builder_free(b);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(mode));
}

/* ---- sending, replying and closing from callbacks ------------------------------------ */

struct actor {
    rosco_ctx ctx;
    rosco_ctx other; /* another context, for the foreign-context reply */
    rosco_channel local;
    rosco_channel pending; /* a TCP client that cannot connect: it always has output */
    atomic_int calls;
    rosco_status st[12];
    rosco_channel arrived_on;
    int mode;
};

static int32_t send_from_callback(void *user, const rosco_msg *m)
{
    struct actor *a = user;
    (void)m;
    rosco_builder *b = rosco_builder_new();
    rosco_builder_message(b, "/sent");
    rosco_builder_add_i32(b, 11);
    a->st[0] = rosco_send(a->ctx, a->local, b);
    rosco_builder_free(b);
    atomic_fetch_add(&a->calls, 1);
    return 0;
}

static int32_t reply_from_callback(void *user, const rosco_msg *m)
{
    struct actor *a = user;
    rosco_builder *b = rosco_builder_new();
    rosco_builder *empty = rosco_builder_new();
    rosco_builder_message(b, "/replied");
    rosco_builder_add_i32(b, 7);
    a->st[0] = rosco_reply(a->ctx, m, b);
    a->st[1] = rosco_reply(a->ctx, NULL, b);
    a->st[2] = rosco_reply(a->ctx, m, NULL);
    a->st[3] = rosco_reply(a->ctx, m, empty);
    a->st[4] = rosco_reply((rosco_ctx){0}, m, b);
    /* In poll and threaded modes the I/O is this thread's: flushing from a callback is
     * refused (waiting could only wait out the timeout). */
    a->st[5] = rosco_channel_flush(a->ctx, a->pending, 20);
    rosco_msg_channel(m, &a->arrived_on);
    rosco_builder_free(empty);
    rosco_builder_free(b);
    atomic_fetch_add(&a->calls, 1);
    return 0;
}

/* Reply through another context: the message is not that context's. */
static int32_t reply_foreign(void *user, const rosco_msg *m)
{
    struct actor *a = user;
    rosco_builder *b = rosco_builder_new();
    rosco_builder_message(b, "/foreign");
    a->st[6] = rosco_reply(a->other, m, b);
    rosco_builder_free(b);
    atomic_fetch_add(&a->calls, 1);
    return 0;
}

static int32_t close_from_callback(void *user, const rosco_msg *m)
{
    struct actor *a = user;
    rosco_channel ch = {0};
    a->st[7] = rosco_msg_channel(m, &ch);
    a->st[8] = rosco_channel_close(a->ctx, ch);
    a->st[9] = rosco_channel_close(a->ctx, ch);
    uint16_t port;
    a->st[10] = rosco_channel_port(a->ctx, ch, &port);
    a->arrived_on = ch;
    atomic_fetch_add(&a->calls, 1);
    return 0;
}

struct rec {
    atomic_int n;
    int32_t value;
    rosco_channel channel;
};

static int32_t record(void *user, const rosco_msg *m)
{
    struct rec *r = user;
    r->value = -1;
    (void)rosco_msg_get_i32(m, 0, &r->value);
    (void)rosco_msg_channel(m, &r->channel);
    atomic_fetch_add(&r->n, 1);
    return 0;
}

static int wait_rec(rosco_ctx ctx, int32_t mode, atomic_int *n, int want)
{
    if (mode == ROSCO_MODE_THREADED)
        return wait_count(n, want, 3000);
    return POLL_UNTIL(ctx, atomic_load(n) >= want, 3000);
}

static void test_callback_actions(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    struct actor a;
    rosco_channel in, out, tl, tc;
    rosco_method m;
    struct rec sent = {0, 0, {0}}, replied = {0, 0, {0}}, foreign = {0, 0, {0}};
    uint16_t port;
    char url[96];
    int before = CHECK_FAILURES;

    memset(&a, 0, sizeof a);
    for (int i = 0; i < 12; i++)
        a.st[i] = 12345;
    a.mode = mode;
    if (!CHECK_OK(rosco_ctx_new(&o, &a.ctx)))
        return;
    CHECK_OK(rosco_ctx_new(NULL, &a.other));
    CHECK_OK(rosco_channel_find(a.ctx, "_local", &a.local));
    CHECK_OK(check_udp_pair(a.ctx, "in", "out", &in, &out, &port));
    /* Nothing listens for TCP on the UDP listener's port number. */
    snprintf(url, sizeof url, "osc.tcp://127.0.0.1:%u?backoff_ms=60000", (unsigned)port);
    CHECK_OK(rosco_channel_open(a.ctx, "pending", url, &a.pending));
    /* The other context has a UDP channel in the same slot as `in`. */
    rosco_channel oin, oout;
    struct rec other_got = {0, 0, {0}};
    CHECK_OK(check_udp_pair(a.other, "in", "out", &oin, &oout, NULL));
    CHECK_OK(rosco_method_add(a.other, NULL, NULL, record, &other_got, NULL, &m));

    CHECK_OK(rosco_method_add(a.ctx, "/send", NULL, send_from_callback, &a, NULL, &m));
    CHECK_OK(rosco_method_add(a.ctx, "/sent", NULL, record, &sent, NULL, &m));
    CHECK_OK(rosco_method_add(a.ctx, "/reply", NULL, reply_from_callback, &a, NULL, &m));
    CHECK_OK(rosco_method_add(a.ctx, "/replied", NULL, record, &replied, NULL, &m));
    CHECK_OK(rosco_method_add(a.ctx, "/foreignreply", NULL, reply_foreign, &a, NULL, &m));
    CHECK_OK(rosco_method_add(a.ctx, "/foreign", NULL, record, &foreign, NULL, &m));
    CHECK_OK(rosco_method_add(a.ctx, "/close", NULL, close_from_callback, &a, NULL, &m));

    /* Send from a callback. */
    rosco_builder *b = msg0("/send");
    CHECK_OK(rosco_send(a.ctx, out, b));
    CHECK(wait_rec(a.ctx, mode, &sent.n, 1));
    CHECK_STATUS(a.st[0], ROSCO_OK);
    CHECK_INT(sent.value, 11);
    CHECK(sent.channel.id == a.local.id);

    /* Reply over UDP: it goes back to the sending channel's socket. */
    CHECK_OK(rosco_builder_message(b, "/reply"));
    CHECK_OK(rosco_send(a.ctx, out, b));
    CHECK(wait_rec(a.ctx, mode, &replied.n, 1));
    CHECK_STATUS(a.st[0], ROSCO_OK);
    CHECK_STATUS(a.st[1], ROSCO_ERR_NULL);
    CHECK_STATUS(a.st[2], ROSCO_ERR_NULL);
    CHECK_STATUS(a.st[3], ROSCO_ERR_ARG);
    CHECK_STATUS(a.st[4], ROSCO_ERR_HANDLE);
    CHECK_STATUS(a.st[5], mode == ROSCO_MODE_IO_THREAD ? ROSCO_ERR_TIMEOUT : ROSCO_ERR_BUSY);
    CHECK(a.arrived_on.id == in.id);
    CHECK_INT(replied.value, 7);
    CHECK(replied.channel.id == out.id);

    /* Reply over TCP: to the connection the message came on. */
    CHECK_OK(rosco_channel_open(a.ctx, "tl", "osc.tcp://:0?bind=127.0.0.1", &tl));
    CHECK_OK(rosco_channel_port(a.ctx, tl, &port));
    snprintf(url, sizeof url, "osc.tcp://127.0.0.1:%u", (unsigned)port);
    CHECK_OK(rosco_channel_open(a.ctx, "tc", url, &tc));
    CHECK_OK(rosco_builder_message(b, "/reply"));
    CHECK_OK(rosco_send(a.ctx, tc, b));
    CHECK(wait_rec(a.ctx, mode, &replied.n, 2));
    CHECK(a.arrived_on.id == tl.id);
    CHECK(replied.channel.id == tc.id);
    CHECK_STATUS(a.st[0], ROSCO_OK);

    /* Replying through another context must not send on that context's channels. */
    CHECK_OK(rosco_builder_message(b, "/foreignreply"));
    CHECK_OK(rosco_send(a.ctx, out, b));
    CHECK(wait_rec(a.ctx, mode, &a.calls, 4));
    if (mode == ROSCO_MODE_THREADED)
        check_sleep_ms(100);
    else
        check_poll_for(a.ctx, 100);
    CHECK_STATUS(a.st[6], ROSCO_ERR_HANDLE);
    CHECK_INT(atomic_load(&foreign.n), 0);
    /* (Had it been sent from the other context's socket, `out` would have it now.) */

    /* Close the channel a message arrived on, from its callback. */
    CHECK_OK(rosco_builder_message(b, "/close"));
    CHECK_OK(rosco_send(a.ctx, out, b));
    CHECK(wait_rec(a.ctx, mode, &a.calls, 5));
    CHECK_STATUS(a.st[7], ROSCO_OK);
    CHECK_STATUS(a.st[8], ROSCO_OK);
    CHECK_STATUS(a.st[9], ROSCO_ERR_HANDLE);
    CHECK_STATUS(a.st[10], ROSCO_ERR_HANDLE);
    CHECK(a.arrived_on.id == in.id);
    uint16_t p2;
    CHECK_ERR(rosco_channel_port(a.ctx, in, &p2), ROSCO_ERR_HANDLE);
    /* Nothing more arrives through it. */
    CHECK_OK(rosco_builder_message(b, "/sent"));
    CHECK_OK(rosco_send(a.ctx, out, b));
    if (mode == ROSCO_MODE_THREADED)
        check_sleep_ms(100);
    else
        check_poll_for(a.ctx, 100);
    if (!CHECK_INT(atomic_load(&sent.n), 1))
        fprintf(stderr, "  a datagram sent after rosco_channel_close returned was still "
                        "received on the closed channel\n");

    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(a.ctx));
    CHECK_OK(rosco_ctx_free(a.other));
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(mode));
}

/* ---- bundle callbacks ---------------------------------------------------------------- */

struct bundle_log {
    int starts, ends;
    uint64_t tt[8];
    int ntt;
};

static void on_start(void *user, uint64_t timetag)
{
    struct bundle_log *l = user;
    l->starts++;
    if (l->ntt < 8)
        l->tt[l->ntt++] = timetag;
    seq_add("[");
}

static void on_end(void *user, uint64_t timetag)
{
    struct bundle_log *l = user;
    l->ends++;
    if (l->ntt < 8)
        l->tt[l->ntt++] = timetag;
    seq_add("]");
}

static int32_t name_logger(void *user, const rosco_msg *m)
{
    (void)user;
    seq_add(rosco_msg_address(m) + 1);
    return 0;
}

static void test_bundle_callbacks(rosco_ctx ctx, rosco_channel local)
{
    struct bundle_log l;
    rosco_method m;
    memset(&l, 0, sizeof l);
    CHECK_OK(rosco_method_add(ctx, NULL, NULL, name_logger, NULL, NULL, &m));
    CHECK_OK(rosco_ctx_set_bundle_callbacks(ctx, on_start, on_end, &l));

    uint64_t past = rosco_timetag_from_unix(1000000000.0);
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/b1"));
    CHECK_OK(rosco_builder_bundle_begin(b, past));
    CHECK_OK(rosco_builder_message(b, "/b2"));
    CHECK_OK(rosco_builder_message(b, "/b3"));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_builder_message(b, "/b4"));
    CHECK_OK(rosco_builder_bundle_end(b));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, "[ b1 [ b2 b3 ] b4 ] ");
    CHECK_INT(l.starts, 2);
    CHECK_INT(l.ends, 2);
    CHECK_INT(l.ntt, 4);
    /* The outer bundle is immediate; the inner one's effective time is its own. */
    CHECK(l.tt[0] == ROSCO_TIMETAG_IMMEDIATE);
    CHECK(l.tt[1] == past);
    CHECK(l.tt[2] == past);
    CHECK(l.tt[3] == ROSCO_TIMETAG_IMMEDIATE);

    /* A lone message calls neither. */
    CHECK_OK(rosco_builder_message(b, "/lone"));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, "lone ");
    /* An empty bundle calls both. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_bundle_end(b));
    seq_reset();
    CHECK_OK(rosco_send(ctx, local, b));
    check_poll_for(ctx, 50);
    CHECK_STR(seq, "[ ] ");
    /* Only a start callback. */
    CHECK_OK(rosco_ctx_set_bundle_callbacks(ctx, on_start, NULL, &l));
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/x"));
    CHECK_OK(rosco_builder_bundle_end(b));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, "[ x ");
    /* Removed. */
    CHECK_OK(rosco_ctx_set_bundle_callbacks(ctx, NULL, NULL, NULL));
    seq_reset();
    CHECK(send_and_dispatch(ctx, local, b));
    CHECK_STR(seq, "x ");
    CHECK_OK(rosco_method_remove(ctx, m));
    rosco_builder_free(b);
}

/* Matching on its own, as dispatch matches (OSC 1.0 and 1.1). */
static void test_pattern_match(void)
{
    static const struct {
        const char *pattern, *address;
        int32_t want;
    } cases[] = {
        {"/synth/*/freq", "/synth/1/freq", 1},
        {"/synth/[0-9]/{freq,gain}", "/synth/7/gain", 1},
        {"/synth/[!0-9]", "/synth/1", 0},
        {"//freq", "/synth/1/freq", 1},
        {"/a?c", "/abcd", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t matched = -1;
        CHECK_OK(rosco_pattern_match(cases[i].pattern, cases[i].address, &matched));
        if (!CHECK_INT(matched, cases[i].want))
            fprintf(stderr, "  %s against %s\n", cases[i].pattern, cases[i].address);
    }
    int32_t matched = -1;
    CHECK_ERR(rosco_pattern_match("/synth/[1-", "/synth/1", &matched), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "pattern") != NULL);
    CHECK_INT(matched, -1);
    CHECK_ERR(rosco_pattern_match(NULL, "/a", &matched), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_pattern_match("/a", NULL, &matched), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_pattern_match("/a", "/a", NULL), ROSCO_ERR_NULL);
}

int main(void)
{
    rosco_ctx ctx;
    rosco_channel local;

    if (!CHECK_OK(rosco_ctx_new(NULL, &ctx)))
        return check_summary("method_test");
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    test_add_errors(ctx);
    test_order(ctx, local);
    test_coerced_values(ctx, local);
    test_bundle_callbacks(ctx, local);
    CHECK_OK(rosco_ctx_free(ctx));

    test_pattern_match();
    test_typespecs(1);
    test_typespecs(0);
    test_user_free();
    test_mutate_in_callback(ROSCO_MODE_POLL);
    test_mutate_in_callback(ROSCO_MODE_IO_THREAD);
    test_mutate_in_callback(ROSCO_MODE_THREADED);
    test_callback_actions(ROSCO_MODE_POLL);
    test_callback_actions(ROSCO_MODE_IO_THREAD);
    test_callback_actions(ROSCO_MODE_THREADED);
    return check_summary("method_test");
}
