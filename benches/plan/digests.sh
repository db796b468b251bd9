#!/bin/bash
# Same Dockerfiles (examples/ and testdata/run/), same SOURCE_DATE_EPOCH, fresh
# stores: the image digest two builds of hoist give. Usage:
#   benches/plan/digests.sh BEFORE_HOIST AFTER_HOIST
set -u
BEFORE=${1:?usage: digests.sh BEFORE_HOIST AFTER_HOIST}
AFTER=${2:?}
M=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
export SOURCE_DATE_EPOCH=1700000000
run() { # name bin root args...
  local bin=$1 root=$2; shift 2
  "$bin" --root "$root" build -q "$@" 2>/tmp/digest-err.log || { echo "FAILED: $(tail -2 /tmp/digest-err.log)"; return; }
}
base() { # bin root
  local ctx=${TMPDIR:-/tmp}/digests-basectx
  if [ ! -d $ctx ]; then mkdir -p $ctx/rootfs/bin $ctx/rootfs/etc $ctx/rootfs/tmp; cp /bin/busybox $ctx/rootfs/bin/; for a in sh echo cat ls mkdir touch true false env id; do ln -sf busybox $ctx/rootfs/bin/$a; done; printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' > $ctx/rootfs/etc/passwd; printf 'root:x:0:\napp:x:1000:\n' > $ctx/rootfs/etc/group; printf 'FROM scratch\nCOPY rootfs/ /\n' > $ctx/Dockerfile; fi
  "$1" --root "$2" build -q -t base:1 $ctx >/dev/null 2>&1
}
printf '%-28s %-73s %-73s %s\n' case before after same
for c in hello run heredocs multistage $(ls $M/testdata/run); do
  case $c in hello|heredocs|multistage) ctx=$M/examples/$c; extra=();;
    run) ctx=$M/examples/run; extra=(--build-context bin=/bin);;
    *) ctx=$M/testdata/run/$c; [ -f $ctx/Dockerfile ] || continue; extra=();;
  esac
  rm -rf /tmp/dg-b /tmp/dg-a  # the stores
  base $BEFORE /tmp/dg-b; base $AFTER /tmp/dg-a
  b=$(run $BEFORE /tmp/dg-b "${extra[@]}" $ctx | tail -1)
  a=$(run $AFTER /tmp/dg-a "${extra[@]}" $ctx | tail -1)
  same=no; [ "$a" = "$b" ] && same=yes
  printf '%-28s %-73s %-73s %s\n' "$c" "$b" "$a" "$same"
done
