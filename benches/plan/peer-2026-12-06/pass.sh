#!/bin/bash
# pass.sh LABEL(before|after) TAG RUNS [CASES] [PHASES]
# One bench.sh pass for tool hoist with the given binary, on a fresh store.
set -u
L=$1; TAG=$2; N=$3; CASES=${4:-}; PHASES=${5:-}
B=/work/bench-plan
export HOIST=$B/$L-target/release/hoist
export HOIST_ROOT=$B/store-$L
export HOIST_CONFIG=$B/hoist-config.toml
export LAB_CASES=$B/cases
export LOGROOT=$B/logs
rm -rf "$HOIST_ROOT"; mkdir -p "$B/raw" "$LOGROOT"
/work/shared/bench/load-bases.sh hoist >/dev/null   # bases in the fresh store (bench.sh only loads them in the cold phase)
args=(-t hoist -n "$N" -o "$B/raw/$TAG-$L.tsv" -m "$B/raw/$TAG-$L.md")
[ -n "$CASES" ] && args+=(-c "$CASES")
[ -n "$PHASES" ] && args+=(-p "$PHASES")
echo "### $TAG $L start $(date -u +%T) $("$HOIST" --version) root=$HOIST_ROOT"
/work/shared/bench/bench.sh "${args[@]}"
echo "### $TAG $L end $(date -u +%T)"
rm -rf "$HOIST_ROOT"
