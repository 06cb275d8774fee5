//! Legacy service account token Secrets, as upstream's tokens controller keeps them: a
//! Secret of type `kubernetes.io/service-account-token` that names a service account
//! (annotation `kubernetes.io/service-account.name`) gets a signed token, the cluster CA
//! (`ca.crt`) and its `namespace` in its data and the account's uid as annotation
//! `kubernetes.io/service-account.uid`; one whose service account is gone is deleted.
//! Tokens that authenticate are tracked as upstream's legacy-token tracking does: the
//! Secret is labelled `kubernetes.io/legacy-token-last-used` with the date of its last
//! use. Upstream's LegacyServiceAccountTokenCleanUp runs too (`start_cleaner`): a token
//! Secret its account references, mounted by no pod and unused for the clean-up period
//! is labelled `kubernetes.io/legacy-token-invalid-since` (it stops authenticating), and
//! deleted once it has been invalid that long.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k1s_apimachinery::{GroupResource, Status};
use serde_json::{Value, json};

use super::UserInfo;
use super::serviceaccount::ObjectRef;
use crate::ApiServer;
use crate::registry::generic::WriteContext;

/// The Secret type of legacy tokens.
pub const SECRET_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotation naming the service account.
pub const NAME_KEY: &str = "kubernetes.io/service-account.name";
/// The annotation with the service account's uid.
pub const UID_KEY: &str = "kubernetes.io/service-account.uid";
/// The label with the date a token was last used.
pub const LAST_USED_LABEL: &str = "kubernetes.io/legacy-token-last-used";
/// The label with the date a token was invalidated (upstream's clean-up sets it; removing
/// it makes the token work again).
pub const INVALID_SINCE_LABEL: &str = "kubernetes.io/legacy-token-invalid-since";

fn loopback() -> WriteContext {
    WriteContext {
        user: UserInfo::loopback(),
        field_manager: "kube-controller-manager".into(),
        ..WriteContext::default()
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Today's date as the tracking label records it (UTC).
fn today() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d").to_string()
}

/// Authenticates a legacy token: its signature, its Secret (still there, holding this
/// token) and its service account (with the uid the token names). The use is recorded
/// for the tracking label.
pub fn authenticate(server: &ApiServer, token: &str) -> Option<UserInfo> {
    let issuer = server.service_account_tokens.get()?;
    let claims = issuer.verify_legacy(token).ok()?;
    let snapshot = server.registry.snapshot();
    let ns = Some(claims.namespace.as_str());
    let secret_name = claims.secret.as_ref()?.name.clone();
    let secret = server
        .generic
        .get(snapshot.get("", "v1", "secrets")?, ns, &secret_name)
        .ok()?;
    let stored = STANDARD.decode(str_at(&secret, "/data/token")).ok()?;
    if stored != token.as_bytes() || !str_at(&secret, "/metadata/deletionTimestamp").is_empty() {
        tracing::debug!(secret = %secret_name, "legacy token does not match its secret");
        return None;
    }
    let invalid_since = str_at(
        &secret,
        &format!(
            "/metadata/labels/{}",
            INVALID_SINCE_LABEL.replace('/', "~1")
        ),
    );
    if !invalid_since.is_empty() {
        tracing::warn!(
            namespace = %claims.namespace,
            secret = %secret_name,
            %invalid_since,
            "legacy service account token is invalid; remove the invalid-since label to re-enable it"
        );
        return None;
    }
    let sa = server
        .generic
        .get(
            snapshot.get("", "v1", "serviceaccounts")?,
            ns,
            &claims.service_account.name,
        )
        .ok()?;
    let uid = str_at(&sa, "/metadata/uid");
    if !claims.service_account.uid.is_empty() && claims.service_account.uid != uid {
        return None;
    }
    if str_at(
        &secret,
        &format!("/metadata/labels/{}", LAST_USED_LABEL.replace('/', "~1")),
    ) != today()
    {
        server
            .legacy_token_use
            .lock()
            .insert((claims.namespace.clone(), secret_name));
    }
    let mut user = UserInfo::new(
        claims.user_name(),
        [
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{}", claims.namespace),
        ],
    );
    user.uid = uid.to_string();
    Some(user)
}

/// What a token Secret needs.
enum Action {
    None,
    Fill { sa: ObjectRef },
    Delete,
}

fn action(server: &ApiServer, secret: &Value) -> Action {
    if secret.get("type").and_then(Value::as_str) != Some(SECRET_TYPE)
        || !str_at(secret, "/metadata/deletionTimestamp").is_empty()
    {
        return Action::None;
    }
    let ns = str_at(secret, "/metadata/namespace");
    let sa_name = secret
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(NAME_KEY))
        .and_then(Value::as_str)
        .unwrap_or("");
    let snapshot = server.registry.snapshot();
    let Some(sas) = snapshot.get("", "v1", "serviceaccounts") else {
        return Action::None;
    };
    let Ok(sa) = server.generic.get(sas, Some(ns), sa_name) else {
        return Action::Delete;
    };
    let uid = str_at(&sa, "/metadata/uid").to_string();
    let noted_uid = secret
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(UID_KEY))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !noted_uid.is_empty() && noted_uid != uid {
        // The account this token was made for was deleted and recreated.
        return Action::Delete;
    }
    let has = |k: &str| !str_at(secret, &format!("/data/{k}")).is_empty();
    if noted_uid.is_empty() || !has("token") || !has("namespace") {
        return Action::Fill {
            sa: ObjectRef {
                name: sa_name.to_string(),
                uid,
            },
        };
    }
    Action::None
}

