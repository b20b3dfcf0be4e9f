//! A plan with no journal yet must be the plan its migration's own snapshot and settings give:
//! what report.md showed the change board. Refused otherwise, naming where the file differs.

use std::collections::BTreeMap;
use std::path::Path;

use super::Loaded;
use crate::apply;
use crate::cli::Error;
use crate::plan::Plan;

/// Recomputes the plan from the migration's own snapshot and settings and refuses a plan file
/// that differs in anything but its findings, naming where.
pub(super) fn verify_plan(loaded: &Loaded, path: &Path) -> Result<(), Error> {
    let snapshot = loaded.dir.join("snapshot");
    if !snapshot.is_dir() {
        return Err(Error::Usage(format!(
            "{} is missing: it is written by `irsa-migrate plan` next to plan.json, and the plan is checked against it; re-plan",
            snapshot.display()
        )));
    }
    let inventory = crate::inventory::snapshot::load_dir(&snapshot, &crate::progress::Silent)?;
    let mut expected = crate::plan::plan(&inventory, &loaded.plan.name, &loaded.plan.settings)?;
    // Findings report on the source as it was read (a file it ignored, a namespace it could not
    // list), which the migration's snapshot does not repeat; they change nothing a run does.
    // The same content written by another version is the same plan.
    let mut found = Plan {
        generator: expected.generator.clone(),
        ..loaded.plan.clone()
    };
    expected.findings.clear();
    found.findings.clear();
    if expected == found {
        return Ok(());
    }
    let origin = match loaded.plan.generator.as_str() {
        writer if writer == expected.generator => {
            format!("it was written by this version ({writer}), so it was edited since")
        }
        "" => format!(
            "it names no writer (a plan from before irsa-migrate recorded its version, or edited by hand), and this is {}",
            expected.generator
        ),
        writer => format!(
            "it was written by {writer}, and this is {}: the versions plan differently (or it was edited by hand)",
            expected.generator
        ),
    };
    Err(apply::ApplyError::PlanNotFromSnapshot {
        plan: path.to_path_buf(),
        origin,
        snapshot,
        name: loaded.plan.name.clone(),
        differences: plan_differences(&expected, &found),
    }
    .into())
}

/// Where `found` differs from `expected`: steps by id (with a diff of each changed one, up to a
/// few), then the other top-level fields by name.
fn plan_differences(expected: &Plan, found: &Plan) -> String {
    let by_id = |plan: &Plan| -> BTreeMap<String, serde_json::Value> {
        plan.steps
            .iter()
            .map(|s| (s.id.clone(), serde_json::to_value(s).unwrap_or_default()))
            .collect()
    };
    let (want, got) = (by_id(expected), by_id(found));
    let mut lines = Vec::new();
    let mut diffs = 0;
    for id in want
        .keys()
        .chain(got.keys().filter(|id| !want.contains_key(*id)))
    {
        match (want.get(id), got.get(id)) {
            (Some(_), None) => lines.push(format!("  step {id}: missing from the file")),
            (None, Some(_)) => {
                lines.push(format!("  step {id}: not in the plan the snapshot gives"))
            }
            (Some(a), Some(b)) if a != b => {
                lines.push(format!("  step {id}: changed"));
                diffs += 1;
                if diffs <= 5 {
                    let pretty = |v: &serde_json::Value| {
                        serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
                    };
                    let diff = similar::TextDiff::from_lines(&pretty(a), &pretty(b))
                        .unified_diff()
                        .context_radius(2)
                        .to_string();
                    lines.extend(diff.lines().map(|l| format!("    {l}")));
                }
            }
            _ => {}
        }
    }
    let fields = |plan: &Plan| match serde_json::to_value(plan) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (want, got) = (fields(expected), fields(found));
    for (key, value) in &want {
        if key != "steps" && got.get(key) != Some(value) {
            lines.push(format!("  field {key}: changed"));
        }
    }
    lines.join("\n")
}
