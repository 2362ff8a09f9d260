// The wrapper's packet hooks (Context::set_hooks) over real UDP sockets: transforming both
// ways, a tap, a throwing hook (dropped and reported), removal, refusals, a stale channel;
// the O2lite <-> OSC bridges as Methods, whose destruction ends them; thread start and
// stop handlers (Options::on_thread).
#include "test_util.hpp"

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::vector<std::uint8_t> scrambled(rosco::Blob packet) {
    std::vector<std::uint8_t> v(packet.data, packet.data + packet.size);
    for (auto& b : v) b ^= 0x5a;
    return v;
}

rosco::Verdict scramble(const rosco::Channel&, rosco::Blob packet, rosco::PacketOut& out) {
    const std::vector<std::uint8_t> v = scrambled(packet);
    out.append(rosco::Blob(v.data(), v.size()));
    return rosco::Verdict::Replace;
}

void hooks() {
    std::atomic<int> last{-1}, heard{0}, tapped{0}, reported{0};
    std::string where;
    rosco::Context ctx;
    ctx.on_exception([&](std::exception_ptr, std::string_view w) {
        where = std::string(w);
        ++reported;
    });
    const rosco::Channel rx = ctx.open("rx", test::udp_listen());
    const rosco::Channel tx = ctx.open("tx", test::udp_to(rx.port()));
    rosco::Method m = ctx.on("/m", "i", [&](const rosco::Message& msg) {
        last = msg.get<std::int32_t>(0);
        ++heard;
    });

    // Scrambled on the way out, unscrambled on the way in.
    rosco::Channel seen_on;
    ctx.set_hooks(rx,
                  [&](const rosco::Channel& ch, rosco::Blob p, rosco::PacketOut& out) {
                      seen_on = ch;
                      return scramble(ch, p, out);
                  },
                  nullptr);
    ctx.set_hooks(tx, nullptr, scramble);
    tx.send("/m", 1);
    CHECK(test::poll_until(ctx, [&] { return heard == 1; }));
    CHECK_EQ(last.load(), 1);
    CHECK(seen_on == rx);

    // Only one side scrambling: the listener cannot read it (counted as malformed).
    ctx.set_hooks(tx, nullptr, nullptr);
    tx.send("/m", 2);
    CHECK(test::poll_until(ctx, [&] { return rx.stats().malformed == 1; }));
    CHECK_EQ(heard.load(), 1);

    // A tap passes packets on as they are.
    ctx.set_hooks(rx,
                  [&](const rosco::Channel&, rosco::Blob p, rosco::PacketOut&) {
                      tapped += static_cast<int>(p.size);
                      return rosco::Verdict::Pass;
                  },
                  nullptr);
    tx.send("/m", 3);
    CHECK(test::poll_until(ctx, [&] { return heard == 2; }));
    CHECK_EQ(last.load(), 3);
    CHECK_EQ(tapped.load(), 12);

    // A hook that throws drops the packet, and the exception is reported.
    ctx.set_hooks(tx, nullptr, [](const rosco::Channel&, rosco::Blob, rosco::PacketOut&) -> rosco::Verdict {
        throw std::runtime_error("no key");
    });
    tx.send("/m", 4);
    CHECK_EQ(reported.load(), 1);
    CHECK_EQ(where, std::string("outgoing packet hook"));
    ctx.set_hooks(tx, nullptr, nullptr);
    tx.send("/m", 5);
    CHECK(test::poll_until(ctx, [&] { return heard == 3; }));
    CHECK_EQ(last.load(), 5);  // 4 never left
    CHECK_EQ(tapped.load(), 24);

    // "_local" has no incoming side; its outgoing hook sees what it dispatches.
    const rosco::Channel local = ctx.local();
    CHECK_THROWS_STATUS(ctx.set_hooks(local, scramble, nullptr), ROSCO_ERR_UNSUPPORTED);
    ctx.set_hooks(local, nullptr, [&](const rosco::Channel&, rosco::Blob p, rosco::PacketOut&) {
        tapped += static_cast<int>(p.size);
        return rosco::Verdict::Pass;
    });
    // Refused, the channel keeps the hooks it had.
    CHECK_THROWS_STATUS(ctx.set_hooks(local, scramble, nullptr), ROSCO_ERR_UNSUPPORTED);
    local.send("/m", 6);
    CHECK(test::poll_until(ctx, [&] { return heard == 4; }));
    CHECK_EQ(tapped.load(), 36);
    ctx.set_hooks(local, nullptr, nullptr);

    // Closing a channel destroys its hooks (and what they hold).
    {
        auto probe = std::make_shared<int>(0);
        const std::weak_ptr<int> alive = probe;
        const rosco::Channel brief = ctx.open("brief", test::udp_listen());
        ctx.set_hooks(brief, [probe](const rosco::Channel&, rosco::Blob, rosco::PacketOut&) {
            return rosco::Verdict::Pass;
        }, nullptr);
        probe.reset();
        CHECK(!alive.expired());
        brief.close();
        CHECK(alive.expired());
    }

    // A stale channel is refused, and its hooks are not kept.
    const rosco::Channel gone = ctx.open("gone", test::udp_listen());
    gone.close();
    CHECK_THROWS_STATUS(ctx.set_hooks(gone, scramble, nullptr), ROSCO_ERR_HANDLE);
}

