//! The migration directory's lock: one writer (`apply`, `rollback`, `plan`) per migration at a time.
//!
//! `<dir>/.lock` is locked exclusively (`flock` on Unix) for the whole run and records who holds
//! it: pid, host, start time and command. The operating system releases the lock when its holder
//! exits, however it exits, so a killed run never blocks the next one. The file stays: a run that
//! ends clears its record, a killed one leaves it for the next holder to overwrite. Locking the
//! file, not creating it, is what excludes: a lock file that is created and deleted can be taken
//! twice when one run deletes it as another opens it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::ApplyError;

/// The lock file's name inside a migration directory.
pub const LOCK_FILE: &str = ".lock";

/// Held until dropped (or the process ends).
#[derive(Debug)]
pub struct MigrationLock {
    // Kept open: closing the file releases the lock.
    file: File,
}

/// How long a refused run waits for the holder's record to be readable.
const RECORD_WAIT: Duration = Duration::from_millis(500);

/// Who holds the lock, as its holder writes it into the lock file.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    pid: u32,
    host: String,
    started: String,
    command: String,
}

impl MigrationLock {
    /// Takes the lock on the migration directory `dir` for `command` (what the holder record
    /// shows), or fails at once with who holds it.
    pub fn acquire(dir: &Path, command: &str) -> Result<MigrationLock, ApplyError> {
        let path = dir.join(LOCK_FILE);
        let failed = |source| ApplyError::LockFailed {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(failed)?;
        // A holder writes its record just after taking the lock and clears it just before
        // letting go: a record that is empty or half written is read again, briefly.
        let deadline = Instant::now() + RECORD_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let mut record = String::new();
                    let read = file.rewind().and_then(|_| file.read_to_string(&mut record));
                    let holder = read
                        .ok()
                        .and_then(|_| serde_json::from_str::<Holder>(record.trim()).ok());
                    if holder.is_some() || Instant::now() >= deadline {
                        return Err(ApplyError::Locked {
                            path,
                            holder: describe(holder.as_ref()),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TryLockError::Error(source)) => return Err(failed(source)),
            }
        }
        let holder = Holder {
            pid: std::process::id(),
            host: hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "an unknown host".into()),
            started: super::journal::now(),
            command: command.to_string(),
        };
        let mut record = serde_json::to_string(&holder).expect("a holder record serializes");
        record.push('\n');
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(record.as_bytes()))
            .and_then(|_| file.sync_data())
            .map_err(failed)?;
        Ok(MigrationLock { file })
    }
}

impl Drop for MigrationLock {
    /// Clears the record before the lock goes (with the file), so it never names a finished
    /// run. A killed holder leaves its record, which the next holder overwrites.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// The holder record in words.
fn describe(holder: Option<&Holder>) -> String {
    match holder {
        Some(h) => format!(
            "pid {} on {}, started {} (`{}`)",
            h.pid, h.host, h.started, h.command
        ),
        None => "a process that has not recorded itself".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first_and_gets_it_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = MigrationLock::acquire(dir.path(), "irsa-migrate apply --phase all").unwrap();
        match MigrationLock::acquire(dir.path(), "irsa-migrate rollback --all") {
            Err(ApplyError::Locked { holder, path }) => {
                assert_eq!(path, dir.path().join(LOCK_FILE));
                assert!(
                    holder.contains(&format!("pid {}", std::process::id()))
                        && holder.contains("`irsa-migrate apply --phase all`"),
                    "{holder}"
                );
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        MigrationLock::acquire(dir.path(), "irsa-migrate rollback --all")
            .expect("free once the holder is gone");
    }

    #[test]
    fn a_released_lock_leaves_no_record_behind() {
        let dir = tempfile::tempdir().unwrap();
        drop(MigrationLock::acquire(dir.path(), "irsa-migrate plan").unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
            ""
        );
    }
}