/// The cluster CA the root CA publisher put into the namespace.
fn ca_of(server: &ApiServer, ns: &str) -> Option<String> {
    let snapshot = server.registry.snapshot();
    let cm = server
        .generic
        .get(
            snapshot.get("", "v1", "configmaps")?,
            Some(ns),
            "kube-root-ca.crt",
        )
        .ok()?;
    Some(str_at(&cm, "/data/ca.crt").to_string()).filter(|c| !c.is_empty())
}

/// One pass over the token Secrets.
/// Every Secret of the legacy token type, from the watch cache.
fn token_secrets(server: &ApiServer, res: &crate::registry::Resource) -> Vec<Value> {
    let (items, _, _) =
        server
            .generic
            .store()
            .cache()
            .list(&res.info.collection_prefix(None), None, 0);
    items
        .iter()
        .filter_map(|kv| server.generic.decode_stored(res, kv).ok())
        .filter(|s| s.get("type").and_then(Value::as_str) == Some(SECRET_TYPE))
        .collect()
}

/// Sets one label on a Secret (the tracking and invalidation labels).
async fn set_label(
    server: &ApiServer,
    res: &Arc<crate::registry::Resource>,
    ns: &str,
    name: &str,
    key: &str,
    value: &str,
) -> Result<(), Status> {
    server
        .generic
        .update(res, Some(ns), name, None, &loopback(), |cur, _| {
            let mut obj = cur
                .cloned()
                .ok_or_else(|| Status::not_found(&GroupResource::new("", "secrets"), name))?;
            if let Some(l) = crate::meta::metadata_mut(&mut obj)
                .entry("labels")
                .or_insert_with(|| json!({}))
                .as_object_mut()
            {
                l.insert(key.into(), json!(value));
            }
            Ok(obj)
        })
        .await
        .map(drop)
}

