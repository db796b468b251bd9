#!/usr/bin/env bash
# Reproduces the figures in docs/dependencies.md ("Registry client and
# context walker: oci-client and walkdir measured"). Needs docker-registry
# (Debian package), python3, curl, GNU time. Writes under $WORK (default
# /tmp/hoist-deps, about 1.5 GB with the 1M-file context) and removes it.
#
#   benches/deps/measure.sh [registry|walk|walk1m|all]   (default: all)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
WORK=${WORK:-/tmp/hoist-deps}
RUNS=${RUNS:-3}
WHAT=${1:-all}
mkdir -p "$WORK"
export DOCKER_CONFIG=$WORK/docker-config # no credentials needed

# The scratch crate is its own workspace; start from hoist's lock file so
# hoist-engine's dependencies resolve to the versions hoist ships.
[ -f "$HERE/Cargo.lock" ] || cp "$REPO/Cargo.lock" "$HERE/Cargo.lock"
cargo build --release --bin hoist --manifest-path "$REPO/Cargo.toml"
cargo build --release --manifest-path "$HERE/Cargo.toml"
BIN=$CARGO_TARGET_DIR/release
HOIST=$BIN/hoist

# `timed LABEL CMD...`: one line "LABEL <wall s> <peak RSS KiB>".
timed() {
    local label=$1
    shift
    /usr/bin/time -f "%e %M" -o "$WORK/time.out" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" ||
        { cat "$WORK/cmd.err" >&2; return 1; }
    echo "$label $(cat "$WORK/time.out")" | tee -a "$WORK/results.txt"
}

REG_PID=""
# A fresh docker-registry on a free port with its own storage (as
# hoist_engine::testing::Registry does); sets PORT.
start_registry() {
    stop_registry
    local dir
    dir=$(mktemp -d "$WORK/registry.XXXX")
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$dir/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$PORT
YML
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && return 0
        sleep 0.1
    done
    echo "registry did not start" >&2
    return 1
}
stop_registry() {
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=""
    fi
}
trap stop_registry EXIT

registry() {
    # The image: one 200 MiB random layer and 50 layers of 100 KiB random.
    local ctx=$WORK/imgctx
    rm -rf "$ctx" && mkdir -p "$ctx"
    head -c 200M /dev/urandom >"$ctx/big.bin"
    {
        echo "FROM scratch"
        echo "COPY big.bin /"
        for i in $(seq -w 1 50); do
            head -c 100K /dev/urandom >"$ctx/s$i.bin"
            echo "COPY s$i.bin /"
        done
    } >"$ctx/Dockerfile"
    rm -rf "$WORK/src"
    "$HOIST" --root "$WORK/src" build -q -t bench/img:1 "$ctx" >/dev/null

    for r in $(seq "$RUNS"); do
        start_registry
        timed "push hoist run$r" "$HOIST" --root "$WORK/src" push -q bench/img:1 "127.0.0.1:$PORT/bench/img:1"
        rm -rf "$WORK/pull-hoist"
        timed "pull hoist run$r" "$HOIST" --root "$WORK/pull-hoist" pull -q --unpack false "127.0.0.1:$PORT/bench/img:1"
        rm -rf "$WORK/pull-oci"
        timed "pull oci-client run$r" "$BIN/oci_pull" "127.0.0.1:$PORT/bench/img:1" "$WORK/pull-oci"
    done
    for r in $(seq "$RUNS"); do
        start_registry
        timed "push hoist-chunked run$r" "$BIN/hoist_push_chunked" "$WORK/src" bench/img:1 "127.0.0.1:$PORT/bench/img:1"
    done
    for mode in monolithic chunked4m chunked; do
        for r in $(seq "$RUNS"); do
            start_registry
            timed "push oci-client-$mode run$r" "$BIN/oci_push" "$WORK/pull-oci" "127.0.0.1:$PORT/bench/img:1" "$mode"
        done
    done
    stop_registry
    rm -rf "$WORK/src" "$WORK/pull-hoist" "$WORK/pull-oci" "$WORK"/registry.* "$ctx"
}

walk_one() {
    local files=$1 dirs=$2 ctx=$WORK/ctx$1
    rm -rf "$ctx"
    python3 "$HERE/gen_context.py" "$ctx" "$files" "$dirs"
    "$BIN/walk" walkdir "$ctx" 2>/dev/null # warm the dentry and inode caches
    for r in $(seq "$RUNS"); do
        for mode in walkdir walkdir-de hoist; do
            timed "walk$files $mode run$r" "$BIN/walk" "$mode" "$ctx"
        done
    done
    rm -f "$WORK/hashcache"
    timed "walk$files hoist-hash-cold" "$BIN/walk" hoist-hash "$ctx" "$WORK/hashcache"
    for r in $(seq "$RUNS"); do
        timed "walk$files hoist-hash-warm run$r" "$BIN/walk" hoist-hash "$ctx" "$WORK/hashcache"
    done
    if [ "$files" -le 100000 ]; then
        # The same through the CLI: a cached rebuild of `COPY . /`.
        printf 'FROM scratch\nCOPY . /\n' >"$WORK/copy-all.Dockerfile"
        rm -rf "$WORK/e2e-root"
        timed "walk$files build-first" "$HOIST" --root "$WORK/e2e-root" build -q \
            -f "$WORK/copy-all.Dockerfile" -t e2e:1 "$ctx"
        for r in $(seq "$RUNS"); do
            timed "walk$files build-cached run$r" "$HOIST" --root "$WORK/e2e-root" build \
                --progress plain -f "$WORK/copy-all.Dockerfile" -t e2e:1 "$ctx"
        done
        rm -rf "$WORK/e2e-root"
    fi
    rm -rf "$ctx" "$WORK/hashcache"
}

case $WHAT in
registry) registry ;;
walk) walk_one 100000 2000 ;;
walk1m) walk_one 1000000 20000 ;;
all)
    registry
    walk_one 100000 2000
    walk_one 1000000 20000
    ;;
esac
echo "results: $WORK/results.txt (label, wall seconds, peak RSS KiB)"
