//! The OIDC issuers EKS gives its clusters, partition by partition: every migrated role comes to
//! trust the plan's issuer, so an issuer read from a snapshot must have a shape only AWS can
//! serve, unless the operator says otherwise (`--issuer-any`).
//!
//! EKS serves a cluster's issuer at `https://oidc.eks.<region>.<partition DNS suffix>/id/<ID>`
//! and, since 2024, at the dual-stack `https://oidc-eks.<region>.<dual-stack suffix>/id/<ID>`
//! (EKS user guide, "network requirements": IRSA OIDC issuer URLs). Real ids are 32 hexadecimal
//! characters; test doubles (moto) use shorter alphanumeric ones, so an id is checked as 1 to 64
//! ASCII letters and digits: what matters is that the host is AWS's, in the cluster's own
//! partition and region, and that nothing in the URL is a wildcard or another path.

/// A partition's issuer hosts after `oidc.eks.<region>.` and `oidc-eks.<region>.`, where known.
struct Suffixes {
    partition: &'static str,
    regional: Option<&'static str>,
    dual_stack: Option<&'static str>,
}

const SUFFIXES: &[Suffixes] = &[
    Suffixes {
        partition: "aws",
        regional: Some("amazonaws.com"),
        dual_stack: Some("api.aws"),
    },
    Suffixes {
        partition: "aws-us-gov",
        regional: Some("amazonaws.com"),
        dual_stack: Some("api.aws"),
    },
    Suffixes {
        partition: "aws-cn",
        regional: Some("amazonaws.com.cn"),
        dual_stack: Some("api.amazonwebservices.com.cn"),
    },
    Suffixes {
        partition: "aws-eusc",
        regional: None,
        dual_stack: Some("api.amazonwebservices.eu"),
    },
];

/// Why an issuer is not one EKS gives a cluster of this partition and region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{issuer:?} is not an OIDC issuer EKS gives a cluster in partition {partition}, region {region}: expected {expected}"
)]
pub struct NotEksIssuer {
    pub issuer: String,
    pub partition: String,
    pub region: String,
    /// The accepted forms, in words.
    pub expected: String,
}

/// The issuer hosts EKS uses for a cluster in `partition` and `region`.
fn hosts(partition: &str, region: &str) -> Vec<String> {
    let Some(suffixes) = SUFFIXES.iter().find(|s| s.partition == partition) else {
        return Vec::new();
    };
    let regional = suffixes
        .regional
        .map(|suffix| format!("oidc.eks.{region}.{suffix}"));
    let dual_stack = suffixes
        .dual_stack
        .map(|suffix| format!("oidc-eks.{region}.{suffix}"));
    regional.into_iter().chain(dual_stack).collect()
}

