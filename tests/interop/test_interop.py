"""rosco against real OSC peers, through the `rosco` command line, on 127.0.0.1 only.

Directions, per peer and transport:
  peer -> `rosco dump --json --count N osc.(udp|tcp)://:0`   (dump prints its port)
  `rosco send URL ADDRESS TYPES VALUES...` -> peer receiver    (peer prints its port)
plus liblo: oscsend -> `rosco dump` (text lines must equal oscdump's, minus the timetag
column) and `rosco send` -> oscdump, UDP and TCP.

Tests marked `rosco_io` need `rosco dump` / `rosco send`; `codec` ones only need
`rosco encode` / `rosco decode` (they carry the same values through raw sockets);
`selfcheck` ones involve no rosco at all and keep the peers honest.
"""

import json
import os
import socket
import time
import zlib

import pytest

import support
from support import IMMEDIATE, decoded, decoded_bundle, float_bits_only, msg, strip_received

pyosc = pytest.mark.pyosc
osc4py3 = pytest.mark.osc4py3
aiolo = pytest.mark.aiolo
liblo = pytest.mark.liblo
raw = pytest.mark.raw
rosco_io = pytest.mark.rosco_io
codec = pytest.mark.codec
selfcheck = pytest.mark.selfcheck

PEER_MARK = {"pyosc": pyosc, "osc4py3": osc4py3, "aiolo": aiolo}

# --- what each peer can build and parse -------------------------------------------------------

BASIC = {p: msg("/%s/x" % p, ",ifs", 1, 2.5, "hi") for p in ("pyosc", "osc4py3", "aiolo")}

# Sent by the peer (rosco decodes them). Each peer only with the types it can build.
PEER_SENDS = {
    "pyosc": [
        ("basic", BASIC["pyosc"]),
        ("int64", msg("/pyosc/h", ",hh", 9223372036854775807, -1234567890123)),
        ("blob", msg("/pyosc/b", ",bb", "010203", "00c0dbff0102")),
        ("utf8", msg("/pyosc/utf8", ",s", "h\u00e9llo w\u00f6rld \u2713")),
        ("mixed", msg("/pyosc/mix", ",ifdsbmTFN", -42, -2.25, 1e300, "", "ff",
                      [0, 144, 60, 127], True, False, None)),
        ("arrays_rgba", msg("/pyosc/arr", ",[i[s]][]r", [1, ["x"]], [], "11223344")),
        ("empty", msg("/pyosc/e", ",")),
    ],
    "osc4py3": [
        ("basic", BASIC["osc4py3"]),
        ("int64", msg("/osc4py3/h", ",hh", 9223372036854775807, -1234567890123)),
        ("blob", msg("/osc4py3/b", ",bb", "010203", "00c0dbff0102")),
        ("mixed", msg("/osc4py3/mix", ",ifdsSbmtTFNI", -42, -2.25, 1e300, "", "sym", "ff",
                      [0, 144, 60, 127], [3900000000, 2147483648], True, False, None,
                      "Infinitum")),
        # osc4py3 writes 'A' as 41 00 00 00; rosco reads that layout as 'A' (spec 6.15).
        ("char_osc4py3_layout", msg("/osc4py3/c", ",c", "A")),
        ("arrays_rgba", msg("/osc4py3/arr", ",[i[s]][]r", [1, ["x"]], [], "11223344")),
        ("empty", msg("/osc4py3/e", ",")),
    ],
    "aiolo": [
        ("basic", BASIC["aiolo"]),
        ("int64", msg("/aiolo/h", ",hh", 9223372036854775807, -1234567890123)),
        ("blob", msg("/aiolo/b", ",bb", "010203", "00c0dbff0102")),
        ("utf8", msg("/aiolo/utf8", ",s", "h\u00e9llo w\u00f6rld \u2713")),
        ("mixed", msg("/aiolo/mix", ",ifdsSchmtTFNI", -42, -2.25, 1e300, "", "sym", "x",
                      -5, [0, 144, 60, 127], [3900000000, 2147483648], True, False, None,
                      "Infinitum")),
        ("empty", msg("/aiolo/e", ",")),
    ],
}

# What the library picks when it is given plain Python values (typetags null).
AUTO_TYPED = {
    "pyosc": ({"address": "/pyosc/auto", "typetags": None,
               "args": [1, 5000000000, 2.5, "s", True, None]},
              msg("/pyosc/auto", ",ihfsTN", 1, 5000000000, 2.5, "s", True, None)),
    "osc4py3": ({"address": "/osc4py3/auto", "typetags": None, "args": [1, 2.5, "s", True, None]},
                msg("/osc4py3/auto", ",ifsTN", 1, 2.5, "s", True, None)),
    # aiolo: int -> h, float -> d, inf -> I (spec section 10).
    "aiolo": ({"address": "/aiolo/auto", "typetags": None,
               "args": [1, 2.5, "s", True, None, "Infinity"]},
              msg("/aiolo/auto", ",hdsTNI", 1, 2.5, "s", True, None, "Infinitum")),
}

