//! The apply engine: one loop for dry run, rehearsal and live apply, forwards (apply) and
//! backwards (rollback), journaled so a run killed at any point resumes or rolls back exactly.
//!
//! Before each step the target is read: equal to the step's `after`, the step is recorded as done
//! and nothing is written; equal to `before`, it is written; anything else stops the run with a
//! diff. Before the first write of a run every target the run starts from is read and checked
//! that way (the preflight), so a changed target stops the run before anything is written. That
//! reading is the step's read when its write is conditional (Kubernetes) or the reading is less
//! than [`READING_FRESH_FOR`] old (IAM): one read and one write per target.

pub mod fault;
pub mod journal;
pub mod lock;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::Value;

use crate::backend::{Backend, BackendError, Rollout};
use crate::inventory::WorkloadKind;
use crate::plan::{Phase, Plan, Step, Target, fragment};
use journal::{Action, Entry, Journal, JournalError, Outcome, StepState, now};

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

/// Which steps a run covers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Empty: every phase.
    pub phases: Vec<Phase>,
    /// Empty: every namespace.
    pub namespaces: Vec<String>,
    /// With `namespaces`: also the selected phases' cluster-wide steps (those of no namespace,
    /// such as the OIDC provider), which a namespace filter leaves out otherwise.
    pub include_cluster_wide: bool,
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
}

/// What a run is about to do, shown before asking for confirmation.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub to_change: Vec<String>,
    pub already_done: usize,
    pub destination: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub changed: usize,
    pub already_done: usize,
    pub skipped: usize,
}

