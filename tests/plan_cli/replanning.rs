//! `plan` over an existing migration: refused once it has live runs, replacing it (and its stale
//! rehearsal) when it has none, refused while another run holds it.

use std::path::Path;

use crate::support::{self, rehearse_prepare, run_in, stderr};

/// Every file under `dir`, by relative path, as bytes.
fn tree(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    support::files_under(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// A fresh directory holding the demo migration.
fn demo_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run_in(dir.path(), &["demo"]).status.code(), Some(0));
    dir
}

/// Planning the demo migration again, with other settings.
const REPLAN: &[&str] = &[
    "plan",
    "--demo",
    "--name",
    "demo",
    "--trust-policy-limit",
    "4096",
];

/// Makes the rehearsal's journal the migration's live one, as a live run of the same steps
/// leaves it.
fn journal_as_live(migration: &Path) {
    std::fs::copy(
        migration.join("rehearsal/journal.jsonl"),
        migration.join("journal.jsonl"),
    )
    .unwrap();
}

/// `plan` over an applied migration rewrote plan, report and snapshot with exit 0, and apply and
/// rollback then refused the plan: the way back was gone (issue 12).
#[test]
fn planning_over_a_migration_with_live_runs_exits_3_and_writes_nothing() {
    let dir = demo_dir();
    rehearse_prepare(dir.path(), "migrations/demo/plan.json");
    let migration = dir.path().join("migrations/demo");
    // A live journal as a live `apply --phase prepare` leaves it.
    journal_as_live(&migration);
    let before = tree(&migration);
    let output = run_in(dir.path(), REPLAN);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(
            "journal.jsonl records live runs of this migration (7 step(s) applied or in doubt)"
        ) && err.contains("nothing was written")
            && err.contains("irsa-migrate rollback --plan migrations/demo/plan.json --all")
            && err.contains("--name"),
        "{err}"
    );
    assert!(
        tree(&migration) == before,
        "the migration directory was changed"
    );
    // Rolled back entirely, it is still the record of what was done: a new --name is the way.
    let output = run_in(
        dir.path(),
        &[
            "rollback",
            "--plan",
            "migrations/demo/plan.json",
            "--rehearse",
            "--all",
            "--yes",
            "--as-owner",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    journal_as_live(&migration);
    let output = run_in(dir.path(), &["plan", "--demo", "--name", "demo"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("(0 step(s) applied or in doubt)")
            && stderr(&output).contains("plan under a new --name"),
        "{}",
        stderr(&output)
    );
    let output = run_in(dir.path(), &["plan", "--demo", "--name", "demo-2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Re-planning an unapplied migration replaces it; the rehearsal of the old plan goes with it
/// (it was kept, and every rehearsal then refused the new plan as modified).
#[test]
fn replanning_an_unapplied_migration_replaces_it_and_removes_the_stale_rehearsal() {
    let dir = demo_dir();
    rehearse_prepare(dir.path(), "migrations/demo/plan.json");
    let migration = dir.path().join("migrations/demo");
    // Planning the same inputs again keeps the rehearsal: its journal still matches.
    assert_eq!(run_in(dir.path(), &["demo"]).status.code(), Some(0));
    assert!(migration.join("rehearsal/journal.jsonl").exists());
    let output = run_in(dir.path(), REPLAN);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !migration.join("rehearsal").exists(),
        "the stale rehearsal is removed"
    );
    let plan = std::fs::read_to_string(migration.join("plan.json")).unwrap();
    assert!(
        plan.contains("\"trust_policy_limit\": 4096"),
        "the plan is replaced"
    );
    rehearse_prepare(dir.path(), "migrations/demo/plan.json");
}

#[test]
fn planning_while_another_run_holds_the_migration_exits_3() {
    let dir = demo_dir();
    let before = std::fs::read(dir.path().join("migrations/demo/plan.json")).unwrap();
    let held = std::fs::File::create(dir.path().join("migrations/demo/.lock")).unwrap();
    held.try_lock().unwrap();
    let output = run_in(dir.path(), REPLAN);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("migrations/demo/.lock is held by"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read(dir.path().join("migrations/demo/plan.json")).unwrap(),
        before
    );
}

#[test]
fn a_plan_that_cannot_be_made_writes_nothing_and_leaves_the_earlier_plan_whole() {
    // The migration's snapshot is written while the plan is made: a plan that fails takes it
    // back, and the directory of a migration it would have started.
    let fresh = tempfile::tempdir().unwrap();
    let refused = &["plan", "--demo", "--trust-policy-limit", "9000"];
    let output = run_in(fresh.path(), refused);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--trust-policy-limit 9000 is out of range"));
    assert!(!fresh.path().join("migrations").join("demo").exists());

    let dir = demo_dir();
    let migration = dir.path().join("migrations/demo");
    let before = tree(&migration);
    let output = run_in(dir.path(), refused);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        tree(&migration),
        before,
        "the earlier plan, report and snapshot stay"
    );
}

#[test]
fn a_plan_whose_snapshot_cannot_be_written_leaves_the_earlier_plan_whole() {
    // The plan's documents were written while its snapshot was: a snapshot that failed left a
    // new plan.json, report and permissions beside the old snapshot.
    let dir = demo_dir();
    let migration = dir.path().join("migrations/demo");
    let before = tree(&migration);
    std::fs::create_dir(migration.join("snapshot.staging")).unwrap();
    std::fs::write(
        migration.join("snapshot.staging/notes.txt"),
        "not the tool's",
    )
    .unwrap();
    let output = run_in(dir.path(), REPLAN);
    assert_ne!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("snapshot.staging"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        tree(&migration),
        before,
        "the earlier plan, report, permissions and snapshot stay"
    );
}
