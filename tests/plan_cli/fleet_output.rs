//! What `plan` prints for a plan too large to read whole on a terminal, and how `diff` finds the
//! rest: a bounded number of diffs per phase and of namespaces, then the command that shows more.

use crate::generator;
use crate::support::{plan_snapshot, run_in, stderr, stdout};

/// A plan of 40 namespaces (about 2,000 pods, hundreds of steps a phase).
fn fleet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generator::generate(&dir.path().join("snapshot"), 2_000).unwrap();
    dir
}

#[test]
fn the_summary_bounds_the_service_accounts_of_large_namespaces() {
    // Regression: 20 namespaces of 100 Deployments printed every service account, 1,100 lines.
    let dir = tempfile::tempdir().unwrap();
    let apps = generator::Apps {
        count: 80,
        replicas: 1,
        accounts: 80,
        roles: 80,
    };
    generator::generate_shaped(
        &dir.path().join("snapshot"),
        &generator::Shape::apps(3, apps),
    )
    .unwrap();
    let output = plan_snapshot(
        dir.path(),
        "snapshot",
        &["--name", "large", "--color", "never"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let rows = text.lines().filter(|l| l.contains("(annotate)")).count();
    assert_eq!(rows, 100, "{text}");
    assert!(
        text.contains("  ... and 60 more service account(s) in team-00001\n"),
        "{text}"
    );
    assert!(
        text.contains("... and 1 more namespace(s): report.md lists every binding"),
        "{text}"
    );
}

#[test]
fn plan_prints_a_bounded_summary_and_diffs_and_says_how_to_see_the_rest() {
    let dir = fleet();
    let output = plan_snapshot(
        dir.path(),
        "snapshot",
        &["--name", "fleet", "--color", "never"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let plan: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("migrations/fleet/plan.json")).unwrap(),
    )
    .unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let rollout = steps.iter().filter(|s| s["phase"] == "rollout").count();
    assert!(rollout > 20, "{rollout} rollout steps");
    // Twenty diffs a phase, then how to see the others.
    let headers = text
        .lines()
        .filter(|l| l.starts_with("# ") && !l.starts_with("# ..."))
        .count();
    assert!(headers <= 2 * 20 * 5, "{headers} step headers");
    assert!(
        text.contains(&format!(
            "# ... and {} more step(s) of phase rollout: irsa-migrate diff --plan migrations/fleet/plan.json --phase rollout",
            rollout - 20
        )),
        "{text}"
    );
    assert!(
        text.contains("more namespace(s): report.md lists every binding"),
        "{text}"
    );
    let lines = text.lines().count();
    assert!(lines < 2_000, "{lines} lines");

    // More on request.
    let output = plan_snapshot(
        dir.path(),
        "snapshot",
        &["--name", "fleet", "--color", "never", "--diffs", "100000"],
    );
    assert!(!stdout(&output).contains("more step(s) of phase"));
}

#[test]
fn diff_shows_the_steps_of_a_namespace_a_kind_or_an_id() {
    let dir = fleet();
    let output = plan_snapshot(dir.path(), "snapshot", &["--name", "fleet"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan_path = "migrations/fleet/plan.json";
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(plan_path)).unwrap())
            .unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let namespace = steps
        .iter()
        .find_map(|s| s["target"]["namespace"].as_str())
        .unwrap()
        .to_string();
    let restarts: Vec<&str> = steps
        .iter()
        .filter(|s| s["kind"] == "restart-workload" && s["target"]["namespace"] == namespace)
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(!restarts.is_empty());

    let diff = |args: &[&str]| {
        let mut all = vec!["diff", "--plan", plan_path, "--color", "never"];
        all.extend_from_slice(args);
        run_in(dir.path(), &all)
    };
    let output = diff(&["--namespace", &namespace, "--kind", "restart-workload"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let shown: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.starts_with("restart-workload:"))
        .collect();
    assert_eq!(shown, restarts, "{text}");
    assert!(text.contains("== phase rollout"), "{text}");
    assert!(
        !text.contains("== phase prepare"),
        "phases with nothing selected are left out"
    );

    let one = restarts[0];
    let text = stdout(&diff(&["--step", one]));
    let headers: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# ")).collect();
    assert_eq!(headers.first(), Some(&one), "{text}");
    assert_eq!(
        text.matches("\n# ").count(),
        2,
        "the step's id and description: {text}"
    );

    let output = diff(&["--step", "restart-workload:nowhere/Deployment/nothing"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--step \"restart-workload:nowhere/Deployment/nothing\"")
            && stderr(&output).contains("has no such step"),
        "{}",
        stderr(&output)
    );
    let output = diff(&["--kind", "restart"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown kind is a usage error"
    );
    assert!(
        stderr(&output).contains("restart-workload"),
        "{}",
        stderr(&output)
    );
}
