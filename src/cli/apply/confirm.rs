//! The confirmation before a run writes: the plan's digest and each change as a diff, asked on
//! the terminal unless `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use crate::apply::{Direction, Preview};
use crate::plan::Plan;

/// How many changes the confirmation shows as diffs; `irsa-migrate diff` shows them all.
const CONFIRM_DIFFS: usize = 20;

/// What the confirmation shows: the plan's digest (as report.md shows it), then each change to
/// be made as a diff in the run's direction.
pub(super) fn confirmation_text(
    plan: &Plan,
    digest: &str,
    preview: &Preview,
    direction: Direction,
    style: crate::render::diff::Style,
) -> String {
    let mut text = format!(
        "Plan {} (digest {digest}): {} change(s) to {} ({} already in place):\n",
        plan.name,
        preview.to_change.len(),
        preview.destination,
        preview.already_done
    );
    if !preview.awaiting_owner.is_empty() {
        text.push_str(&format!(
            "{} step(s) are their owners' to make; this run only reads whether they have\n",
            preview.awaiting_owner.len()
        ));
    }
    for id in preview.to_change.iter().take(CONFIRM_DIFFS) {
        let Some(step) = plan.steps.iter().find(|s| &s.id == id) else {
            text.push_str(&format!("  {id}\n"));
            continue;
        };
        let mut shown = step.clone();
        if direction == Direction::Rollback {
            std::mem::swap(&mut shown.before, &mut shown.after);
        }
        text.push_str(&format!("\n{}:\n", step.id));
        text.push_str(&crate::render::diff::step_diff(&shown, style));
    }
    if preview.to_change.len() > CONFIRM_DIFFS {
        text.push_str(&format!(
            "\n… and {} more (`irsa-migrate diff` shows every step)\n",
            preview.to_change.len() - CONFIRM_DIFFS
        ));
    }
    text
}

/// Asks on the terminal, showing `text` of the preview; refuses without one unless `--yes`.
pub(super) fn confirmer(
    yes: bool,
    verb: &'static str,
    text: impl Fn(&Preview) -> String,
) -> impl FnMut(&Preview) -> bool {
    move |preview: &Preview| {
        if yes {
            return true;
        }
        if !std::io::stdin().is_terminal() {
            return false;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{}", crate::render::terminal_safe(&text(preview)));
        let _ = write!(stderr, "\n{verb} them? [y/N] ");
        let _ = stderr.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The confirmation showed step ids; the change board approved diffs and a digest.
    #[test]
    fn the_confirmation_shows_the_digest_and_each_change_as_a_diff_in_the_runs_direction() {
        let inventory = crate::inventory::demo::inventory().unwrap();
        let plan = crate::plan::plan(&inventory, "demo", &Default::default()).unwrap();
        let step = plan
            .steps
            .iter()
            .find(|s| s.id.starts_with("annotate-service-account:checkout/"))
            .unwrap();
        let preview = Preview {
            to_change: vec![step.id.clone()],
            already_done: 2,
            destination: "the rehearsal".into(),
            ..Preview::default()
        };
        let plain = crate::render::diff::Style::Plain;
        let text = confirmation_text(&plan, &plan.digest(), &preview, Direction::Apply, plain);
        assert!(
            text.starts_with(&format!(
                "Plan demo (digest {}): 1 change(s) to the rehearsal (2 already in place):",
                plan.digest()
            )),
            "{text}"
        );
        let added = text
            .lines()
            .find(|l| l.starts_with('+') && l.contains("eks.amazonaws.com/role-arn"));
        assert!(added.is_some(), "{text}");
        let back = confirmation_text(&plan, &plan.digest(), &preview, Direction::Rollback, plain);
        let removed = back
            .lines()
            .find(|l| l.starts_with('-') && l.contains("eks.amazonaws.com/role-arn"));
        assert!(removed.is_some(), "{back}");
    }
}
