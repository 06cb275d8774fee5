//! Auditing as upstream's audit filter does it: every request gets an audit ID (the
//! `Audit-ID` request header, or a new UUID) returned in the `Audit-Id` response header;
//! with `--audit-policy-file` and `--audit-log-path` set, the policy's level for the
//! request decides what an `audit.k8s.io/v1` Event records, written as one JSON line per
//! stage (RequestReceived; ResponseStarted for long-running requests; ResponseComplete)
//! unless the policy omits the stage. Admission adds annotations to the event of the
//! request it admits (`add_annotation`). The audit webhook backend is not built.

pub mod log;
pub mod policy;

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use self::log::{LogBackend, LogOptions};
use self::policy::{Level, Policy};
use crate::auth::UserInfo;
use crate::auth::authz::Attributes;

/// Why auditing could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The policy file could not be read.
    #[error("cannot read audit policy file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The policy is not valid.
    #[error("invalid audit policy file {path}: {message}")]
    Policy {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The log could not be opened.
    #[error("cannot open audit log {path}: {source}")]
    Log {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

tokio::task_local! {
    /// The annotations admission adds while one request is served.
    static ADMISSION_ANNOTATIONS: Arc<parking_lot::Mutex<Map<String, Value>>>;
}

/// Records an audit annotation on the event of the request being served, as upstream's
/// `Attributes.AddAnnotation`: a key keeps its first value (a different one is dropped
/// with a warning). Outside a request, nothing is recorded.
pub fn add_annotation(key: &str, value: &str) {
    let _ = ADMISSION_ANNOTATIONS.try_with(|sink| {
        let mut sink = sink.lock();
        match sink.get(key) {
            None => {
                sink.insert(key.to_string(), json!(value));
            }
            Some(old) if old.as_str() == Some(value) => {}
            Some(old) => tracing::warn!(
                key,
                value,
                kept = %old,
                "admission audit annotation already set to another value"
            ),
        }
    });
}

/// Runs `serve` (one request), gathering the annotations admission adds meanwhile.
pub async fn collect_annotations<F: std::future::Future>(
    serve: F,
) -> (F::Output, Map<String, Value>) {
    let sink = Arc::new(parking_lot::Mutex::new(Map::new()));
    let out = ADMISSION_ANNOTATIONS.scope(Arc::clone(&sink), serve).await;
    let annotations = std::mem::take(&mut *sink.lock());
    (out, annotations)
}

/// The policy and where events go.
#[derive(Debug)]
pub struct Auditor {
    policy: Policy,
    backend: LogBackend,
}

/// The `MicroTime` form of a timestamp (`2006-01-02T15:04:05.000000Z`).
fn micro_time(t: jiff::Timestamp) -> String {
    format!(
        "{}.{:06}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_microsecond()
    )
}

/// A user as events record it (empty fields left out).
fn user_value(u: &UserInfo) -> Value {
    let mut m = Map::new();
    m.insert("username".into(), json!(u.name));
    if !u.uid.is_empty() {
        m.insert("uid".into(), json!(u.uid));
    }
    if !u.groups.is_empty() {
        m.insert("groups".into(), json!(u.groups));
    }
    if !u.extra.is_empty() {
        m.insert("extra".into(), json!(u.extra));
    }
    Value::Object(m)
}

/// Drops `metadata.managedFields` from an object or the items of a list.
fn strip_managed_fields(v: &mut Value) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip_managed_fields);
    }
}

impl Auditor {
    /// Loads `--audit-policy-file` and opens the log.
    pub fn load(policy_file: &Path, log: LogOptions) -> Result<Auditor, AuditError> {
        let path = policy_file.display().to_string();
        let bytes = std::fs::read(policy_file).map_err(|source| AuditError::Read {
            path: path.clone(),
            source,
        })?;
        let doc = crate::handlers::body::parse_yaml(&bytes).map_err(|s| AuditError::Policy {
            path: path.clone(),
            message: s.message,
        })?;
        let policy = Policy::parse(&doc).map_err(|message| AuditError::Policy {
            path: path.clone(),
            message,
        })?;
        let log_path = log.path.display().to_string();
        let backend = LogBackend::open(log).map_err(|source| AuditError::Log {
            path: log_path,
            source,
        })?;
        Ok(Auditor { policy, backend })
    }

