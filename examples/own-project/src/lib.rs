//! The whole tutorial as one small program of your own: the six steps with
//! the AWS SDK for Rust called directly, one function per step, no
//! dependency on the `s3-to-redshift` crate. It is the counterpart of the
//! Python tutorial's `main.py`, and what the book's "Your own project"
//! chapter shows. The project's tests run it against the local stack.
//!
//! It is deliberately plain: it reuses what exists, waits with a deadline
//! and checks the rows, but it has none of the library's plans, tags checks
//! before deleting, staging table or load-error reports. The book's
//! chapters show those.

use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use serde_json::json;

/// Any error, with its message: this program only reports them.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: aws_error
/// An AWS SDK error as a reader needs it: the operation, AWS's error code
/// and its message, e.g. `CreateRole: EntityAlreadyExists: Role with name
/// x already exists.` An `SdkError`'s own `Display` says only "service
/// error"; `ProvideErrorMetadata` reads the code and message the service
/// sent, and `DisplayErrorContext` prints the whole chain of causes of
/// anything else (a timeout, a connection refused).
///
/// Use it as `.send().await.map_err(aws("CreateRole"))?`.
pub fn aws<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    move |e| match e.code() {
        Some(code) => format!(
            "{operation}: {code}: {}",
            e.message().unwrap_or("no message")
        )
        .into(),
        None => format!("{operation}: {}", DisplayErrorContext(&e)).into(),
    }
}
// ANCHOR_END: aws_error

/// Whether every service this program calls is reached on this machine:
/// the service's own `AWS_ENDPOINT_URL_<SERVICE>`, or else `AWS_ENDPOINT_URL`,
/// names `localhost` or a loopback address (as `env` reads the environment).
pub fn all_local(env: impl Fn(&str) -> Option<String>) -> bool {
    let ignored = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let global = env("AWS_ENDPOINT_URL");
    !ignored
        && ["IAM", "STS", "REDSHIFT", "REDSHIFT_DATA"]
            .iter()
            .all(|service| {
                let url = env(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| global.clone());
                url.is_some_and(|url| {
                    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                    let host = match authority.strip_prefix('[') {
                        Some(v6) => v6.split(']').next().unwrap_or_default(),
                        None => authority.split(':').next().unwrap_or_default(),
                    };
                    host.eq_ignore_ascii_case("localhost")
                        || host
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                })
            })
}

/// What the program needs from the `.cfg` file (the book's
/// `examples/pipeline.cfg` has all of it).
#[derive(Clone)]
pub struct Settings {
    /// `[AWS] REGION`.
    pub region: String,
    /// `[IAM] ROLE_NAME`.
    pub role_name: String,
    /// `[IAM] POLICY_NAME`.
    pub policy_name: String,
    /// `[CLUSTER] IDENTIFIER`.
    pub cluster_id: String,
    /// `[CLUSTER] CLUSTER_TYPE`: `single-node` or `multi-node`.
    pub cluster_type: String,
    /// `[CLUSTER] NODE_TYPE`.
    pub node_type: String,
    /// `[CLUSTER] NUM_NODES`.
    pub num_nodes: i32,
    /// `[CLUSTER] DB_NAME`.
    pub db_name: String,
    /// `[CLUSTER] DB_USER`.
    pub db_user: String,
    /// From `S3_TO_REDSHIFT_DB_PASSWORD`, never from the file.
    pub password: String,
    /// `[S3] SOURCE`: the bucket.
    pub bucket: String,
    /// `[S3] SOURCE`: the key (or prefix) after the bucket.
    pub key: String,
    /// `[TABLE] NAME`, as `schema.table`.
    pub table: String,
    /// `[COLUMNS]`: name and type, in the file's order.
    pub columns: Vec<(String, String)>,
    /// `[LOAD] IGNORE_HEADER`.
    pub ignore_header: u32,
}

