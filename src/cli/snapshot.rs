//! `irsa-migrate snapshot`: the AWS side of a snapshot, read live.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Error, print};
use crate::aws::{Aws, AwsArgs};

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The snapshot directory to write into (created if missing; existing files are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The EKS cluster to describe (its OIDC issuer, account, version).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> Result<PathBuf, Error> {
    let path = dir.join(name);
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Output(e.into()))?;
    text.push('\n');
    std::fs::write(&path, text).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

pub fn run(args: &SnapshotArgs) -> Result<(), Error> {
    std::fs::create_dir_all(&args.out).map_err(|source| Error::Write {
        path: args.out.clone(),
        source,
    })?;
    let aws = Aws::connect(&args.aws)?;
    let mut written = vec![
        write_json(
            &args.out,
            "aws-iam-authorization-details.json",
            &aws.authorization_details()?,
        )?,
        write_json(
            &args.out,
            "aws-iam-oidc-providers.json",
            &aws.oidc_providers()?,
        )?,
    ];
    if let Some(cluster) = &args.cluster {
        written.push(write_json(
            &args.out,
            "aws-eks-describe-cluster.json",
            &aws.describe_cluster(cluster)?,
        )?);
    }
    let mut text: String = written
        .iter()
        .map(|p| format!("wrote {}\n", p.display()))
        .collect();
    text.push_str("Kubernetes objects: add them with kubectl (docs/snapshot.md); reading them live is not in this version.\n");
    print(&text)
}
