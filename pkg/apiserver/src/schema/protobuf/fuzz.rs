//! Property tests: Kubernetes protobuf bodies of any bytes, and valid messages with
//! flipped bits, cuts and insertions, decode into a JSON object or fail with a
//! [`ProtoError`], never a panic; what decodes then goes through the kind's strict
//! decoder without panicking either.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use super::tests::{Enc, meta, object, quantity};
use super::*;
use crate::fuzz::{Body, builtin, config};

/// Metadata with a creation time, labels and a controller owner.
fn owned_meta(name: &str) -> Enc {
    meta(name)
        .msg(8, Enc::new().varint(1, 1_700_000_000))
        .str_entry(11, "app", "web")
        .msg(
            13,
            Enc::new()
                .str(1, "ReplicaSet")
                .str(3, "rs")
                .str(4, "u1")
                .str(5, "apps/v1")
                .varint(6, 1),
        )
        .str(14, "example.com/f")
}

fn container() -> Enc {
    Enc::new()
        .str(1, "app")
        .str(2, "nginx")
        .msg(6, Enc::new().str(1, "http").varint(3, 80).str(4, "TCP"))
        .msg(7, Enc::new().str(1, "A").str(2, "B"))
        .msg(
            8,
            Enc::new()
                .entry(1, "cpu", quantity("500m"))
                .entry(2, "memory", quantity("64Mi")),
        )
}

/// Valid bodies of the kinds kubectl's typed clients send, covering maps, bytes, times,
/// quantities, int-or-strings, packed and repeated fields, embedded raw JSON and an
/// embedded protobuf object.
fn valid_bodies() -> Vec<Vec<u8>> {
    let rolling = Enc::new()
        .msg(1, Enc::new().varint(1, 0).varint(2, 1))
        .msg(2, Enc::new().varint(1, 1).str(3, "25%"));
    let deployment = Enc::new().msg(1, owned_meta("web")).msg(
        2,
        Enc::new()
            .varint(1, 3)
            .msg(2, Enc::new().str_entry(1, "app", "web"))
            .msg(
                3,
                Enc::new()
                    .msg(1, meta("").str_entry(11, "app", "web"))
                    .msg(2, Enc::new().msg(2, container())),
            )
            .msg(4, Enc::new().str(1, "RollingUpdate").msg(2, rolling)),
    );
    let pod = Enc::new()
        .msg(1, owned_meta("p"))
        .msg(2, Enc::new().msg(2, container()).str(10, "node-1"))
        .msg(
            3,
            Enc::new()
                .str(1, "Running")
                .msg(
                    2,
                    Enc::new()
                        .str(1, "Ready")
                        .str(2, "True")
                        .msg(4, Enc::new().varint(1, 1_700_000_100)),
                )
                .msg(7, Enc::new().varint(1, 1_700_000_000).varint(2, 5)),
        );
    let configmap = Enc::new()
        .msg(1, owned_meta("cfg"))
        .str_entry(2, "a", "1")
        .msg(3, Enc::new().str(1, "bin").bytes(2, &[0, 1, 2, 255]));
    let embedded = object("v1", "ConfigMap", configmap.clone());
    let revision = |raw: &[u8]| {
        Enc::new()
            .msg(1, meta("r"))
            .msg(2, Enc::new().bytes(1, raw))
            .varint(3, 2)
    };
    vec![
        object("apps/v1", "Deployment", deployment),
        object("v1", "Pod", pod),
        object("v1", "ConfigMap", configmap),
        object(
            "apps/v1",
            "ControllerRevision",
            revision(br#"{"spec":{"replicas":1,"a":[1,2.5,null,"x"]}}"#),
        ),
        object("apps/v1", "ControllerRevision", revision(&embedded)),
    ]
}

/// A valid body damaged in a few places.
fn damaged_body() -> impl Strategy<Value = Body> {
    let bodies = valid_bodies();
    let edit = (any::<Index>(), any::<u8>(), 0..4u8);
    (0..bodies.len(), prop::collection::vec(edit, 1..4)).prop_map(move |(i, edits)| {
        let mut b = bodies[i].clone();
        for (at, byte, how) in edits {
            // Past the magic, which only decides NotProtobuf.
            let at = MAGIC.len() + at.index(b.len() - MAGIC.len() + 1);
            match how {
                0 if at < b.len() => b[at] ^= 1 << (byte % 8),
                1 if at < b.len() => b[at] = byte,
                2 => b.truncate(at),
                _ => b.insert(at, byte),
            }
        }
        Body(b)
    })
}

/// Runs a decoded object through its kind's strict decoder, as a create would.
fn decode_as_its_kind(mut v: Value) {
    let api_version = v["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = v["kind"].as_str().unwrap_or_default().to_string();
    let b = builtin();
    let found = b
        .resources
        .iter()
        .find(|r| r.info.api_version() == api_version && r.info.kind == kind);
    if let Some(res) = found {
        let _ = crate::schema::decode::decode(&mut v, &b.schema(res), &b.defs);
    }
}

#[test]
fn the_valid_bodies_decode() {
    // The damaged bodies below start from these; they must be valid to begin with.
    for body in valid_bodies() {
        match decode_object(&body) {
            Ok(v) => assert!(v.is_object()),
            Err(e) => panic!("{e}"),
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn damaged_bodies_decode_to_objects_or_fail(body in damaged_body()) {
        if let Ok(v) = decode_object(&body.0) {
            prop_assert!(v["apiVersion"].is_string() && v["kind"].is_string(), "{v}");
            decode_as_its_kind(v);
        }
    }

    #[test]
    fn any_bytes_decode_or_fail(body in prop::collection::vec(any::<u8>(), 0..256), magic in any::<bool>()) {
        let body = if magic { [MAGIC, &body].concat() } else { body };
        if let Ok(v) = decode_object(&body) {
            decode_as_its_kind(v);
        }
    }

    #[test]
    fn every_message_decodes_any_bytes_or_fails(
        m in 0..MESSAGES.len(),
        data in prop::collection::vec(any::<u8>(), 0..96),
    ) {
        let _ = message_value(&MESSAGES[m], &data, 0);
    }
}

#[test]
fn messages_nested_ten_thousand_deep_are_errors_not_stack_overflows() {
    // JSONSchemaProps.not (28) nests a JSONSchemaProps; RawExtension.raw may hold a whole
    // protobuf object again. Neither may recurse once per level of a hostile body.
    let mut props = Enc::new().str(5, "object");
    for _ in 0..10_000 {
        props = Enc::new().msg(28, props);
    }
    let crd = Enc::new().msg(1, meta("c")).msg(
        2,
        Enc::new().msg(7, Enc::new().str(1, "v1").msg(4, Enc::new().msg(1, props))),
    );
    let body = object("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd);
    assert_eq!(decode_object(&body), Err(ProtoError::TooDeep));

    // Each envelope level costs ~50 bytes to build again; a thousand is far past the limit.
    let mut body = object("v1", "ConfigMap", Enc::new());
    for _ in 0..1_000 {
        let revision = Enc::new().msg(2, Enc::new().bytes(1, &body));
        body = object("apps/v1", "ControllerRevision", revision);
    }
    assert_eq!(decode_object(&body), Err(ProtoError::TooDeep));
}
