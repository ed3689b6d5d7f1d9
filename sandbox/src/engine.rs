//! Statements and their life cycle: SUBMITTED → STARTED → FINISHED, FAILED
//! or ABORTED, run in the background as the real service does.
//!
//! `ExecuteStatement` returns as soon as the statement is recorded; a task
//! then waits for a connection slot (the semaphore bounds PostgreSQL
//! connections, so a burst of statements queues instead of failing), runs the
//! SQL and records the outcome. Clients see the states through
//! `DescribeStatement`, exactly as against AWS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio_postgres::{CancelToken, Client, NoTls};

use crate::aws::ControlPlane;
use crate::copy;
pub use crate::error::Rejected;
use crate::pg::{Cell, Pg, Target, TextParam, pg_message, type_name};
use crate::translate::{self, Kind};

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

    /// Runs a submitted statement to its end, and records how it ended.
    async fn run(self: Arc<Self>, id: String) {
        let started = Instant::now();
        // Held until the statement ends: the permits bound the PostgreSQL
        // connections open at once.
        let _permit = self.permits.acquire().await.expect("semaphore open");
        let cancelled = self.cancelled(&id);
        let Ok(st) = self.get(&id) else {
            return;
        };
        let Some(client) = self.start(&id, &st, &cancelled, started).await else {
            return;
        };
        let req = &st.request;
        let ctx = Context {
            engine: &self,
            request: req,
            cancelled: &cancelled,
            statement_id: &id,
        };
        if req.is_batch {
            // A batch is one transaction: all or nothing, as in Redshift.
            if let Err(e) = client.batch_execute("BEGIN").await {
                self.finish_all(&id, Status::Failed, Some(pg_message(&e)), started);
                return;
            }
        }
        let mut failure = self.run_subs(&ctx, &client, &st.subs).await;
        if req.is_batch {
            let end = if failure.is_some() {
                "ROLLBACK"
            } else {
                "COMMIT"
            };
            if let Err(e) = client.batch_execute(end).await {
                failure.get_or_insert((Status::Failed, pg_message(&e)));
            }
        }
        let elapsed = started.elapsed().as_nanos() as i64;
        self.update(&id, |s| {
            s.duration_ns = elapsed;
            match failure {
                None => s.status = Status::Finished,
                Some((status, e)) => {
                    s.status = status;
                    s.error = Some(e);
                }
            }
        });
        self.running.lock().unwrap().remove(&id);
    }

    /// Connects for statement `id` and marks it STARTED; `None` when it
    /// ended instead (cancelled, or no connection), which is then recorded.
    ///
    /// STARTED only once a cancel can reach the query: the cancel token is
    /// stored first, and a cancel that came while connecting is honoured
    /// here rather than lost.
    async fn start(
        &self,
        id: &str,
        st: &Statement,
        cancelled: &AtomicBool,
        started: Instant,
    ) -> Option<Client> {
        if cancelled.load(Ordering::SeqCst) {
            self.finish_all(id, Status::Aborted, None, started);
            return None;
        }
        let client = match self.open(&st.request, &st.generation).await {
            Ok(c) => c,
            Err(e) => {
                self.finish_all(id, Status::Failed, Some(e), started);
                return None;
            }
        };
        if let Some(r) = self.running.lock().unwrap().get_mut(id) {
            r.cancel = Some(client.cancel_token());
        }
        if cancelled.load(Ordering::SeqCst) {
            self.finish_all(id, Status::Aborted, None, started);
            return None;
        }
        self.update(id, |s| s.status = Status::Started);
        let pid: i64 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map(|r| r.get::<_, i32>(0).into())
            .unwrap_or(0);
        self.update(id, |s| s.pid = pid);
        Some(client)
    }

    /// Runs the statements of a request in order, recording each one's
    /// outcome; returns the first failure. Once one has failed (or the
    /// request was cancelled), the rest are ABORTED without running: in a
    /// batch they would be rolled back anyway.
    async fn run_subs(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        subs: &[Sub],
    ) -> Option<(Status, String)> {
        let id = ctx.statement_id;
        let mut failure: Option<(Status, String)> = None;
        for (i, sub) in subs.iter().enumerate() {
            if failure.is_some() {
                self.set_sub(id, i, Status::Aborted, None, -1, None, 0, 0);
                continue;
            }
            if ctx.cancelled.load(Ordering::SeqCst) {
                let e = "ERROR: Query cancelled on user's request".to_string();
                self.set_sub(id, i, Status::Aborted, Some(e.clone()), -1, None, 0, 0);
                failure = Some((Status::Aborted, e));
                continue;
            }
            self.set_sub(id, i, Status::Started, None, -1, None, 0, 0);
            let query_id = self.query_id();
            let t0 = Instant::now();
            let outcome = execute_one(ctx, client, &sub.sql, query_id).await;
            let dur = t0.elapsed().as_nanos() as i64;
            match outcome {
                Ok((rows, result)) => {
                    self.set_sub(id, i, Status::Finished, None, rows, result, query_id, dur)
                }
                Err(e) => {
                    let status = if ctx.cancelled.load(Ordering::SeqCst) {
                        Status::Aborted
                    } else {
                        Status::Failed
                    };
                    self.set_sub(id, i, status, Some(e.clone()), -1, None, query_id, dur);
                    failure = Some((status, e));
                }
            }
        }
        failure
    }

    async fn open(&self, req: &Request, generation: &str) -> Result<Client, String> {
        let db = self
            .pg
            .ensure_database(&req.target, &req.database, generation)
            .await
            .map_err(|e| format!("sandbox: cannot prepare database {}: {e}", req.database))?;
        self.pg.connect(&db).await.map_err(|e| pg_message(&e))
    }

    #[allow(clippy::too_many_arguments)]
    fn set_sub(
        &self,
        id: &str,
        i: usize,
        status: Status,
        error: Option<String>,
        rows: i64,
        result: Option<ResultData>,
        query_id: i64,
        duration_ns: i64,
    ) {
        self.update(id, |s| {
            if let Some(sub) = s.subs.get_mut(i) {
                sub.status = status;
                sub.error = error;
                sub.result_rows = rows;
                sub.result = result;
                if query_id != 0 {
                    sub.query_id = query_id;
                }
                sub.duration_ns = duration_ns;
                sub.updated_at = now();
            }
        });
    }

    fn finish_all(&self, id: &str, status: Status, error: Option<String>, started: Instant) {
        self.update(id, |s| {
            s.status = status;
            s.error = error.clone();
            s.duration_ns = started.elapsed().as_nanos() as i64;
            for sub in &mut s.subs {
                sub.status = status;
                sub.error = error.clone();
            }
        });
        self.running.lock().unwrap().remove(id);
    }
}

