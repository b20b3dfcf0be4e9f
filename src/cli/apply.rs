//! `irsa-migrate apply`, `status` and `rollback`.
//!
//! This file runs apply and rollback; `status` shows the journal, `confirm` asks before a run
//! writes, `provenance` checks that a plan is the one its snapshot gives.

mod confirm;
mod provenance;
mod status;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{Error, print};
use crate::apply::journal::Journal;
use crate::apply::{self, Direction, Mode, RunOptions, Selection};
use crate::backend::Backend;
use crate::backend::live::Live;
use crate::backend::rehearsal::Rehearsal;
use crate::plan::{Phase, Plan};
use crate::world;
use confirm::{confirmation_text, confirmer};
use provenance::verify_plan;
pub use status::{StatusArgs, run_status};

/// A phase, or all of them in order: the phases' names and help are [`Phase`]'s own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseChoice {
    One(Phase),
    All,
}

impl PhaseChoice {
    fn phases(self) -> Vec<Phase> {
        match self {
            PhaseChoice::One(phase) => vec![phase],
            PhaseChoice::All => Vec::new(),
        }
    }
}

impl ValueEnum for PhaseChoice {
    fn value_variants<'a>() -> &'a [Self] {
        static CHOICES: std::sync::LazyLock<Vec<PhaseChoice>> = std::sync::LazyLock::new(|| {
            Phase::ALL
                .into_iter()
                .map(PhaseChoice::One)
                .chain([PhaseChoice::All])
                .collect()
        });
        &CHOICES
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            PhaseChoice::One(phase) => phase.to_possible_value(),
            PhaseChoice::All => {
                Some(clap::builder::PossibleValue::new("all").help("Every phase, in order"))
            }
        }
    }
}

/// The plan and where its state (the journal) lives.
#[derive(Debug, Args)]
pub struct Migration {
    /// The plan.json written by `irsa-migrate plan`; its directory holds the journal.
    #[arg(long, value_name = "PATH")]
    pub plan: PathBuf,
    /// Work on the rehearsal copy of the plan's snapshot (<dir>/rehearsal/) instead of the live
    /// cluster: the same engine, offline. `scan --snapshot <dir>/rehearsal` shows the result.
    #[arg(long)]
    pub rehearse: bool,
}

/// A migration and how to reach what it changes.
#[derive(Debug, Args)]
pub struct Target {
    #[command(flatten)]
    pub migration: Migration,
    /// AWS access for live runs (IAM steps: prepare and decommission).
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
    /// Cluster access for live runs (Kubernetes steps: identity, rollout, cleanup).
    #[command(flatten)]
    pub kube: crate::kubernetes::KubeArgs,
    /// IAM targets read, and IAM steps written, this many at a time in live runs; 1 runs them
    /// one at a time.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub target: Target,
    /// The phase to apply; phases run in order (prepare, identity, rollout, cleanup, decommission).
    #[arg(long, value_enum)]
    pub phase: PhaseChoice,
    /// Only steps of this namespace (repeatable): its service accounts and workloads, the
    /// prepare steps of roles bound there, and cluster RBAC bindings copied for its service
    /// accounts. A namespace the plan does not have is an error.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// With --namespace: also run the phase's cluster-wide steps, which belong to no namespace
    /// (prepare's OIDC provider). Without it they are left out, and later phases wait for them.
    #[arg(long, requires = "namespaces")]
    pub include_cluster_wide: bool,
    /// Workloads per wave of the phases that restart pods (rollout, cleanup). On a live cluster
    /// each wave is patched, then watched until its new pods are ready and carry the role's
    /// credentials, before the next one starts.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub wave_size: u32,
    /// Seconds a wave may take to roll out before it counts as failed (at least 1).
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub rollout_timeout: u64,
    /// Leave a failed wave as it is instead of rolling it back (to inspect it; roll back later
    /// with `rollback --phase rollout` or `--phase cleanup`).
    #[arg(long)]
    pub no_auto_rollback: bool,
    #[command(flatten)]
    pub owners: OwnerArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    /// Read every target and print what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Accept a plan whose OIDC issuer is not of a form EKS gives
    /// (`https://oidc.eks.<region>.amazonaws.com/id/<ID>`, its China, GovCloud and dual-stack
    /// forms). The live cluster's issuer must still be the plan's.
    #[arg(long)]
    pub issuer_any: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: Target,
    /// The phase to roll back (later phases must be rolled back first).
    #[arg(
        long,
        value_enum,
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub phase: Option<PhaseChoice>,
    /// Roll back every applied step, last first.
    #[arg(long)]
    pub all: bool,
    /// Only steps of this namespace (repeatable), as for apply. A namespace the plan does not
    /// have is an error.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// With --namespace: also roll back the phase's cluster-wide steps (prepare's OIDC
    /// provider), which a namespace filter leaves in place otherwise.
    #[arg(long, requires = "namespaces")]
    pub include_cluster_wide: bool,
    #[command(flatten)]
    pub owners: OwnerArgs,
    /// Read every target and print what would be rolled back; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short)]
    pub yes: bool,
}

