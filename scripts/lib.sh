# Shared helpers for the scripts in this folder. Source it; do not run it.
# Everything listens on 127.0.0.1 only, and every server started here is
# recorded by process id in .run/ so that it can be stopped by that id.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

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

# use_stack: starts the local stack (PostgreSQL, emulator, sandbox) unless it
# is already running, exports its environment, and stops it when the calling
# script exits only if this call started it.
use_stack() {
  if ! "$ROOT/scripts/sandbox.sh" env >/dev/null 2>&1; then
    trap '"$ROOT/scripts/sandbox.sh" stop' EXIT
  fi
  eval "$("$ROOT/scripts/sandbox.sh" start)"
}
