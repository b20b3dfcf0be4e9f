//! The plan as a terminal summary (counts, bindings, skipped workloads) and as diffs by phase.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::diff::{Style, step_diff};
use crate::plan::select::Selection;
use crate::plan::{Phase, Plan, ServiceAccountAction};

/// Namespaces and skipped workloads the terminal summary lists; report.md and `diff` hold all.
const NAMESPACES_SHOWN: usize = 20;
/// Service-account rows the summary shows in all (a namespace may have hundreds).
const BINDINGS_SHOWN: usize = 100;
const SKIPPED_SHOWN: usize = 50;

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
    let namespaces = by_namespace.len();
    let mut rows_left = BINDINGS_SHOWN;
    let mut shown = 0;
    for (namespace, mut rows) in by_namespace.into_iter().take(NAMESPACES_SHOWN) {
        if rows_left == 0 {
            break;
        }
        shown += 1;
        let more = rows.len().saturating_sub(rows_left);
        rows.truncate(rows_left);
        rows_left -= rows.len();
        let _ = writeln!(out, "\nnamespace {namespace}");
        out.push_str(&super::table(
            &["SERVICE ACCOUNT", "ROLE", "WORKLOADS"],
            &rows,
        ));
        if more > 0 {
            let _ = writeln!(
                out,
                "  ... and {more} more service account(s) in {namespace}"
            );
        }
    }
    if namespaces > shown {
        let _ = writeln!(
            out,
            "\n... and {} more namespace(s): report.md lists every binding; `irsa-migrate diff --plan PLAN --namespace NS` shows one's steps",
            namespaces - shown
        );
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(out, "\nnot migrated");
        let rows: Vec<Vec<String>> = plan
            .skipped
            .iter()
            .take(SKIPPED_SHOWN)
            .map(|s| {
                vec![
                    format!("{}/{}/{}", s.namespace, s.kind, s.name),
                    s.reason.to_string(),
                    s.message.clone(),
                ]
            })
            .collect();
        out.push_str(&super::table(&["WORKLOAD", "REASON", "DETAIL"], &rows));
        if plan.skipped.len() > SKIPPED_SHOWN {
            let _ = writeln!(
                out,
                "... and {} more not migrated: report.md lists them all",
                plan.skipped.len() - SKIPPED_SHOWN
            );
        }
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

/// The selected steps as diffs, grouped under phase headings; with `bound`, at most that many a
/// phase, then the command that shows the rest of it (`bound.plan` is the plan's path). Values
/// from the plan are escaped ([`super::terminal_safe`]), so the text may go to a terminal as it
/// is, colours included.
pub fn diffs(plan: &Plan, selection: &Selection, bound: Option<Bound<'_>>, style: Style) -> String {
    let mut out = String::new();
    for phase in Phase::ALL {
        let steps: Vec<_> = plan
            .steps
            .iter()
            .filter(|s| s.phase == phase && selection.includes(s))
            .collect();
        if steps.is_empty() && !(selection.is_everything() || selection.phases.contains(&phase)) {
            continue;
        }
        let _ = writeln!(out, "\n== phase {phase}: {} step(s)", steps.len());
        let shown = bound.map_or(steps.len(), |b| b.per_phase.min(steps.len()));
        for step in &steps[..shown] {
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
        if let Some(bound) = bound
            && shown < steps.len()
        {
            let _ = writeln!(
                out,
                "\n# ... and {} more step(s) of phase {phase}: irsa-migrate diff --plan {} --phase {phase} (narrow it with --namespace, --kind, --step)",
                steps.len() - shown,
                super::terminal_safe(bound.plan)
            );
        }
    }
    out
}

/// How many diffs a phase shows by default, and where the plan is, to say how to see the rest.
#[derive(Debug, Clone, Copy)]
pub struct Bound<'a> {
    pub per_phase: usize,
    pub plan: &'a str,
}
