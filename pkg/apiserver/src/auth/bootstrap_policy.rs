//! Upstream's bootstrap RBAC policy: the default ClusterRoles and ClusterRoleBindings,
//! reconciled at every start as upstream's `rbac/bootstrap-roles` post-start hook does
//! (missing objects created; existing ones with `rbac.authorization.kubernetes.io/autoupdate`
//! not `"false"` get missing permissions, subjects, labels and annotations added, never
//! removed), the ClusterRole aggregation controller, and the escalation checks on writes
//! of roles and bindings.

use std::sync::{Arc, OnceLock};

use k1s_apimachinery::labels::Selector;
use k1s_apimachinery::{GroupResource, Status};
use serde::Deserialize;
use serde_json::{Value, json};

use super::UserInfo;
use super::authz::{Attributes, MASTERS};
use super::rbac::{GROUP, PolicyRule, Subject, covers, role_ref_of, rules_of};
use crate::ApiServer;
use crate::registry::ResourceInfo;
use crate::registry::generic::WriteContext;

const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";
const BOOTSTRAPPING: &str = "kubernetes.io/bootstrapping";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Policy {
    cluster_roles: Vec<RoleSpec>,
    cluster_role_bindings: Vec<BindingSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleSpec {
    name: String,
    #[serde(default)]
    labels: serde_json::Map<String, Value>,
    #[serde(default)]
    rules: Vec<PolicyRule>,
    #[serde(default)]
    aggregation_rule: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct BindingSpec {
    name: String,
    role: String,
    subjects: Vec<Subject>,
}

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        // The file is part of the binary and covered by a unit test.
        serde_saphyr::from_str(include_str!("bootstrap_policy.yaml")).unwrap_or(Policy {
            cluster_roles: Vec::new(),
            cluster_role_bindings: Vec::new(),
        })
    })
}

/// The rules of upstream's `system:node` role (the Node authorizer's fallback).
pub fn node_rules() -> &'static [PolicyRule] {
    policy()
        .cluster_roles
        .iter()
        .find(|r| r.name == "system:node")
        .map(|r| r.rules.as_slice())
        .unwrap_or(&[])
}

fn defaults_meta(name: &str, labels: &serde_json::Map<String, Value>) -> Value {
    let mut l = labels.clone();
    l.insert(BOOTSTRAPPING.into(), json!("rbac-defaults"));
    json!({"name": name, "labels": l, "annotations": {AUTOUPDATE: "true"}})
}

/// The bootstrap ClusterRoles as objects.
pub fn cluster_roles() -> Vec<Value> {
    policy()
        .cluster_roles
        .iter()
        .map(|r| {
            let mut obj = json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": defaults_meta(&r.name, &r.labels),
            });
            match &r.aggregation_rule {
                Some(a) => obj["aggregationRule"] = a.clone(),
                None => obj["rules"] = json!(r.rules),
            }
            obj
        })
        .collect()
}

/// The bootstrap ClusterRoleBindings as objects.
pub fn cluster_role_bindings() -> Vec<Value> {
    policy()
        .cluster_role_bindings
        .iter()
        .map(|b| {
            let subjects: Vec<Value> = b
                .subjects
                .iter()
                .map(|s| {
                    let mut v = json!({"kind": s.kind, "name": s.name});
                    if s.kind == "ServiceAccount" {
                        v["namespace"] = json!(s.namespace);
                    } else {
                        v["apiGroup"] = json!(GROUP);
                    }
                    v
                })
                .collect();
            let mut obj = json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": defaults_meta(&b.name, &Default::default()),
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": b.role},
            });
            if !subjects.is_empty() {
                obj["subjects"] = json!(subjects);
            }
            obj
        })
        .collect()
}

fn loopback() -> WriteContext {
    WriteContext {
        user: UserInfo::loopback(),
        field_manager: "k1s".into(),
        ..WriteContext::default()
    }
}

