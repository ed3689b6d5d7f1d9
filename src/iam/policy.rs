//! Step 2: the customer-managed S3 read policy: looked up (with whether
//! it is attached), planned, created or updated to the configured document,
//! attached to the role, deleted only if ours.

use aws_sdk_iam::Client;
use serde_json::Value;

use super::{PolicyState, decode_document, is_managed, managed_tag};
use crate::config::IamSettings;
use crate::error::{Error, Result};
use crate::report::{Action, StepReport, decide};

/// Looks the policy up, and whether it is attached to `role`.
pub async fn inspect_policy(
    iam: &Client,
    arn: &str,
    role: &str,
    wanted: &Value,
) -> Result<Option<PolicyState>> {
    let policy = match iam.get_policy().policy_arn(arn).send().await {
        Ok(out) => out.policy,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::aws("IAM", "GetPolicy", arn, e)),
    };
    let Some(policy) = policy else {
        return Ok(None);
    };
    let tags = iam
        .list_policy_tags()
        .policy_arn(arn)
        .into_paginator()
        .items()
        .send()
        .collect::<std::result::Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("IAM", "ListPolicyTags", arn, e))?;
    let document_matches = match policy.default_version_id() {
        Some(version) => {
            let out = iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await
                .map_err(|e| Error::aws("IAM", "GetPolicyVersion", arn, e))?;
            out.policy_version()
                .and_then(|v| v.document())
                .and_then(decode_document)
                .is_some_and(|doc| &doc == wanted)
        }
        None => false,
    };
    let attached = is_attached(iam, role, arn).await?;
    Ok(Some(PolicyState {
        arn: arn.to_string(),
        managed: is_managed(&tags),
        document_matches,
        attached,
    }))
}

async fn is_attached(iam: &Client, role: &str, policy_arn: &str) -> Result<bool> {
    let mut pages = iam
        .list_attached_role_policies()
        .role_name(role)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        match item {
            Ok(p) if p.policy_arn() == Some(policy_arn) => return Ok(true),
            Ok(_) => {}
            // The role itself may not exist yet (plan before up).
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(Error::aws("IAM", "ListAttachedRolePolicies", role, e)),
        }
    }
    Ok(false)
}

/// What `up` will do with the policy. Shared by `plan` and `up`.
pub fn plan_policy(
    settings: &IamSettings,
    arn: &str,
    state: Option<&PolicyState>,
    force: bool,
) -> Result<StepReport> {
    let name = &settings.policy_name;
    let mut action = decide(
        "IAM policy",
        name,
        state.map(|s| s.managed),
        settings.on_existing,
        force,
    )?;
    let mut detail = None;
    if let (Action::Reuse, Some(s)) = (&action, state)
        && !s.document_matches
    {
        if s.managed {
            // Ours, and the config's S3 source moved: follow it.
            action = Action::Update;
            detail = Some(
                "its document differs from the config; a new default version is written"
                    .to_string(),
            );
        } else {
            detail = Some(
                "warning: its document differs from what the config asks for; it was not \
                 created by this tool, so it is left as it is"
                    .to_string(),
            );
        }
    }
    let attached = state.is_some_and(|s| s.attached) && action != Action::Replace;
    let attach_note = if attached {
        "attached"
    } else {
        "to be attached to the role"
    };
    let detail = match detail {
        Some(d) => format!("{d}; {attach_note}"),
        None => format!("{arn}, {attach_note}"),
    };
    Ok(StepReport::new("iam-policy", name, action).with_detail(detail))
}

/// Brings the policy in line with `planned` (from [`plan_policy`]) and makes
/// sure it is attached to the role.
pub async fn apply_policy(
    iam: &Client,
    settings: &IamSettings,
    arn: &str,
    document: &Value,
    planned: &StepReport,
) -> Result<()> {
    let name = &settings.policy_name;
    match planned.action {
        Action::Create => create_policy(iam, name, arn, document, &settings.role_name).await?,
        Action::Replace => {
            delete_policy(iam, arn).await?;
            create_policy(iam, name, arn, document, &settings.role_name).await?;
        }
        Action::Update => update_policy(iam, arn, document).await?,
        _ => {}
    }
    if !is_attached(iam, &settings.role_name, arn).await? {
        attach_policy(iam, &settings.role_name, arn).await?;
    }
    Ok(())
}

