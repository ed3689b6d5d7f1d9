//! Statements and their life cycle: SUBMITTED → STARTED → FINISHED, FAILED
//! or ABORTED, run in the background as the real service does.
//!
//! `ExecuteStatement` returns as soon as the statement is recorded; a task
//! then waits for a connection slot (the semaphore bounds PostgreSQL
//! connections, so a burst of statements queues instead of failing), runs the
//! SQL and records the outcome. Clients see the states through
//! `DescribeStatement`, exactly as against AWS.
//!
//! `mod.rs` (here) holds the statements' records and the engine's public
//! face (submit, describe, list, cancel); `run.rs` runs one statement or
//! batch on PostgreSQL and records each step.

mod run;

pub use run::Context;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio_postgres::{CancelToken, NoTls};

use crate::aws::ControlPlane;
pub use crate::error::Rejected;
use crate::pg::{Cell, Pg, Target};

/// The largest result kept, as the real service caps results at 100 MB.
pub const MAX_RESULT_BYTES: usize = 100 * 1024 * 1024;

/// A statement's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Recorded, waiting to run.
    Submitted,
    /// Running.
    Started,
    /// Done.
    Finished,
    /// Ended with an error.
    Failed,
    /// Cancelled.
    Aborted,
}

impl Status {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "SUBMITTED",
            Status::Started => "STARTED",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Aborted => "ABORTED",
        }
    }

    /// Whether the statement has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Finished | Status::Failed | Status::Aborted)
    }
}

/// A column of a result.
#[derive(Clone, Debug)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type, as Redshift names it (`int4`, `varchar`, …).
    pub type_name: String,
}

/// A finished statement's rows.
#[derive(Clone, Debug, Default)]
pub struct ResultData {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
    /// Approximate size in bytes.
    pub size: usize,
}

/// One SQL statement (alone, or one of a batch).
#[derive(Clone, Debug)]
pub struct Sub {
    /// `id` alone, or `id:n` in a batch.
    pub id: String,
    /// The SQL as sent.
    pub sql: String,
    /// Its state.
    pub status: Status,
    /// The error, when FAILED.
    pub error: Option<String>,
    /// Rows affected or returned; for COPY, rows loaded.
    pub result_rows: i64,
    /// Its rows, if it returned any.
    pub result: Option<ResultData>,
    /// The Redshift-style query id.
    pub query_id: i64,
    /// Epoch seconds.
    pub created_at: f64,
    /// Epoch seconds.
    pub updated_at: f64,
    /// Nanoseconds it ran.
    pub duration_ns: i64,
}

/// A request as the Data API receives it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Where it runs.
    pub target: Target,
    /// The database.
    pub database: String,
    /// The database user, if given.
    pub db_user: Option<String>,
    /// One statement, or several for a batch.
    pub sqls: Vec<String>,
    /// Whether it came as `BatchExecuteStatement`.
    pub is_batch: bool,
    /// Named parameters.
    pub params: Vec<(String, String)>,
    /// The optional statement name.
    pub statement_name: Option<String>,
}

/// A statement as stored.
#[derive(Clone, Debug)]
pub struct Statement {
    /// The id.
    pub id: String,
    /// What was asked.
    pub request: Request,
    /// Overall state.
    pub status: Status,
    /// The first error, when FAILED.
    pub error: Option<String>,
    /// The statements (one unless a batch).
    pub subs: Vec<Sub>,
    /// Epoch seconds.
    pub created_at: f64,
    /// Epoch seconds.
    pub updated_at: f64,
    /// Nanoseconds it ran.
    pub duration_ns: i64,
    /// The PostgreSQL backend pid, once started.
    pub pid: i64,
    /// The cluster's generation when the statement was submitted.
    pub generation: String,
}