/// Adds the expected labels and annotations that are missing.
fn merge_meta(desired: &mut Value, expected: &Value) {
    for key in ["labels", "annotations"] {
        if let Some(exp) = expected["metadata"][key].as_object() {
            for (k, v) in exp {
                if desired["metadata"][key].get(k).is_none() {
                    desired["metadata"][key][k] = v.clone();
                }
            }
        }
    }
}

/// The reconciled form of an existing bootstrap object, or None when nothing changes.
fn reconcile(existing: &Value, expected: &Value) -> Option<Value> {
    if existing["metadata"]["annotations"][AUTOUPDATE].as_str() == Some("false") {
        return None;
    }
    let mut desired = existing.clone();
    merge_meta(&mut desired, expected);
    match expected["kind"].as_str() {
        Some("ClusterRole") => {
            if let Some(exp) = expected["aggregationRule"]["clusterRoleSelectors"].as_array() {
                let mut selectors = desired["aggregationRule"]["clusterRoleSelectors"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for s in exp {
                    if !selectors.contains(s) {
                        selectors.push(s.clone());
                    }
                }
                desired["aggregationRule"]["clusterRoleSelectors"] = json!(selectors);
            } else {
                let mut rules = rules_of(existing);
                let (_, missing) = covers(&rules, &rules_of(expected));
                if !missing.is_empty() {
                    rules.extend(missing);
                    desired["rules"] = json!(rules);
                }
            }
        }
        _ => {
            let mut subjects = desired["subjects"].as_array().cloned().unwrap_or_default();
            for s in expected["subjects"].as_array().into_iter().flatten() {
                let same = |e: &Value| {
                    e["kind"] == s["kind"]
                        && e["name"] == s["name"]
                        && e["namespace"].as_str().unwrap_or("")
                            == s["namespace"].as_str().unwrap_or("")
                };
                if !subjects.iter().any(same) {
                    subjects.push(s.clone());
                }
            }
            if !subjects.is_empty() {
                desired["subjects"] = json!(subjects);
            }
        }
    }
    (desired != *existing).then_some(desired)
}

/// Creates and reconciles the bootstrap roles and bindings (run at every start).
pub async fn run(server: &ApiServer) -> Result<(), Status> {
    let snap = server.registry.snapshot();
    for (plural, objects) in [
        ("clusterroles", cluster_roles()),
        ("clusterrolebindings", cluster_role_bindings()),
    ] {
        let Some(res) = snap.get(GROUP, "v1", plural).cloned() else {
            return Err(Status::internal_error(&format!(
                "resource {plural} is not registered"
            )));
        };
        for expected in objects {
            let name = expected["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            match server.generic.get(&res, None, &name) {
                Err(_) => {
                    match server
                        .generic
                        .create(&res, None, expected, &loopback(), Vec::new())
                        .await
                    {
                        Ok(_) => {}
                        Err(s) if s.reason() == "AlreadyExists" => {}
                        Err(s) => return Err(s),
                    }
                }
                Ok(existing) => {
                    if plural == "clusterrolebindings"
                        && existing["metadata"]["annotations"][AUTOUPDATE].as_str() != Some("false")
                        && existing["roleRef"] != expected["roleRef"]
                    {
                        // A binding's roleRef cannot change: upstream recreates it.
                        server
                            .generic
                            .delete(&res, None, &name, &Default::default(), &loopback())
                            .await?;
                        server
                            .generic
                            .create(&res, None, expected, &loopback(), Vec::new())
                            .await?;
                        continue;
                    }
                    if let Some(desired) = reconcile(&existing, &expected) {
                        tracing::info!(%plural, %name, "reconciling a bootstrap RBAC object");
                        server
                            .generic
                            .update(&res, None, &name, None, &loopback(), |_, _| {
                                Ok(desired.clone())
                            })
                            .await?;
                    }
                }
            }
        }
    }
    Ok(())
}

// === aggregation ===

/// The rules an aggregated ClusterRole should have, from every other ClusterRole its
/// selectors match, in name order, without repeats.
pub fn aggregated_rules(role: &Value, all: &[Value]) -> Option<Vec<PolicyRule>> {
    let selectors = role["aggregationRule"]["clusterRoleSelectors"].as_array()?;
    let me = role["metadata"]["name"].as_str();
    let mut rules: Vec<PolicyRule> = Vec::new();
    for sel in selectors {
        let Ok(selector) = Selector::from_label_selector(sel) else {
            continue;
        };
        for other in all {
            if other["metadata"]["name"].as_str() == me || !selector.matches_object(other) {
                continue;
            }
            for r in rules_of(other) {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
    }
    Some(rules)
}

/// One pass of the aggregation controller, now (tests and start-up).
pub async fn aggregate_now(server: &ApiServer) {
    // Aggregated roles may aggregate each other (edit into admin): a few passes settle.
    for _ in 0..3 {
        aggregate_once(server).await;
    }
}

/// One pass of the aggregation controller.
async fn aggregate_once(server: &ApiServer) {
    let snap = server.registry.snapshot();
    let Some(res) = snap.get(GROUP, "v1", "clusterroles").cloned() else {
        return;
    };
    let (items, _, _) =
        server
            .generic
            .store()
            .cache()
            .list(&res.info.collection_prefix(None), None, 0);
    let all: Vec<Value> = items
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect();
    for role in &all {
        let Some(rules) = aggregated_rules(role, &all) else {
            continue;
        };
        if rules_of(role) == rules {
            continue;
        }
        let name = role["metadata"]["name"].as_str().unwrap_or("").to_string();
        let result = server
            .generic
            .update(&res, None, &name, None, &loopback(), |cur, _| {
                let mut obj = cur.cloned().ok_or_else(|| {
                    Status::not_found(&GroupResource::new(GROUP, "clusterroles"), &name)
                })?;
                obj["rules"] = json!(rules);
                Ok(obj)
            })
            .await;
        if let Err(s) = result {
            tracing::debug!(%name, error = %s.message, "cannot aggregate a ClusterRole");
        }
    }
}

/// Keeps aggregated ClusterRoles current (upstream's clusterrole-aggregation
/// controller): a pass at start and after every change of a ClusterRole.
pub fn start_aggregation(server: Arc<ApiServer>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let snap = server.registry.snapshot();
        let Some(res) = snap.get(GROUP, "v1", "clusterroles").cloned() else {
            return;
        };
        let prefix = res.info.collection_prefix(None);
        loop {
            let cache = server.generic.store().cache().clone();
            let Ok(mut stream) = cache.watch(&prefix, cache.revision()) else {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            };
            aggregate_once(&server).await;
            loop {
                if server.is_shutting_down() {
                    return;
                }
                if stream.next().await.is_err() {
                    break;
                }
                // Let a burst of writes settle into one pass.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                aggregate_once(&server).await;
            }
        }
    })
}

// === escalation checks ===

/// Whether the user is `system:masters` (upstream's `EscalationAllowed`).
fn escalation_allowed(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == MASTERS)
}

