//! Kinds of the core (`v1`) group.

pub mod binding;
pub mod configmap;
pub mod endpoints;
pub mod event;
pub mod limitrange;
pub mod namespace;
pub mod node;
pub mod persistentvolume;
pub mod persistentvolumeclaim;
pub mod pod;
pub mod pod_resize;
pub mod pod_service_account;
pub mod podspec;
pub mod podtemplate;
pub mod replicationcontroller;
pub mod resourcequota;
pub mod secret;
pub mod service;
pub mod service_reservations;
pub mod serviceaccount;
pub mod volumesource;

/// Objects that charts, kubectl and operators write must keep passing, through the whole
/// write path (defaults, preparation, validation, allocation).
#[cfg(test)]
mod real_world {
    use serde_json::{Value, json};

    use crate::test_util::{TestApi, TestApiServer};

    /// A server with the namespace `rw`; the helper outlives the server handle, which
    /// the client keeps alive.
    async fn api() -> TestApi {
        let api = TestApiServer::new().await.api();
        api.create("/api/v1/namespaces", json!({"metadata": {"name": "rw"}}))
            .await;
        api
    }

    const SVC: &str = "/api/v1/namespaces/rw/services";

    #[tokio::test]
    async fn chart_services_are_accepted_and_reapplied() {
        let api = api().await;
        let services = [
            // bitnami ClusterIP with a named target port and an explicit null nodePort.
            json!({"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "sessionAffinity": "None",
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": null}],
                "selector": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web"}}}),
            // A StatefulSet's headless service, with and without ports.
            json!({"metadata": {"name": "db-hl"}, "spec": {"type": "ClusterIP", "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "ports": [{"name": "tcp-postgresql", "port": 5432, "targetPort": "tcp-postgresql"}],
                "selector": {"app": "db"}}}),
            json!({"metadata": {"name": "peers"}, "spec": {"clusterIP": "None", "selector": {"app": "db"}}}),
            // NodePort, chosen and allocated.
            json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}, {"name": "https", "port": 443}]}}),
            // ingress-nginx's controller Service.
            json!({"metadata": {"name": "ingress-nginx-controller"}, "spec": {"type": "LoadBalancer",
                "externalTrafficPolicy": "Local", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "appProtocol": "http"},
                          {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "appProtocol": "https"}],
                "selector": {"app.kubernetes.io/component": "controller"}}}),
            // A LoadBalancer with source ranges and a class, without node ports.
            json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/lb",
                "allocateLoadBalancerNodePorts": false, "loadBalancerSourceRanges": ["10.0.0.0/8", " 192.168.0.0/16"],
                "ports": [{"port": 443}]}}),
            json!({"metadata": {"name": "db-alias"}, "spec": {"type": "ExternalName", "externalName": "db.example.com."}}),
            json!({"metadata": {"name": "sticky"}, "spec": {"sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 3600}}, "ports": [{"port": 80}]}}),
            json!({"metadata": {"name": "sticky-default"}, "spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
            json!({"metadata": {"name": "dual"}, "spec": {"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}],
                "trafficDistribution": "PreferClose", "internalTrafficPolicy": "Local"}}),
            json!({"metadata": {"name": "external"}, "spec": {"externalIPs": ["198.51.100.32"], "ports": [{"port": 80, "targetPort": 9376}]}}),
            // `kubectl create service clusterip s --tcp=80:8080`.
            json!({"metadata": {"name": "kubectl"}, "spec": {"type": "ClusterIP", "selector": {"app": "kubectl"},
                "ports": [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}),
            // cert-manager's webhook.
            json!({"metadata": {"name": "cert-manager-webhook"}, "spec": {"type": "ClusterIP",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"},
                          {"name": "metrics", "port": 9402, "protocol": "TCP", "targetPort": "http-metrics"}]}}),
        ];
        for svc in services {
            let name = svc["metadata"]["name"].as_str().unwrap_or("").to_string();
            let created = api.create(SVC, svc.clone()).await;
            // Re-applying the chart's object (no cluster IP, no node ports) succeeds.
            let mut again = svc.clone();
            again["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
            let (code, body) = api.call("PUT", &format!("{SVC}/{name}"), &again).await;
            assert_eq!(code, 200, "{name}: {body}");
        }
        let (_, lb) = api
            .call(
                "GET",
                &format!("{SVC}/ingress-nginx-controller"),
                &Value::Null,
            )
            .await;
        let hc = lb["spec"]["healthCheckNodePort"].as_i64().unwrap_or(0);
        assert!((30000..=32767).contains(&hc), "{lb}");
    }

    #[tokio::test]
    async fn service_types_can_change_with_the_fetched_object() {
        let api = api().await;
        let created = api
            .create(SVC, json!({"metadata": {"name": "t"}, "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]}}))
            .await;
        let item = format!("{SVC}/t");
        let mut to_cluster_ip = created.clone();
        to_cluster_ip["spec"]["type"] = json!("ClusterIP");
        let (code, body) = api.call("PUT", &item, &to_cluster_ip).await;
        assert_eq!(code, 200, "{body}");
        assert!(body["spec"]["ports"][0].get("nodePort").is_none(), "{body}");
        assert!(
            body["spec"].get("externalTrafficPolicy").is_none(),
            "{body}"
        );
        let mut to_external = body.clone();
        to_external["spec"]["type"] = json!("ExternalName");
        to_external["spec"]["externalName"] = json!("example.com");
        let (code, body) = api.call("PUT", &item, &to_external).await;
        assert_eq!(code, 200, "{body}");
        assert!(body["spec"].get("clusterIP").is_none(), "{body}");
        assert!(body["spec"].get("ipFamilies").is_none(), "{body}");
    }

    #[tokio::test]
    async fn secrets_of_every_type_and_string_data_are_accepted() {
        let api = api().await;
        let col = "/api/v1/namespaces/rw/secrets";
        for (name, secret) in [
            ("opaque", json!({"stringData": {"password": "s3cr3t"}})),
            (
                "docker",
                json!({"type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": "{\"auths\":{\"ghcr.io\":{\"auth\":\"dTpw\"}}}"}}),
            ),
            (
                "dockercfg",
                json!({"type": "kubernetes.io/dockercfg", "data": {".dockercfg": "e30="}}),
            ),
            (
                "basic",
                json!({"type": "kubernetes.io/basic-auth", "stringData": {"username": "admin", "password": "pw"}}),
            ),
            (
                "ssh",
                json!({"type": "kubernetes.io/ssh-auth", "data": {"ssh-privatekey": "S0VZ"}}),
            ),
            (
                "tls",
                json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "Q0VSVA==", "tls.key": "S0VZ"}}),
            ),
            (
                "token",
                json!({"type": "kubernetes.io/service-account-token",
                "metadata": {"annotations": {"kubernetes.io/service-account.name": "default"}}}),
            ),
            (
                "bootstrap-token-abcdef",
                json!({"type": "bootstrap.kubernetes.io/token",
                "stringData": {"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true"}}),
            ),
            (
                "sh.helm.release.v1.web.v1",
                json!({"type": "helm.sh/release.v1", "data": {"release": "SDRzSQ=="}}),
            ),
        ] {
            let mut s = secret.clone();
            s["metadata"]["name"] = json!(name);
            api.create(col, s).await;
        }
    }

    #[tokio::test]
    async fn claims_resize_once_bound_and_docs_limits_and_quotas_pass() {
        let api = api().await;
        let col = "/api/v1/namespaces/rw/persistentvolumeclaims";
        api.create(
            col,
            json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "storageClassName": "local-path", "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .await;
        let item = format!("{col}/data");
        // The volume controller binds it.
        let (_, mut pvc) = api.call("GET", &item, &Value::Null).await;
        pvc["spec"]["volumeName"] = json!("pv-data");
        let (code, body) = api.call("PUT", &item, &pvc).await;
        assert_eq!(code, 200, "{body}");
        let mut status = body.clone();
        status["status"] = json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}});
        let (code, body) = api.call("PUT", &format!("{item}/status"), &status).await;
        assert_eq!(code, 200, "{body}");
        let mut grow = body.clone();
        grow["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        let (code, body) = api.call("PUT", &item, &grow).await;
        assert_eq!(code, 200, "{body}");
        let mut shrink = body.clone();
        shrink["spec"]["resources"]["requests"]["storage"] = json!("512Mi");
        let (code, body) = api.call("PUT", &item, &shrink).await;
        assert_eq!(code, 422, "{body}");
        assert!(
            body["message"].as_str().unwrap_or("").contains(
                "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
            ),
            "{body}"
        );
        api.create("/api/v1/namespaces/rw/limitranges", json!({"metadata": {"name": "cpu-min-max"},
            "spec": {"limits": [{"max": {"cpu": "800m"}, "min": {"cpu": "200m"}, "type": "Container"}]}}))
            .await;
        api.create("/api/v1/namespaces/rw/limitranges", json!({"metadata": {"name": "storage"},
            "spec": {"limits": [{"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}, "min": {"storage": "1Gi"}}]}}))
            .await;
        api.create("/api/v1/namespaces/rw/resourcequotas", json!({"metadata": {"name": "mem-cpu"},
            "spec": {"hard": {"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi"}}}))
            .await;
        api.create("/api/v1/namespaces/rw/resourcequotas", json!({"metadata": {"name": "pods-high"},
            "spec": {"hard": {"cpu": "1000", "memory": "200Gi", "pods": "10"},
                "scopeSelector": {"matchExpressions": [{"operator": "In", "scopeName": "PriorityClass", "values": ["high"]}]}}}))
            .await;
        api.create("/api/v1/persistentvolumes", json!({"metadata": {"name": "task-pv-volume", "labels": {"type": "local"}},
            "spec": {"storageClassName": "manual", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/mnt/data"}}}))
            .await;
        api.create(
            "/api/v1/nodes",
            json!({"metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
            "spec": {"podCIDR": "10.42.0.0/24"},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}]}}),
        )
        .await;
        // Events about cluster-scoped objects live in `default`.
        api.create("/api/v1/namespaces/default/events", json!({"metadata": {"name": "node-1.1"},
            "involvedObject": {"kind": "Node", "name": "node-1"}, "reason": "Starting", "type": "Normal",
            "source": {"component": "kubelet"}, "count": 1}))
            .await;
    }
}
