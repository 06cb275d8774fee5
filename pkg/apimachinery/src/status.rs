//! `metav1.Status` bodies and the constructors of upstream's `api/errors` package.
//!
//! Every failed request answers with one of these; kubectl prints `message`, branches on
//! `reason` and `code`, and shows `details.causes`. The constructors reproduce upstream's
//! texts exactly (`pods "x" not found`, `Operation cannot be fulfilled on …`), and the
//! serde form omits empty members the way Go's `omitempty` does.

use crate::field::{self, FieldError};
use crate::goformat::quote;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Upstream's conflict detail for a stale `resourceVersion` (`OptimisticLockErrorMsg`).
pub const OPTIMISTIC_LOCK_ERROR_MSG: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// The `reason` values of a failed `Status` (`metav1.StatusReason`).
pub mod reason {
    /// 401: the request lacks valid credentials.
    pub const UNAUTHORIZED: &str = "Unauthorized";
    /// 403: the caller may not do this.
    pub const FORBIDDEN: &str = "Forbidden";
    /// 404: the resource does not exist.
    pub const NOT_FOUND: &str = "NotFound";
    /// 409: the resource already exists.
    pub const ALREADY_EXISTS: &str = "AlreadyExists";
    /// 409: the write conflicts with the current state (stale resourceVersion).
    pub const CONFLICT: &str = "Conflict";
    /// 410: the resource is gone.
    pub const GONE: &str = "Gone";
    /// 422: the object failed validation.
    pub const INVALID: &str = "Invalid";
    /// 500/504: the server could not finish in time; retry.
    pub const SERVER_TIMEOUT: &str = "ServerTimeout";
    /// 500: the stored data could not be read.
    pub const STORAGE_READ_ERROR: &str = "StorageReadError";
    /// 504: the request timed out.
    pub const TIMEOUT: &str = "Timeout";
    /// 429: too many requests.
    pub const TOO_MANY_REQUESTS: &str = "TooManyRequests";
    /// 400: the request is malformed.
    pub const BAD_REQUEST: &str = "BadRequest";
    /// 405: the verb is not supported on this resource.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    /// 406: no acceptable response media type.
    pub const NOT_ACCEPTABLE: &str = "NotAcceptable";
    /// 413: the request body is too large.
    pub const REQUEST_ENTITY_TOO_LARGE: &str = "RequestEntityTooLarge";
    /// 415: the request body's media type is not supported.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
    /// 500: an internal error.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// 410: the requested resourceVersion is too old (watch/list continue).
    pub const EXPIRED: &str = "Expired";
    /// 503: the service is unavailable.
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
}

// === GroupResource / GroupKind ===

/// An API group and a resource (plural, lower case): `deployments.apps`, `pods`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group; empty for the core group.
    pub group: String,
    /// Resource name, e.g. `deployments`.
    pub resource: String,
}

impl GroupResource {
    /// A group and resource.
    pub fn new(group: impl Into<String>, resource: impl Into<String>) -> Self {
        GroupResource {
            group: group.into(),
            resource: resource.into(),
        }
    }

    /// Whether both parts are empty.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty() && self.resource.is_empty()
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// An API group and a kind: `Deployment.apps`, `Pod`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKind {
    /// API group; empty for the core group.
    pub group: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
}

impl GroupKind {
    /// A group and kind.
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        GroupKind {
            group: group.into(),
            kind: kind.into(),
        }
    }

    /// Whether both parts are empty.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty() && self.kind.is_empty()
    }
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

// === Status ===

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn status_kind() -> String {
    "Status".to_string()
}

fn status_api_version() -> String {
    "v1".to_string()
}

/// The `metadata` of a `Status` (`metav1.ListMeta`); usually empty and sent as `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// Deprecated self link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_link: Option<String>,
    /// Resource version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Continue token.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_: Option<String>,
    /// Remaining item count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

/// One cause of a failure, usually a field error (`metav1.StatusCause`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    /// Machine-readable cause (`FieldValueInvalid`, …); serialized as `reason`.
    #[serde(default, rename = "reason", skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable description (a field error's body).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The field path the cause is about.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

impl From<&FieldError> for StatusCause {
    fn from(e: &FieldError) -> Self {
        StatusCause {
            reason: e.error_type.reason().to_string(),
            message: e.body(),
            field: e.field.clone(),
        }
    }
}

