//! The request decoder under hostile input (property tests).
//!
//! Whatever bytes arrive, the sandbox must answer in the Data API's error
//! shape (an HTTP status and a JSON body with `__type`), never panic and
//! never hang. Requests that decode go on to the engine, which here points
//! at closed ports: they must fail cleanly too. CI runs 256 cases; run more
//! with `PROPTEST_CASES=…`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use redshift_sandbox::api::router;
use redshift_sandbox::aws::ControlPlane;
use redshift_sandbox::engine::Engine;
use redshift_sandbox::pg::Pg;
use serde_json::{Value, json};
use tower::ServiceExt;

const OPS: &[&str] = &[
    "ExecuteStatement",
    "BatchExecuteStatement",
    "DescribeStatement",
    "GetStatementResult",
    "GetStatementResultV2",
    "CancelStatement",
    "ListStatements",
    "ListSessions",
    "ListDatabases",
    "ListSchemas",
    "ListTables",
    "DescribeTable",
    "NoSuchOperation",
];

const FIELDS: &[&str] = &[
    "Sql",
    "Sqls",
    "ClusterIdentifier",
    "WorkgroupName",
    "Database",
    "DbUser",
    "Id",
    "NextToken",
    "MaxResults",
    "Parameters",
    "SchemaPattern",
    "TablePattern",
    "Schema",
    "Table",
    "StatementName",
    "Status",
    "WithEvent",
    "ResultFormat",
    "SessionKeepAliveSeconds",
    "SessionId",
    "ClientToken",
    "WaitTimeSeconds",
    "ExecutionMode",
    "ConnectedDatabase",
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn engine() -> &'static Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // Nothing listens on port 9 (discard): every backend call is refused
        // at once. Set before the SDK reads its configuration; this binary
        // holds only this test.
        unsafe {
            std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::set_var("AWS_REGION", "us-east-1");
            std::env::set_var("AWS_MAX_ATTEMPTS", "1");
        }
        let aws = runtime().block_on(ControlPlane::from_env());
        let pg = Pg::new("host=127.0.0.1 port=9 user=nobody connect_timeout=2", None).unwrap();
        Arc::new(Engine::new(pg, aws, 4))
    })
}

/// Any JSON, with the service's field names as keys half the time.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("SELECT 1")),
        Just(json!("c")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(FIELDS).prop_map(String::from),
                        ".{0,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A well-formed request with one field replaced by anything: the shape
/// that gets past the first checks and into the engine.
fn nearly_valid() -> impl Strategy<Value = Value> {
    (prop::sample::select(FIELDS), json_value()).prop_map(|(field, value)| {
        let mut v = json!({
            "Sql": "SELECT 1",
            "Sqls": ["SELECT 1", "SELECT 2"],
            "ClusterIdentifier": "c",
            "Database": "dev",
            "DbUser": "u",
            "Id": "0b1c2d3e-0000-4000-8000-000000000000",
            "Parameters": [{"name": "p", "value": "1"}],
        });
        v[field] = value;
        v
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        nearly_valid().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #[test]
    fn any_request_gets_an_answer_in_the_services_shape(
        op in prop::sample::select(OPS),
        body in body(),
    ) {
        let req = Request::post("/")
            .header("host", "127.0.0.1:4567")
            .header("x-amz-target", format!("RedshiftData.{op}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(Body::from(body))
            .unwrap();
        let app = router(engine().clone(), "127.0.0.1:4567".parse().unwrap());
        let resp = runtime().block_on(async {
            tokio::time::timeout(Duration::from_secs(30), app.oneshot(req)).await
        });
        let resp = resp.map_err(|_| TestCaseError::fail("no answer within 30 s"))?.unwrap();
        let status = resp.status();
        let bytes = runtime()
            .block_on(axum::body::to_bytes(resp.into_body(), 10 << 20))
            .unwrap();
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {bytes:?}")))?;
        if !status.is_success() {
            prop_assert!(doc.get("__type").and_then(Value::as_str).is_some(), "{}: {}", status, doc);
            prop_assert!(doc.get("message").and_then(Value::as_str).is_some(), "{}: {}", status, doc);
        }
    }
}
