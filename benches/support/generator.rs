//! Synthetic snapshots of any size, in the formats `kubectl get -o json` and the AWS CLI print,
//! with the mix of cases the fixtures have: Deployments with ReplicaSets, StatefulSets,
//! DaemonSets, CronJobs with a running Job, bare pods, shared service accounts, denied roles,
//! missing roles, IRSA-only and hostNetwork workloads, RBAC bindings, a kiam server.
//!
//! Objects are written one at a time, so generating 150,000 pods needs little memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{Value, json};

pub const ACCOUNT: &str = "111122223333";
const ISSUER: &str = "oidc.eks.eu-west-1.amazonaws.com/id/BENCH0000000000000000000000000000";
const KIAM: &str = "arn:aws:iam::111122223333:role/kiam-server";
/// Pods per namespace: 8 Deployments of 5, a StatefulSet of 3, a CronJob's Job, a bare pod, a
/// DaemonSet's share.
pub const PODS_PER_NAMESPACE: usize = 50;

/// Writes a list file one item at a time.
struct ListWriter {
    out: BufWriter<File>,
    first: bool,
}

impl ListWriter {
    fn create(path: &Path, kind: &str) -> std::io::Result<ListWriter> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
        write!(
            out,
            "{{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"{kind}\",\n    \"metadata\": {{\"resourceVersion\": \"\"}},\n    \"items\": [\n"
        )?;
        Ok(ListWriter { out, first: true })
    }

    fn push(&mut self, item: &Value) -> std::io::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        // kubectl indents with four spaces.
        let mut serializer = serde_json::Serializer::with_formatter(
            &mut self.out,
            serde_json::ser::PrettyFormatter::with_indent(b"    "),
        );
        serde::Serialize::serialize(item, &mut serializer).map_err(std::io::Error::other)
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.out.write_all(b"\n    ]\n}\n")?;
        self.out.flush()
    }
}

fn uid(seed: &str) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in seed.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    let h = format!(
        "{hash:016x}{:016x}",
        hash.rotate_left(17) ^ 0x9e3779b97f4a7c15
    );
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "AWS_REGION", "value": "eu-west-1"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access", "readOnly": true}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
    })
}

fn pod_spec(account: &str, image: &str, host_network: bool) -> Value {
    let mut spec = json!({
        "containers": [container("app", image)],
        "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
        "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {},
        "serviceAccount": account, "serviceAccountName": account, "terminationGracePeriodSeconds": 30,
        "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                        {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}],
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}}]}}]
    });
    if host_network {
        spec["hostNetwork"] = json!(true);
    }
    spec
}

