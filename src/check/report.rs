//! The verdict of `check`: one line per check with its evidence, as text
//! for people or JSON for scripts. Pure.

use std::time::Duration;

use serde::Serialize;

use crate::style::Tone;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Stable identifier (JSON, scripts).
    pub name: &'static str,
    pub title: &'static str,
    pub status: Status,
    /// The evidence: status codes, version, counts.
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u128>,
}

impl Outcome {
    pub fn new(name: &'static str, title: &'static str, status: Status, detail: impl Into<String>) -> Outcome {
        Outcome { name, title, status, detail: detail.into(), hint: None, elapsed_ms: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Outcome {
        self.hint = Some(hint.into());
        self
    }

    pub fn took(mut self, elapsed: Duration) -> Outcome {
        self.elapsed_ms = Some(elapsed.as_millis());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub url: String,
    pub passed: bool,
    pub checks: Vec<Outcome>,
}

impl Report {
    pub fn new(url: &str, checks: Vec<Outcome>) -> Report {
        Report { url: url.to_string(), passed: checks.iter().all(|c| c.status != Status::Fail), checks }
    }

    pub fn text(&self) -> String {
        let mut out = format!("Checking {}\n", self.url);
        for check in &self.checks {
            let style = crate::style::stdout();
            let mark = match check.status {
                Status::Pass => style.paint("PASS", Tone::Good),
                Status::Fail => style.paint("FAIL", Tone::Bad),
                Status::Skip => style.paint("skip", Tone::Faint),
            };
            let time = check.elapsed_ms.map(|ms| format!(" ({ms} ms)")).unwrap_or_default();
            out.push_str(&format!("  {mark}  {}: {}{time}\n", check.title, check.detail));
            if let Some(hint) = &check.hint {
                for line in hint.lines() {
                    out.push_str(&format!("        {line}\n"));
                }
            }
        }
        let failed: Vec<&str> = self.checks.iter().filter(|c| c.status == Status::Fail).map(|c| c.title).collect();
        let passed = self.checks.iter().filter(|c| c.status == Status::Pass).count();
        if failed.is_empty() {
            out.push_str(&format!("All {passed} checks passed.\n"));
        } else {
            out.push_str(&format!(
                "{} of {} checks failed: {}.\n",
                failed.len(),
                failed.len() + passed,
                failed.join(", ")
            ));
        }
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_summarises() {
        let report = Report::new(
            "https://x",
            vec![
                Outcome::new("a", "first", Status::Pass, "ok").took(Duration::from_millis(3)),
                Outcome::new("b", "second", Status::Fail, "bad").hint("do this"),
                Outcome::new("c", "third", Status::Skip, "not here"),
            ],
        );
        assert!(!report.passed);
        assert_eq!(
            report.text(),
            "Checking https://x\n  PASS  first: ok (3 ms)\n  FAIL  second: bad\n        do this\n  skip  third: not here\n1 of 2 checks failed: second.\n"
        );
    }
}
