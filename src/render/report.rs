//! `report.md`: the dry-run report for a change board, readable on GitHub.
//!
//! Every value from the plan (names, ARNs, messages, diffs) goes through one of the escapes at
//! the end of this file: a crafted value cannot close its code span or fence, open an HTML
//! comment, break a table row or a Mermaid label, and so cannot hide the steps that follow it.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::diff::{Style, step_diff};
use crate::findings::Severity;
use crate::plan::{Phase, Plan, ServiceAccountAction};

pub fn markdown(plan: &Plan, evidence: Option<&crate::evidence::Evidence>) -> String {
    let mut out = String::new();
    let c = &plan.cluster;
    let _ = writeln!(out, "# IRSA migration plan {}\n", code(&plan.name));
    let _ = writeln!(
        out,
        "Cluster **{}** (account {}, {}), OIDC issuer {}.  \nInventory {}; plan schema {}.  \nPlan digest {}: apply and rollback run only the plan with this digest.\n",
        prose(&c.name),
        code(&c.account),
        prose(&c.region),
        code(&c.oidc_issuer),
        code(&plan.fingerprint),
        code(&plan.schema),
        code(&plan.digest())
    );
    let (moved, created) = (plan.moved_workloads(), plan.created_service_accounts());
    out.push_str("## Summary\n\n| | count |\n|---|---|\n");
    let _ = writeln!(out, "| workloads moving to IRSA | {moved} |");
    let kept = plan
        .bindings
        .iter()
        .filter(|b| b.service_account_action == ServiceAccountAction::Keep)
        .count();
    let _ = writeln!(
        out,
        "| service accounts annotated in place | {} |",
        plan.bindings.len() - created - kept
    );
    let _ = writeln!(out, "| service accounts already annotated | {kept} |");
    let _ = writeln!(out, "| dedicated service accounts created | {created} |");
    let _ = writeln!(out, "| workloads not migrated | {} |", plan.skipped.len());
    for severity in [Severity::Error, Severity::Warning, Severity::Info] {
        let _ = writeln!(
            out,
            "| findings: {severity} | {} |",
            plan.findings
                .iter()
                .filter(|f| f.severity == severity)
                .count()
        );
    }
    for phase in Phase::ALL {
        let _ = writeln!(
            out,
            "| steps in `{phase}` | {} |",
            plan.steps.iter().filter(|s| s.phase == phase).count()
        );
    }

    out.push_str(&super::owners::markdown(plan));
    out.push_str("\n## Who gets which role\n\n```mermaid\nflowchart LR\n");
    let mut ids = BTreeMap::new();
    let mut id = |key: String| {
        let next = ids.len();
        ids.entry(key).or_insert(next).to_string()
    };
    let mut edges = Vec::new();
    for binding in &plan.bindings {
        let ns = id(format!("ns:{}", binding.namespace));
        let sa = id(format!(
            "sa:{}/{}",
            binding.namespace, binding.service_account
        ));
        let role = id(format!("role:{}", binding.role_arn));
        edges.push(format!(
            "  n{ns}[\"namespace {}\"] --> n{sa}([\"{}\"])",
            mermaid(&binding.namespace),
            mermaid(&binding.service_account)
        ));
        edges.push(format!(
            "  n{sa} --> n{role}{{{{\"{}\"}}}}",
            mermaid(binding.role_arn.as_str())
        ));
    }
    edges.dedup();
    for edge in edges {
        let _ = writeln!(out, "{edge}");
    }
    out.push_str("```\n");

    let mut by_namespace: BTreeMap<&str, Vec<[String; 4]>> = BTreeMap::new();
    for binding in &plan.bindings {
        let workloads: Vec<String> = binding
            .workloads
            .iter()
            .map(|w| format!("{} {}", w.kind, cell_code(&w.name)))
            .collect();
        let action = match binding.service_account_action {
            ServiceAccountAction::Reuse => "annotate".to_string(),
            ServiceAccountAction::Keep => "already annotated".to_string(),
            ServiceAccountAction::Create => {
                format!("create (from {})", cell_code(&binding.from_service_account))
            }
        };
        by_namespace.entry(&binding.namespace).or_default().push([
            cell_code(&binding.service_account),
            action,
            cell_code(binding.role_arn.as_str()),
            workloads.join(", "),
        ]);
    }
    out.push_str("\n## Bindings by namespace\n");
    for (namespace, rows) in by_namespace {
        let _ = write!(out, "\n### {}\n\n", code(namespace));
        let columns = ["service account", "action", "role", "workloads"];
        table(&mut out, columns, rows);
    }
    if !plan.skipped.is_empty() {
        out.push_str("\n## Not migrated\n\n");
        let rows = plan.skipped.iter().map(|skipped| {
            [
                format!(
                    "{}/{} {}",
                    prose(&skipped.namespace),
                    skipped.kind,
                    cell_code(&skipped.name)
                ),
                format!("[`{0}`](../../docs/findings.md#{0})", skipped.reason),
                prose(&skipped.message),
            ]
        });
        table(&mut out, ["workload", "reason", "detail"], rows);
    }
    out.push_str("\n## Findings\n");
    for (severity, findings) in crate::findings::by_severity(&plan.findings) {
        let _ = writeln!(out, "\n### {severity} ({})\n", findings.len());
        for finding in findings {
            let _ = writeln!(
                out,
                "- **`{}`** {}: {}",
                finding.code,
                prose(&finding.subject.to_string()),
                prose(&finding.message)
            );
        }
    }
    out.push_str("\nEach code's meaning and remedy: [docs/findings.md](../../docs/findings.md).\n");
    if !plan.accounts.is_empty() {
        out.push_str("\n## AWS accounts written to\n\n");
        let rows = plan.accounts.iter().map(|account| {
            [
                cell_code(&account.account),
                account.steps.to_string(),
                prose(&account.credentials),
                account.iam_data_in_source.to_string(),
            ]
        });
        let columns = ["account", "steps", "credentials", "IAM data in source"];
        table(&mut out, columns, rows);
    }
    out.push_str("\n## Changes by phase\n");
    for phase in Phase::ALL {
        let steps: Vec<_> = plan.steps.iter().filter(|s| s.phase == phase).collect();
        let _ = writeln!(out, "\n### `{phase}` ({} steps)\n", steps.len());
        for step in steps {
            let made_by = match &step.owner {
                Some(owner) => format!(" Made by its owner, {}.", prose(&owner.to_string())),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "#### {}\n\n{}{made_by}\n\n{}",
                code(&step.id),
                prose(&step.description),
                fenced("diff", &step_diff(step, Style::Plain))
            );
        }
    }
    out.push_str(&super::evidence::markdown(evidence));
    out.push_str("\n## After decommission\n\n");
    for line in &plan.decommission.kept {
        let _ = writeln!(out, "- Kept: {}", prose(line));
    }
    out.push_str("\nDelete the legacy agents once every workload runs on IRSA:\n\n");
    let commands: String = plan
        .decommission
        .delete_agents
        .iter()
        .filter(|l| l.starts_with("kubectl"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&fenced("sh", &commands));
    out.push('\n');
    for line in plan
        .decommission
        .delete_agents
        .iter()
        .filter(|l| !l.starts_with("kubectl"))
    {
        let _ = writeln!(out, "Note: {}.\n", prose(line));
    }
    out.push_str("Then lock the instance metadata endpoint so pods cannot fall back to the node role (IMDSv2 required, hop limit 1):\n\n");
    let first = plan
        .decommission
        .lock_imds
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    out.push_str(&fenced("sh", &format!("{first}\n")));
    out.push('\n');
    for line in plan.decommission.lock_imds.iter().skip(1) {
        let _ = writeln!(out, "{}.", prose(line));
    }
    out
}

/// Characters no report value is shown with: controls (a newline would end a table row) become
/// `\u00XX`, as on the terminal.
/// A Markdown table: a header row of `columns`, then a row of cells each (already escaped).
fn table<const N: usize>(
    out: &mut String,
    columns: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) {
    let _ = writeln!(out, "| {} |\n|{}", columns.join(" | "), "---|".repeat(N));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

fn one_line(text: &str) -> String {
    super::terminal_safe(text)
        .replace('\n', "\\u000a")
        .replace('\t', " ")
}

/// Text shown as text: every Markdown and HTML character escaped with a backslash (CommonMark
/// shows the character itself), so no value becomes a link, an HTML comment or a table cell.
pub(super) fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in one_line(text).chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '['
                | ']'
                | '<'
                | '>'
                | '|'
                | '~'
                | '&'
                | '!'
                | '#'
                | '{'
                | '}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An inline code span that nothing in `text` can close: its backtick fence is longer than any
/// run of backticks inside.
pub(super) fn code(text: &str) -> String {
    let text = one_line(text);
    let fence = "`".repeat(longest_run(&text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// [`code`] inside a table row: GitHub ends a cell at any `|`, in a code span too, unless escaped.
pub(super) fn cell_code(text: &str) -> String {
    code(text).replace('|', "\\|")
}

/// A fenced block that nothing in `body` can close.
fn fenced(info: &str, body: &str) -> String {
    let fence = "`".repeat((longest_run(body, '`') + 1).max(3));
    let body = super::terminal_safe(body);
    let newline = if body.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{info}\n{body}{newline}{fence}\n")
}

/// A Mermaid node label: quotes, backticks and angle brackets as Mermaid's entity codes.
fn mermaid(text: &str) -> String {
    one_line(text)
        .replace('"', "#quot;")
        .replace('`', "#96;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut current) = (0, 0);
    for found in text.chars() {
        current = if found == c { current + 1 } else { 0 };
        longest = longest.max(current);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report as a CommonMark renderer sees its raw text: fenced blocks and code spans
    /// removed, backslash-escaped characters dropped (they are shown, never interpreted).
    fn outside_code(markdown: &str) -> String {
        let mut out = String::new();
        let mut fence: Option<usize> = None;
        for line in markdown.lines() {
            let run = line.chars().take_while(|&c| c == '`').count();
            match fence {
                Some(open) => {
                    if run >= open && line[run..].trim().is_empty() {
                        fence = None;
                    }
                    continue;
                }
                None if run >= 3 => {
                    fence = Some(run);
                    continue;
                }
                None => {}
            }
            let chars: Vec<char> = line.chars().collect();
            let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
            let mut i = 0;
            while i < chars.len() {
                match chars[i] {
                    '`' => {
                        let n = run_at(i);
                        let mut j = i + n;
                        let mut close = None;
                        while j < chars.len() {
                            if chars[j] == '`' {
                                let m = run_at(j);
                                if m == n {
                                    close = Some(j + m);
                                    break;
                                }
                                j += m;
                            } else {
                                j += 1;
                            }
                        }
                        match close {
                            Some(end) => i = end,
                            None => {
                                out.extend(&chars[i..i + n]);
                                i += n;
                            }
                        }
                    }
                    '\\' if i + 1 < chars.len() => i += 2,
                    c => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    fn unescaped_pipes(line: &str) -> usize {
        line.match_indices('|')
            .filter(|(i, _)| !line[..*i].ends_with('\\'))
            .count()
    }

    #[test]
    fn crafted_role_arns_cannot_hide_the_steps_that_follow() {
        // Regression: two role ARNs whose IAM paths held a backtick and `<!--` / `-->` opened an
        // HTML comment in report.md that hid every trust step between them.
        let inventory = crate::inventory::demo::inventory().unwrap();
        let mut plan = crate::plan::plan(&inventory, "demo", &Default::default()).unwrap();
        let crafted = [
            "arn:aws:iam::111122223333:role/x`<!--|/checkout-web",
            "arn:aws:iam::111122223333:role/-->`|/payments-worker",
        ];
        for (binding, arn) in plan.bindings.iter_mut().step_by(4).zip(crafted) {
            for step in &mut plan.steps {
                if let crate::plan::Target::Role { arn: target, .. } = &mut step.target
                    && *target == binding.role_arn
                {
                    *target = crate::iam::arn::RoleArn::parse(arn).unwrap();
                    step.id = format!("{}:{}", step.kind.as_str(), step.target);
                    step.description = format!("trust `{arn}` <!-- | [x](javascript:y)");
                }
            }
            binding.role_arn = crate::iam::arn::RoleArn::parse(arn).unwrap();
        }
        let report = markdown(&plan, None);
        let text = outside_code(&report);
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(
            !text.contains("](javascript"),
            "a value made a link: {text}"
        );
        for step in &plan.steps {
            let heading = format!("#### {}", code(&step.id));
            assert!(
                report.lines().any(|l| l == heading),
                "no heading for {}",
                step.id
            );
        }
        let mut header = None;
        for line in report.lines() {
            if !line.starts_with('|') {
                header = None;
                continue;
            }
            let cells = unescaped_pipes(line);
            assert_eq!(
                *header.get_or_insert(cells),
                cells,
                "a table row broke: {line}"
            );
        }
        let mermaid = report
            .split("```mermaid")
            .nth(1)
            .unwrap()
            .split("```\n")
            .next()
            .unwrap();
        assert!(
            !mermaid.contains('`') && !mermaid.contains('<'),
            "{mermaid}"
        );
        for line in mermaid.lines().filter(|l| l.contains("-->")) {
            assert!(matches!(line.matches('"').count(), 2 | 4), "{line}");
        }
    }
}
