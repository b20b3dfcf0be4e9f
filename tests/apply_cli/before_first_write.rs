//! Runs refused before their first write, exit 2 or 3 and no advice to roll back: an issuer EKS
//! does not give, plain HTTP off this machine, missing credentials, a corrupt journal, flags that
//! would do nothing.

use std::path::Path;
use std::process::Command;

use crate::support::{self, run_in, stderr};
use crate::workspace::{PLAN, apply_phase, demo_workspace, journal_entries, rehearsal, rehearse};

/// Runs `args` as a live run with no AWS credentials anywhere (and no network to find any).
fn without_credentials(dir: &Path, args: &[&str]) -> std::process::Output {
    without_credentials_with(dir, args, &[])
}

/// [`without_credentials`] with `env` set on top.
fn without_credentials_with(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_irsa-migrate"));
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ] {
        command.env_remove(name);
    }
    command
        .args(args)
        .current_dir(dir)
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Regression (issue 15): a plan made from a snapshot with a fake issuer was applied as it was;
/// live, it is refused before anything is reached (no credentials are even looked for), and
/// `--issuer-any` lets it go on to be checked against the cluster's own issuer.
#[test]
fn a_plan_with_an_issuer_eks_does_not_give_is_refused_live_before_anything_is_reached() {
    let dir = tempfile::tempdir().unwrap();
    support::demo_snapshot(dir.path());
    support::set_snapshot_issuer(dir.path(), "https://evil.example.com");
    support::plan_snapshot(dir.path(), "snap", &["--name", "demo", "--issuer-any"]);
    for args in [
        &["apply", "--plan", PLAN, "--phase", "prepare", "--yes"][..],
        &["apply", "--plan", PLAN, "--phase", "all", "--dry-run"][..],
    ] {
        let output = without_credentials(dir.path(), args);
        let error = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {error}");
        assert!(
            error.contains("the plan's OIDC issuer is refused")
                && error.contains("\"https://evil.example.com\" is not an OIDC issuer EKS gives")
                && error.contains("--issuer-any"),
            "{error}"
        );
        assert!(!error.contains("roll back"), "{error}");
    }
    assert!(!dir.path().join("migrations/demo/journal.jsonl").exists());
    // Accepted by name, the plan goes on to AWS (here: no credentials, exit 2, nothing written).
    let output = without_credentials(
        dir.path(),
        &[
            "apply",
            "--plan",
            PLAN,
            "--phase",
            "prepare",
            "--yes",
            "--issuer-any",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("checking the plan against AWS"),
        "{}",
        stderr(&output)
    );
    // A rehearsal reaches nothing live, and runs it.
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Regression (issue 15): `--endpoint-url http://…` sent SigV4 headers and session tokens in
/// clear text without a word. Off this machine it is refused before any request; the tests'
/// own `http://127.0.0.1` moto keeps working (tests/live/).
#[test]
fn a_plain_http_endpoint_off_this_machine_is_refused_before_any_request() {
    let dir = demo_workspace();
    let apply = ["apply", "--plan", PLAN, "--phase", "prepare", "--dry-run"];
    let mut args = apply.to_vec();
    args.extend(["--endpoint-url", "http://10.1.2.3:4566"]);
    let output = without_credentials(dir.path(), &args);
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(
        error.contains("--endpoint-url http://10.1.2.3:4566: plain HTTP would send signed requests and session tokens in clear text"),
        "{error}"
    );
    // From the environment as from the flag (scan and plan read through the same client).
    let output = without_credentials_with(
        dir.path(),
        &apply,
        &[("AWS_ENDPOINT_URL", "http://iam.example.com")],
    );
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(
        error.contains("AWS_ENDPOINT_URL") && error.contains("plain HTTP"),
        "{error}"
    );
    // Loopback is this machine: accepted (and, with nothing listening, a failed read).
    let mut args = apply.to_vec();
    args.extend(["--endpoint-url", "http://localhost:9"]);
    let output = without_credentials(dir.path(), &args);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("plain HTTP"),
        "{}",
        stderr(&output)
    );
}

/// Missing credentials, a corrupt journal, a rehearsal that cannot open and a failed preflight
/// read were exit 4, "roll back" (issue 12): nothing had changed.
#[test]
fn failures_before_the_first_write_are_2_or_3_and_do_not_advise_rolling_back() {
    let check = |output: &std::process::Output, code: i32, needle: &str, context: &str| {
        let err = stderr(output);
        assert_eq!(output.status.code(), Some(code), "{context}: {err}");
        assert!(err.contains(needle), "{context}: {err}");
        assert!(!err.contains("roll back"), "{context}: {err}");
    };
    let dir = demo_workspace();
    // Live, without a terminal or --yes: refused before any credentials are looked for.
    let output = without_credentials(dir.path(), &["apply", "--plan", PLAN, "--phase", "prepare"]);
    check(&output, 3, "pass --yes", "no confirmation");
    // Filters and phase order are checked before anything is read.
    let output = without_credentials(
        dir.path(),
        &["apply", "--plan", PLAN, "--phase", "identity", "--yes"],
    );
    check(
        &output,
        3,
        "needs phase prepare applied first",
        "phase order",
    );
    for args in [
        &["apply", "--plan", PLAN, "--phase", "prepare", "--dry-run"][..],
        &["apply", "--plan", PLAN, "--phase", "prepare", "--yes"][..],
    ] {
        let output = without_credentials(dir.path(), args);
        check(
            &output,
            2,
            "nothing was written by this run",
            "no credentials",
        );
    }
    assert!(!dir.path().join("migrations/demo/journal.jsonl").exists());

    // A preflight read that fails: a rehearsal file that is not JSON.
    let dir = demo_workspace();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let iam = rehearsal(dir.path()).join("iam/111122223333/roles-0000.json");
    std::fs::write(&iam, "{ not json").unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    check(
        &output,
        2,
        "nothing was written by this run",
        "failed preflight read",
    );
    assert!(journal_entries(dir.path()).is_empty());

    // A corrupt journal.
    let dir = demo_workspace();
    apply_phase(dir.path(), "prepare");
    let journal = rehearsal(dir.path()).join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, format!("garbage\n{text}")).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "identity", "--yes"]);
    check(
        &output,
        2,
        "journal.jsonl:1: not a journal entry",
        "corrupt journal",
    );

    // A rehearsal that cannot be opened: its staging copy cannot be made (a file is in the way).
    let dir = demo_workspace();
    std::fs::write(
        dir.path().join("migrations/demo/rehearsal.staging"),
        "in the way",
    )
    .unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    check(
        &output,
        2,
        "opening the backend",
        "rehearsal that cannot open",
    );
}

