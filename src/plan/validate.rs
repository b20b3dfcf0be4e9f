//! A plan read from a file is checked to hold only what the planner itself makes, before anything
//! reads or writes a target: a plan travels (a pull request, a CI artifact) and `apply` runs with
//! credentials that rewrite IAM trust and RBAC. Pure: no I/O.
//!
//! Each step's `id` and `phase` must be the ones its kind and target give; every name must be
//! valid for its kind; every ARN must be an IAM ARN of a known partition; and each change must be
//! one of the planner's own edits, recomputed here from the step's `before` and the plan's
//! bindings and cluster: this cluster's exact web-identity statement added to a bound role,
//! legacy role principals removed, `sts:AssumeRole` removed from an inline policy, an annotation
//! or a service account of a binding, an RBAC copy naming a dedicated service account. A `*`
//! principal, a principal of another kind or a step aimed at another object than its id says
//! cannot pass. [`check_against`] adds what only the plan's own snapshot can tell: that an RBAC
//! copy copies a binding the shared service account really has.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{
    Binding, IRSA_ANNOTATION, MANAGED_BY, Plan, RESTART_ANNOTATION, ServiceAccountAction, Step,
    StepKind, Target, template_fragment, trust,
};
use crate::iam::arn::{Arn, RoleArn, is_account_id, is_known_partition};
use crate::iam::policy::PolicyDocument;
use crate::inventory::{Inventory, WorkloadKind};
use crate::names;

/// Why a plan is refused: where (a step, a binding, the cluster) and which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: field {field}: {message}")]
pub struct InvalidPlan {
    /// `steps[3] (update-role-trust:arn:…)`, `bindings[0]`, `cluster`.
    pub place: String,
    pub field: String,
    pub message: String,
}

type Checked = Result<(), InvalidPlan>;

/// The checks that need only the plan.
pub fn check(plan: &Plan) -> Checked {
    let cluster = check_cluster(plan)?;
    for (index, key) in plan.legacy_annotations.iter().enumerate() {
        if !is_annotation_key(key) || key == IRSA_ANNOTATION || key == RESTART_ANNOTATION {
            return Err(InvalidPlan {
                place: format!("legacy_annotations[{index}]"),
                field: "key".into(),
                message: format!("{key:?} is not a legacy agent's annotation key"),
            });
        }
    }
    for (index, binding) in plan.bindings.iter().enumerate() {
        check_binding(index, binding)?;
    }
    let mut ids = BTreeSet::new();
    for (index, step) in plan.steps.iter().enumerate() {
        let at = At { index, step };
        check_step(plan, &cluster, &at)?;
        if !ids.insert(step.id.as_str()) {
            return Err(at.invalid("id", "a second step with this id"));
        }
    }
    Ok(())
}

/// [`check`], and what only the inventory the plan was computed from (the migration's snapshot)
/// can tell: every RBAC copy copies a binding that names the shared service account.
pub fn check_against(plan: &Plan, source: &Inventory) -> Checked {
    check(plan)?;
    for (index, step) in plan.steps.iter().enumerate() {
        if step.kind != StepKind::CopyRbacBinding {
            continue;
        }
        let at = At { index, step };
        let after = step.after.value();
        let subject = &after["subjects"][0];
        let binding = plan
            .bindings
            .iter()
            .find(|b| {
                subject["name"] == b.service_account.as_str()
                    && subject["namespace"] == b.namespace.as_str()
            })
            .ok_or_else(|| at.invalid("after.subjects", "names no dedicated service account"))?;
        let copied = source.rbac_bindings.iter().any(|original| {
            after["kind"] == original.kind.as_str()
                && after["metadata"]["namespace"].as_str() == original.namespace.as_deref()
                && serde_json::to_value(&original.role_ref).ok().as_ref() == Some(&after["roleRef"])
                && original.subjects.iter().any(|s| {
                    s.kind == "ServiceAccount"
                        && s.name == binding.from_service_account
                        && s.namespace.as_deref().or(original.namespace.as_deref())
                            == Some(binding.namespace.as_str())
                })
        });
        if !copied {
            return Err(at.invalid(
                "after.roleRef",
                format!(
                    "{} {} is granted to {}/{} by no {} in the plan's snapshot: an RBAC copy only copies what the shared service account has",
                    after["roleRef"]["kind"].as_str().unwrap_or_default(),
                    after["roleRef"]["name"].as_str().unwrap_or_default(),
                    binding.namespace,
                    binding.from_service_account,
                    after["kind"].as_str().unwrap_or_default(),
                ),
            ));
        }
    }
    Ok(())
}

