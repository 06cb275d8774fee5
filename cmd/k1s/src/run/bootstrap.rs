//! An agent's way to its credentials (upstream's kubelet TLS bootstrap, with k3s's token):
//! find and check the server's CA, authenticate with the bootstrap token, and get the
//! kubelet's client, serving and Service proxy certificates by CertificateSigningRequests.
//! See `run/join.rs` for the server's half.
//!
//! Files under `<data-dir>/agent/` (k3s's names): `server-ca.crt`, `client-kubelet.{crt,key}`,
//! `serving-kubelet.{crt,key}`, `client-kube-proxy.{crt,key}`, `kubelet.kubeconfig`,
//! `kubeproxy.kubeconfig`. They are reused on restart while the server's CA is the same.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::join::CLUSTER_INFO;

/// What an agent holds once it has joined.
pub struct Credentials {
    /// The cluster CA PEM.
    pub ca_pem: String,
    /// The kubelet's client: `system:node:<name>` in `system:nodes`.
    pub node: kube::Client,
    /// The Service proxy's client: `system:kube-proxy`.
    pub proxy: kube::Client,
    /// The kubelet's serving certificate and key PEM.
    pub serving: (String, String),
}

/// A kube client from kubeconfig text.
pub async fn client_from_kubeconfig(yaml: &str) -> anyhow::Result<kube::Client> {
    let kubeconfig = Kubeconfig::from_yaml(yaml).context("invalid kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("unusable kubeconfig")?;
    kube::Client::try_from(config).context("cannot make a client")
}

fn cluster_only_kubeconfig(server: &str, cluster: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: k1s\n  cluster:\n    server: {server:?}\n{cluster}\ncontexts:\n- name: k1s\n  context: {{cluster: k1s, user: k1s}}\ncurrent-context: k1s\nusers:\n- name: k1s\n  user:\n{user}\n"
    )
}

/// A client of `server` that trusts `ca_pem` and authenticates with a bearer `token` (a
/// bootstrap token `<id>.<secret>`).
pub async fn token_client(server: &str, ca_pem: &str, token: &str) -> anyhow::Result<kube::Client> {
    use base64::Engine as _;
    let ca = format!(
        "    certificate-authority-data: {}",
        base64::engine::general_purpose::STANDARD.encode(ca_pem)
    );
    client_from_kubeconfig(&cluster_only_kubeconfig(
        server,
        &ca,
        &format!("    token: {token}"),
    ))
    .await
}

/// Reads the server's CA from its public `cluster-info` without trusting its certificate,
/// and checks it against the token's hash (k3s's and kubeadm's CA pinning). Without a hash
/// (a bare secret) the CA is taken on trust, with a warning.
pub async fn discover_ca(server: &str, ca_hash: Option<&str>) -> anyhow::Result<String> {
    let yaml = cluster_only_kubeconfig(server, "    insecure-skip-tls-verify: true", "    {}");
    let anonymous = client_from_kubeconfig(&yaml).await?;
    let (ns, name) = CLUSTER_INFO;
    let cm = Api::<ConfigMap>::namespaced(anonymous, ns)
        .get(name)
        .await
        .with_context(|| format!("cannot read {ns}/{name} from {server}"))?;
    let kubeconfig = cm
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .with_context(|| format!("{ns}/{name} has no kubeconfig"))?;
    let parsed = Kubeconfig::from_yaml(kubeconfig)
        .with_context(|| format!("{ns}/{name} holds no valid kubeconfig"))?;
    let data = parsed
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .with_context(|| format!("{ns}/{name} names no certificate authority"))?;
    let pem = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .context("the CA in cluster-info is not base64")?
    };
    let pem = String::from_utf8(pem).context("the CA in cluster-info is not PEM")?;
    match ca_hash {
        Some(want) => {
            let got = k1s_pki::ca_hash(pem.as_bytes());
            if got != want {
                bail!(
                    "the server's CA does not match the token: its hash is {got}, the token's {want}"
                );
            }
        }
        None => tracing::warn!(
            "the token is a bare secret: the server's CA is trusted without a check (use the full K10… token)"
        ),
    }
    Ok(pem)
}

struct Files {
    dir: PathBuf,
}

impl Files {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.path(name)).ok()
    }

    fn write(&self, name: &str, content: &str) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path(name);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, content).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot protect {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    fn pair(&self, stem: &str) -> Option<(String, String)> {
        Some((
            self.read(&format!("{stem}.crt"))?,
            self.read(&format!("{stem}.key"))?,
        ))
    }
}

