//! sig-api-machinery: admission webhooks (upstream's webhook.go) and CRD conversion
//! webhooks (crd_conversion_webhook.go), with the suite's own webhook server
//! (`crate::webhook_server`) in place of upstream's agnhost pod: the API server reaches
//! it through a Service without selector whose Endpoints point at the suite.

use serde_json::{Value, json};

use super::apimachinery::Crd;
use super::{Test, t};
use crate::ctx::{Ctx, Fail, R, eventually};
use crate::webhook_server::WebhookServer;
use crate::{ensure, fail};

const SERVICE: &str = "e2e-test-webhook";
const SERVICE_PORT: u16 = 8443;
const VALIDATING: &str = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
const MUTATING: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
const PAUSE: &str = "registry.k8s.io/pause:3.10";

/// The message of an error answer (or the whole body when it has none).
fn msg(body: &Value) -> String {
    body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string())
}

/// One test's webhook setup, as upstream's BeforeEach: the test namespace labelled with
/// the test's unique name, a markers namespace, the webhook server and its Service.
/// What it created outside the test namespace goes when it is dropped.
struct Fixture {
    c: Ctx,
    server: WebhookServer,
    /// Upstream's `f.UniqueName` (here the test namespace's name): the label that scopes
    /// every webhook of the test.
    unique: String,
    markers: String,
    cleanup: Vec<String>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let client = self.c.client();
        let uris = std::mem::take(&mut self.cleanup);
        tokio::spawn(async move {
            for uri in uris.iter().rev() {
                let _ = k1s_e2e::request(&client, "DELETE", uri, None).await;
            }
        });
    }
}

impl Fixture {
    async fn new(c: &Ctx) -> Result<Self, Fail> {
        let unique = c.ns.clone();
        let (code, body) = c
            .raw_typed(
                "PATCH",
                &format!("/api/v1/namespaces/{}", c.ns),
                "application/strategic-merge-patch+json",
                &json!({"metadata": {"labels": {unique.clone(): "true"}}}).to_string(),
            )
            .await;
        ensure!(code == 200, "labelling namespace {}: {code} {body}", c.ns);
        let markers = format!("{}-markers", c.ns);
        let mut fixture = Fixture {
            server: WebhookServer::start(&c.client(), &c.ns, SERVICE, SERVICE_PORT).await?,
            c: c.clone(),
            unique,
            markers: markers.clone(),
            cleanup: Vec::new(),
        };
        fixture
            .namespace(
                &markers,
                json!({format!("{}-markers", fixture.unique): "true"}),
            )
            .await?;
        Ok(fixture)
    }

    /// Creates a namespace with `labels`, deleted with the fixture.
    async fn namespace(&mut self, name: &str, labels: Value) -> R {
        let (code, body) = self
            .c
            .raw(
                "POST",
                "/api/v1/namespaces",
                Some(&json!({"metadata": {"name": name, "labels": labels}})),
            )
            .await;
        ensure!(code == 201, "creating namespace {name}: {code} {body}");
        self.cleanup.push(format!("/api/v1/namespaces/{name}"));
        Ok(())
    }

    /// `{unique: "true"}`, the selector that scopes a webhook to this test.
    fn scoped(&self) -> Value {
        json!({"matchLabels": {self.unique.clone(): "true"}})
    }

    /// A webhook on `resources` of the core group v1 for `operations`, calling `path`,
    /// scoped to the test's namespace.
    fn hook(&self, name: &str, operations: &[&str], resources: &str, path: &str) -> Value {
        json!({"name": name,
            "rules": [{"operations": operations, "apiGroups": [""], "apiVersions": ["v1"],
                "resources": [resources]}],
            "clientConfig": self.server.client_config(path),
            "sideEffects": "None",
            "admissionReviewVersions": ["v1", "v1beta1"],
            "namespaceSelector": self.scoped()})
    }

    /// Upstream's `new{Validating,Mutating}IsReadyWebhookFixture`: denies configmaps
    /// labelled `{unique: true}` in the markers namespace once the configuration is live.
    fn is_ready_hook(&self, mutating: bool) -> Value {
        let name = if mutating {
            "mutating-is-webhook-configuration-ready.k8s.io"
        } else {
            "validating-is-webhook-configuration-ready.k8s.io"
        };
        let mut h = self.hook(name, &["CREATE"], "configmaps", "/always-deny");
        h["failurePolicy"] = json!("Ignore");
        h["namespaceSelector"] =
            json!({"matchLabels": {format!("{}-markers", self.unique): "true"}});
        h["objectSelector"] = self.scoped();
        h
    }

    /// Upstream's `newDenyConfigMapWebhookFixture`.
    fn deny_configmap_hook(&self) -> Value {
        let mut h = self.hook(
            "deny-unwanted-configmap-data.k8s.io",
            &["CREATE", "UPDATE", "DELETE"],
            "configmaps",
            "/configmaps",
        );
        h["namespaceSelector"] = json!({"matchLabels": {self.unique.clone(): "true"},
            "matchExpressions": [{"key": "skip-webhook-admission", "operator": "NotIn", "values": ["yes"]}]});
        h
    }

    /// Upstream's `newMutateConfigMapWebhookFixture`.
    fn mutate_configmap_hook(&self, stage: u32) -> Value {
        self.hook(
            &format!("adding-configmap-data-stage-{stage}.k8s.io"),
            &["CREATE"],
            "configmaps",
            "/mutating-configmaps",
        )
    }

    /// Creates a webhook configuration (`collection` is VALIDATING or MUTATING), deleted
    /// with the fixture; the stored object, or the error answer.
    async fn create_config(
        &mut self,
        collection: &str,
        name: &str,
        labels: Value,
        hooks: Vec<Value>,
    ) -> Result<Value, (u16, Value)> {
        let kind = if collection == VALIDATING {
            "ValidatingWebhookConfiguration"
        } else {
            "MutatingWebhookConfiguration"
        };
        let config = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": name, "labels": labels}, "webhooks": hooks});
        let (code, body) = self.c.raw("POST", collection, Some(&config)).await;
        if code != 201 {
            return Err((code, body));
        }
        self.cleanup.push(format!("{collection}/{name}"));
        Ok(body)
    }

