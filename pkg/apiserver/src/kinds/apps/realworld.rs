//! Workloads as popular charts and kubectl write them must keep being accepted, on
//! create and on the updates `helm upgrade` sends. The manifests are trimmed renderings
//! of bitnami/postgresql, ingress-nginx, prometheus-node-exporter and cert-manager, and
//! the objects `kubectl create deployment|job|cronjob` and `kubectl autoscale` build.

use serde_json::{Value, json};

use crate::test_util::TestApiServer;

const NS: &str = "charts";

fn postgresql() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "pg-postgresql", "labels": {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": "pg", "app.kubernetes.io/component": "primary"}},
        "spec": {
            "replicas": 1,
            "serviceName": "pg-postgresql-hl",
            "updateStrategy": {"rollingUpdate": {}, "type": "RollingUpdate"},
            "selector": {"matchLabels": {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": "pg", "app.kubernetes.io/component": "primary"}},
            "template": {
                "metadata": {"name": "pg-postgresql", "labels": {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": "pg", "app.kubernetes.io/component": "primary"}},
                "spec": {
                    "serviceAccountName": "pg-postgresql",
                    "automountServiceAccountToken": false,
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "postgresql"}}}}]}},
                    "securityContext": {"fsGroup": 1001, "fsGroupChangePolicy": "Always"},
                    "hostNetwork": false,
                    "hostIPC": false,
                    "containers": [{
                        "name": "postgresql",
                        "image": "docker.io/bitnami/postgresql:17.2.0-debian-12-r0",
                        "imagePullPolicy": "IfNotPresent",
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 1001, "seccompProfile": {"type": "RuntimeDefault"}},
                        "env": [
                            {"name": "BITNAMI_DEBUG", "value": "false"},
                            {"name": "POSTGRESQL_PORT_NUMBER", "value": "5432"},
                            {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "pg-postgresql", "key": "postgres-password"}}}
                        ],
                        "ports": [{"name": "tcp-postgresql", "containerPort": 5432}],
                        "livenessProbe": {"failureThreshold": 6, "initialDelaySeconds": 30, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 5,
                                          "exec": {"command": ["/bin/sh", "-c", "exec pg_isready -U \"postgres\" -h 127.0.0.1 -p 5432"]}},
                        "readinessProbe": {"failureThreshold": 6, "initialDelaySeconds": 5, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 5,
                                           "exec": {"command": ["/bin/sh", "-c", "-e", "exec pg_isready -U \"postgres\" -h 127.0.0.1 -p 5432"]}},
                        "resources": {"limits": {"cpu": "150m", "memory": "192Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                        "volumeMounts": [
                            {"name": "empty-dir", "mountPath": "/tmp", "subPath": "tmp-dir"},
                            {"name": "dshm", "mountPath": "/dev/shm"},
                            {"name": "data", "mountPath": "/bitnami/postgresql"}
                        ]
                    }],
                    "volumes": [
                        {"name": "empty-dir", "emptyDir": {}},
                        {"name": "dshm", "emptyDir": {"medium": "Memory"}}
                    ]
                }
            },
            "volumeClaimTemplates": [{
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}}
            }]
        }
    })
}

