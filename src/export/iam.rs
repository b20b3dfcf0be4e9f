//! IAM changes per phase: each document (a role's trust policy, a grant's inline policy) whole
//! as JSON, before and after; Terraform for them (`aws_iam_openid_connect_provider`,
//! `aws_iam_role`'s `assume_role_policy`, `aws_iam_role_policy`, and the input of
//! terraform-aws-modules' IRSA module); and an AWS CLI script for the documents nobody owns.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{ExportFile, file_name, phase_dir};
use crate::plan::{Phase, Plan, Step, StepKind, Target};

/// The files of a phase's IAM steps.
pub(super) fn files(plan: &Plan, phase: Phase, steps: &[&Step]) -> Vec<ExportFile> {
    let dir = format!("iam/{}", phase_dir(phase));
    let mut files = Vec::new();
    let mut terraform = format!(
        "# irsa-migrate export: the IAM changes of phase {phase} of plan {}, each as the resource's\n# argument after the phase. Merge them into the resources that manage these objects; the\n# JSON files beside this one hold each document whole, before and after.\n",
        plan.name
    );
    let mut script = String::new();
    let mut names = BTreeSet::new();
    for step in steps {
        let document = document_file(step);
        if let Some(name) = &document {
            for (suffix, side) in [
                ("json", step.after.value()),
                ("before.json", step.before.value()),
            ] {
                if !side.is_null() {
                    files.push(ExportFile::new(
                        format!("{dir}/{name}.{suffix}"),
                        pretty(&side),
                    ));
                }
            }
        }
        terraform.push_str(&resource(plan, step, &mut names));
        if step.owner.is_none() {
            script.push_str(&cli_call(step, document.as_deref()));
        }
    }
    files.push(ExportFile::new(format!("{dir}/main.tf"), terraform));
    if !script.is_empty() {
        files.push(ExportFile::script(
            format!("{dir}/aws-cli.sh"),
            format!(
                "#!/bin/sh\n# irsa-migrate export: the IAM changes of phase {phase} that nobody owns, with the AWS CLI.\n# Run with credentials for each account named (`--profile`), from any directory.\nset -eu\ncd \"$(dirname \"$0\")\"\n{script}"
            ),
        ));
    }
    files
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// The name (without extension) of the JSON files of a step's document; none for the OIDC
/// provider, whose arguments Terraform and the CLI take directly.
pub(super) fn document_file(step: &Step) -> Option<String> {
    match &step.target {
        Target::Role { account, arn } => Some(file_name(&format!("{account}-{}", arn.name()))),
        Target::InlinePolicy {
            account,
            role_arn,
            policy_name,
        } => Some(file_name(&format!(
            "{account}-{}-{policy_name}",
            role_arn.name()
        ))),
        _ => None,
    }
}

/// A Terraform resource label for `text`, unique in the file.
fn label(text: &str, names: &mut BTreeSet<String>) -> String {
    let base: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let base = match base.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => base,
        _ => format!("r_{base}"),
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while !names.insert(candidate.clone()) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    candidate
}

/// A string as an HCL literal: JSON's escapes are HCL's, and `${`/`%{` are escaped so that they
/// stay text.
fn hcl_string(text: &str) -> String {
    serde_json::to_string(text)
        .unwrap_or_default()
        .replace("${", "$${")
        .replace("%{", "%%{")
}

/// A JSON document as an HCL heredoc (its text as it is: heredoc content is not escaped, so the
/// document must hold no template sequence, which IAM documents never need).
fn heredoc(value: &Value) -> String {
    let text = pretty(value).replace("${", "$${").replace("%{", "%%{");
    format!("<<-EOT\n{}  EOT", indent(&text, "    "))
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|line| format!("{by}{line}\n")).collect()
}

/// Attributes of one block, their `=` aligned as `terraform fmt` aligns them.
fn attributes(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| format!("  {key:<width$} = {value}\n"))
        .collect()
}

