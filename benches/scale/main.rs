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
//!
//! One module per job: `measure` (the children and timed runs), `against_moto` and `live_scale`
//! (the benchmarks against moto and the real control plane), `cluster` (the peers they load).

#[path = "../support/generator.rs"]
mod generator;

// Shared with the tests, which use more of them.
#[allow(dead_code)]
#[path = "../../tests/support/control_plane.rs"]
mod control_plane;
#[allow(dead_code)]
#[path = "../../tests/support/moto.rs"]
mod moto;

mod against_moto;
mod cluster;
mod live_scale;
mod measure;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use against_moto::measure_prepare_against_moto;
use cluster::raise_control_plane_limits;
use live_scale::measure_live_scale;
use measure::{child, dir_bytes, measure_apply, measure_kube_read, measure_plan};

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

/// Pods of the cluster whose plan the apply engine rehearses: 5,019 steps.
const APPLY_PODS: usize = 10_150;
