//! Step 3: the Redshift cluster, created with the role attached and waited on
//! until it can load data.
//!
//! "Available" is not quite enough for `COPY`: the role attached to the
//! cluster must also be `in-sync` (`IamRoles[].ApplyStatus`), or the first
//! `COPY` fails with a puzzling "not authorized to assume role". So the wait
//! here checks both, with a deadline, and reports progress as it goes.
//!
//! Why our own loop rather than the SDK's `wait_until_cluster_available`?
//! The SDK waiter knows nothing of the role's apply status and shows nothing
//! while it waits; a cluster takes minutes, and a silent terminal for ten
//! minutes looks like a hang.

use std::time::Duration;

use aws_sdk_redshift::Client;

use crate::config::{ClusterSettings, ClusterType};
use crate::error::{Error, Result};
use crate::report::{
    Action, MANAGED_BY_KEY, MANAGED_BY_VALUE, Observer, Quiet, StepReport, decide, not_ours,
};
use crate::wait::{Poll, Polling, wait_until};

/// What exists of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterState {
    /// `creating`, `available`, `deleting`, …
    pub status: String,
    /// Whether it carries this tool's tag.
    pub managed: bool,
    /// `host:port`, once it has one.
    pub endpoint: Option<String>,
    /// The node type.
    pub node_type: String,
    /// The number of compute nodes.
    pub num_nodes: i32,
    /// Each attached role's ARN and apply status (`in-sync`, `adding`, …).
    pub roles: Vec<(String, String)>,
}

impl ClusterState {
    /// The apply status of `role_arn` on this cluster, if attached.
    pub fn role_status(&self, role_arn: &str) -> Option<&str> {
        self.roles
            .iter()
            .find(|(arn, _)| arn == role_arn)
            .map(|(_, s)| s.as_str())
    }
}

/// Statuses a cluster does not leave by itself, with what to do about each.
pub fn stuck_hint(status: &str) -> Option<&'static str> {
    match status {
        "deleting" | "final-snapshot" => {
            Some("it is being deleted; wait for that to finish, then run `up` again")
        }
        "paused" => Some("resume it in the console or with `aws redshift resume-cluster`"),
        "hardware-failure" | "storage-full" => {
            Some("see the cluster's events in the Redshift console")
        }
        s if s.starts_with("incompatible-") => Some(
            "its configuration cannot be applied; check the cluster's events, delete it \
             (`down`) and create it again",
        ),
        _ => None,
    }
}

