//! Parity rows of the workload groups: apps, batch, autoscaling and policy (see the
//! module above). The valid objects are what `kubectl create deployment|job|cronjob`,
//! `kubectl autoscale` and the documentation's `web` StatefulSet send.

use serde_json::{Value, json};

use super::Case;

/// A pod template whose labels the workloads' selectors select.
fn template(app: &str, restart: Option<&str>) -> Value {
    let mut spec = json!({"containers": [{"name": app, "image": "nginx:1.27", "resources": {}}]});
    if let Some(r) = restart {
        spec["restartPolicy"] = json!(r);
    }
    json!({"metadata": {"labels": {"app": app}}, "spec": spec})
}

const STS_FORBIDDEN: &str = "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

fn apps_cases() -> Vec<Case> {
    vec![
        Case::new(
            "/apis/apps/v1/namespaces/parity/deployments",
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "x", "labels": {"app": "web"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                         "strategy": {}, "template": template("web", None)}
            }),
        )
        .required("/spec/selector", "spec.selector: Required value")
        .required(
            "/spec/template/spec/containers",
            "spec.template.spec.containers: Required value",
        )
        .invalid(
            "/spec/replicas",
            json!(-1),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        )
        .invalid(
            "/spec/selector",
            json!({}),
            "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
        )
        .invalid(
            "/spec/template/metadata/labels",
            json!({"app": "other"}),
            "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`",
        )
        .invalid(
            "/spec/template/spec/restartPolicy",
            json!("Never"),
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
        )
        .invalid(
            "/spec/strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
        )
        .invalid(
            "/spec/strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "110%"}}),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"110%\": must not be greater than 100%",
        )
        .invalid(
            "/spec/strategy",
            json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
        )
        .invalid(
            "/spec/minReadySeconds",
            json!(700),
            "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
        )
        .immutable(
            "/spec/selector",
            json!({"matchLabels": {"tier": "x"}}),
            "spec.selector: Invalid value: {\"matchLabels\":{\"tier\":\"x\"}}: field is immutable",
        ),
        Case::new(
            "/apis/apps/v1/namespaces/parity/replicasets",
            json!({
                "metadata": {"name": "x"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "rs"}},
                         "template": template("rs", None)}
            }),
        )
        .required("/spec/selector", "spec.selector: Required value")
        .invalid(
            "/spec/selector",
            json!({}),
            "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
        )
        .invalid(
            "/spec/template/spec/activeDeadlineSeconds",
            json!(30),
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
        )
        .invalid(
            "/spec/minReadySeconds",
            json!(-5),
            "spec.minReadySeconds: Invalid value: -5: must be greater than or equal to 0",
        )
        .immutable(
            "/spec/selector",
            json!({"matchLabels": {"tier": "x"}}),
            "spec.selector: Invalid value: {\"matchLabels\":{\"tier\":\"x\"}}: field is immutable",
        ),
        Case::new(
            "/apis/apps/v1/namespaces/parity/statefulsets",
            json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "x"},
                "spec": {
                    "selector": {"matchLabels": {"app": "nginx"}},
                    "serviceName": "nginx",
                    "replicas": 3,
                    "minReadySeconds": 10,
                    "template": {
                        "metadata": {"labels": {"app": "nginx"}},
                        "spec": {
                            "terminationGracePeriodSeconds": 10,
                            "containers": [{
                                "name": "nginx",
                                "image": "registry.k8s.io/nginx-slim:0.24",
                                "ports": [{"containerPort": 80, "name": "web"}],
                                "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]
                            }]
                        }
                    },
                    "volumeClaimTemplates": [{
                        "metadata": {"name": "www"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": "my-storage-class",
                            "resources": {"requests": {"storage": "1Gi"}}
                        }
                    }]
                }
            }),
        )
        .required("/spec/selector", "spec.selector: Required value")
        .required(
            "/spec/volumeClaimTemplates/0/spec/accessModes",
            "spec.volumeClaimTemplates[0].spec.accessModes: Required value: at least 1 access mode is required",
        )
        .required(
            "/spec/volumeClaimTemplates/0/spec/resources",
            "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value",
        )
        .invalid(
            "/spec/podManagementPolicy",
            json!("Random"),
            "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        )
        .invalid(
            "/spec/serviceName",
            json!("Nginx_Svc"),
            "spec.serviceName: Invalid value: \"Nginx_Svc\": a lowercase RFC 1123 label must consist of",
        )
        .invalid(
            "/spec/updateStrategy",
            json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}}),
            "spec.updateStrategy.rollingUpdate: Invalid value: {\"partition\":1}: only allowed for updateStrategy 'RollingUpdate'",
        )
        .invalid(
            "/spec/persistentVolumeClaimRetentionPolicy",
            json!({"whenDeleted": "Keep"}),
            "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\"",
        )
        .invalid(
            "/spec/template/spec/containers/0/volumeMounts/0/name",
            json!("data"),
            "spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
        )
        .immutable("/spec/serviceName", json!("web"), STS_FORBIDDEN)
        .immutable("/spec/podManagementPolicy", json!("Parallel"), STS_FORBIDDEN)
        .immutable(
            "/spec/volumeClaimTemplates/0/spec/resources/requests/storage",
            json!("2Gi"),
            STS_FORBIDDEN,
        )
        .immutable(
            "/spec/selector",
            json!({"matchLabels": {"app": "nginx", "tier": "web"}}),
            STS_FORBIDDEN,
        ),
        Case::new(
            "/apis/apps/v1/namespaces/parity/daemonsets",
            json!({
                "metadata": {"name": "x"},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": template("agent", None)}
            }),
        )
        // A DaemonSet's missing selector is not "required": it selects nothing.
        .required(
            "/spec/selector",
            "spec.template.metadata.labels: Invalid value: {\"app\":\"agent\"}: `selector` does not match template `labels`",
        )
        .invalid(
            "/spec/selector",
            json!({}),
            "spec.selector: Invalid value: {}: empty selector is invalid for daemonset",
        )
        .invalid(
            "/spec/updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}),
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero",
        )
        .invalid(
            "/spec/updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
        )
        .invalid(
            "/spec/template/spec/restartPolicy",
            json!("OnFailure"),
            "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
        )
        .immutable(
            "/spec/selector",
            json!({"matchLabels": {"tier": "x"}}),
            "spec.selector: Invalid value: {\"matchLabels\":{\"tier\":\"x\"}}: field is immutable",
        ),
        Case::new(
            "/apis/apps/v1/namespaces/parity/controllerrevisions",
            json!({
                "metadata": {"name": "x"},
                "data": {"spec": {"template": {"metadata": {"labels": {"app": "agent"}}}}},
                "revision": 1
            }),
        )
        .required("/data", "data: Required value: data is mandatory")
        .invalid(
            "/data",
            json!("x"),
            "data: Required value: data must be a valid JSON object",
        )
        .invalid(
            "/revision",
            json!(-1),
            "revision: Invalid value: -1: must be greater than or equal to 0",
        )
        .immutable(
            "/data",
            json!({"spec": {"x": 2}}),
            "data: Invalid value: {\"spec\":{\"x\":2}}: field is immutable",
        ),
    ]
}