impl Statement {
    /// The statement's text as `DescribeStatement` shows it.
    pub fn query_string(&self) -> String {
        self.request.sqls.join("; ")
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

struct Running {
    cancel: Option<CancelToken>,
    cancelled: Arc<AtomicBool>,
}

/// The statement engine.
pub struct Engine {
    /// PostgreSQL.
    pub pg: Pg,
    /// The Redshift control plane, IAM and S3 (the emulator).
    pub aws: ControlPlane,
    statements: Mutex<HashMap<String, Statement>>,
    running: Mutex<HashMap<String, Running>>,
    permits: Semaphore,
    next_query_id: AtomicI64,
    limits: Limits,
}

/// How much finished work the engine remembers.
///
/// Why: the service keeps a statement and its result for 24 hours, and a
/// sandbox that kept everything for ever would grow without bound under a
/// long test run or a notebook left open. Finished statements older than
/// `retention` are forgotten, and when the stored results pass
/// `max_stored_bytes`, the oldest finished ones go first. Running
/// statements are never evicted.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long a finished statement stays describable.
    pub retention: std::time::Duration,
    /// The most result bytes kept over all statements.
    pub max_stored_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            retention: std::time::Duration::from_secs(24 * 3600),
            max_stored_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// The result bytes a statement holds.
fn stored_bytes(st: &Statement) -> usize {
    st.subs
        .iter()
        .filter_map(|s| s.result.as_ref())
        .map(|r| r.size)
        .sum()
}

/// Forgets finished statements past `limits` (see [`Limits`]); returns how
/// many were forgotten.
pub fn evict(statements: &mut HashMap<String, Statement>, now: f64, limits: Limits) -> usize {
    let before = statements.len();
    let oldest_kept = now - limits.retention.as_secs_f64();
    statements.retain(|_, st| !(st.status.is_final() && st.updated_at < oldest_kept));
    let mut total: usize = statements.values().map(stored_bytes).sum();
    if total > limits.max_stored_bytes {
        let mut finished: Vec<(f64, String, usize)> = statements
            .values()
            .filter(|st| st.status.is_final())
            .map(|st| (st.updated_at, st.id.clone(), stored_bytes(st)))
            .collect();
        finished.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, id, bytes) in finished {
            if total <= limits.max_stored_bytes {
                break;
            }
            statements.remove(&id);
            total -= bytes;
        }
    }
    before - statements.len()
}

impl Engine {
    /// An engine running at most `max_connections` statements at once.
    pub fn new(pg: Pg, aws: ControlPlane, max_connections: usize) -> Self {
        Self {
            pg,
            aws,
            statements: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            permits: Semaphore::new(max_connections),
            next_query_id: AtomicI64::new(1000),
            limits: Limits::default(),
        }
    }

    /// Replaces the default [`Limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// A new Redshift-style query id.
    pub fn query_id(&self) -> i64 {
        self.next_query_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Checks the target, records the statement as SUBMITTED and starts it.
    pub async fn submit(self: &Arc<Self>, request: Request) -> Result<Statement, Rejected> {
        if request.sqls.is_empty() || request.sqls.iter().any(|s| s.trim().is_empty()) {
            return Err(Rejected::Validation("SQL must not be empty".into()));
        }
        let generation = match &request.target {
            Target::Cluster(id) => self.aws.check_cluster(id).await?.generation,
            Target::Workgroup(_) => String::new(),
        };
        let id = uuid::Uuid::new_v4().to_string();
        let t = now();
        let forgotten = evict(&mut self.statements.lock().unwrap(), t, self.limits);
        if forgotten > 0 {
            tracing::debug!("forgot {forgotten} finished statement(s) past the retention limits");
        }
        let subs = request
            .sqls
            .iter()
            .enumerate()
            .map(|(i, sql)| Sub {
                id: if request.is_batch {
                    format!("{id}:{}", i + 1)
                } else {
                    id.clone()
                },
                sql: sql.clone(),
                status: Status::Submitted,
                error: None,
                result_rows: -1,
                result: None,
                query_id: 0,
                created_at: t,
                updated_at: t,
                duration_ns: 0,
            })
            .collect();
        let st = Statement {
            id: id.clone(),
            request,
            status: Status::Submitted,
            error: None,
            subs,
            created_at: t,
            updated_at: t,
            duration_ns: 0,
            pid: 0,
            generation,
        };
        self.statements
            .lock()
            .unwrap()
            .insert(id.clone(), st.clone());
        self.running.lock().unwrap().insert(
            id.clone(),
            Running {
                cancel: None,
                cancelled: Arc::new(AtomicBool::new(false)),
            },
        );
        let engine = Arc::clone(self);
        tokio::spawn(async move { engine.run(id).await });
        Ok(st)
    }

    /// A copy of a statement (by its id or a batch sub-statement's id).
    pub fn get(&self, id: &str) -> Result<Statement, Rejected> {
        let base = id.split(':').next().unwrap_or(id);
        self.statements
            .lock()
            .unwrap()
            .get(base)
            .cloned()
            .ok_or_else(|| Rejected::NotFound(format!("Query does not exist: {id}")))
    }

    /// Every statement, newest first.
    pub fn list(&self) -> Vec<Statement> {
        let mut all: Vec<Statement> = self.statements.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
        all
    }

    /// Cancels a statement that has not ended.
    pub async fn cancel(&self, id: &str) -> Result<(), Rejected> {
        let st = self.get(id)?;
        if st.status.is_final() {
            return Err(Rejected::Validation(format!(
                "Could not cancel a query that is already in {} state with ID: {id}",
                st.status.as_str()
            )));
        }
        // A cancel request reaches PostgreSQL only while a query runs; one
        // that lands between two queries (or while the connection opens) is
        // lost. So the flag is set for the runner to see, and the request is
        // repeated until the statement has ended, for at most 5 seconds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let token = {
                let running = self.running.lock().unwrap();
                let Some(r) = running.get(&st.id) else {
                    return Ok(());
                };
                r.cancelled.store(true, Ordering::SeqCst);
                r.cancel.clone()
            };
            if let Some(token) = token
                && let Err(e) = token.cancel_query(NoTls).await
            {
                tracing::warn!("cancel of {id} failed: {e}");
            }
            if self.get(id)?.status.is_final() || std::time::Instant::now() > deadline {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Statement)) {
        if let Some(st) = self.statements.lock().unwrap().get_mut(id) {
            f(st);
            st.updated_at = now();
        }
    }

