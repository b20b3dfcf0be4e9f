//! Binding and trust rules, on small inventories built as snapshot files.

use serde_json::{Value, json};

use super::*;
use crate::inventory::snapshot::{SnapshotFile, load_files};

const ACCOUNT: &str = "111122223333";
const ISSUER: &str = "oidc.eks.eu-west-1.amazonaws.com/id/TEST";
const KIAM: &str = "arn:aws:iam::111122223333:role/kiam-server";

/// A kiam cluster described as the objects `kubectl`/`aws` would print.
pub(crate) struct World {
    kubernetes: Vec<Value>,
    roles: Vec<Value>,
    other_account_roles: Vec<Value>,
    providers: Vec<String>,
}

pub(crate) fn arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

impl World {
    pub(crate) fn new() -> World {
        let server = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kiam-server", "namespace": "kube-system"},
            "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "kiam", "image": "quay.io/uswitch/kiam:v4.0",
                "args": ["server", format!("--role-base-arn=arn:aws:iam::{ACCOUNT}:role/"), "--assume-role-arn=kiam-server"]}]}}}});
        let mut world = World {
            kubernetes: vec![server],
            roles: Vec::new(),
            other_account_roles: Vec::new(),
            providers: Vec::new(),
        };
        world.kubernetes.push(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "pod-identity-webhook"}, "webhooks": [{"name": "iam-for-pods.amazonaws.com"}]}));
        world.roles.push(json!({"RoleName": "kiam-server", "Path": "/", "Arn": KIAM,
            "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": arn("node")}, "Action": "sts:AssumeRole"}]},
            "RolePolicyList": [{"PolicyName": "assume", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}}]}));
        world
    }

    pub(crate) fn namespace(&mut self, name: &str, permitted: &str) -> &mut World {
        self.kubernetes.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "annotations": {"iam.amazonaws.com/permitted": permitted}}}));
        self
    }

    pub(crate) fn namespace_without_policy(&mut self, name: &str) -> &mut World {
        self.kubernetes
            .push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
        self
    }

    pub(crate) fn service_account(
        &mut self,
        namespace: &str,
        name: &str,
        role_arn: Option<&str>,
    ) -> &mut World {
        let mut account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace},
            "imagePullSecrets": [{"name": "registry"}], "automountServiceAccountToken": false});
        if let Some(role) = role_arn {
            account["metadata"]["annotations"] = json!({"eks.amazonaws.com/role-arn": role});
        }
        self.kubernetes.push(account);
        self
    }

    pub(crate) fn workload(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
        account: &str,
        role: Option<&str>,
    ) -> &mut World {
        let annotations = match role {
            Some(role) => json!({"iam.amazonaws.com/role": role}),
            None => json!({}),
        };
        let template = json!({"metadata": {"annotations": annotations}, "spec": {"serviceAccountName": account, "containers": [{"name": "c"}]}});
        let spec = match kind {
            "CronJob" => json!({"jobTemplate": {"spec": {"template": template}}}),
            _ => json!({"template": template}),
        };
        let api = if kind == "CronJob" || kind == "Job" {
            "batch/v1"
        } else {
            "apps/v1"
        };
        self.kubernetes.push(json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}));
        self
    }

    /// Merges `fields` into the spec of the workload added last.
    pub(crate) fn with_spec(&mut self, fields: Value) -> &mut World {
        let spec = &mut self.kubernetes.last_mut().expect("a workload was added")["spec"];
        if let (Some(spec), Value::Object(fields)) = (spec.as_object_mut(), fields) {
            spec.extend(fields);
        }
        self
    }

    pub(crate) fn role_binding(
        &mut self,
        namespace: &str,
        name: &str,
        account: &str,
    ) -> &mut World {
        self.kubernetes.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": account}]}));
        self
    }

    /// A role trusting kiam's server role, plus `padding` extra statements to grow its trust policy.
    pub(crate) fn role(&mut self, name: &str, trusts_kiam: bool, padding: usize) -> &mut World {
        let mut statements = vec![
            json!({"Effect": "Allow", "Principal": {"AWS": if trusts_kiam { KIAM.to_string() } else { arn("other") }}, "Action": "sts:AssumeRole"}),
        ];
        for i in 0..padding {
            statements.push(json!({"Effect": "Allow", "Principal": {"AWS": arn(&format!("ci-runner-{i:04}"))}, "Action": "sts:AssumeRole"}));
        }
        self.roles.push(json!({"RoleName": name, "Path": "/", "Arn": arn(name), "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": statements}}));
        self
    }

    /// Replaces the kiam server role's inline policies (by default one granting sts:AssumeRole
    /// on `*`).
    pub(crate) fn kiam_server_policies(&mut self, policies: Value) -> &mut World {
        let server = self
            .roles
            .iter_mut()
            .find(|r| r["Arn"] == KIAM)
            .expect("made by new");
        server["RolePolicyList"] = policies;
        self
    }

    pub(crate) fn foreign_role(&mut self, arn: &str) -> &mut World {
        self.other_account_roles.push(json!({"RoleName": "x", "Path": "/", "Arn": arn,
            "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": KIAM}, "Action": "sts:AssumeRole"}]}}));
        self
    }

    pub(crate) fn provider(&mut self, account: &str) -> &mut World {
        self.providers
            .push(format!("arn:aws:iam::{account}:oidc-provider/{ISSUER}"));
        self
    }

    pub(crate) fn inventory(&self) -> Inventory {
        let mut files = vec![
            (
                "k8s.json",
                json!({"apiVersion": "v1", "kind": "List", "items": self.kubernetes}),
            ),
            (
                "iam.json",
                json!({"RoleDetailList": self.roles, "Policies": []}),
            ),
            (
                "oidc.json",
                json!({"OpenIDConnectProviderList": self.providers.iter().map(|a| json!({"Arn": a})).collect::<Vec<_>>()}),
            ),
            (
                "eks.json",
                json!({"cluster": {"name": "test", "arn": format!("arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/test"), "version": "1.29",
                "identity": {"oidc": {"issuer": format!("https://{ISSUER}")}}}}),
            ),
        ];
        if !self.other_account_roles.is_empty() {
            files.push((
                "other.json",
                json!({"RoleDetailList": self.other_account_roles, "Policies": []}),
            ));
        }
        let files: Vec<SnapshotFile<'_>> = files
            .into_iter()
            .map(|(name, value)| SnapshotFile {
                path: name.into(),
                text: value.to_string().into(),
            })
            .collect();
        load_files(&files).expect("test inventory loads")
    }

    pub(crate) fn plan(&self) -> Plan {
        plan(&self.inventory(), "test", &Settings::default()).expect("plans")
    }
}

