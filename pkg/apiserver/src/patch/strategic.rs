//! Kubernetes strategic merge patch, as upstream's API server applies it
//! (`k8s.io/apimachinery/pkg/util/strategicpatch`, `StrategicMergeMapPatch` with
//! `MergeParallelList` and `IgnoreUnmatchedNulls`).
//!
//! Rules, per object level of the patch:
//!
//! 1. `$patch: replace` makes the patch object (less the directive) the result;
//!    `$patch: delete` makes the result an empty object; any other `$patch` value is an
//!    error (`$patch: merge` included: it is only meaningful in lists, and there it is an
//!    error too).
//! 2. `$retainKeys: [..]` drops every member of the original not listed (and rejects a
//!    patch that sets a member not listed). Upstream honours it wherever it appears, not
//!    only on fields whose strategy says `retainKeys`.
//! 3. `$setElementOrder/<field>: [..]` merges `<field>` first, then orders it: items named in
//!    the directive in its order, items only the server has kept where they were relative to
//!    their neighbours.
//! 4. Every other member: `null` deletes; `$deleteFromPrimitiveList/<field>` removes those
//!    scalars from the list; a member the original lacks (or has with another JSON type) is
//!    set to the patch value pruned of `null` members and of `$patch` objects; two objects
//!    merge recursively (unless the field's strategy is `replace`); two lists merge when
//!    the field's strategy is `merge` (objects by the merge key, scalars as an ordered
//!    union), otherwise the patch list replaces; scalars replace.
//!
//! In a merging list of objects, an element with `$patch: delete` removes the elements with
//! its merge key, `$patch: replace` makes the list the patch's other elements, and an
//! element without the merge key is an error.
//!
//! Order of a merged list (upstream's `normalizeElementOrder`): the elements the patch
//! names come in the patch's order, the server-only elements in their original order, and
//! the two are interleaved by taking a server-only element first only when both it and the
//! next patch element were in the original list and it came earlier there. So an element
//! new to the server lands *before* the server-only elements that follow it, e.g. patching
//! `[{name: log}]` into `[{name: app}]` gives `[log, app]`. With `$setElementOrder` the
//! directive's order replaces the patch's, and the "original order" is the original list as
//! Go's in-place slice operations left it after the merge (deleting an element shifts the
//! rest left and an appended element reuses the freed slot); this is reproduced because
//! kubectl apply's add-one-delete-another patches depend on it.
//!
//! Schema: the strategy and merge key of a field are read from its property node in the
//! model (falling back to the node it refers to). A field the schema does not know, or a
//! value with no schema, merges with no strategy: objects recursively, lists replaced,
//! directives still honoured, which is how upstream treats fields its OpenAPI lookup finds
//! no information for. (Upstream's struct-tag lookup instead fails with `unable to find api
//! field` when an unknown field holds an object or list on both sides; built-in objects
//! never carry unknown fields, so the difference does not show.) Under a key of a map (a
//! node with only `additionalProperties`), two objects or two lists do not merge: upstream
//! fails there with `merging an object in json but data type is not struct, instead is:
//! map`, and so does this.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::PatchError;
use super::gocompat::{
    GO_MAP, GO_SLICE, GoKind, decode_json, go_kind, go_s, go_type, go_v, json_kind,
};
use crate::schema::model::{Definitions, Schema};

const DIRECTIVE: &str = "$patch";
const DELETE: &str = "delete";
const REPLACE: &str = "replace";
const MERGE: &str = "merge";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

const BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
const BAD_DOCUMENT: &str = "invalid JSON document";
const LIST_OF_LISTS: &str = "lists of lists are not supported";

/// Decodes a strategic merge patch request body the way upstream does: invalid JSON is
/// [`PatchError::Malformed`] with Go's decoder message (400); `null` is an empty patch;
/// anything but an object is [`PatchError::Malformed`] (`json: cannot unmarshal array
/// into Go value of type map[string]interface {}`).
pub fn parse_strategic_merge_patch(body: &[u8]) -> Result<Value, PatchError> {
    match decode_json(body).map_err(PatchError::Malformed)? {
        Value::Null => Ok(Value::Object(Map::new())),
        v @ Value::Object(_) => Ok(v),
        other => Err(not_a_map(&other)),
    }
}

