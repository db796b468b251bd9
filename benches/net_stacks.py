#!/usr/bin/env python3
"""The stacks alone (docs/network.md): a network namespace, the stack
started as hoist starts it (crates/sandbox/src/stack.rs), ready, then
killed and reaped; the median of 7 of each. As root:

    python3 benches/net_stacks.py
"""
import os
import subprocess
import time

def once(args, slirp=False):
    holder = subprocess.Popen(["unshare", "-n", "sleep", "60"])
    time.sleep(0.1)
    ns = os.open(f"/proc/{holder.pid}/ns/net", os.O_RDONLY)
    holder.kill(); holder.wait()
    r, w = os.pipe()
    t0 = time.monotonic()
    if slirp:
        er, ew = os.pipe()
        p = subprocess.Popen(["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", "--netns-type=path", f"--ready-fd={w}", f"--exit-fd={er}"] + args + [f"/proc/self/fd/{ns}", "tap0"], pass_fds=(ns, w, er), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(er)
    else:
        p = subprocess.Popen(["pasta", "-f", "-q", "--runas", "0", "--config-net", "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw", "--netns", f"/proc/self/fd/{ns}", "--pid", f"/proc/self/fd/{w}"] + args, pass_fds=(ns, w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    os.read(r, 64)
    t1 = time.monotonic()
    os.close(ns)
    if slirp: os.close(ew)
    p.kill(); p.wait()
    t2 = time.monotonic()
    os.close(r)
    return (t1 - t0) * 1000, (t2 - t1) * 1000
for name, args, slirp in [("pasta", [], False), ("pasta -4", ["-4"], False), ("slirp", [], True), ("slirp sandbox+seccomp", ["--enable-sandbox", "--enable-seccomp"], True)]:
    res = [once(args, slirp) for _ in range(7)]
    up = sorted(x[0] for x in res)[3]; down = sorted(x[1] for x in res)[3]
    print(f"{name:24s} ready {up:6.1f} ms   kill+reap {down:6.1f} ms")
