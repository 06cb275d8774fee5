//! sig-api-machinery's CRD OpenAPI publishing (`kubectl explain` of custom resources and
//! their definitions in `/openapi/v2`), ValidatingAdmissionPolicy behaviour, custom
//! resource field selectors, the webhook configurations' API-only checks, and the
//! networking/storage API tests that need no node.

use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

use super::apimachinery::Crd;
use super::{Test, t};
use crate::ctx::{Ctx, Fail, R, eventually};
use crate::{ensure, fail};

// ---- shared scaffolding

/// Whether `parts` appear in `text` in this order (a regexp `(?s)A.*B.*C`).
fn in_order(text: &str, parts: &[&str]) -> bool {
    let mut rest = text;
    for p in parts {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// A CRD of the test in group `group` (a suffix of this test's tag keeps it unique),
/// with `versions` all serving `schema` (the first one stored).
fn crd_in(c: &Ctx, group: &str, kind: &str, versions: &[&str], schema: &Value) -> Crd {
    // Unique to the test like upstream's random plurals: kubectl resolves a bare plural
    // in any group, and tests running at once would otherwise share `e2e-test-foos`.
    let plural = format!("e2e-test-{}-{}s", kind.to_lowercase(), c.tag);
    let versions: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"name": v, "served": true, "storage": i == 0,
                "schema": {"openAPIV3Schema": schema}})
        })
        .collect();
    Crd {
        group: format!("{group}-{}.example.com", c.tag),
        plural,
        kind: format!("E2e-test-{kind}").replace('-', ""),
        scope: "Namespaced",
        versions: Value::Array(versions),
    }
}

/// The published definition name of a custom kind: the group reversed, version, kind.
fn definition_name(crd: &Crd, version: &str) -> String {
    let mut parts: Vec<&str> = crd.group.split('.').collect();
    parts.reverse();
    format!("{}.{version}.{}", parts.join("."), crd.kind)
}

/// Waits until `/openapi/v2` publishes (or, with `present` false, no longer publishes)
/// the definition of `crd` in `version`, with `description` at its root when given.
async fn wait_definition(
    c: &Ctx,
    crd: &Crd,
    version: &str,
    present: bool,
    description: Option<&str>,
) -> R {
    let name = definition_name(crd, version);
    let what = format!(
        "/openapi/v2 {} {name}",
        if present { "to publish" } else { "to drop" }
    );
    eventually(60, &what, || async {
        let (code, spec) = c.raw("GET", "/openapi/v2", None).await;
        if code != 200 {
            return None;
        }
        let def = spec["definitions"].get(&name);
        match (present, def) {
            (true, Some(d)) => description
                .is_none_or(|want| d["description"] == want)
                .then_some(()),
            (false, None) => Some(()),
            _ => None,
        }
    })
    .await
}

fn schema_foo() -> Value {
    json!({"description": "Foo CRD for Testing", "type": "object", "properties": {
        "spec": {"type": "object", "description": "Specification of Foo", "properties": {
            "bars": {"description": "List of Bars and their specs.", "type": "array", "items": {
                "type": "object", "required": ["name"], "properties": {
                    "name": {"description": "Name of Bar.", "type": "string"},
                    "age": {"description": "Age of Bar.", "type": "string"},
                    "feeling": {"description": "Whether Bar is feeling great.", "type": "string", "enum": ["Great", "Down"]},
                    "bazs": {"description": "List of Bazs.", "items": {"type": "string"}, "type": "array"}}}}}},
        "status": {"description": "Status of Foo", "type": "object", "properties": {
            "bars": {"description": "List of Bars and their statuses.", "type": "array", "items": {
                "type": "object", "properties": {
                    "name": {"description": "Name of Bar.", "type": "string"},
                    "available": {"description": "Whether the Bar is installed.", "type": "boolean"},
                    "quxType": {"description": "Indicates to external qux type.", "pattern": "in-tree|out-of-tree", "type": "string"}}}}}}}})
}

