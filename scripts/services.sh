#!/usr/bin/env bash
# Throwaway PostgreSQL 15 and RabbitMQ 3.10 for tests, on 127.0.0.1, free ports,
# unique names and a private temp directory, so several instances can run side
# by side on one machine. See docs/testing.md.
#
#   scripts/services.sh install            install postgresql, rabbitmq-server, ffmpeg, chromium if missing
#   scripts/services.sh start [DIR]        start both; prints DIR on stdout (state + env file in it)
#   scripts/services.sh stop DIR           stop both, kill leftovers, rm -rf DIR
#   scripts/services.sh env DIR            print the export lines
#   scripts/services.sh free-port          print a free TCP port on 127.0.0.1
#   scripts/services.sh pg-stop|pg-start|rabbitmq-stop|rabbitmq-start DIR
#                                          stop/start one service of a running set (fault tests)
#
# It can also be sourced (`. scripts/services.sh`) to use the functions directly.

PFILM_PG_BIN_DEFAULT=/usr/lib/postgresql/15/bin
PFILM_RABBIT_BIN=/usr/lib/rabbitmq/bin
PFILM_SERVICES_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

svc_log() { printf '%s\n' "services: $*" >&2; }
svc_die() { svc_log "error: $*"; return 1; }
svc_now() { date +%s.%N; }
svc_elapsed() { awk -v a="$1" -v b="$(svc_now)" 'BEGIN { printf "%.1fs", b - a }'; }

