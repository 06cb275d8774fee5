//! Shared inputs of the property tests that feed untrusted request data (bodies, patches,
//! query strings) to the server: valid objects of the kinds clients write most, the
//! built-in schemas, arbitrary JSON values over the vocabulary of those objects, and
//! edits of a valid object that keep most of it intact so the code under test gets past
//! its first checks.
//!
//! The properties themselves live beside the code they exercise (`patch/fuzz.rs`,
//! `apply/fuzz.rs`, `handlers/fuzz.rs`, `schema/protobuf/fuzz.rs`).

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use crate::kinds::core::service::ServiceAllocators;
use crate::registry::Resource;
use crate::schema::model::{Definitions, Schema};

/// Cases per property: enough to reach the directive and list-merge branches, few enough
/// that every property runs in about a second in the dev profile.
pub(crate) fn config(cases: u32) -> ProptestConfig {
    // PROPTEST_CASES (read by the default config) overrides, for a longer run by hand.
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            cases
        },
        // Inputs are cheap to regenerate; shrinking a failure must not take minutes.
        max_shrink_iters: 2048,
        ..default
    }
}

// === built-in kinds ===

/// The built-in resources and their schemas, built once per test binary.
pub(crate) struct Builtin {
    /// Every built-in resource.
    pub resources: Vec<Resource>,
    /// Every built-in schema.
    pub defs: Definitions,
}

impl Builtin {
    /// The resource `plural` of `group`.
    pub fn resource(&self, group: &str, plural: &str) -> &Resource {
        match self
            .resources
            .iter()
            .find(|r| r.info.group == group && r.info.plural == plural && r.info.storage_version)
        {
            Some(r) => r,
            None => panic!("no built-in resource {group}/{plural}"),
        }
    }

    /// The schema node of a resource's kind.
    pub fn schema(&self, res: &Resource) -> Schema {
        Schema::reference(res.info.definition.clone())
    }
}

/// The built-in kinds, as the server registers them.
pub(crate) fn builtin() -> &'static Builtin {
    static BUILTIN: OnceLock<Builtin> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let cidr = "10.43.0.0/16"
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid CIDR"));
        let (resources, defs) = crate::kinds::builtin(&ServiceAllocators::new(cidr)).build();
        Builtin { resources, defs }
    })
}

// === valid objects ===

/// A Deployment as kubectl sends it: lists merged by key (containers, ports, env), a
/// label selector, resources, probes.
pub(crate) fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {"a": "b"},
            "finalizers": ["example.com/a", "example.com/b"],
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.27",
                            "args": ["-a", "-b"],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                            "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": 0.1}},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                        },
                        {"name": "log", "image": "busybox", "command": ["tail", "-f"]},
                    ],
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "k", "operator": "Exists"}],
                },
            },
        },
    })
}

/// A ConfigMap with text and binary data.
pub(crate) fn configmap() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default", "labels": {"app": "web"}},
        "data": {"a": "1", "b.txt": "hello\nworld"},
        "binaryData": {"bin": "AAEC"},
    })
}

/// A Pod with the lists strategic merge patch merges by key.
pub(crate) fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}
        ]},
        "spec": {
            "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 8080, "name": "http"}]}],
            "volumes": [{"name": "v", "configMap": {"name": "cfg"}}],
            "nodeSelector": {"disk": "ssd"},
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

/// The three objects, each with its `(group, plural)`.
pub(crate) fn objects() -> [(&'static str, &'static str, Value); 3] {
    [
        ("apps", "deployments", deployment()),
        ("", "configmaps", configmap()),
        ("", "pods", pod()),
    ]
}

// === arbitrary JSON ===

/// Member names: fields of the objects above, patch directives, and odd names.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
    "uid",
    "resourceVersion",
    "managedFields",
    "spec",
    "status",
    "replicas",
    "selector",
    "matchLabels",
    "template",
    "containers",
    "initContainers",
    "image",
    "ports",
    "containerPort",
    "protocol",
    "env",
    "value",
    "resources",
    "limits",
    "cpu",
    "volumes",
    "volumeMounts",
    "mountPath",
    "data",
    "binaryData",
    "conditions",
    "type",
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$setElementOrder/finalizers",
    "$deleteFromPrimitiveList/finalizers",
    "$deleteFromPrimitiveList/args",
    "$setElementOrder",
    "$deleteFromPrimitiveList",
    "",
    "a",
    "~1",
    "é",
];

/// Scalars: directive values, quantities, extremes.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(
            &[
                "replace",
                "delete",
                "merge",
                "retainKeys",
                "",
                "web",
                "nginx",
                "1Gi",
                "100m",
                "-1",
                "1e3",
                "apps/v1",
                "v1",
                "Deployment",
                "ConfigMap",
                "Pod",
                "TCP",
                "2024-01-01T00:00:00Z",
            ][..]
        )
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// A member name.
pub(crate) fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => ".{0,6}",
    ]
}

