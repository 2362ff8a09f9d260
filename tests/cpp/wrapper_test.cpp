// The C++ wrapper's API, type by type and method by method, over loopback UDP and the
// in-process channel in poll mode. Linked with wrapper_test_second_tu.cpp (the header in
// two translation units). Exit 0 = pass.
#include "rosco.hpp"
#include "test_util.hpp"

#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

std::string second_tu_describe(const rosco::Message& m);
int second_tu_local_roundtrip();
rosco::Builder second_tu_bundle(rosco::TimeTag t);

using namespace std::chrono_literals;

namespace {

void values_and_options() {
    CHECK_EQ(rosco::version(), rosco::header_version);

    // TimeTag
    CHECK_EQ(rosco::TimeTag::immediately().bits, std::uint64_t{1});
    const rosco::TimeTag t0 = rosco::TimeTag::from_unix(1700000000.25);
    CHECK(std::fabs(t0.to_unix() - 1700000000.25) < 1e-6);
    CHECK(std::fabs((t0 + 1500ms).to_unix() - 1700000001.75) < 1e-6);
    CHECK(t0 + std::chrono::seconds(-1) == t0);  // negative durations leave it unchanged
    const double now = std::chrono::duration<double>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
    CHECK(std::fabs(rosco::TimeTag::now().to_unix() - now) < 1.0);
    CHECK(std::fabs(rosco::TimeTag::from(std::chrono::system_clock::now()).to_unix() - now) < 1.0);
    CHECK(rosco::TimeTag::from_now(2s).to_unix() > now + 1.5);
    CHECK(t0 != rosco::TimeTag());

    // Packed values
    CHECK_EQ((rosco::Midi{1, 0x90, 60, 127}.packed()), std::uint32_t{0x01903C7F});
    CHECK((rosco::Midi::unpack(0x01903C7F) == rosco::Midi{1, 0x90, 60, 127}));
    CHECK_EQ((rosco::Rgba{0x11, 0x22, 0x33, 0x44}.packed()), std::uint32_t{0x11223344});
    CHECK((rosco::Rgba::unpack(0x11223344) == rosco::Rgba{0x11, 0x22, 0x33, 0x44}));

    // Blob from containers
    const std::vector<std::uint8_t> v{1, 2, 3};
    const rosco::Blob bv(v);
    CHECK_EQ(bv.size, std::size_t{3});
    CHECK(bv.data == v.data());
    const std::array<std::uint8_t, 2> a{{9, 8}};
    CHECK_EQ(rosco::Blob(a).size, std::size_t{2});
    CHECK(rosco::Blob().empty());
    const std::uint8_t raw[] = {1, 2, 3, 4, 5};
    CHECK_EQ(rosco::Blob(raw).size, std::size_t{5});  // a whole array

    // Options
    rosco::Options o;
    CHECK_EQ(o.raw().mode, ROSCO_MODE_POLL);
    CHECK_EQ(o.raw().coerce, 1);
    o.mode(rosco::Mode::threaded).coerce(false).queue_bundles(false).max_frame(4096)
        .max_stream_peers(7).queue_capacity(64).stall_timeout(2s).reconnect(false)
        .reconnect_backoff(10ms, 20ms).reconnect_retries(3).max_held_bytes(1000).trace(true, false);
    CHECK_EQ(o.raw().mode, ROSCO_MODE_THREADED);
    CHECK_EQ(o.raw().coerce, 0);
    CHECK_EQ(o.raw().queue_bundles, 0);
    CHECK_EQ(o.raw().max_frame, 4096u);
    CHECK_EQ(o.raw().max_stream_peers, 7u);
    CHECK_EQ(o.raw().queue_capacity, 64u);
    CHECK_EQ(o.raw().stall_timeout_ms, 2000u);
    CHECK_EQ(o.raw().reconnect, 0);
    CHECK_EQ(o.raw().reconnect_initial_ms, 10u);
    CHECK_EQ(o.raw().reconnect_max_ms, 20u);
    CHECK_EQ(o.raw().reconnect_retries, 3u);
    CHECK_EQ(o.raw().max_held_bytes, 1000u);
    CHECK_EQ(o.raw().trace, ROSCO_TRACE_TEXT);
    rosco::Context threaded(o);  // the options are accepted
    CHECK(static_cast<bool>(threaded));
}

// Every OSC type out through send(address, args...) and back through get<T>().
void every_type_round_trip() {
    rosco::Context ctx;
    rosco::Channel in = ctx.open("in", test::udp_listen());
    rosco::Channel out = ctx.open("out", test::udp_to(in.port()));
    CHECK(in.port() != 0);
    CHECK(ctx.channel("in") == in);
    CHECK(ctx.channel("out") != in);
    CHECK(in.url().find(std::to_string(in.port())) != std::string::npos);
    CHECK(out.url().find("127.0.0.1") != std::string::npos);
    CHECK_EQ(ctx.wakeup_fd(), -1);  // poll mode

    const std::uint8_t blob[] = {0xde, 0xad, 0xbe, 0xef, 0x00};
    const std::string s2 = "two";
    const rosco::TimeTag tt = rosco::TimeTag::from_unix(1800000000.5);
    std::atomic<int> seen{0};
    rosco::Method m = ctx.on("/all", [&](const rosco::Message& msg) {
        CHECK_EQ(msg.address(), std::string_view("/all"));
        CHECK_EQ(msg.typetags(), std::string_view("ihfdsssTFNIbScmrt[ii]h"));
        CHECK_EQ(msg.size(), std::size_t{22});
        CHECK(!msg.empty());
        CHECK_EQ(msg.type(0), 'i');
        CHECK_EQ(msg.type(17), '[');
        CHECK_EQ(msg.get<std::int32_t>(0), -7);
        CHECK_EQ(msg.get<std::int64_t>(1), std::int64_t{1} << 40);
        CHECK_EQ(msg.get<float>(2), 1.5f);
        CHECK_EQ(msg.get<double>(3), 2.25);
        CHECK_EQ(msg.get<std::string_view>(4), std::string_view("one"));
        CHECK_EQ(msg.get<std::string>(5), std::string("two"));
        CHECK(std::strcmp(msg.get<const char*>(6), "three") == 0);
        CHECK_EQ(msg.get<bool>(7), true);
        CHECK_EQ(msg.get<bool>(8), false);
        CHECK_EQ(msg.type(9), 'N');
        CHECK_EQ(msg.type(10), 'I');
        const rosco::Blob b = msg.get<rosco::Blob>(11);
        CHECK_EQ(b.size, sizeof blob);
        CHECK(std::memcmp(b.data, blob, sizeof blob) == 0);
        CHECK_EQ(msg.get<rosco::Symbol>(12).value, std::string_view("sym"));
        CHECK_EQ(msg.get<std::string_view>(12), std::string_view("sym"));  // s accepts S
        CHECK_EQ(msg.get<rosco::Char>(13).value, 'x');
        CHECK((msg.get<rosco::Midi>(14) == rosco::Midi{0, 0x90, 64, 100}));
        CHECK((msg.get<rosco::Rgba>(15) == rosco::Rgba{255, 128, 0, 255}));
        CHECK(msg.get<rosco::TimeTag>(16) == tt);
        CHECK_EQ(msg.get<std::int32_t>(18), 1);
        CHECK_EQ(msg.get<std::int32_t>(19), 2);
        CHECK_EQ(msg.get<std::int64_t>(21), std::int64_t{-5});
        // Non-throwing probes
        CHECK(!msg.try_get<float>(0));
        CHECK(!msg.try_get<std::int32_t>(99));
        CHECK(!msg.try_get<rosco::Symbol>(4));  // an 's' is not an 'S'
        CHECK_EQ(msg.try_get<double>(3).value_or(0), 2.25);
        // Where it came from
        CHECK_EQ(msg.source(), "127.0.0.1:" + std::to_string(out.port()));
        CHECK(msg.channel() == in);
        CHECK(msg.bundle_time() == rosco::TimeTag());
        CHECK(std::fabs(msg.received().to_unix() - rosco::TimeTag::now().to_unix()) < 5.0);
        CHECK(!msg.o2_stamp().has_value());  // an OSC message
        const rosco::Blob raw = msg.bytes();
        CHECK(raw.size > 4 && std::memcmp(raw.data, "/all", 4) == 0);
        CHECK(msg.raw() != nullptr);
        CHECK_EQ(msg.context().id, ctx.handle().id);
        CHECK_EQ(second_tu_describe(msg), "/all,ihfdsssTFNIbScmrt[ii]h:-7");
        ++seen;
        return true;
    });
    CHECK(static_cast<bool>(m));
    out.send("/all", std::int32_t{-7}, std::int64_t{1} << 40, 1.5f, 2.25, "one", s2,
             std::string_view("three-and-more").substr(0, 5), true, false, nullptr,
             rosco::Impulse{}, rosco::Blob(blob, sizeof blob), rosco::Symbol{"sym"},
             rosco::Char{'x'}, rosco::Midi{0, 0x90, 64, 100}, rosco::Rgba{255, 128, 0, 255}, tt,
             rosco::ArrayBegin{}, 1, static_cast<short>(2), rosco::ArrayEnd{}, -5L);
    CHECK(test::poll_until(ctx, [&] { return seen == 1; }));
    const rosco::Stats st = in.stats();
    CHECK_EQ(st.packets_in, std::uint64_t{1});
    CHECK(st.bytes_in > 0);
    CHECK_EQ(out.stats().packets_out, std::uint64_t{1});
}

// Builder: messages, nested bundles, arrays, bytes, reset, append_args, send(Builder),
// send_raw; bundle handlers; reply and the sender receiving it.
void builder_bundles_and_replies() {
    rosco::Context ctx;
    rosco::Channel in = ctx.open("in", test::udp_listen());
    rosco::Channel out = ctx.open("out", test::udp_to(in.port()));

    std::vector<std::string> log;
    std::vector<rosco::TimeTag> bundle_times;
    ctx.on_bundle([&](rosco::TimeTag t) { log.push_back("start"); bundle_times.push_back(t); },
                  [&](rosco::TimeTag) { log.push_back("end"); });
    rosco::Method any = ctx.on_any([&](const rosco::Message& msg) {
        std::string line(msg.address());
        line += ' ';
        line += msg.typetags();
        if (msg.bundle_time() != rosco::TimeTag()) line += " (bundled)";
        log.push_back(line);
        return false;  // pass on
    });
    // The echo: copies the arguments of /echo into a reply.
    rosco::Method echo = ctx.on("/echo", [&](const rosco::Message& msg) {
        rosco::Builder r;
        r.message("/echoed").append_args(msg);
        msg.reply(r);
    });
    std::string echoed;
    rosco::Method echoed_m = ctx.on("/echoed", [&](const rosco::Message& msg) {
        echoed = msg.typetags();
        CHECK(msg.channel() == out);  // replies arrive on the sender's socket
        CHECK_EQ(msg.get<rosco::Symbol>(1).value, std::string_view("S"));
        CHECK_EQ(msg.get<std::int32_t>(4), 5);
        msg.reply("/ack", "from", std::string_view("reply"));  // and back again
    });
    int acks = 0;
    rosco::Method ack = ctx.on("/ack", "ss", [&](const rosco::Message& msg) {
        CHECK_EQ(msg.get<std::string_view>(1), std::string_view("reply"));
        ++acks;
    });

    rosco::Builder b;
    b.message("/echo").add(1.0, rosco::Symbol{"S"}, rosco::Blob(), rosco::ArrayBegin{})
        .add(5, rosco::Impulse{}).array_end().add(nullptr, true, rosco::Char{'c'},
        rosco::Midi{1, 2, 3, 4}, rosco::Rgba{5, 6, 7, 8}, rosco::TimeTag(99), std::int64_t{3});
    out.send(b);
    CHECK(test::poll_until(ctx, [&] { return acks == 1; }));
    CHECK_EQ(echoed, std::string("dSb[iI]NTcmrth"));

    // Bundles: nested, via bundle(t, fill) and begin/end; immediate timetags.
    log.clear();
    bundle_times.clear();
    const rosco::TimeTag past = rosco::TimeTag::from_unix(1000000000.0);
    b.bundle(rosco::TimeTag::immediately(), [&](rosco::Builder& x) {
        x.message("/b/1").add(1);
        x.bundle_begin(past).message("/b/2").add("x").bundle_end();
        x.message("/b/3");
    });
    const rosco::Blob bytes = b.bytes();
    CHECK(bytes.size > 16 && std::memcmp(bytes.data, "#bundle", 8) == 0);
    const std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());
    out.send(b);
    CHECK(test::poll_until(ctx, [&] { return log.size() >= 7; }));
    const std::vector<std::string> want = {"start", "/b/1 i (bundled)", "start",
                                           "/b/2 s (bundled)", "end", "/b/3  (bundled)", "end"};
    CHECK(log == want);
    CHECK(bundle_times.size() == 2);

