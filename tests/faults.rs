//! Faults and interruptions, through the real CLI.
//!
//! Each test runs the `s3-to-redshift` binary with the standard endpoint
//! settings pointed at a fault-injecting proxy (tests/common/faults.rs) in
//! front of the emulator and the sandbox. Transient faults must be ridden
//! out by the SDK's retries as configured in `[AWS]`; persistent ones must
//! end the run with the service, operation and resource named; a stopped
//! run must say what it was doing, and the next run must converge to the
//! same end state with nothing duplicated or left behind.

mod common;
#[path = "common/faults.rs"]
mod faults;

use std::process::Output;
use std::time::Duration;

use common::{Names, PASSWORD, config_text, pipeline, require_sandbox, upload, upload_sample};
use faults::{Fault, FaultProxy};
use tokio::process::{Child, Command};

/// A config file on disk and a proxy in front of the local stack.
struct Rig {
    names: Names,
    proxy: FaultProxy,
    _dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
}

impl Rig {
    async fn new(test: &str, extra: &[(&str, &str)]) -> Self {
        require_sandbox();
        let names = Names::new(test);
        let upstream = std::env::var("AWS_ENDPOINT_URL").unwrap();
        let data = std::env::var("AWS_ENDPOINT_URL_REDSHIFT_DATA").unwrap();
        let proxy = FaultProxy::start(upstream, data).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("pipeline.cfg");
        // Quick retries: the faults are injected, not real congestion.
        let mut all = vec![("AWS", "INITIAL_BACKOFF_MS = 20")];
        all.extend_from_slice(extra);
        std::fs::write(&cfg, config_text(&names, &all)).unwrap();
        Self {
            names,
            proxy,
            _dir: dir,
            cfg,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3-to-redshift"));
        cmd.arg("--config")
            .arg(&self.cfg)
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.proxy.url)
            .env("AWS_ENDPOINT_URL_REDSHIFT_DATA", &self.proxy.url)
            .env("S3_TO_REDSHIFT_DB_PASSWORD", PASSWORD)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs a command to the end (at most two minutes: a hang is a failure).
    async fn run(&self, args: &[&str]) -> Output {
        let child = self.command(args).spawn().unwrap();
        finish(child).await
    }
}

async fn finish(child: Child) -> Output {
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the CLI must not hang")
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn assert_ok(out: &Output) {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
}

/// What the CLI printed, with the test's names replaced by the demo's, for
/// the book to show.
fn as_in_the_book(rig: &Rig, stderr: &str) -> String {
    stderr
        .replace(&rig.names.cluster, "s3-to-redshift-demo")
        .replace(rig.cfg.to_str().unwrap(), "pipeline.cfg")
        .trim()
        .to_string()
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("running").to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Waits until a rule has fired, so the signal lands mid-step.
///
/// Why no settling sleep after it: the rule fires when the proxy holds the
/// request, so the CLI is already awaiting the slowed reply, inside the step
/// it names; and its signal handlers were installed when the command began
/// (`stop_signal` is polled with the command's first poll), long before.
async fn fired(n: &tokio::sync::Notify) {
    tokio::time::timeout(Duration::from_secs(60), n.notified())
        .await
        .expect("the fault was never reached");
}

async fn rows_in(p: &s3_to_redshift::Pipeline, sql: &str) -> i64 {
    p.warehouse()
        .query(sql)
        .await
        .unwrap()
        .scalar_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_on_every_service_are_ridden_out() {
    let rig = Rig::new("transient", &[("AWS", "MAX_ATTEMPTS = 5")]).await;
    let p = pipeline(&rig.names, &[]).await;
    upload_sample(&p, &rig.names).await;
    let px = &rig.proxy;
    px.inject("iam", None, Fault::Throttle, 0, 2);
    px.inject("sts", None, Fault::Status(500), 0, 1);
    px.inject("redshift", Some("DescribeClusters"), Fault::Throttle, 0, 2);
    px.inject("redshift", Some("CreateCluster"), Fault::Drop, 0, 1);
    px.inject("s3", None, Fault::Status(503), 0, 2);
    px.inject(
        "redshift-data",
        Some("BatchExecuteStatement"),
        Fault::Throttle,
        0,
        2,
    );
    px.inject(
        "redshift-data",
        Some("DescribeStatement"),
        Fault::Status(500),
        0,
        2,
    );
    // The load is two batches: the first is throttled twice, then the
    // second (the swap) loses its connection once.
    px.inject_after(
        "redshift-data",
        Some("BatchExecuteStatement"),
        Fault::Drop,
        0,
        1,
        Some(("BatchExecuteStatement", 3)),
    );
    px.inject(
        "redshift-data",
        Some("GetStatementResult"),
        Fault::Truncate,
        0,
        1,
    );

    assert_ok(&rig.run(&["up"]).await);
    let load = rig.run(&["load"]).await;
    assert_ok(&load);
    let (stdout, _) = text(&load);
    assert!(stdout.contains("10 rows loaded"), "{stdout}");

    assert_eq!(px.injected(Fault::Throttle), 6);
    assert_eq!(px.injected(Fault::Status(500)), 3);
    assert_eq!(px.injected(Fault::Status(503)), 2);
    assert_eq!(px.injected(Fault::Drop), 2);
    assert_eq!(px.injected(Fault::Truncate), 1);
    // Riding out the faults did not duplicate anything.
    assert_eq!(rows_in(&p, "SELECT COUNT(*) FROM public.sales").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_makes_few_data_api_requests() {
    // Counted by the proxy, as the service would count them: each request
    // is a round trip the user waits for. Two batches, each waited on with
    // one long-polling DescribeStatement, and the counts and preview read
    // (21 requests when the waits were short polls).
    let rig = Rig::new("fewrequests", &[]).await;
    let p = pipeline(&rig.names, &[]).await;
    upload_sample(&p, &rig.names).await;
    assert_ok(&rig.run(&["up"]).await);
    rig.proxy.clear();
    assert_ok(&rig.run(&["load"]).await);
    let data: Vec<String> = rig
        .proxy
        .seen()
        .iter()
        .filter(|s| s.service == "redshift-data")
        .map(|s| s.operation.clone())
        .collect();
    println!("a load's Data API requests ({}): {data:?}", data.len());
    assert!(data.len() <= 8, "{} requests: {data:?}", data.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_to_the_swap_batch_swaps_exactly_once() {
    // The sandbox runs the swap, the reply is cut, the SDK sends the same
    // request again with the same ClientToken: the sandbox must answer
    // with the first statement's id instead of swapping a second time, and
    // the load must end well. In append mode a second swap would add every
    // row twice (or fail on the staging table the first one dropped).
    let rig = Rig::new("lostswap", &[("LOAD", "MODE = append")]).await;
    let p = pipeline(&rig.names, &[]).await;
    upload_sample(&p, &rig.names).await;
    assert_ok(&rig.run(&["up"]).await);
    // An append's load is three batches: the ledger read, then create and
    // COPY into staging, then the swap. The first two pass; the swap runs
    // and loses its reply.
    rig.proxy.inject_after(
        "redshift-data",
        Some("BatchExecuteStatement"),
        Fault::Truncate,
        0,
        1,
        Some(("BatchExecuteStatement", 2)),
    );
    let load = rig.run(&["load"]).await;
    assert_ok(&load);
    assert_eq!(rig.proxy.injected(Fault::Truncate), 1);
    let sent = rig
        .proxy
        .seen()
        .iter()
        .filter(|s| s.operation == "BatchExecuteStatement")
        .count();
    assert_eq!(sent, 4, "the swap was sent twice: once cut, once retried");
    assert_eq!(rows_in(&p, "SELECT COUNT(*) FROM public.sales").await, 10);
    assert_eq!(
        rows_in(
            &p,
            "SELECT COUNT(*) FROM sys_query_history WHERE query_text LIKE 'INSERT INTO \"public\".\"sales\" %'"
        )
        .await,
        1,
        "the swap ran once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reply_is_abandoned_and_retried() {
    let rig = Rig::new("stalled", &[("AWS", "ATTEMPT_TIMEOUT_SECS = 1")]).await;
    rig.proxy.inject(
        "redshift",
        Some("DescribeClusters"),
        Fault::Slow(Duration::from_secs(5)),
        0,
        1,
    );
    let started = std::time::Instant::now();
    let out = rig.run(&["status"]).await;
    assert_ok(&out);
    assert_eq!(rig.proxy.injected(Fault::Slow(Duration::from_secs(5))), 1);
    // Not a timing assertion on speed: only that the stalled attempt was
    // not waited out (it would take 5 s).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_lost_after_the_change_was_made_does_not_break_the_run() {
    // The emulator creates the role, the reply is cut, the SDK retries
    // CreateRole and gets EntityAlreadyExists: the run must see that the
    // role is its own and carry on.
    let rig = Rig::new("lostreply", &[]).await;
    rig.proxy
        .inject("iam", Some("CreateRole"), Fault::Truncate, 0, 1);
    rig.proxy
        .inject("iam", Some("CreatePolicy"), Fault::Truncate, 0, 1);
    rig.proxy
        .inject("redshift", Some("CreateCluster"), Fault::Truncate, 0, 1);
    let out = rig.run(&["up"]).await;
    assert_ok(&out);
    assert_eq!(rig.proxy.injected(Fault::Truncate), 3);
    let again = rig.run(&["up"]).await;
    assert_ok(&again);
    assert_ok(&rig.run(&["down", "--yes", "--with-iam"]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_faults_name_the_service_operation_and_resource() {
    let rig = Rig::new("persistent", &[("AWS", "MAX_ATTEMPTS = 2")]).await;
    rig.proxy.inject(
        "redshift",
        Some("DescribeClusters"),
        Fault::Status(503),
        0,
        1000,
    );
    let out = rig.run(&["status"]).await;
    assert_eq!(out.status.code(), Some(4));
    let (_, stderr) = text(&out);
    assert!(stderr.contains("Redshift DescribeClusters"), "{stderr}");
    assert!(stderr.contains(&rig.names.cluster), "{stderr}");
    assert!(stderr.contains("ServiceUnavailable"), "{stderr}");
    s3_to_redshift::tutorial::record("reliability-fault", &as_in_the_book(&rig, &stderr));
    // Two attempts, as configured.
    assert_eq!(rig.proxy.injected(Fault::Status(503)), 2);

    rig.proxy.clear();
    let p = pipeline(&rig.names, &[]).await;
    upload_sample(&p, &rig.names).await;
    assert_ok(&rig.run(&["up"]).await);
    rig.proxy.inject(
        "redshift-data",
        Some("BatchExecuteStatement"),
        Fault::Throttle,
        0,
        1000,
    );
    let out = rig.run(&["load"]).await;
    assert_eq!(out.status.code(), Some(4));
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("Redshift Data API BatchExecuteStatement"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("cluster {}", rig.names.cluster)),
        "{stderr}"
    );
    assert!(stderr.contains("ThrottlingException"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_while_waiting_for_the_cluster_then_up_again_converges() {
    let rig = Rig::new("intcluster", &[]).await;
    // The first DescribeClusters (the look before acting) passes; the
    // waiter's poll after CreateCluster hangs.
    let hit = rig.proxy.inject_after(
        "redshift",
        Some("DescribeClusters"),
        Fault::Slow(Duration::from_secs(60)),
        0,
        1,
        Some(("CreateCluster", 1)),
    );
    let child = rig.command(&["up"]).spawn().unwrap();
    fired(&hit).await;
    signal(&child, "-INT");
    let out = finish(child).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "interrupted (SIGINT) while waiting for cluster `{}` to become available",
            rig.names.cluster
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("To resume, run the same command again"),
        "{stderr}"
    );
    assert!(stderr.contains(" up\n"), "{stderr}");
    s3_to_redshift::tutorial::record("reliability-interrupt", &as_in_the_book(&rig, &stderr));

    rig.proxy.clear();
    let again = rig.run(&["up"]).await;
    assert_ok(&again);
    let (stdout, _) = text(&again);
    assert!(
        stdout.contains("reuse"),
        "the cluster is reused, not created twice: {stdout}"
    );
    assert_ok(&rig.run(&["down", "--yes", "--with-iam"]).await);
    let status = rig.run(&["status"]).await;
    let (stdout, _) = text(&status);
    assert_eq!(
        stdout.matches("absent").count(),
        3,
        "nothing left behind: {stdout}"
    );
}

/// Interrupts a load at the COPY (`batch` = 1) or at the swap (`batch` = 2)
/// with `sig`, then checks the next runs converge without duplicates.
async fn interrupt_an_append(test: &str, sig: &str, batch: u32) {
    let rig = Rig::new(test, &[("LOAD", "MODE = append")]).await;
    let p = pipeline(&rig.names, &[]).await;
    upload_sample(&p, &rig.names).await;
    assert_ok(&rig.run(&["up"]).await);
    assert_ok(&rig.run(&["load"]).await);
    upload(
        &p,
        &rig.names,
        b"sale_id,sold_on,region,product,quantity,unit_price\n\
          11,2024-02-01,north,notebook,1,4.50\n12,2024-02-01,south,pencil,2,0.80\n",
    )
    .await;

    // Hang the polls of the chosen batch, so the CLI is waiting on it.
    let hit = rig.proxy.inject_after(
        "redshift-data",
        Some("DescribeStatement"),
        Fault::Slow(Duration::from_secs(60)),
        0,
        1,
        Some(("BatchExecuteStatement", batch)),
    );
    let child = rig.command(&["load"]).spawn().unwrap();
    fired(&hit).await;
    signal(&child, sig);
    let out = finish(child).await;
    let (_, stderr) = text(&out);
    match sig {
        "-TERM" => {
            assert_eq!(out.status.code(), Some(143), "{stderr}");
            assert!(
                stderr.contains("terminated (SIGTERM) while loading"),
                "{stderr}"
            );
            assert!(
                stderr.contains("SQL statement"),
                "names the statement: {stderr}"
            );
            assert!(stderr.contains("never a mix"), "{stderr}");
        }
        "-KILL" => assert_eq!(out.status.code(), None, "killed"),
        _ => unreachable!(),
    }

    rig.proxy.clear();
    let again = rig.run(&["load"]).await;
    assert_ok(&again);
    let once_more = rig.run(&["load"]).await;
    assert_ok(&once_more);
    let (stdout, _) = text(&once_more);
    assert!(stdout.contains("nothing appended"), "{stdout}");
    assert_eq!(
        rows_in(&p, "SELECT COUNT(*) FROM public.sales").await,
        12,
        "each row once"
    );
    assert_eq!(
        rows_in(
            &p,
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 's2r_staging%'"
        )
        .await,
        0,
        "no staging table left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_copy_then_load_again_converges() {
    interrupt_an_append("termcopy", "-TERM", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_swap_was_sent_does_not_duplicate_rows() {
    // The worst moment: the swap commits in the warehouse but the process
    // dies before it hears so. The ledger makes the re-run a no-op.
    interrupt_an_append("killswap", "-KILL", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_teardown_then_down_again_converges() {
    let rig = Rig::new("intdown", &[]).await;
    assert_ok(&rig.run(&["up"]).await);
    let hit = rig.proxy.inject_after(
        "redshift",
        Some("DescribeClusters"),
        Fault::Slow(Duration::from_secs(60)),
        0,
        1,
        Some(("DeleteCluster", 1)),
    );
    let child = rig
        .command(&["down", "--yes", "--with-iam"])
        .spawn()
        .unwrap();
    fired(&hit).await;
    signal(&child, "-INT");
    let out = finish(child).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("while deleting cluster `{}`", rig.names.cluster)),
        "{stderr}"
    );
    rig.proxy.clear();
    assert_ok(&rig.run(&["down", "--yes", "--with-iam"]).await);
    let status = rig.run(&["status"]).await;
    let (stdout, _) = text(&status);
    assert_eq!(stdout.matches("absent").count(), 3, "{stdout}");
}

/// A CSV of `rows` rows whose product names are random hex: gzip makes it
/// only about half as small, so each part of a few-part stage is more than
/// one 8 MiB chunk, and is sent as a multipart upload.
fn incompressible_csv(path: &std::path::Path, rows: usize) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "sale_id,sold_on,region,product,quantity,unit_price").unwrap();
    // xorshift64: random enough, and no dependency for it.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 1..=rows {
        let mut hex = String::with_capacity(64);
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            hex.push_str(&format!("{x:016x}"));
        }
        writeln!(out, "{i},2024-01-01,north,{hex},1,1.50").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_a_stage_leaves_no_multipart_upload_open() {
    let rig = Rig::new("intstage", &[]).await;
    let prefix = format!("STAGE_PREFIX = s3://{}/staging/", rig.names.bucket);
    let settings = [("AWS", "INITIAL_BACKOFF_MS = 20"), ("S3", prefix.as_str())];
    std::fs::write(&rig.cfg, config_text(&rig.names, &settings)).unwrap();
    let p = pipeline(&rig.names, &[]).await;
    upload_sample(&p, &rig.names).await;
    assert_ok(&rig.run(&["up"]).await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    incompressible_csv(&file, 450_000);

    // The first chunk of a part goes through; the next one hangs, so the
    // CLI is mid-upload, with multipart uploads open, when it is stopped.
    let hit = rig.proxy.inject(
        "s3",
        Some("PUT"),
        Fault::Slow(Duration::from_secs(60)),
        1,
        1,
    );
    let child = rig
        .command(&["stage", file.to_str().unwrap()])
        .spawn()
        .unwrap();
    fired(&hit).await;
    signal(&child, "-INT");
    let out = finish(child).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("open multipart upload"), "{stderr}");
    rig.proxy.clear();
    let open = p
        .clients
        .s3
        .list_multipart_uploads()
        .bucket(&rig.names.bucket)
        .send()
        .await
        .unwrap();
    assert!(open.uploads().is_empty(), "left open: {:?}", open.uploads());
}
