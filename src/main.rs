use std::process::ExitCode;

fn main() -> ExitCode {
    irsa_migrate::cli::main()
}
