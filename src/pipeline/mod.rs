//! Step 6 and the whole: the steps in order, as `plan`, `up`, `load`,
//! `status` and `down`.
//!
//! Every command first *looks* (describe and list calls only), then decides
//! what to do for every resource, and only then changes anything. So a
//! refusal (a resource this tool did not create, `ON_EXISTING = fail`) stops
//! the run before the first change, and `plan` shows exactly what `up` would
//! do, because both run the same deciding code.

//!
//! # Layout
//!
//! - `mod.rs` (here): [`Pipeline`], what it looks up (`Found`), `plan`
//!   and `load`.
//! - `up.rs`: deciding and carrying out `up` (role, policy, then the
//!   cluster or the workgroup).
//! - `status.rs`: `status`, one [`StatusLine`] per resource.
//! - `down.rs`: `down` and what it checks before deleting.

mod down;
mod status;
mod up;

use serde_json::Value;

use crate::aws::{Clients, partition};
use crate::cluster::{self, ClusterState};
use crate::config::{self, ClusterSettings, Config, LoadMode};
use crate::error::{Error, Result};
use crate::iam::{self, PolicyState, RoleState};
use crate::load::{self, LoadReport};
use crate::report::{Action, Activity, Observer, StepReport};
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
    /// The account id, once asked for: it cannot change while the
    /// credentials do not, and `down` needs it three times.
    account: std::sync::OnceLock<String>,
}

/// What `plan` found and would do.
#[derive(Clone, Debug)]
pub struct Plan {
    /// One line per resource, in the order `up` and `load` handle them.
    pub steps: Vec<StepReport>,
    /// The SQL `load` would run, in order, one list per request: each is a
    /// `BatchExecuteStatement`, run as one transaction (empty while the
    /// columns cannot be inferred yet).
    pub sql: Vec<Vec<String>>,
    /// With `[TABLE] INFER_COLUMNS`: the inferred columns, to review.
    pub inferred: Option<Inferred>,
}

impl Plan {
    /// The table's `CREATE TABLE`, as `load` would run it.
    pub fn create_table(&self) -> Option<&str> {
        self.sql.iter().flatten().map(String::as_str).find(|s| {
            s.starts_with("CREATE TABLE IF NOT EXISTS") && !s.contains("s3_to_redshift_loads")
        })
    }
}

pub use down::DownOptions;
pub use status::StatusLine;

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
            account: std::sync::OnceLock::new(),
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
        let account = self.account().await?;
        let policy_arn = iam::policy_arn(part, &account, &self.cfg.iam.policy_name);
        let policy_doc = iam::read_policy_for(&self.cfg.s3.readable(), part);
        let target = async {
            Ok::<_, Error>(match &self.cfg.target {
                config::TargetSettings::Serverless(sl) => (
                    None,
                    serverless::inspect_workgroup(&self.clients.serverless, &sl.workgroup).await?,
                ),
                config::TargetSettings::Cluster(c) => (
                    cluster::describe_cluster(&self.clients.redshift, &c.identifier).await?,
                    None,
                ),
            })
        };
        // The three lookups side by side (on AWS, three round trips' wait
        // becomes one); errors reported in this order, whichever came first.
        let (role, policy, target) = tokio::join!(
            iam::inspect_role(&self.clients.iam, &self.cfg.iam.role_name),
            iam::inspect_policy(
                &self.clients.iam,
                &policy_arn,
                &self.cfg.iam.role_name,
                &policy_doc,
            ),
            target
        );
        let (role, policy, (cluster, workgroup)) = (role?, policy?, target?);
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
                    Some(Err(e)) => format!(
                        "warning: columns cannot be inferred yet ({e}); `load` infers them once the data is there, and `plan` shows its SQL then"
                    ),
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
        // No columns yet (inference is on and the data is not there): no
        // statement can be written, and the table step above says why.
        let sql = if matches!(self.inferred, Some(Err(_))) {
            Vec::new()
        } else {
            load::statements(
                &self.cfg,
                &self.clients.region,
                &found.role_arn,
                fingerprint.as_deref(),
            )
            .map_err(|m| Error::Verification {
                table: self.cfg.table.name.to_string(),
                reason: m,
            })?
        };
        Ok(Plan {
            steps,
            sql,
            inferred: self.inferred.clone().and_then(|i| i.ok()),
        })
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
        let staged =
            stage::upload(&self.cfg, &self.clients.s3, file, observer, &self.activity).await?;
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
        let role = match &self.cfg.target {
            config::TargetSettings::Serverless(sl) => {
                let role = self.existing_role().await?;
                serverless::check_ready(&self.clients.serverless, sl, &role.arn).await?;
                role
            }
            // The role and the cluster are looked up side by side: two
            // round trips' wait instead of three in a row. The role's error
            // comes first when both fail, whichever came back first.
            config::TargetSettings::Cluster(c) => {
                let (role, state) = tokio::join!(self.existing_role(), self.existing_cluster(c));
                let (role, mut state) = (role?, state?);
                if state.status != "available" {
                    // Still coming up: wait for it.
                    state =
                        cluster::wait_available(&self.clients.redshift, c, None, observer).await?;
                }
                if state.role_status(&role.arn).is_none() {
                    return Err(Error::Refused {
                        action: "load into",
                        kind: "cluster",
                        name: c.identifier.clone(),
                        reason: format!(
                            "role {} is not attached to it; run `up` to attach it",
                            role.arn
                        ),
                    });
                }
                role
            }
        };
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

    /// The role `up` created, or an error saying to run `up`.
    async fn existing_role(&self) -> Result<iam::RoleState> {
        let role = iam::inspect_role(&self.clients.iam, &self.cfg.iam.role_name).await?;
        role.ok_or_else(|| Error::Refused {
            action: "load with",
            kind: "IAM role",
            name: self.cfg.iam.role_name.clone(),
            reason: "it does not exist; run `up` first".into(),
        })
    }

    /// The cluster as it is now, or an error saying to run `up`.
    async fn existing_cluster(&self, settings: &ClusterSettings) -> Result<cluster::ClusterState> {
        let Some(state) =
            cluster::describe_cluster(&self.clients.redshift, &settings.identifier).await?
        else {
            return Err(Error::Refused {
                action: "load into",
                kind: "cluster",
                name: settings.identifier.clone(),
                reason: "it does not exist; run `up` first".into(),
            });
        };
        Ok(state)
    }

    /// The first `limit` rows of the table, ordered by its first column: what
    /// a reader wants to see after a load.
    pub async fn preview(&self, limit: u32) -> Result<crate::warehouse::ResultSet> {
        let sql = load::preview_sql(&self.cfg, limit);
        self.warehouse().query(&sql).await
    }

    /// The account id, asked of STS once.
    async fn account(&self) -> Result<String> {
        Ok(match self.account.get() {
            Some(account) => account.clone(),
            None => {
                let account = self.clients.account_id().await?;
                self.account.get_or_init(|| account).clone()
            }
        })
    }

    async fn policy_arn(&self) -> Result<String> {
        let account = self.account().await?;
        Ok(iam::policy_arn(
            partition(&self.clients.region),
            &account,
            &self.cfg.iam.policy_name,
        ))
    }
}
