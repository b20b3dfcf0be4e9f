//! Names for dedicated service accounts and copied RBAC bindings: deterministic, valid Kubernetes
//! names (DNS-1123 labels), and never equal to a name already taken.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

const MAX_LEN: usize = 63;

/// Lowercase alphanumerics and `-`, no leading/trailing `-`, no runs of `-`.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A name built from `parts`, unique among `taken`. When the readable name is too long or taken,
/// a short digest of `seed` (unique per purpose) is appended, so the result does not depend on
/// the order names are handed out in.
pub fn unique_name(parts: &[&str], seed: &str, taken: &BTreeSet<String>) -> String {
    let readable = sanitize(&parts.join("-"));
    let readable = if readable.is_empty() {
        "irsa".to_string()
    } else {
        readable
    };
    if readable.len() <= MAX_LEN && !taken.contains(&readable) {
        return readable;
    }
    let digest = format!("{:x}", Sha256::digest(seed.as_bytes()));
    for length in 6..=digest.len() {
        let suffix = &digest[..length];
        let room = MAX_LEN - suffix.len() - 1;
        let stem = readable[..readable.len().min(room)].trim_end_matches('-');
        let candidate = format!("{stem}-{suffix}");
        if !taken.contains(&candidate) {
            return candidate;
        }
    }
    unreachable!("a 64-character digest cannot be taken 58 times over")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::is_dns1123_label;

    #[test]
    fn sanitizes_role_names() {
        assert_eq!(
            sanitize("default-Payments_Worker"),
            "default-payments-worker"
        );
        assert_eq!(sanitize("a+=,.@b"), "a-b");
        assert_eq!(sanitize("--x--"), "x");
    }

    #[test]
    fn unique_names_are_valid_and_avoid_taken_ones() {
        let taken: BTreeSet<String> = ["default-payments-worker".to_string()].into();
        let name = unique_name(
            &["default", "payments-worker"],
            "payments/default/r",
            &taken,
        );
        assert!(is_dns1123_label(&name), "{name}");
        assert!(name.starts_with("default-payments-worker-"), "{name}");
        assert!(!taken.contains(&name));
        assert_eq!(
            name,
            unique_name(
                &["default", "payments-worker"],
                "payments/default/r",
                &taken
            ),
            "deterministic"
        );
        let long = "x".repeat(100);
        let name = unique_name(&[&long, "role"], "seed", &BTreeSet::new());
        assert!(is_dns1123_label(&name) && name.len() <= 63, "{name}");
    }
}
