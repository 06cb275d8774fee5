//! The one generic registry: every served resource, built-in or custom, is a
//! [`ResourceInfo`] plus a [`Strategy`], served by the same [`generic`] code.

pub mod errors;
pub mod generic;
#[cfg(test)]
mod quota_tests;
pub(crate) mod served_json;
pub mod strategy;
pub mod table;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

pub use self::strategy::{ScaleSpec, Strategy};
use crate::schema::model::Definitions;

/// Subresources a resource can serve through the generic registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subresource {
    /// `/status`: writes only `.status`.
    Status,
    /// `/scale`: an `autoscaling/v1` Scale view of replicas.
    Scale,
    /// `/finalize` of namespaces: writes only `spec.finalizers`.
    Finalize,
    /// `/binding` of pods: a POSTed Binding assigns the pod to a node.
    Binding,
    /// `/token` of service accounts: creates an `authentication.k8s.io/v1`
    /// TokenRequest, nothing stored.
    Token,
    /// `/eviction` of pods: a policy/v1 Eviction that deletes the pod unless its
    /// PodDisruptionBudget forbids it.
    Eviction,
    /// `/log` of pods: the container's log, streamed from the node's kubelet.
    Log,
    /// `/exec` of pods: a command in a container, an upgraded stream to the kubelet.
    Exec,
    /// `/attach` of pods: a container's own stdio, an upgraded stream to the kubelet.
    Attach,
    /// `/portforward` of pods: TCP to the pod's ports, an upgraded stream to the kubelet.
    PortForward,
    /// `/approval` of CertificateSigningRequests: writes only the status conditions.
    Approval,
    /// `/ephemeralcontainers` of pods: writes only `spec.ephemeralContainers`.
    EphemeralContainers,
    /// `/resize` of pods: writes only the containers' resources and resize policies.
    Resize,
}

impl Subresource {
    /// Its path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Finalize => "finalize",
            Subresource::Binding => "binding",
            Subresource::Token => "token",
            Subresource::Eviction => "eviction",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Approval => "approval",
            Subresource::EphemeralContainers => "ephemeralcontainers",
            Subresource::Resize => "resize",
        }
    }

    /// Whether the kind's strategy decides what a write through it changes and how it is
    /// validated ([`Strategy::prepare_for_subresource_update`]).
    pub fn is_kind_specific(self) -> bool {
        matches!(
            self,
            Subresource::Approval | Subresource::EphemeralContainers | Subresource::Resize
        )
    }

    /// Whether it is proxied to a kubelet (log, exec, attach, portforward) rather than
    /// served from storage; the OpenAPI documents leave these out.
    pub fn is_streaming(self) -> bool {
        matches!(
            self,
            Subresource::Log | Subresource::Exec | Subresource::Attach | Subresource::PortForward
        )
    }

    /// Verbs discovery lists for it, which are also the only ones served on its path
    /// (`finalize` takes PUT alone, like upstream's `namespaces/finalize`).
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Subresource::Finalize => &["update"],
            Subresource::Binding => &["create"],
            Subresource::Token => &["create"],
            Subresource::Eviction => &["create"],
            Subresource::Log => &["get"],
            Subresource::Exec | Subresource::Attach | Subresource::PortForward => {
                &["create", "get"]
            }
            _ => &["get", "patch", "update"],
        }
    }
}

/// Everything the API machinery needs to know about one resource in one version.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group, empty for the core group.
    pub group: String,
    /// Version (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Plural resource name, the URL segment (`deployments`).
    pub plural: String,
    /// Singular name (`deployment`).
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Verbs on the collection and objects, in discovery order.
    pub verbs: Vec<&'static str>,
    /// Subresources served.
    pub subresources: Vec<Subresource>,
    /// Definition name of the kind's schema.
    pub definition: String,
    /// Store key prefix without the trailing slash (`/registry/deployments`). Versions of
    /// one resource share it.
    pub key_prefix: String,
    /// Whether this version is the one stored (others convert to it).
    pub storage_version: bool,
    /// Defined by a CustomResourceDefinition: no strategic merge patch, like upstream.
    pub custom: bool,
    /// A delete that removes the object at once answers with the object rather than a
    /// Status (upstream's `ReturnDeletedObject`); a delete that only marks the object,
    /// pending finalizers, answers with it for every kind.
    pub returns_deleted_object: bool,
}

/// Verbs of an ordinary read-write resource, as discovery lists them. Resources upstream
/// serves with fewer (namespaces without `deletecollection`, componentstatuses, bindings)
/// name theirs in `kinds::builtin`.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceInfo {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group.
    pub fn group_resource(&self) -> k1s_apimachinery::GroupResource {
        k1s_apimachinery::GroupResource::new(&self.group, &self.plural)
    }

    /// `Deployment.apps`, or `Pod` for the core group.
    pub fn group_kind(&self) -> k1s_apimachinery::GroupKind {
        k1s_apimachinery::GroupKind::new(&self.group, &self.kind)
    }

    /// Whether the verb is served.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Whether the subresource is served.
    pub fn has_subresource(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// Store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}/{ns}/{name}", self.key_prefix),
            None => format!("{}/{name}", self.key_prefix),
        }
    }

    /// Store key prefix of a collection (one namespace, or all).
    pub fn collection_prefix(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}/{ns}/", self.key_prefix),
            None => format!("{}/", self.key_prefix),
        }
    }
}

