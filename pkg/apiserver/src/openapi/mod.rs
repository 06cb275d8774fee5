//! `/openapi/v2` (JSON and gnostic protobuf) and `/openapi/v3` (one document per group
//! version), built from the registry's schemas and cached until the registry changes.

pub mod v2proto;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use crate::ApiServer;
use crate::handlers::negotiation::parse_accept;
use crate::handlers::{Query, not_found, response};
use crate::registry::{Resource, Snapshot, Subresource};
use crate::schema::convert::{Dialect, to_json};
use crate::schema::model::{Definitions, Schema};

/// The v2 protobuf content type kubectl asks for (deprecated spelling) …
const PROTO_V2_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// … and the one upstream answers with.
const PROTO_V2_CONTENT: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Built documents for one registry generation.
struct Built {
    generation: u64,
    v2_json: Arc<Vec<u8>>,
    v2_proto: Arc<Vec<u8>>,
    v2_etag: String,
    /// `api/v1` → (document bytes, hash).
    v3: BTreeMap<String, (Arc<Vec<u8>>, String)>,
}

/// Cache of the published documents.
#[derive(Default)]
pub struct OpenApiCache {
    built: Mutex<Option<Arc<Built>>>,
}

fn hash_hex(bytes: &[u8]) -> String {
    // FNV-1a 128 is enough to tell documents apart for caching; collisions only cost a
    // stale client cache, never correctness of the server.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in bytes {
        h ^= u128::from(*b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("{h:032X}")
}

impl OpenApiCache {
    fn get(&self, snap: &Snapshot) -> Arc<Built> {
        let mut guard = self.built.lock();
        if let Some(b) = guard.as_ref().filter(|b| b.generation == snap.generation) {
            return b.clone();
        }
        let built = Arc::new(build(snap));
        *guard = Some(built.clone());
        built
    }
}

fn build(snap: &Snapshot) -> Built {
    let v2 = document_v2(snap);
    let v2_json = serde_json::to_vec(&v2).unwrap_or_default();
    let v2_proto = v2proto::encode_document(&v2).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode the OpenAPI v2 document as protobuf");
        Vec::new()
    });
    let v2_etag = hash_hex(&v2_json);
    let mut v3 = BTreeMap::new();
    for g in snap.groups() {
        for v in &g.versions {
            let doc = document_v3(snap, &g.group, v);
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = hash_hex(&bytes);
            v3.insert(v3_path(&g.group, v), (Arc::new(bytes), hash));
        }
    }
    Built {
        generation: snap.generation,
        v2_json: Arc::new(v2_json),
        v2_proto: Arc::new(v2_proto),
        v2_etag,
        v3,
    }
}

fn v3_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": crate::handlers::health_version()})
}

