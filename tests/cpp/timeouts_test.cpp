// Timeouts as std::chrono durations: rosco::forever waits for as long as it takes in every
// call that waits, and a negative duration (a deadline already passed) does not wait at
// all. Exit 0 = pass.
#include "rosco.hpp"
#include "test_util.hpp"

#include <atomic>
#include <chrono>
#include <thread>

using namespace std::chrono_literals;

namespace {

/// poll(deadline - now) once the deadline has passed returns at once: a message sent a
/// second later is not waited for.
void poll_after_the_deadline() {
    rosco::Context ctx;
    rosco::Channel in = ctx.open("in", test::udp_listen());
    rosco::Method m = ctx.on("/late", [](const rosco::Message&) {});
    rosco::Context sender;
    rosco::Channel out = sender.open("out", test::udp_to(in.port()));
    std::thread later([&] {
        std::this_thread::sleep_for(1s);
        out.send("/late");
    });
    // Passed by 10 ms, and by 1 ms (the rounding of a deadline just passed).
    for (const auto late : {10ms, 1ms}) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(-late);
        CHECK_EQ(ctx.poll(left), 0u);  // waiting would have dispatched the late message
    }
    later.join();
    CHECK(test::poll_until(ctx, [&] { return in.stats().packets_in == 1; }));
}

/// take(handler, forever) waits for the message sent later.
void take_forever() {
    rosco::Context ctx(rosco::Options().mode(rosco::Mode::threaded));
    rosco::Subscription sub = ctx.subscribe("/later");
    std::thread later([&] {
        std::this_thread::sleep_for(200ms);
        ctx.local().send("/later", 7);
    });
    int got = 0;
    const bool took = sub.take([&](const rosco::Message& m) { got = m.get<std::int32_t>(0); },
                               rosco::forever);
    later.join();
    CHECK(took);
    CHECK_EQ(got, 7);
}

/// flush(forever) waits until a new TCP client's output is written, however long its
/// connection takes.
void flush_forever() {
    rosco::Context server(rosco::Options().mode(rosco::Mode::threaded));
    std::atomic<int> got{0};
    rosco::Method m = server.on("/flushed", [&](const rosco::Message&) { ++got; });
    rosco::Channel listener = server.open("l", "osc.tcp://:0?bind=127.0.0.1");
    rosco::Context client(rosco::Options().mode(rosco::Mode::io_thread));
    rosco::Channel out = client.open("c", test::tcp_to(listener.port()));
    out.send("/flushed");
    out.flush(rosco::forever);  // threw ROSCO_ERR_TIMEOUT at once while connecting
    CHECK(test::poll_until(server, [&] { return got == 1; }));
}

}  // namespace

int main() {
    try {
        poll_after_the_deadline();
        take_forever();
        flush_forever();
    } catch (const std::exception& e) {
        test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    return test::result("timeouts_test");
}
