#!/usr/bin/env bash
# build-etcd.sh builds the reference etcd and etcdctl that tend's compatibility
# tests and benchmarks compare against, in a throwaway module (never in tend's
# own build), and prints the directory holding them.
#
#   bash bench/build-etcd.sh            # -> ~/.cache/tend/etcd-v3.7.3
#   ETCD_VERSION=v3.7.3 TEND_CACHE=/tmp/c bash bench/build-etcd.sh
#
# etcd's main package is the root of go.etcd.io/etcd/server/v3 (a thin wrapper
# of etcdmain); etcdctl is the root of go.etcd.io/etcd/etcdctl/v3.
set -euo pipefail

version="${ETCD_VERSION:-v3.7.3}"
cache="${TEND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tend}"
out="$cache/etcd-$version"

if [[ -x "$out/etcd" && -x "$out/etcdctl" ]]; then
  echo "$out"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
(
  cd "$work"
  go mod init tend-reference-etcd >/dev/null 2>&1
  GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$version" "go.etcd.io/etcd/etcdctl/v3@$version" >/dev/null 2>&1
  GOFLAGS=-mod=mod go build -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
  GOFLAGS=-mod=mod go build -o "$out/etcdctl.tmp" go.etcd.io/etcd/etcdctl/v3
)
mv "$out/etcd.tmp" "$out/etcd"
mv "$out/etcdctl.tmp" "$out/etcdctl"
echo "$out"
