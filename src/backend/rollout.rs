//! Whether a workload has rolled out, judged from its controller's status exactly as
//! `kubectl rollout status` judges it (kubectl `pkg/polymorphichelpers/rollout_status.go`), and
//! which pods belong to its current revision, as the controllers count them: active pods only
//! (`IsPodActive`: not Succeeded or Failed, no deletionTimestamp), owned through
//! `ownerReferences` (labels can match another workload's pods), carrying the revision's label
//! (a Deployment's new ReplicaSet's `pod-template-hash`; a StatefulSet's `controller-revision-hash`
//! equal to `status.updateRevision`; a DaemonSet's `pod-template-generation`).
//!
//! Pure functions over the objects as the API server returns them; the live backend reads.

use serde::Deserialize;
use serde_json::Value;

use crate::inventory::WorkloadKind;
use crate::inventory::rollout_hold::{RolloutHold, UpdatePolicy};

/// Where a workload's controller stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Rolled out; this many pods are wanted.
    Done(i64),
    /// Still rolling out, and why.
    Waiting(String),
    /// Will not roll out by itself, and what the operator can do.
    Failed(String),
}

fn number(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

/// The controller's verdict on the workload's current generation.
pub fn controller_progress(workload: &Value) -> Progress {
    let spec = &workload["spec"];
    let status = &workload["status"];
    let generation = number(&workload["metadata"]["generation"]);
    let observed = number(&status["observedGeneration"]);
    let kind = workload["kind"].as_str().unwrap_or_default();
    if let Some(workload_kind) = WorkloadKind::from_kind(kind)
        && let Some(hold) = rollout_hold(workload, workload_kind)
    {
        return Progress::Failed(hold.explain(workload_kind));
    }
    match kind {
        "Deployment" => {
            if observed < generation {
                return Progress::Waiting(format!(
                    "waiting for the controller to observe generation {generation}"
                ));
            }
            let deadline_exceeded = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
            if deadline_exceeded {
                return Progress::Failed(
                    "the Deployment exceeded its progress deadline (ProgressDeadlineExceeded)"
                        .into(),
                );
            }
            let desired = spec["replicas"].as_i64().unwrap_or(1);
            let (replicas, updated, available) = (
                number(&status["replicas"]),
                number(&status["updatedReplicas"]),
                number(&status["availableReplicas"]),
            );
            if updated < desired {
                Progress::Waiting(format!("{updated} of {desired} new pods updated"))
            } else if replicas > updated {
                Progress::Waiting(format!(
                    "{} old pods are pending termination",
                    replicas - updated
                ))
            } else if available < updated {
                Progress::Waiting(format!("{available} of {updated} updated pods available"))
            } else {
                Progress::Done(desired)
            }
        }
        "StatefulSet" => {
            if observed == 0 || observed < generation {
                return Progress::Waiting(format!(
                    "waiting for the controller to observe generation {generation}"
                ));
            }
            let desired = spec["replicas"].as_i64().unwrap_or(1);
            let ready = number(&status["readyReplicas"]);
            if ready < desired {
                return Progress::Waiting(format!("{ready} of {desired} pods ready"));
            }
            let (update, current) = (
                status["updateRevision"].as_str().unwrap_or_default(),
                status["currentRevision"].as_str().unwrap_or_default(),
            );
            if update != current {
                Progress::Waiting(format!(
                    "{} of {desired} pods at revision {update}",
                    number(&status["updatedReplicas"])
                ))
            } else {
                Progress::Done(desired)
            }
        }
        "DaemonSet" => {
            if observed < generation {
                return Progress::Waiting(format!(
                    "waiting for the controller to observe generation {generation}"
                ));
            }
            let desired = number(&status["desiredNumberScheduled"]);
            let (updated, available) = (
                number(&status["updatedNumberScheduled"]),
                number(&status["numberAvailable"]),
            );
            if updated < desired {
                Progress::Waiting(format!("{updated} of {desired} new pods updated"))
            } else if available < desired {
                Progress::Waiting(format!("{available} of {desired} updated pods available"))
            } else {
                Progress::Done(desired)
            }
        }
        other => Progress::Failed(format!("a {other} has no rollout to wait for")),
    }
}

/// What keeps a template change of this live workload from rolling out, if anything.
pub fn rollout_hold(workload: &Value, kind: WorkloadKind) -> Option<RolloutHold> {
    UpdatePolicy::deserialize(&workload["spec"])
        .ok()?
        .hold(kind)
}

/// `spec.selector` (matchLabels and matchExpressions) as a label selector query.
pub fn label_selector(selector: &Value) -> Result<String, String> {
    let mut terms: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expression["key"]
            .as_str()
            .ok_or("a matchExpressions entry without a key")?;
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        terms.push(match expression["operator"].as_str() {
            Some("In") => format!("{key} in ({})", values.join(",")),
            Some("NotIn") => format!("{key} notin ({})", values.join(",")),
            Some("Exists") => key.to_string(),
            Some("DoesNotExist") => format!("!{key}"),
            other => return Err(format!("unknown selector operator {other:?} for {key}")),
        });
    }
    if terms.is_empty() {
        return Err("the workload's spec.selector selects nothing".into());
    }
    Ok(terms.join(","))
}

