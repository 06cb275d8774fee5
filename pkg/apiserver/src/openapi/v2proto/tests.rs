//! Unit tests for the Swagger to protobuf encoder.

use prost::Message as _;
use serde_json::json;

use super::*;

fn decode(value: &Value) -> Document {
    let bytes = encode_document(value).expect("encodes");
    Document::decode(bytes.as_slice()).expect("decodes")
}

fn ext_yaml<'a>(exts: &'a [NamedAny], name: &str) -> &'a str {
    let ext = exts
        .iter()
        .find(|e| e.name == name)
        .expect("extension present");
    let any = ext.value.as_ref().expect("extension has a value");
    assert!(any.value.is_none(), "gnostic leaves Any.value unset");
    &any.yaml
}

#[test]
fn yaml_scalars() {
    assert_eq!(to_yaml(&json!("merge")), "merge\n");
    assert_eq!(to_yaml(&json!("merge,retainKeys")), "merge,retainKeys\n");
    assert_eq!(to_yaml(&json!("self.size > 0")), "self.size > 0\n");
    assert_eq!(to_yaml(&json!("")), "\"\"\n");
    assert_eq!(to_yaml(&json!(true)), "true\n");
    assert_eq!(to_yaml(&json!(false)), "false\n");
    assert_eq!(to_yaml(&json!(null)), "null\n");
    assert_eq!(to_yaml(&json!(0)), "0\n");
    assert_eq!(to_yaml(&json!(-42)), "-42\n");
    assert_eq!(
        to_yaml(&json!(18_446_744_073_709_551_615_u64)),
        "18446744073709551615\n"
    );
    assert_eq!(to_yaml(&json!({})), "{}\n");
    assert_eq!(to_yaml(&json!([])), "[]\n");
}

#[test]
fn yaml_floats_keep_a_point_and_a_signed_exponent() {
    assert_eq!(to_yaml(&json!(1.0)), "1.0\n");
    assert_eq!(to_yaml(&json!(1.5)), "1.5\n");
    assert_eq!(to_yaml(&json!(-0.25)), "-0.25\n");
    assert_eq!(to_yaml(&json!(1e300)), "1.0e+300\n");
    assert_eq!(to_yaml(&json!(2.5e-7)), "2.5e-7\n");
}

#[test]
fn yaml_quotes_what_a_reader_would_misread() {
    for word in [
        "no", "No", "y", "Y", "yes", "on", "OFF", "true", "False", "null", "NULL",
    ] {
        assert_eq!(to_yaml(&json!(word)), format!("\"{word}\"\n"), "{word}");
    }
    for s in [
        "1", "1.0", "0x10", "1e3", ".5", "~", "-", "- x", "a: b", "a #c", "@at", "*x", "&x",
    ] {
        assert_eq!(to_yaml(&json!(s)), format!("\"{s}\"\n"), "{s}");
    }
    assert_eq!(to_yaml(&json!("trailing ")), "\"trailing \"\n");
    assert_eq!(
        to_yaml(&json!("a\"b\\c\nd\te")),
        "\"a\\\"b\\\\c\\nd\\te\"\n"
    );
    assert_eq!(
        to_yaml(&json!("bell\u{7}\u{85}\u{2028}\u{feff}")),
        "\"bell\\u0007\\u0085\\u2028\\uFEFF\"\n"
    );
    assert_eq!(to_yaml(&json!("snow ☃ 😀")), "\"snow ☃ 😀\"\n");
    assert_eq!(to_yaml(&json!("int-or-string")), "int-or-string\n");
    assert_eq!(to_yaml(&json!("k8s.io/name")), "k8s.io/name\n");
}

#[test]
fn yaml_blocks_match_gnostic_layout() {
    let gvk = json!([
        {"group": "apps", "kind": "Deployment", "version": "v1"},
        {"group": "", "kind": "Status", "version": "v1"}
    ]);
    assert_eq!(
        to_yaml(&gvk),
        "- group: apps\n  kind: Deployment\n  version: v1\n- group: \"\"\n  kind: Status\n  version: v1\n"
    );
    assert_eq!(
        to_yaml(&json!(["containerPort", "protocol"])),
        "- containerPort\n- protocol\n"
    );
    let unions = json!([{"discriminator": "type", "fields-to-discriminateBy": {"rollingUpdate": "RollingUpdate"}}]);
    assert_eq!(
        to_yaml(&unions),
        "- discriminator: type\n  fields-to-discriminateBy:\n    rollingUpdate: RollingUpdate\n"
    );
    let nested =
        json!({"generator": "k1s", "list": [{"a": 1}, {"b": [2, 3]}], "m": {"k": {"z": []}}});
    assert_eq!(
        to_yaml(&nested),
        "generator: k1s\nlist:\n    - a: 1\n    - b:\n        - 2\n        - 3\nm:\n    k:\n        z: []\n"
    );
    assert_eq!(
        to_yaml(&json!([[1, 2], [], {}])),
        "- - 1\n  - 2\n- []\n- {}\n"
    );
}

