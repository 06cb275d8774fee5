//! The routing table: which backend answers a request's host and path.
//!
//! Precedence follows the Ingress API and ingress-nginx: a request's host picks one group
//! of rules (an exact host before a `*.` wildcard before the rules without a host); within
//! the group the longest matching path wins, and an `Exact` path before a `Prefix` path of
//! the same length. Nothing matching falls to the default backend, or 404.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a path rule matches (`ImplementationSpecific` is treated as `Prefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// The request path equals the rule's path.
    Exact,
    /// The rule's path is a prefix of the request path, element by element.
    Prefix,
}

impl PathKind {
    /// The kind of a `pathType` value; `ImplementationSpecific` (and anything unknown)
    /// behaves as `Prefix`, as in ingress-nginx without regular expressions.
    pub fn from_path_type(t: &str) -> Self {
        if t == "Exact" {
            Self::Exact
        } else {
            Self::Prefix
        }
    }
}

/// A Service port's ready endpoints, picked round robin.
#[derive(Debug)]
pub struct Backend {
    /// `namespace/service:port`, for logs.
    pub name: String,
    /// Where the ready endpoints listen (pod IP and resolved target port).
    pub endpoints: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Backend {
    /// A backend named `name` over `endpoints`.
    pub fn new(name: impl Into<String>, endpoints: Vec<SocketAddr>) -> Self {
        Self {
            name: name.into(),
            endpoints,
            next: AtomicUsize::new(0),
        }
    }

    /// The next endpoint in turn; `None` when none is ready.
    pub fn pick(&self) -> Option<SocketAddr> {
        if self.endpoints.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.endpoints.len();
        self.endpoints.get(i).copied()
    }
}

/// One path of a host's rules.
#[derive(Debug, Clone)]
pub struct PathRule {
    /// The rule's path (a Prefix path without its trailing `/`).
    path: String,
    kind: PathKind,
    backend: Arc<Backend>,
}

impl PathRule {
    /// A rule sending `path` (matched as `kind`) to `backend`.
    pub fn new(path: &str, kind: PathKind, backend: Arc<Backend>) -> Self {
        let path = if path.is_empty() { "/" } else { path };
        let path = match kind {
            // "/foo/" and "/foo" are the same prefix: elements, not characters.
            PathKind::Prefix => path.trim_end_matches('/').to_owned(),
            PathKind::Exact => path.to_owned(),
        };
        Self {
            path,
            kind,
            backend,
        }
    }

    /// Whether the rule matches the request path `req` (without its query).
    pub fn matches(&self, req: &str) -> bool {
        match self.kind {
            PathKind::Exact => req == self.path,
            PathKind::Prefix => {
                self.path.is_empty()
                    || (req.starts_with(&self.path)
                        && matches!(req.as_bytes().get(self.path.len()), None | Some(b'/')))
            }
        }
    }

    /// The order of precedence: longer paths first, then Exact before Prefix.
    fn rank(&self) -> (std::cmp::Reverse<usize>, u8) {
        let len = match self.kind {
            PathKind::Exact => self.path.len(),
            // "/" is stored as "", one character shorter than an Exact "/".
            PathKind::Prefix => self.path.len().max(1),
        };
        (
            std::cmp::Reverse(len),
            match self.kind {
                PathKind::Exact => 0,
                PathKind::Prefix => 1,
            },
        )
    }
}

/// The rules of one host, in order of precedence.
#[derive(Debug, Clone, Default)]
pub struct HostRules {
    paths: Vec<PathRule>,
}

impl HostRules {
    /// Adds a rule; the first rule added wins among equals (the older Ingress, as
    /// ingress-nginx keeps the first by creation time).
    pub fn push(&mut self, rule: PathRule) {
        if self
            .paths
            .iter()
            .any(|r| r.path == rule.path && r.kind == rule.kind)
        {
            return;
        }
        self.paths.push(rule);
        // Stable: among equals the first added stays first.
        self.paths.sort_by_key(PathRule::rank);
    }

