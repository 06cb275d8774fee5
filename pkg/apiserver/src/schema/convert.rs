//! Between JSON schema documents and the schema model: reading schemars output and CRD
//! `openAPIV3Schema`, writing the OpenAPI v2 and v3 documents.

use serde_json::{Map, Value, json};

use super::model::{ListType, MapType, Schema, SchemaType};

/// Which published document a schema is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Swagger 2.0 (`/openapi/v2`): references under `#/definitions/`.
    V2,
    /// OpenAPI 3.0 (`/openapi/v3/...`): references under `#/components/schemas/`.
    V3,
}

fn ref_name(r: &str) -> &str {
    for prefix in ["#/$defs/", "#/definitions/", "#/components/schemas/"] {
        if let Some(name) = r.strip_prefix(prefix) {
            return name;
        }
    }
    r
}

fn u64_of(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_u64)
}

/// Reads a JSON schema (schemars draft 2020-12 output, Swagger, or a CRD's
/// `openAPIV3Schema`) into the model. Unknown keywords are ignored.
pub fn from_json(v: &Value) -> Schema {
    let Some(o) = v.as_object() else {
        return Schema::default();
    };
    let mut s = Schema {
        description: o
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Schema::default()
    };
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        s.reference = Some(ref_name(r).to_string());
    }
    // Upstream's v3 documents wrap a reference with siblings as `allOf: [{$ref}]`.
    if let Some(all) = o.get("allOf").and_then(Value::as_array) {
        if all.len() == 1 && all[0].get("$ref").is_some() && s.reference.is_none() {
            s.reference = all[0]
                .get("$ref")
                .and_then(Value::as_str)
                .map(|r| ref_name(r).to_string());
        } else {
            s.all_of = all.iter().map(from_json).collect();
        }
    }
    match o.get("type") {
        Some(Value::String(t)) => s.ty = SchemaType::parse(t),
        Some(Value::Array(ts)) => {
            for t in ts.iter().filter_map(Value::as_str) {
                if t == "null" {
                    s.nullable = true;
                } else {
                    s.ty = SchemaType::parse(t);
                }
            }
        }
        _ => {}
    }
    s.format = o.get("format").and_then(Value::as_str).map(str::to_string);
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        s.properties = props
            .iter()
            .map(|(k, v)| (k.clone(), from_json(v)))
            .collect();
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(false)) => s.additional_properties_false = true,
        Some(Value::Bool(true)) => {
            s.additional_properties = Some(Box::new(Schema::default()));
        }
        Some(v @ Value::Object(_)) => s.additional_properties = Some(Box::new(from_json(v))),
        _ => {}
    }
    match o.get("items") {
        Some(v @ Value::Object(_)) => s.items = Some(Box::new(from_json(v))),
        Some(Value::Array(a)) if !a.is_empty() => s.items = Some(Box::new(from_json(&a[0]))),
        _ => {}
    }
    if let Some(req) = o.get("required").and_then(Value::as_array) {
        s.required = req
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
    }
    let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    s.int_or_string = flag("x-kubernetes-int-or-string");
    s.preserve_unknown_fields = flag("x-kubernetes-preserve-unknown-fields");
    s.embedded_resource = flag("x-kubernetes-embedded-resource");
    s.nullable |= flag("nullable");
    s.list_type = match o.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("atomic") => Some(ListType::Atomic),
        Some("set") => Some(ListType::Set),
        Some("map") => Some(ListType::Map),
        _ => None,
    };
    if let Some(keys) = o
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
    {
        s.list_map_keys = keys
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
    }
    s.map_type = match o.get("x-kubernetes-map-type").and_then(Value::as_str) {
        Some("atomic") => Some(MapType::Atomic),
        Some("granular") => Some(MapType::Granular),
        _ => None,
    };
    s.patch_strategy = o
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
        .map(str::to_string);
    s.patch_merge_key = o
        .get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str)
        .map(str::to_string);
    s.default = o.get("default").cloned();
    if let Some(e) = o.get("enum").and_then(Value::as_array) {
        s.enum_values = e.clone();
    }
    s.maximum = o.get("maximum").and_then(Value::as_f64);
    s.minimum = o.get("minimum").and_then(Value::as_f64);
    s.exclusive_maximum = flag("exclusiveMaximum");
    s.exclusive_minimum = flag("exclusiveMinimum");
    s.max_length = u64_of(o.get("maxLength"));
    s.min_length = u64_of(o.get("minLength"));
    s.pattern = o.get("pattern").and_then(Value::as_str).map(str::to_string);
    s.max_items = u64_of(o.get("maxItems"));
    s.min_items = u64_of(o.get("minItems"));
    s.unique_items = flag("uniqueItems");
    s.max_properties = u64_of(o.get("maxProperties"));
    s.min_properties = u64_of(o.get("minProperties"));
    s.multiple_of = o.get("multipleOf").and_then(Value::as_f64);
    if let Some(a) = o.get("anyOf").and_then(Value::as_array) {
        s.any_of = a.iter().map(from_json).collect();
    }
    if let Some(a) = o.get("oneOf").and_then(Value::as_array) {
        s.one_of = a.iter().map(from_json).collect();
    }
    if let Some(n) = o.get("not") {
        s.not = Some(Box::new(from_json(n)));
    }
    const MODELLED: &[&str] = &[
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-patch-strategy",
        "x-kubernetes-patch-merge-key",
    ];
    for (k, v) in o {
        if k.starts_with("x-kubernetes-") && !MODELLED.contains(&k.as_str()) {
            s.extensions.insert(k.clone(), v.clone());
        }
    }
    s
}