/// Why a run stopped or refused to start.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "the plan file changed since it was first applied (journal records {recorded}, the file is {found}); a plan is never edited after apply starts: roll back with the original plan, or start a new migration"
    )]
    PlanModified { recorded: String, found: String },
    #[error(
        "the journal records step {0}, which is not in the plan; the plan and journal do not belong together"
    )]
    UnknownStep(String),
    #[error("{0}")]
    PhaseOrder(String),
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
    /// Another run holds the migration directory's lock ([`lock`]).
    #[error(
        "{path} is held by {holder}: another apply, rollback or plan of this migration is running, and nothing was done. Wait for it to finish, then run again (a holder that was killed has released it already)"
    )]
    Locked {
        path: std::path::PathBuf,
        holder: String,
    },
    /// The lock file could not be created or locked (a read-only directory, say).
    #[error("cannot lock the migration directory with {path}: {source}")]
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
    #[error("{destination} cannot change {target} (step {step})")]
    Unsupported {
        destination: String,
        step: String,
        target: String,
    },
    #[error("not confirmed; nothing was changed (pass --yes to run without a terminal)")]
    NotConfirmed,
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
    #[error("{phase} wave {wave} did not complete:\n  {problems}\n{rolled_back}")]
    RolloutFailed {
        phase: Phase,
        wave: usize,
        problems: String,
        rolled_back: String,
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

impl ApplyError {
    /// A backend failure before any step ran.
    pub fn from_backend(source: BackendError) -> ApplyError {
        ApplyError::NothingWritten {
            step: "opening the backend".into(),
            source,
        }
    }
}

/// Refuses to re-plan the migration whose plan is `plan` and live journal `journal` once any
/// live run has been journaled.
pub fn refuse_replan_if_applied(
    journal: &std::path::Path,
    plan: &std::path::Path,
) -> Result<(), ApplyError> {
    let journal = Journal::open(journal)?;
    if journal.entries().is_empty() {
        return Ok(());
    }
    let applied = journal
        .states()
        .values()
        .filter(|s| s.may_be_applied())
        .count();
    let advice = if applied > 0 {
        format!(
            "Roll back first (`irsa-migrate rollback --plan {} --all`), then plan under a new --name; or plan under a new --name now and migrate from where this one stands",
            plan.display()
        )
    } else {
        "Everything it applied is rolled back: plan under a new --name (this directory stays as the record of what was done)".to_string()
    };
    Err(ApplyError::JournalExists {
        journal: journal.path().to_path_buf(),
        applied,
        advice,
    })
}

/// The SHA-256 of a plan file's bytes, as journals started before [`Plan::digest`] record it.
pub fn checksum(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The namespaces a step belongs to; `None` for cluster-wide steps. A prepare step on a role
/// belongs to the namespaces bound to the role; a cluster-scoped RBAC binding copied for a
/// service account, to the namespaces of its service-account subjects.
fn step_namespaces(plan: &Plan, step: &Step) -> Option<BTreeSet<String>> {
    match &step.target {
        Target::Role { arn, .. } if step.phase == Phase::Prepare => Some(
            plan.bindings
                .iter()
                .filter(|b| &b.role_arn == arn)
                .map(|b| b.namespace.clone())
                .collect(),
        ),
        Target::RbacBinding {
            namespace: None, ..
        } => {
            let subjects: BTreeSet<String> = [step.after.value(), step.before.value()]
                .iter()
                .filter_map(|side| side["subjects"].as_array().cloned())
                .flatten()
                .filter(|s| s["kind"] == "ServiceAccount")
                .filter_map(|s| s["namespace"].as_str().map(str::to_string))
                .collect();
            (!subjects.is_empty()).then_some(subjects)
        }
        target => target
            .namespace()
            .map(|ns| BTreeSet::from([ns.to_string()])),
    }
}

/// Whether a run limited to `selection`'s namespaces covers `step`.
fn in_scope(plan: &Plan, step: &Step, selection: &Selection) -> bool {
    selection.namespaces.is_empty()
        || match step_namespaces(plan, step) {
            Some(own) => own.iter().any(|ns| selection.namespaces.contains(ns)),
            None => selection.include_cluster_wide,
        }
}

/// Every `--namespace` given must be one some step of the plan is in.
fn check_namespaces(plan: &Plan, namespaces: &[String]) -> Result<(), ApplyError> {
    let known: BTreeSet<String> = plan
        .steps
        .iter()
        .filter_map(|s| step_namespaces(plan, s))
        .flatten()
        .collect();
    match namespaces.iter().find(|ns| !known.contains(*ns)) {
        None => Ok(()),
        Some(unknown) => Err(ApplyError::UnknownNamespace {
            unknown: unknown.clone(),
            plan: plan.name.clone(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.into_iter().collect::<Vec<_>>().join(", ")
            },
        }),
    }
}

/// Whether the target is in the state `side` describes.
fn matches(step: &Step, observed: &Value, side: &Value) -> bool {
    if step.kind.is_document() {
        observed == side
    } else {
        fragment::same_state(observed, side)
    }
}

fn stale(step: &Step, expected: &Value, observed: &Value, changed: usize) -> ApplyError {
    let shown = |side: &Value| crate::render::diff::side_text(step, side);
    let diff = similar::TextDiff::from_lines(&shown(expected), &shown(observed))
        .unified_diff()
        .context_radius(3)
        .to_string();
    ApplyError::Stale {
        step: step.id.clone(),
        target: step.target.to_string(),
        diff,
        written: if changed == 0 {
            ", nothing was written".into()
        } else {
            format!(" after {changed} change(s) in this run")
        },
    }
}

/// The steps a run covers, in plan order, with the journal's states and how many cluster-wide
/// steps a namespace filter left out.
struct Selected<'p> {
    steps: Vec<&'p Step>,
    states: BTreeMap<String, StepState>,
    left_out: usize,
}

/// Every check of a run that needs neither the backend nor the network: the plan is the
/// journal's, the filters name what the plan has, the phase order holds. The CLI makes them
/// before it connects anywhere; [`run`] makes them again. Returns the steps the run covers.
pub fn check<'p>(
    plan: &'p Plan,
    plan_checksum: &str,
    journal: &Journal,
    options: &RunOptions,
) -> Result<Vec<&'p Step>, ApplyError> {
    select(plan, plan_checksum, journal, options).map(|selected| selected.steps)
}

