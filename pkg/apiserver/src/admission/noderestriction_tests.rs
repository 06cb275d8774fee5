use serde_json::{Value, json};

use super::*;

struct Objects {
    pods: Vec<Value>,
    nodes: Vec<Value>,
}

impl Lookup for Objects {
    fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.pods
            .iter()
            .find(|p| {
                str_at(p, "/metadata/namespace") == namespace && str_at(p, "/metadata/name") == name
            })
            .cloned()
    }
    fn node(&self, name: &str) -> Option<Value> {
        self.nodes
            .iter()
            .find(|n| str_at(n, "/metadata/name") == name)
            .cloned()
    }
}

fn objects() -> Objects {
    Objects {
        pods: vec![
            json!({"metadata": {"namespace": "ns", "name": "mine", "uid": "p1"}, "spec": {"nodeName": "a"}}),
            json!({"metadata": {"namespace": "ns", "name": "theirs", "uid": "p2"}, "spec": {"nodeName": "b"}}),
        ],
        nodes: vec![json!({"metadata": {"name": "a", "uid": "node-a-uid"}})],
    }
}

fn node_a() -> UserInfo {
    UserInfo::new("system:node:a", ["system:nodes".to_string()])
}

fn req<'a>(
    user: &'a UserInfo,
    (group, resource, subresource): (&'a str, &'a str, &'a str),
    operation: Operation,
    (namespace, name): (&'a str, &'a str),
    object: Option<&'a Value>,
    old_object: Option<&'a Value>,
) -> Request<'a> {
    Request {
        group,
        resource,
        subresource,
        operation,
        namespace,
        name,
        object,
        old_object,
        user,
    }
}

/// The message of a refusal, or "ok".
fn outcome(r: &Request<'_>) -> String {
    match admit(r, &objects()) {
        Ok(()) => "ok".into(),
        Err(s) => format!("{} {}", s.code(), s.message),
    }
}

#[test]
fn only_node_users_are_restricted() {
    let admin = UserInfo::new("system:admin", ["system:masters".to_string()]);
    let no_group = UserInfo::new("system:node:a", Vec::<String>::new());
    let node = json!({"metadata": {"name": "b"}});
    for user in [&admin, &no_group] {
        let r = req(
            user,
            ("", "nodes", ""),
            Operation::Update,
            ("", "b"),
            Some(&node),
            Some(&node),
        );
        assert_eq!(outcome(&r), "ok");
    }
    let nameless = UserInfo::new("system:node:", ["system:nodes".to_string()]);
    let r = req(
        &nameless,
        ("", "nodes", ""),
        Operation::Update,
        ("", "b"),
        Some(&node),
        Some(&node),
    );
    assert_eq!(
        outcome(&r),
        "403 nodes \"b\" is forbidden: could not determine node from user \"system:node:\""
    );
}

