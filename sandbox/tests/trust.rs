//! What the sandbox trusts and what it refuses, tried as an attacker would:
//! SQL that reaches for the host (programs, files, settings, extensions,
//! roles), requests from a foreign `Host` or `Origin`, and malformed or
//! extreme fields. Each must be refused with an error in the service's
//! shape, never hang a statement or close a connection; and the SDK and
//! boto3 must still be served.
//!
//! Needs the local stack (`scripts/test.sh` starts it).

mod common;

use aws_sdk_redshiftdata::types::StatusString;
use common::{cluster, ok, raw, raw_with, run, stack, unique};

/// Runs `sql` and expects it to fail with one of `words` in its error.
async fn refused(s: &common::Stack, c: &str, sql: &str, words: &[&str]) -> String {
    let d = run(s, c, sql).await;
    assert_eq!(d.status(), Some(&StatusString::Failed), "{sql} must fail");
    let e = d.error().unwrap_or_default().to_string();
    assert!(
        words.iter().any(|w| e.contains(w)),
        "{sql}: expected one of {words:?} in {e:?}"
    );
    e
}

#[tokio::test]
async fn sql_runs_as_an_ordinary_user_of_its_own_database() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let d = ok(
        &s,
        &c,
        // CURRENT_ROLE: PostgreSQL's role (CURRENT_USER is the request's
        // DbUser, as on Redshift).
        "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, \
         pg_has_role(current_role, 'pg_read_server_files', 'MEMBER') \
           OR pg_has_role(current_role, 'pg_write_server_files', 'MEMBER') \
           OR pg_has_role(current_role, 'pg_execute_server_program', 'MEMBER'), \
         (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = pg_catalog.current_database()) = current_role \
         FROM pg_roles r WHERE r.rolname = current_role",
    )
    .await;
    let r = s
        .data
        .get_statement_result()
        .id(d.id())
        .send()
        .await
        .unwrap();
    use aws_sdk_redshiftdata::types::Field::BooleanValue;
    assert_eq!(
        r.records()[0],
        [
            BooleanValue(false),
            BooleanValue(false),
            BooleanValue(false),
            BooleanValue(false),
            BooleanValue(true)
        ],
        "not a superuser, no server roles, owner of its database"
    );
}

#[tokio::test]
async fn no_sql_path_reaches_a_program_on_the_host() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let marker = std::env::temp_dir().join(unique("s2r-pwned"));
    let m = marker.display();
    let denied = ["permission denied", "must be superuser", "not allowed"];
    // Directly, through an SQL function, through PL/pgSQL's dynamic SQL.
    let top = run(&s, &c, &format!("COPY (SELECT 1) TO PROGRAM 'touch {m}'")).await;
    assert_eq!(top.status(), Some(&StatusString::Failed));
    ok(
        &s,
        &c,
        &format!(
            "CREATE FUNCTION sh() RETURNS void LANGUAGE sql AS $$ COPY (SELECT 1) TO PROGRAM 'touch {m}' $$"
        ),
    )
    .await;
    let e = refused(&s, &c, "SELECT sh()", &denied).await;
    assert!(e.contains("Amazon Redshift does not allow"), "{e}");
    refused(
        &s,
        &c,
        &format!("DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {m}'''; END $$"),
        &denied,
    )
    .await;
    refused(
        &s,
        &c,
        &format!(
            "DO $$ BEGIN CREATE TEMP TABLE t (x text); EXECUTE 'COPY t FROM PROGRAM ''touch {m}'''; END $$"
        ),
        &denied,
    )
    .await;
    assert!(!marker.exists(), "a program ran on the host");
}

