//! Upstream's NodeRestriction admission plugin: a kubelet (user `system:node:<name>` in
//! group `system:nodes`) may only change what belongs to its own node. Its Node (and not
//! the labels that steer workloads, nor its taints), mirror pods bound to it, the status
//! and eviction of its pods, its Lease in `kube-node-lease`, its CSINode, ResourceSlices
//! naming it, tokens bound to its pods and CSRs for its own name. The Node authorizer
//! decides what a kubelet may read; this plugin looks at the objects written.

use base64::Engine as _;
use k1s_apimachinery::{GroupResource, Status};
use serde_json::{Map, Value};

use super::Operation;
use crate::auth::UserInfo;

/// Upstream's plugin name.
pub const PLUGIN_NAME: &str = "NodeRestriction";

const NODE_USER_PREFIX: &str = "system:node:";
const NODES_GROUP: &str = "system:nodes";
/// The namespace of node heartbeats (upstream's `NamespaceNodeLease`).
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// The annotation that makes a pod a mirror of a static pod.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Label namespace no kubelet may set (upstream's `LabelNamespaceNodeRestriction`).
const NODE_RESTRICTION_LABEL_NAMESPACE: &str = "node-restriction.kubernetes.io";
/// Labels of the kubernetes.io and k8s.io namespaces a kubelet may set on its Node.
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
/// Label namespaces (and their subdomains) a kubelet may set.
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];
/// Signers whose requests must name the requesting node.
const KUBELET_SIGNERS: &[&str] = &[
    "kubernetes.io/kubelet-serving",
    "kubernetes.io/kube-apiserver-client-kubelet",
];

/// What the plugin looks up: pods and nodes as they are stored.
pub trait Lookup {
    /// The pod `namespace/name`, if it exists.
    fn pod(&self, namespace: &str, name: &str) -> Option<Value>;
    /// The node `name`, if it exists.
    fn node(&self, name: &str) -> Option<Value>;
}

/// One request as this plugin sees it. Objects are in their v1 (stored) form; for a
/// subresource, `object` is what the subresource carries (the parent object for
/// `status`, the Eviction or TokenRequest for those).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The API group of the resource.
    pub group: &'a str,
    /// The resource (plural).
    pub resource: &'a str,
    /// The subresource, empty for the object itself.
    pub subresource: &'a str,
    /// The operation.
    pub operation: Operation,
    /// The namespace, empty for cluster-scoped resources.
    pub namespace: &'a str,
    /// The name from the request (on a create, the object's).
    pub name: &'a str,
    /// The new object (creates and updates).
    pub object: Option<&'a Value>,
    /// The existing object (updates and deletes).
    pub old_object: Option<&'a Value>,
    /// Who asks.
    pub user: &'a UserInfo,
}

/// The node a user is, as upstream's default node identifier sees it: a name starting
/// `system:node:` in group `system:nodes`; `Some("")` for a node user with no name.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    user.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
}

/// Admits (`Ok`) or refuses the request; requests by other users pass untouched.
pub fn admit(req: &Request<'_>, lookup: &dyn Lookup) -> Result<(), Status> {
    let Some(node) = node_identity(req.user) else {
        return Ok(());
    };
    let deny = |why: String| Err(forbidden(req, &why));
    if node.is_empty() {
        return deny(format!(
            "could not determine node from user \"{}\"",
            req.user.name
        ));
    }
    match (req.group, req.resource) {
        ("", "pods") => match req.subresource {
            "" => admit_pod(req, node, lookup),
            "status" => admit_pod_status(req, node),
            "eviction" => admit_pod_eviction(req, node, lookup),
            sub => deny(format!(
                "unexpected pod subresource \"{sub}\", only 'status' and 'eviction' are allowed"
            )),
        },
        ("", "nodes") => admit_node(req, node),
        ("", "persistentvolumeclaims") => match req.subresource {
            "status" => admit_pvc_status(req, node),
            _ => deny("may only update PVC status".into()),
        },
        ("", "serviceaccounts") => admit_service_account(req, lookup, node),
        ("coordination.k8s.io", "leases") => admit_lease(req, node),
        ("storage.k8s.io", "csinodes") => admit_named_like_node(req, node, "CSINode"),
        ("resource.k8s.io", "resourceslices") => admit_resource_slice(req, node),
        ("certificates.k8s.io", "certificatesigningrequests") => admit_csr(req, node),
        _ => Ok(()),
    }
}