#[test]
fn a_node_changes_only_itself_and_not_its_taints_or_protected_labels() {
    let user = node_a();
    let other = json!({"metadata": {"name": "b"}});
    let r = req(
        &user,
        ("", "nodes", "status"),
        Operation::Update,
        ("", "b"),
        Some(&other),
        Some(&other),
    );
    assert_eq!(
        outcome(&r),
        "403 nodes \"b\" is forbidden: node \"a\" is not allowed to modify node \"b\""
    );
    let old = json!({"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a"}},
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}});
    let untainted =
        json!({"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a"}}, "spec": {}});
    let r = req(
        &user,
        ("", "nodes", ""),
        Operation::Update,
        ("", "a"),
        Some(&untainted),
        Some(&old),
    );
    assert_eq!(
        outcome(&r),
        "403 nodes \"a\" is forbidden: node \"a\" is not allowed to modify taints"
    );
    let relabelled = json!({"metadata": {"name": "a", "labels": {
        "kubernetes.io/hostname": "a",
        "node-role.kubernetes.io/control-plane": "true",
        "foo.node-restriction.kubernetes.io/x": "y",
        "node.kubernetes.io/mine": "ok",
        "example.com/free": "ok"}},
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}});
    let r = req(
        &user,
        ("", "nodes", ""),
        Operation::Update,
        ("", "a"),
        Some(&relabelled),
        Some(&old),
    );
    assert_eq!(
        outcome(&r),
        "403 nodes \"a\" is forbidden: is not allowed to modify labels: foo.node-restriction.kubernetes.io/x, node-role.kubernetes.io/control-plane"
    );
    let r = req(
        &user,
        ("", "nodes", ""),
        Operation::Create,
        ("", "a"),
        Some(&relabelled),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 nodes \"a\" is forbidden: node \"a\" is not allowed to set the following labels: foo.node-restriction.kubernetes.io/x, node-role.kubernetes.io/control-plane"
    );
    let fine = json!({"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a",
        "topology.kubernetes.io/zone": "z", "kubelet.kubernetes.io/x": "1"}},
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}});
    let r = req(
        &user,
        ("", "nodes", ""),
        Operation::Update,
        ("", "a"),
        Some(&fine),
        Some(&old),
    );
    assert_eq!(outcome(&r), "ok");
    let r = req(
        &user,
        ("", "nodes", ""),
        Operation::Create,
        ("", "a"),
        Some(&fine),
        None,
    );
    assert_eq!(outcome(&r), "ok");
    let sourced = json!({"metadata": {"name": "a"}, "spec": {"configSource": {"configMap": {}}}});
    let r = req(
        &user,
        ("", "nodes", ""),
        Operation::Create,
        ("", "a"),
        Some(&sourced),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 nodes \"a\" is forbidden: node \"a\" is not allowed to create pods with a non-nil configSource"
    );
}

