//! Printers for the `batch` API group: Job and CronJob.

use jiff::Timestamp;
use serde_json::Value;

use super::docs::*;
use super::util::*;
use super::{AGE, CONTAINERS_WIDE, Column, IMAGES_WIDE, NAME, Printer, RowFn, col, wide};

/// Printer for a `batch` kind, if upstream has one.
pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, row): (&'static [Column], RowFn) = match kind {
        "Job" => (&JOB_COLUMNS, job_row),
        "CronJob" => (&CRON_JOB_COLUMNS, cron_job_row),
        _ => return None,
    };
    Some(Printer { columns, row })
}

static JOB_COLUMNS: [Column; 8] = [
    NAME,
    col("Status", "string", "Status of the job."),
    col("Completions", "string", JOB_SUCCEEDED),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", JOB_SELECTOR),
];

/// Upstream `hasJobCondition`: the first condition of the type decides.
fn job_condition(obj: &Value, ty: &str) -> bool {
    arr(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == ty)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// The STATUS cell of a Job.
fn job_status(obj: &Value) -> &'static str {
    if job_condition(obj, "Complete") {
        "Complete"
    } else if job_condition(obj, "Failed") {
        "Failed"
    } else if deleting(obj) {
        "Terminating"
    } else if job_condition(obj, "Suspended") {
        "Suspended"
    } else if job_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int_at(obj, &["status", "succeeded"]);
    let completions = match opt_int(obj, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_int(obj, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = parse_time(get(obj, &["status", "startTime"]));
    let completion = parse_time(get(obj, &["status", "completionTime"]));
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(s), None) => between(s, now),
        (Some(s), Some(c)) => between(s, c),
    };
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(obj)),
        cell(job_status(obj)),
        cell(completions),
        cell(duration),
        age(obj, now),
        cell(names),
        cell(images),
        cell(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

static CRON_JOB_COLUMNS: [Column; 10] = [
    NAME,
    col("Schedule", "string", CJ_SCHEDULE),
    col("Timezone", "string", CJ_TIMEZONE),
    col("Suspend", "boolean", CJ_SUSPEND),
    col("Active", "integer", CJ_ACTIVE),
    col("Last Schedule", "string", CJ_LAST_SCHEDULE),
    AGE,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", JOB_SELECTOR),
];

fn cron_job_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let last_schedule = match present(obj, &["status", "lastScheduleTime"]) {
        Some(t) => since(parse_time(Some(t)), now),
        None => "<none>".to_string(),
    };
    let time_zone = opt_str(obj, &["spec", "timeZone"]).unwrap_or("<none>");
    // spec.suspend defaults to false.
    let suspend = go_bool(opt_bool(obj, &["spec", "suspend"]).unwrap_or(false));
    let job_spec = get(obj, &["spec", "jobTemplate", "spec"]).unwrap_or(&Value::Null);
    let (names, images) = container_cells(arr(job_spec, &["template", "spec", "containers"]));
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "schedule"])),
        cell(time_zone),
        cell(suspend),
        int_cell(arr(obj, &["status", "active"]).len() as i64),
        cell(last_schedule),
        age(obj, now),
        cell(names),
        cell(images),
        cell(format_label_selector(get(job_spec, &["selector"]))),
    ]
}
