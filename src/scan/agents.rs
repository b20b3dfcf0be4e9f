//! Which legacy agent is in effect (its configuration problems, several or none installed), and
//! the identities it assumes application roles as.

use std::collections::BTreeSet;

use crate::findings::{Code, Finding, Subject};
use crate::iam::arn::RoleArn;
use crate::inventory::Inventory;
use crate::legacy::{Component, LegacyAgent};

/// The agent whose rules decide: kiam's server (the agent only forwards), or kube2iam.
pub(super) fn effective_agent<'a>(
    agents: &'a [LegacyAgent],
    findings: &mut Vec<Finding>,
) -> Option<&'a LegacyAgent> {
    for agent in agents {
        for problem in &agent.problems {
            findings.push(Finding::new(
                Code::LegacyAgentConfig,
                agent_subject(agent),
                problem.clone(),
            ));
        }
    }
    let deciders: Vec<&LegacyAgent> = agents
        .iter()
        .filter(|a| a.component != Component::KiamAgent)
        .collect();
    let systems: BTreeSet<_> = agents.iter().map(|a| a.system).collect();
    if systems.len() > 1 || deciders.len() > 1 {
        let names: Vec<String> = agents.iter().map(|a| a.workload.to_string()).collect();
        findings.push(Finding::new(
            Code::MultipleLegacyAgents,
            Subject::new(None, "Cluster", "legacy-agents"),
            format!(
                "more than one legacy credential agent is installed ({}); the scan evaluates pods under {} only, check the others by hand",
                names.join(", "),
                deciders.first().map(|a| a.workload.to_string()).unwrap_or_default()
            ),
        ));
    }
    if agents.is_empty() {
        findings.push(Finding::new(
            Code::NoLegacyAgent,
            Subject::new(None, "Cluster", "legacy-agents"),
            "no kiam or kube2iam Deployment/DaemonSet found; role annotations are evaluated with kiam/kube2iam defaults unknown, so none counts as working today",
        ));
    } else if deciders.is_empty() {
        findings.push(Finding::new(
            Code::LegacyAgentConfig,
            Subject::new(None, "Cluster", "legacy-agents"),
            "kiam agents found but no kiam server: the server holds the base ARN and namespace policy; add its Deployment/DaemonSet to the source",
        ));
    }
    deciders.first().copied()
}

fn agent_subject(agent: &LegacyAgent) -> Subject {
    Subject::new(
        Some(&agent.workload.namespace),
        agent.workload.kind.as_str(),
        &agent.workload.name,
    )
}

/// The identities application roles must trust for the legacy path to work. Each is the role's
/// real ARN where IAM knows it: `aws-auth` names roles without their path, but a trust policy
/// names them with it.
pub(super) fn legacy_principals(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    node_roles: &[(String, &'static str)],
) -> Vec<(RoleArn, String)> {
    let canonical = |arn: &str| {
        let parsed = RoleArn::parse(arn).ok()?;
        match inventory.iam.role(&parsed) {
            Some(role) => RoleArn::parse(&role.arn).ok(),
            None => Some(parsed),
        }
    };
    match agent.and_then(|a| a.assume_role_arn.as_deref()) {
        Some(arn) => canonical(arn)
            .map(|a| vec![(a, "kiam server role (--assume-role-arn)".to_string())])
            .unwrap_or_default(),
        None => node_roles
            .iter()
            .filter_map(|(arn, _)| Some((canonical(arn)?, "node role".to_string())))
            .collect(),
    }
}
