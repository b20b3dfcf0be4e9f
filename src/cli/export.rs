//! `irsa-migrate export`: write each owner's changes of a plan in the owner's own form
//! ([`crate::export`]) into a new directory.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Error, print};
use crate::plan::Phase;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A plan.json written by `irsa-migrate plan`.
    #[arg(long, value_name = "PATH")]
    pub plan: PathBuf,
    /// The directory to write: created if missing, or an empty directory. A directory holding
    /// anything is refused and left as it is.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Only this phase (repeatable); every phase by default.
    #[arg(long, value_enum)]
    pub phase: Vec<Phase>,
}

pub fn run(args: &ExportArgs) -> Result<(), Error> {
    super::require_new_dir("--out", &args.out)?;
    let plan = super::plan::read_plan(&args.plan)?;
    let files = crate::export::export(&plan, &args.phase);
    for file in &files {
        write(&args.out.join(&file.path), &file.text, file.executable)?;
    }
    print(&format!(
        "wrote {}: {} file(s); its README.md says what each owner merges, in which order\n",
        args.out.display(),
        files.len()
    ))
}

fn write(path: &Path, text: &str, executable: bool) -> Result<(), Error> {
    let failed = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        crate::private::create_dir_all(parent).map_err(failed)?;
    }
    crate::private::write(path, text).map_err(failed)?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}
