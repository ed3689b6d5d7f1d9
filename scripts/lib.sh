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
