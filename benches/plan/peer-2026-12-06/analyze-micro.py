#!/usr/bin/env python3
"""analyze-micro.py raw/micro.tsv : interleaved ABBA runs -> median wall, paired ratio, CPU ratio."""
import sys, statistics as st, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
W = collections.defaultdict(dict); CPU = collections.defaultdict(dict); RSS = collections.defaultdict(int); FAIL = collections.Counter()
order = []
for l, c, p, i, rc, wall, u, s, m in rows:
    if (c, p) not in order: order.append((c, p))
    if rc != "0": FAIL[(c, p, l)] += 1; continue
    W[(c, p, l)][i] = float(wall); CPU[(c, p, l)][i] = float(u) + float(s); RSS[(c, p, l)] = max(RSS[(c, p, l)], int(m) // 1024)
print("| case | phase | n pairs | before median wall s | after median wall s | after/before (medians) | median of paired ratios | CPU user+sys median s B→A (ratio) | peak RSS MiB B/A | flag |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c, p in order:
    b, a = W[(c, p, "before")], W[(c, p, "after")]
    pairs = sorted(set(b) & set(a), key=int)
    if not pairs:
        print(f"| {c} | {p} | 0 | | | | | | | FAIL B={FAIL[(c,p,'before')]} A={FAIL[(c,p,'after')]} |"); continue
    mb, ma = st.median(b.values()), st.median(a.values())
    pr = st.median(a[i] / b[i] for i in pairs)
    cb, ca = st.median(CPU[(c,p,"before")].values()), st.median(CPU[(c,p,"after")].values())
    cr = f"{ca/cb:.2f}" if cb > 0 else "-"
    r = ma / mb
    flag = "**>1.05**" if r > 1.05 else ""
    f = "".join(f" fail{l[0].upper()}={FAIL[(c,p,l)]}" for l in ("before", "after") if FAIL[(c,p,l)])
    print(f"| {c} | {p} | {len(pairs)} | {mb:.3f} | {ma:.3f} | {r:.3f} | {pr:.3f} | {cb:.2f}→{ca:.2f} ({cr}) | {RSS[(c,p,'before')]}/{RSS[(c,p,'after')]} | {flag}{f} |")