    /// Starts the event of a request (attributes of the authenticated user): `None` when
    /// the policy's level is None. Writes the RequestReceived stage.
    pub fn begin(&self, a: &Attributes, request: RequestMeta) -> Option<Event> {
        let decision = self.policy.evaluate(a);
        if decision.level == Level::None {
            return None;
        }
        let mut object_ref = Map::new();
        if a.resource_request {
            for (k, v) in [
                ("resource", &a.resource),
                ("namespace", &a.namespace),
                ("name", &a.name),
                ("apiGroup", &a.api_group),
                ("apiVersion", &a.api_version),
                ("subresource", &a.subresource),
            ] {
                if !v.is_empty() {
                    object_ref.insert(k.into(), json!(v));
                }
            }
        }
        let event = Event {
            level: decision.level,
            omit_stages: decision.omit_stages,
            omit_managed_fields: decision.omit_managed_fields,
            audit_id: request.audit_id,
            request_uri: request.request_uri,
            verb: a.verb.clone(),
            user: user_value(&a.user),
            impersonated_user: None,
            source_ips: request.source_ips,
            user_agent: request.user_agent,
            object_ref: (!object_ref.is_empty()).then_some(object_ref),
            request_object: None,
            received: jiff::Timestamp::now(),
            annotations: Map::new(),
            backend: self.backend.clone(),
        };
        event.write("RequestReceived", None, None);
        Some(event)
    }
}

/// What the audit filter knows of a request before it is served.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The audit ID.
    pub audit_id: String,
    /// Path and query, as sent.
    pub request_uri: String,
    /// The client's addresses (X-Forwarded-For, X-Real-Ip, then the peer).
    pub source_ips: Vec<String>,
    /// The User-Agent header.
    pub user_agent: String,
}

/// The event of one request being served.
#[derive(Debug)]
pub struct Event {
    level: Level,
    omit_stages: Vec<String>,
    omit_managed_fields: bool,
    audit_id: String,
    request_uri: String,
    verb: String,
    user: Value,
    impersonated_user: Option<Value>,
    source_ips: Vec<String>,
    user_agent: String,
    object_ref: Option<Map<String, Value>>,
    request_object: Option<Value>,
    received: jiff::Timestamp,
    annotations: Map<String, Value>,
    backend: LogBackend,
}

impl Event {
    /// Whether the request body is recorded.
    pub fn wants_request_object(&self) -> bool {
        self.level >= Level::Request
    }

    /// Whether the response body is recorded.
    pub fn wants_response_object(&self) -> bool {
        self.level >= Level::RequestResponse
    }

    /// Records the user the request was impersonated as.
    pub fn set_impersonated_user(&mut self, u: &UserInfo) {
        self.impersonated_user = Some(user_value(u));
    }

    /// Adds an annotation (`authorization.k8s.io/decision`, …).
    pub fn annotate(&mut self, key: &str, value: &str) {
        self.annotations.insert(key.into(), json!(value));
    }

    /// Records the decoded request body; a create's objectRef takes the object's name
    /// and namespace when the path did not name them, as upstream's `LogRequestObject`.
    pub fn set_request_object(&mut self, mut obj: Value) {
        if let Some(r) = self.object_ref.as_mut() {
            for k in ["name", "namespace"] {
                if !r.contains_key(k)
                    && let Some(v) = obj
                        .pointer(&format!("/metadata/{k}"))
                        .and_then(Value::as_str)
                        .filter(|v| !v.is_empty())
                {
                    r.insert(k.into(), json!(v));
                }
            }
        }
        if self.omit_managed_fields {
            strip_managed_fields(&mut obj);
        }
        self.request_object = Some(obj);
    }

