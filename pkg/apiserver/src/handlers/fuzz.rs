//! Property tests over whole requests: query strings (resourceVersion,
//! resourceVersionMatch, continue, limit, selectors, watch parameters, delete options) and
//! request bodies (JSON, YAML, protobuf; create, update, delete and the four patch types)
//! sent to the handlers of a real server over the memory store.
//!
//! Whatever a client sends, the server answers: no panic, no stack overflow, no 500
//! (except where upstream answers 500 too: a strategic merge patch it cannot apply), and
//! every object it accepted can be read back.

use base64::Engine;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::body;
use super::negotiation::BodyType;
use crate::fuzz::{
    Body, Server, assert_not_internal, assert_readable, check, collection, config, edited,
    json_value, objects, to_bytes, upstreams_500,
};
use crate::registry::generic::{
    FieldValidation, decode_continue, encode_continue, parse_resource_version,
};

/// Percent-encodes query parameters.
fn query(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

// === query values ===

/// resourceVersion-like values: small, current, far future, negative, huge, not numbers.
const VERSIONS: &[&str] = &[
    "",
    "0",
    "1",
    "3",
    "-1",
    "+1",
    " 1",
    "01",
    "1.0",
    "1e3",
    "0x10",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999",
    "١",
    "１",
    "abc",
];

/// Strings that make base64 continue tokens: their JSON, arbitrary JSON, arbitrary bytes.
fn continue_token() -> impl Strategy<Value = String> {
    let rv = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (1i64..20).prop_map(Value::from),
        prop::sample::select(VERSIONS).prop_map(Value::from),
        json_value(),
    ];
    let start = prop_oneof![
        prop::sample::select(
            &[
                "",
                "\u{0}",
                "default/cfg\u{0}",
                "../x",
                "/x",
                "a/../b",
                "\u{0}\u{0}"
            ][..]
        )
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        json_value(),
    ];
    let shaped = (
        prop_oneof![Just(json!("meta.k8s.io/v1")), json_value()],
        rv,
        start,
    )
        .prop_map(|(v, rv, start)| json!({"v": v, "rv": rv, "start": start}));
    let raw = prop_oneof![
        4 => shaped.prop_map(|v| to_bytes(&v)),
        1 => json_value().prop_map(|v| to_bytes(&v)),
        1 => prop::collection::vec(any::<u8>(), 0..48),
    ];
    prop_oneof![
        6 => (raw, 0..4u8).prop_map(|(bytes, engine)| {
            use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
            match engine {
                0 => URL_SAFE.encode(bytes),
                1 => URL_SAFE_NO_PAD.encode(bytes),
                2 => STANDARD.encode(bytes),
                _ => STANDARD_NO_PAD.encode(bytes),
            }
        }),
        1 => ".{0,24}",
    ]
}

/// A value for a query parameter named `name`.
fn param_value(name: &'static str) -> BoxedStrategy<String> {
    let versions = || prop::sample::select(VERSIONS).prop_map(str::to_string);
    let any_text = || ".{0,16}";
    match name {
        "resourceVersion" => prop_oneof![8 => versions(), 1 => any_text()].boxed(),
        "resourceVersionMatch" => prop_oneof![
            4 => prop::sample::select(&["", "Exact", "NotOlderThan", "exact", "Any"][..]).prop_map(str::to_string),
            1 => any_text(),
        ]
        .boxed(),
        "continue" => continue_token().boxed(),
        "limit" | "timeoutSeconds" | "gracePeriodSeconds" => prop_oneof![
            4 => versions(),
            2 => any::<i64>().prop_map(|n| n.to_string()),
            1 => any_text(),
        ]
        .boxed(),
        "labelSelector" => prop_oneof![
            prop::sample::select(&["app=web", "app in (web,db),!x", "a!=b", "a>1", "x in ()", "=", "!", "(", "app=web,"][..])
                .prop_map(str::to_string),
            any_text(),
        ]
        .boxed(),
        "fieldSelector" => prop_oneof![
            prop::sample::select(&[
                "metadata.name=cfg", "metadata.namespace!=default", "spec.nodeName=n", "status.phase=Running",
                "metadata.name=a\\,b", "a=b", "metadata.name", "=x", "metadata.name=\\",
            ][..])
            .prop_map(str::to_string),
            any_text(),
        ]
        .boxed(),
        "propagationPolicy" => prop_oneof![
            prop::sample::select(&["Orphan", "Background", "Foreground", "orphan", ""][..]).prop_map(str::to_string),
            any_text(),
        ]
        .boxed(),
        "watch" | "sendInitialEvents" | "allowWatchBookmarks" | "orphanDependents" | "force" => {
            prop::sample::select(&["true", "false", "1", "", "True", "yes"][..])
                .prop_map(str::to_string)
                .boxed()
        }
        "dryRun" => prop::sample::select(&["All", "", "all", "None"][..])
            .prop_map(str::to_string)
            .boxed(),
        "fieldManager" => prop_oneof![
            4 => Just("fuzz".to_string()),
            1 => Just("m".repeat(129)),
            1 => any_text(),
        ]
        .boxed(),
        "fieldValidation" => prop::sample::select(&["Strict", "Warn", "Ignore", "", "strict"][..])
            .prop_map(str::to_string)
            .boxed(),
        "includeObject" => prop::sample::select(&["None", "Object", "Metadata", "", "x"][..])
            .prop_map(str::to_string)
            .boxed(),
        _ => any_text().boxed(),
    }
}

