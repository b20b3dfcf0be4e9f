//! docs/bad-input.md, row by row, through the binary.

use std::path::Path;

use crate::inputs::{deployment, list, padded, write};
use crate::support;

/// Builds the snapshot directory of one bad-input class of docs/bad-input.md in `dir`; returns
/// the `--snapshot` argument (a path under `dir`).
fn bad_input(class: &str, dir: &Path) -> std::path::PathBuf {
    let snapshot = dir.join("snapshot");
    std::fs::create_dir_all(&snapshot).unwrap();
    let namespace =
        r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}}"#;
    let put = |name: &str, text: &str| write(&snapshot, name, text);
    match class {
        "json-syntax" => put("pods.json", "{\n  \"kind\": \"List\",\n  \"items\": [,]\n}\n"),
        "yaml-syntax" => put("ns.yaml", "kind: Namespace\nmetadata:\n  name: [unclosed\n"),
        "wrong-type-json" => put(
            "deploy.json",
            r#"{"kind": "Deployment", "metadata": {"name": "api", "namespace": "payments"}, "spec": "x"}"#,
        ),
        "wrong-type-yaml" => put(
            "deploy.yaml",
            "kind: Deployment\nmetadata:\n  name: api\n  namespace: payments\nspec:\n  replicas: many\n",
        ),
        "wrong-type-large-list" => put(
            "pods.json",
            &list(
                "Pod",
                &[
                    padded(r#"{"metadata": {"name": "a", "namespace": "payments"}}"#, 9 << 20),
                    r#"{"metadata": {"name": "b", "namespace": "payments"}, "spec": {"hostNetwork": "yes"}}"#.into(),
                ],
            ),
        ),
        "duplicate-field" => put(
            "ns.json",
            r#"{"kind": "Namespace", "metadata": {"name": "a", "name": "b"}}"#,
        ),
        "deep-nesting" => put("deep.json", &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))),
        "not-utf8" => std::fs::write(snapshot.join("ns.json"), b"{\"kind\": \"Namespace\", \"metadata\": {\"name\": \"\xff\"}}").unwrap(),
        "byte-order-mark" => {
            put("ns.json", &format!("\u{feff}{namespace}"));
            put("deploy.yaml", &format!("\u{feff}{}", deployment("api", "api")));
        }
        "merge-keys" => put(
            "pod.yaml",
            "x-meta: &meta\n  namespace: payments\n  annotations:\n    iam.amazonaws.com/role: api\napiVersion: v1\nkind: Pod\nmetadata:\n  <<: *meta\n  name: api-1\nspec: {}\n",
        ),
        "bad-merge-key" => put("ns.yaml", "kind: Namespace\nmetadata:\n  <<: 5\n  name: a\n"),
        "top-level-array" => put("list.json", "[1, 2]"),
        "top-level-scalar-yaml" => put("notes.yaml", "just a note\n"),
        "unknown-object" => put("terraform.json", r#"{"resource": {}}"#),
        "empty-file" => put("empty.yaml", ""),
        "no-snapshot-files" => put("notes.txt", "not read"),
        "not-a-directory" => {
            put("file.json", namespace);
            return snapshot.join("file.json");
        }
        "symlink-loop" => {
            put("sub/ns.json", namespace);
            std::os::unix::fs::symlink("..", snapshot.join("sub/back")).unwrap();
        }
        "conflicting-copies" => {
            put("a.json", &deployment("api", "api"));
            put("b.json", &deployment("api", "admin"));
        }
        "identical-copies" => {
            put("a.json", &deployment("api", "api"));
            put("b.json", &deployment("api", "api"));
        }
        "large-object" => {
            put("ns.json", namespace);
            put("deploy.json", &padded(&deployment("api", "api"), 9 << 20));
        }
        "namespace-not-captured" => put("a.json", &deployment("api", "api")),
        "name-that-escapes" => put(
            "ns.json",
            r#"{"kind": "ServiceAccount", "metadata": {"name": "x", "namespace": "../../etc"}}"#,
        ),
        "bad-policy-encoding" => put(
            "get-role.json",
            r#"{"Role":{"Arn":"arn:aws:iam::111122223333:role/r","RoleName":"r","Path":"/","AssumeRolePolicyDocument":"%7B%2"}}"#,
        ),
        "bad-stack-name" => put(
            "stacks.json",
            r#"{"StackResources":[{"StackName":"../x","StackId":"arn:aws:cloudformation:eu-west-1:111122223333:stack/x/1","LogicalResourceId":"R","PhysicalResourceId":"r","ResourceType":"AWS::IAM::Role"}]}"#,
        ),
        "bad-stack-id" => put(
            "stacks.json",
            r#"{"StackResources":[{"StackName":"payments","StackId":"payments","LogicalResourceId":"R","PhysicalResourceId":"r","ResourceType":"AWS::IAM::Role"}]}"#,
        ),
        other => panic!("docs/bad-input.md names {other:?}, which this test does not build"),
    }
    snapshot
}

/// Every row of docs/bad-input.md, tried through the binary: the exit code and the excerpt it
/// shows are what `scan --snapshot` gives (stdout and stderr together).
#[cfg(unix)]
#[test]
fn every_bad_input_class_gets_what_docs_bad_input_md_says() {
    let doc = include_str!("../../docs/bad-input.md");
    let rows: Vec<Vec<&str>> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert!(rows.len() >= 20, "{rows:?}");
    for row in rows {
        let [class, _, exit, excerpt] = row[..] else {
            panic!("a row of four columns: {row:?}")
        };
        let class = class.trim_matches('`');
        let excerpt = excerpt.trim_matches('`').trim();
        let dir = tempfile::tempdir().unwrap();
        let snapshot = bad_input(class, dir.path());
        let output = support::run(&["scan", "--snapshot", snapshot.to_str().unwrap()]);
        let shown = format!("{}{}", support::stdout(&output), support::stderr(&output));
        assert_eq!(
            output.status.code().map(|c| c.to_string()).as_deref(),
            Some(exit),
            "{class}: {shown}"
        );
        assert!(
            shown.contains(excerpt),
            "{class}: {excerpt:?} not in {shown}"
        );
    }
}
