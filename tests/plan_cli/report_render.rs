//! report.md as GitHub shows it: rendered (GitHub-flavoured Markdown, Mermaid from the npm
//! registry) in headless Chromium by scripts/report-render, failing on any Mermaid error, with a
//! screenshot of each page kept under target/report-render/screenshots. The demo's report, and
//! one large enough to move its details to linked pages.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::generator;
use crate::support::{plan_snapshot, stderr, stdout};

/// `node render.mjs OUT FILES…`: prints one line a page, exits 1 on a Mermaid error.
fn render(name: &str, files: &[PathBuf]) -> String {
    let script = std::env::var("IRSA_MIGRATE_REPORT_RENDER")
        .expect("IRSA_MIGRATE_REPORT_RENDER: scripts/test installs the renderer and sets it");
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/report-render/screenshots")
        .join(name);
    // Only this run's screenshots.
    let _ = std::fs::remove_dir_all(&out);
    let output = Command::new("node")
        .arg(&script)
        .arg(&out)
        .args(files)
        .output()
        .expect("node runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            std::fs::read_dir(&out).unwrap().any(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.ends_with(&format!("-{stem}.png"))
            }),
            "a screenshot of {}",
            file.display()
        );
    }
    stdout(&output)
}

#[test]
#[ignore = "needs Chromium and the npm packages of scripts/report-render; scripts/test installs them"]
fn the_demo_report_renders_with_its_diagram() {
    let report = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/demo/report.md");
    let printed = render("demo", &[report]);
    assert!(
        printed.contains("1 diagram(s) drawn as 1 SVG(s)"),
        "{printed}"
    );
}

#[test]
#[ignore = "needs Chromium and the npm packages of scripts/report-render; scripts/test installs them"]
fn a_large_report_links_its_pages_and_every_page_renders() {
    let dir = tempfile::tempdir().unwrap();
    generator::generate(&dir.path().join("snapshot"), 12_000).unwrap();
    let output = plan_snapshot(dir.path(), "snapshot", &["--name", "large"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let migration = dir.path().join("migrations/large");
    let top = std::fs::read_to_string(migration.join("report.md")).unwrap();
    assert!(top.len() < 1_000_000, "{} bytes", top.len());
    let pages: Vec<PathBuf> = std::fs::read_dir(migration.join("report"))
        .expect("the details moved to report/")
        .map(|e| e.unwrap().path())
        .collect();
    // Namespaces share pages, each within the limit a browser renders at ease.
    assert!(pages.len() > 1, "{} pages", pages.len());
    for page in &pages {
        let size = std::fs::metadata(page).unwrap().len();
        assert!(size < 1_500_000, "{}: {size} bytes", page.display());
    }
    // Every link of the top page leads to a page that exists and holds the heading it names,
    // and each page links back.
    let mut linked = 0;
    for link in top.split("](report/").skip(1) {
        let target = link.split(')').next().unwrap();
        let (name, anchor) = target.split_once('#').unwrap_or((target, ""));
        let page = migration.join("report").join(name);
        let text = std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("{name} is linked"));
        assert!(text.contains("[Back to report.md](../report.md)"));
        // GitHub's heading ids: lowercased, punctuation but `-` dropped, spaces as `-`.
        let ids: Vec<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("## "))
            .map(|heading| {
                heading
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ')
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect()
            })
            .collect();
        assert!(ids.iter().any(|id| id == anchor), "{target}: {ids:?}");
        linked += 1;
    }
    assert!(linked > 100, "{linked} namespaces linked");
    let mut files = vec![migration.join("report.md")];
    files.extend(pages.iter().take(3).cloned());
    let printed = render("large", &files);
    assert!(printed.contains("report.md"), "{printed}");
}
