/* The codec options of rosco_ctx_options (osc4py3's out-of-band options): allowed types,
 * address checks, required type tags, ASCII-only text and address compression, applied to
 * what a context receives and to the messages it encodes. Raw bytes are sent as they are,
 * so they carry what a peer without the options would send. */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>

struct got {
    atomic_int n;
    char address[64];
    int32_t first_int;
};

static int32_t record(void *user, const rosco_msg *m)
{
    struct got *g = user;
    snprintf(g->address, sizeof g->address, "%s", rosco_msg_address(m));
    g->first_int = -1;
    (void)rosco_msg_get_i32(m, 0, &g->first_int);
    atomic_fetch_add(&g->n, 1);
    return 0;
}

/* A context with `o`, a UDP listener and a sender to it, and a catch-all method. */
struct rig {
    rosco_ctx ctx;
    rosco_channel in, out;
    struct got got;
};

static int rig_open(struct rig *r, rosco_ctx_options o)
{
    rosco_method m;
    memset(r, 0, sizeof *r);
    if (!CHECK_OK(rosco_ctx_new(&o, &r->ctx)))
        return 0;
    CHECK_OK(check_udp_pair(r->ctx, "in", "out", &r->in, &r->out, NULL));
    CHECK_OK(rosco_method_add(r->ctx, NULL, NULL, record, &r->got, NULL, &m));
    return 1;
}

/* Sends raw bytes given as hex and waits until the listener counted them. */
static void send_hex(struct rig *r, const char *hex)
{
    uint8_t bytes[256];
    size_t len = strlen(hex) / 2;
    rosco_channel_stats st;
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        bytes[i] = (uint8_t)v;
    }
    CHECK_OK(rosco_channel_stats_get(r->ctx, r->in, &st));
    uint64_t before = st.packets_in;
    CHECK_OK(rosco_send_raw(r->ctx, r->out, bytes, len));
    CHECK(POLL_UNTIL(r->ctx, (rosco_channel_stats_get(r->ctx, r->in, &st),
                              st.packets_in == before + 1),
                     3000));
    check_poll_for(r->ctx, 20);
}

static uint64_t malformed(struct rig *r)
{
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(r->ctx, r->in, &st));
    return st.malformed;
}

static rosco_status send_str(struct rig *r, const char *address, const char *s)
{
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, address));
    CHECK_OK(rosco_builder_add_str(b, s));
    rosco_status st = rosco_send(r->ctx, r->out, b);
    rosco_builder_free(b);
    return st;
}

static void test_defaults(void)
{
    rosco_ctx_options o;
    memset(&o, 0xAB, sizeof o);
    CHECK_OK(rosco_ctx_options_init(&o));
    CHECK(o.types == NULL);
    CHECK_INT(o.check_address, 0);
    CHECK_INT(o.require_typetags, 0);
    CHECK_INT(o.ascii_only, 0);
    CHECK(o.address_codes == NULL && o.addresses == NULL);
    CHECK_INT(o.address_count, 0);
    CHECK_INT(o.max_pattern_len, 1024);

    /* Without options every type, any text and any address syntax pass both ways. */
    struct rig r;
    if (!rig_open(&r, o))
        return;
    CHECK_OK(send_str(&r, "/caf\xc3\xa9 x", "\xc3\xa9t\xc3\xa9"));
    CHECK(POLL_UNTIL(r.ctx, atomic_load(&r.got.n) == 1, 3000));
    CHECK_STR(r.got.address, "/caf\xc3\xa9 x");
    send_hex(&r, "2f610000"); /* "/a" without type tags */
    CHECK_INT(atomic_load(&r.got.n), 2);
    /* An address is bytes, as strings are: Latin-1 goes out and comes back as it is. */
    CHECK_OK(send_str(&r, "/caf\xe9", "x"));
    CHECK(POLL_UNTIL(r.ctx, atomic_load(&r.got.n) == 3, 3000));
    CHECK_STR(r.got.address, "/caf\xe9");
    CHECK_INT(malformed(&r), 0);
    CHECK_OK(rosco_ctx_free(r.ctx));
}

