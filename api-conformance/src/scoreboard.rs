//! The scoreboard: every upstream conformance test with its state, counted by area,
//! printed as a table and written as JSON; and the baseline check.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::list::Upstream;

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// It ran and passed.
    Passing {
        /// Seconds it took.
        seconds: f64,
    },
    /// It ran and failed.
    Failing {
        /// Why.
        message: String,
        /// Seconds it took.
        seconds: f64,
    },
    /// Not implemented yet: no test here, or a component it needs is missing.
    NotImplemented {
        /// What it waits for.
        waits: String,
    },
    /// The upstream suite did not run it (skipped, or absent from its report).
    NotRun {
        /// Why.
        reason: String,
    },
}

impl State {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        matches!(self, State::Passing { .. })
    }
}

/// One line of the scoreboard.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Upstream area.
    pub area: String,
    /// Upstream's testname.
    pub testname: String,
    /// Upstream's codename.
    pub codename: String,
    /// Upstream's file under test/e2e.
    pub file: String,
    /// Its state.
    #[serde(flatten)]
    pub state: State,
}

/// Counts of one area.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Passing tests.
    pub passing: usize,
    /// Failing tests.
    pub failing: usize,
    /// Tests not implemented yet (or not run by the upstream suite).
    pub not_implemented: usize,
    /// All tests of the area.
    pub total: usize,
}

/// The whole scoreboard.
#[derive(Debug, Clone, Serialize)]
pub struct Scoreboard {
    /// Where the results come from (`k1s api-conformance` or `upstream JUnit: <file>`).
    pub source: String,
    /// Counts by area.
    pub areas: BTreeMap<String, Counts>,
    /// Counts of all areas.
    pub total: Counts,
    /// Every test, in upstream's order.
    pub tests: Vec<Entry>,
}

impl Scoreboard {
    /// Builds the scoreboard from every upstream test and its state.
    pub fn new(source: &str, results: Vec<(Upstream, State)>) -> Self {
        let mut areas: BTreeMap<String, Counts> = BTreeMap::new();
        let mut total = Counts::default();
        let mut tests = Vec::new();
        for (t, state) in results {
            let c = areas.entry(t.area.clone()).or_default();
            for c in [c, &mut total] {
                c.total += 1;
                match &state {
                    State::Passing { .. } => c.passing += 1,
                    State::Failing { .. } => c.failing += 1,
                    State::NotImplemented { .. } | State::NotRun { .. } => c.not_implemented += 1,
                }
            }
            tests.push(Entry {
                area: t.area,
                testname: t.testname,
                codename: t.codename,
                file: t.file,
                state,
            });
        }
        Scoreboard {
            source: source.to_string(),
            areas,
            total,
            tests,
        }
    }

    /// The table by area, the failing tests with their messages, and what the tests not
    /// implemented yet wait for.
    pub fn render(&self) -> String {
        let mut s = String::new();
        // Upstream's report has tests it did not run; this suite has tests not written yet.
        let upstream = self
            .tests
            .iter()
            .any(|e| matches!(e.state, State::NotRun { .. }));
        let (column, heading) = if upstream {
            ("NOT RUN", "Not run")
        } else {
            ("NOT IMPLEMENTED", "Not implemented yet")
        };
        let _ = writeln!(s, "Conformance scoreboard ({})", self.source);
        let _ = writeln!(
            s,
            "{:<16} {:>8} {:>8} {:>16} {:>6}",
            "AREA", "PASSING", "FAILING", column, "TOTAL"
        );
        let row = |s: &mut String, name: &str, c: &Counts| {
            let _ = writeln!(
                s,
                "{:<16} {:>8} {:>8} {:>16} {:>6}",
                name, c.passing, c.failing, c.not_implemented, c.total
            );
        };
        for (area, c) in &self.areas {
            row(&mut s, area, c);
        }
        row(&mut s, "all", &self.total);
        let failing: Vec<&Entry> = self
            .tests
            .iter()
            .filter(|e| matches!(e.state, State::Failing { .. }))
            .collect();
        if !failing.is_empty() {
            let _ = writeln!(s, "\nFailing ({}):", failing.len());
            for e in failing {
                if let State::Failing { message, .. } = &e.state {
                    let first = message.lines().next().unwrap_or_default();
                    let _ = writeln!(s, "  FAIL [{}] {}\n       {}", e.area, e.codename, first);
                }
            }
        }
        let mut waiting: BTreeMap<(String, String), usize> = BTreeMap::new();
        for e in &self.tests {
            let why = match &e.state {
                State::NotImplemented { waits } => format!("waits for {waits}"),
                State::NotRun { reason } => reason.clone(),
                _ => continue,
            };
            *waiting.entry((e.area.clone(), why)).or_default() += 1;
        }
        if !waiting.is_empty() {
            let _ = writeln!(
                s,
                "\n{heading} ({}; each test by name in the JSON):",
                self.total.not_implemented
            );
            for ((area, why), n) in waiting {
                let _ = writeln!(s, "  {n:>4} {area:<16} {why}");
            }
        }
        s
    }

