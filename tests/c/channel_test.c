/* Channels: opening by URL (UDP, TCP with either framing, Unix datagram and stream, the
 * `_local` channel), ports and URLs, counters, flushing, sending, closing, and every error
 * path of the channel functions (NULLs, bad URLs, stale, zero and foreign handles). */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

/* What a recording method saw. */
struct rec {
    atomic_int n;
    char address[64];
    int32_t first_int;
    rosco_channel channel;
    char source[80];
    rosco_status source_status;
};

static int32_t record(void *user, const rosco_msg *m)
{
    struct rec *r = user;
    snprintf(r->address, sizeof r->address, "%s", rosco_msg_address(m));
    r->first_int = -1;
    (void)rosco_msg_get_i32(m, 0, &r->first_int);
    r->channel = (rosco_channel){0};
    (void)rosco_msg_channel(m, &r->channel);
    r->source[0] = '\0';
    r->source_status = rosco_msg_source(m, r->source, sizeof r->source);
    atomic_fetch_add(&r->n, 1);
    return 0;
}

static rosco_builder *message_i(const char *address, int32_t v)
{
    rosco_builder *b = rosco_builder_new();
    CHECK(b != NULL);
    CHECK_OK(rosco_builder_message(b, address));
    CHECK_OK(rosco_builder_add_i32(b, v));
    return b;
}

static void test_open_errors(rosco_ctx ctx)
{
    rosco_channel ch = {0x77};
    static const char *const bad_urls[] = {
        "",
        "bogus",
        "osc.udp:/127.0.0.1:9000",
        "osc.udp://:99999",
        "osc.udp://:abc",
        "osc.udp://:0?zzz=1",
        "osc.udp://:0?local=5",
        "osc.udp://127.0.0.1",
        "osc.udp://256.1.1.1:9000",
        "osc.udp://no host:9000",
        "osc.udp://127.0.0.1:9000?ttl=300",
        "osc.tcp://:0?framing=bogus",
        "osc.tcp://127.0.0.1:0",
        "osc.tcp://127.0.0.1:9000?max_clients=2",
        "osc.tcp://127.0.0.1:9000?framing=auto",
        "osc.unix://relative/path",
        "osc.unix:///tmp/dir/",
        "osc.unix://",
        "osc.unix:///tmp/x.sock?framing=slip",
        "xyz://127.0.0.1:9000",
    };
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        if (!CHECK_ERR(rosco_channel_open(ctx, "bad", bad_urls[i], &ch), ROSCO_ERR_ARG))
            fprintf(stderr, "  URL: '%s'\n", bad_urls[i]);
    }
    CHECK(ch.id == 0x77); /* not written on failure */
    /* Schemes the library knows but cannot open yet. (o2lite://ensemble, discovery, works
     * but would browse the real network: it is tested in a namespace, tests/o2lite_discovery.rs.) */
    CHECK_ERR(rosco_channel_open(ctx, "oo", "oocsi://me@127.0.0.1", &ch),
              ROSCO_ERR_UNSUPPORTED);
    /* NULL pointers. */
    CHECK_ERR(rosco_channel_open(ctx, NULL, "osc.udp://127.0.0.1:9000", &ch), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_channel_open(ctx, "n", NULL, &ch), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_channel_open(ctx, "n", "osc.udp://127.0.0.1:9000", NULL), ROSCO_ERR_NULL);
    /* Text that is not UTF-8. */
    CHECK_ERR(rosco_channel_open(ctx, "\xff\xfe", "osc.udp://127.0.0.1:9000", &ch),
              ROSCO_ERR_ARG);
    CHECK_ERR(rosco_channel_open(ctx, "n", "osc.udp://127.0.0.1:9000\xff", &ch), ROSCO_ERR_ARG);
    /* Names are unique, `_local` included. */
    CHECK_ERR(rosco_channel_open(ctx, "_local", "osc.udp://127.0.0.1:9000", &ch), ROSCO_ERR_ARG);
    rosco_channel a, b;
    CHECK_OK(rosco_channel_open(ctx, "same", "osc.udp://127.0.0.1:9000", &a));
    CHECK_ERR(rosco_channel_open(ctx, "same", "osc.udp://127.0.0.1:9001", &b), ROSCO_ERR_ARG);
    /* A port in use. */
    uint16_t port;
    char url[80];
    CHECK_OK(rosco_channel_open(ctx, "taken", "osc.udp://:0?bind=127.0.0.1", &b));
    CHECK_OK(rosco_channel_port(ctx, b, &port));
    snprintf(url, sizeof url, "osc.udp://:%u?bind=127.0.0.1", (unsigned)port);
    CHECK_ERR(rosco_channel_open(ctx, "taken2", url, &ch), ROSCO_ERR_IO);
    rosco_channel t;
    CHECK_OK(rosco_channel_open(ctx, "ttaken", "osc.tcp://:0?bind=127.0.0.1", &t));
    CHECK_OK(rosco_channel_port(ctx, t, &port));
    snprintf(url, sizeof url, "osc.tcp://:%u?bind=127.0.0.1", (unsigned)port);
    CHECK_ERR(rosco_channel_open(ctx, "ttaken2", url, &ch), ROSCO_ERR_IO);
    /* After a close the name is free again. */
    CHECK_OK(rosco_channel_close(ctx, a));
    CHECK_OK(rosco_channel_open(ctx, "same", "osc.udp://127.0.0.1:9001", &a));
    CHECK_OK(rosco_channel_close(ctx, a));
    CHECK_OK(rosco_channel_close(ctx, b));
    CHECK_OK(rosco_channel_close(ctx, t));
}

/* Every function taking a channel refuses `ch` (stale, zero or foreign) with
 * ROSCO_ERR_HANDLE. */
