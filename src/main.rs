//! The `s3-to-redshift` command: `plan`, `up`, `load`, `status`, `down`.
//!
//! Output: one line per step on stdout; progress spinners and logs on stderr
//! (spinners only on a terminal), so `s3-to-redshift status > state.txt`
//! captures just the results. Exit codes are listed in `--help`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use s3_to_redshift::config::{Config, TargetSettings};
use s3_to_redshift::pipeline::DownOptions;
use s3_to_redshift::report::{Observer, StepReport};
use s3_to_redshift::{Error, Pipeline};
use s3_to_redshift::{cluster, load};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  unexpected error (a bug: please report it)
  2  bad command line or config file (nothing was changed)
  3  refused: a resource this tool did not create, ON_EXISTING = fail, or no confirmation
  4  AWS error (the message names the service, operation and resource)
  5  timed out waiting (the work may still finish in AWS; run the command again)
  6  SQL failed or the load did not verify
130  interrupted (SIGINT, Ctrl-C); 143: terminated (SIGTERM). Run the command again to resume";

/// Move data from Amazon S3 into Amazon Redshift.
#[derive(Parser, Debug)]
#[command(version, about, after_help = EXIT_CODES)]
struct Cli {
    /// The pipeline's INI config file.
    #[arg(short, long, value_name = "FILE", env = "S3_TO_REDSHIFT_CONFIG")]
    config: PathBuf,
    /// More log output on stderr (-v: info, -vv: debug). RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what `up` and `load` would create, reuse, replace; change nothing.
    Plan {
        /// Plan as if --force were given to `up`.
        #[arg(long)]
        force: bool,
    },
    /// Create or reuse the IAM role, the policy and the cluster; wait until ready.
    Up {
        /// Replace resources this tool did not create (ON_EXISTING = replace).
        #[arg(long)]
        force: bool,
    },
    /// Create the table, COPY the data from S3 and verify the row counts.
    Load {
        /// Override [LOAD] MODE: replace, append or upsert.
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
        /// Override [LOAD] KEY (upsert): the columns that identify a row.
        #[arg(long, value_name = "COLUMNS")]
        key: Option<String>,
    },
    /// Split a local CSV into gzip parts (a multiple of the cluster's slices),
    /// upload them in parallel under [S3] STAGE_PREFIX with a manifest, and
    /// load them.
    Stage {
        /// The local file.
        file: PathBuf,
        /// Override [LOAD] MODE: replace, append or upsert.
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
        /// Override [LOAD] KEY (upsert).
        #[arg(long, value_name = "COLUMNS")]
        key: Option<String>,
    },
    /// Show what exists now.
    Status,
    /// Delete the cluster (and, with --with-iam, the role and policy).
    Down {
        /// Also delete the IAM role and policy.
        #[arg(long)]
        with_iam: bool,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Delete even resources this tool did not create.
        #[arg(long)]
        force: bool,
        /// Take a final snapshot with this identifier before deleting.
        #[arg(long, value_name = "ID")]
        final_snapshot: Option<String>,
    },
}

/// Shows waits as a spinner on a terminal, and as occasional log lines
/// elsewhere (CI logs should not fill with spinner frames).
struct Progress {
    bar: Mutex<Option<ProgressBar>>,
    bars: MultiProgress,
    phases: Mutex<Vec<(String, ProgressBar)>>,
    tty: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            bar: Mutex::new(None),
            bars: MultiProgress::new(),
            phases: Mutex::new(Vec::new()),
            tty: std::io::stderr().is_terminal(),
        }
    }
}

impl Observer for Progress {
    fn waiting(&self, what: &str, state: &str, elapsed: Duration) {
        let msg = format!("waiting for {what}: {state} ({}s)", elapsed.as_secs());
        if self.tty {
            let mut bar = self.bar.lock().expect("progress lock");
            let bar = bar.get_or_insert_with(|| {
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
                );
                b.enable_steady_tick(Duration::from_millis(120));
                b
            });
            bar.set_message(msg);
        } else {
            eprintln!("{msg}");
        }
    }

    fn wait_over(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }

    fn step(&self, report: &StepReport) {
        println!("{report}");
    }

    fn progress(&self, what: &str, done: u64, total: u64) {
        let mut phases = self.phases.lock().expect("progress lock");
        let bar = match phases.iter().find(|(w, _)| w == what) {
            Some((_, b)) => b.clone(),
            None => {
                let b = if self.tty {
                    self.bars.add(ProgressBar::new(total))
                } else {
                    ProgressBar::hidden()
                };
                let template = if what.contains("uploading") {
                    "{msg:34} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
                } else {
                    "{msg:34} [{bar:30}] {pos}/{len}"
                };
                b.set_style(
                    ProgressStyle::with_template(template)
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                b.set_message(what.to_string());
                phases.push((what.to_string(), b.clone()));
                b
            }
        };
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish();
        }
        // Without a terminal, one line per finished part is enough for a log.
        if !self.tty && what == "parts uploaded" {
            eprintln!("{what}: {done}/{total}");
        }
    }
}

