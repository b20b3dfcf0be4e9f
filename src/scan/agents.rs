//! Which legacy agent is in effect (its configuration problems, several or none installed), the
//! annotation keys it reads, and the identities it assumes application roles as.

use std::collections::BTreeSet;

use crate::findings::{Code, Finding, Subject};
use crate::iam::arn::RoleArn;
use crate::inventory::Inventory;
use crate::legacy::{self, Component, LegacyAgent};

/// The agent whose rules decide: kiam's server (the agent only forwards), or kube2iam; the first
/// of them when several are installed (a finding says so).
pub(super) fn in_effect(agents: &[LegacyAgent]) -> Option<&LegacyAgent> {
    agents.iter().find(|a| decides(a))
}

fn decides(agent: &LegacyAgent) -> bool {
    agent.component != Component::KiamAgent
}

/// The pod-template annotation keys the legacy path reads: those the agent in effect is
/// configured with (kube2iam's `--iam-role-key`, `--iam-external-id-key`), else both agents'
/// defaults. The scan evaluates these keys and cleanup removes them: one answer for both, or
/// cleanup would leave the key the agent reads and remove another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyAnnotations<'a> {
    pub role: &'a str,
    pub external_id: &'a str,
}

impl<'a> LegacyAnnotations<'a> {
    pub(super) fn of(agent: Option<&'a LegacyAgent>) -> LegacyAnnotations<'a> {
        match agent {
            Some(agent) => LegacyAnnotations {
                role: &agent.role_key,
                external_id: &agent.external_id_key,
            },
            None => LegacyAnnotations {
                role: legacy::ROLE_ANNOTATION,
                external_id: legacy::EXTERNAL_ID_ANNOTATION,
            },
        }
    }

    /// Both keys, the role's first.
    pub fn keys(self) -> [&'a str; 2] {
        [self.role, self.external_id]
    }
}

/// Findings about the installed agents: each one's configuration problems, several that decide
/// or none at all.
pub(super) fn agent_findings(agents: &[LegacyAgent], findings: &mut Vec<Finding>) {
    for agent in agents {
        for problem in &agent.problems {
            findings.push(Finding::new(
                Code::LegacyAgentConfig,
                agent_subject(agent),
                problem.clone(),
            ));
        }
    }
    let deciders: Vec<&LegacyAgent> = agents.iter().filter(|a| decides(a)).collect();
    let systems: BTreeSet<_> = agents.iter().map(|a| a.system).collect();
    if systems.len() > 1 || deciders.len() > 1 {
        let names: Vec<String> = agents.iter().map(|a| a.workload.to_string()).collect();
        findings.push(Finding::new(
            Code::MultipleLegacyAgents,
            Subject::new(None, "Cluster", "legacy-agents"),
            format!(
                "more than one legacy credential agent is installed ({}); the scan evaluates pods under {} only, check the others by hand",
                names.join(", "),
                in_effect(agents)
                    .map(|a| a.workload.to_string())
                    .unwrap_or_default()
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
            Some(role) => Some(role.arn.clone()),
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
