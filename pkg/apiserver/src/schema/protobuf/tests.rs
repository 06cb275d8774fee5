//! Decoding hand-built protobuf bodies, the shapes kubectl's typed clients send.

use rand::{Rng, SeedableRng};
use serde_json::json;

use super::*;

/// A tiny protobuf encoder: enough to build the bodies Go's generated code writes.
#[derive(Default, Clone)]
pub(super) struct Enc(pub(super) Vec<u8>);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Enc {
    pub(super) fn new() -> Self {
        Self::default()
    }
    pub(super) fn key(mut self, n: u32, wire: u8) -> Self {
        put_varint(&mut self.0, (u64::from(n) << 3) | u64::from(wire));
        self
    }
    pub(super) fn varint(self, n: u32, v: u64) -> Self {
        let mut e = self.key(n, 0);
        put_varint(&mut e.0, v);
        e
    }
    pub(super) fn bytes(self, n: u32, b: &[u8]) -> Self {
        let mut e = self.key(n, 2);
        put_varint(&mut e.0, b.len() as u64);
        e.0.extend_from_slice(b);
        e
    }
    pub(super) fn str(self, n: u32, s: &str) -> Self {
        self.bytes(n, s.as_bytes())
    }
    pub(super) fn msg(self, n: u32, m: Enc) -> Self {
        self.bytes(n, &m.0)
    }
    /// A map entry {key = 1, value = 2}.
    pub(super) fn entry(self, n: u32, k: &str, v: Enc) -> Self {
        self.msg(n, Enc::new().str(1, k).msg(2, v))
    }
    pub(super) fn str_entry(self, n: u32, k: &str, v: &str) -> Self {
        self.msg(n, Enc::new().str(1, k).str(2, v))
    }
}

/// The envelope: magic, then runtime.Unknown {typeMeta = 1 {apiVersion, kind}, raw = 2}.
pub(super) fn object(api_version: &str, kind: &str, raw: Enc) -> Vec<u8> {
    let unknown = Enc::new()
        .msg(1, Enc::new().str(1, api_version).str(2, kind))
        .msg(2, raw)
        .str(3, "")
        .str(4, "");
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&unknown.0);
    out
}

/// ObjectMeta as Go writes it: every non-pointer field, zero or not.
pub(super) fn meta(name: &str) -> Enc {
    Enc::new()
        .str(1, name)
        .str(2, "")
        .str(3, "")
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .varint(7, 0)
        .msg(8, Enc::new())
}

pub(super) fn quantity(s: &str) -> Enc {
    Enc::new().str(1, s)
}

#[test]
fn namespace_drops_go_zero_values_and_keeps_empty_structs() {
    // kubectl create namespace: Go writes namespace "", uid "", generation 0 and an empty
    // creationTimestamp; JSON would have had none of them but `creationTimestamp: null`.
    let body = object(
        "v1",
        "Namespace",
        Enc::new()
            .msg(1, meta("x"))
            .msg(2, Enc::new())
            .msg(3, Enc::new().str(1, "")),
    );
    assert_eq!(
        decode_object(&body).unwrap(),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "x", "creationTimestamp": null},
            "spec": {},
            "status": {},
        })
    );
}

#[test]
fn deployment_keeps_zero_replicas_and_decodes_ports_resources_env() {
    // replicas is *int32: a present 0 means "scale to zero", not "default to 1".
    let container = Enc::new()
        .str(1, "d")
        .str(2, "busybox")
        .msg(
            6,
            Enc::new()
                .str(1, "")
                .varint(2, 0)
                .varint(3, 80)
                .str(4, "TCP")
                .str(5, ""),
        )
        .msg(7, Enc::new().str(1, "A").str(2, "B"))
        .msg(
            8,
            Enc::new()
                .entry(1, "cpu", quantity("500m"))
                .entry(2, "memory", quantity("64Mi")),
        )
        .str(13, "")
        .str(14, "")
        .varint(16, 0);
    let spec = Enc::new()
        .varint(1, 0)
        .msg(2, Enc::new().str_entry(1, "app", "d"))
        .msg(
            3,
            Enc::new()
                .msg(1, meta("").str_entry(11, "app", "d"))
                .msg(2, Enc::new().msg(2, container)),
        )
        .msg(4, Enc::new())
        .varint(5, 0)
        .varint(7, 0);
    let body = object(
        "apps/v1",
        "Deployment",
        Enc::new().msg(1, meta("d")).msg(2, spec),
    );
    let v = decode_object(&body).unwrap();
    assert_eq!(v["apiVersion"], "apps/v1");
    assert_eq!(v["kind"], "Deployment");
    assert_eq!(v["spec"]["replicas"], 0);
    assert!(v["spec"].get("minReadySeconds").is_none());
    assert!(v["spec"].get("paused").is_none());
    assert_eq!(v["spec"]["selector"], json!({"matchLabels": {"app": "d"}}));
    assert_eq!(
        v["spec"]["template"]["metadata"],
        json!({"labels": {"app": "d"}, "creationTimestamp": null})
    );
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"],
        json!([{
            "name": "d",
            "image": "busybox",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "B"}],
            "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
        }])
    );
}

