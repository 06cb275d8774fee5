//! Mutating and validating webhook configurations (upstream's
//! `validateMutatingWebhookConfiguration` / `validateValidatingWebhookConfiguration`,
//! the v1 webhook defaults, and the strategies' generation bump).

use std::collections::HashSet;

use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::meta::{label_selector_has_errors, validate_label_selector_with};
use k1s_apimachinery::validation::{is_dns1035_label, is_dns1123_subdomain, is_valid_port_num};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use super::cel::{self, Vars};
use super::common::{default_rules, is_fully_qualified_name, validate_rule_with_operations};
use crate::kinds::validation::validate_qualified_name;
use crate::kinds::validation::{Fields, strings};
use crate::registry::Strategy;

/// The AdmissionReview versions this server understands.
const ACCEPTED_REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
/// At most this many match conditions per webhook (or policy).
const MAX_MATCH_CONDITIONS: usize = 64;

/// What an update may tolerate because the stored object already has it (upstream's
/// `validationOptions`).
#[derive(Debug, Clone, Copy)]
struct Opts {
    ignore_match_conditions: bool,
    require_no_side_effects: bool,
    require_recognized_review_version: bool,
    require_unique_names: bool,
    allow_invalid_label_value_in_selector: bool,
}

impl Opts {
    fn create() -> Self {
        Self {
            ignore_match_conditions: false,
            require_no_side_effects: true,
            require_recognized_review_version: true,
            require_unique_names: true,
            allow_invalid_label_value_in_selector: false,
        }
    }

    fn update(new: &Value, old: &Value) -> Self {
        let (new_hooks, old_hooks) = (new.a("webhooks"), old.a("webhooks"));
        let ignore_match_conditions = new_hooks.len() == old_hooks.len()
            && new_hooks
                .iter()
                .zip(old_hooks)
                .all(|(n, o)| n.get("matchConditions") == o.get("matchConditions"));
        let require_no_side_effects = old_hooks
            .iter()
            .all(|h| matches!(h.s("sideEffects"), "None" | "NoneOnDryRun"));
        let require_recognized_review_version = old_hooks.iter().all(|h| {
            let versions = strings(h.f("admissionReviewVersions"));
            versions.is_empty()
                || versions
                    .iter()
                    .any(|v| ACCEPTED_REVIEW_VERSIONS.contains(v))
        });
        let mut names: HashSet<&str> = HashSet::new();
        let require_unique_names = old_hooks.iter().all(|h| names.insert(h.s("name")));
        let allow_invalid_label_value_in_selector = old_hooks.iter().any(|h| {
            ["namespaceSelector", "objectSelector"]
                .iter()
                .any(|k| label_selector_has_errors(h.get(*k)))
        });
        Self {
            ignore_match_conditions,
            require_no_side_effects,
            require_recognized_review_version,
            require_unique_names,
            allow_invalid_label_value_in_selector,
        }
    }
}

/// Upstream's `validateMatchConditions`; `vars` are the variables the expressions may
/// use.
pub(super) fn validate_match_conditions(
    conditions: &[Value],
    vars: Vars,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if conditions.len() > MAX_MATCH_CONDITIONS {
        errs.push(FieldError::too_many(
            path,
            conditions.len() as i64,
            MAX_MATCH_CONDITIONS as i64,
        ));
    }
    let mut names: HashSet<&str> = HashSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let p = path.index(i);
        let expression = c.s("expression").trim();
        if expression.is_empty() {
            errs.push(FieldError::required(&p.child("expression"), ""));
        } else {
            errs.extend(cel::check(
                expression,
                expression,
                vars,
                &p.child("expression"),
            ));
        }
        let name = c.s("name");
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            errs.extend(validate_qualified_name(name, &p.child("name")));
            if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
    }
    errs
}

/// The parts of a URL upstream's checks look at (Go's `url.Parse`).
struct Url<'a> {
    scheme: String,
    user: Option<&'a str>,
    host: &'a str,
    query: &'a str,
    fragment: &'a str,
}

