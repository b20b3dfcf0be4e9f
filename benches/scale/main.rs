//! Scale benchmarks: `cargo bench --bench scale` prints a table.
//!
//! - scan + plan from JSON snapshots of 1,000, 10,000 and 150,000 pods (generated once into
//!   `target/bench-snapshots/`): wall time, throughput of snapshot read, peak memory;
//! - `jq` extracting the role annotations from the same pods file, for comparison;
//! - the apply engine in rehearsal on a 10,150-pod plan (5,019 steps);
//! - the `scan` and `plan` commands end to end on 60,000-pod snapshots of five shapes
//!   (`--shapes mixed,shared-role` for some, `--shapes none` for none).
//!
//! - with `--moto` (and `IRSA_MIGRATE_MOTO` set): the `prepare` phase for 1,004 roles against
//!   moto, wall time and IAM calls per role.
//!
//! Each measurement runs in a child process (this binary with `--measure`), so its peak memory
//! (VmHWM) is its own. `--sizes 1000,10000` limits the sizes.
//!
//! One module per job: `offline` (the snapshot and rehearsal benchmarks), `fleet` (the commands on
//! snapshots of several shapes), `measure` (the children and timed runs), `against_moto` and
//! `live_scale` (the benchmarks against moto and the real control plane), `cluster` (the peers
//! they load).

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
mod fleet;
mod live_scale;
mod measure;
mod offline;

use std::path::{Path, PathBuf};

use against_moto::measure_prepare_against_moto;
use cluster::raise_control_plane_limits;
use fleet::measure_fleet;
use live_scale::measure_live_scale;
use measure::{measure_apply, measure_kube_read, measure_plan};
use offline::{measure_apply_engine, measure_scan_and_plan};

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
    measure_scan_and_plan(&root, &sizes);
    let shapes: Vec<String> = args
        .iter()
        .position(|a| a == "--shapes")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    if shapes.iter().all(|s| s != "none") {
        measure_fleet(&root, &shapes);
    }
    if args.iter().any(|a| a == "--moto") {
        measure_prepare_against_moto(&root);
    }
    if args.iter().any(|a| a == "--live-scale") {
        measure_live_scale(&root, 3);
    }
    if sizes.contains(&10_000) {
        measure_apply_engine(&root);
    }
}
