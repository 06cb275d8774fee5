//! The aggregation layer (upstream's kube-aggregator inside the API server): APIServices
//! register group-versions; a local one is served by this server, a remote one by an
//! extension API server behind a Service, to which requests under
//! `/apis/<group>/<version>` are proxied (see [`proxy`]) after this server authenticated
//! and authorized them. [`controller`] keeps a local APIService for every built-in and
//! custom-resource group-version (upstream's autoregistration and CRD registration
//! controllers) and checks the remote ones (upstream's availability controller), whose
//! discovery documents it fetches for this server's discovery.

pub mod authentication;
pub mod controller;
pub mod discovery;
pub mod proxy;
mod remote;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

pub use remote::ProxyIdentity;

/// `apiregistration.k8s.io`.
pub const GROUP: &str = "apiregistration.k8s.io";
/// The served version.
pub const VERSION: &str = "v1";
/// The resource.
pub const PLURAL: &str = "apiservices";

/// A non-local APIService as the proxy and discovery see it.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The APIService's name (`<version>.<group>`).
    pub name: String,
    /// The group served.
    pub group: String,
    /// The version served.
    pub version: String,
    /// `spec.groupPriorityMinimum`.
    pub group_priority: i64,
    /// `spec.versionPriority`.
    pub version_priority: i64,
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub service: String,
    /// The Service port.
    pub port: u16,
    /// The decoded `spec.caBundle`.
    pub ca_bundle: Option<Vec<u8>>,
    /// `spec.insecureSkipTLSVerify`.
    pub insecure: bool,
    /// Whether the Available condition is True.
    pub available: bool,
    /// The extension server's `APIResourceList` of this group-version, from the last
    /// successful check.
    pub discovery: Option<Value>,
}

impl Remote {
    /// Reads an APIService with a service; `None` for a local one.
    pub fn from_api_service(obj: &Value, discovery: Option<Value>) -> Option<Remote> {
        let spec = obj.get("spec")?;
        let svc = spec.get("service").filter(|s| s.is_object())?;
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let available = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Available")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            });
        Some(Remote {
            name: crate::meta::name(obj).to_string(),
            group: s(spec, "group"),
            version: s(spec, "version"),
            group_priority: spec
                .get("groupPriorityMinimum")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            version_priority: spec
                .get("versionPriority")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            namespace: s(svc, "namespace"),
            service: s(svc, "name"),
            port: svc
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443),
            ca_bundle: crate::kinds::apiregistration::apiservice::ca_bundle(spec),
            insecure: spec
                .get("insecureSkipTLSVerify")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            available,
            discovery,
        })
    }
}

/// What the aggregation layer knows at run time.
#[derive(Default)]
pub struct Aggregator {
    /// Non-local APIServices by (group, version), rebuilt by the controller.
    remotes: parking_lot::RwLock<BTreeMap<(String, String), Arc<Remote>>>,
    /// The client certificate the proxy presents (upstream's `--proxy-client-cert-file`),
    /// once set.
    identity: OnceLock<Arc<ProxyIdentity>>,
}

impl Aggregator {
    /// Sets the proxy's client certificate and key (PEM); only the first call counts.
    pub fn set_proxy_identity(&self, cert_pem: &str, key_pem: &str) -> Result<(), String> {
        let id = ProxyIdentity::from_pem(cert_pem, key_pem)?;
        let _ = self.identity.set(Arc::new(id));
        Ok(())
    }

    /// The proxy's client identity, if set.
    pub fn identity(&self) -> Option<Arc<ProxyIdentity>> {
        self.identity.get().cloned()
    }

    /// The remote APIService serving `group`/`version`, if any.
    pub fn remote(&self, group: &str, version: &str) -> Option<Arc<Remote>> {
        self.remotes
            .read()
            .get(&(group.to_string(), version.to_string()))
            .cloned()
    }

    /// Every remote APIService.
    pub fn remotes(&self) -> Vec<Arc<Remote>> {
        self.remotes.read().values().cloned().collect()
    }

    /// Remote group-versions of `group`, highest version priority first.
    pub fn remote_group(&self, group: &str) -> Vec<Arc<Remote>> {
        let mut out: Vec<Arc<Remote>> = self
            .remotes
            .read()
            .values()
            .filter(|r| r.group == group)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.version_priority.cmp(&a.version_priority).then_with(|| {
                crate::registry::version_priority(&b.version)
                    .cmp(&crate::registry::version_priority(&a.version))
            })
        });
        out
    }

    /// Remote groups in discovery order (highest group priority first, then by name),
    /// each with its versions in preference order.
    pub fn remote_groups(&self) -> Vec<(String, Vec<Arc<Remote>>)> {
        let mut groups: BTreeMap<String, i64> = BTreeMap::new();
        for r in self.remotes.read().values() {
            let p = groups.entry(r.group.clone()).or_insert(0);
            *p = (*p).max(r.group_priority);
        }
        let mut list: Vec<(String, i64)> = groups.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list.into_iter()
            .map(|(g, _)| {
                let versions = self.remote_group(&g);
                (g, versions)
            })
            .collect()
    }

    /// Replaces the remote APIServices.
    pub(crate) fn set_remotes(&self, remotes: Vec<Remote>) {
        let map = remotes
            .into_iter()
            .map(|r| ((r.group.clone(), r.version.clone()), Arc::new(r)))
            .collect();
        *self.remotes.write() = map;
    }
}
