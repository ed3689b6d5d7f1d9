//! `status`: what exists now, one line per resource. Read-only.

use std::fmt;

use super::{Found, Pipeline};
use crate::config::{self, Config};
use crate::error::Result;
use crate::load;

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

impl Pipeline {
    /// What exists now. Read-only.
    pub async fn status(&self) -> Result<Vec<StatusLine>> {
        let found = self.look().await?;
        let mut lines = iam_status(&self.cfg, &found);
        lines.push(target_status(&self.cfg, &found));
        let available = found
            .cluster
            .as_ref()
            .is_some_and(|c| c.status == "available")
            || found
                .workgroup
                .as_ref()
                .is_some_and(|w| w.status == "AVAILABLE");
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
}

/// Who made a resource, as `status` says it.
fn made_by(managed: bool) -> &'static str {
    if managed {
        "created by s3-to-redshift"
    } else {
        "not created by s3-to-redshift"
    }
}

/// `status`'s lines for the role and the policy.
fn iam_status(cfg: &Config, found: &Found) -> Vec<StatusLine> {
    let role = StatusLine {
        kind: "iam-role",
        name: cfg.iam.role_name.clone(),
        state: match &found.role {
            None => "absent".into(),
            Some(r) => format!("exists ({}), {}", r.arn, made_by(r.managed)),
        },
    };
    let policy = StatusLine {
        kind: "iam-policy",
        name: cfg.iam.policy_name.clone(),
        state: match &found.policy {
            None => "absent".into(),
            Some(p) => format!(
                "exists, {}, {}{}",
                if p.attached {
                    "attached to the role"
                } else {
                    "NOT attached to the role"
                },
                made_by(p.managed),
                if p.document_matches {
                    ""
                } else {
                    ", document differs from the config"
                }
            ),
        },
    };
    vec![role, policy]
}

/// `status`'s line for the cluster or the workgroup.
fn target_status(cfg: &Config, found: &Found) -> StatusLine {
    match &cfg.target {
        config::TargetSettings::Serverless(sl) => StatusLine {
            kind: "workgroup",
            name: sl.workgroup.clone(),
            state: match &found.workgroup {
                None => "absent".into(),
                Some(w) => format!(
                    "{}, namespace `{}`, {}",
                    w.status,
                    w.namespace,
                    made_by(w.managed)
                ),
            },
        },
        config::TargetSettings::Cluster(c) => StatusLine {
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
                    made_by(c.managed)
                ),
            },
        },
    }
}
