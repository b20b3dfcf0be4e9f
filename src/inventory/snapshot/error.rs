//! Why a snapshot could not be loaded or written.

use std::path::PathBuf;

/// The error a check gave (an `ArnError`, a `NameError`, the YAML merge's), kept as the cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A JSON or YAML parser's own error, kept as the cause of [`InventoryError::Parse`] and
/// [`InventoryError::Type`] for callers that inspect it. One pointer wide, as
/// `serde_json::Error` is, so that the `Result` of every loader function stays small.
#[derive(Debug)]
pub struct ParserError(Box<Parser>);

#[derive(Debug)]
enum Parser {
    Json(serde_json::Error),
    Yaml(yaml_serde::Error),
}

impl ParserError {
    pub fn json(&self) -> Option<&serde_json::Error> {
        match &*self.0 {
            Parser::Json(error) => Some(error),
            Parser::Yaml(_) => None,
        }
    }

    pub fn yaml(&self) -> Option<&yaml_serde::Error> {
        match &*self.0 {
            Parser::Yaml(error) => Some(error),
            Parser::Json(_) => None,
        }
    }

    fn inner(&self) -> &(dyn std::error::Error + 'static) {
        match &*self.0 {
            Parser::Json(error) => error,
            Parser::Yaml(error) => error,
        }
    }
}

impl std::fmt::Display for ParserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.inner(), f)
    }
}

/// As the parser's error: its message and its own cause.
impl std::error::Error for ParserError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner().source()
    }
}

impl From<serde_json::Error> for ParserError {
    fn from(error: serde_json::Error) -> Self {
        ParserError(Box::new(Parser::Json(error)))
    }
}

impl From<yaml_serde::Error> for ParserError {
    fn from(error: yaml_serde::Error) -> Self {
        ParserError(Box::new(Parser::Yaml(error)))
    }
}

/// Why a snapshot could not be loaded (or written). Every variant names the file, and says what
/// to change where the change is the user's to make.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file system refused a read (or, writing a snapshot, a write): the cause is kept.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not valid JSON or YAML: the parser's message, at the position it gave (in the file: a
    /// streamed item's parser counts from the item).
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        /// The parser's message in the user's terms (without its position).
        message: String,
        #[source]
        source: ParserError,
    },
    /// A value of the wrong type: the file, the object and the field path within the document.
    #[error(
        "{path}{}: {object}, field {field}: {message}; the field must be as `kubectl get -o json|yaml` or the AWS CLI prints it",
        position(*line, *column)
    )]
    Type {
        path: PathBuf,
        /// 0 when the position is unknown (a YAML document read through its merge keys).
        line: usize,
        column: usize,
        object: String,
        field: String,
        /// The parser's message in the user's terms (without its position, the field path and
        /// the tool's internal type names).
        message: String,
        #[source]
        source: ParserError,
    },
    /// Well-formed, but not what Kubernetes or AWS would hold (a name Kubernetes refuses, an
    /// ARN that does not parse, a truncated list), or, writing, a directory that is not the
    /// tool's to replace: the message says which and what to do.
    #[error("{path}: {message}")]
    Invalid {
        path: PathBuf,
        message: String,
        /// The check that refused it, when one did (none for a truncated list).
        #[source]
        source: Option<Cause>,
    },
    /// A directory that leads back to one it is inside (a symbolic link to an ancestor): read,
    /// it would never end.
    #[error(
        "{path} leads back to {ancestor}, a directory it is inside, so the snapshot tree has a loop; remove the link (nothing was read)"
    )]
    Loop { path: PathBuf, ancestor: PathBuf },
    /// One object twice, with different content: which one the cluster holds cannot be told.
    #[error(
        "{object} is in both {first} and {second}, with different content; keep the copy from the capture to plan from and remove the other (identical copies are fine)"
    )]
    Conflict {
        object: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// A snapshot directory with nothing the loader reads.
    #[error(
        "{path} holds no .json, .yaml or .yml files; see docs/snapshot.md for the commands that make a snapshot"
    )]
    Empty { path: PathBuf },
}

impl InventoryError {
    /// Whether the message already says the cause, in the user's terms: a parser's message
    /// without its internal type names and its position in a streamed item, or a check's. An
    /// error chain printed for users ends here rather than repeat the cause in other words.
    pub fn says_its_cause(&self) -> bool {
        matches!(
            self,
            InventoryError::Parse { .. }
                | InventoryError::Type { .. }
                | InventoryError::Invalid { .. }
        )
    }
}

/// `:line:column`, or nothing when the position is unknown (0).
fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::{InventoryError, ParserError};

    /// The message is the user's; the parser's own error stays reachable as the cause.
    #[test]
    fn a_parse_error_keeps_the_parsers_error_as_its_cause() {
        let error = crate::inventory::parse::json::<serde_json::Value>(
            std::path::Path::new("bad.json"),
            b"{\"a\": ",
        )
        .err()
        .unwrap();
        assert!(matches!(error, InventoryError::Parse { .. }));
        assert_eq!(error.to_string(), "bad.json:1:6: EOF while parsing a value");
        let cause = error.source().unwrap();
        let json = cause.downcast_ref::<ParserError>().unwrap().json().unwrap();
        assert!(json.is_eof());
    }
}
