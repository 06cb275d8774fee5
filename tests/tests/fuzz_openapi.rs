//! Issue 8: an OpenAPI-driven fuzzer against k1s's own `/openapi/v2`. The fuzzer is
//! schemathesis (what users point at servers; `scripts/install-schemathesis` installs the
//! pinned version that `scripts/test` uses), run as a child process on a copy of the served
//! document, with the admin's client certificate.
//!
//! Before the run the test seeds a namespace of its own (`a-seed`) with ConfigMaps, a
//! Secret, a Deployment, a Service, a CRD and one of its objects; the fuzzer works in the
//! namespace `fuzz` (and anywhere else it names). After the run it asserts:
//!
//! 1. no answer is a 5xx (check `not_a_server_error`);
//! 2. no answer breaks the document: a body that its operation's response schema refuses,
//!    a content type outside `produces`, a declared header missing
//!    (`response_schema_conformance`, `content_type_conformance`,
//!    `response_headers_conformance`), nor does the document refer to a definition it lacks;
//! 3. the system namespaces (default, kube-system, kube-public, kube-node-lease) and every
//!    seeded object survive unchanged: same uid, same content (all but the status and the
//!    metadata the server and the controllers keep). The fuzzer may create and
//!    delete what it likes, but cannot destroy these: it is aimed at deleting the immortal
//!    namespaces and at `DELETE /api/v1/namespaces` (deletecollection), which must be
//!    refused;
//!
//! and, beside them, that the server answered every request (no timeouts or dropped
//! connections), never panicked and is still ready after the run.
//!
//! The fuzzer never reads names out of answers (so it cannot learn the seeded ones and
//! delete them by name, which an admin may do); it mostly uses names of its own.
//!
//! Short form (CI): one run over every operation, phases examples, coverage and fuzzing, 3
//! examples per operation, 180 s (`K1S_FUZZ_EXAMPLES`, `K1S_FUZZ_SECONDS` and
//! `K1S_FUZZ_PHASES` change them). `scripts/test --long` asks for 25 examples and 900 s,
//! then 600 s of stateful runs (`K1S_FUZZ_STATEFUL_SECONDS`), one per API group version,
//! whose link-based scenarios chain a create to the reads, updates and deletes of what it
//! created. `K1S_FUZZ_SEED` replays a run's generated data (the time budget still decides
//! how far each operation gets). The run's files (adapted document, configuration, the
//! fuzzer's output and JSON reports) stay in `$CARGO_TARGET_TMPDIR/fuzz-openapi/`.
//!
//! Findings of `negative_data_rejection` (a request the schemas refuse was accepted) are
//! printed but not asserted; see `CHECKS`.
//!
//! Without schemathesis installed the test fails, saying how to install it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k1s_e2e::{K1s, eventually, newest_kubectl, request};
use serde_json::{Value, json};

/// The namespace of the seeded objects, which must survive the run. It sorts before
/// `default`: a deletecollection of namespaces that deletes in name order until an immortal
/// namespace refuses would reach it first.
const SEED_NS: &str = "a-seed";
/// The namespace the fuzzer works in (most `{namespace}` values it sends).
const FUZZ_NS: &str = "fuzz";
/// The namespaces every cluster has; they must survive the run unchanged.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];
/// The namespaces upstream never lets anyone delete: the fuzzer is aimed at deleting them.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];
/// The names the fuzzer mostly gives the objects it creates and addresses, so that its
/// creates pass name validation and its reads, updates and deletes find what it created.
const WORK_NAMES: [&str; 3] = ["fuzz-a", "fuzz-b", "fuzz-c"];
/// The seeded CRD's group.
const SEED_GROUP: &str = "seed.k1s.test";

/// How hard the fuzzer tries.
struct Budget {
    /// Examples per operation and phase (`--max-examples`).
    examples: u32,
    /// The time budget of the main run over every operation (`--max-time`): coverage takes
    /// a share of each operation, fuzzing rounds repeat until it is spent.
    seconds: u64,
    /// The phases of the main run.
    phases: String,
    /// The time budget of the stateful runs, one per API group version (0: none). The
    /// stateful phase chains a create to the reads, updates and deletes of what it
    /// created, along links the fuzzer infers from the document; over the whole document
    /// it infers ~58k links and gets no scenario started, so each group version gets a
    /// run of its own.
    stateful_seconds: u64,
    /// The seed of the generated data.
    seed: u64,
}

/// One invocation of the fuzzer.
struct Pass {
    /// Names its files.
    name: String,
    phases: String,
    seconds: u64,
    /// `--include-path-regex`, for a pass over part of the document.
    paths: Option<String>,
}

/// What one invocation left.
struct Outcome {
    name: String,
    exit: i32,
    stdout: String,
    report: Value,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid value")),
        Err(_) => default,
    }
}

fn budget() -> Budget {
    let seed = std::env::var("K1S_FUZZ_SEED")
        .ok()
        .map(|s| s.parse().expect("K1S_FUZZ_SEED must be a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    Budget {
        examples: env_or("K1S_FUZZ_EXAMPLES", 3),
        seconds: env_or("K1S_FUZZ_SECONDS", 180),
        phases: env_or("K1S_FUZZ_PHASES", "examples,coverage,fuzzing".to_string()),
        stateful_seconds: env_or("K1S_FUZZ_STATEFUL_SECONDS", 0),
        seed,
    }
}

/// The fuzzer: `$K1S_SCHEMATHESIS`, else the virtual environment scripts/install-schemathesis
/// makes in the tools folder.
fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("K1S_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    k1s_e2e::tools_dir().join("schemathesis/bin/schemathesis")
}

/// Where the run's files stay for reading after the test.
fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-openapi");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// What the test seeds before the run, in apply order (the CRD first: its object needs it).
fn seed_manifests() -> [String; 2] {
    let crd = format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {SEED_NS}
  labels: {{k1s.test/role: seed}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: {FUZZ_NS}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{SEED_GROUP}
spec:
  group: {SEED_GROUP}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {{type: integer, minimum: 0, maximum: 100}}
              color: {{type: string, enum: [red, green, blue]}}
              port: {{x-kubernetes-int-or-string: true}}
              tags: {{type: array, maxItems: 4, items: {{type: string, pattern: '^[a-z]+$'}}}}
          status:
            type: object
            properties:
              ready: {{type: boolean}}
"#
    );
    let objects = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: seed-plain, namespace: {SEED_NS}}}
