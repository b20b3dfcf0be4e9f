//! Service accounts shared by workloads of different roles: annotating one would widen access.

use std::collections::BTreeMap;

use crate::findings::{Code, Finding, Subject};
use crate::inventory::Inventory;
use crate::legacy::LegacyAgent;

use super::agents::LegacyAnnotations;
use super::workloads::Candidate;

pub(super) fn check_shared_service_accounts(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    candidates: &[Candidate<'_>],
    findings: &mut Vec<Finding>,
) {
    let role_key = LegacyAnnotations::of(agent).role;
    let mut by_account: BTreeMap<(&str, &str), BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for candidate in candidates {
        let role = candidate
            .template_annotations
            .get(role_key)
            .filter(|r| !r.is_empty())
            .map(|r| {
                agent
                    .and_then(|a| a.resolve(r))
                    .unwrap_or_else(|| r.clone())
            })
            .unwrap_or_else(|| "(none)".to_string());
        by_account
            .entry((
                candidate.key.namespace.as_str(),
                candidate.spec.service_account(),
            ))
            .or_default()
            .entry(role)
            .or_default()
            .push(format!("{}/{}", candidate.key.kind, candidate.key.name));
    }
    for ((namespace, account), roles) in by_account {
        if roles.len() < 2 || roles.keys().all(|r| r == "(none)") {
            continue;
        }
        let detail: Vec<String> = roles
            .iter()
            .map(|(role, users)| format!("{role}: {}", users.join(", ")))
            .collect();
        let exists = inventory
            .service_accounts
            .contains_key(&(namespace.to_string(), account.to_string()));
        findings.push(Finding::new(
            Code::SharedServiceAccount,
            Subject::new(Some(namespace), "ServiceAccount", account),
            format!(
                "workloads sharing this service account use different roles ({}){}; annotating it would widen access, so each role gets a dedicated service account",
                detail.join("; "),
                if exists { "" } else { "; the service account itself is not in the source" }
            ),
        ));
    }
}