#[tokio::test]
async fn no_sql_path_reads_or_writes_the_hosts_files() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let denied = ["permission denied", "must be superuser"];
    refused(&s, &c, "SELECT pg_read_file('/etc/hostname')", &denied).await;
    refused(&s, &c, "SELECT pg_read_binary_file('/etc/passwd')", &denied).await;
    refused(&s, &c, "SELECT pg_ls_dir('/')", &denied).await;
    refused(&s, &c, "SELECT pg_stat_file('/etc/passwd')", &denied).await;
    refused(&s, &c, "SELECT lo_import('/etc/hostname')", &denied).await;
    refused(
        &s,
        &c,
        "DO $$ BEGIN CREATE TEMP TABLE f (x text); EXECUTE 'COPY f FROM ''/etc/hostname'''; END $$",
        &denied,
    )
    .await;
    refused(
        &s,
        &c,
        "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO ''/tmp/s2r-written'''; END $$",
        &denied,
    )
    .await;
    assert!(!std::path::Path::new("/tmp/s2r-written").exists());
}

#[tokio::test]
async fn server_settings_extensions_and_roles_are_out_of_reach() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let denied = ["permission denied", "must be superuser", "must be owner"];
    refused(&s, &c, "ALTER SYSTEM SET work_mem = '1MB'", &denied).await;
    refused(&s, &c, "CREATE EXTENSION file_fdw", &denied).await;
    refused(&s, &c, "CREATE EXTENSION dblink", &denied).await;
    refused(&s, &c, "CREATE EXTENSION adminpack", &denied).await;
    refused(&s, &c, "SET ROLE postgres", &denied).await;
    refused(&s, &c, "SET SESSION AUTHORIZATION postgres", &denied).await;
    refused(&s, &c, "ALTER ROLE CURRENT_USER SUPERUSER", &denied).await;
    refused(&s, &c, "CREATE ROLE intruder LOGIN", &denied).await;
    refused(&s, &c, "SELECT pg_reload_conf()", &denied).await;
    refused(&s, &c, "DROP DATABASE postgres", &denied).await;
    // The sandbox's own records can be read, not rewritten.
    refused(&s, &c, "DELETE FROM sandbox_sys.generation", &denied).await;
    refused(&s, &c, "DELETE FROM sys_query_history", &denied).await;
    ok(&s, &c, "SELECT COUNT(*) FROM sys_query_history").await;
}

