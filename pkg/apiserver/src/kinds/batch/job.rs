//! Jobs (upstream `pkg/apis/batch/validation` `ValidateJob*` and
//! `pkg/registry/batch/job`): a generated selector bound to the Job's uid, batch
//! defaults, the spec rules, and a pod template that may not change once the Job runs.

use std::collections::HashSet;

use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::meta::validate_label_selector;
use k1s_apimachinery::validation::{is_dns1123_label, is_domain_prefixed_path, is_qualified_name};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Map, Value, json};

use crate::kinds::apps::workload::{
    as_selector, default_template, validate_selector_matches_template,
};
use crate::kinds::core::podspec::validate_pod_template_spec;
use crate::kinds::validation::{Fields, immutable, immutable_field, nonnegative};
use crate::meta::{self, default_path, get_path};
use crate::registry::Strategy;

/// The Job strategy.
pub struct JobStrategy;

/// Label that binds a Job's pods to it.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// Label with the Job's name on its pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The unprefixed labels older controllers set as well.
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";

const MAX_PARALLELISM_FOR_INDEXED_JOB: i64 = 100_000;
const MAX_FAILED_INDEXES_FOR_INDEXED_JOB: i64 = 100_000;
const COMPLETIONS_SOFT_LIMIT: i64 = 100_000;
const PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS: i64 = 10_000;
const MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS: i64 = 10_000;
const MAX_POD_FAILURE_POLICY_RULES: usize = 20;
const MAX_ON_EXIT_CODES_VALUES: usize = 255;
const MAX_ON_POD_CONDITIONS_PATTERNS: usize = 20;
const MAX_MANAGED_BY_LENGTH: usize = 63;
const MAX_SUCCEEDED_INDEXES_LENGTH: usize = 64 * 1024;
const MAX_SUCCESS_POLICY_RULES: usize = 20;

const POD_FAILURE_ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];
const EXIT_CODE_OPERATORS: &[&str] = &["In", "NotIn"];
const CONDITION_STATUSES: &[&str] = &["False", "True", "Unknown"];

/// Go's `%q` of a sorted string set, as upstream's `valid values: %q` prints it: each
/// item quoted, space-separated, in brackets.
fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| quote(v)).collect();
    format!("[{}]", quoted.join(" "))
}

/// `parseIndexInterval`.
fn parse_index_interval(interval: &str, completions: i64) -> Result<(i64, i64), String> {
    let limits: Vec<&str> = interval.split('-').collect();
    if limits.len() > 2 {
        return Err(format!(
            "the fragment {} violates the requirement that an index interval can have at most two parts separated by '-'",
            quote(interval)
        ));
    }
    let parse = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("cannot convert string to integer for index: {}", quote(s)))
    };
    let x = parse(limits[0])?;
    if x >= completions {
        return Err(format!("too large index: {}", quote(limits[0])));
    }
    if limits.len() == 2 {
        let y = parse(limits[1])?;
        if y >= completions {
            return Err(format!("too large index: {}", quote(limits[1])));
        }
        if x >= y {
            return Err(format!("non-increasing order, previous: {x}, current: {y}"));
        }
        return Ok((x, y));
    }
    Ok((x, x))
}

/// `validateIndexesFormat`: the number of indexes, or why the list is malformed.
fn validate_indexes_format(indexes: &str, completions: i64) -> Result<i64, String> {
    if indexes.is_empty() {
        return Ok(0);
    }
    let mut last: Option<i64> = None;
    let mut total = 0;
    for interval in indexes.split(',') {
        let (x, y) = parse_index_interval(interval, completions)?;
        if let Some(l) = last
            && l >= x
        {
            return Err(format!("non-increasing order, previous: {l}, current: {x}"));
        }
        total += y - x + 1;
        last = Some(y);
    }
    Ok(total)
}

/// The names of a pod spec's containers and init containers.
fn container_names(pod: &Value) -> Vec<&str> {
    pod.a("containers")
        .iter()
        .chain(pod.a("initContainers"))
        .map(|c| c.s("name"))
        .collect()
}

