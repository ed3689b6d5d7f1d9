#!/usr/bin/env bash
# Benchmark (not a test): paging a large result out of the sandbox.
#
# Runs `SELECT g, 'row ' || g FROM generate_series(1, BENCH_ROWS)` (default
# 1 000 000 rows) and a 10 000-row result through a release build of the
# sandbox, then reads every page of each with boto3's GetStatementResult
# (1 000 rows a page), and prints the time per page over the first 20 pages
# and over the last 20, and the per-page time of the small result. A page
# costs its own rows, so all three should be of one order: if serving a
# page copied the whole stored result, the large result's pages would cost
# a hundred times the small one's, and reading them all would grow with
# the square of the result.
#
# BASELINE_SANDBOX=path/to/redshift-sandbox also runs another build (the
# commit before, say) the same way in the same run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ROWS=${BENCH_ROWS:-1000000}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap 'cleanup; [ -z "${own_stack:-}" ] || "$ROOT/scripts/sandbox.sh" stop' EXIT
if [ -n "${S2R_STACK_DIR:-}" ] && "$ROOT/scripts/sandbox.sh" env >/dev/null 2>&1; then
  eval "$("$ROOT/scripts/sandbox.sh" env)"
else
  unset S2R_STACK_DIR
  eval "$("$ROOT/scripts/sandbox.sh" start)"
  own_stack=1
fi

cargo build --release --locked --quiet -p redshift-sandbox

# bench NAME BINARY: one sandbox build, both results paged; prints a line.
bench() {
  start_sandbox "$2" "$work/$1"
  pids+=("$sandbox_pid")
  AWS_ENDPOINT_URL_REDSHIFT_DATA=$sandbox_url "$ROOT/.venv/bin/python" - "$1" "$ROWS" <<'PY'
import sys, time, uuid, boto3

name, rows = sys.argv[1], int(sys.argv[2])
cluster = f"pages-{uuid.uuid4().hex[:8]}"
boto3.client("redshift").create_cluster(ClusterIdentifier=cluster, NodeType="ra3.large",
    ClusterType="single-node", MasterUsername="awsuser", MasterUserPassword="Passw0rd-1", DBName="dev")
data = boto3.client("redshift-data")

def run(n):
    sid = data.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="awsuser",
        Sql=f"SELECT g, 'row ' || g FROM generate_series(1, {n}) AS g")["Id"]
    while True:
        d = data.describe_statement(Id=sid)
        if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            break
        time.sleep(0.05)
    assert d["Status"] == "FINISHED", d
    return sid

def pages(sid):
    """The time each page took to fetch, in order."""
    times, token = [], None
    while True:
        args = {"Id": sid} if token is None else {"Id": sid, "NextToken": token}
        t0 = time.perf_counter()
        page = data.get_statement_result(**args)
        times.append(time.perf_counter() - t0)
        token = page.get("NextToken")
        if not token:
            return times

big = pages(run(rows))
small = pages(run(10000))
first, last = sum(big[:20]) / 20, sum(big[-20:]) / 20
per_small = sum(small) / len(small)
print(f"{name}: {len(big)} pages of {rows} rows in {sum(big):.1f} s; per page: first 20 {first*1000:.2f} ms, "
      f"last 20 {last*1000:.2f} ms (last/first {last/first:.2f}x); a 10 000-row result's pages "
      f"{per_small*1000:.2f} ms (large/small {first/per_small:.2f}x)")
PY
}

bench "this build" "$ROOT/target/release/redshift-sandbox"
if [ -n "${BASELINE_SANDBOX:-}" ]; then
  bench "baseline" "$BASELINE_SANDBOX"
fi