    // The same bytes again, raw.
    log.clear();
    out.send_raw(rosco::Blob(copy));
    CHECK(test::poll_until(ctx, [&] { return log.size() >= 7; }));
    CHECK(log == want);

    // A bundle built in the other translation unit.
    log.clear();
    out.send(second_tu_bundle(rosco::TimeTag::immediately()));
    CHECK(test::poll_until(ctx, [&] { return log.size() >= 4; }));
    CHECK((log == std::vector<std::string>{"start", "/second/a i (bundled)",
                                           "/second/b f (bundled)", "end"}));
    ctx.on_bundle(nullptr, nullptr);

    // reset() empties: sending an empty builder fails.
    b.reset();
    CHECK_THROWS_STATUS(out.send(b), ROSCO_ERR_ARG);
    // A lone message's bytes.
    b.message("/m").add(1);
    CHECK_EQ(b.bytes().size, std::size_t{12});  // "/m\0\0" ",i\0\0" + 4
}

// Method ordering and flow: true stops a literal delivery, false passes it on; patterns,
// typespecs with coercion, detach and remove.
void methods_and_flow() {
    rosco::Context ctx;
    rosco::Channel local = ctx.local();
    std::string trace;
    rosco::Method first = ctx.on("/flow", [&](const rosco::Message&) { trace += 'a'; return false; });
    rosco::Method second = ctx.on("/flow", [&](const rosco::Message&) { trace += 'b'; return true; });
    rosco::Method third = ctx.on("/flow", [&](const rosco::Message&) { trace += 'c'; return true; });
    rosco::Method pattern = ctx.on("/fl?w", [&](const rosco::Message&) { trace += 'p'; });
    local.send("/flow");
    CHECK(test::poll_until(ctx, [&] { return trace.size() >= 2; }));
    ctx.poll(20ms);
    CHECK_EQ(trace, std::string("ab"));  // b handled it: c and the later pattern skipped

    second.remove();
    CHECK(!second);
    trace.clear();
    local.send("/flow");
    CHECK(test::poll_until(ctx, [&] { return trace.size() >= 2; }));
    ctx.poll(20ms);
    CHECK_EQ(trace, std::string("ac"));

    // Typespecs, with coercion (default on): d,h -> i,f.
    int coerced = 0;
    rosco::Method typed = ctx.on("/typed", "if", [&](const rosco::Message& msg) {
        CHECK_EQ(msg.typetags(), std::string_view("if"));
        CHECK_EQ(msg.get<std::int32_t>(0), 3);
        CHECK_EQ(msg.get<float>(1), 4.0f);
        ++coerced;
    });
    rosco::Method none = ctx.on("/typed", "", [&](const rosco::Message& msg) {
        CHECK(msg.empty());
        ++coerced;
    });
    local.send("/typed", 3.0, std::int64_t{4});
    local.send("/typed");
    local.send("/typed", "no");  // matches neither
    CHECK(test::poll_until(ctx, [&] { return coerced == 2; }));

    // detach(): the method outlives its Method object.
    int detached = 0;
    {
        rosco::Method d = ctx.on("/detached", [&](const rosco::Message&) { ++detached; });
        const rosco_method h = d.detach();
        CHECK(h.id != 0);
        CHECK(!d);
    }
    local.send("/detached");
    CHECK(test::poll_until(ctx, [&] { return detached == 1; }));

    // The other translation unit's round trip.
    CHECK_EQ(second_tu_local_roundtrip(), 42);
}

