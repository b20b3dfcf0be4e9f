//! Drives `irsa-migrate plan`, `diff` and `demo`, and guards the committed worked example.

mod support;

use std::path::Path;

use support::*;

#[test]
fn committed_demo_migration_matches_what_the_code_produces() {
    // migrations/demo/ is the worked example in the repository; regenerate it with
    // `cargo run -- demo` when the planner changes on purpose.
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["demo"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/demo");
    for file in [
        "plan.json",
        "report.md",
        "permissions/kubernetes-apply-role.yaml",
        "permissions/aws-111122223333.json",
    ] {
        let produced =
            std::fs::read_to_string(dir.path().join("migrations/demo").join(file)).unwrap();
        let expected = std::fs::read_to_string(committed.join(file)).unwrap();
        if produced != expected {
            let diff = similar::TextDiff::from_lines(&expected, &produced)
                .unified_diff()
                .context_radius(3)
                .header("committed", "produced")
                .to_string();
            panic!(
                "migrations/demo/{file} is stale: run `cargo run -- demo` and commit it\n{diff}"
            );
        }
    }
    let text = stdout(&output);
    assert!(text.contains("Plan demo for cluster demo"), "{text}");
    assert!(
        text.contains("irsa-migrate diff --plan migrations/demo/plan.json"),
        "{text}"
    );
}

#[test]
fn plan_writes_the_plan_and_report_and_prints_diffs() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("kube2iam");
    let output = run_in(
        dir.path(),
        &[
            "plan",
            "--snapshot",
            fixture.to_str().unwrap(),
            "--color",
            "never",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("Plan shop-prod for cluster shop-prod"),
        "{text}"
    );
    assert!(text.contains("== phase prepare"), "{text}");
    assert!(
        text.contains("+++ arn:aws:iam::210987654321:role/orders-api (after)"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour when asked for none");
    let plan: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("migrations/shop-prod/plan.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(plan["schema"], "irsa-migrate.plan/v1");
    assert!(plan["fingerprint"].as_str().unwrap().starts_with("sha256:"));
    // orders-api and orders-events share service account "orders" with different roles.
    let bindings = plan["bindings"].as_array().unwrap();
    let created: Vec<&str> = bindings
        .iter()
        .filter(|b| b["service_account_action"] == "create")
        .map(|b| b["service_account"].as_str().unwrap())
        .collect();
    assert_eq!(created, vec!["orders-orders-api", "orders-orders-events"]);
    // The default role is granted today but not asked for: not migrated silently.
    let skipped = plan["skipped"].as_array().unwrap();
    let reason = |name: &str| {
        skipped
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["reason"].as_str().unwrap().to_string())
    };
    assert_eq!(reason("orders-sync").as_deref(), Some("default-role"));
    assert_eq!(
        reason("orders-admin").as_deref(),
        Some("namespace-not-permitted")
    );
    // kube2iam's custom annotation keys are what cleanup removes.
    assert_eq!(
        plan["legacy_annotations"],
        serde_json::json!(["iam.example.com/role", "iam.example.com/external-id"])
    );
    let report =
        std::fs::read_to_string(dir.path().join("migrations/shop-prod/report.md")).unwrap();
    for needle in [
        "# IRSA migration plan `shop-prod`",
        "```mermaid",
        "## Not migrated",
        "```diff",
        "## Findings",
        "http-put-response-hop-limit 1",
    ] {
        assert!(report.contains(needle), "report lacks {needle:?}");
    }
}

#[test]
fn plan_json_goes_to_stdout_and_is_byte_identical_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_in(
        dir.path(),
        &["plan", "--demo", "--output", "json", "--name", "a"],
    );
    let second = run_in(
        dir.path(),
        &["plan", "--demo", "--output", "json", "--name", "a"],
    );
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(first.stdout, second.stdout);
    let plan = json(&first);
    assert_eq!(plan["name"], "a");
    assert_eq!(
        std::fs::read(dir.path().join("migrations/a/plan.json")).unwrap(),
        first.stdout
    );
}

#[test]
fn diff_shows_one_phase_and_colours_on_request() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run_in(dir.path(), &["demo"]).status.code(), Some(0));
    let output = run_in(
        dir.path(),
        &[
            "diff",
            "--plan",
            "migrations/demo/plan.json",
            "--phase",
            "identity",
            "--color",
            "always",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("== phase identity") && !text.contains("== phase prepare"),
        "{text}"
    );
    assert!(text.contains("\x1b[32m+"), "green additions");
    assert!(
        text.contains("create-service-account:payments/ServiceAccount/default-payments-worker"),
        "{text}"
    );
}

#[test]
fn bad_plan_inputs_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["diff", "--plan", "nope.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("nope.json"), "{}", stderr(&output));
    std::fs::write(dir.path().join("bad.json"), "{\"schema\": \"other/v9\"}").unwrap();
    let output = run_in(dir.path(), &["diff", "--plan", "bad.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("bad.json"), "{}", stderr(&output));
    let output = run_in(
        dir.path(),
        &["plan", "--demo", "--trust-policy-limit", "5000"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("4096"), "{}", stderr(&output));
    // A snapshot without describe-cluster cannot be planned: the issuer is unknown.
    let snapshot = tempfile::tempdir().unwrap();
    std::fs::write(
        snapshot.path().join("ns.json"),
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}"#,
    )
    .unwrap();
    let output = run_in(
        dir.path(),
        &["plan", "--snapshot", snapshot.path().to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("describe-cluster"),
        "{}",
        stderr(&output)
    );
}

/// A copy of the demo snapshot in `dir/snap`, with `extra` added as `snap/extra.json`.
fn demo_snapshot_with(dir: &Path, extra: &str) {
    support::demo_snapshot(dir);
    std::fs::write(dir.join("snap/extra.json"), extra).unwrap();
}

/// Regression (issue 15): the snapshot's issuer was used as given, so `https://evil.example.com`
/// gave a plan that created that provider and trusted it from every migrated role, and
/// `https://*` one that trusted `oidc-provider/*`.
#[test]
fn a_snapshot_whose_issuer_eks_does_not_give_makes_no_plan_unless_issuer_any() {
    let dir = tempfile::tempdir().unwrap();
    support::demo_snapshot(dir.path());
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--snapshot", "snap", "--name", "hostile"];
        args.extend_from_slice(extra);
        run_in(dir.path(), &args)
    };
    for issuer in ["https://evil.example.com", "https://*"] {
        support::set_snapshot_issuer(dir.path(), issuer);
        let output = plan(&[]);
        let error = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{issuer}: {error}");
        assert!(
            error.contains(&format!("{issuer:?} is not an OIDC issuer EKS gives"))
                && error.contains("https://oidc.eks.eu-west-1.amazonaws.com/id/<ID>")
                && error.contains("--issuer-any"),
            "{error}"
        );
        assert!(
            !dir.path().join("migrations").exists(),
            "nothing is written"
        );
    }
    // A wildcard is no issuer at all, whatever the operator says.
    let output = plan(&["--issuer-any"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("oidc_issuer"),
        "{}",
        stderr(&output)
    );
    // An issuer of another form, accepted by name.
    support::set_snapshot_issuer(dir.path(), "https://evil.example.com");
    let output = plan(&["--issuer-any"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let written = std::fs::read_to_string(dir.path().join("migrations/hostile/plan.json")).unwrap();
    assert!(written.contains("\"oidc_issuer\": \"https://evil.example.com\""));
}

#[test]
fn a_traversal_namespace_in_a_snapshot_is_an_error_naming_file_and_object() {
    // Regression: the plan's snapshot copy was joined from input namespaces, so this namespace
    // wrote a file of the snapshot author's choosing outside the migration directory.
    let dir = tempfile::tempdir().unwrap();
    demo_snapshot_with(
        dir.path(),
        r#"{"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "evil", "namespace": "../../../../x"}}"#,
    );
    let output = run_in(
        dir.path(),
        &["plan", "--snapshot", "snap", "--name", "evil"],
    );
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(
        error.contains("extra.json") && error.contains("ServiceAccount") && error.contains("evil"),
        "{error}"
    );
    let outside: Vec<_> = support::files_under(dir.path())
        .into_iter()
        .filter(|f| !f.starts_with("snap"))
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the snapshot: {outside:?}"
    );
}

#[test]
fn a_traversal_kind_in_a_snapshot_never_names_a_file() {
    // Regression: an empty list's kind became a file name in the plan's snapshot copy.
    let dir = tempfile::tempdir().unwrap();
    demo_snapshot_with(
        dir.path(),
        r#"{"apiVersion": "v1", "kind": "../../../../zList", "metadata": {}, "items": []}"#,
    );
    let output = run_in(
        dir.path(),
        &["plan", "--snapshot", "snap", "--name", "evil"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let written = support::files_under(dir.path());
    let stray: Vec<_> = written
        .iter()
        .filter(|f| !f.starts_with("snap") && !f.starts_with("migrations/evil"))
        .collect();
    assert!(stray.is_empty(), "written outside the migration: {stray:?}");
    assert!(
        !written
            .iter()
            .any(|f| f.to_string_lossy().contains("z.json")),
        "{written:?}"
    );
}

#[test]
fn terminal_escapes_in_a_plan_are_shown_not_run() {
    // Regression: text from the input (here a step's description) reached stdout with its
    // escape sequences, which can hide or rewrite what the operator reads.
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["demo"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let path = dir.path().join("migrations/demo/plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    plan["steps"][0]["description"] = "create\u{1b}[8m hidden\u{9b}2K".into();
    std::fs::write(&path, serde_json::to_string(&plan).unwrap()).unwrap();
    for color in ["never", "always"] {
        let output = run_in(
            dir.path(),
            &[
                "diff",
                "--plan",
                "migrations/demo/plan.json",
                "--color",
                color,
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let text = stdout(&output);
        assert!(text.contains("create\\u001b[8m hidden\\u009b2K"), "{text}");
        assert!(!text.contains('\u{9b}'), "{text}");
        let escapes = text.matches('\u{1b}').count();
        let colours = text.matches("\u{1b}[").count() - text.matches("\u{1b}[8m").count();
        assert_eq!(escapes, colours, "an escape from the plan reached stdout");
    }
}

#[cfg(unix)]
#[test]
fn migration_directories_are_readable_by_their_owner_only() {
    // Regression: plan.json, report.md and the snapshot beside them were 0644 in 0755 directories.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["demo"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    for directory in [
        "migrations",
        "migrations/demo",
        "migrations/demo/snapshot/kubernetes",
    ] {
        assert_eq!(mode(directory), 0o700, "{directory}");
    }
    for file in [
        "migrations/demo/plan.json",
        "migrations/demo/report.md",
        "migrations/demo/snapshot/eks/describe-cluster.json",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

#[test]
fn snapshot_out_refuses_a_directory_that_holds_anything() {
    // Regression: `snapshot --out .` removed a working directory that held no kubernetes/ or
    // iam/. It is refused before the cluster is even read, and nothing in it is touched.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let output = run_in(
        dir.path(),
        &[
            "snapshot",
            "--out",
            ".",
            "--kubeconfig",
            "missing-kubeconfig",
        ],
    );
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(error.contains("not a new or empty directory"), "{error}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

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

fn rehearse_prepare(dir: &Path) {
    let output = run_in(
        dir,
        &[
            "apply",
            "--plan",
            "migrations/demo/plan.json",
            "--rehearse",
            "--phase",
            "prepare",
            "--yes",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// `plan` over an applied migration rewrote plan, report and snapshot with exit 0, and apply and
/// rollback then refused the plan: the way back was gone (issue 12).
#[test]
fn planning_over_a_migration_with_live_runs_exits_3_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run_in(dir.path(), &["demo"]).status.code(), Some(0));
    rehearse_prepare(dir.path());
    let migration = dir.path().join("migrations/demo");
    // A live journal as a live `apply --phase prepare` leaves it.
    std::fs::copy(
        migration.join("rehearsal/journal.jsonl"),
        migration.join("journal.jsonl"),
    )
    .unwrap();
    let before = tree(&migration);
    let output = run_in(
        dir.path(),
        &[
            "plan",
            "--demo",
            "--name",
            "demo",
            "--trust-policy-limit",
            "4096",
        ],
    );
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
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    std::fs::copy(
        migration.join("rehearsal/journal.jsonl"),
        migration.join("journal.jsonl"),
    )
    .unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run_in(dir.path(), &["demo"]).status.code(), Some(0));
    rehearse_prepare(dir.path());
    let migration = dir.path().join("migrations/demo");
    // Planning the same inputs again keeps the rehearsal: its journal still matches.
    assert_eq!(run_in(dir.path(), &["demo"]).status.code(), Some(0));
    assert!(migration.join("rehearsal/journal.jsonl").exists());
    let output = run_in(
        dir.path(),
        &[
            "plan",
            "--demo",
            "--name",
            "demo",
            "--trust-policy-limit",
            "4096",
        ],
    );
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
    rehearse_prepare(dir.path());
}

#[test]
fn planning_while_another_run_holds_the_migration_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run_in(dir.path(), &["demo"]).status.code(), Some(0));
    let before = std::fs::read(dir.path().join("migrations/demo/plan.json")).unwrap();
    let held = std::fs::File::create(dir.path().join("migrations/demo/.lock")).unwrap();
    held.try_lock().unwrap();
    let output = run_in(
        dir.path(),
        &[
            "plan",
            "--demo",
            "--name",
            "demo",
            "--trust-policy-limit",
            "4096",
        ],
    );
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

/// A snapshot without its Namespace objects made every kiam workload "denied by namespace"
/// (issue 12): now each such namespace has its own finding, and none of its workloads is planned.
#[test]
fn namespaces_without_their_namespace_object_are_reported_and_not_planned() {
    let dir = tempfile::tempdir().unwrap();
    demo_snapshot_with(dir.path(), r#"{"resource": {}}"#);
    std::fs::remove_file(dir.path().join("snap/kubernetes/_cluster/namespace.json")).unwrap();
    let output = run_in(
        dir.path(),
        &[
            "plan",
            "--snapshot",
            "snap",
            "--name",
            "x",
            "--output",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = json(&output);
    let codes: Vec<(String, String)> = support::findings(&plan);
    for namespace in ["checkout", "data", "payments", "search", "tools"] {
        assert!(
            codes.contains(&("namespace-not-captured".into(), namespace.into())),
            "{codes:#?}"
        );
    }
    assert!(
        !codes
            .iter()
            .any(|(code, _)| code == "namespace-not-permitted"),
        "{codes:#?}"
    );
    let skipped = plan["skipped"].as_array().unwrap();
    assert!(!skipped.is_empty());
    assert!(
        skipped
            .iter()
            .all(|s| s["reason"] == "namespace-not-captured"),
        "{skipped:#?}"
    );
    assert!(plan["bindings"].as_array().unwrap().is_empty());
    let kubernetes_steps = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["phase"] == "identity" || s["phase"] == "rollout")
        .count();
    assert_eq!(kubernetes_steps, 0);
    // Whether they use kiam today cannot be told, so decommission keeps the legacy path.
    assert!(
        !plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["phase"] == "decommission"),
        "{:#?}",
        plan["decommission"]
    );
}
