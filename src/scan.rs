//! The scanner: inventory in, usages and findings out. Pure: no I/O.
//!
//! A *usage* is one workload that gets AWS credentials today, through kiam/kube2iam, IRSA, or
//! both. The scanner decides for each legacy usage whether it works today (the agent permits it,
//! the role exists and trusts the legacy principal), because only those may be migrated.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::findings::{Code, Finding, Severity, Subject};
use crate::iam::arn::RoleArn;
use crate::iam::policy::{PrincipalMatch, TrustVerdict};
use crate::inventory::kube::{ObjectMeta, PodSpec};
use crate::inventory::rollout_hold::RolloutHold;
use crate::inventory::{Cluster, Inventory, WorkloadKey, WorkloadKind};
use crate::legacy::{self, Component, DefaultRole, LegacyAgent, Verdict};

/// The `schema` field of the scan's JSON document.
pub const SCAN_SCHEMA: &str = "irsa-migrate.scan/v1";

/// The service-account annotation the pod identity webhook reads.
pub const IRSA_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// The scan result. Its JSON form (`--output json`) is the document `irsa-migrate.scan/v1`:
/// `cluster`, `agents`, `legacy_principals`, `usages`, `node_roles`, `findings`, `summary`,
/// each field as serialized below; lists are sorted, so the same inventory gives the same bytes.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub schema: &'static str,
    pub cluster: Option<Cluster>,
    pub agents: Vec<LegacyAgent>,
    /// The roles the legacy system assumes application roles as (kiam server role, node roles).
    pub legacy_principals: Vec<String>,
    /// Every workload seen, with the service account it runs as: who shares which account.
    pub workloads: Vec<WorkloadSummary>,
    pub usages: Vec<Usage>,
    pub node_roles: Vec<NodeRole>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadSummary {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub service_account: String,
}

/// One workload that gets AWS credentials today.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub service_account: String,
    /// Running pods resolved to this workload.
    pub pods: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyRole>,
    /// The role in the service account's `eks.amazonaws.com/role-arn`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub irsa_role_arn: Option<String>,
    pub status: Status,
    pub host_network: bool,
    /// Which tools manage the workload's manifest (helm, argocd, flux).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub managed_by: Vec<String>,
    /// The legacy path gives the workload its role today: the only usages that may be migrated.
    pub works_today: bool,
    /// What keeps a pod-template change from rolling out (paused, `OnDelete`, partition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_hold: Option<RolloutHold>,
}

impl Usage {
    pub fn key(&self) -> WorkloadKey {
        WorkloadKey {
            namespace: self.namespace.clone(),
            kind: self.kind,
            name: self.name.clone(),
        }
    }

    fn subject(&self) -> Subject {
        Subject::new(Some(&self.namespace), self.kind.as_str(), &self.name)
    }
}

/// The role a workload gets through kiam/kube2iam.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegacyRole {
    /// The annotation value as written; absent when kube2iam's default role applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
    pub source: RoleSource,
    /// The ARN the agent requests, when it can be resolved offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub verdict: Verdict,
    pub trust: Trust,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleSource {
    Annotation,
    DefaultRole,
}

/// Whether the role lets the legacy principal assume it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Trust {
    Trusted {
        principal: String,
        how: PrincipalMatch,
        conditional: bool,
    },
    Missing,
    RoleNotFound,
    /// The role's account is not in the source, or the ARN could not be resolved.
    Unknown {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Legacy,
    Irsa,
    Both,
}

/// A node role (or kiam's server role) and what it grants beyond an EKS worker's needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRole {
    pub arn: String,
    /// Why it is a legacy principal: `aws-auth`, `worker-node-policy`, `kiam-assume-role`.
    pub source: String,
    pub found: bool,
    pub assume_role_grants: Vec<String>,
    pub extra_permissions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub workloads: usize,
    pub usages: usize,
    pub legacy: usize,
    pub irsa: usize,
    pub both: usize,
    pub works_today: usize,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

/// AWS-managed policies an EKS worker node is expected to carry.
const WORKER_BASELINE: &[&str] = &[
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKSWorkerNodeMinimalPolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
];

