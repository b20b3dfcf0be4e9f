//! Steps as unified diffs of `before` and `after`: IAM documents as pretty JSON with sorted keys,
//! Kubernetes fragments as YAML of the fields that change.

use std::fmt::Write;

use serde_json::Value;
use similar::TextDiff;

use crate::plan::{Side, Step};

/// ANSI colours for a terminal; `Plain` for files and pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Color,
}

/// The text one side of a step is shown as.
pub fn side_text(step: &Step, side: &Value) -> String {
    if side.is_null() {
        return String::new();
    }
    if step.target.is_iam() {
        let mut text = serde_json::to_string_pretty(side).unwrap_or_default();
        text.push('\n');
        text
    } else {
        super::yaml::to_string(side)
    }
}

/// [`side_text`] of a side as the plan holds it: an IAM document is re-spaced from its text, not
/// parsed (a fleet's report shows tens of thousands).
fn compact_side_text(step: &Step, side: &Side) -> String {
    if !step.target.is_iam() || side.is_null() {
        return side_text(step, &side.value());
    }
    let mut text = String::with_capacity(side.as_str().len() * 2);
    side.write_pretty(0, &mut text);
    text.push('\n');
    text
}

/// The unified diff of one step, with a header naming the step.
pub fn step_diff(step: &Step, style: Style) -> String {
    let before = compact_side_text(step, &step.before);
    let after = compact_side_text(step, &step.after);
    let old = if step.before.is_null() {
        "/dev/null".to_string()
    } else {
        format!("{} (before)", step.target)
    };
    let new = if step.after.is_null() {
        "/dev/null".to_string()
    } else {
        format!("{} (after)", step.target)
    };
    let text = unified(&before, &after, &old, &new);
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    // Values from the input are shown, never run: escapes are written out before any colour.
    for line in text.lines() {
        let line = super::terminal_safe(line);
        let color = match line.as_bytes().first() {
            _ if style == Style::Plain => None,
            _ if line.starts_with("+++") || line.starts_with("---") => Some("1"),
            Some(b'+') => Some("32"),
            Some(b'-') => Some("31"),
            Some(b'@') => Some("36"),
            _ => None,
        };
        match color {
            Some(code) => out.push_str(&format!("\x1b[{code}m{line}\x1b[0m\n")),
            None => {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

/// The unified diff of two texts, three lines of context. A side that is empty (a creation or a
/// deletion, most of a plan's steps) is written out whole, with no diff to compute.
fn unified(before: &str, after: &str, old: &str, new: &str) -> String {
    let (mark, lines) = match (before.is_empty(), after.is_empty()) {
        (true, false) => ('+', after),
        (false, true) => ('-', before),
        _ => {
            return TextDiff::from_lines(before, after)
                .unified_diff()
                .context_radius(3)
                .header(old, new)
                .to_string();
        }
    };
    let count = lines.split_inclusive('\n').count();
    let mut text = String::with_capacity(lines.len() + count + old.len() + new.len() + 32);
    // As `similar` writes a range: a single line's without its length.
    let whole = if count == 1 {
        "1".to_string()
    } else {
        format!("1,{count}")
    };
    let range = if mark == '+' {
        format!("-0,0 +{whole}")
    } else {
        format!("-{whole} +0,0")
    };
    let _ = writeln!(text, "--- {old}\n+++ {new}\n@@ {range} @@");
    for line in lines.split_inclusive('\n') {
        text.push(mark);
        text.push_str(line);
    }
    if !lines.ends_with('\n') {
        text.push_str("\n\\ No newline at end of file\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::WorkloadKind;
    use crate::plan::{Phase, StepKind, Target};
    use serde_json::json;

    fn step(target: Target, before: Value, after: Value) -> Step {
        Step {
            id: "x".into(),
            phase: Phase::Rollout,
            kind: StepKind::SwitchServiceAccount,
            target,
            description: String::new(),
            before: crate::plan::Side::new(&before),
            after: crate::plan::Side::new(&after),
            owner: None,
        }
    }

    #[test]
    fn kubernetes_fragments_diff_as_yaml() {
        let target = Target::Workload {
            namespace: "ns".into(),
            kind: WorkloadKind::Deployment,
            name: "api".into(),
        };
        let s = step(
            target,
            json!({"spec": {"template": {"spec": {"serviceAccountName": "default"}}}}),
            json!({"spec": {"template": {"spec": {"serviceAccountName": "default-api"}}}}),
        );
        let diff = step_diff(&s, Style::Plain);
        assert!(diff.contains("--- ns/Deployment/api (before)"), "{diff}");
        assert!(
            diff.contains("-      serviceAccountName: default\n"),
            "{diff}"
        );
        assert!(
            diff.contains("+      serviceAccountName: default-api\n"),
            "{diff}"
        );
        assert!(!diff.contains('\x1b'));
        assert!(step_diff(&s, Style::Color).contains("\x1b[32m+"));
    }

    #[test]
    fn escapes_in_values_are_shown_not_run() {
        let target = Target::Workload {
            namespace: "ns".into(),
            kind: WorkloadKind::Deployment,
            name: "api\u{1b}[2K".into(),
        };
        let s = step(target, json!({"a": "x\u{9b}8m"}), json!({"a": "y"}));
        for style in [Style::Plain, Style::Color] {
            let diff = step_diff(&s, style);
            assert!(diff.contains("api\\u001b[2K"), "{diff}");
            assert!(!diff.contains('\u{9b}'), "{diff}");
            let colours = diff.matches('\x1b').count();
            assert_eq!(
                colours,
                if style == Style::Plain {
                    0
                } else {
                    diff.matches("\x1b[").count()
                }
            );
        }
    }

    #[test]
    fn creations_and_deletions_are_written_as_the_line_diff_writes_them() {
        let texts = ["a\nb\n", "one line\n", "no newline", "x\n\ny\n"];
        for text in texts {
            for (before, after) in [(text, ""), ("", text)] {
                let expected = TextDiff::from_lines(before, after)
                    .unified_diff()
                    .context_radius(3)
                    .header("o", "n")
                    .to_string();
                assert_eq!(
                    unified(before, after, "o", "n"),
                    expected,
                    "{before:?} {after:?}"
                );
            }
        }
    }

    #[test]
    fn iam_documents_diff_as_sorted_json_and_creation_is_from_dev_null() {
        let target = Target::Role {
            account: "111122223333".into(),
            arn: crate::iam::arn::RoleArn::parse("arn:aws:iam::111122223333:role/r").unwrap(),
        };
        let s = step(target, Value::Null, json!({"b": 1, "a": [1]}));
        let diff = step_diff(&s, Style::Plain);
        assert!(diff.contains("--- /dev/null"), "{diff}");
        let a = diff.find("+  \"a\"").unwrap();
        let b = diff.find("+  \"b\"").unwrap();
        assert!(a < b, "keys are sorted: {diff}");
    }
}
