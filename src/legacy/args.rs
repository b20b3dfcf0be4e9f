//! Command-line flags as Go's flag libraries (kingpin for kiam, pflag for kube2iam) read them from a
//! container's `command` and `args`.

use std::collections::BTreeMap;

use crate::inventory::kube::Container;

/// The flags of one container, last occurrence winning as in both libraries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    values: BTreeMap<String, String>,
    /// Tokens that are not flags (`server`, `agent`, the binary).
    pub words: Vec<String>,
}

impl Flags {
    /// Reads `--flag=value`, `--flag value` and bare boolean flags (`--flag`, kingpin's
    /// `--no-flag`). `booleans` lists flags that never consume the next token. `$(VAR)` references
    /// are expanded from the container's literal env, as the kubelet does.
    pub fn parse(container: &Container, booleans: &[&str]) -> Flags {
        let env: BTreeMap<&str, &str> = container
            .env
            .iter()
            .filter_map(|e| Some((e.name.as_str(), e.value.as_deref()?)))
            .collect();
        // `sh -c "kube2iam --flag=x ..."` puts every flag in one token; split it like the shell would.
        let tokens: Vec<String> = container
            .command
            .iter()
            .chain(container.args.iter())
            .flat_map(|t| t.split_whitespace())
            .map(|t| expand(t, &env))
            .collect();
        let mut flags = Flags::default();
        let mut i = 0;
        while i < tokens.len() {
            let token = &tokens[i];
            i += 1;
            let Some(flag) = token
                .strip_prefix("--")
                .or_else(|| token.strip_prefix('-').filter(|f| f.len() > 1))
            else {
                flags.words.push(token.clone());
                continue;
            };
            if let Some((name, value)) = flag.split_once('=') {
                flags.values.insert(name.to_string(), value.to_string());
            } else if booleans.contains(&flag) {
                flags.values.insert(flag.to_string(), "true".to_string());
            } else if let Some(negated) = flag.strip_prefix("no-").filter(|f| booleans.contains(f))
            {
                flags
                    .values
                    .insert(negated.to_string(), "false".to_string());
            } else if let Some(value) = tokens.get(i).filter(|next| !next.starts_with('-')) {
                flags.values.insert(flag.to_string(), value.clone());
                i += 1;
            } else {
                flags.values.insert(flag.to_string(), "true".to_string());
            }
        }
        flags
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A boolean flag: present without a value, or with a value Go's `strconv.ParseBool` accepts as true.
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"))
    }
}

fn expand(token: &str, env: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(token.len());
    let mut rest = token;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(')') {
            Some(end) if env.contains_key(&after[..end]) => {
                out.push_str(env[&after[..end]]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::kube::EnvVar;

    fn container(command: &[&str], args: &[&str]) -> Container {
        Container {
            name: "c".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![EnvVar {
                name: "BASE".into(),
                value: Some("arn:aws:iam::111122223333:role/".into()),
            }],
            ..Container::default()
        }
    }

    #[test]
    fn both_flag_forms_in_args_and_command() {
        let flags = Flags::parse(
            &container(
                &["/kiam", "server", "--role-base-arn", "arn:aws:iam::1:role/"],
                &[
                    "--session=x",
                    "--disable-strict-namespace-regexp",
                    "--level",
                    "debug",
                ],
            ),
            &["disable-strict-namespace-regexp"],
        );
        assert_eq!(flags.get("role-base-arn"), Some("arn:aws:iam::1:role/"));
        assert_eq!(flags.get("session"), Some("x"));
        assert!(flags.is_set("disable-strict-namespace-regexp"));
        assert_eq!(flags.get("level"), Some("debug"));
        assert_eq!(flags.words, vec!["/kiam", "server"]);
    }

    #[test]
    fn booleans_do_not_swallow_the_next_word_and_can_be_negated() {
        let flags = Flags::parse(
            &container(
                &[],
                &[
                    "--namespace-restrictions",
                    "server",
                    "--no-iptables-remove",
                    "--auto-discover-base-arn=false",
                ],
            ),
            &[
                "namespace-restrictions",
                "iptables-remove",
                "auto-discover-base-arn",
            ],
        );
        assert!(flags.is_set("namespace-restrictions"));
        assert!(!flags.is_set("iptables-remove"));
        assert!(!flags.is_set("auto-discover-base-arn"));
        assert_eq!(flags.words, vec!["server"]);
    }

    #[test]
    fn shell_form_and_env_expansion() {
        let flags = Flags::parse(
            &container(
                &["/bin/sh", "-c"],
                &["kube2iam --base-role-arn=$(BASE) --node=$(NODE_NAME) --default-role web"],
            ),
            &[],
        );
        assert_eq!(
            flags.get("base-role-arn"),
            Some("arn:aws:iam::111122223333:role/")
        );
        assert_eq!(flags.get("node"), Some("$(NODE_NAME)"));
        assert_eq!(flags.get("default-role"), Some("web"));
    }

    #[test]
    fn last_occurrence_wins() {
        let flags = Flags::parse(
            &container(&[], &["--iam-role-key=a", "--iam-role-key", "b"]),
            &[],
        );
        assert_eq!(flags.get("iam-role-key"), Some("b"));
    }
}
