/* checksummed: OSC over UDP inside osc4py3's packet control envelope (`/packet ,sbsbsb`)
 * with a CRC-32 checksum, made on the way out and checked on the way in by packet hooks.
 * It speaks with an osc4py3 program whose out-of-band options are advanced_packet_control
 * and a CRC-32 checksum function named "crc32" (zlib.crc32, 4 bytes big-endian).
 *
 *   checksummed listen PORT     print each message whose checksum holds; refuse the rest
 *   checksummed send URL TEXT   send /note s TEXT, sealed, e.g. to osc.udp://localhost:9000
 *   checksummed --selftest      both over loopback, with an unsealed packet and one whose
 *                               checksum is wrong among them (both refused); exit 0
 *
 * What it shows: rosco_channel_set_hooks with an outgoing hook that replaces each packet
 * (rosco_packet_out_append) and an incoming one that checks, unwraps or drops; building
 * and reading messages without a context (a builder, rosco_decode).
 */
#include <rosco.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints what failed, with rosco's detail for this thread, and returns 0 on failure. */
static int ok(rosco_status st, const char *what) {
    if (st == ROSCO_OK) return 1;
    fprintf(stderr, "checksummed: %s: %s (%s)\n", what, rosco_status_str(st), rosco_last_error());
    return 0;
}

/* CRC-32 (the polynomial of zlib, Ethernet, PNG), bit by bit: short and fast enough. */
static uint32_t crc32(const uint8_t *data, size_t len) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* Builds in `b` the envelope carrying `data` and its checksum; 0 on failure. */
static int build_envelope(rosco_builder *b, const uint8_t *data, size_t len) {
    uint32_t sum = crc32(data, len);
    const uint8_t be[4] = {sum >> 24, sum >> 16, sum >> 8, sum};
    return b && ok(rosco_builder_message(b, "/packet"), "sealing") &&
           ok(rosco_builder_add_str(b, "crc32"), "sealing") &&
           ok(rosco_builder_add_blob(b, be, sizeof be), "sealing") &&
           ok(rosco_builder_add_str(b, ""), "sealing") && /* no signature */
           ok(rosco_builder_add_blob(b, NULL, 0), "sealing") &&
           ok(rosco_builder_add_str(b, ""), "sealing") && /* no encryption */
           ok(rosco_builder_add_blob(b, data, len), "sealing");
}

/* Outgoing hook: the packet goes out in an envelope carrying its checksum. */
static int32_t seal(void *user, rosco_channel ch, const uint8_t *data, size_t len,
                    rosco_packet_out *out) {
    (void)user, (void)ch;
    rosco_builder *b = rosco_builder_new();
    const uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    int built = build_envelope(b, data, len) &&
                ok(rosco_builder_bytes(b, &sealed, &sealed_len), "sealing") &&
                ok(rosco_packet_out_append(out, sealed, sealed_len), "sealing");
    rosco_builder_free(b);
    return built ? ROSCO_HOOK_REPLACE : ROSCO_HOOK_DROP;
}

/* What opening an envelope found. */
struct opened {
    rosco_packet_out *out;
    int32_t verdict;
};

/* Counts the packets the incoming hook refused (its `user`, when not NULL). */
static void refused(void *user, const char *why) {
    fprintf(stderr, "checksummed: refused: %s\n", why);
    if (user) ++*(int *)user;
}

static int32_t open_envelope(void *user, const rosco_msg *m) {
    struct opened *o = user;
    const char *protocol = NULL;
    const uint8_t *sum = NULL, *data = NULL;
    size_t sum_len = 0, len = 0;
    if (strcmp(rosco_msg_address(m), "/packet") != 0 ||
        strcmp(rosco_msg_typetags(m), "sbsbsb") != 0 ||
        rosco_msg_get_str(m, 0, &protocol) != ROSCO_OK || strcmp(protocol, "crc32") != 0 ||
        rosco_msg_get_blob(m, 1, &sum, &sum_len) != ROSCO_OK || sum_len != 4 ||
        rosco_msg_get_blob(m, 5, &data, &len) != ROSCO_OK)
        return 0;
    uint32_t want = (uint32_t)sum[0] << 24 | (uint32_t)sum[1] << 16 | (uint32_t)sum[2] << 8 | sum[3];
    if (crc32(data, len) != want) {
        o->verdict = -1; /* an envelope, but its checksum does not hold */
        return 0;
    }
    if (ok(rosco_packet_out_append(o->out, data, len), "opening")) o->verdict = ROSCO_HOOK_REPLACE;
    return 0;
}

/* Incoming hook: only the packet inside an envelope whose checksum holds goes on.
 * `user` is NULL or an int counting the packets refused. */
static int32_t check(void *user, rosco_channel ch, const uint8_t *data, size_t len,
                     rosco_packet_out *out) {
    (void)ch;
    struct opened o = {out, ROSCO_HOOK_DROP};
    /* An envelope is one message: rosco_decode would also walk into a bundle. */
    if (len > 0 && data[0] == '#') {
        refused(user, "a bundle, not an envelope");
        return ROSCO_HOOK_DROP;
    }
    if (rosco_decode(data, len, open_envelope, &o) != ROSCO_OK) {
        refused(user, rosco_last_error());
        return ROSCO_HOOK_DROP;
    }
    if (o.verdict != ROSCO_HOOK_REPLACE) {
        refused(user, o.verdict == -1 ? "checksum does not match" : "not a crc32 envelope");
        return ROSCO_HOOK_DROP;
    }
    return ROSCO_HOOK_REPLACE;
}

