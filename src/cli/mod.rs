//! The command line: clap definitions, one module per subcommand, and the exit-code contract.

mod apply;
mod plan;
mod scan;
mod snapshot;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::apply::ApplyError;
use crate::inventory::live::{self, CollectError, Collected};
use crate::inventory::snapshot::InventoryError;
use crate::inventory::{Inventory, demo};

/// Move EKS workloads from kiam or kube2iam to IAM Roles for Service Accounts (IRSA), safely.
///
/// Start with `irsa-migrate demo` to see a whole migration on a built-in example cluster, then
/// `irsa-migrate scan --cluster NAME` on your own (the current kubeconfig context and AWS
/// credentials), or `irsa-migrate snapshot --out DIR` to read it once and work offline.
#[derive(Debug, Parser)]
#[command(name = "irsa-migrate", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find every workload that gets AWS credentials through kiam/kube2iam or IRSA, and every
    /// node-role permission and trust relationship that exists only for the legacy path.
    #[command(after_help = EXIT_CODES_HELP)]
    Scan(scan::ScanArgs),
    /// Compute the IRSA end state and the phased, reversible steps to reach it; write
    /// <dir>/<name>/plan.json and report.md, and print a summary and every change as a diff.
    #[command(after_help = EXIT_CODES_HELP)]
    Plan(plan::PlanArgs),
    /// Show a written plan's steps as diffs of before and after.
    Diff(plan::DiffArgs),
    /// Apply a phase of a plan: read each target, write only where it is still as planned,
    /// journal every change. WARNING: without --rehearse this changes the cluster and IAM.
    #[command(after_help = EXIT_CODES_HELP)]
    Apply(apply::ApplyArgs),
    /// Show each step's state (pending, applied, failed, rolled back) from the journal.
    Status(apply::StatusArgs),
    /// Undo applied steps from the journal, last first, restoring exactly what was there, and
    /// only where the target is still as the step left it.
    #[command(after_help = EXIT_CODES_HELP)]
    Rollback(apply::RollbackArgs),
    /// Read the live cluster (Kubernetes objects through the kubeconfig, EKS and IAM through the
    /// AWS credentials) once and write it as a snapshot directory, to review, share and plan
    /// offline (docs/snapshot.md, docs/permissions.md).
    Snapshot(snapshot::SnapshotArgs),
    /// Scan and plan the embedded demo cluster (a kiam cluster with every kind of case) and write
    /// migrations/demo/: the quickest way to see what the tool does.
    Demo(scan::DemoArgs),
}

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
    pub iam_read: live::IamRead,
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
        let progress = reading_progress("reading {msg:<16} {pos} pages");
        let result = live::collect(&kube, &aws, cluster.as_deref(), self.iam_read, &progress);
        progress.finish_and_clear();
        Ok(result?)
    }
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
        let progress = reading_progress("reading snapshot {bar:30} {pos}/{len} files");
        let inventory = crate::inventory::snapshot::load_dir(dir, &progress);
        progress.finish_and_clear();
        Ok(inventory?)
    }
}

/// A progress bar on stderr (drawn only on a terminal) for reading a cluster or a snapshot.
fn reading_progress(template: &str) -> indicatif::ProgressBar {
    let progress =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    progress.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    progress
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable summary.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// The exit codes, a documented contract (README.md, `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Success = 0,
    /// Findings at or above `--fail-on` were reported.
    FindingsBlock = 1,
    /// Bad flags or bad input (a snapshot file that cannot be read or parsed).
    UsageOrInput = 2,
    /// The tool refused to act (stale plan, stale state, no confirmation).
    Refused = 3,
    /// A run stopped after changing part of what it set out to change.
    PartiallyApplied = 4,
    /// A target was found neither as planned nor as the step leaves it; the run stopped.
    StaleState = 5,
    /// Writing output failed, or a bug.
    Internal = 70,
}

const EXIT_CODES_HELP: &str = "Exit codes: 0 success; 1 findings at or above --fail-on; 2 bad usage or input; \
3 refused (modified plan, phase out of order, no confirmation); 4 a step failed part-way (run again to resume); \
5 stale state (a target changed since planning); 70 internal error.";

/// Errors the binary maps to exit codes. Lower layers have their own enums, kept as sources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("{0}")]
    Usage(String),
    #[error("{count} finding(s) at or above --fail-on {threshold}")]
    FindingsBlock {
        count: usize,
        threshold: crate::findings::Severity,
    },
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    #[error(transparent)]
    Kube(#[from] crate::kubernetes::KubeError),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Inventory(_)
            | Error::Usage(_)
            | Error::Plan(_)
            | Error::Aws(_)
            | Error::Kube(_) => ExitCode::UsageOrInput,
            Error::FindingsBlock { .. } => ExitCode::FindingsBlock,
            Error::Apply(error) => match error {
                ApplyError::PlanModified { .. }
                | ApplyError::UnknownStep(_)
                | ApplyError::PhaseOrder(_)
                | ApplyError::NamespaceWithDecommission
                | ApplyError::JournalExists { .. }
                | ApplyError::Unsupported { .. }
                | ApplyError::NotConfirmed
                | ApplyError::Locked { .. } => ExitCode::Refused,
                ApplyError::LockFailed { .. } | ApplyError::UnknownNamespace { .. } => {
                    ExitCode::UsageOrInput
                }
                ApplyError::Stale { .. } => ExitCode::StaleState,
                ApplyError::Backend { .. }
                | ApplyError::RolloutFailed { .. }
                | ApplyError::Journal(_) => ExitCode::PartiallyApplied,
            },
            Error::Output(_) | Error::Write { .. } => ExitCode::Internal,
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly, as other CLIs do.
pub(crate) fn print(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Output),
    }
}

impl From<CollectError> for Error {
    fn from(error: CollectError) -> Error {
        match error {
            CollectError::Kube(e) => Error::Kube(e),
            CollectError::Aws(e) => Error::Aws(e),
            CollectError::Inventory(e) => Error::Inventory(e),
        }
    }
}

pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Scan(args) => scan::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Diff(args) => plan::diff(&args),
        Command::Apply(args) => apply::run_apply(&args),
        Command::Status(args) => apply::run_status(&args),
        Command::Rollback(args) => apply::run_rollback(&args),
        Command::Snapshot(args) => snapshot::run(&args),
        Command::Demo(args) => scan::demo(&args),
    }
}

/// The binary's whole `main`: parse, run, report, exit.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::from(ExitCode::Success as u8),
        Err(error) => {
            let mut message = format!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!("\n  caused by: {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            std::process::ExitCode::from(error.exit_code() as u8)
        }
    }
}
