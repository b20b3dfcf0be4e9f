//! kiam (uswitch/kiam v3–v4.2): server configuration, role resolution and the namespace policy.

use super::args::Flags;
use super::{BaseArn, Component, LegacyAgent, NamespaceRule, System, Verdict};
use crate::inventory::kube::Container;
use crate::inventory::{Cluster, Workload};

/// The namespace annotation holding kiam's permitted-roles regexp.
pub const PERMITTED_ANNOTATION: &str = "iam.amazonaws.com/permitted";

const BOOLEAN_FLAGS: &[&str] = &[
    "role-base-arn-autodetect",
    "disable-strict-namespace-regexp",
    "iptables",
    "iptables-remove",
    "json-log",
    "prometheus-sync",
];

/// Reads a kiam container; `None` when it runs neither the server nor the agent (e.g. `kiam health`).
pub fn configure(
    workload: &Workload,
    container: &Container,
    cluster: Option<&Cluster>,
) -> Option<LegacyAgent> {
    let flags = Flags::parse(container, BOOLEAN_FLAGS);
    // kiam v3+ runs `kiam server|agent`; v2 shipped separate `/server` and `/agent` binaries.
    let is_word = |word: &str| {
        flags
            .words
            .iter()
            .any(|w| w == word || w.ends_with(&format!("/{word}")))
    };
    let component = if is_word("server") {
        Component::KiamServer
    } else if is_word("agent") {
        Component::KiamAgent
    } else {
        return None;
    };
    let mut problems = Vec::new();
    let base_arn = match (
        flags.get("role-base-arn"),
        flags.is_set("role-base-arn-autodetect"),
    ) {
        (Some(base), _) => BaseArn::Explicit(base.to_string()),
        (None, true) => BaseArn::autodetect(cluster),
        (None, false) => BaseArn::Missing,
    };
    let image = container.image.clone().unwrap_or_default();
    let mut assume_role_arn = None;
    if component == Component::KiamServer {
        if base_arn == BaseArn::Missing {
            problems.push(
                "kiam server has neither --role-base-arn nor --role-base-arn-autodetect and exits at start"
                    .to_string(),
            );
        }
        match flags.get("assume-role-arn").filter(|v| !v.is_empty()) {
            Some(value) => assume_role_arn = resolve(base_arn.prefix(), value),
            None if is_buggy_release(&image) => problems.push(
                "kiam v4.1 and v4.2 exit with \"role can't be empty\" when --assume-role-arn is unset (kiam issue #491)"
                    .to_string(),
            ),
            None => {}
        }
    }
    Some(LegacyAgent {
        system: System::Kiam,
        component,
        workload: workload.key.clone(),
        image,
        base_arn,
        role_key: super::ROLE_ANNOTATION.to_string(),
        external_id_key: super::EXTERNAL_ID_ANNOTATION.to_string(),
        namespace_rule: NamespaceRule::KiamPermitted {
            strict: !flags.is_set("disable-strict-namespace-regexp"),
        },
        default_role: None,
        assume_role_arn,
        problems,
    })
}

fn is_buggy_release(image: &str) -> bool {
    let tag = image.rsplit(':').next().unwrap_or_default();
    tag.starts_with("v4.1") || tag.starts_with("v4.2")
}

/// kiam's `arn_resolver.go`: a value starting with `arn:` (case-sensitive) is used as is;
/// otherwise one leading `/` is stripped and the raw base ARN is prefixed, with no `/` added.
pub fn resolve(prefix: Option<&str>, value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.starts_with("arn:") {
        return Some(value.to_string());
    }
    let name = value.strip_prefix('/').unwrap_or(value);
    prefix.map(|prefix| format!("{prefix}{name}"))
}