/// What one statement needs while it runs.
pub struct Context<'a> {
    /// The engine (for query ids, AWS and PostgreSQL).
    pub engine: &'a Engine,
    /// The request.
    pub request: &'a Request,
    /// Set when the statement is cancelled.
    pub cancelled: &'a AtomicBool,
    /// The statement id.
    pub statement_id: &'a str,
}

/// Runs one SQL statement; returns rows affected (or returned) and the rows.
async fn execute_one(
    ctx: &Context<'_>,
    client: &Client,
    sql: &str,
    query_id: i64,
) -> Result<(i64, Option<ResultData>), String> {
    let mut tokens = translate::tokenize(sql).map_err(|e| format!("ERROR: syntax error: {e}"))?;
    let sig = translate::significant(&tokens);
    let first = sig
        .first()
        .map(|t| t.text.to_ascii_lowercase())
        .unwrap_or_default();
    if first == "copy" {
        let copy_ctx = copy::CopyContext {
            aws: &ctx.engine.aws,
            pg: &ctx.engine.pg,
            target: &ctx.request.target,
            database: &ctx.request.database,
            db_user: ctx.request.db_user.as_deref(),
            cancelled: ctx.cancelled,
        };
        return copy::run(&copy_ctx, client, &tokens, query_id)
            .await
            .map(|n| (n, None));
    }
    if first == "unload" {
        return Err("ERROR: UNLOAD is not supported by the sandbox".into());
    }
    // One statement, with at most a trailing `;`.
    if sig
        .iter()
        .rev()
        .skip(1)
        .any(|t| t.kind == Kind::Punct && t.text == ";")
    {
        return Err(
            "ERROR: ExecuteStatement runs one statement; use BatchExecuteStatement for several"
                .into(),
        );
    }
    let params = to_postgres(ctx, &mut tokens)?;
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let pg_sql = translate::render(&tokens);
    let stmt = client.prepare(&pg_sql).await.map_err(|e| pg_message(&e))?;
    if stmt.columns().is_empty() {
        let n = client
            .execute(&stmt, &refs)
            .await
            .map_err(|e| pg_message(&e))?;
        return Ok((n as i64, None));
    }
    let rows = client
        .query(&stmt, &refs)
        .await
        .map_err(|e| pg_message(&e))?;
    let data = result_data(stmt.columns(), &rows)?;
    Ok((data.rows.len() as i64, Some(data)))
}

/// Makes a Redshift statement fit for PostgreSQL, in place: its
/// Redshift-only DDL translated (what was dropped is logged, not silently
/// lost) and its `:name` parameters numbered. Returns the parameters'
/// values in placeholder order; a name the request gave no value for is an
/// error, as in the Data API.
fn to_postgres(
    ctx: &Context<'_>,
    tokens: &mut Vec<translate::Token>,
) -> Result<Vec<TextParam>, String> {
    for note in translate::translate_ddl(tokens) {
        tracing::info!(
            "statement {}: {note} (Redshift-only, no effect on PostgreSQL)",
            ctx.statement_id
        );
    }
    let names = translate::number_params(tokens);
    let mut params = Vec::new();
    for name in &names {
        match ctx.request.params.iter().find(|(n, _)| n == name) {
            Some((_, v)) => params.push(TextParam(v.clone())),
            None => return Err(format!("ERROR: no value for parameter :{name}")),
        }
    }
    Ok(params)
}

/// A query's rows as the Data API returns them, their size counted as the
/// cells are read: a result past the service's 100 MB cap is an error, as
/// it is on the service, and the conversion stops at the row that passes it.
fn result_data(
    columns: &[tokio_postgres::Column],
    rows: &[tokio_postgres::Row],
) -> Result<ResultData, String> {
    let mut data = ResultData {
        columns: columns
            .iter()
            .map(|c| Column {
                name: c.name().to_string(),
                type_name: type_name(c.type_()),
            })
            .collect(),
        rows: Vec::with_capacity(rows.len()),
        size: 0,
    };
    for row in rows {
        let mut cells = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let cell: Cell = row.try_get(i).map_err(|e| format!("ERROR: {e}"))?;
            data.size += cell.size();
            cells.push(cell);
        }
        if data.size > MAX_RESULT_BYTES {
            return Err("ERROR: the query result exceeds the Data API's 100 MB limit".into());
        }
        data.rows.push(cells);
    }
    Ok(data)
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