// Events and log: "bound" after opening a listener (from the I/O loop: here, in poll()),
// debug log lines.
void events_and_log() {
    rosco::Context ctx;
    std::vector<rosco::EventKind> kinds;
    std::uint16_t bound_port = 0;
    rosco::Channel bound_channel;
    ctx.on_event([&](const rosco::Event& e) {
        kinds.push_back(e.kind);
        if (e.kind == rosco::EventKind::bound) {
            bound_port = e.port;
            bound_channel = e.channel;
        }
    });
    std::atomic<int> log_lines{0};
    ctx.on_log(rosco::LogLevel::debug, [&](rosco::LogLevel level, std::string_view text) {
        CHECK(level >= rosco::LogLevel::error && level <= rosco::LogLevel::debug);
        CHECK(!text.empty());
        ++log_lines;
    });
    rosco::Channel in = ctx.open("in", test::udp_listen());
    CHECK(test::poll_until(ctx, [&] { return !kinds.empty(); }));
    CHECK(!kinds.empty() && kinds[0] == rosco::EventKind::bound);
    CHECK_EQ(bound_port, in.port());
    CHECK(bound_channel == in);
    CHECK(log_lines > 0);  // the event is logged at debug level

    // A malformed datagram: event with a reason and a peer.
    std::string reason, peer;
    ctx.on_event([&](const rosco::Event& e) {
        if (e.kind == rosco::EventKind::malformed) {
            reason = std::string(e.reason);
            peer = std::string(e.peer);
        }
    });
    rosco::Channel out = ctx.open("out", test::udp_to(in.port()));
    const char junk[] = "not osc";
    out.send_raw(rosco::Blob(junk, 7));
    CHECK(test::poll_until(ctx, [&] { return !reason.empty(); }));
    CHECK(peer.find("127.0.0.1:") == 0);
    CHECK_EQ(in.stats().malformed, std::uint64_t{1});
    ctx.on_event(nullptr);
    ctx.on_log(rosco::LogLevel::error, nullptr);

    // try_send: a status instead of an exception.
    CHECK_EQ(out.try_send("/fine", 1), ROSCO_OK);
    CHECK_EQ(out.try_send("no-slash", 1), ROSCO_ERR_ARG);
    CHECK_EQ(out.try_send("/nul", std::string("a\0b", 3)), ROSCO_ERR_ARG);

    // flush() on a datagram channel returns at once.
    out.flush(100ms);

    // close(): every copy goes stale.
    rosco::Channel copy = out;
    out.close();
    CHECK_THROWS_STATUS(copy.port(), ROSCO_ERR_HANDLE);
}

