/* Received messages: every accessor on every argument type (ifsbhtdScrmTFNI[]), type and
 * range errors, NULL arguments, rosco_msg_source/channel/bundle_time/received/bytes, and
 * timed bundles (never delivered before their timetag). */
#include "check.h"


#define TAGS "ifsbhtdScrmTFNI[]"
#define NARGS 17

static const uint8_t blob_value[] = {9, 8, 7, 6, 5};

enum kind { K_I32, K_F32, K_I64, K_F64, K_STR, K_BLOB, K_TT, K_CHAR, K_MIDI, K_RGBA, K_BOOL,
            K_COUNT, K_NONE = K_COUNT };

static const char *const kind_name[K_COUNT] = {"i32", "f32", "i64", "f64", "str", "blob",
                                               "timetag", "char", "midi", "rgba", "bool"};

static enum kind kind_of(char tag)
{
    switch (tag) {
    case 'i': return K_I32;
    case 'f': return K_F32;
    case 'h': return K_I64;
    case 'd': return K_F64;
    case 's':
    case 'S': return K_STR;
    case 'b': return K_BLOB;
    case 't': return K_TT;
    case 'c': return K_CHAR;
    case 'm': return K_MIDI;
    case 'r': return K_RGBA;
    case 'T':
    case 'F': return K_BOOL;
    default: return K_NONE;
    }
}

union value {
    int32_t i32;
    float f32;
    int64_t i64;
    double f64;
    const char *str;
    struct {
        const uint8_t *data;
        size_t len;
    } blob;
    uint64_t tt;
    uint8_t ch;
    uint32_t u32;
};

/* Calls accessor `k`; with `null_out` it passes NULL for the output pointer(s). */
static rosco_status get(const rosco_msg *m, enum kind k, uint32_t index, union value *v,
                        int null_out)
{
    switch (k) {
    case K_I32: return rosco_msg_get_i32(m, index, null_out ? NULL : &v->i32);
    case K_F32: return rosco_msg_get_f32(m, index, null_out ? NULL : &v->f32);
    case K_I64: return rosco_msg_get_i64(m, index, null_out ? NULL : &v->i64);
    case K_F64: return rosco_msg_get_f64(m, index, null_out ? NULL : &v->f64);
    case K_STR: return rosco_msg_get_str(m, index, null_out ? NULL : &v->str);
    case K_BLOB:
        return rosco_msg_get_blob(m, index, null_out ? NULL : &v->blob.data,
                                  null_out ? NULL : &v->blob.len);
    case K_TT: return rosco_msg_get_timetag(m, index, null_out ? NULL : &v->tt);
    case K_CHAR: return rosco_msg_get_char(m, index, null_out ? NULL : &v->ch);
    case K_MIDI: return rosco_msg_get_midi(m, index, null_out ? NULL : &v->u32);
    case K_RGBA: return rosco_msg_get_rgba(m, index, null_out ? NULL : &v->u32);
    case K_BOOL: return rosco_msg_get_bool(m, index, null_out ? NULL : &v->i32);
    default: return 12345;
    }
}

static rosco_builder *all_types_builder(void)
{
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/types"));
    CHECK_OK(rosco_builder_add_i32(b, -7));
    CHECK_OK(rosco_builder_add_f32(b, 2.5f));
    CHECK_OK(rosco_builder_add_str(b, "str"));
    CHECK_OK(rosco_builder_add_blob(b, blob_value, sizeof blob_value));
    CHECK_OK(rosco_builder_add_i64(b, -(1LL << 40)));
    CHECK_OK(rosco_builder_add_timetag(b, 0x0102030405060708ULL));
    CHECK_OK(rosco_builder_add_f64(b, 3.25));
    CHECK_OK(rosco_builder_add_symbol(b, "sym"));
    CHECK_OK(rosco_builder_add_char(b, 'z'));
    CHECK_OK(rosco_builder_add_rgba(b, 0xAABBCCDDu));
    CHECK_OK(rosco_builder_add_midi(b, 0x00903C7Fu));
    CHECK_OK(rosco_builder_add_bool(b, 1));
    CHECK_OK(rosco_builder_add_bool(b, 0));
    CHECK_OK(rosco_builder_add_nil(b));
    CHECK_OK(rosco_builder_add_impulse(b));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_OK(rosco_builder_array_end(b));
    return b;
}

