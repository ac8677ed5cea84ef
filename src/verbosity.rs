//! How much the tool says, from `-q` and `-v`, decided once at start.
//! - quiet: errors, warnings, and what only this run can show (generated
//!   passwords and keys, a check's failures, a dry run's plan, `--json`);
//!   no headline, progress, summary or connection lines.
//! - normal: what a run does, step by step.
//! - verbose: also every command the tool runs (probes included), and its
//!   output as it comes, on standard error.
//!
//! Until `set` (unit tests, library use) it is normal.

use std::io::Write;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

static LEVEL: OnceLock<Verbosity> = OnceLock::new();
/// `--json`: standard output holds only the JSON; what a person reads goes
/// to standard error instead.
static JSON: OnceLock<bool> = OnceLock::new();

impl Verbosity {
    /// From the two flags (clap refuses both at once).
    pub fn from_flags(quiet: bool, verbose: bool) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }
}

/// Later calls change nothing.
pub fn set(level: Verbosity) {
    let _ = LEVEL.set(level);
}

/// From `--json`, before anything is printed. Later calls change nothing.
pub fn set_json_output() {
    let _ = JSON.set(true);
}

pub fn json_output() -> bool {
    JSON.get().copied().unwrap_or(false)
}

pub fn level() -> Verbosity {
    LEVEL.get().copied().unwrap_or(Verbosity::Normal)
}

pub fn quiet() -> bool {
    level() == Verbosity::Quiet
}

pub fn verbose() -> bool {
    level() == Verbosity::Verbose
}

/// Where what is always shown goes (`show!`): standard output, standard
/// error with `--json`.
pub fn shown() -> Box<dyn Write> {
    if json_output() { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) }
}

/// Where progress goes (`say!`): where `shown` says, or nowhere when quiet.
pub fn progress() -> Box<dyn Write> {
    if quiet() { Box::new(std::io::sink()) } else { shown() }
}

/// `println!` that never panics. A reader that went away (`| head`) must
/// not stop a run halfway through its changes: the run goes on, and what it
/// says is lost. (Rust ignores SIGPIPE, and `println!` panics on EPIPE.)
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// A generated secret (or the JSON that holds it), where `show!` puts it;
/// unlike `outln!`, a failure to write it is the caller's to act on: a
/// secret nobody saw must not be kept.
pub fn show_secret(text: &str) -> std::io::Result<()> {
    write_line(shown(), text)
}

/// The same on standard output whatever the flags: the JSON a script reads.
pub fn print_secret(text: &str) -> std::io::Result<()> {
    write_line(Box::new(std::io::stdout()), text)
}

fn write_line(mut out: Box<dyn Write>, text: &str) -> std::io::Result<()> {
    writeln!(out, "{text}")?;
    out.flush()
}

/// `print!` that never panics (see `outln!`).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics (see `outln!`).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` for progress: nothing when quiet; on standard error with
/// `--json`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        if !$crate::verbosity::quiet() {
            $crate::show!($($arg)*);
        }
    };
}

/// `println!` for what is always shown (a dry run's plan, generated
/// secrets, a check's report): on standard error with `--json`.
#[macro_export]
macro_rules! show {
    ($($arg:tt)*) => {
        if $crate::verbosity::json_output() {
            $crate::errln!($($arg)*);
        } else {
            $crate::outln!($($arg)*);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_choose_the_level() {
        assert_eq!(Verbosity::from_flags(false, false), Verbosity::Normal);
        assert_eq!(Verbosity::from_flags(true, false), Verbosity::Quiet);
        assert_eq!(Verbosity::from_flags(false, true), Verbosity::Verbose);
        assert_eq!(level(), Verbosity::Normal, "unset means normal");
    }
}
