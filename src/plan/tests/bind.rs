//! Who moves, and to which service account.

use serde_json::json;

use super::*;
use crate::inventory::WorkloadKind;
use crate::inventory::snapshot::{SnapshotFile, load_files};
use crate::names::is_dns1123_label;
use crate::plan::document::WorkloadRef;

#[test]
fn a_service_account_whose_users_all_share_one_role_is_annotated_in_place() {
    let plan = World::new()
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some("api"))
        .workload("CronJob", "shop", "api-sync", "api", Some("api"))
        .role("api", true, 0)
        .plan();
    let b = binding(&plan, "shop", "api");
    assert_eq!(b.service_account_action, ServiceAccountAction::Reuse);
    assert_eq!(b.role_arn.as_str(), arn("api"));
    assert_eq!(b.workloads.len(), 2);
    let annotate = step(&plan, "annotate-service-account:shop/ServiceAccount/api");
    assert_eq!(
        annotate.after.value()["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        arn("api")
    );
    step(&plan, "restart-workload:shop/Deployment/api");
    // A CronJob's next Jobs pick up the annotation; there is nothing to restart.
    assert!(
        plan.steps
            .iter()
            .all(|s| s.id != "restart-workload:shop/CronJob/api-sync")
    );
    step(&plan, "remove-legacy-annotation:shop/CronJob/api-sync");
}

#[test]
fn users_of_different_roles_get_dedicated_accounts_with_copied_settings_and_rbac() {
    let plan = World::new()
        .namespace("shop", ".*")
        .service_account("shop", "default", None)
        .workload("Deployment", "shop", "web", "default", Some("web"))
        .workload("Deployment", "shop", "worker", "default", Some("worker"))
        .role_binding("shop", "readers", "default")
        .role("web", true, 0)
        .role("worker", true, 0)
        .plan();
    for (role, workload) in [("web", "web"), ("worker", "worker")] {
        let name = format!("default-{role}");
        let b = binding(&plan, "shop", &name);
        assert_eq!(b.service_account_action, ServiceAccountAction::Create);
        assert_eq!(b.from_service_account, "default");
        assert_eq!(
            b.workloads,
            vec![WorkloadRef {
                kind: WorkloadKind::Deployment,
                name: workload.into()
            }]
        );
        let create = step(
            &plan,
            &format!("create-service-account:shop/ServiceAccount/{name}"),
        );
        assert_eq!(
            create.after.value()["imagePullSecrets"],
            json!([{"name": "registry"}])
        );
        assert_eq!(
            create.after.value()["automountServiceAccountToken"],
            json!(false)
        );
        let copy = step(
            &plan,
            &format!("copy-rbac-binding:shop/RoleBinding/readers-{name}"),
        );
        assert_eq!(
            copy.after.value()["subjects"],
            json!([{"kind": "ServiceAccount", "name": name, "namespace": "shop"}])
        );
        assert_eq!(copy.after.value()["roleRef"]["name"], "reader");
        let switch = step(
            &plan,
            &format!("switch-service-account:shop/Deployment/{workload}"),
        );
        assert_eq!(
            switch.before.value(),
            json!({"spec": {"template": {"spec": {"serviceAccountName": "default"}}}})
        );
        // The server writes the deprecated alias back equal to the name: the step says so.
        assert_eq!(
            switch.after.value(),
            json!({"spec": {"template": {"spec": {"serviceAccountName": name, "serviceAccount": name}}}})
        );
    }
    assert!(
        plan.bindings.iter().all(|b| b.service_account != "default"),
        "the shared account is never annotated"
    );
    assert!(
        plan.findings
            .iter()
            .any(|f| f.code == Code::SharedServiceAccount)
    );
}

#[test]
fn a_user_without_a_role_keeps_the_shared_account_unannotated() {
    let plan = World::new()
        .namespace("shop", ".*")
        .service_account("shop", "default", None)
        .workload("Deployment", "shop", "web", "default", Some("web"))
        .workload("Deployment", "shop", "static", "default", None)
        .role("web", true, 0)
        .plan();
    assert_eq!(
        binding(&plan, "shop", "default-web").service_account_action,
        ServiceAccountAction::Create
    );
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| s.kind == StepKind::AnnotateServiceAccount)
    );
}

#[test]
fn dedicated_names_never_collide_with_existing_accounts() {
    let plan = World::new()
        .namespace("shop", ".*")
        .service_account("shop", "default", None)
        .service_account("shop", "default-web", None)
        .workload("Deployment", "shop", "web", "default", Some("web"))
        .workload("Deployment", "shop", "other", "default", Some("other"))
        .role("web", true, 0)
        .role("other", true, 0)
        .plan();
    let names: Vec<&str> = plan
        .bindings
        .iter()
        .map(|b| b.service_account.as_str())
        .collect();
    assert!(!names.contains(&"default-web"), "{names:?}");
    assert!(names.iter().all(|n| is_dns1123_label(n)), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("default-web-")),
        "{names:?}"
    );
}

#[test]
fn an_annotated_service_account_is_never_overwritten() {
    let plan = World::new()
        .namespace("shop", ".*")
        .service_account("shop", "api", Some(&arn("irsa-api")))
        .workload("Deployment", "shop", "api", "api", Some("api"))
        .role("api", true, 0)
        .plan();
    assert!(plan.bindings.is_empty());
    assert_eq!(skipped(&plan, "api"), Some(Code::AlreadyIrsa));
    assert!(
        plan.steps
            .iter()
            .all(|s| s.target.namespace() != Some("shop"))
    );
}

