//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the configurations come from
//! the watch cache on every request, AdmissionReview v1 goes over HTTPS to a URL or a
//! Service (resolved to a ready endpoint, else its cluster IP), and the answers (patches,
//! denials, warnings) are applied with upstream's error texts.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use k1s_apimachinery::{Selector, Status};
use serde_json::{Value, json};

use super::{Attributes, Operation};
use crate::registry::generic::GenericStore;

/// Upstream's default `timeoutSeconds`.
const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
/// The most a webhook response body may be (upstream caps what it reads).
const MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

/// Which plugin a webhook belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// MutatingAdmissionWebhook.
    Mutating,
    /// ValidatingAdmissionWebhook.
    Validating,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::Mutating => "mutatingwebhookconfigurations",
            Kind::Validating => "validatingwebhookconfigurations",
        }
    }
}

/// One webhook of a configuration, as written.
#[derive(Debug, Clone)]
struct Hook {
    /// The webhook's name (`webhooks[].name`).
    name: String,
    /// The webhook itself.
    spec: Value,
}

impl Hook {
    fn str_field(&self, field: &str) -> Option<&str> {
        self.spec.get(field).and_then(Value::as_str)
    }

    fn ignores_failures(&self) -> bool {
        self.str_field("failurePolicy") == Some("Ignore")
    }

    fn reinvoked_if_needed(&self) -> bool {
        self.str_field("reinvocationPolicy") == Some("IfNeeded")
    }

    fn timeout(&self) -> Duration {
        let secs = self
            .spec
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        Duration::from_secs(secs)
    }
}

/// How calling a webhook went wrong.
enum CallError {
    /// The webhook could not be called or answered nonsense (upstream's
    /// `ErrCallingWebhook`): subject to `failurePolicy`.
    Calling(String),
    /// Refused regardless of `failurePolicy` (the webhook denied, dry run unsupported).
    Refused(Box<Status>),
}

/// The webhooks of one plugin, configurations in name order.
fn hooks(generic: &GenericStore, kind: Kind) -> Vec<Hook> {
    let snapshot = generic.registry().snapshot();
    let Some(configs) = snapshot.get("admissionregistration.k8s.io", "v1", kind.plural()) else {
        return Vec::new();
    };
    let (items, _, _) =
        generic
            .store()
            .cache()
            .list(&configs.info.collection_prefix(None), None, 0);
    let mut out = Vec::new();
    for kv in items {
        let Ok(config) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        for spec in config
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = spec
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            out.push(Hook {
                name,
                spec: spec.clone(),
            });
        }
    }
    out
}

/// Whether any configuration of the plugin exists (the registry skips the object's
/// conversions otherwise).
pub fn configured(generic: &GenericStore, kind: Kind) -> bool {
    let snapshot = generic.registry().snapshot();
    let Some(configs) = snapshot.get("admissionregistration.k8s.io", "v1", kind.plural()) else {
        return false;
    };
    let (items, _, _) =
        generic
            .store()
            .cache()
            .list(&configs.info.collection_prefix(None), None, 1);
    !items.is_empty()
}

/// Whether upstream never sends this resource to webhooks (the admission configuration
/// objects themselves, so a broken webhook cannot lock its own fix out).
fn exempt(attrs: &Attributes<'_>) -> bool {
    attrs.info.group == "admissionregistration.k8s.io"
}

fn list_has(list: Option<&Value>, want: &str) -> bool {
    list.and_then(Value::as_array).is_some_and(|l| {
        l.iter()
            .any(|v| v.as_str().is_some_and(|s| s == "*" || s == want))
    })
}

/// Whether `rule` (a RuleWithOperations) covers the request.
fn rule_matches(rule: &Value, attrs: &Attributes<'_>) -> bool {
    let info = attrs.info;
    if !list_has(rule.get("operations"), attrs.operation.as_str())
        || !list_has(rule.get("apiGroups"), &info.group)
        || !list_has(rule.get("apiVersions"), &info.version)
    {
        return false;
    }
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !info.namespaced,
        "Namespaced" => info.namespaced,
        _ => true,
    };
    if !scope_ok {
        return false;
    }
    let resources = rule.get("resources").and_then(Value::as_array);
    resources
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| {
            let (res, sub) = r.split_once('/').unwrap_or((r, ""));
            let res_ok = res == "*" || res == info.plural;
            let sub_ok = if r.contains('/') {
                sub == "*" || sub == attrs.subresource
            } else {
                attrs.subresource.is_empty()
            };
            res_ok && sub_ok
        })
}

