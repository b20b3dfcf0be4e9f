//! Steps whose targets have owners (the demo's Helm release, Argo CD application, Flux
//! Kustomization and eksctl-made role): apply and rollback leave them to their owners, stop at
//! the end of the phase saying what each owner must merge, and go on once the owners have.

use crate::support::{json, run_in, stderr, stdout};
use crate::workspace::{PLAN, demo_workspace, journal_entries, rehearse, rehearse_leaving_owners};

const OWNED_TRUST: &str = "update-role-trust:arn:aws:iam::111122223333:role/data-ingest";

#[test]
fn apply_leaves_owned_steps_to_their_owners_and_goes_on_once_they_are_made() {
    let dir = demo_workspace();
    let output = rehearse_leaving_owners(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let (text, error) = (stdout(&output), stderr(&output));
    assert!(
        text.contains(&format!(
            "awaits owner     {OWNED_TRUST}  (eksctl (cluster demo))"
        )),
        "{text}"
    );
    assert!(
        error.contains("prepare is not complete: its steps below are their owners' to make")
            && error.contains("this run made 6 other change(s), journaled")
            && error.contains("  eksctl (cluster demo), in the eksctl configuration")
            && error.contains(&format!(
                "    {OWNED_TRUST}: trust system:serviceaccount:data:data-ingest"
            ))
            && error.contains("--wait-for-owners")
            && error.contains("--patch-owned"),
        "{error}"
    );
    // Nothing was journaled for it: the run did not touch it.
    let touched = |entries: &[serde_json::Value]| {
        entries
            .iter()
            .filter(|e| e["step"] == OWNED_TRUST)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(touched(&journal_entries(dir.path())).is_empty());
    let status = json(&rehearse(dir.path(), "status", &["--output", "json"]));
    assert_eq!(status["phases"]["prepare"]["applied"], 6, "{status}");
    assert_eq!(status["phases"]["prepare"]["pending"], 1, "{status}");
    // The next phase waits for it.
    let output = rehearse_leaving_owners(dir.path(), "apply", &["--phase", "identity", "--yes"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("needs phase prepare applied first"),
        "{}",
        stderr(&output)
    );

    // The owner merges its change (played by the rehearsal): journaled as the owner's.
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("done by owner    {OWNED_TRUST}")),
        "{}",
        stdout(&output)
    );
    let entries = touched(&journal_entries(dir.path()));
    assert_eq!(
        entries.last().unwrap()["outcome"],
        "by-owner",
        "{entries:?}"
    );

    // Rolled back, the owner's step is again its owner's: to revert.
    let output = rehearse_leaving_owners(dir.path(), "rollback", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "the rollback of prepare is not complete: its steps below are their owners' to revert"
        ) && stderr(&output).contains("Revert each change in its owner's source"),
        "{}",
        stderr(&output)
    );
    let output = rehearse(dir.path(), "rollback", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("undone by owner  {OWNED_TRUST}")),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_dry_run_names_what_awaits_owners_and_patch_owned_writes_them_as_any_other() {
    let dir = demo_workspace();
    let output = rehearse_leaving_owners(dir.path(), "apply", &["--phase", "all", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for owner in [
        "(Helm release payments/payments)",
        "(Argo CD application checkout)",
        "(Flux Kustomization flux-system/data)",
        "(eksctl (cluster demo))",
    ] {
        assert!(text.contains(owner), "{owner}: {text}");
    }
    assert!(
        text.contains(", 8 awaiting their owners (dry run: nothing changed)"),
        "{text}"
    );
    assert!(
        journal_entries(dir.path()).is_empty(),
        "a dry run journals nothing"
    );
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = rehearse_leaving_owners(
        dir.path(),
        "apply",
        &["--phase", "identity", "--yes", "--patch-owned"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let owned_annotation = "annotate-service-account:payments/ServiceAccount/payments-api";
    assert!(
        stdout(&output).contains(&format!("applied          {owned_annotation}")),
        "{}",
        stdout(&output)
    );
}

#[test]
fn owner_flags_are_checked_before_anything_runs() {
    let dir = demo_workspace();
    for (args, expected) in [
        (
            vec!["--as-owner"],
            "the following required arguments were not provided:\n  --rehearse",
        ),
        (
            vec!["--rehearse", "--as-owner", "--patch-owned"],
            "cannot be used with",
        ),
        (
            vec!["--rehearse", "--wait-for-owners", "10 minutes"],
            "\"10 minutes\" is not a duration: give a number and s, m, h or d (90s, 30m, 2h, 7d)",
        ),
    ] {
        let mut all = vec!["apply", "--plan", PLAN, "--phase", "prepare", "--yes"];
        all.extend(args);
        let output = run_in(dir.path(), &all);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{all:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{all:?}: {}",
            stderr(&output)
        );
    }
    assert!(journal_entries(dir.path()).is_empty());
}
