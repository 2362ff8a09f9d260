"""Process handling and expected-value helpers for the interop tests.

Every wait here is bounded: processes are read by background threads into queues, every
read takes a timeout, and every process started through `Procs` is killed at the end of
its test whatever happened.
"""

import json
import os
import queue
import re
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
HOST = "127.0.0.1"

# Bounds (seconds). Loopback delivery takes milliseconds; these only stop a broken run.
START = 10.0      # a process prints its port / "listening" line
RECEIVE = 10.0    # a receiver gets everything it expects
EXIT = 10.0       # a sender exits


class Proc:
    """A child process whose stdout and stderr lines are collected by threads."""

    def __init__(self, argv, env=None, name=None):
        self.argv = [str(a) for a in argv]
        self.name = name or os.path.basename(self.argv[0])
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env)
        self.out_q = queue.Queue()
        self.err_q = queue.Queue()
        self.out_lines = []
        self.err_lines = []
        self._threads = [self._reader(self.p.stdout, self.out_q, self.out_lines),
                         self._reader(self.p.stderr, self.err_q, self.err_lines)]

    @staticmethod
    def _reader(stream, q, keep):
        def run():
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                keep.append(line)
                q.put(line)
            q.put(None)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def _next(self, q, timeout, what):
        try:
            line = q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s: no %s within %.1f s\n%s" % (self.name, what, timeout, self.report()))
        if line is None:
            q.put(None)
            raise AssertionError("%s: ended before %s\n%s" % (self.name, what, self.report()))
        return line

    def stdout_line(self, timeout=START, what="stdout line"):
        return self._next(self.out_q, timeout, what)

    def stderr_match(self, pattern, timeout=START):
        """Wait for a stderr line matching `pattern`; returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no stderr line matching %r within %.1f s\n%s"
                                     % (self.name, pattern, timeout, self.report()))
            m = re.search(pattern, self._next(self.err_q, left, "stderr line /%s/" % pattern))
            if m:
                return m

    def wait(self, timeout=EXIT):
        """Wait for exit (killing the process if it overruns); returns the exit code."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s: still running after %.1f s, killed\n%s"
                                 % (self.name, timeout, self.report()))
        for t in self._threads:
            t.join(timeout=2.0)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                pass

    def report(self):
        return "  argv: %s\n  exit: %s\n  stdout:\n%s\n  stderr:\n%s" % (
            " ".join(self.argv), self.p.poll(),
            "\n".join("    " + l for l in self.out_lines[-40:]),
            "\n".join("    " + l for l in self.err_lines[-40:]))

    def json_lines(self):
        out = []
        for line in self.out_lines:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    raise AssertionError("%s: not JSON: %r\n%s" % (self.name, line, self.report()))
        return out


class Procs:
    """Starts processes for one test and kills any left over when it ends."""

    def __init__(self, rosco_bin=None):
        self.rosco_bin = rosco_bin
        self.all = []

    def start(self, argv, name=None):
        p = Proc(argv, name=name)
        self.all.append(p)
        return p

    def cleanup(self):
        for p in self.all:
            p.kill()

    # -- helpers that start a specific kind of process -------------------------------

    def run(self, argv, name=None, timeout=EXIT, check=True):
        """Run to completion; returns the Proc. Fails on a non-zero exit if `check`."""
        p = self.start(argv, name)
        rc = p.wait(timeout)
        if check and rc != 0:
            raise AssertionError("%s exited %s\n%s" % (p.name, rc, p.report()))
        return p

    def rosco(self, *args):
        return [self._bin()] + list(args)

    def _bin(self):
        if not self.rosco_bin:
            raise AssertionError("this test needs the rosco binary (rosco_bin fixture)")
        return self.rosco_bin

    def rosco_dump(self, *args):
        """Start `rosco dump ARGS`, wait for its listening line; returns (proc, port)."""
        p = self.start(self.rosco("dump", *args), name="rosco dump")
        m = p.stderr_match(r"rosco: listening on (osc\.(udp|tcp)://[^ ]*:(\d+)/?)")
        return p, int(m.group(3))

    def peer(self, peer, *args):
        return [sys.executable, os.path.join(PEERS, peer + "_peer.py")] + [str(a) for a in args]

    def peer_recv(self, peer, *args):
        """Start a peer receiver; returns (proc, port) once it has printed its port."""
        p = self.start(self.peer(peer, "recv", *args), name=peer + " recv")
        first = json.loads(p.stdout_line(START, "port line"))
        return p, int(first["port"])

    def peer_send(self, peer, port, packets, *args):
        """Run a peer sender to completion. `packets` is a list of ("msg", obj) /
        ("bundle", [obj...])."""
        argv = self.peer(peer, "send", "--port", port, *args)
        for kind, obj in packets:
            argv += ["--" + kind, json.dumps(obj)]
        return self.run(argv, name=peer + " send")

    def oscdump(self, proto):
        """Start liblo's oscdump on a free port; returns (proc, port) once it is bound."""
        for _ in range(5):
            port = free_port(proto)
            url = "osc.%s://:%d" % (proto, port)
            p = self.start(["oscdump", "-L", url], name="oscdump")
            if wait_bound(proto, port, p, START):
                return p, port
            p.kill()
        raise AssertionError("oscdump could not bind a port")


