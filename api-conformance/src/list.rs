//! Upstream's conformance tests: the facts of `tests.tsv` (area, release, file, testname,
//! codename, and what a test not written here yet waits for).

/// One upstream conformance test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Upstream area: the folder of its file under test/e2e (common/X counts as X).
    pub area: String,
    /// Release that promoted it to conformance (`v1.29`).
    pub release: String,
    /// Its file under upstream's test/e2e.
    pub file: String,
    /// Upstream's short name (not unique).
    pub testname: String,
    /// Upstream's full ginkgo name (unique).
    pub codename: String,
    /// What it waits for while this suite has no test for it.
    pub waits: String,
}

/// Every upstream conformance test, in upstream's order.
pub fn all() -> Vec<Upstream> {
    parse(include_str!("../tests.tsv"))
}

/// Parses the tab-separated list (a header line, then one test a line).
fn parse(text: &str) -> Vec<Upstream> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let [area, release, file, testname, codename, waits] = c.as_slice() else {
                return None;
            };
            Some(Upstream {
                area: area.to_string(),
                release: release.to_string(),
                file: file.to_string(),
                testname: testname.to_string(),
                codename: codename.to_string(),
                waits: waits.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_all_449_tests_with_unique_codenames() {
        let all = all();
        assert_eq!(all.len(), 449);
        let mut names: Vec<&str> = all.iter().map(|t| t.codename.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 449);
        assert!(all.iter().all(|t| t.codename.contains("[Conformance]")));
    }
}
