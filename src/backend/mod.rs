//! Backends: the only code that changes the world. The engine asks a backend to read a step's
//! target and to move it from one state to another; it never touches the world itself.

pub mod live_iam;
pub mod rehearsal;

use serde_json::Value;

use crate::plan::{Step, Target};

/// Why a backend could not read or write a target.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    State {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("{target}: {message}")]
    Target { target: String, message: String },
}

/// Shaped like sqlx's `Migrate`: read a target, move it. Implemented by the rehearsal backend
/// (a snapshot directory) and, for live clusters, by the Kubernetes and IAM clients.
pub trait Backend {
    /// Where changes go, in words, for summaries and confirmation prompts.
    fn describe(&self) -> String;

    /// Whether this backend can change `target`. The live IAM backend cannot touch Kubernetes.
    fn supports(&self, _target: &Target) -> bool {
        true
    }

    /// Remote API calls made so far, for backends that make them.
    fn calls(&self) -> Option<usize> {
        None
    }

    /// The target's current state in the step's terms: the whole document for IAM steps, the
    /// fragment at the step's paths for Kubernetes steps, `null` when the target does not exist.
    fn read(&mut self, step: &Step) -> Result<Value, BackendError>;

    /// Moves the target from `from` to `to` (a step's `before` and `after`, in either order),
    /// durably: when this returns, the change survives a crash.
    fn write(&mut self, step: &Step, from: &Value, to: &Value) -> Result<(), BackendError>;
}
