//! The documented least-privilege roles against the real RBAC: denied reads are findings,
//! refused writes change nothing, and the apply role reaches only what the plan names.

use serde_json::{Value, json};

use crate::harness::{Cluster, PLAN, assert_same_objects, documented_permissions, statuses};
use crate::support::{self, stderr};

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_denied_list_is_a_finding_not_the_end_of_the_scan_and_plan_refuses_without_consent() {
    let cluster = Cluster::start();
    // The read role without its batch rule: CronJobs and Jobs cannot be listed.
    let mut read = documented_permissions().remove(0);
    read["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|rule| rule["apiGroups"] != json!(["batch"]));
    cluster.kube.apply(&[read]);
    let output = cluster.run(&[
        "scan",
        "--cluster",
        "demo",
        "-o",
        "json",
        "--fail-on",
        "warning",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the warning decides: {}",
        stderr(&output)
    );
    let scan = support::json(&output);
    for resource in ["cronjobs.batch", "jobs.batch"] {
        assert!(
            support::has_finding(&scan, "read-denied", resource),
            "{:?}",
            support::findings(&scan)
        );
    }
    let found = statuses(&scan);
    assert!(
        found.contains(&("checkout/Deployment/checkout-web".into(), "legacy".into())),
        "{found:?}"
    );
    let refused = cluster.run(&["plan", "--cluster", "demo", "--name", "live"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    let error = stderr(&refused);
    assert!(
        error.contains("list cronjobs.batch in all namespaces was denied"),
        "{error}"
    );
    assert!(error.contains("--allow-incomplete"), "{error}");
    assert!(!cluster.dir.path().join(PLAN).exists(), "nothing written");
    cluster.ok(&[
        "plan",
        "--cluster",
        "demo",
        "--name",
        "live",
        "--allow-incomplete",
    ]);
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn denied_calls_name_verb_resource_and_namespace_and_a_refused_write_changes_nothing() {
    let cluster = Cluster::start();
    // The read role without its configmaps rule: aws-auth in kube-system cannot be read.
    let documented = documented_permissions();
    let mut read = documented[0].clone();
    read["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|rule| rule["resources"] != json!(["configmaps"]));
    cluster.kube.apply(&[read]);
    let scan = support::json(&cluster.run(&["scan", "--cluster", "demo", "-o", "json"]));
    let denied: Vec<&Value> = scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "read-denied")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0]["subject"]["namespace"], "kube-system");
    assert!(
        denied[0]["message"]
            .as_str()
            .unwrap()
            .contains("get configmaps in namespace kube-system was denied"),
        "{:#}",
        denied[0]
    );
    cluster.kube.apply(&documented[..1]);
    cluster.ready_for_rollout();
    // The apply role without its rules for workloads: the first template patch is refused by
    // RBAC, and the refusal says who may not do what where.
    let mut apply = documented[1].clone();
    apply["rules"].as_array_mut().unwrap().retain(|rule| {
        rule["apiGroups"] != json!(["apps"]) && rule["apiGroups"] != json!(["batch"])
    });
    cluster.kube.apply(&[apply]);
    let kinds = ["Deployment", "StatefulSet", "DaemonSet", "CronJob"];
    let before = cluster.kube.contents(&kinds);
    let output = cluster.apply("rollout", &[]);
    let error = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a refused write changed nothing: {error}"
    );
    assert!(
        error.contains(r#"User "irsa-migrate-apply" cannot patch resource ""#)
            && error.contains(r#"in the namespace ""#),
        "{error}"
    );
    assert!(error.contains("nothing was written"), "{error}");
    assert_same_objects(&before, &cluster.kube.contents(&kinds));
}

/// Regression (issue 15): `bind` on every role with `create` on clusterrolebindings was
/// cluster-admin, and `patch` reached every workload. The documented (the plan's) apply role lets
/// the API server refuse what the plan does not name.
#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn the_apply_role_cannot_bind_or_patch_what_the_plan_does_not_name() {
    let cluster = Cluster::start();
    let as_apply = |args: &[&str]| {
        support::control_plane::run_kubectl(
            cluster.kube.kubectl_path(),
            &cluster.apply_kubeconfig,
            args,
            None,
        )
        .expect("kubectl runs")
    };
    let refused = |args: &[&str]| {
        let output = as_apply(args);
        let error = stderr(&output);
        assert!(!output.status.success(), "{args:?} was allowed");
        assert!(error.contains("forbidden"), "{args:?}: {error}");
    };
    refused(&[
        "create",
        "clusterrolebinding",
        "escalate",
        "--clusterrole",
        "cluster-admin",
        "--serviceaccount",
        "payments:default",
    ]);
    refused(&[
        "create",
        "rolebinding",
        "-n",
        "kube-system",
        "escalate",
        "--clusterrole",
        "admin",
        "--serviceaccount",
        "payments:default",
    ]);
    refused(&[
        "annotate",
        "serviceaccount",
        "-n",
        "kube-system",
        "kiam-server",
        "eks.amazonaws.com/role-arn=arn:aws:iam::111122223333:role/admin",
    ]);
    refused(&["delete", "serviceaccount", "-n", "checkout", "checkout-web"]);
    // What the plan names is allowed: binding node-reader, as the identity phase's copies do.
    let output = as_apply(&[
        "create",
        "clusterrolebinding",
        "allowed",
        "--clusterrole",
        "node-reader",
        "--serviceaccount",
        "payments:default",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}
