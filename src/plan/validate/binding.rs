//! A plan's bindings: valid names, a role ARN (checked as the plan is read: [`super::explain`]), an action that agrees with the accounts it names,
//! and only workloads that can move (never a bare Pod or a Job).

use super::{Checked, InvalidPlan, never_moves};
use crate::names;
use crate::plan::document::{Binding, ServiceAccountAction};

pub(super) fn check_binding(index: usize, binding: &Binding) -> Checked {
    let invalid = |field: &str, message: String| InvalidPlan {
        place: format!("bindings[{index}]"),
        field: field.into(),
        message,
    };
    names::namespace(&binding.namespace).map_err(|e| invalid("namespace", e.to_string()))?;
    names::subdomain("service account", &binding.service_account)
        .map_err(|e| invalid("service_account", e.to_string()))?;
    names::subdomain("service account", &binding.from_service_account)
        .map_err(|e| invalid("from_service_account", e.to_string()))?;
    let same = binding.service_account == binding.from_service_account;
    let consistent = match binding.service_account_action {
        ServiceAccountAction::Create => !same,
        ServiceAccountAction::Reuse | ServiceAccountAction::Keep => same,
    };
    if !consistent {
        return Err(invalid(
            "service_account_action",
            "a created account differs from the one it replaces; a reused or kept one is the same"
                .into(),
        ));
    }
    for (w, workload) in binding.workloads.iter().enumerate() {
        names::subdomain("workload", &workload.name)
            .map_err(|e| invalid(&format!("workloads[{w}].name"), e.to_string()))?;
        if never_moves(workload.kind) {
            return Err(invalid(
                &format!("workloads[{w}].kind"),
                format!("a {} never moves", workload.kind.as_str()),
            ));
        }
    }
    Ok(())
}
