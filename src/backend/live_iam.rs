//! The live IAM backend: role trust policies, inline policies and OIDC providers, read and
//! written through the AWS SDK. Every write is preceded by the engine's read and comparison, so
//! IAM is never written where it differs from what the plan expects.

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use serde_json::{Value, json};

use super::{Backend, BackendError, TrailReading};
use crate::aws::{Aws, AwsAccounts, AwsError, found};
use crate::iam::arn::RoleArn;
use crate::iam::policy::PolicyDocument;
use crate::plan::{Step, Target};

pub struct LiveIam {
    accounts: AwsAccounts,
    /// IAM calls in flight at once.
    concurrency: usize,
    /// IAM API calls made, reads and writes: what a run costs.
    calls: usize,
}

impl LiveIam {
    pub fn new(accounts: AwsAccounts, concurrency: usize) -> LiveIam {
        LiveIam {
            accounts,
            concurrency: concurrency.max(1),
            calls: 0,
        }
    }

    /// The AWS access of each account, for the checks before a run's first write.
    pub fn accounts(&self) -> &AwsAccounts {
        &self.accounts
    }

    pub fn set_concurrency(&mut self, concurrency: usize) {
        self.concurrency = concurrency.max(1);
    }

    /// The access for the step's account (`--account-profile`, or the default).
    fn aws(&self, step: &Step) -> &Aws {
        self.accounts
            .for_account(step.target.account().unwrap_or_default())
    }
}

/// A failed call on `target`. Its kind says whether it was refused: a write answered with a 4xx
/// (AccessDenied, MalformedPolicyDocument, ...) was not made; without an answer, or with a 5xx,
/// it may have been.
fn failed(target: &Target, error: AwsError) -> BackendError {
    BackendError::Aws {
        target: target.to_string(),
        source: error,
    }
}

/// A failed write of `operation` on `target`.
fn write_failed<E>(
    target: &Target,
    operation: &'static str,
    error: SdkError<E, HttpResponse>,
) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    failed(target, AwsError::call(operation, error))
}

/// IAM returns documents URL-encoded; the plan holds them as JSON.
fn document(step: &Step, text: &str) -> Result<Value, BackendError> {
    PolicyDocument::from_text(text)
        .map(|d| d.0)
        .map_err(|e| BackendError::Target {
            target: step.target.to_string(),
            message: e.to_string(),
        })
}

