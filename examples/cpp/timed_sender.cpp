// timed_sender (C++): sends an OSC bundle whose timetag lies DELAY_MS in the future, so
// that a receiver holding bundles until due (rosco and liblo both do) delivers it then.
// The C++ twin of examples/c/timed_sender.c.
//
//   timed_sender_cpp URL DELAY_MS  send the bundle to URL, e.g. osc.udp://localhost:9000
//   timed_sender_cpp --selftest    send one to a listener of its own over loopback and
//                                  check it is delivered no earlier than its timetag, exit 0
//
// Try it with the echo server: `echo_server_cpp 9000` in one terminal, then
//   timed_sender_cpp osc.udp://localhost:9000 1500
// and the server prints the messages one and a half seconds later.
//
// What it shows: rosco::TimeTag (NTP 32.32 time), building a bundle with
// Builder::bundle(time, fill), sending it on a channel opened from a URL, and how a
// handler sees the bundle's time (Message::bundle_time).
#include "rosco.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

using namespace std::chrono_literals;

namespace {

// Sends a bundle due `delay` from now on `ch` and returns its timetag.
rosco::TimeTag send_timed(const rosco::Channel& ch, std::chrono::milliseconds delay) {
    const rosco::TimeTag due = rosco::TimeTag::from_now(delay);
    rosco::Builder b;
    b.bundle(due, [](rosco::Builder& in) {  // everything added in here shares `due`
        in.message("/timed/hello").add("sent at", rosco::TimeTag::now());
        in.message("/timed/count").add(2);
    });
    ch.send(b);
    ch.flush(2000ms);  // returns at once for UDP; for TCP it waits until the bundle is written
    return due;
}

bool selftest() {
    const auto delay = 200ms;
    // Default options: poll mode, and bundles with a future timetag held until due.
    rosco::Context ctx;
    const rosco::Channel listener = ctx.open("in", "osc.udp://:0?bind=127.0.0.1");

    int count = 0, early = 0;
    rosco::TimeTag seen_due;
    rosco::Method timed = ctx.on("/timed/*", [&](const rosco::Message& m) {
        const rosco::TimeTag now = rosco::TimeTag::now();
        const double late_ms = (now.to_unix() - m.bundle_time().to_unix()) * 1000.0;
        std::printf("%s delivered %.3f ms after its bundle time\n",
                    std::string(m.address()).c_str(), late_ms);
        if (late_ms < 0) ++early;
        seen_due = m.bundle_time();
        ++count;
    });

    const rosco::Channel sender =
        ctx.open("out", "osc.udp://127.0.0.1:" + std::to_string(listener.port()));
    const rosco::TimeTag due = send_timed(sender, delay);

    // Poll until both messages are in (or 5 s pass).
    const auto give_up = std::chrono::steady_clock::now() + delay + 5s;
    while (count < 2 && std::chrono::steady_clock::now() < give_up) ctx.poll(100ms);

    if (count != 2) std::cerr << "timed_sender: " << count << " of 2 messages arrived\n";
    if (early) std::cerr << "timed_sender: " << early << " messages arrived early\n";
    if (count && seen_due != due) std::cerr << "timed_sender: wrong bundle time\n";
    const bool passed = count == 2 && early == 0 && seen_due == due;
    std::printf("selftest %s\n", passed ? "passed" : "FAILED");
    return passed;
}

}  // namespace

int main(int argc, char** argv) {
    const bool self = argc == 2 && std::strcmp(argv[1], "--selftest") == 0;
    char* end = nullptr;
    const long delay_ms = argc == 3 ? std::strtol(argv[2], &end, 10) : -1;
    if (!self && (argc != 3 || delay_ms < 0 || end == argv[2] || *end != '\0')) {
        std::cerr << "usage: " << argv[0] << " URL DELAY_MS | --selftest" << std::endl;
        return 2;
    }
    try {
        if (self) return selftest() ? 0 : 1;
        rosco::Context ctx;
        const rosco::Channel out = ctx.open("out", argv[1]);
        const rosco::TimeTag due = send_timed(out, std::chrono::milliseconds(delay_ms));
        std::printf("sent a bundle to %s, due at %.3f (Unix time)\n", argv[1], due.to_unix());
        return 0;
    } catch (const rosco::Error& e) {  // a bad URL, or a TCP peer that never accepted
        std::cerr << "timed_sender: " << e.what() << std::endl;
        return 1;
    }
}
