//! What the source and the cluster lack: input the loader could not read or recognize, the OIDC
//! provider, the pod identity webhook, and the Namespace objects of namespaces with workloads.

use std::collections::BTreeSet;

use super::workloads::Candidate;
use crate::findings::{Code, Finding, Severity, Subject};
use crate::inventory::Inventory;

/// A finding for every file the loader did not recognize and every resource it was refused.
pub(super) fn source_findings(inventory: &Inventory) -> Vec<Finding> {
    let mut findings = Vec::new();
    for warning in &inventory.warnings {
        findings.push(Finding::new(
            Code::UnrecognizedInput,
            Subject::new(None, "File", warning.file.display().to_string()),
            warning.message.clone(),
        ));
    }
    for denied in &inventory.unreadable {
        findings.push(Finding::new(
            Code::ReadDenied,
            Subject::new(denied.namespace.as_deref(), "Resource", denied.resource.clone()),
            format!(
                "{denied} ({}): the scan cannot see these objects, so its results are incomplete; grant the irsa-migrate-read ClusterRole of docs/permissions.md",
                denied.message
            ),
        ));
    }
    findings
}

/// A namespace whose workloads were read without its Namespace object: its annotations, which
/// the agents' namespace rules read, are unknown, so none of its workloads may be migrated (they
/// are not "denied by the namespace" either: that cannot be told).
pub(super) fn check_namespaces_captured(
    inventory: &Inventory,
    candidates: &[Candidate<'_>],
    findings: &mut Vec<Finding>,
) {
    let missing: BTreeSet<&str> = candidates
        .iter()
        .map(|c| c.key.namespace.as_str())
        .filter(|namespace| !inventory.namespaces.contains_key(*namespace))
        .collect();
    for namespace in missing {
        findings.push(Finding::new(
            Code::NamespaceNotCaptured,
            Subject::new(None, "Namespace", namespace),
            format!(
                "workloads run in namespace {namespace}, but the source holds no Namespace object for it: its annotations (what kiam or kube2iam permits there) are unknown, so none of its workloads is planned; add `kubectl get namespaces -o json` to the snapshot and re-scan"
            ),
        ));
    }
}

pub(super) fn check_cluster(inventory: &Inventory, findings: &mut Vec<Finding>) {
    let Some(cluster) = &inventory.cluster else {
        findings.push(Finding::new(
            Code::ClusterUnknown,
            Subject::new(None, "Cluster", "unknown"),
            "no `aws eks describe-cluster` output in the source: the OIDC issuer, account and Kubernetes version are unknown; add it (docs/snapshot.md)",
        ));
        return;
    };
    let subject = Subject::new(None, "Cluster", &cluster.name);
    match (cluster.oidc_provider_arn(), &inventory.iam.oidc_providers) {
        (None, _) => findings.push(Finding::new(
            Code::MissingOidcProvider,
            subject.clone(),
            "the cluster has no OIDC issuer in describe-cluster output",
        )),
        (Some(provider), Some(known)) if !known.contains(&provider) => findings.push(Finding::new(
            Code::MissingOidcProvider,
            subject.clone(),
            format!("IAM has no OIDC provider {provider}; the plan creates it with client id sts.amazonaws.com"),
        )),
        _ => {}
    }
    let has_webhook = inventory.mutating_webhooks.iter().any(|(name, hooks)| {
        name.contains("pod-identity-webhook")
            || hooks.iter().any(|h| h == "iam-for-pods.amazonaws.com")
    });
    if !has_webhook {
        let captured = inventory
            .kinds_seen
            .contains("MutatingWebhookConfiguration");
        let mut finding = Finding::new(
            Code::WebhookMissing,
            subject,
            if captured {
                "no pod identity webhook (MutatingWebhookConfiguration pod-identity-webhook): pods would get the role annotation but no token; install it before migrating"
            } else {
                "the source holds no MutatingWebhookConfiguration objects, so the pod identity webhook cannot be checked; add `kubectl get mutatingwebhookconfigurations -o json`"
            },
        );
        if !captured {
            finding.severity = Severity::Warning;
        }
        findings.push(finding);
    }
}