/// Extra data about a failure (`metav1.StatusDetails`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// Name of the object concerned.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// API group of the object concerned.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Kind (or resource) of the object concerned.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// UID of the object concerned.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Individual causes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// Seconds the client should wait before retrying.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_after_seconds: i32,
}

/// A `metav1.Status` response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Always `Status`.
    #[serde(default = "status_kind")]
    pub kind: String,
    /// Always `v1`.
    #[serde(default = "status_api_version")]
    pub api_version: String,
    /// List metadata, normally empty (`{}`).
    #[serde(default)]
    pub metadata: ListMeta,
    /// `Success` or `Failure`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Machine-readable reason (see [`reason`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Extra data about the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// The HTTP status code.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: i32,
}

fn details_for(gr: &GroupResource, name: &str) -> Option<StatusDetails> {
    Some(StatusDetails {
        name: name.to_string(),
        group: gr.group.clone(),
        kind: gr.resource.clone(),
        ..StatusDetails::default()
    })
}

impl Status {
    fn failure(code: i32, reason: &str, message: String, details: Option<StatusDetails>) -> Status {
        Status {
            kind: status_kind(),
            api_version: status_api_version(),
            metadata: ListMeta::default(),
            status: "Failure".to_string(),
            message,
            reason: reason.to_string(),
            details,
            code,
        }
    }

    /// A success body (as returned by some deletes): `status: Success`, no code.
    pub fn success() -> Status {
        Status {
            kind: status_kind(),
            api_version: status_api_version(),
            metadata: ListMeta::default(),
            status: "Success".to_string(),
            message: String::new(),
            reason: String::new(),
            details: None,
            code: 0,
        }
    }

    /// This status with `details` replaced.
    #[must_use]
    pub fn with_details(mut self, details: StatusDetails) -> Status {
        self.details = Some(details);
        self
    }

    /// The HTTP status code (500 when the stored code is not a valid one).
    pub fn code(&self) -> u16 {
        u16::try_from(self.code)
            .ok()
            .filter(|c| (100..=599).contains(c))
            .unwrap_or(500)
    }

    /// The machine-readable reason (empty for success or unknown).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether this is a failure.
    pub fn is_failure(&self) -> bool {
        self.status == "Failure"
    }

    /// 404 NotFound: `pods "x" not found`.
    pub fn not_found(gr: &GroupResource, name: &str) -> Status {
        let message = format!("{gr} {} not found", quote(name));
        Status::failure(404, reason::NOT_FOUND, message, details_for(gr, name))
    }

    /// 409 AlreadyExists: `pods "x" already exists`.
    pub fn already_exists(gr: &GroupResource, name: &str) -> Status {
        let message = format!("{gr} {} already exists", quote(name));
        Status::failure(409, reason::ALREADY_EXISTS, message, details_for(gr, name))
    }

    /// 409 AlreadyExists for a name the server generated from `generateName`, with a
    /// retry hint (upstream's `NewGenerateNameConflict`).
    pub fn generate_name_conflict(
        gr: &GroupResource,
        name: &str,
        retry_after_seconds: i32,
    ) -> Status {
        let message = format!(
            "{gr} {} already exists, the server was not able to generate a unique name for the object",
            quote(name)
        );
        let mut details = details_for(gr, name);
        if let Some(d) = details.as_mut() {
            d.retry_after_seconds = retry_after_seconds;
        }
        Status::failure(409, reason::ALREADY_EXISTS, message, details)
    }

    /// 409 Conflict: `Operation cannot be fulfilled on pods "x": <err_msg>` (see
    /// [`OPTIMISTIC_LOCK_ERROR_MSG`]).
    pub fn conflict(gr: &GroupResource, name: &str, err_msg: &str) -> Status {
        let message = format!(
            "Operation cannot be fulfilled on {gr} {}: {err_msg}",
            quote(name)
        );
        Status::failure(409, reason::CONFLICT, message, details_for(gr, name))
    }

    /// 422 Invalid: `Deployment.apps "x" is invalid: <errors>`, one cause per field error.
    pub fn invalid(gk: &GroupKind, name: &str, errors: &[FieldError]) -> Status {
        let message = match field::aggregate(errors) {
            Some(agg) => format!("{gk} {} is invalid: {agg}", quote(name)),
            None => format!("{gk} {} is invalid", quote(name)),
        };
        let details = StatusDetails {
            name: name.to_string(),
            group: gk.group.clone(),
            kind: gk.kind.clone(),
            causes: errors.iter().map(StatusCause::from).collect(),
            ..StatusDetails::default()
        };
        Status::failure(422, reason::INVALID, message, Some(details))
    }

