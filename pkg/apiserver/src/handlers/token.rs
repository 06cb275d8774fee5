//! `POST .../serviceaccounts/<name>/token`: an `authentication.k8s.io/v1` TokenRequest
//! answered with a signed service account token (upstream's `TokenREST`). Nothing is
//! stored.

use axum::response::Response;
use http::StatusCode;
use k1s_apimachinery::{FieldError, GroupKind, GroupResource, Path, Status};
use serde_json::{Value, json};

use super::create::{decode_typed, object_body};
use super::{Call, response};
use crate::auth::serviceaccount::{ObjectRef, PrivateClaims};

/// Upstream's default `spec.expirationSeconds`.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Upstream's shortest token: ten minutes.
const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Upstream's longest: 2^32 seconds.
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

fn object_ref(obj: &Value) -> ObjectRef {
    ObjectRef {
        name: obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
        uid: obj["metadata"]["uid"].as_str().unwrap_or("").to_string(),
    }
}

/// Reads a core object the token is bound to; `plural` names the resource.
fn get_core(
    call: &Call,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, Status> {
    let snapshot = call.server.registry.snapshot();
    let resource = snapshot
        .get("", "v1", plural)
        .ok_or_else(|| Status::internal_error(&format!("{plural} are not served")))?;
    call.server.generic.get(resource, namespace, name)
}

/// Serves `create` of `serviceaccounts/token`.
pub async fn create(mut call: Call) -> Result<Response, Status> {
    let ctx = call.write_context()?;
    let mut warnings = Vec::new();
    let mut req = object_body(&mut call, ctx.field_validation, &mut warnings).await?;
    let name = call.path.name.clone().unwrap_or_default();
    let namespace = call.namespace().unwrap_or("").to_string();
    let gk = GroupKind::new("authentication.k8s.io", "TokenRequest");
    decode_typed(
        &mut req,
        "io.k8s.api.authentication.v1.TokenRequest",
        "TokenRequest",
        "v1",
    )?;

    // NodeRestriction (admission) comes before the REST storage validates the request.
    call.server
        .generic
        .admit_node_restriction(&crate::admission::noderestriction::Request {
            group: "",
            resource: "serviceaccounts",
            subresource: "token",
            operation: crate::admission::Operation::Create,
            namespace: &namespace,
            name: &name,
            object: Some(&req),
            old_object: None,
            user: &ctx.user,
        })?;

    // Defaults and upstream's ValidateTokenRequest.
    let expiration = match &req["spec"]["expirationSeconds"] {
        Value::Null => DEFAULT_EXPIRATION_SECONDS,
        v => v
            .as_i64()
            .ok_or_else(|| Status::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    let path = Path::new("spec").child("expirationSeconds");
    let mut errs = Vec::new();
    if expiration < MIN_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            &path,
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            &path,
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let meta_name = req["metadata"]["name"].as_str().unwrap_or("").to_string();
    if !meta_name.is_empty() && meta_name != name {
        errs.push(FieldError::invalid(
            &Path::new("metadata").child("name"),
            meta_name,
            "must match the service account name if specified",
        ));
    }
    let meta_ns = req["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if !meta_ns.is_empty() && meta_ns != namespace {
        errs.push(FieldError::invalid(
            &Path::new("metadata").child("namespace"),
            meta_ns,
            "must match the service account namespace if specified",
        ));
    }
    if !errs.is_empty() {
        return Err(Status::invalid(&gk, &name, &errs));
    }

    let sa = get_core(&call, "serviceaccounts", Some(&namespace), &name)?;
    let mut claims = PrivateClaims {
        namespace: namespace.clone(),
        service_account: object_ref(&sa),
        ..Default::default()
    };
    let bound = req["spec"]["boundObjectRef"].clone();
    if bound.is_object() {
        let api_version = bound["apiVersion"].as_str().unwrap_or("");
        let kind = bound["kind"].as_str().unwrap_or("");
        let ref_name = bound["name"].as_str().unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let record = match (group, kind) {
            ("", "Pod") => {
                let pod = get_core(&call, "pods", Some(&namespace), ref_name)?;
                let pod_sa = pod["spec"]["serviceAccountName"].as_str().unwrap_or("");
                if pod_sa != name {
                    return Err(Status::bad_request(&format!(
                        "cannot bind token for serviceaccount \"{name}\" to pod running with serviceaccount \"{pod_sa}\""
                    )));
                }
                let r = object_ref(&pod);
                // The node the pod runs on is recorded too (upstream's pod node info).
                if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                    claims.node = Some(match get_core(&call, "nodes", None, node) {
                        Ok(n) => object_ref(&n),
                        Err(_) => ObjectRef {
                            name: node.to_string(),
                            uid: String::new(),
                        },
                    });
                }
                claims.pod = Some(r.clone());
                r
            }
            ("", "Secret") => {
                let r = object_ref(&get_core(&call, "secrets", Some(&namespace), ref_name)?);
                claims.secret = Some(r.clone());
                r
            }
            ("", "Node") => {
                let r = object_ref(&get_core(&call, "nodes", None, ref_name)?);
                claims.node = Some(r.clone());
                r
            }
            _ => {
                return Err(Status::bad_request(&format!(
                    "cannot bind token to object of type {group}/{version}, Kind={kind}"
                )));
            }
        };
        let asked_uid = bound["uid"].as_str().unwrap_or("");
        if !asked_uid.is_empty() && asked_uid != record.uid {
            return Err(Status::conflict(
                &GroupResource::new("", kind),
                ref_name,
                &format!(
                    "the UID in the bound object reference ({asked_uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                    record.uid
                ),
            ));
        }
    }

    let issuer = call
        .server
        .service_account_tokens
        .get()
        .cloned()
        .ok_or_else(|| Status::internal_error("no service account signing key is configured"))?;
    let audiences: Vec<String> = match req["spec"]["audiences"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => issuer.audiences.clone(),
    };
    let created = jiff::Timestamp::now();
    let (token, exp) = issuer
        .issue(&claims, &audiences, expiration)
        .map_err(|e| Status::internal_error(&format!("failed to generate token: {e}")))?;
    let expires = jiff::Timestamp::from_second(exp)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    req["kind"] = json!("TokenRequest");
    req["metadata"] = crate::meta::echoed_metadata(&req["metadata"]);
    req["metadata"]["name"] = json!(name);
    req["metadata"]["namespace"] = json!(namespace);
    req["metadata"]["creationTimestamp"] =
        json!(created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    req["spec"]["audiences"] = json!(audiences);
    req["spec"]["expirationSeconds"] = json!(expiration);
    if !bound.is_object() {
        req["spec"]["boundObjectRef"] = Value::Null;
    }
    req["status"] = json!({"token": token, "expirationTimestamp": expires});
    if let Some(spec) = req["spec"].as_object_mut() {
        spec.retain(|_, v| !v.is_null());
    }
    let r = response::json(StatusCode::CREATED, &req);
    Ok(response::with_warnings(r, &warnings))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::auth::serviceaccount::authenticate;
    use crate::test_util::TestApiServer;

    const SA: &str = "/api/v1/namespaces/default/serviceaccounts";

    #[tokio::test]
    async fn a_token_request_issues_a_token_that_authenticates_while_its_objects_live() {
        let t = TestApiServer::new().await;
        let api = t.api();
        let sa = api.create(SA, json!({"metadata": {"name": "robot"}})).await;
        let (code, body) = api
            .call("POST", &format!("{SA}/robot/token"), &json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "spec": {}}))
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["kind"], "TokenRequest");
        assert_eq!(body["metadata"]["name"], "robot");
        // Echoed metadata goes out as the typed struct writes it.
        let (code, odd) = api
            .call(
                "POST",
                &format!("{SA}/robot/token"),
                &json!({"metadata": {"ownerReferences": [null]}, "spec": {}}),
            )
            .await;
        assert_eq!(code, 201, "{odd}");
        assert_eq!(odd["metadata"]["ownerReferences"][0]["uid"], "", "{odd}");
        assert_eq!(body["spec"]["expirationSeconds"], 3600);
        assert_eq!(
            body["spec"]["audiences"],
            json!(["https://kubernetes.default.svc.cluster.local"])
        );
        assert!(body["status"]["expirationTimestamp"].as_str().is_some());
        let token = body["status"]["token"].as_str().unwrap().to_string();
        let user = authenticate(&t.server, &token).expect("authenticated");
        assert_eq!(user.name, "system:serviceaccount:default:robot");
        assert_eq!(
            user.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ]
        );
        assert_eq!(user.uid, sa["metadata"]["uid"].as_str().unwrap());
        let credential = &user.extra["authentication.kubernetes.io/credential-id"][0];
        assert!(credential.starts_with("JTI="), "{credential}");

        // Too short, a missing account, a foreign bound kind, a stale uid.
        let (code, body) = api
            .call(
                "POST",
                &format!("{SA}/robot/token"),
                &json!({"spec": {"expirationSeconds": 60}}),
            )
            .await;
        assert_eq!(code, 422);
        assert_eq!(
            body["message"],
            "TokenRequest.authentication.k8s.io \"robot\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        );
        let (code, _) = api
            .call("POST", &format!("{SA}/nobody/token"), &json!({}))
            .await;
        assert_eq!(code, 404);
        let (code, body) = api
            .call("POST", &format!("{SA}/robot/token"), &json!({"spec": {"boundObjectRef": {"kind": "Deployment", "apiVersion": "apps/v1", "name": "x"}}}))
            .await;
        assert_eq!(code, 400);
        assert_eq!(
            body["message"],
            "cannot bind token to object of type apps/v1, Kind=Deployment"
        );

        // Bound to a secret: valid until the secret goes.
        let secret = api
            .create(
                "/api/v1/namespaces/default/secrets",
                json!({"metadata": {"name": "s"}}),
            )
            .await;
        let (code, body) = api
            .call("POST", &format!("{SA}/robot/token"), &json!({"spec": {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "s", "uid": "other"}}}))
            .await;
        assert_eq!(code, 409, "{body}");
        let (code, body) = api
            .call("POST", &format!("{SA}/robot/token"), &json!({"spec": {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "s", "uid": secret["metadata"]["uid"]}}}))
            .await;
        assert_eq!(code, 201, "{body}");
        let bound = body["status"]["token"].as_str().unwrap().to_string();
        assert!(authenticate(&t.server, &bound).is_some());
        api.call("DELETE", "/api/v1/namespaces/default/secrets/s", &json!({}))
            .await;
        assert!(authenticate(&t.server, &bound).is_none());

        // Deleting the account invalidates its tokens.
        api.call("DELETE", &format!("{SA}/robot"), &json!({})).await;
        assert!(authenticate(&t.server, &token).is_none());
        assert!(authenticate(&t.server, "not-a-jwt").is_none());
    }
}
