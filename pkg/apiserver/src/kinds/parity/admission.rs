//! Parity rows of certificates, flowcontrol, admissionregistration and
//! CustomResourceDefinitions (see the module above).

use serde_json::{Value, json};

use super::Case;

/// A kubelet client CSR (P-256, `O=system:nodes, CN=system:node:agent-1`) as base64 of
/// its PEM, the way k3s agents and kubeadm joins send it.
const NODE_CSR: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlIdk1JR1hBZ0VBTURVeEZUQVRCZ05WQkFvTURITjVjM1JsYlRwdWIyUmxjekVjTUJvR0ExVUVBd3dUYzNsegpkR1Z0T201dlpHVTZZV2RsYm5RdE1UQlpNQk1HQnlxR1NNNDlBZ0VHQ0NxR1NNNDlBd0VIQTBJQUJNZWZTSGhyCkk1REFNT2x3bHJGRDVmbHlITGxReWlrNTg4K0V3TFFXczh2aWFMTkxudHNwQnBhSU1NQ0ZCRE1pODFSeHJrcjkKL3liRTN1WWQrak9odXkyZ0FEQUtCZ2dxaGtqT1BRUURBZ05IQURCRUFpQW16b2NQbjdDY3ZhNzFaaUZ5SmtqbApBK3ZHc1FRd1VPVzNRZThBRFdYMjBnSWdkRVhxTzBxZ093YVhob20za2pQdHp1d0MrYnlPL29HRUo3QmJlV3V0Ck5rcz0KLS0tLS1FTkQgQ0VSVElGSUNBVEUgUkVRVUVTVC0tLS0tCg==";

/// The rows.
pub fn cases() -> Vec<Case> {
    vec![
        csr(),
        flow_schema(),
        priority_level(),
        mutating(),
        validating(),
        policy(),
        binding(),
        crd(),
    ]
}

fn csr() -> Case {
    Case::new(
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        json!({"metadata": {"name": "x"}, "spec": {
            "request": NODE_CSR,
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
            "expirationSeconds": 86400
        }}),
    )
    .required("/spec/request", "spec.request: Invalid value: null: PEM block type must be CERTIFICATE REQUEST")
    .required("/spec/signerName", "spec.signerName: Required value")
    .required("/spec/usages", "spec.usages: Required value")
    .invalid("/spec/request", json!("Zm9v"), "spec.request: Invalid value: \"Zm9v\": PEM block type must be CERTIFICATE REQUEST")
    .invalid("/spec/expirationSeconds", json!(599), "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)")
    .invalid("/spec/signerName", json!("kubernetes.io/legacy-unknown"), "spec.signerName: Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version")
    .invalid("/spec/signerName", json!("example"), "spec.signerName: Invalid value: \"example\": must be a fully qualified domain and path of the form 'example.com/signer-name'")
    .invalid("/spec/usages", json!(["client auth", "flying"]), "spec.usages[1]: Unsupported value: \"flying\": supported values: \"any\", \"cert sign\", \"client auth\"")
    .invalid("/spec/usages", json!(["client auth", "client auth"]), "spec.usages[1]: Duplicate value: \"client auth\"")
}

fn flow_schema() -> Case {
    Case::new(
        "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas",
        json!({"metadata": {"name": "x"}, "spec": {
            "priorityLevelConfiguration": {"name": "workload-low"},
            "matchingPrecedence": 9000,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [{"kind": "Group", "group": {"name": "system:serviceaccounts"}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            }]
        }}),
    )
    .required("/spec/priorityLevelConfiguration/name", "spec.priorityLevelConfiguration.name: Required value: must reference a priority level")
    .required("/spec/rules/0/subjects", "spec.rules[0].subjects: Required value: subjects must contain at least one value")
    .required("/spec/rules/0/subjects/0/group", "spec.rules[0].subjects[0].group: Required value: group is required when subject kind is 'Group'")
    .required("/spec/rules/0/resourceRules/0/verbs", "spec.rules[0].resourceRules[0].verbs: Required value: verbs must contain at least one value")
    .required("/spec/rules/0/resourceRules/0/apiGroups", "spec.rules[0].resourceRules[0].apiGroups: Required value: resource rules must supply at least one api group")
    .required("/spec/rules/0/resourceRules/0/resources", "spec.rules[0].resourceRules[0].resources: Required value: resource rules must supply at least one resource")
    .required("/spec/rules/0/nonResourceRules/0/nonResourceURLs", "spec.rules[0].nonResourceRules[0].nonResourceURLs: Required value: nonResourceURLs must contain at least one value")
    .invalid("/spec/matchingPrecedence", json!(10001), "spec.matchingPrecedence: Invalid value: 10001: must not be greater than 10000")
    .invalid("/spec/matchingPrecedence", json!(1), "spec.matchingPrecedence: Invalid value: 1: only the schema named 'exempt' may have matchingPrecedence 1")
    .invalid("/spec/rules/0/subjects/0/kind", json!("Robot"), "spec.rules[0].subjects[0].kind: Unsupported value: \"Robot\": supported values: \"Group\", \"ServiceAccount\", \"User\"")
    .invalid("/spec/rules/0/nonResourceRules/0/nonResourceURLs", json!(["healthz"]), "spec.rules[0].nonResourceRules[0].nonResourceURLs[0]: Invalid value: \"healthz\": must start with slash")
    .invalid("/spec/rules/0/resourceRules/0/verbs", json!(["get", "*"]), "spec.rules[0].resourceRules[0].verbs: Invalid value: [\"get\",\"*\"]: if '*' is present, must not specify other verbs")
}

