//! Shared helpers for integration tests: run the real binary, read fixtures.
#![allow(dead_code)]

pub mod cloudtrail;
pub mod connect_proxy;
pub mod control_plane;
pub mod eks_pod_identity;
pub mod fault_proxy;
pub mod loopback;
pub mod moto;
pub mod owner_tools;
pub mod trail;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `irsa-migrate` with `args` in `dir`, no terminal attached.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the binary runs")
}

/// Runs `irsa-migrate` with `args` in `dir`, which must succeed.
pub fn run_ok_in(dir: &Path, args: &[&str]) -> Output {
    let output = run_in(dir, args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        stderr(&output)
    );
    output
}

/// Rehearses prepare of the plan at `plan` (relative to `dir`), playing the owners' part; it
/// must succeed.
pub fn rehearse_prepare(dir: &Path, plan: &str) -> Output {
    run_ok_in(
        dir,
        &[
            "apply",
            "--plan",
            plan,
            "--rehearse",
            "--phase",
            "prepare",
            "--yes",
            "--as-owner",
        ],
    )
}

/// Runs `plan --snapshot <snapshot> <args>` in `dir`, which must succeed.
pub fn plan_snapshot(dir: &Path, snapshot: &str, args: &[&str]) -> Output {
    let mut all = vec!["plan", "--snapshot", snapshot];
    all.extend_from_slice(args);
    run_ok_in(dir, &all)
}

pub fn run(args: &[&str]) -> Output {
    run_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Parses stdout as JSON, showing stderr when it is not.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr: {}", stderr(output)))
}

/// The findings of a scan document as (code, "namespace/name") pairs.
pub fn findings(scan: &serde_json::Value) -> Vec<(String, String)> {
    scan["findings"]
        .as_array()
        .expect("findings is a list")
        .iter()
        .map(|f| {
            let subject = &f["subject"];
            let name = match subject["namespace"].as_str() {
                Some(ns) => format!("{ns}/{}", subject["name"].as_str().unwrap_or_default()),
                None => subject["name"].as_str().unwrap_or_default().to_string(),
            };
            (f["code"].as_str().unwrap_or_default().to_string(), name)
        })
        .collect()
}

pub fn has_finding(scan: &serde_json::Value, code: &str, subject: &str) -> bool {
    findings(scan)
        .iter()
        .any(|(c, s)| c == code && s == subject)
}

/// Each step's `done` entries for `action` ("apply", "rollback") in a journal; empty when there
/// is no journal yet.
pub fn done_counts(journal: &Path, action: &str) -> std::collections::BTreeMap<String, usize> {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    let mut done = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line).expect("journal lines are JSON");
        if entry["event"] == "done" && entry["action"] == action {
            *done
                .entry(entry["step"].as_str().unwrap_or_default().to_string())
                .or_insert(0) += 1;
        }
    }
    done
}

/// Each of `steps` steps ends with exactly one `done` for `action` in the journal: none lost,
/// none twice.
pub fn assert_each_step_done_once(journal: &Path, action: &str, steps: usize, context: &str) {
    let done = done_counts(journal, action);
    assert_eq!(
        done.len(),
        steps,
        "{context}: every step is journaled as done"
    );
    assert!(
        done.values().all(|n| *n == 1),
        "{context}: a step done twice: {done:?}"
    );
}

/// Whether a run started with `IRSA_MIGRATE_KILL_AT` was killed by its SIGKILL; a run that
/// got past the kill point must have succeeded.
pub fn killed(output: &Output) -> bool {
    match std::os::unix::process::ExitStatusExt::signal(&output.status) {
        Some(9) => true,
        _ => {
            assert_eq!(
                output.status.code(),
                Some(0),
                "an unkilled run succeeds: {}",
                stderr(output)
            );
            false
        }
    }
}

/// Every file under `root`, by its path relative to `root`, sorted.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("a readable directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// A copy of the embedded demo's snapshot (as `irsa-migrate demo` writes it) in `dir/snap`.
pub fn demo_snapshot(dir: &Path) -> PathBuf {
    let output = run_in(dir, &["demo", "--dir", "demo-out"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let source = dir.join("demo-out/demo/snapshot");
    let snapshot = dir.join("snap");
    for file in files_under(&source) {
        let to = snapshot.join(&file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(source.join(&file), to).unwrap();
    }
    std::fs::remove_dir_all(dir.join("demo-out")).unwrap();
    snapshot
}

/// Sets the OIDC issuer of the describe-cluster output in the snapshot `dir/snap`.
pub fn set_snapshot_issuer(dir: &Path, issuer: &str) {
    let path = dir.join("snap/eks/describe-cluster.json");
    let mut cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cluster["cluster"]["identity"]["oidc"]["issuer"] = issuer.into();
    std::fs::write(&path, cluster.to_string()).unwrap();
}
