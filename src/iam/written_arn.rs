//! A role ARN as the cluster writes it (an annotation, an agent's default role): parsed once,
//! where the scan reads it, and kept as written when it is not a role ARN, so reports can quote it.

use std::fmt;

use serde::{Serialize, Serializer};

use super::arn::{ArnError, RoleArn};

/// The role a workload names, checked once: later stages ask [`WrittenRoleArn::role`] instead of
/// parsing the text again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrittenRoleArn {
    Valid(RoleArn),
    /// Not a role ARN; the error says why, in the words shown to users.
    Invalid {
        text: String,
        error: ArnError,
    },
}

impl WrittenRoleArn {
    pub fn parse(text: &str) -> WrittenRoleArn {
        match RoleArn::parse(text) {
            Ok(arn) => WrittenRoleArn::Valid(arn),
            Err(error) => WrittenRoleArn::Invalid {
                text: text.to_string(),
                error,
            },
        }
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        match self {
            WrittenRoleArn::Valid(arn) => arn.as_str(),
            WrittenRoleArn::Invalid { text, .. } => text,
        }
    }

    /// The role, when the text is a role ARN.
    pub fn role(&self) -> Result<&RoleArn, &ArnError> {
        match self {
            WrittenRoleArn::Valid(arn) => Ok(arn),
            WrittenRoleArn::Invalid { error, .. } => Err(error),
        }
    }
}

impl fmt::Display for WrittenRoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As the text written, valid or not: scan JSON shows what the cluster says.
impl Serialize for WrittenRoleArn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
