//! Names that come from input (a snapshot, a plan, the API), checked or escaped before they
//! become part of a URL path or a file path, so that a hostile name can neither address another
//! object than its own nor write outside the directory it belongs in.
//!
//! Pure: no I/O.

use std::path::{Component, Path, PathBuf};

/// Why a name cannot be used where it was going to be used. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A name from input that Kubernetes would not accept for its kind (or that could be a
    /// path): the input names an object no real cluster has.
    #[error("{what} {name:?} is not {rule}")]
    Invalid {
        what: &'static str,
        name: String,
        rule: &'static str,
    },
    /// A path built from input that would leave the directory it must stay under.
    #[error("{path:?} does not stay under its directory: {why}")]
    Escapes { path: String, why: &'static str },
}

const LABEL_RULE: &str =
    "a DNS-1123 label (1-63 lowercase letters, digits and '-', starting and ending alphanumeric)";
const SUBDOMAIN_RULE: &str =
    "a DNS-1123 subdomain (at most 253 characters: DNS-1123 labels joined by '.')";
const SEGMENT_RULE: &str =
    "a Kubernetes object name (not empty, '.' or '..'; no '/', '%' or control characters)";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters: what namespaces (and many other names)
/// must be.
pub fn is_dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// DNS-1123 labels joined by `.`, at most 253 characters: what service accounts, workloads and
/// most other object names must be.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns1123_label)
}

/// What Kubernetes accepts as a name that is a URL path segment (RBAC objects' names), minus
/// control characters, which no real name holds and which would reach the terminal.
pub fn is_path_segment_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '%'])
        && !name.chars().any(char::is_control)
}

/// Checks a namespace name.
pub fn namespace(name: &str) -> Result<&str, NameError> {
    check("namespace", name, is_dns1123_label(name), LABEL_RULE)
}

/// Checks the name of a service account, workload or namespace-like object.
pub fn subdomain<'a>(what: &'static str, name: &'a str) -> Result<&'a str, NameError> {
    check(what, name, is_dns1123_subdomain(name), SUBDOMAIN_RULE)
}

/// Checks the name of an object whose kind only requires a path-segment name (RBAC bindings).
pub fn path_segment<'a>(what: &'static str, name: &'a str) -> Result<&'a str, NameError> {
    check(what, name, is_path_segment_name(name), SEGMENT_RULE)
}

fn check<'a>(
    what: &'static str,
    name: &'a str,
    valid: bool,
    rule: &'static str,
) -> Result<&'a str, NameError> {
    if valid {
        Ok(name)
    } else {
        Err(NameError::Invalid {
            what,
            name: name.to_string(),
            rule,
        })
    }
}

/// One URL path segment, percent-encoded: every byte but RFC 3986's unreserved characters is
/// escaped, so `/`, `?`, `#` and `%` in a name stay inside its segment. A segment made only of
/// dots (or empty) has its dots escaped too, so no client resolves it as `.` or `..`; such names
/// are invalid for every kind, and the plan and snapshot checks refuse them before any request.
pub fn url_segment(text: &str) -> String {
    let all_dots = text.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~');
        if unreserved || (byte == b'.' && !all_dots) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `root` joined with `relative`, refused unless every component of `relative` is a plain name:
/// no `..`, no `.`, no root or drive, no empty path. Whatever `relative` was built from, the
/// result is under `root`.
pub fn join_under(root: &Path, relative: &str) -> Result<PathBuf, NameError> {
    let escapes = |why| NameError::Escapes {
        path: relative.to_string(),
        why,
    };
    if relative.is_empty() {
        return Err(escapes("it is empty"));
    }
    if relative.contains('\\') || relative.contains('\0') {
        return Err(escapes("it holds a backslash or NUL"));
    }
    for segment in relative.split('/') {
        match segment {
            "" => return Err(escapes("it is absolute or holds an empty segment")),
            "." | ".." => return Err(escapes("it holds '.' or '..'")),
            _ => {}
        }
    }
    // Belt and braces: whatever the platform makes of the segments, they are plain names.
    if !Path::new(relative)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(escapes("it is not a relative path of plain names"));
    }
    Ok(root.join(relative))
}

/// The file stem a Kubernetes kind is kept under in a snapshot: only the fixed set of kinds the
/// tool reads and writes; `None` for any other.
pub fn kind_file_stem(kind: &str) -> Option<&'static str> {
    const KINDS: &[(&str, &str)] = &[
        ("Namespace", "namespace"),
        ("ServiceAccount", "serviceaccount"),
        ("Pod", "pod"),
        ("Deployment", "deployment"),
        ("StatefulSet", "statefulset"),
        ("DaemonSet", "daemonset"),
        ("ReplicaSet", "replicaset"),
        ("Job", "job"),
        ("CronJob", "cronjob"),
        ("RoleBinding", "rolebinding"),
        ("ClusterRoleBinding", "clusterrolebinding"),
        ("ConfigMap", "configmap"),
        (
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfiguration",
        ),
    ];
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, stem)| *stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for good in ["a", "payments", "team-1", &"a".repeat(63)] {
            assert!(is_dns1123_label(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a.b",
            "a_b",
            "..",
            "../../x",
            "a\nb",
            &"a".repeat(64),
        ] {
            assert!(!is_dns1123_label(bad), "{bad:?}");
        }
        assert!(is_dns1123_subdomain("api.v2-app"));
        for bad in ["", ".", "..", "a..b", "a/b", ".a", "a.", "x\u{1b}[2J"] {
            assert!(!is_dns1123_subdomain(bad), "{bad:?}");
        }
        assert!(is_path_segment_name("system:controller:foo"));
        for bad in ["", ".", "..", "a/b", "a%2F", "a\u{1b}b"] {
            assert!(!is_path_segment_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn url_segments_cannot_leave_their_place() {
        assert_eq!(url_segment("payments"), "payments");
        assert_eq!(url_segment("api.v2"), "api.v2");
        assert_eq!(
            url_segment("../../../kube-system/secrets/aws-creds"),
            "..%2F..%2F..%2Fkube-system%2Fsecrets%2Faws-creds"
        );
        assert_eq!(url_segment(".."), "%2E%2E");
        assert_eq!(url_segment("."), "%2E");
        assert_eq!(url_segment("a?b#c%d"), "a%3Fb%23c%25d");
        assert_eq!(url_segment("system:x"), "system%3Ax");
        assert!(!url_segment("é/").contains('/'));
    }

    #[test]
    fn kubernetes_paths_keep_a_hostile_namespace_in_its_segment() {
        // Regression: namespaces were pasted into request paths.
        let accounts = crate::kubernetes::Resource::by_kind("ServiceAccount").unwrap();
        assert_eq!(
            accounts.collection(Some("../../../kube-system/secrets/aws-creds")),
            "/api/v1/namespaces/..%2F..%2F..%2Fkube-system%2Fsecrets%2Faws-creds/serviceaccounts"
        );
    }

    #[test]
    fn joined_paths_stay_under_their_root() {
        let root = Path::new("/snap");
        assert_eq!(
            join_under(root, "kubernetes/payments/pod.json").unwrap(),
            Path::new("/snap/kubernetes/payments/pod.json")
        );
        for bad in [
            "kubernetes/../../../../x/pod.json",
            "../x",
            "/etc/passwd",
            "a/./b",
            "",
            "a\\..\\b",
        ] {
            assert!(join_under(root, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_known_kinds_have_files() {
        assert_eq!(kind_file_stem("RoleBinding"), Some("rolebinding"));
        assert_eq!(kind_file_stem("../../x"), None);
        assert_eq!(kind_file_stem("Secret"), None);
    }
}
