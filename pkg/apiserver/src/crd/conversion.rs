//! CRD conversion webhooks (`spec.conversion.strategy: Webhook`): an object that must
//! change version goes to the CRD's webhook in a ConversionReview (v1, or v1beta1 where
//! the CRD lists only that), and the answer is checked as upstream checks it (count,
//! apiVersion, kind, name/namespace/uid kept, metadata changes only to labels and
//! annotations).
//!
//! The registry's conversions are synchronous; the call runs on a thread of its own so
//! that it works from any caller (the server's workers give up their thread meanwhile).

use std::future::Future;
use std::time::Duration;

use k1s_apimachinery::Status;
use k1s_apimachinery::field::{Path, aggregate};
use serde_json::{Map, Value, json};

use crate::admission::webhook::post_json;
use crate::registry::Conversion;
use crate::registry::generic::GenericStore;

/// How long a conversion call may take (upstream's webhook client default).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// ConversionReview versions this server speaks, in no particular order.
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// One served version of a CRD whose conversion is a webhook.
pub struct WebhookConversion {
    /// This version's apiVersion (`group/version`).
    pub served: String,
    /// The storage version's apiVersion.
    pub stored: String,
    /// `spec.conversion.webhook.clientConfig` (url or service, caBundle).
    pub client: Value,
    /// `spec.conversion.webhook.conversionReviewVersions`, in the CRD's order.
    pub review_versions: Vec<String>,
}

