//! The inventory: the Kubernetes objects and IAM facts that matter for a migration, as plain data.
//!
//! The snapshot loader fills it from documents (a snapshot directory, the embedded demo, the
//! pages the live collector `crate::collect` reads); everything after collection is a pure
//! function of it.

pub mod agent_image;
pub mod aws;
pub mod demo;
pub mod kube;
mod parse;
pub mod rollout_hold;
pub mod snapshot;
pub mod stream;
pub mod trail;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::iam::arn::RoleArn;
use crate::iam::policy::PolicyDocument;
use crate::json::CompactJson;
use aws::AttachedPolicy;
use kube::{LocalObjectReference, ObjectMeta, PodSpec, PodTemplate, RoleRef, Subject};

/// Kinds that own pods, in the order the scanner reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
    Job,
    ReplicaSet,
    Pod,
}

impl WorkloadKind {
    pub fn from_kind(kind: &str) -> Option<WorkloadKind> {
        Some(match kind {
            "Deployment" => WorkloadKind::Deployment,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "CronJob" => WorkloadKind::CronJob,
            "Job" => WorkloadKind::Job,
            "ReplicaSet" => WorkloadKind::ReplicaSet,
            "Pod" => WorkloadKind::Pod,
            _ => return None,
        })
    }

    /// The controller kind that creates objects of this kind and is reported in their place when
    /// it owns them: a Deployment for a ReplicaSet, a CronJob for a Job.
    pub fn parent_kind(self) -> Option<WorkloadKind> {
        match self {
            WorkloadKind::ReplicaSet => Some(WorkloadKind::Deployment),
            WorkloadKind::Job => Some(WorkloadKind::CronJob),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Job => "Job",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::Pod => "Pod",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Names a namespaced object of a workload kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkloadKey {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
}

impl fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind, self.name)
    }
}

/// A workload controller (or a ReplicaSet, kept to walk pods up to their Deployment).
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub key: WorkloadKey,
    pub metadata: ObjectMeta,
    pub template: PodTemplate,
    pub replicas: Option<i64>,
    /// Whether a template change rolls out by itself (paused, `OnDelete`, partition).
    pub update: rollout_hold::UpdatePolicy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub namespace: String,
    pub spec: PodSpec,
    pub phase: Option<String>,
    /// `status.podIP`: kube2iam names its role sessions after it (docs/evidence.md).
    pub ip: Option<String>,
}

impl Pod {
    /// Pods that are gone for good do not use credentials any more.
    pub fn is_finished(&self) -> bool {
        is_finished_phase(self.phase.as_deref())
    }
}

/// Whether a pod in `phase` is done (`Succeeded`, `Failed`): it calls nothing any more.
pub fn is_finished_phase(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded" | "Failed"))
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Namespace {
    pub metadata: ObjectMeta,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAccount {
    pub metadata: ObjectMeta,
    pub namespace: String,
    pub image_pull_secrets: Vec<LocalObjectReference>,
    pub automount_service_account_token: Option<bool>,
}

/// A RoleBinding (namespaced) or ClusterRoleBinding (`namespace` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct RbacBinding {
    pub kind: String,
    pub namespace: Option<String>,
    pub metadata: ObjectMeta,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

/// What `aws eks describe-cluster` says about the cluster.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub partition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// `https://oidc.eks.<region>.amazonaws.com/id/<ID>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_issuer: Option<String>,
}

impl Cluster {
    /// The issuer without `https://`, as IAM condition keys and provider ARNs use it.
    pub fn issuer_host_path(&self) -> Option<&str> {
        let issuer = self.oidc_issuer.as_deref()?;
        Some(issuer.strip_prefix("https://").unwrap_or(issuer))
    }

    /// `arn:<partition>:iam::<account>:oidc-provider/<issuer-host-path>`.
    pub fn oidc_provider_arn(&self) -> Option<String> {
        let host_path = self.issuer_host_path()?;
        Some(crate::iam::arn::oidc_provider_arn(
            &self.partition,
            &self.account,
            host_path,
        ))
    }
}

/// One IAM role with its trust policy and permission policies.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub arn: RoleArn,
    pub name: String,
    pub path: String,
    /// Kept compact (an account can hold thousands of roles); `trust_policy()` parses it.
    pub trust: CompactJson,
    pub inline: Vec<(String, CompactJson)>,
    pub attached_policies: Vec<AttachedPolicy>,
    pub instance_profiles: Vec<String>,
    /// `get-role` output carries no permission policies; such a role's permissions are unknown.
    pub permissions_known: bool,
    /// Its tags as (key, value): who manages the role ([`crate::ownership::of_role`]).
    pub tags: Vec<(String, String)>,
}

impl Role {
    pub fn trust_policy(&self) -> PolicyDocument {
        PolicyDocument(self.trust.value())
    }

