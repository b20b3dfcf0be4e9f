//! kube2iam (jtblin/kube2iam 0.10–0.15): configuration, role resolution and namespace restrictions.

use super::args::Flags;
use super::{
    BaseArn, Component, DefaultRole, LegacyAgent, NamespaceRule, PatternFormat, System, Verdict,
};
use crate::inventory::kube::Container;
use crate::inventory::{Cluster, Workload};

/// The default `--namespace-key`.
pub const ALLOWED_ROLES_ANNOTATION: &str = "iam.amazonaws.com/allowed-roles";

const BOOLEAN_FLAGS: &[&str] = &[
    "auto-discover-base-arn",
    "auto-discover-default-role",
    "namespace-restrictions",
    "debug",
    "verbose",
    "iptables",
    "insecure",
    "use-regional-sts-endpoint",
    "resolve-duplicate-cache-ips",
    "version",
];

pub fn configure(
    workload: &Workload,
    container: &Container,
    cluster: Option<&Cluster>,
) -> LegacyAgent {
    let flags = Flags::parse(container, BOOLEAN_FLAGS);
    let mut problems = Vec::new();
    let explicit_base = flags.get("base-role-arn").filter(|b| !b.is_empty());
    let autodiscover_base = flags.is_set("auto-discover-base-arn");
    let base_arn = match (explicit_base, autodiscover_base) {
        (Some(_), true) => {
            problems.push("--base-role-arn and --auto-discover-base-arn cannot be combined; kube2iam exits at start".to_string());
            BaseArn::Missing
        }
        (Some(base), false) => {
            if !base_arn_is_valid(base) {
                problems.push(format!("--base-role-arn={base:?} is not a valid role ARN prefix; kube2iam exits at start"));
            }
            // kube2iam appends the `/` a base ARN lacks.
            let base = if base.ends_with('/') {
                base.to_string()
            } else {
                format!("{base}/")
            };
            BaseArn::Explicit(base)
        }
        (None, true) => BaseArn::autodetect(cluster),
        (None, false) => BaseArn::Missing,
    };
    let prefix = match &base_arn {
        BaseArn::Missing => Some(""),
        other => other.prefix(),
    };
    let default_role = match (
        flags.get("default-role").filter(|r| !r.is_empty()),
        flags.is_set("auto-discover-default-role"),
    ) {
        (Some(_), true) => {
            problems.push("--default-role and --auto-discover-default-role cannot be combined; kube2iam exits at start".to_string());
            None
        }
        (Some(role), false) => resolve(prefix, role).map(DefaultRole::Explicit),
        (None, true) => Some(DefaultRole::NodeRole),
        (None, false) => None,
    };
    let namespace_rule = if flags.is_set("namespace-restrictions") {
        let format = match flags
            .get("namespace-restriction-format")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("regexp") => PatternFormat::Regexp,
            _ => PatternFormat::Glob,
        };
        NamespaceRule::Kube2iamAllowed {
            key: flags
                .get("namespace-key")
                .unwrap_or(ALLOWED_ROLES_ANNOTATION)
                .to_string(),
            format,
        }
    } else {
        NamespaceRule::Unrestricted
    };
    LegacyAgent {
        system: System::Kube2iam,
        component: Component::Kube2iam,
        workload: workload.key.clone(),
        image: container.image.clone().unwrap_or_default(),
        base_arn,
        role_key: flags
            .get("iam-role-key")
            .unwrap_or(super::ROLE_ANNOTATION)
            .to_string(),
        external_id_key: flags
            .get("iam-external-id")
            .unwrap_or(super::EXTERNAL_ID_ANNOTATION)
            .to_string(),
        namespace_rule,
        default_role,
        assume_role_arn: None,
        problems,
    }
}

/// `cmd/main.go`: `^arn:(\w|-)*:iam::\d+:role\/?(\w+|-|\/|\.)*$`.
fn base_arn_is_valid(base: &str) -> bool {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| {
            regex::Regex::new(r"^arn:(\w|-)*:iam::\d+:role/?(\w+|-|/|\.)*$")
                .expect("constant pattern")
        })
        .is_match(base)
}

/// kube2iam's `iam.RoleARN`: a value starting with `arn:` in any case is used as is; otherwise the
/// base ARN (which ends in `/`) is prefixed. Leading slashes are kept, unlike kiam.
pub fn resolve(prefix: Option<&str>, value: &str) -> Option<String> {
    if value.to_ascii_lowercase().starts_with("arn:") {
        return Some(value.to_string());
    }
    prefix.map(|prefix| format!("{prefix}{value}"))
}

/// kube2iam's `checkRoleForNamespace` (the default-role bypass is the caller's): the annotation is
/// a JSON array; each pattern is normalised with the base ARN and matched against the full ARN,
/// as a whole-string glob where only `*` is special, or as an unanchored Go regexp.
pub fn permits(
    value: Option<&str>,
    key: &str,
    format: PatternFormat,
    prefix: Option<&str>,
    role_arn: &str,
) -> Verdict {
    let Some(value) = value else {
        return Verdict::deny(format!("namespace has no {key} annotation"));
    };
    let patterns: Vec<String> = match serde_json::from_str(value) {
        Ok(patterns) => patterns,
        Err(e) => {
            return Verdict {
                permitted: false,
                rule: format!("{key} is not a JSON array of strings, so it matches nothing"),
                invalid: Some(e.to_string()),
            };
        }
    };
    let mut invalid = None;
    for pattern in &patterns {
        let Some(normalized) = resolve(prefix, pattern) else {
            continue;
        };
        let matched = match format {
            PatternFormat::Glob => go_glob(&normalized, role_arn),
            PatternFormat::Regexp => match super::compiled(&normalized) {
                Ok(re) => re.is_match(role_arn),
                Err(e) => {
                    invalid = Some(format!(
                        "pattern {pattern:?}: {}",
                        e.to_string().lines().last().unwrap_or_default().trim()
                    ));
                    false
                }
            },
        };
        if matched {
            return Verdict::allow(format!("allowed by {key} pattern {pattern:?}"));
        }
    }
    Verdict {
        permitted: false,
        rule: format!("no pattern in {key}={value} matches {role_arn}"),
        invalid,
    }
}

