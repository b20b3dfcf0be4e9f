//! Snapshots a plan must not take as given: an issuer EKS does not give, names that would leave
//! the migration directory, namespaces whose Namespace object is missing.

use std::path::Path;

use crate::support::{self, json, run_in, stderr};

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

/// A snapshot without its Namespace objects made every kiam workload "denied by namespace"
/// (issue 12): now each such namespace has its own finding, and none of its workloads is planned.
#[test]
fn namespaces_without_their_namespace_object_are_reported_and_not_planned() {
    let dir = tempfile::tempdir().unwrap();
    demo_snapshot_with(dir.path(), r#"{"resource": {}}"#);
    std::fs::remove_file(dir.path().join("snap/kubernetes/namespace.json")).unwrap();
    let output = support::plan_snapshot(dir.path(), "snap", &["--name", "x", "--output", "json"]);
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
