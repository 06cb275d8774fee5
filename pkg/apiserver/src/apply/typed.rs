//! The schema as structured-merge-diff sees it, and the walks over typed values: field
//! sets, comparison, removal, validation and reconciling field sets with the schema.
//!
//! Upstream converts OpenAPI into "atoms" (kube-openapi `schemaconv`): a node is a scalar,
//! a list (atomic, or associative with or without keys) or a map (atomic or granular, with
//! declared fields and an element type for undeclared keys). A node without a type is all
//! three, and a value picks the one that fits. [`Ty`] and [`Atom`] reproduce that view of
//! the k1s [`Schema`] model.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use super::fieldpath::{FieldSet, PathElement, values_equal};
use crate::schema::model::{Definitions, ListType, MapType, Schema, SchemaType};

/// `runtime.RawExtension` and `resource.Quantity`: upstream hard-codes both as untyped
/// scalars (a raw extension is therefore owned as a whole).
const UNTYPED_SCALARS: &[&str] = &[
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
];

/// Defaults of list-map key fields that upstream publishes in its OpenAPI and the k1s
/// schemas (from k8s-openapi) lack: (element definition, field, default). Used only when
/// the schema itself has no default for the key field.
const KEY_DEFAULTS: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.ContainerPort", "protocol", "TCP"),
    ("io.k8s.api.core.v1.ServicePort", "protocol", "TCP"),
];

/// A reference to a type, as upstream's `schema.TypeRef`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ty<'a> {
    /// A node of the k1s schema. `preserve` is `x-kubernetes-preserve-unknown-fields`
    /// inherited from an ancestor within the same definition.
    Node { node: &'a Schema, preserve: bool },
    /// `__untyped_deduced_`: maps granular (deduced values), lists atomic.
    Deduced,
    /// `__untyped_atomic_`: scalars, atomic lists and atomic maps.
    Untyped,
    /// The empty type reference: a field that the schema does not declare.
    Undeclared,
}

/// A list atom.
#[derive(Clone, Debug)]
pub(crate) struct ListAtom<'a> {
    /// Whether elements are merged and owned separately (set or map list).
    pub associative: bool,
    /// The key fields of a map list (empty for a set).
    pub keys: &'a [String],
    /// The element type.
    pub elem: Ty<'a>,
}

/// A map atom.
#[derive(Clone, Debug)]
pub(crate) struct MapAtom<'a> {
    /// Whether the map is owned and replaced as a whole.
    pub atomic: bool,
    /// The resolved struct node whose properties are the declared fields, if any.
    pub fields: Option<&'a Schema>,
    /// Inherited preserve-unknown-fields, for the declared fields.
    pub preserve: bool,
    /// The type of undeclared keys.
    pub elem: Ty<'a>,
}

impl<'a> MapAtom<'a> {
    /// The type of a declared field.
    pub fn declared(&self, key: &str) -> Option<Ty<'a>> {
        self.fields
            .and_then(|s| s.properties.get(key))
            .map(|node| Ty::Node {
                node,
                preserve: self.preserve,
            })
    }

    /// The type of any key: the declared field's, else the element type.
    pub fn field(&self, key: &str) -> Ty<'a> {
        self.declared(key).unwrap_or(self.elem)
    }
}

/// What a type can be.
#[derive(Clone, Debug, Default)]
pub(crate) struct Atom<'a> {
    /// A scalar.
    pub scalar: Option<ScalarKind>,
    /// A list.
    pub list: Option<ListAtom<'a>>,
    /// A map.
    pub map: Option<MapAtom<'a>>,
}

/// Scalar kinds, for validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScalarKind {
    /// Integers and floats.
    Numeric,
    /// Strings.
    String,
    /// Booleans.
    Boolean,
    /// Any scalar.
    Untyped,
}

impl Atom<'_> {
    /// upstream's `deduceAtom`: the part of the atom that fits the value.
    pub fn deduce(&self, v: Option<&Value>) -> Atom<'_> {
        match v {
            Some(Value::Number(_) | Value::String(_) | Value::Bool(_)) if self.scalar.is_some() => {
                Atom {
                    scalar: self.scalar,
                    ..Atom::default()
                }
            }
            Some(Value::Array(_)) if self.list.is_some() => Atom {
                list: self.list.clone(),
                ..Atom::default()
            },
            Some(Value::Object(_)) if self.map.is_some() => Atom {
                map: self.map.clone(),
                ..Atom::default()
            },
            _ => self.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.scalar.is_none() && self.list.is_none() && self.map.is_none()
    }

    /// Which readings the atom has; two deductions of one atom are equal when their shapes are.
    pub fn shape(&self) -> (bool, bool, bool) {
        (
            self.scalar.is_some(),
            self.list.is_some(),
            self.map.is_some(),
        )
    }
}