fn ingress_nginx_controller() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ingress-nginx-controller", "labels": {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/instance": "ingress-nginx", "app.kubernetes.io/component": "controller"}},
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "minReadySeconds": 0,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/instance": "ingress-nginx", "app.kubernetes.io/component": "controller"}},
                "spec": {
                    "dnsPolicy": "ClusterFirst",
                    "containers": [{
                        "name": "controller",
                        "image": "registry.k8s.io/ingress-nginx/controller:v1.12.0",
                        "imagePullPolicy": "IfNotPresent",
                        "lifecycle": {"preStop": {"exec": {"command": ["/wait-shutdown"]}}},
                        "args": ["/nginx-ingress-controller", "--election-id=ingress-nginx-leader", "--controller-class=k8s.io/ingress-nginx"],
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 101, "allowPrivilegeEscalation": false, "seccompProfile": {"type": "RuntimeDefault"},
                                            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, "readOnlyRootFilesystem": false},
                        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {"name": "LD_PRELOAD", "value": "/usr/local/lib/libmimalloc.so"}],
                        "livenessProbe": {"failureThreshold": 5, "httpGet": {"path": "/healthz", "port": 10254, "scheme": "HTTP"}, "initialDelaySeconds": 10, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1},
                        "readinessProbe": {"failureThreshold": 3, "httpGet": {"path": "/healthz", "port": 10254, "scheme": "HTTP"}, "initialDelaySeconds": 10, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1},
                        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}, {"name": "https", "containerPort": 443, "protocol": "TCP"}, {"name": "webhook", "containerPort": 8443, "protocol": "TCP"}],
                        "volumeMounts": [{"name": "webhook-cert", "mountPath": "/usr/local/certificates/", "readOnly": true}],
                        "resources": {"requests": {"cpu": "100m", "memory": "90Mi"}}
                    }],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "serviceAccountName": "ingress-nginx",
                    "terminationGracePeriodSeconds": 300,
                    "volumes": [{"name": "webhook-cert", "secret": {"secretName": "ingress-nginx-admission"}}]
                }
            }
        }
    })
}

fn ingress_nginx_admission_job() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "ingress-nginx-admission-create", "annotations": {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}},
        "spec": {
            "ttlSecondsAfterFinished": 0,
            "template": {
                "metadata": {"name": "ingress-nginx-admission-create", "labels": {"app.kubernetes.io/component": "admission-webhook"}},
                "spec": {
                    "containers": [{
                        "name": "create",
                        "image": "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.0",
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["create", "--host=ingress-nginx-controller-admission,ingress-nginx-controller-admission.$(POD_NAMESPACE).svc", "--namespace=$(POD_NAMESPACE)", "--secret-name=ingress-nginx-admission"],
                        "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
                    }],
                    "restartPolicy": "OnFailure",
                    "serviceAccountName": "ingress-nginx-admission",
                    "nodeSelector": {"kubernetes.io/os": "linux"}
                }
            }
        }
    })
}

fn node_exporter() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "prometheus-node-exporter"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "prometheus-node-exporter", "app.kubernetes.io/instance": "prom"}},
            "revisionHistoryLimit": 10,
            "updateStrategy": {"rollingUpdate": {"maxUnavailable": 1}, "type": "RollingUpdate"},
            "template": {
                "metadata": {"annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"}, "labels": {"app.kubernetes.io/name": "prometheus-node-exporter", "app.kubernetes.io/instance": "prom"}},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": {"fsGroup": 65534, "runAsGroup": 65534, "runAsNonRoot": true, "runAsUser": 65534},
                    "serviceAccountName": "prom-prometheus-node-exporter",
                    "containers": [{
                        "name": "node-exporter",
                        "image": "quay.io/prometheus/node-exporter:v1.8.2",
                        "args": ["--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/host/root", "--web.listen-address=[$(HOST_IP)]:9100"],
                        "securityContext": {"readOnlyRootFilesystem": true},
                        "env": [{"name": "HOST_IP", "value": "0.0.0.0"}],
                        "ports": [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}],
                        "livenessProbe": {"failureThreshold": 3, "httpGet": {"httpHeaders": null, "path": "/", "port": 9100, "scheme": "HTTP"}, "initialDelaySeconds": 0, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1},
                        "volumeMounts": [
                            {"name": "proc", "mountPath": "/host/proc", "readOnly": true},
                            {"name": "sys", "mountPath": "/host/sys", "readOnly": true},
                            {"name": "root", "mountPath": "/host/root", "mountPropagation": "HostToContainer", "readOnly": true}
                        ]
                    }],
                    "hostNetwork": true,
                    "hostPID": true,
                    "hostIPC": false,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"effect": "NoSchedule", "operator": "Exists"}],
                    "volumes": [
                        {"name": "proc", "hostPath": {"path": "/proc"}},
                        {"name": "sys", "hostPath": {"path": "/sys"}},
                        {"name": "root", "hostPath": {"path": "/"}}
                    ]
                }
            }
        }
    })
}