/// What apply and rollback do with steps whose targets have owners (a Helm release, Argo CD, Flux,
/// a server-side-apply pipeline, eksctl or infrastructure code), which would put back at their
/// next sync a change they did not make.
#[derive(Debug, Args)]
pub struct OwnerArgs {
    /// How long to wait, at the end of each phase, for owners to make the steps that are theirs
    /// (30s, 10m, 1h; targets read every 5 s). By default the run reads them once, and stops
    /// with exit 3 listing what each owner has still to merge; run it again once they have.
    #[arg(long, value_name = "DURATION", value_parser = super::duration::parse, conflicts_with_all = ["patch_owned", "as_owner"])]
    pub wait_for_owners: Option<std::time::Duration>,
    /// Write owned steps live like any other. WARNING: their owners will revert them at their
    /// next sync (a Helm upgrade, an Argo CD or Flux reconcile, the next `terraform apply`).
    #[arg(long, conflicts_with = "as_owner")]
    pub patch_owned: bool,
    /// With --rehearse: play the owners' part, making their steps as they would merge them, so
    /// that the whole flow rehearses offline. Journaled as done by their owners.
    #[arg(long, requires = "rehearse")]
    pub as_owner: bool,
}

/// What decommission asks of CloudTrail before it removes anything legacy (`irsa-migrate
/// evidence` shows the same verdicts).
#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// Decommission: how far back CloudTrail is read, and how long the legacy path must have gone
    /// unused (a live run reads the cluster account's CloudTrail in its region and us-east-1; a
    /// rehearsal, the lookup-events of its snapshot).
    #[command(flatten)]
    pub window: super::evidence::WindowArgs,
    /// Decommission on the plan alone, without CloudTrail's evidence that the legacy path is
    /// unused. WARNING: a workload the snapshot missed, or one whose SDK fell back to the legacy
    /// path, loses its credentials. Journaled.
    #[arg(long)]
    pub without_evidence: bool,
}

impl EvidenceArgs {
    fn gate(&self) -> Result<apply::EvidenceGate, Error> {
        if self.without_evidence {
            return Ok(apply::EvidenceGate::Waived);
        }
        let (since, quiet_for) = self.window.seconds()?;
        Ok(apply::EvidenceGate::Required { since, quiet_for })
    }
}

impl OwnerArgs {
    fn owners(&self) -> apply::Owners {
        if self.patch_owned {
            apply::Owners::Patch
        } else if self.as_owner {
            apply::Owners::Play
        } else {
            apply::Owners::Await(self.wait_for_owners.unwrap_or_default())
        }
    }
}

struct Loaded {
    plan: Plan,
    /// [`Plan::digest`]: what a journal started by this version records.
    digest: String,
    /// The SHA-256 of the file's bytes, which journals started by earlier versions record.
    byte_checksum: String,
    dir: PathBuf,
}

impl Loaded {
    /// The plan's identity as `journal` knows it: the content digest, or the byte checksum for a
    /// journal an earlier version started (so its migration can go on, and be rolled back).
    fn checksum_for(&self, journal: &Journal) -> &str {
        match journal.plan_checksum() {
            Some(recorded) if recorded == self.byte_checksum => &self.byte_checksum,
            _ => &self.digest,
        }
    }
}

