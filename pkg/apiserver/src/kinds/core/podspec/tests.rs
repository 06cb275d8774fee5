//! Pod spec validation against realistic templates (what popular charts render) and a
//! few typical mistakes with upstream's texts.

use serde_json::{Value, json};

use super::*;

fn template_errors(mut template: Value) -> Vec<String> {
    if let Some(spec) = template.get_mut("spec") {
        default_pod_spec(spec);
    }
    validate_pod_template_spec(&template, &Path::new("spec").child("template"))
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn spec_errors(spec: Value) -> Vec<String> {
    template_errors(json!({"metadata": {"labels": {"app": "x"}}, "spec": spec}))
}

/// The ingress-nginx controller's pod template (chart 4.x, defaults).
fn ingress_nginx() -> Value {
    json!({
        "metadata": {"labels": {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}},
        "spec": {
            "dnsPolicy": "ClusterFirst",
            "containers": [{
                "name": "controller",
                "image": "registry.k8s.io/ingress-nginx/controller:v1.11.2@sha256:d5f8217feeac4887cb1ed21f27c2674e58be06bd8f5184cacea2a69abaf78dce",
                "imagePullPolicy": "IfNotPresent",
                "lifecycle": {"preStop": {"exec": {"command": ["/wait-shutdown"]}}},
                "args": ["/nginx-ingress-controller", "--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller",
                         "--election-id=ingress-nginx-leader", "--controller-class=k8s.io/ingress-nginx"],
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 101, "allowPrivilegeEscalation": false,
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                    "readOnlyRootFilesystem": false
                },
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "LD_PRELOAD", "value": "/usr/local/lib/libmimalloc.so"}
                ],
                "livenessProbe": {"failureThreshold": 5, "httpGet": {"path": "/healthz", "port": 10254, "scheme": "HTTP"},
                                  "initialDelaySeconds": 10, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1},
                "readinessProbe": {"failureThreshold": 3, "httpGet": {"path": "/healthz", "port": 10254, "scheme": "HTTP"},
                                   "initialDelaySeconds": 10, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1},
                "ports": [
                    {"name": "http", "containerPort": 80, "protocol": "TCP"},
                    {"name": "https", "containerPort": 443, "protocol": "TCP"},
                    {"name": "webhook", "containerPort": 8443, "protocol": "TCP"}
                ],
                "volumeMounts": [{"name": "webhook-cert", "mountPath": "/usr/local/certificates/", "readOnly": true}],
                "resources": {"requests": {"cpu": "100m", "memory": "90Mi"}}
            }],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "serviceAccountName": "ingress-nginx",
            "terminationGracePeriodSeconds": 300,
            "volumes": [{"name": "webhook-cert", "secret": {"secretName": "ingress-nginx-admission"}}]
        }
    })
}

/// A bitnami PostgreSQL primary's pod template (StatefulSet, defaults).
fn postgresql() -> Value {
    json!({
        "metadata": {"labels": {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/component": "primary"},
                     "annotations": {"checksum/config": "e3b0c44298fc1c149afbf4c8996fb924"}},
        "spec": {
            "serviceAccountName": "postgresql",
            "automountServiceAccountToken": false,
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "podAffinityTerm": {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": "postgresql"}},
                                    "topologyKey": "kubernetes.io/hostname"},
                "weight": 1}]}},
            "securityContext": {"fsGroup": 1001, "fsGroupChangePolicy": "Always", "supplementalGroups": [], "sysctls": []},
            "hostNetwork": false,
            "hostIPC": false,
            "containers": [{
                "name": "postgresql",
                "image": "docker.io/bitnami/postgresql:16.4.0-debian-12-r0",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "privileged": false, "readOnlyRootFilesystem": true, "runAsGroup": 1001, "runAsNonRoot": true,
                    "runAsUser": 1001, "seLinuxOptions": {}, "seccompProfile": {"type": "RuntimeDefault"}},
                "env": [
                    {"name": "BITNAMI_DEBUG", "value": "false"},
                    {"name": "POSTGRESQL_PORT_NUMBER", "value": "5432"},
                    {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "postgresql", "key": "postgres-password"}}},
                    {"name": "POSTGRESQL_ENABLE_TLS", "value": "no"}
                ],
                "ports": [{"name": "tcp-postgresql", "containerPort": 5432}],
                "livenessProbe": {"failureThreshold": 6, "initialDelaySeconds": 30, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 5,
                    "exec": {"command": ["/bin/sh", "-c", "exec pg_isready -U \"postgres\" -h 127.0.0.1 -p 5432"]}},
                "readinessProbe": {"failureThreshold": 6, "initialDelaySeconds": 5, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 5,
                    "exec": {"command": ["/bin/sh", "-c", "-e", "exec pg_isready -U \"postgres\" -h 127.0.0.1 -p 5432"]}},
                "resources": {"limits": {"cpu": "150m", "ephemeral-storage": "2Gi", "memory": "192Mi"},
                              "requests": {"cpu": "100m", "ephemeral-storage": "50Mi", "memory": "128Mi"}},
                "volumeMounts": [
                    {"name": "empty-dir", "mountPath": "/tmp", "subPath": "tmp-dir"},
                    {"name": "empty-dir", "mountPath": "/opt/bitnami/postgresql/conf", "subPath": "app-conf-dir"},
                    {"name": "dshm", "mountPath": "/dev/shm"},
                    {"name": "data", "mountPath": "/bitnami/postgresql"}
                ]
            }],
            "volumes": [
                {"name": "empty-dir", "emptyDir": {}},
                {"name": "dshm", "emptyDir": {"medium": "Memory"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-postgresql-0"}}
            ]
        }
    })
}

