//! The `kube-dns` Service in `kube-system`, as k3s's CoreDNS manifest has it: pods'
//! resolv.conf and tutorials name its ClusterIP.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::PostParams;

/// The Service's name and namespace.
pub const NAME: &str = "kube-dns";
/// The namespace of the Service.
pub const NAMESPACE: &str = "kube-system";

/// The Service k3s's manifest declares, at `ip`.
pub fn service(ip: IpAddr) -> Result<Service, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
                // The DNS server answers at this address on the node itself: the Service
                // proxy leaves it alone, as kube-proxy leaves Services of another proxy.
                "service.kubernetes.io/service-proxy-name": "k1s-dns",
            },
        },
        "spec": {
            "selector": {"k8s-app": "kube-dns"},
            "clusterIP": ip.to_string(),
            "clusterIPs": [ip.to_string()],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    }))
}

/// Creates the Service unless one of that name exists (a user's edits are kept).
pub async fn ensure(client: kube::Client, ip: IpAddr) -> Result<(), kube::Error> {
    let api: Api<Service> = Api::namespaced(client, NAMESPACE);
    if let Some(existing) = api.get_opt(NAME).await? {
        let have = existing.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
        if have != ip.to_string() {
            tracing::warn!(%have, want = %ip, "kube-dns Service exists with another cluster IP; left as it is");
        }
        return Ok(());
    }
    let svc = service(ip).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &svc).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}
