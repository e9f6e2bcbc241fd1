#!/usr/bin/env bash
# Sourced by the other scripts: make sure the local servers the project uses are running.
# Starts an installed server that is not running; never installs anything by itself.

REDIS_HOST=127.0.0.1
REDIS_PORT=6379

redis_up() {
  # PING over bash's /dev/tcp: needs no redis-cli.
  (exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT" && printf 'PING\r\n' >&3 && read -r -t 2 reply <&3 && [[ "$reply" == +PONG* ]]) 2>/dev/null
}

# ensure_redis required|optional
ensure_redis() {
  local mode=${1:-required}
  if redis_up; then return 0; fi
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting redis-server on $REDIS_HOST:$REDIS_PORT" >&2
    redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
    for _ in $(seq 1 50); do redis_up && return 0; sleep 0.1; done
    echo "redis-server did not come up on $REDIS_HOST:$REDIS_PORT" >&2
    [[ $mode == optional ]] && return 1 || exit 1
  fi
  if [[ $mode == optional ]]; then
    echo "Redis is not installed: running without it (install it with: apt-get install -y redis-server)" >&2
    return 1
  fi
  echo "Redis is required and not installed. Install it with:  apt-get update && apt-get install -y redis-server" >&2
  exit 1
}

postgres_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p 5432
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

# ensure_postgres required|optional: started when installed but stopped.
ensure_postgres() {
  local mode=${1:-required}
  if postgres_up; then return 0; fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql)" ]; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "starting PostgreSQL $version" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 50); do postgres_up && return 0; sleep 0.2; done
    echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
    [[ $mode == optional ]] && return 1 || exit 1
  fi
  if [[ $mode == optional ]]; then
    echo "PostgreSQL is not installed: results go to JSON files only" >&2
    return 1
  fi
  echo "PostgreSQL is required and not installed. Install it with:  apt-get update && apt-get install -y postgresql" >&2
  echo "(the tests connect as user postgres with trust authentication on 127.0.0.1:5432)" >&2
  exit 1
}
