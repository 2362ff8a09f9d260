// O2lite through the C++ wrapper: a host context (threaded mode, as a separate host
// process would run) and a client context (poll mode) in one process, over loopback.
// Connection and clock sync (waited for with a deadline), services on both sides,
// messages both ways by TCP and "UDP" (the client does not know the host's UDP port, so
// its best-effort sends go by TCP too) with O2 booleans (B) and times (t, get_seconds),
// the Builder overload, a timestamped message held by the host until its time, status
// and list queries, service removal, the client leaving, and the errors: non-O2 channels
// (ROSCO_ERR_UNSUPPORTED), a client not connected yet (ROSCO_ERR_CLOSED), bad arguments
// (ROSCO_ERR_ARG). Exit 0 = pass.
//
// The host is opened with ?mdns=0 (no DNS-SD advertisement on the real network) and the
// client is given the host's address (no discovery).
#include "rosco.hpp"
#include "test_util.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

const char* const kEnsemble = "rosco-cpp-o2test";

/// Thread-safe list of lines (host handlers and events run on the host's I/O thread).
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
    /// How many lines start with `prefix` and contain `part`.
    std::size_t count(const std::string& prefix, const std::string& part = "") const {
        std::lock_guard<std::mutex> l(mu);
        std::size_t n = 0;
        for (const auto& x : lines)
            if (x.compare(0, prefix.size(), prefix) == 0 && x.find(part) != std::string::npos) ++n;
        return n;
    }
    std::string dump() const {
        std::lock_guard<std::mutex> l(mu);
        std::string s;
        for (const auto& x : lines) s += "  " + x + "\n";
        return s;
    }
};

/// Records o2 events as "NAME|REASON" (and checks o2_name() against the reason).
rosco::EventHandler record_o2_events(Record& into) {
    return [&into](const rosco::Event& e) {
        if (e.kind != rosco::EventKind::o2) {
            CHECK(e.o2_name().empty());
            return;
        }
        CHECK(!e.o2_name().empty());
        CHECK(e.reason.substr(0, e.o2_name().size()) == e.o2_name());
        into.add(std::string(e.o2_name()) + "|" + std::string(e.reason));
    };
}

/// "ADDRESS TAGS ARG..." for a received message, arguments in a compact text form.
std::string describe(const rosco::Message& m) {
    std::ostringstream s;
    const std::string_view tags = m.typetags();
    s << m.address() << ' ' << tags;
    for (std::size_t i = 0; i < tags.size(); ++i) {
        s << ' ';
        switch (tags[i]) {
            case 'B': s << (m.get<bool>(i) ? "true" : "false"); break;  // O2's boolean
            case 'i': s << m.get<std::int32_t>(i); break;
            case 'h': s << m.get<std::int64_t>(i); break;
            case 'f': s << m.get<float>(i); break;
            case 'd': s << m.get<double>(i); break;
            case 's': case 'S': s << m.get<std::string_view>(i); break;
            case 'b': s << m.get<rosco::Blob>(i).size << "B"; break;
            case 't': s << "t" << m.get<rosco::TimeTag>(i).bits << "=" << m.get_seconds(i) << "s"; break;
            default: s << tags[i];
        }
    }
    return s.str();
}

// The deleted overload: a string literal where `reliable` belongs does not compile.
template <class C, class = void>
struct literal_as_reliable : std::false_type {};
template <class C>
struct literal_as_reliable<
    C, std::void_t<decltype(std::declval<const C&>().o2_send(0.0, "/a/b", "text"))>>
    : std::true_type {};
template <class C, class = void>
struct proper_o2_send : std::false_type {};
template <class C>
struct proper_o2_send<
    C, std::void_t<decltype(std::declval<const C&>().o2_send(0, false, "/a/b", "text", 1))>>
    : std::true_type {};
static_assert(!literal_as_reliable<rosco::Channel>::value,
              "o2_send(timestamp, \"/address\", ...) must not compile");
static_assert(proper_o2_send<rosco::Channel>::value, "o2_send(0, false, address, args...)");
static_assert(static_cast<std::int32_t>(rosco::EventKind::o2) == ROSCO_EVENT_O2, "event kind");