fn attrs(user: &UserInfo, verb: &str, resource: &str, ns: &str, name: &str) -> Attributes {
    Attributes {
        user: user.clone(),
        verb: verb.into(),
        resource_request: true,
        namespace: ns.into(),
        api_group: GROUP.into(),
        api_version: "v1".into(),
        resource: resource.into(),
        name: name.into(),
        ..Default::default()
    }
}

/// Refuses a write of a role or binding that grants more than the writer holds, unless
/// the writer may `escalate` (roles) or `bind` the role (bindings), as upstream's
/// policy-based storage does.
pub fn check_write(
    server: &ApiServer,
    info: &ResourceInfo,
    namespace: Option<&str>,
    obj: &Value,
    ctx: &WriteContext,
) -> Result<(), Status> {
    if info.group != GROUP || escalation_allowed(&ctx.user) || !server.authorizer.has_rbac() {
        return Ok(());
    }
    let ns = namespace.unwrap_or("");
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let gr = GroupResource::new(GROUP, &info.plural);
    let servant = match info.plural.as_str() {
        "roles" | "clusterroles" => {
            if server
                .authorizer
                .authorize(
                    server,
                    &attrs(&ctx.user, "escalate", &info.plural, ns, name),
                )
                .allowed
            {
                return Ok(());
            }
            if info.plural == "clusterroles" && !obj["aggregationRule"].is_null() {
                // An aggregated role may gather anything: only full authority writes one.
                let all = |v: &str| vec![v.to_string()];
                vec![
                    PolicyRule {
                        verbs: all("*"),
                        api_groups: all("*"),
                        resources: all("*"),
                        ..Default::default()
                    },
                    PolicyRule {
                        verbs: all("*"),
                        non_resource_urls: all("*"),
                        ..Default::default()
                    },
                ]
            } else {
                rules_of(obj)
            }
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_ref = role_ref_of(obj);
            let role_resource = if role_ref.kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if server
                .authorizer
                .authorize(
                    server,
                    &attrs(&ctx.user, "bind", role_resource, ns, &role_ref.name),
                )
                .allowed
            {
                return Ok(());
            }
            server
                .authorizer
                .rbac
                .snapshot(server)
                .referenced_rules(&role_ref, ns)
                .unwrap_or_default()
        }
        _ => return Ok(()),
    };
    let owner = server.authorizer.rules_for(server, &ctx.user, ns);
    let (ok, missing) = covers(&owner, &servant);
    if ok {
        return Ok(());
    }
    let groups: Vec<String> = ctx
        .user
        .groups
        .iter()
        .map(|g| serde_json::to_string(g).unwrap_or_default())
        .collect();
    let missing: Vec<String> = missing.iter().map(PolicyRule::compact_string).collect();
    let msg = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        ctx.user.name,
        groups.join(" "),
        missing.join("\n")
    );
    Err(Status::forbidden(&gr, name, &msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_parses_with_upstreams_roles_and_bindings() {
        let roles = cluster_roles();
        let names: Vec<&str> = roles
            .iter()
            .filter_map(|r| r["metadata"]["name"].as_str())
            .collect();
        for want in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:discovery",
            "system:basic-user",
            "system:public-info-viewer",
            "system:node",
            "system:kube-scheduler",
            "system:kube-controller-manager",
        ] {
            assert!(names.contains(&want), "{want} missing");
        }
        assert_eq!(cluster_role_bindings().len(), 12);
        assert!(!node_rules().is_empty());
    }

    #[test]
    fn reconcile_adds_but_never_removes_and_respects_autoupdate_false() {
        let expected = json!({"kind": "ClusterRole", "metadata": {"name": "r", "labels": {"a": "1"}},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        let existing = json!({"kind": "ClusterRole", "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]});
        let out = reconcile(&existing, &expected).expect("changed");
        assert_eq!(out["rules"].as_array().map(Vec::len), Some(2));
        assert_eq!(out["metadata"]["labels"]["a"], "1");
        assert!(reconcile(&out, &expected).is_none());
        let mut pinned = existing.clone();
        pinned["metadata"]["annotations"] = json!({AUTOUPDATE: "false"});
        assert!(reconcile(&pinned, &expected).is_none());
    }

    #[test]
    fn aggregation_gathers_matching_roles_in_name_order() {
        let agg = json!({"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}});
        let a = json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        let b = json!({"metadata": {"name": "b", "labels": {"x": "y"}}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]});
        let c = json!({"metadata": {"name": "c"}, "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]});
        let rules = aggregated_rules(&agg, &[a, agg.clone(), b, c]).expect("aggregated");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].resources, vec!["secrets"]);
    }
}