// By hand, so that the password never reaches a log or a `{:?}`.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("region", &self.region)
            .field("role_name", &self.role_name)
            .field("cluster_id", &self.cluster_id)
            .field("password", &"(hidden)")
            .field("source", &format!("s3://{}/{}", self.bucket, self.key))
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads `path`, and the password from the environment.
    pub fn read(path: &str) -> Result<Self, Error> {
        let ini = ini::Ini::load_from_file(path).map_err(|e| format!("{path}: {e}"))?;
        let get = |section: &str, key: &str| -> Result<String, Error> {
            ini.get_from(Some(section), key)
                .map(|v| v.trim().to_string())
                .ok_or_else(|| format!("{path}: [{section}] {key} is missing").into())
        };
        let source = get("S3", "SOURCE")?;
        let (bucket, key) = source
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(|| format!("{path}: [S3] SOURCE must look like s3://bucket/key"))?;
        let columns = ini
            .section(Some("COLUMNS"))
            .ok_or_else(|| format!("{path}: the [COLUMNS] section is missing"))?
            .iter()
            .map(|(name, ty)| (name.to_string(), ty.trim().to_string()))
            .collect();
        let password = std::env::var("S3_TO_REDSHIFT_DB_PASSWORD")
            .map_err(|_| "set the cluster's admin password in S3_TO_REDSHIFT_DB_PASSWORD")?;
        Ok(Self {
            region: get("AWS", "REGION")?,
            role_name: get("IAM", "ROLE_NAME")?,
            policy_name: get("IAM", "POLICY_NAME")?,
            cluster_id: get("CLUSTER", "IDENTIFIER")?,
            cluster_type: get("CLUSTER", "CLUSTER_TYPE")?,
            node_type: get("CLUSTER", "NODE_TYPE")?,
            num_nodes: get("CLUSTER", "NUM_NODES")?.parse()?,
            db_name: get("CLUSTER", "DB_NAME")?,
            db_user: get("CLUSTER", "DB_USER")?,
            password,
            bucket: bucket.to_string(),
            key: key.to_string(),
            table: get("TABLE", "NAME")?,
            columns,
            ignore_header: get("LOAD", "IGNORE_HEADER")?.parse()?,
        })
    }
}

/// The SDK clients, made once from the shared configuration.
pub struct Clients {
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    redshift: aws_sdk_redshift::Client,
    data: aws_sdk_redshiftdata::Client,
}

// ANCHOR: run
/// Runs the six steps in order and returns the rows the table holds.
/// Every step reuses what an earlier run made, so running again is safe;
/// with `teardown`, the cluster, the policy and the role are deleted at the
/// end.
pub async fn run(s: &Settings, teardown: bool) -> Result<i64, Error> {
    // Credentials, endpoints and retries come from the environment and the
    // profile files; only the region is ours to set.
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(s.region.clone()))
        .load()
        .await;
    let c = Clients {
        iam: aws_sdk_iam::Client::new(&sdk),
        sts: aws_sdk_sts::Client::new(&sdk),
        redshift: aws_sdk_redshift::Client::new(&sdk),
        data: aws_sdk_redshiftdata::Client::new(&sdk),
    };
    let role_arn = create_role(&c, &s.role_name).await?;
    println!("1. role {role_arn}");
    let policy_arn = attach_read_policy(&c, s).await?;
    println!("2. policy {policy_arn}, attached");
    create_cluster(&c, s, &role_arn).await?;
    let endpoint = wait_for_cluster(&c, &s.cluster_id, Duration::from_secs(1800)).await?;
    println!("3. cluster {} available at {endpoint}", s.cluster_id);
    run_sql(&c, s, &[create_table_sql(s)?]).await?;
    println!("4. table {}", s.table);
    // DELETE and COPY in one batch, one transaction: running again replaces
    // the rows instead of doubling them, and a failed COPY keeps the old ones.
    let load = [
        format!("DELETE FROM {}", table_name(s)?),
        copy_sql(s, &role_arn)?,
    ];
    run_sql(&c, s, &load).await?;
    let rows = count_rows(&c, s).await?;
    println!("5. COPY done: {} holds {rows} rows", s.table);
    if teardown {
        delete_all(&c, s, &policy_arn).await?;
        println!("6. cluster, policy and role deleted");
    }
    Ok(rows)
}
// ANCHOR_END: run

