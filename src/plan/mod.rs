//! The planner: inventory in, the IRSA end state and the ordered, reversible steps to reach it.
//! Pure: no I/O.
//!
//! The binding rules are the safety invariants of the design: only usages that work today move;
//! a service account is annotated only when every workload using it used that same role (others
//! get dedicated service accounts); trust statements are exact (`StringEquals` on `:sub` and
//! `:aud`) and never made to fit with a wildcard.

pub mod naming;
pub mod permissions;
pub mod trust;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::findings::{Code, Finding, Subject};
use crate::iam::arn::RoleArn;
use crate::iam::policy::PolicyDocument;
use crate::inventory::snapshot::fingerprint;
use crate::inventory::{Inventory, WorkloadKind};
use crate::json::CompactJson;
use crate::legacy::{self, Component, LegacyAgent};
use crate::scan::{self, IRSA_ANNOTATION, RoleSource, Scan, Status, Trust, Usage, WorkloadSummary};

/// The `schema` field of a plan document.
pub const PLAN_SCHEMA: &str = "irsa-migrate.plan/v1";
/// What a plan records as its writer: this tool and its version.
pub const GENERATOR: &str = concat!("irsa-migrate ", env!("CARGO_PKG_VERSION"));
/// Pod-template annotation that makes a rollout restart pods whose service account was annotated.
pub const RESTART_ANNOTATION: &str = "irsa-migrate.io/irsa-role";
/// Label on every object the tool creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "irsa-migrate");

/// Phases run in this order; each is applied and can be rolled back as a whole.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// OIDC provider; IRSA trust statements added next to the legacy ones. No effect on pods.
    Prepare,
    /// Dedicated service accounts and their RBAC copies; service-account annotations.
    Identity,
    /// Workloads switched to their service account and restarted: pods get the web-identity token.
    Rollout,
    /// Legacy pod annotations removed (another rolling restart).
    Cleanup,
    /// Legacy trust statements and node/kiam-server AssumeRole grants removed.
    Decommission,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Prepare,
        Phase::Identity,
        Phase::Rollout,
        Phase::Cleanup,
        Phase::Decommission,
    ];

    /// Phases whose steps restart pods, and so run in waves that are checked before the next.
    pub fn restarts_pods(self) -> bool {
        matches!(self, Phase::Rollout | Phase::Cleanup)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Identity => "identity",
            Phase::Rollout => "rollout",
            Phase::Cleanup => "cleanup",
            Phase::Decommission => "decommission",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a step changes. The order here is the order within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    CreateOidcProvider,
    UpdateRoleTrust,
    CreateServiceAccount,
    CopyRbacBinding,
    AnnotateServiceAccount,
    SwitchServiceAccount,
    RestartWorkload,
    RemoveLegacyAnnotation,
    RemoveLegacyTrust,
    RemoveAssumeRoleGrant,
}

impl StepKind {
    pub fn phase(self) -> Phase {
        match self {
            StepKind::CreateOidcProvider | StepKind::UpdateRoleTrust => Phase::Prepare,
            StepKind::CreateServiceAccount
            | StepKind::CopyRbacBinding
            | StepKind::AnnotateServiceAccount => Phase::Identity,
            StepKind::SwitchServiceAccount | StepKind::RestartWorkload => Phase::Rollout,
            StepKind::RemoveLegacyAnnotation => Phase::Cleanup,
            StepKind::RemoveLegacyTrust | StepKind::RemoveAssumeRoleGrant => Phase::Decommission,
        }
    }

    /// IAM steps carry whole documents; Kubernetes steps carry fragments (or whole new objects).
    pub fn is_document(self) -> bool {
        matches!(
            self,
            StepKind::CreateOidcProvider
                | StepKind::UpdateRoleTrust
                | StepKind::RemoveLegacyTrust
                | StepKind::RemoveAssumeRoleGrant
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::CreateOidcProvider => "create-oidc-provider",
            StepKind::UpdateRoleTrust => "update-role-trust",
            StepKind::CreateServiceAccount => "create-service-account",
            StepKind::CopyRbacBinding => "copy-rbac-binding",
            StepKind::AnnotateServiceAccount => "annotate-service-account",
            StepKind::SwitchServiceAccount => "switch-service-account",
            StepKind::RestartWorkload => "restart-workload",
            StepKind::RemoveLegacyAnnotation => "remove-legacy-annotation",
            StepKind::RemoveLegacyTrust => "remove-legacy-trust",
            StepKind::RemoveAssumeRoleGrant => "remove-assume-role-grant",
        }
    }
}

/// The object a step changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Target {
    OidcProvider {
        account: String,
        arn: String,
    },
    Role {
        account: String,
        arn: String,
    },
    InlinePolicy {
        account: String,
        role_arn: String,
        policy_name: String,
    },
    ServiceAccount {
        namespace: String,
        name: String,
    },
    RbacBinding {
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
    },
    Workload {
        namespace: String,
        kind: WorkloadKind,
        name: String,
    },
}

impl Target {
    /// The AWS account whose credentials the step needs, for AWS targets.
    pub fn account(&self) -> Option<&str> {
        match self {
            Target::OidcProvider { account, .. }
            | Target::Role { account, .. }
            | Target::InlinePolicy { account, .. } => Some(account),
            _ => None,
        }
    }

    /// Whether IAM holds the target (written with an account's credentials) rather than
    /// Kubernetes: the one rule backends, renderers and the planner route by.
    pub fn is_iam(&self) -> bool {
        match self {
            Target::OidcProvider { .. } | Target::Role { .. } | Target::InlinePolicy { .. } => true,
            Target::ServiceAccount { .. }
            | Target::RbacBinding { .. }
            | Target::Workload { .. } => false,
        }
    }

