//! From S3 to Redshift with the AWS SDK for Rust, step by step: the small
//! library the tutorial teaches, one module per step, each function the
//! step as you would write it with the SDK alone. It is the counterpart of
//! the Python tutorial's `support_functions.py` (the steps) and
//! `sql_queries.py` (the SQL, in [`sql`]); `main.rs` is its `main.py`.
//!
//! # Layout
//!
//! - [`config`]: the `.cfg` file, read into [`config::Settings`].
//! - [`data`]: the sample CSV put in S3 (on AWS it is usually there).
//! - [`iam_role`]: step 1, a role Redshift can assume.
//! - [`s3_policy`]: step 2, a read-only policy on the data, attached.
//! - [`cluster`]: step 3, the cluster, waited on until it can load.
//! - [`table`]: step 4, the table.
//! - [`copy`]: step 5, `COPY` from S3.
//! - [`verify`]: step 6, the rows counted.
//! - [`teardown`]: step 7, everything deleted, when asked.
//! - [`statement`]: SQL through the Redshift Data API, with long polling.
//! - [`sql`]: every SQL text, from checked names and escaped literals.
//! - [`error`]: the one error type, carrying AWS's code and message.
//!
//! Each step takes the one SDK client it needs, and treats only the one
//! service error that means "absent" as absent: every other error stops
//! the run with its operation, code and message. Each is safe to run again.
//!
//! The production loader (the `s3-to-redshift` command) does the same job
//! with what a scheduled job needs around it: plans, tags checked before
//! deleting, a staging table and a ledger, load modes, Serverless.

#![warn(missing_docs)]

pub mod cluster;
pub mod config;
pub mod copy;
pub mod data;
pub mod error;
pub mod iam_role;
pub mod s3_policy;
pub mod sql;
pub mod statement;
pub mod table;
pub mod teardown;
pub mod verify;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};

pub use config::Settings;
pub use error::Error;

/// The SDK clients, made once from the shared configuration.
#[derive(Clone, Debug)]
pub struct Clients {
    /// IAM: the role and the policy.
    pub iam: aws_sdk_iam::Client,
    /// STS: the account id, for the policy's ARN.
    pub sts: aws_sdk_sts::Client,
    /// S3: the data.
    pub s3: aws_sdk_s3::Client,
    /// Redshift's control plane: the cluster.
    pub redshift: aws_sdk_redshift::Client,
    /// The Redshift Data API: SQL.
    pub data: aws_sdk_redshiftdata::Client,
}

impl Clients {
    /// Every client, from the environment and the profile files
    /// (credentials, endpoints, retries); the region is `region`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let c = own_project::Clients::new("us-east-1").await;
    /// assert_eq!(c.data.config().region().map(|r| r.as_ref()), Some("us-east-1"));
    /// # }
    /// ```
    pub async fn new(region: &str) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .load()
            .await;
        Self {
            iam: aws_sdk_iam::Client::new(&sdk),
            sts: aws_sdk_sts::Client::new(&sdk),
            s3: aws_sdk_s3::Client::new(&sdk),
            redshift: aws_sdk_redshift::Client::new(&sdk),
            data: aws_sdk_redshiftdata::Client::new(&sdk),
        }
    }
}

/// Runs the steps in order and returns the rows the table holds. Every
/// step reuses what an earlier run made, so running again is safe; with
/// `teardown`, the cluster, the policy and the role are deleted at the end.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// # let mut s = own_project::doc_cluster(&c, "doc-run").await?;
/// # s.policy_name = "doc-run-read".into();
/// assert_eq!(own_project::run(&s, true).await?, 10);
/// # Ok(()) }
/// ```
// ANCHOR: run
pub async fn run(s: &Settings, teardown: bool) -> Result<i64, Error> {
    let c = Clients::new(&s.region).await;
    let role_arn = iam_role::create_role(&c.iam, &s.role_name).await?;
    println!("1. role {role_arn}");
    let document = s3_policy::read_policy(&s.bucket, &s.key);
    let policy_arn = s3_policy::create_policy(&c.iam, &c.sts, &s.policy_name, &document).await?;
    s3_policy::attach_policy(&c.iam, &s.role_name, &policy_arn).await?;
    println!("2. policy {policy_arn}, attached");
    cluster::create_cluster(&c.redshift, s, &role_arn).await?;
    let wait = Duration::from_secs(1800);
    let endpoint = cluster::wait_until_available(&c.redshift, &s.cluster_id, wait).await?;
    println!("3. cluster {} available at {endpoint}", s.cluster_id);
    table::create_table(&c.data, s).await?;
    println!("4. table {}", s.table);
    let loaded = copy::copy_from_s3(&c.data, s, &role_arn).await?;
    let rows = verify::count_rows(&c.data, s).await?;
    println!("5. COPY loaded {loaded} rows; {} holds {rows}", s.table);
    if teardown {
        teardown::delete_cluster(&c.redshift, &s.cluster_id, wait).await?;
        teardown::delete_role_and_policy(&c.iam, &s.role_name, &policy_arn).await?;
        println!("6. cluster, policy and role deleted");
    }
    Ok(rows)
}
// ANCHOR_END: run

/// Whether every service the steps call is reached on this machine: the
/// service's own `AWS_ENDPOINT_URL_<SERVICE>`, or else `AWS_ENDPOINT_URL`,
/// names `localhost` or a loopback address (as `env` reads the environment).
///
/// ```
/// let env = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "http://127.0.0.1:5000".to_string());
/// assert!(own_project::all_local(env));
/// assert!(!own_project::all_local(|_| None));
/// ```
pub fn all_local(env: impl Fn(&str) -> Option<String>) -> bool {
    let ignored = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let global = env("AWS_ENDPOINT_URL");
    let local = |url: String| {
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
    };
    !ignored
        && ["IAM", "STS", "S3", "REDSHIFT", "REDSHIFT_DATA"]
            .iter()
            .all(|service| {
                let url = env(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| global.clone());
                url.is_some_and(local)
            })
}

/// For the examples in these docs: clients for the local stack, refused
/// unless every service is on this machine.
#[doc(hidden)]
pub async fn local_clients() -> Result<Clients, Error> {
    if !all_local(|k| std::env::var(k).ok()) {
        return Err(Error::Config(
            "these examples run against the local stack only: eval \"$(scripts/sandbox.sh start)\""
                .into(),
        ));
    }
    Ok(Clients::new("us-east-1").await)
}

/// For the examples in these docs: the book's settings with a cluster,
/// role and bucket named `name`, the cluster made and the sample uploaded.
#[doc(hidden)]
pub async fn doc_cluster(c: &Clients, name: &str) -> Result<Settings, Error> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipeline.cfg");
    let mut s = Settings::read_with_password(path, "Local-Passw0rd".into())?;
    s.cluster_id = name.into();
    s.role_name = format!("{name}-role");
    s.bucket = name.into();
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sales.csv");
    data::upload_file(&c.s3, &s.bucket, &s.key, csv).await?;
    let role = iam_role::create_role(&c.iam, &s.role_name).await?;
    let document = s3_policy::read_policy(&s.bucket, &s.key);
    let policy =
        s3_policy::create_policy(&c.iam, &c.sts, &format!("{name}-read"), &document).await?;
    s3_policy::attach_policy(&c.iam, &s.role_name, &policy).await?;
    cluster::create_cluster(&c.redshift, &s, &role).await?;
    Ok(s)
}
