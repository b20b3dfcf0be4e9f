//! Fault injection for crash tests: `IRSA_MIGRATE_KILL_AT=N` makes the process kill itself with
//! SIGKILL at its N-th durability point (a journal append or a committed state write), so tests
//! can stop the real binary at every point of a run. Unset, it does nothing.
//!
//! It sits below everything that writes durably (the journal in `apply`, the rehearsal in
//! `backend`), so neither imports the other to mark its points.

use std::sync::atomic::{AtomicU64, Ordering};

static POINTS: AtomicU64 = AtomicU64::new(0);

/// Marks a durability point (called once the write it follows is durable): counted, and the
/// process killed here if it is the N-th.
pub fn durable_point() {
    let reached = POINTS.fetch_add(1, Ordering::SeqCst) + 1;
    let Some(kill_at) = std::env::var("IRSA_MIGRATE_KILL_AT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    if reached == kill_at {
        let pid = std::process::id().to_string();
        // SIGKILL, as an operator's `kill -9` or the OOM killer would: no destructors, no flushing.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}
