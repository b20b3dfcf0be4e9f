//! Decommission on evidence, rehearsed: CloudTrail's `lookup-events` in the rehearsal's snapshot
//! decide which roles lose their legacy trust; the others are held, journaled and named.

use std::path::Path;

use serde_json::Value;

use crate::support::trail::{
    DEMO_KIAM_SERVER_IP, DEMO_PROVIDER, MIGRATED, OTHER_CLUSTER_KIAM_IP, kiam_assumes,
    kube2iam_assumes, lookup_events, web_identity,
};
use crate::support::{json, run_in, stderr, stdout};
use crate::workspace::{
    PLAN, demo_workspace, journal_entries, rehearsal, rehearse, rehearse_with_evidence,
};

fn record_trail(dir: &Path, us_east_1: &[Value], eu_west_1: &[Value]) {
    let trail = rehearsal(dir).join("cloudtrail");
    std::fs::create_dir_all(&trail).unwrap();
    for (region, records) in [("us-east-1", us_east_1), ("eu-west-1", eu_west_1)] {
        std::fs::write(
            trail.join(format!("{region}.json")),
            lookup_events(region, records).to_string(),
        )
        .unwrap();
    }
}

fn decommission(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--phase", "decommission", "--yes", "--as-owner"];
    args.extend_from_slice(extra);
    rehearse_with_evidence(dir, "apply", &args)
}

/// `evidence` of the demo plan, judged by the rehearsal's CloudTrail.
fn evidence(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "evidence",
        "--plan",
        PLAN,
        "--snapshot",
        "migrations/demo/rehearsal",
    ];
    args.extend_from_slice(extra);
    run_in(dir, &args)
}

