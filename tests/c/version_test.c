/* The version macros compile, and the header matches the library it is linked with. */
#include "check.h"

/* The macros are usable in preprocessor conditions and constant expressions. */
#if !defined(ROSCO_VERSION_MAJOR) || !defined(ROSCO_VERSION_MINOR) || !defined(ROSCO_VERSION_PATCH)
#error "ROSCO_VERSION_MAJOR/MINOR/PATCH missing"
#endif
#if ROSCO_VERSION != ROSCO_MAKE_VERSION(ROSCO_VERSION_MAJOR, ROSCO_VERSION_MINOR, ROSCO_VERSION_PATCH)
#error "ROSCO_VERSION does not agree with its parts"
#endif
_Static_assert(ROSCO_VERSION == ((ROSCO_VERSION_MAJOR << 16) | (ROSCO_VERSION_MINOR << 8) |
                                 ROSCO_VERSION_PATCH),
               "ROSCO_VERSION layout");
_Static_assert(ROSCO_MAKE_VERSION(1, 2, 3) == 0x010203, "ROSCO_MAKE_VERSION layout");

static const uint32_t compiled_version = ROSCO_VERSION;

int main(void)
{
    uint32_t v = rosco_version();
    CHECK_INT(v, ROSCO_VERSION);
    CHECK_INT(v, compiled_version);
    CHECK_INT((v >> 16) & 0xff, ROSCO_VERSION_MAJOR);
    CHECK_INT((v >> 8) & 0xff, ROSCO_VERSION_MINOR);
    CHECK_INT(v & 0xff, ROSCO_VERSION_PATCH);
    CHECK(v >> 24 == 0);
    /* Stable across calls. */
    CHECK_INT(rosco_version(), v);
    printf("rosco %u.%u.%u\n", (unsigned)(v >> 16), (unsigned)((v >> 8) & 0xff),
           (unsigned)(v & 0xff));
    return check_summary("version_test");
}
