//! What a structural schema does to a custom object: pruning of unknown fields, defaulting,
//! and validation with the messages upstream's OpenAPI validator gives
//! (`spec.replicas in body must be of type integer: "string"`).

use std::collections::HashMap;
use std::sync::Arc;

use k1s_apimachinery::{ErrorList, FieldError, Path};
use parking_lot::Mutex;
use regex::Regex;
use serde_json::{Map, Value};

use crate::schema::model::{ListType, Schema, SchemaType};

/// Fields every embedded resource keeps although its schema may not list them.
const EMBEDDED_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// Drops what the schema does not describe, recording each dropped field's path
/// (`spec.foo`, `spec.items[0].bar`) in `unknown`.
pub fn prune(value: &mut Value, schema: &Schema, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let p = join(path, &key);
                let field = schema
                    .properties
                    .get(&key)
                    .or(schema.additional_properties.as_deref());
                if let Some(field) = field {
                    if let Some(v) = map.get_mut(&key) {
                        prune(v, field, &p, unknown);
                    }
                } else if schema.preserve_unknown_fields
                    || (schema.embedded_resource && EMBEDDED_FIELDS.contains(&key.as_str()))
                {
                    // Kept as given.
                } else {
                    unknown.push(p);
                    map.shift_remove(&key);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.items.as_deref() {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item, item_schema, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Drops nulls the schema neither allows (`nullable`) nor defaults, at every level, as
/// upstream does before defaulting: clients that send `field: null` mean "unset".
pub fn prune_non_nullable_nulls(value: &mut Value, schema: &Schema) {
    let field_schema = |key: &str| {
        schema
            .properties
            .get(key)
            .or(schema.additional_properties.as_deref())
    };
    match value {
        Value::Object(map) => {
            map.retain(|key, v| {
                !(v.is_null()
                    && field_schema(key).is_some_and(|f| !f.nullable && f.default.is_none()))
            });
            for (key, v) in map.iter_mut() {
                if let Some(f) = field_schema(key) {
                    prune_non_nullable_nulls(v, f);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.items.as_deref() {
                for item in items {
                    prune_non_nullable_nulls(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Applies `default`s: absent fields with a default get it (and then their own defaults),
/// and a null where null is not allowed is replaced by the default.
pub fn apply_defaults(value: &mut Value, schema: &Schema) {
    match value {
        Value::Object(map) => {
            for (key, field) in &schema.properties {
                let missing = match map.get(key) {
                    None => true,
                    Some(Value::Null) => !field.nullable,
                    Some(_) => false,
                };
                if missing && let Some(d) = &field.default {
                    map.insert(key.clone(), d.clone());
                }
            }
            for (key, v) in map.iter_mut() {
                if let Some(field) = schema.properties.get(key) {
                    apply_defaults(v, field);
                } else if let Some(values) = schema.additional_properties.as_deref() {
                    apply_defaults(v, values);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.items.as_deref() {
                for item in items {
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Compiled `pattern`s, shared by every validation of one custom resource.
#[derive(Default, Clone)]
pub struct Patterns {
    compiled: Arc<Mutex<HashMap<String, Option<Regex>>>>,
}

impl Patterns {
    fn matches(&self, pattern: &str, s: &str) -> bool {
        let mut cache = self.compiled.lock();
        let re = cache
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).ok());
        // A pattern that does not compile was refused when the CRD was written.
        re.as_ref().is_none_or(|re| re.is_match(s))
    }
}

/// The name of a JSON value's type as upstream's validator says it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(v: &Value, ty: SchemaType) -> bool {
    match (ty, v) {
        (SchemaType::Object, Value::Object(_))
        | (SchemaType::Array, Value::Array(_))
        | (SchemaType::String, Value::String(_))
        | (SchemaType::Boolean, Value::Bool(_))
        | (SchemaType::Number, Value::Number(_)) => true,
        (SchemaType::Integer, Value::Number(_)) => type_name(v) == "integer",
        _ => false,
    }
}

fn format_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Validates `value` against `schema`, appending upstream-style field errors.
pub fn validate(value: &Value, schema: &Schema, path: &str, patterns: &Patterns) -> ErrorList {
    let mut errs = ErrorList::new();
    Validator { patterns }.node(value, schema, path, &mut errs);
    errs
}

struct Validator<'a> {
    patterns: &'a Patterns,
}

impl Validator<'_> {
    fn node(&self, v: &Value, s: &Schema, path: &str, errs: &mut ErrorList) {
        let fp = Path::new(path);
        let name = if path.is_empty() { "body" } else { path };
        if v.is_null() {
            if !s.nullable && (s.ty.is_some() || s.int_or_string) {
                let want = if s.int_or_string {
                    "integer,string".to_string()
                } else {
                    s.ty.map(|t| t.as_str().to_string()).unwrap_or_default()
                };
                errs.push(FieldError::type_invalid(
                    &fp,
                    "null",
                    format!("{name} in body must be of type {want}: \"null\""),
                ));
            }
            return;
        }
        if s.int_or_string {
            if !matches!(v, Value::String(_)) && type_name(v) != "integer" {
                errs.push(FieldError::type_invalid(
                    &fp,
                    type_name(v),
                    format!(
                        "{name} in body must be of type integer,string: \"{}\"",
                        type_name(v)
                    ),
                ));
                return;
            }
        } else if let Some(ty) = s.ty
            && !type_matches(v, ty)
        {
            errs.push(FieldError::type_invalid(
                &fp,
                type_name(v),
                format!(
                    "{name} in body must be of type {}: \"{}\"",
                    ty.as_str(),
                    type_name(v)
                ),
            ));
            return;
        }
        if !s.enum_values.is_empty() && !s.enum_values.contains(v) {
            let values: Vec<String> = s
                .enum_values
                .iter()
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            errs.push(FieldError::not_supported(&fp, v.clone(), &refs));
        }
        match v {
            Value::String(text) => self.string(text, s, &fp, name, errs),
            Value::Number(n) => {
                if let Some(f) = n.as_f64() {
                    number(f, v, s, &fp, name, errs);
                }
            }
            Value::Array(items) => self.array(items, v, s, &fp, path, errs),
            Value::Object(map) => self.object(map, v, s, &fp, path, errs),
            _ => {}
        }
        for sub in &s.all_of {
            self.node(v, sub, path, errs);
        }
        if !s.any_of.is_empty() && !s.any_of.iter().any(|sub| self.passes(v, sub)) {
            errs.push(FieldError::invalid(
                &fp,
                v.clone(),
                format!("{name} in body must validate at least one schema (anyOf)"),
            ));
        }
        if !s.one_of.is_empty() && s.one_of.iter().filter(|sub| self.passes(v, sub)).count() != 1 {
            errs.push(FieldError::invalid(
                &fp,
                v.clone(),
                format!("{name} in body must validate one and only one schema (oneOf)"),
            ));
        }
        if let Some(not) = s.not.as_deref()
            && self.passes(v, not)
        {
            errs.push(FieldError::invalid(
                &fp,
                v.clone(),
                format!("{name} in body must not validate the schema (not)"),
            ));
        }
    }

    fn passes(&self, v: &Value, s: &Schema) -> bool {
        let mut errs = ErrorList::new();
        self.node(v, s, "", &mut errs);
        errs.is_empty()
    }

    fn string(&self, text: &str, s: &Schema, fp: &Path, name: &str, errs: &mut ErrorList) {
        let len = text.chars().count() as u64;
        if let Some(max) = s.max_length
            && len > max
        {
            errs.push(FieldError::too_long(
                fp,
                text,
                i64::try_from(max).unwrap_or(i64::MAX),
            ));
        }
        if let Some(min) = s.min_length
            && len < min
        {
            errs.push(FieldError::invalid(
                fp,
                text,
                format!("{name} in body should be at least {min} chars long"),
            ));
        }
        if let Some(p) = &s.pattern
            && !self.patterns.matches(p, text)
        {
            errs.push(FieldError::invalid(
                fp,
                text,
                format!("{name} in body should match '{p}'"),
            ));
        }
    }

    fn array(
        &self,
        items: &[Value],
        v: &Value,
        s: &Schema,
        fp: &Path,
        path: &str,
        errs: &mut ErrorList,
    ) {
        let name = if path.is_empty() { "body" } else { path };
        let len = items.len() as u64;
        if let Some(max) = s.max_items
            && len > max
        {
            errs.push(FieldError::too_many(
                fp,
                i64::try_from(len).unwrap_or(i64::MAX),
                i64::try_from(max).unwrap_or(i64::MAX),
            ));
        }
        if let Some(min) = s.min_items
            && len < min
        {
            errs.push(FieldError::invalid(
                fp,
                v.clone(),
                format!("{name} in body should have at least {min} items"),
            ));
        }
        if s.unique_items && has_duplicates(items) {
            errs.push(FieldError::invalid(
                fp,
                v.clone(),
                format!("{name} in body shouldn't contain duplicates"),
            ));
        }
        match s.list_type {
            Some(ListType::Set) => {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].contains(item) {
                        errs.push(FieldError::duplicate(
                            &Path::new(&format!("{path}[{i}]")),
                            item.clone(),
                        ));
                    }
                }
            }
            Some(ListType::Map) if !s.list_map_keys.is_empty() => {
                let key_of = |item: &Value| -> Vec<Value> {
                    s.list_map_keys
                        .iter()
                        .map(|k| item.get(k).cloned().unwrap_or(Value::Null))
                        .collect()
                };
                let keys: Vec<Vec<Value>> = items.iter().map(key_of).collect();
                for i in 0..keys.len() {
                    if keys[..i].contains(&keys[i]) {
                        let shown: Map<String, Value> = s
                            .list_map_keys
                            .iter()
                            .cloned()
                            .zip(keys[i].iter().cloned())
                            .collect();
                        errs.push(FieldError::duplicate(
                            &Path::new(&format!("{path}[{i}]")),
                            Value::Object(shown),
                        ));
                    }
                }
            }
            _ => {}
        }
        if let Some(item_schema) = s.items.as_deref() {
            for (i, item) in items.iter().enumerate() {
                self.node(item, item_schema, &format!("{path}[{i}]"), errs);
            }
        }
    }

    fn object(
        &self,
        map: &Map<String, Value>,
        v: &Value,
        s: &Schema,
        fp: &Path,
        path: &str,
        errs: &mut ErrorList,
    ) {
        let name = if path.is_empty() { "body" } else { path };
        for req in &s.required {
            if !map.contains_key(req) {
                errs.push(FieldError::required(&Path::new(&join(path, req)), ""));
            }
        }
        let n = map.len() as u64;
        if let Some(max) = s.max_properties
            && n > max
        {
            errs.push(FieldError::too_many(
                fp,
                i64::try_from(n).unwrap_or(i64::MAX),
                i64::try_from(max).unwrap_or(i64::MAX),
            ));
        }
        if let Some(min) = s.min_properties
            && n < min
        {
            errs.push(FieldError::invalid(
                fp,
                v.clone(),
                format!("{name} in body should have at least {min} properties"),
            ));
        }
        for (key, item) in map {
            let p = join(path, key);
            if let Some(field) = s.properties.get(key) {
                self.node(item, field, &p, errs);
            } else if let Some(values) = s.additional_properties.as_deref() {
                self.node(item, values, &p, errs);
            }
        }
    }
}

fn number(f: f64, v: &Value, s: &Schema, fp: &Path, name: &str, errs: &mut ErrorList) {
    if let Some(max) = s.maximum {
        let bad = if s.exclusive_maximum {
            f >= max
        } else {
            f > max
        };
        if bad {
            let rel = if s.exclusive_maximum {
                "less than"
            } else {
                "less than or equal to"
            };
            errs.push(FieldError::invalid(
                fp,
                v.clone(),
                format!("{name} in body should be {rel} {}", format_number(max)),
            ));
        }
    }
    if let Some(min) = s.minimum {
        let bad = if s.exclusive_minimum {
            f <= min
        } else {
            f < min
        };
        if bad {
            let rel = if s.exclusive_minimum {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errs.push(FieldError::invalid(
                fp,
                v.clone(),
                format!("{name} in body should be {rel} {}", format_number(min)),
            ));
        }
    }
    if let Some(m) = s.multiple_of
        && m != 0.0
        && (f / m).fract().abs() > 1e-9
    {
        errs.push(FieldError::invalid(
            fp,
            v.clone(),
            format!(
                "{name} in body should be a multiple of {}",
                format_number(m)
            ),
        ));
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, item)| items[..i].contains(item))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::convert::from_json;

    fn crontab() -> Schema {
        from_json(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
                        "image": {"type": "string", "maxLength": 10},
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "port": {"x-kubernetes-int-or-string": true},
                    }
                }
            }
        }))
    }

    fn messages(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn prunes_unknown_fields_but_keeps_preserved_ones() {
        let s = crontab();
        let mut v =
            json!({"spec": {"image": "x", "foo": 1, "extra": {"any": {"thing": 1}}}, "bar": 2});
        let mut unknown = Vec::new();
        prune(&mut v, &s, "", &mut unknown);
        assert_eq!(unknown, vec!["spec.foo".to_string(), "bar".to_string()]);
        assert_eq!(
            v,
            json!({"spec": {"image": "x", "extra": {"any": {"thing": 1}}}})
        );
    }

    #[test]
    fn defaults_fill_absent_fields() {
        let s = crontab();
        let mut v = json!({"spec": {"image": "x"}});
        apply_defaults(&mut v, &s);
        assert_eq!(v["spec"]["replicas"], json!(1));
    }

    #[test]
    fn validation_messages_match_upstream() {
        let s = crontab();
        let v =
            json!({"spec": {"image": "x", "replicas": "three", "mode": "c", "cronSpec": "bad"}});
        let got = messages(&validate(&v, &s, "", &Patterns::default()));
        assert!(got.contains(&"spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"".to_string()), "{got:?}");
        assert!(
            got.contains(
                &"spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"".to_string()
            ),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| m.starts_with(
                "spec.cronSpec: Invalid value: \"bad\": spec.cronSpec in body should match '^(\\d+|"
            )),
            "{got:?}"
        );

        let v = json!({"spec": {"replicas": 0, "image": "much-too-long-image", "tags": ["a", "a"], "port": 1.5}});
        let got = messages(&validate(&v, &s, "", &Patterns::default()));
        assert!(got.contains(&"spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1".to_string()), "{got:?}");
        assert!(
            got.contains(&"spec.image: Too long: may not be more than 10 bytes".to_string()),
            "{got:?}"
        );
        assert!(
            got.contains(&"spec.tags[1]: Duplicate value: \"a\"".to_string()),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| m.starts_with("spec.port: Invalid value")),
            "{got:?}"
        );

        let v = json!({"spec": {}});
        let got = messages(&validate(&v, &s, "", &Patterns::default()));
        assert_eq!(got, vec!["spec.image: Required value".to_string()]);
    }

    #[test]
    fn valid_object_passes() {
        let s = crontab();
        let v = json!({"spec": {"image": "x", "replicas": 3, "mode": "a", "cronSpec": "* * * * */5", "port": "http"}});
        assert!(validate(&v, &s, "", &Patterns::default()).is_empty());
    }
}
