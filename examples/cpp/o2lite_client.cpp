// o2lite_client (C++): a small O2lite client. It joins an O2 ensemble through the
// ensemble's host, offers the service "client", prints every message sent to that service
// and the ensemble's global time once its clock is synchronised, and sends /server/hello
// to the host's "server" service every second (until Ctrl-C). The C++ twin of
// examples/c/o2lite_client.c.
//
//   o2lite_client_cpp ENSEMBLE HOST:PORT  connect to the host at HOST:PORT (its TCP port;
//                                         HOST:PORT:UDP_PORT also names its UDP port,
//                                         which best-effort messages then use)
//   o2lite_client_cpp ENSEMBLE            find the host by DNS-SD discovery on the local
//                                         network
//   o2lite_client_cpp --selftest          run a host of its own in this process (not
//                                         advertised on the network), connect to it over
//                                         loopback, wait for clock sync, exchange one
//                                         message each way, exit 0
//
// Try it with rosco's command-line host, which prints the messages its services receive:
//   rosco o2lite host --service server --no-mdns myens    (note the TCP port it prints)
//   o2lite_client_cpp myens 127.0.0.1:PORT
// and send to the client from another client: rosco o2lite client --host 127.0.0.1:PORT
// myens /client/note i 60
//
// What it shows: Context::o2lite_connect, offering a service, o2 events (connection, clock
// sync), receiving O2 messages with ordinary handlers, Channel::o2_send with a timestamp
// and a transport, and global time (Channel::o2_time).
#include "rosco.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

using namespace std::chrono_literals;

namespace {

// A received message's arguments as text: ` 60 "text" 2.5 ...`.
std::string args_text(const rosco::Message& m) {
    std::ostringstream s;
    const std::string_view tags = m.typetags();
    for (std::size_t i = 0; i < tags.size(); ++i) {
        s << ' ';
        switch (tags[i]) {
            case 'i': s << m.get<std::int32_t>(i); break;
            case 'h': s << m.get<std::int64_t>(i); break;
            case 'f': s << m.get<float>(i); break;
            case 'd': s << m.get<double>(i); break;
            case 's':
            case 'S': s << '"' << m.get<std::string_view>(i) << '"'; break;
            case 'b': s << '[' << m.get<rosco::Blob>(i).size << " bytes]"; break;
            case 't': s << m.get_seconds(i); break;  // an O2 time argument: global seconds
            case 'T':
            case 'F':
            case 'B': s << (m.get<bool>(i) ? "true" : "false"); break;  // B: O2's boolean
            default: s << tags[i]; break;  // N I [ ] and the rest: the tag says it
        }
    }
    return s.str();
}

// The client. Its context runs in poll mode: handlers and events run inside poll() on
// the calling thread, so its state needs no locking. The handlers point at this object,
// so it stays where it was made (no copies, no moves).
class Client {
public:
    // Connects to the host of `ensemble` at `host_port` (std::nullopt: discovery) and
    // offers "client". Returns at once: connecting, clock sync and reconnecting go on in
    // poll().
    Client(std::string_view ensemble, std::optional<std::string_view> host_port) {
        ctx_.on_event([this](const rosco::Event& e) { on_event(e); });
        // A catch-all: only O2 messages to our services reach this context.
        messages_ = ctx_.on_any([this](const rosco::Message& m) { on_message(m); });
        ch_ = host_port ? ctx_.o2lite_connect(ensemble, *host_port) : ctx_.o2lite_connect(ensemble);
        ch_.o2_service_add("client");  // offered now, and again on every reconnection
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Runs the I/O, the events and the handlers for up to `timeout`.
    void poll(std::chrono::milliseconds timeout) { ctx_.poll(timeout); }

    // Sends /server/hello (a count, a text and our global time) now, by TCP. Not being
    // connected (yet) is reported, not thrown.
    void send_hello() {
        try {
            // Timestamp 0: deliver at once. A future global time (o2_time() + 0.5, say)
            // would make the host hold the message until then. reliable = true: TCP; false:
            // UDP if the host's UDP port is known.
            ch_.o2_send(0, true, "/server/hello", sent_ + 1, "hello from the C++ client", ch_.o2_time());
            ++sent_;
            std::printf("sent /server/hello %d\n", sent_);
        } catch (const rosco::Error& e) {
            if (e.status() != ROSCO_ERR_CLOSED) throw;
            std::printf("not connected to a host: /server/hello not sent\n");
        }
        std::fflush(stdout);
    }

    bool synchronised() const { return synchronised_; }
    int received() const { return received_; }
    int sent() const { return sent_; }

    // Polls for up to `limit` until `done()`; returns whether it is.
    template <class Pred>
    bool wait_for(Pred done, std::chrono::milliseconds limit) {
        const auto give_up = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= give_up) return false;
            poll(10ms);
        }
        return true;
    }

private:
    // Every message to the service "client" arrives here, its O2 address "!client/..."
    // or "/client/..." shown as "/client/...".
    void on_message(const rosco::Message& m) {
        std::printf("received %.*s ,%.*s%s   (global time %.3f)\n", static_cast<int>(m.address().size()),
                    m.address().data(), static_cast<int>(m.typetags().size()), m.typetags().data(),
                    args_text(m).c_str(), ch_.o2_time());
        std::fflush(stdout);
        ++received_;
    }

