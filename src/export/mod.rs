//! `export`: every step of a plan in the form its owner merges, phase by phase (additive first:
//! a rollout change must not land before its trust exists). Pure: a plan in, files out; the CLI
//! writes them.
//!
//! One room per form: `kustomize` (a Kustomize component per owner and phase, and for Helm
//! releases a post-renderer and a values hint), `iam` (trust policies as JSON, Terraform, and an
//! AWS CLI script for what nobody owns), `readme` (what to merge in which order, and how to undo
//! it).
//!
//! ```text
//! README.md
//! kubernetes/<owner>/<n>-<phase>/kustomization.yaml     kind: Component
//! kubernetes/<owner>/<n>-<phase>/<kind>-<namespace>-<name>.yaml
//! kubernetes/<owner>/irsa-migrate-<owner>-<n>-<phase>/  Helm releases' post-renderer (a Helm 4
//!                                                       plugin): every phase up to this one
//! kubernetes/<owner>/values-hint-<n>-<phase>.yaml       Helm releases, `helm create` charts
//! iam/<n>-<phase>/<account>-<role>.json                 the complete policy after the phase
//! iam/<n>-<phase>/<account>-<role>.before.json          and before it, to undo
//! iam/<n>-<phase>/main.tf
//! iam/<n>-<phase>/aws-cli.sh                            only what nobody owns
//! ```

mod iam;
mod kustomize;
mod readme;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::ownership::Owner;
use crate::plan::{Phase, Plan, Step};

/// One file of an export, relative to its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub path: PathBuf,
    pub text: String,
    /// A script to run (the post-renderer, the AWS CLI script): written executable.
    pub executable: bool,
}

impl ExportFile {
    fn new(path: impl Into<PathBuf>, text: String) -> ExportFile {
        ExportFile {
            path: path.into(),
            text,
            executable: false,
        }
    }

    fn script(path: impl Into<PathBuf>, text: String) -> ExportFile {
        ExportFile {
            executable: true,
            ..ExportFile::new(path, text)
        }
    }
}

/// Each owner's (or nobody's) Kubernetes steps, phase by phase.
type KubernetesByOwner<'p> = BTreeMap<Option<&'p Owner>, Vec<(Phase, Vec<&'p Step>)>>;

/// The plan's steps of `phases` (all when empty) as their owners merge them.
pub fn export(plan: &Plan, phases: &[Phase]) -> Vec<ExportFile> {
    let selected = |phase: Phase| phases.is_empty() || phases.contains(&phase);
    let mut files = Vec::new();
    let mut kubernetes = KubernetesByOwner::new();
    let mut iam_phases = Vec::new();
    for phase in Phase::ALL.into_iter().filter(|p| selected(*p)) {
        let steps: Vec<&Step> = plan.steps.iter().filter(|s| s.phase == phase).collect();
        let mut by_owner: BTreeMap<Option<&Owner>, Vec<&Step>> = BTreeMap::new();
        for step in steps.iter().filter(|s| !s.target.is_iam()) {
            by_owner.entry(step.owner.as_ref()).or_default().push(step);
        }
        for (owner, steps) in by_owner {
            kubernetes.entry(owner).or_default().push((phase, steps));
        }
        let iam: Vec<&Step> = steps.into_iter().filter(|s| s.target.is_iam()).collect();
        if !iam.is_empty() {
            files.extend(iam::files(plan, phase, &iam));
            iam_phases.push((phase, iam));
        }
    }
    for (owner, phases) in &kubernetes {
        files.extend(kustomize::files(*owner, phases));
    }
    files.push(readme::file(plan, &kubernetes, &iam_phases));
    files
}

/// A phase's directory name: its number in the order phases run, and its name.
fn phase_dir(phase: Phase) -> String {
    let number = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0) + 1;
    format!("{number}-{phase}")
}

/// An owner's directory name under `kubernetes/`.
fn owner_dir(owner: Option<&Owner>) -> String {
    let name = match owner {
        None => "unowned".to_string(),
        Some(Owner::HelmRelease { namespace, name }) => format!("helm-release-{namespace}-{name}"),
        Some(Owner::ArgoCdApplication { name }) => format!("argo-cd-application-{name}"),
        Some(Owner::FluxKustomization { namespace, name }) => {
            format!("flux-kustomization-{namespace}-{name}")
        }
        Some(Owner::FluxHelmRelease { namespace, name }) => {
            format!("flux-helm-release-{namespace}-{name}")
        }
        Some(Owner::FieldManager { manager }) => format!("field-manager-{manager}"),
        Some(Owner::Eksctl { cluster }) => format!("eksctl-{cluster}"),
        Some(Owner::CloudFormation { stack }) => format!("cloudformation-{stack}"),
        Some(Owner::IacTag { key, value }) => format!("iac-{key}-{value}"),
    };
    file_name(&name)
}

/// `text` as a file name: lower case, and anything but letters, digits, `.`, `_` and `-` as `-`
/// (an owner or object name never becomes a path of its own, `..` or `/`).
fn file_name(text: &str) -> String {
    let name: String = text
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    match name.trim_matches('.') {
        "" => "-".to_string(),
        trimmed => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Plan {
        let inventory = crate::inventory::demo::inventory().unwrap();
        crate::plan::plan(&inventory, "demo", &Default::default()).unwrap()
    }

    #[test]
    fn names_from_the_cluster_never_leave_their_directory() {
        assert_eq!(file_name("../../etc"), "-..-etc");
        assert_eq!(file_name("Payments/API"), "payments-api");
        assert_eq!(file_name(".."), "-");
        assert_eq!(
            owner_dir(Some(&Owner::FieldManager {
                manager: "Terraform Cloud/../x".into()
            })),
            "field-manager-terraform-cloud-..-x"
        );
    }

    #[test]
    fn every_step_of_the_selected_phases_is_in_one_file_and_phases_run_in_order() {
        let plan = demo();
        let files = export(&plan, &[]);
        let all: String = files.iter().map(|f| f.text.as_str()).collect();
        for step in &plan.steps {
            assert!(all.contains(&step.id), "{} is exported", step.id);
        }
        let only = export(&plan, &[Phase::Rollout]);
        assert!(only.iter().all(|f| {
            let path = f.path.to_string_lossy();
            path == "README.md" || path.contains("3-rollout")
        }));
        assert_eq!(phase_dir(Phase::Prepare), "1-prepare");
        assert_eq!(phase_dir(Phase::Decommission), "5-decommission");
    }
}
