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
