//! `irsa-migrate evidence`: what CloudTrail says of each role a plan decommissions
//! ([`crate::evidence`]), read live or from a snapshot; and the window flags decommission shares.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Error, OutputFormat, print, progress};
use crate::evidence::Judgement;
use crate::inventory::trail::Trail;
use crate::progress::Progress;

/// How far back CloudTrail is read, and how long the legacy path must have been unused.
#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    /// How far back to read CloudTrail (at most 90d, all LookupEvents keeps): 12h, 7d, 30d.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = within_lookup)]
    pub since: Duration,
    /// How long the legacy path must have gone unused before a role is ready (at most --since).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = super::duration::parse)]
    pub quiet_for: Duration,
}

/// `GetRole` calls in flight at once for the roles' `RoleLastUsed`.
const ROLE_READS: usize = 8;

/// LookupEvents keeps 90 days of management events.
const LOOKUP_DAYS: u64 = 90;

pub(super) fn within_lookup(text: &str) -> Result<Duration, String> {
    let duration = super::duration::parse(text)?;
    if duration.as_secs() > LOOKUP_DAYS * 86_400 {
        return Err(format!(
            "{text} is longer than the {LOOKUP_DAYS} days CloudTrail's LookupEvents keeps"
        ));
    }
    Ok(duration)
}

impl WindowArgs {
    /// (since, quiet for) in seconds, checked against each other.
    pub fn seconds(&self) -> Result<(i64, i64), Error> {
        let (since, quiet_for) = (self.since.as_secs() as i64, self.quiet_for.as_secs() as i64);
        if quiet_for > since {
            return Err(Error::Usage(format!(
                "--quiet-for {}s is longer than --since {}s: the trail read could not show it",
                quiet_for, since
            )));
        }
        Ok((since, quiet_for))
    }
}

#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// A plan.json written by `irsa-migrate plan`.
    #[arg(long, value_name = "PATH")]
    pub plan: PathBuf,
    /// Judge the `aws cloudtrail lookup-events` outputs of a snapshot (docs/snapshot.md), as of
    /// the end of their readings, instead of reading CloudTrail live.
    #[arg(long, value_name = "DIR")]
    pub snapshot: Option<PathBuf>,
    #[command(flatten)]
    pub window: WindowArgs,
    /// AWS access for the live reading (the cluster account's CloudTrail).
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
    /// Print the verdicts as text, or as one JSON document.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

pub fn run(args: &EvidenceArgs) -> Result<(), Error> {
    let plan = super::plan::read_plan(&args.plan)?;
    let (since, quiet_for) = args.window.seconds()?;
    let regions = crate::evidence::regions(&plan.cluster.region);
    // The pods kube2iam's sessions name: the snapshot's, or else those the plan was made from.
    let planned = args.plan.parent().map(|dir| dir.join("snapshot"));
    let pods_from = args.snapshot.clone().or(planned.filter(|dir| dir.is_dir()));
    let inventory = match &pods_from {
        Some(dir) => {
            let bar = progress::Bar::new("reading snapshot {bar:30} {pos}/{len} files");
            let inventory = crate::inventory::snapshot::load_dir(dir, &bar);
            bar.finish();
            inventory?
        }
        None => Default::default(),
    };
    let pods = crate::evidence::Pods::of(&inventory.pods);
    let (trail, as_of) = match &args.snapshot {
        Some(_) => {
            let as_of = inventory
                .trail
                .reached(&regions)
                .unwrap_or_else(crate::time::now);
            (inventory.trail, as_of)
        }
        None => {
            // The cluster account's credentials read its roles; another account's need its own.
            let mut roles = crate::evidence::decommissioned_roles(&plan);
            roles.retain(|r| r.account() == plan.cluster.account);
            read_live(&args.aws, &regions, since, &roles)?
        }
    };
    let evidence = crate::evidence::assess(
        &plan,
        &trail,
        Judgement {
            as_of,
            since,
            quiet_for,
        },
        &pods,
    );
    match args.output {
        OutputFormat::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&evidence).map_err(|e| Error::Usage(e.to_string()))?
        )),
        OutputFormat::Text => print(&crate::render::evidence::text(&plan.name, &evidence)),
    }
}

/// The cluster account's CloudTrail of `regions` over the last `since` seconds, and the
/// `RoleLastUsed` of `roles` (of that account), read now; also what `snapshot
/// --cloudtrail-since` writes (its IAM reading holds the roles' `RoleLastUsed`).
pub(super) fn read_live(
    aws: &crate::aws::AwsArgs,
    regions: &[String],
    since: i64,
    roles: &[crate::iam::arn::RoleArn],
) -> Result<(Trail, i64), Error> {
    let aws = crate::aws::Aws::connect(aws)?;
    let as_of = crate::time::now();
    let bar = progress::Bar::new("reading CloudTrail {msg} {pos} pages");
    let mut trail = aws.trail(regions, as_of - since, as_of, &|region| {
        bar.set_stage(region);
        bar.advance(1);
    })?;
    bar.finish();
    let names: Vec<String> = roles.iter().map(|r| r.name().to_string()).collect();
    trail
        .last_used
        .extend(aws.roles_last_used(&names, ROLE_READS)?);
    Ok((trail, as_of))
}