static void expect_bad_channel(rosco_ctx ctx, rosco_channel ch, const char *why)
{
    int before = CHECK_FAILURES;
    uint16_t port = 4321;
    char buf[64] = "untouched";
    size_t needed = 999;
    rosco_channel_stats st;
    const uint8_t raw[] = {'/', 'x', 0, 0, ',', 0, 0, 0};
    rosco_builder *b = message_i("/x", 1);

    CHECK_ERR(rosco_channel_port(ctx, ch, &port), ROSCO_ERR_HANDLE);
    CHECK_INT(port, 4321);
    CHECK_ERR(rosco_channel_url(ctx, ch, buf, sizeof buf, &needed), ROSCO_ERR_HANDLE);
    CHECK_INT(needed, 999);
    CHECK_ERR(rosco_channel_stats_get(ctx, ch, &st), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_flush(ctx, ch, 0), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_flush(ctx, ch, 50), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_send(ctx, ch, b), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_send_raw(ctx, ch, raw, sizeof raw), ROSCO_ERR_HANDLE);
    CHECK_ERR(rosco_channel_close(ctx, ch), ROSCO_ERR_HANDLE);
    rosco_builder_free(b);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (in expect_bad_channel: %s)\n", why);
}

static void test_null_args(rosco_ctx ctx)
{
    rosco_channel in, out;
    CHECK_OK(check_udp_pair(ctx, "nin", "nout", &in, &out, NULL));
    CHECK_ERR(rosco_channel_port(ctx, in, NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_channel_find(ctx, NULL, &in), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_channel_find(ctx, "nin", NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_channel_stats_get(ctx, in, NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_channel_url(ctx, in, NULL, 16, NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_send(ctx, out, NULL), ROSCO_ERR_NULL);
    CHECK_ERR(rosco_send_raw(ctx, out, NULL, 4), ROSCO_ERR_NULL);
    /* An empty packet is never valid OSC: refused, whatever the pointer. */
    CHECK_ERR(rosco_send_raw(ctx, out, NULL, 0), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_send_raw(ctx, out, (const uint8_t *)"", 0), ROSCO_ERR_ARG);
    /* Lookups of names that do not exist. */
    rosco_channel x = {0x99};
    CHECK_ERR(rosco_channel_find(ctx, "nope", &x), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_channel_find(ctx, "", &x), ROSCO_ERR_ARG);
    CHECK_ERR(rosco_channel_find(ctx, "\xff", &x), ROSCO_ERR_ARG);
    CHECK(x.id == 0x99);
    CHECK_OK(rosco_channel_close(ctx, in));
    CHECK_OK(rosco_channel_close(ctx, out));
}

static void test_url_buffer(rosco_ctx ctx)
{
    rosco_channel in;
    uint16_t port;
    char want[80], buf[80];
    size_t needed = 0;

    CHECK_OK(rosco_channel_open(ctx, "urlin", "osc.udp://:0?bind=127.0.0.1", &in));
    CHECK_OK(rosco_channel_port(ctx, in, &port));
    CHECK(port != 0);
    snprintf(want, sizeof want, "osc.udp://:%u/?bind=127.0.0.1", (unsigned)port);
    size_t wlen = strlen(want);

    CHECK_OK(rosco_channel_url(ctx, in, buf, sizeof buf, &needed));
    CHECK_STR(buf, want);
    CHECK_INT(needed, wlen);
    /* needed may be NULL. */
    CHECK_OK(rosco_channel_url(ctx, in, buf, sizeof buf, NULL));
    CHECK_STR(buf, want);
    /* Exactly big enough. */
    memset(buf, 'Z', sizeof buf);
    CHECK_OK(rosco_channel_url(ctx, in, buf, wlen + 1, &needed));
    CHECK_STR(buf, want);
    /* One byte short: a truncated, terminated copy and ROSCO_ERR_RANGE. */
    memset(buf, 'Z', sizeof buf);
    needed = 0;
    CHECK_ERR(rosco_channel_url(ctx, in, buf, wlen, &needed), ROSCO_ERR_RANGE);
    CHECK_INT(needed, wlen);
    CHECK_INT(strlen(buf), wlen - 1);
    CHECK(strncmp(buf, want, wlen - 1) == 0);
    CHECK(buf[wlen] == 'Z'); /* nothing written past len */
    /* A 1-byte buffer: just the terminator. */
    memset(buf, 'Z', sizeof buf);
    CHECK_ERR(rosco_channel_url(ctx, in, buf, 1, &needed), ROSCO_ERR_RANGE);
    CHECK(buf[0] == '\0' && buf[1] == 'Z');
    /* len 0 with a NULL buffer: only the size. */
    needed = 0;
    CHECK_ERR(rosco_channel_url(ctx, in, NULL, 0, &needed), ROSCO_ERR_RANGE);
    CHECK_INT(needed, wlen);
    CHECK_ERR(rosco_channel_url(ctx, in, NULL, 0, NULL), ROSCO_ERR_RANGE);

    /* URLs of other kinds of channel, in liblo's form. */
    rosco_channel ch;
    char url[96];
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", (unsigned)port);
    CHECK_OK(rosco_channel_open(ctx, "urlout", url, &ch));
    CHECK_OK(rosco_channel_url(ctx, ch, buf, sizeof buf, NULL));
    snprintf(want, sizeof want, "osc.udp://127.0.0.1:%u/", (unsigned)port);
    CHECK_STR(buf, want);
    CHECK_OK(rosco_channel_close(ctx, ch));
    CHECK_OK(rosco_channel_find(ctx, "_local", &ch));
    CHECK_OK(rosco_channel_url(ctx, ch, buf, sizeof buf, NULL));
    CHECK(strlen(buf) > 0);
    CHECK_OK(rosco_channel_close(ctx, in));
}

static void test_udp(rosco_ctx ctx)
{
    rosco_channel in, out;
    rosco_method m;
    struct rec r = {0};
    uint16_t port = 0, out_port = 0;
    rosco_channel_stats st;

    if (!CHECK_OK(check_udp_pair(ctx, "udpin", "udpout", &in, &out, &port)))
        return;
    CHECK(port != 0);
    CHECK(in.id != out.id);
    /* A sender's port is its ephemeral one. */
    CHECK_OK(rosco_channel_port(ctx, out, &out_port));
    CHECK(out_port != 0 && out_port != port);
    /* find gives the same handles. */
    rosco_channel found;
    CHECK_OK(rosco_channel_find(ctx, "udpin", &found));
    CHECK(found.id == in.id);
    CHECK_OK(rosco_channel_find(ctx, "udpout", &found));
    CHECK(found.id == out.id);

    CHECK_OK(rosco_channel_stats_get(ctx, in, &st));
    CHECK(st.packets_in == 0 && st.bytes_in == 0 && st.packets_out == 0 && st.bytes_out == 0 &&
          st.malformed == 0 && st.dropped == 0 && st.late == 0);

    CHECK_OK(rosco_method_add(ctx, "/udp", NULL, record, &r, NULL, &m));
    rosco_builder *b = message_i("/udp", 42);
    const uint8_t *bytes;
    size_t len;
    CHECK_OK(rosco_builder_bytes(b, &bytes, &len));
    CHECK_INT(len, 16); /* "/udp\0\0\0\0" ",i\0\0" int */
    CHECK_OK(rosco_send(ctx, out, b));
    CHECK(POLL_UNTIL(ctx, atomic_load(&r.n) == 1, 3000));
    CHECK_STR(r.address, "/udp");
    CHECK_INT(r.first_int, 42);
    CHECK(r.channel.id == in.id);
    CHECK_OK(r.source_status);
    char want[40];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)out_port);
    CHECK_STR(r.source, want);

    CHECK_OK(rosco_channel_stats_get(ctx, out, &st));
    CHECK_INT(st.packets_out, 1);
    CHECK_INT(st.bytes_out, 16);
    CHECK_INT(st.packets_in, 0);
    CHECK_OK(rosco_channel_stats_get(ctx, in, &st));
    CHECK_INT(st.packets_in, 1);
    CHECK_INT(st.bytes_in, 16);
    CHECK_INT(st.packets_out, 0);
    CHECK_INT(st.malformed, 0);

    /* Raw bytes: a valid packet is dispatched, garbage is counted as malformed. */
    CHECK_OK(rosco_send_raw(ctx, out, bytes, len));
    CHECK(POLL_UNTIL(ctx, atomic_load(&r.n) == 2, 3000));
    const uint8_t garbage[] = {'n', 'o', 't', ' ', 'o', 's', 'c', '!'};
    CHECK_OK(rosco_send_raw(ctx, out, garbage, sizeof garbage));
    CHECK(POLL_UNTIL(ctx, (rosco_channel_stats_get(ctx, in, &st), st.malformed == 1), 3000));
    CHECK_INT(st.packets_in, 3);
    CHECK_INT(st.bytes_in, 16 + 16 + 8);
    CHECK_INT(atomic_load(&r.n), 2);
    CHECK_OK(rosco_channel_stats_get(ctx, out, &st));
    CHECK_INT(st.packets_out, 3);
    CHECK_INT(st.bytes_out, 40);

    /* A UDP datagram has a size limit. */
    static uint8_t big[65600];
    memcpy(big, bytes, len);
    CHECK_ERR(rosco_send_raw(ctx, out, big, 65508), ROSCO_ERR_ARG);
    /* A listener has no destination of its own. */
    CHECK_ERR(rosco_send(ctx, in, b), ROSCO_ERR_UNSUPPORTED);
    /* Flushing a datagram channel has nothing to wait for. */
    CHECK_OK(rosco_channel_flush(ctx, out, 0));
    CHECK_OK(rosco_channel_flush(ctx, in, 100));

    /* An empty builder cannot be sent. */
    rosco_builder *empty = rosco_builder_new();
    CHECK_ERR(rosco_send(ctx, out, empty), ROSCO_ERR_ARG);
    rosco_builder_free(empty);

    /* Closed: the handles go stale and nothing more arrives. */
    CHECK_OK(rosco_method_remove(ctx, m));
    CHECK_OK(rosco_channel_close(ctx, out));
    CHECK_OK(rosco_channel_close(ctx, in));
    expect_bad_channel(ctx, in, "closed UDP listener");
    expect_bad_channel(ctx, out, "closed UDP sender");
    CHECK_ERR(rosco_channel_find(ctx, "udpin", &found), ROSCO_ERR_ARG);
    rosco_builder_free(b);
}

/* A stream listener and a client to it, in `framing` (NULL: the default). */
static void test_stream(rosco_ctx ctx, const char *listen_url, const char *client_fmt,
                        const char *what, int is_tcp)
{
    rosco_channel l, c;
    rosco_method m;
    struct rec r = {0};
    uint16_t port = 0;
    char url[160];
    int before = CHECK_FAILURES;

    if (!CHECK_OK(rosco_channel_open(ctx, "sl", listen_url, &l)))
        return;
    if (is_tcp) {
        CHECK_OK(rosco_channel_port(ctx, l, &port));
        CHECK(port != 0);
    } else {
        CHECK_ERR(rosco_channel_port(ctx, l, &port), ROSCO_ERR_UNSUPPORTED);
    }
    snprintf(url, sizeof url, client_fmt, (unsigned)port);
    if (!CHECK_OK(rosco_channel_open(ctx, "sc", url, &c))) {
        rosco_channel_close(ctx, l);
        return;
    }
    CHECK_OK(rosco_method_add(ctx, "/s", NULL, record, &r, NULL, &m));

    /* Client to listener (possibly queued until the connection is up). */
    rosco_builder *b = message_i("/s", 1);
    CHECK_OK(rosco_send(ctx, c, b));
    CHECK(POLL_UNTIL(ctx, atomic_load(&r.n) == 1, 5000));
    CHECK_INT(r.first_int, 1);
    CHECK(r.channel.id == l.id);
    if (is_tcp) {
        CHECK_OK(r.source_status);
        CHECK(strncmp(r.source, "127.0.0.1:", 10) == 0);
    } else {
        CHECK_STATUS(r.source_status, ROSCO_ERR_RANGE);
    }
    CHECK_OK(rosco_channel_flush(ctx, c, (uint32_t)check_scale_ms(2000)));

    /* Listener to every connected peer. */
    rosco_builder_free(b);
    b = message_i("/s", 2);
    CHECK_OK(rosco_send(ctx, l, b));
    CHECK_OK(rosco_channel_flush(ctx, l, (uint32_t)check_scale_ms(2000)));
    CHECK(POLL_UNTIL(ctx, atomic_load(&r.n) == 2, 5000));
    CHECK_INT(r.first_int, 2);
    CHECK(r.channel.id == c.id);

    /* Several messages in a row keep their order and their framing. */
    for (int32_t i = 10; i < 20; i++) {
        rosco_builder_free(b);
        b = message_i("/s", i);
        CHECK_OK(rosco_send(ctx, c, b));
    }
    CHECK(POLL_UNTIL(ctx, atomic_load(&r.n) == 12, 5000));
    CHECK_INT(r.first_int, 19);
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(ctx, c, &st));
    CHECK_INT(st.packets_out, 11);
    CHECK_INT(st.packets_in, 1);
    CHECK_INT(st.malformed, 0);
    CHECK_OK(rosco_channel_stats_get(ctx, l, &st));
    CHECK_INT(st.packets_in, 11);
    CHECK_INT(st.packets_out, 1);
    CHECK_INT(st.malformed, 0);

    /* The URLs read back. */
    char buf[200];
    CHECK_OK(rosco_channel_url(ctx, c, buf, sizeof buf, NULL));
    CHECK(strncmp(buf, is_tcp ? "osc.tcp://127.0.0.1:" : "osc.unix:///", 12) == 0);
    CHECK_OK(rosco_channel_url(ctx, l, buf, sizeof buf, NULL));
    CHECK(strncmp(buf, is_tcp ? "osc.tcp://:" : "osc.unix:///", 11) == 0);

    CHECK_OK(rosco_method_remove(ctx, m));
    CHECK_OK(rosco_channel_close(ctx, c));
    CHECK_OK(rosco_channel_close(ctx, l));
    expect_bad_channel(ctx, l, "closed stream listener");
    expect_bad_channel(ctx, c, "closed stream client");
    rosco_builder_free(b);
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above in the %s stream test)\n", what);
}

