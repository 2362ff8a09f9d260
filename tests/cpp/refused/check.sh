#!/bin/sh
# Checks that the C++ wrapper refuses a program at compile time, for the right reason:
#   check.sh CXX SOURCE INCLUDE_DIR...
# SOURCE's lines `// expect: REGEX` (what the compiler must say), `// flags: ...` (extra
# flags, e.g. a language standard) and `// errors: N` (how many errors at most) drive it. Built with -DCONTROL the same file
# must compile: the refusal comes from the line under test, not from a slip elsewhere.
set -u
cxx=$1 src=$2
shift 2
includes=""
for dir in "$@"; do includes="$includes -I$dir"; done
expect=$(sed -n 's|^// expect: ||p' "$src")
flags=$(sed -n 's|^// flags: ||p' "$src")
most=$(sed -n 's|^// errors: ||p' "$src")
[ -n "$expect" ] || { echo "$src: no '// expect:' line" >&2; exit 1; }
base="-fsyntax-only -Wall -Wextra -Werror"
# shellcheck disable=SC2086
if ! out=$("$cxx" $base -std=c++17 $includes -DCONTROL "$src" 2>&1); then
    echo "$src: the control build fails:" >&2
    echo "$out" >&2
    exit 1
fi
# shellcheck disable=SC2086
if out=$("$cxx" $base ${flags:--std=c++17} $includes "$src" 2>&1); then
    echo "$src: compiled, but should have been refused" >&2
    exit 1
fi
if ! echo "$out" | grep -Eq "$expect"; then
    echo "$src: refused, but not with /$expect/:" >&2
    echo "$out" >&2
    exit 1
fi
errors=$(echo "$out" | grep -c ': error: ')
if [ -n "$most" ] && [ "$errors" -gt "$most" ]; then
    echo "$src: refused with $errors errors, more than $most:" >&2
    echo "$out" | head -20 >&2
    exit 1
fi
echo "$src: refused as expected"