/// Go's `url.Parse`, as far as the webhook checks need it; `Err` carries Go's reason.
fn parse_url(raw: &str) -> Result<Url<'_>, String> {
    let (rest, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    if rest.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut scheme = "";
    let mut after = rest;
    for (i, c) in rest.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' => {
                if i == 0 {
                    return Err("missing protocol scheme".into());
                }
                scheme = &rest[..i];
                after = &rest[i + 1..];
                break;
            }
            _ => break,
        }
    }
    let (after, query) = if after.ends_with('?') && after.matches('?').count() == 1 {
        (&after[..after.len() - 1], "")
    } else {
        after.split_once('?').unwrap_or((after, ""))
    };
    let mut url = Url {
        scheme: scheme.to_ascii_lowercase(),
        user: None,
        host: "",
        query,
        fragment,
    };
    if !after.starts_with('/') {
        if scheme.is_empty() && after.split('/').next().is_some_and(|s| s.contains(':')) {
            return Err("first path segment in URL cannot contain colon".into());
        }
        // With a scheme this is an opaque URL (`https:host`): no host.
        return Ok(url);
    }
    if let Some(authority_and_path) = after.strip_prefix("//") {
        let authority = authority_and_path
            .split_once('/')
            .map_or(authority_and_path, |(a, _)| a);
        let host = match authority.rsplit_once('@') {
            Some((user, host)) => {
                url.user = Some(user);
                host
            }
            None => authority,
        };
        check_host(host)?;
        url.host = host;
    }
    Ok(url)
}

/// Go's `parseHost` checks: a bracketed IPv6 literal or a name, then an all-digit port,
/// and only characters a host may contain.
fn check_host(host: &str) -> Result<(), String> {
    let port = if host.starts_with('[') {
        match host.rfind(']') {
            Some(i) => &host[i + 1..],
            None => return Err("missing ']' in host".into()),
        }
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return Err(format!("invalid port {} after host", quote(port)));
    }
    for c in host.chars() {
        let ok = c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:[]<>\"%".contains(c);
        if !ok {
            return Err(format!(
                "invalid character {} in host name",
                quote(&c.to_string())
            ));
        }
    }
    Ok(())
}

/// Upstream's `ValidateWebhookURL`.
pub(crate) fn validate_webhook_url(path: &Path, raw: &str, force_https: bool) -> ErrorList {
    const FORM: &str = "; desired format: https://host[/path]";
    let mut errs = ErrorList::new();
    match parse_url(raw) {
        Err(reason) => errs.push(FieldError::required(
            path,
            format!(
                "url must be a valid URL: parse {}: {reason}{FORM}",
                quote(raw)
            ),
        )),
        Ok(u) => {
            if force_https && u.scheme != "https" {
                errs.push(FieldError::invalid(
                    path,
                    u.scheme.as_str(),
                    format!("'https' is the only allowed URL scheme{FORM}"),
                ));
            }
            if u.host.is_empty() {
                errs.push(FieldError::invalid(
                    path,
                    u.host,
                    format!("host must be provided{FORM}"),
                ));
            }
            if let Some(user) = u.user {
                errs.push(FieldError::invalid(
                    path,
                    user,
                    "user information is not permitted in the URL",
                ));
            }
            if !u.fragment.is_empty() {
                errs.push(FieldError::invalid(
                    path,
                    u.fragment,
                    "fragments are not permitted in the URL",
                ));
            }
            if !u.query.is_empty() {
                errs.push(FieldError::invalid(
                    path,
                    u.query,
                    "query parameters are not permitted in the URL",
                ));
            }
        }
    }
    errs
}

