#!/usr/bin/env bash
# The pipeline end to end against a local AWS emulator (moto), no AWS account
# needed: upload the sample CSV to the emulator's S3, then plan, up (twice, to
# show that a re-run reuses everything), status, and down.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

emulator=${S2R_EMULATOR:-moto}
if ! "$ROOT/scripts/emulator.sh" env "$emulator" >/dev/null 2>&1; then
  trap '"$ROOT/scripts/emulator.sh" stop "$emulator"' EXIT
fi
eval "$("$ROOT/scripts/emulator.sh" start "$emulator")"

# The password is made up for this run and passed in the environment: the
# config file never holds one.
S3_TO_REDSHIFT_DB_PASSWORD="Demo-$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
export S3_TO_REDSHIFT_DB_PASSWORD

log "building s3-to-redshift"
cargo build --locked --quiet
cli() {
  printf '\n$ s3-to-redshift --config examples/pipeline.cfg %s\n' "$*"
  "$ROOT/target/debug/s3-to-redshift" --config examples/pipeline.cfg "$@"
}

log "uploading examples/data/sales.csv to the emulator's S3"
"$ROOT/.venv/bin/python" - <<'PY'
import boto3
s3 = boto3.client("s3")
bucket = "s3-to-redshift-demo-data"
if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=bucket)
s3.upload_file("examples/data/sales.csv", bucket, "sales/sales.csv")
PY

cli plan
cli up
cli up
cli status
cli down --with-iam --yes
cli status