#[test]
fn wire_bytes_of_a_minimal_document() {
    // Document.swagger (1, string) and one vendor extension (16, NamedAny):
    // NamedAny.name (1) = "x-a", NamedAny.value (2) = Any { yaml (2) = "b\n" }.
    let bytes = encode_document(&json!({"swagger": "2.0", "x-a": "b"})).expect("encodes");
    let want: &[u8] = &[
        0x0a, 3, b'2', b'.', b'0', // swagger
        0x82, 0x01, 11, // field 16, length 11
        0x0a, 3, b'x', b'-', b'a', // name
        0x12, 4, 0x12, 2, b'b', b'\n', // value: Any { yaml }
    ];
    assert_eq!(bytes, want);
}

#[test]
fn wire_bytes_of_a_schema() {
    // Definitions (9) > NamedSchema { name, value: Schema { type (22) = TypeItem ["string"] } }.
    let bytes =
        encode_document(&json!({"definitions": {"T": {"type": "string"}}})).expect("encodes");
    let want: &[u8] = &[
        0x4a, 18, // Document.definitions (9)
        0x0a, 16, // Definitions.additional_properties (1)
        0x0a, 1, b'T', // NamedSchema.name (1)
        0x12, 11, // NamedSchema.value (2)
        0xb2, 0x01, 8, // Schema.type (22)
        0x0a, 6, b's', b't', b'r', b'i', b'n', b'g', // TypeItem.value (1)
    ];
    assert_eq!(bytes, want);
}

