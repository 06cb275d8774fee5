//! How agents join: what the server publishes and what an agent checks.
//!
//! The join token (`<data-dir>/server/token`, `K10<sha256 of the CA PEM>::server:<secret>`,
//! k3s's format) carries two things:
//! - the CA hash: the agent reads the public `kube-public/cluster-info` ConfigMap (kubeadm's
//!   discovery object, readable anonymously) without trusting the server's certificate,
//!   hashes the CA inside and refuses a server whose CA does not match;
//! - the secret: server and agent both derive a bootstrap token `<id>.<secret>` from it
//!   ([`k1s_pki::bootstrap_token`]); the server keeps it as the Secret
//!   `kube-system/bootstrap-token-<id>`, group `system:bootstrappers:k1s:default-node-token`.
//!
//! With the bootstrap token the agent asks for its kubelet client certificate by a
//! CertificateSigningRequest; the bindings below let that group create requests and have
//! them approved (kubeadm's `kubelet-bootstrap` and `node-autoapprove-*` bindings), and the
//! server's approver and signer issue them. With that identity (`system:node:<name>`) it asks
//! for its serving and Service proxy certificates.

use anyhow::Context as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{
    ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::serde::Serialize;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Api;
use kube::api::{Patch, PatchParams};

/// The group a joining agent's bootstrap token authenticates as (besides
/// `system:bootstrappers`).
pub const BOOTSTRAP_GROUP: &str = "system:bootstrappers:k1s:default-node-token";
/// Namespace and name of the public discovery ConfigMap.
pub const CLUSTER_INFO: (&str, &str) = ("kube-public", "cluster-info");

const MANAGER: &str = "k1s-join";

async fn apply<K>(api: Api<K>, name: &str, obj: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    apply_as(MANAGER, api, name, obj).await
}

async fn apply_as<K>(manager: &str, api: Api<K>, name: &str, obj: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot write {name}: {e}"))?;
    Ok(())
}

/// Who may read one object: a `User` or a `Group` and its name.
pub(crate) struct Reader<'a> {
    /// `User` or `Group`.
    pub kind: &'a str,
    /// The user's or group's name.
    pub name: &'a str,
}

/// Lets `reader` get the one object `object` of core `resource` in `ns` (and nothing
/// else): a Role `role` with that rule and a RoleBinding of the same name, applied by
/// field manager `manager`.
pub(crate) async fn grant_get(
    client: kube::Client,
    manager: &str,
    ns: &str,
    role: &str,
    (resource, object): (&str, &str),
    reader: Reader<'_>,
) -> anyhow::Result<()> {
    let rules = Role {
        metadata: meta(role, Some(ns)),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec![resource.into()]),
            resource_names: Some(vec![object.into()]),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        }]),
    };
    apply_as(manager, Api::namespaced(client.clone(), ns), role, &rules)
        .await
        .with_context(|| format!("cannot write the Role {ns}/{role}"))?;
    let binding = RoleBinding {
        metadata: meta(role, Some(ns)),
        role_ref: role_ref("Role", role),
        subjects: Some(vec![subject(reader.kind, reader.name)]),
    };
    apply_as(manager, Api::namespaced(client, ns), role, &binding)
        .await
        .with_context(|| format!("cannot write the RoleBinding {ns}/{role}"))
}

/// A `roleRef` to the (Cluster)Role `name`.
fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.into(),
    }
}

/// A cluster-wide subject (a User or Group) of a binding.
fn subject(kind: &str, name: &str) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: kind.into(),
        name: name.into(),
        namespace: None,
    }
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        ..ObjectMeta::default()
    }
}

fn binding(name: &str, role: &str, kind: &str, subject: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(name, None),
        role_ref: role_ref("ClusterRole", role),
        subjects: Some(vec![self::subject(kind, subject)]),
    }
}

/// Writes what joining agents need: the discovery ConfigMap with the server's URL and CA,
/// the bootstrap token Secret derived from the join secret, and the RBAC that lets it ask
/// for a kubelet certificate.
pub async fn publish(
    client: kube::Client,
    server_url: &str,
    ca_pem: &str,
    secret: &str,
) -> anyhow::Result<()> {
    let (ns, name) = CLUSTER_INFO;
    // Like kubeadm's: a kubeconfig with the cluster only, no credentials.
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    certificate-authority-data: {}\n    server: {}\ncontexts: null\ncurrent-context: \"\"\npreferences: {{}}\nusers: null\n",
        base64_encode(ca_pem.as_bytes()),
        server_url
    );
    let cm = ConfigMap {
        metadata: meta(name, Some(ns)),
        data: Some([("kubeconfig".to_string(), kubeconfig)].into()),
        ..ConfigMap::default()
    };
    apply(Api::namespaced(client.clone(), ns), name, &cm).await?;
    grant_get(
        client.clone(),
        MANAGER,
        ns,
        "k1s:bootstrap-signer-clusterinfo",
        ("configmaps", name),
        Reader {
            kind: "User",
            name: "system:anonymous",
        },
    )
    .await?;

    let (id, token_secret) = k1s_pki::bootstrap_token(secret);
    let secret_name = format!("bootstrap-token-{id}");
    let data = [
        ("token-id", id.as_str()),
        ("token-secret", token_secret.as_str()),
        ("usage-bootstrap-authentication", "true"),
        ("auth-extra-groups", BOOTSTRAP_GROUP),
        (
            "description",
            "Derived from the k1s join token; lets agents ask for their kubelet certificates.",
        ),
    ];
    let secret_obj = Secret {
        metadata: meta(&secret_name, Some("kube-system")),
        type_: Some("bootstrap.kubernetes.io/token".into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    apply(
        Api::namespaced(client.clone(), "kube-system"),
        &secret_name,
        &secret_obj,
    )
    .await?;
    for b in [
        binding(
            "k1s:kubelet-bootstrap",
            "system:node-bootstrapper",
            "Group",
            BOOTSTRAP_GROUP,
        ),
        binding(
            "k1s:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "Group",
            BOOTSTRAP_GROUP,
        ),
        binding(
            "k1s:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            "Group",
            "system:nodes",
        ),
    ] {
        let name = b.metadata.name.clone().unwrap_or_default();
        apply(Api::all(client.clone()), &name, &b).await?;
    }
    Ok(())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
