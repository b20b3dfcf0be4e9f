//! Node roles (from `aws-auth`, else by the worker policy) and kiam's server role: what each
//! may assume and what it grants beyond an EKS worker's needs.

use std::collections::BTreeSet;

use crate::findings::{Code, Finding, Subject};
use crate::iam::written_arn::WrittenRoleArn;
use crate::inventory::Inventory;
use crate::legacy::LegacyAgent;

use super::model::NodeRole;

/// AWS-managed policies an EKS worker node is expected to carry.
const WORKER_BASELINE: &[&str] = &[
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKSWorkerNodeMinimalPolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
];

/// Node roles: from `aws-auth` (groups `system:nodes`), else roles carrying the worker policy.
pub(super) fn node_role_arns(inventory: &Inventory) -> Vec<(String, &'static str)> {
    #[derive(serde::Deserialize)]
    struct MapRole {
        rolearn: String,
        #[serde(default)]
        groups: Vec<String>,
    }
    if let Some(map_roles) = &inventory.aws_auth_map_roles
        && let Ok(entries) = yaml_serde::from_str::<Vec<MapRole>>(map_roles)
    {
        let mut roles: Vec<_> = entries
            .into_iter()
            .filter(|e| e.groups.iter().any(|g| g == "system:nodes"))
            .map(|e| (e.rolearn, "aws-auth"))
            .collect();
        roles.sort();
        roles.dedup();
        return roles;
    }
    inventory
        .iam
        .roles
        .values()
        .filter(|r| {
            r.attached_policies
                .iter()
                .any(|p| p.policy_name == "AmazonEKSWorkerNodePolicy")
        })
        .map(|r| (r.arn.to_string(), "worker-node-policy"))
        .collect()
}

pub(super) fn analyse_node_roles(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    node_roles: &[(String, &'static str)],
    findings: &mut Vec<Finding>,
) -> Vec<NodeRole> {
    let mut roles: Vec<(String, String)> = node_roles
        .iter()
        .map(|(a, s)| (a.clone(), s.to_string()))
        .collect();
    if let Some(arn) = agent.and_then(|a| a.assume_role_arn.clone()) {
        roles.push((arn, "kiam-assume-role".to_string()));
    }
    roles
        .into_iter()
        .map(|(arn, source)| {
            let arn = WrittenRoleArn::parse(&arn);
            let role = arn.role().ok().and_then(|a| inventory.iam.role(a));
            let described = match source.as_str() {
                "aws-auth" => "node role (from aws-auth)",
                "worker-node-policy" => "node role (carries AmazonEKSWorkerNodePolicy)",
                _ => "kiam server role (--assume-role-arn)",
            };
            let Some(role) = role else {
                return NodeRole { arn, source, found: false, assume_role_grants: Vec::new(), extra_permissions: Vec::new() };
            };
            let subject = Subject::new(None, "IAMRole", role.arn.as_str());
            let mut grants = BTreeSet::new();
            let mut extra = BTreeSet::new();
            let inline = role.inline_policies();
            let mut documents: Vec<(String, &crate::iam::policy::PolicyDocument)> =
                inline.iter().map(|(name, doc)| (format!("inline {name}"), doc)).collect();
            for attached in &role.attached_policies {
                let is_aws_managed = attached.policy_arn.contains(":iam::aws:policy/");
                if is_aws_managed && WORKER_BASELINE.contains(&attached.policy_name.as_str()) {
                    continue;
                }
                match inventory.iam.policies.get(&attached.policy_arn).and_then(|p| p.document.as_ref()) {
                    Some(document) => documents.push((format!("managed {}", attached.policy_name), document)),
                    None => {
                        extra.insert(format!("managed {} (document not in the source)", attached.policy_name));
                    }
                }
            }
            for (origin, document) in documents {
                grants.extend(document.allowed_resources("sts:AssumeRole"));
                for statement in document.statements().into_iter().filter(|s| s.effect_allow) {
                    let actions: Vec<String> = statement
                        .actions()
                        .into_iter()
                        .filter(|a| !a.eq_ignore_ascii_case("sts:AssumeRole"))
                        .collect();
                    if !actions.is_empty() {
                        extra.insert(format!("{origin}: {}", actions.join(", ")));
                    }
                }
            }
            if !grants.is_empty() {
                findings.push(Finding::new(
                    Code::NodeRoleAssumeRole,
                    subject.clone(),
                    format!(
                        "{described} may assume {}: this grant exists for the legacy path and is removed at decommission once no workload needs it",
                        grants.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if !extra.is_empty() {
                findings.push(Finding::new(
                    Code::NodeRoleExtraPermissions,
                    subject,
                    format!(
                        "{described} grants more than an EKS worker needs ({}): pods without a role, and hostNetwork pods, may depend on it silently; once IMDS is locked they lose it",
                        extra.iter().cloned().collect::<Vec<_>>().join("; ")
                    ),
                ));
            }
            NodeRole {
                arn: WrittenRoleArn::Valid(role.arn.clone()),
                source,
                found: true,
                assume_role_grants: grants.into_iter().collect(),
                extra_permissions: extra.into_iter().collect(),
            }
        })
        .collect()
}