    /// Writes the event at `stage`, with the response's code, its Status (a failure) and
    /// its object (RequestResponse level).
    pub fn write(&self, stage: &str, code: Option<u16>, response: Option<&Value>) {
        if self.omit_stages.iter().any(|s| s == stage) {
            return;
        }
        let mut m = Map::new();
        m.insert("kind".into(), json!("Event"));
        m.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
        m.insert("level".into(), json!(self.level.as_str()));
        m.insert("auditID".into(), json!(self.audit_id));
        m.insert("stage".into(), json!(stage));
        m.insert("requestURI".into(), json!(self.request_uri));
        m.insert("verb".into(), json!(self.verb));
        m.insert("user".into(), self.user.clone());
        if let Some(u) = &self.impersonated_user {
            m.insert("impersonatedUser".into(), u.clone());
        }
        m.insert("sourceIPs".into(), json!(self.source_ips));
        if !self.user_agent.is_empty() {
            m.insert("userAgent".into(), json!(self.user_agent));
        }
        if let Some(r) = &self.object_ref {
            m.insert("objectRef".into(), Value::Object(r.clone()));
        }
        if let Some(code) = code {
            m.insert("responseStatus".into(), response_status(code, response));
        }
        if let Some(o) = &self.request_object {
            m.insert("requestObject".into(), o.clone());
        }
        if self.wants_response_object()
            && let Some(o) = response
        {
            let mut o = o.clone();
            if self.omit_managed_fields {
                strip_managed_fields(&mut o);
            }
            m.insert("responseObject".into(), o);
        }
        m.insert(
            "requestReceivedTimestamp".into(),
            json!(micro_time(self.received)),
        );
        m.insert(
            "stageTimestamp".into(),
            json!(micro_time(jiff::Timestamp::now())),
        );
        if !self.annotations.is_empty() {
            m.insert(
                "annotations".into(),
                Value::Object(self.annotations.clone()),
            );
        }
        match serde_json::to_vec(&Value::Object(m)) {
            Ok(line) => self.backend.write(line),
            Err(e) => tracing::warn!(error = %e, "cannot encode an audit event"),
        }
    }
}

/// The event's `responseStatus`: the code, and for a failure the Status it answered
/// (without its type fields), as upstream records it.
fn response_status(code: u16, response: Option<&Value>) -> Value {
    let status = response.filter(|r| {
        r.get("kind").and_then(Value::as_str) == Some("Status")
            && r.get("apiVersion").and_then(Value::as_str) == Some("v1")
    });
    match status {
        Some(s) if code >= 300 => {
            let mut m = Map::new();
            m.insert("metadata".into(), json!({}));
            for k in ["status", "message", "reason", "details"] {
                if let Some(v) = s.get(k).filter(|v| !v.is_null()) {
                    m.insert(k.into(), v.clone());
                }
            }
            m.insert("code".into(), json!(code));
            Value::Object(m)
        }
        _ => json!({"metadata": {}, "code": code}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_micro_times() {
        let t: jiff::Timestamp = "2026-12-06T18:04:05.1234567Z".parse().unwrap();
        assert_eq!(micro_time(t), "2026-12-06T18:04:05.123456Z");
    }

    #[test]
    fn failures_carry_their_status() {
        let s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pods \"x\" not found", "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404});
        assert_eq!(
            response_status(404, Some(&s)),
            json!({"metadata": {}, "status": "Failure", "message": "pods \"x\" not found",
                "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404})
        );
        assert_eq!(
            response_status(200, None),
            json!({"metadata": {}, "code": 200})
        );
    }

    #[test]
    fn managed_fields_are_stripped_from_objects_and_list_items() {
        let mut v = json!({"metadata": {"name": "a", "managedFields": []},
            "items": [{"metadata": {"managedFields": [], "name": "b"}}]});
        strip_managed_fields(&mut v);
        assert_eq!(
            v,
            json!({"metadata": {"name": "a"}, "items": [{"metadata": {"name": "b"}}]})
        );
    }
}
