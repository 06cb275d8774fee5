//! Upstream's TaintNodesByCondition admission plugin (`TaintNodesAtCreation`): a Node
//! being created gets the `node.kubernetes.io/not-ready:NoSchedule` taint, so no pod is
//! scheduled to it before the node lifecycle controller has seen it Ready and taken the
//! taint off again. Only creates of the object itself; updates and subresources pass.

use serde_json::{Value, json};

/// The key of the taint a new Node gets.
pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Adds the not-ready `NoSchedule` taint to `node` unless a taint with that key and effect
/// is already there (upstream's `MatchTaint`: key and effect, the value does not count).
pub fn admit(node: &mut Value) {
    let present = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|taints| {
            taints.iter().any(|t| {
                t.get("key").and_then(Value::as_str) == Some(TAINT_NODE_NOT_READY)
                    && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
            })
        });
    if present {
        return;
    }
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    if !spec.is_object() {
        *spec = json!({});
    }
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let taints = spec.entry("taints").or_insert_with(|| json!([]));
    if !taints.is_array() {
        *taints = json!([]);
    }
    if let Some(list) = taints.as_array_mut() {
        list.push(json!({"key": TAINT_NODE_NOT_READY, "effect": "NoSchedule"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_without_taints_gets_the_not_ready_taint() {
        let mut n = json!({"metadata": {"name": "n"}, "spec": {}});
        admit(&mut n);
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
        );
        let mut bare = json!({"metadata": {"name": "n"}});
        admit(&mut bare);
        assert_eq!(bare["spec"]["taints"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn a_node_keeps_its_own_taints_and_gets_the_taint_only_once() {
        let mut n = json!({"spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "value": "x", "effect": "NoSchedule"},
        ]}});
        let before = n.clone();
        admit(&mut n);
        assert_eq!(n, before);
        // Another effect of the same key is a different taint.
        let mut other = json!({"spec": {"taints": [
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
        ]}});
        admit(&mut other);
        assert_eq!(
            other["spec"]["taints"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
            ])
        );
    }

    const NOT_READY: &str = "node.kubernetes.io/not-ready";

    fn not_ready_taints(node: &Value) -> usize {
        node["spec"]["taints"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .filter(|t| t["key"] == NOT_READY && t["effect"] == "NoSchedule")
                    .count()
            })
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn created_nodes_are_tainted_but_updates_and_status_are_not() {
        let t = crate::test_util::TestApiServer::new().await;
        t.server.generic.set_node_taint_admission(true);
        let api = t.api();
        // A dry run shows the taint, as upstream (admission runs on dry runs too).
        let (code, body) = api
            .call(
                "POST",
                "/api/v1/nodes?dryRun=All",
                &json!({"metadata": {"name": "n1"}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(not_ready_taints(&body), 1, "{body}");
        let (code, body) = api
            .call(
                "POST",
                "/api/v1/nodes",
                &json!({"metadata": {"name": "n1"}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(
            body["spec"]["taints"],
            json!([{"key": NOT_READY, "effect": "NoSchedule"}])
        );
        // One that brings the taint keeps exactly one.
        let (code, body) = api
            .call(
                "POST",
                "/api/v1/nodes",
                &json!({"metadata": {"name": "n2"}, "spec": {"taints": [
                    {"key": "dedicated", "value": "x", "effect": "NoExecute"},
                    {"key": NOT_READY, "effect": "NoSchedule"}]}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["spec"]["taints"].as_array().map(Vec::len), Some(2));
        assert_eq!(not_ready_taints(&body), 1, "{body}");
        // An update that drops the taint (the lifecycle controller's) is not undone.
        let (_, mut n1) = api.call("GET", "/api/v1/nodes/n1", &Value::Null).await;
        n1["spec"]["taints"] = json!([]);
        let (code, body) = api.call("PUT", "/api/v1/nodes/n1", &n1).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(not_ready_taints(&body), 0, "{body}");
        // Nor does a status write.
        let mut status = body.clone();
        status["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        let (code, body) = api.call("PUT", "/api/v1/nodes/n1/status", &status).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(not_ready_taints(&body), 0, "{body}");
    }

    #[tokio::test]
    async fn a_kubelet_registers_its_node_and_gets_the_taint() {
        let t = crate::test_util::TestApiServer::new().await;
        t.server.generic.set_node_taint_admission(true);
        let kubelet = crate::auth::UserInfo::new("system:node:k1", ["system:nodes".to_string()]);
        let (code, body) = t
            .api_as(kubelet)
            .call(
                "POST",
                "/api/v1/nodes",
                &json!({"metadata": {"name": "k1",
                        "labels": {"kubernetes.io/hostname": "k1"}}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        assert_eq!(
            body["spec"]["taints"],
            json!([{"key": NOT_READY, "effect": "NoSchedule"}])
        );
    }
}
