//! The real Kubernetes control plane for the live tests: etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok and amazon-eks-pod-identity-webhook, built from
//! their Go modules and started on 127.0.0.1 by `scripts/cluster up` (one cluster per test, so
//! tests never see each other's objects). Objects are read and written with the real kubectl
//! built beside them, as the cluster's admin; the tool itself runs with the least-privilege
//! identities of `docs/permissions.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct ControlPlane {
    pub dir: tempfile::TempDir,
    kubectl: PathBuf,
    /// `https://127.0.0.1:PORT` of the kube-apiserver.
    pub server: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster")
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

impl ControlPlane {
    /// Starts a cluster and returns when it is ready (nodes Ready, the webhook mutating pods).
    pub fn start() -> ControlPlane {
        let dir = tempfile::tempdir().expect("a directory for the cluster");
        let output = Command::new(script())
            .arg("up")
            .arg(dir.path())
            .arg("--owner")
            .arg(std::process::id().to_string())
            .env("CLUSTER_QUIET", "1")
            .stdin(Stdio::null())
            .output()
            .expect("scripts/cluster runs");
        assert!(
            output.status.success(),
            "scripts/cluster up failed: {}{}",
            String::from_utf8_lossy(&output.stderr),
            logs_tail(dir.path())
        );
        let env = std::fs::read_to_string(dir.path().join("env")).expect("the cluster's env file");
        let value = |key: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} in the cluster's env"))
                .to_string()
        };
        ControlPlane {
            kubectl: PathBuf::from(value("KUBECTL")),
            server: format!("https://127.0.0.1:{}", value("API_PORT")),
            dir,
        }
    }

    /// The admin kubeconfig (client certificate in `system:masters`).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The kubeconfig of a least-privilege identity: "scan" or "apply".
    pub fn kubeconfig(&self, identity: &str) -> PathBuf {
        self.dir.path().join(format!("kubeconfig-{identity}"))
    }

    /// The cluster's CA certificate and the serving certificate and key (SAN 127.0.0.1).
    pub fn pki(&self, file: &str) -> PathBuf {
        self.dir.path().join("pki").join(file)
    }

    /// The kubectl built with the control plane.
    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }

    /// kubectl as the admin, with `input` on stdin.
    pub fn kubectl(&self, args: &[&str], input: Option<&str>) -> Output {
        run_kubectl(&self.kubectl, &self.admin_kubeconfig(), args, input).expect("kubectl runs")
    }

    /// kubectl as the admin; fails the test when it fails.
    pub fn kubectl_ok(&self, args: &[&str], input: Option<&str>) -> String {
        let output = self.kubectl(args, input);
        // The components' logs say why a cluster that was ready stopped answering.
        assert!(
            output.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&output.stderr),
            logs_tail(self.dir.path())
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Stops one component (`kwok`, `pod-identity-webhook`, ...), as a fault.
    pub fn stop(&self, component: &str) {
        self.component("stop", component);
    }

    /// Starts a stopped component again.
    pub fn resume(&self, component: &str) {
        self.component("start", component);
    }

    fn component(&self, verb: &str, component: &str) {
        let status = Command::new(script())
            .args([verb, &self.dir.path().to_string_lossy(), component])
            .status()
            .expect("scripts/cluster runs");
        assert!(status.success(), "scripts/cluster {verb} {component}");
    }

    /// Creates or updates `objects` (server-side apply, in order) as an operator's one-shot
    /// `kubectl apply --server-side` does: its field manager, `kubectl`, owns nothing afterwards.
    pub fn apply(&self, objects: &[Value]) {
        self.apply_as("kubectl", objects);
    }

    /// Server-side applies `objects` as field manager `manager`, as a pipeline that re-applies
    /// them does: the objects become that manager's (`managed-by-field-manager`).
    pub fn apply_as(&self, manager: &str, objects: &[Value]) {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        self.kubectl_ok(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                &format!("--field-manager={manager}"),
                "-f",
                "-",
            ],
            Some(&list.to_string()),
        );
    }

    /// The object, as a get returns it.
    pub fn object(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let mut args = vec!["get", kind, name, "-o", "json", "--ignore-not-found"];
        if let Some(namespace) = namespace {
            args.extend(["-n", namespace]);
        }
        let text = self.kubectl_ok(&args, None);
        (!text.trim().is_empty()).then(|| serde_json::from_str(&text).expect("kubectl prints JSON"))
    }

    /// Every object of a kind in a namespace (all namespaces when `None`).
    pub fn objects(&self, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let mut args = vec!["get", kind, "-o", "json"];
        match namespace {
            Some(namespace) => args.extend(["-n", namespace]),
            None => args.push("-A"),
        }
        let list: Value =
            serde_json::from_str(&self.kubectl_ok(&args, None)).expect("kubectl prints JSON");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Changes an object now, as another client would (a merge patch).
    pub fn edit(&self, kind: &str, namespace: &str, name: &str, patch: &Value) {
        self.kubectl_ok(
            &[
                "patch",
                kind,
                name,
                "-n",
                namespace,
                "--type",
                "merge",
                "-p",
                &patch.to_string(),
            ],
            None,
        );
    }

    /// Every object of `kinds` without what the server and the controllers maintain, keyed
    /// `Kind/namespace/name`, for before/after comparisons.
    pub fn contents(&self, kinds: &[&str]) -> BTreeMap<String, Value> {
        let list: Value = serde_json::from_str(
            &self.kubectl_ok(&["get", &kinds.join(","), "-A", "-o", "json"], None),
        )
        .expect("kubectl prints JSON");
        list["items"]
            .as_array()
            .expect("a list")
            .iter()
            .filter(|object| !cluster_maintained(object))
            .map(|object| {
                let mut object = object.clone();
                let key = format!(
                    "{}/{}/{}",
                    object["kind"].as_str().unwrap_or_default(),
                    object["metadata"]["namespace"].as_str().unwrap_or_default(),
                    object["metadata"]["name"].as_str().unwrap_or_default()
                );
                if let Some(meta) = object["metadata"].as_object_mut() {
                    for field in [
                        "resourceVersion",
                        "generation",
                        "uid",
                        "creationTimestamp",
                        "managedFields",
                    ] {
                        meta.remove(field);
                    }
                    // The deployment controller counts revisions: each rollout adds one.
                    if let Some(annotations) =
                        meta.get_mut("annotations").and_then(Value::as_object_mut)
                    {
                        annotations.remove("deployment.kubernetes.io/revision");
                        if annotations.is_empty() {
                            meta.remove("annotations");
                        }
                    }
                }
                if let Some(map) = object.as_object_mut() {
                    map.remove("status");
                }
                (key, object)
            })
            .collect()
    }

    /// Loads the declared objects of a snapshot directory (what an operator created: no pods,
    /// replica sets or jobs a controller made, no server fields), then waits until every
    /// workload has rolled out, as `kubectl rollout status` judges it.
    pub fn load_snapshot(&self, dir: &Path) {
        self.apply_snapshot(dir);
        self.wait_rolled_out(Duration::from_secs(120));
    }

    /// Creates the declared objects of a snapshot directory, as `load_snapshot` does, without
    /// waiting for the controllers (the scale benchmark waits its own way: thousands of
    /// `kubectl rollout status` would take longer than the rollouts).
    pub fn apply_snapshot(&self, dir: &Path) {
        let mut objects: Vec<Value> = objects_in(dir).into_iter().filter_map(declared).collect();
        // Namespaces first, then what pods need (accounts, RBAC, config), then workloads.
        let order = |o: &Value| match o["kind"].as_str().unwrap_or_default() {
            "Namespace" => 0,
            "ServiceAccount" | "ClusterRole" | "Role" | "ConfigMap" => 1,
            "RoleBinding" | "ClusterRoleBinding" => 2,
            _ => 3,
        };
        objects.sort_by_key(order);
        // Each group after the one before it; a large group by four kubectl at once.
        let mut start = 0;
        while start < objects.len() {
            let group = order(&objects[start]);
            let end = objects[start..]
                .iter()
                .position(|o| order(o) != group)
                .map_or(objects.len(), |n| start + n);
            let chunk = (end - start).div_ceil(4).max(500);
            std::thread::scope(|scope| {
                for part in objects[start..end].chunks(chunk) {
                    scope.spawn(move || self.apply(part));
                }
            });
            start = end;
        }
    }

    /// Waits until every Deployment, StatefulSet and DaemonSet has rolled out.
    pub fn wait_rolled_out(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for workload in self.objects("deployments,statefulsets,daemonsets", None) {
            let target = format!(
                "{}/{}",
                workload["kind"].as_str().unwrap_or_default().to_lowercase(),
                workload["metadata"]["name"].as_str().unwrap_or_default()
            );
            let namespace = workload["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default();
            let left = deadline.saturating_duration_since(Instant::now()).as_secs() + 1;
            self.kubectl_ok(
                &[
                    "rollout",
                    "status",
                    &target,
                    "-n",
                    namespace,
                    &format!("--timeout={left}s"),
                ],
                None,
            );
        }
    }

    /// Writes the webhook's container-credentials configuration (`POD_IDENTITY_CONFIG` in
    /// DIR/env): the `(namespace, service account)` pairs that have a Pod Identity association,
    /// as EKS gives its webhook. The file is written beside its place and renamed there, so the
    /// webhook, which reloads it on its own time, never reads it half-written; poll after it.
    pub fn set_pod_identity_associations(&self, accounts: &[(&str, &str)]) {
        let path = self.pod_identity_config();
        let identities: Vec<Value> = accounts
            .iter()
            .map(|(namespace, account)| json!({"namespace": namespace, "serviceAccount": account}))
            .collect();
        let text = json!({ "identities": identities }).to_string();
        let temporary = path.with_extension("json.tmp");
        let mut file = {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options
                .open(&temporary)
                .expect("create the associations' temporary file")
        };
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .expect("write the associations");
        drop(file);
        std::fs::rename(&temporary, &path).expect("rename the associations into place");
    }

    /// The container-credentials configuration the webhook watches.
    pub fn pod_identity_config(&self) -> PathBuf {
        let env =
            std::fs::read_to_string(self.dir.path().join("env")).expect("the cluster's env file");
        env.lines()
            .find_map(|l| l.strip_prefix("POD_IDENTITY_CONFIG="))
            .map(PathBuf::from)
            .expect("POD_IDENTITY_CONFIG in the cluster's env")
    }

    /// The last lines of every component's log, for a failure message.
    pub fn logs(&self) -> String {
        logs_tail(self.dir.path())
    }
}

/// Objects the control plane writes itself, different in every cluster (each has its own CA):
/// the root CA published into every namespace, the API server's client CA.
fn cluster_maintained(object: &Value) -> bool {
    object["kind"] == "ConfigMap"
        && matches!(
            object["metadata"]["name"].as_str(),
            Some("kube-root-ca.crt" | "extension-apiserver-authentication")
        )
}

/// Runs `kubectl --kubeconfig KUBECONFIG ARGS` with `input` on stdin.
pub fn run_kubectl(
    kubectl: &Path,
    kubeconfig: &Path,
    args: &[&str],
    input: Option<&str>,
) -> std::io::Result<Output> {
    let mut child = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("kubectl's stdin is piped");
    if let Some(input) = input {
        stdin.write_all(input.as_bytes())?;
    }
    drop(stdin);
    child.wait_with_output()
}

fn logs_tail(dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("logs")) {
        for entry in entries.flatten() {
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            text.push_str(&format!("\n--- {}\n{tail}", entry.path().display()));
        }
    }
    text
}

