//! AWS collection: the cluster (`eks:DescribeCluster`) and IAM (`GetAccountAuthorizationDetails`,
//! `ListOpenIDConnectProviders`) read through the SDK and written as the same JSON documents the
//! AWS CLI prints, so live reads, `snapshot --out` and the snapshot loader share one path.

use aws_config::SdkConfig;
use clap::Args;
use serde_json::{Value, json};

/// How to reach AWS; the standard environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
/// credentials) applies where a flag is not given.
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// A profile from the AWS config files.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// The cluster's region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every AWS call to this endpoint (a VPC endpoint, or a test server). It must be
    /// https://, or http:// to 127.0.0.1, ::1 or localhost only: a plain-HTTP endpoint elsewhere
    /// would carry signed requests and session tokens in clear text.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Attempts per call, throttling included, with exponential backoff.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_attempts: u32,
    /// Reach another account's roles through this profile (ACCOUNT=PROFILE, repeatable): for
    /// roles the cluster uses across accounts. Other accounts use --profile.
    #[arg(long = "account-profile", value_name = "ACCOUNT=PROFILE", value_parser = parse_account_profile)]
    pub account_profiles: Vec<(String, String)>,
}

fn parse_account_profile(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((account, profile))
            if account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !profile.is_empty() =>
        {
            Ok((account.to_string(), profile.to_string()))
        }
        _ => Err(format!(
            "expected ACCOUNT=PROFILE with a 12-digit account id, e.g. 444455556666=prod-admin; got {text:?}"
        )),
    }
}

/// Why AWS could not be read or written. The message names the call.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("AWS {operation} failed: {message}")]
    Call {
        operation: &'static str,
        message: String,
    },
    #[error("cannot start the AWS client runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A plain-HTTP endpoint off this machine: SigV4 headers and session tokens would cross the
    /// network in clear text.
    #[error(
        "{setting} {url}: plain HTTP would send signed requests and session tokens in clear text; use an https:// endpoint (http:// is accepted only for 127.0.0.1, ::1 and localhost, a test server on this machine)"
    )]
    PlainHttp { setting: String, url: String },
}

impl AwsError {
    pub fn call(operation: &'static str, error: impl std::error::Error) -> AwsError {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        AwsError::Call { operation, message }
    }
}

/// One shared runtime and configuration; every client is made from it.
pub struct Aws {
    pub runtime: std::sync::Arc<tokio::runtime::Runtime>,
    pub config: SdkConfig,
    /// The profile named on the command line (`--profile`, `--account-profile`), if any.
    pub profile: Option<String>,
}

/// Who a set of credentials acts as (`sts:GetCallerIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    pub arn: String,
}

/// What `eks:DescribeCluster` says about the cluster's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIdentity {
    pub arn: String,
    pub issuer: Option<String>,
}

/// The default account's access and, by account id, that of `--account-profile` accounts.
pub struct AwsAccounts {
    pub default: Aws,
    pub others: std::collections::BTreeMap<String, Aws>,
}

impl AwsAccounts {
    pub fn connect(args: &AwsArgs) -> Result<AwsAccounts, AwsError> {
        let default = Aws::connect(args)?;
        let mut others = std::collections::BTreeMap::new();
        for (account, profile) in &args.account_profiles {
            let args = AwsArgs {
                profile: Some(profile.clone()),
                ..args.clone()
            };
            others.insert(account.clone(), Aws::load(&args, default.runtime.clone())?);
        }
        Ok(AwsAccounts { default, others })
    }

    /// The access for `account`: its `--account-profile`, or the default. A live run first
    /// checks that the credentials it picks are `account`'s ([`crate::world`]).
    pub fn for_account(&self, account: &str) -> &Aws {
        self.others.get(account).unwrap_or(&self.default)
    }
}