/// `validatePodFailurePolicy` and its rules.
fn validate_pod_failure_policy(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let rules = spec.f("podFailurePolicy").a("rules");
    let rules_path = path.child("rules");
    if rules.len() > MAX_POD_FAILURE_POLICY_RULES {
        errs.push(FieldError::too_many(
            &rules_path,
            rules.len() as i64,
            MAX_POD_FAILURE_POLICY_RULES as i64,
        ));
    }
    let names = container_names(spec.f("template").f("spec"));
    for (i, rule) in rules.iter().enumerate() {
        let rp = rules_path.index(i);
        let action = rule.s("action");
        if action.is_empty() {
            errs.push(FieldError::required(
                &rp.child("action"),
                format!("valid values: {}", quoted_list(POD_FAILURE_ACTIONS)),
            ));
        } else if action == "FailIndex" {
            if !spec.has("backoffLimitPerIndex") {
                errs.push(FieldError::invalid(
                    &rp.child("action"),
                    action,
                    "requires the backoffLimitPerIndex to be set",
                ));
            }
        } else if !POD_FAILURE_ACTIONS.contains(&action) {
            errs.push(FieldError::not_supported(
                &rp.child("action"),
                action,
                POD_FAILURE_ACTIONS,
            ));
        }
        let on_exit = rule.f("onExitCodes");
        if rule.has("onExitCodes") {
            let ep = rp.child("onExitCodes");
            let op = on_exit.s("operator");
            if op.is_empty() {
                errs.push(FieldError::required(
                    &ep.child("operator"),
                    format!("valid values: {}", quoted_list(EXIT_CODE_OPERATORS)),
                ));
            } else if !EXIT_CODE_OPERATORS.contains(&op) {
                errs.push(FieldError::not_supported(
                    &ep.child("operator"),
                    op,
                    EXIT_CODE_OPERATORS,
                ));
            }
            if on_exit.has("containerName") && !names.contains(&on_exit.s("containerName")) {
                errs.push(FieldError::invalid(
                    &ep.child("containerName"),
                    on_exit.s("containerName"),
                    "must be one of the container or initContainer names in the pod template",
                ));
            }
            let values = on_exit.a("values");
            let vp = ep.child("values");
            if values.is_empty() {
                errs.push(FieldError::invalid(
                    &vp,
                    on_exit.f("values").clone(),
                    "at least one value is required",
                ));
            } else if values.len() > MAX_ON_EXIT_CODES_VALUES {
                errs.push(FieldError::too_many(
                    &vp,
                    values.len() as i64,
                    MAX_ON_EXIT_CODES_VALUES as i64,
                ));
            }
            let mut seen: HashSet<i64> = HashSet::new();
            let mut ordered = true;
            for (j, v) in values.iter().enumerate() {
                let n = v.as_i64().unwrap_or(0);
                if op == "In" && n == 0 {
                    errs.push(FieldError::invalid(
                        &vp.index(j),
                        n,
                        "must not be 0 for the In operator",
                    ));
                }
                if !seen.insert(n) {
                    errs.push(FieldError::duplicate(&vp.index(j), n));
                }
                if j > 0 && values[j - 1].as_i64().unwrap_or(0) > n {
                    ordered = false;
                }
            }
            if !ordered {
                errs.push(FieldError::invalid(
                    &vp,
                    on_exit.f("values").clone(),
                    "must be ordered",
                ));
            }
        }
        let conditions = rule.a("onPodConditions");
        if !conditions.is_empty() {
            let cp = rp.child("onPodConditions");
            if conditions.len() > MAX_ON_POD_CONDITIONS_PATTERNS {
                errs.push(FieldError::too_many(
                    &cp,
                    conditions.len() as i64,
                    MAX_ON_POD_CONDITIONS_PATTERNS as i64,
                ));
            }
            for (j, pattern) in conditions.iter().enumerate() {
                let pp = cp.index(j);
                let t = pattern.s("type");
                if t.is_empty() {
                    errs.push(FieldError::required(&pp.child("type"), ""));
                } else {
                    for msg in is_qualified_name(t) {
                        errs.push(FieldError::invalid(&pp.child("type"), t, msg));
                    }
                }
                let status = pattern.s("status");
                if status.is_empty() {
                    errs.push(FieldError::required(
                        &pp.child("status"),
                        format!("valid values: {}", quoted_list(CONDITION_STATUSES)),
                    ));
                } else if !CONDITION_STATUSES.contains(&status) {
                    errs.push(FieldError::not_supported(
                        &pp.child("status"),
                        status,
                        CONDITION_STATUSES,
                    ));
                }
            }
        }
        // Upstream shows no value for these two.
        if rule.has("onExitCodes") && !conditions.is_empty() {
            errs.push(FieldError::invalid(
                &rp,
                Value::Null,
                "specifying both OnExitCodes and OnPodConditions is not supported",
            ));
        }
        if !rule.has("onExitCodes") && conditions.is_empty() {
            errs.push(FieldError::invalid(
                &rp,
                Value::Null,
                "specifying one of OnExitCodes and OnPodConditions is required",
            ));
        }
    }
    errs
}

