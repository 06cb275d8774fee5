//! Reads the JUnit report of upstream's e2e suite (ginkgo v2's format, as hydrophone and
//! sonobuoy collect it) into the scoreboard's states.

use std::collections::HashMap;

use crate::list::Upstream;
use crate::scoreboard::State;

/// A JUnit report that could not be read.
#[derive(Debug)]
pub struct BadReport(pub String);

impl std::fmt::Display for BadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JUnit report: {}", self.0)
    }
}

/// One `<testcase>`: its name without ginkgo's node prefix, its state, seconds, message.
#[derive(Debug, Clone, PartialEq)]
struct Case {
    name: String,
    status: String,
    seconds: f64,
    message: String,
}

/// The state of every upstream conformance test in the report `xml`: a test absent from
/// it, or skipped, counts as not run (never as passing).
pub fn states(xml: &str, tests: &[Upstream]) -> Result<Vec<(Upstream, State)>, BadReport> {
    let cases = cases(xml)?;
    let mut by_name: HashMap<&str, &Case> = HashMap::new();
    for c in &cases {
        by_name.insert(c.name.as_str(), c);
    }
    Ok(tests
        .iter()
        .map(|t| {
            // Ginkgo may append the spec's labels after the text; the text is the codename.
            let case = by_name.get(t.codename.as_str()).copied().or_else(|| {
                cases
                    .iter()
                    .find(|c| c.name.starts_with(&format!("{} [", t.codename)))
            });
            let state = match case {
                None => State::NotRun {
                    reason: "not in the JUnit report (focus or skip left it out)".into(),
                },
                Some(c) => match c.status.as_str() {
                    "passed" => State::Passing { seconds: c.seconds },
                    "skipped" | "pending" => State::NotRun {
                        reason: if c.message.is_empty() {
                            "skipped by the suite".into()
                        } else {
                            format!("skipped by the suite: {}", c.message)
                        },
                    },
                    other => State::Failing {
                        message: if c.message.is_empty() {
                            other.to_string()
                        } else {
                            format!("{other}: {}", c.message)
                        },
                        seconds: c.seconds,
                    },
                },
            };
            (t.clone(), state)
        })
        .collect())
}

/// Every `<testcase>` of the report.
fn cases(xml: &str) -> Result<Vec<Case>, BadReport> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| BadReport(e.to_string()))?;
    let root = doc.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Err(BadReport(format!(
            "the root element is <{}>, not <testsuites>",
            root.tag_name().name()
        )));
    }
    let mut out = Vec::new();
    for tc in root.descendants().filter(|n| n.has_tag_name("testcase")) {
        let raw = tc.attribute("name").unwrap_or_default();
        // Ginkgo v2 names a spec `[It] <full text>`; other node types (BeforeSuite …)
        // are no conformance test and never match a codename.
        let name = raw.strip_prefix("[It] ").unwrap_or(raw).trim().to_string();
        let child = |tag: &str| tc.children().find(|n| n.has_tag_name(tag));
        let (derived, message) = if let Some(f) = child("failure").or_else(|| child("error")) {
            let text = f
                .attribute("message")
                .filter(|m| !m.is_empty())
                .or_else(|| f.text())
                .unwrap_or_default();
            ("failed", text.trim().to_string())
        } else if let Some(s) = child("skipped") {
            (
                "skipped",
                s.attribute("message")
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            )
        } else {
            ("passed", String::new())
        };
        // Ginkgo v2 writes `status`; older reports only the child elements.
        let status = tc.attribute("status").unwrap_or(derived).to_string();
        out.push(Case {
            name,
            status,
            seconds: tc
                .attribute("time")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0.0),
            message,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoreboard::Scoreboard;

    const FIXTURE: &str = include_str!("../testdata/junit_01.xml");

    #[test]
    fn reads_a_ginkgo_report_into_the_scoreboard() {
        let all = crate::list::all();
        let states = states(FIXTURE, &all).unwrap_or_else(|e| panic!("{e}"));
        let find = |code: &str| {
            states
                .iter()
                .find(|(t, _)| t.codename == code)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| panic!("{code} not listed"))
        };
        assert_eq!(
            find(
                "[sig-api-machinery] Watchers should be able to start watching from a specific resource version [Conformance]"
            ),
            State::Passing { seconds: 2.46 }
        );
        match find("[sig-network] DNS should provide DNS for the cluster [Conformance]") {
            State::Failing { message, .. } => {
                assert!(
                    message.starts_with("failed: [FAILED] Unexpected error"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Labels appended after the text still match.
        assert!(
            find("[sig-node] Pods should get a host IP [Conformance] [NodeConformance]").passed()
        );
        // A panicked spec fails; a skipped one and an absent one did not run.
        assert!(matches!(
            find("[sig-apps] Deployment deployment should support rollover [Conformance]"),
            State::Failing { .. }
        ));
        assert!(matches!(
            find(
                "[sig-storage] EmptyDir volumes should support (root,0644,tmpfs) [LinuxOnly] [Conformance] [NodeConformance]"
            ),
            State::NotRun { .. }
        ));
        let board = Scoreboard::new("upstream JUnit: fixture", states);
        assert_eq!(board.total.total, 449);
        assert_eq!(board.total.passing, 3);
        assert_eq!(board.total.failing, 2);
        assert_eq!(board.areas["apimachinery"].passing, 2);
    }

    #[test]
    fn a_report_that_is_no_junit_is_refused() {
        let all = crate::list::all();
        assert!(states("<html></html>", &all).is_err());
        assert!(states("not xml", &all).is_err());
    }
}
