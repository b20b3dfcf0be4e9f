//! What the source and the cluster lack: input the loader could not read or recognize, the OIDC
//! provider, the pod identity webhook, and the Namespace objects of namespaces with workloads.

use std::collections::BTreeSet;

use super::workloads::Candidate;
use crate::findings::{Code, Finding, Severity, Subject};
use crate::inventory::Inventory;

/// A finding for every file the loader did not recognize, every resource it was refused, and
/// every account whose CloudFormation stacks it could not list.
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
    for (account, why) in &inventory.iam.stacks_unread {
        findings.push(Finding::new(
            Code::ReadDenied,
            Subject::new(None, "Account", account.clone()),
            format!(
                "the CloudFormation stacks of account {account} could not be listed ({why}): a role a stack made is not known as the stack's, so apply would write its trust live and the stack's next update of the role would put the old trust back; grant cloudformation:ListStacks and cloudformation:ListStackResources (docs/permissions.md)"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_that_could_not_be_listed_are_a_warning_naming_the_account_and_the_grant() {
        let mut inventory = Inventory::default();
        inventory.iam.stacks_unread.insert(
            "111122223333".into(),
            "AWS cloudformation:ListStacks failed: AccessDenied".into(),
        );
        let findings = source_findings(&inventory);
        let [finding] = &findings[..] else {
            panic!("one finding: {findings:?}")
        };
        assert_eq!(finding.code, Code::ReadDenied);
        assert_eq!(finding.code.severity(), Severity::Warning);
        assert_eq!(finding.subject.name, "111122223333");
        for needle in [
            "AccessDenied",
            "cloudformation:ListStackResources",
            "permissions.md",
        ] {
            assert!(finding.message.contains(needle), "{}", finding.message);
        }
    }
}