    /// Like [`Self::create_config`], failing the test on an error.
    async fn register(&mut self, collection: &str, name: &str, hooks: Vec<Value>) -> R {
        self.create_config(collection, name, json!({}), hooks)
            .await
            .map_err(|(code, body)| Fail(format!("registering {name}: {code} {body}")))?;
        self.wait_ready().await
    }

    /// Upstream's `waitWebhookConfigurationReady`: marker configmaps until one is denied.
    async fn wait_ready(&self) -> R {
        let c = &self.c;
        let uri = format!("/api/v1/namespaces/{}/configmaps", self.markers);
        let mut n = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            n += 1;
            let name = format!("marker-{n}");
            let marker =
                json!({"metadata": {"name": name, "labels": {self.unique.clone(): "true"}}});
            let (code, body) = c.raw("POST", &uri, Some(&marker)).await;
            if code == 201 {
                let _ = c.raw("DELETE", &format!("{uri}/{name}"), None).await;
            } else if msg(&body).contains("denied") {
                return Ok(());
            } else {
                fail!("waiting for the webhook configuration to be ready: {code} {body}");
            }
            let last = format!("{code} {}", msg(&body));
            if std::time::Instant::now() > deadline {
                fail!("webhook configuration not ready after 30 s (last marker: {last})");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    fn cms(&self, ns: &str) -> String {
        format!("/api/v1/namespaces/{ns}/configmaps")
    }

    /// Creates a configmap in the test namespace: the stored object or the error answer.
    async fn create_cm(&self, name: &str, data: Value) -> Result<Value, (u16, Value)> {
        let uri = self.cms(&self.c.ns);
        let (code, body) = self
            .c
            .raw(
                "POST",
                &uri,
                Some(&json!({"metadata": {"name": name}, "data": data})),
            )
            .await;
        if code == 201 {
            Ok(body)
        } else {
            Err((code, body))
        }
    }

    async fn delete_cm(&self, name: &str) -> R {
        let (code, body) = self
            .c
            .raw("DELETE", &format!("{}/{name}", self.cms(&self.c.ns)), None)
            .await;
        ensure!(code == 200, "deleting configmap {name}: {code} {body}");
        Ok(())
    }

    /// Upstream's poll: non-compliant configmaps until one is denied (`want_denied`) or
    /// allowed; each allowed one is deleted.
    async fn poll_noncompliant(&self, want_denied: bool) -> R {
        self.poll_cms(
            json!({"webhook-e2e-test": "webhook-disallow"}),
            |outcome| match outcome {
                Ok(_) => Ok(!want_denied),
                Err(m) if m.contains("denied") => Ok(want_denied),
                Err(m) => Err(m),
            },
        )
        .await
    }

    /// Upstream's poll: to-be-mutated configmaps until one is (`want`) or is not mutated.
    async fn poll_mutated(&self, want: bool) -> R {
        self.poll_cms(json!({"mutation-start": "yes"}), |outcome| match outcome {
            Ok(cm) => Ok(cm["data"].get("mutation-stage-1").is_some() == want),
            Err(m) => Err(m),
        })
        .await
    }

    async fn poll_cms(
        &self,
        data: Value,
        done: impl Fn(Result<&Value, String>) -> Result<bool, String>,
    ) -> R {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut n = 0;
        loop {
            n += 1;
            let name = format!("cm-{}-{n}", self.c.tag);
            let created = self.create_cm(&name, data.clone()).await;
            if created.is_ok() {
                self.delete_cm(&name).await?;
            }
            let outcome = match &created {
                Ok(v) => Ok(v),
                Err((code, body)) => Err(format!("{code} {}", msg(body))),
            };
            match done(outcome) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => fail!("creating configmap {name}: {e}"),
            }
            if std::time::Instant::now() > deadline {
                fail!("configmap creation did not change as expected in 30 s: {created:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

// ---- the tests

fn pod(name: &str, labels: Value, container: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": container, "image": PAUSE}]}})
}

async fn deny_pod_and_configmap(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let deny_pod = f.hook(
        "deny-unwanted-pod-container-name-and-label.k8s.io",
        &["CREATE"],
        "pods",
        "/pods",
    );
    let mut fail_open = f.hook("fail-open.k8s.io", &["CREATE"], "configmaps", "/configmaps");
    fail_open["clientConfig"] = f.server.client_config_without_ca("/configmaps");
    fail_open["failurePolicy"] = json!("Ignore");
    let hooks = vec![
        deny_pod,
        f.deny_configmap_hook(),
        fail_open,
        f.is_ready_hook(false),
    ];
    f.register(VALIDATING, &c.ns, hooks).await?;

    let pods = format!("/api/v1/namespaces/{}/pods", c.ns);
    let bad = pod(
        "disallowed-pod",
        json!({"webhook-e2e-test": "webhook-disallow"}),
        "webhook-disallow",
    );
    let (code, body) = c.raw("POST", &pods, Some(&bad)).await;
    ensure!(code != 201, "disallowed-pod was created");
    for want in [
        "the pod contains unwanted container name",
        "the pod contains unwanted label",
    ] {
        ensure!(
            msg(&body).contains(want),
            "expect error contains {want:?}, got {body}"
        );
    }

    let hanging = pod(
        "hanging-pod",
        json!({"webhook-e2e-test": "wait-forever"}),
        "wait-forever",
    );
    let (code, body) = c.raw("POST", &pods, Some(&hanging)).await;
    ensure!(code != 201, "hanging-pod was created");
    let m = msg(&body);
    ensure!(m.contains("webhook"), "expect error \"webhook\", got {m:?}");
    ensure!(
        m.contains("deadline"),
        "expect error \"deadline\", got {m:?}"
    );
    let (code, _) = c.raw("GET", &format!("{pods}/hanging-pod"), None).await;
    ensure!(
        code == 404,
        "expect notfound looking for rejected pod, got {code}"
    );

    let unwanted = "the configmap contains unwanted key and value";
    let denied = f
        .create_cm(
            "disallowed-configmap",
            json!({"webhook-e2e-test": "webhook-disallow"}),
        )
        .await;
    match denied {
        Ok(_) => fail!("disallowed-configmap was created"),
        Err((_, body)) => ensure!(
            msg(&body).contains(unwanted),
            "expect error contains {unwanted:?}, got {body}"
        ),
    }
    f.create_cm("allowed-configmap", json!({"admit": "this"}))
        .await
        .map_err(|(code, body)| Fail(format!("creating allowed-configmap: {code} {body}")))?;

    let uri = format!("{}/allowed-configmap", f.cms(&c.ns));
    let (_, mut cm) = c.raw("GET", &uri, None).await;
    cm["data"]["webhook-e2e-test"] = json!("webhook-disallow");
    let (code, body) = c.raw("PUT", &uri, Some(&cm)).await;
    ensure!(
        code != 200,
        "update (PUT) to a non-compliant configmap was allowed"
    );
    ensure!(
        msg(&body).contains(unwanted),
        "expect error contains {unwanted:?}, got {body}"
    );
    let (code, body) = c
        .raw_typed(
            "PATCH",
            &uri,
            "application/strategic-merge-patch+json",
            r#"{"data":{"webhook-e2e-test":"webhook-disallow"}}"#,
        )
        .await;
    ensure!(
        code != 200,
        "update (PATCH) to a non-compliant configmap was allowed"
    );
    ensure!(
        msg(&body).contains(unwanted),
        "expect error contains {unwanted:?}, got {body}"
    );

    let skip = format!("exempted-namespace-{}", c.tag);
    f.namespace(
        &skip,
        json!({"skip-webhook-admission": "yes", f.unique.clone(): "true"}),
    )
    .await?;
    let (code, body) = c
        .raw(
            "POST",
            &f.cms(&skip),
            Some(&json!({"metadata": {"name": "disallowed-configmap"},
                "data": {"webhook-e2e-test": "webhook-disallow"}})),
        )
        .await;
    ensure!(
        code == 201,
        "a non-compliant configmap in a whitelisted namespace: {code} {body}"
    );
    Ok(())
}

/// A test CRD (upstream's `crd.CreateTestCRD`): versions as given, all keeping unknown
/// fields unless `schema` says otherwise.
fn test_crd(c: &Ctx, base: &str, versions: &[&str], schema: Option<Value>) -> Crd {
    let mut crd = Crd::simple(c, base);
    let schema = schema
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    crd.versions = json!(
        versions
            .iter()
            .enumerate()
            .map(
                |(i, v)| json!({"name": v, "served": true, "storage": i == 0,
                "schema": {"openAPIV3Schema": schema}})
            )
            .collect::<Vec<_>>()
    );
    crd
}

/// A webhook on the custom resources of `crd` (all its served versions).
fn cr_hook(f: &Fixture, crd: &Crd, name: &str, operations: &[&str], path: &str) -> Value {
    let versions: Vec<Value> = crd
        .versions
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["name"].clone())
        .collect();
    let mut h = f.hook(name, operations, &crd.plural, path);
    h["rules"][0]["apiGroups"] = json!([crd.group]);
    h["rules"][0]["apiVersions"] = json!(versions);
    h
}

fn cr(crd: &Crd, c: &Ctx, version: &str, name: &str, data: Value) -> Value {
    json!({"apiVersion": format!("{}/{version}", crd.group), "kind": crd.kind,
        "metadata": {"name": name, "namespace": c.ns}, "data": data})
}

async fn deny_custom_resource(c: Ctx) -> R {
    let crd = test_crd(&c, "webhookdeny", &["v1"], None);
    crd.create(&c).await?;
    let r = deny_custom_resource_with(&c, &crd).await;
    r.and(crd.delete(&c).await)
}

async fn deny_custom_resource_with(c: &Ctx, crd: &Crd) -> R {
    let mut f = Fixture::new(c).await?;
    let hook = cr_hook(
        &f,
        crd,
        "deny-unwanted-custom-resource-data.k8s.io",
        &["CREATE", "UPDATE", "DELETE"],
        "/custom-resource",
    );
    let ready = f.is_ready_hook(false);
    f.register(VALIDATING, &c.ns, vec![hook, ready]).await?;
    let list = crd.path(c, "v1", None);
    let unwanted = "the custom resource contains unwanted data";
    let bad = cr(
        crd,
        c,
        "v1",
        "cr-instance-1",
        json!({"webhook-e2e-test": "webhook-disallow"}),
    );
    let (code, body) = c.raw("POST", &list, Some(&bad)).await;
    ensure!(code != 201, "cr-instance-1 was created");
    ensure!(
        msg(&body).contains(unwanted),
        "expect error contains {unwanted:?}, got {body}"
    );

    let keep = cr(
        crd,
        c,
        "v1",
        "cr-instance-2",
        json!({"webhook-e2e-test": "webhook-nondeletable"}),
    );
    let (code, body) = c.raw("POST", &list, Some(&keep)).await;
    ensure!(code == 201, "creating cr-instance-2: {code} {body}");
    let uri = crd.path(c, "v1", Some("cr-instance-2"));
    let update = |value: &'static str| {
        let uri = uri.clone();
        async move {
            let (_, mut obj) = c.raw("GET", &uri, None).await;
            obj["data"]["webhook-e2e-test"] = json!(value);
            c.raw("PUT", &uri, Some(&obj)).await
        }
    };
    let (code, body) = update("webhook-disallow").await;
    ensure!(
        code != 200,
        "updating cr-instance-2 with disallowed data was allowed"
    );
    ensure!(
        msg(&body).contains(unwanted),
        "expect error contains {unwanted:?}, got {body}"
    );
    let (code, body) = c.raw("DELETE", &uri, None).await;
    ensure!(code != 200, "deleting cr-instance-2 was allowed");
    let nondeletable =
        "the custom resource cannot be deleted because it contains unwanted key and value";
    ensure!(
        msg(&body).contains(nondeletable),
        "expect error contains {nondeletable:?}, got {body}"
    );
    let (code, body) = update("webhook-allow").await;
    ensure!(
        code == 200,
        "updating cr-instance-2 to compliant data: {code} {body}"
    );
    let (code, body) = c.raw("DELETE", &uri, None).await;
    ensure!(
        code == 200,
        "deleting the updated cr-instance-2: {code} {body}"
    );
    Ok(())
}

async fn fail_closed(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let mut hook = f.hook(
        "fail-closed.k8s.io",
        &["CREATE"],
        "configmaps",
        "/configmaps",
    );
    hook["clientConfig"] = f.server.client_config_without_ca("/configmaps");
    hook["failurePolicy"] = json!("Fail");
    hook["namespaceSelector"] = json!({"matchLabels": {f.unique.clone(): "true"},
        "matchExpressions": [{"key": "fail-closed-webhook", "operator": "In", "values": ["yes"]}]});
    let ready = f.is_ready_hook(false);
    f.register(VALIDATING, &c.ns, vec![hook, ready]).await?;
    let ns = format!("fail-closed-namespace-{}", c.tag);
    f.namespace(
        &ns,
        json!({"fail-closed-webhook": "yes", f.unique.clone(): "true"}),
    )
    .await?;
    let (code, body) = c
        .raw(
            "POST",
            &f.cms(&ns),
            Some(&json!({"metadata": {"name": "foo"}})),
        )
        .await;
    ensure!(
        code == 500 && body["reason"] == "InternalError",
        "expect an internal error, got {code} {body}"
    );
    Ok(())
}

async fn mutate_configmap(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let hooks = vec![
        f.mutate_configmap_hook(1),
        f.mutate_configmap_hook(2),
        f.is_ready_hook(true),
    ];
    f.register(MUTATING, &c.ns, hooks).await?;
    let cm = f
        .create_cm("to-be-mutated", json!({"mutation-start": "yes"}))
        .await
        .map_err(|(code, body)| Fail(format!("creating to-be-mutated: {code} {body}")))?;
    let want =
        json!({"mutation-start": "yes", "mutation-stage-1": "yes", "mutation-stage-2": "yes"});
    ensure!(cm["data"] == want, "expected {want}, got {}", cm["data"]);
    Ok(())
}

async fn mutate_pod(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let hooks = vec![
        f.hook(
            "adding-init-container.k8s.io",
            &["CREATE"],
            "pods",
            "/mutating-pods",
        ),
        f.is_ready_hook(true),
    ];
    f.register(MUTATING, &c.ns, hooks).await?;
    let (code, pod) = c
        .raw(
            "POST",
            &format!("/api/v1/namespaces/{}/pods", c.ns),
            Some(&pod("webhook-to-be-mutated", json!({}), "example")),
        )
        .await;
    ensure!(code == 201, "creating webhook-to-be-mutated: {code} {pod}");
    let init = pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        init.len() == 1,
        "expect pod to have 1 init container, got {init:?}"
    );
    ensure!(
        init[0]["name"] == "webhook-added-init-container",
        "expect the init container name to be \"webhook-added-init-container\", got {}",
        init[0]["name"]
    );
    ensure!(
        init[0]["terminationMessagePolicy"] == "File",
        "expect the init terminationMessagePolicy to be default to \"File\", got {}",
        init[0]["terminationMessagePolicy"]
    );
    Ok(())
}

async fn webhook_configurations_exempt(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let blocking = format!("{}blocking", c.ns);
    let configs = |ops: &[&str], name: &str, path: &str| {
        let mut h = f.hook(name, ops, "validatingwebhookconfigurations", path);
        h["rules"][0]["apiGroups"] = json!(["admissionregistration.k8s.io"]);
        h["rules"][0]["apiVersions"] = json!(["*"]);
        h["rules"][0]["resources"] = json!([
            "validatingwebhookconfigurations",
            "mutatingwebhookconfigurations"
        ]);
        h["failurePolicy"] = json!("Fail");
        h
    };
    let deny = configs(
        &["DELETE"],
        "deny-webhook-configuration-deletions.k8s.io",
        "/always-deny",
    );
    let label = configs(
        &["CREATE"],
        "add-label-to-webhook-configurations.k8s.io",
        "/add-label",
    );
    let ready_v = f.is_ready_hook(false);
    let ready_m = f.is_ready_hook(true);
    f.register(VALIDATING, &blocking, vec![deny, ready_v])
        .await?;
    f.register(MUTATING, &blocking, vec![label, ready_m])
        .await?;

    for (collection, mutating, dummy) in [
        (VALIDATING, false, "dummy-validating-webhook.k8s.io"),
        (MUTATING, true, "dummy-mutating-webhook.k8s.io"),
    ] {
        let mut hook = f.hook(dummy, &["CREATE"], "invalid", "");
        hook["clientConfig"] = f.server.client_config_without_ca("");
        hook["failurePolicy"] = json!("Ignore");
        let hooks = vec![hook, f.is_ready_hook(mutating)];
        let created = f
            .create_config(collection, &c.ns, json!({}), hooks)
            .await
            .map_err(|(code, body)| Fail(format!("registering {}: {code} {body}", c.ns)))?;
        ensure!(
            created["metadata"]["labels"]["added-label"] != "yes",
            "expected {} not to be mutated by mutating webhooks but it was",
            c.ns
        );
        f.wait_ready().await?;
        let (code, body) = c
            .raw("DELETE", &format!("{collection}/{}", c.ns), None)
            .await;
        ensure!(
            code == 200,
            "deleting webhook config {}: {code} {body}",
            c.ns
        );
    }
    Ok(())
}

async fn mutate_custom_resource(c: Ctx) -> R {
    let crd = test_crd(&c, "webhookmutate", &["v1"], None);
    crd.create(&c).await?;
    let r = mutate_custom_resource_with(&c, &crd, false).await;
    r.and(crd.delete(&c).await)
}

async fn register_cr_mutation(f: &mut Fixture, crd: &Crd) -> R {
    let stage1 = cr_hook(
        f,
        crd,
        "mutate-custom-resource-data-stage-1.k8s.io",
        &["CREATE", "UPDATE"],
        "/mutating-custom-resource",
    );
    let stage2 = cr_hook(
        f,
        crd,
        "mutate-custom-resource-data-stage-2.k8s.io",
        &["CREATE"],
        "/mutating-custom-resource",
    );
    let ready = f.is_ready_hook(true);
    let name = f.c.ns.clone();
    f.register(MUTATING, &name, vec![stage1, stage2, ready])
        .await
}

async fn mutate_custom_resource_with(c: &Ctx, crd: &Crd, prune: bool) -> R {
    let mut f = Fixture::new(c).await?;
    register_cr_mutation(&mut f, crd).await?;
    let (code, body) = c
        .raw(
            "POST",
            &crd.path(c, "v1", None),
            Some(&cr(
                crd,
                c,
                "v1",
                "cr-instance-1",
                json!({"mutation-start": "yes"}),
            )),
        )
        .await;
    ensure!(code == 201, "creating cr-instance-1: {code} {body}");
    let mut want = json!({"mutation-start": "yes", "mutation-stage-1": "yes"});
    if !prune {
        want["mutation-stage-2"] = json!("yes");
    }
    ensure!(
        body["data"] == want,
        "expected {want}, got {}",
        body["data"]
    );
    Ok(())
}

async fn mutate_custom_resource_stored_version(c: Ctx) -> R {
    let crd = test_crd(&c, "webhookmultiver", &["v1", "v2"], None);
    crd.create(&c).await?;
    let r = stored_version_with(&c, &crd).await;
    r.and(crd.delete(&c).await)
}

async fn stored_version_with(c: &Ctx, crd: &Crd) -> R {
    let mut f = Fixture::new(c).await?;
    register_cr_mutation(&mut f, crd).await?;
    let (code, body) = c
        .raw(
            "POST",
            &crd.path(c, "v1", None),
            Some(&cr(
                crd,
                c,
                "v1",
                "cr-instance-1",
                json!({"mutation-start": "yes"}),
            )),
        )
        .await;
    ensure!(code == 201, "creating cr-instance-1: {code} {body}");
    let schema = json!({"openAPIV3Schema": {"x-kubernetes-preserve-unknown-fields": true, "type": "object"}});
    let patch = json!({"spec": {"versions": [
        {"name": "v1", "storage": false, "served": true, "schema": schema},
        {"name": "v2", "storage": true, "served": true, "schema": schema}]}});
    let (code, body) = c
        .raw_typed(
            "PATCH",
            &format!(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
                crd.name()
            ),
            "application/strategic-merge-patch+json",
            &patch.to_string(),
        )
        .await;
    ensure!(code == 200, "patching the CRD to store v2: {code} {body}");
    let (code, body) = c
        .raw_typed(
            "PATCH",
            &crd.path(c, "v2", Some("cr-instance-1")),
            "application/json-patch+json",
            r#"[{ "op": "add", "path": "/dummy", "value": "test" }]"#,
        )
        .await;
    ensure!(code == 200, "patching cr-instance-1 at v2: {code} {body}");
    let want =
        json!({"mutation-start": "yes", "mutation-stage-1": "yes", "mutation-stage-2": "yes"});
    ensure!(
        body["data"] == want,
        "expected {want}, got {}",
        body["data"]
    );
    ensure!(
        body["dummy"] == "test",
        "expected dummy \"test\", got {}",
        body["dummy"]
    );
    Ok(())
}

async fn mutate_custom_resource_pruning(c: Ctx) -> R {
    let schema = json!({"type": "object", "properties": {"data": {"type": "object",
        "properties": {"mutation-start": {"type": "string"}, "mutation-stage-1": {"type": "string"}}}}});
    let crd = test_crd(&c, "webhookprune", &["v1", "v2"], Some(schema));
    crd.create(&c).await?;
    let r = mutate_custom_resource_with(&c, &crd, true).await;
    r.and(crd.delete(&c).await)
}

async fn deny_crd(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let mut hook = f.hook(
        "deny-crd-with-unwanted-label.k8s.io",
        &["CREATE"],
        "customresourcedefinitions",
        "/crd",
    );
    hook["rules"][0]["apiGroups"] = json!(["apiextensions.k8s.io"]);
    hook["rules"][0]["apiVersions"] = json!(["*"]);
    hook.as_object_mut().map(|h| h.remove("namespaceSelector"));
    hook["objectSelector"] = f.scoped();
    let ready = f.is_ready_hook(false);
    f.register(VALIDATING, &c.ns, vec![hook, ready]).await?;
    let mut crd = Crd::simple(&c, "webhookdenycrd").manifest();
    crd["metadata"]["labels"] =
        json!({f.unique.clone(): "true", "webhook-e2e-test": "webhook-disallow"});
    let (code, body) = c
        .raw(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            Some(&crd),
        )
        .await;
    if code == 201 {
        let _ = c
            .raw(
                "DELETE",
                &format!(
                    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
                    crd["metadata"]["name"].as_str().unwrap_or_default()
                ),
                None,
            )
            .await;
        fail!("the CRD was created");
    }
    let want = "the crd contains unwanted label";
    ensure!(
        msg(&body).contains(want),
        "expect error contains {want:?}, got {body}"
    );
    Ok(())
}

async fn honor_timeout(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let name = "e2e-test-slow-webhook-configmap";
    for (policy, timeout) in [
        ("Fail", Some(1)),
        ("Ignore", Some(1)),
        ("Fail", Some(10)),
        ("Fail", None),
    ] {
        let mut hook = f.hook(
            "allow-configmap-with-delay-webhook.k8s.io",
            &["CREATE"],
            "configmaps",
            "/always-allow-delay-5s",
        );
        hook["failurePolicy"] = json!(policy);
        if let Some(t) = timeout {
            hook["timeoutSeconds"] = json!(t);
        }
        let ready = f.is_ready_hook(false);
        f.register(VALIDATING, &c.ns, vec![hook, ready]).await?;
        let created = f.create_cm(name, json!({})).await;
        if policy == "Fail" && timeout == Some(1) {
            let Err((_, body)) = created else {
                fail!("create configmap should have timed-out reaching slow webhook");
            };
            let m = msg(&body);
            let is_timeout = m.contains("context deadline exceeded") || m.contains("timeout");
            let querying = m.contains("/always-allow-delay-5s?timeout=1s");
            ensure!(
                is_timeout && querying,
                "expect an HTTP/dial timeout error querying the slow webhook, got: {m:?}"
            );
        } else {
            created.map_err(|(code, body)| {
                Fail(format!(
                    "policy {policy}, timeout {timeout:?}: creating {name}: {code} {body}"
                ))
            })?;
            f.delete_cm(name).await?;
        }
        let (code, body) = c
            .raw("DELETE", &format!("{VALIDATING}/{}", c.ns), None)
            .await;
        ensure!(code == 200, "deleting the slow webhook: {code} {body}");
        f.cleanup.pop();
    }
    Ok(())
}

async fn update_validating(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let hooks = vec![f.deny_configmap_hook(), f.is_ready_hook(false)];
    f.register(VALIDATING, &c.ns, hooks).await?;
    f.poll_noncompliant(true).await?;
    let uri = format!("{VALIDATING}/{}", c.ns);
    let (_, mut config) = c.raw("GET", &uri, None).await;
    config["webhooks"][0]["rules"][0]["operations"] = json!(["UPDATE"]);
    let (code, body) = c.raw("PUT", &uri, Some(&config)).await;
    ensure!(
        code == 200,
        "Updating validating webhook configuration: {code} {body}"
    );
    f.poll_noncompliant(false).await?;
    let (code, body) = c
        .raw_typed(
            "PATCH",
            &uri,
            "application/json-patch+json",
            r#"[{"op": "replace", "path": "/webhooks/0/rules/0/operations", "value": ["CREATE"]}]"#,
        )
        .await;
    ensure!(
        code == 200,
        "Patching validating webhook configuration: {code} {body}"
    );
    f.poll_noncompliant(true).await
}

async fn update_mutating(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let hooks = vec![f.mutate_configmap_hook(1), f.is_ready_hook(true)];
    f.register(MUTATING, &c.ns, hooks).await?;
    let uri = format!("{MUTATING}/{}", c.ns);
    let (_, mut config) = c.raw("GET", &uri, None).await;
    config["webhooks"][0]["rules"][0]["operations"] = json!(["UPDATE"]);
    let (code, body) = c.raw("PUT", &uri, Some(&config)).await;
    ensure!(
        code == 200,
        "Updating mutating webhook configuration: {code} {body}"
    );
    f.poll_mutated(false).await?;
    let (code, body) = c
        .raw_typed(
            "PATCH",
            &uri,
            "application/json-patch+json",
            r#"[{"op": "replace", "path": "/webhooks/0/rules/0/operations", "value": ["CREATE"]}]"#,
        )
        .await;
    ensure!(
        code == 200,
        "Patching mutating webhook configuration: {code} {body}"
    );
    f.poll_mutated(true).await
}

async fn list_configs(c: Ctx, collection: &str) -> R {
    let mut f = Fixture::new(&c).await?;
    let mutating = collection == MUTATING;
    let label = format!("uuid-{}", c.tag);
    for i in 0..10 {
        let first = if mutating {
            f.mutate_configmap_hook(1)
        } else {
            f.deny_configmap_hook()
        };
        let hooks = vec![first, f.is_ready_hook(mutating)];
        f.create_config(
            collection,
            &format!("{}-{i}", c.ns),
            json!({"e2e-list-test-uuid": label}),
            hooks,
        )
        .await
        .map_err(|(code, body)| Fail(format!("Creating webhook configuration: {code} {body}")))?;
    }
    let selector = format!("labelSelector=e2e-list-test-uuid%3D{label}");
    let (code, list) = c
        .raw("GET", &format!("{collection}?{selector}"), None)
        .await;
    ensure!(code == 200, "Listing webhook configurations: {code} {list}");
    let n = list["items"].as_array().map(Vec::len).unwrap_or(0);
    ensure!(n == 10, "listed {n} webhook configurations, want 10");
    f.wait_ready().await?;
    if mutating {
        f.poll_mutated(true).await?;
    } else {
        f.poll_noncompliant(true).await?;
    }
    let (code, body) = c
        .raw("DELETE", &format!("{collection}?{selector}"), None)
        .await;
    ensure!(
        code == 200,
        "Deleting collection of webhook configurations: {code} {body}"
    );
    if mutating {
        f.poll_mutated(false).await
    } else {
        f.poll_noncompliant(false).await
    }
}

async fn list_validating(c: Ctx) -> R {
    list_configs(c, VALIDATING).await
}

async fn list_mutating(c: Ctx) -> R {
    list_configs(c, MUTATING).await
}

/// Upstream's `new{Validating,Mutating}WebhookWithMatchConditions`.
fn match_conditions_hooks(f: &Fixture, mutating: bool, conditions: Value) -> Vec<Value> {
    let mut hook = if mutating {
        f.hook(
            "adding-configmap-data.k8s.io",
            &["CREATE"],
            "configmaps",
            "/mutating-configmaps",
        )
    } else {
        let mut h = f.hook(
            "validation-webhook-with-match-conditions.k8s.io",
            &["CREATE"],
            "configmaps",
            "/always-deny",
        );
        h["matchPolicy"] = json!("Equivalent");
        h["admissionReviewVersions"] = json!(["v1"]);
        h
    };
    hook["matchConditions"] = conditions;
    vec![hook, f.is_ready_hook(mutating)]
}

async fn match_conditions_create_update(c: Ctx, collection: &str) -> R {
    let mut f = Fixture::new(&c).await?;
    let mutating = collection == MUTATING;
    let initial = json!([{"name": "expression-1", "expression": "object.metadata.namespace == 'production'"}]);
    let hooks = match_conditions_hooks(&f, mutating, initial.clone());
    f.create_config(collection, &c.ns, json!({}), hooks)
        .await
        .map_err(|(code, body)| Fail(format!("creating the configuration: {code} {body}")))?;
    let uri = format!("{collection}/{}", c.ns);
    let (_, mut config) = c.raw("GET", &uri, None).await;
    ensure!(
        config["webhooks"][0]["matchConditions"] == initial,
        "verifying that match conditions are created: {}",
        config["webhooks"][0]["matchConditions"]
    );
    let updated = json!([
        {"name": "expression-1", "expression": "object.metadata.namespace == 'production'"},
        {"name": "expression-2", "expression": "object.metadata.namespace == 'staging'"}]);
    config["webhooks"][0]["matchConditions"] = updated.clone();
    let (code, body) = c.raw("PUT", &uri, Some(&config)).await;
    ensure!(code == 200, "updating the configuration: {code} {body}");
    let (_, config) = c.raw("GET", &uri, None).await;
    ensure!(
        config["webhooks"][0]["matchConditions"] == updated,
        "verifying that match conditions are updated: {}",
        config["webhooks"][0]["matchConditions"]
    );
    Ok(())
}

async fn match_conditions_validating(c: Ctx) -> R {
    match_conditions_create_update(c, VALIDATING).await
}

async fn match_conditions_mutating(c: Ctx) -> R {
    match_conditions_create_update(c, MUTATING).await
}

async fn mutate_except_skip_me(c: Ctx) -> R {
    let mut f = Fixture::new(&c).await?;
    let mut hook = f.mutate_configmap_hook(1);
    hook["matchConditions"] =
        json!([{"name": "skip-me", "expression": "object.metadata.name != 'skip-me'"}]);
    let ready = f.is_ready_hook(true);
    f.register(MUTATING, &c.ns, vec![hook, ready]).await?;
    let random = format!("cm-{}", c.tag);
    let cm = f
        .create_cm(&random, json!({"mutation-start": "yes"}))
        .await
        .map_err(|(code, body)| Fail(format!("creating configMap object: {code} {body}")))?;
    let want = json!({"mutation-start": "yes", "mutation-stage-1": "yes"});
    ensure!(cm["data"] == want, "expected {want}, got {}", cm["data"]);
    let cm = f
        .create_cm("skip-me", json!({"mutation-start": "yes"}))
        .await
        .map_err(|(code, body)| Fail(format!("creating configMap object: {code} {body}")))?;
    let want = json!({"mutation-start": "yes"});
    ensure!(cm["data"] == want, "expected {want}, got {}", cm["data"]);
    Ok(())
}

// ---- CustomResourceConversionWebhook

/// The conversion test CRD: group `stable.example.com`, v1 (`hostPort`) stored, v2
/// (`host`, `port`), converted by the server's `/crdconvert`.
fn conversion_crd(c: &Ctx, server: &WebhookServer, base: &str) -> (Crd, Value) {
    let mut crd = Crd::simple(c, base);
    crd.group = "stable.example.com".into();
    crd.plural = format!("e2e-test-crd-webhook-{}-{}s", base, c.tag);
    crd.versions = versions_storing("v1");
    let mut manifest = crd.manifest();
    manifest["spec"]["preserveUnknownFields"] = json!(false);
    manifest["spec"]["conversion"] = json!({"strategy": "Webhook",
        "webhook": {"clientConfig": server.client_config("/crdconvert"),
            "conversionReviewVersions": ["v1", "v1beta1"]}});
    (crd, manifest)
}

/// Upstream's `apiVersions` (storing v1) or `alternativeAPIVersions` (storing v2).
fn versions_storing(storage: &str) -> Value {
    json!([
        {"name": "v1", "served": true, "storage": storage == "v1",
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"hostPort": {"type": "string"}}}}},
        {"name": "v2", "served": true, "storage": storage == "v2",
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"host": {"type": "string"}, "port": {"type": "string"}}}}}])
}

