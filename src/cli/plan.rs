//! `irsa-migrate plan`, `irsa-migrate diff`, and the plan half of `irsa-migrate demo`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use super::{Error, OutputFormat, SourceArgs, print, print_styled};
use crate::inventory::Inventory;
use crate::inventory::snapshot::Layout;
use crate::ownership::IacRoleTag;
use crate::plan::select::Selection;
use crate::plan::{Phase, Plan, Settings, StepKind};
use crate::render::diff::Style;
use crate::render::{plan as render_plan, report};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and NO_COLOR is unset.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn style(self) -> Style {
        let color = match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        if color { Style::Color } else { Style::Plain }
    }
}

/// A `--phase` value: a phase by its name in the plan, its summary as help. Here rather than
/// derived on the plan's type, so that the planner does not depend on the command line.
impl ValueEnum for Phase {
    fn value_variants<'a>() -> &'a [Self] {
        &Phase::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()).help(self.summary()))
    }
}

/// A `--kind` value: a step kind by its name in the plan.
impl ValueEnum for StepKind {
    fn value_variants<'a>() -> &'a [Self] {
        &StepKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()).help(format!("a step of phase {}", self.phase())))
    }
}

/// Where plans are written and what they are called.
#[derive(Debug, Clone, Args)]
pub struct PlanOutputArgs {
    /// The migration's name: its directory under --dir. Default: the cluster's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The root of migration directories.
    #[arg(long, value_name = "DIR", default_value = "migrations")]
    pub dir: PathBuf,
    /// The longest trust policy to plan, in characters (IAM's quota: 2048 by default, up to 4096
    /// after an increase). A role that would exceed it is reported, never made to fit with a wildcard.
    #[arg(long, value_name = "CHARS", default_value_t = crate::plan::trust::DEFAULT_TRUST_POLICY_LIMIT)]
    pub trust_policy_limit: usize,
    /// A tag that marks the IAM roles your infrastructure code (Terraform, Pulumi) manages: `KEY`
    /// (any value) or `KEY=VALUE`; repeatable. Such roles are changed through their owner
    /// (`export`), like those eksctl tags `alpha.eksctl.io/cluster-name` and those a
    /// CloudFormation or CDK stack of the cluster's region made (found without a tag).
    #[arg(long = "iac-role-tag", value_name = "KEY[=VALUE]", value_parser = iac_role_tag)]
    pub iac_role_tags: Vec<IacRoleTag>,
    /// Colour diffs.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorChoice,
}

fn iac_role_tag(text: &str) -> Result<IacRoleTag, String> {
    IacRoleTag::try_from(text.to_string())
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub output_args: PlanOutputArgs,
    /// `text`: a summary and the first steps of each phase as diffs (`--diffs`); `json`: the plan
    /// document (irsa-migrate.plan/v1). Both write <dir>/<name>/plan.json and report.md.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// How many steps of each phase `text` shows as diffs; `irsa-migrate diff` shows the rest.
    #[arg(long, value_name = "N", default_value_t = DIFFS_PER_PHASE)]
    pub diffs: usize,
    /// Plan even when the live cluster refused some reads (403): workloads the reading could not
    /// see are neither migrated nor reported.
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Plan for an OIDC issuer that is not of the form EKS gives
    /// (`https://oidc.eks.<region>.amazonaws.com/id/<ID>` and its China, GovCloud and dual-stack
    /// forms): every migrated role will trust it, so only for a cluster you know has another.
    #[arg(long)]
    pub issuer_any: bool,
}

/// Diffs `plan` prints per phase by default: enough to review its shape, few enough for a terminal
/// at any size.
const DIFFS_PER_PHASE: usize = 20;

