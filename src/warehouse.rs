//! Step 4's engine: running SQL through the Redshift Data API.
//!
//! The Data API is asynchronous: `ExecuteStatement` only *submits* SQL and
//! returns an id. The statement then moves SUBMITTED → PICKED → STARTED →
//! FINISHED (or FAILED / ABORTED), and results are fetched separately, a page
//! at a time. The SDK has waiters for clusters but none for statements, so
//! [`Warehouse`] waits with `DescribeStatement`'s long polling (the service
//! answers when the statement ends) up to a deadline, cancels what overruns,
//! and turns FAILED into an error that carries Redshift's own message.
//!
//! Two facts shape the code that uses this module:
//! - each `ExecuteStatement` is its own session, so temporary tables and
//!   `pg_last_copy_count()` do not carry over between calls; work that must
//!   share a transaction goes through [`Warehouse::batch`];
//! - `ResultRows` of a finished `COPY` is the number of rows it loaded, so no
//!   second query is needed to learn it.

use std::fmt;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::types::Field;

use crate::error::{Error, Result};
use crate::report::{Activity, Quiet};
use crate::wait::{Poll, wait_until};

/// Where the SQL runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A provisioned cluster, connecting as `db_user` with temporary
    /// credentials (`redshift:GetClusterCredentials`): no password needed.
    Cluster {
        /// The cluster identifier.
        identifier: String,
        /// The database.
        database: String,
        /// The database user.
        db_user: String,
    },
    /// A Redshift Serverless workgroup, connecting as the caller's IAM identity.
    Workgroup {
        /// The workgroup's name.
        name: String,
        /// The database.
        database: String,
    },
}

impl fmt::Display for Target {
    /// `cluster <id>, database <db>` or `workgroup <name>, database <db>`, as
    /// error messages name the target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Cluster {
                identifier,
                database,
                ..
            } => write!(f, "cluster {identifier}, database {database}"),
            Target::Workgroup { name, database } => {
                write!(f, "workgroup {name}, database {database}")
            }
        }
    }
}

/// How statements are waited on: [`Polling::default`] starts at 10 ms and
/// grows to 1 s, for at most 15 minutes (the one pacing type, shared with
/// the cluster waits, lives in [`crate::wait`]).
pub use crate::wait::Polling;

/// A finished statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The Data API's statement id (for a batch, its sub-statement's id).
    pub id: String,
    /// Rows affected; for `COPY`, the rows loaded.
    pub result_rows: i64,
    /// Whether it produced rows to fetch.
    pub has_result_set: bool,
    /// Redshift's own query id (`query_id` in the `SYS_*` views).
    pub query_id: i64,
}

/// One value of a result row, typed as the Data API sends it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Integers of every width.
    Long(i64),
    /// Floating point.
    Double(f64),
    /// Text, and what the API sends as text: DECIMAL, dates, timestamps.
    Text(String),
    /// BOOLEAN.
    Bool(bool),
    /// Binary data.
    Blob(Vec<u8>),
}

impl Value {
    /// The value of one field of a Data API record.
    pub fn from_field(f: &Field) -> Self {
        match f {
            Field::IsNull(true) => Value::Null,
            Field::LongValue(v) => Value::Long(*v),
            Field::DoubleValue(v) => Value::Double(*v),
            Field::StringValue(v) => Value::Text(v.clone()),
            Field::BooleanValue(v) => Value::Bool(*v),
            Field::BlobValue(b) => Value::Blob(b.as_ref().to_vec()),
            // `IsNull(false)` and unknown variants carry no value we can use.
            _ => Value::Null,
        }
    }

    /// The value as an integer, if it is one (or text holding one, as
    /// DECIMAL results are).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Long(v) => Some(*v),
            Value::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Long(v) => write!(f, "{v}"),
            Value::Double(v) => write!(f, "{v}"),
            Value::Text(v) => f.write_str(v),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Blob(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

/// A whole result: column names and types, and every row of every page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultSet {
    /// `(name, type)` of each column, e.g. `("id", "int4")`.
    pub columns: Vec<(String, String)>,
    /// The rows.
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// The first column of the first row as an integer (`SELECT COUNT(*)`).
    pub fn scalar_i64(&self) -> Option<i64> {
        self.rows.first()?.first()?.as_i64()
    }
}

impl fmt::Display for ResultSet {
    /// A plain aligned table, as `psql` prints one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(ToString::to_string).collect())
            .collect();
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|(n, _)| n.chars().count())
            .collect();
        for row in &cells {
            for (i, c) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, vals: Vec<&str>| -> fmt::Result {
            let parts: Vec<String> = vals
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            writeln!(f, " {}", parts.join(" | ").trim_end())
        };
        line(f, self.columns.iter().map(|(n, _)| n.as_str()).collect())?;
        let sep: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(f, "-{}-", sep.join("-+-"))?;
        for row in &cells {
            line(f, row.iter().map(String::as_str).collect())?;
        }
        write!(
            f,
            "({} row{})",
            self.rows.len(),
            if self.rows.len() == 1 { "" } else { "s" }
        )
    }
}

