//! IAM policy documents: decoding (JSON or URL-encoded JSON) and read-only queries.
//!
//! The document is kept as the JSON value IAM holds, so later editing can preserve every statement
//! it does not touch; the queries read it through [`Statement`] views that accept IAM's shorthand
//! (a string where a list is allowed, `"*"` as a principal).

use serde::Serialize;
use serde_json::Value;

use super::wildcard_match;

/// A policy document as IAM stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct PolicyDocument(pub Value);

impl Default for PolicyDocument {
    fn default() -> Self {
        PolicyDocument(serde_json::json!({"Version": "2012-10-17", "Statement": []}))
    }
}

/// Why a policy document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A `%`-escape that does not decode to UTF-8 text (IAM's API returns documents URL-encoded).
    #[error("policy document is URL-encoded but the encoding is broken: {0}")]
    BadEncoding(String),
    /// The (decoded) text is not JSON.
    #[error("policy document is not valid JSON: {0}")]
    BadJson(String),
    /// JSON, but not an object: no policy document IAM would hold.
    #[error("policy document must be a JSON object")]
    NotAnObject,
}

impl PolicyDocument {
    /// Accepts what the CLI prints (a JSON object) and what the IAM API returns (URL-encoded JSON).
    pub fn from_value(value: Value) -> Result<PolicyDocument, PolicyError> {
        match value {
            Value::Object(_) => Ok(PolicyDocument(value)),
            Value::String(text) => PolicyDocument::from_text(&text),
            _ => Err(PolicyError::NotAnObject),
        }
    }

    pub fn from_text(text: &str) -> Result<PolicyDocument, PolicyError> {
        let trimmed = text.trim_start();
        let decoded = if trimmed.starts_with('{') {
            text.to_string()
        } else {
            percent_decode(text)?
        };
        let value: Value =
            serde_json::from_str(&decoded).map_err(|e| PolicyError::BadJson(e.to_string()))?;
        if !value.is_object() {
            return Err(PolicyError::NotAnObject);
        }
        Ok(PolicyDocument(value))
    }

    /// Every statement, whether the document holds one object or a list.
    pub fn statements(&self) -> Vec<Statement<'_>> {
        match self.0.get("Statement") {
            Some(Value::Array(items)) => items.iter().filter_map(Statement::new).collect(),
            Some(item) => Statement::new(item).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The resources for which an `Allow` statement grants `action` (e.g. `sts:AssumeRole`).
    pub fn allowed_resources(&self, action: &str) -> Vec<String> {
        self.statements()
            .into_iter()
            .filter(|s| s.effect_allow && s.grants_action(action))
            .flat_map(|s| s.resources())
            .collect()
    }

    /// Who this trust policy lets call `sts:AssumeRole`, judged for one principal role.
    pub fn trusts_role(&self, principal: &super::arn::RoleArn) -> TrustVerdict {
        let mut verdict = TrustVerdict::NotTrusted;
        for statement in self.statements() {
            if !statement.grants_action("sts:AssumeRole") {
                continue;
            }
            let Some(how) = statement.names_principal(principal) else {
                continue;
            };
            if !statement.effect_allow {
                return TrustVerdict::Denied;
            }
            let candidate = if statement.condition.is_some() {
                TrustVerdict::TrustedWithCondition(how)
            } else {
                TrustVerdict::Trusted(how)
            };
            verdict = verdict.max(candidate);
        }
        verdict
    }
}

/// How a trust policy treats a principal, ordered from worst to best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustVerdict {
    /// An explicit `Deny` names the principal.
    Denied,
    NotTrusted,
    /// Trusted only when a `Condition` holds (often `sts:ExternalId`).
    TrustedWithCondition(PrincipalMatch),
    Trusted(PrincipalMatch),
}

impl TrustVerdict {
    pub fn is_trusted(self) -> bool {
        matches!(
            self,
            TrustVerdict::Trusted(_) | TrustVerdict::TrustedWithCondition(_)
        )
    }
}

/// Which form of `Principal.AWS` matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalMatch {
    /// `"*"`: anyone, in any account.
    Anyone,
    /// The account (`arn:…:root` or the bare id): delegated to the account's own IAM policies.
    Account,
    /// The role's ARN itself.
    Exact,
}

/// A read-only view of one statement.
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    pub raw: &'a Value,
    pub sid: Option<&'a str>,
    pub effect_allow: bool,
    pub condition: Option<&'a Value>,
}

