#!/usr/bin/env python3
"""aiolo peer (pinned 4.2.0, asyncio bindings over the system liblo 0.31): UDP and TCP,
sender and receiver.

Receiving: aiolo hands a subscriber only the argument values, never the address or the
type tags, and its routes match type tags exactly (no coercion). So the receiver is told
what to expect: `--route ADDRESS TYPES` (repeatable; TYPES without the ',', "" for no
arguments). A message reaches a route only when both match, so the printed "typetags"
(',' + TYPES) is proven by the arrival itself; anything else is dropped by aiolo with a
"no matches found" warning on stderr. liblo picks the port ("osc.udp://:" URL), because
liblo 0.31 reports port 0 when asked to bind port 0.

aiolo only watches the server's main socket on the asyncio loop; for TCP that is the
listening socket, so data arriving later on an accepted connection could sit unread. The
receiver therefore also polls the server (aiolo.servers_recv_noblock) every 20 ms.

Sending: liblo's TCP framing is a length prefix; --framing slip sets liblo's SLIP option,
which in 0.31 puts one END after each packet only (no leading END).
See common.py for the command line.
"""

import asyncio
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import aiolo  # noqa: E402

logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                    format="aiolo %(levelname)s: %(message)s")


def native(plain):
    out = []
    for tag, v in plain:
        if tag == "[":
            common.die("liblo has no arrays")
        elif tag == "m":
            out.append(aiolo.Midi(*v))
        elif tag == "t":
            # aiolo.TimeTag takes (sec, frac) of the OSC epoch.
            out.append(aiolo.TimeTag(tuple(v)))
        elif tag in "TFNI":
            out.append({"T": True, "F": False, "N": None, "I": float("inf")}[tag])
        elif tag == "r":
            common.die("liblo has no rgba type")
        else:
            out.append(v)
    return out


def build_message(msg):
    plain = common.plain_values(msg)
    if plain is None:
        return aiolo.Message(msg["address"], *common.auto_values(msg))
    route = aiolo.Route(msg["address"], msg["typetags"][1:])
    return aiolo.Message(route, *native(plain))


def send(ns):
    proto = "udp" if ns.proto == "udp" else "tcp"
    addr = aiolo.Address(url="osc.%s://%s:%d" % (proto, ns.host, ns.port),
                         stream_slip=(ns.proto == "tcp" and ns.framing == "slip"))
    for kind, obj in ns.packets:
        if kind == "msg":
            addr.message(build_message(obj))
        else:
            if ns.at is None:
                tt = aiolo.TT_IMMEDIATE
            else:
                import datetime
                tt = aiolo.TimeTag(datetime.datetime.now(datetime.timezone.utc)
                                   + datetime.timedelta(seconds=ns.at))
            addr.bundle(aiolo.Bundle([build_message(m) for m in obj], tt))
    return 0


def _convert(tag, v):
    if tag == "t":
        return (v.sec, v.frac)
    if tag == "b":
        return v.tobytes()
    if tag == "m":
        # Not list(v): aiolo 4.2.0's Midi.__iter__ converts its uint8_t[4] like a C
        # string and stops at the first zero byte (Midi(0, 144, 60, 127) iterates as []).
        return [v[i] for i in range(4)]
    return v


async def _recv(ns):
    server = aiolo.Server(url="osc.%s://:" % ns.proto)
    server.start()
    port = int(server.port)

    queue = asyncio.Queue()

    async def pump(address, types, sub):
        async for data in sub:
            args = common.norm_args(types, list(data), _convert)
            await queue.put({"address": address, "typetags": "," + types, "args": args,
                             "time": time.time()})

    tasks = []
    for address, types in ns.route:
        route = server.route(address, types)
        tasks.append(asyncio.ensure_future(pump(address, types, route.sub())))

    async def poll():
        while True:
            aiolo.servers_recv_noblock([server], 0)
            await asyncio.sleep(0.02)
    tasks.append(asyncio.ensure_future(poll()))

    common.emit({"port": port})
    deadline = time.monotonic() + ns.timeout
    got = 0
    code = 0
    while ns.count == 0 or got < ns.count:
        left = deadline - time.monotonic()
        if left <= 0:
            if ns.count:
                sys.stderr.write("peer: timed out (%d of %d messages)\n" % (got, ns.count))
                code = 1
            break
        try:
            item = await asyncio.wait_for(queue.get(), timeout=min(left, 0.1))
        except asyncio.TimeoutError:
            continue
        common.emit(item)
        got += 1
    for t in tasks:
        t.cancel()
    return code


def main():
    def extra(name, s):
        if name == "recv":
            s.add_argument("--route", nargs=2, action="append", default=[],
                           metavar=("ADDRESS", "TYPES"),
                           help="expect messages at ADDRESS with exactly these type tags")
    ns = common.parse_args("aiolo_peer", extra=extra)
    common.watchdog((ns.timeout if ns.cmd == "recv" else 0) + 20)
    if ns.cmd == "send":
        common.finish(send(ns))
    if not ns.route:
        common.die("recv needs at least one --route ADDRESS TYPES")
    common.finish(asyncio.run(_recv(ns)))


if __name__ == "__main__":
    main()