/// One workload on role `api`, with the kiam server's inline `policies`.
fn one_workload_with_kiam_policies(policies: Value) -> World {
    let mut world = World::new();
    world
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some("api"))
        .role("api", true, 0)
        .kiam_server_policies(policies);
    world
}

/// [`one_workload_with_kiam_policies`] whose policy `assume` grants exactly role `api`.
fn one_workload_with_a_kiam_grant() -> World {
    one_workload_with_kiam_policies(
        json!([{"PolicyName": "assume", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("api")}]}}]),
    )
}

fn binding<'p>(plan: &'p Plan, namespace: &str, account: &str) -> &'p Binding {
    plan.bindings
        .iter()
        .find(|b| b.namespace == namespace && b.service_account == account)
        .unwrap_or_else(|| panic!("no binding {namespace}/{account} in {:#?}", plan.bindings))
}

fn step<'p>(plan: &'p Plan, id: &str) -> &'p Step {
    plan.steps.iter().find(|s| s.id == id).unwrap_or_else(|| {
        panic!(
            "no step {id}; have {:?}",
            plan.steps.iter().map(|s| &s.id).collect::<Vec<_>>()
        )
    })
}

fn skipped(plan: &Plan, name: &str) -> Option<Code> {
    plan.skipped
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.reason)
}

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
    assert_eq!(b.role_arn, arn("api"));
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
    assert!(names.iter().all(|n| naming::is_valid(n)), "{names:?}");
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

