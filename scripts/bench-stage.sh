#!/usr/bin/env bash
# Benchmark (not a test): `stage` against uploading the single file, side by
# side in one run, over a link of a set bandwidth between the client and the
# emulator's S3, on a generated CSV of about BENCH_MB megabytes (default
# 256), with release builds of the CLI and the sandbox.
#
#   single file: boto3's upload_file (what the Python tutorial's readers use:
#                multipart, 8 MiB chunks, 10 threads), then `load`
#   stage:       `s3-to-redshift stage FILE` (record-aligned split, gzip on
#                every core while the parts upload, manifest, load)
#
# The link is scripts/ratelimit-proxy.py in front of the emulator's S3, at
# each rate of BENCH_RATES (default "100m 1g", bits per second): the
# client's uploads cross it, as they would cross a user's connection to AWS;
# the COPY reads S3 directly, as Redshift does inside AWS. Prints, for each
# rate, both times, their ratio, and the bytes each sent.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

MB=${BENCH_MB:-256}
RATES=${BENCH_RATES:-100m 1g}
work=$(mktemp -d)
cleanup() {
  { [ -z "${bench_pid:-}" ] || kill "$bench_pid" 2>/dev/null || true; }
  { [ -z "${proxy_pid:-}" ] || kill "$proxy_pid" 2>/dev/null || true; }
  "$ROOT/scripts/sandbox.sh" stop
  rm -rf "$work"
}
trap cleanup EXIT
eval "$("$ROOT/scripts/sandbox.sh" start)"

cargo build --release --locked --quiet -p redshift-sandbox -p s3-to-redshift
start_sandbox "$ROOT/target/release/redshift-sandbox" "$work/sandbox"
bench_pid=$sandbox_pid
export AWS_ENDPOINT_URL_REDSHIFT_DATA=$sandbox_url
cli="$ROOT/target/release/s3-to-redshift"

csv="$work/bench.csv"
log "generating a ${MB} MB CSV"
python3 "$ROOT/scripts/gen-csv.py" "$csv" "$MB"
bytes=$(file_size "$csv")
rows=$(( $(wc -l <"$csv") - 1 ))
log "$rows rows, $bytes bytes; $(ncpu) cores"

name=bench-stage-$(date +%s)
cat >"$work/bench.cfg" <<CFG
[AWS]
REGION = us-east-1
[IAM]
ROLE_NAME = $name-role
[CLUSTER]
IDENTIFIER = $name
NODE_TYPE = ra3.large
DB_NAME = dev
DB_USER = awsuser
[S3]
SOURCE = s3://$name/single/bench.csv
STAGE_PREFIX = s3://$name/staged/
[TABLE]
NAME = sales
[COLUMNS]
sale_id = BIGINT NOT NULL
sold_on = DATE
region = VARCHAR(16)
product = VARCHAR(32)
quantity = INTEGER
unit_price = DECIMAL(10,2)
[LOAD]
IGNORE_HEADER = 1
STATEMENT_TIMEOUT_SECS = 3600
CFG
export S3_TO_REDSHIFT_DB_PASSWORD=Bench-Passw0rd
"$ROOT/.venv/bin/python" -c "import boto3; boto3.client('s3').create_bucket(Bucket='$name')"
"$cli" --config "$work/bench.cfg" up >/dev/null

s3_hostport=${AWS_ENDPOINT_URL#http://}
: >"$work/figures.txt"
for rate in $RATES; do
  rm -f "$work/proxy.port"
  python3 "$ROOT/scripts/ratelimit-proxy.py" "$s3_hostport" "$rate" --port-file "$work/proxy.port" >/dev/null &
  proxy_pid=$!
  for _ in $(seq 50); do [ -s "$work/proxy.port" ] && break; sleep 0.1; done
  [ -s "$work/proxy.port" ] || die "the rate-limited proxy did not start"
  # Only the client's S3 traffic goes through the link.
  link="http://127.0.0.1:$(cat "$work/proxy.port")"

  # Each load goes into a table of its own, so both start from an empty
  # table (a replace over the other's rows would cost one side a DELETE).
  for way in single stage; do
    sed "s/^NAME = sales\$/NAME = sales_${way}_${rate}/" "$work/bench.cfg" >"$work/$way.cfg"
  done

  log "at $rate bit/s, single file: upload_file, then load"
  t0=$(now)
  AWS_ENDPOINT_URL_S3=$link "$ROOT/.venv/bin/python" -c "import boto3; boto3.client('s3').upload_file('$csv', '$name', 'single/bench.csv')"
  t1=$(now)
  AWS_ENDPOINT_URL_S3=$link "$cli" --config "$work/single.cfg" load >"$work/load.out" 2>"$work/load.err" || { cat "$work/load.out" "$work/load.err"; exit 1; }
  t2=$(now)

  log "at $rate bit/s, stage: split, gzip while uploading, manifest, load"
  t3=$(now)
  AWS_ENDPOINT_URL_S3=$link "$cli" --config "$work/stage.cfg" stage "$csv" >"$work/stage.out" 2>"$work/stage.err" || { cat "$work/stage.out" "$work/stage.err"; exit 1; }
  t4=$(now)
  kill "$proxy_pid"; proxy_pid=
  grep -h "rows" "$work/load.out" "$work/stage.out" | sed 's/^/  /' >&2

  staged=$("$ROOT/.venv/bin/python" - "$name" "staged/public.sales_stage_$rate/" <<'PY'
import sys, boto3
s3 = boto3.client("s3")
total = sum(o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1], Prefix=sys.argv[2])
            for o in page.get("Contents", []) if o["Key"].endswith(".gz"))
print(total)
PY
)
  python3 - "$rate" "$bytes" "$rows" "$staged" "$t0" "$t1" "$t2" "$t3" "$t4" <<'PY' | tee -a "$work/figures.txt"
import sys
rate = sys.argv[1]
b, rows, staged = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
t0, t1, t2, t3, t4 = map(float, sys.argv[5:10])
up, load, single, stage = t1 - t0, t2 - t1, t2 - t0, t4 - t3
print(f"link {rate}bit/s, {b / 2**20:.0f} MiB, {rows} rows:")
print(f"  single file:        {single:6.1f} s  (upload {up:.1f} s + load {load:.1f} s), {b / 2**20:.0f} MiB sent")
print(f"  stage:              {stage:6.1f} s  (split + gzip + upload + load), {staged / 2**20:.0f} MiB sent")
print(f"  ratio stage/single: {stage / single:.2f} (time), {staged / b:.2f} (bytes sent)")
PY
done
# The book shows these figures; BOOK_RECORD=1 writes them there.
if [ -n "${BOOK_RECORD:-}" ]; then
  { cat "$work/figures.txt"; echo "($(ncpu) cores; $(date -u +%Y-%m-%d))"; } >"$ROOT/book/src/generated/bench-stage.txt"
  log "wrote book/src/generated/bench-stage.txt"
fi
