//! Owned objects, live: the demo's role made by eksctl (its tags), the service account and
//! Deployment of a Helm release and the Deployment of an Argo CD application are left to their
//! owners. The test plays each owner: it merges the exported component into the owner's
//! manifest (`kubectl kustomize`) and applies it as the owner's sync would (its own field
//! manager), or makes the exported trust policy with its own IAM call; the tool detects it,
//! journals it as the owner's, checks the owners' rollout, and refuses to decommission a role
//! whose workload an owner reverted. A role a CloudFormation stack made is the stack's.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use serde_json::{Value, json};

use crate::harness::{Cluster, PLAN};
use crate::support::{stderr, stdout};

const ROLE_TRUST: &str = "update-role-trust:arn:aws:iam::111122223333:role/data-ingest";
const HELM_ANNOTATION: &str = "annotate-service-account:payments/ServiceAccount/payments-api";
const HELM_RESTART: &str = "restart-workload:payments/Deployment/payments-api";
const ARGO_RESTART: &str = "restart-workload:checkout/Deployment/checkout-web";

/// The plan's step `id`.
fn step(cluster: &Cluster, id: &str) -> Value {
    let plan: Value = serde_json::from_str(
        &std::fs::read_to_string(cluster.dir.path().join(PLAN)).expect("the plan"),
    )
    .expect("the plan is JSON");
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("the plan has step {id}"))
        .clone()
}

/// A Kubernetes step's target as its owner's manifest has it: the object as it is, without what
/// the server adds.
fn manifest(cluster: &Cluster, step: &Value, kind: &str) -> Value {
    let target = &step["target"];
    let name = target["name"].as_str().unwrap();
    let live = cluster
        .kube
        .object(kind, target["namespace"].as_str(), name)
        .unwrap_or_else(|| panic!("{kind} {name} exists"));
    let metadata = &live["metadata"];
    let mut object = json!({
        "apiVersion": live["apiVersion"],
        "kind": live["kind"],
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "labels": metadata["labels"],
            "annotations": metadata["annotations"],
        },
    });
    if !live["spec"].is_null() {
        object["spec"] = live["spec"].clone();
    }
    object
}

/// The manifest with `fragment` merged in, as an owner's old (or hand-made) manifest has it.
fn owners_object(cluster: &Cluster, step: &Value, kind: &str, fragment: &Value) -> Value {
    let mut object = manifest(cluster, step, kind);
    irsa_migrate::json::merge(&mut object, fragment);
    object
}

/// The manifest as the owner's kustomization renders it once it merged the exported component
/// `export/kubernetes/<owner>/<phase>`: `kubectl kustomize` over the manifest as its base.
fn exported(cluster: &Cluster, step: &Value, kind: &str, owner: &str, phase: &str) -> Value {
    let name = step["target"]["name"].as_str().unwrap();
    let component = cluster
        .dir
        .path()
        .join("export/kubernetes")
        .join(owner)
        .join(phase);
    assert!(
        component.join("kustomization.yaml").is_file(),
        "{}",
        component.display()
    );
    let base = cluster
        .dir
        .path()
        .join(format!("owner-{owner}-{phase}-{name}"));
    std::fs::create_dir(&base).unwrap();
    std::fs::write(
        base.join("object.json"),
        manifest(cluster, step, kind).to_string(),
    )
    .unwrap();
    std::fs::write(
        base.join("kustomization.yaml"),
        format!(
            // Kustomize takes components by relative path only.
            "resources:\n- object.json\ncomponents:\n- ../export/kubernetes/{owner}/{phase}\n"
        ),
    )
    .unwrap();
    let output = std::process::Command::new(cluster.kube.kubectl_path())
        .arg("kustomize")
        .arg(&base)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    yaml_serde::from_str(&stdout(&output)).expect("one object")
}

