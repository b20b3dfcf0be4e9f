//! Fixture-driven snapshot tests: for the embedded demo and every snapshot directory under
//! `tests/fixtures/` (one with a `cluster.json`), what `scan`, `plan` and `diff` print and what
//! `plan` writes, compared with the reviewed output in `tests/snapshots/` (insta). A change shows
//! as a diff; accept an intended one with `cargo insta review` (or `INSTA_UPDATE=always`).
//!
//! What varies between runs is filtered before comparing: the temporary directory the plan is
//! written to becomes `[DIR]`.

mod support;

use std::path::{Path, PathBuf};

use support::*;

const PHASES: [&str; 5] = ["prepare", "identity", "rollout", "cleanup", "decommission"];

/// One source the tool reads: its name in the snapshot files, its command-line arguments, and
/// the directory they are relative to (none for the embedded demo). Fixtures are named by a
/// relative path, so what the output says of their files is the same in every checkout.
struct Source {
    name: String,
    args: Vec<String>,
    cwd: Option<PathBuf>,
}

impl Source {
    /// Where the binary runs for this source: beside its files, or in `scratch`.
    fn cwd<'a>(&'a self, scratch: &'a Path) -> &'a Path {
        self.cwd.as_deref().unwrap_or(scratch)
    }
}

fn sources() -> Vec<Source> {
    let mut sources = vec![Source {
        name: "demo".into(),
        args: vec!["--demo".into()],
        cwd: None,
    }];
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("cluster.json").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        sources.push(Source {
            args: vec!["--snapshot".into(), name.clone()],
            name,
            cwd: Some(fixtures.clone()),
        });
    }
    assert!(
        sources.len() > 1,
        "no snapshot fixture under {}",
        fixtures.display()
    );
    sources
}

/// Runs the binary in `dir` and returns what it printed, after checking that it succeeded.
fn printed(dir: &Path, args: &[&str]) -> String {
    let output = run_in(dir, args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "irsa-migrate {}: {}",
        args.join(" "),
        stderr(&output)
    );
    let text = stdout(&output);
    assert!(
        !text.trim().is_empty(),
        "irsa-migrate {} printed nothing",
        args.join(" ")
    );
    text
}

fn check(source: &Source, what: &str, text: &str, dir: &Path) {
    let text = text.replace(&dir.to_string_lossy().into_owned(), "[DIR]");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_suffix(format!("{}-{what}", source.name));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("golden", text));
}

fn with(source: &Source, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    args.extend(source.args.iter().cloned());
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn scan_output_of_every_fixture_is_as_reviewed() {
    let dir = tempfile::tempdir().unwrap();
    for source in sources() {
        let cwd = source.cwd(dir.path());
        let text = with(&source, &["scan"]);
        check(
            &source,
            "scan-text",
            &printed(cwd, &strs(&text)),
            dir.path(),
        );
        let json = with(&source, &["scan", "--output", "json"]);
        check(
            &source,
            "scan-json",
            &printed(cwd, &strs(&json)),
            dir.path(),
        );
    }
}

#[test]
fn plan_and_diff_output_of_every_fixture_is_as_reviewed() {
    for source in sources() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_string_lossy().into_owned();
        let args = with(
            &source,
            &[
                "plan", "--color", "never", "--name", "golden", "--dir", &root,
            ],
        );
        check(
            &source,
            "plan-text",
            &printed(source.cwd(dir.path()), &strs(&args)),
            dir.path(),
        );
        // Everything `plan` writes: the plan, the report, the permissions and the snapshot copy.
        let migration = dir.path().join("golden");
        let written = files_under(&migration);
        let listing: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        check(&source, "files", &listing.join("\n"), dir.path());
        // The lock file is empty once the run is over: nothing to compare.
        for path in written.iter().filter(|path| !path.ends_with(".lock")) {
            let text = std::fs::read_to_string(migration.join(path)).unwrap();
            let name = path.display().to_string().replace('/', "-");
            check(&source, &name, &text, dir.path());
        }
        let plan = migration.join("plan.json");
        for phase in PHASES {
            let output = run_in(
                dir.path(),
                &[
                    "diff",
                    "--plan",
                    plan.to_str().unwrap(),
                    "--phase",
                    phase,
                    "--color",
                    "never",
                ],
            );
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
            check(
                &source,
                &format!("diff-{phase}"),
                &stdout(&output),
                dir.path(),
            );
        }
        // What `export` writes: every file's path, the README and the Terraform (the
        // Kubernetes files are checked by the real kubectl and helm in tests/export).
        let out = dir.path().join("export");
        let output = run_in(
            dir.path(),
            &[
                "export",
                "--plan",
                plan.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let exported = files_under(&out);
        let listing: Vec<String> = exported.iter().map(|p| p.display().to_string()).collect();
        check(&source, "export-files", &listing.join("\n"), dir.path());
        for path in exported
            .iter()
            .filter(|p| p.ends_with("README.md") || p.extension().is_some_and(|e| e == "tf"))
        {
            let text = std::fs::read_to_string(out.join(path)).unwrap();
            let name = path.display().to_string().replace('/', "-");
            check(&source, &format!("export-{name}"), &text, dir.path());
        }
    }
}

#[test]
fn manual_pages_of_every_command_are_as_reviewed() {
    // The pages are generated from the clap definitions, every flag's help included, and are not
    // wrapped to a terminal: they pin the command line itself.
    let dir = tempfile::tempdir().unwrap();
    let source = Source {
        name: "cli".into(),
        args: Vec::new(),
        cwd: None,
    };
    check(&source, "man", &printed(dir.path(), &["man"]), dir.path());
    for command in [
        "scan",
        "plan",
        "diff",
        "export",
        "apply",
        "status",
        "rollback",
        "snapshot",
        "demo",
        "completions",
    ] {
        let page = printed(dir.path(), &["man", command]);
        check(&source, &format!("man-{command}"), &page, dir.path());
    }
}
