//! What a request path asks for (upstream's `RequestInfoFactory`).

/// A request for a resource (as opposed to discovery, health or OpenAPI).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    /// Group ("" for `/api`).
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Plural resource.
    pub resource: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub subresource: Option<String>,
    /// Came through the legacy `/watch/` prefix.
    pub watch_prefix: bool,
}

/// Everything the server routes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` and their `/<check>` children.
    Health {
        /// `healthz`, `livez` or `readyz`.
        endpoint: String,
        /// A single check's name, if asked.
        check: Option<String>,
    },
    /// `/api`.
    LegacyRoot,
    /// `/api/v1`.
    LegacyVersion(String),
    /// `/apis`.
    GroupsRoot,
    /// `/apis/<group>`.
    Group(String),
    /// `/apis/<group>/<version>`.
    GroupVersion(String, String),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3Root,
    /// `/openapi/v3/<path>` (`api/v1`, `apis/apps/v1`).
    OpenApiV3(String),
    /// A resource, collection or subresource.
    Resource(ResourcePath),
    /// `/` with the list of paths.
    Root,
    /// Nothing served here.
    NotFound,
}

/// Subresources of namespaces, which otherwise look like a namespaced resource path.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses a request path (already percent-decoded per segment).
pub fn parse(path: &str) -> Target {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        [] => Target::Root,
        ["version"] => Target::Version,
        [ep @ ("healthz" | "livez" | "readyz")] => Target::Health {
            endpoint: ep.to_string(),
            check: None,
        },
        [ep @ ("healthz" | "livez" | "readyz"), check] => Target::Health {
            endpoint: ep.to_string(),
            check: Some(check.to_string()),
        },
        ["openapi", "v2"] => Target::OpenApiV2,
        ["openapi", "v3"] => Target::OpenApiV3Root,
        ["openapi", "v3", rest @ ..] => Target::OpenApiV3(rest.join("/")),
        ["api"] => Target::LegacyRoot,
        ["api", v] => Target::LegacyVersion(v.to_string()),
        ["api", v, rest @ ..] => resource("", v, rest),
        ["apis"] => Target::GroupsRoot,
        ["apis", g] => Target::Group(g.to_string()),
        ["apis", g, v] => Target::GroupVersion(g.to_string(), v.to_string()),
        ["apis", g, v, rest @ ..] => resource(g, v, rest),
        _ => Target::NotFound,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Target {
    let mut parts = rest;
    let mut watch_prefix = false;
    if parts.first() == Some(&"watch") {
        watch_prefix = true;
        parts = &parts[1..];
    }
    let mut namespace = None;
    if parts.first() == Some(&"namespaces") && parts.len() > 1 {
        namespace = Some(parts[1].to_string());
        // `namespaces/<name>/status` is the namespace object's subresource; anything else
        // after the namespace name is a namespaced resource.
        if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2]) {
            parts = &parts[2..];
        }
    }
    let mut r = ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        watch_prefix,
        ..Default::default()
    };
    match parts {
        [res] => r.resource = res.to_string(),
        [res, name] => {
            r.resource = res.to_string();
            r.name = Some(name.to_string());
        }
        [res, name, sub, ..] => {
            r.resource = res.to_string();
            r.name = Some(name.to_string());
            r.subresource = Some(sub.to_string());
        }
        _ => return Target::NotFound,
    }
    // The namespace object itself: /api/v1/namespaces/<name>[/status].
    if r.resource == "namespaces" && group.is_empty() {
        r.namespace = None;
    } else {
        r.namespace = namespace;
    }
    Target::Resource(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(t: Target) -> ResourcePath {
        match t {
            Target::Resource(r) => r,
            other => panic!("not a resource: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths_parse() {
        let r = res(parse(
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ));
        assert_eq!(
            (
                r.group.as_str(),
                r.namespace.as_deref(),
                r.resource.as_str()
            ),
            ("apps", Some("default"), "deployments")
        );
        assert_eq!(
            (r.name.as_deref(), r.subresource.as_deref()),
            (Some("web"), Some("scale"))
        );
        let r = res(parse("/api/v1/nodes/n1"));
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("nodes", Some("n1"), None)
        );
        let r = res(parse("/api/v1/pods"));
        assert_eq!((r.resource.as_str(), r.namespace), ("pods", None));
    }

    #[test]
    fn namespace_object_and_its_subresources_are_not_namespaced() {
        let r = res(parse("/api/v1/namespaces/kube-system"));
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let r = res(parse("/api/v1/namespaces/foo/finalize"));
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("foo"), Some("finalize"))
        );
        let r = res(parse("/api/v1/namespaces"));
        assert_eq!(r.resource, "namespaces");
    }

    #[test]
    fn legacy_watch_prefix_and_discovery_paths() {
        let r = res(parse("/api/v1/watch/namespaces/default/pods"));
        assert!(r.watch_prefix);
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(parse("/apis/apps"), Target::Group("apps".into()));
        assert_eq!(
            parse("/openapi/v3/apis/apps/v1"),
            Target::OpenApiV3("apis/apps/v1".into())
        );
        assert_eq!(
            parse("/readyz/etcd"),
            Target::Health {
                endpoint: "readyz".into(),
                check: Some("etcd".into())
            }
        );
    }
}
