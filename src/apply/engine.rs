//! The main loop: one run over the selected steps, phase by phase and wave by wave, after the
//! preflight and the confirmation.

use super::journal::{Entry, Journal, Outcome, StepState, now};
use super::preflight::{Preview, preflight};
use super::runner::Runner;
use super::select::{Selected, select};
use super::wave::{Membership, Wave, ready_to_restart};
use super::{ApplyError, Direction, Mode, RunOptions, Summary};
use crate::backend::Backend;
use crate::plan::{Plan, Step};
use crate::progress::Progress;

/// Runs the plan's selected steps. `confirm` sees the preview before anything is written (it is
/// not asked in a dry run); `out` receives one line per step; `progress` is told the steps done
/// and the phase and wave they are in.
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
    let pending: Vec<&Step> = steps.iter().copied().filter(|s| is_pending(s)).collect();
    let (readings, preview) = preflight(backend, &pending, options.direction)?;
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
    };
    let mut summary = Summary::default();
    let mut current_phase = None;
    let waves = Membership::of(&steps, options.direction, options.wave_size);
    let mut wave = Wave::default();
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
        let mut batch = vec![step];
        while batch.len() < bound
            && let Some(&next) = steps.get(index + batch.len())
            && waves.together(index, index + batch.len())
            && next.kind == step.kind
            && is_pending(next)
            && !batch.iter().any(|s| s.target == next.target)
        {
            batch.push(next);
        }
        index += batch.len();
        progress.advance(batch.len() as u64);
        let results = run.batch(&batch, options.direction)?;
        for (step, (outcome, elapsed_ms)) in batch.into_iter().zip(results) {
            if in_waves {
                wave.steps.push((step, outcome));
            }
            let label = label(outcome, options.direction, options.mode);
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
    progress.finish();
    Ok(summary)
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
    }
}
