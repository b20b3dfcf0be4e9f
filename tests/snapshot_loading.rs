//! The snapshot loader through the public API: every supported shape, recognised by content.

mod support;

use std::path::Path;

use irsa_migrate::inventory::snapshot::{InventoryError, load_dir, write_dir};
use irsa_migrate::inventory::{Inventory, WorkloadKind};

fn load(dir: &Path) -> Result<Inventory, InventoryError> {
    load_dir(dir, &irsa_migrate::progress::Silent)
}

fn write(dir: &Path, name: &str, text: &str) {
    if let Some(parent) = Path::new(name).parent() {
        std::fs::create_dir_all(dir.join(parent)).unwrap();
    }
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn real_aws_cli_output_is_read() {
    // Captured from the AWS CLI v1.46 against moto (shared/samples/aws-cli).
    let inventory = load(&support::fixture("aws-cli-samples")).unwrap();
    let cluster = inventory
        .cluster
        .as_ref()
        .expect("describe-cluster is recognised");
    assert_eq!(cluster.name, "demo");
    assert_eq!(cluster.account, "111122223333");
    assert_eq!(cluster.region, "eu-west-1");
    assert_eq!(cluster.version.as_deref(), Some("1.19"));
    assert!(
        cluster
            .oidc_issuer
            .as_deref()
            .unwrap()
            .starts_with("https://oidc.eks.eu-west-1.amazonaws.com/id/")
    );
    let node = &inventory.iam.roles["arn:aws:iam::111122223333:role/eks-node"];
    assert_eq!(node.inline_policies()[0].0, "kiam-assume");
    assert_eq!(
        node.instance_profiles,
        vec!["arn:aws:iam::111122223333:instance-profile/eks-node"]
    );
    let app = &inventory.iam.roles["arn:aws:iam::111122223333:role/teams/app"];
    assert_eq!(app.path, "/teams/");
    assert_eq!(
        app.attached_policies[0].policy_arn,
        "arn:aws:iam::111122223333:policy/app-read"
    );
    // get-role.json holds the same role without permissions: it must not hide them.
    assert!(app.permissions_known);
    assert!(
        inventory.iam.policies["arn:aws:iam::111122223333:policy/app-read"]
            .document
            .is_some()
    );
    assert!(inventory.iam.accounts.contains("111122223333"));
    assert_eq!(inventory.iam.oidc_providers.as_ref().unwrap().len(), 1);
    assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
}

#[test]
fn url_encoded_policies_equal_decoded_ones() {
    let dir = tempfile::tempdir().unwrap();
    let decoded = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kiam-server"},"Action":"sts:AssumeRole"}]}"#;
    let encoded: String = decoded
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let details = |name: &str, doc: &str| {
        format!(
            r#"{{"RoleDetailList":[{{"Path":"/","RoleName":"{name}","Arn":"arn:aws:iam::111122223333:role/{name}","AssumeRolePolicyDocument":{doc},"RolePolicyList":[{{"PolicyName":"p","PolicyDocument":{doc}}}]}}],"Policies":[]}}"#
        )
    };
    write(dir.path(), "a.json", &details("plain", decoded));
    write(
        dir.path(),
        "b.json",
        &details("encoded", &format!("\"{encoded}\"")),
    );
    let inventory = load(dir.path()).unwrap();
    let plain = &inventory.iam.roles["arn:aws:iam::111122223333:role/plain"];
    let encoded = &inventory.iam.roles["arn:aws:iam::111122223333:role/encoded"];
    assert_eq!(plain.trust_policy(), encoded.trust_policy());
    assert_eq!(plain.inline_policies()[0].1, encoded.inline_policies()[0].1);
}

#[test]
fn kubernetes_shapes_json_yaml_lists_and_multi_documents() {
    let dir = tempfile::tempdir().unwrap();
    // A single object, as `kubectl get ns payments -o json`.
    write(
        dir.path(),
        "ns.json",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"payments","annotations":{"iam.amazonaws.com/permitted":".*"}}}"#,
    );
    // A typed list from the API: items carry no kind.
    write(
        dir.path(),
        "sub/pods.json",
        r#"{"apiVersion":"v1","kind":"PodList","metadata":{},"items":[
        {"metadata":{"name":"api-1","namespace":"payments","ownerReferences":null},"spec":{"serviceAccountName":"api","containers":[{"name":"c"}]},"status":{"phase":"Running"}}]}"#,
    );
    // Multi-document YAML with empty documents and a `List`.
    write(
        dir.path(),
        "all.yaml",
        "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: api\n  namespace: payments\nimagePullSecrets:\n- name: ecr\nautomountServiceAccountToken: false\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: api\n    namespace: payments\n  spec:\n    replicas: 0\n    template:\n      metadata:\n        annotations:\n          iam.amazonaws.com/role: api\n      spec:\n        containers:\n        - name: c\n- apiVersion: batch/v1\n  kind: CronJob\n  metadata:\n    name: nightly\n    namespace: payments\n  spec:\n    jobTemplate:\n      spec:\n        template:\n          spec:\n            serviceAccountName: api\n            containers:\n            - name: c\n",
    );
    write(
        dir.path(),
        "rbac.yml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: view\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\nsubjects: null\n",
    );
    let inventory = load(dir.path()).unwrap();
    assert!(inventory.namespaces.contains_key("payments"));
    let pod = inventory
        .pods
        .iter()
        .find(|p| p.namespace == "payments" && p.metadata.name == "api-1")
        .unwrap();
    assert_eq!(pod.spec.service_account(), "api");
    let sa = &inventory.service_accounts[&("payments".to_string(), "api".to_string())];
    assert_eq!(sa.image_pull_secrets[0].name, "ecr");
    assert_eq!(sa.automount_service_account_token, Some(false));
    let kinds: Vec<_> = inventory
        .workloads
        .keys()
        .map(|k| (k.kind, k.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (WorkloadKind::Deployment, "api"),
            (WorkloadKind::CronJob, "nightly")
        ]
    );
    let cronjob = inventory
        .workloads
        .values()
        .find(|w| w.key.kind == WorkloadKind::CronJob)
        .unwrap();
    assert_eq!(cronjob.template.spec.service_account(), "api");
    assert_eq!(inventory.rbac_bindings.len(), 1);
    assert!(inventory.rbac_bindings[0].subjects.is_empty());
    assert!(inventory.kinds_seen.contains("Pod"));
    assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
}

