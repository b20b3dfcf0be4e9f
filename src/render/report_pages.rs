//! A large report's details, packed into pages under `report/`: consecutive namespaces share a
//! page until it holds about [`ITEMS_PER_PAGE`] table rows, findings and diffs (about a megabyte
//! of Markdown), and a namespace's block (or the IAM block) larger than that is cut into parts,
//! each on a page of its own. So every page stays readable, and a fleet of thousands of
//! namespaces is tens of files, not thousands (a filesystem's cost of creating a file is many
//! times that of writing its bytes).

use std::collections::BTreeMap;

use super::md::code;
use super::report_detail::{self, Scope};

/// Rows, findings and steps a page holds before the next block starts a page of its own.
pub const ITEMS_PER_PAGE: usize = 600;

/// A page of details, rendered when it is written ([`Page::markdown`]): the pages of a large plan
/// are tens of megabytes together.
pub struct Page<'p> {
    /// Its file name.
    pub name: String,
    blocks: Vec<Block<'p>>,
    number: usize,
    of: usize,
    plan: &'p str,
}

/// One namespace's details on a page, or a part of them.
struct Block<'p> {
    namespace: Option<&'p str>,
    /// Its part and how many parts the block was cut into, when it was.
    part: Option<(usize, usize)>,
    scope: Scope<'p>,
}

impl Page<'_> {
    pub fn markdown(&self) -> String {
        let mut page = format!(
            "# Details of plan {}, page {} of {}\n\n[Back to report.md](../report.md)\n",
            code(self.plan),
            self.number,
            self.of
        );
        for block in &self.blocks {
            page.push_str(&format!("\n## {}\n", title(block.namespace, block.part)));
            page.push_str(&report_detail::markdown(&block.scope, 3, "../../../docs"));
        }
        page
    }
}

/// A details block's heading: the namespace, or what belongs to none, and its part.
pub fn title(namespace: Option<&str>, part: Option<(usize, usize)>) -> String {
    let block = match namespace {
        Some(namespace) => format!("Namespace {}", code(namespace)),
        None => "IAM and cluster-wide".to_string(),
    };
    match part {
        Some((part, of)) => format!("{block} (part {part} of {of})"),
        None => block,
    }
}

/// The pages of `scopes`, and for each scope the link (relative to `report/`) to where its
/// details start.
pub fn pack<'p>(
    scopes: BTreeMap<Option<&'p str>, Scope<'p>>,
    plan: &'p str,
) -> (Vec<Page<'p>>, BTreeMap<Option<&'p str>, String>) {
    let mut pages: Vec<Vec<Block<'p>>> = Vec::new();
    let mut filled = ITEMS_PER_PAGE;
    let mut starts = BTreeMap::new();
    for (namespace, scope) in scopes {
        let parts = cut(scope);
        let count = parts.len();
        for (index, part) in parts.into_iter().enumerate() {
            let items = items(&part);
            if filled + items > ITEMS_PER_PAGE || count > 1 {
                pages.push(Vec::new());
                filled = 0;
            }
            filled += items;
            let part_of = (count > 1).then_some((index + 1, count));
            if index == 0 {
                starts.insert(namespace, (pages.len(), anchor(namespace, part_of)));
            }
            if let Some(page) = pages.last_mut() {
                page.push(Block {
                    namespace,
                    part: part_of,
                    scope: part,
                });
            }
        }
        if count > 1 {
            // The last part's page is its own too.
            filled = ITEMS_PER_PAGE;
        }
    }
    let of = pages.len();
    let links = starts
        .into_iter()
        .map(|(namespace, (page, anchor))| (namespace, format!("{}{anchor}", page_name(page))))
        .collect();
    let pages = pages
        .into_iter()
        .enumerate()
        .map(|(index, blocks)| Page {
            name: page_name(index + 1),
            blocks,
            number: index + 1,
            of,
            plan,
        })
        .collect();
    (pages, links)
}

fn page_name(number: usize) -> String {
    format!("details-{number:04}.md")
}

fn items(scope: &Scope<'_>) -> usize {
    scope.bindings.len() + scope.skipped.len() + scope.findings.len() + scope.steps.len()
}

