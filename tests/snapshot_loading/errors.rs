//! Inputs the loader refuses, each error naming the file, the position, the object and the field:
//! syntax and type errors, a directory loop, two different copies of one object.

use irsa_migrate::inventory::snapshot::InventoryError;

use crate::inputs::{deployment, list, load, padded, write};

#[test]
fn errors_name_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   bad: indent\n",
    );
    match load(dir.path()) {
        Err(InventoryError::Parse { path, line, .. }) => {
            assert!(path.ends_with("bad.yaml"));
            assert!(line >= 4, "line {line}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "role.json",
        r#"{"Role":{"Arn":"arn:aws:iam::1:user/x","RoleName":"x"}}"#,
    );
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("role.json") && err.contains("field Arn"),
        "{err}"
    );
}

/// A snapshot directory with one Namespace, in `file`.
#[cfg(unix)]
fn with_namespace(file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        file,
        r#"{"kind": "Namespace", "metadata": {"name": "a"}}"#,
    );
    dir
}

#[cfg(unix)]
#[test]
fn a_directory_symlink_loop_is_an_error_naming_the_link() {
    // Regression (issue 12): a link to an ancestor was followed forever (7.8 GB, no message).
    let dir = with_namespace("sub/ns.json");
    std::os::unix::fs::symlink("..", dir.path().join("sub/back")).unwrap();
    match load(dir.path()) {
        Err(InventoryError::Loop { path, ancestor }) => {
            assert!(path.ends_with("sub/back"), "{}", path.display());
            assert_eq!(ancestor, dir.path());
        }
        other => panic!("expected a loop error, got {other:?}"),
    }
    // A directory reached twice without a loop is read once.
    let dir = with_namespace("day1/ns.json");
    std::os::unix::fs::symlink("day1", dir.path().join("latest")).unwrap();
    let inventory = load(dir.path()).unwrap();
    assert_eq!(inventory.namespaces.len(), 1);
}

#[test]
fn two_different_copies_of_one_object_are_an_error_naming_both_files() {
    // Regression (issue 12): the last file in path order won, unreported.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.json", &deployment("api", "api"));
    write(
        dir.path(),
        "b.json",
        &list("Deployment", &[deployment("api", "admin")]),
    );
    match load(dir.path()) {
        Err(InventoryError::Conflict {
            object,
            first,
            second,
        }) => {
            assert_eq!(object, "Deployment payments/api");
            assert!(first.ends_with("a.json") && second.ends_with("b.json"));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let pod = |phase: &str| {
        format!(
            r#"{{"kind": "Pod", "metadata": {{"name": "p", "namespace": "payments"}}, "spec": {{}}, "status": {{"phase": "{phase}"}}}}"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pods.json",
        &list("Pod", &[pod("Running"), pod("Failed")]),
    );
    let error = load(dir.path()).unwrap_err().to_string();
    assert!(error.contains("Pod payments/p is in both"), "{error}");
    // Two authorization-details files that disagree on a role.
    let details = |principal: &str| {
        format!(
            r#"{{"RoleDetailList": [{{"Path": "/", "RoleName": "app", "Arn": "arn:aws:iam::111122223333:role/app",
                "AssumeRolePolicyDocument": {{"Statement": [{{"Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {{"AWS": "arn:aws:iam::111122223333:role/{principal}"}}}}]}}}}]}}"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "iam-monday.json", &details("kiam-server"));
    write(dir.path(), "iam-tuesday.json", &details("admin"));
    let error = load(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("role arn:aws:iam::111122223333:role/app is in both")
            && error.contains("iam-monday.json")
            && error.contains("iam-tuesday.json"),
        "{error}"
    );
    // Identical copies (two captures, a list and its items) stay fine, and count once.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.json", &deployment("api", "api"));
    write(
        dir.path(),
        "b.json",
        &list("Deployment", &[deployment("api", "api")]),
    );
    write(
        dir.path(),
        "pods.json",
        &list("Pod", &[pod("Running"), pod("Running")]),
    );
    let inventory = load(dir.path()).unwrap();
    assert_eq!(inventory.workloads.len(), 1);
    assert_eq!(inventory.pods.len(), 1);
}

#[test]
fn type_errors_name_file_object_and_field_path() {
    // Regression (issue 12): "invalid type: string, expected struct RawSpec" named neither the
    // object nor the field.
    let bad = r#"{"kind": "Pod", "metadata": {"name": "api-2", "namespace": "payments"}, "spec": {"containers": "c"}}"#;
    let good =
        r#"{"kind": "Pod", "metadata": {"name": "api-1", "namespace": "payments"}, "spec": {}}"#;
    let cases = [
        ("pods.json", list("Pod", &[good.into(), bad.into()]), "pods.json:2:"),
        // Read as a stream: the same message, with the file's line.
        ("big.json", list("Pod", &[padded(good, 9 << 20), bad.into()]), "big.json:2:"),
        (
            "pods.yaml",
            "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: api-1, namespace: payments}\n- metadata: {name: api-2, namespace: payments}\n  spec:\n    containers: c\n".to_string(),
            "pods.yaml:7:",
        ),
    ];
    for (file, text, position) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), file, &text);
        let error = load(dir.path()).unwrap_err();
        assert!(matches!(error, InventoryError::Type { .. }), "{error:?}");
        let error = error.to_string();
        assert!(error.contains(position), "{error}");
        assert!(
            error.contains("Pod payments/api-2, field items[1].spec.containers: invalid type: string \"c\", expected a sequence"),
            "{error}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "deploy.json",
        r#"{"kind": "Deployment", "metadata": {"name": "api", "namespace": "payments"}, "spec": "x"}"#,
    );
    let error = load(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains(
            "Deployment payments/api, field spec: invalid type: string \"x\", expected an object"
        ),
        "{error}"
    );
    assert!(!error.contains("RawSpec"), "{error}");
}