# Sent by `rosco send` (oscsend's syntax: i h f d s S c m T F N I, b hex, t sec.frac hex);
# each peer receives only the types it can parse.
ROSCO_SENDS = {
    "pyosc": [
        ("basic", BASIC["pyosc"]),
        ("int64", msg("/pyosc/h", ",hh", 9223372036854775807, -1234567890123)),
        ("blob", msg("/pyosc/b", ",bb", "010203", "00c0dbff0102")),
        ("utf8", msg("/pyosc/utf8", ",s", "h\u00e9llo w\u00f6rld \u2713")),
        ("mixed", msg("/pyosc/mix", ",ifdsbmtTFN", -42, -2.25, 1e300, "", "ff",
                      [0, 144, 60, 127], [3900000000, 2147483648], True, False, None)),
        ("empty", msg("/pyosc/e", ",")),
    ],
    "osc4py3": [
        ("basic", BASIC["osc4py3"]),
        ("int64", msg("/osc4py3/h", ",hh", 9223372036854775807, -1234567890123)),
        ("blob", msg("/osc4py3/b", ",bb", "010203", "00c0dbff0102")),
        ("mixed", msg("/osc4py3/mix", ",ifdsSbmtTFNI", -42, -2.25, 1e300, "", "sym", "ff",
                      [0, 144, 60, 127], [3900000000, 2147483648], True, False, None,
                      "Infinitum")),
        ("empty", msg("/osc4py3/e", ",")),
    ],
    "aiolo": [
        ("basic", BASIC["aiolo"]),
        ("int64", msg("/aiolo/h", ",hh", 9223372036854775807, -1234567890123)),
        ("blob", msg("/aiolo/b", ",bb", "010203", "00c0dbff0102")),
        ("utf8", msg("/aiolo/utf8", ",s", "h\u00e9llo w\u00f6rld \u2713")),
        # aiolo turns a received timetag into a Unix float and back with 2**32 - 1
        # fractions per second, so only frac 0 survives exactly (frac 2**31 comes back
        # as 2**31 - 1); its sending side is exact (see PEER_SENDS).
        ("mixed", msg("/aiolo/mix", ",ifdsSchmtTFNI", -42, -2.25, 1e300, "", "sym", "x",
                      -5, [0, 144, 60, 127], [3900000000, 0], True, False, None,
                      "Infinitum")),
        ("empty", msg("/aiolo/e", ",")),
    ],
}

UDP_RECEIVERS = [("pyosc", "udp", "length"), ("osc4py3", "udp", "length"),
                 ("aiolo", "udp", "length")]
TCP_SENDERS = [("pyosc", "length"), ("pyosc", "slip"), ("aiolo", "length"), ("aiolo", "slip")]


def cases(table, peers=None):
    out = []
    for peer, items in table.items():
        if peers and peer not in peers:
            continue
        for name, m in items:
            out.append(pytest.param(peer, m, id="%s-%s" % (peer, name), marks=PEER_MARK[peer]))
    return out


def peer_params(peers):
    return [pytest.param(p, marks=PEER_MARK[p], id=p) for p in peers]


def recv_args(peer, expected, proto="udp", framing="length", count=None, timeout=support.RECEIVE):
    """Command-line arguments for a peer receiver expecting `expected` messages."""
    args = ["--proto", proto, "--framing", framing,
            "--count", len(expected) if count is None else count, "--timeout", timeout]
    if peer == "aiolo":
        seen = set()
        for m in expected:
            key = (m["address"], m["typetags"][1:])
            if key not in seen:
                seen.add(key)
                args += ["--route", key[0], key[1]]
    return args


def received(proc, n=None):
    """The messages a peer receiver printed (after its port line), receive time dropped."""
    lines = proc.json_lines()[1:]
    if n is not None:
        assert len(lines) == n, proc.report()
    return [strip_received(m) for m in lines]


def canon(msgs):
    return sorted(msgs, key=lambda m: json.dumps(m, sort_keys=True))


def drop_tags(m, tags):
    """`m` without the arguments of the given (top-level) type tags."""
    keep = [(t, v) for t, v in zip(m["typetags"][1:], m["args"]) if t not in tags]
    return msg(m["address"], "," + "".join(t for t, _ in keep), *[v for _, v in keep])


def send_args(m):
    return [m["address"]] + support.oscsend_args(m)


def dump_json(procs, proto, n_packets, sender, query=""):
    """Start `rosco dump --json`, run `sender(port)`, return the packets dump printed."""
    dump, port = procs.rosco_dump("--json", "--count", n_packets, "--timeout", support.RECEIVE,
                                  "osc.%s://:0%s" % (proto, query))
    sender(port)
    rc = dump.wait(support.RECEIVE + 5)
    assert rc == 0, dump.report()
    out = dump.json_lines()
    assert len(out) == n_packets, dump.report()
    return out


def assert_packets(actual, expected):
    assert float_bits_only(actual) == float_bits_only(expected)


# =================================================================================================
# peer -> rosco dump (UDP)
# =================================================================================================

@rosco_io
@pytest.mark.parametrize("peer,m", cases(PEER_SENDS))
def test_peer_udp_message_to_rosco_dump(procs, peer, m):
    out = dump_json(procs, "udp", 1, lambda port: procs.peer_send(peer, port, [("msg", m)]))
    assert_packets(out, [decoded(m)])


@rosco_io
@pytest.mark.parametrize("peer", peer_params(["pyosc", "osc4py3", "aiolo"]))
def test_peer_udp_auto_typed_to_rosco_dump(procs, peer):
    sent, expected = AUTO_TYPED[peer]
    out = dump_json(procs, "udp", 1, lambda port: procs.peer_send(peer, port, [("msg", sent)]))
    assert_packets(out, [decoded(expected)])


@rosco_io
@pytest.mark.parametrize("peer", peer_params(["pyosc", "osc4py3", "aiolo"]))
def test_peer_udp_bundle_to_rosco_dump(procs, peer):
    inner = [BASIC[peer], msg("/%s/second" % peer, ",i", 2)]
    out = dump_json(procs, "udp", 1, lambda port: procs.peer_send(peer, port, [("bundle", inner)]))
    assert_packets(out, [decoded_bundle(inner)])


