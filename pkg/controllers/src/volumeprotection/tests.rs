use super::*;

fn pod(v: Value) -> Pod {
    serde_json::from_value(v).expect("pod")
}

fn claim(name: &str, owner: Option<&str>) -> PersistentVolumeClaim {
    let mut meta = json!({"name": name, "namespace": "ns"});
    if let Some(uid) = owner {
        meta["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Pod", "name": "p",
                                          "uid": uid, "controller": true}]);
    }
    serde_json::from_value(json!({"metadata": meta, "spec": {}})).expect("claim")
}

fn scheduled(volumes: Value) -> Pod {
    pod(
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
               "spec": {"nodeName": "n1", "containers": [], "volumes": volumes}}),
    )
}

#[test]
fn a_scheduled_pod_holds_the_claims_it_names() {
    let p = scheduled(
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                             {"name": "tmp", "emptyDir": {}}]),
    );
    assert!(pod_holds(&p, &claim("data", None)));
    assert!(!pod_holds(&p, &claim("other", None)));
}

#[test]
fn an_unscheduled_pod_holds_nothing() {
    let p = pod(json!({"metadata": {"name": "p", "namespace": "ns"},
                       "spec": {"containers": [],
                                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}));
    assert!(!pod_holds(&p, &claim("data", None)));
}

#[test]
fn an_ephemeral_claim_is_held_by_the_pod_that_controls_it_until_it_is_shut_down() {
    let vols = json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]);
    let p = scheduled(vols.clone());
    assert!(pod_holds(&p, &claim("p-scratch", Some("u1"))));
    // Same name, another pod's claim.
    assert!(!pod_holds(&p, &claim("p-scratch", Some("u2"))));
    let mut gone = scheduled(vols);
    gone.metadata.deletion_timestamp = p.metadata.creation_timestamp.clone().or(Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    ));
    gone.metadata.deletion_grace_period_seconds = Some(0);
    assert!(!pod_holds(&gone, &claim("p-scratch", Some("u1"))));
}

#[test]
fn finalizer_patches_keep_the_others_and_carry_the_resource_version() {
    let mut c = claim("data", None);
    c.metadata.resource_version = Some("7".into());
    c.metadata.finalizers = Some(vec!["example.com/keep".into()]);
    assert_eq!(
        with_finalizer(&c, PVC_FINALIZER),
        json!({"metadata": {"resourceVersion": "7",
                            "finalizers": ["example.com/keep", PVC_FINALIZER]}})
    );
    c.metadata.finalizers = Some(vec![PVC_FINALIZER.into()]);
    assert_eq!(
        without_finalizer(&c, PVC_FINALIZER),
        json!({"metadata": {"resourceVersion": "7", "finalizers": null}})
    );
}
