//! What the sandbox's test files share: the local stack's clients, fresh
//! clusters, statements run to their end, and raw HTTP requests.
//!
//! Needs the local stack (`scripts/test.sh` starts it): moto for the cluster,
//! IAM and S3, and the sandbox at `AWS_ENDPOINT_URL_REDSHIFT_DATA`.

#![allow(dead_code)] // each test file uses its own part

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::types::StatusString;

/// The clients of the local stack.
pub struct Stack {
    pub data: Client,
    pub redshift: aws_sdk_redshift::Client,
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub endpoint: String,
}

pub async fn stack() -> Stack {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_REDSHIFT_DATA")
        .expect("AWS_ENDPOINT_URL_REDSHIFT_DATA is not set: run the tests with scripts/test.sh");
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "the sandbox must be local: {endpoint}"
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Stack {
        data: Client::new(&sdk),
        redshift: aws_sdk_redshift::Client::new(&sdk),
        iam: aws_sdk_iam::Client::new(&sdk),
        s3: aws_sdk_s3::Client::new(&sdk),
        endpoint,
    }
}

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}{}-{:x}",
        std::process::id() % 10_000,
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 0xfffff
    )
}

/// A fresh cluster in the emulator, optionally with a role attached.
pub async fn cluster(s: &Stack, role: Option<&str>) -> String {
    let id = unique("sbx");
    let mut req = s
        .redshift
        .create_cluster()
        .cluster_identifier(&id)
        .node_type("ra3.large")
        .cluster_type("single-node")
        .master_username("awsuser")
        .master_user_password("Passw0rd-1")
        .db_name("dev");
    if let Some(r) = role {
        req = req.iam_roles(r);
    }
    req.send().await.expect("create cluster in the emulator");
    id
}

pub async fn run(
    s: &Stack,
    cluster: &str,
    sql: &str,
) -> aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput {
    let id = s
        .data
        .execute_statement()
        .cluster_identifier(cluster)
        .database("dev")
        .db_user("awsuser")
        .sql(sql)
        .send()
        .await
        .expect("execute")
        .id
        .unwrap();
    wait(s, &id).await
}

pub async fn wait(
    s: &Stack,
    id: &str,
) -> aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput {
    for _ in 0..600 {
        let d = s
            .data
            .describe_statement()
            .id(id)
            .send()
            .await
            .expect("describe");
        if matches!(
            d.status(),
            Some(StatusString::Finished | StatusString::Failed | StatusString::Aborted)
        ) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("statement {id} did not end in 30 s");
}

pub async fn ok(
    s: &Stack,
    cluster: &str,
    sql: &str,
) -> aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput {
    let d = run(s, cluster, sql).await;
    assert_eq!(
        d.status(),
        Some(&StatusString::Finished),
        "{sql}: {:?}",
        d.error()
    );
    d
}

/// The stack's PostgreSQL superuser password, from its file.
pub fn admin_password() -> String {
    let file = std::env::var("S2R_SANDBOX_POSTGRES_PASSWORD_FILE").expect(
        "S2R_SANDBOX_POSTGRES_PASSWORD_FILE is not set: run the tests with scripts/test.sh",
    );
    std::fs::read_to_string(file)
        .expect("the stack's password file")
        .trim()
        .to_string()
}

/// Sends a raw request, for what the SDK would never send.
pub async fn raw(endpoint: &str, target: Option<&str>, body: &str) -> (u16, String) {
    let addr = endpoint.trim_start_matches("http://");
    raw_with(addr, addr, &[], target, body).await
}

/// Sends a raw request to `addr` naming `host` in its `Host` header, with
/// `headers` besides; returns the status and the whole reply. A closed
/// connection with no reply is a test failure.
pub async fn raw_with(
    addr: &str,
    host: &str,
    headers: &[(&str, &str)],
    target: Option<&str>,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    if let Some(t) = target {
        extra.push_str(&format!("X-Amz-Target: {t}\r\n"));
    }
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.1\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).await.unwrap();
    assert!(
        out.len() >= 12,
        "the connection closed with no reply: {out:?}"
    );
    let status = out[9..12].parse().unwrap();
    (status, out)
}