@rosco_io
@pytest.mark.parametrize("peer", peer_params(["pyosc", "osc4py3", "aiolo"]))
def test_peer_udp_timed_bundle_to_rosco_dump(procs, peer):
    inner = [BASIC[peer]]
    at = 1.5
    t0 = time.time()
    out = dump_json(procs, "udp", 1,
                    lambda port: procs.peer_send(peer, port, [("bundle", inner)], "--at", at))
    tt = out[0]["timetag"]
    assert not tt.get("immediate"), out
    when = support.ntp_to_unix(tt["sec"], tt["frac"])
    assert t0 + at - 0.5 <= when <= time.time() + at + 0.5, (t0, when, out)
    assert_packets([dict(out[0], timetag=IMMEDIATE)], [decoded_bundle(inner)])


# =================================================================================================
# peer -> rosco dump (TCP): rosco detects the framing per connection
# =================================================================================================

def tcp_packets(peer, bundle_first):
    a = BASIC[peer]
    b = msg("/%s/b" % peer, ",bb", "010203", "00c0dbff0102")   # SLIP's END and ESC bytes
    c = msg("/%s/in" % peer, ",i", 7)
    if bundle_first:
        packets = [("bundle", [c, a]), ("msg", a), ("msg", b)]
    else:
        packets = [("msg", a), ("msg", b), ("bundle", [c, a])]
    expected = [decoded_bundle(obj) if kind == "bundle" else decoded(obj) for kind, obj in packets]
    return packets, expected


@rosco_io
@pytest.mark.parametrize("bundle_first", [False, True], ids=["message_first", "bundle_first"])
@pytest.mark.parametrize("peer,framing", [pytest.param(p, f, id="%s-%s" % (p, f), marks=PEER_MARK[p])
                                          for p, f in TCP_SENDERS])
def test_peer_tcp_to_rosco_dump(procs, peer, framing, bundle_first):
    # pyosc-slip-bundle_first is the case liblo 0.31 loses entirely (spec section 7);
    # aiolo-slip is liblo's single-END SLIP.
    packets, expected = tcp_packets(peer, bundle_first)
    out = dump_json(procs, "tcp", len(packets),
                    lambda port: procs.peer_send(peer, port, packets, "--proto", "tcp",
                                                 "--framing", framing))
    assert_packets(out, expected)


# =================================================================================================
# rosco send -> peer
# =================================================================================================

def rosco_send_to_peer(procs, peer, msgs, proto="udp", framing="length", extra=()):
    # The peer reads any SLIP; only rosco's side says whether a leading END is sent.
    read_framing = "slip" if framing == "slip-single" else framing
    recv, port = procs.peer_recv(peer, *recv_args(peer, msgs, proto, read_framing))
    url = "osc.%s://127.0.0.1:%d" % (proto, port)
    t0 = time.time()
    for i, m in enumerate(msgs):
        args = list(extra)
        if proto == "tcp":
            args += ["--tcp-framing", framing]
        procs.run(procs.rosco("send", *args, url, *send_args(m)), name="rosco send")
        # One at a time: the next connection only once this message is through.
        recv.stdout_line(support.RECEIVE, "message %d of %d" % (i + 1, len(msgs)))
        if peer == "aiolo" and proto == "tcp":
            # aiolo's TCP server (liblo 0.31 polled with lo_server_recv_noblock) drops
            # SLIP connections that open while the previous one is still being closed
            # when the client shuts its socket down (rosco send does; so does a raw
            # Python socket with shutdown(SHUT_RDWR)). oscdump, blocking liblo, gets
            # them all. Let it finish the previous connection first.
            assert support.wait_tcp_closed(port, support.RECEIVE), "aiolo kept the connection"
    rc = recv.wait(support.RECEIVE + 5)
    assert rc == 0, recv.report()
    return recv, t0


@rosco_io
@pytest.mark.parametrize("peer,m", cases(ROSCO_SENDS))
def test_rosco_send_udp_to_peer(procs, peer, m):
    recv, _ = rosco_send_to_peer(procs, peer, [m])
    assert received(recv, 1) == [m]


@rosco_io
@pytest.mark.parametrize("peer,framing", [
    pytest.param("pyosc", "length", marks=pyosc, id="pyosc-mode1.0-length"),
    pytest.param("pyosc", "slip", marks=pyosc, id="pyosc-mode1.1-slip"),
    pytest.param("aiolo", "length", marks=aiolo, id="aiolo-length"),
    pytest.param("aiolo", "slip", marks=aiolo, id="aiolo-slip"),
    # SLIP without the leading END (osc4py3's write_slip_flagatstart=False, liblo 0.31).
    pytest.param("pyosc", "slip-single", marks=pyosc, id="pyosc-mode1.1-slip-single"),
    pytest.param("aiolo", "slip-single", marks=aiolo, id="aiolo-slip-single"),
])
def test_rosco_send_tcp_to_peer(procs, peer, framing):
    msgs = [m for name, m in ROSCO_SENDS[peer] if name in ("basic", "blob", "utf8", "mixed")]
    recv, _ = rosco_send_to_peer(procs, peer, msgs, "tcp", framing)
    assert canon(received(recv, len(msgs))) == canon(msgs)


