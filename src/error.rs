//! One error type for the whole tool. Every error is printed once, by
//! `run`, and maps to a documented exit code.

use std::fmt;
use std::io;
use std::path::PathBuf;

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
    /// Interrupted (SIGINT, SIGTERM); every change was rolled back (or,
    /// at the wizard's questions, none had been made: `interrupt::prompting`).
    pub const INTERRUPTED: i32 = 130;
}

/// A place in an input file, and the line it is on (for the excerpt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// 1-based, as editors count.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The text of that line, as written.
    pub text: String,
}

impl Position {
    /// The position of a 1-based line and column in `text`.
    pub fn at(text: &str, line: usize, column: usize) -> Option<Position> {
        // The parser places "the file ended too soon" just past the last line.
        let past_the_end = (line == text.lines().count() + 1).then_some("");
        let content = text.lines().nth(line.checked_sub(1)?).or(past_the_end)?;
        Some(Position { line, column: column.max(1), text: content.to_string() })
    }
}

/// The longest excerpt shown of one line; the rest is cut around the column.
const EXCERPT_WIDTH: usize = 100;

impl fmt::Display for Position {
    /// The line with a caret under the column, the way cargo shows it.
    /// Control and direction-changing characters (a tab, an escape
    /// sequence or U+202E planted in the file) are shown as one space each,
    /// so nothing reaches the terminal raw and the caret stays under its
    /// character.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars: Vec<char> = self.text.chars().map(|c| if unprintable(c) { ' ' } else { c }).collect();
        let column = self.column.saturating_sub(1).min(chars.len());
        let start = column.saturating_sub(EXCERPT_WIDTH / 2).min(chars.len().saturating_sub(EXCERPT_WIDTH));
        let end = (start + EXCERPT_WIDTH).min(chars.len());
        // Errors go to standard error: "…" on a terminal, "..." in a log.
        let cut = crate::style::stderr().ellipsis();
        let (before, after) = (if start > 0 { cut } else { "" }, if end < chars.len() { cut } else { "" });
        let shown: String = chars[start..end].iter().collect();
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        let caret = " ".repeat(before.chars().count() + column - start);
        write!(f, " {number} | {before}{}{after}\n {gutter} | {caret}^", shown.trim_end())
    }
}

/// A character that must not reach a terminal as it is: a control
/// character (an escape sequence starts with one) or one that reorders or
/// hides text (bidirectional overrides, zero-width characters).
pub fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` with every unprintable character (but line breaks) as U+FFFD.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c != '\n' && unprintable(c) { '\u{FFFD}' } else { c }).collect()
}

/// One thing wrong with the input: which file, which field, what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The answers file (or "wizard", a flag) the value came from.
    pub source: Option<String>,
    /// The field, as the answers file spells it (`users[1].username`).
    pub field: Option<String>,
    pub message: String,
    /// Where in the source file, when it is a file and the field is in it.
    pub position: Option<Position>,
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Problem {
        Problem { source: None, field: None, message: message.into(), position: None }
    }

    pub fn at(source: &str, field: &str, message: impl Into<String>) -> Problem {
        Problem {
            source: Some(source.to_string()),
            field: Some(field.to_string()),
            message: message.into(),
            position: None,
        }
    }
}

impl Problem {
    /// Sorts problems in the order of the file (compilers report so);
    /// those not placed in it keep their order, after the others.
    pub fn place_in_file(&self) -> (usize, usize) {
        self.position.as_ref().map_or((usize::MAX, 0), |p| (p.line, p.column))
    }
}

impl fmt::Display for Problem {
    /// `FILE:LINE:COL: field: message`, the form compilers and linters use
    /// (editors jump to it), then the line itself with a caret under the
    /// column; without a position, `FILE: field: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, &self.position) {
            (Some(source), Some(p)) => write!(f, "{source}:{}:{}: ", p.line, p.column)?,
            (Some(source), None) => write!(f, "{source}: ")?,
            (None, _) => {}
        }
        // Both may carry what the file says (a key written with escapes).
        if let Some(field) = &self.field {
            write!(f, "{}: ", printable(field))?;
        }
        f.write_str(&printable(&self.message))?;
        match &self.position {
            Some(p) if self.source.is_some() => write!(f, "\n{p}"),
            _ => Ok(()),
        }
    }
}

