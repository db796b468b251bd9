#!/usr/bin/env python3
"""Write what BuildKit built from a case here as CASE/buildkit.txt.

Usage: docker save IMAGE | python3 testdata/run/record.py CASE BASE_LAYERS
(testdata/run/record.sh runs it for every case). Lines, tab-separated:
    history  EMPTY_LAYER(0|1)  CREATED_BY(JSON string)
    layer    N                 (N counts from 1 after the base's layers)
    PATH  KIND(f d l h p c b)  MODE(octal)  UID:GID  SIZE  LINK
"""
import io, json, os, sys, tarfile

case, base_layers = sys.argv[1], int(sys.argv[2])
outer = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()))
manifest = json.load(outer.extractfile("manifest.json"))[0]
config = json.load(outer.extractfile(manifest["Config"]))
out = []
for h in config["history"]:
    empty = 1 if h.get("empty_layer") else 0
    out.append(f"history\t{empty}\t{json.dumps(h.get('created_by', ''))}")
for n, layer in enumerate(manifest["Layers"][base_layers:], start=1):
    out.append(f"layer\t{n}")
    with tarfile.open(fileobj=outer.extractfile(layer)) as t:
        for m in t.getmembers():
            name = m.name[2:] if m.name.startswith("./") else m.name
            name = name.rstrip("/") or "."
            kind = {tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l", tarfile.LNKTYPE: "h",
                    tarfile.FIFOTYPE: "p", tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b"}.get(m.type, "f")
            size = m.size if kind == "f" else 0
            link = m.linkname if kind in ("l", "h") else ""
            out.append(f"{name}\t{kind}\t{m.mode & 0o7777:04o}\t{m.uid}:{m.gid}\t{size}\t{link}")
dest = os.path.join(os.path.dirname(os.path.abspath(__file__)), case, "buildkit.txt")
with open(dest, "w") as f:
    f.write("\n".join(out) + "\n")
