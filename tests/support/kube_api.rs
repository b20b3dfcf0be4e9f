//! A Kubernetes API test server that the real `kube` client reaches over HTTP through a
//! generated kubeconfig. Faithful for the calls the tool makes: lists with label selectors and
//! `limit`/`continue` pagination (items without `kind`, as the API sends them), get, create,
//! JSON merge patch, delete with preconditions; `Status` bodies with the API's codes and reasons
//! (404 NotFound, 409 AlreadyExists, 409 Conflict on a stale `resourceVersion`, 415); and
//! `metadata.generation` bumped on spec changes.
//!
//! A small deployment controller replaces the pods of a Deployment, StatefulSet or DaemonSet when
//! its template changes, through a simulated pod identity webhook (role env and token volume when
//! the service account carries `eks.amazonaws.com/role-arn`), and updates the workload's status.
//! Switches simulate a missing webhook, pods that never become ready, and a concurrent edit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// (plural, kind, apiVersion, namespaced)
const RESOURCES: &[(&str, &str, &str, bool)] = &[
    ("namespaces", "Namespace", "v1", false),
    ("serviceaccounts", "ServiceAccount", "v1", true),
    ("pods", "Pod", "v1", true),
    ("configmaps", "ConfigMap", "v1", true),
    ("deployments", "Deployment", "apps/v1", true),
    ("statefulsets", "StatefulSet", "apps/v1", true),
    ("daemonsets", "DaemonSet", "apps/v1", true),
    ("replicasets", "ReplicaSet", "apps/v1", true),
    ("jobs", "Job", "batch/v1", true),
    ("cronjobs", "CronJob", "batch/v1", true),
    (
        "rolebindings",
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
        true,
    ),
    (
        "clusterrolebindings",
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io/v1",
        false,
    ),
    (
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        false,
    ),
];

fn resource_by_kind(kind: &str) -> Option<(&'static str, &'static str, &'static str, bool)> {
    RESOURCES.iter().copied().find(|r| r.1 == kind)
}

fn resource_by_plural(plural: &str) -> Option<(&'static str, &'static str, &'static str, bool)> {
    RESOURCES.iter().copied().find(|r| r.0 == plural)
}

/// (plural, namespace or "", name)
type Key = (String, String, String);

/// What the simulated cluster does.
#[derive(Debug, Clone)]
pub struct Switches {
    /// The pod identity webhook injects credentials into new pods.
    pub webhook: bool,
    /// New pods become ready.
    pub pods_become_ready: bool,
    /// Answer this many requests with 429 Too Many Requests first, as API priority and
    /// fairness does under load.
    pub throttle: usize,
}

impl Default for Switches {
    fn default() -> Switches {
        Switches {
            webhook: true,
            pods_become_ready: true,
            throttle: 0,
        }
    }
}

#[derive(Default)]
pub struct State {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    pub switches: Switches,
    /// Merge patches applied to an object just before the next write to it arrives: another
    /// writer that got there first.
    concurrent_edits: Vec<(Key, Value)>,
    /// "METHOD path?query" of every request, in order.
    pub requests: Vec<String>,
}

pub struct KubeApi {
    pub address: SocketAddr,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl KubeApi {
    /// Starts the server on a free port of 127.0.0.1 holding `objects`.
    pub fn start(objects: Vec<Value>, switches: Switches) -> KubeApi {
        let mut state = State {
            switches,
            ..State::default()
        };
        for object in objects {
            state.insert_loaded(object);
        }
        let state = Arc::new(Mutex::new(state));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the test API server");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a free port on 127.0.0.1");
        let address = listener.local_addr().expect("a bound address");
        let shared = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        KubeApi {
            address,
            state,
            runtime: Some(runtime),
        }
    }