fn select<'p>(
    plan: &'p Plan,
    plan_checksum: &str,
    journal: &Journal,
    options: &RunOptions,
) -> Result<Selected<'p>, ApplyError> {
    if let Some(recorded) = journal.plan_checksum()
        && recorded != plan_checksum
    {
        return Err(ApplyError::PlanModified {
            recorded: recorded.to_string(),
            found: plan_checksum.to_string(),
        });
    }
    let ids: BTreeSet<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    let states = journal.states();
    if let Some(unknown) = states.keys().find(|id| !ids.contains(id.as_str())) {
        return Err(ApplyError::UnknownStep(unknown.clone()));
    }
    let selection = &options.selection;
    let phases: Vec<Phase> = if selection.phases.is_empty() {
        Phase::ALL.to_vec()
    } else {
        selection.phases.clone()
    };
    check_namespaces(plan, &selection.namespaces)?;
    if !selection.namespaces.is_empty() && phases.contains(&Phase::Decommission) {
        return Err(ApplyError::NamespaceWithDecommission);
    }
    let state = |id: &str| states.get(id).copied().unwrap_or(StepState::Pending);
    let steps: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| phases.contains(&s.phase) && in_scope(plan, s, selection))
        .collect();
    let left_out = plan
        .steps
        .iter()
        .filter(|s| phases.contains(&s.phase) && !selection.namespaces.is_empty())
        .filter(|s| step_namespaces(plan, s).is_none() && !selection.include_cluster_wide)
        .filter(|s| options.direction == Direction::Apply || state(&s.id).may_be_applied())
        .count();
    check_order(plan, &steps, &phases, options.direction, &state, selection)?;
    Ok(Selected {
        steps,
        states,
        left_out,
    })
}

