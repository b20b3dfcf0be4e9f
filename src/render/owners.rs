//! Who must act: the steps whose targets an owner manages (Helm, Argo CD, Flux, a field manager,
//! eksctl or the team's IaC), by owner and phase, for the terminal summary and report.md.

use std::fmt::Write;

use super::md::{cell_code, code, prose};
use crate::plan::{Phase, Plan};

/// Lines for the terminal summary; empty when no owner must act.
pub fn summary(plan: &Plan) -> String {
    let by_owner = plan.steps_by_owner();
    if by_owner.is_empty() {
        return String::new();
    }
    let owned: usize = by_owner.values().map(Vec::len).sum();
    let mut out = format!(
        "\n{} owner(s) must make {owned} of {} steps; apply waits for them (`irsa-migrate export` writes their changes, --patch-owned writes live)\n",
        by_owner.len(),
        plan.steps.len()
    );
    let rows: Vec<Vec<String>> = by_owner
        .iter()
        .map(|(owner, steps)| vec![owner.to_string(), per_phase(steps.iter().map(|s| s.phase))])
        .collect();
    out.push_str(&super::table(&["OWNER", "STEPS BY PHASE"], &rows));
    out
}

/// The report's "Who must act" section; empty when no owner must act.
pub fn markdown(plan: &Plan) -> String {
    let by_owner = plan.steps_by_owner();
    if by_owner.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Who must act\n\nThese objects are managed by an owner that would revert a live change. Each owner makes its steps in its own source, phase by phase (`irsa-migrate export --plan plan.json --out DIR` writes them); `apply` waits until they are live, then verifies them.\n\n| owner | change in | steps by phase |\n|---|---|---|\n",
    );
    for (owner, steps) in &by_owner {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            prose(&owner.to_string()),
            prose(owner.where_to_change()),
            per_phase(steps.iter().map(|s| s.phase))
        );
    }
    for (owner, steps) in &by_owner {
        let _ = writeln!(out, "\n### {}\n", prose(&owner.to_string()));
        for step in steps.iter().take(STEPS_SHOWN) {
            let _ = writeln!(
                out,
                "- `{}` {}: {}",
                step.phase,
                cell_code(&step.target.to_string()),
                code(step.kind.as_str())
            );
        }
        if steps.len() > STEPS_SHOWN {
            let _ = writeln!(
                out,
                "- ... and {} more: the details by namespace say \"Made by its owner\" of each, and `irsa-migrate export` writes them all",
                steps.len() - STEPS_SHOWN
            );
        }
    }
    out
}

/// Steps listed per owner in report.md; a large owner's others are in the details.
const STEPS_SHOWN: usize = 50;

/// `prepare 1, rollout 2`: how many of the steps fall in each phase, in phase order.
fn per_phase(phases: impl Iterator<Item = Phase>) -> String {
    let phases: Vec<Phase> = phases.collect();
    Phase::ALL
        .iter()
        .filter_map(|phase| {
            let count = phases.iter().filter(|p| *p == phase).count();
            (count > 0).then(|| format!("{phase} {count}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
