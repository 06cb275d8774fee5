//! Authorization: what a request asks to do ([`Attributes`], upstream's `RequestInfo`),
//! the authorizer chain of `--authorization-mode` (`Node`, `RBAC`, `AlwaysAllow`,
//! `AlwaysDeny`, after upstream's privileged-group authorizer for `system:masters`), and
//! the 403 a denied request gets.

use k1s_apimachinery::{GroupResource, Status};
use serde_json::Value;

use super::UserInfo;
use super::rbac::{PolicyRule, RbacIndex};
use crate::ApiServer;

/// The group whose members may do anything (the API server's loopback identity is one).
pub const MASTERS: &str = "system:masters";

/// What a request asks to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// `get`, `list`, `watch`, `create`, … (the lower-case method for non-resource paths).
    pub verb: String,
    /// A resource request (else a non-resource path).
    pub resource_request: bool,
    /// Namespace.
    pub namespace: String,
    /// API group.
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name.
    pub name: String,
    /// The request path (non-resource requests).
    pub path: String,
}

/// One authorizer of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything is allowed.
    AlwaysAllow,
    /// Nothing is allowed.
    AlwaysDeny,
    /// Kubelets (`system:node:<name>` in `system:nodes`) get what their node needs.
    Node,
    /// Roles and bindings.
    Rbac,
}

/// Parses `--authorization-mode` (comma-separated, in order).
pub fn parse_modes(s: &str) -> Result<Vec<Mode>, String> {
    let mut out = Vec::new();
    for m in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let mode = match m {
            "AlwaysAllow" => Mode::AlwaysAllow,
            "AlwaysDeny" => Mode::AlwaysDeny,
            "Node" => Mode::Node,
            "RBAC" => Mode::Rbac,
            other => {
                return Err(format!(
                    "authorization-mode {other:?} is not supported: use AlwaysAllow, AlwaysDeny, Node or RBAC"
                ));
            }
        };
        if out.contains(&mode) {
            return Err(format!("authorization-mode {m:?} is given twice"));
        }
        out.push(mode);
    }
    if out.is_empty() {
        return Err("at least one authorization-mode must be given".into());
    }
    Ok(out)
}

/// The authorizer chain with the RBAC index.
#[derive(Debug)]
pub struct Authorizer {
    modes: parking_lot::RwLock<Vec<Mode>>,
    /// The RBAC index.
    pub rbac: RbacIndex,
}

impl Default for Authorizer {
    fn default() -> Self {
        Self {
            modes: parking_lot::RwLock::new(vec![Mode::Node, Mode::Rbac]),
            rbac: RbacIndex::default(),
        }
    }
}

/// An authorizer's answer with upstream's reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed.
    pub allowed: bool,
    /// Explicitly denied (no later authorizer asked).
    pub denied: bool,
    /// Why, when an authorizer said.
    pub reason: String,
}

impl Authorizer {
    /// Sets the chain.
    pub fn set_modes(&self, modes: Vec<Mode>) {
        *self.modes.write() = modes;
    }

    /// Whether the chain has RBAC (the bootstrap roles and escalation checks apply).
    pub fn has_rbac(&self) -> bool {
        self.modes.read().contains(&Mode::Rbac)
    }

    /// Runs the chain (upstream's union authorizer: the first decision wins).
    pub fn authorize(&self, server: &ApiServer, a: &Attributes) -> Decision {
        if a.user.groups.iter().any(|g| g == MASTERS) {
            return Decision {
                allowed: true,
                denied: false,
                reason: String::new(),
            };
        }
        let modes = self.modes.read().clone();
        let mut reasons = Vec::new();
        for mode in modes {
            let allowed = match mode {
                Mode::AlwaysAllow => true,
                Mode::AlwaysDeny => {
                    return Decision {
                        allowed: false,
                        denied: true,
                        reason: String::new(),
                    };
                }
                Mode::Rbac => {
                    let allowed = self.rbac.snapshot(server).allows(a);
                    if allowed {
                        reasons.push(rbac_reason(server, a));
                    }
                    allowed
                }
                Mode::Node => match node_decision(server, a) {
                    NodeDecision::Allow => true,
                    NodeDecision::NoOpinion(r) => {
                        if !r.is_empty() {
                            reasons.push(r);
                        }
                        false
                    }
                },
            };
            if allowed {
                return Decision {
                    allowed: true,
                    denied: false,
                    reason: reasons.pop().unwrap_or_default(),
                };
            }
        }
        Decision {
            allowed: false,
            denied: false,
            reason: reasons.join("\n"),
        }
    }

