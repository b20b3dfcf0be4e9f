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
fn the_digest_is_of_the_plan_without_its_generator_every_other_field_included() {
    // The digest serializes a borrowed view of the plan: a field added to the plan and not to
    // the view would be left out of it, and this would fail.
    let inventory = crate::inventory::demo::inventory().unwrap();
    let mut plan = plan(&inventory, "demo", &Settings::default()).unwrap();
    plan.settings.iac_role_tags =
        vec![crate::ownership::IacRoleTag::try_from("team".to_string()).unwrap()];
    assert!(!plan.generator.is_empty() && !plan.skipped.is_empty() && !plan.findings.is_empty());
    use sha2::{Digest, Sha256};
    let without_generator = Plan {
        generator: String::new(),
        ..plan.clone()
    };
    let expected = Sha256::digest(serde_json::to_vec(&without_generator).unwrap());
    assert_eq!(plan.digest(), format!("sha256:{expected:x}"));
}

#[test]
fn a_plan_needs_the_cluster_issuer() {
    let inventory = Inventory::default();
    assert!(matches!(
        plan(&inventory, "x", &Settings::default()),
        Err(PlanError::ClusterUnknown)
    ));
}
