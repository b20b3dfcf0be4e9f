//! The builder that turns the documents of a snapshot into an [`Inventory`]: it recognises each
//! document, adds what it holds, and finishes the inventory (kept annotations, owned templates
//! dropped, lists in name order).

use std::path::Path;

use super::origins::Origins;
use super::raw::RawObject;
use super::redact::keep_read_annotations;
use super::{InventoryError, SnapshotFile};
use crate::inventory::{Inventory, LoadWarning, WorkloadKey, parse};

/// An inventory being built, and where each of its objects came from.
#[derive(Default)]
pub(super) struct Builder {
    pub(super) inventory: Inventory,
    pub(super) origins: Origins,
}

impl Builder {
    pub(super) fn add_files(
        mut self,
        files: &[SnapshotFile<'_>],
    ) -> Result<Inventory, InventoryError> {
        for file in files {
            self.add_file(file)?;
        }
        Ok(self.finish())
    }

    pub(super) fn add_file(&mut self, file: &SnapshotFile<'_>) -> Result<(), InventoryError> {
        let path = &file.path;
        let is_json = path.extension().and_then(|e| e.to_str()) == Some("json");
        let parsed = if is_json {
            vec![parse::json(path, file.text.as_bytes())?]
        } else {
            parse::yaml(path, &file.text)?
        };
        if parsed.is_empty() {
            self.warn(path, "empty file");
        }
        for document in parsed {
            match document {
                parse::Document::Object(document) => self.add_document(path, document)?,
                parse::Document::NotAnObject(what) => self.not_an_object(path, what),
            }
        }
        Ok(())
    }

    pub(super) fn not_an_object(&mut self, path: &Path, what: &str) {
        self.warn(
            path,
            format!("{what}, not an object: not a Kubernetes object or list, nor an `aws iam`/`eks`/`cloudformation`/`cloudtrail` output this tool reads; ignored"),
        );
    }

    pub(super) fn warn(&mut self, path: &Path, message: impl Into<String>) {
        self.inventory.warnings.push(LoadWarning {
            file: path.to_path_buf(),
            message: message.into(),
        });
    }

    pub(super) fn add_document(
        &mut self,
        path: &Path,
        mut document: RawObject,
    ) -> Result<(), InventoryError> {
        let mut recognised = false;
        if let Some(roles) = document.role_detail_list.take() {
            recognised = true;
            let policies = document.policies.take().unwrap_or_default();
            let account = self.add_authorization_details(path, roles, policies)?;
            if account.is_none() {
                self.warn(
                    path,
                    "authorization details list no roles; its account is unknown",
                );
            }
        }
        if let Some(role) = document.role.take() {
            recognised = true;
            self.add_role(path, *role, false)?;
        }
        if let Some(providers) = document.oidc_providers.take() {
            recognised = true;
            let known = self.inventory.iam.oidc_providers.get_or_insert_default();
            known.extend(providers.into_iter().map(|p| p.arn));
        }
        if let Some(cluster) = document.cluster.take() {
            recognised = true;
            self.add_cluster(path, *cluster)?;
        }
        if let Some(events) = document.events.take() {
            recognised = true;
            let lookup = crate::inventory::trail::LookupEvents {
                events,
                lookup_window: document.lookup_window.take(),
            };
            self.inventory
                .trail
                .add(lookup)
                .map_err(|e| InventoryError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("{}: {}", e.field, e.message),
                    source: None,
                })?;
        }
        if let Some(roles) = document.role_last_used.take() {
            recognised = true;
            for (index, role) in roles.iter().enumerate() {
                let arn = role.arn.as_deref().ok_or_else(|| InventoryError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("RoleLastUsed[{index}].Arn: missing"),
                    source: None,
                })?;
                self.add_last_used(path, arn, role)?;
            }
        }
        if let Some(resources) = document.stack_resources.take() {
            recognised = true;
            self.add_stack_resources(path, resources)?;
        }
        if document.api_version.is_some() || document.kind.is_some() {
            recognised = true;
            let kind = document.kind.clone().unwrap_or_default();
            self.add_kubernetes(path, document, &kind, None)?;
        }
        if !recognised {
            self.warn(
                path,
                "not a Kubernetes object or list, nor an `aws iam`/`eks`/`cloudformation`/`cloudtrail` output this tool reads; ignored",
            );
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Inventory {
        keep_read_annotations(&mut self.inventory);
        // A ReplicaSet under a Deployment (a Job under a CronJob) is reported as its parent and
        // its template is never read: the parent's is. Dropping it halves what Deployments cost.
        let inventory = &mut self.inventory;
        let owned: Vec<WorkloadKey> = inventory
            .workloads
            .values()
            .filter_map(|w| {
                let parent = w.key.kind.parent_kind()?;
                let owner = w
                    .metadata
                    .owner_references
                    .iter()
                    .find(|o| o.kind == parent.as_str())?;
                let parent_key = WorkloadKey {
                    namespace: w.key.namespace.clone(),
                    kind: parent,
                    name: owner.name.clone(),
                };
                inventory
                    .workloads
                    .contains_key(&parent_key)
                    .then(|| w.key.clone())
            })
            .collect();
        for key in owned {
            if let Some(workload) = inventory.workloads.get_mut(&key) {
                workload.template = Default::default();
            }
        }
        // In name order, as scans and fingerprints need (a second copy of an object was kept
        // only when it differed, which stopped loading).
        self.inventory.pods.sort_by(|a, b| {
            (&a.namespace, &a.metadata.name).cmp(&(&b.namespace, &b.metadata.name))
        });
        self.inventory.rbac_bindings.sort_by(|a, b| {
            (&a.kind, &a.namespace, &a.metadata.name).cmp(&(
                &b.kind,
                &b.namespace,
                &b.metadata.name,
            ))
        });
        self.inventory
    }
}
