//! Admission plugins beyond what a kind's strategy does: the webhook plugins
//! (MutatingAdmissionWebhook, ValidatingAdmissionWebhook) and PodSecurity. The generic
//! registry calls them at upstream's points: mutating webhooks after the built-in
//! mutating plugins, then validation, then PodSecurity and the validating webhooks, then
//! ResourceQuota; ValidatingAdmissionPolicies (CEL) in `policy`.

pub mod limitranger;
pub mod podsecurity;
pub mod policy;
pub mod runtimeclass;
pub mod webhook;

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::auth::UserInfo;
use crate::registry::ResourceInfo;

/// The operation being admitted (upstream's `admission.Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A create (also a create-on-update).
    Create,
    /// An update or patch, of the object or a subresource.
    Update,
    /// A delete.
    Delete,
}

impl Operation {
    /// The name webhooks see (`CREATE`, `UPDATE`, `DELETE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// What a request asks, as admission sees it. Objects are in the request's version.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// The resource (its group, version, kind and scope).
    pub info: &'a ResourceInfo,
    /// The subresource (`status`), empty for the object itself.
    pub subresource: &'a str,
    /// The operation.
    pub operation: Operation,
    /// The namespace, empty for cluster-scoped resources.
    pub namespace: &'a str,
    /// The object's name.
    pub name: &'a str,
    /// The existing object (updates and deletes).
    pub old_object: Option<&'a Value>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// Who asks.
    pub user: &'a UserInfo,
    /// The field manager of a create or update.
    pub field_manager: &'a str,
}

/// Evaluates a webhook's `matchConditions` (CEL). Arguments: the conditions as written
/// and the AdmissionReview request the webhook would get; the answer is whether every
/// condition holds, or why they could not be evaluated.
pub type MatchConditionEvaluator = dyn Fn(&[Value], &Value) -> Result<bool, String> + Send + Sync;

/// Admission state shared by every request.
#[derive(Default)]
pub struct Admission {
    /// Evaluates webhook `matchConditions` once a CEL evaluator is installed; until then
    /// a webhook with conditions takes upstream's path for conditions that fail to
    /// evaluate (refused under `failurePolicy: Fail`, skipped under `Ignore`).
    pub match_conditions: OnceLock<Arc<MatchConditionEvaluator>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("match_conditions", &self.match_conditions.get().is_some())
            .finish()
    }
}
