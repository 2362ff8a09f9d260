/* Interoperability with liblo's command-line tools, over UDP and TCP on 127.0.0.1:
 * `oscsend` sends to rosco methods, and rosco sends to an `oscdump` child whose output is
 * read back. Without the tools the test prints SKIP and passes, unless ROSCO_REQUIRE_PEERS
 * is set (then it fails). */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

/* ---- processes ----------------------------------------------------------------------- */

static int on_path(const char *tool)
{
    const char *path = getenv("PATH");
    char dir[512], full[640];
    if (!path)
        return 0;
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
            snprintf(full, sizeof full, "%s/%s", dir, tool);
            if (access(full, X_OK) == 0)
                return 1;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return 0;
}

/* Runs argv to completion within `ms`; its exit status, or -1. */
static int run_bounded(char *const argv[], int ms)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    int64_t deadline = check_now_ms() + check_scale_ms(ms);
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (r < 0 || check_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        check_sleep_ms(2);
    }
}

/* A child whose stdout we read, line by line. */
struct child {
    pid_t pid;
    int fd;
    char buf[16384];
    size_t len;
};

static int spawn_reader(struct child *c, char *const argv[])
{
    int p[2];
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    c->pid = fork();
    if (c->pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (c->pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    c->fd = p[0];
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* Reads what the child has written so far (waiting at most `ms`). */
static void child_read(struct child *c, int ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (c->fd < 0 || poll(&p, 1, ms) <= 0)
        return;
    for (;;) {
        if (c->len + 1 >= sizeof c->buf)
            return;
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
        if (n <= 0)
            return;
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    }
}

/* Does some complete line of the child's output end with `tail`? */
static int child_has_line_ending(struct child *c, const char *tail)
{
    size_t tl = strlen(tail);
    const char *line = c->buf;
    while (line < c->buf + c->len) {
        const char *nl = memchr(line, '\n', (size_t)(c->buf + c->len - line));
        if (!nl)
            return 0;
        size_t ll = (size_t)(nl - line);
        if (ll >= tl && memcmp(nl - tl, tail, tl) == 0)
            return 1;
        line = nl + 1;
    }
    return 0;
}

static void child_stop(struct child *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGTERM);
        int status;
        int64_t deadline = check_now_ms() + 2000;
        while (waitpid(c->pid, &status, WNOHANG) == 0) {
            if (check_now_ms() > deadline) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, &status, 0);
                break;
            }
            check_sleep_ms(5);
        }
    }
    if (c->fd >= 0)
        close(c->fd);
    c->pid = -1;
    c->fd = -1;
}

/* A port nothing is bound to right now (for oscdump to listen on). */
static uint16_t free_port(int type)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- oscsend -> rosco ---------------------------------------------------------------- */

struct got {
    atomic_int x;
    atomic_int types;
    int32_t i;
    float f;
    char s[32];
    char tags[32];
    int types_ok;
    rosco_channel channel;
};

static int32_t on_x(void *user, const rosco_msg *m)
{
    struct got *g = user;
    const char *s = NULL;
    CHECK_OK(rosco_msg_get_i32(m, 0, &g->i));
    CHECK_OK(rosco_msg_get_f32(m, 1, &g->f));
    if (CHECK_OK(rosco_msg_get_str(m, 2, &s)))
        snprintf(g->s, sizeof g->s, "%s", s);
    snprintf(g->tags, sizeof g->tags, "%s", rosco_msg_typetags(m));
    rosco_msg_channel(m, &g->channel);
    atomic_fetch_add(&g->x, 1);
    return 0;
}

