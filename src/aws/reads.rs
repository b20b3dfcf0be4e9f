//! The live reads of the cluster (`eks:DescribeCluster`), IAM (`GetAccountAuthorizationDetails`,
//! role by role, `ListOpenIDConnectProviders`) and the CloudFormation stacks that made roles
//! through the SDK, written as the same JSON documents the AWS CLI prints, so live reads,
//! `snapshot --out` and the snapshot loader share one path.

use serde_json::{Value, json};

use super::error::found;
use super::{Aws, AwsError};

impl Aws {
    /// `aws iam get-account-authorization-details` (roles and managed policies), every page.
    pub fn authorization_details(&self) -> Result<Value, AwsError> {
        let client = self.iam();
        self.runtime.block_on(async {
            let mut roles = Vec::new();
            let mut policies = Vec::new();
            let mut pages = client
                .get_account_authorization_details()
                .filter(aws_sdk_iam::types::EntityType::Role)
                .filter(aws_sdk_iam::types::EntityType::LocalManagedPolicy)
                .filter(aws_sdk_iam::types::EntityType::AwsManagedPolicy)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| AwsError::call("iam:GetAccountAuthorizationDetails", e))?;
                roles.extend(page.role_detail_list().iter().map(role_json));
                // Only attached AWS-managed policies matter; the account's own are kept whole.
                policies.extend(
                    page.policies()
                        .iter()
                        .filter(|p| {
                            p.attachment_count().unwrap_or(0) > 0
                                || !p.arn().unwrap_or_default().contains(":iam::aws:")
                        })
                        .map(policy_json),
                );
            }
            Ok(without_nulls(
                json!({"RoleDetailList": roles, "Policies": policies}),
            ))
        })
    }

    /// The named roles as `get-account-authorization-details` prints them (trust, inline and
    /// attached policies, and the documents of the attached policies), read role by role at most
    /// `concurrency` calls at a time. Roles that do not exist are left out, as the full listing
    /// would leave them out.
    pub fn role_details(&self, names: &[String], concurrency: usize) -> Result<Value, AwsError> {
        let client = self.iam();
        self.runtime.block_on(async {
            let reads = each_role(&client, names, |client, name| async move {
                read_role(&client, &name).await
            });
            let mut roles = Vec::new();
            for role in crate::tasks::bounded(concurrency, reads).await {
                roles.extend(role?);
            }
            let mut policy_arns: Vec<String> = roles
                .iter()
                .flat_map(|r| {
                    r["AttachedManagedPolicies"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|p| p["PolicyArn"].as_str().map(str::to_string))
                .collect();
            policy_arns.sort();
            policy_arns.dedup();
            let reads = policy_arns
                .into_iter()
                .map(|arn| {
                    let client = client.clone();
                    async move { read_policy(&client, &arn).await }
                })
                .collect();
            let policies = crate::tasks::bounded(concurrency, reads)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({"RoleDetailList": roles, "Policies": policies}))
        })
    }

    /// `aws iam list-open-id-connect-providers`.
    pub fn oidc_providers(&self) -> Result<Value, AwsError> {
        let client = self.iam();
        self.runtime.block_on(async {
            let list = client
                .list_open_id_connect_providers()
                .send()
                .await
                .map_err(|e| AwsError::call("iam:ListOpenIDConnectProviders", e))?;
            let providers: Vec<Value> = list
                .open_id_connect_provider_list()
                .iter()
                .filter_map(|p| p.arn())
                .map(|arn| json!({"Arn": arn}))
                .collect();
            Ok(json!({"OpenIDConnectProviderList": providers}))
        })
    }

    /// `aws eks describe-cluster --name NAME`, the fields the tool reads.
    pub fn describe_cluster(&self, name: &str) -> Result<Value, AwsError> {
        let client = aws_sdk_eks::Client::new(&self.config);
        self.runtime.block_on(async {
            let output = client
                .describe_cluster()
                .name(name)
                .send()
                .await
                .map_err(|e| AwsError::call("eks:DescribeCluster", e))?;
            let cluster = output.cluster();
            let issuer = cluster
                .and_then(|c| c.identity())
                .and_then(|i| i.oidc())
                .and_then(|o| o.issuer());
            Ok(without_nulls(json!({"cluster": {
                "name": cluster.and_then(|c| c.name()),
                "arn": cluster.and_then(|c| c.arn()),
                "version": cluster.and_then(|c| c.version()),
                "platformVersion": cluster.and_then(|c| c.platform_version()),
                "identity": {"oidc": {"issuer": issuer}},
            }})))
        })
    }
}