/// Every step of a plan, or those asked for: each option given must hold (repeat one for any of
/// its values), e.g. `--namespace payments --kind restart-workload`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A plan.json written by `irsa-migrate plan`.
    #[arg(long, value_name = "PATH")]
    pub plan: PathBuf,
    /// Only this phase (repeatable).
    #[arg(long, value_enum)]
    pub phase: Vec<Phase>,
    /// Only steps on objects of this namespace (repeatable; IAM steps have none).
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Vec<String>,
    /// Only steps of this kind (repeatable).
    #[arg(long, value_enum)]
    pub kind: Vec<StepKind>,
    /// Only the step with this id, as `plan.json` and the journal name it (repeatable).
    #[arg(long = "step", value_name = "ID")]
    pub steps: Vec<String>,
    /// Colour diffs.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorChoice,
}

pub fn run(args: &PlanArgs) -> Result<(), Error> {
    let inventory = super::until_exit(args.source.load()?);
    super::require_complete(&inventory, args.allow_incomplete)?;
    let (plan, dir) = write_plan(&inventory, None, &args.output_args, args.issuer_any)?;
    let plan = super::until_exit(plan);
    match args.output {
        OutputFormat::Json => print(&plan_json(&plan)?),
        OutputFormat::Text => {
            // The summary is escaped here; the diffs escape their values before colouring.
            let mut text = crate::render::terminal_safe(&render_plan::summary(&plan)).into_owned();
            let plan_path = dir.join("plan.json").display().to_string();
            text.push_str(&render_plan::diffs(
                &plan,
                &Selection::default(),
                Some(render_plan::Bound {
                    per_phase: args.diffs,
                    plan: &plan_path,
                }),
                args.output_args.color.style(),
            ));
            text.push_str(&crate::render::terminal_safe(&format!(
                "\nWrote {}/plan.json and {}/report.md\n",
                dir.display(),
                dir.display()
            )));
            print_styled(&text)
        }
    }
}

pub fn diff(args: &DiffArgs) -> Result<(), Error> {
    let plan = read_plan(&args.plan)?;
    let selection = Selection {
        phases: args.phase.clone(),
        namespaces: args.namespace.clone(),
        kinds: args.kind.clone(),
        ids: args.steps.clone(),
    };
    if let Some(unknown) = args
        .steps
        .iter()
        .find(|id| !plan.steps.iter().any(|s| &s.id == *id))
    {
        return Err(Error::Usage(format!(
            "--step {unknown:?}: {} has no such step (its ids are in plan.json and the journal)",
            args.plan.display()
        )));
    }
    print_styled(&render_plan::diffs(
        &plan,
        &selection,
        None,
        args.color.style(),
    ))
}

