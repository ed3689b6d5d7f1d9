//! IAM, as Redshift applies it to `COPY` and `UNLOAD`: the role named in
//! the statement must exist and be attached to the cluster, and its
//! policies decide each S3 request the statement makes.

use serde_json::Value;

use super::CopyContext;
use crate::aws::allowed;
use crate::pg::Target;

/// The role a COPY reads as, once IAM has let the cluster assume it: what
/// the S3 checks that follow need.
pub(crate) struct Access {
    role: String,
    policies: Vec<Value>,
}

impl Access {
    /// Whether the role's policies allow `action` on `resource`.
    pub(crate) fn allows(&self, action: &str, resource: &str, context: &[(&str, &str)]) -> bool {
        allowed(&self.policies, action, resource, context)
    }

    /// The error S3 gives Redshift when the role may not do `what`, worded
    /// as Redshift reports it, with the sandbox's details added.
    pub(crate) fn denied(&self, what: &str) -> String {
        format!(
            "ERROR: S3ServiceException:Access Denied,Status 403,Error AccessDenied,Rid sandbox,CanRetry 1\n  \
             Details: role {} may not {what}",
            self.role
        )
    }
}

/// IAM, as Redshift checks it: the role must exist and be attached to the
/// cluster; its policies are then read for the S3 checks.
pub(crate) async fn assume_role(
    ctx: &CopyContext<'_>,
    command: &str,
    role: Option<String>,
) -> Result<Access, String> {
    let aws = &ctx.aws;
    let role = role.ok_or_else(|| {
        format!("ERROR: {command} needs IAM_ROLE (or CREDENTIALS 'aws_iam_role=…')")
    })?;
    let role_name = role
        .rsplit_once(":role/")
        .map(|(_, name)| name.rsplit('/').next().unwrap_or(name).to_string())
        .ok_or_else(|| format!("ERROR: '{role}' is not an IAM role ARN"))?;
    let account = role.split(':').nth(4).unwrap_or("000000000000");
    let db_user = ctx.db_user.unwrap_or("awsuser");
    let not_authorized = || match &ctx.target {
        Target::Cluster(id) => format!(
            "ERROR: User arn:aws:redshift:{}:{account}:dbuser:{id}/{db_user} is not authorized to assume IAM Role {role}",
            aws.region
        ),
        Target::Workgroup(wg) => {
            format!("ERROR: Workgroup {wg} is not authorized to assume IAM Role {role}")
        }
    };
    if !aws
        .role_exists(&role_name)
        .await
        .map_err(|e| format!("ERROR: sandbox: {e}"))?
    {
        return Err(not_authorized());
    }
    if let Target::Cluster(id) = &ctx.target {
        let info = aws
            .check_cluster(id)
            .await
            .map_err(|e| format!("ERROR: {e}"))?;
        if !info.roles.contains(&role) {
            return Err(not_authorized());
        }
    }
    let policies = aws
        .role_policies(&role_name)
        .await
        .map_err(|e| format!("ERROR: sandbox: {e}"))?;
    Ok(Access { role, policies })
}