/// Any JSON value, up to a few levels deep, over the vocabulary of built-in objects.
pub(crate) fn json_value() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

// === edits of a valid object ===

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// Every path to a node of `v` (the root included), in document order.
pub(crate) fn paths(v: &Value) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    let mut stack = vec![(Vec::new(), v)];
    while let Some((path, v)) = stack.pop() {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter().rev() {
                    let mut p = path.clone();
                    p.push(Step::Key(k.clone()));
                    stack.push((p, child));
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate().rev() {
                    let mut p = path.clone();
                    p.push(Step::Index(i));
                    stack.push((p, child));
                }
            }
            _ => {}
        }
        out.push(path);
    }
    out
}

/// The node at `path`, if there is one.
pub(crate) fn at_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, step| match (v, step) {
        (Value::Object(m), Step::Key(k)) => m.get_mut(k),
        (Value::Array(a), Step::Index(i)) => a.get_mut(*i),
        _ => None,
    })
}

/// A JSON pointer (RFC 6901) to `path`.
pub(crate) fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// What an edit puts at the node it picks.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    /// Replace the node by a value.
    Set(Value),
    /// Replace the node by `null` (a deletion in merge patches).
    Null,
    /// Add a directive member to the node (when it is an object), naming one of its
    /// members or elements.
    Directive(Directive, Index),
    /// Put a `$patch` element into the node (when it is a list).
    ListDirective(Value, Index),
    /// Duplicate an element of the node (when it is a list): keys that repeat.
    Duplicate(Index),
}

/// The strategic merge patch directives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Directive {
    /// `$patch: <value>`.
    Patch(&'static str),
    /// `$retainKeys: [some members]`.
    RetainKeys,
    /// `$setElementOrder/<list member>: [its elements, shuffled]`.
    SetElementOrder,
    /// `$deleteFromPrimitiveList/<list member>: [some elements]`.
    DeleteFromPrimitiveList,
}

fn edit() -> impl Strategy<Value = Edit> {
    let directive = prop_oneof![
        prop::sample::select(&["replace", "delete", "merge", "bogus"][..])
            .prop_map(Directive::Patch),
        Just(Directive::RetainKeys),
        Just(Directive::SetElementOrder),
        Just(Directive::DeleteFromPrimitiveList),
    ];
    let list_directive = prop_oneof![
        Just(json!({"$patch": "replace"})),
        Just(json!({"$patch": "delete", "name": "app"})),
        Just(json!({"$patch": "delete", "name": "log"})),
        Just(json!({"$patch": "delete"})),
        Just(json!({"$patch": "merge", "name": "app"})),
        Just(json!({"$patch": 7})),
        json_value(),
    ];
    prop_oneof![
        4 => json_value().prop_map(Edit::Set),
        2 => Just(Edit::Null),
        4 => (directive, any::<Index>()).prop_map(|(d, i)| Edit::Directive(d, i)),
        2 => (list_directive, any::<Index>()).prop_map(|(v, i)| Edit::ListDirective(v, i)),
        1 => any::<Index>().prop_map(Edit::Duplicate),
    ]
}

fn apply_edit(doc: &mut Value, path: &[Step], edit: Edit) {
    let Some(node) = at_mut(doc, path) else {
        return;
    };
    match (edit, node) {
        (Edit::Set(v), node) => *node = v,
        (Edit::Null, node) => *node = Value::Null,
        (Edit::Directive(d, i), Value::Object(m)) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let pick = |i: &Index| (!keys.is_empty()).then(|| keys[i.index(keys.len())].clone());
            match d {
                Directive::Patch(v) => {
                    m.insert("$patch".into(), json!(v));
                }
                Directive::RetainKeys => {
                    let kept: Vec<&String> = keys.iter().step_by(i.index(3) + 1).collect();
                    m.insert("$retainKeys".into(), json!(kept));
                }
                Directive::SetElementOrder => {
                    if let Some(k) = pick(&i)
                        && let Some(Value::Array(items)) = m.get(&k)
                    {
                        // The order kubectl sends: elements (by merge key) reversed.
                        let order: Vec<Value> = items
                            .iter()
                            .rev()
                            .map(|v| match v {
                                Value::Object(o) => o
                                    .iter()
                                    .find(|(k, _)| {
                                        matches!(
                                            k.as_str(),
                                            "name"
                                                | "containerPort"
                                                | "ip"
                                                | "type"
                                                | "uid"
                                                | "mountPath"
                                        )
                                    })
                                    .map(|(k, v)| json!({ k.clone(): v.clone() }))
                                    .unwrap_or_else(|| v.clone()),
                                other => other.clone(),
                            })
                            .collect();
                        m.insert(format!("$setElementOrder/{k}"), Value::Array(order));
                    }
                }
                Directive::DeleteFromPrimitiveList => {
                    if let Some(k) = pick(&i) {
                        let items = match m.get(&k) {
                            Some(Value::Array(items)) => items.iter().take(1).cloned().collect(),
                            Some(other) => vec![other.clone()],
                            None => Vec::new(),
                        };
                        m.insert(format!("$deleteFromPrimitiveList/{k}"), Value::Array(items));
                    }
                }
            }
        }
        (Edit::ListDirective(v, i), Value::Array(a)) => {
            let at = i.index(a.len() + 1);
            a.insert(at, v);
        }
        (Edit::Duplicate(i), Value::Array(a)) if !a.is_empty() => {
            let v = a[i.index(a.len())].clone();
            a.push(v);
        }
        _ => {}
    }
}

