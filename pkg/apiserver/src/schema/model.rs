//! The one schema model of k1s: what a field is, as OpenAPI and the apply machinery see it.
//!
//! Built-in kinds get their schemas from k8s-openapi (schemars) plus a table of the
//! `x-kubernetes-*` facts schemars does not carry; CRDs get theirs from
//! `openAPIV3Schema`. Decoding, strategic merge patch, server-side apply, pruning,
//! defaulting and the OpenAPI documents all walk this one model.

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

/// JSON type of a schema node (`type` in OpenAPI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// A JSON object: a struct with `properties` or a map with `additionalProperties`.
    Object,
    /// A JSON array.
    Array,
    /// A JSON string.
    String,
    /// A JSON number without fraction.
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
}

impl SchemaType {
    /// Parses an OpenAPI `type` value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "object" => Self::Object,
            "array" => Self::Array,
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            _ => return None,
        })
    }

    /// The OpenAPI spelling of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Object => "object",
            Self::Array => "array",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }
}

/// `x-kubernetes-list-type`: how a list merges under server-side apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListType {
    /// The list is replaced as a whole (the default for lists).
    Atomic,
    /// A list of unique scalars; each element is owned separately.
    Set,
    /// A list of objects identified by `x-kubernetes-list-map-keys`.
    Map,
}

/// `x-kubernetes-map-type` / `x-kubernetes-structType`: whether an object merges per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapType {
    /// Each key is merged and owned separately (the default).
    Granular,
    /// The object is replaced as a whole.
    Atomic,
}

