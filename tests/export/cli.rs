//! What `export` writes and refuses, as a user sees it.

use std::path::Path;

use crate::support::{run_in, run_ok_in, stderr, stdout};

/// The demo's migration in a fresh directory.
pub fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["demo"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    dir
}

pub const PLAN: &str = "migrations/demo/plan.json";

/// `export --plan <the demo plan> --out <out> <args>` in `dir`, which must succeed.
pub fn export(dir: &Path, out: &str, args: &[&str]) {
    let mut all = vec!["export", "--plan", PLAN, "--out", out];
    all.extend_from_slice(args);
    let output = run_ok_in(dir, &all);
    assert!(
        stdout(&output).starts_with(&format!("wrote {out}: ")),
        "{}",
        stdout(&output)
    );
}

#[test]
fn each_owner_gets_its_phases_and_scripts_are_executable() {
    let dir = demo();
    export(dir.path(), "out", &[]);
    let out = dir.path().join("out");
    for path in [
        "README.md",
        "kubernetes/helm-release-payments-payments/2-identity/kustomization.yaml",
        "kubernetes/helm-release-payments-payments/irsa-migrate-helm-release-payments-payments-3-rollout/post-render",
        "kubernetes/helm-release-payments-payments/values-hint-3-rollout.yaml",
        "kubernetes/argo-cd-application-checkout/3-rollout/kustomization.yaml",
        "kubernetes/flux-kustomization-flux-system-data/4-cleanup/kustomization.yaml",
        "kubernetes/unowned/2-identity/serviceaccount-payments-default-payments-worker.yaml",
        "iam/1-prepare/main.tf",
        "iam/1-prepare/111122223333-data-ingest.json",
        "iam/1-prepare/111122223333-data-ingest.before.json",
        "iam/5-decommission/aws-cli.sh",
    ] {
        assert!(out.join(path).is_file(), "{path}");
    }
    // Argo CD's application changes nothing before the rollout.
    assert!(
        !out.join("kubernetes/argo-cd-application-checkout/2-identity")
            .exists()
    );
    #[cfg(unix)]
    for script in [
        "kubernetes/helm-release-payments-payments/irsa-migrate-helm-release-payments-payments-3-rollout/post-render",
        "iam/1-prepare/aws-cli.sh",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(script))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{script}");
    }
    // The eksctl-owned role is left to eksctl: not in the script of what nobody owns.
    let script = std::fs::read_to_string(out.join("iam/1-prepare/aws-cli.sh")).unwrap();
    assert!(script.contains("--role-name 'checkout-web'"), "{script}");
    assert!(!script.contains("data-ingest"), "{script}");
}

#[test]
fn one_phase_exports_only_its_changes() {
    let dir = demo();
    export(dir.path(), "out", &["--phase", "rollout"]);
    let out = dir.path().join("out");
    let files = crate::support::files_under(&out);
    assert!(
        files.iter().all(|p| {
            let p = p.to_string_lossy();
            p == "README.md" || p.contains("3-rollout")
        }),
        "{files:?}"
    );
    assert!(!out.join("iam").exists(), "rollout changes no IAM");
}

#[test]
fn a_directory_holding_anything_or_a_hostile_plan_is_refused() {
    let dir = demo();
    std::fs::create_dir(dir.path().join("full")).unwrap();
    std::fs::write(dir.path().join("full/keep"), "mine").unwrap();
    let output = run_in(dir.path(), &["export", "--plan", PLAN, "--out", "full"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--out full: not a new or empty directory"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("full/keep")).unwrap(),
        "mine"
    );
    // A plan edited to trust every principal is never exported for someone to merge.
    let path = dir.path().join(PLAN);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen(
        "\"Federated\": \"arn:aws:iam::111122223333:oidc-provider/",
        "\"AWS\": \"*\", \"Federated\": \"arn:aws:iam::111122223333:oidc-provider/",
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let output = run_in(dir.path(), &["export", "--plan", PLAN, "--out", "new"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is refused"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("new").exists());
}
