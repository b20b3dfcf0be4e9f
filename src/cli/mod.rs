//! The command line: clap definitions, one module per subcommand, and the exit-code contract
//! (`error`: the errors the binary reports and their exit codes).

mod apply;
mod duration;
mod error;
mod evidence;
mod export;
mod plan;
mod progress;
mod scan;
mod shell;
mod snapshot;
mod source;

use std::io::Write;

use clap::{Parser, Subcommand, ValueEnum};

pub(crate) use source::require_complete;
pub use source::{LiveArgs, SourceArgs};

use error::exit_codes_help;
pub use error::{Error, ExitCode};

/// Move EKS workloads from kiam or kube2iam to IAM Roles for Service Accounts (IRSA), safely.
///
/// Start with `irsa-migrate demo` to see a whole migration on a built-in example cluster, then
/// `irsa-migrate scan --cluster NAME` on your own (the current kubeconfig context and AWS
/// credentials), or `irsa-migrate snapshot --out DIR` to read it once and work offline.
#[derive(Debug, Parser)]
#[command(name = "irsa-migrate", version, after_help = exit_codes_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find every workload that gets AWS credentials through kiam/kube2iam or IRSA, and every
    /// node-role permission and trust relationship that exists only for the legacy path.
    #[command(after_help = exit_codes_help())]
    Scan(scan::ScanArgs),
    /// Compute the IRSA end state and the phased, reversible steps to reach it; write
    /// <dir>/<name>/plan.json and report.md, and print a summary and every change as a diff.
    #[command(after_help = exit_codes_help())]
    Plan(plan::PlanArgs),
    /// Show a written plan's steps as diffs of before and after.
    Diff(plan::DiffArgs),
    /// Write each owner's changes of a plan in the owner's own form, phase by phase: Kustomize
    /// components (Argo CD, Flux, plain manifests), Helm post-renderers and values hints, IAM
    /// trust policies as JSON and Terraform, an AWS CLI script for what nobody owns; and a
    /// README saying what to merge in which order, and how to undo it.
    #[command(after_help = exit_codes_help())]
    Export(export::ExportArgs),
    /// Apply a phase of a plan: read each target, write only where it is still as planned,
    /// journal every change. WARNING: without --rehearse this changes the cluster and IAM.
    #[command(after_help = exit_codes_help())]
    Apply(apply::ApplyArgs),
    /// What CloudTrail says of each role a plan decommissions: the last use of its legacy path
    /// (kiam's or kube2iam's AssumeRole), whether each planned service account assumes it through
    /// web identity, and a verdict (ready, legacy-in-use, unproven) that decommission requires.
    #[command(after_help = exit_codes_help())]
    Evidence(evidence::EvidenceArgs),
    /// Show each step's state (pending, applied, failed, rolled back) from the journal.
    Status(apply::StatusArgs),
    /// Undo applied steps from the journal, last first, restoring exactly what was there, and
    /// only where the target is still as the step left it.
    #[command(after_help = exit_codes_help())]
    Rollback(apply::RollbackArgs),
    /// Read the live cluster (Kubernetes objects through the kubeconfig, EKS and IAM through the
    /// AWS credentials) once and write it as a snapshot directory, to review, share and plan
    /// offline (docs/snapshot.md, docs/permissions.md).
    Snapshot(snapshot::SnapshotArgs),
    /// Scan and plan the embedded demo cluster (a kiam cluster with every kind of case) and write
    /// migrations/demo/: the quickest way to see what the tool does.
    Demo(scan::DemoArgs),
    /// Print a shell completion script, e.g. `irsa-migrate completions bash >
    /// ~/.local/share/bash-completion/completions/irsa-migrate` (zsh: a file `_irsa-migrate` in
    /// a directory of $fpath; fish: ~/.config/fish/completions/irsa-migrate.fish).
    Completions(shell::CompletionsArgs),
    /// Print the manual page (roff), e.g. `irsa-migrate man > ~/.local/share/man/man1/irsa-migrate.1`;
    /// `irsa-migrate man scan` prints the page of one command (irsa-migrate-scan.1).
    Man(shell::ManArgs),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable summary.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Writes to stdout, control characters and bidirectional overrides from the input shown as
/// escapes ([`crate::render::terminal_safe`]); a closed pipe (`| head`) ends the program quietly,
/// as other CLIs do.
pub(crate) fn print(text: &str) -> Result<(), Error> {
    print_styled(&crate::render::terminal_safe(text))
}

/// [`print`] for text that carries the tool's own colours and whose values are already escaped
/// (coloured diffs).
pub(crate) fn print_styled(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Output),
    }
}

/// A command's inventory or plan, kept until the process exits instead of freed when the command
/// is done: a fleet's are millions of allocations, and freeing them one by one took half a second
/// at 60,000 pods, after the output was written, for nothing the exit does not do at once.
fn until_exit<T>(value: T) -> std::mem::ManuallyDrop<T> {
    std::mem::ManuallyDrop::new(value)
}

pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Scan(args) => scan::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Diff(args) => plan::diff(&args),
        Command::Export(args) => export::run(&args),
        Command::Apply(args) => apply::run_apply(&args),
        Command::Evidence(args) => evidence::run(&args),
        Command::Status(args) => apply::run_status(&args),
        Command::Rollback(args) => apply::run_rollback(&args),
        Command::Snapshot(args) => snapshot::run(&args),
        Command::Demo(args) => scan::demo(&args),
        Command::Completions(args) => shell::completions(&args),
        Command::Man(args) => shell::man(&args),
    }
}

/// The flags that reach a live cluster or AWS (arg ids): nothing to reach with `--rehearse`,
/// `--snapshot` or `--demo`.
const CONNECTION_FLAGS: &[&str] = &[
    "kubeconfig",
    "context",
    "page_size",
    "profile",
    "region",
    "endpoint_url",
    "max_attempts",
    "account_profiles",
];
/// Besides the connection flags, what a rehearsal does without.
const REHEARSAL_INERT_FLAGS: &[&str] = &[
    "concurrency",
    // A rehearsal writes nothing live, so there is no live cluster to check the issuer of.
    "issuer_any",
    // A rehearsal has no rollout to wait for or to roll back.
    "rollout_timeout",
    "no_auto_rollback",
];
/// Besides the connection flags, what a reading of a snapshot or the demo does without.
const OFFLINE_INERT_FLAGS: &[&str] = &[
    "cluster",
    "iam_read",
    // Only a live reading can be incomplete (a kind the API server refused to list).
    "allow_incomplete",
];

/// Refuses a directory to write into that holds anything: what a command writes never mixes
/// with what was there, and nothing is overwritten. `flag` names it in the message.
fn require_new_dir(flag: &str, dir: &std::path::Path) -> Result<(), Error> {
    let holds_something = dir.exists()
        && (!dir.is_dir()
            || std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_some()));
    if holds_something {
        return Err(Error::Usage(format!(
            "{flag} {}: not a new or empty directory; choose one, so that two outputs never mix and nothing is overwritten (nothing was removed)",
            dir.display()
        )));
    }
    Ok(())
}

/// Refuses flags given on the command line that would do nothing where they are given: live
/// flags with `--rehearse`, `--snapshot` or `--demo`. Silently ignored, they mislead (the run
/// looks as if it used them).
fn refuse_inert_flags(matches: &clap::ArgMatches) -> Result<(), Error> {
    let Some((command, sub)) = matches.subcommand() else {
        return Ok(());
    };
    let has = |id: &str| sub.ids().any(|i| i.as_str() == id);
    let given =
        |id: &str| has(id) && sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    let (flags, because) = match command {
        "apply" | "rollback" if has("rehearse") && sub.get_flag("rehearse") => (
            REHEARSAL_INERT_FLAGS,
            "--rehearse (a rehearsal changes <dir>/rehearsal/, not a cluster or AWS)",
        ),
        "scan" | "plan" if given("snapshot") => (
            OFFLINE_INERT_FLAGS,
            "--snapshot (the snapshot is read instead of a cluster)",
        ),
        "scan" | "plan" if has("demo") && sub.get_flag("demo") => (
            OFFLINE_INERT_FLAGS,
            "--demo (the embedded demo is read instead of a cluster)",
        ),
        _ => return Ok(()),
    };
    match CONNECTION_FLAGS.iter().chain(flags).find(|id| given(id)) {
        Some(id) => Err(Error::Usage(format!(
            "--{} does nothing with {because}; drop it",
            id.replace('_', "-")
                .replace("account-profiles", "account-profile")
        ))),
        None => Ok(()),
    }
}

/// The binary's whole `main`: parse, run, report, exit.
pub fn main() -> std::process::ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = refuse_inert_flags(&matches).and_then(|()| run(cli));
    match result {
        Ok(()) => std::process::ExitCode::from(ExitCode::Success as u8),
        Err(error) => {
            let mut message = format!("error: {error}");
            let mut source = if error.says_its_cause() {
                None
            } else {
                std::error::Error::source(&error)
            };
            while let Some(cause) = source {
                // Messages that already say their cause (most do) are not followed by it again.
                let cause_text = cause.to_string();
                if !message.contains(&cause_text) {
                    message.push_str(&format!("\n  caused by: {cause_text}"));
                }
                source = cause.source();
            }
            eprintln!("{}", crate::render::terminal_safe(&message));
            std::process::ExitCode::from(error.exit_code() as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own checks of the definitions (conflicting names, bad defaults, missing values),
    /// which it otherwise makes only when a command is parsed.
    #[test]
    fn command_line_definitions_pass_clap_checks() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Every command and every flag explains itself in --help (and so in the man pages).
    #[test]
    fn every_command_and_flag_has_help() {
        use clap::CommandFactory;
        let mut pending = vec![(String::from("irsa-migrate"), Cli::command())];
        let mut missing = Vec::new();
        while let Some((path, command)) = pending.pop() {
            if command.get_about().is_none() && command.get_long_about().is_none() {
                missing.push(path.clone());
            }
            for arg in command.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                pending.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
        }
        assert!(missing.is_empty(), "without help: {missing:?}");
    }
}
