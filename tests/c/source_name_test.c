/* Names for the sources of received packets (osc4py3's peer identification): the host
 * name a channel URL used for an address, or the name the application gave an address
 * (any port, or one), read in a callback with rosco_msg_source_name. */
#include "check.h"

struct seen {
    rosco_ctx ctx;
    int n;
    rosco_status status;
    char name[32];
    size_t cap, needed;
    rosco_ctx other;
    rosco_status other_status;
};

static int32_t record(void *user, const rosco_msg *m)
{
    struct seen *s = user;
    s->status = rosco_msg_source_name(s->ctx, m, s->name, s->cap, &s->needed);
    char name[8];
    s->other_status = rosco_msg_source_name(s->other, m, name, sizeof name, NULL);
    s->n++;
    return 0;
}

/* Sends "/x" on `out` and returns once the callback ran. */
static void send_one(struct seen *s, rosco_channel out)
{
    rosco_builder *b = rosco_builder_new();
    int before = s->n;
    CHECK_OK(rosco_builder_message(b, "/x"));
    CHECK_OK(rosco_send(s->ctx, out, b));
    CHECK(POLL_UNTIL(s->ctx, s->n == before + 1, 3000));
    rosco_builder_free(b);
}

int main(void)
{
    struct seen s = {.cap = sizeof s.name};
    rosco_channel in, out, local;
    rosco_method m;
    uint16_t port = 0;
    char url[64];
    CHECK_OK(rosco_ctx_new(NULL, &s.ctx));
    CHECK_OK(rosco_channel_open(s.ctx, "in", "osc.udp://:0?bind=127.0.0.1", &in));
    CHECK_OK(rosco_channel_port(s.ctx, in, &port));
    CHECK_OK(rosco_method_add(s.ctx, NULL, NULL, record, &s, NULL, &m));

    /* By the URL's host name: localhost resolves to 127.0.0.1 (IPv4 first). */
    snprintf(url, sizeof url, "osc.udp://localhost:%u", (unsigned)port);
    CHECK_OK(rosco_channel_open(s.ctx, "out", url, &out));
    send_one(&s, out);
    CHECK_OK(s.status);
    CHECK_STR(s.name, "localhost");
    /* Asked of another context, the message is refused (no answer from its table). */
    CHECK_OK(rosco_ctx_new(NULL, &s.other));
    CHECK_OK(rosco_source_name_set(s.other, "127.0.0.1", 0, "other"));
    send_one(&s, out);
    CHECK_INT(s.other_status, ROSCO_ERR_HANDLE);
    CHECK_OK(rosco_ctx_free(s.other));

    /* Given for the host, then for the sender's own port. */
    CHECK_OK(rosco_source_name_set(s.ctx, "127.0.0.1", 0, "this host"));
    send_one(&s, out);
    CHECK_STR(s.name, "this host");
    uint16_t out_port = 0;
    CHECK_OK(rosco_channel_port(s.ctx, out, &out_port));
    CHECK_OK(rosco_source_name_set(s.ctx, "::ffff:127.0.0.1", out_port, "out"));
    send_one(&s, out);
    CHECK_STR(s.name, "out");
    /* Forgotten: the URL's name again. */
    CHECK_OK(rosco_source_name_set(s.ctx, "127.0.0.1", out_port, NULL));
    CHECK_OK(rosco_source_name_set(s.ctx, "127.0.0.1", 0, NULL));
    send_one(&s, out);
    CHECK_STR(s.name, "localhost");
    /* A buffer too small: truncated, and the length needed. */
    CHECK_OK(rosco_source_name_set(s.ctx, "127.0.0.1", 0, "a rather long name"));
    s.cap = 5;
    send_one(&s, out);
    CHECK_INT(s.status, ROSCO_ERR_RANGE);
    CHECK_STR(s.name, "a ra");
    CHECK_INT(s.needed, 18);
    s.cap = sizeof s.name;

    /* No source (_local), or bad arguments. */
    CHECK_OK(rosco_channel_find(s.ctx, "_local", &local));
    s.needed = 99;
    send_one(&s, local);
    CHECK_INT(s.status, ROSCO_ERR_RANGE);
    CHECK_INT(s.needed, 0);
    CHECK_ERR(rosco_source_name_set(s.ctx, "not an ip", 0, "x"), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_source_name_set(s.ctx, NULL, 0, "x"), ROSCO_ERR_NULL);
    char small[4];
    CHECK_ERR(rosco_msg_source_name(s.ctx, NULL, small, sizeof small, NULL), ROSCO_ERR_NULL);
    CHECK_OK(rosco_ctx_free(s.ctx));
    CHECK_ERR(rosco_source_name_set(s.ctx, "127.0.0.1", 0, "x"), ROSCO_ERR_HANDLE);
    return check_summary("source_name_test");
}