impl Aws {
    /// The roles among `roles` (names) that a CloudFormation stack made, as `aws cloudformation
    /// describe-stack-resources` prints them. Every live stack's resources are listed, at most
    /// `concurrency` stacks at a time: `DescribeStackResources` by a role's name would take one
    /// call a role, but the API's test peer (moto) answers it by stack only, so the tool reads
    /// the way both answer.
    pub fn stack_roles(
        &self,
        roles: &std::collections::BTreeSet<String>,
        concurrency: usize,
    ) -> Result<Value, AwsError> {
        use aws_sdk_cloudformation::types::StackStatus;
        let client = aws_sdk_cloudformation::Client::new(&self.config);
        self.runtime.block_on(async {
            let mut stacks = Vec::new();
            let mut pages = client.list_stacks().into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| AwsError::call("cloudformation:ListStacks", e))?;
                stacks.extend(
                    page.stack_summaries()
                        .iter()
                        // Deleted stacks stay listed for 90 days; they own nothing.
                        .filter(|s| s.stack_status() != Some(&StackStatus::DeleteComplete))
                        .filter_map(|s| {
                            Some((s.stack_name()?.to_string(), s.stack_id()?.to_string()))
                        }),
                );
            }
            let reads = stacks
                .into_iter()
                .map(|(name, id)| {
                    let client = client.clone();
                    async move { stack_role_resources(&client, name, id).await }
                })
                .collect();
            let mut resources = Vec::new();
            for stack in crate::tasks::bounded(concurrency, reads).await {
                resources.extend(stack?.into_iter().filter(|r| {
                    r["PhysicalResourceId"]
                        .as_str()
                        .is_some_and(|name| roles.contains(name))
                }));
            }
            Ok(json!({"StackResources": resources}))
        })
    }
}

/// The roles of one stack, as `StackResources` entries; none when the stack was deleted since it
/// was listed.
async fn stack_role_resources(
    client: &aws_sdk_cloudformation::Client,
    name: String,
    id: String,
) -> Result<Vec<Value>, AwsError> {
    use aws_sdk_cloudformation::error::ProvideErrorMetadata;
    let mut resources = Vec::new();
    // By id: a stack of the same name made since is another stack.
    let mut pages = client
        .list_stack_resources()
        .stack_name(&id)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(e)
                if e.code() == Some("ValidationError")
                    && e.message().is_some_and(|m| m.contains("does not exist")) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(AwsError::call("cloudformation:ListStackResources", e)),
        };
        resources.extend(
            page.stack_resource_summaries()
                .iter()
                .filter(|r| r.resource_type() == Some("AWS::IAM::Role"))
                .map(|r| {
                    without_nulls(json!({
                        "StackName": name,
                        "StackId": id,
                        "LogicalResourceId": r.logical_resource_id(),
                        "PhysicalResourceId": r.physical_resource_id(),
                        "ResourceType": r.resource_type(),
                    }))
                }),
        );
    }
    Ok(resources)
}

impl Aws {
    /// IAM's `RoleLastUsed` of the named roles (`iam:GetRole`, at most `concurrency` at a time),
    /// by ARN; roles never used, or gone, are left out.
    pub fn roles_last_used(
        &self,
        names: &[String],
        concurrency: usize,
    ) -> Result<Vec<(String, crate::inventory::trail::LastUsed)>, AwsError> {
        let client = self.iam();
        self.runtime.block_on(async {
            let reads = each_role(&client, names, |client, name| async move {
                found(
                    "iam:GetRole",
                    client.get_role().role_name(&name).send().await,
                )
            });
            let mut used = Vec::new();
            for output in crate::tasks::bounded(concurrency, reads).await {
                let Some(role) = output?.and_then(|o| o.role) else {
                    continue;
                };
                if let Some(last) = role.role_last_used()
                    && let Some(date) = last.last_used_date()
                {
                    used.push((
                        role.arn().to_string(),
                        crate::inventory::trail::LastUsed {
                            time: date.secs(),
                            region: last.region().map(str::to_string),
                        },
                    ));
                }
            }
            Ok(used)
        })
    }
}

/// `read` of each named role, each with its own handle on the client: the calls
/// [`crate::tasks::bounded`] runs a few at a time.
fn each_role<F, Fut>(client: &aws_sdk_iam::Client, names: &[String], read: F) -> Vec<Fut>
where
    F: Fn(aws_sdk_iam::Client, String) -> Fut,
{
    names
        .iter()
        .map(|name| read(client.clone(), name.clone()))
        .collect()
}

