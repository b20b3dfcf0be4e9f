//! Who owns an object the plan changes: the Helm release, Argo CD application, Flux Kustomization
//! or HelmRelease, re-applying field manager, or infrastructure-as-code stack that would put a
//! live change back. Pure: read from an object's labels, annotations and managed fields, or a
//! role's tags (docs/runbook.md, "GitOps and IaC owners").
//!
//! An owned object is changed through its owner: `export` writes the owner's change, and `apply`
//! waits until the owner has made it instead of patching what the owner would revert.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::inventory::kube::ObjectMeta;

/// The owner of an object, as the plan records it on each step (`steps[].owner`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Owner {
    /// `helm install`/`upgrade`: the next upgrade renders the chart again.
    HelmRelease { namespace: String, name: String },
    /// An Argo CD application; with self-heal it reverts a live edit within minutes.
    ArgoCdApplication { name: String },
    /// A Flux Kustomization: server-side apply every interval reverts a live edit.
    FluxKustomization { namespace: String, name: String },
    /// A Flux HelmRelease: the next reconcile (or drift detection) renders the chart again.
    FluxHelmRelease { namespace: String, name: String },
    /// Another field manager that applies the object (Terraform's kubernetes provider, Pulumi,
    /// a CI pipeline's `kubectl apply --server-side --field-manager=...`).
    FieldManager { manager: String },
    /// An eksctl CloudFormation stack (eksctl tags what it creates `alpha.eksctl.io/*`).
    Eksctl { cluster: String },
    /// A CloudFormation stack (a CDK app's, a team's template) that made the role: its next
    /// update that touches the role puts the template's trust policy back.
    #[serde(rename = "cloudformation")]
    CloudFormation { stack: String },
    /// A role carrying the tag `--iac-role-tag` names: the team's Terraform or CDK sets it.
    IacTag { key: String, value: String },
}

impl Owner {
    /// Whether the owner is a Kubernetes tool (changes go to a chart or a Git repository) rather
    /// than an IAM stack (changes go to Terraform, CloudFormation or eksctl).
    pub fn is_kubernetes(&self) -> bool {
        !matches!(
            self,
            Owner::Eksctl { .. } | Owner::CloudFormation { .. } | Owner::IacTag { .. }
        )
    }

    /// Where the change must be made, for an operator: "the chart values or manifests of ...".
    pub fn where_to_change(&self) -> &'static str {
        match self {
            Owner::HelmRelease { .. } | Owner::FluxHelmRelease { .. } => {
                "the release's chart values (or a post-renderer)"
            }
            Owner::ArgoCdApplication { .. } | Owner::FluxKustomization { .. } => {
                "the manifests in the repository it syncs"
            }
            Owner::FieldManager { .. } => "the configuration that applies it",
            Owner::Eksctl { .. } => "the eksctl configuration (or its CloudFormation stack)",
            Owner::CloudFormation { .. } => "the stack's template (or the CDK code that makes it)",
            Owner::IacTag { .. } => "the infrastructure code that manages the role",
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::HelmRelease { namespace, name } => write!(f, "Helm release {namespace}/{name}"),
            Owner::ArgoCdApplication { name } => write!(f, "Argo CD application {name}"),
            Owner::FluxKustomization { namespace, name } => {
                write!(f, "Flux Kustomization {namespace}/{name}")
            }
            Owner::FluxHelmRelease { namespace, name } => {
                write!(f, "Flux HelmRelease {namespace}/{name}")
            }
            Owner::FieldManager { manager } => write!(f, "field manager {manager}"),
            Owner::Eksctl { cluster } => write!(f, "eksctl (cluster {cluster})"),
            Owner::CloudFormation { stack } => write!(f, "CloudFormation stack {stack}"),
            Owner::IacTag { key, value } if value.is_empty() => write!(f, "IaC (tag {key})"),
            Owner::IacTag { key, value } => write!(f, "IaC (tag {key}={value})"),
        }
    }
}

/// Managers that never re-apply on their own: one-shot `kubectl` runs and this tool.
const ONE_SHOT_MANAGERS: [&str; 3] = ["kubectl", "before-first-apply", "irsa-migrate"];