/// Points a Data API request at `target`. A macro because the SDK's request
/// builders share these setters but no trait.
macro_rules! at_target {
    ($req:expr, $target:expr) => {
        match $target {
            Target::Cluster {
                identifier,
                database,
                db_user,
            } => $req
                .cluster_identifier(identifier)
                .database(database)
                .db_user(db_user),
            Target::Workgroup { name, database } => $req.workgroup_name(name).database(database),
        }
    };
}

/// A Redshift database reached through the Data API.
#[derive(Clone, Debug)]
pub struct Warehouse {
    client: Client,
    target: Target,
    polling: Polling,
    activity: Activity,
}

/// Shortens SQL for messages: one line, at most 300 characters.
pub fn brief(sql: &str) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        format!("{}…", one_line.chars().take(300).collect::<String>())
    } else {
        one_line
    }
}

impl Warehouse {
    /// A warehouse for `target`, with default [`Polling`].
    pub fn new(client: Client, target: Target) -> Self {
        Self {
            client,
            target,
            polling: Polling::default(),
            activity: Activity::default(),
        }
    }

    /// Records each statement waited on in `activity`, so that whoever
    /// interrupts the run can cancel it.
    pub fn with_activity(mut self, activity: Activity) -> Self {
        self.activity = activity;
        self
    }

    /// Replaces the polling settings.
    pub fn with_polling(mut self, polling: Polling) -> Self {
        self.polling = polling;
        self
    }

    /// Where the SQL runs.
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn resource(&self) -> String {
        self.target.to_string()
    }

    /// Runs one statement and waits for it to finish.
    pub async fn execute(&self, sql: &str) -> Result<Finished> {
        self.execute_with(sql, &[]).await
    }

    /// Runs one statement with named parameters (`:name` in the SQL), which
    /// the service binds; values are sent as strings, never pasted into SQL.
    pub async fn execute_with(&self, sql: &str, params: &[(&str, &str)]) -> Result<Finished> {
        let id = execute_statement(&self.client, &self.target, sql, params).await?;
        let done = self.wait(&id, sql).await?;
        Ok(Finished {
            id,
            result_rows: done.result_rows(),
            has_result_set: done.has_result_set().unwrap_or(false),
            query_id: done.redshift_query_id(),
        })
    }

    /// Runs `sqls` as one batch: one transaction, all or nothing, as Redshift
    /// runs a `BatchExecuteStatement`. Returns each sub-statement's result.
    pub async fn batch(&self, sqls: &[String]) -> Result<Vec<Finished>> {
        let id = batch_execute_statement(&self.client, &self.target, sqls).await?;
        let all = sqls.join("; ");
        let done = self.wait(&id, &all).await?;
        Ok(done
            .sub_statements()
            .iter()
            .map(|s| Finished {
                id: s.id().to_string(),
                result_rows: s.result_rows(),
                has_result_set: s.has_result_set().unwrap_or(false),
                query_id: s.redshift_query_id(),
            })
            .collect())
    }

    /// The user tables in the database, as `schema.table`, every page of the
    /// Data API's `ListTables` (system schemas left out). A catalogue call:
    /// no SQL runs, so it works without any privilege on the tables.
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        let req = at_target!(
            self.client
                .list_tables()
                .schema_pattern("%")
                .table_pattern("%"),
            &self.target
        );
        let mut pages = req.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| Error::aws("Redshift Data API", "ListTables", self.resource(), e))?;
            for t in page.tables() {
                let schema = t.schema().unwrap_or_default();
                let system = schema.starts_with("pg_") || schema == "information_schema";
                if !system && t.r#type().is_none_or(|ty| ty == "TABLE") {
                    out.push(format!("{schema}.{}", t.name().unwrap_or_default()));
                }
            }
        }
        Ok(out)
    }

    /// Runs a query and fetches every page of its result.
    pub async fn query(&self, sql: &str) -> Result<ResultSet> {
        self.query_with(sql, &[]).await
    }

    /// [`Warehouse::query`] with named parameters.
    pub async fn query_with(&self, sql: &str, params: &[(&str, &str)]) -> Result<ResultSet> {
        let done = self.execute_with(sql, params).await?;
        if !done.has_result_set {
            return Ok(ResultSet::default());
        }
        self.fetch(&done.id).await
    }

    /// Fetches every page of a finished statement's result.
    pub async fn fetch(&self, id: &str) -> Result<ResultSet> {
        get_statement_result(&self.client, id).await
    }

    /// Polls until the statement ends; cancels it past the deadline.
    async fn wait(&self, id: &str, sql: &str) -> Result<DescribeStatementOutput> {
        // Set before the first poll and cleared only when the statement has
        // ended: if this future is dropped half-way (Ctrl-C), the record
        // still names the statement to cancel.
        self.activity.statement(Some((id, &brief(sql))));
        let result = wait_for_statement(&self.client, id, sql, &self.polling).await;
        self.activity.statement(None);
        result
    }
}

