//! Drives `apply`, `status` and `rollback` on rehearsals of the demo plan, including SIGKILL at
//! every durability point of a run.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

/// A fresh migration directory with the demo plan and its snapshot.
fn demo_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["demo"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    dir
}

const PLAN: &str = "migrations/demo/plan.json";

fn rehearsal(dir: &Path) -> PathBuf {
    dir.join("migrations/demo/rehearsal")
}

/// Every rehearsal file but the journal, by relative path.
fn state(dir: &Path) -> BTreeMap<PathBuf, String> {
    let root = rehearsal(dir);
    let mut files = BTreeMap::new();
    let mut pending = vec![root.clone()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.insert(
                    path.strip_prefix(&root).unwrap().to_path_buf(),
                    std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    files
}

/// Compares rehearsal states file by file, naming the files that differ instead of dumping them.
fn assert_same_state(
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

fn journal_entries(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(rehearsal(dir).join("journal.jsonl")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("journal lines are JSON"))
        .collect()
}

/// Runs `irsa-migrate <command> --plan <the demo plan> --rehearse <args>` in `dir`.
fn rehearse(dir: &Path, command: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec![command, "--plan", PLAN, "--rehearse"];
    all.extend_from_slice(args);
    run_in(dir, &all)
}

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
        text.ends_with("35 changed, 0 already in place, 0 skipped\n"),
        "{text}"
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
    assert_eq!(
        rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"])
            .status
            .code(),
        Some(0)
    );
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
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("phase rollout needs phase prepare applied first"),
        "{}",
        stderr(&output)
    );
    // No terminal and no --yes: refused, nothing journaled.
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    assert!(journal_entries(dir.path()).is_empty());
    // A dry run reads and reports without writing.
    let before = state(dir.path());
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("would apply"),
        "{}",
        stdout(&output)
    );
    assert_eq!(state(dir.path()), before);
    // A plan edited after apply started is refused.
    assert_eq!(
        rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"])
            .status
            .code(),
        Some(0)
    );
    let path = dir.path().join(PLAN);
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"name\": \"demo\"", "\"name\": \"demo\" ");
    std::fs::write(&path, edited).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "identity", "--yes"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("the plan file changed"),
        "{}",
        stderr(&output)
    );
    // Rolling back an earlier phase while a later one is applied is refused.
    let dir = demo_workspace();
    for phase in ["prepare", "identity"] {
        assert_eq!(
            rehearse(dir.path(), "apply", &["--phase", phase, "--yes"])
                .status
                .code(),
            Some(0)
        );
    }
    let output = rehearse(dir.path(), "rollback", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("only after phase identity"),
        "{}",
        stderr(&output)
    );
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

/// Runs the binary with `IRSA_MIGRATE_KILL_AT=point`; true when it was killed by SIGKILL.
fn run_killed_at(dir: &Path, args: &[&str], point: usize) -> bool {
    let status = Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
        .args(args)
        .current_dir(dir)
        .env("IRSA_MIGRATE_KILL_AT", point.to_string())
        .output()
        .unwrap()
        .status;
    killed(status)
}

/// Runs `command` in fresh workspaces prepared by `prepare`, killing it at its 1st, 2nd, ...
/// durability point until a run completes; after each kill, runs it again and checks that the
/// state equals `expected` and that every step is journaled as done exactly once for `action`.
/// Returns how many points were killed at.
fn kill_at_every_point_then_resume(
    command: &[&str],
    prepare: &dyn Fn(&Path),
    expected: &BTreeMap<PathBuf, String>,
    action: &str,
) -> usize {
    let steps = 35;
    let mut points = 0;
    for point in 1.. {
        let dir = demo_workspace();
        prepare(dir.path());
        if !run_killed_at(dir.path(), command, point) {
            break;
        }
        points += 1;
        let resumed = run_in(dir.path(), command);
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "{action} resumed after a kill at point {point}: {}",
            stderr(&resumed)
        );
        assert_same_state(
            &state(dir.path()),
            expected,
            &format!("after a kill at point {point} of {action} and a resume"),
        );
        assert_each_step_done_once(
            &rehearsal(dir.path()).join("journal.jsonl"),
            action,
            steps,
            &format!("after a kill at point {point} of {action} and a resume"),
        );
    }
    assert!(
        points >= 3 * steps,
        "{action} was killed at only {points} points"
    );
    points
}