void bridges() {
    std::mutex mu;
    std::vector<std::string> at_synth, at_client;
    rosco::Context host(rosco::Options().mode(rosco::Mode::threaded));
    rosco::Context client;
    const rosco::Channel hub = host.open("host", "o2lite-host://rosco-cpp-hooks?mdns=0");
    const rosco::Channel o2 = client.o2lite_connect("rosco-cpp-hooks", "127.0.0.1:" + std::to_string(hub.port()));
    o2.o2_service_add("client");
    const rosco::Channel synth_in = client.open("synth-in", test::udp_listen());
    rosco::Method on_freq = client.on("/freq", "f", [&](const rosco::Message& m) {
        std::lock_guard<std::mutex> l(mu);
        at_synth.push_back(std::string(m.address()) + " " + std::to_string(m.get<float>(0)));
    });
    rosco::Method on_echo = client.on("/client/echo", "i", [&](const rosco::Message& m) {
        std::lock_guard<std::mutex> l(mu);
        at_client.push_back(std::string(m.address()) + " " + std::to_string(m.get<std::int32_t>(0)));
    });
    const rosco::Channel to_synth = host.open("to-synth", test::udp_to(synth_in.port()));
    rosco::Method out_bridge = host.o2_bridge_to_osc(hub, "synth", to_synth, true);
    const rosco::Channel osc_in = host.open("osc-in", test::udp_listen());
    rosco::Method in_bridge = host.osc_bridge_to_o2(osc_in, hub, "client", true, true);
    CHECK_THROWS_STATUS(host.osc_bridge_to_o2(osc_in, hub, std::string("a\0b", 3), true, true),
                        ROSCO_ERR_ARG);

    CHECK(test::poll_until(client, [&] { return o2.o2_bridge_id().has_value(); }, 10000ms));
    o2.o2_send(0, true, "/synth/freq", 440.0f);
    const auto count = [&](const std::vector<std::string>& v) {
        std::lock_guard<std::mutex> l(mu);
        return v.size();
    };
    CHECK(test::poll_until(client, [&] { return count(at_synth) == 1; }, 10000ms));
    const rosco::Channel feeder = client.open("feeder", test::udp_to(osc_in.port()));
    feeder.send("/echo", 7);
    CHECK(test::poll_until(client, [&] { return count(at_client) == 1; }, 10000ms));
    {
        std::lock_guard<std::mutex> l(mu);
        CHECK_EQ(at_synth[0], std::string("/freq 440.000000"));
        CHECK_EQ(at_client[0], std::string("/client/echo 7"));
    }
    // The bridge ends with its Method. A new one without the prefix then carries a
    // second message on the same path, after the first: had the first gone through, it
    // would have arrived before.
    in_bridge = rosco::Method();
    in_bridge = host.osc_bridge_to_o2(osc_in, hub, "client", false, true);
    feeder.send("/echo", 8);
    feeder.send("/client/echo", 9);
    CHECK(test::poll_until(client, [&] { return count(at_client) == 2; }, 10000ms));
    {
        std::lock_guard<std::mutex> l(mu);
        CHECK_EQ(at_client.back(), std::string("/client/echo 9"));
    }
    // O2lite channels take no packet hooks.
    CHECK_THROWS_STATUS(host.set_hooks(hub, nullptr, scramble), ROSCO_ERR_UNSUPPORTED);
}

void thread_hooks() {
    std::mutex mu;
    std::vector<std::string> started, stopped;
    std::atomic<bool> on_started{false};
    {
        rosco::Context ctx(rosco::Options()
                               .mode(rosco::Mode::threaded)
                               .workers(1)
                               .on_thread(
                                   [&](std::string_view name) {
                                       std::lock_guard<std::mutex> l(mu);
                                       started.emplace_back(name);
                                   },
                                   [&](std::string_view name) {
                                       std::lock_guard<std::mutex> l(mu);
                                       stopped.emplace_back(name);
                                       throw std::runtime_error("written to std::cerr, not thrown on");
                                   }));
        rosco::Method m = ctx.on("/w", [&](const rosco::Message&) {
            std::lock_guard<std::mutex> l(mu);
            on_started = started.size() == 2;
        });
        const rosco::Channel rx = ctx.open("rx", test::udp_listen());
        ctx.open("tx", test::udp_to(rx.port())).send("/w");
        CHECK(test::poll_until(ctx, [&] { return on_started.load(); }));
    }
    // Both threads started before the callback ran, and stopped before the context went.
    std::lock_guard<std::mutex> l(mu);
    CHECK_EQ(started.size(), std::size_t{2});
    CHECK_EQ(stopped.size(), std::size_t{2});
    for (const char* name : {"rosco-io", "rosco-worker-0"}) {
        CHECK(std::find(started.begin(), started.end(), name) != started.end());
        CHECK(std::find(stopped.begin(), stopped.end(), name) != stopped.end());
    }
}

}  // namespace

int main() {
    hooks();
    bridges();
    thread_hooks();
    return test::result("hooks_test");
}