fn selector_of(hook: &Hook, field: &str) -> Result<Selector, Status> {
    match hook.spec.get(field) {
        None | Some(Value::Null) => Ok(Selector::everything()),
        Some(s) => Selector::from_label_selector(s)
            .map_err(|e| Status::internal_error(&format!("invalid {field}: {e}"))),
    }
}

/// Whether the webhook's rules and selectors take the request (match conditions aside).
fn matches(
    generic: &GenericStore,
    hook: &Hook,
    attrs: &Attributes<'_>,
    object: Option<&Value>,
) -> Result<bool, Status> {
    let rules = hook.spec.get("rules").and_then(Value::as_array);
    if !rules
        .into_iter()
        .flatten()
        .any(|rule| rule_matches(rule, attrs))
    {
        return Ok(false);
    }
    // namespaceSelector: the namespace's labels; a Namespace is matched by its own; other
    // cluster-scoped objects are not subject to it.
    let ns_selector = selector_of(hook, "namespaceSelector")?;
    let ns_labels = if attrs.info.group.is_empty() && attrs.info.plural == "namespaces" {
        object.or(attrs.old_object).cloned()
    } else if attrs.info.namespaced {
        match generic
            .store()
            .cache()
            .get(&format!("/registry/namespaces/{}", attrs.namespace))
        {
            Some(kv) => serde_json::from_slice::<Value>(&kv.value).ok(),
            None => {
                return Err(Status::not_found(
                    &k1s_apimachinery::GroupResource::new("", "namespaces"),
                    attrs.namespace,
                ));
            }
        }
    } else {
        None
    };
    if let Some(ns) = ns_labels
        && !ns_selector.matches_object(&ns)
    {
        return Ok(false);
    }
    // objectSelector: the new or the old object matching is enough.
    let obj_selector = selector_of(hook, "objectSelector")?;
    let object_ok = [object, attrs.old_object]
        .into_iter()
        .flatten()
        .any(|o| obj_selector.matches_object(o))
        || object.is_none() && attrs.old_object.is_none();
    Ok(object_ok)
}

/// Evaluates a webhook's `matchConditions` (CEL, with upstream's `object`, `oldObject`,
/// `request` and `authorizer` variables). Any condition that is false skips the webhook;
/// otherwise conditions that fail to evaluate take `failurePolicy`: a 403 under `Fail`
/// (upstream's `admission.NewForbidden` with the errors), the webhook skipped under
/// `Ignore`.
fn match_conditions(
    generic: &GenericStore,
    hook: &Hook,
    attrs: &Attributes<'_>,
    request: &Value,
) -> Result<bool, Status> {
    let Some(conditions) = hook
        .spec
        .get("matchConditions")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        return Ok(true);
    };
    let authorizer = generic.admission().cel_authorizer(
        attrs.user,
        Some(k1s_cel::AuthzQuery {
            group: attrs.info.group.clone(),
            resource: attrs.info.plural.clone(),
            subresource: attrs.subresource.to_string(),
            namespace: attrs.namespace.to_string(),
            name: attrs.name.to_string(),
            ..Default::default()
        }),
    );
    let outcome =
        k1s_cel::with_deep_stack(|| evaluate_conditions(conditions, request, &authorizer));
    let errors = match outcome {
        Some(MatchOutcome::Matches) => return Ok(true),
        Some(MatchOutcome::Excluded) => return Ok(false),
        Some(MatchOutcome::Errors(e)) => e,
        None => vec!["matchConditions could not be evaluated".to_string()],
    };
    if hook.ignores_failures() {
        tracing::warn!(webhook = %hook.name, errors = ?errors, "failed evaluating match conditions, skipping the webhook");
        return Ok(false);
    }
    // Upstream's aggregate error: one message alone, several in brackets.
    let why = if errors.len() == 1 {
        errors.join("")
    } else {
        format!("[{}]", errors.join(", "))
    };
    Err(Status::forbidden(
        &attrs.info.group_resource(),
        attrs.name,
        &why,
    ))
}

/// What a webhook's match conditions decided.
#[derive(Debug, PartialEq)]
enum MatchOutcome {
    /// Every condition is true.
    Matches,
    /// A condition is false (whatever errors the others had).
    Excluded,
    /// No condition is false, some failed to evaluate.
    Errors(Vec<String>),
}