fn schema_waldo() -> Value {
    json!({"description": "Waldo CRD for Testing", "type": "object", "properties": {
        "spec": {"description": "Specification of Waldo", "type": "object", "properties": {
            "dummy": {"description": "Dummy property.", "type": "object"}}},
        "status": {"description": "Status of Waldo", "type": "object", "properties": {
            "bars": {"description": "List of Bars and their statuses.", "type": "array", "items": {"type": "object"}}}}}})
}

/// A custom object of `crd` (first version) named `name`, with `rest` merged in.
fn cr(crd: &Crd, name: &str, rest: Value) -> String {
    let version = crd.versions[0]["name"].as_str().unwrap_or("v1");
    let mut o = json!({"apiVersion": format!("{}/{version}", crd.group), "kind": crd.kind,
        "metadata": {"name": name}});
    if let (Some(m), Some(r)) = (o.as_object_mut(), rest.as_object()) {
        m.extend(r.clone());
    }
    o.to_string()
}

/// kubectl create, delete, apply and delete again of one custom object.
async fn create_and_apply(c: &Ctx, crd: &Crd, name: &str, body: &str) -> R {
    for verb in ["create", "apply"] {
        c.k_stdin(&[verb, "-f", "-"], Some(body)).await?;
        // Named with its group: tests running at once have CRDs of the same plural in
        // other groups, and kubectl would pick any of them for the bare plural.
        c.k(&["delete", &format!("{}.{}", crd.plural, crd.group), name])
            .await?;
    }
    Ok(())
}

