#!/usr/bin/env bash
# Starts or stops a local AWS emulator on 127.0.0.1 and a free port.
#   scripts/emulator.sh start [moto|localstack]   prints the environment to use
#   scripts/emulator.sh stop  [moto|localstack]
#   scripts/emulator.sh env   [moto|localstack]   prints it again
# The default is $S2R_EMULATOR, else moto. The SDK reaches the emulator
# through the standard AWS_ENDPOINT_URL; nothing in the code knows about it.
# Run by scripts/sandbox.sh, which names the stack's state folder in
# S2R_STACK_DIR.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ -n "$RUN_DIR" ] || die "S2R_STACK_DIR is not set: start the stack with scripts/sandbox.sh"

action=${1:-}
name=${2:-${S2R_EMULATOR:-moto}}
pidfile="$RUN_DIR/$name.pid"
envfile="$RUN_DIR/$name.env"

is_running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  if is_running; then cat "$envfile"; return; fi
  "$ROOT/scripts/setup.sh" "$name"
  local port; port=$(free_port)
  case "$name" in
    moto)
      "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$RUN_DIR/moto.log" 2>&1 &
      echo $! >"$pidfile"
      wait_http "http://127.0.0.1:$port/moto-api/" 30 || { tail -20 "$RUN_DIR/moto.log" >&2; die "moto did not answer on port $port"; }
      ;;
    localstack)
      # Without GATEWAY_SERVER=hypercorn LocalStack binds 0.0.0.0 whatever
      # GATEWAY_LISTEN says; DNS_ADDRESS=0 keeps its DNS server off.
      (cd "$RUN_DIR" && GATEWAY_SERVER=hypercorn GATEWAY_LISTEN="127.0.0.1:$port" DNS_ADDRESS=0 \
        SERVICES=iam,s3,redshift,sts LOCALSTACK_VOLUME_DIR="$RUN_DIR/localstack-volume" \
        exec "$ROOT/.venv-localstack/bin/python" -m localstack.runtime.main) >"$RUN_DIR/localstack.log" 2>&1 &
      echo $! >"$pidfile"
      local i
      for ((i = 0; i < 300; i++)); do
        curl -s --max-time 1 "http://127.0.0.1:$port/_localstack/health" | grep -q '"running"\|"available"' && break
        kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -20 "$RUN_DIR/localstack.log" >&2; die "LocalStack exited"; }
        sleep 0.2
      done
      [ "$i" -lt 300 ] || { tail -20 "$RUN_DIR/localstack.log" >&2; die "LocalStack did not become healthy on port $port"; }
      ;;
    *) die "unknown emulator '$name' (moto or localstack)" ;;
  esac
  cat >"$envfile" <<ENV
export S2R_EMULATOR=$name
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
ENV
  log "$name is listening on 127.0.0.1:$port (pid $(cat "$pidfile"))"
  cat "$envfile"
}

stop() {
  if is_running; then stop_pid "$(cat "$pidfile")" "$name"; fi
  rm -f "$pidfile" "$envfile"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  env) is_running || die "$name is not running; run: scripts/emulator.sh start $name"; cat "$envfile" ;;
  *) die "usage: scripts/emulator.sh start|stop|env [moto|localstack]" ;;
esac
