# Shared helpers for the scripts in this folder. Source it; do not run it.
# Everything listens on 127.0.0.1 only, and every server started here is
# recorded by process id so that it can be stopped by that id.
#
# Each local stack keeps its state (process ids, ports, logs) in a folder of
# its own, .run/stack.XXXXXX, named by S2R_STACK_DIR, which
# `scripts/sandbox.sh start` prints with the rest of the environment. So two
# stacks (the notebook's and the tests', say) run side by side, and `stop`
# stops the one its shell started.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_BASE="$ROOT/.run"
mkdir -p "$RUN_BASE"
RUN_DIR="${S2R_STACK_DIR:-}"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The time now, in seconds with a fraction, on any system: bash 5's
# EPOCHREALTIME, else Python (macOS ships bash 3.2, and `date +%N` is GNU's).
now() {
  if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else python3 -c 'import time; print(time.time())'; fi
}

# The number of CPU cores (`nproc` is GNU's; getconf is everywhere).
ncpu() { getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1; }

# A file's size in bytes (`stat -c` is GNU's, `stat -f` BSD's; wc is both).
file_size() { wc -c <"$1" | tr -d ' '; }

# start_sandbox BINARY PREFIX: runs that build of the sandbox (a release
# build, another commit's) on a port of its own against the stack's
# PostgreSQL, logging to PREFIX.log; sets sandbox_pid and sandbox_url, or
# dies with the log if it does not start. Environment for it goes before
# the call: RUST_LOG=debug start_sandbox ...
start_sandbox() {
  rm -f "$2.port"
  # A build from before the stack had a password (a benchmark's baseline)
  # takes it in the connection string instead.
  local pgauth=(--postgres-password-file "$S2R_SANDBOX_POSTGRES_PASSWORD_FILE") conninfo=$S2R_SANDBOX_POSTGRES
  if ! "$1" --help 2>/dev/null | grep -q -- --postgres-password-file; then
    pgauth=() conninfo="$conninfo password=$(cat "$S2R_SANDBOX_POSTGRES_PASSWORD_FILE")"
  fi
  "$1" --listen 127.0.0.1:0 --port-file "$2.port" --postgres "$conninfo" ${pgauth[@]+"${pgauth[@]}"} >"$2.log" 2>&1 &
  sandbox_pid=$!
  for _ in $(seq 100); do [ -s "$2.port" ] && break; sleep 0.1; done
  [ -s "$2.port" ] || die "the sandbox did not start: $(cat "$2.log")"
  sandbox_url="http://127.0.0.1:$(cat "$2.port")"
}

# A free TCP port on 127.0.0.1, chosen by the kernel.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS: until URL answers (any HTTP status) or time runs out.
wait_http() {
  local url=$1 secs=$2 i
  for ((i = 0; i < secs * 5; i++)); do
    if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
    sleep 0.2
  done
  return 1
}

# stop_pid PID NAME: asks the process to end, waits up to 5 s, then kills it.
stop_pid() {
  local pid=$1 name=$2
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  log "$name stopped (pid $pid)"
}

# use_stack: uses the stack this shell's environment names (S2R_STACK_DIR,
# from an earlier `eval "$(scripts/sandbox.sh start)"`) if it is running;
# otherwise starts a stack of its own, exports its environment, and stops it
# when the calling script exits. Never another shell's stack.
use_stack() {
  if [ -n "${S2R_STACK_DIR:-}" ] && "$ROOT/scripts/sandbox.sh" env >/dev/null 2>&1; then
    eval "$("$ROOT/scripts/sandbox.sh" env)"
    return
  fi
  unset S2R_STACK_DIR
  eval "$("$ROOT/scripts/sandbox.sh" start)"
  trap '"$ROOT/scripts/sandbox.sh" stop' EXIT
}
