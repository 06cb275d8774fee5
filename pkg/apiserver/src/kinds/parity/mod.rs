//! Validation parity with upstream, table-driven: for every served built-in kind, a valid
//! object is created, then copies missing each required field are created and stored
//! copies with each immutable field changed are updated, and every refusal must be
//! upstream's 422 with upstream's cause text (`spec.selector: Required value`,
//! `roleRef: Invalid value: …: cannot change roleRef`).
//!
//! Each group keeps its rows in its own file; [`every_case`] lists them all, and
//! [`every_served_kind_has_a_case`] fails when a served kind has none.

mod admission;
mod apiregistration;
mod apps;
mod core;
mod core_pod;
mod networking;
mod resource;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::test_util::{TestApi, TestApiServer};

/// The namespace every namespaced case lives in.
pub const NS: &str = "parity";

/// One kind's rows.
pub struct Case {
    /// The collection path (`/apis/apps/v1/namespaces/parity/deployments`,
    /// `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings`).
    pub collection: &'static str,
    /// A valid object, with `metadata.name`; created first and expected to succeed.
    pub valid: Value,
    /// Fields upstream requires: the JSON pointer removed from `valid` before a create,
    /// and a text the 422's message must contain (`spec.roleRef.name: Required value`).
    pub required: Vec<(&'static str, &'static str)>,
    /// Values upstream refuses on create: the JSON pointer set in `valid`, its value, and
    /// the expected text.
    pub invalid: Vec<(&'static str, Value, &'static str)>,
    /// Fields upstream keeps immutable: the JSON pointer changed in the stored object
    /// before a PUT, the new value, and the expected text (`field is immutable`, or the
    /// kind's own wording).
    pub immutable: Vec<(&'static str, Value, &'static str)>,
    /// Builds one row's object from `valid`, a name token unique to the row, and the
    /// row's edit: [`named_object`] unless a kind's names are special (a CRD is named
    /// `<plural>.<group>`).
    pub build: Build,
    /// Whether a stored object is ready for the immutable rows (a CRD fixes its scope
    /// once Established); the runner waits a moment for it.
    pub ready: Option<fn(&Value) -> bool>,
}

/// How a case builds one row's object: `(valid, token, edit)`.
pub type Build = fn(&Value, &str, &dyn Fn(&mut Value)) -> Value;

/// The default [`Build`]: `valid` named `token` (an IP-named kind gets a distinct IP),
/// then edited; an edit of `metadata.name` wins.
pub fn named_object(valid: &Value, token: &str, edit: &dyn Fn(&mut Value)) -> Value {
    let mut o = with_name(valid, token);
    edit(&mut o);
    o
}

impl Case {
    /// A case with only a valid object; rows are added with the builder methods.
    pub fn new(collection: &'static str, valid: Value) -> Self {
        Self {
            collection,
            valid,
            required: Vec::new(),
            invalid: Vec::new(),
            immutable: Vec::new(),
            build: named_object,
            ready: None,
        }
    }

    /// Builds the rows' objects with `build` instead of [`named_object`].
    pub fn built_by(mut self, build: Build) -> Self {
        self.build = build;
        self
    }

    /// Waits for `ready` on the stored object before the immutable rows.
    pub fn once(mut self, ready: fn(&Value) -> bool) -> Self {
        self.ready = Some(ready);
        self
    }

    /// Adds a required field.
    pub fn required(mut self, pointer: &'static str, expected: &'static str) -> Self {
        self.required.push((pointer, expected));
        self
    }

    /// Adds a value refused on create.
    pub fn invalid(mut self, pointer: &'static str, value: Value, expected: &'static str) -> Self {
        self.invalid.push((pointer, value, expected));
        self
    }

    /// Adds an immutable field.
    pub fn immutable(
        mut self,
        pointer: &'static str,
        value: Value,
        expected: &'static str,
    ) -> Self {
        self.immutable.push((pointer, value, expected));
        self
    }
}

/// Every group's cases.
pub fn every_case() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(core::cases());
    all.extend(core_pod::cases());
    all.extend(apps::cases());
    all.extend(networking::cases());
    all.extend(admission::cases());
    all.extend(resource::cases());
    all.extend(apiregistration::cases());
    all
}

/// Sets (or, with `None`, removes) the value at a JSON pointer, creating objects on the
/// way; a pointer into a list addresses an existing item.
fn set_pointer(obj: &mut Value, pointer: &str, value: Option<Value>) {
    let (parent, last) = match pointer.rsplit_once('/') {
        Some(split) => split,
        None => return,
    };
    let mut cur = obj;
    for token in parent.split('/').skip(1) {
        cur = match cur {
            Value::Array(items) => match token.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            {
                Some(item) => item,
                None => panic!("pointer {pointer}: no item {token}"),
            },
            Value::Object(map) => map.entry(token.to_string()).or_insert_with(|| json!({})),
            _ => panic!("pointer {pointer}: {token} is not in an object or list"),
        };
    }
    match (cur, value) {
        (Value::Object(map), Some(v)) => {
            map.insert(last.to_string(), v);
        }
        (Value::Object(map), None) => {
            assert!(
                map.remove(last).is_some(),
                "pointer {pointer} is not in the object"
            );
        }
        (Value::Array(items), v) => {
            let i: usize = last.parse().unwrap_or_else(|_| panic!("pointer {pointer}"));
            match v {
                Some(v) => items[i] = v,
                None => {
                    items.remove(i);
                }
            }
        }
        _ => panic!("pointer {pointer} does not address a field"),
    }
}

