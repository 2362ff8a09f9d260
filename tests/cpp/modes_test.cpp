// The wrapper in all three threading modes over loopback: UDP, TCP and Unix round trips
// with replies, a timed bundle not delivered before its timetag, handlers that throw
// (the process survives, the other handlers still run), sends from several std::threads
// while one polls, events, and the io-thread wake-up descriptor; and threaded mode with a
// pool of workers. Exit 0 = pass.
#include "rosco.hpp"
#include "test_util.hpp"

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// Thread-safe record of what handlers saw (they run on the I/O thread in threaded mode).
struct Record {
    mutable std::mutex mu;
    std::vector<std::string> lines;
    void add(std::string s) {
        std::lock_guard<std::mutex> l(mu);
        lines.push_back(std::move(s));
    }
    std::size_t size() const {
        std::lock_guard<std::mutex> l(mu);
        return lines.size();
    }
    bool has(const std::string& s) const {
        std::lock_guard<std::mutex> l(mu);
        for (const auto& x : lines)
            if (x == s) return true;
        return false;
    }
};

void udp_round_trip(rosco::Mode mode) {
    rosco::Context ctx(rosco::Options().mode(mode));
    rosco::Channel server = ctx.open("server", test::udp_listen());
    rosco::Channel client = ctx.open("client", test::udp_to(server.port()));
    // The server answers /ping with /pong to the sender.
    rosco::Method ping = ctx.on("/ping", "is", [](const rosco::Message& m) {
        m.reply("/pong", m.get<std::int32_t>(0) + 1, std::string(m.get<std::string_view>(1)) + "!");
    });
    Record got;
    rosco::Method pong = ctx.on("/pong", "is", [&](const rosco::Message& m) {
        got.add(std::to_string(m.get<std::int32_t>(0)) + m.get<std::string>(1) +
                (m.channel() == client ? "@client" : "@?"));
    });
    client.send("/ping", 41, "hi");
    CHECK(test::poll_until(ctx, [&] { return got.size() == 1; }));
    CHECK(got.has("42hi!@client"));
}

void tcp_round_trip(rosco::Mode mode) {
    rosco::Context ctx(rosco::Options().mode(mode));
    Record events;
    ctx.on_event([&](const rosco::Event& e) {
        if (e.kind == rosco::EventKind::connected) events.add("connected");
    });
    rosco::Channel server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1");
    rosco::Channel client = ctx.open("client", test::tcp_to(server.port()));
    rosco::Method ping = ctx.on("/ping", [](const rosco::Message& m) {
        rosco::Builder b;
        b.message("/pong").append_args(m).add("tcp");
        m.reply(b);  // on the connection the message came in on
    });
    Record got;
    rosco::Method pong = ctx.on("/pong", [&](const rosco::Message& m) {
        got.add(m.typetags().data() + std::string(":") + m.get<std::string>(2));
    });
    client.send("/ping", 1.5, rosco::Blob("xyz", 3));
    if (mode != rosco::Mode::poll) client.flush(test::scaled(2000ms));  // poll mode flushes in poll()
    CHECK(test::poll_until(ctx, [&] { return got.size() == 1; }));
    CHECK(got.has("dbs:tcp"));
    CHECK(test::poll_until(ctx, [&] { return events.size() >= 2; }));  // both ends
}

void unix_datagram(rosco::Mode mode) {
    const std::string path = "/tmp/rosco-cpp-" + std::to_string(::getpid()) + "-" + test::mode_name(mode) + ".sock";
    rosco::Context ctx(rosco::Options().mode(mode));
    rosco::Channel rx = ctx.open("rx", "osc.unix://" + path + "?listen");
    rosco::Channel tx = ctx.open("tx", "osc.unix://" + path);
    Record got;
    rosco::Method m = ctx.on("/unix", [&](const rosco::Message& msg) {
        got.add(msg.get<std::string>(0) + (msg.source().empty() ? ":no-ip" : ":ip"));
    });
    tx.send("/unix", "dgram");
    CHECK(test::poll_until(ctx, [&] { return got.size() == 1; }));
    CHECK(got.has("dgram:no-ip"));
    CHECK(rx.url().find(path) != std::string::npos);
}

