//! What Kubernetes objects add to an inventory: workloads, pods, namespaces, service accounts,
//! RBAC bindings, `aws-auth` and webhooks, their names checked as Kubernetes checks them.

use std::path::Path;

use super::InventoryError;
use super::build::Builder;
use super::origins::ObjectId;
use super::raw::RawObject;
use super::redact::redact_agent_container;
use crate::inventory::agent_image::AgentImage;
use crate::inventory::kube::ObjectMeta;
use crate::inventory::{
    Namespace, Pod, RbacBinding, ServiceAccount, Workload, WorkloadKey, WorkloadKind,
};

impl Builder {
    /// Adds one object (or every item of a list). A name that Kubernetes itself would refuse,
    /// and that could reach a file path or a URL (`../../x`), stops loading, naming file and object.
    pub(super) fn add_kubernetes(
        &mut self,
        path: &Path,
        object: RawObject,
        kind: &str,
        list_kind: Option<&str>,
    ) -> Result<(), InventoryError> {
        // Typed lists (`PodList`) may omit `kind` on their items; it follows from the list's kind.
        let kind = if kind.is_empty() {
            list_kind.unwrap_or_default()
        } else {
            kind
        };
        if let Some(items) = object.items {
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
            if let Some(item_kind) = item_kind {
                self.inventory.kinds_seen.insert(item_kind.to_string());
            }
            for item in items {
                let own_kind = item.kind.clone().unwrap_or_default();
                self.add_kubernetes(path, item, &own_kind, item_kind)?;
            }
            return Ok(());
        }
        self.inventory.kinds_seen.insert(kind.to_string());
        let metadata = object.metadata;
        let namespace = metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        check_names(path, kind, &namespace, &metadata.name)?;
        let name = metadata.name.clone();
        let id = ObjectId {
            kind,
            namespace: Some(&namespace),
            name: &name,
        };
        let cluster_id = ObjectId {
            namespace: None,
            ..id
        };
        let (inventory, origins) = (&mut self.inventory, &mut self.origins);
        if let Some(workload_kind) = WorkloadKind::from_kind(kind) {
            let spec = object.spec.unwrap_or_default();
            if workload_kind == WorkloadKind::Pod {
                // A pod is read for its annotations, owner and account; its labels, identity and
                // version (and its namespace, kept once beside it) only cost memory, which
                // matters at a hundred thousand pods.
                let metadata = ObjectMeta {
                    namespace: None,
                    uid: None,
                    resource_version: None,
                    labels: Default::default(),
                    ..metadata
                };
                let pod = Pod {
                    metadata,
                    namespace: namespace.clone(),
                    // A pod is read for its account, network and user; its containers' commands,
                    // env and images are its controller's business.
                    spec: spec.into_pod_spec().pod_essentials(),
                    phase: object.status.as_ref().and_then(|s| s.phase.clone()),
                    ip: object.status.and_then(|s| s.pod_ip),
                };
                return origins.keep_listed(path, &id, &mut inventory.pods, pod, |p| {
                    p.namespace == namespace && p.metadata.name == name
                });
            }
            let mut spec = spec;
            let update = spec.take_update_policy();
            let template = match workload_kind {
                WorkloadKind::CronJob => spec.job_template.map(|j| j.spec.template),
                _ => spec.template.map(|t| *t),
            };
            let Some(template) = template else {
                self.warn(
                    path,
                    format!(
                        "{kind} {namespace}/{}: no pod template; ignored",
                        metadata.name
                    ),
                );
                return Ok(());
            };
            let key = WorkloadKey {
                namespace: namespace.clone(),
                kind: workload_kind,
                name: metadata.name.clone(),
            };
            // Commands and env are read only to configure a legacy agent; everyone else's are
            // dropped, which matters at a hundred thousand workloads. So are the identity and
            // version of the workload: nothing reads them.
            let metadata = ObjectMeta {
                uid: None,
                resource_version: None,
                ..metadata
            };
            let mut template = template;
            for container in template
                .spec
                .containers
                .iter_mut()
                .chain(template.spec.init_containers.iter_mut())
            {
                if container
                    .image
                    .as_deref()
                    .and_then(AgentImage::of)
                    .is_some()
                {
                    redact_agent_container(container);
                } else {
                    container.command = Vec::new();
                    container.args = Vec::new();
                    container.env = Vec::new();
                }
            }
            let workload = Workload {
                key: key.clone(),
                metadata,
                template,
                replicas: spec.replicas,
                update,
            };
            return origins.keep(path, &id, &mut inventory.workloads, key, workload);
        }
        match kind {
            "Namespace" => {
                let namespace = Namespace { metadata };
                origins.keep(
                    path,
                    &cluster_id,
                    &mut inventory.namespaces,
                    name.clone(),
                    namespace,
                )?;
            }
            "ServiceAccount" => {
                let account = ServiceAccount {
                    metadata,
                    namespace: namespace.clone(),
                    image_pull_secrets: object.image_pull_secrets,
                    automount_service_account_token: object.automount_service_account_token,
                };
                let key = (namespace.clone(), name.clone());
                origins.keep(path, &id, &mut inventory.service_accounts, key, account)?;
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let Some(role_ref) = object.role_ref else {
                    self.warn(
                        path,
                        format!("{kind} {}: no roleRef; ignored", metadata.name),
                    );
                    return Ok(());
                };
                let namespaced = kind == "RoleBinding";
                let binding = RbacBinding {
                    kind: kind.to_string(),
                    namespace: namespaced.then(|| namespace.clone()),
                    metadata,
                    role_ref: *role_ref,
                    subjects: object.subjects,
                };
                let id = if namespaced { id } else { cluster_id };
                origins.keep_listed(path, &id, &mut inventory.rbac_bindings, binding, |b| {
                    b.kind == kind
                        && b.namespace.as_deref() == id.namespace
                        && b.metadata.name == name
                })?;
            }
            "ConfigMap" if namespace == "kube-system" && name == "aws-auth" => {
                let map_roles = object.data.get("mapRoles").cloned();
                match origins.claim(path, &id, 0) {
                    Some(first)
                        if inventory.aws_auth_map_roles != map_roles && !origins.later_wins =>
                    {
                        return Err(origins.conflict(first, path, &id));
                    }
                    _ => inventory.aws_auth_map_roles = map_roles,
                }
            }
            "MutatingWebhookConfiguration" => {
                let hooks = object.webhooks.into_iter().map(|w| w.name).collect();
                origins.keep(
                    path,
                    &cluster_id,
                    &mut inventory.mutating_webhooks,
                    name.clone(),
                    hooks,
                )?;
            }
            // Other kinds (Nodes, Services, other ConfigMaps...) are valid input the scan does not need.
            _ => {}
        }
        Ok(())
    }
}

