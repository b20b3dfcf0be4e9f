//! Backends: the only code that changes the world. The engine asks a backend to read a step's
//! target and to move it from one state to another; it never touches the world itself.

pub mod live;
pub mod live_iam;
pub mod live_kube;
pub mod rehearsal;
mod rollout;

use std::time::Duration;

use serde_json::Value;

use crate::aws::AwsError;
use crate::call_error::ErrorKind;
use crate::iam::arn::RoleArn;
use crate::inventory::trail::Trail;
use crate::kubernetes::KubeError;
use crate::plan::{Step, Target};

/// What a backend's trail holds, and the instant it reaches (now, for a live reading; the end of
/// the recorded readings, for a rehearsal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrailReading {
    pub trail: Trail,
    pub as_of: i64,
    /// This cluster's running pods, which tell its legacy sessions from another cluster's.
    pub pods: crate::evidence::Pods,
}

/// Why a backend could not read or write a target.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A file of the rehearsal state could not be read or written.
    #[error("cannot read or write {path}: {source} (check its permissions and the free space)")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The rehearsal state holds what a rehearsal did not write there (a file edited by hand, a
    /// link); the message says what to restore or remove.
    #[error("{path}: {message}")]
    State {
        path: std::path::PathBuf,
        message: String,
    },
    /// The rehearsal state, or the plan's snapshot it is made from, could not be read or written
    /// as a snapshot (the cause names the file); `doing` says what was being done.
    #[error("{doing}: {source}")]
    Snapshot {
        doing: &'static str,
        #[source]
        source: Box<crate::inventory::snapshot::InventoryError>,
    },
    /// The step cannot be made on its target as the target is (not an object this backend
    /// writes, gone since it was read, a workload whose pods would not get their role); the
    /// message says what.
    #[error("{target}: {message}")]
    Target { target: String, message: String },
    /// A call to AWS about the target failed; its kind says whether it was refused.
    #[error("{target}: {source}")]
    Aws {
        target: String,
        #[source]
        source: AwsError,
    },
    /// A call to the Kubernetes API about the target failed; its kind says whether it was
    /// refused.
    #[error("{target}: {source}")]
    Kube {
        target: String,
        #[source]
        source: KubeError,
    },
    /// Someone else changed the target between the engine's read and the write, and the API
    /// refused the write (a conditional write); nothing was overwritten.
    #[error(
        "{target} was changed by someone else while this step ran; nothing was overwritten. If the change is intended, re-plan; otherwise restore the target and run again"
    )]
    Concurrent { target: String, observed: Value },
}

impl BackendError {
    /// How the failure came about: a call's kind, [`ErrorKind::Conflict`] for a write refused
    /// as concurrent, [`ErrorKind::Other`] for the backend's own findings. A write that failed
    /// as a refusal ([`ErrorKind::is_refusal`]) was not made; any other may have been.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BackendError::Aws { source, .. } => source.kind(),
            BackendError::Kube { source, .. } => source.kind(),
            BackendError::Concurrent { .. } => ErrorKind::Conflict,
            BackendError::Io { .. }
            | BackendError::State { .. }
            | BackendError::Snapshot { .. }
            | BackendError::Target { .. } => ErrorKind::Other,
        }
    }
}

/// A workload a rollout wave changes, and the account and role its new pods must run with.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub target: Target,
    pub service_account: String,
    pub role_arn: RoleArn,
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

    /// Whether a write to `target` is refused, rather than made, when the target changed since
    /// this backend last read it (Kubernetes writes carry the read's `resourceVersion`). For such
    /// targets a reading of any age may stand in for the read before a write.
    fn conditional_writes(&self, _target: &Target) -> bool {
        false
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

    /// How many steps on distinct targets may be read and written at once.
    fn concurrency(&self) -> usize {
        1
    }

    /// Reads several steps' targets (distinct ones); results in the order of `steps`.
    fn read_many(&mut self, steps: &[&Step]) -> Vec<Result<Value, BackendError>> {
        steps.iter().map(|step| self.read(step)).collect()
    }

    /// Makes several moves on distinct targets; results in the order of `moves`. Every move is
    /// attempted, whatever happens to the others.
    fn write_many(&mut self, moves: &[(&Step, &Value, &Value)]) -> Vec<Result<(), BackendError>> {
        moves
            .iter()
            .map(|(step, from, to)| self.write(step, from, to))
            .collect()
    }

    /// Before a workload is restarted: why its restart would not give its pods the role, if so.
    /// A held rollout (paused, `OnDelete`, a partition) is reported at once; otherwise waits, at
    /// most `timeout`, until the pod identity webhook would inject the role into a pod of its
    /// template run as its planned account. (The webhook serves an account it has cached without
    /// the annotation as "no role", without waiting, so pods restarted right after `identity` can
    /// start without credentials.) A snapshot has neither controllers nor a webhook, so by
    /// default there is nothing to wait for.
    fn ready_to_restart(
        &mut self,
        _rollout: &Rollout,
        _timeout: Duration,
    ) -> Result<Option<String>, BackendError> {
        Ok(None)
    }

    /// Whether [`Backend::verify_rollout`] watches real controllers; the engine announces a wait
    /// only then (a rehearsal has nothing to wait for, and says nothing about it).
    fn observes_rollouts(&self) -> bool {
        false
    }

    /// CloudTrail's role assumptions in `regions` from `start` (seconds since the epoch), IAM's
    /// `RoleLastUsed` of `roles`, and the instant they reach: the evidence decommission is judged
    /// by ([`crate::evidence`]). A backend without a trail has none, so nothing it would
    /// decommission is proven ready.
    fn trail(
        &mut self,
        _regions: &[String],
        _start: i64,
        _roles: &[RoleArn],
    ) -> Result<TrailReading, BackendError> {
        Ok(TrailReading {
            trail: Trail::default(),
            as_of: crate::time::now(),
            pods: Default::default(),
        })
    }

    /// Waits until the wave's workloads have rolled out with their role's credentials injected
    /// and their pods ready, for at most `timeout`; returns what is wrong, nothing when all is
    /// well. A snapshot has no controllers to wait for, so by default there is nothing to check.
    fn verify_rollout(
        &mut self,
        _wave: &[Rollout],
        _timeout: Duration,
        _progress: &mut dyn FnMut(String),
    ) -> Result<Vec<String>, BackendError> {
        Ok(Vec::new())
    }
}