/// How the pods of a workload's current revision are told apart.
#[derive(Debug, PartialEq, Eq)]
pub struct Revision {
    /// The controller that owns them: the new ReplicaSet, or the workload itself.
    pub owner_uid: String,
    /// The label that names the revision, and its current value.
    pub label: &'static str,
    pub value: String,
}

/// The current revision of a StatefulSet or DaemonSet (their pods are theirs directly).
pub fn own_revision(workload: &Value) -> Result<Revision, String> {
    let owner_uid = uid(workload)?;
    match workload["kind"].as_str() {
        Some("StatefulSet") => Ok(Revision {
            owner_uid,
            label: "controller-revision-hash",
            value: workload["status"]["updateRevision"]
                .as_str()
                .ok_or("the StatefulSet has no status.updateRevision yet")?
                .to_string(),
        }),
        Some("DaemonSet") => Ok(Revision {
            owner_uid,
            label: "pod-template-generation",
            value: workload["metadata"]["annotations"]["deprecated.daemonset.template.generation"]
                .as_str()
                .ok_or("the DaemonSet has no template generation annotation")?
                .to_string(),
        }),
        other => Err(format!("{other:?} pods are not owned by their workload")),
    }
}

/// A Deployment's current revision: its ReplicaSet whose revision is the Deployment's.
pub fn deployment_revision(deployment: &Value, replica_sets: &[Value]) -> Result<Revision, String> {
    let owner = uid(deployment)?;
    let revision = |o: &Value| {
        o["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .map(str::to_string)
    };
    let wanted = revision(deployment).ok_or("the Deployment has no revision yet")?;
    let new = replica_sets
        .iter()
        .filter(|rs| controller_uid(rs) == Some(owner.as_str()))
        .find(|rs| revision(rs).as_deref() == Some(wanted.as_str()))
        .ok_or_else(|| format!("no ReplicaSet of revision {wanted} yet"))?;
    Ok(Revision {
        owner_uid: uid(new)?,
        label: "pod-template-hash",
        value: new["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .ok_or("the new ReplicaSet has no pod-template-hash label")?
            .to_string(),
    })
}

fn uid(object: &Value) -> Result<String, String> {
    object["metadata"]["uid"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "an object without metadata.uid".to_string())
}

fn controller_uid(object: &Value) -> Option<&str> {
    object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?["uid"]
        .as_str()
}

/// Whether a controller counts the pod (`IsPodActive`).
pub fn is_active(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str();
    pod["metadata"]["deletionTimestamp"].is_null()
        && phase != Some("Succeeded")
        && phase != Some("Failed")
}

/// The active pods of the current revision, of all the pods the selector found.
pub fn current_pods<'a>(pods: &'a [Value], revision: &Revision) -> Vec<&'a Value> {
    pods.iter()
        .filter(|pod| is_active(pod))
        .filter(|pod| controller_uid(pod) == Some(revision.owner_uid.as_str()))
        .filter(|pod| pod["metadata"]["labels"][revision.label] == revision.value.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(spec: Value, status: Value) -> Value {
        let mut spec = spec;
        spec["replicas"] = json!(2);
        json!({"kind": "Deployment", "metadata": {"generation": 3, "uid": "d"}, "spec": spec, "status": status})
    }

    #[test]
    fn a_deployment_is_done_only_when_kubectl_rollout_status_would_say_so() {
        let status = |s: Value| controller_progress(&deployment(json!({}), s));
        let waiting = |why: &str| Progress::Waiting(why.into());
        assert_eq!(
            status(json!({"observedGeneration": 2})),
            waiting("waiting for the controller to observe generation 3")
        );
        // (observedGeneration, replicas, updatedReplicas, availableReplicas) of 2 wanted.
        for (counts, expected) in [
            ((3, 2, 1, 2), waiting("1 of 2 new pods updated")),
            // availableReplicas counts old and new pods: an old pod still running is not done.
            ((3, 3, 2, 3), waiting("1 old pods are pending termination")),
            ((3, 2, 2, 1), waiting("1 of 2 updated pods available")),
            ((3, 2, 2, 2), Progress::Done(2)),
        ] {
            let (observed, replicas, updated, available) = counts;
            let found = status(json!({"observedGeneration": observed, "replicas": replicas,
                "updatedReplicas": updated, "availableReplicas": available}));
            assert_eq!(found, expected, "{counts:?}");
        }
        let stuck = json!({"observedGeneration": 3, "updatedReplicas": 1, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
        assert!(
            matches!(status(stuck), Progress::Failed(why) if why.contains("ProgressDeadlineExceeded"))
        );
        let paused = deployment(json!({"paused": true}), json!({"observedGeneration": 3}));
        assert!(
            matches!(controller_progress(&paused), Progress::Failed(why) if why.contains("paused"))
        );
    }

    #[test]
    fn workloads_that_never_roll_by_themselves_fail_at_once_saying_what_to_do() {
        for kind in ["StatefulSet", "DaemonSet"] {
            let workload = json!({"kind": kind, "metadata": {"generation": 1}, "spec": {"updateStrategy": {"type": "OnDelete"}}, "status": {"observedGeneration": 1}});
            assert!(
                matches!(controller_progress(&workload), Progress::Failed(why) if why.contains("OnDelete"))
            );
        }
        let partitioned = json!({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}, "status": {"observedGeneration": 1}});
        assert!(
            matches!(controller_progress(&partitioned), Progress::Failed(why) if why.contains("partition 2"))
        );
        let rolling = json!({"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": {"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 1, "updateRevision": "b", "currentRevision": "a"}});
        assert_eq!(
            controller_progress(&rolling),
            Progress::Waiting("1 of 2 pods at revision b".into())
        );
    }

    #[test]
    fn selectors_with_match_expressions_become_label_queries() {
        let selector = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["x"]},
            {"key": "team", "operator": "Exists"}]});
        assert_eq!(
            label_selector(&selector),
            Ok("app=web,tier in (a,b),!canary,zone notin (x),team".into())
        );
        assert!(label_selector(&json!({})).is_err());
    }

    #[test]
    fn only_active_pods_of_the_current_revision_and_owner_are_judged() {
        let replica_sets = vec![
            json!({"metadata": {"uid": "rs-old", "labels": {"pod-template-hash": "old"}, "annotations": {"deployment.kubernetes.io/revision": "1"}, "ownerReferences": [{"controller": true, "uid": "d"}]}}),
            json!({"metadata": {"uid": "rs-new", "labels": {"pod-template-hash": "new"}, "annotations": {"deployment.kubernetes.io/revision": "2"}, "ownerReferences": [{"controller": true, "uid": "d"}]}}),
        ];
        let mut web = deployment(json!({}), json!({}));
        web["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "2"});
        let revision = deployment_revision(&web, &replica_sets).unwrap();
        assert_eq!(revision.owner_uid, "rs-new");
        let pod = |name: &str, hash: &str, owner: &str, status: Value, deleting: bool| {
            let mut pod = json!({"metadata": {"name": name, "labels": {"pod-template-hash": hash}, "ownerReferences": [{"controller": true, "uid": owner}]}, "status": status});
            if deleting {
                pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            }
            pod
        };
        let pods = vec![
            pod("new", "new", "rs-new", json!({"phase": "Running"}), false),
            pod("old", "old", "rs-old", json!({"phase": "Running"}), false),
            pod(
                "evicted",
                "new",
                "rs-new",
                json!({"phase": "Failed", "reason": "Evicted"}),
                false,
            ),
            pod(
                "terminating",
                "new",
                "rs-new",
                json!({"phase": "Running"}),
                true,
            ),
            pod(
                "someone-elses",
                "new",
                "rs-other",
                json!({"phase": "Running"}),
                false,
            ),
        ];
        let names: Vec<&str> = current_pods(&pods, &revision)
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["new"]);
    }
}