fn mirror_pod(extra_spec: Value) -> Value {
    let mut spec = json!({"nodeName": "a", "containers": [{"name": "c", "image": "i"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(e.clone());
    }
    json!({"metadata": {"namespace": "ns", "name": "static-a",
        "annotations": {"kubernetes.io/config.mirror": "hash"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "a",
            "uid": "node-a-uid", "controller": true}]},
        "spec": spec})
}

#[test]
fn a_node_creates_only_mirror_pods_of_its_own_that_reference_nothing() {
    let user = node_a();
    let create = |pod: &Value| {
        let r = req(
            &user,
            ("", "pods", ""),
            Operation::Create,
            ("ns", ""),
            Some(pod),
            None,
        );
        outcome(&r)
    };
    assert_eq!(create(&mirror_pod(json!({}))), "ok");
    let plain = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "a"}});
    assert_eq!(
        create(&plain),
        "403 pods \"p\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, node \"a\" can only create mirror pods"
    );
    assert_eq!(
        create(&mirror_pod(json!({"nodeName": "b"}))),
        "403 pods \"static-a\" is forbidden: node \"a\" can only create pods with spec.nodeName set to itself"
    );
    let mut orphan = mirror_pod(json!({}));
    orphan["metadata"]["ownerReferences"] = json!([]);
    assert_eq!(
        create(&orphan),
        "403 pods \"static-a\" is forbidden: node \"a\" can only create pods with an owner reference set to itself"
    );
    let mut wrong_uid = mirror_pod(json!({}));
    wrong_uid["metadata"]["ownerReferences"][0]["uid"] = json!("x");
    assert_eq!(
        create(&wrong_uid),
        "403 pods \"static-a\" is forbidden: node a UID mismatch: expected x got node-a-uid"
    );
    let mut not_controller = mirror_pod(json!({}));
    not_controller["metadata"]["ownerReferences"][0]["controller"] = json!(false);
    assert_eq!(
        create(&not_controller),
        "403 pods \"static-a\" is forbidden: node \"a\" can only create pods with a controller owner reference set to itself"
    );
    assert_eq!(
        create(&mirror_pod(json!({"serviceAccountName": "default"}))),
        "403 pods \"static-a\" is forbidden: node \"a\" can not create pods that reference a service account"
    );
    assert_eq!(
        create(&mirror_pod(
            json!({"containers": [{"name": "c", "env": [{"name": "X",
            "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]})
        )),
        "403 pods \"static-a\" is forbidden: node \"a\" can not create pods that reference secrets"
    );
    assert_eq!(
        create(&mirror_pod(
            json!({"volumes": [{"name": "v", "projected": {"sources": [
            {"configMap": {"name": "cm"}}]}}]})
        )),
        "403 pods \"static-a\" is forbidden: node \"a\" can not create pods that reference configmaps"
    );
    assert_eq!(
        create(&mirror_pod(json!({"volumes": [{"name": "v",
            "persistentVolumeClaim": {"claimName": "c"}}]}))),
        "403 pods \"static-a\" is forbidden: node \"a\" can not create pods that reference persistentvolumeclaims"
    );
}

#[test]
fn a_node_deletes_evicts_and_updates_the_status_of_its_own_pods_only() {
    let user = node_a();
    let r = req(
        &user,
        ("", "pods", ""),
        Operation::Delete,
        ("ns", "theirs"),
        None,
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 pods \"theirs\" is forbidden: node \"a\" can only delete pods with spec.nodeName set to itself"
    );
    let r = req(
        &user,
        ("", "pods", ""),
        Operation::Delete,
        ("ns", "mine"),
        None,
        None,
    );
    assert_eq!(outcome(&r), "ok");
    let r = req(
        &user,
        ("", "pods", ""),
        Operation::Delete,
        ("ns", "gone"),
        None,
        None,
    );
    assert_eq!(outcome(&r), "404 pods \"gone\" not found");
    let eviction = json!({"metadata": {"name": "theirs"}});
    let r = req(
        &user,
        ("", "pods", "eviction"),
        Operation::Create,
        ("ns", "theirs"),
        Some(&eviction),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 pods \"theirs\" is forbidden: node a can only evict pods with spec.nodeName set to itself"
    );
    let eviction = json!({"metadata": {"name": "mine"}});
    let r = req(
        &user,
        ("", "pods", "eviction"),
        Operation::Create,
        ("ns", "mine"),
        Some(&eviction),
        None,
    );
    assert_eq!(outcome(&r), "ok");
    let old = objects().pods[1].clone();
    let r = req(
        &user,
        ("", "pods", "status"),
        Operation::Update,
        ("ns", "theirs"),
        Some(&old),
        Some(&old),
    );
    assert_eq!(
        outcome(&r),
        "403 pods \"theirs\" is forbidden: node \"a\" can only update pod status for pods with spec.nodeName set to itself"
    );
    let old = objects().pods[0].clone();
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"x": "y"});
    let r = req(
        &user,
        ("", "pods", "status"),
        Operation::Update,
        ("ns", "mine"),
        Some(&relabelled),
        Some(&old),
    );
    assert_eq!(
        outcome(&r),
        "403 pods \"mine\" is forbidden: node \"a\" cannot update labels through pod status"
    );
    let r = req(
        &user,
        ("", "pods", "status"),
        Operation::Update,
        ("ns", "mine"),
        Some(&old),
        Some(&old),
    );
    assert_eq!(outcome(&r), "ok");
    let r = req(
        &user,
        ("", "pods", ""),
        Operation::Update,
        ("ns", "mine"),
        Some(&old),
        Some(&old),
    );
    assert_eq!(
        outcome(&r),
        "403 pods \"mine\" is forbidden: unexpected operation \"UPDATE\", node \"a\" can only create and delete mirror pods"
    );
    let r = req(
        &user,
        ("", "pods", "binding"),
        Operation::Create,
        ("ns", "mine"),
        Some(&old),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 pods \"mine\" is forbidden: unexpected pod subresource \"binding\", only 'status' and 'eviction' are allowed"
    );
}

#[test]
fn leases_csinodes_slices_claims_and_tokens_are_the_nodes_own() {
    let user = node_a();
    let lease = json!({"metadata": {"name": "b"}});
    let r = req(
        &user,
        ("coordination.k8s.io", "leases", ""),
        Operation::Create,
        ("kube-node-lease", ""),
        Some(&lease),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 leases.coordination.k8s.io \"b\" is forbidden: can only access node lease with the same name as the requesting node"
    );
    let r = req(
        &user,
        ("coordination.k8s.io", "leases", ""),
        Operation::Update,
        ("default", "a"),
        Some(&lease),
        Some(&lease),
    );
    assert_eq!(
        outcome(&r),
        "403 leases.coordination.k8s.io \"a\" is forbidden: can only access leases in the \"kube-node-lease\" system namespace"
    );
    let r = req(
        &user,
        ("coordination.k8s.io", "leases", ""),
        Operation::Update,
        ("kube-node-lease", "a"),
        Some(&lease),
        Some(&lease),
    );
    assert_eq!(outcome(&r), "ok");
    let r = req(
        &user,
        ("storage.k8s.io", "csinodes", ""),
        Operation::Delete,
        ("", "b"),
        None,
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 csinodes.storage.k8s.io \"b\" is forbidden: can only access CSINode with the same name as the requesting node"
    );
    let slice = json!({"metadata": {"name": "s"}, "spec": {"nodeName": "b"}});
    let r = req(
        &user,
        ("resource.k8s.io", "resourceslices", ""),
        Operation::Create,
        ("", "s"),
        Some(&slice),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 resourceslices.resource.k8s.io \"s\" is forbidden: can only create ResourceSlice with the same NodeName as the requesting node"
    );
    let r = req(
        &user,
        ("resource.k8s.io", "resourceslices", ""),
        Operation::Delete,
        ("", "s"),
        None,
        Some(&slice),
    );
    assert_eq!(
        outcome(&r),
        "403 resourceslices.resource.k8s.io \"s\" is forbidden: can only delete ResourceSlice with the same NodeName as the requesting node"
    );
    let claim =
        json!({"metadata": {"name": "c", "resourceVersion": "1"}, "status": {"phase": "Bound"}});
    let mut grown = claim.clone();
    grown["status"]["capacity"] = json!({"storage": "2Gi"});
    grown["metadata"]["resourceVersion"] = json!("2");
    let r = req(
        &user,
        ("", "persistentvolumeclaims", "status"),
        Operation::Update,
        ("ns", "c"),
        Some(&grown),
        Some(&claim),
    );
    assert_eq!(outcome(&r), "ok");
    let mut relabelled = grown.clone();
    relabelled["metadata"]["labels"] = json!({"x": "y"});
    let r = req(
        &user,
        ("", "persistentvolumeclaims", "status"),
        Operation::Update,
        ("ns", "c"),
        Some(&relabelled),
        Some(&claim),
    );
    assert_eq!(
        outcome(&r),
        "403 persistentvolumeclaims \"c\" is forbidden: node \"a\" is not allowed to update fields other than status.quantity and status.conditions: metadata.labels"
    );
    let r = req(
        &user,
        ("", "persistentvolumeclaims", ""),
        Operation::Update,
        ("ns", "c"),
        Some(&claim),
        Some(&claim),
    );
    assert_eq!(
        outcome(&r),
        "403 persistentvolumeclaims \"c\" is forbidden: may only update PVC status"
    );
    let unbound = json!({"spec": {}});
    let r = req(
        &user,
        ("", "serviceaccounts", "token"),
        Operation::Create,
        ("ns", "sa"),
        Some(&unbound),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 serviceaccounts \"sa\" is forbidden: node requested token not bound to a pod"
    );
    let other = json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "theirs", "uid": "p2"}}});
    let r = req(
        &user,
        ("", "serviceaccounts", "token"),
        Operation::Create,
        ("ns", "sa"),
        Some(&other),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 serviceaccounts \"sa\" is forbidden: node requested token bound to a pod scheduled on a different node"
    );
    let stale = json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "mine", "uid": "old"}}});
    let r = req(
        &user,
        ("", "serviceaccounts", "token"),
        Operation::Create,
        ("ns", "sa"),
        Some(&stale),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 serviceaccounts \"sa\" is forbidden: the UID in the bound object reference (old) does not match the UID in record. The object might have been deleted and then recreated"
    );
    let own = json!({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "mine", "uid": "p1"}}});
    let r = req(
        &user,
        ("", "serviceaccounts", "token"),
        Operation::Create,
        ("ns", "sa"),
        Some(&own),
        None,
    );
    assert_eq!(outcome(&r), "ok");
}

