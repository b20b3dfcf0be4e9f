//! The live Kubernetes backend: service accounts, RBAC bindings and workloads, read and written
//! through the API server. Writes are conditional: a patch carries the `resourceVersion` the
//! engine's read saw and a delete carries it as a precondition, so an object changed by someone
//! else in between is refused by the API server (409) and never overwritten.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::rollout::{self, Progress};
use super::{Backend, BackendError, Rollout};
use crate::inventory::WorkloadKind;
use crate::kubernetes::{Kube, KubeArgs, KubeError, Resource};
use crate::plan::{Step, Target, fragment};

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
    /// Connects on first use, so a run that reads and writes nothing there (decommission, a
    /// rollback of IAM steps) needs no cluster access.
    pub fn new(args: KubeArgs) -> LiveKube {
        LiveKube {
            args,
            kube: None,
            versions: BTreeMap::new(),
            poll_interval: Duration::from_secs(2),
        }
    }

    fn kube(&mut self) -> Result<&Kube, BackendError> {
        self.connected().map_err(|e| BackendError::Target {
            target: "the Kubernetes API".into(),
            message: e.to_string(),
        })
    }

    /// The client, connected on first use (for the checks a live run makes before its first
    /// write, [`crate::world`]).
    pub fn connected(&mut self) -> Result<&Kube, KubeError> {
        if self.kube.is_none() {
            self.kube = Some(Kube::connect(&self.args)?);
        }
        Ok(self.kube.as_ref().expect("connected above"))
    }

    /// The cluster access the backend was given.
    pub fn args(&self) -> &KubeArgs {
        &self.args
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

/// A failed call on `target`; an answer in the 4xx range (the API server's refusal, which names
/// the verb, resource and namespace RBAC denied) means nothing was written.
fn failed(target: &Target, error: KubeError) -> BackendError {
    BackendError::from_answer(target, error.to_string(), error.status())
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
        !target.is_iam()
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

    fn ready_to_restart(
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
            let missing = missing_credentials(&created, &template, &rollout.role_arn);
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
                .list(resource, namespace, Some(&selector))
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
            if let Some(missing) = missing_credentials(pod, template, &rollout.role_arn) {
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

/// The pod label whose presence makes the webhook's registration skip a pod (its objectSelector).
const SKIP_POD_LABEL: &str = "eks.amazonaws.com/skip-pod-identity-webhook";
/// The pod annotation listing the containers the webhook leaves alone, comma-separated.
const SKIP_CONTAINERS: &str = "eks.amazonaws.com/skip-containers";

/// What the webhook should have put into the pod and did not, in words. Only the containers and
/// init containers of the workload's own template are judged, as the webhook injects them: not
/// those named in `eks.amazonaws.com/skip-containers`, not sidecars that a later webhook added.
/// A container whose template sets `AWS_ROLE_ARN` or the token file itself is left alone by the
/// webhook, so its own value must be the role.
fn missing_credentials(pod: &Value, template: &Value, role_arn: &str) -> Option<String> {
    if !pod["metadata"]["labels"][SKIP_POD_LABEL].is_null() {
        return Some(format!(
            "is labelled {SKIP_POD_LABEL}, so the webhook never mutates it"
        ));
    }
    let skipped: Vec<&str> = pod["metadata"]["annotations"][SKIP_CONTAINERS]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let declared = |list: &str, name: &str| {
        template["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == name)
    };
    let mut judged = 0;
    for list in ["initContainers", "containers"] {
        for container in pod["spec"][list].as_array().into_iter().flatten() {
            let container_name = container["name"].as_str().unwrap_or_default();
            if skipped.contains(&container_name) || !declared(list, container_name) {
                continue;
            }
            judged += 1;
            let env = |name: &str| {
                container["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["name"] == name)
                    .and_then(|e| e["value"].as_str())
            };
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
    }
    if judged == 0 {
        return None;
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
        let template = json!({"spec": {"containers": [{"name": "app"}]}});
        let token_volume = json!([{"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}}]}}]);
        let env = json!([{"name": "AWS_ROLE_ARN", "value": role}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}]);
        assert_eq!(
            missing_credentials(
                &pod(env.clone(), token_volume.clone(), "True"),
                &template,
                role
            ),
            None
        );
        assert!(
            missing_credentials(
                &pod(json!([]), token_volume.clone(), "True"),
                &template,
                role
            )
            .unwrap()
            .contains("no AWS_ROLE_ARN in container app")
        );
        assert!(
            missing_credentials(&pod(env.clone(), json!([]), "True"), &template, role)
                .unwrap()
                .contains("projected service account token")
        );
        assert!(
            missing_credentials(
                &pod(env, token_volume, "True"),
                &template,
                "arn:aws:iam::1:role/other"
            )
            .unwrap()
            .contains("not arn:aws:iam::1:role/other")
        );
    }

    #[test]
    fn only_the_templates_containers_that_the_webhook_mutates_are_judged() {
        let role = "arn:aws:iam::111122223333:role/web";
        let template = json!({"spec": {"containers": [{"name": "app"}, {"name": "proxy"}]}});
        let injected = json!([{"name": "AWS_ROLE_ARN", "value": role}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/t"}]);
        let volumes = json!([{"projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com"}}]}}]);
        let pod = |annotations: Value, labels: Value, containers: Value| {
            json!({"metadata": {"name": "web-1", "annotations": annotations, "labels": labels},
                   "spec": {"containers": containers, "volumes": volumes}})
        };
        // `proxy` is skipped by annotation; `mesh` was injected by a later webhook.
        let skipped = pod(
            json!({"eks.amazonaws.com/skip-containers": "proxy"}),
            json!({}),
            json!([{"name": "app", "env": injected}, {"name": "proxy"}, {"name": "mesh"}]),
        );
        assert_eq!(missing_credentials(&skipped, &template, role), None);
        let unskipped = pod(
            json!({}),
            json!({}),
            json!([{"name": "app", "env": injected}, {"name": "proxy"}]),
        );
        assert!(
            missing_credentials(&unskipped, &template, role)
                .unwrap()
                .contains("no AWS_ROLE_ARN in container proxy")
        );
        let labelled = pod(
            json!({}),
            json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"}),
            json!([{"name": "app", "env": injected}]),
        );
        assert!(
            missing_credentials(&labelled, &template, role)
                .unwrap()
                .contains("never mutates it")
        );
    }
}
