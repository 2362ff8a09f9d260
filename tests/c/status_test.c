/* rosco_status_str, rosco_last_error, and the status codes' values. */
#include "check.h"

#include <pthread.h>

static void *other_thread(void *arg)
{
    (void)arg;
    /* A fresh thread has no detail, whatever failed on other threads. */
    const char *e = rosco_last_error();
    int ok = e != NULL && e[0] == '\0';
    /* A failure here sets this thread's detail only. */
    rosco_channel ch;
    rosco_status s = rosco_channel_find((rosco_ctx){0}, NULL, &ch);
    ok = ok && s == ROSCO_ERR_NULL && strstr(rosco_last_error(), "name") != NULL;
    return ok ? (void *)1 : NULL;
}

int main(void)
{
    /* Nothing has failed yet on this thread. */
    CHECK(rosco_last_error() != NULL);
    CHECK_STR(rosco_last_error(), "");

    /* The codes are the documented values (they are ABI). */
    CHECK_INT(ROSCO_OK, 0);
    CHECK_INT(ROSCO_ERR_NULL, -1);
    CHECK_INT(ROSCO_ERR_HANDLE, -2);
    CHECK_INT(ROSCO_ERR_ARG, -3);
    CHECK_INT(ROSCO_ERR_TYPE, -4);
    CHECK_INT(ROSCO_ERR_RANGE, -5);
    CHECK_INT(ROSCO_ERR_IO, -6);
    CHECK_INT(ROSCO_ERR_CLOSED, -7);
    CHECK_INT(ROSCO_ERR_FULL, -8);
    CHECK_INT(ROSCO_ERR_TIMEOUT, -9);
    CHECK_INT(ROSCO_ERR_INTERNAL, -10);
    CHECK_INT(ROSCO_ERR_BUSY, -11);
    CHECK_INT(ROSCO_ERR_UNSUPPORTED, -12);
    CHECK_INT(sizeof(rosco_status), 4);

    static const struct {
        rosco_status code;
        const char *name;
    } names[] = {
        {ROSCO_OK, "ROSCO_OK"},
        {ROSCO_ERR_NULL, "ROSCO_ERR_NULL"},
        {ROSCO_ERR_HANDLE, "ROSCO_ERR_HANDLE"},
        {ROSCO_ERR_ARG, "ROSCO_ERR_ARG"},
        {ROSCO_ERR_TYPE, "ROSCO_ERR_TYPE"},
        {ROSCO_ERR_RANGE, "ROSCO_ERR_RANGE"},
        {ROSCO_ERR_IO, "ROSCO_ERR_IO"},
        {ROSCO_ERR_CLOSED, "ROSCO_ERR_CLOSED"},
        {ROSCO_ERR_FULL, "ROSCO_ERR_FULL"},
        {ROSCO_ERR_TIMEOUT, "ROSCO_ERR_TIMEOUT"},
        {ROSCO_ERR_INTERNAL, "ROSCO_ERR_INTERNAL"},
        {ROSCO_ERR_BUSY, "ROSCO_ERR_BUSY"},
        {ROSCO_ERR_UNSUPPORTED, "ROSCO_ERR_UNSUPPORTED"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK_STR(rosco_status_str(names[i].code), names[i].name);

    /* Never NULL, and every unknown value is ROSCO_ERR_UNKNOWN. */
    int unknown = 0, nulls = 0;
    for (int code = -100; code <= 100; code++) {
        const char *s = rosco_status_str(code);
        if (s == NULL) {
            nulls++;
            continue;
        }
        if (code > 0 || code < -12) {
            if (strcmp(s, "ROSCO_ERR_UNKNOWN") != 0)
                fprintf(stderr, "status %d gave \"%s\"\n", code, s);
            else
                unknown++;
        } else {
            CHECK(strncmp(s, "ROSCO_", 6) == 0);
        }
    }
    CHECK_INT(nulls, 0);
    CHECK_INT(unknown, 201 - 13);
    CHECK_STR(rosco_status_str(INT32_MIN), "ROSCO_ERR_UNKNOWN");
    CHECK_STR(rosco_status_str(INT32_MAX), "ROSCO_ERR_UNKNOWN");
    /* The string is static: the same pointer each time. */
    CHECK(rosco_status_str(ROSCO_ERR_ARG) == rosco_status_str(ROSCO_ERR_ARG));
    /* rosco_status_str does not touch the error detail. */
    CHECK_STR(rosco_last_error(), "");

    /* A failure leaves a one-line detail, which stays until the next failure. */
    CHECK_ERR(rosco_ctx_free((rosco_ctx){0}), ROSCO_ERR_HANDLE);
    const char *e = rosco_last_error();
    CHECK(e != NULL && e[0] != '\0' && strchr(e, '\n') == NULL);
    char first[256];
    snprintf(first, sizeof first, "%s", e);
    /* Successful calls leave it alone. */
    CHECK_INT(rosco_version(), ROSCO_VERSION);
    rosco_ctx_options o;
    CHECK_OK(rosco_ctx_options_init(&o));
    CHECK_STR(rosco_last_error(), first);
    /* Another failure replaces it. */
    CHECK_ERR(rosco_ctx_options_init_sized(NULL, sizeof(rosco_ctx_options)), ROSCO_ERR_NULL);
    CHECK(strcmp(rosco_last_error(), first) != 0);
    CHECK(strstr(rosco_last_error(), "opts") != NULL);

    /* Each thread has its own detail. */
    char mine[256];
    snprintf(mine, sizeof mine, "%s", rosco_last_error());
    pthread_t t;
    void *result = NULL;
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
    CHECK(pthread_join(t, &result) == 0);
    CHECK(result == (void *)1);
    CHECK_STR(rosco_last_error(), mine);

    return check_summary("status_test");
}