void accept_names_and_patterns() {
    rosco::Context ctx;
    rosco::Channel server = ctx.open("server", "osc.tcp://:0?bind=127.0.0.1");
    CHECK_EQ(server.name(), std::string("server"));
    std::vector<std::string> peers;
    rosco::Channel asked_for;
    ctx.on_accept([&](const rosco::Channel& listener, std::string_view peer) {
        asked_for = listener;
        peers.emplace_back(peer);
        return false;
    });
    std::string reason;
    ctx.on_event([&](const rosco::Event& e) {
        if (e.kind == rosco::EventKind::disconnected && e.channel == server)
            reason = std::string(e.reason);
    });
    rosco::Channel refused = ctx.open("refused", test::tcp_to(server.port()));
    CHECK(test::poll_until(ctx, [&] { return !reason.empty(); }));
    CHECK_EQ(reason, std::string("refused by the accept filter"));
    CHECK(peers.size() == 1 && peers[0].find("127.0.0.1:") == 0);
    CHECK(asked_for == server);
    refused.close();

    // Without the handler the next client is taken, and its message arrives.
    ctx.on_accept(nullptr);
    int got = 0;
    rosco::Method m = ctx.on("/in", [&](const rosco::Message&) { ++got; });
    rosco::Channel client = ctx.open("client", test::tcp_to(server.port()));
    client.send("/in", 1);
    CHECK(test::poll_until(ctx, [&] { return got == 1; }));
    CHECK_EQ(peers.size(), std::size_t{1});
    CHECK_EQ(client.name(), std::string("client"));

    CHECK(rosco::pattern_match("/synth/*/freq", "/synth/1/freq"));
    CHECK(!rosco::pattern_match("/synth/[!0-9]", "/synth/1"));
    CHECK_THROWS_STATUS(rosco::pattern_match("/synth/{a,b", "/synth/a"), ROSCO_ERR_ARG);
}

