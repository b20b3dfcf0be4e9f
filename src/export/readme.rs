//! The export's README: per phase, in order, what each owner merges and where, what nobody
//! owns, and how to undo each.

use super::{ExportFile, owner_dir, phase_dir};
use crate::ownership::Owner;
use crate::plan::{Phase, Plan, Step};

/// README.md of an export.
pub(super) fn file(
    plan: &Plan,
    kubernetes: &super::KubernetesByOwner<'_>,
    iam: &[(Phase, Vec<&Step>)],
) -> ExportFile {
    let mut text = format!(
        "# irsa-migrate export of plan {}\n\nEach change of the plan in the form its owner merges, phase by phase. Merge a phase's\nchanges only once the phase before it is complete (`irsa-migrate status`): a rollout change\nmerged before its role's trust exists starts pods without credentials. After each merge, once\nthe owner has synced, run `irsa-migrate apply --plan PLAN --phase <phase>`: it reads what the\nowners made, journals it as theirs, checks the rollout, and makes what nobody owns.\n",
        plan.name
    );
    for phase in Phase::ALL {
        let owners: Vec<(Option<&Owner>, &Vec<&Step>)> = kubernetes
            .iter()
            .filter_map(|(owner, phases)| {
                phases
                    .iter()
                    .find(|(p, _)| *p == phase)
                    .map(|(_, steps)| (*owner, steps))
            })
            .collect();
        let iam_steps = iam.iter().find(|(p, _)| *p == phase).map(|(_, s)| s);
        if owners.is_empty() && iam_steps.is_none() {
            continue;
        }
        text.push_str(&format!("\n## {}: {}\n", phase_dir(phase), phase.summary()));
        if let Some(steps) = iam_steps {
            text.push_str(&iam_section(phase, steps));
        }
        for (owner, steps) in owners {
            text.push_str(&kubernetes_section(owner, phase, steps));
        }
    }
    text.push_str("\n## Undo\n\nRevert each merge in its owner's repository, last phase first, and let the owner sync; then\n`irsa-migrate rollback --plan PLAN --phase <phase>` verifies each owner's revert (and reverts\nwhat nobody owns). For IAM, each document's `.before.json` is the policy as it was.\n");
    ExportFile::new("README.md", text)
}

fn step_list(steps: &[&Step]) -> String {
    steps
        .iter()
        .map(|s| format!("- `{}`: {}\n", s.id, s.description))
        .collect()
}

fn iam_section(phase: Phase, steps: &[&Step]) -> String {
    let dir = format!("iam/{}", phase_dir(phase));
    let mut text = format!(
        "\n### IAM (`{dir}/`)\n\nEach document whole as JSON (`<account>-<role>.json`, and `.before.json` as it was), the same in\nTerraform (`main.tf`: `aws_iam_role`'s `assume_role_policy`, the OIDC provider, inline policies,\nand the input of terraform-aws-modules' IRSA module where it makes the role).\n"
    );
    let owned: Vec<&&Step> = steps.iter().filter(|s| s.owner.is_some()).collect();
    if !owned.is_empty() {
        text.push('\n');
    }
    for step in &owned {
        if let Some(owner) = &step.owner {
            // The owner's source takes the document whole (a template's `AssumeRolePolicyDocument`,
            // eksctl's `attachPolicy`, Terraform's `jsonencode`).
            let document = super::iam::document_file(step)
                .map(|name| format!(", with `{dir}/{name}.json`"))
                .unwrap_or_default();
            text.push_str(&format!(
                "- `{}`: {}; owned by {owner}: make it in {}{document}\n",
                step.id,
                step.description,
                owner.where_to_change()
            ));
        }
    }
    let unowned: Vec<&Step> = steps
        .iter()
        .copied()
        .filter(|s| s.owner.is_none())
        .collect();
    if !unowned.is_empty() {
        text.push_str(&format!(
            "\nNobody owns these; `irsa-migrate apply` makes them, or run `{dir}/aws-cli.sh`:\n\n{}",
            step_list(&unowned)
        ));
    }
    text
}

fn kubernetes_section(owner: Option<&Owner>, phase: Phase, steps: &[&Step]) -> String {
    let root = format!("kubernetes/{}", owner_dir(owner));
    let component = format!("{root}/{}", phase_dir(phase));
    let how = match owner {
        None => format!(
            "Nobody owns these objects: `irsa-migrate apply` makes them. For manifests kept in Git\nanyway, add `{component}` to their kustomization's `components:`."
        ),
        Some(Owner::HelmRelease { namespace, name }) => format!(
            "Upgrade the release with the post-renderer, which makes these changes and the earlier\nphases' (`kubectl` on PATH). Helm 4 runs it as a plugin:\n\n    helm plugin install {root}/{plugin}\n    helm upgrade {name} <chart> -n {namespace} --reuse-values --post-renderer {plugin}\n\nHelm 3 by its path: `--post-renderer {root}/{plugin}/post-render`. Or, for charts that\nfollow `helm create`'s conventions, set the values in `{root}/values-hint-{phase_dir}.yaml`.",
            phase_dir = phase_dir(phase),
            plugin = super::kustomize::plugin_name(&owner_dir(owner), phase),
        ),
        Some(Owner::FluxHelmRelease { .. }) => format!(
            "Add the patches of `{component}` to the HelmRelease's `spec.postRenderers[].kustomize.patches`\n(and its new objects to the chart), or set the values in `{root}/values-hint-{}.yaml`.",
            phase_dir(phase)
        ),
        Some(Owner::ArgoCdApplication { .. } | Owner::FluxKustomization { .. }) => format!(
            "Add `{component}` to the `components:` of the kustomization in the repository the\napplication syncs, and merge."
        ),
        Some(Owner::FieldManager { .. }) => format!(
            "Make the changes of `{component}` in the configuration that applies these objects (its\npatches are the fields to set, `null` the fields to remove)."
        ),
        Some(owner) => format!(
            "Make the changes of `{component}` in {}.",
            owner.where_to_change()
        ),
    };
    let whose = owner.map_or("Objects nobody owns".to_string(), ToString::to_string);
    format!(
        "\n### {whose} (`{component}/`)\n\n{how}\n\n{}",
        step_list(steps)
    )
}
