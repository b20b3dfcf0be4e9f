//! Rollout and cleanup waves on the real controllers: what is waited for, what times out, what
//! is rolled back, and what is never restarted (a webhook that would not inject, a held rollout).

use serde_json::{Value, json};

use crate::harness::{Cluster, PLAN, assert_same_objects};
use crate::support::{self, stderr, stdout};

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_workload_is_not_restarted_while_the_webhook_would_not_inject_its_role() {
    let cluster = Cluster::start();
    cluster.ready_for_rollout();
    // The webhook is registered with failurePolicy Ignore, as on EKS: with it down, new pods
    // would start without credentials. A server-side dry run shows that before any restart.
    cluster.kube.stop("pod-identity-webhook");
    let before = cluster.template("payments", "Deployment", "payments-worker");
    let output = cluster.apply("rollout", &["--wave-size", "2", "--rollout-timeout", "3"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "nothing changed, so not 4: {}",
        stderr(&output)
    );
    let error = stderr(&output);
    assert!(error.contains("server-side dry run"), "{error}");
    assert!(error.contains("has no AWS_ROLE_ARN"), "{error}");
    assert!(
        error.contains("no workload of this wave was restarted"),
        "{error}"
    );
    assert!(error.contains("nothing was written by this run"), "{error}");
    assert_eq!(
        cluster.template("payments", "Deployment", "payments-worker"),
        before,
        "nothing was written"
    );
    let status = cluster.ok(&["status", "--plan", PLAN, "-o", "json"]);
    let steps = support::json(&status)["steps"].clone();
    let pending = steps
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["phase"] == "rollout")
        .all(|s| s["state"] == "pending");
    assert!(pending, "{steps}");
    // With the webhook back, the same command goes through.
    cluster.kube.resume("pod-identity-webhook");
    let output = cluster.apply("rollout", &["--wave-size", "2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn pods_that_never_become_ready_time_out_and_stay_for_inspection_without_auto_rollback() {
    let cluster = Cluster::start();
    cluster.ready_for_rollout();
    // Without kwok (the nodes' kubelets), new pods are scheduled but never start.
    cluster.kube.stop("kwok");
    let output = cluster.apply("rollout", &["--rollout-timeout", "1", "--no-auto-rollback"]);
    assert_eq!(output.status.code(), Some(4), "{}", stdout(&output));
    let error = stderr(&output);
    assert!(error.contains("not rolled out within 1 s"), "{error}");
    assert!(error.contains("--no-auto-rollback"), "{error}");
    let template = cluster.template("checkout", "Deployment", "checkout-web");
    assert_eq!(
        template["metadata"]["annotations"]["irsa-migrate.io/irsa-role"],
        "arn:aws:iam::111122223333:role/checkout-web",
        "the wave was left in place"
    );
    // Rolled back by hand afterwards, it is as before.
    let output = cluster.run(&["rollback", "--plan", PLAN, "--phase", "rollout", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        cluster.template("checkout", "Deployment", "checkout-web")["metadata"]["annotations"]
            .get("irsa-migrate.io/irsa-role")
            .is_none()
    );
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_cleanup_wave_whose_pods_stop_being_ready_is_rolled_back_with_the_legacy_annotation() {
    let cluster = Cluster::start();
    cluster.ready_for_rollout();
    let output = cluster.apply("rollout", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let legacy = |namespace: &str, name: &str| {
        cluster.template(namespace, "Deployment", name)["metadata"]["annotations"]
            ["iam.amazonaws.com/role"]
            .clone()
    };
    let before = legacy("checkout", "checkout-web");
    assert!(before.is_string(), "rollout keeps the legacy annotation");
    // Without kiam's answer the pods no longer pass their readiness probe (an SDK too old for
    // web identity): the first cleanup wave must not be followed by a second.
    cluster.kube.stop("kwok");
    let output = cluster.apply("cleanup", &["--wave-size", "2", "--rollout-timeout", "1"]);
    assert_eq!(output.status.code(), Some(4), "{}", stdout(&output));
    let error = stderr(&output);
    assert!(error.contains("cleanup wave 1 did not complete"), "{error}");
    assert!(error.contains("not rolled out within 1 s"), "{error}");
    assert!(error.contains("were rolled back"), "{error}");
    let printed = stdout(&output);
    assert!(
        printed.contains("-- waiting for cleanup wave 1"),
        "{printed}"
    );
    assert!(!printed.contains("-- wave 2"), "the run stopped: {printed}");
    assert_eq!(
        legacy("checkout", "checkout-web"),
        before,
        "annotation restored"
    );
    // Once the pods are healthy again, cleanup goes through, wave by wave.
    cluster.kube.resume("kwok");
    let output = cluster.apply("cleanup", &["--wave-size", "2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("-- waiting for cleanup wave 2"));
    assert!(legacy("checkout", "checkout-web").is_null());
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_resumed_rollout_checks_the_wave_an_earlier_run_left_unchecked() {
    let cluster = Cluster::start();
    cluster.ready_for_rollout();
    // Without kwok (the nodes' kubelets), new pods are scheduled but never start.
    cluster.kube.stop("kwok");
    let waves = [
        "--wave-size",
        "2",
        "--no-auto-rollback",
        "--rollout-timeout",
        "2",
    ];
    let first = cluster.apply("rollout", &waves);
    assert_eq!(first.status.code(), Some(4), "{}", stdout(&first));
    // Run again: wave 1 is already applied, and is checked before wave 2 is touched.
    let again = cluster.apply("rollout", &waves);
    assert_eq!(again.status.code(), Some(4), "{}", stdout(&again));
    let text = stdout(&again);
    assert!(
        text.contains(
            "skipped          switch-service-account:payments/Deployment/payments-worker"
        ),
        "{text}"
    );
    assert!(!text.contains("-- wave 2"), "{text}");
    assert!(
        stderr(&again).contains("payments/Deployment/payments-worker"),
        "{}",
        stderr(&again)
    );
    assert!(
        cluster.template("checkout", "Deployment", "checkout-web")["metadata"]["annotations"]
            .get("irsa-migrate.io/irsa-role")
            .is_none(),
        "wave 2 was not touched"
    );
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_healthy_rollout_whose_old_pods_are_still_running_is_waited_for_not_rolled_back() {
    let cluster = Cluster::start();
    // New pods count as available only after 8 s: for that long, `availableReplicas` is made
    // of old pods, which run without the role until the controller scales them down.
    cluster.kube.edit(
        "Deployment",
        "checkout",
        "checkout-web",
        &json!({"spec": {"minReadySeconds": 8}}),
    );
    cluster
        .kube
        .wait_rolled_out(std::time::Duration::from_secs(60));
    cluster.ready_for_rollout();
    cluster.rolls_out("checkout/Deployment/checkout-web");
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn an_evicted_pod_does_not_fail_a_wave() {
    let cluster = Cluster::start();
    cluster.plan();
    // An evicted pod stays, phase Failed, until pod GC (12,500 terminated pods by default); it
    // was created before the account had a role, so it carries none.
    let deployment = cluster
        .kube
        .object("Deployment", Some("checkout"), "checkout-web")
        .unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "checkout-web-evicted", "namespace": "checkout", "labels": {"app": "checkout-web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout-web",
                                          "uid": deployment["metadata"]["uid"], "controller": true}]},
        "spec": {"nodeName": "kwok-node-0", "serviceAccountName": "checkout-web",
                 "containers": [{"name": "checkout-web", "image": "checkout-web"}]}});
    cluster
        .kube
        .kubectl_ok(&["create", "-f", "-"], Some(&pod.to_string()));
    cluster.kube.kubectl_ok(
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "pod/checkout-web-evicted",
            "-n",
            "checkout",
            "--timeout=30s",
        ],
        None,
    );
    cluster.kube.kubectl_ok(
        &["patch", "pod", "checkout-web-evicted", "-n", "checkout", "--subresource=status", "--type=merge",
          "-p", r#"{"status": {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}}"#],
        None,
    );
    for phase in ["prepare", "identity"] {
        let output = cluster.apply(phase, &[]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    let output = cluster.apply("rollout", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_workload_whose_rollout_is_held_is_not_planned_and_stays_as_it_is() {
    let cluster = Cluster::start();
    // A paused Deployment makes no new ReplicaSet: a template change would never reach its pods.
    cluster.kube.edit(
        "Deployment",
        "checkout",
        "checkout-web",
        &json!({"spec": {"paused": true}}),
    );
    let before = cluster.template("checkout", "Deployment", "checkout-web");
    let scan = cluster.run(&["scan", "--cluster", "demo", "-o", "json"]);
    assert!(
        support::has_finding(
            &support::json(&scan),
            "rollout-held",
            "checkout/checkout-web"
        ),
        "{:?}",
        support::findings(&support::json(&scan))
    );
    cluster.ready_for_rollout();
    let plan: Value =
        serde_json::from_slice(&std::fs::read(cluster.dir.path().join(PLAN)).unwrap()).unwrap();
    let skipped = plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "checkout-web")
        .unwrap_or_else(|| panic!("checkout-web not skipped: {:#}", plan["skipped"]));
    assert_eq!(skipped["reason"], "rollout-held");
    let output = cluster.apply("rollout", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        cluster.template("checkout", "Deployment", "checkout-web"),
        before,
        "never touched"
    );
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_rollout_held_after_planning_stops_its_wave_before_any_restart_saying_why() {
    let cluster = Cluster::start();
    cluster.ready_for_rollout();
    // Paused after the plan was made: found on the live object before the wave's first write.
    cluster.kube.edit(
        "Deployment",
        "checkout",
        "checkout-web",
        &json!({"spec": {"paused": true}}),
    );
    let before = cluster
        .kube
        .contents(&["Deployment", "StatefulSet", "DaemonSet", "CronJob"]);
    let started = std::time::Instant::now();
    let output = cluster.apply(
        "rollout",
        &["--rollout-timeout", "300", "--wave-size", "100"],
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "nothing changed: {}",
        stderr(&output)
    );
    let error = stderr(&output);
    assert!(
        error.contains("checkout/Deployment/checkout-web"),
        "{error}"
    );
    assert!(error.contains("kubectl rollout resume"), "{error}");
    assert!(error.contains("nothing was written"), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "judged at once, not after the 300 s timeout"
    );
    assert_same_objects(
        &before,
        &cluster
            .kube
            .contents(&["Deployment", "StatefulSet", "DaemonSet", "CronJob"]),
    );
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn pods_are_found_by_match_expressions_and_ownership_not_by_labels_alone() {
    let cluster = Cluster::start();
    let deployment = |name: &str, selector: Value, tier: &str, annotations: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": "checkout"},
               "spec": {"replicas": 2, "selector": selector,
                        "template": {"metadata": {"labels": {"app": "checkout-worker", "tier": tier}, "annotations": annotations},
                                     "spec": {"serviceAccountName": "checkout-web",
                                              "containers": [{"name": "worker", "image": "checkout-worker:1"}]}}}})
    };
    // The worker selects its pods with an expression; a canary without a role overlaps its
    // labels (`app=checkout-worker`), so a selector of matchLabels alone would find its pods too.
    cluster.kube.apply(&[
        deployment(
            "checkout-worker",
            json!({"matchLabels": {"app": "checkout-worker"},
                   "matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend"]}]}),
            "backend",
            json!({"iam.amazonaws.com/role": "checkout-web"}),
        ),
        deployment(
            "checkout-worker-canary",
            json!({"matchLabels": {"app": "checkout-worker", "tier": "canary"}}),
            "canary",
            json!({}),
        ),
    ]);
    cluster
        .kube
        .wait_rolled_out(std::time::Duration::from_secs(60));
    cluster.ready_for_rollout();
    cluster.rolls_out("checkout/Deployment/checkout-worker");
}
