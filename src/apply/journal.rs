//! The journal: `journal.jsonl`, an append-only ledger of every change, like `_sqlx_migrations`.
//!
//! Each entry is one JSON line, written and fsynced before and after every write to the outside
//! world. Folding the entries gives each step's state; a `start` without its `done` is a step
//! interrupted mid-write, which the next run resolves by reading the target.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Apply,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The target was written.
    Changed,
    /// The target was already in the desired state; nothing was written.
    AlreadyDone,
    /// The target's owner made the change (or, in a rehearsal with `--as-owner`, the run made it
    /// as the owner would); the run read it and wrote nothing of its own.
    ByOwner,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Entry {
    /// First line: the plan this journal belongs to.
    Plan {
        plan_checksum: String,
        fingerprint: String,
        time: String,
    },
    Start {
        step: String,
        action: Action,
        time: String,
    },
    Done {
        step: String,
        action: Action,
        outcome: Outcome,
        elapsed_ms: u64,
        time: String,
    },
    Failed {
        step: String,
        action: Action,
        reason: String,
        time: String,
    },
    /// A decommission step the evidence did not clear: not written this run, and why.
    Held {
        step: String,
        reason: String,
        time: String,
    },
    /// `--without-evidence`: this run decommissioned on the plan alone.
    WithoutEvidence { time: String },
}

/// A step's state, folded from the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    Pending,
    /// Started and not finished: the process stopped mid-write.
    Applying,
    Applied,
    Failed,
    RollingBack,
    RolledBack,
}

impl StepState {
    /// Whether the step's change may be in place (rollback must consider it).
    pub fn may_be_applied(self) -> bool {
        matches!(
            self,
            StepState::Applying | StepState::Applied | StepState::RollingBack | StepState::Failed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Applying => "applying (interrupted)",
            StepState::Applied => "applied",
            StepState::Failed => "failed",
            StepState::RollingBack => "rolling back (interrupted)",
            StepState::RolledBack => "rolled back",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The journal could not be opened, read, appended to or synced.
    #[error("cannot use journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of the journal is not an entry this tool writes: edited or damaged by hand.
    #[error(
        "{path}:{line}: not a journal entry ({message}); the journal is append-only, restore it from version control"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

pub struct Journal {
    path: PathBuf,
    entries: Vec<Entry>,
    file: Option<File>,
}

impl Journal {
    /// Reads the journal at `path` (absent: empty). A torn last line (a crash mid-append) is
    /// ignored; any other unreadable line is an error.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut entries = Vec::new();
        if path.exists() {
            let lines: Vec<String> = BufReader::new(File::open(path).map_err(io)?)
                .lines()
                .collect::<Result<_, _>>()
                .map_err(io)?;
            let count = lines.len();
            for (index, line) in lines.into_iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str(&line) {
                    Ok(entry) => entries.push(entry),
                    Err(_) if index + 1 == count => {}
                    Err(e) => {
                        return Err(JournalError::Corrupt {
                            path: path.to_path_buf(),
                            line: index + 1,
                            message: e.to_string(),
                        });
                    }
                }
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            entries,
            file: None,
        })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The plan checksum recorded by the first run, if any.
    pub fn plan_checksum(&self) -> Option<&str> {
        self.entries.iter().find_map(|e| match e {
            Entry::Plan { plan_checksum, .. } => Some(plan_checksum.as_str()),
            _ => None,
        })
    }

    /// Appends one entry and makes it durable before returning.
    pub fn append(&mut self, entry: Entry) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        if self.file.is_none() {
            if let Some(parent) = self.path.parent() {
                crate::private::create_dir_all(parent).map_err(io)?;
            }
            // A crash mid-append leaves a torn last line (it was never acknowledged): cut it off.
            if self.path.exists() {
                let bytes = std::fs::read(&self.path).map_err(io)?;
                if bytes.last().is_some_and(|b| *b != b'\n') {
                    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&self.path)
                        .map_err(io)?;
                    file.set_len(keep as u64).map_err(io)?;
                    file.sync_data().map_err(io)?;
                }
            }
            let file = crate::private::open_options()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io)?;
            self.file = Some(file);
        }
        let mut line = serde_json::to_string(&entry).expect("journal entries serialize");
        line.push('\n');
        let file = self.file.as_mut().expect("opened above");
        file.write_all(line.as_bytes())
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })?;
        file.sync_data().map_err(|source| JournalError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.entries.push(entry);
        crate::fault::durable_point();
        Ok(())
    }

    /// Every step's state.
    pub fn states(&self) -> BTreeMap<String, StepState> {
        let mut states = BTreeMap::new();
        for entry in &self.entries {
            let (step, state) = match entry {
                Entry::Plan { .. } | Entry::Held { .. } | Entry::WithoutEvidence { .. } => continue,
                Entry::Start {
                    step,
                    action: Action::Apply,
                    ..
                } => (step, StepState::Applying),
                Entry::Start {
                    step,
                    action: Action::Rollback,
                    ..
                } => (step, StepState::RollingBack),
                Entry::Done {
                    step,
                    action: Action::Apply,
                    ..
                } => (step, StepState::Applied),
                Entry::Done {
                    step,
                    action: Action::Rollback,
                    ..
                } => (step, StepState::RolledBack),
                Entry::Failed { step, .. } => (step, StepState::Failed),
            };
            states.insert(step.clone(), state);
        }
        states
    }
}

/// The current time as RFC 3339 UTC, without a date library.
pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_fold_and_torn_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal
            .append(Entry::Plan {
                plan_checksum: "sha256:x".into(),
                fingerprint: "f".into(),
                time: now(),
            })
            .unwrap();
        journal
            .append(Entry::Start {
                step: "a".into(),
                action: Action::Apply,
                time: now(),
            })
            .unwrap();
        journal
            .append(Entry::Done {
                step: "a".into(),
                action: Action::Apply,
                outcome: Outcome::Changed,
                elapsed_ms: 1,
                time: now(),
            })
            .unwrap();
        journal
            .append(Entry::Start {
                step: "b".into(),
                action: Action::Apply,
                time: now(),
            })
            .unwrap();
        drop(journal);
        // A crash mid-append.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"event\":\"done\",\"st").unwrap();
        let mut journal = Journal::open(&path).unwrap();
        assert_eq!(journal.plan_checksum(), Some("sha256:x"));
        // Only the steps it records have a state ("c", say, is pending).
        assert_eq!(
            journal.states(),
            BTreeMap::from([
                ("a".to_string(), StepState::Applied),
                ("b".to_string(), StepState::Applying),
            ])
        );
        journal
            .append(Entry::Done {
                step: "b".into(),
                action: Action::Apply,
                outcome: Outcome::AlreadyDone,
                elapsed_ms: 0,
                time: now(),
            })
            .unwrap();
        let reread = Journal::open(&path).unwrap();
        assert_eq!(
            reread.states().get("b"),
            Some(&StepState::Applied),
            "the torn line was cut off"
        );
        assert_eq!(reread.entries().len(), 5);
    }

    #[test]
    fn a_corrupt_line_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, "garbage\n{\"event\":\"plan\",\"plan_checksum\":\"x\",\"fingerprint\":\"f\",\"time\":\"t\"}\n").unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::Corrupt { line: 1, .. })
        ));
    }

    #[test]
    fn now_is_rfc3339() {
        let text = now();
        assert_eq!(text.len(), 20, "{text}");
        assert!(text.starts_with("20") && text.ends_with('Z'), "{text}");
    }
}
