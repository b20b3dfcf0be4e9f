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

mod assess;

pub use assess::assess;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::iam::arn::RoleArn;

/// Seven days back (weekly jobs show), quiet for a day: the defaults of `evidence`, of
/// decommission (`--since`, `--quiet-for`) and of the report's section.
pub const DEFAULT_SINCE: i64 = 7 * 24 * 3600;
pub const DEFAULT_QUIET_FOR: i64 = 24 * 3600;

/// STS calls to the global endpoint are logged here, whatever the caller's region.
pub const GLOBAL_STS_REGION: &str = "us-east-1";

/// kube2iam names a role session `<FNV-1a of the pod's IP, in hex>-<role name>` (kube2iam
/// `iam/iam.go`, `sessionName`): the hash → the pod it names, for the pods of a snapshot, so
/// that a legacy use is traced to its pod.
pub fn kube2iam_sessions(pods: &[crate::inventory::Pod]) -> BTreeMap<String, String> {
    // Pods on the host's network share its address: each of them may be the caller.
    let mut by_ip: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| !p.is_finished()) {
        if let Some(ip) = pod.ip.as_deref() {
            by_ip
                .entry(ip)
                .or_default()
                .push(format!("{}/{}", pod.namespace, pod.metadata.name));
        }
    }
    by_ip
        .into_iter()
        .map(|(ip, pods)| {
            let which = match &pods[..] {
                [pod] => format!("pod {pod}"),
                pods => format!("one of pods {}", pods.join(", ")),
            };
            (format!("{:x}", fnv1a_32(ip)), format!("{which} at {ip}"))
        })
        .collect()
}

/// 32-bit FNV-1a, as Go's `hash/fnv.New32a`.
fn fnv1a_32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// The regions whose CloudTrail holds the plan's role assumptions: the cluster's, and us-east-1
/// where calls to the global STS endpoint are logged (kiam and kube2iam call it by default).
pub fn regions(cluster_region: &str) -> Vec<String> {
    let mut regions = vec![cluster_region.to_string(), GLOBAL_STS_REGION.to_string()];
    regions.sort();
    regions.dedup();
    regions
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
    Unproven,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::LegacyInUse => "legacy-in-use",
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
    pub service_accounts: Vec<ServiceAccountSeen>,
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

#[cfg(test)]
mod tests {
    #[test]
    fn kube2iam_session_names_hash_the_pod_ip_as_go_does() {
        // Go: fmt.Sprintf("%x", fnv.New32a() over "10.1.7.23").
        assert_eq!(format!("{:x}", super::fnv1a_32("10.1.7.23")), "3caf57bb");
        assert_eq!(format!("{:x}", super::fnv1a_32("10.0.3.4")), "1e4b0437");
    }
}
