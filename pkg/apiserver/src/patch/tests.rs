//! Tests of the patch module: table-driven cases of the three patch types, with small
//! hand-built schemas shaped like the built-in kinds kubectl patches most.

use serde_json::{Value, json};

use super::*;
use crate::schema::model::{Definitions, Schema, SchemaType};

// ---------------------------------------------------------------------------------------
// Schema fixtures
// ---------------------------------------------------------------------------------------

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const POD: &str = "io.k8s.api.core.v1.Pod";
const PDB: &str = "io.k8s.api.policy.v1.PodDisruptionBudget";
const CONFIG_MAP: &str = "io.k8s.api.core.v1.ConfigMap";

fn r(name: &str) -> Schema {
    Schema::reference(name)
}

fn t(ty: SchemaType) -> Schema {
    Schema::of_type(ty)
}

fn string() -> Schema {
    t(SchemaType::String)
}

fn obj(props: &[(&str, Schema)]) -> Schema {
    let mut s = t(SchemaType::Object);
    for (name, p) in props {
        s.properties.insert((*name).to_string(), p.clone());
    }
    s
}

fn map_of(values: Schema) -> Schema {
    Schema {
        additional_properties: Some(Box::new(values)),
        ..t(SchemaType::Object)
    }
}

fn list(items: Schema) -> Schema {
    Schema {
        items: Some(Box::new(items)),
        ..t(SchemaType::Array)
    }
}

fn strategic(mut s: Schema, strategy: &str, key: Option<&str>) -> Schema {
    s.patch_strategy = Some(strategy.to_string());
    s.patch_merge_key = key.map(str::to_string);
    s
}

fn merge_list(items: Schema, key: &str) -> Schema {
    strategic(list(items), "merge", Some(key))
}

/// A slice of the built-in definitions, with the patch facts k1s attaches to them.
fn defs() -> Definitions {
    let mut d = Definitions::new();
    let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    let selector = "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector";
    d.insert(
        meta,
        obj(&[
            ("name", string()),
            ("namespace", string()),
            ("labels", map_of(string())),
            ("annotations", map_of(string())),
            ("finalizers", strategic(list(string()), "merge", None)),
            (
                "ownerReferences",
                merge_list(
                    r("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"),
                    "uid",
                ),
            ),
        ]),
    );
    d.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
        obj(&[("uid", string()), ("name", string()), ("kind", string())]),
    );
    d.insert(
        selector,
        obj(&[
            ("matchLabels", map_of(string())),
            ("matchExpressions", list(t(SchemaType::Object))),
        ]),
    );
    d.insert(
        DEPLOYMENT,
        obj(&[
            ("apiVersion", string()),
            ("kind", string()),
            ("metadata", r(meta)),
            ("spec", r("io.k8s.api.apps.v1.DeploymentSpec")),
        ]),
    );
    d.insert(
        "io.k8s.api.apps.v1.DeploymentSpec",
        obj(&[
            ("replicas", t(SchemaType::Integer)),
            ("selector", r(selector)),
            // The fact sits on the property, which only refers to the definition.
            (
                "strategy",
                strategic(
                    r("io.k8s.api.apps.v1.DeploymentStrategy"),
                    "retainKeys",
                    None,
                ),
            ),
            ("template", r("io.k8s.api.core.v1.PodTemplateSpec")),
        ]),
    );
    d.insert(
        "io.k8s.api.apps.v1.DeploymentStrategy",
        obj(&[
            ("type", string()),
            (
                "rollingUpdate",
                r("io.k8s.api.apps.v1.RollingUpdateDeployment"),
            ),
        ]),
    );
    d.insert(
        "io.k8s.api.apps.v1.RollingUpdateDeployment",
        obj(&[("maxSurge", string()), ("maxUnavailable", string())]),
    );
    d.insert(
        "io.k8s.api.core.v1.PodTemplateSpec",
        obj(&[
            ("metadata", r(meta)),
            ("spec", r("io.k8s.api.core.v1.PodSpec")),
        ]),
    );
    d.insert(
        POD,
        obj(&[
            ("metadata", r(meta)),
            ("spec", r("io.k8s.api.core.v1.PodSpec")),
        ]),
    );
    d.insert(
        "io.k8s.api.core.v1.PodSpec",
        obj(&[
            (
                "containers",
                merge_list(r("io.k8s.api.core.v1.Container"), "name"),
            ),
            (
                "initContainers",
                merge_list(r("io.k8s.api.core.v1.Container"), "name"),
            ),
            (
                "volumes",
                strategic(
                    list(r("io.k8s.api.core.v1.Volume")),
                    "merge,retainKeys",
                    Some("name"),
                ),
            ),
            ("tolerations", list(r("io.k8s.api.core.v1.Toleration"))),
            ("nodeSelector", map_of(string())),
            ("restartPolicy", string()),
        ]),
    );
    d.insert(
        "io.k8s.api.core.v1.Container",
        obj(&[
            ("name", string()),
            ("image", string()),
            ("args", list(string())),
            ("env", merge_list(r("io.k8s.api.core.v1.EnvVar"), "name")),
            (
                "ports",
                merge_list(r("io.k8s.api.core.v1.ContainerPort"), "containerPort"),
            ),
            ("resources", t(SchemaType::Object)),
        ]),
    );
    d.insert(
        "io.k8s.api.core.v1.EnvVar",
        obj(&[
            ("name", string()),
            ("value", string()),
            ("valueFrom", t(SchemaType::Object)),
        ]),
    );
    d.insert(
        "io.k8s.api.core.v1.ContainerPort",
        obj(&[
            ("containerPort", t(SchemaType::Integer)),
            ("protocol", string()),
            ("name", string()),
        ]),
    );
    d.insert(
        "io.k8s.api.core.v1.Volume",
        obj(&[
            ("name", string()),
            ("emptyDir", t(SchemaType::Object)),
            ("configMap", t(SchemaType::Object)),
        ]),
    );
    d.insert(
        "io.k8s.api.core.v1.Toleration",
        obj(&[
            ("key", string()),
            ("operator", string()),
            ("effect", string()),
        ]),
    );
    d.insert(
        PDB,
        obj(&[
            ("metadata", r(meta)),
            ("spec", r("io.k8s.api.policy.v1.PodDisruptionBudgetSpec")),
        ]),
    );
    d.insert(
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        obj(&[
            ("minAvailable", string()),
            ("selector", strategic(r(selector), "replace", None)),
        ]),
    );
    d.insert(
        CONFIG_MAP,
        obj(&[("metadata", r(meta)), ("data", map_of(string()))]),
    );
    d
}

