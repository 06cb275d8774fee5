//! Service account tokens: the JWTs the TokenRequest subresource issues (upstream's
//! `pkg/serviceaccount` claims) signed with the cluster's service-account key (ES256 for
//! the P-256 key k1s creates, RS256 for an RSA key put in its place), and their checks
//! when they come back as bearer tokens.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Map, Value, json};

use super::UserInfo;
use crate::ApiServer;

/// Why a key could not be used or a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// The signing key is not a PKCS#8 P-256 or RSA private key.
    #[error("unsupported service account signing key: {0}")]
    Key(String),
    /// Signing failed.
    #[error("cannot sign the token")]
    Sign,
    /// Not a JWT of this issuer (another authenticator may know it).
    #[error("not a token of this issuer")]
    Foreign,
    /// A token of this issuer that must be refused.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
}

/// A reference to a named object with its uid, as the `kubernetes.io` claim records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRef {
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

/// What a token says about who it was issued to (the `kubernetes.io` private claim).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrivateClaims {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: ObjectRef,
    /// The pod the token is bound to.
    pub pod: Option<ObjectRef>,
    /// The secret the token is bound to.
    pub secret: Option<ObjectRef>,
    /// The node the token is bound to (or the node of its pod).
    pub node: Option<ObjectRef>,
    /// The token's id (`jti`), read from a verified token.
    pub jti: Option<String>,
}

impl PrivateClaims {
    /// The user name upstream gives the service account.
    pub fn user_name(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account.name
        )
    }
}

/// The issuer of legacy (secret-based) service account tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

enum Signer {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

/// Issues and verifies the service account tokens of one issuer.
pub struct TokenIssuer {
    signer: Signer,
    public: Vec<u8>,
    kid: String,
    /// `iss` of issued tokens (`--service-account-issuer`).
    pub issuer: String,
    /// The API audiences: the default `aud` of issued tokens, and what a presented
    /// token must name one of.
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// DER `SubjectPublicKeyInfo` prefix of an uncompressed P-256 point
/// (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes).
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// DER AlgorithmIdentifier of rsaEncryption with NULL parameters.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The body of the first PEM block.
fn pem_body(pem: &str) -> Result<Vec<u8>, TokenError> {
    let b64: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD
        .decode(b64)
        .map_err(|e| TokenError::Key(format!("PEM: {e}")))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl TokenIssuer {
    /// A issuer from a PEM private key (PKCS#8, as `service-account.key`).
    pub fn from_pem(pem: &str, issuer: &str, audiences: Vec<String>) -> Result<Self, TokenError> {
        Self::from_pkcs8(&pem_body(pem)?, issuer, audiences)
    }

    /// An issuer from a DER PKCS#8 private key: P-256 signs ES256, RSA signs RS256.
    pub fn from_pkcs8(
        pkcs8: &[u8],
        issuer: &str,
        audiences: Vec<String>,
    ) -> Result<Self, TokenError> {
        let rng = SystemRandom::new();
        let (signer, public, spki) = match EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &rng,
        ) {
            Ok(k) => {
                let public = k.public_key().as_ref().to_vec();
                let mut spki = P256_SPKI_PREFIX.to_vec();
                spki.extend_from_slice(&public);
                (Signer::Es256(k), public, spki)
            }
            Err(ec) => {
                let k = RsaKeyPair::from_pkcs8(pkcs8)
                    .map_err(|rsa| TokenError::Key(format!("{ec}; {rsa}")))?;
                let public = k.public_key().as_ref().to_vec();
                let mut bits = vec![0u8];
                bits.extend_from_slice(&public);
                let mut content = RSA_ALGORITHM.to_vec();
                content.extend(der(0x03, &bits));
                (Signer::Rs256(k), public, der(0x30, &content))
            }
        };
        // Upstream's key id: the SHA-256 of the public key's DER, base64url.
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &spki));
        Ok(Self {
            signer,
            public,
            kid,
            issuer: issuer.to_string(),
            audiences,
        })
    }

    fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Es256(_) => "ES256",
            Signer::Rs256(_) => "RS256",
        }
    }

    /// Signs the claims into a compact JWS.
    pub fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        let header = json!({"alg": self.alg(), "kid": self.kid});
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Es256(k) => k
                .sign(&rng, input.as_bytes())
                .map_err(|_| TokenError::Sign)?
                .as_ref()
                .to_vec(),
            Signer::Rs256(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| TokenError::Sign)?;
                sig
            }
        };
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(input)
    }

    /// Issues a token for a service account, valid from now for `expiration_seconds`;
    /// returns it and its expiry (unix seconds).
    pub fn issue(
        &self,
        claims: &PrivateClaims,
        audiences: &[String],
        expiration_seconds: i64,
    ) -> Result<(String, i64), TokenError> {
        let now = now_unix();
        let exp = now + expiration_seconds;
        let reference = |r: &ObjectRef| json!({"name": r.name, "uid": r.uid});
        let mut k8s = Map::new();
        k8s.insert("namespace".into(), json!(claims.namespace));
        k8s.insert("serviceaccount".into(), reference(&claims.service_account));
        for (key, r) in [
            ("pod", &claims.pod),
            ("secret", &claims.secret),
            ("node", &claims.node),
        ] {
            if let Some(r) = r {
                k8s.insert(key.into(), reference(r));
            }
        }
        let body = json!({
            "aud": audiences,
            "exp": exp,
            "iat": now,
            "iss": self.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": claims.user_name(),
        });
        Ok((self.sign(&body)?, exp))
    }

    /// Checks a token's signature, issuer, validity period and audience and returns its
    /// private claims; whether the objects it names still exist is the caller's check.
    /// A token that is not a JWT of this issuer is `Foreign`.
    pub fn verify(&self, token: &str) -> Result<PrivateClaims, TokenError> {
        self.verify_at(token, now_unix(), &self.audiences)
    }

    /// [`TokenIssuer::verify`] for other audiences (a TokenReview's).
    pub fn verify_for(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<PrivateClaims, TokenError> {
        self.verify_at(token, now_unix(), audiences)
    }

    fn verify_at(
        &self,
        token: &str,
        now: i64,
        audiences: &[String],
    ) -> Result<PrivateClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Foreign);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Foreign)
        };
        let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| TokenError::Foreign)?;
        let claims: Value = serde_json::from_slice(&decode(p)?).map_err(|_| TokenError::Foreign)?;
        // Upstream's authenticator only takes tokens whose issuer it knows.
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenError::Foreign);
        }
        self.check_signature(token, &header, h, p, s)?;
        self.bound_claims(&claims, now, audiences)
    }

    /// Checks the algorithm and signature of a compact JWS split into its parts.
    fn check_signature(
        &self,
        token: &str,
        header: &Value,
        h: &str,
        p: &str,
        s: &str,
    ) -> Result<(), TokenError> {
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Foreign)
        };
        if header.get("alg").and_then(Value::as_str) != Some(self.alg()) {
            return Err(TokenError::Invalid("unexpected signing algorithm"));
        }
        let sig = decode(s)?;
        let signed = &token[..h.len() + 1 + p.len()];
        let ok = match self.signer {
            Signer::Es256(_) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.public)
                    .verify(signed.as_bytes(), &sig)
            }
            Signer::Rs256(_) => {
                UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.public)
                    .verify(signed.as_bytes(), &sig)
            }
        };
        if ok.is_err() {
            return Err(TokenError::Invalid("signature does not verify"));
        }
        Ok(())
    }

    /// Checks a legacy token (issuer `kubernetes/serviceaccount`, as the tokens
    /// controller writes into `kubernetes.io/service-account-token` Secrets): its
    /// signature, and returns its claims with the secret named. Legacy tokens do not
    /// expire and name no audience.
    pub fn verify_legacy(&self, token: &str) -> Result<PrivateClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Foreign);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Foreign)
        };
        let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| TokenError::Foreign)?;
        let claims: Value = serde_json::from_slice(&decode(p)?).map_err(|_| TokenError::Foreign)?;
        if claims.get("iss").and_then(Value::as_str) != Some(LEGACY_ISSUER) {
            return Err(TokenError::Foreign);
        }
        self.check_signature(token, &header, h, p, s)?;
        let claim = |k: &str| {
            claims
                .get(format!("kubernetes.io/serviceaccount/{k}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let private = PrivateClaims {
            namespace: claim("namespace"),
            service_account: ObjectRef {
                name: claim("service-account.name"),
                uid: claim("service-account.uid"),
            },
            secret: Some(ObjectRef {
                name: claim("secret.name"),
                uid: String::new(),
            }),
            ..PrivateClaims::default()
        };
        if private.namespace.is_empty()
            || private.service_account.name.is_empty()
            || private.secret.as_ref().is_some_and(|s| s.name.is_empty())
            || claims.get("sub").and_then(Value::as_str) != Some(private.user_name().as_str())
        {
            return Err(TokenError::Invalid("subject does not match the claims"));
        }
        Ok(private)
    }

    /// Signs a legacy token for a service account and the secret that will hold it.
    pub fn issue_legacy(
        &self,
        namespace: &str,
        service_account: &ObjectRef,
        secret_name: &str,
    ) -> Result<String, TokenError> {
        let claims = json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": service_account.name,
            "kubernetes.io/serviceaccount/service-account.uid": service_account.uid,
            "sub": format!("system:serviceaccount:{namespace}:{}", service_account.name),
        });
        self.sign(&claims)
    }

    /// The claims of a bound token whose signature was checked.
    fn bound_claims(
        &self,
        claims: &Value,
        now: i64,
        audiences: &[String],
    ) -> Result<PrivateClaims, TokenError> {
        let int = |name: &str| claims.get(name).and_then(Value::as_i64);
        match int("exp") {
            Some(exp) if exp > now => {}
            _ => return Err(TokenError::Invalid("token has expired")),
        }
        if int("nbf").is_some_and(|nbf| nbf > now + 60) {
            return Err(TokenError::Invalid("token is not valid yet"));
        }
        let aud: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !aud.iter().any(|a| audiences.iter().any(|b| b == a)) {
            return Err(TokenError::Invalid(
                "token audiences is invalid for the target audiences",
            ));
        }
        let k8s = claims
            .get("kubernetes.io")
            .ok_or(TokenError::Invalid("no kubernetes.io claim"))?;
        let reference = |v: Option<&Value>| -> Option<ObjectRef> {
            let v = v?;
            Some(ObjectRef {
                name: v.get("name")?.as_str()?.to_string(),
                uid: v
                    .get("uid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            })
        };
        let private = PrivateClaims {
            namespace: k8s
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            service_account: reference(k8s.get("serviceaccount"))
                .ok_or(TokenError::Invalid("no service account claim"))?,
            pod: reference(k8s.get("pod")),
            secret: reference(k8s.get("secret")),
            node: reference(k8s.get("node")),
            jti: claims
                .get("jti")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        if private.namespace.is_empty()
            || claims.get("sub").and_then(Value::as_str) != Some(private.user_name().as_str())
        {
            return Err(TokenError::Invalid("subject does not match the claims"));
        }
        Ok(private)
    }
}

/// Objects a token names stay valid this long after their deletion starts (upstream's
/// grace for a pod shutting down).
const DELETION_GRACE_SECONDS: i64 = 60;

/// Whether the object a token names still exists, with the same uid, and is not being
/// deleted for longer than the grace.
fn live(server: &ApiServer, plural: &str, namespace: Option<&str>, r: &ObjectRef) -> bool {
    let snapshot = server.registry.snapshot();
    let Some(resource) = snapshot.get("", "v1", plural) else {
        return false;
    };
    let Ok(obj) = server.generic.get(resource, namespace, &r.name) else {
        return false;
    };
    let meta = &obj["metadata"];
    if meta["uid"].as_str() != Some(r.uid.as_str()) {
        return false;
    }
    match meta["deletionTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    {
        Some(t) => t.as_second() + DELETION_GRACE_SECONDS > now_unix(),
        None => true,
    }
}

/// Authenticates a bearer token as a service account: a valid token of this server's
/// issuer whose service account (and bound pod, secret or node) still exists.
pub fn authenticate(server: &ApiServer, token: &str) -> Option<UserInfo> {
    let issuer = server.service_account_tokens.get()?;
    authenticate_for(server, token, &issuer.audiences)
}

/// [`authenticate`] for tokens meant for other audiences (a TokenReview's).
pub fn authenticate_for(server: &ApiServer, token: &str, audiences: &[String]) -> Option<UserInfo> {
    let issuer = server.service_account_tokens.get()?;
    let claims = match issuer.verify_for(token, audiences) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "bearer token refused");
            return None;
        }
    };
    let ns = Some(claims.namespace.as_str());
    let mut ok = live(server, "serviceaccounts", ns, &claims.service_account);
    if let Some(pod) = &claims.pod {
        ok &= live(server, "pods", ns, pod);
    } else if let Some(node) = &claims.node {
        ok &= live(server, "nodes", None, node);
    }
    if let Some(secret) = &claims.secret {
        ok &= live(server, "secrets", ns, secret);
    }
    if !ok {
        tracing::debug!(user = %claims.user_name(), "service account token names objects that are gone");
        return None;
    }
    let mut user = UserInfo::new(
        claims.user_name(),
        [
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{}", claims.namespace),
        ],
    );
    user.uid = claims.service_account.uid.clone();
    // Upstream's extra attributes of service account users.
    let mut extra = |key: &str, value: &str| {
        if !value.is_empty() {
            user.extra.insert(
                format!("authentication.kubernetes.io/{key}"),
                vec![value.to_string()],
            );
        }
    };
    if let Some(jti) = &claims.jti {
        extra("credential-id", &format!("JTI={jti}"));
    }
    if let Some(pod) = &claims.pod {
        extra("pod-name", &pod.name);
        extra("pod-uid", &pod.uid);
    }
    if let Some(node) = &claims.node {
        extra("node-name", &node.name);
        extra("node-uid", &node.uid);
    }
    Some(user)
}

