//! The join token, in k3s's format: `K10<sha256 of the CA PEM>::<user>:<secret>`.
//!
//! The CA hash lets a joining agent authenticate the server before sending the secret: it
//! downloads the CA bundle without verification, hashes it and compares (k3s
//! `pkg/clientaccess/token.go`). A "short" token is the bare secret.

use std::fmt::Write as _;

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use crate::PkiError;

/// Prefix of a full ("secure") token.
pub const TOKEN_PREFIX: &str = "K10";

/// User name the server token carries (`K10…::server:<secret>`).
pub const SERVER_TOKEN_USER: &str = "server";

/// A token split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    /// Hex SHA-256 of the cluster CA PEM, present in the full form only.
    pub ca_hash: Option<String>,
    /// The user name before the secret, if the credentials were `user:secret`.
    pub username: Option<String>,
    /// The secret (password) itself.
    pub secret: String,
}

/// Splits a full (`K10<hash>::[user:]secret`) or short (`secret`) token; `None` if it is not
/// a usable token (empty, whitespace, malformed full form).
pub fn parse_token(token: &str) -> Option<ParsedToken> {
    let token = token.trim();
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        return None;
    }
    let Some(rest) = token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|r| r.split_once("::"))
    else {
        return Some(ParsedToken {
            ca_hash: None,
            username: None,
            secret: token.to_string(),
        });
    };
    let (hash, creds) = rest;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (username, secret) = match creds.split_once(':') {
        Some((user, secret)) => (Some(user.to_string()), secret),
        None => (None, creds),
    };
    if secret.is_empty() {
        return None;
    }
    Some(ParsedToken {
        ca_hash: Some(hash.to_ascii_lowercase()),
        username,
        secret: secret.to_string(),
    })
}

/// The full server token for a CA and secret: `K10<ca_hash>::server:<secret>`.
pub fn format_token(ca_hash: &str, secret: &str) -> String {
    format!("{TOKEN_PREFIX}{ca_hash}::{SERVER_TOKEN_USER}:{secret}")
}

/// Hex SHA-256 of the CA certificate bundle exactly as stored on disk and served to agents —
/// the hash a full token carries.
pub fn ca_hash(ca_pem: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, ca_pem).as_ref())
}

/// The bootstrap token (`<id>.<secret>`, 6 and 16 characters of `[a-z0-9]`) that the
/// server and a joining agent both derive from the join token's secret: the server keeps it
/// as a `bootstrap-token-<id>` Secret, the agent authenticates with it to ask for its
/// certificates. Only holders of the join secret can derive it.
pub fn bootstrap_token(secret: &str) -> (String, String) {
    let mut input = b"k1s-bootstrap-token:".to_vec();
    input.extend_from_slice(secret.as_bytes());
    let digest = hex(digest::digest(&digest::SHA256, &input).as_ref());
    (digest[..6].to_string(), digest[6..22].to_string())
}

/// A new random secret: 32 hex characters (128 bits).
pub(crate) fn random_secret() -> Result<String, PkiError> {
    let mut buf = [0u8; 16];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| PkiError::Random {
            what: "token secret",
        })?;
    Ok(hex(&buf))
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn full_token_round_trips() {
        let token = format_token(HASH, "s3cret");
        assert_eq!(token, format!("K10{HASH}::server:s3cret"));
        let parsed = parse_token(&token).unwrap();
        assert_eq!(parsed.ca_hash.as_deref(), Some(HASH));
        assert_eq!(parsed.username.as_deref(), Some("server"));
        assert_eq!(parsed.secret, "s3cret");
    }

    #[test]
    fn short_token_is_the_secret() {
        let parsed = parse_token("  abc \n").unwrap();
        assert_eq!(
            parsed,
            ParsedToken {
                ca_hash: None,
                username: None,
                secret: "abc".into()
            }
        );
    }

    #[test]
    fn full_token_without_user_keeps_secret() {
        let parsed = parse_token(&format!("K10{HASH}::abc")).unwrap();
        assert_eq!(parsed.username, None);
        assert_eq!(parsed.secret, "abc");
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        assert_eq!(parse_token(""), None);
        assert_eq!(parse_token("a b"), None);
        assert_eq!(parse_token("K10abcd::server:x"), None);
        assert_eq!(parse_token(&format!("K10{HASH}::server:")), None);
    }

    #[test]
    fn random_secret_is_32_hex_chars() {
        let s = random_secret().unwrap();
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(s, random_secret().unwrap());
    }

    #[test]
    fn bootstrap_token_is_stable_and_well_formed() {
        let (id, secret) = bootstrap_token("s3cret");
        assert_eq!((id.len(), secret.len()), (6, 16));
        assert_eq!(bootstrap_token("s3cret"), (id.clone(), secret));
        assert_ne!(bootstrap_token("other").0, id);
    }

    #[test]
    fn ca_hash_is_sha256_hex() {
        // echo -n "" | sha256sum
        assert_eq!(
            ca_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
