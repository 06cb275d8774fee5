//! Behaviour of the PKI as a whole: files on disk, reuse across restarts, TLS with rustls.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::*;

const FILES: &[&str] = &[
    "ca.crt",
    "ca.key",
    "serving.crt",
    "serving.key",
    "client-admin.crt",
    "client-admin.key",
    "service-account.key",
    "service-account.pub",
    "request-header-ca.crt",
    "request-header-ca.key",
    "client-auth-proxy.crt",
    "client-auth-proxy.key",
];

fn options(dir: &Path) -> PkiOptions {
    let mut opts = PkiOptions::new(dir, "node-1");
    opts.addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10))];
    opts
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join("server/tls").join(name)).unwrap()
}

fn verify_server_name(pki: &Pki, name: &str) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(ca_root_store(pki).unwrap()),
        crypto_provider(),
    )
    .build()
    .unwrap();
    let chain = pki.serving_cert_chain();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

#[test]
fn pki_can_be_shared_between_tasks() {
    // The server keeps one Pki in an Arc for the listener, the agent bootstrap and signing.
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Pki>();
}

#[test]
fn unspecified_bind_address_is_not_a_san() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.addresses.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let pki = Pki::load_or_create(&opts).unwrap();
    assert!(verify_server_name(&pki, "0.0.0.0").is_err());
    verify_server_name(&pki, "192.168.1.10").unwrap();
}

#[test]
fn first_start_creates_private_files_and_token() {
    // Keys readable by other local users would let them impersonate the cluster admin.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&options(dir.path())).unwrap();
    let tls = dir.path().join("server/tls");
    for name in FILES {
        assert_eq!(mode(&tls.join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&tls), 0o700);
    assert_eq!(mode(&dir.path().join("server")), 0o700);
    let token_path = dir.path().join("server/token");
    assert_eq!(mode(&token_path), 0o600);

    let token = pki.token();
    assert_eq!(std::fs::read_to_string(&token_path).unwrap().trim(), token);
    let expected_prefix = format!(
        "K10{}::server:",
        ca_hash(read(dir.path(), "ca.crt").as_bytes())
    );
    assert!(token.starts_with(&expected_prefix), "{token}");
    let secret = &token[expected_prefix.len()..];
    assert_eq!(secret, pki.token_secret());
    assert_eq!(secret.len(), 32);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(pki.ca_fingerprint(), &expected_prefix[3..67]);

    assert_eq!(pki.ca_pem(), read(dir.path(), "ca.crt"));
    assert!(
        pki.service_account_key_pem()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        pki.service_account_public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    // No temporary files are left next to the real ones.
    assert_eq!(std::fs::read_dir(&tls).unwrap().count(), FILES.len());
}

#[test]
fn ca_is_a_ten_year_ecdsa_ca_named_like_k3s() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&options(dir.path())).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(pki.ca_der()).unwrap();
    assert!(ca.is_ca());
    let cn = ca
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert!(cn.starts_with("k1s-ca@"), "{cn}");
    assert!(cn["k1s-ca@".len()..].parse::<u64>().is_ok(), "{cn}");
    let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
        / (365 * 24 * 3600);
    assert_eq!(years, 10);
    assert_eq!(
        ca.public_key().algorithm.algorithm,
        x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
    );
}

#[test]
fn second_load_reuses_ca_certificates_keys_and_token() {
    // Re-issuing anything on restart would break every kubeconfig and joined agent.
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let first = Pki::load_or_create(&opts).unwrap();
    let before: Vec<String> = FILES.iter().map(|f| read(dir.path(), f)).collect();
    let second = Pki::load_or_create(&opts).unwrap();
    let after: Vec<String> = FILES.iter().map(|f| read(dir.path(), f)).collect();
    assert_eq!(before, after);
    assert_eq!(first.ca_pem(), second.ca_pem());
    assert_eq!(first.serving_cert_pem(), second.serving_cert_pem());
    assert_eq!(first.admin_cert_pem(), second.admin_cert_pem());
    assert_eq!(first.admin_key_pem(), second.admin_key_pem());
    assert_eq!(
        first.service_account_key_pem(),
        second.service_account_key_pem()
    );
    assert_eq!(first.token(), second.token());
}

