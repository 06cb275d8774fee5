//! Shared helpers for the printers: tolerant JSON accessors, timestamps and ages,
//! label and label-selector formatting, and container summaries.
//!
//! Every accessor is total: a missing field or a field of the wrong JSON type yields the
//! Go zero value of the field (empty string, 0, false, empty list), which is what upstream's
//! printers see for an unset field.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::human_duration;

/// Walks `path` through nested JSON objects.
pub(crate) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.get(*key)?;
    }
    Some(cur)
}

/// The value at `path` if it exists and is not JSON `null`.
pub(crate) fn present<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    get(v, path).filter(|x| !x.is_null())
}

/// The string at `path`, or `None` when missing or not a string.
pub(crate) fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// The string at `path`, or `""` when missing or not a string.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    opt_str(v, path).unwrap_or("")
}

/// Converts a JSON number to an integer, truncating floats.
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    if let Some(u) = v.as_u64() {
        return Some(i64::try_from(u).unwrap_or(i64::MAX));
    }
    // Truncation mirrors Go's int conversion of an integral float.
    v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)
}

/// The integer at `path`, or `None` when missing or not a number.
pub(crate) fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    get(v, path).and_then(as_int)
}

/// The integer at `path`, or `0`.
pub(crate) fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

/// The boolean at `path`, or `None` when missing or not a boolean.
pub(crate) fn opt_bool(v: &Value, path: &[&str]) -> Option<bool> {
    get(v, path).and_then(Value::as_bool)
}

/// The boolean at `path`, or `false`.
pub(crate) fn bool_at(v: &Value, path: &[&str]) -> bool {
    opt_bool(v, path).unwrap_or(false)
}

/// The array at `path`, or an empty slice.
pub(crate) fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Number of entries of the JSON object at `path` (0 when missing or not an object).
pub(crate) fn obj_len(v: &Value, path: &[&str]) -> usize {
    get(v, path)
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len)
}

/// The string-valued entries of the JSON object at `path`, sorted by key.
pub(crate) fn string_map<'a>(v: &'a Value, path: &[&str]) -> BTreeMap<&'a str, &'a str> {
    let mut out = BTreeMap::new();
    if let Some(m) = get(v, path).and_then(Value::as_object) {
        for (k, val) in m {
            out.insert(k.as_str(), val.as_str().unwrap_or(""));
        }
    }
    out
}

/// A JSON string cell.
pub(crate) fn cell(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// A JSON integer cell.
pub(crate) fn int_cell(i: i64) -> Value {
    Value::from(i)
}

/// `metadata.name`.
pub(crate) fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn deleting(obj: &Value) -> bool {
    present(obj, &["metadata", "deletionTimestamp"]).is_some()
}

/// `metadata.annotations[key]`.
pub(crate) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    get(obj, &["metadata", "annotations"])
        .and_then(Value::as_object)
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
}

/// Parses a Kubernetes timestamp (RFC 3339). Go's zero time counts as unset.
pub(crate) fn parse_time(v: Option<&Value>) -> Option<Timestamp> {
    let ts: Timestamp = v?.as_str()?.trim().parse().ok()?;
    // 0001-01-01T00:00:00Z is Go's zero `time.Time`, which `IsZero()` reports as unset.
    if ts.as_second() == -62_135_596_800 && ts.subsec_nanosecond() == 0 {
        return None;
    }
    Some(ts)
}

/// Upstream `translateTimestampSince`: elapsed time since the timestamp, `<unknown>` if unset.
pub(crate) fn since(ts: Option<Timestamp>, now: Timestamp) -> String {
    match ts {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// Elapsed time since the timestamp at `path`.
pub(crate) fn since_at(obj: &Value, path: &[&str], now: Timestamp) -> String {
    since(parse_time(get(obj, path)), now)
}

/// The object's age (`metadata.creationTimestamp`), as the AGE column shows it.
pub(crate) fn age(obj: &Value, now: Timestamp) -> Value {
    cell(since_at(obj, &["metadata", "creationTimestamp"], now))
}

/// Duration between two timestamps, formatted like upstream's `HumanDuration`.
pub(crate) fn between(start: Timestamp, end: Timestamp) -> String {
    human_duration(end.duration_since(start))
}

/// A duration of whole seconds formatted like `HumanDuration`.
pub(crate) fn seconds_duration(secs: i64) -> String {
    human_duration(SignedDuration::from_secs(secs))
}

/// Go's `fmt` rendering of a pointer-to-bool helper used by CronJob (`True`/`False`).
pub(crate) fn go_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Upstream `labels.FormatLabels`: sorted `k=v` pairs joined by `,`, `<none>` when empty.
pub(crate) fn format_labels(v: &Value, path: &[&str]) -> String {
    let mut pairs: Vec<String> = string_map(v, path)
        .into_iter()
        .map(|(k, val)| format!("{k}={val}"))
        .collect();
    // Go sorts the rendered "k=v" strings, not the keys.
    pairs.sort();
    let out = pairs.join(",");
    if out.is_empty() {
        "<none>".to_string()
    } else {
        out
    }
}

/// Names and images of a container list, each joined by `,` (upstream `layoutContainerCells`).
pub(crate) fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// Renders an `IntOrString` the way Go's `IntOrString.String()` does.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => as_int(other).map(|i| i.to_string()).unwrap_or_default(),
    }
}

