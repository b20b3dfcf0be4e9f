//! kiam and kube2iam: how each is configured, how it resolves a pod's role annotation to an ARN,
//! and whether its namespace rules let a pod have that role.
//!
//! Each agent is emulated to the letter of its source (see `docs/legacy-agents.md`), because a
//! migration may only carry over what the agent really grants today.

pub mod args;
pub mod kiam;
pub mod kube2iam;

use serde::Serialize;

use crate::inventory::agent_image::AgentImage;
use crate::inventory::{Cluster, Inventory, Namespace, Workload, WorkloadKey};

/// The annotation both agents read by default for the role.
pub const ROLE_ANNOTATION: &str = "iam.amazonaws.com/role";
/// The annotation both agents read by default for the AssumeRole ExternalId.
pub const EXTERNAL_ID_ANNOTATION: &str = "iam.amazonaws.com/external-id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    Kiam,
    Kube2iam,
}

/// Which part of a legacy system a workload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    KiamServer,
    KiamAgent,
    Kube2iam,
}

/// Where role names get their `arn:…:role/` prefix from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "source", content = "value")]
pub enum BaseArn {
    /// Given on the command line, as written.
    Explicit(String),
    /// Read at run time from the node's instance profile: `arn:<partition>:iam::<account>:role/`,
    /// without any path. Known here only when the cluster's account is.
    Autodetect(Option<String>),
    /// Neither flag: kiam's server refuses to start; kube2iam uses an empty prefix.
    Missing,
}

impl BaseArn {
    /// The prefix the agent would use, if it can be known offline.
    pub fn prefix(&self) -> Option<&str> {
        match self {
            BaseArn::Explicit(prefix) => Some(prefix),
            BaseArn::Autodetect(prefix) => prefix.as_deref(),
            BaseArn::Missing => None,
        }
    }

    fn autodetect(cluster: Option<&Cluster>) -> BaseArn {
        BaseArn::Autodetect(
            cluster
                .filter(|c| !c.account.is_empty())
                .map(|c| format!("arn:{}:iam::{}:role/", c.partition, c.account)),
        )
    }
}

/// How namespaces restrict the roles their pods may have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum NamespaceRule {
    /// kiam: one Go regexp in `iam.amazonaws.com/permitted`, matched against the full ARN.
    KiamPermitted { strict: bool },
    /// kube2iam `--namespace-restrictions`: a JSON array of patterns under `key`.
    Kube2iamAllowed { key: String, format: PatternFormat },
    /// kube2iam without `--namespace-restrictions`: every role is allowed everywhere.
    Unrestricted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatternFormat {
    Glob,
    Regexp,
}

/// One installed legacy agent and the configuration read from its arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegacyAgent {
    pub system: System,
    pub component: Component,
    pub workload: WorkloadKey,
    pub image: String,
    pub base_arn: BaseArn,
    pub role_key: String,
    pub external_id_key: String,
    pub namespace_rule: NamespaceRule,
    /// kube2iam `--default-role`, resolved; `--auto-discover-default-role` gives the node role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_role: Option<DefaultRole>,
    /// kiam `--assume-role-arn`, resolved through the base ARN (kiam >= 4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    /// Problems with the configuration that make the agent misbehave or refuse to start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "source", content = "arn")]
pub enum DefaultRole {
    Explicit(String),
    /// The node's own role: whatever role the pod's node has.
    NodeRole,
}

/// An agent's decision on one pod and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub permitted: bool,
    /// Which rule decided, in words: shown in tables and findings.
    pub rule: String,
    /// A namespace annotation that could not be read (bad regexp, bad JSON), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

impl Verdict {
    fn allow(rule: impl Into<String>) -> Verdict {
        Verdict {
            permitted: true,
            rule: rule.into(),
            invalid: None,
        }
    }

    fn deny(rule: impl Into<String>) -> Verdict {
        Verdict {
            permitted: false,
            rule: rule.into(),
            invalid: None,
        }
    }
}

impl LegacyAgent {
    /// Resolves an annotation value to the ARN the agent would request, `None` when the base ARN
    /// cannot be known offline.
    pub fn resolve(&self, value: &str) -> Option<String> {
        match self.system {
            System::Kiam => kiam::resolve(self.prefix(), value),
            System::Kube2iam => kube2iam::resolve(self.prefix(), value),
        }
    }

    /// kube2iam without any base-ARN flag prefixes nothing; kiam's server would not start.
    fn prefix(&self) -> Option<&str> {
        match (&self.base_arn, self.system) {
            (BaseArn::Missing, System::Kube2iam) => Some(""),
            (base, _) => base.prefix(),
        }
    }

    /// Whether pods in `namespace` may have `role_arn`.
    pub fn permits(&self, namespace: Option<&Namespace>, role_arn: &str) -> Verdict {
        let annotations = namespace.map(|n| &n.metadata.annotations);
        match &self.namespace_rule {
            NamespaceRule::KiamPermitted { strict } => {
                let expression = annotations.and_then(|a| a.get(kiam::PERMITTED_ANNOTATION));
                kiam::permits(expression.map(String::as_str), *strict, role_arn)
            }
            NamespaceRule::Unrestricted => Verdict::allow("namespace restrictions are off"),
            NamespaceRule::Kube2iamAllowed { key, format } => {
                let default_arn = match &self.default_role {
                    Some(DefaultRole::Explicit(arn)) => Some(arn.as_str()),
                    _ => None,
                };
                if default_arn == Some(role_arn) {
                    return Verdict::allow("the default role bypasses namespace restrictions");
                }
                let value = annotations.and_then(|a| a.get(key));
                kube2iam::permits(
                    value.map(String::as_str),
                    key,
                    *format,
                    self.prefix(),
                    role_arn,
                )
            }
        }
    }
}

/// Finds every kiam and kube2iam installation among the workloads, wherever they run.
pub fn detect(inventory: &Inventory) -> Vec<LegacyAgent> {
    inventory
        .workloads
        .values()
        .filter(|w| w.key.kind != crate::inventory::WorkloadKind::ReplicaSet)
        .filter_map(|w| detect_one(w, inventory.cluster.as_ref()))
        .collect()
}

fn detect_one(workload: &Workload, cluster: Option<&Cluster>) -> Option<LegacyAgent> {
    workload
        .template
        .spec
        .all_containers()
        .find_map(|container| {
            match AgentImage::of(container.image.as_deref().unwrap_or_default())? {
                AgentImage::Kube2iam => Some(kube2iam::configure(workload, container, cluster)),
                AgentImage::Kiam => kiam::configure(workload, container, cluster),
            }
        })
}

/// `pattern` compiled, once per thread: the same namespace rule is checked for every workload in
/// the namespace, and compiling it each time was over half of a 150,000-pod scan.
fn compiled(pattern: &str) -> Result<regex::Regex, regex::Error> {
    thread_local! {
        static COMPILED: std::cell::RefCell<std::collections::HashMap<String, Result<regex::Regex, regex::Error>>> =
            Default::default();
    }
    COMPILED.with(|cache| {
        cache
            .borrow_mut()
            .entry(pattern.to_string())
            .or_insert_with(|| regex::Regex::new(pattern))
            .clone()
    })
}
