#!/usr/bin/env bash
# The whole local stack for the tutorial's last steps: a throw-away
# PostgreSQL server, the AWS emulator (moto by default) and the Redshift Data
# API sandbox, all on 127.0.0.1.
#   scripts/sandbox.sh start   starts a stack (or, when S2R_STACK_DIR names a
#                              running one, reuses it); prints the environment
#   scripts/sandbox.sh stop    stops the stack S2R_STACK_DIR names (or the only
#                              one running)
#   scripts/sandbox.sh env     prints that stack's environment again
# Use it with:  eval "$(scripts/sandbox.sh start)"
# Each stack has its own state folder (.run/stack.XXXXXX), so several run at
# once, from one checkout, without stopping each other.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

emulator=${S2R_EMULATOR:-moto}

# use_dir DIR: the state folder of one stack.
use_dir() {
  RUN_DIR=$1
  export S2R_STACK_DIR=$RUN_DIR
  # The data folder lives under /tmp, not in the repo: the `postgres` user
  # must be able to reach it, and a clone under /root would not let it.
  pg_dirfile="$RUN_DIR/postgres.dir"
  PGDIR=$(cat "$pg_dirfile" 2>/dev/null || true)
  pg_pidfile="$RUN_DIR/postgres.port"
  sb_pidfile="$RUN_DIR/sandbox.pid"
  sb_envfile="$RUN_DIR/sandbox.env"
  if [ -f "$RUN_DIR/emulator" ]; then emulator=$(cat "$RUN_DIR/emulator"); fi
}