/* Checks the value of argument `index` read with its own accessor. */
static void check_value(uint32_t index, const union value *v)
{
    switch (index) {
    case 0: CHECK_INT(v->i32, -7); break;
    case 1: CHECK(v->f32 == 2.5f); break;
    case 2: CHECK_STR(v->str, "str"); break;
    case 3:
        CHECK_INT(v->blob.len, sizeof blob_value);
        CHECK(v->blob.data != NULL && memcmp(v->blob.data, blob_value, sizeof blob_value) == 0);
        break;
    case 4: CHECK(v->i64 == -(1LL << 40)); break;
    case 5: CHECK(v->tt == 0x0102030405060708ULL); break;
    case 6: CHECK(v->f64 == 3.25); break;
    case 7: CHECK_STR(v->str, "sym"); break;
    case 8: CHECK_INT(v->ch, 'z'); break;
    case 9: CHECK(v->u32 == 0xAABBCCDDu); break;
    case 10: CHECK(v->u32 == 0x00903C7Fu); break;
    case 11: CHECK_INT(v->i32, 1); break;
    case 12: CHECK_INT(v->i32, 0); break;
    default: CHECK(0); break;
    }
}

struct seen {
    atomic_int calls;
    rosco_channel expect_channel;
    const uint8_t *expect_bytes;
    size_t expect_len;
    char expect_source[64]; /* "" when the source is not IP */
    uint64_t sent_at;
};

