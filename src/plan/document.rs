//! The plan document, `irsa-migrate.plan/v1` (docs/plan-schema.md): what the plan binds, skips,
//! finds and leaves to the operator, around its steps ([`super::step`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::step::Step;
use super::trust;
use crate::findings::{Code, Finding};
use crate::iam::arn::RoleArn;
use crate::inventory::WorkloadKind;
use crate::ownership::{IacRoleTag, Owner};

/// The `schema` field of a plan document.
pub const PLAN_SCHEMA: &str = "irsa-migrate.plan/v1";
/// What a plan records as its writer: this tool and its version.
pub const GENERATOR: &str = concat!("irsa-migrate ", env!("CARGO_PKG_VERSION"));

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

impl ServiceAccountAction {
    pub const ALL: [ServiceAccountAction; 3] = [
        ServiceAccountAction::Reuse,
        ServiceAccountAction::Create,
        ServiceAccountAction::Keep,
    ];
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
    /// Checked: a plan file with a bad one is refused naming the field
    /// ([`super::validate::explain`]).
    pub role_arn: RoleArn,
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
    /// Tags that mark the roles a team's infrastructure code manages (`--iac-role-tag`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iac_role_tags: Vec<IacRoleTag>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            trust_policy_limit: trust::DEFAULT_TRUST_POLICY_LIMIT,
            iac_role_tags: Vec::new(),
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
        /// The plan without its generator (which an empty one is, as serialized), borrowed: a
        /// copy, or its JSON held to be hashed, took twice the plan's memory at 95,000 steps.
        #[derive(Serialize)]
        struct Content<'a> {
            schema: &'a str,
            name: &'a str,
            fingerprint: &'a str,
            settings: &'a Settings,
            cluster: &'a PlanCluster,
            legacy_annotations: &'a [String],
            accounts: &'a [AccountNote],
            bindings: &'a [Binding],
            skipped: &'a [Skipped],
            findings: &'a [Finding],
            steps: &'a [Step],
            decommission: &'a Decommission,
        }
        let Plan {
            schema,
            generator: _,
            name,
            fingerprint,
            settings,
            cluster,
            legacy_annotations,
            accounts,
            bindings,
            skipped,
            findings,
            steps,
            decommission,
        } = self;
        let content = Content {
            schema,
            name,
            fingerprint,
            settings,
            cluster,
            legacy_annotations,
            accounts,
            bindings,
            skipped,
            findings,
            steps,
            decommission,
        };
        let mut hasher = Sha256::new();
        serde_json::to_writer(crate::json::HashWriter(&mut hasher), &content)
            .expect("a plan serializes");
        format!("sha256:{:x}", hasher.finalize())
    }

    /// Workloads that move to IRSA.
    pub fn moved_workloads(&self) -> usize {
        self.bindings.iter().map(|b| b.workloads.len()).sum()
    }

    /// The steps each owner must make ([`Step::owner`]), by owner, in plan order.
    pub fn steps_by_owner(&self) -> BTreeMap<&Owner, Vec<&Step>> {
        let mut by_owner: BTreeMap<&Owner, Vec<&Step>> = BTreeMap::new();
        for step in &self.steps {
            if let Some(owner) = &step.owner {
                by_owner.entry(owner).or_default().push(step);
            }
        }
        by_owner
    }

    /// Dedicated service accounts the plan creates.
    pub fn created_service_accounts(&self) -> usize {
        self.bindings
            .iter()
            .filter(|b| b.service_account_action == ServiceAccountAction::Create)
            .count()
    }
}