    /// The rules a user holds in a namespace (RBAC's, and everything for
    /// `system:masters`), for escalation checks and SelfSubjectRulesReview.
    pub fn rules_for(&self, server: &ApiServer, user: &UserInfo, ns: &str) -> Vec<PolicyRule> {
        self.rbac.snapshot(server).rules_for(user, ns)
    }
}

/// RBAC's reason for an allowed request: the binding that allowed it (upstream's
/// `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"`) is not
/// tracked; the SubjectAccessReview reason stays empty for it, which clients ignore.
fn rbac_reason(_server: &ApiServer, _a: &Attributes) -> String {
    String::new()
}

/// Upstream's `forbiddenMessage`.
pub fn forbidden_message(a: &Attributes) -> String {
    let user = &a.user.name;
    if !a.resource_request {
        return format!("User {user:?} cannot {} path {:?}", a.verb, a.path);
    }
    let mut resource = a.resource.clone();
    if !a.subresource.is_empty() {
        resource = format!("{resource}/{}", a.subresource);
    }
    if a.namespace.is_empty() {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
            a.verb, a.api_group
        )
    } else {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
            a.verb, a.api_group, a.namespace
        )
    }
}

/// The 403 of a denied request (upstream's `responsewriters.Forbidden`).
pub fn forbidden(a: &Attributes, reason: &str) -> Status {
    let mut msg = forbidden_message(a);
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    let gr = if a.resource_request {
        GroupResource::new(&a.api_group, &a.resource)
    } else {
        GroupResource::new("", "")
    };
    Status::forbidden(&gr, &a.name, &msg)
}

// === Node authorizer ===

enum NodeDecision {
    Allow,
    NoOpinion(String),
}

/// The node name of a kubelet identity.
fn node_name(user: &UserInfo) -> Option<&str> {
    if !user.groups.iter().any(|g| g == "system:nodes") {
        return None;
    }
    user.name
        .strip_prefix("system:node:")
        .filter(|n| !n.is_empty())
}