    pub fn namespace(&self) -> Option<&str> {
        match self {
            Target::ServiceAccount { namespace, .. } | Target::Workload { namespace, .. } => {
                Some(namespace)
            }
            Target::RbacBinding { namespace, .. } => namespace.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::OidcProvider { arn, .. } | Target::Role { arn, .. } => f.write_str(arn),
            Target::InlinePolicy {
                role_arn,
                policy_name,
                ..
            } => write!(f, "{role_arn}#{policy_name}"),
            Target::ServiceAccount { namespace, name } => {
                write!(f, "{namespace}/ServiceAccount/{name}")
            }
            Target::RbacBinding {
                kind,
                namespace: Some(ns),
                name,
            } => write!(f, "{ns}/{kind}/{name}"),
            Target::RbacBinding {
                kind,
                namespace: None,
                name,
            } => write!(f, "{kind}/{name}"),
            Target::Workload {
                namespace,
                kind,
                name,
            } => write!(f, "{namespace}/{kind}/{name}"),
        }
    }
}

/// One reversible change. `before` and `after` are the fields the step touches, as they are and
/// as they will be (`null`: the object does not exist). The id is stable across re-planning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub phase: Phase,
    pub kind: StepKind,
    pub target: Target,
    pub description: String,
    pub before: Side,
    pub after: Side,
}

/// One side of a step: the whole document for IAM steps, a fragment for Kubernetes steps.
pub type Side = CompactJson;

impl Step {
    fn new(
        kind: StepKind,
        target: Target,
        description: String,
        before: Value,
        after: Value,
    ) -> Step {
        let (before, after) = (Side::new(&before), Side::new(&after));
        Step {
            id: format!("{}:{}", kind.as_str(), target),
            phase: kind.phase(),
            kind,
            target,
            description,
            before,
            after,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceAccountAction {
    /// The service account every user shares is annotated in place.
    Reuse,
    /// A dedicated service account is created, copying the shared one's settings and RBAC.
    Create,
    /// The service account already carries the role (its users had it through both paths):
    /// nothing to annotate; its workloads are restarted and leave the legacy path.
    Keep,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub name: String,
}

/// The target: a service account bound to a role, and the workloads that move to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub service_account_action: ServiceAccountAction,
    /// The service account the workloads use today.
    pub from_service_account: String,
    pub workloads: Vec<WorkloadRef>,
}

/// A workload the plan does not migrate, and why (a finding code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub reason: Code,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCluster {
    pub name: String,
    pub account: String,
    pub region: String,
    pub partition: String,
    pub oidc_issuer: String,
    pub oidc_provider_arn: String,
}

/// An AWS account the plan writes to, and what that takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountNote {
    pub account: String,
    pub steps: usize,
    pub iam_data_in_source: bool,
    pub credentials: String,
}

/// What decommission leaves to the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decommission {
    /// Legacy agent objects to delete once everything is on IRSA, with the command.
    pub delete_agents: Vec<String>,
    /// Legacy grants and trust kept, and why.
    pub kept: Vec<String>,
    /// How to lock the instance metadata endpoint afterwards.
    pub lock_imds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub trust_policy_limit: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            trust_policy_limit: trust::DEFAULT_TRUST_POLICY_LIMIT,
        }
    }
}

/// The plan document, `irsa-migrate.plan/v1` (docs/plan-schema.md). Deterministic: the same
/// inventory and settings give the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: String,
    /// The tool and version that wrote the plan (`irsa-migrate 0.1.0`); empty in plans written
    /// before it was recorded. Not part of the content: the same steps from two versions are
    /// the same plan.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generator: String,
    pub name: String,
    /// `sha256:` of the inventory the plan was computed from.
    pub fingerprint: String,
    pub settings: Settings,
    pub cluster: PlanCluster,
    /// The annotation keys the legacy agent reads (removed at cleanup).
    pub legacy_annotations: Vec<String>,
    pub accounts: Vec<AccountNote>,
    pub bindings: Vec<Binding>,
    pub skipped: Vec<Skipped>,
    pub findings: Vec<Finding>,
    pub steps: Vec<Step>,
    pub decommission: Decommission,
}

impl Plan {
    /// `sha256:` of the plan's content (its compact JSON, fields in schema order): what the
    /// journal binds a migration to and report.md shows. Reformatting plan.json, or a checkout
    /// with CRLF line endings, leaves it unchanged, and so does the version that wrote it; any
    /// change to a value changes it.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let content = Plan {
            generator: String::new(),
            ..self.clone()
        };
        let json = serde_json::to_vec(&content).expect("a plan serializes");
        format!("sha256:{:x}", Sha256::digest(json))
    }

    /// Workloads that move to IRSA.
    pub fn moved_workloads(&self) -> usize {
        self.bindings.iter().map(|b| b.workloads.len()).sum()
    }

    /// Dedicated service accounts the plan creates.
    pub fn created_service_accounts(&self) -> usize {
        self.bindings
            .iter()
            .filter(|b| b.service_account_action == ServiceAccountAction::Create)
            .count()
    }
}