/// Flags that would do nothing where given were accepted silently (issue 12): a rehearsal that
/// "used" --profile, a --rollout-timeout 0 no wave could meet.
#[test]
fn flags_that_would_do_nothing_are_refused() {
    let dir = demo_workspace();
    for (command, args, flag) in [
        (
            "apply",
            &["--phase", "prepare", "--dry-run", "--profile", "prod"][..],
            "--profile",
        ),
        (
            "apply",
            &["--phase", "prepare", "--dry-run", "--concurrency", "4"][..],
            "--concurrency",
        ),
        (
            "rollback",
            &["--all", "--yes", "--kubeconfig", "k"][..],
            "--kubeconfig",
        ),
        (
            "rollback",
            &["--all", "--yes", "--account-profile", "444455556666=x"][..],
            "--account-profile",
        ),
        (
            "apply",
            &["--phase", "prepare", "--dry-run", "--issuer-any"][..],
            "--issuer-any",
        ),
    ] {
        let output = rehearse(dir.path(), command, args);
        assert_eq!(output.status.code(), Some(2), "{command} {args:?}");
        assert!(
            stderr(&output).contains(&format!("{flag} does nothing with --rehearse")),
            "{}",
            stderr(&output)
        );
    }
    for (args, flag) in [
        (&["scan", "--demo", "--context", "prod"][..], "--context"),
        (
            &["plan", "--demo", "--region", "eu-west-1", "--name", "x"][..],
            "--region",
        ),
        // Only a live reading can be incomplete.
        (
            &["plan", "--demo", "--allow-incomplete", "--name", "x"][..],
            "--allow-incomplete",
        ),
        (
            &[
                "plan",
                "--snapshot",
                "migrations/demo/snapshot",
                "--cluster",
                "c",
                "--name",
                "x",
            ][..],
            "--cluster",
        ),
    ] {
        let output = run_in(dir.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(&format!("{flag} does nothing with")),
            "{}",
            stderr(&output)
        );
    }
    assert!(!dir.path().join("migrations/x").exists());
    // A rehearsal has no rollout to wait for or roll back.
    for flag in [
        &["--rollout-timeout", "60"][..],
        &["--no-auto-rollback"][..],
    ] {
        let mut args = vec!["--phase", "rollout", "--yes"];
        args.extend_from_slice(flag);
        let output = rehearse(dir.path(), "apply", &args);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("{} does nothing with --rehearse", flag[0])),
            "{}",
            stderr(&output)
        );
    }
    let output = run_in(
        dir.path(),
        &[
            "apply",
            "--plan",
            PLAN,
            "--phase",
            "rollout",
            "--rollout-timeout",
            "0",
            "--yes",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("invalid value '0' for '--rollout-timeout"),
        "{}",
        stderr(&output)
    );
    assert!(journal_entries(dir.path()).is_empty());
    assert!(!dir.path().join("migrations/demo/journal.jsonl").exists());
}
