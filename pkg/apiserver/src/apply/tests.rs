//! Tests of the apply module: field sets and their `FieldsV1` bytes, merging, ownership,
//! conflicts and the managedFields bookkeeping, on hand-built Deployment-like schemas.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;
use crate::schema::model::{Definitions, ListType, MapType, Schema, SchemaType};

// ---------------------------------------------------------------------------------------
// Schemas

fn t(ty: SchemaType) -> Schema {
    Schema::of_type(ty)
}

fn string() -> Schema {
    t(SchemaType::String)
}

fn int() -> Schema {
    t(SchemaType::Integer)
}

fn r(name: &str) -> Schema {
    Schema::reference(name)
}

fn object(props: &[(&str, Schema)]) -> Schema {
    Schema {
        ty: Some(SchemaType::Object),
        properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Schema::default()
    }
}

fn map_of(value: Schema) -> Schema {
    Schema {
        ty: Some(SchemaType::Object),
        additional_properties: Some(Box::new(value)),
        ..Schema::default()
    }
}

fn array(items: Schema, list_type: Option<ListType>, keys: &[&str]) -> Schema {
    Schema {
        ty: Some(SchemaType::Array),
        items: Some(Box::new(items)),
        list_type,
        list_map_keys: keys.iter().map(|k| k.to_string()).collect(),
        ..Schema::default()
    }
}

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

fn defs() -> Definitions {
    let mut d = Definitions::new();
    d.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        object(&[
            ("name", string()),
            ("namespace", string()),
            ("uid", string()),
            ("resourceVersion", string()),
            ("generation", int()),
            (
                "creationTimestamp",
                Schema {
                    format: Some("date-time".into()),
                    ..string()
                },
            ),
            ("labels", map_of(string())),
            ("annotations", map_of(string())),
            ("finalizers", array(string(), Some(ListType::Set), &[])),
            (
                "managedFields",
                array(
                    object(&[("manager", string()), ("fieldsV1", t(SchemaType::Object))]),
                    Some(ListType::Atomic),
                    &[],
                ),
            ),
        ]),
    );
    d.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        Schema {
            map_type: Some(MapType::Atomic),
            ..object(&[
                ("matchLabels", map_of(string())),
                (
                    "matchExpressions",
                    array(object(&[("key", string())]), None, &[]),
                ),
            ])
        },
    );
    d.insert(
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        Schema {
            format: Some("int-or-string".into()),
            int_or_string: true,
            ..string()
        },
    );
    d.insert("io.k8s.apimachinery.pkg.api.resource.Quantity", string());
    d.insert(
        DEPLOYMENT,
        object(&[
            ("apiVersion", string()),
            ("kind", string()),
            (
                "metadata",
                r("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            ),
            ("spec", r("io.k8s.api.apps.v1.DeploymentSpec")),
            ("status", r("io.k8s.api.apps.v1.DeploymentStatus")),
        ]),
    );
    d.insert(
        "io.k8s.api.apps.v1.DeploymentSpec",
        object(&[
            ("replicas", int()),
            ("progressDeadlineSeconds", int()),
            (
                "selector",
                r("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
            ),
            ("template", r("io.k8s.api.core.v1.PodTemplateSpec")),
            ("strategy", r("io.k8s.api.apps.v1.DeploymentStrategy")),
        ]),
    );
    d.insert(
        "io.k8s.api.apps.v1.DeploymentStrategy",
        object(&[
            ("type", string()),
            (
                "rollingUpdate",
                r("io.k8s.api.apps.v1.RollingUpdateDeployment"),
            ),
        ]),
    );
    d.insert(
        "io.k8s.api.apps.v1.RollingUpdateDeployment",
        object(&[
            (
                "maxSurge",
                r("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
            ),
            (
                "maxUnavailable",
                r("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
            ),
        ]),
    );
    d.insert(
        "io.k8s.api.apps.v1.DeploymentStatus",
        object(&[("replicas", int()), ("observedGeneration", int())]),
    );
    d.insert(
        "io.k8s.api.core.v1.PodTemplateSpec",
        object(&[
            (
                "metadata",
                r("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            ),
            ("spec", r("io.k8s.api.core.v1.PodSpec")),
        ]),
    );
    d.insert(
        "io.k8s.api.core.v1.PodSpec",
        object(&[
            (
                "containers",
                array(
                    r("io.k8s.api.core.v1.Container"),
                    Some(ListType::Map),
                    &["name"],
                ),
            ),
            ("restartPolicy", string()),
            (
                "nodeSelector",
                Schema {
                    map_type: Some(MapType::Atomic),
                    ..map_of(string())
                },
            ),
        ]),
    );
    d.insert(
        "io.k8s.api.core.v1.Container",
        object(&[
            ("name", string()),
            ("image", string()),
            ("imagePullPolicy", string()),
            ("args", array(string(), None, &[])),
            (
                "ports",
                array(
                    r("io.k8s.api.core.v1.ContainerPort"),
                    Some(ListType::Map),
                    &["containerPort", "protocol"],
                ),
            ),
            (
                "env",
                array(
                    r("io.k8s.api.core.v1.EnvVar"),
                    Some(ListType::Map),
                    &["name"],
                ),
            ),
            ("resources", r("io.k8s.api.core.v1.ResourceRequirements")),
        ]),
    );
    // No default on protocol, as k1s's schemas from k8s-openapi: the fallback table supplies it.
    d.insert(
        "io.k8s.api.core.v1.ContainerPort",
        object(&[
            ("containerPort", int()),
            ("protocol", string()),
            ("name", string()),
        ]),
    );
    d.insert(
        "io.k8s.api.core.v1.EnvVar",
        object(&[("name", string()), ("value", string())]),
    );
    d.insert(
        "io.k8s.api.core.v1.ResourceRequirements",
        object(&[
            (
                "limits",
                map_of(r("io.k8s.apimachinery.pkg.api.resource.Quantity")),
            ),
            (
                "requests",
                map_of(r("io.k8s.apimachinery.pkg.api.resource.Quantity")),
            ),
        ]),
    );
    d
}

struct Fixture {
    defs: Definitions,
    schema: Schema,
    zero: Value,
}

impl Fixture {
    fn new() -> Self {
        Self {
            defs: defs(),
            schema: r(DEPLOYMENT),
            zero: json!({
                "metadata": {"creationTimestamp": null},
                "spec": {
                    "selector": null,
                    "strategy": {},
                    "template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}
                },
                "status": {}
            }),
        }
    }

    fn ctx(&self, now: &str) -> ApplyContext<'_> {
        ApplyContext {
            kind: Some("Deployment"),
            zero: Some(&self.zero),
            reset_fields: FieldSet::from_paths([FieldPath::fields(&["status"])]),
            ..ApplyContext::new(&self.schema, &self.defs, "apps/v1", now.to_string())
        }
    }
}

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T11:00:00Z";
const T3: &str = "2024-05-01T12:00:00Z";

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image}]}
            }
        }
    })
}