fn batch_cases() -> Vec<Case> {
    vec![
        Case::new(
            "/apis/batch/v1/namespaces/parity/jobs",
            json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "x"},
                "spec": {"template": {"metadata": {}, "spec": {
                    "containers": [{"name": "pi", "image": "perl:5.34.0",
                                    "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(20)"],
                                    "resources": {}}],
                    "restartPolicy": "Never"
                }}}
            }),
        )
        .required(
            "/spec/template/spec/containers",
            "spec.template.spec.containers: Required value",
        )
        .required(
            "/spec/template/spec/restartPolicy",
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
        )
        .invalid(
            "/spec/parallelism",
            json!(-1),
            "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
        )
        .invalid(
            "/spec/completionMode",
            json!("Sometimes"),
            "spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"",
        )
        .invalid(
            "/spec/backoffLimitPerIndex",
            json!(1),
            "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode",
        )
        .invalid(
            "/spec/selector",
            json!({"matchLabels": {"app": "pi"}}),
            "`selector` not auto-generated",
        )
        .invalid(
            "/spec/podFailurePolicy",
            json!({"rules": [{"action": "Explode", "onExitCodes": {"operator": "In", "values": [1]}}]}),
            "spec.podFailurePolicy.rules[0].action: Unsupported value: \"Explode\": supported values: \"Count\", \"FailIndex\", \"FailJob\", \"Ignore\"",
        )
        .invalid(
            "/spec/successPolicy",
            json!({"rules": [{"succeededCount": 1}]}),
            "spec.successPolicy: Invalid value: {\"rules\":[{\"succeededCount\":1}]}: requires indexed completion mode",
        )
        .immutable("/spec/completions", json!(2), "spec.completions: Invalid value: 2: field is immutable")
        .immutable(
            "/spec/completionMode",
            json!("Indexed"),
            "spec.completionMode: Invalid value: \"Indexed\": field is immutable",
        )
        .immutable(
            "/spec/template/spec/containers/0/image",
            json!("perl:5.40.0"),
            "spec.template: Invalid value: ",
        )
        .immutable(
            "/spec/selector/matchLabels",
            json!({"app": "pi"}),
            "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"pi\"}}: field is immutable",
        )
        .immutable(
            "/spec/backoffLimitPerIndex",
            json!(1),
            "spec.backoffLimitPerIndex: Invalid value: 1: field is immutable",
        ),
        Case::new(
            "/apis/batch/v1/namespaces/parity/cronjobs",
            json!({
                "apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": {"name": "x"},
                "spec": {
                    "schedule": "*/1 * * * *",
                    "jobTemplate": {"metadata": {"name": "x"}, "spec": {"template": {"metadata": {}, "spec": {
                        "containers": [{"name": "hello", "image": "busybox:1.36", "resources": {}}],
                        "restartPolicy": "OnFailure"
                    }}}}
                }
            }),
        )
        .required("/spec/schedule", "spec.schedule: Required value")
        .required(
            "/spec/jobTemplate/spec/template/spec/containers",
            "spec.jobTemplate.spec.template.spec.containers: Required value",
        )
        .required(
            "/spec/jobTemplate/spec/template/spec/restartPolicy",
            "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
        )
        .invalid(
            "/spec/schedule",
            json!("61 * * * *"),
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
        )
        .invalid(
            "/spec/schedule",
            json!("0 0 * *"),
            "spec.schedule: Invalid value: \"0 0 * *\": expected exactly 5 fields, found 4: [0 0 * *]",
        )
        .invalid(
            "/spec/schedule",
            json!("CRON_TZ=UTC 0 * * * *"),
            "spec.schedule: Invalid value: \"CRON_TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        )
        .invalid(
            "/spec/timeZone",
            json!("Local"),
            "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        )
        .invalid(
            "/spec/timeZone",
            json!("Europe/Far_Far_Away_Land"),
            "spec.timeZone: Invalid value: \"Europe/Far_Far_Away_Land\": unknown time zone Europe/Far_Far_Away_Land",
        )
        .invalid(
            "/spec/concurrencyPolicy",
            json!("Sometimes"),
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        )
        .invalid(
            "/spec/jobTemplate/spec/selector",
            json!({"matchLabels": {"a": "b"}}),
            "spec.jobTemplate.spec.selector: Invalid value: {\"matchLabels\":{\"a\":\"b\"}}: `selector` will be auto-generated",
        )
        .invalid(
            "/spec/startingDeadlineSeconds",
            json!(-10),
            "spec.startingDeadlineSeconds: Invalid value: -10: must be greater than or equal to 0",
        ),
    ]
}

