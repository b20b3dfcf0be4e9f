//! The scanner: inventory in, usages and findings out. Pure: no I/O.
//!
//! A *usage* is one workload that gets AWS credentials today, through kiam/kube2iam, IRSA, or
//! both. The scanner decides for each legacy usage whether it works today (the agent permits it,
//! the role exists and trusts the legacy principal), because only those may be migrated.
//!
//! One job per module: `model` (the result types), `agents` (the agent in effect), `cluster`
//! (what the source and the cluster lack), `workloads` (pod → workload), `usage` and
//! `usage_findings`, `shared_accounts`, `node_roles`; this file runs them in order.

mod agents;
mod cluster;
mod model;
mod node_roles;
mod shared_accounts;
mod usage;
mod usage_findings;
mod workloads;

pub use agents::LegacyAnnotations;
pub use model::{
    IRSA_ANNOTATION, LegacyRole, NodeRole, RoleSource, SCAN_SCHEMA, Scan, ScannedWorkload, Status,
    Summary, Trust, Usage,
};

use crate::inventory::Inventory;
use crate::legacy;
use agents::{agent_findings, in_effect, legacy_principals};
use cluster::{check_cluster, check_namespaces_captured, source_findings};
use node_roles::{analyse_node_roles, node_role_arns};
use shared_accounts::check_shared_service_accounts;
use usage::usage;
use usage_findings::usage_findings;
use workloads::candidates;

/// Scans `inventory`. Findings come in a fixed order (most severe first), so the same inventory
/// gives the same scan.
pub fn scan(inventory: &Inventory) -> Scan {
    let mut findings = source_findings(inventory);
    let agents = legacy::detect(inventory);
    agent_findings(&agents, &mut findings);
    let effective = in_effect(&agents);
    let node_roles = node_role_arns(inventory);
    let principals = legacy_principals(inventory, effective, &node_roles);
    check_cluster(inventory, &mut findings);

    let candidates = candidates(inventory, &agents);
    check_namespaces_captured(inventory, &candidates, &mut findings);
    let mut workloads = Vec::with_capacity(candidates.len());
    for candidate in &candidates {
        let workload = candidate.scanned(usage(inventory, effective, &principals, candidate));
        if let Some(usage) = &workload.usage {
            usage_findings(inventory, &workload, usage, candidate, &mut findings);
        }
        workloads.push(workload);
    }
    check_shared_service_accounts(inventory, effective, &candidates, &mut findings);
    let node_role_reports = analyse_node_roles(inventory, effective, &node_roles, &mut findings);

    crate::findings::sort_and_dedup(&mut findings);
    let summary = Summary::of(&workloads, &findings);
    Scan {
        schema: SCAN_SCHEMA,
        cluster: inventory.cluster.clone(),
        agents,
        legacy_principals: principals.iter().map(|(arn, _)| arn.clone()).collect(),
        workloads,
        node_roles: node_role_reports,
        findings,
        summary,
    }
}