data: {{a: "1", b: two}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: seed-labelled
  namespace: {SEED_NS}
  labels: {{app: seed, tier: config}}
  annotations: {{k1s.test/note: keep me}}
data: {{config.yaml: "key: value\n"}}
binaryData: {{blob: AAEC}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: seed-immutable, namespace: {SEED_NS}}}
immutable: true
data: {{frozen: "yes"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: seed-secret, namespace: {SEED_NS}}}
type: Opaque
stringData: {{password: hunter2}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: seed-web, namespace: {SEED_NS}, labels: {{app: seed-web}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: seed-web}}}}
  template:
    metadata: {{labels: {{app: seed-web}}}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: seed-web, namespace: {SEED_NS}}}
spec:
  selector: {{app: seed-web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: {SEED_GROUP}/v1
kind: Widget
metadata: {{name: seed-widget, namespace: {SEED_NS}}}
spec: {{size: 3, color: green, port: 8080, tags: [a, b]}}
"#
    );
    [crd, objects]
}

/// The API paths of everything that must survive the run.
fn guarded_paths() -> Vec<String> {
    let mut paths: Vec<String> = SYSTEM_NAMESPACES
        .iter()
        .chain(&[SEED_NS])
        .map(|ns| format!("/api/v1/namespaces/{ns}"))
        .collect();
    for (prefix, resource, name) in [
        ("/api/v1", "configmaps", "seed-plain"),
        ("/api/v1", "configmaps", "seed-labelled"),
        ("/api/v1", "configmaps", "seed-immutable"),
        ("/api/v1", "secrets", "seed-secret"),
        ("/apis/apps/v1", "deployments", "seed-web"),
        ("/api/v1", "services", "seed-web"),
    ] {
        paths.push(format!("{prefix}/namespaces/{SEED_NS}/{resource}/{name}"));
    }
    paths.push(format!(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{SEED_GROUP}"
    ));
    paths.push(format!(
        "/apis/{SEED_GROUP}/v1/namespaces/{SEED_NS}/widgets/seed-widget"
    ));
    paths
}

