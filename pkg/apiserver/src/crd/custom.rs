//! Custom resources: what one CRD version becomes in the generic registry (a
//! [`Resource`] with a [`CustomResourceStrategy`] and a schema definition).

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::structural::{self, Patterns};
use crate::registry::generic::{DecodeFailure, GenericStore};
use crate::registry::strategy::SelectorForm;
use crate::registry::table::{CustomColumn, TablePrinter};
use crate::registry::{
    ALL_VERBS, Conversion, Resource, ResourceInfo, ScaleSpec, Strategy, Subresource,
};
use crate::schema::convert::from_json;
use crate::schema::decode::{self, Decoded};
use crate::schema::model::{Definitions, Schema, SchemaType};
use crate::{meta, schema};

/// Definition name of ObjectMeta, which every custom kind's `metadata` refers to.
use crate::schema::builtin::names::OBJECT_META;

/// Top-level fields that are not part of the CRD's schema proper.
const TYPE_AND_META: &[&str] = &["apiVersion", "kind", "metadata"];

/// Behaviour of one custom resource version.
pub struct CustomResourceStrategy {
    /// The version's `openAPIV3Schema` (without apiVersion/kind/metadata).
    schema: Schema,
    patterns: Patterns,
    columns: Vec<CustomColumn>,
    /// `selectableFields`: (field label, JSONPath).
    selectable: Vec<(&'static str, String)>,
    scale: Option<ScaleSpec>,
    /// The version's `x-kubernetes-validations` rules.
    rules: super::rules::Rules,
}

/// Field labels are `&'static str` in the strategy interface; custom ones are interned
/// once per distinct name, so CRD churn cannot grow memory without bound.
fn intern(label: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock();
    if let Some(s) = names.get(label) {
        return s;
    }
    let leaked: &'static str = Box::leak(label.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// A version's `openAPIV3Schema`; without one, an object that keeps every field.
fn version_schema(version: &Value) -> Schema {
    version
        .pointer("/schema/openAPIV3Schema")
        .map(from_json)
        .unwrap_or_else(|| Schema {
            ty: Some(SchemaType::Object),
            preserve_unknown_fields: true,
            ..Schema::default()
        })
}

/// `.spec.replicas` → `["spec", "replicas"]`.
fn json_path_segments(path: &str) -> Vec<String> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl CustomResourceStrategy {
    fn from_version(version: &Value) -> Self {
        let schema = version_schema(version);
        let columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| {
                        let s =
                            |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                        CustomColumn {
                            name: s("name"),
                            ty: s("type"),
                            format: s("format"),
                            description: s("description"),
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                            json_path: s("jsonPath"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let selectable = version
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .map(|p| (intern(p.trim_start_matches('.')), p.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let scale = version
            .pointer("/subresources/scale")
            .filter(|s| s.is_object())
            .map(|s| {
                let path = |k: &str| s.get(k).and_then(Value::as_str).map(json_path_segments);
                ScaleSpec {
                    spec_replicas: path("specReplicasPath").unwrap_or_default(),
                    status_replicas: path("statusReplicasPath").unwrap_or_default(),
                    selector: path("labelSelectorPath"),
                    selector_form: SelectorForm::String,
                    default_replicas: 0,
                }
            });
        Self {
            schema,
            patterns: Patterns::default(),
            columns,
            selectable,
            scale,
            rules: super::rules::Rules::compile(version.pointer("/schema/openAPIV3Schema")),
        }
    }
}

impl Strategy for CustomResourceStrategy {
    fn decode(
        &self,
        obj: &mut Value,
        _schema: &Schema,
        defs: &Definitions,
    ) -> Result<Decoded, DecodeFailure> {
        let Some(map) = obj.as_object_mut() else {
            return Ok(Decoded::default());
        };
        let mut unknown = Vec::new();
        // metadata decodes like every other kind's: strictly, as an ObjectMeta.
        if let Some(m) = map.get_mut("metadata") {
            let decoded = decode::decode(m, &Schema::reference(OBJECT_META), defs)?;
            unknown.extend(
                decoded
                    .unknown_fields
                    .into_iter()
                    .map(|f| format!("metadata.{f}")),
            );
        }
        let mut saved = Vec::new();
        for k in TYPE_AND_META {
            if let Some(v) = map.shift_remove(*k) {
                saved.push((k.to_string(), v));
            }
        }
        let mut body = Value::Object(std::mem::take(map));
        structural::prune(&mut body, &self.schema, "", &mut unknown);
        structural::prune_non_nullable_nulls(&mut body, &self.schema);
        structural::apply_defaults(&mut body, &self.schema);
        let Value::Object(rest) = body else {
            return Ok(Decoded::default());
        };
        for (k, v) in saved {
            map.insert(k, v);
        }
        map.extend(rest);
        // The whole object, as upstream validates it: a root that requires `metadata`
        // (cert-manager's Order, Argo CD's kinds) finds it.
        let invalid = structural::validate(obj, &self.schema, "", &self.patterns);
        Ok(Decoded {
            unknown_fields: unknown,
            invalid,
        })
    }

    fn default_on_read(&self, obj: &mut Value) {
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        let saved: Vec<(String, Value)> = TYPE_AND_META
            .iter()
            .filter_map(|k| map.shift_remove(*k).map(|v| (k.to_string(), v)))
            .collect();
        let mut body = Value::Object(std::mem::take(map));
        structural::apply_defaults(&mut body, &self.schema);
        if let Value::Object(rest) = body {
            map.extend(saved);
            map.extend(rest);
        }
    }

    fn validate(&self, obj: &Value) -> k1s_apimachinery::ErrorList {
        self.rules.validate(obj, None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> k1s_apimachinery::ErrorList {
        self.rules.validate(new, Some(old))
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> k1s_apimachinery::ErrorList {
        self.rules.validate(new, Some(old))
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn field_labels(&self, obj: &Value) -> Vec<(&'static str, String)> {
        self.selectable
            .iter()
            .map(|(label, path)| {
                let value = crate::registry::table::jsonpath(obj, path)
                    .into_iter()
                    .next()
                    .map(|v| match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                (*label, value)
            })
            .collect()
    }

    fn scale(&self) -> Option<ScaleSpec> {
        self.scale.clone()
    }

    fn table(&self, _group: &str, _kind: &str) -> TablePrinter {
        TablePrinter::Custom(self.columns.clone())
    }
}

/// Upstream's definition name of a custom kind: the group reversed, then version and
/// kind (`com.example.stable.v1.CronTab`).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The published schema of one version: the CRD's schema plus apiVersion, kind and
/// metadata, tagged with its group-version-kind.
fn published_schema(version: &Value, group: &str, kind: &str) -> Schema {
    let name = version.get("name").and_then(Value::as_str).unwrap_or("");
    let mut root = version_schema(version);
    let string = |d: &str| Schema {
        ty: Some(SchemaType::String),
        description: Some(d.to_string()),
        ..Schema::default()
    };
    let mut props = indexmap::IndexMap::new();
    props.insert("apiVersion".to_string(), string(API_VERSION_DOC));
    props.insert("kind".to_string(), string(KIND_DOC));
    props.insert(
        "metadata".to_string(),
        Schema {
            description: Some(METADATA_DOC.into()),
            ..Schema::reference(OBJECT_META)
        },
    );
    for (k, v) in std::mem::take(&mut root.properties) {
        if !TYPE_AND_META.contains(&k.as_str()) {
            props.insert(k, v);
        }
    }
    root.properties = props;
    root.ty = Some(SchemaType::Object);
    root.extensions.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([schema::builtin::gvk(group, name, kind)]),
    );
    root
}

/// A custom kind's published schema as upstream's `/openapi/v2` carries it, for
/// kubectl's client-side validation, which knows neither junctors nor nullable nor
/// "keep unknown fields": a root that keeps unknown fields is a bare `type: object`;
/// below it, such a schema (and a nullable one) loses its properties and items, an
/// array left without items its type, and a nullable field is no longer required.
pub fn openapi_v2_form(published: &Schema) -> Schema {
    if published.preserve_unknown_fields {
        let mut bare = Schema {
            ty: Some(SchemaType::Object),
            ..Schema::default()
        };
        if let Some(gvk) = published.extensions.get("x-kubernetes-group-version-kind") {
            bare.extensions
                .insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        }
        return bare;
    }
    let mut s = published.clone();
    v2_node(&mut s);
    s
}

fn v2_node(s: &mut Schema) {
    s.all_of.clear();
    s.one_of.clear();
    s.any_of.clear();
    s.not = None;
    if s.nullable {
        s.ty = None;
        s.nullable = false;
        s.items = None;
        s.properties.clear();
    }
    if s.preserve_unknown_fields {
        s.items = None;
        s.properties.clear();
    }
    if s.items.is_none() && s.ty == Some(SchemaType::Array) {
        s.ty = None;
    }
    let nullable: Vec<String> = s
        .properties
        .iter()
        .filter(|(_, p)| p.nullable)
        .map(|(k, _)| k.clone())
        .collect();
    s.required.retain(|r| !nullable.contains(r));
    if s.additional_properties
        .as_deref()
        .is_some_and(|a| a.nullable)
    {
        s.required.clear();
    }
    s.properties.values_mut().for_each(v2_node);
    if let Some(items) = s.items.as_deref_mut() {
        v2_node(items);
    }
    if let Some(values) = s.additional_properties.as_deref_mut() {
        v2_node(values);
    }
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Between versions of one custom resource only `apiVersion` changes (conversion
/// strategy `None`).
struct ApiVersionConversion {
    served: String,
    stored: String,
}

impl Conversion for ApiVersionConversion {
    fn stored_form(
        &self,
        _: &GenericStore,
        mut obj: Value,
    ) -> Result<Value, k1s_apimachinery::Status> {
        obj["apiVersion"] = json!(self.stored);
        Ok(obj)
    }

    fn served_form(
        &self,
        _: &GenericStore,
        mut obj: Value,
    ) -> Result<Value, k1s_apimachinery::Status> {
        obj["apiVersion"] = json!(self.served);
        Ok(obj)
    }
}

/// The resources (one per served version) and schema definitions a CRD defines, from its
/// spec. `names` are the accepted names.
pub fn resources_for(crd: &Value, definitions: &mut Definitions) -> Vec<Resource> {
    let spec = crd.get("spec").cloned().unwrap_or(json!({}));
    let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
    let names = crd
        .pointer("/status/acceptedNames")
        .filter(|n| {
            n.get("plural")
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty())
        })
        .or_else(|| spec.get("names"))
        .cloned()
        .unwrap_or(json!({}));
    let name_of = |k: &str| {
        names
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let list_of = |k: &str| -> Vec<String> {
        names
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let kind = name_of("kind");
    let plural = name_of("plural");
    let singular = match name_of("singular") {
        s if s.is_empty() => kind.to_lowercase(),
        s => s,
    };
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(stored) = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
    else {
        return Vec::new();
    };
    let stored_api_version = format!("{group}/{stored}");
    let mut out = Vec::new();
    for v in &versions {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let version = v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let definition = definition_name(group, &version, &kind);
        definitions.insert(definition.clone(), published_schema(v, group, &kind));
        let mut subresources = Vec::new();
        if v.pointer("/subresources/status")
            .is_some_and(Value::is_object)
        {
            subresources.push(Subresource::Status);
        }
        if v.pointer("/subresources/scale")
            .is_some_and(Value::is_object)
        {
            subresources.push(Subresource::Scale);
        }
        let storage_version = version == stored;
        let served_api_version = format!("{group}/{version}");
        // A webhook converts for every version, the storage one included (objects stored
        // before the storage version changed are in another version); otherwise only
        // apiVersion changes.
        let conversion: Option<Arc<dyn Conversion>> =
            match super::conversion::WebhookConversion::for_crd(
                &spec,
                &served_api_version,
                &stored_api_version,
            ) {
                Some(webhook) => Some(Arc::new(webhook)),
                None => (!storage_version).then(|| {
                    Arc::new(ApiVersionConversion {
                        served: served_api_version.clone(),
                        stored: stored_api_version.clone(),
                    }) as Arc<dyn Conversion>
                }),
            };
        out.push(Resource {
            info: ResourceInfo {
                group: group.to_string(),
                version,
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: list_of("shortNames"),
                categories: list_of("categories"),
                verbs: ALL_VERBS.to_vec(),
                subresources,
                definition,
                key_prefix: format!("/registry/{group}/{plural}"),
                storage_version,
                custom: true,
                returns_deleted_object: false,
            },
            strategy: Arc::new(CustomResourceStrategy::from_version(v)),
            conversion,
        });
    }
    out
}

/// Whether a CRD object is one the registry should serve: established names and not
/// finished deleting.
pub fn is_servable(crd: &Value) -> bool {
    meta::get_path(crd, &["status", "acceptedNames", "plural"])
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com",
                "scope": "Namespaced",
                "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"replicas": {"type": "integer", "default": 1}}}}}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "selectableFields": [{"jsonPath": ".spec.replicas"}]},
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                    {"name": "v0", "served": false, "storage": false},
                ],
            }
        })
    }

    #[test]
    fn served_versions_become_resources() {
        let mut defs = Definitions::new();
        let rs = resources_for(&crd(), &mut defs);
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].info.definition, "com.example.stable.v1.CronTab");
        assert!(rs[0].info.storage_version && !rs[1].info.storage_version);
        assert_eq!(
            rs[0].info.key_prefix,
            "/registry/stable.example.com/crontabs"
        );
        assert_eq!(
            rs[0].info.subresources,
            vec![Subresource::Status, Subresource::Scale]
        );
        assert!(rs[1].conversion.is_some());
        let def = defs.get("com.example.stable.v1.CronTab").unwrap();
        assert!(def.properties.contains_key("metadata"));
        assert!(
            def.extensions
                .contains_key("x-kubernetes-group-version-kind")
        );
        let spec = rs[0].strategy.scale().unwrap();
        assert_eq!(spec.spec_replicas, vec!["spec", "replicas"]);
        assert_eq!(
            rs[0]
                .strategy
                .field_labels(&json!({"spec": {"replicas": 3}})),
            vec![("spec.replicas", "3".to_string())]
        );
    }

    #[test]
    fn decode_prunes_defaults_and_validates() {
        let mut defs = Definitions::new();
        let rs = resources_for(&crd(), &mut defs);
        let mut obj = json!({
            "apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": "a"},
            "spec": {"foo": 1}, "bar": true,
        });
        let d = rs[0]
            .strategy
            .decode(&mut obj, &Schema::default(), &defs)
            .ok()
            .unwrap();
        assert_eq!(d.unknown_fields, vec!["spec.foo", "bar"]);
        assert_eq!(obj["spec"], json!({"replicas": 1}));
        assert_eq!(obj["kind"], json!("CronTab"));
        let mut bad = json!({"metadata": {"name": "a"}, "spec": {"replicas": "x"}});
        let d = rs[0]
            .strategy
            .decode(&mut bad, &Schema::default(), &defs)
            .ok()
            .unwrap();
        assert_eq!(d.invalid.len(), 1);
    }

    #[test]
    fn objects_read_from_storage_get_the_schema_defaults() {
        let mut defs = Definitions::new();
        let rs = resources_for(&crd(), &mut defs);
        // Stored before the default existed; metadata and unknown fields stay as stored.
        let mut obj = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {}});
        rs[0].strategy.default_on_read(&mut obj);
        assert_eq!(obj["spec"], json!({"replicas": 1}));
        assert_eq!(obj["metadata"], json!({"name": "a", "labels": {"x": "y"}}));
        assert_eq!(obj["kind"], "CronTab");
        let mut set = json!({"metadata": {"name": "b"}, "spec": {"replicas": 3}});
        rs[0].strategy.default_on_read(&mut set);
        assert_eq!(set["spec"]["replicas"], 3);
    }
}
