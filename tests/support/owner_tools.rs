//! The owners' real tools that exported changes are checked with, built from Go modules by
//! `scripts/owner-tools/build` (cached per user): `helm` (Helm 4) for a Helm post-renderer and
//! `hcl-check` (HashiCorp's HCL parser and formatter) for Terraform. kubectl, for
//! `kubectl kustomize`, is the control plane's (`ControlPlane::kubectl_path`).
//!
//! `scripts/test` builds them once and names their directory in `IRSA_MIGRATE_OWNER_TOOLS`; a
//! test run without it (a plain `cargo test -- --ignored`) runs the build script itself, once per
//! test binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Helm at `scripts/owner-tools/pins`' HELM_VERSION. Helm 4's `--post-renderer NAME` takes the
/// name of a plugin, not a path: a directory under `HELM_PLUGINS` holding a `plugin.yaml` with
/// `apiVersion: v1`, `name: NAME`, a `version` (semver, required), `type: postrenderer/v1`,
/// `runtime: subprocess` and `runtimeConfig.platformCommand: [{command: ...}]`
/// (`${HELM_PLUGIN_DIR}` expands to the plugin's directory). The command reads the rendered
/// manifests on stdin and prints the result; each `--post-renderer-args` is appended to its
/// arguments.
pub fn helm() -> PathBuf {
    tool("helm")
}

/// `hcl-check FILE...`: exit 0 when every file parses (`.json`, so `.tf.json`, as HCL JSON, the
/// rest as native syntax) and each native one is canonically formatted, as `terraform fmt
/// -check` asks; otherwise 1, with `FILE:LINE:COL: error: ...` diagnostics or `FILE: not
/// canonically formatted` and the lines that differ, on stdout.
pub fn hcl_check() -> PathBuf {
    tool("hcl-check")
}

fn tool(name: &str) -> PathBuf {
    let path = dir().join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing; scripts/owner-tools/build builds it",
        path.display()
    );
    path
}

/// The owner tools' directory: `IRSA_MIGRATE_OWNER_TOOLS`, or what the build script prints.
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("IRSA_MIGRATE_OWNER_TOOLS").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/owner-tools/build");
        let output = Command::new(&script)
            .stdin(Stdio::null())
            .output()
            .expect("scripts/owner-tools/build runs");
        assert!(
            output.status.success(),
            "scripts/owner-tools/build failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}