static int32_t check_all_types(void *user, const rosco_msg *m)
{
    struct seen *s = user;
    int before = CHECK_FAILURES;

    CHECK_STR(rosco_msg_address(m), "/types");
    CHECK_STR(rosco_msg_typetags(m), TAGS);
    CHECK_INT(rosco_msg_argc(m), NARGS);

    /* Every accessor on every argument: its own type gives the value, others TYPE. */
    for (uint32_t i = 0; i < NARGS; i++) {
        enum kind own = kind_of(TAGS[i]);
        for (int k = 0; k < K_COUNT; k++) {
            union value v;
            memset(&v, 0xA5, sizeof v);
            union value untouched = v;
            rosco_status st = k == (int)own ? get(m, (enum kind)k, i, &v, 0)
                                            : (check_plant_error_(),
                                               get(m, (enum kind)k, i, &v, 0));
            if (k == (int)own) {
                if (CHECK_OK(st))
                    check_value(i, &v);
            } else {
                if (!check_status_(st, ROSCO_ERR_TYPE, 1, __FILE__, __LINE__,
                                   "accessor on an argument of another type"))
                    fprintf(stderr, "  rosco_msg_get_%s on argument %u ('%c')\n", kind_name[k],
                            i, TAGS[i]);
                CHECK(memcmp(&v, &untouched, sizeof v) == 0); /* out not written */
            }
            /* NULL output pointers. */
            if (k == (int)own)
                CHECK_ERR(get(m, (enum kind)k, i, &v, 1), ROSCO_ERR_NULL);
        }
    }
    /* One output NULL: the other is not written either. */
    const uint8_t *only_data = NULL;
    size_t only_len = 12345;
    CHECK_ERR(rosco_msg_get_blob(m, 3, &only_data, NULL), ROSCO_ERR_NULL);
    CHECK(only_data == NULL);
    CHECK_ERR(rosco_msg_get_blob(m, 3, NULL, &only_len), ROSCO_ERR_NULL);
    CHECK_INT(only_len, 12345);
    /* Indexes past the end, for every accessor. */
    const uint32_t past[] = {NARGS, NARGS + 1, 1000, UINT32_MAX};
    for (size_t j = 0; j < sizeof past / sizeof past[0]; j++)
        for (int k = 0; k < K_COUNT; k++) {
            union value v;
            if (!CHECK_ERR(get(m, (enum kind)k, past[j], &v, 0), ROSCO_ERR_RANGE))
                fprintf(stderr, "  rosco_msg_get_%s(%u)\n", kind_name[k], past[j]);
        }

    /* A timetag as seconds since 1900 (an O2 message's `t` gives O2 global seconds); its
     * seconds field has the top bit clear, so by the RFC 4330 pivot it is past 2036. */
    double secs = 0;
    CHECK_OK(rosco_msg_get_seconds(m, 5, &secs));
    secs -= 4294967296.0 + 0x01020304 + 0x05060708 / 4294967296.0;
    CHECK(secs > -1e-6 && secs < 1e-6);
    CHECK_ERR(rosco_msg_get_seconds(m, 6, &secs), ROSCO_ERR_TYPE);
    CHECK_ERR(rosco_msg_get_seconds(m, NARGS, &secs), ROSCO_ERR_RANGE);
    CHECK_ERR(rosco_msg_get_seconds(m, 5, NULL), ROSCO_ERR_NULL);
    /* Only a message that came over O2lite has an O2 timestamp. */
    int32_t reliable = 7;
    CHECK_ERR(rosco_msg_o2_stamp(m, &secs, &reliable), ROSCO_ERR_RANGE);
    CHECK_INT(reliable, 7);
    CHECK_ERR(rosco_msg_o2_stamp(m, NULL, &reliable), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_msg_o2_stamp(m, &secs, NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_msg_o2_stamp(NULL, &secs, &reliable), ROSCO_ERR_NULL);

    /* The channel and the raw bytes. */
    rosco_channel ch = {0};
    CHECK_OK(rosco_msg_channel(m, &ch));
    CHECK(ch.id == s->expect_channel.id);
    CHECK_ERR(rosco_msg_channel(m, NULL), ROSCO_ERR_NULL);
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK_OK(rosco_msg_bytes(m, &data, &len));
    CHECK_INT(len, s->expect_len);
    CHECK(data != NULL && len == s->expect_len && memcmp(data, s->expect_bytes, len) == 0);
    CHECK_ERR(rosco_msg_bytes(m, NULL, &len), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_msg_bytes(m, &data, NULL), ROSCO_ERR_NULL);

    /* The source. */
    char buf[64];
    if (s->expect_source[0]) {
        size_t n = strlen(s->expect_source);
        CHECK_OK(rosco_msg_source(m, buf, sizeof buf));
        CHECK_STR(buf, s->expect_source);
        CHECK_OK(rosco_msg_source(m, buf, n + 1));
        CHECK_STR(buf, s->expect_source);
        CHECK_ERR(rosco_msg_source(m, buf, n), ROSCO_ERR_RANGE); /* no room for the NUL */
        CHECK_ERR(rosco_msg_source(m, buf, 0), ROSCO_ERR_RANGE);
        CHECK_ERR(rosco_msg_source(m, NULL, sizeof buf), ROSCO_ERR_NULL);
    } else {
        CHECK_ERR(rosco_msg_source(m, buf, sizeof buf), ROSCO_ERR_RANGE);
    }

    /* Not in a bundle; received just now. */
    CHECK(rosco_msg_bundle_time(m) == 0);
    uint64_t received = rosco_msg_received(m);
    uint64_t now = rosco_timetag_now();
    CHECK(received != 0);
    CHECK(received <= now);
    CHECK(rosco_timetag_to_unix(received) >= rosco_timetag_to_unix(s->sent_at) - 0.001);
    CHECK(rosco_timetag_to_unix(now) - rosco_timetag_to_unix(received) < 5.0);

    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (in the all-types callback)\n");
    atomic_fetch_add(&s->calls, 1);
    return 0;
}

static void test_all_types(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    rosco_channel in, out, local;
    rosco_method m;
    struct seen s;
    uint16_t out_port = 0;
    int before = CHECK_FAILURES;

    memset(&s, 0, sizeof s);
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, NULL));
    CHECK_OK(rosco_channel_port(ctx, out, &out_port));
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    CHECK_OK(rosco_method_add(ctx, "/types", NULL, check_all_types, &s, NULL, &m));
    rosco_builder *b = all_types_builder();
    CHECK_OK(rosco_builder_bytes(b, &s.expect_bytes, &s.expect_len));

    /* Over UDP. */
    s.expect_channel = in;
    snprintf(s.expect_source, sizeof s.expect_source, "127.0.0.1:%u", (unsigned)out_port);
    s.sent_at = rosco_timetag_now();
    CHECK_OK(rosco_send(ctx, out, b));
    if (mode == ROSCO_MODE_THREADED) {
        int64_t deadline = check_now_ms() + check_scale_ms(3000);
        while (atomic_load(&s.calls) < 1 && check_now_ms() < deadline)
            check_sleep_ms(2);
    }
    CHECK(POLL_UNTIL(ctx, atomic_load(&s.calls) == 1, 3000));

    /* Through _local: no IP source. */
    s.expect_channel = local;
    s.expect_source[0] = '\0';
    s.sent_at = rosco_timetag_now();
    CHECK_OK(rosco_send(ctx, local, b));
    if (mode == ROSCO_MODE_THREADED) {
        int64_t deadline = check_now_ms() + check_scale_ms(3000);
        while (atomic_load(&s.calls) < 2 && check_now_ms() < deadline)
            check_sleep_ms(2);
    }
    CHECK(POLL_UNTIL(ctx, atomic_load(&s.calls) == 2, 3000));
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(mode));
}