fn entry<'e>(entries: &'e [ManagedFieldsEntry], manager: &str) -> &'e ManagedFieldsEntry {
    entries.iter().find(|e| e.manager == manager).unwrap()
}

fn fields(e: &ManagedFieldsEntry) -> String {
    e.fields_v1.to_fields_v1_string()
}

// ---------------------------------------------------------------------------------------
// Field paths and FieldsV1

#[test]
fn path_elements_order_and_display() {
    // Fields sort before keys, keys before values, values before indexes; numbers before
    // strings before booleans.
    let mut pes = [
        PathElement::Index(0),
        PathElement::Value(json!(true)),
        PathElement::Value(json!("a")),
        PathElement::Value(json!(2)),
        PathElement::key(vec![("name".into(), json!("x"))]),
        PathElement::field("b"),
        PathElement::field("a"),
    ];
    pes.sort();
    let keys: Vec<String> = pes.iter().map(PathElement::to_fields_v1_key).collect();
    assert_eq!(
        keys,
        [
            "f:a",
            "f:b",
            r#"k:{"name":"x"}"#,
            "v:2",
            r#"v:"a""#,
            "v:true",
            "i:0"
        ]
    );

    let path = FieldPath(vec![
        PathElement::field("spec"),
        PathElement::key(vec![
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
            ("weight".into(), json!(1.5)),
        ]),
        PathElement::Value(json!("v")),
        PathElement::Index(3),
    ]);
    assert_eq!(
        path.to_string(),
        r#".spec[containerPort=80,protocol="TCP",weight=1.5][="v"][3]"#
    );
    // Key values are written as json-iterator writes them: sorted, HTML-escaped.
    assert_eq!(
        PathElement::key(vec![("name".into(), json!("<a&b>"))]).to_fields_v1_key(),
        r#"k:{"name":"\u003ca\u0026b\u003e"}"#
    );
}

#[test]
fn fields_v1_round_trips_byte_for_byte() {
    let cases = [
        r#"{"f:a":{},"f:b":{".":{},"f:c":{}},"k:{\"name\":\"x\"}":{".":{},"f:name":{}},"k:{\"port\":8080,\"protocol\":\"UDP\"}":{},"v:1":{},"v:\"s\"":{},"v:false":{},"i:0":{},"i:7":{"f:z":{}}}"#,
        r#"{"f:spec":{"f:list":{"k:{\"id\":\"é\"}":{"f:v":{}},"k:{\"id\":\"🚀 a\"}":{".":{},"f:id":{}}}}}"#,
        r#"{}"#,
    ];
    for case in cases {
        let set = FieldSet::from_fields_v1_str(case).unwrap();
        assert_eq!(set.to_fields_v1_string(), case);
        let again = FieldSet::from_fields_v1(&set.to_fields_v1()).unwrap();
        assert_eq!(again, set);
    }
}

