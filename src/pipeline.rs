//! Step 6 and the whole: the steps in order, as `plan`, `up`, `load`,
//! `status` and `down`.
//!
//! Every command first *looks* (describe and list calls only), then decides
//! what to do for every resource, and only then changes anything. So a
//! refusal (a resource this tool did not create, `ON_EXISTING = fail`) stops
//! the run before the first change, and `plan` shows exactly what `up` would
//! do, because both run the same deciding code.

use std::fmt;

use serde_json::Value;

use crate::aws::{Clients, partition};
use crate::cluster::{self, ClusterState};
use crate::config::{self, ClusterSettings, Config, LoadMode, PASSWORD_ENV};
use crate::error::{ConfigError, Error, Problem, Result};
use crate::iam::{self, PolicyState, RoleState};
use crate::load::{self, LoadReport};
use crate::report::{Action, Activity, Observer, StepReport, not_ours};
use crate::schema::{self, Inferred};
use crate::serverless::{self, WorkgroupState};
use crate::stage::{self, StageReport};
use crate::warehouse::{Polling, Target, Warehouse};

/// A configured pipeline with its AWS clients.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The validated configuration.
    pub cfg: Config,
    /// The SDK clients.
    pub clients: Clients,
    /// What the pipeline is doing now, for a message if it is interrupted.
    pub activity: Activity,
    /// With `[TABLE] INFER_COLUMNS`: the columns inferred from the data, or
    /// why they could not be (no data yet, say).
    pub inferred: Option<std::result::Result<Inferred, String>>,
}

/// What `plan` found and would do.
#[derive(Clone, Debug)]
pub struct Plan {
    /// One line per resource, in the order `up` and `load` handle them.
    pub steps: Vec<StepReport>,
    /// The SQL `load` would run, in order (empty while the columns cannot
    /// be inferred yet).
    pub sql: Vec<String>,
    /// With `[TABLE] INFER_COLUMNS`: the inferred columns, to review.
    pub inferred: Option<Inferred>,
}

/// One line of `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    /// `iam-role`, `cluster`, …
    pub kind: &'static str,
    /// The resource's name.
    pub name: String,
    /// What it is like now.
    pub state: String,
}

impl fmt::Display for StatusLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<11} {:<34} {}", self.kind, self.name, self.state)
    }
}

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

/// What exists now, looked up once per command.
struct Found {
    role: Option<RoleState>,
    policy: Option<PolicyState>,
    cluster: Option<ClusterState>,
    /// With `[SERVERLESS]`: the workgroup (and `cluster` is `None`).
    workgroup: Option<WorkgroupState>,
    policy_arn: String,
    policy_doc: Value,
    role_arn: String,
}

impl Pipeline {
    /// Builds the SDK clients for `cfg`. No request is sent, except with
    /// `[TABLE] INFER_COLUMNS`: then the start of the data is read (S3 reads
    /// only) to infer the columns. If that fails (the data is not uploaded
    /// yet, say), `inferred` says why and `load` will refuse to run.
    pub async fn connect(mut cfg: Config) -> Result<Self> {
        let clients = Clients::new(&cfg).await?;
        let mut inferred = None;
        if cfg.table.infer_columns {
            match schema::infer_from_source(&cfg, &clients.s3).await {
                Ok(found) => {
                    cfg.set_inferred_columns(found.columns.clone())?;
                    inferred = Some(Ok(found));
                }
                Err(e) => inferred = Some(Err(e.to_string())),
            }
        }
        Ok(Self {
            cfg,
            clients,
            activity: Activity::default(),
            inferred,
        })
    }

    /// The Data API handle for the configured cluster (or Serverless
    /// workgroup) and database.
    pub fn warehouse(&self) -> Warehouse {
        let target = match &self.cfg.target {
            config::TargetSettings::Serverless(sl) => Target::Workgroup {
                name: sl.workgroup.clone(),
                database: sl.db_name.clone(),
            },
            config::TargetSettings::Cluster(c) => Target::Cluster {
                identifier: c.identifier.clone(),
                database: c.db_name.clone(),
                db_user: c.db_user.clone(),
            },
        };
        Warehouse::new(self.clients.data.clone(), target)
            .with_polling(Polling {
                timeout: self.cfg.load.statement_timeout,
                ..Polling::default()
            })
            .with_activity(self.activity.clone())
    }

