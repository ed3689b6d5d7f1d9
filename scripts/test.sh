#!/usr/bin/env bash
# Runs the whole test suite against the local stack that this script starts
# and stops: PostgreSQL, the AWS emulator (moto by default, LocalStack with
# S2R_EMULATOR=localstack) and the Redshift Data API sandbox.
# Extra arguments go to `cargo test` (e.g. a test name).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

use_stack
log "running the tests against $S2R_EMULATOR at $AWS_ENDPOINT_URL and the sandbox at $AWS_ENDPOINT_URL_REDSHIFT_DATA"
cargo test --locked --workspace "$@"
