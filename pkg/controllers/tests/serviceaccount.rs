//! The service account controllers against an in-process API server: every namespace
//! gets the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap, and both come
//! back when deleted or edited.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, TEST_CA_PEM};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..100 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn every_namespace_gets_the_default_account_and_the_root_ca() {
    let cluster = Cluster::start().await;
    cluster.namespace("team").await;
    let sas: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), "team");
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "team");
    let first = eventually("the default service account", || async {
        sas.get_opt("default").await.ok().flatten()
    })
    .await;
    let cm = eventually("kube-root-ca.crt", || async {
        cms.get_opt("kube-root-ca.crt").await.ok().flatten()
    })
    .await;
    assert_eq!(
        cm.data
            .unwrap_or_default()
            .get("ca.crt")
            .map(String::as_str),
        Some(TEST_CA_PEM)
    );
    // The system namespaces have them too.
    let kube_system: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "kube-system");
    eventually("kube-system's kube-root-ca.crt", || async {
        kube_system.get_opt("kube-root-ca.crt").await.ok().flatten()
    })
    .await;

    // Deleted: recreated (a new uid).
    sas.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the default service account back", || async {
        sas.get_opt("default")
            .await
            .ok()
            .flatten()
            .filter(|sa| sa.metadata.uid != first.metadata.uid)
    })
    .await;
    // Edited: the data is put back.
    let mut cm = cms.get("kube-root-ca.crt").await.unwrap();
    cm.data = Some(BTreeMap::from([(
        "ca.crt".to_string(),
        "forged".to_string(),
    )]));
    cms.replace("kube-root-ca.crt", &PostParams::default(), &cm)
        .await
        .unwrap();
    eventually("kube-root-ca.crt restored", || async {
        cms.get("kube-root-ca.crt").await.ok().filter(|cm| {
            cm.data
                .as_ref()
                .and_then(|d| d.get("ca.crt"))
                .map(String::as_str)
                == Some(TEST_CA_PEM)
        })
    })
    .await;
}