#[test]
fn unknown_files_are_warnings_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "terraform.json", r#"{"resource": {}}"#);
    write(dir.path(), "empty.yaml", "");
    write(dir.path(), "ignored.txt", "not read");
    let inventory = load(dir.path()).unwrap();
    let files: Vec<_> = inventory
        .warnings
        .iter()
        .map(|w| w.file.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(files, vec!["empty.yaml", "terraform.json"]);
}

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

#[test]
fn rendered_snapshot_reads_back_into_the_same_inventory() {
    use irsa_migrate::inventory::snapshot::{fingerprint, write_dir};
    let demo = irsa_migrate::inventory::demo::inventory().unwrap();
    let mut kube2iam = load(&support::fixture("kube2iam")).unwrap();
    kube2iam.warnings.clear();
    let samples = load(&support::fixture("aws-cli-samples")).unwrap();
    for original in [demo, kube2iam, samples] {
        let dir = tempfile::tempdir().unwrap();
        write_dir(&original, dir.path()).unwrap();
        let reread = load(dir.path()).unwrap();
        assert_eq!(reread, original);
        assert_eq!(fingerprint(&reread), fingerprint(&original));
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
    let error = write_dir(&inventory, dir.path()).unwrap_err().to_string();
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
    write_dir(&inventory, &own).unwrap();
    write_dir(&inventory, &own).unwrap();
    assert_eq!(load(&own).unwrap().workloads, inventory.workloads);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    write_dir(&inventory, &empty).unwrap();
}

#[cfg(unix)]
#[test]
fn snapshots_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let inventory = load(&support::fixture("kube2iam")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snap");
    write_dir(&inventory, &out).unwrap();
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
    write_dir(&inventory, &out).unwrap();
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

/// Kubernetes objects of namespace `payments` as one JSON list of `kind`, each item from `item`.
fn list(kind: &str, items: &[String]) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "{kind}List", "metadata": {{}}, "items": [{}]}}"#,
        items.join(",\n")
    )
}

fn deployment(name: &str, role: &str) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {{"name": "{name}", "namespace": "payments"}},
            "spec": {{"template": {{"metadata": {{"annotations": {{"iam.amazonaws.com/role": "{role}"}}}},
                                   "spec": {{"containers": [{{"name": "c"}}]}}}}}}}}"#
    )
}

#[cfg(unix)]
#[test]
fn a_directory_symlink_loop_is_an_error_naming_the_link() {
    // Regression (issue 12): a link to an ancestor was followed forever (7.8 GB, no message).
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sub/ns.json",
        r#"{"kind": "Namespace", "metadata": {"name": "a"}}"#,
    );
    std::os::unix::fs::symlink("..", dir.path().join("sub/back")).unwrap();
    match load(dir.path()) {
        Err(InventoryError::Loop { path, ancestor }) => {
            assert!(path.ends_with("sub/back"), "{}", path.display());
            assert_eq!(ancestor, dir.path());
        }
        other => panic!("expected a loop error, got {other:?}"),
    }
    // A directory reached twice without a loop is read once.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "day1/ns.json",
        r#"{"kind": "Namespace", "metadata": {"name": "a"}}"#,
    );
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