/// Creates the conversion CRD, runs `body`, and deletes the CRD.
async fn with_conversion_crd<F, Fut>(c: Ctx, base: &str, body: F) -> R
where
    F: FnOnce(Ctx, Crd) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    let server =
        WebhookServer::start(&c.client(), &c.ns, "e2e-test-crd-conversion-webhook", 9443).await?;
    let (crd, manifest) = conversion_crd(&c, &server, base);
    let (code, created) = c
        .raw(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            Some(&manifest),
        )
        .await;
    ensure!(
        code == 201,
        "creating the CRD {}: {code} {created}",
        crd.name()
    );
    let r = async {
        crd.wait_served(&c).await?;
        wait_conversion_ready(&c, &crd).await?;
        body(c.clone(), crd.clone()).await
    }
    .await;
    drop(server);
    r.and(crd.delete(&c).await)
}

/// Upstream's `waitWebhookConversionReady`: creates stub objects at v2 until one succeeds.
async fn wait_conversion_ready(c: &Ctx, crd: &Crd) -> R {
    let stub = json!({"apiVersion": format!("{}/v2", crd.group), "kind": crd.kind,
        "metadata": {"name": c.ns, "namespace": c.ns}});
    let list = crd.path(c, "v2", None);
    eventually(30, "conversion to succeed", || async {
        let (code, _) = c.raw("POST", &list, Some(&stub)).await;
        (code == 201).then_some(())
    })
    .await?;
    let (code, body) = c.raw("DELETE", &crd.path(c, "v2", Some(&c.ns)), None).await;
    ensure!(code == 200, "cleaning up stub object: {code} {body}");
    Ok(())
}