/// Query parameters: each known one present or not, plus an unknown one.
fn params(names: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, String)>> {
    let each: Vec<BoxedStrategy<Option<(String, String)>>> = names
        .iter()
        .map(|&n| {
            prop::option::weighted(0.4, param_value(n))
                .prop_map(move |v| v.map(|v| (n.to_string(), v)))
                .boxed()
        })
        .collect();
    each.prop_map(|ps| ps.into_iter().flatten().collect())
}

const READ_PARAMS: &[&str] = &[
    "resourceVersion",
    "resourceVersionMatch",
    "continue",
    "limit",
    "labelSelector",
    "fieldSelector",
    "watch",
    "timeoutSeconds",
    "sendInitialEvents",
    "allowWatchBookmarks",
    "includeObject",
];

const ACCEPTS: &[&str] = &[
    "application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "*/*",
    "text/plain",
    ";;",
];

fn read_path() -> impl Strategy<Value = String> {
    prop::sample::select(
        &[
            "/api/v1/namespaces/default/configmaps",
            "/api/v1/namespaces/default/configmaps/cfg",
            "/api/v1/configmaps",
            "/api/v1/namespaces/default/pods",
            "/api/v1/namespaces/default/pods/p",
            "/api/v1/namespaces/default/pods/p/status",
            "/apis/apps/v1/namespaces/default/deployments",
            "/apis/apps/v1/namespaces/default/deployments/web",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
            "/api/v1/watch/namespaces/default/configmaps",
            "/api/v1/watch/namespaces/default/configmaps/cfg",
            "/api/v1/nodes",
            "/api/v1/namespaces",
        ][..],
    )
    .prop_map(str::to_string)
}

#[test]
fn reads_with_any_query_never_fail_the_server() {
    // resourceVersion, continue and limit come straight from the query string; a huge
    // number, a negative one or a forged continue token must be a 4xx, not a crash.
    let strategy = (
        read_path(),
        params(READ_PARAMS),
        prop::sample::select(ACCEPTS),
    );
    check(256, strategy, |server, (path, params, accept)| {
        let uri = format!("{path}?{}", query(&params));
        let answer = server.request_briefly(Method::GET, &uri, &[(ACCEPT, accept)], Vec::new());
        if let Some(a) = answer {
            assert_not_internal(&a, &uri)?;
        }
        Ok(())
    });
}

/// Path segments of the API (groups, versions, resources, names, subresources) and odd
/// ones.
const SEGMENTS: &[&str] = &[
    "api",
    "apis",
    "v1",
    "v2",
    "v3",
    "apps",
    "batch",
    "namespaces",
    "default",
    "kube-system",
    "pods",
    "configmaps",
    "deployments",
    "nodes",
    "events",
    "watch",
    "status",
    "scale",
    "finalize",
    "binding",
    "eviction",
    "log",
    "cfg",
    "web",
    "p",
    "openapi",
    "version",
    "healthz",
    "readyz",
    "livez",
    "etcd",
    "apiextensions.k8s.io",
    "customresourcedefinitions",
    "",
    ".",
    "..",
    "%",
    "\u{0}",
    "é",
    "a b",
    "x/y",
];

/// Media types as clients write them, with parameters, and broken ones.
const MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "*/*;q=0",
    "text/html;q=0.9, */*",
    ";",
    "a;b=;=c,,",
];

