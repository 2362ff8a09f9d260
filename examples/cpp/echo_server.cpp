// echo_server (C++): prints every OSC message it receives and sends it back to its sender.
// The C++ twin of examples/c/echo_server.c.
//
//   echo_server_cpp PORT        listen on UDP PORT (0: any free port) until Ctrl-C
//   echo_server_cpp --selftest  send one message to itself over loopback, check that the
//                               echo comes back byte for byte, exit 0
//
// Try it with liblo's tools:
//   echo_server_cpp 9000 &
//   oscsend osc.udp://localhost:9000 /hello si world 42
//
// What it shows: rosco::Context in poll mode, a listening UDP channel, a catch-all
// handler (a lambda the wrapper owns), typed argument access, and Message::reply with a
// Builder that copies the message (Builder::append_args).
#include "rosco.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Prints "/address ,tags arg arg ..." for a received message: one typed get<T>() per tag.
void print_message(const rosco::Message& m) {
    std::cout << m.address() << " ," << m.typetags();
    for (std::size_t i = 0; i < m.size(); ++i) {
        switch (m.type(i)) {
            case 'i': std::cout << ' ' << m.get<std::int32_t>(i); break;
            case 'h': std::cout << ' ' << m.get<std::int64_t>(i); break;
            case 'f': std::cout << ' ' << m.get<float>(i); break;
            case 'd': std::cout << ' ' << m.get<double>(i); break;
            case 's':
            case 'S': std::cout << " \"" << m.get<std::string_view>(i) << '"'; break;
            case 'b': std::cout << " [" << m.get<rosco::Blob>(i).size << " byte blob]"; break;
            case 't': std::cout << " 0x" << std::hex << m.get<rosco::TimeTag>(i).bits << std::dec; break;
            case 'c': std::cout << " '" << m.get<rosco::Char>(i).value << '\''; break;
            case 'm': std::cout << " MIDI " << std::hex << m.get<rosco::Midi>(i).packed() << std::dec; break;
            case 'r': std::cout << " #" << std::hex << m.get<rosco::Rgba>(i).packed() << std::dec; break;
            case 'T': std::cout << " true"; break;
            case 'F': std::cout << " false"; break;
            case 'N': std::cout << " nil"; break;
            case 'I': std::cout << " impulse"; break;
            case '[': std::cout << " ["; break;
            case ']': std::cout << " ]"; break;
            default: std::cout << " ?" << m.type(i); break;
        }
    }
    std::cout << std::endl;
}

std::atomic<bool> stop{false};
extern "C" void on_signal(int) { stop = true; }

}  // namespace

int main(int argc, char** argv) {
    const bool self = argc == 2 && std::strcmp(argv[1], "--selftest") == 0;
    char* end = nullptr;
    const long port = argc == 2 && !self ? std::strtol(argv[1], &end, 10) : -1;
    if (!self && (port < 0 || port > 65535 || end == argv[1] || *end != '\0')) {
        std::cerr << "usage: " << argv[0] << " PORT | --selftest" << std::endl;
        return 2;
    }

    try {
        // Default options: poll mode, so handlers run inside ctx.poll() on this thread.
        rosco::Context ctx;
        // A listening channel: no host in the URL. The self-test stays on loopback.
        const rosco::Channel listener =
            ctx.open("echo", self ? "osc.udp://:0?bind=127.0.0.1" : "osc.udp://:" + std::to_string(port));

        // --selftest only: the bytes we sent, and how many identical echoes came back.
        std::vector<std::uint8_t> expected;
        int echoes = 0;

        // The catch-all handler. rosco::Method is RAII: keep it alive while it should run.
        rosco::Builder reply;  // reused for every echo (handlers run one at a time here)
        rosco::Method echo = ctx.on_any([&](const rosco::Message& m) {
            if (m.channel() != listener) {
                // --selftest: a message arriving anywhere else is the echo coming back to
                // our own sending channel. Compare it with what we sent.
                std::cout << "echo from " << m.source() << ": ";
                print_message(m);
                const rosco::Blob got = m.bytes();
                if (std::vector<std::uint8_t>(got.begin(), got.end()) == expected) {
                    ++echoes;
                } else {
                    std::cerr << "echo_server: the echo differs from what was sent" << std::endl;
                }
                return true;
            }
            std::cout << "from " << m.source() << ": ";
            print_message(m);
            reply.message(m.address()).append_args(m);  // same address and arguments
            m.reply(reply);                             // back to where it came from
            return true;                                // handled
        });

        if (self) {
            // One message of many types from a second channel to the listener.
            const rosco::Channel client =
                ctx.open("client", "osc.udp://127.0.0.1:" + std::to_string(listener.port()));
            const std::uint8_t blob[] = {1, 2, 3, 4, 5};
            rosco::Builder b;
            b.message("/echo/selftest")
                .add("hello", 42, 0.25, rosco::Blob(blob, sizeof blob))
                .add(rosco::ArrayBegin{}, true, rosco::Symbol{"sym"}, rosco::ArrayEnd{})
                .add(rosco::Midi{0x00, 0x90, 0x40, 0x60});
            const rosco::Blob bytes = b.bytes();
            expected.assign(bytes.begin(), bytes.end());
            client.send(b);
            // Poll until the echo is back (at most 5 s): the first turn receives and echoes
            // the message, a later one receives the echo.
            const auto give_up = std::chrono::steady_clock::now() + 5s;
            while (echoes == 0 && std::chrono::steady_clock::now() < give_up) ctx.poll(100ms);
            std::cout << "selftest " << (echoes == 1 ? "passed" : "FAILED") << std::endl;
            return echoes == 1 ? 0 : 1;
        }

        std::cout << "echoing on UDP port " << listener.port() << " (Ctrl-C to stop)" << std::endl;
        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
        while (!stop) ctx.poll(200ms);  // short timeouts, so a signal is noticed quickly
        return 0;
        // Leaving the scope destroys the Method, the Builder and the Context (which closes
        // the channels), in that order.
    } catch (const rosco::Error& e) {  // a port in use, say
        std::cerr << "echo_server: " << e.what() << std::endl;
        return 1;
    }
}