#[derive(Debug)]
pub enum Error {
    /// Bad input: nothing was changed.
    Input(Vec<Problem>),
    /// Reading or writing a file failed.
    Io { action: String, path: PathBuf, source: io::Error },
    /// A command exited with failure.
    Command { purpose: String, command: String, output: String },
    /// Anything else that failed, said in words.
    Failed(String),
    /// A step failed and every change before it was undone.
    RolledBack { cause: Box<Error>, nothing_changed: bool },
    /// A step failed and undoing it did not complete.
    RollbackIncomplete { cause: Box<Error>, leftovers: Vec<String> },
    /// Changes were applied (or nothing was asked to change) but a check
    /// found a problem.
    CheckFailed(String),
    /// SIGINT or SIGTERM arrived; what was done is undone (`leftovers`
    /// could not be).
    Interrupted { leftovers: Vec<String> },
}

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(vec![Problem::new(message)])
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }

    pub fn io(action: impl Into<String>, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { action: action.into(), path: path.into(), source }
    }

    pub fn check_failed(message: impl Into<String>) -> Self {
        Error::CheckFailed(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => exit::INPUT,
            Error::Io { .. } | Error::Command { .. } | Error::Failed(_) | Error::RolledBack { .. } => exit::FAILED,
            Error::CheckFailed(_) => exit::CHECK_FAILED,
            Error::RollbackIncomplete { .. } => exit::ROLLBACK_INCOMPLETE,
            Error::Interrupted { leftovers } if leftovers.is_empty() => exit::INTERRUPTED,
            Error::Interrupted { .. } => exit::ROLLBACK_INCOMPLETE,
        }
    }

    /// The error as printed for the user: each problem of bad input on
    /// its own `error:` line (with its excerpt), anything else once.
    pub fn report(&self, style: crate::style::Style) -> String {
        let label = style.paint("error:", crate::style::Tone::Bad);
        match self {
            Error::Input(problems) if !problems.is_empty() => {
                let lines: Vec<String> = problems.iter().map(|p| format!("{label} {p}")).collect();
                lines.join("\n")
            }
            other => format!("{label} {other}"),
        }
    }

    /// The input problems, for tests and callers that add context.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Input(problems) => problems,
            _ => &[],
        }
    }

    /// What failed in the first place, under any rollback report.
    pub fn cause(&self) -> &Error {
        match self {
            Error::RolledBack { cause, .. } | Error::RollbackIncomplete { cause, .. } => cause.cause(),
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(problems) => {
                let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
                f.write_str(&lines.join("\n"))
            }
            Error::Io { action, path, source } => write!(f, "{action} {}: {source}", path.display()),
            Error::Command { purpose, command, output } => {
                let output = output.trim();
                write!(f, "{purpose} failed: `{command}`\n{}", if output.is_empty() { "(no output)" } else { output })
            }
            Error::Failed(message) | Error::CheckFailed(message) => f.write_str(message),
            Error::RolledBack { cause, nothing_changed: true } => write!(f, "{cause}\nNothing had been changed."),
            Error::RolledBack { cause, nothing_changed: false } => {
                write!(f, "{cause}\nEvery change was rolled back; the previous files are in place.")
            }
            Error::Interrupted { leftovers } if leftovers.is_empty() => {
                f.write_str("interrupted; every change was rolled back, the previous files are in place")
            }
            Error::Interrupted { leftovers } => write!(
                f,
                "interrupted; the rollback did not complete, check these by hand:\n  - {}",
                leftovers.join("\n  - ")
            ),
            Error::RollbackIncomplete { cause, leftovers } => write!(
                f,
                "{cause}\nThe rollback did not complete; check these by hand:\n  - {}",
                leftovers.join("\n  - ")
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::RolledBack { cause, .. } | Error::RollbackIncomplete { cause, .. } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    /// Worth acting on, but it does not stop the run.
    Warning,
}

/// Something found while planning, in words (printed before the steps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub text: String,
    pub after_wizard: AfterWizard,
}

/// How a finding about the answers reads when the wizard gave them: its
/// user never saw the answers file's keys (`users[0]`, `generate: true`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AfterWizard {
    /// The same words fit.
    #[default]
    Same,
    /// The wizard said it already, when the answer was given.
    AlreadySaid,
    /// In the words of the wizard's questions.
    Reworded(String),
}

