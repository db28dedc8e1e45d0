#!/usr/bin/env bash
# compact.sh times a large physical compaction and a defragment on one
# fresh tend member and one fresh etcd member, and the writes of one client
# during the compaction, alternating which server runs first:
#
#   bash bench/compact.sh            # ROUNDS=2
#
# Each round, on each server: 200,000 puts over 100,000 keys of 1 KiB
# (32 clients, 4 connections), then `compact --physical` to the newest
# revision while a one-client `bench put --total 3000` of small values
# runs, then `defrag`. Prints a markdown table.
set -euo pipefail

cd "$(dirname "$0")/.."
work="$(mktemp -d)"
pid=""
cleanup() {
  [[ -z "$pid" ]] || kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/tend" ./cmd/tend
etcd_dir="$(bash bench/build-etcd.sh)"
t="$work/tend"

free_port() {
  local p
  for _ in $(seq 100); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p+1))") 2>/dev/null; then
      echo "$p"; return
    fi
  done
  echo "no free port found" >&2; exit 1
}

# status FIELD ENDPOINT: one number from endpoint status -w json.
status() { "$t" --endpoints "$2" endpoint status -w json | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# round NAME: one round on a fresh member; prints a table row.
round() {
  local who="$1" port dir bin
  port="$(free_port)"; dir="$work/run-$who"; rm -rf "$dir"; mkdir -p "$dir"
  if [[ $who == tend ]]; then bin=("$t" server); else bin=("$etcd_dir/etcd"); fi
  "${bin[@]}" --name "$who" --quota-backend-bytes 8000000000 --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$((port+1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port+1))" \
    --initial-cluster "$who=http://127.0.0.1:$((port+1))" --log-level error >"$dir/log" 2>&1 &
  pid=$!
  local ep="127.0.0.1:$port"
  for _ in $(seq 100); do "$t" --endpoints "$ep" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
  "$t" --endpoints "$ep" bench put --clients 32 --conns 4 --total 200000 --key-space-size 100000 --val-size 1024 >/dev/null
  local rev; rev="$(status revision "$ep")"
  "$t" --endpoints "$ep" bench put --total 3000 --key-space-size 10 --val-size 10 -w json >"$dir/put.json" &
  local bench=$!
  sleep 0.3
  local s e; s=$(date +%s.%N)
  "$t" --endpoints "$ep" --command-timeout 120s compact --physical "$rev" >/dev/null
  e=$(date +%s.%N)
  wait "$bench"
  local before ds de after
  before="$(status dbSize "$ep")"
  ds=$(date +%s.%N); "$t" --endpoints "$ep" --command-timeout 120s defrag >/dev/null; de=$(date +%s.%N)
  after="$(status dbSize "$ep")"
  local p99 max
  p99="$(grep -o '"p99_ns":[0-9]*' "$dir/put.json" | cut -d: -f2)"
  max="$(grep -o '"max_ns":[0-9]*' "$dir/put.json" | cut -d: -f2)"
  printf '| %s | %s s | %.0f ms | %.1f ms | %s s | %d MB | %d MB |\n' "$who" "$(secs "$s" "$e")" \
    "$(awk -v n="$max" 'BEGIN { print n / 1e6 }')" "$(awk -v n="$p99" 'BEGIN { print n / 1e6 }')" \
    "$(secs "$ds" "$de")" $((before / 1000000)) $((after / 1000000))
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

echo "| server | compact --physical | slowest put during it | put p99 | defrag | file before | after |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for r in $(seq "${ROUNDS:-2}"); do
  if (( r % 2 )); then round tend; round etcd; else round etcd; round tend; fi
done
