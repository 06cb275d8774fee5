//! The three PATCH formats of the Kubernetes API, applied to JSON values.
//!
//! - [`apply_json_patch`]: RFC 6902 JSON patch (`application/json-patch+json`), with the
//!   semantics of the `evanphx/json-patch` v4 library upstream uses (including its quirks:
//!   `replace` of a missing object key adds it, negative array indices count from the end,
//!   `copy` of a missing key copies `null`).
//! - [`apply_merge_patch`]: RFC 7386 JSON merge patch (`application/merge-patch+json`),
//!   with upstream's null pruning of newly added values.
//! - [`apply_strategic_merge_patch`]: Kubernetes strategic merge patch
//!   (`application/strategic-merge-patch+json`), as `k8s.io/apimachinery`'s
//!   `strategicpatch.StrategicMergeMapPatch` applies it on the server, driven by the
//!   `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` facts of the schema.
//!
//! The request bodies of the two object-shaped formats can be decoded with
//! [`parse_merge_patch`] and [`parse_strategic_merge_patch`], which refuse what upstream
//! refuses with upstream's texts (Go `encoding/json` syntax messages included); a JSON
//! patch body is decoded by [`apply_json_patch`] itself.
//!
//! Failures are [`PatchError`]s; [`PatchError::http_status`], [`PatchError::reason`] and
//! [`PatchError::message`] give the `Status` upstream answers with (see the table on
//! [`PatchError`]), [`PatchError::detail`] the underlying text for logs.
//!
//! Results keep the document's member order: existing members stay where they were, new
//! ones follow in patch order. (Upstream re-encodes through Go types, so member order
//! carries no meaning on the wire; list order does, and matches upstream exactly.)

pub(crate) mod gocompat;
mod json_patch;
mod merge_patch;
mod strategic;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

pub use json_patch::{MAX_JSON_PATCH_COPY_BYTES, MAX_JSON_PATCH_OPERATIONS, apply_json_patch};
pub use merge_patch::{apply_merge_patch, parse_merge_patch};
pub use strategic::{apply_strategic_merge_patch, parse_strategic_merge_patch};

/// Why a patch could not be applied, classified the way upstream's PATCH handler
/// (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`) classifies it.
///
/// | variant | status | reason | `Status.message` |
/// |---|---|---|---|
/// | [`Malformed`](Self::Malformed) | 400 | `BadRequest` | the detail |
/// | [`BadDirective`](Self::BadDirective) | 400 | `BadRequest` | the detail |
/// | [`TooManyOperations`](Self::TooManyOperations) | 413 | `RequestEntityTooLarge` | `Request entity too large: The allowed maximum operations in a JSON patch is 10000, got N` |
/// | [`OperationFailed`](Self::OperationFailed) | 422 | `Invalid` | `the server rejected our request due to an error in our request` |
/// | [`Unprocessable`](Self::Unprocessable) | 422 | `Invalid` | `the server rejected our request due to an error in our request` |
/// | [`MergeFailed`](Self::MergeFailed) | 500 | *(empty)* | the detail |
///
/// Upstream answers a failed JSON patch operation (a failed `test`, a path that does not
/// exist, …) with `errors.NewGenericServerResponse(422, …)`, whose message is the generic
/// sentence above: kubectl prints `The request is invalid: the server rejected our request
/// due to an error in our request` and the operation's own text is lost; [`detail`]
/// keeps it for logs. Strategic merge patch errors that upstream's
/// `interpretStrategicMergePatchError` does not recognise (a list element lacking its merge
/// key, an unknown `$patch` value, mismatched list element types, …) are plain Go errors
/// there and become 500 with the error text as message and no reason; kubectl prints
/// `Error from server: map: map[image:x] does not contain declared merge key: name`.
///
/// No patch error maps to 409 Conflict: upstream's conflicts in the PATCH path come from
/// resourceVersion and uid preconditions, which the caller checks, not from applying the
/// patch. (The `unsupported media type` 415 answer for strategic merge patch of custom
/// resources is also the caller's: it happens before any patch is applied.)
///
/// [`detail`]: PatchError::detail
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not JSON, or not of the shape its patch type takes. Upstream:
    /// 400 BadRequest with the decoder's text (`invalid character 'x' looking for
    /// beginning of value`, `json: cannot unmarshal object into Go value of type
    /// jsonpatch.Patch`, `Invalid JSON Patch` for merge patches).
    #[error("malformed patch: {0}")]
    Malformed(String),
    /// A strategic merge patch directive has the wrong form (`invalid patch format of
    /// retainKeys`, `… of primitive list`, `… of setElementOrder list`) or the document is
    /// not an object (`invalid JSON document`). Upstream: 400 BadRequest with the text.
    #[error("bad strategic merge patch: {0}")]
    BadDirective(String),
    /// A JSON patch with more operations than upstream accepts. Upstream: 413.
    #[error("json patch has {0} operations, more than the {max} allowed", max = MAX_JSON_PATCH_OPERATIONS)]
    TooManyOperations(usize),
    /// A JSON patch operation did not apply: a failed `test`, a missing path, a bad array
    /// index, an unknown `op`. Upstream: 422 Invalid with a generic message.
    #[error("json patch operation failed: {0}")]
    OperationFailed(String),
    /// A strategic merge patch upstream rejects as unprocessable (`lists of lists are not
    /// supported`). Upstream: 422 Invalid with a generic message.
    #[error("unprocessable strategic merge patch: {0}")]
    Unprocessable(String),
    /// Any other strategic merge patch failure: missing merge key, unknown `$patch`
    /// value, `$patch: merge` in a list, list element types that differ, a
    /// `$setElementOrder` list that contradicts the patch list. Upstream: 500 with the
    /// text as message.
    #[error("strategic merge patch failed: {0}")]
    MergeFailed(String),
}

/// The message upstream gives every 422 from `NewGenericServerResponse`.
const GENERIC_INVALID: &str = "the server rejected our request due to an error in our request";

impl PatchError {
    /// The HTTP status upstream answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::BadDirective(_) => 400,
            Self::TooManyOperations(_) => 413,
            Self::OperationFailed(_) | Self::Unprocessable(_) => 422,
            Self::MergeFailed(_) => 500,
        }
    }

    /// The `Status.reason` upstream answers with (empty for the 500s, which upstream
    /// builds from plain errors).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::BadDirective(_) => "BadRequest",
            Self::TooManyOperations(_) => "RequestEntityTooLarge",
            Self::OperationFailed(_) | Self::Unprocessable(_) => "Invalid",
            Self::MergeFailed(_) => "",
        }
    }

    /// The `Status.message` upstream answers with: what kubectl prints.
    pub fn message(&self) -> String {
        match self {
            Self::Malformed(d) | Self::BadDirective(d) | Self::MergeFailed(d) => d.clone(),
            Self::TooManyOperations(n) => format!(
                "Request entity too large: The allowed maximum operations in a JSON patch is \
                 {MAX_JSON_PATCH_OPERATIONS}, got {n}"
            ),
            Self::OperationFailed(_) | Self::Unprocessable(_) => GENERIC_INVALID.into(),
        }
    }

    /// The underlying error text, as the upstream library produced it (for logs; for
    /// 422s upstream does not send it to the client).
    pub fn detail(&self) -> String {
        match self {
            Self::Malformed(d)
            | Self::BadDirective(d)
            | Self::OperationFailed(d)
            | Self::Unprocessable(d)
            | Self::MergeFailed(d) => d.clone(),
            Self::TooManyOperations(n) => format!(
                "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {n}"
            ),
        }
    }
}