/// Failure to convert a label selector (upstream returns an error from `LabelSelectorAsSelector`).
#[derive(Debug)]
pub(crate) struct SelectorError;

/// One parsed label-selector requirement.
struct Requirement {
    key: String,
    op: &'static str,
    values: Vec<String>,
}

impl Requirement {
    fn render(&self) -> String {
        let mut out = String::new();
        if self.op == "!" {
            out.push('!');
        }
        out.push_str(&self.key);
        match self.op {
            "=" => out.push('='),
            "in" => out.push_str(" in ("),
            "notin" => out.push_str(" notin ("),
            _ => return out,
        }
        let mut values = self.values.clone();
        values.sort();
        out.push_str(&values.join(","));
        if self.op != "=" {
            out.push(')');
        }
        out
    }
}

/// Upstream `metav1.LabelSelectorAsSelector(sel).String()`: `Ok("")` for a missing or empty
/// selector, the sorted requirements otherwise, `Err` for an invalid selector.
pub(crate) fn label_selector_string(sel: Option<&Value>) -> Result<String, SelectorError> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let mut reqs = Vec::new();
    for (k, v) in string_map(sel, &["matchLabels"]) {
        if !is_label_key(k) || !is_label_value(v) {
            return Err(SelectorError);
        }
        reqs.push(Requirement {
            key: k.to_string(),
            op: "=",
            values: vec![v.to_string()],
        });
    }
    for expr in arr(sel, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]);
        let values: Vec<String> = arr(expr, &["values"])
            .iter()
            .map(|x| x.as_str().unwrap_or("").to_string())
            .collect();
        let op = match str_at(expr, &["operator"]) {
            "In" => "in",
            "NotIn" => "notin",
            "Exists" => "exists",
            "DoesNotExist" => "!",
            _ => return Err(SelectorError),
        };
        let values_ok = match op {
            "in" | "notin" => !values.is_empty(),
            _ => values.is_empty(),
        };
        if !values_ok || !is_label_key(key) || !values.iter().all(|v| is_label_value(v)) {
            return Err(SelectorError);
        }
        reqs.push(Requirement {
            key: key.to_string(),
            op,
            values,
        });
    }
    reqs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(reqs
        .iter()
        .map(Requirement::render)
        .collect::<Vec<_>>()
        .join(","))
}

/// Upstream `metav1.FormatLabelSelector`: `<none>` when empty, `<error>` when invalid.
pub(crate) fn format_label_selector(sel: Option<&Value>) -> String {
    match label_selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(SelectorError) => "<error>".to_string(),
    }
}

/// Go's generated `(*metav1.LabelSelector).String()` (protobuf debug form).
pub(crate) fn label_selector_debug_string(sel: &Value) -> String {
    let mut exprs = String::from("[]LabelSelectorRequirement{");
    for e in arr(sel, &["matchExpressions"]) {
        let values: Vec<&str> = arr(e, &["values"])
            .iter()
            .map(|x| x.as_str().unwrap_or(""))
            .collect();
        exprs.push_str(&format!(
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
            str_at(e, &["key"]),
            str_at(e, &["operator"]),
            values.join(" ")
        ));
    }
    exprs.push('}');
    let mut labels = String::from("map[string]string{");
    for (k, v) in string_map(sel, &["matchLabels"]) {
        labels.push_str(&format!("{k}: {v},"));
    }
    labels.push('}');
    format!("&LabelSelector{{MatchLabels:{labels},MatchExpressions:{exprs},}}")
}

/// RFC 1123 DNS subdomain check (used for label key prefixes).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// The "name" part of a qualified name: 1-63 alphanumerics, `-`, `_`, `.`, alphanumeric ends.
fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && s.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Label key validity (an optional DNS-subdomain prefix, `/`, and a qualified name).
pub(crate) fn is_label_key(k: &str) -> bool {
    match k.split_once('/') {
        Some((prefix, rest)) => is_dns_subdomain(prefix) && is_qualified_name_part(rest),
        None => is_qualified_name_part(k),
    }
}

/// Label value validity (empty, or a qualified-name part).
pub(crate) fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_qualified_name_part(v)
}

/// Lists up to `max` items, appending ` + N more...` (upstream `listWithMoreString` style).
pub(crate) fn list_with_more(items: &[String], max: usize, empty: &str) -> String {
    if items.len() > max {
        return format!("{} + {} more...", items[..max].join(","), items.len() - max);
    }
    let out = items.join(",");
    if out.is_empty() {
        empty.to_string()
    } else {
        out
    }
}

/// The sorted, de-duplicated ingress points (IP, else hostname) of a load-balancer status,
/// joined by `,` (upstream `loadBalancerStatusStringer` in wide mode).
pub(crate) fn load_balancer_ingress(status: Option<&Value>) -> String {
    let mut set = BTreeSet::new();
    if let Some(status) = status {
        for ing in arr(status, &["ingress"]) {
            let ip = str_at(ing, &["ip"]);
            let host = str_at(ing, &["hostname"]);
            if !ip.is_empty() {
                set.insert(ip);
            } else if !host.is_empty() {
                set.insert(host);
            }
        }
    }
    set.into_iter().collect::<Vec<_>>().join(",")
}