/// Runs the plan's selected steps. `confirm` sees the preview before anything is written (it is
/// not asked in a dry run); `out` receives one line per step.
pub fn run(
    plan: &Plan,
    plan_checksum: &str,
    journal: &mut Journal,
    backend: &mut dyn Backend,
    options: &RunOptions,
    confirm: &mut dyn FnMut(&Preview) -> bool,
    out: &mut dyn FnMut(String),
) -> Result<Summary, ApplyError> {
    let Selected {
        mut steps,
        states,
        left_out,
    } = select(plan, plan_checksum, journal, options)?;
    let state = |id: &str| states.get(id).copied().unwrap_or(StepState::Pending);
    if let Some(step) = steps.iter().find(|s| !backend.supports(&s.target)) {
        return Err(ApplyError::Unsupported {
            destination: backend.describe(),
            step: step.id.clone(),
            target: step.target.to_string(),
        });
    }
    if options.direction == Direction::Rollback {
        steps.retain(|s| state(&s.id).may_be_applied());
        steps.reverse();
    }

    // Preflight: the first step of this run on each target must find it in a known state.
    let mut preview = Preview {
        destination: backend.describe(),
        ..Preview::default()
    };
    let is_pending = |step: &Step| {
        options.direction == Direction::Rollback || state(&step.id) != StepState::Applied
    };
    let mut seen_targets = BTreeSet::new();
    let firsts: Vec<&Step> = steps
        .iter()
        .copied()
        .filter(|s| is_pending(s) && seen_targets.insert(&s.target))
        .collect();
    let readings = preflight(backend, &firsts, options.direction)?;
    for step in steps.iter().filter(|s| is_pending(s)) {
        if readings.get(&step.id).is_some_and(|r| r.done) {
            preview.already_done += 1;
        } else {
            preview.to_change.push(step.id.clone());
        }
    }
    if options.mode == Mode::Execute && !preview.to_change.is_empty() && !confirm(&preview) {
        return Err(ApplyError::NotConfirmed);
    }
    if options.mode == Mode::Execute && journal.plan_checksum().is_none() && !steps.is_empty() {
        journal.append(Entry::Plan {
            plan_checksum: plan_checksum.to_string(),
            fingerprint: plan.fingerprint.clone(),
            time: now(),
        })?;
    }

    let progress = indicatif::ProgressBar::with_draw_target(
        Some(steps.len() as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>20} {bar:30} {pos}/{len} steps")
    {
        progress.set_style(style);
    }
    // Lines go out with the bar lifted, so the two never interleave on a terminal.
    let mut out = |line: String| progress.suspend(|| out(line));
    if left_out > 0 {
        out(format!(
            "{left_out} cluster-wide step(s) of these phases left out by --namespace (they belong to no namespace); --include-cluster-wide runs them"
        ));
    }
    let mut run = Runner {
        journal,
        backend,
        mode: options.mode,
        changed: 0,
        sent: false,
        readings,
        reading_fresh_for: options.reading_fresh_for,
    };
    let mut summary = Summary::default();
    let mut current_phase = None;
    let mut wave = Wave::default();
    let verifies = options.direction == Direction::Apply && options.mode == Mode::Execute;
    let mut index = 0;
    while let Some(&step) = steps.get(index) {
        let in_waves = step.phase.restarts_pods() && options.direction == Direction::Apply;
        let new_phase = current_phase != Some(step.phase);
        let starts_wave = in_waves && (new_phase || wave.steps.len() >= options.wave_size.max(1));
        if verifies && (starts_wave || !in_waves) {
            wave.finish(plan, &mut run, &options.rollout, &mut out)?;
        }
        if new_phase {
            current_phase = Some(step.phase);
            wave.number = 0;
            out(format!("== phase {}", step.phase));
            progress.set_message(step.phase.to_string());
        }
        if starts_wave {
            wave.number += 1;
            wave.steps.clear();
            out(format!("-- wave {}", wave.number));
            progress.set_message(format!("{} wave {}", step.phase, wave.number));
            if verifies {
                // Every workload of the wave is checked before its first write, so a wave that
                // cannot roll out is never half-restarted.
                let upcoming = steps[index..]
                    .iter()
                    .take_while(|s| s.phase == step.phase)
                    .take(options.wave_size.max(1))
                    .filter(|s| is_pending(s));
                for next in upcoming {
                    ready_to_restart(plan, &mut run, next, &options.rollout)?;
                }
            }
        }
        if !is_pending(step) {
            progress.inc(1);
            index += 1;
            summary.skipped += 1;
            out(format!("{:<16} {}", "skipped", step.id));
            if in_waves {
                // Applied by an earlier run that may have stopped before checking the wave:
                // checked again, never rolled back by this run.
                wave.steps.push((step, Outcome::AlreadyDone));
            }
            continue;
        }
        // IAM steps of one phase on distinct targets run together, up to the backend's bound;
        // everything else runs one at a time.
        let bound = if step.kind.is_document() {
            run.backend.concurrency()
        } else {
            1
        };
        let mut batch = vec![step];
        while batch.len() < bound
            && let Some(&next) = steps.get(index + batch.len())
            && next.kind == step.kind
            && is_pending(next)
            && !batch.iter().any(|s| s.target == next.target)
        {
            batch.push(next);
        }
        index += batch.len();
        progress.inc(batch.len() as u64);
        let results = run.batch(&batch, options.direction)?;
        for (step, (outcome, elapsed_ms)) in batch.into_iter().zip(results) {
            if in_waves {
                wave.steps.push((step, outcome));
            }
            let verb = |done: &str, would: &str| {
                if options.mode == Mode::DryRun {
                    would.to_string()
                } else {
                    done.to_string()
                }
            };
            let label = match (outcome, options.direction) {
                (Outcome::AlreadyDone, Direction::Apply) => {
                    verb("already applied", "already applied")
                }
                (Outcome::AlreadyDone, Direction::Rollback) => {
                    verb("already undone", "already undone")
                }
                (Outcome::Changed, Direction::Apply) => verb("applied", "would apply"),
                (Outcome::Changed, Direction::Rollback) => verb("rolled back", "would roll back"),
            };
            match outcome {
                Outcome::Changed => summary.changed += 1,
                Outcome::AlreadyDone => summary.already_done += 1,
            }
            out(format!("{label:<16} {}  ({elapsed_ms} ms)", step.id));
        }
    }
    if verifies {
        wave.finish(plan, &mut run, &options.rollout, &mut out)?;
    }
    progress.finish_and_clear();
    Ok(summary)
}

/// Reads the target of each of `firsts` (the first step of the run on each target), which must
/// be in the step's starting or finished state; a reading stands in for the step's read before
/// its write. Read in chunks, each stamped with the time it started, so no reading looks younger
/// than it is; a chunk a few batches long keeps the backend's concurrent reads busy.
fn preflight(
    backend: &mut dyn Backend,
    firsts: &[&Step],
    direction: Direction,
) -> Result<BTreeMap<String, Reading>, ApplyError> {
    let mut readings = BTreeMap::new();
    for chunk in firsts.chunks(backend.concurrency().max(1) * 4) {
        let taken = Instant::now();
        for (step, observed) in chunk.iter().zip(backend.read_many(chunk)) {
            let observed = observed.map_err(|source| ApplyError::NothingWritten {
                step: format!("step {} (the preflight's read)", step.id),
                source,
            })?;
            let (from, to) = sides(step, direction);
            let done = matches(step, &observed, &to);
            if !done && !matches(step, &observed, &from) {
                return Err(stale(step, &from, &observed, 0));
            }
            readings.insert(
                step.id.clone(),
                Reading {
                    observed: crate::json::CompactJson::new(&observed),
                    taken,
                    done,
                },
            );
        }
    }
    Ok(readings)
}

/// How the waves of phases that restart pods are checked on a live cluster.
#[derive(Debug, Clone)]
pub struct RolloutCheck {
    /// How long a wave may take to roll out before it counts as failed.
    pub timeout: std::time::Duration,
    /// Roll a failed wave back before stopping.
    pub auto_rollback: bool,
}

impl Default for RolloutCheck {
    fn default() -> RolloutCheck {
        RolloutCheck {
            timeout: std::time::Duration::from_secs(300),
            auto_rollback: true,
        }
    }
}

/// How long a preflight reading of a target whose writes are not conditional (IAM) may stand in
/// for the read right before its write, by default. Older readings, for instance taken before a
/// confirmation prompt that waited, are taken again: a change someone makes to such a target
/// after it was read can be overwritten only within this window.
pub const READING_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// A target as the preflight found it, as compact text until used: a whole plan's IAM documents
/// held as trees would cost several times their size.
struct Reading {
    observed: crate::json::CompactJson,
    taken: Instant,
    /// The target was already in the state the step produces.
    done: bool,
}

/// Steps in batches: read, compare, write, journal.
struct Runner<'a> {
    journal: &'a mut Journal,
    backend: &'a mut dyn Backend,
    mode: Mode,
    /// Writes made in this run, for error messages.
    changed: usize,
    /// Whether this run has sent a write (made or failed): from then on a failure may leave the
    /// migration part-way.
    sent: bool,
    /// Step id → the preflight's reading of its target, until the step uses it.
    readings: BTreeMap<String, Reading>,
    reading_fresh_for: std::time::Duration,
}