/// `kubectl explain what` prints `parts` in order.
async fn explain(c: &Ctx, what: &str, parts: &[&str]) -> R {
    let mut last = String::new();
    for _ in 0..20 {
        let o = c.kubectl_with(&["explain", what], None).await;
        if o.code == 0 && in_order(&o.stdout, parts) {
            return Ok(());
        }
        last = format!("exit {}: {}{}", o.code, o.stdout, o.stderr);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    fail!("kubectl explain {what} does not show {parts:?}: {last}")
}

macro_rules! with_crds {
    ($c:expr, [$($crd:expr),+], $body:expr) => {{
        $( $crd.create(&$c).await?; )+
        let r: R = $body.await;
        let mut d: R = Ok(());
        $( d = d.and($crd.delete(&$c).await); )+
        r.and(d)
    }};
}

// ---- CRD OpenAPI publishing

async fn publish_with_schema(c: Ctx) -> R {
    let crd = crd_in(&c, "foo", "foo", &["v1"], &schema_foo());
    with_crds!(c, [crd], async {
        wait_definition(&c, &crd, "v1", true, Some("Foo CRD for Testing")).await?;
        let valid = cr(
            &crd,
            "test-foo",
            json!({"spec": {"bars": [{"name": "test-bar"}]}}),
        );
        create_and_apply(&c, &crd, "test-foo", &valid).await?;
        explain(
            &c,
            &crd.plural,
            &[
                "DESCRIPTION:",
                "Foo CRD for Testing",
                "FIELDS:",
                "apiVersion",
                "<string>",
                "APIVersion defines",
                "spec",
                "<Object>",
                "Specification of Foo",
            ],
        )
        .await?;
        explain(
            &c,
            &format!("{}.metadata", crd.plural),
            &[
                "DESCRIPTION:",
                "Standard object's metadata",
                "FIELDS:",
                "creationTimestamp",
                "<string>",
                "CreationTimestamp is a timestamp",
            ],
        )
        .await?;
        explain(
            &c,
            &format!("{}.spec", crd.plural),
            &[
                "DESCRIPTION:",
                "Specification of Foo",
                "FIELDS:",
                "bars",
                "<[]Object>",
                "List of Bars and their specs",
            ],
        )
        .await?;
        explain(
            &c,
            &format!("{}.spec.bars", crd.plural),
            &[
                "bars",
                "<[]Object>",
                "DESCRIPTION:",
                "List of Bars and their specs",
                "FIELDS:",
                "bazs",
                "<[]string>",
                "List of Bazs",
                "name",
                "<string>",
                "Name of Bar",
            ],
        )
        .await?;
        let o = c
            .kubectl_with(&["explain", &format!("{}.spec.bars2", crd.plural)], None)
            .await;
        ensure!(
            o.code != 0 && o.stderr.contains("field \"bars2\" does not exist"),
            "explaining a missing field: exit {} {}",
            o.code,
            o.stderr
        );
        Ok(())
    })
}

async fn publish_without_schema(c: Ctx) -> R {
    let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let crd = crd_in(&c, "empty", "empty", &["v1"], &schema);
    with_crds!(c, [crd], async {
        let random = cr(&crd, "test-cr", json!({"a": {"b": [{"c": "d"}]}}));
        create_and_apply(&c, &crd, "test-cr", &random).await?;
        explain(&c, &crd.plural, &["DESCRIPTION:", "<empty>"]).await
    })
}

async fn publish_preserve_root(c: Ctx) -> R {
    let schema = json!({"description": "preserve-unknown-properties at root for Testing", "type": "object",
        "x-kubernetes-preserve-unknown-fields": true, "properties": {
            "spec": {"description": "Specification of Waldo", "type": "object", "properties": {
                "dummy": {"description": "Dummy property.", "type": "object"}}}}});
    let crd = crd_in(&c, "root", "root", &["v1"], &schema);
    with_crds!(c, [crd], async {
        let random = cr(&crd, "test-cr", json!({"a": {"b": [{"c": "d"}]}}));
        create_and_apply(&c, &crd, "test-cr", &random).await?;
        explain(&c, &crd.plural, &["KIND:", &crd.kind]).await
    })
}

async fn publish_preserve_nested(c: Ctx) -> R {
    let schema = json!({"description": "preserve-unknown-properties in nested field for Testing", "type": "object",
        "properties": {"spec": {"description": "Specification of Waldo", "type": "object",
            "x-kubernetes-preserve-unknown-fields": true, "properties": {
                "dummy": {"description": "Dummy property.", "type": "object"}}}}});
    let crd = crd_in(&c, "nested", "nested", &["v1"], &schema);
    with_crds!(c, [crd], async {
        let random = cr(
            &crd,
            "test-cr",
            json!({"spec": {"a": null, "b": [{"c": "d"}]}}),
        );
        create_and_apply(&c, &crd, "test-cr", &random).await?;
        explain(
            &c,
            &crd.plural,
            &[
                "DESCRIPTION:",
                "preserve-unknown-properties in nested field for Testing",
            ],
        )
        .await
    })
}

async fn publish_groups(c: Ctx) -> R {
    let foo_crd = crd_in(&c, "foo", "foo", &["v1"], &schema_foo());
    let waldo = crd_in(&c, "waldo", "waldo", &["v1beta1"], &schema_waldo());
    ensure!(foo_crd.group != waldo.group, "the groups must differ");
    with_crds!(c, [foo_crd, waldo], async {
        wait_definition(&c, &waldo, "v1beta1", true, Some("Waldo CRD for Testing")).await?;
        wait_definition(&c, &foo_crd, "v1", true, Some("Foo CRD for Testing")).await
    })
}

async fn publish_versions(c: Ctx) -> R {
    let multi = crd_in(&c, "multi-ver", "multi", &["v2", "v3"], &schema_foo());
    with_crds!(c, [multi], async {
        wait_definition(&c, &multi, "v3", true, Some("Foo CRD for Testing")).await?;
        wait_definition(&c, &multi, "v2", true, Some("Foo CRD for Testing")).await
    })?;
    let foo_crd = crd_in(&c, "common-group", "foo", &["v4"], &schema_foo());
    let waldo = crd_in(&c, "common-group", "waldo", &["v5"], &schema_waldo());
    ensure!(foo_crd.group == waldo.group, "the groups must be one");
    with_crds!(c, [foo_crd, waldo], async {
        wait_definition(&c, &waldo, "v5", true, Some("Waldo CRD for Testing")).await?;
        wait_definition(&c, &foo_crd, "v4", true, Some("Foo CRD for Testing")).await
    })
}

async fn publish_kinds(c: Ctx) -> R {
    let foo_crd = crd_in(&c, "common-group", "foo", &["v6"], &schema_foo());
    let waldo = crd_in(&c, "common-group", "waldo", &["v6"], &schema_waldo());
    with_crds!(c, [foo_crd, waldo], async {
        wait_definition(&c, &waldo, "v6", true, Some("Waldo CRD for Testing")).await?;
        wait_definition(&c, &foo_crd, "v6", true, Some("Foo CRD for Testing")).await
    })
}

/// JSON-patches the CRD's spec.
async fn patch_crd(c: &Ctx, crd: &Crd, patch: Value) -> R {
    let path = format!(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
        crd.name()
    );
    let (code, v) = c
        .raw_typed(
            "PATCH",
            &path,
            "application/json-patch+json",
            &patch.to_string(),
        )
        .await;
    ensure!(code == 200, "patching the CRD {}: {code} {v}", crd.name());
    Ok(())
}

async fn publish_rename(c: Ctx) -> R {
    let crd = crd_in(
        &c,
        "multi-to-single-ver",
        "multi",
        &["v5", "v6alpha1"],
        &schema_foo(),
    );
    with_crds!(c, [crd], async {
        wait_definition(&c, &crd, "v6alpha1", true, None).await?;
        wait_definition(&c, &crd, "v5", true, None).await?;
        patch_crd(
            &c,
            &crd,
            json!([{"op": "replace", "path": "/spec/versions/1/name", "value": "v6"}]),
        )
        .await?;
        wait_definition(&c, &crd, "v6", true, None).await?;
        wait_definition(&c, &crd, "v6alpha1", false, None).await?;
        wait_definition(&c, &crd, "v5", true, None).await
    })
}

async fn publish_stop_serving(c: Ctx) -> R {
    let crd = crd_in(
        &c,
        "multi-to-single-ver",
        "multi",
        &["v6", "v7"],
        &schema_foo(),
    );
    with_crds!(c, [crd], async {
        wait_definition(&c, &crd, "v7", true, None).await?;
        wait_definition(&c, &crd, "v6", true, None).await?;
        patch_crd(
            &c,
            &crd,
            json!([{"op": "replace", "path": "/spec/versions/1/served", "value": false}]),
        )
        .await?;
        wait_definition(&c, &crd, "v7", false, None).await?;
        wait_definition(&c, &crd, "v6", true, None).await
    })
}

// ---- custom resource field selectors

async fn crd_field_selectors(c: Ctx) -> R {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "color": {"type": "string"}, "quantity": {"type": "integer"}}}}});
    let mut crd = crd_in(&c, "selectable", "shirt", &["v1"], &schema);
    crd.versions[0]["selectableFields"] =
        json!([{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.quantity"}]);
    with_crds!(c, [crd], async {
        let ar = ApiResource {
            group: crd.group.clone(),
            version: "v1".into(),
            api_version: format!("{}/v1", crd.group),
            kind: crd.kind.clone(),
            plural: crd.plural.clone(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(c.client(), &c.ns, &ar);
        let mut watch = api
            .watch(
                &WatchParams::default().fields("spec.color=blue").timeout(30),
                "0",
            )
            .await?
            .boxed();
        for (name, color, quantity) in [
            ("shirt1", "blue", 2),
            ("shirt2", "blue", 1),
            ("shirt3", "green", 2),
        ] {
            let body = cr(
                &crd,
                name,
                json!({"spec": {"color": color, "quantity": quantity}}),
            );
            c.k_stdin(&["create", "-f", "-"], Some(&body)).await?;
        }
        let names = |l: kube::core::ObjectList<DynamicObject>| {
            let mut n: Vec<String> = l
                .items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect();
            n.sort();
            n
        };
        let blue = names(
            api.list(&ListParams::default().fields("spec.color=blue"))
                .await?,
        );
        ensure!(
            blue == ["shirt1", "shirt2"],
            "spec.color=blue lists {blue:?}"
        );
        let both = names(
            api.list(&ListParams::default().fields("spec.color=blue,spec.quantity=2"))
                .await?,
        );
        ensure!(both == ["shirt1"], "blue with quantity 2 lists {both:?}");
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), async {
            while seen.len() < 2 {
                match watch.next().await {
                    Some(Ok(WatchEvent::Added(o))) => {
                        seen.push(o.metadata.name.unwrap_or_default())
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        })
        .await;
        seen.sort();
        ensure!(
            seen == ["shirt1", "shirt2"],
            "the field-selected watch saw {seen:?}"
        );
        let (code, v) = c
            .raw(
                "GET",
                &format!(
                    "{}?fieldSelector=spec.size%3Dsmall",
                    crd.path(&c, "v1", None)
                ),
                None,
            )
            .await;
        ensure!(
            code == 400,
            "a field selector on a field not selectable: {code} {v}"
        );
        Ok(())
    })
}

// ---- ValidatingAdmissionPolicy behaviour

/// A policy on deployments of this test's namespace with `spec` merged in, and its binding.
async fn policy_on_deployments(c: &Ctx, base: &str, spec: Value) -> Result<String, Fail> {
    let name = c.name(base);
    let mut policy_spec = json!({"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [{
        "apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
        "resources": ["deployments"]}]}});
    if let (Some(m), Some(s)) = (policy_spec.as_object_mut(), spec.as_object()) {
        m.extend(s.clone());
    }
    let policy = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name}, "spec": policy_spec});
    let binding = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name}, "spec": {"policyName": name, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": c.ns}}}}});
    c.k_stdin(&["create", "-f", "-"], Some(&policy.to_string()))
        .await?;
    c.k_stdin(&["create", "-f", "-"], Some(&binding.to_string()))
        .await?;
    Ok(name)
}