/// How a walker handles an atom, by upstream's precedence: map, scalar, list.
pub(crate) enum Handle<'b, 'a> {
    /// A map.
    Map(&'b MapAtom<'a>),
    /// A scalar.
    Scalar(ScalarKind),
    /// A list.
    List(&'b ListAtom<'a>),
    /// Nothing: the type reference is empty.
    Invalid,
}

impl<'a> Atom<'a> {
    /// Picks the handler as upstream's `handleAtom`.
    pub fn handle(&self) -> Handle<'_, 'a> {
        if let Some(m) = &self.map {
            Handle::Map(m)
        } else if let Some(s) = self.scalar {
            Handle::Scalar(s)
        } else if let Some(l) = &self.list {
            Handle::List(l)
        } else {
            Handle::Invalid
        }
    }
}

/// The schema view used by the walkers.
#[derive(Clone, Copy)]
pub(crate) struct Types<'a> {
    /// The definitions references resolve against.
    pub defs: &'a Definitions,
}

fn deduced_atom<'a>() -> Atom<'a> {
    Atom {
        scalar: Some(ScalarKind::Untyped),
        list: Some(ListAtom {
            associative: false,
            keys: &[],
            elem: Ty::Untyped,
        }),
        map: Some(MapAtom {
            atomic: false,
            fields: None,
            preserve: false,
            elem: Ty::Deduced,
        }),
    }
}

fn untyped_atom<'a>() -> Atom<'a> {
    Atom {
        scalar: Some(ScalarKind::Untyped),
        list: Some(ListAtom {
            associative: false,
            keys: &[],
            elem: Ty::Untyped,
        }),
        map: Some(MapAtom {
            atomic: true,
            fields: None,
            preserve: false,
            elem: Ty::Untyped,
        }),
    }
}

