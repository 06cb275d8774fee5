//! Just enough DER to give a certificate several `O` attributes.
//!
//! rcgen's `DistinguishedName` keeps one value per attribute type, but Kubernetes turns every
//! subject `O` into a group, so a client certificate may need several. The certificate is
//! built by rcgen, then its subject is replaced and the TBS re-signed with the CA key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::SigningKey;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const BIT_STRING: u8 = 0x03;
const CONTEXT_0: u8 = 0xa0;
/// 2.5.4.10 organizationName.
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
/// 2.5.4.3 commonName.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// Encodes one TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Splits the first TLV off `input`: (whole TLV, its content, the rest).
fn split_tlv(input: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = input
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((whole, &whole[header..], &input[end..]))
}

/// Every TLV in `content`, in order.
fn elements(mut content: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (whole, _, rest) = split_tlv(content)?;
        out.push(whole);
        content = rest;
    }
    Some(out)
}

/// A subject `O=<org>… CN=<cn>`, one attribute per RDN, organizations first (Go's order).
pub(crate) fn subject(cn: &str, orgs: &[String]) -> Vec<u8> {
    let attr = |oid: &[u8], value: &str| {
        let atv = [tlv(OID, oid), tlv(UTF8_STRING, value.as_bytes())].concat();
        tlv(SET, &tlv(SEQUENCE, &atv))
    };
    let mut rdns: Vec<u8> = orgs
        .iter()
        .flat_map(|o| attr(OID_ORGANIZATION, o))
        .collect();
    rdns.extend(attr(OID_COMMON_NAME, cn));
    tlv(SEQUENCE, &rdns)
}

/// Replaces the subject of certificate `cert` with `subject` and re-signs it with `key`
/// (the key that signed it, whose algorithm identifier it already carries).
/// `None` if `cert` is not the certificate shape rcgen writes.
pub(crate) fn replace_subject(
    cert: &[u8],
    subject: &[u8],
    key: &impl SigningKey,
) -> Option<Result<Vec<u8>, rcgen::Error>> {
    let (_, cert_content, _) = split_tlv(cert)?;
    let [tbs, alg, _sig] = <[&[u8]; 3]>::try_from(elements(cert_content)?).ok()?;
    let (_, tbs_content, _) = split_tlv(tbs)?;
    let mut fields = elements(tbs_content)?;
    // version [0] EXPLICIT, serial, signature, issuer, validity, subject, …
    let index = if fields.first()?.first() == Some(&CONTEXT_0) {
        5
    } else {
        4
    };
    *fields.get_mut(index)? = subject;
    let tbs = tlv(SEQUENCE, &fields.concat());
    let signature = match key.sign(&tbs) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let bits = tlv(BIT_STRING, &[&[0u8][..], &signature].concat());
    Some(Ok(tlv(SEQUENCE, &[&tbs[..], alg, &bits].concat())))
}

/// PEM with 64-column lines and LF endings, as rcgen writes.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let encoded = tlv(SEQUENCE, &content);
            let (whole, inner, rest) = split_tlv(&encoded).unwrap();
            assert_eq!(
                (whole.len(), inner, rest.len()),
                (encoded.len(), &content[..], 0)
            );
        }
        assert!(split_tlv(&[SEQUENCE, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(split_tlv(&[SEQUENCE, 3, 1]).is_none());
    }

    #[test]
    fn pem_matches_rcgen_layout() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::default()
            .self_signed(&key)
            .unwrap();
        assert_eq!(pem("CERTIFICATE", cert.der()), cert.pem());
    }
}
