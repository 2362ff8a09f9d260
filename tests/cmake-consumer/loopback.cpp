// The C++ twin of loopback.c, through the wrapper: a UDP listener on loopback, a message
// sent to it from a second channel, delivered by poll. Built by the consumer project
// against rosco::cpp with CXX_STANDARD 11, so it compiles only if the package raises the
// standard to the C++17 that rosco.hpp needs. Exits 0 on success.
#include "rosco.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

int main() {
    try {
        rosco::Context ctx;
        const rosco::Channel in = ctx.open("in", "osc.udp://:0?bind=127.0.0.1");
        int got = 0;
        const rosco::Method method = ctx.on("/ping", "i", [&got](const rosco::Message& m) {
            if (m.get<std::int32_t>(0) == 7) ++got;
        });
        const rosco::Channel out =
            ctx.open("out", "osc.udp://127.0.0.1:" + std::to_string(in.port()));
        out.send("/ping", std::int32_t{7});
        for (int i = 0; i < 50 && got == 0; ++i) ctx.poll(std::chrono::milliseconds(100));
        std::printf("loopback_cpp: %s\n", got == 1 ? "ok" : "no message");
        return got == 1 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "loopback_cpp: %s\n", e.what());
        return 1;
    }
}