/// Why no plan can be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the source has no `aws eks describe-cluster` output, so the OIDC issuer is unknown; add it to the snapshot (docs/snapshot.md)"
    )]
    ClusterUnknown,
    #[error("cluster {0} has no OIDC issuer in its describe-cluster output; IRSA needs one")]
    NoIssuer(String),
    #[error("--trust-policy-limit {0} is out of range: IAM allows 2048 (default) up to 4096")]
    LimitOutOfRange(usize),
    /// The source's OIDC issuer is not one EKS gives: every migrated role would come to trust it
    /// (`https://evil.example.com`, `https://*`). `--issuer-any` accepts it.
    #[error(
        "the source's OIDC issuer is refused, since every migrated role would trust it: {0}. Check `aws eks describe-cluster --name <cluster> --query cluster.identity.oidc.issuer`; if this cluster's issuer really has another form (not an EKS cluster), pass --issuer-any"
    )]
    IssuerNotEks(#[source] crate::iam::issuer::NotEksIssuer),
    /// The planner made a plan its own checks refuse: the source holds names or ARNs that no
    /// real cluster has (a hostile or corrupted snapshot).
    #[error("the source makes a plan that fails its own checks: {0}")]
    Invalid(#[source] validate::InvalidPlan),
}

enum Decision {
    Migrate(String),
    Skip(Code, String),
}

pub fn plan(inventory: &Inventory, name: &str, settings: &Settings) -> Result<Plan, PlanError> {
    plan_with_scan(inventory, &scan::scan(inventory), name, settings)
}

/// [`plan`] for a caller that has already scanned `inventory` (the scan must be of it).
pub fn plan_with_scan(
    inventory: &Inventory,
    scan: &Scan,
    name: &str,
    settings: &Settings,
) -> Result<Plan, PlanError> {
    if !(1..=trust::MAX_TRUST_POLICY_LIMIT).contains(&settings.trust_policy_limit) {
        return Err(PlanError::LimitOutOfRange(settings.trust_policy_limit));
    }
    let cluster = inventory
        .cluster
        .as_ref()
        .ok_or(PlanError::ClusterUnknown)?;
    let (Some(issuer_host), Some(provider_arn), Some(issuer_url)) = (
        cluster.issuer_host_path(),
        cluster.oidc_provider_arn(),
        cluster.oidc_issuer.clone(),
    ) else {
        return Err(PlanError::NoIssuer(cluster.name.clone()));
    };
    let agent = scan
        .agents
        .iter()
        .find(|a| a.component != Component::KiamAgent);
    let mut planner = Planner {
        inventory,
        scan,
        usages: scan
            .usages
            .iter()
            .map(|u| ((u.namespace.as_str(), u.kind, u.name.as_str()), u))
            .collect(),
        agent,
        issuer_host,
        limit: settings.trust_policy_limit,
        findings: scan.findings.clone(),
        skipped: Vec::new(),
        bindings: Vec::new(),
    };
    planner.bind();
    let (mut steps, trust_after_prepare) = planner.trust_steps();
    steps.extend(planner.provider_steps(&issuer_url));
    steps.extend(planner.identity_steps());
    steps.extend(planner.rollout_and_cleanup_steps());
    let (decommission_steps, decommission) = planner.decommission(&trust_after_prepare);
    steps.extend(decommission_steps);
    steps.sort_by(|a, b| (a.phase, a.kind, &a.target).cmp(&(b.phase, b.kind, &b.target)));
    // Grown by doubling; a large plan would otherwise carry tens of thousands of empty slots.
    steps.shrink_to_fit();

    let mut accounts: BTreeMap<String, usize> = BTreeMap::new();
    for step in &steps {
        if let Some(account) = step.target.account() {
            *accounts.entry(account.to_string()).or_default() += 1;
        }
    }
    let accounts = accounts
        .into_iter()
        .map(|(account, steps)| AccountNote {
            iam_data_in_source: inventory.iam.accounts.contains(&account),
            credentials: if account == cluster.account {
                "the cluster's account: the default AWS credentials".to_string()
            } else {
                format!("another account: credentials for {account} (--account-profile {account}=PROFILE)")
            },
            account,
            steps,
        })
        .collect();
    let mut findings = planner.findings;
    crate::findings::sort_and_dedup(&mut findings);
    let mut skipped = planner.skipped;
    skipped.sort_by(|a, b| {
        (&a.namespace, a.kind, &a.name, a.reason).cmp(&(&b.namespace, b.kind, &b.name, b.reason))
    });
    skipped.dedup_by(|a, b| (&a.namespace, a.kind, &a.name) == (&b.namespace, b.kind, &b.name));
    let mut bindings = planner.bindings;
    bindings.sort_by(|a, b| {
        (&a.namespace, &a.service_account).cmp(&(&b.namespace, &b.service_account))
    });
    let role_key = agent.map_or(legacy::ROLE_ANNOTATION, |a| a.role_key.as_str());
    let external_id_key = agent.map_or(legacy::EXTERNAL_ID_ANNOTATION, |a| {
        a.external_id_key.as_str()
    });
    Ok(Plan {
        schema: PLAN_SCHEMA.to_string(),
        generator: GENERATOR.to_string(),
        name: name.to_string(),
        fingerprint: fingerprint(inventory),
        settings: settings.clone(),
        cluster: PlanCluster {
            name: cluster.name.clone(),
            account: cluster.account.clone(),
            region: cluster.region.clone(),
            partition: cluster.partition.clone(),
            oidc_issuer: issuer_url,
            oidc_provider_arn: provider_arn,
        },
        legacy_annotations: vec![role_key.to_string(), external_id_key.to_string()],
        accounts,
        bindings,
        skipped,
        findings,
        steps,
        decommission,
    })
}

struct Planner<'a> {
    inventory: &'a Inventory,
    scan: &'a Scan,
    /// The scan's usages by (namespace, kind, name).
    usages: BTreeMap<(&'a str, WorkloadKind, &'a str), &'a Usage>,
    agent: Option<&'a LegacyAgent>,
    issuer_host: &'a str,
    limit: usize,
    findings: Vec<Finding>,
    skipped: Vec<Skipped>,
    bindings: Vec<Binding>,
}

