#!/usr/bin/env bash
# Sourced by the other scripts: what the project needs on the machine, and the local
# servers it uses.
#
#   need_pkg <command> <debian package>   queue a package when its command is missing
#   need_pip <module> <pip spec>          queue a Python package for the project's venv
#   install_missing                       install what was queued, or stop naming the command
#   ensure_redis / ensure_postgres        start an installed server that is not running
#
# Only install_missing installs anything, and only scripts/test.sh calls it: with apt-get
# (one `apt-get update` first, and only when something is missing) as root or through
# passwordless sudo. Elsewhere it stops and prints the exact command to run.
# scripts/demo.sh never installs anything.

REDIS_HOST=127.0.0.1
REDIS_PORT=${LEXPIPE_REDIS_PORT:-6379}
PG_HOST=127.0.0.1
PG_PORT=${LEXPIPE_PG_PORT:-5432}
# Where need_pip installs Python packages: a venv of the project's own (gitignored), so
# nothing is installed into the system's Python and no root is needed for it.
LEXPIPE_VENV=${LEXPIPE_VENV:-$PWD/.venv}

MISSING_PKGS=()
MISSING_PIP=()

# need_pkg <command> <debian package>: queue the package if the command is not on PATH.
need_pkg() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [[ " ${MISSING_PKGS[*]} " == *" $2 "* ]] || MISSING_PKGS+=("$2")
}

# need_pip <module> <pip spec>: queue the spec unless the venv's Python imports the module.
# Brings Python itself (and its venv module) from Debian when missing.
need_pip() {
  need_pkg python3 python3
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    [[ " ${MISSING_PKGS[*]} " == *" python3-venv "* ]] || MISSING_PKGS+=(python3-venv)
  fi
  "$LEXPIPE_VENV/bin/python" -c "import $1" >/dev/null 2>&1 && return 0
  MISSING_PIP+=("$2")
}

# Runs a command as root: directly when root, else through passwordless sudo; fails
# (without prompting) otherwise.
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

can_be_root() {
  ((EUID == 0)) || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }
}

