//! Kubernetes access through `kube`: the kubeconfig (`--kubeconfig`, `--context`, `KUBECONFIG`,
//! in-cluster), lists read page by page as the API's own JSON (so live reads, `snapshot --out`
//! and the snapshot loader share one path), and the conditional writes of the live backend.
//!
//! Calls are raw requests built by `kube::core::Request`: the tool reads slim types of its own and
//! must not drop fields it does not know when it writes, so typed `k8s-openapi` objects would
//! only cost memory.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Args;
use kube::core::Request;
use kube::core::params::{DeleteParams, GetParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;

use crate::inventory::Unreadable;

/// How to reach the cluster's API server. `KUBECONFIG` and the in-cluster service account apply
/// when no flag is given, as for kubectl.
#[derive(Debug, Clone, Default, Args)]
pub struct KubeArgs {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster
    /// service account).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Objects per list page (`limit`); the API server's `continue` token fetches the rest.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
}

impl KubeArgs {
    /// The EKS cluster the kubeconfig context points at, when its cluster entry is named by the
    /// cluster's ARN (as `aws eks update-kubeconfig` names it): (region, name).
    pub fn eks_cluster(&self) -> Option<(String, String)> {
        let kubeconfig = match &self.kubeconfig {
            Some(path) => kube::config::Kubeconfig::read_from(path),
            None => kube::config::Kubeconfig::read(),
        }
        .ok()?;
        let context_name = self
            .context
            .clone()
            .or(kubeconfig.current_context.clone())?;
        let context = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context_name)?
            .context
            .as_ref()?;
        eks_cluster_arn(&context.cluster)
    }
}

/// `arn:<partition>:eks:<region>:<account>:cluster/<name>` → (region, name).
fn eks_cluster_arn(text: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "eks", region, _, resource] => {
            let name = resource.strip_prefix("cluster/")?;
            (!region.is_empty() && !name.is_empty()).then(|| (region.to_string(), name.to_string()))
        }
        _ => None,
    }
}

/// Why the Kubernetes API could not be reached, read or written. The message names the call.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "cannot load the Kubernetes configuration: {0}; pass --kubeconfig/--context, set KUBECONFIG, or read a snapshot with --snapshot"
    )]
    Config(String),
    #[error("Kubernetes {verb} {path}: {message}")]
    Call {
        verb: &'static str,
        path: String,
        /// The HTTP status the API server answered with, when it answered.
        status: Option<u16>,
        message: String,
    },
    #[error("cannot start the Kubernetes client runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl KubeError {
    pub fn status(&self) -> Option<u16> {
        match self {
            KubeError::Call { status, .. } => *status,
            _ => None,
        }
    }
}

/// A kind the tool reads or writes: where its objects live in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub kind: &'static str,
    /// `v1` for the core group, `group/version` otherwise.
    pub api_version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl Resource {
    const fn new(
        kind: &'static str,
        api_version: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> Resource {
        Resource {
            kind,
            api_version,
            plural,
            namespaced,
        }
    }

    /// The collection's URL path, across namespaces when `namespace` is `None`.
    pub fn collection(&self, namespace: Option<&str>) -> String {
        let base = if self.api_version == "v1" {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}", self.api_version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!(
                "{base}/namespaces/{}/{}",
                crate::names::url_segment(ns),
                self.plural
            ),
            _ => format!("{base}/{}", self.plural),
        }
    }

    pub fn by_kind(kind: &str) -> Option<Resource> {
        SCANNED.iter().copied().find(|r| r.kind == kind)
    }
}

/// Every kind the scanner reads, listed cluster-wide. `ConfigMap` is read as one object
/// (`kube-system/aws-auth`), never listed: config maps are many and mostly irrelevant.
pub const SCANNED: &[Resource] = &[
    Resource::new("Namespace", "v1", "namespaces", false),
    Resource::new("ServiceAccount", "v1", "serviceaccounts", true),
    Resource::new("Pod", "v1", "pods", true),
    Resource::new("Deployment", "apps/v1", "deployments", true),
    Resource::new("StatefulSet", "apps/v1", "statefulsets", true),
    Resource::new("DaemonSet", "apps/v1", "daemonsets", true),
    Resource::new("ReplicaSet", "apps/v1", "replicasets", true),
    Resource::new("Job", "batch/v1", "jobs", true),
    Resource::new("CronJob", "batch/v1", "cronjobs", true),
    Resource::new(
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        true,
    ),
    Resource::new(
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        false,
    ),
    Resource::new(
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        false,
    ),
];

pub const CONFIG_MAP: Resource = Resource::new("ConfigMap", "v1", "configmaps", true);

/// Attempts per call when the API server throttles (429) or is briefly unavailable (5xx).
const ATTEMPTS: u32 = 5;

/// Lists of different kinds read at once: enough to hide latency, few enough not to be
/// throttled by API priority and fairness.
const CONCURRENT_LISTS: usize = 4;

