#!/usr/bin/env bash
# Runs the whole test suite against the local stack that this script starts
# and stops: PostgreSQL, the AWS emulator (moto by default, LocalStack with
# S2R_EMULATOR=localstack) and the Redshift Data API sandbox.
# Extra arguments go to `cargo test` (e.g. a test name).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# Stop the stack afterwards only if this script started it.
if ! "$ROOT/scripts/sandbox.sh" env >/dev/null 2>&1; then
  trap '"$ROOT/scripts/sandbox.sh" stop' EXIT
fi
eval "$("$ROOT/scripts/sandbox.sh" start)"
log "running the tests against $S2R_EMULATOR at $AWS_ENDPOINT_URL and the sandbox at $AWS_ENDPOINT_URL_REDSHIFT_DATA"
cargo test --locked --workspace "$@"