void timed_bundle(rosco::Mode mode) {
    rosco::Context ctx(rosco::Options().mode(mode));
    rosco::Channel rx = ctx.open("rx", test::udp_listen());
    rosco::Channel tx = ctx.open("tx", test::udp_to(rx.port()));
    std::mutex mu;
    std::vector<std::pair<double, std::uint64_t>> arrivals;  // (now, bundle_time)
    std::atomic<std::uint64_t> started{0};
    ctx.on_bundle([&](rosco::TimeTag t) { started = t.bits; }, nullptr);
    rosco::Method m = ctx.on("/timed", [&](const rosco::Message& msg) {
        const double now = rosco::TimeTag::now().to_unix();
        std::lock_guard<std::mutex> l(mu);
        arrivals.emplace_back(now, msg.bundle_time().bits);
    });
    const rosco::TimeTag at = rosco::TimeTag::from_now(150ms);
    rosco::Builder b;
    b.bundle(at, [](rosco::Builder& x) { x.message("/timed").add(1); });
    tx.send(b);
    CHECK(test::poll_until(ctx, [&] {
        std::lock_guard<std::mutex> l(mu);
        return !arrivals.empty();
    }));
    std::lock_guard<std::mutex> l(mu);
    if (!arrivals.empty()) {
        CHECK_EQ(arrivals[0].second, at.bits);
        CHECK(arrivals[0].first >= at.to_unix());  // not before its timetag
        CHECK(arrivals[0].first < at.to_unix() + 2.0 * test::slow_factor());
        CHECK_EQ(started.load(), at.bits);
    }
}

void throwing_handlers(rosco::Mode mode) {
    rosco::Context ctx(rosco::Options().mode(mode));
    Record reported, ran;
    ctx.on_exception([&](std::exception_ptr e, std::string_view where) {
        std::string what = "?";
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            what = x.what();
        } catch (int n) {
            what = "int " + std::to_string(n);
        }
        reported.add(std::string(where) + ": " + what);
    });
    rosco::Method first = ctx.on_any([&](const rosco::Message& m) {
        ran.add("any " + std::string(m.address()));
        return false;
    });
    rosco::Method boom = ctx.on("/boom", [](const rosco::Message&) -> bool {
        throw std::runtime_error("kaboom");
    });
    rosco::Method after = ctx.on("/boom", [&](const rosco::Message&) { ran.add("after boom"); });
    rosco::Method weird = ctx.on("/int", [](const rosco::Message&) { throw 7; });
    rosco::Method fine = ctx.on("/fine", [&](const rosco::Message&) { ran.add("fine"); });
    ctx.on_bundle([](rosco::TimeTag) { throw std::logic_error("bundle oops"); }, nullptr);
    rosco::Channel local = ctx.local();
    local.send("/boom");
    local.send("/int");
    local.send("/fine");
    rosco::Builder b;
    b.bundle(rosco::TimeTag::immediately(), [](rosco::Builder& x) { x.message("/fine"); });
    local.send(b);
    local.send("/boom");  // the throwing handler still works
    CHECK(test::poll_until(ctx, [&] { return reported.size() >= 4 && ran.size() >= 7; }));
    CHECK(reported.has("handler for /boom: kaboom"));
    CHECK(reported.has("handler for /int: int 7"));
    CHECK(reported.has("bundle handler: bundle oops"));
    CHECK(ran.has("any /boom"));
    CHECK(ran.has("any /int"));
    CHECK(ran.has("fine"));
    CHECK(!ran.has("after boom"));  // a throwing handler counts as having handled it

    // A throwing event handler is reported too.
    ctx.on_event([](const rosco::Event&) { throw std::runtime_error("event oops"); });
    ctx.open("in", test::udp_listen());  // emits "bound"
    CHECK(test::poll_until(ctx, [&] { return reported.has("event handler: event oops"); }));
    ctx.on_event(nullptr);

    // Without an exception handler the report goes to std::cerr (checked in poll mode,
    // where it is written on this thread).
    if (mode == rosco::Mode::poll) {
        ctx.on_exception(nullptr);
        std::ostringstream captured;
        std::streambuf* old = std::cerr.rdbuf(captured.rdbuf());
        local.send("/boom");
        test::poll_until(ctx, [&] { return !captured.str().empty(); }, 2000ms);
        std::cerr.rdbuf(old);
        CHECK_EQ(captured.str(), std::string("rosco: handler for /boom threw: kaboom\n"));
    }
}