static void test_unix_dgram(rosco_ctx ctx, int32_t mode)
{
    char path[96], url[160];
    rosco_channel l, s;
    rosco_method m;
    struct rec r = {0};

    check_temp_path(path, sizeof path, "dgram");
    unlink(path);
    snprintf(url, sizeof url, "osc.unix://%s?listen", path);
    if (!CHECK_OK(rosco_channel_open(ctx, "ul", url, &l)))
        return;
    CHECK(access(path, F_OK) == 0); /* bound when open returns */
    snprintf(url, sizeof url, "osc.unix://%s", path);
    CHECK_OK(rosco_channel_open(ctx, "us", url, &s));
    CHECK_OK(rosco_method_add(ctx, "/u", NULL, record, &r, NULL, &m));
    rosco_builder *b = message_i("/u", 5);
    CHECK_OK(rosco_send(ctx, s, b));
    CHECK(POLL_UNTIL(ctx, atomic_load(&r.n) == 1, 3000));
    CHECK_INT(r.first_int, 5);
    CHECK(r.channel.id == l.id);
    CHECK_STATUS(r.source_status, ROSCO_ERR_RANGE); /* not IP */
    uint16_t port;
    CHECK_ERR(rosco_channel_port(ctx, l, &port), ROSCO_ERR_UNSUPPORTED);
    CHECK_ERR(rosco_channel_port(ctx, s, &port), ROSCO_ERR_UNSUPPORTED);
    CHECK_ERR(rosco_send(ctx, l, b), ROSCO_ERR_UNSUPPORTED);
    char buf[160];
    snprintf(url, sizeof url, "osc.unix://%s?listen", path);
    CHECK_OK(rosco_channel_url(ctx, l, buf, sizeof buf, NULL));
    CHECK_STR(buf, url);
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(ctx, l, &st));
    CHECK_INT(st.packets_in, 1);
    CHECK_INT(st.bytes_in, 12);
    CHECK_OK(rosco_channel_stats_get(ctx, s, &st));
    CHECK_INT(st.packets_out, 1);
    CHECK_OK(rosco_method_remove(ctx, m));
    CHECK_OK(rosco_channel_close(ctx, s));
    CHECK_OK(rosco_channel_close(ctx, l));
    /* The socket file goes with the channel (at once in poll mode; the other modes are
     * covered by test_close_then_reopen). */
    if (mode == ROSCO_MODE_POLL)
        CHECK(access(path, F_OK) != 0);
    rosco_builder_free(b);
}