#[cfg(test)]
mod tests {
    use ring::signature::Ed25519KeyPair;

    use super::*;

    fn issuer() -> TokenIssuer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        TokenIssuer::from_pkcs8(
            pkcs8.as_ref(),
            "https://kubernetes.default.svc.cluster.local",
            vec!["https://kubernetes.default.svc.cluster.local".into()],
        )
        .unwrap()
    }

    fn claims() -> PrivateClaims {
        PrivateClaims {
            namespace: "ns".into(),
            service_account: ObjectRef {
                name: "default".into(),
                uid: "u1".into(),
            },
            pod: Some(ObjectRef {
                name: "p".into(),
                uid: "u2".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn issued_tokens_verify_and_carry_upstreams_claims() {
        let iss = issuer();
        let (token, exp) = iss.issue(&claims(), &iss.audiences.clone(), 3600).unwrap();
        assert!(exp > now_unix() + 3500);
        let mut verified = iss.verify(&token).unwrap();
        assert_eq!(verified.jti.take().map(|j| j.len()), Some(36));
        assert_eq!(verified, claims());
        let body: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(body["sub"], "system:serviceaccount:ns:default");
        assert_eq!(
            body["kubernetes.io"]["pod"],
            json!({"name": "p", "uid": "u2"})
        );
        assert_eq!(
            body["exp"].as_i64().unwrap() - body["iat"].as_i64().unwrap(),
            3600
        );
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"].as_str().unwrap().len(), 43);
    }

    #[test]
    fn tampered_expired_foreign_and_wrong_audience_tokens_are_refused() {
        let iss = issuer();
        let (token, exp) = iss.issue(&claims(), &iss.audiences.clone(), 600).unwrap();
        assert_eq!(
            iss.verify_at(&token, exp + 1, &iss.audiences),
            Err(TokenError::Invalid("token has expired"))
        );
        // Another key of the same issuer: the signature fails.
        let other = issuer();
        assert_eq!(
            other.verify(&token),
            Err(TokenError::Invalid("signature does not verify"))
        );
        let (wrong_aud, _) = iss.issue(&claims(), &["vault".to_string()], 600).unwrap();
        assert!(matches!(
            iss.verify(&wrong_aud),
            Err(TokenError::Invalid(_))
        ));
        assert_eq!(iss.verify("abc"), Err(TokenError::Foreign));
        assert_eq!(iss.verify("a.b.c"), Err(TokenError::Foreign));
        // Not a usable key.
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        assert!(TokenIssuer::from_pkcs8(ed.as_ref(), "x", vec![]).is_err());
    }

    #[test]
    fn der_lengths_use_the_long_form_past_127_bytes() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