/// The copy of the served document that the fuzzer reads. Each change makes the fuzzer read
/// Kubernetes' OpenAPI v2 the way Kubernetes servers (upstream's and k1s) mean it; the
/// served document itself is not changed, and everything not named here stays as strict as
/// it is served. Returns the document and one line per kind of change made.
fn adapt(mut doc: Value) -> (Value, Vec<String>) {
    let mut notes = BTreeMap::<&str, usize>::new();

    // 0. Shared parameters. The document names the parameters many operations share once
    //    (`#/parameters/watch-XNNPZGbK`, as upstream's does) and refers to them; they are
    //    inlined so that the adaptations below (drop `watch`, booleans as text, path
    //    examples) see every operation's parameters. The meaning is unchanged.
    let shared = doc
        .get("parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for (key, op) in item.iter_mut() {
                let params = if key == "parameters" {
                    op.as_array_mut()
                } else {
                    op.get_mut("parameters").and_then(Value::as_array_mut)
                };
                for p in params.into_iter().flatten() {
                    let target = p
                        .get("$ref")
                        .and_then(Value::as_str)
                        .and_then(|r| r.strip_prefix("#/parameters/"))
                        .and_then(|name| shared.get(name));
                    if let Some(target) = target {
                        *p = target.clone();
                        *notes.entry("shared parameters inlined").or_default() += 1;
                    }
                }
            }
        }
    }

    // 1. IntOrString. Kubernetes documents it as `type: string, format: int-or-string`, but
    //    its JSON is a number or a string (a Service's `targetPort: 8080` is answered as the
    //    number 8080). Read literally, every numeric answer would break the schema and the
    //    fuzzer would never send a number; both are what the API means.
    fn relax_int_or_string(v: &mut Value, count: &mut usize) {
        match v {
            Value::Object(m) => {
                if m.get("format").and_then(Value::as_str) == Some("int-or-string") {
                    m.remove("format");
                    m.remove("type");
                    m.insert(
                        "anyOf".into(),
                        json!([{"type": "integer"}, {"type": "string"}]),
                    );
                    *count += 1;
                }
                m.values_mut().for_each(|c| relax_int_or_string(c, count));
            }
            Value::Array(a) => a.iter_mut().for_each(|c| relax_int_or_string(c, count)),
            _ => {}
        }
    }
    let mut count = 0;
    relax_int_or_string(&mut doc, &mut count);
    *notes
        .entry("`format: int-or-string` schemas accept integers and strings")
        .or_default() += count;

    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        // 2. Watches. A watch (`?watch=true`, or a path under `/watch/`) answers with a
        //    stream that only ends at its timeout: a generic fuzzer waits for a body that
        //    does not end. The `watch` parameter and `/watch/` paths are dropped; watches are
        //    exercised by the kubectl tests. (allowWatchBookmarks and sendInitialEvents stay:
        //    without `watch` they are list parameters the server must judge.)
        let before = paths.len();
        paths.retain(|path, _| !path.contains("/watch/"));
        *notes.entry("`/watch/` paths dropped").or_default() += before - paths.len();
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (key, op) in item.iter_mut() {
                let params = if key == "parameters" {
                    op.as_array_mut()
                } else {
                    op.get_mut("parameters").and_then(Value::as_array_mut)
                };
                let Some(params) = params else { continue };
                let before = params.len();
                params.retain(|p| !(p["in"] == "query" && p["name"] == "watch"));
                *notes.entry("`watch` query parameters dropped").or_default() +=
                    before - params.len();
                // 3. Query booleans. Kubernetes reads a boolean query parameter as
                //    apimachinery's conversion does: "false" and "0" are false, any other
                //    text is true (`?allowWatchBookmarks=yes` is valid). Typed `boolean`,
                //    the fuzzer would send only true/false and count any other text as
                //    invalid data the server must refuse; as strings it sends any text.
                for p in params.iter_mut() {
                    if p["in"] == "query" && p["type"] == "boolean" {
                        p["type"] = json!("string");
                        *notes
                            .entry("boolean query parameters typed as strings")
                            .or_default() += 1;
                    }
                }
            }
        }
    }
    // 4. Examples. The served document has none; a generic fuzzer then builds every body
    //    from scratch, and since `metadata.name` is optional in the schema but required by
    //    the API (with a DNS-label syntax the schema does not state), nearly every create
    //    and update is refused before it reaches a kind's handler and the store. Each write's
    //    body gets an example naming an object of the operation's kind (`fuzz-a`), and each
    //    `{namespace}` and `{name}` path parameter an example naming the fuzzer's namespace
    //    and object. Examples constrain nothing: the fuzzer starts from them (examples
    //    phase, coverage variations) and still generates everything else.
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if method == "parameters" {
                    for p in op.as_array_mut().into_iter().flatten() {
                        let example = match p["name"].as_str() {
                            Some("namespace") => FUZZ_NS,
                            Some("name") => WORK_NAMES[0],
                            _ => continue,
                        };
                        if p["in"] == "path" {
                            p["x-example"] = json!(example);
                            *notes.entry("path parameters given an example").or_default() += 1;
                        }
                    }
                    continue;
                }
                let Some((api_version, kind)) = api_version_kind(op) else {
                    continue;
                };
                let mut example = json!({
                    "apiVersion": api_version,
                    "kind": kind,
                    "metadata": {"name": WORK_NAMES[0]},
                });
                if method == "patch" {
                    // Good for merge, strategic-merge and apply patches alike.
                    example["metadata"]["labels"] = json!({"k1s.test/fuzz": "patched"});
                }
                let params = op.get_mut("parameters").and_then(Value::as_array_mut);
                for p in params.into_iter().flatten() {
                    if p["in"] == "body" {
                        p["x-example"] = example.clone();
                        *notes.entry("bodies given an example").or_default() += 1;
                    }
                }
            }
        }
    }
    // 5. JSON null in requests. Kubernetes decodes a request as Go does: a null field, list
    //    item or map value is read as its zero value (as if absent), so `"spec": null` is a
    //    valid request; the fuzzer would count it as invalid data that must be refused. The
    //    bodies of requests refer to copies of the definitions (`request.` + name) in which
    //    every property, list item and map value may also be null; answers keep the
    //    definitions as served, where null is not allowed.
    // 6. PATCH bodies. The document types every patch body `object`, but a JSON patch
    //    (`application/json-patch+json`, one of the declared media types) is an array, and
    //    a body of JSON null decodes (in Go, as in 5) to an empty JSON, merge or strategic
    //    merge patch: they may be any of the three.
    let mut requests = serde_json::Map::new();
    for (name, schema) in doc["definitions"].as_object().into_iter().flatten() {
        let mut copy = schema.clone();
        request_schema(&mut copy);
        requests.insert(format!("{REQUEST_DEFINITIONS}{name}"), copy);
    }
    *notes
        .entry("request copies of the definitions that allow null")
        .or_default() += requests.len();
    // 7. Quantity in requests. Like IntOrString, a Quantity is documented as a string but
    //    read from a JSON number too (`cpu: 2`); servers always answer a string, so only the
    //    request copy accepts numbers.
    if let Some(q) = requests.get_mut(&format!("{REQUEST_DEFINITIONS}{QUANTITY}"))
        && q["type"] == "string"
    {
        q["type"] = json!(["string", "number"]);
        *notes.entry("request Quantity accepts numbers").or_default() += 1;
    }
    // 8. Zero times in answers. Go writes the zero `Time` and `MicroTime` as null, and a
    //    null map value or list item is read as that zero (5): upstream answers
    //    `disruptedPods: {"p": null}` to a request that sent it, and so does k1s.
    if let Some(defs) = doc["definitions"].as_object_mut() {
        for name in [TIME, MICRO_TIME] {
            if let Some(t) = defs.get_mut(name)
                && t["type"] == "string"
            {
                t["type"] = json!(["string", "null"]);
                *notes
                    .entry("answered Time and MicroTime may be null (Go's zero time)")
                    .or_default() += 1;
            }
        }
        defs.extend(requests);
    }
    for item in doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut())
    {
        for (method, op) in item.as_object_mut().into_iter().flatten() {
            let Some(params) = op.get_mut("parameters").filter(|_| method != "parameters") else {
                continue;
            };
            for p in params.as_array_mut().into_iter().flatten() {
                if p["in"] != "body" {
                    continue;
                }
                if method == "patch" && p["schema"] == json!({"type": "object"}) {
                    p["schema"] =
                        json!({"anyOf": [{"type": "object"}, {"type": "array"}, {"type": "null"}]});
                    *notes.entry("PATCH bodies may be arrays").or_default() += 1;
                } else {
                    request_schema(&mut p["schema"]);
                }
            }
        }
    }
    // 9. Bindings and evictions. A POST of a Binding (to `bindings` or
    //    `pods/{name}/binding`) or of an Eviction is answered with a `Status` of Success,
    //    as upstream's BindingREST and EvictionREST answer, though the document (upstream's
    //    too) names Binding or Eviction as the answer.
    for item in doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut())
    {
        let Some(op) = item.get_mut("post") else {
            continue;
        };
        if !matches!(
            op["operationId"].as_str(),
            Some(
                "createCoreV1NamespacedBinding"
                    | "createCoreV1NamespacedPodBinding"
                    | "createCoreV1NamespacedPodEviction"
            )
        ) {
            continue;
        }
        for code in ["200", "201", "202"] {
            if let Some(r) = op["responses"]
                .get_mut(code)
                .filter(|r| r.get("schema").is_some())
            {
                r["schema"] =
                    json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Status"});
                *notes
                    .entry("Binding and Eviction creates answer a Status")
                    .or_default() += 1;
            }
        }
    }
    // 10. Deletes that wait. A DELETE whose object stays (finalizers, `foreground`
    //     propagation, a grace period) answers with the object, as upstream does, though
    //     the document (upstream's too) names only a Status for most kinds. With
    //     controllers filling in statuses, such an object no longer passes as a Status.
    for item in doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut())
    {
        let Some(object) = item
            .pointer("/get/responses/200/schema")
            .filter(|s| s.get("$ref").is_some())
            .cloned()
        else {
            continue;
        };
        let Some(op) = item.get_mut("delete") else {
            continue;
        };
        for code in ["200", "202"] {
            if let Some(schema) = op
                .pointer_mut(&format!("/responses/{code}/schema"))
                .filter(|s| **s != object)
            {
                *schema = json!({"anyOf": [schema.take(), object.clone()]});
                *notes
                    .entry("deletes may answer with the object they keep")
                    .or_default() += 1;
            }
        }
    }
    let notes = notes
        .into_iter()
        .map(|(what, n)| format!("{what}: {n}"))
        .collect();
    (doc, notes)
}

