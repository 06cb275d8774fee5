//! The HTTP surface: one entry point that parses the path, authenticates, negotiates and
//! hands the request to the verb's handler. Verbs live one per file.

mod body;
mod create;
mod delete;
#[cfg(test)]
mod fuzz;
mod get;
mod health;
mod list;
pub mod negotiation;
mod patch;
pub mod request;
pub mod response;
mod scale;
mod update;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{Method, Request, StatusCode};
use k1s_apimachinery::{GroupResource, Status};

use self::request::{ResourcePath, Target};
use crate::ApiServer;
use crate::auth::UserInfo;
use crate::registry::generic::{FieldValidation, WriteContext};
use crate::registry::{Resource, Subresource};

/// Query parameters (the first value of each name).
pub type Query = HashMap<String, String>;

fn parse_query(q: Option<&str>) -> Query {
    let mut out = Query::new();
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// A boolean query parameter (`true`/`1`).
pub fn query_flag(q: &Query, name: &str) -> bool {
    matches!(q.get(name).map(String::as_str), Some("true" | "1" | "True"))
}

/// Everything a verb handler needs about the request.
pub struct Call {
    /// The server.
    pub server: Arc<ApiServer>,
    /// Who asks.
    pub user: UserInfo,
    /// Method.
    pub method: Method,
    /// The resource path.
    pub path: ResourcePath,
    /// The resource.
    pub resource: Arc<Resource>,
    /// Query parameters.
    pub query: Query,
    /// Request headers.
    pub headers: http::HeaderMap,
    /// The request body (taken once by the handler; the lock makes `Call` shareable).
    pub body: parking_lot::Mutex<Option<Body>>,
}

impl Call {
    /// Takes the request body (empty if already taken).
    pub fn take_body(&self) -> Body {
        self.body.lock().take().unwrap_or_else(Body::empty)
    }

    /// The namespace for namespaced resources.
    pub fn namespace(&self) -> Option<&str> {
        self.path.namespace.as_deref()
    }

    /// A header as text.
    pub fn header(&self, name: http::header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The write context from `dryRun`, `fieldManager`, `fieldValidation` and `force`.
    pub fn write_context(&self) -> Result<WriteContext, Status> {
        let dry_run = match self.query.get("dryRun").map(String::as_str) {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(Status::bad_request(&format!(
                    "Invalid dry run value: dryRun: Unsupported value: \"{other}\": supported values: \"All\""
                )));
            }
        };
        let field_manager = match self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(m) if m.chars().count() > 128 => {
                return Err(Status::bad_request(&format!(
                    "fieldManager: Too long: may not be more than 128 bytes: \"{m}\""
                )));
            }
            Some(m) => m.clone(),
            None => default_field_manager(self.header(http::header::USER_AGENT)),
        };
        Ok(WriteContext {
            user: self.user.clone(),
            dry_run,
            field_manager,
            field_validation: FieldValidation::parse(
                self.query.get("fieldValidation").map(String::as_str),
            )?,
            force: query_flag(&self.query, "force"),
            applied: false,
        })
    }

    /// The subresource being addressed, if it is one the generic registry serves.
    pub fn subresource(&self) -> Result<Option<Subresource>, Status> {
        match self.path.subresource.as_deref() {
            None => Ok(None),
            Some("status") if self.resource.info.has_subresource(Subresource::Status) => {
                Ok(Some(Subresource::Status))
            }
            Some("scale") if self.resource.info.has_subresource(Subresource::Scale) => {
                Ok(Some(Subresource::Scale))
            }
            Some("finalize") if self.resource.info.has_subresource(Subresource::Finalize) => {
                Ok(Some(Subresource::Finalize))
            }
            Some(_) => Err(not_found()),
        }
    }
}

/// Upstream's field manager for requests that name none: the user agent's program name.
fn default_field_manager(user_agent: Option<&str>) -> String {
    let ua = user_agent.unwrap_or("unknown");
    let prefix: String = ua
        .split('/')
        .next()
        .unwrap_or(ua)
        .chars()
        .take(128)
        .collect();
    if prefix.is_empty() {
        "unknown".into()
    } else {
        prefix
    }
}

