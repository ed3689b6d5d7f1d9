#!/usr/bin/env bash
# The pipeline end to end on this machine, no AWS account needed: the AWS
# emulator (moto) stands in for IAM, S3 and the Redshift control plane, and
# the sandbox runs the SQL on PostgreSQL. Uploads the sample CSV, then runs
# plan, up (twice: the second run reuses everything), load (the rows come
# back), status, and down.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

use_stack

# The password is made up for this run and passed in the environment: the
# config file never holds one.
S3_TO_REDSHIFT_DB_PASSWORD="Demo-$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
export S3_TO_REDSHIFT_DB_PASSWORD

cargo build --locked --quiet
cli() {
  printf '\n$ s3-to-redshift --config examples/pipeline.cfg %s\n' "$*"
  "$ROOT/target/debug/s3-to-redshift" --config examples/pipeline.cfg "$@"
}

log "uploading examples/data/sales.csv to the emulator's S3"
"$ROOT/scripts/upload-sample.sh"

cli plan
cli up
cli up
cli load
cli status
cli down --with-iam --yes
