//! A plan read from a file is checked to hold only what the planner itself makes, before anything
//! reads or writes a target: a plan travels (a pull request, a CI artifact) and `apply` runs with
//! credentials that rewrite IAM trust and RBAC. Pure: no I/O.
//!
//! Each step's `id` and `phase` must be the ones its kind and target give; every name must be
//! valid for its kind; every ARN must be an IAM ARN of a known partition; and each change must be
//! one of the planner's own edits, recomputed here from the step's `before` and the plan's
//! bindings and cluster: this cluster's exact web-identity statement added to a bound role,
//! legacy role principals removed, `sts:AssumeRole` removed from an inline policy, an annotation
//! or a service account of a binding, an RBAC copy naming a dedicated service account. A `*`
//! principal, a principal of another kind or a step aimed at another object than its id says
//! cannot pass. [`check_against`] adds what only the plan's own snapshot can tell: that an RBAC
//! copy copies a binding the shared service account really has.

mod binding;
mod cluster;
mod steps;
mod target;

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use binding::check_binding;
use cluster::check_cluster;
use steps::{PlanIndex, check_step};

use super::document::{Plan, ServiceAccountAction};
use super::step::{RESTART_ANNOTATION, Step, StepKind};
use crate::iam::arn::RoleArn;
use crate::inventory::{Inventory, RbacBinding, WorkloadKind};
use crate::names;
use crate::scan::IRSA_ANNOTATION;

/// Why a plan is refused: where (a step, a binding, the cluster) and which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: field {field}: {message}")]
pub struct InvalidPlan {
    /// `steps[3] (update-role-trust:arn:…)`, `bindings[0]`, `cluster`.
    pub place: String,
    pub field: String,
    pub message: String,
}

type Checked = Result<(), InvalidPlan>;

/// The checks that need only the plan.
pub fn check(plan: &Plan) -> Checked {
    check_with(plan, &PlanIndex::new(plan))
}

/// [`check`], with the plan's index built by the caller.
fn check_with(plan: &Plan, lookup: &PlanIndex<'_>) -> Checked {
    let cluster = check_cluster(plan)?;
    for (index, key) in plan.legacy_annotations.iter().enumerate() {
        if !is_annotation_key(key) || key == IRSA_ANNOTATION || key == RESTART_ANNOTATION {
            return Err(InvalidPlan {
                place: format!("legacy_annotations[{index}]"),
                field: "key".into(),
                message: format!("{key:?} is not a legacy agent's annotation key"),
            });
        }
    }
    for (index, binding) in plan.bindings.iter().enumerate() {
        check_binding(index, binding)?;
    }
    // A fleet's plan has a hundred thousand steps, each checked alone: in parts, a thread each,
    // the first error in the plan's order reported.
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let part = plan.steps.len().div_ceil(parts).max(1);
    let check_part = |first: usize| -> Checked {
        let steps = plan.steps.iter().enumerate().skip(first).take(part);
        for (index, step) in steps {
            check_step(plan, lookup, &cluster, &At { index, step })?;
        }
        Ok(())
    };
    std::thread::scope(|threads| {
        let others: Vec<_> = (1..parts)
            .map(|n| threads.spawn(move || check_part(n * part)))
            .collect();
        let first = check_part(0);
        others.into_iter().fold(first, |checked, other| {
            let other = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            checked.and(other)
        })
    })?;
    let mut ids = BTreeSet::new();
    for (index, step) in plan.steps.iter().enumerate() {
        if !ids.insert(step.id.as_str()) {
            return Err(At { index, step }.invalid("id", "a second step with this id"));
        }
    }
    Ok(())
}