/// Asks on the terminal. The read runs on a blocking thread so that Ctrl-C
/// at the prompt is still seen by the signal handler.
async fn confirm(prompt: &str) -> bool {
    eprint!("{prompt} [y/N] ");
    let _ = std::io::stderr().flush();
    tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).is_ok()
            && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    })
    .await
    .unwrap_or(false)
}

/// Runs the command; the caller races this against the stop signals.
async fn run(command: Command, pipeline: &Pipeline, progress: &Progress) -> Result<(), Error> {
    match command {
        Command::Plan { force } => {
            let plan = pipeline.plan(force).await?;
            println!("Plan (nothing has been changed):");
            for step in &plan.steps {
                println!("{}", step.planned());
            }
            if let Some(inferred) = &plan.inferred {
                println!(
                    "\nColumns inferred from the data (paste into the file to pin or adjust them):\n{inferred}"
                );
            }
            println!("\nSQL that `load` runs:");
            let requests = plan.sql.len();
            for (i, batch) in plan.sql.iter().enumerate() {
                println!(
                    "-- request {} of {requests}: one BatchExecuteStatement, one transaction\n",
                    i + 1
                );
                for sql in batch {
                    println!("{sql};\n");
                }
            }
        }
        Command::Up { force } => {
            pipeline.up(force, progress).await?;
        }
        Command::Load { .. } => {
            let report = pipeline.load(progress).await?;
            if !report.rejected.is_empty() {
                println!(
                    "rejected under MAX_ERRORS ({} rows):\n{}",
                    report.rejected.total,
                    report.rejected.to_string().trim_end()
                );
            }
            // The load read them already, unless it had nothing to do (or
            // could not fetch them).
            let rows = if report.preview.columns.is_empty() {
                pipeline.preview(load::PREVIEW_ROWS).await?
            } else {
                report.preview
            };
            println!("\nThe first rows of {}:\n{rows}", pipeline.cfg.table.name);
        }
        Command::Stage { file, .. } => {
            let (_, report) = pipeline.stage(&file, progress).await?;
            if !report.rejected.is_empty() {
                println!(
                    "rejected under MAX_ERRORS ({} rows):\n{}",
                    report.rejected.total,
                    report.rejected.to_string().trim_end()
                );
            }
        }
        Command::Status => {
            for line in pipeline.status().await? {
                println!("{line}");
            }
        }
        Command::Down {
            with_iam,
            yes,
            force,
            final_snapshot,
        } => {
            let opts = DownOptions {
                with_iam,
                force,
                final_snapshot,
            };
            down(pipeline, opts, yes, progress).await?;
        }
    }
    Ok(())
}

/// `down`: offers a final snapshot, shows what will be deleted, asks (unless
/// `--yes`), then deletes.
async fn down(
    pipeline: &Pipeline,
    mut opts: DownOptions,
    yes: bool,
    progress: &Progress,
) -> Result<(), Error> {
    // Offer a final snapshot: the cluster's data goes with it, and a
    // snapshot is the one way back. Only on a terminal and only when
    // the command line did not already decide.
    if let TargetSettings::Cluster(c) = &pipeline.cfg.target
        && !yes
        && opts.final_snapshot.is_none()
        && std::io::stdin().is_terminal()
    {
        let id = &c.identifier;
        if cluster::describe_cluster(&pipeline.clients.redshift, id).await?.is_some()
            && confirm(&format!(
                "Take a final snapshot of cluster `{id}` first (kept, and billed as backup storage, until you delete it)?"
            ))
            .await
        {
            opts.final_snapshot = Some(final_snapshot_id(id));
        }
    }
    let planned = pipeline.plan_down(&opts).await?;
    println!("Down will:");
    for step in &planned {
        println!("{}", step.planned());
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Refused {
                action: "delete",
                kind: pipeline.cfg.target.kind(),
                name: pipeline.cfg.target.name().to_string(),
                reason: "no terminal to confirm on; pass --yes to confirm".into(),
            });
        }
        if !confirm("Delete these resources?").await {
            return Err(Error::Refused {
                action: "delete",
                kind: pipeline.cfg.target.kind(),
                name: pipeline.cfg.target.name().to_string(),
                reason: "not confirmed".into(),
            });
        }
    }
    pipeline.down_planned(&opts, planned, progress).await?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal, not in a log file or a CI transcript.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let config_path = cli.config.clone();
        let command_name = cli.command.name();
        let overrides: Vec<(&str, &str, &str)> = match &cli.command {
            Command::Load { mode, key } | Command::Stage { mode, key, .. } => {
                let mut o = Vec::new();
                if let Some(m) = mode {
                    o.push(("LOAD", "MODE", m.as_str()));
                }
                if let Some(k) = key {
                    o.push(("LOAD", "KEY", k.as_str()));
                }
                o
            }
            _ => Vec::new(),
        };
        let pipeline = match connect(&cli.config, &overrides).await {
            Ok(p) => p,
            Err(e) => return fail(&e),
        };
        let progress = Progress::new();
        // Listening for the signals replaces their default action (exit at
        // once), so from here on a stop goes through `interrupted`.
        let stop = stop_signal();
        tokio::select! {
            result = run(cli.command, &pipeline, &progress) => match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            },
            signal = stop => {
                progress.wait_over();
                interrupted(signal, &pipeline, &config_path, command_name).await
            }
        }
    })
}

