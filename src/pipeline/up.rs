//! `up`: decide every step from what exists (the same code `plan` runs),
//! refuse before the first change if any step would be refused, then
//! create, replace or reuse the role, the policy and the target.

use super::{Found, Pipeline};
use crate::cluster;
use crate::config::{self, ClusterSettings, PASSWORD_ENV};
use crate::error::{ConfigError, Error, Problem, Result};
use crate::iam::{self, PolicyState};
use crate::report::{Action, Observer, StepReport, not_ours};
use crate::serverless;

impl Pipeline {
    /// Decides every step of `up`; errors if any step would be refused.
    pub(super) fn decide_up(&self, found: &Found, force: bool) -> Result<Vec<StepReport>> {
        let role = iam::plan_role(&self.cfg.iam, found.role.as_ref(), force)?;
        // A replaced role is a new role: the policy must be attached again.
        let policy_state = match role.action {
            Action::Replace => found.policy.clone().map(|p| PolicyState {
                attached: false,
                ..p
            }),
            _ => found.policy.clone(),
        };
        let policy = iam::plan_policy(
            &self.cfg.iam,
            &found.policy_arn,
            policy_state.as_ref(),
            force,
        )?;
        let target = match &self.cfg.target {
            config::TargetSettings::Serverless(sl) => decide_workgroup(sl, found, force)?,
            config::TargetSettings::Cluster(c) => self.decide_cluster(c, found, &role, force)?,
        };
        Ok(vec![role, policy, target])
    }

    /// The cluster's step of `up`. Needs a password only to create one.
    pub(super) fn decide_cluster(
        &self,
        settings: &ClusterSettings,
        found: &Found,
        role: &StepReport,
        force: bool,
    ) -> Result<StepReport> {
        let role_arn = (role.action == Action::Reuse).then_some(found.role_arn.as_str());
        let cluster = cluster::plan(settings, found.cluster.as_ref(), role_arn, force)?;
        if cluster.action != Action::Reuse && settings.db_password.is_none() {
            return Err(ConfigError::Invalid {
                path: self.cfg.path.clone(),
                problems: vec![Problem {
                    section: "CLUSTER".into(),
                    key: "DB_PASSWORD".into(),
                    message: format!(
                        "is needed to create cluster `{}`; set the environment variable \
                         {PASSWORD_ENV} (preferred) or [CLUSTER] DB_PASSWORD",
                        settings.identifier
                    ),
                }],
            }
            .into());
        }
        Ok(cluster)
    }