fn host_port_cr(crd: &Crd, c: &Ctx, name: &str) -> Value {
    json!({"apiVersion": format!("{}/v1", crd.group), "kind": crd.kind,
        "metadata": {"name": name, "namespace": c.ns}, "hostPort": "localhost:8080"})
}

fn verify_v1(crd: &Crd, obj: &Value) -> R {
    ensure!(
        obj["apiVersion"] == format!("{}/v1", crd.group),
        "apiVersion: {}",
        obj["apiVersion"]
    );
    ensure!(obj["hostPort"] == "localhost:8080", "hostPort: {obj}");
    ensure!(
        obj.get("host").is_none(),
        "Host should not have been declared."
    );
    ensure!(
        obj.get("port").is_none(),
        "Port should not have been declared."
    );
    Ok(())
}

fn verify_v2(crd: &Crd, obj: &Value) -> R {
    ensure!(
        obj["apiVersion"] == format!("{}/v2", crd.group),
        "apiVersion: {}",
        obj["apiVersion"]
    );
    ensure!(
        obj.get("hostPort").is_none(),
        "HostPort should not have been declared."
    );
    ensure!(obj["host"] == "localhost", "host: {obj}");
    ensure!(obj["port"] == "8080", "port: {obj}");
    Ok(())
}

async fn convert_v1_to_v2(c: Ctx) -> R {
    with_conversion_crd(c, "one", |c, crd| async move {
        let (code, body) = c
            .raw(
                "POST",
                &crd.path(&c, "v1", None),
                Some(&host_port_cr(&crd, &c, "cr-instance-1")),
            )
            .await;
        ensure!(code == 201, "creating cr-instance-1: {code} {body}");
        let (code, v2) = c
            .raw("GET", &crd.path(&c, "v2", Some("cr-instance-1")), None)
            .await;
        ensure!(
            code == 200,
            "Getting v2 of custom resource cr-instance-1: {code} {v2}"
        );
        verify_v2(&crd, &v2)
    })
    .await
}

