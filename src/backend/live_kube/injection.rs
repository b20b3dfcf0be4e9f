//! What the pod identity webhook should have put into a pod (its role's environment and token
//! volume), judged as the webhook injects: the template's own containers, the skips it honours.

use serde_json::Value;

/// Set by the pod identity webhook in every container of a pod whose service account has a role.
const ROLE_ENV: &str = "AWS_ROLE_ARN";
const TOKEN_ENV: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
const AUDIENCE: &str = "sts.amazonaws.com";

/// The pod label whose presence makes the webhook's registration skip a pod (its objectSelector).
const SKIP_POD_LABEL: &str = "eks.amazonaws.com/skip-pod-identity-webhook";
/// The pod annotation listing the containers the webhook leaves alone, comma-separated.
const SKIP_CONTAINERS: &str = "eks.amazonaws.com/skip-containers";

/// What the webhook should have put into the pod and did not, in words. Only the containers and
/// init containers of the workload's own template are judged, as the webhook injects them: not
/// those named in `eks.amazonaws.com/skip-containers`, not sidecars that a later webhook added.
/// A container whose template sets `AWS_ROLE_ARN` or the token file itself is left alone by the
/// webhook, so its own value must be the role.
pub(super) fn missing_credentials(pod: &Value, template: &Value, role_arn: &str) -> Option<String> {
    if !pod["metadata"]["labels"][SKIP_POD_LABEL].is_null() {
        return Some(format!(
            "is labelled {SKIP_POD_LABEL}, so the webhook never mutates it"
        ));
    }
    let skipped: Vec<&str> = pod["metadata"]["annotations"][SKIP_CONTAINERS]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let declared = |list: &str, name: &str| {
        template["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == name)
    };
    let mut judged = 0;
    for list in ["initContainers", "containers"] {
        for container in pod["spec"][list].as_array().into_iter().flatten() {
            let container_name = container["name"].as_str().unwrap_or_default();
            if skipped.contains(&container_name) || !declared(list, container_name) {
                continue;
            }
            judged += 1;
            let env = |name: &str| {
                container["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["name"] == name)
                    .and_then(|e| e["value"].as_str())
            };
            match env(ROLE_ENV) {
                None => return Some(format!("has no {ROLE_ENV} in container {container_name}")),
                Some(found) if found != role_arn => {
                    return Some(format!(
                        "has {ROLE_ENV}={found} in container {container_name}, not {role_arn}"
                    ));
                }
                Some(_) => {}
            }
            if env(TOKEN_ENV).is_none() {
                return Some(format!("has no {TOKEN_ENV} in container {container_name}"));
            }
        }
    }
    if judged == 0 {
        return None;
    }
    let has_token_volume = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| v["projected"]["sources"].as_array().into_iter().flatten())
        .any(|source| source["serviceAccountToken"]["audience"] == AUDIENCE);
    if !has_token_volume {
        return Some(format!(
            "has no projected service account token volume for audience {AUDIENCE}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(env: Value, volumes: Value, ready: &str) -> Value {
        json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "app", "env": env}], "volumes": volumes},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        })
    }

    #[test]
    fn a_pod_without_the_injected_role_is_reported_with_what_is_missing() {
        let role = "arn:aws:iam::111122223333:role/web";
        let template = json!({"spec": {"containers": [{"name": "app"}]}});
        let token_volume = json!([{"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}}]}}]);
        let env = json!([{"name": "AWS_ROLE_ARN", "value": role}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}]);
        assert_eq!(
            missing_credentials(
                &pod(env.clone(), token_volume.clone(), "True"),
                &template,
                role
            ),
            None
        );
        assert!(
            missing_credentials(
                &pod(json!([]), token_volume.clone(), "True"),
                &template,
                role
            )
            .unwrap()
            .contains("no AWS_ROLE_ARN in container app")
        );
        assert!(
            missing_credentials(&pod(env.clone(), json!([]), "True"), &template, role)
                .unwrap()
                .contains("projected service account token")
        );
        assert!(
            missing_credentials(
                &pod(env, token_volume, "True"),
                &template,
                "arn:aws:iam::1:role/other"
            )
            .unwrap()
            .contains("not arn:aws:iam::1:role/other")
        );
    }

    #[test]
    fn only_the_templates_containers_that_the_webhook_mutates_are_judged() {
        let role = "arn:aws:iam::111122223333:role/web";
        let template = json!({"spec": {"containers": [{"name": "app"}, {"name": "proxy"}]}});
        let injected = json!([{"name": "AWS_ROLE_ARN", "value": role}, {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/t"}]);
        let volumes = json!([{"projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com"}}]}}]);
        let pod = |annotations: Value, labels: Value, containers: Value| {
            json!({"metadata": {"name": "web-1", "annotations": annotations, "labels": labels},
                   "spec": {"containers": containers, "volumes": volumes}})
        };
        // `proxy` is skipped by annotation; `mesh` was injected by a later webhook.
        let skipped = pod(
            json!({"eks.amazonaws.com/skip-containers": "proxy"}),
            json!({}),
            json!([{"name": "app", "env": injected}, {"name": "proxy"}, {"name": "mesh"}]),
        );
        assert_eq!(missing_credentials(&skipped, &template, role), None);
        let unskipped = pod(
            json!({}),
            json!({}),
            json!([{"name": "app", "env": injected}, {"name": "proxy"}]),
        );
        assert!(
            missing_credentials(&unskipped, &template, role)
                .unwrap()
                .contains("no AWS_ROLE_ARN in container proxy")
        );
        let labelled = pod(
            json!({}),
            json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"}),
            json!([{"name": "app", "env": injected}]),
        );
        assert!(
            missing_credentials(&labelled, &template, role)
                .unwrap()
                .contains("never mutates it")
        );
    }
}
