//! Why a request was refused: the one error type the engine, the control
//! plane checks and the wire protocol share. A leaf: it imports nothing of
//! the crate.

/// Why a statement could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// The request is wrong (`ValidationException`).
    #[error("{0}")]
    Validation(String),
    /// No such statement (`ResourceNotFoundException`).
    #[error("{0}")]
    NotFound(String),
    /// Too many sessions are open (`ActiveSessionsExceededException`).
    #[error("{0}")]
    ActiveSessionsExceeded(String),
    /// The sandbox or its back ends failed (`InternalServerException`).
    #[error("{0}")]
    Internal(String),
}
