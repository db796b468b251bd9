#!/bin/bash
# micro.sh OUT.tsv : per-run interleaved before/after (ABBA order) on every case x phase,
# wall from date +%s%N (ns), user/sys/maxrss from /usr/bin/time. Same commands as bench.sh.
# Columns: label case phase iter rc wall_s user_s sys_s maxrss_kib
set -u
cd /work/bench-plan
OUT=$1; : >"$OUT"
export HOIST_CONFIG=/work/bench-plan/hoist-config.toml LAB_CASES=/work/bench-plan/cases
SB=/work/shared/bench; C=/work/bench-plan/cases; EXP=/tmp/lab-bench-export; mkdir -p "$EXP" logs/micro
NC=${NC:-5}; NX=${NX:-8}; NS=${NS:-15}
bin() { echo /work/bench-plan/$1-target/release/hoist; }
env_of() { echo "HOIST_ROOT=/work/bench-plan/mstore-$1"; }
h() { local l=$1; shift; env HOIST_ROOT=/work/bench-plan/mstore-$l "$(bin $l)" "$@"; }
timed() { # timed LABEL CASE PHASE ITER CMD...
  local l=$1 c=$2 p=$3 i=$4; shift 4; local tf; tf=$(mktemp)
  local t0 t1; t0=$(date +%s%N)
  env HOIST_ROOT=/work/bench-plan/mstore-$l /usr/bin/time -f '%U %S %M' -o "$tf" "$@" >"logs/micro/$l.$c.$p.$i.log" 2>&1
  local rc=$?; t1=$(date +%s%N)
  local u s m; read -r u s m < <(grep -E '^[0-9.]+ [0-9.]+ [0-9]+$' "$tf" | tail -1); rm -f "$tf"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$l" "$c" "$p" "$i" "$rc" "$(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.4f",(b-a)/1e9}')" "$u" "$s" "$m" >>"$OUT"
}
order() { if [ $(( $1 % 2 )) = 1 ]; then echo "before after"; else echo "after before"; fi; }
clear_store() { h "$1" prune --all --force >/dev/null 2>&1; HOIST=$(bin $1) HOIST_ROOT=/work/bench-plan/mstore-$1 $SB/load-bases.sh hoist >/dev/null 2>&1; }
build() { local l=$1 c=$2; echo "$(bin $l) build --progress=plain --network host -t lab/$c:hoist $C/$c"; }
for l in before after; do rm -rf mstore-$l; HOIST=$(bin $l) HOIST_ROOT=/work/bench-plan/mstore-$l $SB/load-bases.sh hoist >/dev/null 2>&1; done
CASES=${CASES:-"busybox-run debian-apt multistage dockerignore scratch-copy-many scratch-copy-big"}
for c in $CASES; do
  echo "== $c $(date -u +%T)"
  printf 'late file for case %s (initial)\n' "$c" >"$C/$c/late.txt"
  if [ "$c" != scratch-copy-big ]; then
    for i in $(seq 1 $NC); do for l in $(order $i); do clear_store $l; timed $l $c cold $i $(build $l $c); done; done
  fi
  for l in before after; do h $l build --progress=plain --network host -t lab/$c:hoist $C/$c >/dev/null 2>&1; done   # warm-up
  for i in $(seq 1 $NS); do for l in $(order $i); do timed $l $c cached $i $(build $l $c); done; done
  for i in $(seq 1 $NS); do for l in $(order $i); do printf 'changed %s\n' "$(date +%s%N)" >>"$C/$c/late.txt"; timed $l $c change $i $(build $l $c); done; done
  for i in $(seq 1 $NX); do for l in $(order $i); do rm -f $EXP/m-$c.tar; timed $l $c export $i $(bin $l) save -o $EXP/m-$c.tar lab/$c:hoist; done; done
  rm -f $EXP/m-$c.tar
  for i in $(seq 1 $NX); do for l in $(order $i); do
    LAB_REGISTRY_ADDR=127.0.0.1:5001 LAB_REGISTRY_DIR=/var/lib/lab-registry-push $SB/registry.sh wipe >/dev/null 2>&1
    timed $l $c push $i $(bin $l) push lab/$c:hoist 127.0.0.1:5001/lab/$c:hoist; done; done
  printf 'late file for case %s (initial)\n' "$c" >"$C/$c/late.txt"
done
LAB_REGISTRY_ADDR=127.0.0.1:5001 LAB_REGISTRY_DIR=/var/lib/lab-registry-push $SB/registry.sh stop >/dev/null 2>&1
rm -rf mstore-before mstore-after
echo MICRODONE $(date -u +%T)