def free_port(proto):
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _sockets(proto, port):
    """The states (hex, as /proc/net shows them) of the sockets whose local port is `port`."""
    files = ["/proc/net/udp", "/proc/net/udp6"] if proto == "udp" else ["/proc/net/tcp", "/proc/net/tcp6"]
    want = ":%04X" % port
    states = []
    for f in files:
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    cols = line.split()
                    if cols[1].endswith(want):
                        states.append(cols[3])
        except OSError:
            pass
    return states


def wait_bound(proto, port, proc, timeout):
    """Wait until something listens on `port` (per /proc/net), or `proc` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            return False
        if any(proto == "udp" or s == "0A" for s in _sockets(proto, port)):
            return True
        time.sleep(0.02)
    return False


def wait_tcp_closed(port, timeout):
    """Wait until the TCP listener on `port` holds no connection but ones closed on its
    side (TIME_WAIT, 06), however slowly its process gets to them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s in ("0A", "06") for s in _sockets("tcp", port)):
            return True
        time.sleep(0.02)
    return False


# --- raw sockets: capture what a peer sends, send bytes to a peer ---------------------------

class RawUDP:
    """A bound UDP socket on 127.0.0.1 that records datagrams."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((HOST, 0))
        self.port = self.s.getsockname()[1]

    def recv(self, n, timeout=RECEIVE):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("raw UDP: got %d of %d datagrams" % (len(out), n))
            self.s.settimeout(left)
            try:
                out.append(self.s.recv(65535))
            except socket.timeout:
                pass
        return out

    def close(self):
        self.s.close()


def udp_send(port, data):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, (HOST, port))


def tcp_send(port, data, timeout=EXIT):
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        # Wait for the receiver to close or for a short grace period, never forever.
        s.settimeout(1.0)
        try:
            while s.recv(4096):
                pass
        except (socket.timeout, OSError):
            pass


# --- expected forms --------------------------------------------------------------------------

def msg(address, typetags, *args):
    """A message in the peers' normalised JSON form."""
    return {"address": address, "typetags": typetags, "args": list(args)}


def strip_received(m):
    """A peer's received line without the receive time, comparable with `msg(...)`."""
    return {k: m[k] for k in ("address", "typetags", "args")}


def decoded(m):
    """The normalised message `m` in the shape of the vectors' `decoded` (what
    `rosco decode --json` / `rosco dump --json` print)."""
    tags = m["typetags"]
    return {"kind": "message", "address": m["address"], "typetags": tags,
            "args": _decoded_args(tags[1:], iter(m["args"]))[0]}


def _decoded_args(tags, it, pos=0):
    out = []
    while pos < len(tags):
        tag = tags[pos]
        pos += 1
        if tag == "]":
            return out, pos
        if tag == "[":
            items, pos = _decoded_args(tags, iter(next(it)), pos)
            out.append({"type": "array", "items": items})
            continue
        out.append(decoded_arg(tag, next(it)))
    return out, pos


def decoded_arg(tag, v):
    if tag in "ih":
        return {"type": tag, "value": v}
    if tag in "fd":
        special = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
        x = special.get(v, v)
        bits = struct.pack(">f" if tag == "f" else ">d", x).hex()
        value = v if isinstance(v, str) else struct.unpack(">f" if tag == "f" else ">d",
                                                              bytes.fromhex(bits))[0]
        return {"type": tag, "value": value, "bits": bits}
    if tag in "sS":
        return {"type": tag, "hex": v.encode("utf-8").hex(), "value": v}
    if tag == "b":
        return {"type": "b", "hex": v}
    if tag == "c":
        return {"type": "c", "code": ord(v), "value": v}
    if tag == "m":
        return {"type": "m", "value": list(v)}
    if tag == "t":
        d = {"type": "t", "sec": v[0], "frac": v[1]}
        if tuple(v) == (0, 1):
            d["immediate"] = True
        return d
    if tag == "r":
        return {"type": "r", "u32": v, "value": list(bytes.fromhex(v))}
    if tag in "TFN":
        return {"type": tag, "value": {"T": True, "F": False, "N": None}[tag]}
    if tag == "I":
        return {"type": "I"}
    raise ValueError(tag)


IMMEDIATE = {"sec": 0, "frac": 1, "immediate": True}


def decoded_bundle(msgs, timetag=IMMEDIATE):
    return {"kind": "bundle", "timetag": timetag, "elements": [decoded(m) for m in msgs]}


def float_bits_only(obj):
    """Drop the float "value" fields (keeping the authoritative "bits") so JSON number
    formatting cannot make two equal packets compare unequal."""
    if isinstance(obj, dict):
        if obj.get("type") in ("f", "d") and "bits" in obj:
            return {k: v for k, v in obj.items() if k != "value"}
        return {k: float_bits_only(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [float_bits_only(v) for v in obj]
    return obj


def unix_to_ntp(t):
    return int(t) + 2208988800, int((t % 1) * 2**32)


def ntp_to_unix(sec, frac):
    return sec - 2208988800 + frac / 2**32


def oscsend_args(m):
    """oscsend / rosco send arguments (TYPES VALUES...) for a normalised message."""
    tags = m["typetags"][1:]
    vals = []
    it = iter(m["args"])
    for tag in tags:
        v = next(it)
        if tag in "TFNI":
            continue
        if tag == "m":
            vals.append("%02x%02x%02x%02x" % tuple(v))
        elif tag == "t":
            vals.append("%08x.%08x" % tuple(v))
        elif tag == "f" or tag == "d":
            vals.append(repr(float(v)))
        else:
            vals.append(str(v))
    return ([tags] if tags else []) + vals