    // The session's news: connection, clock sync, a lost host (then it reconnects).
    void on_event(const rosco::Event& e) {
        switch (e.kind) {
            case rosco::EventKind::o2:  // "Connected { bridge_id: 1 }", "Synced { offset: .. }", ...
                std::cout << "o2: " << e.reason << '\n';
                if (e.o2_name() == "Synced") {
                    std::printf("clock synchronised: the ensemble's global time is %.3f s\n", ch_.o2_time());
                    synchronised_ = true;
                }
                break;
            case rosco::EventKind::connected:
                std::cout << "connected to the host " << e.peer << '\n';
                break;
            case rosco::EventKind::disconnected:
                std::cout << "disconnected: " << e.reason << '\n';
                synchronised_ = false;  // it synchronises again after reconnecting
                break;
            case rosco::EventKind::reconnecting:
                std::cout << "reconnecting in " << e.delay.count() << " ms (attempt " << e.attempt << ")\n";
                break;
            default:
                break;
        }
        std::cout.flush();
    }

    // Declared in this order so that the handler goes first, then the channel handle,
    // then the context (which closes the channel: the host drops our service).
    rosco::Context ctx_;  // default options: poll mode
    rosco::Channel ch_;
    rosco::Method messages_;
    bool synchronised_ = false;
    int received_ = 0;
    int sent_ = 0;
};

// Normal run: until Ctrl-C.
volatile std::sig_atomic_t stop = 0;
extern "C" void on_sigint(int) { stop = 1; }

void run(std::string_view ensemble, std::optional<std::string_view> host_port) {
    Client client(ensemble, host_port);
    std::cout << "joining ensemble '" << ensemble << "' "
              << (host_port ? "at " + std::string(*host_port) : "(looking for its host by DNS-SD)")
              << "; Ctrl-C to stop" << std::endl;
    std::signal(SIGINT, on_sigint);
    auto next = std::chrono::steady_clock::now();
    while (!stop) {
        client.poll(100ms);
        if (std::chrono::steady_clock::now() >= next) {
            client.send_hello();
            next += 1s;
        }
    }
}

// --selftest: the client's part, against a running host that counts the /server/hello
// messages it receives in `hellos`. False (with a message) at the first step that fails.
bool exchange_messages(Client& client, const std::atomic<int>& hellos) {
    // Clock sync takes about half a second; then one message each way.
    if (!client.wait_for([&] { return client.synchronised(); }, 10s)) {
        std::cerr << "o2lite_client: the clock did not synchronise\n";
        return false;
    }
    client.send_hello();
    if (client.sent() != 1) {
        std::cerr << "o2lite_client: /server/hello was not sent\n";
        return false;
    }
    if (!client.wait_for([&] { return hellos.load() > 0; }, 5s)) {
        std::cerr << "o2lite_client: the host did not receive /server/hello\n";
        return false;
    }
    if (!client.wait_for([&] { return client.received() > 0; }, 5s)) {
        std::cerr << "o2lite_client: no answer from the host\n";
        return false;
    }
    return true;
}

// --selftest: a host in this process, on a context of its own in threaded mode (its
// handlers and events run on its I/O thread, as if it were another program), and the
// client connecting to it.
bool selftest() {
    std::atomic<int> hellos{0};  // declared first: the host's handler writes it until the host goes
    rosco::Context host(rosco::Options().mode(rosco::Mode::threaded));
    host.on_event([](const rosco::Event& e) {
        // ClientJoined, ServiceAdded, ClientSynced, ...
        if (e.kind == rosco::EventKind::o2) std::cout << "host: " << e.reason << std::endl;
    });
    // mdns=0: the host is not advertised on the network; the client is told where it is.
    const rosco::Channel h = host.open("host", "o2lite-host://rosco-selftest?mdns=0");
    h.o2_service_add("server");
    // The service "server" answers /server/hello with /client/welcome.
    rosco::Method on_hello = host.on("/server/hello", [h, &hellos](const rosco::Message& m) {
        std::printf("host: received %.*s ,%.*s%s\n", static_cast<int>(m.address().size()),
                    m.address().data(), static_cast<int>(m.typetags().size()), m.typetags().data(),
                    args_text(m).c_str());
        std::fflush(stdout);
        // A host's clock is the global time.
        h.o2_send(0, true, "/client/welcome", "welcome from the host", h.o2_time());
        ++hellos;
    });
    // The host's TCP port; its UDP port is not known here, so everything goes by TCP.
    const std::string host_port = "127.0.0.1:" + std::to_string(h.port());
    std::cout << "host for ensemble 'rosco-selftest' on TCP port " << h.port() << std::endl;

    bool passed = false;
    {
        Client client("rosco-selftest", host_port);
        passed = exchange_messages(client, hellos);
    }  // the client leaves before the host goes
    std::printf("selftest %s\n", passed ? "passed" : "FAILED");
    return passed;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc == 2 && std::strcmp(argv[1], "--selftest") == 0) return selftest() ? 0 : 1;
        if (argc < 2 || argc > 3 || argv[1][0] == '-') {
            std::cerr << "usage: " << argv[0] << " ENSEMBLE [HOST:PORT[:UDP_PORT]] | --selftest" << std::endl;
            return 2;
        }
        run(argv[1], argc == 3 ? std::optional<std::string_view>(argv[2]) : std::nullopt);
        return 0;
    } catch (const rosco::Error& e) {  // a bad ensemble name or address, say
        std::cerr << "o2lite_client: " << e.what() << std::endl;
        return 1;
    }
}
