//! Scale benchmarks: `cargo bench --bench scale` prints a table.
//!
//! - scan + plan from JSON snapshots of 1,000, 10,000 and 150,000 pods (generated once into
//!   `target/bench-snapshots/`): wall time, throughput of snapshot read, peak memory;
//! - `jq` extracting the role annotations from the same pods file, for comparison;
//! - the apply engine in rehearsal on a 10,150-pod plan (5,019 steps).
//!
//! - with `--moto` (and `IRSA_MIGRATE_MOTO` set): the `prepare` phase for 1,004 roles against
//!   moto, wall time and IAM calls per role.
//!
//! Each measurement runs in a child process (this binary with `--measure`), so its peak memory
//! (VmHWM) is its own. `--sizes 1000,10000` limits the sizes.

#[path = "support/generator.rs"]
mod generator;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use irsa_migrate::apply::journal::Journal;
use irsa_migrate::apply::{Direction, Mode, RunOptions, Selection};
use irsa_migrate::backend::rehearsal::Rehearsal;
use irsa_migrate::inventory::snapshot::{load_dir, write_dir};
use irsa_migrate::plan::{Settings, plan, plan_with_scan};
use irsa_migrate::scan::scan;

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Child: load, scan and plan one snapshot; print `seconds load scan plan peak_kib`.
fn measure_plan(dir: &Path) {
    let hidden = indicatif::ProgressBar::hidden();
    let start = Instant::now();
    let inventory = load_dir(dir, &hidden).expect("snapshot loads");
    let loaded = start.elapsed().as_secs_f64();
    let peak_after_load = peak_kib();
    let scanned = scan(&inventory);
    let scan_done = start.elapsed().as_secs_f64();
    let planned =
        plan_with_scan(&inventory, &scanned, "bench", &Settings::default()).expect("plans");
    let total = start.elapsed().as_secs_f64();
    println!(
        "{total:.3} {loaded:.3} {:.3} {:.3} {} {} {} {} {peak_after_load}",
        scan_done - loaded,
        total - scan_done,
        peak_kib(),
        inventory.pods.len(),
        scanned.usages.len(),
        planned.steps.len()
    );
}

/// Child: the Kubernetes half of `snapshot` alone, every list the scanner reads (500 a page),
/// kept as the pages' text as `snapshot` keeps them; print `seconds calls pages bytes peak_kib`.
fn measure_kube_read(kubeconfig: &Path) {
    let start = Instant::now();
    let kube = irsa_migrate::kubernetes::Kube::connect(&irsa_migrate::kubernetes::KubeArgs {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
        page_size: 500,
    })
    .expect("connects");
    let (pages, _) = kube
        .collect(std::sync::Arc::new(|_: &irsa_migrate::kubernetes::Page| {}))
        .expect("lists");
    let seconds = start.elapsed().as_secs_f64();
    let bytes: usize = pages.iter().map(|p| p.text.len()).sum();
    println!(
        "{seconds:.3} {} {} {bytes} {}",
        kube.calls(),
        pages.len(),
        peak_kib()
    );
}

/// Applies `phases` (all when empty) of `planned` through `backend`; returns the summary and the
/// wall time in seconds.
fn timed_apply(
    planned: &irsa_migrate::plan::Plan,
    journal: &mut Journal,
    backend: &mut dyn irsa_migrate::backend::Backend,
    phases: Vec<irsa_migrate::plan::Phase>,
    direction: Direction,
) -> (irsa_migrate::apply::Summary, f64) {
    let options = RunOptions {
        direction,
        mode: Mode::Execute,
        selection: Selection {
            phases,
            namespaces: Vec::new(),
            include_cluster_wide: false,
        },
        wave_size: 25,
        rollout: Default::default(),
        reading_fresh_for: irsa_migrate::apply::READING_FRESH_FOR,
    };
    let start = Instant::now();
    let summary = irsa_migrate::apply::run(
        planned,
        "sha256:bench",
        journal,
        backend,
        &options,
        &mut |_| true,
        &mut |_| {},
        &irsa_migrate::progress::Silent,
    )
    .expect("the plan applies");
    (summary, start.elapsed().as_secs_f64())
}

