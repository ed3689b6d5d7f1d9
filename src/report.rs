//! What each step did (or, for `plan`, would do), and how progress is shown.
//!
//! The library never prints. It returns [`StepReport`]s and tells an
//! [`Observer`] while it waits; the CLI draws spinners from that, a notebook
//! can print lines, and a test can record them.

use std::fmt;
use std::time::Duration;

use crate::config::OnExisting;
use crate::error::Error;

/// The tag key put on everything this tool creates.
pub const MANAGED_BY_KEY: &str = "managed-by";
/// The tag value put on everything this tool creates.
pub const MANAGED_BY_VALUE: &str = "s3-to-redshift";

/// What a step does to one resource. `plan` shows the future tense,
/// `up`/`down` the past.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// It did not exist; create it.
    Create,
    /// It exists; keep it as it is.
    Reuse,
    /// It exists and was made by this tool; bring it in line with the config.
    Update,
    /// It exists; delete it and create it anew.
    Replace,
    /// Delete it.
    Delete,
    /// It does not exist; nothing to do.
    Absent,
    /// It exists and is left alone (e.g. the role on `down` without `--with-iam`).
    Keep,
}

impl Action {
    /// "create", "reuse", … as `plan` prints it.
    pub fn future(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Reuse => "reuse",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Absent => "nothing to do (absent)",
            Action::Keep => "keep",
        }
    }

    /// "created", "reused", … as `up` and `down` print it.
    pub fn past(&self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Reuse => "reused",
            Action::Update => "updated",
            Action::Replace => "replaced",
            Action::Delete => "deleted",
            Action::Absent => "absent",
            Action::Keep => "kept",
        }
    }
}

/// One line of output: a step, the resource it concerns and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// The step's name: `iam-role`, `iam-policy`, `cluster`, `table`, `copy`, …
    pub step: &'static str,
    /// The resource's name or ARN.
    pub resource: String,
    /// What was (or would be) done.
    pub action: Action,
    /// Anything else worth a reader's eye: an endpoint, a warning.
    pub detail: Option<String>,
}

impl StepReport {
    /// A report without detail.
    pub fn new(step: &'static str, resource: impl Into<String>, action: Action) -> Self {
        Self {
            step,
            resource: resource.into(),
            action,
            detail: None,
        }
    }

    /// Adds a detail line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Renders the report in the future tense, as `plan` does.
    pub fn planned(&self) -> String {
        self.render(self.action.future())
    }

    fn render(&self, verb: &str) -> String {
        let mut s = format!("{:<11} {:<34} {verb}", self.step, self.resource);
        if let Some(d) = &self.detail {
            s.push_str(&format!(" — {d}"));
        }
        s
    }
}

impl fmt::Display for StepReport {
    /// Past tense, one line: `cluster     demo       created — endpoint …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(self.action.past()))
    }
}

/// Decides what to do with a resource given what exists and the config's
/// `ON_EXISTING` choice. `existing` is `None` when absent, else whether the
/// resource carries this tool's tag.
///
/// This one function serves both `plan` and `up`, so the plan is exactly what
/// `up` will do.
///
/// ```
/// use s3_to_redshift::config::OnExisting;
/// use s3_to_redshift::report::{decide, Action};
/// assert_eq!(decide("cluster", "c", None, OnExisting::Fail, false).unwrap(), Action::Create);
/// assert_eq!(decide("cluster", "c", Some(false), OnExisting::Reuse, false).unwrap(), Action::Reuse);
/// assert!(decide("cluster", "c", Some(false), OnExisting::Replace, false).is_err());
/// assert_eq!(decide("cluster", "c", Some(false), OnExisting::Replace, true).unwrap(), Action::Replace);
/// ```
pub fn decide(
    kind: &'static str,
    name: &str,
    existing: Option<bool>,
    on_existing: OnExisting,
    force: bool,
) -> Result<Action, Error> {
    match (existing, on_existing) {
        (None, _) => Ok(Action::Create),
        (Some(_), OnExisting::Reuse) => Ok(Action::Reuse),
        (Some(_), OnExisting::Fail) => Err(Error::Refused {
            action: "reuse",
            kind,
            name: name.to_string(),
            reason: "it already exists and ON_EXISTING = fail; choose another name, or set \
                     ON_EXISTING = reuse or replace"
                .into(),
        }),
        (Some(managed), OnExisting::Replace) => {
            if managed || force {
                Ok(Action::Replace)
            } else {
                Err(not_ours("replace", kind, name))
            }
        }
    }
}

