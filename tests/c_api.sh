#!/usr/bin/env bash
# The C API's test suite, through CMake (the way C and C++ users build against rosco):
#   (a) release build + every ctest test           target/cmake/release
#   (b) the C/C++ code under ASan + UBSan           target/cmake/asan
#   (c) the C/C++ tests under valgrind              target/cmake/valgrind
#   (d) cmake --install into a temporary prefix, then tests/cmake-consumer (find_package,
#       shared and static) and pkg-config builds of the same program against it.
# Cargo builds the library once (in (a)); the other builds reuse it. The Rust library is
# never sanitized: the sanitizers watch the C/C++ side and its calls into rosco.
#
# Debian packages it needs: cmake valgrind pkg-config gcc g++ binutils (nm, readelf),
# and liblo-tools for the tests that talk to oscsend/oscdump. Run as root, it installs
# cmake, valgrind and pkg-config itself when they are missing.
#
# Ends with the line `c_api: N passed, M failed` (N and M count ctest tests plus the
# steps that are not ctest tests) and exits non-zero when anything failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

jobs=${ROSCO_JOBS:-2}
builds="${CARGO_TARGET_DIR:-$root/target}/cmake"
case $builds in /*) ;; *) builds="$root/$builds" ;; esac

passed=0
failed=0
failures=()
timings=()

note() { printf '\n==== %s\n' "$*"; }

# Runs one step that is not a ctest test; counts it.
step() {
    local what=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        return 0
    fi
    failed=$((failed + 1))
    failures+=("$what")
    echo "FAILED: $what" >&2
    return 1
}

# Runs ctest in build directory $1 with further arguments; adds its counts.
run_ctest() {
    local dir=$1 log name
    shift
    log=$(mktemp)
    ctest --test-dir "$dir" --output-on-failure --no-tests=error -j"$jobs" "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    # "83% tests passed, 2 tests failed out of 12"
    local line p f total
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    if [ -n "$line" ]; then
        f=$(sed -E 's/.* ([0-9]+) tests? failed.*/\1/' <<<"$line")
        total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
        p=$((total - f))
        passed=$((passed + p))
        failed=$((failed + f))
        while read -r name; do
            failures+=("$(basename "$dir"): $name")
        done < <(sed -nE 's/^[[:space:]]+[0-9]+ - ([^ ]+) .*/\1/p' "$log")
    elif [ "$rc" -ne 0 ]; then
        failed=$((failed + 1))
        failures+=("ctest in $dir")
    fi
    rm -f "$log"
    return "$rc"
}

# Times a stage: stage NAME FUNCTION.
stage() {
    local name=$1 start=$SECONDS
    shift
    note "$name"
    "$@"
    timings+=("$(printf '%-34s %4d s' "$name" $((SECONDS - start)))")
}

install_missing() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v g++ >/dev/null 2>&1 || missing+=(g++)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
    fi
    note "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" ||
        exit 1
}

# Configures and builds one CMake tree: build DIR [-D...]. A failed compile is counted,
# but the build goes on with the other targets (make -k) and ctest still runs, so one
# broken test file does not hide the rest (its tests show up as "Not Run").
build() {
    local dir=$1 keep_going=()
    shift
    step "configure $(basename "$dir")" \
        cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DROSCO_CARGO_JOBS="$jobs" "$@" >/dev/null || return 1
    grep -q '^CMAKE_GENERATOR:INTERNAL=Unix Makefiles$' "$dir/CMakeCache.txt" && keep_going=(-- -k)
    step "build $(basename "$dir")" cmake --build "$dir" -j"$jobs" "${keep_going[@]}"
    # The library itself must exist for the tests to mean anything.
    [ -e "$dir/lib/librosco.so" ]
}

stage_release() {
    build "$builds/release" -DROSCO_SANITIZE=OFF -DROSCO_VALGRIND=OFF &&
        run_ctest "$builds/release"
}

stage_asan() {
    build "$builds/asan" -DROSCO_SANITIZE=ON -DROSCO_VALGRIND=OFF &&
        run_ctest "$builds/asan"
}