#[test]
fn fields_v1_reading_normalizes_and_rejects() {
    // Unsorted keys and white space inside key JSON are normalized; unknown element kinds
    // are dropped with their subtree; a node with only unknown children is a member.
    let set = FieldSet::from_fields_v1_str(
        r#"{"v: 3":{},"k:{ \"protocol\":\"TCP\", \"port\":80}":{},"f:b":{},"f:a":{"x:what":{}},"r:skip":{"f:q":{}}}"#,
    )
    .unwrap();
    assert_eq!(
        set.to_fields_v1_string(),
        r#"{"f:a":{},"f:b":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{},"v:3":{}}"#
    );
    for (bad, msg) in [
        (r#"{"f":{}}"#, "key must be 2 characters long:"),
        (r#"{"fx":{}}"#, "missing colon: fx"),
        (
            r#"{"i:x":{}}"#,
            r#"strconv.Atoi: parsing "x": invalid syntax"#,
        ),
        (
            r#"{"k:[1]":{}}"#,
            "invalid key path element: expected an object, got [1]",
        ),
        (r#"{"f:a":1}"#, "expected an object for f:a"),
    ] {
        assert_eq!(
            FieldSet::from_fields_v1_str(bad).unwrap_err().to_string(),
            msg,
            "{bad}"
        );
    }
    assert!(FieldSet::from_fields_v1_str(r#"{"v:{\"a\":1} x":{}}"#).is_err());
}

#[test]
fn set_algebra() {
    let p = |names: &[&str]| FieldPath::fields(names);
    let a = FieldSet::from_paths([p(&["spec", "a"]), p(&["spec", "b"]), p(&["meta"])]);
    let b = FieldSet::from_paths([p(&["spec", "b"]), p(&["spec"]), p(&["other"])]);
    assert_eq!(a.union(&b).size(), 5);
    assert_eq!(
        a.intersection(&b),
        FieldSet::from_paths([p(&["spec", "b"])])
    );
    assert_eq!(
        a.difference(&b),
        FieldSet::from_paths([p(&["spec", "a"]), p(&["meta"])])
    );
    // A member of the other set removes everything below it only recursively.
    assert_eq!(
        a.recursive_difference(&b),
        FieldSet::from_paths([p(&["meta"])])
    );
    assert!(a.has(&p(&["spec", "a"]).0) && !a.has(&p(&["spec"]).0));
    assert!(a.difference(&a).is_empty());
    let order: Vec<String> = a
        .union(&b)
        .paths()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(order, [".meta", ".other", ".spec", ".spec.a", ".spec.b"]);
}

/// Sets of up to 12 paths over a small alphabet, so that random pairs overlap.
fn small_field_set() -> impl proptest::strategy::Strategy<Value = FieldSet> {
    use proptest::prelude::*;
    let path = prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4);
    prop::collection::vec(path, 0..12)
        .prop_map(|paths| FieldSet::from_paths(paths.iter().map(|p| FieldPath::fields(p))))
}

proptest::proptest! {
    /// The in-place forms give the sets the copying forms give.
    #[test]
    fn in_place_set_algebra_matches_the_copying_forms(
        a in small_field_set(),
        b in small_field_set(),
    ) {
        let mut d = a.clone();
        d.subtract(&b);
        proptest::prop_assert_eq!(&d, &a.difference(&b));
        let mut r = a.clone();
        r.recursive_subtract(&b);
        proptest::prop_assert_eq!(&r, &a.recursive_difference(&b));
        let mut u = a.clone();
        u.union_with(&b);
        proptest::prop_assert_eq!(&u, &a.union(&b));
    }
}

// ---------------------------------------------------------------------------------------
// Field sets of objects

#[test]
fn field_set_of_deployment_is_upstreams() {
    let f = Fixture::new();
    let mut config = deployment(2, "nginx:1.25");
    config["spec"]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]);
    config["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]);
    config["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["-g", "daemon off;"]);
    let set = field_set_of(&config, &f.schema, &f.defs);
    assert_eq!(
        set.to_fields_v1_string(),
        concat!(
            r#"{"f:apiVersion":{},"f:kind":{},"f:metadata":{"f:labels":{"f:app":{}},"f:name":{},"f:namespace":{}},"#,
            r#""f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"#,
            r#""f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:args":{},"#,
            r#""f:env":{"k:{\"name\":\"A\"}":{".":{},"f:name":{},"f:value":{}},"k:{\"name\":\"B\"}":{".":{},"f:name":{},"f:value":{}}},"#,
            r#""f:image":{},"f:name":{},"#,
            r#""f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}},"#,
            r#""k:{\"containerPort\":443,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#
        )
    );
}

#[test]
fn field_sets_of_atomic_set_null_and_empty_values() {
    let f = Fixture::new();
    let obj = json!({
        "metadata": {"finalizers": ["b", "a"], "annotations": {}, "labels": null},
        "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}, "containers": [
            {"name": "a", "resources": {"limits": {"cpu": 1}}},
            {"name": "a", "image": "dup"}
        ]}}}
    });
    // Set elements are members; an atomic map is one field; empty and null values are
    // members; duplicated list elements are members without children.
    assert_eq!(
        field_set_of(&obj, &f.schema, &f.defs).to_fields_v1_string(),
        concat!(
            r#"{"f:metadata":{"f:annotations":{},"f:finalizers":{"v:\"a\"":{},"v:\"b\"":{}},"f:labels":{}},"#,
            r#""f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{}},"f:nodeSelector":{}}}}}"#
        )
    );
}

#[test]
fn field_sets_of_unknown_and_preserved_schemas_are_deduced() {
    let defs = Definitions::new();
    // No schema at all: maps granular (keys are members), lists atomic.
    let obj = json!({"spec": {"a": 1, "b": {"c": [1, 2]}}});
    assert_eq!(
        field_set_of(&obj, &Schema::default(), &defs).to_fields_v1_string(),
        r#"{"f:spec":{".":{},"f:a":{},"f:b":{".":{},"f:c":{}}}}"#
    );
    // A declared field that preserves unknown fields: its own keys are deduced.
    let crd = object(&[(
        "spec",
        Schema {
            preserve_unknown_fields: true,
            ..object(&[("x", int())])
        },
    )]);
    let obj = json!({"spec": {"x": 1, "y": {"z": true}}});
    assert_eq!(
        field_set_of(&obj, &crd, &defs).to_fields_v1_string(),
        r#"{"f:spec":{"f:x":{},"f:y":{".":{},"f:z":{}}}}"#
    );
}

// ---------------------------------------------------------------------------------------
// Apply

#[test]
fn apply_creates_the_object() {
    let f = Fixture::new();
    let ctx = f.ctx(T1);
    let mut config = deployment(2, "nginx");
    config["status"] = json!({"replicas": 5});
    let (obj, entries) = apply(None, &config, "kubectl", false, &[], &ctx).unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (
            e.manager.as_str(),
            e.operation,
            e.api_version.as_str(),
            e.time.as_deref()
        ),
        (
            "kubectl",
            ManagedFieldsOperation::Apply,
            "apps/v1",
            Some(T1)
        )
    );
    // apiVersion, kind, name and namespace are never owned; status is a reset field.
    assert_eq!(
        fields(e),
        concat!(
            r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"#,
            r#""f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{}}}}}}}"#
        )
    );
    let mut expected = deployment(2, "nginx");
    expected["metadata"]["managedFields"] = encode_managed_fields(&entries);
    assert_eq!(obj, expected);
    assert_eq!(
        obj["metadata"]["managedFields"][0],
        json!({
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": e.fields_v1.to_fields_v1()
        })
    );
}

