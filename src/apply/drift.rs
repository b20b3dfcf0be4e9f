//! Drift before decommission: a role's legacy trust is removed only while every workload and
//! service account migrated to it still reads as the migration left it. An owner that synced
//! its old manifests back (the legacy annotation returned, the old service account, no role
//! annotation) would have no credentials at all once the legacy path is gone.

use serde_json::Value;

use super::ApplyError;
use super::compare::matches;
use super::journal::StepState;
use crate::backend::Backend;
use crate::plan::{Binding, Phase, Plan, Step, StepKind, Target};

/// A migrated target that went back, and the role whose decommission it holds.
pub(super) struct Reverted<'p> {
    pub(super) role_arn: &'p str,
    /// The step whose change is no longer there.
    pub(super) step: &'p Step,
    pub(super) observed: Value,
}

/// The steps whose change, gone, puts a workload back on the legacy path: its service account's
/// role annotation, its switch of service account, the removal of its legacy annotation.
fn keeps_the_migration(kind: StepKind) -> bool {
    matches!(
        kind,
        StepKind::CreateServiceAccount
            | StepKind::AnnotateServiceAccount
            | StepKind::SwitchServiceAccount
            | StepKind::RemoveLegacyAnnotation
    )
}

/// Whether `target` is the service account or one of the workloads of `binding`.
fn of_binding(binding: &Binding, target: &Target) -> bool {
    match target {
        Target::ServiceAccount { namespace, name } => {
            *namespace == binding.namespace && *name == binding.service_account
        }
        Target::Workload {
            namespace,
            kind,
            name,
        } => {
            *namespace == binding.namespace
                && binding
                    .workloads
                    .iter()
                    .any(|w| w.kind == *kind && w.name == *name)
        }
        _ => false,
    }
}

/// The role a decommission step removes the legacy path of; `None` for steps that serve every
/// role (the node and kiam-server roles' AssumeRole grants).
fn decommissioned_role(step: &Step) -> Option<&str> {
    match (&step.kind, &step.target) {
        (StepKind::RemoveLegacyTrust, Target::Role { arn, .. }) => Some(arn.as_str()),
        _ => None,
    }
}

/// Before decommission: reads again every applied step that keeps a workload of a role to be
/// decommissioned (in `pending`) on IRSA; returns those whose target no longer reads as the step
/// left it.
pub(super) fn reverted<'p>(
    plan: &'p Plan,
    pending: &[&'p Step],
    state: &dyn Fn(&str) -> StepState,
    backend: &mut dyn Backend,
) -> Result<Vec<Reverted<'p>>, ApplyError> {
    let roles: Vec<&str> = pending
        .iter()
        .filter(|s| s.phase == Phase::Decommission)
        .filter_map(|s| decommissioned_role(s))
        .collect();
    let mut kept: Vec<(&str, &Step)> = Vec::new();
    for binding in plan
        .bindings
        .iter()
        .filter(|b| roles.contains(&b.role_arn.as_str()))
    {
        for step in plan.steps.iter().filter(|s| {
            keeps_the_migration(s.kind)
                && state(&s.id) == StepState::Applied
                && of_binding(binding, &s.target)
        }) {
            kept.push((binding.role_arn.as_str(), step));
        }
    }
    let steps: Vec<&Step> = kept.iter().map(|(_, step)| *step).collect();
    let mut reverted = Vec::new();
    for ((role_arn, step), observed) in kept.iter().zip(backend.read_many(&steps)) {
        let observed = observed.map_err(|source| ApplyError::NothingWritten {
            step: format!("step {} (read again before decommission)", step.id),
            source,
        })?;
        if !matches(step, &observed, &step.after.value()) {
            reverted.push(Reverted {
                role_arn,
                step,
                observed,
            });
        }
    }
    // By role, for the message; steps of a role in plan order.
    reverted.sort_by_key(|r| r.role_arn);
    Ok(reverted)
}

/// Whether a decommission step must wait while `reverted` is not empty: the legacy trust of a
/// reverted role, and every grant that serves all roles.
pub(super) fn held_by(step: &Step, reverted: &[Reverted<'_>]) -> bool {
    step.phase == Phase::Decommission
        && !reverted.is_empty()
        && decommissioned_role(step).is_none_or(|role| reverted.iter().any(|r| r.role_arn == role))
}

/// What went back, by role, with the owner that must make the change again.
pub(super) fn describe(reverted: &[Reverted<'_>]) -> String {
    let mut text = String::new();
    let mut role = "";
    for r in reverted {
        if r.role_arn != role {
            role = r.role_arn;
            text.push_str(&format!("  {role}:\n"));
        }
        let owner = match &r.step.owner {
            Some(owner) => format!(
                "; its owner, {owner}, must make it again in {}",
                owner.where_to_change()
            ),
            None => String::new(),
        };
        text.push_str(&format!(
            "    {} no longer reads as step {} left it: expected {}, found {}{owner}\n",
            r.step.target,
            r.step.id,
            r.step.after.value(),
            r.observed
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::journal::Journal;
    use crate::apply::tests::{demo_plan, options, run_with_options};
    use crate::apply::{Direction, RunOptions, Selection};
    use crate::backend::rehearsal::Rehearsal;

    #[test]
    fn a_workload_that_went_back_keeps_its_roles_legacy_trust_and_the_shared_grants() {
        let (plan, dir) = demo_plan();
        let mut backend =
            Rehearsal::open(&dir.path().join("rehearsal"), &dir.path().join("snapshot")).unwrap();
        let mut journal = Journal::open(&dir.path().join("journal.jsonl")).unwrap();
        let apply = |phases: Vec<Phase>, backend: &mut Rehearsal, journal: &mut Journal| {
            let options = RunOptions {
                selection: Selection {
                    phases,
                    ..Selection::default()
                },
                ..options(Direction::Apply)
            };
            run_with_options(&plan, journal, backend, &options)
        };
        let before = [
            Phase::Prepare,
            Phase::Identity,
            Phase::Rollout,
            Phase::Cleanup,
        ];
        apply(before.to_vec(), &mut backend, &mut journal).unwrap();
        // Its owner syncs the worker's old manifest back: the legacy annotation returns.
        let went_back = plan
            .steps
            .iter()
            .find(|s| s.id == "remove-legacy-annotation:payments/Deployment/payments-worker")
            .unwrap();
        backend
            .write(
                went_back,
                &went_back.after.value(),
                &went_back.before.value(),
            )
            .unwrap();
        let error = apply(vec![Phase::Decommission], &mut backend, &mut journal).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("decommission refused for 1 role(s)")
                && text.contains("  arn:aws:iam::111122223333:role/payments-worker:\n    payments/Deployment/payments-worker no longer reads as step remove-legacy-annotation:")
                && text.contains("found {\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"iam.amazonaws.com/role\":\"payments-worker\"}}}}}"),
            "{text}"
        );
        let states = journal.states();
        for step in plan.steps.iter().filter(|s| s.phase == Phase::Decommission) {
            let held = step.kind == StepKind::RemoveAssumeRoleGrant
                || step.target.to_string().ends_with("role/payments-worker");
            let state = states.get(&step.id).copied();
            assert_eq!(
                state == Some(StepState::Applied),
                !held,
                "{}: {state:?}",
                step.id
            );
        }
    }
}
