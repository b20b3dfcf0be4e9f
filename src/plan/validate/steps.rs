//! A step's id, phase and change: the id and phase its kind and target give, and a change that is
//! one of the planner's own edits, recomputed from the step's `before` and the plan's bindings and
//! cluster.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde_json::{Value, json};

use super::cluster::ClusterFacts;
use super::target::check_target;
use super::{At, Checked};
use crate::iam::arn::{Arn, RoleArn};
use crate::iam::policy::PolicyDocument;
use crate::inventory::WorkloadKind;
use crate::names;
use crate::plan::document::{Binding, Plan, ServiceAccountAction};
use crate::plan::step::{MANAGED_BY, RESTART_ANNOTATION, StepKind, Target};
use crate::plan::template::{served_service_account, template_fragment, template_inner};
use crate::plan::trust;
use crate::scan::IRSA_ANNOTATION;

pub(super) fn check_step(
    plan: &Plan,
    index: &PlanIndex<'_>,
    cluster: &ClusterFacts,
    at: &At<'_>,
) -> Checked {
    let step = at.step;
    let id = format!("{}:{}", step.kind.as_str(), step.target);
    if step.id != id {
        return Err(at.invalid(
            "id",
            format!("the step's kind and target make the id {id:?}"),
        ));
    }
    if step.phase != step.kind.phase() {
        return Err(at.invalid(
            "phase",
            format!(
                "{} steps belong to phase {}",
                step.kind.as_str(),
                step.kind.phase()
            ),
        ));
    }
    check_target(at)?;
    let (before, after) = (step.before.value(), step.after.value());
    let expect = |field: &str, found: &Value, expected: &Value, why: &str| -> Checked {
        if found == expected {
            Ok(())
        } else {
            Err(at.invalid(field, why.to_string()))
        }
    };
    match (&step.target, step.kind) {
        (Target::OidcProvider { account, arn }, StepKind::CreateOidcProvider) => {
            let parsed = Arn::parse(arn).map_err(|e| at.invalid("target.arn", e.to_string()))?;
            if *arn
                != crate::iam::arn::oidc_provider_arn(
                    &parsed.partition,
                    account,
                    &cluster.issuer_host,
                )
            {
                return Err(at.invalid(
                    "target.arn",
                    format!(
                        "not the provider of this cluster's issuer {} in account {account}",
                        cluster.issuer_url
                    ),
                ));
            }
            let bound = plan.bindings.iter().any(|b| {
                b.role_arn.account() == account && b.role_arn.partition() == parsed.partition
            });
            if !bound {
                return Err(at.invalid("target.account", "no role of this account is bound"));
            }
            expect(
                "before",
                &before,
                &Value::Null,
                "a created provider did not exist",
            )?;
            expect(
                "after",
                &after,
                &json!({"Url": cluster.issuer_url, "ClientIDList": [trust::AUDIENCE]}),
                "a provider is created for this cluster's issuer and client id sts.amazonaws.com, nothing else",
            )
        }
        (Target::Role { arn: role, .. }, StepKind::UpdateRoleTrust) => {
            let subjects: Vec<String> = index
                .for_role(role)
                .map(|b| trust::subject(&b.namespace, &b.service_account))
                .collect();
            if subjects.is_empty() {
                return Err(at.invalid("target.arn", "no binding of the plan is for this role"));
            }
            let provider = crate::iam::arn::oidc_provider_arn(
                role.partition(),
                role.account(),
                &cluster.issuer_host,
            );
            let expected = trust::add_web_identity(
                &PolicyDocument(before.clone()),
                &provider,
                &cluster.issuer_host,
                &subjects,
            );
            if expected.0 == before {
                return Err(at.invalid(
                    "after",
                    "the role already trusts every bound service account",
                ));
            }
            expect(
                "after",
                &after,
                &expected.0,
                "a trust update only adds this cluster's exact web-identity statement for the service accounts bound to the role; any other change (another principal, a wildcard) is refused",
            )
        }
        (Target::Role { .. }, StepKind::RemoveLegacyTrust) => {
            let removed = removed_principals(&before, &after);
            if removed.is_empty() {
                return Err(at.invalid("after", "removes no legacy principal"));
            }
            if let Some(bad) = removed.iter().find(|p| RoleArn::parse(p).is_err()) {
                return Err(at.invalid("after", format!("removes {bad:?}, which is not a role (the legacy principal is the node or kiam server role)")));
            }
            let expected = removed
                .iter()
                .fold(PolicyDocument(before.clone()), |doc, p| {
                    trust::remove_principal(&doc, p)
                });
            expect(
                "after",
                &after,
                &expected.0,
                "removing the legacy principal changes nothing else in the trust policy",
            )
        }
        (Target::InlinePolicy { .. }, StepKind::RemoveAssumeRoleGrant) => {
            let document = PolicyDocument(before.clone());
            let legacy: BTreeSet<&str> = index.legacy_roles().iter().map(String::as_str).collect();
            let removal = trust::remove_legacy_grants(&document, &legacy);
            if !removal.changed {
                return Err(at.invalid(
                    "before",
                    "grants no sts:AssumeRole on exactly the roles this plan moves",
                ));
            }
            let expected = removal.after.map_or(Value::Null, |d| d.0);
            expect(
                "after",
                &after,
                &expected,
                "removing the legacy sts:AssumeRole grants changes nothing else in the policy",
            )
        }
        (Target::ServiceAccount { namespace, name }, StepKind::AnnotateServiceAccount) => {
            let binding = index
                .for_account(namespace, name, &[ServiceAccountAction::Reuse])
                .ok_or_else(|| at.invalid("target", "no binding reuses this service account"))?;
            expect(
                "before",
                &before,
                &json!({"metadata": {"annotations": {}}}),
                "an annotation step reads only the role annotation",
            )?;
            expect(
                "after",
                &after,
                &json!({"metadata": {"annotations": {IRSA_ANNOTATION: binding.role_arn}}}),
                "an annotation step sets only eks.amazonaws.com/role-arn to the binding's role",
            )
        }
        (Target::ServiceAccount { namespace, name }, StepKind::CreateServiceAccount) => {
            let binding = index
                .for_account(namespace, name, &[ServiceAccountAction::Create])
                .ok_or_else(|| at.invalid("target", "no binding creates this service account"))?;
            expect(
                "before",
                &before,
                &Value::Null,
                "a created service account did not exist",
            )?;
            let mut expected = json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {MANAGED_BY.0: MANAGED_BY.1},
                    "annotations": {IRSA_ANNOTATION: binding.role_arn},
                },
            });
            if let Some(secrets) = after.get("imagePullSecrets") {
                let valid = secrets.as_array().is_some_and(|list| {
                    list.iter().all(|s| {
                        s.as_object().is_some_and(|o| o.len() == 1)
                            && s["name"].as_str().is_some_and(names::is_dns1123_subdomain)
                    })
                });
                if !valid {
                    return Err(at.invalid(
                        "after.imagePullSecrets",
                        "pull secrets are a list of {name}",
                    ));
                }
                expected["imagePullSecrets"] = secrets.clone();
            }
            if let Some(automount) = after
                .get("automountServiceAccountToken")
                .filter(|v| v.is_boolean())
            {
                expected["automountServiceAccountToken"] = automount.clone();
            }
            expect(
                "after",
                &after,
                &expected,
                "a created service account has only the role annotation, the tool's label, the shared account's pull secrets and automount setting",
            )
        }
        (
            Target::RbacBinding {
                kind,
                namespace,
                name,
            },
            StepKind::CopyRbacBinding,
        ) => {
            expect(
                "before",
                &before,
                &Value::Null,
                "a copied binding did not exist",
            )?;
            let subject = &after["subjects"];
            let binding = index
                .for_account(
                    subject[0]["namespace"].as_str().unwrap_or_default(),
                    subject[0]["name"].as_str().unwrap_or_default(),
                    &[ServiceAccountAction::Create],
                )
                .filter(|b| *subject == json!([{"kind": "ServiceAccount", "name": b.service_account, "namespace": b.namespace}]))
                .ok_or_else(|| at.invalid("after.subjects", "a copy names exactly one dedicated service account of the plan"))?;
            let role_ref = &after["roleRef"];
            let role_ref_ok = role_ref.as_object().is_some_and(|o| o.len() == 3)
                && role_ref["apiGroup"] == "rbac.authorization.k8s.io"
                && (role_ref["kind"] == "ClusterRole"
                    || (role_ref["kind"] == "Role" && kind == "RoleBinding"))
                && role_ref["name"]
                    .as_str()
                    .is_some_and(names::is_path_segment_name);
            if !role_ref_ok {
                return Err(at.invalid("after.roleRef", "not a reference to a Role or ClusterRole"));
            }
            let mut metadata = json!({"name": name, "labels": {MANAGED_BY.0: MANAGED_BY.1}});
            if let Some(namespace) = namespace {
                metadata["namespace"] = json!(namespace);
            }
            let expected = json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": kind,
                "metadata": metadata,
                "roleRef": role_ref,
                "subjects": [{"kind": "ServiceAccount", "name": binding.service_account, "namespace": binding.namespace}],
            });
            expect(
                "after",
                &after,
                &expected,
                "a copied binding holds its name, the tool's label, the role reference and the dedicated service account, nothing else",
            )
        }
        (
            Target::Workload {
                namespace,
                kind,
                name,
            },
            StepKind::SwitchServiceAccount,
        ) => {
            let binding = index
                .for_workload(namespace, *kind, name, &[ServiceAccountAction::Create])
                .ok_or_else(|| {
                    at.invalid(
                        "target",
                        "no binding with a dedicated service account moves this workload",
                    )
                })?;
            let inner = template_inner(*kind, &before);
            let spec_ok = inner.as_object().is_some_and(|o| o.len() == 1)
                && inner["spec"].as_object().is_some_and(|spec| {
                    spec.iter().all(|(k, v)| {
                        matches!(k.as_str(), "serviceAccountName" | "serviceAccount")
                            && v.as_str().is_some_and(names::is_dns1123_subdomain)
                    })
                });
            if !spec_ok {
                return Err(at.invalid(
                    "before",
                    "a switch reads only the pod template's service account",
                ));
            }
            expect(
                "after",
                &after,
                &template_fragment(
                    *kind,
                    json!({"spec": served_service_account(&binding.service_account)}),
                ),
                "a switch sets only the pod template's service account (serviceAccountName and its alias) to the binding's account",
            )
        }
        (
            Target::Workload {
                namespace,
                kind,
                name,
            },
            StepKind::RestartWorkload,
        ) => {
            let binding = index
                .for_workload(
                    namespace,
                    *kind,
                    name,
                    &[ServiceAccountAction::Reuse, ServiceAccountAction::Keep],
                )
                .ok_or_else(|| {
                    at.invalid(
                        "target",
                        "no binding that reuses or keeps its service account moves this workload",
                    )
                })?;
            expect(
                "before",
                &before,
                &template_fragment(*kind, json!({"metadata": {"annotations": {}}})),
                "a restart reads only the pod template's restart annotation",
            )?;
            expect(
                "after",
                &after,
                &template_fragment(
                    *kind,
                    json!({"metadata": {"annotations": {RESTART_ANNOTATION: binding.role_arn}}}),
                ),
                "a restart sets only the pod template's irsa-migrate.io/irsa-role annotation to the binding's role",
            )
        }
        (
            Target::Workload {
                namespace,
                kind,
                name,
            },
            StepKind::RemoveLegacyAnnotation,
        ) => {
            index
                .for_workload(namespace, *kind, name, &ServiceAccountAction::ALL)
                .ok_or_else(|| at.invalid("target", "no binding moves this workload"))?;
            let inner = template_inner(*kind, &before);
            let legacy_only = inner.as_object().is_some_and(|o| o.len() == 1)
                && inner["metadata"].as_object().is_some_and(|m| m.len() == 1)
                && inner["metadata"]["annotations"]
                    .as_object()
                    .is_some_and(|annotations| {
                        annotations
                            .iter()
                            .all(|(k, v)| plan.legacy_annotations.contains(k) && v.is_string())
                    });
            if !legacy_only
                || plan
                    .legacy_annotations
                    .iter()
                    .any(|k| k == IRSA_ANNOTATION || k == RESTART_ANNOTATION)
            {
                return Err(at.invalid(
                    "before",
                    "a cleanup step removes only the legacy agent's pod annotations",
                ));
            }
            expect(
                "after",
                &after,
                &template_fragment(*kind, json!({"metadata": {"annotations": {}}})),
                "a cleanup step removes the legacy annotations and sets nothing",
            )
        }
        (target, kind) => Err(at.invalid(
            "target.type",
            format!("a {} step does not change {target}", kind.as_str()),
        )),
    }
}

