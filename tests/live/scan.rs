//! Reading the live cluster: `snapshot` and `scan` as an operator runs them (kubeconfig
//! contexts, other accounts' profiles, CONNECT proxies, the documented shell commands).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Cluster, statuses, write_kubeconfig};
use crate::support::cloudtrail::CloudTrail;
use crate::support::trail::kiam_assumes;
use crate::support::{self, stderr, stdout};

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn snapshot_names_what_it_read_and_refuses_to_mix_two_readings() {
    let cluster = Cluster::start();
    let kubeconfig = cluster.kubeconfig.to_string_lossy().into_owned();
    let output = cluster.ok(&[
        "snapshot",
        "--out",
        "snap",
        "--cluster",
        "demo",
        "--kubeconfig",
        &kubeconfig,
        "--context",
        "test",
    ]);
    let text = stdout(&output);
    assert!(text.contains("wrote snap:"), "{text}");
    assert!(text.contains("cluster demo"), "{text}");
    // Only the roles the cluster references were read, by name; scanning them finds what
    // reading the whole account finds.
    assert!(text.contains("referenced, read by name"), "{text}");
    cluster.ok(&[
        "snapshot",
        "--out",
        "whole",
        "--cluster",
        "demo",
        "--iam-read",
        "account",
    ]);
    let by_name = cluster.ok(&["scan", "--snapshot", "snap", "-o", "json"]);
    let whole = cluster.ok(&["scan", "--snapshot", "whole", "-o", "json"]);
    assert_eq!(
        support::findings(&support::json(&by_name)),
        support::findings(&support::json(&whole))
    );
    assert_eq!(
        statuses(&support::json(&by_name)),
        statuses(&support::json(&whole))
    );
    assert!(cluster.dir.path().join("snap/kubernetes").is_dir());
    let again = cluster.run(&["snapshot", "--out", "snap"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("not a new or empty directory"),
        "{}",
        stderr(&again)
    );
    // An EKS context names the cluster: no --cluster needed.
    let eks = write_kubeconfig(
        &cluster.kube,
        "scan",
        &cluster.proxy.url(),
        &cluster.dir.path().join("eks-kubeconfig"),
        "arn:aws:eks:eu-west-1:111122223333:cluster/demo",
    );
    let eks = eks.to_string_lossy().into_owned();
    let output = cluster.ok(&["snapshot", "--out", "auto", "--kubeconfig", &eks]);
    assert!(
        stdout(&output).contains("cluster demo"),
        "{}",
        stdout(&output)
    );
    // A context that does not exist is named in the error.
    let missing = cluster.run(&["scan", "--kubeconfig", &kubeconfig, "--context", "prod"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("prod"), "{}", stderr(&missing));
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn roles_in_another_account_are_read_through_its_profile() {
    let cluster = Cluster::start();
    let (key, secret, token) = cluster.moto.credentials_in("444455556666");
    // The other account holds the cross-account role the demo's data-exporter asks for.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = cluster.moto.sdk_config_as(&runtime, &key, &secret, &token);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kiam-server"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"c0ffee-data-exporter"}}}]}"#;
    let create = aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name("data-exporter")
        .assume_role_policy_document(trust)
        .send();
    runtime.block_on(create).unwrap();
    let credentials = cluster.dir.path().join("aws-credentials");
    std::fs::write(
        &credentials,
        format!(
            "[other]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\naws_session_token = {token}\n"
        ),
    )
    .unwrap();
    let scan = |extra: &[&str]| {
        let mut args = vec!["scan", "--cluster", "demo", "-o", "json"];
        args.extend_from_slice(extra);
        let output = Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
            .args(&args)
            .current_dir(cluster.dir.path())
            .envs(cluster.moto.env())
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        support::json(&output)
    };
    let without = scan(&[]);
    assert!(
        support::has_finding(&without, "role-unknown", "data/data-exporter"),
        "{:?}",
        support::findings(&without)
    );
    let with = scan(&["--account-profile", "444455556666=other"]);
    for code in ["role-unknown", "role-not-found"] {
        assert!(
            !support::has_finding(&with, code, "data/data-exporter"),
            "{:?}",
            support::findings(&with)
        );
    }
    // The role was read in its own account and trusts the kiam server: it works today.
    let usage = with["usages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "data-exporter")
        .unwrap();
    assert_eq!(usage["works_today"], true, "{usage}");
}

#[test]
#[ignore = "needs moto_server and the control plane; scripts/test builds and runs them"]
fn the_kubeconfig_proxy_url_and_https_proxy_are_used_as_kubectl_uses_them() {
    let cluster = Cluster::start();
    let connect = support::connect_proxy::ConnectProxy::start();
    let through = cluster.dir.path().join("kubeconfig-proxied");
    let text = std::fs::read_to_string(&cluster.kubeconfig)
        .unwrap()
        .replace(
            "    certificate-authority:",
            &format!(
                "    proxy-url: {}\n    certificate-authority:",
                connect.url()
            ),
        );
    std::fs::write(&through, text).unwrap();
    let through = through.to_string_lossy().into_owned();
    let output = cluster.ok(&[
        "scan",
        "--cluster",
        "demo",
        "--kubeconfig",
        &through,
        "-o",
        "json",
    ]);
    assert!(!statuses(&support::json(&output)).is_empty());
    let proxied = connect.tunnels.lock().unwrap().clone();
    assert!(
        !proxied.is_empty()
            && proxied
                .iter()
                .all(|t| *t == cluster.proxy.address.to_string()),
        "{proxied:?}"
    );
    let output = cluster
        .command(&["scan", "--cluster", "demo", "-o", "json"])
        .env("HTTPS_PROXY", connect.url())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        connect.tunnels.lock().unwrap().len() > proxied.len(),
        "HTTPS_PROXY was used"
    );
}

/// The shell block of docs/snapshot.md's "The commands" section, as written.
fn documented_snapshot_commands() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/snapshot.md"))
            .expect("docs/snapshot.md");
    let section = doc
        .split("## The commands")
        .nth(1)
        .expect("a section 'The commands'");
    let block = section.split("```sh\n").nth(1).expect("a sh block");
    block.split("```").next().unwrap_or_default().to_string()
}

#[test]
#[ignore = "needs moto_server, the AWS CLI and the control plane; scripts/test builds and runs them"]
fn the_snapshot_commands_of_the_docs_run_for_real_and_scan_as_the_live_cluster_does() {
    let aws = std::env::var("IRSA_MIGRATE_AWS_CLI")
        .expect("IRSA_MIGRATE_AWS_CLI names the AWS CLI (scripts/test installs it)");
    let cluster = Cluster::start();
    // A pipeline server-side applies one workload: both readings must name it as the owner.
    cluster.kube.apply_as(
        "ci-pipeline",
        &[serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "search-api", "namespace": "search", "labels": {"team": "search"}},
        })],
    );
    // A stack made one role: both readings must name the stack as its owner.
    cluster
        .moto
        .move_into_stack("payments-reconcile", "payments-iam");
    // CloudTrail (a double: moto has none): kiam still hands out checkout-web's credentials.
    let trail = CloudTrail::start();
    let kiam_server = cluster.pod_ip("kube-system", "kiam-server-");
    trail.record(
        "us-east-1",
        kiam_assumes("k1", "checkout-web", &kiam_server, 1800),
    );
    let commands = documented_snapshot_commands();
    // The one line an operator edits: the cluster's name.
    assert!(commands.contains("CLUSTER=my-cluster\n"), "{commands}");
    let commands = commands.replace("CLUSTER=my-cluster\n", "CLUSTER=demo\n");
    let bin = std::env::join_paths([
        cluster.kube.kubectl_path().parent().unwrap().to_path_buf(),
        Path::new(&aws).parent().unwrap().to_path_buf(),
        PathBuf::from("/usr/bin"),
        PathBuf::from("/bin"),
    ])
    .unwrap();
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &commands])
        .current_dir(cluster.dir.path())
        .envs(cluster.moto.env())
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", trail.url())
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("PATH", bin)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // kubectl and the AWS CLI, not any other binary of the same name, made the files.
    assert!(cluster.requests_to("GET /api/v1/pods?") > 0);
    let by_hand = cluster.ok(&["scan", "--snapshot", "snapshot", "-o", "json"]);
    let live = cluster.ok(&[
        "scan",
        "--cluster",
        "demo",
        "-o",
        "json",
        "--iam-read",
        "account",
    ]);
    let (by_hand, live) = (support::json(&by_hand), support::json(&live));
    assert_eq!(statuses(&by_hand), statuses(&live));
    assert_eq!(support::findings(&by_hand), support::findings(&live));
    assert!(
        support::findings(&live).contains(&(
            "managed-by-field-manager".into(),
            "search/search-api".into()
        )),
        "{live}"
    );
    let owners = |args: &[&str]| -> Vec<(String, serde_json::Value)> {
        let plan = support::json(&cluster.ok(args));
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| !s["owner"].is_null())
            .map(|s| (s["id"].as_str().unwrap().to_string(), s["owner"].clone()))
            .collect()
    };
    let by_hand = owners(&[
        "plan",
        "--snapshot",
        "snapshot",
        "-o",
        "json",
        "--name",
        "by-hand",
    ]);
    let live = owners(&[
        "plan",
        "--cluster",
        "demo",
        "-o",
        "json",
        "--name",
        "read-live",
    ]);
    assert_eq!(by_hand, live);
    assert!(
        live.contains(&(
            "update-role-trust:arn:aws:iam::111122223333:role/payments-reconcile".into(),
            serde_json::json!({"type": "cloudformation", "stack": "payments-iam"})
        )),
        "{live:?}"
    );
    // The evidence of the by-hand files is that of a live reading of CloudTrail.
    let verdicts = |args: &[&str]| -> Vec<(String, String)> {
        let output = cluster
            .command(args)
            .env("AWS_ENDPOINT_URL_CLOUDTRAIL", trail.url())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let evidence = support::json(&output);
        evidence["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["role"].as_str().unwrap().into(),
                    r["verdict"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let plan = "migrations/read-live/plan.json";
    let by_hand = verdicts(&[
        "evidence",
        "--plan",
        plan,
        "--snapshot",
        "snapshot",
        "-o",
        "json",
    ]);
    let live = verdicts(&["evidence", "--plan", plan, "-o", "json"]);
    assert_eq!(by_hand, live);
    assert!(
        live.contains(&(
            "arn:aws:iam::111122223333:role/checkout-web".into(),
            "legacy-in-use".into()
        )),
        "{live:?}"
    );
}