/// Upstream's `admission.NewForbidden`: the resource without its subresource, and the
/// request's name (a create's object name, else its generateName, else `Unknown`).
fn forbidden(req: &Request<'_>, why: &str) -> Status {
    let name = if !req.name.is_empty() {
        req.name.to_string()
    } else {
        let meta = req.object.and_then(|o| o.get("metadata"));
        let field = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        field("name")
            .or_else(|| field("generateName"))
            .unwrap_or_else(|| "Unknown".into())
    };
    Status::forbidden(&GroupResource::new(req.group, req.resource), &name, why)
}

/// Upstream returns the lister's NotFound as it is.
fn not_found(resource: &str, name: &str) -> Status {
    Status::not_found(&GroupResource::new("", resource), name)
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn missing_object(req: &Request<'_>) -> Status {
    forbidden(req, "unexpected type <nil>")
}

fn admit_pod(req: &Request<'_>, node: &str, lookup: &dyn Lookup) -> Result<(), Status> {
    match req.operation {
        Operation::Create => admit_pod_create(req, node, lookup),
        Operation::Delete => {
            let Some(pod) = lookup.pod(req.namespace, req.name) else {
                return Err(not_found("pods", req.name));
            };
            if str_at(&pod, "/spec/nodeName") != node {
                return Err(forbidden(
                    req,
                    &format!(
                        "node \"{node}\" can only delete pods with spec.nodeName set to itself"
                    ),
                ));
            }
            Ok(())
        }
        op => Err(forbidden(
            req,
            &format!(
                "unexpected operation \"{}\", node \"{node}\" can only create and delete mirror pods",
                op.as_str()
            ),
        )),
    }
}

fn admit_pod_create(req: &Request<'_>, node: &str, lookup: &dyn Lookup) -> Result<(), Status> {
    let pod = req.object.ok_or_else(|| missing_object(req))?;
    let deny = |why: String| Err(forbidden(req, &why));
    let is_mirror = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    if !is_mirror {
        return deny(format!(
            "pod does not have \"{MIRROR_POD_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"
        ));
    }
    if str_at(pod, "/spec/nodeName") != node {
        return deny(format!(
            "node \"{node}\" can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match owners {
        [] => {
            return deny(format!(
                "node \"{node}\" can only create pods with an owner reference set to itself"
            ));
        }
        [owner] => {
            if str_at(owner, "/apiVersion") != "v1"
                || str_at(owner, "/kind") != "Node"
                || str_at(owner, "/name") != node
            {
                return deny(format!(
                    "node \"{node}\" can only create pods with an owner reference set to itself"
                ));
            }
            if owner.get("controller").and_then(Value::as_bool) != Some(true) {
                return deny(format!(
                    "node \"{node}\" can only create pods with a controller owner reference set to itself"
                ));
            }
            if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                return deny(format!(
                    "node \"{node}\" must not set blockOwnerDeletion on an owner reference"
                ));
            }
            let Some(node_obj) = lookup.node(node) else {
                return Err(not_found("nodes", node));
            };
            let (want, got) = (str_at(owner, "/uid"), str_at(&node_obj, "/metadata/uid"));
            if want != got {
                return deny(format!(
                    "node {node} UID mismatch: expected {want} got {got}"
                ));
            }
        }
        _ => {
            return deny(format!(
                "node \"{node}\" can only create pods with a single owner reference set to itself"
            ));
        }
    }
    if !str_at(pod, "/spec/serviceAccountName").is_empty() {
        return deny(format!(
            "node \"{node}\" can not create pods that reference a service account"
        ));
    }
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    if references_secrets(spec) {
        return deny(format!(
            "node \"{node}\" can not create pods that reference secrets"
        ));
    }
    if references_config_maps(spec) {
        return deny(format!(
            "node \"{node}\" can not create pods that reference configmaps"
        ));
    }
    let volumes = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if volumes.iter().any(|v| {
        projected_sources(v).any(|s| s.get("clusterTrustBundle").is_some_and(|b| !b.is_null()))
    }) {
        return deny(format!(
            "node \"{node}\" can not create pods that reference clustertrustbundles"
        ));
    }
    if volumes
        .iter()
        .any(|v| v.get("persistentVolumeClaim").is_some_and(|c| !c.is_null()))
    {
        return deny(format!(
            "node \"{node}\" can not create pods that reference persistentvolumeclaims"
        ));
    }
    Ok(())
}

/// The sources of a projected volume.
fn projected_sources(volume: &Value) -> impl Iterator<Item = &Value> {
    volume
        .pointer("/projected/sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Every container of a pod spec: init, regular and ephemeral (upstream's `AllContainers`).
fn all_containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten()
}

fn non_empty(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

/// Whether a container's `envFrom` (at `from_ref`) or `env` (at `key_ref`) names an object.
fn env_references(spec: &Value, from_ref: &str, key_ref: &str) -> bool {
    let named = |items: Option<&Value>, at: &str| {
        items
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|i| non_empty(i.pointer(at)))
    };
    all_containers(spec).any(|c| named(c.get("envFrom"), from_ref) || named(c.get("env"), key_ref))
}

/// Whether any of the pod's volumes satisfies `pred`.
fn any_volume(spec: &Value, pred: impl Fn(&Value) -> bool) -> bool {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(pred)
}

/// Whether the pod names a Secret anywhere upstream's `VisitPodSecretNames` looks.
fn references_secrets(spec: &Value) -> bool {
    let pull = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|s| non_empty(s.get("name"))));
    let env = env_references(spec, "/secretRef/name", "/valueFrom/secretKeyRef/name");
    let volumes = any_volume(spec, |v| {
        non_empty(v.pointer("/secret/secretName"))
            || non_empty(v.pointer("/azureFile/secretName"))
            || [
                "/cephfs/secretRef/name",
                "/cinder/secretRef/name",
                "/flexVolume/secretRef/name",
                "/iscsi/secretRef/name",
                "/rbd/secretRef/name",
                "/scaleIO/secretRef/name",
                "/storageos/secretRef/name",
                "/csi/nodePublishSecretRef/name",
            ]
            .iter()
            .any(|p| non_empty(v.pointer(p)))
            || projected_sources(v).any(|s| non_empty(s.pointer("/secret/name")))
    });
    pull || env || volumes
}

/// Whether the pod names a ConfigMap anywhere upstream's `VisitPodConfigmapNames` looks.
fn references_config_maps(spec: &Value) -> bool {
    let env = env_references(
        spec,
        "/configMapRef/name",
        "/valueFrom/configMapKeyRef/name",
    );
    let volumes = any_volume(spec, |v| {
        non_empty(v.pointer("/configMap/name"))
            || projected_sources(v).any(|s| non_empty(s.pointer("/configMap/name")))
    });
    env || volumes
}

fn admit_pod_status(req: &Request<'_>, node: &str) -> Result<(), Status> {
    if req.operation != Operation::Update {
        return Err(forbidden(
            req,
            &format!("unexpected operation \"{}\"", req.operation.as_str()),
        ));
    }
    let old = req.old_object.ok_or_else(|| missing_object(req))?;
    if str_at(old, "/spec/nodeName") != node {
        return Err(forbidden(
            req,
            &format!(
                "node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"
            ),
        ));
    }
    let new = req.object.ok_or_else(|| missing_object(req))?;
    if labels(new) != labels(old) {
        return Err(forbidden(
            req,
            &format!("node \"{node}\" cannot update labels through pod status"),
        ));
    }
    if claim_statuses(old) != claim_statuses(new) {
        return Err(forbidden(
            req,
            &format!("node \"{node}\" cannot update resource claim statues"),
        ));
    }
    Ok(())
}

/// The labels of an object (an absent map equals an empty one, as upstream's
/// `labels.Equals` has it).
fn labels(obj: &Value) -> Map<String, Value> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A pod's `status.resourceClaimStatuses` as (name, claim name) pairs.
fn claim_statuses(pod: &Value) -> Vec<(String, Option<String>)> {
    pod.pointer("/status/resourceClaimStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            (
                str_at(s, "/name").to_string(),
                s.get("resourceClaimName")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
        })
        .collect()
}