/// Evaluates conditions against an AdmissionReview request (run on a deep stack).
fn evaluate_conditions(
    conditions: &[Value],
    request: &Value,
    authorizer: &k1s_cel::Value,
) -> MatchOutcome {
    let object = k1s_cel::from_json(request.get("object").unwrap_or(&Value::Null));
    let old_object = k1s_cel::from_json(request.get("oldObject").unwrap_or(&Value::Null));
    // `request` is the AdmissionRequest without the objects, which have variables of
    // their own.
    let mut bare = request.clone();
    if let Some(m) = bare.as_object_mut() {
        m.remove("object");
        m.remove("oldObject");
    }
    let request = k1s_cel::from_json(&bare);
    let vars: [(&str, &k1s_cel::Value); 4] = [
        ("object", &object),
        ("oldObject", &old_object),
        ("request", &request),
        ("authorizer", authorizer),
    ];
    let mut errors = Vec::new();
    for c in conditions {
        let source = c
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        let result = match k1s_cel::compile(source) {
            Err(e) => Err(format!("compilation error: {e}")),
            Ok(p) => match p.eval(&vars, k1s_cel::PER_CALL_LIMIT) {
                Ok((k1s_cel::Value::Bool(b), _)) => Ok(b),
                Ok(_) => Err(format!(
                    "expression '{source}' resulted in error: expected a bool"
                )),
                Err(e) => Err(format!("expression '{source}' resulted in error: {e}")),
            },
        };
        match result {
            Ok(true) => {}
            Ok(false) => return MatchOutcome::Excluded,
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        MatchOutcome::Matches
    } else {
        MatchOutcome::Errors(errors)
    }
}

/// The AdmissionReview request for a webhook call.
fn review_request(
    attrs: &Attributes<'_>,
    uid: &str,
    object: Option<&Value>,
    delete_options: Option<&Value>,
) -> Value {
    let info = attrs.info;
    let kind = json!({"group": info.group, "version": info.version, "kind": info.kind});
    let resource = json!({"group": info.group, "version": info.version, "resource": info.plural});
    let user = attrs.user;
    let mut user_info = json!({"username": user.name});
    if !user.uid.is_empty() {
        user_info["uid"] = json!(user.uid);
    }
    if !user.groups.is_empty() {
        user_info["groups"] = json!(user.groups);
    }
    if !user.extra.is_empty() {
        user_info["extra"] = json!(user.extra);
    }
    let mut req = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": attrs.name,
        "operation": attrs.operation.as_str(),
        "userInfo": user_info,
        "object": object.cloned().unwrap_or(Value::Null),
        "oldObject": attrs.old_object.cloned().unwrap_or(Value::Null),
        "dryRun": attrs.dry_run,
    });
    if !attrs.subresource.is_empty() {
        req["subResource"] = json!(attrs.subresource);
        req["requestSubResource"] = json!(attrs.subresource);
    }
    if !attrs.namespace.is_empty() {
        req["namespace"] = json!(attrs.namespace);
    }
    let mut options = match attrs.operation {
        Operation::Create => json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
        Operation::Update => json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}),
        Operation::Delete => {
            let mut o = delete_options.cloned().unwrap_or_else(|| json!({}));
            o["kind"] = json!("DeleteOptions");
            o["apiVersion"] = json!("meta.k8s.io/v1");
            o
        }
    };
    if attrs.operation != Operation::Delete && !attrs.field_manager.is_empty() {
        options["fieldManager"] = json!(attrs.field_manager);
    }
    if attrs.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    req["options"] = options;
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}

/// What a webhook answered, checked as upstream's `VerifyAdmissionResponse` does.
struct Answer {
    allowed: bool,
    result: Option<Value>,
    patch: Option<Vec<u8>>,
    warnings: Vec<String>,
    /// `response.auditAnnotations`, recorded as `<webhook name>/<key>`.
    audit_annotations: Vec<(String, String)>,
}

