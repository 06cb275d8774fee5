//! Schemas of the built-in kinds: k8s-openapi's schemars output, plus the vendor
//! extensions from [`super::facts`], plus the few places where schemars' view of a type
//! differs from the published Kubernetes API.

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::convert::from_json;
use super::facts::{FIELD_FACTS, OMIT_ZERO, TYPE_FACTS};
use super::model::{Definitions, ListType, MapType, Schema, SchemaType};

/// Definition names of types that upstream publishes differently from schemars.
pub(crate) mod names {
    /// `resource.Quantity`: a string in the API, though JSON numbers are accepted.
    pub const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
    /// `intstr.IntOrString`.
    pub const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
    /// `apiextensions/v1.JSON`: any JSON value.
    pub const JSON: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON";
    /// `runtime.RawExtension`: any embedded object.
    pub const RAW_EXTENSION: &str = "io.k8s.apimachinery.pkg.runtime.RawExtension";
    /// `meta/v1.FieldsV1`.
    pub const FIELDS_V1: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1";
    /// `meta/v1.Time`.
    pub const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
    /// `meta/v1.MicroTime`.
    pub const MICRO_TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
    /// `meta/v1.ObjectMeta`.
    pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
}

/// Collects the schemas of registered kinds into one set of definitions.
pub struct BuiltinSchemas {
    generator: SchemaGenerator,
    kinds: Vec<(String, Value)>,
}

impl Default for BuiltinSchemas {
    fn default() -> Self {
        Self::new()
    }
}

impl BuiltinSchemas {
    /// An empty collection.
    pub fn new() -> Self {
        Self {
            generator: SchemaSettings::draft2020_12().into_generator(),
            kinds: Vec::new(),
        }
    }

    /// Adds a kind's schema (and everything it refers to); returns its definition name.
    pub fn add<T: schemars::JsonSchema>(&mut self, gvk: Value) -> String {
        let schema = self.generator.subschema_for::<T>();
        let name = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
            .map(str::to_string)
            .unwrap_or_else(|| T::schema_name().into_owned());
        self.kinds.push((name.clone(), gvk));
        name
    }

    /// Finishes: converts, applies the extension facts and upstream's differences.
    pub fn build(mut self) -> Definitions {
        let mut defs = Definitions::new();
        let raw = self.generator.take_definitions(true);
        for (name, value) in &raw {
            defs.insert(name.clone(), fixup(name, from_json(value)));
        }
        // Kinds: metadata is optional on the wire, and each kind names its GVKs.
        let mut gvks: Vec<(String, Vec<Value>)> = Vec::new();
        for (name, gvk) in self.kinds {
            match gvks.iter_mut().find(|(n, _)| *n == name) {
                Some((_, list)) => list.push(gvk),
                None => gvks.push((name, vec![gvk])),
            }
        }
        for (name, list) in gvks {
            if let Some(def) = defs.get(&name) {
                let mut def = (**def).clone();
                def.required.retain(|r| r != "metadata");
                def.extensions
                    .insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
                defs.insert(name, def);
            }
        }
        apply_facts(&mut defs);
        defs
    }
}

/// Where schemars and the published API disagree.
fn fixup(name: &str, mut s: Schema) -> Schema {
    match name {
        names::QUANTITY => {
            s.ty = Some(SchemaType::String);
            s.int_or_string = false;
        }
        names::INT_OR_STRING => {
            s.ty = Some(SchemaType::String);
            s.format = Some("int-or-string".into());
            s.int_or_string = true;
        }
        names::JSON | names::RAW_EXTENSION => {
            s.ty = None;
            s.preserve_unknown_fields = true;
        }
        names::FIELDS_V1 => {
            s.ty = Some(SchemaType::Object);
            s.preserve_unknown_fields = true;
        }
        _ => {}
    }
    // The JSONSchemaPropsOr* unions are any-typed for validation purposes.
    if !s.one_of.is_empty() && s.ty.is_none() {
        s.one_of.clear();
        s.preserve_unknown_fields = true;
    }
    s
}

fn parse_list_type(s: &str) -> Option<ListType> {
    match s {
        "atomic" => Some(ListType::Atomic),
        "set" => Some(ListType::Set),
        "map" => Some(ListType::Map),
        _ => None,
    }
}

