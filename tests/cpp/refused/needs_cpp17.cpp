// expect: rosco\.hpp needs C\+\+17
// flags: -std=c++14
// errors: 1
// An older standard gets one clear error, not hundreds (pkg-config users choose their own).
#include "rosco.hpp"

int main() { return 0; }