    /// 400 BadRequest with `message` as given.
    pub fn bad_request(message: &str) -> Status {
        Status::failure(400, reason::BAD_REQUEST, message.to_string(), None)
    }

    /// 401 Unauthorized; an empty reason becomes `not authorized`.
    pub fn unauthorized(reason_msg: &str) -> Status {
        let message = if reason_msg.is_empty() {
            "not authorized"
        } else {
            reason_msg
        };
        Status::failure(401, reason::UNAUTHORIZED, message.to_string(), None)
    }

    /// 403 Forbidden: `pods "x" is forbidden: <reason_msg>` (without the name when it is
    /// empty, `forbidden: <reason_msg>` when the resource is empty too).
    pub fn forbidden(gr: &GroupResource, name: &str, reason_msg: &str) -> Status {
        let message = if gr.is_empty() {
            format!("forbidden: {reason_msg}")
        } else if name.is_empty() {
            format!("{gr} is forbidden: {reason_msg}")
        } else {
            format!("{gr} {} is forbidden: {reason_msg}", quote(name))
        };
        Status::failure(403, reason::FORBIDDEN, message, details_for(gr, name))
    }

    /// 405 MethodNotAllowed: `<action> is not supported on resources of kind "pods"`.
    pub fn method_not_supported(gr: &GroupResource, action: &str) -> Status {
        let message = format!(
            "{action} is not supported on resources of kind {}",
            quote(&gr.to_string())
        );
        Status::failure(
            405,
            reason::METHOD_NOT_ALLOWED,
            message,
            details_for(gr, ""),
        )
    }

    /// 410 Gone with `message` as given.
    pub fn gone(message: &str) -> Status {
        Status::failure(410, reason::GONE, message.to_string(), None)
    }

    /// 410 Expired (a too-old resourceVersion or continue token) with `message` as given.
    pub fn resource_expired(message: &str) -> Status {
        Status::failure(410, reason::EXPIRED, message.to_string(), None)
    }

    /// 500 InternalError: `Internal error occurred: <err>`, with the error as the cause.
    pub fn internal_error(err: &str) -> Status {
        let details = StatusDetails {
            causes: vec![StatusCause {
                message: err.to_string(),
                ..StatusCause::default()
            }],
            ..StatusDetails::default()
        };
        Status::failure(
            500,
            reason::INTERNAL_ERROR,
            format!("Internal error occurred: {err}"),
            Some(details),
        )
    }

    /// 504 Timeout: `Timeout: <message>`, with a retry hint (details always present).
    pub fn timeout(message: &str, retry_after_seconds: i32) -> Status {
        let details = StatusDetails {
            retry_after_seconds,
            ..StatusDetails::default()
        };
        Status::failure(
            504,
            reason::TIMEOUT,
            format!("Timeout: {message}"),
            Some(details),
        )
    }

    /// 500 ServerTimeout: `The <operation> operation against <gr> could not be completed at
    /// this time, please try again.`
    pub fn server_timeout(gr: &GroupResource, operation: &str, retry_after_seconds: i32) -> Status {
        let message = format!(
            "The {operation} operation against {gr} could not be completed at this time, please try again."
        );
        let mut details = details_for(gr, operation);
        if let Some(d) = details.as_mut() {
            d.retry_after_seconds = retry_after_seconds;
        }
        Status::failure(500, reason::SERVER_TIMEOUT, message, details)
    }

    /// 429 TooManyRequests with `message` as given and a retry hint (details always
    /// present), like upstream's `NewTooManyRequests`.
    pub fn too_many_requests(message: &str, retry_after_seconds: i32) -> Status {
        let details = StatusDetails {
            retry_after_seconds,
            ..StatusDetails::default()
        };
        Status::failure(
            429,
            reason::TOO_MANY_REQUESTS,
            message.to_string(),
            Some(details),
        )
    }

    /// 503 ServiceUnavailable with `message` as given.
    pub fn service_unavailable(message: &str) -> Status {
        Status::failure(503, reason::SERVICE_UNAVAILABLE, message.to_string(), None)
    }

