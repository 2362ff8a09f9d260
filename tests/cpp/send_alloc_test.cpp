// Channel::send(address, args...) allocates nothing on the C++ side once the thread's
// builder exists (DESIGN §1: no allocation on an audio thread when sending): the global
// operator new is replaced to count calls made on this thread while sending. (rosco's
// own buffers come from Rust's allocator, and are reused after the first send too.)
// Exit 0 = pass.
#include "rosco.hpp"
#include "test_util.hpp"

#include <cstdlib>
#include <new>
#include <string>

namespace {
thread_local bool counting = false;
thread_local long allocations = 0;
}  // namespace

// noinline: calls must go through these symbols, so that a tool replacing operator new
// and delete (valgrind does) replaces both halves of every pair, never just one.
__attribute__((noinline)) void* operator new(std::size_t n) {
    if (counting) ++allocations;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace std::chrono_literals;

int main() {
    try {
        rosco::Context ctx;
        rosco::Channel in = ctx.open("in", test::udp_listen());
        rosco::Channel out = ctx.open("out", test::udp_to(in.port()));
        int received = 0;
        rosco::Method m = ctx.on("/audio", [&](const rosco::Message& msg) {
            received += msg.get<std::int32_t>(0) >= 0;
        });
        const std::string name = "voice";
        const std::uint8_t blob[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        auto send_once = [&](int i) {
            out.send("/audio", i, 0.5f, 0.25, std::int64_t{i}, name, std::string_view("level"),
                     "const char", true, nullptr, rosco::Blob(blob, sizeof blob),
                     rosco::Symbol{"sym"}, rosco::Midi{0, 0x90, 60, 100},
                     rosco::TimeTag::immediately());
        };
        // Is our operator new the one in use? (Under valgrind it is not: valgrind replaces
        // it, and the count below would be vacuous.)
        counting = true;
        void* volatile probe = ::operator new(sizeof(int));  // a call, not elidable
        ::operator delete(probe);
        const bool ours = allocations == 1;
        counting = false;
        allocations = 0;
        if (!ours) std::printf("send_alloc_test: operator new is replaced by a tool; not counted\n");

        send_once(0);  // warm-up: the thread's builder and buffers grow here
        counting = true;
        for (int i = 1; i <= 200; ++i) send_once(i);
        const rosco::Status s = out.try_send("/audio", 201, std::string_view("x"));
        counting = false;
        CHECK_EQ(s, ROSCO_OK);
        CHECK_EQ(allocations, 0L);

        // Failing, try_send neither throws nor allocates: a NUL byte the wrapper finds, an
        // unbalanced array the library refuses, a channel closed meanwhile.
        rosco::Channel gone = ctx.open("gone", test::udp_to(in.port()));
        rosco::Channel stale = gone;
        gone.close();
        counting = true;
        const rosco::Status nul = out.try_send("/audio", std::string_view("a\0b", 3));
        const rosco::Status unbalanced = out.try_send("/audio", rosco::ArrayEnd{});
        const rosco::Status closed = stale.try_send("/audio", 1);
        counting = false;
        CHECK_EQ(nul, ROSCO_ERR_ARG);
        CHECK_EQ(unbalanced, ROSCO_ERR_ARG);
        CHECK_EQ(closed, ROSCO_ERR_HANDLE);
        CHECK_EQ(allocations, 0L);
        test::poll_until(ctx, [&] { return received == 202; });
        CHECK(received > 0);  // UDP on loopback: they arrive (the count is not the point)
    } catch (const std::exception& e) {
        test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    return test::result("send_alloc_test");
}