#[test]
fn sigkill_at_every_point_of_apply_and_rollback_then_resume_ends_exactly_as_uninterrupted() {
    let apply = [
        "apply",
        "--plan",
        PLAN,
        "--rehearse",
        "--phase",
        "all",
        "--yes",
    ];
    let rollback = ["rollback", "--plan", PLAN, "--rehearse", "--all", "--yes"];
    let dry_run = [
        "apply",
        "--plan",
        PLAN,
        "--rehearse",
        "--phase",
        "prepare",
        "--dry-run",
    ];
    let reference = demo_workspace();
    assert_eq!(
        run_in(reference.path(), &dry_run).status.code(),
        Some(0),
        "a dry run creates the rehearsal"
    );
    let untouched = state(reference.path());
    assert_eq!(run_in(reference.path(), &apply).status.code(), Some(0));
    let applied = state(reference.path());

    kill_at_every_point_then_resume(&apply, &|_| {}, &applied, "apply");
    let apply_first = |dir: &Path| assert_eq!(run_in(dir, &apply).status.code(), Some(0));
    kill_at_every_point_then_resume(&rollback, &apply_first, &untouched, "rollback");
}

#[test]
fn namespace_runs_touch_only_that_namespace_and_keep_phase_order_per_namespace() {
    let dir = demo_workspace();
    for phase in ["prepare", "identity", "rollout"] {
        let output = rehearse(
            dir.path(),
            "apply",
            &["--phase", phase, "--namespace", "data", "--yes"],
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{phase}: {}",
            stderr(&output)
        );
        let text = stdout(&output);
        assert!(
            !text.contains("payments") && !text.contains("checkout"),
            "{phase} touched another namespace:\n{text}"
        );
    }
    let status = json(&rehearse(dir.path(), "status", &["--output", "json"]));
    let state = |id: &str| {
        status["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        state("restart-workload:data/Deployment/data-ingest"),
        "applied"
    );
    assert_eq!(
        state("update-role-trust:arn:aws:iam::111122223333:role/data-ingest"),
        "applied"
    );
    assert_eq!(
        state("update-role-trust:arn:aws:iam::111122223333:role/payments-api"),
        "pending"
    );
    // Another namespace still needs its own earlier phases.
    let output = rehearse(
        dir.path(),
        "apply",
        &["--phase", "rollout", "--namespace", "payments", "--yes"],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}

/// Every file under `root`, relative to it.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// Edits the demo plan in `dir` through `edit`, which gets the steps array.
fn edit_plan(dir: &Path, edit: impl FnOnce(&mut Vec<serde_json::Value>)) {
    let path = dir.join(PLAN);
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(plan["steps"].as_array_mut().unwrap());
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
}

fn step_mut<'a>(steps: &'a mut [serde_json::Value], id: &str) -> &'a mut serde_json::Value {
    steps.iter_mut().find(|s| s["id"] == id).unwrap()
}

/// Applies the edited demo plan in rehearsal and checks it is refused with nothing written: no
/// file outside the migration directory, no rehearsal state changed, no journal entry.
fn assert_refused_with_nothing_written(dir: &Path, names: &[&str]) -> String {
    let before = files_under(dir);
    let output = rehearse(dir, "apply", &["--phase", "all", "--yes"]);
    let error = stderr(&output);
    assert!(
        matches!(output.status.code(), Some(2 | 3)),
        "exit {:?}: {error}",
        output.status.code()
    );
    for name in names {
        assert!(
            error.contains(name),
            "the error does not name {name:?}: {error}"
        );
    }
    let after = files_under(dir);
    let new: Vec<&PathBuf> = after
        .iter()
        .filter(|f| !before.contains(f) && !f.starts_with("migrations/demo/rehearsal"))
        .collect();
    assert!(new.is_empty(), "written outside the rehearsal: {new:?}");
    let rehearsal = rehearsal(dir);
    if rehearsal.exists() {
        assert!(
            journal_entries(dir).is_empty(),
            "{:?}",
            journal_entries(dir)
        );
        let snapshot = dir.join("migrations/demo/snapshot");
        for file in files_under(&rehearsal)
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            assert_eq!(
                std::fs::read(rehearsal.join(file)).ok(),
                std::fs::read(snapshot.join(file)).ok(),
                "rehearsal file {} changed",
                file.display()
            );
        }
    }
    error
}

#[test]
fn a_plan_step_with_a_traversal_namespace_writes_nothing_outside_the_rehearsal() {
    // Regression: rehearsal files were joined from the step's namespace, so a created service
    // account in `../../../../x` was written outside the migration directory.
    let dir = demo_workspace();
    edit_plan(dir.path(), |steps| {
        let step = step_mut(
            steps,
            "create-service-account:payments/ServiceAccount/default-payments-worker",
        );
        step["target"]["namespace"] = "../../../../x".into();
        step["after"]["metadata"]["namespace"] = "../../../../x".into();
    });
    assert_refused_with_nothing_written(dir.path(), &["../../../../x"]);
}

