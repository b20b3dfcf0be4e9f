//! What the loader reads: AWS CLI output, URL-encoded policies, Kubernetes JSON and YAML in every
//! shape, large objects, byte-order marks, merge keys; what it ignores, with a warning.

use irsa_migrate::inventory::WorkloadKind;

use crate::inputs::{load, padded, write};
use crate::support;

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
    // describe-stack-resources.json: the stack made the role (by name, whatever its path); its
    // bucket is not read.
    let stack = inventory
        .iam
        .stack_of(&app.arn)
        .expect("the stack's role is recognised");
    assert_eq!(stack.stack_name, "teams-app");
    assert_eq!(stack.logical_id, "AppRole");
    assert_eq!(inventory.iam.stack_roles.len(), 1);
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
