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
  if [ "$(id -u)" != 0 ]; then "$@"; return; fi
  # runuser lives in sbin, which a root PATH may lack.
  local r; r=$(command -v runuser || echo /usr/sbin/runuser)
  "$r" -u postgres -- "$@"
}

# The folder of PostgreSQL's server programs (initdb, pg_ctl), wherever this
# machine has them, in this order:
#   1. S2R_PG_BIN, if set (a folder holding initdb);
#   2. initdb on PATH (Fedora, Arch, Homebrew's bin, any folder you add);
#   3. `pg_config --bindir`;
#   4. the usual folders of packages that keep them off PATH: Debian and
#      Ubuntu (/usr/lib/postgresql/N/bin), RHEL and the PGDG packages
#      (/usr/pgsql-N/bin), Homebrew's versioned kegs, Postgres.app
#      (skipped when S2R_PG_ONLY_PATH=1, to check that PATH alone suffices).
# Prints "FOLDER WHERE" (where it was found) and fails when none has it.
pg_find() {
  local d
  if [ -n "${S2R_PG_BIN:-}" ]; then
    [ -x "$S2R_PG_BIN/initdb" ] || die "S2R_PG_BIN=$S2R_PG_BIN holds no initdb"
    echo "$S2R_PG_BIN S2R_PG_BIN"; return
  fi
  if d=$(command -v initdb 2>/dev/null); then echo "$(dirname "$d") PATH"; return; fi
  if command -v pg_config >/dev/null 2>&1 && d=$(pg_config --bindir 2>/dev/null) && [ -x "$d/initdb" ]; then
    echo "$d pg_config"; return
  fi
  [ "${S2R_PG_ONLY_PATH:-}" = 1 ] && return 1
  # The highest major version first, in numeric order (no `sort -V`, which
  # not every sort has); a folder with no version number (Postgres.app's
  # `latest`) last.
  local g v
  for d in $(for g in /usr/lib/postgresql/*/bin /usr/pgsql-*/bin /opt/homebrew/opt/postgresql@*/bin \
               /usr/local/opt/postgresql@*/bin /Applications/Postgres.app/Contents/Versions/*/bin; do
               [ -x "$g/initdb" ] || continue
               v=$(printf '%s' "$g" | sed -E 's#.*(postgresql/|pgsql-|postgresql@|Versions/)([0-9]+).*#\2#')
               case $v in '' | *[!0-9]*) v=0 ;; esac
               printf '%s %s\n' "$v" "$g"
             done | sort -rn | cut -d' ' -f2-); do
    echo "$d its-package-folder"; return
  done
  return 1
}

pg_bin() {
  # The folder recorded when this stack's server started, so that `stop`
  # uses the same programs whatever PATH is then.
  if [ -n "${RUN_DIR:-}" ] && [ -s "$RUN_DIR/postgres.bin" ]; then cat "$RUN_DIR/postgres.bin"; return; fi
  local found; found=$(pg_find) || return 1
  echo "${found%% *}"
}

install_postgres() {
  if ! pg_find >/dev/null && [ "${S2R_PG_ONLY_PATH:-}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing PostgreSQL (Debian package postgresql)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local found
  found=$(pg_find) || die "PostgreSQL's server programs (initdb, pg_ctl) were not found on PATH, through pg_config, or in the usual folders. Install them:
    Debian, Ubuntu:   sudo apt-get install postgresql
    Fedora, RHEL:     sudo dnf install postgresql-server
    Arch:             sudo pacman -S postgresql
    Alpine:           sudo apk add postgresql
    macOS:            brew install postgresql@17   (or Postgres.app)
  or point S2R_PG_BIN at the folder that holds initdb."
  log "PostgreSQL programs: ${found%% *} (found through ${found#* })"
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
}

pg_running() { [ -n "$PGDIR" ] && [ -f "$PGDIR/postmaster.pid" ] && kill -0 "$(head -1 "$PGDIR/postmaster.pid")" 2>/dev/null; }

start_postgres() {
  install_postgres
  local bin
  if ! pg_running; then
    bin=$(pg_find) || die "PostgreSQL's programs are gone"
    bin=${bin%% *}
    echo "$bin" >"$RUN_DIR/postgres.bin"
  fi
  if ! pg_running; then
    [ -n "$PGDIR" ] && rm -rf "$PGDIR"
    PGDIR=$(mktemp -d /tmp/s3-to-redshift-postgres.XXXXXX)
    echo "$PGDIR" >"$pg_dirfile"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGDIR"; fi
    chmod 700 "$PGDIR"
    # The superuser's password: random, in a file only this user reads,
    # never on a command line. TCP connections must give a password
    # (scram-sha-256); the Unix socket, in the data folder only the server's
    # user can open, takes that user alone (peer). No trust anywhere: the
    # sandbox runs readers' SQL as an ordinary role of each cluster's.
    (umask 077; python3 -c 'import secrets; print(secrets.token_hex(24))' >"$RUN_DIR/postgres.password")
    # initdb wants the data folder empty; the copy it reads is beside it,
    # readable by the server's user alone.
    local pwfile; pwfile=$(mktemp /tmp/s3-to-redshift-initdb.XXXXXX)
    cat "$RUN_DIR/postgres.password" >"$pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$pwfile"; fi
    as_pg "$bin/initdb" -D "$PGDIR" -U postgres --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=peer \
      --no-sync >"$RUN_DIR/initdb.log" 2>&1 \
      || { rm -f "$pwfile"; cat "$RUN_DIR/initdb.log" >&2; die "initdb failed"; }
    rm -f "$pwfile"
    local port; port=$(free_port)
    # Loopback only, the socket in the data folder (not /var/run), and
    # enough connections for the sandbox's pool plus the tests' own. The
    # data is thrown away with the stack, so nothing is written for crash
    # safety: no fsync, no full-page images, no WAL for what a transaction
    # creates and fills itself (wal_level=minimal: a COPY into the staging
    # table made in the same batch), and checkpoints far apart.
    as_pg "$bin/pg_ctl" -D "$PGDIR" -l "$PGDIR/server.log" -w \
      -o "-h 127.0.0.1 -p $port -k $PGDIR -c max_connections=200 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=4GB" start >/dev/null \
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
  rm -f "$pg_pidfile" "$pg_dirfile" "$RUN_DIR/postgres.bin" "$RUN_DIR/postgres.password"
}

sb_running() { [ -f "$sb_pidfile" ] && kill -0 "$(cat "$sb_pidfile")" 2>/dev/null; }

start() {
  start_postgres
  eval "$("$ROOT/scripts/emulator.sh" start "$emulator")"
  if ! sb_running; then
    cargo build --locked --quiet -p redshift-sandbox
    rm -f "$RUN_DIR/sandbox.port"
    "$ROOT/target/debug/redshift-sandbox" --listen 127.0.0.1:0 --port-file "$RUN_DIR/sandbox.port" \
      --postgres "host=127.0.0.1 port=$(cat "$pg_pidfile") user=postgres" \
      --postgres-password-file "$RUN_DIR/postgres.password" >"$RUN_DIR/sandbox.log" 2>&1 &
    echo $! >"$sb_pidfile"
    for _ in $(seq 100); do [ -s "$RUN_DIR/sandbox.port" ] && break; sb_running || break; sleep 0.1; done
    [ -s "$RUN_DIR/sandbox.port" ] || { tail -20 "$RUN_DIR/sandbox.log" >&2; die "the sandbox did not start"; }
    log "Redshift Data API sandbox listening on 127.0.0.1:$(cat "$RUN_DIR/sandbox.port") (pid $(cat "$sb_pidfile"))"
  fi
  { echo "export S2R_STACK_DIR=$RUN_DIR"
    "$ROOT/scripts/emulator.sh" env "$emulator"
    echo "export AWS_ENDPOINT_URL_REDSHIFT_DATA=http://127.0.0.1:$(cat "$RUN_DIR/sandbox.port")"
    echo "export S2R_SANDBOX_POSTGRES='host=127.0.0.1 port=$(cat "$pg_pidfile") user=postgres'"
    # The superuser's password stays in its file; tests and benchmarks that
    # reach PostgreSQL directly read it from there.
    echo "export S2R_SANDBOX_POSTGRES_PASSWORD_FILE=$RUN_DIR/postgres.password"
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