    fn find(&self, path: &str) -> Option<&Arc<Backend>> {
        self.paths
            .iter()
            .find(|r| r.matches(path))
            .map(|r| &r.backend)
    }
}

/// What a request is routed to.
#[derive(Debug, Clone)]
pub enum Route {
    /// A backend (it may have no ready endpoints: 503).
    Backend(Arc<Backend>),
    /// No rule and no default backend: 404.
    NotFound,
}

/// Every served rule, by host.
#[derive(Debug, Default)]
pub struct Table {
    exact: HashMap<String, HostRules>,
    /// `*.example.com` keyed by `example.com`.
    wildcard: HashMap<String, HostRules>,
    any_host: HostRules,
    default: Option<Arc<Backend>>,
}

impl Table {
    /// Rules of `host` (`""` for any host, `*.suffix` for a wildcard), to add paths to.
    pub fn host(&mut self, host: &str) -> &mut HostRules {
        let host = host.to_ascii_lowercase();
        if host.is_empty() {
            &mut self.any_host
        } else if let Some(suffix) = host.strip_prefix("*.") {
            self.wildcard.entry(suffix.to_owned()).or_default()
        } else {
            self.exact.entry(host).or_default()
        }
    }

    /// Sets the default backend unless one is set (the oldest Ingress's wins).
    pub fn set_default(&mut self, backend: Arc<Backend>) {
        if self.default.is_none() {
            self.default = Some(backend);
        }
    }

    /// The route of a request to `host` (without port) and `path`.
    pub fn route(&self, host: &str, path: &str) -> Route {
        // Hosts come lowercase nearly always: copied only when they are not.
        let lower;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = host.to_ascii_lowercase();
            lower.as_str()
        } else {
            host
        };
        let host = host.trim_end_matches('.');
        // A wildcard covers exactly one label: *.foo.com matches bar.foo.com only.
        let group = self.exact.get(host).or_else(|| {
            host.split_once('.')
                .and_then(|(_, suffix)| self.wildcard.get(suffix))
        });
        let found = match group {
            Some(g) => g.find(path),
            None => self.any_host.find(path),
        };
        match found.or(self.default.as_ref()) {
            Some(b) => Route::Backend(b.clone()),
            None => Route::NotFound,
        }
    }
}