fn smp(kind: &str, doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    apply_strategic_merge_patch(doc, patch, &Schema::reference(kind), &defs())
}

// ---------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": spec})
}

struct Case {
    name: &'static str,
    kind: &'static str,
    original: Value,
    patch: Value,
    expected: Value,
}

fn strategic_cases() -> Vec<Case> {
    vec![
        Case {
            name: "containers merge by name: image changes, the rest stays",
            kind: POD,
            original: pod(json!({"containers": [
                {"name": "app", "image": "nginx:1", "args": ["-v"]},
                {"name": "sidecar", "image": "envoy:1"}
            ]})),
            patch: json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}),
            expected: pod(json!({"containers": [
                {"name": "app", "image": "nginx:2", "args": ["-v"]},
                {"name": "sidecar", "image": "envoy:1"}
            ]})),
        },
        Case {
            // Upstream places an element the server does not know ahead of the server-only
            // ones (kubectl apply sends $setElementOrder to say otherwise).
            name: "a container the original lacks goes first",
            kind: POD,
            original: pod(json!({"containers": [{"name": "app", "image": "a"}]})),
            patch: json!({"spec": {"containers": [{"name": "log", "image": "b"}]}}),
            expected: pod(json!({"containers": [
                {"name": "log", "image": "b"}, {"name": "app", "image": "a"}
            ]})),
        },
        Case {
            name: "env merges by name inside a merged container",
            kind: POD,
            original: pod(json!({"containers": [{"name": "app", "env": [
                {"name": "A", "value": "1"}, {"name": "B", "value": "2"}
            ]}]})),
            patch: json!({"spec": {"containers": [{"name": "app", "env": [
                {"name": "B", "value": "20"}, {"name": "C", "value": "3"}
            ]}]}}),
            expected: pod(json!({"containers": [{"name": "app", "env": [
                {"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}
            ]}]})),
        },
        Case {
            name: "env entry deleted with $patch: delete, a field removed with null",
            kind: POD,
            original: pod(json!({"containers": [{"name": "app", "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}
            ]}]})),
            patch: json!({"spec": {"containers": [{"name": "app", "env": [
                {"name": "A", "$patch": "delete"},
                {"name": "B", "valueFrom": null, "value": "b"}
            ]}]}}),
            expected: pod(json!({"containers": [{"name": "app", "env": [
                {"name": "B", "value": "b"}
            ]}]})),
        },
        Case {
            name: "ports merge by the integer containerPort",
            kind: POD,
            original: pod(json!({"containers": [{"name": "app", "ports": [
                {"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}
            ]}]})),
            patch: json!({"spec": {"containers": [{"name": "app", "ports": [
                {"containerPort": 443, "name": "https"}, {"containerPort": 8080}
            ]}]}}),
            expected: pod(json!({"containers": [{"name": "app", "ports": [
                {"containerPort": 80, "protocol": "TCP"},
                {"containerPort": 443, "protocol": "TCP", "name": "https"},
                {"containerPort": 8080}
            ]}]})),
        },
        Case {
            name: "a merge key of another JSON number type does not match",
            kind: POD,
            original: pod(
                json!({"containers": [{"name": "app", "ports": [{"containerPort": 80}]}]}),
            ),
            patch: json!({"spec": {"containers": [{"name": "app", "ports": [
                {"containerPort": 80.5}
            ]}]}}),
            expected: pod(json!({"containers": [{"name": "app", "ports": [
                {"containerPort": 80.5}, {"containerPort": 80}
            ]}]})),
        },
        Case {
            name: "$patch: delete removes a container; deleting an absent one is a no-op",
            kind: POD,
            original: pod(json!({"containers": [
                {"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}
            ]})),
            patch: json!({"spec": {"containers": [
                {"name": "b", "$patch": "delete"}, {"name": "zzz", "$patch": "delete"}
            ]}}),
            expected: pod(json!({"containers": [
                {"name": "a", "image": "1"}, {"name": "c", "image": "3"}
            ]})),
        },
        Case {
            name: "$patch: delete removes every element with the key",
            kind: POD,
            original: pod(json!({"containers": [
                {"name": "a", "image": "1"}, {"name": "a", "image": "2"}, {"name": "b"}
            ]})),
            patch: json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
            expected: pod(json!({"containers": [{"name": "b"}]})),
        },
        Case {
            name: "the patch's order wins for the elements it names",
            kind: POD,
            original: pod(json!({"containers": [
                {"name": "a"}, {"name": "b", "image": "x"}, {"name": "c"}
            ]})),
            patch: json!({"spec": {"containers": [{"name": "c", "image": "z"}, {"name": "a"}]}}),
            expected: pod(json!({"containers": [
                {"name": "b", "image": "x"}, {"name": "c", "image": "z"}, {"name": "a"}
            ]})),
        },
        Case {
            name: "$setElementOrder reorders a list the patch does not otherwise touch",
            kind: POD,
            original: pod(json!({"containers": [
                {"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}
            ]})),
            patch: json!({"spec": {"$setElementOrder/containers": [
                {"name": "c"}, {"name": "a"}, {"name": "b"}
            ]}}),
            expected: pod(json!({"containers": [
                {"name": "c", "image": "3"}, {"name": "a", "image": "1"}, {"name": "b", "image": "2"}
            ]})),
        },
        Case {
            name: "$setElementOrder with a change; a server-only container keeps its neighbour",
            kind: POD,
            original: pod(json!({"containers": [
                {"name": "a", "image": "1"}, {"name": "injected"}, {"name": "b", "image": "2"}
            ]})),
            patch: json!({"spec": {
                "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                "containers": [{"name": "a", "image": "11"}]
            }}),
            // "injected" stood before "b" on the server, so it stays before it.
            expected: pod(json!({"containers": [
                {"name": "injected"}, {"name": "b", "image": "2"}, {"name": "a", "image": "11"}
            ]})),
        },
        Case {
            name: "$setElementOrder with an addition and a deletion (kubectl apply)",
            kind: POD,
            original: pod(json!({"containers": [
                {"name": "1"}, {"name": "2", "image": "b"}, {"name": "4", "image": "c"}
            ]})),
            patch: json!({"spec": {
                "$setElementOrder/containers": [{"name": "2"}, {"name": "3"}],
                "containers": [{"name": "3"}, {"name": "1", "$patch": "delete"}]
            }}),
            // Upstream orders server-only items by the original slice as Go's in-place
            // delete and append leave it, which puts the server-only "4" before "3".
            expected: pod(json!({"containers": [
                {"name": "2", "image": "b"}, {"name": "4", "image": "c"}, {"name": "3"}
            ]})),
        },
        Case {
            name: "$setElementOrder for a list the original lacks drops directive elements",
            kind: POD,
            original: pod(json!({"containers": [{"name": "app"}]})),
            patch: json!({"spec": {
                "$setElementOrder/initContainers": [{"name": "y"}, {"name": "x"}],
                "initContainers": [{"name": "y"}, {"name": "z", "$patch": "delete"}, {"name": "x"}]
            }}),
            expected: pod(json!({
                "containers": [{"name": "app"}],
                "initContainers": [{"name": "y"}, {"name": "x"}]
            })),
        },
        Case {
            name: "$retainKeys switches a Deployment from RollingUpdate to Recreate",
            kind: DEPLOYMENT,
            original: json!({"spec": {"replicas": 2, "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
            }}}),
            patch: json!({"spec": {"strategy": {
                "$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null
            }}}),
            expected: json!({"spec": {"replicas": 2, "strategy": {"type": "Recreate"}}}),
        },
        Case {
            name: "$retainKeys alone clears the members it does not list",
            kind: DEPLOYMENT,
            original: json!({"spec": {"strategy": {
                "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "1"}
            }}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"]}}}),
            expected: json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
        },
        Case {
            name: "without $retainKeys a retainKeys field merges like any object",
            kind: DEPLOYMENT,
            original: json!({"spec": {"strategy": {
                "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "1"}
            }}}),
            patch: json!({"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": "0"}}}}),
            expected: json!({"spec": {"strategy": {
                "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "1", "maxUnavailable": "0"}
            }}}),
        },
        Case {
            name: "volumes (merge,retainKeys): an element switches its source",
            kind: POD,
            original: pod(json!({"volumes": [
                {"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c1"}}
            ]})),
            patch: json!({"spec": {"volumes": [
                {"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "c2"}}
            ]}}),
            expected: pod(json!({"volumes": [
                {"name": "data", "configMap": {"name": "c2"}},
                {"name": "cfg", "configMap": {"name": "c1"}}
            ]})),
        },
        Case {
            name: "finalizers: primitive merge list keeps a union in order",
            kind: POD,
            original: json!({"metadata": {"finalizers": ["a", "b"]}}),
            patch: json!({"metadata": {"finalizers": ["c", "a"]}}),
            expected: json!({"metadata": {"finalizers": ["c", "a", "b"]}}),
        },
        Case {
            name: "finalizers: duplicates collapse",
            kind: POD,
            original: json!({"metadata": {"finalizers": ["a", "b"]}}),
            patch: json!({"metadata": {"finalizers": ["b", "b", "d"]}}),
            expected: json!({"metadata": {"finalizers": ["a", "b", "d"]}}),
        },
        Case {
            name: "finalizers: $deleteFromPrimitiveList removes entries",
            kind: POD,
            original: json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}}),
            expected: json!({"metadata": {"finalizers": ["a", "c"]}}),
        },
        Case {
            name: "finalizers: $deleteFromPrimitiveList on a missing list adds nothing",
            kind: POD,
            original: json!({"metadata": {"name": "x"}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            expected: json!({"metadata": {"name": "x"}}),
        },
        Case {
            name: "finalizers: kubectl apply's delete-and-reorder",
            kind: POD,
            original: json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            patch: json!({"metadata": {
                "$setElementOrder/finalizers": ["c", "a"],
                "$deleteFromPrimitiveList/finalizers": ["b"]
            }}),
            expected: json!({"metadata": {"finalizers": ["c", "a"]}}),
        },
        Case {
            name: "finalizers: $setElementOrder with an addition keeps server-only entries near",
            kind: POD,
            original: json!({"metadata": {"finalizers": ["a", "d", "b"]}}),
            patch: json!({"metadata": {
                "$setElementOrder/finalizers": ["c", "a", "b"],
                "finalizers": ["c"]
            }}),
            expected: json!({"metadata": {"finalizers": ["c", "a", "d", "b"]}}),
        },
        Case {
            name: "$deleteFromPrimitiveList works on a list without the merge strategy",
            kind: POD,
            original: json!({"spec": {"containers": [{"name": "a", "args": ["x", "y", "z"]}]}}),
            patch: json!({"spec": {"containers": [
                {"name": "a", "$deleteFromPrimitiveList/args": ["y"]}
            ]}}),
            expected: json!({"spec": {"containers": [{"name": "a", "args": ["x", "z"]}]}}),
        },
        Case {
            name: "labels: set one, delete one with null, deleting an absent one is a no-op",
            kind: POD,
            original: json!({"metadata": {"labels": {"app": "web", "tier": "fe"}, "annotations": {"k": "v"}}}),
            patch: json!({"metadata": {"labels": {"tier": null, "env": "prod", "nope": null}}}),
            expected: json!({"metadata": {"labels": {"app": "web", "env": "prod"}, "annotations": {"k": "v"}}}),
        },
        Case {
            name: "$patch: replace on a map",
            kind: POD,
            original: json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}}),
            patch: json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}),
            expected: json!({"metadata": {"labels": {"only": "this"}}}),
        },
        Case {
            name: "$patch: delete on a map leaves it empty",
            kind: POD,
            original: json!({"metadata": {"labels": {"app": "web"}, "name": "p"}}),
            patch: json!({"metadata": {"labels": {"$patch": "delete"}}}),
            expected: json!({"metadata": {"labels": {}, "name": "p"}}),
        },
        Case {
            name: "$patch: replace at the top level",
            kind: CONFIG_MAP,
            original: json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
            patch: json!({"$patch": "replace", "data": {"b": "2"}}),
            expected: json!({"data": {"b": "2"}}),
        },
        Case {
            name: "$patch: replace in a list replaces the list",
            kind: POD,
            original: pod(json!({"containers": [{"name": "a"}, {"name": "b"}]})),
            patch: json!({"spec": {"containers": [{"name": "z", "image": "i"}, {"$patch": "replace"}]}}),
            expected: pod(json!({"containers": [{"name": "z", "image": "i"}]})),
        },
        Case {
            name: "$patch: replace alone empties the list",
            kind: POD,
            original: pod(json!({"containers": [{"name": "a"}, {"name": "b"}]})),
            patch: json!({"spec": {"containers": [{"$patch": "replace"}]}}),
            expected: pod(json!({"containers": []})),
        },
        Case {
            name: "a list without the merge strategy is replaced",
            kind: POD,
            original: pod(json!({"tolerations": [{"key": "a"}, {"key": "b"}],
                                 "containers": [{"name": "c", "args": ["1", "2"]}]})),
            patch: json!({"spec": {"tolerations": [{"key": "c", "effect": null}],
                                   "containers": [{"name": "c", "args": ["3"]}]}}),
            // A replacing list is taken as sent, nulls included.
            expected: pod(json!({"tolerations": [{"key": "c", "effect": null}],
                                 "containers": [{"name": "c", "args": ["3"]}]})),
        },
        Case {
            name: "a replace-strategy map is replaced (PodDisruptionBudget selector)",
            kind: PDB,
            original: json!({"spec": {"minAvailable": "1", "selector": {
                "matchLabels": {"app": "a", "tier": "t"}
            }}}),
            patch: json!({"spec": {"selector": {"matchLabels": {"app": "b"}}}}),
            expected: json!({"spec": {"minAvailable": "1", "selector": {"matchLabels": {"app": "b"}}}}),
        },
        Case {
            name: "ownerReferences merge by uid",
            kind: POD,
            original: json!({"metadata": {"ownerReferences": [
                {"uid": "1", "name": "rs-1", "kind": "ReplicaSet"}
            ]}}),
            patch: json!({"metadata": {"ownerReferences": [
                {"uid": "1", "name": "rs-one"}, {"uid": "2", "name": "rs-2", "kind": "ReplicaSet"}
            ]}}),
            expected: json!({"metadata": {"ownerReferences": [
                {"uid": "1", "name": "rs-one", "kind": "ReplicaSet"},
                {"uid": "2", "name": "rs-2", "kind": "ReplicaSet"}
            ]}}),
        },
        Case {
            name: "fields unknown to the schema merge like a merge patch",
            kind: POD,
            original: json!({"spec": {"x-extra": {"keep": 1, "drop": 2, "list": [1, 2]}}}),
            patch: json!({"spec": {"x-extra": {"drop": null, "add": {"n": null, "v": 3}, "list": [3]}}}),
            expected: json!({"spec": {"x-extra": {"keep": 1, "list": [3], "add": {"v": 3}}}}),
        },
        Case {
            name: "a value added where there was none loses nulls and $patch objects",
            kind: POD,
            original: json!({"metadata": {"name": "p"}}),
            patch: json!({"spec": {
                "nodeSelector": {"a": "1", "b": null},
                "containers": [{"name": "c", "resources": null}, {"name": "gone", "$patch": "delete"}],
                "tolerations": [null, {"key": "k", "effect": null}]
            }}),
            expected: json!({"metadata": {"name": "p"}, "spec": {
                "nodeSelector": {"a": "1"},
                "containers": [{"name": "c"}],
                "tolerations": [null, {"key": "k"}]
            }}),
        },
        Case {
            name: "an object added under $patch: replace is dropped entirely",
            kind: POD,
            original: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"labels": {"$patch": "replace", "a": "b"}}}),
            expected: json!({"metadata": {"name": "p"}}),
        },
        Case {
            name: "a member of another JSON type is replaced",
            kind: POD,
            original: json!({"spec": {"x": [1], "y": {"a": 1}, "z": "s"}}),
            patch: json!({"spec": {"x": {"k": null, "v": 1}, "y": "str", "z": 5}}),
            expected: json!({"spec": {"x": {"v": 1}, "y": "str", "z": 5}}),
        },
        Case {
            name: "a null merge list element key is deleted from elements, not the list",
            kind: POD,
            original: pod(json!({"containers": [{"name": "a", "image": "i", "args": ["x"]}]})),
            patch: json!({"spec": {"containers": [{"name": "a", "args": null}]}}),
            expected: pod(json!({"containers": [{"name": "a", "image": "i"}]})),
        },
        Case {
            name: "kubectl apply's patch for a Deployment",
            kind: DEPLOYMENT,
            original: json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web", "old": "x"},
                             "annotations": {"deployment.kubernetes.io/revision": "1"}},
                "spec": {"replicas": 1, "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"restartPolicy": "Always", "containers": [
                        {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                        {"name": "sidecar", "image": "busybox"}
                    ]}
                }}
            }),
            patch: json!({
                "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                             "labels": {"old": null}},
                "spec": {"replicas": 3, "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [
                        {"$setElementOrder/env": [{"name": "B"}, {"name": "C"}],
                         "env": [{"name": "C", "value": "3"}, {"name": "A", "$patch": "delete"}],
                         "image": "nginx:1.27", "name": "web"},
                        {"$patch": "delete", "name": "sidecar"}
                    ]
                }}}
            }),
            expected: json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"},
                             "annotations": {"deployment.kubernetes.io/revision": "1",
                                             "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
                "spec": {"replicas": 3, "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"restartPolicy": "Always", "containers": [
                        {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                         "env": [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}
                    ]}
                }}
            }),
        },
        Case {
            name: "an empty or null patch changes nothing",
            kind: POD,
            original: pod(json!({"containers": [{"name": "a"}]})),
            patch: json!({}),
            expected: pod(json!({"containers": [{"name": "a"}]})),
        },
    ]
}

