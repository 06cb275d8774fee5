//! CertificateSigningRequests (upstream's `pkg/apis/certificates/validation` and
//! `pkg/registry/certificates/certificates/strategy.go`).
//!
//! Upstream fills `spec.username`, `uid`, `groups` and `extra` from the requesting user
//! on create: the strategy clears what the client sent and the registry records the
//! requester ([`record_requester`]), which approvers decide on. A status update cannot restore the stored Approved/Denied conditions or
//! stamp condition times before it is validated, so changes to them are refused instead
//! of undone; the `/approval` subresource (what `kubectl certificate approve` writes)
//! changes the conditions alone, stamping their times as upstream does.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::validation::{
    DNS1123_LABEL_MAX_LENGTH, DNS1123_SUBDOMAIN_MAX_LENGTH, is_dns1123_label, is_dns1123_subdomain,
    validate_path_segment_name,
};
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::{Value, json};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::error::X509Error;
use x509_parser::prelude::FromDer;

use super::pem;
use crate::kinds::validation::{Fields, semantic_eq, strings};
use crate::meta;
use crate::registry::{Strategy, Subresource};

/// The signer name v1 refuses for new requests.
const LEGACY_UNKNOWN_SIGNER_NAME: &str = "kubernetes.io/legacy-unknown";
/// The shortest expirationSeconds a request may ask for.
const MIN_EXPIRATION_SECONDS: i64 = 600;

/// The key usages a request may name, sorted as upstream lists them.
const KEY_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// Conditions that may only be `True`.
const TRUE_ONLY_CONDITIONS: &[&str] = &["Approved", "Denied", "Failed"];

/// The bytes of a `format: byte` field (base64 in JSON).
fn bytes_of(v: &Value, key: &str) -> Vec<u8> {
    STANDARD.decode(v.s(key)).unwrap_or_default()
}

/// Upstream's `ParseCSR` followed by `CheckSignature`, with Go's error texts where the
/// failure is the same (the texts of malformed DER differ from Go's parser).
fn check_request(pem_bytes: &[u8]) -> Result<(), String> {
    let block = match pem::decode(pem_bytes) {
        Some((block, _)) if block.kind == "CERTIFICATE REQUEST" => block,
        _ => return Err("PEM block type must be CERTIFICATE REQUEST".into()),
    };
    let csr = match X509CertificationRequest::from_der(&block.bytes) {
        Ok((rest, _)) if !rest.is_empty() => return Err("asn1: syntax error: trailing data".into()),
        Ok((_, csr)) => csr,
        Err(_) => return Err("x509: malformed certificate request".into()),
    };
    match csr.verify_signature() {
        // Algorithms the verifier lacks (P-521, SHA-512 ECDSA) are accepted rather than
        // refusing requests Go would verify.
        Ok(()) | Err(X509Error::SignatureUnsupportedAlgorithm) => Ok(()),
        Err(_) => {
            let key_algorithm = csr
                .certification_request_info
                .subject_pki
                .algorithm
                .algorithm
                .to_id_string();
            Err(match key_algorithm.as_str() {
                "1.2.840.10045.2.1" => "x509: ECDSA verification failure",
                "1.3.101.112" => "x509: Ed25519 verification failure",
                _ => "crypto/rsa: verification error",
            }
            .into())
        }
    }
}

/// Upstream's `validateCertificate`: PEM CERTIFICATE blocks without headers, each
/// holding certificates.
fn check_certificate(pem_bytes: &[u8]) -> Result<(), String> {
    if pem_bytes.is_empty() {
        return Ok(());
    }
    let mut rest = pem_bytes;
    let mut blocks = 0;
    while let Some((block, next)) = pem::decode(rest) {
        if block.kind != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {}",
                serde_json::to_string(&block.kind).unwrap_or_default()
            ));
        }
        if block.has_headers {
            return Err("no PEM block headers are permitted".into());
        }
        blocks += 1;
        let mut der = block.bytes.as_slice();
        let mut certs = 0;
        while !der.is_empty() {
            match x509_parser::parse_x509_certificate(der) {
                Ok((after, _)) => {
                    der = after;
                    certs += 1;
                }
                Err(_) => return Err("x509: malformed certificate".into()),
            }
        }
        if certs == 0 {
            return Err("found CERTIFICATE PEM block containing 0 certificates".into());
        }
        rest = next;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}

