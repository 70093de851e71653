#!/usr/bin/env python3
"""Cuts the first N tokens of one layer of the shared SmolLM2 activations into a test fixture.

usage: cut-slice.py SRC_DIR DST_DIR [--layer 18] [--tokens 96]

Same format as the source: layerLL-{q,k,v}.f16 row-major [heads][tokens][64] fp16 little-endian,
plus a manifest.json with the sliced shapes and the max |x| of each sliced file.
"""
import argparse, json, math, os, struct

ap = argparse.ArgumentParser()
ap.add_argument("src"); ap.add_argument("dst")
ap.add_argument("--layer", type=int, default=18)
ap.add_argument("--tokens", type=int, default=96)
a = ap.parse_args()

with open(os.path.join(a.src, "manifest.json")) as f:
    src = json.load(f)
os.makedirs(a.dst, exist_ok=True)
files = {}
for tensor in ("q", "k", "v"):
    name = "layer%02d-%s.f16" % (a.layer, tensor)
    heads, tokens, dim = src["files"][name]["shape"]
    assert a.tokens <= tokens
    with open(os.path.join(a.src, name), "rb") as f:
        data = f.read()
    assert len(data) == heads * tokens * dim * 2
    row = dim * 2
    out = b"".join(data[(h * tokens) * row:(h * tokens + a.tokens) * row] for h in range(heads))
    vals = struct.unpack("<%de" % (len(out) // 2), out)
    assert all(math.isfinite(x) for x in vals)
    with open(os.path.join(a.dst, name), "wb") as f:
        f.write(out)
    files[name] = {"layer": a.layer, "tensor": tensor, "shape": [heads, a.tokens, dim],
                   "maxAbs": max(abs(x) for x in vals)}

manifest = {
    "model": src["model"],
    "text": src["text"],
    "slice": "first %d tokens of layer %d of the shared fixture smollm2-activations (cut by cut-slice.py)" % (a.tokens, a.layer),
    "layout": src["layout"].replace("tokens=1024", "tokens=%d" % a.tokens),
    "convention": src["convention"],
    "layers": [a.layer],
    "files": files,
}
with open(os.path.join(a.dst, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
    f.write("\n")
