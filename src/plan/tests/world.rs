//! [`World`]: a kiam cluster described as the objects `kubectl`/`aws` would print, loaded as
//! snapshot files.

use serde_json::{Value, json};

use crate::inventory::Inventory;
use crate::inventory::snapshot::{SnapshotFile, load_files};
use crate::plan::{Plan, Settings, plan};

pub(super) const ACCOUNT: &str = "111122223333";
pub(super) const ISSUER: &str = "oidc.eks.eu-west-1.amazonaws.com/id/TEST";
pub(super) const KIAM: &str = "arn:aws:iam::111122223333:role/kiam-server";

/// A kiam cluster described as the objects `kubectl`/`aws` would print.
pub(crate) struct World {
    kubernetes: Vec<Value>,
    pub(super) roles: Vec<Value>,
    other_account_roles: Vec<Value>,
    providers: Vec<String>,
}

pub(crate) fn arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

impl World {
    pub(crate) fn new() -> World {
        let server = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kiam-server", "namespace": "kube-system"},
            "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "kiam", "image": "quay.io/uswitch/kiam:v4.0",
                "args": ["server", format!("--role-base-arn=arn:aws:iam::{ACCOUNT}:role/"), "--assume-role-arn=kiam-server"]}]}}}});
        let mut world = World {
            kubernetes: vec![server],
            roles: Vec::new(),
            other_account_roles: Vec::new(),
            providers: Vec::new(),
        };
        world.kubernetes.push(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "pod-identity-webhook"}, "webhooks": [{"name": "iam-for-pods.amazonaws.com"}]}));
        world.roles.push(json!({"RoleName": "kiam-server", "Path": "/", "Arn": KIAM,
            "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": arn("node")}, "Action": "sts:AssumeRole"}]},
            "RolePolicyList": [{"PolicyName": "assume", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}}]}));
        world
    }

    pub(crate) fn namespace(&mut self, name: &str, permitted: &str) -> &mut World {
        self.kubernetes.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "annotations": {"iam.amazonaws.com/permitted": permitted}}}));
        self
    }

    pub(crate) fn namespace_without_policy(&mut self, name: &str) -> &mut World {
        self.kubernetes
            .push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
        self
    }

    pub(crate) fn service_account(
        &mut self,
        namespace: &str,
        name: &str,
        role_arn: Option<&str>,
    ) -> &mut World {
        let mut account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace},
            "imagePullSecrets": [{"name": "registry"}], "automountServiceAccountToken": false});
        if let Some(role) = role_arn {
            account["metadata"]["annotations"] = json!({"eks.amazonaws.com/role-arn": role});
        }
        self.kubernetes.push(account);
        self
    }

    pub(crate) fn workload(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
        account: &str,
        role: Option<&str>,
    ) -> &mut World {
        let annotations = match role {
            Some(role) => json!({"iam.amazonaws.com/role": role}),
            None => json!({}),
        };
        let template = json!({"metadata": {"annotations": annotations}, "spec": {"serviceAccountName": account, "containers": [{"name": "c"}]}});
        let spec = match kind {
            "CronJob" => json!({"jobTemplate": {"spec": {"template": template}}}),
            _ => json!({"template": template}),
        };
        let api = if kind == "CronJob" || kind == "Job" {
            "batch/v1"
        } else {
            "apps/v1"
        };
        self.kubernetes.push(json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}));
        self
    }

    /// Merges `fields` into the spec of the workload added last.
    pub(crate) fn with_spec(&mut self, fields: Value) -> &mut World {
        let spec = &mut self.kubernetes.last_mut().expect("a workload was added")["spec"];
        if let (Some(spec), Value::Object(fields)) = (spec.as_object_mut(), fields) {
            spec.extend(fields);
        }
        self
    }

    pub(crate) fn role_binding(
        &mut self,
        namespace: &str,
        name: &str,
        account: &str,
    ) -> &mut World {
        self.kubernetes.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": account}]}));
        self
    }

    /// A role trusting kiam's server role, plus `padding` extra statements to grow its trust policy.
    pub(crate) fn role(&mut self, name: &str, trusts_kiam: bool, padding: usize) -> &mut World {
        let mut statements = vec![
            json!({"Effect": "Allow", "Principal": {"AWS": if trusts_kiam { KIAM.to_string() } else { arn("other") }}, "Action": "sts:AssumeRole"}),
        ];
        for i in 0..padding {
            statements.push(json!({"Effect": "Allow", "Principal": {"AWS": arn(&format!("ci-runner-{i:04}"))}, "Action": "sts:AssumeRole"}));
        }
        self.roles.push(json!({"RoleName": name, "Path": "/", "Arn": arn(name), "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": statements}}));
        self
    }

    /// Replaces the kiam server role's inline policies (by default one granting sts:AssumeRole
    /// on `*`).
    pub(crate) fn kiam_server_policies(&mut self, policies: Value) -> &mut World {
        let server = self
            .roles
            .iter_mut()
            .find(|r| r["Arn"] == KIAM)
            .expect("made by new");
        server["RolePolicyList"] = policies;
        self
    }

    pub(crate) fn foreign_role(&mut self, arn: &str) -> &mut World {
        self.other_account_roles.push(json!({"RoleName": "x", "Path": "/", "Arn": arn,
            "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": KIAM}, "Action": "sts:AssumeRole"}]}}));
        self
    }

    pub(crate) fn provider(&mut self, account: &str) -> &mut World {
        self.providers
            .push(format!("arn:aws:iam::{account}:oidc-provider/{ISSUER}"));
        self
    }

    pub(crate) fn inventory(&self) -> Inventory {
        let mut files = vec![
            (
                "k8s.json",
                json!({"apiVersion": "v1", "kind": "List", "items": self.kubernetes}),
            ),
            (
                "iam.json",
                json!({"RoleDetailList": self.roles, "Policies": []}),
            ),
            (
                "oidc.json",
                json!({"OpenIDConnectProviderList": self.providers.iter().map(|a| json!({"Arn": a})).collect::<Vec<_>>()}),
            ),
            (
                "eks.json",
                json!({"cluster": {"name": "test", "arn": format!("arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/test"), "version": "1.29",
                "identity": {"oidc": {"issuer": format!("https://{ISSUER}")}}}}),
            ),
        ];
        if !self.other_account_roles.is_empty() {
            files.push((
                "other.json",
                json!({"RoleDetailList": self.other_account_roles, "Policies": []}),
            ));
        }
        let files: Vec<SnapshotFile<'_>> = files
            .into_iter()
            .map(|(name, value)| SnapshotFile {
                path: name.into(),
                text: value.to_string().into(),
            })
            .collect();
        load_files(&files).expect("test inventory loads")
    }

    pub(crate) fn plan(&self) -> Plan {
        plan(&self.inventory(), "test", &Settings::default()).expect("plans")
    }
}
