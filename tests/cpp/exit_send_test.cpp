// Sending while a thread (or the program) ends: Channel::send(address, args...) builds in
// a per-thread builder that is freed with the thread's thread_local objects. A send from a
// destructor that runs after that (a static object's, on the main thread at exit; an
// earlier-constructed thread_local's, on any thread) must not reuse the freed builder: it
// builds in a temporary one. Exit 0 = pass; under ASan or valgrind a reuse also fails it.
#include "rosco.hpp"
#include "test_util.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

const std::string long_text(200, 'x');  // long enough to touch the builder's memory

/// A static object whose destructor sends a last message and checks it arrived. It is
/// destroyed after main()'s thread_local objects (the per-thread builder among them).
struct App {
    rosco::Context ctx;
    rosco::Channel out;
    std::atomic<int> hello{0};
    std::atomic<int> bye{0};
    std::string bye_text;
    rosco::Method m_hello, m_bye;

    App() {
        out = ctx.local();
        m_hello = ctx.on("/hello", "i", [this](const rosco::Message& msg) { hello += msg.get<std::int32_t>(0); });
        m_bye = ctx.on("/bye", "is", [this](const rosco::Message& msg) {
            bye += msg.get<std::int32_t>(0);
            bye_text = msg.get<std::string>(1);
        });
    }
    ~App() {
        bool ok = false;
        try {
            // Twice: the temporary builder is not kept between calls.
            out.send("/bye", 1, long_text);
            out.send("/bye", 2, long_text + "!");
            for (int i = 0; i < 100 && bye != 3; ++i) ctx.poll(10ms);
            ok = bye == 3 && bye_text == long_text + "!";
        } catch (const std::exception& e) {
            std::fprintf(stderr, "~App: send threw: %s\n", e.what());
        }
        if (!ok) {
            std::fprintf(stderr, "exit_send_test: FAILED: send from a static destructor (bye=%d)\n",
                         bye.load());
            std::fflush(nullptr);
            std::_Exit(1);
        }
        std::printf("exit_send_test: send from a static destructor after thread exit: ok\n");
        std::fflush(nullptr);
    }
};

App app;

/// Messages the worker threads' destructors send, checked on the main thread.
std::mutex seen_mu;
int thread_byes = 0;
std::string thread_text;

struct ThreadBye {
    rosco::Channel ch;
    int tag;
    ~ThreadBye() {
        try {
            ch.send("/thread/bye", tag, long_text);
            ch.send("/thread/bye", tag, long_text);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "~ThreadBye: send threw: %s\n", e.what());
        }
    }
};

void threads_ending() {
    rosco::Context ctx;
    rosco::Channel local = ctx.local();
    std::atomic<int> hellos{0};
    rosco::Method h = ctx.on("/thread/hello", [&](const rosco::Message&) { ++hellos; });
    rosco::Method b = ctx.on("/thread/bye", "is", [&](const rosco::Message& msg) {
        std::lock_guard<std::mutex> lock(seen_mu);
        thread_byes += msg.get<std::int32_t>(0);
        thread_text = msg.get<std::string>(1);
    });
    // 1. The thread_local is constructed before the thread's builder, so it is destroyed
    //    after it: its sends must not use the freed builder.
    std::thread t1([local] {
        static thread_local ThreadBye bye{local, 1};
        local.send("/thread/hello", long_text);  // creates this thread's builder
        local.send("/thread/hello", 2);
    });
    t1.join();
    // 2. The thread's first send happens while its thread_local objects are destroyed.
    std::thread t2([local] { static thread_local ThreadBye bye{local, 10}; });
    t2.join();
    // 3. A thread_local constructed after the builder goes before it (the ordinary case).
    std::thread t3([local] {
        local.send("/thread/hello", 3);
        static thread_local ThreadBye bye{local, 100};
    });
    t3.join();
    CHECK(test::poll_until(ctx, [&] {
        std::lock_guard<std::mutex> lock(seen_mu);
        return thread_byes == 2 * (1 + 10 + 100) && hellos == 3;
    }));
    std::lock_guard<std::mutex> lock(seen_mu);
    CHECK_EQ(thread_byes, 2 * (1 + 10 + 100));
    CHECK(thread_text == long_text);
    CHECK_EQ(hellos.load(), 3);
}

}  // namespace

int main() {
    try {
        app.out.send("/hello", 5);  // creates the main thread's builder (freed at exit)
        CHECK(test::poll_until(app.ctx, [] { return app.hello == 5; }));
        threads_ending();
    } catch (const std::exception& e) {
        test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    return test::result("exit_send_test");
}
