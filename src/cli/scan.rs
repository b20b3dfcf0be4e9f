//! `irsa-migrate scan` and `irsa-migrate demo`.

use clap::Args;

use super::{Error, OutputFormat, SourceArgs, print};
use crate::findings::Severity;
use crate::render;
use crate::scan::{Scan, scan};

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// `text` for people, `json` for machines (schema irsa-migrate.scan/v1, docs/findings.md).
    #[arg(long, short, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Exit with code 1 when any finding has this severity or a higher one (for CI gates).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
}

/// `--fail-on`'s values. Written here rather than derived on [`Severity`], so that no clap type
/// reaches below `cli/`.
impl clap::ValueEnum for Severity {
    fn value_variants<'a>() -> &'a [Self] {
        &Severity::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub plan: super::plan::PlanOutputArgs,
}

pub fn run(args: &ScanArgs) -> Result<(), Error> {
    let inventory = super::until_exit(args.source.load()?);
    let result = super::until_exit(scan(&inventory));
    emit(&result, args.output)?;
    if let Some(threshold) = args.fail_on {
        let count = result
            .findings
            .iter()
            .filter(|f| f.severity >= threshold)
            .count();
        if count > 0 {
            return Err(Error::FindingsBlock { count, threshold });
        }
    }
    Ok(())
}

/// The scan summary, then the plan summary; the diffs are one `diff` away.
pub fn demo(args: &DemoArgs) -> Result<(), Error> {
    let inventory = crate::inventory::demo::inventory()?;
    let scanned = scan(&inventory);
    let mut text = render::scan::text(&scanned);
    let mut plan_args = super::plan::PlanOutputArgs {
        name: args.plan.name.clone(),
        ..args.plan.clone()
    };
    plan_args.name.get_or_insert_with(|| "demo".to_string());
    let (plan, dir) = super::plan::write_plan(&inventory, Some(&scanned), &plan_args, false)?;
    text.push_str(
        "
----

",
    );
    text.push_str(&render::plan::summary(&plan));
    let plan_path = dir.join("plan.json");
    text.push_str(&format!(
        "
Wrote {} and {}
Next: irsa-migrate diff --plan {}   (every change as a diff)
",
        plan_path.display(),
        dir.join("report.md").display(),
        plan_path.display()
    ));
    print(&text)
}

fn emit(result: &Scan, output: OutputFormat) -> Result<(), Error> {
    match output {
        OutputFormat::Text => print(&render::scan::text(result)),
        OutputFormat::Json => {
            let mut json =
                serde_json::to_string_pretty(result).map_err(|e| Error::Output(e.into()))?;
            json.push('\n');
            print(&json)
        }
    }
}