    /// One line per test: state, area, codename (and why, when not passing).
    pub fn render_all(&self) -> String {
        let mut s = String::new();
        for e in &self.tests {
            let (state, why) = match &e.state {
                State::Passing { .. } => ("PASS", String::new()),
                State::Failing { message, .. } => (
                    "FAIL",
                    message.lines().next().unwrap_or_default().to_string(),
                ),
                State::NotImplemented { waits } => ("TODO", format!("waits for {waits}")),
                State::NotRun { reason } => ("NOT RUN", reason.clone()),
            };
            let _ = writeln!(s, "{state:<7} {:<16} {}", e.area, e.codename);
            if !why.is_empty() {
                let _ = writeln!(s, "{:<24} {why}", "");
            }
        }
        s
    }

    /// Baseline tests (by codename) that do not pass now.
    pub fn regressions<'a>(&self, baseline: &'a [String]) -> Vec<&'a str> {
        baseline
            .iter()
            .filter(|b| {
                !self
                    .tests
                    .iter()
                    .any(|e| &e.codename == *b && e.state.passed())
            })
            .map(String::as_str)
            .collect()
    }

    /// Codenames of the passing tests, one a line (a new baseline).
    pub fn passing_lines(&self) -> String {
        self.tests
            .iter()
            .filter(|e| e.state.passed())
            .map(|e| format!("{}\n", e.codename))
            .collect()
    }
}

/// Reads a baseline: codenames, one a line; `#` starts a comment line.
pub fn parse_baseline(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(area: &str, name: &str) -> Upstream {
        Upstream {
            area: area.into(),
            release: "v1.9".into(),
            file: format!("{area}/x.go"),
            testname: name.into(),
            codename: format!("[sig-{area}] {name} [Conformance]"),
            waits: "kubelet".into(),
        }
    }

    #[test]
    fn counts_by_area_and_finds_regressions() {
        let board = Scoreboard::new(
            "test",
            vec![
                (t("apps", "a"), State::Passing { seconds: 1.0 }),
                (
                    t("apps", "b"),
                    State::Failing {
                        message: "boom".into(),
                        seconds: 1.0,
                    },
                ),
                (
                    t("node", "c"),
                    State::NotImplemented {
                        waits: "kubelet".into(),
                    },
                ),
            ],
        );
        assert_eq!(
            board.areas["apps"],
            Counts {
                passing: 1,
                failing: 1,
                not_implemented: 0,
                total: 2
            }
        );
        assert_eq!(board.total.total, 3);
        let text = board.render();
        assert!(
            text.contains("FAIL [apps] [sig-apps] b [Conformance]"),
            "{text}"
        );
        assert!(
            text.contains("1 node             waits for kubelet"),
            "{text}"
        );
        let baseline =
            parse_baseline("# passing\n[sig-apps] a [Conformance]\n[sig-apps] b [Conformance]\n");
        assert_eq!(
            board.regressions(&baseline),
            vec!["[sig-apps] b [Conformance]"]
        );
        assert_eq!(board.passing_lines(), "[sig-apps] a [Conformance]\n");
        let json = serde_json::to_value(&board).unwrap_or_default();
        assert_eq!(json["tests"][1]["state"], "failing");
        assert_eq!(json["tests"][2]["waits"], "kubelet");
    }
}