#[test]
fn an_account_annotated_with_the_legacy_role_is_kept_and_its_workload_leaves_the_legacy_path() {
    let plan = World::new()
        .namespace("shop", ".*")
        .service_account("shop", "api", Some(&arn("api")))
        .workload("Deployment", "shop", "api", "api", Some("api"))
        // Shares the account through IRSA alone: keeping the account changes nothing for it.
        .workload("Deployment", "shop", "irsa-only", "api", None)
        .role("api", true, 0)
        .plan();
    assert_eq!(plan.bindings.len(), 1, "{:#?}", plan.skipped);
    let binding = &plan.bindings[0];
    assert_eq!(binding.service_account_action, ServiceAccountAction::Keep);
    assert_eq!(
        binding
            .workloads
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>(),
        ["api"]
    );
    let kinds: Vec<StepKind> = plan
        .steps
        .iter()
        .filter(|s| s.target.namespace() == Some("shop"))
        .map(|s| s.kind)
        .collect();
    // No annotation to add (nor for a rollback to take away); a restart so the pods surely
    // carry the token, then the legacy annotation goes.
    assert_eq!(
        kinds,
        [StepKind::RestartWorkload, StepKind::RemoveLegacyAnnotation]
    );
    assert!(
        plan.steps
            .iter()
            .any(|s| s.kind == StepKind::RemoveLegacyTrust),
        "nothing else needs the role's legacy trust: {:#?}",
        plan.steps
    );
}

#[test]
fn only_usages_that_work_today_are_migrated() {
    let plan = World::new()
        .namespace("shop", "arn:aws:iam::111122223333:role/shop-.*")
        .service_account("shop", "a", None)
        .service_account("shop", "b", None)
        .service_account("shop", "c", None)
        .workload("Deployment", "shop", "denied", "a", Some("admin"))
        .workload(
            "Deployment",
            "shop",
            "untrusted",
            "b",
            Some("shop-untrusted"),
        )
        .workload("Deployment", "shop", "missing", "c", Some("shop-missing"))
        .role("admin", true, 0)
        .role("shop-untrusted", false, 0)
        .plan();
    assert!(plan.bindings.is_empty(), "{:#?}", plan.bindings);
    assert_eq!(skipped(&plan, "denied"), Some(Code::NamespaceNotPermitted));
    assert_eq!(skipped(&plan, "untrusted"), Some(Code::LegacyTrustMissing));
    assert_eq!(skipped(&plan, "missing"), Some(Code::RoleNotFound));
    // Nothing works through the legacy path, so nothing needs its grants; nothing else changes.
    assert!(
        plan.steps
            .iter()
            .all(|s| s.kind == StepKind::RemoveAssumeRoleGrant),
        "{:#?}",
        plan.steps
    );
}

#[test]
fn workloads_whose_rollout_is_held_stay_on_the_legacy_path_with_a_finding() {
    let mut world = World::new();
    world
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "web", "api", Some("api"))
        .workload("Deployment", "shop", "paused", "api", Some("api"))
        .with_spec(json!({"paused": true}))
        .workload("StatefulSet", "shop", "canary", "api", Some("api"))
        .with_spec(
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}),
        )
        .workload("DaemonSet", "shop", "agent", "api", Some("api"))
        .with_spec(json!({"updateStrategy": {"type": "OnDelete"}}))
        .role("api", true, 0);
    let plan = world.plan();
    for held in ["paused", "canary", "agent"] {
        assert_eq!(skipped(&plan, held), Some(Code::RolloutHeld), "{held}");
    }
    let moved: Vec<&str> = plan
        .bindings
        .iter()
        .flat_map(|b| b.workloads.iter().map(|w| w.name.as_str()))
        .collect();
    assert_eq!(moved, ["web"]);
    assert!(
        plan.steps
            .iter()
            .all(|s| s.kind != StepKind::RemoveLegacyTrust),
        "the held workloads still reach role api through kiam: {:#?}",
        plan.steps
    );
    let findings = crate::scan::scan(&world.inventory()).findings;
    let mut held: Vec<&str> = findings
        .iter()
        .filter(|f| f.code == Code::RolloutHeld)
        .map(|f| f.subject.name.as_str())
        .collect();
    held.sort();
    assert_eq!(held, ["agent", "canary", "paused"]);
    // The hold survives the migration's own snapshot, which apply recomputes the plan from.
    let rendered = crate::inventory::snapshot::render_files(&world.inventory());
    let files: Vec<SnapshotFile<'_>> = rendered
        .iter()
        .map(|(path, text)| SnapshotFile {
            path: path.into(),
            text: text.as_str().into(),
        })
        .collect();
    let reloaded = super::plan(
        &load_files(&files).expect("loads"),
        "test",
        &Settings::default(),
    )
    .expect("plans");
    assert_eq!(reloaded.skipped, plan.skipped);
    // Released, the DaemonSet is migrated.
    world.with_spec(json!({"updateStrategy": {"type": "RollingUpdate"}}));
    assert_eq!(skipped(&world.plan(), "agent"), None);
}