fn not_a_map(v: &Value) -> PatchError {
    PatchError::Malformed(format!(
        "json: cannot unmarshal {} into Go value of type {GO_MAP}",
        json_kind(v)
    ))
}

/// Applies a strategic merge patch to `doc` (an object, as the API server holds it),
/// with `schema` the schema node of the object's kind (often a [`Schema::reference`]),
/// resolved through `defs`.
///
/// Errors and their upstream statuses: [`PatchError::BadDirective`] (400) for malformed
/// `$retainKeys`, `$deleteFromPrimitiveList`, `$setElementOrder` directive keys and for a
/// document that is not an object; [`PatchError::Malformed`] (400) for a patch that is
/// not an object; [`PatchError::Unprocessable`] (422) for lists of lists;
/// [`PatchError::MergeFailed`] (500) for everything else upstream rejects, with upstream's
/// text: `map: map[image:x] does not contain declared merge key: name`, `unknown patch
/// type: foo in map: map[$patch:foo name:a]`, `merging lists cannot yet be specified in
/// the patch`, `list element types are not identical: …`, `The order in patch list: …
/// doesn't match $setElementOrder list: …`.
pub fn apply_strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    schema: &Schema,
    defs: &Definitions,
) -> Result<Value, PatchError> {
    let original = match doc {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::BadDirective(BAD_DOCUMENT.into())),
    };
    let patch = match patch {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => return Err(not_a_map(other)),
    };
    let merger = Merger { defs };
    let merged = merger.merge_map(original, patch, Some(defs.resolve(schema)))?;
    Ok(Value::Object(merged))
}

type Object = Map<String, Value>;

/// What the schema says about one field.
#[derive(Default)]
struct FieldMeta<'a> {
    /// The (resolved) schema of the field's value, or of a list's elements.
    schema: Option<&'a Schema>,
    /// `x-kubernetes-patch-strategy`.
    strategy: Option<&'a str>,
    /// `x-kubernetes-patch-merge-key`.
    merge_key: Option<&'a str>,
}

struct Merger<'a> {
    defs: &'a Definitions,
}

impl<'a> Merger<'a> {
    /// The property node of `key` in `parent` (or its map value node), unresolved: the
    /// patch facts live on the property, which may merely refer to a definition.
    fn property(&self, parent: Option<&'a Schema>, key: &str) -> Option<&'a Schema> {
        let parent = self.defs.resolve(parent?);
        parent
            .properties
            .get(key)
            .or(parent.additional_properties.as_deref())
    }

    /// The patch facts of `key` in `parent`, for merging two objects (or, with `list`,
    /// two lists) found there.
    ///
    /// Upstream looks fields up in Go struct types, and a Go map (a schema node with only
    /// `additionalProperties`) is no struct: merging two objects or lists under a key of a
    /// map fails there (`JSONSchemaProps.properties` of a CustomResourceDefinition is the
    /// built-in case), and so it does here.
    fn field_meta(
        &self,
        parent: Option<&'a Schema>,
        key: &str,
        list: bool,
    ) -> Result<FieldMeta<'a>, PatchError> {
        if let Some(p) = parent.map(|p| self.defs.resolve(p))
            && p.properties.is_empty()
            && p.additional_properties.is_some()
        {
            return Err(PatchError::MergeFailed(
                "merging an object in json but data type is not struct, instead is: map".into(),
            ));
        }
        let Some(prop) = self.property(parent, key) else {
            return Ok(FieldMeta::default());
        };
        let resolved = self.defs.resolve(prop);
        let schema = if list {
            self.defs.items(resolved)
        } else {
            Some(resolved)
        };
        Ok(FieldMeta {
            schema,
            strategy: prop
                .patch_strategy
                .as_deref()
                .or(resolved.patch_strategy.as_deref()),
            merge_key: prop
                .patch_merge_key
                .as_deref()
                .or(resolved.patch_merge_key.as_deref()),
        })
    }