/// What of a snapshot's object an operator declared, or `None` for objects that controllers
/// make (owned pods, replica sets, jobs of a cron job) or that the test cluster has its own of
/// (the webhook's registration, nodes). Bare pods are declared.
fn declared(mut object: Value) -> Option<Value> {
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let owned = object["metadata"]["ownerReferences"].is_array();
    if owned
        || matches!(
            kind.as_str(),
            "ReplicaSet" | "MutatingWebhookConfiguration" | "Node" | "Event" | ""
        )
    {
        return None;
    }
    let meta = object["metadata"].as_object_mut()?;
    for field in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "selfLink",
        "managedFields",
    ] {
        meta.remove(field);
    }
    let map = object.as_object_mut()?;
    map.remove("status");
    if kind == "Pod" {
        // The scheduler places it on a kwok node.
        map.get_mut("spec")
            .and_then(Value::as_object_mut)
            .map(|spec| spec.remove("nodeName"));
    }
    if kind == "Job" {
        // The job controller generates its selector and the labels that match it.
        map.get_mut("spec")
            .and_then(Value::as_object_mut)
            .map(|spec| spec.remove("selector"));
        for path in ["/metadata/labels", "/spec/template/metadata/labels"] {
            if let Some(labels) = object.pointer_mut(path).and_then(Value::as_object_mut) {
                labels.retain(|k, _| {
                    !matches!(
                        k.as_str(),
                        "controller-uid"
                            | "job-name"
                            | "batch.kubernetes.io/controller-uid"
                            | "batch.kubernetes.io/job-name"
                    )
                });
            }
        }
    }
    Some(object)
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