#[test]
fn strategic_merge_patch_cases() {
    for c in strategic_cases() {
        match smp(c.kind, &c.original, &c.patch) {
            Ok(got) => assert_eq!(got, c.expected, "{}", c.name),
            Err(e) => panic!("{}: {e}", c.name),
        }
    }
}

#[test]
fn strategic_merge_patch_keeps_member_order() {
    // Existing members keep their place, new ones come after, deleted ones leave no gap.
    let doc = json!({"metadata": {"name": "n", "labels": {"a": "1", "b": "2", "c": "3"}}});
    let patch = json!({"metadata": {"labels": {"b": null, "a": "10", "d": "4"}}});
    let got = smp(POD, &doc, &patch).unwrap();
    assert_eq!(
        got.to_string(),
        r#"{"metadata":{"name":"n","labels":{"a":"10","c":"3","d":"4"}}}"#
    );
}

struct ErrCase {
    name: &'static str,
    original: Value,
    patch: Value,
    error: PatchError,
}

fn strategic_error_cases() -> Vec<ErrCase> {
    let containers = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
    vec![
        ErrCase {
            name: "a merge list element without the merge key",
            original: containers.clone(),
            patch: json!({"spec": {"containers": [{"image": "nginx"}]}}),
            error: PatchError::MergeFailed(
                "map: map[image:nginx] does not contain declared merge key: name".into(),
            ),
        },
        ErrCase {
            name: "$patch: delete without the merge key",
            original: containers.clone(),
            patch: json!({"spec": {"containers": [{"$patch": "delete", "image": "x"}]}}),
            error: PatchError::MergeFailed(
                "map: map[$patch:delete image:x] does not contain declared merge key: name".into(),
            ),
        },
        ErrCase {
            name: "an unknown $patch value in a list",
            original: containers.clone(),
            patch: json!({"spec": {"containers": [{"name": "a", "$patch": "frob"}]}}),
            error: PatchError::MergeFailed(
                "unknown patch type: frob in map: map[$patch:frob name:a]".into(),
            ),
        },
        ErrCase {
            name: "an unknown $patch value in a map",
            original: containers.clone(),
            patch: json!({"metadata": {"labels": {"$patch": "frob"}}}),
            error: PatchError::MergeFailed(
                "unknown patch type: frob in map: map[$patch:frob]".into(),
            ),
        },
        ErrCase {
            name: "$patch: merge on a map is not a directive upstream accepts",
            original: containers.clone(),
            patch: json!({"metadata": {"labels": {"$patch": "merge", "a": "b"}}}),
            error: PatchError::MergeFailed(
                "unknown patch type: merge in map: map[$patch:merge a:b]".into(),
            ),
        },
        ErrCase {
            name: "$patch: merge in a list",
            original: containers.clone(),
            patch: json!({"spec": {"containers": [{"$patch": "merge"}]}}),
            error: PatchError::MergeFailed(
                "merging lists cannot yet be specified in the patch".into(),
            ),
        },
        ErrCase {
            name: "a non-string $patch value",
            original: containers.clone(),
            patch: json!({"spec": {"$patch": 1}}),
            error: PatchError::MergeFailed(
                "unknown patch type: %!s(int64=1) in map: map[$patch:1]".into(),
            ),
        },
        ErrCase {
            name: "$retainKeys that omits a member the patch sets",
            original: json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": "1"}}}}),
            error: PatchError::BadDirective("invalid patch format of retainKeys".into()),
        },
        ErrCase {
            name: "$retainKeys that is not a list",
            original: json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            error: PatchError::BadDirective("invalid patch format of retainKeys".into()),
        },
        ErrCase {
            name: "a $deleteFromPrimitiveList key without a field",
            original: json!({"metadata": {"finalizers": ["a"]}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
            error: PatchError::BadDirective("invalid patch format of primitive list".into()),
        },
        ErrCase {
            name: "a $setElementOrder key without a field",
            original: containers.clone(),
            patch: json!({"spec": {"$setElementOrder": [{"name": "a"}]}}),
            error: PatchError::BadDirective("invalid patch format of setElementOrder list".into()),
        },
        ErrCase {
            name: "a $setElementOrder that is not a list",
            original: containers.clone(),
            patch: json!({"spec": {"$setElementOrder/containers": "a"}}),
            error: PatchError::MergeFailed(
                "expected a []interface {}, but received a string".into(),
            ),
        },
        ErrCase {
            name: "a $setElementOrder that contradicts the patch list",
            original: pod(json!({"containers": [{"name": "a"}, {"name": "b"}]})),
            patch: json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b"}, {"name": "a"}]
            }}),
            error: PatchError::MergeFailed(
                "The order in patch list:\n[map[name:b] map[name:a]]\n doesn't match \
                 $setElementOrder list:\n[map[name:a] map[name:b]]\n"
                    .into(),
            ),
        },
        ErrCase {
            name: "lists of lists",
            original: json!({"metadata": {"finalizers": [["a"]]}}),
            patch: json!({"metadata": {"finalizers": [["b"]]}}),
            error: PatchError::Unprocessable("lists of lists are not supported".into()),
        },
        ErrCase {
            name: "list elements of different types",
            original: json!({"metadata": {"finalizers": ["a"]}}),
            patch: json!({"metadata": {"finalizers": [1]}}),
            error: PatchError::MergeFailed(
                "list element types are not identical: [[a] [1]]".into(),
            ),
        },
        ErrCase {
            // Upstream's struct-tag lookup has no field metadata below a Go map.
            name: "objects merged under a key of a map",
            original: json!({"spec": {"nodeSelector": {"a": {"x": 1}}}}),
            patch: json!({"spec": {"nodeSelector": {"a": {"y": 2}, "b": "scalar"}}}),
            error: PatchError::MergeFailed(
                "merging an object in json but data type is not struct, instead is: map".into(),
            ),
        },
        ErrCase {
            name: "a patch that is not an object",
            original: containers.clone(),
            patch: json!(["x"]),
            error: PatchError::Malformed(
                "json: cannot unmarshal array into Go value of type map[string]interface {}".into(),
            ),
        },
        ErrCase {
            name: "a document that is not an object",
            original: json!("doc"),
            patch: json!({}),
            error: PatchError::BadDirective("invalid JSON document".into()),
        },
    ]
}

