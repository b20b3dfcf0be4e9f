//! Rollout waves: the workloads of a phase that restarts pods, checked ready before their first
//! restart and watched until they roll out with their roles; a failed wave is rolled back.

use super::journal::Outcome;
use super::runner::Runner;
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