/* NULL messages. */
static void test_null_msg(void)
{
    union value v;
    char buf[16];
    const uint8_t *data;
    size_t len;
    rosco_channel ch;

    for (int k = 0; k < K_COUNT; k++)
        if (!CHECK_ERR(get(NULL, (enum kind)k, 0, &v, 0), ROSCO_ERR_NULL))
            fprintf(stderr, "  rosco_msg_get_%s(NULL)\n", kind_name[k]);
    check_plant_error_();
    CHECK(rosco_msg_address(NULL) == NULL);
    CHECK(strstr(rosco_last_error(), "-424242") == NULL);
    CHECK(rosco_msg_typetags(NULL) == NULL);
    CHECK_INT(rosco_msg_argc(NULL), 0);
    CHECK(rosco_msg_bundle_time(NULL) == 0);
    CHECK(rosco_msg_received(NULL) == 0);
    CHECK_ERR(rosco_msg_source(NULL, buf, sizeof buf), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_msg_channel(NULL, &ch), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_msg_bytes(NULL, &data, &len), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_reply((rosco_ctx){0}, NULL, NULL), ROSCO_ERR_NULL);
}

/* Messages without arguments, without a type tag string, and inside bundles. */
struct small {
    atomic_int calls;
    char address[32];
    char tags[32];
    uint32_t argc;
    uint64_t bundle_time;
    uint64_t received;
    uint64_t now;
    int64_t at_ms;
    const uint8_t *bytes_want;
    size_t len_want;
    int bytes_ok;
};

static int32_t small_cb(void *user, const rosco_msg *m)
{
    struct small *s = user;
    s->now = rosco_timetag_now();
    s->at_ms = check_now_ms();
    snprintf(s->address, sizeof s->address, "%s", rosco_msg_address(m));
    snprintf(s->tags, sizeof s->tags, "%s", rosco_msg_typetags(m));
    s->argc = rosco_msg_argc(m);
    s->bundle_time = rosco_msg_bundle_time(m);
    s->received = rosco_msg_received(m);
    const uint8_t *d;
    size_t n;
    s->bytes_ok = s->bytes_want == NULL ||
                  (rosco_msg_bytes(m, &d, &n) == ROSCO_OK && n == s->len_want &&
                   memcmp(d, s->bytes_want, n) == 0);
    atomic_fetch_add(&s->calls, 1);
    return 0;
}

static int wait_calls(rosco_ctx ctx, int32_t mode, atomic_int *calls, int want, int ms)
{
    if (mode == ROSCO_MODE_THREADED) {
        int64_t deadline = check_now_ms() + check_scale_ms(ms);
        while (atomic_load(calls) < want && check_now_ms() < deadline)
            check_sleep_ms(1);
        return atomic_load(calls) >= want;
    }
    return POLL_UNTIL(ctx, atomic_load(calls) >= want, ms);
}

