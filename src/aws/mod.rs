//! AWS access: how to reach it (`AwsArgs`: profile, region, endpoint, `--account-profile`),
//! the shared runtime and SDK configuration of each account (`Aws`, `AwsAccounts`), and the
//! refusal of plain-HTTP endpoints off this machine.
//!
//! The rest has rooms of its own: `reads` (the cluster and IAM, written as the JSON the
//! AWS CLI prints, so live reads, `snapshot --out` and the snapshot loader share one path),
//! `identity` (who the credentials are, which cluster the plan names, for [`crate::world`]),
//! `trail` (CloudTrail's role assumptions, the evidence before decommission),
//! `error` (why a call failed).

mod error;
mod identity;
mod reads;
mod trail;

pub use error::{AwsError, found};
pub use identity::{Caller, ClusterIdentity};

use aws_config::SdkConfig;
use clap::Args;

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

/// One shared runtime and configuration; every client is made from it.
pub struct Aws {
    pub runtime: std::sync::Arc<tokio::runtime::Runtime>,
    pub config: SdkConfig,
    /// The profile named on the command line (`--profile`, `--account-profile`), if any.
    pub profile: Option<String>,
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

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }
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