#[test]
fn strategic_merge_patch_errors() {
    for c in strategic_error_cases() {
        let got = smp(POD, &c.original, &c.patch);
        let got = if c.name.contains("$retainKeys") {
            smp(DEPLOYMENT, &c.original, &c.patch)
        } else {
            got
        };
        assert_eq!(got, Err(c.error), "{}", c.name);
    }
}

#[test]
fn strategic_merge_patch_error_statuses() {
    let e = smp(
        POD,
        &pod(json!({"containers": [{"name": "a"}]})),
        &json!({"spec": {"containers": [{"image": "x"}]}}),
    )
    .unwrap_err();
    assert_eq!(e.http_status(), 500);
    assert_eq!(e.reason(), "");
    assert_eq!(
        e.message(),
        "map: map[image:x] does not contain declared merge key: name"
    );
    let e = smp(
        POD,
        &json!({"metadata": {}}),
        &json!({"metadata": {"$deleteFromPrimitiveListx": []}}),
    )
    .unwrap_err();
    assert_eq!((e.http_status(), e.reason()), (400, "BadRequest"));
    assert_eq!(e.message(), "invalid patch format of primitive list");
    let e = smp(
        POD,
        &json!({"metadata": {"finalizers": [[1]]}}),
        &json!({"metadata": {"finalizers": [[2]]}}),
    )
    .unwrap_err();
    assert_eq!((e.http_status(), e.reason()), (422, "Invalid"));
    assert_eq!(
        e.message(),
        "the server rejected our request due to an error in our request"
    );
}