fn cert_manager_cronjob_like() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "backup"},
        "spec": {
            "schedule": "30 2 * * MON-FRI",
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 200,
            "successfulJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {
                "backoffLimit": 2,
                "activeDeadlineSeconds": 3600,
                "template": {"spec": {
                    "containers": [{"name": "backup", "image": "alpine:3.20", "command": ["/bin/sh", "-c", "date"]}],
                    "restartPolicy": "Never"
                }}
            }}
        }
    })
}

fn hpa_with_behavior() -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ingress-nginx-controller"},
            "minReplicas": 2, "maxReplicas": 11,
            "metrics": [
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 50}}},
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "500m"}}}
            ],
            "behavior": {
                "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}, {"type": "Pods", "value": 4, "periodSeconds": 15}]}
            }
        }
    })
}

#[tokio::test]
async fn chart_and_kubectl_workloads_are_accepted_and_upgradable() {
    let server = TestApiServer::new().await;
    let api = server.api();
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/namespaces",
            &json!({"metadata": {"name": NS}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let apps = format!("/apis/apps/v1/namespaces/{NS}");
    let batch = format!("/apis/batch/v1/namespaces/{NS}");
    let objects = [
        (format!("{apps}/statefulsets"), postgresql()),
        (format!("{apps}/deployments"), ingress_nginx_controller()),
        (format!("{apps}/daemonsets"), node_exporter()),
        (format!("{batch}/jobs"), ingress_nginx_admission_job()),
        (format!("{batch}/cronjobs"), cert_manager_cronjob_like()),
        (
            format!("/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"),
            hpa_with_behavior(),
        ),
        (
            format!("/apis/autoscaling/v1/namespaces/{NS}/horizontalpodautoscalers"),
            json!({"metadata": {"name": "web-v1"}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70}}),
        ),
        (
            format!("/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets"),
            json!({"metadata": {"name": "pg"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "postgresql"}}}}),
        ),
    ];
    for (collection, obj) in &objects {
        let (code, body) = api.call("POST", collection, obj).await;
        assert_eq!(code, 201, "POST {collection}: {body}");
    }
    // helm upgrade: a new image and replica count, and a new label on the Job.
    for (collection, name, pointer, value) in [
        (
            format!("{apps}/statefulsets"),
            "pg-postgresql",
            "/spec/template/spec/containers/0/image",
            json!("docker.io/bitnami/postgresql:17.3.0"),
        ),
        (
            format!("{apps}/statefulsets"),
            "pg-postgresql",
            "/spec/replicas",
            json!(2),
        ),
        (
            format!("{apps}/deployments"),
            "ingress-nginx-controller",
            "/spec/template/spec/containers/0/image",
            json!("registry.k8s.io/ingress-nginx/controller:v1.12.1"),
        ),
        (
            format!("{apps}/daemonsets"),
            "prometheus-node-exporter",
            "/spec/template/metadata/annotations",
            json!({"checksum/config": "abc"}),
        ),
        (
            format!("{batch}/jobs"),
            "ingress-nginx-admission-create",
            "/metadata/labels",
            json!({"team": "infra"}),
        ),
        (
            format!("{batch}/cronjobs"),
            "backup",
            "/spec/schedule",
            json!("@daily"),
        ),
    ] {
        let item = format!("{collection}/{name}");
        let (code, mut stored) = api.call("GET", &item, &Value::Null).await;
        assert_eq!(code, 200, "GET {item}");
        if let Some(slot) = stored.pointer_mut(pointer) {
            *slot = value;
        } else {
            let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
            stored
                .pointer_mut(parent)
                .and_then(Value::as_object_mut)
                .map(|m| m.insert(key.to_string(), value));
        }
        let (code, body) = api.call("PUT", &item, &stored).await;
        assert_eq!(code, 200, "PUT {item} {pointer}: {body}");
    }
    // kubectl scale: the /scale subresource of a StatefulSet.
    let scale = format!("{apps}/statefulsets/pg-postgresql/scale");
    let (code, mut s) = api.call("GET", &scale, &Value::Null).await;
    assert_eq!(code, 200, "{s}");
    s["spec"]["replicas"] = json!(3);
    let (code, body) = api.call("PUT", &scale, &s).await;
    assert_eq!(code, 200, "{body}");
}
