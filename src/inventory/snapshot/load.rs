//! The loader's entry points: a snapshot directory (large JSON lists streamed), in-memory files,
//! successive readings of a live cluster, and IAM files added to an inventory.

use std::path::{Path, PathBuf};

use super::InventoryError;
use super::build::Builder;
use super::origins::Origins;
use super::raw::RawObject;
use super::walk::snapshot_files;
use crate::inventory::{Inventory, parse};
use crate::progress::Progress;

/// A named input: a path on disk, or a file of the embedded demo.
pub struct SnapshotFile<'a> {
    pub path: PathBuf,
    pub text: std::borrow::Cow<'a, str>,
}

/// Loads a snapshot directory. `progress` is told of each file read (a bar on a terminal).
pub fn load_dir(dir: &Path, progress: &dyn Progress) -> Result<Inventory, InventoryError> {
    let paths = snapshot_files(dir)?;
    progress.set_total(paths.len() as u64);
    let mut builder = Builder::default();
    for path in paths {
        let io = |source| InventoryError::Io {
            path: path.clone(),
            source,
        };
        let size = std::fs::metadata(&path).map_err(io)?.len();
        let streamed = size >= STREAM_BYTES
            && path.extension().is_some_and(|e| e == "json")
            && read_streaming(&mut builder, &path)?;
        if !streamed {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            builder.add_file(&SnapshotFile {
                path,
                text: text.into(),
            })?;
        }
        progress.advance(1);
    }
    Ok(builder.finish())
}

/// JSON files from this size on are read as a stream, their items parsed in parallel.
const STREAM_BYTES: u64 = 8 << 20;

/// Reads a large JSON list without holding the file in memory, adding each item as soon as it
/// is parsed; `false` when the file is not a list, to be read whole instead.
fn read_streaming(builder: &mut Builder, path: &Path) -> Result<bool, InventoryError> {
    use crate::inventory::stream::{StreamError, split_items};
    use std::io::BufRead;
    let io = |source| InventoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    if parse::starts_with_bom(file.fill_buf().map_err(io)?) {
        file.consume(3);
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let parse: fn(&[u8]) -> Result<RawObject, serde_json::Error> =
        |bytes| serde_json::from_slice(bytes);
    // Items without a kind (typed lists from the API) wait for the list's kind, which follows them.
    let mut kindless = Vec::new();
    let mut delivered = 0usize;
    let mut invalid = None;
    let mut sink = |item: RawObject| {
        delivered += 1;
        match item.kind.clone() {
            Some(kind) if !kind.is_empty() => {
                if let Err(e) = builder.add_kubernetes(path, item, &kind, None) {
                    invalid.get_or_insert(e);
                }
            }
            _ => kindless.push(item),
        }
    };
    let result = split_items(file, parse, workers, &mut sink);
    if let Some(error) = invalid {
        return Err(error);
    }
    let skeleton = match result {
        Ok(skeleton) => skeleton,
        Err(StreamError::Unsupported) if delivered == 0 => return Ok(false),
        Err(StreamError::Unsupported) => {
            return Err(InventoryError::Invalid {
                path: path.to_path_buf(),
                message: "truncated or malformed JSON list".into(),
                source: None,
            });
        }
        Err(StreamError::Io(source)) => return Err(io(source)),
        Err(StreamError::Json { item, at }) => {
            return Err(
                match parse::explain_json::<RawObject>(path, &item, Some(at)) {
                    Err(error) => error,
                    // Read again, the item parses: only a parser that disagrees with itself gets here.
                    Ok(_) => InventoryError::Invalid {
                        path: path.to_path_buf(),
                        message: format!(
                            "items[{}] (line {}) could not be read",
                            at.index, at.line
                        ),
                        source: None,
                    },
                },
            );
        }
    };
    let mut document = match parse::json::<RawObject>(path, &skeleton)? {
        parse::Document::Object(document) => document,
        parse::Document::NotAnObject(what) => {
            builder.not_an_object(path, what);
            return Ok(true);
        }
    };
    // A single large object has no items to put back (it was read whole as the skeleton).
    if document.items.is_some() {
        document.items = Some(kindless);
    }
    builder.add_document(path, document)?;
    Ok(true)
}

/// Loads in-memory files (the embedded demo uses this).
pub fn load_files(files: &[SnapshotFile<'_>]) -> Result<Inventory, InventoryError> {
    extend(Inventory::default(), files)
}

/// Loads successive readings of a live cluster (list pages): where an object was read twice,
/// with different content, the later reading is the newer state and wins.
pub fn load_readings(files: &[SnapshotFile<'_>]) -> Result<Inventory, InventoryError> {
    let mut builder = Builder::default();
    builder.origins.later_wins = true;
    builder.add_files(files)
}

/// Adds in-memory files to an inventory (the live collector reads IAM after Kubernetes).
pub fn extend(
    inventory: Inventory,
    files: &[SnapshotFile<'_>],
) -> Result<Inventory, InventoryError> {
    let builder = Builder {
        inventory,
        origins: Origins::default(),
    };
    builder.add_files(files)
}