    /// Upstream's `mergeMap`.
    fn merge_map(
        &self,
        original: Object,
        mut patch: Object,
        schema: Option<&'a Schema>,
    ) -> Result<Object, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            return match directive.as_str() {
                Some(REPLACE) => {
                    patch.shift_remove(DIRECTIVE);
                    Ok(patch)
                }
                Some(DELETE) => Ok(Object::new()),
                _ => Err(bad_patch_type(directive, &patch)),
            };
        }
        let mut original = original;
        apply_retain_keys(&mut original, &mut patch)?;
        self.merge_ordered_lists(&mut original, &mut patch, schema)?;

        for (key, patch_v) in patch {
            let (key, delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                let field = extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?;
                (if field.is_empty() { key } else { field }, true)
            } else {
                (key, false)
            };
            if patch_v.is_null() {
                original.shift_remove(&key);
                continue;
            }
            let Some(orig_v) = original.get_mut(&key) else {
                if !delete_list && let Some(v) = added_value(patch_v) {
                    original.insert(key, v);
                }
                continue;
            };
            let kind = go_kind(orig_v);
            if kind != go_kind(&patch_v) {
                if !delete_list {
                    match added_value(patch_v) {
                        Some(v) => *orig_v = v,
                        None => {
                            original.shift_remove(&key);
                        }
                    }
                }
                continue;
            }
            match (std::mem::take(orig_v), patch_v) {
                (Value::Object(o), Value::Object(p)) => {
                    let meta = self.field_meta(schema, &key, false)?;
                    let strategy = patch_strategy(meta.strategy)?;
                    *orig_v = Value::Object(if strategy == REPLACE {
                        p
                    } else {
                        self.merge_map(o, p, meta.schema)?
                    });
                }
                (Value::Array(o), Value::Array(p)) => {
                    let meta = self.field_meta(schema, &key, true)?;
                    let strategy = patch_strategy(meta.strategy)?;
                    let merge_key = meta.merge_key.unwrap_or("");
                    let merged =
                        self.merge_list(o, p, meta.schema, strategy, merge_key, delete_list)?;
                    *orig_v = Value::Array(merged.items);
                }
                (_, p) => match remove_directives(p) {
                    Some(v) => *orig_v = v,
                    None => {
                        original.shift_remove(&key);
                    }
                },
            }
        }
        Ok(original)
    }

    /// Upstream's `mergeSliceHandler`: lists merge only under the `merge` strategy (or as
    /// a `$deleteFromPrimitiveList`); otherwise the patch list replaces, as sent.
    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        elem: Option<&'a Schema>,
        strategy: &str,
        merge_key: &str,
        delete_list: bool,
    ) -> Result<MergedList, PatchError> {
        if strategy == MERGE || delete_list {
            self.merge_slice(original, patch, elem, merge_key, delete_list)
        } else {
            Ok(MergedList {
                backing: original,
                items: patch,
            })
        }
    }

    /// Upstream's `mergeSlice`.
    fn merge_slice(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        elem: Option<&'a Schema>,
        merge_key: &str,
        delete_list: bool,
    ) -> Result<MergedList, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(MergedList {
                backing: Vec::new(),
                items: original,
            });
        }
        let kind = element_kind(&[&original, &patch])?;
        if kind != GoKind::Map {
            if delete_list {
                let items = original
                    .iter()
                    .filter(|v| !patch.contains(v))
                    .cloned()
                    .collect();
                return Ok(MergedList {
                    backing: original,
                    items,
                });
            }
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(patch.iter()) {
                if !merged.contains(v) {
                    merged.push(v.clone());
                }
            }
            let (in_patch, server_only) = partition(merged, &patch, merge_key)?;
            let items =
                normalize_element_order(in_patch, server_only, &patch, &original, merge_key, kind)?;
            return Ok(MergedList {
                backing: original,
                items,
            });
        }
        if merge_key.is_empty() {
            return Err(PatchError::MergeFailed(
                "cannot merge lists without merge key for struct".into(),
            ));
        }
        let mut list = GoSlice::new(original);
        let (plain, replaced) = apply_special_elements(&mut list, patch, merge_key)?;
        let (server_order, patch, merged) = if replaced {
            // The list becomes the patch's plain elements, a fresh slice.
            (plain.clone(), Vec::new(), plain)
        } else {
            let server_order = list.view().to_vec();
            self.merge_by_key(&mut list, &plain, merge_key, elem)?;
            (server_order, plain, list.view().to_vec())
        };
        let (in_patch, server_only) = partition(merged, &patch, merge_key)?;
        let items = normalize_element_order(
            in_patch,
            server_only,
            &patch,
            &server_order,
            merge_key,
            kind,
        )?;
        Ok(MergedList {
            backing: list.backing(),
            items,
        })
    }

    /// Upstream's `mergeSliceWithoutSpecialElements`: merge each patch element into the
    /// original element with the same merge key, or append it.
    fn merge_by_key(
        &self,
        list: &mut GoSlice,
        patch: &[Value],
        merge_key: &str,
        elem: Option<&'a Schema>,
    ) -> Result<(), PatchError> {
        for v in patch {
            let Value::Object(p) = v else {
                return Err(bad_arg_type(GO_MAP, v));
            };
            let Some(key_value) = p.get(merge_key) else {
                return Err(no_merge_key(v, merge_key));
            };
            let found = list
                .view()
                .iter()
                .position(|o| o.as_object().and_then(|m| m.get(merge_key)) == Some(key_value));
            match found {
                Some(i) => {
                    let current = match std::mem::take(&mut list.buf[i]) {
                        Value::Object(m) => m,
                        _ => Object::new(),
                    };
                    list.buf[i] = Value::Object(self.merge_map(current, p.clone(), elem)?);
                }
                None => list.push(v.clone()),
            }
        }
        Ok(())
    }

    /// Upstream's `mergePatchIntoOriginal`: every `$setElementOrder/<field>` merges
    /// `<field>` and orders the result; both keys leave the patch.
    fn merge_ordered_lists(
        &self,
        original: &mut Object,
        patch: &mut Object,
        schema: Option<&'a Schema>,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for key in keys {
            let Some(order) = patch.shift_remove(&key) else {
                continue;
            };
            let Value::Array(order) = order else {
                return Err(bad_arg_type(GO_SLICE, &order));
            };
            let field = extract_key(&key, SET_ELEMENT_ORDER)?;
            let original_list = list_member(original, &field)?;
            let patch_list = list_member(patch, &field)?;
            let meta = self.field_meta(schema, &field, true)?;
            let strategy = patch_strategy(meta.strategy)?;
            let merge_key = meta.merge_key.unwrap_or("");
            validate_patch_with_order(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;

            let patch_items = patch_list.clone().unwrap_or_default();
            let (merged, original_items) = match (original_list, patch_list) {
                (Some(o), None) => (o.clone(), o),
                (None, Some(p)) => match remove_directives(Value::Array(p)) {
                    Some(Value::Array(a)) => (a, Vec::new()),
                    _ => continue,
                },
                (Some(o), Some(p)) => {
                    let merged = self.merge_list(o, p, meta.schema, strategy, merge_key, false)?;
                    (merged.items, merged.backing)
                }
                (None, None) => continue,
            };
            let (in_order, server_only) = partition(merged, &order, merge_key)?;
            let kind = element_kind(&[&original_items, &patch_items])?;
            let ordered = normalize_element_order(
                in_order,
                server_only,
                &order,
                &original_items,
                merge_key,
                kind,
            )?;
            original.insert(field.clone(), Value::Array(ordered));
            patch.shift_remove(&field);
        }
        Ok(())
    }
}