#[test]
fn reapply_removes_dropped_fields_unless_owned_by_others() {
    let f = Fixture::new();
    let mut first = deployment(2, "nginx");
    first["metadata"]["labels"]["tier"] = json!("web");
    first["metadata"]["annotations"] = json!({"note": "x"});
    let (live, entries) = apply(None, &first, "kubectl", false, &[], &f.ctx(T1)).unwrap();

    // Another applier shares the annotation (same value: no conflict).
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "annotations": {"note": "x"}}});
    let (live, entries) = apply(Some(&live), &other, "other", false, &entries, &f.ctx(T2)).unwrap();

    // The first applier drops replicas, the tier label and the annotation.
    let second = deployment(2, "nginx");
    let mut second = second;
    second["spec"]
        .as_object_mut()
        .unwrap()
        .shift_remove("replicas");
    let (obj, entries) =
        apply(Some(&live), &second, "kubectl", false, &entries, &f.ctx(T3)).unwrap();
    assert!(obj["spec"].get("replicas").is_none());
    assert_eq!(obj["metadata"]["labels"], json!({"app": "nginx"}));
    assert_eq!(
        obj["metadata"]["annotations"],
        json!({"note": "x"}),
        "still owned by other"
    );
    let k = entry(&entries, "kubectl");
    assert_eq!(k.time.as_deref(), Some(T3));
    assert!(!fields(k).contains("replicas") && !fields(k).contains("annotations"));
    assert_eq!(
        fields(entry(&entries, "other")),
        r#"{"f:metadata":{"f:annotations":{"f:note":{}}}}"#
    );
}

#[test]
fn conflicts_and_force() {
    let f = Fixture::new();
    let (live, entries) = apply(
        None,
        &deployment(1, "nginx"),
        "deployer",
        false,
        &[],
        &f.ctx(T1),
    )
    .unwrap();
    // kubectl edit (an update) changes replicas and takes the field over.
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(3);
    let entries = update(Some(&live), &edited, "kubectl-edit", &entries, &f.ctx(T2));
    assert_eq!(
        fields(entry(&entries, "kubectl-edit")),
        r#"{"f:spec":{"f:replicas":{}}}"#
    );
    assert!(!fields(entry(&entries, "deployer")).contains("replicas"));
    let mut live = edited;
    set_managed_fields(&mut live, &entries);

    let err = apply(
        Some(&live),
        &deployment(5, "nginx"),
        "deployer",
        false,
        &entries,
        &f.ctx(T3),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas"#
    );
    assert_eq!((err.code(), err.reason()), (409, "Conflict"));
    assert_eq!(
        err.causes(),
        [StatusCause {
            reason: "FieldManagerConflict".into(),
            message: r#"conflict with "kubectl-edit" using apps/v1"#.into(),
            field: ".spec.replicas".into(),
        }]
    );
    let ApplyError::Conflicts(cs) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (cs[0].manager.as_str(), cs[0].api_version.as_str()),
        ("kubectl-edit", "apps/v1")
    );

    // Applying the live value is no conflict: both own it.
    let (_, shared) = apply(
        Some(&live),
        &deployment(3, "nginx"),
        "deployer",
        false,
        &entries,
        &f.ctx(T3),
    )
    .unwrap();
    assert!(fields(entry(&shared, "deployer")).contains("replicas"));
    assert!(fields(entry(&shared, "kubectl-edit")).contains("replicas"));

    // Forcing moves ownership.
    let (obj, forced) = apply(
        Some(&live),
        &deployment(5, "nginx"),
        "deployer",
        true,
        &entries,
        &f.ctx(T3),
    )
    .unwrap();
    assert_eq!(obj["spec"]["replicas"], json!(5));
    assert!(
        forced.iter().all(|e| e.manager != "kubectl-edit"),
        "emptied entry dropped"
    );
    assert!(fields(entry(&forced, "deployer")).contains("replicas"));
}

#[test]
fn conflict_message_with_several_managers() {
    let f = Fixture::new();
    let (live, entries) =
        apply(None, &deployment(1, "nginx"), "a", false, &[], &f.ctx(T1)).unwrap();
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let entries = update(Some(&live), &edited, "b", &entries, &f.ctx(T2));
    let mut live = edited;
    set_managed_fields(&mut live, &entries);
    let mut config = deployment(9, "nginx:3");
    config["metadata"]["labels"]["app"] = json!("other");
    config["spec"]["template"]["metadata"]["labels"]["app"] = json!("nginx");
    let err = apply(Some(&live), &config, "c", false, &entries, &f.ctx(T3)).unwrap_err();
    assert_eq!(
        err.to_string(),
        concat!(
            "Apply failed with 3 conflicts: conflicts with \"a\":\n",
            "- .metadata.labels.app\n",
            "- .spec.replicas\n",
            "conflicts with \"b\" using apps/v1:\n",
            "- .spec.template.spec.containers[name=\"nginx\"].image"
        )
    );
    let fields: Vec<String> = err.causes().into_iter().map(|c| c.field).collect();
    assert_eq!(fields.len(), 3);
}

#[test]
fn two_appliers_sharing_a_value_both_own_it() {
    let f = Fixture::new();
    let (live, entries) =
        apply(None, &deployment(2, "nginx"), "one", false, &[], &f.ctx(T1)).unwrap();
    let partial = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx"}, "spec": {"replicas": 2}});
    let (obj, entries) = apply(Some(&live), &partial, "two", false, &entries, &f.ctx(T2)).unwrap();
    assert_eq!(
        fields(entry(&entries, "two")),
        r#"{"f:spec":{"f:replicas":{}}}"#
    );
    assert!(fields(entry(&entries, "one")).contains("f:replicas"));
    // Nothing changed: the object is the live one and the new entry gets no time.
    let mut expected = live.clone();
    set_managed_fields(&mut expected, &entries);
    assert_eq!(obj, expected);
    assert_eq!(entry(&entries, "two").time, None);
    assert_eq!(entry(&entries, "one").time.as_deref(), Some(T1));
    // Entries are written Apply first, then by time, then by manager.
    let order: Vec<&str> = entries.iter().map(|e| e.manager.as_str()).collect();
    assert_eq!(order, ["two", "one"]);
}