impl<'a> Types<'a> {
    /// The atom of a type. An undeclared field resolves to the deduced atom: upstream would
    /// have rejected the object in validation; the walkers stay lenient.
    pub fn atom(&self, ty: Ty<'a>) -> Atom<'a> {
        match ty {
            Ty::Deduced | Ty::Undeclared => deduced_atom(),
            Ty::Untyped => untyped_atom(),
            Ty::Node { node, preserve } => self.node_atom(node, preserve),
        }
    }

    /// The atom of a type without leniency: an undeclared field has no atom.
    pub fn strict_atom(&self, ty: Ty<'a>) -> Atom<'a> {
        match ty {
            Ty::Undeclared => Atom::default(),
            other => self.atom(other),
        }
    }

    /// Whether a reference chain passes through the named definition.
    fn refers_to(&self, node: &Schema, name: &str) -> bool {
        let mut cur = node;
        for _ in 0..16 {
            match cur.reference.as_deref() {
                Some(r) if r == name => return true,
                Some(r) => match self.defs.get(r) {
                    Some(next) => cur = next,
                    None => return false,
                },
                None => return false,
            }
        }
        false
    }

    fn node_atom(&self, node: &'a Schema, preserve: bool) -> Atom<'a> {
        if UNTYPED_SCALARS
            .iter()
            .any(|name| self.refers_to(node, name))
        {
            return Atom {
                scalar: Some(ScalarKind::Untyped),
                ..Atom::default()
            };
        }
        let resolved = self.defs.resolve(node);
        // x-kubernetes-preserve-unknown-fields reaches the descendants of a node within one
        // definition; a referenced definition starts afresh (and upstream ignores the
        // extension beside a reference).
        let inherited = if node.reference.is_some() {
            false
        } else {
            preserve
        };
        let preserve = inherited || resolved.preserve_unknown_fields;
        if resolved.int_or_string {
            return Atom {
                scalar: Some(ScalarKind::Untyped),
                ..Atom::default()
            };
        }
        match resolved.ty {
            None => Atom {
                scalar: Some(ScalarKind::Untyped),
                list: Some(self.list_atom(node, resolved, preserve)),
                map: Some(self.map_atom(node, resolved, preserve)),
            },
            Some(SchemaType::Object) => Atom {
                map: Some(self.map_atom(node, resolved, preserve)),
                ..Atom::default()
            },
            Some(SchemaType::Array) => Atom {
                list: Some(self.list_atom(node, resolved, preserve)),
                ..Atom::default()
            },
            Some(SchemaType::String) => {
                let kind = match resolved.format.as_deref() {
                    None | Some("") | Some("byte") => ScalarKind::String,
                    _ => ScalarKind::Untyped,
                };
                Atom {
                    scalar: Some(kind),
                    ..Atom::default()
                }
            }
            Some(SchemaType::Integer | SchemaType::Number) => Atom {
                scalar: Some(ScalarKind::Numeric),
                ..Atom::default()
            },
            Some(SchemaType::Boolean) => Atom {
                scalar: Some(ScalarKind::Boolean),
                ..Atom::default()
            },
        }
    }

    fn map_atom(&self, node: &'a Schema, resolved: &'a Schema, preserve: bool) -> MapAtom<'a> {
        let elem = match &resolved.additional_properties {
            Some(ap) => Ty::Node { node: ap, preserve },
            None if resolved.additional_properties_false => Ty::Undeclared,
            None if preserve || resolved.properties.is_empty() => Ty::Deduced,
            None => Ty::Undeclared,
        };
        let map_type = node.map_type.or(resolved.map_type);
        MapAtom {
            atomic: map_type == Some(MapType::Atomic),
            fields: (!resolved.properties.is_empty()).then_some(resolved),
            preserve,
            elem,
        }
    }

    fn list_atom(&self, node: &'a Schema, resolved: &'a Schema, preserve: bool) -> ListAtom<'a> {
        let elem = match &resolved.items {
            Some(items) => Ty::Node {
                node: items,
                preserve,
            },
            None => Ty::Untyped,
        };
        let list_type = node.list_type.or(resolved.list_type);
        let keys: &'a [String] = if node.list_map_keys.is_empty() {
            &resolved.list_map_keys
        } else {
            &node.list_map_keys
        };
        let (associative, keys) = match list_type {
            Some(ListType::Atomic) => (false, &[][..]),
            Some(ListType::Set) => (true, &[][..]),
            Some(ListType::Map) => (true, keys),
            None => {
                // Without a list type, upstream falls back on the patch strategy.
                let strategy = node
                    .patch_strategy
                    .as_deref()
                    .or(resolved.patch_strategy.as_deref());
                let merge_key = node
                    .patch_merge_key
                    .as_ref()
                    .or(resolved.patch_merge_key.as_ref());
                match strategy {
                    Some("merge" | "merge,retainKeys") => {
                        (true, merge_key.map(std::slice::from_ref).unwrap_or(&[]))
                    }
                    _ => (false, &[][..]),
                }
            }
        };
        ListAtom {
            associative,
            keys,
            elem,
        }
    }

    /// The default of a key field of a list element (upstream's `getAssociativeKeyDefault`).
    fn key_default(&self, elem: Ty<'a>, field: &str) -> Result<Option<Value>, String> {
        let atom = self.atom(elem);
        let Some(map) = &atom.map else {
            return Err("associative list may not have non-map types".into());
        };
        let Some(Ty::Node { node, .. }) = map.declared(field) else {
            return Ok(None);
        };
        if let Some(d) = node
            .default
            .clone()
            .or_else(|| self.defs.resolve(node).default.clone())
        {
            return Ok(Some(d));
        }
        if let Ty::Node {
            node: elem_node, ..
        } = elem
        {
            for (def, f, d) in KEY_DEFAULTS {
                if *f == field && self.refers_to(elem_node, def) {
                    return Ok(Some(Value::String((*d).to_string())));
                }
            }
        }
        Ok(None)
    }

    /// The path element of a list item (upstream's `listItemToPathElement`).
    pub fn item_element(&self, list: &ListAtom<'a>, child: &Value) -> Result<PathElement, String> {
        if !list.associative {
            return Err("invalid indexing of non-associative list".into());
        }
        if !list.keys.is_empty() {
            let map = match child {
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into());
                }
                Value::Object(m) => m,
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields = Vec::new();
            for key in list.keys {
                if let Some(v) = map.get(key) {
                    fields.push((key.clone(), v.clone()));
                } else {
                    match self.key_default(list.elem, key) {
                        Err(e) => {
                            return Err(format!("couldn't find default value for {key}: {e}"));
                        }
                        Ok(Some(d)) => fields.push((key.clone(), d)),
                        Ok(None) => {}
                    }
                }
            }
            if fields.is_empty() {
                let quoted: Vec<String> = list
                    .keys
                    .iter()
                    .map(|k| k1s_apimachinery::goformat::quote(k))
                    .collect();
                return Err(format!(
                    "associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)",
                    quoted.join(" ")
                ));
            }
            return Ok(PathElement::key(fields));
        }
        match child {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        }
    }
}

