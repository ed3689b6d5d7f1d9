//! Running a submitted statement: wait for a connection slot, open the
//! database, run each SQL statement (a batch in one transaction), and record
//! every step where `DescribeStatement` sees it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio_postgres::Client;

use super::{
    Column, Engine, ExecutionMode, MAX_RESULT_BYTES, Request, ResultData, Statement, Status, Sub,
    lock, now,
};
use crate::pg::{Cell, TextParam, pg_message, type_name};
use crate::translate::{self, Kind};
use crate::{copy, dialect, unload};

impl Engine {
    /// Runs a submitted statement to its end, and records how it ended.
    pub(super) async fn run(self: Arc<Self>, id: String) {
        let started = Instant::now();
        // Held until the statement ends: the permits bound the PostgreSQL
        // connections open at once. The semaphore is never closed.
        let Ok(_permit) = self.permits.acquire().await else {
            return;
        };
        let cancelled = self.cancelled(&id);
        let Ok(st) = self.get(&id) else {
            return;
        };
        let Some(client) = self.start(&id, &st, &cancelled, started).await else {
            self.release_session(&id, None);
            return;
        };
        let req = &st.request;
        let ctx = Context {
            engine: &self,
            request: req,
            cancelled: &cancelled,
            statement_id: &id,
        };
        // A batch is one transaction, all or nothing, as in Redshift; unless
        // it asked for AUTO_COMMIT, where each statement commits alone.
        let transaction = req.is_batch && req.execution_mode == ExecutionMode::Transaction;
        if transaction && let Err(e) = client.batch_execute("BEGIN").await {
            self.finish_all(&id, Status::Failed, Some(pg_message(&e)), started);
            self.release_session(&id, Some(client));
            return;
        }
        let mut failure = self.run_subs(&ctx, &client, &st.subs).await;
        if transaction {
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
        // The history readers query (`sys_query_history`, `stl_query`),
        // written after the transaction ends so a rollback keeps it.
        if let Ok(done) = self.get(&id)
            && let Err(e) = record_history(&client, &done).await
        {
            tracing::warn!("statement {id}: could not record it in sys_query_history: {e}");
        }
        lock(&self.running).remove(&id);
        self.release_session(&id, Some(client));
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
        // A statement in a session runs on the session's connection, once
        // it has one (its first statement opens it).
        let held = st
            .session_id
            .as_deref()
            .and_then(|s| self.session_connection(s));
        let client = match held {
            Some(c) => c,
            None => match self.open(&st.request, &st.generation).await {
                Ok(c) => c,
                Err(e) => {
                    self.finish_all(id, Status::Failed, Some(e), started);
                    return None;
                }
            },
        };
        if let Some(r) = lock(&self.running).get_mut(id) {
            r.cancel = Some(client.cancel_token());
        }
        if cancelled.load(Ordering::SeqCst) {
            self.finish_all(id, Status::Aborted, None, started);
            // A session's connection goes back to it, unused.
            self.release_session(id, Some(client));
            return None;
        }
        self.update(id, |s| s.status = Status::Started);
        // In the same round trip: who and where, as the request named them,
        // for CURRENT_USER, CURRENT_DATABASE() and PG_USER.
        let user = st.request.db_user.as_deref().unwrap_or("awsuser");
        let pid: i64 = client
            .query_one(
                // pg_catalog's own: a user may define a `public.pg_backend_pid`.
                "SELECT pg_catalog.pg_backend_pid(), \
                 pg_catalog.set_config('sandbox.db_user', $1, false), \
                 pg_catalog.set_config('sandbox.database', $2, false)",
                &[&user, &st.request.database],
            )
            .await
            .ok()
            .and_then(|r| r.try_get::<_, i32>(0).ok())
            .map_or(0, i64::from);
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
        let auto_commit = ctx.request.execution_mode == ExecutionMode::AutoCommit;
        let mut failure: Option<(Status, String)> = None;
        for (i, sub) in subs.iter().enumerate() {
            // In AUTO_COMMIT a failure leaves the other statements be: they
            // still run. A cancel stops them all.
            let cancelled = matches!(failure, Some((Status::Aborted, _)));
            if failure.is_some() && (!auto_commit || cancelled) {
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
                    // The first failure is the statement's; a cancel wins.
                    if failure.is_none() || status == Status::Aborted {
                        failure = Some((status, e));
                    }
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
            .map_err(|e| {
                // The driver's own text is only "db error": say what the
                // server said.
                let e = match e.downcast_ref::<tokio_postgres::Error>() {
                    Some(pg) => crate::pg::pg_message(pg),
                    None => e.to_string(),
                };
                format!("sandbox: cannot prepare database {}: {e}", req.database)
            })?;
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
                sub.result = result.map(Arc::new);
                if query_id != 0 {
                    sub.query_id = query_id;
                }
                sub.duration_ns = duration_ns;
                sub.updated_at = now();
            }
        });
    }