static void test_types(void)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_POLL);
    o.types = "if";
    struct rig r;
    if (!rig_open(&r, o))
        return;
    /* Sending: the builder's message is encoded with the context's options. */
    CHECK_ERR(send_str(&r, "/s", "no"), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "type tag 's' not allowed") != NULL);
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/i"));
    CHECK_OK(rosco_builder_add_i32(b, 5));
    CHECK_OK(rosco_send(r.ctx, r.out, b));
    CHECK(POLL_UNTIL(r.ctx, atomic_load(&r.got.n) == 1, 3000));
    CHECK_INT(r.got.first_int, 5);
    /* A bundle's messages meet the context's options too. */
    CHECK_OK(rosco_builder_bundle_begin(b, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(b, "/s"));
    CHECK_OK(rosco_builder_add_str(b, "no"));
    CHECK_OK(rosco_builder_bundle_end(b));
    CHECK_ERR(rosco_send(r.ctx, r.out, b), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "type tag 's' not allowed") != NULL);
    /* A stray bundle end on a lone message fails, and leaves it to the context's options. */
    CHECK_OK(rosco_builder_message(b, "/s"));
    CHECK_OK(rosco_builder_add_str(b, "no"));
    CHECK_ERR(rosco_builder_bundle_end(b), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "no bundle is open") != NULL);
    CHECK_ERR(rosco_send(r.ctx, r.out, b), ROSCO_ERR_ARG);
    check_poll_for(r.ctx, 50);
    CHECK_INT(atomic_load(&r.got.n), 1);
    rosco_builder_free(b);
    /* Receiving: "/s" ,s "no" from a peer without the restriction. */
    send_hex(&r, "2f7300002c7300006e6f0000");
    CHECK_INT(malformed(&r), 1);
    CHECK_INT(atomic_load(&r.got.n), 1);
    CHECK_OK(rosco_ctx_free(r.ctx));

    rosco_ctx ctx;
    o.types = "ifx";
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "unknown type tag x") != NULL);
    o.types = "\xff";
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    o.types = "";
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
}

static void test_checks(void)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_POLL);
    o.check_address = 1;
    o.require_typetags = 1;
    o.ascii_only = 1;
    struct rig r;
    if (!rig_open(&r, o))
        return;
    CHECK_ERR(send_str(&r, "/a b", "ok"), ROSCO_ERR_ARG);
    CHECK_ERR(send_str(&r, "/caf\xc3\xa9", "ok"), ROSCO_ERR_ARG);
    CHECK_ERR(send_str(&r, "/a", "caf\xc3\xa9"), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "not ASCII") != NULL);
    CHECK_OK(send_str(&r, "/a", "plain"));
    CHECK(POLL_UNTIL(r.ctx, atomic_load(&r.got.n) == 1, 3000));

    send_hex(&r, "2f6120622c000000");         /* "/a b": bad syntax */
    send_hex(&r, "2f610000");                 /* no type tags */
    send_hex(&r, "2f6100002c730000e9000000"); /* a Latin-1 string */
    send_hex(&r, "2f6100002c630000000000e9"); /* a char over 127 */
    CHECK_INT(malformed(&r), 4);
    CHECK_INT(atomic_load(&r.got.n), 1);
    CHECK_OK(rosco_ctx_free(r.ctx));
}

/* A context sending to a plain UDP socket, to see the bytes on the wire. */
static void test_compression(void)
{
    const int32_t codes[] = {7, 8};
    const char *addresses[] = {"/synth/1/freq", "/synth/1/gain"};
    rosco_ctx_options o = check_options(ROSCO_MODE_POLL);
    o.address_codes = codes;
    o.addresses = addresses;
    o.address_count = 2;
    struct rig r;
    if (!rig_open(&r, o))
        return;

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof sa;
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    struct timeval wait = {.tv_sec = 5};
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &salen) == 0);
    char url[64];
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    rosco_channel raw;
    CHECK_OK(rosco_channel_open(r.ctx, "raw", url, &raw));
    rosco_builder *b = rosco_builder_new();
    CHECK_OK(rosco_builder_message(b, "/synth/1/gain"));
    CHECK_OK(rosco_builder_add_i32(b, 440));
    CHECK_OK(rosco_send(r.ctx, raw, b));
    uint8_t got[64];
    ssize_t n = recv(fd, got, sizeof got, 0);
    const uint8_t want[] = {'/', 0, 0, 0, 0, 0, 0, 8, ',', 'i', 0, 0, 0, 0, 1, 0xb8};
    CHECK_INT(n, sizeof want);
    CHECK(n == sizeof want && memcmp(got, want, sizeof want) == 0);
    /* In a bundle the address is compressed as well. */
    rosco_builder *bundle = rosco_builder_new();
    CHECK_OK(rosco_builder_bundle_begin(bundle, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(bundle, "/synth/1/gain"));
    CHECK_OK(rosco_builder_add_i32(bundle, 440));
    CHECK_OK(rosco_builder_bundle_end(bundle));
    CHECK_OK(rosco_send(r.ctx, raw, bundle));
    n = recv(fd, got, sizeof got, 0);
    CHECK_INT(n, 16 + 4 + sizeof want);
    CHECK(n == 16 + 4 + (ssize_t)sizeof want && memcmp(got + 20, want, sizeof want) == 0);
    /* With compression, "/" alone announces a code: it cannot be an address. */
    CHECK_OK(rosco_builder_message(bundle, "/"));
    CHECK_ERR(rosco_send(r.ctx, raw, bundle), ROSCO_ERR_ARG);
    rosco_builder_free(bundle);
    close(fd);

    /* A compressed message from a peer is dispatched under its full address. */
    CHECK_OK(rosco_send(r.ctx, r.out, b));
    CHECK(POLL_UNTIL(r.ctx, atomic_load(&r.got.n) == 1, 3000));
    CHECK_STR(r.got.address, "/synth/1/gain");
    CHECK_INT(r.got.first_int, 440);
    send_hex(&r, "2f000000000000632c690000000001b8"); /* code 99: not in the table */
    CHECK_INT(malformed(&r), 1);
    rosco_builder_free(b);
    CHECK_OK(rosco_ctx_free(r.ctx));

    rosco_ctx ctx;
    const char *bad[] = {"/ok", "no-slash"};
    o.addresses = bad;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "no-slash") != NULL);
    o.addresses = NULL;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_NULL);
    const char *null_entry[] = {"/ok", NULL};
    o.addresses = null_entry;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_NULL);
    /* A repeated code or address would leave the two sides disagreeing. */
    const char *twice[] = {"/same", "/same"};
    o.addresses = twice;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    const int32_t same_code[] = {7, 7};
    o.addresses = addresses;
    o.address_codes = same_code;
    CHECK_ERR(rosco_ctx_new(&o, &ctx), ROSCO_ERR_ARG);
    CHECK(strstr(rosco_last_error(), "twice") != NULL);
}