impl Finding {
    pub fn info(text: impl Into<String>) -> Finding {
        Finding { severity: Severity::Info, text: text.into(), after_wizard: AfterWizard::Same }
    }

    pub fn warning(text: impl Into<String>) -> Finding {
        Finding { severity: Severity::Warning, text: text.into(), after_wizard: AfterWizard::Same }
    }

    pub fn after_wizard(self, after_wizard: AfterWizard) -> Finding {
        Finding { after_wizard, ..self }
    }

    /// The text to show, or none, for answers from the wizard.
    pub fn wizard_text(&self) -> Option<&str> {
        match &self.after_wizard {
            AfterWizard::Same => Some(&self.text),
            AfterWizard::AlreadySaid => None,
            AfterWizard::Reworded(text) => Some(text),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Info => f.write_str(&self.text),
            Severity::Warning => write!(f, "warning: {}", self.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_source_and_field() {
        let e = Error::Input(vec![Problem::at("a.yaml", "port", "0 is not a TCP port"), Problem::new("plain")]);
        assert_eq!(e.to_string(), "a.yaml: port: 0 is not a TCP port\nplain");
        assert_eq!(e.exit_code(), exit::INPUT);
    }

    #[test]
    fn excerpts_point_at_the_column() {
        let p = Position { line: 3, column: 7, text: "port: eighty".into() };
        assert_eq!(p.to_string(), " 3 | port: eighty\n   |       ^");
        let p = Position { line: 12, column: 2, text: "\tx\u{1b}[2J\u{202e}".into() };
        assert_eq!(p.to_string(), " 12 |  x [2J\n    |  ^");
        let p = Problem { field: Some("\u{1b}[2J".into()), ..Problem::at("a.yaml", "x", "unknown key `\u{202e}x`") };
        assert_eq!(p.to_string(), "a.yaml: \u{FFFD}[2J: unknown key `\u{FFFD}x`");
        assert_eq!(Position::at("a: [1\n", 2, 1).map(|p| p.text), Some(String::new()), "just past the end");
        assert_eq!(Position::at("a: [1\n", 3, 1), None);
        let long = format!("key: {}", "é".repeat(300));
        let p = Position { line: 1, column: 200, text: long };
        let shown = p.to_string();
        let (line, caret) = shown.split_once('\n').unwrap();
        assert_eq!(line.chars().count(), " 1 | ...".chars().count() + EXCERPT_WIDTH + "...".len());
        assert_eq!(caret.chars().count(), " 1 | ...".chars().count() + EXCERPT_WIDTH / 2 + 1);
    }

    #[test]
    fn rollbacks_wrap_their_cause() {
        let cause = Error::Command { purpose: "validating".into(), command: "nginx -t".into(), output: " \n".into() };
        let e = Error::RolledBack { cause: Box::new(cause), nothing_changed: false };
        assert_eq!(
            e.to_string(),
            "validating failed: `nginx -t`\n(no output)\nEvery change was rolled back; the previous files are in place."
        );
        assert!(matches!(e.cause(), Error::Command { .. }));
        assert_eq!(e.exit_code(), exit::FAILED);
        let e = Error::RollbackIncomplete { cause: Box::new(Error::failed("x")), leftovers: vec!["a".into()] };
        assert_eq!(e.exit_code(), exit::ROLLBACK_INCOMPLETE);
        assert_eq!(Finding::warning("w").to_string(), "warning: w");
    }
}