async fn sync_once(server: &ApiServer) {
    let snapshot = server.registry.snapshot();
    let Some(res) = snapshot.get("", "v1", "secrets").cloned() else {
        return;
    };
    for secret in token_secrets(server, &res) {
        let ns = str_at(&secret, "/metadata/namespace").to_string();
        let name = str_at(&secret, "/metadata/name").to_string();
        match action(server, &secret) {
            Action::None => {}
            Action::Delete => {
                let r = server
                    .generic
                    .delete(&res, Some(&ns), &name, &Default::default(), &loopback())
                    .await;
                if let Err(s) = r {
                    tracing::debug!(%ns, %name, error = %s.message, "cannot delete a token secret");
                }
            }
            Action::Fill { sa } => {
                let Some(issuer) = server.service_account_tokens.get() else {
                    return;
                };
                let token = match issuer.issue_legacy(&ns, &sa, &name) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot sign a legacy service account token");
                        continue;
                    }
                };
                let ca = ca_of(server, &ns);
                let r = server
                    .generic
                    .update(&res, Some(&ns), &name, None, &loopback(), |cur, _| {
                        let mut obj = cur.cloned().ok_or_else(|| {
                            Status::not_found(&GroupResource::new("", "secrets"), &name)
                        })?;
                        let data = obj
                            .as_object_mut()
                            .map(|o| o.entry("data").or_insert_with(|| json!({})));
                        if let Some(Value::Object(data)) = data {
                            data.insert("token".into(), json!(STANDARD.encode(&token)));
                            data.insert("namespace".into(), json!(STANDARD.encode(&ns)));
                            if let Some(ca) = &ca {
                                data.insert("ca.crt".into(), json!(STANDARD.encode(ca)));
                            }
                        }
                        if let Some(a) = crate::meta::metadata_mut(&mut obj)
                            .entry("annotations")
                            .or_insert_with(|| json!({}))
                            .as_object_mut()
                        {
                            a.insert(UID_KEY.into(), json!(sa.uid));
                        }
                        Ok(obj)
                    })
                    .await;
                if let Err(s) = r {
                    tracing::debug!(%ns, %name, error = %s.message, "cannot fill a token secret");
                }
            }
        }
    }
}

/// Labels the Secrets whose tokens were used with today's date.
async fn track_use(server: &ApiServer) {
    let used: Vec<(String, String)> = std::mem::take(&mut *server.legacy_token_use.lock())
        .into_iter()
        .collect();
    if used.is_empty() {
        return;
    }
    let snapshot = server.registry.snapshot();
    let Some(res) = snapshot.get("", "v1", "secrets").cloned() else {
        return;
    };
    let date = today();
    for (ns, name) in used {
        if let Err(s) = set_label(server, &res, &ns, &name, LAST_USED_LABEL, &date).await {
            tracing::debug!(%ns, %name, error = %s.message, "cannot label a used token secret");
        }
    }
}

/// Runs the tokens controller: a pass at start, after every change of a Secret or
/// ServiceAccount, and every few seconds for the tracking labels.
pub fn start(server: Arc<ApiServer>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let cache = server.generic.store().cache().clone();
            let watched = ["/registry/secrets/", "/registry/serviceaccounts/"]
                .map(|p| cache.watch(p, cache.revision()));
            let [Ok(mut secrets), Ok(mut accounts)] = watched else {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            };
            sync_once(&server).await;
            loop {
                if server.is_shutting_down() {
                    return;
                }
                let changed = tokio::select! {
                    r = secrets.next() => r.is_ok(),
                    r = accounts.next() => r.is_ok(),
                    () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {
                        track_use(&server).await;
                        continue;
                    }
                };
                if !changed {
                    break;
                }
                // Let a burst of writes settle into one pass.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                sync_once(&server).await;
                track_use(&server).await;
            }
        }
    })
}

/// The ConfigMap (in kube-system) recording the day legacy token use began to be tracked.
pub const TRACKING_CONFIGMAP: &str = "kube-apiserver-legacy-service-account-token-tracking";
/// Its key holding that date.
const TRACKING_SINCE_KEY: &str = "since";
/// Upstream's clean-up runs once a day (more often when the period is shorter).
const CLEAN_UP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn date_of(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// The tracking date, recording today's when there is none yet (as upstream's API
/// server does when it starts tracking).
async fn tracked_since(server: &ApiServer) -> Option<jiff::civil::Date> {
    let snapshot = server.registry.snapshot();
    let res = snapshot.get("", "v1", "configmaps")?.clone();
    match server
        .generic
        .get(&res, Some("kube-system"), TRACKING_CONFIGMAP)
    {
        Ok(cm) => str_at(&cm, &format!("/data/{TRACKING_SINCE_KEY}"))
            .parse()
            .ok(),
        Err(_) => {
            let today = today();
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": TRACKING_CONFIGMAP, "namespace": "kube-system"},
                "data": {TRACKING_SINCE_KEY: today}});
            let r = server
                .generic
                .create(&res, Some("kube-system"), cm, &loopback(), Vec::new())
                .await;
            if let Err(s) = r {
                tracing::debug!(error = %s.message, "cannot record legacy token tracking");
            }
            today.parse().ok()
        }
    }
}

