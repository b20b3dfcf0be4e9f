//! When `plan` may replace a migration's plan: not once its live journal records a run.

use super::ApplyError;
use super::journal::Journal;

/// Refuses to re-plan the migration whose plan is `plan` and live journal `journal_path` once
/// any live run has been journaled.
pub fn refuse_replan_if_applied(
    journal_path: &std::path::Path,
    plan: &std::path::Path,
) -> Result<(), ApplyError> {
    let journal = Journal::open(journal_path)?;
    if journal.entries().is_empty() {
        return Ok(());
    }
    let applied = journal
        .states()
        .values()
        .filter(|s| s.may_be_applied())
        .count();
    let advice = if applied > 0 {
        format!(
            "Roll back first (`irsa-migrate rollback --plan {} --all`), then plan under a new --name; or plan under a new --name now and migrate from where this one stands",
            plan.display()
        )
    } else {
        "Everything it applied is rolled back: plan under a new --name (this directory stays as the record of what was done)".to_string()
    };
    Err(ApplyError::JournalExists {
        journal: journal_path.to_path_buf(),
        applied,
        advice,
    })
}
