//! `irsa-migrate snapshot`: read the live cluster and its AWS side once, and write them as a
//! snapshot directory that `scan`, `plan` and rehearsals read offline.

use std::path::PathBuf;

use clap::Args;

use super::{Error, LiveArgs, print};
use crate::inventory::snapshot::Layout;

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The snapshot directory to write: created if missing, or an empty directory. A directory
    /// holding anything (a snapshot, a working directory) is refused and left as it is.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub live: LiveArgs,
    /// Write the snapshot even when the cluster refused some reads (403); a plan of it then
    /// misses what could not be read.
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Also read CloudTrail's role assumptions over this long (7d; at most 90d), in the
    /// cluster's region and us-east-1, into cloudtrail/: the evidence `evidence --snapshot` and
    /// a rehearsed decommission judge by (needs cloudtrail:LookupEvents).
    #[arg(long, value_name = "DURATION", value_parser = super::evidence::within_lookup)]
    pub cloudtrail_since: Option<std::time::Duration>,
}

pub fn run(args: &SnapshotArgs) -> Result<(), Error> {
    // Checked before the cluster is read; `write_dir` checks again and never removes what it
    // did not write.
    super::require_new_dir("--out", &args.out)?;
    let (mut inventory, collected) = args.live.collect()?;
    super::require_complete(&inventory, args.allow_incomplete)?;
    if let Some(since) = args.cloudtrail_since {
        let region = inventory.cluster.as_ref().map(|c| c.region.clone());
        let Some(region) = region else {
            return Err(Error::Usage(
                "--cloudtrail-since needs the cluster's region: pass --cluster NAME".into(),
            ));
        };
        let regions = crate::evidence::regions(&region);
        let (mut trail, _) =
            super::evidence::read_live(&args.live.aws, &regions, since.as_secs() as i64, &[])?;
        // The IAM reading's RoleLastUsed stays.
        trail.last_used.append(&mut inventory.trail.last_used);
        inventory.trail = trail;
    }
    crate::inventory::snapshot::write_dir(&inventory, &args.out, Layout::PerNamespace)?;
    let pods = inventory.pods.len();
    let roles = match collected.roles_requested {
        0 => format!("{} IAM roles", inventory.iam.roles.len()),
        requested => format!(
            "{} IAM roles (of {requested} referenced, read by name)",
            inventory.iam.roles.len()
        ),
    };
    print(&format!(
        "wrote {}: {} namespaces, {pods} pods, {} workloads, {} service accounts ({} list pages, {} Kubernetes API calls); {roles} in {} account(s){}{}\nNext: irsa-migrate scan --snapshot {}\n",
        args.out.display(),
        inventory.namespaces.len(),
        inventory.workloads.len(),
        inventory.service_accounts.len(),
        collected.pages,
        collected.kube_calls,
        inventory.iam.accounts.len(),
        match &inventory.cluster {
            Some(cluster) => format!("; cluster {}", cluster.name),
            None => "; no cluster description (pass --cluster NAME for the OIDC issuer)".into(),
        },
        match args.cloudtrail_since {
            Some(_) => format!(
                "; {} CloudTrail role assumption(s)",
                inventory.trail.events.len()
            ),
            None => String::new(),
        },
        args.out.display()
    ))
}