/// Child: apply every step of the plan of `snapshot` in a rehearsal; print `seconds steps peak_kib`.
fn measure_apply(snapshot: &Path, work: &Path) {
    let hidden = indicatif::ProgressBar::hidden();
    let inventory = load_dir(snapshot, &hidden).expect("snapshot loads");
    let planned = plan(&inventory, "bench", &Settings::default()).expect("plans");
    let _ = std::fs::remove_dir_all(work);
    write_dir(&inventory, &work.join("snapshot")).expect("snapshot written");
    drop(inventory);
    let mut backend =
        Rehearsal::open(&work.join("rehearsal"), &work.join("snapshot")).expect("rehearsal opens");
    let mut journal = Journal::open(&work.join("rehearsal/journal.jsonl")).expect("journal opens");
    let (summary, seconds) = timed_apply(
        &planned,
        &mut journal,
        &mut backend,
        Vec::new(),
        Direction::Apply,
    );
    println!("{seconds:.3} {} {}", summary.changed, peak_kib());
}

fn child(args: &[&str]) -> Vec<String> {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .args(args)
        .output()
        .expect("child runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--moto" || a == "--live-scale") {
        raise_control_plane_limits();
    }
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        return measure_plan(Path::new(&args[i + 1]));
    }
    if let Some(i) = args.iter().position(|a| a == "--measure-kube-read") {
        return measure_kube_read(Path::new(&args[i + 1]));
    }
    if let Some(i) = args.iter().position(|a| a == "--measure-apply") {
        return measure_apply(Path::new(&args[i + 1]), Path::new(&args[i + 2]));
    }
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 150_000]);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-snapshots");
    println!(
        "machine: {} cores; {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_string())
            )
            .unwrap_or_default()
    );
    println!("\nscan + plan from a JSON snapshot (best of 3 runs, each in a fresh process)");
    println!(
        "{:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9} {:>7}",
        "pods",
        "snapshot",
        "total s",
        "load s",
        "scan s",
        "plan s",
        "MB/s",
        "peak MiB",
        "peak/size",
        "jq s"
    );
    let mut totals = Vec::new();
    for &size in &sizes {
        let dir = root.join(format!("pods-{size}"));
        if !dir.join("cluster.json").exists() {
            let written = generator::generate(&dir, size).expect("snapshot generated");
            eprintln!("generated {written} pods in {}", dir.display());
        }
        let bytes = dir_bytes(&dir);
        let runs: Vec<Vec<String>> = (0..3)
            .map(|_| child(&["--measure", dir.to_str().unwrap()]))
            .collect();
        let best = runs
            .iter()
            .min_by(|a, b| {
                a[0].parse::<f64>()
                    .unwrap()
                    .total_cmp(&b[0].parse::<f64>().unwrap())
            })
            .unwrap();
        let total: f64 = best[0].parse().unwrap();
        let peak_kib: u64 = best[4].parse().unwrap();
        let jq = Command::new("jq")
            .args([
                "-c",
                "[.items[].metadata.annotations[\"iam.amazonaws.com/role\"]] | length",
                dir.join("pods.json").to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .ok()
            .filter(|s| s.success())
            .map(|_| {
                let start = Instant::now();
                let _ = Command::new("jq")
                    .args([
                        "-c",
                        "[.items[].metadata.annotations[\"iam.amazonaws.com/role\"]] | length",
                        dir.join("pods.json").to_str().unwrap(),
                    ])
                    .stdout(std::process::Stdio::null())
                    .status();
                format!("{:.3}", start.elapsed().as_secs_f64())
            })
            .unwrap_or_else(|| "n/a".into());
        println!(
            "{:>8} {:>7.1}MB {:>8.3} {:>8} {:>8} {:>8} {:>9.1} {:>10.1} {:>9.2} {:>7}",
            best[5],
            bytes as f64 / 1e6,
            total,
            best[1],
            best[2],
            best[3],
            bytes as f64 / 1e6 / total,
            peak_kib as f64 / 1024.0,
            (peak_kib * 1024) as f64 / bytes as f64,
            jq
        );
        totals.push((size, total));
        eprintln!(
            "  usages {}, steps {}, peak after loading {:.1} MiB",
            best[6],
            best[7],
            best[8].parse::<f64>().unwrap_or(0.0) / 1024.0
        );
    }
    if let (Some((small, t_small)), Some((large, t_large))) = (
        totals.iter().find(|(s, _)| *s == 10_000),
        totals.iter().find(|(s, _)| *s == 150_000),
    ) {
        println!(
            "\nlinearity: {large} pods took {:.1}x the time of {small} ({:.1}x the pods)",
            t_large / t_small,
            *large as f64 / *small as f64
        );
    }
    if args.iter().any(|a| a == "--moto") {
        measure_prepare_against_moto(&root);
    }
    if args.iter().any(|a| a == "--live-scale") {
        measure_live_scale(&root, 3);
    }
    if sizes.contains(&10_000) {
        // 203 namespaces: a generated cluster whose plan has over 5,000 steps.
        let dir = root.join(format!("pods-{APPLY_PODS}"));
        if !dir.join("cluster.json").exists() {
            generator::generate(&dir, APPLY_PODS).expect("snapshot generated");
        }
        let work = root.join("apply-5000");
        let result = child(&[
            "--measure-apply",
            dir.to_str().unwrap(),
            work.to_str().unwrap(),
        ]);
        let seconds: f64 = result[0].parse().unwrap();
        let steps: f64 = result[1].parse().unwrap();
        println!(
            "\napply engine, rehearsal of the {APPLY_PODS}-pod plan: {steps} steps in {seconds:.2} s ({:.0} steps/s, each journaled and fsynced twice, state fsynced once), peak {:.1} MiB",
            steps / seconds,
            result[2].parse::<f64>().unwrap() / 1024.0
        );
    }
}

// Shared with the tests, which use more of them.
#[allow(dead_code)]
#[path = "../tests/support/control_plane.rs"]
mod control_plane;
#[allow(dead_code)]
#[path = "../tests/support/moto.rs"]
mod moto;

/// Pods of the cluster whose plan the apply engine rehearses: 5,019 steps.
const APPLY_PODS: usize = 10_150;

/// Pods of the cluster whose `prepare` runs against moto: 264 namespaces, 1,004 roles.
const MOTO_PODS: usize = 13_200;

/// The live cost of `prepare` for the 1,004 roles bound in a 264-namespace cluster, against moto
/// (`IRSA_MIGRATE_MOTO`, installed by scripts/test): wall time and IAM calls per role.
fn measure_prepare_against_moto(root: &Path) {
    use irsa_migrate::aws::{Aws, AwsArgs};
    use irsa_migrate::backend::Backend;
    use irsa_migrate::backend::live_iam::LiveIam;
    if std::env::var_os("IRSA_MIGRATE_MOTO").is_none() {
        println!(
            "\nprepare against moto: skipped (run scripts/test once, then IRSA_MIGRATE_MOTO=target/moto-venv/bin/moto_server cargo bench)"
        );
        return;
    }
    let dir = root.join(format!("pods-{MOTO_PODS}"));
    if !dir.join("cluster.json").exists() {
        generator::generate(&dir, MOTO_PODS).expect("snapshot generated");
    }
    let server = moto::Moto::start();
    for (key, value) in server.env() {
        // SAFETY: set before any other thread of this process reads the environment.
        unsafe { std::env::set_var(key, value) };
    }
    let aws = Aws::connect(&AwsArgs {
        endpoint_url: Some(server.endpoint.clone()),
        region: Some("eu-west-1".into()),
        ..AwsArgs::default()
    })
    .expect("aws");
    let details: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("iam.json")).unwrap()).unwrap();
    let iam = server.iam(&aws.runtime);
    aws.runtime.block_on(async {
        for role in details["RoleDetailList"].as_array().unwrap() {
            let name = role["RoleName"].as_str().unwrap();
            iam.create_role()
                .role_name(name)
                .assume_role_policy_document(role["AssumeRolePolicyDocument"].to_string())
                .send()
                .await
                .expect("role created");
        }
    });
    let hidden = indicatif::ProgressBar::hidden();
    let inventory = load_dir(&dir, &hidden).expect("snapshot loads");
    let planned = plan(&inventory, "bench", &Settings::default()).expect("plans");
    let roles = planned
        .steps
        .iter()
        .filter(|s| s.kind == irsa_migrate::plan::StepKind::UpdateRoleTrust)
        .count();
    let mut backend = LiveIam::new(
        irsa_migrate::aws::AwsAccounts {
            default: aws,
            others: Default::default(),
        },
        1,
    );
    // The same 1,000 roles, one at a time and then eight at a time; rolled back in between so
    // the second run starts from the same IAM state.
    for concurrency in [1, 8] {
        backend.set_concurrency(concurrency);
        let work = root.join(format!("moto-journal-{concurrency}"));
        let _ = std::fs::remove_dir_all(&work);
        let mut journal = Journal::open(&work.join("journal.jsonl")).expect("journal");
        let calls_before = backend.calls().unwrap_or(0);
        let (summary, seconds) = timed_apply(
            &planned,
            &mut journal,
            &mut backend,
            vec![irsa_migrate::plan::Phase::Prepare],
            Direction::Apply,
        );
        let calls = backend.calls().unwrap_or(0) - calls_before;
        println!(
            "\nprepare against moto, {concurrency} at a time: {roles} roles ({} steps) in {seconds:.1} s ({:.0} steps/s); {calls} IAM calls = {:.2} per step (one read, one write)",
            summary.changed,
            summary.changed as f64 / seconds,
            calls as f64 / summary.changed.max(1) as f64
        );
        let (undone, seconds) = timed_apply(
            &planned,
            &mut journal,
            &mut backend,
            vec![irsa_migrate::plan::Phase::Prepare],
            Direction::Rollback,
        );
        println!(
            "rollback of the same, {concurrency} at a time: {} steps in {seconds:.1} s",
            undone.changed
        );
    }
    measure_kubernetes_phases(root, &server, &mut backend);
}