/// Plans `inventory` (with `scan` of it, when the caller already has one) and writes
/// `plan.json`, `report.md` and the snapshot; returns the plan and its directory. The source's
/// issuer must be one EKS gives unless `issuer_any`.
pub fn write_plan(
    inventory: &Inventory,
    scan: Option<&crate::scan::Scan>,
    args: &PlanOutputArgs,
    issuer_any: bool,
) -> Result<(Plan, PathBuf), Error> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => inventory
            .cluster
            .as_ref()
            .map(|c| c.name.clone())
            .ok_or(crate::plan::PlanError::ClusterUnknown)?,
    };
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::Usage(format!(
            "--name {name:?}: a migration name is one directory name, not empty, not starting with '.'"
        )));
    }
    let settings = Settings {
        trust_policy_limit: args.trust_policy_limit,
        iac_role_tags: args.iac_role_tags.clone(),
    };
    if !issuer_any
        && let Some(cluster) = &inventory.cluster
        && let Some(issuer) = &cluster.oidc_issuer
    {
        crate::iam::issuer::check_eks_issuer(issuer, &cluster.partition, &cluster.region)
            .map_err(crate::plan::PlanError::IssuerNotEks)?;
    }
    let dir = args.dir.join(&name);
    let new_migration = !dir.exists();
    crate::private::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    let lock = crate::apply::lock::MigrationLock::acquire(&dir, &super::apply::command_line())?;
    crate::apply::refuse_replan_if_applied(&dir.join("journal.jsonl"), &dir.join("plan.json"))?;
    // The inventory the plan is made from (what rehearsals start from and apply checks the plan
    // against) is the larger half of what is written: it is written on a second thread while
    // the plan is made, into a staging directory. The plan's documents are written only once it
    // is whole, and plan.json and the snapshot take the old ones' places last, so a plan that
    // fails leaves the old ones as they were.
    // The writer's rendering gives the inventory's fingerprint too, which the plan waits for last.
    let staged = dir.join("snapshot.staging");
    let (planned, snapshot) = std::thread::scope(|threads| {
        let (fingerprinted, fingerprint) = std::sync::mpsc::channel();
        let staging = &staged;
        // The sender goes with the thread: a writer that ends without sending ends the wait.
        let snapshot = threads.spawn(move || {
            let written =
                crate::inventory::snapshot::write_dir(inventory, staging, Layout::PerKind);
            if let Ok(digest) = &written {
                let _ = fingerprinted.send(digest.clone());
            }
            written
        });
        let planned = make_plan(inventory, scan, &name, &settings, &mut || {
            // A snapshot that could not be written fails the plan after; it is made whole anyway.
            fingerprint
                .recv()
                .unwrap_or_else(|_| crate::inventory::snapshot::fingerprint(inventory))
        });
        (planned, snapshot.join())
    });
    let snapshot = snapshot.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let written = planned.and_then(|plan| {
        snapshot?;
        write_documents(&plan, inventory, &dir)?;
        crate::inventory::snapshot::replace_dir(&staged, &dir.join("snapshot"))?;
        put_plan_json(&dir)?;
        Ok(plan)
    });
    if written.is_err() {
        // Best effort: the next plan replaces what a failed one left behind anyway. A plan
        // that could not be made leaves no migration directory it created.
        let _ = std::fs::remove_dir_all(&staged);
        let _ = std::fs::remove_file(dir.join(PLAN_STAGED));
        if new_migration {
            drop(lock);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    Ok((written?, dir))
}

/// Where plan.json is written before it replaces the old one ([`put_plan_json`]).
const PLAN_STAGED: &str = "plan.json.new";

/// Makes the plan of `inventory` (with `scan` of it, when given, and its `fingerprint`) and checks
/// it as `apply` will.
fn make_plan(
    inventory: &Inventory,
    scan: Option<&crate::scan::Scan>,
    name: &str,
    settings: &Settings,
    fingerprint: &mut dyn FnMut() -> String,
) -> Result<Plan, Error> {
    let scanned;
    let scan = match scan {
        Some(scan) => scan,
        None => {
            scanned = crate::scan::scan(inventory);
            &scanned
        }
    };
    let plan = crate::plan::plan_with_fingerprint(inventory, scan, name, settings, fingerprint)?;
    // What `apply` will check the plan file against, checked before it is written: a source
    // with names or ARNs no cluster has gives an error, never a plan that apply refuses.
    crate::plan::validate::check_against(&plan, inventory)
        .map_err(crate::plan::PlanError::Invalid)?;
    Ok(plan)
}

/// Writes `plan.json` (staged, for [`put_plan_json`]), `report.md` (with its pages) and the
/// permissions of `plan` into the migration directory `dir`, which the caller holds locked.
fn write_documents(plan: &Plan, inventory: &Inventory, dir: &Path) -> Result<(), Error> {
    // plan.json (and the permissions) are written on a second thread while report.md is made,
    // and the report's pages (a large plan's diffs are tens of megabytes) on both once each is.
    let next = &std::sync::atomic::AtomicUsize::new(0);
    let started: &std::sync::OnceLock<(report::Report, PathBuf)> = &std::sync::OnceLock::new();
    let (report_started, wait_for_report) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|threads| {
        let helper = threads.spawn(move || {
            write_plan_json(plan, dir)
                .and_then(|()| write_permissions(plan, &dir.join("permissions")))?;
            // The sender is dropped unused when report.md failed: no pages to help with.
            match (wait_for_report.recv(), started.get()) {
                (Ok(()), Some((report, pages))) => write_pages(report, pages, next),
                _ => Ok(()),
            }
        });
        let report = report::markdown(plan, evidence(plan, inventory).as_ref());
        let written = start_report(&report, dir).and_then(|pages| {
            let (report, pages) = started.get_or_init(|| (report, pages));
            let _ = report_started.send(());
            write_pages(report, pages, next)
        });
        drop(report_started);
        let helped = helper
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        written.and(helped)
    })
}

