//! The watches that feed the index: one per kind, a list then a watch (relisting only
//! when the watch cannot resume), each event applied at once.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::index::Index;

/// Watches Services and EndpointSlices of every namespace into `index` until aborted;
/// `synced` turns true once both initial lists are in.
pub(crate) async fn run(
    client: kube::Client,
    index: Arc<RwLock<Index>>,
    synced: watch::Sender<bool>,
) {
    let services = watch_kind(
        Api::<Service>::all(client.clone()),
        index.clone(),
        synced.clone(),
        Kind {
            apply: Index::apply_service,
            delete: Index::delete_service,
            replace: Index::replace_services,
        },
    );
    let slices = watch_kind(
        Api::<EndpointSlice>::all(client),
        index,
        synced,
        Kind {
            apply: Index::apply_slice,
            delete: Index::delete_slice,
            replace: Index::replace_slices,
        },
    );
    tokio::join!(services, slices);
}

struct Kind<K> {
    apply: fn(&mut Index, K),
    delete: fn(&mut Index, &K),
    replace: fn(&mut Index, Vec<K>),
}

/// Drops what the answers never read (managed fields, last-applied annotations).
fn slim<K: kube::Resource>(mut obj: K) -> K {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    obj
}

async fn watch_kind<K>(
    api: Api<K>,
    index: Arc<RwLock<Index>>,
    synced: watch::Sender<bool>,
    kind: Kind<K>,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut initial: Vec<K> = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => initial.clear(),
            Ok(Event::InitApply(obj)) => initial.push(slim(obj)),
            Ok(Event::InitDone) => {
                let mut index = index.write();
                (kind.replace)(&mut index, std::mem::take(&mut initial));
                let ready = index.synced();
                drop(index);
                if ready {
                    synced.send_replace(true);
                }
            }
            Ok(Event::Apply(obj)) => (kind.apply)(&mut index.write(), slim(obj)),
            Ok(Event::Delete(obj)) => (kind.delete)(&mut index.write(), &obj),
            Err(e) => tracing::warn!(error = %e, "cluster DNS watch failed; retrying"),
        }
    }
}
