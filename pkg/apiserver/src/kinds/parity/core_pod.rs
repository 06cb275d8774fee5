//! Parity rows of core_pod (see the module above): Pods and PodTemplates.

use serde_json::json;

use super::Case;

/// The text every refused Pod spec change starts with (upstream's `updatablePodSpecFields`).
const POD_UPDATE_FORBIDDEN: &str = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

const DNS_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// The rows.
pub fn cases() -> Vec<Case> {
    let pod = json!({
        "metadata": {"name": "x", "labels": {"app": "web"}},
        "spec": {
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 80}],
                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "envFrom": [{"configMapRef": {"name": "web-env", "optional": true}}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/conf.d", "readOnly": true}]
            }],
            "volumes": [{"name": "conf", "configMap": {"name": "web-conf"}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "nodeSelector": {"kubernetes.io/os": "linux"}
        }
    });
    let pod_case = Case::new("/api/v1/namespaces/parity/pods", pod)
        .required("/spec/containers", "spec.containers: Required value")
        .required("/spec/containers/0/name", "spec.containers[0].name: Required value")
        .required("/spec/containers/0/image", "spec.containers[0].image: Required value")
        .required(
            "/spec/containers/0/ports/0/containerPort",
            "spec.containers[0].ports[0].containerPort: Required value",
        )
        .required("/spec/containers/0/env/0/name", "spec.containers[0].env[0].name: Required value")
        .required(
            "/spec/containers/0/env/0/valueFrom/fieldRef/fieldPath",
            "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Required value",
        )
        .required(
            "/spec/containers/0/envFrom/0/configMapRef/name",
            "spec.containers[0].envFrom[0].configMapRef.name: Required value",
        )
        .required(
            "/spec/containers/0/readinessProbe/httpGet",
            "spec.containers[0].readinessProbe: Required value: must specify a handler type",
        )
        .required(
            "/spec/containers/0/volumeMounts/0/mountPath",
            "spec.containers[0].volumeMounts[0].mountPath: Required value",
        )
        .required(
            "/spec/containers/0/volumeMounts/0/name",
            "spec.containers[0].volumeMounts[0].name: Required value",
        )
        .required("/spec/volumes/0/name", "spec.volumes[0].name: Required value")
        .required(
            "/spec/volumes/0/configMap/name",
            "spec.volumes[0].configMap.name: Required value",
        )
        .invalid(
            "/spec/restartPolicy",
            json!("Sometimes"),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        )
        .invalid(
            "/spec/dnsPolicy",
            json!("Cluster"),
            "spec.dnsPolicy: Unsupported value: \"Cluster\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        )
        .invalid(
            "/spec/containers/0/volumeMounts/0/name",
            json!("missing"),
            "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
        )
        .invalid(
            "/spec/containers/0/name",
            json!("Web"),
            "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        )
        .invalid(
            "/spec/volumes/0/name",
            json!("conf_d"),
            "spec.volumes[0].name: Invalid value: \"conf_d\": a lowercase RFC 1123 label",
        )
        .invalid(
            "/spec/containers/0/imagePullPolicy",
            json!("Sometimes"),
            "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
        )
        .invalid(
            "/spec/containers/0/ports/0/containerPort",
            json!(70000),
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        )
        .invalid(
            "/spec/containers/0/ports/0/protocol",
            json!("HTTP"),
            "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        )
        .invalid(
            "/spec/containers/0/resources/requests/memory",
            json!("256Mi"),
            "spec.containers[0].resources.requests: Invalid value: \"256Mi\": must be less than or equal to memory limit of 128Mi",
        )
        .invalid(
            "/spec/containers/0/readinessProbe/periodSeconds",
            json!(-1),
            "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
        )
        .invalid(
            "/spec/containers/0/livenessProbe",
            json!({"exec": {"command": ["true"]}, "successThreshold": 2}),
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        )
        .invalid(
            "/spec/containers/0/restartPolicy",
            json!("Sometimes"),
            "spec.containers[0].restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\"",
        )
        .invalid(
            "/spec/containers/0/restartPolicyRules",
            json!([{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}]),
            "spec.containers[0].restartPolicy: Required value: must specify restartPolicy when restart rules are used",
        )
        .invalid(
            "/spec/initContainers",
            json!([{"name": "proxy", "image": "envoyproxy/envoy:v1.31", "restartPolicy": "Always",
                    "restartPolicyRules": [{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}]}]),
            "spec.initContainers[0].restartPolicyRules: Forbidden: restartPolicyRules are not allowed for init containers with restart policy Always",
        )
        .invalid(
            "/spec/initContainers",
            json!([{"name": "migrate", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}}]),
            "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
        )
        .invalid(
            "/spec/tolerations/0/operator",
            json!("In"),
            "spec.tolerations[0].operator: Unsupported value: \"In\": supported values: \"Equal\", \"Exists\"",
        )
        .invalid(
            "/spec/tolerations/0/effect",
            json!("NoSchedule"),
            "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
        )
        .invalid(
            "/spec/hostname",
            json!("Web_1"),
            "spec.hostname: Invalid value: \"Web_1\": ",
        )
        .invalid(
            "/spec/securityContext/runAsUser",
            json!(-1),
            "spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
        )
        .invalid(
            "/spec/ephemeralContainers",
            json!([{"name": "debug", "image": "busybox"}]),
            "spec.ephemeralContainers: Forbidden: cannot be set on create",
        )
        .invalid(
            "/spec/volumes/0/secret",
            json!({"secretName": "s"}),
            "spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type",
        )
        .invalid(
            "/spec/affinity",
            json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}}}]}}),
            "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
        )
        .invalid(
            "/spec/topologySpreadConstraints",
            json!([{"maxSkew": 0, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}]),
            "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
        )
        .immutable("/spec/restartPolicy", json!("Never"), POD_UPDATE_FORBIDDEN)
        .immutable("/spec/containers/0/name", json!("www"), POD_UPDATE_FORBIDDEN)
        .immutable(
            "/spec/containers/0/ports/0/containerPort",
            json!(8080),
            POD_UPDATE_FORBIDDEN,
        )
        .immutable(
            "/spec/nodeSelector",
            json!({"kubernetes.io/os": "windows"}),
            POD_UPDATE_FORBIDDEN,
        )
        .immutable("/spec/volumes/0/configMap/name", json!("other"), POD_UPDATE_FORBIDDEN)
        .immutable(
            "/spec/containers/0/resources/requests/cpu",
            json!("200m"),
            POD_UPDATE_FORBIDDEN,
        )
        .immutable(
            "/spec/tolerations",
            json!([]),
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
        )
        .immutable(
            "/spec/containers",
            json!([]),
            "spec.containers: Forbidden: pod updates may not add or remove containers",
        );

    let template = json!({
        "metadata": {"name": "x"},
        "template": {
            "metadata": {"labels": {"app": "batch"}},
            "spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "job", "image": "busybox:1.36", "command": ["sh", "-c", "echo done"],
                                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
                "volumes": [{"name": "scratch", "emptyDir": {}}]
            }
        }
    });
    let template_case = Case::new("/api/v1/namespaces/parity/podtemplates", template)
        .required("/template/spec/containers", "template.spec.containers: Required value")
        .required(
            "/template/spec/containers/0/name",
            "template.spec.containers[0].name: Required value",
        )
        .required(
            "/template/spec/containers/0/image",
            "template.spec.containers[0].image: Required value",
        )
        .required(
            "/template/spec/containers/0/volumeMounts/0/mountPath",
            "template.spec.containers[0].volumeMounts[0].mountPath: Required value",
        )
        .required("/template/spec/volumes/0/name", "template.spec.volumes[0].name: Required value")
        .invalid(
            "/template/spec/restartPolicy",
            json!("Sometimes"),
            "template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        )
        .invalid(
            "/template/spec/containers/0/volumeMounts/0/name",
            json!("missing"),
            "template.spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
        )
        .invalid(
            "/template/metadata/labels/app",
            json!("-batch-"),
            "template.labels: Invalid value: \"-batch-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        )
        .invalid(
            "/template/spec/containers/0/name",
            json!("Job"),
            DNS_LABEL,
        )
        .invalid(
            "/template/spec/ephemeralContainers",
            json!([{"name": "debug", "image": "busybox"}]),
            "template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template",
        );
    vec![pod_case, template_case]
}
