//! report.md's details, one block a namespace (its bindings, what is not migrated, its findings,
//! its changes with their diffs folded) and one for what belongs to no namespace (IAM, cluster-wide
//! RBAC, roles, accounts). Small reports hold them inline; large ones link to a page of each
//! under `report/` ([`super::report`]).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::diff::{Style, step_diff};
use super::md::{cell_code, code, fenced, prose, table};
use crate::findings::Finding;
use crate::plan::document::Skipped;
use crate::plan::{Binding, Phase, Plan, ServiceAccountAction, Step};

/// What one block holds.
#[derive(Default)]
pub struct Scope<'p> {
    pub bindings: Vec<&'p Binding>,
    pub skipped: Vec<&'p Skipped>,
    pub findings: Vec<&'p Finding>,
    pub steps: Vec<&'p Step>,
}

impl Scope<'_> {
    pub fn workloads(&self) -> usize {
        self.bindings.iter().map(|b| b.workloads.len()).sum()
    }
}

/// The plan's bindings, skipped workloads, findings and steps by namespace; `None`: of none.
pub fn scopes(plan: &Plan) -> BTreeMap<Option<&str>, Scope<'_>> {
    let mut scopes: BTreeMap<Option<&str>, Scope<'_>> = BTreeMap::new();
    for binding in &plan.bindings {
        let scope = scopes.entry(Some(&binding.namespace)).or_default();
        scope.bindings.push(binding);
    }
    for skipped in &plan.skipped {
        let scope = scopes.entry(Some(&skipped.namespace)).or_default();
        scope.skipped.push(skipped);
    }
    for finding in &plan.findings {
        let scope = scopes
            .entry(finding.subject.namespace.as_deref())
            .or_default();
        scope.findings.push(finding);
    }
    for step in &plan.steps {
        let scope = scopes.entry(step.target.namespace()).or_default();
        scope.steps.push(step);
    }
    scopes
}

/// One block, its headings from `level` down; `docs` is the path to `docs/` from where it is
/// written.
pub fn markdown(scope: &Scope<'_>, level: usize, docs: &str) -> String {
    let mut out = String::new();
    write_within(&mut out, scope, level, docs, usize::MAX);
    out
}

/// Appends the block of [`markdown`] to `out` while `out` stays within `limit` bytes; false, with
/// `out` past the limit and to be dropped, once it would not. A block that does not fit is given
/// up on at once, not rendered whole: a namespace's block can be tens of megabytes.
pub fn write_within(
    out: &mut String,
    scope: &Scope<'_>,
    level: usize,
    docs: &str,
    limit: usize,
) -> bool {
    let h = "#".repeat(level);
    if !scope.bindings.is_empty() {
        let _ = writeln!(out, "\n{h} Bindings\n");
        let rows = scope.bindings.iter().map(|binding| {
            let workloads: Vec<String> = binding
                .workloads
                .iter()
                .map(|w| format!("{} {}", w.kind, cell_code(&w.name)))
                .collect();
            let action = match binding.service_account_action {
                ServiceAccountAction::Reuse => "annotate".to_string(),
                ServiceAccountAction::Keep => "already annotated".to_string(),
                ServiceAccountAction::Create => {
                    format!("create (from {})", cell_code(&binding.from_service_account))
                }
            };
            [
                cell_code(&binding.service_account),
                action,
                cell_code(binding.role_arn.as_str()),
                workloads.join(", "),
            ]
        });
        table(
            out,
            ["service account", "action", "role", "workloads"],
            rows,
        );
    }
    if !scope.skipped.is_empty() {
        let _ = writeln!(out, "\n{h} Not migrated\n");
        let rows = scope.skipped.iter().map(|skipped| {
            [
                format!(
                    "{}/{} {}",
                    prose(&skipped.namespace),
                    skipped.kind,
                    cell_code(&skipped.name)
                ),
                format!("[`{0}`]({docs}/findings.md#{0})", skipped.reason),
                prose(&skipped.message),
            ]
        });
        table(out, ["workload", "reason", "detail"], rows);
    }
    if out.len() > limit {
        return false;
    }
    if !scope.findings.is_empty() {
        let _ = writeln!(out, "\n{h} Findings\n");
        for finding in &scope.findings {
            let _ = writeln!(
                out,
                "- {} **`{}`** {}: {}",
                finding.severity,
                finding.code,
                prose(&finding.subject.to_string()),
                prose(&finding.message)
            );
        }
    }
    if !scope.steps.is_empty() {
        let _ = writeln!(out, "\n{h} Changes");
        for phase in Phase::ALL {
            let steps: Vec<&&Step> = scope.steps.iter().filter(|s| s.phase == phase).collect();
            if steps.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{h}# `{phase}` ({} steps)\n", steps.len());
            for step in steps {
                let made_by = match &step.owner {
                    Some(owner) => format!(" Made by its owner, {}.", prose(&owner.to_string())),
                    None => String::new(),
                };
                // Folded: GitHub shows the step and opens its diff on a click.
                let _ = writeln!(
                    out,
                    "{h}## {}\n\n{}{made_by}\n\n<details><summary>diff</summary>\n\n{}\n</details>\n",
                    code(&step.id),
                    prose(&step.description),
                    fenced("diff", &step_diff(step, Style::Plain))
                );
                if out.len() > limit {
                    return false;
                }
            }
        }
    }
    out.len() <= limit
}
