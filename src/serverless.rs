//! Step 3 for Redshift Serverless: a workgroup instead of a cluster
//! (`[SERVERLESS]` in the config).
//!
//! Serverless splits what a cluster is in two: a *namespace* holds the
//! databases and the IAM roles, a *workgroup* provides the compute and the
//! endpoint. SQL goes to the workgroup through the same Data API
//! (`WorkgroupName` instead of `ClusterIdentifier`, and no database user:
//! you connect as your IAM identity).
//!
//! Two ways to use it:
//! - `PROVISION = false` (the default): target a workgroup that exists. `up`
//!   checks it is `AVAILABLE` and that its namespace has the role, and says
//!   what to do if not; it changes nothing there.
//! - `PROVISION = true`: `up` creates the namespace (with the role, and the
//!   admin password kept by AWS Secrets Manager so this tool never holds
//!   it) and the workgroup, tagged as ours, and waits for them; `down`
//!   deletes them, only if tagged ours.
//!
//! No emulator serves Redshift Serverless: the provisioning is tested with
//! the SDK's mocks, the SQL path against the sandbox.

use std::time::Duration;

use aws_sdk_redshiftserverless::Client;
use aws_sdk_redshiftserverless::types::{NamespaceStatus, Tag, WorkgroupStatus};

use crate::config::ServerlessSettings;
use crate::error::{Error, Result};
use crate::report::{MANAGED_BY_KEY, MANAGED_BY_VALUE, Observer, not_ours};
use crate::wait::{Poll, Polling, wait_until};

/// A namespace as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceState {
    /// `AVAILABLE`, `MODIFYING`, `DELETING`.
    pub status: String,
    /// The associated IAM roles (as the service lists them).
    pub iam_roles: Vec<String>,
    /// Whether it carries this tool's tag.
    pub managed: bool,
}

impl NamespaceState {
    /// Whether `role_arn` is associated with the namespace.
    pub fn has_role(&self, role_arn: &str) -> bool {
        // Listed as `IamRole(applyStatus=in-sync, iamRoleArn=arn:…)` or as
        // the bare ARN, depending on the API version.
        self.iam_roles.iter().any(|r| {
            r == role_arn
                || r.contains(&format!("iamRoleArn={role_arn})"))
                || r.contains(&format!("iamRoleArn={role_arn},"))
        })
    }
}

/// A workgroup as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkgroupState {
    /// `CREATING`, `AVAILABLE`, `MODIFYING`, `DELETING`.
    pub status: String,
    /// The namespace it serves.
    pub namespace: String,
    /// Whether it carries this tool's tag.
    pub managed: bool,
}

fn managed_tag() -> Tag {
    Tag::builder()
        .key(MANAGED_BY_KEY)
        .value(MANAGED_BY_VALUE)
        .build()
        .expect("key and value are set")
}

async fn is_managed(client: &Client, arn: &str) -> Result<bool> {
    let tags = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| Error::aws("Redshift Serverless", "ListTagsForResource", arn, e))?;
    Ok(tags
        .tags()
        .iter()
        .any(|t| t.key() == MANAGED_BY_KEY && t.value() == MANAGED_BY_VALUE))
}

/// Looks the namespace up; `None` if it does not exist.
pub async fn inspect_namespace(client: &Client, name: &str) -> Result<Option<NamespaceState>> {
    let out = match client.get_namespace().namespace_name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::aws("Redshift Serverless", "GetNamespace", name, e)),
    };
    let Some(ns) = out.namespace else {
        return Ok(None);
    };
    let managed = match ns.namespace_arn() {
        Some(arn) => is_managed(client, arn).await?,
        None => false,
    };
    Ok(Some(NamespaceState {
        status: ns
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        iam_roles: ns.iam_roles().to_vec(),
        managed,
    }))
}

/// Looks the workgroup up; `None` if it does not exist.
pub async fn inspect_workgroup(client: &Client, name: &str) -> Result<Option<WorkgroupState>> {
    let out = match client.get_workgroup().workgroup_name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::aws("Redshift Serverless", "GetWorkgroup", name, e)),
    };
    let Some(wg) = out.workgroup else {
        return Ok(None);
    };
    let managed = match wg.workgroup_arn() {
        Some(arn) => is_managed(client, arn).await?,
        None => false,
    };
    Ok(Some(WorkgroupState {
        status: wg
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        namespace: wg.namespace_name().unwrap_or_default().to_string(),
        managed,
    }))
}

