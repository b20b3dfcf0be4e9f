//! The peers of the live benchmarks: a real control plane loaded with a generated cluster (its
//! controllers' client limits raised for thousands of pods), and the cluster's roles in moto.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{control_plane, moto};

/// Client limits of the controller manager and the scheduler for thousands of pods (their
/// defaults, 20 and 50 requests a second, would take minutes to create and bind 10,000 pods).
/// Read by scripts/cluster; set before any other thread of this process starts.
pub fn raise_control_plane_limits() {
    // SAFETY: called first in main, before any other thread of this process exists.
    unsafe {
        std::env::set_var(
            "CLUSTER_KCM_ARGS",
            "--kube-api-qps=400 --kube-api-burst=800 --concurrent-replicaset-syncs=20 \
             --concurrent-deployment-syncs=20 --concurrent-statefulset-syncs=20 \
             --concurrent-daemonset-syncs=5",
        );
        std::env::set_var(
            "CLUSTER_SCHEDULER_ARGS",
            "--kube-api-qps=400 --kube-api-burst=800",
        );
    }
}

/// A real control plane (scripts/cluster) with `nodes` kwok nodes of 250 pods, loaded with the
/// declared objects of the generated cluster in `dir` (namespaces, service accounts, RBAC,
/// workloads, bare pods: the controllers and the scheduler make the rest, kwok runs them), once
/// every workload has rolled out. Prints how long that took.
pub fn loaded_control_plane(dir: &Path, nodes: usize) -> control_plane::ControlPlane {
    let start = Instant::now();
    let cluster = control_plane::ControlPlane::start();
    let extra: Vec<serde_json::Value> = (2..nodes)
        .map(|n| {
            serde_json::json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": format!("kwok-node-{n}"), "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {"kubernetes.io/hostname": format!("kwok-node-{n}"), "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"}},
                "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                    "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"}}})
        })
        .collect();
    if !extra.is_empty() {
        cluster.apply(&extra);
    }
    let started = start.elapsed().as_secs_f64();
    cluster.apply_snapshot(dir);
    let applied = start.elapsed().as_secs_f64();
    let pods = wait_settled(&cluster, Duration::from_secs(1800));
    eprintln!(
        "control plane: started with {nodes} kwok nodes in {started:.0} s, objects created in {:.0} s, {pods} pods running {:.0} s later",
        applied - started,
        start.elapsed().as_secs_f64() - applied
    );
    cluster
}

/// Waits until every Deployment, StatefulSet and DaemonSet has rolled out (as `kubectl rollout
/// status` judges it) and no pod is anything but Running; returns the number of pods.
fn wait_settled(cluster: &control_plane::ControlPlane, timeout: Duration) -> usize {
    use serde_json::Value;
    let deadline = Instant::now() + timeout;
    let int = |v: &Value, path: &str| v.pointer(path).and_then(Value::as_i64).unwrap_or(0);
    loop {
        let workloads = cluster.objects("deployments,statefulsets,daemonsets", None);
        let pending: Vec<String> = workloads
            .iter()
            .filter(|w| {
                let done = int(w, "/status/observedGeneration") >= int(w, "/metadata/generation");
                let done = done
                    && match w["kind"].as_str().unwrap_or_default() {
                        "Deployment" => {
                            let want = int(w, "/spec/replicas");
                            int(w, "/status/updatedReplicas") == want
                                && int(w, "/status/replicas") == want
                                && int(w, "/status/availableReplicas") == want
                        }
                        "StatefulSet" => {
                            int(w, "/status/readyReplicas") == int(w, "/spec/replicas")
                                && int(w, "/status/updatedReplicas") == int(w, "/spec/replicas")
                        }
                        _ => {
                            let want = int(w, "/status/desiredNumberScheduled");
                            want > 0
                                && int(w, "/status/numberReady") == want
                                && int(w, "/status/updatedNumberScheduled") == want
                        }
                    };
                !done
            })
            .map(|w| {
                format!(
                    "{}/{}",
                    w["metadata"]["namespace"].as_str().unwrap_or_default(),
                    w["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect();
        let not_running = cluster.kubectl_ok(
            &[
                "get",
                "pods",
                "-A",
                "--field-selector=status.phase!=Running",
                "-o",
                "name",
            ],
            None,
        );
        let not_running = not_running.lines().count();
        if pending.is_empty() && not_running == 0 {
            return cluster
                .kubectl_ok(&["get", "pods", "-A", "-o", "name"], None)
                .lines()
                .count();
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not settle: {} workloads not rolled out ({:?}...), {not_running} pods not running{}",
            pending.len(),
            &pending[..pending.len().min(5)],
            cluster.logs()
        );
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// Creates the IAM roles of a generated cluster's `iam.json` in moto (trust policy only).
pub fn seed_roles(server: &moto::Moto, dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let iam = server.iam(&runtime);
    let details: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("iam.json")).unwrap()).unwrap();
    runtime.block_on(async {
        for role in details["RoleDetailList"].as_array().unwrap() {
            let name = role["RoleName"].as_str().unwrap();
            let created = iam
                .create_role()
                .role_name(name)
                .assume_role_policy_document(role["AssumeRolePolicyDocument"].to_string())
                .send()
                .await;
            if let Err(e) = created {
                let exists = e
                    .as_service_error()
                    .is_some_and(|e| e.is_entity_already_exists_exception());
                assert!(exists, "role {name}: {e:?}");
            }
        }
    });
}
