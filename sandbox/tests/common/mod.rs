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

/// What a COPY test needs.
pub struct CopyFixture {
    /// The cluster, with an `items` table.
    pub cluster: String,
    /// The role's ARN.
    pub role: String,
    /// The bucket the role may read.
    pub bucket: String,
}

/// A bucket, a role with a read policy on it, and a cluster holding the role.
pub async fn copy_fixture(s: &Stack, attach: bool) -> CopyFixture {
    let bucket = unique("sbx-data");
    s.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let role_name = unique("sbx-role");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"redshift.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = s
        .iam
        .create_role()
        .role_name(&role_name)
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"]}}]}}"#
    );
    s.iam
        .put_role_policy()
        .role_name(&role_name)
        .policy_name("read")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
    let cluster = cluster(s, attach.then_some(role.as_str())).await;
    ok(
        s,
        &cluster,
        "CREATE TABLE items (id int NOT NULL, name varchar(20), price numeric(8,2), added date)",
    )
    .await;
    CopyFixture {
        cluster,
        role,
        bucket,
    }
}

/// Puts `body` at `s3://bucket/key`.
pub async fn put(s: &Stack, bucket: &str, key: &str, body: Vec<u8>) {
    s.s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
}
