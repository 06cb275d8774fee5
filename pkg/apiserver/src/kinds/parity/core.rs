//! Parity rows of the core group besides Pods (see the module above). Texts come from
//! `pkg/apis/core/validation/validation.go` and `events.go`; where upstream prints a Go
//! value k1s renders differently (slices, structs, quantities), a row checks the part
//! of the text that does not depend on it.

use serde_json::json;

use super::Case;

/// The rows.
pub fn cases() -> Vec<Case> {
    vec![
        services(),
        endpoints(),
        persistent_volumes(),
        persistent_volume_claims(),
        nodes(),
        namespaces(),
        limit_ranges(),
        resource_quotas(),
        service_accounts(),
        secrets(),
        config_maps(),
        events_core(),
        events_v1(),
        replication_controllers(),
    ]
}

fn services() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/services",
        json!({"metadata": {"name": "x"}, "spec": {"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
    )
    .required("/spec/ports", "spec.ports: Required value")
    .invalid("/spec/type", json!("ExternalName"), "spec.externalName: Required value")
    .invalid("/spec/type", json!("Bogus"), "spec.type: Unsupported value: \"Bogus\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"")
    .invalid("/spec/ports/0/port", json!(0), "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")
    .invalid("/spec/ports/0/targetPort", json!("Not_A_Name"), "spec.ports[0].targetPort: Invalid value: \"Not_A_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    .invalid("/spec/sessionAffinity", json!("Sticky"), "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"")
    .invalid("/spec/externalIPs", json!(["127.0.0.1"]), "spec.externalIPs[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)")
    .invalid("/spec/loadBalancerSourceRanges", json!(["10.0.0.0/8"]), "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'")
    .invalid("/spec/ipFamilyPolicy", json!("RequireDualStack"), "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services")
    .invalid("/spec/clusterIPs", json!(["None", "10.0.0.1"]), "'None' must be the first and only value")
    .invalid("/spec/healthCheckNodePort", json!(30001), "spec.healthCheckNodePort: Invalid value: 30001: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")
    .immutable("/spec/clusterIP", json!("10.0.0.99"), "may not change once set")
}

fn endpoints() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/endpoints",
        json!({"metadata": {"name": "x"}, "subsets": [{"addresses": [{"ip": "10.42.0.5"}],
            "ports": [{"name": "http", "port": 80}]}]}),
    )
    .required("/subsets/0/addresses", "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`")
    .invalid("/subsets/0/addresses/0/ip", json!("127.0.0.1"), "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)")
    .invalid("/subsets/0/ports/0/port", json!(0), "subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")
    .invalid("/subsets/0/ports/0/protocol", json!("HTTP"), "subsets[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"")
}

fn persistent_volumes() -> Case {
    Case::new(
        "/api/v1/persistentvolumes",
        json!({"metadata": {"name": "x"}, "spec": {"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/mnt/data"},
            "storageClassName": "manual"}}),
    )
    .required("/spec/accessModes", "spec.accessModes: Required value")
    .required("/spec/capacity", "spec.capacity: Required value")
    .required("/spec/hostPath", "spec: Required value: must specify a volume type")
    .required("/spec/hostPath/path", "spec.hostPath.path: Required value")
    .invalid("/spec/accessModes/0", json!("ReadWriteSometimes"), "spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"")
    .invalid("/spec/persistentVolumeReclaimPolicy", json!("Keep"), "spec.persistentVolumeReclaimPolicy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Recycle\", \"Retain\"")
    .invalid("/spec/capacity/storage", json!("0"), "spec.capacity[storage]: Invalid value: \"0\": must be greater than zero")
    .invalid("/spec/nfs", json!({"server": "nfs.example.com", "path": "/exports"}), "spec.nfs: Forbidden: may not specify more than 1 volume type")
    .invalid("/spec/volumeMode", json!("Raw"), "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"")
    .immutable("/spec/hostPath/path", json!("/mnt/other"), "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation")
    .immutable("/spec/volumeMode", json!("Block"), "volumeMode: Invalid value: \"Block\": field is immutable")
}

fn persistent_volume_claims() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/persistentvolumeclaims",
        json!({"metadata": {"name": "x"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "standard"}}),
    )
    .required("/spec/accessModes", "spec.accessModes: Required value: at least 1 access mode is required")
    .required("/spec/resources/requests/storage", "spec.resources[storage]: Required value")
    .invalid("/spec/resources/requests/storage", json!("-1Gi"), "spec.resources[storage]: Invalid value: \"-1Gi\": must be greater than zero")
    .invalid("/spec/volumeMode", json!("Raw"), "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"")
    .invalid("/spec/storageClassName", json!("Bad_Class"), "spec.storageClassName: Invalid value: \"Bad_Class\": a lowercase RFC 1123 subdomain must consist of")
    .invalid("/spec/dataSource", json!({"name": "s", "kind": "Secret"}), "spec.dataSource: Invalid value: \"Secret\": must be 'PersistentVolumeClaim' when referencing the default apiGroup")
    .immutable("/spec/resources/requests/storage", json!("2Gi"), "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims")
    .immutable("/spec/storageClassName", json!("other"), "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims")
    .immutable("/spec/volumeMode", json!("Block"), "volumeMode: Invalid value: \"Block\": field is immutable")
}

fn nodes() -> Case {
    Case::new(
        "/api/v1/nodes",
        json!({"metadata": {"name": "x"}, "spec": {"podCIDR": "10.244.0.0/24",
            "providerID": "k1s://node", "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}),
    )
    .required("/spec/taints/0/effect", "metadata.taints[0].effect: Required value")
    .invalid("/spec/taints/0/effect", json!("Sometimes"), "metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"")
    .invalid("/spec/taints/0/key", json!("bad key"), "metadata.taints[0].key: Invalid value: \"bad key\": name part must consist of alphanumeric characters")
    .invalid("/spec/podCIDRs", json!(["not-a-cidr"]), "spec.podCIDRs[0]: Invalid value: \"not-a-cidr\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
    .immutable("/spec/podCIDRs", json!(["10.244.1.0/24"]), "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid")
    .immutable("/spec/providerID", json!("k1s://other"), "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid")
}

fn namespaces() -> Case {
    Case::new("/api/v1/namespaces", json!({"metadata": {"name": "x"}}))
        .invalid("/spec/finalizers", json!(["custom"]), "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified")
        .invalid("/metadata/name", json!("Bad.Name"), "metadata.name: Invalid value: \"Bad.Name\": a lowercase RFC 1123 label must consist of")
}

fn limit_ranges() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/limitranges",
        json!({"metadata": {"name": "x"}, "spec": {"limits": [{"type": "Container",
            "default": {"cpu": "500m", "memory": "512Mi"}, "defaultRequest": {"cpu": "250m", "memory": "256Mi"},
            "max": {"cpu": "1", "memory": "1Gi"}, "min": {"cpu": "100m", "memory": "64Mi"}}]}}),
    )
    .required("/spec/limits/0/type", "spec.limits[0].type: Invalid value: \"\": name part must be non-empty")
    .invalid("/spec/limits/0/type", json!("Bogus"), "spec.limits[0].type: Invalid value: \"Bogus\": must be a standard limit type or fully qualified")
    .invalid("/spec/limits/0/type", json!("PersistentVolumeClaim"), "spec.limits[0].limits: Required value: either minimum or maximum storage value is required, but neither was provided")
    .invalid("/spec/limits/0/min/cpu", json!("2"), "spec.limits[0].min[cpu]: Invalid value: 2: min value 2 is greater than max value 1")
    .invalid("/spec/limits/0/max/cpus", json!("1"), "spec.limits[0].max[cpus]: Invalid value: \"cpus\": must be a standard resource type or fully qualified")
}

fn resource_quotas() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/resourcequotas",
        json!({"metadata": {"name": "x"}, "spec": {"hard": {"requests.cpu": "1", "requests.memory": "1Gi",
            "limits.cpu": "2", "limits.memory": "2Gi", "pods": "10"}, "scopes": ["NotBestEffort"]}}),
    )
    .invalid("/spec/hard/pods", json!("1.5"), "must be an integer")
    .invalid("/spec/hard/storage", json!("1Gi"), "spec.hard[storage]: Invalid value: \"storage\": must be a standard resource for quota")
    .invalid("/spec/hard/cpu", json!("-1"), "spec.hard[cpu]: Invalid value: \"-1\": must be greater than or equal to 0")
    .invalid("/spec/scopes", json!(["BestEffort", "NotBestEffort"]), "conflicting scopes")
    .invalid("/spec/scopes", json!(["Sometimes"]), "unsupported scope")
    .invalid("/spec/scopeSelector", json!({"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In"}]}), "spec.scopeSelector.matchExpressions.values: Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector")
    .immutable("/spec/scopes", json!(["Terminating"]), "field is immutable")
}

