//! ollama-secure: answers → validated config → desired state (`setup`) →
//! rendered files (`proxy`, `render`) → plan → `--dry-run` prints it |
//! apply executes it → check. Each stage is a module with one job; every
//! effect (processes, files, network, clock) goes through `system`, so the
//! rest is pure. ARCHITECTURE.md draws the pipeline.

pub mod access;
pub mod advisories;
pub mod answers;
pub mod apply;
pub mod ban;
pub mod certbot;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connect;
pub mod cors;
pub mod credentials;
pub mod error;
pub mod facts;
pub mod fields;
pub mod interrupt;
pub mod journal;
pub mod lock;
pub mod ollama;
pub mod paths;
pub mod plan;
pub mod proxy;
pub mod render;
pub mod schema;
pub mod secret;
pub mod setup;
pub mod sockets;
pub mod state;
pub mod style;
pub mod system;
pub mod usage;
pub mod user_service;
pub mod userfile;
pub mod verbosity;
pub mod wizard;

use std::ffi::OsString;

use clap::Parser;

/// Runs the tool and returns the process exit code. Errors are printed
/// here, once.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    style::detect();
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => error::exit::OK,
                // A launchd agent restarts on any failing status: a command
                // it cannot parse (an upgrade dropped a flag) would fail
                // again every 10 s.
                _ if args.iter().any(|a| a == crate::user_service::LAUNCHD_AGENT_FLAG) => error::exit::OK,
                _ => error::exit::INPUT,
            };
        }
    };
    verbosity::set(verbosity::Verbosity::from_flags(cli.quiet, cli.verbose));
    match commands::dispatch(cli.command, &system::RealSystem) {
        Ok(()) => error::exit::OK,
        Err(e) => {
            crate::errln!("{}", e.report(style::stderr()));
            e.exit_code()
        }
    }
}
