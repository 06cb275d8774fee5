//! The HTTP surface: one entry point that parses the path, authenticates, negotiates and
//! hands the request to the verb's handler. Verbs live one per file.

mod binding;
pub mod body;
mod componentstatus;
mod create;
mod delete;
mod eviction;
#[cfg(test)]
mod fuzz;
mod get;
mod health;
mod list;
pub mod negotiation;
mod patch;
pub mod request;
pub mod response;
mod review;
pub(crate) mod scale;
pub(crate) mod streaming;
mod token;
mod update;
mod watch;
pub(crate) mod watch_memo;

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

/// Marks a request whose credentials did not authenticate (401, never anonymous).
#[derive(Debug, Clone, Copy)]
pub struct InvalidCredentials;

/// Query parameters (the first value of each name).
pub type Query = HashMap<String, String>;

fn parse_query(q: Option<&str>) -> Query {
    let mut out = Query::new();
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// A boolean query parameter, read as upstream's parameter codec does: absent, `false`
/// or `0` (any case) is false, anything else (`maybe`, an empty value) is true.
pub fn query_flag(q: &Query, name: &str) -> bool {
    q.get(name)
        .is_some_and(|v| !v.eq_ignore_ascii_case("false") && v != "0")
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
    /// The query string as sent (repeated parameters such as exec's `command`).
    pub raw_query: String,
    /// Request headers.
    pub headers: http::HeaderMap,
    /// The request body (taken once by the handler; the lock makes `Call` shareable).
    pub body: parking_lot::Mutex<Option<Body>>,
    /// The connection's upgrade, for the streaming subresources (exec, attach,
    /// portforward); absent on HTTP/2 and in-process requests.
    pub upgrade: parking_lot::Mutex<Option<hyper::upgrade::OnUpgrade>>,
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

    /// What the body is, from Content-Type; a header that is not text names no type
    /// (upstream answers 415 for it rather than reading the body as JSON).
    pub fn body_type(&self) -> Result<negotiation::BodyType, String> {
        match self.headers.get(http::header::CONTENT_TYPE) {
            None => negotiation::body_type(None),
            Some(v) => match v.to_str() {
                Ok(s) => negotiation::body_type(Some(s)),
                Err(_) => Err(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            },
        }
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
            patch: false,
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
            Some("token") if self.resource.info.has_subresource(Subresource::Token) => {
                Ok(Some(Subresource::Token))
            }
            Some("approval") if self.resource.info.has_subresource(Subresource::Approval) => {
                Ok(Some(Subresource::Approval))
            }
            Some("ephemeralcontainers")
                if self
                    .resource
                    .info
                    .has_subresource(Subresource::EphemeralContainers) =>
            {
                Ok(Some(Subresource::EphemeralContainers))
            }
            Some("resize") if self.resource.info.has_subresource(Subresource::Resize) => {
                Ok(Some(Subresource::Resize))
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

/// Upstream's 405 for a method its router has no route for on a path it serves: go-restful
/// answers it and the server turns it into a generic Status, without details of the
/// resource.
pub fn method_not_allowed() -> Status {
    let mut s = Status::generic(
        405,
        k1s_apimachinery::status::reason::METHOD_NOT_ALLOWED,
        "the server does not allow this method on the requested resource",
    );
    s.details = Some(Default::default());
    s
}

/// Upstream's 405 from a handler whose storage cannot do the verb (a watch on a
/// resource that can only be listed): it names the resource.
fn method_not_supported(r: &Resource, verb: &str) -> Status {
    Status::method_not_supported(&GroupResource::new(&r.info.group, &r.info.plural), verb)
}

/// Handles one request. The authenticated user, if any, is in the request extensions.
pub async fn handle(server: Arc<ApiServer>, req: Request<Body>) -> Response {
    // Upstream's audit-init filter: the client's Audit-ID, or a new one, on every answer.
    let audit_id = req
        .headers()
        .get("audit-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut response = handle_audited(server, req, &audit_id).await;
    if let Ok(v) = http::HeaderValue::from_str(&audit_id) {
        response.headers_mut().insert("audit-id", v);
    }
    response
}

/// The address of the client a request came from (set by the serving layer).
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub std::net::SocketAddr);

/// The client's addresses as upstream's audit records them: X-Forwarded-For, then
/// X-Real-Ip, then the connection's peer.
fn source_ips(parts: &http::request::Parts) -> Vec<String> {
    let mut ips: Vec<String> = Vec::new();
    let mut push = |ip: &str| {
        let ip = ip.trim();
        if ip.parse::<std::net::IpAddr>().is_ok() && !ips.iter().any(|i| i == ip) {
            ips.push(ip.to_string());
        }
    };
    if let Some(xff) = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        xff.split(',').for_each(&mut push);
    }
    if let Some(real) = parts.headers.get("x-real-ip").and_then(|v| v.to_str().ok()) {
        push(real);
    }
    if let Some(RemoteAddr(a)) = parts.extensions.get::<RemoteAddr>() {
        push(&a.ip().to_string());
    }
    ips
}

/// Authentication, then the audit event around the rest of the chain.
async fn handle_audited(server: Arc<ApiServer>, req: Request<Body>, audit_id: &str) -> Response {
    let (mut parts, mut body) = req.into_parts();
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let path = percent_decode(parts.uri.path());
    let query = parse_query(parts.uri.query());
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let target = request::parse(&path);
    // Credentials that do not authenticate are refused; none at all make the request
    // anonymous where `--anonymous-auth` allows it, as upstream's authenticator chain.
    let authenticated = match parts.extensions.get::<UserInfo>() {
        Some(u) => u.clone(),
        None if parts.extensions.get::<InvalidCredentials>().is_none()
            && server.anonymous_enabled() =>
        {
            UserInfo::anonymous()
        }
        None => return response::status(&crate::auth::unauthorized()),
    };
    let attributes_of = |user: &UserInfo| match &target {
        Target::Resource(rp) => {
            crate::auth::authz::resource_attributes(user, &parts.method, rp, &query)
        }
        _ => crate::auth::authz::path_attributes(user, &parts.method, &path),
    };
    // The audit event is about the authenticated user; impersonation is recorded in it.
    let mut event = match server.audit.get() {
        Some(auditor) => auditor.begin(
            &attributes_of(&authenticated),
            crate::audit::RequestMeta {
                audit_id: audit_id.to_string(),
                request_uri: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                source_ips: source_ips(&parts),
                user_agent: parts
                    .headers
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string(),
            },
        ),
        None => None,
    };
    if let Some(ev) = event.as_mut()
        && ev.wants_request_object()
        && matches!(
            parts.method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH | http::Method::DELETE
        )
    {
        // The body is read here to be recorded and handed on as read.
        match body::read(body).await {
            Ok(bytes) => {
                let protobuf = parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|c| c.starts_with("application/vnd.kubernetes.protobuf"));
                let decoded = if protobuf {
                    body::parse_protobuf(&bytes)
                } else {
                    body::parse_yaml(&bytes)
                };
                if let Ok(v) = decoded {
                    ev.set_request_object(v);
                }
                body = Body::from(bytes);
            }
            Err(s) => {
                let r = response::status(&s);
                ev.write("ResponseComplete", Some(s.code()), None);
                return r;
            }
        }
    }
    let user = if crate::auth::impersonation::requested(&parts.headers) {
        match crate::auth::impersonation::impersonate(&server, &authenticated, &parts.headers) {
            Ok(u) => {
                if let Some(ev) = event.as_mut() {
                    ev.set_impersonated_user(&u);
                }
                u
            }
            Err(s) => return finish_audit(event, response::status(&s), false).await,
        }
    } else {
        authenticated
    };
    let attrs = attributes_of(&user);
    let long_running = crate::inflight::long_running(&attrs);
    let _permit = match server.inflight.admit(&attrs) {
        Ok(p) => p,
        Err(crate::inflight::TooMany) => {
            return finish_audit(event, crate::inflight::too_many_requests(), false).await;
        }
    };
    let decision = server.authorizer.authorize(&server, &attrs);
    if let Some(ev) = event.as_mut() {
        ev.annotate(
            "authorization.k8s.io/decision",
            if decision.allowed { "allow" } else { "forbid" },
        );
        if !decision.reason.is_empty() {
            ev.annotate("authorization.k8s.io/reason", &decision.reason);
        }
    }
    if !decision.allowed {
        let r = response::status(&crate::auth::authz::forbidden(&attrs, &decision.reason));
        return finish_audit(event, r, false).await;
    }
    let (r, annotations) = crate::audit::collect_annotations(serve_authorized(
        server, parts, body, upgrade, query, raw_query, target, user,
    ))
    .await;
    if let Some(ev) = event.as_mut() {
        for (key, value) in &annotations {
            ev.annotate(key, value.as_str().unwrap_or_default());
        }
    }
    finish_audit(event, r, long_running).await
}

/// Writes the event's last stages for `response`: ResponseComplete now, or for a
/// long-running request ResponseStarted now and ResponseComplete when its body ends.
async fn finish_audit(
    event: Option<crate::audit::Event>,
    response: Response,
    long_running: bool,
) -> Response {
    let Some(event) = event else {
        return response;
    };
    let code = response.status().as_u16();
    if long_running {
        event.write("ResponseStarted", Some(code), None);
        return response.map(|b| {
            Body::new(AuditedBody {
                body: b,
                event: Some(event),
                code,
            })
        });
    }
    // The body is recorded for failures (their Status) and at RequestResponse level.
    let json_body = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json_body || (code < 300 && !event.wants_response_object()) {
        event.write("ResponseComplete", Some(code), None);
        return response;
    }
    let (parts, b) = response.into_parts();
    match axum::body::to_bytes(b, usize::MAX).await {
        Ok(bytes) => {
            let v = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
            event.write("ResponseComplete", Some(code), v.as_ref());
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => {
            event.write("ResponseComplete", Some(code), None);
            tracing::debug!(error = %e, "response body failed");
            Response::from_parts(parts, Body::empty())
        }
    }
}

/// A long-running response's body, which writes the ResponseComplete stage when it ends.
struct AuditedBody {
    body: Body,
    event: Option<crate::audit::Event>,
    code: u16,
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        if let Some(ev) = self.event.take() {
            ev.write("ResponseComplete", Some(self.code), None);
        }
    }
}

impl http_body::Body for AuditedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Serves an authenticated, authorized request.
#[allow(clippy::too_many_arguments)]
async fn serve_authorized(
    server: Arc<ApiServer>,
    parts: http::request::Parts,
    body: Body,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
    query: Query,
    raw_query: String,
    target: Target,
    user: UserInfo,
) -> Response {
    // A group-version a remote APIService registered goes to its extension server.
    let remote = match &target {
        Target::Resource(rp) if !rp.group.is_empty() => {
            server.aggregator.remote(&rp.group, &rp.version)
        }
        Target::GroupVersion(g, v) => server.aggregator.remote(g, v),
        _ => None,
    };
    if let Some(remote) = remote {
        return crate::aggregator::proxy::proxy(&server, remote, &user, parts, body).await;
    }
    match &target {
        Target::Version => return health::version(),
        Target::Health { endpoint, check } => {
            return health::health(&server, endpoint, check.as_deref(), &query);
        }
        _ => {}
    }
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
        Target::Resource(rp) if rp.group == crate::metrics::GROUP => {
            crate::metrics::handle(&server, &rp, &parts.method, &query)
        }
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
                        raw_query,
                        headers: parts.headers.clone(),
                        body: parking_lot::Mutex::new(Some(body)),
                        upgrade: parking_lot::Mutex::new(upgrade),
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
    let sub = call.path.subresource.clone();
    let verb = match route_verb(&call.resource, &call.path, &call.method, &call.query) {
        Ok(verb) => verb,
        Err(status) => return response::status(&status),
    };
    let component_statuses =
        call.resource.info.group.is_empty() && call.resource.info.plural == "componentstatuses";
    let result = match (verb, sub.as_deref()) {
        ("list", None) if component_statuses => componentstatus::list(call).await,
        ("get", None) if component_statuses => componentstatus::get(call).await,
        ("watch", _) => watch::watch(call).await,
        ("list", _) => list::list(call).await,
        ("get", Some("scale")) => scale::get(call).await,
        ("update", Some("scale")) => scale::update(call).await,
        ("patch", Some("scale")) => scale::patch(call).await,
        ("get", Some("log")) => streaming::log(call).await,
        ("get" | "create", Some("exec" | "attach" | "portforward")) => {
            streaming::upgrade(call).await
        }
        ("get", _) => get::get(call).await,
        ("create", Some("binding")) => binding::create_subresource(call).await,
        ("create", None)
            if call.resource.info.group.is_empty() && call.resource.info.plural == "bindings" =>
        {
            binding::create_collection(call).await
        }
        ("create", Some("token")) => token::create(call).await,
        ("create", None) if call.resource.info.group == "authentication.k8s.io" => {
            review::create(call).await
        }
        ("create", None) if call.resource.info.group == "authorization.k8s.io" => {
            review::create_access_review(call).await
        }
        ("create", Some("eviction")) => eviction::create(call).await,
        ("create", _) => create::create(call).await,
        ("update", _) => update::update(call).await,
        ("patch", _) => patch::patch(call).await,
        ("delete", _) => delete::delete(call).await,
        ("deletecollection", _) => delete::delete_collection(call).await,
        _ => Err(method_not_allowed()),
    };
    result.unwrap_or_else(|s| response::status(&s))
}

/// The verb a request asks for, as upstream's router sees it: each path has routes for
/// the methods of the verbs served there and nothing else. A path with no route at all
/// is 404; a served path asked with another method is 405 (`DELETE` of the namespaces
/// collection, `POST` to a watch path or to every namespace at once).
fn route_verb(
    r: &Resource,
    path: &ResourcePath,
    method: &Method,
    query: &Query,
) -> Result<&'static str, Status> {
    let info = &r.info;
    let asked = match *method {
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    if let Some(sub) = path.subresource.as_deref() {
        let served = info
            .subresources
            .iter()
            .find(|s| s.as_str() == sub)
            .filter(|_| !path.watch_prefix)
            .ok_or_else(not_found)?;
        return served
            .verbs()
            .iter()
            .copied()
            .find(|v| *v == asked)
            .ok_or_else(method_not_allowed);
    }
    let watch_asked = query_flag(query, "watch");
    if path.watch_prefix {
        // `/watch/...` has one route, GET, where the resource can be watched.
        if !info.supports("watch") {
            return Err(not_found());
        }
        return if *method == Method::GET {
            Ok("watch")
        } else {
            Err(method_not_allowed())
        };
    }
    let (verb, served_here): (&'static str, &[&str]) = match path.name {
        Some(_) => {
            let verb = match asked {
                "get" if watch_asked => "watch",
                "create" => "",
                v => v,
            };
            (verb, &["get", "update", "patch", "delete"])
        }
        None => {
            let verb = match asked {
                "get" if watch_asked => "watch",
                "get" => "list",
                "delete" => "deletecollection",
                "create" => "create",
                _ => "",
            };
            if info.namespaced && path.namespace.is_none() {
                // Every namespace at once: only list (and watch through it).
                let verb = if matches!(verb, "list" | "watch") {
                    verb
                } else {
                    ""
                };
                (verb, &["list"])
            } else {
                (verb, &["list", "create", "deletecollection"])
            }
        }
    };
    if !served_here.iter().any(|v| info.supports(v)) {
        return Err(not_found());
    }
    match verb {
        "" => Err(method_not_allowed()),
        // `?watch=true` reaches the list (or get) handler, which finds no watch in the
        // storage and names the resource.
        "watch" if !info.supports("watch") => Err(method_not_supported(r, "watch")),
        v if info.supports(v) => Ok(v),
        _ => Err(method_not_allowed()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestApiServer;
    use serde_json::{Value, json};

    /// Sends one request as a cluster admin; the status and the body read as JSON (null
    /// when it is not JSON, or for a watch, whose body never ends).
    async fn send(api: &TestApiServer, method: Method, uri: &str) -> (StatusCode, Value) {
        send_body(api, method, uri, json!({})).await
    }

    /// [`send`] with a JSON body.
    async fn send_body(
        api: &TestApiServer,
        method: Method,
        uri: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("a valid request");
        req.extensions_mut().insert(UserInfo::loopback());
        let resp = handle(api.server.clone(), req).await;
        let status = resp.status();
        let body = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            http_body_util::BodyExt::collect(resp.into_body()),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .and_then(|b| serde_json::from_slice(&b.to_bytes()).ok())
        .unwrap_or(Value::Null);
        (status, body)
    }

    fn names(list: &Value) -> Vec<String> {
        list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o["metadata"]["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Upstream's answer when the path is served but not with this method.
    fn upstream_405() -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server does not allow this method on the requested resource",
            "reason": "MethodNotAllowed",
            "details": {},
            "code": 405,
        })
    }

    #[tokio::test]
    async fn deleting_the_namespaces_collection_is_refused_and_deletes_nothing() {
        // Upstream has no deletecollection route for namespaces; k1s answered 200 and
        // started deleting every namespace of the cluster.
        let api = TestApiServer::new().await;
        let (_, before) = send(&api, Method::GET, "/api/v1/namespaces").await;
        assert!(names(&before).contains(&"default".to_string()));
        let (code, body) = send(&api, Method::DELETE, "/api/v1/namespaces").await;
        assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body, upstream_405());
        let (_, after) = send(&api, Method::GET, "/api/v1/namespaces").await;
        assert_eq!(names(&after), names(&before));
        for ns in names(&after) {
            let (_, obj) = send(&api, Method::GET, &format!("/api/v1/namespaces/{ns}")).await;
            assert!(
                obj["metadata"]["deletionTimestamp"].is_null(),
                "{ns} is terminating"
            );
        }
    }

    #[tokio::test]
    async fn delete_options_of_the_wrong_type_are_refused_and_delete_nothing() {
        // A string grace period used to be ignored, so the object went with the default
        // one; upstream's typed decoding answers 400.
        let api = TestApiServer::new().await;
        let cms = "/api/v1/namespaces/default/configmaps";
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}});
        let (code, _) = send_body(&api, Method::POST, cms, cm).await;
        assert_eq!(code, StatusCode::CREATED);
        for (body, message) in [
            (
                json!({"gracePeriodSeconds": "0"}),
                "json: cannot unmarshal string into Go struct field DeleteOptions.gracePeriodSeconds of type int64",
            ),
            (
                json!({"orphanDependents": {}}),
                "json: cannot unmarshal object into Go struct field DeleteOptions.orphanDependents of type bool",
            ),
            (
                json!([1]),
                "json: cannot unmarshal array into Go value of type v1.DeleteOptions",
            ),
        ] {
            for uri in [format!("{cms}/keep"), cms.to_string()] {
                let (code, status) = send_body(&api, Method::DELETE, &uri, body.clone()).await;
                assert_eq!(code, StatusCode::BAD_REQUEST, "{uri} {body}: {status}");
                assert_eq!(status["message"], message, "{uri} {body}");
            }
        }
        let (code, _) = send(&api, Method::GET, &format!("{cms}/keep")).await;
        assert_eq!(code, StatusCode::OK);
        let (code, _) = send_body(
            &api,
            Method::DELETE,
            &format!("{cms}/keep"),
            json!({"gracePeriodSeconds": 0, "propagationPolicy": "Background"}),
        )
        .await;
        assert_eq!(code, StatusCode::OK);
    }

    #[tokio::test]
    async fn deletes_answer_with_the_object_where_upstreams_storage_returns_it() {
        // ServiceAccounts (like pods, PVCs, quotas, storage classes …) answer with the
        // deleted object; ConfigMaps with a Status.
        let api = TestApiServer::new().await;
        for (collection, kind, answer) in [
            (
                "/api/v1/namespaces/default/serviceaccounts",
                "ServiceAccount",
                "ServiceAccount",
            ),
            (
                "/api/v1/namespaces/default/configmaps",
                "ConfigMap",
                "Status",
            ),
            (
                "/apis/storage.k8s.io/v1/storageclasses",
                "StorageClass",
                "StorageClass",
            ),
        ] {
            let mut obj = json!({"kind": kind, "metadata": {"name": "gone"}});
            obj["apiVersion"] = json!(if kind == "StorageClass" {
                "storage.k8s.io/v1"
            } else {
                "v1"
            });
            if kind == "StorageClass" {
                obj["provisioner"] = json!("example.com/none");
            }
            let (code, body) = send_body(&api, Method::POST, collection, obj).await;
            assert_eq!(code, StatusCode::CREATED, "{body}");
            let (code, body) = send(&api, Method::DELETE, &format!("{collection}/gone")).await;
            assert_eq!(code, StatusCode::OK, "{body}");
            assert_eq!(body["kind"], answer, "{collection}: {body}");
        }
    }

    #[tokio::test]
    async fn only_the_methods_upstream_routes_are_served() {
        let api = TestApiServer::new().await;
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}});
        let (code, _) = send_body(
            &api,
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            cm,
        )
        .await;
        assert_eq!(code, StatusCode::CREATED);
        let (_, cms) = send(&api, Method::GET, "/api/v1/configmaps").await;
        assert!(names(&cms).contains(&"keep".to_string()));
        // 405: a path upstream serves, with a method it has no route for there.
        for (method, uri) in [
            (Method::DELETE, "/api/v1/configmaps"),
            (Method::POST, "/api/v1/configmaps"),
            (Method::POST, "/api/v1/namespaces/default/configmaps/x"),
            (Method::PUT, "/api/v1/namespaces/default/configmaps"),
            (Method::POST, "/api/v1/watch/namespaces/default/configmaps"),
            (Method::DELETE, "/api/v1/watch/namespaces"),
            (Method::GET, "/api/v1/namespaces/default/finalize"),
            (Method::PATCH, "/api/v1/namespaces/default/finalize"),
            (Method::DELETE, "/api/v1/namespaces/default/status"),
            (
                Method::POST,
                "/apis/apps/v1/namespaces/default/deployments/x/scale",
            ),
            (Method::DELETE, "/api/v1/componentstatuses"),
            (Method::POST, "/api/v1/componentstatuses"),
            (Method::PUT, "/api/v1/componentstatuses/etcd-0"),
            (Method::GET, "/api/v1/namespaces/default/bindings"),
            (Method::OPTIONS, "/api/v1/namespaces/default/configmaps"),
        ] {
            let (code, body) = send(&api, method.clone(), uri).await;
            assert_eq!(
                code,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri}: {body}"
            );
            assert_eq!(body, upstream_405(), "{method} {uri}");
        }
        // 404: no route at all.
        for (method, uri) in [
            (Method::GET, "/api/v1/namespaces/default/bindings/x"),
            (Method::GET, "/api/v1/watch/componentstatuses"),
            (
                Method::GET,
                "/api/v1/watch/namespaces/default/configmaps/x/status",
            ),
            (Method::GET, "/api/v1/namespaces/default/configmaps/x/scale"),
        ] {
            let (code, body) = send(&api, method.clone(), uri).await;
            assert_eq!(code, StatusCode::NOT_FOUND, "{method} {uri}: {body}");
        }
        // A watch asked of a resource that can only be listed names it, as upstream's
        // list handler does.
        let (code, body) = send(&api, Method::GET, "/api/v1/componentstatuses?watch=true").await;
        assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            body["message"],
            "watch is not supported on resources of kind \"componentstatuses\""
        );
        // Deleting every configmap of every namespace at once was served too.
        let (_, again) = send(&api, Method::GET, "/api/v1/configmaps").await;
        assert_eq!(names(&again), names(&cms));
    }

    #[test]
    fn boolean_parameters_read_like_upstreams_parameter_codec() {
        // `watch=maybe` listed instead of watching; upstream reads it as true.
        let q = parse_query(Some("a=true&b=1&c=maybe&d=&e=false&f=0&g=FALSE"));
        let flags: Vec<bool> = ["a", "b", "c", "d", "e", "f", "g", "missing"]
            .iter()
            .map(|n| query_flag(&q, n))
            .collect();
        assert_eq!(flags, [true, true, true, true, false, false, false, false]);
    }
}
