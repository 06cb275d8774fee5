//! The CSR approver (upstream `pkg/controller/certificates/approver`, "csrapproving"):
//! approves kubelet client requests whose requester may create
//! `certificatesigningrequests/nodeclient` (a new node, bootstrap token) or
//! `certificatesigningrequests/selfnodeclient` (a node renewing its own), asked by a
//! SubjectAccessReview as upstream does.
//!
//! Beyond upstream, as k3s hands every joining agent these certificates itself: a node's
//! own `kubernetes.io/kubelet-serving` request (CN and requester `system:node:<name>`, only
//! DNS and IP names) and a node's `kubernetes.io/kube-apiserver-client` request for
//! `system:kube-proxy` (its Service proxy) are approved too. Anything else waits for
//! `kubectl certificate approve`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::Api;
use kube::api::{PostParams, ResourceExt};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};

use super::{
    API_CLIENT_SIGNER, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, NODE_USER_PREFIX,
    NODES_GROUP, has_condition, usages_fit,
};
use crate::Shutdown;

/// Upstream's controller name.
pub const NAME: &str = "csrapproving";

/// The user of the Service proxy's client certificate.
pub const KUBE_PROXY_USER: &str = "system:kube-proxy";

/// Starts the controller (the [`crate::Descriptor`] entry point).
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    Box::pin(run(client, shutdown))
}

/// Why a request is approved: the reason and message written on its condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Approve if the requester may create this subresource of CSRs (a SubjectAccessReview).
    IfAllowed(&'static str, &'static str),
    /// Approve without asking (k1s's own recognizers).
    Approve(&'static str),
    /// Not for this approver.
    Skip,
}

/// What the approver makes of a request (upstream's recognizers).
pub fn recognize(csr: &CertificateSigningRequest) -> Verdict {
    let spec = &csr.spec;
    let Ok(subject) = k1s_pki::parse_csr(&spec.request.0) else {
        return Verdict::Skip;
    };
    let usages = spec.usages.clone().unwrap_or_default();
    let groups = spec.groups.clone().unwrap_or_default();
    let requester = spec.username.clone().unwrap_or_default();
    let no_sans =
        subject.dns_names.is_empty() && subject.ip_addresses.is_empty() && !subject.other_names;
    let node_subject =
        subject.common_name.starts_with(NODE_USER_PREFIX) && subject.organizations == [NODES_GROUP];
    match spec.signer_name.as_str() {
        KUBELET_CLIENT_SIGNER
            if node_subject
                && no_sans
                && usages_fit(
                    &usages,
                    &["key encipherment", "digital signature", "client auth"],
                    "client auth",
                ) =>
        {
            if requester == subject.common_name {
                Verdict::IfAllowed(
                    "selfnodeclient",
                    "Auto approving self kubelet client certificate after SubjectAccessReview.",
                )
            } else {
                Verdict::IfAllowed(
                    "nodeclient",
                    "Auto approving kubelet client certificate after SubjectAccessReview.",
                )
            }
        }
        KUBELET_SERVING_SIGNER
            if node_subject
                && requester == subject.common_name
                && groups.iter().any(|g| g == NODES_GROUP)
                && !subject.other_names
                && usages_fit(
                    &usages,
                    &["key encipherment", "digital signature", "server auth"],
                    "server auth",
                ) =>
        {
            Verdict::Approve("Auto approving the kubelet serving certificate of its own node.")
        }
        API_CLIENT_SIGNER
            if subject.common_name == KUBE_PROXY_USER
                && subject.organizations.is_empty()
                && no_sans
                && requester.starts_with(NODE_USER_PREFIX)
                && groups.iter().any(|g| g == NODES_GROUP)
                && usages_fit(
                    &usages,
                    &["key encipherment", "digital signature", "client auth"],
                    "client auth",
                ) =>
        {
            Verdict::Approve("Auto approving the Service proxy client certificate of a node.")
        }
        _ => Verdict::Skip,
    }
}

