#!/usr/bin/env python3
"""analyze.py TAG... : median wall s per case x phase for before/after over the raw TSVs
raw/TAG-before.tsv and raw/TAG-after.tsv; prints a markdown table."""
import sys, statistics, collections
tags = sys.argv[1:]
CASES = "busybox-run debian-apt multistage dockerignore scratch-copy-many scratch-copy-big".split()
PHASES = "cold cached change export push".split()
w = collections.defaultdict(list); rss = collections.defaultdict(int); fails = collections.Counter()
per = collections.defaultdict(list)
for t in tags:
    for l in ("before", "after"):
        try: f = open(f"raw/{t}-{l}.tsv")
        except FileNotFoundError: continue
        for line in f:
            tool, c, p, r, rc, wall, m, d = line.rstrip("\n").split("\t")
            k = (c, p, l)
            if rc != "0" or wall == "NA": fails[k] += 1; continue
            w[k].append(float(wall)); per[(c, p, l, t)].append(float(wall))
            rss[k] = max(rss[k], (int(m) + int(d)) // 1024)
print(f"rounds: {' '.join(tags)}\n")
print("| case | phase | before median s (n) | after median s (n) | after/before | per-round medians B→A | peak RSS MiB before/after | flag |")
print("|---|---|---|---|---|---|---|---|")
for c in CASES:
    for p in PHASES:
        b, a = w[(c, p, "before")], w[(c, p, "after")]
        if not b or not a: 
            if b or a or fails[(c,p,'before')] or fails[(c,p,'after')]:
                print(f"| {c} | {p} | n={len(b)} fail={fails[(c,p,'before')]} | n={len(a)} fail={fails[(c,p,'after')]} | - | - | - | FAIL |")
            continue
        mb, ma = statistics.median(b), statistics.median(a)
        ratio = ma / mb if mb > 0 else float("inf")
        rounds = "; ".join(
            f"{statistics.median(per[(c,p,'before',t)]):.2f}→{statistics.median(per[(c,p,'after',t)]):.2f}"
            for t in tags if per[(c,p,'before',t)] and per[(c,p,'after',t)])
        flag = "**>1.05**" if ratio > 1.05 else ""
        fl = "".join(f" fail{l[0].upper()}={fails[(c,p,l)]}" for l in ("before","after") if fails[(c,p,l)])
        print(f"| {c} | {p} | {mb:.2f} ({len(b)}) | {ma:.2f} ({len(a)}) | {ratio:.3f} | {rounds} | {rss[(c,p,'before')]}/{rss[(c,p,'after')]} | {flag}{fl} |")