#[test]
fn document_fields_land_in_their_messages() {
    let doc = decode(&json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.35.0"},
        "paths": {
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}": {
                "get": {
                    "operationId": "readAppsV1NamespacedDeployment",
                    "parameters": [
                        {"name": "pretty", "in": "query", "type": "string", "uniqueItems": true},
                        {"name": "X-Id", "in": "header", "type": "string"},
                        {"name": "f", "in": "formData", "type": "file"}
                    ],
                    "responses": {
                        "200": {"description": "OK", "schema": {"$ref": "#/definitions/D"}},
                        "404": {"$ref": "#/responses/NotFound"},
                        "default": {"description": "file", "schema": {"type": "file"}},
                        "x-ext": 1,
                        "not-a-code": {"description": "ignored"}
                    },
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": {"group": "apps", "kind": "Deployment", "version": "v1"}
                },
                "put": {"parameters": [{"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/D"}}]},
                "parameters": [
                    {"name": "name", "in": "path", "required": true, "type": "string"},
                    {"$ref": "#/parameters/namespace"}
                ]
            },
            "x-paths": "p"
        },
        "definitions": {
            "D": {
                "type": "object",
                "required": ["spec"],
                "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
                    "closed": {"type": "object", "additionalProperties": false},
                    "ports": {"type": "array", "items": {"$ref": "#/definitions/P"},
                              "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                              "x-kubernetes-list-type": "map"},
                    "maxSurge": {"$ref": "#/definitions/I", "x-kubernetes-int-or-string": true},
                    "limit": {"type": "integer", "maxLength": 5.0, "minimum": 1, "maximum": 2.5}
                },
                "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}]
            }
        },
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication"}},
        "security": [{"BearerToken": []}]
    }));

    assert_eq!(doc.swagger, "2.0");
    assert_eq!(
        doc.info.as_ref().map(|i| i.title.as_str()),
        Some("Kubernetes")
    );

    let paths = doc.paths.as_ref().expect("paths");
    assert_eq!(ext_yaml(&paths.vendor_extension, "x-paths"), "p\n");
    assert_eq!(paths.path.len(), 1);
    let item = paths.path[0].value.as_ref().expect("path item");

    // Path-level parameters: inline path parameter and a $ref.
    match &item.parameters[0].oneof {
        Some(parameters_item::Oneof::Parameter(Parameter {
            oneof:
                Some(parameter::Oneof::NonBodyParameter(NonBodyParameter {
                    oneof: Some(non_body_parameter::Oneof::PathParameterSubSchema(p)),
                })),
        })) => {
            assert_eq!(
                (p.name.as_str(), p.in_.as_str(), p.required),
                ("name", "path", true)
            );
        }
        other => panic!("path parameter: {other:?}"),
    }
    match &item.parameters[1].oneof {
        Some(parameters_item::Oneof::JsonReference(r)) => {
            assert_eq!(r.xref, "#/parameters/namespace");
        }
        other => panic!("$ref parameter: {other:?}"),
    }

    let get = item.get.as_ref().expect("get");
    assert_eq!(get.operation_id, "readAppsV1NamespacedDeployment");
    assert_eq!(
        ext_yaml(&get.vendor_extension, "x-kubernetes-action"),
        "get\n"
    );
    assert_eq!(
        ext_yaml(&get.vendor_extension, "x-kubernetes-group-version-kind"),
        "group: apps\nkind: Deployment\nversion: v1\n"
    );
    let kinds: Vec<&str> = get
        .parameters
        .iter()
        .map(|p| match &p.oneof {
            Some(parameters_item::Oneof::Parameter(Parameter {
                oneof: Some(parameter::Oneof::NonBodyParameter(NonBodyParameter { oneof: Some(o) })),
            })) => match o {
                non_body_parameter::Oneof::QueryParameterSubSchema(q) => {
                    assert!(q.unique_items);
                    "query"
                }
                non_body_parameter::Oneof::HeaderParameterSubSchema(_) => "header",
                non_body_parameter::Oneof::FormDataParameterSubSchema(_) => "formData",
                non_body_parameter::Oneof::PathParameterSubSchema(_) => "path",
            },
            other => panic!("parameter: {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["query", "header", "formData"]);

    let responses = get.responses.as_ref().expect("responses");
    let codes: Vec<&str> = responses
        .response_code
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(codes, ["200", "404", "default"]);
    assert_eq!(ext_yaml(&responses.vendor_extension, "x-ext"), "1\n");
    match responses.response_code[1]
        .value
        .as_ref()
        .and_then(|v| v.oneof.as_ref())
    {
        Some(response_value::Oneof::JsonReference(r)) => assert_eq!(r.xref, "#/responses/NotFound"),
        other => panic!("404: {other:?}"),
    }
    match responses.response_code[2]
        .value
        .as_ref()
        .and_then(|v| v.oneof.as_ref())
    {
        Some(response_value::Oneof::Response(r)) => {
            match r.schema.as_ref().and_then(|s| s.oneof.as_ref()) {
                Some(schema_item::Oneof::FileSchema(f)) => assert_eq!(f.type_, "file"),
                other => panic!("file schema: {other:?}"),
            }
        }
        other => panic!("default: {other:?}"),
    }

    let put = item.put.as_ref().expect("put");
    match &put.parameters[0].oneof {
        Some(parameters_item::Oneof::Parameter(Parameter {
            oneof: Some(parameter::Oneof::BodyParameter(b)),
        })) => {
            assert!(b.required);
            assert_eq!(
                b.schema.as_ref().map(|s| s.xref.as_str()),
                Some("#/definitions/D")
            );
        }
        other => panic!("body parameter: {other:?}"),
    }

    let defs = &doc
        .definitions
        .as_ref()
        .expect("definitions")
        .additional_properties;
    let d = defs[0].value.as_ref().expect("schema");
    assert_eq!(
        d.type_.as_ref().map(|t| t.value.clone()),
        Some(vec!["object".to_owned()])
    );
    assert_eq!(d.required, ["spec"]);
    assert_eq!(
        ext_yaml(&d.vendor_extension, "x-kubernetes-group-version-kind"),
        "- group: apps\n  kind: Deployment\n  version: v1\n"
    );
    let props = &d
        .properties
        .as_ref()
        .expect("properties")
        .additional_properties;
    let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["labels", "closed", "ports", "maxSurge", "limit"]);
    let prop = |i: usize| props[i].value.as_ref().expect("property schema");

    match prop(0)
        .additional_properties
        .as_ref()
        .and_then(|a| a.oneof.as_ref())
    {
        Some(additional_properties_item::Oneof::Schema(s)) => {
            assert_eq!(s.default.as_ref().map(|a| a.yaml.as_str()), Some("\"\"\n"));
        }
        other => panic!("labels: {other:?}"),
    }
    assert_eq!(
        prop(1)
            .additional_properties
            .as_ref()
            .and_then(|a| a.oneof.clone()),
        Some(additional_properties_item::Oneof::Boolean(false))
    );
    let ports = prop(2);
    assert_eq!(ports.items.as_ref().map(|i| i.schema.len()), Some(1));
    assert_eq!(
        ext_yaml(&ports.vendor_extension, "x-kubernetes-list-map-keys"),
        "- containerPort\n- protocol\n"
    );
    assert_eq!(
        ext_yaml(&ports.vendor_extension, "x-kubernetes-list-type"),
        "map\n"
    );
    assert_eq!(
        ext_yaml(&prop(3).vendor_extension, "x-kubernetes-int-or-string"),
        "true\n"
    );
    let limit = prop(4);
    assert_eq!(
        (limit.max_length, limit.minimum, limit.maximum),
        (5, 1.0, 2.5)
    );

    let sec = &doc
        .security_definitions
        .as_ref()
        .expect("security definitions")
        .additional_properties;
    match sec[0].value.as_ref().and_then(|v| v.oneof.as_ref()) {
        Some(security_definitions_item::Oneof::ApiKeySecurity(k)) => {
            assert_eq!(sec[0].name, "BearerToken");
            assert_eq!(
                (k.type_.as_str(), k.name.as_str(), k.in_.as_str()),
                ("apiKey", "authorization", "header")
            );
        }
        other => panic!("BearerToken: {other:?}"),
    }
    let req = &doc.security[0].additional_properties[0];
    assert_eq!(req.name, "BearerToken");
    assert_eq!(req.value.as_ref().map(|v| v.value.len()), Some(0));
}

#[test]
fn errors_name_the_offending_value() {
    assert_eq!(
        encode_document(&json!([])),
        Err(V2ProtoError::InvalidType {
            path: "/".into(),
            expected: "an object"
        })
    );
    let bad_in =
        json!({"paths": {"/x/{y}": {"get": {"parameters": [{"name": "y", "in": "cookie"}]}}}});
    assert_eq!(
        encode_document(&bad_in),
        Err(V2ProtoError::InvalidValue {
            path: "/paths/~1x~1{y}/get/parameters/0/in".into(),
            message: "unknown parameter location \"cookie\"".into(),
        })
    );
    let bad_required = json!({"definitions": {"D": {"required": "spec"}}});
    assert_eq!(
        encode_document(&bad_required),
        Err(V2ProtoError::InvalidType {
            path: "/definitions/D/required".into(),
            expected: "an array of strings",
        })
    );
    let bad_int = json!({"definitions": {"D": {"maxLength": 2.5}}});
    assert!(matches!(
        encode_document(&bad_int),
        Err(V2ProtoError::InvalidType { .. })
    ));
    let bad_sec = json!({"securityDefinitions": {"S": {"type": "oauth2", "flow": "magic"}}});
    assert!(matches!(
        encode_document(&bad_sec),
        Err(V2ProtoError::InvalidValue { .. })
    ));
    let message = encode_document(&bad_required)
        .expect_err("invalid")
        .to_string();
    assert_eq!(
        message,
        "/definitions/D/required: expected an array of strings"
    );
}

#[test]
fn unknown_keys_are_ignored_like_gnostic() {
    let with =
        decode(&json!({"definitions": {"D": {"type": "object", "nullable": true, "anyOf": []}}}));
    let without = decode(&json!({"definitions": {"D": {"type": "object"}}}));
    assert_eq!(with, without);
}

#[test]
fn every_subvalue_of_the_fixture_encodes_or_errors_without_panicking() {
    let text = include_str!("../testdata/sample-swagger.json");
    let fixture: Value = serde_json::from_str(text).expect("fixture is JSON");
    fn walk(v: &Value, count: &mut usize) {
        let _ = encode_document(v);
        *count += 1;
        match v {
            Value::Object(map) => map.values().for_each(|c| walk(c, count)),
            Value::Array(items) => items.iter().for_each(|c| walk(c, count)),
            _ => {}
        }
    }
    let mut count = 0;
    walk(&fixture, &mut count);
    assert!(count > 500);
}
