#!/usr/bin/env bash
# compare.sh benchmarks one tend member against one real etcd member, both on
# loopback with default settings, using the same client (tend bench) for
# both, and prints a side-by-side markdown table.
#
#   bash bench/compare.sh                 # TOTAL=5000 requests per run
#   TOTAL=20000 CLIENTS="1 16 128" bash bench/compare.sh
#   AUTH=1 bash bench/compare.sh          # with authentication on
#   MEMBERS=3 bash bench/compare.sh       # three-member clusters, clients on all
#   TLS=1 bash bench/compare.sh           # https:// with client certificates required
#   FLEET="1000 5000" bash bench/compare.sh   # tend bench fleet at each agent count instead
#   MEMBERS=3 FLEET=1000 KILL=3 bash bench/compare.sh   # ... killing the leader before rollout 3
#
# With TLS=1 a throwaway CA (openssl) signs one certificate for the servers
# and one for the client; both servers serve https:// client and peer URLs
# with --client-cert-auth and --peer-client-cert-auth, and every run
# connects with --cacert, --cert and --key (TLS 1.3, the default).
# With AUTH=1 both servers get a root user and a user "bench" whose role
# reads and writes every key (a range permission, so each request is checked
# against it, unlike root's), auth is enabled, and every run authenticates as
# bench (simple tokens, the default).
# Each run: key 8 bytes, value 256 bytes; put writes keys 0..TOTAL-1 in order,
# range reads them at random (linearizable, then serializable); a last row
# times watch event delivery. Before the table each server takes 1000 puts
# that are not counted, and the rows alternate which server runs first: the
# first run after the servers start is slower (about 10% at one client,
# whoever it is) while the disk still writes back what starting them
# created.
set -euo pipefail