    /// Refuses to replace a cluster that holds tables, unless `force`:
    /// replacing a cluster deletes its data, and a cluster with tables in it
    /// is one someone has been using. Checked before anything is changed.
    pub(super) async fn check_replace_is_safe(
        &self,
        steps: &[StepReport],
        found: &Found,
        force: bool,
    ) -> Result<()> {
        let (Some(state), Some(step)) = (&found.cluster, steps.get(2)) else {
            return Ok(());
        };
        if step.action != Action::Replace || force {
            return Ok(());
        }
        let id = self.cfg.target.name();
        let refuse = |reason: String| Error::Refused {
            action: "replace",
            kind: "cluster",
            name: id.to_string(),
            reason,
        };
        if state.status != "available" {
            return Err(refuse(format!(
                "it is `{}`, so its tables cannot be listed to check it is empty; pass --force to replace it anyway",
                state.status
            )));
        }
        let tables = self.warehouse().list_tables().await?;
        if !tables.is_empty() {
            let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
            return Err(refuse(format!(
                "it holds {} table(s) ({}{}), which replacing it would delete; pass --force to replace it \
                 anyway, or run `down --final-snapshot ID` first to keep a copy",
                tables.len(),
                shown.join(", "),
                if tables.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }

    /// Creates (or reuses) the role, the policy and the cluster, and waits
    /// until the cluster can load data.
    pub async fn up(&self, force: bool, observer: &dyn Observer) -> Result<Vec<StepReport>> {
        let found = self.look().await?;
        let mut planned = self.decide_up(&found, force)?;
        self.check_replace_is_safe(&planned, &found, force).await?;
        let iam_client = &self.clients.iam;

        self.activity
            .step(format!("setting up IAM role `{}`", self.cfg.iam.role_name));
        let role_arn =
            iam::apply_role(iam_client, &self.cfg.iam, &planned[0], found.role.as_ref()).await?;
        planned[0].detail = Some(role_arn.clone());
        observer.step(&planned[0]);

        self.activity.step(format!(
            "setting up IAM policy `{}`",
            self.cfg.iam.policy_name
        ));
        iam::apply_policy(
            iam_client,
            &self.cfg.iam,
            &found.policy_arn,
            &found.policy_doc,
            &planned[1],
        )
        .await?;
        planned[1].detail = Some(format!("{}, attached to the role", found.policy_arn));
        observer.step(&planned[1]);

        let step = &mut planned[2];
        match &self.cfg.target {
            config::TargetSettings::Serverless(sl) => {
                self.up_workgroup(sl, &role_arn, step, force, observer)
                    .await?
            }
            config::TargetSettings::Cluster(c) => {
                self.up_cluster(c, &found, &role_arn, step, force, observer)
                    .await?
            }
        }
        observer.step(&planned[2]);
        Ok(planned)
    }

    /// `up`'s last step for Serverless: provision the workgroup, or check
    /// the existing one is ready for the role.
    async fn up_workgroup(
        &self,
        sl: &config::ServerlessSettings,
        role_arn: &str,
        step: &mut StepReport,
        force: bool,
        observer: &dyn Observer,
    ) -> Result<()> {
        self.activity.step(format!(
            "setting up Serverless workgroup `{}` and waiting until it is available",
            sl.workgroup
        ));
        let client = &self.clients.serverless;
        let wg = if sl.provision {
            serverless::provision(client, sl, role_arn, force, observer).await?
        } else {
            serverless::check_ready(client, sl, role_arn).await?
        };
        step.detail = Some(format!("{}, namespace `{}`", wg.status, wg.namespace));
        Ok(())
    }

    /// `up`'s last step for a cluster: create, replace or reuse it as
    /// planned, attach the role if missing, and wait until it can load.
    async fn up_cluster(
        &self,
        settings: &ClusterSettings,
        found: &Found,
        role_arn: &str,
        step: &mut StepReport,
        force: bool,
        observer: &dyn Observer,
    ) -> Result<()> {
        let redshift = &self.clients.redshift;
        self.activity.step(format!(
            "{} cluster `{}`",
            match step.action {
                Action::Replace => "replacing",
                Action::Reuse => "checking",
                _ => "creating",
            },
            settings.identifier
        ));
        match (&step.action, &found.cluster) {
            (Action::Replace, Some(state)) => {
                cluster::delete_cluster(redshift, settings, state, force, None, observer).await?;
                cluster::create_cluster(redshift, settings, role_arn).await?;
            }
            (Action::Reuse, Some(state)) => {
                if state.role_status(role_arn).is_none() {
                    // Redshift refuses to modify a cluster that is still
                    // creating or modifying, so let it settle first.
                    if state.status != "available" {
                        cluster::wait_available(redshift, settings, None, observer).await?;
                    }
                    cluster::attach_role(redshift, &settings.identifier, role_arn).await?;
                }
            }
            _ => cluster::create_cluster(redshift, settings, role_arn).await?,
        }
        self.activity.step(format!(
            "waiting for cluster `{}` to become available",
            settings.identifier
        ));
        let ready = cluster::wait_available(redshift, settings, Some(role_arn), observer).await?;
        step.detail = Some(match &ready.endpoint {
            Some(ep) => format!("available at {ep}"),
            None => "available".into(),
        });
        Ok(())
    }
}

/// The workgroup's step of `up`: reuse it, or create it when `PROVISION`
/// is set; never take over one this tool did not create.
fn decide_workgroup(
    sl: &config::ServerlessSettings,
    found: &Found,
    force: bool,
) -> Result<StepReport> {
    let wg = &sl.workgroup;
    let step = match (&found.workgroup, sl.provision) {
        (None, true) => StepReport::new("workgroup", wg, Action::Create).with_detail(format!(
            "Serverless, namespace `{}`, {} RPUs, not publicly accessible",
            sl.namespace, sl.base_capacity
        )),
        (None, false) => {
            return Err(Error::Refused {
                action: "use",
                kind: "Serverless workgroup",
                name: wg.clone(),
                reason: "it does not exist; create it, or set [SERVERLESS] PROVISION = true".into(),
            });
        }
        (Some(w), true) if !w.managed && !force => {
            return Err(not_ours("use", "Serverless workgroup", wg));
        }
        (Some(w), _) => StepReport::new("workgroup", wg, Action::Reuse)
            .with_detail(format!("{}, namespace `{}`", w.status, w.namespace)),
    };
    Ok(step)
}
