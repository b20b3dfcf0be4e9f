//! The apply engine: one loop for dry run, rehearsal and live apply, forwards (apply) and
//! backwards (rollback), journaled so a run killed at any point resumes or rolls back exactly.
//!
//! Before each step the target is read: equal to the step's `after`, the step is recorded as done
//! and nothing is written; equal to `before`, it is written; anything else stops the run with a
//! diff. Before the first write of a run every target the run starts from is read and checked
//! that way (the preflight), so a changed target stops the run before anything is written. That
//! reading is the step's read when its write is conditional (Kubernetes) or the reading is less
//! than [`READING_FRESH_FOR`] old (IAM): one read and one write per target.
//!
//! One job per file: `select` (which steps a run takes, in which order), `preflight` (the reads
//! before the first write), `runner` (batches of steps: read, compare, write, journal), `wave`
//! (rollout waves and their verification), `owners` (the steps their targets' owners make, which
//! a run reads and waits for), `engine` (the loop over them); `compare` (whether a target is in a
//! step's state), `drift` (what went back, which decommission must not strand), `evidence`
//! (what CloudTrail must show before decommission), `error` (why a
//! run stopped), `replan` (when a new plan may replace a
//! migration's), `journal` and `lock` (the migration directory's state and writer).

mod compare;
mod drift;
mod engine;
mod error;
mod evidence;
pub mod journal;
pub mod lock;
mod owners;
mod preflight;
mod replan;
mod runner;
mod select;
mod wave;

pub use engine::run;
pub use error::ApplyError;
pub use evidence::EvidenceGate;
pub use preflight::{Preview, READING_FRESH_FOR};
pub use replan::refuse_replan_if_applied;
pub use select::{Selection, check};
pub use wave::RolloutCheck;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Apply,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read every target and say what would happen; write nothing, journal nothing.
    DryRun,
    Execute,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub direction: Direction,
    pub mode: Mode,
    pub selection: Selection,
    /// Steps that restart pods (rollout, cleanup) run in waves of this many workloads.
    pub wave_size: usize,
    pub rollout: RolloutCheck,
    /// How long the preflight's reading of a target whose writes are not conditional may stand
    /// in for the read before its write ([`READING_FRESH_FOR`] unless a test says otherwise).
    pub reading_fresh_for: std::time::Duration,
    /// What the run does with steps whose target has an owner.
    pub owners: Owners,
    /// What decommission asks of CloudTrail's evidence.
    pub evidence: EvidenceGate,
}

/// What a run does with a step whose target has an owner ([`Step::owner`](crate::plan::Step)):
/// a Helm release, a GitOps controller or infrastructure code that would put back, at its next
/// sync, a change it did not make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// The step is not written: its owner makes the change. The run goes on past it once the
    /// target reads as the step leaves it (journaled as done by its owner), reading it again
    /// every [`OWNER_POLL`] for up to this long (zero: once); at the end of the step's phase,
    /// the run stops naming what each owner has still to merge.
    Await(std::time::Duration),
    /// Written like any other step (`--patch-owned`): the owner will revert it.
    Patch,
    /// A rehearsal plays the owners' part (`--as-owner`): the change is written as its owner
    /// would make it, and journaled as done by the owner.
    Play,
}

/// How often a run waiting for owners reads their targets again.
pub const OWNER_POLL: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub changed: usize,
    pub already_done: usize,
    pub skipped: usize,
    /// Made by the target's owner, read and journaled by this run.
    pub by_owner: usize,
    /// Still to be made by the target's owner when the run ended (a dry run's, or one that
    /// stopped for them).
    pub awaiting_owner: usize,
}

impl Summary {
    /// `made` steps that were awaiting their owners were made by them.
    fn settled(&mut self, made: usize) {
        self.by_owner += made;
        self.awaiting_owner -= made;
    }
}

/// The SHA-256 of a plan file's bytes, as journals started before
/// [`Plan::digest`](crate::plan::Plan::digest) record it.
pub fn checksum(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests;