static void test_shapes(void)
{
    rosco_ctx ctx;
    rosco_channel local;
    rosco_method m;
    struct small s;
    memset(&s, 0, sizeof s);
    CHECK_OK(rosco_ctx_new(NULL, &ctx));
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    CHECK_OK(rosco_method_add(ctx, NULL, NULL, small_cb, &s, NULL, &m));

    /* No arguments. */
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/empty"));
    CHECK_OK(rosco_send(ctx, local, b));
    CHECK(POLL_UNTIL(ctx, atomic_load(&s.calls) == 1, 3000));
    CHECK_STR(s.address, "/empty");
    CHECK_STR(s.tags, "");
    CHECK_INT(s.argc, 0);

    /* No type tag string at all (old OSC): no arguments. */
    const uint8_t old[] = {'/', 'o', 'l', 'd', 0, 0, 0, 0};
    CHECK_OK(rosco_send_raw(ctx, local, old, sizeof old));
    CHECK(POLL_UNTIL(ctx, atomic_load(&s.calls) == 2, 3000));
    CHECK_STR(s.address, "/old");
    CHECK_STR(s.tags, "");
    CHECK_INT(s.argc, 0);

    /* Inside a bundle: the bytes are the element's, the bundle time its effective time. */
    uint64_t past = rosco_timetag_from_unix(1500000000.0);
    CHECK_OK(rosco_builder_message(b, "/inner"));
    CHECK_OK(rosco_builder_add_i32(b, 3));
    const uint8_t *eb;
    size_t elen;
    CHECK_OK(rosco_builder_bytes(b, &eb, &elen));
    uint8_t element[64];
    memcpy(element, eb, elen);
    s.bytes_want = element;
    s.len_want = elen;
    CHECK_OK(rosco_builder_bundle_begin(b, past));
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/inner"));
    CHECK_OK(rosco_builder_add_i32(b, 3));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_send(ctx, local, b));
    CHECK(POLL_UNTIL(ctx, atomic_load(&s.calls) == 3, 3000));
    CHECK_STR(s.address, "/inner");
    CHECK(s.bytes_ok);
    CHECK(s.bundle_time == past); /* "immediately" inside a bundle at `past` is at `past` */
    CHECK(s.received != 0);
    s.bytes_want = NULL;
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
}

/* A timed bundle is not delivered before its timetag. */
static void test_timed(int32_t mode, int queue_bundles)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    rosco_channel in, out;
    rosco_method m;
    struct small s;
    int before = CHECK_FAILURES;
    memset(&s, 0, sizeof s);
    o.queue_bundles = queue_bundles;
    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, NULL));
    CHECK_OK(rosco_method_add(ctx, "/timed", NULL, small_cb, &s, NULL, &m));

    const double delay = 0.3 * check_slow_factor();
    rosco_builder *b = rosco_builder_new();
    uint64_t sent = rosco_timetag_now();
    uint64_t due = rosco_timetag_add(sent, delay);
    CHECK_OK(rosco_builder_bundle_begin(b, due));
    CHECK_OK(rosco_builder_message(b, "/timed"));
    CHECK_OK(rosco_builder_add_i32(b, 1));
    CHECK_OK(rosco_builder_bundle_end(b));
    int64_t t0 = check_now_ms();
    CHECK_OK(rosco_send(ctx, out, b));
    CHECK(wait_calls(ctx, mode, &s.calls, 1, 3000 + (int)(delay * 1000)));
    CHECK(s.bundle_time == due);
    CHECK(s.received != 0);
    if (queue_bundles) {
        /* Not before its time, by the timetag clock and by the monotonic clock. */
        if (!CHECK(s.now >= due))
            fprintf(stderr, "  delivered %.6f s before its timetag\n",
                    rosco_timetag_to_unix(due) - rosco_timetag_to_unix(s.now));
        CHECK(s.at_ms - t0 >= (int64_t)(delay * 1000) - 20);
        /* Received on arrival, well before it was due. */
        CHECK(s.received < due);
    } else {
        /* Held bundles off: delivered on arrival, its timetag ignored. */
        CHECK(s.now < due);
    }
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in %s mode, queue_bundles=%d)\n",
                check_mode_name(mode), queue_bundles);
}

