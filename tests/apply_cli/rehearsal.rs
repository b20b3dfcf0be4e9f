//! The demo migration in rehearsal: applied and rolled back whole, reported step by step, refused
//! with the reason, stopped by a target changed since planning.

use std::path::Path;

use crate::support::{json, run_in, stderr, stdout};
use crate::workspace::{
    PLAN, apply_phase, assert_refused, demo_workspace, journal_entries, rehearsal, rehearse, state,
};

fn scan_json(dir: &Path, args: &[&str]) -> String {
    let output = run_in(dir, args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn rehearsed_migration_moves_workloads_to_irsa_and_rollback_restores_the_original_scan() {
    let dir = demo_workspace();
    let original = scan_json(dir.path(), &["scan", "--demo", "--output", "json"]);
    let output = rehearse(
        dir.path(),
        "apply",
        &["--phase", "all", "--yes", "--wave-size", "2"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("== phase rollout") && text.contains("-- wave 3"),
        "{text}"
    );
    assert!(
        text.contains(
            "applied          update-role-trust:arn:aws:iam::111122223333:role/payments-api"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("27 changed, 0 already in place, 0 skipped, 8 made by their owners\n"),
        "{text}"
    );
    assert!(
        !text.contains("waiting for"),
        "a rehearsal has no rollout to wait for: {text}"
    );

    let migrated: serde_json::Value = serde_json::from_str(&scan_json(
        dir.path(),
        &[
            "scan",
            "--snapshot",
            "migrations/demo/rehearsal",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    let status = |name: &str| {
        migrated["usages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for name in [
        "payments-api",
        "payments-worker",
        "payments-reconcile",
        "checkout-web",
        "data-ingest",
        "data-compaction",
        // Its account already carried its role: only the legacy annotation went.
        "prometheus",
    ] {
        assert_eq!(status(name), "irsa", "{name}");
    }
    assert_eq!(
        status("payments-fraud"),
        "legacy",
        "skipped workloads are untouched"
    );

    // Applying again changes nothing.
    let again = rehearse(dir.path(), "apply", &["--phase", "all", "--yes"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).ends_with("0 changed, 0 already in place, 35 skipped\n"),
        "{}",
        stdout(&again)
    );

    let output = rehearse(dir.path(), "rollback", &["--all", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        scan_json(
            dir.path(),
            &[
                "scan",
                "--snapshot",
                "migrations/demo/rehearsal",
                "--output",
                "json"
            ]
        ),
        original
    );
}

#[test]
fn status_reports_each_step_from_the_journal() {
    let dir = demo_workspace();
    apply_phase(dir.path(), "prepare");
    let output = rehearse(dir.path(), "status", &["--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let status = json(&output);
    assert_eq!(status["schema"], "irsa-migrate.status/v1");
    assert_eq!(status["phases"]["prepare"]["applied"], 7);
    assert_eq!(status["phases"]["identity"]["pending"], 10);
    assert_eq!(
        rehearse(dir.path(), "rollback", &["--phase", "prepare", "--yes"])
            .status
            .code(),
        Some(0)
    );
    let status = json(&rehearse(dir.path(), "status", &["--output", "json"]));
    assert_eq!(status["phases"]["prepare"]["rolled back"], 7);
    let text = stdout(&rehearse(dir.path(), "status", &[]));
    assert!(text.contains("prepare: 7 rolled back"), "{text}");
}

#[test]
fn runs_are_refused_with_the_reason() {
    let dir = demo_workspace();
    // Phases run in order.
    let output = rehearse(dir.path(), "apply", &["--phase", "rollout", "--yes"]);
    assert_refused(
        &output,
        &["phase rollout needs phase prepare applied first"],
    );
    // No terminal and no --yes: refused, nothing journaled.
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare"]);
    assert_refused(&output, &["--yes"]);
    assert!(journal_entries(dir.path()).is_empty());
    assert!(
        !rehearsal(dir.path()).exists(),
        "refused before the rehearsal is opened"
    );
    // A dry run reads and reports without writing: the rehearsal is the plan's snapshot.
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("would apply"),
        "{}",
        stdout(&output)
    );
    let read = |path: &std::path::Path| {
        irsa_migrate::inventory::snapshot::load_dir(path, &irsa_migrate::progress::Silent).unwrap()
    };
    assert_eq!(
        read(&rehearsal(dir.path())),
        read(&dir.path().join("migrations/demo/snapshot"))
    );
    assert!(
        rehearsal(dir.path())
            .join("kubernetes/payments/deployment.json")
            .is_file(),
        "the state is cut by namespace, each rehearsed write a small file"
    );
    // A plan edited after apply started is refused.
    apply_phase(dir.path(), "prepare");
    let path = dir.path().join(PLAN);
    let edited = std::fs::read_to_string(&path).unwrap().replacen(
        "create the IAM OIDC provider",
        "create the IAM OIDC provider (edited)",
        1,
    );
    std::fs::write(&path, edited).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "identity", "--yes"]);
    assert_refused(&output, &["the plan file changed"]);
    // Rolling back an earlier phase while a later one is applied is refused.
    let dir = demo_workspace();
    for phase in ["prepare", "identity"] {
        apply_phase(dir.path(), phase);
    }
    let output = rehearse(dir.path(), "rollback", &["--phase", "prepare", "--yes"]);
    assert_refused(&output, &["only after phase identity"]);
    // Decommission is never limited to a namespace.
    let output = rehearse(
        dir.path(),
        "apply",
        &[
            "--phase",
            "decommission",
            "--namespace",
            "payments",
            "--yes",
        ],
    );
    assert_eq!(output.status.code(), Some(3));
    // A live run with a kubeconfig that is not there names it, and changes nothing.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
        .args(["scan", "--kubeconfig", "no-such-kubeconfig"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no-such-kubeconfig") && stderr(&output).contains("--snapshot"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_target_changed_after_planning_stops_apply_with_a_diff_and_nothing_written() {
    let dir = demo_workspace();
    // Create the rehearsal, then edit a target the way someone would by hand.
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The demo's roles fit in the account's first IAM file.
    let iam = rehearsal(dir.path()).join("iam/111122223333/roles-0000.json");
    let text = std::fs::read_to_string(&iam).unwrap();
    let mut details: serde_json::Value = serde_json::from_str(&text).unwrap();
    let role = details["RoleDetailList"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["RoleName"] == "payments-worker")
        .unwrap();
    role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"] =
        "arn:aws:iam::111122223333:role/somebody-else".into();
    std::fs::write(&iam, serde_json::to_string_pretty(&details).unwrap()).unwrap();
    let before = state(dir.path());
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("update-role-trust:arn:aws:iam::111122223333:role/payments-worker"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert!(
        err.contains("-        \"AWS\": \"arn:aws:iam::111122223333:role/kiam-server\""),
        "{err}"
    );
    assert!(
        err.contains("+        \"AWS\": \"arn:aws:iam::111122223333:role/somebody-else\""),
        "{err}"
    );
    assert_eq!(state(dir.path()), before, "nothing was written");
    assert!(
        journal_entries(dir.path()).is_empty(),
        "nothing was journaled"
    );
}
