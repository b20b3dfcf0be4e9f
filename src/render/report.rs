//! `report.md`: the dry-run report for a change board, readable on GitHub.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::diff::{Style, step_diff};
use crate::findings::Severity;
use crate::plan::{Phase, Plan, ServiceAccountAction};

pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let c = &plan.cluster;
    let _ = writeln!(out, "# IRSA migration plan `{}`\n", plan.name);
    let _ = writeln!(
        out,
        "Cluster **{}** (account `{}`, {}), OIDC issuer `{}`.  \nInventory `{}`; plan schema `{}`.  \nPlan digest `{}`: apply and rollback run only the plan with this digest.\n",
        c.name,
        c.account,
        c.region,
        c.oidc_issuer,
        plan.fingerprint,
        plan.schema,
        plan.digest()
    );
    let (moved, created) = (plan.moved_workloads(), plan.created_service_accounts());
    out.push_str("## Summary\n\n| | count |\n|---|---|\n");
    let _ = writeln!(out, "| workloads moving to IRSA | {moved} |");
    let kept = plan
        .bindings
        .iter()
        .filter(|b| b.service_account_action == ServiceAccountAction::Keep)
        .count();
    let _ = writeln!(
        out,
        "| service accounts annotated in place | {} |",
        plan.bindings.len() - created - kept
    );
    let _ = writeln!(out, "| service accounts already annotated | {kept} |");
    let _ = writeln!(out, "| dedicated service accounts created | {created} |");
    let _ = writeln!(out, "| workloads not migrated | {} |", plan.skipped.len());
    for severity in [Severity::Error, Severity::Warning, Severity::Info] {
        let _ = writeln!(
            out,
            "| findings: {severity} | {} |",
            plan.findings
                .iter()
                .filter(|f| f.severity == severity)
                .count()
        );
    }
    for phase in Phase::ALL {
        let _ = writeln!(
            out,
            "| steps in `{phase}` | {} |",
            plan.steps.iter().filter(|s| s.phase == phase).count()
        );
    }

    out.push_str("\n## Who gets which role\n\n```mermaid\nflowchart LR\n");
    let mut ids = BTreeMap::new();
    let mut id = |key: String| {
        let next = ids.len();
        ids.entry(key).or_insert(next).to_string()
    };
    let mut edges = Vec::new();
    for binding in &plan.bindings {
        let ns = id(format!("ns:{}", binding.namespace));
        let sa = id(format!(
            "sa:{}/{}",
            binding.namespace, binding.service_account
        ));
        let role = id(format!("role:{}", binding.role_arn));
        edges.push(format!(
            "  n{ns}[\"namespace {}\"] --> n{sa}([\"{}\"])",
            binding.namespace, binding.service_account
        ));
        edges.push(format!(
            "  n{sa} --> n{role}{{{{\"{}\"}}}}",
            binding.role_arn
        ));
    }
    edges.dedup();
    for edge in edges {
        let _ = writeln!(out, "{edge}");
    }
    out.push_str("```\n");

    let mut by_namespace: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for binding in &plan.bindings {
        let workloads: Vec<String> = binding
            .workloads
            .iter()
            .map(|w| format!("{} `{}`", w.kind, w.name))
            .collect();
        let action = match binding.service_account_action {
            ServiceAccountAction::Reuse => "annotate".to_string(),
            ServiceAccountAction::Keep => "already annotated".to_string(),
            ServiceAccountAction::Create => {
                format!("create (from `{}`)", binding.from_service_account)
            }
        };
        by_namespace
            .entry(&binding.namespace)
            .or_default()
            .push(format!(
                "| `{}` | {action} | `{}` | {} |",
                binding.service_account,
                binding.role_arn,
                workloads.join(", ")
            ));
    }
    out.push_str("\n## Bindings by namespace\n");
    for (namespace, rows) in by_namespace {
        let _ = writeln!(
            out,
            "\n### `{namespace}`\n\n| service account | action | role | workloads |\n|---|---|---|---|"
        );
        for row in rows {
            let _ = writeln!(out, "{row}");
        }
    }
    if !plan.skipped.is_empty() {
        out.push_str("\n## Not migrated\n\n| workload | reason | detail |\n|---|---|---|\n");
        for skipped in &plan.skipped {
            let _ = writeln!(
                out,
                "| {}/{} `{}` | [`{}`](../../docs/findings.md#{}) | {} |",
                skipped.namespace,
                skipped.kind,
                skipped.name,
                skipped.reason,
                skipped.reason,
                escape(&skipped.message)
            );
        }
    }
    out.push_str("\n## Findings\n");
    for (severity, findings) in crate::findings::by_severity(&plan.findings) {
        let _ = writeln!(out, "\n### {severity} ({})\n", findings.len());
        for finding in findings {
            let _ = writeln!(
                out,
                "- **`{}`** {}: {}",
                finding.code,
                finding.subject,
                escape(&finding.message)
            );
        }
    }
    out.push_str("\nEach code's meaning and remedy: [docs/findings.md](../../docs/findings.md).\n");
    if !plan.accounts.is_empty() {
        out.push_str("\n## AWS accounts written to\n\n| account | steps | credentials | IAM data in source |\n|---|---|---|---|\n");
        for account in &plan.accounts {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                account.account, account.steps, account.credentials, account.iam_data_in_source
            );
        }
    }
    out.push_str("\n## Changes by phase\n");
    for phase in Phase::ALL {
        let steps: Vec<_> = plan.steps.iter().filter(|s| s.phase == phase).collect();
        let _ = writeln!(out, "\n### `{phase}` ({} steps)\n", steps.len());
        for step in steps {
            let _ = writeln!(
                out,
                "#### `{}`\n\n{}\n\n```diff\n{}```\n",
                step.id,
                step.description,
                step_diff(step, Style::Plain)
            );
        }
    }
    out.push_str("\n## After decommission\n\n");
    for line in &plan.decommission.kept {
        let _ = writeln!(out, "- Kept: {}", escape(line));
    }
    out.push_str("\nDelete the legacy agents once every workload runs on IRSA:\n\n```sh\n");
    for line in plan
        .decommission
        .delete_agents
        .iter()
        .filter(|l| l.starts_with("kubectl"))
    {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("```\n\n");
    for line in plan
        .decommission
        .delete_agents
        .iter()
        .filter(|l| !l.starts_with("kubectl"))
    {
        let _ = writeln!(out, "Note: {line}.\n");
    }
    out.push_str("Then lock the instance metadata endpoint so pods cannot fall back to the node role (IMDSv2 required, hop limit 1):\n\n```sh\n");
    let _ = writeln!(
        out,
        "{}\n```\n",
        plan.decommission
            .lock_imds
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    );
    for line in plan.decommission.lock_imds.iter().skip(1) {
        let _ = writeln!(out, "{line}.");
    }
    out
}

/// Keeps table cells on one row.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
