//! What `plan`, `diff`, `demo` and `snapshot` print and write: the committed worked example, the
//! plan and report, diffs and their colours, usage errors, escapes shown not run, file modes.

use std::path::Path;

use crate::support::{fixture, json, plan_snapshot, run_in, stderr, stdout};

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
    let output = plan_snapshot(dir.path(), fixture.to_str().unwrap(), &["--color", "never"]);
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
    // stacks.json: the CloudFormation stack that made shipping-labels is its trust's owner.
    let owners: Vec<(&str, &serde_json::Value)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["target"]["arn"] == "arn:aws:iam::210987654321:role/shipping-labels")
        .map(|s| (s["phase"].as_str().unwrap(), &s["owner"]))
        .collect();
    let stack = serde_json::json!({"type": "cloudformation", "stack": "shipping-iam"});
    assert_eq!(owners, vec![("prepare", &stack), ("decommission", &stack)]);
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