#[test]
fn apply_that_changes_nothing_keeps_the_time() {
    let f = Fixture::new();
    let (live, entries) = apply(
        None,
        &deployment(2, "nginx"),
        "kubectl",
        false,
        &[],
        &f.ctx(T1),
    )
    .unwrap();
    let (obj, again) = apply(
        Some(&live),
        &deployment(2, "nginx"),
        "kubectl",
        false,
        &entries,
        &f.ctx(T2),
    )
    .unwrap();
    assert_eq!(again, entries);
    assert_eq!(obj, live);
    let (_, changed) = apply(
        Some(&live),
        &deployment(4, "nginx"),
        "kubectl",
        false,
        &entries,
        &f.ctx(T2),
    )
    .unwrap();
    assert_eq!(changed[0].time.as_deref(), Some(T2));
}

#[test]
fn atomic_lists_are_replaced_and_owned_whole() {
    let f = Fixture::new();
    let mut a = deployment(1, "nginx");
    a["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["a", "b"]);
    let (live, entries) = apply(None, &a, "a", false, &[], &f.ctx(T1)).unwrap();
    assert!(fields(&entries[0]).contains(r#""f:args":{}"#));
    let b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"},
        "spec": {"template": {"spec": {"containers": [{"name": "nginx", "args": ["c"]}]}}}});
    let err = apply(Some(&live), &b, "b", false, &entries, &f.ctx(T2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "a": .spec.template.spec.containers[name="nginx"].args"#
    );
    let (obj, entries) = apply(Some(&live), &b, "b", true, &entries, &f.ctx(T2)).unwrap();
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["c"])
    );
    assert!(!fields(entry(&entries, "a")).contains("args"));
}

#[test]
fn set_lists_merge_per_element() {
    let f = Fixture::new();
    let with = |fin: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "finalizers": fin}})
    };
    let (live, entries) = apply(None, &with(json!(["a"])), "one", false, &[], &f.ctx(T1)).unwrap();
    let (live, entries) = apply(
        Some(&live),
        &with(json!(["b"])),
        "two",
        false,
        &entries,
        &f.ctx(T2),
    )
    .unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["a", "b"]));
    assert_eq!(
        fields(entry(&entries, "one")),
        r#"{"f:metadata":{"f:finalizers":{"v:\"a\"":{}}}}"#
    );
    // Dropping its element removes it; the other stays.
    let none =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}});
    let (obj, entries) = apply(Some(&live), &none, "one", false, &entries, &f.ctx(T3)).unwrap();
    assert_eq!(obj["metadata"]["finalizers"], json!(["b"]));
    assert!(entries.iter().all(|e| e.manager != "one"));
}

#[test]
fn list_maps_with_two_keys_merge_by_both() {
    let f = Fixture::new();
    let mut live = deployment(1, "nginx");
    live["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([
        {"containerPort": 53, "protocol": "TCP"},
        {"containerPort": 53, "protocol": "UDP"}
    ]);
    let (live, entries) = apply(None, &live, "base", false, &[], &f.ctx(T1)).unwrap();
    // Protocol omitted: the key takes the default, so the TCP port is meant.
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"},
        "spec": {"template": {"spec": {"containers": [{"name": "nginx",
            "ports": [{"containerPort": 53, "name": "dns"}]}]}}}});
    let (obj, entries) = apply(Some(&live), &config, "namer", false, &entries, &f.ctx(T2)).unwrap();
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([
            {"containerPort": 53, "protocol": "TCP", "name": "dns"},
            {"containerPort": 53, "protocol": "UDP"}
        ])
    );
    assert_eq!(
        fields(entry(&entries, "namer")),
        concat!(
            r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:name":{},"#,
            r#""f:ports":{"k:{\"containerPort\":53,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{}}}}}}}}}"#
        )
    );
}

#[test]
fn merged_list_order_follows_upstream() {
    let f = Fixture::new();
    let containers = |names: &[&str]| -> Value {
        let items: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "image": "i"}))
            .collect();
        let mut d = deployment(1, "x");
        d["spec"]["template"]["spec"]["containers"] = Value::Array(items);
        d
    };
    let (live, entries) = apply(
        None,
        &containers(&["a", "b", "c"]),
        "one",
        false,
        &[],
        &f.ctx(T1),
    )
    .unwrap();
    let (obj, _) = apply(
        Some(&live),
        &containers(&["c", "a"]),
        "one",
        false,
        &entries,
        &f.ctx(T2),
    )
    .unwrap();
    let names: Vec<&str> = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // b is dropped (owned by nobody else); the applied order wins for the rest.
    assert_eq!(names, ["c", "a"]);
}

#[test]
fn first_apply_to_an_untracked_object_records_its_fields() {
    let f = Fixture::new();
    let live = deployment(1, "nginx");
    let err = apply(
        Some(&live),
        &deployment(2, "nginx"),
        "kubectl",
        false,
        &[],
        &f.ctx(T1),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas"#
    );
    let (_, entries) = apply(
        Some(&live),
        &deployment(1, "nginx"),
        "kubectl",
        false,
        &[],
        &f.ctx(T1),
    )
    .unwrap();
    let before = entry(&entries, BEFORE_FIRST_APPLY_MANAGER);
    assert_eq!(
        (before.operation, before.time.as_deref()),
        (ManagedFieldsOperation::Update, Some(T1))
    );
    assert!(fields(before).contains("f:replicas"));
}