// A source is named by the host name a channel URL used for it, or as the application says.
void source_names() {
    rosco::Context ctx;
    rosco::Channel in = ctx.open("in", "osc.udp://:0?bind=127.0.0.1");
    std::vector<std::string> names;
    rosco::Method m = ctx.on("/n", [&](const rosco::Message& msg) { names.push_back(msg.source_name()); });
    rosco::Channel out = ctx.open("out", "osc.udp://localhost:" + std::to_string(in.port()));
    out.send("/n");
    CHECK(test::poll_until(ctx, [&] { return names.size() == 1; }));
    const std::string long_name(100, 'x');  // longer than the first buffer tried
    ctx.set_source_name("127.0.0.1", out.port(), long_name);
    out.send("/n");
    CHECK(test::poll_until(ctx, [&] { return names.size() == 2; }));
    ctx.set_source_name("127.0.0.1", out.port(), "");
    ctx.local().send("/n");
    CHECK(test::poll_until(ctx, [&] { return names.size() == 3; }));
    CHECK(names == (std::vector<std::string>{"localhost", long_name, ""}));
    CHECK_THROWS_STATUS(ctx.set_source_name("nowhere", 0, "x"), ROSCO_ERR_ARG);
}

void decoding_alone() {
    rosco::Builder b;
    b.bundle_begin(rosco::TimeTag::immediately());
    b.message("/a").add(1);
    b.message("/b").add("two");
    b.bundle_end();
    const rosco::Blob bytes = b.bytes();
    std::vector<std::uint8_t> packet(bytes.data, bytes.data + bytes.size);
    std::vector<std::string> seen;
    rosco::decode(packet, [&](const rosco::Message& m) {
        seen.emplace_back(m.address());
        CHECK(m.bundle_time() == rosco::TimeTag::immediately());
    });
    CHECK(seen == (std::vector<std::string>{"/a", "/b"}));
    packet.pop_back();
    CHECK_THROWS_STATUS(rosco::decode(packet, [](const rosco::Message&) {}), ROSCO_ERR_ARG);
}