/// Regression (issue 15): `PutRolePolicy`/`DeleteRolePolicy` were documented on every role in
/// the plan instead of the node and kiam-server roles.
#[test]
fn the_plans_iam_policy_writes_inline_policies_of_the_legacy_roles_only() {
    let plan = one_workload_with_a_kiam_grant().plan();
    let policies = permissions::aws_apply_policies(&plan);
    let statements = policies[ACCOUNT]["Statement"].as_array().unwrap();
    let legacy = statements
        .iter()
        .find(|s| s["Sid"] == "LegacyGrants")
        .expect("the grants' removal is planned");
    assert_eq!(
        legacy["Action"],
        json!([
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy"
        ])
    );
    assert_eq!(legacy["Resource"], json!([KIAM]));
    assert!(
        statements
            .iter()
            .filter(|s| s["Sid"] != "LegacyGrants")
            .flat_map(|s| s["Action"].as_array().unwrap())
            .all(|a| !matches!(
                a.as_str(),
                Some("iam:GetRolePolicy" | "iam:PutRolePolicy" | "iam:DeleteRolePolicy")
            )),
        "{statements:?}"
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

#[test]
fn trust_statements_are_exact_and_merged_per_role() {
    let plan = World::new()
        .namespace("a", ".*")
        .namespace("b", ".*")
        .service_account("a", "x", None)
        .service_account("b", "y", None)
        .workload("Deployment", "a", "x", "x", Some("shared"))
        .workload("Deployment", "b", "y", "y", Some("shared"))
        .role("shared", true, 0)
        .plan();
    let trust = step(&plan, &format!("update-role-trust:{}", arn("shared")));
    let after = trust.after.value();
    let statements = after["Statement"].as_array().unwrap();
    assert_eq!(
        statements.len(),
        2,
        "one statement for both service accounts"
    );
    assert_eq!(
        statements[0],
        trust.before.value()["Statement"][0],
        "the legacy statement is kept as it was"
    );
    let equals = &statements[1]["Condition"]["StringEquals"];
    assert_eq!(
        equals[format!("{ISSUER}:sub")],
        json!(["system:serviceaccount:a:x", "system:serviceaccount:b:y"])
    );
    assert_eq!(equals[format!("{ISSUER}:aud")], "sts.amazonaws.com");
    assert_eq!(
        statements[1]["Condition"].as_object().unwrap().len(),
        1,
        "StringEquals only"
    );
    let remove = step(&plan, &format!("remove-legacy-trust:{}", arn("shared")));
    assert_eq!(
        remove.before, trust.after,
        "decommission starts from prepare's result"
    );
    assert_eq!(
        remove.after.value()["Statement"]
            .as_array()
            .unwrap()
            .as_slice(),
        &statements[1..]
    );
}

#[test]
fn an_oversized_trust_policy_is_a_finding_never_a_wildcard() {
    let world = {
        let mut w = World::new();
        w.namespace("shop", ".*")
            .service_account("shop", "api", None)
            .workload("Deployment", "shop", "api", "api", Some("big"))
            .role("big", true, 16);
        w
    };
    let inventory = world.inventory();
    let before_len = trust::length(&inventory.iam.roles[&arn("big")].trust_policy());
    assert!(
        before_len < 2048 && before_len + 450 > 2048,
        "fixture sized to cross the limit: {before_len}"
    );
    let plan = plan(&inventory, "test", &Settings::default()).unwrap();
    assert!(plan.bindings.is_empty());
    assert_eq!(skipped(&plan, "api"), Some(Code::TrustPolicyTooLarge));
    let finding = plan
        .findings
        .iter()
        .find(|f| f.code == Code::TrustPolicyTooLarge)
        .expect("finding");
    assert!(
        finding.message.contains("2048") && finding.message.contains(&before_len.to_string()),
        "{}",
        finding.message
    );
    assert!(
        !serde_json::to_string(&plan.steps)
            .unwrap()
            .contains("StringLike")
    );
    // A raised quota lets it through.
    let raised = super::plan(
        &inventory,
        "test",
        &Settings {
            trust_policy_limit: 4096,
        },
    )
    .unwrap();
    assert_eq!(raised.bindings.len(), 1);
    assert!(matches!(
        super::plan(
            &inventory,
            "test",
            &Settings {
                trust_policy_limit: 4097
            }
        ),
        Err(PlanError::LimitOutOfRange(4097))
    ));
}

#[test]
fn a_missing_provider_is_created_and_an_existing_one_is_not() {
    let mut world = World::new();
    world
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some("api"))
        .role("api", true, 0);
    let plan = world.plan();
    let create = step(
        &plan,
        &format!("create-oidc-provider:arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"),
    );
    assert_eq!(
        create.after.value()["ClientIDList"],
        json!(["sts.amazonaws.com"])
    );
    assert_eq!(create.phase, Phase::Prepare);
    world.provider(ACCOUNT);
    assert!(
        world
            .plan()
            .steps
            .iter()
            .all(|s| s.kind != StepKind::CreateOidcProvider)
    );
}

#[test]
fn roles_in_another_account_are_changed_there_with_its_own_provider() {
    let foreign = "arn:aws:iam::444455556666:role/reports";
    let plan = World::new()
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some(foreign))
        .foreign_role(foreign)
        .provider(ACCOUNT)
        .plan();
    let trust = step(&plan, &format!("update-role-trust:{foreign}"));
    assert_eq!(trust.target.account(), Some("444455556666"));
    let federated = &trust.after.value()["Statement"][1]["Principal"]["Federated"];
    assert_eq!(
        federated,
        &json!(format!("arn:aws:iam::444455556666:oidc-provider/{ISSUER}"))
    );
    step(
        &plan,
        &format!("create-oidc-provider:arn:aws:iam::444455556666:oidc-provider/{ISSUER}"),
    );
    let note = plan
        .accounts
        .iter()
        .find(|a| a.account == "444455556666")
        .expect("account note");
    assert!(
        note.credentials.contains("--account-profile 444455556666="),
        "{}",
        note.credentials
    );
}

