/* The builder: every add function, arrays, bundles (nested to the limit and past it),
 * rosco_builder_bytes against known encodings, reuse, reset, and every error path. */
#include "check.h"

/* The builder's packet as lowercase hex ("" on failure). */
static const char *hex_of(rosco_builder *b)
{
    static char out[4096];
    const uint8_t *data = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (rosco_builder_bytes(b, &data, &len) != ROSCO_OK || data == NULL)
        return out;
    for (size_t i = 0; i < len && 2 * i + 2 < sizeof out; i++)
        snprintf(out + 2 * i, 3, "%02x", data[i]);
    return out;
}

static void test_known_bytes(void)
{
    rosco_builder *b = rosco_builder_new();
    if (!CHECK(b != NULL))
        return;

    /* The example from the brief: /foo ,ifs 1 1.5 "abc". */
    CHECK_OK(rosco_builder_message(b, "/foo"));
    CHECK_OK(rosco_builder_add_i32(b, 1));
    CHECK_OK(rosco_builder_add_f32(b, 1.5f));
    CHECK_OK(rosco_builder_add_str(b, "abc"));
    CHECK_STR(hex_of(b), "2f666f6f000000002c69667300000000000000013fc0000061626300");
    /* Asking twice gives the same bytes. */
    CHECK_STR(hex_of(b), "2f666f6f000000002c69667300000000000000013fc0000061626300");

    /* No arguments. */
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_STR(hex_of(b), "2f6100002c000000");
    CHECK_OK(rosco_builder_message(b, "/"));
    CHECK_STR(hex_of(b), "2f0000002c000000");

    /* Every add function, in one message. */
    const uint8_t blob[] = {1, 2, 3};
    CHECK_OK(rosco_builder_message(b, "/all"));
    CHECK_OK(rosco_builder_add_i32(b, -2));
    CHECK_OK(rosco_builder_add_f32(b, 0.25f));
    CHECK_OK(rosco_builder_add_i64(b, -3));
    CHECK_OK(rosco_builder_add_f64(b, -0.5));
    CHECK_OK(rosco_builder_add_timetag(b, 0x0102030405060708ULL));
    CHECK_OK(rosco_builder_add_char(b, 'A'));
    CHECK_OK(rosco_builder_add_rgba(b, 0x11223344u));
    CHECK_OK(rosco_builder_add_midi(b, 0x01902040u));
    CHECK_OK(rosco_builder_add_bool(b, 7));
    CHECK_OK(rosco_builder_add_bool(b, 0));
    CHECK_OK(rosco_builder_add_nil(b));
    CHECK_OK(rosco_builder_add_impulse(b));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_OK(rosco_builder_add_str(b, "in"));
    CHECK_OK(rosco_builder_array_end(b));
    CHECK_OK(rosco_builder_add_symbol(b, "sym"));
    CHECK_OK(rosco_builder_add_blob(b, blob, sizeof blob));
    CHECK_STR(hex_of(b), "2f616c6c000000002c696668647463726d54464e495b735d53620000fffffffe"
                         "3e800000fffffffffffffffdbfe00000000000000102030405060708000000"
                         "411122334401902040696e000073796d000000000301020300");

    /* Padding edge cases: strings of 0..4 bytes, blobs of 0..4 bytes. */
    CHECK_OK(rosco_builder_message(b, "/s"));
    CHECK_OK(rosco_builder_add_str(b, ""));
    CHECK_OK(rosco_builder_add_str(b, "abc"));
    CHECK_OK(rosco_builder_add_str(b, "abcd"));
    CHECK_STR(hex_of(b), "2f7300002c73737300000000" "00000000" "61626300" "6162636400000000");
    CHECK_OK(rosco_builder_message(b, "/b"));
    CHECK_OK(rosco_builder_add_blob(b, NULL, 0)); /* NULL allowed with 0 */
    CHECK_OK(rosco_builder_add_blob(b, blob, 0));
    CHECK_OK(rosco_builder_add_blob(b, (const uint8_t *)"wxyz", 4));
    CHECK_STR(hex_of(b), "2f6200002c626262000000000000000000000000000000047778797a");
    /* Strings are bytes: not necessarily UTF-8. */
    CHECK_OK(rosco_builder_message(b, "/u"));
    CHECK_OK(rosco_builder_add_str(b, "\xff\xfe"));
    CHECK_STR(hex_of(b), "2f7500002c730000fffe0000");
    /* Extreme values. */
    CHECK_OK(rosco_builder_message(b, "/x"));
    CHECK_OK(rosco_builder_add_i32(b, INT32_MIN));
    CHECK_OK(rosco_builder_add_i64(b, INT64_MAX));
    CHECK_OK(rosco_builder_add_char(b, 255));
    CHECK_STR(hex_of(b), "2f7800002c69686300000000" "80000000" "7fffffffffffffff" "000000ff");
    /* An empty array and nested arrays. */
    CHECK_OK(rosco_builder_message(b, "/arr"));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_OK(rosco_builder_array_end(b));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_OK(rosco_builder_add_i32(b, 5));
    CHECK_OK(rosco_builder_array_end(b));
    CHECK_OK(rosco_builder_array_end(b));
    CHECK_STR(hex_of(b), "2f617272000000002c5b5d5b5b695d5d0000000000000005");

    /* A bundle with one message. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_OK(rosco_builder_add_i32(b, 1));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_STR(hex_of(b), "2362756e646c65000000000000000001" "0000000c" "2f6100002c69000000000001");
    /* Nested, with two messages. */
    CHECK_OK(rosco_builder_bundle_begin(b, 0x0000000100000002ULL));
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_OK(rosco_builder_bundle_begin(b, 0x0000000300000004ULL));
    CHECK_OK(rosco_builder_message(b, "/b"));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_builder_message(b, "/c"));
    CHECK_OK(rosco_builder_add_i32(b, 9));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_STR(hex_of(b), "2362756e646c6500" "0000000100000002"     /* "#bundle", timetag */
                         "00000008" "2f6100002c000000"             /* /a */
                         "0000001c" "2362756e646c6500" "0000000300000004" /* inner bundle */
                         "00000008" "2f6200002c000000"             /* /b */
                         "0000000c" "2f6300002c69000000000009");   /* /c 9 */
    /* An empty bundle. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_STR(hex_of(b), "2362756e646c65000000000000000001");
    rosco_builder_free(b);
}

static void test_replace_rules(void)
{
    rosco_builder *b = rosco_builder_new();
    /* Outside a bundle a new message replaces the old one. */
    CHECK_OK(rosco_builder_message(b, "/old"));
    CHECK_OK(rosco_builder_add_i32(b, 1));
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_STR(hex_of(b), "2f6100002c000000");
    /* A bundle begun outside a bundle replaces the message. */
    CHECK_OK(rosco_builder_message(b, "/old"));
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_STR(hex_of(b), "2362756e646c65000000000000000001");
    /* A message after a closed bundle replaces the bundle. */
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_STR(hex_of(b), "2f6100002c000000");
    /* A new bundle after a closed bundle replaces it. */
    CHECK_OK(rosco_builder_bundle_begin(b, 5));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_STR(hex_of(b), "2362756e646c65000000000000000001");
    /* rosco_builder_bytes closes the open message: nothing more can be added to it. */
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_STR(hex_of(b), "2f6100002c000000");
    CHECK_ERR(rosco_builder_add_i32(b, 1), ROSCO_ERR_ARG);
    CHECK_STR(hex_of(b), "2f6100002c000000");
    /* reset empties it. */
    CHECK_OK(rosco_builder_reset(b));
    const uint8_t *d;
    size_t n;
    CHECK_ERR(rosco_builder_bytes(b, &d, &n), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_i32(b, 1), ROSCO_ERR_ARG);
    /* reset in the middle of a bundle. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_OK(rosco_builder_reset(b));
    CHECK_ERR(rosco_builder_bundle_end(b), ROSCO_ERR_ARG);
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_STR(hex_of(b), "2f6100002c000000");
    CHECK_OK(rosco_builder_reset(b));
    CHECK_OK(rosco_builder_reset(b)); /* twice is fine */
    /* In a bundle, a message that cannot be closed (an array left open) stays open, to
     * be mended; it was lost. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_ERR(rosco_builder_message(b, "/b"), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_bundle_end(b), ROSCO_ERR_ARG);
    CHECK_OK(rosco_builder_array_end(b));
    CHECK_OK(rosco_builder_message(b, "/b"));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_STR(hex_of(b), "2362756e646c65000000000000000001"
                         "000000082f6100002c5b5d00"
                         "000000082f6200002c000000");
    rosco_builder_free(b);
}

static void test_depth(void)
{
    rosco_builder *b = rosco_builder_new();
    int ok = 1;
    for (int i = 0; i < 32; i++)
        ok &= rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE) == ROSCO_OK;
    CHECK(ok); /* 32 deep is allowed */
    CHECK_ERR(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE), ROSCO_ERR_ARG);
    /* The failure left the 32 open bundles as they were. */
    CHECK_OK(rosco_builder_message(b, "/deep"));
    CHECK_OK(rosco_builder_add_i32(b, 32));
    const uint8_t *d;
    size_t n;
    CHECK_ERR(rosco_builder_bytes(b, &d, &n), ROSCO_ERR_ARG); /* still open */
    ok = 1;
    for (int i = 0; i < 32; i++)
        ok &= rosco_builder_bundle_end(b) == ROSCO_OK;
    CHECK(ok);
    CHECK_ERR(rosco_builder_bundle_end(b), ROSCO_ERR_ARG);
    if (CHECK_OK(rosco_builder_bytes(b, &d, &n))) {
        /* 32 headers of 16 bytes, 31 element sizes, and the 16-byte message with its size. */
        CHECK_INT(n, 32 * 16 + 31 * 4 + 4 + 16);
        CHECK(memcmp(d, "#bundle", 8) == 0);
    }

    /* The receiving side accepts what the builder allows: the message arrives. */
    rosco_ctx ctx;
    rosco_channel local;
    CHECK_OK(rosco_ctx_new(NULL, &ctx));
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    CHECK_OK(rosco_send(ctx, local, b));
    uint32_t got = 0;
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    while (got == 0 && check_now_ms() < deadline)
        (void)rosco_poll(ctx, 10, &got);
    CHECK_INT(got, 1);
    CHECK_OK(rosco_ctx_free(ctx));
    rosco_builder_free(b);
}