impl Aws {
    pub fn connect(args: &AwsArgs) -> Result<Aws, AwsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(AwsError::Runtime)?;
        Aws::load(args, std::sync::Arc::new(runtime))
    }

    fn load(
        args: &AwsArgs,
        runtime: std::sync::Arc<tokio::runtime::Runtime>,
    ) -> Result<Aws, AwsError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(args.max_attempts.max(1)),
        );
        if let Some(profile) = &args.profile {
            // A profile named on the command line wins over credentials in the environment, as
            // with the AWS CLI: the default chain would take AWS_ACCESS_KEY_ID first, and an
            // --account-profile would silently read the wrong account.
            loader = loader.profile_name(profile).credentials_provider(
                aws_config::profile::ProfileFileCredentialsProvider::builder()
                    .profile_name(profile)
                    .build(),
            );
        }
        if let Some(region) = &args.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &args.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let config = runtime.block_on(loader.load());
        // The endpoint as the SDK resolved it: the flag, AWS_ENDPOINT_URL or the profile's
        // endpoint_url; then the service-specific variables of the services the tool calls.
        let setting = if args.endpoint_url.is_some() {
            "--endpoint-url"
        } else {
            "the configured endpoint URL (AWS_ENDPOINT_URL or the profile's endpoint_url)"
        };
        if let Some(url) = config.endpoint_url() {
            refuse_plain_http(setting, url)?;
        }
        for variable in [
            "AWS_ENDPOINT_URL_IAM",
            "AWS_ENDPOINT_URL_EKS",
            "AWS_ENDPOINT_URL_STS",
        ] {
            if let Ok(url) = std::env::var(variable) {
                refuse_plain_http(variable, &url)?;
            }
        }
        Ok(Aws {
            runtime,
            config,
            profile: args.profile.clone(),
        })
    }

    /// `sts:GetCallerIdentity`: the account these credentials act in. It needs no permission.
    pub fn caller(&self) -> Result<Caller, AwsError> {
        let client = aws_sdk_sts::Client::new(&self.config);
        self.runtime.block_on(async {
            let output = client
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| AwsError::call("sts:GetCallerIdentity", e))?;
            match (output.account(), output.arn()) {
                (Some(account), Some(arn)) => Ok(Caller {
                    account: account.to_string(),
                    arn: arn.to_string(),
                }),
                _ => Err(AwsError::Call {
                    operation: "sts:GetCallerIdentity",
                    message: "the answer names no account".into(),
                }),
            }
        })
    }

    /// `eks:DescribeCluster` of `name` in `region`: its ARN and OIDC issuer, `None` when there
    /// is no such cluster for these credentials there.
    pub fn cluster_identity(
        &self,
        name: &str,
        region: &str,
    ) -> Result<Option<ClusterIdentity>, AwsError> {
        let config = aws_sdk_eks::config::Builder::from(&self.config)
            .region(aws_config::Region::new(region.to_string()))
            .build();
        let client = aws_sdk_eks::Client::from_conf(config);
        self.runtime.block_on(async {
            let output = match client.describe_cluster().name(name).send().await {
                Ok(output) => output,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(AwsError::call("eks:DescribeCluster", e)),
            };
            let cluster = output.cluster();
            Ok(cluster.and_then(|c| c.arn()).map(|arn| ClusterIdentity {
                arn: arn.to_string(),
                issuer: cluster
                    .and_then(|c| c.identity())
                    .and_then(|i| i.oidc())
                    .and_then(|o| o.issuer())
                    .map(str::to_string),
            }))
        })
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

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
            let reads = names
                .iter()
                .map(|name| {
                    let (client, name) = (client.clone(), name.clone());
                    async move { read_role(&client, &name).await }
                })
                .collect();
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

/// One role as a `RoleDetailList` entry; `None` when it does not exist.
async fn read_role(client: &aws_sdk_iam::Client, name: &str) -> Result<Option<Value>, AwsError> {
    let role = match client.get_role().role_name(name).send().await {
        Ok(output) => output.role.ok_or_else(|| AwsError::Call {
            operation: "iam:GetRole",
            message: format!("no role in the answer for {name}"),
        })?,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(AwsError::call("iam:GetRole", e)),
    };
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

/// Refuses a plain-HTTP endpoint unless its host is this machine's loopback.
fn refuse_plain_http(setting: &str, url: &str) -> Result<(), AwsError> {
    let refused = || AwsError::PlainHttp {
        setting: setting.to_string(),
        url: url.to_string(),
    };
    let Ok(uri) = url.parse::<http::Uri>() else {
        // Not a URL the SDK could send to either; it reports that itself.
        return Ok(());
    };
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => Ok(()),
        Some("http") => {
            let host = uri.host().unwrap_or_default().to_ascii_lowercase();
            let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]" | "::1");
            if loopback { Ok(()) } else { Err(refused()) }
        }
        _ => Ok(()),
    }
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
    })
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

#[cfg(test)]
mod tests {
    use super::{AwsError, parse_account_profile, refuse_plain_http};

    /// `--endpoint-url http://…` sent SigV4 headers and session tokens in clear text without a
    /// word (issue 15).
    #[test]
    fn plain_http_endpoints_are_refused_off_this_machine() {
        for url in [
            "https://iam.amazonaws.com",
            "https://vpce-0123.iam.eu-west-1.vpce.amazonaws.com",
            "http://127.0.0.1:5000",
            "http://localhost:4566",
            "HTTP://LOCALHOST:4566",
            "http://[::1]:5000",
        ] {
            assert!(refuse_plain_http("--endpoint-url", url).is_ok(), "{url}");
        }
        for url in [
            "http://10.0.0.5:4566",
            "http://iam.amazonaws.com",
            "http://127.0.0.1.evil.example:80",
            "http://localhost.evil.example",
            "http://[::2]:5000",
        ] {
            let error = refuse_plain_http("--endpoint-url", url).unwrap_err();
            assert!(matches!(error, AwsError::PlainHttp { .. }), "{url}");
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("--endpoint-url {url}: plain HTTP")),
                "{message}"
            );
        }
    }

    #[test]
    fn account_profiles_need_a_twelve_digit_account_and_a_profile() {
        assert_eq!(
            parse_account_profile("444455556666=prod-admin"),
            Ok(("444455556666".into(), "prod-admin".into()))
        );
        for bad in ["4444=prod", "444455556666=", "prod-admin", "44445555666x=p"] {
            let error = parse_account_profile(bad).unwrap_err();
            assert!(error.contains("ACCOUNT=PROFILE"), "{bad}: {error}");
        }
    }
}