/// Step 1: the role, with a trust policy that lets Redshift assume it.
async fn create_role(c: &Clients, name: &str) -> Result<String, Error> {
    match c.iam.get_role().role_name(name).send().await {
        Ok(out) => return Ok(out.role.ok_or("GetRole returned no role")?.arn),
        // Only "no such entity" means absent; anything else is an error.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) => {}
        Err(e) => return Err(aws("GetRole")(e)),
    }
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "redshift.amazonaws.com" },
            "Action": "sts:AssumeRole"
        }]
    });
    let out = c
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .map_err(aws("CreateRole"))?;
    Ok(out.role.ok_or("CreateRole returned no role")?.arn)
}

/// Step 2: a policy that may only read the data, attached to the role.
async fn attach_read_policy(c: &Clients, s: &Settings) -> Result<String, Error> {
    let identity = c.sts.get_caller_identity().send().await;
    let account = identity.map_err(aws("GetCallerIdentity"))?.account;
    let account = account.ok_or("GetCallerIdentity named no account")?;
    let arn = format!("arn:aws:iam::{account}:policy/{}", s.policy_name);
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "s3:GetObject",
              "Resource": format!("arn:aws:s3:::{}/{}*", s.bucket, s.key) },
            { "Effect": "Allow", "Action": "s3:ListBucket",
              "Resource": format!("arn:aws:s3:::{}", s.bucket),
              "Condition": { "StringLike": { "s3:prefix": [format!("{}*", s.key)] } } }
        ]
    });
    match c.iam.get_policy().policy_arn(&arn).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            c.iam
                .create_policy()
                .policy_name(&s.policy_name)
                .policy_document(document.to_string())
                .send()
                .await
                .map_err(aws("CreatePolicy"))?;
        }
        Err(e) => return Err(aws("GetPolicy")(e)),
    }
    // Attaching an attached policy succeeds: safe to repeat.
    c.iam
        .attach_role_policy()
        .role_name(&s.role_name)
        .policy_arn(&arn)
        .send()
        .await
        .map_err(aws("AttachRolePolicy"))?;
    Ok(arn)
}

/// Whether cluster `id` exists: only `ClusterNotFound` means it does not;
/// any other error is an error.
async fn cluster_exists(c: &Clients, id: &str) -> Result<bool, Error> {
    match c
        .redshift
        .describe_clusters()
        .cluster_identifier(id)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_cluster_not_found_fault()) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws("DescribeClusters")(e)),
    }
}