/// The owner of a Kubernetes object, from its metadata. When several tools left their marks,
/// the one that reconciles wins: Flux over the Helm release it installs, Argo CD's tracking
/// annotation over the Helm labels of a chart it renders.
pub fn of_object(metadata: &ObjectMeta) -> Option<Owner> {
    let label = |k: &str| metadata.labels.get(k).filter(|v| !v.is_empty()).cloned();
    let annotation = |k: &str| {
        metadata
            .annotations
            .get(k)
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let own_namespace = || metadata.namespace.clone().unwrap_or_default();
    if let Some(name) = label("helm.toolkit.fluxcd.io/name") {
        let namespace = label("helm.toolkit.fluxcd.io/namespace").unwrap_or_else(own_namespace);
        return Some(Owner::FluxHelmRelease { namespace, name });
    }
    if let Some(name) = label("kustomize.toolkit.fluxcd.io/name") {
        let namespace =
            label("kustomize.toolkit.fluxcd.io/namespace").unwrap_or_else(own_namespace);
        return Some(Owner::FluxKustomization { namespace, name });
    }
    if let Some(tracking) = annotation("argocd.argoproj.io/tracking-id") {
        // `<application>:<group>/<Kind>:<namespace>/<name>`.
        let name = tracking.split(':').next().unwrap_or_default().to_string();
        return Some(Owner::ArgoCdApplication { name });
    }
    if let Some(name) = annotation("meta.helm.sh/release-name") {
        let namespace = annotation("meta.helm.sh/release-namespace").unwrap_or_else(own_namespace);
        return Some(Owner::HelmRelease { namespace, name });
    }
    let instance = label("app.kubernetes.io/instance");
    if label("app.kubernetes.io/managed-by").as_deref() == Some("Helm") {
        // Rendered from a chart without `helm install` (no release annotations): the chart's
        // instance label names the release, and whoever rendered it re-renders it.
        if let Some(name) = instance {
            return Some(Owner::HelmRelease {
                namespace: own_namespace(),
                name,
            });
        }
    } else if let Some(name) = instance {
        // Argo CD 2.x tracks by this label.
        return Some(Owner::ArgoCdApplication { name });
    }
    metadata
        .managed_fields
        .iter()
        .find(|field| {
            field.operation == "Apply" && !ONE_SHOT_MANAGERS.contains(&field.manager.as_str())
        })
        .map(|field| Owner::FieldManager {
            manager: field.manager.clone(),
        })
}

/// A tag that marks the roles a team's infrastructure code manages: `KEY` (any value) or
/// `KEY=VALUE` (`--iac-role-tag`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IacRoleTag {
    pub key: String,
    pub value: Option<String>,
}

impl TryFrom<String> for IacRoleTag {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let (key, value) = match text.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (text.as_str(), None),
        };
        if key.is_empty() {
            return Err(format!(
                "{text:?} names no tag key: write KEY or KEY=VALUE, e.g. managed-by=terraform"
            ));
        }
        Ok(IacRoleTag {
            key: key.to_string(),
            value,
        })
    }
}

impl From<IacRoleTag> for String {
    fn from(tag: IacRoleTag) -> String {
        match tag.value {
            Some(value) => format!("{}={value}", tag.key),
            None => tag.key,
        }
    }
}

