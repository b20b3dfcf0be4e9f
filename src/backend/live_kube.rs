//! The live Kubernetes backend: service accounts, RBAC bindings and workloads, read and written
//! through the API server. Writes are conditional: a patch carries the `resourceVersion` the
//! engine's read saw and a delete carries it as a precondition, so an object changed by someone
//! else in between is refused by the API server (409) and never overwritten.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Backend, BackendError, Rollout};
use crate::apply::fragment;
use crate::kubernetes::{Kube, KubeArgs, KubeError, Resource};
use crate::plan::{Step, Target};

/// Set by the pod identity webhook in every container of a pod whose service account has a role.
const ROLE_ENV: &str = "AWS_ROLE_ARN";
const TOKEN_ENV: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
const AUDIENCE: &str = "sts.amazonaws.com";

/// Re-reads after a 409 whose cause left the step's fields alone (a status update, a label
/// someone else added).
const CONFLICT_RETRIES: usize = 3;

pub struct LiveKube {
    args: KubeArgs,
    kube: Option<Kube>,
    /// Target → the `resourceVersion` of its last read: the precondition of the next write.
    versions: BTreeMap<String, String>,
    /// How often a rollout is looked at while waiting for it.
    pub poll_interval: Duration,
}

impl LiveKube {
    /// Connects on first use, so runs of IAM phases need no cluster access.
    pub fn new(args: KubeArgs) -> LiveKube {
        LiveKube {
            args,
            kube: None,
            versions: BTreeMap::new(),
            poll_interval: Duration::from_secs(2),
        }
    }

    fn kube(&mut self) -> Result<&Kube, BackendError> {
        if self.kube.is_none() {
            self.kube = Some(Kube::connect(&self.args).map_err(|e| BackendError::Target {
                target: "the Kubernetes API".into(),
                message: e.to_string(),
            })?);
        }
        Ok(self.kube.as_ref().expect("connected above"))
    }

    pub fn server(&self) -> Option<&str> {
        self.kube.as_ref().map(Kube::server)
    }

    /// Reads the whole object and remembers its version.
    fn get(&mut self, target: &Target) -> Result<Option<Value>, BackendError> {
        let (resource, namespace, name) = locate(target)?;
        let object = self
            .kube()?
            .get(resource, namespace, name)
            .map_err(|e| failed(target, e))?;
        match object.as_ref().and_then(version) {
            Some(found) => {
                self.versions.insert(target.to_string(), found);
            }
            None => {
                self.versions.remove(&target.to_string());
            }
        }
        Ok(object)
    }

    /// The object's fields at `paths` as they are now (its version remembered); `null` when the
    /// object does not exist.
    fn read_fragment(
        &mut self,
        target: &Target,
        paths: &[Vec<String>],
    ) -> Result<Value, BackendError> {
        Ok(self
            .get(target)?
            .map(|object| fragment::project(&object, paths))
            .unwrap_or(Value::Null))
    }

    /// Makes `write` on the version of the target's last read: a patch or a delete carries that
    /// version as its precondition; a create needs none, its name is its precondition. On 409
    /// the object is read again: in the step's finished state, the step is done; in its
    /// starting state (the step's fields untouched: a status update, a label someone added, or
    /// an object created and gone again), `write` is tried again on the new version; otherwise
    /// the run stops, overwriting nothing. The last read may be old (the engine's preflight), so
    /// a refused first attempt is ordinary, not an error.
    fn conditionally(
        &mut self,
        step: &Step,
        from: &Value,
        to: &Value,
        mut write: impl FnMut(&Kube, &str) -> Result<(), KubeError>,
    ) -> Result<(), BackendError> {
        let target = &step.target;
        let paths = fragment::paths(from, to);
        for _ in 0..CONFLICT_RETRIES {
            let version = self.versions.get(&target.to_string()).cloned();
            if version.is_none() && !from.is_null() {
                return Err(BackendError::Target {
                    target: target.to_string(),
                    message: "the object no longer exists".into(),
                });
            }
            match write(self.kube()?, version.as_deref().unwrap_or_default()) {
                Ok(()) => return Ok(()),
                Err(e) if e.status() == Some(409) => {
                    let observed = self.read_fragment(target, &paths)?;
                    if fragment::same_state(&observed, to) {
                        return Ok(());
                    }
                    if !fragment::same_state(&observed, from) {
                        return Err(BackendError::Concurrent {
                            target: target.to_string(),
                            observed,
                        });
                    }
                }
                Err(e) => return Err(failed(target, e)),
            }
        }
        Err(BackendError::Target {
            target: target.to_string(),
            message: format!(
                "the object kept changing under {CONFLICT_RETRIES} attempts to write it (409 Conflict); nothing was overwritten"
            ),
        })
    }
}

