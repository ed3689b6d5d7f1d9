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
use indicatif::{ProgressBar, ProgressStyle};
use s3_to_redshift::config::Config;
use s3_to_redshift::pipeline::DownOptions;
use s3_to_redshift::report::{Observer, StepReport};
use s3_to_redshift::{Error, Pipeline};

/// How many rows `load` shows after loading.
const PREVIEW_ROWS: u32 = 10;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  unexpected error (a bug: please report it)
  2  bad command line or config file (nothing was changed)
  3  refused: a resource this tool did not create, ON_EXISTING = fail, or no confirmation
  4  AWS error (the message names the service, operation and resource)
  5  timed out waiting (the work may still finish in AWS; run the command again)
  6  SQL failed or the load did not verify";

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
    Load,
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
    tty: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            bar: Mutex::new(None),
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
}

fn confirm(prompt: &str) -> bool {
    eprint!("{prompt} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

async fn run(cli: Cli) -> Result<(), Error> {
    let cfg = Config::load(&cli.config)?;
    for note in &cfg.notes {
        eprintln!("note: {note}");
    }
    let pipeline = Pipeline::connect(cfg).await?;
    let progress = Progress::new();
    match cli.command {
        Command::Plan { force } => {
            let plan = pipeline.plan(force).await?;
            println!("Plan (nothing has been changed):");
            for step in &plan.steps {
                println!("{}", step.planned());
            }
            println!("\nSQL that `load` runs:");
            for sql in &plan.sql {
                println!("{sql};\n");
            }
        }
        Command::Up { force } => {
            pipeline.up(force, &progress).await?;
        }
        Command::Load => {
            let report = pipeline.load(&progress).await?;
            if !report.rejected.is_empty() {
                println!(
                    "rejected under MAX_ERRORS ({} rows):\n{}",
                    report.rejected.total,
                    report.rejected.to_string().trim_end()
                );
            }
            let rows = pipeline.preview(PREVIEW_ROWS).await?;
            println!("\nThe first rows of {}:\n{rows}", pipeline.cfg.table.name);
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
            let planned = pipeline.plan_down(&opts).await?;
            println!("Down will:");
            for step in &planned {
                println!("{}", step.planned());
            }
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Error::Refused {
                        action: "delete",
                        kind: "cluster",
                        name: pipeline.cfg.cluster.identifier.clone(),
                        reason: "no terminal to confirm on; pass --yes to confirm".into(),
                    });
                }
                if !confirm("Delete these resources?") {
                    return Err(Error::Refused {
                        action: "delete",
                        kind: "cluster",
                        name: pipeline.cfg.cluster.identifier.clone(),
                        reason: "not confirmed".into(),
                    });
                }
            }
            pipeline.down(&opts, &progress).await?;
        }
    }
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
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