/* Address patterns are limited in length (matching one costs up to its length times each
 * method's address length); literal addresses are not. */
static void send_address(struct rig *r, const char *address)
{
    uint8_t packet[4200] = {0};
    size_t len = strlen(address);
    memcpy(packet, address, len);
    len = (len / 4 + 1) * 4;
    memcpy(packet + len, ",\0\0\0", 4);
    rosco_channel_stats st;
    CHECK_OK(rosco_channel_stats_get(r->ctx, r->in, &st));
    uint64_t before = st.packets_in;
    CHECK_OK(rosco_send_raw(r->ctx, r->out, packet, len + 4));
    CHECK(POLL_UNTIL(r->ctx, (rosco_channel_stats_get(r->ctx, r->in, &st),
                              st.packets_in == before + 1),
                     3000));
    check_poll_for(r->ctx, 20);
}

static void test_pattern_length(void)
{
    char pattern[4096], literal[4096];
    strcpy(pattern, "/x/{");
    for (int i = 0; i < 600; i++)
        strcat(pattern, i ? ",ab" : "ab");
    strcat(pattern, "}");
    literal[0] = '/';
    memset(literal + 1, 'x', 3000);
    literal[3001] = '\0';
    rosco_method m;
    for (int limit = 0; limit < 2; limit++) {
        rosco_ctx_options o = check_options(ROSCO_MODE_POLL);
        if (limit == 0)
            o.max_pattern_len = 0; /* no limit */
        struct rig r;
        if (!rig_open(&r, o))
            return;
        struct got x = {0};
        CHECK_OK(rosco_method_add(r.ctx, "/x/ab", NULL, record, &x, NULL, &m));
        send_address(&r, pattern);
        send_address(&r, literal);
        CHECK_INT(malformed(&r), limit ? 1 : 0);
        CHECK_INT(atomic_load(&x.n), limit ? 0 : 1);
        CHECK_INT(atomic_load(&r.got.n), limit ? 1 : 2); /* the literal reaches the catch-all */
        CHECK_OK(rosco_ctx_free(r.ctx));
    }
}

/* A caller built against an older header passes a smaller struct: the new fields keep
 * their defaults whatever lies beyond it. */
static void test_older_struct(void)
{
    rosco_ctx_options o = check_options(ROSCO_MODE_POLL);
    o.size = (uint32_t)offsetof(rosco_ctx_options, types);
    o.types = "i";
    o.ascii_only = 1;
    struct rig r;
    if (!rig_open(&r, o))
        return;
    CHECK_OK(send_str(&r, "/s", "caf\xc3\xa9"));
    CHECK(POLL_UNTIL(r.ctx, atomic_load(&r.got.n) == 1, 3000));
    CHECK_OK(rosco_ctx_free(r.ctx));
}

int main(void)
{
    test_defaults();
    test_types();
    test_checks();
    test_compression();
    test_pattern_length();
    test_older_struct();
    return check_summary("codec_options_test");
}