fn priority_level() -> Case {
    Case::new(
        "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations",
        json!({"metadata": {"name": "x"}, "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 20,
            "lendablePercent": 50,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}
        }}}),
    )
    .required("/spec/type", "spec.type: Unsupported value: \"\": supported values: \"Exempt\", \"Limited\"")
    .required("/spec/limited", "spec.limited: Required value: must not be empty when type is Limited")
    .required("/spec/limited/limitResponse/type", "spec.limited.limitResponse.type: Unsupported value: \"\": supported values: \"Queue\", \"Reject\"")
    .required("/spec/limited/limitResponse/queuing", "spec.limited.limitResponse.queuing: Required value: must not be empty if limited.limitResponse.type is Limited")
    .invalid("/spec/limited/nominalConcurrencyShares", json!(0), "spec.limited.nominalConcurrencyShares: Invalid value: 0: must be positive")
    .invalid("/spec/limited/lendablePercent", json!(101), "spec.limited.lendablePercent: Invalid value: 101: must be between 0 and 100, inclusive")
    .invalid("/spec/limited/limitResponse/queuing/handSize", json!(200), "spec.limited.limitResponse.queuing.handSize: Invalid value: 200: should not be greater than queues (128)")
    .invalid("/spec/type", json!("Exempt"), "spec.type: Invalid value: \"Exempt\": type must be 'Exempt' if and only if name is 'exempt'")
    .invalid("/spec/exempt", json!({}), "spec.exempt: Forbidden: must be nil if the type is Limited")
}