impl<'a> Planner<'a> {
    fn usage(&self, namespace: &str, kind: WorkloadKind, name: &str) -> Option<&'a Usage> {
        self.usages.get(&(namespace, kind, name)).copied()
    }

    /// [`Planner::role_today`], or the legacy role of a workload whose namespace was not
    /// captured: whether that works today cannot be told, so decommission must not cut it off.
    fn role_maybe_today(&self, usage: &'a Usage) -> Option<&'a str> {
        let unknown = !self.inventory.namespaces.contains_key(&usage.namespace);
        Self::role_today(usage).or_else(|| {
            usage
                .legacy
                .as_ref()
                .filter(|_| unknown)
                .and_then(|l| l.arn.as_deref())
        })
    }

    /// The role a workload has today through the legacy path, if it really works.
    fn role_today(usage: &Usage) -> Option<&str> {
        usage
            .legacy
            .as_ref()
            .filter(|_| usage.works_today)
            .and_then(|l| l.arn.as_deref())
    }

    fn decide(usage: &Usage) -> Decision {
        let Some(legacy) = &usage.legacy else {
            return Decision::Skip(
                Code::AlreadyIrsa,
                "uses IRSA only; nothing to migrate".into(),
            );
        };
        // An account annotated with the legacy role already gives it through IRSA: migrating
        // only restarts the workload and removes the legacy annotation. Another role is never
        // overwritten.
        if usage.status == Status::Both && usage.irsa_role_arn != legacy.arn {
            return Decision::Skip(
                Code::AlreadyIrsa,
                format!(
                    "its service account already carries {}, another role than the legacy path's, and is never overwritten",
                    usage.irsa_role_arn.as_deref().unwrap_or_default()
                ),
            );
        }
        if usage.host_network {
            return Decision::Skip(
                Code::HostNetwork,
                "hostNetwork: uses the node role today, not the annotated role".into(),
            );
        }
        if let Some(invalid) = &legacy.verdict.invalid {
            return Decision::Skip(
                Code::InvalidAnnotation,
                format!("{}: {invalid}", legacy.verdict.rule),
            );
        }
        let Some(arn) = &legacy.arn else {
            return Decision::Skip(Code::LegacyAgentConfig, legacy.verdict.rule.clone());
        };
        if RoleArn::parse(arn).is_err() {
            return Decision::Skip(Code::InvalidAnnotation, format!("{arn} is not a role ARN"));
        }
        if !legacy.verdict.permitted {
            return Decision::Skip(Code::NamespaceNotPermitted, legacy.verdict.rule.clone());
        }
        match &legacy.trust {
            Trust::RoleNotFound => {
                return Decision::Skip(Code::RoleNotFound, format!("{arn} does not exist"));
            }
            Trust::Missing => {
                return Decision::Skip(
                    Code::LegacyTrustMissing,
                    format!("{arn} does not trust the legacy principal"),
                );
            }
            Trust::Unknown { reason } => return Decision::Skip(Code::RoleUnknown, reason.clone()),
            Trust::Trusted { .. } => {}
        }
        if legacy.source == RoleSource::DefaultRole {
            return Decision::Skip(
                Code::DefaultRole,
                "gets kube2iam's default role without asking for it; give it a role annotation if it needs one".into(),
            );
        }
        if let Some(hold) = usage.rollout_hold {
            return Decision::Skip(
                Code::RolloutHeld,
                format!(
                    "{}; release the hold, take a new snapshot and plan again",
                    hold.explain(usage.kind)
                ),
            );
        }
        match usage.kind {
            WorkloadKind::Pod => Decision::Skip(
                Code::BarePod,
                "a bare pod must be re-created by hand".into(),
            ),
            WorkloadKind::Job => Decision::Skip(
                Code::JobImmutable,
                "a Job's template cannot change; re-create it".into(),
            ),
            _ => Decision::Migrate(arn.clone()),
        }
    }

    fn skip(
        &mut self,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
        reason: Code,
        message: String,
    ) {
        self.skipped.push(Skipped {
            namespace: namespace.to_string(),
            kind,
            name: name.to_string(),
            reason,
            message,
        });
    }

    /// Groups workloads by service account and decides, per account, reuse or dedicated accounts.
    fn bind(&mut self) {
        let mut by_account: BTreeMap<(&str, &str), Vec<&WorkloadSummary>> = BTreeMap::new();
        for workload in &self.scan.workloads {
            by_account
                .entry((&workload.namespace, &workload.service_account))
                .or_default()
                .push(workload);
        }
        let mut taken: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (namespace, name) in self.inventory.service_accounts.keys() {
            taken
                .entry(namespace.clone())
                .or_default()
                .insert(name.clone());
        }
        for ((namespace, account), users) in by_account {
            if !self.inventory.namespaces.contains_key(namespace) {
                for user in &users {
                    if self.usage(namespace, user.kind, &user.name).is_some() {
                        self.skip(
                            namespace,
                            user.kind,
                            &user.name,
                            Code::NamespaceNotCaptured,
                            format!("namespace {namespace} is not in the source"),
                        );
                    }
                }
                continue;
            }
            let mut migrating: BTreeMap<String, Vec<&WorkloadSummary>> = BTreeMap::new();
            let mut roles_today = BTreeSet::new();
            for user in &users {
                let usage = self.usage(namespace, user.kind, &user.name);
                roles_today.insert(usage.and_then(Self::role_today));
                let Some(usage) = usage else { continue };
                match Self::decide(usage) {
                    Decision::Migrate(role) => migrating.entry(role).or_default().push(user),
                    Decision::Skip(code, message) => {
                        self.skip(namespace, user.kind, &user.name, code, message)
                    }
                }
            }
            if migrating.is_empty() {
                continue;
            }
            let inventory = self.inventory;
            let Some(service_account) = inventory
                .service_accounts
                .get(&(namespace.to_string(), account.to_string()))
            else {
                for user in migrating.values().flatten() {
                    self.skip(
                        namespace,
                        user.kind,
                        &user.name,
                        Code::ServiceAccountMissing,
                        format!("service account {account} is not in the source"),
                    );
                }
                self.findings.push(Finding::new(
                    Code::ServiceAccountMissing,
                    Subject::new(Some(namespace), "ServiceAccount", account),
                    "workloads run as this service account, but it is not in the source; capture service accounts and re-plan",
                ));
                continue;
            };
            if let Some(annotated) = service_account.metadata.annotations.get(IRSA_ANNOTATION) {
                // Every user of an annotated account already has its role through IRSA, so its
                // users migrating (legacy role = that role, as `decide` ensures) keep the account
                // as it is: nothing on it changes, so unlike annotating, this needs no agreement
                // from its other users.
                for (role, users) in migrating {
                    if &role == annotated {
                        self.bindings.push(Binding {
                            namespace: namespace.to_string(),
                            service_account: account.to_string(),
                            role_arn: role,
                            service_account_action: ServiceAccountAction::Keep,
                            from_service_account: account.to_string(),
                            workloads: refs(&users),
                        });
                    } else {
                        for user in users {
                            self.skip(
                                namespace,
                                user.kind,
                                &user.name,
                                Code::AlreadyIrsa,
                                format!("its service account {account} carries {annotated}, not its legacy role {role}"),
                            );
                        }
                    }
                }
                continue;
            }
            // Reuse only when every user of the account has exactly this role today.
            let only_role = (migrating.len() == 1 && roles_today.len() == 1)
                .then(|| migrating.keys().next().cloned())
                .flatten()
                .filter(|role| roles_today.contains(&Some(role.as_str())));
            if let Some(role) = only_role {
                let workloads = refs(&migrating[&role]);
                self.bindings.push(Binding {
                    namespace: namespace.to_string(),
                    service_account: account.to_string(),
                    role_arn: role,
                    service_account_action: ServiceAccountAction::Reuse,
                    from_service_account: account.to_string(),
                    workloads,
                });
                continue;
            }
            for (role, users) in migrating {
                let role_name = RoleArn::parse(&role)
                    .map(|r| r.name().to_string())
                    .unwrap_or_default();
                let taken_here = taken.entry(namespace.to_string()).or_default();
                let name = naming::unique_name(
                    &[account, &role_name],
                    &format!("{namespace}/{account}/{role}"),
                    taken_here,
                );
                taken_here.insert(name.clone());
                self.findings.push(Finding::new(
                    Code::DedicatedServiceAccount,
                    Subject::new(Some(namespace), "ServiceAccount", &name),
                    format!(
                        "created for {} (role {role}), which shared service account {account} with workloads of other roles; it copies {account}'s pull secrets, automount setting and RBAC bindings",
                        users.iter().map(|u| format!("{}/{}", u.kind, u.name)).collect::<Vec<_>>().join(", ")
                    ),
                ));
                self.bindings.push(Binding {
                    namespace: namespace.to_string(),
                    service_account: name,
                    role_arn: role,
                    service_account_action: ServiceAccountAction::Create,
                    from_service_account: account.to_string(),
                    workloads: refs(&users),
                });
            }
        }
    }

    /// One trust step per target role whose policy changes; a role whose policy would exceed the
    /// limit is dropped with its bindings. Also returns every target role's trust after prepare.
    /// The prepare phase's trust steps, and each planned role's trust after prepare (compact:
    /// thousands of documents live until decommission is planned).
    fn trust_steps(&mut self) -> (Vec<Step>, BTreeMap<String, CompactJson>) {
        let mut by_role: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for binding in &self.bindings {
            by_role
                .entry(binding.role_arn.clone())
                .or_default()
                .push(trust::subject(&binding.namespace, &binding.service_account));
        }
        let mut steps = Vec::new();
        let mut after_prepare = BTreeMap::new();
        for (role_arn, subjects) in by_role {
            // Every migrating usage works today, so its role is in the inventory.
            let Some((parsed, role)) = RoleArn::parse(&role_arn)
                .ok()
                .and_then(|parsed| Some((parsed.clone(), self.inventory.iam.role(&parsed)?)))
            else {
                continue;
            };
            let provider = self.provider_arn(parsed.partition(), parsed.account());
            let before = role.trust_policy();
            let after = trust::add_web_identity(&before, &provider, self.issuer_host, &subjects);
            let (before_len, after_len) = (trust::length(&before), trust::length(&after));
            if after_len > self.limit {
                self.drop_role(&role_arn, before_len, after_len, subjects.len());
                continue;
            }
            if after != before {
                steps.push(Step::new(
                    StepKind::UpdateRoleTrust,
                    Target::Role { account: parsed.account().to_string(), arn: role.arn.clone() },
                    format!(
                        "trust {} through the cluster's OIDC provider ({before_len} → {after_len} of {} characters); the legacy trust stays until decommission",
                        subjects.join(", "),
                        self.limit
                    ),
                    before.0,
                    after.0.clone(),
                ));
            }
            after_prepare.insert(role_arn, CompactJson::new(&after.0));
        }
        (steps, after_prepare)
    }

    fn provider_arn(&self, partition: &str, account: &str) -> String {
        format!(
            "arn:{partition}:iam::{account}:oidc-provider/{}",
            self.issuer_host
        )
    }

    fn drop_role(&mut self, role_arn: &str, before_len: usize, after_len: usize, subjects: usize) {
        self.findings.push(Finding::new(
            Code::TrustPolicyTooLarge,
            Subject::new(None, "IAMRole", role_arn),
            format!(
                "adding {subjects} service account(s) would make the trust policy {after_len} characters (now {before_len}), over the limit of {}: raise the IAM quota (up to 4096) and pass --trust-policy-limit, remove stale statements, or split the workloads over several roles; no wildcard is used instead",
                self.limit
            ),
        ));
        let dropped: Vec<Binding> = self
            .bindings
            .iter()
            .filter(|b| b.role_arn == role_arn)
            .cloned()
            .collect();
        self.bindings.retain(|b| b.role_arn != role_arn);
        for binding in dropped {
            for workload in &binding.workloads {
                self.skip(
                    &binding.namespace,
                    workload.kind,
                    &workload.name,
                    Code::TrustPolicyTooLarge,
                    format!(
                        "the trust policy of {role_arn} would exceed {} characters",
                        self.limit
                    ),
                );
            }
        }
    }

    /// An OIDC provider in every account whose roles are bound, unless IAM already has it.
    fn provider_steps(&self, issuer_url: &str) -> Vec<Step> {
        let accounts: BTreeSet<(String, String)> = self
            .bindings
            .iter()
            .filter_map(|b| RoleArn::parse(&b.role_arn).ok())
            .map(|r| (r.partition().to_string(), r.account().to_string()))
            .collect();
        accounts
            .into_iter()
            .filter_map(|(partition, account)| {
                let arn = self.provider_arn(&partition, &account);
                let exists = self.inventory.iam.oidc_providers.as_ref().is_some_and(|known| known.contains(&arn));
                (!exists).then(|| {
                    Step::new(
                        StepKind::CreateOidcProvider,
                        Target::OidcProvider { account: account.clone(), arn },
                        format!("create the IAM OIDC provider for {issuer_url} in account {account}, client id {}", trust::AUDIENCE),
                        Value::Null,
                        json!({"Url": issuer_url, "ClientIDList": [trust::AUDIENCE]}),
                    )
                })
            })
            .collect()
    }

    fn identity_steps(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        // Bindings by the service accounts they name, and binding names taken per kind and
        // namespace: built once, so copying stays linear in the cluster's size.
        let mut rbac: RbacIndex<'_> = BTreeMap::new();
        let mut taken: BTreeMap<(String, Option<String>), BTreeSet<String>> = BTreeMap::new();
        for binding in &self.inventory.rbac_bindings {
            taken
                .entry((binding.kind.clone(), binding.namespace.clone()))
                .or_default()
                .insert(binding.metadata.name.clone());
            let mut named: BTreeSet<(&str, &str)> = BTreeSet::new();
            for subject in binding
                .subjects
                .iter()
                .filter(|s| s.kind == "ServiceAccount")
            {
                if let Some(namespace) = subject
                    .namespace
                    .as_deref()
                    .or(binding.namespace.as_deref())
                {
                    named.insert((namespace, subject.name.as_str()));
                }
            }
            for key in named {
                rbac.entry(key).or_default().push(binding);
            }
        }
        for binding in &self.bindings {
            let namespace = &binding.namespace;
            let target = Target::ServiceAccount {
                namespace: namespace.clone(),
                name: binding.service_account.clone(),
            };
            match binding.service_account_action {
                // Nothing to annotate, and nothing for a rollback to remove.
                ServiceAccountAction::Keep => {}
                ServiceAccountAction::Reuse => steps.push(Step::new(
                    StepKind::AnnotateServiceAccount,
                    target,
                    format!(
                        "annotate {namespace}/{} with role {}",
                        binding.service_account, binding.role_arn
                    ),
                    json!({"metadata": {"annotations": {}}}),
                    json!({"metadata": {"annotations": {IRSA_ANNOTATION: binding.role_arn}}}),
                )),
                ServiceAccountAction::Create => {
                    let key = (namespace.clone(), binding.from_service_account.clone());
                    let source = self.inventory.service_accounts.get(&key);
                    let mut account = json!({
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {
                            "name": binding.service_account,
                            "namespace": namespace,
                            "labels": {MANAGED_BY.0: MANAGED_BY.1},
                            "annotations": {IRSA_ANNOTATION: binding.role_arn},
                        },
                    });
                    if let Some(source) = source {
                        if !source.image_pull_secrets.is_empty() {
                            account["imagePullSecrets"] = json!(source.image_pull_secrets);
                        }
                        if let Some(automount) = source.automount_service_account_token {
                            account["automountServiceAccountToken"] = json!(automount);
                        }
                    }
                    steps.push(Step::new(
                        StepKind::CreateServiceAccount,
                        target,
                        format!(
                            "create {namespace}/{} for role {}, copying {}'s pull secrets and automount setting",
                            binding.service_account, binding.role_arn, binding.from_service_account
                        ),
                        Value::Null,
                        account,
                    ));
                    steps.extend(self.rbac_copies(binding, &rbac, &mut taken));
                }
            }
        }
        steps
    }

    /// A copy of every RoleBinding and ClusterRoleBinding that names the shared service account,
    /// naming the dedicated one instead.
    fn rbac_copies(
        &self,
        binding: &Binding,
        rbac: &RbacIndex<'_>,
        taken: &mut BTreeMap<(String, Option<String>), BTreeSet<String>>,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        let key = (
            binding.namespace.as_str(),
            binding.from_service_account.as_str(),
        );
        for rbac in rbac.get(&key).into_iter().flatten().copied() {
            let names = taken
                .entry((rbac.kind.clone(), rbac.namespace.clone()))
                .or_default();
            let seed = format!(
                "{}/{:?}/{}/{}",
                rbac.kind, rbac.namespace, rbac.metadata.name, binding.service_account
            );
            let name = naming::unique_name(
                &[&rbac.metadata.name, &binding.service_account],
                &seed,
                names,
            );
            names.insert(name.clone());
            let mut metadata = json!({"name": name, "labels": {MANAGED_BY.0: MANAGED_BY.1}});
            if let Some(namespace) = &rbac.namespace {
                metadata["namespace"] = json!(namespace);
            }
            steps.push(Step::new(
                StepKind::CopyRbacBinding,
                Target::RbacBinding { kind: rbac.kind.clone(), namespace: rbac.namespace.clone(), name: name.clone() },
                format!(
                    "copy {} {} ({} {}) for service account {}/{}",
                    rbac.kind, rbac.metadata.name, rbac.role_ref.kind, rbac.role_ref.name, binding.namespace, binding.service_account
                ),
                Value::Null,
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": rbac.kind,
                    "metadata": metadata,
                    "roleRef": rbac.role_ref,
                    "subjects": [{"kind": "ServiceAccount", "name": binding.service_account, "namespace": binding.namespace}],
                }),
            ));
        }
        steps
    }

    fn rollout_and_cleanup_steps(&self) -> Vec<Step> {
        let legacy_keys = [
            self.agent
                .map_or(legacy::ROLE_ANNOTATION, |a| a.role_key.as_str()),
            self.agent.map_or(legacy::EXTERNAL_ID_ANNOTATION, |a| {
                a.external_id_key.as_str()
            }),
        ];
        let mut steps = Vec::new();
        for binding in &self.bindings {
            for workload in &binding.workloads {
                let key = crate::inventory::WorkloadKey {
                    namespace: binding.namespace.clone(),
                    kind: workload.kind,
                    name: workload.name.clone(),
                };
                let Some(object) = self.inventory.workloads.get(&key) else {
                    continue;
                };
                let target = Target::Workload {
                    namespace: key.namespace.clone(),
                    kind: key.kind,
                    name: key.name.clone(),
                };
                let template = &object.template;
                match binding.service_account_action {
                    ServiceAccountAction::Create => {
                        // The account fields as the template has them (a real server's reads
                        // always carry both, equal).
                        let mut before = serde_json::Map::new();
                        if let Some(name) = &template.spec.service_account_name {
                            before.insert("serviceAccountName".into(), json!(name));
                        }
                        if let Some(name) = &template.spec.service_account {
                            before.insert("serviceAccount".into(), json!(name));
                        }
                        steps.push(Step::new(
                            StepKind::SwitchServiceAccount,
                            target.clone(),
                            format!(
                                "run {key} as {} instead of {}{}",
                                binding.service_account,
                                binding.from_service_account,
                                restart_note(key.kind)
                            ),
                            template_fragment(key.kind, json!({"spec": before})),
                            template_fragment(key.kind, json!({"spec": served_service_account(&binding.service_account)})),
                        ));
                    }
                    // A CronJob's next Jobs pick up the annotated account by themselves.
                    ServiceAccountAction::Reuse | ServiceAccountAction::Keep if key.kind != WorkloadKind::CronJob => steps.push(Step::new(
                        StepKind::RestartWorkload,
                        target.clone(),
                        format!("restart {key} so the webhook injects the token for {}", binding.role_arn),
                        template_fragment(key.kind, json!({"metadata": {"annotations": {}}})),
                        template_fragment(key.kind, json!({"metadata": {"annotations": {RESTART_ANNOTATION: binding.role_arn}}})),
                    )),
                    ServiceAccountAction::Reuse | ServiceAccountAction::Keep => {}
                }
                let present: serde_json::Map<String, Value> = legacy_keys
                    .iter()
                    .filter_map(|k| {
                        Some((k.to_string(), json!(template.metadata.annotations.get(k)?)))
                    })
                    .collect();
                steps.push(Step::new(
                    StepKind::RemoveLegacyAnnotation,
                    target,
                    format!(
                        "remove the legacy annotations from {key}{}",
                        restart_note(key.kind)
                    ),
                    template_fragment(key.kind, json!({"metadata": {"annotations": present}})),
                    template_fragment(key.kind, json!({"metadata": {"annotations": {}}})),
                ));
            }
        }
        steps
    }

    /// Legacy trust and AssumeRole grants that no remaining workload needs, and the report of
    /// what stays and what the operator removes by hand.
    fn decommission(
        &self,
        after_prepare: &BTreeMap<String, CompactJson>,
    ) -> (Vec<Step>, Decommission) {
        let moved: BTreeSet<(&str, WorkloadKind, &str)> = self
            .bindings
            .iter()
            .flat_map(|b| {
                b.workloads
                    .iter()
                    .map(move |w| (b.namespace.as_str(), w.kind, w.name.as_str()))
            })
            .collect();
        let remaining: Vec<&Usage> = self
            .scan
            .usages
            .iter()
            .filter(|u| {
                self.role_maybe_today(u).is_some()
                    && !moved.contains(&(u.namespace.as_str(), u.kind, u.name.as_str()))
            })
            .collect();
        let mut remaining_by_role: BTreeMap<&str, Vec<&Usage>> = BTreeMap::new();
        for usage in &remaining {
            if let Some(role) = self.role_maybe_today(usage) {
                remaining_by_role.entry(role).or_default().push(usage);
            }
        }
        let mut report = Decommission::default();
        let mut steps = Vec::new();
        let principals = &self.scan.legacy_principals;
        for (role_arn, trust_after_prepare) in after_prepare {
            let trust_after_prepare = &PolicyDocument(trust_after_prepare.value());
            if let Some(still_used) = remaining_by_role.get(role_arn.as_str()) {
                report.kept.push(format!(
                    "legacy trust of {role_arn}: still used through the legacy agent by {}",
                    name_some(still_used)
                ));
                continue;
            }
            let after = principals
                .iter()
                .fold(trust_after_prepare.clone(), |doc, p| {
                    trust::remove_principal(&doc, p)
                });
            let conditioned: usize = principals
                .iter()
                .map(|p| trust::conditioned_trust(&after, p))
                .sum();
            if conditioned > 0 {
                report.kept.push(format!("legacy trust of {role_arn}: {conditioned} statement(s) trust the legacy principal under a condition (an sts:ExternalId, a source), for a purpose the plan cannot see; kept, review by hand"));
            }
            if &after == trust_after_prepare && conditioned > 0 {
                continue;
            }
            if &after == trust_after_prepare {
                report.kept.push(format!("legacy trust of {role_arn}: it trusts the account or everyone, not the legacy role by name; review by hand"));
                continue;
            }
            let account = RoleArn::parse(role_arn)
                .map(|r| r.account().to_string())
                .unwrap_or_default();
            steps.push(Step::new(
                StepKind::RemoveLegacyTrust,
                Target::Role {
                    account,
                    arn: role_arn.clone(),
                },
                format!(
                    "stop trusting the legacy principal ({}) in {role_arn}",
                    principals.join(", ")
                ),
                trust_after_prepare.0.clone(),
                after.0,
            ));
        }
        for node_role in &self.scan.node_roles {
            let Some(role) = RoleArn::parse(&node_role.arn)
                .ok()
                .and_then(|a| self.inventory.iam.role(&a))
            else {
                continue;
            };
            if node_role.assume_role_grants.is_empty() {
                continue;
            }
            if !remaining.is_empty() {
                let names = name_some(&remaining);
                report.kept.push(format!(
                    "sts:AssumeRole grants of {}: still needed by {}, which get credentials through the legacy agent",
                    role.arn,
                    names
                ));
                continue;
            }
            let account = RoleArn::parse(&role.arn)
                .map(|r| r.account().to_string())
                .unwrap_or_default();
            // Only grants on exactly the roles this plan moved off the legacy path, or on the
            // legacy principal (kiam's server role), are the legacy path's; others are reported.
            let legacy_roles: BTreeSet<String> = self
                .bindings
                .iter()
                .map(|b| b.role_arn.clone())
                .chain(principals.iter().cloned())
                .collect();
            for (policy_name, document) in role.inline_policies() {
                let document = &document;
                let removal = trust::remove_legacy_grants(document, &legacy_roles);
                for reason in &removal.kept {
                    report.kept.push(format!(
                        "inline policy {policy_name} of {}: {reason}",
                        role.arn
                    ));
                }
                if !removal.changed {
                    continue;
                }
                let after = removal.after.map_or(Value::Null, |d| d.0);
                steps.push(Step::new(
                    StepKind::RemoveAssumeRoleGrant,
                    Target::InlinePolicy {
                        account: account.clone(),
                        role_arn: role.arn.clone(),
                        policy_name: policy_name.clone(),
                    },
                    format!(
                        "remove sts:AssumeRole from inline policy {policy_name} of {}",
                        role.arn
                    ),
                    document.0.clone(),
                    after,
                ));
            }
            let managed: Vec<&str> = role
                .attached_policies
                .iter()
                .filter(|p| {
                    self.inventory
                        .iam
                        .policies
                        .get(&p.policy_arn)
                        .and_then(|m| m.document.as_ref())
                        .is_some_and(trust::has_exact_assume_role_grant)
                })
                .map(|p| p.policy_arn.as_str())
                .collect();
            for policy in managed {
                report.kept.push(format!("managed policy {policy} on {} grants sts:AssumeRole: detach or edit it by hand", role.arn));
            }
        }
        for agent in &self.scan.agents {
            let w = &agent.workload;
            report.delete_agents.push(format!(
                "kubectl delete {} {} -n {}",
                w.kind.as_str().to_ascii_lowercase(),
                w.name,
                w.namespace
            ));
        }
        if self
            .scan
            .agents
            .iter()
            .any(|a| a.component != Component::KiamServer)
        {
            report.delete_agents.push(
                "the agents' iptables DNAT rule for 169.254.169.254 must go with them (kiam --iptables-remove, kube2iam: a preStop hook or node replacement); a leftover rule breaks instance metadata".into(),
            );
        }
        report.lock_imds = vec![
            "aws ec2 modify-instance-metadata-options --instance-id ID --http-tokens required --http-put-response-hop-limit 1".into(),
            "or in the launch template: MetadataOptions HttpTokens=required, HttpPutResponseHopLimit=1; keep IMDS enabled".into(),
        ];
        (steps, report)
    }
}