/// Upstream's 404 for a path nothing serves.
pub fn not_found() -> Status {
    let mut s = Status::generic(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    s.details = Some(Default::default());
    s
}

fn method_not_allowed(r: &Resource, verb: &str) -> Status {
    Status::method_not_supported(&GroupResource::new(&r.info.group, &r.info.plural), verb)
}

/// Handles one request. The authenticated user, if any, is in the request extensions.
pub async fn handle(server: Arc<ApiServer>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let path = percent_decode(parts.uri.path());
    let query = parse_query(parts.uri.query());
    let target = request::parse(&path);
    // Health and version are public, like upstream's system:public-info-viewer.
    match &target {
        Target::Version => return health::version(),
        Target::Health { endpoint, check } => {
            return health::health(&server, endpoint, check.as_deref(), &query);
        }
        _ => {}
    }
    let Some(user) = parts.extensions.get::<UserInfo>().cloned() else {
        return response::status(&crate::auth::unauthorized());
    };
    let accept = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    match target {
        Target::Root => crate::discovery::root_paths(&server),
        Target::LegacyRoot => crate::discovery::legacy_root(&server, accept),
        Target::LegacyVersion(v) => crate::discovery::resource_list(&server, "", &v),
        Target::GroupsRoot => crate::discovery::groups(&server, accept),
        Target::Group(g) => crate::discovery::group(&server, &g),
        Target::GroupVersion(g, v) => crate::discovery::resource_list(&server, &g, &v),
        Target::OpenApiV2 => crate::openapi::serve_v2(&server, accept, &parts.headers),
        Target::OpenApiV3Root => crate::openapi::serve_v3_root(&server),
        Target::OpenApiV3(p) => crate::openapi::serve_v3(&server, &p, &query, &parts.headers),
        Target::Resource(rp) => {
            let snapshot = server.registry.snapshot();
            match snapshot.get(&rp.group, &rp.version, &rp.resource) {
                None => response::status(&not_found()),
                Some(resource) => {
                    let call = Call {
                        server: server.clone(),
                        user,
                        method: parts.method.clone(),
                        path: rp,
                        resource: resource.clone(),
                        query,
                        headers: parts.headers.clone(),
                        body: parking_lot::Mutex::new(Some(body)),
                    };
                    dispatch(call).await
                }
            }
        }
        Target::Version | Target::Health { .. } | Target::NotFound => {
            response::status(&not_found())
        }
    }
}

fn percent_decode(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// Picks the verb from method, path and query.
async fn dispatch(call: Call) -> Response {
    let info = &call.resource.info;
    if info.namespaced && call.path.namespace.is_none() && call.path.name.is_some() {
        // A namespaced object addressed without a namespace does not exist.
        return response::status(&not_found());
    }
    if !info.namespaced && call.path.namespace.is_some() && call.path.resource != "namespaces" {
        return response::status(&not_found());
    }
    let watch = call.path.watch_prefix || query_flag(&call.query, "watch");
    let has_name = call.path.name.is_some();
    let sub = call.path.subresource.clone();
    let verb = match (&call.method, has_name, sub.as_deref()) {
        (&Method::GET, _, None) if watch => "watch",
        (&Method::GET, false, None) => "list",
        (&Method::GET, true, None) => "get",
        (&Method::POST, false, None) => "create",
        (&Method::PUT, true, None) => "update",
        (&Method::PATCH, true, None) => "patch",
        (&Method::DELETE, true, None) => "delete",
        (&Method::DELETE, false, None) => "deletecollection",
        (&Method::GET, true, Some(_)) => "get",
        (&Method::PUT, true, Some(_)) => "update",
        (&Method::PATCH, true, Some(_)) => "patch",
        _ => "",
    };
    if verb.is_empty() || !call.resource.info.supports(verb) {
        let action = if verb.is_empty() {
            call.method.as_str().to_string()
        } else {
            verb.to_string()
        };
        return response::status(&method_not_allowed(&call.resource, &action));
    }
    let result = match (verb, sub.as_deref()) {
        ("watch", _) => watch::watch(call).await,
        ("list", _) => list::list(call).await,
        ("get", Some("scale")) => scale::get(call).await,
        ("update", Some("scale")) => scale::update(call).await,
        ("patch", Some("scale")) => scale::patch(call).await,
        ("get", _) => get::get(call).await,
        ("create", _) => create::create(call).await,
        ("update", _) => update::update(call).await,
        ("patch", _) => patch::patch(call).await,
        ("delete", _) => delete::delete(call).await,
        _ => delete::delete_collection(call).await,
    };
    result.unwrap_or_else(|s| response::status(&s))
}

/// The version string the OpenAPI documents carry.
pub fn health_version() -> &'static str {
    health::GIT_VERSION
}

/// The `Content-Type` status code for created vs updated objects.
pub fn write_code(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}
