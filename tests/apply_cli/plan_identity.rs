//! The plan a migration is bound to: its content digest (not its bytes or formatting), journals
//! of the byte checksum, hand edits, plans of another version, snapshots with ignored files.

use crate::support::{fixture, json, plan_snapshot, stderr};
use crate::workspace::{PLAN, demo_workspace, rehearsal, rehearse};

/// A byte checksum refused a CRLF checkout or a reformatted plan.json (issue 12): the journal
/// binds a migration to the plan's content, the digest report.md shows.
#[test]
fn a_reformatted_plan_is_the_same_plan_and_the_digest_is_the_reports() {
    let dir = demo_workspace();
    let path = dir.path().join(PLAN);
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Reformatted (compact, then broken into lines) and checked out with CRLF endings.
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let compact = serde_json::to_string(&value).unwrap();
    std::fs::write(&path, format!("{}\r\n", compact.replace(",\"", ",\r\n\""))).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "identity", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The digest the journal records is the one report.md shows.
    let status = json(&rehearse(dir.path(), "status", &["--output", "json"]));
    let digest = status["digest"].as_str().expect("status shows the digest");
    let report = std::fs::read_to_string(dir.path().join("migrations/demo/report.md")).unwrap();
    assert!(
        report.contains(&format!("Plan digest `{digest}`")),
        "{report}"
    );
    let journal = std::fs::read_to_string(rehearsal(dir.path()).join("journal.jsonl")).unwrap();
    assert!(journal.contains(digest), "{journal}");
}

/// Journals started before the content digest record the plan file's byte checksum: such a
/// migration goes on, and a changed plan is still refused.
#[test]
fn a_journal_that_records_the_byte_checksum_still_accepts_its_plan() {
    let dir = demo_workspace();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let journal = rehearsal(dir.path()).join("journal.jsonl");
    let bytes = std::fs::read(dir.path().join(PLAN)).unwrap();
    let digest = json(&rehearse(dir.path(), "status", &["--output", "json"]))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains(&digest), "a new journal records the digest");
    std::fs::write(
        &journal,
        text.replace(&digest, &irsa_migrate::apply::checksum(&bytes)),
    )
    .unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "identity", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    std::fs::write(dir.path().join(PLAN), [&bytes[..], b" "].concat()).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "rollout", "--yes"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}

/// A hand-edited plan.json was applied unchecked before its first apply, while report.md (what
/// the change board approved) showed the plan as made (issue 12).
#[test]
fn a_plan_edited_by_hand_before_its_first_apply_is_refused_naming_what_differs() {
    let dir = demo_workspace();
    let path = dir.path().join(PLAN);
    let original = std::fs::read_to_string(&path).unwrap();
    let escalated = original
        .replace(
            "\"role_arn\": \"arn:aws:iam::111122223333:role/checkout-web\"",
            "\"role_arn\": \"arn:aws:iam::111122223333:role/ADMIN-escalated\"",
        )
        .replacen(
            ":sub\": \"system:serviceaccount:checkout:checkout-web\"",
            ":sub\": \"system:serviceaccount:checkout:*\"",
            1,
        );
    assert_ne!(escalated, original);
    std::fs::write(&path, &escalated).unwrap();
    for args in [
        &["--phase", "prepare", "--yes"][..],
        &["--phase", "prepare", "--dry-run"][..],
    ] {
        let output = rehearse(dir.path(), "apply", args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{err}");
        assert!(
            err.contains("is not the plan that its snapshot and settings give")
                && err.contains(
                    "step update-role-trust:arn:aws:iam::111122223333:role/checkout-web: changed"
                )
                && err.contains(":sub\": \"system:serviceaccount:checkout:*\"")
                && err.contains("field bindings: changed"),
            "{err}"
        );
    }
    assert!(!rehearsal(dir.path()).exists(), "nothing was done");
    std::fs::write(&path, &original).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// A plan records the version that wrote it. Another version's plan with the same content is
/// the same plan (same digest, applied); one whose content differs is refused saying which
/// version wrote it, so an operator knows to re-plan rather than look for a hand edit.
#[test]
fn a_plan_from_another_version_is_named_as_such_and_runs_when_its_content_is_the_same() {
    let dir = demo_workspace();
    let path = dir.path().join(PLAN);
    let original = std::fs::read_to_string(&path).unwrap();
    let writer = format!(
        "\"generator\": \"irsa-migrate {}\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(original.contains(&writer), "plan.json records its writer");
    let digest = |text: &str| {
        serde_json::from_str::<irsa_migrate::plan::Plan>(text)
            .unwrap()
            .digest()
    };
    let older = original.replace(&writer, "\"generator\": \"irsa-migrate 0.0.9\"");
    assert_eq!(
        digest(&older),
        digest(&original),
        "the writer is not content"
    );
    let changed = older.replacen(
        ":sub\": \"system:serviceaccount:checkout:checkout-web\"",
        ":sub\": \"system:serviceaccount:checkout:*\"",
        1,
    );
    std::fs::write(&path, &changed).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "it was written by irsa-migrate 0.0.9, and this is irsa-migrate {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{err}"
    );
    assert!(!rehearsal(dir.path()).exists(), "nothing was done");
    std::fs::write(&path, &older).unwrap();
    let output = rehearse(dir.path(), "apply", &["--phase", "prepare", "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// A plan made from a snapshot with files the loader ignores (findings `unrecognized-input`,
/// which the migration's own snapshot does not repeat) is still the plan its snapshot gives.
#[test]
fn a_plan_from_a_snapshot_with_ignored_files_passes_the_plan_check() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("kube2iam");
    plan_snapshot(dir.path(), fixture.to_str().unwrap(), &["--name", "k"]);
    let plan = std::fs::read_to_string(dir.path().join("migrations/k/plan.json")).unwrap();
    assert!(
        plan.contains("unrecognized-input"),
        "the fixture has an ignored file"
    );
    crate::support::rehearse_prepare(dir.path(), "migrations/k/plan.json");
}