fn with_name(obj: &Value, name: &str) -> Value {
    let mut o = obj.clone();
    // Kinds named by an IP address (IPAddress) get a distinct one per row instead.
    let ip_named = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.parse::<std::net::IpAddr>().is_ok());
    o["metadata"]["name"] = if ip_named {
        json!(ip_for(name))
    } else {
        json!(name)
    };
    o
}

/// A 10.x.y.z address from a row name (FNV-1a over 24 bits: distinct for the few
/// rows of one case).
fn ip_for(name: &str) -> String {
    let h = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let [_, a, b, c] = h.to_be_bytes();
    format!("10.{a}.{b}.{c}")
}

/// What went wrong in one row, for the test's one combined failure message.
fn check_refusal(what: &str, code: u16, body: &Value, expected: &str, failures: &mut Vec<String>) {
    let message = body.get("message").and_then(Value::as_str).unwrap_or("");
    if code != 422 || !message.contains(expected) {
        failures.push(format!(
            "{what}: want 422 containing {expected:?}, got {code} {message:?}"
        ));
    }
}

async fn run_case(api: &TestApi, case: &Case, n: usize, failures: &mut Vec<String>) {
    let base = format!("parity-{n}");
    let created = (case.build)(&case.valid, &base, &|_| {});
    let (code, body) = api.call("POST", case.collection, &created).await;
    if code != 201 {
        failures.push(format!(
            "{}: the valid object was refused: {code} {}",
            case.collection,
            body.get("message").and_then(Value::as_str).unwrap_or("")
        ));
        return;
    }
    for (i, (pointer, expected)) in case.required.iter().enumerate() {
        let obj = (case.build)(&case.valid, &format!("{base}-r{i}"), &|o| {
            set_pointer(o, pointer, None)
        });
        let (code, body) = api.call("POST", case.collection, &obj).await;
        let what = format!("{} without {pointer}", case.collection);
        check_refusal(&what, code, &body, expected, failures);
    }
    for (i, (pointer, value, expected)) in case.invalid.iter().enumerate() {
        let obj = (case.build)(&case.valid, &format!("{base}-i{i}"), &|o| {
            set_pointer(o, pointer, Some(value.clone()))
        });
        let (code, body) = api.call("POST", case.collection, &obj).await;
        let what = format!("{} with {pointer} = {value}", case.collection);
        check_refusal(&what, code, &body, expected, failures);
    }
    let created_name = created["metadata"]["name"].as_str().unwrap_or(&base);
    let item = format!("{}/{created_name}", case.collection);
    if let Some(ready) = case.ready {
        for _ in 0..100 {
            let (_, stored) = api.call("GET", &item, &Value::Null).await;
            if ready(&stored) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    for (pointer, value, expected) in &case.immutable {
        let (code, mut stored) = api.call("GET", &item, &Value::Null).await;
        assert_eq!(code, 200, "GET {item}");
        set_pointer(&mut stored, pointer, Some(value.clone()));
        let (code, body) = api.call("PUT", &item, &stored).await;
        let what = format!("{item}: changing {pointer} to {value}");
        check_refusal(&what, code, &body, expected, failures);
    }
}

#[tokio::test]
async fn every_kind_refuses_what_upstream_refuses() {
    let server = TestApiServer::new().await;
    let api = server.api();
    let (code, body) = api
        .call(
            "POST",
            "/api/v1/namespaces",
            &json!({"metadata": {"name": NS}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let mut failures = Vec::new();
    for (n, case) in every_case().iter().enumerate() {
        run_case(&api, case, n, &mut failures).await;
    }
    assert!(
        failures.is_empty(),
        "{} row(s) differ from upstream:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_served_kind_has_a_case() {
    let server = TestApiServer::new().await;
    let snapshot = server.server.registry.snapshot();
    let covered: BTreeSet<String> = every_case()
        .iter()
        .map(|c| {
            let parts: Vec<&str> = c.collection.split('/').collect();
            let (group_version, plural) =
                (parts[..parts.len() - 1].join("/"), parts[parts.len() - 1]);
            let gv = group_version
                .trim_start_matches("/apis/")
                .trim_start_matches("/api/")
                .split("/namespaces/")
                .next()
                .unwrap_or("")
                .to_string();
            format!("{gv}/{plural}")
        })
        .collect();
    let mut missing = Vec::new();
    for res in snapshot.all() {
        let info = &res.info;
        // Bindings are never stored: their validation is tested with the pods they
        // bind (`handlers/binding.rs`). Reviews are answered from the request and never
        // stored: nothing to validate.
        if info.custom
            || !info.supports("create")
            || info.kind == "Binding"
            || info.group == "authentication.k8s.io"
            || info.group == "authorization.k8s.io"
        {
            continue;
        }
        let gv = if info.group.is_empty() {
            info.version.clone()
        } else {
            format!("{}/{}", info.group, info.version)
        };
        let key = format!("{gv}/{}", info.plural);
        if !covered.contains(&key) {
            missing.push(key);
        }
    }
    assert!(
        missing.is_empty(),
        "kinds without a parity case: {missing:?}"
    );
}