// ANCHOR: attach_policy
/// Attaches the policy `arn` to the role `role`.
///
/// Attaching a policy that is already attached succeeds, so running this
/// again is safe. The attachment is what lets the role read the data: a
/// policy that exists but is attached to nothing grants nothing.
pub async fn attach_policy(iam: &aws_sdk_iam::Client, role: &str, arn: &str) -> Result<()> {
    iam.attach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| Error::aws("IAM", "AttachRolePolicy", role, e))?;
    Ok(())
}
// ANCHOR_END: attach_policy

// ANCHOR: create_policy
/// Creates the policy; like [`create_role`], an "already exists" for a policy
/// with our tag and the same document is a retried request that had
/// succeeded, not a conflict.
pub async fn create_policy(
    iam: &aws_sdk_iam::Client,
    name: &str,
    arn: &str,
    document: &serde_json::Value,
    role: &str,
) -> Result<()> {
    let sent = iam
        .create_policy()
        .policy_name(name)
        .policy_document(document.to_string())
        .description("Read-only access to the S3 data s3-to-redshift loads")
        .tags(managed_tag())
        .send()
        .await;
    match sent {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_entity_already_exists_exception()) =>
        {
            match inspect_policy(iam, arn, role, document).await? {
                Some(p) if p.managed && p.document_matches => {
                    tracing::info!(
                        "policy {name} exists with our tag: an earlier attempt whose reply was lost created it"
                    );
                    Ok(())
                }
                _ => Err(Error::aws("IAM", "CreatePolicy", name, e)),
            }
        }
        Err(e) => Err(Error::aws("IAM", "CreatePolicy", name, e)),
    }
}
// ANCHOR_END: create_policy

/// Writes `document` as the new default version. IAM keeps at most five
/// versions, so the oldest non-default one goes first when the list is full.
async fn update_policy(iam: &Client, arn: &str, document: &Value) -> Result<()> {
    let out = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| Error::aws("IAM", "ListPolicyVersions", arn, e))?;
    let mut old: Vec<_> = out
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .collect();
    if out.versions().len() >= 5 {
        old.sort_by_key(|v| v.create_date().map(|d| d.secs()));
        if let Some(oldest) = old.first().and_then(|v| v.version_id()) {
            iam.delete_policy_version()
                .policy_arn(arn)
                .version_id(oldest)
                .send()
                .await
                .map_err(|e| Error::aws("IAM", "DeletePolicyVersion", arn, e))?;
        }
    }
    iam.create_policy_version()
        .policy_arn(arn)
        .policy_document(document.to_string())
        .set_as_default(true)
        .send()
        .await
        .map_err(|e| Error::aws("IAM", "CreatePolicyVersion", arn, e))?;
    Ok(())
}

/// Deletes a managed policy: detached from every role, user and group first,
/// its non-default versions next, as IAM requires.
pub async fn delete_policy(iam: &Client, arn: &str) -> Result<()> {
    let pages: Vec<_> = iam
        .list_entities_for_policy()
        .policy_arn(arn)
        .into_paginator()
        .send()
        .collect::<std::result::Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::aws("IAM", "ListEntitiesForPolicy", arn, e))?;
    for page in pages {
        for role in page.policy_roles() {
            if let Some(r) = role.role_name() {
                iam.detach_role_policy()
                    .role_name(r)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|e| Error::aws("IAM", "DetachRolePolicy", r, e))?;
            }
        }
        for user in page.policy_users() {
            if let Some(u) = user.user_name() {
                iam.detach_user_policy()
                    .user_name(u)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|e| Error::aws("IAM", "DetachUserPolicy", u, e))?;
            }
        }
        for group in page.policy_groups() {
            if let Some(g) = group.group_name() {
                iam.detach_group_policy()
                    .group_name(g)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|e| Error::aws("IAM", "DetachGroupPolicy", g, e))?;
            }
        }
    }
    let versions = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| Error::aws("IAM", "ListPolicyVersions", arn, e))?;
    for v in versions.versions() {
        if !v.is_default_version()
            && let Some(id) = v.version_id()
        {
            iam.delete_policy_version()
                .policy_arn(arn)
                .version_id(id)
                .send()
                .await
                .map_err(|e| Error::aws("IAM", "DeletePolicyVersion", arn, e))?;
        }
    }
    iam.delete_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| Error::aws("IAM", "DeletePolicy", arn, e))?;
    Ok(())
}
