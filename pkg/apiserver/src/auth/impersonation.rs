//! Impersonation (`kubectl --as`, `--as-group`, `--as-uid`, `Impersonate-Extra-*`), as
//! upstream's impersonation filter: each requested attribute is authorized with the
//! `impersonate` verb for the real user, then the request runs as the impersonated one.

use std::collections::BTreeMap;

use k1s_apimachinery::Status;

use super::UserInfo;
use super::authz::{Attributes, forbidden};
use crate::ApiServer;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA: &str = "impersonate-extra-";

/// Whether the request asks to impersonate.
pub fn requested(headers: &http::HeaderMap) -> bool {
    headers.keys().any(|k| {
        let k = k.as_str();
        k == USER || k == GROUP || k == UID || k.starts_with(EXTRA)
    })
}

fn values(headers: &http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// The impersonated user, once every requested attribute is allowed for `real`.
pub fn impersonate(
    server: &ApiServer,
    real: &UserInfo,
    headers: &http::HeaderMap,
) -> Result<UserInfo, Status> {
    let users = values(headers, USER);
    let groups = values(headers, GROUP);
    let uids = values(headers, UID);
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        if let Some(key) = k.as_str().strip_prefix(EXTRA) {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .to_lowercase();
            if let Ok(v) = v.to_str() {
                extra.entry(key).or_default().push(v.to_string());
            }
        }
    }
    let Some(name) = users.first().cloned() else {
        return Err(Status::internal_error(&format!(
            "requested {} without impersonating a user",
            describe(&groups, &extra, &uids)
        )));
    };
    let check = |a: Attributes| -> Result<(), Status> {
        let d = server.authorizer.authorize(server, &a);
        if d.allowed {
            Ok(())
        } else {
            Err(forbidden(&a, &d.reason))
        }
    };
    let base = |resource: &str, group: &str, name: &str| Attributes {
        user: real.clone(),
        verb: "impersonate".into(),
        resource_request: true,
        api_group: group.into(),
        resource: resource.into(),
        name: name.into(),
        ..Default::default()
    };
    let mut out_groups: Vec<String> = Vec::new();
    match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() => {
            let mut a = base("serviceaccounts", "", sa);
            a.namespace = ns.to_string();
            check(a)?;
            if groups.is_empty() {
                out_groups = vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
        }
        _ => check(base("users", "", &name))?,
    }
    for g in &groups {
        check(base("groups", "", g))?;
        out_groups.push(g.clone());
    }
    for (key, vals) in &extra {
        for v in vals {
            let mut a = base("userextras", "authentication.k8s.io", v);
            a.subresource = key.clone();
            check(a)?;
        }
    }
    let uid = uids.first().cloned().unwrap_or_default();
    if !uid.is_empty() {
        check(base("uids", "authentication.k8s.io", &uid))?;
    }
    let always = if name == "system:anonymous" {
        "system:unauthenticated"
    } else {
        "system:authenticated"
    };
    if !out_groups.iter().any(|g| g == always) {
        out_groups.push(always.to_string());
    }
    Ok(UserInfo {
        name,
        groups: out_groups,
        uid,
        extra,
    })
}

fn describe(groups: &[String], extra: &BTreeMap<String, Vec<String>>, uids: &[String]) -> String {
    let mut parts: Vec<String> = groups.iter().map(|g| format!("Group {g:?}")).collect();
    for (k, v) in extra {
        parts.push(format!("Extra {k:?} {v:?}"));
    }
    for u in uids {
        parts.push(format!("UID {u:?}"));
    }
    format!("[{}]", parts.join(" "))
}