#[test]
fn invalid_applied_objects_are_refused_as_upstream() {
    let f = Fixture::new();
    let ctx = f.ctx(T1);
    let mut dup = deployment(1, "nginx");
    dup["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
    let err = apply(None, &dup, "m", false, &[], &ctx).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"failed to create typed patch object (default/nginx; apps/v1, Kind=Deployment): .spec.template.spec.containers: duplicate entries for key [name="a"]"#
    );
    assert_eq!(err.code(), 500);
    let mut unknown = deployment(1, "nginx");
    unknown["spec"]["bogus"] = json!(1);
    unknown["spec"]["replicas"] = json!("x");
    assert_eq!(
        apply(None, &unknown, "m", false, &[], &ctx)
            .unwrap_err()
            .to_string(),
        concat!(
            "failed to create typed patch object (default/nginx; apps/v1, Kind=Deployment): errors:\n",
            "  .spec.replicas: expected numeric (int or float), got string\n",
            "  .spec.bogus: field not declared in schema"
        )
    );
    let mut with_mf = deployment(1, "nginx");
    with_mf["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        apply(None, &with_mf, "m", false, &[], &ctx)
            .unwrap_err()
            .to_string(),
        "metadata.managedFields must be nil"
    );
    let mut other_kind = deployment(1, "nginx");
    other_kind["kind"] = json!("StatefulSet");
    assert_eq!(
        apply(None, &other_kind, "m", false, &[], &ctx)
            .unwrap_err()
            .to_string(),
        "invalid object type: apps/v1, Kind=StatefulSet"
    );
    let no_kind = ApplyContext {
        kind: None,
        ..f.ctx(T1)
    };
    let mut v1beta1 = deployment(1, "nginx");
    v1beta1["apiVersion"] = json!("apps/v1beta1");
    assert_eq!(
        apply(None, &v1beta1, "m", false, &[], &no_kind)
            .unwrap_err()
            .to_string(),
        "Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, expected: apps/v1"
    );
}

// ---------------------------------------------------------------------------------------
// Updates

fn created() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"},
            "creationTimestamp": null},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {},
                    "imagePullPolicy": "Always"}], "restartPolicy": "Always"}
            },
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "progressDeadlineSeconds": 600
        },
        "status": {}
    })
}

#[test]
fn create_records_the_creators_fields_as_upstream() {
    let f = Fixture::new();
    let entries = update(None, &created(), "kubectl-create", &[], &f.ctx(T1));
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (e.operation, e.time.as_deref()),
        (ManagedFieldsOperation::Update, Some(T1))
    );
    // Struct fields present in the Go zero value (spec, strategy, template, containers) are
    // not members; fields added from nothing (labels, rollingUpdate, the container) are.
    assert_eq!(
        fields(e),
        concat!(
            r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:selector":{},"#,
            r#""f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"#,
            r#""f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"#,
            r#""f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{}}},"f:restartPolicy":{}}}}}"#
        )
    );
    // Without a zero value (custom resources), the top-level objects are members too.
    let bare = ApplyContext {
        zero: None,
        ..f.ctx(T1)
    };
    let entries = update(None, &created(), "kubectl-create", &[], &bare);
    assert!(
        fields(&entries[0])
            .starts_with(r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"#)
    );
}

#[test]
fn updates_move_changed_fields_and_drop_removed_ones() {
    let f = Fixture::new();
    let live = created();
    let entries = update(None, &live, "kubectl-create", &[], &f.ctx(T1));
    let mut live = live;
    set_managed_fields(&mut live, &entries);

    // An update that changes nothing changes no entry (nor its time).
    let same = update(Some(&live), &live, "kubectl-edit", &entries, &f.ctx(T2));
    assert_eq!(same, entries);

    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(3);
    edited["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .shift_remove("app");
    edited["metadata"]["labels"]["team"] = json!("x");
    edited["status"]["replicas"] = json!(3);
    let after = update(Some(&live), &edited, "kubectl-edit", &entries, &f.ctx(T2));
    let edit = entry(&after, "kubectl-edit");
    assert_eq!(edit.time.as_deref(), Some(T2));
    // status is a reset field of the main resource: changing it is owned by nobody.
    assert_eq!(
        fields(edit),
        r#"{"f:metadata":{"f:labels":{"f:team":{}}},"f:spec":{"f:replicas":{}}}"#
    );
    let create = entry(&after, "kubectl-create");
    assert_eq!(
        create.time.as_deref(),
        Some(T1),
        "losing fields does not touch the time"
    );
    assert!(!fields(create).contains("f:replicas"));
    assert!(
        fields(create).contains(r#""f:labels":{}"#),
        "the removed label is gone"
    );

    // The same manager updating again merges into its entry.
    let mut live2 = edited.clone();
    set_managed_fields(&mut live2, &after);
    let mut edited2 = live2.clone();
    edited2["spec"]["progressDeadlineSeconds"] = json!(300);
    let after2 = update(Some(&live2), &edited2, "kubectl-edit", &after, &f.ctx(T3));
    assert_eq!(
        fields(entry(&after2, "kubectl-edit")),
        r#"{"f:metadata":{"f:labels":{"f:team":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{}}}"#
    );
    assert_eq!(entry(&after2, "kubectl-edit").time.as_deref(), Some(T3));
}

#[test]
fn updates_through_a_subresource_are_separate_entries() {
    let f = Fixture::new();
    let live = created();
    let entries = update(None, &live, "kubectl-create", &[], &f.ctx(T1));
    let mut new = live.clone();
    new["status"] = json!({"replicas": 1, "observedGeneration": 1});
    let status_ctx = ApplyContext {
        subresource: Some("status"),
        reset_fields: FieldSet::from_paths([FieldPath::fields(&["spec"])]),
        ..f.ctx(T2)
    };
    let after = update(
        Some(&live),
        &new,
        "kube-controller-manager",
        &entries,
        &status_ctx,
    );
    let e = entry(&after, "kube-controller-manager");
    assert_eq!(e.subresource, "status");
    assert_eq!(
        fields(e),
        r#"{"f:status":{"f:observedGeneration":{},"f:replicas":{}}}"#
    );
    assert_eq!(
        e.to_json()["subresource"],
        json!("status"),
        "subresource is written after fieldsV1"
    );
}

#[test]
fn untracked_objects_stay_untracked_and_resets_clear() {
    let f = Fixture::new();
    let live = created();
    let mut new = live.clone();
    new["spec"]["replicas"] = json!(2);
    assert!(update(Some(&live), &new, "kubectl-edit", &[], &f.ctx(T1)).is_empty());

    let entries = update(None, &live, "kubectl-create", &[], &f.ctx(T1));
    let mut live = live;
    set_managed_fields(&mut live, &entries);
    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([]);
    assert!(managed_fields_for_update(Some(&live), &reset, false).is_empty());
    reset["metadata"]["managedFields"] = json!([{}]);
    assert!(managed_fields_for_update(Some(&live), &reset, false).is_empty());
    // A request without entries (or with broken ones) keeps the live ones.
    let mut plain = live.clone();
    plain["metadata"]
        .as_object_mut()
        .unwrap()
        .shift_remove("managedFields");
    assert_eq!(
        managed_fields_for_update(Some(&live), &plain, false),
        entries
    );
    plain["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Bogus"}]);
    assert_eq!(
        managed_fields_for_update(Some(&live), &plain, false),
        entries
    );
    // A subresource always starts from the live entries.
    assert_eq!(
        managed_fields_for_update(Some(&live), &reset, true),
        entries
    );
}

