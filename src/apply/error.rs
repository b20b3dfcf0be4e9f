//! Why a run stopped or refused to start, with what to do about it.

use crate::backend::BackendError;
use crate::plan::Phase;

use super::Direction;
use super::journal::JournalError;

/// Why a run stopped or refused to start.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan's checksum is not the one the journal's first run recorded: the file was edited
    /// (or replaced) after apply started, so the journal's states may not describe its steps.
    #[error(
        "the plan file changed since it was first applied (journal records {recorded}, the file is {found}); a plan is never edited after apply starts: roll back with the original plan, or start a new migration"
    )]
    PlanModified { recorded: String, found: String },
    /// The journal has a state for a step the plan lacks, though the plan's checksum matches (a
    /// journal of another plan would not): the journal was edited.
    #[error(
        "the journal records step {0}, which is not in the plan; the plan and journal do not belong together: restore the journal from version control (it is append-only, never edited)"
    )]
    UnknownStep(String),
    /// The selected phase waits for another: applying needs the earlier phases applied, rolling
    /// back needs the later ones rolled back. The message names the command to run first.
    #[error("{0}")]
    PhaseOrder(String),
    /// `--namespace` with decommission, whose steps (IAM trust and grants) serve every namespace.
    #[error(
        "decommission is cluster-wide: run it without --namespace, once every namespace is migrated"
    )]
    NamespaceWithDecommission,
    /// `plan` into a migration directory whose live journal records runs: a new plan would not
    /// match the journal, and the way back (the plan the journal belongs to) would be lost.
    #[error(
        "{journal} records live runs of this migration ({applied} step(s) applied or in doubt): a new plan would not match it, so nothing was written. {advice}"
    )]
    JournalExists {
        journal: std::path::PathBuf,
        applied: usize,
        advice: String,
    },
    /// A plan with no journal yet that is not the plan its own snapshot and settings give:
    /// hand-edited, or written by another version. Running it would run what the change board
    /// did not see in report.md.
    #[error(
        "{plan} is not the plan that its snapshot and settings give: {origin}; nothing was done. Re-plan with this version (`irsa-migrate plan --snapshot {snapshot} --name {name}`) and review report.md again. Where the file differs (- as planned from the snapshot, + in the file):\n{differences}"
    )]
    PlanNotFromSnapshot {
        plan: std::path::PathBuf,
        /// Who changed it, as far as the file tells: another version, or a hand.
        origin: String,
        snapshot: std::path::PathBuf,
        name: String,
        differences: String,
    },
    /// Another run holds the migration directory's lock ([`super::lock`]).
    #[error(
        "{path} is held by {holder}: another apply, rollback or plan of this migration is running, and nothing was done. Wait for it to finish, then run again (a holder that was killed has released it already)"
    )]
    Locked {
        path: std::path::PathBuf,
        holder: String,
    },
    /// The lock file could not be created or locked (a read-only directory, say).
    #[error(
        "cannot lock the migration directory with {path}: {source}; nothing was done: make the directory writable by this user, then run again"
    )]
    LockFailed {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `--namespace` that no step of the plan is in: a typo would otherwise select nothing.
    #[error(
        "--namespace {unknown}: no step of plan {plan} is in that namespace; its namespaces: {known}"
    )]
    UnknownNamespace {
        unknown: String,
        plan: String,
        known: String,
    },
    /// The backend cannot change a selected step's target (one side of the live backend given
    /// alone, say); found before anything is read.
    #[error(
        "{destination} cannot change {target} (step {step}); nothing was done: run it with a backend that reaches both IAM and Kubernetes (the live one, or --rehearse)"
    )]
    Unsupported {
        destination: String,
        step: String,
        target: String,
    },
    /// The confirmation was declined, or could not be asked (no terminal and no `--yes`).
    #[error("not confirmed; nothing was changed (pass --yes to run without a terminal)")]
    NotConfirmed,
    /// A target is in neither of the step's states: someone changed it since planning, or
    /// between this run's read and its write ([`BackendError::Concurrent`]). The diff shows how.
    #[error(
        "step {step}: {target} is neither in the state the plan expects nor in the state it produces; stopped{written}. Expected (-) and found (+):\n{diff}\nIf the change is intended, re-plan; otherwise restore the target and run again."
    )]
    Stale {
        step: String,
        target: String,
        diff: String,
        written: String,
    },
    /// A backend failure before this run sent its first write (opening the backend, the
    /// preflight's reads, a read before the first write): nothing was changed.
    #[error(
        "{step}: {source}; nothing was written by this run: fix the cause and run the same command again"
    )]
    NothingWritten {
        step: String,
        #[source]
        source: BackendError,
    },
    /// A backend failure after this run sent a write: the migration may be part-way.
    #[error(
        "step {step} failed after {changed} change(s) in this run: {source}; run the same command again to resume, or roll back"
    )]
    Backend {
        step: String,
        changed: usize,
        #[source]
        source: BackendError,
    },
    /// A wave's workloads did not roll out with their roles in time; `rolled_back` says whether
    /// the wave's changes were undone and what to do next.
    #[error("{phase} wave {wave} did not complete:\n  {problems}\n{rolled_back}")]
    RolloutFailed {
        phase: Phase,
        wave: usize,
        problems: String,
        rolled_back: String,
    },
    /// Steps of a phase are their targets' owners' to make (or, rolling back, to revert), and
    /// the owners had not when the run's wait was over: the run stopped at the end of the phase,
    /// with every other step of it done.
    #[error("{}", awaiting_owners(*.phase, *.direction, *.changed, .pending))]
    AwaitingOwners {
        phase: Phase,
        direction: Direction,
        /// Writes this run made.
        changed: usize,
        /// The steps still waiting, by owner ([`super::owners`]).
        pending: String,
    },
    /// Workloads or service accounts migrated to a role went back towards the legacy path (an
    /// owner synced its old manifests): the role's legacy trust, and the grants every legacy
    /// role needs, were left in place; the other roles' decommission steps ran.
    #[error(
        "decommission refused for {roles} role(s): what was migrated to them went back, and without their legacy trust those workloads would have no credentials at all. The legacy trust of these roles, and the AssumeRole grants every legacy role needs, stay; {}. What went back:\n{reverted}Make each change again (in its owner's source where it has one, or `irsa-migrate apply --phase identity|rollout|cleanup` for those nobody owns: the run reads the target and writes only what is missing), then run decommission again.",
        this_run_wrote(*.changed, "change(s) to the other roles")
    )]
    Reverted {
        roles: usize,
        /// Writes this run made (to the roles that were decommissioned).
        changed: usize,
        /// What went back, by role ([`super::drift::describe`]).
        reverted: String,
    },
    /// CloudTrail does not show the legacy path of these decommission steps unused and the new
    /// one working: they were held (journaled as such), the others ran.
    #[error(
        "decommission held for {held} step(s): CloudTrail does not show their legacy path unused and IRSA in use, and removing a legacy path someone still uses is an outage; {}. Held:\n{steps}`irsa-migrate evidence --plan PLAN` shows each role's evidence; once it is ready, run decommission again. To decommission on the plan alone: --without-evidence (journaled).",
        this_run_wrote(*.changed, "change(s) to the roles the evidence clears")
    )]
    Unproven {
        held: usize,
        changed: usize,
        /// Each held step and why ([`super::evidence::describe`]).
        steps: String,
    },
    /// The journal could not be read, or appended to before this run sent a write.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Appending to the journal failed after this run sent a write: the migration may be
    /// part-way, and the journal does not know how far.
    #[error(
        "{source}; the run stopped after {changed} change(s): once the journal can be written, run the same command again to resume (an interrupted step is resolved by reading its target)"
    )]
    JournalAfterWrite {
        changed: usize,
        #[source]
        source: JournalError,
    },
}

