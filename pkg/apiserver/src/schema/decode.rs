//! Decoding a request body into a built-in kind the way upstream's strict JSON decoder
//! does: wrong types are errors with Go's message text, unknown fields are reported (for
//! `fieldValidation`) and dropped, `null` fields read as absent, and quantities given as
//! JSON numbers become strings.

use std::fmt::Write as _;

use base64::Engine;
use serde_json::{Map, Value};

use super::builtin::names;
use super::facts::{KEEPS_EMPTY, OMIT_ZERO};
use super::model::{Definitions, Schema, SchemaType};

/// Deepest nesting of objects and arrays a JSON request body may have (serde_json's
/// recursion limit). Stored objects are read back with the same decoder, so nothing the
/// server writes may nest deeper either.
pub const MAX_NESTING_DEPTH: usize = 127;

/// How many objects and arrays deep `v` nests (0 for a scalar, 1 for `{}`), measured
/// without recursion so that any value can be measured.
pub fn nesting_depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1)];
    while let Some((v, level)) = stack.pop() {
        match v {
            Value::Object(m) => stack.extend(m.values().map(|c| (c, level + 1))),
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, level + 1))),
            _ => continue,
        }
        deepest = deepest.max(level);
    }
    deepest
}

/// A value of the wrong JSON type, as Go's decoder words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TypeError {
    /// Upstream's text, e.g. `json: cannot unmarshal string into Go struct field
    /// DeploymentSpec.spec.replicas of type int32`.
    pub message: String,
}

/// What decoding found besides type errors.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decoded {
    /// Paths of unknown fields (`spec.template.spec.containers[0].foo`), in document order.
    pub unknown_fields: Vec<String>,
    /// Schema violations reported after unknown fields (custom resources: 422 Invalid).
    pub invalid: k1s_apimachinery::ErrorList,
}

/// Go's name for a definition's type: `v1.PodSpec`, `resource.Quantity`.
fn go_type_of_definition(name: &str) -> String {
    let mut parts = name.rsplitn(3, '.');
    let ty = parts.next().unwrap_or(name);
    match parts.next() {
        Some(pkg) => format!("{pkg}.{ty}"),
        None => ty.to_string(),
    }
}

fn go_struct_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn json_kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_f64() => format!("number {n}"),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

struct Walker<'a> {
    defs: &'a Definitions,
    unknown: Vec<String>,
    /// The dotted field path Go reports in type errors (no indexes), of the value being
    /// walked: one buffer extended and cut back around each child, read only for an
    /// error (every request body of a kind is walked field by field).
    gopath: String,
    /// The same path with indexes, as unknown-field messages give it.
    path: String,
}

impl<'a> Walker<'a> {
    /// The Go type name a node decodes into, for messages.
    fn go_type(&self, s: &Schema) -> String {
        if let Some(r) = &s.reference {
            return match r.as_str() {
                names::INT_OR_STRING => "intstr.IntOrString".into(),
                names::QUANTITY => "resource.Quantity".into(),
                names::TIME | names::MICRO_TIME => "v1.Time".into(),
                _ => {
                    let target = self.defs.resolve(s);
                    match target.ty {
                        Some(SchemaType::Object) | None if target.is_struct() => {
                            go_type_of_definition(r)
                        }
                        _ if target.reference.is_none() && target.ty.is_some() => {
                            self.go_type(target)
                        }
                        _ => go_type_of_definition(r),
                    }
                }
            };
        }
        match s.ty {
            Some(SchemaType::Integer) => match s.format.as_deref() {
                Some("int32") => "int32".into(),
                _ => "int64".into(),
            },
            Some(SchemaType::Number) => "float64".into(),
            Some(SchemaType::Boolean) => "bool".into(),
            Some(SchemaType::String) if s.format.as_deref() == Some("byte") => "[]uint8".into(),
            Some(SchemaType::String) => "string".into(),
            Some(SchemaType::Array) => {
                let inner = s
                    .items
                    .as_deref()
                    .map(|i| self.go_type(i))
                    .unwrap_or_default();
                format!("[]{inner}")
            }
            Some(SchemaType::Object) => match &s.additional_properties {
                Some(v) => format!("map[string]{}", self.go_type(v)),
                None => "map[string]interface {}".into(),
            },
            None => "interface {}".into(),
        }
    }