    /// The inline permission policies, by name.
    pub fn inline_policies(&self) -> Vec<(String, PolicyDocument)> {
        self.inline
            .iter()
            .map(|(name, document)| (name.clone(), PolicyDocument(document.value())))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManagedPolicy {
    pub arn: String,
    pub name: String,
    pub document: Option<PolicyDocument>,
}

/// IAM facts, possibly for several accounts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Iam {
    /// By ARN.
    pub roles: BTreeMap<RoleArn, Role>,
    /// Customer-managed policies by ARN (AWS-managed ones appear when the CLI was asked for them).
    pub policies: BTreeMap<String, ManagedPolicy>,
    /// Accounts whose `get-account-authorization-details` is in the source: a role missing there
    /// does not exist; a role in any other account is unknown.
    pub accounts: BTreeSet<String>,
    /// OIDC provider ARNs, when `list-open-id-connect-providers` is in the source.
    pub oidc_providers: Option<BTreeSet<String>>,
    /// (account, role name) → the CloudFormation stack that made the role, from
    /// `describe-stack-resources` (a stack names its roles by name, without their path).
    pub stack_roles: BTreeMap<(String, String), StackRole>,
    /// Account → why its CloudFormation stacks could not be read: who owns its roles is
    /// incomplete (a live reading only; a snapshot without stacks simply has none).
    pub stacks_unread: BTreeMap<String, String>,
    /// (account, role name) → ARN, for lookups of ARNs written without their path.
    names: BTreeMap<(String, String), RoleArn>,
}

/// A role a CloudFormation stack made (`AWS::IAM::Role`): the stack is its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRole {
    pub stack_name: String,
    pub stack_id: String,
    pub logical_id: String,
}

impl Iam {
    /// Looks a role up by ARN. An ARN without a path also finds a role of that name with a path:
    /// `aws-auth` must name node roles without their path, so EKS matches them that way.
    pub fn role(&self, arn: &RoleArn) -> Option<&Role> {
        self.roles.get(arn).or_else(|| {
            if arn.path() != "/" {
                return None;
            }
            let key = (arn.account().to_string(), arn.name().to_string());
            self.roles.get(self.names.get(&key)?)
        })
    }

    /// The stack that made `arn`'s role, if one did.
    pub fn stack_of(&self, arn: &RoleArn) -> Option<&StackRole> {
        self.stack_roles
            .get(&(arn.account().to_string(), arn.name().to_string()))
    }

    /// Adds or replaces a role, keeping the name index in step.
    pub fn insert_role(&mut self, role: Role) {
        self.names.insert(
            (role.arn.account().to_string(), role.arn.name().to_string()),
            role.arn.clone(),
        );
        self.roles.insert(role.arn.clone(), role);
    }
}

/// A problem with one input that did not stop loading: the file is named so the user can look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadWarning {
    pub file: PathBuf,
    pub message: String,
}

/// A read the source could not make (the API server refused it): the inventory lacks what it
/// would have returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub verb: String,
    /// As RBAC names it: `deployments.apps`, `configmaps`.
    pub resource: String,
    /// `None` for all namespaces.
    pub namespace: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scope = match &self.namespace {
            Some(namespace) => format!("in namespace {namespace}"),
            None => "in all namespaces".to_string(),
        };
        write!(f, "{} {} {scope} was denied", self.verb, self.resource)
    }
}

/// Everything the scanner looks at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    pub cluster: Option<Cluster>,
    pub namespaces: BTreeMap<String, Namespace>,
    pub workloads: BTreeMap<WorkloadKey, Workload>,
    /// Sorted by (namespace, name), one per name. A list, not a map: at a hundred thousand pods
    /// a map's keys (two more strings a pod) and half-full nodes cost a fifth of their memory.
    pub pods: Vec<Pod>,
    /// By (namespace, name).
    pub service_accounts: BTreeMap<(String, String), ServiceAccount>,
    pub rbac_bindings: Vec<RbacBinding>,
    /// `data.mapRoles` of `kube-system/aws-auth`, when present.
    pub aws_auth_map_roles: Option<String>,
    /// MutatingWebhookConfiguration name to its webhooks' names.
    pub mutating_webhooks: BTreeMap<String, Vec<String>>,
    /// Kubernetes kinds the source holds at least one object (or an empty list) of: tells
    /// "absent from the cluster" apart from "not captured".
    pub kinds_seen: BTreeSet<String>,
    pub iam: Iam,
    pub warnings: Vec<LoadWarning>,
    /// Reads that were refused: what is missing is unknown, so a plan over it refuses by default.
    pub unreadable: Vec<Unreadable>,
    /// CloudTrail's role assumptions, when the source holds `lookup-events` output: evidence for
    /// decommission, not cluster state (not in the fingerprint).
    pub trail: trail::Trail,
}
