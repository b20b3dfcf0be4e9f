//! Drives `irsa-migrate scan` and `demo` on the embedded demo and the fixture snapshots.

mod support;

use std::collections::BTreeSet;

use support::*;

fn usage<'a>(scan: &'a serde_json::Value, namespace: &str, name: &str) -> &'a serde_json::Value {
    scan["usages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["namespace"] == namespace && u["name"] == name)
        .unwrap_or_else(|| panic!("no usage {namespace}/{name}"))
}

#[test]
fn demo_scan_reports_each_kiam_case_with_its_code() {
    let output = run(&["scan", "--demo", "--output", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let scan = json(&output);
    assert_eq!(scan["schema"], "irsa-migrate.scan/v1");
    assert_eq!(
        scan["legacy_principals"][0],
        "arn:aws:iam::111122223333:role/kiam-server"
    );
    let expected = [
        ("namespace-not-permitted", "payments/payments-fraud"),
        ("namespace-not-permitted", "tools/debug-shell"),
        ("role-not-found", "checkout/checkout-cache"),
        ("legacy-trust-missing", "checkout/checkout-legacy"),
        ("invalid-annotation", "search/search-indexer"),
        ("invalid-annotation", "search/search-api"),
        ("cross-account-role", "data/data-exporter"),
        ("role-unknown", "data/data-exporter"),
        ("external-id", "data/data-exporter"),
        ("shared-service-account", "payments/default"),
        ("host-network", "monitoring/node-exporter"),
        ("bare-pod", "tools/debug-shell"),
        ("job-immutable", "payments/payments-backfill"),
        ("managed-by-helm", "payments/payments-api"),
        ("managed-by-argocd", "checkout/checkout-web"),
        ("managed-by-flux", "data/data-compaction"),
        ("non-root-token-permission", "checkout/checkout-web"),
        ("already-irsa", "monitoring/grafana"),
        ("already-irsa", "monitoring/prometheus"),
        (
            "node-role-extra-permissions",
            "arn:aws:iam::111122223333:role/eks-node",
        ),
        (
            "node-role-assume-role",
            "arn:aws:iam::111122223333:role/eks-node",
        ),
        (
            "node-role-assume-role",
            "arn:aws:iam::111122223333:role/kiam-server",
        ),
        ("missing-oidc-provider", "demo"),
    ];
    for (code, subject) in expected {
        assert!(
            has_finding(&scan, code, subject),
            "missing {code} on {subject}; got {:#?}",
            findings(&scan)
        );
    }
    // Workloads that work today and are clean must not be flagged as broken.
    for (ns, name) in [
        ("payments", "payments-api"),
        ("payments", "payments-worker"),
        ("data", "data-ingest"),
    ] {
        assert_eq!(usage(&scan, ns, name)["works_today"], true, "{ns}/{name}");
        for code in [
            "namespace-not-permitted",
            "role-not-found",
            "legacy-trust-missing",
        ] {
            assert!(
                !has_finding(&scan, code, &format!("{ns}/{name}")),
                "{code} on {ns}/{name}"
            );
        }
    }
    // Scaled to zero and between CronJob runs: found from the workload, with no pods.
    assert_eq!(usage(&scan, "data", "data-ingest")["pods"], 0);
    assert_eq!(usage(&scan, "data", "data-compaction")["kind"], "CronJob");
    // A running Job of a CronJob is reported as the CronJob; the finished one is not counted.
    assert_eq!(usage(&scan, "payments", "payments-reconcile")["pods"], 1);
    // Role paths survive resolution.
    assert_eq!(
        usage(&scan, "data", "data-compaction")["legacy"]["arn"],
        "arn:aws:iam::111122223333:role/data/compaction"
    );
    // kiam strips one leading slash.
    assert_eq!(
        usage(&scan, "checkout", "checkout-cache")["legacy"]["arn"],
        "arn:aws:iam::111122223333:role/checkout-cache"
    );
    assert_eq!(usage(&scan, "monitoring", "prometheus")["status"], "both");
    assert_eq!(usage(&scan, "monitoring", "grafana")["status"], "irsa");
    // The kiam agents themselves are infrastructure, not usages.
    assert!(
        scan["usages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["namespace"] != "kube-system")
    );
    // Every finding has the documented shape.
    for finding in scan["findings"].as_array().unwrap() {
        for field in ["code", "severity", "message"] {
            assert!(finding[field].is_string(), "{finding}");
        }
        assert!(
            finding["subject"]["kind"].is_string() && finding["subject"]["name"].is_string(),
            "{finding}"
        );
    }
}

#[test]
fn kube2iam_fixture_follows_kube2iam_rules() {
    let dir = fixture("kube2iam");
    let output = run(&[
        "scan",
        "--snapshot",
        dir.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let scan = json(&output);
    // The node role from aws-auth has no path; the trust policies name it with its path.
    assert_eq!(
        scan["legacy_principals"][0],
        "arn:aws:iam::210987654321:role/nodes/nodes-general"
    );
    // Custom --iam-role-key, auto-discovered base ARN, URL-encoded trust policies.
    let api = usage(&scan, "orders", "orders-api");
    assert_eq!(
        api["legacy"]["arn"],
        "arn:aws:iam::210987654321:role/orders-api"
    );
    assert_eq!(api["works_today"], true);
    assert!(has_finding(
        &scan,
        "shared-service-account",
        "orders/orders"
    ));
    assert!(has_finding(
        &scan,
        "namespace-not-permitted",
        "orders/orders-admin"
    ));
    // No annotation under the custom key: the default role applies and bypasses restrictions,
    // even though the pod carries the default key kube2iam was told not to read.
    let old = usage(&scan, "shipping", "old-annotation");
    assert_eq!(old["legacy"]["source"], "default-role");
    assert_eq!(old["works_today"], true);
    assert!(has_finding(
        &scan,
        "default-role",
        "shipping/old-annotation"
    ));
    assert!(has_finding(&scan, "default-role", "orders/orders-sync"));
    // kube2iam keeps a leading slash: role//analytics-spark is not a role ARN.
    assert_eq!(
        usage(&scan, "analytics", "spark-driver")["legacy"]["arn"],
        "arn:aws:iam::210987654321:role//analytics-spark"
    );
    assert!(has_finding(
        &scan,
        "invalid-annotation",
        "analytics/spark-driver"
    ));
    assert!(has_finding(&scan, "external-id", "analytics/spark-driver"));
    // "ARN:" in upper case is used as is (kube2iam's check ignores case) and matches no glob.
    assert!(has_finding(
        &scan,
        "invalid-annotation",
        "shipping/legacy-tracker"
    ));
    assert!(has_finding(&scan, "webhook-missing", "shop-prod"));
    assert!(has_finding(
        &scan,
        "node-role-assume-role",
        "arn:aws:iam::210987654321:role/nodes/nodes-general"
    ));
    assert!(has_finding(
        &scan,
        "node-role-extra-permissions",
        "arn:aws:iam::210987654321:role/nodes/nodes-general"
    ));
    // notes.json is JSON but not a snapshot file; README.txt is not read at all.
    let unrecognized: Vec<_> = findings(&scan)
        .into_iter()
        .filter(|(c, _)| c == "unrecognized-input")
        .collect();
    assert_eq!(unrecognized.len(), 1, "{unrecognized:?}");
    assert!(unrecognized[0].1.ends_with("notes.json"));
}

#[test]
fn demo_and_kube2iam_fixture_cover_every_issue_finding_code() {
    let demo = json(&run(&["scan", "--demo", "--output", "json"]));
    let k2i = json(&run(&[
        "scan",
        "--snapshot",
        fixture("kube2iam").to_str().unwrap(),
        "--output",
        "json",
    ]));
    let seen: BTreeSet<String> = findings(&demo)
        .into_iter()
        .chain(findings(&k2i))
        .map(|(c, _)| c)
        .collect();
    for code in [
        "namespace-not-permitted",
        "role-not-found",
        "legacy-trust-missing",
        "cross-account-role",
        "shared-service-account",
        "default-role",
        "host-network",
        "bare-pod",
        "job-immutable",
        "managed-by-helm",
        "managed-by-argocd",
        "managed-by-flux",
        "external-id",
        "node-role-extra-permissions",
        "node-role-assume-role",
        "missing-oidc-provider",
        "webhook-missing",
        "already-irsa",
        "invalid-annotation",
        "non-root-token-permission",
    ] {
        assert!(seen.contains(code), "no fixture exercises {code}");
    }
}

#[test]
fn scan_json_is_deterministic() {
    let first = run(&["scan", "--demo", "--output", "json"]);
    let second = run(&["scan", "--demo", "--output", "json"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let usages = json(&first)["usages"].as_array().map_or(0, Vec::len);
    assert!(
        usages > 0,
        "the demo scan lists no usages: {}",
        stdout(&first)
    );
    assert_eq!(first.stdout, second.stdout);
}

#[test]
fn text_summary_groups_by_namespace_and_severity() {
    let output = run(&["demo"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("Cluster demo (account 111122223333, eu-west-1, Kubernetes 1.18)"),
        "{text}"
    );
    for needle in [
        "namespace payments",
        "WORKLOAD",
        "SERVICE ACCOUNT",
        "VERDICT",
        "errors",
        "warnings",
        "[role-not-found] StatefulSet checkout/checkout-cache",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // Errors come before warnings.
    assert!(text.find("errors").unwrap() < text.find("warnings").unwrap());
    // Progress never reaches a non-terminal stderr.
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn fail_on_turns_findings_into_exit_code_1() {
    let output = run(&["scan", "--demo", "--fail-on", "error"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("at or above --fail-on error"),
        "{}",
        stderr(&output)
    );
    // The report is still printed.
    assert!(stdout(&output).contains("namespace payments"));
}

#[test]
fn no_reachable_source_is_a_usage_error_that_names_the_fix() {
    // Without --snapshot or --demo the live cluster is read; with no kubeconfig to be found, the
    // error says where it looked and what to pass.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
        .arg("scan")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("/nonexistent/kubeconfig")
            && stderr(&output).contains("--kubeconfig")
            && stderr(&output).contains("--snapshot"),
        "{}",
        stderr(&output)
    );
    let output = run(&["scan", "--snapshot", "/nonexistent/dir"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("/nonexistent/dir"),
        "{}",
        stderr(&output)
    );
    let output = run(&["scan", "--demo", "--snapshot", "x"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "clap rejects conflicting sources"
    );
}

#[test]
fn malformed_snapshot_file_is_an_error_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pods.json"),
        "{\n  \"kind\": \"List\",\n  \"items\": [,]\n}\n",
    )
    .unwrap();
    let output = run(&["scan", "--snapshot", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("pods.json:3:13"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ns.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [unclosed\n",
    )
    .unwrap();
    let output = run(&["scan", "--snapshot", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("ns.yaml:"), "{}", stderr(&output));
    let empty = tempfile::tempdir().unwrap();
    let output = run(&["scan", "--snapshot", empty.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("docs/snapshot.md"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_annotation_values_never_panic() {
    // Hostile values in every field the scanner parses.
    let dir = tempfile::tempdir().unwrap();
    let kube2iam = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"kube2iam","namespace":"kube-system"},
      "spec":{"template":{"metadata":{},"spec":{"containers":[{"name":"k","image":"jtblin/kube2iam:0.11.2",
      "args":["--base-role-arn=not-an-arn","--namespace-restrictions","--namespace-restriction-format=regexp","--default-role"]}]}}}}"#;
    let ns = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x","annotations":{"iam.amazonaws.com/allowed-roles":"[\"((\", 7]"}}}"#;
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"x","annotations":{"iam.amazonaws.com/role":"arn:::::"}},
      "spec":{"containers":[{"name":"c"}]},"status":{"phase":"Running"}}"#;
    let role = r#"{"Role":{"Arn":"arn:aws:iam::111122223333:role/r","RoleName":"r","Path":"/","AssumeRolePolicyDocument":"%7B%22Statement%22%3A42%7D"}}"#;
    for (name, text) in [
        ("ds.json", kube2iam),
        ("ns.json", ns),
        ("pod.json", pod),
        ("role.json", role),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let output = run(&[
        "scan",
        "--snapshot",
        dir.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let scan = json(&output);
    assert!(
        has_finding(&scan, "legacy-agent-config", "kube-system/kube2iam"),
        "{:#?}",
        findings(&scan)
    );
    assert!(
        has_finding(&scan, "invalid-annotation", "x/p"),
        "{:#?}",
        findings(&scan)
    );
}

#[test]
fn broken_policy_encoding_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let role = r#"{"Role":{"Arn":"arn:aws:iam::111122223333:role/r","RoleName":"r","Path":"/","AssumeRolePolicyDocument":"%7B%2"}}"#;
    std::fs::write(dir.path().join("get-role.json"), role).unwrap();
    let output = run(&["scan", "--snapshot", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("get-role.json") && err.contains("URL-encoded"),
        "{err}"
    );
}

#[test]
fn completions_and_man_pages_are_printed_from_the_flags() {
    let output = run(&["completions", "bash"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let script = stdout(&output);
    assert!(
        script.contains("rollback") && script.contains("--snapshot"),
        "{script}"
    );
    let output = run(&["completions", "tcsh"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is bad usage"
    );
    let output = run(&["man"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = stdout(&output);
    assert!(
        page.contains(".TH irsa-migrate") && page.contains(".SH SUBCOMMANDS"),
        "{page}"
    );
    let output = run(&["man", "scan"]);
    assert!(
        stdout(&output).contains(".TH irsa-migrate-scan"),
        "{}",
        stdout(&output)
    );
    let output = run(&["man", "nope"]);
    assert_eq!(output.status.code(), Some(2));
}
