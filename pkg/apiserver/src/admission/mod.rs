//! Admission plugins beyond what a kind's strategy does: the webhook plugins
//! (MutatingAdmissionWebhook, ValidatingAdmissionWebhook), NodeRestriction, TaintNodesByCondition
//! and PodSecurity. The generic
//! registry calls them at upstream's points: mutating webhooks after the built-in
//! mutating plugins, then validation, then PodSecurity and the validating webhooks, then
//! ResourceQuota; ValidatingAdmissionPolicies (CEL) in `policy`.

pub mod limitranger;
pub mod noderestriction;
pub mod nodetaint;
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

/// Asks the server's authorizer a question on behalf of a user: what the CEL
/// `authorizer` variable of policies and match conditions calls.
pub type AuthorizerFn =
    dyn Fn(&UserInfo, &k1s_cel::AuthzQuery) -> k1s_cel::AuthzDecision + Send + Sync;

/// Admission state shared by every request.
#[derive(Default)]
pub struct Admission {
    /// The authorizer behind the CEL `authorizer` variable, installed by the API server;
    /// until then every check answers not allowed, with an error.
    pub authorizer: OnceLock<Arc<AuthorizerFn>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("authorizer", &self.authorizer.get().is_some())
            .finish()
    }
}

impl Admission {
    /// The CEL `authorizer` variable for a request by `user`, with
    /// `authorizer.requestResource` set from `request`.
    pub fn cel_authorizer(
        &self,
        user: &UserInfo,
        request: Option<k1s_cel::AuthzQuery>,
    ) -> k1s_cel::Value {
        let user = user.clone();
        let authz = self.authorizer.get().cloned();
        let check: k1s_cel::AuthzCheck = Arc::new(move |q: &k1s_cel::AuthzQuery| match &authz {
            Some(a) => match &q.service_account {
                Some((ns, name)) => a(&service_account_user(ns, name), q),
                None => a(&user, q),
            },
            None => k1s_cel::AuthzDecision {
                allowed: false,
                reason: String::new(),
                error: Some("no authorizer is configured".into()),
            },
        });
        k1s_cel::authorizer_value(check, request)
    }
}

/// The user a service account authenticates as (upstream's `serviceaccount.UserInfo`).
fn service_account_user(namespace: &str, name: &str) -> UserInfo {
    UserInfo::new(
        format!("system:serviceaccount:{namespace}:{name}"),
        [
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_string(),
        ],
    )
}
