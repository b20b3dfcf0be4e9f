//! report.md's "Who gets which role" diagram, within Mermaid's default limits (`maxTextSize`
//! 50,000 characters, `maxEdges` 500: over either, GitHub shows an error instead of the picture).
//! The whole graph (namespace → service account → role) when it fits; else namespaces to roles,
//! each edge with its count of service accounts; else the edges with the most service accounts,
//! saying what was left out.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::md::mermaid;
use crate::plan::Plan;

/// Below Mermaid's defaults, with room for the diagram's own lines.
const MAX_TEXT: usize = 45_000;
const MAX_EDGES: usize = 450;

/// The diagram as Markdown: a fenced `mermaid` block, and a line saying what it aggregates.
pub fn markdown(plan: &Plan) -> String {
    let full = full(plan);
    if fits(&full) {
        return fence(&full, None);
    }
    let (by_role, edges) = namespaces_to_roles(plan, usize::MAX);
    if fits(&by_role) {
        return fence(
            &by_role,
            Some(format!(
                "Namespaces to roles, each edge labelled with its service accounts: the full graph would pass Mermaid's limits ({} service accounts).",
                plan.bindings.len()
            )),
        );
    }
    // The largest edges that fit, by halving until they do.
    let mut keep = MAX_EDGES;
    loop {
        let (top, _) = namespaces_to_roles(plan, keep);
        if fits(&top) || keep <= 1 {
            return fence(
                &top,
                Some(format!(
                    "The {keep} namespace-to-role edges with the most service accounts, of {edges}: the details below list every binding."
                )),
            );
        }
        keep /= 2;
    }
}

fn fits(diagram: &str) -> bool {
    diagram.len() <= MAX_TEXT && diagram.matches("-->").count() <= MAX_EDGES
}

fn fence(diagram: &str, note: Option<String>) -> String {
    let mut out = String::new();
    if let Some(note) = note {
        let _ = writeln!(out, "{note}\n");
    }
    let _ = write!(out, "```mermaid\n{diagram}```\n");
    out
}

/// Every binding: namespace → service account → role.
fn full(plan: &Plan) -> String {
    let mut ids = Ids::default();
    let mut edges = Vec::new();
    for binding in &plan.bindings {
        let ns = ids.of(format!("ns:{}", binding.namespace));
        let sa = ids.of(format!(
            "sa:{}/{}",
            binding.namespace, binding.service_account
        ));
        let role = ids.of(format!("role:{}", binding.role_arn));
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
    diagram(edges)
}

/// Namespace → role, labelled with the number of service accounts bound; at most `keep` edges
/// (those with the most), and how many there are in all.
fn namespaces_to_roles(plan: &Plan, keep: usize) -> (String, usize) {
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for binding in &plan.bindings {
        *counts
            .entry((&binding.namespace, binding.role_arn.as_str()))
            .or_default() += 1;
    }
    let all = counts.len();
    let mut edges: Vec<((&str, &str), usize)> = counts.into_iter().collect();
    edges.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    edges.truncate(keep);
    edges.sort();
    let mut ids = Ids::default();
    let lines = edges
        .into_iter()
        .map(|((namespace, role), count)| {
            let ns = ids.of(format!("ns:{namespace}"));
            let role_id = ids.of(format!("role:{role}"));
            format!(
                "  n{ns}[\"namespace {}\"] -- \"{count} SA\" --> n{role_id}{{{{\"{}\"}}}}",
                mermaid(namespace),
                mermaid(role)
            )
        })
        .collect();
    (diagram(lines), all)
}

fn diagram(edges: Vec<String>) -> String {
    let mut out = String::from("flowchart LR\n");
    for edge in edges {
        out.push_str(&edge);
        out.push('\n');
    }
    out
}

/// Short node ids (`n0`, `n1`, …), one per key, in order of first use.
#[derive(Default)]
struct Ids(BTreeMap<String, usize>);

impl Ids {
    fn of(&mut self, key: String) -> String {
        let next = self.0.len();
        self.0.entry(key).or_insert(next).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's bindings, repeated over `namespaces` namespaces.
    fn wide(namespaces: usize) -> Plan {
        let inventory = crate::inventory::demo::inventory().expect("the demo");
        let mut plan = crate::plan::plan(&inventory, "demo", &Default::default()).expect("a plan");
        let bindings = plan.bindings.clone();
        plan.bindings = (0..namespaces)
            .flat_map(|n| {
                bindings.iter().cloned().map(move |mut b| {
                    b.namespace = format!("team-{n:04}");
                    b
                })
            })
            .collect();
        plan
    }

    fn diagram_of(markdown: &str) -> &str {
        markdown
            .split("```mermaid\n")
            .nth(1)
            .and_then(|d| d.split("```").next())
            .expect("a mermaid block")
    }

    #[test]
    fn the_diagram_stays_within_mermaids_limits_at_any_size() {
        for namespaces in [1, 60, 400, 3_000] {
            let plan = wide(namespaces);
            let markdown = markdown(&plan);
            let diagram = diagram_of(&markdown);
            assert!(
                diagram.len() <= 50_000,
                "{namespaces}: {} chars",
                diagram.len()
            );
            let edges = diagram.matches("-->").count();
            assert!((1..=500).contains(&edges), "{namespaces}: {edges} edges");
            match namespaces {
                1 => assert!(!markdown.contains("edge"), "the whole graph: {markdown}"),
                60 => assert!(markdown.contains("Namespaces to roles"), "{markdown}"),
                _ => assert!(
                    markdown.contains("with the most service accounts"),
                    "{markdown}"
                ),
            }
        }
    }
}