impl Backend for LiveIam {
    fn describe(&self) -> String {
        format!(
            "AWS IAM (region {}{}{})",
            self.accounts
                .default
                .config
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "default".into()),
            self.accounts
                .default
                .config
                .endpoint_url()
                .map(|u| format!(", endpoint {u}"))
                .unwrap_or_default(),
            if self.accounts.others.is_empty() {
                String::new()
            } else {
                format!(
                    "; accounts {} through their own profiles",
                    self.accounts
                        .others
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )
    }

    fn supports(&self, target: &Target) -> bool {
        target.is_iam()
    }

    fn calls(&self) -> Option<usize> {
        Some(self.calls)
    }

    fn read(&mut self, step: &Step) -> Result<Value, BackendError> {
        self.calls += 1;
        let aws = self.aws(step);
        aws.runtime.block_on(read_target(aws.iam(), step.clone()))
    }

    fn write(&mut self, step: &Step, _from: &Value, to: &Value) -> Result<(), BackendError> {
        self.calls += 1;
        let aws = self.aws(step);
        aws.runtime
            .block_on(write_target(aws.iam(), step.clone(), to.clone()))
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The cluster account's trail (the default credentials'), read now, and the roles'
    /// `RoleLastUsed`, each from its account.
    fn trail(
        &mut self,
        regions: &[String],
        start: i64,
        roles: &[RoleArn],
    ) -> Result<TrailReading, BackendError> {
        let as_of = crate::time::now();
        let pages = std::cell::Cell::new(0);
        let mut trail = self
            .accounts
            .default
            .trail(regions, start, as_of, &|_| pages.set(pages.get() + 1))
            .map_err(|source| BackendError::Aws {
                target: format!("the CloudTrail of {}", regions.join(" and ")),
                source,
            })?;
        self.calls += pages.get();
        let mut by_account: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for role in roles {
            by_account
                .entry(role.account())
                .or_default()
                .push(role.name().to_string());
        }
        for (account, names) in by_account {
            let used = self
                .accounts
                .for_account(account)
                .roles_last_used(&names, self.concurrency)
                .map_err(|source| BackendError::Aws {
                    target: format!("the RoleLastUsed of account {account}'s roles"),
                    source,
                })?;
            self.calls += names.len();
            trail.last_used.extend(used);
        }
        Ok(TrailReading {
            trail,
            as_of,
            pods: Default::default(),
        })
    }

    fn read_many(&mut self, steps: &[&Step]) -> Vec<Result<Value, BackendError>> {
        self.calls += steps.len();
        let calls = steps
            .iter()
            .map(|step| read_target(self.aws(step).iam(), (*step).clone()))
            .collect();
        let runtime = &self.accounts.default.runtime;
        runtime.block_on(crate::tasks::bounded(self.concurrency, calls))
    }

    fn write_many(&mut self, moves: &[(&Step, &Value, &Value)]) -> Vec<Result<(), BackendError>> {
        self.calls += moves.len();
        let calls = moves
            .iter()
            .map(|(step, _, to)| write_target(self.aws(step).iam(), (*step).clone(), (*to).clone()))
            .collect();
        let runtime = &self.accounts.default.runtime;
        runtime.block_on(crate::tasks::bounded(self.concurrency, calls))
    }
}

/// The target's document as the plan holds it; `null` when it does not exist.
async fn read_target(client: aws_sdk_iam::Client, step: Step) -> Result<Value, BackendError> {
    let step = &step;
    let failed = |error| failed(&step.target, error);
    match &step.target {
        Target::Role { arn, .. } => {
            let name = arn.name();
            let result = client.get_role().role_name(name).send().await;
            let output = found("iam:GetRole", result).map_err(failed)?;
            match output
                .as_ref()
                .and_then(|o| o.role())
                .and_then(|r| r.assume_role_policy_document())
            {
                Some(text) => document(step, text),
                None => Ok(Value::Null),
            }
        }
        Target::InlinePolicy {
            role_arn,
            policy_name,
            ..
        } => {
            let name = role_arn.name();
            let call = client
                .get_role_policy()
                .role_name(name)
                .policy_name(policy_name)
                .send();
            match found("iam:GetRolePolicy", call.await).map_err(failed)? {
                Some(output) => document(step, output.policy_document()),
                None => Ok(Value::Null),
            }
        }
        Target::OidcProvider { arn, .. } => {
            let call = client
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .send();
            let Some(output) = found("iam:GetOpenIDConnectProvider", call.await).map_err(failed)?
            else {
                return Ok(Value::Null);
            };
            // IAM stores the URL without its scheme; the plan writes it with one.
            let url = output.url().unwrap_or_default();
            let url = if url.starts_with("https://") {
                url.to_string()
            } else {
                format!("https://{url}")
            };
            Ok(json!({"Url": url, "ClientIDList": output.client_id_list()}))
        }
        other => Err(BackendError::Target {
            target: other.to_string(),
            message: "not an IAM object".into(),
        }),
    }
}

/// Writes `to` as the target's document (`null`: deletes it).
async fn write_target(
    client: aws_sdk_iam::Client,
    step: Step,
    to: Value,
) -> Result<(), BackendError> {
    let (step, to) = (&step, &to);
    let text = |value: &Value| serde_json::to_string(value).unwrap_or_default();
    match &step.target {
        Target::Role { arn, .. } => {
            let call = client
                .update_assume_role_policy()
                .role_name(arn.name())
                .policy_document(text(to))
                .send();
            call.await
                .map(|_| ())
                .map_err(|e| write_failed(&step.target, "iam:UpdateAssumeRolePolicy", e))
        }
        Target::InlinePolicy {
            role_arn,
            policy_name,
            ..
        } => {
            let name = role_arn.name();
            if to.is_null() {
                let call = client
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(policy_name)
                    .send();
                call.await
                    .map(|_| ())
                    .map_err(|e| write_failed(&step.target, "iam:DeleteRolePolicy", e))
            } else {
                let call = client
                    .put_role_policy()
                    .role_name(name)
                    .policy_name(policy_name)
                    .policy_document(text(to))
                    .send();
                call.await
                    .map(|_| ())
                    .map_err(|e| write_failed(&step.target, "iam:PutRolePolicy", e))
            }
        }
        Target::OidcProvider { arn, .. } => {
            if to.is_null() {
                let call = client
                    .delete_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .send();
                call.await
                    .map(|_| ())
                    .map_err(|e| write_failed(&step.target, "iam:DeleteOpenIDConnectProvider", e))
            } else {
                let client_ids: Vec<String> = to["ClientIDList"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                let call = client
                    .create_open_id_connect_provider()
                    .url(to["Url"].as_str().unwrap_or_default())
                    .set_client_id_list(Some(client_ids))
                    .send();
                call.await
                    .map(|_| ())
                    .map_err(|e| write_failed(&step.target, "iam:CreateOpenIDConnectProvider", e))
            }
        }
        other => Err(BackendError::Target {
            target: other.to_string(),
            message: "not an IAM object".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::error::ErrorMetadata;
    use aws_sdk_iam::operation::update_assume_role_policy::UpdateAssumeRolePolicyError;

    use super::*;

    #[test]
    fn a_write_answered_with_a_refusal_was_not_made_and_one_without_an_answer_may_have_been() {
        let target = Target::Role {
            account: "111122223333".into(),
            arn: crate::iam::arn::RoleArn::parse("arn:aws:iam::111122223333:role/api").unwrap(),
        };
        let answered = |status: u16| {
            SdkError::service_error(
                UpdateAssumeRolePolicyError::generic(
                    ErrorMetadata::builder().code("AccessDenied").build(),
                ),
                HttpResponse::new(status.try_into().expect("a status"), "".into()),
            )
        };
        let refused = write_failed(&target, "iam:UpdateAssumeRolePolicy", answered(403));
        assert!(
            refused.kind().is_refusal() && refused.to_string().contains("AccessDenied"),
            "{refused:?}"
        );
        assert!(
            std::error::Error::source(&refused).is_some(),
            "the cause is kept"
        );
        let failed = write_failed(&target, "iam:UpdateAssumeRolePolicy", answered(500));
        assert!(!failed.kind().is_refusal(), "{failed:?}");
        let lost: SdkError<UpdateAssumeRolePolicyError, HttpResponse> =
            SdkError::timeout_error(std::io::Error::other("timed out"));
        let lost = write_failed(&target, "iam:UpdateAssumeRolePolicy", lost);
        assert!(!lost.kind().is_refusal(), "{lost:?}");
    }
}
