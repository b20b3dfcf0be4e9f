//! Pod → owning workload resolution: every running pod is counted under the top-level workload
//! that controls it (a ReplicaSet's Deployment, a Job's CronJob), workloads without pods are
//! added, and the legacy agents' own workloads are left out.

use std::collections::{BTreeMap, BTreeSet};

use crate::inventory::kube::{ObjectMeta, PodSpec};
use crate::inventory::rollout_hold::RolloutHold;
use crate::inventory::{Inventory, Workload, WorkloadKey, WorkloadKind};
use crate::legacy::LegacyAgent;

use super::model::{ScannedWorkload, Usage};

/// A workload as the scanner sees it: its controller's metadata and pod template, or for a pod
/// without a known controller, the pod's own.
pub(super) struct Candidate<'a> {
    pub(super) key: WorkloadKey,
    pub(super) metadata: &'a ObjectMeta,
    pub(super) template_annotations: &'a crate::inventory::kube::StringMap,
    pub(super) spec: &'a PodSpec,
    pub(super) pods: usize,
    /// For a pod whose owner is not a workload kind this tool knows (e.g. an Argo Rollout).
    pub(super) foreign_owner: Option<String>,
    /// What keeps a template change from rolling out to the workload's pods.
    pub(super) hold: Option<RolloutHold>,
}

impl<'a> Candidate<'a> {
    /// The workload `key` as its controller, in the source, describes it; its pods not counted yet.
    fn controller(key: WorkloadKey, workload: &'a Workload) -> Candidate<'a> {
        Candidate {
            key,
            metadata: &workload.metadata,
            template_annotations: &workload.template.metadata.annotations,
            spec: &workload.template.spec,
            pods: 0,
            foreign_owner: None,
            hold: workload.update.hold(workload.key.kind),
        }
    }

    /// The workload as the scan reports it, with `usage`.
    pub(super) fn scanned(&self, usage: Option<Usage>) -> ScannedWorkload {
        ScannedWorkload {
            namespace: self.key.namespace.clone(),
            kind: self.key.kind,
            name: self.key.name.clone(),
            service_account: self.spec.service_account().to_string(),
            usage,
        }
    }
}

/// Resolves every pod to the workload that owns it, and adds workloads with no running pods.
pub(super) fn candidates<'a>(
    inventory: &'a Inventory,
    agents: &[LegacyAgent],
) -> Vec<Candidate<'a>> {
    let agent_workloads: BTreeSet<&WorkloadKey> = agents.iter().map(|a| &a.workload).collect();
    let mut by_key: BTreeMap<WorkloadKey, Candidate<'a>> = BTreeMap::new();
    for pod in inventory.pods.iter().filter(|p| !p.is_finished()) {
        let (key, foreign_owner) = owning_workload(inventory, pod);
        let entry =
            by_key
                .entry(key.clone())
                .or_insert_with(|| match inventory.workloads.get(&key) {
                    Some(workload) => Candidate::controller(key, workload),
                    // The controller is not in the source: the pod speaks for it.
                    None => Candidate {
                        key,
                        metadata: &pod.metadata,
                        template_annotations: &pod.metadata.annotations,
                        spec: &pod.spec,
                        pods: 0,
                        foreign_owner,
                        hold: None,
                    },
                });
        entry.pods += 1;
    }
    for workload in inventory.workloads.values() {
        if is_top_level(inventory, &workload.key) && !by_key.contains_key(&workload.key) {
            by_key.insert(
                workload.key.clone(),
                Candidate::controller(workload.key.clone(), workload),
            );
        }
    }
    by_key
        .into_values()
        .filter(|c| !agent_workloads.contains(&c.key))
        .collect()
}

/// ReplicaSets under a Deployment and Jobs under a CronJob are reported as their parent.
fn is_top_level(inventory: &Inventory, key: &WorkloadKey) -> bool {
    key.kind.parent_kind().is_none() || parent(inventory, key).is_none()
}

fn parent(inventory: &Inventory, key: &WorkloadKey) -> Option<WorkloadKey> {
    let parent_kind = key.kind.parent_kind()?;
    let in_namespace = |name: &str| WorkloadKey {
        namespace: key.namespace.clone(),
        kind: parent_kind,
        name: name.to_string(),
    };
    if let Some(workload) = inventory.workloads.get(key) {
        return workload
            .metadata
            .owner_references
            .iter()
            .find(|o| o.kind == parent_kind.as_str())
            .map(|o| in_namespace(&o.name));
    }
    // Not in the source: infer from the naming convention (`<deployment>-<hash>`, `<cronjob>-<n>`).
    let (base, suffix) = key.name.rsplit_once('-')?;
    let looks_generated = match key.kind {
        WorkloadKind::Job => suffix.bytes().all(|b| b.is_ascii_digit()),
        _ => suffix.bytes().all(|b| b.is_ascii_alphanumeric()),
    };
    let candidate = in_namespace(base);
    (looks_generated && inventory.workloads.contains_key(&candidate)).then_some(candidate)
}

fn owning_workload(
    inventory: &Inventory,
    pod: &crate::inventory::Pod,
) -> (WorkloadKey, Option<String>) {
    let owners = &pod.metadata.owner_references;
    let owner = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or(owners.first());
    let own = WorkloadKey {
        namespace: pod.namespace.clone(),
        kind: WorkloadKind::Pod,
        name: pod.metadata.name.clone(),
    };
    let Some(owner) = owner else {
        return (own, None);
    };
    let Some(kind) = WorkloadKind::from_kind(&owner.kind).filter(|k| *k != WorkloadKind::Pod)
    else {
        return (own, Some(format!("{}/{}", owner.kind, owner.name)));
    };
    let key = WorkloadKey {
        namespace: pod.namespace.clone(),
        kind,
        name: owner.name.clone(),
    };
    (parent(inventory, &key).unwrap_or(key), None)
}
