//! Sealing the cluster's bootstrap data (its CAs and signing keys) with the join token's
//! secret, so a joining server can fetch it and nobody without the token can read it — as
//! k3s encrypts its bootstrap data with the token (PBKDF2 then AES-GCM).
//!
//! Layout of a sealed blob: `salt (16) | nonce (12) | AES-256-GCM ciphertext and tag`.

use std::num::NonZeroU32;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

use crate::PkiError;

const SALT_LEN: usize = 16;
/// PBKDF2-HMAC-SHA256 rounds: a guessable user-chosen token stays costly to brute-force.
const ROUNDS: u32 = 100_000;
const DOMAIN: &[u8] = b"k1s-bootstrap-data:";

fn key(secret: &str, salt: &[u8]) -> Result<LessSafeKey, PkiError> {
    let mut bytes = [0u8; 32];
    let mut full_salt = DOMAIN.to_vec();
    full_salt.extend_from_slice(salt);
    let rounds = NonZeroU32::new(ROUNDS).ok_or(PkiError::Seal {
        reason: "no PBKDF2 rounds",
    })?;
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        &full_salt,
        secret.as_bytes(),
        &mut bytes,
    );
    let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| PkiError::Seal {
        reason: "cannot make an AES-256-GCM key",
    })?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts `plain` with a key derived from the token secret `secret`.
pub fn seal(secret: &str, plain: &[u8]) -> Result<Vec<u8>, PkiError> {
    let rng = SystemRandom::new();
    let mut head = [0u8; SALT_LEN + NONCE_LEN];
    rng.fill(&mut head).map_err(|_| PkiError::Random {
        what: "bootstrap data salt",
    })?;
    let (salt, nonce) = head.split_at(SALT_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| PkiError::Seal {
        reason: "bad nonce length",
    })?;
    let mut body = plain.to_vec();
    key(secret, salt)?
        .seal_in_place_append_tag(nonce, Aad::empty(), &mut body)
        .map_err(|_| PkiError::Seal {
            reason: "encryption failed",
        })?;
    let mut out = head.to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decrypts what [`seal`] made; fails when `secret` is not the one it was sealed with.
pub fn open(secret: &str, sealed: &[u8]) -> Result<Vec<u8>, PkiError> {
    if sealed.len() < SALT_LEN + NONCE_LEN {
        return Err(PkiError::Seal {
            reason: "the bootstrap data is truncated",
        });
    }
    let (salt, rest) = sealed.split_at(SALT_LEN);
    let (nonce, body) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| PkiError::Seal {
        reason: "bad nonce length",
    })?;
    let mut body = body.to_vec();
    let plain = key(secret, salt)?
        .open_in_place(nonce, Aad::empty(), &mut body)
        .map_err(|_| PkiError::Seal {
            reason: "the bootstrap data does not open with this token (another cluster's token?)",
        })?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_secret() {
        let sealed = seal("s3cret", b"ca key").unwrap();
        assert_ne!(&sealed[SALT_LEN + NONCE_LEN..], b"ca key");
        assert_eq!(open("s3cret", &sealed).unwrap(), b"ca key");
        assert!(open("other", &sealed).is_err());
        assert!(open("s3cret", &sealed[..10]).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(open("s3cret", &tampered).is_err());
        // A fresh salt and nonce each time.
        assert_ne!(seal("s3cret", b"ca key").unwrap(), sealed);
    }
}