    /// Every object of the snapshot directory `dir` (kubectl JSON or YAML, lists or objects);
    /// files that are not Kubernetes objects (AWS CLI outputs) are skipped.
    pub fn objects_in(dir: &Path) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("the fixture directory")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        let mut objects = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a fixture file");
            let documents: Vec<Value> = match file.extension().and_then(|e| e.to_str()) {
                Some("json") => vec![serde_json::from_str(&text).expect("fixture JSON")],
                Some("yaml" | "yml") => yaml_serde::Deserializer::from_str(&text)
                    .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("fixture YAML"))
                    .collect(),
                _ => continue,
            };
            for document in documents {
                match document["items"].as_array() {
                    // A typed list's items may omit their kind, as the API sends them.
                    Some(items) if document["kind"].as_str().is_some() => {
                        let item_kind = document["kind"]
                            .as_str()
                            .and_then(|k| k.strip_suffix("List"))
                            .filter(|k| !k.is_empty());
                        objects.extend(items.iter().cloned().map(|mut item| {
                            if item["kind"].is_null()
                                && let Some(kind) = item_kind
                            {
                                item["kind"] = json!(kind);
                                item["apiVersion"] = document["apiVersion"].clone();
                            }
                            item
                        }))
                    }
                    _ if document["kind"].is_string() => objects.push(document),
                    _ => {}
                }
            }
        }
        objects
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Writes a kubeconfig for this server into `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        self.kubeconfig_named(dir, "kubeconfig", "test")
    }

    /// A kubeconfig file `file` whose cluster entry (and context) is named `cluster`, as
    /// `aws eks update-kubeconfig` names them by the cluster's ARN.
    pub fn kubeconfig_named(&self, dir: &Path, file: &str, cluster: &str) -> PathBuf {
        let path = dir.join(file);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {}\nusers:\n- name: test\n  user:\n    token: test-token\ncontexts:\n- name: {cluster}\n  context:\n    cluster: {cluster}\n    user: test\ncurrent-context: {cluster}\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("the test server state")
    }

    /// The object, as a get would return it.
    pub fn object(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let (plural, ..) = resource_by_kind(kind).expect("a known kind");
        self.state()
            .objects
            .get(&(
                plural.to_string(),
                namespace.unwrap_or_default().to_string(),
                name.to_string(),
            ))
            .cloned()
    }

    /// Every object of a kind in a namespace (all namespaces when `None`).
    pub fn objects(&self, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let (plural, ..) = resource_by_kind(kind).expect("a known kind");
        self.state()
            .objects
            .iter()
            .filter(|((p, ns, _), _)| p == plural && namespace.is_none_or(|n| n == ns))
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Changes an object now, as another client would (merge patch; the resourceVersion moves).
    pub fn edit(&self, kind: &str, namespace: Option<&str>, name: &str, patch: Value) {
        let (plural, ..) = resource_by_kind(kind).expect("a known kind");
        let key = (
            plural.to_string(),
            namespace.unwrap_or_default().to_string(),
            name.to_string(),
        );
        let mut state = self.state();
        state.apply_edit(&key, &patch);
    }

    /// Changes an object just before the next write to it arrives, so the writer's
    /// `resourceVersion` is out of date when its request is served.
    pub fn edit_before_next_write(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) {
        let (plural, ..) = resource_by_kind(kind).expect("a known kind");
        self.state().concurrent_edits.push((
            (
                plural.to_string(),
                namespace.unwrap_or_default().to_string(),
                name.to_string(),
            ),
            patch,
        ));
    }

    /// Everything the server holds, without the fields the server itself maintains, for
    /// before/after comparisons.
    pub fn contents(&self, kinds: &[&str]) -> BTreeMap<String, Value> {
        let state = self.state();
        state
            .objects
            .iter()
            .filter(|(_, o)| kinds.contains(&o["kind"].as_str().unwrap_or_default()))
            .map(|((plural, ns, name), object)| {
                let mut object = object.clone();
                if let Some(meta) = object["metadata"].as_object_mut() {
                    for field in ["resourceVersion", "generation", "uid", "creationTimestamp"] {
                        meta.remove(field);
                    }
                }
                if let Some(map) = object.as_object_mut() {
                    map.remove("status");
                }
                (format!("{plural}/{ns}/{name}"), object)
            })
            .collect()
    }
}

impl State {
    fn next_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    fn insert_loaded(&mut self, mut object: Value) {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let Some((plural, _, _, namespaced)) = resource_by_kind(&kind) else {
            return;
        };
        let version = self.next_version();
        let meta = object["metadata"]
            .as_object_mut()
            .expect("fixture objects have metadata");
        meta.insert("resourceVersion".into(), json!(version));
        meta.entry("generation").or_insert(json!(1));
        meta.entry("uid")
            .or_insert(json!(format!("uid-{}", self.resource_version)));
        let namespace = if namespaced {
            meta.entry("namespace")
                .or_insert(json!("default"))
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            String::new()
        };
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        if matches!(kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet")
            && object["status"]["observedGeneration"].is_null()
        {
            let replicas = desired_replicas(&object);
            object["status"] = rollout_status(&kind, 1, replicas, replicas);
        }
        self.objects
            .insert((plural.to_string(), namespace, name), object);
    }

    /// Merges `patch` into the object; an object that does not exist is created from it, as
    /// another writer's `kubectl apply` would.
    fn apply_edit(&mut self, key: &Key, patch: &Value) {
        let version = self.next_version();
        if !self.objects.contains_key(key) {
            let mut object = patch.clone();
            object["metadata"]["resourceVersion"] = json!(version);
            object["metadata"]["uid"] = json!(format!("uid-{version}"));
            self.objects.insert(key.clone(), object);
            return;
        }
        if let Some(object) = self.objects.get_mut(key) {
            let spec_before = object["spec"].clone();
            merge(object, patch);
            omit_empty_maps(object);
            object["metadata"]["resourceVersion"] = json!(version);
            if object["spec"] != spec_before {
                let generation = object["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                object["metadata"]["generation"] = json!(generation);
            }
        }
    }
}

fn desired_replicas(workload: &Value) -> i64 {
    match workload["kind"].as_str() {
        // Two nodes.
        Some("DaemonSet") => 2,
        _ => workload["spec"]["replicas"].as_i64().unwrap_or(1),
    }
}

fn rollout_status(kind: &str, generation: i64, replicas: i64, ready: i64) -> Value {
    match kind {
        "DaemonSet" => json!({
            "observedGeneration": generation,
            "desiredNumberScheduled": replicas,
            "currentNumberScheduled": replicas,
            "updatedNumberScheduled": replicas,
            "numberReady": ready,
            "numberAvailable": ready,
        }),
        _ => json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }),
    }
}

/// Labels and annotations are Go maps with `omitempty`: the API never returns them empty.
fn omit_empty_maps(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|key, child| {
            !(matches!(key.as_str(), "labels" | "annotations")
                && child.as_object().is_some_and(Map::is_empty))
        });
        map.values_mut().for_each(omit_empty_maps);
    }
}

/// RFC 7386.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn status(code: StatusCode, reason: &str, message: String) -> Response<Full<Bytes>> {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": if code.is_success() { "Success" } else { "Failure" },
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    respond(code, &body)
}

fn respond(code: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = code;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The parts of a request path.
struct Route {
    plural: &'static str,
    kind: &'static str,
    api_version: &'static str,
    namespaced: bool,
    namespace: Option<String>,
    name: Option<String>,
}

fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", "v1", rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] => (Some(ns.to_string()), {
            let mut all = vec![*plural];
            all.extend_from_slice(rest);
            all
        }),
        other => (None, other.to_vec()),
    };
    let (plural, name) = match rest.as_slice() {
        [plural] => (*plural, None),
        [plural, name] => (*plural, Some(name.to_string())),
        _ => return None,
    };
    let (plural, kind, api_version, namespaced) = resource_by_plural(plural)?;
    Some(Route {
        plural,
        kind,
        api_version,
        namespaced,
        namespace,
        name,
    })
}

fn query(uri: &hyper::Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

/// Query values are form-encoded, as IAM's documents are.
fn decode(text: &str) -> String {
    irsa_migrate::iam::policy::percent_decode(text).unwrap_or_else(|_| text.to_string())
}

/// Equality-based selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated.
fn selects(selector: &str, labels: &Value) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        if let Some((key, value)) = term.split_once("!=") {
            labels[key].as_str() != Some(value)
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels[key].as_str() == Some(value)
        } else if let Some(key) = term.strip_prefix('!') {
            labels.get(key).is_none()
        } else {
            labels.get(term).is_some()
        }
    })
}

async fn handle(state: &Mutex<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("cannot read the body: {e}"),
            );
        }
    };
    let mut state = state.lock().expect("the test server state");
    state.requests.push(format!(
        "{method} {}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    ));
    if state.switches.throttle > 0 {
        state.switches.throttle -= 1;
        let mut response = status(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "too many requests, please try again later".into(),
        );
        response.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static("1"),
        );
        return response;
    }
    let Some(route) = route(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
        );
    };
    let body = if method == Method::GET {
        Value::Null
    } else if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(e) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("the body is not JSON: {e}"),
                );
            }
        }
    };
    match (method, route.name.clone()) {
        (Method::GET, None) => list(&state, &route, &query(&uri)),
        (Method::GET, Some(name)) => get(&state, &route, &name),
        (Method::POST, None) => create(&mut state, &route, body),
        (Method::PATCH, Some(name)) => {
            if content_type != "application/merge-patch+json" {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (got {content_type})"
                    ),
                );
            }
            patch(&mut state, &route, &name, body)
        }
        (Method::DELETE, Some(name)) => delete(&mut state, &route, &name, &body),
        (method, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        ),
    }
}

fn key(route: &Route, name: &str) -> Key {
    (
        route.plural.to_string(),
        if route.namespaced {
            route.namespace.clone().unwrap_or_default()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

fn not_found(route: &Route, name: &str) -> Response<Full<Bytes>> {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} \"{name}\" not found", route.plural),
    )
}

fn list(state: &State, route: &Route, query: &BTreeMap<String, String>) -> Response<Full<Bytes>> {
    let selector = query.get("labelSelector").cloned().unwrap_or_default();
    let matching: Vec<&Value> = state
        .objects
        .iter()
        .filter(|((plural, ns, _), _)| {
            plural == route.plural
                && match (&route.namespace, route.namespaced) {
                    (Some(wanted), true) => ns == wanted,
                    _ => true,
                }
        })
        .map(|(_, object)| object)
        .filter(|object| selects(&selector, &object["metadata"]["labels"]))
        .collect();
    // The continue token is opaque to clients; here it is the offset of the next item.
    let start: usize = match query.get("continue") {
        Some(token) => match token.strip_prefix("offset-").and_then(|n| n.parse().ok()) {
            Some(offset) => offset,
            None => {
                return status(
                    StatusCode::GONE,
                    "Expired",
                    "the provided continue parameter is too old or malformed".into(),
                );
            }
        },
        None => 0,
    };
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(matching.len());
    let items: Vec<Value> = matching[start.min(end)..end]
        .iter()
        .map(|object| {
            let mut item = (*object).clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    let mut metadata = json!({"resourceVersion": state.resource_version.to_string()});
    if end < matching.len() {
        metadata["continue"] = json!(format!("offset-{end}"));
        metadata["remainingItemCount"] = json!(matching.len() - end);
    }
    respond(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", route.kind),
            "apiVersion": route.api_version,
            "metadata": metadata,
            "items": items,
        }),
    )
}

fn get(state: &State, route: &Route, name: &str) -> Response<Full<Bytes>> {
    match state.objects.get(&key(route, name)) {
        Some(object) => respond(StatusCode::OK, object),
        None => not_found(route, name),
    }
}

fn create(state: &mut State, route: &Route, mut object: Value) -> Response<Full<Bytes>> {
    let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{}: metadata.name: Required value", route.plural),
        );
    };
    let key = key(route, &name);
    concurrent_edit(state, &key);
    if state.objects.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", route.plural),
        );
    }
    if object["kind"].as_str() != Some(route.kind) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "the body's kind {} does not match {}",
                object["kind"], route.kind
            ),
        );
    }
    let version = state.next_version();
    let meta = &mut object["metadata"];
    meta["resourceVersion"] = json!(version);
    meta["uid"] = json!(format!("uid-{version}"));
    meta["generation"] = json!(1);
    meta["creationTimestamp"] = json!("2026-11-28T12:00:00Z");
    if route.namespaced {
        meta["namespace"] = json!(key.1);
    }
    state.objects.insert(key, object.clone());
    respond(StatusCode::CREATED, &object)
}

/// Applies a pending concurrent edit of `key`, if one is queued.
fn concurrent_edit(state: &mut State, key: &Key) {
    if let Some(position) = state.concurrent_edits.iter().position(|(k, _)| k == key) {
        let (_, patch) = state.concurrent_edits.remove(position);
        state.apply_edit(key, &patch);
    }
}

fn conflict(route: &Route, name: &str) -> Response<Full<Bytes>> {
    status(
        StatusCode::CONFLICT,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            route.plural
        ),
    )
}

fn patch(state: &mut State, route: &Route, name: &str, patch: Value) -> Response<Full<Bytes>> {
    let key = key(route, name);
    concurrent_edit(state, &key);
    let Some(current) = state.objects.get(&key) else {
        return not_found(route, name);
    };
    if let Some(wanted) = patch["metadata"]["resourceVersion"].as_str()
        && current["metadata"]["resourceVersion"].as_str() != Some(wanted)
    {
        return conflict(route, name);
    }
    let mut patch = patch;
    if let Some(meta) = patch["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    state.apply_edit(&key, &patch);
    reconcile(state, &key);
    respond(StatusCode::OK, &state.objects[&key])
}

fn delete(state: &mut State, route: &Route, name: &str, options: &Value) -> Response<Full<Bytes>> {
    let key = key(route, name);
    concurrent_edit(state, &key);
    let Some(current) = state.objects.get(&key) else {
        return not_found(route, name);
    };
    if let Some(wanted) = options["preconditions"]["resourceVersion"].as_str()
        && current["metadata"]["resourceVersion"].as_str() != Some(wanted)
    {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: ResourceVersion in precondition: {wanted}, ResourceVersion in object meta: {}",
                route.plural,
                current["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
            ),
        );
    }
    state.objects.remove(&key);
    status(
        StatusCode::OK,
        "",
        format!("{} \"{name}\" deleted", route.plural),
    )
}

/// The deployment controller: when a workload's generation moved past its observed generation,
/// its pods are replaced from the new template (through the webhook) and its status updated.
fn reconcile(state: &mut State, key: &Key) {
    let workload = state.objects[key].clone();
    let kind = workload["kind"].as_str().unwrap_or_default().to_string();
    if !matches!(kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet") {
        return;
    }
    let generation = workload["metadata"]["generation"].as_i64().unwrap_or(1);
    if workload["status"]["observedGeneration"].as_i64() == Some(generation) {
        return;
    }
    let namespace = key.1.clone();
    let name = key.2.clone();
    let template = workload["spec"]["template"].clone();
    let hash = template_hash(&template);
    let replicas = desired_replicas(&workload);
    // The old pods go, whoever owned them in this workload's line.
    let owned_by_workload = |pod: &Value| {
        let owner = &pod["metadata"]["ownerReferences"][0];
        let owner_name = owner["name"].as_str().unwrap_or_default();
        match kind.as_str() {
            "Deployment" => {
                owner["kind"] == "ReplicaSet"
                    && owner_name
                        .strip_prefix(name.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
            }
            _ => owner["kind"] == kind.as_str() && owner_name == name,
        }
    };
    let old: Vec<Key> = state
        .objects
        .iter()
        .filter(|((plural, ns, _), pod)| {
            plural == "pods" && *ns == namespace && owned_by_workload(pod)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for pod in old {
        state.objects.remove(&pod);
    }
    let owner = if kind == "Deployment" {
        let replica_set = format!("{name}-{hash}");
        let version = state.next_version();
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(hash);
        state.objects.insert(
            ("replicasets".into(), namespace.clone(), replica_set.clone()),
            json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": replica_set, "namespace": namespace, "labels": labels,
                    "resourceVersion": version, "generation": 1,
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "controller": true}],
                },
                "spec": {"replicas": replicas, "selector": workload["spec"]["selector"], "template": template},
            }),
        );
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set, "controller": true})
    } else {
        json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "controller": true})
    };
    let owner_name = owner["name"].as_str().unwrap_or_default().to_string();
    let mut ready = 0;
    for index in 0..replicas {
        let pod_name = match kind.as_str() {
            "StatefulSet" => format!("{name}-{index}"),
            _ => format!("{owner_name}-{hash}{index}"),
        };
        let pod = new_pod(state, &namespace, &pod_name, &template, &owner, &hash);
        if pod["status"]["conditions"][0]["status"] == "True" {
            ready += 1;
        }
        let version = state.next_version();
        let mut pod = pod;
        pod["metadata"]["resourceVersion"] = json!(version);
        state
            .objects
            .insert(("pods".into(), namespace.clone(), pod_name), pod);
    }
    let object = state
        .objects
        .get_mut(key)
        .expect("reconciling an existing workload");
    object["status"] = rollout_status(&kind, generation, replicas, ready);
}

fn template_hash(template: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut hasher);
    format!("{:x}", hasher.finish() & 0xff_ffff)
}

/// A pod from the template, as admission (the pod identity webhook) and the kubelet leave it.
fn new_pod(
    state: &State,
    namespace: &str,
    name: &str,
    template: &Value,
    owner: &Value,
    hash: &str,
) -> Value {
    let mut spec = template["spec"].clone();
    let account = spec["serviceAccountName"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let role = state
        .objects
        .get(&("serviceaccounts".into(), namespace.into(), account))
        .and_then(|sa| sa["metadata"]["annotations"][ROLE_ANNOTATION].as_str())
        .map(str::to_string);
    if let (Some(role), true) = (role, state.switches.webhook) {
        inject_credentials(&mut spec, &role);
    }
    let mut labels = template["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let ready = if state.switches.pods_become_ready {
        "True"
    } else {
        "False"
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": template["metadata"]["annotations"],
            "ownerReferences": [owner],
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": ready}],
        },
    })
}

/// What amazon-eks-pod-identity-webhook adds to a pod whose service account has a role.
fn inject_credentials(spec: &mut Value, role: &str) {
    const TOKEN_DIR: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
    if let Some(containers) = spec["containers"].as_array_mut() {
        for container in containers {
            let env = container["env"].as_array().cloned().unwrap_or_default();
            let mut env: Vec<Value> = env;
            env.push(json!({"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}));
            env.push(json!({"name": "AWS_ROLE_ARN", "value": role}));
            env.push(json!({"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": format!("{TOKEN_DIR}/token")}));
            container["env"] = Value::Array(env);
            let mut mounts = container["volumeMounts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            mounts.push(json!({"name": "aws-iam-token", "mountPath": TOKEN_DIR, "readOnly": true}));
            container["volumeMounts"] = Value::Array(mounts);
        }
    }
    let mut volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
    volumes.push(json!({
        "name": "aws-iam-token",
        "projected": {"sources": [{"serviceAccountToken": {
            "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"
        }}]}
    }));
    spec["volumes"] = Value::Array(volumes);
}
