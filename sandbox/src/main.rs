//! `redshift-sandbox`: serve the Redshift Data API on 127.0.0.1.
//!
//! The PostgreSQL server and the AWS emulator must already run;
//! `scripts/sandbox.sh start` starts all three together.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use redshift_sandbox::aws::ControlPlane;
use redshift_sandbox::engine::Engine;
use redshift_sandbox::engine::Limits;
use redshift_sandbox::pg::Pg;

/// A local Redshift Data API backed by PostgreSQL.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where to listen. Loopback only: requests are not authenticated.
    #[arg(long, default_value = "127.0.0.1:0", env = "SANDBOX_LISTEN")]
    listen: SocketAddr,
    /// The PostgreSQL server, as a libpq connection string without dbname.
    #[arg(
        long,
        env = "SANDBOX_POSTGRES",
        default_value = "host=127.0.0.1 port=5432 user=postgres"
    )]
    postgres: String,
    /// A file holding the administrative user's password (the stack's
    /// `postgres.password`), when the server asks for one. Read from a file
    /// so that it is never on a command line or in the environment.
    #[arg(long, env = "SANDBOX_POSTGRES_PASSWORD_FILE")]
    postgres_password_file: Option<std::path::PathBuf>,
    /// At most this many statements run at once; more wait as SUBMITTED.
    #[arg(long, default_value_t = 32)]
    max_connections: usize,
    /// Finished statements are forgotten after this long, as the service
    /// keeps them for 24 hours.
    #[arg(long, default_value_t = 86_400)]
    retention_secs: u64,
    /// Results kept in memory, over all statements, in MiB; past it the
    /// oldest finished statements are forgotten first.
    #[arg(long, default_value_t = 1024)]
    max_stored_result_mib: usize,
    /// Write the bound port to this file once listening (for scripts).
    #[arg(long)]
    port_file: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: scripts read the log from a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {}: the sandbox has no authentication; use a 127.0.0.1 address",
            args.listen
        )
        .into());
    }
    let password = match &args.postgres_password_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| {
                    format!(
                        "cannot read the PostgreSQL password file {}: {e}",
                        f.display()
                    )
                })?
                .trim_end()
                .to_string(),
        ),
        None => None,
    };
    let pg = Pg::new(&args.postgres, password)
        .map_err(|e| format!("--postgres {}: {e}", args.postgres))?;
    // Fail early and clearly if PostgreSQL is not there; then close its own
    // databases to the clusters' roles.
    pg.harden()
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL ({}): {e}", args.postgres))?;
    let aws = ControlPlane::from_env().await;
    let engine = Arc::new(
        Engine::new(pg, aws, args.max_connections).with_limits(Limits {
            retention: std::time::Duration::from_secs(args.retention_secs),
            max_stored_bytes: args.max_stored_result_mib * 1024 * 1024,
        }),
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    if let Some(f) = &args.port_file {
        std::fs::write(f, addr.port().to_string())?;
    }
    tracing::info!("Redshift Data API sandbox listening on http://{addr}");
    engine.start_session_reaper();
    axum::serve(listener, redshift_sandbox::api::router(engine, addr))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
