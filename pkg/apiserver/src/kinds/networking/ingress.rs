//! Ingresses (upstream `ValidateIngressCreate`, `ValidateIngressUpdate`,
//! `ValidateIngressStatusUpdate` and the ingress strategy): rules, paths, backends, TLS,
//! the class, and the load-balancer status.

use k1s_apimachinery::goformat::invalid_go;
use k1s_apimachinery::meta::{name_is_dns_label, name_is_dns_subdomain, name_is_dns1035_label};
use k1s_apimachinery::validation::{
    is_dns1123_subdomain, is_valid_port_name, is_valid_port_num, validate_path_segment_name,
};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};

use crate::kinds::validation::Fields;
use crate::kinds::validation::invalid_each;
use crate::kinds::validation::ip::{legacy_ip_errors, parse_ip_sloppy, validate_lb_hostname};
use crate::registry::Strategy;

/// The Ingress strategy.
pub struct IngressStrategy;

const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];

/// What an update may keep from the stored object (upstream's `IngressValidationOptions`).
#[derive(Default, Clone, Copy)]
struct Options {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
    allow_relaxed_service_name: bool,
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    matches!((b.first(), b.last()), (Some(f), Some(l)) if alnum(f) && alnum(l))
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// `IsWildcardDNS1123Subdomain`.
pub fn wildcard_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let ok = value
        .strip_prefix("*.")
        .is_some_and(|rest| rest.split('.').all(is_label));
    if !ok {
        errs.push(format!(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '{}')",
            r"\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
        ));
    }
    errs
}

/// `validateIngressTypedLocalObjectReference` (a resource backend).
fn validate_resource_ref(r: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(group) = r.get("apiGroup").and_then(Value::as_str) {
        errs.extend(invalid_each(
            group,
            &path.child("apiGroup"),
            is_dns1123_subdomain(group),
        ));
    }
    for key in ["kind", "name"] {
        let v = r.s(key);
        if v.is_empty() {
            errs.push(FieldError::required(&path.child(key), ""));
        } else {
            errs.extend(invalid_each(
                v,
                &path.child(key),
                validate_path_segment_name(v, false),
            ));
        }
    }
    errs
}

/// `validateIngressBackend`.
fn validate_backend(backend: &Value, path: &Path, opts: Options) -> ErrorList {
    let mut errs = ErrorList::new();
    let (resource, service) = (backend.has("resource"), backend.has("service"));
    if resource && service {
        errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        ));
        return errs;
    }
    if resource {
        errs.extend(validate_resource_ref(
            backend.f("resource"),
            &path.child("resource"),
        ));
        return errs;
    }
    if !service {
        errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        ));
        return errs;
    }
    let svc = backend.f("service");
    let svc_path = path.child("service");
    let name = svc.s("name");
    if name.is_empty() {
        errs.push(FieldError::required(&svc_path.child("name"), ""));
    } else {
        let msgs = if opts.allow_relaxed_service_name {
            name_is_dns_label(name, false)
        } else {
            name_is_dns1035_label(name, false)
        };
        errs.extend(invalid_each(name, &svc_path.child("name"), msgs));
    }
    let port = svc.f("port");
    let port_name = port.s("name");
    let number = port.i("number").unwrap_or(0);
    let port_path = svc_path.child("port");
    match (!port_name.is_empty(), number != 0) {
        (true, true) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both port name & port number",
        )),
        (true, false) => errs.extend(invalid_each(
            port_name,
            &port_path.child("name"),
            is_valid_port_name(port_name),
        )),
        (false, true) => {
            for msg in is_valid_port_num(number) {
                errs.push(FieldError::invalid(&port_path.child("number"), number, msg));
            }
        }
        (false, false) => errs.push(FieldError::required(
            path,
            "port name or number is required",
        )),
    }
    errs
}