stage_valgrind() {
    # The example self-tests are C programs too: they run under valgrind as well.
    build "$builds/valgrind" -DROSCO_SANITIZE=OFF -DROSCO_VALGRIND=ON &&
        run_ctest "$builds/valgrind" -L '^(c|cpp|examples)$'
}

# A pkg-config build of the consumer's program: pkg_build NAME [static].
pkg_build() {
    local out="$work/$1" libs
    libs=$(pkg-config --libs rosco) || return 1
    if [ "${2:-}" = static ]; then
        # Force the archive (-l:librosco.a), with Libs.private for its system libraries.
        libs=$(pkg-config --static --libs rosco | sed -E 's/-lrosco( |$)/-l:librosco.a\1/') || return 1
    fi
    # shellcheck disable=SC2046,SC2086
    gcc -std=c11 -Wall -Wextra -Werror tests/cmake-consumer/loopback.c \
        $(pkg-config --cflags rosco) $libs -o "$out" &&
        LD_LIBRARY_PATH="$prefix/lib" "$out"
}

stage_install() {
    prefix="$work/prefix"
    step "cmake --install --strip" cmake --install "$builds/release" --prefix "$prefix" --strip >/dev/null || return 1
    local major minor
    major=$(sed -nE 's/^#define ROSCO_VERSION_MAJOR ([0-9]+)$/\1/p' include/rosco.h)
    minor=$(sed -nE 's/^#define ROSCO_VERSION_MINOR ([0-9]+)$/\1/p' include/rosco.h)
    local consumer="$work/consumer"
    if step "configure consumer (find_package rosco $major.$minor)" \
        cmake -S tests/cmake-consumer -B "$consumer" -DCMAKE_PREFIX_PATH="$prefix" \
        -DROSCO_WANT_VERSION="$major.$minor" >/dev/null &&
        step "build consumer" cmake --build "$consumer" -j"$jobs"; then
        run_ctest "$consumer"
    fi
    if [ "$major" -eq 0 ] && [ "$minor" -gt 0 ]; then
        # While the ABI is 0.x, an older minor version must not accept this one.
        reject_older() {
            ! cmake -S tests/cmake-consumer -B "$work/consumer-old" -DCMAKE_PREFIX_PATH="$prefix" \
                -DROSCO_WANT_VERSION="0.$((minor - 1))" >/dev/null 2>&1
        }
        step "find_package(rosco 0.$((minor - 1))) rejects $major.$minor" reject_older
    fi
    # A distribution may ship the shared library alone: the package still works.
    local shared_only="$work/prefix-shared"
    if step "copy the install without librosco.a" \
        sh -c 'cp -a "$1" "$2" && rm "$2/lib/librosco.a"' sh "$prefix" "$shared_only" &&
        step "configure consumer (shared library alone)" \
        cmake -S tests/cmake-consumer -B "$work/consumer-shared" -DCMAKE_PREFIX_PATH="$shared_only" >/dev/null &&
        step "build consumer (shared library alone)" cmake --build "$work/consumer-shared" -j"$jobs"; then
        run_ctest "$work/consumer-shared"
    fi
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    step "pkg-config build (shared)" pkg_build pc_shared
    step "pkg-config build (static)" pkg_build pc_static static
    # rosco.pc follows a moved prefix, as the CMake package does.
    local installed="$prefix"
    prefix="$work/moved"
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    step "move the install" mv "$installed" "$prefix" &&
        step "pkg-config build (prefix moved)" pkg_build pc_moved
}

install_missing
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
total_start=$SECONDS

stage "(a) release build + ctest" stage_release
stage "(b) ASan/UBSan build + ctest" stage_asan
stage "(c) valgrind build + ctest" stage_valgrind
stage "(d) install, consumer, pkg-config" stage_install

note "summary"
printf '%s\n' "${timings[@]}"
printf '%-34s %4d s\n' "total" $((SECONDS - total_start))
if [ ${#failures[@]} -gt 0 ]; then
    echo "failed:"
    printf '  %s\n' "${failures[@]}"
fi
echo "c_api: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failures[@]} -eq 0 ]