/// The list under `field`, if any; an error if it is there but not a list.
fn list_member(map: &Object, field: &str) -> Result<Option<Vec<Value>>, PatchError> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a.clone())),
        Some(other) => Err(bad_arg_type(GO_SLICE, other)),
    }
}

/// The strategy other than `retainKeys` (which only matters when building patches).
fn patch_strategy(strategy: Option<&str>) -> Result<&str, PatchError> {
    let Some(strategy) = strategy else {
        return Ok("");
    };
    let parts: Vec<&str> = strategy.split(',').collect();
    match parts.as_slice() {
        [one] if *one == RETAIN_KEYS_STRATEGY => Ok(""),
        [one] => Ok(one),
        [a, b] if *a == RETAIN_KEYS_STRATEGY => Ok(b),
        [a, b] if *b == RETAIN_KEYS_STRATEGY => Ok(a),
        _ => Err(PatchError::MergeFailed(format!(
            "unexpected patch strategy: [{}]",
            parts.join(" ")
        ))),
    }
}

/// The field name after `<prefix>/`.
fn extract_key(key: &str, prefix: &str) -> Result<String, PatchError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field.to_string()),
        _ => Err(PatchError::BadDirective(
            if prefix == DELETE_FROM_PRIMITIVE_LIST {
                BAD_PRIMITIVE_LIST
            } else {
                BAD_SET_ELEMENT_ORDER
            }
            .into(),
        )),
    }
}

