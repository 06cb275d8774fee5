//! Property tests: a CustomResourceDefinition is request data too. Definitions with
//! edited schemas (types, formats, patterns, defaults, list and map types, int-or-string,
//! preserved unknown fields), printer columns and scale paths are accepted or refused;
//! what is accepted is served, and objects of it (edited as well) are created, read as
//! JSON and as a Table, and patched without a 500 or a panic.

use std::time::{Duration, Instant};

use http::Method;
use http::header::CONTENT_TYPE;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::fuzz::{
    Server, assert_not_internal, assert_readable, check, edited, to_bytes, upstreams_500,
};

const GROUP: &str = "fuzz.example.com";

/// The version of the definition: a schema using most of what structural schemas offer.
fn version() -> Value {
    json!({
        "name": "v1",
        "served": true,
        "storage": true,
        "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                        "name": {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$", "enum": ["a", "b"]},
                        "when": {"type": "string", "format": "date-time"},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "maxItems": 4},
                        "ports": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["port"],
                            "items": {
                                "type": "object",
                                "required": ["port"],
                                "properties": {"port": {"type": "integer"}, "name": {"type": "string"}},
                            },
                        },
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "target": {"x-kubernetes-int-or-string": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "ratio": {"type": "number", "multipleOf": 0.5},
                    },
                },
                "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
            },
        }},
        "subresources": {
            "status": {},
            "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.replicas"},
        },
        "additionalPrinterColumns": [
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Tags", "type": "string", "jsonPath": ".spec.tags[0]"},
        ],
    })
}

/// An object valid under [`version`].
fn widget() -> Value {
    json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {
            "size": 3,
            "name": "a",
            "when": "2024-01-01T00:00:00Z",
            "tags": ["x", "y"],
            "ports": [{"port": 80, "name": "http"}],
            "extra": {"any": [1, {"thing": true}]},
            "target": "50%",
            "labels": {"a": "b"},
            "ratio": 1.5,
        },
    })
}

/// The definition of `widgets<n>`, serving `version`.
fn definition(n: u64, version: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets{n}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": format!("widgets{n}"),
                "singular": format!("widget{n}"),
                "kind": format!("Widget{n}"),
                "listKind": format!("Widget{n}List"),
            },
            "versions": [version],
        },
    })
}

/// Waits until `path` is served (the CRD controller establishes definitions in the
/// background); false when it is not within a second.
fn served(server: &Server, path: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match server.request(Method::GET, path, &[], Vec::new()) {
            Some(a) if a.status != http::StatusCode::NOT_FOUND => return true,
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    false
}

#[test]
fn definitions_and_their_objects_never_fail_the_server() {
    let strategy = (
        prop_oneof![3 => edited(version()), 1 => Just(version())],
        prop_oneof![3 => edited(widget()), 1 => Just(widget())],
        edited(widget()),
    );
    check(64, strategy, |server, (version, object, patch)| {
        let n = server.unique();
        let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
        let json = [(CONTENT_TYPE, "application/json")];
        let Some(a) = server.request(Method::POST, crds, &json, to_bytes(&definition(n, version)))
        else {
            return Ok(());
        };
        assert_not_internal(&a, "creating the definition")?;
        if !a.status.is_success() {
            return Ok(());
        }
        let coll = format!("/apis/{GROUP}/v1/namespaces/default/widgets{n}");
        if !served(server, &coll) {
            // A definition whose schema the controller refuses is not served.
            return Ok(());
        }
        let mut object = object;
        if let Value::Object(m) = &mut object {
            m.insert("kind".into(), json!(format!("Widget{n}")));
        }
        if let Some(a) = server.request(Method::POST, &coll, &json, to_bytes(&object)) {
            assert_not_internal(&a, "creating an object")?;
        }
        let mut valid = widget();
        valid["kind"] = json!(format!("Widget{n}"));
        server.request(Method::POST, &coll, &json, to_bytes(&valid));
        assert_readable(server, &format!("{coll}/w"))?;
        for content_type in [
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ] {
            let uri = format!("{coll}/w?fieldManager=fuzz");
            let answer = server.request(
                Method::PATCH,
                &uri,
                &[(CONTENT_TYPE, content_type)],
                to_bytes(&patch),
            );
            if let Some(a) = answer
                && !upstreams_500(&a, content_type)
            {
                assert_not_internal(&a, &format!("{content_type} patch"))?;
            }
        }
        for sub in ["/status", "/scale"] {
            if let Some(a) = server.request(Method::GET, &format!("{coll}/w{sub}"), &[], Vec::new())
            {
                assert_not_internal(&a, sub)?;
            }
        }
        assert_readable(server, &format!("{coll}/w"))
    });
}