/// The definition of resource quantities (`2`, `500m`, `1Gi`).
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
/// `meta/v1.Time` and `meta/v1.MicroTime`, whose zero value Go writes as null.
const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
/// `meta/v1.MicroTime`.
const MICRO_TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
/// The prefix of the definitions that request bodies refer to (see `adapt`, 5).
const REQUEST_DEFINITIONS: &str = "request.";

/// Makes a schema the request form of itself: references point at the request copies of
/// the definitions, and every property, list item and map value may also be null.
fn request_schema(schema: &mut Value) {
    let Value::Object(m) = schema else { return };
    if let Some(Value::String(r)) = m.get_mut("$ref")
        && let Some(name) = r.strip_prefix("#/definitions/")
    {
        *r = format!("#/definitions/{REQUEST_DEFINITIONS}{name}");
    }
    let or_null = |child: &mut Value| {
        request_schema(child);
        let inner = child.take();
        *child = json!({"anyOf": [inner, {"type": "null"}]});
    };
    for key in ["items", "additionalProperties"] {
        if let Some(child) = m.get_mut(key).filter(|c| c.is_object()) {
            or_null(child);
        }
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(or_null);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = m.get_mut(key) {
            branches.iter_mut().for_each(request_schema);
        }
    }
}

/// The apiVersion and kind of an operation's objects (`x-kubernetes-group-version-kind`).
fn api_version_kind(op: &Value) -> Option<(String, String)> {
    let gvk = op.get("x-kubernetes-group-version-kind")?;
    let group = gvk["group"].as_str()?;
    let version = gvk["version"].as_str()?;
    let kind = gvk["kind"].as_str()?;
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some((api_version, kind.to_string()))
}

/// The operations (`METHOD /path`) with a 2xx answer that has no schema.
fn unchecked_answers(doc: &Value) -> Vec<String> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let responses = op["responses"].as_object().into_iter().flatten();
            if method != "parameters"
                && responses
                    .into_iter()
                    .any(|(code, r)| code.starts_with('2') && r.get("schema").is_none())
            {
                ops.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ops
}

/// The operations (`METHOD /path`) that delete every object of a cluster-scoped kind.
fn cluster_deletecollections(doc: &Value) -> Vec<String> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if op["x-kubernetes-action"] == "deletecollection"
                && !path.contains("{namespace}")
                && path != "/api/v1/namespaces"
            {
                ops.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ops
}

/// The checks the fuzzer runs. All but `negative_data_rejection` belong to a property this
/// test asserts; that one (a request the schemas refuse must get a 4xx) is reported, not
/// asserted: the document's `required` lists and types are not the API's validation rules
/// (upstream itself accepts some such requests, e.g. where it defaults a required field),
/// so each of its findings needs judging against upstream before it counts as a bug.
/// `ensure_resource_availability` (an object a create returned can be read) runs in the
/// stateful phase only.
///
/// Not run, for these reasons:
/// - `status_code_conformance`: Kubernetes' document (upstream's too) lists 200/201/401 and
///   never the codes of ordinary refusals (404, 409, 422…): every refusal would count.
/// - `positive_data_acceptance`: a request the schemas allow is often not a valid
///   Kubernetes request (names must be DNS labels, objects must exist first…); the
///   document cannot express those rules, so refusals of such requests are correct.
/// - `ignored_auth`: the fuzzer authenticates with a TLS client certificate, which the
///   document cannot describe (it names a bearer token); a request without the header
///   still carries the certificate and must succeed.
/// - `use_after_free`: Kubernetes may keep a deleted object while finalizers or graceful
///   deletion run (a namespace stays Terminating; the fuzzer sets random finalizers): a
///   GET that finds it after its DELETE answered 200 is correct.
/// - `unsupported_method`, `allow_header_conformance`: HTTP details of methods the
///   document does not declare (an `Allow` header on 405); the requests are still sent by
///   the coverage phase and still checked for 5xx.
/// - `missing_required_header`, `object_level_authorization`: the document declares no
///   headers, and the test has a single identity.
const CHECKS: &str = "not_a_server_error,response_schema_conformance,content_type_conformance,\
                      response_headers_conformance,ensure_resource_availability,\
                      negative_data_rejection";