/// Writes `plan.json` into the migration directory `dir`, beside the old one ([`PLAN_STAGED`]).
fn write_plan_json(plan: &Plan, dir: &Path) -> Result<(), Error> {
    // Streamed, not held: a plan of 95,000 steps is 120 MB of text.
    let fresh = dir.join(PLAN_STAGED);
    let failed = |source| Error::Write {
        path: fresh.clone(),
        source,
    };
    let file = crate::private::create(&fresh).map_err(failed)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    crate::json::to_writer_pretty(&mut out, plan).map_err(|e| Error::Output(e.into()))?;
    out.write_all(b"\n").map_err(failed)?;
    out.flush().map_err(failed)
}

/// Puts the plan.json [`write_plan_json`] staged in `dir` in the place of the old one. A rehearsal
/// of another plan cannot go on under this one (its journal would not match): it is removed.
fn put_plan_json(dir: &Path) -> Result<(), Error> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    let (plan_path, fresh) = (dir.join("plan.json"), dir.join(PLAN_STAGED));
    if !same_contents(&plan_path, &fresh) {
        for stale in [dir.join("rehearsal"), dir.join("rehearsal.staging")] {
            if stale.exists() {
                std::fs::remove_dir_all(&stale).map_err(failed(&stale))?;
            }
        }
    }
    std::fs::rename(&fresh, &plan_path).map_err(failed(&plan_path))
}

/// What the source's CloudTrail says of the plan's decommission, as of its readings' end, over
/// the defaults of `evidence`; none when the source holds no CloudTrail.
fn evidence(plan: &Plan, inventory: &Inventory) -> Option<crate::evidence::Evidence> {
    let regions = crate::evidence::regions(&plan.cluster.region);
    let trail = &inventory.trail;
    if trail.windows.is_empty() && trail.events.is_empty() {
        return None;
    }
    let judgement = crate::evidence::Judgement {
        as_of: trail.reached(&regions).unwrap_or_else(crate::time::now),
        since: crate::evidence::DEFAULT_SINCE,
        quiet_for: crate::evidence::DEFAULT_QUIET_FOR,
    };
    let pods = crate::evidence::Pods::of(&inventory.pods);
    Some(crate::evidence::assess(plan, trail, judgement, &pods))
}

/// Writes report.md and makes the empty directory of its pages (replacing an earlier plan's,
/// which may be stale), whose path it returns.
fn start_report(report: &report::Report, dir: &Path) -> Result<PathBuf, Error> {
    let pages = dir.join(report::PAGES_DIR);
    if pages.exists() {
        std::fs::remove_dir_all(&pages).map_err(|source| Error::Write {
            path: pages.clone(),
            source,
        })?;
    }
    write_file(&dir.join("report.md"), &report.top)?;
    if !report.pages.is_empty() {
        crate::private::create_dir_all(&pages).map_err(|source| Error::Write {
            path: pages.clone(),
            source,
        })?;
    }
    Ok(pages)
}

/// Renders and writes the report's pages into `pages`, each the next one no thread has taken
/// (`next` counts them), until none is left.
fn write_pages(
    report: &report::Report,
    pages: &Path,
    next: &std::sync::atomic::AtomicUsize,
) -> Result<(), Error> {
    use std::sync::atomic::Ordering;
    while let Some(page) = report.pages.get(next.fetch_add(1, Ordering::Relaxed)) {
        // Page names are numbered (`details-0001.md`): they stay inside.
        let path = crate::names::join_under(pages, &page.name)
            .map_err(|e| Error::Usage(format!("report page {:?}: {e}", page.name)))?;
        write_file(&path, &page.markdown())?;
    }
    Ok(())
}

