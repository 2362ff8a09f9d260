"""Fixtures for the real-peer interop suite (see README.md beside this file)."""

import os
import shutil
import subprocess

import pytest

import support

DEFAULT_BIN = "/work/main/target/debug/rosco"

MARKERS = {
    "pyosc": "talks to python-osc 1.10.2",
    "osc4py3": "talks to osc4py3 1.0.8",
    "aiolo": "talks to aiolo 4.2.0 (liblo 0.31 underneath)",
    "liblo": "talks to liblo's oscsend / oscdump",
    "raw": "hand-made bytes on a raw socket (malformed packets, framing vectors)",
    "rosco_io": "needs `rosco dump` / `rosco send` (the runtime)",
    "codec": "needs only `rosco encode` / `rosco decode`",
    "selfcheck": "peers against each other and liblo; no rosco involved",
}


def pytest_configure(config):
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", "%s: %s" % (name, doc))


def _rosco_bin():
    path = os.environ.get("ROSCO_BIN") or DEFAULT_BIN
    if not os.path.isabs(path):
        path = os.path.abspath(path)
    return path


@pytest.fixture(scope="session")
def rosco_bin():
    """The rosco binary: $ROSCO_BIN, else /work/main/target/debug/rosco."""
    path = _rosco_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("rosco binary not found or not executable: %s "
                    "(build it with `cargo build`, or set ROSCO_BIN)" % path, pytrace=False)
    return path


@pytest.fixture(scope="session")
def rosco_commands(rosco_bin):
    """The subcommands `rosco help` lists."""
    try:
        out = subprocess.run([rosco_bin, "help"], capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("`%s help` did not finish within 10 s" % rosco_bin, pytrace=False)
    text = (out.stdout + out.stderr).decode("utf-8", "replace")
    return {line.split()[1] for line in text.splitlines()
            if line.strip().startswith("rosco ") and len(line.split()) > 1}


@pytest.fixture
def procs(request):
    """Starts processes for one test; kills whatever is still running at the end."""
    bin_ = None
    if request.node.get_closest_marker("rosco_io") or request.node.get_closest_marker("codec"):
        bin_ = request.getfixturevalue("rosco_bin")
    if request.node.get_closest_marker("rosco_io"):
        cmds = request.getfixturevalue("rosco_commands")
        missing = [c for c in ("dump", "send") if c not in cmds]
        if missing:
            pytest.fail("%s has no `rosco %s` yet (`rosco help` lists: %s)"
                        % (bin_, "`/`rosco ".join(missing), ", ".join(sorted(cmds))),
                        pytrace=False)
    if request.node.get_closest_marker("liblo"):
        for tool in ("oscsend", "oscdump"):
            if shutil.which(tool) is None:
                pytest.fail("%s (liblo-tools) is not installed; tests/interop/run.sh "
                            "installs it" % tool, pytrace=False)
    p = support.Procs(bin_)
    yield p
    p.cleanup()