#[test]
fn any_request_to_any_path_never_fails_the_server() {
    // Paths, methods and headers are parsed before any handler runs: discovery, OpenAPI,
    // health, and every resource path shape, with any Accept and Content-Type.
    let segment = prop_oneof![
        8 => prop::sample::select(SEGMENTS).prop_map(str::to_string),
        1 => ".{0,8}",
    ];
    let header = || {
        prop_oneof![
            4 => prop::sample::select(MEDIA_TYPES).prop_map(str::to_string),
            1 => "[ -~]{0,40}",
        ]
    };
    // Mostly the path of a served resource (collection, object or subresource), or of
    // discovery, OpenAPI and health; sometimes any segments.
    let resource = prop::sample::select(
        &[
            ("api/v1/namespaces/default", "configmaps", "cfg"),
            ("api/v1/namespaces/default", "pods", "p"),
            ("apis/apps/v1/namespaces/default", "deployments", "web"),
            ("api/v1", "namespaces", "default"),
            ("api/v1", "nodes", "n"),
            ("api/v1/watch/namespaces/default", "configmaps", "cfg"),
            (
                "apis/apiextensions.k8s.io/v1",
                "customresourcedefinitions",
                "x",
            ),
        ][..],
    );
    let shaped = prop_oneof![
        3 => (
            resource,
            prop::option::weighted(0.6, prop::option::weighted(0.8, prop::sample::select(&["status", "scale", "finalize", "log"][..]))),
        )
            .prop_map(|((prefix, plural, name), object)| {
                let mut path = format!("{prefix}/{plural}");
                if let Some(sub) = object {
                    path = format!("{path}/{name}");
                    if let Some(sub) = sub {
                        path = format!("{path}/{sub}");
                    }
                }
                path.split('/').map(str::to_string).collect::<Vec<_>>()
            }),
        1 => prop::sample::select(&["", "api", "apis", "api/v1", "apis/apps", "apis/apps/v1", "openapi/v2", "openapi/v3", "openapi/v3/api/v1", "openapi/v3/apis/apps/v1", "version", "healthz", "readyz/etcd", "livez"][..])
            .prop_map(|p| p.split('/').map(str::to_string).collect::<Vec<_>>()),
    ];
    let strategy = (
        prop::sample::select(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"][..]),
        prop_oneof![3 => shaped, 1 => prop::collection::vec(segment, 0..8)],
        params(READ_PARAMS),
        prop::option::of(header()),
        prop::option::of(header()),
        prop_oneof![
            Just(Vec::new()),
            json_value().prop_map(|v| to_bytes(&v)),
            (0..objects().len()).prop_map(|i| to_bytes(&objects()[i].2)),
        ]
        .prop_map(Body),
    );
    check(
        256,
        strategy,
        |server, (method, segments, params, accept, content_type, body)| {
            let path: String = segments
                .iter()
                .map(|s| {
                    format!(
                        "/{}",
                        percent_encoding::utf8_percent_encode(
                            s,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    )
                })
                .collect();
            let path = if path.is_empty() {
                "/".to_string()
            } else {
                path
            };
            let uri = format!("{path}?{}", query(&params));
            let mut headers = Vec::new();
            if let Some(a) = &accept {
                headers.push((ACCEPT, a.as_str()));
            }
            if let Some(c) = &content_type {
                headers.push((CONTENT_TYPE, c.as_str()));
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
            if let Some(a) = server.request_briefly(method.clone(), &uri, &headers, body.0) {
                let patch = method == Method::PATCH;
                if !(patch && upstreams_500(&a, content_type.as_deref().unwrap_or(""))) {
                    assert_not_internal(&a, &format!("{method} {uri}"))?;
                }
            }
            Ok(())
        },
    );
}

#[test]
fn continue_tokens_round_trip() {
    // A token the server wrote must bring the next page back to where the last one ended.
    proptest!(config(512), |(rv in 1i64.., key in "[a-z0-9./-]{0,40}")| {
        prop_assume!(!key.contains("..") && !key.starts_with('/'));
        prop_assert_eq!(decode_continue(&encode_continue(rv, &key)), Ok((rv, key)));
    });
}

#[test]
fn continue_tokens_and_resource_versions_of_any_text_never_panic() {
    proptest!(config(512), |(token in continue_token(), rv in prop_oneof![prop::sample::select(VERSIONS).prop_map(str::to_string), any::<String>()])| {
        if let Ok((rv, start)) = decode_continue(&token) {
            prop_assert!(rv > 0 && !start.contains(".."), "{} gave {} {:?}", token, rv, start);
        }
        if let Ok(n) = parse_resource_version(&rv) {
            prop_assert!(n >= 0);
        }
    });
}

// === bodies ===

/// Content types of object bodies, supported or not.
const OBJECT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json; charset=utf-8",
    "text/plain",
    "",
];

/// Serializes a value as YAML (what kubectl sends for `application/yaml`).
fn to_yaml(v: &Value) -> Vec<u8> {
    crate::handlers::response::to_yaml(v)
}

/// Byte-level damage to a valid body: flipped bits, cuts, insertions.
fn damaged(bytes: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = bytes.len();
    prop::collection::vec((0..=len, any::<u8>(), 0..3u8), 1..4).prop_map(move |edits| {
        let mut b = bytes.clone();
        for (at, byte, how) in edits {
            let at = at.min(b.len());
            match how {
                0 if at < b.len() => b[at] ^= byte | 1,
                1 => b.truncate(at),
                _ => b.insert(at, byte),
            }
        }
        b
    })
}

/// A request body that names an object: a document (sent as JSON or YAML) or raw bytes.
#[derive(Debug, Clone)]
enum Doc {
    /// Sent as JSON.
    Json(Value),
    /// Sent as YAML.
    Yaml(Value),
    /// Sent as it is.
    Raw(Body),
}

impl Doc {
    /// The bytes to send, the document renamed from `from` to `to` so that it addresses
    /// the object the case created.
    fn bytes(&self, from: &str, to: &str) -> Vec<u8> {
        let renamed = |v: &Value| {
            let mut v = v.clone();
            if v.pointer("/metadata/name").and_then(Value::as_str) == Some(from) {
                v["metadata"]["name"] = json!(to);
            }
            v
        };
        match self {
            Doc::Json(v) => to_bytes(&renamed(v)),
            Doc::Yaml(v) => to_yaml(&renamed(v)),
            Doc::Raw(b) => b.0.clone(),
        }
    }
}

/// An edit of `obj` that sometimes carries a `metadata.resourceVersion` (a precondition
/// of updates and patches, parsed from the body).
fn versioned(obj: Value) -> impl Strategy<Value = Value> {
    let version = prop::option::weighted(0.3, prop::sample::select(VERSIONS));
    (edited(obj), version).prop_map(|(mut v, version)| {
        if let Some(rv) = version
            && let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("resourceVersion".into(), json!(rv));
        }
        v
    })
}

/// A body for an object of the kind at `index` in [`objects`]: an edit of the valid object
/// as JSON or YAML, damaged bytes of it, any JSON, any bytes.
fn object_body(index: usize) -> impl Strategy<Value = Doc> {
    let (_, _, obj) = objects()[index].clone();
    let valid = to_bytes(&obj);
    prop_oneof![
        4 => versioned(obj.clone()).prop_map(Doc::Json),
        2 => versioned(obj).prop_map(Doc::Yaml),
        2 => damaged(valid).prop_map(|b| Doc::Raw(Body(b))),
        1 => json_value().prop_map(Doc::Json),
        1 => prop::collection::vec(any::<u8>(), 0..128).prop_map(|b| Doc::Raw(Body(b))),
        1 => prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| Doc::Raw(Body([crate::schema::protobuf::MAGIC, &b].concat()))),
    ]
}