impl Runner<'_> {
    /// A backend failure of `step`, as far as this run has got.
    fn failed(&self, step: &str, source: BackendError) -> ApplyError {
        if self.sent {
            ApplyError::Backend {
                step: step.to_string(),
                changed: self.changed,
                source,
            }
        } else {
            ApplyError::NothingWritten {
                step: format!("step {step}"),
                source,
            }
        }
    }

    /// Appends to the journal; a failure after a write is reported as such.
    fn record(&mut self, entry: Entry) -> Result<(), ApplyError> {
        let (sent, changed) = (self.sent, self.changed);
        self.journal.append(entry).map_err(|source| {
            if sent {
                ApplyError::JournalAfterWrite { changed, source }
            } else {
                ApplyError::Journal(source)
            }
        })
    }

    /// Moves the steps' targets (distinct ones) in `direction`, journaled: all read, compared,
    /// then written together. Each step's outcome and the batch's time in milliseconds.
    fn batch(
        &mut self,
        steps: &[&Step],
        direction: Direction,
    ) -> Result<Vec<(Outcome, u64)>, ApplyError> {
        let started = Instant::now();
        let action = match direction {
            Direction::Apply => Action::Apply,
            Direction::Rollback => Action::Rollback,
        };
        let execute = self.mode == Mode::Execute;
        let mut outcomes = Vec::with_capacity(steps.len());
        let mut writes: Vec<(&Step, Value, Value)> = Vec::new();
        for (step, observed) in steps.iter().zip(self.observe(steps)) {
            let observed = observed.map_err(|source| self.failed(&step.id, source))?;
            let (from, to) = sides(step, direction);
            if matches(step, &observed, &to) {
                outcomes.push(Outcome::AlreadyDone);
            } else if matches(step, &observed, &from) {
                outcomes.push(Outcome::Changed);
                writes.push((*step, from, to));
            } else {
                if execute {
                    self.record(Entry::Start {
                        step: step.id.clone(),
                        action,
                        time: now(),
                    })?;
                    self.record(Entry::Failed {
                        step: step.id.clone(),
                        action,
                        reason: "stale state".into(),
                        time: now(),
                    })?;
                }
                return Err(stale(step, &from, &observed, self.changed));
            }
        }
        if execute {
            for step in steps {
                self.record(Entry::Start {
                    step: step.id.clone(),
                    action,
                    time: now(),
                })?;
            }
            let writes: Vec<(&Step, &Value, &Value)> = writes
                .iter()
                .map(|(step, from, to)| (*step, from, to))
                .collect();
            let results = self.backend.write_many(&writes);
            // A write the peer refused, or refused as concurrent, was not made; any other
            // outcome (made, or no answer) may have changed the target.
            self.sent |= results
                .iter()
                .any(|r| !matches!(r, Err(e) if e.kind().is_refusal()));
            let mut failures = BTreeMap::new();
            for ((step, from, _), result) in writes.iter().zip(results) {
                if let Err(source) = result {
                    failures.insert(step.id.clone(), (*from, source));
                }
            }
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let mut first_error = None;
            for (step, outcome) in steps.iter().zip(&outcomes) {
                match failures.remove(&step.id) {
                    Some((from, source)) => {
                        let (reason, error) = match source {
                            BackendError::Concurrent { observed, .. } => (
                                "changed concurrently".to_string(),
                                stale(step, from, &observed, self.changed),
                            ),
                            source => (source.to_string(), self.failed(&step.id, source)),
                        };
                        self.record(Entry::Failed {
                            step: step.id.clone(),
                            action,
                            reason,
                            time: now(),
                        })?;
                        first_error.get_or_insert(error);
                    }
                    None => {
                        self.record(Entry::Done {
                            step: step.id.clone(),
                            action,
                            outcome: *outcome,
                            elapsed_ms,
                            time: now(),
                        })?;
                        if *outcome == Outcome::Changed {
                            self.changed += 1;
                        }
                    }
                }
            }
            if let Some(error) = first_error {
                return Err(error);
            }
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(outcomes.into_iter().map(|o| (o, elapsed_ms)).collect())
    }

    /// Each step's target as it is now, in the order of `steps`: the preflight's reading where it
    /// may stand in (the target's writes are conditional, or the reading is recent), else read
    /// again. A reading serves once: a later step on the target reads what the earlier wrote.
    fn observe(&mut self, steps: &[&Step]) -> Vec<Result<Value, BackendError>> {
        let mut observed: Vec<Option<Result<Value, BackendError>>> = steps
            .iter()
            .map(|step| {
                let reading = self.readings.remove(&step.id)?;
                let usable = self.backend.conditional_writes(&step.target)
                    || reading.taken.elapsed() < self.reading_fresh_for;
                usable.then(|| Ok(reading.observed.value()))
            })
            .collect();
        let unread: Vec<usize> = (0..steps.len())
            .filter(|&i| observed[i].is_none())
            .collect();
        let to_read: Vec<&Step> = unread.iter().map(|&i| steps[i]).collect();
        for (i, result) in unread.into_iter().zip(self.backend.read_many(&to_read)) {
            observed[i] = Some(result);
        }
        observed.into_iter().flatten().collect()
    }
}