/// A token no other request of this process (or, in practice, any other)
/// uses: the time, the process and a counter. The Data API runs a request
/// whose token it has seen only once, so an SDK retry cannot run SQL twice.
pub fn client_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SENT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = SENT.fetch_add(1, Ordering::Relaxed);
    format!("s2r-{nanos:x}-{}-{n}", std::process::id())
}

// ANCHOR: execute_statement
/// Submits `sql` to the Data API and returns the statement's id.
///
/// The call returns as soon as the statement is *submitted*: it has not run
/// yet, and may still fail. [`wait_for_statement`] learns how it ended.
/// Values go in `params` (`:name` in the SQL); the service binds them, so no
/// value can change what the statement means.
pub async fn execute_statement(
    data: &aws_sdk_redshiftdata::Client,
    target: &Target,
    sql: &str,
    params: &[(&str, &str)],
) -> Result<String> {
    // The token makes the call idempotent: if the SDK retries it after a
    // dropped connection, the service returns the statement it already
    // started rather than running the SQL twice.
    let req = data
        .execute_statement()
        .sql(sql)
        .client_token(client_token());
    // A cluster is named with a database user, whose temporary credentials
    // the Data API fetches itself: no password travels. A Serverless
    // workgroup runs the SQL as the caller's IAM identity.
    let mut req = match target {
        Target::Cluster {
            identifier,
            database,
            db_user,
        } => req
            .cluster_identifier(identifier)
            .database(database)
            .db_user(db_user),
        Target::Workgroup { name, database } => req.workgroup_name(name).database(database),
    };
    for (name, value) in params {
        let param = aws_sdk_redshiftdata::types::SqlParameter::builder()
            .name(*name)
            .value(*value)
            .build()
            .expect("name and value are set");
        req = req.parameters(param);
    }
    let out = req.send().await.map_err(|e| {
        Error::aws(
            "Redshift Data API",
            "ExecuteStatement",
            target.to_string(),
            e,
        )
    })?;
    out.id.ok_or_else(|| Error::Aws {
        service: "Redshift Data API",
        operation: "ExecuteStatement",
        resource: target.to_string(),
        code: None,
        message: "the reply held no statement id".into(),
    })
}
// ANCHOR_END: execute_statement

// ANCHOR: batch_execute_statement
/// Submits `sqls` as one batch and returns the batch's id. Redshift runs
/// them in order in one transaction: all of them take effect, or none.
/// [`wait_for_statement`] waits for the batch; its `sub_statements` tell
/// each statement's rows.
pub async fn batch_execute_statement(
    data: &aws_sdk_redshiftdata::Client,
    target: &Target,
    sqls: &[String],
) -> Result<String> {
    // Idempotent, as in `execute_statement`: a retried batch (say, the
    // load's swap) must not run twice.
    let req = data
        .batch_execute_statement()
        .set_sqls(Some(sqls.to_vec()))
        .client_token(client_token());
    let req = match target {
        Target::Cluster {
            identifier,
            database,
            db_user,
        } => req
            .cluster_identifier(identifier)
            .database(database)
            .db_user(db_user),
        Target::Workgroup { name, database } => req.workgroup_name(name).database(database),
    };
    let out = req.send().await.map_err(|e| {
        let resource = target.to_string();
        Error::aws("Redshift Data API", "BatchExecuteStatement", resource, e)
    })?;
    out.id.ok_or_else(|| Error::Aws {
        service: "Redshift Data API",
        operation: "BatchExecuteStatement",
        resource: target.to_string(),
        code: None,
        message: "the reply held no statement id".into(),
    })
}
// ANCHOR_END: batch_execute_statement

