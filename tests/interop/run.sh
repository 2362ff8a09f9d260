#!/usr/bin/env bash
# Real-peer interop tests: rosco's command line against python-osc, osc4py3, aiolo and
# liblo's oscsend/oscdump, on 127.0.0.1 only.
#
#   tests/interop/run.sh [pytest args...]     e.g. -m "not aiolo", -k tcp, -x
#
# Needs the rosco binary ($ROSCO_BIN, default ${CARGO_TARGET_DIR:-target}/debug/rosco);
# this script does not build it. On a fresh Debian machine it installs the system packages
# the peers need (apt-get, as root or through sudo), creates a virtual environment at
# ${CARGO_TARGET_DIR:-target}/interop-venv with the machine's python3 (or $PYTHON), installs
# the pinned peers into it, and runs pytest. Any failure, and "no tests collected"
# (pytest exit code 5), makes it exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/interop

python=${PYTHON:-python3}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target"
target=$(cd "$target" && pwd)
venv="$target/interop-venv"
export ROSCO_BIN=${ROSCO_BIN:-$target/debug/rosco}

step() { printf '==== %s\n' "$*"; }
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- system packages ----------------------------------------------------------------------
have_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_packages=()
command -v oscsend >/dev/null 2>&1 && command -v oscdump >/dev/null 2>&1 || apt_packages+=(liblo-tools)
have_deb liblo-dev || apt_packages+=(liblo-dev)
command -v pkg-config >/dev/null 2>&1 || apt_packages+=(pkg-config)
command -v cc >/dev/null 2>&1 || apt_packages+=(build-essential)
command -v "$python" >/dev/null 2>&1 || apt_packages+=(python3)
if command -v "$python" >/dev/null 2>&1; then
    "$python" -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_packages+=(python3-venv)
    "$python" -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
        >/dev/null 2>&1 || apt_packages+=(python3-dev)
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
    step "installing ${apt_packages[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"
fi

# --- virtual environment --------------------------------------------------------------------
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    step "creating $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
step "installing the pinned peers ($here/requirements.txt)"
# The constraints pin aiolo's build dependencies (Cython etc.) as well.
PIP_CONSTRAINT="$PWD/$here/build-constraints.txt" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$venv/bin/python" -m pip install -q -r "$here/requirements.txt"

# aiolo compiles against liblo with the version pkg-config reports; a wheel built without
# pkg-config assumes 0.29 and lacks what the peer uses. Rebuild it once if that happened.
lo_system=$(pkg-config --modversion liblo)
lo_aiolo=$("$venv/bin/python" -c 'import aiolo; print(aiolo.LO_VERSION)')
if [ "$lo_aiolo" != "$lo_system" ]; then
    step "aiolo was built for liblo $lo_aiolo, system has $lo_system: rebuilding aiolo"
    PIP_CONSTRAINT="$PWD/$here/build-constraints.txt" PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$venv/bin/python" -m pip install -q --no-cache-dir --force-reinstall --no-deps \
        "$(grep '^aiolo==' "$here/requirements.txt")"
    lo_aiolo=$("$venv/bin/python" -c 'import aiolo; print(aiolo.LO_VERSION)')
    if [ "$lo_aiolo" != "$lo_system" ]; then
        echo "error: aiolo still reports liblo $lo_aiolo (system: $lo_system)" >&2
        exit 1
    fi
fi

if [ ! -x "$ROSCO_BIN" ]; then
    echo "warning: $ROSCO_BIN does not exist: every test that needs rosco will fail" \
         "(build it with cargo, or set ROSCO_BIN)" >&2
fi

# --- tests ----------------------------------------------------------------------------------
step "pytest $here (ROSCO_BIN=$ROSCO_BIN)"
set +e
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -q "$here" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
