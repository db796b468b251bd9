#!/usr/bin/env bash
# The private network's cost against the host's (docs/network.md): a RUN
# step that downloads 1 GiB, one that makes 200 connections of 64 KiB each
# (apt's many small fetches), and an empty RUN (the stack's start-up), each
# with --network host, the private network through pasta and through
# slirp4netns. The server runs in a network namespace this script makes
# (veth 198.51.100.1 <-> 198.51.100.2, TEST-NET-2): no traffic leaves the
# machine. As root (ip netns, the veth pair).
#
#   HOIST=target/release/hoist benches/network.sh [RUNS]
#
# Prints one line per (case, network): the median of RUNS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
HOIST=${HOIST:-target/release/hoist}
RUNS=${1:-5}
NS=hoist-bench-net
WORK=$(mktemp -d)
cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  ip link del hbn0 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"
ip link add hbn0 type veth peer name hbn1
ip link set hbn1 netns "$NS"
ip addr add 198.51.100.1/24 dev hbn0
ip link set hbn0 up
ip -n "$NS" addr add 198.51.100.2/24 dev hbn1
ip -n "$NS" link set hbn1 up
ip -n "$NS" link set lo up
ip netns exec "$NS" python3 benches/net_server.py 198.51.100.2 9000 &
SERVER=$!

mkdir -p "$WORK/base/rootfs/bin" "$WORK/base/rootfs/tmp"
gcc -static -O2 -o "$WORK/base/rootfs/bin/nettool" testdata/net/nettool.c
cp /bin/busybox "$WORK/base/rootfs/bin/"
ln -s busybox "$WORK/base/rootfs/bin/sh"
ln -s busybox "$WORK/base/rootfs/bin/true"
printf 'FROM scratch\nCOPY rootfs/ /\n' >"$WORK/base/Dockerfile"
H() { "$HOIST" --root "$WORK/store" "$@"; }
H build -q -t base:1 "$WORK/base" >/dev/null
# The server is up once it answers.
until ip netns exec "$NS" /bin/true && "$WORK/base/rootfs/bin/nettool" get 198.51.100.2 9000 1 >/dev/null 2>&1; do sleep 0.2; done

case_dir() { # NAME RUN-LINE
  mkdir -p "$WORK/$1"
  printf 'FROM base:1\nRUN %s\n' "$2" >"$WORK/$1/Dockerfile"
}
case_dir big "nettool get 198.51.100.2 9000 1073741824"
case_dir small "nettool gets 198.51.100.2 9000 65536 200"
case_dir empty "true"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

flags_of() {
  case $1 in
    host) echo "--network host --allow network.host" ;;
    *) echo "" ;;
  esac
}

# Runs interleave the networks, so that load from elsewhere on the
# machine falls on all three alike.
declare -A vals
for _ in $(seq "$RUNS"); do
  for net in host pasta slirp4netns; do
    for c in big small empty; do
      stack=$([ "$net" = host ] || echo "$net")
      start=$(date +%s%N)
      # shellcheck disable=SC2046
      out=$(HOIST_NETWORK_STACK=$stack "$HOIST" --root "$WORK/store" build --no-cache --progress plain $(flags_of "$net") "$WORK/$c" 2>&1)
      end=$(date +%s%N)
      case $c in
        big) ns=$(grep -o 'get bytes=1073741824 ns=[0-9]*' <<<"$out" | sed 's/.*ns=//')
             v=$(awk -v ns="$ns" 'BEGIN {printf "%.0f", 1073741824 / ns * 1000}') ;;
        small) ns=$(grep -o 'gets n=200 ns=[0-9]*' <<<"$out" | sed 's/.*ns=//')
               v=$(awk -v ns="$ns" 'BEGIN {printf "%.1f", ns / 1e6}') ;;
        empty) v=$(awk -v ns="$((end - start))" 'BEGIN {printf "%.3f", ns / 1e9}') ;;
      esac
      vals[$c.$net]="${vals[$c.$net]:-} $v"
    done
  done
done

for c in big small empty; do
  unit=$(case $c in big) echo "MB/s (1 GiB)";; small) echo "ms (200 x 64 KiB)";; empty) echo "s (hoist build, one RUN true)";; esac)
  for net in host pasta slirp4netns; do
    # shellcheck disable=SC2086
    printf '%-6s %-12s %10s %s   runs:%s\n' "$c" "$net" "$(printf '%s\n' ${vals[$c.$net]} | median)" "$unit" "${vals[$c.$net]}"
  done
done
