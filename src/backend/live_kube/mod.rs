//! The live Kubernetes backend: service accounts, RBAC bindings and workloads, read and written
//! through the API server. Writes are conditional: a patch carries the `resourceVersion` the
//! engine's read saw and a delete carries it as a precondition, so an object changed by someone
//! else in between is refused by the API server (409) and never overwritten.
//!
//! The checks around a wave's restart (a dry-run pod gets the role; the rollout finished with
//! it) are `verify`; what the pod identity webhook should have injected is `injection`.

mod injection;
mod verify;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{Backend, BackendError, Rollout};
use crate::call_error::ErrorKind;
use crate::kubernetes::{Kube, KubeArgs, KubeError, Resource};
use crate::plan::{Step, Target, fragment};

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
        self.connected().map_err(|source| BackendError::Kube {
            target: "the Kubernetes API".into(),
            source,
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

    /// The cluster's running pods, by address: who made a legacy role session.
    pub fn running_pods(&mut self) -> Result<crate::evidence::Pods, BackendError> {
        let resource = Resource::by_kind("Pod").expect("pods are a scanned kind");
        let pods =
            self.kube()?
                .list(resource, None, None)
                .map_err(|source| BackendError::Kube {
                    target: "the cluster's pods".into(),
                    source,
                })?;
        Ok(crate::evidence::Pods::new(pods.iter().filter_map(|pod| {
            let status = &pod["status"];
            let finished = crate::inventory::is_finished_phase(status["phase"].as_str());
            let ip = status["podIP"].as_str().filter(|_| !finished)?;
            let meta = &pod["metadata"];
            Some((
                ip.to_string(),
                format!(
                    "{}/{}",
                    meta["namespace"].as_str().unwrap_or_default(),
                    meta["name"].as_str().unwrap_or_default()
                ),
            ))
        })))
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
                Err(e) if e.kind() == ErrorKind::Conflict => {
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
    let (kind, namespace, name) =
        target
            .kubernetes_object()
            .ok_or_else(|| BackendError::Target {
                target: target.to_string(),
                message: "not a Kubernetes object".into(),
            })?;
    let resource = Resource::by_kind(kind).ok_or_else(|| BackendError::Target {
        target: target.to_string(),
        message: format!("the tool does not write {kind} objects"),
    })?;
    Ok((resource, namespace, name))
}

fn version(object: &Value) -> Option<String> {
    object["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
}

/// A failed call on `target`. Its kind says whether it was refused: an answer in the 4xx range
/// (the API server's refusal, which names the verb, resource and namespace RBAC denied) means
/// nothing was written.
fn failed(target: &Target, error: KubeError) -> BackendError {
    BackendError::Kube {
        target: target.to_string(),
        source: error,
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
        self.restart_blocker(rollout, timeout)
    }

    fn verify_rollout(
        &mut self,
        wave: &[Rollout],
        timeout: Duration,
        progress: &mut dyn FnMut(String),
    ) -> Result<Vec<String>, BackendError> {
        self.wait_for_rollout(wave, timeout, progress)
    }
}
