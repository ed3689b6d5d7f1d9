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
//! face (submit, describe, wait, list, cancel); `run.rs` runs one statement
//! or batch on PostgreSQL and records each step; `session.rs` keeps the
//! Data API's sessions, a connection held between statements.
//!
//! Why no lock here can wedge the engine: every lock is a std mutex held
//! only for a few lines with no `.await` inside, taken through [`lock`],
//! which ignores poisoning; and a statement's task that panics is caught
//! and its statement marked FAILED, its connection slot and session freed.

mod run;
mod session;

pub use run::Context;
pub use session::{MAX_OPEN_SESSIONS, Session, SessionInfo, SessionStatus, SessionUse};

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use tokio::sync::{Notify, Semaphore};
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

/// How a batch commits (`ExecutionMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutionMode {
    /// All statements in one transaction, committed or rolled back together.
    #[default]
    Transaction,
    /// Each statement committed on its own; a failure leaves the others be.
    AutoCommit,
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
    /// Its rows, if it returned any: stored once and shared, so that
    /// describing the statement or reading a page copies no rows.
    pub result: Option<Arc<ResultData>>,
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
    /// The caller's idempotency token (`ClientToken`).
    pub client_token: Option<String>,
    /// Whether it opens, uses or does without a session.
    pub session: SessionUse,
    /// How a batch commits.
    pub execution_mode: ExecutionMode,
}

impl Request {
    /// A request with no session, token or name: what the catalogue calls
    /// and the tests build.
    pub fn new(target: Target, database: String, sqls: Vec<String>, is_batch: bool) -> Self {
        Self {
            target,
            database,
            db_user: None,
            sqls,
            is_batch,
            params: Vec::new(),
            statement_name: None,
            client_token: None,
            session: SessionUse::None,
            execution_mode: ExecutionMode::Transaction,
        }
    }

    /// What makes two requests "the same request" for a `ClientToken`.
    fn fingerprint(&self) -> String {
        format!(
            "{:?}|{}|{:?}|{:?}|{}|{:?}|{:?}|{:?}|{:?}",
            self.target,
            self.database,
            self.db_user,
            self.sqls,
            self.is_batch,
            self.params,
            self.statement_name,
            self.session,
            self.execution_mode
        )
    }
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
    /// The session it ran in, if any.
    pub session_id: Option<String>,
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

/// Locks a mutex whatever a panicking holder left: every structure behind
/// these locks is valid between any two statements, so a panic elsewhere
/// must not make every later request panic too.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
    /// `ClientToken` → (the request's fingerprint, its statement id).
    tokens: Mutex<HashMap<String, (String, String)>>,
    /// Told whenever a statement changes, for the long-polling waits.
    changed: Notify,
    sessions: Mutex<HashMap<String, Session>>,
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
            tokens: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            sessions: Mutex::new(HashMap::new()),
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
    ///
    /// A `ClientToken` seen before for the same request returns the first
    /// statement, which runs once: an SDK that retries a request whose
    /// reply was lost gets the id it missed, not a second run. The tokens
    /// are kept as long as their statements (24 hours, as the service
    /// keeps statements).
    pub async fn submit(self: &Arc<Self>, mut request: Request) -> Result<Statement, Rejected> {
        if request.sqls.is_empty() || request.sqls.iter().any(|s| s.trim().is_empty()) {
            return Err(Rejected::Validation("SQL must not be empty".into()));
        }
        if let SessionUse::Existing { id, .. } = &request.session {
            // The session names the target and database.
            let (target, database, db_user) = self.session_target(id, &request)?;
            request.target = target;
            request.database = database;
            request.db_user = db_user;
        }
        let generation = match &request.target {
            Target::Cluster(id) => self.aws.check_cluster(id).await?.generation,
            Target::Workgroup(_) => String::new(),
        };
        let id = uuid::Uuid::new_v4().to_string();
        let t = now();
        // From here to the spawn, nothing awaits: the token's check and its
        // record, and the session's, are one step no other request can
        // come between.
        let mut tokens = lock(&self.tokens);
        if let Some(token) = &request.client_token
            && let Some((fingerprint, first)) = tokens.get(token)
        {
            if *fingerprint != request.fingerprint() {
                return Err(Rejected::Validation(format!(
                    "ClientToken {token} was already used for a different request; \
                     use a new token for a new request"
                )));
            }
            if let Ok(st) = self.get(first) {
                return Ok(st);
            }
        }
        let session_id = self.claim_session(&id, &request, t)?;
        let forgotten = evict(&mut lock(&self.statements), t, self.limits);
        if forgotten > 0 {
            tracing::debug!("forgot {forgotten} finished statement(s) past the retention limits");
            let statements = lock(&self.statements);
            tokens.retain(|_, (_, sid)| statements.contains_key(sid));
        }
        if let Some(token) = &request.client_token {
            tokens.insert(token.clone(), (request.fingerprint(), id.clone()));
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
            session_id,
        };
        lock(&self.statements).insert(id.clone(), st.clone());
        lock(&self.running).insert(
            id.clone(),
            Running {
                cancel: None,
                cancelled: Arc::new(AtomicBool::new(false)),
            },
        );
        // Only now may another request with the same token look: the
        // statement it will be given is recorded.
        drop(tokens);
        let engine = Arc::clone(self);
        tokio::spawn(Arc::clone(self).guarded(id.clone(), engine.run(id)));
        Ok(st)
    }

