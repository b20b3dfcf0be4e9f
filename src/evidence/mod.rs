//! Evidence before decommission: what CloudTrail says of each role the plan decommissions. Pure:
//! a plan, the trail read (live or from a snapshot) and the instant judged at, in; a verdict per
//! role and per legacy grant, out (docs/evidence.md).
//!
//! A role is `ready` when its legacy principal has not assumed it for `quiet_for` and every
//! service account the plan binds to it has assumed it through web identity; `legacy-in-use`
//! when the legacy principal still did (who, when, how often); `unproven` otherwise (a service
//! account never seen, or a region whose trail was not read far enough back). A legacy grant
//! (the node role's or kiam server's `sts:AssumeRole`) may go only when every role it served is
//! `ready` and its principal assumed no role outside the plan: software on the nodes,
//! hostNetwork pods and other clusters use such grants without anything the scan could see.
//! A legacy use no pod of this cluster explains is another's: that principal keeps its trust
//! (`used-elsewhere`), with a finding naming it.

mod assess;
mod pods;

pub use assess::assess;
pub use pods::Pods;

use serde::Serialize;

use crate::findings::Finding;
use crate::iam::arn::RoleArn;

/// Seven days back (weekly jobs show), quiet for a day: the defaults of `evidence`, of
/// decommission (`--since`, `--quiet-for`) and of the report's section.
pub const DEFAULT_SINCE: i64 = 7 * 24 * 3600;
pub const DEFAULT_QUIET_FOR: i64 = 24 * 3600;

/// STS calls to the global endpoint are logged here, whatever the caller's region.
pub const GLOBAL_STS_REGION: &str = "us-east-1";

/// The regions whose CloudTrail holds the plan's role assumptions: the cluster's, and us-east-1
/// where calls to the global STS endpoint are logged (kiam and kube2iam call it by default).
pub fn regions(cluster_region: &str) -> Vec<String> {
    let mut regions = vec![cluster_region.to_string(), GLOBAL_STS_REGION.to_string()];
    regions.sort();
    regions.dedup();
    regions
}

/// The roles whose legacy trust the plan removes: those whose `RoleLastUsed` the evidence reads.
pub fn decommissioned_roles(plan: &crate::plan::Plan) -> Vec<RoleArn> {
    plan.steps
        .iter()
        .filter(|s| s.kind == crate::plan::StepKind::RemoveLegacyTrust)
        .filter_map(|s| match &s.target {
            crate::plan::Target::Role { arn, .. } => Some(arn.clone()),
            _ => None,
        })
        .collect()
}

/// What the evidence is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// The instant judged at (seconds since the epoch): now, for a live reading.
    pub as_of: i64,
    /// How far back the trail is read (`--since`), in seconds.
    pub since: i64,
    /// How long the legacy path must have been unused (`--quiet-for`), in seconds.
    pub quiet_for: i64,
}

/// The verdict of every role and grant the plan decommissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// RFC 3339.
    pub as_of: String,
    pub since: String,
    pub quiet_since: String,
    /// The regions whose trail must be read: the cluster's and us-east-1 (global STS).
    pub regions: Vec<RegionRead>,
    pub roles: Vec<RoleEvidence>,
    pub grants: Vec<GrantEvidence>,
    /// `legacy-used-elsewhere`: a legacy principal that keeps its trust, and who used it.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionRead {
    pub region: String,
    /// Whether a reading covers it from `since` (at least from `quiet_since`) to `as_of`.
    pub covered: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ready,
    LegacyInUse,
    /// Assumed through the legacy path by sessions no pod of this cluster explains: another
    /// cluster (or a host) still needs that trust.
    UsedElsewhere,
    Unproven,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::LegacyInUse => "legacy-in-use",
            Verdict::UsedElsewhere => "used-elsewhere",
            Verdict::Unproven => "unproven",
        }
    }
}

/// A role the plan stops trusting its legacy principal in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleEvidence {
    pub role: RoleArn,
    /// The step the verdict decides (`remove-legacy-trust:<role>`).
    pub step: String,
    pub verdict: Verdict,
    /// Why, for an operator.
    pub reason: String,
    pub legacy_principals: Vec<String>,
    pub legacy: Usage,
    /// The legacy uses no pod of this cluster explains (none when the pods are not known).
    #[serde(skip_serializing_if = "Usage::is_none")]
    pub elsewhere: Usage,
    pub service_accounts: Vec<ServiceAccountSeen>,
    /// IAM's `RoleLastUsed`: the last use of the role's credentials by anyone, through either
    /// path (absent when IAM has none or the source did not hold it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_last_used: Option<IamLastUsed>,
}

/// IAM's `RoleLastUsed` of a role: one instant and region, no caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IamLastUsed {
    /// RFC 3339.
    pub date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// How often, and last when, in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub count: usize,
    /// RFC 3339; absent when never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    /// Session names and source addresses of the last uses, to find the caller.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
}

impl Usage {
    pub fn is_none(&self) -> bool {
        self.count == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAccountSeen {
    pub namespace: String,
    pub name: String,
    pub web_identity: Usage,
}

/// A legacy principal's `sts:AssumeRole` grant the plan removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantEvidence {
    pub principal: RoleArn,
    pub step: String,
    pub ready: bool,
    pub reason: String,
    /// Roles it served whose verdict is not `ready`.
    pub waiting_for: Vec<String>,
    /// Roles outside the plan it assumed in the window: who still needs the grant.
    pub outside_plan: Vec<(String, Usage)>,
}

impl Evidence {
    /// The steps the evidence does not clear: held, with why.
    pub fn held_steps(&self) -> Vec<(&str, &str)> {
        let roles = self
            .roles
            .iter()
            .filter(|r| r.verdict != Verdict::Ready)
            .map(|r| (r.step.as_str(), r.reason.as_str()));
        let grants = self
            .grants
            .iter()
            .filter(|g| !g.ready)
            .map(|g| (g.step.as_str(), g.reason.as_str()));
        roles.chain(grants).collect()
    }
}