/// One client and the runtime it runs on; every call blocks the caller until it is answered.
pub struct Kube {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    page_size: u32,
    calls: Arc<AtomicUsize>,
    server: String,
}

/// One list page as the API server sent it.
pub struct Page {
    pub resource: Resource,
    pub number: usize,
    pub text: String,
}

/// A read the API server refused (403 Forbidden), in RBAC's terms: `deployments.apps`.
fn denied(
    verb: &str,
    resource: Resource,
    namespace: Option<&str>,
    error: &KubeError,
) -> Unreadable {
    let group = resource
        .api_version
        .rsplit_once('/')
        .map(|(group, _)| group);
    Unreadable {
        verb: verb.to_string(),
        resource: match group {
            Some(group) => format!("{}.{group}", resource.plural),
            None => resource.plural.to_string(),
        },
        namespace: namespace.map(str::to_string),
        message: error.to_string(),
    }
}

impl Kube {
    pub fn connect(args: &KubeArgs) -> Result<Kube, KubeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(KubeError::Runtime)?;
        let options = kube::config::KubeConfigOptions {
            context: args.context.clone(),
            ..Default::default()
        };
        let config = runtime.block_on(async {
            match (&args.kubeconfig, &args.context) {
                (Some(path), _) => {
                    let file = kube::config::Kubeconfig::read_from(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    kube::Config::from_custom_kubeconfig(file, &options)
                        .await
                        .map_err(|e| format!("{}: {e}", path.display()))
                }
                (None, Some(_)) => kube::Config::from_kubeconfig(&options)
                    .await
                    .map_err(|e| e.to_string()),
                (None, None) => kube::Config::infer().await.map_err(|e| e.to_string()),
            }
        });
        let config = config.map_err(KubeError::Config)?;
        let server = config.cluster_url.to_string();
        let client = {
            // The client spawns its connection tasks on the current runtime.
            let _guard = runtime.enter();
            kube::Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))?
        };
        Ok(Kube {
            runtime,
            client,
            page_size: args.page_size,
            calls: Arc::new(AtomicUsize::new(0)),
            server,
        })
    }

    /// The API server's URL, for summaries.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// API calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Reads every object of every kind the scanner needs, page by page, a few kinds at once;
    /// `on_page` sees each page as its kind's list ends (for progress).
    /// A kind the caller may not read (403) is left out and named in the second list, so one
    /// missing permission never ends a scan; every other error does.
    pub fn collect(
        &self,
        on_page: Arc<dyn Fn(&Page) + Send + Sync>,
    ) -> Result<(Vec<Page>, Vec<Unreadable>), KubeError> {
        self.runtime.block_on(async {
            let lists = SCANNED
                .iter()
                .copied()
                .map(|resource| {
                    let client = self.client.clone();
                    let calls = self.calls.clone();
                    let on_page = on_page.clone();
                    let page_size = self.page_size;
                    async move {
                        let pages = list_all(&client, &calls, resource, page_size).await;
                        if let Ok(pages) = &pages {
                            pages.iter().for_each(|page| on_page(page));
                        }
                        pages
                    }
                })
                .collect();
            // Kinds in a fixed order, so the inventory does not depend on which list ended first.
            let mut pages = Vec::new();
            let mut refused = Vec::new();
            for (kind, resource) in crate::tasks::bounded(CONCURRENT_LISTS, lists)
                .await
                .into_iter()
                .zip(SCANNED)
            {
                match kind {
                    Ok(kind) => pages.extend(kind),
                    Err(e) if e.status() == Some(403) => {
                        refused.push(denied("list", *resource, None, &e))
                    }
                    Err(e) => return Err(e),
                }
            }
            let aws_auth = CONFIG_MAP.collection(Some("kube-system"));
            match call(&self.client, &self.calls, "get", &aws_auth, || {
                Request::new(&aws_auth).get("aws-auth", &GetParams::default())
            })
            .await
            {
                Ok(text) => pages.push(Page {
                    resource: CONFIG_MAP,
                    number: 1,
                    text,
                }),
                Err(e) if e.status() == Some(404) => {}
                Err(e) if e.status() == Some(403) => {
                    refused.push(denied("get", CONFIG_MAP, Some("kube-system"), &e))
                }
                Err(e) => return Err(e),
            }
            Ok((pages, refused))
        })
    }

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
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Objects of a namespace matching a label selector (`a=b,c=d`; `None`: all), every page.
    pub fn list(
        &self,
        resource: Resource,
        namespace: &str,
        selector: Option<&str>,
    ) -> Result<Vec<Value>, KubeError> {
        let path = resource.collection(Some(namespace));
        let pages = self.runtime.block_on(pages(
            &self.client,
            &self.calls,
            &path,
            selector,
            self.page_size,
        ))?;
        let mut items = Vec::new();
        for text in pages {
            if let Some(list) = parse(&path, &text)?["items"].as_array_mut() {
                items.append(list);
            }
        }
        Ok(items)
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

fn parse(path: &str, text: &str) -> Result<Value, KubeError> {
    serde_json::from_str(text).map_err(|e| KubeError::Call {
        verb: "decode",
        path: path.to_string(),
        status: None,
        message: e.to_string(),
    })
}

/// The `continue` token of a list page's text, `None` on the last page (an empty token too),
/// without parsing the page's items.
fn continue_token(text: &str) -> Result<Option<String>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct ListMeta {
        #[serde(rename = "continue", default)]
        token: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        metadata: Option<ListMeta>,
    }
    let head: Head = serde_json::from_str(text)?;
    Ok(head
        .metadata
        .and_then(|m| m.token)
        .filter(|t| !t.is_empty()))
}

