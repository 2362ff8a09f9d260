// Removing a Method waits for its handler: once ~Method, Method::remove() or an assignment
// over a Method returns, the handler is not running on another thread (the I/O thread in
// threaded mode, the polling thread in io-thread mode) and no call enters it any more. So
// an object owning a Method whose handler captures `this` can be deleted while messages
// arrive. A handler may still remove its own Method, or delete the object owning it,
// without waiting for itself. Exit 0 = pass (under ASan a use-after-free also fails it).
#include "rosco.hpp"
#include "test_util.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

using namespace std::chrono_literals;

namespace {

/// How many calls of a Synth handler are between entering and leaving the user's code.
std::atomic<int> inside{0};
/// Handler calls that began after their Method's removal had returned, and members
/// destroyed while a handler was still inside.
std::atomic<int> late_calls{0};
std::atomic<int> destroyed_while_inside{0};
/// Synths with an id up to this one have had their Method destroyed (ids only grow).
std::atomic<long> removed_upto{0};
long next_id = 0;

/// Destroyed after the Synth's Method (members go in reverse order): notices a handler
/// still running then.
struct Sentinel {
    ~Sentinel() {
        if (inside.load() != 0) ++destroyed_while_inside;
    }
};

/// The usual pattern: an object owning a Method whose handler uses `this`.
struct Synth {
    Sentinel sentinel;
    long id;
    std::chrono::microseconds work;
    std::atomic<bool>* entered;
    float freq = 0;
    long count = 0;
    rosco::Method m;  // last: removed first when the Synth goes

    Synth(rosco::Context& ctx, long ident, std::chrono::microseconds w, std::atomic<bool>* e)
        : id(ident), work(w), entered(e) {
        m = ctx.on("/freq", "f", [this, ident](const rosco::Message& msg) {
            // `ident` lives in the handler (rosco's), so it is safe to read even if *this
            // were gone: it detects a call entering after removal.
            if (ident <= removed_upto.load()) ++late_calls;
            ++inside;
            if (entered) *entered = true;
            const auto until = std::chrono::steady_clock::now() + work;
            while (std::chrono::steady_clock::now() < until) {
            }
            freq = msg.get<float>(0);  // writes *this after the work
            ++count;
            --inside;
        });
    }
};

/// Runs poll() on another thread (io-thread mode runs handlers inside poll()).
class Poller {
public:
    explicit Poller(rosco::Context& ctx) : thread_([this, &ctx] {
        while (!stop_) ctx.poll(2ms);
    }) {}
    ~Poller() {
        stop_ = true;
        thread_.join();
    }

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

bool wait_for(const std::atomic<bool>& flag, std::chrono::milliseconds limit = 5000ms) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!flag && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100us);
    return flag;
}

/// Deleting the object while its handler runs on another thread waits for the handler.
/// Deterministic: the handler is inside a 50 ms stretch of work when the delete begins.
void destroy_waits(rosco::Mode mode) {
    rosco::Context ctx(rosco::Options().mode(mode));
    std::unique_ptr<Poller> poller;
    if (mode == rosco::Mode::io_thread) poller = std::make_unique<Poller>(ctx);
    std::atomic<bool> entered{false};
    auto* s = new Synth(ctx, ++next_id, 50ms, &entered);
    ctx.local().send("/freq", 440.0f);
    CHECK(wait_for(entered));
    delete s;  // ~Method waits for the handler
    removed_upto = next_id;
    CHECK_EQ(inside.load(), 0);
    CHECK_EQ(destroyed_while_inside.load(), 0);
    if (inside.load() != 0) {
        std::fprintf(stderr, "%s: ~Method returned while the handler ran\n", test::mode_name(mode));
        std::this_thread::sleep_for(100ms);  // let it finish on freed memory before we go on
    }
}

