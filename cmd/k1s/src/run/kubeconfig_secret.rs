//! `--kubeconfig-secret`: the admin kubeconfig published as a Secret in the cluster that
//! runs this k1s in a pod (a virtual cluster), so users and tools there can reach it
//! without a shell in the pod.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};

/// What goes into the Secret: the kubeconfig and its parts, as vcluster's Secret has them.
pub struct KubeconfigSecret {
    /// The Secret's name in the pod's namespace.
    pub name: String,
    /// The whole kubeconfig (key `config`).
    pub kubeconfig: String,
    /// The cluster CA (key `certificate-authority`).
    pub ca_pem: String,
    /// The admin client certificate (key `client-certificate`).
    pub cert_pem: String,
    /// The admin client key (key `client-key`).
    pub key_pem: String,
}

impl KubeconfigSecret {
    /// The Secret object, as applied.
    fn object(&self, namespace: &str) -> Secret {
        let data: BTreeMap<String, ByteString> = [
            ("config", &self.kubeconfig),
            ("certificate-authority", &self.ca_pem),
            ("client-certificate", &self.cert_pem),
            ("client-key", &self.key_pem),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "k1s".to_string(),
                )])),
                ..Default::default()
            },
            type_: Some("Opaque".to_string()),
            data: Some(data),
            ..Default::default()
        }
    }

    /// Writes the Secret through the pod's in-cluster credentials (server-side apply, so a
    /// restarted server refreshes it), retrying until it succeeds: the outer API may be
    /// unreachable for a while, and the Role that allows the write may be applied after the
    /// pod starts.
    pub async fn publish(self) -> anyhow::Result<()> {
        let config = kube::Config::incluster().context(
            "--kubeconfig-secret needs to run in a pod (KUBERNETES_SERVICE_HOST and the \
             ServiceAccount token are missing)",
        )?;
        let namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config).context("in-cluster client")?;
        let secrets: Api<Secret> = Api::namespaced(client, &namespace);
        let object = self.object(&namespace);
        let params = PatchParams::apply("k1s").force();
        let mut delay = Duration::from_secs(1);
        loop {
            match secrets
                .patch(&self.name, &params, &Patch::Apply(&object))
                .await
            {
                Ok(_) => {
                    tracing::info!(secret = %self.name, %namespace, "admin kubeconfig stored in the outer cluster");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(secret = %self.name, %namespace, error = %e, retry_in = ?delay, "cannot store the admin kubeconfig yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_holds_the_kubeconfig_and_its_parts() {
        let s = KubeconfigSecret {
            name: "vc-kubeconfig".into(),
            kubeconfig: "apiVersion: v1\nkind: Config\n".into(),
            ca_pem: "CA".into(),
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
        }
        .object("team-a");
        assert_eq!(s.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(s.metadata.name.as_deref(), Some("vc-kubeconfig"));
        let data = s.data.unwrap_or_default();
        let text = |k: &str| {
            data.get(k)
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        };
        assert_eq!(
            text("config").as_deref(),
            Some("apiVersion: v1\nkind: Config\n")
        );
        assert_eq!(text("certificate-authority").as_deref(), Some("CA"));
        assert_eq!(text("client-certificate").as_deref(), Some("CERT"));
        assert_eq!(text("client-key").as_deref(), Some("KEY"));
    }
}
