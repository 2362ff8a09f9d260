/* o2lite_client: a small O2lite client. It joins an O2 ensemble through the ensemble's
 * host, offers the service "client", prints every message sent to that service and the
 * ensemble's global time once its clock is synchronised, and sends /server/hello to the
 * host's "server" service every second (until Ctrl-C).
 *
 *   o2lite_client ENSEMBLE HOST:PORT  connect to the host at HOST:PORT (its TCP port;
 *                                     HOST:PORT:UDP_PORT also names its UDP port, which
 *                                     best-effort messages then use)
 *   o2lite_client ENSEMBLE            find the host by DNS-SD discovery on the local network
 *   o2lite_client --selftest          run a host of its own in this process (not advertised
 *                                     on the network), connect to it over loopback, wait for
 *                                     clock sync, exchange one message each way, exit 0
 *
 * Try it with rosco's command-line host, which prints the messages its services receive:
 *   rosco o2lite host --service server --no-mdns myens    (note the TCP port it prints)
 *   o2lite_client myens 127.0.0.1:PORT
 * and send to the client from another client: rosco o2lite client --host 127.0.0.1:PORT
 * myens /client/note i 60
 *
 * What it shows: rosco_o2lite_connect, offering a service, O2 events (connection, clock
 * sync), receiving O2 messages with ordinary methods, rosco_o2lite_send with a timestamp
 * and a transport, and global time (rosco_o2lite_time).
 */
#include <rosco.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints what failed, with rosco's detail for this thread, and returns 0 on failure. */
static int ok(rosco_status st, const char *what) {
    if (st == ROSCO_OK) return 1;
    fprintf(stderr, "o2lite_client: %s: %s (%s)\n", what, rosco_status_str(st), rosco_last_error());
    return 0;
}

