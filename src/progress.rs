//! What long work (reading a snapshot or a cluster, applying a plan) tells whoever watches it.
//!
//! The core reports through this trait and never draws anything itself: the command line draws a
//! bar on a terminal (`cli::progress`), tests and library callers pass [`Silent`].

/// A watcher of long work: how much there is, how far it got, which stage it is in.
pub trait Progress: Send + Sync {
    /// The amount of work, once it is known (files, list pages, steps).
    fn set_total(&self, total: u64);
    /// The stage the work is in now ("EKS", "IAM", "prepare wave 2").
    fn set_stage(&self, stage: &str);
    /// `done` more units of work finished.
    fn advance(&self, done: u64);
    /// Runs `write` with the display lifted, so that printed lines and the bar never interleave.
    fn suspend(&self, write: &mut dyn FnMut());
    /// The work is over: take the display away.
    fn finish(&self);
}

/// Watches nothing: for tests, benchmarks and library callers without a terminal.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn set_total(&self, _total: u64) {}
    fn set_stage(&self, _stage: &str) {}
    fn advance(&self, _done: u64) {}
    fn suspend(&self, write: &mut dyn FnMut()) {
        write();
    }
    fn finish(&self) {}
}
