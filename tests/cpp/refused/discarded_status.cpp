// expect: ignoring return value|nodiscard
// try_send's status is its only report of a failure.
#include "rosco.hpp"

void send(const rosco::Channel& c) {
#ifdef CONTROL
    if (c.try_send("/level", 0.5f) != ROSCO_OK) return;
#else
    c.try_send("/level", 0.5f);
#endif
}

int main() { return 0; }
