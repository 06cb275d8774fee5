//! The tests: a registry of (testname, codename, function). Adding a test is one line
//! here and one `async fn(Ctx) -> R` in the module of its area.

use std::collections::HashMap;

use futures::future::BoxFuture;

use crate::ctx::{Ctx, R};

mod apimachinery;
mod apps;
mod crud;
mod lifecycle;
mod more;
mod published;
mod resources;
mod webhook;

/// One implemented test.
#[derive(Clone, Copy)]
pub struct Test {
    /// Upstream's testname.
    pub testname: &'static str,
    /// Upstream's codename.
    pub codename: &'static str,
    /// The test.
    pub run: fn(Ctx) -> BoxFuture<'static, R>,
}

/// A registry line: `t!(testname, codename, function)`.
macro_rules! t {
    ($testname:expr, $codename:expr, $f:path) => {
        Test {
            testname: $testname,
            codename: $codename,
            run: |c| Box::pin($f(c)),
        }
    };
}
pub(crate) use t;

/// Every implemented test.
pub fn registry() -> Vec<Test> {
    let mut all = Vec::new();
    all.extend(apimachinery::tests());
    all.extend(resources::tests());
    all.extend(crud::tests());
    all.extend(apps::tests());
    all.extend(more::tests());
    all.extend(published::tests());
    all.extend(webhook::tests());
    all
}

/// The implemented tests by codename.
pub fn by_codename() -> HashMap<&'static str, Test> {
    registry().into_iter().map(|t| (t.codename, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_names_an_upstream_test_by_testname_and_codename_once() {
        let list = crate::list::all();
        let mut seen = std::collections::HashSet::new();
        for t in registry() {
            assert!(seen.insert(t.codename), "{} registered twice", t.codename);
            let up = list
                .iter()
                .find(|u| u.codename == t.codename)
                .unwrap_or_else(|| panic!("no upstream test {}", t.codename));
            assert_eq!(up.testname, t.testname, "testname of {}", t.codename);
        }
    }
}
