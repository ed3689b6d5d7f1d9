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

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::config::{IamSettings, S3Uri};
use crate::error::{Error, Result};
use crate::report::{Action, MANAGED_BY_KEY, MANAGED_BY_VALUE, StepReport, decide, not_ours};

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
        statements.push(json!({
            "Sid": if i == 0 { "ListThePrefix".to_string() } else { format!("ListThePrefix{}", i + 1) },
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
    let policy = inspect_policy(iam, policy_arn, &settings.role_name, &Value::Null).await?;
    let role = inspect_role(iam, &settings.role_name).await?;
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
