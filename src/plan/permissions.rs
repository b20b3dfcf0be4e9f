//! The least privilege of one plan: the Kubernetes ClusterRole and the IAM policies that `apply`
//! and `rollback` of exactly this plan need, every object they write named. `plan` writes them
//! into the migration directory (`permissions/`); docs/permissions.md shows the demo plan's
//! (a test holds the document to it). Pure: no I/O.
//!
//! Kubernetes cannot limit `create` by name (a create request has none when it is authorized),
//! so creates stay per resource; `patch`, `delete` and `bind` are limited by `resourceNames` to
//! the plan's targets and the roles its RBAC copies bind. `resourceNames` hold across
//! namespaces in a ClusterRole bound cluster-wide; bound with a RoleBinding, in that namespace.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Phase, Plan, StepKind, Target};
use crate::inventory::WorkloadKind;

/// The name of the apply ClusterRole, as docs/permissions.md binds it.
pub const APPLY_ROLE: &str = "irsa-migrate-apply";

/// One rule of the apply ClusterRole: a comment saying why, then the rule.
struct Rule {
    why: &'static str,
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    /// Empty: every object of the resource (only for `create`, which names cannot limit).
    names: BTreeSet<String>,
}

/// The API group and plural of a workload kind the tool patches.
fn workload_resource(kind: WorkloadKind) -> Option<(&'static str, &'static str)> {
    match kind {
        WorkloadKind::Deployment => Some(("apps", "deployments")),
        WorkloadKind::StatefulSet => Some(("apps", "statefulsets")),
        WorkloadKind::DaemonSet => Some(("apps", "daemonsets")),
        WorkloadKind::CronJob => Some(("batch", "cronjobs")),
        _ => None,
    }
}

/// The rules `plan` needs, in a fixed order; rules of nothing are left out (an empty
/// `resourceNames` would grant every object).
fn rules(plan: &Plan) -> Vec<Rule> {
    let mut created_accounts = BTreeSet::new();
    let mut annotated_accounts = BTreeSet::new();
    let mut bindings: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut bound: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut workloads: BTreeMap<(&str, &str), BTreeSet<String>> = BTreeMap::new();
    let mut dry_runs = false;
    for step in &plan.steps {
        match (&step.target, step.kind) {
            (Target::ServiceAccount { name, .. }, StepKind::CreateServiceAccount) => {
                created_accounts.insert(name.clone());
            }
            (Target::ServiceAccount { name, .. }, _) => {
                annotated_accounts.insert(name.clone());
            }
            (Target::RbacBinding { kind, name, .. }, _) => {
                let resource = if kind == "ClusterRoleBinding" {
                    "clusterrolebindings"
                } else {
                    "rolebindings"
                };
                bindings.entry(resource).or_default().insert(name.clone());
                let role = &step.after.value()["roleRef"];
                let (role_kind, role_name) = (role["kind"].as_str(), role["name"].as_str());
                if let (Some(role_kind), Some(role_name)) = (role_kind, role_name) {
                    let roles = if role_kind == "ClusterRole" {
                        "clusterroles"
                    } else {
                        "roles"
                    };
                    bound
                        .entry(roles)
                        .or_default()
                        .insert(role_name.to_string());
                }
            }
            (Target::Workload { kind, name, .. }, _) => {
                if let Some(resource) = workload_resource(*kind) {
                    workloads.entry(resource).or_default().insert(name.clone());
                }
                // Before a restart, a server-side dry run of a pod of the template
                // (Backend::await_injection), for kinds whose rollout is watched.
                dry_runs |= matches!(step.phase, Phase::Rollout | Phase::Cleanup)
                    && *kind != WorkloadKind::CronJob;
            }
            _ => {}
        }
    }
    let mut rules = Vec::new();
    let mut push = |why, group, resource, verb, names: BTreeSet<String>| {
        rules.push(Rule {
            why,
            group,
            resource,
            verb,
            names,
        });
    };
    if !created_accounts.is_empty() {
        push(
            "identity: create the dedicated service accounts",
            "",
            "serviceaccounts",
            "create",
            BTreeSet::new(),
        );
    }
    if !annotated_accounts.is_empty() {
        push(
            "identity: annotate the reused service accounts",
            "",
            "serviceaccounts",
            "patch",
            annotated_accounts,
        );
    }
    if !created_accounts.is_empty() {
        push(
            "rollback of identity: delete the accounts the tool created",
            "",
            "serviceaccounts",
            "delete",
            created_accounts,
        );
    }
    for (resource, names) in bindings {
        push(
            "identity: the copies of the shared accounts' bindings",
            "rbac.authorization.k8s.io",
            resource,
            "create",
            BTreeSet::new(),
        );
        push(
            "rollback of identity: delete the copies",
            "rbac.authorization.k8s.io",
            resource,
            "delete",
            names,
        );
    }
    for (resource, names) in bound {
        push(
            "identity: bind the copies' roles (RBAC's escalation check), these only",
            "rbac.authorization.k8s.io",
            resource,
            "bind",
            names,
        );
    }
    for ((group, resource), names) in workloads {
        push(
            "rollout, cleanup: the planned workloads' pod templates",
            group,
            resource,
            "patch",
            names,
        );
    }
    if dry_runs {
        push(
            "rollout, cleanup: server-side dry runs only (dryRun=All), nothing is created",
            "",
            "pods",
            "create",
            BTreeSet::new(),
        );
    }
    rules
}

