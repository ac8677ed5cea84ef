//! Ollama releases with known critical advisories, and which of them a
//! reported version is affected by. Pure data and a comparison: the
//! version comes from `/api/version`, asked through the proxy.

use std::cmp::Ordering;

/// One published advisory and the first release that fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advisory {
    pub id: &'static str,
    pub fixed_in: &'static str,
    pub summary: &'static str,
}

/// Critical advisories only: a finding here fails `check`.
pub const CRITICAL: &[Advisory] = &[Advisory {
    id: "CVE-2026-7482",
    fixed_in: "0.17.1",
    summary: "/api/create reads server memory and /api/push sends it out",
}];

/// What is known of a reported version.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Affected by these advisories (newest fix last).
    Affected(Vec<Advisory>),
    Clean,
    /// Built from source (Ollama reports 0.0.0) or not a version at all:
    /// nothing can be said.
    Unknown(&'static str),
}

pub fn judge(version: &str) -> Verdict {
    judge_against(version, CRITICAL)
}

fn judge_against(version: &str, advisories: &[Advisory]) -> Verdict {
    let Some(reported) = Version::parse(version) else {
        return Verdict::Unknown("not a release number");
    };
    if reported.numbers == [0, 0, 0] {
        return Verdict::Unknown("a build from source (it reports 0.0.0)");
    }
    let affected: Vec<Advisory> = advisories
        .iter()
        .filter(|a| Version::parse(a.fixed_in).is_some_and(|fixed| reported.cmp(&fixed) == Ordering::Less))
        .copied()
        .collect();
    if affected.is_empty() { Verdict::Clean } else { Verdict::Affected(affected) }
}

/// `MAJOR.MINOR.PATCH`, an optional leading `v`, an optional `-pre-release`
/// (which comes before its release, as in SemVer: 0.17.1-rc0 lacks what
/// 0.17.1 fixed, as far as anyone can tell from the number).
#[derive(Debug, PartialEq, Eq)]
struct Version {
    numbers: [u64; 3],
    pre_release: bool,
}

impl Version {
    fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        // Build metadata (`+...`) says nothing about the release.
        let text = text.split('+').next().unwrap_or_default();
        let text = text.strip_prefix('v').unwrap_or(text);
        let (release, pre_release) = match text.split_once('-') {
            Some((release, rest)) => (release, !rest.is_empty()),
            None => (text, false),
        };
        let mut parts = release.split('.');
        let mut numbers = [0u64; 3];
        for number in &mut numbers {
            let part = parts.next()?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *number = part.parse().ok()?;
        }
        parts.next().is_none().then_some(Version { numbers, pre_release })
    }

    fn cmp(&self, other: &Version) -> Ordering {
        self.numbers.cmp(&other.numbers).then(match (self.pre_release, other.pre_release) {
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => Ordering::Equal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_the_fix_are_affected_and_the_fix_and_later_are_not() {
        let affected = |v: &str| matches!(judge(v), Verdict::Affected(ref a) if a[0].id == "CVE-2026-7482");
        for version in ["0.13.0", "0.17.0", "v0.16.9", "0.17.1-rc0", "0.9.99"] {
            assert!(affected(version), "{version}");
        }
        for version in ["0.17.1", "0.17.2", "v0.18.0", "1.0.0", "0.17.1+build.5", "0.100.0"] {
            assert_eq!(judge(version), Verdict::Clean, "{version}");
        }
    }

    #[test]
    fn builds_from_source_and_odd_text_are_unknown_never_a_panic() {
        for version in ["0.0.0", "", "latest", "0.17", "0.17.1.2", "1..2", "x.y.z", "99999999999999999999.0.0", "é.1.2"]
        {
            assert!(matches!(judge(version), Verdict::Unknown(_)), "{version}");
        }
    }

    #[test]
    fn every_advisory_that_applies_is_listed() {
        let two = [
            Advisory { id: "A", fixed_in: "0.5.0", summary: "" },
            Advisory { id: "B", fixed_in: "0.9.0", summary: "" },
        ];
        let ids = |v| match judge_against(v, &two) {
            Verdict::Affected(list) => list.iter().map(|a| a.id).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(ids("0.4.0"), ["A", "B"]);
        assert_eq!(ids("0.6.0"), ["B"]);
        assert_eq!(judge_against("0.9.0", &two), Verdict::Clean);
    }
}
