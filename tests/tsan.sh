#!/usr/bin/env bash
# ThreadSanitizer over every Rust test suite. Not part of run_all.sh: it needs a nightly
# toolchain with rust-src (std is rebuilt instrumented, or its atomics are invisible and
# every Arc looks racy), which a fresh CI machine does not have.
#   rustup component add rust-src --toolchain nightly
#   bash tests/tsan.sh            # all suites
#   bash tests/tsan.sh runtime    # one integration suite
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
export RUSTFLAGS="-Zsanitizer=thread" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/tsan}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}"
what=(--lib --tests)
[ $# -gt 0 ] && what=(--test "$1")
cargo +nightly test -Zbuild-std --target "$target" -j2 "${what[@]}" -- --test-threads=2
