// Handlers registered in one module and removed from another (a library built with
// -fvisibility=hidden, tests/cpp/modules/module.cpp): a handler that removes itself through
// the other module's code must not wait for itself (it used to spin for good: each module
// kept its own record of the handlers its threads were in).
#include "test_util.hpp"

#include <csignal>
#include <unistd.h>

void remove_in_module(rosco::Method& m);
void clear_exception_handler_in_module(rosco::Context& ctx);

using namespace std::chrono_literals;

int main() {
    alarm(60);  // a hang is a failure, not a stuck CI job
    for (rosco::Mode mode : {rosco::Mode::poll, rosco::Mode::threaded}) {
        rosco::Context ctx(rosco::Options().mode(mode));
        rosco::Method self;
        std::atomic<int> calls{0};
        self = ctx.on("/once", [&](const rosco::Message&) {
            remove_in_module(self);
            ++calls;
        });
        ctx.local().send("/once");
        CHECK(test::poll_until(ctx, [&] { return calls == 1; }));
        ctx.local().send("/once");
        ctx.poll(20ms);
        CHECK_EQ(calls.load(), 1);

        // The exception handler cleared from inside itself, through the module.
        std::atomic<int> reported{0};
        ctx.on_exception([&](std::exception_ptr, std::string_view) {
            clear_exception_handler_in_module(ctx);
            ++reported;
        });
        rosco::Method thrower = ctx.on("/throw", [](const rosco::Message&) { throw std::runtime_error("x"); });
        ctx.local().send("/throw");
        CHECK(test::poll_until(ctx, [&] { return reported == 1; }));
        if (mode == rosco::Mode::threaded) std::this_thread::sleep_for(20ms);
        CHECK_EQ(reported.load(), 1);
    }
    return test::result("module_test");
}