#[test]
fn strategic_merge_patch_body_parsing() {
    assert_eq!(parse_strategic_merge_patch(b"null"), Ok(json!({})));
    assert_eq!(
        parse_strategic_merge_patch(b" {\"a\": 1} "),
        Ok(json!({"a": 1}))
    );
    assert_eq!(
        parse_strategic_merge_patch(b"{\"a\": }"),
        Err(PatchError::Malformed(
            "invalid character '}' looking for beginning of value".into()
        ))
    );
    assert_eq!(
        parse_strategic_merge_patch(b"[1]"),
        Err(PatchError::Malformed(
            "json: cannot unmarshal array into Go value of type map[string]interface {}".into()
        ))
    );
    assert_eq!(
        parse_strategic_merge_patch(b"[1]").map_err(|e| e.http_status()),
        Err(400)
    );
}

#[test]
fn strategic_merge_patch_without_schema_information() {
    // A kind the definitions do not know still merges, with no list strategy.
    let doc = json!({"a": {"b": 1, "l": [1, 2]}, "keep": true});
    let patch = json!({"a": {"c": 2, "l": [3], "b": null}});
    let got =
        apply_strategic_merge_patch(&doc, &patch, &Schema::reference("nope"), &defs()).unwrap();
    assert_eq!(got, json!({"a": {"l": [3], "c": 2}, "keep": true}));
}

