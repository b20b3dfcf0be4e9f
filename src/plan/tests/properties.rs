//! The binding rules as properties, on random worlds (also driven by the apply engine's tests).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::scan::{IRSA_ANNOTATION, scan};

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// Per namespace: 0 no policy, 1 `.*`, 2 only r0 and r1.
    policies: Vec<u8>,
    /// Per role r0..r3: exists, trusts kiam.
    roles: Vec<(bool, bool)>,
    /// (namespace, account) pairs annotated with an IRSA role already.
    annotated: Vec<(usize, usize)>,
    /// kind, namespace, account, role (4 = none, 5 = a role name that never exists).
    workloads: Vec<(usize, usize, usize, usize)>,
}

pub(crate) fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec(0u8..3, 1..4),
        prop::collection::vec((any::<bool>(), prop::bool::weighted(0.8)), 4),
        prop::collection::vec((0usize..3, 0usize..3), 0..3),
        prop::collection::vec((0usize..5, 0usize..3, 0usize..3, 0usize..6), 0..12),
    )
        .prop_map(|(policies, roles, annotated, workloads)| Spec {
            policies,
            roles,
            annotated,
            workloads,
        })
}

pub(crate) fn build(spec: &Spec) -> World {
    let mut world = World::new();
    for (i, policy) in spec.policies.iter().enumerate() {
        let name = format!("ns{i}");
        match policy {
            0 => world.namespace_without_policy(&name),
            1 => world.namespace(&name, ".*"),
            _ => world.namespace(&name, "arn:aws:iam::111122223333:role/r[01]"),
        };
        for account in 0..3 {
            let annotated = spec.annotated.contains(&(i, account)).then(|| arn("irsa"));
            world.service_account(&name, &format!("sa{account}"), annotated.as_deref());
        }
    }
    for (i, (exists, trusts)) in spec.roles.iter().enumerate() {
        if *exists {
            world.role(&format!("r{i}"), *trusts, 0);
        }
    }
    let kinds = ["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"];
    for (i, (kind, ns, account, role)) in spec.workloads.iter().enumerate() {
        let ns = ns % spec.policies.len();
        let role = match role {
            4 => None,
            5 => Some("never".to_string()),
            r => Some(format!("r{r}")),
        };
        world.workload(
            kinds[*kind],
            &format!("ns{ns}"),
            &format!("w{i}"),
            &format!("sa{account}"),
            role.as_deref(),
        );
    }
    world
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_binding_grants_a_role_the_legacy_system_did_not(spec in spec()) {
        let inventory = build(&spec).inventory();
        let scanned = scan(&inventory);
        let plan = plan(&inventory, "p", &Settings::default()).unwrap();
        let today: BTreeMap<(String, String), Option<String>> = scanned
            .usages()
            .map(|(w, u)| ((w.namespace.clone(), w.name.clone()), u.legacy.as_ref().filter(|_| u.works_today).and_then(|l| l.arn.as_ref().map(|a| a.to_string()))))
            .collect();
        let role_today = |ns: &str, name: &str| today.get(&(ns.to_string(), name.to_string())).cloned().flatten();
        let mut seen = std::collections::BTreeSet::new();
        for binding in &plan.bindings {
            prop_assert!(seen.insert((binding.namespace.clone(), binding.service_account.clone())), "two bindings for one account");
            // Every workload moved had exactly this role through the legacy agent today.
            for workload in &binding.workloads {
                prop_assert_eq!(role_today(&binding.namespace, &workload.name), Some(binding.role_arn.to_string()));
            }
            match binding.service_account_action {
                ServiceAccountAction::Reuse => {
                    // A reused account serves no workload with another role or none.
                    for user in scanned.workloads.iter().filter(|w| w.namespace == binding.namespace && w.service_account == binding.service_account) {
                        prop_assert_eq!(role_today(&user.namespace, &user.name), Some(binding.role_arn.to_string()), "user {}", user.name);
                    }
                    let account = &inventory.service_accounts[&(binding.namespace.clone(), binding.service_account.clone())];
                    prop_assert!(!account.metadata.annotations.contains_key(IRSA_ANNOTATION), "annotated account overwritten");
                }
                ServiceAccountAction::Keep => {
                    // Kept only when it already carries exactly this role; nothing writes to it.
                    let account = &inventory.service_accounts[&(binding.namespace.clone(), binding.service_account.clone())];
                    prop_assert_eq!(account.metadata.annotations.get(IRSA_ANNOTATION).map(String::as_str), Some(binding.role_arn.as_str()));
                    let target = Target::ServiceAccount { namespace: binding.namespace.clone(), name: binding.service_account.clone() };
                    prop_assert!(plan.steps.iter().all(|s| s.target != target), "a kept account is written");
                }
                ServiceAccountAction::Create => {
                    prop_assert!(!inventory.service_accounts.contains_key(&(binding.namespace.clone(), binding.service_account.clone())));
                    prop_assert!(crate::names::is_dns1123_label(&binding.service_account));
                }
            }
        }
        // Every subject a trust step adds belongs to a binding of that role.
        for step in plan.steps.iter().filter(|s| s.kind == StepKind::UpdateRoleTrust) {
            let Target::Role { arn: role, .. } = &step.target else { unreachable!() };
            let text = serde_json::to_string(&step.after).unwrap();
            prop_assert!(!text.contains("StringLike") && !text.contains(":*\""));
            for statement in step.after.value()["Statement"].as_array().unwrap() {
                for sub in super::subjects_of(statement) {
                    let (ns, account) = sub.trim_start_matches("system:serviceaccount:").split_once(':').unwrap();
                    prop_assert!(plan.bindings.iter().any(|b| &b.role_arn == role && b.namespace == ns && b.service_account == account), "{} trusts {}", role, sub);
                }
            }
        }
        // Nothing annotates an account that already had a role.
        for step in plan.steps.iter().filter(|s| s.kind == StepKind::AnnotateServiceAccount) {
            let Target::ServiceAccount { namespace, name } = &step.target else { unreachable!() };
            prop_assert!(!inventory.service_accounts[&(namespace.clone(), name.clone())].metadata.annotations.contains_key(IRSA_ANNOTATION));
        }
    }
}