#[test]
fn san_change_reissues_only_the_serving_certificate() {
    // `--tls-san` added after first start must take effect without invalidating the CA.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    let first = Pki::load_or_create(&opts).unwrap();
    let before: Vec<String> = FILES.iter().map(|f| read(dir.path(), f)).collect();
    assert!(verify_server_name(&first, "k1s.example.com").is_err());

    opts.extra_sans = vec!["k1s.example.com".into(), "203.0.113.7".into()];
    let second = Pki::load_or_create(&opts).unwrap();
    for (name, old) in FILES.iter().zip(&before) {
        let changed = read(dir.path(), name) != *old;
        assert_eq!(changed, name.starts_with("serving."), "{name}");
    }
    assert_eq!(first.token(), second.token());
    verify_server_name(&second, "k1s.example.com").unwrap();
    verify_server_name(&second, "203.0.113.7").unwrap();

    // The new names are now covered: a third start reuses the new certificate.
    let serving = read(dir.path(), "serving.crt");
    Pki::load_or_create(&opts).unwrap();
    assert_eq!(read(dir.path(), "serving.crt"), serving);
}

#[test]
fn serving_certificate_validates_for_cluster_names_and_addresses() {
    // kubectl in a pod dials kubernetes.default.svc.cluster.local; kubectl on the host 127.0.0.1.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&options(dir.path())).unwrap();
    for name in [
        "kubernetes.default.svc.cluster.local",
        "kubernetes.default.svc",
        "kubernetes.default",
        "kubernetes",
        "localhost",
        "node-1",
        "127.0.0.1",
        "::1",
        "10.43.0.1",
        "192.168.1.10",
    ] {
        verify_server_name(&pki, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(verify_server_name(&pki, "example.com").is_err());
}

#[test]
fn expiring_serving_certificate_is_reissued_from_the_same_ca() {
    // A server left running for a year must not come back with an expired certificate.
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let first = Pki::load_or_create(&opts).unwrap();

    // Replace serving.crt with one that expires in 30 days, signed by the real CA.
    let ca_key = rcgen::KeyPair::from_pem(&read(dir.path(), "ca.key")).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(first.ca_pem(), ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = std::time::SystemTime::now().into();
    params.not_after =
        (std::time::SystemTime::now() + std::time::Duration::from_secs(30 * 24 * 3600)).into();
    let short = params.signed_by(&key, &issuer).unwrap().pem();
    let tls = dir.path().join("server/tls");
    std::fs::write(tls.join("serving.crt"), &short).unwrap();
    std::fs::write(tls.join("serving.key"), key.serialize_pem()).unwrap();

    let second = Pki::load_or_create(&opts).unwrap();
    assert_ne!(second.serving_cert_pem(), short);
    assert_eq!(second.ca_pem(), first.ca_pem());
    assert_eq!(second.admin_cert_pem(), first.admin_cert_pem());
    verify_server_name(&second, "kubernetes.default.svc.cluster.local").unwrap();
}

#[test]
fn admin_certificate_names_system_admin_in_system_masters() {
    // RBAC's cluster-admin binding is to the group system:masters.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&options(dir.path())).unwrap();
    let der = CertificateDer::from_pem_slice(pki.admin_cert_pem().as_bytes()).unwrap();
    let id = ClientIdentity::from_der(&der).unwrap();
    assert_eq!(
        id,
        ClientIdentity {
            user: "system:admin".into(),
            groups: vec!["system:masters".into()]
        }
    );
}

#[test]
fn issued_client_certificate_carries_user_groups_and_chains_to_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&options(dir.path())).unwrap();
    let (cert_pem, key_pem) = pki
        .issue_client_cert("system:node:node-1", &["system:nodes", "extra", "third"])
        .unwrap();
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let id = ClientIdentity::from_der(&der).unwrap();
    assert_eq!(id.user, "system:node:node-1");
    assert_eq!(id.groups, ["system:nodes", "extra", "third"]);
    assert!(PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).is_ok());

    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(ca_root_store(&pki).unwrap()),
        crypto_provider(),
    )
    .build()
    .unwrap();
    verifier
        .verify_client_cert(&der, &[], UnixTime::now())
        .unwrap();
}

