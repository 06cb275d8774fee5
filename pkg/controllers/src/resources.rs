//! The resources the server serves, found through discovery (so CRDs are included).

use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};

/// One served resource and whether it lives in namespaces.
#[derive(Clone, Debug)]
pub struct Served {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Supports `deletecollection`.
    pub delete_collection: bool,
}

/// Every resource that can be listed and deleted, preferred versions only.
pub async fn listable(client: &kube::Client) -> Result<Vec<Served>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !usable(&caps) {
                continue;
            }
            out.push(Served {
                namespaced: caps.scope == Scope::Namespaced,
                delete_collection: caps.supports_operation(verbs::DELETE_COLLECTION),
                resource: ar,
            });
        }
    }
    Ok(out)
}

fn usable(caps: &ApiCapabilities) -> bool {
    caps.supports_operation(verbs::LIST) && caps.supports_operation(verbs::DELETE)
}