impl WebhookConversion {
    /// The conversion of a CRD version, if the CRD's strategy is Webhook.
    pub fn for_crd(spec: &Value, served: &str, stored: &str) -> Option<Self> {
        let conversion = spec.get("conversion")?;
        if conversion.get("strategy").and_then(Value::as_str) != Some("Webhook") {
            return None;
        }
        let webhook = conversion.get("webhook").cloned().unwrap_or(Value::Null);
        Some(WebhookConversion {
            served: served.to_string(),
            stored: stored.to_string(),
            client: webhook.get("clientConfig").cloned().unwrap_or(Value::Null),
            review_versions: webhook
                .get("conversionReviewVersions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        })
    }

    fn convert(&self, generic: &GenericStore, obj: Value, desired: &str) -> Result<Value, Status> {
        let from = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or(&self.served)
            .to_string();
        if from == desired {
            return Ok(obj);
        }
        convert_with(&obj, &from, desired, &self.review_versions, |review| {
            run_detached(post_json(
                generic,
                &self.client,
                CALL_TIMEOUT,
                false,
                review,
            ))
        })
        .map_err(|e| Status::generic(500, "", &e))
    }
}

impl Conversion for WebhookConversion {
    fn stored_form(&self, generic: &GenericStore, obj: Value) -> Result<Value, Status> {
        self.convert(generic, obj, &self.stored)
    }

    fn served_form(&self, generic: &GenericStore, obj: Value) -> Result<Value, Status> {
        self.convert(generic, obj, &self.served)
    }
}

/// Runs `fut` to completion on a thread of its own with its own runtime, so a
/// synchronous caller can wait for it whatever runtime (if any) it runs on; a caller on
/// the server's multi-threaded runtime hands its other tasks on while it waits.
fn run_detached<T: Send>(fut: impl Future<Output = Result<T, String>> + Send) -> Result<T, String> {
    let run = move || {
        std::thread::scope(|s| {
            s.spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?
                    .block_on(fut)
            })
            .join()
            .unwrap_or_else(|_| Err("the conversion call panicked".to_string()))
        })
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}

/// Go's `GroupVersionKind.String()`: `group/version, Kind=kind`.
fn gvk_text(api_version: &str, kind: &str) -> String {
    format!("{api_version}, Kind={kind}")
}

/// Converts `obj` (in `from`) to `desired` through `call` (which posts a review and
/// returns the answer), checking the answer as upstream does; errors are upstream's texts.
fn convert_with(
    obj: &Value,
    from: &str,
    desired: &str,
    review_versions: &[String],
    call: impl FnOnce(&Value) -> Result<Value, String>,
) -> Result<Value, String> {
    // An object of nothing but apiVersion and kind needs no webhook (upstream special-cases
    // it too).
    if obj
        .as_object()
        .is_some_and(|o| o.len() == 2 && o.contains_key("apiVersion") && o.contains_key("kind"))
    {
        let mut out = obj.clone();
        out["apiVersion"] = json!(desired);
        return Ok(out);
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let gvk = gvk_text(from, kind);
    let Some(review_version) = review_versions
        .iter()
        .find(|v| REVIEW_VERSIONS.contains(&v.as_str()))
    else {
        return Err("no supported conversion review versions".into());
    };
    let uid = uuid::Uuid::new_v4().to_string();
    let review = json!({
        "apiVersion": format!("apiextensions.k8s.io/{review_version}"),
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": [obj]},
    });
    let answer = call(&review).map_err(|e| format!("conversion webhook for {gvk} failed: {e}"))?;
    let converted = converted_objects(&uid, review_version == "v1", &answer)
        .map_err(|e| format!("conversion webhook for {gvk} failed: {e}"))?;
    if converted.len() != 1 {
        return Err(format!(
            "conversion webhook for {gvk} returned {} objects, expected 1",
            converted.len()
        ));
    }
    let converted = &converted[0];
    let Some(out) = converted.as_object() else {
        return Err(format!(
            "conversion webhook for {gvk} returned invalid object at index 0: not an object"
        ));
    };
    let got_version = out
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if got_version != desired {
        return Err(format!(
            "conversion webhook for {gvk} returned invalid object at index 0: invalid groupVersion (expected {desired}, received {got_version})"
        ));
    }
    let got_kind = out.get("kind").and_then(Value::as_str).unwrap_or_default();
    if got_kind != kind {
        return Err(format!(
            "conversion webhook for {gvk} returned invalid object at index 0: invalid kind (expected {kind}, received {got_kind})"
        ));
    }
    for (field, what) in [("name", "name"), ("namespace", "namespace"), ("uid", "UID")] {
        let (e, a) = (meta_str(obj, field), meta_str(converted, field));
        if e != a {
            return Err(format!(
                "conversion webhook for {gvk} returned invalid object: must have the same {what}: {e} != {a}"
            ));
        }
    }
    restore_object_meta(obj, converted.clone())
        .map_err(|e| format!("conversion webhook for {gvk} returned invalid metadata: {e}"))
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The converted objects of a review answer, or why there are none.
fn converted_objects(uid: &str, v1: bool, answer: &Value) -> Result<Vec<Value>, String> {
    if v1 {
        let api_version = answer
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = answer
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if (api_version, kind) != ("apiextensions.k8s.io/v1", "ConversionReview") {
            return Err(format!(
                "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {}",
                gvk_text(api_version, kind)
            ));
        }
    }
    let Some(response) = answer.get("response").filter(|r| r.is_object()) else {
        return Err("no response provided".into());
    };
    // v1beta1 answers were never checked for their uid; upstream keeps it that way.
    let got_uid = response
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if v1 && got_uid != uid {
        return Err(format!("expected response.uid={uid:?}, got {got_uid:?}"));
    }
    let result = response.get("result").cloned().unwrap_or(Value::Null);
    let status = result
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if status != "Success" {
        let message = result
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(if message.is_empty() {
            format!("response.result.status was '{status}', not 'Success'")
        } else {
            message.to_string()
        });
    }
    Ok(response
        .get("convertedObjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// The converted object with the original's metadata, except labels and annotations,
/// which the webhook may change (validated when it did).
fn restore_object_meta(original: &Value, mut converted: Value) -> Result<Value, String> {
    let response_meta = match converted.get("metadata") {
        None => return Err("missing metadata in converted object".into()),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata of type {} in converted object",
                go_type(other)
            ));
        }
    };
    let mut meta = match original.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata of type {} in input object",
                go_type(other)
            ));
        }
        None => Map::new(),
    };
    for field in ["labels", "annotations"] {
        let response_field = match response_meta.get(field) {
            None | Some(Value::Null) => {
                meta.remove(field);
                continue;
            }
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in converted object",
                    go_type(other)
                ));
            }
        };
        let original_field = match meta.get(field) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in original object",
                    go_type(other)
                ));
            }
        };
        let mut changed = original_field.len() != response_field.len();
        for (k, v) in response_field {
            if !v.is_string() {
                return Err(format!(
                    "metadata.{field}[{k}] must be a string, but is {} in converted object",
                    go_type(v)
                ));
            }
            if original_field.get(k) != Some(v) {
                changed = true;
            }
        }
        if changed {
            let value = Value::Object(response_field.clone());
            // Upstream reports annotation errors at `metadata.annotation`.
            let errs = if field == "labels" {
                k1s_apimachinery::meta::validate_labels(
                    Some(&value),
                    &Path::new("metadata").child("labels"),
                )
            } else {
                k1s_apimachinery::meta::validate_annotations(
                    Some(&value),
                    &Path::new("metadata").child("annotation"),
                )
            };
            if let Some(text) = aggregate(&errs) {
                return Err(text);
            }
        }
        meta.insert(field.to_string(), Value::Object(response_field.clone()));
    }
    converted["metadata"] = Value::Object(meta);
    Ok(converted)
}