/// The kind, namespace and name of a Kubernetes target.
fn locate(target: &Target) -> Result<(Resource, Option<&str>, &str), BackendError> {
    let (kind, namespace, name) = match target {
        Target::ServiceAccount { namespace, name } => ("ServiceAccount", Some(namespace), name),
        Target::RbacBinding {
            kind,
            namespace,
            name,
        } => (kind.as_str(), namespace.as_ref(), name),
        Target::Workload {
            namespace,
            kind,
            name,
        } => (kind.as_str(), Some(namespace), name),
        other => {
            return Err(BackendError::Target {
                target: other.to_string(),
                message: "not a Kubernetes object".into(),
            });
        }
    };
    let resource = Resource::by_kind(kind).ok_or_else(|| BackendError::Target {
        target: target.to_string(),
        message: format!("the tool does not write {kind} objects"),
    })?;
    Ok((resource, namespace.map(String::as_str), name.as_str()))
}

fn version(object: &Value) -> Option<String> {
    object["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
}

fn failed(target: &Target, error: KubeError) -> BackendError {
    BackendError::Target {
        target: target.to_string(),
        message: error.to_string(),
    }
}

impl Backend for LiveKube {
    fn describe(&self) -> String {
        match (self.server(), &self.args.context) {
            (Some(server), _) => format!("the Kubernetes API at {server}"),
            (None, Some(context)) => format!("the Kubernetes cluster of context {context}"),
            (None, None) => "the Kubernetes cluster of the current context".into(),
        }
    }

    fn supports(&self, target: &Target) -> bool {
        target.account().is_none()
    }

    fn calls(&self) -> Option<usize> {
        Some(self.kube.as_ref().map(Kube::calls).unwrap_or(0))
    }

    fn conditional_writes(&self, _target: &Target) -> bool {
        true
    }

    fn read(&mut self, step: &Step) -> Result<Value, BackendError> {
        let paths = fragment::paths(&step.before.value(), &step.after.value());
        self.read_fragment(&step.target, &paths)
    }

    fn write(&mut self, step: &Step, from: &Value, to: &Value) -> Result<(), BackendError> {
        let (resource, namespace, name) = locate(&step.target)?;
        match (from.is_null(), to.is_null()) {
            (true, false) => self.conditionally(step, from, to, |kube, _| {
                kube.create(resource, namespace, to).map(|_| ())
            }),
            (false, true) => self.conditionally(step, from, to, |kube, version| {
                kube.delete(resource, namespace, name, version)
            }),
            _ => {
                let mut patch = fragment::merge_patch(from, to);
                self.conditionally(step, from, to, |kube, version| {
                    patch["metadata"]["resourceVersion"] = Value::String(version.to_string());
                    kube.merge_patch(resource, namespace, name, &patch)
                        .map(|_| ())
                })
            }
        }
    }

    fn verify_rollout(
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
    /// Where one workload's rollout stands: the controller's status first, then the new pods.
    fn rollout_state(&mut self, rollout: &Rollout) -> Result<RolloutState, BackendError> {
        let Some(workload) = self.get(&rollout.target)? else {
            return Ok(RolloutState::Failed("the workload no longer exists".into()));
        };
        let desired = match controller_progress(&workload) {
            Ok(desired) => desired,
            Err(waiting) => return Ok(RolloutState::Waiting(waiting)),
        };
        let Target::Workload { namespace, .. } = &rollout.target else {
            return Ok(RolloutState::Failed("not a workload".into()));
        };
        let selector = match workload["spec"]["selector"]["matchLabels"].as_object() {
            Some(labels) if !labels.is_empty() => labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(","),
            _ => {
                return Ok(RolloutState::Failed(
                    "the workload has no spec.selector.matchLabels to find its pods by".into(),
                ));
            }
        };
        let pods_resource = Resource::by_kind("Pod").expect("pods are a scanned kind");
        let pods = self
            .kube()?
            .list(pods_resource, namespace, &selector)
            .map_err(|e| failed(&rollout.target, e))?;
        let account = workload["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        let current: Vec<&Value> = pods
            .iter()
            .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
            .collect();
        if current.is_empty() {
            return Ok(if desired == 0 {
                // Scaled to zero: the next pods will be made from the new template.
                RolloutState::Done
            } else {
                RolloutState::Waiting("no running pods yet".into())
            });
        }
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
            if let Some(missing) = missing_credentials(pod, &rollout.role_arn) {
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

/// The number of pods the controller has rolled out, or why it has not finished rolling out the
/// workload's current generation.
fn controller_progress(workload: &Value) -> Result<i64, String> {
    let status = &workload["status"];
    let number = |field: &str| status[field].as_i64().unwrap_or(0);
    let generation = workload["metadata"]["generation"].as_i64().unwrap_or(0);
    if status["observedGeneration"].as_i64().unwrap_or(0) < generation {
        return Err(format!(
            "waiting for the controller to observe generation {generation}"
        ));
    }
    let (desired, updated, available) = match workload["kind"].as_str() {
        Some("DaemonSet") => (
            number("desiredNumberScheduled"),
            number("updatedNumberScheduled"),
            number("numberAvailable"),
        ),
        _ => (
            workload["spec"]["replicas"].as_i64().unwrap_or(1),
            number("updatedReplicas"),
            number("availableReplicas"),
        ),
    };
    if updated < desired {
        return Err(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return Err(format!("{available} of {desired} updated pods available"));
    }
    Ok(desired)
}

/// What the webhook should have put into the pod and did not, in words.
fn missing_credentials(pod: &Value, role_arn: &str) -> Option<String> {
    let containers = pod["spec"]["containers"].as_array()?;
    for container in containers {
        let env = |name: &str| {
            container["env"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["name"] == name)
                .and_then(|e| e["value"].as_str())
        };
        let container_name = container["name"].as_str().unwrap_or_default();
        match env(ROLE_ENV) {
            None => return Some(format!("has no {ROLE_ENV} in container {container_name}")),
            Some(found) if found != role_arn => {
                return Some(format!(
                    "has {ROLE_ENV}={found} in container {container_name}, not {role_arn}"
                ));
            }
            Some(_) => {}
        }
        if env(TOKEN_ENV).is_none() {
            return Some(format!("has no {TOKEN_ENV} in container {container_name}"));
        }
    }
    let has_token_volume = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| v["projected"]["sources"].as_array().into_iter().flatten())
        .any(|source| source["serviceAccountToken"]["audience"] == AUDIENCE);
    if !has_token_volume {
        return Some(format!(
            "has no projected service account token volume for audience {AUDIENCE}"
        ));
    }
    None
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(env: Value, volumes: Value, ready: &str) -> Value {
        json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "app", "env": env}], "volumes": volumes},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        })
    }

    #[test]
    fn a_pod_without_the_injected_role_is_reported_with_what_is_missing() {
        let role = "arn:aws:iam::111122223333:role/web";
        let token_volume = json!([{"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}}]}}]);
        let env = json!([{"name": "AWS_ROLE_ARN", "value": role}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}]);
        assert_eq!(
            missing_credentials(&pod(env.clone(), token_volume.clone(), "True"), role),
            None
        );
        assert!(
            missing_credentials(&pod(json!([]), token_volume.clone(), "True"), role)
                .unwrap()
                .contains("no AWS_ROLE_ARN in container app")
        );
        assert!(
            missing_credentials(&pod(env.clone(), json!([]), "True"), role)
                .unwrap()
                .contains("projected service account token")
        );
        assert!(
            missing_credentials(&pod(env, token_volume, "True"), "arn:aws:iam::1:role/other")
                .unwrap()
                .contains("not arn:aws:iam::1:role/other")
        );
    }

    #[test]
    fn the_controller_status_says_what_a_rollout_waits_for() {
        let deployment = |status: Value| json!({"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 2}, "status": status});
        assert!(
            controller_progress(&deployment(json!({"observedGeneration": 2})))
                .unwrap_err()
                .contains("generation 3")
        );
        assert_eq!(
            controller_progress(&deployment(
                json!({"observedGeneration": 3, "updatedReplicas": 1, "availableReplicas": 2})
            )),
            Err("1 of 2 pods updated".into())
        );
        assert_eq!(
            controller_progress(&deployment(
                json!({"observedGeneration": 3, "updatedReplicas": 2, "availableReplicas": 2})
            )),
            Ok(2)
        );
        let daemon_set = json!({"kind": "DaemonSet", "metadata": {"generation": 1}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 1}});
        assert_eq!(
            controller_progress(&daemon_set),
            Err("1 of 3 updated pods available".into())
        );
    }
}