/// The error for touching something this tool did not create.
pub fn not_ours(action: &'static str, kind: &'static str, name: &str) -> Error {
    Error::Refused {
        action,
        kind,
        name: name.to_string(),
        reason: format!(
            "it has no `{MANAGED_BY_KEY}={MANAGED_BY_VALUE}` tag, so this tool did not create \
             it; pass --force if you really mean to {action} it"
        ),
    }
}

/// Receives progress while the library waits on AWS.
///
/// All methods have empty defaults; implement what you show.
pub trait Observer: Send + Sync {
    /// Called at each poll of a wait: `what` we wait for, its current `state`.
    fn waiting(&self, what: &str, state: &str, elapsed: Duration) {
        let _ = (what, state, elapsed);
    }
    /// Called when a wait ends, either way.
    fn wait_over(&self) {}
    /// Called as measurable work advances (`stage`'s bytes and parts):
    /// `done` of `total` for the phase named `what`.
    fn progress(&self, what: &str, done: u64, total: u64) {
        let _ = (what, done, total);
    }
    /// Called when a step finishes.
    fn step(&self, report: &StepReport) {
        let _ = report;
    }
}

/// An [`Observer`] that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Observer for Quiet {}

/// What a command is doing right now, shared with whoever may interrupt it.
///
/// Why this exists: a CLI that is stopped with Ctrl-C should say what was
/// under way and what to do next, and should cancel a SQL statement it
/// started rather than leave it running unseen. The pipeline updates an
/// `Activity` as it goes; the CLI's signal handler reads it. Cloning shares
/// the same record.
///
/// ```
/// use s3_to_redshift::report::Activity;
/// let activity = Activity::default();
/// activity.step("waiting for cluster `demo` to become available");
/// activity.statement(Some(("abc-123", "COPY …")));
/// let now = activity.now();
/// assert_eq!(now.step.as_deref(), Some("waiting for cluster `demo` to become available"));
/// assert_eq!(now.statement, Some(("abc-123".to_string(), "COPY …".to_string())));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Activity(std::sync::Arc<std::sync::Mutex<Doing>>);

/// A snapshot of an [`Activity`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Doing {
    /// The step under way, in words.
    pub step: Option<String>,
    /// The Data API statement being waited on: `(id, SQL in brief)`.
    pub statement: Option<(String, String)>,
    /// The S3 multipart uploads open now, to abort if the run stops: an
    /// open upload's parts are stored, and billed, until it is completed or
    /// aborted.
    pub uploads: Vec<OpenUpload>,
    /// The bucket and key prefix a stage under way writes its parts to: an
    /// upload created while the run was stopped is found there.
    pub staging: Option<(String, String)>,
}

/// An S3 multipart upload that was created and not yet completed or aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenUpload {
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Its upload id.
    pub upload_id: String,
}

impl Activity {
    fn with<T>(&self, f: impl FnOnce(&mut Doing) -> T) -> T {
        // A panic elsewhere while holding the lock leaves a usable record.
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Records the step now under way.
    pub fn step(&self, what: impl Into<String>) {
        let what = what.into();
        tracing::debug!("now: {what}");
        self.with(|d| d.step = Some(what));
    }

    /// Records the statement now waited on, or that none is.
    pub fn statement(&self, statement: Option<(&str, &str)>) {
        self.with(|d| d.statement = statement.map(|(id, sql)| (id.to_string(), sql.to_string())));
    }

    /// Records the bucket and prefix a stage writes under, or that none is.
    pub fn staging(&self, at: Option<(&str, &str)>) {
        self.with(|d| d.staging = at.map(|(b, p)| (b.to_string(), p.to_string())));
    }

    /// Records a multipart upload just created.
    pub fn upload_opened(&self, upload: OpenUpload) {
        self.with(|d| d.uploads.push(upload));
    }

    /// Records that multipart upload `upload_id` was completed or aborted.
    pub fn upload_closed(&self, upload_id: &str) {
        self.with(|d| d.uploads.retain(|u| u.upload_id != upload_id));
    }

    /// What is under way now.
    pub fn now(&self) -> Doing {
        self.with(|d| d.clone())
    }
}