/// Every page of one kind, cluster-wide.
async fn list_all(
    client: &kube::Client,
    calls: &AtomicUsize,
    resource: Resource,
    page_size: u32,
) -> Result<Vec<Page>, KubeError> {
    let path = resource.collection(None);
    let texts = pages(client, calls, &path, None, page_size).await?;
    Ok(texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| Page {
            resource,
            number: i + 1,
            text,
        })
        .collect())
}

/// How often a list whose `continue` token expired is started again before giving up.
const LIST_RESTARTS: usize = 3;

/// Every page of a list (its JSON text), following `continue` tokens. A token older than the
/// last etcd compaction (every 5 minutes by default) is answered 410 Expired: the list is read
/// again from its start, as kubectl and client-go's pager do, a few times at most.
async fn pages(
    client: &kube::Client,
    calls: &AtomicUsize,
    path: &str,
    selector: Option<&str>,
    page_size: u32,
) -> Result<Vec<String>, KubeError> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    let mut restarts = 0;
    loop {
        let params = ListParams {
            label_selector: selector.map(str::to_string),
            limit: Some(page_size),
            continue_token: token.clone(),
            ..ListParams::default()
        };
        let text = match call(client, calls, "list", path, || {
            Request::new(path).list(&params)
        })
        .await
        {
            Ok(text) => text,
            Err(e) if e.status() == Some(410) && token.is_some() && restarts < LIST_RESTARTS => {
                restarts += 1;
                pages.clear();
                token = None;
                continue;
            }
            Err(e) => return Err(e),
        };
        token = continue_token(&text).map_err(|e| KubeError::Call {
            verb: "decode",
            path: path.to_string(),
            status: None,
            message: e.to_string(),
        })?;
        pages.push(text);
        if token.is_none() {
            return Ok(pages);
        }
    }
}

/// One request, retried with exponential backoff while the server throttles or is unavailable.
async fn call(
    client: &kube::Client,
    calls: &AtomicUsize,
    verb: &'static str,
    path: &str,
    request: impl Fn() -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<String, KubeError> {
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let built = request().map_err(|e| KubeError::Call {
            verb,
            path: path.to_string(),
            status: None,
            message: e.to_string(),
        })?;
        calls.fetch_add(1, Ordering::Relaxed);
        let error = match client.request_text(built).await {
            Ok(text) => return Ok(text),
            Err(kube::Error::Api(response)) => KubeError::Call {
                verb,
                path: path.to_string(),
                status: Some(response.code),
                message: format!(
                    "{} {}: {}",
                    response.code, response.reason, response.message
                ),
            },
            Err(other) => KubeError::Call {
                verb,
                path: path.to_string(),
                status: None,
                message: chain(&other),
            },
        };
        let retryable = matches!(error.status(), Some(429 | 500 | 502 | 503 | 504));
        if !retryable || attempt >= ATTEMPTS {
            return Err(error);
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
        attempt += 1;
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_paths_follow_the_api_groups() {
        let pods = Resource::by_kind("Pod").unwrap();
        assert_eq!(pods.collection(None), "/api/v1/pods");
        assert_eq!(
            pods.collection(Some("payments")),
            "/api/v1/namespaces/payments/pods"
        );
        let bindings = Resource::by_kind("ClusterRoleBinding").unwrap();
        assert_eq!(
            bindings.collection(Some("ignored")),
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
        );
        assert_eq!(
            Resource::by_kind("Deployment")
                .unwrap()
                .collection(Some("a")),
            "/apis/apps/v1/namespaces/a/deployments"
        );
    }

    #[test]
    fn eks_contexts_name_their_cluster_by_arn() {
        assert_eq!(
            eks_cluster_arn("arn:aws:eks:eu-west-1:111122223333:cluster/prod"),
            Some(("eu-west-1".into(), "prod".into()))
        );
        assert_eq!(eks_cluster_arn("kind-dev"), None);
        assert_eq!(eks_cluster_arn("arn:aws:iam::111122223333:role/prod"), None);
    }

    #[test]
    fn an_empty_continue_token_ends_the_list() {
        assert_eq!(
            continue_token(r#"{"metadata": {"continue": ""}, "items": []}"#).unwrap(),
            None
        );
        assert_eq!(
            continue_token(r#"{"metadata": {"continue": "abc"}}"#).unwrap(),
            Some("abc".into())
        );
    }
}