#[test]
fn client_identity_without_common_name_is_an_error() {
    // Upstream refuses to authenticate a certificate with an empty CN.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "g");
    let cert = params.self_signed(&key).unwrap();
    let err = ClientIdentity::from_der(cert.der()).unwrap_err();
    assert!(matches!(err, PkiError::NoCommonName), "{err}");
    assert!(ClientIdentity::from_der(b"garbage").is_err());
}

async fn handshake(
    pki: &Pki,
    client_auth: Option<(String, String)>,
) -> Result<(Option<ClientIdentity>, Option<Vec<u8>>), std::io::Error> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls_config(pki).unwrap()));
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der().clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut client_config = match client_auth {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    client_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let (_, conn) = tls.get_ref();
        let identity = conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|c| ClientIdentity::from_der(c).unwrap());
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        tls.write_all(b"pong").await?;
        tls.shutdown().await?;
        Ok::<_, std::io::Error>((identity, alpn))
    });

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let client = async {
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"pong");
        Ok::<_, std::io::Error>(())
    };
    let client_result = client.await;
    let server_result = server.await.unwrap();
    client_result?;
    server_result
}

#[tokio::test]
async fn tls_handshake_with_admin_certificate_identifies_the_admin() {
    // The apiserver authenticates kubectl by the certificate it presents in the handshake.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&options(dir.path())).unwrap();
    let admin = (
        pki.admin_cert_pem().to_string(),
        pki.admin_key_pem().to_string(),
    );
    let (identity, alpn) = handshake(&pki, Some(admin)).await.unwrap();
    let identity = identity.expect("server saw no client certificate");
    assert_eq!(identity.user, "system:admin");
    assert_eq!(identity.groups, vec!["system:masters".to_string()]);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn tls_handshake_without_client_certificate_is_allowed() {
    // Service account bearer tokens and anonymous /healthz arrive without a certificate.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&options(dir.path())).unwrap();
    let (identity, _) = handshake(&pki, None).await.unwrap();
    assert_eq!(identity, None);
}

#[tokio::test]
async fn tls_handshake_with_foreign_client_certificate_fails() {
    // A certificate from another cluster's CA must not authenticate anyone here.
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&options(dir.path())).unwrap();
    let other = Pki::load_or_create(&options(other_dir.path())).unwrap();
    let foreign = (
        other.admin_cert_pem().to_string(),
        other.admin_key_pem().to_string(),
    );
    assert!(handshake(&pki, Some(foreign)).await.is_err());
}

#[test]
fn corrupt_ca_certificate_is_an_error_naming_the_file() {
    // An operator must be told which file to restore; silently replacing the CA would
    // orphan every agent and kubeconfig.
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    Pki::load_or_create(&opts).unwrap();
    let ca_crt = dir.path().join("server/tls/ca.crt");
    std::fs::write(&ca_crt, "not a certificate").unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(
        err.to_string().contains(&ca_crt.display().to_string()),
        "{err}"
    );

    // A PEM block whose body is not a certificate.
    let bad_body = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    std::fs::write(&ca_crt, bad_body).unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(
        err.to_string().contains(&ca_crt.display().to_string()),
        "{err}"
    );
    // The broken file is left for the operator, not replaced.
    assert_eq!(std::fs::read_to_string(&ca_crt).unwrap(), bad_body);
}