/// Keeps of `doc` only what lies on `paths` (plus the scalar members of list elements
/// on the way, which carry their merge keys): the shape of a hand-written patch.
fn skeleton(doc: &Value, keep: &[Vec<Step>]) -> Value {
    fn copy_path(from: &Value, to: &mut Value, path: &[Step]) {
        let Some((step, rest)) = path.split_first() else {
            *to = from.clone();
            return;
        };
        match (from, step) {
            (Value::Object(fm), Step::Key(k)) => {
                let Some(child) = fm.get(k) else { return };
                if !to.is_object() {
                    *to = Value::Object(Map::new());
                }
                if let Value::Object(tm) = to {
                    let slot = tm.entry(k.clone()).or_insert(Value::Null);
                    copy_path(child, slot, rest);
                }
            }
            (Value::Array(fa), Step::Index(i)) => {
                let Some(child) = fa.get(*i) else { return };
                if !to.is_array() {
                    *to = Value::Array(Vec::new());
                }
                if let Value::Array(ta) = to {
                    let mut elem = match child {
                        Value::Object(o) => Value::Object(
                            o.iter()
                                .filter(|(_, v)| !v.is_object() && !v.is_array())
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        ),
                        _ => Value::Null,
                    };
                    copy_path(child, &mut elem, rest);
                    ta.push(elem);
                }
            }
            _ => {}
        }
    }
    let mut out = Value::Object(Map::new());
    for p in keep {
        copy_path(doc, &mut out, p);
    }
    out
}

/// A patch document derived from `original`: the whole object or only the edited paths,
/// with edits that replace values, delete them and add strategic merge patch directives
/// where they belong (objects, lists of objects with merge keys, primitive lists).
pub(crate) fn edited(original: Value) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((any::<Index>(), edit()), 0..5),
        any::<bool>(),
    )
        .prop_map(move |(edits, whole)| {
            let mut doc = original.clone();
            let mut touched = Vec::new();
            for (i, e) in edits {
                let all = paths(&doc);
                let path = all[i.index(all.len())].clone();
                apply_edit(&mut doc, &path, e);
                touched.push(path);
            }
            if whole { doc } else { skeleton(&doc, &touched) }
        })
}

/// A request body; a failing property shows it as text.
#[derive(Clone)]
pub(crate) struct Body(pub Vec<u8>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// Serializes a value; values built from JSON always serialize.
pub(crate) fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|e| unreachable!("a JSON value serializes: {e}"))
}

// === a server for request-level properties ===

/// How long a read whose query may name a future resourceVersion (which makes it wait up
/// to 3 s, by design) or a watch (whose body never ends) is given.
const BRIEFLY: std::time::Duration = std::time::Duration::from_millis(200);

/// How long any other request is given: generous, so that a loaded machine does not make
/// a property fail.
const PATIENTLY: std::time::Duration = std::time::Duration::from_secs(30);

/// An API server over the memory store, with the runtime that drives it.
pub(crate) struct Server {
    rt: tokio::runtime::Runtime,
    /// The server.
    pub server: std::sync::Arc<crate::ApiServer>,
    next: std::sync::atomic::AtomicU64,
}

/// What a request got: the status and the body (empty for a body still streaming, such
/// as a watch's).
pub(crate) struct Answer {
    /// HTTP status.
    pub status: http::StatusCode,
    /// The body, if it was complete within the patience time.
    pub body: Vec<u8>,
}