/// Converts objects between a served version and the stored version of a resource.
pub trait Conversion: Send + Sync + 'static {
    /// From this version to the stored one.
    fn stored_form(
        &self,
        generic: &generic::GenericStore,
        obj: serde_json::Value,
    ) -> Result<serde_json::Value, k1s_apimachinery::Status>;
    /// From the stored version to this one.
    fn served_form(
        &self,
        generic: &generic::GenericStore,
        obj: serde_json::Value,
    ) -> Result<serde_json::Value, k1s_apimachinery::Status>;
}

/// One served resource: what it is and how it behaves.
pub struct Resource {
    /// Names, scope, verbs.
    pub info: ResourceInfo,
    /// Kind-specific behaviour (of the stored version, for other versions).
    pub strategy: Arc<dyn Strategy>,
    /// Conversion to the stored version, when this is not it.
    pub conversion: Option<Arc<dyn Conversion>>,
}

/// A group as discovery presents it.
#[derive(Debug, Clone)]
pub struct GroupVersions {
    /// Group name ("" for core).
    pub group: String,
    /// Versions, preferred first.
    pub versions: Vec<String>,
}

/// An immutable view of everything served; replaced whole when CRDs change.
#[derive(Default)]
pub struct Snapshot {
    resources: BTreeMap<(String, String, String), Arc<Resource>>,
    groups: Vec<GroupVersions>,
    /// Every schema definition (built-in and CRD).
    pub definitions: Arc<Definitions>,
    /// Bumped on every change, for caches of derived documents.
    pub generation: u64,
}

impl Snapshot {
    /// The resource at group/version/plural.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<Resource>> {
        self.resources
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    /// Groups with their versions (preferred first), core first, in registration order.
    pub fn groups(&self) -> &[GroupVersions] {
        &self.groups
    }

    /// Resources of one group version, in plural order.
    pub fn resources_of<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Resource>> + 'a {
        self.resources
            .values()
            .filter(move |r| r.info.group == group && r.info.version == version)
    }

    /// Every resource.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Resource>> {
        self.resources.values()
    }

    /// The stored version of the resource with this key prefix.
    pub fn storage_resource(&self, key_prefix: &str) -> Option<&Arc<Resource>> {
        self.resources
            .values()
            .find(|r| r.info.key_prefix == key_prefix && r.info.storage_version)
    }

    /// Finds a resource by group and kind in any version, preferring the group's first.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<&Arc<Resource>> {
        let gv = self.groups.iter().find(|g| g.group == group)?;
        gv.versions.iter().find_map(|v| {
            self.resources
                .values()
                .find(|r| r.info.group == group && r.info.version == *v && r.info.kind == kind)
        })
    }
}

/// The sort key of a version as upstream's `CompareKubeAwareVersionStrings` orders them,
/// highest first when sorted descending: Kubernetes-like versions (`v2`, `v1beta1`,
/// `v1alpha1`) above all others, GA above beta above alpha, then by major and minor
/// number; other strings after them in ascending lexical order.
pub fn version_priority(v: &str) -> (bool, u8, u64, u64, std::cmp::Reverse<String>) {
    let other = (false, 0, 0, 0, std::cmp::Reverse(v.to_string()));
    let Some(rest) = v.strip_prefix('v') else {
        return other;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (major, tail) = rest.split_at(digits);
    let Ok(major) = major.parse::<u64>() else {
        return other;
    };
    let (level, minor) = if tail.is_empty() {
        return (true, 2, major, 0, std::cmp::Reverse(String::new()));
    } else if let Some(n) = tail.strip_prefix("beta") {
        (1, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (0, n)
    } else {
        return other;
    };
    match minor.parse::<u64>() {
        Ok(m) if minor.bytes().all(|b| b.is_ascii_digit()) => {
            (true, level, major, m, std::cmp::Reverse(String::new()))
        }
        _ => other,
    }
}

/// The registry: a swappable snapshot.
#[derive(Default)]
pub struct Registry {
    current: RwLock<Arc<Snapshot>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    /// Replaces the served set: `resources` in registration order, `definitions` all
    /// schemas. Group order follows first registration; a group's versions keep the order
    /// given (the first is preferred).
    pub fn replace(&self, resources: Vec<Arc<Resource>>, definitions: Definitions) {
        let mut groups: Vec<GroupVersions> = Vec::new();
        let mut map = BTreeMap::new();
        for r in resources {
            match groups.iter_mut().find(|g| g.group == r.info.group) {
                Some(g) if !g.versions.contains(&r.info.version) => {
                    g.versions.push(r.info.version.clone())
                }
                Some(_) => {}
                None => groups.push(GroupVersions {
                    group: r.info.group.clone(),
                    versions: vec![r.info.version.clone()],
                }),
            }
            map.insert(
                (
                    r.info.group.clone(),
                    r.info.version.clone(),
                    r.info.plural.clone(),
                ),
                r,
            );
        }
        // Upstream orders every group's versions by Kubernetes version priority and
        // prefers the first (a CRD serving v1alpha1 and v1 prefers v1).
        for g in &mut groups {
            g.versions
                .sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        let mut current = self.current.write();
        let generation = current.generation + 1;
        *current = Arc::new(Snapshot {
            resources: map,
            groups,
            definitions: Arc::new(definitions),
            generation,
        });
    }
}