fn template(app: &str, account: &str, role: Option<&str>, host_network: bool) -> Value {
    let mut metadata = json!({"labels": {"app": app, "app.kubernetes.io/name": app}});
    if let Some(role) = role {
        metadata["annotations"] = json!({"iam.amazonaws.com/role": role});
    }
    json!({"metadata": metadata, "spec": pod_spec(account, &format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/{app}:1.0.0"), host_network)})
}

/// `metadata.managedFields` of a running pod as the API server keeps them: its controller's
/// apply of the template, the kubelet's status updates.
fn managed_fields() -> Value {
    let container = json!({"f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}}},
        "f:readinessProbe": {".": {}, "f:failureThreshold": {}, "f:httpGet": {".": {}, "f:path": {}, "f:port": {}, "f:scheme": {}}, "f:periodSeconds": {}, "f:successThreshold": {}, "f:timeoutSeconds": {}},
        "f:resources": {".": {}, "f:limits": {".": {}, "f:memory": {}}, "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}},
        "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}});
    let condition = |kind: &str| {
        (
            format!("k:{{\"type\":\"{kind}\"}}"),
            json!({".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}),
        )
    };
    let conditions: serde_json::Map<String, Value> = [
        "ContainersReady",
        "Initialized",
        "PodReadyToStartContainers",
        "PodScheduled",
        "Ready",
    ]
    .into_iter()
    .map(condition)
    .collect();
    json!([
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kube-controller-manager", "operation": "Update", "time": "2026-10-01T08:00:00Z",
         "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:iam.amazonaws.com/role": {}}, "f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:app.kubernetes.io/name": {}, "f:pod-template-hash": {}},
            "f:ownerReferences": {".": {}, "k:{\"uid\":\"0c6a1c9e-5b1f-4d0e-9a51-2f8b1f0e7d11\"}": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": container}, "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:serviceAccount": {}, "f:serviceAccountName": {}, "f:terminationGracePeriodSeconds": {}}}},
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubelet", "operation": "Update", "subresource": "status", "time": "2026-10-01T08:00:09Z",
         "fieldsV1": {"f:status": {"f:conditions": conditions, "f:containerStatuses": {}, "f:hostIP": {}, "f:hostIPs": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {".": {}, "k:{\"ip\":\"10.0.55.12\"}": {".": {}, "f:ip": {}}}, "f:startTime": {}}}}
    ])
}

fn pod(
    namespace: &str,
    name: &str,
    template: &Value,
    owner: Option<(&str, &str)>,
    node: usize,
    managed: Option<&Value>,
) -> Value {
    let mut metadata = template["metadata"].clone();
    if let Some(fields) = managed {
        metadata["managedFields"] = fields.clone();
    }
    metadata["name"] = json!(name);
    metadata["namespace"] = json!(namespace);
    metadata["uid"] = json!(uid(&format!("pod/{namespace}/{name}")));
    metadata["resourceVersion"] = json!("104857601");
    metadata["creationTimestamp"] = json!("2026-10-01T08:00:00Z");
    if let Some((kind, owner_name)) = owner {
        metadata["generateName"] = json!(format!("{owner_name}-"));
        metadata["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner_name,
            "uid": uid(&format!("{kind}/{namespace}/{owner_name}")), "controller": true, "blockOwnerDeletion": true}]);
    }
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!(format!(
        "ip-10-0-{}-{}.eu-west-1.compute.internal",
        node % 250,
        node % 200
    ));
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec,
        "status": {
            "phase": "Running", "qosClass": "Burstable", "hostIP": "10.0.1.23", "podIP": "10.0.55.12", "podIPs": [{"ip": "10.0.55.12"}],
            "startTime": "2026-10-01T08:00:01Z",
            "conditions": [{"type": "Initialized", "status": "True", "lastTransitionTime": "2026-10-01T08:00:01Z"},
                           {"type": "Ready", "status": "True", "lastTransitionTime": "2026-10-01T08:00:09Z"},
                           {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-10-01T08:00:09Z"},
                           {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-10-01T08:00:00Z"}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "started": true,
                "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1.0.0",
                "imageID": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:5f0c3e1b2a4d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f50617",
                "containerID": "containerd://0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "state": {"running": {"startedAt": "2026-10-01T08:00:05Z"}}, "lastState": {}}]
        }
    })
}

fn workload(kind: &str, namespace: &str, name: &str, mut spec: Value) -> Value {
    let api = if kind == "CronJob" || kind == "Job" {
        "batch/v1"
    } else {
        "apps/v1"
    };
    // apps/v1 requires a selector, and it must match the template's labels.
    if api == "apps/v1" && spec["selector"].is_null() {
        spec["selector"] = json!({"matchLabels": spec["template"]["metadata"]["labels"]});
    }
    json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace, "uid": uid(&format!("{kind}/{namespace}/{name}")),
        "resourceVersion": "99887766", "generation": 4, "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": name}}, "spec": spec})
}

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// How many of everything a generated cluster has.
pub struct Shape {
    pub namespaces: usize,
    /// Whether each namespace has the mix of cases (8 Deployments on roles, shared, denied,
    /// untrusted and missing roles, an IRSA-native one, a StatefulSet, a CronJob, a bare pod).
    pub mixed: bool,
    /// Replicas of each of the 8 Deployments of a namespace that run on a role.
    pub replicas: usize,
    /// Replicas of the namespace's Deployment without a role.
    pub static_replicas: usize,
    /// Pods of the DaemonSet in the snapshot (on a live cluster: one per node).
    pub daemon_pods: usize,
    /// Further Deployments of each namespace, beside the mix.
    pub apps: Apps,
    /// Pods carry `metadata.managedFields`, as the API server returns them (kubectl prints them
    /// with `-o json`).
    pub managed_fields: bool,
}

/// Deployments of a namespace beyond the mix: `count` of `replicas` pods each, app `i` on
/// service account `app-{i % accounts}` and role `{namespace}-app-{i % roles}`. So `accounts`
/// below `count` makes service accounts that several Deployments share (split when their roles
/// differ), and `roles` below `count` roles that several service accounts share.
#[derive(Default)]
pub struct Apps {
    pub count: usize,
    pub replicas: usize,
    pub accounts: usize,
    pub roles: usize,
}

impl Shape {
    /// The generator's default shape: `namespaces` of [`PODS_PER_NAMESPACE`] pods, the mix of
    /// cases in each.
    pub fn mixed(namespaces: usize) -> Shape {
        Shape {
            namespaces,
            mixed: true,
            replicas: 5,
            static_replicas: 4,
            daemon_pods: (namespaces * PODS_PER_NAMESPACE / 30).max(3),
            apps: Apps::default(),
            managed_fields: false,
        }
    }

    /// Only [`Apps`] in each namespace (and the DaemonSet): the shapes of the fleet benchmark.
    pub fn apps(namespaces: usize, apps: Apps) -> Shape {
        Shape {
            mixed: false,
            daemon_pods: 3,
            apps,
            ..Shape::mixed(namespaces)
        }
    }
}

/// Writes a snapshot of about `pods` pods into `dir`; returns the number of pods written.
pub fn generate(dir: &Path, pods: usize) -> std::io::Result<usize> {
    generate_shaped(
        dir,
        &Shape {
            daemon_pods: (pods / 30).max(3),
            ..Shape::mixed(pods.div_ceil(PODS_PER_NAMESPACE).max(1))
        },
    )
}

/// Writes a snapshot of `shape` into `dir`; returns the number of pods written.
pub fn generate_shaped(dir: &Path, shape: &Shape) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let namespaces = shape.namespaces;
    let replicas = shape.replicas;
    let mut pod_list = ListWriter::create(&dir.join("pods.json"), "List")?;
    let mut workloads = ListWriter::create(&dir.join("workloads.json"), "List")?;
    let mut others = ListWriter::create(&dir.join("namespaces-serviceaccounts-rbac.json"), "List")?;
    let mut roles = Vec::new();
    let mut written = 0;
    let mut node = 0;
    let managed = shape.managed_fields.then(managed_fields);
    let kiam_server = workload(
        "Deployment",
        "kube-system",
        "kiam-server",
        json!({"replicas": 2, "template": {"metadata": {"labels": {"app": "kiam"}},
        "spec": {"containers": [{"name": "kiam", "image": "quay.io/uswitch/kiam:v4.0", "command": ["/kiam"],
            "args": ["server", format!("--role-base-arn=arn:aws:iam::{ACCOUNT}:role/"), "--assume-role-arn=kiam-server", "--sync=1m"]}]}}}),
    );
    workloads.push(&kiam_server)?;
    for n in 0..namespaces {
        let ns = format!("team-{n:05}");
        // Every 20th namespace has no kiam policy (denied); the rest permit their own roles.
        let mut annotations = json!({});
        if n % 20 != 7 {
            annotations["iam.amazonaws.com/permitted"] =
                json!(format!("arn:aws:iam::{ACCOUNT}:role/{ns}-.*"));
        }
        others.push(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "uid": uid(&ns), "annotations": annotations,
            "labels": {"kubernetes.io/metadata.name": ns}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}))?;
        let mixed_accounts: &[&str] = if shape.mixed {
            &["default", "api", "workers", "batch", "irsa-native"]
        } else {
            &[]
        };
        let app_accounts =
            (0..shape.apps.accounts.min(shape.apps.count)).map(|a| format!("app-{a}"));
        for account in mixed_accounts
            .iter()
            .map(|a| a.to_string())
            .chain(app_accounts)
        {
            let account = account.as_str();
            let mut metadata = json!({"name": account, "namespace": ns, "uid": uid(&format!("sa/{ns}/{account}"))});
            if account == "irsa-native" {
                metadata["annotations"] =
                    json!({"eks.amazonaws.com/role-arn": role_arn(&format!("{ns}-native"))});
            }
            others.push(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata, "imagePullSecrets": [{"name": "registry"}]}))?;
        }
        let role = |suffix: &str| format!("{ns}-{suffix}");
        if shape.mixed {
            others.push(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "workers-read", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "workers", "namespace": ns}]}))?;
            // Roles: api (shared by 3 Deployments), two worker roles sharing the "workers"
            // account, batch, a missing one, one not trusting kiam.
            for suffix in ["api", "worker-a", "worker-b", "batch", "native"] {
                roles.push((role(suffix), suffix != "native"));
            }
            roles.push((role("untrusted"), false));
        }
        for r in 0..shape.apps.roles.min(shape.apps.count) {
            roles.push((role(&format!("app-{r}")), true));
        }
        // Each pod takes the next node.
        let mut push_pod = |name: &str, tpl: &Value, owner: Option<(&str, &str)>| {
            node += 1;
            written += 1;
            pod_list.push(&pod(&ns, name, tpl, owner, node, managed.as_ref()))
        };
        let mut deployment = |name: String,
                              account: &str,
                              role_name: Option<String>,
                              replicas: usize|
         -> std::io::Result<()> {
            let tpl = template(&name, account, role_name.as_deref(), false);
            workloads.push(&workload("Deployment", &ns, &name, json!({"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": tpl})))?;
            let rs = format!("{name}-7d9f8b6c5d");
            let mut rs_tpl = tpl.clone();
            rs_tpl["metadata"]["labels"]["pod-template-hash"] = json!("7d9f8b6c5d");
            let mut replica_set = workload(
                "ReplicaSet",
                &ns,
                &rs,
                json!({"replicas": replicas, "template": rs_tpl}),
            );
            replica_set["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid(&format!("Deployment/{ns}/{name}")), "controller": true}]);
            workloads.push(&replica_set)?;
            for i in 0..replicas {
                push_pod(&format!("{rs}-{i:05x}"), &rs_tpl, Some(("ReplicaSet", &rs)))?;
            }
            Ok(())
        };
        for i in 0..shape.apps.count {
            deployment(
                format!("{ns}-app-{i}"),
                &format!("app-{}", i % shape.apps.accounts.max(1)),
                Some(role(&format!("app-{}", i % shape.apps.roles.max(1)))),
                shape.apps.replicas,
            )?;
        }
        if !shape.mixed {
            continue;
        }
        // (name suffix, service account, role suffix)
        for (suffix, account, role_suffix) in [
            ("web", "api", Some("api")),
            ("api", "api", Some("api")),
            ("graphql", "api", Some("api")),
            ("worker-a", "workers", Some("worker-a")),
            ("worker-b", "workers", Some("worker-b")),
            ("legacy", "default", Some("untrusted")),
            ("ghost", "default", Some("missing")),
            ("native", "irsa-native", None),
        ] {
            deployment(
                format!("{ns}-{suffix}"),
                account,
                role_suffix.map(role),
                replicas,
            )?;
        }
        deployment(
            format!("{ns}-static"),
            "default",
            None,
            shape.static_replicas,
        )?;
        // A StatefulSet on the batch role, a CronJob with a running Job, a bare pod.
        let store = format!("{ns}-store");
        let tpl = template(&store, "batch", Some(&role("batch")), false);
        workloads.push(&workload(
            "StatefulSet",
            &ns,
            &store,
            json!({"replicas": 3, "serviceName": "store", "template": tpl}),
        ))?;
        for i in 0..3 {
            push_pod(&format!("{store}-{i}"), &tpl, Some(("StatefulSet", &store)))?;
        }
        let cron = format!("{ns}-report");
        let mut tpl = template(&cron, "batch", Some(&role("batch")), false);
        // A job's pods must not restart forever (the API server refuses `Always`).
        tpl["spec"]["restartPolicy"] = json!("OnFailure");
        workloads.push(&workload(
            "CronJob",
            &ns,
            &cron,
            json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": tpl}}}),
        ))?;
        let job = format!("{cron}-29345160");
        let mut job_object = workload("Job", &ns, &job, json!({"template": tpl}));
        job_object["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": cron, "controller": true}]);
        workloads.push(&job_object)?;
        push_pod(&format!("{job}-x2k9p"), &tpl, Some(("Job", &job)))?;
        let bare = template(&format!("{ns}-debug"), "default", Some(&role("api")), false);
        push_pod(&format!("{ns}-debug"), &bare, None)?;
    }
    // A hostNetwork DaemonSet with an annotation, across the cluster's nodes.
    let ds_tpl = template("node-agent", "default", Some("node-agent"), true);
    workloads.push(&workload(
        "DaemonSet",
        "kube-system",
        "node-agent",
        json!({"template": ds_tpl}),
    ))?;
    for i in 0..shape.daemon_pods {
        pod_list.push(&pod(
            "kube-system",
            &format!("node-agent-{i:05x}"),
            &ds_tpl,
            Some(("DaemonSet", "node-agent")),
            i,
            managed.as_ref(),
        ))?;
        written += 1;
    }
    pod_list.finish()?;
    workloads.finish()?;
    others.push(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "aws-auth", "namespace": "kube-system"},
        "data": {"mapRoles": format!("- rolearn: arn:aws:iam::{ACCOUNT}:role/eks-node\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n  groups:\n  - system:bootstrappers\n  - system:nodes\n")}}))?;
    others.push(&json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "pod-identity-webhook"},
        "webhooks": [{"name": "iam-for-pods.amazonaws.com"}]}))?;
    others.finish()?;

    let mut iam = BufWriter::new(File::create(dir.join("iam.json"))?);
    let mut role_details = vec![
        json!({"Path": "/", "RoleName": "eks-node", "Arn": role_arn("eks-node"),
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
            "RolePolicyList": [{"PolicyName": "kiam", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": KIAM}]}}],
            "AttachedManagedPolicies": [{"PolicyName": "AmazonEKSWorkerNodePolicy", "PolicyArn": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"}]}),
        json!({"Path": "/", "RoleName": "kiam-server", "Arn": KIAM,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": role_arn("eks-node")}, "Action": "sts:AssumeRole"}]},
            "RolePolicyList": [{"PolicyName": "assume", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}}]}),
    ];
    for (name, trusts_kiam) in roles {
        let mut statements = vec![];
        if trusts_kiam {
            statements.push(
                json!({"Effect": "Allow", "Principal": {"AWS": KIAM}, "Action": "sts:AssumeRole"}),
            );
        } else {
            statements.push(json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}));
        }
        if name.ends_with("-native") {
            let ns = name.trim_end_matches("-native");
            statements.push(json!({"Effect": "Allow", "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}")},
                "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {format!("{ISSUER}:sub"): format!("system:serviceaccount:{ns}:irsa-native"), format!("{ISSUER}:aud"): "sts.amazonaws.com"}}}));
        }
        role_details.push(json!({"Path": "/", "RoleName": name, "Arn": role_arn(&name), "RoleId": "AROAEXAMPLE", "CreateDate": "2024-01-01T00:00:00Z",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            "RolePolicyList": [{"PolicyName": "app", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "sqs:SendMessage"], "Resource": "*"}]}}],
            "AttachedManagedPolicies": [], "InstanceProfileList": [], "Tags": [], "RoleLastUsed": {}}));
    }
    serde_json::to_writer_pretty(
        &mut iam,
        &json!({"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": role_details, "Policies": []}),
    )?;
    iam.flush()?;
    std::fs::write(
        dir.join("oidc.json"),
        json!({"OpenIDConnectProviderList": []}).to_string(),
    )?;
    std::fs::write(
        dir.join("cluster.json"),
        json!({"cluster": {"name": "bench", "arn": format!("arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/bench"), "version": "1.29",
            "identity": {"oidc": {"issuer": format!("https://{ISSUER}")}}}})
        .to_string(),
    )?;
    Ok(written)
}