/// The steps of the current wave (of a phase that restarts pods) and what each did.
#[derive(Default)]
struct Wave<'p> {
    number: usize,
    steps: Vec<(&'p Step, Outcome)>,
}

impl Wave<'_> {
    /// Waits for the wave's workloads to roll out with their roles; on failure rolls the wave's
    /// changes back (unless told not to) and stops the run with what was seen.
    fn finish(
        &mut self,
        plan: &Plan,
        run: &mut Runner<'_>,
        check: &RolloutCheck,
        out: &mut dyn FnMut(String),
    ) -> Result<(), ApplyError> {
        let steps = std::mem::take(&mut self.steps);
        let Some(phase) = steps.first().map(|(step, _)| step.phase) else {
            return Ok(());
        };
        let mut rollouts: Vec<Rollout> = Vec::new();
        for (step, _) in &steps {
            if let Some(rollout) = rollout_of(plan, step)
                && !rollouts.iter().any(|r| r.target == rollout.target)
            {
                rollouts.push(rollout);
            }
        }
        if rollouts.is_empty() || !run.backend.observes_rollouts() {
            return Ok(());
        }
        out(format!(
            "-- waiting for {phase} wave {} to roll out ({} workload(s), up to {} s)",
            self.number,
            rollouts.len(),
            check.timeout.as_secs()
        ));
        let problems = run
            .backend
            .verify_rollout(&rollouts, check.timeout, out)
            .map_err(|source| {
                run.failed(&format!("(verifying {phase} wave {})", self.number), source)
            })?;
        if problems.is_empty() {
            return Ok(());
        }
        let mut rolled_back = Vec::new();
        if check.auto_rollback {
            for (step, outcome) in steps.iter().rev() {
                if *outcome == Outcome::Changed {
                    run.batch(&[step], Direction::Rollback)?;
                    out(format!("{:<16} {}", "rolled back", step.id));
                    rolled_back.push(step.id.clone());
                }
            }
        }
        Err(ApplyError::RolloutFailed {
            phase,
            wave: self.number,
            problems: problems.join("\n  "),
            rolled_back: if check.auto_rollback {
                format!(
                    "the wave's {} change(s) were rolled back; fix the cause and apply again",
                    rolled_back.len()
                )
            } else {
                "the wave was left as it is (--no-auto-rollback); fix the cause and apply again, or roll back".into()
            },
        })
    }
}

