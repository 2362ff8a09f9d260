// expect: use of deleted function.*o2_send
// A `const char*` where `reliable` belongs would turn into `true` and shift the address.
#include "rosco.hpp"

void send(const rosco::Channel& c, const char* address) {
#ifdef CONTROL
    c.o2_send(0.0, true, address, "/reply/here");
#else
    c.o2_send(0.0, address, "/reply/here");
#endif
}

int main() { return 0; }
