//! The RBAC authorizer (upstream's `plugin/pkg/auth/authorizer/rbac`): Roles,
//! ClusterRoles and their bindings, read from an index that follows the watch cache, so a
//! request never reads the store. Also the rule comparison behind the escalation checks
//! (`policy_comparator`) and the rules a user holds (SelfSubjectRulesReview).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::FutureExt as _;
use k1s_store::WatchStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::UserInfo;
use super::authz::Attributes;
use crate::ApiServer;

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*` or `*/subresource`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// Non-resource URLs, exact or with a trailing `*`.
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn has(list: &[String], item: &str) -> bool {
    list.iter().any(|s| s == item)
}

fn has_or_star(list: &[String], item: &str) -> bool {
    list.iter().any(|s| s == item || s == "*")
}

impl PolicyRule {
    /// Whether the rule allows the request (upstream's `RuleAllows`).
    pub fn allows(&self, a: &Attributes) -> bool {
        if !has_or_star(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|rule| {
                rule == "*"
                    || *rule == a.path
                    || rule
                        .strip_suffix('*')
                        .is_some_and(|prefix| a.path.starts_with(prefix))
            });
        }
        if !has_or_star(&self.api_groups, &a.api_group) {
            return false;
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource))
        });
        resource_ok && (self.resource_names.is_empty() || has(&self.resource_names, &a.name))
    }

    /// Upstream's `CompactString`: the non-empty fields in a fixed order.
    pub fn compact_string(&self) -> String {
        let quoted = |v: &[String]| {
            let items: Vec<String> = v
                .iter()
                .map(|s| serde_json::to_string(s).unwrap_or_default())
                .collect();
            format!("[{}]", items.join(" "))
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", quoted(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", quoted(&self.resources)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!(
                "NonResourceURLs:{}",
                quoted(&self.non_resource_urls)
            ));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", quoted(&self.resource_names)));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", quoted(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// Whether `owner` covers every permission of `servant`; the uncovered ones, compacted
/// (upstream's `Covers` and `CompactRules`).
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let mut missing: Vec<PolicyRule> = Vec::new();
    for rule in servant {
        for small in breakdown(rule) {
            if !owner.iter().any(|o| rule_covers(o, &small)) {
                missing.push(small);
            }
        }
    }
    if missing.is_empty() {
        return (true, missing);
    }
    // Compact: rules differing only in their verb become one.
    let mut compact: Vec<PolicyRule> = Vec::new();
    for m in missing {
        let single =
            m.non_resource_urls.is_empty() && m.api_groups.len() == 1 && m.resources.len() == 1;
        match compact.iter_mut().find(|c| {
            single
                && c.non_resource_urls.is_empty()
                && c.api_groups == m.api_groups
                && c.resources == m.resources
                && c.resource_names == m.resource_names
        }) {
            Some(c) => {
                for v in m.verbs {
                    if !has(&c.verbs, &v) {
                        c.verbs.push(v);
                    }
                }
            }
            None => compact.push(m),
        }
    }
    compact.sort_by_key(PolicyRule::compact_string);
    (false, compact)
}

/// One rule per group, resource, name and verb (upstream's `BreakdownRule`).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                if rule.resource_names.is_empty() {
                    out.push(PolicyRule {
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        verbs: vec![verb.clone()],
                        ..Default::default()
                    });
                }
                for name in &rule.resource_names {
                    out.push(PolicyRule {
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        resource_names: vec![name.clone()],
                        verbs: vec![verb.clone()],
                        ..Default::default()
                    });
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: vec![url.clone()],
                verbs: vec![verb.clone()],
                ..Default::default()
            });
        }
    }
    out
}

/// Whether `owner` covers the (broken down) rule `servant` (upstream's `ruleCovers`).
fn rule_covers(owner: &PolicyRule, servant: &PolicyRule) -> bool {
    let all = |owner: &[String], servant: &[String]| {
        has(owner, "*") || servant.iter().all(|s| has(owner, s))
    };
    let resources = has(&owner.resources, "*")
        || servant.resources.iter().all(|r| {
            has(&owner.resources, r)
                || r.split_once('/')
                    .is_some_and(|(_, sub)| has(&owner.resources, &format!("*/{sub}")))
        });
    let urls = servant.non_resource_urls.iter().all(|u| {
        owner
            .non_resource_urls
            .iter()
            .any(|o| o == "*" || o == u || o.strip_suffix('*').is_some_and(|p| u.starts_with(p)))
    });
    // A rule for some names never covers one for every name.
    let names = owner.resource_names.is_empty()
        || (!servant.resource_names.is_empty()
            && servant
                .resource_names
                .iter()
                .all(|n| has(&owner.resource_names, n)));
    all(&owner.verbs, &servant.verbs)
        && all(&owner.api_groups, &servant.api_groups)
        && resources
        && urls
        && names
}

/// A subject of a binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    #[serde(default)]
    pub kind: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// The service account's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

impl Subject {
    /// Whether the subject names the user (upstream's `appliesToUser`); a service
    /// account without a namespace is in the binding's.
    fn applies_to(&self, user: &UserInfo, binding_ns: &str) -> bool {
        match self.kind.as_str() {
            "User" => self.name == user.name,
            "Group" => has(&user.groups, &self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_ns
                } else {
                    &self.namespace
                };
                !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{}", self.name)
            }
            _ => false,
        }
    }
}

/// What a binding grants.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    /// `Role` or `ClusterRole`.
    #[serde(default)]
    pub kind: String,
    /// The role's name.
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredBinding {
    #[serde(default)]
    metadata: StoredMeta,
    #[serde(default)]
    subjects: Vec<Subject>,
    #[serde(default)]
    role_ref: RoleRef,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct StoredMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct StoredRole {
    #[serde(default)]
    metadata: StoredMeta,
    #[serde(default)]
    rules: Option<Vec<PolicyRule>>,
}

/// Everything RBAC knows, as of one state of the watch cache.
#[derive(Debug, Default)]
pub struct Snapshot {
    cluster_roles: HashMap<String, Arc<Vec<PolicyRule>>>,
    roles: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
    cluster_bindings: Vec<StoredBinding>,
    bindings: HashMap<String, Vec<StoredBinding>>,
}

impl Snapshot {
    fn role_rules(&self, r: &RoleRef, ns: &str) -> Option<&Arc<Vec<PolicyRule>>> {
        match r.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&r.name),
            "Role" if !ns.is_empty() => self.roles.get(&(ns.to_string(), r.name.clone())),
            _ => None,
        }
    }

    /// Whether some binding that applies to the user allows the request.
    pub fn allows(&self, a: &Attributes) -> bool {
        let check = |b: &StoredBinding, ns: &str| {
            b.subjects.iter().any(|s| s.applies_to(&a.user, ns))
                && self
                    .role_rules(&b.role_ref, ns)
                    .is_some_and(|rules| rules.iter().any(|r| r.allows(a)))
        };
        if self.cluster_bindings.iter().any(|b| check(b, "")) {
            return true;
        }
        !a.namespace.is_empty()
            && self
                .bindings
                .get(&a.namespace)
                .is_some_and(|bs| bs.iter().any(|b| check(b, &a.namespace)))
    }

    /// Every rule the user holds in `namespace` (cluster-wide ones included), as
    /// upstream's `RulesFor`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        let mut out = Vec::new();
        for b in &self.cluster_bindings {
            if b.subjects.iter().any(|s| s.applies_to(user, ""))
                && let Some(rules) = self.role_rules(&b.role_ref, "")
            {
                out.extend(rules.iter().cloned());
            }
        }
        if !namespace.is_empty() {
            for b in self.bindings.get(namespace).into_iter().flatten() {
                if b.subjects.iter().any(|s| s.applies_to(user, namespace))
                    && let Some(rules) = self.role_rules(&b.role_ref, namespace)
                {
                    out.extend(rules.iter().cloned());
                }
            }
        }
        out
    }

    /// The rules of a role a binding refers to, if it exists.
    pub fn referenced_rules(&self, r: &RoleRef, ns: &str) -> Option<Vec<PolicyRule>> {
        self.role_rules(r, ns).map(|r| r.as_ref().clone())
    }
}

/// The four RBAC resources the index follows.
const PLURALS: [&str; 4] = [
    "clusterroles",
    "roles",
    "clusterrolebindings",
    "rolebindings",
];

struct Followed {
    streams: Vec<WatchStream>,
    snapshot: Arc<Snapshot>,
}

/// The index: a snapshot rebuilt from the watch cache whenever one of the RBAC
/// resources changed since it was built. The check is a poll of four watch streams,
/// so an answer reflects every write that completed before the request.
#[derive(Default)]
pub struct RbacIndex {
    state: parking_lot::Mutex<Option<Followed>>,
}

impl std::fmt::Debug for RbacIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RbacIndex").finish_non_exhaustive()
    }
}

impl RbacIndex {
    /// The current snapshot.
    pub fn snapshot(&self, server: &ApiServer) -> Arc<Snapshot> {
        let mut state = self.state.lock();
        if let Some(f) = state.as_mut() {
            let mut changed = false;
            for s in &mut f.streams {
                // Drain what arrived; an error (fallen out of the window) means rebuild.
                loop {
                    match s.next().now_or_never() {
                        None => break,
                        Some(Ok(_)) => changed = true,
                        Some(Err(_)) => {
                            changed = true;
                            break;
                        }
                    }
                }
            }
            if !changed {
                return f.snapshot.clone();
            }
        }
        let followed = build(server);
        let snapshot = followed.snapshot.clone();
        *state = Some(followed);
        snapshot
    }
}

fn build(server: &ApiServer) -> Followed {
    let cache = server.generic.store().cache();
    let registry = server.registry.snapshot();
    // The streams start at the revision read before listing, so nothing written during
    // the listing is missed (at worst it causes one more rebuild).
    let revision = cache.revision();
    let mut snapshot = Snapshot::default();
    let mut streams = Vec::new();
    for plural in PLURALS {
        let Some(res) = registry.get(GROUP, "v1", plural) else {
            continue;
        };
        let prefix = res.info.collection_prefix(None);
        if let Ok(s) = cache.watch(&prefix, revision) {
            streams.push(s);
        }
        let (items, _, _) = cache.list(&prefix, None, 0);
        for kv in items {
            match plural {
                "clusterroles" | "roles" => {
                    let Ok(role) = serde_json::from_slice::<StoredRole>(&kv.value) else {
                        continue;
                    };
                    let rules = Arc::new(role.rules.unwrap_or_default());
                    if plural == "roles" {
                        snapshot
                            .roles
                            .insert((role.metadata.namespace, role.metadata.name), rules);
                    } else {
                        snapshot.cluster_roles.insert(role.metadata.name, rules);
                    }
                }
                _ => {
                    let Ok(b) = serde_json::from_slice::<StoredBinding>(&kv.value) else {
                        continue;
                    };
                    if plural == "rolebindings" {
                        snapshot
                            .bindings
                            .entry(b.metadata.namespace.clone())
                            .or_default()
                            .push(b);
                    } else {
                        snapshot.cluster_bindings.push(b);
                    }
                }
            }
        }
    }
    Followed {
        streams,
        snapshot: Arc::new(snapshot),
    }
}

/// Reads a rule list from a role object (its `rules`, null as empty).
pub fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(obj.get("rules").cloned().unwrap_or(Value::Null)).unwrap_or_default()
}

/// Reads a binding's role reference.
pub fn role_ref_of(obj: &Value) -> RoleRef {
    serde_json::from_value(obj.get("roleRef").cloned().unwrap_or(Value::Null)).unwrap_or_default()
}

/// Labels of an object, for selectors.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            api_groups: v(groups),
            resources: v(resources),
            verbs: v(verbs),
            ..Default::default()
        }
    }

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            user: UserInfo::new("jane", []),
            verb: verb.into(),
            resource_request: true,
            namespace: "default".into(),
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            path: String::new(),
        }
    }

    #[test]
    fn rules_match_verbs_groups_subresources_names_and_wildcards() {
        let r = rule(&[""], &["pods", "pods/log"], &["get", "list"]);
        assert!(r.allows(&attrs("get", "", "pods", "", "x")));
        assert!(r.allows(&attrs("get", "", "pods", "log", "x")));
        assert!(!r.allows(&attrs("get", "", "pods", "exec", "x")));
        assert!(!r.allows(&attrs("delete", "", "pods", "", "x")));
        assert!(!r.allows(&attrs("get", "apps", "pods", "", "x")));
        let star = rule(&["*"], &["*/status"], &["*"]);
        assert!(star.allows(&attrs("update", "apps", "deployments", "status", "d")));
        assert!(!star.allows(&attrs("update", "apps", "deployments", "", "d")));
        let mut named = rule(&[""], &["configmaps"], &["get"]);
        named.resource_names = vec!["one".into()];
        assert!(named.allows(&attrs("get", "", "configmaps", "", "one")));
        assert!(!named.allows(&attrs("get", "", "configmaps", "", "two")));
        assert!(!named.allows(&attrs("get", "", "configmaps", "", "")));
        let urls = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/healthz".into(), "/apis/*".into()],
            ..Default::default()
        };
        let mut a = attrs("get", "", "", "", "");
        a.resource_request = false;
        for (path, ok) in [
            ("/healthz", true),
            ("/apis/apps", true),
            ("/apis", false),
            ("/api", false),
        ] {
            a.path = path.into();
            assert_eq!(urls.allows(&a), ok, "{path}");
        }
    }

    #[test]
    fn coverage_reports_what_is_missing_as_upstream_prints_it() {
        let owner = vec![rule(&[""], &["pods"], &["get", "list"])];
        assert!(covers(&owner, &[rule(&[""], &["pods"], &["get"])]).0);
        let (ok, missing) = covers(
            &owner,
            &[rule(&[""], &["pods", "secrets"], &["get", "list"])],
        );
        assert!(!ok);
        let text: Vec<String> = missing.iter().map(PolicyRule::compact_string).collect();
        assert_eq!(
            text,
            vec![r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}"#]
        );
        let admin = vec![rule(&["*"], &["*"], &["*"])];
        assert!(
            covers(
                &admin,
                &[rule(&["apps"], &["deployments/scale"], &["update"])]
            )
            .0
        );
        let subs = vec![rule(&[""], &["*/status"], &["get"])];
        assert!(covers(&subs, &[rule(&[""], &["pods/status"], &["get"])]).0);
        let mut named = rule(&[""], &["configmaps"], &["get"]);
        named.resource_names = vec!["a".into()];
        assert!(!covers(&[named.clone()], &[rule(&[""], &["configmaps"], &["get"])]).0);
        assert!(covers(&[rule(&[""], &["configmaps"], &["get"])], &[named]).0);
    }

    #[test]
    fn subjects_apply_by_user_group_and_service_account() {
        let sa = UserInfo::new(
            "system:serviceaccount:ns1:robot",
            ["system:serviceaccounts".to_string()],
        );
        let s = |kind: &str, name: &str, ns: &str| Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: ns.into(),
        };
        assert!(s("ServiceAccount", "robot", "ns1").applies_to(&sa, ""));
        assert!(s("ServiceAccount", "robot", "").applies_to(&sa, "ns1"));
        assert!(!s("ServiceAccount", "robot", "ns2").applies_to(&sa, "ns1"));
        assert!(s("Group", "system:serviceaccounts", "").applies_to(&sa, ""));
        assert!(s("Group", "system:authenticated", "").applies_to(&sa, ""));
        assert!(!s("User", "robot", "").applies_to(&sa, ""));
    }
}
