//! `report.md`: the dry-run report for a change board, readable on GitHub at any size. The top
//! page holds the summary, what needs attention first, findings by code, who must act and the
//! diagram; the details of each namespace follow inline, or, once the report would pass
//! [`PAGE_LIMIT`], on pages under `report/` that the top page links to (`report_pages`).
//!
//! Every value from the plan goes through one of the escapes of [`super::md`].

use std::collections::BTreeMap;
use std::fmt::Write;

use super::md::{cell_code, code, fenced, prose, table};
use super::{report_detail, report_pages};
use crate::findings::{Code, Severity};
use crate::plan::{Phase, Plan, ServiceAccountAction};

/// About the size GitHub still renders at ease: a report that would pass it moves its details
/// to linked pages.
pub const PAGE_LIMIT: usize = 1_000_000;

/// The directory, beside report.md, of the detail pages.
pub const PAGES_DIR: &str = "report";

/// Rows of a table on the top page before it says how many more the details hold.
const ROWS_SHOWN: usize = 50;

/// The findings a change board must see first: what widens access or cannot be made as planned.
const RISKY: [Code; 4] = [
    Code::CrossAccountRole,
    Code::SharedServiceAccount,
    Code::TrustPolicyTooLarge,
    Code::ExternalId,
];

/// report.md and, for a large plan, its pages (file names under [`PAGES_DIR`]).
pub struct Report<'p> {
    pub top: String,
    pub pages: Vec<Page<'p>>,
}

pub use super::report_pages::Page;

pub fn markdown<'p>(plan: &'p Plan, evidence: Option<&crate::evidence::Evidence>) -> Report<'p> {
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
    summary(&mut out, plan);
    attention(&mut out, plan);
    findings_by_code(&mut out, plan);
    out.push_str(&super::owners::markdown(plan));
    out.push_str("\n## Who gets which role\n\n");
    out.push_str(&super::report_graph::markdown(plan));
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
    let mut end = String::new();
    after(&mut end, plan, evidence);

    let scopes = report_detail::scopes(plan);
    // Inline while the whole stays within the limit; past it, the details go to pages (and
    // the inline text, at most the limit, is dropped).
    let mut inline = String::from("\n## Details by namespace\n");
    let room = PAGE_LIMIT.saturating_sub(out.len() + end.len());
    let fits = scopes.iter().all(|(namespace, scope)| {
        let _ = writeln!(inline, "\n### {}", report_pages::title(*namespace, None));
        report_detail::write_within(&mut inline, scope, 4, "../../docs", room)
    });
    let mut pages = Vec::new();
    if fits {
        out.push_str(&inline);
    } else {
        drop(inline);
        out.push_str("\n## Details by namespace\n\nEach namespace's bindings, workloads not migrated, findings and changes (with their diffs) are on the pages linked here; a namespace too large for one page continues on the next:\n\n");
        let counts: Vec<_> = scopes
            .iter()
            .map(|(namespace, scope)| {
                let count = |n: usize| n.to_string();
                (
                    *namespace,
                    [
                        count(scope.bindings.len()),
                        count(scope.workloads()),
                        count(scope.skipped.len()),
                        count(scope.steps.len()),
                    ],
                )
            })
            .collect();
        let (packed, links) = report_pages::pack(scopes, &plan.name);
        let rows = counts.into_iter().map(|(namespace, [a, b, c, d])| {
            let link = links.get(&namespace).cloned().unwrap_or_default();
            let title = prose(&report_pages::title(namespace, None));
            [format!("[{title}]({PAGES_DIR}/{link})"), a, b, c, d]
        });
        table(
            &mut out,
            [
                "details",
                "service accounts",
                "workloads",
                "not migrated",
                "steps",
            ],
            rows,
        );
        pages = packed;
    }
    out.push_str(&end);
    Report { top: out, pages }
}

fn summary(out: &mut String, plan: &Plan) {
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
}