fn admit_pod_eviction(req: &Request<'_>, node: &str, lookup: &dyn Lookup) -> Result<(), Status> {
    if req.operation != Operation::Create {
        return Err(forbidden(
            req,
            &format!("unexpected operation {}", req.operation.as_str()),
        ));
    }
    let eviction = req.object.ok_or_else(|| missing_object(req))?;
    let pod_name = match req.name {
        "" => str_at(eviction, "/metadata/name"),
        name => name,
    };
    if pod_name.is_empty() {
        return Err(forbidden(req, "could not determine pod from request data"));
    }
    let Some(pod) = lookup.pod(req.namespace, pod_name) else {
        return Err(not_found("pods", pod_name));
    };
    if str_at(&pod, "/spec/nodeName") != node {
        return Err(forbidden(
            req,
            &format!("node {node} can only evict pods with spec.nodeName set to itself"),
        ));
    }
    Ok(())
}

fn admit_pvc_status(req: &Request<'_>, node: &str) -> Result<(), Status> {
    if req.operation != Operation::Update {
        return Err(forbidden(
            req,
            &format!("unexpected operation \"{}\"", req.operation.as_str()),
        ));
    }
    let old = req.old_object.ok_or_else(|| missing_object(req))?;
    let new = req.object.ok_or_else(|| missing_object(req))?;
    let (old, new) = (pvc_without_node_fields(old), pvc_without_node_fields(new));
    if old != new {
        return Err(forbidden(
            req,
            &format!(
                "node \"{node}\" is not allowed to update fields other than status.quantity and status.conditions: {}",
                differences(&old, &new, "").join(", ")
            ),
        ));
    }
    Ok(())
}