/// Definitions reachable from `roots`.
fn reachable(defs: &Definitions, roots: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    fn walk(s: &Schema, out: &mut Vec<String>) {
        if let Some(r) = &s.reference {
            out.push(r.clone());
        }
        for p in s.properties.values() {
            walk(p, out);
        }
        for child in [&s.additional_properties, &s.items, &s.not]
            .into_iter()
            .flatten()
        {
            walk(child, out);
        }
        for list in [&s.all_of, &s.any_of, &s.one_of] {
            for c in list {
                walk(c, out);
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(s) = defs.get(&name) {
            walk(s, &mut todo);
        }
    }
    seen
}

/// One operation of a path, in neutral form.
struct Op {
    method: &'static str,
    action: &'static str,
    kind: (String, String, String),
    body: bool,
    write: bool,
    response: Option<String>,
    id: String,
    /// Whether PATCH accepts strategic merge patch (not for custom resources).
    strategic: bool,
}

/// The operations of one resource: path → operations, plus path parameters.
fn operations(r: &Resource) -> Vec<(String, Vec<&'static str>, Vec<Op>)> {
    let i = &r.info;
    let base = if i.group.is_empty() {
        format!("/api/{}", i.version)
    } else {
        format!("/apis/{}/{}", i.group, i.version)
    };
    let (coll, params): (String, Vec<&'static str>) = if i.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", i.plural),
            vec!["namespace"],
        )
    } else {
        (format!("{base}/{}", i.plural), vec![])
    };
    let gvk = (i.group.clone(), i.version.clone(), i.kind.clone());
    let def = Some(i.definition.clone());
    let id = |verb: &str, suffix: &str| {
        let mut g = i.group.replace(".k8s.io", "").replace('.', "");
        if g.is_empty() {
            g = "core".into();
        }
        let cap = |s: &str| {
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        };
        format!(
            "{verb}{}{}{}{}{suffix}",
            cap(&g),
            cap(&i.version),
            if i.namespaced { "Namespaced" } else { "" },
            i.kind
        )
    };
    let op = |method, action, body, write, response: Option<String>, id: String| Op {
        method,
        action,
        kind: gvk.clone(),
        body,
        write,
        response,
        id,
        strategic: !i.custom,
    };
    let mut out = Vec::new();
    let mut coll_ops = Vec::new();
    if i.supports("list") {
        coll_ops.push(op("get", "list", false, false, None, id("list", "")));
    }
    if i.supports("create") {
        coll_ops.push(op(
            "post",
            "post",
            true,
            true,
            def.clone(),
            id("create", ""),
        ));
    }
    if i.supports("deletecollection") {
        coll_ops.push(op(
            "delete",
            "deletecollection",
            false,
            false,
            None,
            id("deleteCollection", ""),
        ));
    }
    if !coll_ops.is_empty() {
        out.push((coll.clone(), params.clone(), coll_ops));
    }
    let mut item_params = params.clone();
    item_params.insert(0, "name");
    let mut item_ops = Vec::new();
    if i.supports("get") {
        item_ops.push(op("get", "get", false, false, def.clone(), id("read", "")));
    }
    if i.supports("update") {
        item_ops.push(op("put", "put", true, true, def.clone(), id("replace", "")));
    }
    if i.supports("patch") {
        item_ops.push(op(
            "patch",
            "patch",
            true,
            true,
            def.clone(),
            id("patch", ""),
        ));
    }
    if i.supports("delete") {
        item_ops.push(op("delete", "delete", false, false, None, id("delete", "")));
    }
    if !item_ops.is_empty() {
        out.push((format!("{coll}/{{name}}"), item_params.clone(), item_ops));
    }
    for sub in &i.subresources {
        let suffix = match sub {
            Subresource::Status => "Status",
            Subresource::Scale => "Scale",
            Subresource::Finalize => "Finalize",
        };
        let (kind, response) = match sub {
            Subresource::Scale => (
                (
                    "autoscaling".to_string(),
                    "v1".to_string(),
                    "Scale".to_string(),
                ),
                Some("io.k8s.api.autoscaling.v1.Scale".to_string()),
            ),
            Subresource::Status | Subresource::Finalize => (gvk.clone(), def.clone()),
        };
        let mk = |method, action, body, write, id: String| Op {
            method,
            action,
            kind: kind.clone(),
            body,
            write,
            response: response.clone(),
            id,
            strategic: !i.custom,
        };
        let ops = if *sub == Subresource::Finalize {
            vec![mk("put", "put", true, true, id("replace", suffix))]
        } else {
            vec![
                mk("get", "get", false, false, id("read", suffix)),
                mk("put", "put", true, true, id("replace", suffix)),
                mk("patch", "patch", true, true, id("patch", suffix)),
            ]
        };
        out.push((
            format!("{coll}/{{name}}/{}", sub.as_str()),
            item_params.clone(),
            ops,
        ));
    }
    out
}

/// Query parameters of an operation (name, description).
fn query_params(op: &Op) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut p = vec![(
        "pretty",
        "string",
        "If 'true', then the output is pretty printed.",
    )];
    if op.write || op.method == "delete" {
        p.push(("dryRun", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed"));
    }
    if op.write {
        p.push(("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint."));
        p.push(("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict"));
    }
    if op.method == "patch" {
        p.push(("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."));
    }
    if op.action == "list" {
        for (n, t, d) in [
            (
                "allowWatchBookmarks",
                "boolean",
                "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
            ),
            (
                "continue",
                "string",
                "The continue option should be set when retrieving more results from the server.",
            ),
            (
                "fieldSelector",
                "string",
                "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
            ),
            (
                "labelSelector",
                "string",
                "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
            ),
            (
                "limit",
                "integer",
                "limit is a maximum number of responses to return for a list call.",
            ),
            (
                "resourceVersion",
                "string",
                "resourceVersion sets a constraint on what resource versions a request may be served from.",
            ),
            (
                "resourceVersionMatch",
                "string",
                "resourceVersionMatch determines how resourceVersion is applied to list calls.",
            ),
            (
                "sendInitialEvents",
                "boolean",
                "`sendInitialEvents=true` may be set together with `watch=true`.",
            ),
            (
                "timeoutSeconds",
                "integer",
                "Timeout for the list/watch call.",
            ),
            (
                "watch",
                "boolean",
                "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
            ),
        ] {
            p.push((n, t, d));
        }
    }
    if op.action == "delete" || op.action == "deletecollection" {
        for (n, t, d) in [
            (
                "gracePeriodSeconds",
                "integer",
                "The duration in seconds before the object should be deleted.",
            ),
            (
                "propagationPolicy",
                "string",
                "Whether and how garbage collection will be performed.",
            ),
        ] {
            p.push((n, t, d));
        }
    }
    p
}

fn gvk_ext(op: &Op) -> Value {
    json!({"group": op.kind.0, "version": op.kind.1, "kind": op.kind.2})
}

fn path_param(name: &str, dialect: Dialect) -> Value {
    let description = match name {
        "namespace" => "object name and auth scope, such as for teams and projects",
        _ => "name of the resource",
    };
    match dialect {
        Dialect::V2 => {
            json!({"name": name, "in": "path", "required": true, "type": "string", "uniqueItems": true, "description": description})
        }
        Dialect::V3 => {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}, "description": description})
        }
    }
}

