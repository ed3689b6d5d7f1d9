//! The request decoder under hostile input, with statements in every state
//! (property tests against the running stack).
//!
//! `decode.rs` throws any bytes at an engine with no back end. Here the
//! engine is the stack's sandbox, and each case is a sequence: statements
//! submitted (quick, slow, failing, large, in sessions, with tokens and
//! waits), then described, paged, cancelled and listed by their real ids,
//! mixed with requests whose fields are anything at all. Whatever the
//! order, every reply must come within its bound in the service's shape
//! (never a server error or a closed connection), and every statement must
//! reach an end.
//!
//! 24 cases by default (each runs real SQL); `PROPTEST_CASES=…` for more.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

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

/// The stack's sandbox address and one cluster for every case.
fn fixture() -> &'static (String, String) {
    static F: OnceLock<(String, String)> = OnceLock::new();
    F.get_or_init(|| {
        runtime().block_on(async {
            let s = common::stack().await;
            let c = common::cluster(&s, None).await;
            (s.endpoint.clone(), c)
        })
    })
}

/// One step of a case.
#[derive(Clone, Debug)]
enum Step {
    /// Submit SQL number `sql`, maybe in a new session, with a token, a wait.
    Submit {
        sql: usize,
        keep_alive: Option<i64>,
        token: Option<u8>,
        wait: Option<i64>,
    },
    /// A batch of two, in either execution mode.
    Batch {
        auto_commit: bool,
    },
    /// Run SQL in the `n`th session opened so far.
    InSession {
        n: usize,
        sql: usize,
    },
    /// Describe, page, or cancel the `n`th statement so far (or a sub).
    Describe {
        n: usize,
        sub: bool,
        wait: Option<i64>,
    },
    Page {
        n: usize,
        token: Value,
    },
    Cancel {
        n: usize,
    },
    ListStatements {
        token: Value,
        max: Value,
    },
    ListSessions {
        status: Value,
    },
    /// Any operation with any fields, around a real id.
    Hostile {
        op: usize,
        field: usize,
        value: Value,
        n: usize,
    },
}

const SQLS: &[&str] = &[
    "SELECT 1",
    "SELECT pg_sleep(0.3)",
    "SELECT 1 / 0",
    "SELECT g FROM generate_series(1, 2500) AS g",
    "CREATE TEMP TABLE IF NOT EXISTS t AS SELECT 1 AS x",
    "SELECT COUNT(*) FROM t",
];

const OPS: &[&str] = &[
    "ExecuteStatement",
    "BatchExecuteStatement",
    "DescribeStatement",
    "GetStatementResult",
    "GetStatementResultV2",
    "CancelStatement",
    "ListStatements",
    "ListSessions",
    "DescribeTable",
];

const FIELDS: &[&str] = &[
    "Id",
    "Sql",
    "Sqls",
    "SessionId",
    "SessionKeepAliveSeconds",
    "WaitTimeSeconds",
    "ClientToken",
    "NextToken",
    "MaxResults",
    "Database",
    "ClusterIdentifier",
    "ExecutionMode",
    "Table",
];

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-2i64..40).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,30}".prop_map(Value::String),
        "[0-9]{1,25}".prop_map(Value::String),
        Just(json!("18446744073709551615")),
        Just(json!("é".repeat(40))),
        Just(json!(["SELECT 1", 2])),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..SQLS.len(), prop::option::of(0i64..3), prop::option::of(0u8..3), prop::option::of(1i64..2))
            .prop_map(|(sql, keep_alive, token, wait)| Step::Submit { sql, keep_alive, token, wait }),
        1 => any::<bool>().prop_map(|auto_commit| Step::Batch { auto_commit }),
        2 => (0usize..4, 0..SQLS.len()).prop_map(|(n, sql)| Step::InSession { n, sql }),
        3 => (0usize..8, any::<bool>(), prop::option::of(1i64..2))
            .prop_map(|(n, sub, wait)| Step::Describe { n, sub, wait }),
        2 => (0usize..8, prop_oneof![Just(Value::Null), Just(json!("1000")), any_value()])
            .prop_map(|(n, token)| Step::Page { n, token }),
        1 => (0usize..8).prop_map(|n| Step::Cancel { n }),
        1 => (any_value(), any_value()).prop_map(|(token, max)| Step::ListStatements { token, max }),
        1 => prop_oneof![Just(Value::Null), Just(json!("CLOSED")), any_value()]
            .prop_map(|status| Step::ListSessions { status }),
        2 => (0..OPS.len(), 0..FIELDS.len(), any_value(), 0usize..8)
            .prop_map(|(op, field, value, n)| Step::Hostile { op, field, value, n }),
    ]
}

