//! Which of a plan's steps a reader asked to see (`diff --phase --namespace --kind --step`): each
//! given criterion must hold, any of its values may match; none given, every step.

use super::{Phase, Step, StepKind};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub phases: Vec<Phase>,
    /// Steps on objects of these namespaces (IAM steps have none, so never match).
    pub namespaces: Vec<String>,
    pub kinds: Vec<StepKind>,
    /// Step ids, exactly as the plan writes them.
    pub ids: Vec<String>,
}

impl Selection {
    pub fn includes(&self, step: &Step) -> bool {
        (self.phases.is_empty() || self.phases.contains(&step.phase))
            && (self.kinds.is_empty() || self.kinds.contains(&step.kind))
            && (self.ids.is_empty() || self.ids.contains(&step.id))
            && (self.namespaces.is_empty()
                || step
                    .target
                    .namespace()
                    .is_some_and(|n| self.namespaces.iter().any(|m| m == n)))
    }

    /// Whether anything narrows the selection.
    pub fn is_everything(&self) -> bool {
        self == &Selection::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_given_criterion_must_hold_and_any_of_its_values_may_match() {
        let inventory = crate::inventory::demo::inventory().expect("the demo");
        let plan = crate::plan::plan(&inventory, "demo", &Default::default()).expect("a plan");
        let count =
            |selection: &Selection| plan.steps.iter().filter(|s| selection.includes(s)).count();
        assert_eq!(count(&Selection::default()), plan.steps.len());
        let payments = Selection {
            namespaces: vec!["payments".into()],
            ..Default::default()
        };
        let in_payments = count(&payments);
        assert!(in_payments > 0 && in_payments < plan.steps.len());
        let restarts = Selection {
            namespaces: vec!["payments".into()],
            kinds: vec![StepKind::RestartWorkload],
            ..Default::default()
        };
        assert!(
            plan.steps
                .iter()
                .filter(|s| restarts.includes(s))
                .all(|s| s.kind == StepKind::RestartWorkload
                    && s.target.namespace() == Some("payments"))
        );
        assert!(count(&restarts) < in_payments);
        let one = &plan.steps[0];
        let by_id = Selection {
            ids: vec![one.id.clone()],
            ..Default::default()
        };
        assert_eq!(count(&by_id), 1);
        // IAM steps belong to no namespace.
        let iam_in_payments = Selection {
            namespaces: vec!["payments".into()],
            phases: vec![Phase::Prepare],
            ..Default::default()
        };
        assert_eq!(count(&iam_in_payments), 0);
    }
}