/* rosco_decode: a packet read without a context, as a caller doing its own I/O would. */
struct decoded {
    int count;
    char addresses[4][16];
    uint64_t times[4];
    int32_t ints[4];
    rosco_status channel;
};

static int32_t on_decoded(void *user, const rosco_msg *m)
{
    struct decoded *d = user;
    if (d->count < 4) {
        snprintf(d->addresses[d->count], sizeof d->addresses[0], "%s", rosco_msg_address(m));
        d->times[d->count] = rosco_msg_bundle_time(m);
        d->ints[d->count] = -1;
        if (rosco_msg_argc(m) == 1)
            (void)rosco_msg_get_i32(m, 0, &d->ints[d->count]);
        rosco_channel ch;
        d->channel = rosco_msg_channel(m, &ch);
    }
    d->count++;
    return 1;
}

static void test_decode(void)
{
    rosco_builder *b = rosco_builder_new();
    const uint8_t *data;
    size_t len;
    struct decoded d = {0};
    const uint64_t later = 0x0000000200000000ull, earlier = 0x0000000100000000ull;

    /* A bundle at `later` holding a message and a bundle at `earlier` (so due at `later`)
     * holding two more. */
    CHECK_OK(rosco_builder_bundle_begin(b, later));
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_OK(rosco_builder_add_i32(b, 1));
    CHECK_OK(rosco_builder_bundle_begin(b, earlier));
    CHECK_OK(rosco_builder_message(b, "/b"));
    CHECK_OK(rosco_builder_add_i32(b, 2));
    CHECK_OK(rosco_builder_message(b, "/c"));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_builder_bytes(b, &data, &len));
    CHECK_OK(rosco_decode(data, len, on_decoded, &d));
    CHECK_INT(d.count, 3);
    CHECK_STR(d.addresses[0], "/a");
    CHECK_STR(d.addresses[1], "/b");
    CHECK_STR(d.addresses[2], "/c");
    CHECK(d.times[0] == later && d.times[1] == later && d.times[2] == later);
    CHECK_INT(d.ints[0], 1);
    CHECK_INT(d.ints[1], 2);
    CHECK_INT(d.ints[2], -1);
    CHECK_INT(d.channel, ROSCO_ERR_RANGE); /* it came from no channel */

    /* A message on its own: no bundle time. */
    memset(&d, 0, sizeof d);
    CHECK_OK(rosco_builder_reset(b));
    CHECK_OK(rosco_builder_message(b, "/solo"));
    CHECK_OK(rosco_builder_add_i32(b, 9));
    CHECK_OK(rosco_builder_bytes(b, &data, &len));
    CHECK_OK(rosco_decode(data, len, on_decoded, &d));
    CHECK_INT(d.count, 1);
    CHECK(d.times[0] == 0);
    CHECK_INT(d.ints[0], 9);

    /* A packet cut short is refused whole: nothing is passed on, the detail says where. */
    memset(&d, 0, sizeof d);
    CHECK_ERR(rosco_decode(data, len - 1, on_decoded, &d), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "offset") != NULL);
    CHECK_INT(d.count, 0);
    CHECK_ERR(rosco_decode(NULL, 0, on_decoded, &d), ROSCO_ERR_ARG); /* empty */
    CHECK_ERR(rosco_decode(NULL, 4, on_decoded, &d), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_decode(data, len, NULL, &d), ROSCO_ERR_NULL);
    rosco_builder_free(b);
}

int main(void)
{
    const int32_t modes[] = {ROSCO_MODE_POLL, ROSCO_MODE_IO_THREAD, ROSCO_MODE_THREADED};
    test_null_msg();
    test_shapes();
    test_decode();
    for (int i = 0; i < 3; i++) {
        test_all_types(modes[i]);
        test_timed(modes[i], 1);
        test_timed(modes[i], 0);
    }
    return check_summary("msg_test");
}