/// How long a restart waits for the webhook to inject a workload's role (its service-account
/// cache follows the API server within seconds).
const INJECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Stops before restarting a workload whose new pods would not get the role: its rollout is
/// held, or the webhook would not inject it.
fn ready_to_restart(
    plan: &Plan,
    run: &mut Runner<'_>,
    step: &Step,
    check: &RolloutCheck,
) -> Result<(), ApplyError> {
    let Some(rollout) = rollout_of(plan, step) else {
        return Ok(());
    };
    match run
        .backend
        .ready_to_restart(&rollout, INJECTION_WAIT.min(check.timeout))
    {
        Ok(None) => Ok(()),
        Ok(Some(why)) => Err(run.failed(
            &step.id,
            crate::backend::BackendError::Target {
                target: step.target.to_string(),
                message: format!("{why}; no workload of this wave was restarted"),
            },
        )),
        Err(source) => Err(run.failed(&step.id, source)),
    }
}

/// The workload a rollout or cleanup step changes and the role its pods must (still) get, for
/// kinds whose rollout a controller reports (Deployment, StatefulSet, DaemonSet).
fn rollout_of(plan: &Plan, step: &Step) -> Option<Rollout> {
    let Target::Workload {
        namespace,
        kind,
        name,
    } = &step.target
    else {
        return None;
    };
    if !matches!(
        kind,
        WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
    ) {
        return None;
    }
    let binding = plan.bindings.iter().find(|b| {
        &b.namespace == namespace
            && b.workloads
                .iter()
                .any(|w| w.kind == *kind && &w.name == name)
    })?;
    Some(Rollout {
        target: step.target.clone(),
        service_account: binding.service_account.clone(),
        role_arn: binding.role_arn.clone(),
    })
}

/// The state a step moves from and to in this direction.
fn sides(step: &Step, direction: Direction) -> (Value, Value) {
    match direction {
        Direction::Apply => (step.before.value(), step.after.value()),
        Direction::Rollback => (step.after.value(), step.before.value()),
    }
}

/// Phases run in order: applying a phase needs the earlier ones applied (for the same
/// namespaces, and cluster-wide steps always); rolling one back needs the later ones rolled back.
fn check_order(
    plan: &Plan,
    selected: &[&Step],
    phases: &[Phase],
    direction: Direction,
    state: &dyn Fn(&str) -> StepState,
    selection: &Selection,
) -> Result<(), ApplyError> {
    let selected_ids: BTreeSet<&str> = selected.iter().map(|s| s.id.as_str()).collect();
    for phase in phases {
        let blocking: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|other| {
                !selected_ids.contains(other.id.as_str())
                    && (in_scope(plan, other, selection) || step_namespaces(plan, other).is_none())
            })
            .filter(|other| match direction {
                Direction::Apply => other.phase < *phase && state(&other.id) != StepState::Applied,
                Direction::Rollback => other.phase > *phase && state(&other.id).may_be_applied(),
            })
            .collect();
        if selected.iter().any(|s| s.phase == *phase)
            && let Some(first) = blocking.first()
        {
            let how = if selection.namespaces.is_empty() {
                String::new()
            } else if step_namespaces(plan, first).is_none() {
                " (a cluster-wide step: without --namespace, or with --include-cluster-wide)".into()
            } else {
                " (with the same --namespace)".into()
            };
            let message = match direction {
                Direction::Apply => format!(
                    "phase {phase} needs phase {} applied first: {} step(s) are not (e.g. {}); run `irsa-migrate apply --phase {}`{how}",
                    first.phase,
                    blocking.len(),
                    first.id,
                    first.phase
                ),
                Direction::Rollback => format!(
                    "phase {phase} can be rolled back only after phase {}: {} step(s) of later phases are applied (e.g. {}); run `irsa-migrate rollback --phase {}`{how} first",
                    first.phase,
                    blocking.len(),
                    first.id,
                    first.phase
                ),
            };
            return Err(ApplyError::PhaseOrder(message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
