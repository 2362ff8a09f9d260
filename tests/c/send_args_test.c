/* One-call building and sending (the header's rosco_builder_message_args, rosco_send_msg
 * and rosco_reply_msg, liblo's lo_send() style): every type character against the bytes
 * the builder's own add functions make, bundles, unknown characters refused with a detail,
 * and a message sent, received over UDP and answered. */
#include "check.h"

static const uint8_t BLOB[] = {1, 2, 3};

/* Every type character, and the same message as builder_test.c builds add by add. */
#define ALL_TYPES "ifhdtcrmTFNI[s]Sb"
#define ALL_HEX                                                                        \
    "2f616c6c000000002c696668647463726d54464e495b735d53620000fffffffe"                 \
    "3e800000fffffffffffffffdbfe00000000000000102030405060708000000"                   \
    "411122334401902040696e000073796d000000000301020300"

static const char *hex_of(rosco_builder *b)
{
    static char out[1024];
    const uint8_t *data = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (rosco_builder_bytes(b, &data, &len) != ROSCO_OK)
        return out;
    for (size_t i = 0; i < len && 2 * i + 2 < sizeof out; i++)
        snprintf(out + 2 * i, 3, "%02x", data[i]);
    return out;
}

static rosco_status message_all(rosco_builder *b)
{
    return rosco_builder_message_args(b, "/all", ALL_TYPES, -2, 0.25f, (int64_t)-3, -0.5,
                                      (uint64_t)0x0102030405060708ULL, 'A', 0x11223344u,
                                      0x01902040u, "in", "sym", (const void *)BLOB,
                                      sizeof BLOB);
}

static void test_building(void)
{
    rosco_builder *b = rosco_builder_new();
    if (!CHECK(b != NULL))
        return;
    CHECK_OK(message_all(b));
    CHECK_STR(hex_of(b), ALL_HEX);

    /* No arguments: NULL or "" types. */
    CHECK_OK(rosco_builder_message_args(b, "/a", NULL));
    CHECK_STR(hex_of(b), "2f6100002c000000");
    CHECK_OK(rosco_builder_message_args(b, "/a", ""));
    CHECK_STR(hex_of(b), "2f6100002c000000");

    /* One line per message of a bundle. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message_args(b, "/a", "i", 1));
    CHECK_OK(rosco_builder_message_args(b, "/b", "s", "x"));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_STR(hex_of(b), "2362756e646c65000000000000000001"
                         "0000000c2f6100002c69000000000001"
                         "0000000c2f6200002c73000078000000");

    /* A character rosco does not know, or one that needs a value it cannot take here
     * ('B' is O2's bool), stops the message with a detail naming it. */
    CHECK_ERR(rosco_builder_message_args(b, "/a", "ix", 1), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "x") != NULL);
    CHECK_ERR(rosco_builder_message_args(b, "/a", "B", 1), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "B") != NULL);
    CHECK_ERR(rosco_builder_message_args(b, "/a", "\x01"), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "\\x01") != NULL);
    /* Errors of the calls it makes come through as they are. */
    CHECK_ERR(rosco_builder_message_args(b, "no-slash", "i", 1), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_message_args(b, "/a", "s", (const char *)NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_builder_message_args(NULL, "/a", "i", 1), ROSCO_ERR_NULL);
    /* rosco_builder_add_tag alone: the tags without data, and nothing else. */
    CHECK_OK(rosco_builder_message(b, "/t"));
    const char *alone = "TFNI[]";
    for (const char *t = alone; *t; t++)
        CHECK_OK(rosco_builder_add_tag(b, *t));
    CHECK_STR(hex_of(b), "2f7400002c54464e495b5d00");
    CHECK_OK(rosco_builder_message(b, "/t"));
    CHECK_ERR(rosco_builder_add_tag(b, 'i'), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_builder_add_tag(NULL, 'T'), ROSCO_ERR_NULL);
    rosco_builder_free(b);
}