#[test]
fn create_and_update_with_any_body_never_fail_the_server() {
    let strategy = (0..objects().len())
        .prop_flat_map(|i| (Just(i), object_body(i)))
        .prop_flat_map(|(i, body)| {
            (
                Just(i),
                Just(body),
                prop::sample::select(OBJECT_TYPES),
                any::<bool>(),
                params(&["fieldValidation", "dryRun", "fieldManager"]),
            )
        });
    check(
        256,
        strategy,
        |server, (i, body, content_type, update, params)| {
            let (group, plural, mut obj) = objects()[i].clone();
            let coll = collection(group, plural);
            let original = crate::meta::name(&obj).to_string();
            let name = format!("w{}", server.unique());
            let (method, path) = if update {
                obj["metadata"]["name"] = json!(name);
                server.create(&coll, &obj);
                (Method::PUT, format!("{coll}/{name}"))
            } else {
                (Method::POST, coll.clone())
            };
            let uri = format!("{path}?{}", query(&params));
            let headers: Vec<_> = if content_type.is_empty() {
                Vec::new()
            } else {
                vec![(CONTENT_TYPE, content_type)]
            };
            let body = body.bytes(&original, &name);
            if let Some(a) = server.request(method, &uri, &headers, body) {
                assert_not_internal(&a, &uri)?;
                if a.status.is_success() {
                    let written: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
                    let name = crate::meta::name(&written);
                    assert_readable(server, &format!("{coll}/{name}"))?;
                }
            }
            Ok(())
        },
    );
}

