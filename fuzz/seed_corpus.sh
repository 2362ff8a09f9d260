#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the shared vectors (../shared/vectors beside the
# repository): one file per packet, pattern case or stream, laid out as each target reads
# its input. Needs python3. Re-running it rewrites the same files; libFuzzer adds its own.
set -euo pipefail
cd "$(dirname "$0")"
vectors=${1:-../../shared/vectors}
python3 - "$vectors" <<'PY'
import hashlib, json, os, sys

vectors = sys.argv[1]
osc = json.load(open(os.path.join(vectors, "osc-vectors.json")))
patterns = json.load(open(os.path.join(vectors, "osc-patterns.json")))

def put(target, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def slip(p):
    return b"\xc0" + p.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"

now = (0xE000_0000 << 32).to_bytes(8, "big")  # 2019, before most vector timetags
for v in osc["vectors"]:
    p = bytes.fromhex(v["hex"])
    put("decode", p)
    if len(p) > 1024:
        continue  # keep the stream seeds small: big inputs slow the framing target down
    put("receive", now + b"\x00" + p)
    # chunk seed 1, 1 MiB cap, push; then 64-byte cap, read_from
    put("framing", b"\x01\xff\x00" + len(p).to_bytes(4, "big") + p)
    put("framing", b"\x02\x3f\x01" + slip(p) + slip(p))
for s in osc["stream_framing"]:
    put("framing", b"\x03\xff\x00" + bytes.fromhex(s["stream_hex"]))
for c in patterns["cases"]:
    put("pattern", c["pattern"].encode() + b"\x00" + c["address"].encode())
for t in ("decode", "framing", "pattern", "receive"):
    print(t, len(os.listdir(os.path.join("corpus", t))))
PY
