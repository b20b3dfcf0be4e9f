//! The snapshot writer: what it writes reads back the same, its fingerprint, what it keeps and
//! leaves out, its file modes, and what it never removes.

use irsa_migrate::inventory::snapshot::{Layout, write_dir};

use crate::inputs::{load, write};
use crate::support;

#[test]
fn rendered_snapshot_reads_back_into_the_same_inventory_in_either_layout() {
    use irsa_migrate::inventory::snapshot::fingerprint;
    let demo = irsa_migrate::inventory::demo::inventory().unwrap();
    let mut kube2iam = load(&support::fixture("kube2iam")).unwrap();
    kube2iam.warnings.clear();
    let samples = load(&support::fixture("aws-cli-samples")).unwrap();
    for original in [demo, kube2iam, samples] {
        for layout in [Layout::PerNamespace, Layout::PerKind] {
            let dir = tempfile::tempdir().unwrap();
            let written = write_dir(&original, dir.path(), layout).unwrap();
            assert_eq!(written, fingerprint(&original), "the writer's fingerprint");
            let reread = load(dir.path()).unwrap();
            assert_eq!(reread, original, "{layout:?}");
            assert_eq!(fingerprint(&reread), fingerprint(&original), "{layout:?}");
        }
    }
}

#[test]
fn fingerprint_changes_with_the_cluster_state() {
    use irsa_migrate::inventory::snapshot::fingerprint;
    let demo = irsa_migrate::inventory::demo::inventory().unwrap();
    let mut changed = demo.clone();
    let account = changed.service_accounts.values_mut().next().unwrap();
    account.metadata.annotations.insert(
        "eks.amazonaws.com/role-arn".into(),
        "arn:aws:iam::111122223333:role/x".into(),
    );
    assert_ne!(fingerprint(&demo), fingerprint(&changed));
    assert!(fingerprint(&demo).starts_with("sha256:"));
}

#[test]
fn writing_a_snapshot_never_removes_what_the_tool_did_not_write() {
    // Regression: `snapshot --out .` (and a plan's snapshot/) removed any existing directory
    // holding no kubernetes/ or iam/, a working directory included.
    let inventory = load(&support::fixture("kube2iam")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", "mine");
    write(dir.path(), "kubernetes/keep.yaml", "mine too");
    let error = write_dir(&inventory, dir.path(), Layout::PerNamespace)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("not a snapshot irsa-migrate wrote"),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(dir.path().join("kubernetes/keep.yaml").exists());
    assert!(
        !dir.path().join("iam").exists(),
        "nothing is written beside it either"
    );

    // A snapshot the tool wrote is replaced whole, and an empty directory is used.
    let own = dir.path().join("own");
    write_dir(&inventory, &own, Layout::PerNamespace).unwrap();
    write_dir(&inventory, &own, Layout::PerNamespace).unwrap();
    assert_eq!(load(&own).unwrap().workloads, inventory.workloads);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    write_dir(&inventory, &empty, Layout::PerNamespace).unwrap();
}

#[test]
fn a_staged_snapshot_replaces_only_a_snapshot_the_tool_wrote() {
    use irsa_migrate::inventory::snapshot::replace_dir;
    let kube2iam = load(&support::fixture("kube2iam")).unwrap();
    let demo = irsa_migrate::inventory::demo::inventory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (staged, target) = (dir.path().join("staged"), dir.path().join("snapshot"));
    write_dir(&kube2iam, &target, Layout::PerNamespace).unwrap();
    write_dir(&demo, &staged, Layout::PerNamespace).unwrap();
    replace_dir(&staged, &target).unwrap();
    assert_eq!(load(&target).unwrap(), demo);
    assert!(!staged.exists(), "moved, not copied");

    // Into a directory that is not the tool's, nothing moves and nothing is removed.
    write_dir(&kube2iam, &staged, Layout::PerNamespace).unwrap();
    write(&target, "notes.txt", "mine");
    let error = replace_dir(&staged, &target).unwrap_err().to_string();
    assert!(
        error.contains("not a snapshot irsa-migrate wrote"),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(load(&staged).unwrap().workloads, kube2iam.workloads);
}

#[test]
fn each_snapshot_file_is_rendered_whole_once() {
    // The writer writes each file as soon as the rendering moves past it: a file whose objects
    // came in two runs would be written twice, the second time without the first run's objects.
    use irsa_migrate::inventory::snapshot::render_files;
    for inventory in [
        irsa_migrate::inventory::demo::inventory().unwrap(),
        load(&support::fixture("kube2iam")).unwrap(),
        load(&support::fixture("aws-cli-samples")).unwrap(),
    ] {
        let files = render_files(&inventory);
        let mut names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a file rendered twice");
    }
}

#[cfg(unix)]
#[test]
fn snapshots_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let inventory = load(&support::fixture("kube2iam")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snap");
    write_dir(&inventory, &out, Layout::PerNamespace).unwrap();
    let mut pending = vec![out];
    let mut files = 0;
    while let Some(current) = pending.pop() {
        let mode = std::fs::metadata(&current).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", current.display());
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files += 1;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", path.display());
            }
        }
    }
    assert!(files > 3);
}