/// Step 3: the cluster, unless it exists.
async fn create_cluster(c: &Clients, s: &Settings, role_arn: &str) -> Result<(), Error> {
    if cluster_exists(c, &s.cluster_id).await? {
        return Ok(());
    }
    let mut req = c
        .redshift
        .create_cluster()
        .cluster_identifier(&s.cluster_id)
        .cluster_type(&s.cluster_type)
        .node_type(&s.node_type)
        .db_name(&s.db_name)
        .master_username(&s.db_user)
        .master_user_password(&s.password)
        .publicly_accessible(false)
        .encrypted(true)
        .iam_roles(role_arn);
    // Required for multi-node clusters; a single node needs none.
    if s.cluster_type == "multi-node" {
        req = req.number_of_nodes(s.num_nodes);
    }
    // A role made seconds ago may not be visible to Redshift yet: it then
    // answers InvalidParameterValue about the role. Try again for a while,
    // a little longer each time, rather than sleeping on every run.
    let mut delay = Duration::from_secs(2);
    loop {
        match req.clone().send().await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let about_the_role = e.as_service_error().is_some_and(|se| {
                    se.code() == Some("InvalidParameterValue")
                        && se
                            .message()
                            .is_some_and(|m| m.to_lowercase().contains("role"))
                });
                if !about_the_role || delay > Duration::from_secs(64) {
                    return Err(aws("CreateCluster")(e));
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

/// Step 3, continued: polls until the cluster is `available` and its role
/// `in-sync`, at most `timeout`. Returns its endpoint.
async fn wait_for_cluster(c: &Clients, id: &str, timeout: Duration) -> Result<String, Error> {
    let start = Instant::now();
    loop {
        let out = c
            .redshift
            .describe_clusters()
            .cluster_identifier(id)
            .send()
            .await
            .map_err(aws("DescribeClusters"))?;
        let cluster = out
            .clusters()
            .first()
            .ok_or("DescribeClusters returned no cluster")?;
        let status = cluster.cluster_status().unwrap_or("unknown");
        // COPY needs the role in place too, not only the cluster.
        let role_ready = cluster
            .iam_roles()
            .iter()
            .all(|r| r.apply_status() == Some("in-sync"));
        if status == "available" && role_ready {
            let e = cluster
                .endpoint()
                .ok_or("an available cluster has an endpoint")?;
            return Ok(format!(
                "{}:{}",
                e.address().unwrap_or("?"),
                e.port().unwrap_or(0)
            ));
        }
        if start.elapsed() > timeout {
            return Err(format!("cluster {id} still {status} after {timeout:?}").into());
        }
        println!("   cluster {id}: {status}, role in sync: {role_ready}");
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}

/// Runs `sqls` as one batch (one transaction) through the Data API and
/// waits for it; a failure carries Redshift's message. Returns the
/// finished statement's description.
///
/// The wait is the Data API's long polling: `DescribeStatement` with
/// `wait_time_seconds` answers as soon as the statement ends, or after that
/// many seconds (1 to 30) with the status it has then. A loop remains only
/// for statements that run longer than one wait.
async fn run_sql(
    c: &Clients,
    s: &Settings,
    sqls: &[String],
) -> Result<aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput, Error> {
    use aws_sdk_redshiftdata::types::StatusString;
    let id = c
        .data
        .batch_execute_statement()
        .cluster_identifier(&s.cluster_id)
        .database(&s.db_name)
        .db_user(&s.db_user)
        .set_sqls(Some(sqls.to_vec()))
        .send()
        .await
        .map_err(aws("BatchExecuteStatement"))?
        .id
        .ok_or("BatchExecuteStatement returned no id")?;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let d = c
            .data
            .describe_statement()
            .id(&id)
            .wait_time_seconds(20)
            .send()
            .await
            .map_err(aws("DescribeStatement"))?;
        match d.status() {
            Some(StatusString::Finished) => return Ok(d),
            Some(StatusString::Failed | StatusString::Aborted) => {
                return Err(
                    format!("{sqls:?} failed: {}", d.error().unwrap_or("no message")).into(),
                );
            }
            _ => {}
        }
        if Instant::now() > deadline {
            // Do not leave it running unseen.
            let cancel = c.data.cancel_statement().id(&id).send().await;
            cancel.map_err(aws("CancelStatement"))?;
            return Err(format!("{sqls:?} still running after 15 minutes; cancelled").into());
        }
    }
}

/// Step 5, checked: the table's row count, from `GetStatementResult`.
async fn count_rows(c: &Clients, s: &Settings) -> Result<i64, Error> {
    let sql = format!("SELECT COUNT(*) FROM {}", table_name(s)?);
    let done = run_sql(c, s, &[sql]).await?;
    // A batch's result belongs to its sub-statement.
    let id = done
        .sub_statements()
        .first()
        .map_or(done.id(), |sub| sub.id());
    let result = c.data.get_statement_result().id(id).send().await;
    let result = result.map_err(aws("GetStatementResult"))?;
    match result.records().first().and_then(|row| row.first()) {
        Some(aws_sdk_redshiftdata::types::Field::LongValue(n)) => Ok(*n),
        other => Err(format!("COUNT(*) returned {other:?}").into()),
    }
}

/// Step 6: the cluster (waited on until gone), then the policy and the role.
async fn delete_all(c: &Clients, s: &Settings, policy_arn: &str) -> Result<(), Error> {
    c.redshift
        .delete_cluster()
        .cluster_identifier(&s.cluster_id)
        .skip_final_cluster_snapshot(true)
        .send()
        .await
        .map_err(aws("DeleteCluster"))?;
    let start = Instant::now();
    while cluster_exists(c, &s.cluster_id).await? {
        if start.elapsed() > Duration::from_secs(1800) {
            return Err(format!("cluster {} not gone after 30 minutes", s.cluster_id).into());
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    // IAM refuses to delete an attached policy, or a role with policies.
    c.iam
        .detach_role_policy()
        .role_name(&s.role_name)
        .policy_arn(policy_arn)
        .send()
        .await
        .map_err(aws("DetachRolePolicy"))?;
    let deleted = c.iam.delete_policy().policy_arn(policy_arn).send().await;
    deleted.map_err(aws("DeletePolicy"))?;
    let deleted = c.iam.delete_role().role_name(&s.role_name).send().await;
    deleted.map_err(aws("DeleteRole"))?;
    Ok(())
}

/// A name Redshift takes as it is: letters, digits and `_`, not starting
/// with a digit. Anything else is refused rather than quoted into SQL.
fn ident(name: &str) -> Result<String, Error> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(format!("\"{}\"", name.to_ascii_lowercase()))
    } else {
        Err(format!("`{name}` is not a plain SQL name (letters, digits, _)").into())
    }
}

/// `schema.table`, each part checked.
fn table_name(s: &Settings) -> Result<String, Error> {
    match s.table.split_once('.') {
        Some((schema, table)) => Ok(format!("{}.{}", ident(schema)?, ident(table)?)),
        None => ident(&s.table),
    }
}

/// A column type from a short list, so that no SQL rides in on a type.
fn column_type(ty: &str) -> Result<String, Error> {
    let upper = ty.to_ascii_uppercase();
    let base = upper.split(['(', ' ']).next().unwrap_or_default();
    let known = [
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "DECIMAL",
        "REAL",
        "DOUBLE",
        "BOOLEAN",
        "CHAR",
        "VARCHAR",
        "DATE",
        "TIMESTAMP",
        "TIMESTAMPTZ",
    ];
    let allowed = |c: char| c.is_ascii_alphanumeric() || " (),".contains(c);
    if known.contains(&base) && upper.chars().all(allowed) {
        Ok(upper)
    } else {
        Err(format!("`{ty}` is not a column type this program knows").into())
    }
}

/// A string literal: quotes doubled, and backslashes too, since Redshift
/// reads `\` as an escape inside literals.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Step 4's SQL: the table, if it does not exist.
fn create_table_sql(s: &Settings) -> Result<String, Error> {
    let mut cols = Vec::new();
    for (name, ty) in &s.columns {
        cols.push(format!("  {} {}", ident(name)?, column_type(ty)?));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n)",
        table_name(s)?,
        cols.join(",\n")
    ))
}

/// Step 5's SQL: `COPY` from S3 as the role, CSV with a header.
fn copy_sql(s: &Settings, role_arn: &str) -> Result<String, Error> {
    let source = format!("s3://{}/{}", s.bucket, s.key);
    Ok(format!(
        "COPY {} FROM {} IAM_ROLE {} REGION {} CSV IGNOREHEADER {} EMPTYASNULL DATEFORMAT 'auto'",
        table_name(s)?,
        literal(&source),
        literal(role_arn),
        literal(&s.region),
        s.ignore_header
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_types_and_literals_cannot_carry_sql() {
        assert!(super::ident("sales; DROP TABLE x").is_err());
        assert!(super::ident("1st").is_err());
        assert_eq!(super::ident("Sold_On").unwrap(), "\"sold_on\"");
        assert!(super::column_type("INTEGER); DROP TABLE x; --").is_err());
        assert_eq!(
            super::column_type("decimal(10,2)").unwrap(),
            "DECIMAL(10,2)"
        );
        assert_eq!(super::literal(r"it's a \ test"), r"'it''s a \\ test'");
    }
}