/// The rows every webhook configuration shares; `hook` is the valid first webhook.
fn webhook_case(collection: &'static str, hook: Value) -> Case {
    Case::new(collection, json!({"metadata": {"name": "x"}, "webhooks": [hook]}))
        .required("/webhooks/0/name", "webhooks[0].name: Required value")
        .required("/webhooks/0/sideEffects", "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun")
        .required("/webhooks/0/admissionReviewVersions", "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1")
        .required("/webhooks/0/clientConfig/service", "webhooks[0].clientConfig: Required value: exactly one of url or service is required")
        // Upstream swaps the service's name and namespace when it checks them.
        .required("/webhooks/0/clientConfig/service/name", "webhooks[0].clientConfig.service.namespace: Required value: service namespace is required")
        .required("/webhooks/0/clientConfig/service/namespace", "webhooks[0].clientConfig.service.name: Required value: service name is required")
        .required("/webhooks/0/rules/0/operations", "webhooks[0].rules[0].operations: Required value")
        .required("/webhooks/0/rules/0/apiGroups", "webhooks[0].rules[0].apiGroups: Required value")
        .required("/webhooks/0/rules/0/apiVersions", "webhooks[0].rules[0].apiVersions: Required value")
        .required("/webhooks/0/rules/0/resources", "webhooks[0].rules[0].resources: Required value")
        .invalid("/webhooks/0/name", json!("webhook"), "webhooks[0].name: Invalid value: \"webhook\": should be a domain with at least three segments separated by dots")
        .invalid("/webhooks/0/timeoutSeconds", json!(31), "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds")
        .invalid("/webhooks/0/sideEffects", json!("Some"), "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"")
        .invalid("/webhooks/0/failurePolicy", json!("Never"), "webhooks[0].failurePolicy: Unsupported value: \"Never\": supported values: \"Fail\", \"Ignore\"")
        .invalid("/webhooks/0/admissionReviewVersions", json!(["v2"]), "webhooks[0].admissionReviewVersions: Invalid value: [\"v2\"]: must include at least one of v1, v1beta1")
        .invalid("/webhooks/0/rules/0/operations", json!(["PATCH"]), "webhooks[0].rules[0].operations[0]: Unsupported value: \"PATCH\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"")
        .invalid("/webhooks/0/rules/0/scope", json!("Global"), "webhooks[0].rules[0].scope: Unsupported value: \"Global\": supported values: \"*\", \"Cluster\", \"Namespaced\"")
        .invalid("/webhooks/0/clientConfig", json!({"url": "http://example.com/hook"}), "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]")
        .invalid("/webhooks/0/clientConfig/service/port", json!(0), "webhooks[0].clientConfig.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive")
        .invalid("/webhooks/0/matchConditions", json!([{"name": "not-self", "expression": "self.metadata.name != 'x'"}]), "webhooks[0].matchConditions[0].expression: Invalid value: \"self.metadata.name != 'x'\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'self' (in container '')")
        .invalid("/webhooks/0/matchConditions", json!([{"name": "broken", "expression": "object.metadata.name =="}]), "webhooks[0].matchConditions[0].expression: Invalid value: \"object.metadata.name ==\": compilation failed: ERROR: <input>:1:24: Syntax error: mismatched input '<EOF>' expecting")
        .invalid("/webhooks/0/matchConditions", json!([{"name": "Bad Name", "expression": "true"}]), "webhooks[0].matchConditions[0].name: Invalid value: \"Bad Name\": name part must consist of alphanumeric characters")
}

fn mutating() -> Case {
    // cert-manager's mutating webhook as its chart installs it (the CA is injected later).
    webhook_case(
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        json!({
            "name": "webhook.cert-manager.io",
            "rules": [{"apiGroups": ["cert-manager.io"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["certificaterequests"]}],
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 30,
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "clientConfig": {"service": {"name": "cert-manager-webhook", "namespace": "cert-manager", "path": "/mutate"}}
        }),
    )
    .invalid("/webhooks/0/reinvocationPolicy", json!("Always"), "webhooks[0].reinvocationPolicy: Unsupported value: \"Always\": supported values: \"IfNeeded\", \"Never\"")
}

fn validating() -> Case {
    // ingress-nginx's admission webhook.
    webhook_case(
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        json!({
            "name": "validate.nginx.ingress.kubernetes.io",
            "matchPolicy": "Equivalent",
            "rules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]}],
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": "ingress-nginx", "name": "ingress-nginx-controller-admission", "path": "/networking/v1/ingresses"}}
        }),
    )
    .invalid("/webhooks/0/clientConfig/service/path", json!("networking"), "webhooks[0].clientConfig.service.path: Invalid value: \"networking\": must start with a '/'")
    .invalid("/webhooks/0/rules/0/resources", json!(["*", "ingresses"]), "webhooks[0].rules[0].resources: Invalid value: [\"*\",\"ingresses\"]: if '*' is present, must not specify other resources without subresources")
}

fn policy() -> Case {
    // The ValidatingAdmissionPolicy of the Kubernetes docs.
    Case::new(
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
        json!({"metadata": {"name": "x"}, "spec": {
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
            "validations": [{"expression": "object.spec.replicas <= 5"}]
        }}),
    )
    .required("/spec/matchConstraints", "spec.matchConstraints: Required value")
    .required("/spec/matchConstraints/resourceRules", "spec.matchConstraints.resourceRules: Required value")
    .required("/spec/validations", "spec.validations: Required value: validations or auditAnnotations must contain at least one item")
    .required("/spec/validations/0/expression", "spec.validations[0].expression: Required value: expression is not specified")
    .invalid("/spec/failurePolicy", json!("Never"), "spec.failurePolicy: Unsupported value: \"Never\": supported values: \"Fail\", \"Ignore\"")
    .invalid("/spec/validations/0/expression", json!("self.spec.replicas <= 5"), "spec.validations[0].expression: Invalid value: \"self.spec.replicas <= 5\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'self' (in container '')\n | self.spec.replicas <= 5\n | ^")
    .invalid("/spec/validations/0/expression", json!("object.spec.replicas <="), "spec.validations[0].expression: Invalid value: \"object.spec.replicas <=\": compilation failed: ERROR: <input>:1:24: Syntax error: mismatched input '<EOF>' expecting")
    .invalid("/spec/validations/0/expression", json!("params.max >= object.spec.replicas"), "compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')")
    .invalid("/spec/validations/0/reason", json!("Teapot"), "spec.validations[0].reason: Unsupported value: \"Teapot\": supported values: \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\"")
    .invalid("/spec/validations/0/message", json!("too\nmany"), "spec.validations[0].message: Invalid value: \"too\\nmany\": message must not contain line breaks")
    .invalid("/spec/paramKind", json!({"apiVersion": "v1"}), "spec.paramKind.kind: Required value")
    .invalid("/spec/variables", json!([{"name": "in", "expression": "1"}]), "spec.variables[0].name: Invalid value: \"in\": name is not a valid CEL identifier")
    .invalid("/spec/matchConstraints/matchPolicy", json!("Sometimes"), "spec.matchConstraints.matchPolicy: Unsupported value: \"Sometimes\": supported values: \"Equivalent\", \"Exact\"")
}

fn binding() -> Case {
    Case::new(
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
        json!({"metadata": {"name": "x"}, "spec": {
            "policyName": "demo-policy.example.com",
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"environment": "test"}}}
        }}),
    )
    .required("/spec/policyName", "spec.policyName: Required value")
    .required("/spec/validationActions", "spec.validationActions: Required value: at least one validation action is required")
    .invalid("/spec/validationActions", json!(["Deny", "Warn"]), "spec.validationActions: Invalid value: [\"Deny\",\"Warn\"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)")
    .invalid("/spec/validationActions", json!(["Block"]), "spec.validationActions[0]: Unsupported value: \"Block\": supported values: \"Audit\", \"Deny\", \"Warn\"")
    .invalid("/spec/paramRef", json!({"name": "limits"}), "spec.paramRef.parameterNotFoundAction: Required value")
    .invalid("/spec/paramRef", json!({"parameterNotFoundAction": "Deny"}), "spec.paramRef: Required value: one of name or selector must be specified")
    // Upstream misspells matchResources in this path.
    .invalid("/spec/matchResources/matchPolicy", json!("Sometimes"), "spec.matchResouces.matchPolicy: Unsupported value: \"Sometimes\": supported values: \"Equivalent\", \"Exact\"")
    .invalid("/spec/policyName", json!("Demo"), "spec.policyName: Invalid value: \"Demo\": a lowercase RFC 1123 subdomain")
}

