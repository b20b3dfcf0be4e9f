//! Evidence before decommission, live: the tool reads CloudTrail through the real SDK from a
//! test double that serves `LookupEvents` as botocore's model defines it (moto has none), in the
//! cluster's region and us-east-1, page by page within CloudTrail's rate, and decommission holds
//! what the records do not clear.

use serde_json::Value;

use crate::harness::{Cluster, PLAN};
use crate::support::cloudtrail::CloudTrail;
use crate::support::trail::{MIGRATED, OTHER_CLUSTER_KIAM_IP, kiam_assumes, web_identity};
use crate::support::{stderr, stdout};

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn evidence_is_read_from_cloudtrail_page_by_page_within_its_rate_and_holds_decommission() {
    let cluster = Cluster::start();
    cluster.plan();
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.dir.path().join(PLAN)).unwrap())
            .unwrap();
    let provider = plan["cluster"]["oidc_provider_arn"].as_str().unwrap();
    let trail = CloudTrail::start();
    for (index, (role, subject)) in MIGRATED.iter().enumerate() {
        trail.record(
            "eu-west-1",
            web_identity(&format!("w{index}"), role, subject, provider, 3600),
        );
    }
    // payments-worker's pods assume their role every few minutes: three pages of 50.
    for index in 0..120 {
        let (role, subject) = MIGRATED[3];
        trail.record(
            "eu-west-1",
            web_identity(
                &format!("p{index}"),
                role,
                subject,
                provider,
                7200 + index * 300,
            ),
        );
    }
    // This cluster's kiam server still hands out checkout-web's credentials, through the global
    // endpoint; another cluster's, sharing the kiam server role, data-ingest's, two days ago.
    let kiam_server = cluster.pod_ip("kube-system", "kiam-server-");
    trail.record(
        "us-east-1",
        kiam_assumes("k1", "checkout-web", &kiam_server, 1800),
    );
    trail.record(
        "us-east-1",
        kiam_assumes("k2", "data-ingest", OTHER_CLUSTER_KIAM_IP, 2 * 86_400),
    );
    // The same service account of another cluster proves nothing for this one.
    let (_, subject) = MIGRATED[4];
    let elsewhere =
        "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/0THERCLUSTER";
    trail.record(
        "eu-west-1",
        web_identity("x1", "prometheus", subject, elsewhere, 600),
    );

    let output = cluster
        .with_evidence(&["evidence", "--plan", PLAN, "-o", "json"])
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", trail.url())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let evidence: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let role = |name: &str| -> Value {
        evidence["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["role"].as_str().unwrap().ends_with(&format!("/{name}")))
            .unwrap_or_else(|| panic!("{name} in {evidence}"))
            .clone()
    };
    assert_eq!(role("checkout-web")["verdict"], "legacy-in-use");
    assert_eq!(role("checkout-web")["legacy"]["count"], 1);
    assert_eq!(role("data-ingest")["verdict"], "used-elsewhere");
    assert_eq!(
        role("data-ingest")["elsewhere"]["sessions"][0],
        format!("kiam-kiam from {OTHER_CLUSTER_KIAM_IP}")
    );
    assert_eq!(evidence["findings"][0]["code"], "legacy-used-elsewhere");
    assert_eq!(role("payments-worker")["verdict"], "ready");
    assert_eq!(
        role("payments-worker")["service_accounts"][0]["web_identity"]["count"],
        121,
        "every page was read"
    );
    assert_eq!(
        role("prometheus")["service_accounts"][0]["web_identity"]["count"],
        1
    );
    let (requests, throttled) = trail.requests();
    assert!(requests >= 6, "{requests} lookups");
    assert_eq!(throttled, 0, "the reader stays within two lookups a second");

    // A snapshot keeps the same reading, judged as of its end.
    let output = cluster
        .with_evidence(&[
            "snapshot",
            "--out",
            "with-trail",
            "--cluster",
            "demo",
            "--cloudtrail-since",
            "7d",
        ])
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", trail.url())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("; 128 CloudTrail role assumption(s)"),
        "{}",
        stdout(&output)
    );
    let output = cluster
        .with_evidence(&[
            "evidence",
            "--plan",
            PLAN,
            "--snapshot",
            "with-trail",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let offline: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let verdicts = |evidence: &Value| -> Vec<Value> {
        evidence["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| serde_json::json!([r["role"], r["verdict"]]))
            .collect()
    };
    assert_eq!(verdicts(&offline), verdicts(&evidence));

    // A dry run of every phase: decommission, judged by the pods running now, would remove all
    // but checkout-web's and data-ingest's legacy trust.
    let output = cluster
        .with_evidence(&[
            "apply",
            "--plan",
            PLAN,
            "--phase",
            "all",
            "--dry-run",
            "--patch-owned",
        ])
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", trail.url())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(
        error.contains("decommission held for 2 step(s)")
            && error.contains("remove-legacy-trust:arn:aws:iam::111122223333:role/checkout-web")
            && error.contains("remove-legacy-trust:arn:aws:iam::111122223333:role/data-ingest: assumed through the legacy path 1 time(s) in the window by sessions no pod of this cluster explains"),
        "{error}"
    );
}