@rosco_io
@osc4py3
@pytest.mark.parametrize("query,header", [
    ("framing=slip", None),
    ("framing=length", None),
    # read_headerunpack=("<HI", 6, 1): two bytes, then a little-endian u32 length.
    ("framing=length&length_field=u32le&length_at=2", "<HI,6,1"),
], ids=["slip", "length", "custom-header"])
def test_rosco_framed_udp_to_osc4py3_as_stream(procs, query, header):
    # osc4py3's udpread_asstream with read_withslip / read_withheader (and its
    # read_headerunpack) reads what rosco sends to osc.udp://…?framing=…: one framed
    # packet per datagram.
    msgs = [m for name, m in ROSCO_SENDS["osc4py3"] if name in ("basic", "blob", "mixed")]
    framing = "slip" if "slip" in query else "length"
    extra = ["--header", header] if header else []
    recv, port = procs.peer_recv("osc4py3", "--udp-stream", *extra,
                                 *recv_args("osc4py3", msgs, framing=framing))
    url = "osc.udp://127.0.0.1:%d?%s" % (port, query)
    for m in msgs:
        procs.run(procs.rosco("send", url, *send_args(m)), name="rosco send")
    rc = recv.wait(support.RECEIVE + 5)
    assert rc == 0, recv.report()
    assert canon(received(recv, len(msgs))) == canon(msgs)


@rosco_io
def test_custom_length_header_over_tcp_to_rosco_dump(procs):
    # A device's header: a u16 big-endian length after a one-byte tag, read by `rosco
    # dump` from a raw TCP sender, two packets in one write and one split in two.
    msgs = [msg("/a", ",i", 1), msg("/b", ","), msg("/c", ",s", "x")]
    packets = [bytes.fromhex(h) for h in (
        "2f610000" "2c690000" "00000001", "2f620000" "2c000000", "2f630000" "2c730000" "78000000")]
    frames = [b"\x7f" + len(p).to_bytes(2, "big") + p for p in packets]

    def send(port):
        with socket.create_connection((support.HOST, port)) as s:
            s.sendall(frames[0] + frames[1][:5])
            time.sleep(0.05)
            s.sendall(frames[1][5:] + frames[2])
            time.sleep(0.2)

    out = dump_json(procs, "tcp", 3, send, "?framing=length&length_field=u16be&length_at=1")
    assert_packets(out, [decoded(m) for m in msgs])


@rosco_io
def test_framed_udp_across_and_inside_datagrams_to_rosco_dump(procs):
    # The reading side osc4py3's udpread_asstream describes: a SLIP packet split over two
    # datagrams, then two packets in one, from one sender (SLIP by hand: these packets
    # hold no END or ESC byte, so each is END, its bytes, END).
    msgs = [msg("/a", ",i", 1), msg("/b", ","), msg("/c", ",s", "x")]
    frames = [b"\xc0" + bytes.fromhex(h) + b"\xc0" for h in (
        "2f610000" "2c690000" "00000001", "2f620000" "2c000000", "2f630000" "2c730000" "78000000")]

    def send(port):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for datagram in (frames[0][:6], frames[0][6:], frames[1] + frames[2]):
                s.sendto(datagram, (support.HOST, port))

    out = dump_json(procs, "udp", 3, send, "?framing=slip")
    assert_packets(out, [decoded(m) for m in msgs])


@rosco_io
@pytest.mark.parametrize("peer", peer_params(["pyosc", "osc4py3", "aiolo"]))
def test_rosco_send_at_is_held_by_peer(procs, peer):
    m = BASIC[peer]
    at = 0.8
    recv, t0 = rosco_send_to_peer(procs, peer, [m], extra=["--at", str(at)])
    lines = recv.json_lines()[1:]
    assert [strip_received(x) for x in lines] == [m]
    # Every peer holds a future bundle until its time; allow 20 ms of timer slack.
    assert lines[0]["time"] >= t0 + at - 0.02, (t0, lines)
    assert lines[0]["time"] <= t0 + at + 3.0, (t0, lines)


@rosco_io
@osc4py3
def test_rosco_char_reaches_osc4py3_as_nul(procs):
    # rosco writes 'A' as 00 00 00 41 (the spec and liblo); osc4py3 1.0.8 reads the
    # first byte, so it sees "\0". A known osc4py3 incompatibility, pinned here so a
    # change on either side is noticed.
    recv, _ = rosco_send_to_peer(procs, "osc4py3", [msg("/osc4py3/c", ",c", "A")])
    assert received(recv, 1) == [msg("/osc4py3/c", ",c", "\u0000")]


@rosco_io
@osc4py3
def test_rosco_utf8_string_is_refused_by_osc4py3(procs):
    # osc4py3 decodes strings as strict ASCII and drops the packet (spec section 10).
    m = msg("/osc4py3/utf8", ",s", "h\u00e9llo")
    # The receiver listens for a fixed time (it cannot count a refused packet): long
    # enough for two `rosco send` processes to start on a loaded machine.
    recv, port = procs.peer_recv("osc4py3", "--count", 0, "--timeout", 4)
    procs.run(procs.rosco("send", "osc.udp://127.0.0.1:%d" % port, *send_args(m)))
    procs.run(procs.rosco("send", "osc.udp://127.0.0.1:%d" % port, *send_args(BASIC["osc4py3"])))
    assert recv.wait() == 0
    assert received(recv) == [BASIC["osc4py3"]]
    assert any("UnicodeDecodeError" in l for l in recv.err_lines), recv.report()


# =================================================================================================
# liblo: oscsend / oscdump
# =================================================================================================

LIBLO_MESSAGES = [
    ["/a/b", "ifsSchdTFNIm", "1", "2.5", "str", "sym", "x", "5", "3.25", "00903c7f"],
    ["/u", "s", "h\u00e9llo w\u00f6rld"],
    ["/e"],
    ["/neg", "ihfd", "-42", "-1234567890123", "-2.25", "-1.5"],
    ["/big", "hh", "9223372036854775807", "-9223372036854775808"],
    ["/f", "fd", "0.1", "1e300"],
    ["/s/empty", "ss", "", "abcd"],
]