fn verify_response(uid: &str, kind: Kind, review: &Value) -> Result<Answer, String> {
    let Some(resp) = review.get("response").filter(|r| !r.is_null()) else {
        return Err("webhook response was absent".into());
    };
    let got_uid = resp.get("uid").and_then(Value::as_str).unwrap_or_default();
    if got_uid != uid {
        return Err(format!("expected response.uid={uid:?}, got {got_uid:?}"));
    }
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let review_kind = review
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version != "admission.k8s.io/v1" || review_kind != "AdmissionReview" {
        return Err(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {api_version}, Kind={review_kind}"
        ));
    }
    let mut patch = None;
    if kind == Kind::Mutating {
        let raw = resp
            .get("patch")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        let patch_type = resp.get("patchType").filter(|t| !t.is_null());
        match (raw, patch_type) {
            (Some(_), None) => {
                return Err("webhook returned response.patch but not response.patchType".into());
            }
            (None, Some(_)) => {
                return Err("webhook returned response.patchType but not response.patch".into());
            }
            (Some(raw), Some(t)) => {
                let t = t.as_str().unwrap_or_default();
                if t != "JSONPatch" {
                    return Err(format!("unsupported patch type {t:?}"));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .map_err(|e| format!("illegal base64 data in response.patch: {e}"))?;
                patch = Some(bytes);
            }
            (None, None) => {}
        }
    }
    Ok(Answer {
        allowed: resp
            .get("allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        result: resp.get("status").filter(|s| !s.is_null()).cloned(),
        patch,
        warnings: resp
            .get("warnings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        audit_annotations: resp
            .get("auditAnnotations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    })
}

/// Upstream's `ToStatusErr`: the denial as a Status, at least 400, its message prefixed
/// with `admission webhook "<name>" denied the request`.
fn denial(hook: &str, result: Option<&Value>) -> Status {
    let mut status = result
        .and_then(|r| serde_json::from_value::<Status>(r.clone()).ok())
        .or_else(|| serde_json::from_value::<Status>(json!({})).ok())
        .unwrap_or_else(|| Status::bad_request(""));
    status.kind = "Status".into();
    status.api_version = "v1".into();
    if status.code < 400 {
        status.code = 400;
    }
    if status.status.is_empty() || status.status == "Success" {
        status.status = "Failure".into();
    }
    let denied_by = format!("admission webhook {hook:?} denied the request");
    status.message = if !status.message.is_empty() {
        format!("{denied_by}: {}", status.message)
    } else if !status.reason.is_empty() {
        format!("{denied_by}: {}", status.reason)
    } else {
        format!("{denied_by} without explanation")
    };
    status
}

/// Where a webhook is reached: the URL shown in errors, the address to dial and the TLS
/// name to verify.
struct Target {
    url: String,
    host: String,
    port: u16,
    server_name: String,
    path_and_query: String,
}

/// `timeout`, where given, is also passed on as the `timeout` query parameter (admission
/// webhooks get it; conversion webhooks do not).
fn target(
    generic: &GenericStore,
    client: &Value,
    timeout: Option<Duration>,
) -> Result<Target, String> {
    let timeout_q = timeout.map(|t| format!("timeout={}s", t.as_secs().max(1)));
    if let Some(url) = client.get("url").and_then(Value::as_str) {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid webhook URL: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("webhook URL {url:?} must use the https scheme"));
        }
        let host = uri.host().unwrap_or_default();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let path = uri.path();
        let query = match (uri.query(), timeout_q) {
            (Some(q), Some(t)) => format!("?{q}&{t}"),
            (Some(q), None) => format!("?{q}"),
            (None, Some(t)) => format!("?{t}"),
            (None, None) => String::new(),
        };
        let path_and_query = format!("{path}{query}");
        return Ok(Target {
            url: format!(
                "{}{}",
                url.split('?').next().unwrap_or(url),
                &path_and_query[path.len()..]
            ),
            server_name: host.clone(),
            host,
            port,
            path_and_query,
        });
    }
    let Some(svc) = client.get("service") else {
        return Err("webhook has neither a URL nor a service".into());
    };
    let ns = svc
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = svc.get("name").and_then(Value::as_str).unwrap_or_default();
    let port = svc
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(443);
    let path = svc.get("path").and_then(Value::as_str).unwrap_or("/");
    let path = if path.is_empty() { "/" } else { path };
    let server_name = format!("{name}.{ns}.svc");
    let (host, dial_port) = resolve_service(generic, ns, name, port)?;
    let path_and_query = match timeout_q {
        Some(t) => format!("{path}?{t}"),
        None => path.to_string(),
    };
    Ok(Target {
        url: format!("https://{server_name}:{port}{path_and_query}"),
        server_name,
        host,
        port: dial_port,
        path_and_query,
    })
}

/// Resolves a Service port to an address: a ready endpoint of the port (so the server
/// reaches webhooks without the Service proxy), else the cluster IP, else an
/// ExternalName's host.
fn resolve_service(
    generic: &GenericStore,
    ns: &str,
    name: &str,
    port: u16,
) -> Result<(String, u16), String> {
    let cache = generic.store().cache();
    let snapshot = generic.registry().snapshot();
    let key_of = |plural: &str| {
        snapshot
            .get("", "v1", plural)
            .map(|r| r.info.key(Some(ns), name))
            .unwrap_or_default()
    };
    let Some(kv) = cache.get(&key_of("services")) else {
        return Err(format!("service \"{name}\" not found"));
    };
    let service: Value =
        serde_json::from_slice(&kv.value).map_err(|e| format!("unreadable service: {e}"))?;
    if service.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        let host = service
            .pointer("/spec/externalName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Ok((host.to_string(), port));
    }
    let svc_port = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(port)))
        .cloned()
        .ok_or_else(|| format!("unable to find service port {port}"))?;
    let port_name = svc_port
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(kv) = cache.get(&key_of("endpoints"))
        && let Ok(endpoints) = serde_json::from_slice::<Value>(&kv.value)
    {
        for subset in endpoints
            .get("subsets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ep_port = subset
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| p.get("name").and_then(Value::as_str).unwrap_or_default() == port_name)
                .and_then(|p| p.get("port").and_then(Value::as_u64))
                .and_then(|p| u16::try_from(p).ok());
            let ip = subset.pointer("/addresses/0/ip").and_then(Value::as_str);
            if let (Some(p), Some(ip)) = (ep_port, ip) {
                return Ok((ip.to_string(), p));
            }
        }
    }
    // A Service that selects pods, none of them ready: nothing can answer at its cluster
    // IP either (the Service proxy rejects such connections), so fail now rather than
    // wait out the webhook's timeout on an address that may not even route here.
    let selects_pods = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .is_some_and(|s| !s.is_empty());
    if selects_pods {
        return Err(format!("no endpoints available for service \"{name}\""));
    }
    match service.pointer("/spec/clusterIP").and_then(Value::as_str) {
        Some(ip) if !ip.is_empty() && ip != "None" => Ok((ip.to_string(), port)),
        _ => Err(format!("no endpoints available for service \"{name}\"")),
    }
}

