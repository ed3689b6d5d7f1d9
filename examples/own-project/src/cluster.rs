//! Step 3: the cluster, created with the role and waited on until it can
//! load.

use std::time::{Duration, Instant};

use aws_sdk_iam::error::ProvideErrorMetadata;

use crate::config::Settings;
use crate::error::{Error, aws};

/// Whether cluster `id` exists: only `ClusterNotFound` means it does not;
/// any other error is an error.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// assert!(!own_project::cluster::cluster_exists(&c.redshift, "no-such-cluster").await?);
/// # Ok(()) }
/// ```
pub async fn cluster_exists(redshift: &aws_sdk_redshift::Client, id: &str) -> Result<bool, Error> {
    match redshift
        .describe_clusters()
        .cluster_identifier(id)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_cluster_not_found_fault()) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws("DescribeClusters")(e)),
    }
}

/// The cluster of `s`, with role `role_arn`, unless it exists.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// # let mut s = own_project::config::Settings::read_with_password("../../examples/pipeline.cfg", "Local-Passw0rd".into())?;
/// s.cluster_id = "doc-cluster".into();
/// let role = own_project::iam_role::create_role(&c.iam, "doc-cluster-role").await?;
/// own_project::cluster::create_cluster(&c.redshift, &s, &role).await?;
/// assert!(own_project::cluster::cluster_exists(&c.redshift, "doc-cluster").await?);
/// # Ok(()) }
/// ```
// ANCHOR: create_cluster
pub async fn create_cluster(
    redshift: &aws_sdk_redshift::Client,
    s: &Settings,
    role_arn: &str,
) -> Result<(), Error> {
    if cluster_exists(redshift, &s.cluster_id).await? {
        return Ok(());
    }
    let mut req = redshift
        .create_cluster()
        .cluster_identifier(&s.cluster_id)
        .cluster_type(&s.cluster_type)
        .node_type(&s.node_type)
        .db_name(&s.db_name)
        .master_username(&s.db_user)
        .master_user_password(&s.password)
        .publicly_accessible(false)
        .encrypted(true)
        .iam_roles(role_arn);
    // Required for multi-node clusters; a single node takes none.
    if s.cluster_type == "multi-node" {
        req = req.number_of_nodes(s.num_nodes);
    }
    // A role made seconds ago may not be visible to Redshift yet: it then
    // answers InvalidParameterValue about the role. Try again a while.
    let mut delay = Duration::from_secs(2);
    loop {
        let Err(e) = req.clone().send().await else {
            return Ok(());
        };
        let about_the_role = e.code() == Some("InvalidParameterValue")
            && e.message()
                .is_some_and(|m| m.to_lowercase().contains("role"));
        if !about_the_role || delay > Duration::from_secs(64) {
            return Err(aws("CreateCluster")(e));
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}
// ANCHOR_END: create_cluster

/// Polls until cluster `id` is `available` and its role `in-sync` (both are
/// needed before `COPY` works), at most `timeout`; returns its endpoint.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), own_project::Error> {
/// # let c = own_project::local_clients().await?;
/// # own_project::doc_cluster(&c, "doc-wait").await?;
/// use std::time::Duration;
/// let wait = Duration::from_secs(1800);
/// let endpoint = own_project::cluster::wait_until_available(&c.redshift, "doc-wait", wait).await?;
/// assert!(endpoint.ends_with(":5439"), "{endpoint}");
/// # Ok(()) }
/// ```
// ANCHOR: wait_until_available
pub async fn wait_until_available(
    redshift: &aws_sdk_redshift::Client,
    id: &str,
    timeout: Duration,
) -> Result<String, Error> {
    let start = Instant::now();
    loop {
        let out = redshift
            .describe_clusters()
            .cluster_identifier(id)
            .send()
            .await;
        let out = out.map_err(aws("DescribeClusters"))?;
        let cluster = out
            .clusters()
            .first()
            .ok_or("DescribeClusters returned no cluster")?;
        let status = cluster.cluster_status().unwrap_or("unknown");
        let in_sync = (cluster.iam_roles().iter()).all(|r| r.apply_status() == Some("in-sync"));
        if let (true, Some(e)) = (status == "available" && in_sync, cluster.endpoint()) {
            return Ok(format!(
                "{}:{}",
                e.address().unwrap_or("?"),
                e.port().unwrap_or(0)
            ));
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout(format!(
                "cluster {id} still {status} after {timeout:?}"
            )));
        }
        println!("   cluster {id}: {status}, role in sync: {in_sync}");
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}
// ANCHOR_END: wait_until_available
