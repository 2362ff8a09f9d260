/* Opens a UDP listener on loopback, sends a message to it from a second channel, and
 * checks that rosco_poll delivers it. Exits 0 on success. Built by the consumer project
 * (against rosco::rosco and rosco::rosco_static) and with pkg-config, by tests/c_api.sh. */
#include <rosco.h>

#include <stdio.h>
#include <string.h>

static int failed(rosco_status st, const char *what) {
    if (st == ROSCO_OK) return 0;
    fprintf(stderr, "loopback: %s: %s (%s)\n", what, rosco_status_str(st), rosco_last_error());
    return 1;
}

static int32_t on_ping(void *user, const rosco_msg *m) {
    int32_t v = 0;
    if (rosco_msg_get_i32(m, 0, &v) == ROSCO_OK && v == 7) *(int *)user += 1;
    return 0;
}

int main(void) {
    rosco_ctx ctx;
    rosco_channel in, out;
    rosco_method method;
    uint16_t port = 0;
    char url[64];
    int got = 0;

    if (rosco_version() != ROSCO_VERSION) {
        fprintf(stderr, "loopback: header %#x, library %#x\n", ROSCO_VERSION, rosco_version());
        return 1;
    }
    if (failed(rosco_ctx_new(NULL, &ctx), "rosco_ctx_new")) return 1;
    if (failed(rosco_channel_open(ctx, "in", "osc.udp://:0?bind=127.0.0.1", &in), "listen") ||
        failed(rosco_channel_port(ctx, in, &port), "port") ||
        failed(rosco_method_add(ctx, "/ping", "i", on_ping, &got, NULL, &method), "method")) {
        return 1;
    }
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%u", (unsigned)port);
    rosco_builder *b = rosco_builder_new();
    if (!b || failed(rosco_channel_open(ctx, "out", url, &out), "open sender") ||
        failed(rosco_builder_message(b, "/ping"), "build") ||
        failed(rosco_builder_add_i32(b, 7), "build") ||
        failed(rosco_send(ctx, out, b), "send")) {
        return 1;
    }
    for (int i = 0; i < 50 && !got; i++) {
        if (failed(rosco_poll(ctx, 100, NULL), "poll")) return 1;
    }
    rosco_builder_free(b);
    rosco_ctx_free(ctx);
    printf("loopback: %s\n", got == 1 ? "ok" : "no message");
    return got == 1 ? 0 : 1;
}