#[tokio::test]
async fn a_user_who_changes_its_own_password_is_still_served() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    ok(&s, &c, "ALTER ROLE CURRENT_USER PASSWORD 'guessme'").await;
    // The next statement opens a new connection with the role's own
    // password, which the sandbox sets back.
    ok(&s, &c, "SELECT 1").await;
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused_ours_is_served() {
    let s = stack().await;
    let addr = s.endpoint.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let body = r#"{"Status":"ALL"}"#;
    let target = Some("RedshiftData.ListStatements");
    // DNS rebinding: a page's own host name, resolved to 127.0.0.1.
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "127.0.0.1:1",
    ] {
        let (status, text) = raw_with(&addr, host, &[], target, body).await;
        assert_eq!(status, 403, "Host {host}: {text}");
        assert!(text.contains("AccessDeniedException"), "{text}");
    }
    for origin in ["http://evil.example", "null", "https://127.0.0.1"] {
        let (status, text) = raw_with(&addr, &addr, &[("Origin", origin)], target, body).await;
        assert_eq!(status, 403, "Origin {origin}: {text}");
    }
    let (status, _) = raw_with(&addr, &format!("localhost:{port}"), &[], target, body).await;
    assert_eq!(status, 200);
    let ours = format!("http://{addr}");
    let (status, _) = raw_with(&addr, &addr, &[("Origin", &ours)], target, body).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn malformed_and_extreme_requests_get_an_error_never_a_hang_or_a_closed_connection() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let e40 = "é".repeat(40);
    let long = "a".repeat(200);
    let huge_sql = format!("SELECT '{}'", "x".repeat(110 * 1024));
    let cases: Vec<(&str, serde_json::Value)> = vec![
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": e40, "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev\"; DROP DATABASE postgres; --", "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev' user=postgres", "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": long, "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": e40, "Database": "dev", "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": "Upper-Case", "Database": "dev", "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": long, "Database": "dev", "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"WorkgroupName": "a\"b", "Database": "dev", "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "DbUser": "x' OR '1", "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sql": huge_sql}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sql": 42}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": ["dev"], "Sql": "SELECT 1"}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sql": "SELECT 1", "WaitTimeSeconds": 31}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sql": "SELECT 1", "WaitTimeSeconds": 0}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sql": "SELECT 1", "SessionKeepAliveSeconds": -1}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sql": "SELECT 1", "SessionKeepAliveSeconds": 1e20}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sql": "SELECT 1", "ClientToken": long}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sql": "SELECT :a", "Parameters": [{"name": "a;b", "value": "1"}]}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sql": "SELECT :a", "Parameters": [{"name": "a", "value": 1}]}),
        ),
        (
            "ExecuteStatement",
            serde_json::json!({"SessionId": "../../etc", "Sql": "SELECT 1"}),
        ),
        (
            "BatchExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sqls": []}),
        ),
        (
            "BatchExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sqls": vec!["SELECT 1"; 41]}),
        ),
        (
            "BatchExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sqls": ["SELECT 1", 2]}),
        ),
        (
            "BatchExecuteStatement",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Sqls": ["SELECT 1"], "ExecutionMode": "YOLO"}),
        ),
        (
            "ListStatements",
            serde_json::json!({"NextToken": "18446744073709551615"}),
        ),
        ("ListStatements", serde_json::json!({"NextToken": "-1"})),
        (
            "ListStatements",
            serde_json::json!({"NextToken": "99999999999999999999999999"}),
        ),
        ("ListStatements", serde_json::json!({"MaxResults": -5})),
        (
            "ListStatements",
            serde_json::json!({"MaxResults": 1_000_000_000_000u64}),
        ),
        ("ListStatements", serde_json::json!({"MaxResults": "10"})),
        ("ListStatements", serde_json::json!({"Status": "DONE"})),
        (
            "ListSessions",
            serde_json::json!({"NextToken": "18446744073709551615"}),
        ),
        ("DescribeStatement", serde_json::json!({"Id": "x"})),
        ("DescribeStatement", serde_json::json!({"Id": e40})),
        ("DescribeStatement", serde_json::json!({"Id": 7})),
        (
            "DescribeStatement",
            serde_json::json!({"Id": "0b1c2d3e-0000-4000-8000-000000000000", "WaitTimeSeconds": -1}),
        ),
        (
            "CancelStatement",
            serde_json::json!({"Id": "0b1c2d3e-0000-4000-8000-000000000000:999"}),
        ),
        (
            "ListDatabases",
            serde_json::json!({"ClusterIdentifier": c, "Database": e40}),
        ),
        (
            "ListTables",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "TablePattern": 5}),
        ),
        (
            "DescribeTable",
            serde_json::json!({"ClusterIdentifier": c, "Database": "dev", "Table": long.repeat(10)}),
        ),
    ];
    for (op, body) in &cases {
        let target = format!("RedshiftData.{op}");
        let (status, text) = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            raw(&s.endpoint, Some(&target), &body.to_string()),
        )
        .await
        .unwrap_or_else(|_| panic!("{op} {body}: no answer in 30 s"));
        assert!(
            (400..500).contains(&status),
            "{op} {body}: status {status}: {text}"
        );
        assert!(
            text.contains("\"__type\":\"ValidationException\"")
                || text.contains("\"__type\":\"SerializationException\"")
                || text.contains("\"__type\":\"ResourceNotFoundException\""),
            "{op} {body}: {text}"
        );
    }
    // A result's last page, then a token past it: an error, not a panic.
    let d = ok(&s, &c, "SELECT g FROM generate_series(1, 10) g").await;
    for token in ["10", "11", "18446744073709551615"] {
        let body = serde_json::json!({"Id": d.id(), "NextToken": token}).to_string();
        let (status, text) = raw(&s.endpoint, Some("RedshiftData.GetStatementResult"), &body).await;
        if token == "10" {
            assert_eq!(status, 200, "{text}");
        } else {
            assert!(text.contains("ValidationException"), "{text}");
        }
    }
    // Nothing was left SUBMITTED or running.
    let running = s
        .data
        .list_statements()
        .status(StatusString::Submitted)
        .send()
        .await
        .unwrap();
    assert!(
        running
            .statements()
            .iter()
            .all(|st| st.query_string() != Some("SELECT 1")),
        "{running:?}"
    );
    // And the sandbox still answers.
    ok(&s, &c, "SELECT 1").await;
}

