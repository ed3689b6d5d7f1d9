#!/usr/bin/env bash
# Benchmark (not a test): load a generated CSV of about BENCH_MB megabytes
# (default 1024) through the sandbox's COPY, from the emulator's S3, and the
# same file with psql's \copy into the same PostgreSQL server, side by side
# in one run. Prints both throughputs, their ratio, and the sandbox's peak
# memory, measured on a release build of the sandbox. Each side loads the
# file BENCH_RUNS times (default 3), in alternating order; the best run of
# each is compared.
#
# BASELINE_SANDBOX=path/to/redshift-sandbox also loads the file through that
# build (another commit's, say), in the same run, and prints the ratio of
# the two: how a change to the sandbox moved COPY's throughput.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

MB=${BENCH_MB:-1024}
if ! "$ROOT/scripts/sandbox.sh" env >/dev/null 2>&1; then
  trap '"$ROOT/scripts/sandbox.sh" stop; { [ -z "${bench_pid:-}" ] || kill "$bench_pid" 2>/dev/null || true; }; rm -rf "$work"' EXIT
else
  trap '{ [ -z "${bench_pid:-}" ] || kill "$bench_pid" 2>/dev/null || true; }; rm -rf "$work"' EXIT
fi
eval "$("$ROOT/scripts/sandbox.sh" start)"
work=$(mktemp -d)
csv="$work/bench.csv"

log "generating a ${MB} MB CSV"
python3 "$ROOT/scripts/gen-csv.py" "$csv" "$MB"
bytes=$(file_size "$csv")
rows=$(( $(wc -l <"$csv") - 1 ))
log "$rows rows, $bytes bytes"

bucket=bench-$(date +%s)
log "uploading to the emulator's S3"
"$ROOT/.venv/bin/python" - "$csv" "$bucket" <<'PY'
import sys, boto3
from boto3.s3.transfer import TransferConfig
s3 = boto3.client("s3")
s3.create_bucket(Bucket=sys.argv[2])
s3.upload_file(sys.argv[1], sys.argv[2], "bench/bench.csv", Config=TransferConfig(multipart_chunksize=64 * 1024 * 1024))
PY

# The floor for any COPY from the emulator: reading the object back whole.
log "reading the object back from the emulator's S3"
g0=$(now)
curl -sf -o /dev/null "$AWS_ENDPOINT_URL/$bucket/bench/bench.csv"
g1=$(now)

# A release build of the sandbox, on its own port, against the same servers.
cargo build --release --locked --quiet -p redshift-sandbox
pg="$S2R_SANDBOX_POSTGRES"
# psql, as the stack's superuser, reads the password from its file.
PGPASSWORD=$(cat "$S2R_SANDBOX_POSTGRES_PASSWORD_FILE")
export PGPASSWORD
start_sandbox "$ROOT/target/release/redshift-sandbox" "$work/sandbox"
bench_pid=$sandbox_pid
export AWS_ENDPOINT_URL_REDSHIFT_DATA=$sandbox_url