async fn drop_policy(c: &Ctx, name: &str) {
    let _ = c
        .k(&["delete", "validatingadmissionpolicybinding", name])
        .await;
    let _ = c.k(&["delete", "validatingadmissionpolicy", name]).await;
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}})
}

/// Creates deployments until the policy refuses one (it takes effect a moment after it is
/// written): the refusal's message.
async fn refused(c: &Ctx, base: &str, replicas: i64) -> Result<String, Fail> {
    let path = format!("/apis/apps/v1/namespaces/{}/deployments", c.ns);
    let mut i = 0;
    eventually(30, "the policy to refuse a deployment", || {
        i += 1;
        let name = format!("{base}-{i}");
        let path = path.clone();
        async move {
            let (code, v) = c
                .raw("POST", &path, Some(&deployment(&name, replicas)))
                .await;
            (code == 422 || code == 403)
                .then(|| v["message"].as_str().unwrap_or_default().to_string())
        }
    })
    .await
}

async fn vap_deployment(c: Ctx) -> R {
    let name = policy_on_deployments(
        &c,
        "replicalimit-policy",
        json!({"validations": [{"expression": "object.spec.replicas <= 100", "message": "replicas must be no greater than 100"}]}),
    )
    .await?;
    let r = async {
        let msg = refused(&c, "replicas-too-many", 200).await?;
        ensure!(
            msg.contains("replicas must be no greater than 100"),
            "the refusal says {msg}"
        );
        let (code, v) = c
            .raw(
                "POST",
                &format!("/apis/apps/v1/namespaces/{}/deployments", c.ns),
                Some(&deployment("replicas-ok", 2)),
            )
            .await;
        ensure!(code == 201, "a deployment the policy allows: {code} {v}");
        Ok(())
    }
    .await;
    drop_policy(&c, &name).await;
    r
}