    /// Runs statement `id`'s task. A panic in it (a bug) must not leave
    /// the statement SUBMITTED or STARTED for ever nor keep its slot or its
    /// session: it is caught here and the statement ends FAILED, saying so.
    async fn guarded(self: Arc<Self>, id: String, task: impl Future<Output = ()>) {
        let Err(panic) = AssertUnwindSafe(task).catch_unwind().await else {
            return;
        };
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!("statement {id}: the sandbox panicked running it: {what}");
        self.finish_all(
            &id,
            Status::Failed,
            Some(format!(
                "ERROR: the sandbox failed running this statement (an internal error: {what}); \
                 please report it"
            )),
            std::time::Instant::now(),
        );
        self.release_session(&id, None);
    }

    /// Waits up to `wait` for statement `id` to end (`WaitTimeSeconds`),
    /// and returns it as it is then: ended, or still running when the wait
    /// ran out. Woken by every change, not by polling.
    pub async fn wait_for(&self, id: &str, wait: Duration) -> Result<Statement, Rejected> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the check, so a change between the check
            // and the wait is not missed.
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let st = self.get(id)?;
            if st.status.is_final() || tokio::time::Instant::now() >= deadline {
                return Ok(st);
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// A copy of a statement (by its id or a batch sub-statement's id).
    pub fn get(&self, id: &str) -> Result<Statement, Rejected> {
        let base = id.split(':').next().unwrap_or(id);
        lock(&self.statements)
            .get(base)
            .cloned()
            .ok_or_else(|| Rejected::NotFound(format!("Query does not exist: {id}")))
    }

    /// Every statement, newest first.
    pub fn list(&self) -> Vec<Statement> {
        let mut all: Vec<Statement> = lock(&self.statements).values().cloned().collect();
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
                let running = lock(&self.running);
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
        if let Some(st) = lock(&self.statements).get_mut(id) {
            f(st);
            st.updated_at = now();
        }
        self.changed.notify_waiters();
    }

    fn cancelled(&self, id: &str) -> Arc<AtomicBool> {
        lock(&self.running)
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
            request: Request::new(
                Target::Cluster("c".into()),
                "dev".into(),
                vec!["SELECT 1".into()],
                false,
            ),
            status,
            error: None,
            subs: vec![Sub {
                id: id.into(),
                sql: "SELECT 1".into(),
                status,
                error: None,
                result_rows: 1,
                result: Some(Arc::new(ResultData {
                    size: bytes,
                    ..ResultData::default()
                })),
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
            session_id: None,
        }
    }

    #[tokio::test]
    async fn a_statement_whose_task_panics_ends_failed_and_frees_its_place() {
        let pg = Pg::new("host=127.0.0.1 port=9 user=nobody", None).unwrap();
        let aws = ControlPlane::from_env().await;
        let engine = Arc::new(Engine::new(pg, aws, 1));
        let st = statement(
            "0b1c2d3e-0000-4000-8000-000000000000",
            Status::Started,
            0.0,
            0,
        );
        let id = st.id.clone();
        lock(&engine.statements).insert(id.clone(), st);
        lock(&engine.running).insert(
            id.clone(),
            Running {
                cancel: None,
                cancelled: Arc::default(),
            },
        );
        let permit = engine.permits.acquire().await.unwrap();
        let task = async move {
            let _held = permit;
            panic!("boom");
        };
        Arc::clone(&engine).guarded(id.clone(), task).await;
        let after = engine.get(&id).unwrap();
        assert_eq!(after.status, Status::Failed);
        assert!(after.error.unwrap().contains("boom"));
        assert!(lock(&engine.running).is_empty(), "its place is freed");
        assert_eq!(engine.permits.available_permits(), 1, "its slot is freed");
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