static void test_local(rosco_ctx ctx)
{
    rosco_channel local, again;
    rosco_method m;
    struct rec r = {0};

    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    CHECK_OK(rosco_channel_find(ctx, "_local", &again));
    CHECK(local.id == again.id);
    CHECK(local.id != 0);
    CHECK_OK(rosco_method_add(ctx, "/l", NULL, record, &r, NULL, &m));
    rosco_builder *b = message_i("/l", 9);
    CHECK_OK(rosco_send(ctx, local, b));
    /* Nothing is dispatched inside rosco_send. */
    CHECK_INT(atomic_load(&r.n), 0);
    CHECK(POLL_UNTIL(ctx, atomic_load(&r.n) == 1, 3000));
    CHECK_INT(r.first_int, 9);
    CHECK(r.channel.id == local.id);
    CHECK_STATUS(r.source_status, ROSCO_ERR_RANGE);
    /* Raw bytes through _local are checked: garbage is refused at once. */
    const uint8_t garbage[] = {'x', 'y', 'z', 0};
    CHECK_ERR(rosco_send_raw(ctx, local, garbage, sizeof garbage), ROSCO_ERR_ARG);
    const uint8_t *bytes;
    size_t len;
    CHECK_OK(rosco_builder_bytes(b, &bytes, &len));
    CHECK_OK(rosco_send_raw(ctx, local, bytes, len));
    CHECK(POLL_UNTIL(ctx, atomic_load(&r.n) == 2, 3000));
    uint16_t port;
    CHECK_ERR(rosco_channel_port(ctx, local, &port), ROSCO_ERR_UNSUPPORTED);
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(ctx, local, &st));
    CHECK_OK(rosco_channel_flush(ctx, local, 0));
    CHECK_OK(rosco_method_remove(ctx, m));
    rosco_builder_free(b);
}

