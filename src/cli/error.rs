//! The errors the binary reports and the exit codes they map to: a documented contract (README's
//! table and `--help` are [`ExitCode::meaning`]).

use std::path::PathBuf;

use crate::apply::ApplyError;
use crate::collect::CollectError;
use crate::inventory::snapshot::InventoryError;

/// The exit codes, a documented contract: README's table and `--help` are [`ExitCode::meaning`]
/// (a test holds README to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Success = 0,
    /// Findings at or above `--fail-on` were reported.
    FindingsBlock = 1,
    /// Bad flags or bad input, or a failure before the run's first write.
    UsageOrInput = 2,
    /// The tool refused to act.
    Refused = 3,
    /// A run stopped after it had started writing.
    PartiallyApplied = 4,
    /// A target was found neither as planned nor as the step leaves it; the run stopped.
    StaleState = 5,
    /// Writing output failed, or a bug.
    Internal = 70,
}

impl ExitCode {
    pub const ALL: [ExitCode; 7] = [
        ExitCode::Success,
        ExitCode::FindingsBlock,
        ExitCode::UsageOrInput,
        ExitCode::Refused,
        ExitCode::PartiallyApplied,
        ExitCode::StaleState,
        ExitCode::Internal,
    ];

    /// What the code tells the caller, in one line (Markdown).
    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::FindingsBlock => "findings at or above `--fail-on`",
            ExitCode::UsageOrInput => {
                "bad usage or input, and nothing was changed: an unknown flag or `--namespace`, a snapshot, plan or journal file that cannot be read or parsed (the message names file, line and column), a snapshot whose OIDC issuer EKS does not give, missing credentials, a plain-HTTP endpoint off this machine, a target that cannot be read, or a write the API refused (RBAC), before anything changed; a wave whose workloads cannot be restarted (a held rollout, no injection) before its first write"
            }
            ExitCode::Refused => {
                "refused: another run holds the migration's lock, plan changed since first apply, `plan` over a migration with live runs, phase out of order, no confirmation, a plan the live cluster and accounts contradict (cluster, issuer, bindings, an account without its credentials), and nothing was changed; or steps that are their owners' to make (Helm, Argo CD, Flux, infrastructure code) are not made yet, decommission of roles whose migrated workloads went back, or decommission steps CloudTrail's evidence does not clear (held), and the run's other steps are done and journaled"
            }
            ExitCode::PartiallyApplied => {
                "the run stopped after it had started writing; run the same command again to resume, or roll back"
            }
            ExitCode::StaleState => {
                "stale state: a target changed since planning; nothing was overwritten"
            }
            ExitCode::Internal => "internal error (cannot write output)",
        }
    }
}

/// `--help`'s list of exit codes, from [`ExitCode::meaning`].
pub(super) fn exit_codes_help() -> String {
    let codes: Vec<String> = ExitCode::ALL
        .iter()
        .map(|code| format!("{} {}", *code as u8, code.meaning().replace('`', "")))
        .collect();
    format!("Exit codes: {}.", codes.join("; "))
}