impl<'a> Statement<'a> {
    fn new(raw: &'a Value) -> Option<Statement<'a>> {
        let object = raw.as_object()?;
        Some(Statement {
            raw,
            sid: object.get("Sid").and_then(Value::as_str),
            effect_allow: object.get("Effect").and_then(Value::as_str) == Some("Allow"),
            condition: object
                .get("Condition")
                .filter(|c| c.as_object().is_some_and(|m| !m.is_empty())),
        })
    }

    /// Whether `Action` (or the complement of `NotAction`) covers `action`. Actions are
    /// case-insensitive in IAM.
    pub fn grants_action(&self, action: &str) -> bool {
        let action = action.to_ascii_lowercase();
        let matches = |patterns: Vec<&str>| {
            patterns
                .iter()
                .any(|p| wildcard_match(&p.to_ascii_lowercase(), &action))
        };
        if let Some(actions) = self.raw.get("Action") {
            matches(string_list(actions))
        } else if let Some(not_actions) = self.raw.get("NotAction") {
            !matches(string_list(not_actions))
        } else {
            false
        }
    }

    /// Every action the statement lists (`NotAction` is reported as `NotAction:<pattern>`).
    pub fn actions(&self) -> Vec<String> {
        if let Some(actions) = self.raw.get("Action") {
            string_list(actions)
                .into_iter()
                .map(str::to_string)
                .collect()
        } else if let Some(not_actions) = self.raw.get("NotAction") {
            string_list(not_actions)
                .into_iter()
                .map(|a| format!("NotAction:{a}"))
                .collect()
        } else {
            Vec::new()
        }
    }

    pub fn resources(&self) -> Vec<String> {
        self.raw
            .get("Resource")
            .map(|r| string_list(r).into_iter().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The values listed under `Principal.<kind>` (`AWS`, `Service`, `Federated`).
    pub fn principals(&self, kind: &str) -> Vec<&'a str> {
        match self.raw.get("Principal") {
            Some(Value::String(star)) if star == "*" => vec!["*"],
            Some(Value::Object(map)) => map.get(kind).map(string_list).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn names_principal(&self, role: &super::arn::RoleArn) -> Option<PrincipalMatch> {
        let root = format!("arn:{}:iam::{}:root", role.partition(), role.account());
        let exact = role.to_string();
        self.principals("AWS")
            .into_iter()
            .filter_map(|p| {
                if p == "*" {
                    Some(PrincipalMatch::Anyone)
                } else if p == exact {
                    Some(PrincipalMatch::Exact)
                } else if p == root || p == role.account() {
                    Some(PrincipalMatch::Account)
                } else {
                    None
                }
            })
            .max()
    }
}

/// IAM allows a single string wherever a list of strings is allowed.
fn string_list(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Decodes `%XX` escapes (and `+` as space, as IAM's form encoding produces) into UTF-8 text.
pub fn percent_decode(text: &str) -> Result<String, PolicyError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| PolicyError::BadEncoding(format!("bad escape at byte {i}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| PolicyError::BadEncoding("not UTF-8 after decoding".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::arn::RoleArn;

    const KIAM_SERVER: &str = "arn:aws:iam::111122223333:role/kiam-server";

    fn trust(json: &str) -> PolicyDocument {
        PolicyDocument::from_text(json).unwrap()
    }

    #[test]
    fn url_encoded_and_plain_documents_decode_to_the_same_value() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kiam-server"},"Action":"sts:AssumeRole"}]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22AWS%22%3A%22arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fkiam-server%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        assert_eq!(trust(plain), trust(encoded));
        let from_string = PolicyDocument::from_value(Value::String(encoded.into())).unwrap();
        assert_eq!(from_string, trust(plain));
    }

    #[test]
    fn broken_documents_are_errors_not_panics() {
        assert!(matches!(
            PolicyDocument::from_text("%7B%2"),
            Err(PolicyError::BadEncoding(_))
        ));
        assert!(matches!(
            PolicyDocument::from_text("%7Bnope"),
            Err(PolicyError::BadJson(_))
        ));
        assert!(matches!(
            PolicyDocument::from_text("[1]"),
            Err(PolicyError::BadJson(_)) | Err(PolicyError::NotAnObject)
        ));
        assert!(matches!(
            PolicyDocument::from_value(Value::Bool(true)),
            Err(PolicyError::NotAnObject)
        ));
    }

    #[test]
    fn trust_verdicts() {
        let principal = RoleArn::parse(KIAM_SERVER).unwrap();
        let cases = [
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kiam-server"},"Action":"sts:AssumeRole"}]}"#,
                TrustVerdict::Trusted(PrincipalMatch::Exact),
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root"]},"Action":["sts:*"]}}"#,
                TrustVerdict::Trusted(PrincipalMatch::Account),
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}]}"#,
                TrustVerdict::Trusted(PrincipalMatch::Account),
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#,
                TrustVerdict::Trusted(PrincipalMatch::Anyone),
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kiam-server"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}}]}"#,
                TrustVerdict::TrustedWithCondition(PrincipalMatch::Exact),
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
                TrustVerdict::NotTrusted,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kiam-server"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#,
                TrustVerdict::NotTrusted,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:role/kiam-server"},"Action":"sts:AssumeRole"}]}"#,
                TrustVerdict::NotTrusted,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kiam-server"},"Action":"sts:AssumeRole"},{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#,
                TrustVerdict::Denied,
            ),
            (r#"{"Statement":[]}"#, TrustVerdict::NotTrusted),
        ];
        for (json, expected) in cases {
            assert_eq!(trust(json).trusts_role(&principal), expected, "{json}");
        }
    }

    #[test]
    fn allowed_resources_for_assume_role() {
        let doc = trust(
            r#"{"Statement":[
            {"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"},
            {"Effect":"Allow","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Deny","Action":"sts:AssumeRole","Resource":"arn:aws:iam::1:role/x"},
            {"Effect":"Allow","NotAction":"iam:*","Resource":["arn:aws:iam::111122223333:role/a"]}]}"#,
        );
        assert_eq!(
            doc.allowed_resources("sts:AssumeRole"),
            vec!["*", "arn:aws:iam::111122223333:role/a"]
        );
    }
}