#[test]
fn grants_are_removed_only_when_nothing_still_needs_the_legacy_path() {
    let mut world = one_workload_with_a_kiam_grant();
    let plan = world.plan();
    let grant = step(&plan, &format!("remove-assume-role-grant:{KIAM}#assume"));
    assert_eq!(
        grant.after.value(),
        Value::Null,
        "the only statement goes, and the inline policy with it"
    );
    // A Job on its own service account stays on the legacy path: grants stay.
    world.service_account("shop", "batch", None).workload(
        "Job",
        "shop",
        "backfill",
        "batch",
        Some("api"),
    );
    let plan = world.plan();
    assert!(
        plan.steps
            .iter()
            .all(|s| s.kind != StepKind::RemoveAssumeRoleGrant)
    );
    assert!(
        plan.steps
            .iter()
            .all(|s| s.kind != StepKind::RemoveLegacyTrust),
        "role api is still used by the Job"
    );
    assert!(
        plan.decommission
            .kept
            .iter()
            .any(|k| k.contains("shop/Job/backfill")),
        "{:?}",
        plan.decommission.kept
    );
}

#[test]
fn plans_are_deterministic_and_step_ids_survive_replanning() {
    let mut world = World::new();
    world
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some("api"))
        .role("api", true, 0);
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

