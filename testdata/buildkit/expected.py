#!/usr/bin/env python3
"""Write what BuildKit built as the expected values hoist's tests compare to.

Usage (on a machine with a docker daemon; BuildKit via docker 20.10):
    DOCKER_BUILDKIT=1 docker build -t bkref/CASE:1 testdata/buildkit/CASE
    docker save bkref/CASE:1 | python3 testdata/buildkit/expected.py CASE
Writes CASE/expected-config.json (the image config without timestamps) and
CASE/expected-files.txt (the flattened filesystem: one line per path with
type, mode, uid:gid, size and link target).
"""
import io, json, sys, tarfile

case = sys.argv[1]
outer = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()))
manifest = json.load(outer.extractfile("manifest.json"))[0]
config = json.load(outer.extractfile(manifest["Config"]))
files = {}
for layer in manifest["Layers"]:
    with tarfile.open(fileobj=outer.extractfile(layer)) as t:
        for m in t.getmembers():
            name = "/" + m.name.lstrip("./").rstrip("/")
            base = name.rsplit("/", 1)
            if base[-1].startswith(".wh."):
                victim = base[0] + "/" + base[-1][4:]
                for k in [k for k in files if k == victim or k.startswith(victim + "/")]:
                    del files[k]
                continue
            kind = "d" if m.isdir() else "l" if m.issym() else "h" if m.islnk() else "f"
            target = m.linkname if (m.issym() or m.islnk()) else ""
            files[name] = f"{kind} {m.mode & 0o7777:04o} {m.uid}:{m.gid} {m.size if kind == 'f' else 0} {target}".rstrip()
for h in config.get("history", []):
    h.pop("created", None)
config.pop("created", None)
with open(f"{case}/expected-config.json", "w") as f:
    json.dump(config, f, indent=2, sort_keys=True)
    f.write("\n")
with open(f"{case}/expected-files.txt", "w") as f:
    for k in sorted(files):
        if k != "/":
            f.write(f"{k} {files[k]}\n")
