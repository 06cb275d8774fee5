//! CronJobs.

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::apps::workload::default_template;
use crate::kinds::core::podspec::validate_pod_spec;
use crate::meta::{default_path, get_path};
use crate::registry::Strategy;

/// The CronJob strategy.
pub struct CronJobStrategy;

const CONCURRENCY: &[&str] = &["Allow", "Forbid", "Replace"];

/// Whether a schedule is a valid cron expression (5 fields or a @macro), as upstream's
/// robfig/cron standard parser accepts.
pub fn valid_schedule(s: &str) -> bool {
    let s = s.trim();
    let s = s
        .strip_prefix("TZ=")
        .or_else(|| s.strip_prefix("CRON_TZ="))
        .map_or(s, |rest| rest.split_once(' ').map_or("", |(_, r)| r));
    if s.starts_with('@') {
        return matches!(
            s,
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly"
        ) || s.starts_with("@every ");
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return false;
    }
    let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    let names = [
        &[][..],
        &[][..],
        &[][..],
        &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ][..],
        &["sun", "mon", "tue", "wed", "thu", "fri", "sat"][..],
    ];
    fields
        .iter()
        .zip(ranges)
        .zip(names)
        .all(|((f, (lo, hi)), names)| {
            f.split(',').all(|part| {
                let (range, step) = match part.split_once('/') {
                    Some((r, s)) => (r, Some(s)),
                    None => (part, None),
                };
                if step.is_some_and(|s| s.parse::<u32>().map_or(true, |n| n == 0)) {
                    return false;
                }
                if range == "*" || range == "?" {
                    return true;
                }
                let value = |v: &str| -> Option<u32> {
                    v.parse::<u32>().ok().or_else(|| {
                        names
                            .iter()
                            .position(|n| n.eq_ignore_ascii_case(v))
                            .map(|i| i as u32 + if names.len() == 12 { 1 } else { 0 })
                    })
                };
                let (a, b) = match range.split_once('-') {
                    Some((a, b)) => (value(a), value(b)),
                    None => (value(range), value(range)),
                };
                matches!((a, b), (Some(a), Some(b)) if a >= lo && b <= hi && a <= b)
            })
        })
}

impl Strategy for CronJobStrategy {
    fn default(&self, obj: &mut Value) {
        default_path(obj, &["spec", "concurrencyPolicy"], json!("Allow"));
        default_path(obj, &["spec", "suspend"], json!(false));
        default_path(obj, &["spec", "successfulJobsHistoryLimit"], json!(3));
        default_path(obj, &["spec", "failedJobsHistoryLimit"], json!(1));
        default_template(obj, &["spec", "jobTemplate", "spec", "template"]);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = ErrorList::new();
        let spec = Path::new("spec");
        match get_path(obj, &["spec", "schedule"]).and_then(Value::as_str) {
            None | Some("") => errs.push(FieldError::required(&spec.child("schedule"), "")),
            Some(s) if !valid_schedule(s) => errs.push(FieldError::invalid(
                &spec.child("schedule"),
                json!(s),
                "unparseable schedule",
            )),
            Some(_) => {}
        }
        if let Some(c) = get_path(obj, &["spec", "concurrencyPolicy"]).and_then(Value::as_str)
            && !CONCURRENCY.contains(&c)
        {
            errs.push(FieldError::not_supported(
                &spec.child("concurrencyPolicy"),
                json!(c),
                CONCURRENCY,
            ));
        }
        let tpath = spec
            .child("jobTemplate")
            .child("spec")
            .child("template")
            .child("spec");
        match get_path(obj, &["spec", "jobTemplate", "spec", "template", "spec"]) {
            Some(ps) => {
                errs.extend(validate_pod_spec(ps, &tpath));
                let rp = ps
                    .get("restartPolicy")
                    .and_then(Value::as_str)
                    .unwrap_or("Always");
                if !["OnFailure", "Never"].contains(&rp) {
                    errs.push(FieldError::not_supported(
                        &tpath.child("restartPolicy"),
                        json!(rp),
                        &["OnFailure", "Never"],
                    ));
                }
            }
            None => errs.push(FieldError::required(&tpath.child("containers"), "")),
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::valid_schedule;

    #[test]
    fn cron_schedules_parse_like_upstream() {
        for ok in [
            "*/1 * * * *",
            "0 0 * * 0",
            "@hourly",
            "5 4 * * sun",
            "0 22 * * 1-5",
            "TZ=UTC 0 * * * *",
        ] {
            assert!(valid_schedule(ok), "{ok}");
        }
        for bad in ["", "* * * *", "61 * * * *", "@sometimes", "*/0 * * * *"] {
            assert!(!valid_schedule(bad), "{bad}");
        }
    }
}