/// Upstream's `ValidateWebhookService`. Upstream passes the service's name where the
/// function expects the namespace and the other way round, so a missing name is
/// reported at `service.namespace` and a missing namespace at `service.name`; clients
/// see exactly that, and so it is kept.
pub(crate) fn validate_webhook_service(path: &Path, service: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let (namespace_param, name_param) = (service.s("name"), service.s("namespace"));
    if name_param.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "service name is required",
        ));
    }
    if namespace_param.is_empty() {
        errs.push(FieldError::required(
            &path.child("namespace"),
            "service namespace is required",
        ));
    }
    let port = service.i("port").unwrap_or(0);
    let port_errs = is_valid_port_num(port);
    if !port_errs.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("port"),
            port,
            format!("port is not valid: {}", port_errs.join(", ")),
        ));
    }
    let Some(url_path) = service.get("path").and_then(Value::as_str) else {
        return errs;
    };
    if url_path == "/" || url_path.is_empty() {
        return errs;
    }
    let pp = path.child("path");
    if url_path == "//" {
        errs.push(FieldError::invalid(
            &pp,
            url_path,
            "segment[0] may not be empty",
        ));
        return errs;
    }
    if !url_path.starts_with('/') {
        errs.push(FieldError::invalid(&pp, url_path, "must start with a '/'"));
    }
    // Go drops the first byte even when the path does not start with '/' and that byte
    // begins a multi-byte character. Each segment is only measured in bytes and matched
    // against an ASCII pattern, so a '?' per non-ASCII byte keeps Go's lengths and
    // failures without slicing inside a character.
    let after_first: String = url_path
        .bytes()
        .skip(1)
        .map(|b| if b.is_ascii() { char::from(b) } else { '?' })
        .collect();
    let check = after_first.strip_suffix('/').unwrap_or(&after_first);
    for (i, step) in check.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldError::invalid(
                &pp,
                url_path,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for failure in is_dns1123_subdomain(step) {
            errs.push(FieldError::invalid(
                &pp,
                url_path,
                format!("segment[{i}]: {failure}"),
            ));
        }
    }
    errs
}

/// `clientConfig`: exactly one of url (https) and service.
pub(super) fn validate_client_config(cc: &Value, path: &Path) -> ErrorList {
    match (cc.get("url").and_then(Value::as_str), cc.get("service")) {
        (Some(url), None) => validate_webhook_url(&path.child("url"), url, true),
        (None, Some(service)) => validate_webhook_service(&path.child("service"), service),
        _ => vec![FieldError::required(
            path,
            "exactly one of url or service is required",
        )],
    }
}

