//! The main loop: one run over the selected steps, phase by phase and wave by wave, after the
//! preflight and the confirmation.

use super::journal::{Entry, Journal, Outcome, StepState, now};
use super::owners::{Held, done_label};
use super::preflight::{Preview, preflight};
use super::runner::{Maker, Runner};
use super::select::{Selected, select};
use super::wave::{Membership, Wave, ready_to_restart};
use super::{ApplyError, Direction, Mode, Owners, RunOptions, Summary};
use super::{drift, evidence};
use crate::backend::Backend;
use crate::plan::{Plan, Step};
use crate::progress::Progress;

/// Runs the plan's selected steps. `confirm` sees the preview before anything is written (it is
/// not asked in a dry run); `out` receives one line per step; `progress` is told the steps done
/// and the phase and wave they are in. Steps whose owners make them ([`Owners`]) are read, not
/// written; a phase is complete, and the next one starts, only once its owners have made them.
#[expect(
    clippy::too_many_arguments,
    reason = "three are the caller's own (confirm, out, progress), each met by another implementer"
)]
pub fn run(
    plan: &Plan,
    plan_checksum: &str,
    journal: &mut Journal,
    backend: &mut dyn Backend,
    options: &RunOptions,
    confirm: &mut dyn FnMut(&Preview) -> bool,
    out: &mut dyn FnMut(String),
    progress: &dyn Progress,
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

    let is_pending = |step: &Step| {
        options.direction == Direction::Rollback || state(&step.id) != StepState::Applied
    };
    // Decommission only what is still migrated: a role whose workloads went back keeps its
    // legacy path, and so do the grants every legacy role needs.
    let reverted = if options.direction == Direction::Apply {
        let pending: Vec<&Step> = steps.iter().copied().filter(|s| is_pending(s)).collect();
        drift::reverted(plan, &pending, &state, backend)?
    } else {
        Vec::new()
    };
    steps.retain(|s| !is_pending(s) || !drift::held_by(s, &reverted));
    // What is still to decommission waits for CloudTrail to show it unused.
    let unproven = if options.direction == Direction::Apply {
        let pending: Vec<&Step> = steps.iter().copied().filter(|s| is_pending(s)).collect();
        evidence::held(plan, &pending, options.evidence, backend)?
    } else {
        Vec::new()
    };
    steps.retain(|s| !unproven.iter().any(|h| h.step.id == s.id));
    let pending: Vec<&Step> = steps.iter().copied().filter(|s| is_pending(s)).collect();
    let (readings, preview) = preflight(backend, &pending, options.direction, options.owners)?;
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
    if options.mode == Mode::Execute && options.direction == Direction::Apply {
        evidence::record(journal, &pending, options.evidence, &unproven)?;
    }

    progress.set_total(steps.len() as u64);
    // Lines go out with the display lifted, so the two never interleave on a terminal.
    let mut out = |line: String| {
        let mut line = Some(line);
        progress.suspend(&mut || {
            if let Some(line) = line.take() {
                out(line)
            }
        });
    };
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
        would_change: Default::default(),
    };
    let mut summary = Summary::default();
    let mut current_phase = None;
    let waves = Membership::of(&steps, options.direction, options.wave_size);
    let mut wave = Wave::default();
    let mut held = Held::default();
    let verifies = options.direction == Direction::Apply && options.mode == Mode::Execute;
    let mut index = 0;
    while let Some(&step) = steps.get(index) {
        let in_waves = waves.in_wave(index);
        let new_phase = current_phase != Some(step.phase);
        let starts_wave = waves.starts_wave(index);
        if verifies && (starts_wave || !in_waves) {
            wave.finish(plan, &mut run, &options.rollout, &mut out)?;
        }
        if new_phase {
            if let Some(phase) = current_phase {
                let made = settle_owners(
                    plan, &mut run, &mut held, phase, &mut wave, options, &mut out,
                )?;
                summary.settled(made);
            }
            current_phase = Some(step.phase);
            wave.number = 0;
            out(format!("== phase {}", step.phase));
            progress.set_stage(step.phase.as_str());
        }
        if starts_wave {
            wave.number += 1;
            wave.steps.clear();
            out(format!("-- wave {}", wave.number));
            progress.set_stage(&format!("{} wave {}", step.phase, wave.number));
            if verifies {
                // Every workload of the wave is checked before its first write, so a wave that
                // cannot roll out is never half-restarted.
                let upcoming = steps[waves.members(index)].iter().filter(|s| is_pending(s));
                for next in upcoming {
                    ready_to_restart(plan, &mut run, next, &options.rollout)?;
                }
            }
        }
        if !is_pending(step) {
            progress.advance(1);
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
        let maker = Maker::of(step, options.owners);
        let mut batch = vec![step];
        while batch.len() < bound
            && let Some(&next) = steps.get(index + batch.len())
            && waves.together(index, index + batch.len())
            && next.kind == step.kind
            && Maker::of(next, options.owners) == maker
            && is_pending(next)
            && !batch.iter().any(|s| s.target == next.target)
        {
            batch.push(next);
        }
        index += batch.len();
        progress.advance(batch.len() as u64);
        let results = run.batch(&batch, options.direction, maker)?;
        for (step, (outcome, elapsed_ms)) in batch.into_iter().zip(results) {
            let Some(outcome) = outcome else {
                summary.awaiting_owner += 1;
                held.push(step);
                let owner = step.owner.as_ref().map(ToString::to_string);
                out(format!(
                    "{:<16} {}  ({})",
                    "awaits owner",
                    step.id,
                    owner.unwrap_or_default()
                ));
                continue;
            };
            if in_waves {
                wave.steps.push((step, outcome));
            }
            let label = label(outcome, options.direction, options.mode);
            match outcome {
                Outcome::Changed => summary.changed += 1,
                Outcome::AlreadyDone => summary.already_done += 1,
                Outcome::ByOwner => summary.by_owner += 1,
            }
            out(format!("{label:<16} {}  ({elapsed_ms} ms)", step.id));
        }
    }
    if verifies {
        wave.finish(plan, &mut run, &options.rollout, &mut out)?;
    }
    if let Some(phase) = current_phase {
        let made = settle_owners(
            plan, &mut run, &mut held, phase, &mut wave, options, &mut out,
        )?;
        summary.settled(made);
    }
    progress.finish();
    if !reverted.is_empty() {
        let mut roles: Vec<&str> = reverted.iter().map(|r| r.role_arn).collect();
        roles.dedup();
        return Err(ApplyError::Reverted {
            roles: roles.len(),
            changed: run.changed,
            reverted: drift::describe(&reverted),
        });
    }
    if !unproven.is_empty() {
        return Err(ApplyError::Unproven {
            held: unproven.len(),
            changed: run.changed,
            steps: evidence::describe(&unproven),
        });
    }
    Ok(summary)
}