# install_missing: installs what need_pkg and need_pip queued. Where it cannot (not root,
# no passwordless sudo, no apt-get), exits naming the command to run.
install_missing() {
  if ((${#MISSING_PKGS[@]})); then
    local pkgs="${MISSING_PKGS[*]}"
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "missing: $pkgs (Debian package names); this is not a Debian or Ubuntu machine: install their equivalents, then run this again" >&2
      exit 1
    fi
    if ! can_be_root; then
      echo "missing: $pkgs. Install them, then run this again:" >&2
      if command -v sudo >/dev/null 2>&1; then
        echo "  sudo apt-get update && sudo apt-get install -y $pkgs" >&2
      else
        echo "  (as root) apt-get update && apt-get install -y $pkgs" >&2
      fi
      exit 1
    fi
    echo "installing with apt-get: $pkgs" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    # shellcheck disable=SC2086  # one word per package
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs >&2
    MISSING_PKGS=()
  fi
  if ((${#MISSING_PIP[@]})); then
    echo "installing with pip into $LEXPIPE_VENV: ${MISSING_PIP[*]}" >&2
    [[ -x $LEXPIPE_VENV/bin/python ]] || python3 -m venv "$LEXPIPE_VENV"
    "$LEXPIPE_VENV/bin/python" -m pip install -q "${MISSING_PIP[@]}" >&2
    MISSING_PIP=()
  fi
  if [[ -d $LEXPIPE_VENV/bin ]]; then
    export PATH="$LEXPIPE_VENV/bin:$PATH"
  fi
}

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
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
  else
    (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
  fi
}

# The Debian cluster ("version name") on $PG_PORT: after `apt-get install postgresql`,
# "<version> main" on 5432.
pg_cluster() {
  pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2; exit }'
}

# The tests connect as user postgres without a password over TCP
# (postgres://postgres@127.0.0.1:5432/postgres). Debian's default pg_hba.conf asks for a
# scram-sha-256 password on host connections, and user postgres has none. Of the two ways
# to make that URL work, trust for user postgres on the loopback addresses only is the less
# surprising: the URL, the README and every developer's setting stay as they are, and no
# password is invented that would then live in scripts and URLs. Done only when the login
# fails, by two lines put first in pg_hba.conf (first match wins) and a reload.
allow_local_postgres_login() {
  [[ -n ${LEXPIPE_TEST_DATABASE_URL:-} ]] && return 0 # the caller chose its own server
  command -v psql >/dev/null 2>&1 || return 0
  postgres_login_works && return 0
  local cluster version name hba
  cluster=$(pg_cluster)
  read -r version name <<<"$cluster"
  hba="/etc/postgresql/$version/$name/pg_hba.conf"
  if [[ -z $cluster || ! -f $hba ]]; then
    echo "PostgreSQL on $PG_HOST:$PG_PORT refuses user postgres without a password, and no Debian cluster config was found to allow it" >&2
    return 1
  fi
  if ! can_be_root; then
    echo "PostgreSQL on $PG_HOST:$PG_PORT refuses user postgres without a password. Allow it on loopback (as root), then run this again:" >&2
    echo "  sed -i '1i host all postgres 127.0.0.1/32 trust\\nhost all postgres ::1/128 trust' $hba && pg_ctlcluster ${cluster} reload" >&2
    return 1
  fi
  echo "allowing user postgres without a password on 127.0.0.1 and ::1 (first lines of $hba) for the tests" >&2
  as_root sed -i '1i # Added by lexpipe scripts/services.sh: the tests connect as postgres without a password.\nhost all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  # shellcheck disable=SC2086  # "version name"
  as_root pg_ctlcluster $cluster reload
  for _ in $(seq 1 25); do postgres_login_works && return 0; sleep 0.2; done
  echo "PostgreSQL still refuses user postgres on $PG_HOST:$PG_PORT after the change to $hba" >&2
  return 1
}

postgres_login_works() {
  PGCONNECT_TIMEOUT=5 psql -w -q -At -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -c 'select 1' >/dev/null 2>&1
}

# ensure_postgres required|optional: started when installed but stopped; on loopback,
# user postgres must be able to log in without a password (allow_local_postgres_login).
ensure_postgres() {
  local mode=${1:-required}
  if ! postgres_up; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [[ -n $(pg_cluster) ]]; then
      local cluster
      cluster=$(pg_cluster)
      echo "starting PostgreSQL cluster $cluster" >&2
      # As root, pg_ctlcluster runs the server as the cluster's owner (PostgreSQL refuses
      # to run as root); as another user, it works only for the owner, else through sudo.
      local up=false
      # shellcheck disable=SC2086  # "version name"
      if pg_ctlcluster --skip-systemctl-redirect $cluster start 2>/dev/null ||
        as_root pg_ctlcluster --skip-systemctl-redirect $cluster start; then
        for _ in $(seq 1 50); do postgres_up && { up=true; break; }; sleep 0.2; done
      fi
      if ! $up; then
        echo "PostgreSQL did not come up on $PG_HOST:$PG_PORT (start it as root with:  pg_ctlcluster $cluster start)" >&2
        [[ $mode == optional ]] && return 1 || exit 1
      fi
    elif command -v pg_ctlcluster >/dev/null 2>&1; then
      echo "PostgreSQL is installed but no cluster is set to port $PG_PORT (see pg_lsclusters; as root, pg_createcluster --start <version> main makes one)" >&2
      [[ $mode == optional ]] && return 1 || exit 1
    elif [[ $mode == optional ]]; then
      echo "PostgreSQL is not installed: results go to JSON files only" >&2
      return 1
    else
      echo "PostgreSQL is required and not installed. Install it with:  apt-get update && apt-get install -y postgresql" >&2
      echo "(the tests connect as user postgres with trust authentication on $PG_HOST:$PG_PORT)" >&2
      exit 1
    fi
  fi
  allow_local_postgres_login && return 0
  [[ $mode == optional ]] && return 1 || exit 1
}