/// Checks an existing workgroup can load as `role_arn`: it is `AVAILABLE`
/// and its namespace has the role. Changes nothing.
pub async fn check_ready(
    client: &Client,
    settings: &ServerlessSettings,
    role_arn: &str,
) -> Result<WorkgroupState> {
    let name = &settings.workgroup;
    let refuse = |reason: String| Error::Refused {
        action: "load into",
        kind: "Serverless workgroup",
        name: name.clone(),
        reason,
    };
    let Some(wg) = inspect_workgroup(client, name).await? else {
        return Err(refuse(
            "it does not exist; create it, or set [SERVERLESS] PROVISION = true and run `up`"
                .into(),
        ));
    };
    if wg.status != WorkgroupStatus::Available.as_str() {
        return Err(refuse(format!(
            "it is {}, not AVAILABLE; wait and run the command again",
            wg.status
        )));
    }
    let ns = inspect_namespace(client, &wg.namespace).await?;
    if !ns.as_ref().is_some_and(|n| n.has_role(role_arn)) {
        return Err(refuse(format!(
            "its namespace `{}` does not have role {role_arn}; associate it (console, or \
             `aws redshift-serverless update-namespace --namespace-name {} --iam-roles …` listing \
             every role to keep), or set PROVISION = true for a namespace this tool manages",
            wg.namespace, wg.namespace
        )));
    }
    Ok(wg)
}

/// The ARNs of the roles `ns` has. GetNamespace lists each as
/// `IamRole(applyStatus=in-sync, iamRoleArn=arn:…)` (or, from some
/// emulators, the bare ARN).
fn role_arns(ns: &NamespaceState) -> Vec<String> {
    ns.iam_roles
        .iter()
        .filter_map(|r| {
            r.split("iamRoleArn=")
                .nth(1)
                .map(|rest| {
                    rest.trim_end_matches(')')
                        .split(',')
                        .next()
                        .unwrap_or(rest)
                        .to_string()
                })
                .or_else(|| r.starts_with("arn:").then(|| r.clone()))
        })
        .collect()
}

/// Creates (or completes) the namespace and the workgroup, tagged as ours,
/// with `role_arn` associated, and waits until the workgroup is available.
/// Existing ones not tagged as ours are refused unless `force`.
pub async fn provision(
    client: &Client,
    settings: &ServerlessSettings,
    role_arn: &str,
    force: bool,
    observer: &dyn Observer,
) -> Result<WorkgroupState> {
    let ns_name = &settings.namespace;
    match inspect_namespace(client, ns_name).await? {
        None => {
            client
                .create_namespace()
                .namespace_name(ns_name)
                .db_name(&settings.db_name)
                .iam_roles(role_arn)
                .default_iam_role_arn(role_arn)
                // AWS keeps the admin password in Secrets Manager: this
                // tool never sees it, so it cannot leak it.
                .manage_admin_password(true)
                .tags(managed_tag())
                .send()
                .await
                .map_err(|e| Error::aws("Redshift Serverless", "CreateNamespace", ns_name, e))?;
        }
        Some(ns) if !ns.managed && !force => {
            return Err(not_ours("change", "Serverless namespace", ns_name));
        }
        Some(ns) if !ns.has_role(role_arn) => {
            // update-namespace replaces the list: keep the roles it has.
            let mut roles = role_arns(&ns);
            roles.push(role_arn.to_string());
            client
                .update_namespace()
                .namespace_name(ns_name)
                .set_iam_roles(Some(roles))
                .send()
                .await
                .map_err(|e| Error::aws("Redshift Serverless", "UpdateNamespace", ns_name, e))?;
        }
        Some(_) => {}
    }
    let wg_name = &settings.workgroup;
    match inspect_workgroup(client, wg_name).await? {
        None => {
            client
                .create_workgroup()
                .workgroup_name(wg_name)
                .namespace_name(ns_name)
                .base_capacity(settings.base_capacity as i32)
                // The Data API needs no public endpoint.
                .publicly_accessible(false)
                .tags(managed_tag())
                .send()
                .await
                .map_err(|e| Error::aws("Redshift Serverless", "CreateWorkgroup", wg_name, e))?;
        }
        Some(wg) if !wg.managed && !force => {
            return Err(not_ours("use", "Serverless workgroup", wg_name));
        }
        Some(wg) if &wg.namespace != ns_name => {
            return Err(Error::Refused {
                action: "use",
                kind: "Serverless workgroup",
                name: wg_name.clone(),
                reason: format!(
                    "it serves namespace `{}`, not `{ns_name}`; fix [SERVERLESS] NAMESPACE",
                    wg.namespace
                ),
            });
        }
        Some(_) => {}
    }
    wait_available(client, settings, role_arn, observer).await
}

