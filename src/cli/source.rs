//! Where a command's cluster state comes from (`--snapshot`, `--demo`, or the live cluster and
//! its AWS accounts), and reading it with a progress bar on stderr.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use clap::builder::PossibleValue;

use super::{Error, progress};
use crate::collect::{self, Collected, IamRead};
use crate::inventory::{Inventory, demo};
use crate::progress::Progress;

/// Where the cluster's state comes from: a snapshot directory, the embedded demo, or (neither
/// given) the live cluster and its AWS accounts.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Read a snapshot directory: every .json/.yaml/.yml file under it, recognised by content
    /// (`kubectl get … -o json|yaml`, `aws iam get-account-authorization-details`,
    /// `aws iam list-open-id-connect-providers`, `aws eks describe-cluster`).
    #[arg(long, value_name = "DIR", conflicts_with = "demo")]
    pub snapshot: Option<PathBuf>,
    /// Use the embedded demo cluster instead of a real one.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// How to reach a live cluster and its AWS accounts.
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    #[command(flatten)]
    pub kube: crate::kubernetes::KubeArgs,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
    /// The EKS cluster's name: its OIDC issuer comes from eks:DescribeCluster. Default: the
    /// cluster of an EKS kubeconfig context (named by its ARN). Without it the plan cannot write
    /// trust statements.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Which IAM roles to read: those the cluster references, role by role (needs `aws-auth`;
    /// otherwise the whole account is read), or every role of the account in one listing.
    #[arg(long, value_enum, value_name = "WHICH", default_value_t)]
    pub iam_read: IamRead,
}

/// `--iam-read`'s values: the collector's choice, named and explained for the command line.
impl clap::ValueEnum for IamRead {
    fn value_variants<'a>() -> &'a [Self] {
        &[IamRead::Referenced, IamRead::Account]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            IamRead::Referenced => PossibleValue::new("referenced").help(
                "The roles the cluster references (pod and service-account annotations, node roles from `aws-auth`, the kiam server role), role by role: least privilege, fewest bytes",
            ),
            IamRead::Account => PossibleValue::new("account").help(
                "Every role of the account (`GetAccountAuthorizationDetails`): also finds node roles by their policies when `aws-auth` is missing",
            ),
        })
    }
}

impl LiveArgs {
    /// Reads the live cluster and AWS, with a progress bar on stderr. Without `--cluster`, an EKS
    /// context (named by the cluster's ARN, as `aws eks update-kubeconfig` names it) gives the
    /// cluster's name, and its region unless one is set.
    pub fn collect(&self) -> Result<(Inventory, Collected), Error> {
        let kube = crate::kubernetes::Kube::connect(&self.kube)?;
        let mut aws_args = self.aws.clone();
        let mut cluster = self.cluster.clone();
        if cluster.is_none()
            && let Some((region, name)) = self.kube.eks_cluster()
        {
            let region_set = aws_args.region.is_some()
                || std::env::var_os("AWS_REGION").is_some()
                || std::env::var_os("AWS_DEFAULT_REGION").is_some();
            if !region_set {
                aws_args.region = Some(region);
            }
            cluster = Some(name);
        }
        let aws = crate::aws::AwsAccounts::connect(&aws_args)?;
        let bar = progress::Bar::new("reading {msg:<16} {pos} pages");
        let read = Arc::new(bar.clone());
        let result = collect::live(&kube, &aws, cluster.as_deref(), self.iam_read, read);
        bar.finish();
        Ok(result?)
    }
}

/// Refuses an inventory that lacks what the API server refused to show, unless allowed.
pub(crate) fn require_complete(inventory: &Inventory, allow_incomplete: bool) -> Result<(), Error> {
    if allow_incomplete || inventory.unreadable.is_empty() {
        return Ok(());
    }
    Err(Error::Incomplete(
        inventory.unreadable.iter().map(|u| u.to_string()).collect(),
    ))
}

impl SourceArgs {
    /// Collects the inventory; progress goes to stderr and only draws on a terminal.
    pub fn load(&self) -> Result<Inventory, Error> {
        if self.demo {
            return Ok(demo::inventory()?);
        }
        let Some(dir) = &self.snapshot else {
            return Ok(self.live.collect()?.0);
        };
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "--snapshot {}: not a directory",
                dir.display()
            )));
        }
        let bar = progress::Bar::new("reading snapshot {bar:30} {pos}/{len} files");
        let inventory = crate::inventory::snapshot::load_dir(dir, &bar);
        bar.finish();
        Ok(inventory?)
    }
}