async fn vap_variables(c: Ctx) -> R {
    let name = policy_on_deployments(
        &c,
        "variable-policy",
        json!({"variables": [
                {"name": "replicas", "expression": "object.spec.replicas"},
                {"name": "oddReplicas", "expression": "variables.replicas % 2 == 1"}],
            "validations": [
                {"expression": "variables.replicas > 1", "message": "must have more than 1 replicas"},
                {"expression": "variables.oddReplicas", "message": "must have an odd number of replicas"}]}),
    )
    .await?;
    let r = async {
        let msg = refused(&c, "even", 2).await?;
        ensure!(
            msg.contains("must have an odd number of replicas"),
            "an even deployment is refused with {msg}"
        );
        let msg = refused(&c, "single", 1).await?;
        ensure!(
            msg.contains("must have more than 1 replicas"),
            "a single-replica deployment is refused with {msg}"
        );
        let (code, v) = c
            .raw(
                "POST",
                &format!("/apis/apps/v1/namespaces/{}/deployments", c.ns),
                Some(&deployment("odd", 3)),
            )
            .await;
        ensure!(code == 201, "an odd deployment: {code} {v}");
        Ok(())
    }
    .await;
    drop_policy(&c, &name).await;
    r
}

// ---- webhook configurations (what needs no webhook server)