// Codec options: allowed types and address compression both ways, checks on what is sent.
void codec_options() {
    rosco::Context ctx(rosco::Options().types("if").address_code(7, "/synth/1/freq")
                           .check_address(true).ascii_only(true).require_typetags(true));
    rosco::Channel in = ctx.open("in", test::udp_listen());
    rosco::Channel out = ctx.open("out", test::udp_to(in.port()));
    std::atomic<int> seen{0};
    rosco::Method m = ctx.on("/synth/1/freq", [&](const rosco::Message& msg) {
        CHECK_EQ(msg.get<std::int32_t>(0), 440);
        ++seen;
    });
    out.send("/synth/1/freq", 440);
    CHECK(test::poll_until(ctx, [&] { return seen == 1; }));
    CHECK_EQ(in.stats().bytes_in, std::uint64_t{16});  // "/" and the code, not the address
    CHECK_THROWS_STATUS(out.send("/synth/1/freq", "sine"), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(out.send("/a b", 1), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(rosco::Context(rosco::Options().types("iz")), ROSCO_ERR_ARG);
}

void subscriptions() {
    rosco::Context ctx;
    rosco::Channel in = ctx.open("in", test::udp_listen());
    rosco::Channel out = ctx.open("out", test::udp_to(in.port()));
    rosco::Subscription typed = ctx.subscribe("/typed", "i", 4);
    rosco::Subscription notes = ctx.subscribe("/note/*", 2);
    notes.also("/cc", "i");
    out.send("/note/on", 60);
    out.send("/cc", 7);
    out.send("/note/off", 60);  // the third for a queue of two
    // The third is waited for too: the first two may be read before it is in the socket.
    CHECK(test::poll_until(ctx, [&] { return notes.waiting() == 2 && notes.dropped() == 1; }));
    std::vector<std::string> got;
    int first = 0;
    CHECK(notes.take([&](const rosco::Message& m) {
        got.emplace_back(m.address());
        first = m.get<std::int32_t>(0);
        CHECK(m.channel() == in);
    }));
    CHECK(notes.take([&](const rosco::Message& m) { got.emplace_back(m.address()); }));
    CHECK(!notes.take([&](const rosco::Message&) { got.emplace_back("?"); }, 10ms));
    CHECK(got == (std::vector<std::string>{"/note/on", "/cc"}));
    CHECK_EQ(first, 60);
    CHECK_EQ(notes.dropped(), std::uint64_t{1});
    // What the handler throws comes back out of take().
    out.send("/note/x", 1);
    CHECK(test::poll_until(ctx, [&] { return notes.waiting() == 1; }));
    bool threw = false;
    try {
        notes.take([](const rosco::Message&) { throw std::runtime_error("from the handler"); });
    } catch (const std::runtime_error&) {
        threw = true;
    }
    CHECK(threw);
    // Moved, and outliving its context.
    rosco::Subscription moved = std::move(notes);
    CHECK_THROWS_STATUS(ctx.subscribe("/bad["), ROSCO_ERR_ARG);
    ctx.close();
    // Nothing can arrive any more: take() says so at once instead of waiting.
    CHECK_THROWS_STATUS(moved.take([](const rosco::Message&) {}, 60s), ROSCO_ERR_CLOSED);
}

}  // namespace

int main() {
    try {
        values_and_options();
        every_type_round_trip();
        builder_bundles_and_replies();
        methods_and_flow();
        events_and_log();
        accept_names_and_patterns();
        source_names();
        subscriptions();
        decoding_alone();
        codec_options();
    } catch (const std::exception& e) {
        test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    return test::result("wrapper_test");
}
