/* Timetags: rosco_timetag_now/from_unix/to_unix/add and ROSCO_TIMETAG_IMMEDIATE. */
#include "check.h"

#include <math.h> /* NAN and INFINITY only: no libm needed */

#define NTP_UNIX_OFFSET 2208988800ULL

static int near(double a, double b, double eps)
{
    double d = a - b;
    return (d < 0 ? -d : d) <= eps;
}

/* Each runs in a child: a value rosco cannot represent must not crash the process. */
static int from_unix_huge(void *arg)
{
    double secs = *(const double *)arg;
    volatile uint64_t t = rosco_timetag_from_unix(secs);
    (void)t;
    return 0;
}

static int add_huge(void *arg)
{
    double secs = *(const double *)arg;
    volatile uint64_t t = rosco_timetag_add(rosco_timetag_now(), secs);
    (void)t;
    return 0;
}

int main(void)
{
    CHECK(ROSCO_TIMETAG_IMMEDIATE == 1);

    /* now: within a couple of seconds of the system clock, and not going backwards. */
    uint64_t a = rosco_timetag_now();
    double unix_now = (double)time(NULL);
    CHECK(near(rosco_timetag_to_unix(a), unix_now, 2.0));
    CHECK((a >> 32) > NTP_UNIX_OFFSET || (a >> 32) < 0x7fffffffULL); /* era 0 or era 1 */
    uint64_t b = rosco_timetag_now();
    CHECK(rosco_timetag_to_unix(b) >= rosco_timetag_to_unix(a));
    CHECK(a != 0 && a != ROSCO_TIMETAG_IMMEDIATE);

    /* from_unix: exact values. */
    CHECK(rosco_timetag_from_unix(0.0) == NTP_UNIX_OFFSET << 32);
    CHECK(rosco_timetag_from_unix(0.5) == ((NTP_UNIX_OFFSET << 32) | 0x80000000ULL));
    CHECK(rosco_timetag_from_unix(1.25) == (((NTP_UNIX_OFFSET + 1) << 32) | 0x40000000ULL));
    CHECK(rosco_timetag_from_unix(1700000000.0) == ((NTP_UNIX_OFFSET + 1700000000ULL) << 32));

    /* to_unix: exact values, and the two special ones name 1900. */
    CHECK(rosco_timetag_to_unix(NTP_UNIX_OFFSET << 32) == 0.0);
    CHECK(rosco_timetag_to_unix((NTP_UNIX_OFFSET << 32) | 0x80000000ULL) == 0.5);
    CHECK(near(rosco_timetag_to_unix(0), -(double)NTP_UNIX_OFFSET, 1e-6));
    CHECK(near(rosco_timetag_to_unix(ROSCO_TIMETAG_IMMEDIATE), -(double)NTP_UNIX_OFFSET, 1e-6));

    /* Round trips, through the 2036 rollover too (2085978496 is 2036-02-07 06:28:16 UTC). */
    const double moments[] = {0.0, 1.0, 1234567890.125, 1700000000.75, 2085978495.5,
                              2085978497.5, 2100000000.0, 4000000000.0};
    for (size_t i = 0; i < sizeof moments / sizeof moments[0]; i++) {
        uint64_t t = rosco_timetag_from_unix(moments[i]);
        if (!CHECK(near(rosco_timetag_to_unix(t), moments[i], 1e-6)))
            fprintf(stderr, "  round trip of %.6f gave %.6f (timetag %016llx)\n", moments[i],
                    rosco_timetag_to_unix(t), (unsigned long long)t);
    }
    /* Past 2036 the seconds field wraps: 2036-02-07 06:28:17.5 is seconds 1, fraction 1/2. */
    CHECK(rosco_timetag_from_unix(2085978497.5) == ((1ULL << 32) | 0x80000000ULL));
    CHECK(near(rosco_timetag_to_unix((1ULL << 32) | 0x80000000ULL), 2085978497.5, 1e-6));

    /* add. */
    uint64_t base = rosco_timetag_from_unix(1700000000.0);
    CHECK(rosco_timetag_add(base, 0.0) == base);
    CHECK(rosco_timetag_add(base, 1.5) == base + 0x180000000ULL);
    CHECK(rosco_timetag_add(base, 0.25) == base + 0x40000000ULL);
    CHECK(near(rosco_timetag_to_unix(rosco_timetag_add(base, 86400.0)), 1700086400.0, 1e-6));
    /* Negative or non-finite seconds leave the timetag as it is. */
    CHECK(rosco_timetag_add(base, -1.0) == base);
    CHECK(rosco_timetag_add(base, -0.0) == base);
    CHECK(rosco_timetag_add(base, NAN) == base);
    CHECK(rosco_timetag_add(base, INFINITY) == base);
    /* Past the last nameable time, however far: that last time. */
    CHECK(rosco_timetag_add(base, 1e20) == rosco_timetag_add(base, 1e10));
    CHECK(rosco_timetag_add(base, 1e300) == rosco_timetag_add(base, 1e10));
    CHECK(rosco_timetag_add(base, 1e10) != base);
    CHECK(rosco_timetag_add(base, -INFINITY) == base);
    /* Across the 2036 rollover: 2036-02-07 06:28:15 + 2 s. */
    uint64_t before = 0xFFFFFFFFULL << 32;
    uint64_t after = rosco_timetag_add(before, 2.0);
    CHECK(after == (1ULL << 32));
    CHECK(near(rosco_timetag_to_unix(after) - rosco_timetag_to_unix(before), 2.0, 1e-6));
    /* add from "immediately". */
    CHECK(rosco_timetag_to_unix(rosco_timetag_add(ROSCO_TIMETAG_IMMEDIATE, 1.0)) >
          rosco_timetag_to_unix(ROSCO_TIMETAG_IMMEDIATE));

    /* Odd inputs are clamped to what a timetag can name. */
    uint64_t last = rosco_timetag_from_unix(1e10); /* past 2104 */
    CHECK(rosco_timetag_to_unix(last) > 4.0e9 && rosco_timetag_to_unix(last) < 4.3e9);
    CHECK(rosco_timetag_from_unix(INFINITY) == last);
    CHECK(rosco_timetag_from_unix(1e30) == last);
    CHECK(rosco_timetag_from_unix(NAN) == 0);
    CHECK(rosco_timetag_from_unix(-INFINITY) == 0);
    CHECK(rosco_timetag_from_unix(-1e30) == 0);
    CHECK(rosco_timetag_from_unix(-3e9) == 0); /* before 1900 */
    CHECK(rosco_timetag_to_unix(UINT64_MAX) > 0);

    /* Very large finite values must not crash the process either (every function may be
     * called with any value; nothing may unwind or abort across the C ABI). */
    static const double huge[] = {1e19, 1e20, 1e30, 1.7e308};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        if (!CHECK_CHILD_OK(check_in_child(from_unix_huge, (void *)&huge[i])))
            fprintf(stderr, "  rosco_timetag_from_unix(%g) crashed the process\n", huge[i]);
        if (!CHECK_CHILD_OK(check_in_child(add_huge, (void *)&huge[i])))
            fprintf(stderr, "  rosco_timetag_add(now, %g) crashed the process\n", huge[i]);
    }

    return check_summary("time_test");
}