/// A workload as the scanner sees it: its controller's metadata and pod template, or for a pod
/// without a known controller, the pod's own.
struct Candidate<'a> {
    key: WorkloadKey,
    metadata: &'a ObjectMeta,
    template_annotations: &'a crate::inventory::kube::StringMap,
    spec: &'a PodSpec,
    pods: usize,
    /// For a pod whose owner is not a workload kind this tool knows (e.g. an Argo Rollout).
    foreign_owner: Option<String>,
    /// What keeps a template change from rolling out to the workload's pods.
    hold: Option<RolloutHold>,
}

pub fn scan(inventory: &Inventory) -> Scan {
    let mut findings = Vec::new();
    for warning in &inventory.warnings {
        findings.push(Finding::new(
            Code::UnrecognizedInput,
            Subject::new(None, "File", warning.file.display().to_string()),
            warning.message.clone(),
        ));
    }
    for denied in &inventory.unreadable {
        findings.push(Finding::new(
            Code::ReadDenied,
            Subject::new(denied.namespace.as_deref(), "Resource", denied.resource.clone()),
            format!(
                "{denied} ({}): the scan cannot see these objects, so its results are incomplete; grant the irsa-migrate-read ClusterRole of docs/permissions.md",
                denied.message
            ),
        ));
    }
    let agents = legacy::detect(inventory);
    let effective = effective_agent(&agents, &mut findings);
    let node_roles = node_role_arns(inventory);
    let principals = legacy_principals(inventory, effective, &node_roles);
    check_cluster(inventory, &mut findings);

    let candidates = candidates(inventory, &agents);
    check_namespaces_captured(inventory, &candidates, &mut findings);
    let mut usages = Vec::new();
    for candidate in &candidates {
        if let Some(usage) = usage(inventory, effective, &principals, candidate, &mut findings) {
            usages.push(usage);
        }
    }
    check_shared_service_accounts(inventory, effective, &candidates, &mut findings);
    let node_role_reports = analyse_node_roles(inventory, effective, &node_roles, &mut findings);

    crate::findings::sort_and_dedup(&mut findings);
    let summary = Summary {
        workloads: candidates.len(),
        usages: usages.len(),
        legacy: usages.iter().filter(|u| u.status == Status::Legacy).count(),
        irsa: usages.iter().filter(|u| u.status == Status::Irsa).count(),
        both: usages.iter().filter(|u| u.status == Status::Both).count(),
        works_today: usages.iter().filter(|u| u.works_today).count(),
        errors: findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        warnings: findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count(),
        infos: findings
            .iter()
            .filter(|f| f.severity == Severity::Info)
            .count(),
    };
    Scan {
        schema: SCAN_SCHEMA,
        cluster: inventory.cluster.clone(),
        agents,
        legacy_principals: principals.iter().map(|(arn, _)| arn.to_string()).collect(),
        workloads: candidates
            .iter()
            .map(|c| WorkloadSummary {
                namespace: c.key.namespace.clone(),
                kind: c.key.kind,
                name: c.key.name.clone(),
                service_account: c.spec.service_account().to_string(),
            })
            .collect(),
        usages,
        node_roles: node_role_reports,
        findings,
        summary,
    }
}