/// Checks that `issuer` is `https://<an EKS issuer host of partition and region>/id/<ID>`.
pub fn check_eks_issuer(issuer: &str, partition: &str, region: &str) -> Result<(), NotEksIssuer> {
    let hosts = if is_region(region) {
        hosts(partition, region)
    } else {
        Vec::new()
    };
    let matches = issuer
        .strip_prefix("https://")
        .and_then(|rest| rest.split_once("/id/"))
        .is_some_and(|(host, id)| hosts.iter().any(|h| h == host) && is_issuer_id(id));
    if matches {
        return Ok(());
    }
    let expected = if hosts.is_empty() {
        format!(
            "this tool knows no EKS issuer host for partition {partition:?} and region {region:?}"
        )
    } else {
        hosts
            .iter()
            .map(|host| format!("https://{host}/id/<ID>"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    Err(NotEksIssuer {
        issuer: issuer.to_string(),
        partition: partition.to_string(),
        region: region.to_string(),
        expected,
    })
}

/// An AWS region name: a DNS label of lowercase letters, digits and inner `-` (`eu-west-1`,
/// `us-gov-west-1`), at most 32 characters.
fn is_region(region: &str) -> bool {
    region.len() <= 32 && crate::names::is_dns1123_label(region)
}

/// An issuer id: 1 to 64 ASCII letters and digits (EKS: 32 hexadecimal characters).
fn is_issuer_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eks_issuers_of_each_partition_pass() {
        for (issuer, partition, region) in [
            (
                "https://oidc.eks.eu-west-1.amazonaws.com/id/5E1D2C8A4F0B9C7D6E3A2B1C0D9E8F7A",
                "aws",
                "eu-west-1",
            ),
            (
                "https://oidc-eks.us-west-2.api.aws/id/5E1D2C8A4F0B9C7D6E3A2B1C0D9E8F7A",
                "aws",
                "us-west-2",
            ),
            (
                "https://oidc.eks.us-gov-west-1.amazonaws.com/id/48EA4C3B972522B4A77C3643EAFE1512",
                "aws-us-gov",
                "us-gov-west-1",
            ),
            (
                "https://oidc.eks.cn-north-1.amazonaws.com.cn/id/EB8440E65FAFC194F7021319931A59AD",
                "aws-cn",
                "cn-north-1",
            ),
            (
                "https://oidc-eks.cn-northwest-1.api.amazonwebservices.com.cn/id/EB8440E65FAFC194F7021319931A59AD",
                "aws-cn",
                "cn-northwest-1",
            ),
            (
                "https://oidc-eks.eusc-de-east-1.api.amazonwebservices.eu/id/EB8440E65FAFC194F7021319931A59AD",
                "aws-eusc",
                "eusc-de-east-1",
            ),
            // moto's: ten letters and digits.
            (
                "https://oidc.eks.eu-west-1.amazonaws.com/id/yKnxXmw7rf",
                "aws",
                "eu-west-1",
            ),
        ] {
            assert_eq!(
                check_eks_issuer(issuer, partition, region),
                Ok(()),
                "{issuer}"
            );
        }
    }

    /// The cases: a host anyone can run, a wildcard, and look-alikes.
    #[test]
    fn issuers_eks_does_not_give_are_refused_naming_the_expected_form() {
        let id = "5E1D2C8A4F0B9C7D6E3A2B1C0D9E8F7A";
        for issuer in [
            "https://evil.example.com".to_string(),
            "https://*".to_string(),
            "https://oidc.eks.eu-west-1.amazonaws.com/id/*".to_string(),
            format!("https://oidc.eks.eu-west-1.amazonaws.com.evil.example/id/{id}"),
            format!("https://oidc.eks.eu-west-1.amazonaws.com:8443/id/{id}"),
            format!("https://oidc.eks.eu-west-1.amazonaws.com/id/{id}/"),
            format!("https://oidc.eks.eu-west-1.amazonaws.com/id/{id}?x=1"),
            format!("https://oidc.eks.eu-west-1.amazonaws.com/id/../{id}"),
            format!("https://oidc.eks.eu-west-1.amazonaws.com/x/id/{id}"),
            format!("http://oidc.eks.eu-west-1.amazonaws.com/id/{id}"),
            format!("https://evil.example.com/oidc.eks.eu-west-1.amazonaws.com/id/{id}"),
            // Another region or partition than the cluster's.
            format!("https://oidc.eks.us-east-1.amazonaws.com/id/{id}"),
            format!("https://oidc.eks.eu-west-1.amazonaws.com.cn/id/{id}"),
            format!(
                "https://oidc.eks.eu-west-1.amazonaws.com/id/{}",
                "A".repeat(65)
            ),
        ] {
            let error = check_eks_issuer(&issuer, "aws", "eu-west-1").unwrap_err();
            assert_eq!(
                error.expected,
                "https://oidc.eks.eu-west-1.amazonaws.com/id/<ID> or https://oidc-eks.eu-west-1.api.aws/id/<ID>",
                "{issuer}"
            );
        }
        // A partition whose issuers the tool does not know, and a region that is no region.
        for (issuer, partition, region) in [
            (
                "https://oidc.eks.us-iso-east-1.c2s.ic.gov",
                "aws-iso",
                "us-iso-east-1",
            ),
            ("https://oidc.eks.*.amazonaws.com", "aws", "*"),
        ] {
            let error =
                check_eks_issuer(&format!("{issuer}/id/{id}"), partition, region).unwrap_err();
            assert!(
                error.to_string().contains("knows no EKS issuer host"),
                "{error}"
            );
        }
    }
}
