//! The whole migration of the demo, live: snapshot, plan, apply of every phase, and a rollback
//! that restores both servers as they were.

use serde_json::Value;

use crate::harness::{
    Cluster, DECLARED, IRSA_ROLE, PAGED_SCAN, PLAN, assert_same_objects, documented_permissions,
    statuses,
};
use crate::support::{self, stderr, stdout};

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn end_to_end_snapshot_plan_apply_all_and_rollback_all_restore_both_servers() {
    let cluster = Cluster::start();
    let original_objects = cluster.kube.contents(DECLARED);
    let original_trust = cluster.moto.trust("checkout-web");

    // A live scan reads the same cluster as the embedded demo (IAM through the API, URL-encoded
    // documents; Kubernetes lists without item kinds, paginated).
    let live = cluster.ok(PAGED_SCAN);
    let demo = cluster.ok(&["scan", "--demo", "-o", "json"]);
    assert_eq!(
        statuses(&support::json(&live)),
        statuses(&support::json(&demo))
    );
    let requests = cluster.proxy.faults().requests.clone();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/pods?") && r.contains("continue=")),
        "pods were read page by page: {requests:#?}"
    );

    cluster.plan();
    // The apply identity runs with the documented role: the one `plan` wrote for this plan.
    let written = std::fs::read_to_string(
        cluster
            .dir
            .path()
            .join("migrations/live/permissions/kubernetes-apply-role.yaml"),
    )
    .unwrap();
    let written: Value = yaml_serde::from_str(&written).unwrap();
    assert_eq!(
        written,
        documented_permissions()[1],
        "the plan's apply role is the documented one"
    );
    let output = cluster.apply("all", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("-- wave 1"), "{text}");
    assert!(
        text.contains("rolled out       checkout/Deployment/checkout-web"),
        "{text}"
    );

    // Kubernetes: the account carries the role, the workload's new pods carry the credentials,
    // the legacy annotation is gone.
    let account = cluster
        .kube
        .object("ServiceAccount", Some("checkout"), "checkout-web")
        .unwrap();
    assert_eq!(
        account["metadata"]["annotations"][IRSA_ROLE],
        "arn:aws:iam::111122223333:role/checkout-web"
    );
    let template = cluster.template("checkout", "Deployment", "checkout-web");
    assert!(
        template["metadata"]["annotations"]
            .get("iam.amazonaws.com/role")
            .is_none(),
        "{template}"
    );
    let pods = cluster.kube.objects("Pod", Some("checkout"));
    let web: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "checkout-web")
        .collect();
    assert!(!web.is_empty());
    for pod in web {
        let env = &pod["spec"]["containers"][0]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "AWS_ROLE_ARN"
                    && e["value"] == "arn:aws:iam::111122223333:role/checkout-web"),
            "{pod}"
        );
    }
    // A workload that shared `default` with another role now runs as its own account.
    let worker = cluster.template("payments", "Deployment", "payments-worker");
    assert_eq!(
        worker["spec"]["serviceAccountName"],
        "default-payments-worker"
    );
    assert!(
        cluster
            .kube
            .object(
                "ServiceAccount",
                Some("payments"),
                "default-payments-worker"
            )
            .is_some()
    );
    // IAM: the role trusts the service account through the cluster's provider, and no longer
    // the legacy principal.
    let trust = cluster.moto.trust("checkout-web");
    let text = trust.to_string();
    assert!(
        text.contains("system:serviceaccount:checkout:checkout-web"),
        "{trust}"
    );
    assert!(!text.contains("kiam-server"), "{trust}");
    assert_eq!(cluster.moto.providers(), 1);

    // A live scan after the move sees the workload on IRSA.
    let after = cluster.ok(&["scan", "--cluster", "demo", "-o", "json"]);
    assert!(
        statuses(&support::json(&after))
            .contains(&("checkout/Deployment/checkout-web".into(), "irsa".into())),
        "{:?}",
        statuses(&support::json(&after))
    );

    let output = cluster.run(&["rollback", "--plan", PLAN, "--all", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_same_objects(&original_objects, &cluster.kube.contents(DECLARED));
    assert_eq!(cluster.moto.trust("checkout-web"), original_trust);
    assert_eq!(cluster.moto.providers(), 0);
}
