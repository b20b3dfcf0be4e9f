//! One object: its read, and the writes of the live backend (create, merge patch, delete on a
//! version).

use kube::core::Request;
use kube::core::params::{DeleteParams, GetParams, Patch, PatchParams, PostParams};
use serde_json::Value;

use super::request::{call, parse};
use super::{Kube, KubeError, Resource};
use crate::call_error::ErrorKind;

impl Kube {
    /// The object, or `None` when it does not exist.
    pub fn get(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, KubeError> {
        let path = resource.collection(namespace);
        let result = self
            .runtime
            .block_on(call(&self.client, &self.calls, "get", &path, || {
                Request::new(&path).get(&crate::names::url_segment(name), &GetParams::default())
            }));
        match result {
            Ok(text) => parse(&path, &text).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn create(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, KubeError> {
        self.post(resource, namespace, object, false)
    }

    /// What the API server would create, admission webhooks included, without creating it
    /// (`dryRun=All`).
    pub fn create_dry_run(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, KubeError> {
        self.post(resource, namespace, object, true)
    }

    fn post(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        object: &Value,
        dry_run: bool,
    ) -> Result<Value, KubeError> {
        let path = resource.collection(namespace);
        let body = serde_json::to_vec(object).expect("JSON values serialize");
        let params = PostParams {
            dry_run,
            ..PostParams::default()
        };
        let text =
            self.runtime
                .block_on(call(&self.client, &self.calls, "create", &path, || {
                    Request::new(&path).create(&params, body.clone())
                }))?;
        parse(&path, &text)
    }

    /// A JSON merge patch (RFC 7386). The caller puts `metadata.resourceVersion` in it, which
    /// makes the API server refuse it with 409 Conflict if the object changed since it was read.
    pub fn merge_patch(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, KubeError> {
        let path = resource.collection(namespace);
        let text =
            self.runtime
                .block_on(call(&self.client, &self.calls, "patch", &path, || {
                    Request::new(&path).patch(
                        &crate::names::url_segment(name),
                        &PatchParams::default(),
                        &Patch::Merge(patch),
                    )
                }))?;
        parse(&path, &text)
    }

    /// Deletes the object only while its `resourceVersion` is `version`.
    pub fn delete(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        name: &str,
        version: &str,
    ) -> Result<(), KubeError> {
        let path = resource.collection(namespace);
        let params = DeleteParams {
            preconditions: Some(kube::core::params::Preconditions {
                resource_version: Some(version.to_string()),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        self.runtime
            .block_on(call(&self.client, &self.calls, "delete", &path, || {
                Request::new(&path).delete(&crate::names::url_segment(name), &params)
            }))
            .map(|_| ())
    }
}
