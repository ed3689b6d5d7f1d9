//! Step 7: tearing down, for when the tutorial is over. Only what the
//! config names, and only when asked: nothing here runs unless
//! `--teardown` is given.

use std::time::{Duration, Instant};

use crate::cluster::cluster_exists;
use crate::error::{Error, aws};

/// Deletes cluster `id` with no final snapshot and waits until it is gone,
/// at most `timeout`.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// # own_project::doc_cluster(&c, "doc-teardown").await?;
/// use std::time::Duration;
/// own_project::teardown::delete_cluster(&c.redshift, "doc-teardown", Duration::from_secs(1800)).await?;
/// assert!(!own_project::cluster::cluster_exists(&c.redshift, "doc-teardown").await?);
/// # Ok(()) }
/// ```
// ANCHOR: delete_cluster
pub async fn delete_cluster(
    redshift: &aws_sdk_redshift::Client,
    id: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let deleted = redshift
        .delete_cluster()
        .cluster_identifier(id)
        .skip_final_cluster_snapshot(true)
        .send()
        .await;
    deleted.map_err(aws("DeleteCluster"))?;
    let start = Instant::now();
    while cluster_exists(redshift, id).await? {
        if start.elapsed() > timeout {
            return Err(Error::Timeout(format!(
                "cluster {id} not gone after {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    Ok(())
}
// ANCHOR_END: delete_cluster

/// Detaches policy `arn` from role `role`, then deletes both (IAM refuses to
/// delete an attached policy, or a role with policies).
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// use own_project::s3_policy::{attach_policy, create_policy, read_policy};
/// own_project::iam_role::create_role(&c.iam, "doc-gone").await?;
/// let arn = create_policy(&c.iam, &c.sts, "doc-gone-read", &read_policy("b", "k")).await?;
/// attach_policy(&c.iam, "doc-gone", &arn).await?;
/// own_project::teardown::delete_role_and_policy(&c.iam, "doc-gone", &arn).await?;
/// assert!(c.iam.get_role().role_name("doc-gone").send().await.is_err());
/// # Ok(()) }
/// ```
// ANCHOR: delete_role_and_policy
pub async fn delete_role_and_policy(
    iam: &aws_sdk_iam::Client,
    role: &str,
    arn: &str,
) -> Result<(), Error> {
    let detached = iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await;
    detached.map_err(aws("DetachRolePolicy"))?;
    let deleted = iam.delete_policy().policy_arn(arn).send().await;
    deleted.map_err(aws("DeletePolicy"))?;
    let deleted = iam.delete_role().role_name(role).send().await;
    deleted.map_err(aws("DeleteRole"))?;
    Ok(())
}
// ANCHOR_END: delete_role_and_policy
