//! The Redshift Data API's wire protocol: JSON 1.1 over HTTP POST, the
//! operation named by `X-Amz-Target: RedshiftData.<Operation>`, errors as a
//! `__type` and a `message`. This is all the unmodified
//! `aws-sdk-redshiftdata` client needs to talk to the sandbox.
//!
//! Requests are not authenticated (the sandbox stands in for AWS on the
//! reader's own machine), so every one is treated as hostile: the caller
//! must have addressed the sandbox by its own address ([`guard`]), every
//! field is checked against the service's model before use ([`fields`]),
//! and a request that panics the handler gets an `InternalServerException`
//! rather than a closed connection.
//!
//! # Layout
//! - this file: the router, the errors, and the statements' operations
//!   (execute, describe, list, cancel) and sessions;
//! - [`fields`]: reading and checking each field;
//! - [`guard`]: the `Host` and `Origin` checks;
//! - `results`: `GetStatementResult` and `…V2`, pages of a stored result;
//! - `catalog`: `ListDatabases`, `ListSchemas`, `ListTables`, `DescribeTable`.

mod catalog;
pub mod fields;
pub mod guard;
mod results;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::FutureExt;
use serde_json::{Map, Value, json};

use crate::engine::{
    Engine, ExecutionMode, Rejected, Request, SessionStatus, SessionUse, Statement, Sub,
};
use crate::pg::Target;
use fields::Fields;
use guard::Guard;

/// Rows per page of `GetStatementResult`.
pub const PAGE_ROWS: usize = 1000;

/// What every request's handler shares.
struct Api {
    engine: Arc<Engine>,
    guard: Guard,
}

/// The HTTP routes of a sandbox listening on `listen` (the address its
/// callers must name in `Host`).
pub fn router(engine: Arc<Engine>, listen: SocketAddr) -> Router {
    let api = Arc::new(Api {
        engine,
        guard: Guard::new(listen),
    });
    Router::new().route("/", post(handle)).with_state(api)
}

/// An error in the service's shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    fn serialization(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "SerializationException", message)
    }
}

impl From<Rejected> for ApiError {
    fn from(r: Rejected) -> Self {
        match r {
            Rejected::Validation(m) => ApiError::validation(m),
            Rejected::NotFound(m) => {
                Self::new(StatusCode::BAD_REQUEST, "ResourceNotFoundException", m)
            }
            Rejected::ActiveSessionsExceeded(m) => Self::new(
                StatusCode::BAD_REQUEST,
                "ActiveSessionsExceededException",
                m,
            ),
            Rejected::Internal(m) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                m,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            json_body(&json!({"__type": self.kind, "message": self.message})),
        )
            .into_response();
        resp.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        resp
    }
}

fn json_body(v: &Value) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "application/x-amz-json-1.1")],
        v.to_string(),
    )
}

async fn handle(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(why) = api.guard.refuse(&headers) {
        tracing::warn!("refused a request: {why}");
        return ApiError::new(StatusCode::FORBIDDEN, "AccessDeniedException", why).into_response();
    }
    // A bug that panics while answering must cost one request an error,
    // not the caller its connection.
    let answer = AssertUnwindSafe(answer(&api.engine, &headers, &body))
        .catch_unwind()
        .await;
    match answer {
        Ok(Ok(v)) => (StatusCode::OK, json_body(&v)).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(_) => {
            tracing::error!("a request panicked the handler");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "the sandbox failed answering this request (an internal error; please report it)",
            )
            .into_response()
        }
    }
}

async fn answer(
    engine: &Arc<Engine>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Value, ApiError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(op) = target.strip_prefix("RedshiftData.") else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!(
                "unknown target '{}'",
                target.chars().take(100).collect::<String>()
            ),
        ));
    };
    // One line per request at debug level: how scripts/bench-pipeline.sh
    // counts the Data API requests a load makes, as the service sees them.
    tracing::debug!(op, "request");
    let input: Map<String, Value> = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(ApiError::serialization(
                    "the request body must be a JSON object",
                ));
            }
            Err(e) => {
                return Err(ApiError::serialization(format!(
                    "the request body is not valid JSON: {e}"
                )));
            }
        }
    };
    let f = Fields(&input);
    match op {
        "ExecuteStatement" => execute(engine, &f, false).await,
        "BatchExecuteStatement" => execute(engine, &f, true).await,
        "DescribeStatement" => describe(engine, &f).await,
        "GetStatementResult" => results::get_result(engine, &f, false).await,
        "GetStatementResultV2" => results::get_result(engine, &f, true).await,
        "ListStatements" => list_statements(engine, &f),
        "CancelStatement" => cancel(engine, &f).await,
        "ListSessions" => list_sessions(engine, &f),
        "ListDatabases" => catalog::list_databases(engine, &f).await,
        "ListSchemas" => catalog::catalog(engine, &f, catalog::Catalog::Schemas).await,
        "ListTables" => catalog::catalog(engine, &f, catalog::Catalog::Tables).await,
        "DescribeTable" => catalog::catalog(engine, &f, catalog::Catalog::Describe).await,
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!(
                "the sandbox does not implement {}",
                other.chars().take(100).collect::<String>()
            ),
        )),
    }
}

