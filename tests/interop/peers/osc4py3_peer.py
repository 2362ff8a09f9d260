#!/usr/bin/env python3
"""osc4py3 peer (pinned 1.0.8): UDP only, sender and receiver, event-loop mode.

osc4py3 has no usable TCP transport (its TCP module is unfinished and not exported), so
--proto tcp is refused. Everything runs in osc4py3.as_eventloop: osc_process() is called
in a loop bounded by --timeout.

Receiving: osc4py3 method filters are OSC patterns compiled to a regular expression with
an implicit trailing ".*", i.e. prefix matches, so the single method registered at "/"
receives every message (and only once). The handler gets the address, the type tags and
the decoded data. osc4py3 decodes strings as strict ASCII by default: a non-ASCII string
makes it drop the packet (logged on stderr), and it reads a `c` argument from the first
byte of its four (spec layout puts the character in the last). Future bundles are held
by osc4py3's delayed-dispatch queue until their time.
See common.py for the command line; `recv --udp-stream` reads UDP as a stream
(`udpread_asstream`) framed as --framing says: SLIP (`read_withslip`) or the 4-byte length
prefix (`read_withheader`, whose default header is ("!I", 4, 0)); `--header FMT,SIZE,INDEX`
gives `read_headerunpack` another header, such as `<HI,6,1`.
"""

import logging
import os
import queue
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from osc4py3 import oscbuildparse as ob  # noqa: E402
from osc4py3 import oscchannel  # noqa: E402
from osc4py3 import oscmethod as om  # noqa: E402
from osc4py3 import oscudpmc  # noqa: E402
from osc4py3 import as_eventloop  # noqa: E402
from osc4py3.as_eventloop import (osc_method, osc_process, osc_send, osc_startup,  # noqa: E402
                                  osc_terminate, osc_udp_client, osc_udp_server)

logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                    format="osc4py3 %(levelname)s: %(message)s")
LOG = logging.getLogger("osc4py3-peer")


def native(plain):
    out = []
    for tag, v in plain:
        if tag == "[":
            out.append(native(v))
        elif tag == "m":
            out.append(ob.OSCmidi(*v))
        elif tag == "t":
            out.append(ob.OSCtimetag(*v))
        elif tag == "r":
            out.append(ob.OSCrgba(*v))
        elif tag in "TFNI":
            out.append({"T": True, "F": False, "N": None, "I": ob.OSCbang()}[tag])
        else:
            out.append(v)
    return out


def build_message(msg):
    plain = common.plain_values(msg)
    if plain is None:
        return ob.OSCMessage(msg["address"], None, common.auto_values(msg))
    return ob.OSCMessage(msg["address"], msg["typetags"], native(plain))


def pump(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        osc_process()
        time.sleep(0.002)


def send(ns):
    osc_startup(logger=LOG)
    osc_udp_client(ns.host, ns.port, "peer-out")
    for kind, obj in ns.packets:
        if kind == "msg":
            packet = build_message(obj)
        else:
            when = ob.OSC_IMMEDIATELY if ns.at is None else ob.unixtime2timetag(time.time() + ns.at)
            packet = ob.OSCBundle(when, [build_message(m) for m in obj])
        osc_send(packet, "peer-out")
        osc_process()
    # The event loop writes from its queue on later osc_process() calls: give it time.
    pump(0.2)
    osc_terminate()
    return 0


def _convert(tag, v):
    if tag == "t":
        return (v.sec, v.frac)
    if tag == "r":
        return (v.red, v.green, v.blue, v.alpha)
    return v


def header_unpack(text):
    fmt, size, index = text.split(",")
    return (fmt, int(size), int(index))


def recv(ns):
    q = queue.Queue()

    def handler(address, typetags, data):
        try:
            args = common.norm_args((typetags or ",")[1:], data, _convert)
        except Exception as e:
            args = {"error": repr(e), "raw": repr(data)}
        q.put({"address": address, "typetags": typetags, "args": args, "time": time.time()})

    osc_startup(logger=LOG)
    if ns.udp_stream:
        # osc_udp_server with the stream options added (it takes none of its own).
        oscudpmc.UdpMcChannel("peer-in", "r", {
            "udpread_host": ns.host, "udpread_port": 0, "auto_start": True,
            "monitor": as_eventloop._select_monitor(), "logger": LOG,
            "udpread_asstream": True,
            "read_withslip": ns.framing == "slip",
            "read_withheader": ns.framing == "length",
            "read_headerunpack": header_unpack(ns.header),
        })
    else:
        osc_udp_server(ns.host, 0, "peer-in")
    port = oscchannel.get_channel("peer-in").udpsock.getsockname()[1]
    osc_method("/", handler, argscheme=om.OSCARG_ADDRESS + om.OSCARG_TYPETAGS + om.OSCARG_DATA)
    common.emit({"port": port})

    deadline = time.monotonic() + ns.timeout
    got = 0
    while ns.count == 0 or got < ns.count:
        if time.monotonic() >= deadline:
            if ns.count == 0:
                break
            sys.stderr.write("peer: timed out (%d of %d messages)\n" % (got, ns.count))
            return 1
        osc_process()
        try:
            while ns.count == 0 or got < ns.count:
                common.emit(q.get_nowait())
                got += 1
        except queue.Empty:
            time.sleep(0.002)
    osc_terminate()
    return 0


def main():
    def udp_stream(cmd, parser):
        if cmd == "recv":
            parser.add_argument("--udp-stream", action="store_true",
                                help="read UDP as a stream framed as --framing says")
            parser.add_argument("--header", default="!I,4,0",
                                help="read_headerunpack as FORMAT,SIZE,INDEX (with --udp-stream)")

    ns = common.parse_args("osc4py3_peer", protos=("udp",), extra=udp_stream)
    common.watchdog((ns.timeout if ns.cmd == "recv" else 0) + 20)
    common.finish(send(ns) if ns.cmd == "send" else recv(ns))


if __name__ == "__main__":
    main()