static void test_errors(void)
{
    rosco_builder *b = rosco_builder_new();
    const uint8_t blob[] = {1};
    const uint8_t *d = (const uint8_t *)"x";
    size_t n = 5;

    /* NULL builder, for every function. */
    CHECK_ERR(rosco_builder_reset(NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_message(NULL, "/a"), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_bundle_begin(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_bundle_end(NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_bytes(NULL, &d, &n), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_i32(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_f32(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_i64(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_f64(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_timetag(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_char(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_rgba(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_midi(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_bool(NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_nil(NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_impulse(NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_array_begin(NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_array_end(NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_str(NULL, "s"), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_symbol(NULL, "s"), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_blob(NULL, blob, 1), ROSCO_ERR_NULL);
    rosco_builder_free(NULL); /* ignored */

    /* NULL for the other pointers. */
    CHECK_ERR(rosco_builder_message(b, NULL), ROSCO_ERR_NULL);
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_ERR(rosco_builder_add_str(b, NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_symbol(b, NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_add_blob(b, NULL, 1), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_bytes(b, NULL, &n), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_bytes(b, &d, NULL), ROSCO_ERR_NULL);
    CHECK_STR(hex_of(b), "2f6100002c000000"); /* the failed adds added nothing */

    /* Bad addresses. */
    CHECK_ERR(rosco_builder_message(b, ""), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_message(b, "a"), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_message(b, "noslash/x"), ROSCO_ERR_ARG);
    /* An address is bytes, as strings are: not UTF-8 is fine. */
    CHECK_OK(rosco_builder_message(b, "/\xff"));
    CHECK_STR(hex_of(b), "2fff00002c000000");

    /* Adding with no message started, for every add function. */
    CHECK_OK(rosco_builder_reset(b));
    CHECK_ERR(rosco_builder_add_i32(b, 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_f32(b, 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_i64(b, 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_f64(b, 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_timetag(b, 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_char(b, 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_rgba(b, 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_midi(b, 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_bool(b, 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_nil(b), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_impulse(b), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_array_begin(b), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_array_end(b), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_str(b, "s"), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_symbol(b, "s"), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_blob(b, blob, 1), ROSCO_ERR_ARG);
    /* Nor inside a bundle before its first message. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_ERR(rosco_builder_add_i32(b, 1), ROSCO_ERR_ARG);
    CHECK_OK(rosco_builder_reset(b));

    /* Empty builder. */
    CHECK_ERR(rosco_builder_bytes(b, &d, &n), ROSCO_ERR_ARG);
    /* Unbalanced arrays. */
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_ERR(rosco_builder_bytes(b, &d, &n), ROSCO_ERR_ARG);
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_OK(rosco_builder_array_end(b));
    CHECK_ERR(rosco_builder_bytes(b, &d, &n), ROSCO_ERR_ARG);
    /* Bundles: end without begin, bytes while open. */
    CHECK_OK(rosco_builder_reset(b));
    CHECK_ERR(rosco_builder_bundle_end(b), ROSCO_ERR_ARG);
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_ERR(rosco_builder_bytes(b, &d, &n), ROSCO_ERR_ARG);
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_builder_bytes(b, &d, &n));
    /* An unbalanced array inside a bundle is reported when the message is closed. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/a"));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_ERR(rosco_builder_bundle_end(b), ROSCO_ERR_ARG);
    rosco_builder_free(b);
}

/* Sending: reuse after send, errors for an open bundle and an empty builder. */
static atomic_int hits;
static int32_t last_value;

static int32_t count_msg(void *user, const rosco_msg *m)
{
    (void)user;
    last_value = -1;
    (void)rosco_msg_get_i32(m, 0, &last_value);
    atomic_fetch_add(&hits, 1);
    return 0;
}

static void test_send(void)
{
    rosco_ctx ctx;
    rosco_channel in, out, local;
    rosco_method m;
    if (!CHECK_OK(rosco_ctx_new(NULL, &ctx)))
        return;
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, NULL));
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    CHECK_OK(rosco_method_add(ctx, NULL, NULL, count_msg, NULL, NULL, &m));
    rosco_builder *b = rosco_builder_new();

    /* Empty builder: nothing to send. */
    CHECK_ERR(rosco_send(ctx, out, b), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_send(ctx, local, b), ROSCO_ERR_ARG);
    /* Open bundle: refused. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/in"));
    CHECK_ERR(rosco_send(ctx, out, b), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_send(ctx, local, b), ROSCO_ERR_ARG);
    /* Unbalanced array: refused. */
    CHECK_OK(rosco_builder_message(b, "/x"));
    CHECK_OK(rosco_builder_reset(b));
    CHECK_OK(rosco_builder_message(b, "/x"));
    CHECK_OK(rosco_builder_array_begin(b));
    CHECK_ERR(rosco_send(ctx, out, b), ROSCO_ERR_ARG);
    check_poll_for(ctx, 30);
    CHECK_INT(atomic_load(&hits), 0);

    /* The same builder sent many times, changed between sends. */
    int sent = 0;
    for (int32_t i = 0; i < 50; i++) {
        if (i % 10 == 0)
            CHECK_OK(rosco_builder_reset(b));
        CHECK_OK(rosco_builder_message(b, "/n"));
        CHECK_OK(rosco_builder_add_i32(b, i));
        CHECK_OK(rosco_send(ctx, out, b));
        CHECK_OK(rosco_send(ctx, local, b)); /* sent again unchanged */
        sent += 2;
        CHECK(POLL_UNTIL(ctx, atomic_load(&hits) == sent, 3000));
        CHECK_INT(last_value, i);
    }
    /* A bundle, sent twice. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/b"));
    CHECK_OK(rosco_builder_add_i32(b, 100));
    CHECK_OK(rosco_builder_message(b, "/b"));
    CHECK_OK(rosco_builder_add_i32(b, 101));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_OK(rosco_send(ctx, out, b));
    CHECK_OK(rosco_send(ctx, out, b));
    CHECK(POLL_UNTIL(ctx, atomic_load(&hits) == sent + 4, 3000));
    CHECK_INT(last_value, 101);
    /* After rosco_builder_bytes the message is still sendable. */
    CHECK_OK(rosco_builder_message(b, "/n"));
    CHECK_OK(rosco_builder_add_i32(b, 55));
    const uint8_t *d;
    size_t n;
    CHECK_OK(rosco_builder_bytes(b, &d, &n));
    CHECK_OK(rosco_send(ctx, out, b));
    CHECK(POLL_UNTIL(ctx, atomic_load(&hits) == sent + 5, 3000));
    CHECK_INT(last_value, 55);
    /* A message over the UDP size limit is refused; _local takes it. */
    static uint8_t big[70000];
    memset(big, 7, sizeof big);
    CHECK_OK(rosco_builder_message(b, "/big"));
    CHECK_OK(rosco_builder_add_blob(b, big, sizeof big));
    CHECK_ERR(rosco_send(ctx, out, b), ROSCO_ERR_ARG);
    CHECK_OK(rosco_send(ctx, local, b));
    CHECK(POLL_UNTIL(ctx, atomic_load(&hits) == sent + 6, 3000));

    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(ctx));
}

int main(void)
{
    test_known_bytes();
    test_replace_rules();
    test_depth();
    test_errors();
    test_send();
    /* Many builders at once are independent. */
    rosco_builder *bs[16];
    for (int i = 0; i < 16; i++) {
        bs[i] = rosco_builder_new();
        CHECK(bs[i] != NULL);
        char addr[8];
        snprintf(addr, sizeof addr, "/%c", 'a' + i);
        CHECK_OK(rosco_builder_message(bs[i], addr));
    }
    for (int i = 0; i < 16; i++) {
        char want[32];
        snprintf(want, sizeof want, "2f%02x00002c000000", 'a' + i);
        CHECK_STR(hex_of(bs[i]), want);
        rosco_builder_free(bs[i]);
    }
    return check_summary("builder_test");
}
