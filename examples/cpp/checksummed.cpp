// checksummed (C++): OSC over UDP inside osc4py3's packet control envelope
// (`/packet ,sbsbsb`) with a CRC-32 checksum, made on the way out and checked on the way
// in by packet hooks: what an osc4py3 program with advanced_packet_control and a CRC-32
// checksum function named "crc32" (zlib.crc32, 4 bytes big-endian) sends and expects.
// The C++ twin of examples/c/checksummed.c.
//
//   checksummed_cpp listen PORT     print each message whose checksum holds; refuse the rest
//   checksummed_cpp send URL TEXT   send /note s TEXT, sealed, e.g. to osc.udp://localhost:9000
//   checksummed_cpp --selftest      both over loopback, with an unsealed packet and one whose
//                                   checksum is wrong among them (both refused); exit 0
//
// What it shows: Context::set_hooks with hooks that replace (PacketOut::append), pass or
// drop packets; a Builder and rosco::decode used inside them, with no context.
#include "rosco.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

using namespace std::chrono_literals;

namespace {

// CRC-32 (the polynomial of zlib, Ethernet, PNG), bit by bit.
std::uint32_t crc32(rosco::Blob data) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < data.size; ++i) {
        crc ^= data.data[i];
        for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

// Builds in `b` the envelope carrying `packet`: checksum protocol and value, no signature,
// no encryption, the packet.
void build_envelope(rosco::Builder& b, rosco::Blob packet) {
    const std::uint32_t sum = crc32(packet);
    const std::uint8_t be[4] = {std::uint8_t(sum >> 24), std::uint8_t(sum >> 16), std::uint8_t(sum >> 8),
                                std::uint8_t(sum)};
    b.message("/packet").add("crc32", rosco::Blob(be, 4), "", rosco::Blob(), "", packet);
}

// Outgoing hook: the packet goes out in an envelope carrying its checksum.
rosco::Verdict seal(const rosco::Channel&, rosco::Blob packet, rosco::PacketOut& out) {
    rosco::Builder b;
    build_envelope(b, packet);
    out.append(b.bytes());
    return rosco::Verdict::Replace;
}

// Incoming hook: only the packet inside an envelope whose checksum holds goes on; the
// others are counted in `refused`.
rosco::PacketHook check(int& refused) {
    return [&refused](const rosco::Channel&, rosco::Blob packet, rosco::PacketOut& out) {
        const char* why = "not a crc32 envelope";
        rosco::Verdict verdict = rosco::Verdict::Drop;
        if (packet.size > 0 && packet.data[0] == '#') {
            why = "a bundle, not an envelope";  // rosco::decode would walk into it
        } else {
            try {
                rosco::decode(packet, [&](const rosco::Message& m) {
                    if (m.address() != "/packet" || m.typetags() != "sbsbsb" ||
                        m.get<std::string_view>(0) != "crc32" || m.get<rosco::Blob>(1).size != 4)
                        return;
                    const rosco::Blob sum = m.get<rosco::Blob>(1), data = m.get<rosco::Blob>(5);
                    const std::uint32_t want = std::uint32_t(sum.data[0]) << 24 |
                                               std::uint32_t(sum.data[1]) << 16 |
                                               std::uint32_t(sum.data[2]) << 8 | sum.data[3];
                    if (crc32(data) != want) {
                        why = "checksum does not match";
                        return;
                    }
                    out.append(data);
                    verdict = rosco::Verdict::Replace;
                });
            } catch (const rosco::Error& e) {  // not OSC at all
                std::cerr << "checksummed: refused: " << e.what() << "\n";
                ++refused;
                return rosco::Verdict::Drop;
            }
        }
        if (verdict == rosco::Verdict::Drop) {
            std::cerr << "checksummed: refused: " << why << "\n";
            ++refused;
        }
        return verdict;
    };
}

// Prints /note messages and counts them.
rosco::Method print_notes(rosco::Context& ctx, int& notes) {
    return ctx.on("/note", "s", [&notes](const rosco::Message& m) {
        std::printf("%s %s\n", std::string(m.address()).c_str(), std::string(m.get<std::string_view>(0)).c_str());
        std::fflush(stdout);
        ++notes;
    });
}

bool selftest() {
    // The CRC-32 check value, as zlib.crc32 gives it.
    if (crc32(rosco::Blob("123456789", 9)) != 0xCBF43926u) {
        std::cerr << "checksummed: selftest: crc32 is wrong\n";
        return false;
    }
    rosco::Context ctx;
    int notes = 0, refused = 0;
    rosco::Method m = print_notes(ctx, notes);
    const rosco::Channel in = ctx.open("in", "osc.udp://:0?bind=127.0.0.1");
    ctx.set_hooks(in, check(refused), nullptr);
    const std::string url = "osc.udp://127.0.0.1:" + std::to_string(in.port());
    const rosco::Channel out = ctx.open("out", url), plain = ctx.open("plain", url);
    ctx.set_hooks(out, nullptr, seal);
    // Sealed, unsealed (refused), a wrong checksum (refused), sealed again.
    out.send("/note", "first");
    plain.send("/note", "unsealed");
    rosco::Builder note, forged;
    note.message("/note").add("forged");
    build_envelope(forged, note.bytes());
    const rosco::Blob sealed = forged.bytes();
    std::string copy(reinterpret_cast<const char*>(sealed.data), sealed.size);
    copy[31] ^= 1;  // the checksum's last byte: after /packet, ,sbsbsb, "crc32" and a size
    plain.send_raw(rosco::Blob(copy.data(), copy.size()));
    out.send("/note", "second");
    for (int i = 0; i < 100 && (notes < 2 || refused < 2); ++i) ctx.poll(10ms);
    const bool passed = notes == 2 && refused == 2;
    if (!passed)
        std::cerr << "checksummed: selftest: " << notes << " notes and " << refused
                  << " refused, expected 2 and 2\n";
    std::printf("checksummed: selftest %s\n", passed ? "passed" : "FAILED");
    return passed;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc == 2 && std::strcmp(argv[1], "--selftest") == 0) return selftest() ? 0 : 1;
        rosco::Context ctx;
        int notes = 0, refused = 0;
        if (argc == 3 && std::strcmp(argv[1], "listen") == 0) {
            rosco::Method m = print_notes(ctx, notes);
            ctx.set_hooks(ctx.open("in", std::string("osc.udp://:") + argv[2]), check(refused), nullptr);
            for (;;) ctx.poll(1000ms);
        }
        if (argc == 4 && std::strcmp(argv[1], "send") == 0) {
            const rosco::Channel out = ctx.open("out", argv[2]);
            ctx.set_hooks(out, nullptr, seal);
            out.send("/note", argv[3]);
            return 0;
        }
    } catch (const rosco::Error& e) {
        std::cerr << "checksummed: " << e.what() << std::endl;
        return 1;
    }
    std::cerr << "usage: checksummed_cpp listen PORT | send URL TEXT | --selftest" << std::endl;
    return 2;
}