/// Why a plan document that does not read as a [`Plan`] fails, where the check can name it: a
/// role ARN that is not one. The plan's types hold checked role ARNs, so reading a plan already
/// refuses a bad one; this re-reads the document (only one that failed) for the place and field,
/// as [`check`] names everything else. `None`: the reader's own error says it.
pub fn explain(document: &Value) -> Option<InvalidPlan> {
    let items = |key: &str| {
        document[key]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let bad_arn = |value: &Value| RoleArn::parse(value.as_str()?).err();
    for (index, binding) in items("bindings").iter().enumerate() {
        if let Some(error) = bad_arn(&binding["role_arn"]) {
            return Some(InvalidPlan {
                place: format!("bindings[{index}]"),
                field: "role_arn".into(),
                message: error.to_string(),
            });
        }
    }
    for (index, step) in items("steps").iter().enumerate() {
        let target = &step["target"];
        let field = match target["type"].as_str() {
            Some("role") => "arn",
            Some("inline-policy") => "role_arn",
            _ => continue,
        };
        if let Some(error) = bad_arn(&target[field]) {
            return Some(InvalidPlan {
                place: format!(
                    "steps[{index}] ({})",
                    step["id"].as_str().unwrap_or_default()
                ),
                field: format!("target.{field}"),
                message: error.to_string(),
            });
        }
    }
    None
}

/// [`check`], and what only the inventory the plan was computed from (the migration's snapshot)
/// can tell: every RBAC copy copies a binding that names the shared service account.
pub fn check_against(plan: &Plan, source: &Inventory) -> Checked {
    let lookup = PlanIndex::new(plan);
    check_with(plan, &lookup)?;
    // The snapshot's RBAC bindings by kind and namespace: each copy reads only its own.
    let mut granted: HashMap<(&str, Option<&str>), Vec<&RbacBinding>> = HashMap::new();
    for original in &source.rbac_bindings {
        granted
            .entry((&original.kind, original.namespace.as_deref()))
            .or_default()
            .push(original);
    }
    for (index, step) in plan.steps.iter().enumerate() {
        if step.kind != StepKind::CopyRbacBinding {
            continue;
        }
        let at = At { index, step };
        let after = step.after.value();
        let subject = &after["subjects"][0];
        let binding = lookup
            .for_account(
                subject["namespace"].as_str().unwrap_or_default(),
                subject["name"].as_str().unwrap_or_default(),
                &ServiceAccountAction::ALL,
            )
            .ok_or_else(|| at.invalid("after.subjects", "names no dedicated service account"))?;
        let kind = after["kind"].as_str().unwrap_or_default();
        let namespace = after["metadata"]["namespace"].as_str();
        let copied = granted.get(&(kind, namespace)).is_some_and(|originals| {
            originals.iter().any(|original| {
                serde_json::to_value(&original.role_ref).ok().as_ref() == Some(&after["roleRef"])
                    && original.subjects.iter().any(|s| {
                        s.kind == "ServiceAccount"
                            && s.name == binding.from_service_account
                            && s.namespace.as_deref().or(original.namespace.as_deref())
                                == Some(binding.namespace.as_str())
                    })
            })
        });
        if !copied {
            return Err(at.invalid(
                "after.roleRef",
                format!(
                    "{} {} is granted to {}/{} by no {} in the plan's snapshot: an RBAC copy only copies what the shared service account has",
                    after["roleRef"]["kind"].as_str().unwrap_or_default(),
                    after["roleRef"]["name"].as_str().unwrap_or_default(),
                    binding.namespace,
                    binding.from_service_account,
                    after["kind"].as_str().unwrap_or_default(),
                ),
            ));
        }
    }
    Ok(())
}

/// A Kubernetes annotation key: `[prefix/]name`, the prefix a DNS-1123 subdomain, the name at
/// most 63 alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
fn is_annotation_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    name_ok && prefix.is_none_or(names::is_dns1123_subdomain)
}

/// A bare Pod (re-created by hand) or a Job (its template cannot change): the planner never
/// moves or changes one.
fn never_moves(kind: WorkloadKind) -> bool {
    matches!(kind, WorkloadKind::Pod | WorkloadKind::Job)
}

/// A step being checked, to name it in errors.
struct At<'a> {
    index: usize,
    step: &'a Step,
}

