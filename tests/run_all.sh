#!/usr/bin/env bash
# Runs every rosco test suite. On a fresh Debian machine it first installs what the suites
# need (system packages through apt-get), so `tests/run_all.sh` is the one command to run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: the real peers the tests talk to.
apt_packages=()
command -v oscsend >/dev/null 2>&1 || apt_packages+=(liblo-tools)
# liblo itself, linked by `benches/udp.rs` to measure it beside rosco (`cargo bench`).
[ -e /usr/include/lo/lo.h ] || apt_packages+=(liblo-dev)
command -v ip >/dev/null 2>&1 || apt_packages+=(iproute2)
if [ ${#apt_packages[@]} -gt 0 ]; then
    step "installing ${apt_packages[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"
fi

if [ ! -f ../shared/vectors/osc-vectors.json ]; then
    echo "error: ../shared/vectors/ (the shared test vectors) must sit beside the repository" >&2
    exit 1
fi

# Every peer is installed now: a test that cannot find one fails instead of skipping.
export ROSCO_REQUIRE_PEERS=1
# CI runs as root: the namespace tests must run, not skip.
[ "$(id -u)" -eq 0 ] && export ROSCO_REQUIRE_NETNS=1
export CARGO_TERM_COLOR=never
# The runtime tests open hundreds of sockets at once.
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, warnings are errors)"
cargo clippy --locked -j2 --all-targets --all-features -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked -j2 --no-deps --all-features

step "cargo test (all features)"
cargo test --locked -j2 --all-features

step "multicast and broadcast between network namespaces"
cargo build --locked -j2 --bin rosco
tests/netns/run.sh target/debug/rosco

step "real peers: liblo, python-osc, osc4py3, aiolo"
ROSCO_BIN="$PWD/target/debug/rosco" tests/interop/run.sh

step "C API, C++ wrapper, CMake package: ctest (plain, ASan+UBSan, valgrind), install, consumer"
tests/c_api.sh

step "all suites passed"
