//! The CSR signer (upstream `pkg/controller/certificates/signer`, "csrsigning"): issues
//! approved requests for the kubelet client, kubelet serving and API client signers from
//! the cluster CA, valid one year or `spec.expirationSeconds` when shorter. A request the
//! signer's rules refuse gets upstream's `Failed` condition (`SignerValidationFailure`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
pub const NAME: &str = "csrsigning";

/// Upstream's shortest `expirationSeconds` honoured (10 minutes).
const MIN_EXPIRATION: Duration = Duration::from_secs(600);
/// `--cluster-signing-duration`'s default: one year.
const MAX_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

struct Context {
    client: kube::Client,
    ca: Arc<k1s_pki::CaSigner>,
}

/// Starts the controller (the [`crate::Descriptor`] entry point); without the CA in the
/// configuration it signs nothing.
pub fn start(client: kube::Client, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let ca = crate::config().csr_signer.clone();
    Box::pin(async move {
        match ca {
            Some(ca) => run(client, ca, shutdown).await,
            None => shutdown.wait().await,
        }
    })
}

/// Whether the signer's rules allow the request: `Err` says why not (upstream's messages).
pub fn validate(csr: &CertificateSigningRequest) -> Result<(), String> {
    let spec = &csr.spec;
    let usages = spec.usages.clone().unwrap_or_default();
    let subject = k1s_pki::parse_csr(&spec.request.0).map_err(|e| e.to_string())?;
    match spec.signer_name.as_str() {
        KUBELET_CLIENT_SIGNER => {
            if subject.organizations != [NODES_GROUP] {
                return Err(format!("subject organization is not {NODES_GROUP}"));
            }
            if !subject.common_name.starts_with(NODE_USER_PREFIX) {
                return Err(format!(
                    "subject common name does not begin with {NODE_USER_PREFIX}"
                ));
            }
            if !subject.dns_names.is_empty()
                || !subject.ip_addresses.is_empty()
                || subject.other_names
            {
                return Err("subjectAltNames are not allowed".into());
            }
            if !usages_fit(
                &usages,
                &["key encipherment", "digital signature", "client auth"],
                "client auth",
            ) {
                return Err("usages did not match [digital signature client auth]".into());
            }
        }
        KUBELET_SERVING_SIGNER => {
            if subject.organizations != [NODES_GROUP] {
                return Err(format!("subject organization is not {NODES_GROUP}"));
            }
            if !subject.common_name.starts_with(NODE_USER_PREFIX) {
                return Err(format!(
                    "subject common name does not begin with {NODE_USER_PREFIX}"
                ));
            }
            if subject.dns_names.is_empty() && subject.ip_addresses.is_empty() {
                return Err("DNS or IP subjectAltName is required".into());
            }
            if subject.other_names {
                return Err("Email and URI subjectAltNames are not allowed".into());
            }
            if !usages_fit(
                &usages,
                &["key encipherment", "digital signature", "server auth"],
                "server auth",
            ) {
                return Err("usages did not match [digital signature server auth]".into());
            }
        }
        API_CLIENT_SIGNER => {
            if !usages_fit(
                &usages,
                &["key encipherment", "digital signature", "client auth"],
                "client auth",
            ) {
                return Err("usages did not match [digital signature client auth]".into());
            }
        }
        other => return Err(format!("signer {other} is not handled here")),
    }
    Ok(())
}

fn validity(csr: &CertificateSigningRequest) -> Duration {
    match csr.spec.expiration_seconds {
        Some(s) if s > 0 => Duration::from_secs(s as u64).clamp(MIN_EXPIRATION, MAX_VALIDITY),
        _ => MAX_VALIDITY,
    }
}

async fn reconcile(
    csr: Arc<CertificateSigningRequest>,
    ctx: Arc<Context>,
) -> Result<Action, kube::Error> {
    let handled = [
        KUBELET_CLIENT_SIGNER,
        KUBELET_SERVING_SIGNER,
        API_CLIENT_SIGNER,
    ];
    let issued = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    if !handled.contains(&csr.spec.signer_name.as_str())
        || !has_condition(&csr, "Approved")
        || has_condition(&csr, "Failed")
        || issued
    {
        return Ok(Action::await_change());
    }
    let mut updated = (*csr).clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let signed = validate(&csr).and_then(|()| {
        let pem = String::from_utf8(csr.spec.request.0.clone()).map_err(|e| e.to_string())?;
        let usages = csr.spec.usages.clone().unwrap_or_default();
        ctx.ca
            .sign_csr(&pem, &usages, Some(validity(&csr)))
            .map_err(|e| e.to_string())
    });
    match signed {
        Ok(cert) => status.certificate = Some(ByteString(cert.into_bytes())),
        Err(message) => {
            tracing::info!(csr = %csr.name_any(), %message, "refused to sign certificate signing request");
            let now = Time(k8s_openapi::jiff::Timestamp::now());
            status.conditions.get_or_insert_with(Vec::new).push(
                CertificateSigningRequestCondition {
                    type_: "Failed".into(),
                    status: "True".into(),
                    reason: Some("SignerValidationFailure".into()),
                    message: Some(message),
                    last_update_time: Some(now.clone()),
                    last_transition_time: Some(now),
                },
            );
        }
    }
    let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    match api
        .replace_status(&csr.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => {
            tracing::info!(csr = %csr.name_any(), "signed certificate signing request");
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(e),
    }
}

fn error_policy(
    _csr: Arc<CertificateSigningRequest>,
    err: &kube::Error,
    _ctx: Arc<Context>,
) -> Action {
    tracing::debug!(error = %err, "csr signing failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the controller until `shutdown` fires.
pub async fn run(client: kube::Client, ca: Arc<k1s_pki::CaSigner>, shutdown: Shutdown) {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(shutdown.wait())
        .run(reconcile, error_policy, Arc::new(Context { client, ca }))
        .for_each(|_| async {})
        .await;
}
