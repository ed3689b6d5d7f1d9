//! The Redshift Data API's wire protocol: JSON 1.1 over HTTP POST, the
//! operation named by `X-Amz-Target: RedshiftData.<Operation>`, errors as a
//! `__type` and a `message`. This is all the unmodified
//! `aws-sdk-redshiftdata` client needs to talk to the sandbox.
//!
//! Requests are not authenticated: the sandbox listens on loopback only and
//! stands in for AWS in tutorials and tests.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::engine::{Engine, Rejected, Request, ResultData, Statement, Status, Sub};
use crate::pg::{Cell, Target};

/// Rows per page of `GetStatementResult`.
pub const PAGE_ROWS: usize = 1000;

/// The HTTP routes.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new().route("/", post(handle)).with_state(engine)
}

/// An error in the service's shape.
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn validation(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "ValidationException",
            message: message.into(),
        }
    }
}

impl From<Rejected> for ApiError {
    fn from(r: Rejected) -> Self {
        match r {
            Rejected::Validation(m) => ApiError::validation(m),
            Rejected::NotFound(m) => Self {
                status: StatusCode::BAD_REQUEST,
                kind: "ResourceNotFoundException",
                message: m,
            },
            Rejected::Internal(m) => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                kind: "InternalServerException",
                message: m,
            },
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

async fn handle(State(engine): State<Arc<Engine>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(op) = target.strip_prefix("RedshiftData.") else {
        return ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "UnknownOperationException",
            message: format!("unknown target '{target}'"),
        }
        .into_response();
    };
    // One line per request at debug level: how scripts/bench-pipeline.sh
    // counts the Data API requests a load makes, as the service sees them.
    tracing::debug!(op, "request");
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return ApiError {
                    status: StatusCode::BAD_REQUEST,
                    kind: "SerializationException",
                    message: "the request body must be a JSON object".into(),
                }
                .into_response();
            }
            Err(e) => {
                return ApiError {
                    status: StatusCode::BAD_REQUEST,
                    kind: "SerializationException",
                    message: format!("the request body is not valid JSON: {e}"),
                }
                .into_response();
            }
        }
    };
    let result = match op {
        "ExecuteStatement" => execute(&engine, &input, false).await,
        "BatchExecuteStatement" => execute(&engine, &input, true).await,
        "DescribeStatement" => describe(&engine, &input),
        "GetStatementResult" => get_result(&engine, &input, false),
        "GetStatementResultV2" => get_result(&engine, &input, true),
        "ListStatements" => list_statements(&engine, &input),
        "CancelStatement" => cancel(&engine, &input).await,
        "ListDatabases" => list_databases(&engine, &input).await,
        "ListSchemas" => catalog(&engine, &input, Catalog::Schemas).await,
        "ListTables" => catalog(&engine, &input, Catalog::Tables).await,
        "DescribeTable" => catalog(&engine, &input, Catalog::Describe).await,
        other => Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "UnknownOperationException",
            message: format!("the sandbox does not implement {other}"),
        }),
    };
    match result {
        Ok(v) => (StatusCode::OK, json_body(&v)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn str_field<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

fn required<'a>(input: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    str_field(input, name).ok_or_else(|| ApiError::validation(format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null")))
}

fn target_of(input: &Value) -> Result<Target, ApiError> {
    match (
        str_field(input, "ClusterIdentifier"),
        str_field(input, "WorkgroupName"),
    ) {
        (Some(c), None) => Ok(Target::Cluster(c.to_string())),
        (None, Some(w)) => Ok(Target::Workgroup(w.to_string())),
        (Some(_), Some(_)) => Err(ApiError::validation(
            "Specify either ClusterIdentifier or WorkgroupName, not both",
        )),
        (None, None) => Err(ApiError::validation(
            "Either ClusterIdentifier or WorkgroupName is required",
        )),
    }
}

async fn execute(engine: &Arc<Engine>, input: &Value, batch: bool) -> Result<Value, ApiError> {
    let target = target_of(input)?;
    let database = required(input, "Database")?.to_string();
    let sqls: Vec<String> = if batch {
        input
            .get("Sqls")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::validation("Sqls is required"))?
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::validation("Sqls must be strings"))
            })
            .collect::<Result<_, _>>()?
    } else {
        vec![required(input, "Sql")?.to_string()]
    };
    if batch && !(1..=40).contains(&sqls.len()) {
        return Err(ApiError::validation("Sqls must hold 1 to 40 statements"));
    }
    let mut params = Vec::new();
    if let Some(list) = input.get("Parameters").and_then(Value::as_array) {
        if batch {
            return Err(ApiError::validation(
                "BatchExecuteStatement does not take Parameters",
            ));
        }
        for p in list {
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::validation("each parameter needs a name"))?;
            let value = p
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::validation(format!("parameter {name} needs a value")))?;
            params.push((name.to_string(), value.to_string()));
        }
    }
    let request = Request {
        target: target.clone(),
        database: database.clone(),
        db_user: str_field(input, "DbUser").map(str::to_string),
        sqls,
        is_batch: batch,
        params,
        statement_name: str_field(input, "StatementName").map(str::to_string),
    };
    let st = engine.submit(request).await?;
    let mut out = json!({
        "Id": st.id,
        "CreatedAt": st.created_at,
        "Database": database,
    });
    match target {
        Target::Cluster(c) => out["ClusterIdentifier"] = json!(c),
        Target::Workgroup(w) => out["WorkgroupName"] = json!(w),
    }
    if let Some(u) = &st.request.db_user {
        out["DbUser"] = json!(u);
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
    match &st.request.target {
        Target::Cluster(c) => v["ClusterIdentifier"] = json!(c),
        Target::Workgroup(w) => v["WorkgroupName"] = json!(w),
    }
    if let Some(u) = &st.request.db_user {
        v["DbUser"] = json!(u);
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

fn describe(engine: &Engine, input: &Value) -> Result<Value, ApiError> {
    let id = required(input, "Id")?;
    let st = engine.get(id)?;
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

fn column_json(name: &str, type_name: &str) -> Value {
    json!({
        "name": name, "label": name, "typeName": type_name,
        "isCaseSensitive": matches!(type_name, "varchar" | "bpchar" | "text"),
        "isCurrency": false,
        "isSigned": matches!(type_name, "int2" | "int4" | "int8" | "float4" | "float8" | "numeric"),
        "nullable": 1, "length": 0, "precision": 0, "scale": 0,
        "schemaName": "", "tableName": ""
    })
}

fn cell_json(c: &Cell) -> Value {
    match c {
        Cell::Null => json!({"isNull": true}),
        Cell::Long(v) => json!({"longValue": v}),
        Cell::Double(v) => json!({"doubleValue": v}),
        Cell::Bool(v) => json!({"booleanValue": v}),
        Cell::Text(s) => json!({"stringValue": s}),
    }
}

fn csv_field(c: &Cell) -> String {
    match c.as_text() {
        None => String::new(),
        Some(s) if s.contains([',', '"', '\n', '\r']) => format!("\"{}\"", s.replace('"', "\"\"")),
        Some(s) => s,
    }
}

fn get_result(engine: &Engine, input: &Value, v2: bool) -> Result<Value, ApiError> {
    let id = required(input, "Id")?;
    let st = engine.get(id)?;
    let sub = if st.request.is_batch {
        st.subs.iter().find(|s| s.id == id)
    } else {
        st.subs.first()
    }
    .ok_or_else(|| {
        ApiError::validation(format!(
            "Query {id} is a batch: fetch the results of its sub-statements ({id}:1, …)"
        ))
    })?;
    if sub.status != Status::Finished {
        return Err(ApiError::from(Rejected::NotFound(format!(
            "Query does not have result. Please check query status with DescribeStatement. Query id: {id}"
        ))));
    }
    let Some(result) = &sub.result else {
        return Err(ApiError::from(Rejected::NotFound(format!(
            "Query does not have result. Please check query status with DescribeStatement. Query id: {id}"
        ))));
    };
    let start: usize = match str_field(input, "NextToken") {
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::validation("invalid NextToken"))?,
        None => 0,
    };
    let end = (start + PAGE_ROWS).min(result.rows.len());
    let page = &result.rows[start.min(end)..end];
    let mut out = json!({
        "ColumnMetadata": result.columns.iter().map(|c| column_json(&c.name, &c.type_name)).collect::<Vec<_>>(),
        "TotalNumRows": result.rows.len(),
    });
    if v2 {
        let mut csv = String::new();
        if start == 0 {
            csv.push_str(
                &result
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            csv.push('\n');
        }
        for row in page {
            csv.push_str(&row.iter().map(csv_field).collect::<Vec<_>>().join(","));
            csv.push('\n');
        }
        out["Records"] = json!([{"CSVRecords": csv}]);
        out["ResultFormat"] = json!("CSV");
    } else {
        out["Records"] = page
            .iter()
            .map(|r| r.iter().map(cell_json).collect::<Vec<_>>())
            .collect();
    }
    if end < result.rows.len() {
        out["NextToken"] = json!(end.to_string());
    }
    Ok(out)
}

fn list_statements(engine: &Engine, input: &Value) -> Result<Value, ApiError> {
    let status = str_field(input, "Status").unwrap_or("ALL");
    let name = str_field(input, "StatementName");
    let max = input
        .get("MaxResults")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 100) as usize;
    let start: usize = str_field(input, "NextToken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let all: Vec<Statement> = engine
        .list()
        .into_iter()
        .filter(|s| status == "ALL" || s.status.as_str() == status)
        .filter(|s| name.is_none_or(|n| s.request.statement_name.as_deref() == Some(n)))
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(max)
        .map(|s| {
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
            v
        })
        .collect();
    let mut out = json!({"Statements": page});
    if start + max < all.len() {
        out["NextToken"] = json!((start + max).to_string());
    }
    Ok(out)
}

async fn cancel(engine: &Engine, input: &Value) -> Result<Value, ApiError> {
    engine.cancel(required(input, "Id")?).await?;
    Ok(json!({"Status": true}))
}

async fn list_databases(engine: &Arc<Engine>, input: &Value) -> Result<Value, ApiError> {
    let target = target_of(input)?;
    let database = required(input, "Database")?;
    let generation = match &target {
        Target::Cluster(c) => engine.aws.check_cluster(c).await?.generation,
        Target::Workgroup(_) => String::new(),
    };
    engine
        .pg
        .ensure_database(&target, database, &generation)
        .await
        .map_err(|e| Rejected::Internal(e.to_string()))?;
    let dbs = engine
        .pg
        .list_databases(&target)
        .await
        .map_err(|e| Rejected::Internal(e.to_string()))?;
    Ok(json!({"Databases": dbs}))
}

enum Catalog {
    Schemas,
    Tables,
    Describe,
}

/// `ListSchemas`, `ListTables` and `DescribeTable`: run as ordinary
/// statements against the catalogue, so they see exactly what SQL sees.
async fn catalog(engine: &Arc<Engine>, input: &Value, what: Catalog) -> Result<Value, ApiError> {
    let target = target_of(input)?;
    let database = str_field(input, "ConnectedDatabase")
        .or(str_field(input, "Database"))
        .ok_or_else(|| ApiError::validation("Database is required"))?;
    let like = |field: &str| str_field(input, field).unwrap_or("%").to_string();
    let (sql, params) = match what {
        Catalog::Schemas => (
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE :pattern AND nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'sandbox_sys') ORDER BY 1",
            vec![("pattern".to_string(), like("SchemaPattern"))],
        ),
        Catalog::Tables => (
            "SELECT table_name::text, table_schema::text, CASE table_type WHEN 'BASE TABLE' THEN 'TABLE' ELSE table_type END::text \
             FROM information_schema.tables WHERE table_schema LIKE :schema AND table_name LIKE :table \
             AND table_schema NOT IN ('pg_catalog', 'information_schema', 'sandbox_sys') ORDER BY 2, 1",
            vec![
                ("schema".to_string(), like("SchemaPattern")),
                ("table".to_string(), like("TablePattern")),
            ],
        ),
        Catalog::Describe => (
            "SELECT column_name::text, udt_name::text, COALESCE(character_maximum_length, 0)::int, COALESCE(numeric_precision, 0)::int, \
             COALESCE(numeric_scale, 0)::int, (is_nullable = 'YES')::bool, column_default::text, table_schema::text, table_name::text \
             FROM information_schema.columns WHERE table_schema LIKE :schema AND table_name = :table ORDER BY ordinal_position",
            vec![
                (
                    "schema".to_string(),
                    str_field(input, "Schema").unwrap_or("public").to_string(),
                ),
                ("table".to_string(), required(input, "Table")?.to_string()),
            ],
        ),
    };
    let request = Request {
        target,
        database: database.to_string(),
        db_user: str_field(input, "DbUser").map(str::to_string),
        sqls: vec![sql.to_string()],
        is_batch: false,
        params,
        statement_name: None,
    };
    let st = engine.submit(request).await?;
    let done = wait(engine, &st.id).await?;
    let rows = done.rows;
    Ok(match what {
        Catalog::Schemas => {
            json!({"Schemas": rows.iter().filter_map(|r| r[0].as_text()).collect::<Vec<_>>()})
        }
        Catalog::Tables => {
            json!({"Tables": rows.iter().map(|r| json!({"name": r[0].as_text(), "schema": r[1].as_text(), "type": r[2].as_text()})).collect::<Vec<_>>()})
        }
        Catalog::Describe => json!({
            "TableName": str_field(input, "Table"),
            "ColumnList": rows.iter().map(|r| {
                let mut c = column_json(&r[0].as_text().unwrap_or_default(), &r[1].as_text().unwrap_or_default());
                // The query casts these to int, so they come back as longs.
                let long = |c: &Cell| if let Cell::Long(v) = c { *v } else { 0 };
                c["length"] = json!(long(&r[2]));
                c["precision"] = json!(long(&r[3]));
                c["scale"] = json!(long(&r[4]));
                c["nullable"] = json!(if r[5] == Cell::Bool(true) { 1 } else { 0 });
                if let Some(d) = r[6].as_text() { c["columnDefault"] = json!(d); }
                c["schemaName"] = json!(r[7].as_text());
                c["tableName"] = json!(r[8].as_text());
                c
            }).collect::<Vec<_>>(),
        }),
    })
}

/// Waits for an internal catalogue statement (these are quick).
async fn wait(engine: &Engine, id: &str) -> Result<ResultData, ApiError> {
    for _ in 0..6000 {
        let st = engine.get(id)?;
        match st.status {
            Status::Finished => {
                return Ok(st
                    .subs
                    .into_iter()
                    .next()
                    .and_then(|s| s.result)
                    .unwrap_or_default());
            }
            Status::Failed | Status::Aborted => {
                return Err(ApiError::from(Rejected::Internal(
                    st.error.unwrap_or_default(),
                )));
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    Err(ApiError::from(Rejected::Internal(
        "catalogue query timed out".into(),
    )))
}