fn autoscaling_cases() -> Vec<Case> {
    let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
    vec![
        Case::new(
            "/apis/autoscaling/v2/namespaces/parity/horizontalpodautoscalers",
            json!({
                "metadata": {"name": "x"},
                "spec": {
                    "scaleTargetRef": target,
                    "minReplicas": 1,
                    "maxReplicas": 10,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80}}}]
                }
            }),
        )
        .required("/spec/scaleTargetRef/name", "spec.scaleTargetRef.name: Required value")
        .required("/spec/scaleTargetRef/kind", "spec.scaleTargetRef.kind: Required value")
        .invalid(
            "/spec/minReplicas",
            json!(0),
            "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        )
        .invalid(
            "/spec/maxReplicas",
            json!(0),
            "spec.maxReplicas: Invalid value: 0: must be greater than 0",
        )
        .invalid(
            "/spec/metrics/0/resource/target/averageUtilization",
            json!(0),
            "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
        )
        .invalid(
            "/spec/metrics/0/type",
            json!("Pods"),
            "spec.metrics[0].pods: Required value: must populate information for the given metric source",
        )
        .invalid(
            "/spec/behavior",
            json!({"scaleUp": {"policies": []}}),
            "spec.behavior.scaleUp.policies: Required value: must specify at least one Policy",
        )
        .invalid(
            "/spec/scaleTargetRef/name",
            json!("a/b"),
            "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
        ),
        Case::new(
            "/apis/autoscaling/v1/namespaces/parity/horizontalpodautoscalers",
            json!({
                "metadata": {"name": "x"},
                "spec": {"scaleTargetRef": target, "minReplicas": 1, "maxReplicas": 5,
                         "targetCPUUtilizationPercentage": 80}
            }),
        )
        .required("/spec/scaleTargetRef/name", "spec.scaleTargetRef.name: Required value")
        .invalid(
            "/spec/minReplicas",
            json!(7),
            "spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`",
        )
        .invalid(
            "/spec/targetCPUUtilizationPercentage",
            json!(0),
            "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
        )
        .invalid(
            "/spec/maxReplicas",
            json!(0),
            "spec.maxReplicas: Invalid value: 0: must be greater than 0",
        ),
    ]
}