// ---------------------------------------------------------------------------------------
// JSON patch
// ---------------------------------------------------------------------------------------

fn jp(doc: &Value, patch: Value) -> Result<Value, PatchError> {
    apply_json_patch(doc, patch.to_string().as_bytes())
}

#[test]
fn json_patch_cases() {
    let doc = json!({
        "labels": {"app": "web", "a/b": "slash", "t~x": "tilde"},
        "list": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]
    });
    let list = json!([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]);
    let labels = json!({"app": "web", "a/b": "slash", "t~x": "tilde"});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "add a member",
            json!([{"op": "add", "path": "/labels/tier", "value": "fe"}]),
            json!({"labels": {"app": "web", "a/b": "slash", "t~x": "tilde", "tier": "fe"}, "list": list}),
        ),
        (
            "add replaces an existing member",
            json!([{"op": "add", "path": "/labels/app", "value": "api"}]),
            json!({"labels": {"app": "api", "a/b": "slash", "t~x": "tilde"}, "list": list}),
        ),
        (
            "~1 and ~0 in tokens",
            json!([
                {"op": "remove", "path": "/labels/a~1b"},
                {"op": "replace", "path": "/labels/t~0x", "value": "T"}
            ]),
            json!({"labels": {"app": "web", "t~x": "T"}, "list": list}),
        ),
        (
            "append with -, insert by index",
            json!([
                {"op": "add", "path": "/list/-", "value": {"name": "c"}},
                {"op": "add", "path": "/list/0", "value": {"name": "z"}}
            ]),
            json!({"labels": labels, "list": [
                {"name": "z"}, {"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c"}
            ]}),
        ),
        (
            "negative indices count from the end",
            json!([
                {"op": "replace", "path": "/list/-1/image", "value": "22"},
                {"op": "add", "path": "/list/-1", "value": {"name": "end"}}
            ]),
            json!({"labels": labels, "list": [
                {"name": "a", "image": "1"}, {"name": "b", "image": "22"}, {"name": "end"}
            ]}),
        ),
        (
            "remove an element",
            json!([{"op": "remove", "path": "/list/0"}]),
            json!({"labels": labels, "list": [{"name": "b", "image": "2"}]}),
        ),
        (
            "replace of a missing member adds it (upstream's library does not check)",
            json!([{"op": "replace", "path": "/namespace", "value": "ns"}]),
            json!({"labels": labels, "list": list, "namespace": "ns"}),
        ),
        (
            "move and copy",
            json!([
                {"op": "copy", "from": "/list/0", "path": "/list/-"},
                {"op": "move", "from": "/labels/app", "path": "/app"}
            ]),
            json!({
                "labels": {"a/b": "slash", "t~x": "tilde"},
                "list": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "a", "image": "1"}],
                "app": "web"
            }),
        ),
        (
            "copy of a missing member copies null",
            json!([{"op": "copy", "from": "/nope", "path": "/copied"}]),
            json!({"labels": labels, "list": list, "copied": null}),
        ),
        (
            "test passes, including null against a missing member",
            json!([
                {"op": "test", "path": "/list/1/image", "value": "2"},
                {"op": "test", "path": "/missing", "value": null},
                {"op": "test", "path": "/labels", "value": {"t~x": "tilde", "app": "web", "a/b": "slash"}}
            ]),
            doc.clone(),
        ),
        (
            "a path without a leading slash loses its first token",
            json!([{"op": "add", "path": "ignored/top", "value": 1}]),
            json!({"labels": labels, "list": list, "top": 1}),
        ),
        (
            "add with no value adds null",
            json!([{"op": "add", "path": "/x"}]),
            json!({"labels": labels, "list": list, "x": null}),
        ),
        ("an empty patch", json!([]), doc.clone()),
    ];
    for (name, patch, expected) in cases {
        assert_eq!(jp(&doc, patch), Ok(expected), "{name}");
    }
}

