#!/usr/bin/env bash
# compare.sh benchmarks one tend member against one real etcd member, both on
# loopback with default settings, using the same client (tend bench) for
# both, and prints a side-by-side markdown table.
#
#   bash bench/compare.sh                 # TOTAL=5000 requests per run
#   TOTAL=20000 CLIENTS="1 16 128" bash bench/compare.sh
#
# Each run: key 8 bytes, value 256 bytes; put writes keys 0..TOTAL-1 in order,
# range reads them at random (linearizable, then serializable); a last row
# times watch event delivery.
set -euo pipefail

cd "$(dirname "$0")/.."
total="${TOTAL:-5000}"
clients_list="${CLIENTS:-1 16 128}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/tend" ./cmd/tend
etcd_dir="$(bash bench/build-etcd.sh)"

# free_port prints a loopback port nothing listens on.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no free port found" >&2
  exit 1
}

# start NAME BINARY...: runs a member with etcd's flags; prints its endpoint.
start() {
  local name="$1"; shift
  local cport pport
  cport="$(free_port)"; pport="$(free_port)"
  "$@" --name "$name" --data-dir "$work/$name.data" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "$name=http://127.0.0.1:$pport" --log-level error >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    if "$work/tend" --endpoints "127.0.0.1:$cport" --command-timeout 1s endpoint health >/dev/null 2>&1; then
      echo "127.0.0.1:$cport"
      return
    fi
    sleep 0.2
  done
  echo "$name did not become healthy; log:" >&2
  cat "$work/$name.log" >&2
  exit 1
}

tend_ep="$(start tend "$work/tend" server)"
etcd_ep="$(start etcd "$etcd_dir/etcd")"

field() { sed -n "s/.*\"$1\":\([0-9.e+]*\).*/\1/p"; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e6 }'; }

# bench ENDPOINT ARGS...: prints "req/s p50ms p99ms".
bench() {
  local ep="$1"; shift
  local out
  out="$("$work/tend" --endpoints "$ep" bench "$@" --total "$total" --key-size 8 --val-size 256 -w json)"
  printf '%.0f %s %s\n' "$(field requests_per_second <<<"$out")" "$(ms "$(field p50_ns <<<"$out")")" "$(ms "$(field p99_ns <<<"$out")")"
}

echo "| op | clients | conns | tend req/s | etcd req/s | tend p50 ms | etcd p50 ms | tend p99 ms | etcd p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in $clients_list; do
  conns=$(( c / 8 )); (( conns >= 1 )) || conns=1
  for op in put range-l range-s; do
    case "$op" in
      put) args=(put --sequential-keys --key-space-size "$total") ;;
      range-l) args=(range --consistency l --key-space-size "$total") ;;
      range-s) args=(range --consistency s --key-space-size "$total") ;;
    esac
    read -r t_rps t_p50 t_p99 < <(bench "$tend_ep" "${args[@]}" --clients "$c" --conns "$conns")
    read -r e_rps e_p50 e_p99 < <(bench "$etcd_ep" "${args[@]}" --clients "$c" --conns "$conns")
    echo "| $op | $c | $conns | $t_rps | $e_rps | $t_p50 | $e_p50 | $t_p99 | $e_p99 |"
  done
done

# Event delivery: WATCHERS watchers on one prefix, puts from 16 clients; the
# latency is from the start of a put to its event at a watcher, and req/s
# counts delivered events.
watchers="${WATCHERS:-10}"
wtotal=$(( total < 1000 ? total : 1000 ))
read -r t_rps t_p50 t_p99 < <(total=$wtotal bench "$tend_ep" watch --watchers "$watchers" --clients 16 --conns 2)
read -r e_rps e_p50 e_p99 < <(total=$wtotal bench "$etcd_ep" watch --watchers "$watchers" --clients 16 --conns 2)
echo "| watch ($watchers watchers, $wtotal puts) | 16 | 2 | $t_rps | $e_rps | $t_p50 | $e_p50 | $t_p99 | $e_p99 |"
