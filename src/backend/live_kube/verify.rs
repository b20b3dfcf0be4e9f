//! The checks around a wave's restart: before it, that a pod of each workload's template would
//! get its role from the webhook (a server-side dry run); after it, that each workload rolled out
//! with its role injected and its pods ready.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::injection::missing_credentials;
use super::{LiveKube, failed};
use crate::backend::rollout::{self, Progress};
use crate::backend::{BackendError, Rollout};
use crate::inventory::WorkloadKind;
use crate::kubernetes::Resource;
use crate::plan::Target;

impl LiveKube {
    /// [`crate::backend::Backend::ready_to_restart`].
    pub(super) fn restart_blocker(
        &mut self,
        rollout: &Rollout,
        timeout: Duration,
    ) -> Result<Option<String>, BackendError> {
        let Some(workload) = self.get(&rollout.target)? else {
            return Ok(Some("the workload no longer exists".into()));
        };
        let Target::Workload {
            namespace,
            name,
            kind,
        } = &rollout.target
        else {
            return Ok(None);
        };
        if let Some(hold) = rollout::rollout_hold(&workload, *kind) {
            return Ok(Some(hold.explain(*kind)));
        }
        let template = workload["spec"]["template"].clone();
        let mut spec = template["spec"].clone();
        spec["serviceAccountName"] = Value::String(rollout.service_account.clone());
        if let Some(spec) = spec.as_object_mut() {
            spec.remove("serviceAccount");
        }
        let pod = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": format!("{name}-irsa-migrate-check-"),
                "namespace": namespace,
                "labels": template["metadata"]["labels"],
                "annotations": template["metadata"]["annotations"],
            },
            "spec": spec,
        });
        let pods = Resource::by_kind("Pod").expect("pods are a scanned kind");
        let deadline = Instant::now() + timeout;
        loop {
            let created = self
                .kube()?
                .create_dry_run(pods, Some(namespace), &pod)
                .map_err(|e| failed(&rollout.target, e))?;
            let missing = missing_credentials(&created, &template, rollout.role_arn.as_str());
            let Some(missing) = missing else {
                return Ok(None);
            };
            if Instant::now() >= deadline {
                return Ok(Some(format!(
                    "a pod of its template run as {} (server-side dry run) {missing} after {} s (is the pod identity webhook running?)",
                    rollout.service_account,
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(
                self.poll_interval
                    .min(Duration::from_secs(1))
                    .min(deadline.saturating_duration_since(Instant::now())),
            );
        }
    }

    /// [`crate::backend::Backend::verify_rollout`].
    pub(super) fn wait_for_rollout(
        &mut self,
        wave: &[Rollout],
        timeout: Duration,
        progress: &mut dyn FnMut(String),
    ) -> Result<Vec<String>, BackendError> {
        let deadline = Instant::now() + timeout;
        let mut pending: Vec<&Rollout> = wave.iter().collect();
        loop {
            let mut problems = Vec::new();
            let mut waiting = Vec::new();
            for rollout in pending {
                match self.rollout_state(rollout)? {
                    RolloutState::Done => {
                        progress(format!("{:<16} {}", "rolled out", rollout.target))
                    }
                    RolloutState::Waiting(why) => waiting.push((rollout, why)),
                    RolloutState::Failed(why) => {
                        problems.push(format!("{}: {why}", rollout.target))
                    }
                }
            }
            if !problems.is_empty() || waiting.is_empty() {
                problems.extend(
                    waiting
                        .iter()
                        .map(|(r, why)| format!("{}: still {why}", r.target)),
                );
                return Ok(problems);
            }
            if Instant::now() >= deadline {
                return Ok(waiting
                    .iter()
                    .map(|(r, why)| {
                        format!(
                            "{}: not rolled out within {} s: {why}",
                            r.target,
                            timeout.as_secs()
                        )
                    })
                    .collect());
            }
            pending = waiting.into_iter().map(|(r, _)| r).collect();
            std::thread::sleep(
                self.poll_interval
                    .min(deadline.saturating_duration_since(Instant::now())),
            );
        }
    }
}

enum RolloutState {
    Done,
    Waiting(String),
    Failed(String),
}

impl LiveKube {
    /// Where one workload's rollout stands: the controller's status first, as `kubectl rollout
    /// status` judges it, then the active pods of the current revision, as the webhook should have
    /// made them.
    fn rollout_state(&mut self, rollout: &Rollout) -> Result<RolloutState, BackendError> {
        let Some(workload) = self.get(&rollout.target)? else {
            return Ok(RolloutState::Failed("the workload no longer exists".into()));
        };
        let desired = match rollout::controller_progress(&workload) {
            Progress::Done(desired) => desired,
            Progress::Waiting(why) => return Ok(RolloutState::Waiting(why)),
            Progress::Failed(why) => return Ok(RolloutState::Failed(why)),
        };
        let Target::Workload {
            namespace, kind, ..
        } = &rollout.target
        else {
            return Ok(RolloutState::Failed("not a workload".into()));
        };
        let selector = match rollout::label_selector(&workload["spec"]["selector"]) {
            Ok(selector) => selector,
            Err(why) => return Ok(RolloutState::Failed(why)),
        };
        let list = |this: &mut LiveKube, kind: &str| -> Result<Vec<Value>, BackendError> {
            let resource = Resource::by_kind(kind).expect("a scanned kind");
            this.kube()?
                .list(resource, Some(namespace), Some(&selector))
                .map_err(|e| failed(&rollout.target, e))
        };
        let revision = if *kind == WorkloadKind::Deployment {
            let replica_sets = list(self, "ReplicaSet")?;
            rollout::deployment_revision(&workload, &replica_sets)
        } else {
            rollout::own_revision(&workload)
        };
        let revision = match revision {
            Ok(revision) => revision,
            Err(why) => return Ok(RolloutState::Waiting(why)),
        };
        let pods = list(self, "Pod")?;
        let current = rollout::current_pods(&pods, &revision);
        if (current.len() as i64) < desired {
            return Ok(RolloutState::Waiting(format!(
                "{} of {desired} pods of the new revision are running",
                current.len()
            )));
        }
        let template = &workload["spec"]["template"];
        let account = template["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        for pod in current {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            let pod_account = pod["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or("default");
            if pod_account != account {
                return Ok(RolloutState::Waiting(format!(
                    "pod {name} still runs as {pod_account}"
                )));
            }
            if let Some(missing) = missing_credentials(pod, template, rollout.role_arn.as_str()) {
                return Ok(RolloutState::Failed(format!(
                    "pod {name} {missing}: the pod identity webhook did not inject the role (is it running, and does service account {account} carry eks.amazonaws.com/role-arn?)"
                )));
            }
            if !is_ready(pod) {
                return Ok(RolloutState::Waiting(format!("pod {name} is not ready")));
            }
        }
        Ok(RolloutState::Done)
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}
