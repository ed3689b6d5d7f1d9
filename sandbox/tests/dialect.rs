//! Every line of the support table (`sandbox/dialect.md`, read by
//! `dialect::support_table` and shown in the
//! book), run through the real `aws-sdk-redshiftdata` client against the
//! sandbox:
//!
//! - **served**: the example finishes, and when the table gives a result,
//!   the first value of the first row is that result (the value Redshift's
//!   documentation gives for the same example);
//! - **no-op**: the command finishes and changes nothing;
//! - **refused**: the statement fails with an error that names what was
//!   refused and says the sandbox lacks it.
//!
//! Needs the local stack (`scripts/test.sh` starts it).

use std::time::Duration;

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::types::{Field, StatusString};
use redshift_sandbox::dialect::support_table;

/// A value as the table writes it: integers and whole doubles without a
/// fraction, NULL as `NULL`.
fn shown(f: &Field) -> String {
    match f {
        Field::IsNull(_) => "NULL".into(),
        Field::LongValue(n) => n.to_string(),
        Field::DoubleValue(d) if d.fract() == 0.0 => format!("{d:.0}"),
        Field::DoubleValue(d) => d.to_string(),
        Field::BooleanValue(b) => b.to_string(),
        Field::StringValue(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

struct Sandbox {
    data: Client,
    cluster: String,
    /// A bucket and a role (attached to the cluster) that may read and
    /// write it: the support table's `{bucket}` and `{role}`.
    bucket: String,
    role: String,
}

impl Sandbox {
    /// A new cluster in the emulator (each test its own, named for it).
    async fn new(test: &str) -> Self {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_REDSHIFT_DATA").expect(
            "AWS_ENDPOINT_URL_REDSHIFT_DATA is not set: run the tests with scripts/test.sh",
        );
        assert!(
            endpoint.starts_with("http://127.0.0.1:"),
            "not local: {endpoint}"
        );
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let name = format!("dialect-{test}-{}", std::process::id());
        aws_sdk_s3::Client::new(&sdk)
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create a bucket in the emulator");
        let iam = aws_sdk_iam::Client::new(&sdk);
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"redshift.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let role = iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust)
            .send()
            .await
            .expect("create a role in the emulator")
            .role
            .expect("a role")
            .arn;
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:PutObject"],"Resource":["arn:aws:s3:::{name}","arn:aws:s3:::{name}/*"]}}]}}"#
        );
        iam.put_role_policy()
            .role_name(&name)
            .policy_name("read-write")
            .policy_document(policy)
            .send()
            .await
            .expect("a role policy");
        aws_sdk_redshift::Client::new(&sdk)
            .create_cluster()
            .cluster_identifier(&name)
            .node_type("ra3.large")
            .cluster_type("single-node")
            .master_username("awsuser")
            .master_user_password("Passw0rd-1")
            .db_name("dev")
            .iam_roles(&role)
            .send()
            .await
            .expect("create a cluster in the emulator");
        Self {
            data: Client::new(&sdk),
            cluster: name.clone(),
            bucket: name,
            role,
        }
    }

    /// Runs `sql`; the first value of the first row if it finished, or
    /// Redshift's error message.
    async fn run(&self, sql: &str) -> Result<Option<String>, String> {
        let id = self
            .data
            .execute_statement()
            .cluster_identifier(&self.cluster)
            .database("dev")
            .db_user("awsuser")
            .sql(sql)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?
            .id
            .expect("an id");
        for _ in 0..600 {
            let d = self
                .data
                .describe_statement()
                .id(&id)
                .send()
                .await
                .expect("describe");
            match d.status() {
                Some(StatusString::Finished) if d.has_result_set() == Some(true) => {
                    let out = self
                        .data
                        .get_statement_result()
                        .id(&id)
                        .send()
                        .await
                        .expect("result");
                    return Ok(out.records().first().and_then(|r| r.first()).map(shown));
                }
                Some(StatusString::Finished) => return Ok(None),
                Some(StatusString::Failed | StatusString::Aborted) => {
                    return Err(d.error().unwrap_or_default().to_string());
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        panic!("{sql}: did not end in 12 s");
    }
}

#[tokio::test]
async fn every_line_of_the_support_table_behaves_as_it_says() {
    let sandbox = Sandbox::new("table").await;
    let table = support_table().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        table.iter().filter(|e| e.status != "refused").count() >= 60,
        "the support table promises at least 60 served or accepted entries"
    );
    let mut wrong = Vec::new();
    for e in &table {
        let sql = e
            .example
            .replace("{bucket}", &sandbox.bucket)
            .replace("{role}", &sandbox.role);
        let got = sandbox.run(&sql).await;
        let ok = match (e.status.as_str(), &got) {
            ("served" | "no-op", Ok(value)) => e.result.is_none() || *value == e.result,
            ("refused", Err(message)) => {
                let first_word = e.name.trim_matches('`').split_whitespace().next().unwrap();
                message.contains(&first_word.to_uppercase()) && message.contains("sandbox")
            }
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "{} ({}): `{}` gave {got:?}, expected {:?}",
                e.name, e.status, e.example, e.result
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} lines differ:\n{}",
        wrong.len(),
        table.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn a_no_op_changes_nothing_and_copy_is_untouched_by_the_layer() {
    let sandbox = Sandbox::new("noop").await;
    sandbox.run("CREATE TABLE kept (n INT)").await.unwrap();
    sandbox
        .run("INSERT INTO kept VALUES (1), (2)")
        .await
        .unwrap();
    sandbox.run("VACUUM DELETE ONLY kept").await.unwrap();
    assert_eq!(
        sandbox
            .run("SELECT COUNT(*) FROM kept")
            .await
            .unwrap()
            .as_deref(),
        Some("2")
    );
    // IDENTITY(0, 1) numbers from 0, as on Redshift.
    sandbox
        .run("CREATE TABLE numbered (id BIGINT IDENTITY(0, 1), x INT)")
        .await
        .unwrap();
    sandbox
        .run("INSERT INTO numbered (x) VALUES (10), (11)")
        .await
        .unwrap();
    assert_eq!(
        sandbox
            .run("SELECT MIN(id) FROM numbered")
            .await
            .unwrap()
            .as_deref(),
        Some("0")
    );
    // A column that happens to be named like a rewritten word is a column.
    sandbox
        .run("CREATE TABLE words (nvl INT, sysdate INT)")
        .await
        .unwrap();
    sandbox
        .run("INSERT INTO words VALUES (7, 8)")
        .await
        .unwrap();
    assert_eq!(
        sandbox
            .run("SELECT words.sysdate FROM words")
            .await
            .unwrap()
            .as_deref(),
        Some("8")
    );
}
