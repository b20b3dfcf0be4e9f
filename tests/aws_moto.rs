//! The live AWS side against moto: `snapshot` reads IAM as the CLI prints it, and `apply` /
//! `rollback` of the IAM phases write it, with the same stale-state protection as rehearsals.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::moto::Moto;
use support::{stderr, stdout};

fn run_with(moto: &Moto, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irsa-migrate"))
        .args(args)
        .current_dir(dir)
        .envs(moto.env())
        .output()
        .expect("the binary runs")
}

/// Creates the demo's IAM roles, inline policies and customer policies in moto.
fn seed_demo_iam(moto: &Moto) {
    let details: Value = serde_json::from_str(include_str!(
        "../demo/snapshot/account-authorization-details.json"
    ))
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let iam = moto.iam(&runtime);
    runtime.block_on(async {
        for policy in details["Policies"].as_array().unwrap() {
            let arn = policy["Arn"].as_str().unwrap();
            if arn.contains(":iam::aws:") {
                continue;
            }
            let document = &policy["PolicyVersionList"][0]["Document"];
            iam.create_policy()
                .policy_name(policy["PolicyName"].as_str().unwrap())
                .policy_document(document.to_string())
                .send()
                .await
                .unwrap();
        }
        for role in details["RoleDetailList"].as_array().unwrap() {
            let name = role["RoleName"].as_str().unwrap();
            iam.create_role()
                .role_name(name)
                .path(role["Path"].as_str().unwrap())
                .assume_role_policy_document(role["AssumeRolePolicyDocument"].to_string())
                .send()
                .await
                .unwrap();
            for inline in role["RolePolicyList"].as_array().unwrap() {
                iam.put_role_policy()
                    .role_name(name)
                    .policy_name(inline["PolicyName"].as_str().unwrap())
                    .policy_document(inline["PolicyDocument"].to_string())
                    .send()
                    .await
                    .unwrap();
            }
            for attached in role["AttachedManagedPolicies"].as_array().unwrap() {
                iam.attach_role_policy()
                    .role_name(name)
                    .policy_arn(attached["PolicyArn"].as_str().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    });
}

/// The demo's Kubernetes objects and cluster description, with IAM from moto.
fn snapshot_from_moto(moto: &Moto, dir: &Path) -> std::path::PathBuf {
    let snapshot = dir.join("snapshot");
    let output = run_with(moto, dir, &["snapshot", "--out", "snapshot"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("aws-iam-authorization-details.json"),
        "{}",
        stdout(&output)
    );
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/snapshot");
    for file in std::fs::read_dir(&demo).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.starts_with("account-authorization-details") && !name.starts_with("oidc-providers")
        {
            std::fs::copy(&path, snapshot.join(&name)).unwrap();
        }
    }
    snapshot
}

fn trust_in_moto(moto: &Moto, dir: &Path, role: &str) -> Value {
    let output = run_with(moto, dir, &["snapshot", "--out", "check"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let details: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("check/aws-iam-authorization-details.json")).unwrap(),
    )
    .unwrap();
    let role = details["RoleDetailList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["RoleName"] == role)
        .unwrap();
    let text = role["AssumeRolePolicyDocument"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| role["AssumeRolePolicyDocument"].to_string());
    irsa_migrate::iam::policy::PolicyDocument::from_text(&text)
        .unwrap()
        .0
}

#[test]
#[ignore = "needs moto_server; scripts/test installs it and runs this"]
fn snapshot_reads_iam_from_the_api_like_the_cli_and_scans_like_the_demo() {
    let moto = Moto::start();
    seed_demo_iam(&moto);
    let dir = tempfile::tempdir().unwrap();
    snapshot_from_moto(&moto, dir.path());
    let live = run_with(
        &moto,
        dir.path(),
        &["scan", "--snapshot", "snapshot", "--output", "json"],
    );
    assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
    let demo = run_with(&moto, dir.path(), &["scan", "--demo", "--output", "json"]);
    let findings = |output: &Output| -> Vec<(String, String)> {
        support::findings(&support::json(output))
            .into_iter()
            .filter(|(c, _)| c != "missing-oidc-provider")
            .collect()
    };
    // IAM read through the API (URL-encoded documents) gives the demo's findings.
    assert_eq!(findings(&live), findings(&demo));
}

#[test]
#[ignore = "needs moto_server; scripts/test installs it and runs this"]
fn live_prepare_writes_iam_and_rollback_restores_it_and_a_changed_role_stops_the_run() {
    let moto = Moto::start();
    seed_demo_iam(&moto);
    let dir = tempfile::tempdir().unwrap();
    snapshot_from_moto(&moto, dir.path());
    let original = trust_in_moto(&moto, dir.path(), "payments-api");
    let output = run_with(
        &moto,
        dir.path(),
        &["plan", "--snapshot", "snapshot", "--name", "live"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = "migrations/live/plan.json";

    let output = run_with(
        &moto,
        dir.path(),
        &["apply", "--plan", plan, "--phase", "prepare", "--yes"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("applied          create-oidc-provider:"),
        "{}",
        stdout(&output)
    );
    // Per IAM target: a preflight read, a read right before the write, the write. 7 steps.
    assert!(
        stdout(&output).ends_with("7 changed, 0 already in place, 0 skipped; 21 API calls\n"),
        "{}",
        stdout(&output)
    );
    let trust = trust_in_moto(&moto, dir.path(), "payments-api");
    let statements = trust["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 3, "{trust}");
    assert_eq!(statements[2]["Action"], "sts:AssumeRoleWithWebIdentity");
    // The identity phase changes Kubernetes, which this version only rehearses.
    let output = run_with(
        &moto,
        dir.path(),
        &["apply", "--plan", plan, "--phase", "identity", "--yes"],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--rehearse"),
        "{}",
        stderr(&output)
    );

    let output = run_with(
        &moto,
        dir.path(),
        &["rollback", "--plan", plan, "--phase", "prepare", "--yes"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(trust_in_moto(&moto, dir.path(), "payments-api"), original);
    let providers = run_with(&moto, dir.path(), &["snapshot", "--out", "after"]);
    assert_eq!(providers.status.code(), Some(0));
    let list: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("after/aws-iam-oidc-providers.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        list["OpenIDConnectProviderList"],
        serde_json::json!([]),
        "the provider the run created is gone"
    );

    // Someone edits a role between plan and apply: the run stops before writing anything.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let edited = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/somebody"},"Action":"sts:AssumeRole"}]}"#;
    let update = moto
        .iam(&runtime)
        .update_assume_role_policy()
        .role_name("payments-worker")
        .policy_document(edited)
        .send();
    runtime.block_on(update).unwrap();
    let before = trust_in_moto(&moto, dir.path(), "payments-api");
    let output = run_with(
        &moto,
        dir.path(),
        &["apply", "--plan", plan, "--phase", "prepare", "--yes"],
    );
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("payments-worker")
            && stderr(&output).contains("nothing was written"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        trust_in_moto(&moto, dir.path(), "payments-api"),
        before,
        "no other role was written"
    );
}
