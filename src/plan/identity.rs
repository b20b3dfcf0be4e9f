//! The identity phase: a service account that is reused is annotated with its role; a dedicated
//! one is created, copying the shared account's pull secrets, automount setting and RBAC bindings.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::assemble::Planner;
use super::document::{Binding, ServiceAccountAction};
use super::naming;
use super::step::{MANAGED_BY, Step, StepKind, Target};
use crate::scan::IRSA_ANNOTATION;

impl Planner<'_> {
    pub(super) fn identity_steps(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        // Bindings by the service accounts they name, and binding names taken per kind and
        // namespace: built once, so copying stays linear in the cluster's size.
        let mut rbac: RbacIndex<'_> = BTreeMap::new();
        let mut taken: BTreeMap<(String, Option<String>), BTreeSet<String>> = BTreeMap::new();
        for binding in &self.inventory.rbac_bindings {
            taken
                .entry((binding.kind.clone(), binding.namespace.clone()))
                .or_default()
                .insert(binding.metadata.name.clone());
            let mut named: BTreeSet<(&str, &str)> = BTreeSet::new();
            for subject in binding
                .subjects
                .iter()
                .filter(|s| s.kind == "ServiceAccount")
            {
                if let Some(namespace) = subject
                    .namespace
                    .as_deref()
                    .or(binding.namespace.as_deref())
                {
                    named.insert((namespace, subject.name.as_str()));
                }
            }
            for key in named {
                rbac.entry(key).or_default().push(binding);
            }
        }
        for binding in &self.bindings {
            let namespace = &binding.namespace;
            let target = Target::ServiceAccount {
                namespace: namespace.clone(),
                name: binding.service_account.clone(),
            };
            match binding.service_account_action {
                // Nothing to annotate, and nothing for a rollback to remove.
                ServiceAccountAction::Keep => {}
                ServiceAccountAction::Reuse => steps.push(Step::new(
                    StepKind::AnnotateServiceAccount,
                    target,
                    format!(
                        "annotate {namespace}/{} with role {}",
                        binding.service_account, binding.role_arn
                    ),
                    json!({"metadata": {"annotations": {}}}),
                    json!({"metadata": {"annotations": {IRSA_ANNOTATION: binding.role_arn}}}),
                )),
                ServiceAccountAction::Create => {
                    let key = (namespace.clone(), binding.from_service_account.clone());
                    let source = self.inventory.service_accounts.get(&key);
                    let mut account = json!({
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {
                            "name": binding.service_account,
                            "namespace": namespace,
                            "labels": {MANAGED_BY.0: MANAGED_BY.1},
                            "annotations": {IRSA_ANNOTATION: binding.role_arn},
                        },
                    });
                    if let Some(source) = source {
                        if !source.image_pull_secrets.is_empty() {
                            account["imagePullSecrets"] = json!(source.image_pull_secrets);
                        }
                        if let Some(automount) = source.automount_service_account_token {
                            account["automountServiceAccountToken"] = json!(automount);
                        }
                    }
                    steps.push(Step::new(
                        StepKind::CreateServiceAccount,
                        target,
                        format!(
                            "create {namespace}/{} for role {}, copying {}'s pull secrets and automount setting",
                            binding.service_account, binding.role_arn, binding.from_service_account
                        ),
                        Value::Null,
                        account,
                    ).owned_by(self.binding_owner(binding)));
                    steps.extend(self.rbac_copies(binding, &rbac, &mut taken));
                }
            }
        }
        steps
    }

    /// A copy of every RoleBinding and ClusterRoleBinding that names the shared service account,
    /// naming the dedicated one instead.
    fn rbac_copies(
        &self,
        binding: &Binding,
        rbac: &RbacIndex<'_>,
        taken: &mut BTreeMap<(String, Option<String>), BTreeSet<String>>,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        let owner = self.binding_owner(binding);
        let key = (
            binding.namespace.as_str(),
            binding.from_service_account.as_str(),
        );
        for rbac in rbac.get(&key).into_iter().flatten().copied() {
            let names = taken
                .entry((rbac.kind.clone(), rbac.namespace.clone()))
                .or_default();
            let seed = format!(
                "{}/{:?}/{}/{}",
                rbac.kind, rbac.namespace, rbac.metadata.name, binding.service_account
            );
            let name = naming::unique_name(
                &[&rbac.metadata.name, &binding.service_account],
                &seed,
                names,
            );
            names.insert(name.clone());
            let mut metadata = json!({"name": name, "labels": {MANAGED_BY.0: MANAGED_BY.1}});
            if let Some(namespace) = &rbac.namespace {
                metadata["namespace"] = json!(namespace);
            }
            steps.push(Step::new(
                StepKind::CopyRbacBinding,
                Target::RbacBinding { kind: rbac.kind.clone(), namespace: rbac.namespace.clone(), name: name.clone() },
                format!(
                    "copy {} {} ({} {}) for service account {}/{}",
                    rbac.kind, rbac.metadata.name, rbac.role_ref.kind, rbac.role_ref.name, binding.namespace, binding.service_account
                ),
                Value::Null,
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": rbac.kind,
                    "metadata": metadata,
                    "roleRef": rbac.role_ref,
                    "subjects": [{"kind": "ServiceAccount", "name": binding.service_account, "namespace": binding.namespace}],
                }),
            ).owned_by(owner.clone()));
        }
        steps
    }
}

/// RoleBindings and ClusterRoleBindings by the (namespace, service account) they name.
type RbacIndex<'a> = BTreeMap<(&'a str, &'a str), Vec<&'a crate::inventory::RbacBinding>>;