#[test]
fn node_csrs_must_name_the_requesting_node() {
    let user = node_a();
    let csr_for = |cn: &str| {
        let (pem, _) = k1s_pki::new_csr(cn, &["system:nodes"], &[]).expect("csr");
        json!({"metadata": {"name": "csr"}, "spec": {
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "request": base64::engine::general_purpose::STANDARD.encode(pem)}})
    };
    let other = csr_for("system:node:b");
    let r = req(
        &user,
        ("certificates.k8s.io", "certificatesigningrequests", ""),
        Operation::Create,
        ("", "csr"),
        Some(&other),
        None,
    );
    assert_eq!(
        outcome(&r),
        "403 certificatesigningrequests.certificates.k8s.io \"csr\" is forbidden: can only create a node CSR with CN=system:node:a"
    );
    let own = csr_for("system:node:a");
    let r = req(
        &user,
        ("certificates.k8s.io", "certificatesigningrequests", ""),
        Operation::Create,
        ("", "csr"),
        Some(&own),
        None,
    );
    assert_eq!(outcome(&r), "ok");
}

#[test]
fn kubelet_labels_follow_upstream() {
    for allowed in [
        "kubernetes.io/hostname",
        "node.kubernetes.io/instance-type",
        "node.kubernetes.io/anything",
        "x.kubelet.kubernetes.io/y",
    ] {
        assert!(is_kubelet_label(allowed), "{allowed}");
    }
    for refused in [
        "node-role.kubernetes.io/master",
        "kubernetes.io/foo",
        "xnode.kubernetes.io/a",
    ] {
        assert!(!is_kubelet_label(refused), "{refused}");
    }
}

