//! Rollout waves: the workloads of a phase that restarts pods, checked ready before their first
//! restart and watched until they roll out with their roles; a failed wave is rolled back.

use super::journal::Outcome;
use super::runner::{Maker, Runner};
use super::{ApplyError, Direction};
use crate::backend::Rollout;
use crate::inventory::WorkloadKind;
use crate::plan::{Plan, Step, Target};

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

/// Which wave each step of a run is in, decided once for the run: applied, the steps of a phase
/// that restarts pods go in waves of up to `wave_size` consecutive steps, a phase's first step
/// starting one; other steps are in none. Waves are numbered through the run, not per phase.
pub(super) struct Membership(Vec<Option<usize>>);

impl Membership {
    /// The waves of `steps` (in the order the run takes them).
    pub(super) fn of(steps: &[&Step], direction: Direction, wave_size: usize) -> Membership {
        let mut waves = Vec::with_capacity(steps.len());
        let (mut wave, mut members) = (0, 0);
        let mut previous_phase = None;
        for step in steps {
            let in_waves = direction == Direction::Apply && step.phase.restarts_pods();
            if in_waves {
                if previous_phase != Some(step.phase) || members == wave_size.max(1) {
                    wave += 1;
                    members = 0;
                }
                members += 1;
            }
            previous_phase = Some(step.phase);
            waves.push(in_waves.then_some(wave));
        }
        Membership(waves)
    }

    /// Whether the step at `index` is in a wave.
    pub(super) fn in_wave(&self, index: usize) -> bool {
        self.0[index].is_some()
    }

    /// Whether the step at `index` is the first of its wave.
    pub(super) fn starts_wave(&self, index: usize) -> bool {
        self.in_wave(index) && (index == 0 || self.0[index - 1] != self.0[index])
    }

    /// Whether the steps at `a` and `b` are in the same wave, or both in none.
    pub(super) fn together(&self, a: usize, b: usize) -> bool {
        self.0[a] == self.0[b]
    }

    /// The positions from `index` to the end of its wave (or of the steps around it in none).
    pub(super) fn members(&self, index: usize) -> std::ops::Range<usize> {
        let end = (index..self.0.len())
            .find(|&i| !self.together(index, i))
            .unwrap_or(self.0.len());
        index..end
    }
}

/// The steps of the current wave (of a phase that restarts pods) and what each did.
#[derive(Default)]
pub(super) struct Wave<'p> {
    pub(super) number: usize,
    pub(super) steps: Vec<(&'p Step, Outcome)>,
}

impl Wave<'_> {
    /// Waits for the wave's workloads to roll out with their roles; on failure rolls the wave's
    /// changes back (unless told not to) and stops the run with what was seen.
    pub(super) fn finish(
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
        let owners_made = steps
            .iter()
            .filter(|(_, outcome)| *outcome == Outcome::ByOwner)
            .count();
        if check.auto_rollback {
            for (step, outcome) in steps.iter().rev() {
                if *outcome == Outcome::Changed {
                    run.batch(&[step], Direction::Rollback, Maker::Tool)?;
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
                    "the wave's {} change(s) were rolled back; fix the cause and apply again{}",
                    rolled_back.len(),
                    if owners_made == 0 {
                        String::new()
                    } else {
                        format!(
                            " ({owners_made} change(s) of the wave are their owners': revert them in the owners' sources, or fix forward)"
                        )
                    }
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
pub(super) fn ready_to_restart(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_waves_are_runs_of_wave_size_steps_within_one_phase_and_rollbacks_have_none() {
        let (plan, _dir) = crate::apply::tests::demo_plan();
        let steps: Vec<&Step> = plan.steps.iter().collect();
        let waves = Membership::of(&steps, Direction::Apply, 2);
        for (index, step) in steps.iter().enumerate() {
            assert_eq!(
                waves.in_wave(index),
                step.phase.restarts_pods(),
                "{}",
                step.id
            );
        }
        let starts: Vec<usize> = (0..steps.len()).filter(|&i| waves.starts_wave(i)).collect();
        for phase in [crate::plan::Phase::Rollout, crate::plan::Phase::Cleanup] {
            let in_phase = steps.iter().filter(|s| s.phase == phase).count();
            let phase_starts: Vec<usize> = starts
                .iter()
                .copied()
                .filter(|&i| steps[i].phase == phase)
                .collect();
            assert!(in_phase > 2, "the demo has more than one wave of {phase}");
            assert_eq!(phase_starts.len(), in_phase.div_ceil(2), "{phase}");
            let sizes: Vec<usize> = phase_starts
                .iter()
                .map(|&i| waves.members(i).len())
                .collect();
            assert_eq!(sizes.iter().sum::<usize>(), in_phase, "{phase}: {sizes:?}");
            assert!(
                sizes[..sizes.len() - 1].iter().all(|&n| n == 2),
                "{sizes:?}"
            );
        }
        let rollback = Membership::of(&steps, Direction::Rollback, 2);
        assert!((0..steps.len()).all(|i| !rollback.in_wave(i)));
    }
}
