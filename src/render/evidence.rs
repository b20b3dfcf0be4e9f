//! The evidence before decommission ([`crate::evidence::Evidence`]) for a terminal: per role its
//! verdict and why, then the legacy grants.

use crate::evidence::{Evidence, Usage, Verdict};

pub fn text(plan: &str, evidence: &Evidence) -> String {
    let mut text = format!(
        "Evidence for plan {plan} as of {} (CloudTrail since {}; the legacy path must be unused since {})\n",
        evidence.as_of, evidence.since, evidence.quiet_since
    );
    let regions: Vec<String> = evidence
        .regions
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.region,
                if r.covered { "read" } else { "NOT READ" }
            )
        })
        .collect();
    text.push_str(&format!("CloudTrail: {}\n\n", regions.join(", ")));
    if evidence.roles.is_empty() && evidence.grants.is_empty() {
        text.push_str("The plan decommissions nothing.\n");
        return text;
    }
    for role in &evidence.roles {
        text.push_str(&format!("{:<14} {}\n", role.verdict.as_str(), role.role));
        text.push_str(&format!("  {}\n", role.reason));
        text.push_str(&format!(
            "  legacy ({}): {}\n",
            role.legacy_principals.join(", "),
            usage(&role.legacy)
        ));
        if !role.elsewhere.is_none() {
            text.push_str(&format!(
                "  of which from outside this cluster: {}\n",
                usage(&role.elsewhere)
            ));
        }
        if let Some(used) = &role.iam_last_used {
            text.push_str(&format!(
                "  IAM last used: {}{}\n",
                used.date,
                used.region
                    .as_deref()
                    .map(|r| format!(" in {r}"))
                    .unwrap_or_default()
            ));
        }
        for account in &role.service_accounts {
            text.push_str(&format!(
                "  web identity {}/{}: {}\n",
                account.namespace,
                account.name,
                usage(&account.web_identity)
            ));
        }
    }
    for grant in &evidence.grants {
        let verdict = if grant.ready { "ready" } else { "held" };
        text.push_str(&format!(
            "{verdict:<14} {} (sts:AssumeRole grant of {})\n  {}\n",
            grant.step, grant.principal, grant.reason
        ));
        for (role, used) in &grant.outside_plan {
            text.push_str(&format!("  also assumed {role}: {}\n", usage(used)));
        }
    }
    for finding in &evidence.findings {
        text.push_str(&format!(
            "\n{} [{}] {}: {}\n",
            finding.severity, finding.code, finding.subject, finding.message
        ));
    }
    let ready = evidence
        .roles
        .iter()
        .filter(|r| r.verdict == Verdict::Ready)
        .count();
    let held = evidence.held_steps().len();
    text.push_str(&format!(
        "\n{ready} of {} role(s) ready; decommission would hold {held} step(s)\n",
        evidence.roles.len()
    ));
    text
}

fn usage(usage: &Usage) -> String {
    match &usage.last {
        None => "never in the window".to_string(),
        Some(last) if usage.sessions.is_empty() => {
            format!("{} time(s), last {last}", usage.count)
        }
        Some(last) => format!(
            "{} time(s), last {last} ({})",
            usage.count,
            usage.sessions.join(", ")
        ),
    }
}

/// The report's section: the verdicts as of the source's CloudTrail, or how to get them.
pub fn markdown(evidence: Option<&Evidence>) -> String {
    use super::md::{cell_code, code, prose};
    let mut out = String::from("\n## Evidence before decommission\n\n");
    let Some(evidence) = evidence else {
        out.push_str("The source holds no CloudTrail. Before decommission, `irsa-migrate evidence --plan PLAN` reads it: a role loses its legacy trust only once its legacy path is unused and its service accounts assume it through web identity ([docs/evidence.md](../../docs/evidence.md)).\n");
        return out;
    };
    out.push_str(&format!(
        "As of {} (the end of the source's CloudTrail readings), legacy path unused since {}:\n\n| role | verdict | why |\n|---|---|---|\n",
        code(&evidence.as_of),
        code(&evidence.quiet_since)
    ));
    for role in &evidence.roles {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            cell_code(role.role.as_str()),
            cell_code(role.verdict.as_str()),
            prose(&role.reason)
        ));
    }
    for grant in &evidence.grants {
        let verdict = if grant.ready { "ready" } else { "held" };
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            cell_code(&grant.step),
            cell_code(verdict),
            prose(&grant.reason)
        ));
    }
    for finding in &evidence.findings {
        out.push_str(&format!(
            "\n- [{}](../../docs/findings.md#{}) on {}: {}\n",
            code(finding.code.as_str()),
            finding.code,
            code(&finding.subject.name),
            prose(&finding.message)
        ));
    }
    out.push_str(
        "\nDecommission reads CloudTrail again when it runs and holds what is not ready.\n",
    );
    out
}