async fn convert_mixed_list(c: Ctx) -> R {
    with_conversion_crd(c, "list", |c, crd| async move {
        let (code, body) = c
            .raw(
                "POST",
                &crd.path(&c, "v1", None),
                Some(&host_port_cr(&crd, &c, "cr-instance-1")),
            )
            .await;
        ensure!(code == 201, "creating cr-instance-1: {code} {body}");
        let uri = format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
            crd.name()
        );
        let (_, mut current) = c.raw("GET", &uri, None).await;
        current["spec"]["versions"] = versions_storing("v2");
        let (code, body) = c.raw("PUT", &uri, Some(&current)).await;
        ensure!(code == 200, "switching the storage version to v2: {code} {body}");
        let mut created = (0, Value::Null);
        for _ in 0..5 {
            created = c
                .raw(
                    "POST",
                    &crd.path(&c, "v1", None),
                    Some(&host_port_cr(&crd, &c, "cr-instance-2")),
                )
                .await;
            if created.0 == 201 {
                break;
            }
        }
        ensure!(created.0 == 201, "creating cr-instance-2: {created:?}");
        for (version, verify) in [("v1", verify_v1 as fn(&Crd, &Value) -> R), ("v2", verify_v2)] {
            let (code, list) = c.raw("GET", &crd.path(&c, version, None), None).await;
            ensure!(code == 200, "List CRs in {version}: {code} {list}");
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let mut names: Vec<&str> = items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str())
                .collect();
            names.sort_unstable();
            ensure!(
                names == ["cr-instance-1", "cr-instance-2"],
                "failed to find {version} objects cr-instance-1 and cr-instance-2 in the list: {names:?}"
            );
            for item in &items {
                verify(&crd, item)?;
            }
        }
        Ok(())
    })
    .await
}