#[test]
fn corrupt_key_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    Pki::load_or_create(&opts).unwrap();
    for name in ["ca.key", "serving.key", "service-account.key"] {
        let path = dir.path().join("server/tls").join(name);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, "garbage").unwrap();
        let err = Pki::load_or_create(&opts).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{name}: {err}"
        );
        std::fs::write(&path, good).unwrap();
    }
    Pki::load_or_create(&opts).unwrap();
}

#[test]
fn ca_certificate_without_its_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    Pki::load_or_create(&opts).unwrap();
    let key = dir.path().join("server/tls/ca.key");
    std::fs::remove_file(&key).unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(matches!(err, PkiError::IncompletePair { .. }), "{err}");
    assert!(
        err.to_string().contains(&key.display().to_string()),
        "{err}"
    );
}

#[test]
fn user_token_becomes_the_secret_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.token = Some("my-secret".into());
    let pki = Pki::load_or_create(&opts).unwrap();
    assert_eq!(
        pki.token(),
        format!("K10{}::server:my-secret", pki.ca_fingerprint())
    );

    // Restart without --token keeps it; with the same --token too.
    opts.token = None;
    assert_eq!(Pki::load_or_create(&opts).unwrap().token(), pki.token());
    opts.token = Some("my-secret".into());
    assert_eq!(Pki::load_or_create(&opts).unwrap().token(), pki.token());
    // The full token printed by the first start is accepted as --token.
    opts.token = Some(pki.token().to_string());
    assert_eq!(Pki::load_or_create(&opts).unwrap().token(), pki.token());
}

#[test]
fn full_form_user_token_keeps_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    let foreign_hash = "ab".repeat(32);
    opts.token = Some(format!("K10{foreign_hash}::server:abc123"));
    let pki = Pki::load_or_create(&opts).unwrap();
    assert_eq!(pki.token_secret(), "abc123");
    assert!(
        pki.token()
            .starts_with(&format!("K10{}::", pki.ca_fingerprint()))
    );
}

#[test]
fn different_token_on_restart_is_refused() {
    // k3s refuses a --token that differs from the one the cluster's data was created with.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.token = Some("first".into());
    let pki = Pki::load_or_create(&opts).unwrap();
    opts.token = Some("second".into());
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(matches!(err, PkiError::TokenMismatch));
    assert_eq!(
        err.to_string(),
        "token does not match the cluster's existing token"
    );
    // The stored token is untouched.
    let stored = std::fs::read_to_string(dir.path().join("server/token")).unwrap();
    assert_eq!(stored.trim(), pki.token());

    // A full token for another CA is refused once this cluster's CA exists.
    opts.token = Some(format!("K10{}::server:first", "cd".repeat(32)));
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(matches!(err, PkiError::TokenCaHashMismatch), "{err}");
}

#[test]
fn generated_token_survives_restart_and_bad_tokens_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    let token = Pki::load_or_create(&opts).unwrap().token().to_string();
    assert_eq!(Pki::load_or_create(&opts).unwrap().token(), token);

    opts.token = Some("has space".into());
    assert!(matches!(
        Pki::load_or_create(&opts),
        Err(PkiError::InvalidToken { .. })
    ));

    opts.token = None;
    let token_path = dir.path().join("server/token");
    std::fs::write(&token_path, "\n").unwrap();
    let err = Pki::load_or_create(&opts).unwrap_err();
    assert!(
        err.to_string().contains(&token_path.display().to_string()),
        "{err}"
    );
}

#[test]
fn admin_kubeconfig_embeds_the_admin_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&options(dir.path())).unwrap();
    let yaml = kubeconfig(
        "https://127.0.0.1:6443",
        pki.ca_pem(),
        pki.admin_cert_pem(),
        pki.admin_key_pem(),
    );
    use base64::Engine as _;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(pki.ca_pem());
    assert!(yaml.contains(&format!("    certificate-authority-data: {ca_b64}\n")));
    let path = dir.path().join("etc/k1s.yaml");
    write_kubeconfig(&path, &yaml, 0o600).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), yaml);
    assert_eq!(mode(&path), 0o600);
}