fn parse_map_type(s: &str) -> Option<MapType> {
    match s {
        "atomic" => Some(MapType::Atomic),
        "granular" => Some(MapType::Granular),
        _ => None,
    }
}

fn apply_facts(defs: &mut Definitions) {
    for fact in FIELD_FACTS {
        let Some(def) = defs.get(fact.definition) else {
            continue;
        };
        let mut def = (**def).clone();
        let Some(field) = def.properties.get_mut(fact.field) else {
            continue;
        };
        field.patch_strategy = fact.patch_strategy.map(str::to_string);
        field.patch_merge_key = fact.patch_merge_key.map(str::to_string);
        field.list_type = fact.list_type.and_then(parse_list_type);
        field.list_map_keys = fact.list_map_keys.iter().map(|k| k.to_string()).collect();
        field.map_type = fact.map_type.and_then(parse_map_type);
        defs.insert(fact.definition, def);
    }
    // k8s-openapi makes a field upstream defaults (`+default=""`) a plain value and lists
    // it as required; upstream requires no `omitempty` field, and the server leaves such a
    // field out when it is zero, so a required one would make its own answers invalid.
    for &(definition, field) in OMIT_ZERO {
        let Some(def) = defs.get(definition) else {
            continue;
        };
        if !def.required.iter().any(|r| r == field) {
            continue;
        }
        let mut def = (**def).clone();
        def.required.retain(|r| r != field);
        if let Some(schema) = def.properties.get_mut(field) {
            schema.default = match schema.ty {
                Some(SchemaType::String) => Some(json!("")),
                Some(SchemaType::Integer | SchemaType::Number) => Some(json!(0)),
                Some(SchemaType::Boolean) => Some(json!(false)),
                _ => schema.default.take(),
            };
        }
        defs.insert(definition, def);
    }
    for fact in TYPE_FACTS {
        let Some(def) = defs.get(fact.definition) else {
            continue;
        };
        let mut def = (**def).clone();
        if let Some(m) = fact.map_type.and_then(parse_map_type) {
            def.map_type = Some(m);
        }
        if let Some(l) = fact.list_type.and_then(parse_list_type) {
            def.list_type = Some(l);
        }
        defs.insert(fact.definition, def);
    }
}

/// The `x-kubernetes-group-version-kind` entry of one kind.
pub fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;

    #[test]
    fn deployment_schema_has_facts_and_optional_metadata() {
        // kubectl apply's strategic merge patches need the merge keys; SSA needs list types.
        let mut b = BuiltinSchemas::new();
        let name = b.add::<Deployment>(gvk("apps", "v1", "Deployment"));
        assert_eq!(name, "io.k8s.api.apps.v1.Deployment");
        let defs = b.build();
        let dep = defs.get(&name).unwrap();
        assert!(!dep.required.contains(&"metadata".to_string()));
        assert!(
            dep.extensions
                .contains_key("x-kubernetes-group-version-kind")
        );
        let pod_spec = defs.get("io.k8s.api.core.v1.PodSpec").unwrap();
        let containers = &pod_spec.properties["containers"];
        assert_eq!(containers.patch_merge_key.as_deref(), Some("name"));
        assert_eq!(containers.list_type, Some(ListType::Map));
        let q = defs.get(names::QUANTITY).unwrap();
        assert_eq!(q.ty, Some(SchemaType::String));
    }

    #[test]
    fn defaulted_omitempty_fields_are_not_required() {
        // The server leaves `name: ""` out of `imagePullSecrets: [{}]`, as upstream does,
        // whose document gives the field a default and requires nothing.
        let mut b = BuiltinSchemas::new();
        b.add::<k8s_openapi::api::core::v1::ServiceAccount>(gvk("", "v1", "ServiceAccount"));
        b.add::<k8s_openapi::api::core::v1::Pod>(gvk("", "v1", "Pod"));
        let defs = b.build();
        let r = defs.get("io.k8s.api.core.v1.LocalObjectReference").unwrap();
        assert!(r.required.is_empty(), "{:?}", r.required);
        assert_eq!(r.properties["name"].default, Some(json!("")));
        // A field without omitempty stays required.
        let c = defs.get("io.k8s.api.core.v1.Container").unwrap();
        assert!(c.required.contains(&"name".to_string()));
    }
}