/// What a run that stopped short of some steps wrote: nothing, or `changed` of `what`.
fn this_run_wrote(changed: usize, what: &str) -> String {
    match changed {
        0 => "this run wrote nothing".to_string(),
        n => format!("this run made {n} {what}, journaled"),
    }
}

/// The message of [`ApplyError::AwaitingOwners`].
fn awaiting_owners(phase: Phase, direction: Direction, changed: usize, pending: &str) -> String {
    let (stage, verb, verb_capitalized) = match direction {
        Direction::Apply => (phase.to_string(), "make", "Make"),
        Direction::Rollback => (format!("the rollback of {phase}"), "revert", "Revert"),
    };
    let written = this_run_wrote(changed, "other change(s)");
    format!(
        "{stage} is not complete: its steps below are their owners' to {verb}, and this run does not write them; {written}. What each owner must {verb}:\n{pending}{verb_capitalized} each change in its owner's source (`irsa-migrate diff --plan PLAN --phase {phase}` shows them as diffs), let the owner sync, then run the same command again: it reads them and goes on (`--wait-for-owners 30m` waits for them instead). `--patch-owned` writes them live, and the owner will revert them at its next sync."
    )
}

impl ApplyError {
    /// A backend failure before any step ran.
    pub fn from_backend(source: BackendError) -> ApplyError {
        ApplyError::NothingWritten {
            step: "opening the backend".into(),
            source,
        }
    }
}
