//! API discovery for controllers that act on every kind (namespace deletion, garbage
//! collection): the preferred version of each resource with its verbs and scope.
//!
//! Like client-go's `ServerPreferredResources`, a group that fails to answer does not
//! spoil the others: its error is reported beside what the rest returned.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::discovery::ApiResource;

/// One resource at its group's preferred version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredResource {
    /// Group, version, kind and plural name.
    pub api: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The verbs discovery lists (`list`, `watch`, `delete`, `deletecollection` …).
    pub verbs: Vec<String>,
}

impl DiscoveredResource {
    /// Whether discovery lists every one of `verbs`.
    pub fn supports(&self, verbs: &[&str]) -> bool {
        verbs
            .iter()
            .all(|v| self.verbs.iter().any(|have| have == v))
    }

    /// `group/version, Resource=plural`, as Go prints a GroupVersionResource.
    pub fn gvr_string(&self) -> String {
        format!(
            "{}/{}, Resource={}",
            self.api.group, self.api.version, self.api.plural
        )
    }
}

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// Resources of every group that answered (subresources left out).
    pub resources: Vec<DiscoveredResource>,
    /// Group versions that could not be read, with the error.
    pub failed: BTreeMap<String, String>,
    /// Group versions whose name could not be parsed, with upstream's message.
    pub unparsable: Vec<String>,
}

impl Discovered {
    /// Upstream's `ErrGroupDiscoveryFailed` message, when some group failed.
    pub fn failure_message(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .failed
            .iter()
            .map(|(gv, e)| format!("{gv}: {e}"))
            .collect();
        Some(format!(
            "Discovery failed for some groups, {} failing: unable to retrieve the complete list of server APIs: {}",
            self.failed.len(),
            list.join(", ")
        ))
    }
}

/// Splits `group/version` (or a core `version`) as apimachinery's `ParseGroupVersion` does.
pub fn parse_group_version(gv: &str) -> Result<(String, String), String> {
    if gv.is_empty() || gv == "/" {
        return Ok((String::new(), String::new()));
    }
    let parts: Vec<&str> = gv.split('/').collect();
    match parts.as_slice() {
        [version] => Ok((String::new(), (*version).to_string())),
        [group, version] => Ok(((*group).to_string(), (*version).to_string())),
        _ => Err(format!("unexpected GroupVersion string: {gv}")),
    }
}

/// Reads the preferred version of every group; fails only when the group list itself
/// cannot be read.
pub async fn preferred_resources(client: &kube::Client) -> Result<Discovered, kube::Error> {
    let mut out = Discovered::default();
    let core = client.list_core_api_versions().await?;
    let mut group_versions: Vec<String> = core.versions.into_iter().take(1).collect();
    let groups = client.list_api_groups().await?;
    for g in groups.groups {
        let preferred = g
            .preferred_version
            .map(|p| p.group_version)
            .or_else(|| g.versions.first().map(|v| v.group_version.clone()));
        if let Some(gv) = preferred {
            group_versions.push(gv);
        }
    }
    for gv in group_versions {
        let listed = if gv.contains('/') {
            client.list_api_group_resources(&gv).await
        } else {
            client.list_core_api_resources(&gv).await
        };
        match listed {
            Ok(list) => add_resources(&mut out, &gv, list),
            Err(e) => {
                out.failed.insert(gv, e.to_string());
            }
        }
    }
    Ok(out)
}

fn add_resources(out: &mut Discovered, requested_gv: &str, list: APIResourceList) {
    let gv = if list.group_version.is_empty() {
        requested_gv.to_string()
    } else {
        list.group_version
    };
    let (group, version) = match parse_group_version(&gv) {
        Ok(gv) => gv,
        Err(e) => {
            out.unparsable.push(e);
            return;
        }
    };
    for r in list.resources {
        if r.name.contains('/') {
            continue;
        }
        let api_version = if group.is_empty() {
            version.clone()
        } else {
            format!("{group}/{version}")
        };
        out.resources.push(DiscoveredResource {
            api: ApiResource {
                group: group.clone(),
                version: version.clone(),
                api_version,
                kind: r.kind,
                plural: r.name,
            },
            namespaced: r.namespaced,
            verbs: r.verbs,
        });
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    use super::*;

    fn resource(name: &str, kind: &str, verbs: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            kind: kind.into(),
            namespaced: true,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            singular_name: String::new(),
            ..Default::default()
        }
    }

    #[test]
    fn group_versions_parse_like_apimachinery() {
        // A core "v1" has no group; three segments are upstream's parsing failure.
        assert_eq!(parse_group_version("v1"), Ok(("".into(), "v1".into())));
        assert_eq!(
            parse_group_version("apps/v1"),
            Ok(("apps".into(), "v1".into()))
        );
        assert_eq!(
            parse_group_version("a/b/c"),
            Err("unexpected GroupVersion string: a/b/c".into())
        );
    }

    #[test]
    fn subresources_are_not_resources() {
        // deployments/scale is not a collection one can list or delete.
        let mut out = Discovered::default();
        let list = APIResourceList {
            group_version: "apps/v1".into(),
            resources: vec![
                resource("deployments", "Deployment", &["list", "delete"]),
                resource("deployments/scale", "Scale", &["get"]),
            ],
        };
        add_resources(&mut out, "apps/v1", list);
        assert_eq!(out.resources.len(), 1);
        let d = &out.resources[0];
        assert_eq!(d.api.api_version, "apps/v1");
        assert!(d.supports(&["list", "delete"]));
        assert!(!d.supports(&["list", "deletecollection"]));
        assert_eq!(d.gvr_string(), "apps/v1, Resource=deployments");
    }

    #[test]
    fn failing_groups_are_reported_with_upstreams_words() {
        // The namespace controller copies this text into NamespaceDeletionDiscoveryFailure.
        let mut out = Discovered::default();
        assert_eq!(out.failure_message(), None);
        out.failed
            .insert("metrics.k8s.io/v1beta1".into(), "503 unavailable".into());
        let msg = out.failure_message().unwrap_or_default();
        assert!(msg.starts_with("Discovery failed for some groups, 1 failing:"));
        assert!(msg.contains("metrics.k8s.io/v1beta1: 503 unavailable"));
    }
}