/// Method::remove() and move-assignment over a Method wait the same way.
void remove_and_assign_wait(rosco::Mode mode) {
    rosco::Context ctx(rosco::Options().mode(mode));
    std::unique_ptr<Poller> poller;
    if (mode == rosco::Mode::io_thread) poller = std::make_unique<Poller>(ctx);
    for (int how = 0; how < 2; ++how) {
        std::atomic<bool> entered{false};
        std::atomic<bool> finished{false};
        rosco::Method m = ctx.on("/slow", [&](const rosco::Message&) {
            entered = true;
            std::this_thread::sleep_for(30ms);
            finished = true;
        });
        ctx.local().send("/slow");
        CHECK(wait_for(entered));
        if (how == 0) {
            m.remove();
        } else {
            m = ctx.on("/other", [](const rosco::Message&) {});
        }
        CHECK(finished.load());
        if (!finished) std::this_thread::sleep_for(100ms);  // do not leave it on dead locals
    }
}

/// Many objects deleted at random moments while messages flow: never a handler inside an
/// object being destroyed, never a call entering after its Method's removal returned.
void stress(rosco::Mode mode, std::chrono::milliseconds duration) {
    rosco::Context ctx(rosco::Options().mode(mode).queue_capacity(1 << 16));
    std::unique_ptr<Poller> poller;
    if (mode == rosco::Mode::io_thread) poller = std::make_unique<Poller>(ctx);
    const rosco::Channel local = ctx.local();
    std::atomic<bool> stop{false};
    std::thread sender([&] {
        while (!stop) {
            for (int i = 0; i < 4; ++i) (void)local.try_send("/freq", 1.0f);  // a full queue drops
            std::this_thread::sleep_for(100us);
        }
    });
    long rounds = 0;
    unsigned seed = 12345;
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
        const long id = ++next_id;
        auto* s = new Synth(ctx, id, 20us, nullptr);
        seed = seed * 1103515245u + 12345u;
        std::this_thread::sleep_for(std::chrono::microseconds(50 + (seed >> 16) % 500));
        delete s;
        removed_upto = id;
        CHECK_EQ(inside.load(), 0);
        ++rounds;
    }
    stop = true;
    sender.join();
    poller.reset();
    CHECK_EQ(late_calls.load(), 0);
    CHECK_EQ(destroyed_while_inside.load(), 0);
    std::printf("%s: %ld objects deleted under traffic\n", test::mode_name(mode), rounds);
}

/// Removal from inside the handler does not wait for itself: removing its own Method,
/// deleting the object owning it, removing another Method.
void removal_from_the_handler(rosco::Mode mode) {
    rosco::Context ctx(rosco::Options().mode(mode));
    const auto run = [&](const std::atomic<bool>& done) {
        if (mode == rosco::Mode::threaded) return wait_for(done);
        return test::poll_until(ctx, [&] { return done.load(); });
    };
    {
        std::atomic<bool> done{false};
        rosco::Method self;
        self = ctx.on("/self", [&](const rosco::Message&) {
            self.remove();
            done = true;
        });
        ctx.local().send("/self");
        CHECK(run(done));
        CHECK(!self);
    }
    {
        struct Owner {
            std::atomic<bool>* done;
            rosco::Method m;
        };
        std::atomic<bool> done{false};
        auto* o = new Owner{&done, {}};
        o->m = ctx.on("/owner", [o](const rosco::Message&) {
            std::atomic<bool>* d = o->done;
            delete o;  // destroys the Method whose handler this is
            *d = true;
        });
        ctx.local().send("/owner");
        CHECK(run(done));
    }
    {
        std::atomic<bool> done{false};
        std::atomic<int> other_calls{0};
        rosco::Method other = ctx.on("/other", [&](const rosco::Message&) { ++other_calls; });
        rosco::Method killer = ctx.on("/kill", [&](const rosco::Message&) {
            other = rosco::Method();
            done = true;
        });
        ctx.local().send("/kill");
        CHECK(run(done));
        ctx.local().send("/other");
        if (mode == rosco::Mode::threaded) std::this_thread::sleep_for(20ms);
        else ctx.poll(20ms);
        CHECK_EQ(other_calls.load(), 0);
    }
}

