//! The scan's result types: the `irsa-migrate.scan/v1` document and the usages, roles, trust
//! verdicts and node roles it is made of.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::findings::{Finding, Severity, Subject};
use crate::iam::arn::RoleArn;
use crate::iam::policy::PrincipalMatch;
use crate::iam::written_arn::WrittenRoleArn;
use crate::inventory::rollout_hold::RolloutHold;
use crate::inventory::{Cluster, WorkloadKind};
use crate::legacy::{LegacyAgent, Verdict};
use crate::ownership::Owner;

use super::agents::{LegacyAnnotations, in_effect};

/// The `schema` field of the scan's JSON document.
pub const SCAN_SCHEMA: &str = "irsa-migrate.scan/v1";

/// The service-account annotation the pod identity webhook reads.
pub const IRSA_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// The scan result. Its JSON form (`--output json`) is the document `irsa-migrate.scan/v1`:
/// `schema`, `cluster`, `agents`, `legacy_principals`, `workloads`, `usages`, `node_roles`,
/// `findings`, `summary` (see its `Serialize`); lists are sorted, so the same inventory gives the
/// same bytes.
#[derive(Debug, Clone)]
pub struct Scan {
    pub schema: &'static str,
    pub cluster: Option<Cluster>,
    pub agents: Vec<LegacyAgent>,
    /// The roles the legacy system assumes application roles as (kiam server role, node roles).
    pub legacy_principals: Vec<RoleArn>,
    /// Every workload seen, with the service account it runs as (who shares which account) and
    /// its usage, if it gets AWS credentials today.
    pub workloads: Vec<ScannedWorkload>,
    pub node_roles: Vec<NodeRole>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

impl Scan {
    /// The agent whose rules the scan applied: kiam's server or kube2iam, if one is installed.
    pub fn effective_agent(&self) -> Option<&LegacyAgent> {
        in_effect(&self.agents)
    }

    /// The annotation keys the scan read the legacy roles from: what cleanup removes.
    pub fn legacy_annotations(&self) -> LegacyAnnotations<'_> {
        LegacyAnnotations::of(self.effective_agent())
    }

    /// The workloads that get AWS credentials today, each with its usage.
    pub fn usages(&self) -> impl Iterator<Item = (&ScannedWorkload, &Usage)> {
        self.workloads
            .iter()
            .filter_map(|workload| Some((workload, workload.usage.as_ref()?)))
    }
}

/// The document lists the workloads, then their usages apart, each usage with its workload's
/// fields first.
impl Serialize for Scan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct UsageEntry<'a> {
            #[serde(flatten)]
            workload: &'a ScannedWorkload,
            #[serde(flatten)]
            usage: &'a Usage,
        }
        let usages: Vec<UsageEntry<'_>> = self
            .usages()
            .map(|(workload, usage)| UsageEntry { workload, usage })
            .collect();
        let mut document = serializer.serialize_struct("Scan", 9)?;
        document.serialize_field("schema", self.schema)?;
        document.serialize_field("cluster", &self.cluster)?;
        document.serialize_field("agents", &self.agents)?;
        document.serialize_field("legacy_principals", &self.legacy_principals)?;
        document.serialize_field("workloads", &self.workloads)?;
        document.serialize_field("usages", &usages)?;
        document.serialize_field("node_roles", &self.node_roles)?;
        document.serialize_field("findings", &self.findings)?;
        document.serialize_field("summary", &self.summary)?;
        document.end()
    }
}

/// A workload the scan saw: its controller, or a pod without a known one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScannedWorkload {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub service_account: String,
    /// How it gets AWS credentials today; the document lists usages apart.
    #[serde(skip)]
    pub usage: Option<Usage>,
}

impl ScannedWorkload {
    pub(super) fn subject(&self) -> Subject {
        Subject::new(Some(&self.namespace), self.kind.as_str(), &self.name)
    }
}

/// How one workload gets AWS credentials today: kiam/kube2iam, IRSA, or both.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    /// Running pods resolved to this workload.
    pub pods: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyRole>,
    /// The role in the service account's `eks.amazonaws.com/role-arn`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub irsa_role_arn: Option<WrittenRoleArn>,
    pub status: Status,
    pub host_network: bool,
    /// Who manages the workload's manifest and would revert a live change to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// The legacy path gives the workload its role today: the only usages that may be migrated.
    pub works_today: bool,
    /// What keeps a pod-template change from rolling out (paused, `OnDelete`, partition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_hold: Option<RolloutHold>,
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
    pub arn: Option<WrittenRoleArn>,
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
    pub arn: WrittenRoleArn,
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

impl Summary {
    /// The counts of a scan that saw `workloads` and found `findings`.
    pub(super) fn of(workloads: &[ScannedWorkload], findings: &[Finding]) -> Summary {
        let usages: Vec<&Usage> = workloads.iter().filter_map(|w| w.usage.as_ref()).collect();
        let with_status = |status| usages.iter().filter(|u| u.status == status).count();
        let with_severity = |severity| findings.iter().filter(|f| f.severity == severity).count();
        Summary {
            workloads: workloads.len(),
            usages: usages.len(),
            legacy: with_status(Status::Legacy),
            irsa: with_status(Status::Irsa),
            both: with_status(Status::Both),
            works_today: usages.iter().filter(|u| u.works_today).count(),
            errors: with_severity(Severity::Error),
            warnings: with_severity(Severity::Warning),
            infos: with_severity(Severity::Info),
        }
    }
}