fn validate_review_versions(versions: &[&str], require_recognized: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if versions.is_empty() {
        errs.push(FieldError::required(
            path,
            format!(
                "must specify one of {}",
                ACCEPTED_REVIEW_VERSIONS.join(", ")
            ),
        ));
        return errs;
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut has_accepted = false;
    for (i, &v) in versions.iter().enumerate() {
        if !seen.insert(v) {
            errs.push(FieldError::invalid(&path.index(i), v, "duplicate version"));
            continue;
        }
        for msg in is_dns1035_label(v) {
            errs.push(FieldError::invalid(&path.index(i), v, msg));
        }
        if ACCEPTED_REVIEW_VERSIONS.contains(&v) {
            has_accepted = true;
        }
    }
    if require_recognized && !has_accepted {
        errs.push(FieldError::invalid(
            path,
            versions.to_vec(),
            format!(
                "must include at least one of {}",
                ACCEPTED_REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
    errs
}

/// `Unsupported value` when the optional field `key` is set (even to "") to a value
/// outside `valid`.
pub(super) fn enum_field(obj: &Value, key: &str, valid: &[&str], path: &Path) -> ErrorList {
    match obj.get(key).and_then(Value::as_str) {
        Some(v) if !valid.contains(&v) => {
            vec![FieldError::not_supported(&path.child(key), v, valid)]
        }
        _ => ErrorList::new(),
    }
}

/// One webhook of either kind (upstream's `validateMutatingWebhook` /
/// `validateValidatingWebhook`).
fn validate_hook(hook: &Value, mutating: bool, opts: Opts, path: &Path) -> ErrorList {
    let mut errs = is_fully_qualified_name(&path.child("name"), hook.s("name"));
    for (i, rule) in hook.a("rules").iter().enumerate() {
        errs.extend(validate_rule_with_operations(
            rule,
            &path.child("rules").index(i),
        ));
    }
    errs.extend(enum_field(hook, "failurePolicy", &["Fail", "Ignore"], path));
    errs.extend(enum_field(
        hook,
        "matchPolicy",
        &["Equivalent", "Exact"],
        path,
    ));
    let allowed: &[&str] = if opts.require_no_side_effects {
        &["None", "NoneOnDryRun"]
    } else {
        &["None", "NoneOnDryRun", "Some", "Unknown"]
    };
    match hook.get("sideEffects").and_then(Value::as_str) {
        None => errs.push(FieldError::required(
            &path.child("sideEffects"),
            format!("must specify one of {}", allowed.join(", ")),
        )),
        Some(s) if !allowed.contains(&s) => errs.push(FieldError::not_supported(
            &path.child("sideEffects"),
            s,
            allowed,
        )),
        Some(_) => {}
    }
    if let Some(t) = hook.i("timeoutSeconds")
        && !(1..=30).contains(&t)
    {
        errs.push(FieldError::invalid(
            &path.child("timeoutSeconds"),
            t,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    for key in ["namespaceSelector", "objectSelector"] {
        errs.extend(validate_label_selector_with(
            hook.get(key),
            opts.allow_invalid_label_value_in_selector,
            &path.child(key),
        ));
    }
    if mutating {
        errs.extend(enum_field(
            hook,
            "reinvocationPolicy",
            &["IfNeeded", "Never"],
            path,
        ));
    }
    errs.extend(validate_client_config(
        hook.f("clientConfig"),
        &path.child("clientConfig"),
    ));
    if !opts.ignore_match_conditions {
        let vars = Vars {
            params: false,
            authorizer: true,
            variables: false,
        };
        errs.extend(validate_match_conditions(
            hook.a("matchConditions"),
            vars,
            &path.child("matchConditions"),
        ));
    }
    errs
}

fn validate_configuration(obj: &Value, mutating: bool, opts: Opts) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: HashSet<&str> = HashSet::new();
    for (i, hook) in obj.a("webhooks").iter().enumerate() {
        let p = Path::new("webhooks").index(i);
        errs.extend(validate_hook(hook, mutating, opts, &p));
        errs.extend(validate_review_versions(
            &strings(hook.f("admissionReviewVersions")),
            opts.require_recognized_review_version,
            &p.child("admissionReviewVersions"),
        ));
        let name = hook.s("name");
        if opts.require_unique_names && !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        }
    }
    errs
}

/// The v1 defaults of one webhook (`SetDefaults_MutatingWebhook` /
/// `SetDefaults_ValidatingWebhook`, the rules' scope and the service port).
fn default_hook(hook: &mut Value, mutating: bool) {
    let Some(h) = hook.as_object_mut() else {
        return;
    };
    h.entry("failurePolicy").or_insert_with(|| json!("Fail"));
    h.entry("matchPolicy")
        .or_insert_with(|| json!("Equivalent"));
    h.entry("namespaceSelector").or_insert_with(|| json!({}));
    h.entry("objectSelector").or_insert_with(|| json!({}));
    h.entry("timeoutSeconds").or_insert_with(|| json!(10));
    if mutating {
        h.entry("reinvocationPolicy")
            .or_insert_with(|| json!("Never"));
    }
    if let Some(service) = h
        .get_mut("clientConfig")
        .and_then(|c| c.get_mut("service"))
        .and_then(Value::as_object_mut)
    {
        service.entry("port").or_insert_with(|| json!(443));
    }
    default_rules(h.get_mut("rules"));
}

/// MutatingWebhookConfiguration (`mutating`) and ValidatingWebhookConfiguration.
pub struct WebhookConfigurationStrategy {
    mutating: bool,
}

impl WebhookConfigurationStrategy {
    /// The MutatingWebhookConfiguration strategy.
    pub const MUTATING: Self = Self { mutating: true };
    /// The ValidatingWebhookConfiguration strategy.
    pub const VALIDATING: Self = Self { mutating: false };
}

impl Strategy for WebhookConfigurationStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(Value::Array(hooks)) = obj.get_mut("webhooks") {
            for hook in hooks {
                default_hook(hook, self.mutating);
            }
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        cel::on_parse_stack(|| validate_configuration(obj, self.mutating, Opts::create()))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let opts = Opts::update(new, old);
        cel::on_parse_stack(|| validate_configuration(new, self.mutating, opts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::texts;

    /// cert-manager's ValidatingWebhookConfiguration as its chart installs it (the CA
    /// bundle is injected later).
    fn cert_manager() -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "cert-manager-webhook", "annotations": {"cert-manager.io/inject-ca-from-secret": "cert-manager/cert-manager-webhook-ca"}},
            "webhooks": [{
                "name": "webhook.cert-manager.io",
                "namespaceSelector": {"matchExpressions": [{"key": "cert-manager.io/disable-validation", "operator": "NotIn", "values": ["true"]}]},
                "rules": [{"apiGroups": ["cert-manager.io", "acme.cert-manager.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["*/*"]}],
                "admissionReviewVersions": ["v1"],
                "matchPolicy": "Equivalent",
                "timeoutSeconds": 30,
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "clientConfig": {"service": {"name": "cert-manager-webhook", "namespace": "cert-manager", "path": "/validate"}}
            }]
        })
    }

    #[test]
    fn real_world_configurations_are_accepted_and_defaulted() {
        let s = WebhookConfigurationStrategy::VALIDATING;
        let mut obj = cert_manager();
        s.default(&mut obj);
        assert_eq!(texts(s.validate(&obj)), Vec::<String>::new());
        assert_eq!(obj["webhooks"][0]["clientConfig"]["service"]["port"], 443);
        assert_eq!(obj["webhooks"][0]["rules"][0]["scope"], "*");
        assert_eq!(obj["webhooks"][0]["objectSelector"], json!({}));

        // ingress-nginx's admission webhook.
        let mut nginx = json!({"metadata": {"name": "ingress-nginx-admission"}, "webhooks": [{
            "name": "validate.nginx.ingress.kubernetes.io",
            "matchPolicy": "Equivalent",
            "rules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]}],
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": "ingress-nginx", "name": "ingress-nginx-controller-admission", "path": "/networking/v1/ingresses", "port": 443}}
        }]});
        s.default(&mut nginx);
        assert_eq!(texts(s.validate(&nginx)), Vec::<String>::new());
        assert_eq!(nginx["webhooks"][0]["timeoutSeconds"], 10);

        let m = WebhookConfigurationStrategy::MUTATING;
        let mut mutating = json!({"metadata": {"name": "cert-manager-webhook"}, "webhooks": [{
            "name": "webhook.cert-manager.io",
            "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}],
            "sideEffects": "None", "admissionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": {"url": "https://webhook.example.com:8443/mutate", "caBundle": ""}
        }]});
        m.default(&mut mutating);
        assert_eq!(texts(m.validate(&mutating)), Vec::<String>::new());
        assert_eq!(mutating["webhooks"][0]["reinvocationPolicy"], "Never");
    }

    #[test]
    fn bad_webhooks_are_refused_with_upstream_texts() {
        let s = WebhookConfigurationStrategy::VALIDATING;
        let mut obj = cert_manager();
        obj["webhooks"][0]["name"] = json!("webhook");
        obj["webhooks"][0]["clientConfig"] = json!({"url": "http://user@h/x?a=b#f"});
        obj["webhooks"][0]["timeoutSeconds"] = json!(31);
        obj["webhooks"][0]["sideEffects"] = json!("Some");
        obj["webhooks"][0]["admissionReviewVersions"] = json!(["v2"]);
        let got = texts(s.validate(&obj));
        assert_eq!(
            got,
            [
                "webhooks[0].name: Invalid value: \"webhook\": should be a domain with at least three segments separated by dots",
                "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
                "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
                "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
                "webhooks[0].clientConfig.url: Invalid value: \"user\": user information is not permitted in the URL",
                "webhooks[0].clientConfig.url: Invalid value: \"f\": fragments are not permitted in the URL",
                "webhooks[0].clientConfig.url: Invalid value: \"a=b\": query parameters are not permitted in the URL",
                "webhooks[0].admissionReviewVersions: Invalid value: [\"v2\"]: must include at least one of v1, v1beta1",
            ]
        );
    }

    #[test]
    fn updates_tolerate_what_the_stored_object_has() {
        let s = WebhookConfigurationStrategy::VALIDATING;
        let mut old = cert_manager();
        old["webhooks"][0]["sideEffects"] = json!("Unknown");
        s.default(&mut old);
        let new = old.clone();
        assert!(s.validate(&new).len() == 1);
        assert!(s.validate_update(&new, &old).is_empty());
        let mut broken = new.clone();
        broken["webhooks"][0]["clientConfig"]["service"]["path"] = json!("/Validate");
        assert_eq!(
            texts(s.validate_update(&broken, &old))[0],
            "webhooks[0].clientConfig.service.path: Invalid value: \"/Validate\": segment[0]: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
    }

    #[test]
    fn urls_parse_like_go() {
        assert!(validate_webhook_url(&Path::new("u"), "https://10.0.0.1:9443/x", true).is_empty());
        assert_eq!(
            texts(validate_webhook_url(&Path::new("u"), "https:host", true)),
            ["u: Invalid value: \"\": host must be provided; desired format: https://host[/path]"]
        );
        assert_eq!(
            texts(validate_webhook_url(&Path::new("u"), "://x", true)),
            [
                "u: Required value: url must be a valid URL: parse \"://x\": missing protocol scheme; desired format: https://host[/path]"
            ]
        );
    }

    #[test]
    fn non_ascii_service_paths_are_errors_not_panics() {
        // Go slices off the first byte, so "é" leaves one stray byte: one segment that
        // fails the pattern. Multi-byte characters count as their bytes.
        let service = |p: &str| json!({"name": "n", "namespace": "ns", "port": 443, "path": p});
        let rfc1123 = is_dns1123_subdomain("_").remove(0);
        let check = |p: &str| texts(validate_webhook_service(&Path::new("s"), &service(p)));
        assert_eq!(
            check("é"),
            [
                "s.path: Invalid value: \"é\": must start with a '/'".to_string(),
                format!("s.path: Invalid value: \"é\": segment[0]: {rfc1123}"),
            ]
        );
        assert_eq!(
            check("/é/ok/"),
            [format!(
                "s.path: Invalid value: \"/é/ok/\": segment[0]: {rfc1123}"
            )]
        );
        let long = format!("/{}", "é".repeat(127));
        assert_eq!(
            check(&long),
            [
                format!(
                    "s.path: Invalid value: \"{long}\": segment[0]: must be no more than 253 characters"
                ),
                format!("s.path: Invalid value: \"{long}\": segment[0]: {rfc1123}"),
            ]
        );
        for p in ["éa", "é/", "日本/x", "//é", "\u{10FFFF}", "ü//ä/", "é/ok"] {
            assert!(!check(p).is_empty(), "{p}");
        }
    }

    #[tokio::test]
    async fn patches_need_no_resource_version_but_a_put_does() {
        // Upstream refuses unconditional updates of webhook configurations; a patch is
        // applied to the current version and so is conditional on it (kubectl apply,
        // label and helm upgrade send patches without a resourceVersion).
        let api = crate::test_util::TestApiServer::new().await.api();
        let uri = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
        let (code, body) = api.call("POST", uri, &cert_manager()).await;
        assert_eq!(code, 201, "{body}");
        let item = format!("{uri}/cert-manager-webhook");
        let label = json!({"metadata": {"labels": {"app": "cert-manager"}}});
        for ct in [
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ] {
            let (code, body) = api.call_with("PATCH", &item, ct, &label).await;
            assert_eq!(code, 200, "{ct}: {body}");
        }
        let mut put = cert_manager();
        put["metadata"]["labels"] = json!({"app": "x"});
        let (code, body) = api.call("PUT", &item, &put).await;
        assert_eq!(code, 422, "{body}");
        assert!(
            body["message"].as_str().unwrap_or("").contains(
                "metadata.resourceVersion: Invalid value: \"\": must be specified for an update"
            ),
            "{body}"
        );
    }
}