/// `validateSuccessPolicy` (an Indexed Job's).
fn validate_success_policy(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let rules = spec.f("successPolicy").a("rules");
    let rules_path = path.child("rules");
    if rules.is_empty() {
        errs.push(FieldError::required(
            &rules_path,
            "at least one rules must be specified when the successPolicy is specified",
        ));
    }
    if rules.len() > MAX_SUCCESS_POLICY_RULES {
        errs.push(FieldError::too_many(
            &rules_path,
            rules.len() as i64,
            MAX_SUCCESS_POLICY_RULES as i64,
        ));
    }
    let completions = spec.i("completions").unwrap_or(0);
    for (i, rule) in rules.iter().enumerate() {
        let rp = rules_path.index(i);
        if !rule.has("succeededCount") && !rule.has("succeededIndexes") {
            errs.push(FieldError::required(
                &rp,
                "at least one of succeededCount or succeededIndexes must be specified",
            ));
        }
        let mut total = 0;
        if rule.has("succeededIndexes") {
            let ip = rp.child("succeededIndexes");
            let indexes = rule.s("succeededIndexes");
            if indexes.len() > MAX_SUCCEEDED_INDEXES_LENGTH {
                errs.push(FieldError::too_long(
                    &ip,
                    "",
                    MAX_SUCCEEDED_INDEXES_LENGTH as i64,
                ));
            }
            match validate_indexes_format(indexes, completions) {
                Ok(n) => total = n,
                Err(e) => errs.push(FieldError::invalid(
                    &ip,
                    indexes,
                    format!("error parsing succeededIndexes: {e}"),
                )),
            }
        }
        if let Some(count) = rule.i("succeededCount") {
            let cp = rp.child("succeededCount");
            errs.extend(nonnegative(Some(count), &cp));
            if count > completions {
                errs.push(FieldError::invalid(
                    &cp,
                    count,
                    format!(
                        "must be less than or equal to {completions} (the number of specified completions)"
                    ),
                ));
            }
            if rule.has("succeededIndexes") && count > total {
                errs.push(FieldError::invalid(
                    &cp,
                    count,
                    format!(
                        "must be less than or equal to {total} (the number of indexes in the specified succeededIndexes field)"
                    ),
                ));
            }
        }
    }
    errs
}

