//! The aggregation proxy: a request for a remote APIService's group-version goes to its
//! extension server with the user this server authenticated in the request-header
//! identity headers (`X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-*`,
//! `X-Remote-Uid`), over TLS with the proxy's client certificate. Responses stream
//! through unchanged (watches included). An unavailable APIService answers 503
//! `service unavailable`, as upstream's proxy does.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::Remote;
use super::remote::{connect, resolve, tls_config};
use crate::ApiServer;
use crate::auth::UserInfo;

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A plain-text error as Go's `http.Error` writes it.
pub fn text_error(code: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(format!("{text}\n")));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The request headers sent on: the client's, less hop-by-hop headers, its credentials
/// and any identity headers it sent itself, plus the authenticated user's identity.
pub(super) fn forwarded_headers(incoming: &HeaderMap, user: &UserInfo) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || n == "authorization"
            || n == "host"
            || n.starts_with("impersonate-")
            || n.starts_with("x-remote-")
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    set_identity(&mut out, user);
    out
}

/// Sets upstream's request-header identity for `user`.
pub(super) fn set_identity(headers: &mut HeaderMap, user: &UserInfo) {
    if let Ok(v) = HeaderValue::from_str(&user.name) {
        headers.insert(HeaderName::from_static("x-remote-user"), v);
    }
    if !user.uid.is_empty()
        && let Ok(v) = HeaderValue::from_str(&user.uid)
    {
        headers.insert(HeaderName::from_static("x-remote-uid"), v);
    }
    for g in &user.groups {
        if let Ok(v) = HeaderValue::from_str(g) {
            headers.append(HeaderName::from_static("x-remote-group"), v);
        }
    }
    for (key, values) in &user.extra {
        // Keys are percent-encoded as upstream's headerKeyEscape does.
        let escaped: String =
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%2D", "-")
                .replace("%5F", "_")
                .replace("%2E", ".")
                .replace("%7E", "~")
                .to_lowercase();
        let Ok(name) = HeaderName::from_bytes(format!("x-remote-extra-{escaped}").as_bytes())
        else {
            continue;
        };
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.append(name.clone(), v);
            }
        }
    }
}

/// Proxies one request to `remote`.
pub async fn proxy(
    server: &ApiServer,
    remote: Arc<Remote>,
    user: &UserInfo,
    parts: http::request::Parts,
    body: Body,
) -> Response {
    if !remote.available {
        return text_error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
    }
    let Ok((host, port)) = resolve(&server.generic, &remote) else {
        return text_error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
    };
    let identity = server.aggregator.identity();
    let tls = match tls_config(&remote, identity.as_deref(), true) {
        Ok(t) => t,
        Err(e) => return text_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let mut sender = match connect(&remote, &host, port, tls).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(apiservice = %remote.name, error = %e, "proxying failed");
            return text_error(StatusCode::SERVICE_UNAVAILABLE, &e);
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut request = http::Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = match path.parse() {
        Ok(u) => u,
        Err(_) => return text_error(StatusCode::BAD_REQUEST, "invalid request path"),
    };
    *request.headers_mut() = forwarded_headers(&parts.headers, user);
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    if let Ok(v) = HeaderValue::from_str(&authority) {
        request.headers_mut().insert(header::HOST, v);
    }
    match sender.send_request(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for h in HOP_BY_HOP {
                parts.headers.remove(*h);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => text_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_replaces_credentials_and_forged_identity_headers() {
        let mut incoming = HeaderMap::new();
        incoming.insert("authorization", HeaderValue::from_static("Bearer secret"));
        incoming.insert("x-remote-user", HeaderValue::from_static("forged"));
        incoming.insert("impersonate-user", HeaderValue::from_static("root"));
        incoming.insert("connection", HeaderValue::from_static("close"));
        incoming.insert("accept", HeaderValue::from_static("application/json"));
        let mut user = UserInfo::new("jane", ["devs".to_string()]);
        user.extra
            .insert("scopes.example/Key".into(), vec!["a".into(), "b".into()]);
        let out = forwarded_headers(&incoming, &user);
        assert!(out.get("authorization").is_none());
        assert!(out.get("impersonate-user").is_none());
        assert!(out.get("connection").is_none());
        assert_eq!(
            out.get("accept").map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        assert_eq!(out.get_all("x-remote-user").iter().count(), 1);
        assert_eq!(out["x-remote-user"], "jane");
        let groups: Vec<_> = out.get_all("x-remote-group").iter().collect();
        assert_eq!(groups, ["devs", "system:authenticated"]);
        let extra: Vec<_> = out
            .get_all("x-remote-extra-scopes.example%2fkey")
            .iter()
            .collect();
        assert_eq!(extra, ["a", "b"]);
    }

    #[test]
    fn unavailable_answers_are_go_plain_text() {
        let r = text_error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }
}