/// `ryanuber/go-glob`, ported line for line: only `*` is special and matches any run, `/` included.
pub fn go_glob(pattern: &str, subject: &str) -> bool {
    if pattern.is_empty() {
        return subject.is_empty();
    }
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return subject == pattern;
    }
    let leading_glob = pattern.starts_with('*');
    let trailing_glob = pattern.ends_with('*');
    let end = parts.len() - 1;
    let mut subject = subject;
    for (i, part) in parts.iter().enumerate().take(end) {
        // With a leading `*` the first part is empty and found at 0, as in Go.
        let index = match subject.find(part) {
            Some(index) if i > 0 || leading_glob || index == 0 => index,
            _ => return false,
        };
        subject = &subject[index + part.len()..];
    }
    trailing_glob || subject.ends_with(parts[end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "arn:aws:iam::111122223333:role/";

    #[test]
    fn resolution_follows_arn_go() {
        let cases: &[(Option<&str>, &str, Option<&str>)] = &[
            (
                Some(BASE),
                "app",
                Some("arn:aws:iam::111122223333:role/app"),
            ),
            (
                Some(BASE),
                "team/app",
                Some("arn:aws:iam::111122223333:role/team/app"),
            ),
            // No slash stripping: a leading `/` yields `role//app`, which IAM rejects.
            (
                Some(BASE),
                "/app",
                Some("arn:aws:iam::111122223333:role//app"),
            ),
            // `arn:` is checked case-insensitively, unlike kiam.
            (
                Some(BASE),
                "ARN:aws:iam::444455556666:role/x",
                Some("ARN:aws:iam::444455556666:role/x"),
            ),
            (
                Some(BASE),
                "arn:aws-us-gov:iam::111122223333:role/x",
                Some("arn:aws-us-gov:iam::111122223333:role/x"),
            ),
            (Some(""), "app", Some("app")),
            (None, "app", None),
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
    fn go_glob_matches_whole_strings_with_star_only() {
        let cases = [
            ("*", "anything/at/all", true),
            ("", "", true),
            ("", "x", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            (
                "arn:aws:iam::111122223333:role/app-*",
                "arn:aws:iam::111122223333:role/app-web",
                true,
            ),
            // `*` crosses `/`: a path is matched too.
            (
                "arn:aws:iam::111122223333:role/*",
                "arn:aws:iam::111122223333:role/team/app",
                true,
            ),
            ("*-web", "arn:aws:iam::1:role/app-web", true),
            ("*-web", "arn:aws:iam::1:role/app-web-2", false),
            ("a*b*c", "axxbyyc", true),
            ("a*ab", "ab", false),
            ("ab*b", "ab", false),
            // `?` and `[` are literal.
            ("app-?", "app-1", false),
            ("app-[0-9]", "app-[0-9]", true),
        ];
        for (pattern, subject, expected) in cases {
            assert_eq!(go_glob(pattern, subject), expected, "{pattern} ~ {subject}");
        }
    }

    #[test]
    fn namespace_restrictions_follow_mapper_go() {
        let key = ALLOWED_ROLES_ANNOTATION;
        let arn = "arn:aws:iam::111122223333:role/app-web";
        let cases: &[(Option<&str>, PatternFormat, bool, bool)] = &[
            (None, PatternFormat::Glob, false, false),
            (Some(r#"["app-web"]"#), PatternFormat::Glob, true, false),
            (Some(r#"["app-*"]"#), PatternFormat::Glob, true, false),
            (
                Some(r#"["db", "arn:aws:iam::111122223333:role/app-web"]"#),
                PatternFormat::Glob,
                true,
                false,
            ),
            (Some(r#"["app"]"#), PatternFormat::Glob, false, false),
            // Regexps are unanchored: "app" matches anywhere once normalised with the base ARN.
            (Some(r#"["app"]"#), PatternFormat::Regexp, true, false),
            (
                Some(r#"["arn:aws:iam::111122223333:role/app-.*"]"#),
                PatternFormat::Regexp,
                true,
                false,
            ),
            (Some(r#"["db-.*"]"#), PatternFormat::Regexp, false, false),
            // Not JSON: kube2iam logs and matches nothing.
            (Some("app-web"), PatternFormat::Glob, false, true),
            (
                Some(r#"{"app-web": true}"#),
                PatternFormat::Glob,
                false,
                true,
            ),
            (Some(r#"["app-(web"]"#), PatternFormat::Regexp, false, true),
        ];
        for (value, format, expected, invalid) in cases {
            let verdict = permits(*value, key, *format, Some(BASE), arn);
            assert_eq!(
                verdict.permitted, *expected,
                "{value:?} {format:?}: {}",
                verdict.rule
            );
            assert_eq!(verdict.invalid.is_some(), *invalid, "{value:?} {format:?}");
        }
    }

    #[test]
    fn base_arn_validation_follows_main_go() {
        assert!(base_arn_is_valid("arn:aws:iam::111122223333:role/"));
        assert!(base_arn_is_valid("arn:aws:iam::111122223333:role"));
        assert!(base_arn_is_valid(
            "arn:aws-cn:iam::111122223333:role/teams/a.b/"
        ));
        assert!(!base_arn_is_valid("arn:aws:iam::111122223333:user/"));
        assert!(!base_arn_is_valid("111122223333"));
    }
}
