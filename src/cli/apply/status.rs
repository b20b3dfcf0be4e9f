//! `irsa-migrate status`: each step's state from the journal, as text or as the document
//! `irsa-migrate.status/v1`.

use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;

use super::{Migration, journal_path, load};
use crate::apply;
use crate::apply::journal::{Journal, StepState};
use crate::cli::{Error, OutputFormat, print};
use crate::plan::Phase;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub migration: Migration,
    /// `text`: each phase's steps by state; `json`: the document irsa-migrate.status/v1.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: OutputFormat,
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
    crate::cli::plan::check_plan(&loaded.plan, &args.migration.plan)?;
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
