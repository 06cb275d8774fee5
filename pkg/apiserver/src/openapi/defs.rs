//! Definitions the documents refer to besides the served kinds' own schemas: each kind's
//! `<Kind>List`, the `autoscaling/v1` Scale of `/scale`, the
//! `policy/v1` Eviction of `pods/eviction`, and the `meta/v1` types of
//! requests and answers (Status, DeleteOptions, WatchEvent, Patch, the discovery
//! documents, the version).

use std::sync::OnceLock;

use serde_json::{Value, json};

use super::routes::meta;
use crate::registry::{Resource, Snapshot};
use crate::schema::builtin::{BuiltinSchemas, gvk};
use crate::schema::convert::from_json;
use crate::schema::model::{Definitions, Schema};

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const GVK: &str = "x-kubernetes-group-version-kind";

/// The request and answer types, generated once from k8s-openapi like the kinds are (the
/// delete handler decodes DeleteOptions bodies against them).
pub(crate) fn extras() -> &'static Definitions {
    static EXTRAS: OnceLock<Definitions> = OnceLock::new();
    EXTRAS.get_or_init(|| {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as m;
        let mut b = BuiltinSchemas::new();
        b.add::<k8s_openapi::api::autoscaling::v1::Scale>(gvk("autoscaling", "v1", "Scale"));
        b.add::<k8s_openapi::api::authentication::v1::TokenRequest>(gvk(
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
        ));
        b.add::<k8s_openapi::api::policy::v1::Eviction>(gvk("policy", "v1", "Eviction"));
        b.add::<m::Status>(gvk("", "v1", "Status"));
        b.add::<m::DeleteOptions>(gvk("", "v1", "DeleteOptions"));
        b.add::<m::WatchEvent<Value>>(gvk("", "v1", "WatchEvent"));
        b.add::<m::APIResourceList>(gvk("", "v1", "APIResourceList"));
        b.add::<m::APIGroup>(gvk("", "v1", "APIGroup"));
        b.add::<m::APIGroupList>(gvk("", "v1", "APIGroupList"));
        b.add::<m::APIVersions>(gvk("", "v1", "APIVersions"));
        b.add::<k8s_openapi::apimachinery::pkg::version::Info>(gvk("", "", "Info"));
        let mut defs = b.build();
        // The version is no kind: upstream gives it no group-version-kind.
        if let Some(info) = defs.get(meta::VERSION_INFO) {
            let mut info = (**info).clone();
            info.extensions.remove(GVK);
            defs.insert(meta::VERSION_INFO, info);
        }
        // Any JSON document of a patch type; k8s-openapi has no schema of its own for it.
        defs.insert(
            meta::PATCH,
            from_json(&json!({
                "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
                "type": "object",
            })),
        );
        defs
    })
}

/// `<Kind>List` of a listable resource, named like upstream's (`io.k8s.api.apps.v1.
/// DeploymentList`, `com.example.stable.v1.CronTabList`).
pub(crate) fn list_name(r: &Resource) -> String {
    format!("{}List", r.info.definition)
}

fn list_definition(r: &Resource) -> Schema {
    let i = &r.info;
    from_json(&json!({
        "description": format!("{}List is a list of {}", i.kind, i.kind),
        "type": "object",
        "properties": {
            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://kubernetes.io/docs/reference/using-api/api-concepts/#collections", i.plural),
                "type": "array",
                "items": {"$ref": format!("#/definitions/{}", i.definition)},
            },
            "kind": {"description": KIND_DOC, "type": "string"},
            "metadata": {
                "$ref": format!("#/definitions/{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
        GVK: [{"group": i.group, "kind": format!("{}List", i.kind), "version": i.version}],
    }))
}

/// Every definition a document of `snap` may refer to: the served kinds' (built-in and
/// custom), their lists, and the request and answer types. DeleteOptions and WatchEvent
/// name every served group version, as upstream's do.
pub(crate) fn all_definitions(snap: &Snapshot) -> Definitions {
    let mut defs = (*snap.definitions).clone();
    for (name, schema) in extras().iter() {
        if defs.get(name).is_none() {
            defs.insert(name.clone(), (**schema).clone());
        }
    }
    for name in [meta::DELETE_OPTIONS, meta::WATCH_EVENT] {
        let Some(def) = defs.get(name) else { continue };
        let kind = name.rsplit('.').next().unwrap_or(name);
        let gvks: Vec<Value> = snap
            .groups()
            .iter()
            .flat_map(|g| {
                g.versions
                    .iter()
                    .map(|v| gvk(&g.group, v, kind))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut def = (**def).clone();
        def.extensions.insert(GVK.into(), Value::Array(gvks));
        defs.insert(name, def);
    }
    for r in snap.all().filter(|r| r.info.supports("list")) {
        let name = list_name(r);
        if defs.get(&name).is_none() {
            defs.insert(name, list_definition(r));
        }
    }
    defs
}
