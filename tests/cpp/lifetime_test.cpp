// Handler lifetime and moves: every handler the wrapper takes is destroyed exactly once,
// at the documented moment (Method removal, Context destruction, replacement, failed
// registration), never while it runs; every RAII type moves correctly. Run it under
// valgrind or ASan to also see no leak and no double free. Exit 0 = pass.
#include "rosco.hpp"
#include "test_util.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

using namespace std::chrono_literals;

namespace {

/// Counts the live copies of every Probe and how many "identities" were destroyed: each
/// Probe shares a Token with its copies, so a Token dies exactly when the last copy of
/// one handler does. A handler destroyed twice would crash or show under valgrind/ASan;
/// one never destroyed keeps its Token alive.
std::atomic<int> live_probes{0};
std::atomic<int> tokens_created{0};
std::atomic<int> tokens_destroyed{0};

struct Token {
    Token() { ++tokens_created; }
    Token(const Token&) = delete;
    ~Token() { ++tokens_destroyed; }
};

struct Probe {
    std::shared_ptr<Token> token;
    std::atomic<int>* calls;
    explicit Probe(std::shared_ptr<Token> t, std::atomic<int>* c = nullptr) : token(std::move(t)), calls(c) { ++live_probes; }
    Probe(const Probe& o) : token(o.token), calls(o.calls) { ++live_probes; }
    Probe(Probe&& o) noexcept : token(std::move(o.token)), calls(o.calls) { ++live_probes; }
    Probe& operator=(const Probe&) = delete;
    ~Probe() { --live_probes; }
    bool operator()(const rosco::Message&) const {
        if (calls) ++*calls;
        return true;
    }
};

/// A fresh token and a weak reference to watch it.
std::pair<std::shared_ptr<Token>, std::weak_ptr<Token>> token() {
    auto t = std::make_shared<Token>();
    std::weak_ptr<Token> w = t;
    return {std::move(t), w};
}

void removal_frees_the_handler() {
    rosco::Context ctx;
    std::atomic<int> calls{0};

    // 1. Destroying the Method object removes the method and frees its handler.
    {
        auto [t, w] = token();
        {
            rosco::Method m = ctx.on("/a", Probe(std::move(t), &calls));
            CHECK(!w.expired());
            ctx.local().send("/a");
            CHECK(test::poll_until(ctx, [&] { return calls == 1; }));
        }
        CHECK(w.expired());
        CHECK_EQ(live_probes.load(), 0);  // every copy of the handler destroyed, none twice
        ctx.local().send("/a");
        ctx.poll(20ms);
        CHECK_EQ(calls.load(), 1);  // removed: not called again
    }
    // 2. Method::remove().
    {
        auto [t, w] = token();
        rosco::Method m = ctx.on("/b", Probe(std::move(t)));
        CHECK(!w.expired());
        const int before = tokens_destroyed;
        m.remove();
        CHECK(w.expired());
        CHECK_EQ(tokens_destroyed.load(), before + 1);
        CHECK_EQ(live_probes.load(), 0);
    }
    // 3. A failed registration frees the handler at once (and throws).
    {
        auto [t, w] = token();
        const int before = tokens_destroyed;
        CHECK_THROWS_STATUS(ctx.on("/c", "q", Probe(std::move(t))), ROSCO_ERR_ARG);
        CHECK(w.expired());
        CHECK_EQ(tokens_destroyed.load(), before + 1);
    }
    // 4. A std::function handler (copyable, type-erased) and a move-only one.
    {
        auto [t, w] = token();
        std::function<void(const rosco::Message&)> f = [p = Probe(std::move(t))](const rosco::Message&) {};
        rosco::Method m = ctx.on("/d", f);
        f = nullptr;  // the wrapper holds its own copy
        CHECK(!w.expired());
        m = rosco::Method();  // move-assigning over it removes the method
        CHECK(w.expired());
    }
    {
        auto [t, w] = token();
        auto owned = std::make_unique<Probe>(std::move(t));
        rosco::Method m = ctx.on("/e", [o = std::move(owned)](const rosco::Message&) { return o != nullptr; });
        CHECK(!w.expired());
    }
    CHECK_EQ(live_probes.load(), 0);
}

void context_destruction_frees_handlers() {
    auto [t1, w1] = token();
    auto [t2, w2] = token();
    auto [t3, w3] = token();
    auto [te, we] = token();
    auto [tl, wl] = token();
    auto [tb, wb] = token();
    auto [tx, wx] = token();
    rosco::Method outlives;
    {
        rosco::Context ctx;
        // Detached: stays registered until the context goes.
        ctx.on("/detached", Probe(std::move(t1))).detach();
        // A Method object that outlives its context.
        outlives = ctx.on("/outlives", Probe(std::move(t2)));
        // A Method destroyed with the context in the same scope.
        rosco::Method scoped = ctx.on_any(Probe(std::move(t3)));
        ctx.on_event([p = Probe(std::move(te))](const rosco::Event&) {});
        ctx.on_log(rosco::LogLevel::error, [p = Probe(std::move(tl))](rosco::LogLevel, std::string_view) {});
        ctx.on_bundle([p = Probe(std::move(tb))](rosco::TimeTag) {}, nullptr);
        ctx.on_exception([p = Probe(std::move(tx))](std::exception_ptr, std::string_view) {});
        CHECK(!w1.expired() && !w2.expired() && !w3.expired());
        CHECK(!we.expired() && !wl.expired() && !wb.expired() && !wx.expired());
    }
    // The Context is gone: every handler with it, the detached one included.
    CHECK(w1.expired());
    CHECK(w2.expired());
    CHECK(w3.expired());
    CHECK(we.expired() && wl.expired() && wb.expired() && wx.expired());
    CHECK(static_cast<bool>(outlives));
    CHECK_THROWS_STATUS(outlives.remove(), ROSCO_ERR_HANDLE);  // harmless, nothing freed twice
    CHECK_EQ(live_probes.load(), 0);
}

void replacing_callbacks_frees_the_old_one() {
    rosco::Context ctx;
    auto [t1, w1] = token();
    auto [t2, w2] = token();
    ctx.on_event([p = Probe(std::move(t1))](const rosco::Event&) {});
    ctx.on_event([p = Probe(std::move(t2))](const rosco::Event&) {});
    CHECK(w1.expired());
    CHECK(!w2.expired());
    ctx.on_event(nullptr);
    CHECK(w2.expired());

    auto [t3, w3] = token();
    auto [t4, w4] = token();
    ctx.on_bundle([p = Probe(std::move(t3))](rosco::TimeTag) {}, [p = Probe(std::move(t4))](rosco::TimeTag) {});
    ctx.on_bundle(nullptr, nullptr);
    CHECK(w3.expired() && w4.expired());
    CHECK_EQ(live_probes.load(), 0);
}

void removal_inside_the_handler() {
    rosco::Context ctx;
    auto [t, w] = token();
    rosco::Method self;
    std::atomic<int> calls{0};
    bool alive_during_call = false;
    self = ctx.on("/once", [&, p = Probe(std::move(t))](const rosco::Message&) {
        ++calls;
        self.remove();  // removes itself while running
        alive_during_call = p.token != nullptr && !w.expired();  // still here
        return true;
    });
    ctx.local().send("/once");
    ctx.local().send("/once");
    CHECK(test::poll_until(ctx, [&] { return calls >= 1; }));
    ctx.poll(20ms);
    CHECK_EQ(calls.load(), 1);
    CHECK(alive_during_call);
    CHECK(w.expired());  // freed once the delivery finished
    CHECK_EQ(live_probes.load(), 0);
}

void moves() {
    std::atomic<int> calls{0};
    auto [t, w] = token();

    // Context: move construction and assignment; handlers move along.
    rosco::Context a;
    rosco::Method m = a.on("/moved", Probe(std::move(t), &calls));
    rosco::Channel local = a.local();
    rosco::Context b(std::move(a));
    CHECK(!a && static_cast<bool>(b));
    local.send("/moved");
    CHECK(test::poll_until(b, [&] { return calls == 1; }));
    rosco::Context c;
    auto [t2, w2] = token();
    rosco::Method other = c.on("/other", Probe(std::move(t2)));
    c = std::move(b);  // c's old context is destroyed, with its handler
    CHECK(w2.expired());
    CHECK_THROWS_STATUS(other.remove(), ROSCO_ERR_HANDLE);
    local.send("/moved");
    CHECK(test::poll_until(c, [&] { return calls == 2; }));
    c = std::move(c);  // self-move is a no-op
    CHECK(static_cast<bool>(c));

    // Method: move construction and assignment.
    rosco::Method m2(std::move(m));
    CHECK(!m && static_cast<bool>(m2));
    rosco::Method m3;
    m3 = std::move(m2);
    CHECK(!m2 && static_cast<bool>(m3));
    CHECK(!w.expired());
    m3.remove();
    CHECK(w.expired());

    // Builder: move construction and assignment keep the contents.
    rosco::Builder b1;
    b1.message("/built").add(7);
    rosco::Builder b2(std::move(b1));
    rosco::Builder b3;
    b3.message("/replaced");
    b3 = std::move(b2);
    std::atomic<int> got{0};
    rosco::Method built = c.on("/built", "i", [&](const rosco::Message& msg) { got = msg.get<std::int32_t>(0); });
    c.local().send(b3);
    CHECK(test::poll_until(c, [&] { return got == 7; }));
    CHECK_THROWS_STATUS(b1.bytes(), ROSCO_ERR_NULL);
    CHECK_THROWS_STATUS(b2.bytes(), ROSCO_ERR_NULL);
    CHECK_EQ(live_probes.load(), 0);
}

// A Context destroyed from inside one of its own handlers: allowed; rosco frees it when
// the poll() running the handler returns, in poll mode; on its own I/O thread in
// threaded mode.
void destroyed_from_its_handler() {
    {
        auto [t, w] = token();
        auto [t2, w2] = token();
        std::optional<rosco::Context> ctx(std::in_place);
        rosco::Method m = ctx->on("/die", [&, p = Probe(std::move(t))](const rosco::Message&) {
            ctx.reset();
            CHECK(p.token != nullptr);  // still alive while it runs
        });
        ctx->on_bundle(nullptr, [p = Probe(std::move(t2))](rosco::TimeTag) {});
        rosco::Builder b;
        b.bundle(rosco::TimeTag::immediately(), [](rosco::Builder& x) { x.message("/die"); });
        ctx->local().send(b);
        rosco::Context* raw = &*ctx;
        // A bounded loop of single polls: the handler destroys the object mid-call.
        for (int i = 0; i < 200 && ctx; ++i) raw->poll(10ms);
        CHECK(!ctx);
        CHECK(w.expired());
        CHECK(w2.expired());
    }
    {
        auto [t, w] = token();
        std::atomic<bool> done{false};
        auto ctx = std::make_unique<rosco::Context>(rosco::Options().mode(rosco::Mode::threaded));
        rosco::Context* raw = ctx.get();
        rosco::Method m = raw->on("/die", [&, p = Probe(std::move(t))](const rosco::Message&) {
            ctx.reset();  // on the I/O thread
            done = true;
        });
        raw->local().send("/die");
        const auto until = std::chrono::steady_clock::now() + 5s;
        while (!done && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
        CHECK(done.load());
        // The context goes when the handler returns, on the I/O thread: wait for the free.
        while (!w.expired() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
        CHECK(w.expired());
    }
    CHECK_EQ(live_probes.load(), 0);
}

// Threaded mode: destroying the Context while a handler runs on the I/O thread waits for
// it; the handler is not destroyed under its own feet.
void destroyed_while_a_handler_runs() {
    auto [t, w] = token();
    std::atomic<bool> entered{false}, finished{false}, intact{false};
    {
        rosco::Context ctx(rosco::Options().mode(rosco::Mode::threaded));
        rosco::Method m = ctx.on("/slow", [&, p = Probe(std::move(t))](const rosco::Message&) {
            entered = true;
            std::this_thread::sleep_for(100ms);
            intact = p.token != nullptr && !w.expired();
            finished = true;
        });
        m.detach();
        ctx.local().send("/slow");
        const auto until = std::chrono::steady_clock::now() + 5s;
        while (!entered && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
        CHECK(entered.load());
    }  // ~Context joins the I/O thread
    CHECK(finished.load());
    CHECK(intact.load());
    CHECK(w.expired());
    CHECK_EQ(live_probes.load(), 0);
}

// Replacing the exception handler waits, as replacing the others does, for a call of the
// old one running on another thread: once on_exception() returns, what it used may go.
void replacing_the_exception_handler_waits_for_it() {
    rosco::Context ctx(rosco::Options().mode(rosco::Mode::threaded));
    std::atomic<bool> entered{false}, finished{false};
    ctx.on_exception([&](std::exception_ptr, std::string_view) {
        entered = true;
        std::this_thread::sleep_for(100ms);
        finished = true;
    });
    rosco::Method m = ctx.on("/boom", [](const rosco::Message&) { throw std::runtime_error("x"); });
    ctx.local().send("/boom");
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!entered && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
    CHECK(entered.load());
    ctx.on_exception(nullptr);
    CHECK(finished.load());
}

// close() on one thread while another sets handlers on the same Context: the other's calls
// fail with rosco::Error, nothing is used after it is freed (ASan in the sanitized build).
void closed_while_another_thread_sets_handlers() {
    for (int round = 0; round < 200; ++round) {
        rosco::Context ctx;
        std::atomic<bool> go{false};
        std::thread t([&] {
            go = true;
            for (int i = 0; i < 50; ++i) {
                try {
                    ctx.on_event([](const rosco::Event&) {});
                    ctx.on_exception([](std::exception_ptr, std::string_view) {});
                } catch (const rosco::Error&) {
                }
            }
        });
        while (!go) std::this_thread::yield();
        ctx.close();
        t.join();
        CHECK(!ctx);
    }
}

// A raw thread_user with its free function is taken over by one context only.
std::atomic<int> raw_user_frees{0};
void free_raw_user(void* user) {
    delete static_cast<int*>(user);
    ++raw_user_frees;
}

void a_raw_thread_user_goes_to_one_context() {
    rosco::Options o;
    o.mode(rosco::Mode::threaded);
    o.raw().thread_user = new int(1);
    o.raw().thread_user_free = &free_raw_user;
    const rosco::Options copy = o;
    { rosco::Context first(o); }
    CHECK_EQ(raw_user_frees.load(), 1);
    CHECK_THROWS_STATUS(rosco::Context(o), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(rosco::Context(copy), ROSCO_ERR_ARG);
    CHECK_EQ(raw_user_frees.load(), 1);
    rosco::Options both;
    both.raw().thread_user = new int(2);
    both.raw().thread_user_free = &free_raw_user;
    both.on_thread([](std::string_view) {}, nullptr);
    CHECK_THROWS_STATUS(rosco::Context(both), ROSCO_ERR_ARG);
    free_raw_user(both.raw().thread_user);  // never taken over: still the caller's
    // Moved from, Options no longer own it: the moved-to ones do.
    rosco::Options moving;
    moving.mode(rosco::Mode::threaded);
    moving.raw().thread_user = new int(3);
    moving.raw().thread_user_free = &free_raw_user;
    rosco::Options moved = std::move(moving);
    CHECK_THROWS_STATUS(rosco::Context(moving), ROSCO_ERR_ARG);
    { rosco::Context taker(moved); }
    CHECK_EQ(raw_user_frees.load(), 3);
}

}  // namespace

int main() {
    try {
        removal_frees_the_handler();
        context_destruction_frees_handlers();
        replacing_callbacks_frees_the_old_one();
        removal_inside_the_handler();
        moves();
        destroyed_from_its_handler();
        destroyed_while_a_handler_runs();
        replacing_the_exception_handler_waits_for_it();
        closed_while_another_thread_sets_handlers();
        a_raw_thread_user_goes_to_one_context();
    } catch (const std::exception& e) {
        test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    CHECK_EQ(live_probes.load(), 0);                         // no copy leaked or destroyed twice
    CHECK_EQ(tokens_destroyed.load(), tokens_created.load()); // every handler destroyed once
    std::printf("lifetime_test: %d handlers, each destroyed once\n", tokens_created.load());
    return test::result("lifetime_test");
}