/// Client limits of the controller manager and the scheduler for thousands of pods (their
/// defaults, 20 and 50 requests a second, would take minutes to create and bind 10,000 pods).
/// Read by scripts/cluster; set before any other thread of this process starts.
fn raise_control_plane_limits() {
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
fn loaded_control_plane(dir: &Path, nodes: usize) -> control_plane::ControlPlane {
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
fn seed_roles(server: &moto::Moto, dir: &Path) {
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

/// `irsa-migrate` with `args`, against moto and the control plane as its admin; returns the
/// output and the wall time in seconds, with the peak memory (KiB) when `/usr/bin/time` is
/// there to measure it.
fn run_timed(
    program: &Path,
    args: &[&str],
    envs: &[(&str, String)],
    stdout_to: Option<&Path>,
) -> (std::process::Output, f64, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    let mut command = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f").arg("peak-kib=%M").arg(program);
        c
    } else {
        Command::new(program)
    };
    command.args(args).envs(envs.iter().map(|(k, v)| (*k, v)));
    if let Some(file) = stdout_to {
        command.stdout(std::fs::File::create(file).expect("an output file"));
    }
    let start = Instant::now();
    let output = command.output().expect("the command runs");
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{program:?} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peak = String::from_utf8_lossy(&output.stderr)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("peak-kib=")?.trim().parse().ok());
    (output, seconds, peak)
}

/// Pods of the cluster whose Kubernetes phases run against the real control plane: 20 namespaces
/// (kwok runs every pod, and the rollout and cleanup restart most of them, on 2 cores).
const KUBE_PODS: usize = 1_000;

/// The live cost of the Kubernetes phases (identity, rollout with verification, cleanup) against
/// a real control plane loaded with a generated cluster: snapshot, plan, `prepare` against moto,
/// then the three phases; API calls per step and per migrated workload.
fn measure_kubernetes_phases(
    root: &Path,
    server: &moto::Moto,
    iam: &mut irsa_migrate::backend::live_iam::LiveIam,
) {
    use irsa_migrate::backend::Backend;
    use irsa_migrate::backend::live_kube::LiveKube;
    use irsa_migrate::plan::Phase;
    // Not the offline pods-1000: generated anew, with jobs the API server accepts.
    let dir = root.join(format!("kube-pods-{KUBE_PODS}"));
    if !dir.join("cluster.json").exists() {
        generator::generate(&dir, KUBE_PODS).expect("snapshot generated");
    }
    seed_roles(server, &dir);
    server.create_cluster("bench");
    let cluster = loaded_control_plane(&dir, KUBE_PODS / 200 + 2);
    let work = root.join("kube-journal");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work directory");
    let kubeconfig = cluster.admin_kubeconfig();
    let snapshot = work.join("snapshot");
    let mut envs = server.env();
    envs.push(("KUBECONFIG", kubeconfig.to_string_lossy().into_owned()));
    let (output, seconds, _) = run_timed(
        Path::new(env!("CARGO_BIN_EXE_irsa-migrate")),
        &[
            "snapshot",
            "--out",
            snapshot.to_str().unwrap(),
            "--cluster",
            "bench",
        ],
        &envs,
        None,
    );
    eprintln!(
        "snapshot of the live cluster in {seconds:.1} s: {}",
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
    );
    let hidden = indicatif::ProgressBar::hidden();
    let inventory = load_dir(&snapshot, &hidden).expect("snapshot loads");
    let planned = plan(&inventory, "bench", &Settings::default()).expect("plans");
    let mut journal = Journal::open(&work.join("journal.jsonl")).expect("journal");
    iam.set_concurrency(8);
    timed_apply(
        &planned,
        &mut journal,
        iam,
        vec![Phase::Prepare],
        Direction::Apply,
    );
    let mut kube = LiveKube::new(irsa_migrate::kubernetes::KubeArgs {
        kubeconfig: Some(kubeconfig),
        context: None,
        page_size: 500,
    });
    let workloads: usize = planned.bindings.iter().map(|b| b.workloads.len()).sum();
    println!(
        "\nKubernetes phases against the real control plane ({} pods, {} namespaces, kwok):",
        inventory.pods.len(),
        inventory.namespaces.len()
    );
    for phase in [Phase::Identity, Phase::Rollout, Phase::Cleanup] {
        let before = kube.calls().unwrap_or(0);
        let (summary, seconds) = timed_apply(
            &planned,
            &mut journal,
            &mut kube,
            vec![phase],
            Direction::Apply,
        );
        let calls = kube.calls().unwrap_or(0) - before;
        println!(
            "{phase}: {} steps in {seconds:.1} s; {calls} API calls = {:.2} per step, {:.2} per migrated workload ({workloads})",
            summary.changed,
            calls as f64 / summary.changed.max(1) as f64,
            calls as f64 / workloads.max(1) as f64,
        );
    }
}

/// The live-scale cluster: 300 namespaces of 33 pods (8 Deployments of 3 on a role, one of 5
/// without, a StatefulSet of 3, a bare pod) and a DaemonSet on each of 98 kwok nodes, with the
/// kiam server's 2: 10,000 pods.
const LIVE_NAMESPACES: usize = 300;
const LIVE_NODES: usize = 98;

/// `--live-scale`: `irsa-migrate snapshot` of a 10,000-pod, 300-namespace cluster on the real
/// API server (moto for the AWS side), side by side with `kubectl get` of the same kinds: wall
/// time, API calls and peak memory, best of `runs`.
fn measure_live_scale(root: &Path, runs: usize) {
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
                namespaces: LIVE_NAMESPACES,
                replicas: 3,
                static_replicas: 5,
                daemon_pods: LIVE_NODES,
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