static int starts_with(const char *s, const char *prefix) {
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Milliseconds from timetag b to timetag a (NTP 32.32 fixed point, wrap-safe). */
static double timetag_diff_ms(uint64_t a, uint64_t b) {
    return (double)(int64_t)(a - b) / 4294967296.0 * 1000.0;
}

/* ---------------------------------------------------------------------------------------
 * The client. The context runs in poll mode: its events and methods run inside
 * rosco_poll() on the main thread, so this state needs no locking. */

struct client {
    rosco_ctx ctx;
    rosco_channel ch;     /* the O2lite channel */
    rosco_builder *b;     /* reused for every message sent */
    int synchronised;     /* the clock is synchronised (the session is up) */
    int received;         /* messages received */
    int sent;             /* /server/hello messages sent */
};

/* Prints the arguments of a received message after its address and type tags. */
static void print_args(const rosco_msg *m) {
    const char *tags = rosco_msg_typetags(m);
    for (uint32_t i = 0; tags[i] != '\0'; ++i) {
        int32_t iv;
        int64_t hv;
        float fv;
        double dv;
        const char *sv;
        const uint8_t *data;
        size_t len;
        int32_t bv;
        switch (tags[i]) {
        case 'i': if (rosco_msg_get_i32(m, i, &iv) == ROSCO_OK) printf(" %d", (int)iv); break;
        case 'h': if (rosco_msg_get_i64(m, i, &hv) == ROSCO_OK) printf(" %lld", (long long)hv); break;
        case 'f': if (rosco_msg_get_f32(m, i, &fv) == ROSCO_OK) printf(" %g", (double)fv); break;
        case 'd': if (rosco_msg_get_f64(m, i, &dv) == ROSCO_OK) printf(" %g", dv); break;
        case 's':
        case 'S': if (rosco_msg_get_str(m, i, &sv) == ROSCO_OK) printf(" \"%s\"", sv); break;
        case 'b': if (rosco_msg_get_blob(m, i, &data, &len) == ROSCO_OK) printf(" [%zu bytes]", len); break;
        /* An O2 time argument: global seconds. */
        case 't': if (rosco_msg_get_seconds(m, i, &dv) == ROSCO_OK) printf(" %.6f", dv); break;
        case 'T':
        case 'F':
        case 'B': /* O2's boolean */
            if (rosco_msg_get_bool(m, i, &bv) == ROSCO_OK) printf(" %s", bv ? "true" : "false");
            break;
        default: printf(" %c", tags[i]); break; /* N I [ ] and the rest: the tag says it */
        }
    }
}

/* Every message to the service "client" arrives here, its O2 address "!client/..." or
 * "/client/..." shown as "/client/...". */
static int32_t on_message(void *user, const rosco_msg *m) {
    struct client *c = user;
    double now = -1;
    rosco_o2lite_time(c->ctx, c->ch, &now);
    printf("received %s ,%s", rosco_msg_address(m), rosco_msg_typetags(m));
    print_args(m);
    printf("   (global time %.3f)\n", now);
    fflush(stdout);
    c->received++;
    return 0; /* handled */
}

/* The session's news: connection, clock sync, a lost host (then it reconnects). */
static void on_event(void *user, const rosco_event *e) {
    struct client *c = user;
    switch (e->kind) {
    case ROSCO_EVENT_O2: /* reason: "Connected { bridge_id: 1 }", "Synced { offset: .. }", ... */
        printf("o2: %s\n", e->reason);
        if (starts_with(e->reason, "Synced")) {
            double now = -1;
            rosco_o2lite_time(c->ctx, c->ch, &now);
            printf("clock synchronised: the ensemble's global time is %.3f s\n", now);
            c->synchronised = 1;
        }
        break;
    case ROSCO_EVENT_CONNECTED:
        printf("connected to the host %s\n", e->peer ? e->peer : "");
        break;
    case ROSCO_EVENT_DISCONNECTED:
        printf("disconnected: %s\n", e->reason ? e->reason : "");
        c->synchronised = 0; /* it synchronises again after reconnecting */
        break;
    case ROSCO_EVENT_RECONNECTING:
        printf("reconnecting in %u ms (attempt %u)\n", (unsigned)e->delay_ms, (unsigned)e->attempt);
        break;
    default:
        break;
    }
    fflush(stdout);
}

/* Connects to the host of `ensemble` at `host_port` (NULL: discovery) and offers "client". */
static int client_start(struct client *c, const char *ensemble, const char *host_port) {
    memset(c, 0, sizeof *c);
    rosco_method m;
    if (!ok(rosco_ctx_new(NULL, &c->ctx), "rosco_ctx_new")) return 0;
    c->b = rosco_builder_new();
    return c->b != NULL &&
           ok(rosco_ctx_set_event_callback(c->ctx, on_event, c), "rosco_ctx_set_event_callback") &&
           /* A catch-all: only O2 messages to our services reach this context. */
           ok(rosco_method_add(c->ctx, NULL, NULL, on_message, c, NULL, &m), "rosco_method_add") &&
           /* Returns at once: connecting, clock sync and reconnecting go on in rosco_poll. */
           ok(rosco_o2lite_connect(c->ctx, ensemble, host_port, &c->ch), "rosco_o2lite_connect") &&
           /* Offered now, and again on every reconnection. */
           ok(rosco_o2lite_service_add(c->ctx, c->ch, "client"), "rosco_o2lite_service_add");
}

static void client_stop(struct client *c) {
    /* Freeing the context closes the channel (the host drops our service). */
    rosco_ctx_free(c->ctx);
    rosco_builder_free(c->b);
}

/* Sends /server/hello (a count, a text and our global time) now, by TCP. Returns 0 on
 * failure; not being connected (yet) is reported but normal. */
static int send_hello(struct client *c) {
    double now = -1;
    rosco_o2lite_time(c->ctx, c->ch, &now);
    if (!ok(rosco_builder_message(c->b, "/server/hello"), "building") ||
        !ok(rosco_builder_add_i32(c->b, c->sent + 1), "building") ||
        !ok(rosco_builder_add_str(c->b, "hello from the C client"), "building") ||
        !ok(rosco_builder_add_f64(c->b, now), "building"))
        return 0;
    /* Timestamp 0: deliver at once. A future global time (now + 0.5, say) would make the
     * host hold the message until then. reliable = 1: TCP; 0: UDP if the host's UDP port is
     * known. */
    rosco_status st = rosco_o2lite_send(c->ctx, c->ch, c->b, 0.0, 1);
    if (st == ROSCO_ERR_CLOSED) {
        printf("not connected to a host: /server/hello not sent\n");
        return 1;
    }
    if (!ok(st, "rosco_o2lite_send")) return 0;
    c->sent++;
    printf("sent /server/hello %d\n", c->sent);
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Normal run: until Ctrl-C. */

static volatile sig_atomic_t stop;
static void on_sigint(int sig) {
    (void)sig;
    stop = 1;
}

static int run(const char *ensemble, const char *host_port) {
    struct client c;
    int passed = client_start(&c, ensemble, host_port);
    if (passed) {
        printf("joining ensemble '%s' %s%s; Ctrl-C to stop\n", ensemble,
               host_port ? "at " : "(looking for its host by DNS-SD)", host_port ? host_port : "");
        signal(SIGINT, on_sigint);
        uint64_t next = rosco_timetag_now();
        while (!stop && passed) {
            /* Runs the I/O, the events and the methods for up to 100 ms. */
            passed = ok(rosco_poll(c.ctx, 100, NULL), "rosco_poll");
            if (passed && timetag_diff_ms(rosco_timetag_now(), next) >= 0) {
                passed = send_hello(&c);
                next = rosco_timetag_add(next, 1.0);
            }
        }
    }
    client_stop(&c);
    return passed;
}

/* ---------------------------------------------------------------------------------------
 * --selftest: a host in this process, on a context of its own in threaded mode (its
 * methods and events run on its I/O thread, as if it were another program). */

struct host {
    rosco_ctx ctx;
    rosco_channel ch;
    atomic_int hellos; /* /server/hello messages received (written on the host's thread) */
};

/* The host's service "server" answers /server/hello with /client/welcome. */
static int32_t host_on_hello(void *user, const rosco_msg *m) {
    struct host *h = user;
    printf("host: received %s ,%s", rosco_msg_address(m), rosco_msg_typetags(m));
    print_args(m);
    printf("\n");
    fflush(stdout);
    rosco_builder *b = rosco_builder_new();
    double now = -1;
    rosco_o2lite_time(h->ctx, h->ch, &now); /* a host's clock is the global time */
    if (b && ok(rosco_builder_message(b, "/client/welcome"), "building") &&
        ok(rosco_builder_add_str(b, "welcome from the host"), "building") &&
        ok(rosco_builder_add_f64(b, now), "building")) {
        ok(rosco_o2lite_send(h->ctx, h->ch, b, 0.0, 1), "host: rosco_o2lite_send");
    }
    rosco_builder_free(b);
    atomic_fetch_add(&h->hellos, 1);
    return 0;
}

static void host_on_event(void *user, const rosco_event *e) {
    (void)user;
    if (e->kind == ROSCO_EVENT_O2) {
        printf("host: %s\n", e->reason); /* ClientJoined, ServiceAdded, ClientSynced, ... */
        fflush(stdout);
    }
}

/* Polls the client for up to `seconds` until done(arg) is true; returns whether it is. */
static int wait_for(struct client *c, int (*done)(void *), void *arg, double seconds) {
    uint64_t give_up = rosco_timetag_add(rosco_timetag_now(), seconds);
    while (!done(arg)) {
        if (timetag_diff_ms(rosco_timetag_now(), give_up) >= 0) return 0;
        if (!ok(rosco_poll(c->ctx, 10, NULL), "rosco_poll")) return 0;
    }
    return 1;
}

static int is_synchronised(void *c) { return ((struct client *)c)->synchronised; }
static int has_received(void *c) { return ((struct client *)c)->received > 0; }
static int host_has_hello(void *h) { return atomic_load(&((struct host *)h)->hellos) > 0; }

static int selftest(void) {
    struct host h;
    struct client c;
    rosco_ctx_options opts;
    rosco_method m;
    uint16_t port = 0, udp_port = 0;
    char host_port[40];
    int passed = 0;

    memset(&h, 0, sizeof h);
    atomic_init(&h.hellos, 0);
    rosco_ctx_options_init(&opts);
    opts.mode = ROSCO_MODE_THREADED;
    if (!ok(rosco_ctx_new(&opts, &h.ctx), "rosco_ctx_new (host)")) return 0;
    /* mdns=0: the host is not advertised on the network; the client is told where it is. */
    if (ok(rosco_ctx_set_event_callback(h.ctx, host_on_event, &h), "rosco_ctx_set_event_callback") &&
        ok(rosco_channel_open(h.ctx, "host", "o2lite-host://rosco-selftest?mdns=0", &h.ch), "opening the host") &&
        ok(rosco_channel_port(h.ctx, h.ch, &port), "rosco_channel_port") &&
        ok(rosco_o2lite_udp_port(h.ctx, h.ch, &udp_port), "rosco_o2lite_udp_port") &&
        ok(rosco_o2lite_service_add(h.ctx, h.ch, "server"), "rosco_o2lite_service_add (host)") &&
        ok(rosco_method_add(h.ctx, "/server/hello", NULL, host_on_hello, &h, NULL, &m), "rosco_method_add")) {
        /* Both of the host's ports: the client's clock pings and unreliable sends go by UDP. */
        snprintf(host_port, sizeof host_port, "127.0.0.1:%u:%u", (unsigned)port,
                 (unsigned)udp_port);
        printf("host for ensemble 'rosco-selftest' on TCP port %u, UDP port %u\n",
               (unsigned)port, (unsigned)udp_port);

        if (client_start(&c, "rosco-selftest", host_port)) {
            /* Clock sync takes about half a second; then one message each way. */
            if (!wait_for(&c, is_synchronised, &c, 10.0))
                fprintf(stderr, "o2lite_client: the clock did not synchronise\n");
            else if (!send_hello(&c) || c.sent != 1)
                fprintf(stderr, "o2lite_client: /server/hello was not sent\n");
            else if (!wait_for(&c, host_has_hello, &h, 5.0))
                fprintf(stderr, "o2lite_client: the host did not receive /server/hello\n");
            else if (!wait_for(&c, has_received, &c, 5.0))
                fprintf(stderr, "o2lite_client: no answer from the host\n");
            else
                passed = 1;
        }
        client_stop(&c);
    }
    rosco_ctx_free(h.ctx);
    printf("selftest %s\n", passed ? "passed" : "FAILED");
    return passed;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--selftest") == 0) return selftest() ? 0 : 1;
    if (argc < 2 || argc > 3 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s ENSEMBLE [HOST:PORT[:UDP_PORT]] | --selftest\n", argv[0]);
        return 2;
    }
    return run(argv[1], argc == 3 ? argv[2] : NULL) ? 0 : 1;
}
