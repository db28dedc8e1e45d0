#!/usr/bin/env bash
# build-etcd.sh builds the reference etcd, etcdctl and etcdutl that tend's compatibility
# tests and benchmarks compare against, in a throwaway module (never in tend's
# own build), and prints the directory holding them (internal/testenv builds
# the same set the same way).
#
#   bash bench/build-etcd.sh            # -> ~/.cache/tend/etcd-v3.7.3
#   ETCD_VERSION=v3.7.3 TEND_CACHE=/tmp/c bash bench/build-etcd.sh
#
# etcd's main package is the root of go.etcd.io/etcd/server/v3 (a thin wrapper
# of etcdmain); etcdctl and etcdutl are the roots of their modules.
set -euo pipefail

version="${ETCD_VERSION:-v3.7.3}"
cache="${TEND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tend}"
out="$cache/etcd-$version"

if [[ -x "$out/etcd" && -x "$out/etcdctl" && -x "$out/etcdutl" ]]; then
  echo "$out"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
(
  cd "$work"
  go mod init tend-reference-etcd >/dev/null 2>&1
  GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$version" "go.etcd.io/etcd/etcdctl/v3@$version" "go.etcd.io/etcd/etcdutl/v3@$version" >/dev/null 2>&1
  GOFLAGS=-mod=mod go build -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
  GOFLAGS=-mod=mod go build -o "$out/etcdctl.tmp" go.etcd.io/etcd/etcdctl/v3
  GOFLAGS=-mod=mod go build -o "$out/etcdutl.tmp" go.etcd.io/etcd/etcdutl/v3
)
mv "$out/etcd.tmp" "$out/etcd"
mv "$out/etcdctl.tmp" "$out/etcdctl"
mv "$out/etcdutl.tmp" "$out/etcdutl"
echo "$out"
