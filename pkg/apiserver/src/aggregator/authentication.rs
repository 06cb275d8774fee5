//! `kube-system/extension-apiserver-authentication`: the ConfigMap from which extension
//! API servers learn how to authenticate requests (upstream's cluster-authentication-trust
//! controller writes it): the client CA, and the front-proxy CA with the request-header
//! names. Also upstream's bootstrap Role that lets them read it.

use k1s_apimachinery::Status;
use serde_json::{Value, json};

use crate::ApiServer;
use crate::auth::UserInfo;
use crate::registry::generic::WriteContext;

/// The ConfigMap's namespace.
pub const NAMESPACE: &str = "kube-system";
/// The ConfigMap's name.
pub const NAME: &str = "extension-apiserver-authentication";
/// The Role extension servers are bound to for reading it.
pub const READER_ROLE: &str = "extension-apiserver-authentication-reader";

fn ctx() -> WriteContext {
    WriteContext {
        user: UserInfo::loopback(),
        field_manager: "kube-apiserver".into(),
        ..WriteContext::default()
    }
}

/// The ConfigMap's data: `allowed_names` are the proxy certificate names extension
/// servers accept identities from.
pub fn data(client_ca_pem: &str, request_header_ca_pem: &str, allowed_names: &[&str]) -> Value {
    let list = |v: &[&str]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    json!({
        "client-ca-file": client_ca_pem,
        "requestheader-allowed-names": list(allowed_names),
        "requestheader-client-ca-file": request_header_ca_pem,
        "requestheader-extra-headers-prefix": list(&["X-Remote-Extra-"]),
        "requestheader-group-headers": list(&["X-Remote-Group"]),
        "requestheader-uid-headers": list(&["X-Remote-Uid"]),
        "requestheader-username-headers": list(&["X-Remote-User"]),
    })
}

/// Writes the ConfigMap (created, or its data replaced when it differs) and creates
/// the reader Role when missing.
pub async fn publish(server: &ApiServer, data: Value) -> Result<(), Status> {
    let snap = server.registry.snapshot();
    let Some(cms) = snap.get("", "v1", "configmaps").cloned() else {
        return Ok(());
    };
    let generic = &server.generic;
    match generic.get(&cms, Some(NAMESPACE), NAME) {
        Ok(current) if current.get("data") == Some(&data) => {}
        Ok(_) => {
            generic
                .update(&cms, Some(NAMESPACE), NAME, None, &ctx(), |cur, _| {
                    let mut next = cur.cloned().unwrap_or_else(|| json!({}));
                    next["data"] = data.clone();
                    Ok(next)
                })
                .await?;
        }
        Err(_) => {
            let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": NAME, "namespace": NAMESPACE}, "data": data});
            match generic
                .create(&cms, Some(NAMESPACE), obj, &ctx(), Vec::new())
                .await
            {
                Ok(_) => {}
                Err(s) if s.reason() == "AlreadyExists" => {}
                Err(s) => return Err(s),
            }
        }
    }
    if let Some(roles) = snap
        .get("rbac.authorization.k8s.io", "v1", "roles")
        .cloned()
        && generic.get(&roles, Some(NAMESPACE), READER_ROLE).is_err()
    {
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": READER_ROLE, "namespace": NAMESPACE,
                "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                "resourceNames": [NAME], "verbs": ["get", "list", "watch"]}]});
        match generic
            .create(&roles, Some(NAMESPACE), role, &ctx(), Vec::new())
            .await
        {
            Ok(_) => {}
            Err(s) if s.reason() == "AlreadyExists" => {}
            Err(s) => return Err(s),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestApiServer;

    #[tokio::test]
    async fn the_configmap_and_reader_role_are_published_once() {
        let api = TestApiServer::new().await;
        let d = data("CA", "RH", &["system:auth-proxy"]);
        publish(&api.server, d.clone()).await.expect("publish");
        publish(&api.server, d).await.expect("publish again");
        let snap = api.server.registry.snapshot();
        let cms = snap.get("", "v1", "configmaps").expect("configmaps");
        let cm = api
            .server
            .generic
            .get(cms, Some(NAMESPACE), NAME)
            .expect("stored");
        assert_eq!(
            cm["data"]["requestheader-username-headers"],
            "[\"X-Remote-User\"]"
        );
        assert_eq!(
            cm["data"]["requestheader-allowed-names"],
            "[\"system:auth-proxy\"]"
        );
        assert_eq!(cm["data"]["requestheader-client-ca-file"], "RH");
    }
}
