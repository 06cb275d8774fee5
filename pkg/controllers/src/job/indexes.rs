//! Completion indexes of Indexed Jobs (upstream `indexed_job_utils.go`): the
//! `completedIndexes`/`failedIndexes` interval strings (`1,3-5`), and which index a pod
//! runs.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::core::v1::Pod;

/// The annotation (and label) that carries a pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Sorted, disjoint, non-adjacent closed intervals of indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(i32, i32)>);

impl Intervals {
    /// Parses `1,3-5`, keeping only indexes below `completions`; malformed parts are
    /// skipped, as upstream does (it logs and goes on).
    pub fn parse(s: &str, completions: i32) -> Self {
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
                None => (part.parse::<i32>(), part.parse::<i32>()),
            };
            let (Ok(lo), Ok(hi)) = (lo, hi) else { continue };
            let hi = hi.min(completions - 1);
            if lo < 0 || lo > hi {
                continue;
            }
            set.extend(lo..=hi);
        }
        Self::from_sorted(set)
    }

    fn from_sorted(set: BTreeSet<i32>) -> Self {
        let mut out: Vec<(i32, i32)> = Vec::new();
        for ix in set {
            match out.last_mut() {
                Some((_, hi)) if *hi + 1 == ix => *hi = ix,
                _ => out.push((ix, ix)),
            }
        }
        Self(out)
    }

    /// These intervals plus `indexes`.
    pub fn with(&self, indexes: impl IntoIterator<Item = i32>) -> Self {
        let mut set: BTreeSet<i32> = self.iter().collect();
        set.extend(indexes);
        Self::from_sorted(set)
    }

    /// Every index, in order.
    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    /// Whether `ix` is one of them.
    pub fn has(&self, ix: i32) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= ix && ix <= hi)
    }

    /// How many indexes they hold.
    pub fn total(&self) -> usize {
        self.0.iter().map(|&(lo, hi)| (hi - lo + 1) as usize).sum()
    }
}

impl fmt::Display for Intervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match hi - lo {
                0 => write!(f, "{lo}")?,
                // Upstream writes two neighbours as a list, not a range.
                1 => write!(f, "{lo},{hi}")?,
                _ => write!(f, "{lo}-{hi}")?,
            }
        }
        Ok(())
    }
}

/// The pod's completion index (from the annotation, else the label), if it has a valid
/// one.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let meta = &pod.metadata;
    let v = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX))
        .or_else(|| meta.labels.as_ref().and_then(|l| l.get(COMPLETION_INDEX)))?;
    v.parse::<i32>().ok().filter(|ix| *ix >= 0)
}

/// The first `count` indexes below `completions` that are neither done (`skip`) nor held
/// by an active pod.
pub fn first_pending(
    active: &[&Pod],
    skip: &Intervals,
    count: usize,
    completions: i32,
) -> Vec<i32> {
    let running: BTreeSet<i32> = active.iter().filter_map(|p| completion_index(p)).collect();
    (0..completions.max(0))
        .filter(|ix| !skip.has(*ix) && !running.contains(ix))
        .take(count)
        .collect()
}

/// The generateName prefix of an indexed pod, `<job>-<index>-`, with the job name cut
/// so that the generated name stays a valid pod name.
pub fn generate_name_with_index(job: &str, ix: i32) -> String {
    let suffix = format!("-{ix}-");
    // 63 characters, less the 5 random ones the API server appends.
    let max = 58usize.saturating_sub(suffix.len());
    let base: String = job.chars().take(max).collect();
    format!("{base}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_merge_and_print_as_upstream() {
        let i = Intervals::parse("1,3-5,7", 10);
        assert_eq!(i.to_string(), "1,3-5,7");
        assert_eq!(i.total(), 5);
        assert!(i.has(4) && !i.has(6));
        let j = i.with([2, 6, 8]);
        assert_eq!(j.to_string(), "1-8");
        assert_eq!(Intervals::parse("0,1", 10).to_string(), "0,1");
        // Out of range and malformed parts are dropped.
        assert_eq!(Intervals::parse("2-12,x,4-3", 5).to_string(), "2-4");
        assert_eq!(Intervals::default().with([0, 1, 3]).to_string(), "0,1,3");
    }

    #[test]
    fn pending_indexes_skip_done_and_running_ones() {
        let mut p = Pod::default();
        p.metadata.annotations = Some([(COMPLETION_INDEX.to_string(), "1".to_string())].into());
        let done = Intervals::parse("0,3", 6);
        assert_eq!(first_pending(&[&p], &done, 2, 6), [2, 4]);
        assert_eq!(first_pending(&[&p], &done, 9, 6), [2, 4, 5]);
        assert_eq!(generate_name_with_index("pi", 3), "pi-3-");
    }
}
