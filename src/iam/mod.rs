//! IAM: ARNs, policy documents and the questions the scanner asks of them.

pub mod arn;
pub mod issuer;
pub mod policy;
pub mod written_arn;

/// IAM's wildcard match for actions and resources: `*` is any run of characters, `?` any one.
/// Actions compare case-insensitively, ARNs exactly; the caller folds case where IAM does.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let value: Vec<char> = value.chars().collect();
    // Classic two-pointer glob with backtracking to the last `*`: linear in practice, no recursion.
    let (mut p, mut v) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == value[v]) {
            p += 1;
            v += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, v));
            p += 1;
        } else if let Some((star_p, star_v)) = star {
            p = star_p + 1;
            v = star_v + 1;
            star = Some((star_p, star_v + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcard_match_follows_iam_rules() {
        let cases = [
            ("sts:AssumeRole", "sts:AssumeRole", true),
            ("sts:*", "sts:AssumeRole", true),
            ("*", "anything", true),
            ("sts:Assume*", "sts:AssumeRoleWithWebIdentity", true),
            ("sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", false),
            ("s?s:*", "sts:TagSession", true),
            (
                "arn:aws:iam::*:role/app-*",
                "arn:aws:iam::111122223333:role/app-web",
                true,
            ),
            (
                "arn:aws:iam::*:role/app-*",
                "arn:aws:iam::111122223333:role/db",
                false,
            ),
            ("", "", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
        ];
        for (pattern, value, expected) in cases {
            assert_eq!(
                wildcard_match(pattern, value),
                expected,
                "{pattern} ~ {value}"
            );
        }
    }
}
