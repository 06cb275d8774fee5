//! Leases (upstream `ValidateLease`, `ValidateLeaseUpdate` and the lease strategy): a
//! positive duration, non-negative transitions, and the coordinated-leader-election
//! fields, which the (off by default) CoordinatedLeaderElection gate drops unless the
//! stored Lease already has them. An update of a missing Lease creates it; a PUT of an
//! existing one must name its resourceVersion, as upstream's strategy requires (patches,
//! such as heartbeats sent with `kubectl patch`, apply to the current version).

use k1s_apimachinery::validation::is_qualified_name;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::validation::Fields;
use crate::registry::Strategy;

/// The Lease strategy.
pub struct LeaseStrategy;

const STRATEGIES: &[&str] = &["OldestEmulationVersion"];

/// `ValidateCoordinatedLeaseStrategy`. Upstream appends `strategy` to a path that already
/// ends in it, so errors read `spec.strategy.strategy`.
fn validate_strategy(strategy: &str, path: &Path) -> ErrorList {
    let path = path.child("strategy");
    if strategy.split('/').count() == 1 {
        if !STRATEGIES.contains(&strategy) {
            return vec![FieldError::not_supported(&path, strategy, STRATEGIES)];
        }
        return ErrorList::new();
    }
    is_qualified_name(strategy)
        .into_iter()
        .map(|msg| FieldError::invalid(&path, strategy, msg))
        .collect()
}

/// `ValidateLeaseSpec`.
fn validate_spec(obj: &Value) -> ErrorList {
    let spec = obj.f("spec");
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    if let Some(d) = spec.i("leaseDurationSeconds")
        && d <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.i("leaseTransitions")
        && t < 0
    {
        errs.push(FieldError::invalid(
            &path.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    let strategy = spec.get("strategy").and_then(Value::as_str);
    if let Some(s) = strategy {
        errs.extend(validate_strategy(s, &path.child("strategy")));
    }
    if !spec.s("preferredHolder").is_empty() && strategy.unwrap_or("").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

fn drop_fields(obj: &mut Value, keep_strategy: bool, keep_holder: bool) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if !keep_strategy {
            spec.remove("strategy");
        }
        if !keep_holder {
            spec.remove("preferredHolder");
        }
    }
}

impl Strategy for LeaseStrategy {
    // Upstream's strategy refuses a PUT without a resourceVersion; patches apply to the
    // current version and are not affected.
    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value, _has_status: bool) {
        drop_fields(obj, false, false);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value, _has_status: bool) {
        let spec = old.f("spec");
        drop_fields(new, spec.has("strategy"), spec.has("preferredHolder"));
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_spec(obj)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_put_must_name_the_resource_version_and_a_patch_need_not() {
        // Upstream's strategies of these kinds refuse unconditional updates.
        let api = crate::test_util::TestApiServer::new().await.api();
        let kinds = [
            (
                "/apis/coordination.k8s.io/v1/namespaces/default/leases",
                json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 40}}),
            ),
            (
                "/apis/node.k8s.io/v1/runtimeclasses",
                json!({"metadata": {"name": "l"}, "handler": "runc"}),
            ),
            (
                "/apis/storage.k8s.io/v1/csidrivers",
                json!({"metadata": {"name": "l"}, "spec": {}}),
            ),
            (
                "/apis/storage.k8s.io/v1/csinodes",
                json!({"metadata": {"name": "l"}, "spec": {"drivers": []}}),
            ),
            (
                "/apis/storage.k8s.io/v1/namespaces/default/csistoragecapacities",
                json!({"metadata": {"name": "l"}, "storageClassName": "local-path"}),
            ),
            (
                "/apis/storage.k8s.io/v1/volumeattachments",
                json!({"metadata": {"name": "l"}, "spec": {"attacher": "csi.example.com", "nodeName": "n",
                    "source": {"persistentVolumeName": "pv"}}}),
            ),
        ];
        for (collection, obj) in kinds {
            let created = api.create(collection, obj.clone()).await;
            let item = format!("{collection}/l");
            let label = json!({"metadata": {"labels": {"a": "b"}}});
            let (code, body) = api
                .call_with("PATCH", &item, "application/merge-patch+json", &label)
                .await;
            assert_eq!(code, 200, "{item}: {body}");
            let mut put = obj.clone();
            put["metadata"]["labels"] = json!({"a": "c"});
            let (code, body) = api.call("PUT", &item, &put).await;
            assert_eq!(code, 422, "{item}: {body}");
            assert!(
                body["message"].as_str().unwrap_or("").contains(
                    "metadata.resourceVersion: Invalid value: \"\": must be specified for an update"
                ),
                "{item}: {body}"
            );
            put["metadata"]["resourceVersion"] = body_rv(&api, &item).await;
            let (code, body) = api.call("PUT", &item, &put).await;
            assert_eq!(code, 200, "{item}: {body}");
            assert_ne!(
                created["metadata"]["resourceVersion"],
                body["metadata"]["resourceVersion"]
            );
        }
    }

    /// The current resourceVersion of `item`.
    async fn body_rv(api: &crate::test_util::TestApi, item: &str) -> Value {
        let (code, body) = api.call("GET", item, &Value::Null).await;
        assert_eq!(code, 200, "{item}: {body}");
        body["metadata"]["resourceVersion"].clone()
    }

    #[test]
    fn node_leases_are_valid_and_gated_fields_dropped() {
        let mut lease = json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": "2025-01-01T00:00:00.000000Z",
                     "strategy": "OldestEmulationVersion", "preferredHolder": "x"}});
        LeaseStrategy.prepare_for_create(&mut lease, false);
        assert!(lease["spec"].get("strategy").is_none());
        assert!(LeaseStrategy.validate(&lease).is_empty());
        lease["spec"]["leaseDurationSeconds"] = json!(0);
        assert_eq!(
            LeaseStrategy.validate(&lease)[0].to_string(),
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
        let odd = json!({"spec": {"strategy": "Newest"}});
        assert_eq!(
            LeaseStrategy.validate(&odd)[0].to_string(),
            "spec.strategy.strategy: Unsupported value: \"Newest\": supported values: \"OldestEmulationVersion\""
        );
    }
}