#[tokio::test]
async fn boto3_is_served_as_before() {
    let s = stack().await;
    let c = cluster(&s, None).await;
    let python = std::env::var("S2R_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python").to_string()
    });
    let script = r#"
import sys, time, boto3
data = boto3.client("redshift-data")
sid = data.execute_statement(ClusterIdentifier=sys.argv[1], Database="dev", DbUser="awsuser",
                             Sql="SELECT 40 + 2 AS answer")["Id"]
for _ in range(300):
    d = data.describe_statement(Id=sid)
    if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
        break
    time.sleep(0.05)
assert d["Status"] == "FINISHED", d
print(data.get_statement_result(Id=sid)["Records"][0][0]["longValue"])
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&c)
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e} (scripts/setup.sh installs it, with moto)"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
}

#[tokio::test]
async fn functions_a_user_defines_are_never_called_by_the_sandboxs_own_connections() {
    // The role owns `public` in its database, where the sandbox's
    // administrative connection writes rejected rows. Functions that shadow
    // the built-ins it calls, and would make the role a superuser if the
    // superuser called them, must never be called by it.
    let s = stack().await;
    let f = common::copy_fixture(&s, true).await;
    let c = &f.cluster;
    // Each behaves as the built-in, unless a superuser calls it: then it
    // makes the cluster's role (named as its database) a superuser.
    for (name, args, ret, call) in [
        ("now", "", "timestamptz", "pg_catalog.now()"),
        (
            "pg_backend_pid",
            "",
            "integer",
            "pg_catalog.pg_backend_pid()",
        ),
        (
            "to_regclass",
            "t text",
            "regclass",
            "pg_catalog.to_regclass(t)",
        ),
    ] {
        ok(
            &s,
            c,
            &format!(
                "CREATE FUNCTION public.{name}({args}) RETURNS {ret} LANGUAGE plpgsql AS $$ BEGIN \
                 IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_role) THEN \
                 EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', pg_catalog.current_database()); \
                 END IF; RETURN {call}; END $$"
            ),
        )
        .await;
    }
    // A COPY that rejects a row: the sandbox records it on its own
    // connection in this database.
    common::put(
        &s,
        &f.bucket,
        "in/bad.csv",
        b"id,name,price,added\nnot-a-number,x,1,2024-01-01\n2,y,1,2024-01-02\n".to_vec(),
    )
    .await;
    let d = run(
        &s,
        c,
        &format!(
            "COPY items FROM 's3://{}/in/bad.csv' IAM_ROLE '{}' CSV IGNOREHEADER 1 MAXERROR 5",
            f.bucket, f.role
        ),
    )
    .await;
    assert_eq!(d.status(), Some(&StatusString::Finished), "{:?}", d.error());
    let errors = ok(&s, c, "SELECT COUNT(*) FROM stl_load_errors").await;
    assert_eq!(errors.result_rows(), 1);
    let su = ok(
        &s,
        c,
        "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_role::text",
    )
    .await;
    let r = s
        .data
        .get_statement_result()
        .id(su.id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.records()[0][0],
        aws_sdk_redshiftdata::types::Field::BooleanValue(false),
        "the role stayed an ordinary one"
    );
}