    async fn look(&self) -> Result<Found> {
        self.activity
            .step("looking up the IAM role, the policy and the cluster (read-only)");
        let part = partition(&self.clients.region);
        let account = self.clients.account_id().await?;
        let policy_arn = iam::policy_arn(part, &account, &self.cfg.iam.policy_name);
        let policy_doc = iam::read_policy_for(&self.cfg.s3.readable(), part);
        let role = iam::inspect_role(&self.clients.iam, &self.cfg.iam.role_name).await?;
        let policy = iam::inspect_policy(
            &self.clients.iam,
            &policy_arn,
            &self.cfg.iam.role_name,
            &policy_doc,
        )
        .await?;
        let (cluster, workgroup) = match &self.cfg.target {
            config::TargetSettings::Serverless(sl) => (
                None,
                serverless::inspect_workgroup(&self.clients.serverless, &sl.workgroup).await?,
            ),
            config::TargetSettings::Cluster(c) => (
                cluster::describe_cluster(&self.clients.redshift, &c.identifier).await?,
                None,
            ),
        };
        let role_arn = match &role {
            Some(r) => r.arn.clone(),
            None => format!("arn:{part}:iam::{account}:role/{}", self.cfg.iam.role_name),
        };
        Ok(Found {
            role,
            policy,
            cluster,
            workgroup,
            policy_arn,
            policy_doc,
            role_arn,
        })
    }

