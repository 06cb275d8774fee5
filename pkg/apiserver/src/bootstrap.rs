//! What every cluster has from its first start: the four system namespaces and the
//! `kubernetes` Service with Endpoints and an EndpointSlice pointing at this server.

use k1s_apimachinery::Status;
use serde_json::{Value, json};

use crate::ApiServer;
use crate::auth::UserInfo;
use crate::registry::generic::WriteContext;

/// Namespaces created at start.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

fn ctx() -> WriteContext {
    WriteContext {
        user: UserInfo::loopback(),
        field_manager: "k1s".into(),
        ..WriteContext::default()
    }
}

async fn ensure(
    server: &ApiServer,
    group: &str,
    plural: &str,
    ns: Option<&str>,
    obj: Value,
) -> Result<(), Status> {
    let snap = server.registry.snapshot();
    let Some(res) = snap.get(group, "v1", plural).cloned() else {
        return Err(Status::internal_error(&format!(
            "resource {plural} is not registered"
        )));
    };
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match server.generic.get(&res, ns, &name) {
        Ok(current) => {
            // Endpoints must follow the advertised address across restarts.
            if plural == "endpoints" || plural == "endpointslices" {
                let mut desired = obj.clone();
                desired["metadata"]["resourceVersion"] =
                    current["metadata"]["resourceVersion"].clone();
                server
                    .generic
                    .update(&res, ns, &name, None, &ctx(), |_, _| Ok(desired.clone()))
                    .await?;
            }
            Ok(())
        }
        Err(_) => match server
            .generic
            .create(&res, ns, obj, &ctx(), Vec::new())
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.reason() == "AlreadyExists" => Ok(()),
            // Another server sharing the datastore created it meanwhile (the refusal is
            // then about its cluster IP).
            Err(_) if server.generic.get(&res, ns, &name).is_ok() => Ok(()),
            Err(s) => Err(s),
        },
    }
}

/// Creates what is missing. Safe to run on every start.
pub async fn run(server: &ApiServer) -> Result<(), Status> {
    for ns in SYSTEM_NAMESPACES {
        ensure(
            server,
            "",
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    for pc in crate::kinds::scheduling::priorityclass::system_classes() {
        ensure(server, "scheduling.k8s.io", "priorityclasses", None, pc).await?;
    }
    let first_ip = first_service_ip(server);
    let port = server.config.advertise_port;
    ensure(
        server,
        "",
        "services",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": first_ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                     "sessionAffinity": "None", "type": "ClusterIP"},
        }),
    )
    .await?;
    if server.shared_datastore() {
        // Several servers: each reserves what Services hold and lists itself in the
        // endpoints through its lease.
        if let Some(r) = server.generic.reservations() {
            r.repair().await;
        }
        return crate::apiserver_leases::reconcile(server).await;
    }
    let ip = server.config.advertise_ip.to_string();
    ensure(
        server,
        "",
        "endpoints",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
    )
    .await?;
    let family = if server.config.advertise_ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    };
    ensure(
        server,
        "discovery.k8s.io",
        "endpointslices",
        Some("default"),
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes",
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": family,
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true, "serving": true, "terminating": false}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }),
    )
    .await?;
    Ok(())
}

/// How often [`maintain`] puts back what is missing. Upstream's system-namespaces
/// controller runs every minute and its `kubernetes` Service reconciler every 10 s.
pub const MAINTAIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs [`run`] every [`MAINTAIN_INTERVAL`] until the server shuts down, so a deleted
/// system namespace (`kube-node-lease` may be deleted; the others are refused) or the
/// `kubernetes` Service comes back, as upstream's controllers bring them back.
pub fn maintain(server: std::sync::Arc<ApiServer>) -> tokio::task::JoinHandle<()> {
    if server.shared_datastore() {
        // The lease lasts 15 s: renewed more often than the rest is checked.
        crate::apiserver_leases::run(server.clone());
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(MAINTAIN_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if server.is_shutting_down() {
                return;
            }
            if let Err(s) = run(&server).await {
                tracing::warn!(error = %s.message, "cannot restore the system objects");
            }
        }
    })
}

/// The first usable address of the service range (the `kubernetes` Service's IP).
pub fn first_service_ip(server: &ApiServer) -> String {
    crate::kinds::core::service::ClusterIpAllocator::new(server.config.service_cidr)
        .nth(0)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}