/// The registry and the handlers run the plugin: writes, deletes, `status` and eviction.
#[tokio::test]
async fn writes_through_the_api_are_restricted() {
    let t = crate::test_util::TestApiServer::new().await;
    let admin = t.api();
    for name in ["a", "b"] {
        admin
            .create(
                "/api/v1/nodes",
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}),
            )
            .await;
    }
    admin
        .create(
            "/api/v1/namespaces/default/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-b"},
                "spec": {"nodeName": "b", "containers": [{"name": "c", "image": "i"}]}}),
        )
        .await;
    let node = t.api_as(node_a());
    let merge = "application/merge-patch+json";
    let message = |r: (u16, Value)| format!("{} {}", r.0, r.1["message"].as_str().unwrap_or(""));
    let r = node
        .call_with(
            "PATCH",
            "/api/v1/nodes/b",
            merge,
            &json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(
        message(r),
        "403 nodes \"b\" is forbidden: node \"a\" is not allowed to modify node \"b\""
    );
    let r = node
        .call_with(
            "PATCH",
            "/api/v1/nodes/a",
            merge,
            &json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let r = node
        .call_with(
            "PATCH",
            "/api/v1/namespaces/default/pods/on-b/status",
            merge,
            &json!({"status": {"message": "x"}}),
        )
        .await;
    assert_eq!(
        message(r),
        "403 pods \"on-b\" is forbidden: node \"a\" can only update pod status for pods with spec.nodeName set to itself"
    );
    let r = node
        .call(
            "POST",
            "/api/v1/namespaces/default/pods/on-b/eviction",
            &json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "on-b"}}),
        )
        .await;
    assert_eq!(
        message(r),
        "403 pods \"on-b\" is forbidden: node a can only evict pods with spec.nodeName set to itself"
    );
    let r = node
        .call("DELETE", "/api/v1/namespaces/default/pods/on-b", &json!({}))
        .await;
    assert_eq!(
        message(r),
        "403 pods \"on-b\" is forbidden: node \"a\" can only delete pods with spec.nodeName set to itself"
    );
    let r = node
        .call(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "a"}}),
        )
        .await;
    assert_eq!(r.0, 201, "{}", r.1);
}
