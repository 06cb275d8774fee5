//! Upstream's `ServiceAccount` admission plugin, on pod create:
//! - a pod without `serviceAccountName` runs as `default`;
//! - the service account must exist (the lookup of `default` is retried briefly by the
//!   caller, since the serviceaccount controller makes it just after its namespace);
//! - unless the pod or its account opts out (`automountServiceAccountToken: false`), every
//!   container and init container mounts a projected `kube-api-access-xxxxx` volume (a bound
//!   token, the cluster CA from `kube-root-ca.crt`, the namespace) at
//!   [`API_TOKEN_MOUNT_PATH`], unless it mounts something there already;
//! - a pod without `imagePullSecrets` takes its account's;
//! - an account annotated `kubernetes.io/enforce-mountable-secrets: "true"` limits the
//!   secrets the pod may reference to those it lists;
//! - mirror pods (static pods the kubelet reports) may reference no account and no secret.

use serde_json::{Value, json};

use crate::kinds::validation::Fields;

/// The service account a pod without one runs as.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Where containers find the API token, CA and namespace.
pub const API_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Prefix of the generated token volume's name.
const VOLUME_PREFIX: &str = "kube-api-access-";
/// Lifetime asked for the bound token (upstream's "warn only" expiry: one hour plus seven
/// seconds, which marks tokens the kubelet refreshes).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
const ENFORCE_MOUNTABLE_SECRETS: &str = "kubernetes.io/enforce-mountable-secrets";

/// Whether the pod is a mirror pod.
fn is_mirror(pod: &Value) -> bool {
    pod.f("metadata")
        .f("annotations")
        .get(MIRROR_ANNOTATION)
        .is_some()
}

/// The service account the plugin will look up, after defaulting the pod's; `None` for a
/// mirror pod (which must not name one).
pub fn account_to_look_up(pod: &mut Value) -> Result<Option<String>, String> {
    if is_mirror(pod) {
        validate_mirror(pod)?;
        return Ok(None);
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(None);
    };
    let name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
        .to_string();
    spec.insert("serviceAccountName".into(), json!(name));
    Ok(Some(name))
}

fn validate_mirror(pod: &Value) -> Result<(), String> {
    let spec = pod.f("spec");
    if !spec.s("serviceAccountName").is_empty() {
        return Err("a mirror pod may not reference service accounts".into());
    }
    if !secret_names(pod).is_empty() {
        return Err("a mirror pod may not reference secrets".into());
    }
    let projects_token = spec.a("volumes").iter().any(|v| {
        v.f("projected")
            .a("sources")
            .iter()
            .any(|s| s.get("serviceAccountToken").is_some_and(|t| !t.is_null()))
    });
    if projects_token {
        return Err("a mirror pod may not use ServiceAccountToken volume projections".into());
    }
    Ok(())
}

/// Every secret a pod references: volumes (plain and projected), env, envFrom, pull secrets.
fn secret_names(pod: &Value) -> Vec<String> {
    let spec = pod.f("spec");
    let mut names = Vec::new();
    let mut add = |n: &str| {
        if !n.is_empty() {
            names.push(n.to_string());
        }
    };
    for s in spec.a("imagePullSecrets") {
        add(s.s("name"));
    }
    for v in spec.a("volumes") {
        add(v.f("secret").s("secretName"));
        for src in v.f("projected").a("sources") {
            add(src.f("secret").s("name"));
        }
        for key in [
            "cephfs",
            "cinder",
            "flexVolume",
            "rbd",
            "scaleIO",
            "iscsi",
            "storageos",
        ] {
            add(v.f(key).f("secretRef").s("name"));
        }
        add(v.f("azureFile").s("secretName"));
        add(v.f("csi").f("nodePublishSecretRef").s("name"));
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec.a(list) {
            for e in c.a("envFrom") {
                add(e.f("secretRef").s("name"));
            }
            for e in c.a("env") {
                add(e.f("valueFrom").f("secretKeyRef").s("name"));
            }
        }
    }
    names
}

/// Applies the plugin's mutations and checks for `account` (the stored ServiceAccount).
/// `suffix` gives the generated volume name's random part.
pub fn admit(
    pod: &mut Value,
    account: &Value,
    suffix: impl FnOnce() -> String,
) -> Result<(), String> {
    if automount(pod, account) {
        mount_token(pod, suffix);
    }
    let has_pull_secrets = !pod.f("spec").a("imagePullSecrets").is_empty();
    let account_pull_secrets: Vec<Value> = account
        .a("imagePullSecrets")
        .iter()
        .map(|s| json!({"name": s.s("name")}))
        .collect();
    if !has_pull_secrets
        && !account_pull_secrets.is_empty()
        && let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert(
            "imagePullSecrets".into(),
            Value::Array(account_pull_secrets),
        );
    }
    if enforces_mountable_secrets(account) {
        limit_secret_references(pod, account)?;
    }
    Ok(())
}

