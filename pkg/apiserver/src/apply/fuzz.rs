//! Property tests: server-side apply of any configuration, over objects whose
//! `managedFields` came from earlier applies and updates (or from the client), gives an
//! object or an error, never a panic.

use proptest::prelude::*;
use serde_json::Value;

use crate::fuzz::{builtin, config, edited, json_value, objects};
use crate::managed;
use crate::registry::Subresource;
use crate::registry::generic::WriteContext;

fn writer(manager: &str, force: bool, applied: bool) -> WriteContext {
    WriteContext {
        field_manager: manager.to_string(),
        force,
        applied,
        ..WriteContext::default()
    }
}

/// One of the objects, and a configuration for it: an edit of it (directives included,
/// which apply does not know), mostly still naming the object's kind, or any JSON.
fn configuration() -> impl Strategy<Value = (usize, Value)> {
    (0..objects().len()).prop_flat_map(|i| {
        let (_, _, obj) = objects()[i].clone();
        let named =
            (edited(obj.clone()), prop::bool::weighted(0.9)).prop_map(move |(mut c, keep)| {
                if keep && let Value::Object(m) = &mut c {
                    for k in ["apiVersion", "kind"] {
                        m.insert(k.to_string(), obj[k].clone());
                    }
                }
                c
            });
        (Just(i), prop_oneof![6 => named, 1 => json_value()])
    })
}

/// Applies `config` to `current` (or creates from it) as `manager`.
fn apply(
    i: usize,
    current: Option<&Value>,
    config: &Value,
    ctx: &WriteContext,
    sub: Option<Subresource>,
) -> Result<Value, k1s_apimachinery::Status> {
    let b = builtin();
    let (group, plural, _) = objects()[i].clone();
    let res = b.resource(group, plural);
    let schema = b.schema(res);
    match current {
        None => managed::apply_create(config, ctx, &res.info, &schema, &b.defs),
        Some(current) => {
            managed::apply_patch(current, config, ctx, &res.info, sub, &schema, &b.defs)
        }
    }
}

/// The object as created by one apply of itself, with managedFields.
fn applied(i: usize) -> Value {
    let (_, _, obj) = objects()[i].clone();
    match apply(i, None, &obj, &writer("first", false, true), None) {
        Ok(v) => v,
        Err(s) => panic!("applying a valid object failed: {}", s.message),
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn apply_of_any_configuration_gives_an_object_or_an_error(
        (i, config) in configuration(),
        force in any::<bool>(),
        status in any::<bool>(),
    ) {
        let sub = status.then_some(Subresource::Status);
        let ctx = writer("second", force, true);
        if let Ok(v) = apply(i, None, &config, &ctx, None) {
            prop_assert!(v.is_object(), "{v}");
        }
        let current = applied(i);
        if let Ok(v) = apply(i, Some(&current), &config, &ctx, sub) {
            prop_assert!(v.is_object(), "{v}");
            if let Some(m) = v.pointer("/metadata/managedFields") {
                prop_assert!(crate::apply::decode_managed_fields(m).is_ok(), "{m}");
            }
        }
    }

    #[test]
    fn updates_after_applies_track_fields_without_panicking(
        (i, first) in configuration(),
        second in json_value(),
        status in any::<bool>(),
    ) {
        // An apply, then an ordinary write of an edited object by another manager, then
        // an apply again: the field manager merges all three sets of fields.
        let b = builtin();
        let (group, plural, obj) = objects()[i].clone();
        let info = &b.resource(group, plural).info;
        let sub = status.then_some(Subresource::Status);
        let Ok(mut old) = apply(i, Some(&applied(i)), &first, &writer("a", true, true), None) else {
            return Ok(());
        };
        let mut new = crate::patch::apply_merge_patch(&old, &second);
        managed::track_update(&mut new, Some(&mut old), &writer("b", false, false), info, sub, &b.defs);
        let _ = apply(i, Some(&new), &obj, &writer("a", false, true), None);
    }

    #[test]
    fn managed_fields_of_any_shape_are_read_or_refused(
        (i, fields) in (0..objects().len(), json_value()),
    ) {
        // managedFields arrive in update bodies; whatever they hold, reading them and
        // applying over them must not panic.
        let _ = crate::apply::decode_managed_fields(&fields);
        let mut current = applied(i);
        current["metadata"]["managedFields"] = fields;
        let (_, _, obj) = objects()[i].clone();
        let _ = apply(i, Some(&current), &obj, &writer("a", false, true), None);
    }
}