static int32_t on_types(void *user, const rosco_msg *m)
{
    struct got *g = user;
    int32_t i = 0, t = -1, f = -1;
    int64_t h = 0;
    float fl = 0;
    double d = 0;
    const char *s = NULL, *sym = NULL;
    uint8_t c = 0;
    uint32_t midi = 0;
    int before = CHECK_FAILURES;
    CHECK_STR(rosco_msg_typetags(m), "ihfdsScmTFNI");
    CHECK_OK(rosco_msg_get_i32(m, 0, &i));
    CHECK_OK(rosco_msg_get_i64(m, 1, &h));
    CHECK_OK(rosco_msg_get_f32(m, 2, &fl));
    CHECK_OK(rosco_msg_get_f64(m, 3, &d));
    CHECK_OK(rosco_msg_get_str(m, 4, &s));
    CHECK_OK(rosco_msg_get_str(m, 5, &sym));
    CHECK_OK(rosco_msg_get_char(m, 6, &c));
    CHECK_OK(rosco_msg_get_midi(m, 7, &midi));
    CHECK_OK(rosco_msg_get_bool(m, 8, &t));
    CHECK_OK(rosco_msg_get_bool(m, 9, &f));
    CHECK_INT(rosco_msg_argc(m), 12);
    CHECK_INT(i, -5);
    CHECK(h == 1099511627776LL);
    CHECK(fl == 3.5f);
    CHECK(d == 4.25);
    CHECK_STR(s, "str");
    CHECK_STR(sym, "sym");
    CHECK_INT(c, 'x');
    CHECK(midi == 0x01902040u);
    CHECK_INT(t, 1);
    CHECK_INT(f, 0);
    g->types_ok = CHECK_FAILURES == before;
    atomic_fetch_add(&g->types, 1);
    return 0;
}

static void test_oscsend(const char *scheme)
{
    rosco_ctx ctx;
    rosco_channel in;
    rosco_method m;
    struct got g;
    uint16_t port = 0;
    char url[96], listen[96];
    int is_tcp = strcmp(scheme, "osc.tcp") == 0;
    int before = CHECK_FAILURES;

    memset(&g, 0, sizeof g);
    if (!CHECK_OK(rosco_ctx_new(NULL, &ctx)))
        return;
    snprintf(listen, sizeof listen, "%s://:0?bind=127.0.0.1", scheme);
    if (!CHECK_OK(rosco_channel_open(ctx, "in", listen, &in))) {
        rosco_ctx_free(ctx);
        return;
    }
    CHECK_OK(rosco_channel_port(ctx, in, &port));
    CHECK_OK(rosco_method_add(ctx, "/x", "ifs", on_x, &g, NULL, &m));
    CHECK_OK(rosco_method_add(ctx, "/types", NULL, on_types, &g, NULL, &m));
    snprintf(url, sizeof url, "%s://127.0.0.1:%u", scheme, (unsigned)port);

    /* oscsend exits after sending; over TCP it connects first, which needs rosco_poll to
     * accept, so it runs while we poll. */
    char *argv_x[] = {"oscsend", url, "/x", "ifs", "1", "2.5", "hi", NULL};
    char *argv_t[] = {"oscsend", url, "/types", "ihfdsScmTFNI", "-5", "1099511627776", "3.5",
                      "4.25", "str", "sym", "x", "01902040", NULL};
    if (!is_tcp) {
        CHECK_INT(run_bounded(argv_x, 10000), 0);
        CHECK_INT(run_bounded(argv_t, 10000), 0);
    } else {
        /* The TCP accept happens in rosco_poll: run oscsend in the background. */
        struct child c1, c2;
        CHECK(spawn_reader(&c1, argv_x) == 0);
        CHECK(POLL_UNTIL(ctx, atomic_load(&g.x) == 1, 10000));
        child_stop(&c1);
        CHECK(spawn_reader(&c2, argv_t) == 0);
        CHECK(POLL_UNTIL(ctx, atomic_load(&g.types) == 1, 10000));
        child_stop(&c2);
    }
    CHECK(POLL_UNTIL(ctx, atomic_load(&g.x) == 1 && atomic_load(&g.types) == 1, 5000));
    CHECK_INT(atomic_load(&g.x), 1);
    CHECK_INT(g.i, 1);
    CHECK(g.f == 2.5f);
    CHECK_STR(g.s, "hi");
    CHECK_STR(g.tags, "ifs");
    CHECK(g.channel.id == in.id);
    CHECK_INT(atomic_load(&g.types), 1);
    CHECK(g.types_ok);
    CHECK_OK(rosco_ctx_free(ctx));
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (failures above: oscsend over %s)\n", scheme);
}

/* ---- rosco -> oscdump ---------------------------------------------------------------- */

