//! Steps 1 and 2: the IAM role Redshift assumes, and its S3 read policy.
//!
//! Redshift's `COPY` reads S3 *as a role*: the cluster holds the role, and
//! the role's policies say what it may read. So we need
//!
//! 1. a role whose **trust policy** lets `redshift.amazonaws.com` assume it;
//! 2. a **customer-managed policy** that allows exactly what `COPY` does on
//!    the configured data: `s3:GetObject` on the objects under the prefix and
//!    `s3:ListBucket` on the bucket, limited to that prefix. No write, no
//!    delete, no other bucket: the classic tutorial's `AmazonS3FullAccess`-style
//!    grant is the mistake we avoid.
//!
//! Everything created is tagged `managed-by=s3-to-redshift`; replacing or
//! deleting checks that tag first.
//!
//! # Layout
//!
//! - `mod.rs` (here): the two policy documents, what a role or policy looks
//!   like when found, the tag, and `teardown`.
//! - `role.rs`: step 1, the role (the book's "The IAM role" chapter).
//! - `policy.rs`: step 2, the S3 read policy and its attachment (the book's
//!   "The S3 read policy" chapter).

mod policy;
mod role;

pub use policy::*;
pub use role::*;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::config::{IamSettings, S3Uri};
use crate::error::Result;
use crate::report::{Action, MANAGED_BY_KEY, MANAGED_BY_VALUE, StepReport, not_ours};

/// The service principal that must be trusted.
pub const REDSHIFT_PRINCIPAL: &str = "redshift.amazonaws.com";

/// The trust policy: only Redshift may assume the role.
///
/// ```
/// let doc = s3_to_redshift::iam::trust_policy();
/// assert_eq!(doc["Statement"][0]["Principal"]["Service"], "redshift.amazonaws.com");
/// ```
pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": REDSHIFT_PRINCIPAL },
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The least-privilege read policy for `source` in `partition` (`aws`, …).
///
/// ```
/// use s3_to_redshift::config::S3Uri;
/// let src = S3Uri::parse("s3://sales-data/2024/").unwrap();
/// let doc = s3_to_redshift::iam::read_policy(&src, "aws");
/// assert_eq!(doc["Statement"][0]["Action"], "s3:GetObject");
/// assert_eq!(doc["Statement"][0]["Resource"], "arn:aws:s3:::sales-data/2024/*");
/// assert_eq!(doc["Statement"][1]["Condition"]["StringLike"]["s3:prefix"][0], "2024/*");
/// ```
pub fn read_policy(source: &S3Uri, partition: &str) -> Value {
    read_policy_for(std::slice::from_ref(source), partition)
}

/// [`read_policy`] over several locations (the data, and where `stage`
/// writes its parts): one `GetObject` statement listing every prefix, and one
/// `ListBucket` statement per bucket. With one location it is exactly
/// [`read_policy`]'s document.
pub fn read_policy_for(locations: &[S3Uri], partition: &str) -> Value {
    // A key like `data/sales.csv` is also a prefix to COPY (it loads every
    // object whose key starts with it), so the grant ends with `*` either way.
    let objects: Vec<String> = locations
        .iter()
        .map(|l| format!("arn:{partition}:s3:::{}/{}*", l.bucket, l.key))
        .collect();
    let mut buckets: Vec<&str> = locations.iter().map(|l| l.bucket.as_str()).collect();
    buckets.dedup();
    let one_or_many = |mut v: Vec<String>| {
        if v.len() == 1 {
            Value::String(v.remove(0))
        } else {
            json!(v)
        }
    };
    let mut statements = vec![json!({
        "Sid": "ReadTheData",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": one_or_many(objects)
    })];
    for (i, bucket) in buckets.iter().enumerate() {
        let prefixes: Vec<String> = locations
            .iter()
            .filter(|l| l.bucket == *bucket)
            .map(|l| format!("{}*", l.key))
            .collect();
        let sid = match i {
            0 => "ListThePrefix".to_string(),
            _ => format!("ListThePrefix{}", i + 1),
        };
        statements.push(json!({
            "Sid": sid,
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": format!("arn:{partition}:s3:::{bucket}"),
            "Condition": { "StringLike": { "s3:prefix": prefixes } }
        }));
    }
    json!({
        "Version": "2012-10-17",
        "Statement": statements
    })
}

/// What exists of the role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleState {
    /// The role's ARN.
    pub arn: String,
    /// Whether it carries this tool's tag.
    pub managed: bool,
    /// Whether its trust policy names `redshift.amazonaws.com`.
    pub trusts_redshift: bool,
}

/// What exists of the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyState {
    /// The policy's ARN.
    pub arn: String,
    /// Whether it carries this tool's tag.
    pub managed: bool,
    /// Whether its default version says what the config asks for.
    pub document_matches: bool,
    /// Whether it is attached to the configured role.
    pub attached: bool,
}

/// The tag everything this tool creates carries: `managed-by=s3-to-redshift`.
pub fn managed_tag() -> Tag {
    Tag::builder()
        .key(MANAGED_BY_KEY)
        .value(MANAGED_BY_VALUE)
        .build()
        .expect("key and value are set")
}

/// Whether `tags` hold this tool's tag.
pub fn is_managed(tags: &[Tag]) -> bool {
    tags.iter()
        .any(|t| t.key() == MANAGED_BY_KEY && t.value() == MANAGED_BY_VALUE)
}

/// IAM returns policy documents URL-encoded; this gives back the JSON.
pub fn decode_document(raw: &str) -> Option<Value> {
    let text = percent_decode_str(raw).decode_utf8().ok()?;
    serde_json::from_str(&text).ok()
}

/// The ARN a customer-managed policy of `name` has in `account`.
pub fn policy_arn(partition: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:policy/{name}")
}

/// Tears the role and policy down (for `down --with-iam`): only what this
/// tool created, unless `force`. Both are checked before either is deleted,
/// so a refusal leaves everything as it was. With `dry_run`, only reports.
pub async fn teardown(
    iam: &Client,
    settings: &IamSettings,
    policy_arn: &str,
    force: bool,
    dry_run: bool,
) -> Result<Vec<StepReport>> {
    // The document does not matter for deletion; Null never matches.
    // Both looked up at once: on AWS each IAM call is a round trip of its
    // own. Both are awaited and the policy's error comes first, so that
    // the message does not depend on which reply came back first.
    let (policy, role) = tokio::join!(
        inspect_policy(iam, policy_arn, &settings.role_name, &Value::Null),
        inspect_role(iam, &settings.role_name)
    );
    let (policy, role) = (policy?, role?);
    if policy.as_ref().is_some_and(|p| !p.managed) && !force {
        return Err(not_ours("delete", "IAM policy", &settings.policy_name));
    }
    if role.as_ref().is_some_and(|r| !r.managed) && !force {
        return Err(not_ours("delete", "IAM role", &settings.role_name));
    }
    let mut reports = Vec::new();
    if policy.is_some() {
        if !dry_run {
            delete_policy(iam, policy_arn).await?;
        }
        reports.push(StepReport::new(
            "iam-policy",
            &settings.policy_name,
            Action::Delete,
        ));
    } else {
        reports.push(StepReport::new(
            "iam-policy",
            &settings.policy_name,
            Action::Absent,
        ));
    }
    if role.is_some() {
        if !dry_run {
            delete_role(iam, &settings.role_name).await?;
        }
        reports.push(StepReport::new(
            "iam-role",
            &settings.role_name,
            Action::Delete,
        ));
    } else {
        reports.push(StepReport::new(
            "iam-role",
            &settings.role_name,
            Action::Absent,
        ));
    }
    Ok(reports)
}