/// A Prometheus-style pod with a sidecar, projected volumes, spread constraints,
/// tolerations and envFrom.
fn prometheus() -> Value {
    json!({
        "metadata": {"labels": {"app": "prometheus"}},
        "spec": {
            "serviceAccountName": "prometheus",
            "initContainers": [
                {"name": "init-config", "image": "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.0",
                 "command": ["/bin/prometheus-config-reloader", "--watch-interval=0"]},
                {"name": "config-reloader", "image": "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.0",
                 "restartPolicy": "Always",
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": "reloader-web"}},
                 "ports": [{"name": "reloader-web", "containerPort": 8080}]}
            ],
            "containers": [{
                "name": "prometheus",
                "image": "quay.io/prometheus/prometheus:v2.54.0",
                "args": ["--config.file=/etc/prometheus/config/prometheus.yaml", "--storage.tsdb.path=/prometheus"],
                "envFrom": [{"configMapRef": {"name": "prometheus-env", "optional": true}}, {"prefix": "S_", "secretRef": {"name": "prometheus-env"}}],
                "env": [{"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}}],
                "ports": [{"name": "http-web", "containerPort": 9090}],
                "startupProbe": {"httpGet": {"path": "/-/ready", "port": "http-web"}, "failureThreshold": 60, "periodSeconds": 15},
                "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "http-web"}},
                "resources": {"limits": {"cpu": "2", "memory": "4Gi"}, "requests": {"cpu": "500m", "memory": "2Gi"}},
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/prometheus/config", "readOnly": true},
                    {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true,
                     "recursiveReadOnly": "IfPossible"},
                    {"name": "data", "mountPath": "/prometheus"}
                ]
            }],
            "securityContext": {"runAsUser": 65534, "runAsGroup": 65534, "runAsNonRoot": true, "fsGroup": 2000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "tolerations": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "dedicated", "operator": "Equal", "value": "monitoring", "effect": "NoExecute", "tolerationSeconds": 3600}
            ],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "prometheus"}},
                "matchLabelKeys": ["pod-template-hash"]}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}]}}},
            "priorityClassName": "system-cluster-critical",
            "volumes": [
                {"name": "config", "configMap": {"name": "prometheus-config", "items": [{"key": "prometheus.yaml", "path": "prometheus.yaml"}]}},
                {"name": "kube-api-access", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                                               {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}},
                {"name": "data", "ephemeral": {"volumeClaimTemplate": {"metadata": {"labels": {"app": "prometheus"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}}}
            ]
        }
    })
}

/// A redis replica with a numeric-port TCP probe, hostAliases and DNS config.
fn redis() -> Value {
    json!({
        "metadata": {"labels": {"app": "redis"}},
        "spec": {
            "hostAliases": [{"ip": "10.0.0.10", "hostnames": ["redis-master.local"]}],
            "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["10.96.0.10"], "searches": ["default.svc.cluster.local", "svc.cluster.local", "_srv.cluster.local."],
                          "options": [{"name": "ndots", "value": "2"}]},
            "containers": [{
                "name": "redis", "image": "redis:7.2",
                "command": ["redis-server", "--appendonly", "yes"],
                "ports": [{"containerPort": 6379, "name": "redis"}],
                "livenessProbe": {"tcpSocket": {"port": 6379}, "initialDelaySeconds": 20},
                "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}},
                "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "podinfo", "mountPath": "/etc/podinfo"}]
            }],
            "volumes": [
                {"name": "data"},
                {"name": "podinfo", "downwardAPI": {"items": [
                    {"path": "cpu_limit", "resourceFieldRef": {"containerName": "redis", "resource": "limits.cpu", "divisor": "1m"}}]}}
            ]
        }
    })
}

#[test]
fn popular_chart_templates_are_accepted() {
    for (name, t) in [
        ("ingress-nginx", ingress_nginx()),
        ("postgresql", postgresql()),
        ("prometheus", prometheus()),
        ("redis", redis()),
    ] {
        let errs = template_errors(t);
        assert!(errs.is_empty(), "{name}: {errs:?}");
    }
}

#[test]
fn containers_and_images_are_required() {
    assert_eq!(
        spec_errors(json!({})),
        vec!["spec.template.spec.containers: Required value"]
    );
    let errs = spec_errors(json!({"containers": [{"name": "a"}, {"name": "a", "image": "x"}]}));
    assert_eq!(
        errs,
        vec![
            "spec.template.spec.containers[0].image: Required value",
            "spec.template.spec.containers[1].name: Duplicate value: \"a\"",
        ]
    );
}