fn load(migration: &Migration) -> Result<Loaded, Error> {
    let bytes = std::fs::read(&migration.plan).map_err(|e| {
        Error::Usage(format!(
            "cannot read plan {}: {e}",
            migration.plan.display()
        ))
    })?;
    let plan = super::plan::parse_plan(&migration.plan)?;
    Ok(Loaded {
        digest: plan.digest(),
        plan,
        byte_checksum: apply::checksum(&bytes),
        dir: migration_dir(migration),
    })
}

/// The migration directory: the plan's.
fn migration_dir(migration: &Migration) -> PathBuf {
    migration
        .plan
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn journal_path(loaded: &Loaded, migration: &Migration) -> PathBuf {
    if migration.rehearse {
        loaded.dir.join("rehearsal").join("journal.jsonl")
    } else {
        loaded.dir.join("journal.jsonl")
    }
}

/// Live: IAM through the AWS SDK, Kubernetes through the kubeconfig (connected on first use:
/// decommission and rollbacks of IAM steps need no cluster access).
fn live_backend(target: &Target) -> Result<Live, Error> {
    let aws = crate::aws::AwsAccounts::connect(&target.aws)?;
    Ok(Live {
        iam: crate::backend::live_iam::LiveIam::new(aws, target.concurrency as usize),
        kube: crate::backend::live_kube::LiveKube::new(target.kube.clone()),
    })
}

/// Whether an apply run over `steps` checks the plan's bindings on the live cluster: every phase
/// but decommission acts on them (prepare's trust statements name their service accounts).
fn checks_bindings(options: &RunOptions, steps: &[&crate::plan::Step]) -> bool {
    options.direction == Direction::Apply && steps.iter().any(|s| s.phase != Phase::Decommission)
}

/// The checks of a live run against the world before its first write ([`crate::world`]): the
/// accounts and, for apply, the cluster (runs with IAM steps); for apply, the bindings on the
/// live cluster. Returns the lines to print.
fn check_world(
    plan: &Plan,
    steps: &[&crate::plan::Step],
    options: &RunOptions,
    live: &mut Live,
) -> Result<Vec<String>, Error> {
    let mut lines = world::check_aws(plan, steps, options.direction, live.iam.accounts())?;
    if checks_bindings(options, steps) {
        let kube = live.kube.connected()?;
        lines.extend(world::check_kubernetes(plan, &options.selection, kube)?);
    }
    Ok(lines)
}

fn rehearsal_backend(loaded: &Loaded) -> Result<Box<dyn Backend>, Error> {
    let snapshot = loaded.dir.join("snapshot");
    if !snapshot.is_dir() {
        return Err(Error::Usage(format!(
            "{} is missing: it is written by `irsa-migrate plan` next to plan.json; re-plan",
            snapshot.display()
        )));
    }
    let rehearsal = Rehearsal::open(&loaded.dir.join("rehearsal"), &snapshot)
        .map_err(crate::apply::ApplyError::from_backend)?;
    Ok(Box::new(rehearsal))
}

fn execute(target: &Target, options: RunOptions, yes: bool, issuer_any: bool) -> Result<(), Error> {
    // One writer per migration directory, for the whole run (held until this function returns),
    // taken before the plan is read so that a concurrent re-plan is never half seen.
    let plan = &target.migration.plan;
    std::fs::metadata(plan)
        .map_err(|e| Error::Usage(format!("cannot read plan {}: {e}", plan.display())))?;
    let _lock =
        apply::lock::MigrationLock::acquire(&migration_dir(&target.migration), &command_line())?;
    let loaded = load(&target.migration)?;
    let mut journal = Journal::open(&journal_path(&loaded, &target.migration))
        .map_err(apply::ApplyError::from)?;
    // Everything that needs no network before the backend connects: without a terminal to ask
    // on, only --yes confirms; then the plan, the journal and the filters.
    if options.mode == Mode::Execute && !yes && !std::io::stdin().is_terminal() {
        return Err(apply::ApplyError::NotConfirmed.into());
    }
    let checksum = loaded.checksum_for(&journal).to_string();
    let steps = apply::check(&loaded.plan, &checksum, &journal, &options)?;
    if journal.plan_checksum().is_none() {
        // Not yet bound to a journal: the plan must be the one report.md was made from.
        verify_plan(&loaded, &target.migration.plan)?;
    }
    super::plan::check_plan(&loaded.plan, &target.migration.plan)?;
    let live = !target.migration.rehearse;
    if live && options.direction == Direction::Apply {
        // What the plan says of the world that needs no network to doubt.
        if !issuer_any {
            world::check_issuer_shape(&loaded.plan)?;
        }
        if checks_bindings(&options, &steps) {
            world::check_context(&loaded.plan, target.kube.eks_cluster())?;
        }
    }
    let mut backend: Box<dyn Backend> = if live {
        let mut live = live_backend(target)?;
        for line in check_world(&loaded.plan, &steps, &options, &mut live)? {
            print(&format!("{line}\n"))?;
        }
        Box::new(live)
    } else {
        rehearsal_backend(&loaded)?
    };
    let verb = if options.direction == Direction::Apply {
        "Apply"
    } else {
        "Roll back"
    };
    let summary = apply::run(
        &loaded.plan,
        &checksum,
        &mut journal,
        backend.as_mut(),
        &options,
        &mut confirmer(yes, verb, |preview| {
            let style = if std::env::var_os("NO_COLOR").is_none() {
                crate::render::diff::Style::Color
            } else {
                crate::render::diff::Style::Plain
            };
            confirmation_text(
                &loaded.plan,
                &loaded.digest,
                preview,
                options.direction,
                style,
            )
        }),
        &mut |line| {
            // Each line is printed as it happens, so an interrupted run shows how far it got.
            let _ = print(&format!("{line}\n"));
        },
        &super::progress::Bar::new("{msg:>20} {bar:30} {pos}/{len} steps"),
    )?;
    let mode = if options.mode == Mode::DryRun {
        " (dry run: nothing changed)"
    } else {
        ""
    };
    let calls = backend
        .calls()
        .map(|n| format!("; {n} API calls"))
        .unwrap_or_default();
    let owners = match (summary.by_owner, summary.awaiting_owner) {
        (0, 0) => String::new(),
        (made, 0) => format!(", {made} made by their owners"),
        (0, awaiting) => format!(", {awaiting} awaiting their owners"),
        (made, awaiting) => format!(", {made} made by their owners, {awaiting} awaiting them"),
    };
    print(&format!(
        "{} changed, {} already in place, {} skipped{owners}{mode}{calls}\n",
        summary.changed, summary.already_done, summary.skipped
    ))
}

/// This process's command line, for the lock's holder record.
pub(super) fn command_line() -> String {
    std::iter::once("irsa-migrate".to_string())
        .chain(
            std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

fn mode(dry_run: bool) -> Mode {
    if dry_run { Mode::DryRun } else { Mode::Execute }
}

pub fn run_apply(args: &ApplyArgs) -> Result<(), Error> {
    let options = RunOptions {
        direction: Direction::Apply,
        mode: mode(args.dry_run),
        selection: Selection {
            phases: args.phase.phases(),
            namespaces: args.namespaces.clone(),
            include_cluster_wide: args.include_cluster_wide,
        },
        wave_size: args.wave_size as usize,
        rollout: apply::RolloutCheck {
            timeout: std::time::Duration::from_secs(args.rollout_timeout),
            auto_rollback: !args.no_auto_rollback,
        },
        reading_fresh_for: apply::READING_FRESH_FOR,
        owners: args.owners.owners(),
        evidence: args.evidence.gate()?,
    };
    execute(&args.target, options, args.yes, args.issuer_any)
}

pub fn run_rollback(args: &RollbackArgs) -> Result<(), Error> {
    let phases = if args.all {
        Vec::new()
    } else {
        args.phase.map(PhaseChoice::phases).unwrap_or_default()
    };
    let options = RunOptions {
        direction: Direction::Rollback,
        mode: mode(args.dry_run),
        selection: Selection {
            phases,
            namespaces: args.namespaces.clone(),
            include_cluster_wide: args.include_cluster_wide,
        },
        wave_size: usize::MAX,
        rollout: Default::default(),
        reading_fresh_for: apply::READING_FRESH_FOR,
        owners: args.owners.owners(),
        // Rollback puts legacy trust back: nothing to prove.
        evidence: apply::EvidenceGate::Waived,
    };
    execute(&args.target, options, args.yes, false)
}