/// Names `target` in a reply, as the service does: `ClusterIdentifier` or
/// `WorkgroupName`.
fn put_target(v: &mut Value, target: &Target) {
    match target {
        Target::Cluster(c) => v["ClusterIdentifier"] = json!(c),
        Target::Workgroup(w) => v["WorkgroupName"] = json!(w),
    }
}

/// The target a request names: a cluster or a workgroup, not both.
fn target_of(f: &Fields) -> Result<Option<Target>, ApiError> {
    match (f.cluster_identifier()?, f.workgroup_name()?) {
        (Some(c), None) => Ok(Some(Target::Cluster(c.to_string()))),
        (None, Some(w)) => Ok(Some(Target::Workgroup(w))),
        (Some(_), Some(_)) => Err(ApiError::validation(
            "Specify either ClusterIdentifier or WorkgroupName, not both",
        )),
        (None, None) => Ok(None),
    }
}

fn required_target(f: &Fields) -> Result<Target, ApiError> {
    target_of(f)?.ok_or_else(|| {
        ApiError::validation("Either ClusterIdentifier or WorkgroupName is required")
    })
}

/// `WaitTimeSeconds`, 1 to 30, if given.
fn wait_time(f: &Fields) -> Result<Option<Duration>, ApiError> {
    Ok(f.int("WaitTimeSeconds", 1, 30)?
        .map(|s| Duration::from_secs(s.unsigned_abs())))
}

/// The request an `ExecuteStatement` or `BatchExecuteStatement` makes,
/// every field checked.
fn statement_request(f: &Fields, batch: bool) -> Result<Request, ApiError> {
    let session_id = f.uuid("SessionId")?;
    let keep_alive = f
        .int("SessionKeepAliveSeconds", 0, 86_400)?
        .map(|k| k as u32);
    let target = target_of(f)?;
    let database = f.database("Database")?;
    // With a SessionId the session names the target and database.
    let (target, database) = match (session_id, target, database) {
        (Some(_), t, d) => (
            t.unwrap_or(Target::Cluster(String::new())),
            d.unwrap_or_default().to_string(),
        ),
        (None, Some(t), Some(d)) => (t, d.to_string()),
        (None, None, _) => {
            return Err(ApiError::validation(
                "Either ClusterIdentifier or WorkgroupName (or a SessionId) is required",
            ));
        }
        (None, Some(_), None) => {
            return Err(fields::missing("Database"));
        }
    };
    let sqls: Vec<String> = if batch {
        f.strings("Sqls", 1, 40)?
            .ok_or_else(|| fields::missing("Sqls"))?
            .into_iter()
            .map(str::to_string)
            .collect()
    } else {
        vec![f.required("Sql")?.to_string()]
    };
    for sql in &sqls {
        Fields::sql_text(if batch { "Sqls" } else { "Sql" }, sql)?;
    }
    let params = parameters(f, batch)?;
    // Only BatchExecuteStatement has an ExecutionMode.
    let execution_mode = match batch {
        true => match f.choice("ExecutionMode", &["TRANSACTION", "AUTO_COMMIT"])? {
            Some("AUTO_COMMIT") => ExecutionMode::AutoCommit,
            _ => ExecutionMode::Transaction,
        },
        false => ExecutionMode::Transaction,
    };
    f.choice("ResultFormat", &["JSON", "CSV"])?;
    f.bool("WithEvent")?;
    if f.string("SecretArn")?.is_some() {
        return Err(ApiError::validation(
            "the sandbox does not read Secrets Manager: give a DbUser (temporary credentials) instead of a SecretArn",
        ));
    }
    let session = match (session_id, keep_alive) {
        (Some(id), k) => SessionUse::Existing {
            id: id.to_string(),
            keep_alive: k,
        },
        (None, Some(k)) if k > 0 => SessionUse::New { keep_alive: k },
        (None, _) => SessionUse::None,
    };
    Ok(Request {
        target,
        database,
        db_user: f.db_user()?.map(str::to_string),
        sqls,
        is_batch: batch,
        params,
        statement_name: f.sized("StatementName", 0, 2048)?.map(str::to_string),
        client_token: f.sized("ClientToken", 1, 64)?.map(str::to_string),
        session,
        execution_mode,
    })
}