fn policy_cases() -> Vec<Case> {
    vec![
        Case::new(
            "/apis/policy/v1/namespaces/parity/poddisruptionbudgets",
            json!({
                "metadata": {"name": "x"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}
            }),
        )
        .invalid(
            "/spec/maxUnavailable",
            json!(1),
            "minAvailable and maxUnavailable cannot be both set",
        )
        .invalid(
            "/spec/minAvailable",
            json!("120%"),
            "spec.minAvailable: Invalid value: \"120%\": must not be greater than 100%",
        )
        .invalid(
            "/spec/minAvailable",
            json!(-1),
            "spec.minAvailable: Invalid value: -1: must be greater than or equal to 0",
        )
        .invalid(
            "/spec/minAvailable",
            json!("half"),
            "spec.minAvailable: Invalid value: \"half\": a valid percent string must be a numeric string followed by an ending '%'",
        )
        .invalid(
            "/spec/unhealthyPodEvictionPolicy",
            json!("Sometimes"),
            "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Sometimes\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"",
        )
        .invalid(
            "/spec/selector",
            json!({"matchExpressions": [{"key": "app", "operator": "Near"}]}),
            "spec.selector.matchExpressions[0].operator: Invalid value: \"Near\": not a valid selector operator",
        ),
    ]
}

/// The rows.
pub fn cases() -> Vec<Case> {
    let mut all = apps_cases();
    all.extend(batch_cases());
    all.extend(autoscaling_cases());
    all.extend(policy_cases());
    all
}
