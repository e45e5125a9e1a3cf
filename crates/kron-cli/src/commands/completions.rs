//! `kron completions bash|zsh|fish`: a completion script on standard output.

use clap::CommandFactory;
use clap_complete::{generate, shells};

use super::Ctx;
use crate::cli::{Cli, Shell};
use crate::error::CliResult;

pub fn run(ctx: &mut Ctx, shell: Shell) -> CliResult {
    let mut command = Cli::command();
    let mut script = Vec::new();
    match shell {
        Shell::Bash => generate(shells::Bash, &mut command, "kron", &mut script),
        Shell::Zsh => generate(shells::Zsh, &mut command, "kron", &mut script),
        Shell::Fish => generate(shells::Fish, &mut command, "kron", &mut script),
    }
    ctx.out.line(String::from_utf8_lossy(&script).trim_end())
}