/// A TOML array of strings.
fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The fuzzer's configuration file.
///
/// Parameters the document types as bare strings are often a few words to the API
/// (`dryRun` is `All`, `fieldValidation` is `Strict`, `Warn` or `Ignore`, a name is a DNS
/// label…): with random text only, nearly every write is refused before it reaches a kind's
/// handler and storage. Dictionaries make most values valid ones and leave the rest random,
/// so both the refusals and the deeper paths get exercised. Nothing here changes what is
/// checked.
fn config(doc: &Value) -> String {
    let mut toml = format!(
        r#"# Written by tests/tests/fuzz_openapi.rs.
[generation]
# The certificate authenticates; a generated Authorization header would only add noise.
with-security-parameters = false
# Kubernetes ignores query parameters it does not know (as upstream does).
allow-extra-parameters = false
database = "none"

# The fuzzer may not reuse values it read in answers: a list of namespaces names the seeded
# and system ones, which an admin may delete by name (kube-node-lease included, as upstream
# allows). It works with its own names (below) and random ones. The stateful phase's links
# carry names only from a create to the uses of what it created (the document's lists
# declare no answer schema to take names from).
[phases.examples]
extra-data-sources.responses = false
# An example names the object; the fields its kind requires (a Pod's containers…) are
# generated around it.
fill-missing = true

[phases.coverage]
extra-data-sources.responses = false
# Each Kubernetes query parameter has one value; upstream reads the first of repeated ones.
generate-duplicate-query-parameters = false

[phases.fuzzing]
extra-data-sources.responses = false

[dictionaries]
work-namespace.values = {work_ns}
work-names.values = {names}
immortal-namespaces.values = {immortal}
dry-run.values = ["All"]
field-validation.values = ["Strict", "Warn", "Ignore"]
propagation.values = ["Background", "Foreground", "Orphan"]
field-manager.values = ["k1s-fuzz"]
label-selector.values = ["app=fuzz", "app in (a, b)", "!app", "app,tier!=x"]
field-selector.values = ["metadata.name=fuzz-a", "metadata.namespace!=x"]
resource-version.values = ["0"]
resource-version-match.values = ["NotOlderThan", "Exact"]

# Most `{{namespace}}` values name the fuzzer's namespace, which exists (with random names
# nearly every namespaced write ends in 404), most names are a few valid ones (so creates
# pass and reads, updates and deletes find what was created). A dry run one time in five.
[parameters]
"path.namespace" = {{ dictionary = "work-namespace", probability = 0.9 }}
"body.metadata.namespace" = {{ dictionary = "work-namespace", probability = 0.8 }}
"path.name" = {{ dictionary = "work-names", probability = 0.7 }}
"body.metadata.name" = {{ dictionary = "work-names", probability = 0.8 }}
"query.dryRun" = {{ dictionary = "dry-run", probability = 0.2 }}
"query.fieldValidation" = {{ dictionary = "field-validation", probability = 0.8 }}
"query.propagationPolicy" = {{ dictionary = "propagation", probability = 0.8 }}
"query.fieldManager" = {{ dictionary = "field-manager", probability = 0.6 }}
"query.labelSelector" = {{ dictionary = "label-selector", probability = 0.5 }}
"query.fieldSelector" = {{ dictionary = "field-selector", probability = 0.5 }}
"query.resourceVersion" = {{ dictionary = "resource-version", probability = 0.3 }}
"query.resourceVersionMatch" = {{ dictionary = "resource-version-match", probability = 0.5 }}
"#,
        work_ns = toml_list(&[FUZZ_NS]),
        names = toml_list(&WORK_NAMES),
        immortal = toml_list(&IMMORTAL_NAMESPACES),
    );

    // Per operation: one entry each (the fuzzer merges operation entries with the global
    // [parameters] key by key).
    let mut per_op: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut dictionaries: BTreeMap<String, String> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if method == "parameters" {
                continue;
            }
            let name = format!("{} {path}", method.to_uppercase());
            let entry = per_op.entry(name.clone()).or_default();
            // The body's apiVersion and kind are mostly those of the operation's kind:
            // random ones are refused before anything else is looked at.
            let has_body = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "body"));
            if let Some((api_version, kind)) = api_version_kind(op).filter(|_| has_body) {
                for (field, value) in [("apiVersion", api_version), ("kind", kind)] {
                    let dict = format!("{field}-{}", value.replace(['/', '.'], "-"));
                    dictionaries.insert(dict.clone(), toml_list(&[&value]));
                    entry.push(format!(
                        "\"body.{field}\" = {{ dictionary = \"{dict}\", probability = 0.8 }}"
                    ));
                }
            }
        }
    }
    // Half the namespace deletes aim at the namespaces that must never go.
    per_op
        .entry("DELETE /api/v1/namespaces/{name}".into())
        .or_default()
        .push("\"path.name\" = { dictionary = \"immortal-namespaces\", probability = 0.5 }".into());
    // For an admin, a deletecollection of a cluster-scoped kind deletes every object of the
    // kind, the seeded CRD and the system's own objects included, as upstream allows. These
    // run as dry runs: the server does all the work of the deletecollection but must not
    // persist it, which the survival check verifies. (DELETE /api/v1/namespaces is not one
    // of them: it must be refused outright.)
    for op in cluster_deletecollections(doc) {
        per_op
            .entry(op)
            .or_default()
            .push("\"query.dryRun\" = \"All\"".into());
    }
    let mut ops = String::new();
    for (op, params) in per_op.iter().filter(|(_, p)| !p.is_empty()) {
        let _ = write!(
            ops,
            "\n[[operations]]\ninclude-name = {op:?}\nparameters = {{ {} }}\n",
            params.join(", ")
        );
    }
    // The per-kind dictionaries belong to the [dictionaries] table written above.
    let at = toml
        .find("\n# Most `{namespace}`")
        .expect("the [parameters] comment");
    let mut extra = String::new();
    for (name, value) in &dictionaries {
        let _ = writeln!(extra, "{name:?}.values = {value}");
    }
    toml.insert_str(at, &extra);
    toml + &ops
}