/// Core's `ValidateSignerName`: `example.com/signer-name`.
pub fn validate_signer_name(path: &Path, signer: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    if signer.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let segments: Vec<&str> = signer.split('/').collect();
    let [domain, signer_path] = segments.as_slice() else {
        errs.push(FieldError::invalid(
            path,
            signer,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
        return errs;
    };
    if domain.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(FieldError::too_long(
            path,
            "",
            DNS1123_SUBDOMAIN_MAX_LENGTH as i64,
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for label in &labels {
        let problems = is_dns1123_label(label);
        if !problems.is_empty() {
            for p in problems {
                errs.push(FieldError::invalid(
                    path,
                    *domain,
                    format!("validating label {}: {p}", quote(label)),
                ));
            }
            break;
        }
    }
    if labels.len() < 2 {
        errs.push(FieldError::invalid(
            path,
            *domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    for label in signer_path.split('.') {
        let problems = is_dns1123_subdomain(label);
        if !problems.is_empty() {
            for p in problems {
                errs.push(FieldError::invalid(
                    path,
                    *signer_path,
                    format!("validating label {}: {p}", quote(label)),
                ));
            }
            break;
        }
    }
    let max_path = DNS1123_SUBDOMAIN_MAX_LENGTH + DNS1123_LABEL_MAX_LENGTH + 1;
    let max_signer = DNS1123_SUBDOMAIN_MAX_LENGTH + max_path + 1;
    if signer.len() > max_signer {
        errs.push(FieldError::too_long(path, "", max_signer as i64));
    }
    errs
}

/// What an operation may do or tolerate (upstream's `certificateValidationOptions`).
#[derive(Debug, Clone, Copy, Default)]
struct Opts {
    allow_setting_approval_conditions: bool,
    allow_setting_certificate: bool,
    allow_both_approved_and_denied: bool,
    allow_legacy_signer_name: bool,
    allow_duplicate_condition_types: bool,
    allow_empty_condition_type: bool,
    allow_arbitrary_certificate: bool,
    allow_unknown_usages: bool,
    allow_duplicate_usages: bool,
}

fn condition_types(csr: &Value) -> Vec<&str> {
    csr.f("status")
        .a("conditions")
        .iter()
        .map(|c| c.s("type"))
        .collect()
}

/// Whether a string occurs twice (a set, so that long client lists stay linear).
fn has_duplicates<'a>(items: impl IntoIterator<Item = &'a str>) -> bool {
    let mut seen = HashSet::new();
    !items.into_iter().all(|x| seen.insert(x))
}

impl Opts {
    /// Upstream's `getValidationOptions`: compatibility with what `old` already has.
    fn new(new: &Value, old: Option<&Value>) -> Self {
        let Some(old) = old else {
            return Self::default();
        };
        let types = condition_types(old);
        let usages = strings(old.f("spec").f("usages"));
        let old_cert = bytes_of(old.f("status"), "certificate");
        Self {
            allow_both_approved_and_denied: types.contains(&"Approved")
                && types.contains(&"Denied"),
            allow_legacy_signer_name: old.f("spec").s("signerName") == LEGACY_UNKNOWN_SIGNER_NAME,
            allow_duplicate_condition_types: has_duplicates(types.iter().copied()),
            allow_empty_condition_type: types.contains(&""),
            allow_arbitrary_certificate: bytes_of(new.f("status"), "certificate") == old_cert
                || check_certificate(&old_cert).is_err(),
            allow_unknown_usages: usages.iter().any(|u| !KEY_USAGES.contains(u)),
            allow_duplicate_usages: has_duplicates(usages.iter().copied()),
            ..Self::default()
        }
    }
}

fn validate_conditions(csr: &Value, opts: Opts) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = Path::new("status").child("conditions");
    let mut seen: HashSet<&str> = HashSet::new();
    let (mut approved, mut denied) = (false, false);
    for (i, c) in csr.f("status").a("conditions").iter().enumerate() {
        let p = path.index(i);
        let ty = c.s("type");
        if !opts.allow_empty_condition_type && ty.is_empty() {
            errs.push(FieldError::required(&p.child("type"), ""));
        }
        let allowed: &[&str] = if TRUE_ONLY_CONDITIONS.contains(&ty) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        let status = c.s("status");
        if status.is_empty() {
            errs.push(FieldError::required(&p.child("status"), ""));
        } else if !allowed.contains(&status) {
            errs.push(FieldError::not_supported(
                &p.child("status"),
                status,
                allowed,
            ));
        }
        if !opts.allow_both_approved_and_denied {
            let clash = match ty {
                "Approved" => {
                    approved = true;
                    denied
                }
                "Denied" => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if clash {
                errs.push(FieldError::invalid(
                    &p.child("type"),
                    ty,
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !opts.allow_duplicate_condition_types && !seen.insert(ty) {
            errs.push(FieldError::duplicate(&p.child("type"), ty));
        }
    }
    errs
}

/// Upstream's `validateCertificateSigningRequest`.
fn validate_csr(csr: &Value, opts: Opts) -> ErrorList {
    let mut errs = ErrorList::new();
    let spec = csr.f("spec");
    let sp = Path::new("spec");
    if let Err(e) = check_request(&bytes_of(spec, "request")) {
        // A missing request is Go's nil byte slice, which shows as `null`.
        let shown = spec.get("request").cloned().unwrap_or(Value::Null);
        errs.push(FieldError::invalid(&sp.child("request"), shown, e));
    }
    let usages = strings(spec.f("usages"));
    if usages.is_empty() {
        errs.push(FieldError::required(&sp.child("usages"), ""));
    }
    if !opts.allow_unknown_usages {
        for (i, &u) in usages.iter().enumerate() {
            if !KEY_USAGES.contains(&u) {
                errs.push(FieldError::not_supported(
                    &sp.child("usages").index(i),
                    u,
                    KEY_USAGES,
                ));
            }
        }
    }
    if !opts.allow_duplicate_usages {
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, &u) in usages.iter().enumerate() {
            if !seen.insert(u) {
                errs.push(FieldError::duplicate(&sp.child("usages").index(i), u));
            }
        }
    }
    let signer = spec.s("signerName");
    if !opts.allow_legacy_signer_name && signer == LEGACY_UNKNOWN_SIGNER_NAME {
        errs.push(FieldError::invalid(
            &sp.child("signerName"),
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errs.extend(validate_signer_name(&sp.child("signerName"), signer));
    }
    if let Some(secs) = spec.i("expirationSeconds")
        && secs < MIN_EXPIRATION_SECONDS
    {
        errs.push(FieldError::invalid(
            &sp.child("expirationSeconds"),
            secs,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errs.extend(validate_conditions(csr, opts));
    if !opts.allow_arbitrary_certificate
        && let Err(e) = check_certificate(&bytes_of(csr.f("status"), "certificate"))
    {
        errs.push(FieldError::invalid(
            &Path::new("status").child("certificate"),
            "<certificate data>",
            e,
        ));
    }
    errs
}

fn conditions_of<'a>(csr: &'a Value, ty: &str) -> Vec<&'a Value> {
    csr.f("status")
        .a("conditions")
        .iter()
        .filter(|c| c.s("type") == ty)
        .collect()
}

/// Upstream's `validateCertificateSigningRequestUpdate` (the metadata part is the
/// registry's).
fn validate_csr_update(new: &Value, old: &Value, opts: Opts) -> ErrorList {
    let mut errs = validate_csr(new, opts);
    let cp = Path::new("status").child("conditions");
    for ty in ["Approved", "Denied", "Failed"] {
        if conditions_of(new, ty).len() < conditions_of(old, ty).len() {
            errs.push(FieldError::forbidden(
                &cp,
                format!("updates may not remove a condition of type {}", quote(ty)),
            ));
        }
    }
    if !opts.allow_setting_approval_conditions {
        for ty in ["Approved", "Denied"] {
            let (o, n) = (conditions_of(old, ty), conditions_of(new, ty));
            if n.len() > o.len() {
                errs.push(FieldError::forbidden(
                    &cp,
                    format!("updates may not add a condition of type {}", quote(ty)),
                ));
            } else if n.len() == o.len() && !o.iter().zip(&n).all(|(a, b)| semantic_eq(a, b)) {
                // Upstream appends go-cmp's diff of the two lists here.
                errs.push(FieldError::forbidden(
                    &cp,
                    format!(
                        "updates may not modify a condition of type {}\n-{}\n+{}",
                        quote(ty),
                        Value::from(o.into_iter().cloned().collect::<Vec<_>>()),
                        Value::from(n.into_iter().cloned().collect::<Vec<_>>())
                    ),
                ));
            }
        }
    }
    let (new_cert, old_cert) = (
        bytes_of(new.f("status"), "certificate"),
        bytes_of(old.f("status"), "certificate"),
    );
    if new_cert != old_cert {
        let cert = Path::new("status").child("certificate");
        if !opts.allow_setting_certificate {
            errs.push(FieldError::forbidden(
                &cert,
                "updates may not set certificate content",
            ));
        } else if !old_cert.is_empty() {
            errs.push(FieldError::forbidden(
                &cert,
                "updates may not modify existing certificate content",
            ));
        }
    }
    errs
}

/// Upstream's `populateConditionTimestamps`: a condition without `lastUpdateTime` gets
/// now; one without `lastTransitionTime` keeps that of a stored condition of the same
/// type and status, or gets now.
fn stamp_condition_times(conditions: &mut Value, old: &Value) {
    let now = meta::now_rfc3339();
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    for c in list.iter_mut().filter(|c| c.is_object()) {
        if c.s("lastUpdateTime").is_empty() {
            c["lastUpdateTime"] = json!(now);
        }
        if c.s("lastTransitionTime").is_empty() {
            let kept = old
                .f("status")
                .a("conditions")
                .iter()
                .find(|o| {
                    o.s("type") == c.s("type")
                        && o.s("status") == c.s("status")
                        && !o.s("lastTransitionTime").is_empty()
                })
                .map(|o| o.s("lastTransitionTime").to_string());
            c["lastTransitionTime"] = json!(kept.unwrap_or_else(|| now.clone()));
        }
    }
}

/// The CertificateSigningRequest strategy.
pub struct CsrStrategy;

/// Records who asked on a new request (`spec.username`, `uid`, `groups`, `extra`), as
/// upstream's strategy does from the request's user; empty values are left out.
pub fn record_requester(obj: &mut Value, user: &crate::auth::UserInfo) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if !user.name.is_empty() {
        spec.insert("username".into(), json!(user.name));
    }
    if !user.uid.is_empty() {
        spec.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        spec.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        spec.insert("extra".into(), json!(user.extra));
    }
}

impl Strategy for CsrStrategy {
    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        let Some(o) = obj.as_object_mut() else {
            return;
        };
        if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
            // The requester's identity is the server's to record, never the client's.
            for key in ["username", "uid", "groups", "extra"] {
                spec.remove(key);
            }
        }
        // Be explicit that users cannot create pre-approved requests.
        o.insert("status".into(), json!({}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, _has_status: bool) {
        // Requests are immutable after creation except through subresources.
        if let Some(o) = new.as_object_mut() {
            for key in ["spec", "status"] {
                match old.get(key) {
                    Some(v) => {
                        o.insert(key.into(), v.clone());
                    }
                    None => {
                        o.remove(key);
                    }
                }
            }
        }
    }

    fn prepare_for_subresource_update(&self, sub: Subresource, new: &mut Value, old: &Value) {
        if sub != Subresource::Approval {
            return;
        }
        // An approval changes the conditions and nothing else.
        let conditions = new.f("status").get("conditions").cloned();
        let rv = new.f("metadata").get("resourceVersion").cloned();
        let managed = new.f("metadata").get("managedFields").cloned();
        *new = old.clone();
        if !new.get("status").is_some_and(Value::is_object) {
            new["status"] = json!({});
        }
        match conditions {
            Some(mut c) => {
                stamp_condition_times(&mut c, old);
                new["status"]["conditions"] = c;
            }
            None => {
                if let Some(s) = new["status"].as_object_mut() {
                    s.remove("conditions");
                }
            }
        }
        meta::set_meta(new, "resourceVersion", rv);
        meta::set_meta(new, "managedFields", managed);
    }

    fn validate_subresource_update(&self, sub: Subresource, new: &Value, old: &Value) -> ErrorList {
        let opts = Opts::new(new, Some(old));
        let opts = if sub == Subresource::Approval {
            // Upstream's `ValidateCertificateSigningRequestApprovalUpdate`.
            Opts {
                allow_setting_approval_conditions: true,
                ..opts
            }
        } else {
            opts
        };
        validate_csr_update(new, old, opts)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_csr(obj, Opts::new(obj, None))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_csr_update(new, old, Opts::new(new, Some(old)))
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> ErrorList {
        let opts = Opts {
            allow_setting_certificate: true,
            ..Opts::new(new, Some(old))
        };
        validate_csr_update(new, old, opts)
    }

    fn validate_name(&self, name: &str, prefix: bool) -> Vec<String> {
        // Upstream accepts any name; the store still needs one path segment.
        validate_path_segment_name(name, prefix)
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![("spec.signerName", obj.f("spec").s("signerName").to_string())]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_util::texts;

    /// A kubelet client CSR (P-256, `O=system:nodes, CN=system:node:agent-1`), base64
    /// of its PEM as clients send it.
    pub(crate) const NODE_CSR: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlIdk1JR1hBZ0VBTURVeEZUQVRCZ05WQkFvTURITjVjM1JsYlRwdWIyUmxjekVjTUJvR0ExVUVBd3dUYzNsegpkR1Z0T201dlpHVTZZV2RsYm5RdE1UQlpNQk1HQnlxR1NNNDlBZ0VHQ0NxR1NNNDlBd0VIQTBJQUJNZWZTSGhyCkk1REFNT2x3bHJGRDVmbHlITGxReWlrNTg4K0V3TFFXczh2aWFMTkxudHNwQnBhSU1NQ0ZCRE1pODFSeHJrcjkKL3liRTN1WWQrak9odXkyZ0FEQUtCZ2dxaGtqT1BRUURBZ05IQURCRUFpQW16b2NQbjdDY3ZhNzFaaUZ5SmtqbApBK3ZHc1FRd1VPVzNRZThBRFdYMjBnSWdkRVhxTzBxZ093YVhob20za2pQdHp1d0MrYnlPL29HRUo3QmJlV3V0Ck5rcz0KLS0tLS1FTkQgQ0VSVElGSUNBVEUgUkVRVUVTVC0tLS0tCg==";

    pub(crate) fn node_csr() -> Value {
        json!({"metadata": {"name": "node-csr-abc"}, "spec": {
            "request": NODE_CSR,
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
            "expirationSeconds": 86400
        }})
    }

    #[test]
    fn kubelet_requests_are_accepted() {
        let mut csr = node_csr();
        csr["spec"]["username"] = json!("mallory");
        CsrStrategy.prepare_for_create(&mut csr, true);
        assert!(csr["spec"].get("username").is_none());
        assert_eq!(csr["status"], json!({}));
        assert_eq!(texts(CsrStrategy.validate(&csr)), Vec::<String>::new());
    }

    #[test]
    fn bad_requests_report_upstream_texts() {
        let mut csr = node_csr();
        csr["spec"]["request"] = json!(STANDARD.encode("not a pem"));
        csr["spec"]["usages"] = json!(["client auth", "flying", "client auth"]);
        csr["spec"]["signerName"] = json!("kubernetes.io/legacy-unknown");
        csr["spec"]["expirationSeconds"] = json!(599);
        let got = texts(CsrStrategy.validate(&csr));
        assert_eq!(got.len(), 5, "{got:#?}");
        assert_eq!(
            got[0],
            "spec.request: Invalid value: \"bm90IGEgcGVt\": PEM block type must be CERTIFICATE REQUEST"
        );
        assert!(got[1].starts_with("spec.usages[1]: Unsupported value: \"flying\": supported values: \"any\", \"cert sign\""));
        assert_eq!(got[2], "spec.usages[2]: Duplicate value: \"client auth\"");
        assert_eq!(
            got[3],
            "spec.signerName: Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version"
        );
        assert_eq!(
            got[4],
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)"
        );
    }

    #[test]
    fn signatures_are_checked() {
        let pem = STANDARD.decode(NODE_CSR).unwrap_or_default();
        assert_eq!(check_request(&pem), Ok(()));
        let text = String::from_utf8_lossy(&pem).into_owned();
        // Flip one base64 character inside the signature.
        let tampered = text.replacen("Nks=", "Nkt=", 1);
        assert!(check_request(tampered.as_bytes()).is_err());
    }

    #[test]
    fn updates_keep_the_stored_spec_and_status() {
        let mut old = node_csr();
        CsrStrategy.prepare_for_create(&mut old, true);
        let mut new = old.clone();
        new["spec"]["usages"] = json!(["server auth"]);
        new["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
        new["metadata"]["labels"] = json!({"a": "b"});
        CsrStrategy.prepare_for_update(&mut new, &old, true);
        assert_eq!(new["spec"], old["spec"]);
        assert_eq!(new["status"], json!({}));
        assert_eq!(new["metadata"]["labels"], json!({"a": "b"}));
        assert!(CsrStrategy.validate_update(&new, &old).is_empty());
    }

    #[test]
    fn signer_names_follow_upstream() {
        let p = Path::new("s");
        assert!(validate_signer_name(&p, "example.com/my-signer").is_empty());
        assert_eq!(
            texts(validate_signer_name(&p, "example")),
            [
                "s: Invalid value: \"example\": must be a fully qualified domain and path of the form 'example.com/signer-name'"
            ]
        );
        assert_eq!(
            texts(validate_signer_name(&p, "example/x")),
            [
                "s: Invalid value: \"example\": should be a domain with at least two segments separated by dots"
            ]
        );
    }

    #[test]
    fn status_updates_may_set_the_certificate_once() {
        let mut old = node_csr();
        CsrStrategy.prepare_for_create(&mut old, true);
        old["status"] = json!({"conditions": [{"type": "Approved", "status": "True", "reason": "AutoApproved"}]});
        let mut new = old.clone();
        new["status"]["certificate"] = json!(STANDARD.encode("garbage"));
        let got = texts(CsrStrategy.validate_status_update(&new, &old));
        assert_eq!(
            got,
            [
                "status.certificate: Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block"
            ]
        );
        new["status"]["conditions"] = json!([]);
        let got = texts(CsrStrategy.validate_status_update(&new, &old));
        assert!(got.contains(&"status.conditions: Forbidden: updates may not remove a condition of type \"Approved\"".to_string()), "{got:?}");
    }
}