fn automount(pod: &Value, account: &Value) -> bool {
    pod.f("spec")
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            account
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true)
}

fn enforces_mountable_secrets(account: &Value) -> bool {
    // Go's strconv.ParseBool: 1, t, T, TRUE, true, True.
    matches!(
        account
            .f("metadata")
            .f("annotations")
            .s(ENFORCE_MOUNTABLE_SECRETS),
        "1" | "t" | "T" | "TRUE" | "true" | "True"
    )
}

fn limit_secret_references(pod: &Value, account: &Value) -> Result<(), String> {
    let sa = account.f("metadata").s("name");
    let mountable: Vec<&str> = account.a("secrets").iter().map(|s| s.s("name")).collect();
    let spec = pod.f("spec");
    for v in spec.a("volumes") {
        let Some(secret) = v.get("secret").filter(|s| s.is_object()) else {
            continue;
        };
        let name = secret.s("secretName");
        if !mountable.contains(&name) {
            return Err(format!(
                "volume with secret.secretName=\"{name}\" is not allowed because service account {sa} does not reference that secret"
            ));
        }
    }
    for (list, what) in [
        ("initContainers", "init container"),
        ("containers", "container"),
    ] {
        for c in spec.a(list) {
            for e in c.a("env") {
                let secret = e.f("valueFrom").f("secretKeyRef");
                if !secret.is_object() {
                    continue;
                }
                let name = secret.s("name");
                if !mountable.contains(&name) {
                    return Err(format!(
                        "{what} {} with envVar {} referencing secret.secretName=\"{name}\" is not allowed because service account {sa} does not reference that secret",
                        c.s("name"),
                        e.s("name")
                    ));
                }
            }
        }
    }
    let pull: Vec<&str> = account
        .a("imagePullSecrets")
        .iter()
        .map(|s| s.s("name"))
        .collect();
    for (i, s) in spec.a("imagePullSecrets").iter().enumerate() {
        let name = s.s("name");
        if !pull.contains(&name) {
            return Err(format!(
                "imagePullSecrets[{i}].name=\"{name}\" is not allowed because service account {sa} does not reference that imagePullSecret"
            ));
        }
    }
    Ok(())
}

/// The projected volume upstream mounts: a bound token, the CA bundle, the namespace.
fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
            "defaultMode": 420,
        },
    })
}

