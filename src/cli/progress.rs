//! The terminal's side of [`crate::progress::Progress`]: an indicatif bar on stderr, drawn only
//! when stderr is a terminal.

use crate::progress::Progress;

/// A progress bar on stderr, styled by an indicatif template such as
/// `"reading snapshot {bar:30} {pos}/{len} files"`.
#[derive(Clone)]
pub struct Bar(indicatif::ProgressBar);

impl Bar {
    pub fn new(template: &str) -> Self {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self(bar)
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn set_stage(&self, stage: &str) {
        self.0.set_message(stage.to_string());
    }
    fn advance(&self, done: u64) {
        self.0.inc(done);
    }
    fn suspend(&self, write: &mut dyn FnMut()) {
        self.0.suspend(write);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