/* "_local always exists": closing it is refused. */
static void test_close_local(void)
{
    rosco_ctx ctx;
    rosco_channel local;
    CHECK_OK(rosco_ctx_new(NULL, &ctx));
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    CHECK_ERR(rosco_channel_close(ctx, local), ROSCO_ERR_UNSUPPORTED);
    CHECK_OK(rosco_channel_find(ctx, "_local", &local));
    CHECK_OK(rosco_ctx_free(ctx));
}

static void test_foreign_and_zero(rosco_ctx a)
{
    rosco_ctx b;
    rosco_channel a_in, a_out, b_in, b_out, a_local, b_local;

    CHECK_OK(rosco_ctx_new(NULL, &b));
    /* Both contexts have channels in the same slots. */
    CHECK_OK(check_udp_pair(a, "fin", "fout", &a_in, &a_out, NULL));
    CHECK_OK(check_udp_pair(b, "fin", "fout", &b_in, &b_out, NULL));
    CHECK_OK(rosco_channel_find(a, "_local", &a_local));
    CHECK_OK(rosco_channel_find(b, "_local", &b_local));
    CHECK(a_in.id != b_in.id);
    CHECK(a_local.id != b_local.id);
    expect_bad_channel(b, a_in, "A's listener used with B");
    expect_bad_channel(b, a_out, "A's sender used with B");
    expect_bad_channel(a, b_out, "B's sender used with A");
    expect_bad_channel(a, b_local, "B's _local used with A");
    expect_bad_channel(a, (rosco_channel){0}, "all-zero channel handle");
    expect_bad_channel(a, (rosco_channel){UINT64_MAX}, "all-ones channel handle");
    /* Still fine in their own context. */
    uint16_t port;
    CHECK_OK(rosco_channel_port(a, a_in, &port));
    CHECK_OK(rosco_channel_port(b, b_in, &port));
    /* A context's channels go stale with it. */
    CHECK_OK(rosco_ctx_free(b));
    expect_bad_channel(b, b_in, "channel of a freed context");
    expect_bad_channel(a, b_in, "channel of a freed context, with another context");
    CHECK_OK(rosco_channel_close(a, a_in));
    CHECK_OK(rosco_channel_close(a, a_out));
}

static void test_stream_client_states(rosco_ctx ctx)
{
    /* A client to a port nobody listens on, not reconnecting: it gives up. */
    rosco_channel t, free_port;
    uint16_t port;
    char url[96];
    CHECK_OK(rosco_channel_open(ctx, "fp", "osc.tcp://:0?bind=127.0.0.1", &free_port));
    CHECK_OK(rosco_channel_port(ctx, free_port, &port));
    CHECK_OK(rosco_channel_close(ctx, free_port)); /* now nothing listens on `port` */
    snprintf(url, sizeof url, "osc.tcp://127.0.0.1:%u?reconnect=0", (unsigned)port);
    CHECK_OK(rosco_channel_open(ctx, "dead", url, &t));
    rosco_builder *b = message_i("/d", 1);
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    rosco_status s = ROSCO_OK;
    while (check_now_ms() < deadline) {
        (void)rosco_poll(ctx, 10, NULL);
        s = rosco_channel_flush(ctx, t, 0);
        if (s == ROSCO_ERR_CLOSED)
            break;
    }
    CHECK_STATUS(s, ROSCO_ERR_CLOSED);
    CHECK_ERR(rosco_channel_flush(ctx, t, 10), ROSCO_ERR_CLOSED);
    CHECK_ERR(rosco_send(ctx, t, b), ROSCO_ERR_CLOSED);
    CHECK_ERR(rosco_channel_port(ctx, t, &port), ROSCO_ERR_UNSUPPORTED);
    CHECK_OK(rosco_channel_close(ctx, t));

    /* A reconnecting client that cannot connect: flush times out. */
    snprintf(url, sizeof url, "osc.tcp://127.0.0.1:%u?backoff_ms=50", (unsigned)port);
    CHECK_OK(rosco_channel_open(ctx, "retry", url, &t));
    CHECK_OK(rosco_send(ctx, t, b)); /* kept for when it connects */
    int64_t t0 = check_now_ms();
    CHECK_ERR(rosco_channel_flush(ctx, t, 100), ROSCO_ERR_TIMEOUT);
    CHECK(check_now_ms() - t0 >= 90);
    CHECK_OK(rosco_channel_close(ctx, t));
    rosco_builder_free(b);
}

/* A peer that closes its end of a stream: sends report ROSCO_ERR_CLOSED or keep the packet
 * for the next connection, and the process lives. SIGPIPE keeps its default action here
 * (fatal), as in a host that never touched it: a write to a closed socket must not raise
 * it. `unix_path` NULL: a TCP client told not to reconnect, which ends closed; otherwise a
 * Unix stream client, which reconnects to the listener that is still there. */