/// Upstream's Node authorizer: a kubelet may read the secrets, configmaps, claims and
/// volumes of the pods bound to its node, request tokens for their service accounts, and
/// do what the `system:node` role lists for everything else.
fn node_decision(server: &ApiServer, a: &Attributes) -> NodeDecision {
    let Some(node) = node_name(&a.user) else {
        return NodeDecision::NoOpinion(String::new());
    };
    if !a.resource_request || !a.api_group.is_empty() {
        return rules_decision(a);
    }
    let graph_kind = matches!(
        (a.resource.as_str(), a.subresource.as_str()),
        (
            "secrets" | "configmaps" | "persistentvolumeclaims" | "persistentvolumes",
            ""
        ) | ("serviceaccounts", "token")
    );
    if !graph_kind {
        return rules_decision(a);
    }
    let verb_ok = match a.resource.as_str() {
        "serviceaccounts" => a.verb == "create",
        "secrets" | "configmaps" => matches!(a.verb.as_str(), "get" | "list" | "watch"),
        _ => a.verb == "get",
    };
    if !verb_ok {
        return NodeDecision::NoOpinion(format!(
            "can only {} this type",
            if a.resource == "serviceaccounts" {
                "create tokens for individual service accounts"
            } else {
                "get individual resources of"
            }
        ));
    }
    if a.name.is_empty() {
        return NodeDecision::NoOpinion("No Object name found".into());
    }
    if related(server, node, a) {
        NodeDecision::Allow
    } else {
        NodeDecision::NoOpinion(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

fn rules_decision(a: &Attributes) -> NodeDecision {
    if super::bootstrap_policy::node_rules()
        .iter()
        .any(|r| r.allows(a))
    {
        NodeDecision::Allow
    } else {
        NodeDecision::NoOpinion(String::new())
    }
}

/// The stored objects under a resource's prefix (one namespace, or all).
fn stored(server: &ApiServer, plural: &str, ns: Option<&str>) -> Vec<Value> {
    let snap = server.registry.snapshot();
    let Some(res) = snap.get("", "v1", plural) else {
        return Vec::new();
    };
    let prefix = res.info.collection_prefix(ns);
    let (items, _, _) = server.generic.store().cache().list(&prefix, None, 0);
    items
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect()
}

/// Whether a pod on `node` refers to the object (upstream's graph, walked on demand).
fn related(server: &ApiServer, node: &str, a: &Attributes) -> bool {
    if a.resource == "persistentvolumes" {
        return stored(server, "persistentvolumeclaims", None)
            .iter()
            .filter(|c| c.pointer("/spec/volumeName").and_then(Value::as_str) == Some(&a.name))
            .any(|c| {
                let ns = c.pointer("/metadata/namespace").and_then(Value::as_str);
                let claim = c.pointer("/metadata/name").and_then(Value::as_str);
                let (Some(ns), Some(claim)) = (ns, claim) else {
                    return false;
                };
                let mut inner = a.clone();
                inner.resource = "persistentvolumeclaims".into();
                inner.namespace = ns.into();
                inner.name = claim.into();
                related(server, node, &inner)
            });
    }
    stored(server, "pods", Some(&a.namespace))
        .iter()
        .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
        .any(|p| pod_refers(p, &a.resource, &a.name))
}

fn pod_refers(pod: &Value, resource: &str, name: &str) -> bool {
    let spec = &pod["spec"];
    let is = |v: &Value| v.as_str() == Some(name);
    match resource {
        "serviceaccounts" => {
            is(&spec["serviceAccountName"])
                || (spec["serviceAccountName"].is_null() && name == "default")
        }
        "persistentvolumeclaims" => {
            let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str);
            volumes(spec).any(|v| {
                is(&v["persistentVolumeClaim"]["claimName"])
                    || (!v["ephemeral"].is_null()
                        && pod_name
                            .zip(v["name"].as_str())
                            .is_some_and(|(p, vol)| format!("{p}-{vol}") == name))
            })
        }
        "secrets" | "configmaps" => {
            let (vol_key, name_key, ref_key) = if resource == "secrets" {
                ("secret", "secretName", "secretRef")
            } else {
                ("configMap", "name", "configMapRef")
            };
            let key_ref = if resource == "secrets" {
                "secretKeyRef"
            } else {
                "configMapKeyRef"
            };
            if resource == "secrets"
                && spec["imagePullSecrets"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|s| is(&s["name"])))
            {
                return true;
            }
            let in_volumes = volumes(spec).any(|v| {
                is(&v[vol_key][name_key])
                    || v["projected"]["sources"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|src| is(&src[vol_key]["name"])))
                    || ["csi", "cephfs", "flexVolume", "azureFile", "rbd", "iscsi"]
                        .iter()
                        .any(|k| {
                            is(&v[*k]["secretRef"]["name"])
                                || is(&v[*k]["nodePublishSecretRef"]["name"])
                        })
            });
            let in_containers = ["initContainers", "containers", "ephemeralContainers"]
                .iter()
                .flat_map(|k| spec[*k].as_array().into_iter().flatten())
                .any(|c| {
                    c["envFrom"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|e| is(&e[ref_key]["name"])))
                        || c["env"]
                            .as_array()
                            .is_some_and(|l| l.iter().any(|e| is(&e["valueFrom"][key_ref]["name"])))
                });
            in_volumes || in_containers
        }
        _ => false,
    }
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["volumes"].as_array().into_iter().flatten()
}

// === request attributes ===

