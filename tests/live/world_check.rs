//! What apply checks of the world before its first write: the roles as planned, the plan's
//! cluster and issuer, the namespaces, accounts and workloads the plan binds, and the
//! credentials of every account it writes in.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::{Cluster, PLAN};
use crate::support::moto::Moto;
use crate::support::{self, stderr, stdout};

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_role_changed_between_plan_and_apply_stops_the_run_before_anything_is_written() {
    let cluster = Cluster::start();
    cluster.plan();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let edited = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/somebody"},"Action":"sts:AssumeRole"}]}"#;
    let update = cluster
        .moto
        .iam(&runtime)
        .update_assume_role_policy()
        .role_name("payments-worker")
        .policy_document(edited)
        .send();
    runtime.block_on(update).unwrap();
    let before = cluster.moto.trust("payments-api");
    let output = cluster.apply("prepare", &[]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(
        error.contains("payments-worker") && error.contains("nothing was written"),
        "{error}"
    );
    assert_eq!(
        cluster.moto.trust("payments-api"),
        before,
        "no other role was written"
    );
    assert_eq!(cluster.moto.providers(), 0);
}

/// The binary with `args` in `dir` against `moto` alone: no Kubernetes API (its kubeconfig does
/// not exist), so a run that got past the AWS checks would stop at connecting.
fn against_moto(moto: &Moto, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
        .args(args)
        .current_dir(dir)
        .envs(moto.env())
        .env("KUBECONFIG", dir.join("no-kubeconfig"))
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the binary runs")
}

/// Regression (issue 15): nothing compared the plan's cluster and issuer with the world before
/// the first live write; the demo plan (its snapshot's issuer) would have made every role trust
/// a provider of no cluster there is.
#[test]
#[ignore = "needs moto_server; scripts/test installs it"]
fn a_plan_for_a_cluster_or_issuer_the_world_does_not_have_is_refused_before_any_write() {
    let moto = Moto::start();
    moto.seed_demo_iam();
    let dir = tempfile::tempdir().unwrap();
    let output = support::run_in(dir.path(), &["demo"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = "migrations/demo/plan.json";
    let before = moto.trust("checkout-web");
    let refused = |expected: &[&str]| {
        for mode in ["--yes", "--dry-run"] {
            let output = against_moto(
                &moto,
                dir.path(),
                &["apply", "--plan", plan, "--phase", "prepare", mode],
            );
            let error = stderr(&output);
            assert_eq!(output.status.code(), Some(3), "{mode}: {error}");
            for needle in expected {
                assert!(error.contains(needle), "{mode}: {needle:?} in {error}");
            }
        }
        assert_eq!(moto.trust("checkout-web"), before, "no role was written");
        assert_eq!(moto.providers(), 0, "no provider was created");
        assert!(!dir.path().join("migrations/demo/journal.jsonl").exists());
    };
    // No cluster of the plan's name where the plan says it is.
    refused(&[
        "the plan is for EKS cluster demo in account 111122223333, region eu-west-1, and eks:DescribeCluster finds no such cluster there",
    ]);
    // A cluster of that name, with an issuer of its own (moto's), not the snapshot's.
    moto.create_cluster("demo");
    refused(&[
        "cluster arn:aws:eks:eu-west-1:111122223333:cluster/demo: its OIDC issuer is https://oidc.eks.eu-west-1.amazonaws.com/id/",
        "and the plan's is https://oidc.eks.eu-west-1.amazonaws.com/id/5E1D2C8A4F0B9C7D6E3A2B1C0D9E8F7A",
    ]);
}

/// Copies the snapshot `from` to `to` with namespace `namespace` renamed `renamed` in every
/// Kubernetes object: a snapshot of workloads the live cluster does not have.
fn rename_namespace(from: &Path, to: &Path, namespace: &str, renamed: &str) {
    for file in support::files_under(from) {
        let mut text = std::fs::read_to_string(from.join(&file)).unwrap();
        if file.starts_with("kubernetes") {
            text = text.replace(&format!("\"{namespace}\""), &format!("\"{renamed}\""));
        }
        let path = to.join(&file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Regression (issue 15): workloads existed only because the snapshot said so; prepare would
/// have trusted `system:serviceaccount:<ns>:<sa>` for a namespace anyone may create.
#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_binding_the_live_cluster_does_not_have_is_refused_before_any_write() {
    let cluster = Cluster::start();
    cluster.plan();
    let iam = cluster.iam_state();
    let refused = |plan: &str, phase: &str, object: &str| {
        let output = cluster.run(&["apply", "--plan", plan, "--phase", phase, "--yes"]);
        let error = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{error}");
        assert!(
            error.contains(&format!(
                "{object}: does not exist on the live cluster (the plan's snapshot says otherwise); nothing was done"
            )),
            "{error}"
        );
        assert_eq!(cluster.iam_state(), iam, "IAM was not written");
    };
    // A snapshot whose namespace `data` is called `warehouse`: planned, never applied.
    rename_namespace(
        &cluster.dir.path().join("snapshot"),
        &cluster.dir.path().join("hostile"),
        "data",
        "warehouse",
    );
    cluster.ok(&["plan", "--snapshot", "hostile", "--name", "hostile"]);
    refused(
        "migrations/hostile/plan.json",
        "prepare",
        "namespace warehouse",
    );
    // A service account the workloads use, gone from the live cluster since the snapshot.
    cluster.kube.kubectl_ok(
        &["delete", "serviceaccount", "-n", "checkout", "checkout-web"],
        None,
    );
    refused(PLAN, "prepare", "checkout/ServiceAccount/checkout-web");
    assert!(!cluster.journal().exists());
    // A workload that runs as another account than the plan's.
    cluster.kube.kubectl_ok(
        &["create", "serviceaccount", "-n", "checkout", "checkout-web"],
        None,
    );
    let switch = |account: &str| {
        cluster.kube.kubectl_ok(
            &[
                "set",
                "serviceaccount",
                "-n",
                "payments",
                "deployment/payments-api",
                account,
            ],
            None,
        );
    };
    switch("default");
    let output = cluster.run(&["apply", "--plan", PLAN, "--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "payments/Deployment/payments-api: runs as service account default on the live cluster, not payments-api"
        ),
        "{}",
        stderr(&output)
    );
    assert_eq!(cluster.iam_state(), iam, "IAM was not written");
    switch("payments-api");
    // What the plan has, the live cluster has: the check says so, in a dry run too.
    let output = cluster.ok(&["apply", "--plan", PLAN, "--phase", "prepare", "--dry-run"]);
    let text = stdout(&output);
    for line in [
        "checked          account 111122223333: written with the credentials of arn:aws:sts::111122223333:",
        "checked          cluster arn:aws:eks:eu-west-1:111122223333:cluster/demo: its OIDC issuer is the plan's",
        "checked          4 namespace(s) on the live cluster: 6 service account(s) and 7 workload(s) as the plan has them",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
}

/// Regression (issue 15): a cross-account step without `--account-profile` ran with the cluster
/// account's credentials against the same-named role there, and printed "applied".
#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn a_target_in_an_account_without_its_credentials_is_refused_and_written_with_its_own() {
    let cluster = Cluster::start();
    let (key, secret, token) = cluster.moto.credentials_in("444455556666");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let other =
        aws_sdk_iam::Client::new(&cluster.moto.sdk_config_as(&runtime, &key, &secret, &token));
    // The cross-account role data-exporter asks for, trusting the kiam server; and a role of the
    // same name in the cluster's account, which must never be written in its stead.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kiam-server"},"Action":"sts:AssumeRole"}]}"#;
    for iam in [&other, &cluster.moto.iam(&runtime)] {
        let create = iam
            .create_role()
            .role_name("data-exporter")
            .assume_role_policy_document(trust)
            .send();
        runtime.block_on(create).unwrap();
    }
    let (own_key, own_secret, own_token) = cluster.moto.credentials_in("111122223333");
    let credentials = cluster.dir.path().join("aws-credentials");
    std::fs::write(
        &credentials,
        format!(
            "[other]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\naws_session_token = {token}\n\
             [wrong]\naws_access_key_id = {own_key}\naws_secret_access_key = {own_secret}\naws_session_token = {own_token}\n"
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        cluster
            .command(args)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .output()
            .unwrap()
    };
    let output = run(&[
        "snapshot",
        "--out",
        "snapshot",
        "--cluster",
        "demo",
        "--account-profile",
        "444455556666=other",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    cluster.ok(&["plan", "--snapshot", "snapshot", "--name", "live"]);
    let planned = std::fs::read_to_string(cluster.dir.path().join(PLAN)).unwrap();
    assert!(
        planned.contains("update-role-trust:arn:aws:iam::444455556666:role/data-exporter"),
        "the plan writes in the other account"
    );
    let read_other = || {
        let get = other.get_role().role_name("data-exporter").send();
        runtime
            .block_on(get)
            .unwrap()
            .role()
            .unwrap()
            .assume_role_policy_document()
            .unwrap()
            .to_string()
    };
    let (other_before, same_name_before) = (read_other(), cluster.moto.trust("data-exporter"));
    let prepare = ["apply", "--plan", PLAN, "--phase", "prepare", "--yes"];
    for (extra, expected) in [
        (
            &[][..],
            "account 444455556666: the run writes 2 step(s) there, and no --account-profile gives credentials for it; the default credentials are arn:aws:sts::111122223333:",
        ),
        (
            &["--account-profile", "444455556666=wrong"][..],
            "account 444455556666: the credentials of --account-profile 444455556666=wrong act as arn:aws:sts::111122223333:",
        ),
    ] {
        let mut args = prepare.to_vec();
        args.extend_from_slice(extra);
        let output = run(&args);
        let error = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{extra:?}: {error}");
        assert!(error.contains(expected), "{extra:?}: {error}");
        assert_eq!(read_other(), other_before, "{extra:?}");
        assert_eq!(
            cluster.moto.trust("data-exporter"),
            same_name_before,
            "{extra:?}"
        );
        assert_eq!(cluster.moto.providers(), 0, "{extra:?}");
        assert!(!cluster.journal().exists(), "{extra:?}");
    }
    // With its own credentials, the other account's role is written there, and only there.
    let mut args = prepare.to_vec();
    args.extend(["--account-profile", "444455556666=other"]);
    let output = run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("checked          account 444455556666: written with the credentials of arn:aws:sts::444455556666:"),
        "{}",
        stdout(&output)
    );
    assert!(
        read_other().contains("system%3Aserviceaccount%3Adata%3Adata-exporter")
            || read_other().contains("system:serviceaccount:data:data-exporter"),
        "{}",
        read_other()
    );
    assert_eq!(cluster.moto.trust("data-exporter"), same_name_before);
}