/// The role's owner (its stack, eksctl) sets the role's trust to the exported policy of `phase`
/// (`export/iam/<phase>/`), with the IAM call a stack update makes.
fn owner_sets_trust(cluster: &Cluster, role: &str, phase: &str) {
    let exported = cluster
        .dir
        .path()
        .join(format!("export/iam/{phase}/111122223333-{role}.json"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(
            cluster
                .moto
                .iam(&runtime)
                .update_assume_role_policy()
                .role_name(role)
                .policy_document(std::fs::read_to_string(exported).expect("the exported trust"))
                .send(),
        )
        .unwrap();
}

fn apply_leaving_owners(cluster: &Cluster, phase: &str) -> std::process::Output {
    cluster
        .leaving_owners(&["apply", "--plan", PLAN, "--phase", phase, "--yes"])
        .output()
        .expect("the binary runs")
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn owned_changes_are_left_to_their_owners_detected_verified_and_kept_before_decommission() {
    let cluster = Cluster::start();
    cluster.plan();
    // What the owners merge: the export of the plan.
    cluster.ok(&["export", "--plan", PLAN, "--out", "export"]);

    // prepare: the eksctl-made role is eksctl's to change.
    let output = apply_leaving_owners(&cluster, "prepare");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("  eksctl (cluster demo), in the eksctl configuration"),
        "{}",
        stderr(&output)
    );
    let trust = step(&cluster, ROLE_TRUST);
    assert_eq!(cluster.moto.trust("data-ingest"), trust["before"]);
    // eksctl's stack updates the role's trust to the exported policy.
    owner_sets_trust(&cluster, "data-ingest", "1-prepare");
    let output = apply_leaving_owners(&cluster, "prepare");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("done by owner    {ROLE_TRUST}")),
        "{}",
        stdout(&output)
    );

    // identity: the Helm release's service account is annotated by its next upgrade.
    let output = apply_leaving_owners(&cluster, "identity");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "  Helm release payments/payments, in the release's chart values (or a post-renderer):\n    {HELM_ANNOTATION}: "
        )),
        "{}",
        stderr(&output)
    );
    let annotation = step(&cluster, HELM_ANNOTATION);
    let account = cluster
        .kube
        .object("serviceaccount", Some("payments"), "payments-api")
        .unwrap();
    assert!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_null(),
        "not annotated by the tool: {account}"
    );
    cluster.kube.apply_as(
        "helm",
        &[exported(
            &cluster,
            &annotation,
            "serviceaccount",
            "helm-release-payments-payments",
            "2-identity",
        )],
    );
    let output = apply_leaving_owners(&cluster, "identity");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("done by owner    {HELM_ANNOTATION}")),
        "{}",
        stdout(&output)
    );

    // rollout: the run waits for the Helm release and the Argo CD application; they sync while
    // it waits, and their rollout is checked as a wave of its own.
    let mut rollout = cluster
        .leaving_owners(&[
            "apply",
            "--plan",
            PLAN,
            "--phase",
            "rollout",
            "--yes",
            "--wait-for-owners",
            "240s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut lines = BufReader::new(rollout.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    while !seen.contains("-- waiting up to 240 s for the owners of 2 rollout step(s)") {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the run waits for the owners: {seen}"))
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(
        seen.contains(&format!(
            "awaits owner     {HELM_RESTART}  (Helm release payments/payments)"
        )) && seen.contains(&format!(
            "awaits owner     {ARGO_RESTART}  (Argo CD application checkout)"
        )),
        "{seen}"
    );
    let deployment = cluster
        .kube
        .object("deployment", Some("payments"), "payments-api")
        .unwrap();
    assert!(
        deployment["spec"]["template"]["metadata"]["annotations"]["irsa-migrate.io/irsa-role"]
            .is_null(),
        "the owned Deployment is not patched by the tool: {deployment}"
    );
    for (id, manager, owner) in [
        (HELM_RESTART, "helm", "helm-release-payments-payments"),
        (
            ARGO_RESTART,
            "argocd-controller",
            "argo-cd-application-checkout",
        ),
    ] {
        let restart = step(&cluster, id);
        cluster.kube.apply_as(
            manager,
            &[exported(
                &cluster,
                &restart,
                "deployment",
                owner,
                "3-rollout",
            )],
        );
    }
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let mut errors = String::new();
    rollout
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    let status = rollout.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{seen}{errors}");
    for id in [HELM_RESTART, ARGO_RESTART] {
        assert!(seen.contains(&format!("done by owner    {id}")), "{seen}");
    }
    assert!(
        seen.contains("(made by owners)")
            && seen.contains("rolled out       payments/Deployment/payments-api")
            && seen.contains("rolled out       checkout/Deployment/checkout-web"),
        "the owners' changes were verified as a wave: {seen}"
    );

    // cleanup, written by the tool this time (--patch-owned); then Argo CD syncs the old
    // manifest back (the legacy annotation returns), and decommission keeps that role's legacy
    // trust.
    let output = cluster.apply("cleanup", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let cleanup = step(
        &cluster,
        "remove-legacy-annotation:checkout/Deployment/checkout-web",
    );
    cluster.kube.apply_as(
        "argocd-controller",
        &[owners_object(
            &cluster,
            &cleanup,
            "deployment",
            &cleanup["before"],
        )],
    );
    let legacy_trust = cluster.moto.trust("checkout-web");
    let output = cluster.apply("decommission", &[]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let error = stderr(&output);
    assert!(
        error.contains("decommission refused for 1 role(s)")
            && error.contains("  arn:aws:iam::111122223333:role/checkout-web:\n    checkout/Deployment/checkout-web no longer reads as step remove-legacy-annotation:")
            && error.contains("its owner, Argo CD application checkout, must make it again"),
        "{error}"
    );
    assert_eq!(cluster.moto.trust("checkout-web"), legacy_trust);
    let trust = cluster.moto.trust("payments-worker").to_string();
    assert!(
        !trust.contains("kiam-server"),
        "the other roles were decommissioned: {trust}"
    );
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_role_its_cloudformation_stack_made_is_left_to_the_stack() {
    let cluster = Cluster::start();
    // The team's stack made payments-reconcile (CloudFormation does not tag what it makes).
    cluster
        .moto
        .move_into_stack("payments-reconcile", "payments-iam");
    cluster.plan();
    let stacks = std::fs::read_to_string(
        cluster
            .dir
            .path()
            .join("snapshot/iam/111122223333/stack-resources.json"),
    )
    .expect("the snapshot keeps the stack's roles");
    let stacks: Value = serde_json::from_str(&stacks).unwrap();
    assert_eq!(stacks["StackResources"][0]["StackName"], "payments-iam");
    let id = "update-role-trust:arn:aws:iam::111122223333:role/payments-reconcile";
    let owner = json!({"type": "cloudformation", "stack": "payments-iam"});
    assert_eq!(step(&cluster, id)["owner"], owner);
    assert_eq!(
        step(
            &cluster,
            "remove-legacy-trust:arn:aws:iam::111122223333:role/payments-reconcile"
        )["owner"],
        owner
    );
    // A live plan reads the same owner without a snapshot in between.
    let live = cluster.ok(&[
        "plan",
        "--cluster",
        "demo",
        "--name",
        "direct",
        "-o",
        "json",
    ]);
    let live: Value = serde_json::from_str(&stdout(&live)).unwrap();
    let direct = live["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id);
    assert_eq!(direct.map(|s| &s["owner"]), Some(&owner));

    cluster.ok(&["export", "--plan", PLAN, "--out", "export"]);
    let output = apply_leaving_owners(&cluster, "prepare");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("  CloudFormation stack payments-iam, in the stack's template"),
        "{}",
        stderr(&output)
    );
    let before = step(&cluster, id)["before"].clone();
    assert_eq!(cluster.moto.trust("payments-reconcile"), before);
    // moto's stack update leaves a role's trust as it was, so the stack's update is played as the
    // IAM call CloudFormation makes for it, with the exported document.
    owner_sets_trust(&cluster, "payments-reconcile", "1-prepare");
    owner_sets_trust(&cluster, "data-ingest", "1-prepare");
    let output = apply_leaving_owners(&cluster, "prepare");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("done by owner    {id}")),
        "{}",
        stdout(&output)
    );
}
