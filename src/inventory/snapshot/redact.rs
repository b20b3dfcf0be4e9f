//! What the loader keeps of what it reads: the annotations the tool reads, and of a legacy
//! agent's container only its configuration, credentials redacted; a snapshot travels.

use crate::inventory::Inventory;
use crate::inventory::kube::{Container, EnvVar};

/// Annotation domains the tool reads: the legacy agents' (`iam.amazonaws.com/`), IRSA's
/// (`eks.amazonaws.com/`), its own, and the owners it must not fight (Helm, Argo CD).
const READ_ANNOTATION_PREFIXES: &[&str] = &[
    "iam.amazonaws.com/",
    "eks.amazonaws.com/",
    "irsa-migrate.io/",
    "meta.helm.sh/",
    "argocd.argoproj.io/",
];

/// Drops every annotation the tool does not read (`kubectl.kubernetes.io/last-applied-configuration`
/// holds whole manifests, literal env values included): what the scan reads, snapshots keep,
/// and nothing else. Keys an agent is configured to read (kube2iam `--iam-role-key`…) are kept.
pub(super) fn keep_read_annotations(inventory: &mut Inventory) {
    use std::collections::BTreeSet;
    let mut configured: BTreeSet<String> = BTreeSet::new();
    for agent in crate::legacy::detect(inventory) {
        configured.insert(agent.role_key.clone());
        configured.insert(agent.external_id_key.clone());
        if let crate::legacy::NamespaceRule::Kube2iamAllowed { key, .. } = &agent.namespace_rule {
            configured.insert(key.clone());
        }
    }
    let keep = |key: &str| {
        READ_ANNOTATION_PREFIXES.iter().any(|p| key.starts_with(p)) || configured.contains(key)
    };
    for namespace in inventory.namespaces.values_mut() {
        namespace.metadata.annotations.retain(keep);
    }
    for account in inventory.service_accounts.values_mut() {
        account.metadata.annotations.retain(keep);
    }
    for workload in inventory.workloads.values_mut() {
        workload.metadata.annotations.retain(keep);
        workload.template.metadata.annotations.retain(keep);
    }
    for pod in &mut inventory.pods {
        pod.metadata.annotations.retain(keep);
    }
    for binding in &mut inventory.rbac_bindings {
        binding.metadata.annotations.retain(keep);
    }
}

/// What a kiam or kube2iam container keeps: its command and args (they configure it, so the
/// scan reads them), and only the env entries they refer to (`$(NAME)`). A value that looks like
/// a credential, by its name or its shape, is replaced by `REDACTED`: a snapshot travels.
pub(super) fn redact_agent_container(container: &mut Container) {
    let referenced = |name: &str| {
        let reference = format!("$({name})");
        container
            .command
            .iter()
            .chain(&container.args)
            .any(|a| a.contains(&reference))
    };
    let env: Vec<EnvVar> = container
        .env
        .iter()
        .filter(|e| referenced(&e.name))
        .cloned()
        .map(|mut e| {
            if e.value.as_deref().is_some_and(|v| looks_secret(&e.name, v)) {
                e.value = Some(REDACTED.into());
            }
            e
        })
        .collect();
    container.env = env;
    for arg in container
        .command
        .iter_mut()
        .chain(container.args.iter_mut())
    {
        if let Some((flag, value)) = arg.split_once('=')
            && looks_secret(flag, value)
        {
            *arg = format!("{flag}={REDACTED}");
        }
    }
}

const REDACTED: &str = "REDACTED";

/// A name that says secret (`…SECRET…`, `…TOKEN…`, `…PASSWORD…`, an access key), or a value
/// shaped like an AWS access key id.
fn looks_secret(name: &str, value: &str) -> bool {
    let name = name.to_ascii_lowercase().replace(['-', '_'], "");
    let named = [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "accesskey",
        "privatekey",
    ]
    .iter()
    .any(|word| name.contains(word));
    let access_key = value.len() == 20
        && (value.starts_with("AKIA") || value.starts_with("ASIA"))
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    named || access_key
}
