//! `down`: delete the target (and, if asked, the role and policy), after
//! checking every tag: nothing this tool did not create is deleted unless
//! forced.

use super::Pipeline;
use crate::cluster;
use crate::config;
use crate::error::Result;
use crate::iam;
use crate::report::{Action, Observer, StepReport, not_ours};
use crate::serverless;

/// Options for `down`.
#[derive(Clone, Debug, Default)]
pub struct DownOptions {
    /// Also delete the IAM role and policy.
    pub with_iam: bool,
    /// Delete even what this tool did not create.
    pub force: bool,
    /// Take a final snapshot of this name before deleting the cluster.
    pub final_snapshot: Option<String>,
}

impl Pipeline {
    /// Says what `down` would delete, after checking it may: errors if
    /// anything to delete was not created by this tool (unless forced).
    pub async fn plan_down(&self, opts: &DownOptions) -> Result<Vec<StepReport>> {
        // The target and the IAM resources are looked up side by side: on
        // AWS each lookup is a round trip, and they do not depend on each
        // other. Both are awaited, and the target's error (if any) is the
        // one reported, whichever came back first.
        let (target, iam) = tokio::join!(self.plan_down_target(opts), self.plan_down_iam(opts));
        Ok(target?.into_iter().chain(iam?).collect())
    }

    /// The target's line of [`Pipeline::plan_down`].
    async fn plan_down_target(&self, opts: &DownOptions) -> Result<Vec<StepReport>> {
        let mut steps = Vec::new();
        match &self.cfg.target {
            config::TargetSettings::Serverless(sl) => {
                let wg =
                    serverless::inspect_workgroup(&self.clients.serverless, &sl.workgroup).await?;
                steps.push(match wg {
                    None => StepReport::new("workgroup", &sl.workgroup, Action::Absent),
                    Some(_) if !sl.provision => {
                        StepReport::new("workgroup", &sl.workgroup, Action::Keep)
                            .with_detail("not provisioned by this tool (PROVISION = false)")
                    }
                    Some(w) if !w.managed && !opts.force => {
                        return Err(not_ours("delete", "Serverless workgroup", &sl.workgroup));
                    }
                    Some(w) => StepReport::new("workgroup", &sl.workgroup, Action::Delete)
                        .with_detail(format!(
                            "{}, and namespace `{}` with its data",
                            w.status, w.namespace
                        )),
                });
            }
            config::TargetSettings::Cluster(c) => {
                let id = &c.identifier;
                match cluster::describe_cluster(&self.clients.redshift, id).await? {
                    None => steps.push(StepReport::new("cluster", id, Action::Absent)),
                    Some(c) if !c.managed && !opts.force => {
                        return Err(not_ours("delete", "cluster", id));
                    }
                    Some(c) => {
                        steps.push(StepReport::new("cluster", id, Action::Delete).with_detail(
                            match &opts.final_snapshot {
                                Some(s) => format!("status {}; final snapshot `{s}`", c.status),
                                None => format!(
                                    "status {}; no final snapshot (--final-snapshot ID keeps one)",
                                    c.status
                                ),
                            },
                        ))
                    }
                }
            }
        }
        Ok(steps)
    }

    /// The role's and policy's lines of [`Pipeline::plan_down`].
    async fn plan_down_iam(&self, opts: &DownOptions) -> Result<Vec<StepReport>> {
        if !opts.with_iam {
            return Ok(vec![
                StepReport::new("iam-role", &self.cfg.iam.role_name, Action::Keep)
                    .with_detail("pass --with-iam to delete the role and policy too"),
            ]);
        }
        let policy_arn = self.policy_arn().await?;
        iam::teardown(
            &self.clients.iam,
            &self.cfg.iam,
            &policy_arn,
            opts.force,
            true,
        )
        .await
    }

    /// Deletes the cluster (waiting until it is gone) and, with
    /// `opts.with_iam`, the policy and role. Checks every tag first.
    pub async fn down(
        &self,
        opts: &DownOptions,
        observer: &dyn Observer,
    ) -> Result<Vec<StepReport>> {
        let planned = self.plan_down(opts).await?;
        self.down_planned(opts, planned, observer).await
    }

    /// [`Pipeline::down`] with the plan [`Pipeline::plan_down`] made just
    /// before (to show it and ask for confirmation, say), so that the
    /// lookups are not all made twice. Nothing is deleted on the strength of
    /// the plan alone: the cluster and each IAM resource are looked up again,
    /// tags included, as they are deleted.
    pub async fn down_planned(
        &self,
        opts: &DownOptions,
        planned: Vec<StepReport>,
        observer: &dyn Observer,
    ) -> Result<Vec<StepReport>> {
        let mut done = Vec::new();
        match &self.cfg.target {
            config::TargetSettings::Serverless(sl) => {
                if planned[0].action == Action::Delete {
                    self.activity.step(format!(
                        "deleting Serverless workgroup `{}` and namespace `{}`",
                        sl.workgroup, sl.namespace
                    ));
                    serverless::delete(&self.clients.serverless, sl, opts.force, observer).await?;
                    observer.step(&planned[0]);
                }
                done.push(planned[0].clone());
            }
            config::TargetSettings::Cluster(settings) => {
                let id = &settings.identifier;
                if let Some(state) = cluster::describe_cluster(&self.clients.redshift, id).await? {
                    self.activity.step(format!(
                        "deleting cluster `{id}` and waiting until it is gone"
                    ));
                    cluster::delete_cluster(
                        &self.clients.redshift,
                        settings,
                        &state,
                        opts.force,
                        opts.final_snapshot.as_deref(),
                        observer,
                    )
                    .await?;
                    let r = StepReport::new("cluster", id, Action::Delete).with_detail(match &opts
                        .final_snapshot
                    {
                        Some(snap) => format!("final snapshot `{snap}` taken"),
                        None => "no final snapshot".to_string(),
                    });
                    observer.step(&r);
                    done.push(r);
                } else {
                    done.push(planned[0].clone());
                }
            }
        }
        if opts.with_iam {
            self.activity.step(format!(
                "deleting IAM policy `{}` and role `{}`",
                self.cfg.iam.policy_name, self.cfg.iam.role_name
            ));
            let policy_arn = self.policy_arn().await?;
            for r in iam::teardown(
                &self.clients.iam,
                &self.cfg.iam,
                &policy_arn,
                opts.force,
                false,
            )
            .await?
            {
                observer.step(&r);
                done.push(r);
            }
        } else {
            done.extend(planned.into_iter().skip(1));
        }
        Ok(done)
    }
}
