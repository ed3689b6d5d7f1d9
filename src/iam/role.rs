//! Step 1: the role Redshift assumes: looked up, planned, created with
//! the trust policy and the tag, replaced or deleted only if ours.

use aws_sdk_iam::Client;

use super::{
    REDSHIFT_PRINCIPAL, RoleState, decode_document, is_managed, managed_tag, trust_policy,
};
use crate::config::IamSettings;
use crate::error::{Error, Result};
use crate::report::{Action, StepReport, decide};

// ANCHOR: inspect_role
/// Looks the role up. `Ok(None)` only for "no such role"; any other failure
/// (no permission, throttling beyond retries) is an error, never "absent".
pub async fn inspect_role(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<RoleState>> {
    let out = match iam.get_role().role_name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::aws("IAM", "GetRole", name, e)),
    };
    let role = out.role.ok_or_else(|| Error::Aws {
        service: "IAM",
        operation: "GetRole",
        resource: name.into(),
        code: None,
        message: "the reply held no role".into(),
    })?;
    // GetRole's tag list is not guaranteed complete; ListRoleTags is.
    let tags = iam
        .list_role_tags()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("IAM", "ListRoleTags", name, e))?;
    let trusts_redshift = role
        .assume_role_policy_document()
        .and_then(decode_document)
        .is_some_and(|doc| doc.to_string().contains(REDSHIFT_PRINCIPAL));
    Ok(Some(RoleState {
        arn: role.arn,
        managed: is_managed(&tags),
        trusts_redshift,
    }))
}
// ANCHOR_END: inspect_role

/// What `up` will do with the role. Shared by `plan` and `up`.
pub fn plan_role(
    settings: &IamSettings,
    state: Option<&RoleState>,
    force: bool,
) -> Result<StepReport> {
    let name = &settings.role_name;
    let action = decide(
        "IAM role",
        name,
        state.map(|s| s.managed),
        settings.on_existing,
        force,
    )?;
    let mut report = StepReport::new("iam-role", name, action.clone());
    if let (Action::Reuse, Some(s)) = (&action, state) {
        if !s.trusts_redshift {
            return Err(Error::Refused {
                action: "reuse",
                kind: "IAM role",
                name: name.clone(),
                reason: format!(
                    "its trust policy does not let {REDSHIFT_PRINCIPAL} assume it, so COPY \
                     would fail; use another ROLE_NAME, or ON_EXISTING = replace"
                ),
            });
        }
        report = report.with_detail(s.arn.clone());
    }
    Ok(report)
}

/// Brings the role in line with `planned` (from [`plan_role`]); returns its ARN.
pub async fn apply_role(
    iam: &Client,
    settings: &IamSettings,
    planned: &StepReport,
    existing: Option<&RoleState>,
) -> Result<String> {
    let name = &settings.role_name;
    match (&planned.action, existing) {
        (Action::Reuse, Some(s)) => Ok(s.arn.clone()),
        (Action::Replace, Some(_)) => {
            delete_role(iam, name).await?;
            create_role(iam, name).await
        }
        _ => create_role(iam, name).await,
    }
}

// ANCHOR: create_role
/// Creates the role with the trust policy and this tool's tag.
///
/// If IAM answers that the role already exists and it carries this tool's
/// tag, it is taken as created. Why: the SDK retries a request whose reply
/// was lost (a dropped connection, a truncated body), and the first attempt
/// may well have created the role; failing then would make a transient
/// network fault look like a conflict.
pub async fn create_role(iam: &aws_sdk_iam::Client, name: &str) -> Result<String> {
    let sent = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust_policy().to_string())
        .description("Lets Amazon Redshift read the S3 data to load (created by s3-to-redshift)")
        .tags(managed_tag())
        .send()
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_entity_already_exists_exception()) =>
        {
            match inspect_role(iam, name).await? {
                Some(role) if role.managed => {
                    tracing::info!(
                        "role {name} exists with our tag: an earlier attempt whose reply was lost created it"
                    );
                    return Ok(role.arn);
                }
                _ => return Err(Error::aws("IAM", "CreateRole", name, e)),
            }
        }
        Err(e) => return Err(Error::aws("IAM", "CreateRole", name, e)),
    };
    out.role.map(|r| r.arn).ok_or_else(|| Error::Aws {
        service: "IAM",
        operation: "CreateRole",
        resource: name.into(),
        code: None,
        message: "the reply held no role".into(),
    })
}
// ANCHOR_END: create_role

/// Deletes a role: IAM refuses while policies are attached or inline, or while
/// it sits in an instance profile, so those go first (all pages of each).
pub async fn delete_role(iam: &Client, name: &str) -> Result<()> {
    let attached: Vec<_> = iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("IAM", "ListAttachedRolePolicies", name, e))?;
    for p in attached {
        if let Some(arn) = p.policy_arn() {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| Error::aws("IAM", "DetachRolePolicy", name, e))?;
        }
    }
    let inline: Vec<String> = iam
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("IAM", "ListRolePolicies", name, e))?;
    for policy in inline {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
            .map_err(|e| Error::aws("IAM", "DeleteRolePolicy", name, e))?;
    }
    let profiles: Vec<_> = iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("IAM", "ListInstanceProfilesForRole", name, e))?;
    for profile in profiles {
        iam.remove_role_from_instance_profile()
            .role_name(name)
            .instance_profile_name(profile.instance_profile_name())
            .send()
            .await
            .map_err(|e| Error::aws("IAM", "RemoveRoleFromInstanceProfile", name, e))?;
    }
    iam.delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| Error::aws("IAM", "DeleteRole", name, e))?;
    Ok(())
}