/// The owner of an IAM role: eksctl (its tags; eksctl makes roles through stacks of its own), the
/// CloudFormation stack that made it (`stack`, its name), or the tag the team named.
pub fn of_role(
    tags: &[(String, String)],
    stack: Option<&str>,
    iac_tags: &[IacRoleTag],
) -> Option<Owner> {
    let tag = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    if let Some(cluster) = tag("alpha.eksctl.io/cluster-name") {
        return Some(Owner::Eksctl {
            cluster: cluster.clone(),
        });
    }
    if let Some(stack) = stack {
        return Some(Owner::CloudFormation {
            stack: stack.to_string(),
        });
    }
    iac_tags.iter().find_map(|wanted| {
        let value = tag(&wanted.key)?;
        wanted
            .value
            .as_ref()
            .is_none_or(|v| v == value)
            .then(|| Owner::IacTag {
                key: wanted.key.clone(),
                value: value.clone(),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::kube::ManagedFieldsEntry;

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        let mut meta = ObjectMeta {
            name: "web".into(),
            namespace: Some("shop".into()),
            ..ObjectMeta::default()
        };
        for (k, v) in labels {
            meta.labels.insert(k.to_string(), v.to_string());
        }
        for (k, v) in annotations {
            meta.annotations.insert(k.to_string(), v.to_string());
        }
        meta
    }

    #[test]
    fn a_helm_release_is_named_by_its_annotations() {
        let owner = of_object(&meta(
            &[("app.kubernetes.io/managed-by", "Helm")],
            &[
                ("meta.helm.sh/release-name", "payments"),
                ("meta.helm.sh/release-namespace", "payments-system"),
            ],
        ));
        assert_eq!(
            owner,
            Some(Owner::HelmRelease {
                namespace: "payments-system".into(),
                name: "payments".into()
            })
        );
    }

    #[test]
    fn the_reconciler_wins_over_the_chart_it_renders() {
        let flux_helm = meta(
            &[
                ("helm.toolkit.fluxcd.io/name", "web"),
                ("helm.toolkit.fluxcd.io/namespace", "flux-system"),
                ("app.kubernetes.io/managed-by", "Helm"),
            ],
            &[("meta.helm.sh/release-name", "web")],
        );
        assert_eq!(
            of_object(&flux_helm).map(|o| o.to_string()),
            Some("Flux HelmRelease flux-system/web".into())
        );
        let argo_rendered_chart = meta(
            &[
                ("app.kubernetes.io/managed-by", "Helm"),
                ("app.kubernetes.io/instance", "web"),
            ],
            &[(
                "argocd.argoproj.io/tracking-id",
                "storefront:apps/Deployment:shop/web",
            )],
        );
        assert_eq!(
            of_object(&argo_rendered_chart),
            Some(Owner::ArgoCdApplication {
                name: "storefront".into()
            })
        );
    }

    #[test]
    fn the_instance_label_is_argo_cd_unless_helm_set_it() {
        let argo_label = meta(&[("app.kubernetes.io/instance", "storefront")], &[]);
        assert_eq!(
            of_object(&argo_label),
            Some(Owner::ArgoCdApplication {
                name: "storefront".into()
            })
        );
        let chart_label = meta(
            &[
                ("app.kubernetes.io/instance", "web"),
                ("app.kubernetes.io/managed-by", "Helm"),
            ],
            &[],
        );
        assert_eq!(
            of_object(&chart_label),
            Some(Owner::HelmRelease {
                namespace: "shop".into(),
                name: "web".into()
            })
        );
    }

    #[test]
    fn a_flux_kustomization_defaults_to_the_objects_namespace() {
        let owner = of_object(&meta(&[("kustomize.toolkit.fluxcd.io/name", "apps")], &[]));
        assert_eq!(
            owner,
            Some(Owner::FluxKustomization {
                namespace: "shop".into(),
                name: "apps".into()
            })
        );
    }

    #[test]
    fn only_a_manager_that_applies_owns_the_object() {
        let mut with_managers = meta(&[], &[]);
        with_managers.managed_fields = vec![
            ManagedFieldsEntry {
                manager: "kube-controller-manager".into(),
                operation: "Update".into(),
            },
            ManagedFieldsEntry {
                manager: "kubectl".into(),
                operation: "Apply".into(),
            },
        ];
        assert_eq!(of_object(&with_managers), None);
        with_managers.managed_fields.push(ManagedFieldsEntry {
            manager: "Terraform".into(),
            operation: "Apply".into(),
        });
        assert_eq!(
            of_object(&with_managers),
            Some(Owner::FieldManager {
                manager: "Terraform".into()
            })
        );
        assert_eq!(of_object(&meta(&[], &[])), None);
    }

    #[test]
    fn roles_are_owned_by_eksctl_their_stack_or_the_named_tag() {
        let tags = vec![
            ("team".to_string(), "payments".to_string()),
            ("managed-by".to_string(), "terraform".to_string()),
        ];
        let tag = |t: &str| IacRoleTag::try_from(t.to_string()).expect("valid");
        assert_eq!(of_role(&tags, None, &[]), None);
        assert_eq!(of_role(&tags, None, &[tag("managed-by=cdk")]), None);
        assert_eq!(
            of_role(&tags, None, &[tag("managed-by=terraform")]).map(|o| o.to_string()),
            Some("IaC (tag managed-by=terraform)".into())
        );
        assert_eq!(
            of_role(&tags, None, &[tag("team")]).map(|o| o.to_string()),
            Some("IaC (tag team=payments)".into())
        );
        // The stack that made the role is a fact; a tag the team named is a convention.
        assert_eq!(
            of_role(&tags, Some("payments-iam"), &[tag("team")]).map(|o| o.to_string()),
            Some("CloudFormation stack payments-iam".into())
        );
        let eksctl = vec![(
            "alpha.eksctl.io/cluster-name".to_string(),
            "prod".to_string(),
        )];
        // eksctl makes its roles through stacks of its own: its configuration is what to change.
        assert_eq!(
            of_role(
                &eksctl,
                Some("eksctl-prod-addon-iamserviceaccount-x"),
                &[tag("team")]
            ),
            Some(Owner::Eksctl {
                cluster: "prod".into()
            })
        );
        assert!(IacRoleTag::try_from("=x".to_string()).is_err());
    }
}