#[test]
fn configmap_binary_data_and_secret_data_are_base64() {
    let body = object(
        "v1",
        "ConfigMap",
        Enc::new()
            .msg(1, meta("c"))
            .str_entry(2, "a", "b")
            .msg(3, Enc::new().str(1, "bin").bytes(2, &[0, 1, 2, 255])),
    );
    let v = decode_object(&body).unwrap();
    assert_eq!(v["data"], json!({"a": "b"}));
    assert_eq!(v["binaryData"], json!({"bin": "AAEC/w=="}));

    let body = object(
        "v1",
        "Secret",
        Enc::new()
            .msg(1, meta("s"))
            .msg(2, Enc::new().str(1, "a").bytes(2, b"b"))
            .msg(2, Enc::new().str(1, "empty"))
            .str(3, "Opaque"),
    );
    let v = decode_object(&body).unwrap();
    assert_eq!(v["data"], json!({"a": "Yg==", "empty": ""}));
    assert_eq!(v["type"], "Opaque");
}

#[test]
fn service_target_port_is_a_number_or_a_string() {
    let port = |n: u64, target: Enc| {
        Enc::new()
            .str(1, "")
            .str(2, "TCP")
            .varint(3, n)
            .msg(4, target)
            .varint(5, 0)
    };
    let body = object(
        "v1",
        "Service",
        Enc::new().msg(1, meta("s")).msg(
            2,
            Enc::new()
                .msg(
                    1,
                    port(80, Enc::new().varint(1, 0).varint(2, 8080).str(3, "")),
                )
                .msg(
                    1,
                    port(81, Enc::new().varint(1, 1).varint(2, 0).str(3, "http")),
                )
                .msg(1, port(82, Enc::new()))
                .str(4, "ClusterIP"),
        ),
    );
    let v = decode_object(&body).unwrap();
    assert_eq!(
        v["spec"],
        json!({
            "ports": [
                {"protocol": "TCP", "port": 80, "targetPort": 8080},
                {"protocol": "TCP", "port": 81, "targetPort": "http"},
                {"protocol": "TCP", "port": 82, "targetPort": 0},
            ],
            "type": "ClusterIP",
        })
    );
}

#[test]
fn timestamps_are_rfc3339_and_micro_time_has_six_digits() {
    let body = object(
        "v1",
        "Namespace",
        Enc::new().msg(
            1,
            Enc::new()
                .str(1, "x")
                .msg(8, Enc::new().varint(1, 1_704_164_645))
                .msg(
                    9,
                    Enc::new().varint(1, 1_704_164_645).varint(2, 500_000_000),
                ),
        ),
    );
    let v = decode_object(&body).unwrap();
    assert_eq!(v["metadata"]["creationTimestamp"], "2024-01-02T03:04:05Z");
    assert_eq!(v["metadata"]["deletionTimestamp"], "2024-01-02T03:04:05Z");

    let body = object(
        "events.k8s.io/v1",
        "Event",
        Enc::new()
            .msg(1, meta("e"))
            .msg(
                2,
                Enc::new().varint(1, 1_704_164_645).varint(2, 123_456_789),
            )
            .str(7, "Started"),
    );
    let v = decode_object(&body).unwrap();
    assert_eq!(v["eventTime"], "2024-01-02T03:04:05.123456Z");
    assert_eq!(v["reason"], "Started");
    assert_eq!(
        time(0, 0, false).unwrap(),
        json!("1970-01-01T00:00:00Z"),
        "a present epoch is not Go's zero time"
    );
    assert_eq!(
        time(-1, 0, true).unwrap(),
        json!("1969-12-31T23:59:59.000000Z")
    );
    assert_eq!(
        time(951_782_400, 0, false).unwrap(),
        json!("2000-02-29T00:00:00Z")
    );
    assert!(time(i64::MAX, 0, false).is_err());
}