fn as_map(v: Option<&Value>) -> Option<&serde_json::Map<String, Value>> {
    match v {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn as_list(v: Option<&Value>) -> Option<&Vec<Value>> {
    match v {
        Some(Value::Array(l)) => Some(l),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// ToFieldSet

impl<'a> Types<'a> {
    /// The set of fields of a value (upstream's `TypedValue.ToFieldSet`).
    pub fn field_set(&self, v: &Value, ty: Ty<'a>) -> FieldSet {
        let mut set = FieldSet::new();
        let mut path = Vec::new();
        self.fs_walk(v, ty, &mut path, &mut set);
        set
    }

    fn fs_walk(&self, v: &Value, ty: Ty<'a>, path: &mut Vec<PathElement>, set: &mut FieldSet) {
        let atom = self.atom(ty);
        let atom = atom.deduce(Some(v));
        match atom.handle() {
            Handle::Scalar(_) | Handle::Invalid => set.insert(path),
            Handle::List(list) => {
                if !list.associative {
                    set.insert(path);
                    return;
                }
                let Some(items) = as_list(Some(v)) else {
                    return;
                };
                let mut seen: BTreeSet<PathElement> = BTreeSet::new();
                let mut dups: BTreeSet<PathElement> = BTreeSet::new();
                let pes: Vec<Option<PathElement>> = items
                    .iter()
                    .map(|c| self.item_element(list, c).ok())
                    .collect();
                for pe in pes.iter().flatten() {
                    if seen.contains(pe) {
                        if !dups.contains(pe) {
                            path.push(pe.clone());
                            set.insert(path);
                            path.pop();
                            dups.insert(pe.clone());
                        }
                    } else {
                        seen.insert(pe.clone());
                    }
                }
                for (child, pe) in items.iter().zip(pes) {
                    let Some(pe) = pe else { continue };
                    if dups.contains(&pe) {
                        continue;
                    }
                    path.push(pe);
                    self.fs_walk(child, list.elem, path, set);
                    set.insert(path);
                    path.pop();
                }
            }
            Handle::Map(map) => {
                if map.atomic {
                    set.insert(path);
                    return;
                }
                let Some(m) = as_map(Some(v)) else { return };
                for (key, val) in m {
                    path.push(PathElement::Field(key.clone()));
                    self.fs_walk(val, map.field(key), path, set);
                    let empty_map = matches!(val, Value::Object(o) if o.is_empty());
                    if val.is_null() || empty_map || map.declared(key).is_none() {
                        set.insert(path);
                    }
                    path.pop();
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Compare

/// The difference between two values (upstream's `typed.Comparison`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Comparison {
    /// Fields in the old value only.
    pub removed: FieldSet,
    /// Fields in both with different values.
    pub modified: FieldSet,
    /// Fields in the new value only.
    pub added: FieldSet,
}

impl Comparison {
    /// Drops `fields` (and everything below them) from the comparison.
    pub fn exclude(&mut self, fields: &FieldSet) {
        if fields.is_empty() {
            return;
        }
        self.removed.recursive_subtract(fields);
        self.modified.recursive_subtract(fields);
        self.added.recursive_subtract(fields);
    }
}

impl<'a> Types<'a> {
    /// Compares two values of a type (upstream's `TypedValue.Compare`).
    pub fn compare(&self, lhs: &Value, rhs: &Value, ty: Ty<'a>) -> Comparison {
        let mut c = Comparison::default();
        let mut path = Vec::new();
        self.cmp_walk(Some(lhs), Some(rhs), ty, &mut path, &mut c);
        c
    }

    fn cmp_walk(
        &self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        ty: Ty<'a>,
        path: &mut Vec<PathElement>,
        c: &mut Comparison,
    ) {
        let atom = self.atom(ty);
        let alhs = atom.deduce(lhs);
        let arhs = atom.deduce(rhs);
        let in_leaf = if rhs.is_none() {
            self.cmp_handle(&alhs, lhs, rhs, path, c)
        } else if lhs.is_none() || alhs.shape() == arhs.shape() {
            self.cmp_handle(&arhs, lhs, rhs, path, c)
        } else {
            // Values of different kinds: upstream walks both readings into one comparison.
            self.cmp_handle(&alhs, lhs, rhs, path, c);
            self.cmp_handle(&arhs, lhs, rhs, path, c)
        };
        if !in_leaf {
            if lhs.is_none() {
                c.added.insert(path);
            } else if rhs.is_none() {
                c.removed.insert(path);
            }
        }
    }

    /// One reading of a value pair; whether it was compared as a leaf.
    fn cmp_handle(
        &self,
        atom: &Atom<'a>,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
        c: &mut Comparison,
    ) -> bool {
        match atom.handle() {
            Handle::Scalar(_) | Handle::Invalid => {
                cmp_leaf(lhs, rhs, path, c);
                true
            }
            Handle::List(list) => {
                let l = as_list(lhs);
                let r = as_list(rhs);
                let empty = l.is_none_or(|l| l.is_empty()) && r.is_none_or(|r| r.is_empty());
                if !list.associative || empty {
                    cmp_leaf(lhs, rhs, path, c);
                    true
                } else {
                    self.cmp_list_items(list, l, r, path, c);
                    false
                }
            }
            Handle::Map(map) => {
                let l = as_map(lhs);
                let r = as_map(rhs);
                let empty = l.is_none_or(|l| l.is_empty()) && r.is_none_or(|r| r.is_empty());
                if map.atomic || empty {
                    cmp_leaf(lhs, rhs, path, c);
                    true
                } else {
                    for (key, lv, rv) in zip_maps(l, r) {
                        path.push(PathElement::Field(key.to_string()));
                        self.cmp_walk(lv, rv, map.field(key), path, c);
                        path.pop();
                    }
                    false
                }
            }
        }
    }

    fn cmp_list_items(
        &self,
        list: &ListAtom<'a>,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
        path: &mut Vec<PathElement>,
        c: &mut Comparison,
    ) {
        // Elements grouped by path element, in order of first appearance (left, then right).
        let mut all: Vec<PathElement> = Vec::new();
        let mut lvals: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        let mut rvals: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        for child in lhs.into_iter().flatten() {
            let Ok(pe) = self.item_element(list, child) else {
                continue;
            };
            let entry = lvals.entry(pe.clone()).or_default();
            if entry.is_empty() {
                all.push(pe);
            }
            entry.push(child);
        }
        for child in rhs.into_iter().flatten() {
            let Ok(pe) = self.item_element(list, child) else {
                continue;
            };
            let entry = rvals.entry(pe.clone()).or_default();
            if entry.is_empty() && !lvals.contains_key(&pe) {
                all.push(pe);
            }
            entry.push(child);
        }
        let empty: Vec<&Value> = Vec::new();
        for pe in all {
            let l = lvals.get(&pe).unwrap_or(&empty);
            let r = rvals.get(&pe).unwrap_or(&empty);
            path.push(pe);
            if l.len() <= 1 && r.len() <= 1 {
                self.cmp_walk(l.first().copied(), r.first().copied(), list.elem, path, c);
            } else if l.len() >= 2 && r.len() >= 2 {
                let equal = l.len() == r.len() && l.iter().zip(r).all(|(a, b)| values_equal(a, b));
                if !equal {
                    c.modified.insert(path);
                }
            } else if l.len() >= 2 {
                if let Some(first) = r.first() {
                    self.cmp_walk(None, Some(first), list.elem, path, c);
                }
                c.removed.insert(path);
            } else {
                if let Some(first) = l.first() {
                    self.cmp_walk(Some(first), None, list.elem, path, c);
                }
                c.added.insert(path);
            }
            path.pop();
        }
    }
}

fn cmp_leaf(lhs: Option<&Value>, rhs: Option<&Value>, path: &[PathElement], c: &mut Comparison) {
    match (lhs, rhs) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        (Some(l), Some(r)) => {
            if !values_equal(r, l) {
                c.modified.insert(path);
            }
        }
    }
}

/// The keys of two maps, those of `lhs` first, with the values on each side.
pub(crate) fn zip_maps<'v>(
    lhs: Option<&'v serde_json::Map<String, Value>>,
    rhs: Option<&'v serde_json::Map<String, Value>>,
) -> Vec<(&'v str, Option<&'v Value>, Option<&'v Value>)> {
    let mut out = Vec::new();
    if let Some(l) = lhs {
        for (k, v) in l {
            out.push((k.as_str(), Some(v), rhs.and_then(|r| r.get(k))));
        }
    }
    if let Some(r) = rhs {
        for (k, v) in r {
            if lhs.is_none_or(|l| !l.contains_key(k)) {
                out.push((k.as_str(), None, Some(v)));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// RemoveItems

impl<'a> Types<'a> {
    /// Removes the fields of `to_remove` from a value (upstream's `TypedValue.RemoveItems`).
    /// A container left empty becomes null, as upstream leaves it.
    pub fn remove_items(&self, v: &Value, to_remove: &FieldSet, ty: Ty<'a>) -> Value {
        let atom = self.atom(ty);
        let atom = atom.deduce(Some(v));
        match atom.handle() {
            Handle::Scalar(_) | Handle::Invalid => v.clone(),
            Handle::List(list) => {
                let Value::Array(items) = v else {
                    return Value::Null;
                };
                if items.is_empty() || !list.associative {
                    return Value::Null;
                }
                let mut out = Vec::new();
                for item in items {
                    let pe = match self.item_element(list, item) {
                        Ok(pe) => pe,
                        Err(_) => {
                            out.push(item.clone());
                            continue;
                        }
                    };
                    if to_remove.has(std::slice::from_ref(&pe)) {
                        continue;
                    }
                    match to_remove.child(&pe) {
                        Some(sub) if !sub.is_empty() => {
                            out.push(self.remove_items(item, sub, list.elem))
                        }
                        _ => out.push(item.clone()),
                    }
                }
                if out.is_empty() {
                    Value::Null
                } else {
                    Value::Array(out)
                }
            }
            Handle::Map(map) => {
                let Value::Object(m) = v else {
                    return Value::Null;
                };
                if m.is_empty() || map.atomic {
                    return Value::Null;
                }
                let mut out = serde_json::Map::new();
                for (k, val) in m {
                    let pe = PathElement::Field(k.clone());
                    if to_remove.has_member(&pe) {
                        continue;
                    }
                    match to_remove.child(&pe) {
                        Some(sub) if !sub.is_empty() => {
                            out.insert(k.clone(), self.remove_items(val, sub, map.field(k)));
                        }
                        _ => {
                            out.insert(k.clone(), val.clone());
                        }
                    }
                }
                if out.is_empty() {
                    Value::Null
                } else {
                    Value::Object(out)
                }
            }
        }
    }

    /// Adds to a set, as members, the declared struct fields that only have children in it
    /// (upstream's `Set.EnsureNamedFieldsAreMembers`).
    pub fn ensure_named_fields_are_members(&self, set: &FieldSet, ty: Option<Ty<'a>>) -> FieldSet {
        let atom = ty.map(|t| self.strict_atom(t)).unwrap_or_default();
        let mut out = FieldSet::new();
        for m in set.members() {
            out.insert_member(m.clone());
        }
        for (pe, child) in set.children() {
            let child_ty = match (pe, &atom.map, &atom.list) {
                (PathElement::Field(name), Some(map), _) => {
                    if map.declared(name).is_some() {
                        out.insert_member(pe.clone());
                    }
                    Some(map.field(name))
                }
                (PathElement::Key(_), _, Some(list)) => Some(list.elem),
                _ => None,
            };
            let ensured = self.ensure_named_fields_are_members(child, child_ty);
            *out.descend(pe.clone()) = ensured;
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Validation

/// One problem found validating a value against the schema, as upstream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Where (`.spec.template.spec.containers[name="nginx"].env`), empty at the root.
    pub path: String,
    /// What (`duplicate entries for key [name="A"]`).
    pub message: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Validation problems, displayed as upstream's `ValidationErrors`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.len() == 1 {
            return write!(f, "{}", self.0[0]);
        }
        f.write_str("errors:")?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Go's `%v` of a structured-merge-diff value (`&{…}`).
fn go_v(v: &Value) -> String {
    fn inner(v: &Value) -> String {
        match v {
            Value::Null => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(f)) => k1s_apimachinery::goformat::float_v(f),
                _ => n.to_string(),
            },
            Value::String(s) => s.clone(),
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(inner).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let parts: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{k}:{}", inner(&m[k.as_str()])))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
        }
    }
    format!("&{{{}}}", inner(v))
}

/// Go's `%#v` of a structured-merge-diff value.
fn go_sharp_v(v: &Value) -> String {
    fn inner(v: &Value) -> String {
        match v {
            Value::Null => "interface {}(nil)".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(f)) => k1s_apimachinery::goformat::float_v(f),
                _ => n.to_string(),
            },
            Value::String(s) => k1s_apimachinery::goformat::quote(s),
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(inner).collect();
                format!("[]interface {{}}{{{}}}", parts.join(", "))
            }
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let parts: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        format!(
                            "{}:{}",
                            k1s_apimachinery::goformat::quote(k),
                            inner(&m[k.as_str()])
                        )
                    })
                    .collect();
                format!("map[string]interface {{}}{{{}}}", parts.join(", "))
            }
        }
    }
    format!("&value.valueUnstructured{{Value:{}}}", inner(v))
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.as_i64().is_some() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// How strictly a value is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Check {
    /// Whether associative lists may repeat a key (upstream's `AllowDuplicates`).
    pub allow_duplicates: bool,
    /// Whether scalar types, container kinds and undeclared fields are checked (upstream's
    /// typed conversion); otherwise only list elements that have no path element are, the
    /// one problem that would make the walkers lose data.
    pub typed: bool,
}

impl Check {
    /// An applied configuration: everything, no duplicates.
    pub const CONFIG: Self = Self {
        allow_duplicates: false,
        typed: true,
    };
    /// A stored or written object: structure only, duplicates allowed.
    pub const OBJECT: Self = Self {
        allow_duplicates: true,
        typed: false,
    };
}

impl<'a> Types<'a> {
    /// Validates a value (upstream's `TypedValue.Validate`), in document order.
    pub fn validate(&self, v: &Value, ty: Ty<'a>, check: Check) -> ValidationErrors {
        let mut errs = Vec::new();
        self.validate_walk(v, ty, check, &mut String::new(), &mut errs);
        ValidationErrors(errs)
    }

    /// Checks `v` at `path`; the path is one buffer extended and cut back around each
    /// child, made into a `String` only for an error (a pod has hundreds of fields, and
    /// this runs on every update).
    fn validate_walk(
        &self,
        v: &Value,
        ty: Ty<'a>,
        check: Check,
        path: &mut String,
        errs: &mut Vec<ValidationError>,
    ) {
        let push = |errs: &mut Vec<ValidationError>, path: &str, message: String| {
            errs.push(ValidationError {
                path: path.to_string(),
                message,
            })
        };
        let atom = if check.typed {
            self.strict_atom(ty)
        } else {
            self.atom(ty)
        };
        if atom.is_empty() {
            push(errs, path, "schema error: invalid atom: inlined".into());
            return;
        }
        let atom = atom.deduce(Some(v));
        match atom.handle() {
            Handle::Invalid => push(errs, path, "schema error: invalid atom: inlined".into()),
            Handle::Scalar(kind) => {
                if v.is_null() || !check.typed {
                    return;
                }
                let msg = match kind {
                    ScalarKind::Numeric if !v.is_number() => Some(format!(
                        "expected numeric (int or float), got {}",
                        go_type_name(v)
                    )),
                    ScalarKind::String if !v.is_string() => {
                        Some(format!("expected string, got {}", go_sharp_v(v)))
                    }
                    ScalarKind::Boolean if !v.is_boolean() => {
                        Some(format!("expected boolean, got {}", go_v(v)))
                    }
                    ScalarKind::Untyped if v.is_array() || v.is_object() => {
                        Some(format!("expected any scalar, got {}", go_v(v)))
                    }
                    _ => None,
                };
                if let Some(m) = msg {
                    push(errs, path, m);
                }
            }
            Handle::List(list) => {
                let items = match v {
                    Value::Array(items) => items,
                    Value::Null => return,
                    other => {
                        if check.typed {
                            push(errs, path, format!("expected list, got {}", go_v(other)));
                        }
                        return;
                    }
                };
                let mut seen: BTreeSet<PathElement> = BTreeSet::new();
                for (i, child) in items.iter().enumerate() {
                    let pe = if !list.associative {
                        PathElement::Index(i as i64)
                    } else {
                        match self.item_element(list, child) {
                            Ok(pe) => pe,
                            Err(e) => {
                                push(errs, path, format!("element {i}: {e}"));
                                return;
                            }
                        }
                    };
                    if list.associative && !seen.insert(pe.clone()) && !check.allow_duplicates {
                        push(errs, path, format!("duplicate entries for key {pe}"));
                    }
                    let len = path.len();
                    let _ = write!(path, "{pe}");
                    self.validate_walk(child, list.elem, check, path, errs);
                    path.truncate(len);
                }
            }
            Handle::Map(map) => {
                let m = match v {
                    Value::Object(m) => m,
                    Value::Null => return,
                    other => {
                        if check.typed {
                            push(errs, path, format!("expected map, got {}", go_v(other)));
                        }
                        return;
                    }
                };
                for (key, val) in m {
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    let ty = match map.declared(key) {
                        Some(t) => t,
                        None if check.typed && matches!(map.elem, Ty::Undeclared) => {
                            push(errs, path, "field not declared in schema".into());
                            path.truncate(len);
                            return;
                        }
                        None => map.elem,
                    };
                    self.validate_walk(val, ty, check, path, errs);
                    path.truncate(len);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reconciling field sets with the schema

impl<'a> Types<'a> {
    /// Rewrites a field set recorded under an older schema: paths inside what is now an
    /// atomic list or map are replaced by the atomic field itself (upstream's
    /// `ReconcileFieldSetWithSchema`). `None` when nothing changes.
    pub fn reconcile(&self, set: &FieldSet, ty: Ty<'a>) -> Option<FieldSet> {
        let mut to_remove = FieldSet::new();
        let mut to_add = FieldSet::new();
        let mut path = Vec::new();
        self.reconcile_walk(Some(set), ty, false, &mut path, &mut to_remove, &mut to_add);
        if to_remove.is_empty() && to_add.is_empty() {
            return None;
        }
        Some(set.recursive_difference(&to_remove).union(&to_add))
    }

    fn reconcile_walk(
        &self,
        set: Option<&FieldSet>,
        ty: Ty<'a>,
        is_atomic: bool,
        path: &mut Vec<PathElement>,
        to_remove: &mut FieldSet,
        to_add: &mut FieldSet,
    ) {
        let atom = self.strict_atom(ty);
        match atom.handle() {
            Handle::Scalar(_) | Handle::Invalid => {}
            Handle::List(list) => {
                if !is_atomic && !list.associative {
                    to_remove.insert(path);
                    to_add.insert(path);
                    return;
                }
                if let Some(set) = set {
                    self.reconcile_children(set, |_| Some(list.elem), path, to_remove, to_add);
                }
            }
            Handle::Map(map) => {
                // An untyped deduced map (no declared fields, deduced or inline untyped values)
                // is left alone.
                let untyped_elem = match map.elem {
                    Ty::Deduced => true,
                    Ty::Node { node, .. } => {
                        node.reference.is_none()
                            && self.atom(map.elem).scalar == Some(ScalarKind::Untyped)
                    }
                    _ => false,
                };
                if map.fields.is_none() && untyped_elem {
                    return;
                }
                if !is_atomic && map.atomic {
                    if set.is_some_and(|s| s.size() > 0) {
                        to_remove.insert(path);
                        to_add.insert(path);
                    }
                    return;
                }
                if let Some(set) = set {
                    let lookup = |pe: &PathElement| -> Option<Ty<'a>> {
                        let t = match pe {
                            PathElement::Field(name) => map.field(name),
                            _ => map.elem,
                        };
                        (!matches!(t, Ty::Undeclared)).then_some(t)
                    };
                    self.reconcile_children(set, lookup, path, to_remove, to_add);
                }
            }
        }
    }

    fn reconcile_children(
        &self,
        set: &FieldSet,
        type_of: impl Fn(&PathElement) -> Option<Ty<'a>>,
        path: &mut Vec<PathElement>,
        to_remove: &mut FieldSet,
        to_add: &mut FieldSet,
    ) {
        let mut visit = |pe: &PathElement, is_member: bool| {
            let Some(t) = type_of(pe) else { return };
            let child = set.child(pe);
            path.push(pe.clone());
            self.reconcile_walk(
                child,
                t,
                is_member && child.is_none(),
                path,
                to_remove,
                to_add,
            );
            path.pop();
        };
        for (pe, _) in set.children() {
            if !set.has_member(pe) {
                visit(pe, false);
            }
        }
        for pe in set.members() {
            visit(pe, true);
        }
    }
}