def without_timetag(line):
    tt, _, rest = line.partition(" ")
    assert len(tt) == 17 and tt[8] == ".", line
    return rest


def collect_lines(proc, n, timeout=support.RECEIVE):
    lines = []
    deadline = time.monotonic() + timeout
    while len(lines) < n:
        lines.append(proc.stdout_line(max(0.01, deadline - time.monotonic()),
                                      "line %d of %d" % (len(lines) + 1, n)))
    return lines


def oscdump_lines(procs, proto, senders):
    """Start oscdump, run each sender(port) (each sends one message), return oscdump's
    lines without timetags. Each waits for the previous line: separate TCP connections
    are not ordered with respect to each other."""
    dump, port = procs.oscdump(proto)
    lines = []
    for send in senders:
        send(port)
        lines += collect_lines(dump, 1)
    dump.kill()
    return [without_timetag(l) for l in lines]


def oscsend(procs, proto, args):
    return lambda port: procs.run(["oscsend", "osc.%s://127.0.0.1:%d" % (proto, port)] + args,
                                  name="oscsend")


@rosco_io
@liblo
@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_oscsend_to_rosco_dump_text_matches_oscdump(procs, proto):
    reference = oscdump_lines(procs, proto, [oscsend(procs, proto, a) for a in LIBLO_MESSAGES])
    dump, port = procs.rosco_dump("--count", len(LIBLO_MESSAGES), "--timeout", support.RECEIVE,
                                  "osc.%s://:0" % proto)
    for a in LIBLO_MESSAGES:
        oscsend(procs, proto, a)(port)
        collect_lines(dump, 1)       # one connection at a time (TCP), as for oscdump
    assert dump.wait(support.RECEIVE + 5) == 0, dump.report()
    ours = [without_timetag(l) for l in dump.out_lines if l]
    assert ours == reference


@rosco_io
@liblo
@pytest.mark.parametrize("proto,framing", [("udp", None), ("tcp", "length"), ("tcp", "slip"),
                                          ("tcp", "slip-single")])
def test_rosco_send_to_oscdump_matches_oscsend(procs, proto, framing):
    reference = oscdump_lines(procs, proto, [oscsend(procs, proto, a) for a in LIBLO_MESSAGES])
    extra = ["--tcp-framing", framing] if framing else []

    def rosco_send(args):
        return lambda port: procs.run(
            procs.rosco("send", *extra, "osc.%s://127.0.0.1:%d" % (proto, port), *args),
            name="rosco send")
    ours = oscdump_lines(procs, proto, [rosco_send(a) for a in LIBLO_MESSAGES])
    assert ours == reference


@rosco_io
@liblo
def test_rosco_send_blob_and_timetag_to_oscdump(procs):
    # oscsend cannot send b or t; this is oscdump's rendering of them (also what aiolo
    # produces, see test_peer_to_oscdump).
    lines = oscdump_lines(procs, "udp", [lambda port: procs.run(procs.rosco(
        "send", "osc.udp://127.0.0.1:%d" % port, "/bt", "bbt", "010203", "", "e8754700.80000000"))])
    assert lines == ["/bt bbt [3b 0x1 0x2 0x3] [0b ] e8754700.80000000"]


@rosco_io
@liblo
def test_rosco_send_at_timetag_seen_by_oscdump(procs):
    dump, port = procs.oscdump("udp")
    at = 2.0
    t0 = time.time()
    procs.run(procs.rosco("send", "--at", str(at), "osc.udp://127.0.0.1:%d" % port, "/later", "i", "1"))
    sent = time.time()  # the sender read its clock between t0 and now, however slow its start
    line = collect_lines(dump, 1)[0]
    t1 = time.time()
    sec, frac = (int(x, 16) for x in line.split(" ")[0].split("."))
    when = support.ntp_to_unix(sec, frac)
    assert t0 + at - 0.05 <= when <= sent + at + 0.05, line
    assert t1 >= when - 0.05, "oscdump printed it before its time"
    assert without_timetag(line) == "/later i 1"


@rosco_io
@liblo
@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_rosco_send_raw_to_oscdump(procs, proto):
    lines = oscdump_lines(procs, proto, [lambda port: procs.run(procs.rosco(
        "send", "--raw", "2f7800002c69000000000001", "osc.%s://127.0.0.1:%d" % (proto, port)))])
    assert lines == ["/x i 1"]


@rosco_io
@aiolo
def test_bundle_text_carries_bundle_timetag(procs):
    # In text mode --count counts messages: one bundle of two messages ends a --count 2
    # dump. Each line carries the bundle's timetag (oscdump does the same).
    at = 3.0
    inner = [BASIC["aiolo"], msg("/aiolo/second", ",i", 2)]
    dump, port = procs.rosco_dump("--count", 2, "--timeout", support.RECEIVE, "osc.udp://:0")
    t0 = time.time()
    procs.peer_send("aiolo", port, [("bundle", inner)], "--at", at)
    sent = time.time()  # the peer read its clock between t0 and now, however slow its start
    assert dump.wait(support.RECEIVE + 5) == 0, dump.report()
    lines = [l for l in dump.out_lines if l]
    assert [without_timetag(l) for l in lines] == ['/aiolo/x ifs 1 2.500000 "hi"', "/aiolo/second i 2"]
    stamps = {l.split(" ")[0] for l in lines}
    assert len(stamps) == 1, lines
    sec, frac = (int(x, 16) for x in stamps.pop().split("."))
    assert t0 + at - 0.5 <= support.ntp_to_unix(sec, frac) <= sent + at + 0.5, lines