#[test]
fn update_managers_are_capped_into_ancient_changes() {
    let f = Fixture::new();
    let mut live = created();
    let mut entries = update(None, &live, "creator", &[], &f.ctx("2024-01-01T00:00:00Z"));
    set_managed_fields(&mut live, &entries);
    for i in 0..11 {
        let mut new = live.clone();
        new["metadata"]["labels"][format!("l{i}")] = json!("x");
        let now = format!("2024-01-01T00:{:02}:00Z", i + 1);
        entries = update(Some(&live), &new, &format!("m{i}"), &entries, &f.ctx(&now));
        live = new;
        set_managed_fields(&mut live, &entries);
    }
    assert_eq!(entries.len(), 10);
    let ancient = entry(&entries, "ancient-changes");
    // The eleventh manager merged creator and m0, the twelfth then merged m1 into the
    // bucket; the bucket carries the time of the last entry merged.
    assert_eq!(ancient.time.as_deref(), Some("2024-01-01T00:02:00Z"));
    assert!(fields(ancient).contains("f:l0") && fields(ancient).contains("f:l1"));
    assert!(fields(ancient).contains("f:replicas"));
    assert!(
        entries
            .iter()
            .all(|e| !["creator", "m0", "m1"].contains(&e.manager.as_str()))
    );
}

// ---------------------------------------------------------------------------------------
// Client-side apply upgrade

fn client_side_applied(f: &Fixture) -> (Value, Vec<ManagedFieldsEntry>) {
    let applied = deployment(1, "nginx:1");
    let annotation = build_last_applied(&applied);
    let mut obj = created();
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1");
    obj["metadata"]["annotations"] = json!({ LAST_APPLIED_ANNOTATION: annotation });
    let entries = update(None, &obj, "kubectl-client-side-apply", &[], &f.ctx(T1));
    set_managed_fields(&mut obj, &entries);
    (obj, entries)
}