/// The Go type a JSON value decodes to, for upstream's `%T` texts.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_obj() -> Value {
        json!({
            "apiVersion": "stable.example.com/v1", "kind": "TestCrd",
            "metadata": {"name": "a", "namespace": "ns", "uid": "u1",
                         "resourceVersion": "7", "labels": {"x": "1"}},
            "hostPort": "localhost:7070",
        })
    }

    /// A webhook that splits hostPort, answering with `edit` applied to its object.
    fn hook(edit: impl Fn(&mut Value)) -> impl FnOnce(&Value) -> Result<Value, String> {
        move |review: &Value| {
            let req = &review["request"];
            let mut obj = req["objects"][0].clone();
            obj["apiVersion"] = req["desiredAPIVersion"].clone();
            if let Some(hp) = obj
                .as_object_mut()
                .and_then(|o| o.remove("hostPort"))
                .and_then(|v| v.as_str().map(str::to_string))
                && let Some((h, p)) = hp.split_once(':')
            {
                obj["host"] = json!(h);
                obj["port"] = json!(p);
            }
            edit(&mut obj);
            Ok(json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                "response": {"uid": req["uid"], "convertedObjects": [obj],
                             "result": {"status": "Success"}},
            }))
        }
    }

    fn convert(call: impl FnOnce(&Value) -> Result<Value, String>) -> Result<Value, String> {
        convert_with(
            &v1_obj(),
            "stable.example.com/v1",
            "stable.example.com/v2",
            &["v1".to_string()],
            call,
        )
    }

    #[test]
    fn converts_and_keeps_metadata() {
        let out = convert(hook(|o| {
            o["metadata"]["resourceVersion"] = json!("99");
            o["metadata"]["labels"]["y"] = json!("2");
        }))
        .unwrap();
        assert_eq!(out["apiVersion"], "stable.example.com/v2");
        assert_eq!(out["host"], "localhost");
        assert_eq!(out["port"], "7070");
        // Only labels/annotations may change; the rest is the original's.
        assert_eq!(out["metadata"]["resourceVersion"], "7");
        assert_eq!(out["metadata"]["labels"], json!({"x": "1", "y": "2"}));
    }

    #[test]
    fn sends_a_v1_review_with_a_uid() {
        let mut seen = Value::Null;
        let _ = convert(|r: &Value| {
            seen = r.clone();
            Err("down".into())
        });
        assert_eq!(seen["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(seen["kind"], "ConversionReview");
        assert_eq!(
            seen["request"]["desiredAPIVersion"],
            "stable.example.com/v2"
        );
        assert_eq!(seen["request"]["objects"][0]["hostPort"], "localhost:7070");
        assert!(!seen["request"]["uid"].as_str().unwrap().is_empty());
    }

    #[test]
    fn v1beta1_only_crds_get_a_v1beta1_review() {
        let mut seen = Value::Null;
        let _ = convert_with(
            &v1_obj(),
            "stable.example.com/v1",
            "stable.example.com/v2",
            &["v2beta9".to_string(), "v1beta1".to_string()],
            |r: &Value| {
                seen = r.clone();
                Err("down".into())
            },
        );
        assert_eq!(seen["apiVersion"], "apiextensions.k8s.io/v1beta1");
    }

    #[test]
    fn call_failures_read_as_upstream() {
        let err = convert(|_: &Value| {
            Err("Post \"https://h:1/c\": dial tcp h:1: connect: connection refused".into())
        })
        .unwrap_err();
        assert_eq!(
            err,
            "conversion webhook for stable.example.com/v1, Kind=TestCrd failed: Post \"https://h:1/c\": dial tcp h:1: connect: connection refused"
        );
    }

    /// A change a misbehaving webhook makes to the object it answers.
    type Edit = Box<dyn Fn(&mut Value)>;

    #[test]
    fn bad_answers_are_refused_with_upstream_texts() {
        let prefix = "conversion webhook for stable.example.com/v1, Kind=TestCrd";
        let cases: Vec<(Edit, String)> = vec![
            (
                Box::new(|o| o["apiVersion"] = json!("stable.example.com/v1")),
                format!(
                    "{prefix} returned invalid object at index 0: invalid groupVersion (expected stable.example.com/v2, received stable.example.com/v1)"
                ),
            ),
            (
                Box::new(|o| o["kind"] = json!("Other")),
                format!(
                    "{prefix} returned invalid object at index 0: invalid kind (expected TestCrd, received Other)"
                ),
            ),
            (
                Box::new(|o| o["metadata"]["name"] = json!("b")),
                format!("{prefix} returned invalid object: must have the same name: a != b"),
            ),
            (
                Box::new(|o| o["metadata"]["uid"] = json!("u2")),
                format!("{prefix} returned invalid object: must have the same UID: u1 != u2"),
            ),
            (
                Box::new(|o| {
                    o.as_object_mut().unwrap().remove("metadata");
                }),
                // The identity check comes first, as upstream's.
                format!("{prefix} returned invalid object: must have the same name: a != "),
            ),
            (
                Box::new(|o| o["metadata"]["labels"]["n"] = json!(1)),
                format!(
                    "{prefix} returned invalid metadata: metadata.labels[n] must be a string, but is int64 in converted object"
                ),
            ),
        ];
        for (edit, want) in cases {
            assert_eq!(convert(hook(edit)).unwrap_err(), want);
        }
    }

    #[test]
    fn review_answers_are_checked() {
        let prefix = "conversion webhook for stable.example.com/v1, Kind=TestCrd failed";
        let answer = |a: Value| move |_: &Value| Ok(a);
        assert_eq!(
            convert(answer(json!({"apiVersion": "v1", "kind": "Status"}))).unwrap_err(),
            format!(
                "{prefix}: expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got v1, Kind=Status"
            )
        );
        let review = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"});
        assert_eq!(
            convert(answer(review.clone())).unwrap_err(),
            format!("{prefix}: no response provided")
        );
        let mut r = review.clone();
        r["response"] = json!({"uid": "nope", "result": {"status": "Success"}});
        assert!(
            convert(answer(r))
                .unwrap_err()
                .starts_with(&format!("{prefix}: expected response.uid="))
        );
        let with_result = |result: Value| {
            move |req: &Value| {
                Ok(json!({
                    "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                    "response": {"uid": req["request"]["uid"], "result": result},
                }))
            }
        };
        assert_eq!(
            convert(with_result(json!({"status": "Failure", "message": "nope"}))).unwrap_err(),
            format!("{prefix}: nope")
        );
        assert_eq!(
            convert(with_result(json!({"status": "Failure"}))).unwrap_err(),
            format!("{prefix}: response.result.status was 'Failure', not 'Success'")
        );
        assert_eq!(
            convert(with_result(json!({"status": "Success"}))).unwrap_err(),
            "conversion webhook for stable.example.com/v1, Kind=TestCrd returned 0 objects, expected 1"
        );
    }

    #[test]
    fn no_known_review_version_is_an_error() {
        let err = convert_with(
            &v1_obj(),
            "stable.example.com/v1",
            "stable.example.com/v2",
            &["v9".to_string()],
            |_: &Value| unreachable!(),
        )
        .unwrap_err();
        assert_eq!(err, "no supported conversion review versions");
    }

    #[test]
    fn the_detached_runner_works_on_either_runtime() {
        assert_eq!(run_detached(async { Ok::<_, String>(3) }), Ok(3));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(
            rt.block_on(async { run_detached(async { Ok::<_, String>(4) }) }),
            Ok(4)
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        assert_eq!(
            rt.block_on(async {
                tokio::spawn(async { run_detached(async { Ok::<_, String>(5) }) })
                    .await
                    .unwrap()
            }),
            Ok(5)
        );
    }
}