/* What the listener's method saw, and what the sender's reply method saw. */
typedef struct {
    rosco_ctx ctx;
    int got;
    char bytes[1024];
    int replied;
    rosco_status reply_status;
    int answers;
    int32_t answer;
    const char *answer_text;
} exchange;

static int32_t on_all(void *user, const rosco_msg *m)
{
    exchange *x = user;
    const uint8_t *data = NULL;
    size_t len = 0;
    x->got++;
    if (rosco_msg_bytes(m, &data, &len) == ROSCO_OK)
        for (size_t i = 0; i < len && 2 * i + 2 < sizeof x->bytes; i++)
            snprintf(x->bytes + 2 * i, 3, "%02x", data[i]);
    x->reply_status = rosco_reply_msg(x->ctx, m, "/answer", "is", 42, "done");
    x->replied++;
    return 0;
}

static int32_t on_answer(void *user, const rosco_msg *m)
{
    exchange *x = user;
    const char *text = NULL;
    x->answers++;
    CHECK_OK(rosco_msg_get_i32(m, 0, &x->answer));
    CHECK_OK(rosco_msg_get_str(m, 1, &text));
    x->answer_text = text && strcmp(text, "done") == 0 ? "done" : "other";
    return 0;
}

static void test_sending(void)
{
    rosco_ctx_options o;
    rosco_ctx_options_init(&o);
    exchange x = {0};
    rosco_channel in, out;
    rosco_method all, answer;
    uint16_t port = 0;
    char url[64];
    if (!CHECK_OK(rosco_ctx_new(&o, &x.ctx)))
        return;
    CHECK_OK(rosco_channel_open(x.ctx, "in", "osc.udp://:0?bind=127.0.0.1", &in));
    CHECK_OK(rosco_channel_port(x.ctx, in, &port));
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", (unsigned)port);
    CHECK_OK(rosco_channel_open(x.ctx, "out", url, &out));
    CHECK_OK(rosco_method_add(x.ctx, "/all", ALL_TYPES, on_all, &x, NULL, &all));
    CHECK_OK(rosco_method_add(x.ctx, "/answer", "is", on_answer, &x, NULL, &answer));

    CHECK_OK(rosco_send_msg(x.ctx, out, "/all", ALL_TYPES, -2, 0.25f, (int64_t)-3, -0.5,
                            (uint64_t)0x0102030405060708ULL, 'A', 0x11223344u, 0x01902040u,
                            "in", "sym", (const void *)BLOB, sizeof BLOB));
    CHECK(POLL_UNTIL(x.ctx, x.answers == 1, 2000));
    CHECK_INT(x.got, 1);
    CHECK_STR(x.bytes, ALL_HEX);
    CHECK_INT(x.replied, 1);
    CHECK_INT(x.reply_status, ROSCO_OK);
    CHECK_INT(x.answer, 42);
    CHECK_STR(x.answer_text, "done");

    /* A refused message sends nothing. */
    rosco_channel_stats before, after;
    CHECK_OK(rosco_channel_stats_get(x.ctx, out, &before));
    CHECK_ERR(rosco_send_msg(x.ctx, out, "/all", "iq", 1, 2), ROSCO_ERR_ARG);
    CHECK_OK(rosco_channel_stats_get(x.ctx, out, &after));
    CHECK_INT(after.packets_out, before.packets_out);
    check_poll_for(x.ctx, check_scale_ms(50));
    CHECK_INT(x.got, 1);

    /* Stale handles and a reply outside any callback. */
    CHECK_OK(rosco_channel_close(x.ctx, out));
    CHECK_ERR(rosco_send_msg(x.ctx, out, "/all", "i", 1), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_send_msg((rosco_ctx){0}, in, "/all", "i", 1), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_reply_msg(x.ctx, NULL, "/answer", "i", 1), ROSCO_ERR_NULL);
    rosco_ctx_free(x.ctx);
}

int main(void)
{
    test_building();
    test_sending();
    return check_summary("send_args");
}