fn service_accounts() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/serviceaccounts",
        json!({"metadata": {"name": "x"}, "automountServiceAccountToken": false,
            "imagePullSecrets": [{"name": "registry"}]}),
    )
    .invalid("/metadata/name", json!("Bad_Name"), "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of")
}

fn secrets() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/secrets",
        json!({"metadata": {"name": "x"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}, "immutable": true}),
    )
    .required("/data/tls.crt", "data[tls.crt]: Required value")
    .required("/data/tls.key", "data[tls.key]: Required value")
    .invalid("/data/bad key", json!("eA=="), "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
    .invalid("/type", json!("kubernetes.io/dockerconfigjson"), "data[.dockerconfigjson]: Required value")
    .invalid("/type", json!("kubernetes.io/dockercfg"), "data[.dockercfg]: Required value")
    .invalid("/type", json!("kubernetes.io/basic-auth"), "data[username]: Required value")
    .invalid("/type", json!("kubernetes.io/ssh-auth"), "data[ssh-privatekey]: Required value")
    .invalid("/type", json!("kubernetes.io/service-account-token"), "metadata.annotations[kubernetes.io/service-account.name]: Required value")
    .immutable("/type", json!("Opaque"), "type: Invalid value: \"Opaque\": field is immutable")
    .immutable("/data/tls.crt", json!("b3RoZXI="), "data: Forbidden: field is immutable when `immutable` is set")
    .immutable("/immutable", json!(false), "immutable: Forbidden: field is immutable when `immutable` is set")
}