/* Prints /note messages; counts them in *user. */
static int32_t print_note(void *user, const rosco_msg *m) {
    const char *text = "?";
    (void)rosco_msg_get_str(m, 0, &text);
    printf("%s %s\n", rosco_msg_address(m), text);
    fflush(stdout);
    ++*(int *)user;
    return 0;
}

static int send_note(rosco_ctx ctx, rosco_channel ch, const char *text) {
    rosco_builder *b = rosco_builder_new();
    int sent = b && ok(rosco_builder_message(b, "/note"), "building") &&
               ok(rosco_builder_add_str(b, text), "building") && ok(rosco_send(ctx, ch, b), "rosco_send");
    rosco_builder_free(b);
    return sent;
}

/* A poll-mode context with a /note method counting into *notes; freed if that fails. */
static int start(rosco_ctx *ctx, int *notes) {
    rosco_method m;
    if (!ok(rosco_ctx_new(NULL, ctx), "rosco_ctx_new")) return 0;
    if (ok(rosco_method_add(*ctx, "/note", "s", print_note, notes, NULL, &m), "rosco_method_add"))
        return 1;
    rosco_ctx_free(*ctx);
    return 0;
}

/* Sends, unhooked, an envelope around /note "forged" whose checksum is one off. */
static int send_forged(rosco_ctx ctx, rosco_channel ch) {
    rosco_builder *note = rosco_builder_new(), *env = rosco_builder_new();
    const uint8_t *inner = NULL, *sealed = NULL;
    size_t inner_len = 0, sealed_len = 0;
    int sent = note && env && ok(rosco_builder_message(note, "/note"), "building") &&
               ok(rosco_builder_add_str(note, "forged"), "building") &&
               ok(rosco_builder_bytes(note, &inner, &inner_len), "building") &&
               build_envelope(env, inner, inner_len) &&
               ok(rosco_builder_bytes(env, &sealed, &sealed_len), "building");
    if (sent) {
        uint8_t copy[256];
        sent = sealed_len <= sizeof copy;
        if (sent) {
            memcpy(copy, sealed, sealed_len);
            copy[31] ^= 1; /* the checksum's last byte: after /packet, ,sbsbsb, "crc32" and a size */
            sent = ok(rosco_send_raw(ctx, ch, copy, sealed_len), "rosco_send_raw");
        }
    }
    rosco_builder_free(note);
    rosco_builder_free(env);
    return sent;
}

static int selftest(void) {
    rosco_ctx ctx;
    rosco_channel in, out, plain;
    int notes = 0, refusals = 0;
    uint16_t port = 0;
    char url[64];
    /* The CRC-32 check value, as zlib.crc32 gives it. */
    if (crc32((const uint8_t *)"123456789", 9) != 0xCBF43926u) {
        fprintf(stderr, "checksummed: selftest: crc32 is wrong\n");
        return 1;
    }
    if (!start(&ctx, &notes)) return 1;
    int good = ok(rosco_channel_open(ctx, "in", "osc.udp://:0?bind=127.0.0.1", &in), "open") &&
               ok(rosco_channel_port(ctx, in, &port), "port") &&
               ok(rosco_channel_set_hooks(ctx, in, check, NULL, &refusals, NULL), "hooks");
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", port);
    good = good && ok(rosco_channel_open(ctx, "out", url, &out), "open") &&
           ok(rosco_channel_set_hooks(ctx, out, NULL, seal, NULL, NULL), "hooks") &&
           ok(rosco_channel_open(ctx, "plain", url, &plain), "open");
    /* Sealed, unsealed (refused), a wrong checksum (refused), sealed again. */
    good = good && send_note(ctx, out, "first") && send_note(ctx, plain, "unsealed") &&
           send_forged(ctx, plain) && send_note(ctx, out, "second");
    for (int i = 0; good && i < 100 && (notes < 2 || refusals < 2); i++)
        (void)rosco_poll(ctx, 10, NULL);
    rosco_ctx_free(ctx);
    if (!good || notes != 2 || refusals != 2) {
        fprintf(stderr, "checksummed: selftest: %d notes and %d refused, expected 2 and 2\n",
                notes, refusals);
        return 1;
    }
    printf("checksummed: selftest passed\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--selftest") == 0) return selftest();
    rosco_ctx ctx;
    rosco_channel ch;
    int notes = 0;
    char url[64];
    if (argc == 3 && strcmp(argv[1], "listen") == 0) {
        snprintf(url, sizeof url, "osc.udp://:%s", argv[2]);
        if (!start(&ctx, &notes)) return 1;
        if (!ok(rosco_channel_open(ctx, "in", url, &ch), "open") ||
            !ok(rosco_channel_set_hooks(ctx, ch, check, NULL, NULL, NULL), "hooks")) {
            rosco_ctx_free(ctx);
            return 1;
        }
        for (;;) (void)rosco_poll(ctx, 1000, NULL);
    }
    if (argc == 4 && strcmp(argv[1], "send") == 0) {
        if (!start(&ctx, &notes)) return 1;
        int sent = ok(rosco_channel_open(ctx, "out", argv[2], &ch), "open") &&
                   ok(rosco_channel_set_hooks(ctx, ch, NULL, seal, NULL, NULL), "hooks") &&
                   send_note(ctx, ch, argv[3]);
        rosco_ctx_free(ctx);
        return sent ? 0 : 1;
    }
    fprintf(stderr, "usage: checksummed listen PORT | send URL TEXT | --selftest\n");
    return 2;
}
