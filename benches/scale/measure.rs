//! The measurements: each child process (this binary with `--measure...`) loads, plans, reads or
//! applies once and prints its figures, peak memory included; and timed runs of the engine and of
//! other programs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use irsa_migrate::apply::journal::Journal;
use irsa_migrate::apply::{Direction, Mode, RunOptions, Selection};
use irsa_migrate::backend::rehearsal::Rehearsal;
use irsa_migrate::inventory::snapshot::{Layout, load_dir, write_dir};
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

pub fn dir_bytes(dir: &Path) -> u64 {
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
pub fn measure_plan(dir: &Path) {
    let hidden = irsa_migrate::progress::Silent;
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
        scanned.usages().count(),
        planned.steps.len()
    );
}

/// Child: the Kubernetes half of `snapshot` alone, every list the scanner reads (500 a page),
/// kept as the pages' text as `snapshot` keeps them; print `seconds calls pages bytes peak_kib`.
pub fn measure_kube_read(kubeconfig: &Path) {
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
pub fn timed_apply(
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
        // Every step is written, owned or not, as with --patch-owned.
        owners: irsa_migrate::apply::Owners::Patch,
        // Generated snapshots hold no CloudTrail: decommission goes on the plan alone.
        evidence: irsa_migrate::apply::EvidenceGate::Waived,
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
pub fn measure_apply(snapshot: &Path, work: &Path) {
    let hidden = irsa_migrate::progress::Silent;
    let inventory = load_dir(snapshot, &hidden).expect("snapshot loads");
    let planned = plan(&inventory, "bench", &Settings::default()).expect("plans");
    let _ = std::fs::remove_dir_all(work);
    // As `plan` writes it.
    write_dir(&inventory, &work.join("snapshot"), Layout::PerKind).expect("snapshot written");
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

pub fn child(args: &[&str]) -> Vec<String> {
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

/// `irsa-migrate` with `args`, against moto and the control plane as its admin; returns the
/// output and the wall time in seconds, with the peak memory (KiB) when `/usr/bin/time` is
/// there to measure it.
pub fn run_timed(
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

/// Seconds `jq` takes to extract the role annotations of the pods file in `dir`, for comparison;
/// `None` when jq is not installed.
pub fn jq_seconds(dir: &Path) -> Option<f64> {
    let pods = dir.join("pods.json");
    let run = || {
        Command::new("jq")
            .args([
                "-c",
                "[.items[].metadata.annotations[\"iam.amazonaws.com/role\"]] | length",
                pods.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .status()
    };
    // The first run tells whether jq is there; only the second is timed.
    run().ok().filter(|s| s.success())?;
    let start = Instant::now();
    let _ = run();
    Some(start.elapsed().as_secs_f64())
}
