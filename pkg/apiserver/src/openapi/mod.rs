//! `/openapi/v2` (JSON and gnostic protobuf) and `/openapi/v3` (one document per group
//! version, per group, and the roots), built from the registry and cached until it
//! changes. Each document lists exactly the operations the server routes ([`routes`])
//! and is self-contained: every `$ref` names a definition of the document ([`defs`]
//! supplies the lists, Scale and the meta types besides the kinds).

mod defs;
pub(crate) use defs::extras as request_definitions;
mod routes;
#[cfg(test)]
mod tests;
pub mod v2proto;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use self::routes::Route;
use crate::ApiServer;
use crate::handlers::negotiation::parse_accept;
use crate::handlers::{Query, not_found, response};
use crate::registry::Snapshot;
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
    /// `api/v1`, `apis/apps`, `version` … → (document bytes, hash).
    v3: BTreeMap<String, (Arc<Vec<u8>>, String)>,
}

/// Cache of the published documents, shared with the thread that rebuilds them when
/// the served set changes.
#[derive(Default)]
pub struct OpenApiCache {
    built: Arc<Mutex<Option<Arc<Built>>>>,
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
        Self::get_in(&self.built, snap)
    }

    /// A request waits here for a rebuild already under way rather than doing it twice.
    fn get_in(built: &Mutex<Option<Arc<Built>>>, snap: &Snapshot) -> Arc<Built> {
        let mut guard = built.lock();
        if let Some(b) = guard.as_ref().filter(|b| b.generation == snap.generation) {
            return b.clone();
        }
        let fresh = Arc::new(build(snap));
        *guard = Some(fresh.clone());
        fresh
    }

    /// Rebuilds the documents for the registry's current snapshot on a blocking thread,
    /// so the first `/openapi/v2` or `/openapi/v3` request after a CRD change finds them
    /// built (or waits for the rest of the build instead of doing all of it). A build
    /// for a snapshot that is no longer current is skipped: the newer one has its own.
    pub fn rebuild_in_background(&self, registry: &Arc<crate::registry::Registry>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let built = self.built.clone();
        let registry = registry.clone();
        let generation = registry.snapshot().generation;
        handle.spawn_blocking(move || {
            let snap = registry.snapshot();
            if snap.generation == generation {
                Self::get_in(&built, &snap);
            }
        });
    }

    /// The generation of the snapshot the cached documents describe, if any.
    pub fn built_generation(&self) -> Option<u64> {
        self.built.lock().as_ref().map(|b| b.generation)
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
    let v3 = documents_v3(snap)
        .into_iter()
        .map(|(path, doc)| {
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = hash_hex(&bytes);
            (path, (Arc::new(bytes), hash))
        })
        .collect();
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

fn security_v2() -> (Value, Value) {
    (
        json!({"BearerToken": {"description": "Bearer Token authentication", "in": "header", "name": "authorization", "type": "apiKey"}}),
        json!([{"BearerToken": []}]),
    )
}

/// Every route the server answers: the discovery documents, then each group version's
/// resources.
fn all_routes(snap: &Snapshot) -> Vec<Route> {
    let mut out = vec![
        routes::core_versions_route(),
        routes::groups_route(),
        routes::version_route(),
    ];
    for g in snap.groups() {
        if !g.group.is_empty() {
            out.push(routes::group_route(&g.group));
        }
        for v in &g.versions {
            out.extend(group_version_routes(snap, &g.group, v));
        }
    }
    out
}

/// The routes of one group version: its resource list and its resources.
fn group_version_routes(snap: &Snapshot, group: &str, version: &str) -> Vec<Route> {
    let mut out = vec![routes::group_version_route(group, version)];
    for r in snap.resources_of(group, version) {
        out.extend(routes::resource_routes(r));
    }
    out
}

/// The Swagger 2.0 document: every path, every definition, the shared parameters.
fn document_v2(snap: &Snapshot) -> Value {
    let defs = defs::all_definitions(snap);
    let (paths, parameters) = routes::render_v2(&all_routes(snap));
    let sorted: BTreeMap<&String, &Arc<Schema>> = defs.iter().collect();
    let custom: std::collections::BTreeSet<&str> = snap
        .all()
        .filter(|r| r.info.custom)
        .map(|r| r.info.definition.as_str())
        .collect();
    let definitions: Map<String, Value> = sorted
        .into_iter()
        .map(|(k, s)| {
            let v = if custom.contains(k.as_str()) {
                to_json(&crate::crd::custom::openapi_v2_form(s), Dialect::V2)
            } else {
                to_json(s, Dialect::V2)
            };
            (k.clone(), v)
        })
        .collect();
    let (security_definitions, security) = security_v2();
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths,
        "definitions": definitions,
        "parameters": parameters,
        "securityDefinitions": security_definitions,
        "security": security,
    })
}

/// Names of the definitions a JSON document refers to (`$ref` under `prefix`).
fn refs_in(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(prefix) {
                            out.push(name.to_string());
                        }
                    }
                    _ => refs_in(child, prefix, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| refs_in(c, prefix, out)),
        _ => {}
    }
}

/// One OpenAPI 3.0 document: `routes` and exactly the schemas they reach.
fn document_v3(defs: &Definitions, routes: &[Route]) -> Value {
    const PREFIX: &str = "#/components/schemas/";
    let paths = routes::render_v3(routes);
    let mut todo = Vec::new();
    for p in paths.values() {
        refs_in(p, PREFIX, &mut todo);
    }
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    while let Some(name) = todo.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        // A name with no definition stays dangling, which the tests catch.
        let Some(s) = defs.get(&name) else { continue };
        let v = v3_one_of(&name, to_json(s, Dialect::V3));
        refs_in(&v, PREFIX, &mut todo);
        schemas.insert(name, v);
    }
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"description": "Bearer Token authentication", "in": "header", "name": "authorization", "type": "apiKey"}},
        },
    })
}

/// Every OpenAPI 3.0 document by its path under `/openapi/v3/`: one per group version
/// (`api/v1`, `apis/apps/v1`), one per group (`apis/apps`), and the roots (`api`,
/// `apis`) and `version`, like upstream's index.
fn documents_v3(snap: &Snapshot) -> BTreeMap<String, Value> {
    let defs = defs::all_definitions(snap);
    let mut docs = BTreeMap::new();
    docs.insert(
        "api".to_string(),
        document_v3(&defs, &[routes::core_versions_route()]),
    );
    docs.insert(
        "apis".to_string(),
        document_v3(&defs, &[routes::groups_route()]),
    );
    docs.insert(
        "version".to_string(),
        document_v3(&defs, &[routes::version_route()]),
    );
    for g in snap.groups() {
        if !g.group.is_empty() {
            docs.insert(
                format!("apis/{}", g.group),
                document_v3(&defs, &[routes::group_route(&g.group)]),
            );
        }
        for v in &g.versions {
            docs.insert(
                v3_path(&g.group, v),
                document_v3(&defs, &group_version_routes(snap, &g.group, v)),
            );
        }
    }
    docs
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
