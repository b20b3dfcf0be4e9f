//! The fleet benchmark: the `scan` and `plan` commands end to end (the release binary, as a user
//! runs them) on generated snapshots of several shapes of about the same number of pods, beside
//! `jq` reading the same pods. `plan` writes everything it writes for a user: plan.json, the
//! report and its pages, the permissions, the migration's copy of the snapshot.

use std::path::Path;

use crate::generator::{self, Apps, Shape};
use crate::measure::{dir_bytes, jq_seconds, run_timed};

/// Pods of each shape's snapshot.
const FLEET_PODS: usize = 60_000;

/// A shape of cluster: its name in the table and `--shapes`, and how it is generated.
struct FleetShape {
    name: &'static str,
    about: &'static str,
    shape: fn(usize) -> Shape,
}

const SHAPES: [FleetShape; 5] = [
    FleetShape {
        name: "mixed",
        about: "namespaces of 50 pods with every case (the generator's default)",
        shape: |pods| Shape::mixed(pods.div_ceil(generator::PODS_PER_NAMESPACE)),
    },
    FleetShape {
        name: "shared-role",
        about: "many small namespaces: 6 Deployments of 5, their 6 service accounts on one role, managedFields",
        shape: |pods| {
            let mut shape = Shape::apps(
                pods / 30,
                Apps {
                    count: 6,
                    replicas: 5,
                    accounts: 6,
                    roles: 1,
                },
            );
            shape.managed_fields = true;
            shape
        },
    },
    FleetShape {
        name: "few-large",
        about: "20 namespaces of 100 Deployments of 30, 50 service accounts, 25 roles",
        shape: |pods| {
            Shape::apps(
                20,
                Apps {
                    count: 100,
                    replicas: pods / 2_000,
                    accounts: 50,
                    roles: 25,
                },
            )
        },
    },
    FleetShape {
        name: "many-roles",
        about: "namespaces of 40 Deployments of 3, each its own service account and role",
        shape: |pods| {
            Shape::apps(
                pods / 120,
                Apps {
                    count: 40,
                    replicas: 3,
                    accounts: 40,
                    roles: 40,
                },
            )
        },
    },
    FleetShape {
        name: "shared-accounts",
        about: "namespaces of 12 Deployments of 5 on 2 service accounts with 3 roles each (split)",
        shape: |pods| {
            Shape::apps(
                pods / 60,
                Apps {
                    count: 12,
                    replicas: 5,
                    accounts: 2,
                    roles: 6,
                },
            )
        },
    },
];

/// The table: for each shape (all, or those named in `only`), `scan --output json` and `plan`
/// (best of 3 each, peak memory by `/usr/bin/time`), MB/s of the snapshot, peak / snapshot, plan
/// against scan, jq against plan, and the lines `plan` printed.
pub fn measure_fleet(root: &Path, only: &[String]) {
    let program = Path::new(env!("CARGO_BIN_EXE_irsa-migrate"));
    println!(
        "\nfleet shapes, about {FLEET_PODS} pods each: the commands end to end (best of 3, peak RSS by /usr/bin/time)"
    );
    for shape in SHAPES
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.name))
    {
        println!("  {}: {}", shape.name, shape.about);
    }
    println!(
        "{:<16} {:>9} {:>8} {:>7} {:>5} {:>9} {:>7} {:>5} {:>9} {:>6} {:>9} {:>6} {:>7} {:>6}",
        "shape",
        "workloads",
        "snapshot",
        "scan s",
        "MB/s",
        "peak/snap",
        "plan s",
        "MB/s",
        "peak/snap",
        "steps",
        "plan/scan",
        "jq s",
        "jq/plan",
        "lines"
    );
    for fleet in SHAPES
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.name))
    {
        let dir = root.join(format!("fleet-{}-{FLEET_PODS}", fleet.name));
        if !dir.join("cluster.json").exists() {
            let written =
                generator::generate_shaped(&dir, &(fleet.shape)(FLEET_PODS)).expect("generated");
            eprintln!("generated {written} pods in {}", dir.display());
        }
        let snapshot = dir.to_str().expect("a UTF-8 path");
        let bytes = dir_bytes(&dir) as f64;
        let work = root.join(format!("fleet-{}-plans", fleet.name));
        let best = |args: &[&str]| {
            (0..3)
                .map(|_| {
                    let (output, seconds, peak) = run_timed(program, args, &[], None);
                    (seconds, peak.unwrap_or(0) as f64 * 1024.0, output.stdout)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .expect("three runs")
        };
        let (scan_s, scan_peak, scan_out) =
            best(&["scan", "--snapshot", snapshot, "--output", "json"]);
        let workloads = serde_json::from_slice::<serde_json::Value>(&scan_out)
            .ok()
            .and_then(|s| s["summary"]["workloads"].as_u64())
            .unwrap_or(0);
        let (plan_s, plan_peak, plan_out) = best(&[
            "plan",
            "--snapshot",
            snapshot,
            "--dir",
            work.to_str().expect("a UTF-8 path"),
            "--name",
            "bench",
        ]);
        let steps = std::fs::read(work.join("bench/plan.json"))
            .ok()
            .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
            .and_then(|plan| plan["steps"].as_array().map(Vec::len))
            .unwrap_or(0);
        let jq = jq_seconds(&dir);
        println!(
            "{:<16} {:>9} {:>6.0}MB {:>7.2} {:>5.0} {:>9.2} {:>7.2} {:>5.0} {:>9.2} {:>6} {:>8.2}x {:>6} {:>7} {:>6}",
            fleet.name,
            workloads,
            bytes / 1e6,
            scan_s,
            bytes / 1e6 / scan_s,
            scan_peak / bytes,
            plan_s,
            bytes / 1e6 / plan_s,
            plan_peak / bytes,
            steps,
            plan_s / scan_s,
            jq.map_or_else(|| "n/a".into(), |s| format!("{s:.1}")),
            jq.map_or_else(|| "n/a".into(), |s| format!("{:.1}x", s / plan_s)),
            plan_out.iter().filter(|b| **b == b'\n').count()
        );
    }
}