/// A flow sequence of JSON-quoted strings (valid YAML whatever the names hold).
fn flow(items: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = items
        .into_iter()
        .map(|item| serde_json::to_string(&item).unwrap_or_default())
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// The ClusterRole `apply` and `rollback` of `plan` need on the Kubernetes side, as YAML, in
/// addition to `irsa-migrate-read`.
pub fn kubernetes_apply_role(plan: &Plan) -> String {
    let mut yaml = format!(
        "# What `irsa-migrate apply` and `rollback` of this plan write, and nothing else, beside the\n\
         # irsa-migrate-read ClusterRole (docs/permissions.md). Names hold in every namespace the\n\
         # role is bound in.\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: ClusterRole\n\
         metadata:\n  name: {APPLY_ROLE}\n"
    );
    let rules = rules(plan);
    if rules.is_empty() {
        yaml.push_str("rules: []\n");
        return yaml;
    }
    yaml.push_str("rules:\n");
    for rule in rules {
        yaml.push_str(&format!(
            "# {}\n- apiGroups: {}\n  resources: [{}]\n  verbs: [{}]\n",
            rule.why,
            flow([rule.group.to_string()]),
            rule.resource,
            rule.verb
        ));
        if !rule.names.is_empty() {
            yaml.push_str(&format!("  resourceNames: {}\n", flow(rule.names)));
        }
    }
    yaml
}

/// The IAM policy `apply` and `rollback` of `plan` need in each account it writes in, every
/// resource named: the OIDC provider, the roles whose trust changes, the inline policies of the
/// node and kiam-server roles, and (in the cluster's account) the cluster.
pub fn aws_apply_policies(plan: &Plan) -> BTreeMap<String, Value> {
    // Per account: the OIDC providers, the roles whose trust changes, the roles whose inline
    // policies change.
    const PROVIDERS: usize = 0;
    const ROLES: usize = 1;
    const INLINE: usize = 2;
    let mut accounts: BTreeMap<String, [BTreeSet<String>; 3]> = BTreeMap::new();
    for step in &plan.steps {
        let (account, which, arn) = match &step.target {
            Target::OidcProvider { account, arn } => (account, PROVIDERS, arn.as_str()),
            Target::Role { account, arn } => (account, ROLES, arn.as_str()),
            Target::InlinePolicy {
                account, role_arn, ..
            } => (account, INLINE, role_arn.as_str()),
            _ => continue,
        };
        accounts.entry(account.clone()).or_default()[which].insert(arn.to_string());
    }
    let decommissions = plan.steps.iter().any(|s| s.phase == Phase::Decommission);
    let c = &plan.cluster;
    let cluster_arn = format!(
        "arn:{}:eks:{}:{}:cluster/{}",
        c.partition, c.region, c.account, c.name
    );
    accounts
        .into_iter()
        .map(|(account, [providers, roles, inline])| {
            let mut statements = Vec::new();
            let mut statement = |sid: &str, actions: &[&str], resources: BTreeSet<String>| {
                if !resources.is_empty() {
                    statements.push(json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}));
                }
            };
            statement(
                "OidcProvider",
                &[
                    "iam:GetOpenIDConnectProvider",
                    "iam:CreateOpenIDConnectProvider",
                    "iam:DeleteOpenIDConnectProvider",
                ],
                providers,
            );
            statement(
                "RoleTrust",
                &["iam:GetRole", "iam:UpdateAssumeRolePolicy"],
                roles,
            );
            statement(
                "LegacyGrants",
                &[
                    "iam:GetRolePolicy",
                    "iam:PutRolePolicy",
                    "iam:DeleteRolePolicy",
                ],
                inline,
            );
            if account == c.account {
                statement(
                    "Cluster",
                    &["eks:DescribeCluster"],
                    BTreeSet::from([cluster_arn.clone()]),
                );
                // The evidence before decommission; LookupEvents takes no resource ARN.
                if decommissions {
                    statement(
                        "Evidence",
                        &["cloudtrail:LookupEvents"],
                        BTreeSet::from(["*".to_string()]),
                    );
                }
            }
            (
                account,
                json!({"Version": "2012-10-17", "Statement": statements}),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_plan() -> Plan {
        let inventory = crate::inventory::demo::inventory().unwrap();
        crate::plan::plan(&inventory, "demo", &Default::default()).unwrap()
    }

    /// docs/permissions.md shows the apply role of the demo plan, as the tool writes it: the
    /// live tests run with the document's role, so this proves the tool's narrowed role.
    #[test]
    fn the_documented_apply_role_is_the_demo_plans() {
        let doc = include_str!("../../docs/permissions.md");
        let documented = doc
            .split("```yaml\n")
            .map(|block| block.split("```").next().unwrap_or_default())
            .find(|block| block.contains(&format!("name: {APPLY_ROLE}\n")))
            .expect("docs/permissions.md shows the apply role");
        assert_eq!(documented, kubernetes_apply_role(&demo_plan()));
    }

    #[test]
    fn bind_patch_and_delete_name_the_plans_objects_only() {
        let yaml = kubernetes_apply_role(&demo_plan());
        let role: Value = yaml_serde::from_str(&yaml).unwrap();
        let rules = role["rules"].as_array().unwrap();
        let rule = |resource: &str, verb: &str| {
            rules
                .iter()
                .find(|r| r["resources"][0] == resource && r["verbs"][0] == verb)
                .unwrap_or_else(|| panic!("no {verb} on {resource} in {yaml}"))
        };
        assert_eq!(
            rule("clusterroles", "bind")["resourceNames"],
            json!(["node-reader"])
        );
        assert_eq!(
            rule("roles", "bind")["resourceNames"],
            json!(["config-reader"])
        );
        assert_eq!(
            rule("serviceaccounts", "delete")["resourceNames"],
            json!(["default-payments-reconcile", "default-payments-worker"])
        );
        assert!(
            rule("serviceaccounts", "create")
                .get("resourceNames")
                .is_none()
        );
        assert_eq!(
            rule("cronjobs", "patch")["resourceNames"],
            json!(["data-compaction", "payments-reconcile"])
        );
        // Every rule but a create names its objects: an empty list would grant them all.
        for rule in rules {
            assert!(
                rule["verbs"][0] == "create"
                    || !rule["resourceNames"].as_array().unwrap().is_empty(),
                "{rule}"
            );
        }
    }

    #[test]
    fn a_plan_without_kubernetes_steps_grants_nothing() {
        let mut plan = demo_plan();
        plan.steps.retain(|s| s.target.is_iam());
        let role: Value = yaml_serde::from_str(&kubernetes_apply_role(&plan)).unwrap();
        assert_eq!(role["rules"], json!([]));
    }

    #[test]
    fn the_demo_plans_iam_policy_names_every_resource() {
        let plan = demo_plan();
        let policies = aws_apply_policies(&plan);
        assert_eq!(policies.keys().collect::<Vec<_>>(), ["111122223333"]);
        let statements = policies["111122223333"]["Statement"].as_array().unwrap();
        let resources = |sid: &str| {
            statements
                .iter()
                .find(|s| s["Sid"] == sid)
                .map(|s| s["Resource"].clone())
                .unwrap_or_default()
        };
        assert_eq!(
            resources("Cluster"),
            json!(["arn:aws:eks:eu-west-1:111122223333:cluster/demo"])
        );
        assert_eq!(
            resources("OidcProvider"),
            json!([plan.cluster.oidc_provider_arn])
        );
        assert_eq!(resources("RoleTrust").as_array().unwrap().len(), 7);
        // The demo keeps its grants (a Job still needs them): no inline-policy write at all.
        assert_eq!(resources("LegacyGrants"), Value::Null);
        // The evidence's lookup takes no resource ARN; everything else is named.
        assert_eq!(resources("Evidence"), json!(["*"]));
        assert!(
            !statements
                .iter()
                .filter(|s| s["Sid"] != "Evidence")
                .any(|s| s["Resource"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r.as_str().unwrap().contains('*'))),
            "no wildcard: {statements:?}"
        );
    }
}
