//! Command-line flags as typed values, without any I/O. Help text here is the
//! user's reference: every flag says what it does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ollama-secure",
    version,
    about = "Put a password (and HTTPS) in front of an Ollama server, with nginx or Caddy.",
    long_about = "Put a password (and, when asked, HTTPS) in front of an Ollama server, with nginx or Caddy.\n\n\
        Ollama listens on 127.0.0.1:11434 without authentication. ollama-secure renders a reverse-proxy \
        configuration with HTTP Basic Auth, installs it safely (backups, validation, rollback) and checks \
        that it works.",
    after_help = "Exit codes: 0 success; 1 failed (changes rolled back); 2 bad input (nothing changed); \
        3 applied, but the check afterwards failed; 4 rollback incomplete (look at the listed files)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up the proxy: from an answers file, or by asking questions.
    Init(InitArgs),
    /// Write the files `init` would install into a folder, for review or other tools.
    Render(RenderArgs),
    /// Undo what `init` changed: remove its files and links, restore the files it
    /// replaced, reload (or stop) the proxy. Packages stay installed.
    Uninstall(UninstallArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// YAML answers file (see examples/); without it, the wizard asks.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,

    /// Print every file and command the setup would write or run, then stop. Changes nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The answers file used for `init` (only its `paths:` matter); without it,
    /// the default paths are used.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,

    /// Print what would be removed and restored, then stop. Changes nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// YAML answers file.
    #[arg(long, value_name = "FILE")]
    pub answers: PathBuf,

    /// Folder to write into; each file lands at its target path below it
    /// (e.g. OUT/etc/nginx/sites-available/ollama).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}