/// What steps look up in their plan: its bindings by the service account they bind, the workloads
/// they move and their role, each list in the plan's order, and its legacy roles. Built once per
/// check, so that checking a step does not read every binding or step (a plan of 20,000 bindings
/// has about five times as many steps).
pub(super) struct PlanIndex<'a> {
    by_account: HashMap<(&'a str, &'a str), Vec<&'a Binding>>,
    by_workload: HashMap<(&'a str, WorkloadKind, &'a str), Vec<&'a Binding>>,
    by_role: HashMap<&'a RoleArn, Vec<&'a Binding>>,
    /// [`PlanIndex::legacy_roles`], once asked for.
    legacy: OnceLock<BTreeSet<String>>,
    plan: &'a Plan,
}

impl<'a> PlanIndex<'a> {
    pub(super) fn new(plan: &'a Plan) -> PlanIndex<'a> {
        let mut index = PlanIndex {
            by_account: HashMap::new(),
            by_workload: HashMap::new(),
            by_role: HashMap::new(),
            legacy: OnceLock::new(),
            plan,
        };
        for binding in &plan.bindings {
            index
                .by_account
                .entry((&binding.namespace, &binding.service_account))
                .or_default()
                .push(binding);
            index
                .by_role
                .entry(&binding.role_arn)
                .or_default()
                .push(binding);
            for workload in &binding.workloads {
                index
                    .by_workload
                    .entry((&binding.namespace, workload.kind, &workload.name))
                    .or_default()
                    .push(binding);
            }
        }
        index
    }

    /// The first binding of the service account `namespace/name` with one of `actions`.
    pub(super) fn for_account(
        &self,
        namespace: &str,
        name: &str,
        actions: &[ServiceAccountAction],
    ) -> Option<&'a Binding> {
        self.by_account
            .get(&(namespace, name))?
            .iter()
            .copied()
            .find(|b| actions.contains(&b.service_account_action))
    }

