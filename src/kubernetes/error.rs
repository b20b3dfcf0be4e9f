//! Why a call to the Kubernetes API failed.

/// Why the Kubernetes API could not be reached, read or written. The message names the call.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "cannot load the Kubernetes configuration: {0}; pass --kubeconfig/--context, set KUBECONFIG, or read a snapshot with --snapshot"
    )]
    Config(String),
    #[error("Kubernetes {verb} {path}: {message}")]
    Call {
        verb: &'static str,
        path: String,
        /// The HTTP status the API server answered with, when it answered.
        status: Option<u16>,
        message: String,
    },
    #[error("cannot start the Kubernetes client runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl KubeError {
    pub fn status(&self) -> Option<u16> {
        match self {
            KubeError::Call { status, .. } => *status,
            _ => None,
        }
    }
}