/// A handler that removes (or assigns over, once or twice) its own Method and goes on
/// running: the Method destroyed meanwhile on another thread still waits for that call (it
/// returned at once, and the owner was freed under the running handler).
void removed_inside_then_destroyed_elsewhere() {
    rosco::Context ctx(rosco::Options().mode(rosco::Mode::threaded));
    for (int assign : {0, 1, 2}) {
        struct Owner {
            rosco::Method m;
        };
        std::atomic<bool> entered{false}, finished{false};
        auto owner = std::make_unique<Owner>();
        Owner* o = owner.get();
        o->m = ctx.on("/once", [&, o](const rosco::Message&) {
            if (assign == 0) o->m.remove();
            for (int i = 0; i < assign; ++i) o->m = ctx.on("/other", [](const rosco::Message&) {});
            entered = true;
            std::this_thread::sleep_for(test::scaled(100ms));
            finished = true;
        });
        ctx.local().send("/once");
        CHECK(wait_for(entered));
        owner.reset();  // waits for the handler, still running on the I/O thread
        CHECK(finished.load());
    }
}

/// With workers, a handler that removes its own Method lets one of its calls do it, as the
/// header says; the others run on, and the Method's destruction waits for them.
void workers_one_call_removes_its_method() {
    rosco::Context ctx(rosco::Options().mode(rosco::Mode::threaded).workers(4));
    for (int round = 0; round < 200; ++round) {
        std::atomic<int> calls{0};
        std::atomic_flag removing = ATOMIC_FLAG_INIT;
        rosco::Method m;
        m = ctx.on("/x", [&](const rosco::Message&) {
            if (!removing.test_and_set()) m.remove();
            std::this_thread::sleep_for(100us);
            ++calls;
        });
        for (int i = 0; i < 4; ++i) ctx.local().send("/x");
        const auto until = std::chrono::steady_clock::now() + test::scaled(5s);
        while (calls == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100us);
        CHECK(calls > 0);
        // `m` is destroyed here, waiting for the calls under way.
    }
}

/// Every exception a handler throws reaches an exception handler while the handler is
/// being replaced on another thread (a call finding the old one closed wrote to std::cerr).
void exceptions_reported_while_the_handler_is_replaced() {
    rosco::Context ctx(rosco::Options().mode(rosco::Mode::threaded).workers(3));
    std::atomic<int> thrown{0}, reported{0};
    const auto count = [&](std::exception_ptr, std::string_view) { ++reported; };
    ctx.on_exception(count);
    rosco::Method m = ctx.on("/boom", [&](const rosco::Message&) {
        ++thrown;
        throw std::runtime_error("boom");
    });
    std::atomic<bool> stop{false};
    std::thread sender([&] {
        while (!stop) {
            ctx.local().send("/boom");
            std::this_thread::sleep_for(20us);
        }
    });
    const auto until = std::chrono::steady_clock::now() + test::scaled(3s);
    while (thrown < 2000 && std::chrono::steady_clock::now() < until) {
        ctx.on_exception(count);
        std::this_thread::yield();
    }
    stop = true;
    sender.join();
    const auto settle = std::chrono::steady_clock::now() + 5s;
    while (reported < thrown && std::chrono::steady_clock::now() < settle) std::this_thread::sleep_for(1ms);
    CHECK(thrown > 0);
    CHECK_EQ(reported.load(), thrown.load());
}

}  // namespace

int main() {
    try {
        for (rosco::Mode mode : {rosco::Mode::threaded, rosco::Mode::io_thread}) {
            destroy_waits(mode);
            remove_and_assign_wait(mode);
            stress(mode, 300ms);
        }
        for (rosco::Mode mode : {rosco::Mode::poll, rosco::Mode::io_thread, rosco::Mode::threaded})
            removal_from_the_handler(mode);
        removed_inside_then_destroyed_elsewhere();
        workers_one_call_removes_its_method();
        exceptions_reported_while_the_handler_is_replaced();
    } catch (const std::exception& e) {
        test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    return test::result("method_race_test");
}
