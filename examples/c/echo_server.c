/* echo_server: prints every OSC message it receives and sends it back to its sender.
 *
 *   echo_server PORT        listen on UDP PORT (0: any free port) until Ctrl-C
 *   echo_server --selftest  send one message to itself over loopback, check that the
 *                           echo comes back byte for byte, exit 0
 *
 * Try it with liblo's tools:
 *   echo_server 9000 &
 *   oscsend osc.udp://localhost:9000 /hello si world 42
 *
 * What it shows: a context in poll mode, a listening UDP channel, a catch-all method,
 * the message accessors (one per type tag), and rosco_reply with a builder.
 */
#include <rosco.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints what failed, with rosco's detail for this thread, and returns 0 on failure. */
static int ok(rosco_status st, const char *what) {
    if (st == ROSCO_OK) return 1;
    fprintf(stderr, "echo_server: %s: %s (%s)\n", what, rosco_status_str(st), rosco_last_error());
    return 0;
}

/* Prints "/address ,tags arg arg ..." for a received message. */
static void print_message(const rosco_msg *m) {
    const char *tags = rosco_msg_typetags(m);
    printf("%s ,%s", rosco_msg_address(m), tags);
    for (uint32_t i = 0; i < rosco_msg_argc(m); i++) {
        int32_t i32; int64_t i64; float f; double d; const char *s;
        const uint8_t *data; size_t len; uint64_t t; uint32_t u; uint8_t c;
        switch (tags[i]) {
        case 'i': rosco_msg_get_i32(m, i, &i32); printf(" %" PRId32, i32); break;
        case 'h': rosco_msg_get_i64(m, i, &i64); printf(" %" PRId64, i64); break;
        case 'f': rosco_msg_get_f32(m, i, &f); printf(" %g", f); break;
        case 'd': rosco_msg_get_f64(m, i, &d); printf(" %g", d); break;
        case 's': case 'S': rosco_msg_get_str(m, i, &s); printf(" \"%s\"", s); break;
        case 'b': rosco_msg_get_blob(m, i, &data, &len); printf(" [%zu byte blob]", len); break;
        case 't': rosco_msg_get_timetag(m, i, &t); printf(" %#" PRIx64, t); break;
        case 'c': rosco_msg_get_char(m, i, &c); printf(" '%c'", c); break;
        case 'm': rosco_msg_get_midi(m, i, &u); printf(" MIDI %08" PRIx32, u); break;
        case 'r': rosco_msg_get_rgba(m, i, &u); printf(" #%08" PRIx32, u); break;
        case 'T': printf(" true"); break;
        case 'F': printf(" false"); break;
        case 'N': printf(" nil"); break;
        case 'I': printf(" impulse"); break;
        case '[': printf(" ["); break;
        case ']': printf(" ]"); break;
        default: printf(" ?%c", tags[i]); break;
        }
    }
    printf("\n");
}

/* Rebuilds message `m` in builder `b`: the same address and arguments. There is no
 * accessor for "the arguments as a whole": each type tag has its getter and its adder. */
static rosco_status copy_message(const rosco_msg *m, rosco_builder *b) {
/* Reads argument i with `get` into `var`, then adds it to the builder with `add`. */
#define COPY(get, add, var) \
    if ((st = get(m, i, &var)) == ROSCO_OK) st = add(b, var)

    rosco_status st = rosco_builder_message(b, rosco_msg_address(m));
    const char *tags = rosco_msg_typetags(m);
    for (uint32_t i = 0; st == ROSCO_OK && i < rosco_msg_argc(m); i++) {
        int32_t i32; int64_t i64; float f; double d; const char *s;
        const uint8_t *data; size_t len; uint64_t t; uint32_t u; uint8_t c;
        switch (tags[i]) {
        case 'i': COPY(rosco_msg_get_i32, rosco_builder_add_i32, i32); break;
        case 'h': COPY(rosco_msg_get_i64, rosco_builder_add_i64, i64); break;
        case 'f': COPY(rosco_msg_get_f32, rosco_builder_add_f32, f); break;
        case 'd': COPY(rosco_msg_get_f64, rosco_builder_add_f64, d); break;
        case 's': COPY(rosco_msg_get_str, rosco_builder_add_str, s); break;
        case 'S': COPY(rosco_msg_get_str, rosco_builder_add_symbol, s); break;
        case 't': COPY(rosco_msg_get_timetag, rosco_builder_add_timetag, t); break;
        case 'c': COPY(rosco_msg_get_char, rosco_builder_add_char, c); break;
        case 'm': COPY(rosco_msg_get_midi, rosco_builder_add_midi, u); break;
        case 'r': COPY(rosco_msg_get_rgba, rosco_builder_add_rgba, u); break;
        case 'b':
            if ((st = rosco_msg_get_blob(m, i, &data, &len)) == ROSCO_OK) {
                st = rosco_builder_add_blob(b, data, len);
            }
            break;
        case 'T': st = rosco_builder_add_bool(b, 1); break;
        case 'F': st = rosco_builder_add_bool(b, 0); break;
        case 'N': st = rosco_builder_add_nil(b); break;
        case 'I': st = rosco_builder_add_impulse(b); break;
        case '[': st = rosco_builder_array_begin(b); break;
        case ']': st = rosco_builder_array_end(b); break;
        default: st = ROSCO_ERR_TYPE; break; /* a type this example does not know */
        }
    }
    return st;
#undef COPY
}

