//! `irsa-migrate apply`, `status` and `rollback`.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::{Error, OutputFormat, print};
use crate::apply::journal::{Journal, StepState};
use crate::apply::{self, Direction, Mode, Preview, RunOptions, Selection};
use crate::backend::Backend;
use crate::backend::live::Live;
use crate::backend::rehearsal::Rehearsal;
use crate::plan::{Phase, Plan};
use crate::world;

/// A phase, or all of them in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseChoice {
    Prepare,
    Identity,
    Rollout,
    Cleanup,
    Decommission,
    All,
}

impl PhaseChoice {
    fn phases(self) -> Vec<Phase> {
        match self {
            PhaseChoice::Prepare => vec![Phase::Prepare],
            PhaseChoice::Identity => vec![Phase::Identity],
            PhaseChoice::Rollout => vec![Phase::Rollout],
            PhaseChoice::Cleanup => vec![Phase::Cleanup],
            PhaseChoice::Decommission => vec![Phase::Decommission],
            PhaseChoice::All => Vec::new(),
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
    /// Read every target and print what would be rolled back; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub migration: Migration,
    /// `text`: each phase's steps by state; `json`: the document irsa-migrate.status/v1.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: OutputFormat,
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

/// Recomputes the plan from the migration's own snapshot and settings and refuses a plan file
/// that differs in anything but its findings, naming where.
fn verify_plan(loaded: &Loaded, path: &Path) -> Result<(), Error> {
    let snapshot = loaded.dir.join("snapshot");
    if !snapshot.is_dir() {
        return Err(Error::Usage(format!(
            "{} is missing: it is written by `irsa-migrate plan` next to plan.json, and the plan is checked against it; re-plan",
            snapshot.display()
        )));
    }
    let inventory = crate::inventory::snapshot::load_dir(&snapshot, &crate::progress::Silent)?;
    let mut expected = crate::plan::plan(&inventory, &loaded.plan.name, &loaded.plan.settings)?;
    // Findings report on the source as it was read (a file it ignored, a namespace it could not
    // list), which the migration's snapshot does not repeat; they change nothing a run does.
    // The same content written by another version is the same plan.
    let mut found = Plan {
        generator: expected.generator.clone(),
        ..loaded.plan.clone()
    };
    expected.findings.clear();
    found.findings.clear();
    if expected == found {
        return Ok(());
    }
    let origin = match loaded.plan.generator.as_str() {
        writer if writer == expected.generator => {
            format!("it was written by this version ({writer}), so it was edited since")
        }
        "" => format!(
            "it names no writer (a plan from before irsa-migrate recorded its version, or edited by hand), and this is {}",
            expected.generator
        ),
        writer => format!(
            "it was written by {writer}, and this is {}: the versions plan differently (or it was edited by hand)",
            expected.generator
        ),
    };
    Err(apply::ApplyError::PlanNotFromSnapshot {
        plan: path.to_path_buf(),
        origin,
        snapshot,
        name: loaded.plan.name.clone(),
        differences: plan_differences(&expected, &found),
    }
    .into())
}

/// Where `found` differs from `expected`: steps by id (with a diff of each changed one, up to a
/// few), then the other top-level fields by name.
fn plan_differences(expected: &Plan, found: &Plan) -> String {
    let by_id = |plan: &Plan| -> BTreeMap<String, serde_json::Value> {
        plan.steps
            .iter()
            .map(|s| (s.id.clone(), serde_json::to_value(s).unwrap_or_default()))
            .collect()
    };
    let (want, got) = (by_id(expected), by_id(found));
    let mut lines = Vec::new();
    let mut diffs = 0;
    for id in want
        .keys()
        .chain(got.keys().filter(|id| !want.contains_key(*id)))
    {
        match (want.get(id), got.get(id)) {
            (Some(_), None) => lines.push(format!("  step {id}: missing from the file")),
            (None, Some(_)) => {
                lines.push(format!("  step {id}: not in the plan the snapshot gives"))
            }
            (Some(a), Some(b)) if a != b => {
                lines.push(format!("  step {id}: changed"));
                diffs += 1;
                if diffs <= 5 {
                    let pretty = |v: &serde_json::Value| {
                        serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
                    };
                    let diff = similar::TextDiff::from_lines(&pretty(a), &pretty(b))
                        .unified_diff()
                        .context_radius(2)
                        .to_string();
                    lines.extend(diff.lines().map(|l| format!("    {l}")));
                }
            }
            _ => {}
        }
    }
    let fields = |plan: &Plan| match serde_json::to_value(plan) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (want, got) = (fields(expected), fields(found));
    for (key, value) in &want {
        if key != "steps" && got.get(key) != Some(value) {
            lines.push(format!("  field {key}: changed"));
        }
    }
    lines.join("\n")
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

/// How many changes the confirmation shows as diffs; `irsa-migrate diff` shows them all.
const CONFIRM_DIFFS: usize = 20;

/// What the confirmation shows: the plan's digest (as report.md shows it), then each change to
/// be made as a diff in the run's direction.
fn confirmation_text(
    plan: &Plan,
    digest: &str,
    preview: &Preview,
    direction: Direction,
    style: crate::render::diff::Style,
) -> String {
    let mut text = format!(
        "Plan {} (digest {digest}): {} change(s) to {} ({} already in place):\n",
        plan.name,
        preview.to_change.len(),
        preview.destination,
        preview.already_done
    );
    for id in preview.to_change.iter().take(CONFIRM_DIFFS) {
        let Some(step) = plan.steps.iter().find(|s| &s.id == id) else {
            text.push_str(&format!("  {id}\n"));
            continue;
        };
        let mut shown = step.clone();
        if direction == Direction::Rollback {
            std::mem::swap(&mut shown.before, &mut shown.after);
        }
        text.push_str(&format!("\n{}:\n", step.id));
        text.push_str(&crate::render::diff::step_diff(&shown, style));
    }
    if preview.to_change.len() > CONFIRM_DIFFS {
        text.push_str(&format!(
            "\n… and {} more (`irsa-migrate diff` shows every step)\n",
            preview.to_change.len() - CONFIRM_DIFFS
        ));
    }
    text
}

/// Asks on the terminal, showing `text` of the preview; refuses without one unless `--yes`.
fn confirmer(
    yes: bool,
    verb: &'static str,
    text: impl Fn(&Preview) -> String,
) -> impl FnMut(&Preview) -> bool {
    move |preview: &Preview| {
        if yes {
            return true;
        }
        if !std::io::stdin().is_terminal() {
            return false;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{}", crate::render::terminal_safe(&text(preview)));
        let _ = write!(stderr, "\n{verb} them? [y/N] ");
        let _ = stderr.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    }
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
    let mut lines = Vec::new();
    let result = apply::run(
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
            lines.push(line);
        },
    );
    let summary = result?;
    let mode = if options.mode == Mode::DryRun {
        " (dry run: nothing changed)"
    } else {
        ""
    };
    let calls = backend
        .calls()
        .map(|n| format!("; {n} API calls"))
        .unwrap_or_default();
    print(&format!(
        "{} changed, {} already in place, {} skipped{mode}{calls}\n",
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
    };
    execute(&args.target, options, args.yes, false)
}

/// `irsa-migrate.status/v1`: each step's state from the journal, and counts per phase.
#[derive(Debug, Serialize)]
struct Status<'a> {
    schema: &'static str,
    plan: String,
    /// The plan's content digest, as report.md shows it.
    digest: String,
    journal: String,
    phases: BTreeMap<&'static str, BTreeMap<&'static str, usize>>,
    steps: Vec<StepStatus<'a>>,
}

#[derive(Debug, Serialize)]
struct StepStatus<'a> {
    id: &'a str,
    phase: Phase,
    state: StepState,
}

pub fn run_status(args: &StatusArgs) -> Result<(), Error> {
    let loaded = load(&args.migration)?;
    super::plan::check_plan(&loaded.plan, &args.migration.plan)?;
    let path = journal_path(&loaded, &args.migration);
    let journal = Journal::open(&path).map_err(apply::ApplyError::from)?;
    let states = journal.states();
    let steps: Vec<StepStatus<'_>> = loaded
        .plan
        .steps
        .iter()
        .map(|s| StepStatus {
            id: &s.id,
            phase: s.phase,
            state: states.get(&s.id).copied().unwrap_or(StepState::Pending),
        })
        .collect();
    let mut phases: BTreeMap<&'static str, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for step in &steps {
        *phases
            .entry(step.phase.as_str())
            .or_default()
            .entry(step.state.as_str())
            .or_default() += 1;
    }
    let modified = journal
        .plan_checksum()
        .is_some_and(|c| c != loaded.checksum_for(&journal));
    match args.output {
        OutputFormat::Json => {
            let status = Status {
                schema: "irsa-migrate.status/v1",
                plan: args.migration.plan.display().to_string(),
                digest: loaded.digest.clone(),
                journal: path.display().to_string(),
                phases,
                steps,
            };
            let mut json =
                serde_json::to_string_pretty(&status).map_err(|e| Error::Output(e.into()))?;
            json.push('\n');
            print(&json)
        }
        OutputFormat::Text => {
            let mut text = format!(
                "Plan {} ({}, digest {}), journal {}\n",
                loaded.plan.name,
                args.migration.plan.display(),
                loaded.digest,
                path.display()
            );
            if modified {
                text.push_str("WARNING: the plan file changed since it was applied; apply and rollback will refuse it\n");
            }
            for phase in Phase::ALL {
                let counts = phases.get(phase.as_str()).cloned().unwrap_or_default();
                let parts: Vec<String> = counts
                    .iter()
                    .map(|(state, n)| format!("{n} {state}"))
                    .collect();
                text.push_str(&format!(
                    "\n{phase}: {}\n",
                    if parts.is_empty() {
                        "no steps".to_string()
                    } else {
                        parts.join(", ")
                    }
                ));
                for step in steps.iter().filter(|s| s.phase == phase) {
                    text.push_str(&format!("  {:<26} {}\n", step.state.as_str(), step.id));
                }
            }
            print(&text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The confirmation showed step ids; the change board approved diffs and a digest.
    #[test]
    fn the_confirmation_shows_the_digest_and_each_change_as_a_diff_in_the_runs_direction() {
        let inventory = crate::inventory::demo::inventory().unwrap();
        let plan = crate::plan::plan(&inventory, "demo", &Default::default()).unwrap();
        let step = plan
            .steps
            .iter()
            .find(|s| s.id.starts_with("annotate-service-account:checkout/"))
            .unwrap();
        let preview = Preview {
            to_change: vec![step.id.clone()],
            already_done: 2,
            destination: "the rehearsal".into(),
        };
        let plain = crate::render::diff::Style::Plain;
        let text = confirmation_text(&plan, &plan.digest(), &preview, Direction::Apply, plain);
        assert!(
            text.starts_with(&format!(
                "Plan demo (digest {}): 1 change(s) to the rehearsal (2 already in place):",
                plan.digest()
            )),
            "{text}"
        );
        let added = text
            .lines()
            .find(|l| l.starts_with('+') && l.contains("eks.amazonaws.com/role-arn"));
        assert!(added.is_some(), "{text}");
        let back = confirmation_text(&plan, &plan.digest(), &preview, Direction::Rollback, plain);
        let removed = back
            .lines()
            .find(|l| l.starts_with('-') && l.contains("eks.amazonaws.com/role-arn"));
        assert!(removed.is_some(), "{back}");
    }
}
