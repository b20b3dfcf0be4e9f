//! EKS Pod Identity in the test control plane (issue 18): the real amazon-eks-pod-identity-webhook
//! injects Pod Identity credentials into the new pods of the service accounts its
//! container-credentials configuration lists, as EKS does for the accounts that have an
//! association, ahead of an IRSA annotation on the same account; an account taken off the list
//! goes back to IRSA for its new pods.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::IRSA_ROLE;
use crate::support::control_plane::ControlPlane;

const NAMESPACE: &str = "shop";
/// Annotated for IRSA and associated for Pod Identity.
const ASSOCIATED: &str = "checkout";
/// Annotated for IRSA only.
const IRSA_ONLY: &str = "reports";

const FULL_URI: &str = "http://169.254.170.23/v1/credentials";
const TOKEN_FILE: &str =
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";
const TOKEN_VOLUME: &str = "eks-pod-identity-token";
const AUDIENCE: &str = "pods.eks.amazonaws.com";

/// How long the webhook may take to see a new configuration (or a new account).
const RELOAD: Duration = Duration::from_secs(30);

fn role(name: &str) -> String {
    format!("arn:aws:iam::111122223333:role/{name}")
}

/// The value of `name` in the environment of every container of `pod`: `None` if no container
/// has it; panics if the containers disagree.
fn env(pod: &Value, name: &str) -> Option<String> {
    let containers = pod["spec"]["containers"].as_array().expect("containers");
    let values: Vec<Option<String>> = containers
        .iter()
        .map(|container| {
            container["env"].as_array().and_then(|env| {
                env.iter()
                    .find(|e| e["name"] == name)
                    .map(|e| e["value"].as_str().unwrap_or_default().to_string())
            })
        })
        .collect();
    assert!(
        values.windows(2).all(|pair| pair[0] == pair[1]),
        "the containers disagree on {name}: {pod:#}"
    );
    values.into_iter().next().flatten()
}

fn volume<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["spec"]["volumes"]
        .as_array()
        .and_then(|volumes| volumes.iter().find(|v| v["name"] == name))
}

/// Creates fresh pods of `account` (`PREFIX-1`, `PREFIX-2`, ...) until one, as the API server
/// stored it, satisfies `ready`, and returns it; fails after [`RELOAD`] with the last one.
fn new_pod_until(
    kube: &ControlPlane,
    account: &str,
    prefix: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + RELOAD;
    for attempt in 1.. {
        let name = format!("{prefix}-{attempt}");
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "serviceAccountName": account,
                "containers": [
                    {"name": "app", "image": "registry.example/app:1"},
                    {"name": "sidecar", "image": "registry.example/sidecar:1"},
                ],
            },
        });
        kube.kubectl_ok(&["create", "-f", "-"], Some(&pod.to_string()));
        let stored = kube
            .object("pod", Some(NAMESPACE), &name)
            .expect("the pod just created");
        if ready(&stored) {
            return stored;
        }
        assert!(
            Instant::now() < deadline,
            "no new pod of {NAMESPACE}/{account} {what} within {RELOAD:?} ({attempt} tried); \
             the last: {stored:#}{}",
            kube.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    unreachable!()
}