/// A claim without what a kubelet may change in its status (capacity, conditions and the
/// expansion-recovery fields) and the fields no comparison should see.
fn pvc_without_node_fields(pvc: &Value) -> Value {
    let mut pvc = pvc.clone();
    if let Some(meta) = pvc.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    if let Some(status) = pvc.get_mut("status").and_then(Value::as_object_mut) {
        for k in [
            "capacity",
            "conditions",
            "allocatedResourceStatuses",
            "allocatedResources",
        ] {
            status.remove(k);
        }
    }
    pvc
}

/// The JSON paths where two objects differ (upstream prints a Go diff; the paths say the
/// same in a form a reader of JSON knows).
fn differences(a: &Value, b: &Value, path: &str) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    differences(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        &format!("{path}.{k}"),
                    )
                })
                .collect()
        }
        _ if a == b => Vec::new(),
        _ => vec![path.trim_start_matches('.').to_string()],
    }
}

fn admit_node(req: &Request<'_>, node: &str) -> Result<(), Status> {
    if req.name != node {
        return Err(forbidden(
            req,
            &format!(
                "node \"{node}\" is not allowed to modify node \"{}\"",
                req.name
            ),
        ));
    }
    match req.operation {
        Operation::Create => {
            let obj = req.object.ok_or_else(|| missing_object(req))?;
            if obj
                .pointer("/spec/configSource")
                .is_some_and(|c| !c.is_null())
            {
                return Err(forbidden(
                    req,
                    &format!(
                        "node \"{node}\" is not allowed to create pods with a non-nil configSource"
                    ),
                ));
            }
            let forbidden_labels = forbidden_labels(&labels(obj), &Map::new());
            if !forbidden_labels.is_empty() {
                return Err(forbidden(
                    req,
                    &format!(
                        "node \"{node}\" is not allowed to set the following labels: {}",
                        forbidden_labels.join(", ")
                    ),
                ));
            }
        }
        Operation::Update => {
            let obj = req.object.ok_or_else(|| missing_object(req))?;
            let old = req.old_object.ok_or_else(|| missing_object(req))?;
            let source = obj.pointer("/spec/configSource").filter(|c| !c.is_null());
            if source.is_some()
                && source != old.pointer("/spec/configSource").filter(|c| !c.is_null())
            {
                return Err(forbidden(
                    req,
                    &format!(
                        "node \"{node}\" is not allowed to update configSource to a new non-nil configSource"
                    ),
                ));
            }
            if taints(obj) != taints(old) {
                return Err(forbidden(
                    req,
                    &format!("node \"{node}\" is not allowed to modify taints"),
                ));
            }
            let forbidden_labels = forbidden_labels(&labels(obj), &labels(old));
            if !forbidden_labels.is_empty() {
                return Err(forbidden(
                    req,
                    &format!(
                        "is not allowed to modify labels: {}",
                        forbidden_labels.join(", ")
                    ),
                ));
            }
        }
        Operation::Delete => {}
    }
    Ok(())
}

/// A node's taints; an absent list equals an empty one (upstream's semantic equality).
fn taints(node: &Value) -> &[Value] {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The namespace of a label key (what comes before the `/`).
fn label_namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn in_namespace(namespace: &str, domain: &str) -> bool {
    namespace == domain
        || namespace
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Whether a kubelet may set this label on its Node (upstream's `IsKubeletLabel`).
pub fn is_kubelet_label(key: &str) -> bool {
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|ns| in_namespace(label_namespace(key), ns))
}

/// The labels added, removed or changed between `new` and `old` that a kubelet may not
/// touch, sorted.
fn forbidden_labels(new: &Map<String, Value>, old: &Map<String, Value>) -> Vec<String> {
    let mut modified: Vec<&String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, _)| k)
        .chain(old.keys().filter(|k| !new.contains_key(*k)))
        .collect();
    modified.sort();
    modified.dedup();
    modified
        .into_iter()
        .filter(|key| {
            let ns = label_namespace(key);
            let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
            in_namespace(ns, NODE_RESTRICTION_LABEL_NAMESPACE)
                || (kubernetes && !is_kubelet_label(key))
        })
        .cloned()
        .collect()
}