/// RoleBindings and ClusterRoleBindings by the (namespace, service account) they name.
type RbacIndex<'a> = BTreeMap<(&'a str, &'a str), Vec<&'a crate::inventory::RbacBinding>>;

/// Names the first few usages, and how many more there are: reports stay readable at scale.
fn name_some(usages: &[&Usage]) -> String {
    const SHOWN: usize = 5;
    let mut text: Vec<String> = usages
        .iter()
        .take(SHOWN)
        .map(|u| format!("{}/{}/{}", u.namespace, u.kind, u.name))
        .collect();
    if usages.len() > SHOWN {
        text.push(format!("and {} more", usages.len() - SHOWN));
    }
    text.join(", ")
}

/// What a pod-template change does to running pods, by kind.
fn restart_note(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::CronJob => " (Jobs created from now on)",
        _ => " (rolling restart)",
    }
}

/// A pod spec's service account as the API server stores it: `serviceAccountName` and its
/// deprecated alias `serviceAccount`, which the server always writes back equal
/// (`Convert_core_PodSpec_To_v1_PodSpec`). A switch writes both, so that the object read back
/// after the write (or after a write whose answer was lost) is in the step's `after` state.
fn served_service_account(name: &str) -> Value {
    json!({"serviceAccountName": name, "serviceAccount": name})
}

/// Wraps a pod-template fragment in the path where the workload kind keeps its template.
fn template_fragment(kind: WorkloadKind, template: Value) -> Value {
    match kind {
        WorkloadKind::CronJob => json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
        WorkloadKind::Pod => template,
        _ => json!({"spec": {"template": template}}),
    }
}

fn refs(users: &[&WorkloadSummary]) -> Vec<WorkloadRef> {
    let mut refs: Vec<WorkloadRef> = users
        .iter()
        .map(|u| WorkloadRef {
            kind: u.kind,
            name: u.name.clone(),
        })
        .collect();
    refs.sort();
    refs
}

#[cfg(test)]
pub(crate) mod tests;