void threads_send_while_one_polls(rosco::Mode mode) {
    constexpr int kThreads = 4, kEach = 250;
    rosco::Context ctx(rosco::Options().mode(mode));
    rosco::Channel server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1");
    rosco::Channel client = ctx.open("client", test::tcp_to(server.port()));
    std::mutex mu;
    std::map<int, std::vector<int>> seen;  // thread -> sequence numbers in arrival order
    std::atomic<int> total{0};
    rosco::Method m = ctx.on("/t", "ii", [&](const rosco::Message& msg) {
        std::lock_guard<std::mutex> l(mu);
        seen[msg.get<std::int32_t>(0)].push_back(msg.get<std::int32_t>(1));
        ++total;
    });
    std::atomic<int> errors{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < kThreads; ++t) {
        senders.emplace_back([&, t] {
            rosco::Builder b;  // each thread also uses a Builder of its own
            for (int i = 0; i < kEach; ++i) {
                try {
                    if (i % 2) {
                        client.send("/t", t, i);
                    } else {
                        b.message("/t").add(t, i);
                        client.send(b);
                    }
                } catch (const rosco::Error&) {
                    ++errors;
                }
            }
        });
    }
    const bool all = test::poll_until(ctx, [&] { return total == kThreads * kEach; }, 20000ms);
    for (auto& th : senders) th.join();
    CHECK(all);
    CHECK_EQ(errors.load(), 0);
    std::lock_guard<std::mutex> l(mu);
    for (int t = 0; t < kThreads; ++t) {
        const auto& v = seen[t];
        CHECK_EQ(v.size(), std::size_t{kEach});
        bool ordered = true;  // one thread's sends keep their order on one connection
        for (std::size_t i = 0; i < v.size(); ++i) ordered = ordered && v[i] == static_cast<int>(i);
        CHECK(ordered);
    }
}

void wakeup_descriptor(rosco::Mode mode) {
    rosco::Context ctx(rosco::Options().mode(mode));
    const int fd = ctx.wakeup_fd();
    if (mode != rosco::Mode::io_thread) {
        CHECK_EQ(fd, -1);
        return;
    }
    CHECK(fd >= 0);
    std::atomic<int> got{0};
    rosco::Method m = ctx.on("/wake", [&](const rosco::Message&) { ++got; });
    rosco::Channel rx = ctx.open("rx", test::udp_listen());
    rosco::Channel tx = ctx.open("tx", test::udp_to(rx.port()));
    tx.send("/wake");
    struct pollfd p = {fd, POLLIN, 0};
    CHECK_EQ(::poll(&p, 1, 5000), 1);  // readable once the message waits for poll()
    CHECK_EQ(got.load(), 0);           // handlers run only inside poll() in this mode
    CHECK(test::poll_until(ctx, [&] { return got == 1; }));
}

}  // namespace

// Threaded mode with a pool of workers: handlers run on the workers, side by side.
void workers_pool() {
    rosco::Context ctx(rosco::Options().mode(rosco::Mode::threaded).workers(3));
    rosco::Channel server = ctx.open("server", test::udp_listen());
    rosco::Channel client = ctx.open("client", test::udp_to(server.port()));
    std::atomic<int> running{0}, most{0}, done{0};
    Record threads;
    rosco::Method work = ctx.on("/work", [&](const rosco::Message&) {
        int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        char name[16] = {0};
        pthread_getname_np(pthread_self(), name, sizeof name);
        threads.add(name);
        // Waits (within reason) for a second handler to run meanwhile: only a second
        // thread can run it.
        auto stop = std::chrono::steady_clock::now() + 5s;
        while (most.load() < 2 && std::chrono::steady_clock::now() < stop)
            std::this_thread::sleep_for(1ms);
        --running;
        ++done;
    });
    for (int i = 0; i < 6; i++) client.send("/work");
    CHECK(test::poll_until(ctx, [&] { return done.load() == 6; }));
    CHECK(most.load() >= 2);
    std::lock_guard<std::mutex> l(threads.mu);
    for (const auto& name : threads.lines) CHECK(name.rfind("rosco-worker-", 0) == 0);
}

int main() {
    for (rosco::Mode mode : {rosco::Mode::poll, rosco::Mode::io_thread, rosco::Mode::threaded}) {
        const int before = test::failures();
        try {
            udp_round_trip(mode);
            tcp_round_trip(mode);
            unix_datagram(mode);
            timed_bundle(mode);
            throwing_handlers(mode);
            threads_send_while_one_polls(mode);
            wakeup_descriptor(mode);
        } catch (const std::exception& e) {
            test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
        }
        std::printf("mode %s: %s\n", test::mode_name(mode), test::failures() == before ? "ok" : "FAILED");
    }
    const int before = test::failures();
    try {
        workers_pool();
    } catch (const std::exception& e) {
        test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    std::printf("threaded with workers: %s\n", test::failures() == before ? "ok" : "FAILED");
    return test::result("modes_test");
}
