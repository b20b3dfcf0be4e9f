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
use std::time::Instant;

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
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        return measure_plan(Path::new(&args[i + 1]));
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
#[path = "../tests/support/kube_api.rs"]
mod kube_api;
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
    measure_kubernetes_phases(&dir, &planned, &mut backend, root);
}

/// The live cost of the Kubernetes phases (identity, rollout with verification, cleanup) of the
/// same plan, against the Kubernetes API test server loaded with the generated cluster: API calls
/// per workload and per step.
fn measure_kubernetes_phases(
    dir: &Path,
    planned: &irsa_migrate::plan::Plan,
    iam: &mut irsa_migrate::backend::live_iam::LiveIam,
    root: &Path,
) {
    use irsa_migrate::backend::Backend;
    use irsa_migrate::backend::live_kube::LiveKube;
    use irsa_migrate::plan::Phase;
    let server = kube_api::KubeApi::start(
        kube_api::KubeApi::objects_in(dir),
        kube_api::Switches::default(),
    );
    let work = root.join("kube-journal");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work directory");
    let kubeconfig = server.kubeconfig(&work);
    let mut journal = Journal::open(&work.join("journal.jsonl")).expect("journal");
    iam.set_concurrency(8);
    timed_apply(
        planned,
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
    for phase in [Phase::Identity, Phase::Rollout, Phase::Cleanup] {
        let before = kube.calls().unwrap_or(0);
        let (summary, seconds) = timed_apply(
            planned,
            &mut journal,
            &mut kube,
            vec![phase],
            Direction::Apply,
        );
        let calls = kube.calls().unwrap_or(0) - before;
        println!(
            "{phase} against the Kubernetes API test server: {} steps in {seconds:.1} s; {calls} API calls = {:.2} per step, {:.2} per migrated workload ({workloads})",
            summary.changed,
            calls as f64 / summary.changed.max(1) as f64,
            calls as f64 / workloads.max(1) as f64,
        );
    }
}