/// kiam's `NamespacePermittedRoleNamePolicy`: a missing or empty annotation denies; the regexp is
/// wrapped as `^` + expression + `$` (not grouped: `a|b` becomes `^a|b$`) unless strict matching
/// is disabled, and matched against the full ARN.
pub fn permits(expression: Option<&str>, strict: bool, role_arn: &str) -> Verdict {
    let Some(expression) = expression.filter(|e| !e.is_empty()) else {
        return Verdict::deny(format!(
            "namespace has no {PERMITTED_ANNOTATION} annotation, so kiam denies every role"
        ));
    };
    let pattern = if strict {
        format!("^{expression}$")
    } else {
        expression.to_string()
    };
    match super::compiled(&pattern) {
        Ok(re) if re.is_match(role_arn) => Verdict::allow(format!(
            "permitted by {PERMITTED_ANNOTATION}={expression:?}"
        )),
        Ok(_) => Verdict::deny(format!(
            "{PERMITTED_ANNOTATION}={expression:?} does not match {role_arn}"
        )),
        Err(e) => Verdict {
            permitted: false,
            rule: format!(
                "{PERMITTED_ANNOTATION}={expression:?} is not a valid regexp, so kiam denies the role"
            ),
            invalid: Some(first_line(&e.to_string())),
        },
    }
}

fn first_line(text: &str) -> String {
    text.lines().last().unwrap_or(text).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "arn:aws:iam::111122223333:role/";

    #[test]
    fn resolution_follows_arn_resolver_go() {
        let cases: &[(Option<&str>, &str, Option<&str>)] = &[
            (
                Some(BASE),
                "app",
                Some("arn:aws:iam::111122223333:role/app"),
            ),
            // A name may carry a path.
            (
                Some(BASE),
                "team/foo",
                Some("arn:aws:iam::111122223333:role/team/foo"),
            ),
            // One leading slash is stripped, only one.
            (
                Some(BASE),
                "/app",
                Some("arn:aws:iam::111122223333:role/app"),
            ),
            (
                Some(BASE),
                "//app",
                Some("arn:aws:iam::111122223333:role//app"),
            ),
            // Full ARNs are used as is, including other accounts and partitions.
            (
                Some(BASE),
                "arn:aws:iam::444455556666:role/x",
                Some("arn:aws:iam::444455556666:role/x"),
            ),
            (
                Some(BASE),
                "arn:aws-cn:iam::111122223333:role/x",
                Some("arn:aws-cn:iam::111122223333:role/x"),
            ),
            // The `arn:` check is case-sensitive: "ARN:..." is a name.
            (
                Some(BASE),
                "ARN:aws:iam::1:role/x",
                Some("arn:aws:iam::111122223333:role/ARN:aws:iam::1:role/x"),
            ),
            // The base ARN is used raw: no `/` is added.
            (
                Some("arn:aws:iam::111122223333:role"),
                "app",
                Some("arn:aws:iam::111122223333:roleapp"),
            ),
            (
                Some("arn:aws:iam::111122223333:role/teams/"),
                "app",
                Some("arn:aws:iam::111122223333:role/teams/app"),
            ),
            (None, "app", None),
            (Some(BASE), "", None),
        ];
        for (prefix, value, expected) in cases {
            assert_eq!(
                resolve(*prefix, value).as_deref(),
                *expected,
                "{prefix:?} + {value:?}"
            );
        }
    }

    #[test]
    fn namespace_policy_follows_policy_go() {
        let arn = "arn:aws:iam::111122223333:role/payments-api";
        let cases: &[(Option<&str>, bool, &str, bool)] = &[
            (None, true, arn, false),
            (Some(""), true, arn, false),
            // Matched against the full ARN (kiam v4), anchored by default.
            (Some("payments-.*"), true, arn, false),
            (Some(".*:role/payments-.*"), true, arn, true),
            (Some("payments-.*"), false, arn, true),
            (Some(".*"), true, arn, true),
            // `^a|b$`: the alternation is not grouped, so each side is anchored on one end only.
            (
                Some("arn:aws:iam::111122223333:role/x|payments-api"),
                true,
                arn,
                true,
            ),
            (
                Some("arn:aws:iam::111122223333:role/pay|nothing"),
                true,
                arn,
                true,
            ),
            (
                Some("arn:aws:iam::111122223333:role/payments"),
                true,
                arn,
                false,
            ),
        ];
        for (expression, strict, role, expected) in cases {
            let verdict = permits(*expression, *strict, role);
            assert_eq!(
                verdict.permitted, *expected,
                "{expression:?} strict={strict} on {role}: {}",
                verdict.rule
            );
            assert!(verdict.invalid.is_none());
        }
    }

    #[test]
    fn invalid_regexp_denies_and_says_why() {
        let verdict = permits(
            Some("payments-(.*"),
            true,
            "arn:aws:iam::111122223333:role/payments-x",
        );
        assert!(!verdict.permitted);
        assert!(verdict.invalid.is_some());
    }
}
