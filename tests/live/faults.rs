//! Faults the proxy injects between the tool and the API server: another writer between the
//! tool's read and its write, throttling, an expired `continue` token, a committed write whose
//! answer is lost.

use serde_json::{Value, json};

use crate::harness::{Cluster, IRSA_ROLE, PAGED_SCAN, PLAN, SOMEONE_ELSE, statuses};
use crate::support::fault_proxy::Edit;
use crate::support::{self, stderr, stdout};

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_concurrent_edit_is_never_overwritten() {
    let cluster = Cluster::start();
    cluster.plan();
    assert_eq!(cluster.apply("prepare", &[]).status.code(), Some(0));
    // Someone labels an account while the tool annotates it: the write is refused (409), the
    // tool reads again, sees its own fields untouched, and writes on top of the new version.
    cluster.someone_labels_before_next_write("checkout", "checkout-web");
    // Someone annotates another account with a different role at the same moment: the tool
    // stops rather than overwrite it.
    cluster.someone_reannotates_before_next_write("payments", "payments-api");
    let output = cluster.apply("identity", &[]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(
        error.contains("payments/ServiceAccount/payments-api"),
        "{error}"
    );
    assert!(error.contains("someone-else"), "{error}");
    let payments = cluster
        .kube
        .object("ServiceAccount", Some("payments"), "payments-api")
        .unwrap();
    assert_eq!(
        payments["metadata"]["annotations"][IRSA_ROLE], SOMEONE_ELSE,
        "the other writer's value stands"
    );
    let checkout = cluster
        .kube
        .object("ServiceAccount", Some("checkout"), "checkout-web")
        .unwrap();
    assert_eq!(checkout["metadata"]["labels"]["team"], "checkout");
    assert_eq!(
        checkout["metadata"]["annotations"][IRSA_ROLE],
        "arn:aws:iam::111122223333:role/checkout-web"
    );
    assert_eq!(
        cluster.requests_to("PATCH /api/v1/namespaces/checkout/serviceaccounts/checkout-web"),
        2,
        "one refused patch, one retry"
    );
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_delete_on_an_outdated_version_reads_again_and_never_removes_what_someone_else_changed() {
    let cluster = Cluster::start();
    cluster.plan();
    assert_eq!(cluster.apply("prepare", &[]).status.code(), Some(0));
    assert_eq!(cluster.apply("identity", &[]).status.code(), Some(0));
    // Rolling identity back deletes the accounts the tool created, with the version its
    // preflight read as the precondition. A label added since is not the step's business: the
    // delete is refused (409), the account read again and deleted on its new version.
    cluster.someone_labels_before_next_write("payments", "default-payments-worker");
    // An annotation the tool wrote, changed by someone else: the account is kept.
    cluster.someone_reannotates_before_next_write("payments", "default-payments-reconcile");
    let output = cluster.run(&["rollback", "--plan", PLAN, "--phase", "identity", "--yes"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(
        error.contains("payments/ServiceAccount/default-payments-reconcile"),
        "{error}"
    );
    let account = |name: &str| {
        cluster
            .kube
            .object("ServiceAccount", Some("payments"), name)
    };
    assert!(
        account("default-payments-worker").is_none(),
        "deleted on retry"
    );
    let kept = account("default-payments-reconcile").expect("kept");
    assert_eq!(kept["metadata"]["annotations"][IRSA_ROLE], SOMEONE_ELSE);
    assert_eq!(
        cluster.requests_to(
            "DELETE /api/v1/namespaces/payments/serviceaccounts/default-payments-worker"
        ),
        2,
        "one refused delete, one retry"
    );
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn an_account_someone_else_creates_first_is_kept_and_one_created_as_planned_counts_as_done() {
    let cluster = Cluster::start();
    cluster.plan();
    assert_eq!(cluster.apply("prepare", &[]).status.code(), Some(0));
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.dir.path().join(PLAN)).unwrap())
            .unwrap();
    let planned = |name: &str| {
        let id = format!("create-service-account:payments/ServiceAccount/{name}");
        let step = plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} in the plan"));
        let mut object = step["after"].clone();
        object["apiVersion"] = json!("v1");
        object["kind"] = json!("ServiceAccount");
        object
    };
    // Between the tool's read and its create, another writer creates both accounts: one exactly
    // as planned, one with another role.
    cluster.proxy.before_next_write(
        "/api/v1/namespaces/payments/serviceaccounts",
        "default-payments-reconcile",
        Edit::Create(planned("default-payments-reconcile")),
    );
    let mut other = planned("default-payments-worker");
    other["metadata"]["annotations"][IRSA_ROLE] = json!(SOMEONE_ELSE);
    cluster.proxy.before_next_write(
        "/api/v1/namespaces/payments/serviceaccounts",
        "default-payments-worker",
        Edit::Create(other),
    );
    let output = cluster.apply("identity", &[]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(
        error.contains("create-service-account:payments/ServiceAccount/default-payments-worker"),
        "{error}"
    );
    assert!(
        error.contains(
            "+    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/someone-else"
        ),
        "{error}"
    );
    let printed = stdout(&output);
    assert!(
        printed.contains(
            "applied          create-service-account:payments/ServiceAccount/default-payments-reconcile"
        ),
        "the account created as planned is not a conflict: {printed}"
    );
    let kept = cluster
        .kube
        .object(
            "ServiceAccount",
            Some("payments"),
            "default-payments-worker",
        )
        .unwrap();
    assert_eq!(kept["metadata"]["annotations"][IRSA_ROLE], SOMEONE_ELSE);
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_throttling_api_server_is_retried_with_backoff() {
    let cluster = Cluster::start();
    cluster.proxy.faults().throttle = 6;
    let output = cluster.ok(&["scan", "--cluster", "demo", "-o", "json"]);
    assert!(!statuses(&support::json(&output)).is_empty());
    let requests = cluster.proxy.faults().requests.clone();
    // Every list was answered in the end: 12 kinds and aws-auth, plus the six refused tries.
    assert_eq!(requests.len(), 13 + 6, "{requests:#?}");
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_list_whose_continue_token_expired_is_read_again_from_its_start() {
    let cluster = Cluster::start();
    let expected = statuses(&support::json(&cluster.ok(PAGED_SCAN)));
    // etcd compacted past the token between two pages: the server answers 410 Expired.
    cluster.proxy.faults().expire_continue = 2;
    let output = cluster.ok(PAGED_SCAN);
    assert_eq!(
        cluster.proxy.faults().expire_continue,
        0,
        "both tokens expired"
    );
    assert_eq!(statuses(&support::json(&output)), expected);
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_switch_whose_answer_was_lost_resumes_as_done_and_rolls_back_exactly() {
    let cluster = Cluster::start();
    cluster.ready_for_rollout();
    let before = cluster.template("payments", "Deployment", "payments-worker");
    // The server commits the switch, and the connection drops before its answer arrives.
    cluster.proxy.lose_answer_to(
        hyper::Method::PATCH,
        "/apis/apps/v1/namespaces/payments/deployments",
        "payments-worker",
    );
    let output = cluster.apply("rollout", &[]);
    assert_eq!(output.status.code(), Some(4), "{}", stdout(&output));
    assert_eq!(
        cluster.template("payments", "Deployment", "payments-worker")["spec"]["serviceAccountName"],
        "default-payments-worker",
        "the write was committed"
    );
    // Run again: the server wrote the deprecated `serviceAccount` alias back equal to the name,
    // and the step recognises its own finished state.
    let output = cluster.apply("rollout", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = cluster.run(&["rollback", "--plan", PLAN, "--phase", "rollout", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let after = cluster.template("payments", "Deployment", "payments-worker");
    assert_eq!(after["spec"], before["spec"]);
}
