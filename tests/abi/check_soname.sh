#!/bin/sh
# Checks a shared library's SONAME: check_soname.sh LIBRARY EXPECTED
# The expected name comes from the header's version (CMakeLists.txt); the real one from
# build.rs. Both follow the same rule, and this test is where they meet.
set -eu
lib=$1
expected=$2
actual=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$actual" != "$expected" ]; then
    echo "error: $lib has SONAME '${actual:-<none>}', expected '$expected'" >&2
    exit 1
fi
echo "SONAME $actual"