fn tls_config(client: &Value) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let bundle = client
        .get("caBundle")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if bundle.is_empty() {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    } else {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(bundle)
            .map_err(|e| format!("invalid caBundle: {e}"))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("invalid caBundle: {e}"))?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Go's words for a TLS failure, as far as they map.
fn tls_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("UnknownIssuer") {
        "tls: failed to verify certificate: x509: certificate signed by unknown authority".into()
    } else if text.contains("NotValidForName") {
        format!(
            "tls: failed to verify certificate: x509: certificate is not valid for the requested name ({text})"
        )
    } else {
        format!("remote error: tls: {text}")
    }
}

/// Posts the review and reads the answer, within the webhook's timeout.
async fn post(generic: &GenericStore, hook: &Hook, review: &Value) -> Result<Value, String> {
    let client = hook
        .spec
        .get("clientConfig")
        .cloned()
        .unwrap_or(Value::Null);
    post_json(generic, &client, hook.timeout(), true, review)
        .await
        .map_err(|e| format!("failed to call webhook: {e}"))
}

/// Posts a JSON review to a webhook's `clientConfig` (`url` or `service`, `caBundle`:
/// the shape admission and CRD conversion webhooks share) and reads the JSON answer
/// within `timeout`; `timeout_query` also passes the timeout on in the URL. Errors read
/// as Go's HTTP client words them (`Post "<url>": dial tcp ...`).
pub(crate) async fn post_json(
    generic: &GenericStore,
    client: &Value,
    timeout: Duration,
    timeout_query: bool,
    review: &Value,
) -> Result<Value, String> {
    let target = target(generic, client, timeout_query.then_some(timeout))?;
    let url = target.url.clone();
    let call = async {
        let tls = tls_config(client)?;
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| {
                format!(
                    "dial tcp {}:{}: connect: {}",
                    target.host,
                    target.port,
                    go_io(&e)
                )
            })?;
        let _ = tcp.set_nodelay(true);
        let server_name = rustls::pki_types::ServerName::try_from(target.server_name.clone())
            .map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(server_name, tcp)
            .await
            .map_err(|e| tls_error_text(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let body = serde_json::to_vec(review).map_err(|e| e.to_string())?;
        let request = http::Request::post(target.path_and_query.as_str())
            .header(
                http::header::HOST,
                format!("{}:{}", target.server_name, target.port),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, */*")
            .body(Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let code = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !code.is_success() {
            let text = String::from_utf8_lossy(&body).trim().to_string();
            return Err(if code == http::StatusCode::NOT_FOUND {
                "the server could not find the requested resource".to_string()
            } else {
                format!(
                    "an error on the server ({text:?}) has prevented the request from succeeding"
                )
            });
        }
        serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("Post {url:?}: {e}")),
        Err(_) => Err(format!("Post {url:?}: context deadline exceeded")),
    }
}

fn go_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

/// Calls one webhook: dry-run gate, the call, the answer checked.
async fn call(
    generic: &GenericStore,
    kind: Kind,
    hook: &Hook,
    review: &Value,
    uid: &str,
    dry_run: bool,
) -> Result<Answer, CallError> {
    if dry_run {
        match hook.str_field("sideEffects") {
            None => return Err(CallError::Calling("Webhook SideEffects is nil".into())),
            Some("None" | "NoneOnDryRun") => {}
            Some(_) => {
                return Err(CallError::Refused(Box::new(Status::bad_request(&format!(
                    "admission webhook {:?} does not support dry run",
                    hook.name
                )))));
            }
        }
    }
    let versions = hook.spec.get("admissionReviewVersions");
    if versions.is_some() && !list_has(versions, "v1") {
        return Err(CallError::Calling(
            "webhook does not accept v1 AdmissionReview".into(),
        ));
    }
    let response = post(generic, hook, review)
        .await
        .map_err(CallError::Calling)?;
    let answer = verify_response(uid, kind, &response).map_err(|e| {
        CallError::Calling(match kind {
            Kind::Mutating => format!("received invalid webhook response: {e}"),
            Kind::Validating => e,
        })
    })?;
    // Recorded before the answer is acted on: a denial keeps them too, as upstream.
    for (key, value) in &answer.audit_annotations {
        crate::audit::add_annotation(&format!("{}/{key}", hook.name), value);
    }
    if !answer.allowed {
        return Err(CallError::Refused(Box::new(denial(
            &hook.name,
            answer.result.as_ref(),
        ))));
    }
    Ok(answer)
}

fn calling_failed(hook: &Hook, why: &str) -> Status {
    Status::internal_error(&format!("failed calling webhook {:?}: {why}", hook.name))
}

/// Runs the mutating webhooks on `object` (in the request's version; None for deletes):
/// patches are applied in order, `normalize` decodes and defaults a patched object again,
/// and webhooks with `reinvocationPolicy: IfNeeded` run once more when a later webhook
/// changed the object. Returns the webhooks' warnings.
pub async fn mutate(
    generic: &GenericStore,
    attrs: &Attributes<'_>,
    object: Option<&mut Value>,
    delete_options: Option<&Value>,
    normalize: &(dyn Fn(Value) -> Result<Value, Status> + Sync),
) -> Result<Vec<String>, Status> {
    if exempt(attrs) {
        return Ok(Vec::new());
    }
    let all = hooks(generic, Kind::Mutating);
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    let mut object = object;
    let mut invoked_reinvocable: Vec<usize> = Vec::new();
    let mut reinvoke: Vec<usize> = Vec::new();
    for round in 0..2 {
        for (i, hook) in all.iter().enumerate() {
            if round == 1 && !reinvoke.contains(&i) {
                continue;
            }
            let current = object.as_deref();
            if !matches(generic, hook, attrs, current)? {
                continue;
            }
            let uid = uuid::Uuid::new_v4().to_string();
            let review = review_request(attrs, &uid, current, delete_options);
            if !match_conditions(generic, hook, attrs, &review["request"])? {
                continue;
            }
            let answer = match call(generic, Kind::Mutating, hook, &review, &uid, attrs.dry_run)
                .await
            {
                Ok(a) => a,
                Err(CallError::Calling(why)) if hook.ignores_failures() => {
                    tracing::warn!(webhook = %hook.name, error = %why, "failed calling webhook, failing open");
                    continue;
                }
                Err(CallError::Calling(why)) => return Err(calling_failed(hook, &why)),
                Err(CallError::Refused(status)) => return Err(*status),
            };
            warnings.extend(answer.warnings);
            let mut changed = false;
            if let Some(patch) = answer.patch.as_deref() {
                let empty = serde_json::from_slice::<Value>(patch)
                    .ok()
                    .and_then(|p| p.as_array().map(Vec::is_empty))
                    .unwrap_or(false);
                if !empty {
                    let Some(obj) = object.as_deref_mut() else {
                        return Err(Status::internal_error(&format!(
                            "admission webhook {:?} attempted to modify the object, which is not supported for this operation",
                            hook.name
                        )));
                    };
                    let patched =
                        crate::patch::apply_json_patch(obj, patch).map_err(|e| match e {
                            crate::patch::PatchError::Malformed(m) => calling_failed(
                                hook,
                                &format!("received undecodable patch in webhook response: {m}"),
                            ),
                            other => Status::internal_error(&other.to_string()),
                        })?;
                    let patched = normalize(patched)?;
                    changed = patched != *obj;
                    *obj = patched;
                }
            }
            if round == 0 {
                if changed {
                    for j in invoked_reinvocable.drain(..) {
                        if !reinvoke.contains(&j) {
                            reinvoke.push(j);
                        }
                    }
                }
                if hook.reinvoked_if_needed() {
                    invoked_reinvocable.push(i);
                }
            }
        }
        if reinvoke.is_empty() {
            break;
        }
    }
    Ok(warnings)
}

/// Runs the validating webhooks (all at once, as upstream): the first refusal in
/// configuration order wins. Returns the webhooks' warnings.
pub async fn validate(
    generic: &GenericStore,
    attrs: &Attributes<'_>,
    object: Option<&Value>,
    delete_options: Option<&Value>,
) -> Result<Vec<String>, Status> {
    if exempt(attrs) {
        return Ok(Vec::new());
    }
    let all = hooks(generic, Kind::Validating);
    let mut calls = Vec::new();
    for hook in &all {
        if !matches(generic, hook, attrs, object)? {
            continue;
        }
        let uid = uuid::Uuid::new_v4().to_string();
        let review = review_request(attrs, &uid, object, delete_options);
        if !match_conditions(generic, hook, attrs, &review["request"])? {
            continue;
        }
        calls.push(async move {
            let r = call(
                generic,
                Kind::Validating,
                hook,
                &review,
                &uid,
                attrs.dry_run,
            )
            .await;
            (hook, r)
        });
    }
    let mut warnings = Vec::new();
    let mut first_error = None;
    for (hook, result) in futures::future::join_all(calls).await {
        let err = match result {
            Ok(answer) => {
                warnings.extend(answer.warnings);
                continue;
            }
            Err(CallError::Calling(why)) if hook.ignores_failures() => {
                tracing::warn!(webhook = %hook.name, error = %why, "failed calling webhook, failing open");
                continue;
            }
            Err(CallError::Calling(why)) => calling_failed(hook, &why),
            Err(CallError::Refused(status)) => *status,
        };
        first_error.get_or_insert(err);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(warnings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserInfo;
    use crate::registry::ResourceInfo;

    fn pods() -> ResourceInfo {
        ResourceInfo {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
            singular: "pod".into(),
            namespaced: true,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: Vec::new(),
            subresources: Vec::new(),
            definition: String::new(),
            key_prefix: "/registry/pods".into(),
            storage_version: true,
            custom: false,
            returns_deleted_object: false,
        }
    }

    fn attrs<'a>(
        info: &'a ResourceInfo,
        user: &'a UserInfo,
        sub: &'a str,
        op: Operation,
    ) -> Attributes<'a> {
        Attributes {
            info,
            subresource: sub,
            operation: op,
            namespace: "default",
            name: "p",
            old_object: None,
            dry_run: false,
            user,
            field_manager: "kubectl",
        }
    }

    #[test]
    fn rules_match_operations_resources_subresources_and_scope() {
        let info = pods();
        let user = UserInfo::default();
        let create = attrs(&info, &user, "", Operation::Create);
        let status = attrs(&info, &user, "status", Operation::Update);
        let rule = |ops: &[&str], res: &[&str], scope: &str| json!({"operations": ops, "apiGroups": [""], "apiVersions": ["v1"], "resources": res, "scope": scope});
        assert!(rule_matches(&rule(&["CREATE"], &["pods"], "*"), &create));
        assert!(!rule_matches(&rule(&["UPDATE"], &["pods"], "*"), &create));
        assert!(rule_matches(&rule(&["*"], &["*"], "Namespaced"), &create));
        assert!(!rule_matches(&rule(&["*"], &["*"], "Cluster"), &create));
        // `*` and `pods` do not reach subresources; `*/*`, `pods/*`, `*/status` do.
        assert!(!rule_matches(&rule(&["*"], &["*"], "*"), &status));
        assert!(!rule_matches(&rule(&["*"], &["pods"], "*"), &status));
        assert!(rule_matches(&rule(&["*"], &["*/*"], "*"), &status));
        assert!(rule_matches(&rule(&["*"], &["pods/status"], "*"), &status));
        assert!(rule_matches(&rule(&["*"], &["*/status"], "*"), &status));
        assert!(!rule_matches(&rule(&["*"], &["pods/log"], "*"), &status));
    }

    #[test]
    fn match_conditions_exclude_on_any_false_and_report_errors() {
        let authz =
            crate::admission::Admission::default().cel_authorizer(&UserInfo::anonymous(), None);
        let request = json!({
            "operation": "CREATE",
            "userInfo": {"username": "jane"},
            "object": {"metadata": {"name": "skip-me", "labels": {"a": "b"}}},
            "oldObject": null,
        });
        let conds = |exprs: &[&str]| -> Vec<Value> {
            exprs
                .iter()
                .enumerate()
                .map(|(i, e)| json!({"name": format!("c{i}"), "expression": e}))
                .collect()
        };
        let run = |exprs: &[&str]| {
            let c = conds(exprs);
            k1s_cel::with_deep_stack(|| evaluate_conditions(&c, &request, &authz)).unwrap()
        };
        assert_eq!(
            run(&["object.metadata.name != 'skip-me'"]),
            MatchOutcome::Excluded
        );
        assert_eq!(
            run(&[
                "request.operation == 'CREATE'",
                "oldObject == null",
                "request.userInfo.username == 'jane'"
            ]),
            MatchOutcome::Matches
        );
        // A false condition wins over an error in another.
        assert_eq!(
            run(&["object.nope.x == 1", "false"]),
            MatchOutcome::Excluded
        );
        match run(&["object.nope.x == 1", "true"]) {
            MatchOutcome::Errors(e) => {
                assert_eq!(e.len(), 1);
                assert!(
                    e[0].starts_with(
                        "expression 'object.nope.x == 1' resulted in error: no such key"
                    ),
                    "{e:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        // Without an authorizer, checks are not allowed.
        assert_eq!(
            run(&["authorizer.group('').resource('pods').check('get').allowed()"]),
            MatchOutcome::Excluded
        );
    }

    #[test]
    fn denials_read_as_upstream() {
        let s = denial(
            "x.example.com",
            Some(&json!({"message": "no privileged pods", "code": 403})),
        );
        assert_eq!(s.code, 403);
        assert_eq!(
            s.message,
            "admission webhook \"x.example.com\" denied the request: no privileged pods"
        );
        let s = denial("w", None);
        assert_eq!(s.code, 400);
        assert_eq!(
            s.message,
            "admission webhook \"w\" denied the request without explanation"
        );
        let s = denial("w", Some(&json!({"reason": "Nope", "code": 200})));
        assert_eq!(
            (s.code, s.message.as_str()),
            (400, "admission webhook \"w\" denied the request: Nope")
        );
    }

    #[test]
    fn responses_are_checked() {
        let ok = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u1", "allowed": true, "warnings": ["careful"]}});
        let a = verify_response("u1", Kind::Validating, &ok).expect("valid");
        assert!(a.allowed);
        assert_eq!(a.warnings, vec!["careful".to_string()]);
        let err = |r: Value, k| verify_response("u1", k, &r).err().unwrap_or_default();
        assert_eq!(
            err(
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
                Kind::Validating
            ),
            "webhook response was absent"
        );
        assert_eq!(
            err(
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u2"}}),
                Kind::Validating
            ),
            "expected response.uid=\"u1\", got \"u2\""
        );
        assert_eq!(
            err(
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u1", "allowed": true, "patch": "W10="}}),
                Kind::Mutating
            ),
            "webhook returned response.patch but not response.patchType"
        );
    }
}