/// Annotations the controllers write on what they manage (the Deployment's revision).
const CONTROLLER_ANNOTATIONS: &str = "deployment.kubernetes.io/";

/// What of an object the fuzzer must not change: all but its status and the metadata the
/// server and the controllers keep (resourceVersion, managedFields, their annotations),
/// which change as the controllers do their work.
fn content(mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            a.retain(|k, _| !k.starts_with(CONTROLLER_ANNOTATIONS));
        }
    }
    obj
}

/// The [`content`] of the object at each guarded path (None where it is not found).
async fn snapshot(client: &kube::Client, paths: &[String]) -> BTreeMap<String, Option<Value>> {
    let mut out = BTreeMap::new();
    for path in paths {
        let (code, body, _) = request(client, "GET", path, None).await;
        out.insert(path.clone(), (code == 200).then(|| content(body)));
    }
    out
}

/// The JSON pointers where `a` and `b` differ, with both values.
fn diff(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                diff(
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    &format!("{at}/{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(p, q, &format!("{at}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!(
            "{at}: {} -> {}",
            clip(&a.to_string(), 200),
            clip(&b.to_string(), 200)
        )),
        _ => {}
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// What the fuzzer printed about the first failing case of each operation (its checks, the
/// answer and the curl command that reproduces it), from the FAILURES section of its output.
/// `operations` are the failing operations the report names: each heads its part of the
/// section, between rules of underscores that shrink to nothing for long names.
fn failure_examples(stdout: &str, operations: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(start) = stdout.find(" FAILURES ") else {
        return out;
    };
    let section = &stdout[start..];
    let end = ["= WARNINGS =", "= SUMMARY =", "= ERRORS ="]
        .iter()
        .filter_map(|m| section.find(m))
        .min()
        .unwrap_or(section.len());
    let mut op: Option<String> = None;
    let mut lines: Vec<String> = Vec::new();
    let mut first_case = true;
    // Inside the dump of a response schema, which the check's lines before it name.
    let mut in_schema = false;
    for line in section[..end].lines().skip(1) {
        let t = line.trim();
        let heading = t.trim_matches('_').trim();
        if operations.iter().any(|o| o == heading) {
            if let Some(done) = op.take() {
                out.entry(done).or_insert_with(|| lines.join("\n"));
            }
            lines.clear();
            op = Some(heading.to_string());
            first_case = true;
            continue;
        }
        if t.starts_with("2. Test Case ID") {
            first_case = false;
            lines.push("      (more cases in the fuzzer's output)".into());
        }
        if t.starts_with("Schema at ") {
            in_schema = true;
        } else if t.starts_with("Value:") || t.starts_with('[') || t.starts_with("- ST") {
            in_schema = false;
        } else if in_schema {
            continue;
        }
        if !first_case
            || op.is_none()
            || t.is_empty()
            || t.starts_with("1. Test Case ID")
            || t.starts_with("Reproduce with")
            || t.starts_with("st replay")
        {
            continue;
        }
        // The value a schema refused, dumped over many lines, goes on one.
        if let Some(last) = lines.last_mut()
            && last.trim_start().starts_with("Value:")
            && !t.starts_with('[')
        {
            last.push(' ');
            last.push_str(t);
            *last = clip(last, 400);
            continue;
        }
        if lines.len() < 16 {
            lines.push(format!("      {}", clip(t, 400)));
        }
    }
    if let Some(done) = op.take() {
        out.entry(done).or_insert_with(|| lines.join("\n"));
    }
    out
}

/// Runs the fuzzer once.
fn run_fuzzer(
    k1s: &K1s,
    dir: &Path,
    doc: &Path,
    config: &Path,
    budget: &Budget,
    pass: &Pass,
) -> Outcome {
    let bin = schemathesis();
    let tls = k1s.tls_files();
    let report = dir.join(format!("{}.report.json", pass.name));
    let stdout = dir.join(format!("{}.out", pass.name));
    let log = std::fs::File::create(&stdout).unwrap_or_else(|e| panic!("{e}"));
    let err = log.try_clone().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(&bin);
    cmd.current_dir(dir)
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(doc)
        .args(["--url", &k1s.url()])
        .arg("--tls-verify")
        .arg(&tls.ca)
        .arg("--request-cert")
        .arg(&tls.cert)
        .arg("--request-cert-key")
        .arg(&tls.key)
        .args(["--checks", &CHECKS.replace(' ', "")])
        .args(["--phases", &pass.phases])
        .args(["--max-examples", &budget.examples.to_string()])
        .args(["--max-time", &pass.seconds.to_string()])
        .args(["--seed", &budget.seed.to_string()])
        // One worker: the fuzzer's generator is not reliable across threads (hypothesis
        // raised "AST constructor recursion depth mismatch" with two), and the machine
        // has two cores for the fuzzer and the server together.
        .args(["--workers", "1"])
        // An answer later than this is a hang; the server's own request timeout is 60 s.
        .args(["--request-timeout", "30"])
        .args(["--report", "json", "--report-json-path"])
        .arg(&report)
        .args(["--no-color", "--output-truncate", "true"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    if let Some(paths) = &pass.paths {
        cmd.args(["--include-path-regex", paths]);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run the fuzzer {}: {e}\nInstall it with scripts/install-schemathesis \
             (scripts/test does), or point K1S_SCHEMATHESIS at a schemathesis binary.",
            bin.display()
        )
    });
    // Loading the document, the last shrinking and the report come on top of --max-time.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(pass.seconds + 240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the fuzzer ({}) ran past its budget of {} s (+240 s):\n{}",
                pass.name,
                pass.seconds,
                std::fs::read_to_string(&stdout).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = std::fs::read_to_string(&stdout).unwrap_or_default();
    let report: Value = std::fs::read_to_string(&report)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| {
            panic!(
                "the fuzzer ({status}) wrote no JSON report at {}:\n{out}",
                report.display()
            )
        });
    let exit = status.code().unwrap_or(-1);
    println!(
        "fuzz_openapi: {}: exit {exit} after {} s, {} test cases",
        pass.name,
        started.elapsed().as_secs(),
        report["test_cases"]["generated"],
    );
    Outcome {
        name: pass.name.clone(),
        exit,
        stdout: out,
        report,
    }
}

/// The passes of the run: the main one over every operation, then the stateful ones, one
/// per API group version (`/api/v1`, `/apis/apps/v1`, …) sharing their budget.
fn passes(doc: &Value, budget: &Budget) -> Vec<Pass> {
    let mut passes = vec![Pass {
        name: "main".into(),
        phases: budget.phases.clone(),
        seconds: budget.seconds,
        paths: None,
    }];
    if budget.stateful_seconds == 0 {
        return passes;
    }
    let mut groups: Vec<String> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.keys())
        .filter_map(|path| {
            let parts: Vec<&str> = path.split('/').collect();
            match parts.get(1) {
                Some(&"api") => Some(parts[..3.min(parts.len())].join("/")),
                Some(&"apis") => Some(parts[..4.min(parts.len())].join("/")),
                _ => None,
            }
        })
        .collect();
    groups.sort();
    groups.dedup();
    let share = (budget.stateful_seconds / groups.len().max(1) as u64).max(20);
    for group in groups {
        let name = format!("stateful{}", group.replace(['/', '.'], "-"));
        passes.push(Pass {
            name,
            phases: "stateful".into(),
            seconds: share,
            paths: Some(format!("^{}/", group.replace('.', "\\."))),
        });
    }
    passes
}