async fn webhook_discovery(c: Ctx) -> R {
    let (code, apis) = c.raw("GET", "/apis", None).await;
    ensure!(code == 200, "GET /apis: {code}");
    let group = apis["groups"]
        .as_array()
        .and_then(|g| {
            g.iter()
                .find(|g| g["name"] == "admissionregistration.k8s.io")
                .cloned()
        })
        .unwrap_or_default();
    ensure!(
        group["versions"].as_array().is_some_and(|v| v
            .iter()
            .any(|v| v["groupVersion"] == "admissionregistration.k8s.io/v1")),
        "/apis lists admissionregistration.k8s.io without v1: {group}"
    );
    ensure!(
        group["preferredVersion"]["groupVersion"] == "admissionregistration.k8s.io/v1",
        "admissionregistration.k8s.io prefers {}",
        group["preferredVersion"]
    );
    let (code, v1) = c
        .raw("GET", "/apis/admissionregistration.k8s.io/v1", None)
        .await;
    ensure!(
        code == 200,
        "GET /apis/admissionregistration.k8s.io/v1: {code}"
    );
    for res in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        ensure!(
            v1["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["name"] == res)),
            "admissionregistration.k8s.io/v1 does not list {res}"
        );
    }
    Ok(())
}

async fn webhook_invalid_match_conditions(c: &Ctx, kind: &str, plural: &str) -> R {
    let name = c.name("invalid-match-conditions");
    let mut hook = json!({"name": "invalid-match-conditions.k8s.io",
        "clientConfig": {"url": "https://127.0.0.1:1/always-deny"},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "sideEffects": "None", "admissionReviewVersions": ["v1", "v1beta1"],
        "matchConditions": [{"name": "invalid-expression-1", "expression": "... [] bad expression"}],
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": c.ns}}});
    if kind == "MutatingWebhookConfiguration" {
        hook["reinvocationPolicy"] = json!("Never");
    }
    let config = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name}, "webhooks": [hook]});
    let path = format!("/apis/admissionregistration.k8s.io/v1/{plural}");
    let (code, v) = c.raw("POST", &path, Some(&config)).await;
    if code == 201 {
        let _ = c.raw("DELETE", &format!("{path}/{name}"), None).await;
    }
    let msg = v["message"].as_str().unwrap_or_default();
    ensure!(
        code == 422
            && msg.contains("matchConditions[0].expression")
            && msg.contains("compilation failed"),
        "a {kind} with an invalid matchCondition: {code} {msg}"
    );
    Ok(())
}

async fn webhook_invalid_mutating(c: Ctx) -> R {
    webhook_invalid_match_conditions(
        &c,
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
    )
    .await
}

async fn webhook_invalid_validating(c: Ctx) -> R {
    webhook_invalid_match_conditions(
        &c,
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
    )
    .await
}

// ---- networking and storage API

