//! The live demo cluster every live test runs against (moto, the control plane and the fault
//! proxy, with the documented least-privilege identities), and the checks the themes share.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::control_plane::ControlPlane;
use crate::support::fault_proxy::{Edit, FaultProxy};
use crate::support::moto::Moto;
use crate::support::{stderr, stdout};

/// The demo cluster, live: IAM and EKS in moto, Kubernetes objects in a real control plane.
pub struct Cluster {
    pub moto: Moto,
    pub kube: ControlPlane,
    pub proxy: FaultProxy,
    pub dir: tempfile::TempDir,
    /// The read-only identity's kubeconfig (scan, snapshot, plan), through the proxy.
    pub kubeconfig: PathBuf,
    /// The apply identity's (apply, rollback, status).
    pub apply_kubeconfig: PathBuf,
}

pub const PLAN: &str = "migrations/live/plan.json";

/// A live scan that reads every kind in pages of three objects, so that each list takes several
/// pages (the demo has a handful of each).
pub const PAGED_SCAN: &[&str] = &[
    "scan",
    "--cluster",
    "demo",
    "--page-size",
    "3",
    "-o",
    "json",
];

pub const IRSA_ROLE: &str = "eks.amazonaws.com/role-arn";

/// The role another writer puts on a service account.
pub const SOMEONE_ELSE: &str = "arn:aws:iam::111122223333:role/someone-else";

/// What the tool writes and rollback must restore (pods and replica sets are the controller's).
pub const DECLARED: &[&str] = &[
    "Namespace",
    "ServiceAccount",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "CronJob",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
];

/// The ClusterRoles of docs/permissions.md, as documented (the YAML blocks of its Kubernetes
/// section), bound to the scan and apply identities.
pub fn documented_permissions() -> Vec<Value> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/permissions.md"))
            .expect("docs/permissions.md");
    let mut objects: Vec<Value> = doc
        .split("```yaml\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default())
        .map(|yaml| yaml_serde::from_str(yaml).expect("docs/permissions.md: a YAML block"))
        .collect();
    let names: Vec<String> = objects
        .iter()
        .map(|role| role["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["irsa-migrate-read", "irsa-migrate-apply"],
        "the documented roles"
    );
    let binding = |role: &str, users: &[&str]| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": format!("{role}-test")},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": users.iter().map(|u| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u})).collect::<Vec<_>>()})
    };
    objects.push(binding(
        "irsa-migrate-read",
        &["irsa-migrate-scan", "irsa-migrate-apply"],
    ));
    objects.push(binding("irsa-migrate-apply", &["irsa-migrate-apply"]));
    objects
}

/// A kubeconfig for `server` with the bearer token of the cluster's `identity`, its cluster
/// entry (and context) named `cluster`.
pub fn write_kubeconfig(
    kube: &ControlPlane,
    identity: &str,
    server: &str,
    path: &Path,
    cluster: &str,
) -> PathBuf {
    let given: Value = yaml_serde::from_str(
        &std::fs::read_to_string(kube.kubeconfig(identity)).expect("the identity's kubeconfig"),
    )
    .expect("a kubeconfig");
    let token = given["users"][0]["user"]["token"]
        .as_str()
        .expect("a token");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {server}\n    certificate-authority: {}\nusers:\n- name: {identity}\n  user:\n    token: {token}\ncontexts:\n- name: {cluster}\n  context:\n    cluster: {cluster}\n    user: {identity}\ncurrent-context: {cluster}\n",
        kube.pki("ca.crt").display()
    );
    std::fs::write(path, text).expect("write the kubeconfig");
    path.to_path_buf()
}

