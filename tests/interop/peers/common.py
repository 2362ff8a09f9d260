"""Shared plumbing for the interop peers: command line, JSON lines, value normalisation.

Every peer speaks the same command line so the tests can drive them alike:

    PEER send --proto udp|tcp [--framing length|slip] --port P [--at S]
              (--msg JSON | --bundle JSON_LIST)...
    PEER recv --proto udp|tcp [--framing length|slip] [--count N] [--timeout S]

A message is written as JSON in the *normalised* form that receivers print:

    {"address": "/py/x", "typetags": ",ifs", "args": [1, 2.5, "hi"]}

One entry in "args" per type tag ('[' ... ']' nest a list):
  i h -> int             f -> float rounded to 7 significant digits, d -> float
  s S c -> str           b -> lower-case hex       m -> [port, status, d1, d2]
  t -> [sec, frac]       r -> "rrggbbaa" hex       T F -> true/false, N -> null
  I -> "Infinitum"       NaN/inf floats -> "NaN", "Infinity", "-Infinity"
"typetags" may be null when sending: the library then picks the types itself.

`send` sends each --msg as its own packet and each --bundle (a JSON list of messages) as
one bundle packet, in command-line order; --at S times every bundle S seconds from now
(immediate otherwise). `recv` binds 127.0.0.1 port 0, prints {"port": P} as its first
line, then one JSON line per received message (plus "time", the Unix receive time), and
exits 0 after --count messages; if --timeout expires first it prints "peer: timed out"
on stderr and exits 1 (with --count 0 it just listens until the timeout and exits 0).
"""

import argparse
import json
import math
import os
import sys
import threading
import time

HOST = "127.0.0.1"

_print_lock = threading.Lock()


def emit(obj):
    """Print one JSON line and flush, from any thread."""
    line = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def die(msg, code=2):
    sys.stderr.write("peer: %s\n" % msg)
    sys.stderr.flush()
    os._exit(code)