/// A namespace whose workloads were read without its Namespace object: its annotations, which
/// the agents' namespace rules read, are unknown, so none of its workloads may be migrated (they
/// are not "denied by the namespace" either: that cannot be told).
fn check_namespaces_captured(
    inventory: &Inventory,
    candidates: &[Candidate<'_>],
    findings: &mut Vec<Finding>,
) {
    let missing: BTreeSet<&str> = candidates
        .iter()
        .map(|c| c.key.namespace.as_str())
        .filter(|namespace| !inventory.namespaces.contains_key(*namespace))
        .collect();
    for namespace in missing {
        findings.push(Finding::new(
            Code::NamespaceNotCaptured,
            Subject::new(None, "Namespace", namespace),
            format!(
                "workloads run in namespace {namespace}, but the source holds no Namespace object for it: its annotations (what kiam or kube2iam permits there) are unknown, so none of its workloads is planned; add `kubectl get namespaces -o json` to the snapshot and re-scan"
            ),
        ));
    }
}

/// The agent whose rules decide: kiam's server (the agent only forwards), or kube2iam.
fn effective_agent<'a>(
    agents: &'a [LegacyAgent],
    findings: &mut Vec<Finding>,
) -> Option<&'a LegacyAgent> {
    for agent in agents {
        for problem in &agent.problems {
            findings.push(Finding::new(
                Code::LegacyAgentConfig,
                agent_subject(agent),
                problem.clone(),
            ));
        }
    }
    let deciders: Vec<&LegacyAgent> = agents
        .iter()
        .filter(|a| a.component != Component::KiamAgent)
        .collect();
    let systems: BTreeSet<_> = agents.iter().map(|a| a.system).collect();
    if systems.len() > 1 || deciders.len() > 1 {
        let names: Vec<String> = agents.iter().map(|a| a.workload.to_string()).collect();
        findings.push(Finding::new(
            Code::MultipleLegacyAgents,
            Subject::new(None, "Cluster", "legacy-agents"),
            format!(
                "more than one legacy credential agent is installed ({}); the scan evaluates pods under {} only, check the others by hand",
                names.join(", "),
                deciders.first().map(|a| a.workload.to_string()).unwrap_or_default()
            ),
        ));
    }
    if agents.is_empty() {
        findings.push(Finding::new(
            Code::NoLegacyAgent,
            Subject::new(None, "Cluster", "legacy-agents"),
            "no kiam or kube2iam Deployment/DaemonSet found; role annotations are evaluated with kiam/kube2iam defaults unknown, so none counts as working today",
        ));
    } else if deciders.is_empty() {
        findings.push(Finding::new(
            Code::LegacyAgentConfig,
            Subject::new(None, "Cluster", "legacy-agents"),
            "kiam agents found but no kiam server: the server holds the base ARN and namespace policy; add its Deployment/DaemonSet to the source",
        ));
    }
    deciders.first().copied()
}

fn agent_subject(agent: &LegacyAgent) -> Subject {
    Subject::new(
        Some(&agent.workload.namespace),
        agent.workload.kind.as_str(),
        &agent.workload.name,
    )
}

/// Node roles: from `aws-auth` (groups `system:nodes`), else roles carrying the worker policy.
fn node_role_arns(inventory: &Inventory) -> Vec<(String, &'static str)> {
    #[derive(serde::Deserialize)]
    struct MapRole {
        rolearn: String,
        #[serde(default)]
        groups: Vec<String>,
    }
    if let Some(map_roles) = &inventory.aws_auth_map_roles
        && let Ok(entries) = yaml_serde::from_str::<Vec<MapRole>>(map_roles)
    {
        let mut roles: Vec<_> = entries
            .into_iter()
            .filter(|e| e.groups.iter().any(|g| g == "system:nodes"))
            .map(|e| (e.rolearn, "aws-auth"))
            .collect();
        roles.sort();
        roles.dedup();
        return roles;
    }
    inventory
        .iam
        .roles
        .values()
        .filter(|r| {
            r.attached_policies
                .iter()
                .any(|p| p.policy_name == "AmazonEKSWorkerNodePolicy")
        })
        .map(|r| (r.arn.clone(), "worker-node-policy"))
        .collect()
}

