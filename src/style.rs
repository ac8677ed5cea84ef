//! How output looks. On a terminal: colours and symbols (✓, ✗, …). Into a
//! pipe, a file or a log, with `NO_COLOR` set (no-color.org) or with
//! `TERM=dumb`: plain ASCII, so that logs and `grep` see words. Decided
//! once per stream when the tool starts (`detect`); until then (unit
//! tests, library use) everything is plain, so nothing depends on where a
//! test happens to run.

use std::io::IsTerminal;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Colours and symbols; otherwise plain ASCII.
    rich: bool,
}

static STDOUT: OnceLock<Style> = OnceLock::new();
static STDERR: OnceLock<Style> = OnceLock::new();

/// The colour of a word that carries meaning.
#[derive(Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
    Warn,
    Faint,
}

impl Style {
    pub const PLAIN: Style = Style { rich: false };
    pub const RICH: Style = Style { rich: true };

    /// Rich only on a terminal, never with `NO_COLOR` set to anything
    /// non-empty, never on a dumb terminal.
    pub fn choose(terminal: bool, no_color: Option<&str>, term: Option<&str>) -> Style {
        let refused = no_color.is_some_and(|v| !v.is_empty()) || term == Some("dumb");
        Style { rich: terminal && !refused }
    }

    pub fn is_rich(self) -> bool {
        self.rich
    }

    /// A step that was carried out.
    pub fn done(self) -> &'static str {
        if self.rich { "\x1b[32m✓\x1b[0m" } else { "ok" }
    }

    /// A step that failed.
    pub fn failed(self) -> &'static str {
        if self.rich { "\x1b[31m✗ failed\x1b[0m" } else { "FAILED" }
    }

    /// A step under way, or text cut short.
    pub fn ellipsis(self) -> &'static str {
        if self.rich { "…" } else { "..." }
    }

    /// `word` in the colour of `tone` (bold for the bad and the warning).
    pub fn paint(self, word: &str, tone: Tone) -> String {
        if !self.rich {
            return word.to_string();
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Bad => "1;31",
            Tone::Warn => "1;33",
            Tone::Faint => "2",
        };
        format!("\x1b[{code}m{word}\x1b[0m")
    }
}

/// Looks at the environment and both streams once; later calls change
/// nothing.
pub fn detect() {
    let no_color = std::env::var("NO_COLOR").ok();
    let term = std::env::var("TERM").ok();
    let _ = STDOUT.set(Style::choose(std::io::stdout().is_terminal(), no_color.as_deref(), term.as_deref()));
    let _ = STDERR.set(Style::choose(std::io::stderr().is_terminal(), no_color.as_deref(), term.as_deref()));
}

/// The style of what goes to standard output.
pub fn stdout() -> Style {
    STDOUT.get().copied().unwrap_or(Style::PLAIN)
}

/// The style of what goes to standard error (errors, warnings, prompts).
pub fn stderr() -> Style {
    STDERR.get().copied().unwrap_or(Style::PLAIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rich_only_on_a_terminal_without_no_color() {
        assert!(Style::choose(true, None, Some("xterm-256color")).is_rich());
        assert!(Style::choose(true, Some(""), None).is_rich(), "an empty NO_COLOR is unset (no-color.org)");
        assert!(!Style::choose(false, None, None).is_rich(), "a pipe");
        assert!(!Style::choose(true, Some("1"), None).is_rich());
        assert!(!Style::choose(true, None, Some("dumb")).is_rich());
    }

    #[test]
    fn plain_is_ascii_without_escapes() {
        let plain = Style::PLAIN;
        let words = [plain.done(), plain.failed(), plain.ellipsis()]
            .map(str::to_string)
            .into_iter()
            .chain([plain.paint("FAIL", Tone::Bad)]);
        for word in words {
            assert!(word.is_ascii() && !word.contains('\x1b'), "{word:?}");
        }
        assert_eq!(Style::RICH.paint("PASS", Tone::Good), "\x1b[32mPASS\x1b[0m");
        assert_eq!(stdout(), Style::PLAIN, "undetected means plain");
    }
}
