//! Who the credentials act as (`sts:GetCallerIdentity`) and what EKS says of the plan's cluster
//! (`eks:DescribeCluster`): what [`crate::world`] compares with the plan before a live run writes.

use super::error::found;
use super::{Aws, AwsError};

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

impl Aws {
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
                _ => Err(AwsError::Answer {
                    operation: "sts:GetCallerIdentity",
                    missing: "an account".into(),
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
            let described = client.describe_cluster().name(name).send().await;
            let Some(output) = found("eks:DescribeCluster", described)? else {
                return Ok(None);
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
}