/// Upstream's `applyRetainKeysDirective`.
fn apply_retain_keys(original: &mut Object, patch: &mut Object) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadDirective(BAD_RETAIN_KEYS.into()));
    };
    let retained = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(k) {
            return Err(PatchError::BadDirective(BAD_RETAIN_KEYS.into()));
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// A patch value for a member the original lacks: without `null` members, and without
/// objects carrying a `$patch` directive (`None` when the value itself carries one).
fn added_value(mut v: Value) -> Option<Value> {
    discard_nulls(&mut v);
    remove_directives(v)
}

fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            for item in m.values_mut() {
                discard_nulls(item);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Upstream's `removeDirectives`: drops every object that has a `$patch` member.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                m.into_iter()
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Upstream's `sliceElementType`: every element of the lists must have the same Go type,
/// and not be a list.
fn element_kind(lists: &[&[Value]]) -> Result<GoKind, PatchError> {
    let mut kind: Option<GoKind> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = go_kind(v);
        match kind {
            None if k == GoKind::Slice => {
                return Err(PatchError::Unprocessable(LIST_OF_LISTS.into()));
            }
            None if k != GoKind::Nil => kind = Some(k),
            Some(prev) if prev == k => {}
            _ => {
                let printed: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(PatchError::MergeFailed(format!(
                    "list element types are not identical: {}",
                    go_v(&Value::Array(printed))
                )));
            }
        }
    }
    kind.ok_or_else(|| PatchError::MergeFailed("no elements in any of the given slices".into()))
}

/// Upstream's `mergeSliceWithSpecialElements`: applies the `$patch` elements of a
/// list of objects to `list` (deletions shift it in place, as Go's `append` does) and
/// returns the patch's ordinary elements and whether a `$patch: replace` was among them.
fn apply_special_elements(
    list: &mut GoSlice,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, bool), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Some(directive) = v.as_object().and_then(|m| m.get(DIRECTIVE)) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let Some(key_value) = v.get(merge_key) else {
                    return Err(no_merge_key(&v, merge_key));
                };
                while let Some(i) = list
                    .view()
                    .iter()
                    .position(|o| o.as_object().and_then(|m| m.get(merge_key)) == Some(key_value))
                {
                    list.remove(i);
                }
            }
            Some(REPLACE) => replace = true,
            Some(MERGE) => {
                return Err(PatchError::MergeFailed(
                    "merging lists cannot yet be specified in the patch".into(),
                ));
            }
            _ => {
                let m = v.as_object().cloned().unwrap_or_default();
                return Err(bad_patch_type(directive, &m));
            }
        }
    }
    Ok((plain, replace))
}

/// A merged list, and what became of the original list's storage.
struct MergedList {
    /// The original list as Go's slice header over the shared array sees it after the
    /// merge: deletions shift elements left in place and appends reuse the freed slots.
    /// Upstream orders `$setElementOrder` lists by this (aliased) view, so reproducing
    /// it is what makes "add one item and delete another" come out in upstream's order.
    backing: Vec<Value>,
    /// The merged list.
    items: Vec<Value>,
}

/// A Go slice over an array it shares with the caller's slice of the original list:
/// `buf[..len]` is this slice, `buf[..orig_len]` what the caller sees.
struct GoSlice {
    buf: Vec<Value>,
    len: usize,
    orig_len: usize,
}

impl GoSlice {
    fn new(items: Vec<Value>) -> Self {
        let len = items.len();
        Self {
            buf: items,
            len,
            orig_len: len,
        }
    }

    fn view(&self) -> &[Value] {
        &self.buf[..self.len]
    }

    /// `s = append(s[:i], s[i+1:]...)`: shifts the tail left, the last slot keeps its value.
    fn remove(&mut self, i: usize) {
        for j in i..self.len - 1 {
            self.buf[j] = self.buf[j + 1].clone();
        }
        self.len -= 1;
    }

    /// `s = append(s, v)`: writes into the shared array while there is room.
    fn push(&mut self, v: Value) {
        if self.len < self.buf.len() {
            self.buf[self.len] = v;
        } else {
            self.buf.push(v);
        }
        self.len += 1;
    }