/// Creates a request and waits until the server issued it; returns the certificate PEM.
async fn request_certificate(
    client: &kube::Client,
    signer: &str,
    usages: &[&str],
    csr_pem: &str,
) -> anyhow::Result<String> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("csr-".into()),
            ..ObjectMeta::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(csr_pem.as_bytes().to_vec()),
            signer_name: signer.into(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            ..CertificateSigningRequestSpec::default()
        },
        ..CertificateSigningRequest::default()
    };
    let created = api
        .create(&PostParams::default(), &csr)
        .await
        .with_context(|| format!("cannot create a certificate signing request for {signer}"))?;
    let name = created.metadata.name.clone().unwrap_or_default();
    tracing::info!(csr = %name, %signer, "waiting for the server to approve and sign");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let current = api
            .get(&name)
            .await
            .with_context(|| format!("cannot read certificate signing request {name}"))?;
        if let Some(status) = &current.status {
            if let Some(cert) = status.certificate.as_ref().filter(|c| !c.0.is_empty()) {
                return String::from_utf8(cert.0.clone()).context("the certificate is not PEM");
            }
            for c in status.conditions.iter().flatten() {
                if (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True" {
                    bail!(
                        "certificate signing request {name} was {}: {}",
                        c.type_.to_lowercase(),
                        c.message.clone().unwrap_or_default()
                    );
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("certificate signing request {name} was not signed within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Joins: the CA, then each certificate (reused when already held for this CA).
pub async fn obtain(
    server: &str,
    token: &str,
    agent_dir: &Path,
    node_name: &str,
    node_ip: IpAddr,
) -> anyhow::Result<Credentials> {
    let parsed = k1s_pki::parse_token(token)
        .context("invalid --token: expected K10<ca hash>::server:<secret> or the bare secret")?;
    std::fs::create_dir_all(agent_dir)
        .with_context(|| format!("cannot create {}", agent_dir.display()))?;
    let files = Files {
        dir: agent_dir.to_path_buf(),
    };
    let ca_pem = discover_ca(server, parsed.ca_hash.as_deref()).await?;
    // Certificates of another CA (the server was reinstalled) are of no use.
    if files.read("server-ca.crt").as_deref() != Some(ca_pem.as_str()) {
        for stem in ["client-kubelet", "serving-kubelet", "client-kube-proxy"] {
            let _ = std::fs::remove_file(files.path(&format!("{stem}.crt")));
        }
        files.write("server-ca.crt", &ca_pem)?;
    }
    let ca_block = {
        use base64::Engine as _;
        format!(
            "    certificate-authority-data: {}",
            base64::engine::general_purpose::STANDARD.encode(&ca_pem)
        )
    };
    let user = format!("system:node:{node_name}");
    let client_usages = ["digital signature", "client auth"];

    let (cert, key) = match files.pair("client-kubelet") {
        Some(pair) => pair,
        None => {
            let (id, secret) = k1s_pki::bootstrap_token(&parsed.secret);
            let yaml =
                cluster_only_kubeconfig(server, &ca_block, &format!("    token: {id}.{secret}"));
            let bootstrap = client_from_kubeconfig(&yaml).await?;
            let (csr, key) = k1s_pki::new_csr(&user, &["system:nodes"], &[])?;
            let cert = request_certificate(
                &bootstrap,
                "kubernetes.io/kube-apiserver-client-kubelet",
                &client_usages,
                &csr,
            )
            .await
            .context("cannot get the kubelet's client certificate (is the token right?)")?;
            files.write("client-kubelet.key", &key)?;
            files.write("client-kubelet.crt", &cert)?;
            (cert, key)
        }
    };
    let kubeconfig = k1s_pki::kubeconfig(server, &ca_pem, &cert, &key);
    files.write("kubelet.kubeconfig", &kubeconfig)?;
    let node = client_from_kubeconfig(&kubeconfig).await?;

    let serving = match files.pair("serving-kubelet") {
        Some(pair) => pair,
        None => {
            let sans = [
                node_name.to_string(),
                node_ip.to_string(),
                "127.0.0.1".into(),
            ];
            let (csr, key) = k1s_pki::new_csr(&user, &["system:nodes"], &sans)?;
            let cert = request_certificate(
                &node,
                "kubernetes.io/kubelet-serving",
                &["digital signature", "server auth"],
                &csr,
            )
            .await
            .context("cannot get the kubelet's serving certificate")?;
            files.write("serving-kubelet.key", &key)?;
            files.write("serving-kubelet.crt", &cert)?;
            (cert, key)
        }
    };

    let (cert, key) = match files.pair("client-kube-proxy") {
        Some(pair) => pair,
        None => {
            let (csr, key) = k1s_pki::new_csr("system:kube-proxy", &[], &[])?;
            let cert = request_certificate(
                &node,
                "kubernetes.io/kube-apiserver-client",
                &client_usages,
                &csr,
            )
            .await
            .context("cannot get the Service proxy's client certificate")?;
            files.write("client-kube-proxy.key", &key)?;
            files.write("client-kube-proxy.crt", &cert)?;
            (cert, key)
        }
    };
    let kubeconfig = k1s_pki::kubeconfig(server, &ca_pem, &cert, &key);
    files.write("kubeproxy.kubeconfig", &kubeconfig)?;
    let proxy = client_from_kubeconfig(&kubeconfig).await?;
    Ok(Credentials {
        ca_pem,
        node,
        proxy,
        serving,
    })
}