fn held(dir: &Path) -> Vec<String> {
    journal_entries(dir)
        .iter()
        .filter(|e| e["event"] == "held")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn decommission_removes_only_what_cloudtrail_shows_unused_and_holds_the_rest() {
    let dir = demo_workspace();
    for phase in ["prepare", "identity", "rollout", "cleanup"] {
        let output = rehearse(dir.path(), "apply", &["--phase", phase, "--yes"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    let trust = |role: &str| -> String {
        let roles =
            std::fs::read_to_string(rehearsal(dir.path()).join("iam/111122223333/roles-0000.json"))
                .unwrap();
        let roles: Value = serde_json::from_str(&roles).unwrap();
        roles["RoleDetailList"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["RoleName"] == role)
            .map(|r| r["AssumeRolePolicyDocument"].to_string())
            .unwrap()
    };
    let before: Vec<String> = MIGRATED.iter().map(|(role, _)| trust(role)).collect();

    // No CloudTrail at all: nothing is proven, nothing is removed.
    let output = decommission(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("decommission held for 5 step(s)")
            && stderr(&output).contains("the CloudTrail of eu-west-1 and us-east-1 was not read"),
        "{}",
        stderr(&output)
    );
    assert_eq!(held(dir.path()).len(), 5);
    let after: Vec<String> = MIGRATED.iter().map(|(role, _)| trust(role)).collect();
    assert_eq!(after, before);

    // A week of CloudTrail: every service account on web identity; this cluster's kiam still
    // hands out checkout-web's credentials an hour ago, and payments-worker's four days ago;
    // another cluster's kiam, sharing the kiam server role, data-ingest's three days ago.
    let web: Vec<Value> = MIGRATED
        .iter()
        .enumerate()
        .map(|(i, (role, subject))| {
            web_identity(&format!("w{i}"), role, subject, DEMO_PROVIDER, 3600)
        })
        .collect();
    let kiam = [
        kiam_assumes("k1", "checkout-web", DEMO_KIAM_SERVER_IP, 3600),
        kiam_assumes("k2", "payments-worker", DEMO_KIAM_SERVER_IP, 4 * 86_400),
        kiam_assumes("k3", "data-ingest", OTHER_CLUSTER_KIAM_IP, 3 * 86_400),
    ];
    record_trail(dir.path(), &kiam, &web);
    let output = evidence(dir.path(), &["-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let verdicts: Vec<(String, String)> = json(&output)["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["role"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("checkout-web", "legacy-in-use"),
            ("data-ingest", "used-elsewhere"),
            ("payments-reconcile", "ready"),
            ("payments-worker", "ready"),
            ("prometheus", "ready"),
        ]
        .map(|(r, v)| (r.to_string(), v.to_string()))
    );
    let text = stdout(&evidence(dir.path(), &[]));
    assert!(
        text.contains("legacy-in-use  arn:aws:iam::111122223333:role/checkout-web")
            && text.contains("kiam-kiam (one of pods ")
            && text.contains("kube-system/kiam-server-6d5f8c7b9-q2w8r")
            && text.contains("used-elsewhere arn:aws:iam::111122223333:role/data-ingest")
            && text.contains("warning [legacy-used-elsewhere] Role arn:aws:iam::111122223333:role/data-ingest: arn:aws:iam::111122223333:role/kiam-server still assume(s) it")
            && text.contains("kiam-kiam from 10.200.4.9")
            && text.contains("3 of 5 role(s) ready; decommission would hold 2 step(s)"),
        "{text}"
    );

    let output = decommission(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(
        error.contains("decommission held for 2 step(s)")
            && error.contains("remove-legacy-trust:arn:aws:iam::111122223333:role/checkout-web: assumed through the legacy path 1 time(s)")
            && error.contains("remove-legacy-trust:arn:aws:iam::111122223333:role/data-ingest: assumed through the legacy path 1 time(s) in the window by sessions no pod of this cluster explains"),
        "{error}"
    );
    assert_eq!(trust("checkout-web"), before[0], "kiam still uses it");
    assert_eq!(
        trust("data-ingest"),
        before[1],
        "another cluster's kiam keeps its trust"
    );
    for (index, (role, _)) in MIGRATED.iter().enumerate().skip(2) {
        assert_ne!(
            trust(role),
            before[index],
            "{role} is ready and loses its legacy trust"
        );
        assert!(!trust(role).contains("kiam-server"), "{role}");
    }

    // The operator decides to go ahead anyway: said in the journal.
    let output = decommission(dir.path(), &["--without-evidence"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!trust("checkout-web").contains("kiam-server"));
    assert!(!trust("data-ingest").contains("kiam-server"));
    assert!(
        journal_entries(dir.path())
            .iter()
            .any(|e| e["event"] == "without-evidence"),
        "the journal says decommission went without evidence"
    );
}

/// A copy of the kube2iam fixture to edit, as `snapshot/` in a new directory.
fn kube2iam_snapshot() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snapshot");
    std::fs::create_dir_all(&snapshot).unwrap();
    for entry in std::fs::read_dir(crate::support::fixture("kube2iam")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, snapshot.join(path.file_name().unwrap())).unwrap();
    }
    (dir, snapshot)
}

#[test]
fn a_kube2iam_session_is_traced_to_the_pod_whose_address_it_names() {
    let (dir, snapshot) = kube2iam_snapshot();
    // One orders-api pod has an address of its own.
    let pods = snapshot.join("pods.json");
    let mut list: Value = serde_json::from_str(&std::fs::read_to_string(&pods).unwrap()).unwrap();
    for pod in list["items"].as_array_mut().unwrap() {
        if pod["metadata"]["name"] == "orders-api-2125b6b5b7-9bd49" {
            pod["status"]["podIP"] = "10.0.3.4".into();
        }
    }
    std::fs::write(&pods, list.to_string()).unwrap();
    // kube2iam on its node assumed orders-api for it an hour ago: `%x` of FNV-1a of 10.0.3.4.
    let record = kube2iam_assumes(
        "k1",
        "arn:aws:iam::210987654321:role/nodes/nodes-general",
        "arn:aws:iam::210987654321:role/orders-api",
        "1e4b0437-orders-api",
        "10.0.1.20",
        3600,
    );
    std::fs::write(
        snapshot.join("trail.json"),
        lookup_events("us-east-1", &[record]).to_string(),
    )
    .unwrap();
    let output = run_in(dir.path(), &["plan", "--snapshot", "snapshot"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The report judges the source's CloudTrail as of its reading.
    let report =
        std::fs::read_to_string(dir.path().join("migrations/shop-prod/report.md")).unwrap();
    assert!(
        report.contains("| `arn:aws:iam::210987654321:role/orders-api` | `legacy-in-use` |"),
        "{report}"
    );
    let plan = "migrations/shop-prod/plan.json";
    let output = run_in(
        dir.path(),
        &["evidence", "--plan", plan, "--snapshot", "snapshot"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("legacy-in-use  arn:aws:iam::210987654321:role/orders-api")
            && text.contains(
                "1e4b0437-orders-api (pod orders/orders-api-2125b6b5b7-9bd49 at 10.0.3.4) from 10.0.1.20"
            ),
        "{text}"
    );
}

#[test]
fn another_clusters_trust_statement_is_kept_through_every_phase() {
    let (dir, snapshot) = kube2iam_snapshot();
    // orders-api is shared with another cluster, whose pods reach it through IRSA already.
    let other = serde_json::json!({
        "Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::210987654321:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/0THERCLUSTER"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            "oidc.eks.eu-central-1.amazonaws.com/id/0THERCLUSTER:sub": "system:serviceaccount:orders:orders-api",
            "oidc.eks.eu-central-1.amazonaws.com/id/0THERCLUSTER:aud": "sts.amazonaws.com"}},
    });
    let iam = snapshot.join("iam.json");
    let mut details: Value = serde_json::from_str(&std::fs::read_to_string(&iam).unwrap()).unwrap();
    for role in details["RoleDetailList"].as_array_mut().unwrap() {
        if role["RoleName"] == "orders-api" {
            role["AssumeRolePolicyDocument"] = serde_json::json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:role/nodes/nodes-general"}, "Action": "sts:AssumeRole"},
                other,
            ]});
        }
    }
    std::fs::write(&iam, details.to_string()).unwrap();
    let output = run_in(dir.path(), &["plan", "--snapshot", "snapshot"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = "migrations/shop-prod/plan.json";
    let output = run_in(
        dir.path(),
        &[
            "apply",
            "--plan",
            plan,
            "--rehearse",
            "--phase",
            "all",
            "--yes",
            "--as-owner",
            "--without-evidence",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let trust = trust_of(dir.path(), "orders-api");
    let statements = trust["Statement"].as_array().unwrap();
    assert!(
        statements.contains(&other),
        "another cluster's statement stays: {trust}"
    );
    assert!(
        !trust.to_string().contains("nodes-general"),
        "the legacy principal is gone: {trust}"
    );
}

/// A role's trust policy as the kube2iam rehearsal left it.
fn trust_of(dir: &Path, role: &str) -> Value {
    let account = dir.join("migrations/shop-prod/rehearsal/iam/210987654321");
    for file in std::fs::read_dir(account).unwrap() {
        let path = file.unwrap().path();
        let details: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Some(found) = details["RoleDetailList"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["RoleName"] == role)
        {
            return found["AssumeRolePolicyDocument"].clone();
        }
    }
    panic!("{role} is in the rehearsal's IAM files")
}
