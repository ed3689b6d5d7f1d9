//! Step 2: a policy that may only read the data, attached to the role.

use serde_json::{Value, json};

use crate::error::{Error, aws};

/// Read access to `s3://bucket/key*` and nothing else: `GetObject` on the
/// objects under the key, `ListBucket` limited to that prefix (which `COPY`
/// needs to find the objects).
///
/// ```
/// let p = own_project::s3_policy::read_policy("my-data", "sales/");
/// assert_eq!(p["Statement"][0]["Resource"], "arn:aws:s3:::my-data/sales/*");
/// ```
pub fn read_policy(bucket: &str, key: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "s3:GetObject",
              "Resource": format!("arn:aws:s3:::{bucket}/{key}*") },
            { "Effect": "Allow", "Action": "s3:ListBucket",
              "Resource": format!("arn:aws:s3:::{bucket}"),
              "Condition": { "StringLike": { "s3:prefix": [format!("{key}*")] } } }
        ]
    })
}

/// The policy named `name`, created with `document` unless it exists;
/// returns its ARN, which holds the account id `GetCallerIdentity` tells.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// use own_project::s3_policy::{create_policy, read_policy};
/// let arn = create_policy(&c.iam, &c.sts, "doc-read", &read_policy("b", "k")).await?;
/// assert!(arn.ends_with(":policy/doc-read"));
/// # Ok(()) }
/// ```
// ANCHOR: create_policy
pub async fn create_policy(
    iam: &aws_sdk_iam::Client,
    sts: &aws_sdk_sts::Client,
    name: &str,
    document: &Value,
) -> Result<String, Error> {
    let identity = sts.get_caller_identity().send().await;
    let account = identity.map_err(aws("GetCallerIdentity"))?.account;
    let account = account.ok_or("GetCallerIdentity named no account")?;
    let arn = format!("arn:aws:iam::{account}:policy/{name}");
    match iam.get_policy().policy_arn(&arn).send().await {
        Ok(_) => return Ok(arn),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) => {}
        Err(e) => return Err(aws("GetPolicy")(e)),
    }
    let created = iam
        .create_policy()
        .policy_name(name)
        .policy_document(document.to_string())
        .send()
        .await;
    created.map_err(aws("CreatePolicy"))?;
    Ok(arn)
}
// ANCHOR_END: create_policy

/// Attaches policy `arn` to role `role` (attaching twice is no error).
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// use own_project::s3_policy::{attach_policy, create_policy, read_policy};
/// own_project::iam_role::create_role(&c.iam, "doc-attach").await?;
/// let arn = create_policy(&c.iam, &c.sts, "doc-attach-read", &read_policy("b", "k")).await?;
/// attach_policy(&c.iam, "doc-attach", &arn).await?;
/// attach_policy(&c.iam, "doc-attach", &arn).await?;
/// # Ok(()) }
/// ```
// ANCHOR: attach_policy
pub async fn attach_policy(iam: &aws_sdk_iam::Client, role: &str, arn: &str) -> Result<(), Error> {
    let attached = iam
        .attach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await;
    attached.map_err(aws("AttachRolePolicy"))?;
    Ok(())
}
// ANCHOR_END: attach_policy