static void test_closed_peer(rosco_ctx ctx, const char *unix_path)
{
    struct sockaddr_storage addr = {0};
    socklen_t addr_len;
    char url[160];
    int lfd = socket(unix_path ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
    CHECK(lfd >= 0);
    if (unix_path) {
        struct sockaddr_un *un = (struct sockaddr_un *)&addr;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof un->sun_path, "%s", unix_path);
        addr_len = sizeof *un;
        snprintf(url, sizeof url, "osc.unix://%s?stream", unix_path);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&addr;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr_len = sizeof *in;
    }
    CHECK(bind(lfd, (struct sockaddr *)&addr, addr_len) == 0);
    CHECK(listen(lfd, 1) == 0);
    if (!unix_path) {
        CHECK(getsockname(lfd, (struct sockaddr *)&addr, &addr_len) == 0);
        snprintf(url, sizeof url, "osc.tcp://127.0.0.1:%u?reconnect=0",
                 (unsigned)ntohs(((struct sockaddr_in *)&addr)->sin_port));
    }
    rosco_channel ch;
    if (!CHECK_OK(rosco_channel_open(ctx, "to-closing", url, &ch))) {
        close(lfd);
        return;
    }
    rosco_builder *b = message_i("/gone", 1);
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    for (int connection = 0; connection < (unix_path ? 2 : 1); connection++) {
        int64_t deadline = check_now_ms() + check_scale_ms(3000);
        pfd.revents = 0;
        while (poll(&pfd, 1, 0) == 0 && check_now_ms() < deadline)
            (void)rosco_poll(ctx, 10, NULL);
        int peer = pfd.revents ? accept(lfd, NULL, NULL) : -1;
        if (!CHECK(peer >= 0))
            break;
        close(peer);
        /* Until the client notices: every send succeeds or says the peer is gone. */
        rosco_status s = ROSCO_OK;
        int bad = 0;
        deadline = check_now_ms() + check_scale_ms(unix_path ? 300 : 3000);
        while (check_now_ms() < deadline && (unix_path || s == ROSCO_OK)) {
            s = rosco_send(ctx, ch, b);
            bad += s != ROSCO_OK && s != ROSCO_ERR_CLOSED;
            (void)rosco_poll(ctx, 1, NULL);
        }
        CHECK_INT(bad, 0);
        if (!unix_path) {
            CHECK_STATUS(s, ROSCO_ERR_CLOSED);
            CHECK_ERR(rosco_send(ctx, ch, b), ROSCO_ERR_CLOSED);
        }
    }
    CHECK_OK(rosco_channel_close(ctx, ch));
    rosco_builder_free(b);
    close(lfd);
}

/* Accept callback: refuses peers from 127.0.0.2 (standing for an untrusted host). */
struct gate {
    rosco_channel listener;
    atomic_int calls;
    atomic_int wrong_listener;
};

static int32_t gate_accept(void *user, rosco_channel listener, const char *peer)
{
    struct gate *g = user;
    atomic_fetch_add(&g->calls, 1);
    if (listener.id != g->listener.id)
        atomic_fetch_add(&g->wrong_listener, 1);
    return peer && strncmp(peer, "127.0.0.2:", 10) != 0;
}

/* A raw TCP connection from `from` (dotted IPv4) to 127.0.0.1:port, or -1. */
static int connect_from(const char *from, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &a.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Polls until the raw connection `fd` is closed by rosco (1) or `ms` pass (0). */
static int closed_within(rosco_ctx ctx, int fd, int ms)
{
    int64_t deadline = check_now_ms() + check_scale_ms(ms);
    char c;
    while (check_now_ms() < deadline) {
        if (recv(fd, &c, 1, MSG_DONTWAIT) == 0)
            return 1;
        (void)rosco_poll(ctx, 10, NULL);
    }
    return 0;
}

static void test_accept_callback(rosco_ctx ctx)
{
    struct gate g = {0};
    uint16_t port;
    char name[8];
    size_t needed = 0;

    if (!CHECK_OK(rosco_channel_open(ctx, "gate", "osc.tcp://:0?bind=127.0.0.1", &g.listener)))
        return;
    CHECK_OK(rosco_channel_port(ctx, g.listener, &port));
    CHECK_OK(rosco_channel_name(ctx, g.listener, name, sizeof name, &needed));
    CHECK_STR(name, "gate");
    CHECK_INT(needed, 4);
    CHECK_ERR(rosco_channel_name(ctx, g.listener, name, 4, NULL), ROSCO_ERR_RANGE);
    CHECK_STR(name, "gat");
    CHECK_OK(rosco_ctx_set_accept_callback(ctx, gate_accept, &g));
    int stranger = connect_from("127.0.0.2", port);
    int friend = connect_from("127.0.0.1", port);
    CHECK(stranger >= 0 && friend >= 0);
    CHECK(closed_within(ctx, stranger, 3000));
    POLL_UNTIL(ctx, atomic_load(&g.calls) == 2, 3000);
    CHECK(!closed_within(ctx, friend, 100));
    CHECK_INT(atomic_load(&g.calls), 2);
    CHECK_INT(atomic_load(&g.wrong_listener), 0);
    /* Removed: everyone is accepted, and the old callback is not called again. */
    CHECK_OK(rosco_ctx_set_accept_callback(ctx, NULL, NULL));
    int again = connect_from("127.0.0.2", port);
    CHECK(again >= 0);
    CHECK(!closed_within(ctx, again, 200));
    CHECK_INT(atomic_load(&g.calls), 2);
    close(stranger);
    close(friend);
    close(again);
    CHECK_OK(rosco_channel_close(ctx, g.listener));
    CHECK_ERR(rosco_channel_name(ctx, g.listener, name, sizeof name, NULL), ROSCO_ERR_HANDLE);
}

/* A channel closed from an event callback that rosco_channel_flush runs (poll mode: the
 * flush drives the I/O) is closed at once, as from one that rosco_poll runs: the close
 * does not wait for a reference its own thread holds. */
struct flush_close {
    rosco_ctx ctx;
    rosco_channel victim;
    int closed;
    rosco_status status;
    int64_t took_ms;
};

static void close_on_connect(void *user, const rosco_event *e)
{
    struct flush_close *f = user;
    if (e->kind != ROSCO_EVENT_CONNECTED || f->closed)
        return;
    f->closed = 1;
    int64_t t0 = check_now_ms();
    f->status = rosco_channel_close(f->ctx, f->victim);
    f->took_ms = check_now_ms() - t0;
}

static void test_close_inside_flush(void)
{
    struct flush_close f = {0};
    rosco_channel listener, client;
    uint16_t port;
    char url[64];
    if (!CHECK_OK(rosco_ctx_new(NULL, &f.ctx)))
        return;
    CHECK_OK(rosco_ctx_set_event_callback(f.ctx, close_on_connect, &f));
    CHECK_OK(rosco_channel_open(f.ctx, "victim", "osc.udp://:0?bind=127.0.0.1", &f.victim));
    CHECK_OK(rosco_channel_open(f.ctx, "l", "osc.tcp://:0?bind=127.0.0.1", &listener));
    CHECK_OK(rosco_channel_port(f.ctx, listener, &port));
    snprintf(url, sizeof url, "osc.tcp://127.0.0.1:%u", (unsigned)port);
    CHECK_OK(rosco_channel_open(f.ctx, "c", url, &client));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/x"));
    CHECK_OK(rosco_send(f.ctx, client, b));
    CHECK_OK(rosco_channel_flush(f.ctx, client, (uint32_t)check_scale_ms(2000)));
    CHECK_INT(f.closed, 1);
    CHECK_STATUS(f.status, ROSCO_OK);
    CHECK(f.took_ms < 400); /* not the 500 ms a close waits for other threads */
    CHECK_ERR(rosco_channel_port(f.ctx, f.victim, &port), ROSCO_ERR_HANDLE);
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(f.ctx));
}

