//! One error type for the whole tool. Every error is printed once, by `run`,
//! and maps to a documented exit code.

use std::fmt;

/// Exit codes, documented in the README.
pub mod exit {
    /// Everything asked for was done (or, with `--dry-run`, printed).
    pub const OK: i32 = 0;
    /// The operation failed; every change it made was rolled back.
    pub const FAILED: i32 = 1;
    /// Bad input (answers file, flags): nothing was changed.
    pub const INPUT: i32 = 2;
    /// Changes were applied, but the check afterwards found a problem.
    pub const CHECK_FAILED: i32 = 3;
    /// A rollback did not complete: the system needs a human look.
    pub const ROLLBACK_INCOMPLETE: i32 = 4;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Input,
    Failed,
    CheckFailed,
    RollbackIncomplete,
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error { kind: Kind::Input, message: message.into() }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Error { kind: Kind::Failed, message: message.into() }
    }

    pub fn check_failed(message: impl Into<String>) -> Self {
        Error { kind: Kind::CheckFailed, message: message.into() }
    }

    pub fn rollback_incomplete(message: impl Into<String>) -> Self {
        Error { kind: Kind::RollbackIncomplete, message: message.into() }
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Input => exit::INPUT,
            Kind::Failed => exit::FAILED,
            Kind::CheckFailed => exit::CHECK_FAILED,
            Kind::RollbackIncomplete => exit::ROLLBACK_INCOMPLETE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