/// Upstream's `validateJobSpec`: what a Job and a CronJob's job template share (not the
/// selector). `path` is the JobSpec's (`spec`, `spec.jobTemplate.spec`).
pub fn validate_job_spec(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        errs.extend(nonnegative(spec.i(f), &path.child(f)));
    }
    if let Some(m) = spec.i("maxFailedIndexes") {
        errs.extend(nonnegative(Some(m), &path.child("maxFailedIndexes")));
        if !spec.has("backoffLimitPerIndex") {
            errs.push(FieldError::required(
                &path.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if spec.has("managedBy") {
        let managed_by = spec.s("managedBy");
        errs.extend(is_domain_prefixed_path(
            &path.child("managedBy"),
            managed_by,
        ));
        if managed_by.len() > MAX_MANAGED_BY_LENGTH {
            errs.push(FieldError::too_long(
                &path.child("managedBy"),
                "",
                MAX_MANAGED_BY_LENGTH as i64,
            ));
        }
    }
    let mode = spec.s("completionMode");
    let indexed = mode == "Indexed";
    if spec.has("completionMode") {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                &path.child("completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if indexed {
            let completions = spec.i("completions");
            let parallelism = spec.i("parallelism");
            let max_failed = spec.i("maxFailedIndexes");
            if completions.is_none() {
                errs.push(FieldError::required(
                    &path.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = parallelism
                && p > MAX_PARALLELISM_FOR_INDEXED_JOB
            {
                errs.push(FieldError::invalid(
                    &path.child("parallelism"),
                    p,
                    format!(
                        "must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"
                    ),
                ));
            }
            if let (Some(c), Some(m)) = (completions, max_failed)
                && m > c
            {
                errs.push(FieldError::invalid(
                    &path.child("maxFailedIndexes"),
                    m,
                    "must be less than or equal to completions",
                ));
            }
            if let Some(m) = max_failed
                && m > MAX_FAILED_INDEXES_FOR_INDEXED_JOB
            {
                errs.push(FieldError::invalid(
                    &path.child("maxFailedIndexes"),
                    m,
                    format!("must be less than or equal to {MAX_FAILED_INDEXES_FOR_INDEXED_JOB}"),
                ));
            }
            if completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT)
                && spec.has("backoffLimitPerIndex")
            {
                let suffix = format!(
                    "when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
                );
                match max_failed {
                    None => errs.push(FieldError::required(
                        &path.child("maxFailedIndexes"),
                        format!("must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"),
                    )),
                    Some(m) if m > MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS => {
                        errs.push(FieldError::invalid(
                            &path.child("maxFailedIndexes"),
                            m,
                            format!(
                                "must be less than or equal to {MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS} {suffix}"
                            ),
                        ))
                    }
                    Some(_) => {}
                }
                if let Some(p) = parallelism
                    && p > PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS
                {
                    errs.push(FieldError::invalid(
                        &path.child("parallelism"),
                        p,
                        format!(
                            "must be less than or equal to {PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS} {suffix}"
                        ),
                    ));
                }
            }
        }
    }
    if !spec.has("completionMode") || mode == "NonIndexed" {
        for f in ["backoffLimitPerIndex", "maxFailedIndexes"] {
            if let Some(v) = spec.i(f) {
                errs.push(FieldError::invalid(
                    &path.child(f),
                    v,
                    "requires indexed completion mode",
                ));
            }
        }
    }
    let has_pfp = spec.has("podFailurePolicy");
    if has_pfp {
        errs.extend(validate_pod_failure_policy(
            spec,
            &path.child("podFailurePolicy"),
        ));
    }
    if spec.has("successPolicy") {
        if indexed {
            errs.extend(validate_success_policy(spec, &path.child("successPolicy")));
        } else {
            errs.push(FieldError::invalid(
                &path.child("successPolicy"),
                spec.f("successPolicy").clone(),
                "requires indexed completion mode",
            ));
        }
    }
    if spec.has("podReplacementPolicy") {
        let p = spec.s("podReplacementPolicy");
        let rp = path.child("podReplacementPolicy");
        if has_pfp {
            if p != "Failed" {
                errs.push(FieldError::not_supported(&rp, p, &["Failed"]));
            }
        } else if p != "Failed" && p != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                &rp,
                p,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let template = spec.f("template");
    errs.extend(validate_pod_template_spec(
        template,
        &path.child("template"),
    ));
    let rp = path.child("template").child("spec").child("restartPolicy");
    match template.f("spec").s("restartPolicy") {
        "" | "Always" => errs.push(FieldError::required(
            &rp,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" | "Never" => {
            let policy = template.f("spec").s("restartPolicy");
            if has_pfp && policy != "Never" {
                errs.push(FieldError::invalid(
                    &rp,
                    policy,
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &rp,
            other,
            &["OnFailure", "Never"],
        )),
    }
    errs
}

/// `ValidateHasLabel`: the generated label `key` is on the template with `expected`.
fn has_label(labels: &Map<String, Value>, key: &str, expected: &str) -> ErrorList {
    let path = Path::new("spec")
        .child("template")
        .child("metadata")
        .child("labels")
        .key(key);
    match labels.get(key).and_then(Value::as_str) {
        None => vec![FieldError::required(&path, format!("must be '{expected}'"))],
        Some(v) if v != expected => vec![FieldError::invalid(
            &path,
            Value::Object(labels.clone()),
            format!("must be '{expected}'"),
        )],
        Some(_) => ErrorList::new(),
    }
}

/// `validateGeneratedSelector`: unless the user manages the selector, the template
/// carries the generated labels and the selector selects them.
fn validate_generated_selector(job: &Value, require_prefixed: bool) -> ErrorList {
    let spec = job.f("spec");
    if spec.b("manualSelector") || !spec.has("selector") {
        return ErrorList::new();
    }
    let mut errs = ErrorList::new();
    let uid = meta::uid(job);
    let name = meta::name(job);
    if uid.is_empty() {
        errs.push(FieldError::required(
            &Path::new("metadata").child("uid"),
            "",
        ));
    }
    let labels = spec
        .f("template")
        .f("metadata")
        .m("labels")
        .cloned()
        .unwrap_or_default();
    errs.extend(has_label(&labels, LEGACY_CONTROLLER_UID_LABEL, uid));
    errs.extend(has_label(&labels, LEGACY_JOB_NAME_LABEL, name));
    let mut expected = Map::new();
    if require_prefixed {
        errs.extend(has_label(&labels, CONTROLLER_UID_LABEL, uid));
        errs.extend(has_label(&labels, JOB_NAME_LABEL, name));
        expected.insert(CONTROLLER_UID_LABEL.into(), json!(uid));
        expected.insert(JOB_NAME_LABEL.into(), json!(name));
    }
    expected.insert(LEGACY_CONTROLLER_UID_LABEL.into(), json!(uid));
    expected.insert(LEGACY_JOB_NAME_LABEL.into(), json!(name));
    if let Some(sel) = as_selector(spec.f("selector"))
        && !sel.matches(&expected)
    {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("selector"),
            spec.f("selector").clone(),
            "`selector` not auto-generated",
        ));
    }
    errs
}

/// `ValidateJob`.
fn validate_job(job: &Value, require_prefixed: bool) -> ErrorList {
    let spec = job.f("spec");
    let path = Path::new("spec");
    let mut errs = validate_generated_selector(job, require_prefixed);
    errs.extend(validate_job_spec(spec, &path));
    if spec.has("selector") {
        errs.extend(validate_label_selector(
            Some(spec.f("selector")),
            &path.child("selector"),
        ));
    } else {
        errs.push(FieldError::required(&path.child("selector"), ""));
    }
    if let Some(sel) = as_selector(spec.f("selector")) {
        // A missing selector selects nothing, so the template never matches it.
        errs.extend(validate_selector_matches_template(
            &sel,
            spec.f("template"),
            &path.child("template"),
        ));
    }
    if spec.s("completionMode") == "Indexed"
        && let Some(c) = spec.i("completions")
        && c > 0
    {
        let name = meta::name(job);
        let hostname = format!("{name}-{}", c - 1);
        if !is_dns1123_label(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                &Path::new("metadata").child("name"),
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    errs
}

/// `validatePodTemplateUpdate`: the template is fixed, except that a suspended Job that
/// never started may change its scheduling directives, labels and annotations.
fn validate_template_update(new: &Value, old: &Value) -> ErrorList {
    let (spec, old_spec) = (new.f("spec"), old.f("spec"));
    let template = spec.f("template");
    let mut old_template = old_spec.f("template").clone();
    let suspended = old_spec.b("suspend");
    let not_started = !old.f("status").has("startTime");
    if suspended && not_started {
        let new_pod = template.f("spec");
        if let Some(o) = old_template.as_object_mut() {
            let meta = o.entry("metadata").or_insert_with(|| json!({}));
            if let Some(m) = meta.as_object_mut() {
                for k in ["labels", "annotations"] {
                    match template.f("metadata").get(k) {
                        Some(v) => m.insert(k.into(), v.clone()),
                        None => m.remove(k),
                    };
                }
            }
            let pod = o.entry("spec").or_insert_with(|| json!({}));
            if let Some(p) = pod.as_object_mut() {
                for k in ["nodeSelector", "tolerations", "schedulingGates"] {
                    match new_pod.get(k) {
                        Some(v) => p.insert(k.into(), v.clone()),
                        None => p.remove(k),
                    };
                }
                match (new_pod.get("affinity"), p.get_mut("affinity")) {
                    (None, Some(Value::Object(a))) => {
                        a.remove("nodeAffinity");
                    }
                    (Some(na), Some(Value::Object(a))) => {
                        a.insert("nodeAffinity".into(), na.f("nodeAffinity").clone());
                    }
                    (Some(na), _) => {
                        p.insert(
                            "affinity".into(),
                            json!({"nodeAffinity": na.f("nodeAffinity").clone()}),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    immutable(
        template,
        &old_template,
        &Path::new("spec").child("template"),
    )
}

/// `ValidateJobSpecUpdate`'s transition rules.
fn validate_spec_update(new: &Value, old: &Value) -> ErrorList {
    let (spec, old_spec) = (new.f("spec"), old.f("spec"));
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    if spec.s("completionMode") == "Indexed" {
        // Indexed Jobs scale elastically: completions follow parallelism.
        if spec.f("completions") != old_spec.f("completions")
            && let Some(c) = spec.i("completions")
            && Some(c) != spec.i("parallelism")
        {
            errs.push(FieldError::invalid(
                &path.child("completions"),
                c,
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    } else {
        errs.extend(immutable_field(spec, old_spec, "completions", &path));
    }
    errs.extend(immutable_field(spec, old_spec, "selector", &path));
    errs.extend(validate_template_update(new, old));
    for f in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        errs.extend(immutable_field(spec, old_spec, f, &path));
    }
    errs
}

/// Upstream's `generateSelector`: the generated labels go on the template unless the
/// user set them (a conflicting value is then refused by validation), and the selector
/// gains the controller-uid requirement.
fn generate_selector(obj: &mut Value) {
    let uid = meta::uid(obj).to_string();
    let name = meta::name(obj).to_string();
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    if let Some(l) = labels.as_object_mut() {
        for (k, v) in [
            (LEGACY_JOB_NAME_LABEL, &name),
            (JOB_NAME_LABEL, &name),
            (LEGACY_CONTROLLER_UID_LABEL, &uid),
            (CONTROLLER_UID_LABEL, &uid),
        ] {
            l.entry(k).or_insert_with(|| json!(v));
        }
    }
    let selector = &mut obj["spec"]["selector"];
    if !selector.is_object() {
        *selector = json!({});
    }
    let match_labels = &mut selector["matchLabels"];
    if !match_labels.is_object() {
        *match_labels = json!({});
    }
    if let Some(m) = match_labels.as_object_mut() {
        m.entry(CONTROLLER_UID_LABEL).or_insert_with(|| json!(uid));
    }
}

impl Strategy for JobStrategy {
    fn default(&self, obj: &mut Value) {
        let has = |o: &Value, f: &str| get_path(o, &["spec", f]).is_some_and(|v| !v.is_null());
        if !has(obj, "completions") && !has(obj, "parallelism") {
            default_path(obj, &["spec", "completions"], json!(1));
        }
        default_path(obj, &["spec", "parallelism"], json!(1));
        // Per-index back-off replaces the Job-wide limit, which then never bites.
        let per_index = has(obj, "backoffLimitPerIndex");
        default_path(
            obj,
            &["spec", "backoffLimit"],
            json!(if per_index { i32::MAX } else { 6 }),
        );
        default_path(obj, &["spec", "completionMode"], json!("NonIndexed"));
        default_path(obj, &["spec", "suspend"], json!(false));
        if get_path(obj, &["spec", "manualSelector"]).is_some_and(Value::is_null)
            && let Some(s) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            s.remove("manualSelector");
        }
        let failed = get_path(obj, &["spec", "podFailurePolicy"]).is_some();
        default_path(
            obj,
            &["spec", "podReplacementPolicy"],
            json!(if failed {
                "Failed"
            } else {
                "TerminatingOrFailed"
            }),
        );
        default_template(obj, &["spec", "template"]);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    /// Upstream's Job status strategy carries only the spec over.
    fn status_update_keeps_metadata(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
        // Unless the user manages the selector, bind the template to this Job's uid.
        if !obj.f("spec").b("manualSelector") && !meta::uid(obj).is_empty() {
            generate_selector(obj);
        }
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_job(obj, true)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        // Jobs stored before the prefixed labels existed are not required to have them.
        let require_prefixed = old
            .f("spec")
            .f("template")
            .f("metadata")
            .f("labels")
            .get(JOB_NAME_LABEL)
            .is_some();
        let mut errs = validate_job(new, require_prefixed);
        errs.extend(validate_spec_update(new, old));
        errs
    }

    /// The counters of `validateJobStatus` (the transition rules upstream gates on the
    /// Job controller's own writes are left to it).
    fn validate_status_update(&self, new: &Value, _old: &Value) -> ErrorList {
        let status = new.f("status");
        let path = Path::new("status");
        let mut errs = ErrorList::new();
        for f in ["active", "succeeded", "failed", "ready", "terminating"] {
            errs.extend(nonnegative(status.i(f), &path.child(f)));
        }
        errs
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let succeeded = get_path(obj, &["status", "succeeded"])
            .and_then(Value::as_i64)
            .unwrap_or(0);
        vec![("status.successful", succeeded.to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    #[tokio::test]
    async fn a_status_patch_keeps_its_metadata_but_not_its_spec() {
        let t = crate::test_util::TestApiServer::new().await;
        let api = t.api();
        let jobs = "/apis/batch/v1/namespaces/default/jobs";
        api.create(
            jobs,
            json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}),
        )
        .await;
        let (code, v) = api
            .call_with(
                "PATCH",
                &format!("{jobs}/j/status"),
                "application/merge-patch+json",
                &json!({"metadata": {"annotations": {"patchedstatus": "true"}},
                        "spec": {"parallelism": 5},
                        "status": {"startTime": "2024-01-01T00:00:00Z"}}),
            )
            .await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["metadata"]["annotations"]["patchedstatus"], "true", "{v}");
        assert_eq!(v["status"]["startTime"], "2024-01-01T00:00:00Z", "{v}");
        assert_eq!(v["spec"]["parallelism"], 1, "{v}");
        assert_eq!(v["metadata"]["generation"], 1, "{v}");
    }

    #[test]
    fn index_interval_errors_quote_like_go() {
        // Go's %q: quotes and control characters are escaped.
        assert_eq!(
            parse_index_interval("1\"\t", 5),
            Err("cannot convert string to integer for index: \"1\\\"\\t\"".to_string())
        );
        assert_eq!(
            parse_index_interval("9", 5),
            Err("too large index: \"9\"".to_string())
        );
        assert_eq!(
            parse_index_interval("1-2-\"", 5),
            Err("the fragment \"1-2-\\\"\" violates the requirement that an index interval can have at most two parts separated by '-'".to_string())
        );
        assert_eq!(
            quoted_list(POD_FAILURE_ACTIONS),
            "[\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]"
        );
    }

    /// What `kubectl create job pi --image=perl -- perl -e 1` sends.
    fn kubectl_job() -> Value {
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "pi", "uid": "0f7d6e0a-1111-2222-3333-444455556666"},
            "spec": {"template": {"metadata": {}, "spec": {
                "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-e", "1"], "resources": {}}],
                "restartPolicy": "Never"
            }}}
        })
    }

    fn created(mut job: Value) -> Value {
        JobStrategy.default(&mut job);
        JobStrategy.prepare_for_create(&mut job, true);
        job
    }

    #[test]
    fn backoff_limit_defaults_to_max_int32_with_a_per_index_limit() {
        assert_eq!(created(kubectl_job())["spec"]["backoffLimit"], json!(6));
        let mut job = kubectl_job();
        job["spec"]["completionMode"] = json!("Indexed");
        job["spec"]["completions"] = json!(3);
        job["spec"]["backoffLimitPerIndex"] = json!(1);
        assert_eq!(created(job)["spec"]["backoffLimit"], json!(i32::MAX));
    }

    #[test]
    fn kubectl_create_job_is_accepted_with_generated_selector() {
        let job = created(kubectl_job());
        assert!(
            texts(JobStrategy.validate(&job)).is_empty(),
            "{:?}",
            texts(JobStrategy.validate(&job))
        );
        assert_eq!(
            job["spec"]["selector"]["matchLabels"][CONTROLLER_UID_LABEL],
            json!("0f7d6e0a-1111-2222-3333-444455556666")
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            json!("pi")
        );
    }

    #[test]
    fn a_conflicting_generated_label_is_refused() {
        let mut job = kubectl_job();
        job["spec"]["template"]["metadata"]["labels"] = json!({"job-name": "other"});
        let e = texts(JobStrategy.validate(&created(job)));
        assert!(
            e.iter().any(|m| m.starts_with("spec.template.metadata.labels[job-name]: Invalid value: {")),
            "{e:?}"
        );
    }

    #[test]
    fn restart_policy_always_is_refused() {
        let mut job = kubectl_job();
        job["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        let e = texts(JobStrategy.validate(&created(job)));
        assert!(e.contains(&"spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".to_string()), "{e:?}");
    }

    #[test]
    fn the_template_is_immutable_unless_suspended_and_never_started() {
        let old = created(kubectl_job());
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        let e = texts(JobStrategy.validate_update(&new, &old));
        assert!(
            e.iter()
                .any(|m| m.starts_with("spec.template: Invalid value:")
                    && m.ends_with("field is immutable")),
            "{e:?}"
        );
        let mut suspended = old.clone();
        suspended["spec"]["suspend"] = json!(true);
        let mut new = suspended.clone();
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        assert!(texts(JobStrategy.validate_update(&new, &suspended)).is_empty());
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
        assert!(!texts(JobStrategy.validate_update(&new, &suspended)).is_empty());
    }

    #[test]
    fn indexed_jobs_need_completions_and_short_names() {
        let mut job = kubectl_job();
        job["spec"]["completionMode"] = json!("Indexed");
        job["spec"]["parallelism"] = json!(2);
        let e = texts(JobStrategy.validate(&created(job.clone())));
        assert!(
            e.contains(
                &"spec.completions: Required value: when completion mode is Indexed".to_string()
            ),
            "{e:?}"
        );
        job["metadata"]["name"] = json!("a".repeat(62));
        job["spec"]["completions"] = json!(10);
        let e = texts(JobStrategy.validate(&created(job)));
        assert!(
            e.iter()
                .any(|m| m.contains("will not able to create pod with invalid DNS label")),
            "{e:?}"
        );
    }

    #[test]
    fn pod_failure_policy_rules() {
        let mut job = kubectl_job();
        job["spec"]["podFailurePolicy"] = json!({"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3, 1]}}
        ]});
        let e = texts(JobStrategy.validate(&created(job)));
        assert!(e.contains(&"spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: [3,1]: must be ordered".to_string()), "{e:?}");
    }
}