    fn cancelled(&self, id: &str) -> Arc<AtomicBool> {
        self.running
            .lock()
            .unwrap()
            .get(id)
            .map(|r| Arc::clone(&r.cancelled))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(id: &str, status: Status, updated_at: f64, bytes: usize) -> Statement {
        Statement {
            id: id.into(),
            request: Request {
                target: Target::Cluster("c".into()),
                database: "dev".into(),
                db_user: None,
                sqls: vec!["SELECT 1".into()],
                is_batch: false,
                params: Vec::new(),
                statement_name: None,
            },
            status,
            error: None,
            subs: vec![Sub {
                id: id.into(),
                sql: "SELECT 1".into(),
                status,
                error: None,
                result_rows: 1,
                result: Some(ResultData {
                    size: bytes,
                    ..ResultData::default()
                }),
                query_id: 1,
                created_at: updated_at,
                updated_at,
                duration_ns: 0,
            }],
            created_at: updated_at,
            updated_at,
            duration_ns: 0,
            pid: 0,
            generation: String::new(),
        }
    }

    #[test]
    fn old_and_excess_finished_statements_are_forgotten_running_ones_never() {
        let limits = Limits {
            retention: std::time::Duration::from_secs(100),
            max_stored_bytes: 250,
        };
        let mut all: HashMap<String, Statement> = [
            statement("expired", Status::Finished, 0.0, 10),
            statement("old-but-running", Status::Started, 0.0, 0),
            statement("a", Status::Finished, 900.0, 100),
            statement("b", Status::Failed, 950.0, 100),
            statement("c", Status::Finished, 990.0, 100),
            statement("running-big", Status::Started, 995.0, 500),
        ]
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
        let forgotten = evict(&mut all, 1000.0, limits);
        let mut kept: Vec<&str> = all.keys().map(String::as_str).collect();
        kept.sort();
        // Over the byte limit even after "a", "b" and "c" went: running
        // statements are kept whatever they hold.
        assert_eq!(kept, ["old-but-running", "running-big"]);
        assert_eq!(forgotten, 4);

        let mut all: HashMap<String, Statement> = [
            statement("a", Status::Finished, 900.0, 100),
            statement("b", Status::Finished, 950.0, 100),
            statement("c", Status::Finished, 990.0, 100),
        ]
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
        assert_eq!(evict(&mut all, 1000.0, limits), 1, "the oldest goes first");
        assert!(!all.contains_key("a"));
    }
}