#[cfg(test)]
mod flows {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::networking::v1::Ingress;
    use k8s_openapi::api::storage::v1::StorageClass;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use serde_json::json;

    use crate::test_util::TestApiServer;

    fn lease(name: &str) -> Lease {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}),
        )
        .expect("a lease")
    }

    /// What kubelets, leader election and `kubectl apply` do to these kinds keeps working.
    #[tokio::test]
    async fn heartbeats_status_writes_and_reapplies_pass() {
        let server = TestApiServer::new().await;
        let leases: Api<Lease> = Api::namespaced(server.client(), "kube-node-lease");
        leases
            .create(&PostParams::default(), &lease("node-1"))
            .await
            .expect("create");
        let renew = json!({"spec": {"renewTime": "2026-01-01T00:00:00.000000Z"}});
        leases
            .patch("node-1", &PatchParams::default(), &Patch::Merge(&renew))
            .await
            .expect("a heartbeat patch");
        leases
            .replace("node-2", &PostParams::default(), &lease("node-2"))
            .await
            .expect("an update of a missing lease creates it");

        let classes: Api<StorageClass> = Api::all(server.client());
        let sc: StorageClass = serde_json::from_value(json!({"metadata": {"name": "local-path"},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}))
        .expect("a class");
        classes
            .create(&PostParams::default(), &sc)
            .await
            .expect("create");
        let reapply = json!({"metadata": {"annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        classes
            .patch(
                "local-path",
                &PatchParams::default(),
                &Patch::Strategic(&reapply),
            )
            .await
            .expect("re-applying the same class");

        let ingresses: Api<Ingress> = Api::namespaced(server.client(), "default");
        let ing: Ingress = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
            "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}))
        .expect("an ingress");
        ingresses
            .create(&PostParams::default(), &ing)
            .await
            .expect("create");
        let ok = json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}]}}});
        ingresses
            .patch_status("web", &PatchParams::default(), &Patch::Merge(&ok))
            .await
            .expect("a controller's status write");
        let bad = json!({"status": {"loadBalancer": {"ingress": [{"hostname": "192.168.1.11"}]}}});
        let err = ingresses
            .patch_status("web", &PatchParams::default(), &Patch::Merge(&bad))
            .await
            .expect_err("an IP as hostname");
        assert!(
            err.to_string()
                .contains("status.loadBalancer.ingress[0].hostname: Invalid value: \"192.168.1.11\": must be a DNS name, not an IP address"),
            "{err}"
        );
    }
}