fn admit_service_account(req: &Request<'_>, lookup: &dyn Lookup, node: &str) -> Result<(), Status> {
    if req.operation != Operation::Create || req.subresource != "token" {
        return Ok(());
    }
    let token_request = req.object.ok_or_else(|| missing_object(req))?;
    let bound = token_request
        .pointer("/spec/boundObjectRef")
        .filter(|r| !r.is_null());
    let Some(bound) = bound.filter(|r| {
        str_at(r, "/apiVersion") == "v1"
            && str_at(r, "/kind") == "Pod"
            && !str_at(r, "/name").is_empty()
    }) else {
        return Err(forbidden(req, "node requested token not bound to a pod"));
    };
    let uid = str_at(bound, "/uid");
    if uid.is_empty() {
        return Err(forbidden(
            req,
            "node requested token with a pod binding without a uid",
        ));
    }
    let pod_name = str_at(bound, "/name");
    let Some(pod) = lookup.pod(req.namespace, pod_name) else {
        return Err(not_found("pods", pod_name));
    };
    if uid != str_at(&pod, "/metadata/uid") {
        return Err(forbidden(
            req,
            &format!(
                "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    if str_at(&pod, "/spec/nodeName") != node {
        return Err(forbidden(
            req,
            "node requested token bound to a pod scheduled on a different node",
        ));
    }
    Ok(())
}

fn admit_lease(req: &Request<'_>, node: &str) -> Result<(), Status> {
    if req.namespace != NODE_LEASE_NAMESPACE {
        return Err(forbidden(
            req,
            &format!("can only access leases in the \"{NODE_LEASE_NAMESPACE}\" system namespace"),
        ));
    }
    admit_named_like_node(req, node, "node lease")
}

/// Leases and CSINodes: the object's name must be the node's (on a create, the name in
/// the object).
fn admit_named_like_node(req: &Request<'_>, node: &str, what: &str) -> Result<(), Status> {
    let name = match req.operation {
        Operation::Create => str_at(
            req.object.ok_or_else(|| missing_object(req))?,
            "/metadata/name",
        ),
        _ => req.name,
    };
    if name != node {
        return Err(forbidden(
            req,
            &format!("can only access {what} with the same name as the requesting node"),
        ));
    }
    Ok(())
}

fn admit_resource_slice(req: &Request<'_>, node: &str) -> Result<(), Status> {
    let (slice, verb) = match req.operation {
        Operation::Create => (req.object, "create"),
        Operation::Delete => (req.old_object, "delete"),
        Operation::Update => return Ok(()),
    };
    let slice = slice.ok_or_else(|| missing_object(req))?;
    if str_at(slice, "/spec/nodeName") != node {
        return Err(forbidden(
            req,
            &format!("can only {verb} ResourceSlice with the same NodeName as the requesting node"),
        ));
    }
    Ok(())
}

fn admit_csr(req: &Request<'_>, node: &str) -> Result<(), Status> {
    if req.operation != Operation::Create {
        return Ok(());
    }
    let csr = req.object.ok_or_else(|| missing_object(req))?;
    if !KUBELET_SIGNERS.contains(&str_at(csr, "/spec/signerName")) {
        return Ok(());
    }
    let common_name = base64::engine::general_purpose::STANDARD
        .decode(str_at(csr, "/spec/request"))
        .map_err(|e| e.to_string())
        .and_then(|pem| request_common_name(&pem))
        .map_err(|e| forbidden(req, &format!("unable to parse csr: {e}")))?;
    if common_name != format!("{NODE_USER_PREFIX}{node}") {
        return Err(forbidden(
            req,
            &format!("can only create a node CSR with CN={NODE_USER_PREFIX}{node}"),
        ));
    }
    Ok(())
}

/// The subject common name of a PEM certificate request.
fn request_common_name(pem: &[u8]) -> Result<String, String> {
    use x509_parser::prelude::FromDer;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|_| "x509: malformed certificate request".to_string())?;
    Ok(csr
        .certification_request_info
        .subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_string())
}

#[cfg(test)]
#[path = "noderestriction_tests.rs"]
mod tests;