cd "$(dirname "$0")/.."
total="${TOTAL:-5000}"
clients_list="${CLIENTS:-1 16 128}"
work="$(mktemp -d)"
pids=()
cleanup() {
  # Servers are started in command substitutions (subshells): their IDs
  # are kept in files.
  for pid in "${pids[@]}" $(cat "$work"/*.pids 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/tend" ./cmd/tend
etcd_dir="$(bash bench/build-etcd.sh)"

# With TLS=1: certificates, the servers' flags and the client's.
scheme=http
server_tls=()
client_tls=()
if [[ "${TLS:-0}" == 1 ]]; then
  scheme=https
  d="$work/tls"
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
  for who in server client; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench-$who" \
      -keyout "$d/$who-key.pem" -out "$d/$who.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
      -days 2 -extfile "$d/ext.cnf" -out "$d/$who.pem" 2>/dev/null
  done
  server_tls=(--cert-file "$d/server.pem" --key-file "$d/server-key.pem" --trusted-ca-file "$d/ca.pem" --client-cert-auth
    --peer-cert-file "$d/server.pem" --peer-key-file "$d/server-key.pem" --peer-trusted-ca-file "$d/ca.pem" --peer-client-cert-auth)
  client_tls=(--cacert "$d/ca.pem" --cert "$d/client.pem" --key "$d/client-key.pem")
fi

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
  "$@" --name "$name" --data-dir "$work/$name.data" "${server_tls[@]}" \
    --listen-client-urls "$scheme://127.0.0.1:$cport" --advertise-client-urls "$scheme://127.0.0.1:$cport" \
    --listen-peer-urls "$scheme://127.0.0.1:$pport" --initial-advertise-peer-urls "$scheme://127.0.0.1:$pport" \
    --initial-cluster "$name=$scheme://127.0.0.1:$pport" --log-level error >"$work/$name.log" 2>&1 &
  echo $! >>"$work/$name.pids"
  for _ in $(seq 100); do
    if "$work/tend" --endpoints "$scheme://127.0.0.1:$cport" "${client_tls[@]}" --command-timeout 1s endpoint health >/dev/null 2>&1; then
      echo "$scheme://127.0.0.1:$cport"
      return
    fi
    sleep 0.2
  done
  echo "$name did not become healthy; log:" >&2
  cat "$work/$name.log" >&2
  exit 1
}

# start_cluster NAME N BINARY...: runs N members of one cluster; prints
# their endpoints, comma-separated.
start_cluster() {
  local name="$1" n="$2"; shift 2
  local cports=() pports=() initial=() eps=()
  for i in $(seq "$n"); do
    cports+=("$(free_port)"); pports+=("$(free_port)")
    initial+=("$name$i=$scheme://127.0.0.1:${pports[-1]}")
  done
  local ic; ic="$(IFS=,; echo "${initial[*]}")"
  for i in $(seq "$n"); do
    local cp="${cports[$((i-1))]}" pp="${pports[$((i-1))]}"
    "$@" --name "$name$i" --data-dir "$work/$name$i.data" "${server_tls[@]}" \
      --listen-client-urls "$scheme://127.0.0.1:$cp" --advertise-client-urls "$scheme://127.0.0.1:$cp" \
      --listen-peer-urls "$scheme://127.0.0.1:$pp" --initial-advertise-peer-urls "$scheme://127.0.0.1:$pp" \
      --initial-cluster "$ic" --log-level error >"$work/$name$i.log" 2>&1 &
    echo $! >>"$work/$name.pids"
    eps+=("$scheme://127.0.0.1:$cp")
  done
  for ep in "${eps[@]}"; do
    local ok=0
    for _ in $(seq 100); do
      if "$work/tend" --endpoints "$ep" "${client_tls[@]}" --command-timeout 1s endpoint health >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.2
    done
    if (( ! ok )); then
      echo "$name member at $ep did not become healthy; logs:" >&2
      cat "$work/$name"*.log >&2
      exit 1
    fi
  done
  (IFS=,; echo "${eps[*]}")
}

members="${MEMBERS:-1}"
if (( members == 1 )); then
  tend_ep="$(start tend "$work/tend" server)"
  etcd_ep="$(start etcd "$etcd_dir/etcd")"
else
  tend_ep="$(start_cluster tend "$members" "$work/tend" server)"
  etcd_ep="$(start_cluster etcd "$members" "$etcd_dir/etcd")"
fi

# With AUTH=1: enable_auth ENDPOINT sets up root and bench, and turns auth on.
creds=("${client_tls[@]}")
enable_auth() {
  local t=("$work/tend" --endpoints "$1" "${client_tls[@]}")
  "${t[@]}" user add root --new-user-password rootpw >/dev/null
  "${t[@]}" user add bench --new-user-password benchpw >/dev/null
  "${t[@]}" role add bench >/dev/null
  "${t[@]}" role grant-permission bench readwrite '' --from-key >/dev/null
  "${t[@]}" user grant-role bench bench >/dev/null
  "${t[@]}" auth enable >/dev/null
}
if [[ "${AUTH:-0}" == 1 ]]; then
  enable_auth "${tend_ep%%,*}"
  enable_auth "${etcd_ep%%,*}"
  creds+=(--user bench:benchpw)
fi

field() { sed -n "s/.*\"$1\":\([0-9.e+]*\).*/\1/p"; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e6 }'; }

# bench ENDPOINT ARGS...: prints "req/s p50ms p99ms".
bench() {
  local ep="$1"; shift
  local out
  out="$("$work/tend" --endpoints "$ep" "${creds[@]}" bench "$@" --total "$total" --key-size 8 --val-size 256 -w json)"
  printf '%.0f %s %s\n' "$(field requests_per_second <<<"$out")" "$(ms "$(field p50_ns <<<"$out")")" "$(ms "$(field p99_ns <<<"$out")")"
}

# Warm-up, not counted (see the top).
for ep in "$tend_ep" "$etcd_ep"; do
  total=1000 bench "$ep" put --sequential-keys --key-space-size 1000 --clients 16 --conns 2 >/dev/null
done

# With FLEET="N ...": tend bench fleet with N simulated agents (each on its
# own connection, ROLLOUTS changes, status leases of TTL kept alive), in
# increasing N; peak RSS is the servers' VmHWM after the run (the largest
# member's, with MEMBERS).
if [[ -n "${FLEET:-}" ]]; then
  if [[ -n "${KILL:-}" && ( "$FLEET" == *" "* || "$members" == 1 ) ]]; then
    echo "KILL=$KILL needs MEMBERS=3 (or more) and one FLEET count: a killed leader stays down" >&2
    exit 2
  fi
  peak() { # peak NAME: the largest VmHWM of NAME's members, in MB
    local max=0 kb
    for pid in $(cat "$work/$1.pids"); do
      kb=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
      (( kb > max )) && max=$kb
    done
    echo $(( max / 1024 ))
  }
  # fleet ENDPOINT N: prints "join_ms deliver_p99_ms status_p99_ms rollout_p50_ms rollout_max_ms".
  fleet() {
    local out kill=()
    if [[ -n "${KILL:-}" ]]; then
      kill=(--kill-leader-before "$KILL" --pids "$(paste -sd, "$work/$3.pids")")
    fi
    out="$("$work/tend" --endpoints "$1" "${creds[@]}" bench fleet --agents "$2" --rollouts "${ROLLOUTS:-10}" --ttl "${TTL:-5s}" "${kill[@]}" -w json)"
    local p99s p50s maxs
    p99s=($(grep -o '"p99_ns":[0-9]*' <<<"$out" | cut -d: -f2))
    p50s=($(grep -o '"p50_ns":[0-9]*' <<<"$out" | cut -d: -f2))
    maxs=($(grep -o '"max_ns":[0-9]*' <<<"$out" | cut -d: -f2))
    echo "$(ms "$(field join_ns <<<"$out")") $(ms "${p99s[0]}") $(ms "${p99s[1]}") $(ms "${p50s[2]}") $(ms "${maxs[2]}")"
  }
  echo "| agents | server | join ms | deliver p99 ms | status p99 ms | rollout p50 ms | rollout max ms | peak RSS MB |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|"
  row=0
  for n in $FLEET; do
    order=(tend etcd)
    (( row++ % 2 == 0 )) || order=(etcd tend)
    for who in "${order[@]}"; do
      ep="$tend_ep"; [[ $who == etcd ]] && ep="$etcd_ep"
      read -r join dp99 sp99 rp50 rmax < <(fleet "$ep" "$n" "$who")
      echo "| $n | $who | $join | $dp99 | $sp99 | $rp50 | $rmax | $(peak "$who") |"
    done
  done
  exit 0
fi

echo "| op | clients | conns | tend req/s | etcd req/s | tend p50 ms | etcd p50 ms | tend p99 ms | etcd p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
row=0
for c in $clients_list; do
  conns=$(( c / 8 )); (( conns >= 1 )) || conns=1
  for op in put range-l range-s; do
    case "$op" in
      put) args=(put --sequential-keys --key-space-size "$total") ;;
      range-l) args=(range --consistency l --key-space-size "$total") ;;
      range-s) args=(range --consistency s --key-space-size "$total") ;;
    esac
    if (( row++ % 2 == 0 )); then
      read -r t_rps t_p50 t_p99 < <(bench "$tend_ep" "${args[@]}" --clients "$c" --conns "$conns")
      read -r e_rps e_p50 e_p99 < <(bench "$etcd_ep" "${args[@]}" --clients "$c" --conns "$conns")
    else
      read -r e_rps e_p50 e_p99 < <(bench "$etcd_ep" "${args[@]}" --clients "$c" --conns "$conns")
      read -r t_rps t_p50 t_p99 < <(bench "$tend_ep" "${args[@]}" --clients "$c" --conns "$conns")
    fi
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

# With MEMBERS > 1: kill -9 each cluster's leader and time the first write
# acknowledged after it (same heartbeat and election timeouts: the defaults).
if (( members > 1 )); then
  failover() {
    local out
    out="$("$work/tend" --endpoints "$1" "${creds[@]}" bench failover --pids "$(paste -sd, "$work/$2.pids")" -w json)"
    ms "$(field first_ack_ns <<<"$out")"
  }
  t_fo="$(failover "$tend_ep" tend)"
  e_fo="$(failover "$etcd_ep" etcd)"
  echo
  echo "| leader kill -9 → first acknowledged write | tend ms | etcd ms |"
  echo "|---|---:|---:|"
  echo "| $members members, election timeout 1000 ms | $t_fo | $e_fo |"
fi