impl Cluster {
    pub fn start() -> Cluster {
        let moto = Moto::start();
        moto.seed_demo_iam();
        moto.create_cluster("demo");
        let kube = ControlPlane::start();
        kube.apply(&documented_permissions());
        kube.load_snapshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/snapshot"));
        let proxy = FaultProxy::start(&kube);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = write_kubeconfig(
            &kube,
            "scan",
            &proxy.url(),
            &dir.path().join("kubeconfig"),
            "test",
        );
        let apply_kubeconfig = write_kubeconfig(
            &kube,
            "apply",
            &proxy.url(),
            &dir.path().join("kubeconfig-apply"),
            "test",
        );
        Cluster {
            moto,
            kube,
            proxy,
            dir,
            kubeconfig,
            apply_kubeconfig,
        }
    }

    /// The binary with `args`, pointed at this cluster's moto and API server (through the
    /// proxy), as the identity the command needs. Apply and rollback write the demo's owned
    /// objects too (`--patch-owned`), as every test but those of owners needs the whole flow
    /// ([`Cluster::leaving_owners`] does not).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.leaving_owners(args);
        if matches!(args.first(), Some(&("apply" | "rollback"))) {
            command.arg("--patch-owned");
        }
        command
    }

    /// As [`Cluster::command`], leaving the owners' steps to their owners. Decommission goes
    /// without CloudTrail's evidence (moto has no CloudTrail; [`Cluster::with_evidence`] asks
    /// a test double for it).
    pub fn leaving_owners(&self, args: &[&str]) -> Command {
        let mut command = self.with_evidence(args);
        if args.first() == Some(&"apply") {
            command.arg("--without-evidence");
        }
        command
    }

    /// As [`Cluster::leaving_owners`], decommission asking for evidence.
    pub fn with_evidence(&self, args: &[&str]) -> Command {
        let writes = matches!(args.first(), Some(&("apply" | "rollback" | "status")));
        let mut command = Command::new(env!("CARGO_BIN_EXE_irsa-migrate"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .envs(self.moto.env())
            .env(
                "KUBECONFIG",
                if writes {
                    &self.apply_kubeconfig
                } else {
                    &self.kubeconfig
                },
            )
            .env_remove("RUST_BACKTRACE");
        command
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the binary runs")
    }

    pub fn journal(&self) -> PathBuf {
        self.dir.path().join("migrations/live/journal.jsonl")
    }

    pub fn ok(&self, args: &[&str]) -> Output {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}\nstdout: {}\nstderr: {}",
            stdout(&output),
            stderr(&output)
        );
        output
    }

    /// `snapshot` then `plan` from it, and the plan's own apply role granted, as the runbook
    /// does (for the demo's objects, it is the documented role the cluster started with).
    pub fn plan(&self) {
        self.ok(&["snapshot", "--out", "snapshot", "--cluster", "demo"]);
        self.ok(&["plan", "--snapshot", "snapshot", "--name", "live"]);
        let role = std::fs::read_to_string(
            self.dir
                .path()
                .join("migrations/live/permissions/kubernetes-apply-role.yaml"),
        )
        .expect("plan writes the apply role");
        self.kube
            .apply(&[yaml_serde::from_str(&role).expect("the apply role is YAML")]);
    }

    /// Planned, with the phases before the rollout applied.
    pub fn ready_for_rollout(&self) {
        self.plan();
        for phase in ["prepare", "identity"] {
            let output = self.apply(phase, &[]);
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        }
    }

    /// `apply --phase rollout` succeeds, and its wave check saw `workload` roll out.
    pub fn rolls_out(&self, workload: &str) {
        let output = self.apply("rollout", &[]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let text = stdout(&output);
        assert!(
            text.contains(&format!("rolled out       {workload}")),
            "{text}"
        );
    }

    pub fn apply(&self, phase: &str, extra: &[&str]) -> Output {
        let mut args = vec!["apply", "--plan", PLAN, "--phase", phase, "--yes"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Every role's trust policy and the OIDC providers' ARNs (what `prepare` and `decommission`
    /// change in IAM), with the providers' ids as `<id>`: moto gives each cluster a random one.
    pub fn iam_state(&self) -> String {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let iam = self.moto.iam(&runtime);
        let roles = runtime
            .block_on(iam.list_roles().max_items(1000).send())
            .unwrap();
        let trusts: std::collections::BTreeMap<String, Value> = roles
            .roles()
            .iter()
            .map(|role| {
                (
                    role.role_name().to_string(),
                    self.moto.trust(role.role_name()),
                )
            })
            .collect();
        let providers: Vec<String> = runtime
            .block_on(iam.list_open_id_connect_providers().send())
            .unwrap()
            .open_id_connect_provider_list()
            .iter()
            .filter_map(|p| p.arn().map(str::to_string))
            .collect();
        let mut state =
            serde_json::to_string_pretty(&json!({"trust": trusts, "providers": providers}))
                .unwrap();
        for provider in &providers {
            let id = provider.rsplit('/').next().unwrap();
            state = state.replace(id, "<id>");
        }
        state
    }

    /// Another writer labels a service account just before the tool's next write to it: a
    /// change outside the step's fields.
    pub fn someone_labels_before_next_write(&self, namespace: &str, name: &str) {
        self.proxy.before_next_write(
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
            name,
            Edit::Patch(json!({"metadata": {"labels": {"team": namespace}}})),
        );
    }

    /// Another writer points a service account at another role just before the tool's next
    /// write to it: a change to the step's own field.
    pub fn someone_reannotates_before_next_write(&self, namespace: &str, name: &str) {
        self.proxy.before_next_write(
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
            name,
            Edit::Patch(json!({"metadata": {"annotations": {IRSA_ROLE: SOMEONE_ELSE}}})),
        );
    }

    /// Requests the API server received from the tool that start with `prefix` ("METHOD path").
    pub fn requests_to(&self, prefix: &str) -> usize {
        self.proxy.requests_to(prefix)
    }

    /// The address kwok gave a running pod of `namespace` whose name starts with `prefix`
    /// (waiting for it, at most a minute): where that pod's calls to STS come from.
    pub fn pod_ip(&self, namespace: &str, prefix: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let pods: Value = serde_json::from_str(
                &self
                    .kube
                    .kubectl_ok(&["get", "pods", "-n", namespace, "-o", "json"], None),
            )
            .unwrap();
            let ip = pods["items"].as_array().unwrap().iter().find_map(|pod| {
                let name = pod["metadata"]["name"].as_str()?;
                let ip = pod["status"]["podIP"].as_str()?;
                name.starts_with(prefix).then(|| ip.to_string())
            });
            match ip {
                Some(ip) => return ip,
                None if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(500))
                }
                None => panic!("no pod {namespace}/{prefix}* with an address: {pods}"),
            }
        }
    }

    pub fn template(&self, namespace: &str, kind: &str, name: &str) -> Value {
        self.kube.object(kind, Some(namespace), name).unwrap()["spec"]["template"].clone()
    }
}

/// Each workload that uses an AWS role, with its status (legacy, irsa, both).
pub fn statuses(scan: &Value) -> Vec<(String, String)> {
    let usages = scan["usages"].as_array().unwrap();
    assert!(!usages.is_empty(), "{scan}");
    usages
        .iter()
        .map(|w| {
            (
                format!("{}/{}/{}", w["namespace"], w["kind"], w["name"]).replace('"', ""),
                w["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Fails naming only the objects that differ, with both versions.
pub fn assert_same_objects(
    expected: &std::collections::BTreeMap<String, Value>,
    found: &std::collections::BTreeMap<String, Value>,
) {
    let keys: std::collections::BTreeSet<&String> = expected.keys().chain(found.keys()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|k| expected.get(*k) != found.get(*k))
        .map(|k| {
            format!(
                "{k}:\n  expected {:?}\n  found    {:?}",
                expected.get(k),
                found.get(k)
            )
        })
        .collect();
    assert!(differing.is_empty(), "{}", differing.join("\n"));
}