#[test]
fn durations_print_as_go_does() {
    for (ns, s) in [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (150_000_000, "150ms"),
        (1_000_000_000, "1s"),
        (90_000_000_000, "1m30s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (3_600_000_000_000, "1h0m0s"),
        (-2_000_000_000, "-2s"),
    ] {
        assert_eq!(go_duration(ns), s, "{ns}");
    }
}

#[test]
fn inline_fields_merge_into_the_parent_and_packed_repeated_scalars_decode() {
    // Volume embeds VolumeSource with json:",inline"; PodSecurityContext.supplementalGroups
    // may arrive packed or one element per key.
    let pod_spec = Enc::new()
        .msg(
            1,
            Enc::new().str(1, "v").msg(2, Enc::new().msg(2, Enc::new())),
        )
        .msg(14, {
            let mut packed = Vec::new();
            put_varint(&mut packed, 1);
            put_varint(&mut packed, 300);
            Enc::new().bytes(4, &packed).varint(4, 7)
        });
    let body = object("v1", "Pod", Enc::new().msg(1, meta("p")).msg(2, pod_spec));
    let v = decode_object(&body).unwrap();
    assert_eq!(v["spec"]["volumes"], json!([{"name": "v", "emptyDir": {}}]));
    assert_eq!(
        v["spec"]["securityContext"]["supplementalGroups"],
        json!([1, 300, 7])
    );
}

#[test]
fn raw_extension_embeds_json_and_delete_options_decode_in_any_group() {
    let body = object(
        "apps/v1",
        "ControllerRevision",
        Enc::new()
            .msg(1, meta("r"))
            .msg(2, Enc::new().bytes(1, br#"{"a":[1,true]}"#))
            .varint(3, 2),
    );
    let v = decode_object(&body).unwrap();
    assert_eq!(v["data"], json!({"a": [1, true]}));
    assert_eq!(v["revision"], 2);

    let body = object(
        "apps/v1",
        "DeleteOptions",
        Enc::new().varint(1, 0).str(4, "Foreground").str(5, "All"),
    );
    assert_eq!(
        decode_object(&body).unwrap(),
        json!({
            "apiVersion": "apps/v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        })
    );
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    // Newer clients may send fields this server's layouts do not know yet.
    let mut raw = Enc::new().varint(99, 5).bytes(100, b"xyz").key(101, 5);
    raw.0.extend_from_slice(&[1, 2, 3, 4]);
    let mut raw = raw.key(102, 1);
    raw.0.extend_from_slice(&[0; 8]);
    let body = object("v1", "Namespace", raw.msg(1, meta("x")));
    assert_eq!(decode_object(&body).unwrap()["metadata"]["name"], "x");
}

#[test]
fn bad_magic_truncation_unknown_kinds_and_wrong_wire_types_are_errors() {
    assert_eq!(
        decode_object(b"{\"kind\":\"Namespace\"}"),
        Err(ProtoError::NotProtobuf)
    );
    assert_eq!(decode_object(b""), Err(ProtoError::NotProtobuf));

    // Every cut is an error but the one between typeMeta and raw (an empty object).
    let body = object("v1", "Namespace", Enc::new().msg(1, meta("x")));
    let type_meta = Enc::new().msg(1, Enc::new().str(1, "v1").str(2, "Namespace"));
    let boundary = MAGIC.len() + type_meta.0.len();
    let raw_end = body.len() - 4; // contentEncoding and contentType, both empty, follow
    for cut in MAGIC.len()..raw_end {
        let r = decode_object(&body[..cut]);
        assert_eq!(r.is_ok(), cut == boundary, "cut at {cut}: {r:?}");
    }

    let e = decode_object(&object("v1", "Frobnicator", Enc::new())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no kind \"Frobnicator\" is registered for version \"v1\""
    );
    assert!(matches!(
        decode_object(&object("example.com/v1", "Namespace", Enc::new())),
        Err(ProtoError::UnknownKind { .. })
    ));
    assert!(matches!(
        decode_object(&object("v1", "", Enc::new())),
        Err(ProtoError::UnknownKind { .. })
    ));

    // metadata (a message) sent as a varint.
    let e = decode_object(&object("v1", "Namespace", Enc::new().varint(1, 3))).unwrap_err();
    assert!(
        matches!(
            e,
            ProtoError::WireType {
                field: "metadata",
                ..
            }
        ),
        "{e}"
    );
    // A string sent as a varint, inside a map entry.
    let e = decode_object(&object(
        "v1",
        "ConfigMap",
        Enc::new().msg(2, Enc::new().varint(1, 3)),
    ))
    .unwrap_err();
    assert!(
        matches!(e, ProtoError::WireType { field: "data", .. }),
        "{e}"
    );
    // A varint of eleven bytes.
    let mut raw = Enc::new().key(99, 0);
    raw.0.extend_from_slice(&[0xff; 10]);
    raw.0.push(1);
    assert_eq!(
        decode_object(&object("v1", "Namespace", raw)),
        Err(ProtoError::Overflow)
    );
    // Field number 0 and group wire types.
    assert!(matches!(
        decode_object(&object("v1", "Namespace", Enc::new().key(0, 0))),
        Err(ProtoError::BadTag(_))
    ));
    assert!(matches!(
        decode_object(&object("v1", "Namespace", Enc::new().key(5, 3))),
        Err(ProtoError::BadTag(_))
    ));
    // A content encoding nobody supports.
    let mut body = MAGIC.to_vec();
    body.extend(
        Enc::new()
            .msg(1, Enc::new().str(1, "v1").str(2, "Namespace"))
            .str(3, "gzip")
            .0,
    );
    assert!(matches!(
        decode_object(&body),
        Err(ProtoError::ContentEncoding(_))
    ));
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
    // JSONSchemaProps.not (28) is a JSONSchemaProps: nest it far past the limit.
    let mut props = Enc::new().str(5, "object");
    for _ in 0..(MAX_DEPTH + 50) {
        props = Enc::new().msg(28, props);
    }
    let crd = Enc::new().msg(1, meta("c")).msg(
        2,
        Enc::new().msg(7, Enc::new().str(1, "v1").msg(4, Enc::new().msg(1, props))),
    );
    let e = decode_object(&object(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        crd,
    ));
    assert_eq!(e, Err(ProtoError::TooDeep));
}

#[test]
fn crd_schema_uses_json_names_and_or_types() {
    // JSONSchemaProps names differ from their proto names ($ref is `ref`,
    // x-kubernetes-preserve-unknown-fields is `xKubernetesPreserveUnknownFields`), and
    // additionalProperties (JSONSchemaPropsOrBool) is a bool or a schema.
    let props = Enc::new()
        .str(5, "object")
        .msg(
            29,
            Enc::new().str(1, "spec").msg(
                2,
                Enc::new()
                    .str(5, "string")
                    .msg(8, Enc::new().bytes(1, b"\"x\"")),
            ),
        )
        .msg(
            30,
            Enc::new().varint(1, 0).msg(2, Enc::new().str(5, "integer")),
        )
        .msg(24, Enc::new().msg(1, Enc::new().str(5, "string")))
        .varint(38, 1);
    let crd = Enc::new().msg(1, meta("c")).msg(
        2,
        Enc::new().msg(7, Enc::new().str(1, "v1").msg(4, Enc::new().msg(1, props))),
    );
    let v = decode_object(&object(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        crd,
    ))
    .unwrap();
    let schema = &v["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(
        schema["properties"]["spec"],
        json!({"type": "string", "default": "x"})
    );
    assert_eq!(schema["additionalProperties"], json!({"type": "integer"}));
    assert_eq!(schema["items"], json!({"type": "string"}));
    assert_eq!(schema["x-kubernetes-preserve-unknown-fields"], true);
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    // The decoder reads untrusted request bodies: any byte string must give Ok or Err.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b38_7300);
    let valid = [
        object("v1", "Namespace", Enc::new().msg(1, meta("x"))),
        object(
            "v1",
            "Service",
            Enc::new().msg(1, meta("s")).msg(
                2,
                Enc::new().msg(1, Enc::new().varint(3, 80).msg(4, Enc::new().varint(2, 1))),
            ),
        ),
        object(
            "v1",
            "Secret",
            Enc::new().msg(2, Enc::new().str(1, "a").bytes(2, b"b")),
        ),
    ];
    for _ in 0..20_000 {
        let mut body = valid[rng.random_range(0..valid.len())].clone();
        match rng.random_range(0..4) {
            0 => {
                let n = rng.random_range(0..64);
                body.truncate(MAGIC.len());
                body.extend((0..n).map(|_| rng.random::<u8>()));
            }
            1 => {
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(MAGIC.len()..body.len());
                    body[i] = rng.random();
                }
            }
            2 => {
                let cut = rng.random_range(0..=body.len());
                body.truncate(cut);
            }
            _ => {
                let i = rng.random_range(MAGIC.len()..=body.len());
                body.insert(i, rng.random());
            }
        }
        let _ = decode_object(&body);
    }
    // Every message decodes from arbitrary bytes without panicking.
    for m in MESSAGES {
        for _ in 0..20 {
            let n = rng.random_range(0..48);
            let data: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let _ = message_value(m, &data, 0);
        }
    }
}