static void test_oscdump(const char *scheme)
{
    rosco_ctx ctx;
    rosco_channel out;
    struct child c;
    int is_tcp = strcmp(scheme, "osc.tcp") == 0;
    uint16_t port = free_port(is_tcp ? SOCK_STREAM : SOCK_DGRAM);
    char listen[64], url[96];
    int before = CHECK_FAILURES;

    if (!CHECK(port != 0))
        return;
    if (is_tcp)
        snprintf(listen, sizeof listen, "osc.tcp://:%u", (unsigned)port);
    else
        snprintf(listen, sizeof listen, "%u", (unsigned)port);
    char *argv[] = {"oscdump", "-L", listen, NULL};
    if (!CHECK(spawn_reader(&c, argv) == 0))
        return;
    if (!CHECK_OK(rosco_ctx_new(NULL, &ctx))) {
        child_stop(&c);
        return;
    }
    snprintf(url, sizeof url, "%s://127.0.0.1:%u%s", scheme, (unsigned)port,
             is_tcp ? "?backoff_ms=50" : "");
    CHECK_OK(rosco_channel_open(ctx, "out", url, &out));

    rosco_builder *msg = rosco_builder_new();
    CHECK_OK(rosco_builder_message(msg, "/from/rosco"));
    CHECK_OK(rosco_builder_add_i32(msg, 7));
    CHECK_OK(rosco_builder_add_str(msg, "hello"));
    rosco_builder *more = rosco_builder_new();
    CHECK_OK(rosco_builder_message(more, "/more"));
    CHECK_OK(rosco_builder_add_f64(more, 0.5));
    CHECK_OK(rosco_builder_add_i64(more, -9));
    CHECK_OK(rosco_builder_add_symbol(more, "sy"));
    CHECK_OK(rosco_builder_add_bool(more, 1));
    CHECK_OK(rosco_builder_add_nil(more));
    rosco_builder *bundle = rosco_builder_new();
    CHECK_OK(rosco_builder_bundle_begin(bundle, ROSCO_TIMETAG_IMMEDIATE));
    CHECK_OK(rosco_builder_message(bundle, "/in/bundle"));
    CHECK_OK(rosco_builder_add_i32(bundle, 5));
    CHECK_OK(rosco_builder_bundle_end(bundle));

    /* oscdump needs a moment to bind: send until it shows up (UDP may be lost meanwhile;
     * the TCP client keeps its messages until it connects). */
    int seen = 0;
    int64_t deadline = check_now_ms() + check_scale_ms(10000);
    int sent_tcp = 0;
    while (!seen && check_now_ms() < deadline) {
        if (!is_tcp || !sent_tcp) {
            CHECK_OK(rosco_send(ctx, out, msg));
            sent_tcp = 1;
        }
        (void)rosco_poll(ctx, 50, NULL);
        child_read(&c, 50);
        seen = child_has_line_ending(&c, "/from/rosco is 7 \"hello\"");
    }
    CHECK(seen);
    if (seen) {
        CHECK_OK(rosco_send(ctx, out, more));
        CHECK_OK(rosco_send(ctx, out, bundle));
        deadline = check_now_ms() + check_scale_ms(5000);
        while (!(child_has_line_ending(&c, "/more dhSTN 0.500000 -9 'sy #T Nil") &&
                 child_has_line_ending(&c, "/in/bundle i 5")) &&
               check_now_ms() < deadline) {
            (void)rosco_poll(ctx, 20, NULL);
            child_read(&c, 20);
        }
        CHECK(child_has_line_ending(&c, "/more dhSTN 0.500000 -9 'sy #T Nil"));
        CHECK(child_has_line_ending(&c, "/in/bundle i 5"));
    }
    if (CHECK_FAILURES != before)
        fprintf(stderr, "  (oscdump over %s printed:\n%s)\n", scheme, c.buf);
    child_stop(&c);
    rosco_builder_free(msg);
    rosco_builder_free(more);
    rosco_builder_free(bundle);
    CHECK_OK(rosco_ctx_free(ctx));
}

int main(void)
{
    const char *require = getenv("ROSCO_REQUIRE_PEERS");
    int required = require != NULL && require[0] != '\0';
    if (!on_path("oscsend") || !on_path("oscdump")) {
        if (required) {
            fprintf(stderr, "liblo_test: oscsend/oscdump not found and ROSCO_REQUIRE_PEERS is "
                            "set\n");
            CHECK(0);
            return check_summary("liblo_test");
        }
        printf("SKIP: liblo's oscsend/oscdump not found (install liblo-tools)\n");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    test_oscsend("osc.udp");
    test_oscsend("osc.tcp");
    test_oscdump("osc.udp");
    test_oscdump("osc.tcp");
    return check_summary("liblo_test");
}
