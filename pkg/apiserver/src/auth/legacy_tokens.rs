//! Legacy service account token Secrets, as upstream's tokens controller keeps them: a
//! Secret of type `kubernetes.io/service-account-token` that names a service account
//! (annotation `kubernetes.io/service-account.name`) gets a signed token, the cluster CA
//! (`ca.crt`) and its `namespace` in its data and the account's uid as annotation
//! `kubernetes.io/service-account.uid`; one whose service account is gone is deleted.
//! Tokens that authenticate are tracked as upstream's legacy-token tracking does: the
//! Secret is labelled `kubernetes.io/legacy-token-last-used` with the date of its last
//! use. (Upstream's clean-up of tokens unused for a year is not built.)

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
async fn sync_once(server: &ApiServer) {
    let snapshot = server.registry.snapshot();
    let Some(res) = snapshot.get("", "v1", "secrets").cloned() else {
        return;
    };
    let (items, _, _) =
        server
            .generic
            .store()
            .cache()
            .list(&res.info.collection_prefix(None), None, 0);
    let secrets: Vec<Value> = items
        .iter()
        .filter_map(|kv| server.generic.decode_stored(&res, kv).ok())
        .filter(|s| s.get("type").and_then(Value::as_str) == Some(SECRET_TYPE))
        .collect();
    for secret in secrets {
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
        let r = server
            .generic
            .update(&res, Some(&ns), &name, None, &loopback(), |cur, _| {
                let mut obj = cur
                    .cloned()
                    .ok_or_else(|| Status::not_found(&GroupResource::new("", "secrets"), &name))?;
                if let Some(l) = crate::meta::metadata_mut(&mut obj)
                    .entry("labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    l.insert(LAST_USED_LABEL.into(), json!(date));
                }
                Ok(obj)
            })
            .await;
        if let Err(s) = r {
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
