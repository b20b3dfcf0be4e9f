//! Which steps a run takes: the phases and namespaces of its [`Selection`], the cluster-wide
//! steps a namespace filter leaves out, and the phase order the journal's states must allow.

use std::collections::{BTreeMap, BTreeSet};

use super::journal::{Journal, StepState};
use super::{ApplyError, Direction, RunOptions};
use crate::plan::{Phase, Plan, Step, Target};

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

/// The steps a run covers, in plan order, with the journal's states and how many cluster-wide
/// steps a namespace filter left out.
pub(super) struct Selected<'p> {
    pub(super) steps: Vec<&'p Step>,
    pub(super) states: BTreeMap<String, StepState>,
    pub(super) left_out: usize,
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

pub(super) fn select<'p>(
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
            // A step its owner makes is run the same way: the run reads whether the owner has.
            let whose = match &first.owner {
                Some(owner) => format!(", its owner's: {owner}"),
                None => String::new(),
            };
            let message = match direction {
                Direction::Apply => format!(
                    "phase {phase} needs phase {} applied first: {} step(s) are not (e.g. {}{whose}); run `irsa-migrate apply --phase {}`{how}",
                    first.phase,
                    blocking.len(),
                    first.id,
                    first.phase
                ),
                Direction::Rollback => format!(
                    "phase {phase} can be rolled back only after phase {}: {} step(s) of later phases are applied (e.g. {}{whose}); run `irsa-migrate rollback --phase {}`{how} first",
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