/// `scope` cut into parts of at most [`ITEMS_PER_PAGE`] items (its tables and findings in the
/// first, whole), or itself when it fits.
fn cut(scope: Scope<'_>) -> Vec<Scope<'_>> {
    if items(&scope) <= ITEMS_PER_PAGE {
        return vec![scope];
    }
    let first = ITEMS_PER_PAGE.saturating_sub(items(&scope) - scope.steps.len());
    let mut steps = scope.steps.into_iter();
    let mut parts = vec![Scope {
        bindings: scope.bindings,
        skipped: scope.skipped,
        findings: scope.findings,
        steps: steps.by_ref().take(first).collect(),
    }];
    loop {
        let chunk: Vec<_> = steps.by_ref().take(ITEMS_PER_PAGE).collect();
        if chunk.is_empty() {
            return parts;
        }
        parts.push(Scope {
            steps: chunk,
            ..Scope::default()
        });
    }
}

/// The `#fragment` GitHub gives a block's heading ([`title`]): lowercased, punctuation but `-`
/// dropped, spaces as `-`. None for a namespace that is not a DNS label, whose escaped heading
/// GitHub may name otherwise (the link then opens the page at its top).
fn anchor(namespace: Option<&str>, part: Option<(usize, usize)>) -> String {
    if namespace.is_some_and(|n| !crate::names::is_dns1123_label(n)) {
        return String::new();
    }
    let heading = title(namespace, part).replace('`', "");
    let slug: String = heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect();
    format!("#{slug}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope_of(steps: usize) -> Scope<'static> {
        let step: &'static crate::plan::Step = Box::leak(Box::new(crate::plan::Step {
            id: "x".into(),
            phase: crate::plan::Phase::Rollout,
            kind: crate::plan::StepKind::RestartWorkload,
            target: crate::plan::Target::Workload {
                namespace: "a".into(),
                kind: crate::inventory::WorkloadKind::Deployment,
                name: "w".into(),
            },
            description: String::new(),
            before: crate::plan::Side::new(&serde_json::Value::Null),
            after: crate::plan::Side::new(&serde_json::Value::Null),
            owner: None,
        }));
        Scope {
            steps: vec![step; steps],
            ..Scope::default()
        }
    }

    #[test]
    fn small_namespaces_share_pages_and_a_large_block_is_cut_into_pages_of_its_own() {
        let mut scopes = BTreeMap::new();
        scopes.insert(None, scope_of(ITEMS_PER_PAGE * 2 + 1));
        for namespace in ["a", "b", "c"] {
            scopes.insert(Some(namespace), scope_of(ITEMS_PER_PAGE / 2));
        }
        let (pages, links) = pack(scopes, "p");
        // Each page's blocks: namespace, part, steps.
        type Shape<'a> = (Option<&'a str>, Option<(usize, usize)>, usize);
        let shapes: Vec<Vec<Shape>> = pages
            .iter()
            .map(|p| {
                p.blocks
                    .iter()
                    .map(|b| (b.namespace, b.part, b.scope.steps.len()))
                    .collect()
            })
            .collect();
        let half = ITEMS_PER_PAGE / 2;
        assert_eq!(
            shapes,
            vec![
                vec![(None, Some((1, 3)), ITEMS_PER_PAGE)],
                vec![(None, Some((2, 3)), ITEMS_PER_PAGE)],
                vec![(None, Some((3, 3)), 1)],
                vec![(Some("a"), None, half), (Some("b"), None, half)],
                vec![(Some("c"), None, half)],
            ]
        );
        assert_eq!(
            links[&None],
            "details-0001.md#iam-and-cluster-wide-part-1-of-3"
        );
        assert_eq!(links[&Some("b")], "details-0004.md#namespace-b");
        assert_eq!(links[&Some("c")], "details-0005.md#namespace-c");
        let page = pages[3].markdown();
        assert!(
            page.starts_with("# Details of plan `p`, page 4 of 5\n"),
            "{page}"
        );
        assert!(page.contains("\n## Namespace `b`\n"), "{page}");
    }
}