    /// The bindings of `role`.
    fn for_role(&self, role: &RoleArn) -> impl Iterator<Item = &'a Binding> + use<'a, '_> {
        self.by_role.get(role).into_iter().flatten().copied()
    }

    /// The legacy path's roles, as the plan shows them: the roles it moves, and the legacy
    /// principals its trust removals remove (read from every removal once, not once a step).
    fn legacy_roles(&self) -> &BTreeSet<String> {
        self.legacy.get_or_init(|| {
            let removed = self
                .plan
                .steps
                .iter()
                .filter(|s| s.kind == StepKind::RemoveLegacyTrust)
                .flat_map(|s| removed_principals(&s.before.value(), &s.after.value()));
            self.plan
                .bindings
                .iter()
                .map(|b| b.role_arn.as_str().to_string())
                .chain(removed)
                .collect()
        })
    }

    /// The first binding that moves a workload, with one of `actions`.
    fn for_workload(
        &self,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
        actions: &[ServiceAccountAction],
    ) -> Option<&'a Binding> {
        self.by_workload
            .get(&(namespace, kind, name))?
            .iter()
            .copied()
            .find(|b| actions.contains(&b.service_account_action))
    }
}

/// The principals a legacy-trust removal from `before` to `after` removed.
fn removed_principals(before: &Value, after: &Value) -> BTreeSet<String> {
    unconditioned_aws_principals(before)
        .difference(&unconditioned_aws_principals(after))
        .cloned()
        .collect()
}

/// Every `Principal.AWS` of a policy document's statements without a condition (those a
/// legacy-trust removal edits; it keeps conditioned ones whole).
fn unconditioned_aws_principals(document: &Value) -> BTreeSet<String> {
    let statements = match &document["Statement"] {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    };
    statements
        .iter()
        .filter(|s| s.get("Condition").is_none())
        .flat_map(|s| match &s["Principal"]["AWS"] {
            Value::String(p) => vec![p.clone()],
            Value::Array(list) => list
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}