/// Errors the binary maps to exit codes. Lower layers have their own enums, kept as sources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A snapshot or the demo could not be read (the message names the file, line and column).
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// Flags that cannot work together, or an input the command cannot take; the message says
    /// which and what to give instead.
    #[error("{0}")]
    Usage(String),
    /// The scan reported findings at or above `--fail-on`: the findings say what to fix.
    #[error("{count} finding(s) at or above --fail-on {threshold}")]
    FindingsBlock {
        count: usize,
        threshold: crate::findings::Severity,
    },
    /// No plan could be made or written.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// An apply, rollback or status run stopped or was refused.
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    /// AWS could not be reached or read (its kind says how).
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    /// The Kubernetes API could not be reached or read (its kind says how).
    #[error(transparent)]
    Kube(#[from] crate::kubernetes::KubeError),
    /// A live run's plan is not what the world has ([`crate::world`]), or could not be checked.
    #[error(transparent)]
    World(#[from] crate::world::WorldError),
    /// The live reading lacks what the API server refused to show: a plan or snapshot over it
    /// could miss workloads that use a role.
    #[error("the cluster could not be read completely: {}; grant the irsa-migrate-read ClusterRole (docs/permissions.md), or pass --allow-incomplete to go on with what could be read", .0.join("; "))]
    Incomplete(Vec<String>),
    /// A plan file holds a step the planner would not make (edited by hand or by someone else).
    #[error("{path} is refused: it holds what the planner would not make; nothing was run")]
    InvalidPlan {
        path: PathBuf,
        #[source]
        source: crate::plan::validate::InvalidPlan,
    },
    /// Standard output could not be written (other than a closed pipe, which ends quietly).
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    /// A file the command writes could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the message already says its whole cause, so the causes are not printed after
    /// it: a loader error's parser message, reworded for users ([`InventoryError::says_its_cause`]).
    pub fn says_its_cause(&self) -> bool {
        matches!(self, Error::Inventory(e) if e.says_its_cause())
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Inventory(_)
            | Error::Usage(_)
            | Error::Plan(_)
            | Error::Aws(_)
            | Error::Kube(_) => ExitCode::UsageOrInput,
            Error::FindingsBlock { .. } => ExitCode::FindingsBlock,
            Error::World(error) if error.is_refusal() => ExitCode::Refused,
            Error::World(_) => ExitCode::UsageOrInput,
            Error::Incomplete(_) => ExitCode::Refused,
            Error::InvalidPlan { .. } => ExitCode::Refused,
            Error::Apply(error) => match error {
                ApplyError::PlanModified { .. }
                | ApplyError::UnknownStep(_)
                | ApplyError::PhaseOrder(_)
                | ApplyError::NamespaceWithDecommission
                | ApplyError::JournalExists { .. }
                | ApplyError::Unsupported { .. }
                | ApplyError::NotConfirmed
                | ApplyError::Locked { .. }
                | ApplyError::PlanNotFromSnapshot { .. }
                | ApplyError::AwaitingOwners { .. }
                | ApplyError::Reverted { .. }
                | ApplyError::Unproven { .. } => ExitCode::Refused,
                // Nothing was written by the run: the cause is its input or environment.
                ApplyError::LockFailed { .. }
                | ApplyError::UnknownNamespace { .. }
                | ApplyError::NothingWritten { .. }
                | ApplyError::Journal(_) => ExitCode::UsageOrInput,
                ApplyError::Stale { .. } => ExitCode::StaleState,
                // Only after the run sent a write.
                ApplyError::Backend { .. }
                | ApplyError::RolloutFailed { .. }
                | ApplyError::JournalAfterWrite { .. } => ExitCode::PartiallyApplied,
            },
            Error::Output(_) | Error::Write { .. } => ExitCode::Internal,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// README's exit-code table is the definition, row for row.
    #[test]
    fn readme_exit_code_table_is_the_definition() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("## Exit codes")
            .nth(1)
            .expect("README has an exit-code section");
        let rows: Vec<String> = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(str::to_string)
            .collect();
        let expected: Vec<String> = ExitCode::ALL
            .iter()
            .map(|code| format!("| {} | {} |", *code as u8, code.meaning()))
            .collect();
        assert_eq!(rows, expected);
    }

    /// The runbook's table of stops explains codes that exist, and every code a run can stop with.
    #[test]
    fn runbook_stop_table_names_the_defined_codes() {
        let runbook = include_str!("../../docs/runbook.md");
        let codes: Vec<u8> = runbook
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
        let defined: Vec<u8> = ExitCode::ALL.iter().map(|c| *c as u8).collect();
        assert!(codes.iter().all(|c| defined.contains(c)), "{codes:?}");
        for stop in [0, 2, 3, 4, 5] {
            assert!(codes.contains(&stop), "the runbook explains exit {stop}");
        }
    }

    #[test]
    fn help_lists_every_exit_code() {
        use super::super::Cli;
        use clap::CommandFactory;
        // Wrapped to the terminal: compared with its whitespace collapsed.
        let help = Cli::command().render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for code in ExitCode::ALL {
            let entry = format!("{} {}", code as u8, code.meaning().replace('`', ""));
            assert!(help.contains(&entry), "{entry:?} not in {help}");
        }
    }
}
