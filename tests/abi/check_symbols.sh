#!/bin/sh
# Checks the dynamic symbols a shared library exports against the checked-in list:
#   check_symbols.sh LIBRARY SYMBOLS_FILE
# Only rosco_* names may be exported, and the set must equal SYMBOLS_FILE (sorted, one per
# line), so that removing or renaming a function of the C ABI is a deliberate act. After
# an intended change: ROSCO_UPDATE_SYMBOLS=1 ctest -R exported_symbols (then commit it).
set -eu
lib=$1
list=$2

actual=$(mktemp)
trap 'rm -f "$actual"' EXIT
# Defined dynamic symbols, without version suffixes; the name is the last field.
nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' | LC_ALL=C sort -u >"$actual"

status=0
if grep -v '^rosco_' "$actual" >/dev/null; then
    echo "error: $lib exports names outside the rosco_ prefix:" >&2
    grep -v '^rosco_' "$actual" >&2
    status=1
fi

if [ "${ROSCO_UPDATE_SYMBOLS:-}" = 1 ]; then
    cp "$actual" "$list"
    echo "rewrote $list ($(wc -l <"$list") symbols)"
    exit $status
fi

if ! diff -u --label "$list (checked in)" --label "$lib (built)" "$list" "$actual"; then
    echo "error: the exported symbols changed ('-' removed, '+' added)." >&2
    echo "If that is intended: ROSCO_UPDATE_SYMBOLS=1 ctest -R exported_symbols" >&2
    status=1
fi
[ $status -eq 0 ] && echo "$(wc -l <"$actual") exported symbols, as listed in $list"
exit $status
