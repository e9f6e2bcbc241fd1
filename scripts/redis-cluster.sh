#!/usr/bin/env bash
# A local Redis Cluster of 3 primaries and 3 replicas, made of plain redis-server processes
# on 127.0.0.1 (no persistence), for the cluster-mode tests and `lexpipe bench … --cluster`.
#
#   scripts/redis-cluster.sh start [base-port] [dir]   ports base..base+5 (default 7100);
#                                                       prints the seed URL when ready
#   scripts/redis-cluster.sh stop  [base-port] [dir]   stops them and removes dir
#
# Each node also uses its cluster bus port (port + 10000). The cluster is ready when every
# node reports cluster_state:ok and knows all six nodes. A primary that dies is replaced by
# its replica after about two node timeouts (LEXPIPE_CLUSTER_NODE_TIMEOUT_MS, default
# 1000 ms). `cluster-require-full-coverage no`: while one shard fails over, the other
# shards keep serving their slots.
#
# LEXPIPE_CLUSTER_TLS_DIR=<dir with server.crt, server.key, ca.crt> makes every port TLS
# only (clients, replication and the cluster bus; the URL printed is rediss://), and
# LEXPIPE_CLUSTER_PASSWORD sets requirepass/masterauth: the shape of ElastiCache with TLS
# in transit and an AUTH token (tests/tls.rs).
set -euo pipefail

action=${1:-}
base=${2:-7100}
dir=${3:-${TMPDIR:-/tmp}/lexpipe-redis-cluster-$base}
node_timeout=${LEXPIPE_CLUSTER_NODE_TIMEOUT_MS:-1000}
tls_dir=${LEXPIPE_CLUSTER_TLS_DIR:-}
password=${LEXPIPE_CLUSTER_PASSWORD:-}
server_args=()
cli_args=()
scheme=redis
if [[ -n $tls_dir ]]; then
  server_args+=(--tls-cluster yes --tls-replication yes --tls-auth-clients no
    --tls-cert-file "$tls_dir/server.crt" --tls-key-file "$tls_dir/server.key"
    --tls-ca-cert-file "$tls_dir/ca.crt")
  cli_args+=(--tls --cacert "$tls_dir/ca.crt")
  scheme=rediss
fi
if [[ -n $password ]]; then
  server_args+=(--requirepass "$password" --masterauth "$password")
  cli_args+=(-a "$password" --no-auth-warning)
fi
ports=()
for i in 0 1 2 3 4 5; do ports+=($((base + i))); done

cli() { redis-cli "${cli_args[@]}" -h 127.0.0.1 -p "$1" "${@:2}"; }

# The port options of one node: plain, or TLS only.
port_args() {
  if [[ -n $tls_dir ]]; then
    echo "--port 0 --tls-port $1"
  else
    echo "--port $1"
  fi
}

stop() {
  # Nothing to save (no persistence): kill -9 by pid file, which needs no TLS or password.
  local pids=()
  for p in "${ports[@]}"; do
    [[ -f $dir/$p/redis.pid ]] && pids+=("$(cat "$dir/$p/redis.pid")")
  done
  if ((${#pids[@]})); then
    kill -9 "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "${pids[@]}" 2>/dev/null || break
      sleep 0.05
    done
  fi
  rm -rf "$dir"
}

start() {
  for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null 2>&1 || {
      echo "$tool is missing: apt-get install -y redis-server (Debian), then run this again" >&2
      exit 1
    }
  done
  stop
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    # shellcheck disable=SC2046  # port_args is two or four words
    redis-server $(port_args "$p") --bind 127.0.0.1 --daemonize yes \
      --dir "$dir/$p" --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" \
      --save '' --appendonly no \
      --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
      --cluster-node-timeout "$node_timeout" --cluster-require-full-coverage no \
      "${server_args[@]}" >/dev/null
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 100); do
      [[ $(cli "$p" ping 2>/dev/null) == PONG ]] && break
      sleep 0.05
    done
    [[ $(cli "$p" ping 2>/dev/null) == PONG ]] || {
      echo "redis-server on port $p did not start; its log: $dir/$p/redis.log" >&2
      exit 1
    }
  done
  local nodes=()
  for p in "${ports[@]}"; do nodes+=("127.0.0.1:$p"); done
  redis-cli "${cli_args[@]}" --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
    echo "redis-cli --cluster create failed:" >&2
    cat "$dir/create.log" >&2
    exit 1
  }
  for _ in $(seq 1 300); do
    local ready=true
    for p in "${ports[@]}"; do
      local info
      info=$(cli "$p" cluster info 2>/dev/null | tr -d '\r')
      if ! grep -q '^cluster_state:ok$' <<<"$info" || ! grep -q '^cluster_known_nodes:6$' <<<"$info"; then
        ready=false
        break
      fi
    done
    if $ready && [[ $(cli "${ports[0]}" cluster nodes | grep -c slave) == 3 ]]; then
      echo "$scheme://127.0.0.1:${ports[0]}"
      return 0
    fi
    sleep 0.1
  done
  echo "the cluster on ports ${ports[0]}-${ports[5]} did not become ready in 30 s:" >&2
  cli "${ports[0]}" cluster nodes >&2 || true
  exit 1
}

case $action in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|stop [base-port] [dir]" >&2
    exit 2
    ;;
esac