/* Whether a socket of this process holds TCP port `port` on IPv4 (Linux's /proc): a
 * reopen refused because another process took the freed port (an outgoing connection
 * given it as its ephemeral port) is not rosco's socket outliving its close. */
static int port_held_here(uint16_t port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return 1; /* cannot tell: count it */
    char line[512], link[64], want[64];
    unsigned long inodes[64];
    int n = 0, held = 0;
    while (fgets(line, sizeof line, f) && n < 64) {
        unsigned local_port;
        unsigned long inode;
        if (sscanf(line, " %*d: %*8s:%4X %*s %*s %*s %*s %*s %*s %*s %lu", &local_port,
                   &inode) == 2 && local_port == port)
            inodes[n++] = inode;
    }
    fclose(f);
    for (int fd = 0; fd < 1024 && !held; fd++) {
        char path[32];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        for (int i = 0; i < n && !held; i++) {
            snprintf(want, sizeof want, "socket:[%lu]", inodes[i]);
            held = strcmp(link, want) == 0;
        }
    }
    return held;
}

/* "Closes a channel: its sockets close": once rosco_channel_close returns, the port or
 * path is free again, in every mode. */
static void test_close_then_reopen(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    char url[160], path[96];
    int udp_fail = 0, tcp_fail = 0, unix_fail = 0, file_left = 0;
    const int rounds = 30;

    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    for (int i = 0; i < rounds; i++) {
        rosco_channel ch;
        uint16_t port = 0;
        if (rosco_channel_open(ctx, "r", "osc.udp://:0?bind=127.0.0.1", &ch) != ROSCO_OK ||
            rosco_channel_port(ctx, ch, &port) != ROSCO_OK) {
            udp_fail++;
            continue;
        }
        CHECK_OK(rosco_channel_close(ctx, ch));
        snprintf(url, sizeof url, "osc.udp://:%u?bind=127.0.0.1", (unsigned)port);
        if (rosco_channel_open(ctx, "r", url, &ch) == ROSCO_OK)
            CHECK_OK(rosco_channel_close(ctx, ch));
        else
            udp_fail++;

        if (rosco_channel_open(ctx, "t", "osc.tcp://:0?bind=127.0.0.1", &ch) != ROSCO_OK ||
            rosco_channel_port(ctx, ch, &port) != ROSCO_OK) {
            tcp_fail++;
            continue;
        }
        CHECK_OK(rosco_channel_close(ctx, ch));
        snprintf(url, sizeof url, "osc.tcp://:%u?bind=127.0.0.1", (unsigned)port);
        if (rosco_channel_open(ctx, "t", url, &ch) == ROSCO_OK)
            CHECK_OK(rosco_channel_close(ctx, ch));
        else if (port_held_here(port))
            tcp_fail++;
        else
            fprintf(stderr, "  (port %u taken by another process before the reopen)\n",
                    (unsigned)port);

        check_temp_path(path, sizeof path, "reopen");
        snprintf(url, sizeof url, "osc.unix://%s?listen&stream", path);
        if (rosco_channel_open(ctx, "u", url, &ch) != ROSCO_OK) {
            unix_fail++;
            continue;
        }
        CHECK_OK(rosco_channel_close(ctx, ch));
        if (access(path, F_OK) == 0)
            file_left++;
        if (rosco_channel_open(ctx, "u", url, &ch) == ROSCO_OK)
            CHECK_OK(rosco_channel_close(ctx, ch));
        else
            unix_fail++;
        unlink(path);
    }
    CHECK_INT(udp_fail, 0);
    CHECK_INT(tcp_fail, 0);
    CHECK_INT(unix_fail, 0);
    CHECK_INT(file_left, 0);
    if (udp_fail + tcp_fail + unix_fail + file_left > 0)
        fprintf(stderr, "  (close then reopen in %s mode: the socket outlived "
                        "rosco_channel_close in %d of %d UDP, %d TCP, %d Unix reopens; "
                        "%d socket files left)\n",
                check_mode_name(mode), udp_fail, rounds, tcp_fail, unix_fail, file_left);
    CHECK_OK(rosco_ctx_free(ctx));
}

/* The same, made deterministic: the I/O thread is held inside an event callback (it runs
 * there in io-thread and threaded modes) while the channel it is reading is closed. */
struct blocker {
    atomic_int entered;
    atomic_int release;
    atomic_int left;
};

static void blocking_event(void *user, const rosco_event *e)
{
    struct blocker *b = user;
    if (e->kind != ROSCO_EVENT_MALFORMED)
        return;
    atomic_store(&b->entered, 1);
    int64_t deadline = check_now_ms() + check_scale_ms(5000);
    while (!atomic_load(&b->release) && check_now_ms() < deadline)
        check_sleep_ms(1);
    atomic_store(&b->left, 1);
}

/* Releases the blocked event callback and waits until it has returned (a fixed sleep
 * could end before a descheduled I/O thread saw the release). */
