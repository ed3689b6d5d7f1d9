//! The crate's error types.
//!
//! Every error a user can cause says what was wrong, where (file, section and
//! key, or the AWS service, operation and resource) and what to do about it.
//! [`Error::exit_code`] maps each kind to the CLI's documented exit code, so
//! scripts can tell "your config is wrong" from "AWS said no" from "timed out".

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One thing wrong in a config file: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The section, as written in the file (or as expected when missing).
    pub section: String,
    /// The key, as written in the file (or as expected when missing); empty
    /// for a problem with a whole section.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "[{}]: {}", self.section, self.message)
        } else {
            write!(f, "[{}] {}: {}", self.section, self.key, self.message)
        }
    }
}

/// Why a configuration could not be used. Nothing has been sent to AWS when
/// one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid INI.
    #[error("{path} is not a valid INI file: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The file parsed, but some values are missing or wrong. All problems are
    /// listed at once so one edit can fix them all.
    #[error("{path} has {} problem{}:\n{}", .problems.len(), if .problems.len() == 1 { "" } else { "s" }, list(.problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Everything found wrong, in file order where possible.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything that can go wrong in the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable; nothing was changed.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// An AWS call failed. `code` is the service's error code when it sent one
    /// (`AccessDenied`, `ClusterQuotaExceeded`, …).
    #[error("{service} {operation} on {resource} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Aws {
        /// The service, e.g. `IAM`.
        service: &'static str,
        /// The operation, e.g. `CreateRole`.
        operation: &'static str,
        /// The resource the call was about.
        resource: String,
        /// The AWS error code, if the service sent one.
        code: Option<String>,
        /// The service's message, or the transport failure.
        message: String,
    },

    /// The tool refused to act, to protect something (a resource it did not
    /// create, `ON_EXISTING = fail`, a declined confirmation).
    #[error("refusing to {action} {kind} `{name}`: {reason}")]
    Refused {
        /// What we would have done: `replace`, `delete`, `reuse`.
        action: &'static str,
        /// What kind of resource: `IAM role`, `cluster`, …
        kind: &'static str,
        /// Its name.
        name: String,
        /// Why, and what to do instead.
        reason: String,
    },

    /// A bounded wait ran out.
    #[error("timed out after {}s waiting for {what} (last state: {last_state}); {hint}", .waited.as_secs())]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long we waited.
        waited: Duration,
        /// The last state seen.
        last_state: String,
        /// What to do next.
        hint: String,
    },

    /// A cluster reached a state it will not leave by itself.
    #[error("cluster `{identifier}` is in state `{status}` and will not become available; {hint}")]
    ClusterFailed {
        /// The cluster.
        identifier: String,
        /// Its status.
        status: String,
        /// What to do next.
        hint: String,
    },

    /// A SQL statement ended FAILED; `message` is Redshift's own.
    #[error("SQL statement {id} failed: {message}\n  statement: {sql}{}", load_errors_text(.load_errors))]
    StatementFailed {
        /// The Data API statement id.
        id: String,
        /// The statement (shortened for display).
        sql: String,
        /// Redshift's error message.
        message: String,
        /// Redshift's query id (`query` in `STL_*` tables), 0 if unknown.
        query_id: i64,
        /// The rejected rows when a COPY failed (first few, and a summary).
        /// (Boxed: it is large, and errors travel through every `Result`.)
        load_errors: Box<LoadErrors>,
    },

    /// A SQL statement was cancelled (ABORTED).
    #[error("SQL statement {id} was aborted before it finished\n  statement: {sql}")]
    StatementAborted {
        /// The Data API statement id.
        id: String,
        /// The statement (shortened for display).
        sql: String,
    },

    /// The data to load is not where the config says.
    #[error("nothing to load at {uri}: {reason}")]
    Source {
        /// The S3 location from the config.
        uri: String,
        /// What was found instead, and what to do.
        reason: String,
    },

    /// The load ran but its result does not check out.
    #[error("load verification failed for {table}: {reason}")]
    Verification {
        /// The table.
        table: String,
        /// What did not match.
        reason: String,
    },
}

fn load_errors_text(errors: &LoadErrors) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let text: Vec<String> = errors
        .to_string()
        .lines()
        .map(|l| format!("  {l}"))
        .collect();
    format!("\n  load errors:\n{}", text.join("\n"))
}

impl Error {
    /// The CLI's exit code for this error (see the README's table).
    ///
    /// ```
    /// use s3_to_redshift::Error;
    /// let e = Error::Source { uri: "s3://b/k".into(), reason: "no objects".into() };
    /// assert_eq!(e.exit_code(), 4);
    /// ```
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            Error::Refused { .. } => 3,
            Error::Aws { .. } | Error::Source { .. } | Error::ClusterFailed { .. } => 4,
            Error::Timeout { .. } => 5,
            Error::StatementFailed { .. }
            | Error::StatementAborted { .. }
            | Error::Verification { .. } => 6,
        }
    }

    /// Wraps an SDK error with the service, operation and resource it was for.
    ///
    /// The AWS error code and message are kept; a transport failure (nothing
    /// listening, TLS, timeout) keeps its full cause chain, since "dispatch
    /// failure" alone tells a reader nothing.
    pub fn aws<E, R>(
        service: &'static str,
        operation: &'static str,
        resource: impl Into<String>,
        err: SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_string);
        let message = match err.message() {
            Some(m) => m.to_string(),
            None => cause_chain(&err),
        };
        Error::Aws {
            service,
            operation,
            resource: resource.into(),
            code,
            message,
        }
    }
}

/// "dispatch failure: io error: Connection refused": each cause's own text,
/// without the raw response that the SDK's `Debug` output would add.
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// One rejected row, as Redshift records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The S3 object.
    pub file: String,
    /// The line in that object (1-based, counting the header).
    pub line: i64,
    /// The column the value was for.
    pub column: String,
    /// The value as read (empty where Redshift does not record it).
    pub value: String,
    /// Redshift's reason.
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} line {}, column `{}`",
            self.file, self.line, self.column
        )?;
        if !self.value.is_empty() {
            write!(f, ", value `{}`", self.value)?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// How many load errors are fetched and shown one by one; the rest are
/// counted and summarised by column and reason.
pub const LOAD_ERRORS_SHOWN: usize = 10;

/// The rejected rows of one COPY: the first few in full, and a summary of all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadErrors {
    /// The first [`LOAD_ERRORS_SHOWN`] rows, by line.
    pub first: Vec<LoadError>,
    /// How many rows were rejected in all.
    pub total: i64,
    /// `(column, reason, count)` over all of them, most frequent first
    /// (at most [`LOAD_ERRORS_SHOWN`] groups).
    pub by_reason: Vec<(String, String, i64)>,
}

impl LoadErrors {
    /// Whether nothing was rejected.
    pub fn is_empty(&self) -> bool {
        self.total == 0 && self.first.is_empty()
    }
}

impl fmt::Display for LoadErrors {
    /// The first errors, then — when there are more than shown — the summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.first {
            writeln!(f, "  {e}")?;
        }
        let total = self.total.max(self.first.len() as i64);
        if total > self.first.len() as i64 {
            writeln!(
                f,
                "  … {} rejected rows in all, {} shown; by column and reason:",
                total,
                self.first.len()
            )?;
            for (column, reason, n) in &self.by_reason {
                writeln!(f, "    {n:>8}  `{column}`: {reason}")?;
            }
        }
        Ok(())
    }
}