/// `Parameters`: `name` of `[0-9a-zA-Z_]+`, a `value` of one character or
/// more; on `BatchExecuteStatement` too, shared by its statements.
fn parameters(f: &Fields, batch: bool) -> Result<Vec<(String, String)>, ApiError> {
    let list = match f.0.get("Parameters") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiError::serialization("Parameters must be a list")),
    };
    if list.is_empty() {
        return Err(ApiError::validation(
            "Parameters must hold at least one parameter (leave it out for none)",
        ));
    }
    if batch {
        return Err(ApiError::validation(
            "the sandbox does not take Parameters on BatchExecuteStatement yet",
        ));
    }
    list.iter()
        .map(|p| {
            let p = p
                .as_object()
                .ok_or_else(|| ApiError::serialization("each parameter must be an object"))?;
            let pf = Fields(p);
            let name = pf.required("name")?;
            let value = pf.required("value")?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ApiError::validation(format!(
                    "parameter name {:?} must match [0-9a-zA-Z_]+",
                    name.chars().take(64).collect::<String>()
                )));
            }
            if value.is_empty() {
                return Err(ApiError::validation(format!(
                    "parameter {name} needs a value of at least one character"
                )));
            }
            Ok((name.to_string(), value.to_string()))
        })
        .collect()
}

async fn execute(engine: &Arc<Engine>, f: &Fields<'_>, batch: bool) -> Result<Value, ApiError> {
    let request = statement_request(f, batch)?;
    let wait = wait_time(f)?;
    let st = engine.submit(request).await?;
    let mut out = json!({
        "Id": st.id,
        "CreatedAt": st.created_at,
        "Database": st.request.database,
    });
    put_target(&mut out, &st.request.target);
    if let Some(u) = &st.request.db_user {
        out["DbUser"] = json!(u);
    }
    if let Some(s) = &st.session_id {
        out["SessionId"] = json!(s);
    }
    // Long polling: answer once the statement ends or the wait runs out,
    // with its status then.
    if let Some(wait) = wait {
        let now = engine.wait_for(&st.id, wait).await?;
        out["Status"] = json!(now.status.as_str());
        out["RedshiftPid"] = json!(now.pid);
        let has_result = now.subs.iter().any(|s| s.result.is_some()) && !now.request.is_batch;
        out["HasResultSet"] = json!(has_result);
    }
    Ok(out)
}

fn sub_json(sub: &Sub) -> Value {
    let mut v = json!({
        "Id": sub.id,
        "Status": sub.status.as_str(),
        "QueryString": sub.sql,
        "CreatedAt": sub.created_at,
        "UpdatedAt": sub.updated_at,
        "Duration": sub.duration_ns,
        "HasResultSet": sub.result.is_some(),
        "ResultRows": sub.result_rows,
        "ResultSize": sub.result.as_ref().map(|r| r.size as i64).unwrap_or(-1),
        "RedshiftQueryId": sub.query_id,
    });
    if let Some(e) = &sub.error {
        v["Error"] = json!(e);
    }
    v
}

fn statement_json(st: &Statement) -> Value {
    let mut v = json!({
        "Id": st.id,
        "Status": st.status.as_str(),
        "QueryString": st.query_string(),
        "CreatedAt": st.created_at,
        "UpdatedAt": st.updated_at,
        "Duration": st.duration_ns,
        "Database": st.request.database,
        "RedshiftPid": st.pid,
        "IsBatchStatement": st.request.is_batch,
    });
    put_target(&mut v, &st.request.target);
    if let Some(u) = &st.request.db_user {
        v["DbUser"] = json!(u);
    }
    if let Some(s) = &st.session_id {
        v["SessionId"] = json!(s);
    }
    if let Some(e) = &st.error {
        v["Error"] = json!(e);
    }
    if !st.request.params.is_empty() {
        v["QueryParameters"] = st
            .request
            .params
            .iter()
            .map(|(n, val)| json!({"name": n, "value": val}))
            .collect();
    }
    if st.request.is_batch {
        v["SubStatements"] = st.subs.iter().map(sub_json).collect();
        v["HasResultSet"] = json!(false);
        v["ResultRows"] = json!(-1);
        v["ResultSize"] = json!(-1);
    } else if let Some(sub) = st.subs.first() {
        v["HasResultSet"] = json!(sub.result.is_some());
        v["ResultRows"] = json!(sub.result_rows);
        v["ResultSize"] = json!(sub.result.as_ref().map(|r| r.size as i64).unwrap_or(-1));
        v["RedshiftQueryId"] = json!(sub.query_id);
    }
    v
}

/// A statement by id, after waiting for it if the request asked to.
async fn statement(engine: &Engine, f: &Fields<'_>) -> Result<(String, Statement), ApiError> {
    let id = f.uuid("Id")?.ok_or_else(|| fields::missing("Id"))?;
    let st = match wait_time(f)? {
        Some(wait) => engine.wait_for(id, wait).await?,
        None => engine.get(id)?,
    };
    Ok((id.to_string(), st))
}

