#!/usr/bin/env python3
"""python-osc peer (pinned 1.10.2): UDP and TCP, sender and receiver.

TCP uses python-osc's own framings: --framing length is mode="1.0" (4-byte length prefix),
--framing slip is mode="1.1" (SLIP, END before and after each packet). A --bundle given
first on a TCP connection is the case liblo 0.31's framing detector gets wrong.

Receiving: every message reaches one catch-all handler that sees python-osc's parsed
OscMessage, so the type tags printed are the ones in the packet and the values are what
python-osc decoded. python-osc has no value for tags it does not know (S, c, I): such
tags are listed in "typetags" but have no entry in "args" (and, as the spec notes, S and
c make it misread every later argument). Future bundles are held by python-osc's
dispatcher (strict timing) before the handler runs, so "time" shows when it let go.
See common.py for the command line.
"""

import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from pythonosc import osc_bundle_builder, osc_message_builder, osc_server, osc_tcp_server  # noqa: E402
from pythonosc import tcp_client, udp_client  # noqa: E402
from pythonosc.dispatcher import Dispatcher, Handler  # noqa: E402
from pythonosc.parsing import osc_types  # noqa: E402

MODES = {"length": "1.0", "slip": "1.1"}
UNKNOWN_TO_PYOSC = "ScI"  # tags python-osc's parser skips without producing a value


def build_message(msg):
    b = osc_message_builder.OscMessageBuilder(address=msg["address"])
    plain = common.plain_values(msg)
    if plain is None:
        for v in common.auto_values(msg):
            b.add_arg(v)
    else:
        _add(b, plain)
    return b.build()


def _add(b, plain):
    for value, tag in _pyosc_args(plain):
        b.add_arg(value, tag)


def _pyosc_args(plain):
    """(value, type) pairs as python-osc's builder takes them; an array is a list of
    values with a list of types."""
    out = []
    for tag, v in plain:
        if tag == "[":
            inner = _pyosc_args(v)
            out.append(([x for x, _ in inner], [t for _, t in inner]))
            continue
        if tag not in osc_message_builder.OscMessageBuilder._SUPPORTED_ARG_TYPES:
            common.die("python-osc cannot build type tag %r" % tag)
        if tag == "r":
            v = int.from_bytes(v, "big")
        elif tag in "TFN":
            v = {"T": True, "F": False, "N": None}[tag]
        out.append((v, tag))
    return out


def build_packets(ns):
    out = []
    for kind, obj in ns.packets:
        if kind == "msg":
            out.append(build_message(obj))
        else:
            when = osc_bundle_builder.IMMEDIATELY if ns.at is None else time.time() + ns.at
            bb = osc_bundle_builder.OscBundleBuilder(when)
            for m in obj:
                bb.add_content(build_message(m))
            out.append(bb.build())
    return out


def send(ns):
    packets = build_packets(ns)
    if ns.proto == "udp":
        c = udp_client.UDPClient(ns.host, ns.port)
        for p in packets:
            c.send(p)
    else:
        c = tcp_client.TCPClient(ns.host, ns.port, mode=MODES[ns.framing], timeout=5.0)
        for p in packets:
            c.send(p)
        c.close()
    return 0


def _typetags(message):
    """The type tag string as it is in the packet (None when the packet has none)."""
    dgram = message.dgram
    _, index = osc_types.get_string(dgram, 0)
    if index >= len(dgram):
        return None
    tags, _ = osc_types.get_string(dgram, index)
    return tags


def _convert(tag, v):
    if tag == "t":
        (utc, frac) = v
        from pythonosc.parsing import ntp
        import datetime
        epoch = datetime.datetime.combine(ntp._NTP_EPOCH, datetime.time())
        return (int((utc - epoch).total_seconds()), frac)
    return v


class Recorder(Handler):
    """Catch-all handler that records the whole parsed message."""

    def __init__(self, q):
        super().__init__(None, [])
        self.q = q

    def invoke(self, client_address, message):
        tags = _typetags(message)
        try:
            args = common.norm_args((tags or ",")[1:], message.params, _convert,
                                    skipped=UNKNOWN_TO_PYOSC)
        except Exception as e:  # a misread packet: report what python-osc handed over
            args = {"error": repr(e), "raw": repr(message.params)}
        self.q.put({"address": message.address, "typetags": tags, "args": args,
                    "time": time.time()})
        return None


class CatchAll(Dispatcher):
    def __init__(self, q):
        super().__init__()
        self._recorder = Recorder(q)

    def handlers_for_address(self, address_pattern):
        yield self._recorder


def recv(ns):
    q = queue.Queue()
    d = CatchAll(q)
    if ns.proto == "udp":
        server = osc_server.ThreadingOSCUDPServer((ns.host, 0), d)
    else:
        server = osc_tcp_server.ThreadingOSCTCPServer((ns.host, 0), d, mode=MODES[ns.framing])
    server.daemon_threads = True
    port = server.server_address[1]
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()
    common.emit({"port": port})
    return common.wait_for(q, ns.count, ns.timeout)


def main():
    ns = common.parse_args("pyosc_peer")
    common.watchdog((ns.timeout if ns.cmd == "recv" else 0) + 20)
    common.finish(send(ns) if ns.cmd == "send" else recv(ns))


if __name__ == "__main__":
    main()
