//! The one error type of the steps: what went wrong, and for a refused AWS
//! request, the operation, AWS's error code and its message.

use std::fmt;

use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Why a step failed.
#[derive(Debug)]
pub enum Error {
    /// AWS refused a request, or it never got an answer.
    Aws {
        /// The operation, e.g. `CreateRole`.
        operation: &'static str,
        /// AWS's error code, e.g. `AccessDenied`; none when there was no
        /// reply (a timeout, a refused connection).
        code: Option<String>,
        /// AWS's message, or the chain of causes.
        message: String,
    },
    /// A SQL statement failed, with Redshift's message.
    Sql {
        /// The statement, shortened.
        sql: String,
        /// Redshift's message.
        message: String,
    },
    /// The `.cfg` file is missing something or holds a bad value.
    Config(String),
    /// Something took longer than its deadline.
    Timeout(String),
    /// A reply lacked what it must hold (an id, a role).
    Missing(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Aws {
                operation,
                code: Some(code),
                message,
            } => write!(f, "{operation}: {code}: {message}"),
            Error::Aws {
                operation, message, ..
            } => write!(f, "{operation}: {message}"),
            Error::Sql { sql, message } => write!(f, "{sql}: {message}"),
            Error::Config(m) | Error::Timeout(m) | Error::Missing(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// An SDK error as a reader needs it. An `SdkError`'s own `Display` says
/// only "service error": `ProvideErrorMetadata` reads the code and message
/// the service sent, and `DisplayErrorContext` prints the whole chain of
/// causes of an error with no reply (a timeout, a refused connection).
///
/// Use it as `.send().await.map_err(aws("CreateRole"))?`.
///
/// ```
/// let e = own_project::error::Error::Aws {
///     operation: "CreateRole",
///     code: Some("EntityAlreadyExists".into()),
///     message: "Role with name x already exists.".into(),
/// };
/// assert_eq!(e.to_string(), "CreateRole: EntityAlreadyExists: Role with name x already exists.");
/// ```
// ANCHOR: aws_error
pub fn aws<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    move |e| Error::Aws {
        operation,
        code: e.code().map(str::to_string),
        message: match e.code() {
            Some(_) => e.message().unwrap_or("no message").to_string(),
            None => DisplayErrorContext(&e).to_string(),
        },
    }
}
// ANCHOR_END: aws_error

/// What `?` makes of `ok_or("…")`: a reply that lacked something.
impl From<&str> for Error {
    fn from(m: &str) -> Self {
        Error::Missing(m.to_string())
    }
}
