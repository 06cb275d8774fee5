//! `authentication.k8s.io/v1` reviews, answered from the request and never stored:
//! SelfSubjectReview (`kubectl auth whoami`: who the caller is) and TokenReview (who a
//! bearer token belongs to, for webhook token authenticators and proxies).

use axum::response::Response;
use http::StatusCode;
use k1s_apimachinery::{FieldError, GroupKind, Path, Status};
use serde_json::{Value, json};

use super::create::object_body;
use super::negotiation::{Output, not_acceptable, parse_accept, resource_output};
use super::{Call, response};
use crate::auth::UserInfo;
use crate::auth::authz::Attributes;
use crate::auth::serviceaccount;

fn user_info(user: &UserInfo) -> Value {
    let mut info = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        info["extra"] = json!(user.extra);
    }
    info
}

/// Refuses a Table of a review with upstream's 406: a review kind has no table printer
/// (upstream allows the Table transform only where a resource has one).
fn refuse_table(call: &Call) -> Result<(), Status> {
    if resource_output(&parse_accept(call.header(http::header::ACCEPT)))? == Output::Table {
        return Err(not_acceptable());
    }
    Ok(())
}

/// Serves `create` of `selfsubjectreviews` and `tokenreviews`.
pub async fn create(mut call: Call) -> Result<Response, Status> {
    refuse_table(&call)?;
    let ctx = call.write_context()?;
    let mut warnings = Vec::new();
    let body = object_body(&mut call, ctx.field_validation, &mut warnings).await?;
    let mut obj = call.server.generic.decode_request(
        &call.resource,
        body,
        ctx.field_validation,
        &mut warnings,
    )?;
    let kind = call.resource.info.kind.clone();
    let status = match kind.as_str() {
        "SelfSubjectReview" => json!({"userInfo": user_info(&call.user)}),
        "TokenReview" => {
            let token = obj["spec"]["token"].as_str().unwrap_or("").to_string();
            if token.is_empty() {
                return Err(Status::bad_request(
                    "token is required for TokenReview in authentication",
                ));
            }
            let server = &call.server;
            let asked: Vec<String> = obj["spec"]["audiences"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let api_audiences = server
                .service_account_tokens
                .get()
                .map(|i| i.audiences.clone())
                .unwrap_or_default();
            let audiences = if asked.is_empty() {
                api_audiences.clone()
            } else {
                asked
            };
            // A legacy token names no audience: upstream gives it the API server's, so
            // it passes only a review asking for one of those, which it then answers.
            let legacy_audiences: Vec<String> = audiences
                .iter()
                .filter(|a| api_audiences.contains(a))
                .cloned()
                .collect();
            let mut audiences = audiences;
            let user = match server.tokens.authenticate(&token) {
                Some(u) => Some(u.clone()),
                None => crate::auth::bootstrap_token::authenticate(server, &token)
                    .or_else(|| serviceaccount::authenticate_for(server, &token, &audiences))
                    .or_else(|| {
                        if legacy_audiences.is_empty() {
                            return None;
                        }
                        let user = crate::auth::legacy_tokens::authenticate(server, &token)?;
                        audiences = legacy_audiences;
                        Some(user)
                    }),
            };
            match user {
                Some(u) => {
                    json!({"authenticated": true, "user": user_info(&u), "audiences": audiences})
                }
                None => json!({"user": {}, "error": "invalid bearer token"}),
            }
        }
        other => {
            return Err(Status::internal_error(&format!("{other} is not a review")));
        }
    };
    obj["apiVersion"] = json!("authentication.k8s.io/v1");
    obj["kind"] = json!(kind);
    obj["metadata"] = if kind == "SelfSubjectReview" {
        // Upstream answers a new object: none of the request's metadata, created now.
        json!({"creationTimestamp": crate::meta::now_rfc3339()})
    } else {
        // A TokenReview answers the request itself; its metadata goes out as Go writes the
        // decoded struct (an owner reference sent as `null` comes back with its fields empty).
        crate::meta::echoed_metadata(&obj["metadata"])
    };
    obj["status"] = status;
    let r = response::json(StatusCode::CREATED, &obj);
    Ok(response::with_warnings(r, &warnings))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The attributes an access review's spec asks about.
fn review_attributes(spec: &Value, user: UserInfo) -> Attributes {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        Attributes {
            user,
            verb: s(&r["verb"]),
            resource_request: true,
            namespace: s(&r["namespace"]),
            api_group: s(&r["group"]),
            api_version: s(&r["version"]),
            resource: s(&r["resource"]),
            subresource: s(&r["subresource"]),
            name: s(&r["name"]),
            path: String::new(),
        }
    } else {
        let n = &spec["nonResourceAttributes"];
        Attributes {
            user,
            verb: s(&n["verb"]),
            resource_request: false,
            path: s(&n["path"]),
            ..Default::default()
        }
    }
}

/// Serves `create` of the `authorization.k8s.io` reviews: the authorizer's answer for
/// the subject (the caller for the self reviews), or the caller's rules in a namespace.
pub async fn create_access_review(mut call: Call) -> Result<Response, Status> {
    refuse_table(&call)?;
    let ctx = call.write_context()?;
    let mut warnings = Vec::new();
    let body = object_body(&mut call, ctx.field_validation, &mut warnings).await?;
    let mut obj = call.server.generic.decode_request(
        &call.resource,
        body,
        ctx.field_validation,
        &mut warnings,
    )?;
    let kind = call.resource.info.kind.clone();
    let gk = GroupKind::new("authorization.k8s.io", &kind);
    let spec = obj["spec"].clone();
    let server = call.server.clone();
    let status = if kind == "SelfSubjectRulesReview" {
        let ns = spec["namespace"].as_str().unwrap_or("");
        let rules = server.authorizer.rules_for(&server, &call.user, ns);
        let mut resource_rules = Vec::new();
        let mut non_resource_rules = Vec::new();
        for r in rules {
            if !r.resources.is_empty() {
                let mut v =
                    json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
                if !r.resource_names.is_empty() {
                    v["resourceNames"] = json!(r.resource_names);
                }
                resource_rules.push(v);
            }
            if !r.non_resource_urls.is_empty() {
                non_resource_rules
                    .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
            }
        }
        json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false})
    } else {
        let has_res = spec["resourceAttributes"].is_object();
        let has_non = spec["nonResourceAttributes"].is_object();
        let mut errs = Vec::new();
        if has_res == has_non {
            let (path, value) = if has_res {
                (
                    "nonResourceAttributes",
                    spec["nonResourceAttributes"].to_string(),
                )
            } else {
                ("resourceAttributes", "null".to_string())
            };
            errs.push(FieldError::invalid(
                &Path::new("spec").child(path),
                value,
                if has_res {
                    "cannot be specified in combination with resourceAttributes"
                } else {
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified"
                },
            ));
        }
        let user = match kind.as_str() {
            "SelfSubjectAccessReview" => call.user.clone(),
            _ => {
                let name = spec["user"].as_str().unwrap_or("").to_string();
                let groups = strings(&spec["groups"]);
                if name.is_empty() && groups.is_empty() {
                    errs.push(FieldError::invalid(
                        &Path::new("spec").child("user"),
                        "",
                        "at least one of user or group must be specified",
                    ));
                }
                let extra = spec["extra"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
                    .unwrap_or_default();
                UserInfo {
                    name,
                    groups,
                    uid: spec["uid"].as_str().unwrap_or("").to_string(),
                    extra,
                }
            }
        };
        if kind == "LocalSubjectAccessReview" && has_non {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("nonResourceAttributes"),
                spec["nonResourceAttributes"].to_string(),
                "disallowed on this kind of request",
            ));
        }
        if !errs.is_empty() {
            return Err(Status::invalid(&gk, "", &errs));
        }
        if kind == "LocalSubjectAccessReview" {
            let ns = call.namespace().unwrap_or("");
            if spec["resourceAttributes"]["namespace"]
                .as_str()
                .unwrap_or("")
                != ns
            {
                return Err(Status::bad_request(&format!(
                    "spec.resourceAttributes.namespace must match namespace: {ns}"
                )));
            }
        }
        let attrs = review_attributes(&spec, user);
        let d = server.authorizer.authorize(&server, &attrs);
        let mut st = json!({"allowed": d.allowed});
        if d.denied {
            st["denied"] = json!(true);
        }
        if !d.reason.is_empty() {
            st["reason"] = json!(d.reason);
        }
        st
    };
    // Go always writes the spec struct, empty or not, and the fields it writes without
    // omitempty (a requirement decoded from `null` echoes `"key": ""`, as upstream's).
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let defs = call
        .server
        .generic
        .registry()
        .snapshot()
        .definitions
        .clone();
    let schema = crate::schema::model::Schema::reference(call.resource.info.definition.clone());
    crate::schema::decode::fill_required(&mut obj, &schema, &defs);
    obj["apiVersion"] = json!("authorization.k8s.io/v1");
    obj["kind"] = json!(kind);
    obj["metadata"] = crate::meta::echoed_metadata(&obj["metadata"]);
    obj["status"] = status;
    let r = response::json(StatusCode::CREATED, &obj);
    Ok(response::with_warnings(r, &warnings))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::test_util::TestApiServer;

    #[tokio::test]
    async fn reviews_say_who_asks_and_whose_token_it_is() {
        let t = TestApiServer::new().await;
        let api = t.api();
        let (code, body) = api
            .call(
                "POST",
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                &json!({}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["status"]["userInfo"]["username"], "system:apiserver");

        api.create(
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"metadata": {"name": "robot"}}),
        )
        .await;
        let (_, tr) = api
            .call(
                "POST",
                "/api/v1/namespaces/default/serviceaccounts/robot/token",
                &json!({}),
            )
            .await;
        let token = tr["status"]["token"].as_str().unwrap();
        let (code, body) = api
            .call(
                "POST",
                "/apis/authentication.k8s.io/v1/tokenreviews",
                &json!({"spec": {"token": token}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["status"]["authenticated"], true);
        assert_eq!(
            body["status"]["user"]["username"],
            "system:serviceaccount:default:robot"
        );
        // Another audience than the token's: not authenticated.
        let (_, body) = api
            .call(
                "POST",
                "/apis/authentication.k8s.io/v1/tokenreviews",
                &json!({"spec": {"token": token, "audiences": ["vault"]}}),
            )
            .await;
        assert_eq!(body["status"]["authenticated"], json!(null));
        let (code, _) = api
            .call(
                "POST",
                "/apis/authentication.k8s.io/v1/tokenreviews",
                &json!({"spec": {}}),
            )
            .await;
        assert_eq!(code, 400);
    }

    #[tokio::test]
    async fn a_table_of_a_review_is_not_acceptable() {
        let t = TestApiServer::new().await;
        for (path, body) in [
            (
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                json!({"spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}}),
            ),
            (
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                json!({}),
            ),
        ] {
            let req = http::Request::post(path)
                .header("content-type", "application/json")
                .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
                .body(kube::client::Body::from(body.to_string().into_bytes()))
                .unwrap();
            let resp = t.client().send(req).await.unwrap();
            assert_eq!(resp.status().as_u16(), 406, "{path}");
        }
    }

    #[tokio::test]
    async fn review_answers_carry_metadata_as_upstream_writes_it() {
        let t = TestApiServer::new().await;
        let api = t.api();
        let meta = json!({"name": "x", "labels": {"a": "b"}, "ownerReferences": [null]});
        let (code, body) = api
            .call(
                "POST",
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                &json!({"metadata": meta}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        let answered = body["metadata"].as_object().unwrap();
        assert_eq!(answered.len(), 1, "{body}");
        assert!(body["metadata"]["creationTimestamp"].is_string(), "{body}");

        let (code, body) = api
            .call(
                "POST",
                "/apis/authentication.k8s.io/v1/tokenreviews",
                &json!({"metadata": meta, "spec": {"token": "nope"}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["metadata"]["labels"]["a"], "b", "{body}");
        let owner = &body["metadata"]["ownerReferences"][0];
        for field in ["apiVersion", "kind", "name", "uid"] {
            assert_eq!(owner[field], "", "{body}");
        }
    }
}
