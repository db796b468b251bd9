#!/bin/bash
# The build plan on long and wide Dockerfiles: `hoist graph --steps` (the
# plan alone) and `hoist build` (plan, solve, execute) of generated
# Dockerfiles, each binary on a fresh store, median of RUNS wall seconds
# and the peak RSS of that run. Compare two builds of hoist in one run:
#
#   benches/plan/measure.sh BEFORE_BIN AFTER_BIN [RUNS]
#
# Cases: env100k (one stage, 100,000 ENV lines), stages2k (2,000 stages,
# each FROM the one before), fan1k (1,000 stages copied into one: 1,000
# inputs on one step), plus the digests of the images each binary made
# (with SOURCE_DATE_EPOCH set they must be equal).
set -euo pipefail
BEFORE=$1 AFTER=$2 RUNS=${3:-5}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
python3 - <<'PY'
open('env100k','w').write('FROM scratch\n'+''.join(f'ENV k{i%1000}=v{i}\n' for i in range(100000))+'COPY a /a\n')
open('stages2k','w').write('FROM scratch AS s0\nCOPY a /a\n'+''.join(f'FROM s{i-1} AS s{i}\nENV n={i}\n' for i in range(1,2000)))
open('fan1k','w').write(''.join(f'FROM scratch AS s{i}\nCOPY a /a{i}\n' for i in range(1000))+'FROM scratch\n'+''.join(f'COPY --from=s{i} /a{i} /\n' for i in range(1000)))
open('a','w').write('a\n')
PY
export SOURCE_DATE_EPOCH=1700000000
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '| case | what | before s | after s | after/before | before RSS MiB | after RSS MiB |\n|---|---|---|---|---|---|---|\n'
for c in env100k stages2k fan1k; do
  for what in graph build; do
    declare -A T=() M=()
    for side in before after; do
      bin=$BEFORE; [ $side = after ] && bin=$AFTER
      # hoist before the plan had no `graph --steps`.
      if [ $what = graph ] && ! "$bin" graph --help 2>/dev/null | grep -q -- --steps; then
        T[$side]=0; M[$side]=0; continue
      fi
      : > "$W/t"
      for _ in $(seq "$RUNS"); do
        rm -rf "$W/store"
        if [ $what = graph ]; then args=(graph --steps -f "$c"); else args=(build -q -f "$c" .); fi
        /usr/bin/time -f '%e %M' -o "$W/one" "$bin" --root "$W/store" "${args[@]}" > "$W/out" 2>/dev/null || echo "FAILED $side $c $what" >&2
        cat "$W/one" >> "$W/t"
        [ $what = build ] && tail -1 "$W/out" > "$W/digest-$side-$c"
      done
      T[$side]=$(cut -d' ' -f1 "$W/t" | median)
      M[$side]=$(cut -d' ' -f2 "$W/t" | median)
    done
    ratio=-; [ "${T[before]}" != 0 ] && ratio=$(printf '%.2f' "$(echo "${T[after]} / ${T[before]}" | bc -l)")
    printf '| %s | %s | %s | %s | %s | %d | %d |\n' "$c" "$what" "${T[before]}" "${T[after]}" \
      "$ratio" $((M[before]/1024)) $((M[after]/1024))
  done
  cmp -s "$W/digest-before-$c" "$W/digest-after-$c" && echo "  $c: same image digest $(cat "$W/digest-after-$c")" >&2 \
    || echo "  $c: DIGESTS DIFFER: $(cat "$W/digest-before-$c") vs $(cat "$W/digest-after-$c")" >&2
done