/// At the end of `phase`: waits for the owners of its held steps ([`Owners::Await`]); those they
/// made meanwhile are verified as a wave of their own when the phase restarts pods. Returns how
/// many they made. A dry run only counts them.
fn settle_owners<'p>(
    plan: &Plan,
    run: &mut Runner<'_>,
    held: &mut Held<'p>,
    phase: crate::plan::Phase,
    wave: &mut Wave<'p>,
    options: &RunOptions,
    out: &mut dyn FnMut(String),
) -> Result<usize, ApplyError> {
    let Owners::Await(wait) = options.owners else {
        return Ok(0);
    };
    if options.mode == Mode::DryRun {
        *held = Held::default();
        return Ok(0);
    }
    let made = held.settle(run, phase, options.direction, wait, out)?;
    let count = made.len();
    if options.direction == Direction::Apply && phase.restarts_pods() && !made.is_empty() {
        wave.number += 1;
        out(format!("-- wave {} (made by owners)", wave.number));
        wave.steps = made.into_iter().map(|s| (s, Outcome::ByOwner)).collect();
        wave.finish(plan, run, &options.rollout, out)?;
    }
    Ok(count)
}

/// What a step's line says it did (or, in a dry run, would do).
fn label(outcome: Outcome, direction: Direction, mode: Mode) -> &'static str {
    let dry_run = mode == Mode::DryRun;
    match (outcome, direction) {
        (Outcome::AlreadyDone, Direction::Apply) => "already applied",
        (Outcome::AlreadyDone, Direction::Rollback) => "already undone",
        (Outcome::Changed, Direction::Apply) if dry_run => "would apply",
        (Outcome::Changed, Direction::Apply) => "applied",
        (Outcome::Changed, Direction::Rollback) if dry_run => "would roll back",
        (Outcome::Changed, Direction::Rollback) => "rolled back",
        (Outcome::ByOwner, direction) => done_label(direction),
    }
}
