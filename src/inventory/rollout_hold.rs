//! Workloads whose controller does not roll a pod-template change out by itself: a paused
//! Deployment (the deployment controller makes no new ReplicaSet until `kubectl rollout resume`),
//! the `OnDelete` update strategy of a StatefulSet or DaemonSet (a pod gets the new template only
//! when it is deleted), and a StatefulSet's `rollingUpdate.partition` (pods with an ordinal below
//! it keep the old template). A migration's restart would never reach their pods, so the planner
//! leaves them on the legacy path with a finding, and a live wave refuses them before writing.
//!
//! One reading of the spec for both: the snapshot's typed workloads and the live objects
//! (`UpdatePolicy` deserializes from either, ignoring every other field).

use serde::{Deserialize, Serialize};

use super::WorkloadKind;

/// The fields of a workload's `spec` that decide whether a template change rolls out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpdatePolicy {
    /// A Deployment's `strategy` (Recreate and RollingUpdate both roll out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// A StatefulSet's or DaemonSet's `updateStrategy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<Strategy>,
    /// A Deployment's `paused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Strategy {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RollingUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i64>,
}

impl UpdatePolicy {
    /// Whether the policy is the API's default (nothing to keep in a trimmed snapshot).
    pub fn is_default(&self) -> bool {
        *self == UpdatePolicy::default()
    }

    /// Why a template change of a `kind` workload with this policy would not roll out, if so.
    pub fn hold(&self, kind: WorkloadKind) -> Option<RolloutHold> {
        let on_delete = |strategy: &Option<Strategy>| {
            strategy
                .as_ref()
                .is_some_and(|s| s.kind.as_deref() == Some("OnDelete"))
        };
        match kind {
            WorkloadKind::Deployment if self.paused == Some(true) => Some(RolloutHold::Paused),
            WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
                if on_delete(&self.update_strategy) =>
            {
                Some(RolloutHold::OnDelete)
            }
            WorkloadKind::StatefulSet => self
                .update_strategy
                .as_ref()
                .and_then(|s| s.rolling_update.as_ref()?.partition)
                .filter(|&partition| partition > 0)
                .map(RolloutHold::Partition),
            _ => None,
        }
    }
}

/// Why a workload's pods would keep their old template after a template change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "hold", content = "partition")]
pub enum RolloutHold {
    /// A paused Deployment.
    Paused,
    /// The `OnDelete` update strategy.
    OnDelete,
    /// A StatefulSet's rolling-update partition above 0.
    Partition(i64),
}

impl RolloutHold {
    /// What holds the rollout, and what the operator changes to release it.
    pub fn explain(self, kind: WorkloadKind) -> String {
        match self {
            RolloutHold::Paused => format!(
                "the {kind} is paused: its controller makes no new pods until `kubectl rollout resume`"
            ),
            RolloutHold::OnDelete => format!(
                "the {kind} uses the OnDelete update strategy: its pods keep the old template until they are deleted (delete them, or set spec.updateStrategy.type to RollingUpdate)"
            ),
            RolloutHold::Partition(partition) => format!(
                "the {kind}'s rolling update has partition {partition}: pods with an ordinal below {partition} keep the old template until spec.updateStrategy.rollingUpdate.partition is lowered to 0"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(spec: serde_json::Value) -> UpdatePolicy {
        UpdatePolicy::deserialize(&spec).expect("a workload spec")
    }

    #[test]
    fn only_paused_deployments_on_delete_and_partitions_hold_a_rollout() {
        let cases = [
            (
                WorkloadKind::Deployment,
                json!({"paused": true}),
                Some(RolloutHold::Paused),
            ),
            (
                WorkloadKind::Deployment,
                json!({"paused": false, "strategy": {"type": "Recreate"}}),
                None,
            ),
            (
                WorkloadKind::Deployment,
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}),
                None,
            ),
            (
                WorkloadKind::StatefulSet,
                json!({"updateStrategy": {"type": "OnDelete"}}),
                Some(RolloutHold::OnDelete),
            ),
            (
                WorkloadKind::DaemonSet,
                json!({"updateStrategy": {"type": "OnDelete"}}),
                Some(RolloutHold::OnDelete),
            ),
            (
                WorkloadKind::DaemonSet,
                json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}),
                None,
            ),
            (
                WorkloadKind::StatefulSet,
                json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
                Some(RolloutHold::Partition(2)),
            ),
            (
                WorkloadKind::StatefulSet,
                json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}),
                None,
            ),
            (WorkloadKind::StatefulSet, json!({"replicas": 3}), None),
            // `paused` means nothing to other kinds; a CronJob's `suspend` holds no rollout.
            (WorkloadKind::StatefulSet, json!({"paused": true}), None),
            (WorkloadKind::CronJob, json!({"suspend": true}), None),
        ];
        for (kind, spec, expected) in cases {
            assert_eq!(policy(spec.clone()).hold(kind), expected, "{kind} {spec}");
        }
    }

    #[test]
    fn a_policy_written_back_reads_the_same_and_the_default_writes_nothing() {
        let held = policy(
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1, "maxUnavailable": 1}}}),
        );
        let written = serde_json::to_value(&held).expect("serializes");
        assert_eq!(
            written,
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}})
        );
        assert_eq!(policy(written), held);
        assert!(policy(json!({"replicas": 2})).is_default());
        assert_eq!(
            serde_json::to_value(UpdatePolicy::default()).expect("serializes"),
            json!({})
        );
    }

    #[test]
    fn each_hold_says_how_to_release_it() {
        assert!(
            RolloutHold::Paused
                .explain(WorkloadKind::Deployment)
                .contains("kubectl rollout resume")
        );
        assert!(
            RolloutHold::OnDelete
                .explain(WorkloadKind::DaemonSet)
                .contains("RollingUpdate")
        );
        assert!(
            RolloutHold::Partition(3)
                .explain(WorkloadKind::StatefulSet)
                .contains("lowered to 0")
        );
    }
}