/// The identities application roles must trust for the legacy path to work. Each is the role's
/// real ARN where IAM knows it: `aws-auth` names roles without their path, but a trust policy
/// names them with it.
fn legacy_principals(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    node_roles: &[(String, &'static str)],
) -> Vec<(RoleArn, String)> {
    let canonical = |arn: &str| {
        let parsed = RoleArn::parse(arn).ok()?;
        match inventory.iam.role(&parsed) {
            Some(role) => RoleArn::parse(&role.arn).ok(),
            None => Some(parsed),
        }
    };
    match agent.and_then(|a| a.assume_role_arn.as_deref()) {
        Some(arn) => canonical(arn)
            .map(|a| vec![(a, "kiam server role (--assume-role-arn)".to_string())])
            .unwrap_or_default(),
        None => node_roles
            .iter()
            .filter_map(|(arn, _)| Some((canonical(arn)?, "node role".to_string())))
            .collect(),
    }
}

fn check_cluster(inventory: &Inventory, findings: &mut Vec<Finding>) {
    let Some(cluster) = &inventory.cluster else {
        findings.push(Finding::new(
            Code::ClusterUnknown,
            Subject::new(None, "Cluster", "unknown"),
            "no `aws eks describe-cluster` output in the source: the OIDC issuer, account and Kubernetes version are unknown; add it (docs/snapshot.md)",
        ));
        return;
    };
    let subject = Subject::new(None, "Cluster", &cluster.name);
    match (cluster.oidc_provider_arn(), &inventory.iam.oidc_providers) {
        (None, _) => findings.push(Finding::new(
            Code::MissingOidcProvider,
            subject.clone(),
            "the cluster has no OIDC issuer in describe-cluster output",
        )),
        (Some(provider), Some(known)) if !known.contains(&provider) => findings.push(Finding::new(
            Code::MissingOidcProvider,
            subject.clone(),
            format!("IAM has no OIDC provider {provider}; the plan creates it with client id sts.amazonaws.com"),
        )),
        _ => {}
    }
    let has_webhook = inventory.mutating_webhooks.iter().any(|(name, hooks)| {
        name.contains("pod-identity-webhook")
            || hooks.iter().any(|h| h == "iam-for-pods.amazonaws.com")
    });
    if !has_webhook {
        let captured = inventory
            .kinds_seen
            .contains("MutatingWebhookConfiguration");
        let mut finding = Finding::new(
            Code::WebhookMissing,
            subject,
            if captured {
                "no pod identity webhook (MutatingWebhookConfiguration pod-identity-webhook): pods would get the role annotation but no token; install it before migrating"
            } else {
                "the source holds no MutatingWebhookConfiguration objects, so the pod identity webhook cannot be checked; add `kubectl get mutatingwebhookconfigurations -o json`"
            },
        );
        if !captured {
            finding.severity = Severity::Warning;
        }
        findings.push(finding);
    }
}

/// Resolves every pod to the workload that owns it, and adds workloads with no running pods.
fn candidates<'a>(inventory: &'a Inventory, agents: &[LegacyAgent]) -> Vec<Candidate<'a>> {
    let agent_workloads: BTreeSet<&WorkloadKey> = agents.iter().map(|a| &a.workload).collect();
    let mut by_key: BTreeMap<WorkloadKey, Candidate<'a>> = BTreeMap::new();
    for pod in inventory.pods.iter().filter(|p| !p.is_finished()) {
        let (key, foreign_owner) = owning_workload(inventory, pod);
        let entry =
            by_key
                .entry(key.clone())
                .or_insert_with(|| match inventory.workloads.get(&key) {
                    Some(workload) => Candidate {
                        key,
                        metadata: &workload.metadata,
                        template_annotations: &workload.template.metadata.annotations,
                        spec: &workload.template.spec,
                        pods: 0,
                        foreign_owner: None,
                        hold: workload.update.hold(workload.key.kind),
                    },
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
                Candidate {
                    key: workload.key.clone(),
                    metadata: &workload.metadata,
                    template_annotations: &workload.template.metadata.annotations,
                    spec: &workload.template.spec,
                    pods: 0,
                    foreign_owner: None,
                    hold: workload.update.hold(workload.key.kind),
                },
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

fn usage(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    principals: &[(RoleArn, String)],
    candidate: &Candidate<'_>,
    findings: &mut Vec<Finding>,
) -> Option<Usage> {
    let namespace = &candidate.key.namespace;
    let service_account = candidate.spec.service_account().to_string();
    let irsa_role_arn = inventory
        .service_accounts
        .get(&(namespace.clone(), service_account.clone()))
        .and_then(|sa| sa.metadata.annotations.get(IRSA_ANNOTATION))
        .cloned();
    let legacy = legacy_role(inventory, agent, principals, candidate);
    if legacy.is_none() && irsa_role_arn.is_none() {
        return None;
    }
    let status = match (&legacy, &irsa_role_arn) {
        (Some(_), Some(_)) => Status::Both,
        (Some(_), None) => Status::Legacy,
        _ => Status::Irsa,
    };
    let host_network = candidate.spec.host_network;
    let works_today = !host_network
        && legacy
            .as_ref()
            .is_some_and(|l| l.verdict.permitted && matches!(l.trust, Trust::Trusted { .. }));
    let usage = Usage {
        namespace: namespace.clone(),
        kind: candidate.key.kind,
        name: candidate.key.name.clone(),
        service_account,
        pods: candidate.pods,
        legacy,
        irsa_role_arn,
        status,
        host_network,
        managed_by: managed_by(candidate.metadata),
        works_today,
        rollout_hold: candidate.hold,
    };
    usage_findings(inventory, &usage, candidate, findings);
    Some(usage)
}

fn legacy_role(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    principals: &[(RoleArn, String)],
    candidate: &Candidate<'_>,
) -> Option<LegacyRole> {
    let role_key = agent.map_or(legacy::ROLE_ANNOTATION, |a| a.role_key.as_str());
    let external_id_key = agent.map_or(legacy::EXTERNAL_ID_ANNOTATION, |a| {
        a.external_id_key.as_str()
    });
    let annotation = candidate.template_annotations.get(role_key).cloned();
    let external_id = candidate.template_annotations.get(external_id_key).cloned();
    let default_arn = match agent.and_then(|a| a.default_role.as_ref()) {
        Some(DefaultRole::Explicit(arn)) => Some(arn.clone()),
        _ => None,
    };
    let (source, arn) = match (&annotation, agent) {
        // kiam treats an empty annotation as no role.
        (Some(value), Some(agent))
            if !(value.is_empty() && agent.system == legacy::System::Kiam) =>
        {
            (RoleSource::Annotation, agent.resolve(value))
        }
        (Some(value), None) if !value.is_empty() => (RoleSource::Annotation, None),
        (None, Some(_)) if default_arn.is_some() && !candidate.spec.host_network => {
            (RoleSource::DefaultRole, default_arn)
        }
        _ => return None,
    };
    let namespace = inventory.namespaces.get(&candidate.key.namespace);
    let verdict = match (agent, &arn) {
        (None, _) => Verdict {
            permitted: false,
            rule: "no legacy agent is installed".into(),
            invalid: None,
        },
        (Some(_), _) if namespace.is_none() => Verdict {
            permitted: false,
            rule: format!(
                "namespace {} is not in the source, so what the agent permits there is unknown",
                candidate.key.namespace
            ),
            invalid: None,
        },
        (Some(_), None) => Verdict {
            permitted: false,
            rule: "the agent's base ARN is unknown, so the role cannot be resolved".into(),
            invalid: None,
        },
        (Some(agent), Some(arn)) => agent.permits(namespace, arn),
    };
    let trust = trust(inventory, principals, arn.as_deref());
    Some(LegacyRole {
        annotation,
        source,
        arn,
        verdict,
        trust,
        external_id,
    })
}

fn trust(inventory: &Inventory, principals: &[(RoleArn, String)], arn: Option<&str>) -> Trust {
    let Some(arn) = arn else {
        return Trust::Unknown {
            reason: "the role ARN could not be resolved".into(),
        };
    };
    let role_arn = match RoleArn::parse(arn) {
        Ok(role_arn) => role_arn,
        Err(e) => {
            return Trust::Unknown {
                reason: e.to_string(),
            };
        }
    };
    let Some(role) = inventory.iam.role(&role_arn) else {
        return if inventory.iam.accounts.contains(role_arn.account()) {
            Trust::RoleNotFound
        } else {
            Trust::Unknown {
                reason: format!(
                    "no IAM data for account {} in the source",
                    role_arn.account()
                ),
            }
        };
    };
    let trust_policy = role.trust_policy();
    principals
        .iter()
        .filter_map(|(principal, _)| {
            let verdict = trust_policy.trusts_role(principal);
            match verdict {
                TrustVerdict::Trusted(how) | TrustVerdict::TrustedWithCondition(how) => {
                    Some(Trust::Trusted {
                        principal: principal.to_string(),
                        how,
                        conditional: matches!(verdict, TrustVerdict::TrustedWithCondition(_)),
                    })
                }
                _ => None,
            }
        })
        .next()
        .unwrap_or(Trust::Missing)
}

fn managed_by(metadata: &ObjectMeta) -> Vec<String> {
    let label = |k: &str| metadata.labels.get(k).map(String::as_str);
    let annotation = |k: &str| metadata.annotations.get(k).map(String::as_str);
    let mut tools = Vec::new();
    let helm = label("app.kubernetes.io/managed-by") == Some("Helm")
        || annotation("meta.helm.sh/release-name").is_some();
    if helm {
        tools.push("helm".to_string());
    }
    // Argo CD 3.x tracks by annotation; 2.x by the instance label, which Helm charts also set.
    if annotation("argocd.argoproj.io/tracking-id").is_some()
        || (!helm && label("app.kubernetes.io/instance").is_some())
    {
        tools.push("argocd".to_string());
    }
    if metadata.labels.keys().any(|k| {
        k.starts_with("kustomize.toolkit.fluxcd.io/") || k.starts_with("helm.toolkit.fluxcd.io/")
    }) {
        tools.push("flux".to_string());
    }
    tools
}

fn usage_findings(
    inventory: &Inventory,
    usage: &Usage,
    candidate: &Candidate<'_>,
    findings: &mut Vec<Finding>,
) {
    let subject = usage.subject();
    let mut add =
        |code: Code, message: String| findings.push(Finding::new(code, subject.clone(), message));
    if let Some(irsa) = &usage.irsa_role_arn {
        let legacy_arn = usage.legacy.as_ref().and_then(|l| l.arn.as_deref());
        let note = match legacy_arn {
            Some(arn) if arn != irsa => format!(
                "; it differs from the legacy role {arn}, and IRSA wins in the SDK credential chain"
            ),
            Some(_) => {
                "; the legacy annotation names the same role, so only the legacy path is left to remove".to_string()
            }
            None => String::new(),
        };
        add(
            Code::AlreadyIrsa,
            format!(
                "service account {} already carries {IRSA_ANNOTATION}={irsa}{note}",
                usage.service_account
            ),
        );
    }
    match candidate.key.kind {
        WorkloadKind::Pod => add(
            Code::BarePod,
            match &candidate.foreign_owner {
                Some(owner) => format!("owned by {owner}, which this tool does not patch: change its pod template by hand, then its pods are re-created"),
                None => "no controller: the pod must be deleted and re-created with the new service account".to_string(),
            },
        ),
        WorkloadKind::Job => add(
            Code::JobImmutable,
            "a Job's pod template is immutable: it must be re-created (or left to finish) to use IRSA".to_string(),
        ),
        _ => {}
    }
    for tool in &usage.managed_by {
        let code = match tool.as_str() {
            "helm" => Code::ManagedByHelm,
            "argocd" => Code::ManagedByArgocd,
            _ => Code::ManagedByFlux,
        };
        add(
            code,
            format!(
                "managed by {tool}: change the source (chart values or Git), or the next sync reverts a live patch"
            ),
        );
    }
    check_token_permission(inventory, usage, candidate.spec, &mut add);
    let Some(legacy) = &usage.legacy else { return };
    if let Some(hold) = usage.rollout_hold {
        add(
            Code::RolloutHeld,
            format!(
                "{}; a migration's restart would not reach its pods, so it is not planned: release the hold, take a new snapshot and plan again, or leave it on the legacy path (decommission keeps what it needs)",
                hold.explain(usage.kind)
            ),
        );
    }
    let written = legacy.annotation.as_deref().unwrap_or("(default role)");
    if usage.host_network {
        add(
            Code::HostNetwork,
            format!(
                "hostNetwork pods bypass the metadata proxy: the {written:?} annotation has no effect and the pod uses the node role today; it is not migrated automatically"
            ),
        );
    }
    if legacy.source == RoleSource::DefaultRole {
        add(
            Code::DefaultRole,
            format!(
                "no role annotation: kube2iam gives this pod its --default-role {}, bypassing namespace restrictions",
                legacy.arn.as_deref().unwrap_or("?")
            ),
        );
    }
    if let Some(invalid) = &legacy.verdict.invalid {
        add(
            Code::InvalidAnnotation,
            format!(
                "namespace {}: {}: {invalid}",
                usage.namespace, legacy.verdict.rule
            ),
        );
    }
    // An uncaptured namespace has its own finding (namespace-not-captured), not a denial.
    if !legacy.verdict.permitted
        && legacy.verdict.invalid.is_none()
        && legacy.arn.is_some()
        && inventory.namespaces.contains_key(&usage.namespace)
    {
        add(
            Code::NamespaceNotPermitted,
            format!(
                "{}: the agent refuses this role today, so it is not migrated",
                legacy.verdict.rule
            ),
        );
    }
    if let Some(arn) = &legacy.arn
        && let Err(e) = RoleArn::parse(arn)
    {
        add(
            Code::InvalidAnnotation,
            format!("annotation {written:?} resolves to {arn:?}: {e}"),
        );
    }
    match &legacy.trust {
        Trust::RoleNotFound => add(
            Code::RoleNotFound,
            format!(
                "role {} does not exist in its account",
                legacy.arn.as_deref().unwrap_or_default()
            ),
        ),
        Trust::Missing => add(
            Code::LegacyTrustMissing,
            format!(
                "role {} does not trust the legacy principal, so the pod gets no credentials today; it is not migrated",
                legacy.arn.as_deref().unwrap_or_default()
            ),
        ),
        Trust::Unknown { reason }
            if legacy
                .arn
                .as_deref()
                .is_some_and(|a| RoleArn::parse(a).is_ok()) =>
        {
            add(
                Code::RoleUnknown,
                format!(
                    "cannot tell whether role {} works today: {reason}",
                    legacy.arn.as_deref().unwrap_or_default()
                ),
            )
        }
        _ => {}
    }
    if let (Some(arn), Some(cluster)) = (
        legacy.arn.as_deref().and_then(|a| RoleArn::parse(a).ok()),
        &inventory.cluster,
    ) && (arn.account() != cluster.account || arn.partition() != cluster.partition)
    {
        let data = if inventory.iam.accounts.contains(arn.account()) {
            ""
        } else {
            "; its IAM data is not in the source"
        };
        add(
            Code::CrossAccountRole,
            format!(
                "role {arn} is in account {}, not the cluster's {}: IRSA needs an OIDC provider for this cluster in that account{data}",
                arn.account(),
                cluster.account
            ),
        );
    }
    if let Some(external_id) = &legacy.external_id {
        add(
            Code::ExternalId,
            format!(
                "the pod passes ExternalId {external_id:?}; AssumeRoleWithWebIdentity has none, so a trust condition on sts:ExternalId must be reworked"
            ),
        );
    }
}

/// Before Kubernetes 1.19 the projected token was mode 0600 owned by root: a non-root container
/// cannot read it unless the pod sets `fsGroup`.
fn check_token_permission(
    inventory: &Inventory,
    usage: &Usage,
    spec: &PodSpec,
    add: &mut impl FnMut(Code, String),
) {
    let Some(version) = inventory
        .cluster
        .as_ref()
        .and_then(|c| c.version.as_deref())
    else {
        return;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (1, 19) || usage.legacy.is_none() {
        return;
    }
    let pod_context = spec.security_context.as_ref();
    if pod_context.and_then(|c| c.fs_group).is_some() {
        return;
    }
    let non_root = spec.all_containers().any(|c| {
        let own = c.security_context.as_ref();
        let user = own
            .and_then(|s| s.run_as_user)
            .or(pod_context.and_then(|s| s.run_as_user));
        let flag = own
            .and_then(|s| s.run_as_non_root)
            .or(pod_context.and_then(|s| s.run_as_non_root));
        user.is_some_and(|u| u != 0) || flag == Some(true)
    });
    if non_root {
        add(
            Code::NonRootTokenPermission,
            format!(
                "Kubernetes {version} mounts the token readable by root only and a container runs as non-root without fsGroup: set spec.securityContext.fsGroup (e.g. 65534) or upgrade to 1.19+"
            ),
        );
    }
}

fn check_shared_service_accounts(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    candidates: &[Candidate<'_>],
    findings: &mut Vec<Finding>,
) {
    let role_key = agent.map_or(legacy::ROLE_ANNOTATION, |a| a.role_key.as_str());
    let mut by_account: BTreeMap<(&str, &str), BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for candidate in candidates {
        let role = candidate
            .template_annotations
            .get(role_key)
            .filter(|r| !r.is_empty())
            .map(|r| {
                agent
                    .and_then(|a| a.resolve(r))
                    .unwrap_or_else(|| r.clone())
            })
            .unwrap_or_else(|| "(none)".to_string());
        by_account
            .entry((
                candidate.key.namespace.as_str(),
                candidate.spec.service_account(),
            ))
            .or_default()
            .entry(role)
            .or_default()
            .push(format!("{}/{}", candidate.key.kind, candidate.key.name));
    }
    for ((namespace, account), roles) in by_account {
        if roles.len() < 2 || roles.keys().all(|r| r == "(none)") {
            continue;
        }
        let detail: Vec<String> = roles
            .iter()
            .map(|(role, users)| format!("{role}: {}", users.join(", ")))
            .collect();
        let exists = inventory
            .service_accounts
            .contains_key(&(namespace.to_string(), account.to_string()));
        findings.push(Finding::new(
            Code::SharedServiceAccount,
            Subject::new(Some(namespace), "ServiceAccount", account),
            format!(
                "workloads sharing this service account use different roles ({}){}; annotating it would widen access, so each role gets a dedicated service account",
                detail.join("; "),
                if exists { "" } else { "; the service account itself is not in the source" }
            ),
        ));
    }
}

fn analyse_node_roles(
    inventory: &Inventory,
    agent: Option<&LegacyAgent>,
    node_roles: &[(String, &'static str)],
    findings: &mut Vec<Finding>,
) -> Vec<NodeRole> {
    let mut roles: Vec<(String, String)> = node_roles
        .iter()
        .map(|(a, s)| (a.clone(), s.to_string()))
        .collect();
    if let Some(arn) = agent.and_then(|a| a.assume_role_arn.clone()) {
        roles.push((arn, "kiam-assume-role".to_string()));
    }
    roles
        .into_iter()
        .map(|(arn, source)| {
            let role = RoleArn::parse(&arn).ok().and_then(|a| inventory.iam.role(&a));
            let described = match source.as_str() {
                "aws-auth" => "node role (from aws-auth)",
                "worker-node-policy" => "node role (carries AmazonEKSWorkerNodePolicy)",
                _ => "kiam server role (--assume-role-arn)",
            };
            let Some(role) = role else {
                return NodeRole { arn, source, found: false, assume_role_grants: Vec::new(), extra_permissions: Vec::new() };
            };
            let subject = Subject::new(None, "IAMRole", &role.arn);
            let mut grants = BTreeSet::new();
            let mut extra = BTreeSet::new();
            let inline = role.inline_policies();
            let mut documents: Vec<(String, &crate::iam::policy::PolicyDocument)> =
                inline.iter().map(|(name, doc)| (format!("inline {name}"), doc)).collect();
            for attached in &role.attached_policies {
                let is_aws_managed = attached.policy_arn.contains(":iam::aws:policy/");
                if is_aws_managed && WORKER_BASELINE.contains(&attached.policy_name.as_str()) {
                    continue;
                }
                match inventory.iam.policies.get(&attached.policy_arn).and_then(|p| p.document.as_ref()) {
                    Some(document) => documents.push((format!("managed {}", attached.policy_name), document)),
                    None => {
                        extra.insert(format!("managed {} (document not in the source)", attached.policy_name));
                    }
                }
            }
            for (origin, document) in documents {
                grants.extend(document.allowed_resources("sts:AssumeRole"));
                for statement in document.statements().into_iter().filter(|s| s.effect_allow) {
                    let actions: Vec<String> = statement
                        .actions()
                        .into_iter()
                        .filter(|a| !a.eq_ignore_ascii_case("sts:AssumeRole"))
                        .collect();
                    if !actions.is_empty() {
                        extra.insert(format!("{origin}: {}", actions.join(", ")));
                    }
                }
            }
            if !grants.is_empty() {
                findings.push(Finding::new(
                    Code::NodeRoleAssumeRole,
                    subject.clone(),
                    format!(
                        "{described} may assume {}: this grant exists for the legacy path and is removed at decommission once no workload needs it",
                        grants.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if !extra.is_empty() {
                findings.push(Finding::new(
                    Code::NodeRoleExtraPermissions,
                    subject,
                    format!(
                        "{described} grants more than an EKS worker needs ({}): pods without a role, and hostNetwork pods, may depend on it silently; once IMDS is locked they lose it",
                        extra.iter().cloned().collect::<Vec<_>>().join("; ")
                    ),
                ));
            }
            NodeRole {
                arn: role.arn.clone(),
                source,
                found: true,
                assume_role_grants: grants.into_iter().collect(),
                extra_permissions: extra.into_iter().collect(),
            }
        })
        .collect()
}
