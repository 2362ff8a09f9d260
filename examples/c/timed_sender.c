/* timed_sender: sends an OSC bundle whose timetag lies DELAY_MS in the future, so that a
 * receiver holding bundles until due (rosco and liblo both do) delivers it then.
 *
 *   timed_sender URL DELAY_MS  send the bundle to URL, e.g. osc.udp://localhost:9000
 *   timed_sender --selftest    send one to a listener of its own over loopback and check
 *                              that it is delivered no earlier than its timetag, exit 0
 *
 * Try it with the echo server: `echo_server 9000` in one terminal, then
 *   timed_sender osc.udp://localhost:9000 1500
 * and the server prints the message one and a half seconds later.
 *
 * What it shows: timetags (NTP 32.32 fixed point), building a bundle (a message a line),
 * sending on a channel opened from a URL, and how a receiver sees a bundle's time.
 */
#include <rosco.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints what failed, with rosco's detail for this thread, and returns 0 on failure. */
static int ok(rosco_status st, const char *what) {
    if (st == ROSCO_OK) return 1;
    fprintf(stderr, "timed_sender: %s: %s (%s)\n", what, rosco_status_str(st), rosco_last_error());
    return 0;
}

/* Timetags count 2^-32 s since 1900 and wrap in 2036; the difference of two nearby ones,
 * taken modulo 2^64 and read as signed, is right across the wrap. In milliseconds: */
static double timetag_diff_ms(uint64_t a, uint64_t b) {
    return (double)(int64_t)(a - b) / 4294967296.0 * 1000.0;
}

/* Builds a bundle due at `due` holding two messages, each in one call (types as liblo's
 * lo_send takes them: "st" is a string and a timetag). */
static int build_bundle(rosco_builder *b, uint64_t due) {
    return ok(rosco_builder_bundle_begin(b, due), "rosco_builder_bundle_begin") &&
           ok(rosco_builder_message_args(b, "/timed/hello", "st", "sent at", rosco_timetag_now()),
              "building") &&
           ok(rosco_builder_message_args(b, "/timed/count", "i", 2), "building") &&
           ok(rosco_builder_bundle_end(b), "rosco_builder_bundle_end");
}

/* Sends a bundle due `delay_ms` from now on channel `ch`, and returns its timetag (0 on
 * failure). */
static uint64_t send_timed(rosco_ctx ctx, rosco_channel ch, long delay_ms) {
    uint64_t due = rosco_timetag_add(rosco_timetag_now(), (double)delay_ms / 1000.0);
    rosco_builder *b = rosco_builder_new();
    int sent = b && build_bundle(b, due) && ok(rosco_send(ctx, ch, b), "rosco_send") &&
               /* Returns at once for UDP; for TCP it waits until the bundle is written. */
               ok(rosco_channel_flush(ctx, ch, 2000), "rosco_channel_flush");
    rosco_builder_free(b);
    return sent ? due : 0;
}

/* --selftest: what the receiving method saw. */
struct arrivals {
    int count;
    int early;      /* messages delivered before their bundle's time */
    uint64_t due;   /* the bundle time they reported */
};

static int32_t on_message(void *user, const rosco_msg *m) {
    struct arrivals *a = user;
    uint64_t now = rosco_timetag_now();
    uint64_t due = rosco_msg_bundle_time(m);
    double late = timetag_diff_ms(now, due);
    printf("%s delivered %.3f ms after its bundle time\n", rosco_msg_address(m), late);
    if (late < 0) a->early++;
    a->due = due;
    a->count++;
    return 0;
}

static int selftest(rosco_ctx ctx) {
    const long delay_ms = 200;
    struct arrivals seen = {0};
    rosco_channel listener, sender;
    rosco_method method;
    uint16_t port;
    char url[64];

    /* A listener on loopback (any free port) and a channel sending to it. The context's
     * default options hold bundles with a future timetag until they are due. */
    if (!ok(rosco_channel_open(ctx, "in", "osc.udp://:0?bind=127.0.0.1", &listener), "opening the listener") ||
        !ok(rosco_channel_port(ctx, listener, &port), "rosco_channel_port") ||
        !ok(rosco_method_add(ctx, "/timed/*", NULL, on_message, &seen, NULL, &method), "rosco_method_add")) {
        return 0;
    }
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", (unsigned)port);
    if (!ok(rosco_channel_open(ctx, "out", url, &sender), "opening the sender")) return 0;

    uint64_t due = send_timed(ctx, sender, delay_ms);
    if (due == 0) return 0;

    /* Poll until both messages are in (or 5 s pass). */
    uint64_t give_up = rosco_timetag_add(due, 5.0);
    while (seen.count < 2 && timetag_diff_ms(rosco_timetag_now(), give_up) < 0) {
        if (!ok(rosco_poll(ctx, 100, NULL), "rosco_poll")) return 0;
    }

    int passed = seen.count == 2 && seen.early == 0 && seen.due == due;
    if (seen.count != 2) fprintf(stderr, "timed_sender: %d of 2 messages arrived\n", seen.count);
    if (seen.early) fprintf(stderr, "timed_sender: %d messages arrived early\n", seen.early);
    if (seen.count && seen.due != due) fprintf(stderr, "timed_sender: wrong bundle time\n");
    printf("selftest %s\n", passed ? "passed" : "FAILED");
    return passed;
}

int main(int argc, char **argv) {
    int self = argc == 2 && strcmp(argv[1], "--selftest") == 0;
    char *end = NULL;
    long delay_ms = argc == 3 ? strtol(argv[2], &end, 10) : -1;
    if (!self && (argc != 3 || delay_ms < 0 || end == argv[2] || *end != '\0')) {
        fprintf(stderr, "usage: %s URL DELAY_MS | --selftest\n", argv[0]);
        return 2;
    }

    rosco_ctx ctx;
    if (!ok(rosco_ctx_new(NULL, &ctx), "rosco_ctx_new")) return 1;

    int status = 1;
    if (self) {
        status = selftest(ctx) ? 0 : 1;
    } else {
        rosco_channel ch;
        uint64_t due;
        if (ok(rosco_channel_open(ctx, "out", argv[1], &ch), "opening the channel") &&
            (due = send_timed(ctx, ch, delay_ms)) != 0) {
            printf("sent a bundle to %s, due at %.3f (Unix time)\n", argv[1],
                   rosco_timetag_to_unix(due));
            status = 0;
        }
    }

    /* Freeing the context closes its channels and removes its methods. */
    rosco_ctx_free(ctx);
    return status;
}
