//! `irsa-migrate completions SHELL` and `irsa-migrate man [COMMAND]`: generated from the clap
//! definitions, so they always match the flags.

use clap::{Args, CommandFactory};

use super::{Cli, Error, print_styled};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (scan, plan, apply…); without it, the main page.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

pub fn completions(args: &CompletionsArgs) -> Result<(), Error> {
    print_styled(&completion_script(args.shell))
}

fn completion_script(shell: clap_complete::Shell) -> String {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "irsa-migrate", &mut script);
    String::from_utf8_lossy(&script).into_owned()
}

pub fn man(args: &ManArgs) -> Result<(), Error> {
    print_styled(&man_page(args.command.as_deref())?)
}

fn man_page(command: Option<&str>) -> Result<String, Error> {
    let main = Cli::command();
    let page = match command {
        None => main,
        Some(name) => {
            let Some(sub) = main.find_subcommand(name) else {
                let names: Vec<&str> = main.get_subcommands().map(|c| c.get_name()).collect();
                return Err(Error::Usage(format!(
                    "no command {name:?}; the commands are {}",
                    names.join(", ")
                )));
            };
            sub.clone()
                .display_name(format!("irsa-migrate-{name}"))
                .bin_name(format!("irsa-migrate {name}"))
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .map_err(Error::Output)?;
    Ok(String::from_utf8_lossy(&roff).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_cover_the_commands_and_their_flags() {
        let bash = completion_script(clap_complete::Shell::Bash);
        for word in ["rollback", "--rehearse", "--rollout-timeout", "--snapshot"] {
            assert!(bash.contains(word), "bash completions lack {word}");
        }
        assert!(completion_script(clap_complete::Shell::Zsh).contains("#compdef irsa-migrate"));
    }

    #[test]
    fn man_pages_are_roff_naming_the_command() {
        let page = man_page(None).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH irsa-migrate"),
            "{page}"
        );
        assert!(
            page.contains(".SH NAME") && page.contains("irsa\\-migrate"),
            "{page}"
        );
        let apply = man_page(Some("apply")).unwrap();
        assert!(apply.contains(".TH irsa-migrate-apply"), "{apply}");
        assert!(apply.contains("rollout\\-timeout"), "{apply}");
        let error = man_page(Some("nope")).unwrap_err().to_string();
        assert!(error.contains("scan, plan"), "{error}");
    }
}
