//! `--live-scale`: `irsa-migrate snapshot` of a 10,000-pod cluster on the real API server, beside
//! `kubectl get` of the same kinds.

use std::path::Path;

use crate::cluster::{loaded_control_plane, seed_roles};
use crate::measure::{child, run_timed};
use crate::{generator, moto};

/// The live-scale cluster: 300 namespaces of 33 pods (8 Deployments of 3 on a role, one of 5
/// without, a StatefulSet of 3, a bare pod) and a DaemonSet on each of 98 kwok nodes, with the
/// kiam server's 2: 10,000 pods.
const LIVE_NAMESPACES: usize = 300;
const LIVE_NODES: usize = 98;

/// `--live-scale`: `irsa-migrate snapshot` of a 10,000-pod, 300-namespace cluster on the real
/// API server (moto for the AWS side), side by side with `kubectl get` of the same kinds: wall
/// time, API calls and peak memory, best of `runs`.
pub fn measure_live_scale(root: &Path, runs: usize) {
    if std::env::var_os("IRSA_MIGRATE_MOTO").is_none() {
        println!(
            "\nlive scale: skipped (run scripts/test once, then IRSA_MIGRATE_MOTO=target/moto-venv/bin/moto_server cargo bench -- --live-scale)"
        );
        return;
    }
    let dir = root.join(format!("live-{LIVE_NAMESPACES}"));
    if !dir.join("cluster.json").exists() {
        generator::generate_shaped(
            &dir,
            &generator::Shape {
                replicas: 3,
                static_replicas: 5,
                daemon_pods: LIVE_NODES,
                ..generator::Shape::mixed(LIVE_NAMESPACES)
            },
        )
        .expect("snapshot generated");
    }
    let server = moto::Moto::start();
    seed_roles(&server, &dir);
    server.create_cluster("bench");
    let cluster = loaded_control_plane(&dir, LIVE_NODES);
    let work = root.join("live-scale");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work directory");
    let kubeconfig = cluster.admin_kubeconfig().to_string_lossy().into_owned();
    let mut envs = server.env();
    envs.push(("KUBECONFIG", kubeconfig.clone()));
    let kinds: Vec<String> = irsa_migrate::kubernetes::SCANNED
        .iter()
        .map(|r| match r.api_version.split_once('/') {
            Some((group, _)) => format!("{}.{group}", r.plural),
            None => r.plural.to_string(),
        })
        .collect();
    let kinds = kinds.join(",");
    let cache = work.join("kubectl-cache");
    let cache = cache.to_str().unwrap();
    let mut best: [Option<(f64, u64, String)>; 3] = [None, None, None];
    for run in 0..runs {
        let read = child(&["--measure-kube-read", &kubeconfig]);
        let seconds: f64 = read[0].parse().unwrap();
        let summary = format!(
            "{} API calls, {} list pages, {:.1} MB of JSON",
            read[1],
            read[2],
            read[3].parse::<f64>().unwrap() / 1e6
        );
        eprintln!(
            "Kubernetes read run {run}: {seconds:.2} s, peak {} KiB: {summary}",
            read[4]
        );
        if best[2].as_ref().is_none_or(|b| seconds < b.0) {
            best[2] = Some((seconds, read[4].parse().unwrap(), summary));
        }
        let out = work.join(format!("snapshot-{run}"));
        let (output, seconds, peak) = run_timed(
            Path::new(env!("CARGO_BIN_EXE_irsa-migrate")),
            &[
                "snapshot",
                "--out",
                out.to_str().unwrap(),
                "--cluster",
                "bench",
            ],
            &envs,
            None,
        );
        let summary = String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        eprintln!("snapshot run {run}: {seconds:.2} s, peak {peak:?} KiB: {summary}");
        if best[0].as_ref().is_none_or(|b| seconds < b.0) {
            best[0] = Some((seconds, peak.unwrap_or(0), summary));
        }
        let file = work.join("kubectl.json");
        let (output, seconds, peak) = run_timed(
            cluster.kubectl_path(),
            &[
                "--kubeconfig",
                &kubeconfig,
                "--cache-dir",
                cache,
                "-v=6",
                "get",
                &kinds,
                "-A",
                "-o",
                "json",
            ],
            &[],
            Some(&file),
        );
        // -v=6 logs one line per request and its answer.
        let calls = String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|l| l.contains("https://127.0.0.1") && l.contains("200 OK"))
            .count();
        let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let summary = format!("{calls} API calls, {:.1} MB of JSON", bytes as f64 / 1e6);
        eprintln!("kubectl run {run}: {seconds:.2} s, peak {peak:?} KiB: {summary}");
        if best[1].as_ref().is_none_or(|b| seconds < b.0) {
            best[1] = Some((seconds, peak.unwrap_or(0), summary));
        }
    }
    let pods = cluster
        .kubectl_ok(&["get", "pods", "-A", "-o", "name"], None)
        .lines()
        .count();
    println!(
        "\nlive scale: {pods} kwok pods in {LIVE_NAMESPACES} namespaces on kube-apiserver (best of {runs})"
    );
    for (name, result) in [
        "irsa-migrate snapshot",
        "kubectl get -A -o json",
        "the tool's lists alone",
    ]
    .iter()
    .zip(best)
    {
        let (seconds, peak, summary) = result.expect("a run");
        println!(
            "{name:<24} {seconds:>7.2} s {:>8.1} MiB  {summary}",
            peak as f64 / 1024.0
        );
    }
    println!("kinds: {kinds}");
}
