//! The decommission phase: legacy trust and `sts:AssumeRole` grants that no remaining workload
//! needs are removed; what stays, and what the operator removes by hand (the agents, the metadata
//! endpoint lock), is reported.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::assemble::Planner;
use super::document::Decommission;
use super::prepare::PreparedRole;
use super::step::{Step, StepKind, Target};
use super::trust;
use crate::iam::arn::RoleArn;
use crate::iam::policy::PolicyDocument;
use crate::iam::written_arn::WrittenRoleArn;
use crate::inventory::WorkloadKind;
use crate::legacy::Component;
use crate::scan::ScannedWorkload;

impl<'a> Planner<'a> {
    /// [`Planner::role_today`], or the legacy role of a workload whose namespace was not
    /// captured: whether that works today cannot be told, so decommission must not cut it off.
    /// Such a role may be written as no role ARN: the workload still counts as remaining.
    fn role_maybe_today(&self, workload: &'a ScannedWorkload) -> Option<&'a WrittenRoleArn> {
        let usage = workload.usage.as_ref()?;
        let unknown = !self.inventory.namespaces.contains_key(&workload.namespace);
        let legacy = usage.legacy.as_ref()?;
        let arn = legacy.arn.as_ref()?;
        (usage.works_today || unknown).then_some(arn)
    }

    /// Legacy trust and AssumeRole grants that no remaining workload needs, and the report of
    /// what stays and what the operator removes by hand.
    pub(super) fn decommission(
        &self,
        after_prepare: &BTreeMap<RoleArn, PreparedRole>,
    ) -> (Vec<Step>, Decommission) {
        let moved: BTreeSet<(&str, WorkloadKind, &str)> = self
            .bindings
            .iter()
            .flat_map(|b| {
                b.workloads
                    .iter()
                    .map(move |w| (b.namespace.as_str(), w.kind, w.name.as_str()))
            })
            .collect();
        let remaining: Vec<&ScannedWorkload> = self
            .scan
            .workloads
            .iter()
            .filter(|w| {
                self.role_maybe_today(w).is_some()
                    && !moved.contains(&(w.namespace.as_str(), w.kind, w.name.as_str()))
            })
            .collect();
        let mut remaining_by_role: BTreeMap<&RoleArn, Vec<&ScannedWorkload>> = BTreeMap::new();
        for workload in &remaining {
            if let Some(Ok(role)) = self.role_maybe_today(workload).map(WrittenRoleArn::role) {
                remaining_by_role.entry(role).or_default().push(workload);
            }
        }
        let mut report = Decommission::default();
        let mut steps = Vec::new();
        let principals = &self.scan.legacy_principals;
        for (role_arn, prepared) in after_prepare {
            let trust_after_prepare = &PolicyDocument(prepared.trust.value());
            if let Some(still_used) = remaining_by_role.get(role_arn) {
                report.kept.push(format!(
                    "legacy trust of {role_arn}: still used through the legacy agent by {}",
                    name_some(still_used)
                ));
                continue;
            }
            let after = principals
                .iter()
                .fold(trust_after_prepare.clone(), |doc, p| {
                    trust::remove_principal(&doc, p.as_str())
                });
            let conditioned: usize = principals
                .iter()
                .map(|p| trust::conditioned_trust(&after, p.as_str()))
                .sum();
            if conditioned > 0 {
                report.kept.push(format!("legacy trust of {role_arn}: {conditioned} statement(s) trust the legacy principal under a condition (an sts:ExternalId, a source), for a purpose the plan cannot see; kept, review by hand"));
            }
            if &after == trust_after_prepare && conditioned > 0 {
                continue;
            }
            if &after == trust_after_prepare {
                report.kept.push(format!("legacy trust of {role_arn}: it trusts the account or everyone, not the legacy role by name; review by hand"));
                continue;
            }
            steps.push(Step::new(
                StepKind::RemoveLegacyTrust,
                Target::Role {
                    account: role_arn.account().to_string(),
                    arn: role_arn.clone(),
                },
                format!(
                    "stop trusting the legacy principal ({}) in {role_arn}",
                    join(principals)
                ),
                trust_after_prepare.0.clone(),
                after.0,
            ));
        }
        for node_role in &self.scan.node_roles {
            let Ok(node_arn) = node_role.arn.role() else {
                continue;
            };
            let Some(role) = self.inventory.iam.role(node_arn) else {
                continue;
            };
            if node_role.assume_role_grants.is_empty() {
                continue;
            }
            if !remaining.is_empty() {
                let names = name_some(&remaining);
                report.kept.push(format!(
                    "sts:AssumeRole grants of {}: still needed by {}, which get credentials through the legacy agent",
                    role.arn,
                    names
                ));
                continue;
            }
            // The inventory knows the role by this ARN, or by its account and name: its account.
            let account = node_arn.account().to_string();
            // Only grants on exactly the roles this plan moved off the legacy path, or on the
            // legacy principal (kiam's server role), are the legacy path's; others are reported.
            let legacy_roles: BTreeSet<&str> = self
                .bindings
                .iter()
                .map(|b| b.role_arn.as_str())
                .chain(principals.iter().map(RoleArn::as_str))
                .collect();
            for (policy_name, document) in role.inline_policies() {
                let document = &document;
                let removal = trust::remove_legacy_grants(document, &legacy_roles);
                for reason in &removal.kept {
                    report.kept.push(format!(
                        "inline policy {policy_name} of {}: {reason}",
                        role.arn
                    ));
                }
                if !removal.changed {
                    continue;
                }
                let after = removal.after.map_or(Value::Null, |d| d.0);
                steps.push(Step::new(
                    StepKind::RemoveAssumeRoleGrant,
                    Target::InlinePolicy {
                        account: account.clone(),
                        role_arn: role.arn.clone(),
                        policy_name: policy_name.clone(),
                    },
                    format!(
                        "remove sts:AssumeRole from inline policy {policy_name} of {}",
                        role.arn
                    ),
                    document.0.clone(),
                    after,
                ));
            }
            let managed: Vec<&str> = role
                .attached_policies
                .iter()
                .filter(|p| {
                    self.inventory
                        .iam
                        .policies
                        .get(&p.policy_arn)
                        .and_then(|m| m.document.as_ref())
                        .is_some_and(trust::has_exact_assume_role_grant)
                })
                .map(|p| p.policy_arn.as_str())
                .collect();
            for policy in managed {
                report.kept.push(format!("managed policy {policy} on {} grants sts:AssumeRole: detach or edit it by hand", role.arn));
            }
        }
        for agent in &self.scan.agents {
            let w = &agent.workload;
            report.delete_agents.push(format!(
                "kubectl delete {} {} -n {}",
                w.kind.as_str().to_ascii_lowercase(),
                w.name,
                w.namespace
            ));
        }
        if self
            .scan
            .agents
            .iter()
            .any(|a| a.component != Component::KiamServer)
        {
            report.delete_agents.push(
                "the agents' iptables DNAT rule for 169.254.169.254 must go with them (kiam --iptables-remove, kube2iam: a preStop hook or node replacement); a leftover rule breaks instance metadata".into(),
            );
        }
        report.lock_imds = vec![
            "aws ec2 modify-instance-metadata-options --instance-id ID --http-tokens required --http-put-response-hop-limit 1".into(),
            "or in the launch template: MetadataOptions HttpTokens=required, HttpPutResponseHopLimit=1; keep IMDS enabled".into(),
        ];
        (steps, report)
    }
}

fn join(arns: &[RoleArn]) -> String {
    let texts: Vec<&str> = arns.iter().map(RoleArn::as_str).collect();
    texts.join(", ")
}

/// Names the first few workloads, and how many more there are: reports stay readable at scale.
fn name_some(workloads: &[&ScannedWorkload]) -> String {
    const SHOWN: usize = 5;
    let mut text: Vec<String> = workloads
        .iter()
        .take(SHOWN)
        .map(|w| format!("{}/{}/{}", w.namespace, w.kind, w.name))
        .collect();
    if workloads.len() > SHOWN {
        text.push(format!("and {} more", workloads.len() - SHOWN));
    }
    text.join(", ")
}
