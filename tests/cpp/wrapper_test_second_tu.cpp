// Second translation unit of wrapper_test: includes rosco.hpp again (twice, to check the
// include guard) and uses the API, so that linking both units proves the header has no
// ODR violations (no non-inline definitions, identical inline ones).
#include "rosco.hpp"
#include "rosco.hpp"

#include <atomic>
#include <chrono>
#include <string>

// Used by wrapper_test.cpp.
std::string second_tu_describe(const rosco::Message& m);
int second_tu_local_roundtrip();
rosco::Builder second_tu_bundle(rosco::TimeTag t);

std::string second_tu_describe(const rosco::Message& m) {
    std::string out(m.address());
    out += ',';
    out += m.typetags();
    if (auto i = m.try_get<std::int32_t>(0)) out += ':' + std::to_string(*i);
    return out;
}

// A whole round trip through the in-process channel, with its own context, method,
// builder and handler instantiations in this unit.
int second_tu_local_roundtrip() {
    rosco::Context ctx;
    std::atomic<int> got{0};
    rosco::Method m = ctx.on("/second/tu", "is", [&](const rosco::Message& msg) {
        if (msg.get<std::string_view>(1) == "two") got += msg.get<std::int32_t>(0);
        return true;
    });
    rosco::Builder b;
    b.message("/second/tu").add(40, "two");
    ctx.local().send(b);
    ctx.local().send("/second/tu", 2, std::string("two"));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got < 42 && std::chrono::steady_clock::now() < until)
        ctx.poll(std::chrono::milliseconds(5));
    return got;
}

rosco::Builder second_tu_bundle(rosco::TimeTag t) {
    rosco::Builder b;
    b.bundle(t, [](rosco::Builder& in) {
        in.message("/second/a").add(1);
        in.message("/second/b").add(2.5f);
    });
    return b;
}
