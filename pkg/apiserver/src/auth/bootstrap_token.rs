//! Bootstrap tokens (upstream's `bootstrap` token authenticator): `<id>.<secret>` bearer
//! tokens backed by `kube-system` Secrets named `bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token`, for nodes joining a cluster.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::UserInfo;
use crate::ApiServer;

/// The Secret type of bootstrap tokens.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";

/// Splits `<id>.<secret>` (6 and 16 characters of `[a-z0-9]`).
fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

fn data(secret: &Value, key: &str) -> Option<String> {
    let raw = secret["data"][key].as_str()?;
    let bytes = STANDARD.decode(raw).ok()?;
    String::from_utf8(bytes).ok()
}

/// The user a bootstrap token belongs to: `system:bootstrap:<id>` in
/// `system:bootstrappers` and the secret's `auth-extra-groups`.
pub fn authenticate(server: &ApiServer, token: &str) -> Option<UserInfo> {
    let (id, secret_part) = parse(token)?;
    let snap = server.registry.snapshot();
    let res = snap.get("", "v1", "secrets")?;
    let key = res
        .info
        .key(Some("kube-system"), &format!("bootstrap-token-{id}"));
    let kv = server.generic.store().cache().get(&key)?;
    let secret: Value = serde_json::from_slice(&kv.value).ok()?;
    from_secret(&secret, id, secret_part)
}

fn from_secret(secret: &Value, id: &str, secret_part: &str) -> Option<UserInfo> {
    if secret["type"].as_str() != Some(SECRET_TYPE)
        || !secret["metadata"]["deletionTimestamp"].is_null()
        || data(secret, "token-id").as_deref() != Some(id)
        || data(secret, "token-secret").as_deref() != Some(secret_part)
        || data(secret, "usage-bootstrap-authentication").as_deref() != Some("true")
    {
        return None;
    }
    if let Some(exp) = data(secret, "expiration") {
        let exp: jiff::Timestamp = exp.parse().ok()?;
        if exp <= jiff::Timestamp::now() {
            return None;
        }
    }
    let mut groups = vec!["system:bootstrappers".to_string()];
    if let Some(extra) = data(secret, "auth-extra-groups") {
        for g in extra.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            // Upstream accepts only groups under system:bootstrappers:.
            if !g.starts_with("system:bootstrappers:") {
                return None;
            }
            groups.push(g.to_string());
        }
    }
    Some(UserInfo::new(format!("system:bootstrap:{id}"), groups))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn a_valid_token_authenticates_and_expired_or_unusable_ones_do_not() {
        let mut s = json!({"type": SECRET_TYPE, "metadata": {"name": "bootstrap-token-abcdef"}, "data": {
            "token-id": b64("abcdef"), "token-secret": b64("0123456789abcdef"),
            "usage-bootstrap-authentication": b64("true"),
            "auth-extra-groups": b64("system:bootstrappers:k1s:default-node-token"),
        }});
        let u = from_secret(&s, "abcdef", "0123456789abcdef").expect("valid");
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert_eq!(
            u.groups,
            vec![
                "system:bootstrappers",
                "system:bootstrappers:k1s:default-node-token",
                "system:authenticated"
            ]
        );
        assert!(from_secret(&s, "abcdef", "0123456789abcdeX").is_none());
        s["data"]["expiration"] = json!(b64("2001-01-01T00:00:00Z"));
        assert!(from_secret(&s, "abcdef", "0123456789abcdef").is_none());
        assert!(parse("abcdef.0123456789abcdef").is_some());
        assert!(parse("ABCDEF.0123456789abcdef").is_none());
        assert!(parse("eyJhbGciOi.x.y").is_none());
    }
}
