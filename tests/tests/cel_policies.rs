//! Issue 13, CEL: ValidatingAdmissionPolicies and CRD `x-kubernetes-validations` rules,
//! through the real kubectl against one `k1s server`: denials and warnings with
//! upstream's texts, invalid expressions refused when written, transition rules and
//! ratcheting.

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};

const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: demo-policy.example.com
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments", "deployments/scale"]
  validations:
  - expression: "object.spec.replicas <= 5"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: demo-binding-test.example.com
spec:
  policyName: demo-policy.example.com
  validationActions: [Deny]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: configmap-keys
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  variables:
  - name: keys
    expression: "has(object.data) ? object.data.size() : 0"
  validations:
  - expression: "variables.keys <= 1"
    messageExpression: "'a configmap should have at most one key, this one has ' + string(variables.keys)"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: configmap-keys-warn
spec:
  policyName: configmap-keys
  validationActions: [Warn]
"#;

const BAD_POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: bad
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  validations:
  - expression: "object.data.size() <"
"#;

/// The CRD, with `max_rule` on `spec.maxReplicas` when given.
fn crd(max_rule: Option<&str>) -> String {
    let max = match max_rule {
        Some(r) => format!(
            "{{type: integer, x-kubernetes-validations: [{{rule: {r:?}, message: maxReplicas must be at most 10}}]}}"
        ),
        None => "{type: integer}".to_string(),
    };
    format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {{plural: widgets, singular: widget, kind: Widget}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.minReplicas <= self.maxReplicas"
              message: minReplicas must not exceed maxReplicas
            - rule: "self.mode == oldSelf.mode"
              message: mode is immutable
            properties:
              minReplicas: {{type: integer}}
              maxReplicas: {max}
              image: {{type: string}}
              mode: {{type: string}}
"#
    )
}

const BAD_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.size >"
            properties:
              size: {type: integer}
"#;

fn widget(name: &str, min: i64, max: i64, image: &str, mode: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  minReplicas: {min}\n  maxReplicas: {max}\n  image: {image}\n  mode: {mode}\n"
    )
}

fn apply(k1s: &K1s, k: &Kubectl, yaml: &str) -> k1s_e2e::Run {
    k1s.kubectl_with(k, &["apply", "-f", "-"], Some(yaml), &[])
}

#[test]
fn cel_policies_and_crd_rules() {
    let k1s = K1s::start();
    let k = newest_kubectl();

    // ValidatingAdmissionPolicy: Deny with upstream's text, Warn as a warning.
    apply(&k1s, &k, POLICY).ok();
    let err = k1s
        .kubectl(
            &k,
            &[
                "create",
                "deployment",
                "nginx",
                "--image=nginx",
                "--replicas=7",
            ],
        )
        .fails()
        .to_string();
    assert!(
        err.contains(
            "ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5"
        ),
        "{err}"
    );
    k1s.kubectl(
        &k,
        &[
            "create",
            "deployment",
            "nginx",
            "--image=nginx",
            "--replicas=3",
        ],
    )
    .ok();
    let err = k1s
        .kubectl(&k, &["scale", "deployment", "nginx", "--replicas=9"])
        .fails()
        .to_string();
    assert!(
        err.contains("denied request: failed expression: object.spec.replicas <= 5"),
        "{err}"
    );
    let warned = k1s.kubectl(
        &k,
        &[
            "create",
            "configmap",
            "two",
            "--from-literal=a=1",
            "--from-literal=b=2",
        ],
    );
    warned.ok();
    assert!(
        warned.stderr.contains(
            "Warning: Validation failed for ValidatingAdmissionPolicy 'configmap-keys' with binding 'configmap-keys-warn': a configmap should have at most one key, this one has 2"
        ),
        "{}",
        warned.stderr
    );

    // An expression that does not compile is refused when the policy is written.
    let err = apply(&k1s, &k, BAD_POLICY).fails().to_string();
    assert!(
        err.contains(
            "spec.validations[0].expression: Invalid value: \"object.data.size() <\": compilation failed: ERROR: <input>:1:21: Syntax error:"
        ),
        "{err}"
    );

    // CRD rules: refused when they do not compile, enforced on objects.
    let err = apply(&k1s, &k, BAD_CRD).fails().to_string();
    assert!(
        err.contains(
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.size >\""
        ) && err.contains("compilation failed: ERROR: <input>:1:"),
        "{err}"
    );
    apply(&k1s, &k, &crd(None)).ok();
    k1s.kubectl(
        &k,
        &[
            "wait",
            "--for=condition=established",
            "crd/widgets.example.com",
            "--timeout=60s",
        ],
    )
    .ok();
    let created = eventually(Duration::from_secs(30), "widgets served", || {
        let run = apply(&k1s, &k, &widget("ok", 1, 3, "docker.io/old", "fast"));
        (run.code == 0).then_some(run)
    });
    assert!(
        created.stdout.contains("widget.example.com/ok created"),
        "{}",
        created.stdout
    );
    let err = apply(&k1s, &k, &widget("bad", 5, 3, "registry.local/a", "fast"))
        .fails()
        .to_string();
    assert!(
        err.contains(
            "The Widget \"bad\" is invalid: spec: Invalid value: \"object\": minReplicas must not exceed maxReplicas"
        ),
        "{err}"
    );
    // A transition rule compares with the old object.
    let err = apply(&k1s, &k, &widget("ok", 1, 3, "docker.io/old", "slow"))
        .fails()
        .to_string();
    assert!(
        err.contains("spec: Invalid value: \"object\": mode is immutable"),
        "{err}"
    );

    // Ratcheting: a rule added later (on spec.maxReplicas) does not block updates that
    // leave the bad value as it is, but a new bad value is refused.
    apply(&k1s, &k, &widget("big", 1, 20, "docker.io/old", "fast")).ok();
    apply(&k1s, &k, &crd(Some("self <= 10"))).ok();
    eventually(Duration::from_secs(30), "the new rule in force", || {
        let run = k1s.kubectl_with(
            &k,
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&widget("probe", 1, 30, "docker.io/x", "fast")),
            &[],
        );
        run.stderr
            .contains(
                "spec.maxReplicas: Invalid value: \"integer\": maxReplicas must be at most 10",
            )
            .then_some(())
    });
    let out = apply(&k1s, &k, &widget("big", 2, 20, "docker.io/new", "fast"));
    assert!(
        out.ok().contains("widget.example.com/big configured"),
        "{}",
        out.stdout
    );
    k1s.kubectl_in(&k, "default", &["label", "widget", "big", "tier=web"])
        .ok();
    let err = apply(&k1s, &k, &widget("big", 2, 30, "docker.io/new", "fast"))
        .fails()
        .to_string();
    assert!(
        err.contains(
            "spec.maxReplicas: Invalid value: \"integer\": maxReplicas must be at most 10"
        ),
        "{err}"
    );
    apply(&k1s, &k, &widget("big", 2, 8, "docker.io/new", "fast")).ok();
}