#[test]
fn json_patch_replaces_and_tests_the_whole_document() {
    let doc = json!({"a": 1});
    assert_eq!(
        jp(
            &doc,
            json!([{"op": "replace", "path": "", "value": {"b": 2}}])
        ),
        Ok(json!({"b": 2}))
    );
    // A scalar cannot replace the document; the library silently keeps it.
    assert_eq!(
        jp(&doc, json!([{"op": "replace", "path": "", "value": 3}])),
        Ok(json!({"a": 1}))
    );
    assert_eq!(
        jp(&doc, json!([{"op": "test", "path": "", "value": {"a": 1}}])),
        Ok(json!({"a": 1}))
    );
}

#[test]
fn json_patch_errors() {
    let doc = json!({"metadata": {"name": "p"}, "spec": {"list": [1, 2], "s": "x"}});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([{"op": "test", "path": "/metadata/name", "value": "q"}]),
            "testing value /metadata/name failed: test failed",
        ),
        (
            json!([{"op": "test", "path": "/metadata/nope", "value": "q"}]),
            "testing value /metadata/nope failed: test failed",
        ),
        (
            json!([{"op": "test", "path": "/a/b", "value": 1}]),
            "test operation does not apply: is missing path: /a/b: missing value",
        ),
        (
            json!([{"op": "remove", "path": "/metadata/nope"}]),
            "error in remove for path: '/metadata/nope': Unable to remove nonexistent key: nope: missing value",
        ),
        (
            json!([{"op": "remove", "path": "/spec/list/5"}]),
            "error in remove for path: '/spec/list/5': Unable to access invalid index: 5: invalid index referenced",
        ),
        (
            json!([{"op": "remove", "path": "/spec/list/x"}]),
            "error in remove for path: '/spec/list/x': strconv.Atoi: parsing \"x\": invalid syntax",
        ),
        (
            json!([{"op": "add", "path": "/missing/parent/x", "value": 1}]),
            "add operation does not apply: doc is missing path: \"/missing/parent/x\": missing value",
        ),
        (
            json!([{"op": "add", "path": "/spec/s/x", "value": 1}]),
            "add operation does not apply: doc is missing path: \"/spec/s/x\": missing value",
        ),
        (
            json!([{"op": "add", "path": "/spec/list/3", "value": 1}]),
            "error in add for path: '/spec/list/3': Unable to access invalid index: 3: invalid index referenced",
        ),
        (
            json!([{"op": "add", "path": "/spec/list/a", "value": 1}]),
            "error in add for path: '/spec/list/a': value was not a proper array index: 'a': strconv.Atoi: parsing \"a\": invalid syntax",
        ),
        (
            json!([{"op": "add", "path": "", "value": {}}]),
            "add operation does not apply: doc is missing path: \"\": missing value",
        ),
        (
            json!([{"op": "replace", "path": "/spec/list/9", "value": 1}]),
            "replace operation does not apply: doc is missing key: /spec/list/9: missing value",
        ),
        (
            json!([{"op": "replace", "path": "/nope/x", "value": 1}]),
            "replace operation does not apply: doc is missing path: /nope/x: missing value",
        ),
        (
            json!([{"op": "move", "from": "/metadata/nope", "path": "/x"}]),
            "error in move for path: 'nope': Unable to remove nonexistent key: nope: missing value",
        ),
        (
            json!([{"op": "move", "path": "/x"}]),
            "move operation failed to decode from: operation, missing from field: missing value",
        ),
        (
            json!([{"op": "copy", "from": "/metadata/name", "path": "/a/b"}]),
            "copy operation does not apply: doc is missing destination path: /a/b: missing value",
        ),
        (
            json!([{"op": "add", "value": 1}]),
            "add operation failed to decode path: missing value",
        ),
        (
            json!([{"op": "replace", "value": 1}]),
            "replace operation failed to decode path: operation missing path field: missing value",
        ),
        (
            json!([{"op": "frob", "path": "/x"}]),
            "Unexpected kind: frob",
        ),
        (json!([{"path": "/x"}]), "Unexpected kind: unknown"),
        (json!([null]), "Unexpected kind: unknown"),
    ];
    for (patch, detail) in cases {
        let err = jp(&doc, patch.clone()).unwrap_err();
        assert_eq!(err, PatchError::OperationFailed(detail.into()), "{patch}");
        assert_eq!(err.http_status(), 422);
        assert_eq!(err.reason(), "Invalid");
        assert_eq!(
            err.message(),
            "the server rejected our request due to an error in our request"
        );
    }
}

#[test]
fn json_patch_failure_keeps_nothing() {
    let doc = json!({"a": 1});
    let patch = json!([
        {"op": "add", "path": "/b", "value": 2},
        {"op": "test", "path": "/a", "value": 2}
    ]);
    assert!(jp(&doc, patch).is_err());
    assert_eq!(doc, json!({"a": 1}));
}

