#!/bin/sh
# Record what BuildKit builds from the cases here, for tests/cli_run_layers.rs
# to compare hoist with: CASE/buildkit.txt (history and layer listings).
#
#   HOIST=target/debug/hoist testdata/run/record.sh [CASE...]
#
# Needs a docker daemon (docker 20.10: BuildKit v0.8; DOCKER_BUILDKIT=1 and
# Debian's /usr/bin/docker). The base images are built by hoist exactly as
# lab.rs builds them (keep the applets, passwd and group in step) and loaded
# into docker, so both builders start from the same bytes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
hoist=${HOIST:-hoist}
docker=${DOCKER:-/usr/bin/docker}
cases=${*:-deletions special user args args-unset multistage empty bare etc-files cache podman}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

base() { # TAG WITH_ETC
  ctx="$work/ctx-$1"
  mkdir -p "$ctx/rootfs/bin"
  cp /bin/busybox "$ctx/rootfs/bin/busybox"
  for a in sh cat echo id touch rm mkdir ln mkfifo chmod ls grep cp true false chown test \
           hostname printf stat sleep env sort tr mv; do
    ln -s busybox "$ctx/rootfs/bin/$a"
  done
  if [ "$2" = 1 ]; then
    mkdir -p "$ctx/rootfs/etc" "$ctx/rootfs/tmp"
    chmod 1777 "$ctx/rootfs/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$ctx/rootfs/etc/passwd"
    printf 'root:x:0:\nwheel:x:10:app\nstaff:x:50:app\napp:x:1000:\n' >"$ctx/rootfs/etc/group"
  fi
  printf 'FROM scratch\nCOPY rootfs/ /\n' >"$ctx/Dockerfile"
  "$hoist" --root "$work/store" build -q -t "$1" "$ctx" >/dev/null
  "$hoist" --root "$work/store" save -o "$work/$1.tar" "$1"
  "$docker" load -i "$work/$1.tar" >/dev/null
}

base base:1 1
base bare:1 0
for c in $cases; do
  DOCKER_BUILDKIT=1 "$docker" build -q -t "hoist-record/$c:1" "$here/$c" >/dev/null
  "$docker" save "hoist-record/$c:1" | python3 "$here/record.py" "$c" 1
  "$docker" rmi "hoist-record/$c:1" >/dev/null
  echo "recorded $c"
done