fn render_op(op: &Op, dialect: Dialect) -> Value {
    let ref_prefix = match dialect {
        Dialect::V2 => "#/definitions/",
        Dialect::V3 => "#/components/schemas/",
    };
    let mut params: Vec<Value> = query_params(op)
        .into_iter()
        .map(|(n, t, d)| match dialect {
            Dialect::V2 => json!({"name": n, "in": "query", "type": t, "uniqueItems": true, "description": d}),
            Dialect::V3 => json!({"name": n, "in": "query", "schema": {"type": t, "uniqueItems": true}, "description": d}),
        })
        .collect();
    let mut o = Map::new();
    o.insert(
        "description".into(),
        json!(format!("{} {}", op.action, op.kind.2)),
    );
    o.insert("operationId".into(), json!(op.id));
    o.insert(
        "tags".into(),
        json!([if op.kind.0.is_empty() {
            format!("core_{}", op.kind.1)
        } else {
            format!("{}_{}", op.kind.0, op.kind.1)
        }]),
    );
    let ok = match (&op.response, dialect) {
        (Some(r), Dialect::V2) => {
            json!({"description": "OK", "schema": {"$ref": format!("{ref_prefix}{r}")}})
        }
        (Some(r), Dialect::V3) => {
            json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("{ref_prefix}{r}")}}}})
        }
        (None, _) => json!({"description": "OK"}),
    };
    let mut responses = json!({"200": ok, "401": {"description": "Unauthorized"}});
    if op.method == "post" {
        responses["201"] = responses["200"].clone();
    }
    o.insert("responses".into(), responses);
    if op.body {
        let content_types: Vec<&str> = if op.method == "patch" {
            [
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/apply-patch+yaml",
            ]
            .into_iter()
            .filter(|c| op.strategic || !c.contains("strategic"))
            .collect()
        } else {
            vec!["application/json", "application/yaml"]
        };
        let schema = match (&op.response, op.method) {
            (_, "patch") => json!({"type": "object"}),
            (Some(r), _) => json!({"$ref": format!("{ref_prefix}{r}")}),
            (None, _) => json!({"type": "object"}),
        };
        match dialect {
            Dialect::V2 => {
                params.insert(
                    0,
                    json!({"name": "body", "in": "body", "required": true, "schema": schema}),
                );
                o.insert("consumes".into(), json!(content_types));
            }
            Dialect::V3 => {
                let content: Map<String, Value> = content_types
                    .iter()
                    .map(|c| (c.to_string(), json!({"schema": schema})))
                    .collect();
                o.insert(
                    "requestBody".into(),
                    json!({"content": content, "required": true}),
                );
            }
        }
    }
    if dialect == Dialect::V2 {
        o.insert(
            "produces".into(),
            json!(["application/json", "application/yaml"]),
        );
        o.insert("schemes".into(), json!(["https"]));
    }
    o.insert("parameters".into(), Value::Array(params));
    o.insert("x-kubernetes-action".into(), json!(op.action));
    o.insert("x-kubernetes-group-version-kind".into(), gvk_ext(op));
    Value::Object(o)
}

fn paths_for<'a>(
    resources: impl Iterator<Item = &'a Arc<Resource>>,
    dialect: Dialect,
) -> Map<String, Value> {
    let mut paths = Map::new();
    for r in resources {
        for (path, params, ops) in operations(r) {
            let mut item = Map::new();
            for op in &ops {
                item.insert(op.method.into(), render_op(op, dialect));
            }
            item.insert(
                "parameters".into(),
                Value::Array(params.iter().map(|p| path_param(p, dialect)).collect()),
            );
            paths.insert(path, Value::Object(item));
        }
    }
    paths
}