/// What a change board must look at before anything else: workloads left behind, and the
/// findings that widen access or cannot be planned as they are.
fn attention(out: &mut String, plan: &Plan) {
    let risky: Vec<_> = plan
        .findings
        .iter()
        .filter(|f| RISKY.contains(&f.code))
        .collect();
    if plan.skipped.is_empty() && risky.is_empty() {
        return;
    }
    out.push_str("\n## Needs attention first\n\n");
    if !plan.skipped.is_empty() {
        let _ = writeln!(
            out,
            "{} workload(s) are **not migrated** and keep the legacy path; by reason (each namespace's details list its own):\n",
            plan.skipped.len()
        );
        let mut by_reason: BTreeMap<(std::cmp::Reverse<Severity>, Code), Vec<String>> =
            BTreeMap::new();
        for skipped in &plan.skipped {
            by_reason
                .entry((std::cmp::Reverse(skipped.reason.severity()), skipped.reason))
                .or_default()
                .push(format!(
                    "{}/{} {}",
                    prose(&skipped.namespace),
                    skipped.kind,
                    cell_code(&skipped.name)
                ));
        }
        let rows = by_reason.into_iter().map(|((_, reason), workloads)| {
            let examples: Vec<&str> = workloads.iter().take(3).map(String::as_str).collect();
            let more = match workloads.len() {
                n if n > 3 => format!(", and {} more", n - 3),
                _ => String::new(),
            };
            [
                format!("[`{0}`](../../docs/findings.md#{0})", reason),
                workloads.len().to_string(),
                format!("{}{more}", examples.join(", ")),
            ]
        });
        table(out, ["reason", "workloads", "which"], rows);
    }
    if !risky.is_empty() {
        out.push_str("\nFindings that widen access or cannot be made as planned:\n\n");
        let rows = risky.iter().take(ROWS_SHOWN).map(|finding| {
            [
                format!("[`{0}`](../../docs/findings.md#{0})", finding.code),
                prose(&finding.subject.to_string()),
                prose(&finding.message),
            ]
        });
        table(out, ["finding", "subject", "detail"], rows);
        more(out, risky.len());
    }
}

fn more(out: &mut String, rows: usize) {
    if rows > ROWS_SHOWN {
        let _ = writeln!(
            out,
            "\n... and {} more, in the details by namespace.",
            rows - ROWS_SHOWN
        );
    }
}

/// Every finding code with its count and a first subject; the findings themselves are in the
/// details.
fn findings_by_code(out: &mut String, plan: &Plan) {
    let mut by_code: BTreeMap<(std::cmp::Reverse<Severity>, Code), (usize, String)> =
        BTreeMap::new();
    for finding in &plan.findings {
        let entry = by_code
            .entry((std::cmp::Reverse(finding.severity), finding.code))
            .or_insert_with(|| (0, finding.subject.to_string()));
        entry.0 += 1;
    }
    out.push_str("\n## Findings by code\n\n");
    if by_code.is_empty() {
        out.push_str("None.\n");
        return;
    }
    let rows = by_code
        .into_iter()
        .map(|((severity, code), (count, first))| {
            [
                format!("[`{0}`](../../docs/findings.md#{0})", code),
                severity.0.to_string(),
                count.to_string(),
                prose(&first),
            ]
        });
    table(out, ["code", "severity", "count", "for example"], rows);
    out.push_str("\nEach code's meaning and remedy: [docs/findings.md](../../docs/findings.md).\n");
}

fn after(out: &mut String, plan: &Plan, evidence: Option<&crate::evidence::Evidence>) {
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
        let report = markdown(&plan, None).top;
        // The one HTML the report writes itself: the folds of the diffs.
        let text = outside_code(&report)
            .replace("<details><summary>diff</summary>", "")
            .replace("</details>", "");
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(
            !text.contains("](javascript"),
            "a value made a link: {text}"
        );
        for step in &plan.steps {
            let heading = format!("# {}", code(&step.id));
            assert!(
                report
                    .lines()
                    .any(|l| l.starts_with('#') && l.ends_with(&heading)),
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