/// The names of an object the loader keeps, checked as Kubernetes checks them: a namespace is a
/// DNS-1123 label; a service account, workload or pod name a DNS-1123 subdomain; an RBAC binding's
/// name a path segment. Kinds the tool does not read are not checked (nor kept).
fn check_names(path: &Path, kind: &str, namespace: &str, name: &str) -> Result<(), InventoryError> {
    use crate::names;
    let checked = match kind {
        "Namespace" => names::namespace(name).map(|_| ()),
        "ClusterRoleBinding" | "MutatingWebhookConfiguration" => {
            names::path_segment("name", name).map(|_| ())
        }
        "RoleBinding" => names::namespace(namespace)
            .and_then(|_| names::path_segment("name", name))
            .map(|_| ()),
        "ServiceAccount" | "ConfigMap" => names::namespace(namespace)
            .and_then(|_| names::subdomain("name", name))
            .map(|_| ()),
        _ if WorkloadKind::from_kind(kind).is_some() => names::namespace(namespace)
            .and_then(|_| names::subdomain("name", name))
            .map(|_| ()),
        _ => Ok(()),
    };
    checked.map_err(|e| InventoryError::Invalid {
        path: path.to_path_buf(),
        message: format!("{kind} {namespace:?}/{name:?}: {e}; refused, as Kubernetes refuses it"),
        source: Some(Box::new(e)),
    })
}