// ANCHOR: wait_for_statement
/// Waits for statement `id` to end with `DescribeStatement`'s long polling
/// (`WaitTimeSeconds`: the service answers as soon as the statement ends, or
/// after the wait with its running status); FAILED and ABORTED become errors
/// carrying Redshift's message, and a statement still running after
/// `polling.timeout` is cancelled.
///
/// Why a loop still: one long poll waits at most 30 seconds, and a `COPY`
/// can run for minutes. Between two polls it sleeps `polling`'s short
/// delay, which also paces it should a service answer without waiting.
pub async fn wait_for_statement(
    data: &aws_sdk_redshiftdata::Client,
    id: &str,
    sql: &str,
    polling: &Polling,
) -> Result<aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput> {
    use aws_sdk_redshiftdata::types::StatusString;
    let what = format!("SQL statement {id} ({})", brief(sql));
    let hint = "it was cancelled; raise [LOAD] STATEMENT_TIMEOUT_SECS if it needs longer";
    let started = tokio::time::Instant::now();
    let done = wait_until(&what, polling, hint, &Quiet, async || {
        // Each poll waits up to 10 s (the service takes 1 to 30), never
        // past the deadline: progress still shows every few seconds.
        let left = polling.timeout.saturating_sub(started.elapsed()).as_secs();
        let d = data
            .describe_statement()
            .id(id)
            .wait_time_seconds(left.clamp(1, 10) as i32)
            .send()
            .await
            .map_err(|e| Error::aws("Redshift Data API", "DescribeStatement", id, e))?;
        match d.status() {
            Some(StatusString::Finished) => Ok(Poll::Ready(d)),
            Some(StatusString::Failed) => Err(statement_failed(&d, id, sql)),
            Some(StatusString::Aborted) => Err(Error::StatementAborted {
                id: id.to_string(),
                sql: brief(sql),
            }),
            other => Ok(Poll::Pending(other.map_or("?", |s| s.as_str()).to_string())),
        }
    })
    .await;
    if let Err(Error::Timeout { .. }) = &done {
        // Cancel so an abandoned statement does not hold locks or keep
        // loading behind the user's back.
        if let Err(e) = data.cancel_statement().id(id).send().await {
            tracing::warn!(
                "could not cancel statement {id}: {}",
                aws_sdk_redshiftdata::error::DisplayErrorContext(&e)
            );
        }
    }
    done
}

/// The error for a FAILED statement, with Redshift's message; in a batch,
/// it names the sub-statement that failed.
fn statement_failed(
    d: &aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput,
    id: &str,
    sql: &str,
) -> Error {
    use aws_sdk_redshiftdata::types::StatementStatusString;
    let failed = d
        .sub_statements()
        .iter()
        .find(|s| s.status() == Some(&StatementStatusString::Failed));
    let (sub_id, sub_sql, message, query_id) = match failed {
        Some(s) => (
            s.id().to_string(),
            s.query_string().unwrap_or(sql).to_string(),
            s.error().or(d.error()).unwrap_or("no message").to_string(),
            s.redshift_query_id(),
        ),
        None => (
            id.to_string(),
            sql.to_string(),
            d.error().unwrap_or("no message").to_string(),
            d.redshift_query_id(),
        ),
    };
    Error::StatementFailed {
        id: sub_id,
        sql: brief(&sub_sql),
        message,
        query_id,
        load_errors: Default::default(),
    }
}
// ANCHOR_END: wait_for_statement

// ANCHOR: get_statement_result
/// Fetches every page of finished statement `id`'s result, each value typed
/// as the Data API sends it.
pub async fn get_statement_result(
    data: &aws_sdk_redshiftdata::Client,
    id: &str,
) -> Result<ResultSet> {
    let mut set = ResultSet::default();
    let mut token: Option<String> = None;
    loop {
        let out = data
            .get_statement_result()
            .id(id)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| Error::aws("Redshift Data API", "GetStatementResult", id, e))?;
        if set.columns.is_empty() {
            set.columns = out
                .column_metadata()
                .iter()
                .map(|c| {
                    let name = c.name().unwrap_or_default().to_string();
                    (name, c.type_name().unwrap_or_default().to_string())
                })
                .collect();
        }
        let rows = out.records().iter();
        set.rows
            .extend(rows.map(|r| r.iter().map(Value::from_field).collect()));
        // The last page has no token (the sandbox and some SDKs send "").
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(set),
        }
    }
}
// ANCHOR_END: get_statement_result
