//! Amazon Resource Names, as far as roles and OIDC providers need them.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The ARN of the IAM OIDC provider of `issuer_host_path` (the issuer without `https://`) in an
/// account: the `Federated` principal a web-identity statement trusts.
pub fn oidc_provider_arn(partition: &str, account: &str, issuer_host_path: &str) -> String {
    format!("arn:{partition}:iam::{account}:oidc-provider/{issuer_host_path}")
}

/// A parsed ARN: `arn:<partition>:<service>:<region>:<account>:<resource>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

/// Why a string is not a usable ARN; the message is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    /// Not six colon-separated parts starting with `arn`, or a part that must not be empty is.
    #[error(
        "'{0}' is not an ARN: expected arn:<partition>:<service>:<region>:<account>:<resource>"
    )]
    Malformed(String),
    /// An ARN, but not of an IAM role in an account (another service, or no 12-digit account).
    #[error(
        "'{0}' is not an IAM role ARN: expected arn:<partition>:iam::<12-digit account>:role/[path/]<name>"
    )]
    NotARole(String),
}

impl Arn {
    pub fn parse(text: &str) -> Result<Arn, ArnError> {
        let mut parts = text.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(ArnError::Malformed(text.to_string()));
        };
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return Err(ArnError::Malformed(text.to_string()));
        }
        Ok(Arn {
            partition: partition.to_string(),
            service: service.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            resource: resource.to_string(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// An IAM role ARN, checked: partition, 12-digit account, `role/` resource with a non-empty name.
///
/// It keeps the text it was parsed from, first, so that it orders, compares and prints exactly as
/// that string: maps keyed by role keep the order they had when keyed by the ARN text (and can be
/// looked up with one), and scan and plan JSON, which carry it as a string, do not change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleArn {
    text: String,
    arn: Arn,
}

impl RoleArn {
    pub fn parse(text: &str) -> Result<RoleArn, ArnError> {
        let arn = Arn::parse(text)?;
        let not_a_role = || ArnError::NotARole(text.to_string());
        if !is_known_partition(&arn.partition)
            || arn.service != "iam"
            || !arn.region.is_empty()
            || !is_account_id(&arn.account)
        {
            return Err(not_a_role());
        }
        let path_and_name = arn.resource.strip_prefix("role/").ok_or_else(not_a_role)?;
        let name = path_and_name.rsplit('/').next().unwrap_or_default();
        let valid_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
        if name.is_empty() || name.len() > 64 || !name.chars().all(valid_char) {
            return Err(not_a_role());
        }
        if path_and_name.starts_with('/') || path_and_name.contains("//") {
            return Err(not_a_role());
        }
        // IAM paths are printable ASCII (U+0021 to U+007E): no space, newline or escape.
        if !path_and_name.bytes().all(|b| b.is_ascii_graphic()) || path_and_name.len() > 512 + 64 {
            return Err(not_a_role());
        }
        Ok(RoleArn {
            text: text.to_string(),
            arn,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn account(&self) -> &str {
        &self.arn.account
    }

    pub fn partition(&self) -> &str {
        &self.arn.partition
    }

    /// The role name without its path.
    pub fn name(&self) -> &str {
        self.arn.resource.rsplit('/').next().unwrap_or_default()
    }

    /// The path, `/` when there is none, with leading and trailing slashes as IAM prints it.
    pub fn path(&self) -> String {
        let path_and_name = &self.arn.resource["role/".len()..];
        match path_and_name.rsplit_once('/') {
            Some((path, _)) => format!("/{path}/"),
            None => "/".to_string(),
        }
    }

    pub fn as_arn(&self) -> &Arn {
        &self.arn
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// By the text alone, as `Borrow<str>` requires; the parsed parts follow from it.
impl Hash for RoleArn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl Borrow<str> for RoleArn {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl Serialize for RoleArn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Deserializing parses, so a plan file with a bad ARN fails at the field that holds it.
impl<'de> Deserialize<'de> for RoleArn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        RoleArn::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The AWS partitions: an ARN in any other is refused, so a partition cannot carry text that
/// hides in a report or a terminal.
pub const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

pub fn is_known_partition(partition: &str) -> bool {
    PARTITIONS.contains(&partition)
}

pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_parts() {
        let arn = RoleArn::parse("arn:aws:iam::111122223333:role/teams/payments/api").unwrap();
        assert_eq!(arn.account(), "111122223333");
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.name(), "api");
        assert_eq!(arn.path(), "/teams/payments/");
        let plain = RoleArn::parse("arn:aws-cn:iam::111122223333:role/api").unwrap();
        assert_eq!(plain.path(), "/");
        assert_eq!(plain.partition(), "aws-cn");
    }

    #[test]
    fn role_arn_rejects_what_iam_rejects() {
        for bad in [
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role//api",
            "arn:aws:iam::111122223333:role/team//api",
            "arn:aws:iam::1111:role/api",
            "arn:aws:iam::111122223333:user/api",
            "arn:aws:s3:::bucket",
            "arn:aws:iam:eu-west-1:111122223333:role/api",
            "arn:aws:iam::111122223333:role/has space",
            "not-an-arn",
            "arn:aws:iam",
            "arn:aws\u{1b}[8m:iam::111122223333:role/api",
            "arn:evil:iam::111122223333:role/api",
            "arn:aws:iam::111122223333:role/a\nb/api",
            "arn:aws:iam::111122223333:role/a\u{1b}[2K/api",
        ] {
            assert!(RoleArn::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn role_arn_is_its_string_in_json() {
        let text = "\"arn:aws:iam::111122223333:role/teams/api\"";
        let arn: RoleArn = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&arn).unwrap(), text);
        let bad = serde_json::from_str::<RoleArn>("\"arn:aws:s3:::bucket\"").unwrap_err();
        assert!(bad.to_string().contains("not an IAM role ARN"), "{bad}");
    }
}