    fn type_error(&self, v: &Value, s: &Schema, owner: &str) -> TypeError {
        let into = if owner.is_empty() {
            format!("Go value of type {}", self.go_type(s))
        } else {
            let path = &self.gopath;
            format!("Go struct field {owner}.{path} of type {}", self.go_type(s))
        };
        TypeError {
            message: format!("json: cannot unmarshal {} into {into}", json_kind(v)),
        }
    }

    /// Walks `v` (at `self.gopath` / `self.path`) against `s`. `owner` is the Go struct
    /// holding this field.
    fn walk(&mut self, v: &mut Value, s: &Schema, owner: &str) -> Result<(), TypeError> {
        let node = self.defs.resolve(s);
        let def_name = s
            .reference
            .as_deref()
            .or(node.reference.as_deref())
            .unwrap_or("");
        match def_name {
            names::QUANTITY => {
                // Go parses a quantity while decoding (a malformed one is a 400) and
                // stores its canonical form (`1024Mi` is stored as `1Gi`).
                let text = match v {
                    Value::String(s) => s.trim().to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(TypeError {
                            message: k1s_apimachinery::quantity::QuantityError::FormatWrong
                                .to_string(),
                        });
                    }
                };
                return match k1s_apimachinery::Quantity::parse(&text) {
                    // Go keeps quantities beyond an int64 of nano-units exactly.
                    Ok(_) | Err(k1s_apimachinery::quantity::QuantityError::OutOfRange) => {
                        *v = Value::String(k1s_apimachinery::quantity::canonical::canonical_form(
                            &text,
                        ));
                        Ok(())
                    }
                    Err(e) => Err(TypeError {
                        message: e.to_string(),
                    }),
                };
            }
            names::TIME | names::MICRO_TIME if v.is_string() => {
                // Go parses timestamps while decoding: a malformed one is a 400 there,
                // never a stored string that typed clients then fail to read.
                let text = v.as_str().unwrap_or("");
                let checked = if def_name == names::TIME {
                    k1s_apimachinery::gotime::check_rfc3339(text)
                } else {
                    k1s_apimachinery::gotime::check_rfc3339_micro(text)
                };
                return checked.map_err(|message| TypeError { message });
            }
            names::INT_OR_STRING => {
                return match v {
                    Value::String(_) => Ok(()),
                    Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
                    _ => Err(TypeError {
                        message: format!(
                            "json: cannot unmarshal {} into Go value of type int32",
                            json_kind(v)
                        ),
                    }),
                };
            }
            _ => {}
        }
        if node.preserve_unknown_fields && node.properties.is_empty() {
            return Ok(());
        }
        if node.int_or_string {
            return match v {
                Value::String(_) | Value::Number(_) => Ok(()),
                _ => Err(self.type_error(v, s, owner)),
            };
        }
        match node.ty {
            None => Ok(()),
            Some(SchemaType::String) => match v {
                Value::String(text) => {
                    if node.format.as_deref() == Some("byte")
                        && base64::engine::general_purpose::STANDARD
                            .decode(text.as_bytes())
                            .is_err()
                    {
                        return Err(TypeError {
                            message: base64_error(text),
                        });
                    }
                    Ok(())
                }
                _ => Err(self.type_error(v, s, owner)),
            },
            Some(SchemaType::Integer) => match v {
                Value::Number(n) => {
                    let fits = match node.format.as_deref() {
                        Some("int32") => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                        _ => n.is_i64(),
                    };
                    if fits {
                        Ok(())
                    } else {
                        Err(self.type_error(v, s, owner))
                    }
                }
                _ => Err(self.type_error(v, s, owner)),
            },
            Some(SchemaType::Number) => match v {
                Value::Number(_) => Ok(()),
                _ => Err(self.type_error(v, s, owner)),
            },
            Some(SchemaType::Boolean) => match v {
                Value::Bool(_) => Ok(()),
                _ => Err(self.type_error(v, s, owner)),
            },
            Some(SchemaType::Array) => {
                let Value::Array(items) = v else {
                    return Err(self.type_error(v, s, owner));
                };
                let Some(item_schema) = node.items.as_deref() else {
                    return Ok(());
                };
                for (i, item) in items.iter_mut().enumerate() {
                    // Go decodes a null item as the item type's zero value.
                    if item.is_null() {
                        match self.zero_value(item_schema) {
                            Some(zero) => *item = zero,
                            None => continue,
                        }
                    }
                    let len = self.path.len();
                    let _ = write!(self.path, "[{i}]");
                    let walked = self.walk(item, item_schema, owner);
                    self.path.truncate(len);
                    walked?;
                }
                Ok(())
            }
            Some(SchemaType::Object) => {
                let Value::Object(map) = v else {
                    return Err(self.type_error(v, s, owner));
                };
                if node.is_struct() {
                    let owner = go_struct_name(def_name);
                    self.walk_struct(map, node, def_name, owner)
                } else if let Some(value_schema) = node.additional_properties.as_deref() {
                    for (k, item) in map.iter_mut() {
                        // A null map value is stored as the value type's zero value.
                        if item.is_null() {
                            match self.zero_value(value_schema) {
                                Some(zero) => *item = zero,
                                None => continue,
                            }
                        }
                        self.walk_child(item, value_schema, owner, k)?;
                    }
                    Ok(())
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Walks the field or map entry `key` of the value at the current paths.
    fn walk_child(
        &mut self,
        v: &mut Value,
        s: &Schema,
        owner: &str,
        key: &str,
    ) -> Result<(), TypeError> {
        let (glen, plen) = (self.gopath.len(), self.path.len());
        push_key(&mut self.gopath, key);
        push_key(&mut self.path, key);
        let walked = self.walk(v, s, owner);
        self.gopath.truncate(glen);
        self.path.truncate(plen);
        walked
    }

    fn walk_struct(
        &mut self,
        map: &mut Map<String, Value>,
        node: &Schema,
        definition: &str,
        owner: &str,
    ) -> Result<(), TypeError> {
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            let Some(field_schema) = node.properties.get(&key) else {
                if !node.preserve_unknown_fields {
                    let mut path = self.path.clone();
                    push_key(&mut path, &key);
                    self.unknown.push(path);
                    map.remove(&key);
                }
                continue;
            };
            // A JSON null leaves a Go field at its zero value: absent.
            if map.get(&key).is_some_and(Value::is_null) {
                map.remove(&key);
                continue;
            }
            if let Some(value) = map.get_mut(&key) {
                self.walk_child(value, field_schema, owner, &key)?;
                // Go's typed decoding cannot tell `false`, 0 or "" of a plain scalar
                // field from an absent one (and never stores them): neither do we, so
                // immutability checks and generation see what upstream sees.
                if is_zero_scalar(value)
                    && OMIT_ZERO
                        .binary_search_by(|(d, f)| (*d, *f).cmp(&(definition, key.as_str())))
                        .is_ok()
                {
                    map.remove(&key);
                }
            }
        }
        Ok(())
    }

    /// Whether Go's encoder leaves the field out: an empty list or map whose field has
    /// `omitempty`, which is every field but those in [`KEEPS_EMPTY`]. Upstream stores
    /// typed objects, so `annotations: {}` or `tolerations: []` are never stored (and
    /// `kubectl diff` after an apply shows nothing). Structs are always written.
    fn omitted_when_empty(&self, v: &Value, s: &Schema, definition: &str, key: &str) -> bool {
        let empty = match v {
            Value::Array(items) => items.is_empty(),
            Value::Object(m) => {
                let node = self.defs.resolve(s);
                m.is_empty() && !node.is_struct() && node.additional_properties.is_some()
            }
            _ => false,
        };
        empty
            && KEEPS_EMPTY
                .binary_search_by(|(d, f)| (*d, *f).cmp(&(definition, key)))
                .is_err()
    }

    /// What Go's encoder writes for the zero value of `s`'s type, when that is not null.
    fn zero_value(&self, s: &Schema) -> Option<Value> {
        let node = self.defs.resolve(s);
        let def_name = s
            .reference
            .as_deref()
            .or(node.reference.as_deref())
            .unwrap_or("");
        match def_name {
            names::QUANTITY => return Some(Value::String("0".into())),
            names::INT_OR_STRING => return Some(Value::from(0)),
            names::TIME | names::MICRO_TIME => return None,
            _ => {}
        }
        if node.int_or_string {
            return Some(Value::from(0));
        }
        match node.ty {
            Some(SchemaType::String) if node.format.as_deref() == Some("byte") => None,
            Some(SchemaType::String) => Some(Value::String(String::new())),
            Some(SchemaType::Integer | SchemaType::Number) => Some(Value::from(0)),
            Some(SchemaType::Boolean) => Some(Value::Bool(false)),
            Some(SchemaType::Object) if node.is_struct() => Some(Value::Object(Map::new())),
            _ => None,
        }
    }
}

impl Walker<'_> {
    /// Fills the schema's required fields that `v` lacks with their zero values, at every
    /// level (see [`fill_required`]).
    fn fill(&self, v: &mut Value, s: &Schema, depth: usize) {
        if depth > MAX_NESTING_DEPTH {
            return;
        }
        let node = self.defs.resolve(s);
        match v {
            Value::Array(items) => {
                if let Some(item_schema) = node.items.as_deref() {
                    for item in items {
                        self.fill(item, item_schema, depth + 1);
                    }
                }
            }
            Value::Object(map) if node.is_struct() => {
                let definition = s
                    .reference
                    .as_deref()
                    .or(node.reference.as_deref())
                    .unwrap_or("");
                map.retain(|key, value| {
                    node.properties.get(key).is_none_or(|field_schema| {
                        !self.omitted_when_empty(value, field_schema, definition, key)
                    })
                });
                for key in &node.required {
                    if map.contains_key(key) {
                        continue;
                    }
                    let Some(field_schema) = node.properties.get(key) else {
                        continue;
                    };
                    let target = self.defs.resolve(field_schema);
                    let field = (definition, key.as_str());
                    let scalar = matches!(
                        target.ty,
                        Some(
                            SchemaType::String
                                | SchemaType::Integer
                                | SchemaType::Number
                                | SchemaType::Boolean
                        )
                    );
                    let zero = if scalar || target.is_struct() {
                        // Go leaves out a zero scalar with `omitempty`, required or not.
                        let omitted = OMIT_ZERO
                            .binary_search_by(|(d, f)| (*d, *f).cmp(&field))
                            .is_ok();
                        (!omitted).then(|| self.zero_value(field_schema)).flatten()
                    } else if KEEPS_EMPTY
                        .binary_search_by(|(d, f)| (*d, *f).cmp(&field))
                        .is_ok()
                    {
                        // Go writes null for a list without `omitempty` that is missing;
                        // typed clients refuse null where a list is required, and an
                        // empty list means the same.
                        match target.ty {
                            Some(SchemaType::Array) => Some(Value::Array(Vec::new())),
                            Some(SchemaType::Object) => Some(Value::Object(Map::new())),
                            _ => None,
                        }
                    } else {
                        None
                    };
                    if let Some(zero) = zero {
                        map.insert(key.clone(), zero);
                    }
                }
                for (key, field) in map.iter_mut() {
                    if let Some(field_schema) = node.properties.get(key) {
                        self.fill(field, field_schema, depth + 1);
                    }
                }
            }
            Value::Object(map) => {
                if let Some(value_schema) = node.additional_properties.as_deref() {
                    for item in map.values_mut() {
                        self.fill(item, value_schema, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Gives a valid object the shape Go's encoder gives a typed one, as upstream stores it:
/// empty lists and maps of `omitempty` fields are left out (`annotations: {}`), and the
/// schema's required strings, numbers, booleans and structs it lacks are filled with
/// their zero values (`involvedObject: {}` for an Event: typed clients — client-go, the
/// Python client, k8s-openapi — refuse an object without them; required lists and maps
/// would be written as null, so they are not filled). The registry calls this after
/// defaulting and validation, which upstream runs on the decoded object, where an empty
/// list is not yet a missing one (an HPA's `policies: []` is refused, not defaulted).
pub fn fill_required(value: &mut Value, kind_schema: &Schema, defs: &Definitions) {
    let walker = Walker {
        defs,
        unknown: Vec::new(),
        gopath: String::new(),
        path: String::new(),
    };
    walker.fill(value, kind_schema, 0);
}

fn is_zero_scalar(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Appends `key` to a dotted path (no dot before the first key).
fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn base64_error(text: &str) -> String {
    // Go reports the offset of the first byte it could not decode.
    let valid = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let pos = text
        .bytes()
        .position(|c| !valid(c) && c != b'=')
        .unwrap_or(text.len());
    format!("illegal base64 data at input byte {pos}")
}

/// Checks `value` against the kind's schema in place: drops unknown fields and nulls,
/// turns numeric quantities into strings, and fails on the first wrong type.
pub fn decode(
    value: &mut Value,
    kind_schema: &Schema,
    defs: &Definitions,
) -> Result<Decoded, TypeError> {
    let mut walker = Walker {
        defs,
        unknown: Vec::new(),
        gopath: String::new(),
        path: String::new(),
    };
    walker.walk(value, kind_schema, "")?;
    Ok(Decoded {
        unknown_fields: walker.unknown,
        invalid: k1s_apimachinery::ErrorList::default(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::builtin::{BuiltinSchemas, gvk};

    fn deployment() -> (Schema, Definitions) {
        let mut b = BuiltinSchemas::new();
        let name = b.add::<k8s_openapi::api::apps::v1::Deployment>(gvk("apps", "v1", "Deployment"));
        (Schema::reference(name), b.build())
    }

    #[test]
    fn nesting_depth_counts_containers_up_to_what_serde_json_reads() {
        // MAX_NESTING_DEPTH promises that anything within it reads back: it must be
        // serde_json's limit exactly.
        assert_eq!(nesting_depth(&json!(1)), 0);
        assert_eq!(nesting_depth(&json!({})), 1);
        assert_eq!(nesting_depth(&json!({"a": [1, {"b": []}], "c": {}})), 4);
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deepest: Value =
            serde_json::from_str(&nested(MAX_NESTING_DEPTH)).expect("127 levels parse");
        assert_eq!(nesting_depth(&deepest), MAX_NESTING_DEPTH);
        assert!(serde_json::from_str::<Value>(&nested(MAX_NESTING_DEPTH + 1)).is_err());
    }

    #[test]
    fn wrong_type_gives_go_decoder_message() {
        // kubectl prints this text verbatim after "cannot be handled as a Deployment: ".
        let (s, defs) = deployment();
        let mut v = json!({"spec": {"replicas": "three"}});
        let err = decode(&mut v, &s, &defs).unwrap_err();
        assert_eq!(
            err.message,
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
        let mut v =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": 5}]}}}});
        let err = decode(&mut v, &s, &defs).unwrap_err();
        assert_eq!(
            err.message,
            "json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.image of type string"
        );
    }

    #[test]
    fn unknown_fields_are_reported_with_indexes_and_dropped() {
        let (s, defs) = deployment();
        let mut v = json!({
            "metadata": {"name": "x", "bogus": 1},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "imagee": "nginx"}]}}},
        });
        let d = decode(&mut v, &s, &defs).unwrap();
        assert_eq!(
            d.unknown_fields,
            vec!["metadata.bogus", "spec.template.spec.containers[0].imagee"]
        );
        assert!(v["metadata"].get("bogus").is_none());
    }

    fn kind(k: &str) -> (Schema, Definitions) {
        use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event};
        let mut b = BuiltinSchemas::new();
        let name = match k {
            "Event" => b.add::<Event>(gvk("", "v1", "Event")),
            "ConfigMap" => b.add::<ConfigMap>(gvk("", "v1", "ConfigMap")),
            _ => b.add::<Endpoints>(gvk("", "v1", "Endpoints")),
        };
        (Schema::reference(name), b.build())
    }

    #[test]
    fn malformed_timestamps_are_go_parse_errors() {
        let (s, defs) = kind("Event");
        let mut v = json!({"lastTimestamp": "2024-01-01T12:99:00Z"});
        assert_eq!(
            decode(&mut v, &s, &defs).unwrap_err().message,
            r#"parsing time "2024-01-01T12:99:00Z": minute out of range"#
        );
        let mut v = json!({"eventTime": ""});
        assert_eq!(
            decode(&mut v, &s, &defs).unwrap_err().message,
            r#"parsing time "" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "" as "2006""#
        );
        let mut v = json!({"eventTime": "2024-01-01T12:00:00.000001Z", "firstTimestamp": "2024-01-01T12:00:00Z"});
        assert!(decode(&mut v, &s, &defs).is_ok());
    }

    #[test]
    fn null_map_values_and_list_items_read_as_zero_values() {
        // Go stores `{"a": null}` in a map[string]string as "", and a null item of a list
        // of structs as the empty struct, which validation then judges.
        let (s, defs) = kind("ConfigMap");
        let mut v = json!({"metadata": {"labels": {"x": null}}, "data": {"a": null}});
        decode(&mut v, &s, &defs).unwrap();
        assert_eq!(
            v,
            json!({"metadata": {"labels": {"x": ""}}, "data": {"a": ""}})
        );
        let (s, defs) = kind("Endpoints");
        let mut v = json!({"subsets": [null, {"addresses": [null]}]});
        decode(&mut v, &s, &defs).unwrap();
        assert_eq!(v, json!({"subsets": [{}, {"addresses": [{}]}]}));
    }

    #[test]
    fn empty_lists_and_maps_are_stored_left_out_unless_go_writes_them() {
        // Go's omitempty: `annotations: {}` and `tolerations: []` vanish, a struct such as
        // `securityContext: {}` stays, and `containers: []` (no omitempty) stays.
        let (s, defs) = deployment();
        let mut v = json!({
            "metadata": {"name": "d", "annotations": {}, "labels": {"a": "b"}},
            "spec": {"selector": {"matchLabels": {}}, "template": {"spec": {
                "containers": [], "tolerations": [], "nodeSelector": {}, "securityContext": {}
            }}}
        });
        let decoded = v.clone();
        decode(&mut v, &s, &defs).unwrap();
        assert_eq!(
            v, decoded,
            "decoding keeps them for defaulting and validation"
        );
        fill_required(&mut v, &s, &defs);
        assert_eq!(
            v,
            json!({
                "metadata": {"name": "d", "labels": {"a": "b"}},
                "spec": {"selector": {}, "template": {"spec": {
                    "containers": [], "securityContext": {}
                }}}
            })
        );
    }

    #[test]
    fn fact_tables_are_sorted_for_binary_search() {
        assert!(KEEPS_EMPTY.windows(2).all(|w| w[0] < w[1]));
        assert!(OMIT_ZERO.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn zero_values_of_plain_scalars_read_as_absent() {
        // `hostNetwork: false` and `paused: false` are what Go reads for absent fields;
        // a pointer field (`replicas: 0`) keeps its zero.
        let (s, defs) = deployment();
        let mut v = json!({"spec": {"paused": false, "replicas": 0, "minReadySeconds": 0,
        "template": {"spec": {"hostNetwork": false, "containers": [
            {"name": "c", "image": "", "ports": [{"containerPort": 80, "protocol": ""}]}
        ]}}}});
        decode(&mut v, &s, &defs).unwrap();
        assert_eq!(
            v,
            json!({"spec": {"replicas": 0, "template": {"spec": {"containers": [
                {"name": "c", "ports": [{"containerPort": 80}]}
            ]}}}})
        );
    }

    #[test]
    fn quantities_are_parsed_and_stored_in_canonical_form() {
        let (s, defs) = deployment();
        let res = |q: Value| {
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "c", "resources": {"limits": {"memory": q}}}
            ]}}}})
        };
        let mut v = res(json!("1024Mi"));
        decode(&mut v, &s, &defs).unwrap();
        let memory = |v: &Value| {
            v["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"].clone()
        };
        assert_eq!(memory(&v), json!("1Gi"));
        let mut v = res(json!(0.5));
        decode(&mut v, &s, &defs).unwrap();
        assert_eq!(memory(&v), json!("500m"));
        let mut v = res(json!("abc"));
        assert_eq!(
            decode(&mut v, &s, &defs).unwrap_err().message,
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn required_fields_are_filled_with_zero_values() {
        let (s, defs) = kind("Event");
        let mut v = json!({"metadata": {"name": "e"}, "reason": "X"});
        fill_required(&mut v, &s, &defs);
        assert_eq!(v["involvedObject"], json!({}));
        let (s, defs) = kind("Endpoints");
        let mut v = json!({"subsets": [{"addresses": [{"hostname": "a"}], "ports": [{}]}]});
        fill_required(&mut v, &s, &defs);
        let csinode = {
            let mut b = BuiltinSchemas::new();
            let name = b.add::<k8s_openapi::api::storage::v1::CSINode>(gvk(
                "storage.k8s.io",
                "v1",
                "CSINode",
            ));
            (Schema::reference(name), b.build())
        };
        let mut node = json!({"metadata": {"name": "n"}, "spec": {}});
        fill_required(&mut node, &csinode.0, &csinode.1);
        assert_eq!(node["spec"], json!({"drivers": []}));
        assert_eq!(v["subsets"][0]["addresses"][0]["ip"], json!(""));
        assert_eq!(v["subsets"][0]["ports"][0]["port"], json!(0));
    }

    #[test]
    fn numeric_quantities_become_strings_and_nulls_vanish() {
        let (s, defs) = deployment();
        let mut v = json!({"spec": {"replicas": null, "template": {"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}
        ]}}}});
        decode(&mut v, &s, &defs).unwrap();
        assert!(v["spec"].get("replicas").is_none());
        assert_eq!(
            v["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            json!("1")
        );
    }
}