/// The cluster's facts every step is checked against.
struct ClusterFacts {
    issuer_url: String,
    issuer_host: String,
}

fn check_cluster(plan: &Plan) -> Result<ClusterFacts, InvalidPlan> {
    let invalid = |field: &str, message: String| InvalidPlan {
        place: "cluster".into(),
        field: field.into(),
        message,
    };
    let cluster = &plan.cluster;
    if !is_known_partition(&cluster.partition) {
        return Err(invalid(
            "partition",
            format!("{:?} is not an AWS partition", cluster.partition),
        ));
    }
    if !is_account_id(&cluster.account) {
        return Err(invalid(
            "account",
            format!("{:?} is not a 12-digit account id", cluster.account),
        ));
    }
    let issuer_host = cluster
        .oidc_issuer
        .strip_prefix("https://")
        .filter(|host| is_issuer_host_path(host))
        .ok_or_else(|| {
            invalid(
                "oidc_issuer",
                format!(
                    "{:?} is not an https:// issuer URL of a host and path",
                    cluster.oidc_issuer
                ),
            )
        })?;
    let provider = provider_arn(&cluster.partition, &cluster.account, issuer_host);
    if cluster.oidc_provider_arn != provider {
        return Err(invalid(
            "oidc_provider_arn",
            format!(
                "{:?} is not {provider:?}, the issuer's provider",
                cluster.oidc_provider_arn
            ),
        ));
    }
    Ok(ClusterFacts {
        issuer_url: cluster.oidc_issuer.clone(),
        issuer_host: issuer_host.to_string(),
    })
}

/// A Kubernetes annotation key: `[prefix/]name`, the prefix a DNS-1123 subdomain, the name at
/// most 63 alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
fn is_annotation_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    name_ok && prefix.is_none_or(names::is_dns1123_subdomain)
}

/// Host and path of an issuer: DNS characters and `/`, no wildcard, no empty host.
fn is_issuer_host_path(text: &str) -> bool {
    let host = text.split('/').next().unwrap_or_default();
    !host.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'/' | b'_'))
        && !text.split('/').any(|s| s == "..")
}

fn provider_arn(partition: &str, account: &str, issuer_host: &str) -> String {
    format!("arn:{partition}:iam::{account}:oidc-provider/{issuer_host}")
}

fn check_binding(index: usize, binding: &Binding) -> Checked {
    let invalid = |field: &str, message: String| InvalidPlan {
        place: format!("bindings[{index}]"),
        field: field.into(),
        message,
    };
    names::namespace(&binding.namespace).map_err(|e| invalid("namespace", e.to_string()))?;
    names::subdomain("service account", &binding.service_account)
        .map_err(|e| invalid("service_account", e.to_string()))?;
    names::subdomain("service account", &binding.from_service_account)
        .map_err(|e| invalid("from_service_account", e.to_string()))?;
    RoleArn::parse(&binding.role_arn).map_err(|e| invalid("role_arn", e.to_string()))?;
    let same = binding.service_account == binding.from_service_account;
    let consistent = match binding.service_account_action {
        ServiceAccountAction::Create => !same,
        ServiceAccountAction::Reuse | ServiceAccountAction::Keep => same,
    };
    if !consistent {
        return Err(invalid(
            "service_account_action",
            "a created account differs from the one it replaces; a reused or kept one is the same"
                .into(),
        ));
    }
    for (w, workload) in binding.workloads.iter().enumerate() {
        names::subdomain("workload", &workload.name)
            .map_err(|e| invalid(&format!("workloads[{w}].name"), e.to_string()))?;
        if matches!(workload.kind, WorkloadKind::Pod | WorkloadKind::Job) {
            return Err(invalid(
                &format!("workloads[{w}].kind"),
                format!("a {} never moves", workload.kind.as_str()),
            ));
        }
    }
    Ok(())
}