fn config_maps() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/configmaps",
        json!({"metadata": {"name": "x"}, "data": {"a": "1"}, "immutable": true}),
    )
    .invalid("/data/a b", json!("1"), "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
    .invalid("/binaryData", json!({"a": "eA=="}), "data[a]: Invalid value: \"a\": duplicate of key present in binaryData")
    .immutable("/data/a", json!("2"), "data: Forbidden: field is immutable when `immutable` is set")
    .immutable("/binaryData", json!({"b": "eA=="}), "binaryData: Forbidden: field is immutable when `immutable` is set")
    .immutable("/immutable", json!(false), "immutable: Forbidden: field is immutable when `immutable` is set")
}

fn events_core() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/events",
        json!({"metadata": {"name": "x"},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "namespace": "parity"},
            "reason": "Started", "message": "Started container web", "type": "Normal",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z", "count": 1}),
    )
    .required("/involvedObject/namespace", "involvedObject.namespace: Invalid value: \"\": does not match event.namespace")
    .invalid("/involvedObject/namespace", json!("other"), "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace")
    .invalid("/eventTime", json!("2024-01-01T00:00:00.000000Z"), "reportingController: Required value")
}

fn events_v1() -> Case {
    Case::new(
        "/apis/events.k8s.io/v1/namespaces/parity/events",
        json!({"metadata": {"name": "x"}, "eventTime": "2024-01-01T00:00:00.000000Z",
            "reportingController": "example.com/operator", "reportingInstance": "operator-0",
            "action": "Reconcile", "reason": "Reconciled", "note": "done", "type": "Normal",
            "regarding": {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "namespace": "parity"}}),
    )
    .required("/eventTime", "eventTime: Required value")
    .required("/reportingController", "reportingController: Required value")
    .required("/reportingInstance", "reportingInstance: Required value")
    .required("/action", "action: Required value")
    .required("/reason", "reason: Required value")
    .invalid("/type", json!("Info"), "type: Invalid value: \"\": has invalid value: Info")
    .invalid("/deprecatedCount", json!(2), "count: Invalid value: \"\": needs to be unset")
    .invalid("/deprecatedSource", json!({"component": "kubelet"}), "source: Invalid value: \"\": needs to be unset")
    .invalid("/series", json!({"count": 1, "lastObservedTime": "2024-01-01T00:00:00.000000Z"}), "series.count: Invalid value: \"\": should be at least 2")
    .invalid("/reportingController", json!("not a name!"), "reportingController: Invalid value: \"not a name!\": name part must consist of alphanumeric characters")
    .immutable("/reason", json!("Changed"), "reason: Invalid value: \"Changed\": field is immutable")
    .immutable("/note", json!("other"), "message: Invalid value: \"other\": field is immutable")
    .immutable("/action", json!("Other"), "action: Invalid value: \"Other\": field is immutable")
    .immutable("/reportingInstance", json!("operator-1"), "reportingInstance: Invalid value: \"operator-1\": field is immutable")
    .immutable("/regarding/name", json!("web-1"), "involvedObject: Invalid value: ")
}

fn replication_controllers() -> Case {
    Case::new(
        "/api/v1/namespaces/parity/replicationcontrollers",
        json!({"metadata": {"name": "x"}, "spec": {"replicas": 1, "selector": {"app": "web"},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
    )
    .required("/spec/template", "spec.template: Required value")
    .required("/spec/template/spec/containers/0/image", "spec.template.spec.containers[0].image: Required value")
    .invalid("/spec/replicas", json!(-1), "spec.replicas: Invalid value: -1: must be greater than or equal to 0")
    .invalid("/spec/minReadySeconds", json!(-1), "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0")
    .invalid("/spec/selector", json!({"app": "other"}), "`selector` does not match template `labels`")
    .invalid("/spec/template/spec/restartPolicy", json!("Never"), "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"")
    .invalid("/spec/template/spec/activeDeadlineSeconds", json!(30), "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController is not Supported")
}
