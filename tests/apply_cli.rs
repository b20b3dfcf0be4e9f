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
    json_files(&rehearsal(dir))
}

/// Every JSON file under `root`, by relative path.
fn json_files(root: &Path) -> BTreeMap<PathBuf, String> {
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
    assert_eq!(
        state(dir.path()),
        json_files(&dir.path().join("migrations/demo/snapshot"))
    );
    // A plan edited after apply started is refused.
    assert_eq!(
        rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"])
            .status
            .code(),
        Some(0)
    );
    let path = dir.path().join(PLAN);
    let edited = std::fs::read_to_string(&path).unwrap().replacen(
        "create the IAM OIDC provider",
        "create the IAM OIDC provider (edited)",
        1,
    );
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
        // The first namespace of a staged migration takes prepare's cluster-wide OIDC provider.
        let mut args = vec!["--phase", phase, "--namespace", "data", "--yes"];
        if phase == "prepare" {
            args.push("--include-cluster-wide");
        }
        let output = rehearse(dir.path(), "apply", &args);
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
/// `named` must be in apply's refusal, `checked` in what `status` (the step-by-step check alone)
/// says of the same plan.
fn assert_refused_with_nothing_written(dir: &Path, named: &[&str], checked: &[&str]) -> String {
    let before = support::files_under(dir);
    let output = rehearse(dir, "apply", &["--phase", "all", "--yes"]);
    let error = stderr(&output);
    assert!(
        matches!(output.status.code(), Some(2 | 3)),
        "exit {:?}: {error}",
        output.status.code()
    );
    // Apply compares a plan not yet applied with the planner's own first, naming each step that
    // differs; the step-by-step check names the field too, as `status` (which runs only it) shows.
    for name in named {
        assert!(
            error.contains(name),
            "the error does not name {name:?}: {error}"
        );
    }
    let status = stderr(&rehearse(dir, "status", &[]));
    for name in checked {
        assert!(
            status.contains(name),
            "status does not name {name:?}: {status}"
        );
    }
    let after = support::files_under(dir);
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
        for file in support::files_under(&rehearsal)
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
    assert_refused_with_nothing_written(dir.path(), &["../../../../x"], &["../../../../x"]);
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
    assert_refused_with_nothing_written(dir.path(), &["../../../../y"], &["../../../../y"]);
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
    // Regression (the issue's hostile plan): a step still reading
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
        &["update-role-trust:arn:aws:iam::111122223333:role/checkout-web"],
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
        &["update-role-trust:arn:aws:iam::111122223333:role/checkout-web"],
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
        &[&format!("update-role-trust:{PLATFORM_ADMIN}")],
        &[
            &format!("update-role-trust:{PLATFORM_ADMIN}"),
            "field target.arn",
        ],
    );
}

#[test]
fn an_added_rbac_copy_to_cluster_admin_is_refused() {
    // Regression (the issue's hostile plan): an added copy-rbac-binding step bound a service
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
            "cluster-admin",
        ],
        &[],
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
    assert_refused_with_nothing_written(
        dir.path(),
        &["remove-legacy-trust"],
        &["remove-legacy-trust", "field phase"],
    );
}

