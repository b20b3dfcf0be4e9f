//! The plan as a whole: deterministic, and refused without the cluster's issuer.

use super::*;
use crate::inventory::Inventory;

#[test]
fn plans_are_deterministic_and_step_ids_survive_replanning() {
    let mut world = one_workload();
    let first = serde_json::to_string(&world.plan()).unwrap();
    assert_eq!(first, serde_json::to_string(&world.plan()).unwrap());
    let ids: Vec<String> = world.plan().steps.into_iter().map(|s| s.id).collect();
    world
        .namespace("other", ".*")
        .service_account("other", "x", None)
        .workload("Deployment", "other", "x", "x", Some("x"))
        .role("x", true, 0);
    let replanned: Vec<String> = world.plan().steps.into_iter().map(|s| s.id).collect();
    for id in ids
        .iter()
        .filter(|id| !id.starts_with("remove-assume-role-grant"))
    {
        assert!(replanned.contains(id), "{id} disappeared on re-planning");
    }
}

#[test]
fn a_plan_needs_the_cluster_issuer() {
    let inventory = Inventory::default();
    assert!(matches!(
        plan(&inventory, "x", &Settings::default()),
        Err(PlanError::ClusterUnknown)
    ));
}