async fn allowed(
    client: &kube::Client,
    csr: &CertificateSigningRequest,
    subresource: &str,
) -> Result<bool, kube::Error> {
    let spec = &csr.spec;
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: spec.username.clone(),
            groups: spec.groups.clone(),
            uid: spec.uid.clone(),
            extra: spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                subresource: Some(subresource.into()),
                verb: Some("create".into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn reconcile(
    csr: Arc<CertificateSigningRequest>,
    client: Arc<kube::Client>,
) -> Result<Action, kube::Error> {
    if has_condition(&csr, "Approved") || has_condition(&csr, "Denied") {
        return Ok(Action::await_change());
    }
    let (reason, message) = match recognize(&csr) {
        Verdict::Skip => return Ok(Action::await_change()),
        Verdict::Approve(message) => ("AutoApproved", message),
        Verdict::IfAllowed(subresource, message) => {
            if !allowed(&client, &csr, subresource).await? {
                return Ok(Action::await_change());
            }
            ("AutoApproved", message)
        }
    };
    let mut approved = (*csr).clone();
    let status = approved.status.get_or_insert_with(Default::default);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            ..CertificateSigningRequestCondition::default()
        });
    let api: Api<CertificateSigningRequest> = Api::all((*client).clone());
    match api
        .replace_subresource(
            "approval",
            &csr.name_any(),
            &PostParams::default(),
            &approved,
        )
        .await
    {
        Ok(_) => {
            tracing::info!(csr = %csr.name_any(), "approved certificate signing request");
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(e),
    }
}

fn error_policy(
    _csr: Arc<CertificateSigningRequest>,
    err: &kube::Error,
    _client: Arc<kube::Client>,
) -> Action {
    tracing::debug!(error = %err, "csr approval failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, shutdown: Shutdown) {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(shutdown.wait())
        .run(reconcile, error_policy, Arc::new(client))
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;

    use super::*;

    fn csr(
        signer: &str,
        cn: &str,
        orgs: &[&str],
        sans: &[String],
        user: &str,
        usages: &[&str],
    ) -> CertificateSigningRequest {
        let (pem, _) = k1s_pki::new_csr(cn, orgs, sans).unwrap();
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                request: ByteString(pem.into_bytes()),
                signer_name: signer.into(),
                username: Some(user.into()),
                groups: Some(vec!["system:nodes".into(), "system:authenticated".into()]),
                usages: Some(usages.iter().map(|u| u.to_string()).collect()),
                ..CertificateSigningRequestSpec::default()
            },
            ..CertificateSigningRequest::default()
        }
    }

    #[test]
    fn kubelet_requests_are_recognized_as_upstream() {
        let client = ["digital signature", "client auth"];
        let new = csr(
            KUBELET_CLIENT_SIGNER,
            "system:node:a",
            &["system:nodes"],
            &[],
            "system:bootstrap:abcdef",
            &client,
        );
        assert!(matches!(
            recognize(&new),
            Verdict::IfAllowed("nodeclient", _)
        ));
        let own = csr(
            KUBELET_CLIENT_SIGNER,
            "system:node:a",
            &["system:nodes"],
            &[],
            "system:node:a",
            &client,
        );
        assert!(matches!(
            recognize(&own),
            Verdict::IfAllowed("selfnodeclient", _)
        ));
        let wrong_group = csr(
            KUBELET_CLIENT_SIGNER,
            "system:node:a",
            &["admins"],
            &[],
            "x",
            &client,
        );
        assert_eq!(recognize(&wrong_group), Verdict::Skip);
        let serving = ["digital signature", "server auth"];
        let sans = ["10.0.0.2".to_string(), "a".to_string()];
        let ok = csr(
            KUBELET_SERVING_SIGNER,
            "system:node:a",
            &["system:nodes"],
            &sans,
            "system:node:a",
            &serving,
        );
        assert!(matches!(recognize(&ok), Verdict::Approve(_)));
        let other_node = csr(
            KUBELET_SERVING_SIGNER,
            "system:node:a",
            &["system:nodes"],
            &sans,
            "system:node:b",
            &serving,
        );
        assert_eq!(recognize(&other_node), Verdict::Skip);
        let proxy = csr(
            API_CLIENT_SIGNER,
            KUBE_PROXY_USER,
            &[],
            &[],
            "system:node:a",
            &client,
        );
        assert!(matches!(recognize(&proxy), Verdict::Approve(_)));
        let admin = csr(
            API_CLIENT_SIGNER,
            "admin",
            &["system:masters"],
            &[],
            "system:node:a",
            &client,
        );
        assert_eq!(recognize(&admin), Verdict::Skip);
    }
}