/// `apply` and `rollback` of one migration at once lost rehearsal files and applied steps twice
/// (issue 12): a run holding the directory's lock makes any other exit 3 at once, naming it.
#[test]
fn a_run_while_another_holds_the_migration_lock_exits_3_naming_the_holder_and_changes_nothing() {
    let dir = demo_workspace();
    let path = dir.path().join("migrations/demo/.lock");
    let mut held = std::fs::File::create(&path).unwrap();
    held.try_lock().expect("the test takes the free lock");
    std::io::Write::write_all(
        &mut held,
        br#"{"pid":4242,"host":"ci-runner-7","started":"2026-01-02T03:04:05Z","command":"irsa-migrate apply --phase all"}"#,
    )
    .unwrap();
    for (command, args) in [
        ("apply", &["--phase", "all", "--yes"][..]),
        ("apply", &["--phase", "prepare", "--dry-run"][..]),
        ("rollback", &["--all", "--yes"][..]),
    ] {
        let output = rehearse(dir.path(), command, args);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{command} {args:?}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        assert!(
            err.contains("migrations/demo/.lock is held by pid 4242 on ci-runner-7, started 2026-01-02T03:04:05Z (`irsa-migrate apply --phase all`)"),
            "{err}"
        );
        assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    }
    assert!(!rehearsal(dir.path()).exists(), "nothing was written");
    drop(held);
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// A holder killed with SIGKILL (no clean-up runs) leaves its record but not its lock.
#[test]
fn a_killed_holder_never_blocks_the_next_run() {
    let dir = demo_workspace();
    let mut child = Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
        .args([
            "apply",
            "--plan",
            PLAN,
            "--rehearse",
            "--phase",
            "all",
            "--yes",
        ])
        .current_dir(dir.path())
        .env("IRSA_MIGRATE_KILL_AT", "5")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(killed(child.wait().unwrap()));
    let record = std::fs::read_to_string(dir.path().join("migrations/demo/.lock")).unwrap();
    assert!(record.contains(&format!("\"pid\":{pid}")), "{record}");
    let output = rehearse(dir.path(), "apply", &["--phase", "all", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Starts `args` twice at once in `dir`; returns both outputs and pids.
fn run_pair(dir: &Path, args: &[&str]) -> [(u32, std::process::Output); 2] {
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    [first, second].map(|child| (child.id(), child.wait_with_output().unwrap()))
}

/// Checks a pair of identical runs: either they overlapped, and exactly one ran while the other
/// exited 3 naming it, or they did not, and the second found everything done. Returns whether
/// they overlapped.
fn check_pair(pair: &[(u32, std::process::Output); 2], done: &str, again: &str) -> bool {
    let codes = [pair[0].1.status.code(), pair[1].1.status.code()];
    let context = format!(
        "codes {codes:?}\nfirst: {}{}\nsecond: {}{}",
        stdout(&pair[0].1),
        stderr(&pair[0].1),
        stdout(&pair[1].1),
        stderr(&pair[1].1)
    );
    match codes {
        [Some(0), Some(3)] | [Some(3), Some(0)] => {
            let (ran, refused) = if codes[0] == Some(0) {
                (&pair[0], &pair[1])
            } else {
                (&pair[1], &pair[0])
            };
            assert!(stdout(&ran.1).ends_with(done), "{context}");
            assert!(
                stderr(&refused.1).contains(&format!("is held by pid {} on ", ran.0)),
                "the refused run names the one that ran: {context}"
            );
            assert!(stdout(&refused.1).is_empty(), "{context}");
            true
        }
        [Some(0), Some(0)] => {
            let mut tails = [stdout(&pair[0].1), stdout(&pair[1].1)];
            tails.sort_by_key(|t| t.ends_with(again));
            assert!(
                tails[0].ends_with(done) && tails[1].ends_with(again),
                "both ran; only one may have changed anything: {context}"
            );
            false
        }
        _ => panic!("unexpected exit codes: {context}"),
    }
}

/// Concurrent pairs of the same apply, then of the same rollback: exactly one of each pair runs,
/// the other exits 3; the journal and the rehearsal end exactly as after one run of each.
#[test]
fn concurrent_pairs_of_runs_on_one_migration_run_one_and_refuse_the_other() {
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
    let reference = demo_workspace();
    assert_eq!(
        rehearse(
            reference.path(),
            "apply",
            &["--phase", "prepare", "--dry-run"]
        )
        .status
        .code(),
        Some(0)
    );
    let untouched = state(reference.path());
    assert_eq!(run_in(reference.path(), &apply).status.code(), Some(0));
    let applied = state(reference.path());

    let pairs = 8;
    let mut overlapped = 0;
    for round in 0..pairs {
        let dir = demo_workspace();
        let journal = rehearsal(dir.path()).join("journal.jsonl");
        let context = format!("pair {round}");
        overlapped += usize::from(check_pair(
            &run_pair(dir.path(), &apply),
            "35 changed, 0 already in place, 0 skipped\n",
            "0 changed, 0 already in place, 35 skipped\n",
        ));
        assert_same_state(&state(dir.path()), &applied, &context);
        assert_each_step_done_once(&journal, "apply", 35, &context);
        overlapped += usize::from(check_pair(
            &run_pair(dir.path(), &rollback),
            "35 changed, 0 already in place, 0 skipped\n",
            "0 changed, 0 already in place, 0 skipped\n",
        ));
        assert_same_state(&state(dir.path()), &untouched, &context);
        assert_each_step_done_once(&journal, "rollback", 35, &context);
    }
    // Two runs started together overlap (a run takes far longer than taking the lock); were
    // none refused, this test would have checked nothing.
    assert!(overlapped > 0, "no pair of runs overlapped");
}

/// `--namespace paymnets` selected nothing and succeeded, and `--phase prepare --namespace nope`
/// created the cluster-wide OIDC provider (issue 12).
#[test]
fn namespace_filters_are_checked_and_leave_cluster_wide_steps_out_unless_asked() {
    let dir = demo_workspace();
    let output = rehearse(
        dir.path(),
        "apply",
        &["--phase", "identity", "--namespace", "paymnets", "--yes"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "--namespace paymnets: no step of plan demo is in that namespace; its namespaces: checkout, data, monitoring, payments"
        ),
        "{}",
        stderr(&output)
    );
    assert!(journal_entries(dir.path()).is_empty());
    let output = rehearse(
        dir.path(),
        "rollback",
        &["--all", "--namespace", "nope", "--yes"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));

    // Under a namespace filter, prepare leaves the OIDC provider (cluster-wide) alone, says so,
    // and the next phase waits for it.
    let oidc = "create-oidc-provider:arn:aws:iam::111122223333:oidc-provider/";
    let output = rehearse(
        dir.path(),
        "apply",
        &["--phase", "prepare", "--namespace", "data", "--yes"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains(oidc), "{text}");
    assert!(
        text.contains("1 cluster-wide step(s) of these phases left out by --namespace")
            && text.ends_with("2 changed, 0 already in place, 0 skipped\n"),
        "{text}"
    );
    let output = rehearse(
        dir.path(),
        "apply",
        &["--phase", "identity", "--namespace", "data", "--yes"],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(oidc) && stderr(&output).contains("--include-cluster-wide"),
        "{}",
        stderr(&output)
    );
    let output = rehearse(
        dir.path(),
        "apply",
        &[
            "--phase",
            "prepare",
            "--namespace",
            "data",
            "--include-cluster-wide",
            "--yes",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("applied          {oidc}")),
        "{}",
        stdout(&output)
    );
    // The flag does nothing without --namespace: refused.
    let output = rehearse(
        dir.path(),
        "apply",
        &["--phase", "prepare", "--include-cluster-wide", "--yes"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));

    // Cluster RBAC bindings copied for a namespace's service accounts belong to that namespace.
    let output = rehearse(
        dir.path(),
        "apply",
        &["--phase", "prepare", "--namespace", "payments", "--yes"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = rehearse(
        dir.path(),
        "apply",
        &["--phase", "identity", "--namespace", "payments", "--yes"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for id in [
        "copy-rbac-binding:ClusterRoleBinding/payments-node-reader-default-payments-reconcile",
        "copy-rbac-binding:ClusterRoleBinding/payments-node-reader-default-payments-worker",
    ] {
        assert!(text.contains(&format!("applied          {id}")), "{text}");
    }
    assert!(!text.contains("cluster-wide step(s)"), "{text}");
}

/// Runs `args` as a live run with no AWS credentials anywhere (and no network to find any).
fn without_credentials(dir: &Path, args: &[&str]) -> std::process::Output {
    without_credentials_with(dir, args, &[])
}

/// [`without_credentials`] with `env` set on top.
fn without_credentials_with(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_irsa-migrate"));
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        command.env_remove(name);
    }
    command
        .args(args)
        .current_dir(dir)
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Regression (issue 15): a plan made from a snapshot with a fake issuer was applied as it was;
/// live, it is refused before anything is reached (no credentials are even looked for), and
/// `--issuer-any` lets it go on to be checked against the cluster's own issuer.
#[test]
fn a_plan_with_an_issuer_eks_does_not_give_is_refused_live_before_anything_is_reached() {
    let dir = tempfile::tempdir().unwrap();
    support::demo_snapshot(dir.path());
    support::set_snapshot_issuer(dir.path(), "https://evil.example.com");
    let output = run_in(
        dir.path(),
        &[
            "plan",
            "--snapshot",
            "snap",
            "--name",
            "demo",
            "--issuer-any",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for args in [
        &["apply", "--plan", PLAN, "--phase", "prepare", "--yes"][..],
        &["apply", "--plan", PLAN, "--phase", "all", "--dry-run"][..],
    ] {
        let output = without_credentials(dir.path(), args);
        let error = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {error}");
        assert!(
            error.contains("the plan's OIDC issuer is refused")
                && error.contains("\"https://evil.example.com\" is not an OIDC issuer EKS gives")
                && error.contains("--issuer-any"),
            "{error}"
        );
        assert!(!error.contains("roll back"), "{error}");
    }
    assert!(!dir.path().join("migrations/demo/journal.jsonl").exists());
    // Accepted by name, the plan goes on to AWS (here: no credentials, exit 2, nothing written).
    let output = without_credentials(
        dir.path(),
        &[
            "apply",
            "--plan",
            PLAN,
            "--phase",
            "prepare",
            "--yes",
            "--issuer-any",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("checking the plan against AWS"),
        "{}",
        stderr(&output)
    );
    // A rehearsal reaches nothing live, and runs it.
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Regression (issue 15): `--endpoint-url http://…` sent SigV4 headers and session tokens in
/// clear text without a word. Off this machine it is refused before any request; the tests'
/// own `http://127.0.0.1` moto keeps working (tests/live.rs).
#[test]
fn a_plain_http_endpoint_off_this_machine_is_refused_before_any_request() {
    let dir = demo_workspace();
    let apply = ["apply", "--plan", PLAN, "--phase", "prepare", "--dry-run"];
    let mut args = apply.to_vec();
    args.extend(["--endpoint-url", "http://10.1.2.3:4566"]);
    let output = without_credentials(dir.path(), &args);
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(
        error.contains("--endpoint-url http://10.1.2.3:4566: plain HTTP would send signed requests and session tokens in clear text"),
        "{error}"
    );
    // From the environment as from the flag (scan and plan read through the same client).
    let output = without_credentials_with(
        dir.path(),
        &apply,
        &[("AWS_ENDPOINT_URL", "http://iam.example.com")],
    );
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(
        error.contains("AWS_ENDPOINT_URL") && error.contains("plain HTTP"),
        "{error}"
    );
    // Loopback is this machine: accepted (and, with nothing listening, a failed read).
    let mut args = apply.to_vec();
    args.extend(["--endpoint-url", "http://localhost:9"]);
    let output = without_credentials(dir.path(), &args);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("plain HTTP"),
        "{}",
        stderr(&output)
    );
}

/// Missing credentials, a corrupt journal, a rehearsal that cannot open and a failed preflight
/// read were exit 4, "roll back" (issue 12): nothing had changed.
#[test]
fn failures_before_the_first_write_are_2_or_3_and_do_not_advise_rolling_back() {
    let check = |output: &std::process::Output, code: i32, needle: &str, context: &str| {
        let err = stderr(output);
        assert_eq!(output.status.code(), Some(code), "{context}: {err}");
        assert!(err.contains(needle), "{context}: {err}");
        assert!(!err.contains("roll back"), "{context}: {err}");
    };
    let dir = demo_workspace();
    // Live, without a terminal or --yes: refused before any credentials are looked for.
    let output = without_credentials(dir.path(), &["apply", "--plan", PLAN, "--phase", "prepare"]);
    check(&output, 3, "pass --yes", "no confirmation");
    // Filters and phase order are checked before anything is read.
    let output = without_credentials(
        dir.path(),
        &["apply", "--plan", PLAN, "--phase", "identity", "--yes"],
    );
    check(
        &output,
        3,
        "needs phase prepare applied first",
        "phase order",
    );
    for args in [
        &["apply", "--plan", PLAN, "--phase", "prepare", "--dry-run"][..],
        &["apply", "--plan", PLAN, "--phase", "prepare", "--yes"][..],
    ] {
        let output = without_credentials(dir.path(), args);
        check(
            &output,
            2,
            "nothing was written by this run",
            "no credentials",
        );
    }
    assert!(!dir.path().join("migrations/demo/journal.jsonl").exists());

    // A preflight read that fails: a rehearsal file that is not JSON.
    let dir = demo_workspace();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let iam = rehearsal(dir.path()).join("iam/111122223333/roles-0000.json");
    std::fs::write(&iam, "{ not json").unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    check(
        &output,
        2,
        "nothing was written by this run",
        "failed preflight read",
    );
    assert!(journal_entries(dir.path()).is_empty());

    // A corrupt journal.
    let dir = demo_workspace();
    assert_eq!(
        rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"])
            .status
            .code(),
        Some(0)
    );
    let journal = rehearsal(dir.path()).join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, format!("garbage\n{text}")).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "identity", "--yes"]);
    check(
        &output,
        2,
        "journal.jsonl:1: not a journal entry",
        "corrupt journal",
    );

    // A rehearsal that cannot be opened: its staging copy cannot be made (a file is in the way).
    let dir = demo_workspace();
    std::fs::write(
        dir.path().join("migrations/demo/rehearsal.staging"),
        "in the way",
    )
    .unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    check(
        &output,
        2,
        "opening the backend",
        "rehearsal that cannot open",
    );
}

/// A byte checksum refused a CRLF checkout or a reformatted plan.json (issue 12): the journal
/// binds a migration to the plan's content, the digest report.md shows.
#[test]
fn a_reformatted_plan_is_the_same_plan_and_the_digest_is_the_reports() {
    let dir = demo_workspace();
    let path = dir.path().join(PLAN);
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Reformatted (compact, then broken into lines) and checked out with CRLF endings.
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let compact = serde_json::to_string(&value).unwrap();
    std::fs::write(&path, format!("{}\r\n", compact.replace(",\"", ",\r\n\""))).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "identity", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The digest the journal records is the one report.md shows.
    let status = json(&rehearse(dir.path(), "status", &["--output", "json"]));
    let digest = status["digest"].as_str().expect("status shows the digest");
    let report = std::fs::read_to_string(dir.path().join("migrations/demo/report.md")).unwrap();
    assert!(
        report.contains(&format!("Plan digest `{digest}`")),
        "{report}"
    );
    let journal = std::fs::read_to_string(rehearsal(dir.path()).join("journal.jsonl")).unwrap();
    assert!(journal.contains(digest), "{journal}");
}

/// Journals started before the content digest record the plan file's byte checksum: such a
/// migration goes on, and a changed plan is still refused.
#[test]
fn a_journal_that_records_the_byte_checksum_still_accepts_its_plan() {
    let dir = demo_workspace();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let journal = rehearsal(dir.path()).join("journal.jsonl");
    let bytes = std::fs::read(dir.path().join(PLAN)).unwrap();
    let digest = json(&rehearse(dir.path(), "status", &["--output", "json"]))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains(&digest), "a new journal records the digest");
    std::fs::write(
        &journal,
        text.replace(&digest, &irsa_migrate::apply::checksum(&bytes)),
    )
    .unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "identity", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    std::fs::write(dir.path().join(PLAN), [&bytes[..], b" "].concat()).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "rollout", "--yes"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}

/// Flags that would do nothing where given were accepted silently (issue 12): a rehearsal that
/// "used" --profile, a --rollout-timeout 0 no wave could meet.
#[test]
fn flags_that_would_do_nothing_are_refused() {
    let dir = demo_workspace();
    for (command, args, flag) in [
        (
            "apply",
            &["--phase", "prepare", "--dry-run", "--profile", "prod"][..],
            "--profile",
        ),
        (
            "apply",
            &["--phase", "prepare", "--dry-run", "--concurrency", "4"][..],
            "--concurrency",
        ),
        (
            "rollback",
            &["--all", "--yes", "--kubeconfig", "k"][..],
            "--kubeconfig",
        ),
        (
            "rollback",
            &["--all", "--yes", "--account-profile", "444455556666=x"][..],
            "--account-profile",
        ),
        (
            "apply",
            &["--phase", "prepare", "--dry-run", "--issuer-any"][..],
            "--issuer-any",
        ),
    ] {
        let output = rehearse(dir.path(), command, args);
        assert_eq!(output.status.code(), Some(2), "{command} {args:?}");
        assert!(
            stderr(&output).contains(&format!("{flag} does nothing with --rehearse")),
            "{}",
            stderr(&output)
        );
    }
    for (args, flag) in [
        (&["scan", "--demo", "--context", "prod"][..], "--context"),
        (
            &["plan", "--demo", "--region", "eu-west-1", "--name", "x"][..],
            "--region",
        ),
        // Only a live reading can be incomplete.
        (
            &["plan", "--demo", "--allow-incomplete", "--name", "x"][..],
            "--allow-incomplete",
        ),
        (
            &[
                "plan",
                "--snapshot",
                "migrations/demo/snapshot",
                "--cluster",
                "c",
                "--name",
                "x",
            ][..],
            "--cluster",
        ),
    ] {
        let output = run_in(dir.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(&format!("{flag} does nothing with")),
            "{}",
            stderr(&output)
        );
    }
    assert!(!dir.path().join("migrations/x").exists());
    // A rehearsal has no rollout to wait for or roll back.
    for flag in [
        &["--rollout-timeout", "60"][..],
        &["--no-auto-rollback"][..],
    ] {
        let mut args = vec!["--phase", "rollout", "--yes"];
        args.extend_from_slice(flag);
        let output = rehearse(dir.path(), "apply", &args);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("{} does nothing with --rehearse", flag[0])),
            "{}",
            stderr(&output)
        );
    }
    let output = run_in(
        dir.path(),
        &[
            "apply",
            "--plan",
            PLAN,
            "--phase",
            "rollout",
            "--rollout-timeout",
            "0",
            "--yes",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("invalid value '0' for '--rollout-timeout"),
        "{}",
        stderr(&output)
    );
    assert!(journal_entries(dir.path()).is_empty());
    assert!(!dir.path().join("migrations/demo/journal.jsonl").exists());
}

/// A hand-edited plan.json was applied unchecked before its first apply, while report.md (what
/// the change board approved) showed the plan as made (issue 12).
#[test]
fn a_plan_edited_by_hand_before_its_first_apply_is_refused_naming_what_differs() {
    let dir = demo_workspace();
    let path = dir.path().join(PLAN);
    let original = std::fs::read_to_string(&path).unwrap();
    let escalated = original
        .replace(
            "\"role_arn\": \"arn:aws:iam::111122223333:role/checkout-web\"",
            "\"role_arn\": \"arn:aws:iam::111122223333:role/ADMIN-escalated\"",
        )
        .replacen(
            ":sub\": \"system:serviceaccount:checkout:checkout-web\"",
            ":sub\": \"system:serviceaccount:checkout:*\"",
            1,
        );
    assert_ne!(escalated, original);
    std::fs::write(&path, &escalated).unwrap();
    for args in [
        &["--phase", "prepare", "--yes"][..],
        &["--phase", "prepare", "--dry-run"][..],
    ] {
        let output = rehearse(dir.path(), "apply", args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{err}");
        assert!(
            err.contains("is not the plan that its snapshot and settings give")
                && err.contains(
                    "step update-role-trust:arn:aws:iam::111122223333:role/checkout-web: changed"
                )
                && err.contains(":sub\": \"system:serviceaccount:checkout:*\"")
                && err.contains("field bindings: changed"),
            "{err}"
        );
    }
    assert!(!rehearsal(dir.path()).exists(), "nothing was done");
    std::fs::write(&path, &original).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// A plan records the version that wrote it. Another version's plan with the same content is
/// the same plan (same digest, applied); one whose content differs is refused saying which
/// version wrote it, so an operator knows to re-plan rather than look for a hand edit.
#[test]
fn a_plan_from_another_version_is_named_as_such_and_runs_when_its_content_is_the_same() {
    let dir = demo_workspace();
    let path = dir.path().join(PLAN);
    let original = std::fs::read_to_string(&path).unwrap();
    let writer = format!(
        "\"generator\": \"irsa-migrate {}\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(original.contains(&writer), "plan.json records its writer");
    let digest = |text: &str| {
        serde_json::from_str::<irsa_migrate::plan::Plan>(text)
            .unwrap()
            .digest()
    };
    let older = original.replace(&writer, "\"generator\": \"irsa-migrate 0.0.9\"");
    assert_eq!(
        digest(&older),
        digest(&original),
        "the writer is not content"
    );
    let changed = older.replacen(
        ":sub\": \"system:serviceaccount:checkout:checkout-web\"",
        ":sub\": \"system:serviceaccount:checkout:*\"",
        1,
    );
    std::fs::write(&path, &changed).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "it was written by irsa-migrate 0.0.9, and this is irsa-migrate {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{err}"
    );
    assert!(!rehearsal(dir.path()).exists(), "nothing was done");
    std::fs::write(&path, &older).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// A plan made from a snapshot with files the loader ignores (findings `unrecognized-input`,
/// which the migration's own snapshot does not repeat) is still the plan its snapshot gives.
#[test]
fn a_plan_from_a_snapshot_with_ignored_files_passes_the_plan_check() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("kube2iam");
    let output = run_in(
        dir.path(),
        &[
            "plan",
            "--snapshot",
            fixture.to_str().unwrap(),
            "--name",
            "k",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = std::fs::read_to_string(dir.path().join("migrations/k/plan.json")).unwrap();
    assert!(
        plan.contains("unrecognized-input"),
        "the fixture has an ignored file"
    );
    let output = run_in(
        dir.path(),
        &[
            "apply",
            "--plan",
            "migrations/k/plan.json",
            "--rehearse",
            "--phase",
            "prepare",
            "--yes",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