/// The Secrets the pods of a namespace name (volumes, env, image pull secrets).
fn mounted_secrets(server: &ApiServer, namespace: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let snapshot = server.registry.snapshot();
    let Some(res) = snapshot.get("", "v1", "pods") else {
        return names;
    };
    let (items, _, _) =
        server
            .generic
            .store()
            .cache()
            .list(&res.info.collection_prefix(Some(namespace)), None, 0);
    let mut add = |v: Option<&Value>| {
        if let Some(n) = v.and_then(Value::as_str).filter(|n| !n.is_empty()) {
            names.insert(n.to_string());
        }
    };
    for kv in items {
        let Ok(pod) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        let spec = &pod["spec"];
        for s in spec["imagePullSecrets"].as_array().into_iter().flatten() {
            add(s.get("name"));
        }
        for v in spec["volumes"].as_array().into_iter().flatten() {
            add(v.pointer("/secret/secretName"));
            for src in v
                .pointer("/projected/sources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                add(src.pointer("/secret/name"));
            }
        }
        for c in ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .filter_map(|k| spec[k].as_array())
            .flatten()
        {
            for e in c["envFrom"].as_array().into_iter().flatten() {
                add(e.pointer("/secretRef/name"));
            }
            for e in c["env"].as_array().into_iter().flatten() {
                add(e.pointer("/valueFrom/secretKeyRef/name"));
            }
        }
    }
    names
}

/// Whether the Secret's account (with the uid it names) still lists it in `secrets`:
/// only such tokens are known to be auto-generated, and only they are cleaned up.
fn referenced_by_account(server: &ApiServer, secret: &Value) -> bool {
    let annotation = |k: &str| {
        secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let snapshot = server.registry.snapshot();
    let Some(res) = snapshot.get("", "v1", "serviceaccounts") else {
        return false;
    };
    let ns = str_at(secret, "/metadata/namespace");
    let Ok(sa) = server.generic.get(res, Some(ns), annotation(NAME_KEY)) else {
        return false;
    };
    let uid = annotation(UID_KEY);
    (uid.is_empty() || uid == str_at(&sa, "/metadata/uid"))
        && sa["secrets"].as_array().is_some_and(|l| {
            l.iter().any(|r| {
                r.get("name").and_then(Value::as_str) == Some(str_at(secret, "/metadata/name"))
            })
        })
}

/// One pass of upstream's legacy token clean-up at `now` with the clean-up `period`.
pub async fn clean_once(server: &ApiServer, period: std::time::Duration, now: jiff::Timestamp) {
    let Some(since) = tracked_since(server).await else {
        return;
    };
    let Ok(period) = jiff::SignedDuration::try_from(period) else {
        return;
    };
    // Tracking counts from the day after it began.
    let tracked_from = since
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp());
    let Some(tracked_from) = tracked_from else {
        return;
    };
    if tracked_from.checked_add(period).map_or(true, |t| now < t) {
        return;
    }
    let Ok(preserve_created) = now.checked_sub(period) else {
        return;
    };
    let preserve_used = date_of(preserve_created);
    let snapshot = server.registry.snapshot();
    let Some(res) = snapshot.get("", "v1", "secrets").cloned() else {
        return;
    };
    let mut mounted: std::collections::HashMap<String, std::collections::BTreeSet<String>> =
        std::collections::HashMap::new();
    for secret in token_secrets(server, &res) {
        if !str_at(&secret, "/metadata/deletionTimestamp").is_empty() {
            continue;
        }
        let created = str_at(&secret, "/metadata/creationTimestamp").parse::<jiff::Timestamp>();
        if !created.is_ok_and(|c| c < preserve_created) {
            continue;
        }
        let label = |k: &str| {
            str_at(
                &secret,
                &format!("/metadata/labels/{}", k.replace('/', "~1")),
            )
            .to_string()
        };
        let last_used = label(LAST_USED_LABEL);
        if !last_used.is_empty()
            && (last_used.parse::<jiff::civil::Date>().is_err() || last_used >= preserve_used)
        {
            continue;
        }
        if !referenced_by_account(server, &secret) {
            continue;
        }
        let ns = str_at(&secret, "/metadata/namespace").to_string();
        let name = str_at(&secret, "/metadata/name").to_string();
        if mounted
            .entry(ns.clone())
            .or_insert_with(|| mounted_secrets(server, &ns))
            .contains(&name)
        {
            continue;
        }
        let invalid_since = label(INVALID_SINCE_LABEL);
        if invalid_since.parse::<jiff::civil::Date>().is_err() {
            let date = date_of(now);
            tracing::info!(%ns, %name, invalid_since = %date, "marking an unused legacy service account token invalid");
            if let Err(s) = set_label(server, &res, &ns, &name, INVALID_SINCE_LABEL, &date).await {
                tracing::debug!(%ns, %name, error = %s.message, "cannot mark a legacy token invalid");
            }
            continue;
        }
        if invalid_since >= preserve_used {
            continue;
        }
        tracing::info!(%ns, %name, %invalid_since, "deleting an unused legacy service account token");
        let opts = crate::registry::generic::DeleteOptions {
            precondition_resource_version: Some(
                str_at(&secret, "/metadata/resourceVersion").to_string(),
            ),
            ..Default::default()
        };
        if let Err(s) = server
            .generic
            .delete(&res, Some(&ns), &name, &opts, &loopback())
            .await
            && s.code() != 404
            && s.code() != 409
        {
            tracing::warn!(%ns, %name, error = %s.message, "cannot delete a legacy token");
        }
    }
}