/// CustomResourceDefinitions: the CronTab of the Kubernetes docs. A CRD's name must be
/// `<plural>.<group>`, so each row's CRD gets a group of its own ([`crd_named`]); scope
/// and kind are fixed only once the definition is Established.
fn crd() -> Case {
    Case::new(
        CRDS,
        json!({"metadata": {"name": "crontabs.stable.example.com"}, "spec": {
            "group": "stable.example.com",
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {
                    "cronSpec": {"type": "string"}, "image": {"type": "string"}, "replicas": {"type": "integer"}
                }}}
            }}}],
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]}
        }}),
    )
    .built_by(crd_named)
    .once(established)
    .required("/spec/group", "spec.group: Required value")
    .required("/spec/scope", "spec.scope: Required value")
    .required("/spec/names/plural", "spec.names.plural: Required value")
    .required("/spec/names/kind", "spec.names.kind: Required value")
    .required("/spec/versions", "must have exactly one version marked as storage version")
    .invalid("/spec/group", json!("example"), "spec.group: Invalid value: \"example\": should be a domain with at least one dot")
    .invalid("/spec/scope", json!("Global"), "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"")
    .invalid("/spec/versions/0/storage", json!(false), "must have exactly one version marked as storage version")
    .invalid("/spec/versions/0/name", json!("V1"), "spec.versions[0].name: Invalid value: \"V1\": a DNS-1035 label must consist of lower case alphanumeric characters or '-'")
    .invalid("/spec/names/plural", json!("CronTabs"), "spec.names.plural: Invalid value: \"CronTabs\": a DNS-1035 label must consist of lower case alphanumeric characters or '-'")
    .invalid("/spec/names/kind", json!("Cron_Tab"), "spec.names.kind: Invalid value: \"Cron_Tab\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-'")
    .invalid("/metadata/name", json!("crontab.stable.example.com"), "metadata.name: Invalid value: \"crontab.stable.example.com\": must be spec.names.plural+\".\"+spec.group")
    .immutable("/spec/group", json!("other.example.com"), "spec.group: Invalid value: \"other.example.com\": field is immutable")
    .immutable("/spec/names/plural", json!("crontabz"), "spec.names.plural: Invalid value: \"crontabz\": field is immutable")
    .immutable("/spec/scope", json!("Cluster"), "spec.scope: Invalid value: \"Cluster\": field is immutable")
    .immutable("/spec/names/kind", json!("CronTab2"), "spec.names.kind: Invalid value: \"CronTab2\": field is immutable")
}

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/// `obj` moved to the group `<tag>.parity.example.com` (so every row's CRD is its own),
/// edited, and named `<plural>.<group>` as a CRD must be (unless the edit named it).
fn crd_named(obj: &Value, tag: &str, edit: &dyn Fn(&mut Value)) -> Value {
    let mut o = obj.clone();
    o["spec"]["group"] = json!(format!("{tag}.parity.example.com"));
    edit(&mut o);
    let part = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if o.pointer("/metadata/name") == obj.pointer("/metadata/name") {
        o["metadata"]["name"] = json!(format!(
            "{}.{}",
            part("/spec/names/plural"),
            part("/spec/group")
        ));
    }
    o
}

fn established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}
