#!/usr/bin/env bash
# A fresh machine with a registry cache: hoist against BuildKit, same run.
#
# For each case: one untimed build exports the cache (hoist: --cache-to
# type=registry,mode=max; BuildKit: an image built with
# BUILDKIT_INLINE_CACHE=1 and pushed). Then, RUNS times, each tool starts
# from an empty cache holding only the lab's base images and builds with
# --cache-from; that build is timed (wall clock, /usr/bin/time).
#
# Usage: benches/cache-lab.sh [-n RUNS] [-c "CASES"] [-o RAW.tsv]
# Needs: ../shared/bench/setup.sh (registry on 127.0.0.1:5000, dockerd,
#        bases) and LAB_CASES=/tmp/hoist-cases ../shared/bench/make-cases.sh.
# Env:   HOIST (default target/release/hoist), LAB_CASES (default /tmp/hoist-cases)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LAB="$HERE/../../shared/bench"
HOIST=${HOIST:-$HERE/../target/release/hoist}
CASES_DIR=${LAB_CASES:-/tmp/hoist-cases}
DOCKER=${DOCKER:-/usr/bin/docker}
REG=${REG:-127.0.0.1:5000}
RUNS=3
CASES="busybox-run multistage"
RAW="$HERE/../docs/bench-raw-cache-$(date -u +%Y-%m-%d).tsv"
while [ $# -gt 0 ]; do
  case "$1" in
    -n) RUNS=$2; shift 2 ;;
    -c) CASES=$2; shift 2 ;;
    -o) RAW=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown arg $1" >&2; exit 2 ;;
  esac
done
ROOT=/tmp/hoist-cache-lab
export HOIST_ROOT=$ROOT/store
LOG=$ROOT/logs
mkdir -p "$LOG"

fresh_hoist() {
  rm -rf "$HOIST_ROOT"
  HOIST="$HOIST" "$LAB/load-bases.sh" hoist >/dev/null 2>&1
}
fresh_docker() {
  "$DOCKER" images --format '{{.Repository}}:{{.Tag}}' | grep -vE '^(busybox:latest|debian:bookworm|[0-9.]+:[0-9]+/library/.*)$' |
    xargs -r "$DOCKER" rmi -f >/dev/null 2>&1
  "$DOCKER" image prune -f >/dev/null 2>&1
  "$DOCKER" builder prune -af >/dev/null 2>&1
  "$LAB/load-bases.sh" docker >/dev/null 2>&1
}
timed() { # timed LOGFILE CMD... -> seconds on stdout
  local t0 t1 log=$1
  shift
  t0=$(date +%s.%N)
  "$@" >"$log" 2>&1 || { echo "FAILED: $*" >&2; tail -5 "$log" >&2; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
run_logged() { local log=$1; shift; "$@" >"$log" 2>&1 || { echo "FAILED: $*" >&2; tail -5 "$log" >&2; }; }

printf 'tool\tcase\tphase\trun\tseconds\n' >"$RAW"
for c in $CASES; do
  d="$CASES_DIR/$c"
  ref_hoist="$REG/cachelab/$c:hoist-cache"
  ref_bk="$REG/cachelab/$c:bk-inline"
  # Prime: the caches a first CI run would leave.
  fresh_hoist
  run_logged "$LOG/$c.hoist.prime" "$HOIST" build --progress=plain --network host -t "cachelab-$c:1" \
    --cache-to "type=registry,ref=$ref_hoist,mode=max" "$d"
  fresh_docker
  run_logged "$LOG/$c.bk.prime" env DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain --network host \
    --build-arg BUILDKIT_INLINE_CACHE=1 -t "$ref_bk" "$d"
  run_logged "$LOG/$c.bk.push" "$DOCKER" push "$ref_bk"
  for r in $(seq 1 "$RUNS"); do
    fresh_hoist
    s=$(timed "$LOG/$c.hoist.$r" "$HOIST" build --progress=plain --network host -t "cachelab-$c:1" \
      --cache-from "type=registry,ref=$ref_hoist" "$d")
    printf 'hoist\t%s\tfresh-with-cache\t%s\t%s\n' "$c" "$r" "$s" | tee -a "$RAW"
    fresh_docker
    s=$(timed "$LOG/$c.bk.$r" env DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain --network host \
      --cache-from "$ref_bk" -t "cachelab-$c:1" "$d")
    printf 'docker-buildkit\t%s\tfresh-with-cache\t%s\t%s\n' "$c" "$r" "$s" | tee -a "$RAW"
  done
done
echo
echo "median seconds and hoist/BuildKit ratio:"
python3 - "$RAW" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for r in rows:
    med.setdefault((r["tool"], r["case"]), []).append(float(r["seconds"]))
for (tool, case), v in sorted(med.items()):
    if tool != "hoist":
        continue
    h, b = statistics.median(v), statistics.median(med[("docker-buildkit", case)])
    print(f"{case:12} hoist {h:.2f}s  buildkit {b:.2f}s  ratio {h / b:.2f}x")
PY