/// Pads a JSON object's `metadata` with an annotation so the file reaches `bytes`.
fn padded(object: &str, bytes: usize) -> String {
    let padding = format!(
        r#""metadata": {{"annotations": {{"padding": "{}"}}, "#,
        "x".repeat(bytes)
    );
    object.replacen(r#""metadata": {"#, &padding, 1)
}

#[test]
fn a_json_object_of_8_mib_or_more_is_read() {
    // Regression (issue 12): read as a stream, a single object of 8 MiB or more was dropped
    // without a word.
    let dir = tempfile::tempdir().unwrap();
    let namespace =
        r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}}"#;
    write(dir.path(), "ns.json", &padded(namespace, 9 << 20));
    let inventory = load(dir.path()).unwrap();
    assert!(inventory.namespaces.contains_key("payments"));
    assert!(inventory.warnings.is_empty(), "{:?}", inventory.warnings);
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

#[test]
fn a_byte_order_mark_is_accepted() {
    // Regression (issue 12): a UTF-8 BOM was an unexplained parse error.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ns.json",
        "\u{feff}{\"kind\": \"Namespace\", \"metadata\": {\"name\": \"a\"}}",
    );
    write(
        dir.path(),
        "ns.yaml",
        "\u{feff}kind: Namespace\nmetadata:\n  name: b\n",
    );
    let big = padded(
        r#"{"kind": "Namespace", "metadata": {"name": "c"}}"#,
        9 << 20,
    );
    write(dir.path(), "big.json", &format!("\u{feff}{big}"));
    let inventory = load(dir.path()).unwrap();
    let names: Vec<&String> = inventory.namespaces.keys().collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn yaml_merge_keys_are_honoured() {
    // Regression (issue 12): `<<: *meta` was ignored, so the pod lost its namespace and role.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pods.yaml",
        "x-base: &base\n  namespace: payments\nx-meta: &meta\n  <<: *base\n  annotations:\n    iam.amazonaws.com/role: api\napiVersion: v1\nkind: Pod\nmetadata:\n  <<: *meta\n  name: api-1\nspec: {}\n",
    );
    let inventory = load(dir.path()).unwrap();
    let pod = &inventory.pods[0];
    assert_eq!(
        (pod.namespace.as_str(), pod.metadata.name.as_str()),
        ("payments", "api-1")
    );
    assert_eq!(
        pod.metadata
            .annotations
            .get("iam.amazonaws.com/role")
            .map(String::as_str),
        Some("api")
    );
    // A merge key that is not a mapping is an error naming it.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "kind: Namespace\nmetadata:\n  <<: 5\n  name: a\n",
    );
    let error = load(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("bad.yaml") && error.contains("merge key `<<`"),
        "{error}"
    );
}

#[test]
fn documents_that_are_not_objects_are_warnings_naming_the_file() {
    // Regression (issue 12): a top-level JSON array or string stopped the run, though unknown
    // files are documented as ignored.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "array.json", "[1, 2]");
    write(dir.path(), "string.json", "\"x\"");
    write(dir.path(), "number.json", "5");
    write(
        dir.path(),
        "docs.yaml",
        "--- just text\n---\nkind: Namespace\nmetadata:\n  name: a\n",
    );
    let inventory = load(dir.path()).unwrap();
    let warnings: Vec<(String, &str)> = inventory
        .warnings
        .iter()
        .map(|w| {
            let file = w.file.file_name().unwrap().to_string_lossy().into_owned();
            (file, w.message.split(',').next().unwrap())
        })
        .collect();
    assert_eq!(
        warnings,
        [
            ("array.json".to_string(), "a list"),
            ("docs.yaml".to_string(), "a string"),
            ("number.json".to_string(), "a number"),
            ("string.json".to_string(), "a string"),
        ]
    );
    assert!(inventory.namespaces.contains_key("a"));
}

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
        other => panic!("docs/bad-input.md names {other:?}, which this test does not build"),
    }
    snapshot
}

/// Every row of docs/bad-input.md, tried through the binary: the exit code and the excerpt it
/// shows are what `scan --snapshot` gives (stdout and stderr together).
#[cfg(unix)]
#[test]
fn every_bad_input_class_gets_what_docs_bad_input_md_says() {
    let doc = include_str!("../docs/bad-input.md");
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
