//! ollama-secure: answers → validated config → rendered files → plan → dry-run
//! print or apply → check. Each stage is a module with one job; side effects
//! (processes, files, network) stay in `facts`, `apply`, `runner` and
//! `check`, so the rest is pure and snapshot-tested.

pub mod answers;
pub mod apply;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod error;
pub mod facts;
pub mod fields;
pub mod lock;
pub mod paths;
pub mod plan;
pub mod removal;
pub mod render;
pub mod runner;
pub mod secret;
pub mod setup;
pub mod sockets;
pub mod state;
pub mod userfile;
pub mod wizard;

use std::ffi::OsString;

use clap::Parser;

/// Runs the tool and returns the process exit code. Errors are printed
/// here, once.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => error::exit::OK,
                _ => error::exit::INPUT,
            };
        }
    };
    match commands::dispatch(cli.command) {
        Ok(()) => error::exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