#[test]
fn mounts_must_name_a_volume() {
    assert_eq!(
        spec_errors(json!({"containers": [{"name": "a", "image": "x",
            "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}]})),
        vec!["spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"nope\""]
    );
}

#[test]
fn volumes_need_one_source_and_valid_names() {
    assert_eq!(
        spec_errors(json!({"containers": [{"name": "a", "image": "x"}],
            "volumes": [{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}, {"name": "Bad_Name", "emptyDir": {}}]})),
        vec![
            "spec.template.spec.volumes[0].secret: Forbidden: may not specify more than 1 volume type",
            "spec.template.spec.volumes[1].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ]
    );
}

#[test]
fn init_containers_need_restart_always_for_probes() {
    assert_eq!(
        spec_errors(json!({"containers": [{"name": "a", "image": "x"}],
            "initContainers": [{"name": "i", "image": "x", "livenessProbe": {"exec": {"command": ["true"]}}},
                               {"name": "j", "image": "x", "restartPolicy": "Sometimes"},
                               {"name": "k", "image": "x", "restartPolicy": "Never"}]})),
        vec![
            "spec.template.spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
            "spec.template.spec.initContainers[1].restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\"",
        ]
    );
}

#[test]
fn containers_may_choose_their_restart_policy_and_rules() {
    assert!(spec_errors(json!({"restartPolicy": "Never", "containers": [{"name": "a", "image": "x",
        "restartPolicy": "Never",
        "restartPolicyRules": [{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}]}]}))
    .is_empty());
    assert_eq!(
        spec_errors(
            json!({"containers": [{"name": "a", "image": "x", "restartPolicy": "Never",
            "restartPolicyRules": [{"action": "Stop"}]}]})
        ),
        vec![
            "spec.template.spec.containers[0].restartPolicyRules[0].action: Unsupported value: \"Stop\": supported values: \"Restart\"",
            "spec.template.spec.containers[0].restartPolicyRules[0].exitCodes: Required value: must be specified",
        ]
    );
}

#[test]
fn env_files_come_from_an_empty_dir() {
    let spec = |vol: Value| {
        json!({"containers": [{"name": "a", "image": "x", "env": [
        {"name": "TOKEN", "valueFrom": {"fileKeyRef": {"volumeName": "cfg", "path": "env", "key": "TOKEN"}}}]}],
        "volumes": [vol]})
    };
    assert!(spec_errors(spec(json!({"name": "cfg", "emptyDir": {}}))).is_empty());
    assert_eq!(
        spec_errors(spec(json!({"name": "cfg", "configMap": {"name": "c"}}))),
        vec![
            "spec.template.spec.containers[0].env[0].valueFrom.fileKeyRef.volumeName: Invalid value: \"cfg\": referenced volume must be of type emptyDir"
        ]
    );
}

#[test]
fn probes_need_one_handler_and_a_success_threshold_of_one() {
    assert_eq!(
        spec_errors(json!({"containers": [{"name": "a", "image": "x",
            "livenessProbe": {"successThreshold": 2, "httpGet": {"port": 0}}}]})),
        vec![
            "spec.template.spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.template.spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        ]
    );
}

#[test]
fn bad_restart_policy_and_env() {
    assert_eq!(
        spec_errors(
            json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x",
            "env": [{"name": "A=B"}, {"name": "C", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]})
        ),
        vec![
            "spec.template.spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.template.spec.containers[0].env[1].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
            "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        ]
    );
}

#[test]
fn template_host_ports_may_stay_unset_with_host_network() {
    assert!(
        spec_errors(
            json!({"hostNetwork": true, "containers": [{"name": "a", "image": "x",
        "ports": [{"containerPort": 80}]}]})
        )
        .is_empty()
    );
}

#[test]
fn ephemeral_containers_are_not_allowed_in_templates() {
    let errs = spec_errors(json!({"containers": [{"name": "a", "image": "x"}],
        "ephemeralContainers": [{"name": "d", "image": "busybox", "ports": [{"containerPort": 80}]}]}));
    assert_eq!(
        errs,
        vec![
            "spec.template.spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
            "spec.template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template",
        ]
    );
}

#[test]
fn empty_values_from_templates_take_the_defaults() {
    // What `imagePullPolicy: {{ .Values.pullPolicy }}` renders to with an empty value.
    assert!(spec_errors(json!({"restartPolicy": "", "dnsPolicy": "", "containers": [{"name": "a", "image": "x:1",
        "imagePullPolicy": "", "terminationMessagePolicy": "",
        "ports": [{"containerPort": 80, "protocol": ""}],
        "livenessProbe": {"httpGet": {"path": "", "port": 80, "scheme": ""}, "successThreshold": 0}}]}))
    .is_empty());
}

#[test]
fn latest_and_untagged_images_pull_always() {
    for (image, policy) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("registry:5000/nginx", "Always"),
        ("registry:5000/nginx:1", "IfNotPresent"),
        ("nginx@sha256:abc", "IfNotPresent"),
    ] {
        let mut c = json!({"name": "c", "image": image});
        defaults::default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], json!(policy), "{image}");
    }
}