    /// What the caller's slice of the original list holds now.
    fn backing(mut self) -> Vec<Value> {
        self.buf.truncate(self.orig_len);
        self.buf
    }
}

/// Splits `items` into those present in `by` (by merge key, or by value for scalars) and
/// the rest, both in their order in `items`.
fn partition(
    items: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::with_capacity(items.len());
    let mut absent = Vec::new();
    for v in items {
        let found = if merge_key.is_empty() {
            by.contains(&v)
        } else {
            let Value::Object(m) = &v else {
                return Err(bad_arg_type(GO_MAP, &v));
            };
            let Some(key_value) = m.get(merge_key) else {
                return Err(no_merge_key(&v, merge_key));
            };
            let mut found = false;
            for (i, b) in by.iter().enumerate() {
                let Value::Object(bm) = b else {
                    return Err(PatchError::MergeFailed(format!(
                        "value for key {i} is not a map"
                    )));
                };
                if bm.get(merge_key) == Some(key_value) {
                    found = true;
                    break;
                }
            }
            found
        };
        if found {
            present.push(v)
        } else {
            absent.push(v)
        }
    }
    Ok((present, absent))
}

/// Upstream's `validatePatchWithSetOrderList`: the patch list's elements must appear in
/// the order list, in the same relative order.
fn validate_patch_with_order(
    patch: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut kept: Vec<&Value> = Vec::with_capacity(patch.len());
    for v in patch {
        if merge_key.is_empty() {
            kept.push(v);
            continue;
        }
        let Value::Object(m) = v else {
            return Err(bad_arg_type(GO_MAP, v));
        };
        if m.get(DIRECTIVE).and_then(Value::as_str) != Some(DELETE) {
            kept.push(v);
        }
    }
    let (mut pi, mut oi) = (0, 0);
    while pi < kept.len() && oi < order.len() {
        if kept[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE))
        {
            pi += 1;
            continue;
        }
        if merge_key_equal(kept[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < kept.len() && oi >= order.len() {
        return Err(PatchError::MergeFailed(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_v(&Value::Array(patch.to_vec())),
            go_v(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let key_of = |v: &Value| -> Result<Value, PatchError> {
        let Value::Object(m) = v else {
            return Err(bad_arg_type(GO_MAP, v));
        };
        m.get(merge_key)
            .cloned()
            .ok_or_else(|| no_merge_key(v, merge_key))
    };
    Ok(key_of(left)? == key_of(right)?)
}

/// Upstream's `normalizeElementOrder`: orders the patch's items by `patch_order` and the
/// server-only items by `server_order`, then interleaves them.
fn normalize_element_order(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Result<Vec<Value>, PatchError> {
    let in_patch = normalize_slice_order(in_patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted(
        server_only,
        in_patch,
        server_order,
        merge_key,
        kind,
    ))
}

/// Upstream's `normalizeSliceOrder`: a stable sort by position in `order` (deletion
/// directives last).
fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Result<Vec<Value>, PatchError> {
    let mut items = items;
    let mut deletions = Vec::new();
    if kind == GoKind::Map {
        for v in items.iter().chain(order.iter()) {
            let Value::Object(m) = v else {
                return Err(bad_arg_type(GO_MAP, v));
            };
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(v, merge_key));
            }
        }
        let (keep, delete): (Vec<Value>, Vec<Value>) = items.into_iter().partition(|v| {
            v.as_object()
                .and_then(|m| m.get(DIRECTIVE))
                .and_then(Value::as_str)
                != Some(DELETE)
        });
        items = keep;
        deletions = delete;
    }
    let positions = Positions::new(order, merge_key, kind);
    let mut keyed: Vec<(Option<usize>, Value)> =
        items.into_iter().map(|v| (positions.of(&v), v)).collect();
    go_stable_sort(&mut keyed, |a, b| match (a.0, b.0) {
        (Some(i), Some(j)) => i < j,
        _ => true,
    });
    let mut items: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    items.extend(deletions);
    Ok(items)
}

/// Upstream's `index` over one list, precomputed: the first position of an item (by
/// merge key value for objects, where a missing or null key matches another missing or
/// null key; by value for scalars).
struct Positions {
    first: HashMap<String, usize>,
    merge_key: Option<String>,
}

impl Positions {
    fn new(list: &[Value], merge_key: &str, kind: GoKind) -> Self {
        let mut p = Self {
            first: HashMap::with_capacity(list.len()),
            merge_key: (kind == GoKind::Map).then(|| merge_key.to_string()),
        };
        for (i, v) in list.iter().enumerate() {
            p.first.entry(p.key(v)).or_insert(i);
        }
        p
    }

    /// The identity an item is looked up by: its JSON text (equal values print equally),
    /// or that of its merge key value; the empty string, which no JSON text is, stands
    /// for a missing key.
    fn key(&self, v: &Value) -> String {
        match &self.merge_key {
            Some(k) => v
                .as_object()
                .and_then(|m| m.get(k))
                .filter(|k| !k.is_null())
                .map(Value::to_string)
                .unwrap_or_default(),
            None => v.to_string(),
        }
    }

    fn of(&self, v: &Value) -> Option<usize> {
        self.first.get(&self.key(v)).copied()
    }
}

/// Upstream's `mergeSortedSlice`: interleaves `left` (server-only items) into `right`
/// (patch items), taking a left item first only when both are in `server_order` and the
/// left one comes earlier there.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Vec<Value> {
    let positions = Positions::new(server_order, merge_key, kind);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().map(|v| (positions.of(&v), v)).peekable();
    let mut right = right.into_iter().map(|v| (positions.of(&v), v)).peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (l.0, r.0) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next.map(|(_, v)| v));
    }
    out
}

/// Go's `sort.SliceStable` (insertion sort of blocks of 20, then in-place symmetric
/// merges), reproduced step for step so that even an inconsistent `less` orders
/// elements as upstream does.
fn go_stable_sort<T>(data: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = data.len();
    let less_at = |d: &[T], i: usize, j: usize| less(&d[i], &d[j]);
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion_sort(data, a, b, &less_at);
        a = b;
        b += block;
    }
    insertion_sort(data, a, n, &less_at);
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            sym_merge(data, a, a + block, b, &less_at);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(data, a, m, n, &less_at);
        }
        block *= 2;
    }
}