/// The least privilege of exactly this plan (`crate::plan::permissions`): the Kubernetes apply
/// ClusterRole and one IAM policy per account, replacing what an earlier plan wrote there.
fn write_permissions(plan: &Plan, dir: &Path) -> Result<(), Error> {
    let failed = |source| Error::Write {
        path: dir.to_path_buf(),
        source,
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(failed)?;
    }
    crate::private::create_dir_all(dir).map_err(failed)?;
    write_file(
        &dir.join("kubernetes-apply-role.yaml"),
        &crate::plan::permissions::kubernetes_apply_role(plan),
    )?;
    for (account, policy) in crate::plan::permissions::aws_apply_policies(plan) {
        let mut text =
            serde_json::to_string_pretty(&policy).map_err(|e| Error::Output(e.into()))?;
        text.push('\n');
        // The account is a checked 12-digit id: a file name that cannot escape.
        write_file(&dir.join(format!("aws-{account}.json")), &text)?;
    }
    Ok(())
}

/// Whether the files `a` and `b` both read, with the same bytes.
fn same_contents(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(mut a), Ok(mut b)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    let length = |file: &std::fs::File| file.metadata().map(|m| m.len()).ok();
    let Some(mut left) = length(&a).filter(|n| Some(*n) == length(&b)) else {
        return false;
    };
    let (mut ours, mut theirs) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    while left > 0 {
        let chunk = left.min(ours.len() as u64) as usize;
        let read = a
            .read_exact(&mut ours[..chunk])
            .and(b.read_exact(&mut theirs[..chunk]));
        if read.is_err() || ours[..chunk] != theirs[..chunk] {
            return false;
        }
        left -= chunk as u64;
    }
    true
}

fn plan_json(plan: &Plan) -> Result<String, Error> {
    let mut json = Vec::new();
    crate::json::to_writer_pretty(&mut json, plan).map_err(|e| Error::Output(e.into()))?;
    json.push(b'\n');
    String::from_utf8(json).map_err(|e| Error::Output(std::io::Error::other(e)))
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    crate::private::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a plan document, checking its schema and that every step is one the planner makes
/// ([`crate::plan::validate::check`]).
pub fn read_plan(path: &Path) -> Result<Plan, Error> {
    let plan = parse_plan(path)?;
    check_plan(&plan, path)?;
    Ok(plan)
}

/// Checks that every step of a plan read from `path` is one the planner makes.
pub fn check_plan(plan: &Plan, path: &Path) -> Result<(), Error> {
    crate::plan::validate::check(plan).map_err(|source| Error::InvalidPlan {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a plan document and checks its schema only: for `apply`, which first compares an
/// unbound plan with the planner's own (naming every difference), then checks it step by step.
pub fn parse_plan(path: &Path) -> Result<Plan, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read plan {}: {e}", path.display())))?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| {
        // A field the plan's checks name (a role ARN, read typed) is refused as they refuse it.
        let document = serde_json::from_str::<serde_json::Value>(&text).ok();
        if let Some(source) = document
            .filter(|d| d["schema"] == crate::plan::PLAN_SCHEMA)
            .as_ref()
            .and_then(crate::plan::validate::explain)
        {
            return Error::InvalidPlan {
                path: path.to_path_buf(),
                source,
            };
        }
        Error::Usage(format!(
            "{}:{}:{}: not a plan document: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    if plan.schema != crate::plan::PLAN_SCHEMA {
        return Err(Error::Usage(format!(
            "{}: schema {:?} is not {:?}; re-plan with this version",
            path.display(),
            plan.schema,
            crate::plan::PLAN_SCHEMA
        )));
    }
    Ok(plan)
}