/// Checks that `expr` throws a rosco::Error (whatever its status).
#define CHECK_THROWS_ANY(expr)                                                      \
    do {                                                                            \
        bool threw_ = false;                                                        \
        try {                                                                       \
            (void)(expr);                                                           \
        } catch (const rosco::Error&) {                                             \
            threw_ = true;                                                          \
        }                                                                           \
        if (!threw_) test::fail(__FILE__, __LINE__, #expr " did not throw");        \
    } while (0)

/// Calls on channels that are not O2lite, and a client that never reaches a host.
void errors_without_a_host() {
    rosco::Context ctx;  // poll mode: nothing happens outside poll()
    const rosco::Channel udp = ctx.open("udp", test::udp_listen());
    CHECK_THROWS_STATUS(udp.o2_send(0, true, "/server/x", 1), ROSCO_ERR_UNSUPPORTED);
    rosco::Builder b;
    b.message("/server/x").add(1);
    CHECK_THROWS_STATUS(udp.o2_send(0, false, b), ROSCO_ERR_UNSUPPORTED);
    CHECK_THROWS_STATUS(udp.o2_time(), ROSCO_ERR_UNSUPPORTED);
    CHECK_THROWS_STATUS(udp.o2_bridge_id(), ROSCO_ERR_UNSUPPORTED);
    CHECK_THROWS_STATUS(udp.o2_service_add("svc"), ROSCO_ERR_UNSUPPORTED);
    CHECK_THROWS_STATUS(udp.o2_service_remove("svc"), ROSCO_ERR_UNSUPPORTED);
    CHECK_THROWS_STATUS(udp.o2_query("svc"), ROSCO_ERR_UNSUPPORTED);
    CHECK_THROWS_STATUS(udp.o2_query_list(), ROSCO_ERR_UNSUPPORTED);
    CHECK_THROWS_STATUS(ctx.local().o2_send(0, true, "/server/x"), ROSCO_ERR_UNSUPPORTED);

    // Strings holding a NUL byte are refused before they reach C.
    CHECK_THROWS_STATUS(ctx.o2lite_connect(std::string("ens\0x", 5), "127.0.0.1:1"), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(ctx.o2lite_connect("ens", std::string("127.0.0.1:1\0", 12)), ROSCO_ERR_ARG);

    // A client whose "host" never answers: a TCP listener of ours that speaks OSC, not O2
    // (holding the port, so no other program's host can be there). The client is never
    // connected, so sends and queries are refused.
    const rosco::Channel mute = ctx.open("mute", "osc.tcp://:0?bind=127.0.0.1");
    const rosco::Channel c =
        ctx.o2lite_connect(kEnsemble, "127.0.0.1:" + std::to_string(mute.port()));
    CHECK(ctx.channel(std::string("o2lite:") + kEnsemble) == c);  // named after the ensemble
    CHECK(!c.o2_bridge_id().has_value());
    CHECK_EQ(c.o2_time(), -1.0);
    CHECK_THROWS_STATUS(c.o2_send(0, true, "/server/x", 1), ROSCO_ERR_CLOSED);
    CHECK_THROWS_STATUS(c.o2_send(0, false, b), ROSCO_ERR_CLOSED);
    CHECK_THROWS_STATUS(c.o2_query("server"), ROSCO_ERR_CLOSED);
    CHECK_THROWS_STATUS(c.o2_query_list(), ROSCO_ERR_CLOSED);
    c.o2_service_add("offline");  // remembered, offered once connected
    CHECK_THROWS_STATUS(c.o2_service_add(std::string("bad\0", 4)), ROSCO_ERR_ARG);
    // Still nothing after some polling (the client keeps trying to connect).
    for (int i = 0; i < 20; ++i) ctx.poll(10ms);
    CHECK(!c.o2_bridge_id().has_value());
    CHECK_EQ(c.o2_time(), -1.0);
    CHECK_THROWS_STATUS(c.o2_send(0, true, "/server/x"), ROSCO_ERR_CLOSED);
    c.o2_service_remove("offline");
    CHECK_THROWS_STATUS(c.o2_service_remove("offline"), ROSCO_ERR_ARG);

    c.close();
    CHECK_THROWS_STATUS(c.o2_time(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(c.o2_send(0, true, "/server/x"), ROSCO_ERR_HANDLE);
}

void host_and_client() {
    // Declared first so that they outlive both contexts (handlers write into them).
    Record host_events, client_events, at_host, at_client;
    std::mutex clock_mu;
    double host_clock_at_later = -1, client_clock_at_later = -1;
    std::optional<rosco::O2Stamp> host_stamp_later, client_stamp_later;

    // The host: threaded mode, its handlers and events on its I/O thread.
    rosco::Context host(rosco::Options().mode(rosco::Mode::threaded));
    host.on_event(record_o2_events(host_events));
    const rosco::Channel h = host.open("host", std::string("o2lite-host://") + kEnsemble + "?mdns=0");
    h.o2_service_add("server");
    h.o2_service_add("server");                                      // again: no change
    CHECK_THROWS_STATUS(h.o2_bridge_id(), ROSCO_ERR_UNSUPPORTED);    // hosts have none
    CHECK_THROWS_STATUS(h.o2_query_list(), ROSCO_ERR_UNSUPPORTED);   // queries are a client's
    CHECK(h.o2_time() >= 0);                                         // the host's clock is global time
    rosco::Method on_server = host.on("/server/*", [&](const rosco::Message& m) {
        CHECK(m.channel() == h);
        CHECK(m.bundle_time() == rosco::TimeTag());
        if (m.address() == "/server/later") {
            std::lock_guard<std::mutex> l(clock_mu);
            host_clock_at_later = h.o2_time();
            host_stamp_later = m.o2_stamp();
        }
        at_host.add(describe(m));
    });

    // The client: poll mode, everything inside client.poll().
    rosco::Context client;
    client.on_event(record_o2_events(client_events));
    const std::string host_port = "127.0.0.1:" + std::to_string(h.port());
    const rosco::Channel c = client.o2lite_connect(kEnsemble, host_port);
    // Not connected before the first poll.
    CHECK(!c.o2_bridge_id().has_value());
    CHECK_EQ(c.o2_time(), -1.0);
    CHECK_THROWS_STATUS(c.o2_send(0, true, "/server/early"), ROSCO_ERR_CLOSED);
    CHECK_THROWS_STATUS(c.o2_query("server"), ROSCO_ERR_CLOSED);
    c.o2_service_add("client");
    rosco::Method on_client = client.on("/client/*", [&](const rosco::Message& m) {
        CHECK(m.channel() == c);
        CHECK(m.bundle_time() == rosco::TimeTag());
        if (m.address() == "/client/later") {
            std::lock_guard<std::mutex> l(clock_mu);
            client_clock_at_later = c.o2_time();
            client_stamp_later = m.o2_stamp();
        }
        at_client.add(describe(m));
    });

    // Connection and clock synchronisation (about half a second on loopback).
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(test::poll_until(client, [&] { return client_events.count("Synced|") == 1; }, 10s));
    const auto sync_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    std::printf("synchronised %lld ms after connecting\n", static_cast<long long>(sync_ms.count()));
    CHECK_EQ(client_events.count("Connected|", "bridge_id: 1"), std::size_t(1));
    CHECK(c.o2_bridge_id() == std::optional<int>(1));
    CHECK(c.o2_time() >= 0);
    // The host saw the client join, offer its service and synchronise.
    CHECK(test::poll_until(client, [&] {
        return host_events.count("ClientJoined|", "bridge_id: 1") == 1 &&
               host_events.count("ServiceAdded|", "\"client\"") == 1 &&
               host_events.count("ClientSynced|") == 1;
    }, 5s));
    // The host cannot take a name a client offers. Bad service names are refused.
    CHECK_THROWS_STATUS(h.o2_service_add("client"), ROSCO_ERR_ARG);
    for (const char* bad : {"a/b", "", "!x"}) {
        CHECK_THROWS_STATUS(c.o2_service_add(bad), ROSCO_ERR_ARG);
        CHECK_THROWS_STATUS(h.o2_service_add(bad), ROSCO_ERR_ARG);
    }
    // The client is reached at its UDP port; the host's URL names its real ports.
    CHECK(c.port() != 0);
    CHECK(h.url().find(":" + std::to_string(h.port()) + "?udp_port=" +
                       std::to_string(h.o2_udp_port())) != std::string::npos);
    CHECK(c.o2_udp_port() != 0);

    // Both clocks agree on loopback: within microseconds when idle (printed), but the
    // estimate is as good as the fastest of five round trips, which a loaded machine can
    // all slow by milliseconds.
    const double tolerance = 0.05 * test::slow_factor();
    const double before = h.o2_time(), at = c.o2_time(), after = h.o2_time();
    std::printf("clock: client %+.3f ms from the host's reading\n", (at - (before + after) / 2) * 1e3);
    CHECK(at >= before - tolerance && at <= after + tolerance);

    // Client to host: by TCP, "UDP" (by TCP here) and from a Builder.
    c.o2_send(0, true, "/server/echo", 1001, 3.5f, "hello", 2.25);
    c.o2_send(0, false, "/server/echo", 1002);
    rosco::Builder b;
    b.message("/server/built").add(std::int64_t(-5), rosco::Symbol{"sym"}, true);
    c.o2_send(0, true, b);
    // Host to client; by UDP the host sends to the client's UDP port. A bool travels as
    // O2's B; a TimeTag argument is O2 time (1.5 s here), read back with get_seconds().
    // Messages are built as OSC: O2's "!service/..." address form is refused.
    const std::uint8_t blob[5] = {1, 2, 3, 4, 5};
    const rosco::TimeTag one_and_a_half(std::uint64_t(3) << 31);
    CHECK_THROWS_STATUS(h.o2_send(0, true, "!client/echo", 1), ROSCO_ERR_ARG);
    h.o2_send(0, true, "/client/echo", std::int64_t(-2), true, rosco::Blob(blob), one_and_a_half);
    h.o2_send(0, false, "/client/echo", 7);
    CHECK(test::poll_until(client, [&] { return at_host.size() == 3 && at_client.size() == 2; },
                           5s));
    CHECK(at_host.has("/server/echo ifsd 1001 3.5 hello 2.25"));
    CHECK(at_host.has("/server/echo i 1002"));
    CHECK(at_host.has("/server/built hSB -5 sym true"));
    CHECK(at_client.has("/client/echo hBbt -2 true 5B t" + std::to_string(one_and_a_half.bits) + "=1.5s"));
    CHECK(at_client.has("/client/echo i 7"));

    // A timestamped message from the host: held there until its time, so it arrives no
    // earlier than that on the client's clock (give or take the sync error).
    const double due = h.o2_time() + 0.2;
    const auto sent_at = std::chrono::steady_clock::now();
    h.o2_send(due, true, "/client/later", "x");
    CHECK(test::poll_until(client, [&] { return at_client.size() == 3; }, 5s));
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent_at).count();
    CHECK(at_client.has("/client/later s x"));
    {
        std::lock_guard<std::mutex> l(clock_mu);
        std::printf("held message: due %.4f, arrived %.4f on the client's clock (%+.3f ms)\n", due,
                    client_clock_at_later, (client_clock_at_later - due) * 1e3);
        CHECK(client_clock_at_later >= due - tolerance);
        // The O2 timestamp and the transport travel with the message.
        CHECK(client_stamp_later.has_value() && client_stamp_later->timestamp == due &&
              client_stamp_later->reliable);
    }
    CHECK(waited >= 0.2 - tolerance);
    // And one from the client to the host's own service, held until due on the host's
    // clock (which is global time itself: no tolerance needed).
    const double due2 = c.o2_time() + 0.1;
    c.o2_send(due2, false, "/server/later");
    CHECK(test::poll_until(client, [&] { return at_host.size() == 4; }, 5s));
    {
        std::lock_guard<std::mutex> l(clock_mu);
        CHECK(host_clock_at_later >= due2);
        CHECK(host_stamp_later.has_value() && host_stamp_later->timestamp == due2);
    }

    // Errors on a connected client.
    CHECK_THROWS_STATUS(c.o2_send(-1, true, "/server/x"), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(c.o2_send(std::nan(""), true, "/server/x"), ROSCO_ERR_ARG);
    CHECK_THROWS_STATUS(c.o2_send(0, true, "/server/x", rosco::Rgba{1, 2, 3, 4}), ROSCO_ERR_UNSUPPORTED);
    rosco::Builder bundle;
    bundle.bundle(rosco::TimeTag::immediately(), [](rosco::Builder& x) { x.message("/server/x").add(1); });
    CHECK_THROWS_STATUS(c.o2_send(0, true, bundle), ROSCO_ERR_ARG);  // a bundle is not an O2 message
    CHECK_THROWS_STATUS(c.o2_send(0, true, std::string("/server/x\0y", 11)), ROSCO_ERR_ARG);

    // Status and list queries, answered as o2 events.
    c.o2_query("server");
    c.o2_query_list();
    CHECK(test::poll_until(client, [&] {
        return client_events.count("Status|", "\"server\"") == 1 &&
               client_events.count("List|", "\"client\"") == 1;
    }, 5s));
    CHECK_EQ(client_events.count("List|", "\"server\""), std::size_t(1));

    // Withdrawing services.
    c.o2_service_remove("client");
    CHECK_THROWS_STATUS(c.o2_service_remove("client"), ROSCO_ERR_ARG);
    CHECK(test::poll_until(client, [&] { return host_events.count("ServiceRemoved|", "\"client\"") == 1; },
                           5s));
    h.o2_service_remove("server");
    CHECK_THROWS_STATUS(h.o2_service_remove("server"), ROSCO_ERR_ARG);
    h.o2_service_add("server");  // and back

    // The client leaves: the host notices; the channel's handle goes stale.
    c.close();
    CHECK(test::poll_until(client, [&] { return host_events.count("ClientLeft|") == 1; }, 5s));
    CHECK_THROWS_STATUS(c.o2_time(), ROSCO_ERR_HANDLE);
    CHECK_THROWS_STATUS(c.o2_send(0, true, "/server/x"), ROSCO_ERR_HANDLE);

    if (test::failures() != 0 || std::getenv("ROSCO_TEST_VERBOSE")) {
        std::fprintf(stderr, "host events:\n%sclient events:\n%sat host:\n%sat client:\n%s",
                     host_events.dump().c_str(), client_events.dump().c_str(),
                     at_host.dump().c_str(), at_client.dump().c_str());
    }
}

}  // namespace

int main() {
    try {
        errors_without_a_host();
        host_and_client();
    } catch (const std::exception& e) {
        test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    return test::result("o2lite_test");
}
