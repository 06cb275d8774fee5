//! CronJobs (upstream `ValidateCronJobCreate`/`ValidateCronJobUpdate` and
//! `pkg/registry/batch/cronjob`).

use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::cron::{load_location, parse_standard};
use super::job::validate_job_spec;
use crate::kinds::apps::workload::default_template;
use crate::kinds::validation::{Fields, nonnegative};
use crate::meta::{self, default_path};
use crate::registry::Strategy;

/// The CronJob strategy.
pub struct CronJobStrategy;

const CONCURRENCY: &[&str] = &["Allow", "Forbid", "Replace"];

/// The longest CronJob name: the controller appends an 11-character suffix to name
/// its Jobs, which are DNS-1035 labels of at most 63.
const MAX_NAME_LENGTH: usize = 52;

/// `validateScheduleFormat`: the schedule parses, and a time zone is set through
/// `timeZone`, not `TZ=` in the schedule (tolerated only where the old schedule had it).
fn validate_schedule(
    schedule: &str,
    allow_tz: bool,
    has_time_zone: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Err(e) = parse_standard(schedule) {
        errs.push(FieldError::invalid(path, schedule, e));
    }
    let mentions_tz = schedule.contains("TZ");
    if allow_tz && mentions_tz && has_time_zone {
        errs.push(FieldError::invalid(
            path,
            schedule,
            "cannot use both timeZone field and TZ or CRON_TZ in schedule",
        ));
    } else if !allow_tz && mentions_tz {
        errs.push(FieldError::invalid(
            path,
            schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    }
    errs
}

/// One component of an IANA name: `[A-Za-z.\-_0-9+]{1,14}`, not `.`/`..`, not led by `-`.
fn valid_zone_part(part: &str) -> bool {
    part != "."
        && part != ".."
        && !part.starts_with('-')
        && (1..=14).contains(&part.len())
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_+".contains(c))
}

/// `validateTimeZone`.
fn validate_time_zone(tz: &Value, path: &Path) -> ErrorList {
    let Some(name) = tz.as_str() else {
        return ErrorList::new();
    };
    if name.is_empty() {
        return vec![FieldError::invalid(
            path,
            name,
            "must be at least 1 character long",
        )];
    }
    if !name.split('/').all(valid_zone_part) {
        return vec![FieldError::invalid(
            path,
            name,
            format!("unknown time zone {name}"),
        )];
    }
    let mut errs = ErrorList::new();
    if name.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path,
            name,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = load_location(name) {
        errs.push(FieldError::invalid(path, name, e));
    }
    errs
}

/// `validateCronJobSpec`; `old` is the stored spec on update.
fn validate_spec(spec: &Value, old: Option<&Value>) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let schedule = spec.s("schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required(&path.child("schedule"), ""));
    } else {
        let allow_tz = old.is_some_and(|o| o.s("schedule").contains("TZ"));
        errs.extend(validate_schedule(
            schedule,
            allow_tz,
            spec.has("timeZone"),
            &path.child("schedule"),
        ));
    }
    errs.extend(nonnegative(
        spec.i("startingDeadlineSeconds"),
        &path.child("startingDeadlineSeconds"),
    ));
    if old.is_none_or(|o| o.f("timeZone") != spec.f("timeZone")) {
        errs.extend(validate_time_zone(
            spec.f("timeZone"),
            &path.child("timeZone"),
        ));
    }
    let policy = spec.s("concurrencyPolicy");
    if policy.is_empty() {
        errs.push(FieldError::required(&path.child("concurrencyPolicy"), ""));
    } else if !CONCURRENCY.contains(&policy) {
        errs.push(FieldError::not_supported(
            &path.child("concurrencyPolicy"),
            policy,
            CONCURRENCY,
        ));
    }
    // ValidateJobTemplateSpec: the Job spec, whose selector is always generated.
    let job_path = path.child("jobTemplate").child("spec");
    let job = spec.f("jobTemplate").f("spec");
    errs.extend(validate_job_spec(job, &job_path));
    if job.has("selector") {
        errs.push(FieldError::invalid(
            &job_path.child("selector"),
            job.f("selector").clone(),
            "`selector` will be auto-generated",
        ));
    }
    if job.b("manualSelector") {
        errs.push(FieldError::not_supported(
            &job_path.child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    for f in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        errs.extend(nonnegative(spec.i(f), &path.child(f)));
    }
    errs
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
        let mut errs = validate_spec(obj.f("spec"), None);
        let name = meta::name(obj);
        if name.len() > MAX_NAME_LENGTH {
            errs.push(FieldError::invalid(
                &Path::new("metadata").child("name"),
                name,
                "must be no more than 52 characters",
            ));
        }
        errs
    }

    /// Names longer than 52 characters stay updatable (older servers allowed them).
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_spec(new.f("spec"), Some(old.f("spec")))
    }

    /// Upstream's CronJob status strategy carries only the spec over.
    fn status_update_keeps_metadata(&self) -> bool {
        true
    }

    /// A status write changes only the status, which upstream does not validate.
    fn validate_status_update(&self, _new: &Value, _old: &Value) -> ErrorList {
        ErrorList::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `kubectl create cronjob hello --image=busybox --schedule="*/1 * * * *"` sends.
    fn kubectl_cronjob() -> Value {
        json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "hello"},
            "spec": {
                "schedule": "*/1 * * * *",
                "jobTemplate": {"metadata": {"name": "hello"}, "spec": {"template": {"metadata": {}, "spec": {
                    "containers": [{"name": "hello", "image": "busybox", "resources": {}}],
                    "restartPolicy": "OnFailure"
                }}}}
            }
        })
    }

    fn errors(mut obj: Value) -> Vec<String> {
        CronJobStrategy.default(&mut obj);
        CronJobStrategy
            .validate(&obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn kubectl_create_cronjob_is_accepted() {
        let e = errors(kubectl_cronjob());
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn schedules_and_time_zones() {
        let mut cj = kubectl_cronjob();
        cj["spec"]["schedule"] = json!("TZ=UTC 0 * * * *");
        assert_eq!(
            errors(cj.clone()),
            vec![
                "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
        cj["spec"]["schedule"] = json!("0 * * *");
        assert_eq!(
            errors(cj.clone()),
            vec![
                "spec.schedule: Invalid value: \"0 * * *\": expected exactly 5 fields, found 4: [0 * * *]"
            ]
        );
        cj["spec"]["schedule"] = json!("0 * * * *");
        cj["spec"]["timeZone"] = json!("Local");
        assert_eq!(
            errors(cj.clone())[0],
            "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
        );
        cj["spec"]["timeZone"] = json!("Etc/UTC");
        assert!(errors(cj).is_empty());
    }

    #[test]
    fn job_template_selector_is_generated() {
        let mut cj = kubectl_cronjob();
        cj["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
        assert!(errors(cj)[0].ends_with("`selector` will be auto-generated"));
    }

    #[test]
    fn long_names_are_refused_on_create() {
        let mut cj = kubectl_cronjob();
        cj["metadata"]["name"] = json!("c".repeat(53));
        assert!(errors(cj)[0].ends_with("must be no more than 52 characters"));
    }
}
