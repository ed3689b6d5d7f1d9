//! Step 1: a role that Redshift can assume, so that `COPY` can read S3 as
//! the role rather than with anyone's keys.

use serde_json::{Value, json};

use crate::error::{Error, aws};

/// The role's trust policy: who may *become* the role. Here, Redshift.
///
/// ```
/// let p = own_project::iam_role::trust_policy();
/// assert_eq!(p["Statement"][0]["Principal"]["Service"], "redshift.amazonaws.com");
/// ```
pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "redshift.amazonaws.com" },
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The role named `name`, created unless it exists; returns its ARN.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// let arn = own_project::iam_role::create_role(&c.iam, "doc-role").await?;
/// assert!(arn.ends_with(":role/doc-role"));
/// // Again: the same role, not a second one.
/// assert_eq!(own_project::iam_role::create_role(&c.iam, "doc-role").await?, arn);
/// # Ok(()) }
/// ```
// ANCHOR: create_role
pub async fn create_role(iam: &aws_sdk_iam::Client, name: &str) -> Result<String, Error> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => return Ok(out.role.ok_or("GetRole returned no role")?.arn),
        // Only "no such entity" means absent; anything else is an error.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) => {}
        Err(e) => return Err(aws("GetRole")(e)),
    }
    let out = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust_policy().to_string())
        .send()
        .await
        .map_err(aws("CreateRole"))?;
    Ok(out.role.ok_or("CreateRole returned no role")?.arn)
}
// ANCHOR_END: create_role
