// expect: ignoring return value|nodiscard
// A subscription dropped at once unsubscribes at once.
#include "rosco.hpp"

void listen(rosco::Context& ctx) {
#ifdef CONTROL
    rosco::Subscription kept = ctx.subscribe("/news");
    (void)kept;
#else
    ctx.subscribe("/news");
#endif
}

int main() { return 0; }