# any_alive DIR: whether a process recorded in DIR's pid files still runs.
any_alive() {
  local pid
  for pid in $(cat "$1"/*.pid 2>/dev/null); do
    kill -0 "$pid" 2>/dev/null && return 0
  done
  return 1
}

# The stack S2R_STACK_DIR names, or else the only one there is.
find_stack() {
  if [ -n "${S2R_STACK_DIR:-}" ]; then
    [ -d "$S2R_STACK_DIR" ] || die "S2R_STACK_DIR=$S2R_STACK_DIR is not a stack's folder (stopped already?)"
    use_dir "$S2R_STACK_DIR"
    return
  fi
  local stacks=() dir
  for dir in "$RUN_BASE"/stack.*; do
    [ -d "$dir" ] || continue
    # A folder whose processes are all gone is what a crash left: not a stack.
    if any_alive "$dir"; then
      stacks+=("$dir")
    else
      log "removing $dir: none of its processes is running"
      rm -rf "$dir"
    fi
  done
  [ "${#stacks[@]}" -gt 0 ] || return 1
  if [ "${#stacks[@]}" -gt 1 ]; then
    die "${#stacks[@]} stacks are running (${stacks[*]}); name one: S2R_STACK_DIR=<folder> scripts/sandbox.sh $1"
  fi
  use_dir "${stacks[0]}"
}

# PostgreSQL refuses to run as root; as root we run it as the `postgres`
# user that Debian's package creates.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

install_postgres() {
  if ! pg_bin >/dev/null; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL is needed: sudo apt-get install postgresql"
    log "installing PostgreSQL (Debian package postgresql)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  pg_bin >/dev/null || die "PostgreSQL binaries not found under /usr/lib/postgresql"
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
}

pg_running() { [ -n "$PGDIR" ] && [ -f "$PGDIR/postmaster.pid" ] && kill -0 "$(head -1 "$PGDIR/postmaster.pid")" 2>/dev/null; }

start_postgres() {
  install_postgres
  local bin; bin=$(pg_bin)
  if ! pg_running; then
    [ -n "$PGDIR" ] && rm -rf "$PGDIR"
    PGDIR=$(mktemp -d /tmp/s3-to-redshift-postgres.XXXXXX)
    echo "$PGDIR" >"$pg_dirfile"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGDIR"; fi
    chmod 700 "$PGDIR"
    as_pg "$bin/initdb" -D "$PGDIR" -U postgres --auth=trust --no-sync >"$RUN_DIR/initdb.log" 2>&1 \
      || { cat "$RUN_DIR/initdb.log" >&2; die "initdb failed"; }
    local port; port=$(free_port)
    # Loopback only, the socket in the data folder (not /var/run), and
    # enough connections for the sandbox's pool plus the tests' own.
    as_pg "$bin/pg_ctl" -D "$PGDIR" -l "$PGDIR/server.log" -w \
      -o "-h 127.0.0.1 -p $port -k $PGDIR -c max_connections=200 -c fsync=off" start >/dev/null \
      || { tail -20 "$PGDIR/server.log" >&2; die "PostgreSQL did not start"; }
    echo "$port" >"$pg_pidfile"
    log "PostgreSQL listening on 127.0.0.1:$port (data in $PGDIR)"
  fi
}

stop_postgres() {
  if pg_running; then
    as_pg "$(pg_bin)/pg_ctl" -D "$PGDIR" -m fast -w stop >/dev/null || true
    log "PostgreSQL stopped"
  fi
  [ -n "$PGDIR" ] && rm -rf "$PGDIR"
  rm -f "$pg_pidfile" "$pg_dirfile"
}

sb_running() { [ -f "$sb_pidfile" ] && kill -0 "$(cat "$sb_pidfile")" 2>/dev/null; }

start() {
  start_postgres
  eval "$("$ROOT/scripts/emulator.sh" start "$emulator")"
  if ! sb_running; then
    cargo build --locked --quiet -p redshift-sandbox
    rm -f "$RUN_DIR/sandbox.port"
    "$ROOT/target/debug/redshift-sandbox" --listen 127.0.0.1:0 --port-file "$RUN_DIR/sandbox.port" \
      --postgres "host=127.0.0.1 port=$(cat "$pg_pidfile") user=postgres" >"$RUN_DIR/sandbox.log" 2>&1 &
    echo $! >"$sb_pidfile"
    for _ in $(seq 100); do [ -s "$RUN_DIR/sandbox.port" ] && break; sb_running || break; sleep 0.1; done
    [ -s "$RUN_DIR/sandbox.port" ] || { tail -20 "$RUN_DIR/sandbox.log" >&2; die "the sandbox did not start"; }
    log "Redshift Data API sandbox listening on 127.0.0.1:$(cat "$RUN_DIR/sandbox.port") (pid $(cat "$sb_pidfile"))"
  fi
  { echo "export S2R_STACK_DIR=$RUN_DIR"
    "$ROOT/scripts/emulator.sh" env "$emulator"
    echo "export AWS_ENDPOINT_URL_REDSHIFT_DATA=http://127.0.0.1:$(cat "$RUN_DIR/sandbox.port")"
    echo "export S2R_SANDBOX_POSTGRES='host=127.0.0.1 port=$(cat "$pg_pidfile") user=postgres'"
    # For the load test, which reads the sandbox's memory from /proc.
    echo "export S2R_SANDBOX_PID=$(cat "$sb_pidfile")"
  } >"$sb_envfile"
  cat "$sb_envfile"
}

stop() {
  if sb_running; then stop_pid "$(cat "$sb_pidfile")" sandbox; fi
  rm -f "$sb_pidfile" "$sb_envfile" "$RUN_DIR/sandbox.port"
  stop_postgres
  "$ROOT/scripts/emulator.sh" stop "$emulator"
}

case "${1:-}" in
  start)
    if [ -n "${S2R_STACK_DIR:-}" ] && [ -d "$S2R_STACK_DIR" ]; then
      use_dir "$S2R_STACK_DIR"
    else
      use_dir "$(mktemp -d "$RUN_BASE/stack.XXXXXX")"
      echo "$emulator" >"$RUN_DIR/emulator"
      # A start that fails half-way stops what it had started.
      trap 'log "the stack did not start; stopping what had started"; stop >/dev/null 2>&1 || true; rm -rf "$RUN_DIR"' EXIT
    fi
    start
    trap - EXIT
    ;;
  stop)
    if find_stack stop; then
      stop
      rm -rf "$RUN_DIR"
    else
      log "no stack is running"
    fi
    ;;
  env)
    find_stack env && sb_running || die "the sandbox is not running; run: scripts/sandbox.sh start"
    cat "$sb_envfile"
    ;;
  *) die "usage: scripts/sandbox.sh start|stop|env" ;;
esac