    /// Decides every step of `up`; errors if any step would be refused.
    fn decide_up(&self, found: &Found, force: bool) -> Result<Vec<StepReport>> {
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
    fn decide_cluster(
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
    async fn check_replace_is_safe(
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

    /// Looks at what exists and says what `up` and `load` would do. Sends only
    /// read-only requests.
    pub async fn plan(&self, force: bool) -> Result<Plan> {
        let found = self.look().await?;
        let mut steps = self.decide_up(&found, force)?;
        self.check_replace_is_safe(&steps, &found, force).await?;
        let (source, fingerprint) =
            match load::inspect_source(&self.clients.s3, &self.cfg.s3.source, self.cfg.s3.manifest)
                .await
            {
                Ok(s) => (
                    format!("{} object(s), {} bytes", s.objects, s.bytes),
                    Some(s.fingerprint),
                ),
                Err(Error::Source { reason, .. }) => (format!("warning: {reason}"), None),
                Err(e) => return Err(e),
            };
        steps.push(
            StepReport::new("table", self.cfg.table.name.to_string(), Action::Create).with_detail(
                match &self.inferred {
                    None => "if it does not exist (CREATE TABLE IF NOT EXISTS)".to_string(),
                    Some(Ok(i)) => format!(
                        "if it does not exist, with {} columns inferred from {} ({} rows sampled): review them below",
                        i.columns.len(),
                        i.source,
                        i.sampled_rows
                    ),
                    Some(Err(e)) => format!("warning: columns cannot be inferred yet: {e}"),
                },
            ),
        );
        let mode = match self.cfg.load.mode {
            LoadMode::Replace => {
                "replace the table's rows (staging table, then one transaction)".into()
            }
            LoadMode::Append => "append to the table, once per set of objects".to_string(),
            LoadMode::Upsert => {
                let key: Vec<&str> = self.cfg.load.key.iter().map(|k| k.as_str()).collect();
                format!(
                    "upsert on ({}) (staging table, then one transaction)",
                    key.join(", ")
                )
            }
        };
        steps.push(
            StepReport::new("copy", self.cfg.s3.source.to_string(), Action::Create)
                .with_detail(format!("{mode}; source: {source}")),
        );
        let sql = load::statements(
            &self.cfg,
            &self.clients.region,
            &found.role_arn,
            fingerprint.as_deref(),
        )
        .map_err(|m| Error::Verification {
            table: self.cfg.table.name.to_string(),
            reason: m,
        })?;
        Ok(Plan {
            steps,
            sql,
            inferred: self.inferred.clone().and_then(|i| i.ok()),
        })
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

        let settings = match &self.cfg.target {
            config::TargetSettings::Cluster(c) => c,
            config::TargetSettings::Serverless(sl) => {
                self.activity.step(format!(
                    "setting up Serverless workgroup `{}` and waiting until it is available",
                    sl.workgroup
                ));
                let client = &self.clients.serverless;
                let wg = if sl.provision {
                    serverless::provision(client, sl, &role_arn, force, observer).await?
                } else {
                    serverless::check_ready(client, sl, &role_arn).await?
                };
                planned[2].detail = Some(format!("{}, namespace `{}`", wg.status, wg.namespace));
                observer.step(&planned[2]);
                return Ok(planned);
            }
        };
        let redshift = &self.clients.redshift;
        self.activity.step(format!(
            "{} cluster `{}`",
            match planned[2].action {
                Action::Replace => "replacing",
                Action::Reuse => "checking",
                _ => "creating",
            },
            settings.identifier
        ));
        match (&planned[2].action, &found.cluster) {
            (Action::Replace, Some(state)) => {
                cluster::delete_cluster(redshift, settings, state, force, None, observer).await?;
                cluster::create_cluster(redshift, settings, &role_arn).await?;
            }
            (Action::Reuse, Some(state)) => {
                if state.role_status(&role_arn).is_none() {
                    // Redshift refuses to modify a cluster that is still
                    // creating or modifying, so let it settle first.
                    if state.status != "available" {
                        cluster::wait_available(redshift, settings, None, observer).await?;
                    }
                    cluster::attach_role(redshift, &settings.identifier, &role_arn).await?;
                }
            }
            _ => cluster::create_cluster(redshift, settings, &role_arn).await?,
        }
        self.activity.step(format!(
            "waiting for cluster `{}` to become available",
            settings.identifier
        ));
        let ready = cluster::wait_available(redshift, settings, Some(&role_arn), observer).await?;
        planned[2].detail = Some(match &ready.endpoint {
            Some(ep) => format!("available at {ep}"),
            None => "available".into(),
        });
        observer.step(&planned[2]);
        Ok(planned)
    }

    /// Creates the table if needed, copies the data from S3 and verifies the
    /// row counts. The cluster and role must exist (`up`).
    pub async fn load(&self, observer: &dyn Observer) -> Result<LoadReport> {
        self.load_as(&self.cfg, observer).await
    }

    /// Splits a local file into gzip parts, uploads them in parallel with a
    /// manifest under `[S3] STAGE_PREFIX`, and loads them (see
    /// [`crate::stage`]). The load is [`Pipeline::load`]'s, reading the
    /// manifest instead of `[S3] SOURCE`.
    pub async fn stage(
        &self,
        file: &std::path::Path,
        observer: &dyn Observer,
    ) -> Result<(StageReport, LoadReport)> {
        self.activity
            .step(format!("staging {} in parts", file.display()));
        let staged = stage::upload(&self.cfg, &self.clients.s3, file, observer).await?;
        observer.step(
            &StepReport::new("stage", staged.manifest.to_string(), Action::Create).with_detail(
                format!(
                    "{} gzip parts for {} slices, {} bytes uploaded for {} in the file",
                    staged.parts.len(),
                    staged.slices,
                    staged.uploaded_bytes,
                    staged.raw_bytes
                ),
            ),
        );
        let mut cfg = self.cfg.clone();
        cfg.s3.source = staged.manifest.clone();
        cfg.s3.manifest = true;
        cfg.load.compression = crate::config::Compression::Gzip;
        let report = self.load_as(&cfg, observer).await?;
        Ok((staged, report))
    }

    async fn load_as(&self, cfg: &Config, observer: &dyn Observer) -> Result<LoadReport> {
        if let Some(Err(reason)) = &self.inferred {
            return Err(Error::Source {
                uri: self.cfg.s3.source.to_string(),
                reason: format!(
                    "the columns could not be inferred ({reason}); upload the data, or list the columns in [COLUMNS]"
                ),
            });
        }
        let role = iam::inspect_role(&self.clients.iam, &self.cfg.iam.role_name).await?;
        let Some(role) = role else {
            return Err(Error::Refused {
                action: "load with",
                kind: "IAM role",
                name: self.cfg.iam.role_name.clone(),
                reason: "it does not exist; run `up` first".into(),
            });
        };
        match &self.cfg.target {
            config::TargetSettings::Serverless(sl) => {
                serverless::check_ready(&self.clients.serverless, sl, &role.arn).await?;
            }
            config::TargetSettings::Cluster(c) => {
                self.check_cluster_ready(c, &role.arn, observer).await?
            }
        }
        self.activity.step(format!(
            "loading {} into {} ({} mode)",
            cfg.s3.source,
            cfg.table.name,
            cfg.load.mode.as_str()
        ));
        let report = load::run(
            cfg,
            &self.warehouse(),
            &self.clients.s3,
            &self.clients.region,
            &role.arn,
        )
        .await?;
        observer.step(
            &StepReport::new(
                "copy",
                cfg.table.name.to_string(),
                if report.skipped.is_some() {
                    Action::Reuse
                } else {
                    Action::Create
                },
            )
            .with_detail(report.to_string()),
        );
        Ok(report)
    }

    /// The cluster exists, is available and has the role.
    async fn check_cluster_ready(
        &self,
        settings: &ClusterSettings,
        role_arn: &str,
        observer: &dyn Observer,
    ) -> Result<()> {
        if cluster::describe_cluster(&self.clients.redshift, &settings.identifier)
            .await?
            .is_none()
        {
            return Err(Error::Refused {
                action: "load into",
                kind: "cluster",
                name: settings.identifier.clone(),
                reason: "it does not exist; run `up` first".into(),
            });
        }
        // Waits only if the cluster is still coming up or the role not yet
        // in sync; returns at once otherwise.
        let state =
            cluster::wait_available(&self.clients.redshift, settings, None, observer).await?;
        if state.role_status(role_arn).is_none() {
            return Err(Error::Refused {
                action: "load into",
                kind: "cluster",
                name: settings.identifier.clone(),
                reason: format!("role {role_arn} is not attached to it; run `up` to attach it"),
            });
        }
        Ok(())
    }

    /// The first `limit` rows of the table, ordered by its first column: what
    /// a reader wants to see after a load.
    pub async fn preview(&self, limit: u32) -> Result<crate::warehouse::ResultSet> {
        let first = &self.cfg.table.columns[0].name;
        let sql = format!(
            "SELECT * FROM {} ORDER BY {first} LIMIT {limit}",
            self.cfg.table.name
        );
        self.warehouse().query(&sql).await
    }

    /// What exists now. Read-only.
    pub async fn status(&self) -> Result<Vec<StatusLine>> {
        let found = self.look().await?;
        let mut lines = Vec::new();
        let tag = |managed: bool| {
            if managed {
                "created by s3-to-redshift"
            } else {
                "not created by s3-to-redshift"
            }
        };
        lines.push(StatusLine {
            kind: "iam-role",
            name: self.cfg.iam.role_name.clone(),
            state: match &found.role {
                None => "absent".into(),
                Some(r) => format!("exists ({}), {}", r.arn, tag(r.managed)),
            },
        });
        lines.push(StatusLine {
            kind: "iam-policy",
            name: self.cfg.iam.policy_name.clone(),
            state: match &found.policy {
                None => "absent".into(),
                Some(p) => format!(
                    "exists, {}, {}{}",
                    if p.attached {
                        "attached to the role"
                    } else {
                        "NOT attached to the role"
                    },
                    tag(p.managed),
                    if p.document_matches {
                        ""
                    } else {
                        ", document differs from the config"
                    }
                ),
            },
        });
        let available = found
            .cluster
            .as_ref()
            .is_some_and(|c| c.status == "available")
            || found
                .workgroup
                .as_ref()
                .is_some_and(|w| w.status == "AVAILABLE");
        match &self.cfg.target {
            config::TargetSettings::Serverless(sl) => lines.push(StatusLine {
                kind: "workgroup",
                name: sl.workgroup.clone(),
                state: match &found.workgroup {
                    None => "absent".into(),
                    Some(w) => format!(
                        "{}, namespace `{}`, {}",
                        w.status,
                        w.namespace,
                        tag(w.managed)
                    ),
                },
            }),
            config::TargetSettings::Cluster(c) => lines.push(StatusLine {
                kind: "cluster",
                name: c.identifier.clone(),
                state: match &found.cluster {
                    None => "absent".into(),
                    Some(c) => format!(
                        "{}{}, role {}, {}",
                        c.status,
                        c.endpoint
                            .as_ref()
                            .map(|e| format!(" at {e}"))
                            .unwrap_or_default(),
                        c.role_status(&found.role_arn).unwrap_or("not attached"),
                        tag(c.managed)
                    ),
                },
            }),
        }
        let table_state = if available {
            match self
                .warehouse()
                .query(&load::count_sql(&self.cfg.table.name))
                .await
            {
                Ok(rs) => format!("{} rows", rs.scalar_i64().unwrap_or_default()),
                Err(e) => format!("unknown: {e}"),
            }
        } else {
            "unknown (no available cluster)".into()
        };
        lines.push(StatusLine {
            kind: "table",
            name: self.cfg.table.name.to_string(),
            state: table_state,
        });
        Ok(lines)
    }

    /// Says what `down` would delete, after checking it may: errors if
    /// anything to delete was not created by this tool (unless forced).
    pub async fn plan_down(&self, opts: &DownOptions) -> Result<Vec<StepReport>> {
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
        if opts.with_iam {
            let policy_arn = self.policy_arn().await?;
            steps.extend(
                iam::teardown(
                    &self.clients.iam,
                    &self.cfg.iam,
                    &policy_arn,
                    opts.force,
                    true,
                )
                .await?,
            );
        } else {
            steps.push(
                StepReport::new("iam-role", &self.cfg.iam.role_name, Action::Keep)
                    .with_detail("pass --with-iam to delete the role and policy too"),
            );
        }
        Ok(steps)
    }

    async fn policy_arn(&self) -> Result<String> {
        let account = self.clients.account_id().await?;
        Ok(iam::policy_arn(
            partition(&self.clients.region),
            &account,
            &self.cfg.iam.policy_name,
        ))
    }

    /// Deletes the cluster (waiting until it is gone) and, with
    /// `opts.with_iam`, the policy and role. Checks every tag first.
    pub async fn down(
        &self,
        opts: &DownOptions,
        observer: &dyn Observer,
    ) -> Result<Vec<StepReport>> {
        let planned = self.plan_down(opts).await?;
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