def finish(code):
    """Exit now, without waiting for library threads or half-open connections."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --- numbers -------------------------------------------------------------------------

def _special(x):
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return None


def norm_float(x, single):
    x = float(x)
    s = _special(x)
    if s is not None:
        return s
    if single:
        return float("%.7g" % x)
    return x


def denorm_float(v):
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return float(v)


# --- received values -> normalised JSON --------------------------------------------------

def norm_arg(tag, v):
    """Normalise one decoded value. Peers first turn library-specific objects (timetags,
    rgba, midi, bangs) into plain Python: (sec, frac), bytes/ints, 4-sequences, None."""
    if tag in "ih":
        return int(v)
    if tag == "f":
        return norm_float(v, True)
    if tag == "d":
        return norm_float(v, False)
    if tag in "sSc":
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v).decode("utf-8", "replace")
        return str(v)
    if tag == "b":
        return bytes(v).hex()
    if tag == "m":
        return [int(b) for b in v]
    if tag == "t":
        sec, frac = v
        return [int(sec), int(frac)]
    if tag == "r":
        if isinstance(v, int):
            return "%08x" % v
        return bytes(int(b) for b in v).hex()
    if tag == "T":
        return True
    if tag == "F":
        return False
    if tag == "N":
        return None
    if tag == "I":
        return "Infinitum"
    raise ValueError("cannot normalise type tag %r" % tag)


def norm_args(tags, values, convert=lambda tag, v: v, skipped=""):
    """Pair the tags (without the leading ',') with the decoded values.

    `convert(tag, v)` turns a library object into plain Python first. Tags listed in
    `skipped` are ones the library reports no value for; they get no entry. Arrays
    ('[' ... ']') arrive as nested sequences and are normalised recursively."""
    out, pos = _norm_seq(tags, 0, iter(values), convert, skipped)
    if pos != len(tags):
        raise ValueError("unbalanced ']' in type tags %r" % tags)
    return out


def _norm_seq(tags, pos, it, convert, skipped):
    """Normalise from tags[pos] up to the matching ']' (or the end); returns the list
    and the position of that ']' (or len(tags))."""
    out = []
    while pos < len(tags):
        tag = tags[pos]
        pos += 1
        if tag == "]":
            return out, pos - 1
        if tag == "[":
            inner, pos = _norm_seq(tags, pos, iter(next(it)), convert, skipped)
            if pos >= len(tags):
                raise ValueError("unclosed '[' in type tags %r" % tags)
            pos += 1  # the ']'
            out.append(inner)
            continue
        if tag in skipped:
            continue
        out.append(norm_arg(tag, convert(tag, next(it))))
    return out, pos


# --- JSON message -> values to send --------------------------------------------------------

def plain_values(msg):
    """[(tag, plain value)] for a message to send, or None when its typetags are
    null; plain means: ints, floats, str,
    bytes for blobs, 4-tuples for MIDI, (sec, frac) for timetags, bytes for rgba."""
    tags = msg.get("typetags")
    if tags is None:
        return None
    if not tags.startswith(","):
        die("typetags must start with ',': %r" % tags)
    out = []
    args = list(msg.get("args", []))
    _plain(tags[1:], iter(args), out)
    return out


def _plain(tags, it, out):
    pos = 0
    while pos < len(tags):
        tag = tags[pos]
        pos += 1
        if tag == "[":
            depth, end = 1, pos
            while depth:
                depth += {"[": 1, "]": -1}.get(tags[end], 0)
                end += 1
            inner = []
            _plain(tags[pos:end - 1], iter(next(it)), inner)
            out.append(("[", inner))
            pos = end
            continue
        v = next(it)
        if tag in "ih":
            v = int(v)
        elif tag in "fd":
            v = denorm_float(v)
        elif tag == "b":
            v = bytes.fromhex(v)
        elif tag == "m":
            v = tuple(int(b) for b in v)
        elif tag == "t":
            v = (int(v[0]), int(v[1]))
        elif tag == "r":
            v = bytes.fromhex(v)
        out.append((tag, v))


def auto_values(msg):
    """Values for a message whose typetags are null: the library chooses the types."""
    vals = []
    for v in msg.get("args", []):
        if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
            v = denorm_float(v)
        vals.append(v)
    return vals


# --- command line --------------------------------------------------------------------

class _Packets(argparse.Action):
    def __call__(self, parser, ns, value, option_string=None):
        try:
            obj = json.loads(value)
        except ValueError as e:
            parser.error("%s: bad JSON %r: %s" % (option_string, value, e))
        kind = "msg" if option_string == "--msg" else "bundle"
        if kind == "bundle" and not isinstance(obj, list):
            parser.error("--bundle takes a JSON list of messages")
        ns.packets.append((kind, obj))


def parse_args(peer, protos=("udp", "tcp"), extra=None):
    p = argparse.ArgumentParser(prog=peer)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("send", "recv"):
        s = sub.add_parser(name)
        s.add_argument("--proto", choices=protos, default="udp")
        s.add_argument("--framing", choices=("length", "slip"), default="length",
                       help="TCP framing: 4-byte length prefix (OSC 1.0) or SLIP (OSC 1.1)")
        s.add_argument("--host", default=HOST)
        if name == "send":
            s.add_argument("--port", type=int, required=True)
            s.add_argument("--at", type=float, default=None,
                           help="time bundles this many seconds from now")
            s.add_argument("--msg", action=_Packets, help="one message packet (JSON)")
            s.add_argument("--bundle", action=_Packets,
                           help="one bundle packet (JSON list of messages)")
            s.set_defaults(packets=[])
        else:
            s.add_argument("--count", type=int, default=1)
            s.add_argument("--timeout", type=float, default=10.0)
        if extra:
            extra(name, s)
    ns = p.parse_args()
    if ns.host != HOST:
        p.error("loopback only: --host must be 127.0.0.1")
    if ns.cmd == "send" and not ns.packets:
        p.error("nothing to send: give --msg or --bundle")
    return ns


def watchdog(seconds):
    """Hard stop for a peer whose library hangs: exits 3 after `seconds`."""
    def fire():
        die("watchdog: still running after %.1f s" % seconds, 3)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


def wait_for(q, count, timeout):
    """Print messages put on queue `q` (as dicts) until `count` arrived or `timeout`.
    Returns the exit code."""
    import queue
    deadline = time.monotonic() + timeout
    got = 0
    while count == 0 or got < count:
        left = deadline - time.monotonic()
        if left <= 0:
            if count == 0:
                return 0
            sys.stderr.write("peer: timed out (%d of %d messages)\n" % (got, count))
            return 1
        try:
            item = q.get(timeout=min(left, 0.1))
        except queue.Empty:
            continue
        emit(item)
        got += 1
    return 0
