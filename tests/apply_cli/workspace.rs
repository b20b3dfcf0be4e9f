//! The demo migration every test of this target starts from, its rehearsal's files and journal,
//! and the run of a command on it in rehearsal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::{self, run_in, stderr};

/// A fresh migration directory with the demo plan and its snapshot.
pub fn demo_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["demo"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    dir
}

pub const PLAN: &str = "migrations/demo/plan.json";

/// `apply` of every phase of the demo plan, in rehearsal, playing the owners' part; its snapshot
/// holds no CloudTrail, so decommission goes without evidence (tests/apply_cli/evidence.rs
/// rehearses it with).
pub const APPLY_ALL: &[&str] = &[
    "apply",
    "--plan",
    PLAN,
    "--rehearse",
    "--phase",
    "all",
    "--yes",
    "--as-owner",
    "--without-evidence",
];

/// `rollback` of every phase of the demo plan, in rehearsal, playing the owners' part.
pub const ROLLBACK_ALL: &[&str] = &[
    "rollback",
    "--plan",
    PLAN,
    "--rehearse",
    "--all",
    "--yes",
    "--as-owner",
];

/// The binary with `args` in `dir`, to be SIGKILLed at its `point`-th durability point
/// (`IRSA_MIGRATE_KILL_AT`).
pub fn killed_at(dir: &Path, args: &[&str], point: usize) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_irsa-migrate"));
    command
        .args(args)
        .current_dir(dir)
        .env("IRSA_MIGRATE_KILL_AT", point.to_string());
    command
}

pub fn rehearsal(dir: &Path) -> PathBuf {
    dir.join("migrations/demo/rehearsal")
}

/// Every rehearsal file but the journal, by relative path.
pub fn state(dir: &Path) -> BTreeMap<PathBuf, String> {
    json_files(&rehearsal(dir))
}

/// Every JSON file under `root`, by relative path.
pub fn json_files(root: &Path) -> BTreeMap<PathBuf, String> {
    support::files_under(root)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .map(|f| {
            let text = std::fs::read_to_string(root.join(&f)).unwrap();
            (f, text)
        })
        .collect()
}

/// Compares rehearsal states file by file, naming the files that differ instead of dumping them.
pub fn assert_same_state(
    found: &BTreeMap<PathBuf, String>,
    expected: &BTreeMap<PathBuf, String>,
    context: &str,
) {
    let differing: Vec<&PathBuf> = expected
        .keys()
        .chain(found.keys())
        .filter(|k| found.get(*k) != expected.get(*k))
        .collect();
    assert!(
        differing.is_empty(),
        "{context}: these rehearsal files differ from an uninterrupted run: {differing:?}"
    );
}

pub fn journal_entries(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(rehearsal(dir).join("journal.jsonl")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("journal lines are JSON"))
        .collect()
}

/// Applies `phase` of the demo plan in rehearsal in `dir`, which must succeed.
pub fn apply_phase(dir: &Path, phase: &str) {
    let output = rehearse(dir, "apply", &["--phase", phase, "--yes"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "apply --phase {phase}: {}",
        stderr(&output)
    );
}

/// Checks that `output` is a refusal (exit 3) whose standard error says each of `said`.
pub fn assert_refused(output: &std::process::Output, said: &[&str]) {
    let error = stderr(output);
    assert_eq!(output.status.code(), Some(3), "{error}");
    for text in said {
        assert!(error.contains(text), "{text:?} is not in: {error}");
    }
}

/// Runs `irsa-migrate <command> --plan <the demo plan> --rehearse <args>` in `dir`; apply and
/// rollback play the owners' part (`--as-owner`), as every test but those of owners needs the
/// whole flow ([`rehearse_leaving_owners`] does not). Apply decommissions without evidence, but
/// in the tests of the evidence ([`rehearse_with_evidence`]).
pub fn rehearse(dir: &Path, command: &str, args: &[&str]) -> std::process::Output {
    let mut all = args.to_vec();
    if matches!(command, "apply" | "rollback") {
        all.push("--as-owner");
    }
    rehearse_leaving_owners(dir, command, &all)
}

/// As [`rehearse`], leaving the owners' steps to their owners.
pub fn rehearse_leaving_owners(dir: &Path, command: &str, args: &[&str]) -> std::process::Output {
    let mut all = args.to_vec();
    if command == "apply" {
        all.push("--without-evidence");
    }
    rehearse_with_evidence(dir, command, &all)
}

/// As [`rehearse_leaving_owners`], with decommission asking for CloudTrail's evidence.
pub fn rehearse_with_evidence(dir: &Path, command: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec![command, "--plan", PLAN, "--rehearse"];
    all.extend_from_slice(args);
    run_in(dir, &all)
}