impl At<'_> {
    fn invalid(&self, field: &str, message: impl Into<String>) -> InvalidPlan {
        InvalidPlan {
            place: format!("steps[{}] ({})", self.index, self.step.id),
            field: field.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::Target;

    fn demo() -> (Plan, Inventory) {
        let inventory = crate::inventory::demo::inventory().unwrap();
        let plan = crate::plan::plan(&inventory, "demo", &Default::default()).unwrap();
        (plan, inventory)
    }

    fn step_of(plan: &mut Plan, kind: StepKind) -> &mut Step {
        plan.steps.iter_mut().find(|s| s.kind == kind).unwrap()
    }

    #[test]
    fn the_planners_own_plan_passes() {
        let (plan, inventory) = demo();
        assert_eq!(check_against(&plan, &inventory), Ok(()));
    }

    #[test]
    fn legacy_trust_removal_removes_only_role_principals() {
        let (mut plan, _) = demo();
        let step = step_of(&mut plan, StepKind::RemoveLegacyTrust);
        let mut after = step.before.value();
        after["Statement"][0]["Principal"]["AWS"] = json!("*");
        step.after = crate::json::CompactJson::new(&after);
        let error = check(&plan).unwrap_err();
        assert_eq!(error.field, "after", "{error}");

        let (mut plan, _) = demo();
        let step = step_of(&mut plan, StepKind::RemoveLegacyTrust);
        step.after = step.before.clone();
        assert!(
            check(&plan)
                .unwrap_err()
                .message
                .contains("removes no legacy principal")
        );
    }

    /// A role ARN is checked as the plan is read; the refusal still names its place and field.
    #[test]
    fn a_bad_role_arn_in_a_plan_document_is_named_by_field() {
        let (plan, _) = demo();
        let index = plan
            .steps
            .iter()
            .position(|s| matches!(s.target, Target::Role { .. }))
            .unwrap();
        let id = plan.steps[index].id.clone();
        let document = serde_json::to_value(&plan).unwrap();
        assert_eq!(explain(&document), None);
        for (pointer, place, field) in [
            (
                "/bindings/1/role_arn".to_string(),
                "bindings[1]".to_string(),
                "role_arn",
            ),
            (
                format!("/steps/{index}/target/arn"),
                format!("steps[{index}] ({id})"),
                "target.arn",
            ),
        ] {
            let mut document = document.clone();
            *document.pointer_mut(&pointer).unwrap() = json!("arn:aws:iam::111122223333:user/x");
            assert!(serde_json::from_value::<Plan>(document.clone()).is_err());
            let error = explain(&document).unwrap();
            assert_eq!(
                (error.place.as_str(), error.field.as_str()),
                (place.as_str(), field)
            );
            assert!(error.message.contains("is not an IAM role ARN"), "{error}");
        }
    }

    #[test]
    fn names_and_arns_are_checked_for_their_kind() {
        let (mut plan, _) = demo();
        let step = step_of(&mut plan, StepKind::AnnotateServiceAccount);
        if let Target::ServiceAccount { namespace, .. } = &mut step.target {
            *namespace = "kube-system/configmaps/aws-auth".into();
        }
        step.id = format!("{}:{}", step.kind.as_str(), step.target);
        assert_eq!(check(&plan).unwrap_err().field, "target.namespace");

        let (mut plan, _) = demo();
        plan.cluster.partition = "aws\u{1b}[8m".into();
        assert_eq!(check(&plan).unwrap_err().field, "partition");

        let (mut plan, _) = demo();
        plan.cluster.oidc_issuer = "https://*".into();
        assert_eq!(check(&plan).unwrap_err().field, "oidc_issuer");

        // Cleanup may only remove a legacy agent's annotation keys, never the IRSA one.
        let (mut plan, _) = demo();
        plan.legacy_annotations.push(IRSA_ANNOTATION.into());
        assert_eq!(check(&plan).unwrap_err().place, "legacy_annotations[2]");
        assert!(is_annotation_key("iam.amazonaws.com/role") && is_annotation_key("role"));
        assert!(
            !is_annotation_key("a/b/c")
                && !is_annotation_key("x/")
                && !is_annotation_key("k\u{1b}")
        );
    }
}