static void release_blocker(struct blocker *b)
{
    atomic_store(&b->release, 1);
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    while (!atomic_load(&b->left) && check_now_ms() < deadline)
        check_sleep_ms(1);
    CHECK(atomic_load(&b->left));
    atomic_store(&b->left, 0);
}

static void test_close_while_io_thread_busy(int32_t mode)
{
    rosco_ctx_options o = check_options(mode);
    rosco_ctx ctx;
    rosco_channel in, out, again;
    uint16_t port = 0;
    char url[160], path[96];
    struct blocker blk = {0, 0, 0};
    const uint8_t garbage[] = {'j', 'u', 'n', 'k'};
    int before = CHECK_FAILURES;

    if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
        return;
    CHECK_OK(rosco_ctx_set_event_callback(ctx, blocking_event, &blk));

    /* UDP: the port is free once rosco_channel_close returns. */
    CHECK_OK(check_udp_pair(ctx, "in", "out", &in, &out, &port));
    CHECK_OK(rosco_send_raw(ctx, out, garbage, sizeof garbage));
    int64_t deadline = check_now_ms() + check_scale_ms(3000);
    while (!atomic_load(&blk.entered) && check_now_ms() < deadline)
        check_sleep_ms(1);
    CHECK(atomic_load(&blk.entered));
    CHECK_OK(rosco_channel_close(ctx, in));
    snprintf(url, sizeof url, "osc.udp://:%u?bind=127.0.0.1", (unsigned)port);
    if (CHECK_OK(rosco_channel_open(ctx, "in", url, &again)))
        CHECK_OK(rosco_channel_close(ctx, again));
    release_blocker(&blk);

    /* Unix datagram: the socket file is gone once rosco_channel_close returns. */
    atomic_store(&blk.entered, 0);
    atomic_store(&blk.release, 0);
    check_temp_path(path, sizeof path, "busy");
    unlink(path);
    snprintf(url, sizeof url, "osc.unix://%s?listen", path);
    CHECK_OK(rosco_channel_open(ctx, "uin", url, &in));
    snprintf(url, sizeof url, "osc.unix://%s", path);
    CHECK_OK(rosco_channel_open(ctx, "uout", url, &out));
    CHECK_OK(rosco_send_raw(ctx, out, garbage, sizeof garbage));
    deadline = check_now_ms() + check_scale_ms(3000);
    while (!atomic_load(&blk.entered) && check_now_ms() < deadline)
        check_sleep_ms(1);
    CHECK(atomic_load(&blk.entered));
    CHECK_OK(rosco_channel_close(ctx, in));
    CHECK(access(path, F_OK) != 0);
    release_blocker(&blk);
    unlink(path);
    CHECK_OK(rosco_ctx_free(ctx));
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (rosco_channel_close in %s mode returned while the I/O thread "
                        "still held the channel's socket)\n", check_mode_name(mode));
}

int main(void)
{
    char path[96], listen_url[160], client_url[160];
    const int32_t modes[] = {ROSCO_MODE_POLL, ROSCO_MODE_IO_THREAD};

    /* A host that leaves SIGPIPE alone (test_closed_peer). */
    signal(SIGPIPE, SIG_DFL);

    for (int i = 0; i < 2; i++) {
        rosco_ctx_options o = check_options(modes[i]);
        rosco_ctx ctx;
        int before = CHECK_FAILURES;
        if (!CHECK_OK(rosco_ctx_new(&o, &ctx)))
            continue;
        test_open_errors(ctx);
        test_null_args(ctx);
        test_url_buffer(ctx);
        test_udp(ctx);
        test_stream(ctx, "osc.tcp://:0?bind=127.0.0.1", "osc.tcp://127.0.0.1:%u", "TCP default",
                    1);
        test_stream(ctx, "osc.tcp://:0?bind=127.0.0.1&framing=slip",
                    "osc.tcp://127.0.0.1:%u?framing=slip", "TCP SLIP", 1);
        test_stream(ctx, "osc.tcp://:0?bind=127.0.0.1&framing=length",
                    "osc.tcp://127.0.0.1:%u?framing=length", "TCP length-prefixed", 1);
        test_stream(ctx, "osc.tcp://:0?bind=127.0.0.1", "osc.tcp://127.0.0.1:%u?framing=slip",
                    "TCP auto-detecting SLIP", 1);
        check_temp_path(path, sizeof path, "stream");
        unlink(path);
        snprintf(listen_url, sizeof listen_url, "osc.unix://%s?listen&stream", path);
        snprintf(client_url, sizeof client_url, "osc.unix://%s?stream", path);
        test_stream(ctx, listen_url, client_url, "Unix", 0);
        unlink(path);
        check_temp_path(path, sizeof path, "stream-slip");
        unlink(path);
        snprintf(listen_url, sizeof listen_url, "osc.unix://%s?listen&stream&framing=slip", path);
        snprintf(client_url, sizeof client_url, "osc.unix://%s?stream&framing=slip", path);
        test_stream(ctx, listen_url, client_url, "Unix SLIP", 0);
        unlink(path);
        test_unix_dgram(ctx, modes[i]);
        test_local(ctx);
        test_foreign_and_zero(ctx);
        test_stream_client_states(ctx);
        test_accept_callback(ctx);
        test_closed_peer(ctx, NULL);
        check_temp_path(path, sizeof path, "closing");
        unlink(path);
        test_closed_peer(ctx, path);
        unlink(path);
        CHECK_OK(rosco_ctx_free(ctx));
        if (CHECK_FAILURES != before)
            fprintf(stderr, "  (failures above in %s mode)\n", check_mode_name(modes[i]));
    }
    test_close_local();
    test_close_inside_flush();
    test_close_then_reopen(ROSCO_MODE_POLL);
    test_close_then_reopen(ROSCO_MODE_IO_THREAD);
    test_close_then_reopen(ROSCO_MODE_THREADED);
    test_close_while_io_thread_busy(ROSCO_MODE_IO_THREAD);
    test_close_while_io_thread_busy(ROSCO_MODE_THREADED);
    return check_summary("channel_test");
}