/// IRSA's mutation, and none of Pod Identity's.
fn assert_irsa(pod: &Value, role_arn: &str) {
    assert_eq!(
        env(pod, "AWS_ROLE_ARN").as_deref(),
        Some(role_arn),
        "{pod:#}"
    );
    assert_eq!(
        env(pod, "AWS_WEB_IDENTITY_TOKEN_FILE").as_deref(),
        Some("/var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
        "{pod:#}"
    );
    assert!(volume(pod, "aws-iam-token").is_some(), "{pod:#}");
    assert_eq!(
        env(pod, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        None,
        "{pod:#}"
    );
    assert_eq!(
        env(pod, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        None,
        "{pod:#}"
    );
    assert!(volume(pod, TOKEN_VOLUME).is_none(), "{pod:#}");
    assert!(
        pod["metadata"]["labels"]["eks.amazonaws.com/pod-identity"].is_null(),
        "{pod:#}"
    );
}

/// Pod Identity's mutation, and none of IRSA's.
fn assert_pod_identity(pod: &Value) {
    assert_eq!(
        env(pod, "AWS_CONTAINER_CREDENTIALS_FULL_URI").as_deref(),
        Some(FULL_URI),
        "{pod:#}"
    );
    assert_eq!(
        env(pod, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").as_deref(),
        Some(TOKEN_FILE),
        "{pod:#}"
    );
    let token_volume =
        volume(pod, TOKEN_VOLUME).unwrap_or_else(|| panic!("{TOKEN_VOLUME}: {pod:#}"));
    let sources = token_volume["projected"]["sources"]
        .as_array()
        .unwrap_or_else(|| panic!("a projected volume: {token_volume:#}"));
    assert_eq!(sources.len(), 1, "{token_volume:#}");
    let token = &sources[0]["serviceAccountToken"];
    assert_eq!(token["audience"], AUDIENCE, "{token_volume:#}");
    assert_eq!(token["path"], "eks-pod-identity-token", "{token_volume:#}");
    // 86400 s, less the webhook's jitter of up to two hours.
    let expiration = token["expirationSeconds"].as_u64().unwrap_or_default();
    assert!((79_200..=86_400).contains(&expiration), "{token_volume:#}");
    for container in pod["spec"]["containers"].as_array().unwrap() {
        let mounted = container["volumeMounts"].as_array().is_some_and(|mounts| {
            mounts.iter().any(|m| {
                m["name"] == TOKEN_VOLUME
                    && m["mountPath"] == "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
            })
        });
        assert!(
            mounted,
            "{TOKEN_VOLUME} mounted in every container: {pod:#}"
        );
    }
    assert_eq!(
        pod["metadata"]["labels"]["eks.amazonaws.com/pod-identity"], "enabled",
        "{pod:#}"
    );
    // Pod Identity takes precedence over the account's IRSA annotation.
    assert_eq!(env(pod, "AWS_ROLE_ARN"), None, "{pod:#}");
    assert_eq!(env(pod, "AWS_WEB_IDENTITY_TOKEN_FILE"), None, "{pod:#}");
    assert!(volume(pod, "aws-iam-token").is_none(), "{pod:#}");
}

fn has(pod: &Value, name: &str) -> bool {
    env(pod, name).is_some()
}

#[test]
#[ignore = "needs the control plane; scripts/test builds and runs it"]
fn an_associated_account_gets_pod_identity_over_its_irsa_annotation_until_it_is_dissociated() {
    let kube = ControlPlane::start();
    let account = |name: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "annotations": {IRSA_ROLE: role(name)},
            },
        })
    };
    kube.apply(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        account(ASSOCIATED),
        account(IRSA_ONLY),
    ]);

    // No association yet: the account's new pods are IRSA's (once the webhook has seen it).
    let before = new_pod_until(&kube, ASSOCIATED, "before", "has AWS_ROLE_ARN", |pod| {
        has(pod, "AWS_ROLE_ARN")
    });
    assert_irsa(&before, &role(ASSOCIATED));

    kube.set_pod_identity_associations(&[(NAMESPACE, ASSOCIATED)]);
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(kube.pod_identity_config()).expect("the associations"),
    )
    .expect("JSON");
    assert_eq!(
        config,
        json!({"identities": [{"namespace": NAMESPACE, "serviceAccount": ASSOCIATED}]})
    );
    let associated = new_pod_until(
        &kube,
        ASSOCIATED,
        "associated",
        "has AWS_CONTAINER_CREDENTIALS_FULL_URI",
        |pod| has(pod, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    );
    assert_pod_identity(&associated);
    // A pod created before the association keeps what it was given.
    let name = before["metadata"]["name"].as_str().unwrap();
    let kept = kube
        .object("pod", Some(NAMESPACE), name)
        .expect("the pod created before");
    assert_irsa(&kept, &role(ASSOCIATED));

    // The account beside it, annotated but not associated, stays on IRSA.
    let irsa_only = new_pod_until(&kube, IRSA_ONLY, "irsa-only", "has AWS_ROLE_ARN", |pod| {
        has(pod, "AWS_ROLE_ARN")
    });
    assert_irsa(&irsa_only, &role(IRSA_ONLY));

    // Taken off the list (which still lists another account), new pods are IRSA's again.
    kube.set_pod_identity_associations(&[("elsewhere", "unrelated")]);
    let dissociated = new_pod_until(
        &kube,
        ASSOCIATED,
        "dissociated",
        "is without AWS_CONTAINER_CREDENTIALS_FULL_URI",
        |pod| !has(pod, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    );
    assert_irsa(&dissociated, &role(ASSOCIATED));
}
