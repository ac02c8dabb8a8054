//! The one error of the operations layer. Front ends match on its kind: the API maps it to a
//! status and its JSON error, the CLI to an exit code.

use crate::ids::InvalidId;
use crate::pipeline::dlq::DlqError;
use crate::store::StoreError;
use crate::store::subscriptions::SubscriptionError;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The resource does not exist, or the caller's scope may not see it.
    #[error("{0}")]
    NotFound(String),
    /// The resource is not in a state that allows the operation (nothing was changed).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Bad input, refused before any backend was asked; `field` names the input at fault.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// An event over the payload limit.
    #[error("{0}")]
    TooLarge(String),
    /// Well-formed and found, but not processable (a DLQ entry that cannot be redelivered).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// A backing service failed or is not connected.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A failure of a backing service, by service.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Redis(#[from] StoreError),
    #[error("redis error while {doing}: {source}")]
    RedisCommand { doing: String, source: redis::RedisError },
    #[error("{0}")]
    Nats(String),
    /// A step that used both NATS and Redis (the cause says which failed).
    #[error("{doing}: {cause:#}")]
    Mixed { doing: String, cause: anyhow::Error },
    #[error("{0} is not connected for this command")]
    NotConnected(&'static str),
}

impl OpsError {
    /// Bad input in `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> OpsError {
        OpsError::Invalid { field: field.to_string(), message: message.into() }
    }

    /// An [`InvalidId`] found in `field`.
    pub fn bad_id(field: &str, e: InvalidId) -> OpsError {
        OpsError::invalid(field, e.to_string())
    }

    /// The field at fault, for invalid input.
    pub fn field(&self) -> Option<&str> {
        match self {
            OpsError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    pub(super) fn nats(doing: &str, e: impl std::fmt::Display) -> OpsError {
        OpsError::Backend(BackendError::Nats(format!("{doing}: {e}")))
    }

    pub(super) fn redis(doing: &str, source: redis::RedisError) -> OpsError {
        OpsError::Backend(BackendError::RedisCommand { doing: doing.to_string(), source })
    }
}

impl From<SubscriptionError> for OpsError {
    fn from(e: SubscriptionError) -> OpsError {
        match e {
            SubscriptionError::NotFound(_) => OpsError::NotFound(e.to_string()),
            SubscriptionError::Store(s) => OpsError::Backend(BackendError::Redis(s)),
            SubscriptionError::Conflict(_) => {
                OpsError::Conflict { code: "concurrent_change", message: e.to_string() }
            }
            SubscriptionError::Bucket(m) => OpsError::Backend(BackendError::Nats(m)),
            SubscriptionError::IndexNotReady => {
                OpsError::Backend(BackendError::Nats(e.to_string()))
            }
            other => {
                let field = other.field().unwrap_or("body");
                OpsError::invalid(field, other.to_string())
            }
        }
    }
}

impl From<DlqError> for OpsError {
    fn from(e: DlqError) -> OpsError {
        match e {
            DlqError::NotFound(_) => OpsError::NotFound(e.to_string()),
            DlqError::NotRedeliverable { .. } => {
                OpsError::Unprocessable { code: "not_redeliverable", message: e.to_string() }
            }
            DlqError::Nats(m) => OpsError::Backend(BackendError::Nats(m)),
        }
    }
}
