//! One error type for the operator, with a stable category for metrics and conditions.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", concise(.0))]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Finalizer(String),
    /// Cleanup is in progress (e.g. a namespace is terminating); retried shortly, not a failure.
    #[error("waiting: {0}")]
    Waiting(String),
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// A deletion that must not proceed yet (e.g. a team that still has child teams).
    #[error("blocked: {0}")]
    Blocked(String),
    /// The object changed while we acted on a cached copy; retried at once with the new one.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A Stripe request failed or was refused (never carries the key).
    #[error("{0}")]
    Stripe(String),
}

impl Error {
    /// A short, stable label: `kube_api`, `finalizer`, `waiting`, `serialization`, `conflict`, `blocked`, `stripe`.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube_api",
            Error::Finalizer(_) => "finalizer",
            Error::Waiting(_) => "waiting",
            Error::Serialization(_) => "serialization",
            Error::Conflict(_) => "conflict",
            Error::Blocked(_) => "blocked",
            Error::Stripe(_) => "stripe",
        }
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    fn from(err: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match err {
            F::ApplyFailed(e) | F::CleanupFailed(e) => e,
            // The finalizer patch tests the cached finalizer list; a stale cache fails that test.
            F::AddFinalizer(kube::Error::Api(s)) | F::RemoveFinalizer(kube::Error::Api(s))
                if s.code == 409 || s.code == 422 =>
            {
                Error::Conflict(s.message)
            }
            F::AddFinalizer(e) | F::RemoveFinalizer(e) => Error::Kube(e),
            other => Error::Finalizer(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The API server's own message ("ResourceQuota \"x\" is invalid: ...") without the Debug
/// dump of the whole Status, for conditions and events people read.
fn concise(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!("Kubernetes API: {} ({})", status.message, status.code),
        other => format!("Kubernetes API: {other}"),
    }
}
