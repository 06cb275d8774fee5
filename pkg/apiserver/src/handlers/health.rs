//! `/version`, `/healthz`, `/livez`, `/readyz`.

use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::{Query, query_flag, response};
use crate::ApiServer;

/// The Kubernetes version k1s implements.
pub const KUBE_VERSION: (&str, &str) = ("1", "35");
/// The git version string `kubectl version` shows.
pub const GIT_VERSION: &str = concat!("v1.35.0-k1s+", env!("CARGO_PKG_VERSION"));

/// `/version`.
pub fn version() -> Response {
    response::json(
        StatusCode::OK,
        &json!({
            "major": KUBE_VERSION.0,
            "minor": KUBE_VERSION.1,
            "emulationMajor": KUBE_VERSION.0,
            "emulationMinor": KUBE_VERSION.1,
            "minCompatibilityMajor": KUBE_VERSION.0,
            "minCompatibilityMinor": "34",
            "gitVersion": GIT_VERSION,
            "gitCommit": option_env!("K1S_GIT_COMMIT").unwrap_or("unknown"),
            "gitTreeState": "clean",
            "buildDate": option_env!("K1S_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
            "goVersion": "none (k1s is built with Rust)",
            "compiler": "rustc",
            "platform": format!("linux/{}", go_arch()),
        }),
    )
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

/// The named checks of each endpoint.
fn checks(server: &ApiServer, endpoint: &str) -> Vec<(&'static str, bool)> {
    let mut c = vec![
        ("ping", true),
        ("log", true),
        ("etcd", server.store_healthy()),
    ];
    if endpoint == "readyz" {
        c.push(("informer-sync", true));
        c.push(("poststarthook/bootstrap-controller", server.is_ready()));
        c.push(("shutdown", !server.is_shutting_down()));
    }
    c
}

/// `/healthz`, `/livez`, `/readyz` and single checks, with `?verbose` and `?exclude=`.
pub fn health(server: &ApiServer, endpoint: &str, check: Option<&str>, query: &Query) -> Response {
    let all = checks(server, endpoint);
    if let Some(name) = check {
        return match all.iter().find(|(n, _)| *n == name) {
            Some((_, true)) => response::bytes_response(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                b"ok".to_vec(),
            ),
            Some((_, false)) => response::bytes_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                format!("internal server error: {name} check failed\n").into_bytes(),
            ),
            None => response::bytes_response(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                b"404 page not found\n".to_vec(),
            ),
        };
    }
    let excluded: Vec<&str> = query
        .get("exclude")
        .map(|e| e.split(',').collect())
        .unwrap_or_default();
    let mut text = String::new();
    let mut ok = true;
    for (name, pass) in &all {
        if excluded.contains(name) {
            text.push_str(&format!("[+]{name} excluded: ok\n"));
            continue;
        }
        ok &= pass;
        text.push_str(&format!(
            "[{}]{name} {}\n",
            if *pass { "+" } else { "-" },
            if *pass {
                "ok"
            } else {
                "failed: reason withheld"
            }
        ));
    }
    let verbose = query_flag(query, "verbose") || query.contains_key("verbose");
    if ok {
        let body = if verbose {
            format!("{text}{endpoint} check passed\n")
        } else {
            "ok".into()
        };
        response::bytes_response(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            body.into_bytes(),
        )
    } else {
        response::bytes_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("{text}{endpoint} check failed\n").into_bytes(),
        )
    }
}