/* What the method callback needs; passed as its `user` pointer. */
struct server {
    rosco_ctx ctx;
    rosco_channel listener; /* messages arriving here are echoed */
    rosco_builder *reply;   /* reused for every echo (callbacks run one at a time) */
    /* --selftest only: the echo we are waiting for. */
    const uint8_t *expected;
    size_t expected_len;
    int echoes;
};

/* The catch-all method: echo what arrives on the listener. In --selftest mode, messages
 * arriving anywhere else are the echoes coming back to our own sending channel. */
static int32_t on_message(void *user, const rosco_msg *m) {
    struct server *srv = user;
    char from[64] = "?";
    rosco_channel ch;
    rosco_msg_source(m, from, sizeof from);
    rosco_msg_channel(m, &ch);

    if (ch.id != srv->listener.id) {
        const uint8_t *data;
        size_t len;
        printf("echo from %s: ", from);
        print_message(m);
        if (ok(rosco_msg_bytes(m, &data, &len), "rosco_msg_bytes") && len == srv->expected_len &&
            memcmp(data, srv->expected, len) == 0) {
            srv->echoes++;
        } else {
            fprintf(stderr, "echo_server: the echo differs from what was sent\n");
        }
        return 0;
    }

    printf("from %s: ", from);
    print_message(m);
    fflush(stdout);
    if (ok(copy_message(m, srv->reply), "copying the message")) {
        ok(rosco_reply(srv->ctx, m, srv->reply), "rosco_reply");
    }
    return 0; /* handled */
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

/* Sends one message of many types from a second channel to the listener and waits (up to
 * 5 s) for its echo. */
static int selftest(struct server *srv, uint16_t port) {
    char url[64];
    rosco_channel client;
    rosco_builder *b = rosco_builder_new();
    const uint8_t blob[] = {1, 2, 3, 4, 5};
    int passed = 0;

    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", (unsigned)port);
    if (b && ok(rosco_channel_open(srv->ctx, "client", url, &client), "opening the client") &&
        ok(rosco_builder_message(b, "/echo/selftest"), "building") &&
        ok(rosco_builder_add_str(b, "hello"), "building") &&
        ok(rosco_builder_add_i32(b, 42), "building") &&
        ok(rosco_builder_add_f64(b, 0.25), "building") &&
        ok(rosco_builder_add_blob(b, blob, sizeof blob), "building") &&
        ok(rosco_builder_array_begin(b), "building") &&
        ok(rosco_builder_add_bool(b, 1), "building") &&
        ok(rosco_builder_add_symbol(b, "sym"), "building") &&
        ok(rosco_builder_array_end(b), "building") &&
        ok(rosco_builder_add_midi(b, 0x00904060), "building") &&
        ok(rosco_builder_bytes(b, &srv->expected, &srv->expected_len), "building") &&
        ok(rosco_send(srv->ctx, client, b), "rosco_send")) {
        /* Poll until the echo is back: the first turn receives and echoes the message,
         * a later one receives the echo. */
        uint64_t give_up = rosco_timetag_add(rosco_timetag_now(), 5.0);
        while (srv->echoes == 0 && rosco_timetag_now() < give_up) {
            if (!ok(rosco_poll(srv->ctx, 100, NULL), "rosco_poll")) break;
        }
        passed = srv->echoes == 1;
    }
    rosco_builder_free(b);
    printf("selftest %s\n", passed ? "passed" : "FAILED");
    return passed;
}

int main(int argc, char **argv) {
    int self = argc == 2 && strcmp(argv[1], "--selftest") == 0;
    char *end = NULL;
    long port = argc == 2 && !self ? strtol(argv[1], &end, 10) : -1;
    if (!self && (port < 0 || port > 65535 || end == argv[1] || *end != '\0')) {
        fprintf(stderr, "usage: %s PORT | --selftest\n", argv[0]);
        return 2;
    }

    struct server srv = {0};
    char url[64];
    uint16_t bound = 0;
    int status = 1;

    /* A context with default options: poll mode, so callbacks run inside rosco_poll on
     * this thread. */
    if (!ok(rosco_ctx_new(NULL, &srv.ctx), "rosco_ctx_new")) return 1;
    srv.reply = rosco_builder_new();

    /* A listening channel: no host in the URL. The self-test stays on loopback. */
    if (self) {
        snprintf(url, sizeof url, "osc.udp://:0?bind=127.0.0.1");
    } else {
        snprintf(url, sizeof url, "osc.udp://:%ld", port);
    }
    rosco_method method;
    if (srv.reply && ok(rosco_channel_open(srv.ctx, "echo", url, &srv.listener), "opening the listener") &&
        ok(rosco_channel_port(srv.ctx, srv.listener, &bound), "rosco_channel_port") &&
        /* NULL pattern and type spec: every message, whatever its arguments. */
        ok(rosco_method_add(srv.ctx, NULL, NULL, on_message, &srv, NULL, &method), "rosco_method_add")) {
        if (self) {
            status = selftest(&srv, bound) ? 0 : 1;
        } else {
            printf("echoing on UDP port %u (Ctrl-C to stop)\n", (unsigned)bound);
            fflush(stdout);
            signal(SIGINT, on_signal);
            signal(SIGTERM, on_signal);
            /* Short timeouts so a signal is noticed quickly. */
            while (!stop && ok(rosco_poll(srv.ctx, 200, NULL), "rosco_poll")) {
            }
            status = stop ? 0 : 1;
        }
    }

    /* Freeing the context closes its channels and removes its methods. */
    rosco_ctx_free(srv.ctx);
    rosco_builder_free(srv.reply);
    return status;
}