/// The attributes of a request for a resource path (upstream's `RequestInfoFactory`).
pub fn resource_attributes(
    user: &UserInfo,
    method: &http::Method,
    rp: &crate::handlers::request::ResourcePath,
    query: &crate::handlers::Query,
) -> Attributes {
    let mut verb = match *method {
        http::Method::POST => "create",
        http::Method::GET | http::Method::HEAD => "get",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "",
    }
    .to_string();
    let mut name = rp.name.clone().unwrap_or_default();
    if rp.watch_prefix {
        verb = "watch".into();
    } else if name.is_empty() && verb == "get" {
        verb = if crate::handlers::query_flag(query, "watch") {
            "watch".into()
        } else {
            "list".into()
        };
    } else if name.is_empty() && verb == "delete" {
        verb = "deletecollection".into();
    }
    if name.is_empty() && matches!(verb.as_str(), "list" | "watch") {
        // A list or watch of one name by field selector is about that object.
        if let Some(fs) = query.get("fieldSelector") {
            for term in fs.split(',') {
                let exact = term
                    .strip_prefix("metadata.name==")
                    .or_else(|| term.strip_prefix("metadata.name="));
                if let Some(n) = exact.filter(|n| !n.is_empty() && !n.contains('/')) {
                    name = n.to_string();
                }
            }
        }
    }
    Attributes {
        user: user.clone(),
        verb,
        resource_request: true,
        namespace: rp.namespace.clone().unwrap_or_default(),
        api_group: rp.group.clone(),
        api_version: rp.version.clone(),
        resource: rp.resource.clone(),
        subresource: rp.subresource.clone().unwrap_or_default(),
        name,
        path: String::new(),
    }
}

/// The attributes of a request for a non-resource path.
pub fn path_attributes(user: &UserInfo, method: &http::Method, path: &str) -> Attributes {
    Attributes {
        user: user.clone(),
        verb: method.as_str().to_ascii_lowercase(),
        resource_request: false,
        path: path.to_string(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_texts_are_upstreams() {
        let a = Attributes {
            user: UserInfo::new("jane", []),
            verb: "list".into(),
            resource_request: true,
            namespace: "default".into(),
            resource: "pods".into(),
            ..Default::default()
        };
        let s = forbidden(&a, "");
        assert_eq!(
            s.message,
            r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        assert_eq!(s.code(), 403);
        let mut named = a.clone();
        named.verb = "get".into();
        named.namespace.clear();
        named.api_group = "apps".into();
        named.resource = "deployments".into();
        named.subresource = "scale".into();
        named.name = "web".into();
        assert_eq!(
            forbidden(&named, "").message,
            r#"deployments.apps "web" is forbidden: User "jane" cannot get resource "deployments/scale" in API group "apps" at the cluster scope"#
        );
        let p = path_attributes(&a.user, &http::Method::GET, "/apis");
        assert_eq!(
            forbidden(&p, "").message,
            r#"forbidden: User "jane" cannot get path "/apis""#
        );
    }

    #[test]
    fn modes_parse_in_order_and_refuse_unknown_ones() {
        assert_eq!(parse_modes("Node,RBAC"), Ok(vec![Mode::Node, Mode::Rbac]));
        assert_eq!(parse_modes("AlwaysAllow"), Ok(vec![Mode::AlwaysAllow]));
        assert!(parse_modes("Webhook").is_err());
        assert!(parse_modes("RBAC,RBAC").is_err());
        assert!(parse_modes("").is_err());
    }

    #[test]
    fn a_kubelet_reads_only_what_pods_on_its_node_use() {
        let pod = serde_json::json!({"metadata": {"name": "p"}, "spec": {
            "nodeName": "n1",
            "volumes": [{"name": "v", "secret": {"secretName": "s1"}},
                        {"name": "c", "persistentVolumeClaim": {"claimName": "data"}}],
            "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "cm1"}}],
                            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}}]}],
        }});
        assert!(pod_refers(&pod, "secrets", "s1"));
        assert!(pod_refers(&pod, "secrets", "s2"));
        assert!(!pod_refers(&pod, "secrets", "other"));
        assert!(pod_refers(&pod, "configmaps", "cm1"));
        assert!(pod_refers(&pod, "persistentvolumeclaims", "data"));
        assert!(pod_refers(&pod, "serviceaccounts", "default"));
    }
}
