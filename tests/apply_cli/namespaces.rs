//! Runs limited to namespaces: only their steps, phase order per namespace, filters checked, and
//! cluster-wide steps left out unless asked for.

use crate::support::{json, stderr, stdout};
use crate::workspace::{assert_refused, demo_workspace, journal_entries, rehearse};

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
            && text.ends_with("1 changed, 0 already in place, 0 skipped, 1 made by their owners\n"),
        "{text}"
    );
    let output = rehearse(
        dir.path(),
        "apply",
        &["--phase", "identity", "--namespace", "data", "--yes"],
    );
    assert_refused(&output, &[oidc, "--include-cluster-wide"]);
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