cluster=bench-$(date +%s)
role_arn=$("$ROOT/.venv/bin/python" - "$bucket" "$cluster" <<'PY'
import sys, json, boto3
bucket, cluster = sys.argv[1], sys.argv[2]
iam = boto3.client("iam")
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
arn = iam.create_role(RoleName=cluster, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
iam.put_role_policy(RoleName=cluster, PolicyName="read", PolicyDocument=json.dumps(policy))
boto3.client("redshift").create_cluster(ClusterIdentifier=cluster, NodeType="ra3.large", ClusterType="single-node",
    MasterUsername="awsuser", MasterUserPassword="Passw0rd-1", DBName="dev", IamRoles=[arn])
print(arn)
PY
)

ddl="CREATE TABLE sales (sale_id BIGINT NOT NULL, sold_on DATE, region VARCHAR(16), product VARCHAR(32), quantity INTEGER, unit_price DECIMAL(10,2))"
sandbox_sql() {
  "$ROOT/.venv/bin/python" - "$cluster" "$1" <<'PY'
import sys, time, boto3
c = boto3.client("redshift-data")
i = c.execute_statement(ClusterIdentifier=sys.argv[1], Database="dev", DbUser="awsuser", Sql=sys.argv[2])["Id"]
while True:
    d = c.describe_statement(Id=i)
    if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
        break
    time.sleep(0.05)
if d["Status"] != "FINISHED":
    sys.exit(f"{d['Status']}: {d.get('Error')}")
print(d.get("ResultRows", 0))
PY
}
sandbox_sql "$ddl" >/dev/null
db=$(psql "$pg dbname=postgres" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'rs_c_$(echo "$cluster" | tr - _)__dev'")
psql "$pg dbname=$db" -qc "CREATE TABLE sales_psql (LIKE sales)"

baseline=""
if [ -n "${BASELINE_SANDBOX:-}" ]; then
  start_sandbox "$BASELINE_SANDBOX" "$work/base"
  base_pid=$sandbox_pid
  psql "$pg dbname=$db" -qc "CREATE TABLE sales_base (LIKE sales)"
  log "COPY through the baseline sandbox ($BASELINE_SANDBOX)"
  ours="$AWS_ENDPOINT_URL_REDSHIFT_DATA"
  export AWS_ENDPOINT_URL_REDSHIFT_DATA=$sandbox_url
  b0=$(now)
  sandbox_sql "COPY sales_base FROM 's3://$bucket/bench/bench.csv' IAM_ROLE '$role_arn' CSV IGNOREHEADER 1" >/dev/null
  b1=$(now)
  export AWS_ENDPOINT_URL_REDSHIFT_DATA="$ours"
  kill "$base_pid"
  baseline="$b0 $b1"
fi

# Each side loads the file RUNS times into an emptied table, the order
# alternating from run to run (so neither side always meets a warm cache or
# a checkpoint the other caused); the best time of each side is reported.
RUNS=${BENCH_RUNS:-3}
best() { python3 -c 'import sys; print(min(float(x) for x in sys.argv[1:]))' "$@"; }
sandbox_times=() psql_times=()
time_sandbox() {
  psql "$pg dbname=$db" -qc "TRUNCATE sales"
  log "COPY through the sandbox (run $1 of $RUNS)"
  local t0 t1
  t0=$(now)
  loaded=$(sandbox_sql "COPY sales FROM 's3://$bucket/bench/bench.csv' IAM_ROLE '$role_arn' CSV IGNOREHEADER 1")
  t1=$(now)
  sandbox_times+=("$(python3 -c "print($t1 - $t0)")")
}
time_psql() {
  psql "$pg dbname=$db" -qc "TRUNCATE sales_psql"
  log "psql \\copy of the same file (run $1 of $RUNS)"
  local t0 t1
  t0=$(now)
  psql "$pg dbname=$db" -qc "\\copy sales_psql FROM '$csv' WITH (FORMAT csv, HEADER true)"
  t1=$(now)
  psql_times+=("$(python3 -c "print($t1 - $t0)")")
}
for run in $(seq "$RUNS"); do
  if [ $((run % 2)) = 1 ]; then time_sandbox "$run"; time_psql "$run"; else time_psql "$run"; time_sandbox "$run"; fi
done
# The peak memory, where /proc tells it (Linux); 0 elsewhere.
peak_kb=0
[ -r "/proc/$bench_pid/status" ] && peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$bench_pid/status")
t0=0 t1=$(best "${sandbox_times[@]}") t2=0 t3=$(best "${psql_times[@]}")
log "sandbox runs: ${sandbox_times[*]}"
log "psql runs:    ${psql_times[*]}"

python3 - "$bytes" "$rows" "$loaded" "$t0" "$t1" "$t2" "$t3" "$peak_kb" "$g0" "$g1" $baseline <<'PY'
import sys
b, rows, loaded = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sb, ps = float(sys.argv[5]) - float(sys.argv[4]), float(sys.argv[7]) - float(sys.argv[6])
peak = int(sys.argv[8]) / 1024
mb = b / 1024 / 1024
print(f"file:            {mb:.0f} MiB, {rows} rows (sandbox loaded {loaded}); best of each side's runs")
print(f"sandbox COPY:    {sb:7.1f} s  {mb / sb:7.1f} MiB/s  (from the emulator's S3, checked field by field)")
print(f"psql \\copy:      {ps:7.1f} s  {mb / ps:7.1f} MiB/s  (local file)")
print(f"ratio:           {(mb / sb) / (mb / ps):.2f} of \\copy's throughput")
print(f"sandbox peak RSS: {peak:.0f} MiB")
get = float(sys.argv[10]) - float(sys.argv[9])
print(f"S3 GET alone:    {get:7.1f} s  {mb / get:7.1f} MiB/s  (the emulator serving the object: a floor for COPY)")
if len(sys.argv) > 12:
    base = float(sys.argv[12]) - float(sys.argv[11])
    print(f"baseline COPY:   {base:7.1f} s  {mb / base:7.1f} MiB/s  (BASELINE_SANDBOX)")
    print(f"vs baseline:     {base / sb:.2f} of the baseline's throughput")
PY
