//! The offline benchmarks: scan + plan of generated snapshots of each size (beside `jq` reading
//! the same pods, and how the time grows with the size), and the apply engine in rehearsal.

use std::path::Path;

use crate::generator;
use crate::measure::{child, dir_bytes, jq_seconds};

/// Pods of the cluster whose plan the apply engine rehearses: 5,019 steps.
const APPLY_PODS: usize = 10_150;

/// The table of scan + plan for each of `sizes` pods (snapshots generated once under `root`),
/// then the linearity from 10,000 to 150,000 pods when both were measured.
pub fn measure_scan_and_plan(root: &Path, sizes: &[usize]) {
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
    for &size in sizes {
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
        let jq = jq_seconds(&dir).map_or_else(|| "n/a".into(), |s| format!("{s:.3}"));
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
}

/// The apply engine in rehearsal, every step of the plan of a generated cluster of [`APPLY_PODS`]
/// pods.
pub fn measure_apply_engine(root: &Path) {
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
