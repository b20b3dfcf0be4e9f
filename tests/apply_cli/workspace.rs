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

/// Runs `irsa-migrate <command> --plan <the demo plan> --rehearse <args>` in `dir`; apply and
/// rollback play the owners' part (`--as-owner`), as every test but those of owners needs the
/// whole flow ([`rehearse_leaving_owners`] does not).
pub fn rehearse(dir: &Path, command: &str, args: &[&str]) -> std::process::Output {
    let mut all = args.to_vec();
    if matches!(command, "apply" | "rollback") {
        all.push("--as-owner");
    }
    rehearse_leaving_owners(dir, command, &all)
}

/// As [`rehearse`], leaving the owners' steps to their owners.
pub fn rehearse_leaving_owners(dir: &Path, command: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec![command, "--plan", PLAN, "--rehearse"];
    all.extend_from_slice(args);
    run_in(dir, &all)
}
