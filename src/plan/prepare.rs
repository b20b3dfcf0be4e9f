//! The prepare phase: each bound role comes to trust its service accounts through the cluster's OIDC
//! provider, next to its legacy trust, and the provider is created in every account that lacks it.
//! A role whose trust policy would exceed the limit is dropped with its bindings, never made to fit.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::assemble::Planner;
use super::document::Binding;
use super::step::{Step, StepKind, Target};
use super::trust;
use crate::findings::{Code, Finding, Subject};
use crate::iam::arn::RoleArn;
use crate::json::CompactJson;

/// A bound role as prepare leaves it, which decommission starts from.
pub(super) struct PreparedRole {
    /// Compact: thousands of documents live until decommission is planned.
    pub(super) trust: CompactJson,
}

impl Planner<'_> {
    /// One trust step per target role whose policy changes; a role whose policy would exceed the
    /// limit is dropped with its bindings. Also returns every planned role as prepare leaves it,
    /// by its ARN as the bindings have it.
    pub(super) fn trust_steps(&mut self) -> (Vec<Step>, BTreeMap<RoleArn, PreparedRole>) {
        let mut by_role: BTreeMap<RoleArn, Vec<String>> = BTreeMap::new();
        for binding in &self.bindings {
            by_role
                .entry(binding.role_arn.clone())
                .or_default()
                .push(trust::subject(&binding.namespace, &binding.service_account));
        }
        let mut steps = Vec::new();
        let mut after_prepare = BTreeMap::new();
        for (role_arn, subjects) in by_role {
            // Every migrating usage works today, so its role is in the inventory.
            let Some(role) = self.inventory.iam.role(&role_arn) else {
                continue;
            };
            let provider = crate::iam::arn::oidc_provider_arn(
                role_arn.partition(),
                role_arn.account(),
                self.issuer_host,
            );
            let before = role.trust_policy();
            let after = trust::add_web_identity(&before, &provider, self.issuer_host, &subjects);
            let (before_len, after_len) = (trust::length(&before), trust::length(&after));
            if after_len > self.limit {
                self.drop_role(&role_arn, before_len, after_len, subjects.len());
                continue;
            }
            if after != before {
                steps.push(Step::new(
                    StepKind::UpdateRoleTrust,
                    Target::Role { account: role_arn.account().to_string(), arn: role.arn.clone() },
                    format!(
                        "trust {} through the cluster's OIDC provider ({before_len} → {after_len} of {} characters); the legacy trust stays until decommission",
                        subjects.join(", "),
                        self.limit
                    ),
                    before.0,
                    after.0.clone(),
                ));
            }
            after_prepare.insert(
                role_arn,
                PreparedRole {
                    trust: CompactJson::new(&after.0),
                },
            );
        }
        (steps, after_prepare)
    }

    fn drop_role(
        &mut self,
        role_arn: &RoleArn,
        before_len: usize,
        after_len: usize,
        subjects: usize,
    ) {
        self.findings.push(Finding::new(
            Code::TrustPolicyTooLarge,
            Subject::new(None, "IAMRole", role_arn.as_str()),
            format!(
                "adding {subjects} service account(s) would make the trust policy {after_len} characters (now {before_len}), over the limit of {}: raise the IAM quota (up to 4096) and pass --trust-policy-limit, remove stale statements, or split the workloads over several roles; no wildcard is used instead",
                self.limit
            ),
        ));
        let dropped: Vec<Binding> = self
            .bindings
            .iter()
            .filter(|b| &b.role_arn == role_arn)
            .cloned()
            .collect();
        self.bindings.retain(|b| &b.role_arn != role_arn);
        for binding in dropped {
            for workload in &binding.workloads {
                self.skip(
                    &binding.namespace,
                    workload.kind,
                    &workload.name,
                    Code::TrustPolicyTooLarge,
                    format!(
                        "the trust policy of {role_arn} would exceed {} characters",
                        self.limit
                    ),
                );
            }
        }
    }

    /// An OIDC provider in every account whose roles are bound, unless IAM already has it.
    pub(super) fn provider_steps(&self, issuer_url: &str) -> Vec<Step> {
        let accounts: BTreeSet<(String, String)> = self
            .bindings
            .iter()
            .map(|b| {
                (
                    b.role_arn.partition().to_string(),
                    b.role_arn.account().to_string(),
                )
            })
            .collect();
        accounts
            .into_iter()
            .filter_map(|(partition, account)| {
                let arn = crate::iam::arn::oidc_provider_arn(&partition, &account, self.issuer_host);
                let exists = self.inventory.iam.oidc_providers.as_ref().is_some_and(|known| known.contains(&arn));
                (!exists).then(|| {
                    Step::new(
                        StepKind::CreateOidcProvider,
                        Target::OidcProvider { account: account.clone(), arn },
                        format!("create the IAM OIDC provider for {issuer_url} in account {account}, client id {}", trust::AUDIENCE),
                        Value::Null,
                        json!({"Url": issuer_url, "ClientIDList": [trust::AUDIENCE]}),
                    )
                })
            })
            .collect()
    }
}