#[test]
fn json_patch_malformed_bodies() {
    let doc = json!({});
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "unexpected end of JSON input"),
        (
            b"[{\"op\": \"add\",}]",
            "invalid character '}' looking for beginning of object key string",
        ),
        (
            b"{\"op\": \"add\"}",
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        ),
        (
            b"[\"add\"]",
            "json: cannot unmarshal string into Go value of type jsonpatch.Operation",
        ),
        (
            b"[1]",
            "json: cannot unmarshal number into Go value of type jsonpatch.Operation",
        ),
    ];
    for (body, message) in cases {
        let err = apply_json_patch(&doc, body).unwrap_err();
        assert_eq!(
            err,
            PatchError::Malformed(message.into()),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!((err.http_status(), err.reason()), (400, "BadRequest"));
        assert_eq!(err.message(), message);
    }
    // `null` decodes to no operations at all.
    assert_eq!(apply_json_patch(&doc, b"null"), Ok(json!({})));
}

#[test]
fn json_patch_operation_limit() {
    let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
        .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
        .collect();
    let err = jp(&json!({"a": 1}), Value::Array(ops)).unwrap_err();
    assert_eq!(err, PatchError::TooManyOperations(10_001));
    assert_eq!(
        (err.http_status(), err.reason()),
        (413, "RequestEntityTooLarge")
    );
    assert_eq!(
        err.message(),
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

// ---------------------------------------------------------------------------------------
// JSON merge patch
// ---------------------------------------------------------------------------------------

#[test]
fn merge_patch_cases() {
    let cases: Vec<(&str, Value, Value, Value)> = vec![
        (
            "null deletes, objects merge, scalars replace",
            json!({"a": 1, "b": {"c": 2, "d": 3}, "e": "x"}),
            json!({"a": null, "b": {"c": 20}, "e": ["y"]}),
            json!({"b": {"c": 20, "d": 3}, "e": ["y"]}),
        ),
        (
            "nested nulls delete at every depth and vanish where nothing was",
            json!({"a": {"b": 1, "c": {"d": 2, "e": 3}}}),
            json!({"a": {"b": null, "c": {"d": null, "x": null}, "new": {"n": null, "m": 1}}}),
            json!({"a": {"c": {"e": 3}, "new": {"m": 1}}}),
        ),
        (
            "arrays replace; objects inside an added array lose their nulls, null elements stay",
            json!({"l": [1, 2, 3]}),
            json!({"l": [{"a": null, "b": 1}, null], "m": [{"a": null}]}),
            json!({"l": [{"b": 1}, null], "m": [{}]}),
        ),
        (
            "an array replacing an object is taken as sent",
            json!({"o": {"k": 1}}),
            json!({"o": [{"a": null}]}),
            json!({"o": [{"a": null}]}),
        ),
        (
            "an object replacing a scalar or null is pruned",
            json!({"s": "x", "n": null}),
            json!({"s": {"a": null, "b": 1}, "n": {"c": null}}),
            json!({"s": {"b": 1}, "n": {}}),
        ),
        (
            "deleting an absent member is a no-op",
            json!({"a": 1}),
            json!({"zzz": null}),
            json!({"a": 1}),
        ),
        (
            "an array patch replaces the document",
            json!({"a": 1}),
            json!([{"x": null}, null]),
            json!([{}, null]),
        ),
    ];
    for (name, doc, patch, expected) in cases {
        assert_eq!(apply_merge_patch(&doc, &patch), expected, "{name}");
    }
}

#[test]
fn merge_patch_rfc7386_examples() {
    // The examples of RFC 7386 appendix A that upstream accepts (a `null` or scalar patch
    // is refused before applying, see `merge_patch_body_parsing`).
    let cases = [
        (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
        (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
        (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
        (r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#),
        (r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
        (r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#),
        (
            r#"{"a":{"b":"c"}}"#,
            r#"{"a":{"b":"d","c":null}}"#,
            r#"{"a":{"b":"d"}}"#,
        ),
        (r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#),
        (r#"["a","b"]"#, r#"["c","d"]"#, r#"["c","d"]"#),
        (r#"{"a":"b"}"#, r#"["c"]"#, r#"["c"]"#),
        (r#"{"e":null}"#, r#"{"a":1}"#, r#"{"e":null,"a":1}"#),
        (r#"[1,2]"#, r#"{"a":"b","c":null}"#, r#"{"a":"b"}"#),
        (
            r#"{}"#,
            r#"{"a":{"bb":{"ccc":null}}}"#,
            r#"{"a":{"bb":{}}}"#,
        ),
    ];
    for (doc, patch, expected) in cases {
        let doc: Value = serde_json::from_str(doc).unwrap();
        let patch: Value = serde_json::from_str(patch).unwrap();
        let expected: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(apply_merge_patch(&doc, &patch), expected, "{doc} + {patch}");
    }
}

#[test]
fn merge_patch_keeps_member_order() {
    let doc = json!({"a": 1, "b": 2, "c": 3});
    let got = apply_merge_patch(&doc, &json!({"d": 4, "b": null, "a": 10}));
    assert_eq!(got.to_string(), r#"{"a":10,"c":3,"d":4}"#);
}

#[test]
fn merge_patch_body_parsing() {
    assert_eq!(parse_merge_patch(b"{\"a\":null}"), Ok(json!({"a": null})));
    assert_eq!(parse_merge_patch(b"[1]"), Ok(json!([1])));
    for bad in [&b"null"[..], b"\"s\"", b"3", b"{x", b""] {
        let err = parse_merge_patch(bad).unwrap_err();
        assert_eq!(err, PatchError::Malformed("Invalid JSON Patch".into()));
        assert_eq!(err.http_status(), 400);
    }
}

#[test]
fn error_display_is_lowercase() {
    let errors = [
        PatchError::Malformed("x".into()),
        PatchError::BadDirective("x".into()),
        PatchError::TooManyOperations(1),
        PatchError::OperationFailed("x".into()),
        PatchError::Unprocessable("x".into()),
        PatchError::MergeFailed("x".into()),
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
        assert!(!e.detail().is_empty());
    }
}
