//! A target against a step's two sides: which side a direction moves from and to, whether the
//! target is in one, and the stop (with a diff) when it is in neither.

use serde_json::Value;

use super::{ApplyError, Direction};
use crate::plan::Step;
use crate::plan::fragment;

/// The state a step moves from and to in this direction.
pub(super) fn sides(step: &Step, direction: Direction) -> (Value, Value) {
    match direction {
        Direction::Apply => (step.before.value(), step.after.value()),
        Direction::Rollback => (step.after.value(), step.before.value()),
    }
}

/// Whether the target is in the state `side` describes.
pub(super) fn matches(step: &Step, observed: &Value, side: &Value) -> bool {
    if step.kind.is_document() {
        observed == side
    } else {
        fragment::same_state(observed, side)
    }
}

pub(super) fn stale(step: &Step, expected: &Value, observed: &Value, changed: usize) -> ApplyError {
    let shown = |side: &Value| crate::render::diff::side_text(step, side);
    let diff = similar::TextDiff::from_lines(&shown(expected), &shown(observed))
        .unified_diff()
        .context_radius(3)
        .to_string();
    ApplyError::Stale {
        step: step.id.clone(),
        target: step.target.to_string(),
        diff,
        written: if changed == 0 {
            ", nothing was written".into()
        } else {
            format!(" after {changed} change(s) in this run")
        },
    }
}
