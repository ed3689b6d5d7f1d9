#!/usr/bin/env bash
# Benchmark (not a test): the whole pipeline with the CLI against the same
# steps in a plain boto3 script (scripts/seed-pipeline.py: role, policy,
# cluster, table, COPY, count, teardown), side by side in one run on the
# same local stack, over a generated CSV of BENCH_ROWS rows (default
# 100 000) already in the emulator's S3.
#
#   CLI:  `up`, `load`, `down --with-iam --yes` (which also stages and
#         verifies the load and keeps a ledger), release build
#   seed: scripts/seed-pipeline.py, one Python process
#
# Each side runs BENCH_RUNS times (default 5), alternating; the best run of
# each is compared. Prints both times, their ratio, and the Data API
# requests each made per run, counted by the sandbox as it serves them.
#
# BASELINE_CLI=path/to/s3-to-redshift also runs that build of the CLI (another
# commit's, say) in the same run, and prints how this one compares with it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ROWS=${BENCH_ROWS:-100000}
RUNS=${BENCH_RUNS:-5}
work=$(mktemp -d)
cleanup() {
  { [ -z "${bench_pid:-}" ] || kill "$bench_pid" 2>/dev/null || true; }
  "$ROOT/scripts/sandbox.sh" stop
  rm -rf "$work"
}
trap cleanup EXIT
eval "$("$ROOT/scripts/sandbox.sh" start)"

# Release builds, and a sandbox of their own that logs each request it serves.
cargo build --release --locked --quiet -p redshift-sandbox -p s3-to-redshift
RUST_LOG=info,redshift_sandbox::api=debug start_sandbox "$ROOT/target/release/redshift-sandbox" "$work/sandbox"
bench_pid=$sandbox_pid
export AWS_ENDPOINT_URL_REDSHIFT_DATA=$sandbox_url
cli="$ROOT/target/release/s3-to-redshift"
py="$ROOT/.venv/bin/python"

# The data: BENCH_ROWS rows of the benchmarks' sales CSV, in one object.
python3 "$ROOT/scripts/gen-csv.py" "$work/big.csv" $(( ROWS / 20000 + 1 ))
head -n $(( ROWS + 1 )) "$work/big.csv" >"$work/sales.csv"
bucket=bench-pipeline-$(date +%s)
"$py" - "$work/sales.csv" "$bucket" <<'PY'
import sys, boto3
s3 = boto3.client("s3")
s3.create_bucket(Bucket=sys.argv[2])
s3.upload_file(sys.argv[1], sys.argv[2], "sales/sales.csv")
PY
log "$ROWS rows in s3://$bucket/sales/sales.csv"

export S3_TO_REDSHIFT_DB_PASSWORD=Bench-Passw0rd
# One Python process drives both sides and times them with its monotonic
# clock, so no process start of a timer lands inside a measurement.
"$py" - "$cli" "$ROOT" "$work" "$bucket" "$ROWS" "$RUNS" "${BASELINE_CLI:-}" <<'PY'
import re, subprocess, sys, time
cli, root, work, bucket, rows, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
baseline = sys.argv[7]
log = f"{work}/sandbox.log"

def requests():
    with open(log) as f:
        return sum(1 for line in f if "request op=" in line)

def say(msg):
    print(f"[bench-pipeline.sh] {msg}", file=sys.stderr)

def run_cli(run, cli=cli, who="CLI"):
    name = f"bench-{who.lower()}-{run}-{int(time.time())}"
    with open(f"{root}/examples/pipeline.cfg") as f:
        cfg = f.read()
    cfg = re.sub(r"(?m)^(IDENTIFIER|ROLE_NAME) = .*", rf"\1 = {name}", cfg)
    cfg = re.sub(r"(?m)^POLICY_NAME = .*", f"POLICY_NAME = {name}-s3-read", cfg)
    cfg = re.sub(r"(?m)^SOURCE = .*", f"SOURCE = s3://{bucket}/sales/sales.csv", cfg)
    path = f"{work}/{name}.cfg"
    with open(path, "w") as f:
        f.write(cfg)
    say(f"{who}: up, load, down (run {run} of {runs})")
    out, in_load = "", 0
    r0, t0 = requests(), time.monotonic()
    for step in (["up"], ["load"], ["down", "--with-iam", "--yes"]):
        r = requests()
        p = subprocess.run([cli, "--config", path, *step], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"{' '.join(step)} failed:\n{p.stdout}{p.stderr}")
        out += p.stdout
        if step == ["load"]:
            in_load = requests() - r
    t = time.monotonic() - t0
    if f"{rows} rows loaded" not in out:
        sys.exit(f"the CLI did not load {rows} rows:\n{out}")
    return t, requests() - r0, in_load

def run_seed(run):
    name = f"bench-seed-{run}-{int(time.time())}"
    say(f"seed-style boto3 script (run {run} of {runs})")
    r0, t0 = requests(), time.monotonic()
    p = subprocess.run([sys.executable, f"{root}/scripts/seed-pipeline.py", name, bucket, "sales/sales.csv"],
                       capture_output=True, text=True)
    t = time.monotonic() - t0
    if p.returncode != 0 or p.stdout.strip() != str(rows):
        sys.exit(f"the seed-style script failed or miscounted:\n{p.stdout}{p.stderr}")
    return t, requests() - r0

cli_runs, seed_runs, base_runs = [], [], []
for run in range(1, runs + 1):
    # Alternating, so that neither side always runs first (on a colder stack).
    sides = [lambda: cli_runs.append(run_cli(run)), lambda: seed_runs.append(run_seed(run))]
    if baseline:
        sides.append(lambda: base_runs.append(run_cli(run, baseline, "Baseline")))
    for side in sides if run % 2 else reversed(sides):
        side()
say("CLI runs:  " + " ".join(f"{r[0]:.3f}" for r in cli_runs))
say("seed runs: " + " ".join(f"{r[0]:.3f}" for r in seed_runs))
best_cli, best_seed = min(cli_runs), min(seed_runs)
print(f"rows:                 {rows}")
print(f"CLI up + load + down: {best_cli[0]:6.2f} s  ({best_cli[1]} Data API requests, {best_cli[2]} of them in load)")
print(f"seed-style boto3:     {best_seed[0]:6.2f} s  ({best_seed[1]} Data API requests)")
print(f"ratio CLI/seed:       {best_cli[0] / best_seed[0]:.2f}")
if base_runs:
    best_base = min(base_runs)
    say("baseline runs: " + " ".join(f"{r[0]:.3f}" for r in base_runs))
    print(f"baseline CLI:         {best_base[0]:6.2f} s  ({best_base[1]} Data API requests, {best_base[2]} of them in load)")
    print(f"ratio CLI/baseline:   {best_cli[0] / best_base[0]:.2f}")
PY