fn mount_token(pod: &mut Value, suffix: impl FnOnce() -> String) {
    let existing = pod
        .f("spec")
        .a("volumes")
        .iter()
        .map(|v| v.s("name"))
        .find(|n| n.starts_with(VOLUME_PREFIX))
        .map(str::to_string);
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| format!("{VOLUME_PREFIX}{}", suffix()));
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut() {
            let mounted = c
                .a("volumeMounts")
                .iter()
                .any(|m| m.s("mountPath") == API_TOKEN_MOUNT_PATH);
            if mounted {
                continue;
            }
            let Some(c) = c.as_object_mut() else { continue };
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            if !mounts.is_array() {
                *mounts = json!([]);
            }
            if let Some(m) = mounts.as_array_mut() {
                m.push(json!({"name": volume_name, "readOnly": true, "mountPath": API_TOKEN_MOUNT_PATH}));
                needs_volume = true;
            }
        }
    }
    if existing.is_none() && needs_volume {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if !volumes.is_array() {
            *volumes = json!([]);
        }
        if let Some(v) = volumes.as_array_mut() {
            v.push(token_volume(&volume_name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(extra: Value) -> Value {
        let mut a = json!({"metadata": {"name": "default", "namespace": "ns"}});
        if let (Some(a), Some(e)) = (a.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                a.insert(k.clone(), v.clone());
            }
        }
        a
    }

    #[test]
    fn a_pod_runs_as_default_and_mounts_the_api_access_volume_in_every_container() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "i", "image": "busybox"}],
            "containers": [
                {"name": "a", "image": "nginx"},
                {"name": "b", "image": "nginx", "volumeMounts": [{"name": "mine", "mountPath": API_TOKEN_MOUNT_PATH}]},
            ],
            "volumes": [{"name": "mine", "emptyDir": {}}],
        }});
        assert_eq!(account_to_look_up(&mut pod), Ok(Some("default".into())));
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        admit(&mut pod, &sa(json!({})), || "x7k2q".into()).unwrap();
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[1], token_volume("kube-api-access-x7k2q"));
        for c in ["initContainers", "containers"] {
            let m = &pod["spec"][c][0]["volumeMounts"][0];
            assert_eq!(
                m,
                &json!({"name": "kube-api-access-x7k2q", "readOnly": true, "mountPath": API_TOKEN_MOUNT_PATH})
            );
        }
        // The container that mounts something at the path keeps only its own mount.
        assert_eq!(
            pod["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn opting_out_on_the_pod_or_the_account_mounts_nothing_and_the_pod_wins() {
        let spec = json!({"containers": [{"name": "a", "image": "nginx"}]});
        let mut pod = json!({"spec": spec.clone()});
        pod["spec"]["automountServiceAccountToken"] = json!(false);
        admit(&mut pod, &sa(json!({})), || "x".into()).unwrap();
        assert!(pod["spec"].get("volumes").is_none());

        let mut pod = json!({"spec": spec.clone()});
        admit(
            &mut pod,
            &sa(json!({"automountServiceAccountToken": false})),
            || "x".into(),
        )
        .unwrap();
        assert!(pod["spec"].get("volumes").is_none());

        let mut pod = json!({"spec": spec});
        pod["spec"]["automountServiceAccountToken"] = json!(true);
        admit(
            &mut pod,
            &sa(json!({"automountServiceAccountToken": false})),
            || "x".into(),
        )
        .unwrap();
        assert_eq!(pod["spec"]["volumes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn pull_secrets_come_from_the_account_when_the_pod_has_none() {
        let account = sa(json!({"imagePullSecrets": [{"name": "regcred"}]}));
        let mut pod = json!({"spec": {"containers": []}});
        admit(&mut pod, &account, || "x".into()).unwrap();
        assert_eq!(
            pod["spec"]["imagePullSecrets"],
            json!([{"name": "regcred"}])
        );
        let mut own = json!({"spec": {"containers": [], "imagePullSecrets": [{"name": "mine"}]}});
        admit(&mut own, &account, || "x".into()).unwrap();
        assert_eq!(own["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
    }

    #[test]
    fn an_enforcing_account_refuses_secrets_it_does_not_list() {
        let account = sa(json!({
            "metadata": {"name": "robot", "annotations": {ENFORCE_MOUNTABLE_SECRETS: "true"}},
            "secrets": [{"name": "ok"}],
        }));
        let mut fine = json!({"spec": {"containers": [{"name": "c", "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "ok", "key": "k"}}}]}]}});
        assert_eq!(admit(&mut fine, &account, || "x".into()), Ok(()));
        let mut bad = json!({"spec": {"containers": [{"name": "c", "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}]}});
        assert_eq!(
            admit(&mut bad, &account, || "x".into()),
            Err("container c with envVar A referencing secret.secretName=\"nope\" is not allowed because service account robot does not reference that secret".into())
        );
        let mut vol = json!({"spec": {"containers": [], "volumes": [{"name": "v", "secret": {"secretName": "nope"}}]}});
        assert!(
            admit(&mut vol, &account, || "x".into())
                .unwrap_err()
                .starts_with("volume with secret.secretName=\"nope\"")
        );
    }

    #[test]
    fn mirror_pods_name_no_account_and_no_secret() {
        let mut plain = json!({"metadata": {"annotations": {MIRROR_ANNOTATION: "x"}}, "spec": {"containers": []}});
        assert_eq!(account_to_look_up(&mut plain), Ok(None));
        assert!(plain["spec"].get("serviceAccountName").is_none());
        let mut named = json!({"metadata": {"annotations": {MIRROR_ANNOTATION: "x"}}, "spec": {"serviceAccountName": "a"}});
        assert_eq!(
            account_to_look_up(&mut named),
            Err("a mirror pod may not reference service accounts".into())
        );
        let mut secret = json!({"metadata": {"annotations": {MIRROR_ANNOTATION: "x"}}, "spec": {"containers": [
            {"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]}});
        assert_eq!(
            account_to_look_up(&mut secret),
            Err("a mirror pod may not reference secrets".into())
        );
    }

    #[tokio::test]
    async fn pod_creates_need_their_account_and_get_its_token_volume() {
        let t = crate::test_util::TestApiServer::new().await;
        t.server.generic.set_service_account_admission(true);
        let api = t.api();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let (code, body) = api
            .call("POST", "/api/v1/namespaces/default/pods", &pod)
            .await;
        assert_eq!(code, 403, "{body}");
        assert_eq!(
            body["message"],
            "pods \"p\" is forbidden: error looking up service account default/default: serviceaccount \"default\" not found"
        );
        api.create(
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"metadata": {"name": "default"}}),
        )
        .await;
        let (code, body) = api
            .call("POST", "/api/v1/namespaces/default/pods", &pod)
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["spec"]["serviceAccountName"], "default");
        let volume = body["spec"]["volumes"][0]["name"].as_str().unwrap_or("");
        assert!(
            volume.starts_with("kube-api-access-") && volume.len() == 21,
            "{body}"
        );
        assert_eq!(
            body["spec"]["containers"][0]["volumeMounts"][0]["name"],
            volume
        );
        // A missing namespace is still reported as such.
        let (code, body) = api.call("POST", "/api/v1/namespaces/nope/pods", &pod).await;
        assert_eq!(code, 404, "{body}");
    }
}