@rosco_io
@pyosc
def test_rosco_dump_json_flushes_each_line(procs):
    # Read while dump still runs (no --count): the line must not sit in a buffer.
    dump, port = procs.rosco_dump("--json", "--timeout", support.RECEIVE, "osc.udp://:0")
    procs.peer_send("pyosc", port, [("msg", BASIC["pyosc"])])
    line = dump.stdout_line(support.RECEIVE, "the JSON line of the first packet")
    assert_packets([json.loads(line)], [decoded(BASIC["pyosc"])])
    assert dump.p.poll() is None
    dump.kill()


# =================================================================================================
# raw bytes: malformed packets and the measured framing streams
# =================================================================================================

def vectors():
    path = os.path.join(support.HERE, "..", "..", "..", "shared", "vectors", "osc-vectors.json")
    with open(path) as f:
        return json.load(f)


@rosco_io
@raw
@pyosc
def test_rosco_dump_skips_malformed_udp_packets(procs):
    rejects = [v for v in vectors()["vectors"] if v["expect"] == "reject"]
    assert rejects
    good = msg("/after/malformed", ",i", 1)
    dump, port = procs.rosco_dump("--json", "--count", 1, "--timeout", support.RECEIVE,
                                  "osc.udp://:0")
    for v in rejects:
        support.udp_send(port, bytes.fromhex(v["hex"]))
    procs.peer_send("pyosc", port, [("msg", good)])
    assert dump.wait(support.RECEIVE + 5) == 0, dump.report()
    assert_packets(dump.json_lines(), [decoded(good)])


@rosco_io
@raw
@pytest.mark.parametrize("name", ["liblo_tcp_length_prefix", "pythonosc_tcp_mode_1_0",
                                  "pythonosc_tcp_mode_1_1_slip_double_end",
                                  "liblo_0_31_slip_single_end"])
def test_rosco_dump_tcp_measured_streams(procs, name):
    stream = [s for s in vectors()["stream_framing"] if s["name"] == name][0]
    expected = []
    for hexpkt in stream["packets"]:
        p = procs.run(procs.rosco("decode", "--json", hexpkt), name="rosco decode")
        expected.append(json.loads(p.out_lines[0]))
    dump, port = procs.rosco_dump("--json", "--count", len(expected), "--timeout",
                                  support.RECEIVE, "osc.tcp://:0")
    # All in one write, so the packets arrive together and must be split by the framing.
    support.tcp_send(port, bytes.fromhex(stream["stream_hex"]))
    assert dump.wait(support.RECEIVE + 5) == 0, dump.report()
    assert_packets(dump.json_lines(), expected)


# =================================================================================================
# the dump command's own contract
# =================================================================================================

@rosco_io
def test_rosco_dump_count_timeout_exits_1(procs):
    dump, _ = procs.rosco_dump("--count", 1, "--timeout", 0.5, "osc.udp://:0")
    assert dump.wait() == 1
    assert any(l.strip() == "rosco: timed out" for l in dump.err_lines), dump.report()


@rosco_io
def test_rosco_dump_timeout_alone_exits_0(procs):
    dump, _ = procs.rosco_dump("--timeout", 0.5, "osc.udp://:0")
    assert dump.wait() == 0, dump.report()


@rosco_io
@pyosc
def test_rosco_dump_port_alone_means_udp(procs):
    dump, port = procs.rosco_dump("--json", "--count", 1, "--timeout", support.RECEIVE, "0")
    assert any("osc.udp://" in l for l in dump.err_lines), dump.report()
    procs.peer_send("pyosc", port, [("msg", BASIC["pyosc"])])
    assert dump.wait(support.RECEIVE + 5) == 0, dump.report()
    assert_packets(dump.json_lines(), [decoded(BASIC["pyosc"])])


# =================================================================================================
# codec only (runs before the runtime exists): real peers' bytes through rosco decode,
# rosco encode's bytes into real peers
# =================================================================================================

@codec
@pytest.mark.parametrize("peer,m", cases(PEER_SENDS))
def test_peer_bytes_decoded_by_rosco(procs, peer, m):
    cap = support.RawUDP()
    try:
        procs.peer_send(peer, cap.port, [("msg", m)])
        (data,) = cap.recv(1)
    finally:
        cap.close()
    p = procs.run(procs.rosco("decode", "--json", data.hex()), name="rosco decode")
    assert_packets([json.loads(p.out_lines[0])], [decoded(m)])


@codec
@pytest.mark.parametrize("peer,m", cases(ROSCO_SENDS))
def test_rosco_encoded_bytes_read_by_peer(procs, peer, m):
    enc = procs.run(procs.rosco("encode", *send_args(m)), name="rosco encode")
    data = bytes.fromhex(enc.out_lines[0].strip())
    recv, port = procs.peer_recv(peer, *recv_args(peer, [m]))
    support.udp_send(port, data)
    assert recv.wait(support.RECEIVE + 5) == 0, recv.report()
    assert received(recv, 1) == [m]


# =================================================================================================
# selfcheck: the peers against each other and against liblo (no rosco)
# =================================================================================================

@selfcheck
@liblo
@pytest.mark.parametrize("peer,proto,framing", [
    pytest.param("pyosc", "udp", "length", marks=pyosc, id="pyosc-udp"),
    pytest.param("pyosc", "tcp", "length", marks=pyosc, id="pyosc-tcp-mode1.0"),
    pytest.param("osc4py3", "udp", "length", marks=osc4py3, id="osc4py3-udp"),
    pytest.param("aiolo", "udp", "length", marks=aiolo, id="aiolo-udp"),
    pytest.param("aiolo", "tcp", "length", marks=aiolo, id="aiolo-tcp"),
])
def test_oscsend_to_peer(procs, peer, proto, framing):
    # oscsend has no b or t: those arguments are left out.
    msgs = [drop_tags(m, "bt") for _, m in ROSCO_SENDS[peer]]
    msgs = [m for m in msgs if m["typetags"] != ","] + [msg("/%s/e" % peer, ",")]
    recv, port = procs.peer_recv(peer, *recv_args(peer, msgs, proto, framing))
    for m in msgs:
        oscsend(procs, proto, send_args(m))(port)
    assert recv.wait(support.RECEIVE + 5) == 0, recv.report()
    assert canon(received(recv, len(msgs))) == canon(msgs)


