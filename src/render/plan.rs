//! The plan as a terminal summary (counts, bindings, skipped workloads) and as diffs by phase.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::diff::{Style, step_diff};
use crate::plan::{Phase, Plan, ServiceAccountAction};

pub fn summary(plan: &Plan) -> String {
    let mut out = String::new();
    let c = &plan.cluster;
    let _ = writeln!(
        out,
        "Plan {} for cluster {} (account {}, {})",
        plan.name, c.name, c.account, c.region
    );
    let _ = writeln!(out, "Inventory {}", plan.fingerprint);
    let (moved, created) = (plan.moved_workloads(), plan.created_service_accounts());
    let _ = writeln!(
        out,
        "{moved} workloads move to IRSA through {} service accounts ({} reused, {created} created); {} workloads skipped",
        plan.bindings.len(),
        plan.bindings.len() - created,
        plan.skipped.len()
    );
    let mut by_namespace: BTreeMap<&str, Vec<Vec<String>>> = BTreeMap::new();
    for binding in &plan.bindings {
        let workloads: Vec<String> = binding
            .workloads
            .iter()
            .map(|w| format!("{}/{}", w.kind, w.name))
            .collect();
        let account = match binding.service_account_action {
            ServiceAccountAction::Reuse => format!("{} (annotate)", binding.service_account),
            ServiceAccountAction::Keep => {
                format!("{} (already annotated)", binding.service_account)
            }
            ServiceAccountAction::Create => format!(
                "{} (new, from {})",
                binding.service_account, binding.from_service_account
            ),
        };
        by_namespace
            .entry(&binding.namespace)
            .or_default()
            .push(vec![
                account,
                binding.role_arn.to_string(),
                workloads.join(", "),
            ]);
    }
    for (namespace, rows) in by_namespace {
        let _ = writeln!(out, "\nnamespace {namespace}");
        out.push_str(&super::table(
            &["SERVICE ACCOUNT", "ROLE", "WORKLOADS"],
            &rows,
        ));
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(out, "\nnot migrated");
        let rows: Vec<Vec<String>> = plan
            .skipped
            .iter()
            .map(|s| {
                vec![
                    format!("{}/{}/{}", s.namespace, s.kind, s.name),
                    s.reason.to_string(),
                    s.message.clone(),
                ]
            })
            .collect();
        out.push_str(&super::table(&["WORKLOAD", "REASON", "DETAIL"], &rows));
    }
    let _ = writeln!(out, "\nsteps");
    for phase in Phase::ALL {
        let count = plan.steps.iter().filter(|s| s.phase == phase).count();
        let _ = writeln!(out, "  {phase:<13} {count}");
    }
    for account in &plan.accounts {
        let _ = writeln!(
            out,
            "AWS account {}: {} step(s), {}",
            account.account, account.steps, account.credentials
        );
    }
    out.push_str(&super::owners::summary(plan));
    let errors = plan
        .findings
        .iter()
        .filter(|f| f.severity == crate::findings::Severity::Error)
        .count();
    let _ = writeln!(
        out,
        "{} findings ({errors} errors); see report.md or `irsa-migrate scan`",
        plan.findings.len()
    );
    out
}

/// Every step of `phases` (all when empty) as a diff, grouped under phase headings. Values from
/// the plan are escaped ([`super::terminal_safe`]), so the text may go to a terminal as it is,
/// colours included.
pub fn diffs(plan: &Plan, phases: &[Phase], style: Style) -> String {
    let mut out = String::new();
    for phase in Phase::ALL {
        if !phases.is_empty() && !phases.contains(&phase) {
            continue;
        }
        let steps: Vec<_> = plan.steps.iter().filter(|s| s.phase == phase).collect();
        let _ = writeln!(out, "\n== phase {phase}: {} step(s)", steps.len());
        for step in steps {
            let _ = writeln!(
                out,
                "\n# {}\n# {}",
                super::terminal_safe(&step.id),
                super::terminal_safe(&step.description)
            );
            if let Some(owner) = &step.owner {
                let _ = writeln!(
                    out,
                    "# made by its owner, {}",
                    super::terminal_safe(&owner.to_string())
                );
            }
            out.push_str(&step_diff(step, style));
        }
    }
    out
}