#[test]
fn a_plan_step_with_a_traversal_kind_writes_nothing_outside_the_rehearsal() {
    // Regression: a copied binding's kind became a rehearsal file name.
    let dir = demo_workspace();
    edit_plan(dir.path(), |steps| {
        let step = step_mut(
            steps,
            "copy-rbac-binding:ClusterRoleBinding/payments-node-reader-default-payments-worker",
        );
        step["target"]["kind"] = "../../../../y".into();
        step["after"]["kind"] = "../../../../y".into();
    });
    assert_refused_with_nothing_written(dir.path(), &["../../../../y"]);
}

const PLATFORM_ADMIN: &str = "arn:aws:iam::111122223333:role/platform-admin";

/// platform-admin's trust in the demo, and the same with everyone allowed to assume it.
fn platform_admin_trust() -> (serde_json::Value, serde_json::Value) {
    let before = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Action": "sts:AssumeRole", "Effect": "Allow",
        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"}}]});
    let mut after = before.clone();
    after["Statement"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": "*"}}));
    (before, after)
}

#[test]
fn a_trust_step_aimed_at_another_role_than_its_id_is_refused() {
    // Regression (the hostile plan): a step still reading
    // update-role-trust:…role/checkout-web gave role/platform-admin the trust Principal {"AWS":"*"}.
    let dir = demo_workspace();
    edit_plan(dir.path(), |steps| {
        let step = step_mut(
            steps,
            "update-role-trust:arn:aws:iam::111122223333:role/checkout-web",
        );
        let (before, after) = platform_admin_trust();
        step["target"]["arn"] = PLATFORM_ADMIN.into();
        step["before"] = before;
        step["after"] = after;
    });
    assert_refused_with_nothing_written(
        dir.path(),
        &[
            "update-role-trust:arn:aws:iam::111122223333:role/checkout-web",
            "field id",
        ],
    );
}

#[test]
fn a_trust_step_that_adds_a_wildcard_principal_is_refused() {
    // The same edit with an id that matches its target: only the planner's own edit passes.
    let dir = demo_workspace();
    edit_plan(dir.path(), |steps| {
        let step = step_mut(
            steps,
            "update-role-trust:arn:aws:iam::111122223333:role/checkout-web",
        );
        let mut after = step["after"].clone();
        after["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
            "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": "*"}}));
        step["after"] = after;
    });
    assert_refused_with_nothing_written(
        dir.path(),
        &[
            "update-role-trust:arn:aws:iam::111122223333:role/checkout-web",
            "field after",
        ],
    );
    // A step for a role no binding names is refused even when its id is consistent.
    let dir = demo_workspace();
    edit_plan(dir.path(), |steps| {
        let step = step_mut(
            steps,
            "update-role-trust:arn:aws:iam::111122223333:role/checkout-web",
        );
        let (before, after) = platform_admin_trust();
        step["id"] = format!("update-role-trust:{PLATFORM_ADMIN}").into();
        step["target"]["arn"] = PLATFORM_ADMIN.into();
        step["before"] = before;
        step["after"] = after;
    });
    assert_refused_with_nothing_written(
        dir.path(),
        &[
            &format!("update-role-trust:{PLATFORM_ADMIN}"),
            "field target.arn",
        ],
    );
}

#[test]
fn an_added_rbac_copy_to_cluster_admin_is_refused() {
    // Regression (the hostile plan): an added copy-rbac-binding step bound a service
    // account to cluster-admin. Its id, phase and shape are consistent; only the plan's own
    // snapshot tells that no binding of the shared account grants cluster-admin.
    let dir = demo_workspace();
    edit_plan(dir.path(), |steps| {
        let original = step_mut(
            steps,
            "copy-rbac-binding:ClusterRoleBinding/payments-node-reader-default-payments-worker",
        );
        let mut added = original.clone();
        let name = "cluster-admin-default-payments-worker";
        added["id"] = format!("copy-rbac-binding:ClusterRoleBinding/{name}").into();
        added["target"]["name"] = name.into();
        added["after"]["metadata"]["name"] = name.into();
        added["after"]["roleRef"]["name"] = "cluster-admin".into();
        steps.push(added);
    });
    assert_refused_with_nothing_written(
        dir.path(),
        &[
            "copy-rbac-binding:ClusterRoleBinding/cluster-admin-default-payments-worker",
            "field after.roleRef",
            "cluster-admin",
        ],
    );
}

#[test]
fn a_step_in_another_phase_than_its_kind_is_refused() {
    let dir = demo_workspace();
    edit_plan(dir.path(), |steps| {
        let step = step_mut(
            steps,
            "remove-legacy-trust:arn:aws:iam::111122223333:role/checkout-web",
        );
        step["phase"] = "prepare".into();
    });
    assert_refused_with_nothing_written(dir.path(), &["remove-legacy-trust", "field phase"]);
}