@selfcheck
@liblo
@pytest.mark.parametrize("peer,proto,framing", [
    pytest.param("pyosc", "udp", "length", marks=pyosc, id="pyosc-udp"),
    pytest.param("pyosc", "tcp", "length", marks=pyosc, id="pyosc-tcp-mode1.0"),
    pytest.param("pyosc", "tcp", "slip", marks=pyosc, id="pyosc-tcp-mode1.1"),
    pytest.param("osc4py3", "udp", "length", marks=osc4py3, id="osc4py3-udp"),
    pytest.param("aiolo", "udp", "length", marks=aiolo, id="aiolo-udp"),
    pytest.param("aiolo", "tcp", "length", marks=aiolo, id="aiolo-tcp"),
    pytest.param("aiolo", "tcp", "slip", marks=aiolo, id="aiolo-tcp-slip"),
])
def test_peer_to_oscdump(procs, peer, proto, framing):
    m = BASIC[peer]
    b = msg("/%s/blob" % peer, ",b", "010203")
    lines = oscdump_lines(procs, proto, [
        lambda port: procs.peer_send(peer, port, [("msg", m)], "--proto", proto, "--framing", framing),
        lambda port: procs.peer_send(peer, port, [("msg", b)], "--proto", proto, "--framing", framing),
    ])
    assert lines == ['%s ifs 1 2.500000 "hi"' % m["address"], "%s b [3b 0x1 0x2 0x3]" % b["address"]]


@selfcheck
@liblo
@pyosc
def test_pyosc_slip_bundle_first_is_lost_by_liblo(procs):
    # Spec section 7: a python-osc (SLIP) connection whose first packet is a bundle starts
    # C0 23 62 75; liblo 0.31 takes it for a length prefix and loses every packet on it.
    # rosco's listener must not (test_peer_tcp_to_rosco_dump[...pyosc-slip-bundle_first]).
    packets, _ = tcp_packets("pyosc", bundle_first=True)
    dump, port = procs.oscdump("tcp")
    procs.peer_send("pyosc", port, packets, "--proto", "tcp", "--framing", "slip")
    # The control: the same packets, message first, on a second connection, do arrive.
    control, _ = tcp_packets("pyosc", bundle_first=False)
    procs.peer_send("pyosc", port, control, "--proto", "tcp", "--framing", "slip")
    collect_lines(dump, 4)       # the control connection: 2 messages + 2 in the bundle
    time.sleep(0.3)
    dump.kill()
    got = [without_timetag(l).split(" ")[0] for l in dump.out_lines if l]
    assert got == ["/pyosc/x", "/pyosc/b", "/pyosc/in", "/pyosc/x"], dump.report()


@selfcheck
@pytest.mark.parametrize("sender,receiver", [
    pytest.param(s, r, marks=[PEER_MARK[s], PEER_MARK[r]], id="%s-to-%s" % (s, r))
    for s in ("pyosc", "osc4py3", "aiolo") for r in ("pyosc", "osc4py3", "aiolo") if s != r
])
def test_peer_to_peer_udp(procs, sender, receiver):
    m = msg("/x/%s" % receiver, ",ifsb", -7, 2.5, "hi", "0102")
    bun = [msg("/x/%s/b" % receiver, ",i", 3)]
    recv, port = procs.peer_recv(receiver, *recv_args(receiver, [m] + bun))
    procs.peer_send(sender, port, [("msg", m), ("bundle", bun)])
    assert recv.wait(support.RECEIVE + 5) == 0, recv.report()
    assert canon(received(recv, 2)) == canon([m] + bun)


# =================================================================================================
# address compression (SMC 2011) against osc4py3's own encoder and decoder
# =================================================================================================

SYNTH = "/synth/1/freq"


@codec
@osc4py3
def test_osc4py3_compressed_address_decoded_by_rosco(procs):
    from osc4py3 import oscbuildparse as ob
    raw = bytes(ob.encode_packet(ob.OSCMessage(SYNTH, ",if", [440, 0.5]),
                                 {"addrpattern_compression": {SYNTH: 7}}))
    # "/" and the code stand for the address.
    assert raw[:8] == b"/\0\0\0\0\0\0\x07"
    table = ["--address-code", "7=" + SYNTH]
    p = procs.run(procs.rosco("decode", "--json", *table, raw.hex()), name="rosco decode")
    got = json.loads(p.out_lines[0])
    assert (got["address"], got["typetags"]) == (SYNTH, ",if")
    assert [a["value"] for a in got["args"]] == [440, 0.5]
    # Without the table the packet is not OSC rosco can read.
    p = procs.run(procs.rosco("decode", raw.hex()), name="rosco decode", check=False)
    assert p.wait() == 1