    pub(super) fn finish_all(
        &self,
        id: &str,
        status: Status,
        error: Option<String>,
        started: Instant,
    ) {
        self.update(id, |s| {
            s.status = status;
            s.error = error.clone();
            s.duration_ns = started.elapsed().as_nanos() as i64;
            for sub in &mut s.subs {
                sub.status = status;
                sub.error = error.clone();
            }
        });
        lock(&self.running).remove(id);
        self.changed.notify_waiters();
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
    // COPY and UNLOAD move data between S3 and the table; they get only
    // what they use of the engine, and never pass through the dialect layer.
    if first == "copy" || first == "unload" {
        let copy_ctx = copy::CopyContext {
            aws: &ctx.engine.aws,
            pg: &ctx.engine.pg,
            target: &ctx.request.target,
            database: &ctx.request.database,
            db_user: ctx.request.db_user.as_deref(),
            cancelled: ctx.cancelled,
        };
        let rows = match first.as_str() {
            "copy" => copy::run(&copy_ctx, client, &tokens, query_id).await,
            _ => unload::run(&copy_ctx, client, &tokens).await,
        };
        return rows.map(|n| (n, None));
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
    // Read before the translation drops it: what the DDL says of the
    // table's distribution, sort key and encodings.
    let design = translate::table_design(&tokens);
    let params = to_postgres(ctx, &mut tokens)?;
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let pg_sql = translate::render(&tokens);
    let stmt = client
        .prepare(&pg_sql)
        .await
        .map_err(|e| dialect::unsupported(&e).unwrap_or_else(|| pg_message(&e)))?;
    if stmt.columns().is_empty() {
        let n = client
            .execute(&stmt, &refs)
            .await
            .map_err(|e| pg_message(&e))?;
        // The table is made: a design that cannot be recorded is only
        // missing from the catalogue views, not a failed statement.
        if let Some(d) = design
            && let Err(e) = record_design(client, &d).await
        {
            tracing::warn!(
                "could not record the design of {}: {}",
                d.table,
                pg_message(&e)
            );
        }
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
    for note in dialect::rewrite(tokens)? {
        tracing::info!("statement {}: {note}", ctx.statement_id);
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

/// Keeps a new table's design (`translate::TableDesign`) in
/// `sandbox_sys.table_design`, keyed by the table's oid, in the statement's
/// own transaction: the catalogue views read it.
async fn record_design(
    client: &Client,
    d: &translate::TableDesign,
) -> Result<(), tokio_postgres::Error> {
    let (enc_columns, enc_types): (Vec<&str>, Vec<&str>) = d
        .encodings
        .iter()
        .map(|(c, e)| (c.as_str(), e.as_str()))
        .unzip();
    client
        .execute(
            "INSERT INTO sandbox_sys.table_design \
             SELECT pg_catalog.to_regclass($1)::oid, $2, $3, $4, $5, $6, $7 \
             WHERE pg_catalog.to_regclass($1) IS NOT NULL",
            &[
                &d.table,
                &d.diststyle,
                &d.distkey,
                &d.sortkeys,
                &d.interleaved,
                &enc_columns,
                &enc_types,
            ],
        )
        .await?;
    Ok(())
}

/// One row per statement run in `sandbox_sys.sys_query_history`, the table
/// behind the `sys_query_history` and `stl_query` views.
async fn record_history(client: &Client, st: &Statement) -> Result<(), tokio_postgres::Error> {
    for sub in st.subs.iter().filter(|s| s.query_id > 0) {
        let status = match sub.status {
            Status::Finished => "success",
            Status::Aborted => "canceled",
            _ => "failed",
        };
        let elapsed_us = sub.duration_ns / 1000;
        let rows = sub.result_rows.max(0);
        let user = st
            .request
            .db_user
            .clone()
            .unwrap_or_else(|| "awsuser".into());
        client
            .execute(
                "INSERT INTO sandbox_sys.sys_query_history (query_id, user_name, query_text, \
                 status, start_time, end_time, elapsed_time, returned_rows, error_message) \
                 VALUES ($1, $2, $3, $4, pg_catalog.to_timestamp($5) AT TIME ZONE 'UTC', \
                 pg_catalog.to_timestamp($6) AT TIME ZONE 'UTC', $7, $8, $9)",
                &[
                    &sub.query_id,
                    &user,
                    &sub.sql,
                    &status,
                    &(sub.updated_at - sub.duration_ns as f64 / 1e9),
                    &sub.updated_at,
                    &elapsed_us,
                    &rows,
                    &sub.error.clone().unwrap_or_default(),
                ],
            )
            .await?;
    }
    Ok(())
}