/// Waits until the workgroup is `AVAILABLE` and its namespace has the role
/// and is `AVAILABLE` too, within `settings.wait_timeout`.
pub async fn wait_available(
    client: &Client,
    settings: &ServerlessSettings,
    role_arn: &str,
    observer: &dyn Observer,
) -> Result<WorkgroupState> {
    let what = format!(
        "Serverless workgroup `{}` to become available",
        settings.workgroup
    );
    let hint = "creation goes on in AWS; run `up` again to keep waiting, or raise \
                [SERVERLESS] WAIT_TIMEOUT_SECS";
    let polling = Polling::every(settings.poll_interval, settings.wait_timeout);
    wait_until(&what, &polling, hint, observer, async || {
        let wg = inspect_workgroup(client, &settings.workgroup).await?;
        let ns = inspect_namespace(client, &settings.namespace).await?;
        if let (Some(wg), Some(ns)) = (&wg, &ns)
            && wg.status == WorkgroupStatus::Available.as_str()
            && ns.status == NamespaceStatus::Available.as_str()
            && ns.has_role(role_arn)
        {
            return Ok(Poll::Ready(wg.clone()));
        }
        Ok(Poll::Pending(format!(
            "workgroup {}, namespace {}",
            wg.as_ref().map_or("absent", |w| w.status.as_str()),
            ns.as_ref().map_or("absent", |n| n.status.as_str())
        )))
    })
    .await
}

/// Deletes the workgroup, waits until it is gone, then deletes the
/// namespace: each only if tagged ours, unless `force`. What is already
/// gone is skipped, so a second `down` finishes what an interrupted one
/// began.
pub async fn delete(
    client: &Client,
    settings: &ServerlessSettings,
    force: bool,
    observer: &dyn Observer,
) -> Result<()> {
    let wg_name = &settings.workgroup;
    if let Some(wg) = inspect_workgroup(client, wg_name).await? {
        if !wg.managed && !force {
            return Err(not_ours("delete", "Serverless workgroup", wg_name));
        }
        if wg.status != WorkgroupStatus::Deleting.as_str() {
            client
                .delete_workgroup()
                .workgroup_name(wg_name)
                .send()
                .await
                .map_err(|e| Error::aws("Redshift Serverless", "DeleteWorkgroup", wg_name, e))?;
        }
        let what = format!("Serverless workgroup `{wg_name}` to be deleted");
        let hint = "deletion goes on in AWS; run `down` again to keep waiting";
        let polling = Polling::every(settings.poll_interval, settings.wait_timeout);
        wait_until(&what, &polling, hint, observer, async || {
            Ok(match inspect_workgroup(client, wg_name).await? {
                None => Poll::Ready(()),
                Some(wg) => Poll::Pending(wg.status),
            })
        })
        .await?;
    }
    let ns_name = &settings.namespace;
    if let Some(ns) = inspect_namespace(client, ns_name).await? {
        if !ns.managed && !force {
            return Err(not_ours("delete", "Serverless namespace", ns_name));
        }
        if ns.status != NamespaceStatus::Deleting.as_str() {
            client
                .delete_namespace()
                .namespace_name(ns_name)
                .send()
                .await
                .map_err(|e| Error::aws("Redshift Serverless", "DeleteNamespace", ns_name, e))?;
        }
    }
    Ok(())
}

/// How long to wait between polls when the config does not say.
pub const DEFAULT_POLL: Duration = Duration::from_secs(10);
