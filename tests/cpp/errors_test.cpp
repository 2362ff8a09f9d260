// Errors as exceptions: each failure throws rosco::Error with the right status, its name
// and the library's detail text; the non-throwing forms return the same status. Exit 0 =
// pass.
#include "rosco.hpp"
#include "test_util.hpp"

#include <atomic>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>

using namespace std::chrono_literals;

namespace {

void error_contents() {
    rosco::Context ctx;
    try {
        ctx.open("bad", "osc.bogus://nowhere");
        CHECK(false);
    } catch (const rosco::Error& e) {
        CHECK_EQ(e.status(), ROSCO_ERR_ARG);
        CHECK_EQ(std::string(e.name()), std::string("ROSCO_ERR_ARG"));
        CHECK(!e.detail().empty());  // rosco_last_error() copied at the failure
        const std::string what = e.what();
        CHECK(what.find("rosco_channel_open") != std::string::npos);
        CHECK(what.find("ROSCO_ERR_ARG") != std::string::npos);
        CHECK(what.find(e.detail()) != std::string::npos);
    }
    // It is a std::runtime_error.
    bool caught = false;
    try {
        ctx.open("bad", "osc.udp://:99999");
    } catch (const std::runtime_error&) {
        caught = true;
    }
    CHECK(caught);
}

void channels() {
    rosco::Context ctx;
    CHECK_THROWS_STATUS(ctx.open("u", "not a url"), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(ctx.open("u", "osc.udp://:70000"), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(ctx.open("u", std::string("osc.udp://:0\0x", 14)), ROSCO_ERR_ARG);
    rosco::Channel in = ctx.open("in", test::udp_listen());
    CHECK_THROWS_STATUS(ctx.open("in", test::udp_listen()), ROSCO_ERR_ARG);  // name taken
    CHECK_THROWS_STATUS(ctx.channel("nope"), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(ctx.local().port(), ROSCO_ERR_UNSUPPORTED);  // no IP socket
    CHECK_THROWS_STATUS(ctx.local().close(), ROSCO_ERR_UNSUPPORTED); // _local stays

    // A stale channel after close(): every call says ROSCO_ERR_HANDLE.
    rosco::Channel copy = in;
    in.close();
    CHECK_THROWS_STATUS(in.close(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(copy.send("/x", 1), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(copy.port(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(copy.url(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(copy.stats(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(copy.flush(10ms), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(copy.send_raw(rosco::Blob("abcd", 4)), ROSCO_ERR_HANDLE);
    CHECK_EQ(copy.try_send("/x", 1), ROSCO_ERR_HANDLE);
    rosco::Builder b;
    b.message("/x");
    CHECK_THROWS_STATUS(copy.send(b), ROSCO_ERR_HANDLE);
    // The name is free again.
    rosco::Channel again = ctx.open("in", test::udp_listen());
    CHECK(again != copy);

    // A default-constructed Channel belongs to nothing.
    rosco::Channel none;
    CHECK_THROWS_STATUS(none.port(), ROSCO_ERR_HANDLE);

    // A TCP client that cannot connect: flush() times out (bounded).
    rosco::Options o;
    o.reconnect_backoff(20ms, 50ms);
    rosco::Context c2(o);
    rosco::Channel listener = c2.open("l", "osc.tcp://:0?bind=127.0.0.1");
    const std::uint16_t dead = listener.port();
    listener.close();  // nobody listens on that port any more
    rosco::Channel client = c2.open("c", test::tcp_to(dead));
    client.send("/queued", 1);
    CHECK_THROWS_STATUS(client.flush(100ms), ROSCO_ERR_TIMEOUT);
}

void sending_and_building() {
    rosco::Context ctx;
    rosco::Channel local = ctx.local();
    CHECK_THROWS_STATUS(local.send("no-slash"), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(local.send(std::string_view("/a\0b", 4)), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(local.send("/s", std::string("a\0b", 3)), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(local.send("/s", std::string_view("a\0b", 3)), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(local.send("/s", rosco::Symbol{std::string_view("a\0b", 3)}), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(local.send("/s", static_cast<const char*>(nullptr)), ROSCO_ERR_NULL);
    CHECK_THROWS_STATUS(local.send("/s", rosco::Blob(nullptr, 3)), ROSCO_ERR_NULL);
    CHECK_THROWS_STATUS(local.send("/a", rosco::ArrayEnd{}), ROSCO_ERR_ARG);  // unbalanced
    CHECK_THROWS_STATUS(local.send_raw(rosco::Blob("junk", 4)), ROSCO_ERR_ARG);  // not OSC
    CHECK_THROWS_STATUS(local.send_raw(rosco::Blob()), ROSCO_ERR_ARG);           // empty
    CHECK_THROWS_STATUS(local.send_raw(rosco::Blob(nullptr, 3)), ROSCO_ERR_NULL);
    CHECK_EQ(local.try_send("/a", rosco::ArrayBegin{}), ROSCO_ERR_ARG);
    CHECK_EQ(local.try_send(std::string_view("/a\0b", 4)), ROSCO_ERR_ARG);
    CHECK_EQ(local.try_send("/s", 1, std::string("a\0b", 3)), ROSCO_ERR_ARG);
    CHECK_EQ(local.try_send("/ok", 1, "two"), ROSCO_OK);
    // A long address goes through the heap copy and still works.
    const std::string long_address = "/" + std::string(600, 'x');
    CHECK_EQ(local.try_send(std::string_view(long_address), 1), ROSCO_OK);

    rosco::Builder b;
    CHECK_THROWS_STATUS(b.add(1), ROSCO_ERR_ARG);  // no message started
    CHECK_THROWS_STATUS(b.bundle_end(), ROSCO_ERR_ARG);  // no bundle open
    CHECK_THROWS_STATUS(b.message("x"), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(b.bytes(), ROSCO_ERR_ARG);  // empty
    b.bundle_begin(rosco::TimeTag::immediately()).message("/in").add(1);
    CHECK_THROWS_STATUS(b.bytes(), ROSCO_ERR_ARG);  // bundle still open
    CHECK_THROWS_STATUS(local.send(b), ROSCO_ERR_ARG);
    b.bundle_end();
    CHECK(b.bytes().size > 0);
    local.send(b);

    // bundle(t, fill) resets the builder when fill throws, and the exception passes on.
    bool passed = false;
    try {
        b.bundle(rosco::TimeTag::immediately(), [](rosco::Builder& x) {
            x.message("/y");
            throw std::runtime_error("fill failed");
        });
    } catch (const std::runtime_error& e) {
        passed = std::string(e.what()) == "fill failed";
    }
    CHECK(passed);
    CHECK_THROWS_STATUS(b.bytes(), ROSCO_ERR_ARG);  // reset: empty, no open bundle
    // So it is when the bundle cannot be closed: the next message is sent alone.
    CHECK_THROWS_STATUS(b.bundle(rosco::TimeTag::immediately(),
                                 [](rosco::Builder& x) { x.message("/y").array_begin(); }),
                        ROSCO_ERR_ARG);
    b.message("/after").add(1);
    local.send(b);

    // A moved-from builder has no rosco_builder: ROSCO_ERR_NULL.
    rosco::Builder moved = std::move(b);
    CHECK_THROWS_STATUS(b.message("/z"), ROSCO_ERR_NULL);
    CHECK_THROWS_STATUS(local.send(b), ROSCO_ERR_NULL);
    moved.message("/z").add(1);
    local.send(moved);
}

void messages_and_methods() {
    rosco::Context ctx;
    rosco::Channel local = ctx.local();
    CHECK_THROWS_STATUS(ctx.on("bad", [](const rosco::Message&) {}), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(ctx.on("/bad[pattern", [](const rosco::Message&) {}), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(ctx.on("/x", "iq", [](const rosco::Message&) {}), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(ctx.on("/x", "[i", [](const rosco::Message&) {}), ROSCO_ERR_ARG);
    // An empty function would fail on every message: refused at once.
    CHECK_THROWS_STATUS(ctx.on("/x", std::function<void(const rosco::Message&)>()), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(ctx.on("/x", static_cast<bool (*)(const rosco::Message&)>(nullptr)),
                        ROSCO_ERR_ARG);

    std::atomic<int> done{0};
    rosco::Method m = ctx.on("/typed", [&](const rosco::Message& msg) {
        // Wrong types and indexes.
        CHECK_THROWS_STATUS(msg.get<float>(0), ROSCO_ERR_TYPE);
        CHECK_THROWS_STATUS(msg.get<std::int64_t>(0), ROSCO_ERR_TYPE);  // no coercion here
        CHECK_THROWS_STATUS(msg.get<std::string_view>(0), ROSCO_ERR_TYPE);
        CHECK_THROWS_STATUS(msg.get<rosco::Symbol>(1), ROSCO_ERR_TYPE);
        CHECK_THROWS_STATUS(msg.get<bool>(1), ROSCO_ERR_TYPE);
        CHECK_THROWS_STATUS(msg.get<rosco::Blob>(0), ROSCO_ERR_TYPE);
        CHECK_THROWS_STATUS(msg.get<std::int32_t>(2), ROSCO_ERR_RANGE);
        CHECK_THROWS_STATUS(msg.get<rosco::Symbol>(2), ROSCO_ERR_RANGE);
        CHECK_THROWS_STATUS(msg.get<std::int32_t>(std::size_t{1} << 40), ROSCO_ERR_RANGE);
        CHECK_THROWS_STATUS(msg.type(2), ROSCO_ERR_RANGE);
        try {
            msg.get<float>(0);
        } catch (const rosco::Error& e) {
            CHECK(e.detail().find("'i'") != std::string::npos);  // "argument 0 is 'i', not 'f'"
        }
        // Re-entering poll from a handler: ROSCO_ERR_BUSY.
        CHECK_THROWS_STATUS(ctx.poll(), ROSCO_ERR_BUSY);
        // A message from _local has no IP source.
        CHECK_EQ(msg.source(), std::string());
        ++done;
    });
    local.send("/typed", 1, "s");
    CHECK(test::poll_until(ctx, [&] { return done == 1; }));

    // Removing twice: the second is stale.
    m.remove();
    CHECK_THROWS_STATUS(m.remove(), ROSCO_ERR_HANDLE);
    // A removed method through a raw handle.
    rosco::Method n = ctx.on("/n", [](const rosco::Message&) {});
    const rosco_method raw = n.handle();
    CHECK_EQ(rosco_method_remove(ctx.handle(), raw), ROSCO_OK);
    CHECK_THROWS_STATUS(n.remove(), ROSCO_ERR_HANDLE);

    // Bad log level.
    CHECK_THROWS_STATUS(ctx.on_log(static_cast<rosco::LogLevel>(9), [](rosco::LogLevel, std::string_view) {}),
                        ROSCO_ERR_ARG);
}

void contexts() {
    // Bad options.
    rosco::Options bad_mode;
    bad_mode.raw().mode = 7;
    CHECK_THROWS_STATUS(rosco::Context{bad_mode}, ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(rosco::Context{rosco::Options().max_frame(0)}, ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(rosco::Context{rosco::Options().queue_capacity(0)}, ROSCO_ERR_ARG);
    // Strings C would cut at a NUL byte.
    CHECK_THROWS_STATUS(rosco::Options().types(std::string("i\0f", 3)), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(rosco::Options().address_code(1, std::string("/a\0b", 4)), ROSCO_ERR_ARG);

    // A moved-from context: ROSCO_ERR_HANDLE everywhere, and no crash.
    rosco::Context a;
    rosco::Channel ch = a.open("in", test::udp_listen());
    rosco::Context b = std::move(a);
    CHECK(!a);
    CHECK(static_cast<bool>(b));
    CHECK_THROWS_STATUS(a.open("x", test::udp_listen()), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(a.poll(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(a.channel("in"), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(a.wakeup_fd(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(a.on("/x", [](const rosco::Message&) {}), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(a.on_event([](const rosco::Event&) {}), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(a.on_exception(nullptr), ROSCO_ERR_HANDLE);
    CHECK(b.channel("in") == ch);  // the channel moved with it
    ch.port();

    // A closed context: its channels and methods go stale; closing again is a no-op.
    rosco::Method m = b.on("/m", [](const rosco::Message&) {});
    b.close();
    b.close();
    CHECK(!b);
    CHECK_THROWS_STATUS(ch.port(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(ch.send("/x"), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(m.remove(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(b.poll(), ROSCO_ERR_HANDLE);
}

/// An exception handler that throws does not lose the exception it was given: both go
/// to std::cerr.
void throwing_exception_handler() {
    rosco::Context ctx;
    ctx.on_exception([](std::exception_ptr e, std::string_view) { std::rethrow_exception(e); });
    std::atomic<int> ran{0};
    rosco::Method m = ctx.on("/boom", [&](const rosco::Message&) {
        ++ran;
        throw std::runtime_error("the real failure");
    });
    std::ostringstream captured;
    std::streambuf* const was = std::cerr.rdbuf(captured.rdbuf());
    ctx.local().send("/boom");
    const bool polled = test::poll_until(ctx, [&] { return ran == 1; });
    std::cerr.rdbuf(was);
    CHECK(polled);
    const std::string text = captured.str();
    CHECK(text.find("the real failure") != std::string::npos);
    CHECK(text.find("exception handler threw") != std::string::npos);
}

}  // namespace

int main() {
    try {
        error_contents();
        channels();
        sending_and_building();
        messages_and_methods();
        contexts();
        throwing_exception_handler();
    } catch (const std::exception& e) {
        test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    return test::result("errors_test");
}