/// The property a failure code of the fuzzer breaks; None for what is only reported.
fn property_of(code: &str) -> Option<&'static str> {
    match code {
        "ST101" | "ST102" => Some("1. no 5xx answer"),
        c if c.starts_with("ST1") => Some("2. every answer matches the document"),
        // AcceptedNegativeData: see CHECKS.
        "ST201" => None,
        _ => Some("stateful checks"),
    }
}

#[test]
fn openapi_fuzzing_breaks_nothing() {
    let bin = schemathesis();
    assert!(
        bin.exists(),
        "the OpenAPI fuzzer is not installed: {} is missing.\n\
         Install it with scripts/install-schemathesis (scripts/test runs it), or point \
         K1S_SCHEMATHESIS at a schemathesis binary.",
        bin.display()
    );
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| panic!("{} --version: {e}", bin.display()));
    let budget = budget();
    println!(
        "fuzz_openapi: {version}; seed {} (rerun with K1S_FUZZ_SEED={}); {} examples per \
         operation, phases {}, {} s",
        budget.seed, budget.seed, budget.examples, budget.phases, budget.seconds
    );

    let k1s = K1s::start();
    let k = newest_kubectl();
    let [crds, objects] = seed_manifests();
    k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(&crds), &[])
        .ok();
    eventually(
        Duration::from_secs(30),
        "the seeded CRD to be served",
        || {
            let r = k1s.kubectl(
                &k,
                &["get", &format!("widgets.{SEED_GROUP}"), "-n", SEED_NS],
            );
            (r.code == 0).then_some(())
        },
    );
    k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(&objects), &[])
        .ok();

    let dir = out_dir();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = runtime.block_on(k1s.client());
    let guarded = guarded_paths();
    let before = runtime.block_on(snapshot(&client, &guarded));
    for (path, obj) in &before {
        assert!(obj.is_some(), "seeding failed: {path} is not there");
    }

    let (code, served, _) = runtime.block_on(request(&client, "GET", "/openapi/v2", None));
    assert_eq!(code, 200, "GET /openapi/v2: {served}");
    let (doc, notes) = adapt(served);
    println!("fuzz_openapi: adapted the document: {}", notes.join("; "));
    let doc_path = dir.join("openapi-v2-adapted.json");
    std::fs::write(&doc_path, serde_json::to_vec(&doc).expect("json")).expect("write document");
    let config_path = dir.join("schemathesis.toml");
    std::fs::write(&config_path, config(&doc)).expect("write config");

    let started = Instant::now();
    let outcomes: Vec<Outcome> = passes(&doc, &budget)
        .iter()
        .map(|pass| run_fuzzer(&k1s, &dir, &doc_path, &config_path, &budget, pass))
        .collect();
    println!(
        "fuzz_openapi: {} fuzzer run(s) in {} s; files in {}",
        outcomes.len(),
        started.elapsed().as_secs(),
        dir.display()
    );

    let mut problems: Vec<String> = Vec::new();
    let mut reported: Vec<String> = Vec::new();
    // (code, title) -> operation -> the first example of it.
    let mut failures: BTreeMap<(String, String), BTreeMap<String, Option<String>>> =
        BTreeMap::new();
    let mut unresolvable: std::collections::BTreeSet<String> = Default::default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|o| o.as_str().map_or(o.to_string(), String::from))
            .collect()
    };
    for outcome in &outcomes {
        let report = &outcome.report;
        let list = report["failures"].as_array().cloned().unwrap_or_default();
        let failing: Vec<String> = list
            .iter()
            .flat_map(|f| strings(&f["operations"]))
            .collect();
        let mut examples = failure_examples(&outcome.stdout, &failing);
        for failure in &list {
            let key = (
                failure["code"].as_str().unwrap_or("?").to_string(),
                failure["title"].as_str().unwrap_or("?").to_string(),
            );
            let ops = failures.entry(key).or_default();
            for op in strings(&failure["operations"]) {
                let example = examples.remove(&op);
                // Stateful failures name no operation, only the run's scenarios.
                let op = if op == "Stateful tests" {
                    format!("{op} of {}", outcome.name)
                } else {
                    op
                };
                let slot = ops.entry(op).or_default();
                if slot.is_none() {
                    *slot = example;
                }
            }
        }
        unresolvable.extend(strings(&report["warnings"]["unresolvable_reference"]));
        let errors = strings(&report["errors"]);
        if !errors.is_empty() {
            let list: Vec<String> = errors
                .iter()
                .map(|e| format!("  - {}", clip(e, 600)))
                .collect();
            problems.push(format!(
                "[every request answered] {}: the fuzzer met errors (timeouts, dropped \
                 connections, or its own):\n{}",
                outcome.name,
                list.join("\n")
            ));
        }
        // 0: no failures, 1: failures; anything else is the fuzzer's own error.
        if !(0..=1).contains(&outcome.exit) {
            let out = &outcome.stdout;
            let tail = (out.len().saturating_sub(3000)..out.len())
                .find(|&i| out.is_char_boundary(i))
                .unwrap_or(0);
            problems.push(format!(
                "[fuzzer] {}: the fuzzer failed (exit {}):\n{}",
                outcome.name,
                outcome.exit,
                &out[tail..]
            ));
        }
        if report["operations"]["tested"].as_u64().unwrap_or(0) == 0 {
            problems.push(format!(
                "[fuzzer] {}: the fuzzer tested no operation (exit {}):\n{}",
                outcome.name,
                outcome.exit,
                clip(&outcome.stdout, 4000)
            ));
        }
    }
    for ((code, title), ops) in &failures {
        let property = property_of(code);
        let mut text = format!(
            "[{}] {code} {title}: {} operation(s)",
            property.unwrap_or("reported, not asserted"),
            ops.len()
        );
        for (op, example) in ops {
            let _ = write!(text, "\n  - {op}");
            if let Some(example) = example {
                let _ = write!(text, "\n{example}");
            }
        }
        if property.is_some() {
            problems.push(text);
        } else {
            reported.push(text);
        }
    }
    if !unresolvable.is_empty() {
        let list: Vec<String> = unresolvable.iter().map(|r| format!("  - {r}")).collect();
        problems.push(format!(
            "[2. every answer matches the document] the document refers to definitions it \
             does not have; the fuzzer skipped these parts:\n{}",
            list.join("\n")
        ));
    }

    // 3. Survival, then the server's own health.
    let after = runtime.block_on(snapshot(&client, &guarded));
    for (path, old) in &before {
        let old = old.as_ref().expect("seeded");
        match after.get(path).and_then(Option::as_ref) {
            None => problems.push(format!(
                "[3. seeded and system objects survive] {path} is gone"
            )),
            Some(new) if new != old => {
                let mut changes = Vec::new();
                diff(old, new, "", &mut changes);
                changes.truncate(12);
                let uid = if old["metadata"]["uid"] == new["metadata"]["uid"] {
                    "same uid"
                } else {
                    "NEW uid: deleted and recreated"
                };
                problems.push(format!(
                    "[3. seeded and system objects survive] {path} changed ({uid}):\n    {}",
                    changes.join("\n    ")
                ));
            }
            Some(_) => {}
        }
    }
    let ready = k1s.kubectl(&k, &["get", "--raw", "/readyz"]);
    if ready.code != 0 || ready.stdout.trim() != "ok" {
        problems.push(format!(
            "[server health] /readyz after the run: {} {}",
            ready.stdout, ready.stderr
        ));
    }
    let log = k1s.log();
    if let Some(at) = log.find("panicked") {
        let from = log[..at].rfind('\n').map_or(0, |i| i + 1);
        problems.push(format!(
            "[server health] the server panicked:\n{}",
            clip(&log[from..], 2000)
        ));
    }

    // What property 2 cannot see: successful answers the document gives no schema.
    let unchecked = unchecked_answers(&doc);
    if !unchecked.is_empty() {
        reported.push(format!(
            "[reported, not asserted] {} operation(s) declare a successful answer without a \
             schema, so their answers go unchecked (upstream's document declares the kind's \
             List for a list or deletecollection and a Status or the object for a delete): {}",
            unchecked.len(),
            clip(&unchecked.join(", "), 600)
        ));
    }
    if !reported.is_empty() {
        println!(
            "fuzz_openapi: findings reported, not asserted:\n\n{}\n",
            reported.join("\n\n")
        );
    }
    let summary = format!(
        "seed {} (K1S_FUZZ_SEED={} replays it); the fuzzer's full output and report are in {}",
        budget.seed,
        budget.seed,
        dir.display()
    );
    assert!(
        problems.is_empty(),
        "the OpenAPI fuzz run found {} problem(s); {summary}\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