/// Sends one request; the reply must come in 40 s (the longest wait is 30)
/// and be a success or a client error in the service's shape.
async fn call(endpoint: &str, op: &str, body: &Value) -> Result<Value, TestCaseError> {
    let target = format!("RedshiftData.{op}");
    let (status, text) = tokio::time::timeout(
        Duration::from_secs(40),
        common::raw(endpoint, Some(&target), &body.to_string()),
    )
    .await
    .map_err(|_| TestCaseError::fail(format!("{op} {body}: no answer in 40 s")))?;
    let json_start = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
    let doc: Value = serde_json::from_str(&text[json_start..])
        .map_err(|e| TestCaseError::fail(format!("{op} {body}: not JSON ({e}): {text}")))?;
    prop_assert!(status < 500, "{op} {body}: {status} {doc}");
    if status != 200 {
        prop_assert!(doc.get("__type").and_then(Value::as_str).is_some(), "{doc}");
    }
    Ok(if status == 200 { doc } else { Value::Null })
}

async fn run_case(
    (endpoint, cluster): &(String, String),
    steps: Vec<Step>,
) -> Result<(), TestCaseError> {
    let mut ids: Vec<String> = Vec::new();
    let mut sessions: Vec<String> = Vec::new();
    let pick = |ids: &[String], n: usize| ids.get(n % ids.len().max(1)).cloned();
    let base = json!({"ClusterIdentifier": cluster, "Database": "dev", "DbUser": "awsuser"});
    for step in steps {
        let (op, body) = match step {
            Step::Submit {
                sql,
                keep_alive,
                token,
                wait,
            } => {
                let mut b = base.clone();
                b["Sql"] = json!(SQLS[sql]);
                if let Some(k) = keep_alive {
                    b["SessionKeepAliveSeconds"] = json!(k);
                }
                if let Some(t) = token {
                    b["ClientToken"] = json!(format!("{cluster}-{t}"));
                }
                if let Some(w) = wait {
                    b["WaitTimeSeconds"] = json!(w);
                }
                ("ExecuteStatement", b)
            }
            Step::Batch { auto_commit } => {
                let mut b = base.clone();
                b["Sqls"] = json!(["SELECT 1", "SELECT 1 / 0"]);
                if auto_commit {
                    b["ExecutionMode"] = json!("AUTO_COMMIT");
                }
                ("BatchExecuteStatement", b)
            }
            Step::InSession { n, sql } => match pick(&sessions, n) {
                Some(sid) => (
                    "ExecuteStatement",
                    json!({"SessionId": sid, "Sql": SQLS[sql]}),
                ),
                None => continue,
            },
            Step::Describe { n, sub, wait } => match pick(&ids, n) {
                Some(id) => {
                    let id = if sub { format!("{id}:1") } else { id };
                    let mut b = json!({"Id": id});
                    if let Some(w) = wait {
                        b["WaitTimeSeconds"] = json!(w);
                    }
                    ("DescribeStatement", b)
                }
                None => continue,
            },
            Step::Page { n, token } => match pick(&ids, n) {
                Some(id) => (
                    "GetStatementResultV2",
                    json!({"Id": id, "NextToken": token}),
                ),
                None => continue,
            },
            Step::Cancel { n } => match pick(&ids, n) {
                Some(id) => ("CancelStatement", json!({"Id": id})),
                None => continue,
            },
            Step::ListStatements { token, max } => (
                "ListStatements",
                json!({"NextToken": token, "MaxResults": max}),
            ),
            Step::ListSessions { status } => ("ListSessions", json!({"Status": status})),
            Step::Hostile {
                op,
                field,
                value,
                n,
            } => {
                let mut b = base.clone();
                b["Sql"] = json!("SELECT 1");
                if let Some(id) = pick(&ids, n) {
                    b["Id"] = json!(id);
                }
                b[FIELDS[field]] = value;
                (OPS[op], b)
            }
        };
        let reply = call(endpoint, op, &body).await?;
        if let Some(id) = reply.get("Id").and_then(Value::as_str) {
            ids.push(id.to_string());
        }
        if let Some(sid) = reply.get("SessionId").and_then(Value::as_str)
            && !sessions.iter().any(|s| s == sid)
        {
            sessions.push(sid.to_string());
        }
    }
    // Every statement ends.
    for id in &ids {
        let d = call(
            endpoint,
            "DescribeStatement",
            &json!({"Id": id, "WaitTimeSeconds": 30}),
        )
        .await?;
        let status = d.get("Status").and_then(Value::as_str).unwrap_or("");
        prop_assert!(
            matches!(status, "FINISHED" | "FAILED" | "ABORTED"),
            "statement {id} did not end: {d}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]
    #[test]
    fn any_sequence_of_requests_gets_answers_and_every_statement_ends(
        steps in prop::collection::vec(step(), 1..14),
    ) {
        let f = fixture();
        runtime().block_on(run_case(f, steps))?;
    }
}