impl Server {
    /// A server with the system namespaces, on a runtime of its own.
    pub fn new() -> Self {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("no runtime: {e}"),
        };
        let server = rt.block_on(crate::test_util::TestApiServer::new()).server;
        Self {
            rt,
            server,
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A number not returned before, for names of objects a case creates.
    pub fn unique(&self) -> u64 {
        self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends a request as a cluster admin; `None` when it has not answered after
    /// [`PATIENTLY`]. A panic in the handler fails the caller.
    pub fn request(
        &self,
        method: http::Method,
        uri: &str,
        headers: &[(http::header::HeaderName, &str)],
        body: Vec<u8>,
    ) -> Option<Answer> {
        self.request_within(PATIENTLY, method, uri, headers, body)
    }

    /// Like [`Server::request`], but `None` (and an empty body) once [`BRIEFLY`] has
    /// passed: for reads that may wait for a future resourceVersion, and watches.
    pub fn request_briefly(
        &self,
        method: http::Method,
        uri: &str,
        headers: &[(http::header::HeaderName, &str)],
        body: Vec<u8>,
    ) -> Option<Answer> {
        self.request_within(BRIEFLY, method, uri, headers, body)
    }

    fn request_within(
        &self,
        patience: std::time::Duration,
        method: http::Method,
        uri: &str,
        headers: &[(http::header::HeaderName, &str)],
        body: Vec<u8>,
    ) -> Option<Answer> {
        let mut req = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            req = req.header(name, *value);
        }
        let mut req = match req.body(axum::body::Body::from(body)) {
            Ok(r) => r,
            Err(e) => panic!("bad request for {uri}: {e}"),
        };
        req.extensions_mut()
            .insert(crate::auth::UserInfo::loopback());
        let server = self.server.clone();
        self.rt.block_on(async move {
            let response = tokio::time::timeout(patience, crate::handlers::handle(server, req))
                .await
                .ok()?;
            let status = response.status();
            let body = tokio::time::timeout(
                patience,
                http_body_util::BodyExt::collect(response.into_body()),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default();
            Some(Answer { status, body })
        })
    }

    /// Creates `obj` at `collection` (a path), panicking if the server refuses it.
    pub fn create(&self, collection: &str, obj: &Value) {
        let answer = self.request(
            http::Method::POST,
            collection,
            &[(http::header::CONTENT_TYPE, "application/json")],
            to_bytes(obj),
        );
        match answer {
            Some(a) if a.status.is_success() => {}
            Some(a) => panic!(
                "create at {collection} failed: {} {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            ),
            None => panic!("create at {collection} did not answer"),
        }
    }
}

/// The collection path of the objects of [`objects`] (namespace `default`, version v1).
pub(crate) fn collection(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("/api/v1/namespaces/default/{plural}")
    } else {
        format!("/apis/{group}/v1/namespaces/default/{plural}")
    }
}

/// Runs `property` over `strategy` with `cases` cases against one server holding the three
/// objects of [`objects`].
pub(crate) fn check<S: Strategy>(
    cases: u32,
    strategy: S,
    property: impl Fn(&Server, S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let server = Server::new();
    for (group, plural, obj) in objects() {
        server.create(&collection(group, plural), &obj);
    }
    // Failures of a runner outside `proptest!` cannot be saved per source file.
    let mut runner = TestRunner::new(ProptestConfig {
        failure_persistence: None,
        ..config(cases)
    });
    if let Err(e) = runner.run(&strategy, |input| property(&server, input)) {
        panic!("{e}");
    }
}

/// A 500 is the server's fault; anything else is an answer.
pub(crate) fn assert_not_internal(answer: &Answer, what: &str) -> Result<(), TestCaseError> {
    prop_assert_ne!(
        answer.status,
        http::StatusCode::INTERNAL_SERVER_ERROR,
        "{}: {}",
        what,
        String::from_utf8_lossy(&answer.body)
    );
    Ok(())
}

/// Whether a 500 is one upstream answers too: a plain Go error (no reason) from merging a
/// strategic merge patch or an applied configuration.
pub(crate) fn upstreams_500(answer: &Answer, content_type: &str) -> bool {
    answer.status == http::StatusCode::INTERNAL_SERVER_ERROR
        && (content_type.starts_with("application/strategic-merge-patch+json")
            || content_type.starts_with("application/apply-patch+yaml"))
        && serde_json::from_slice::<Value>(&answer.body)
            .is_ok_and(|s| s.get("reason").is_none_or(|r| r == ""))
}

/// The Accept header kubectl sends for `get`: a Table of the objects.
pub(crate) const ACCEPT_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Reads `path` back and the collection it is in, as JSON and as the Table kubectl asks
/// for (which prints every column from the stored fields): an accepted write must stay
/// readable.
pub(crate) fn assert_readable(server: &Server, path: &str) -> Result<(), TestCaseError> {
    let coll = path.rsplit_once('/').map_or(path, |(c, _)| c);
    for accept in ["application/json", ACCEPT_TABLE] {
        for p in [path, coll] {
            let answer = server.request(
                http::Method::GET,
                p,
                &[(http::header::ACCEPT, accept)],
                Vec::new(),
            );
            if let Some(a) = answer {
                assert_not_internal(&a, &format!("reading back {p} as {accept}"))?;
            }
        }
    }
    Ok(())
}