#[test]
fn deletes_with_any_options_never_fail_the_server() {
    // A scheduled pod is deleted gracefully: gracePeriodSeconds becomes a deadline.
    let options = prop_oneof![
        Just(Vec::new()),
        json_value().prop_map(|v| to_bytes(&v)),
        (
            prop::option::of(any::<i64>()),
            prop::option::of(param_value("propagationPolicy")),
            prop::option::of(any::<bool>()),
            prop::option::of(".{0,8}"),
        )
            .prop_map(|(grace, policy, orphan, rv)| to_bytes(&json!({
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "gracePeriodSeconds": grace,
                "propagationPolicy": policy,
                "orphanDependents": orphan,
                "preconditions": {"resourceVersion": rv},
            }))),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
    .prop_map(Body);
    let strategy = (
        options,
        params(&[
            "gracePeriodSeconds",
            "propagationPolicy",
            "orphanDependents",
            "dryRun",
        ]),
    );
    check(256, strategy, |server, (body, params)| {
        let coll = "/api/v1/namespaces/default/pods";
        let mut pod = crate::fuzz::pod();
        let name = format!("p{}", server.unique());
        pod["metadata"]["name"] = json!(name);
        pod["spec"]["nodeName"] = json!("node-1");
        server.create(coll, &pod);
        let uri = format!("{coll}/{name}?{}", query(&params));
        if let Some(a) = server.request(
            Method::DELETE,
            &uri,
            &[(CONTENT_TYPE, "application/json")],
            body.0,
        ) {
            assert_not_internal(&a, &uri)?;
        }
        assert_readable(server, &format!("{coll}/{name}"))
    });
}

#[test]
fn deleting_a_scheduled_pod_with_the_largest_grace_period_sets_the_last_deadline() {
    // Found by the property above: `now + gracePeriodSeconds` overflowed jiff's range and
    // panicked in the handler.
    let server = Server::new();
    let mut pod = crate::fuzz::pod();
    pod["spec"]["nodeName"] = json!("node-1");
    server.create("/api/v1/namespaces/default/pods", &pod);
    let answer = server.request(
        Method::DELETE,
        "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=9223372036854775807",
        &[],
        Vec::new(),
    );
    let Some(answer) = answer else {
        panic!("delete did not answer");
    };
    assert_eq!(answer.status, StatusCode::OK);
    let pending: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    assert_eq!(
        pending["metadata"]["deletionTimestamp"],
        crate::meta::format_time(jiff::Timestamp::MAX)
    );
    assert_eq!(pending["metadata"]["deletionGracePeriodSeconds"], i64::MAX);
}

const BODY_TYPES: &[BodyType] = &[
    BodyType::Json,
    BodyType::Yaml,
    BodyType::Protobuf,
    BodyType::JsonPatch,
    BodyType::MergePatch,
    BodyType::StrategicMergePatch,
    BodyType::ApplyPatch,
];

#[test]
fn bodies_of_any_bytes_parse_or_fail_for_every_type() {
    proptest!(config(512), |(body in prop::collection::vec(any::<u8>(), 0..256), ty in prop::sample::select(BODY_TYPES))| {
        let _ = body::parse(&body, ty);
    });
}

#[test]
fn any_body_decodes_or_fails_for_every_builtin_kind() {
    // The strict decoder walks the body along the kind's schema: any JSON of any shape,
    // at any kind, is a typed object or a 400.
    let resources = crate::fuzz::builtin().resources.len();
    let strategy = (
        0..resources,
        (0..objects().len()).prop_flat_map(object_body),
        prop::sample::select(&[BodyType::Json, BodyType::Yaml, BodyType::Protobuf][..]),
        prop::sample::select(
            &[
                FieldValidation::Strict,
                FieldValidation::Warn,
                FieldValidation::Ignore,
            ][..],
        ),
    );
    check(512, strategy, |server, (r, body, ty, validation)| {
        let snapshot = server.server.registry.snapshot();
        let info = &crate::fuzz::builtin().resources[r].info;
        let Some(res) = snapshot.get(&info.group, &info.version, &info.plural) else {
            return Ok(());
        };
        if let Ok(v) = body::parse(&body.bytes("", ""), ty) {
            let mut warnings = Vec::new();
            if let Err(s) = server
                .server
                .generic
                .decode_request(res, v, validation, &mut warnings)
            {
                prop_assert_ne!(s.code(), 500, "{}", s.message);
            }
        }
        Ok(())
    });
}

/// `levels` nested arrays or objects, as JSON.
fn deep_json(levels: usize, object: bool) -> Vec<u8> {
    let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
    format!("{}1{}", open.repeat(levels), close.repeat(levels)).into_bytes()
}

#[test]
fn bodies_nested_ten_thousand_deep_are_errors_not_stack_overflows() {
    // Every decoder that reads a request body recurses per level; a body of 10 000
    // levels (what Go's decoder accepts upstream) must be refused, not crash the server.
    let deep_yaml_flow = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_yaml_block = format!("{}x", "- ".repeat(10_000));
    let deep_yaml_map = format!("{}1{}", "{a: ".repeat(10_000), "}".repeat(10_000));
    for (what, bytes) in [
        ("json array", deep_json(10_000, false)),
        ("json object", deep_json(10_000, true)),
        ("yaml flow", deep_yaml_flow.into_bytes()),
        ("yaml block", deep_yaml_block.into_bytes()),
        ("yaml map", deep_yaml_map.into_bytes()),
    ] {
        for ty in BODY_TYPES {
            assert!(body::parse(&bytes, *ty).is_err(), "{what} as {ty:?}");
        }
        assert!(crate::patch::parse_merge_patch(&bytes).is_err(), "{what}");
        assert!(
            crate::patch::parse_strategic_merge_patch(&bytes).is_err(),
            "{what}"
        );
        assert!(
            crate::patch::apply_json_patch(&json!({}), &bytes).is_err(),
            "{what}"
        );
        let token = base64::engine::general_purpose::URL_SAFE.encode(&bytes);
        assert!(decode_continue(&token).is_err(), "{what}");
    }
    let server = Server::new();
    for ty in ["application/json", "application/yaml"] {
        let a = server.request(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            &[(CONTENT_TYPE, ty)],
            deep_json(10_000, true),
        );
        assert!(
            a.is_some_and(|a| a.status == StatusCode::BAD_REQUEST),
            "{ty}"
        );
    }
}

#[test]
fn yaml_alias_bombs_are_refused() {
    // The "billion laughs" (upstream's CVE-2019-11253): nine levels of ten aliases each
    // expand to 10^9 strings from a few hundred bytes.
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    assert!(body::parse(yaml.as_bytes(), BodyType::Yaml).is_err());
    assert!(body::parse(yaml.as_bytes(), BodyType::ApplyPatch).is_err());
}

/// A protobuf field of wire type 2 (bytes, string or message).
fn proto_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    let mut varint = |mut v: u64| {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    varint((u64::from(number) << 3) | 2);
    varint(bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[test]
fn objects_too_deep_to_read_back_are_refused_not_stored() {
    // A protobuf ControllerRevision whose `data` (raw JSON) nests as deep as a JSON body
    // may was stored one level deeper than serde_json reads: from then on every list of
    // controllerrevisions answered 500, and the object could not even be deleted.
    let server = Server::new();
    let coll = "/apis/apps/v1/namespaces/default/controllerrevisions";
    let data = (1..127).fold(json!({}), |v, _| json!({ "d": v }));
    let (mut meta, mut raw, mut revision, mut type_meta, mut unknown) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    proto_field(&mut meta, 1, b"deep");
    proto_field(&mut raw, 1, &to_bytes(&data));
    proto_field(&mut revision, 1, &meta);
    proto_field(&mut revision, 2, &raw);
    proto_field(&mut type_meta, 1, b"apps/v1");
    proto_field(&mut type_meta, 2, b"ControllerRevision");
    proto_field(&mut unknown, 1, &type_meta);
    proto_field(&mut unknown, 2, &revision);
    let body = [crate::schema::protobuf::MAGIC, &unknown].concat();
    let created = server.request(
        Method::POST,
        coll,
        &[(CONTENT_TYPE, crate::schema::protobuf::MEDIA_TYPE)],
        body,
    );
    let Some(created) = created else {
        panic!("create did not answer");
    };
    assert_eq!(created.status, StatusCode::BAD_REQUEST);
    let listed = server.request(Method::GET, coll, &[], Vec::new());
    assert!(listed.is_some_and(|a| a.status == StatusCode::OK));
}

// === patches ===

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// JSON patch operations on the paths of `obj` (and one level below them).
fn json_patch_ops(obj: &Value) -> impl Strategy<Value = Value> + use<> {
    let paths: Vec<String> = crate::fuzz::paths(obj)
        .iter()
        .map(|p| crate::fuzz::pointer(p))
        .collect();
    let path = (
        prop::sample::select(paths),
        prop::sample::select(&["", "", "", "/-", "/0", "/x"][..]),
    )
        .prop_map(|(p, suffix)| p + suffix);
    let op = (
        prop::sample::select(&["add", "remove", "replace", "move", "copy", "test"][..]),
        path.clone(),
        path,
        json_value(),
    )
        .prop_map(
            |(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}),
        );
    prop::collection::vec(op, 0..6).prop_map(Value::Array)
}

/// A patch of the object at `index` of the type `content_type` (index into
/// [`PATCH_TYPES`]), mostly of that type's shape: operations for a JSON patch, edits of the
/// object (strategic directives included) for the others, as YAML for some applies.
fn patch_body(index: usize, content_type: usize) -> impl Strategy<Value = Doc> {
    let (_, _, obj) = objects()[index].clone();
    let ops = json_patch_ops(&obj).prop_map(Doc::Json);
    let doc = versioned(obj.clone());
    let wrong = prop_oneof![
        damaged(to_bytes(&obj)).prop_map(|b| Doc::Raw(Body(b))),
        json_value().prop_map(Doc::Json),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Doc::Raw(Body(b))),
    ];
    match content_type {
        0 => prop_oneof![6 => ops, 1 => doc.prop_map(Doc::Json), 1 => wrong].boxed(),
        1 | 2 => prop_oneof![6 => doc.prop_map(Doc::Json), 1 => ops, 1 => wrong].boxed(),
        _ => {
            // An applied configuration names its kind.
            let named = (doc, any::<bool>()).prop_map(move |(mut c, yaml)| {
                if let Value::Object(m) = &mut c {
                    for k in ["apiVersion", "kind"] {
                        m.insert(k.to_string(), obj[k].clone());
                    }
                }
                if yaml { Doc::Yaml(c) } else { Doc::Json(c) }
            });
            prop_oneof![6 => named, 1 => wrong].boxed()
        }
    }
}

/// Where a patch goes: the object, its `/status`, or (for the Deployment) its `/scale`.
const PATCH_TARGETS: &[&str] = &["", "", "", "/status", "/scale"];

#[test]
fn patches_of_every_type_never_fail_the_server() {
    let strategy = (0..objects().len(), 0..PATCH_TYPES.len())
        .prop_flat_map(|(i, t)| (Just(i), Just(t), patch_body(i, t)))
        .prop_flat_map(|(i, t, body)| {
            (
                Just(i),
                Just(t),
                Just(body),
                params(&["fieldManager", "force", "fieldValidation", "dryRun"]),
                prop::sample::select(PATCH_TARGETS),
            )
        });
    check(256, strategy, |server, (i, t, body, params, target)| {
        let (group, plural, mut obj) = objects()[i].clone();
        let coll = collection(group, plural);
        let original = crate::meta::name(&obj).to_string();
        let name = format!("o{}", server.unique());
        obj["metadata"]["name"] = json!(name);
        server.create(&coll, &obj);
        let uri = format!("{coll}/{name}{target}?{}", query(&params));
        let content_type = PATCH_TYPES[t];
        let body = body.bytes(&original, &name);
        let answer = server.request(Method::PATCH, &uri, &[(CONTENT_TYPE, content_type)], body);
        if let Some(a) = answer
            && !upstreams_500(&a, content_type)
        {
            assert_not_internal(&a, &uri)?;
        }
        assert_readable(server, &format!("{coll}/{name}"))
    });
}