fn document_v2(snap: &Snapshot) -> Value {
    let defs = &snap.definitions;
    let definitions: Map<String, Value> = defs
        .iter()
        .map(|(k, s)| (k.clone(), to_json(s, Dialect::V2)))
        .collect();
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths_for(snap.all(), Dialect::V2),
        "definitions": definitions,
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    })
}

fn document_v3(snap: &Snapshot, group: &str, version: &str) -> Value {
    let defs = &snap.definitions;
    let resources: Vec<&Arc<Resource>> = snap.resources_of(group, version).collect();
    let mut roots: Vec<String> = resources
        .iter()
        .map(|r| r.info.definition.clone())
        .collect();
    if resources
        .iter()
        .any(|r| r.info.has_subresource(Subresource::Scale))
    {
        roots.push("io.k8s.api.autoscaling.v1.Scale".into());
    }
    let schemas: Map<String, Value> = reachable(defs, roots)
        .into_iter()
        .filter_map(|name| {
            defs.get(&name)
                .map(|s| (name.clone(), v3_one_of(&name, to_json(s, Dialect::V3))))
        })
        .collect();
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths_for(resources.into_iter(), Dialect::V3),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
    })
}

/// Upstream publishes Quantity and IntOrString in v3 as a `oneOf` of their JSON types,
/// without a `type`; kubectl explain then names them (`map[string]Quantity`,
/// `<IntOrString>`) instead of calling them strings.
fn v3_one_of(name: &str, mut schema: Value) -> Value {
    let types: &[&str] = match name {
        crate::schema::builtin::names::QUANTITY => &["string", "number"],
        crate::schema::builtin::names::INT_OR_STRING => &["integer", "string"],
        _ => return schema,
    };
    if let Some(o) = schema.as_object_mut() {
        o.remove("type");
        o.remove("format");
        o.insert(
            "oneOf".into(),
            Value::Array(types.iter().map(|t| json!({ "type": t })).collect()),
        );
    }
    schema
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_matches('"') == etag)
}

fn with_etag(mut r: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

/// `GET /openapi/v2`: protobuf when asked, JSON otherwise.
pub fn serve_v2(server: &ApiServer, accept: Option<&str>, headers: &HeaderMap) -> Response {
    let snap = server.registry.snapshot();
    let built = server.openapi.get(&snap);
    if if_none_match(headers, &built.v2_etag) {
        let mut r = Response::new(axum::body::Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return with_etag(r, &built.v2_etag);
    }
    for m in parse_accept(accept) {
        match m.essence.as_str() {
            PROTO_V2_ACCEPT | PROTO_V2_CONTENT => {
                let r = response::bytes_response(
                    StatusCode::OK,
                    PROTO_V2_CONTENT,
                    built.v2_proto.to_vec(),
                );
                return with_etag(r, &built.v2_etag);
            }
            "application/json" | "*/*" | "application/*" => {
                let r = response::bytes_response(
                    StatusCode::OK,
                    "application/json",
                    built.v2_json.to_vec(),
                );
                return with_etag(r, &built.v2_etag);
            }
            _ => {}
        }
    }
    response::status(&k1s_apimachinery::Status::not_acceptable(&[
        "application/json",
        PROTO_V2_CONTENT,
    ]))
}

/// `GET /openapi/v3`: the index of group-version documents.
pub fn serve_v3_root(server: &ApiServer) -> Response {
    let snap = server.registry.snapshot();
    let built = server.openapi.get(&snap);
    let paths: Map<String, Value> = built
        .v3
        .iter()
        .map(|(p, (_, hash))| {
            (
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            )
        })
        .collect();
    response::json(StatusCode::OK, &json!({ "paths": paths }))
}

/// `GET /openapi/v3/<group-version path>`.
pub fn serve_v3(server: &ApiServer, path: &str, query: &Query, headers: &HeaderMap) -> Response {
    let snap = server.registry.snapshot();
    let built = server.openapi.get(&snap);
    let Some((bytes, hash)) = built.v3.get(path) else {
        return response::status(&not_found());
    };
    if if_none_match(headers, hash) {
        let mut r = Response::new(axum::body::Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return with_etag(r, hash);
    }
    let mut r = with_etag(
        response::bytes_response(StatusCode::OK, "application/json", bytes.to_vec()),
        hash,
    );
    // A URL carrying the current hash names immutable content.
    let cache = if query.get("hash").is_some_and(|h| h == hash) {
        "public, immutable"
    } else {
        "no-cache, private"
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}