async fn connect(
    path: &std::path::Path,
    overrides: &[(&str, &str, &str)],
) -> Result<Pipeline, Error> {
    let cfg = Config::load_with(path, overrides)?;
    for note in &cfg.notes {
        eprintln!("note: {note}");
    }
    Pipeline::connect(cfg).await
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// `<cluster>-final-<unix seconds>`: unique per run, and a valid snapshot
/// identifier whenever the cluster's is (letters, digits, hyphens; the
/// suffix keeps it under 255 characters and not ending in a hyphen).
fn final_snapshot_id(cluster: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("{cluster}-final-{secs}")
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(e.exit_code() as u8)
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Plan { .. } => "plan",
            Command::Up { .. } => "up",
            Command::Load { .. } => "load",
            Command::Stage { .. } => "stage",
            Command::Status => "status",
            Command::Down { .. } => "down",
        }
    }
}

/// A stop request: SIGINT (Ctrl-C) or, on Unix, SIGTERM.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Interrupt,
    Terminate,
}

async fn stop_signal() -> Stop {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => Stop::Interrupt,
                _ = term.recv() => Stop::Terminate,
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                Stop::Interrupt
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Stop::Interrupt
    }
}

/// Says what was under way, cancels the SQL statement being waited on (so
/// it does not run on unseen, holding locks), and says how to resume.
///
/// Why resuming is just "run it again": every step looks before it acts and
/// reuses what exists, and a load changes the table only in its final
/// transaction. So the next run picks up where this one stopped.
async fn interrupted(
    stop: Stop,
    pipeline: &Pipeline,
    config: &std::path::Path,
    command: &str,
) -> ExitCode {
    let (name, code) = match stop {
        Stop::Interrupt => ("interrupted (SIGINT)", 130),
        Stop::Terminate => ("terminated (SIGTERM)", 143),
    };
    let doing = pipeline.activity.now();
    let step = doing.step.as_deref().unwrap_or("starting");
    eprintln!("\n{name} while {step}.");
    if let Some((id, sql)) = &doing.statement {
        let cancel = pipeline.clients.data.cancel_statement().id(id).send();
        match tokio::time::timeout(Duration::from_secs(10), cancel).await {
            Ok(Ok(_)) => eprintln!("Cancelled SQL statement {id}: {sql}"),
            Ok(Err(e)) => eprintln!(
                "SQL statement {id} could not be cancelled (it may have finished): {}",
                aws_sdk_redshiftdata::error::DisplayErrorContext(&e)
            ),
            Err(_) => eprintln!("SQL statement {id}: no answer to the cancel within 10 s"),
        }
    }
    // A stage stopped mid-upload: its open multipart uploads are aborted,
    // so that no half-uploaded part is stored (and billed) in S3.
    if !doing.uploads.is_empty() || doing.staging.is_some() {
        let aborted =
            s3_to_redshift::stage::abort_open_uploads(&pipeline.clients.s3, &pipeline.activity)
                .await;
        let left = pipeline.activity.now().uploads.len();
        eprintln!(
            "Aborted {aborted} open multipart upload(s) of the staged parts ({left} could not be)."
        );
    }
    let state = match command {
        "up" => {
            "What was created is kept and tagged; a cluster being created goes on in AWS (and is billed while it exists)."
        }
        "load" => {
            "The table holds its old rows or the new ones, never a mix: rows move in only in the load's final transaction."
        }
        "down" => "A deletion already requested goes on in AWS.",
        _ => "Nothing was changed.",
    };
    eprintln!("{state}");
    // The command as it was given (its options too: `load --mode upsert`),
    // with the config named by its path.
    let mut again = vec![format!(
        "--config {}",
        shell_word(&config.display().to_string())
    )];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--config" || a == "-c" {
            args.next();
        } else if !a.starts_with("--config=") {
            again.push(shell_word(&a));
        }
    }
    let _ = command;
    eprintln!(
        "To resume, run the same command again; finished steps are found and reused:\n  s3-to-redshift {}",
        again.join(" ")
    );
    ExitCode::from(code)
}