/// Runs upstream's LegacyServiceAccountTokenCleanUp with the clean-up `period`: a pass
/// at start, then daily (or every `period`, when shorter).
pub fn start_cleaner(
    server: Arc<ApiServer>,
    period: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    let interval = period
        .min(CLEAN_UP_INTERVAL)
        .max(std::time::Duration::from_secs(1));
    tokio::spawn(async move {
        loop {
            if server.is_shutting_down() {
                return;
            }
            clean_once(&server, period, jiff::Timestamp::now()).await;
            tokio::time::sleep(interval).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestApiServer;

    fn token_secret(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": name, "annotations": {NAME_KEY: "old"}}})
    }

    #[tokio::test]
    async fn unused_listed_tokens_are_invalidated_then_deleted() {
        let t = TestApiServer::new().await;
        let api = t.api();
        api.create(
            "/api/v1/namespaces/kube-system/configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": TRACKING_CONFIGMAP}, "data": {"since": "2020-01-01"}}),
        )
        .await;
        api.create(
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "old"},
                "secrets": [{"name": "old-token"}, {"name": "mounted-token"}]}),
        )
        .await;
        for name in ["old-token", "mounted-token", "unlisted-token"] {
            api.create("/api/v1/namespaces/default/secrets", token_secret(name))
                .await;
        }
        api.create(
            "/api/v1/namespaces/default/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
                "spec": {"containers": [{"name": "c", "image": "i"}],
                    "volumes": [{"name": "t", "secret": {"secretName": "mounted-token"}}]}}),
        )
        .await;
        let period = std::time::Duration::from_secs(3600);
        let hours = |h: i64| jiff::Timestamp::now() + jiff::SignedDuration::from_hours(h);
        let label_of = |name: &'static str| {
            let api = t.api();
            async move {
                let (_, s) = api
                    .call(
                        "GET",
                        &format!("/api/v1/namespaces/default/secrets/{name}"),
                        &Value::Null,
                    )
                    .await;
                s["metadata"]["labels"][INVALID_SINCE_LABEL]
                    .as_str()
                    .map(str::to_string)
            }
        };
        // Unused for longer than the period: marked invalid, and then no longer good.
        clean_once(&t.server, period, hours(2)).await;
        assert_eq!(label_of("old-token").await, Some(date_of(hours(2))));
        assert_eq!(
            label_of("mounted-token").await,
            None,
            "a mounted token stays"
        );
        assert_eq!(
            label_of("unlisted-token").await,
            None,
            "only listed tokens go"
        );
        // Invalid for less than the period: kept; for longer: deleted.
        clean_once(&t.server, period, hours(2)).await;
        let (code, _) = api
            .call(
                "GET",
                "/api/v1/namespaces/default/secrets/old-token",
                &Value::Null,
            )
            .await;
        assert_eq!(code, 200);
        clean_once(&t.server, period, hours(72)).await;
        let (code, _) = api
            .call(
                "GET",
                "/api/v1/namespaces/default/secrets/old-token",
                &Value::Null,
            )
            .await;
        assert_eq!(code, 404);
    }
}