/// Writes a schema node for a published document.
pub fn to_json(s: &Schema, dialect: Dialect) -> Value {
    let prefix = match dialect {
        Dialect::V2 => "#/definitions/",
        Dialect::V3 => "#/components/schemas/",
    };
    let mut o = Map::new();
    if let Some(r) = &s.reference {
        let target = json!(format!("{prefix}{r}"));
        let has_siblings = s.description.is_some() || s.default.is_some();
        if dialect == Dialect::V3 && has_siblings {
            // OpenAPI 3.0 ignores siblings of $ref, so upstream wraps it in allOf.
            o.insert("allOf".into(), json!([{ "$ref": target }]));
        } else {
            o.insert("$ref".into(), target);
        }
        if let Some(d) = &s.description {
            o.insert("description".into(), json!(d));
        }
        if let Some(d) = &s.default {
            o.insert("default".into(), d.clone());
        }
        return Value::Object(o);
    }
    if let Some(d) = &s.description {
        o.insert("description".into(), json!(d));
    }
    if let Some(t) = s.ty {
        o.insert("type".into(), json!(t.as_str()));
    }
    if let Some(f) = &s.format {
        o.insert("format".into(), json!(f));
    }
    if !s.properties.is_empty() {
        let props: Map<String, Value> = s
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v, dialect)))
            .collect();
        o.insert("properties".into(), Value::Object(props));
    }
    if let Some(ap) = &s.additional_properties {
        o.insert("additionalProperties".into(), to_json(ap, dialect));
    } else if s.additional_properties_false {
        o.insert("additionalProperties".into(), json!(false));
    }
    if let Some(items) = &s.items {
        o.insert("items".into(), to_json(items, dialect));
    }
    if !s.required.is_empty() {
        o.insert("required".into(), json!(s.required));
    }
    if s.nullable && dialect == Dialect::V3 {
        o.insert("nullable".into(), json!(true));
    }
    if let Some(d) = &s.default {
        o.insert("default".into(), d.clone());
    }
    if !s.enum_values.is_empty() {
        o.insert("enum".into(), json!(s.enum_values));
    }
    let mut num = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            let n = if v.fract() == 0.0 && v.abs() < 9.0e15 {
                json!(v as i64)
            } else {
                json!(v)
            };
            o.insert(k.into(), n);
        }
    };
    num("maximum", s.maximum);
    num("minimum", s.minimum);
    num("multipleOf", s.multiple_of);
    if s.exclusive_maximum {
        o.insert("exclusiveMaximum".into(), json!(true));
    }
    if s.exclusive_minimum {
        o.insert("exclusiveMinimum".into(), json!(true));
    }
    for (k, v) in [
        ("maxLength", s.max_length),
        ("minLength", s.min_length),
        ("maxItems", s.max_items),
        ("minItems", s.min_items),
        ("maxProperties", s.max_properties),
        ("minProperties", s.min_properties),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    if let Some(p) = &s.pattern {
        o.insert("pattern".into(), json!(p));
    }
    if s.unique_items {
        o.insert("uniqueItems".into(), json!(true));
    }
    for (k, list) in [
        ("allOf", &s.all_of),
        ("anyOf", &s.any_of),
        ("oneOf", &s.one_of),
    ] {
        if !list.is_empty() {
            o.insert(
                k.into(),
                Value::Array(list.iter().map(|x| to_json(x, dialect)).collect()),
            );
        }
    }
    if let Some(n) = &s.not {
        o.insert("not".into(), to_json(n, dialect));
    }
    if s.int_or_string {
        o.insert("x-kubernetes-int-or-string".into(), json!(true));
    }
    if s.preserve_unknown_fields {
        o.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
    }
    if s.embedded_resource {
        o.insert("x-kubernetes-embedded-resource".into(), json!(true));
    }
    if let Some(lt) = s.list_type {
        let t = match lt {
            ListType::Atomic => "atomic",
            ListType::Set => "set",
            ListType::Map => "map",
        };
        o.insert("x-kubernetes-list-type".into(), json!(t));
    }
    if !s.list_map_keys.is_empty() {
        o.insert("x-kubernetes-list-map-keys".into(), json!(s.list_map_keys));
    }
    if let Some(mt) = s.map_type {
        let t = match mt {
            MapType::Atomic => "atomic",
            MapType::Granular => "granular",
        };
        o.insert("x-kubernetes-map-type".into(), json!(t));
    }
    if let Some(p) = &s.patch_merge_key {
        o.insert("x-kubernetes-patch-merge-key".into(), json!(p));
    }
    if let Some(p) = &s.patch_strategy {
        o.insert("x-kubernetes-patch-strategy".into(), json!(p));
    }
    for (k, v) in &s.extensions {
        o.insert(k.clone(), v.clone());
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_refs_types_and_extensions() {
        let s = from_json(&json!({
            "type": "object",
            "properties": {
                "spec": {"$ref": "#/$defs/io.k8s.api.apps.v1.DeploymentSpec", "description": "d"},
                "ports": {"type": "array", "items": {"type": "integer", "format": "int32"},
                          "x-kubernetes-list-type": "set"},
                "any": {"x-kubernetes-preserve-unknown-fields": true},
            },
            "required": ["spec"],
        }));
        assert_eq!(s.ty, Some(SchemaType::Object));
        assert_eq!(
            s.properties["spec"].reference.as_deref(),
            Some("io.k8s.api.apps.v1.DeploymentSpec")
        );
        assert_eq!(s.properties["ports"].list_type, Some(ListType::Set));
        assert!(s.properties["any"].preserve_unknown_fields);
        assert_eq!(s.required, vec!["spec"]);
    }

    #[test]
    fn v3_wraps_described_refs_in_all_of_and_round_trips() {
        // kubectl explain reads descriptions of referenced fields from the allOf wrapper.
        let s = Schema {
            reference: Some("X".into()),
            description: Some("the x".into()),
            ..Schema::default()
        };
        let v = to_json(&s, Dialect::V3);
        assert_eq!(
            v,
            json!({"allOf": [{"$ref": "#/components/schemas/X"}], "description": "the x"})
        );
        assert_eq!(from_json(&v).reference.as_deref(), Some("X"));
        let v2 = to_json(&s, Dialect::V2);
        assert_eq!(
            v2,
            json!({"$ref": "#/definitions/X", "description": "the x"})
        );
    }
}