pub(super) fn tests() -> Vec<Test> {
    vec![
        t!(
            "Admission webhook, deny create",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should be able to deny pod and configmap creation [Conformance]",
            deny_pod_and_configmap
        ),
        t!(
            "Admission webhook, deny custom resource create and delete",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should be able to deny custom resource creation, update and deletion [Conformance]",
            deny_custom_resource
        ),
        t!(
            "Admission webhook, fail closed",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should unconditionally reject operations on fail closed webhook [Conformance]",
            fail_closed
        ),
        t!(
            "Admission webhook, ordered mutation",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate configmap [Conformance]",
            mutate_configmap
        ),
        t!(
            "Admission webhook, mutation with defaulting",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate pod and apply defaults after mutation [Conformance]",
            mutate_pod
        ),
        t!(
            "Admission webhook, admission control not allowed on webhook configuration objects",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should not be able to mutate or prevent deletion of webhook configuration objects [Conformance]",
            webhook_configurations_exempt
        ),
        t!(
            "Admission webhook, mutate custom resource",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate custom resource [Conformance]",
            mutate_custom_resource
        ),
        t!(
            "Admission webhook, deny custom resource definition",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should deny crd creation [Conformance]",
            deny_crd
        ),
        t!(
            "Admission webhook, mutate custom resource with different stored version",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate custom resource with different stored version [Conformance]",
            mutate_custom_resource_stored_version
        ),
        t!(
            "Admission webhook, mutate custom resource with pruning",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate custom resource with pruning [Conformance]",
            mutate_custom_resource_pruning
        ),
        t!(
            "Admission webhook, honor timeout",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should honor timeout [Conformance]",
            honor_timeout
        ),
        t!(
            "Admission webhook, update validating webhook",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] patching/updating a validating webhook should work [Conformance]",
            update_validating
        ),
        t!(
            "Admission webhook, update mutating webhook",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] patching/updating a mutating webhook should work [Conformance]",
            update_mutating
        ),
        t!(
            "Admission webhook, list validating webhooks",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] listing validating webhooks should work [Conformance]",
            list_validating
        ),
        t!(
            "Admission webhook, list mutating webhooks",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] listing mutating webhooks should work [Conformance]",
            list_mutating
        ),
        t!(
            "Validating Admission webhook, create and update validating webhook configuration with matchConditions",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should be able to create and update validating webhook configurations with match conditions [Conformance]",
            match_conditions_validating
        ),
        t!(
            "Mutating Admission webhook, create and update mutating webhook configuration with matchConditions",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should be able to create and update mutating webhook configurations with match conditions [Conformance]",
            match_conditions_mutating
        ),
        t!(
            "Mutating Admission webhook, mutating webhook excluding object with specific name",
            "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate everything except 'skip-me' configmaps [Conformance]",
            mutate_except_skip_me
        ),
        t!(
            "Custom Resource Definition Conversion Webhook, conversion custom resource",
            "[sig-api-machinery] CustomResourceConversionWebhook [Privileged:ClusterAdmin] should be able to convert from CR v1 to CR v2 [Conformance]",
            convert_v1_to_v2
        ),
        t!(
            "Custom Resource Definition Conversion Webhook, convert mixed version list",
            "[sig-api-machinery] CustomResourceConversionWebhook [Privileged:ClusterAdmin] should be able to convert a non homogeneous list of CRs [Conformance]",
            convert_mixed_list
        ),
    ]
}
