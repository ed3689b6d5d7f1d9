#!/usr/bin/env bash
# Runs the whole test suite against a local AWS emulator that this script
# starts and stops: moto by default, LocalStack with S2R_EMULATOR=localstack.
# Extra arguments go to `cargo test` (e.g. a test name).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

emulator=${S2R_EMULATOR:-moto}
# Stop the emulator afterwards only if this script started it.
if ! "$ROOT/scripts/emulator.sh" env "$emulator" >/dev/null 2>&1; then
  trap '"$ROOT/scripts/emulator.sh" stop "$emulator"' EXIT
fi
eval "$("$ROOT/scripts/emulator.sh" start "$emulator")"
log "running the tests against $emulator at $AWS_ENDPOINT_URL"
cargo test --locked "$@"