    /// 415 UnsupportedMediaType: `the body of the request was in an unknown format -
    /// accepted media types include: <accepted, joined by ", ">`.
    pub fn unsupported_media_type(accepted: &[&str]) -> Status {
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        );
        Status::failure(415, reason::UNSUPPORTED_MEDIA_TYPE, message, None)
    }

    /// 406 NotAcceptable: `only the following media types are accepted: <accepted>`.
    pub fn not_acceptable(accepted: &[&str]) -> Status {
        let message = format!(
            "only the following media types are accepted: {}",
            accepted.join(", ")
        );
        Status::failure(406, reason::NOT_ACCEPTABLE, message, None)
    }

    /// 413 RequestEntityTooLarge: `Request entity too large: <message>`.
    pub fn request_entity_too_large(message: &str) -> Status {
        Status::failure(
            413,
            reason::REQUEST_ENTITY_TOO_LARGE,
            format!("Request entity too large: {message}"),
            None,
        )
    }

    /// A failure with any code, reason and message.
    pub fn generic(code: u16, reason: &str, message: &str) -> Status {
        Status::failure(i32::from(code), reason, message.to_string(), None)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Path;
    use serde_json::json;

    fn deployments() -> GroupResource {
        GroupResource::new("apps", "deployments")
    }

    fn pods() -> GroupResource {
        GroupResource::new("", "pods")
    }

    #[test]
    fn group_resource_and_kind_render_core_group_bare() {
        assert_eq!(deployments().to_string(), "deployments.apps");
        assert_eq!(pods().to_string(), "pods");
        assert_eq!(
            GroupKind::new("apps", "Deployment").to_string(),
            "Deployment.apps"
        );
        assert_eq!(GroupKind::new("", "Pod").to_string(), "Pod");
    }

    #[test]
    fn not_found_serializes_exactly_like_upstream() {
        let s = Status::not_found(&pods(), "x");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}"#
        );
        assert_eq!(s.code(), 404);
        assert_eq!(s.reason(), "NotFound");
    }

    #[test]
    fn already_exists_and_conflict_name_group_in_details() {
        let s = Status::already_exists(&deployments(), "web");
        assert_eq!(s.message, "deployments.apps \"web\" already exists");
        assert_eq!(s.code, 409);
        assert_eq!(
            serde_json::to_value(&s).unwrap()["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        let s = Status::conflict(&deployments(), "web", OPTIMISTIC_LOCK_ERROR_MSG);
        assert_eq!(
            s.message,
            "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(s.reason, "Conflict");
    }

    #[test]
    fn invalid_with_one_error_has_no_brackets() {
        let errs = vec![FieldError::invalid(
            &Path::new("spec").child("replicas"),
            -1,
            "must be greater than or equal to 0",
        )];
        let s = Status::invalid(&GroupKind::new("apps", "Deployment"), "x", &errs);
        assert_eq!(
            s.message,
            "Deployment.apps \"x\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(s.code, 422);
        assert_eq!(
            serde_json::to_value(&s).unwrap()["details"],
            json!({"name": "x", "group": "apps", "kind": "Deployment", "causes": [
                {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal to 0", "field": "spec.replicas"}
            ]})
        );
    }

    #[test]
    fn invalid_with_several_errors_lists_them_in_brackets() {
        let errs = vec![
            FieldError::required(
                &Path::new("metadata").child("name"),
                "name or generateName is required",
            ),
            FieldError::invalid(
                &Path::new("spec").child("replicas"),
                -1,
                "must be greater than or equal to 0",
            ),
        ];
        let s = Status::invalid(&GroupKind::new("", "Pod"), "", &errs);
        assert_eq!(
            s.message,
            "Pod \"\" is invalid: [metadata.name: Required value: name or generateName is required, spec.replicas: Invalid value: -1: must be greater than or equal to 0]"
        );
        assert_eq!(s.details.as_ref().unwrap().causes.len(), 2);
        assert_eq!(
            s.details.as_ref().unwrap().causes[0].message,
            "Required value: name or generateName is required"
        );
    }

    #[test]
    fn invalid_without_errors_says_just_invalid() {
        let s = Status::invalid(&GroupKind::new("", "Pod"), "p", &[]);
        assert_eq!(s.message, "Pod \"p\" is invalid");
        assert_eq!(
            serde_json::to_value(&s).unwrap()["details"],
            json!({"name": "p", "kind": "Pod"})
        );
    }

    #[test]
    fn forbidden_message_depends_on_what_is_known() {
        assert_eq!(
            Status::forbidden(&pods(), "x", "User \"u\" cannot get resource").message,
            "pods \"x\" is forbidden: User \"u\" cannot get resource"
        );
        assert_eq!(
            Status::forbidden(&pods(), "", "nope").message,
            "pods is forbidden: nope"
        );
        assert_eq!(
            Status::forbidden(&GroupResource::default(), "", "nope").message,
            "forbidden: nope"
        );
        assert_eq!(Status::forbidden(&pods(), "", "nope").code(), 403);
    }

    #[test]
    fn simple_constructors_have_upstream_codes_reasons_and_messages() {
        let cases = [
            (Status::bad_request("bad"), 400, "BadRequest", "bad"),
            (
                Status::unauthorized(""),
                401,
                "Unauthorized",
                "not authorized",
            ),
            (Status::gone("gone"), 410, "Gone", "gone"),
            (
                Status::resource_expired("too old resource version: 1 (5)"),
                410,
                "Expired",
                "too old resource version: 1 (5)",
            ),
            (
                Status::internal_error("boom"),
                500,
                "InternalError",
                "Internal error occurred: boom",
            ),
            (Status::timeout("slow", 0), 504, "Timeout", "Timeout: slow"),
            (
                Status::too_many_requests("slow down", 1),
                429,
                "TooManyRequests",
                "slow down",
            ),
            (
                Status::service_unavailable("later"),
                503,
                "ServiceUnavailable",
                "later",
            ),
            (
                Status::request_entity_too_large("limit is 3145728"),
                413,
                "RequestEntityTooLarge",
                "Request entity too large: limit is 3145728",
            ),
            (
                Status::generic(418, "Teapot", "short and stout"),
                418,
                "Teapot",
                "short and stout",
            ),
        ];
        for (s, code, reason, message) in cases {
            assert_eq!(
                (s.code(), s.reason(), s.message.as_str()),
                (code, reason, message)
            );
            assert!(s.is_failure());
        }
    }

    #[test]
    fn method_not_supported_quotes_the_resource() {
        let s = Status::method_not_supported(&deployments(), "create");
        assert_eq!(
            s.message,
            "create is not supported on resources of kind \"deployments.apps\""
        );
        assert_eq!(s.code, 405);
        assert_eq!(
            serde_json::to_value(&s).unwrap()["details"],
            json!({"group": "apps", "kind": "deployments"})
        );
    }

    #[test]
    fn internal_error_carries_the_cause_and_timeout_empty_details() {
        let v = serde_json::to_value(Status::internal_error("boom")).unwrap();
        assert_eq!(v["details"], json!({"causes": [{"message": "boom"}]}));
        // Upstream always sets Details for timeouts, so an empty object is sent.
        let v = serde_json::to_value(Status::timeout("x", 0)).unwrap();
        assert_eq!(v["details"], json!({}));
        let v = serde_json::to_value(Status::too_many_requests("x", 3)).unwrap();
        assert_eq!(v["details"], json!({"retryAfterSeconds": 3}));
    }

    #[test]
    fn negotiation_errors_list_accepted_media_types() {
        let s = Status::unsupported_media_type(&["application/json", "application/yaml"]);
        assert_eq!(
            s.message,
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
        );
        assert_eq!(s.code, 415);
        let s = Status::not_acceptable(&["application/json"]);
        assert_eq!(
            s.message,
            "only the following media types are accepted: application/json"
        );
        assert_eq!(s.reason, "NotAcceptable");
    }

    #[test]
    fn success_has_no_code_or_reason() {
        assert_eq!(
            serde_json::to_string(&Status::success()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success"}"#
        );
        let s = Status::success().with_details(StatusDetails {
            name: "x".into(),
            kind: "pods".into(),
            uid: "u1".into(),
            ..Default::default()
        });
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"x","kind":"pods","uid":"u1"}}"#
        );
    }

    #[test]
    fn status_round_trips_through_json() {
        let s = Status::generate_name_conflict(&pods(), "web-abcde", 1);
        assert_eq!(
            s.message,
            "pods \"web-abcde\" already exists, the server was not able to generate a unique name for the object"
        );
        let back: Status = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let minimal: Status = serde_json::from_str(r#"{"status":"Failure","code":404}"#).unwrap();
        assert_eq!(minimal.kind, "Status");
        assert_eq!(minimal.code(), 404);
    }

    #[test]
    fn server_timeout_names_operation_and_resource() {
        let s = Status::server_timeout(&pods(), "get", 2);
        assert_eq!(
            s.message,
            "The get operation against pods could not be completed at this time, please try again."
        );
        assert_eq!(s.code, 500);
        assert_eq!(s.details.unwrap().retry_after_seconds, 2);
    }
}