async fn ipaddress_api(c: Ctx) -> R {
    let path = "/apis/networking.k8s.io/v1/ipaddresses";
    let sel = format!("e2e-ipaddress={}", c.tag);
    // Documentation addresses (RFC 3849), which no Service of the cluster holds.
    let ips: Vec<String> = (1..=3).map(|i| format!("2001:db8:1::{i}")).collect();
    for ip in &ips {
        let body = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
            "metadata": {"name": ip, "labels": {"e2e-ipaddress": c.tag}},
            "spec": {"parentRef": {"group": "", "resource": "services", "name": "svc", "namespace": c.ns}}});
        let (code, v) = c.raw("POST", path, Some(&body)).await;
        ensure!(code == 201, "creating IPAddress {ip}: {code} {v}");
    }
    let (code, got) = c.raw("GET", &format!("{path}/{}", ips[0]), None).await;
    ensure!(
        code == 200 && got["spec"]["parentRef"]["name"] == "svc",
        "GET IPAddress: {code} {got}"
    );
    let (code, list) = c
        .raw("GET", &format!("{path}?labelSelector={sel}"), None)
        .await;
    ensure!(
        code == 200 && list["items"].as_array().map(Vec::len) == Some(3),
        "listing the IPAddresses: {code} {list}"
    );
    let (code, v) = c
        .raw_typed(
            "PATCH",
            &format!("{path}/{}", ips[0]),
            "application/merge-patch+json",
            &json!({"metadata": {"annotations": {"patched": "true"}}}).to_string(),
        )
        .await;
    ensure!(
        code == 200 && v["metadata"]["annotations"]["patched"] == "true",
        "patching an IPAddress: {code} {v}"
    );
    let (code, v) = c
        .raw_typed(
            "PATCH",
            &format!("{path}/{}", ips[0]),
            "application/merge-patch+json",
            &json!({"spec": {"parentRef": {"name": "other"}}}).to_string(),
        )
        .await;
    ensure!(code == 422, "changing an IPAddress's parentRef: {code} {v}");
    let (code, v) = c.raw("DELETE", &format!("{path}/{}", ips[0]), None).await;
    ensure!(code == 200, "deleting an IPAddress: {code} {v}");
    let (code, v) = c
        .raw("DELETE", &format!("{path}?labelSelector={sel}"), None)
        .await;
    ensure!(code == 200, "deleting the collection: {code} {v}");
    eventually(30, "the IPAddresses to go", || async {
        let (_, l) = c
            .raw("GET", &format!("{path}?labelSelector={sel}"), None)
            .await;
        l["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    })
    .await
}

async fn servicecidr_api(c: Ctx) -> R {
    let r = super::lifecycle::Resource {
        api_version: "networking.k8s.io/v1",
        kind: "ServiceCIDR",
        plural: "servicecidrs",
        namespaced: false,
        body: json!({"spec": {"cidrs": ["fd00:e2e:1::/112"]}}),
        status_patch: Some(json!({"status": {"conditions": [{"type": "StatusUpdate",
            "status": "True", "reason": "E2E", "message": "Set from an e2e test",
            "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})),
    };
    super::lifecycle::lifecycle(&c, &r).await
}

async fn csi_inline_pod(c: Ctx) -> R {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-csi-inline-volumes"},
        "spec": {"containers": [{"name": "pod-csi-inline-volumes", "image": "registry.k8s.io/pause:3.10",
            "volumeMounts": [{"name": "vol", "mountPath": "/data"}]}],
            "volumes": [{"name": "vol", "csi": {"driver": "e2e.example.com",
                "nodePublishSecretRef": {"name": "placeholder"}, "readOnly": false, "fsType": "ext4",
                "volumeAttributes": {"foo": "bar"}}}]}});
    let path = format!("/api/v1/namespaces/{}/pods", c.ns);
    let (code, v) = c.raw("POST", &path, Some(&pod)).await;
    ensure!(
        code == 201,
        "creating a pod with an inline CSI volume: {code} {v}"
    );
    let (code, got) = c
        .raw("GET", &format!("{path}/pod-csi-inline-volumes"), None)
        .await;
    ensure!(
        code == 200
            && got["spec"]["volumes"][0]["csi"]["driver"] == "e2e.example.com"
            && got["spec"]["volumes"][0]["csi"]["volumeAttributes"]["foo"] == "bar",
        "the pod's inline CSI volume: {code} {}",
        got["spec"]["volumes"]
    );
    let (code, list) = c.raw("GET", &path, None).await;
    ensure!(
        code == 200 && list["items"].as_array().map(Vec::len) == Some(1),
        "listing the pods: {code}"
    );
    let (code, v) = c
        .raw_typed(
            "PATCH",
            &format!("{path}/pod-csi-inline-volumes"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"foo": "bar"}}}).to_string(),
        )
        .await;
    ensure!(
        code == 200 && v["metadata"]["labels"]["foo"] == "bar",
        "patching the pod: {code} {v}"
    );
    let (code, v) = c
        .raw(
            "DELETE",
            &format!("{path}/pod-csi-inline-volumes?gracePeriodSeconds=0"),
            None,
        )
        .await;
    ensure!(code == 200, "deleting the pod: {code} {v}");
    Ok(())
}

/// This module's tests.
pub fn tests() -> Vec<Test> {
    vec![
        t!(
            "Custom Resource OpenAPI Publish, with validation schema",
            "[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD with validation schema [Conformance]",
            publish_with_schema
        ),
        t!(
            "Custom Resource OpenAPI Publish, with x-kubernetes-preserve-unknown-fields in object",
            "[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD without validation schema [Conformance]",
            publish_without_schema
        ),
        t!(
            "Custom Resource OpenAPI Publish, with x-kubernetes-preserve-unknown-fields at root",
            "[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD preserving unknown fields at the schema root [Conformance]",
            publish_preserve_root
        ),
        t!(
            "Custom Resource OpenAPI Publish, with x-kubernetes-preserve-unknown-fields in embedded object",
            "[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD preserving unknown fields in an embedded object [Conformance]",
            publish_preserve_nested
        ),
        t!(
            "Custom Resource OpenAPI Publish, varying groups",
            "[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for multiple CRDs of different groups [Conformance]",
            publish_groups
        ),
        t!(
            "Custom Resource OpenAPI Publish, varying versions",
            "[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for multiple CRDs of same group but different versions [Conformance]",
            publish_versions
        ),
        t!(
            "Custom Resource OpenAPI Publish, varying kinds",
            "[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for multiple CRDs of same group and version but different kinds [Conformance]",
            publish_kinds
        ),
        t!(
            "Custom Resource OpenAPI Publish, version rename",
            "[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] updates the published spec when one version gets renamed [Conformance]",
            publish_rename
        ),
        t!(
            "Custom Resource OpenAPI Publish, stop serving version",
            "[sig-api-machinery] CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] removes definition from spec when one version gets changed to not be served [Conformance]",
            publish_stop_serving
        ),
        t!(
            "custom-resource-definition-field-selectors-list-watch-register-informers",
            "[sig-api-machinery] CustomResourceFieldSelectors [Privileged:ClusterAdmin] CustomResourceFieldSelectors MUST list and watch custom resources matching the field selector [Conformance]",
            crd_field_selectors
        ),
        t!(
            "ValidatingAdmissionPolicy",
            "[sig-api-machinery] ValidatingAdmissionPolicy [Privileged:ClusterAdmin] should validate against a Deployment [Conformance]",
            vap_deployment
        ),
        t!(
            "ValidatingAdmissionPolicy",
            "[sig-api-machinery] ValidatingAdmissionPolicy [Privileged:ClusterAdmin] should allow expressions to refer variables. [Conformance]",
            vap_variables
        ),
        t!(
            "Admission webhook, discovery document",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should include webhook resources in discovery documents [Conformance]",
            webhook_discovery
        ),
        t!(
            "Mutating Admission webhook, reject mutating webhook configurations with invalid matchConditions",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should reject mutating webhook configurations with invalid match conditions [Conformance]",
            webhook_invalid_mutating
        ),
        t!(
            "Validing Admission webhook, reject validating webhook configurations with invalid matchConditions",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should reject validating webhook configurations with invalid match conditions [Conformance]",
            webhook_invalid_validating
        ),
        t!(
            "IPAddress API",
            "[sig-network] ServiceCIDR and IPAddress API should support IPAddress API operations [Conformance]",
            ipaddress_api
        ),
        t!(
            "ServiceCIDR API",
            "[sig-network] ServiceCIDR and IPAddress API should support ServiceCIDR API operations [Conformance]",
            servicecidr_api
        ),
        t!(
            "CSIInlineVolumes should support Pods with inline volumes",
            "[sig-storage] CSIInlineVolumes should support CSIVolumeSource in Pod API [Conformance]",
            csi_inline_pod
        ),
    ]
}
