#!/usr/bin/env python3
"""Generate a build context of FILES files spread over DIRS directories
(two levels: sqrt-ish fan-out), small files of 0-255 bytes, plus one
symlink per directory pointing outside the context (never to be
followed). Usage: gen_context.py ROOT FILES DIRS"""
import os, sys

root, files, dirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
top = max(1, int(dirs ** 0.5))
per_dir = files // dirs
os.makedirs(root, exist_ok=True)
n = 0
for d in range(dirs):
    path = os.path.join(root, f"t{d % top:03d}", f"d{d:05d}")
    os.makedirs(path, exist_ok=True)
    os.symlink("/etc", os.path.join(path, "out-link"))
    for f in range(per_dir):
        with open(os.path.join(path, f"f{f:04d}.txt"), "wb") as fh:
            fh.write(os.urandom((n * 7919) % 256))
        n += 1
print(f"{n} files, {dirs} dirs under {root}")