// ANCHOR: describe_cluster
/// Looks the cluster up. `Ok(None)` only for `ClusterNotFound`.
pub async fn describe_cluster(
    redshift: &aws_sdk_redshift::Client,
    identifier: &str,
) -> Result<Option<ClusterState>> {
    let out = match redshift
        .describe_clusters()
        .cluster_identifier(identifier)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_cluster_not_found_fault()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::aws("Redshift", "DescribeClusters", identifier, e)),
    };
    let Some(c) = out.clusters().first() else {
        return Ok(None);
    };
    Ok(Some(ClusterState {
        status: c.cluster_status().unwrap_or("unknown").to_string(),
        managed: c
            .tags()
            .iter()
            .any(|t| t.key() == Some(MANAGED_BY_KEY) && t.value() == Some(MANAGED_BY_VALUE)),
        endpoint: c.endpoint().and_then(|e| {
            e.address()
                .map(|a| format!("{a}:{}", e.port().unwrap_or_default()))
        }),
        node_type: c.node_type().unwrap_or_default().to_string(),
        num_nodes: c.number_of_nodes().unwrap_or_default(),
        roles: c
            .iam_roles()
            .iter()
            .map(|r| {
                (
                    r.iam_role_arn().unwrap_or_default().to_string(),
                    r.apply_status().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    }))
}
// ANCHOR_END: describe_cluster

/// What `up` will do with the cluster. Shared by `plan` and `up`.
pub fn plan(
    settings: &ClusterSettings,
    state: Option<&ClusterState>,
    role_arn: Option<&str>,
    force: bool,
) -> Result<StepReport> {
    let id = &settings.identifier;
    let action = decide(
        "cluster",
        id,
        state.map(|s| s.managed),
        settings.on_existing,
        force,
    )?;
    let mut notes = Vec::new();
    match (&action, state) {
        (Action::Reuse, Some(s)) => {
            if let Some(hint) = stuck_hint(&s.status) {
                return Err(Error::ClusterFailed {
                    identifier: id.clone(),
                    status: s.status.clone(),
                    hint: hint.into(),
                });
            }
            let want_nodes = settings.num_nodes as i32;
            if s.node_type != settings.node_type || s.num_nodes != want_nodes {
                notes.push(format!(
                    "warning: it has {} × {}, the config asks for {} × {}; it is not resized",
                    s.num_nodes, s.node_type, want_nodes, settings.node_type
                ));
            }
            if role_arn.is_none_or(|arn| s.role_status(arn).is_none()) {
                notes.push("the role will be attached".into());
            }
            notes.push(format!("status {}", s.status));
        }
        (Action::Create | Action::Replace, _) => notes.push(format!(
            "{} × {}, database `{}`, {}",
            settings.num_nodes,
            settings.node_type,
            settings.db_name,
            if settings.publicly_accessible {
                "publicly accessible"
            } else {
                "not publicly accessible"
            }
        )),
        _ => {}
    }
    Ok(StepReport::new("cluster", id, action).with_detail(notes.join("; ")))
}

// ANCHOR: create_cluster
/// Creates the cluster with the role attached and this tool's tag.
pub async fn create_cluster(
    redshift: &aws_sdk_redshift::Client,
    settings: &ClusterSettings,
    role_arn: &str,
) -> Result<()> {
    let password = settings
        .db_password
        .as_ref()
        .map(|p| p.expose().to_string())
        .unwrap_or_default();
    let send = || {
        let mut req = redshift
            .create_cluster()
            .cluster_identifier(&settings.identifier)
            .cluster_type(settings.cluster_type.as_str())
            .node_type(&settings.node_type)
            .db_name(&settings.db_name)
            .master_username(&settings.db_user)
            .master_user_password(&password)
            .port(settings.port.into())
            .publicly_accessible(settings.publicly_accessible)
            .encrypted(true)
            .iam_roles(role_arn)
            .tags(
                aws_sdk_redshift::types::Tag::builder()
                    .key(MANAGED_BY_KEY)
                    .value(MANAGED_BY_VALUE)
                    .build(),
            );
        // NumberOfNodes is required for a multi-node cluster; a single-node
        // one needs none (it defaults to 1). Scripts that never pass it fail
        // as soon as someone asks for more than one node.
        if settings.cluster_type == ClusterType::MultiNode {
            req = req.number_of_nodes(settings.num_nodes as i32);
        }
        req.send()
    };
    match retry_while_role_propagates(send).await {
        Ok(_) => Ok(()),
        // A retried request whose first attempt created the cluster (its
        // reply lost on the way): ours by its tag, so created.
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_cluster_already_exists_fault()) =>
        {
            match describe_cluster(redshift, &settings.identifier).await? {
                Some(c) if c.managed => {
                    tracing::info!(
                        "cluster {} exists with our tag: an earlier attempt whose reply was lost created it",
                        settings.identifier
                    );
                    Ok(())
                }
                _ => Err(Error::aws(
                    "Redshift",
                    "CreateCluster",
                    &settings.identifier,
                    e,
                )),
            }
        }
        Err(e) => Err(Error::aws(
            "Redshift",
            "CreateCluster",
            &settings.identifier,
            e,
        )),
    }
}
// ANCHOR_END: create_cluster

/// How long a new IAM role is given to become visible to Redshift.
const ROLE_PROPAGATION: Duration = Duration::from_secs(90);

/// Runs `call` again while Redshift answers that the role is invalid, with a
/// doubling delay, for at most [`ROLE_PROPAGATION`]: the one bounded wait
/// of [`crate::wait`], paced to double. Past the deadline, the last answer
/// is the error.
///
/// Why: IAM is eventually consistent. A role created a second ago may not yet
/// be visible to Redshift, which then rejects it as invalid. Waiting a fixed
/// time would slow every run; not waiting fails the first run after a create.
/// Any other error is returned at once.
pub async fn retry_while_role_propagates<T, E, R, F, Fut>(
    mut call: F,
) -> std::result::Result<T, aws_sdk_redshift::error::SdkError<E, R>>
where
    E: aws_sdk_redshift::error::ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<
            Output = std::result::Result<T, aws_sdk_redshift::error::SdkError<E, R>>,
        >,
{
    let polling = Polling {
        first: Duration::from_secs(2),
        max: ROLE_PROPAGATION,
        timeout: ROLE_PROPAGATION,
        growth: 200,
    };
    let mut last = None;
    let what = "the IAM role to become visible to Redshift";
    let waited = wait_until(what, &polling, "", &Quiet, async || match call().await {
        Err(e) if role_not_ready(&e) => {
            tracing::info!("the IAM role is not visible to Redshift yet; retrying");
            last = Some(e);
            Ok(Poll::Pending("not visible yet".into()))
        }
        other => Ok(Poll::Ready(other)),
    })
    .await;
    match (waited, last) {
        (Ok(answer), _) => answer,
        // The deadline passed while the role was still not visible.
        (Err(_), Some(e)) => Err(e),
        (Err(_), None) => call().await,
    }
}

fn role_not_ready<E, R>(e: &aws_sdk_redshift::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_redshift::error::ProvideErrorMetadata,
{
    let Some(err) = e.as_service_error() else {
        return false;
    };
    err.code() == Some("InvalidParameterValue")
        && err
            .message()
            .is_some_and(|m| m.to_ascii_lowercase().contains("role"))
}

/// Attaches `role_arn` to an existing cluster (retried while a new role
/// propagates, like [`create`]).
pub async fn attach_role(redshift: &Client, identifier: &str, role_arn: &str) -> Result<()> {
    retry_while_role_propagates(|| {
        redshift
            .modify_cluster_iam_roles()
            .cluster_identifier(identifier)
            .add_iam_roles(role_arn)
            .send()
    })
    .await
    .map_err(|e| Error::aws("Redshift", "ModifyClusterIamRoles", identifier, e))?;
    Ok(())
}

// ANCHOR: wait_available
/// Waits until the cluster is `available` and, if given, `role_arn` is
/// `in-sync` on it; errors on a stuck state or after `settings.wait_timeout`.
pub async fn wait_available(
    redshift: &aws_sdk_redshift::Client,
    settings: &ClusterSettings,
    role_arn: Option<&str>,
    observer: &dyn Observer,
) -> Result<ClusterState> {
    let id = &settings.identifier;
    let what = format!("cluster `{id}` to become available");
    let hint = "creation goes on in AWS; run `up` again to keep waiting, or raise \
                [CLUSTER] WAIT_TIMEOUT_SECS";
    let polling = Polling::every(settings.poll_interval, settings.wait_timeout);
    wait_until(&what, &polling, hint, observer, async || {
        let Some(s) = describe_cluster(redshift, id).await? else {
            return Ok(Poll::Pending("not found".into()));
        };
        // A cluster that can no longer become available: stop now, with
        // what to do, rather than at the deadline.
        if let Some(hint) = stuck_hint(&s.status) {
            return Err(Error::ClusterFailed {
                identifier: id.clone(),
                status: s.status,
                hint: hint.into(),
            });
        }
        let role = match role_arn.map(|arn| s.role_status(arn)) {
            None | Some(Some("in-sync")) => None,
            Some(Some(status)) => Some(format!("role {status}")),
            Some(None) => Some("role not attached".to_string()),
        };
        Ok(match role {
            None if s.status == "available" => Poll::Ready(s),
            None => Poll::Pending(s.status),
            Some(role) => Poll::Pending(format!("{}, {role}", s.status)),
        })
    })
    .await
}
// ANCHOR_END: wait_available

// ANCHOR: delete_cluster
/// Deletes the cluster (only if this tool created it, unless `force`) and
/// waits until it is gone. `final_snapshot` names a snapshot to take first.
pub async fn delete_cluster(
    redshift: &aws_sdk_redshift::Client,
    settings: &ClusterSettings,
    state: &ClusterState,
    force: bool,
    final_snapshot: Option<&str>,
    observer: &dyn Observer,
) -> Result<()> {
    let id = &settings.identifier;
    if !state.managed && !force {
        return Err(not_ours("delete", "cluster", id));
    }
    if state.status != "deleting" {
        let mut req = redshift.delete_cluster().cluster_identifier(id);
        req = match final_snapshot {
            Some(snap) => req
                .skip_final_cluster_snapshot(false)
                .final_cluster_snapshot_identifier(snap),
            None => req.skip_final_cluster_snapshot(true),
        };
        req.send()
            .await
            .map_err(|e| Error::aws("Redshift", "DeleteCluster", id, e))?;
    }
    wait_deleted(redshift, settings, observer).await
}
// ANCHOR_END: delete_cluster

/// Waits until the cluster no longer exists, within `settings.wait_timeout`.
pub async fn wait_deleted(
    redshift: &Client,
    settings: &ClusterSettings,
    observer: &dyn Observer,
) -> Result<()> {
    let id = &settings.identifier;
    let what = format!("cluster `{id}` to be deleted");
    let hint = "deletion goes on in AWS; run `down` again to keep waiting";
    let polling = Polling::every(settings.poll_interval, settings.wait_timeout);
    wait_until(&what, &polling, hint, observer, async || {
        Ok(match describe_cluster(redshift, id).await? {
            None => Poll::Ready(()),
            Some(s) => Poll::Pending(s.status),
        })
    })
    .await
}