fn insertion_sort<T>(
    data: &mut [T],
    a: usize,
    b: usize,
    less: &impl Fn(&[T], usize, usize) -> bool,
) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(data, j, j - 1) {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn sym_merge<T>(
    data: &mut [T],
    a: usize,
    m: usize,
    b: usize,
    less: &impl Fn(&[T], usize, usize) -> bool,
) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(data, h, a) { i = h + 1 } else { j = h }
        }
        for k in a..i.saturating_sub(1) {
            data.swap(k, k + 1);
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(data, m, h) { i = h + 1 } else { j = h }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(data, p - c, c) {
            start = c + 1
        } else {
            r = c
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(data, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(data, mid, end, b, less);
    }
}

/// Go's `rotate`: swaps the blocks `[a, m)` and `[m, b)` by block swaps.
fn rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let (mut i, mut j) = (m - a, b - m);
    while i != j {
        if i > j {
            swap_range(data, m - i, m, j);
            i -= j;
        } else {
            swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(data, m - i, m, i);
}

fn swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

fn no_merge_key(v: &Value, merge_key: &str) -> PatchError {
    PatchError::MergeFailed(format!(
        "map: {} does not contain declared merge key: {merge_key}",
        go_v(v)
    ))
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    PatchError::MergeFailed(format!(
        "expected a {expected}, but received a {}",
        go_type(actual)
    ))
}

fn bad_patch_type(directive: &Value, map: &Object) -> PatchError {
    PatchError::MergeFailed(format!(
        "unknown patch type: {} in map: {}",
        go_s(directive),
        go_v(&Value::Object(map.clone()))
    ))
}

#[cfg(test)]
mod sort_tests {
    use super::go_stable_sort;

    #[test]
    fn stable_sort_sorts_long_inputs_stably() {
        // Pairs sorted by their first member only; the second records input order.
        let mut v: Vec<(u32, usize)> = (0..97).map(|i| ((i * 37 % 11) as u32, i)).collect();
        go_stable_sort(&mut v, |a, b| a.0 < b.0);
        for w in v.windows(2) {
            assert!(
                w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1),
                "{w:?}"
            );
        }
    }
}