/// The host of a `Host` header or authority: lowercase, without port or brackets.
pub fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            authority
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(name: &str) -> Arc<Backend> {
        Arc::new(Backend::new(name, vec![]))
    }

    fn routed(t: &Table, host: &str, path: &str) -> String {
        match t.route(host, path) {
            Route::Backend(b) => b.name.clone(),
            Route::NotFound => "404".into(),
        }
    }

    #[test]
    fn prefix_matches_element_wise() {
        let b = backend("b");
        let r = PathRule::new("/aaa/bbb", PathKind::Prefix, b.clone());
        assert!(r.matches("/aaa/bbb"));
        assert!(r.matches("/aaa/bbb/"));
        assert!(r.matches("/aaa/bbb/ccc"));
        assert!(!r.matches("/aaa/bbbxyz"));
        assert!(!r.matches("/aaa"));
        // A trailing slash on the rule is ignored.
        let r = PathRule::new("/aaa/bbb/", PathKind::Prefix, b.clone());
        assert!(r.matches("/aaa/bbb"));
        assert!(r.matches("/aaa/bbb/ccc"));
        assert!(!r.matches("/aaa/bbbxyz"));
        let root = PathRule::new("/", PathKind::Prefix, b.clone());
        assert!(root.matches("/"));
        assert!(root.matches("/anything/at/all"));
        let r = PathRule::new("/foo", PathKind::Exact, b);
        assert!(r.matches("/foo"));
        assert!(!r.matches("/foo/"));
        assert!(!r.matches("/foo/bar"));
    }

    #[test]
    fn implementation_specific_is_prefix() {
        assert_eq!(PathKind::from_path_type("Exact"), PathKind::Exact);
        assert_eq!(PathKind::from_path_type("Prefix"), PathKind::Prefix);
        assert_eq!(
            PathKind::from_path_type("ImplementationSpecific"),
            PathKind::Prefix
        );
    }

    #[test]
    fn longest_path_first_and_exact_before_prefix() {
        let mut t = Table::default();
        let h = t.host("foo.com");
        h.push(PathRule::new("/", PathKind::Prefix, backend("root")));
        h.push(PathRule::new("/api", PathKind::Prefix, backend("api")));
        h.push(PathRule::new("/api/v1", PathKind::Prefix, backend("v1")));
        h.push(PathRule::new("/api", PathKind::Exact, backend("api-exact")));
        assert_eq!(routed(&t, "foo.com", "/"), "root");
        assert_eq!(routed(&t, "foo.com", "/x"), "root");
        assert_eq!(routed(&t, "foo.com", "/api"), "api-exact");
        assert_eq!(routed(&t, "foo.com", "/api/"), "api");
        assert_eq!(routed(&t, "foo.com", "/api/v1/x"), "v1");
        assert_eq!(routed(&t, "foo.com", "/api/v10"), "api");
        assert_eq!(routed(&t, "foo.com", "/apix"), "root");
    }

    #[test]
    fn hosts_match_whatever_their_case() {
        let mut t = Table::default();
        t.host("Foo.COM")
            .push(PathRule::new("/", PathKind::Prefix, backend("foo")));
        t.host("*.Bar.com")
            .push(PathRule::new("/", PathKind::Prefix, backend("bar")));
        assert_eq!(routed(&t, "foo.com", "/"), "foo");
        assert_eq!(routed(&t, "FOO.com.", "/"), "foo");
        assert_eq!(routed(&t, "x.BAR.COM", "/"), "bar");
        assert_eq!(routed(&t, "other.com", "/"), "404");
    }

    #[test]
    fn the_first_rule_wins_among_equals() {
        let mut t = Table::default();
        t.host("a.com")
            .push(PathRule::new("/", PathKind::Prefix, backend("old")));
        t.host("a.com")
            .push(PathRule::new("/", PathKind::Prefix, backend("new")));
        assert_eq!(routed(&t, "a.com", "/"), "old");
    }

    #[test]
    fn exact_host_before_wildcard_before_any_host() {
        let mut t = Table::default();
        t.host("")
            .push(PathRule::new("/", PathKind::Prefix, backend("any")));
        t.host("*.foo.com")
            .push(PathRule::new("/", PathKind::Prefix, backend("wild")));
        t.host("bar.foo.com")
            .push(PathRule::new("/", PathKind::Prefix, backend("bar")));
        assert_eq!(routed(&t, "bar.foo.com", "/"), "bar");
        assert_eq!(routed(&t, "BAZ.foo.com", "/"), "wild");
        // One label only: neither the bare domain nor two labels match the wildcard.
        assert_eq!(routed(&t, "foo.com", "/"), "any");
        assert_eq!(routed(&t, "a.baz.foo.com", "/"), "any");
        assert_eq!(routed(&t, "other.org", "/"), "any");
    }

    #[test]
    fn a_host_without_a_matching_path_falls_to_the_default_not_other_hosts() {
        let mut t = Table::default();
        t.host("")
            .push(PathRule::new("/", PathKind::Prefix, backend("any")));
        t.host("foo.com")
            .push(PathRule::new("/app", PathKind::Prefix, backend("app")));
        assert_eq!(routed(&t, "foo.com", "/other"), "404");
        t.set_default(backend("default"));
        t.set_default(backend("later"));
        assert_eq!(routed(&t, "foo.com", "/other"), "default");
        assert_eq!(routed(&t, "foo.com", "/app/x"), "app");
    }

    #[test]
    fn nothing_served_is_404() {
        let t = Table::default();
        assert_eq!(routed(&t, "foo.com", "/"), "404");
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_of("foo.com:8080"), "foo.com");
        assert_eq!(host_of("foo.com"), "foo.com");
        assert_eq!(host_of("[::1]:80"), "::1");
        assert_eq!(host_of("10.0.0.1:443"), "10.0.0.1");
    }

    #[test]
    fn round_robin_over_endpoints() {
        let b = Backend::new(
            "b",
            vec![
                "10.0.0.1:80".parse().unwrap_or_else(|_| unreachable!()),
                "10.0.0.2:80".parse().unwrap_or_else(|_| unreachable!()),
            ],
        );
        let picks: Vec<_> = (0..4).filter_map(|_| b.pick()).collect();
        assert_eq!(picks[0], picks[2]);
        assert_eq!(picks[1], picks[3]);
        assert_ne!(picks[0], picks[1]);
        assert_eq!(Backend::new("none", vec![]).pick(), None);
    }
}
