//! A plan's steps: the phases they run in, what each kind of step changes, the object it targets,
//! and the step with its `before` and `after` sides (their format: [`super::fragment`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::iam::arn::RoleArn;
use crate::inventory::WorkloadKind;
use crate::json::CompactJson;
use crate::ownership::Owner;

/// Pod-template annotation that makes a rollout restart pods whose service account was annotated.
pub const RESTART_ANNOTATION: &str = "irsa-migrate.io/irsa-role";
/// Label on every object the tool creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "irsa-migrate");

/// Phases run in this order; each is applied and can be rolled back as a whole. What each one
/// changes: [`Phase::summary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Prepare,
    Identity,
    Rollout,
    Cleanup,
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

    /// What the phase changes, in one line (the help of `--phase` shows it).
    pub fn summary(self) -> &'static str {
        match self {
            Phase::Prepare => {
                "OIDC provider; IRSA trust statements added next to the legacy ones. No effect on pods"
            }
            Phase::Identity => {
                "Dedicated service accounts and their RBAC copies; service-account annotations"
            }
            Phase::Rollout => {
                "Workloads switched to their service account and restarted: pods get the web-identity token"
            }
            Phase::Cleanup => "Legacy pod annotations removed (another rolling restart)",
            Phase::Decommission => {
                "Legacy trust statements and node/kiam-server AssumeRole grants removed"
            }
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
    pub const ALL: [StepKind; 10] = [
        StepKind::CreateOidcProvider,
        StepKind::UpdateRoleTrust,
        StepKind::CreateServiceAccount,
        StepKind::CopyRbacBinding,
        StepKind::AnnotateServiceAccount,
        StepKind::SwitchServiceAccount,
        StepKind::RestartWorkload,
        StepKind::RemoveLegacyAnnotation,
        StepKind::RemoveLegacyTrust,
        StepKind::RemoveAssumeRoleGrant,
    ];

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

/// The object a step changes. Its role ARNs are checked: a plan file with a bad one is refused
/// naming the field ([`super::validate::explain`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Target {
    OidcProvider {
        account: String,
        arn: String,
    },
    Role {
        account: String,
        arn: RoleArn,
    },
    InlinePolicy {
        account: String,
        role_arn: RoleArn,
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

    /// The kind, namespace and name of a Kubernetes target; `None` for IAM targets.
    pub fn kubernetes_object(&self) -> Option<(&str, Option<&str>, &str)> {
        match self {
            Target::ServiceAccount { namespace, name } => {
                Some(("ServiceAccount", Some(namespace), name))
            }
            Target::RbacBinding {
                kind,
                namespace,
                name,
            } => Some((kind, namespace.as_deref(), name)),
            Target::Workload {
                namespace,
                kind,
                name,
            } => Some((kind.as_str(), Some(namespace), name)),
            Target::OidcProvider { .. } | Target::Role { .. } | Target::InlinePolicy { .. } => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::OidcProvider { arn, .. } => f.write_str(arn),
            Target::Role { arn, .. } => f.write_str(arn.as_str()),
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
    /// Who manages the target and would revert a live change: such a step is made by its owner
    /// (`export`), and `apply` waits for it unless told `--patch-owned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// One side of a step: the whole document for IAM steps, a fragment for Kubernetes steps.
pub type Side = CompactJson;

impl Step {
    pub(super) fn new(
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
            owner: None,
        }
    }

    /// The step, made by `owner`.
    pub(super) fn owned_by(self, owner: Option<Owner>) -> Step {
        Step { owner, ..self }
    }
}