/// A step being checked, to name it in errors.
struct At<'a> {
    index: usize,
    step: &'a Step,
}

impl At<'_> {
    fn invalid(&self, field: &str, message: impl Into<String>) -> InvalidPlan {
        InvalidPlan {
            place: format!("steps[{}] ({})", self.index, self.step.id),
            field: field.into(),
            message: message.into(),
        }
    }
}

fn check_step(plan: &Plan, cluster: &ClusterFacts, at: &At<'_>) -> Checked {
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
            if *arn != provider_arn(&parsed.partition, account, &cluster.issuer_host) {
                return Err(at.invalid(
                    "target.arn",
                    format!(
                        "not the provider of this cluster's issuer {} in account {account}",
                        cluster.issuer_url
                    ),
                ));
            }
            let bound = plan
                .bindings
                .iter()
                .filter_map(|b| RoleArn::parse(&b.role_arn).ok())
                .any(|r| r.account() == account && r.partition() == parsed.partition);
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
        (Target::Role { arn, .. }, StepKind::UpdateRoleTrust) => {
            let role = RoleArn::parse(arn).map_err(|e| at.invalid("target.arn", e.to_string()))?;
            let subjects: Vec<String> = plan
                .bindings
                .iter()
                .filter(|b| &b.role_arn == arn)
                .map(|b| trust::subject(&b.namespace, &b.service_account))
                .collect();
            if subjects.is_empty() {
                return Err(at.invalid("target.arn", "no binding of the plan is for this role"));
            }
            let provider = provider_arn(role.partition(), role.account(), &cluster.issuer_host);
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
            let removed: BTreeSet<String> = unconditioned_aws_principals(&before)
                .difference(&unconditioned_aws_principals(&after))
                .cloned()
                .collect();
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
            // The legacy path's roles, as the plan shows them: the roles it moves, and the
            // legacy principals its trust removals remove.
            let removed_principals = plan
                .steps
                .iter()
                .filter(|s| s.kind == StepKind::RemoveLegacyTrust)
                .flat_map(|s| {
                    let before = unconditioned_aws_principals(&s.before.value());
                    let after = unconditioned_aws_principals(&s.after.value());
                    before.difference(&after).cloned().collect::<Vec<_>>()
                });
            let legacy: BTreeSet<String> = plan
                .bindings
                .iter()
                .map(|b| b.role_arn.clone())
                .chain(removed_principals)
                .collect();
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
            let binding = binding_for(plan, namespace, name, &[ServiceAccountAction::Reuse])
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
            let binding = binding_for(plan, namespace, name, &[ServiceAccountAction::Create])
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
            let binding = plan
                .bindings
                .iter()
                .filter(|b| b.service_account_action == ServiceAccountAction::Create)
                .find(|b| *subject == json!([{"kind": "ServiceAccount", "name": b.service_account, "namespace": b.namespace}]))
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
            let binding = workload_binding(
                plan,
                namespace,
                *kind,
                name,
                &[ServiceAccountAction::Create],
            )
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
                    json!({"spec": super::served_service_account(&binding.service_account)}),
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
            let binding = workload_binding(
                plan,
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
            workload_binding(
                plan,
                namespace,
                *kind,
                name,
                &[
                    ServiceAccountAction::Create,
                    ServiceAccountAction::Reuse,
                    ServiceAccountAction::Keep,
                ],
            )
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

/// Names and ARNs in the target, valid for their kind.
fn check_target(at: &At<'_>) -> Checked {
    let invalid = |field: &str, e: &dyn std::fmt::Display| at.invalid(field, e.to_string());
    match &at.step.target {
        Target::OidcProvider { account, arn } => {
            let parsed = Arn::parse(arn).map_err(|e| invalid("target.arn", &e))?;
            check_iam_arn(at, "target.arn", &parsed, account, "oidc-provider/")
        }
        Target::Role { account, arn } => {
            let parsed = RoleArn::parse(arn).map_err(|e| invalid("target.arn", &e))?;
            check_iam_arn(at, "target.arn", parsed.as_arn(), account, "role/")
        }
        Target::InlinePolicy {
            account,
            role_arn,
            policy_name,
        } => {
            let parsed = RoleArn::parse(role_arn).map_err(|e| invalid("target.role_arn", &e))?;
            check_iam_arn(at, "target.role_arn", parsed.as_arn(), account, "role/")?;
            let valid = !policy_name.is_empty()
                && policy_name.len() <= 128
                && policy_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if valid {
                Ok(())
            } else {
                Err(at.invalid(
                    "target.policy_name",
                    format!("{policy_name:?} is not an IAM policy name"),
                ))
            }
        }
        Target::ServiceAccount { namespace, name } => {
            names::namespace(namespace).map_err(|e| invalid("target.namespace", &e))?;
            names::subdomain("service account", name).map_err(|e| invalid("target.name", &e))?;
            Ok(())
        }
        Target::RbacBinding {
            kind,
            namespace,
            name,
        } => {
            match (kind.as_str(), namespace) {
                ("RoleBinding", Some(namespace)) => {
                    names::namespace(namespace).map_err(|e| invalid("target.namespace", &e))?;
                }
                ("ClusterRoleBinding", None) => {}
                _ => return Err(at.invalid(
                    "target.kind",
                    format!(
                        "{kind:?}: a copy is a RoleBinding in a namespace or a ClusterRoleBinding"
                    ),
                )),
            }
            names::subdomain("binding", name).map_err(|e| invalid("target.name", &e))?;
            Ok(())
        }
        Target::Workload {
            namespace,
            kind,
            name,
        } => {
            names::namespace(namespace).map_err(|e| invalid("target.namespace", &e))?;
            names::subdomain("workload", name).map_err(|e| invalid("target.name", &e))?;
            if matches!(kind, WorkloadKind::Pod | WorkloadKind::Job) {
                return Err(at.invalid(
                    "target.kind",
                    format!("a {} is never changed", kind.as_str()),
                ));
            }
            Ok(())
        }
    }
}

fn check_iam_arn(at: &At<'_>, field: &str, arn: &Arn, account: &str, resource: &str) -> Checked {
    if !is_known_partition(&arn.partition) {
        return Err(at.invalid(
            field,
            format!("{:?} is not an AWS partition", arn.partition),
        ));
    }
    if arn.service != "iam" || !arn.region.is_empty() || !arn.resource.starts_with(resource) {
        return Err(at.invalid(field, format!("not an IAM {resource} ARN")));
    }
    if arn.account != account {
        return Err(at.invalid(
            "target.account",
            format!("{account:?} is not the ARN's account {}", arn.account),
        ));
    }
    if arn.resource.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(at.invalid(field, "holds a character IAM never puts in an ARN"));
    }
    Ok(())
}

/// The binding of the plan for a service account, with one of `actions`.
fn binding_for<'a>(
    plan: &'a Plan,
    namespace: &str,
    name: &str,
    actions: &[ServiceAccountAction],
) -> Option<&'a Binding> {
    plan.bindings.iter().find(|b| {
        b.namespace == namespace
            && b.service_account == name
            && actions.contains(&b.service_account_action)
    })
}