async fn describe(engine: &Engine, f: &Fields<'_>) -> Result<Value, ApiError> {
    let (id, st) = statement(engine, f).await?;
    if id.contains(':') {
        // A sub-statement of a batch, described on its own.
        let sub = st.subs.iter().find(|s| s.id == id).ok_or_else(|| {
            ApiError::from(Rejected::NotFound(format!("Query does not exist: {id}")))
        })?;
        let mut v = sub_json(sub);
        v["Database"] = json!(st.request.database);
        return Ok(v);
    }
    Ok(statement_json(&st))
}

/// One page of a listing (`ListStatements`, `ListSessions`): `MaxResults`
/// items (0 or none: 100) from our `NextToken`'s offset, under `key`, with
/// the next token while more remain.
fn page<T>(
    f: &Fields,
    all: &[T],
    key: &str,
    item: impl Fn(&T) -> Value,
) -> Result<Value, ApiError> {
    let max = match f.int("MaxResults", 0, 100)? {
        None | Some(0) => 100,
        Some(n) => n as usize,
    };
    let start = f.offset(all.len())?;
    let items: Vec<Value> = all.iter().skip(start).take(max).map(item).collect();
    let mut out = json!({ key: items });
    let next = start.saturating_add(max);
    if next < all.len() {
        out["NextToken"] = json!(next.to_string());
    }
    Ok(out)
}

fn list_statements(engine: &Engine, f: &Fields) -> Result<Value, ApiError> {
    let status = f
        .choice(
            "Status",
            &[
                "SUBMITTED",
                "PICKED",
                "STARTED",
                "FINISHED",
                "ABORTED",
                "FAILED",
                "ALL",
            ],
        )?
        .unwrap_or("ALL");
    let name = f.sized("StatementName", 0, 2048)?;
    let target = target_of(f)?;
    let database = f.database("Database")?;
    f.bool("RoleLevel")?;
    let all: Vec<Statement> = engine
        .list()
        .into_iter()
        .filter(|s| status == "ALL" || s.status.as_str() == status)
        .filter(|s| name.is_none_or(|n| s.request.statement_name.as_deref() == Some(n)))
        .filter(|s| target.as_ref().is_none_or(|t| &s.request.target == t))
        .filter(|s| database.is_none_or(|d| s.request.database == d))
        .collect();
    page(f, &all, "Statements", |s| {
        let mut v = json!({
            "Id": s.id, "Status": s.status.as_str(), "QueryString": s.query_string(),
            "CreatedAt": s.created_at, "UpdatedAt": s.updated_at, "IsBatchStatement": s.request.is_batch,
        });
        if s.request.is_batch {
            v["QueryStrings"] = json!(s.request.sqls);
        }
        if let Some(n) = &s.request.statement_name {
            v["StatementName"] = json!(n);
        }
        if let Some(sid) = &s.session_id {
            v["SessionId"] = json!(sid);
        }
        v
    })
}

/// `ListSessions`: open (AVAILABLE or BUSY) sessions by default, or those
/// of one status, target, database or id.
fn list_sessions(engine: &Engine, f: &Fields) -> Result<Value, ApiError> {
    let status = f.choice("Status", &["AVAILABLE", "BUSY", "CLOSED"])?;
    let id = f.uuid("SessionId")?;
    let target = target_of(f)?;
    let database = f.database("Database")?;
    f.bool("RoleLevel")?;
    let all: Vec<_> = engine
        .sessions()
        .into_iter()
        .filter(|s| match status {
            Some(want) => s.status().as_str() == want,
            None => id.is_some() || s.status() != SessionStatus::Closed,
        })
        .filter(|s| id.is_none_or(|i| s.id == i))
        .filter(|s| target.as_ref().is_none_or(|t| &s.target == t))
        .filter(|s| database.is_none_or(|d| s.database == d))
        .collect();
    page(f, &all, "Sessions", |s| {
        let mut v = json!({
            "SessionId": s.id, "Status": s.status().as_str(), "CreatedAt": s.created_at,
            "UpdatedAt": s.updated_at, "Database": s.database,
            "SessionAliveSeconds": s.keep_alive, "SessionTtl": s.expires_at,
        });
        put_target(&mut v, &s.target);
        if let Some(u) = &s.db_user {
            v["DbUser"] = json!(u);
        }
        if let Some(c) = &s.current {
            v["CurrentStatementId"] = json!(c);
        }
        v
    })
}

async fn cancel(engine: &Engine, f: &Fields<'_>) -> Result<Value, ApiError> {
    let id = f.uuid("Id")?.ok_or_else(|| fields::missing("Id"))?;
    engine.cancel(id).await?;
    Ok(json!({"Status": true}))
}