/// The step's Terraform: the resource and, for a role's trust, the IRSA module's input.
fn resource(plan: &Plan, step: &Step, names: &mut BTreeSet<String>) -> String {
    let owner = step
        .owner
        .as_ref()
        .map(|o| format!(" Owned by {o}: make the change in {}.", o.where_to_change()))
        .unwrap_or_default();
    let header = format!("\n# {}: {}.{owner}\n", step.id, step.description);
    match (&step.target, step.kind) {
        (Target::OidcProvider { .. }, _) => {
            let after = step.after.value();
            let url = after["Url"].as_str().unwrap_or_default();
            let clients: Vec<String> = client_ids(&after).map(hcl_string).collect();
            format!(
                "{header}resource \"aws_iam_openid_connect_provider\" \"{}\" {{\n{}}}\n",
                label(&format!("{}_oidc", plan.cluster.name), names),
                attributes(&[
                    ("url", hcl_string(url)),
                    ("client_id_list", format!("[{}]", clients.join(", "))),
                ])
            )
        }
        (Target::Role { arn, .. }, _) => {
            let mut text = format!(
                "{header}resource \"aws_iam_role\" \"{}\" {{\n{}\n  assume_role_policy = {}\n}}\n",
                label(arn.name(), names),
                attributes(&[
                    ("name", hcl_string(arn.name())),
                    ("path", hcl_string(&arn.path())),
                ]),
                heredoc(&step.after.value())
            );
            if step.kind == StepKind::UpdateRoleTrust {
                text.push_str(&module_hint(plan, arn.as_str()));
            }
            text
        }
        (
            Target::InlinePolicy {
                role_arn,
                policy_name,
                ..
            },
            _,
        ) => {
            let name = label(&format!("{}_{policy_name}", role_arn.name()), names);
            let after = step.after.value();
            if after.is_null() {
                return format!(
                    "{header}# Remove resource \"aws_iam_role_policy\" for policy {} of role {}: nothing of it is left.\n",
                    hcl_string(policy_name),
                    hcl_string(role_arn.name())
                );
            }
            format!(
                "{header}resource \"aws_iam_role_policy\" \"{name}\" {{\n{}\n  policy = {}\n}}\n",
                attributes(&[
                    ("name", hcl_string(policy_name)),
                    ("role", hcl_string(role_arn.name())),
                ]),
                heredoc(&after)
            )
        }
        _ => String::new(),
    }
}

/// For a role made with terraform-aws-modules' IRSA module: the module's input that gives the
/// same trust (its service accounts, by the cluster's OIDC provider).
fn module_hint(plan: &Plan, role_arn: &str) -> String {
    let accounts: Vec<String> = plan
        .bindings
        .iter()
        .filter(|b| b.role_arn.as_str() == role_arn)
        .map(|b| hcl_string(&format!("{}:{}", b.namespace, b.service_account)))
        .collect();
    format!(
        "# If terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks makes this role,\n# its input for these IRSA statements is (the module writes the trust policy from it):\n#   oidc_providers = {{\n#     main = {{\n#       provider_arn               = {}\n#       namespace_service_accounts = [{}]\n#     }}\n#   }}\n",
        hcl_string(&plan.cluster.oidc_provider_arn),
        accounts.join(", ")
    )
}

/// The client ids of an OIDC provider's document.
fn client_ids(provider: &Value) -> impl Iterator<Item = &str> {
    provider["ClientIDList"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// A shell word: single-quoted.
fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The AWS CLI call that makes the step, for the script of what nobody owns.
fn cli_call(step: &Step, document: Option<&str>) -> String {
    let account = step
        .target
        .account()
        .map(|a| format!(" (account {a})"))
        .unwrap_or_default();
    let comment = format!("\n# {}{account}\n", step.id);
    match &step.target {
        Target::OidcProvider { .. } => {
            let after = step.after.value();
            let clients: Vec<String> = client_ids(&after).map(shell_word).collect();
            format!(
                "{comment}aws iam create-open-id-connect-provider --url {} --client-id-list {}\n",
                shell_word(after["Url"].as_str().unwrap_or_default()),
                clients.join(" ")
            )
        }
        Target::Role { arn, .. } => format!(
            "{comment}aws iam update-assume-role-policy --role-name {} --policy-document {}\n",
            shell_word(arn.name()),
            shell_word(&format!("file://{}.json", document.unwrap_or_default()))
        ),
        Target::InlinePolicy {
            role_arn,
            policy_name,
            ..
        } if step.after.value().is_null() => format!(
            "{comment}aws iam delete-role-policy --role-name {} --policy-name {}\n",
            shell_word(role_arn.name()),
            shell_word(policy_name)
        ),
        Target::InlinePolicy {
            role_arn,
            policy_name,
            ..
        } => format!(
            "{comment}aws iam put-role-policy --role-name {} --policy-name {} --policy-document {}\n",
            shell_word(role_arn.name()),
            shell_word(policy_name),
            shell_word(&format!("file://{}.json", document.unwrap_or_default()))
        ),
        _ => String::new(),
    }
}