#[test]
fn server_side_apply_over_client_side_apply() {
    let f = Fixture::new();
    let (live, entries) = client_side_applied(&f);

    // kubectl takes over the fields the annotation recorded, silently.
    let (obj, after) = apply(
        Some(&live),
        &deployment(1, "nginx:2"),
        "kubectl",
        false,
        &entries,
        &f.ctx(T2),
    )
    .unwrap();
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("nginx:2")
    );
    assert!(fields(entry(&after, "kubectl")).contains("f:image"));
    // …and keeps the annotation in step with what it applied.
    assert_eq!(
        obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
        json!(build_last_applied(&deployment(1, "nginx:2")))
    );

    // A field the annotation did not record still conflicts.
    let mut config = deployment(1, "nginx:2");
    config["spec"]["progressDeadlineSeconds"] = json!(300);
    let err = apply(Some(&live), &config, "kubectl", false, &entries, &f.ctx(T2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.progressDeadlineSeconds"#
    );

    // Another manager gets no such upgrade.
    let err = apply(
        Some(&live),
        &deployment(1, "nginx:2"),
        "helm",
        false,
        &entries,
        &f.ctx(T2),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .ends_with(r#"using apps/v1: .spec.template.spec.containers[name="nginx"].image"#)
    );
}

#[test]
fn last_applied_annotation_is_go_json() {
    let config = json!({"kind": "X", "apiVersion": "v1", "metadata": {"name": "<a>",
        "annotations": {LAST_APPLIED_ANNOTATION: "old", "b": "c"}}, "data": {"n": 1.5e-7}});
    assert_eq!(
        build_last_applied(&config),
        "{\"apiVersion\":\"v1\",\"data\":{\"n\":1.5e-7},\"kind\":\"X\",\"metadata\":{\"annotations\":{\"b\":\"c\"},\"name\":\"\\u003ca\\u003e\"}}\n"
    );
}

// ---------------------------------------------------------------------------------------
// managedFields entries

#[test]
fn managed_fields_decode_encode_and_validate() {
    let raw = json!([
        {"manager": "m", "operation": "Update", "apiVersion": "apps/v1",
            "time": "2024-05-01T12:00:00+02:00", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}
    ]);
    let entries = decode_managed_fields(&raw).unwrap();
    assert_eq!(entries[0].time.as_deref(), Some("2024-05-01T10:00:00Z"));
    assert_eq!(
        encode_managed_fields(&entries),
        json!([{"manager": "m", "operation": "Update", "apiVersion": "apps/v1",
            "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}])
    );
    let bad = |e: Value| decode_managed_fields(&json!([e])).unwrap_err().to_string();
    assert_eq!(
        bad(json!({"operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"})),
        "operation must be `Apply` or `Update`"
    );
    assert_eq!(
        bad(json!({"operation": "Apply", "fieldsType": "FieldsV1"})),
        "apiVersion must not be empty"
    );
    assert_eq!(
        bad(json!({"operation": "Apply", "apiVersion": "v1"})),
        "missing fieldsType in managed fields entry 0"
    );
    assert_eq!(
        bad(json!({"operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"})),
        r#"invalid fieldsType "FieldsV2" in managed fields entry 0"#
    );
    assert_eq!(
        bad(
            json!({"manager": "m", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f": {}}})
        ),
        r#"error decoding versioned set from {m Apply v1 <nil> FieldsV1 {"f":{}} }: error decoding set: key must be 2 characters long:"#
    );

    let errs = validate_managed_fields(&json!([
        {"manager": "a\u{7}b", "operation": "Patch", "fieldsType": "FieldsV2"},
        {"manager": "x".repeat(129), "operation": "Apply"}
    ]));
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        [
            "metadata.managedFields[0].operation: Invalid value: \"Patch\": must be `Apply` or `Update`",
            "metadata.managedFields[0].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
            "metadata.managedFields[0].manager: Invalid value: \"a\\ab\": invalid character U+0007 (at position 1)",
            "metadata.managedFields[1].manager: Too long: may not be more than 128 bytes",
        ]
    );
}

#[test]
fn managers_from_user_agents() {
    assert_eq!(
        manager_or_user_agent("", "kubectl-create/v1.35.0 (linux/amd64) kubernetes/abc"),
        "kubectl-create"
    );
    assert_eq!(manager_or_user_agent("mine", "kubectl/v1"), "mine");
    assert_eq!(manager_or_user_agent("", "a\u{1}b/c"), "ab");
}

#[test]
fn reconciles_sets_recorded_inside_now_atomic_fields() {
    // A set recorded when the selector was granular is read as owning the atomic selector.
    let f = Fixture::new();
    let (live, mut entries) =
        apply(None, &deployment(1, "nginx"), "a", false, &[], &f.ctx(T1)).unwrap();
    entries[0].fields_v1 = FieldSet::from_fields_v1(&json!(
        {"f:spec": {"f:selector": {"f:matchLabels": {"f:app": {}}}}}
    ))
    .unwrap();
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(2);
    let after = update(Some(&live), &edited, "b", &entries, &f.ctx(T2));
    assert_eq!(
        fields(entry(&after, "a")),
        r#"{"f:spec":{"f:selector":{}}}"#
    );
}

#[test]
fn custom_resources_merge_deduced_fields() {
    // A CRD-like schema: spec preserves unknown fields, so its maps are granular and its
    // lists atomic; no zero value is given.
    let defs = Definitions::new();
    let schema = object(&[
        ("apiVersion", string()),
        ("kind", string()),
        (
            "metadata",
            object(&[("name", string()), ("labels", map_of(string()))]),
        ),
        (
            "spec",
            Schema {
                preserve_unknown_fields: true,
                ..t(SchemaType::Object)
            },
        ),
    ]);
    let ctx = ApplyContext::new(&schema, &defs, "example.com/v1", T1.into());
    let cr = |spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
    let (live, entries) = apply(
        None,
        &cr(json!({"x": {"y": 1}, "list": [1, 2]})),
        "a",
        false,
        &[],
        &ctx,
    )
    .unwrap();
    assert_eq!(
        fields(&entries[0]),
        r#"{"f:spec":{"f:list":{},"f:x":{".":{},"f:y":{}}}}"#
    );
    let ctx2 = ApplyContext::new(&schema, &defs, "example.com/v1", T2.into());
    let (live, entries) = apply(
        Some(&live),
        &cr(json!({"x": {"z": 2}})),
        "b",
        false,
        &entries,
        &ctx2,
    )
    .unwrap();
    assert_eq!(live["spec"], json!({"x": {"y": 1, "z": 2}, "list": [1, 2]}));
    // Both own spec.x (an undeclared map they set), each its own leaf.
    assert_eq!(
        fields(entry(&entries, "b")),
        r#"{"f:spec":{"f:x":{".":{},"f:z":{}}}}"#
    );
    let err = apply(
        Some(&live),
        &cr(json!({"list": [3]})),
        "b",
        false,
        &entries,
        &ctx2,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "a": .spec.list"#
    );
    // Created by an update, a custom resource's objects are members (no zero value).
    let created = update(None, &live, "kubectl-create", &[], &ctx);
    assert_eq!(
        fields(&created[0]),
        r#"{"f:spec":{".":{},"f:list":{},"f:x":{".":{},"f:y":{},"f:z":{}}}}"#
    );
}

#[test]
fn applying_to_the_status_subresource() {
    let f = Fixture::new();
    let (live, entries) = apply(
        None,
        &deployment(1, "nginx"),
        "kubectl",
        false,
        &[],
        &f.ctx(T1),
    )
    .unwrap();
    let status_ctx = ApplyContext {
        subresource: Some("status"),
        reset_fields: FieldSet::from_paths([
            FieldPath::fields(&["spec"]),
            FieldPath::fields(&["metadata", "labels"]),
        ]),
        ..f.ctx(T2)
    };
    let mut config = deployment(7, "ignored");
    config["status"] = json!({"replicas": 1});
    let (obj, entries) = apply(
        Some(&live),
        &config,
        "controller",
        false,
        &entries,
        &status_ctx,
    )
    .unwrap();
    // The spec of the configuration is ignored, so it neither conflicts nor changes.
    assert_eq!(obj["spec"], live["spec"]);
    assert_eq!(obj["status"], json!({"replicas": 1}));
    let e = entry(&entries, "controller");
    assert_eq!(e.subresource, "status");
    assert_eq!(fields(e), r#"{"f:status":{"f:replicas":{}}}"#);
}

#[test]
fn live_objects_are_read_leniently() {
    // A live field the schema does not know does not block applies (upstream would never
    // have stored it); an applied one is refused.
    let f = Fixture::new();
    let mut live = deployment(1, "nginx");
    live["spec"]["extra"] = json!({"a": 1});
    let (obj, entries) = apply(
        Some(&live),
        &deployment(1, "nginx"),
        "m",
        false,
        &[],
        &f.ctx(T1),
    )
    .unwrap();
    assert_eq!(obj["spec"]["extra"], json!({"a": 1}));
    assert!(
        fields(entry(&entries, BEFORE_FIRST_APPLY_MANAGER))
            .contains(r#""f:extra":{".":{},"f:a":{}}"#)
    );
    assert!(
        validate_object(&live, &f.schema, &f.defs, true).0[0]
            .message
            .contains("not declared")
    );
}