# ---------------------------------------------------------------- install
# Installs what is missing. apt-get update runs only when something is missing.
# Not root: prints the exact command and fails.
svc_install() {
  local need=()
  [[ -x $PFILM_PG_BIN_DEFAULT/initdb ]] && command -v psql >/dev/null || need+=(postgresql)
  [[ -x $PFILM_RABBIT_BIN/rabbitmq-server ]] || need+=(rabbitmq-server)
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need+=(ffmpeg)
  # The dashboard's browser tests drive Debian's Chromium (never a browser Playwright downloads).
  [[ -x /usr/bin/chromium ]] || need+=(chromium)
  ((${#need[@]})) || return 0
  if [[ $(id -u) != 0 ]]; then
    svc_log "missing packages: ${need[*]}. Install them with:"
    printf '  sudo apt-get update && sudo apt-get install -y %s\n' "${need[*]}" >&2
    return 1
  fi
  svc_log "installing ${need[*]} with apt-get (about 30-60 s)..."
  local t0 policy_created=0 rc=0 out
  t0=$(svc_now)
  # Keep the packages' own services from starting during the install (they are
  # not used, and rabbitmq's does not come up here anyway): policy-rc.d = 101.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_created=1
  fi
  out=$(
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq 2>&1 &&
      apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" 2>&1
  ) || rc=$?
  ((policy_created)) && rm -f /usr/sbin/policy-rc.d
  if ((rc)); then
    printf '%s\n' "$out" | tail -n 40 >&2
    svc_die "apt-get install ${need[*]} failed (exit $rc)"
    return 1
  fi
  svc_log "installed ${need[*]} in $(svc_elapsed "$t0")"
}

# ---------------------------------------------------------------- ports
# A free TCP port on 127.0.0.1 in 20000-31999: below the ephemeral range
# (32768-60999, where outgoing connections take ports) and below the fixed
# port range RabbitMQ's CLI tools use for their own distribution (35672-35682).
# Ports already handed out by this shell are skipped (SVC_TAKEN_PORTS).
SVC_TAKEN_PORTS=" "
svc_port_in_use() {
  local p=$1
  if command -v ss >/dev/null; then
    [[ -n $(ss -Htan "( sport = :$p )" 2>/dev/null) ]] && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
  return 1
}
svc_free_port() {
  local i p
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    [[ $SVC_TAKEN_PORTS == *" $p "* ]] && continue
    [[ $p == 25672 ]] && continue
    svc_port_in_use "$p" && continue
    SVC_TAKEN_PORTS+="$p "
    echo "$p"
    return 0
  done
  svc_die "no free port found"
}

# ---------------------------------------------------------------- users
# As root, PostgreSQL runs as user postgres and RabbitMQ as user rabbitmq (initdb
# refuses root; the rabbitmq user owns the system Erlang cookie that plain
# `rabbitmqctl` uses as root). Not root: both run as the current user.
svc_as() { # svc_as USER CMD...  (exec-style: no extra process stays around)
  local user=$1
  shift
  if [[ $(id -u) == 0 ]]; then
    setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
  else
    "$@"
  fi
}
svc_rabbit_home() {
  if [[ $(id -u) == 0 ]]; then getent passwd rabbitmq | cut -d: -f6; else echo "$HOME"; fi
}

# ---------------------------------------------------------------- state
# DIR/state: shell assignments read back by stop/restart.  DIR/env: export lines.
svc_load() {
  local dir=$1
  [[ -n $dir && -f $dir/state ]] || { svc_die "not a services directory: $dir"; return 1; }
  # shellcheck disable=SC1091
  . "$dir/state"
}
svc_save() { # svc_save DIR NAME VALUE
  printf '%s=%q\n' "$2" "$3" >>"$1/state"
}

# ---------------------------------------------------------------- PostgreSQL
svc_pg_init() {
  local dir=$1 port=$2 pgbin=$3 data=$1/pg out
  mkdir -p "$data"
  [[ $(id -u) == 0 ]] && chown postgres:postgres "$data"
  chmod 700 "$data"
  # --no-sync: the cluster is throwaway, no need to fsync initdb's files.
  out=$(cd "$data" && svc_as postgres "$pgbin/initdb" -D "$data" -U postgres --auth=trust \
    -E UTF8 --locale=C.UTF-8 --no-sync 2>&1) ||
    { printf '%s\n' "$out" >&2; svc_die "initdb failed"; return 1; }
  # Settings go into postgresql.conf so that a plain `pg_ctl start/restart`
  # (fault tests) brings it back identically.
  cat >>"$data/postgresql.conf" <<EOF

# --- pfilm test instance (scripts/services.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data'
max_connections = 300
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
# As docker-compose.yml sets it: a 100,000-task job writes about 90 MB of WAL in one transaction, and with the
# default 4 MB of WAL buffers its backend kept stopping to write them itself.
wal_buffers = 64MB
EOF
}

svc_pg_start() { # DIR: start (or restart) the cluster described in DIR/state
  local dir=$1
  svc_load "$dir" || return 1
  local data=$PG_DATA out
  # setsid: the postmaster gets its own session, so a Ctrl-C in the terminal
  # does not reach it and stop can find leftovers by session id.
  out=$(cd "$data" && setsid -w bash -c "$(declare -f svc_as); svc_as postgres \"\$@\"" _ \
    "$PG_BIN/pg_ctl" -D "$data" -l "$data/log" -w -t 60 start 2>&1) || {
    printf '%s\n' "$out" >&2
    tail -n 20 "$data/log" >&2 2>/dev/null
    svc_die "PostgreSQL did not start (port $PG_PORT)"
    return 1
  }
}

svc_pg_stop() { # DIR
  local dir=$1
  svc_load "$dir" || return 1
  local data=$PG_DATA pid sid
  [[ -f $data/postmaster.pid ]] || return 0
  pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null)
  sid=$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')
  (cd "$data" && svc_as postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 20 stop >/dev/null 2>&1) || {
    svc_log "pg_ctl stop failed; killing postmaster $pid"
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  }
  # Leftovers (backends that outlived a killed postmaster): only in its session.
  [[ -n $sid && $sid != 0 && $sid != "$$" ]] && pkill -KILL -s "$sid" 2>/dev/null
  return 0
}

# ---------------------------------------------------------------- RabbitMQ
svc_rabbit_env() { # prints env assignments for the node in DIR/state (already loaded)
  local r=$SVC_DIR/rabbit
  printf '%s\n' \
    "HOME=$RABBIT_HOME" \
    "RABBITMQ_NODENAME=$RABBIT_NODE" \
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1" \
    "RABBITMQ_NODE_PORT=$RABBIT_PORT" \
    "RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT" \
    "RABBITMQ_MNESIA_BASE=$r/mnesia" \
    "RABBITMQ_LOG_BASE=$r/log" \
    "RABBITMQ_PID_FILE=$r/pid" \
    "RABBITMQ_CONF_ENV_FILE=$r/rabbitmq-env.conf" \
    "RABBITMQ_CONFIG_FILE=$r/rabbitmq.conf" \
    "RABBITMQ_ADVANCED_CONFIG_FILE=$r/advanced.config" \
    "RABBITMQ_ENABLED_PLUGINS_FILE=$r/enabled_plugins" \
    "RABBITMQ_PLUGINS_EXPAND_DIR=$r/plugins-expand" \
    "ERL_EPMD_ADDRESS=127.0.0.1" \
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
}

svc_rabbitmqctl() { # DIR ARGS...: rabbitmqctl -n NODE as the node's user, with its cookie
  local dir=$1
  shift
  svc_load "$dir" || return 1
  (cd "$dir/rabbit" && svc_as rabbitmq env HOME="$RABBIT_HOME" \
    "$PFILM_RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" "$@")
}

svc_rabbit_init() { # DIR
  local r=$1/rabbit
  mkdir -p "$r/mnesia" "$r/log"
  : >"$r/rabbitmq-env.conf" # do not read /etc/rabbitmq/rabbitmq-env.conf
  printf '[].\n' >"$r/enabled_plugins" # no management plugin (it would bind 15672)
  printf '[].\n' >"$r/advanced.config"
  cat >"$r/rabbitmq.conf" <<'EOF'
# pfilm test instance (scripts/services.sh)
loopback_users.guest = true
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
EOF
  [[ $(id -u) == 0 ]] && chown -R rabbitmq:rabbitmq "$r"
  return 0
}

svc_epmd_ensure() { # start epmd (loopback only) if none is running; remember that we did
  local dir=$1
  epmd -names >/dev/null 2>&1 && return 0
  (cd / && svc_as rabbitmq env ERL_EPMD_ADDRESS=127.0.0.1 epmd -daemon -address 127.0.0.1) || true
  local i
  for ((i = 0; i < 50; i++)); do
    epmd -names >/dev/null 2>&1 && { touch "$dir/epmd-started"; return 0; }
    sleep 0.1
  done
  svc_die "epmd did not start"
}

svc_rabbit_launch() { # DIR: start the node in the background (does not wait)
  local dir=$1
  svc_load "$dir" || return 1
  SVC_DIR=$dir
  svc_epmd_ensure "$dir" || return 1
  local envs
  mapfile -t envs < <(svc_rabbit_env)
  rm -f "$dir/rabbit/pid"
  # setsid: own session (Ctrl-C does not reach it; leftovers found by session id).
  (cd "$dir/rabbit" && exec setsid bash -c "$(declare -f svc_as); svc_as rabbitmq env \"\$@\"" _ \
    "${envs[@]}" "$PFILM_RABBIT_BIN/rabbitmq-server" \
    </dev/null >>"$dir/rabbit/log/stdout.log" 2>&1) &
  echo $! >"$dir/rabbit/sid" # setsid in a non-leader child: same pid, new session
}

svc_rabbit_wait() { # DIR [TIMEOUT_S]
  local dir=$1 timeout=${2:-60} t0 sid
  svc_load "$dir" || return 1
  sid=$(cat "$dir/rabbit/sid")
  t0=$SECONDS
  # The pid file appears once the VM is up; await_startup then waits for the app.
  while [[ ! -s $dir/rabbit/pid ]]; do
    pgrep -s "$sid" >/dev/null || { svc_rabbit_fail "$dir"; return 1; }
    ((SECONDS - t0 > timeout)) && { svc_rabbit_fail "$dir"; return 1; }
    sleep 0.1
  done
  # Record the VM's session (robust even if setsid had to fork).
  sid=$(ps -o sid= -p "$(cat "$dir/rabbit/pid")" 2>/dev/null | tr -d ' ')
  [[ -n $sid ]] && echo "$sid" >"$dir/rabbit/sid"
  svc_rabbitmqctl "$dir" -q await_startup --timeout "$timeout" >/dev/null 2>&1 ||
    { svc_rabbit_fail "$dir"; return 1; }
}
svc_rabbit_fail() {
  local dir=$1
  svc_log "RabbitMQ node $RABBIT_NODE did not start; last log lines:"
  tail -n 15 "$dir/rabbit/log/stdout.log" "$dir/rabbit/log/"*.log 2>/dev/null | grep -v '^$' | tail -n 30 >&2
  return 1
}

svc_rabbit_stop() { # DIR
  local dir=$1 sid pid i
  svc_load "$dir" || return 1
  [[ -f $dir/rabbit/sid ]] || return 0
  sid=$(cat "$dir/rabbit/sid")
  pid=$(cat "$dir/rabbit/pid" 2>/dev/null)
  if pgrep -s "$sid" >/dev/null; then
    # SIGTERM to the VM is a clean shutdown (init:stop) and avoids booting the
    # CLI (about 1 s); `rabbitmqctl shutdown` is the fallback.
    if [[ -z $pid ]]; then
      # Still booting (no pid file yet): nothing worth a clean shutdown.
      pkill -KILL -s "$sid" 2>/dev/null
    elif ! kill -TERM "$pid" 2>/dev/null; then
      svc_rabbitmqctl "$dir" -q shutdown --timeout 15 >/dev/null 2>&1
    fi
    for ((i = 0; i < 150; i++)); do
      pgrep -s "$sid" >/dev/null || break
      sleep 0.1
    done
    if pgrep -s "$sid" >/dev/null; then
      svc_log "RabbitMQ node $RABBIT_NODE did not stop in 15 s; killing it"
      pkill -KILL -s "$sid" 2>/dev/null
    fi
  fi
  rm -f "$dir/rabbit/sid" "$dir/rabbit/pid"
  return 0
}

svc_epmd_stop() { # DIR: only if this instance started epmd; `epmd -kill` itself
  local dir=$1     # refuses while any node (someone else's) is still registered.
  if [[ -f $dir/epmd-started ]]; then
    epmd -kill >/dev/null 2>&1 || true
    rm -f "$dir/epmd-started"
  fi
}

# ---------------------------------------------------------------- start/stop all
svc_write_env() {
  local dir=$1
  svc_load "$dir" || return 1
  {
    echo "export PFILM_TEST_POSTGRES='Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres'"
    echo "export PFILM_TEST_RABBITMQ='amqp://guest:guest@127.0.0.1:$RABBIT_PORT/'"
    echo "export PFILM_TEST_RABBITMQ_NODE='$RABBIT_NODE'"
    echo "export PFILM_TEST_PG_DATA='$PG_DATA'"
    echo "export PFILM_TEST_PG_BIN='$PG_BIN'"
    echo "export PFILM_TEST_PG_PORT='$PG_PORT'"
    echo "export PFILM_TEST_RABBITMQ_PORT='$RABBIT_PORT'"
    echo "export PFILM_TEST_SERVICES_DIR='$dir'"
  } >"$dir/env"
  # Small helpers for fault tests and humans (each runs as the right user).
  mkdir -p "$dir/bin"
  local sub
  for sub in pg-stop pg-start rabbitmq-stop rabbitmq-start; do
    printf '#!/usr/bin/env bash\nexec %q %q %q\n' "$PFILM_SERVICES_SH" "$sub" "$dir" >"$dir/bin/$sub"
  done
  printf '#!/usr/bin/env bash\nexec %q rabbitmqctl %q "$@"\n' "$PFILM_SERVICES_SH" "$dir" >"$dir/bin/rabbitmqctl"
  printf '#!/usr/bin/env bash\nexec psql -h 127.0.0.1 -p %q -U postgres "$@"\n' "$PG_PORT" >"$dir/bin/psql"
  chmod 755 "$dir/bin/"*
}

# svc_start [DIR]: starts both, sets SVC_DIR; the env file is DIR/env.
svc_start() {
  local dir=${1:-} t0 attempt
  t0=$(svc_now)
  if [[ -z $dir ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/pfilm-test.XXXXXX") || return 1
  else
    mkdir -p "$dir" || return 1
  fi
  chmod 755 "$dir"
  SVC_DIR=$dir
  : >"$dir/state"
  command -v setpriv >/dev/null || { svc_die "setpriv (util-linux) is missing"; return 1; }

  local pgbin=${PFILM_PG_BIN:-$PFILM_PG_BIN_DEFAULT}
  local node="pfilm-test-$$-${dir##*.}@localhost"
  local pg_port rabbit_port dist_port
  pg_port=$(svc_free_port) && rabbit_port=$(svc_free_port) && dist_port=$(svc_free_port) || return 1
  # $(...) runs in a subshell: record the ports here so the next picks skip them.
  SVC_TAKEN_PORTS+="$pg_port $rabbit_port $dist_port "
  {
    printf 'SVC_DIR=%q\n' "$dir"
    printf 'PG_BIN=%q\nPG_DATA=%q\nPG_PORT=%q\n' "$pgbin" "$dir/pg" "$pg_port"
    printf 'RABBIT_NODE=%q\nRABBIT_PORT=%q\nRABBIT_DIST_PORT=%q\nRABBIT_HOME=%q\n' \
      "$node" "$rabbit_port" "$dist_port" "$(svc_rabbit_home)"
  } >"$dir/state"

  # RabbitMQ boots in the background while PostgreSQL is initialised.
  svc_rabbit_init "$dir" && svc_rabbit_launch "$dir" || return 1
  svc_pg_init "$dir" "$pg_port" "$pgbin" || return 1
  for attempt in 1 2 3; do
    svc_pg_start "$dir" && break
    ((attempt == 3)) && return 1
    svc_log "retrying PostgreSQL on another port"
    pg_port=$(svc_free_port) || return 1
    SVC_TAKEN_PORTS+="$pg_port "
    sed -i "s/^port = .*/port = $pg_port/" "$dir/pg/postgresql.conf"
    svc_save "$dir" PG_PORT "$pg_port"
  done
  for attempt in 1 2 3; do
    svc_rabbit_wait "$dir" 60 && break
    svc_rabbit_stop "$dir"
    ((attempt == 3)) && return 1
    svc_log "retrying RabbitMQ on other ports"
    rabbit_port=$(svc_free_port) && dist_port=$(svc_free_port) || return 1
    SVC_TAKEN_PORTS+="$rabbit_port $dist_port "
    svc_save "$dir" RABBIT_PORT "$rabbit_port"
    svc_save "$dir" RABBIT_DIST_PORT "$dist_port"
    rm -rf "$dir/rabbit/mnesia"/*
    svc_rabbit_launch "$dir" || return 1
  done
  svc_write_env "$dir" || return 1
  svc_load "$dir"
  svc_log "PostgreSQL 15 on 127.0.0.1:$PG_PORT, RabbitMQ node $RABBIT_NODE on 127.0.0.1:$RABBIT_PORT (dir $dir), up in $(svc_elapsed "$t0")"
}

# svc_stop DIR: stops both (in parallel), kills leftovers, removes DIR.
svc_stop() {
  local dir=$1 t0
  [[ -n $dir && -d $dir ]] || return 0
  [[ -f $dir/state ]] || { svc_die "refusing to remove $dir: no state file"; return 1; }
  t0=$(svc_now)
  svc_pg_stop "$dir" &
  local pg_job=$!
  svc_rabbit_stop "$dir"
  svc_epmd_stop "$dir"
  wait "$pg_job"
  rm -rf "$dir"
  svc_log "stopped PostgreSQL and RabbitMQ, removed $dir in $(svc_elapsed "$t0")"
}

# ---------------------------------------------------------------- CLI
svc_main() {
  local cmd=${1:-help}
  shift || true
  case $cmd in
    install) svc_install ;;
    free-port) svc_free_port ;;
    start)
      if svc_start "${1:-}"; then
        echo "$SVC_DIR"
      else
        local rc=$?
        [[ -n ${SVC_DIR:-} ]] && svc_stop "$SVC_DIR" >/dev/null 2>&1
        return "$rc"
      fi
      ;;
    stop) [[ -n ${1:-} ]] || { svc_die "usage: $0 stop DIR"; return 2; }; svc_stop "$1" ;;
    env) svc_load "${1:-}" && cat "$1/env" ;;
    pg-stop) svc_pg_stop "${1:?DIR}" ;;
    pg-start) svc_pg_start "${1:?DIR}" ;;
    rabbitmq-stop) svc_rabbit_stop "${1:?DIR}" ;;
    rabbitmq-start) svc_rabbit_launch "${1:?DIR}" && svc_rabbit_wait "$1" 60 ;;
    rabbitmqctl) svc_rabbitmqctl "${1:?DIR}" "${@:2}" ;;
    help | -h | --help) sed -n '2,14p' "$PFILM_SERVICES_SH" | sed 's/^# \{0,1\}//' ;;
    *) svc_die "unknown command: $cmd (try --help)"; return 2 ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -uo pipefail
  svc_main "$@"
fi