pub(crate) mod properties {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::scan::scan;

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
                .usages
                .iter()
                .map(|u| ((u.namespace.clone(), u.name.clone()), u.legacy.as_ref().filter(|_| u.works_today).and_then(|l| l.arn.clone())))
                .collect();
            let role_today = |ns: &str, name: &str| today.get(&(ns.to_string(), name.to_string())).cloned().flatten();
            let mut seen = std::collections::BTreeSet::new();
            for binding in &plan.bindings {
                prop_assert!(seen.insert((binding.namespace.clone(), binding.service_account.clone())), "two bindings for one account");
                // Every workload moved had exactly this role through the legacy agent today.
                for workload in &binding.workloads {
                    prop_assert_eq!(role_today(&binding.namespace, &workload.name), Some(binding.role_arn.clone()));
                }
                match binding.service_account_action {
                    ServiceAccountAction::Reuse => {
                        // A reused account serves no workload with another role or none.
                        for user in scanned.workloads.iter().filter(|w| w.namespace == binding.namespace && w.service_account == binding.service_account) {
                            prop_assert_eq!(role_today(&user.namespace, &user.name), Some(binding.role_arn.clone()), "user {}", user.name);
                        }
                        let account = &inventory.service_accounts[&(binding.namespace.clone(), binding.service_account.clone())];
                        prop_assert!(!account.metadata.annotations.contains_key(IRSA_ANNOTATION), "annotated account overwritten");
                    }
                    ServiceAccountAction::Keep => {
                        // Kept only when it already carries exactly this role; nothing writes to it.
                        let account = &inventory.service_accounts[&(binding.namespace.clone(), binding.service_account.clone())];
                        prop_assert_eq!(account.metadata.annotations.get(IRSA_ANNOTATION), Some(&binding.role_arn));
                        let target = Target::ServiceAccount { namespace: binding.namespace.clone(), name: binding.service_account.clone() };
                        prop_assert!(plan.steps.iter().all(|s| s.target != target), "a kept account is written");
                    }
                    ServiceAccountAction::Create => {
                        prop_assert!(!inventory.service_accounts.contains_key(&(binding.namespace.clone(), binding.service_account.clone())));
                        prop_assert!(naming::is_valid(&binding.service_account));
                    }
                }
            }
            // Every subject a trust step adds belongs to a binding of that role.
            for step in plan.steps.iter().filter(|s| s.kind == StepKind::UpdateRoleTrust) {
                let Target::Role { arn: role, .. } = &step.target else { unreachable!() };
                let text = serde_json::to_string(&step.after).unwrap();
                prop_assert!(!text.contains("StringLike") && !text.contains(":*\""));
                for statement in step.after.value()["Statement"].as_array().unwrap() {
                    for sub in super::super::tests::subjects_of(statement) {
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
}

/// The `:sub` values of a web-identity statement.
fn subjects_of(statement: &Value) -> Vec<String> {
    let Some(equals) = statement["Condition"]["StringEquals"].as_object() else {
        return Vec::new();
    };
    equals
        .iter()
        .filter(|(k, _)| k.ends_with(":sub"))
        .flat_map(|(_, v)| trust::strings(v))
        .collect()
}

#[test]
fn decommission_removes_only_the_legacy_paths_grants() {
    // Regression (issue 15): decommission removed sts:AssumeRole on any resource (another
    // cluster's or account's roles, `*`), deleted a conditional policy whole, and left sts:*
    // in place without a word.
    let other_cluster = "arn:aws:iam::999988887777:role/other-cluster-app";
    let world = one_workload_with_kiam_policies(json!([
        {"PolicyName": "assume", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("api")},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": other_cluster},
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "s3:GetObject"], "Resource": arn("api")},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}},
        {"PolicyName": "conditional", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("api"),
             "Condition": {"StringEquals": {"sts:ExternalId": "audit"}}}]}},
        {"PolicyName": "broad", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}},
    ]));
    let plan = world.plan();
    let grant = step(&plan, &format!("remove-assume-role-grant:{KIAM}#assume"));
    assert_eq!(
        grant.after.value(),
        json!({"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": other_cluster},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": arn("api")},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}),
        "only the grant on exactly the migrated role goes"
    );
    let grant_steps: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::RemoveAssumeRoleGrant)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(grant_steps.len(), 1, "{grant_steps:?}");
    let kept = plan.decommission.kept.join("\n");
    for expected in [
        "inline policy assume of arn:aws:iam::111122223333:role/kiam-server: statement 2 allows sts:AssumeRole on arn:aws:iam::999988887777:role/other-cluster-app",
        "statement 4 allows sts:AssumeRole on *",
        "inline policy conditional of arn:aws:iam::111122223333:role/kiam-server: statement 1 allows sts:AssumeRole under a condition",
        "inline policy broad of arn:aws:iam::111122223333:role/kiam-server: statement 1 allows sts:*",
    ] {
        assert!(
            kept.contains(expected),
            "{expected:?} not reported in:\n{kept}"
        );
    }
    assert_eq!(crate::plan::validate::check(&plan), Ok(()));
}

#[test]
fn legacy_trust_under_a_condition_is_kept_and_reported() {
    // Regression (issue 15): a kiam-server trust statement carrying an sts:ExternalId for
    // another purpose was removed with the legacy principal.
    let mut world = World::new();
    world
        .namespace("shop", ".*")
        .service_account("shop", "api", None)
        .workload("Deployment", "shop", "api", "api", Some("api"));
    world
        .roles
        .push(json!({"RoleName": "api", "Path": "/", "Arn": arn("api"),
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": KIAM}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": KIAM}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"sts:ExternalId": "audit-export"}}}]}}));
    let plan = world.plan();
    let removal = step(&plan, &format!("remove-legacy-trust:{}", arn("api")));
    let statements = removal.after.value()["Statement"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        statements
            .iter()
            .any(
                |s| s["Condition"]["StringEquals"]["sts:ExternalId"] == "audit-export"
                    && s["Principal"]["AWS"] == KIAM
            ),
        "the conditioned statement stays: {statements:?}"
    );
    assert!(
        !statements
            .iter()
            .any(|s| s["Principal"]["AWS"] == KIAM && s.get("Condition").is_none()),
        "the unconditioned legacy trust goes: {statements:?}"
    );
    assert!(
        plan.decommission
            .kept
            .iter()
            .any(|k| k.contains(&arn("api")) && k.contains("under a condition")),
        "{:?}",
        plan.decommission.kept
    );
    assert_eq!(crate::plan::validate::check(&plan), Ok(()));
}
