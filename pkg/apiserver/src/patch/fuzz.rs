//! Property tests: every patch body a client can send, of each of the three patch types,
//! applied to valid objects (a Deployment, a ConfigMap, a Pod), gives a result or a
//! [`PatchError`], never a panic, a stack overflow or unbounded memory.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

use super::*;
use crate::fuzz::{builtin, config, edited, json_value, objects, paths, pointer, to_bytes};

/// One of the three objects, with the schema node of its kind.
fn object() -> impl Strategy<Value = (Value, crate::schema::model::Schema)> {
    (0..objects().len()).prop_map(|i| {
        let (group, plural, obj) = objects()[i].clone();
        let b = builtin();
        (obj, b.schema(b.resource(group, plural)))
    })
}

/// Paths that are not in any object: escapes, the whole document, array ends, indices
/// out of range or not numbers.
const ODD_PATHS: &[&str] = &[
    "",
    "/",
    "/-",
    "/~1",
    "/~2",
    "/~",
    "/~01",
    "/0/1",
    "/a/-",
    "//",
    "metadata/name",
    "/metadata/labels/a~1b",
    "/metadata/finalizers/-",
    "/metadata/finalizers/01",
    "/metadata/finalizers/+0",
    "/metadata/finalizers/ 1",
    "/metadata/finalizers/-1",
    "/metadata/finalizers/-3",
    "/metadata/finalizers/2",
    "/metadata/finalizers/99999999999999999999",
    "/metadata/finalizers/9223372036854775807",
    "/metadata/finalizers/-9223372036854775808",
    "/spec/template/spec/containers/-",
    "/spec/template/spec/containers/0/ports/-",
    "/spec/template/spec/containers/-1/env/0",
    "/spec/replicas/x",
    "/data/a/b",
];

/// A JSON pointer into `doc` (any node, sometimes one level past it) or an odd one.
fn path_in(doc: &Value) -> impl Strategy<Value = String> + use<> {
    let pointers: Vec<String> = paths(doc).iter().map(|p| pointer(p)).collect();
    prop_oneof![
        3 => (any::<Index>(), prop::sample::select(&["", "", "/-", "/0", "/x", "/~1"][..]))
            .prop_map(move |(i, suffix)| format!("{}{suffix}", pointers[i.index(pointers.len())])),
        1 => prop::sample::select(ODD_PATHS).prop_map(str::to_string),
    ]
}

/// A JSON patch operation: a known or unknown `op`, `path` / `from` inside `doc` or not,
/// members missing or of the wrong type.
fn operation(doc: &Value) -> impl Strategy<Value = Value> + use<> {
    let op = prop_oneof![
        20 => prop::sample::select(&["add", "remove", "replace", "move", "copy", "test"][..])
            .prop_map(Value::from),
        1 => json_value(),
    ];
    let pointer = || {
        prop_oneof![
            8 => path_in(doc).prop_map(Value::from),
            1 => json_value(),
        ]
    };
    (
        op,
        prop::option::weighted(0.95, pointer()),
        prop::option::weighted(0.9, pointer()),
        prop::option::weighted(0.8, json_value()),
    )
        .prop_map(|(op, path, from, value)| {
            let mut m = Map::new();
            m.insert("op".into(), op);
            for (k, v) in [("path", path), ("from", from), ("value", value)] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        })
}

/// A JSON patch for the object and the object.
fn json_patch() -> impl Strategy<Value = (Value, Vec<Value>)> {
    object().prop_flat_map(|(doc, _)| {
        let ops = prop::collection::vec(operation(&doc), 0..8);
        (Just(doc), ops)
    })
}

/// Whether an operation replaces the whole document (the one way a JSON patch may turn an
/// object into an array).
fn replaces_document(op: &Value) -> bool {
    op.get("op") == Some(&json!("replace")) && op.get("path") == Some(&json!(""))
}

/// A strategic merge patch of the object: an edit of it, or any JSON value.
fn strategic_patch() -> impl Strategy<Value = (Value, crate::schema::model::Schema, Value)> {
    object().prop_flat_map(|(doc, schema)| {
        let patch = prop_oneof![4 => edited(doc.clone()), 1 => json_value()];
        (Just(doc), Just(schema), patch)
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn json_patch_of_any_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = apply_json_patch(&crate::fuzz::deployment(), &body);
    }

    #[test]
    fn json_patch_of_any_json_never_panics(body in json_value()) {
        let _ = apply_json_patch(&crate::fuzz::configmap(), &to_bytes(&body));
    }

    #[test]
    fn json_patch_operations_apply_or_fail_without_panicking((doc, ops) in json_patch()) {
        let body = to_bytes(&Value::Array(ops.clone()));
        match apply_json_patch(&doc, &body) {
            Ok(v) if !ops.iter().any(replaces_document) => {
                prop_assert!(v.is_object(), "{v}");
            }
            Ok(v) => prop_assert!(v.is_object() || v.is_array(), "{v}"),
            Err(e) => prop_assert!(matches!(e, PatchError::OperationFailed(_)), "{e:?}"),
        }
    }

    #[test]
    fn merge_patch_of_any_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(p) = parse_merge_patch(&body) {
            let _ = apply_merge_patch(&crate::fuzz::pod(), &p);
        }
    }

    #[test]
    fn merge_patches_of_objects_give_objects(
        (doc, _) in object(),
        patch in prop_oneof![edited(crate::fuzz::deployment()), json_value()],
    ) {
        let Ok(patch) = parse_merge_patch(&to_bytes(&patch)) else {
            return Ok(());
        };
        let merged = apply_merge_patch(&doc, &patch);
        if patch.is_object() {
            prop_assert!(merged.is_object(), "{merged}");
        }
    }

    #[test]
    fn strategic_merge_patch_of_any_bytes_never_panics(
        (doc, schema) in object(),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        if let Ok(p) = parse_strategic_merge_patch(&body) {
            let _ = apply_strategic_merge_patch(&doc, &p, &schema, &builtin().defs);
        }
    }

    #[test]
    fn strategic_merge_patches_give_objects_or_errors((doc, schema, patch) in strategic_patch()) {
        let Ok(patch) = parse_strategic_merge_patch(&to_bytes(&patch)) else {
            return Ok(());
        };
        if let Ok(v) = apply_strategic_merge_patch(&doc, &patch, &schema, &builtin().defs) {
            prop_assert!(v.is_object(), "{v}");
        }
    }
}

