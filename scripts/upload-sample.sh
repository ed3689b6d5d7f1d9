#!/usr/bin/env bash
# Uploads the sample CSV (examples/data/sales.csv) to S3, creating the bucket
# if it is missing: what a reader does before the COPY step.
#   scripts/upload-sample.sh [s3://bucket/key]
# Default: s3://s3-to-redshift-demo-data/sales/sales.csv, the book's [S3] SOURCE.
# It talks to whatever the environment names, like every AWS SDK: the local
# stack after `eval "$(scripts/sandbox.sh start)"` (AWS_ENDPOINT_URL), or
# AWS with your credentials. Uses boto3 from the repo's .venv (setup.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

target=${1:-s3://s3-to-redshift-demo-data/sales/sales.csv}
case "$target" in
  s3://*/*) ;;
  *) die "expected s3://bucket/key, got '$target'" ;;
esac
"$ROOT/scripts/setup.sh" moto >&2
"$ROOT/.venv/bin/python" - "$target" <<'PY'
import sys
import boto3
from botocore.exceptions import ClientError

bucket, key = sys.argv[1][len("s3://"):].split("/", 1)
s3 = boto3.client("s3")
try:
    s3.head_bucket(Bucket=bucket)
except ClientError as e:
    if e.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
        raise
    region = s3.meta.region_name
    extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **extra)
s3.upload_file("examples/data/sales.csv", bucket, key)
print(f"uploaded examples/data/sales.csv to s3://{bucket}/{key}")
PY