#[test]
fn snapshots_keep_only_what_the_tool_reads_and_no_agent_credentials() {
    // Regression: every annotation was kept (last-applied-configuration holds whole manifests,
    // literal env values included), and so were the literal env and args of agent containers.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "kube2iam.json",
        r#"{"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "kube2iam", "namespace": "kube-system", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"env\": \"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI\"}",
                "meta.helm.sh/release-name": "kube2iam"}},
            "spec": {"template": {"metadata": {"annotations": {"checksum/config": "abc"}}, "spec": {"containers": [{
                "name": "kube2iam", "image": "jtblin/kube2iam:0.11.2",
                "args": ["--base-role-arn=$(BASE)", "--iam-role-key=example.com/role",
                         "--aws-secret-key=wJalrXUtnFEMI", "--auto-discover-default-role"],
                "env": [{"name": "BASE", "value": "arn:aws:iam::111122223333:role/"},
                        {"name": "AWS_ACCESS_KEY_ID", "value": "AKIAIOSFODNN7EXAMPLE"},
                        {"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI"}]}]}}}}"#,
    );
    write(
        dir.path(),
        "app.json",
        r#"{"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"template": {"metadata": {"annotations": {
                "example.com/role": "app", "iam.amazonaws.com/external-id": "x",
                "kubectl.kubernetes.io/restartedAt": "now"}},
              "spec": {"containers": [{"name": "app", "image": "app"}]}}}}"#,
    );
    let inventory = load(dir.path()).unwrap();
    let out = dir.path().join("out");
    write_dir(&inventory, &out, Layout::PerNamespace).unwrap();
    let mut written = String::new();
    for entry in std::fs::read_dir(out.join("kubernetes/kube-system"))
        .unwrap()
        .chain(std::fs::read_dir(out.join("kubernetes/default")).unwrap())
    {
        written.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    for leaked in [
        "last-applied",
        "wJalrXUtnFEMI",
        "AKIAIOSFODNN7EXAMPLE",
        "checksum/config",
        "restartedAt",
    ] {
        assert!(!written.contains(leaked), "{leaked} was written: {written}");
    }
    // What the scan reads stays: the owner, the agent's flags and the env they name, the
    // agent's own role key (configured by flag) and the legacy annotations.
    for kept in [
        "meta.helm.sh/release-name",
        "--base-role-arn=$(BASE)",
        "arn:aws:iam::111122223333:role/",
        "--aws-secret-key=REDACTED",
        "\"example.com/role\": \"app\"",
        "iam.amazonaws.com/external-id",
    ] {
        assert!(written.contains(kept), "{kept} is missing: {written}");
    }
    let reloaded = load(&out).unwrap();
    assert_eq!(reloaded.workloads, inventory.workloads);
}

#[test]
fn role_last_used_is_kept_beside_the_trail_not_in_the_roles_nor_the_fingerprint() {
    use irsa_migrate::inventory::snapshot::fingerprint;
    let details = |last_used: &str| {
        format!(
            r#"{{"RoleDetailList": [{{"Path": "/", "RoleName": "app", "Arn": "arn:aws:iam::111122223333:role/app",
                "AssumeRolePolicyDocument": {{"Statement": []}}, "RoleLastUsed": {last_used}}}]}}"#
        )
    };
    let used = tempfile::tempdir().unwrap();
    write(
        used.path(),
        "iam.json",
        &details(r#"{"LastUsedDate": "2026-11-30T08:15:00+00:00", "Region": "eu-west-1"}"#),
    );
    let never = tempfile::tempdir().unwrap();
    write(never.path(), "iam.json", &details("{}"));
    let inventory = load(used.path()).unwrap();
    let last = &inventory.trail.last_used["arn:aws:iam::111122223333:role/app"];
    assert_eq!(
        (
            irsa_migrate::time::format(last.time).as_str(),
            last.region.as_deref()
        ),
        ("2026-11-30T08:15:00Z", Some("eu-west-1"))
    );
    let unused = load(never.path()).unwrap();
    assert!(unused.trail.last_used.is_empty());
    // Evidence, not state: the same fingerprint used or not.
    assert_eq!(fingerprint(&inventory), fingerprint(&unused));

    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("snapshot");
    write_dir(&inventory, &out, Layout::PerNamespace).unwrap();
    let evidence = std::fs::read_to_string(out.join("cloudtrail/role-last-used.json")).unwrap();
    assert!(evidence.contains("2026-11-30T08:15:00Z"), "{evidence}");
    for file in support::files_under(&out.join("iam")) {
        let file = out.join("iam").join(file);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("RoleLastUsed"), "{}: {text}", file.display());
    }
    assert_eq!(load(&out).unwrap(), inventory);

    // A date that is not one names the file, the role and the field.
    let bad = tempfile::tempdir().unwrap();
    write(
        bad.path(),
        "iam.json",
        &details(r#"{"LastUsedDate": "last tuesday"}"#),
    );
    let error = load(bad.path()).unwrap_err().to_string();
    assert!(
        error.contains("iam.json")
            && error.contains("role/app")
            && error.contains("RoleLastUsed.LastUsedDate"),
        "{error}"
    );
}