/// The binding of the plan that moves a workload, with one of `actions`.
fn workload_binding<'a>(
    plan: &'a Plan,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
    actions: &[ServiceAccountAction],
) -> Option<&'a Binding> {
    plan.bindings.iter().find(|b| {
        b.namespace == namespace
            && actions.contains(&b.service_account_action)
            && b.workloads.iter().any(|w| w.kind == kind && w.name == name)
    })
}

/// The pod template inside a workload fragment (the inverse of `template_fragment`); `null` when
/// the fragment holds anything beside it.
fn template_inner(kind: WorkloadKind, fragment: &Value) -> Value {
    let only = |value: &Value, key: &str| -> Value {
        match value.as_object() {
            Some(object) if object.len() == 1 => object.get(key).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        }
    };
    match kind {
        WorkloadKind::CronJob => only(
            &only(&only(&only(fragment, "spec"), "jobTemplate"), "spec"),
            "template",
        ),
        WorkloadKind::Pod => fragment.clone(),
        _ => only(&only(fragment, "spec"), "template"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> (Plan, Inventory) {
        let inventory = crate::inventory::demo::inventory().unwrap();
        let plan = crate::plan::plan(&inventory, "demo", &Default::default()).unwrap();
        (plan, inventory)
    }

    fn step_of(plan: &mut Plan, kind: StepKind) -> &mut Step {
        plan.steps.iter_mut().find(|s| s.kind == kind).unwrap()
    }

    #[test]
    fn the_planners_own_plan_passes() {
        let (plan, inventory) = demo();
        assert_eq!(check_against(&plan, &inventory), Ok(()));
    }

    #[test]
    fn legacy_trust_removal_removes_only_role_principals() {
        let (mut plan, _) = demo();
        let step = step_of(&mut plan, StepKind::RemoveLegacyTrust);
        let mut after = step.before.value();
        after["Statement"][0]["Principal"]["AWS"] = json!("*");
        step.after = crate::json::CompactJson::new(&after);
        let error = check(&plan).unwrap_err();
        assert_eq!(error.field, "after", "{error}");

        let (mut plan, _) = demo();
        let step = step_of(&mut plan, StepKind::RemoveLegacyTrust);
        step.after = step.before.clone();
        assert!(
            check(&plan)
                .unwrap_err()
                .message
                .contains("removes no legacy principal")
        );
    }

    #[test]
    fn names_and_arns_are_checked_for_their_kind() {
        let (mut plan, _) = demo();
        let step = step_of(&mut plan, StepKind::AnnotateServiceAccount);
        if let Target::ServiceAccount { namespace, .. } = &mut step.target {
            *namespace = "kube-system/configmaps/aws-auth".into();
        }
        step.id = format!("{}:{}", step.kind.as_str(), step.target);
        assert_eq!(check(&plan).unwrap_err().field, "target.namespace");

        let (mut plan, _) = demo();
        plan.cluster.partition = "aws\u{1b}[8m".into();
        assert_eq!(check(&plan).unwrap_err().field, "partition");

        let (mut plan, _) = demo();
        plan.cluster.oidc_issuer = "https://*".into();
        assert_eq!(check(&plan).unwrap_err().field, "oidc_issuer");

        // Cleanup may only remove a legacy agent's annotation keys, never the IRSA one.
        let (mut plan, _) = demo();
        plan.legacy_annotations.push(IRSA_ANNOTATION.into());
        assert_eq!(check(&plan).unwrap_err().place, "legacy_annotations[2]");
        assert!(is_annotation_key("iam.amazonaws.com/role") && is_annotation_key("role"));
        assert!(
            !is_annotation_key("a/b/c")
                && !is_annotation_key("x/")
                && !is_annotation_key("k\u{1b}")
        );
    }
}
