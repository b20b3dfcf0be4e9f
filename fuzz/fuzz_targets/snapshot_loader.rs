//! The snapshot loader on arbitrary bytes, as a JSON file and as a YAML file, then the scan of
//! whatever loaded: nothing may panic, and what loaded, rendered as a snapshot (as `plan` writes
//! it for a migration), must load again.
#![no_main]

use std::path::PathBuf;

use irsa_migrate::inventory::snapshot::{SnapshotFile, load_files, render_files};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // The loader reads text: a file that is not UTF-8 is an I/O error before parsing.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    for name in ["input.json", "input.yaml"] {
        let file = SnapshotFile {
            path: PathBuf::from(name),
            text: text.into(),
        };
        let Ok(inventory) = load_files(&[file]) else {
            continue;
        };
        let _ = irsa_migrate::scan::scan(&inventory);
        let rendered: Vec<SnapshotFile<'_>> = render_files(&inventory)
            .into_iter()
            .map(|(path, text)| SnapshotFile {
                path: PathBuf::from(path),
                text: text.into(),
            })
            .collect();
        if let Err(error) = load_files(&rendered) {
            panic!("a rendered snapshot does not load: {error}");
        }
    }
});