/// One role as a `RoleDetailList` entry; `None` when it does not exist.
async fn read_role(client: &aws_sdk_iam::Client, name: &str) -> Result<Option<Value>, AwsError> {
    let Some(output) = found(
        "iam:GetRole",
        client.get_role().role_name(name).send().await,
    )?
    else {
        return Ok(None);
    };
    let role = output.role.ok_or_else(|| AwsError::Answer {
        operation: "iam:GetRole",
        missing: format!("the role {name}"),
    })?;
    let mut inline = Vec::new();
    let mut names = client
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .send();
    while let Some(page) = names.next().await {
        let page = page.map_err(|e| AwsError::call("iam:ListRolePolicies", e))?;
        for policy in page.policy_names() {
            let document = client
                .get_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map_err(|e| AwsError::call("iam:GetRolePolicy", e))?;
            inline
                .push(json!({"PolicyName": policy, "PolicyDocument": document.policy_document()}));
        }
    }
    let mut attached = Vec::new();
    let mut pages = client
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::call("iam:ListAttachedRolePolicies", e))?;
        attached.extend(
            page.attached_policies()
                .iter()
                .map(|p| json!({"PolicyName": p.policy_name(), "PolicyArn": p.policy_arn()})),
        );
    }
    Ok(Some(without_nulls(json!({
        "Path": role.path(),
        "RoleName": role.role_name(),
        "Arn": role.arn(),
        // As the API returns it: URL-encoded. The loader decodes it.
        "AssumeRolePolicyDocument": role.assume_role_policy_document(),
        "RolePolicyList": inline,
        "AttachedManagedPolicies": attached,
        "InstanceProfileList": [],
        "Tags": tags_json(role.tags()),
        "RoleLastUsed": last_used_json(role.role_last_used()),
    }))))
}

/// A managed policy with its default version, as a `Policies` entry.
async fn read_policy(client: &aws_sdk_iam::Client, arn: &str) -> Result<Value, AwsError> {
    let policy = client
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::call("iam:GetPolicy", e))?;
    let policy = policy.policy();
    let version_id = policy.and_then(|p| p.default_version_id()).unwrap_or("v1");
    let version = client
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version_id)
        .send()
        .await
        .map_err(|e| AwsError::call("iam:GetPolicyVersion", e))?;
    Ok(without_nulls(json!({
        "Arn": arn,
        "PolicyName": policy.and_then(|p| p.policy_name()),
        "DefaultVersionId": version_id,
        "PolicyVersionList": [{
            "Document": version.policy_version().and_then(|v| v.document()),
            "VersionId": version_id,
            "IsDefaultVersion": true,
        }],
    })))
}

/// The AWS CLI omits absent members instead of printing `null`; so do we.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn role_json(role: &aws_sdk_iam::types::RoleDetail) -> Value {
    json!({
        "Path": role.path(),
        "RoleName": role.role_name(),
        "Arn": role.arn(),
        // As the API returns it: URL-encoded. The loader decodes it.
        "AssumeRolePolicyDocument": role.assume_role_policy_document(),
        "RolePolicyList": role.role_policy_list().iter().map(|p| json!({"PolicyName": p.policy_name(), "PolicyDocument": p.policy_document()})).collect::<Vec<_>>(),
        "AttachedManagedPolicies": role.attached_managed_policies().iter().map(|p| json!({"PolicyName": p.policy_name(), "PolicyArn": p.policy_arn()})).collect::<Vec<_>>(),
        "InstanceProfileList": role.instance_profile_list().iter().map(|p| json!({"Arn": p.arn()})).collect::<Vec<_>>(),
        "Tags": tags_json(role.tags()),
        "RoleLastUsed": last_used_json(role.role_last_used()),
    })
}

/// `RoleLastUsed` as the CLI prints it (`{}` when never used).
fn last_used_json(last_used: Option<&aws_sdk_iam::types::RoleLastUsed>) -> Value {
    let Some(last_used) = last_used else {
        return json!({});
    };
    without_nulls(json!({
        "LastUsedDate": last_used.last_used_date().map(|d| crate::time::format(d.secs())),
        "Region": last_used.region(),
    }))
}

fn tags_json(tags: &[aws_sdk_iam::types::Tag]) -> Vec<Value> {
    tags.iter()
        .map(|t| json!({"Key": t.key(), "Value": t.value()}))
        .collect()
}

fn policy_json(policy: &aws_sdk_iam::types::ManagedPolicyDetail) -> Value {
    json!({
        "Arn": policy.arn(),
        "PolicyName": policy.policy_name(),
        "DefaultVersionId": policy.default_version_id(),
        "PolicyVersionList": policy.policy_version_list().iter().map(|v| json!({
            "Document": v.document(), "VersionId": v.version_id(), "IsDefaultVersion": v.is_default_version()
        })).collect::<Vec<_>>(),
    })
}