/// `validateHTTPIngressPath`.
fn validate_http_path(p: &Value, path: &Path, opts: Options) -> ErrorList {
    let mut errs = ErrorList::new();
    if !p.has("pathType") {
        errs.push(FieldError::required(
            &path.child("pathType"),
            "pathType must be specified",
        ));
        return errs;
    }
    let value = p.s("path");
    let path_path = path.child("path");
    match p.s("pathType") {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path_path,
                    value,
                    "must be an absolute path",
                ));
            }
            if !value.is_empty() {
                for seq in INVALID_PATH_SEQUENCES {
                    if value.contains(seq) {
                        errs.push(FieldError::invalid(
                            &path_path,
                            value,
                            format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in INVALID_PATH_SUFFIXES {
                    if value.ends_with(suffix) {
                        errs.push(FieldError::invalid(
                            &path_path,
                            value,
                            format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path_path,
                    value,
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("pathType"),
            other,
            PATH_TYPES,
        )),
    }
    errs.extend(validate_backend(
        p.f("backend"),
        &path.child("backend"),
        opts,
    ));
    errs
}

/// `validateIngressRuleValue`.
fn validate_rule_value(rule: &Value, path: &Path, opts: Options) -> ErrorList {
    let mut errs = ErrorList::new();
    if !rule.has("http") {
        return errs;
    }
    let http = rule.f("http");
    let http_path = path.child("http");
    let paths = http.a("paths");
    if paths.is_empty() {
        errs.push(FieldError::required(&http_path.child("paths"), ""));
    }
    for (i, p) in paths.iter().enumerate() {
        errs.extend(validate_http_path(
            p,
            &http_path.child("paths").index(i),
            opts,
        ));
    }
    errs
}

fn validate_rules(rules: &[Value], path: &Path, opts: Options) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, rule) in rules.iter().enumerate() {
        let host = rule.s("host");
        let host_path = path.index(i).child("host");
        let mut wildcard = false;
        if !host.is_empty() {
            if parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(
                    &host_path,
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            if host.contains('*') {
                errs.extend(invalid_each(
                    host,
                    &host_path,
                    wildcard_subdomain_errors(host),
                ));
                wildcard = true;
            } else {
                errs.extend(invalid_each(host, &host_path, is_dns1123_subdomain(host)));
            }
        }
        if !wildcard || !opts.allow_invalid_wildcard_host_rule {
            errs.extend(validate_rule_value(rule, &path.index(i), opts));
        }
    }
    errs
}

fn validate_tls(tls: &[Value], path: &Path, opts: Options) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in tls.iter().enumerate() {
        for (j, host) in t.a("hosts").iter().enumerate() {
            let host = host.as_str().unwrap_or_default();
            let host_path = path.index(i).child("hosts").index(j);
            let msgs = if host.contains('*') {
                wildcard_subdomain_errors(host)
            } else {
                is_dns1123_subdomain(host)
            };
            errs.extend(invalid_each(host, &host_path, msgs));
        }
        let secret = t.s("secretName");
        if !opts.allow_invalid_secret_name && !secret.is_empty() {
            errs.extend(invalid_each(
                secret,
                &path.index(i).child("secretName"),
                name_is_dns_subdomain(secret, false),
            ));
        }
    }
    errs
}

/// `ValidateIngressSpec`.
fn validate_spec(spec: &Value, opts: Options) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let rules = spec.a("rules");
    if rules.is_empty() && !spec.has("defaultBackend") {
        // Upstream shows the (empty) rules slice with %#v.
        let shown = if spec.get("rules").is_some() {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        errs.push(invalid_go(
            &path,
            shown.to_string(),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if spec.has("defaultBackend") {
        errs.extend(validate_backend(
            spec.f("defaultBackend"),
            &path.child("defaultBackend"),
            opts,
        ));
    }
    if !rules.is_empty() {
        errs.extend(validate_rules(rules, &path.child("rules"), opts));
    }
    let tls = spec.a("tls");
    if !tls.is_empty() {
        errs.extend(validate_tls(tls, &path.child("tls"), opts));
    }
    if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
        errs.extend(invalid_each(
            class,
            &path.child("ingressClassName"),
            name_is_dns_subdomain(class, false),
        ));
    }
    errs
}

/// Whether a service name is a DNS-1123 label but not a DNS-1035 one (a name only the
/// relaxed rule accepts).
fn relaxed_only(name: &str) -> bool {
    name_is_dns_label(name, false).is_empty() && !name_is_dns1035_label(name, false).is_empty()
}

/// The options an update gets from the stored object (`allowInvalidSecretName`,
/// `allowInvalidWildcardHostRule`, `allowRelaxedServiceNameValidation`; the
/// RelaxedServiceNameValidation gate is off in 1.35).
fn update_options(old: &Value) -> Options {
    let spec = old.f("spec");
    let allow_invalid_secret_name = spec.a("tls").iter().any(|t| {
        let s = t.s("secretName");
        !s.is_empty() && !name_is_dns_subdomain(s, false).is_empty()
    });
    let allow_invalid_wildcard_host_rule = spec.a("rules").iter().any(|r| {
        r.s("host").contains('*')
            && !validate_rule_value(r, &Path::root(), Options::default()).is_empty()
    });
    let default_name = spec.f("defaultBackend").f("service").get("name");
    let mut relaxed = default_name
        .and_then(Value::as_str)
        .is_some_and(relaxed_only);
    for rule in spec.a("rules") {
        for p in rule.f("http").a("paths") {
            if let Some(name) = p
                .f("backend")
                .f("service")
                .get("name")
                .and_then(Value::as_str)
            {
                relaxed |= relaxed_only(name);
            }
        }
    }
    Options {
        allow_invalid_secret_name,
        allow_invalid_wildcard_host_rule,
        allow_relaxed_service_name: relaxed,
    }
}

/// `ValidateIngressLoadBalancerStatus`.
fn validate_status(new: &Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let existing: Vec<&str> = old
        .f("status")
        .f("loadBalancer")
        .a("ingress")
        .iter()
        .map(|i| i.s("ip"))
        .filter(|ip| !ip.is_empty())
        .collect();
    let path = Path::new("status").child("loadBalancer").child("ingress");
    for (i, ing) in new
        .f("status")
        .f("loadBalancer")
        .a("ingress")
        .iter()
        .enumerate()
    {
        let p = path.index(i);
        let ip = ing.s("ip");
        if !ip.is_empty() && !existing.contains(&ip) {
            errs.extend(invalid_each(ip, &p.child("ip"), legacy_ip_errors(ip)));
        }
        let host = ing.s("hostname");
        if !host.is_empty() {
            errs.extend(validate_lb_hostname(host, &p.child("hostname")));
        }
    }
    errs
}

impl Strategy for IngressStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        // Upstream resets the status to its zero value, which serializes like this.
        obj["status"] = json!({"loadBalancer": {}});
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = validate_spec(obj.f("spec"), Options::default());
        let annotation = obj
            .f("metadata")
            .f("annotations")
            .get(INGRESS_CLASS_ANNOTATION)
            .and_then(Value::as_str);
        let class = obj
            .f("spec")
            .get("ingressClassName")
            .and_then(Value::as_str);
        if let (Some(a), Some(c)) = (annotation, class)
            && a != c
        {
            errs.push(FieldError::invalid(
                &Path::new("annotations").child(INGRESS_CLASS_ANNOTATION),
                a,
                "must match `ingressClassName` when both are specified",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_spec(new.f("spec"), update_options(old))
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_status(new, old)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_util::texts;

    #[tokio::test]
    async fn an_ingress_without_a_class_gets_the_default_class() {
        let t = crate::test_util::TestApiServer::new().await;
        let api = t.api();
        let ingress = |name: &str, extra: Value| {
            let mut i = json!({"metadata": {"name": name}, "spec": {"defaultBackend":
                {"service": {"name": "web", "port": {"number": 80}}}}});
            if let (Some(spec), Some(more)) = (i["spec"].as_object_mut(), extra.as_object()) {
                spec.extend(more.clone());
            }
            i
        };
        let path = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
        let (code, body) = api.call("POST", path, &ingress("none", json!({}))).await;
        assert_eq!(code, 201, "{body}");
        assert!(body["spec"].get("ingressClassName").is_none(), "{body}");
        api.create(
            "/apis/networking.k8s.io/v1/ingressclasses",
            json!({"metadata": {"name": "k1s", "annotations":
                       {"ingressclass.kubernetes.io/is-default-class": "true"}},
                   "spec": {"controller": "k1s.io/ingress"}}),
        )
        .await;
        let (_, body) = api.call("POST", path, &ingress("a", json!({}))).await;
        assert_eq!(body["spec"]["ingressClassName"], "k1s", "{body}");
        let (_, body) = api
            .call(
                "POST",
                path,
                &ingress("b", json!({"ingressClassName": "nginx"})),
            )
            .await;
        assert_eq!(body["spec"]["ingressClassName"], "nginx", "{body}");
        let mut legacy = ingress("c", json!({}));
        legacy["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": "nginx"});
        let (_, body) = api.call("POST", path, &legacy).await;
        assert!(body["spec"].get("ingressClassName").is_none(), "{body}");
    }

    /// The Ingress of the Kubernetes docs' "Ingress" page, with TLS and a default
    /// backend added.
    fn docs_ingress() -> Value {
        json!({
            "metadata": {"name": "minimal-ingress", "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}},
            "spec": {
                "ingressClassName": "nginx-example",
                "defaultBackend": {"service": {"name": "default-http-backend", "port": {"number": 80}}},
                "tls": [{"hosts": ["https-example.foo.com", "*.foo.com"], "secretName": "testsecret-tls"}],
                "rules": [
                    {"host": "foo.bar.com", "http": {"paths": [
                        {"path": "/testpath", "pathType": "Prefix", "backend": {"service": {"name": "test", "port": {"number": 80}}}},
                        {"path": "/exact", "pathType": "Exact", "backend": {"service": {"name": "test", "port": {"name": "http"}}}},
                        {"pathType": "ImplementationSpecific", "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "static-assets"}}}
                    ]}},
                    {"host": "*.foo.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "service2", "port": {"number": 80}}}}]}}
                ]
            }
        })
    }

    #[test]
    fn the_docs_ingress_is_valid() {
        assert!(texts(IngressStrategy.validate(&docs_ingress())).is_empty());
    }

    #[test]
    fn an_ingress_needs_rules_or_a_default_backend() {
        assert_eq!(
            texts(IngressStrategy.validate(&json!({"spec": {}}))),
            vec![
                "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
            ]
        );
    }

    #[test]
    fn paths_and_backends_follow_upstream() {
        let obj = json!({"spec": {"rules": [{"host": "1.2.3.4", "http": {"paths": [
            {"path": "a//b", "pathType": "Prefix", "backend": {"service": {"name": "svc", "port": {"number": 80, "name": "http"}}}},
            {"path": "/x", "backend": {}}
        ]}}]}});
        assert_eq!(
            texts(IngressStrategy.validate(&obj)),
            vec![
                "spec.rules[0].host: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address",
                "spec.rules[0].http.paths[0].path: Invalid value: \"a//b\": must be an absolute path",
                "spec.rules[0].http.paths[0].path: Invalid value: \"a//b\": must not contain '//'",
                "spec.rules[0].http.paths[0].backend: Invalid value: \"\": cannot set both port name & port number",
                "spec.rules[0].http.paths[1].pathType: Required value: pathType must be specified",
            ]
        );
    }

    #[test]
    fn status_addresses_are_ips_or_dns_names() {
        let old = json!({"status": {"loadBalancer": {"ingress": [{"ip": "010.0.0.1"}]}}});
        let new = json!({"status": {"loadBalancer": {"ingress": [
            {"ip": "010.0.0.1"}, {"ip": "10.0.0.300"}, {"hostname": "10.0.0.2"}, {"hostname": "lb.example.com"}
        ]}}});
        assert_eq!(
            texts(IngressStrategy.validate_status_update(&new, &old)),
            vec![
                "status.loadBalancer.ingress[1].ip: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "status.loadBalancer.ingress[2].hostname: Invalid value: \"10.0.0.2\": must be a DNS name, not an IP address",
            ]
        );
    }

    #[test]
    fn updates_keep_names_the_stored_object_already_had() {
        let mut old = docs_ingress();
        old["spec"]["defaultBackend"]["service"]["name"] = json!("1st-backend");
        // A create refuses a service name that starts with a digit ...
        assert_eq!(IngressStrategy.validate(&old).len(), 1);
        // ... but an update of an object that has one keeps working.
        assert!(IngressStrategy.validate_update(&old, &old).is_empty());
    }
}