@codec
@osc4py3
def test_rosco_compressed_address_decoded_by_osc4py3(procs):
    from osc4py3 import oscbuildparse as ob
    enc = procs.run(procs.rosco("encode", "--address-code", "7=" + SYNTH, SYNTH, "if", "440", "0.5"),
                    name="rosco encode")
    raw = bytes.fromhex(enc.out_lines[0].strip())
    # Compressed (osc4py3 would read the plain address with the table too).
    assert raw[:8] == b"/\0\0\0\0\0\0\x07"
    m = ob.decode_packet(raw, {"addrpattern_decompression": {7: SYNTH}})
    assert (m.addrpattern, m.typetags, m.arguments) == (SYNTH, ",if", (440, 0.5))


# =================================================================================================
# osc4py3's advanced packet control: packets inside /packet ,sbsbsb envelopes
# =================================================================================================

def osc4py3_envelope(oob):
    """osc4py3's own envelope around /a/b ,if 1 2.5, with the out-of-band options `oob`."""
    from osc4py3 import oscbuildparse as ob
    options = dict(oob, advanced_packet_control=True)
    return bytes(ob.encode_packet(ob.OSCMessage("/a/b", ",if", [1, 2.5]), options))


def crc32(data, protocol, oob):
    return zlib.crc32(bytes(data)).to_bytes(4, "big")


@codec
@osc4py3
def test_osc4py3_packet_control_read_by_rosco(procs):
    # With a checksum rosco cannot check: the packet is read, and stderr says so.
    raw = osc4py3_envelope({"packet_mkchecksum_fct": crc32, "packet_checksum_prot": "crc32"})
    p = procs.run(procs.rosco("decode", "--json", "--packet-control", raw.hex()), name="rosco decode")
    got = json.loads(p.out_lines[0])
    assert (got["address"], got["typetags"]) == ("/a/b", ",if")
    assert [a["value"] for a in got["args"]] == [1, 2.5]
    assert any("checksum 'crc32' not checked" in l for l in p.err_lines), p.report()
    # Encrypted: refused (rosco has no cipher functions).
    raw = osc4py3_envelope({"packet_encrypt_fct": lambda d, prot, oob: bytes(reversed(d)),
                            "packet_crypt_prot": "reverse"})
    p = procs.run(procs.rosco("decode", "--packet-control", raw.hex()), name="rosco decode",
                  check=False)
    assert p.wait() == 1
    assert any("encrypted with 'reverse'" in l for l in p.err_lines), p.report()


@codec
@osc4py3
def test_rosco_packet_control_read_by_osc4py3(procs):
    from osc4py3 import oscbuildparse as ob
    enc = procs.run(procs.rosco("encode", "--packet-control", "/a/b", "if", "1", "2.5"),
                    name="rosco encode")
    raw = bytes.fromhex(enc.out_lines[0].strip())
    # Byte for byte what osc4py3 makes with nothing to check, and read back by it.
    assert raw == osc4py3_envelope({})
    m = ob.decode_packet(raw, {"advanced_packet_control": True})
    assert (m.addrpattern, m.typetags, m.arguments) == ("/a/b", ",if", (1, 2.5))


@rosco_io
@osc4py3
def test_osc4py3_packet_control_over_udp_to_rosco_dump(procs):
    dump, port = procs.rosco_dump("--json", "--packet-control", "--count", 1,
                                  "--timeout", support.RECEIVE, "osc.udp://:0")
    # Not an envelope: refused on stderr; the envelope after it is read.
    support.udp_send(port, bytes.fromhex(procs.run(procs.rosco("encode", "/plain"),
                                                   name="rosco encode").out_lines[0].strip()))
    support.udp_send(port, osc4py3_envelope({}))
    assert dump.wait(support.RECEIVE + 5) == 0, dump.report()
    got = dump.json_lines()
    assert [(g["address"], [a["value"] for a in g["args"]]) for g in got] == [("/a/b", [1, 2.5])]
    assert any("not a packet control envelope" in l for l in dump.err_lines), dump.report()


@rosco_io
@osc4py3
def test_osc4py3_bundle_in_an_envelope_to_rosco_dump_text(procs):
    from osc4py3 import oscbuildparse as ob
    dump, port = procs.rosco_dump("--packet-control", "--count", 2, "--timeout", support.RECEIVE,
                                  "osc.udp://:0")
    # A malformed packet inside an envelope is reported with its sender, then the bundle
    # in the next envelope is dispatched as any bundle.
    malformed = bytes(ob.encode_packet(ob.OSCMessage("/packet", ",sbsbsb",
                                                     ["", b"", "", b"", "", b"/a\0\0,i\0\0"])))
    support.udp_send(port, malformed)
    bundle = ob.OSCBundle(ob.OSC_IMMEDIATELY, [ob.OSCMessage("/b/1", ",i", [1]),
                                               ob.OSCMessage("/b/2", ",s", ["two"])])
    support.udp_send(port, bytes(ob.encode_packet(bundle, {"advanced_packet_control": True})))
    assert dump.wait(support.RECEIVE + 5) == 0, dump.report()
    lines = [l.split(" ", 1)[1] for l in dump.out_lines]
    assert lines == ["/b/1 i 1", '/b/2 s "two"'], dump.report()
    assert any("malformed packet from 127.0.0.1" in l for l in dump.err_lines), dump.report()


@rosco_io
@osc4py3
def test_rosco_send_packet_control_over_udp_to_osc4py3(procs):
    from osc4py3 import oscbuildparse as ob
    cap = support.RawUDP()
    try:
        procs.run(procs.rosco("send", "--packet-control", "osc.udp://127.0.0.1:%d" % cap.port,
                              "/a/b", "if", "1", "2.5"), name="rosco send")
        [raw] = cap.recv(1)
    finally:
        cap.close()
    m = ob.decode_packet(raw, {"advanced_packet_control": True})
    assert (m.addrpattern, m.typetags, m.arguments) == ("/a/b", ",if", (1, 2.5))