/// A JSON patch that grows the document: copies of a member into itself (each doubles
/// it) and additions below the deepest point so far (each nests it further).
fn growing_patch() -> impl Strategy<Value = (Value, Vec<Value>)> {
    let step = prop_oneof![Just(None), (1usize..40).prop_map(Some)];
    (object(), prop::collection::vec(step, 1..16)).prop_map(|((doc, _), steps)| {
        let member = if doc.get("spec").is_some() {
            "/spec"
        } else {
            "/data"
        };
        let mut deepest = member.to_string();
        let ops = steps
            .into_iter()
            .enumerate()
            .map(|(i, step)| match step {
                None => json!({"op": "copy", "from": member, "path": format!("{member}/c{i}")}),
                Some(depth) => {
                    let mut value = json!({});
                    for _ in 1..depth {
                        value = json!({ "d": value });
                    }
                    let path = format!("{deepest}/d{i}");
                    deepest = format!("{path}{}", "/d".repeat(depth - 1));
                    json!({"op": "add", "path": path, "value": value})
                }
            })
            .collect();
        (doc, ops)
    })
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn json_patch_results_stay_storable((doc, ops) in growing_patch()) {
        // Without limits each copy doubles the document and each addition nests it
        // deeper; the result must stay small enough to keep and shallow enough to read back.
        let body = to_bytes(&Value::Array(ops));
        if let Ok(v) = apply_json_patch(&doc, &body) {
            let bytes = to_bytes(&v);
            prop_assert!(
                bytes.len() <= to_bytes(&doc).len() + body.len() + MAX_JSON_PATCH_COPY_BYTES,
                "grew to {} bytes", bytes.len()
            );
            prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok(), "cannot be read back");
        }
    }
}

/// `{"d": {"d": … {}}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    (1..levels).fold(json!({}), |v, _| json!({ "d": v }))
}

#[test]
fn json_patch_cannot_nest_the_document_deeper_than_a_body_may() {
    // Found by json_patch_results_stay_storable: additions below earlier additions nested
    // the object past what serde_json reads; it was stored, and every later read of the
    // object (and every list of its collection) failed.
    let cm = crate::fuzz::configmap();
    let below = format!("/data{}", "/d".repeat(99));
    let ops = |second: usize| {
        to_bytes(&json!([
            {"op": "add", "path": "/data", "value": nested(100)},
            {"op": "add", "path": format!("{below}/x"), "value": nested(second)},
        ]))
    };
    // root + 100 + 26 = 127 levels: as deep as a request body may be.
    let v = apply_json_patch(&cm, &ops(26)).expect("127 levels are allowed");
    assert!(serde_json::from_slice::<Value>(&to_bytes(&v)).is_ok());
    match apply_json_patch(&cm, &ops(27)) {
        Err(PatchError::OperationFailed(d)) => assert!(d.contains("128 levels deep"), "{d}"),
        other => panic!("128 levels were accepted: {other:?}"),
    }
}

#[test]
fn json_patch_copies_are_capped_like_upstream() {
    // Each copy of a member into itself doubles it: sixteen operations made a 1 KiB
    // object 64 MiB (and 10 000 would exhaust any memory). Upstream caps what copies add
    // at 3 MiB per patch; so does this.
    let cm = json!({"data": {"a": "x".repeat(1000)}});
    let ops: Vec<Value> = (0..16)
        .map(|i| json!({"op": "copy", "from": "/data", "path": format!("/data/c{i}")}))
        .collect();
    match apply_json_patch(&cm, &to_bytes(&Value::Array(ops))) {
        Err(e @ PatchError::OperationFailed(_)) => {
            assert!(
                e.detail().starts_with(
                    "Unable to complete the copy, the accumulated size increase of copy is"
                ),
                "{e:?}"
            );
            assert_eq!(e.http_status(), 422);
        }
        other => panic!(
            "copies were not capped: {:?}",
            other.map(|v| to_bytes(&v).len())
        ),
    }
}