/// One node of a schema. Nodes that name a definition (`reference`) are resolved through
/// [`Definitions`]; every other field describes the node itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// The definition this node stands for (`io.k8s.api.core.v1.PodSpec`), resolved by
    /// [`Definitions::resolve`]. A node with a reference carries only its own description.
    pub reference: Option<String>,
    /// Human-readable description (what `kubectl explain` prints).
    pub description: Option<String>,
    /// JSON type; `None` means any type (unless `int_or_string`).
    pub ty: Option<SchemaType>,
    /// OpenAPI `format` (`int32`, `int64`, `date-time`, `byte`, …).
    pub format: Option<String>,
    /// Fields of a struct-like object, in declaration order.
    pub properties: IndexMap<String, Schema>,
    /// Value schema of a map-like object.
    pub additional_properties: Option<Box<Schema>>,
    /// `additionalProperties: false` was given explicitly.
    pub additional_properties_false: bool,
    /// Element schema of an array.
    pub items: Option<Box<Schema>>,
    /// Fields that must be present.
    pub required: Vec<String>,
    /// `x-kubernetes-int-or-string`: an integer or a string.
    pub int_or_string: bool,
    /// `x-kubernetes-preserve-unknown-fields`: unknown fields are kept, not pruned.
    pub preserve_unknown_fields: bool,
    /// `x-kubernetes-embedded-resource`: an object with apiVersion/kind/metadata.
    pub embedded_resource: bool,
    /// `x-kubernetes-list-type`.
    pub list_type: Option<ListType>,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type` (maps) or `x-kubernetes-map-type`/structType (structs).
    pub map_type: Option<MapType>,
    /// `x-kubernetes-patch-strategy` (`merge`, `retainKeys`, `merge,retainKeys`, `replace`).
    pub patch_strategy: Option<String>,
    /// `x-kubernetes-patch-merge-key`.
    pub patch_merge_key: Option<String>,
    /// `default`.
    pub default: Option<Value>,
    /// `nullable`.
    pub nullable: bool,
    /// `enum`.
    pub enum_values: Vec<Value>,
    /// `maximum`.
    pub maximum: Option<f64>,
    /// `exclusiveMaximum`.
    pub exclusive_maximum: bool,
    /// `minimum`.
    pub minimum: Option<f64>,
    /// `exclusiveMinimum`.
    pub exclusive_minimum: bool,
    /// `maxLength`.
    pub max_length: Option<u64>,
    /// `minLength`.
    pub min_length: Option<u64>,
    /// `pattern` (an ECMA-262 regular expression).
    pub pattern: Option<String>,
    /// `maxItems`.
    pub max_items: Option<u64>,
    /// `minItems`.
    pub min_items: Option<u64>,
    /// `uniqueItems`.
    pub unique_items: bool,
    /// `maxProperties`.
    pub max_properties: Option<u64>,
    /// `minProperties`.
    pub min_properties: Option<u64>,
    /// `multipleOf`.
    pub multiple_of: Option<f64>,
    /// `allOf`, `anyOf`, `oneOf`, `not` of CRD schemas, kept for validation only.
    pub all_of: Vec<Schema>,
    /// `anyOf`.
    pub any_of: Vec<Schema>,
    /// `oneOf`.
    pub one_of: Vec<Schema>,
    /// `not`.
    pub not: Option<Box<Schema>>,
    /// Any other `x-kubernetes-*` extension, kept verbatim for the OpenAPI documents.
    pub extensions: BTreeMap<String, Value>,
}

impl Schema {
    /// A node that stands for a named definition.
    pub fn reference(name: impl Into<String>) -> Self {
        Self {
            reference: Some(name.into()),
            ..Self::default()
        }
    }

    /// A node of a given type and nothing else.
    pub fn of_type(ty: SchemaType) -> Self {
        Self {
            ty: Some(ty),
            ..Self::default()
        }
    }

    /// Whether the node is an object with named properties (a struct).
    pub fn is_struct(&self) -> bool {
        !self.properties.is_empty()
    }

    /// The list type, with upstream's default (atomic) applied.
    pub fn effective_list_type(&self) -> ListType {
        self.list_type.unwrap_or(ListType::Atomic)
    }

    /// The map type, with upstream's default (granular) applied.
    pub fn effective_map_type(&self) -> MapType {
        self.map_type.unwrap_or(MapType::Granular)
    }

    /// Whether strategic merge patch merges this list by key (rather than replacing it).
    pub fn patch_merges(&self) -> bool {
        self.patch_strategy
            .as_deref()
            .is_some_and(|s| s.split(',').any(|p| p == "merge"))
    }

    /// Whether strategic merge patch honours `$retainKeys` here.
    pub fn patch_retains_keys(&self) -> bool {
        self.patch_strategy
            .as_deref()
            .is_some_and(|s| s.split(',').any(|p| p == "retainKeys"))
    }
}

/// Named schema definitions (`io.k8s.api.apps.v1.Deployment` → its schema).
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    defs: IndexMap<String, Arc<Schema>>,
}

impl Definitions {
    /// An empty set of definitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a definition.
    pub fn insert(&mut self, name: impl Into<String>, schema: Schema) {
        self.defs.insert(name.into(), Arc::new(schema));
    }

    /// The definition of that name.
    pub fn get(&self, name: &str) -> Option<&Arc<Schema>> {
        self.defs.get(name)
    }

    /// Every definition, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<Schema>)> {
        self.defs.iter()
    }

    /// Number of definitions.
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    /// Whether there are no definitions.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Follows `reference` (repeatedly) to the node that describes the value. A dangling
    /// reference resolves to the node itself, which then accepts anything.
    pub fn resolve<'a>(&'a self, mut schema: &'a Schema) -> &'a Schema {
        // Bounded so that a definition referring to itself cannot loop forever.
        for _ in 0..16 {
            match schema.reference.as_deref().and_then(|r| self.defs.get(r)) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// The schema of the named field of an object node, resolved.
    pub fn field<'a>(&'a self, schema: &'a Schema, name: &str) -> Option<&'a Schema> {
        let schema = self.resolve(schema);
        schema
            .properties
            .get(name)
            .or(schema.additional_properties.as_deref())
            .map(|s| self.resolve(s))
    }

    /// The element schema of an array node, resolved.
    pub fn items<'a>(&'a self, schema: &'a Schema) -> Option<&'a Schema> {
        let schema = self.resolve(schema);
        schema.items.as_deref().map(|s| self.resolve(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_references_and_stops_on_cycles() {
        // A self-referencing definition (JSONSchemaProps is one) must not hang the walker.
        let mut defs = Definitions::new();
        defs.insert("a", Schema::reference("a"));
        let node = Schema::reference("a");
        assert_eq!(defs.resolve(&node).reference.as_deref(), Some("a"));

        defs.insert("b", Schema::of_type(SchemaType::String));
        let node = Schema::reference("b");
        assert_eq!(defs.resolve(&node).ty, Some(SchemaType::String));
    }

    #[test]
    fn field_falls_back_to_additional_properties() {
        // Maps (labels, data) have no named properties; every key has the value schema.
        let defs = Definitions::new();
        let map = Schema {
            ty: Some(SchemaType::Object),
            additional_properties: Some(Box::new(Schema::of_type(SchemaType::String))),
            ..Schema::default()
        };
        assert_eq!(
            defs.field(&map, "any").and_then(|s| s.ty),
            Some(SchemaType::String)
        );
    }
}
