//! Certificate controllers (upstream `pkg/controller/certificates`): the approver of
//! kubelets' requests ([`approver`]) and the signer that issues approved requests from the
//! cluster CA ([`signer`]). Together they let an agent join with a bootstrap token.

pub mod approver;
pub mod signer;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

/// Signer of kubelet client certificates (`system:node:<name>` in `system:nodes`).
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Signer of kubelet serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// Signer of other API client certificates.
pub const API_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";

/// The user and group of a node's client certificate.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The group of every node.
pub const NODES_GROUP: &str = "system:nodes";

/// Whether a condition of `kind` is true on the request.
pub(crate) fn has_condition(csr: &CertificateSigningRequest, kind: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

/// Whether every usage is one of `allowed` and `required` is among them.
pub(crate) fn usages_fit(usages: &[String], allowed: &[&str], required: &str) -> bool {
    usages.iter().all(|u| allowed.contains(&u.as_str())) && usages.iter().any(|u| u == required)
}
